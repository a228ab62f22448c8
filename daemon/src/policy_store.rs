//! The running policy: loaded from profiles, files or a directory, swapped atomically on
//! reload (readers never block), and kept when a new version fails to load.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use rampart_engine::load::{directory_files, load_paths, merge};
use rampart_engine::profiles::load_profile;
use rampart_engine::{Engine, LoadError};

/// Where policies come from.
#[derive(Clone, Debug)]
pub enum PolicySource {
    Profile(String),
    Files(Vec<PathBuf>),
    /// A directory of `*.yaml`; when it holds none, the embedded `standard` profile.
    Dir(PathBuf),
}

impl PolicySource {
    /// Human label (`/v1/status` `config_path`).
    pub fn label(&self) -> String {
        match self {
            PolicySource::Profile(p) => format!("embedded:{p}"),
            PolicySource::Files(f) => f
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            PolicySource::Dir(d) => match directory_files(d) {
                Ok(files) if !files.is_empty() => d.display().to_string(),
                _ => "embedded:standard".into(),
            },
        }
    }

    fn load(&self) -> Result<Engine, LoadError> {
        let config = match self {
            PolicySource::Profile(p) => load_profile(p)?,
            PolicySource::Files(f) => load_paths(f)?,
            PolicySource::Dir(d) => {
                let files = directory_files(d).unwrap_or_default();
                if files.is_empty() {
                    load_profile("standard")?
                } else {
                    merge(vec![load_paths(&files)?])?
                }
            }
        };
        Ok(Engine::new(config))
    }

    /// Files whose changes trigger a reload, with their modification times.
    fn stamps(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        let files = match self {
            PolicySource::Profile(_) => Vec::new(),
            PolicySource::Files(f) => f.clone(),
            PolicySource::Dir(d) => {
                let mut f = directory_files(d).unwrap_or_default();
                f.push(d.clone());
                f
            }
        };
        files
            .into_iter()
            .map(|p| {
                let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                (p, m)
            })
            .collect()
    }
}

/// Counts after a successful reload.
#[derive(Clone, Copy, Debug)]
pub struct ReloadStats {
    pub policies: usize,
    pub rules: usize,
    pub millis: f64,
}

pub struct PolicyStore {
    engine: ArcSwap<Engine>,
    /// Bumped by every successful reload: names the policy version (verdict cache keys).
    generation: std::sync::atomic::AtomicU64,
    source: PolicySource,
    stamps: Mutex<Vec<(PathBuf, Option<SystemTime>)>>,
    last_reload: Mutex<Option<Instant>>,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error(
        "refusing to reload: the new policy has no policies and no default action (a truncated write?)"
    )]
    Empty,
    #[error("refusing to reload: the policy count would drop from {0} to zero")]
    DroppedToZero(usize),
}

impl PolicyStore {
    pub fn open(source: PolicySource) -> Result<PolicyStore, LoadError> {
        let engine = source.load()?;
        let stamps = source.stamps();
        Ok(PolicyStore {
            engine: ArcSwap::from_pointee(engine),
            generation: std::sync::atomic::AtomicU64::new(0),
            source,
            stamps: Mutex::new(stamps),
            last_reload: Mutex::new(None),
        })
    }

    /// The engine in force (cheap; never blocks on a reload).
    pub fn current(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// The policy version: 0 for the policy loaded at start, +1 per successful reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// Seconds left before another reload may be requested over the API (1 s cooldown).
    pub fn cooldown_active(&self) -> bool {
        let mut last = self.last_reload.lock().expect("reload lock");
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t).as_secs_f64() < 1.0) {
            return true;
        }
        *last = Some(now);
        false
    }

    /// Loads the policy again; on any error the running policy stays.
    pub fn reload(&self) -> Result<ReloadStats, ReloadError> {
        let start = Instant::now();
        let engine = self.source.load()?;
        let config = engine.config();
        if config.policies.is_empty() && config.default_action.is_none() {
            return Err(ReloadError::Empty);
        }
        let before = self.current().policy_count();
        if before > 0 && engine.policy_count() == 0 {
            return Err(ReloadError::DroppedToZero(before));
        }
        let stats = ReloadStats {
            policies: engine.policy_count(),
            rules: config.policies.iter().map(|p| p.rules.len()).sum(),
            millis: start.elapsed().as_secs_f64() * 1000.0,
        };
        self.engine.store(Arc::new(engine));
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        *self.stamps.lock().expect("stamps lock") = self.source.stamps();
        Ok(stats)
    }

    /// True when a watched file changed since the last load.
    pub fn changed_on_disk(&self) -> bool {
        let now = self.source.stamps();
        let mut stamps = self.stamps.lock().expect("stamps lock");
        if *stamps != now {
            *stamps = now;
            return true;
        }
        false
    }
}

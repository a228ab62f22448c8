//! The running policy: loaded from profiles, files or a directory, swapped atomically on
//! reload (readers never block), and kept when a new version fails to load. The operator's
//! durable allows (`$RAMPART_HOME/policies/auto-allowed.yaml`, see [`crate::auto_allow`])
//! are loaded on top of whichever source runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use rampart_engine::load::{directory_files, load_file, load_paths, merge};
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
    fn label(&self, durable: Option<&Path>) -> String {
        match self {
            PolicySource::Profile(p) => format!("embedded:{p}"),
            PolicySource::Files(f) => f
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            PolicySource::Dir(d) => {
                if dir_files(d, durable).is_empty() {
                    "embedded:standard".into()
                } else {
                    d.display().to_string()
                }
            }
        }
    }

    /// Loads the policy, with the durable allows of `durable` on top when that file exists
    /// (and is not already one of the source's files).
    fn load(&self, durable: Option<&Path>) -> Result<Engine, LoadError> {
        let mut config = match self {
            PolicySource::Profile(p) => load_profile(p)?,
            PolicySource::Files(f) => load_paths(f)?,
            PolicySource::Dir(d) => {
                let files = dir_files(d, durable);
                if files.is_empty() {
                    load_profile("standard")?
                } else {
                    merge(vec![load_paths(&files)?])?
                }
            }
        };
        if let Some(file) = durable
            && file.is_file()
            && !self.includes(file)
        {
            config = merge(vec![config, load_file(file)?])?;
        }
        Ok(Engine::new(config))
    }

    /// Whether `file` is one of this source's own files.
    fn includes(&self, file: &Path) -> bool {
        match self {
            PolicySource::Profile(_) | PolicySource::Dir(_) => false,
            PolicySource::Files(f) => f.iter().any(|p| p == file),
        }
    }

    /// Files whose changes trigger a reload, with their modification times.
    fn stamps(&self, durable: Option<&Path>) -> Vec<(PathBuf, Option<SystemTime>)> {
        let mut files = match self {
            PolicySource::Profile(_) => Vec::new(),
            PolicySource::Files(f) => f.clone(),
            PolicySource::Dir(d) => {
                let mut f = dir_files(d, durable);
                f.push(d.clone());
                f
            }
        };
        files.extend(durable.map(Path::to_path_buf));
        files
            .into_iter()
            .map(|p| {
                let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                (p, m)
            })
            .collect()
    }
}

/// The policy files of directory `d`, without the durable-allow file `skip`: a directory
/// holding only that file is still an empty one, which runs the standard profile.
fn dir_files(d: &Path, skip: Option<&Path>) -> Vec<PathBuf> {
    let mut files = directory_files(d).unwrap_or_default();
    files.retain(|f| Some(f.as_path()) != skip);
    files
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
    /// The durable-allow file loaded on top of the source (`auto-allowed.yaml`).
    durable: Option<PathBuf>,
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
    /// Loads `source`, with the durable allows of `durable` on top when that file exists
    /// (it is watched either way, so the first rule written takes effect).
    pub fn open(source: PolicySource, durable: Option<PathBuf>) -> Result<PolicyStore, LoadError> {
        let engine = source.load(durable.as_deref())?;
        let stamps = source.stamps(durable.as_deref());
        Ok(PolicyStore {
            engine: ArcSwap::from_pointee(engine),
            generation: std::sync::atomic::AtomicU64::new(0),
            source,
            durable,
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

    /// Human label (`/v1/status` `config_path`, the startup log): the source, and the
    /// durable-allow file when it is loaded on top.
    pub fn label(&self) -> String {
        let base = self.source.label(self.durable.as_deref());
        match &self.durable {
            Some(f) if f.is_file() && !self.source.includes(f) => {
                format!("{base} + {}", f.display())
            }
            _ => base,
        }
    }

    /// Where "always allow" writes its rules, when the daemon has such a file.
    pub fn durable_file(&self) -> Option<&Path> {
        self.durable.as_deref()
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
        let engine = self.source.load(self.durable.as_deref())?;
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
        *self.stamps.lock().expect("stamps lock") = self.source.stamps(self.durable.as_deref());
        Ok(stats)
    }

    /// True when a watched file changed since the last load.
    pub fn changed_on_disk(&self) -> bool {
        let now = self.source.stamps(self.durable.as_deref());
        let mut stamps = self.stamps.lock().expect("stamps lock");
        if *stamps != now {
            *stamps = now;
            return true;
        }
        false
    }
}

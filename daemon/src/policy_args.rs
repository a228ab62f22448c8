//! Where a command gets its policy from: `--policy FILE`... and/or `--profile NAME`.

use std::path::PathBuf;

use clap::Args;
use rampart_engine::load::{load_paths, merge};
use rampart_engine::profiles::load_profile;
use rampart_engine::{Config, Engine, LoadError};

#[derive(Args, Clone, Debug, Default)]
pub struct PolicyArgs {
    /// Policy file or directory of policy files (repeatable; merged like a directory,
    /// in the order given).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Built-in profile: standard, paranoid or yolo [default: standard, unless --policy
    /// is given].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

impl PolicyArgs {
    /// Loads the profile (if any) followed by the files.
    pub fn config(&self) -> Result<Config, LoadError> {
        let mut configs = Vec::new();
        let profile = match (&self.profile, self.policies.is_empty()) {
            (Some(p), _) => Some(p.as_str()),
            (None, true) => Some("standard"),
            (None, false) => None,
        };
        if let Some(p) = profile {
            configs.push(load_profile(p)?);
        }
        if !self.policies.is_empty() {
            configs.push(load_paths(&self.policies)?);
        }
        merge(configs)
    }

    pub fn engine(&self) -> Result<Engine, LoadError> {
        self.config().map(Engine::new)
    }
}

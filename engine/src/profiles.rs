//! The built-in profiles, embedded from `policies/` at build time.

use crate::error::LoadError;
use crate::load::parse_policy;
use crate::policy::{Config, Source};

/// Built-in profile names and their YAML.
pub const PROFILES: &[(&str, &str)] = &[
    ("standard", include_str!("../../policies/standard.yaml")),
    ("paranoid", include_str!("../../policies/paranoid.yaml")),
    ("yolo", include_str!("../../policies/yolo.yaml")),
];

/// The YAML text of a built-in profile.
pub fn profile_text(name: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Parses a built-in profile (`embedded:<name>` in errors and as its source).
pub fn load_profile(name: &str) -> Result<Config, LoadError> {
    let file = format!("embedded:{name}");
    let text = profile_text(name).ok_or_else(|| {
        LoadError::whole(&file, format!("no built-in profile named `{name}`")).with_help(format!(
            "profiles are: {}",
            PROFILES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    parse_policy(
        text,
        &file,
        Source {
            file: file.clone(),
            project: false,
        },
    )
}

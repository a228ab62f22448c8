//! Loading policy files: one file, several files, or a directory (sorted, as the
//! reference does), merged into one [`Config`].

mod decode;
pub mod scalars;

use std::path::{Path, PathBuf};

pub use decode::{CONDITION_KEYS, to_json};

use crate::error::LoadError;
use crate::policy::{Config, Located, Source};
use crate::yaml;

/// Largest policy file accepted.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Parses one policy file's text. `file` names it in errors.
pub fn parse_policy(text: &str, file: &str, source: Source) -> Result<Config, LoadError> {
    parse_with(text, file, source, &[]).map(|(c, _)| c)
}

/// Parses a project's `.rampart/policy.yaml`: its policies are marked as project policies
/// (they can never weaken a global default deny), and `webhook` and `verify` rules are
/// refused (a project file could otherwise hand a global decision to a URL or an LLM).
pub fn parse_project_policy(text: &str, file: &str) -> Result<Config, LoadError> {
    let source = Source {
        file: file.to_string(),
        project: true,
    };
    let config = parse_policy(text, file, source)?;
    for p in &config.policies {
        for r in &p.rules {
            if matches!(r.action, crate::Action::Webhook | crate::Action::Verify) {
                return Err(LoadError::at(
                    file,
                    r.mark,
                    format!(
                        "project policy `{}` may not use `{}` rules",
                        p.name, r.action
                    ),
                )
                .with_help("move the rule into your global policies (~/.rampart/policies)"));
            }
        }
    }
    Ok(config)
}

/// Parses a test-suite file: a policy file that may also name `policy:` to test against.
pub fn parse_suite(text: &str, file: &str) -> Result<(Config, Option<Located>), LoadError> {
    let source = Source {
        file: file.to_string(),
        project: false,
    };
    parse_with(text, file, source, &["policy"])
}

fn parse_with(
    text: &str,
    file: &str,
    source: Source,
    extra_top_keys: &[&str],
) -> Result<(Config, Option<Located>), LoadError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(LoadError::whole(
            file,
            format!(
                "file is {} bytes; policy files are limited to 1 MiB",
                text.len()
            ),
        ));
    }
    let root = yaml::parse_document(text)
        .map_err(|e| LoadError::at(file, e.mark, format!("YAML syntax error: {}", e.message)))?;
    let decoder = decode::Decoder {
        file,
        source,
        extra_top_keys,
    };
    decoder.config(root.as_ref())
}

/// Reads and parses one file from disk.
pub fn load_file(path: &Path) -> Result<Config, LoadError> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    parse_policy(
        &text,
        &file,
        Source {
            file: file.clone(),
            project: false,
        },
    )
}

pub(crate) fn read_text(path: &Path) -> Result<String, LoadError> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| LoadError::whole(&file, format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(LoadError::whole(
            &file,
            format!(
                "file is {} bytes; policy files are limited to 1 MiB",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| LoadError::whole(&file, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| LoadError::whole(&file, "file is not valid UTF-8"))
}

/// The policy files of a directory: `*.yaml` and `*.yml`, in sorted name order.
pub fn directory_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let name = dir.display().to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError::whole(&name, format!("cannot read directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads several files, or directories of files, merged in order like a directory store.
pub fn load_paths(paths: &[PathBuf]) -> Result<Config, LoadError> {
    let mut configs = Vec::new();
    for path in paths {
        if path.is_dir() {
            for file in directory_files(path)? {
                configs.push(load_file(&file)?);
            }
        } else {
            configs.push(load_file(path)?);
        }
    }
    merge(configs)
}

/// Merges configs in order: the first `default_action` and `notify` win; policy names must
/// stay unique (openclaw's policies may shadow standard's, as in the reference).
pub fn merge(configs: Vec<Config>) -> Result<Config, LoadError> {
    let mut out = Config::default();
    for config in configs {
        if out.default_action.is_none() && config.default_action.is_some() {
            out.default_action = config.default_action;
            out.default_action_spelling = config.default_action_spelling;
        }
        if out.notify.is_none() {
            out.notify = config.notify;
        }
        for policy in config.policies {
            if let Some(prev) = out.policies.iter().find(|p| p.name == policy.name) {
                let pair = [prev.source.profile_name(), policy.source.profile_name()];
                if pair.contains(&"openclaw") && pair.contains(&"standard") {
                    continue;
                }
                return Err(LoadError::at(
                    &policy.source.file,
                    policy.mark,
                    format!("duplicate policy name `{}`", policy.name),
                )
                .with_help(format!(
                    "already defined in {} at line {}; policy names must be unique across files",
                    prev.source.file, prev.mark.line
                )));
            }
            out.policies.push(policy);
        }
        out.tests.extend(config.tests);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, LoadError> {
        parse_policy(text, "p.yaml", Source::default())
    }

    #[test]
    fn typo_in_condition_key_names_line_column_and_suggestion() {
        let text = "policies:\n  - name: a\n    rules:\n      - action: deny\n        when:\n          command_match: [\"rm *\"]\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.mark.map(|m| (m.line, m.col)), Some((6, 11)));
        assert_eq!(e.help.as_deref(), Some("did you mean `command_matches`?"));
        assert!(
            e.to_string()
                .starts_with("p.yaml:6:11: unknown key `command_match`")
        );
    }

    #[test]
    fn bad_action_gets_suggestion() {
        let e = parse("policies:\n  - name: a\n    rules:\n      - action: blok\n").unwrap_err();
        assert_eq!(e.mark.map(|m| m.line), Some(4));
        assert!(e.help.unwrap().contains("deny"));
        let e = parse("policies:\n  - name: a\n    rules:\n      - action: alow\n").unwrap_err();
        assert_eq!(e.help.as_deref(), Some("did you mean `allow`?"));
    }

    #[test]
    fn duplicate_policy_names_are_refused() {
        let e = parse("policies:\n  - name: a\n  - name: a\n").unwrap_err();
        assert_eq!(e.mark.map(|m| m.line), Some(3));
    }

    #[test]
    fn bad_glob_is_refused_with_position() {
        let e = parse("policies:\n  - name: a\n    rules:\n      - action: deny\n        when: {command_matches: [\"**a**b**c\"]}\n").unwrap_err();
        assert_eq!(e.mark.map(|m| m.line), Some(5));
        assert!(e.message.contains("`**`"));
    }

    #[test]
    fn defaults_and_aliases() {
        let c = parse("default_action: Require_Approval\npolicies:\n  - name: a\n    priority: 0\n    match: {tool: exec}\n    rules:\n      - action: LOG\n").unwrap();
        assert_eq!(c.default_action, Some(crate::Action::Ask));
        assert_eq!(c.policies[0].priority, 100);
        assert_eq!(c.policies[0].rules[0].action, crate::Action::Watch);
        assert_eq!(c.policies[0].tools[0].value, "exec");
        assert_eq!(parse("").unwrap().effective_default(), crate::Action::Deny);
    }

    #[test]
    fn verify_block_only_on_verify_rules() {
        assert!(parse("policies:\n  - name: a\n    rules:\n      - action: deny\n        verify: {timeout: 5s}\n").is_err());
        let c = parse("policies:\n  - name: a\n    rules:\n      - action: verify\n        verify: {timeout: 90s}\n").unwrap();
        assert_eq!(
            c.policies[0].rules[0]
                .verify
                .as_ref()
                .unwrap()
                .timeout
                .as_secs(),
            30
        );
    }

    #[test]
    fn misc_validation() {
        assert!(parse("version: \"2\"\n").is_err());
        assert!(parse("default_action: verify\n").is_err());
        assert!(
            parse("policies:\n  - name: a\n    action: deny\n")
                .unwrap_err()
                .help
                .unwrap()
                .contains("rule")
        );
        assert!(parse("policies:\n  - name: a\n    rules:\n      - action: deny\n        when: {command_contains: [\" \"]}\n").is_err());
        assert!(parse("policies:\n  - name: a\n    rules:\n      - action: webhook\n").is_err());
        assert!(parse("policies:\n  - name: a\n    rules:\n      - action: deny\n        when: {response_matches: [\"(a+)+\"]}\n").is_err());
        assert!(parse("policies:\n  - name: a\n    rules:\n      - action: deny\n        when: {call_count: {gte: 5000, window: 1h}}\n").is_err());
        assert!(
            parse("a: [unclosed\n")
                .unwrap_err()
                .message
                .contains("YAML")
        );
    }
}

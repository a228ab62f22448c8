//! "Always allow": the exact allow rules an approver adds by resolving an approval with
//! `persist` (HTTP API spec §7.6), kept in `$RAMPART_HOME/policies/auto-allowed.yaml`.
//!
//! The file is loaded on top of whatever policy the daemon runs ([`PolicyStore`]), and the
//! engine treats its policies as durable operator allows (policy spec §4, step 5): they beat
//! ask, watch and verify, never a deny. Each policy allows one exact command (`exec`) or one
//! exact path (`read`, `write`, `edit`): glob characters in it are written as one-character
//! classes (`*` as `[*]`), so nothing else matches, and every rule is checked against the
//! call it was made for before it is written.
//!
//! [`PolicyStore`]: crate::policy_store::PolicyStore

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use rampart_engine::policy::{Action, Source};
use rampart_engine::{Engine, EvalOptions, ToolCall};
use sha2::{Digest, Sha256};

use crate::file_lock::FlockGuard;

/// The file's name; the engine recognises durable allows by it.
pub const FILE_NAME: &str = "auto-allowed.yaml";

/// Longest pattern written (the glob limit is 8192 bytes; escaping can triple a character).
const MAX_PATTERN: usize = 8192;

/// The durable-allow file of a `RAMPART_HOME`.
pub fn file_in(home: &Path) -> PathBuf {
    home.join("policies").join(FILE_NAME)
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(
        "automatic allow is unsupported for tool `{0}`: only exec, read, write and edit calls can be persisted; write a policy instead"
    )]
    Unsupported(String),
    #[error("cannot persist an exact rule: {0}")]
    Unrepresentable(String),
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
}

impl PersistError {
    fn file(path: &Path, message: impl std::fmt::Display) -> PersistError {
        PersistError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// What a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Command,
    Path,
}

/// One exact allow rule, as written in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    /// The policy's name (unique: it ends with the time and a hash of tool and pattern).
    pub name: String,
    pub tool: String,
    pub field: Field,
    /// The glob pattern, escaped so that it matches only the original text.
    pub pattern: String,
}

impl AllowRule {
    /// The rule allowing exactly `subject` (the command of an `exec` call, the path of a
    /// `read`, `write` or `edit` call), checked to allow that call as the daemon evaluates it.
    pub fn exact(tool: &str, subject: &str, now: DateTime<Utc>) -> Result<AllowRule, PersistError> {
        let field = match tool {
            "exec" => Field::Command,
            "read" | "write" | "edit" => Field::Path,
            other => return Err(PersistError::Unsupported(other.to_string())),
        };
        let subject = subject.trim();
        if subject.is_empty() {
            return Err(PersistError::Unrepresentable(format!(
                "the {tool} call has no {} to allow",
                if field == Field::Command {
                    "command"
                } else {
                    "path"
                }
            )));
        }
        if field == Field::Path && !subject.starts_with('/') {
            return Err(PersistError::Unrepresentable(format!(
                "`{subject}` is not an absolute path"
            )));
        }
        let pattern = exact_pattern(subject).map_err(PersistError::Unrepresentable)?;
        let rule = AllowRule {
            name: rule_name(tool, subject, &pattern, now),
            tool: tool.to_string(),
            field,
            pattern,
        };
        rule.check(subject)?;
        Ok(rule)
    }

    /// When the rule was made (from its name), if the name carries it.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.name.rsplit('-').nth(1).and_then(|stamp| {
            NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
                .ok()
                .map(|t| t.and_utc())
        })
    }

    /// The call it was made for is allowed by it alone, evaluated as the daemon does.
    fn check(&self, subject: &str) -> Result<(), PersistError> {
        let text = render(std::slice::from_ref(self));
        let config = rampart_engine::load::parse_policy(
            &text,
            FILE_NAME,
            Source {
                file: FILE_NAME.into(),
                project: false,
            },
        )
        .map_err(|e| {
            PersistError::Unrepresentable(format!("the generated rule is invalid: {e}"))
        })?;
        let call = match self.field {
            Field::Command => ToolCall::exec(subject),
            Field::Path => ToolCall::with_param(&self.tool, "path", subject),
        };
        let opts = EvalOptions {
            resolve_symlinks: true,
            ..EvalOptions::default()
        };
        let d = Engine::new(config).evaluate(&call, &opts);
        if d.action == Action::Allow {
            Ok(())
        } else {
            Err(PersistError::Unrepresentable(format!(
                "an exact rule for `{subject}` would not match it as the policy engine reads it"
            )))
        }
    }
}

/// `text` as a glob matching only itself: `*`, `?` and `[` become one-character classes.
/// Backslashes (read as `/` by every glob) and control characters cannot be written exactly.
fn exact_pattern(text: &str) -> Result<String, String> {
    if text.contains('\\') {
        return Err("it contains a backslash, which policy globs read as `/`".into());
    }
    if text.chars().any(char::is_control) {
        return Err("it contains a control character (a newline or a tab)".into());
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    if out.len() > MAX_PATTERN {
        return Err(format!(
            "the pattern would be {} bytes; policy globs stop at {MAX_PATTERN}",
            out.len()
        ));
    }
    Ok(out)
}

/// `auto-allow-<what>-<UTC time>-<8 hex of SHA-256(tool, pattern)>`.
fn rule_name(tool: &str, subject: &str, pattern: &str, now: DateTime<Utc>) -> String {
    let what = if tool == "exec" {
        subject
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join("-")
    } else {
        format!("{tool}-{subject}")
    };
    let mut slug = String::new();
    for c in what.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_matches('-').chars().take(40).collect();
    slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        slug.push_str("rule");
    }
    let mut h = Sha256::new();
    h.update(tool.as_bytes());
    h.update([0]);
    h.update(pattern.as_bytes());
    let digest = h.finalize();
    format!(
        "auto-allow-{slug}-{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        hex::encode(&digest[..4])
    )
}

/// The rules in `file` (none when it does not exist). A policy that is not an exact allow
/// rule of this shape (a hand edit) is an error: the file is rewritten whole, and such a
/// policy would be lost.
pub fn rules(file: &Path) -> Result<Vec<AllowRule>, PersistError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PersistError::file(file, e)),
    };
    let source = Source {
        file: file.display().to_string(),
        project: false,
    };
    let config = rampart_engine::load::parse_policy(&text, &source.file.clone(), source)
        .map_err(|e| PersistError::file(file, e))?;
    config
        .policies
        .iter()
        .map(|p| {
            let odd = || {
                PersistError::file(
                    file,
                    format!(
                        "policy `{}` is not an exact allow rule written by rampart; move it to another policy file",
                        p.name
                    ),
                )
            };
            let [tool] = p.tools.as_slice() else {
                return Err(odd());
            };
            let [rule] = p.rules.as_slice() else {
                return Err(odd());
            };
            let w = &rule.when;
            let (field, pattern) = match (w.command_matches.as_slice(), w.path_matches.as_slice()) {
                ([c], []) => (Field::Command, c.value.clone()),
                ([], [p]) => (Field::Path, p.value.clone()),
                _ => return Err(odd()),
            };
            if rule.action != Action::Allow {
                return Err(odd());
            }
            Ok(AllowRule {
                name: p.name.clone(),
                tool: tool.value.clone(),
                field,
                pattern,
            })
        })
        .collect()
}

/// Adds `rule` unless the file already allows the same tool and pattern; true when added.
pub fn add(file: &Path, rule: &AllowRule) -> Result<bool, PersistError> {
    let _lock = lock_rules(file)?;
    let mut all = rules(file)?;
    if all
        .iter()
        .any(|r| r.tool == rule.tool && r.field == rule.field && r.pattern == rule.pattern)
    {
        return Ok(false);
    }
    all.push(rule.clone());
    write_atomic(file, &render(&all))?;
    Ok(true)
}

/// Removes the rule named `name`; false when there is none. The file is removed with its
/// last rule.
pub fn remove(file: &Path, name: &str) -> Result<bool, PersistError> {
    let _lock = lock_rules(file)?;
    let mut all = rules(file)?;
    let before = all.len();
    all.retain(|r| r.name != name);
    if all.len() == before {
        return Ok(false);
    }
    if all.is_empty() {
        std::fs::remove_file(file).map_err(|e| PersistError::file(file, e))?;
    } else {
        write_atomic(file, &render(&all))?;
    }
    Ok(true)
}

/// The file's text. Strings are written JSON-quoted, which YAML reads unchanged.
fn render(rules: &[AllowRule]) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut out = String::from(
        "# Exact allow rules added by \"always allow\" (an approval resolved with persist).\n\
         # rampart rewrites this file: remove a rule with\n\
         # `curl -X DELETE -H \"Authorization: Bearer $(cat ~/.rampart/token)\" \\\n\
         #     http://127.0.0.1:9090/v1/rules/auto-allowed/<name>`.\n\
         version: \"1\"\npolicies:\n",
    );
    if rules.is_empty() {
        out.truncate(out.len() - "policies:\n".len());
        out.push_str("policies: []\n");
    }
    for r in rules {
        let key = match r.field {
            Field::Command => "command_matches",
            Field::Path => "path_matches",
        };
        out.push_str(&format!(
            "  - name: {}\n    match:\n      tool: [{}]\n    rules:\n      - action: allow\n        when:\n          {key}: [{}]\n",
            q(&r.name),
            q(&r.tool),
            q(&r.pattern),
        ));
    }
    out
}

/// Replaces `file` with `text` (0600) so that a reader, the policy watcher included, sees
/// the old file or the new one, whole.
fn write_atomic(file: &Path, text: &str) -> Result<(), PersistError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    crate::home::ensure_private_dir(dir).map_err(|e| PersistError::file(dir, e))?;
    crate::home::write_private_atomically(file, text.as_bytes(), true)
        .and_then(|()| File::open(dir)?.sync_all())
        .map_err(|e| PersistError::file(file, e))
}

/// An exclusive `flock` on a lock file next to the rules, held while they are read and
/// rewritten (the file itself is replaced by a rename, so it cannot carry the lock).
fn lock_rules(file: &Path) -> Result<FlockGuard<File>, PersistError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    crate::home::ensure_private_dir(dir).map_err(|e| PersistError::file(dir, e))?;
    let path = dir.join(format!(".{FILE_NAME}.lock"));
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .and_then(FlockGuard::lock)
        .map_err(|e| PersistError::file(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T01:45:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The engine with only `rules`, deciding `call` (default: deny).
    fn decide(rules: &[AllowRule], call: &ToolCall) -> Action {
        let config = rampart_engine::load::parse_policy(
            &render(rules),
            FILE_NAME,
            Source {
                file: FILE_NAME.into(),
                project: false,
            },
        )
        .unwrap();
        Engine::new(config)
            .evaluate(call, &EvalOptions::default())
            .action
    }

    #[test]
    fn exact_rules_match_only_their_own_text() {
        let cases: &[(&str, &str, &str)] = &[
            ("exec", "kubectl apply -f foo", "kubectl apply -f foo2"),
            ("exec", "echo *.txt", "echo secrets.txt"),
            ("exec", "ls ?", "ls a"),
            ("exec", "git log -- [a]*", "git log -- a"),
            ("exec", "git status", "git status && rm -rf x"),
            ("edit", "/tmp/config[1].yaml", "/tmp/config1.yaml"),
            ("read", "/srv/app/*.env", "/srv/app/prod.env"),
        ];
        for (tool, subject, other) in cases {
            let r = AllowRule::exact(tool, subject, now()).unwrap();
            let call = |s: &str| match r.field {
                Field::Command => ToolCall::exec(s),
                Field::Path => ToolCall::with_param(tool, "path", s),
            };
            assert_eq!(
                decide(std::slice::from_ref(&r), &call(subject)),
                Action::Allow,
                "{r:?}"
            );
            assert_eq!(
                decide(std::slice::from_ref(&r), &call(other)),
                Action::Deny,
                "{r:?} vs {other}"
            );
        }
    }

    #[test]
    fn what_cannot_be_written_exactly_is_refused() {
        assert!(matches!(
            AllowRule::exact("fetch", "https://x", now()),
            Err(PersistError::Unsupported(_))
        ));
        for (tool, subject) in [
            ("exec", ""),
            ("exec", "echo a\\b"),
            ("exec", "printf 'a\nb'"),
            ("read", "relative/path"),
            ("write", "~/notes.txt"),
            // Quotes: the engine matches the unquoted reading, which `echo a b` shares.
            ("exec", "echo 'a b'"),
        ] {
            assert!(
                matches!(
                    AllowRule::exact(tool, subject, now()),
                    Err(PersistError::Unrepresentable(_))
                ),
                "{tool} {subject:?}"
            );
        }
    }

    #[test]
    fn names_carry_time_and_hash() {
        let r = AllowRule::exact("exec", "git push origin main", now()).unwrap();
        assert!(
            r.name.starts_with("auto-allow-git-push-20261122T014500Z-"),
            "{}",
            r.name
        );
        assert_eq!(r.created(), Some(now()));
        let p = AllowRule::exact("read", "/etc/Hosts File", now()).unwrap();
        assert!(
            p.name.starts_with("auto-allow-read-etc-hosts-file-"),
            "{}",
            p.name
        );
    }

    #[test]
    fn file_round_trip_dedup_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policies").join(FILE_NAME);
        assert!(rules(&file).unwrap().is_empty());
        let a = AllowRule::exact("exec", "make test", now()).unwrap();
        let b = AllowRule::exact("write", "/tmp/out [1].log", now()).unwrap();
        assert!(add(&file, &a).unwrap());
        assert!(add(&file, &b).unwrap());
        let again = AllowRule::exact("exec", "make test", now() + chrono::Duration::hours(1));
        assert!(
            !add(&file, &again.unwrap()).unwrap(),
            "same tool and pattern"
        );
        assert_eq!(rules(&file).unwrap(), vec![a.clone(), b.clone()]);
        // The engine reads the file it wrote as durable allows.
        let config = rampart_engine::load::load_file(&file).unwrap();
        assert_eq!(config.policies.len(), 2);
        assert!(!remove(&file, "no-such-rule").unwrap());
        assert!(remove(&file, &a.name).unwrap());
        assert_eq!(rules(&file).unwrap(), vec![b.clone()]);
        assert!(remove(&file, &b.name).unwrap());
        assert!(!file.exists(), "removed with its last rule");
    }

    #[test]
    fn hand_written_policies_are_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(
            &file,
            "policies:\n  - name: mine\n    match: {tool: exec}\n    rules:\n      - action: allow\n        when: {command_matches: [\"git *\", \"ls\"]}\n",
        )
        .unwrap();
        let before = std::fs::read_to_string(&file).unwrap();
        let r = AllowRule::exact("exec", "make", now()).unwrap();
        let e = add(&file, &r).unwrap_err().to_string();
        assert!(e.contains("`mine` is not an exact allow rule"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    }
}

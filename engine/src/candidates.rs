//! The readings of a command that restrictive rules (deny, ask, verify) are tried against
//! (policy spec §6.1), computed once per call.
//!
//! Besides the raw line, the normalized line and every executed simple command, each
//! command yields canonical `rm -rf <operand>` aliases (for any spelling of recursive and
//! force flags, and for an unfiltered `find … -delete` or `find … -exec rm -rf {}`, D2),
//! the executable's lowercased basename (`/bin/RM` reads as `rm`), busybox/toybox applets,
//! and Windows re-readings with carets or backticks removed.

use crate::paths::clean;
use crate::shell::{Component, ParsedCommand, Token, basename, join, redirection};

/// Most aliases produced for one call before the rule fails closed.
pub const MAX_ALIASES: usize = 256;

/// One reading of the command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub text: String,
    /// `command_not_matches` may exclude this reading. A composite line is never
    /// excludable: a match that spans operators cannot be weakened by an exclusion.
    pub excludable: bool,
}

/// Every reading for restrictive matching; `fail_closed` when a bound was hit.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    pub items: Vec<Candidate>,
    pub fail_closed: bool,
    /// Index of the raw line and of the normalized line.
    pub raw: Option<usize>,
    pub normalized: Option<usize>,
    /// Per parsed component: index of its normalized text and of its raw segment.
    pub components: Vec<(Option<usize>, Option<usize>)>,
}

impl Candidates {
    fn add(&mut self, text: &str, excludable: bool) -> Option<usize> {
        if text.is_empty() {
            return None;
        }
        if let Some(i) = self.items.iter().position(|c| c.text == text) {
            self.items[i].excludable &= excludable;
            return Some(i);
        }
        self.items.push(Candidate {
            text: text.to_string(),
            excludable,
        });
        Some(self.items.len() - 1)
    }
}

pub fn restrictive_candidates(raw: &str, parsed: &ParsedCommand) -> Candidates {
    let mut out = Candidates {
        fail_closed: parsed.truncated,
        ..Candidates::default()
    };
    let simple = !parsed.is_composite();
    out.raw = out.add(raw.trim(), simple);
    out.normalized = out.add(&parsed.normalized, simple);
    let mut aliases = 0usize;
    for c in &parsed.components {
        let raw_slot = out.add(c.raw.trim(), true);
        let text_slot = out.add(&c.text, true);
        out.components.push((text_slot, raw_slot));
        for alias in semantic_aliases(c) {
            out.add(&alias, true);
        }
        let rm = rm_aliases(&c.words);
        aliases += rm.len();
        if aliases > MAX_ALIASES {
            out.fail_closed = true;
            break;
        }
        for alias in rm {
            out.add(&alias, true);
        }
    }
    if raw.contains('^') {
        out.add(&raw.replace('^', ""), simple);
    }
    if raw.contains('`') {
        out.add(&raw.replace('`', ""), simple);
    }
    out
}

/// `/bin/rm -rf x` → `rm -rf x`; `RM -rf x` → `rm -rf x`; `busybox rm -rf x` → `rm -rf x`.
fn semantic_aliases(c: &Component) -> Vec<String> {
    let mut out = Vec::new();
    let Some(first) = c.words.first() else {
        return out;
    };
    let base = basename(&first.text).to_lowercase();
    if base != first.text {
        let mut words = c.words.clone();
        words[0] = Token::bare(base.clone());
        out.push(join(&words));
    }
    if (base == "busybox" || base == "toybox") && c.words.len() > 1 {
        let mut words = c.words[1..].to_vec();
        words[0] = Token::bare(basename(&words[0].text).to_lowercase());
        out.push(join(&words));
    }
    out
}

/// Drops executors (`env`, `busybox`, `toybox`) and an unquoted `#` comment.
fn effective_words(words: &[Token]) -> &[Token] {
    let mut w = words;
    while let Some(first) = w.first() {
        let base = basename(&first.text).to_lowercase();
        if matches!(base.as_str(), "env" | "busybox" | "toybox") && w.len() > 1 {
            w = &w[1..];
        } else {
            break;
        }
    }
    match w.iter().position(|t| !t.quoted && t.text.starts_with('#')) {
        Some(end) => &w[..end],
        None => w,
    }
}

/// Cleans absolute operands and operands that climb with `..`.
fn clean_operand(op: &str) -> String {
    if op.starts_with('/') || op.split('/').any(|p| p == "..") {
        clean(op)
    } else {
        op.to_string()
    }
}

/// Canonical `rm -rf <operand>` aliases of one simple command.
pub fn rm_aliases(words: &[Token]) -> Vec<String> {
    let words = effective_words(words);
    let Some(first) = words.first() else {
        return Vec::new();
    };
    match basename(&first.text).to_lowercase().as_str() {
        "rm" => {
            let (recursive, force, operands) = read_rm(&words[1..]);
            if recursive && force {
                operands
                    .iter()
                    .map(|op| format!("rm -rf {}", clean_operand(op)))
                    .collect()
            } else {
                Vec::new()
            }
        }
        "find" => find_aliases(&words[1..]),
        _ => Vec::new(),
    }
}

/// Reads rm's flags and operands; redirections are neither.
fn read_rm(args: &[Token]) -> (bool, bool, Vec<String>) {
    let (mut recursive, mut force) = (false, false);
    let mut operands = Vec::new();
    let mut options_done = false;
    let mut i = 0;
    while let Some(t) = args.get(i) {
        i += 1;
        if let Some(attached) = redirection(t) {
            if !attached {
                i += 1;
            }
            continue;
        }
        let s = t.text.as_str();
        if !options_done {
            if s == "--" {
                options_done = true;
                continue;
            }
            if let Some(long) = s.strip_prefix("--") {
                recursive |= long == "recursive";
                force |= long == "force";
                continue;
            }
            if let Some(short) = s.strip_prefix('-')
                && !short.is_empty()
            {
                recursive |= short.contains(['r', 'R']);
                force |= short.contains('f');
                continue;
            }
        }
        operands.push(s.to_string());
    }
    (recursive, force, operands)
}

const FIND_FILTERS: &[&str] = &[
    "-name",
    "-iname",
    "-path",
    "-ipath",
    "-wholename",
    "-iwholename",
    "-regex",
    "-iregex",
    "-lname",
    "-ilname",
    "-type",
    "-xtype",
    "-newer",
    "-anewer",
    "-cnewer",
    "-mtime",
    "-mmin",
    "-atime",
    "-amin",
    "-ctime",
    "-cmin",
    "-used",
    "-size",
    "-user",
    "-uid",
    "-group",
    "-gid",
    "-nouser",
    "-nogroup",
    "-perm",
    "-empty",
    "-links",
    "-inum",
    "-samefile",
    "-readable",
    "-writable",
    "-executable",
    "-fstype",
    "-context",
];
const FIND_OPERATORS: &[&str] = &["!", "-not", "-o", "-or", ",", "(", ")"];

fn is_find_filter(word: &str) -> bool {
    FIND_FILTERS.contains(&word) || (word.starts_with("-newer") && word.len() == 8)
}

/// `find <targets> … -delete` and `find <targets> … -exec[dir] rm -rf {} ;|+`, unless a
/// plain filter precedes the action (D2). No target means `.`.
fn find_aliases(args: &[Token]) -> Vec<String> {
    let mut i = 0;
    // Leading options: -H -L -P, -D opts, -Olevel.
    while let Some(t) = args.get(i) {
        match t.text.as_str() {
            "-H" | "-L" | "-P" => i += 1,
            "-D" => i += 2,
            s if s.starts_with("-O") => i += 1,
            _ => break,
        }
    }
    let mut targets = Vec::new();
    while let Some(t) = args.get(i) {
        let s = t.text.as_str();
        if !t.quoted && (s.starts_with('-') || FIND_OPERATORS.contains(&s)) {
            break;
        }
        targets.push(s.to_string());
        i += 1;
    }
    if targets.is_empty() {
        targets.push(".".into());
    }
    let (mut filtered, mut complex, mut deletes) = (false, false, false);
    while let Some(t) = args.get(i) {
        let s = t.text.as_str();
        i += 1;
        if FIND_OPERATORS.contains(&s) {
            complex = true;
        } else if s == "-delete" {
            deletes = true;
            break;
        } else if s == "-exec" || s == "-execdir" {
            let end = args[i..]
                .iter()
                .position(|t| t.text == ";" || t.text == "+")
                .map_or(args.len(), |p| i + p);
            let cmd = &args[i..end];
            if cmd
                .first()
                .is_some_and(|w| basename(&w.text).to_lowercase() == "rm")
                && cmd.iter().any(|w| w.text == "{}")
            {
                let (r, f, _) = read_rm(&cmd[1..]);
                if r && f {
                    deletes = true;
                    break;
                }
            }
            i = end + 1;
        } else if is_find_filter(s) {
            filtered = true;
        }
    }
    if !deletes || (filtered && !complex) {
        return Vec::new();
    }
    targets
        .iter()
        .map(|t| format!("rm -rf {}", clean_operand(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::{parse, tokenize};

    fn rm(cmd: &str) -> Vec<String> {
        rm_aliases(&tokenize(cmd))
    }

    #[test]
    fn rm_flag_spellings() {
        for cmd in [
            "rm -fr /",
            "rm -r -f /",
            "rm --recursive --force /",
            "rm -vfr -- /",
            "rm -rf //",
            "rm -rf / # c",
            "RM -rf /",
            "/bin/rm -Rf /",
        ] {
            assert_eq!(rm(cmd), ["rm -rf /"], "{cmd}");
        }
        assert_eq!(rm("rm -rf '#' /"), ["rm -rf #", "rm -rf /"]);
        assert!(rm("rm -f /").is_empty());
        assert!(rm("rm -r /").is_empty());
        assert_eq!(rm("rm -rf /var/log/../.."), ["rm -rf /"]);
        assert_eq!(rm("rm -rf a b > log"), ["rm -rf a", "rm -rf b"]);
        assert_eq!(rm("rm -rf a '>' b"), ["rm -rf a", "rm -rf >", "rm -rf b"]);
        assert_eq!(rm("busybox rm -rf /"), ["rm -rf /"]);
        assert_eq!(rm("rm -rf /var/log # /"), ["rm -rf /var/log"]);
    }

    #[test]
    fn find_aliases_d2() {
        assert_eq!(rm("find / -delete"), ["rm -rf /"]);
        assert_eq!(rm("find / -exec /bin/rm -rf {} \\;"), ["rm -rf /"]);
        assert_eq!(rm("find -delete"), ["rm -rf ."]);
        assert_eq!(rm("find / -maxdepth 1 -delete"), ["rm -rf /"]);
        assert_eq!(rm("find / ! -name keep -delete"), ["rm -rf /"]);
        assert!(rm("find . -name '*.pyc' -delete").is_empty());
        assert!(rm("find . -type d -name __pycache__ -exec rm -rf {} +").is_empty());
        assert!(rm("find . -name x -print").is_empty());
    }

    #[test]
    fn composite_lines_are_not_excludable() {
        let raw = "rm -rf /var/log/x && rm -rf /";
        let c = restrictive_candidates(raw, &parse(raw));
        assert!(!c.items.iter().find(|c| c.text == raw).unwrap().excludable);
        assert!(
            c.items
                .iter()
                .find(|c| c.text == "rm -rf /")
                .unwrap()
                .excludable
        );
        let raw = "rm -rf /";
        let c = restrictive_candidates(raw, &parse(raw));
        assert!(c.items.iter().all(|c| c.excludable));
    }

    #[test]
    fn semantic_aliases_lowercase_basename() {
        let raw = "/usr/bin/CURL x";
        let c = restrictive_candidates(raw, &parse(raw));
        assert!(c.items.iter().any(|c| c.text == "curl x"));
    }
}

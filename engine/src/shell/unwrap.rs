//! Wrappers that run another command unchanged, peeled off during normalization:
//! `command`, `exec`, `env`, `nohup`, `nice`, `timeout`, `setsid`, `stdbuf`, the POSIX
//! shells with `-c`, and the explicit Windows wrappers `cmd /c` and `powershell -Command`.
//!
//! A wrapper whose options cannot be read with certainty (an unknown flag, a bad duration,
//! `--help`) is left alone: the command is then matched as written.

use super::tokenize::{Token, tokenize};

/// The result of one unwrapping step.
#[derive(Debug, PartialEq, Eq)]
pub enum Unwrapped {
    /// The wrapped command, as words.
    Words(Vec<Token>),
    /// The wrapped command is a shell string to parse again; `windows` marks `cmd`/PowerShell.
    Shell { script: String, windows: bool },
}

pub fn basename(word: &str) -> &str {
    word.rsplit(['/', '\\']).next().unwrap_or(word)
}

pub const POSIX_SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ash", "ksh"];

/// Peels one wrapper off `words`, or returns `None` when the first word is not a wrapper
/// that certainly runs the rest.
pub fn unwrap_once(words: &[Token], env_names: &mut Vec<String>) -> Option<Unwrapped> {
    let first = words.first()?;
    let name = basename(&first.text);
    let rest = &words[1..];
    match name {
        "command" => unwrap_command(rest),
        "exec" => unwrap_exec(rest),
        "env" => unwrap_env(rest, env_names),
        "nohup" => unwrap_nohup(rest),
        "nice" => unwrap_nice(rest),
        "timeout" => unwrap_timeout(rest),
        "setsid" => unwrap_setsid(rest),
        "stdbuf" => unwrap_stdbuf(rest),
        _ if POSIX_SHELLS.contains(&name) => unwrap_shell(rest),
        _ => {
            let lower = name.to_ascii_lowercase();
            match lower.as_str() {
                "cmd" | "cmd.exe" => unwrap_cmd(rest),
                "powershell" | "powershell.exe" | "pwsh" | "pwsh.exe" => unwrap_powershell(rest),
                _ => None,
            }
        }
    }
}

fn words(rest: &[Token]) -> Option<Unwrapped> {
    (!rest.is_empty()).then(|| Unwrapped::Words(rest.to_vec()))
}

fn unwrap_command(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        if t.text == "--" {
            i += 1;
            break;
        }
        let Some(flags) = t.text.strip_prefix('-') else {
            break;
        };
        if flags.is_empty() || !flags.chars().all(|c| c == 'p') {
            // `-v`/`-V` only describe the command; anything else is unknown.
            return None;
        }
        i += 1;
    }
    words(&rest[i..])
}

fn unwrap_exec(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        match t.text.as_str() {
            "--" => {
                i += 1;
                break;
            }
            "-a" => i += 2,
            s if s.starts_with('-')
                && s.len() > 1
                && s[1..].chars().all(|c| c == 'c' || c == 'l') =>
            {
                i += 1
            }
            s if s.starts_with('-') && s.len() > 1 => return None,
            _ => break,
        }
    }
    words(rest.get(i..).unwrap_or(&[]))
}

pub fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => is_identifier(name),
        None => false,
    }
}

pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn unwrap_env(rest: &[Token], env_names: &mut Vec<String>) -> Option<Unwrapped> {
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        let s = t.text.as_str();
        if s == "--" {
            i += 1;
            break;
        }
        if !s.starts_with('-') || s == "-" {
            if s == "-" {
                i += 1;
                continue;
            }
            break;
        }
        match s {
            "-i" | "--ignore-environment" | "-0" | "--null" | "-v" | "--debug" => i += 1,
            "-u" | "--unset" | "-C" | "--chdir" => i += 2,
            "-S" | "--split-string" => {
                let script = rest.get(i + 1)?;
                out.extend(tokenize(&script.text));
                i += 2;
            }
            _ if s.starts_with("--unset=") || s.starts_with("--chdir=") => i += 1,
            _ if s.starts_with("--split-string=") => {
                out.extend(tokenize(&s["--split-string=".len()..]));
                i += 1;
            }
            _ if s.starts_with("-u") || s.starts_with("-C") => i += 1,
            _ if s.starts_with("-S") => {
                out.extend(tokenize(&s[2..]));
                i += 1;
            }
            _ if s[1..].chars().all(|c| matches!(c, 'i' | '0' | 'v')) => i += 1,
            _ => return None,
        }
    }
    out.extend(rest.get(i..).unwrap_or(&[]).iter().cloned());
    let mut start = 0;
    while let Some(t) = out.get(start) {
        if !t.is_assignment() {
            break;
        }
        env_names.push(
            t.text
                .split_once('=')
                .map(|(n, _)| n.to_string())
                .unwrap_or_default(),
        );
        start += 1;
    }
    words(&out[start..])
}

fn unwrap_nohup(rest: &[Token]) -> Option<Unwrapped> {
    match rest.first()?.text.as_str() {
        "--" => words(&rest[1..]),
        s if s.starts_with('-') => None,
        _ => words(rest),
    }
}

fn is_integer(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

fn unwrap_nice(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        let s = t.text.as_str();
        if s == "--" {
            i += 1;
            break;
        }
        if s == "-n" || s == "--adjustment" {
            if !is_integer(&rest.get(i + 1)?.text) {
                return None;
            }
            i += 2;
        } else if let Some(v) = s
            .strip_prefix("--adjustment=")
            .or_else(|| s.strip_prefix("-n"))
        {
            if !is_integer(v) {
                return None;
            }
            i += 1;
        } else if let Some(v) = s.strip_prefix('-') {
            if !is_integer(v) {
                return None;
            }
            i += 1;
        } else {
            break;
        }
    }
    words(rest.get(i..).unwrap_or(&[]))
}

fn is_duration(s: &str) -> bool {
    let body = s.strip_suffix(['s', 'm', 'h', 'd']).unwrap_or(s);
    let mut parts = body.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    (!whole.is_empty() || frac.is_some_and(|f| !f.is_empty()))
        && whole.chars().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit()))
}

fn unwrap_timeout(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        let s = t.text.as_str();
        match s {
            "--" => {
                i += 1;
                break;
            }
            "--foreground" | "--preserve-status" | "-v" | "--verbose" => i += 1,
            "-k" | "--kill-after" | "-s" | "--signal" => {
                rest.get(i + 1)?;
                i += 2;
            }
            _ if s.starts_with("--kill-after=") || s.starts_with("--signal=") => i += 1,
            _ if (s.starts_with("-k") || s.starts_with("-s")) && s.len() > 2 => i += 1,
            _ if s.starts_with('-') && s.len() > 1 => return None,
            _ => break,
        }
    }
    let duration = rest.get(i)?;
    if !is_duration(&duration.text) {
        return None;
    }
    words(&rest[i + 1..])
}

fn unwrap_setsid(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        let s = t.text.as_str();
        match s {
            "--" => {
                i += 1;
                break;
            }
            "--ctty" | "--fork" | "--wait" => i += 1,
            _ if s.starts_with('-') && s.len() > 1 => {
                if !s[1..].chars().all(|c| matches!(c, 'c' | 'f' | 'w')) {
                    return None;
                }
                i += 1;
            }
            _ => break,
        }
    }
    words(rest.get(i..).unwrap_or(&[]))
}

fn is_buffer_mode(m: &str) -> bool {
    if m == "L" {
        return true;
    }
    let digits = m.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &m[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(
            suffix,
            "" | "K" | "M" | "G" | "T" | "P" | "E" | "Z" | "Y" | "KB" | "MB" | "GB" | "k" | "kB"
        )
}

fn unwrap_stdbuf(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        let s = t.text.as_str();
        if s == "--" {
            i += 1;
            break;
        }
        let mode = if matches!(s, "-i" | "-o" | "-e" | "--input" | "--output" | "--error") {
            i += 1;
            rest.get(i)?.text.as_str()
        } else if let Some((_, v)) = ["--input=", "--output=", "--error="]
            .iter()
            .find_map(|p| s.strip_prefix(p).map(|v| (p, v)))
        {
            v
        } else if s.len() > 2 && matches!(s.get(..2), Some("-i" | "-o" | "-e")) {
            &s[2..]
        } else if s.starts_with('-') && s.len() > 1 {
            return None;
        } else {
            break;
        };
        if !is_buffer_mode(mode) {
            return None;
        }
        i += 1;
    }
    words(rest.get(i..).unwrap_or(&[]))
}

/// `sh -c STRING`, `bash -lc STRING`, `bash --norc -c STRING`: flags up to the first one
/// containing `c`; the first non-flag word means a script is run, which is not unwrapped.
fn unwrap_shell(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    loop {
        let t = rest.get(i)?;
        let s = t.text.as_str();
        if s.starts_with("--") {
            i += 1;
            continue;
        }
        if let Some(flags) = s.strip_prefix('-').or_else(|| s.strip_prefix('+'))
            && !flags.is_empty()
        {
            i += 1;
            if flags.contains('c') && s.starts_with('-') {
                break;
            }
            continue;
        }
        return None;
    }
    let script = rest.get(i)?;
    let text = if script.quoted {
        script.text.clone()
    } else {
        super::tokenize::join(&rest[i..])
    };
    Some(Unwrapped::Shell {
        script: text,
        windows: false,
    })
}

fn unwrap_cmd(rest: &[Token]) -> Option<Unwrapped> {
    for (i, t) in rest.iter().enumerate() {
        let lower = t.text.to_ascii_lowercase();
        let flag = lower.strip_prefix('/')?;
        if let Some(attached) = flag.strip_prefix('c').or_else(|| flag.strip_prefix('k')) {
            let mut script = t.text[2..].to_string();
            if attached.is_empty() {
                script.clear();
            }
            for w in &rest[i + 1..] {
                if !script.is_empty() {
                    script.push(' ');
                }
                script.push_str(&w.text);
            }
            if script.trim().is_empty() {
                return None;
            }
            return Some(Unwrapped::Shell {
                script: script.replace('^', ""),
                windows: true,
            });
        }
    }
    None
}

fn unwrap_powershell(rest: &[Token]) -> Option<Unwrapped> {
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        let lower = t.text.to_ascii_lowercase();
        let Some(flag) = lower.strip_prefix('-') else {
            break;
        };
        if flag == "c" || (flag.len() >= 3 && "command".starts_with(flag)) {
            i += 1;
            break;
        }
        if flag == "f" || flag == "file" || flag.starts_with("enc") || flag == "e" || flag == "ec" {
            return None;
        }
        let takes_value = [
            "executionpolicy",
            "ep",
            "windowstyle",
            "w",
            "configurationname",
            "version",
            "inputformat",
            "outputformat",
        ]
        .contains(&flag);
        i += if takes_value { 2 } else { 1 };
    }
    let script = super::tokenize::join(rest.get(i..).unwrap_or(&[]));
    if script.trim().is_empty() {
        return None;
    }
    Some(Unwrapped::Shell {
        script,
        windows: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::tokenize::join;

    fn peel(s: &str) -> Option<String> {
        let mut names = Vec::new();
        unwrap_once(&tokenize(s), &mut names).map(|u| match u {
            Unwrapped::Words(w) => join(&w),
            Unwrapped::Shell { script, .. } => format!("SHELL[{script}]"),
        })
    }

    #[test]
    fn wrappers_that_run_the_rest() {
        assert_eq!(peel("command rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("command -p rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("exec -- rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(
            peel("exec -a harmless rm -rf /").as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(
            peel("env -i PATH=/usr/bin rm -rf /").as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(peel("env --unset X rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("env -uX rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("env -C/srv rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(
            peel("env -S 'PATH=/usr/bin rm -rf /'").as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(
            peel("/usr/bin/nohup -- rm -rf /").as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(peel("nice -n 5 rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("nice -5 rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(
            peel("timeout --foreground -k 1s -s TERM 5s rm -rf /").as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(peel("setsid -cfw -- rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(
            peel("stdbuf -i0 -oL -e 0 rm -rf /").as_deref(),
            Some("rm -rf /")
        );
    }

    #[test]
    fn wrappers_left_alone() {
        for s in [
            "command -v rm",
            "env -i PATH=/usr/bin",
            "nohup --help rm -rf /",
            "nice -n nope rm -rf /",
            "timeout --foreground rm -rf /",
            "setsid -x rm -rf /",
            "stdbuf -o nope rm -rf /",
            "python -c print('hi')",
            "cat -c f",
            "node -e x",
            "/bin/bash --login",
            "/bin/bash -c",
            "bash script.sh",
            "powershell -File s.ps1",
            "cmd.exe /c",
        ] {
            assert_eq!(peel(s), None, "{s}");
        }
    }

    #[test]
    fn shells() {
        assert_eq!(peel("bash -c rm -rf /").as_deref(), Some("SHELL[rm -rf /]"));
        assert_eq!(
            peel("/bin/sh -c 'rm -rf /'").as_deref(),
            Some("SHELL[rm -rf /]")
        );
        assert_eq!(peel("bash -lc 'x y'").as_deref(), Some("SHELL[x y]"));
        assert_eq!(peel("bash -ic x").as_deref(), Some("SHELL[x]"));
        assert_eq!(peel("/bin/bash --norc -c x").as_deref(), Some("SHELL[x]"));
        assert_eq!(peel("bash -l -c x").as_deref(), Some("SHELL[x]"));
        assert_eq!(peel("cmd /c whoami").as_deref(), Some("SHELL[whoami]"));
        assert_eq!(peel("CMD.EXE /C whoami").as_deref(), Some("SHELL[whoami]"));
        assert_eq!(
            peel("cmd.exe /d /s /c whoami").as_deref(),
            Some("SHELL[whoami]")
        );
        assert_eq!(
            peel("cmd.exe /cdel /q x").as_deref(),
            Some("SHELL[del /q x]")
        );
        assert_eq!(
            peel("cmd.exe /c d^el /q x").as_deref(),
            Some("SHELL[del /q x]")
        );
        assert_eq!(peel("powershell -Command X").as_deref(), Some("SHELL[X]"));
        assert_eq!(peel("pwsh -c X").as_deref(), Some("SHELL[X]"));
        assert_eq!(
            peel("pwsh.exe -NoProfile -Command X").as_deref(),
            Some("SHELL[X]")
        );
    }
}

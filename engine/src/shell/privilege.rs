//! Deviation D3: privilege and runner wrappers (`sudo`, `doas`, `time`, `xargs`, `watch`,
//! `strace`) are peeled off for restrictive matching only, so `sudo rm -rf /` meets the
//! `rm -rf /` deny. Normalization (the granting view) keeps them.

use super::tokenize::{Token, join};
use super::unwrap::{Unwrapped, basename};

struct Options {
    /// Short options that take a value (as the next word unless attached).
    short_value: &'static str,
    /// Long options that take a value (as the next word unless written `--opt=value`).
    long_value: &'static [&'static str],
    /// Short options whose value may only be attached.
    short_attached_only: &'static str,
}

const SUDO: Options = Options {
    short_value: "ughprtCDRTU",
    long_value: &[
        "user",
        "group",
        "host",
        "prompt",
        "role",
        "type",
        "close-from",
        "chdir",
        "chroot",
        "command-timeout",
        "other-user",
    ],
    short_attached_only: "",
};
const DOAS: Options = Options {
    short_value: "u",
    long_value: &[],
    short_attached_only: "",
};
const TIME: Options = Options {
    short_value: "fo",
    long_value: &["format", "output"],
    short_attached_only: "",
};
const XARGS: Options = Options {
    short_value: "adELInPs",
    long_value: &[
        "arg-file",
        "delimiter",
        "eof",
        "replace",
        "max-lines",
        "max-args",
        "max-procs",
        "max-chars",
        "process-slot-var",
    ],
    short_attached_only: "eil",
};
const WATCH: Options = Options {
    short_value: "nq",
    long_value: &["interval", "equexit"],
    short_attached_only: "d",
};
const STRACE: Options = Options {
    short_value: "abeEIoOpPsSuX",
    long_value: &[],
    short_attached_only: "",
};

/// Peels a runner off `words`. `None` when the first word is not a runner or nothing
/// would run (`sudo -l`, `sudo -e`, `doas -C f`, `strace -p 1`).
pub fn unwrap_runner(words: &[Token]) -> Option<Unwrapped> {
    let name = basename(&words.first()?.text);
    let opts = match name {
        "sudo" => &SUDO,
        "sudoedit" => return None,
        "doas" => &DOAS,
        "time" => &TIME,
        "xargs" => &XARGS,
        "watch" => &WATCH,
        "strace" => &STRACE,
        _ => return None,
    };
    let rest = &words[1..];
    let mut i = 0;
    let mut flags = String::new();
    let mut long_flags: Vec<String> = Vec::new();
    while let Some(t) = rest.get(i) {
        let s = t.text.as_str();
        if s == "--" {
            i += 1;
            break;
        }
        if let Some(long) = s.strip_prefix("--") {
            let (key, attached) = match long.split_once('=') {
                Some((k, _)) => (k, true),
                None => (long, false),
            };
            long_flags.push(key.to_string());
            i += if !attached && opts.long_value.contains(&key) {
                2
            } else {
                1
            };
            continue;
        }
        let Some(short) = s.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break;
        };
        i += 1;
        for (k, c) in short.char_indices() {
            flags.push(c);
            if opts.short_attached_only.contains(c) {
                break;
            }
            if opts.short_value.contains(c) {
                if k + c.len_utf8() == short.len() {
                    i += 1;
                }
                break;
            }
        }
    }
    let has = |c: char| flags.contains(c);
    match name {
        "sudo"
            if has('e')
                || has('l')
                || has('v')
                || (has('k') && rest.len() <= i)
                || long_flags
                    .iter()
                    .any(|f| f == "edit" || f == "list" || f == "validate") =>
        {
            return None;
        }
        "doas" if has('C') => return None,
        "strace" if has('p') && rest.len() <= i => return None,
        _ => {}
    }
    // `sudo NAME=value cmd` keeps its assignments: normalization strips and records them.
    let cmd = rest.get(i..).unwrap_or(&[]);
    if cmd.is_empty() || cmd.iter().all(Token::is_assignment) {
        return None;
    }
    if name == "watch" && !has('x') && !long_flags.iter().any(|f| f == "exec") {
        return Some(Unwrapped::Shell {
            script: join(cmd),
            windows: false,
        });
    }
    Some(Unwrapped::Words(cmd.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::tokenize::tokenize;

    fn peel(s: &str) -> Option<String> {
        unwrap_runner(&tokenize(s)).map(|u| match u {
            Unwrapped::Words(w) => join(&w),
            Unwrapped::Shell { script, .. } => format!("SHELL[{script}]"),
        })
    }

    #[test]
    fn runners() {
        assert_eq!(peel("sudo rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("sudo -u root rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("sudo -uroot rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(
            peel("sudo --user=root rm -rf /").as_deref(),
            Some("rm -rf /")
        );
        assert_eq!(peel("sudo -E -- rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(
            peel("sudo FOO=1 rm -rf /").as_deref(),
            Some("FOO=1 rm -rf /")
        );
        assert_eq!(peel("doas rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("time -p rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("xargs -0 -n1 rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(peel("xargs -I{} rm -rf {}").as_deref(), Some("rm -rf {}"));
        assert_eq!(
            peel("watch -n 5 rm -rf /").as_deref(),
            Some("SHELL[rm -rf /]")
        );
        assert_eq!(peel("watch -x rm -rf /").as_deref(), Some("rm -rf /"));
        assert_eq!(
            peel("strace -f -o log rm -rf /").as_deref(),
            Some("rm -rf /")
        );
    }

    #[test]
    fn nothing_runs() {
        for s in [
            "sudo -l",
            "sudo -v",
            "sudo -e /etc/hosts",
            "sudoedit /etc/hosts",
            "doas -C f",
            "strace -p 123",
            "sudo",
            "xargs",
        ] {
            assert_eq!(peel(s), None, "{s}");
        }
    }
}

//! Deviation D5: the command string of an exec seen by the preload library, built from
//! the real argv and the resolved executable, quoted so data is never re-split.

use crate::shell::is_assignment;

/// Builds the command string policies match for an exec of `path` with `argv`.
///
/// The first word is argv[0] when it names the resolved binary (the path itself or its
/// basename), otherwise the resolved path (argv[0] is spoofable). Every word is written
/// bare when it only holds `[A-Za-z0-9_@%+=:,./-]`, otherwise single-quoted. Bytes that
/// are not UTF-8 map to U+0080..U+00FF and force quoting.
pub fn command_string(path: &[u8], argv: &[&[u8]]) -> String {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let first: &[u8] = match argv.first() {
        Some(a0) if (*a0 == path || *a0 == base) && !is_assignment(&lossless(a0)) => a0,
        _ => path,
    };
    let mut out = String::new();
    push_word(&mut out, first);
    for arg in argv.iter().skip(1) {
        out.push(' ');
        push_word(&mut out, arg);
    }
    out
}

/// Bytes to text, mapping every byte of an invalid UTF-8 sequence to U+0080..U+00FF.
fn lossless(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut s = String::with_capacity(bytes.len());
            let mut rest = bytes;
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(v) => {
                        s.push_str(v);
                        break;
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        s.push_str(std::str::from_utf8(good).unwrap_or_default());
                        let n = e.error_len().unwrap_or(bad.len());
                        s.extend(bad[..n].iter().map(|&b| char::from(b)));
                        rest = &bad[n..];
                    }
                }
            }
            s
        }
    }
}

fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b)
}

fn push_word(out: &mut String, word: &[u8]) {
    if !word.is_empty() && word.iter().all(|&b| is_safe(b)) {
        out.push_str(std::str::from_utf8(word).unwrap_or_default());
        return;
    }
    out.push('\'');
    for c in lossless(word).chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parse;

    #[test]
    fn quoting_keeps_data_whole() {
        let s = command_string(b"/bin/echo", &[b"echo", b"a; rm -rf /"]);
        assert_eq!(s, "echo 'a; rm -rf /'");
        let p = parse(&s);
        assert_eq!(p.executed().count(), 1);
        assert!(!p.components.iter().any(|c| c.text == "rm -rf /"));
    }

    #[test]
    fn spoofed_argv0_is_replaced_by_the_real_path() {
        let s = command_string(
            b"/bin/rm",
            &[b"spoofed", b"two words", b"a'b", b"", b"$HOME"],
        );
        assert_eq!(s, "/bin/rm 'two words' 'a'\\''b' '' '$HOME'");
        assert_eq!(
            command_string(b"/usr/bin/git", &[b"git", b"status"]),
            "git status"
        );
        assert_eq!(command_string(b"/usr/bin/git", &[]), "/usr/bin/git");
        assert_eq!(command_string(b"/usr/bin/env", &[b"X=1"]), "/usr/bin/env");
    }

    #[test]
    fn invalid_utf8_maps_bytes_and_quotes() {
        assert_eq!(
            command_string(b"/bin/cat", &[b"cat", b"\xff"]),
            "cat '\u{ff}'"
        );
    }
}

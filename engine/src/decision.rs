//! The engine's output.

use std::sync::Arc;
use std::time::Duration;

use crate::policy::{Action, AskOptions, VerifyOptions, Webhook};

/// What the engine decided about one call.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub message: String,
    /// The policy that supplied the action; `None` for the default action.
    pub policy: Option<Arc<str>>,
    /// Policies whose rules fired (for a deny: also every remaining in-scope policy).
    pub matched_policies: Vec<Arc<str>>,
    pub eval_duration: Duration,
    /// Flags of the deciding `ask` rule.
    pub ask: AskOptions,
    /// Settings of the deciding `webhook` rule.
    pub webhook: Option<Webhook>,
    /// Settings of the deciding `verify` rule.
    pub verify: Option<VerifyOptions>,
    /// A verify rule matched but no verifier is configured, so it acted as watch.
    pub verify_unconfigured: bool,
    /// A single-use allow to consume: (policy name, rule index).
    pub once: Option<(String, usize)>,
    /// Ready-to-run commands that would allow a denied call.
    pub suggestions: Vec<String>,
}

impl Decision {
    pub(crate) fn new(action: Action, message: impl Into<String>) -> Decision {
        Decision {
            action,
            message: message.into(),
            policy: None,
            matched_policies: Vec::new(),
            eval_duration: Duration::ZERO,
            ask: AskOptions::default(),
            webhook: None,
            verify: None,
            verify_unconfigured: false,
            once: None,
            suggestions: Vec::new(),
        }
    }

    /// The matched policy names as plain strings.
    pub fn matched(&self) -> Vec<&str> {
        self.matched_policies.iter().map(|p| &**p).collect()
    }

    /// Allowed to run (allow or watch).
    pub fn is_allowed(&self) -> bool {
        matches!(self.action, Action::Allow | Action::Watch)
    }
}

//! The engine's output.

use std::time::Duration;

use crate::policy::{Action, AskOptions, VerifyOptions, Webhook};

/// What the engine decided about one call.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub message: String,
    /// The policy that supplied the action; `None` for the default action.
    pub policy: Option<String>,
    /// Policies whose rules fired (for a deny: also every remaining in-scope policy).
    pub matched_policies: Vec<String>,
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

    /// Allowed to run (allow or watch).
    pub fn is_allowed(&self) -> bool {
        matches!(self.action, Action::Allow | Action::Watch)
    }
}

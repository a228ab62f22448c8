//! The `rampart` CLI and (in later issues) the daemon. Everything user-facing about policy
//! files lives here; decisions themselves come from `rampart-engine`.

pub mod approvals;
pub mod call_json;
pub mod cli;
pub mod home;
pub mod policy_args;
pub mod policy_store;

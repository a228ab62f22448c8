//! The `rampart` CLI and (in later issues) the daemon. Everything user-facing about policy
//! files lives here; decisions themselves come from `rampart-engine`.

pub mod approvals;
pub mod audit;
pub mod call_json;
pub mod cli;
pub mod home;
// Handlers return `Result<_, Response>`: the error is the HTTP answer itself.
#[allow(clippy::result_large_err)]
pub mod http;
pub mod metrics;
pub mod policy_args;
pub mod policy_store;
pub mod recorder;
pub mod serve;
pub mod socket;
pub mod state;
pub mod delegate;

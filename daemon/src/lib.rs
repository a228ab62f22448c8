//! The `rampart` command-line tool and `rampart serve`: the Unix-socket decision service,
//! the HTTP API, approvals and the audit trail. Decisions themselves come from
//! `rampart-engine`; the wire format from `rampart-proto`.

pub mod approvals;
pub mod audit;
pub mod auto_allow;
pub mod call_json;
pub mod cli;
pub mod delegate;
mod file_lock;
pub mod home;
pub mod lineage;
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
pub mod verdict_cache;

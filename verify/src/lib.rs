//! rampart-verify: the LLM verification sidecar behind rampart's `verify` action.
//!
//! The daemon posts a tool call to `POST /verify`; the sidecar masks its secrets, asks a
//! model (OpenAI chat completions, Anthropic messages or Ollama) whether it may run, and
//! answers allow or deny. The HTTP contract is peg/rampart-verify v0.1.0's (HTTP API spec §14),
//! with the deliberate differences of §14.8.
//!
//! Module map: [`config`] reads the environment and picks the provider; [`request`] validates
//! `/verify` bodies; [`redact`] masks what leaves the machine; [`prompt`] builds what the model
//! reads and [`parse`] reads its answer; [`providers`] speak the upstream wire formats;
//! [`verifier`] ties those together for one call; [`server`], [`ratelimit`], [`metrics`],
//! [`health`] and [`log`] make up the service; [`eval`] measures a model on a labelled corpus.

pub mod cli;
pub mod clock;
pub mod config;
pub mod diagnostics;
pub mod eval;
pub mod health;
pub mod log;
pub mod metrics;
pub mod parse;
pub mod prompt;
pub mod providers;
pub mod ratelimit;
pub mod redact;
pub mod request;
pub mod server;
pub mod verifier;

/// The version reported by `GET /` (the reference's API version, which ours keeps).
pub const API_VERSION: &str = "0.1.0";

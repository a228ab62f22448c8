//! # rampart-engine
//!
//! The rampart policy language: strict loading of reference-compatible YAML policy files,
//! shell-aware command normalization, action-aware matching, and evaluation of a tool call
//! to a [`Decision`]. Pure: no async, no network, no clock (callers pass the time).
//!
//! ```
//! use rampart_engine::{Engine, EvalOptions, ToolCall, Action, profiles};
//! let engine = Engine::new(profiles::load_profile("standard").unwrap());
//! let d = engine.evaluate(&ToolCall::exec("rm -rf /"), &EvalOptions::default());
//! assert_eq!(d.action, Action::Deny);
//! ```

pub mod call;
pub mod candidates;
pub mod command_string;
mod compile;
pub mod counter;
pub mod decision;
pub mod error;
mod evaluate;
pub mod glob;
pub mod lint;
pub mod load;
pub mod matcher;
pub mod paths;
pub mod policy;
pub mod profiles;
pub mod redact;
pub mod shell;
pub mod testing;
pub mod tools;
pub mod yaml;

pub use call::ToolCall;
pub use command_string::command_string;
pub use compile::Engine;
pub use counter::CallCounter;
pub use decision::Decision;
pub use error::LoadError;
pub use evaluate::EvalOptions;
pub use policy::{Action, Config};

//! POSIX-first shell reading: sanitizing, splitting, tokenizing, unwrapping and
//! normalizing command lines the way a shell would run them (policy spec §5).

mod parse;
mod privilege;
mod sanitize;
mod split;
mod tokenize;
mod unwrap;

pub use parse::{Component, Origin, ParsedCommand, normalize, parse, redirection};
pub use sanitize::sanitize;
pub use split::{split_segments, substitutions};
pub use tokenize::{Token, join, tokenize};
pub use unwrap::{basename, is_assignment};

//! Shared by the integration tests; each test file uses a different part, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

pub mod sidecar;
pub mod standin;

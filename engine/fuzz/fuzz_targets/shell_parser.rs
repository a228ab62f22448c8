//! Arbitrary bytes, read lossily as a command line, through the shell reader: `parse` and
//! `normalize` must never panic, must agree, and must stay within their bounds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_engine::shell::{normalize, parse};

fuzz_target!(|data: &[u8]| {
    let command = String::from_utf8_lossy(data);
    let parsed = parse(&command);
    assert!(parsed.components.len() <= 1024);
    assert_eq!(normalize(&command), parsed.normalized);
    // A second pass over the normalized text must not panic either.
    let _ = parse(&parsed.normalized);
});

//! The text log: `tracing` to stderr and, when serving, to `$VERIFY_LOG_DIR/verify.log` as the
//! reference does. `RUST_LOG` selects what is logged (default `info`).

use std::fs::File;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

pub const TEXT_LOG_FILE: &str = "verify.log";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat, file: Option<File>, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let to_file = file.is_some();
    let writer = match file {
        Some(f) => BoxMakeWriter::new(std::io::stderr.and(Mutex::new(f))),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colour codes would litter the file.
        .with_ansi(!to_file);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

//! The one error type of the crate, [`ProtoError`], and its parts.
//!
//! Every variant is plain data (no heap, no boxed source), so errors can be built and returned
//! on the library's no-allocation hook path.

use core::fmt;

/// Which kind of frame an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A request, library → daemon.
    Request,
    /// A reply, daemon → library.
    Reply,
}

impl FrameKind {
    /// The largest payload (bytes after the 10-byte header) allowed for this kind of frame:
    /// [`MAX_REQUEST_PAYLOAD`](crate::MAX_REQUEST_PAYLOAD) or
    /// [`MAX_REPLY_PAYLOAD`](crate::MAX_REPLY_PAYLOAD).
    pub const fn max_payload(self) -> usize {
        match self {
            FrameKind::Request => crate::MAX_REQUEST_PAYLOAD,
            FrameKind::Reply => crate::MAX_REPLY_PAYLOAD,
        }
    }

    /// `"request"` or `"reply"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FrameKind::Request => "request",
            FrameKind::Reply => "reply",
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was wrong inside a payload whose frame was well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeProblem {
    /// The payload ended in the middle of the field.
    UnexpectedEnd,
    /// An enum tag (entry point, mode, reply kind, option tag) had an unknown value.
    UnknownTag(u32),
    /// A text field was not valid UTF-8.
    InvalidUtf8,
    /// A length prefix does not fit in this platform's `usize`.
    LengthOverflow(u64),
    /// The field would take the decoder past its memory limit
    /// ([`REQUEST_DECODE_LIMIT`](crate::REQUEST_DECODE_LIMIT) or
    /// [`MAX_REPLY_PAYLOAD`](crate::MAX_REPLY_PAYLOAD)).
    LimitExceeded,
    /// Any other bincode decoding failure.
    Other(&'static str),
}

impl fmt::Display for DecodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeProblem::UnexpectedEnd => f.write_str("the payload ends inside this field"),
            DecodeProblem::UnknownTag(tag) => write!(f, "unknown tag value {tag}"),
            DecodeProblem::InvalidUtf8 => f.write_str("the text is not valid UTF-8"),
            DecodeProblem::LengthOverflow(len) => {
                write!(f, "length prefix {len} does not fit in memory")
            }
            DecodeProblem::LimitExceeded => {
                f.write_str("the length prefixes claim more memory than the decoding limit")
            }
            DecodeProblem::Other(what) => f.write_str(what),
        }
    }
}

/// Everything that can go wrong while framing, encoding or decoding a message.
///
/// A peer that sends a frame producing any of these is misbehaving (or speaks another
/// version): the daemon logs the error and closes the connection; the library treats it as a
/// protocol error (deny in enforce mode, whatever `RAMPART_FAIL_OPEN` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// Fewer bytes than the frame needs: a short header, or fewer payload bytes than the header
    /// declares.
    #[error(
        "truncated {kind} frame: {needed} bytes needed, only {available} present \
         (the peer closed early or the read was cut short)"
    )]
    Truncated {
        /// The frame kind being decoded.
        kind: FrameKind,
        /// Bytes the frame needs (header, or header + declared payload).
        needed: usize,
        /// Bytes that were present.
        available: usize,
    },

    /// The frame does not start with `b"RMPT"`.
    #[error(
        "bad {kind} frame magic {found:02x?}: expected \"RMPT\" (52 4d 50 54); \
         the peer does not speak the rampart protocol"
    )]
    BadMagic {
        /// The frame kind being decoded.
        kind: FrameKind,
        /// The four bytes found instead.
        found: [u8; 4],
    },

    /// The header carries a protocol version this build does not speak.
    #[error(
        "unsupported protocol version {found} in {kind} frame: this build speaks version \
         {supported}; upgrade librampart.so and the daemon together"
    )]
    UnsupportedVersion {
        /// The frame kind being decoded.
        kind: FrameKind,
        /// The version in the header.
        found: u16,
        /// The only version this build speaks ([`VERSION`](crate::VERSION)).
        supported: u16,
    },

    /// A payload (declared in a header, or produced by the encoder) is over the limit for its
    /// kind of frame.
    #[error("{kind} payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The frame kind.
        kind: FrameKind,
        /// The declared or encoded payload length.
        len: usize,
        /// The limit ([`FrameKind::max_payload`]).
        max: usize,
    },

    /// Bytes left over after the frame or after the decoded message.
    #[error("{count} trailing bytes after the {kind} message; exactly one message per frame")]
    TrailingBytes {
        /// The frame kind being decoded.
        kind: FrameKind,
        /// How many bytes were left over.
        count: usize,
    },

    /// A request's argv has more entries than [`MAX_ARGC`](crate::MAX_ARGC).
    #[error("argv has {count} entries, more than the {max} a request may carry")]
    TooManyArgs {
        /// The count (declared on the wire, or of the request being encoded).
        count: u64,
        /// The limit ([`MAX_ARGC`](crate::MAX_ARGC)).
        max: usize,
    },

    /// A request's flags have bits this version does not define.
    #[error("unknown request flag bits {bits:#010x} (known bits: {known:#010x})")]
    UnknownFlags {
        /// The unknown bits only.
        bits: u32,
        /// All bits this version defines.
        known: u32,
    },

    /// The payload could not be decoded.
    #[error("undecodable {kind} payload at field `{field}`: {problem}")]
    Malformed {
        /// The frame kind being decoded.
        kind: FrameKind,
        /// The field being decoded (`argv` for any argv entry).
        field: &'static str,
        /// What was wrong.
        problem: DecodeProblem,
    },

    /// The caller's output buffer cannot hold the encoded frame.
    #[error("output buffer of {available} bytes is too small for the {needed}-byte frame")]
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

//! # rampart-proto
//!
//! The wire format between `librampart.so` (the `LD_PRELOAD` exec interposer) and the rampart
//! daemon (architecture §5, preload spec §7): one request per Unix-socket connection,
//! answered by one final reply, or by [`Reply::Pending`] and later one final reply.
//!
//! The library side never allocates: [`encode_request`] writes a frame into a caller buffer
//! from a [`RequestRef`] that borrows everything (or [`encode_request_with`] streams it as
//! `iovec`-ready [`Segment`]s), and [`decode_reply_ref`] decodes a reply in place. The daemon
//! side reads a header with [`read_frame_len`], then the payload, and decodes it strictly and
//! within fixed memory bounds with [`decode_request_payload`]. The crate is `no_std` (it uses
//! `alloc` only for the owned types) and has no `unsafe` code.
//!
//! ## Wire layout (protocol version 1)
//!
//! Every frame is a 10-byte header followed by a bincode 2 payload:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `b"RMPT"` |
//! | 4..6 | protocol version, `u16` little endian ([`VERSION`] = 1) |
//! | 6..10 | payload length, `u32` little endian (≤ [`MAX_REQUEST_PAYLOAD`] = 4 MiB for a request, ≤ [`MAX_REPLY_PAYLOAD`] = 64 KiB for a reply) |
//!
//! The payload uses [`WIRE_CONFIG`] = `bincode::config::standard().with_fixed_int_encoding()`:
//! little endian, fixed-width integers, every length prefix and count a `u64`, enum tags `u32`,
//! option tags `u8`. A *bytes* field is a `u64` length then the raw bytes.
//!
//! **Request payload** (exactly what `#[derive(bincode::Encode)]` produces for a struct with
//! these fields in this order; `tests/properties.rs` checks it):
//!
//! | field | encoding |
//! |---|---|
//! | `entry` | `u32` ([`EntryPoint`] discriminant) |
//! | `flags` | `u32` ([`Flags`] bits) |
//! | `mode` | `u32` ([`Mode`]: 0 enforce, 1 monitor) |
//! | `pid`, `ppid` | `i32` each |
//! | `uid` | `u32` |
//! | `path`, `requested`, `cwd`, `agent`, `session` | bytes each |
//! | `interpreter` | `u8` 0 (none), or `u8` 1 then bytes |
//! | `argv` | `u64` count (≤ [`MAX_ARGC`]), then each entry as bytes |
//!
//! **Reply payload**: `u32` tag, then 0 = `Allow` (nothing), 1 = `Deny` (`errno: i32`,
//! `message`: UTF-8 bytes), 2 = `Pending` (`approval_id`: UTF-8 bytes) — the derive layout of
//! [`Reply`].
//!
//! A frame is refused ([`ProtoError`]) when it is truncated, starts with another magic,
//! carries another version, declares or holds more than its limit, has bytes after the
//! message, or does not decode. Encoding is canonical: a frame that decodes re-encodes to the
//! same bytes.
//!
//! ```
//! use rampart_proto::*;
//!
//! // Library side: borrowed data, caller buffer, no allocation.
//! let argv: [&[u8]; 3] = [b"rm", b"-rf", b"/tmp/\xff"];
//! let req = RequestRef {
//!     entry: EntryPoint::Execvp,
//!     flags: Flags::ENV_SCRUBBED,
//!     mode: Mode::Enforce,
//!     pid: 4242,
//!     ppid: 1,
//!     uid: 1000,
//!     path: b"/usr/bin/rm",
//!     requested: b"rm",
//!     cwd: b"/home/me",
//!     agent: b"preload",
//!     session: b"preload-4242",
//!     interpreter: None,
//!     argv: &argv,
//! };
//! let mut buf = [0u8; 512];
//! let n = encode_request(&req, &mut buf)?;
//!
//! // Daemon side: header, then exactly `len` payload bytes.
//! let header: &[u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().unwrap();
//! let (_version, len) = read_frame_len(header)?;
//! let decoded = decode_request_payload(&buf[HEADER_LEN..HEADER_LEN + len])?;
//! assert_eq!(decoded.argv[2], b"/tmp/\xff");
//! assert_eq!(n, HEADER_LEN + len);
//!
//! let mut out = Vec::new();
//! encode_reply(&Reply::Deny { errno: EPERM, message: "block-destructive: no".into() }, &mut out)?;
//! assert!(matches!(decode_reply_ref(&out)?, ReplyRef::Deny { errno: EPERM, .. }));
//! # Ok::<(), ProtoError>(())
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod error;
mod frame;
mod reply;
mod request;

#[cfg(test)]
mod tests;

pub use error::{DecodeProblem, FrameKind, ProtoError};
pub use frame::{
    HEADER_LEN, MAGIC, MAX_REPLY_PAYLOAD, MAX_REQUEST_PAYLOAD, VERSION, WIRE_CONFIG, WireConfig,
    read_frame_len, read_reply_frame_len,
};
pub use reply::{
    EPERM, Reply, ReplyRef, decode_reply, decode_reply_payload_ref, decode_reply_ref, encode_reply,
    encode_reply_into, encoded_reply_len,
};
pub use request::{
    EntryPoint, Flags, INLINE_CAP, Inline, MAX_ARGC, Mode, REQUEST_DECODE_LIMIT, Request,
    RequestRef, Segment, decode_request, decode_request_payload, encode_request,
    encode_request_to_vec, encode_request_with, encoded_request_len,
};

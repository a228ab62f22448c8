//! Replies (daemon → library): the owned [`Reply`], the borrowed [`ReplyRef`] the library
//! decodes in place without allocating, and their codecs.

use alloc::string::String;
use alloc::vec::Vec;

use bincode::de::{BorrowDecode, Decode, Decoder, DecoderImpl};
use bincode::enc::write::{SizeWriter, Writer};
use bincode::enc::{Encode, EncoderImpl};
use bincode::error::EncodeError;

use crate::error::{DecodeProblem, FrameKind, ProtoError};
use crate::frame::{
    Cursor, HEADER_LEN, MAX_REPLY_PAYLOAD, SliceSink, WIRE_CONFIG, header_bytes, malformed,
    split_frame,
};

/// `EPERM` (1 on Linux): the errno of a policy deny. The library treats any other errno in a
/// [`Reply::Deny`] as `EPERM` too (preload spec §7).
pub const EPERM: i32 = 1;

/// Wire tag (`u32`) of [`Reply::Allow`].
const TAG_ALLOW: u32 = 0;
/// Wire tag of [`Reply::Deny`].
const TAG_DENY: u32 = 1;
/// Wire tag of [`Reply::Pending`].
const TAG_PENDING: u32 = 2;

/// The daemon's answer to a request.
///
/// One request gets either one final reply ([`Allow`](Reply::Allow) or
/// [`Deny`](Reply::Deny)), or [`Pending`](Reply::Pending) followed, on the same connection,
/// by one final reply once a human has decided or the approval expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The exec may proceed.
    Allow,
    /// The exec is refused.
    Deny {
        /// The errno the library reports ([`EPERM`] for a policy deny).
        errno: i32,
        /// Why, for the user-facing `rampart: blocked:` line (`<policy>: <message>`).
        message: String,
    },
    /// A human is being asked; the final reply follows on the same connection.
    Pending {
        /// The approval's id, as shown by `rampart approvals` and accepted by
        /// `rampart approve`.
        approval_id: String,
    },
}

impl Reply {
    /// A borrowed view, for [`encode_reply_into`].
    pub fn view(&self) -> ReplyRef<'_> {
        match self {
            Reply::Allow => ReplyRef::Allow,
            Reply::Deny { errno, message } => ReplyRef::Deny {
                errno: *errno,
                message,
            },
            Reply::Pending { approval_id } => ReplyRef::Pending { approval_id },
        }
    }

    /// `true` for [`Allow`](Reply::Allow) and [`Deny`](Reply::Deny), the replies that end a
    /// connection's exchange.
    pub fn is_final(&self) -> bool {
        !matches!(self, Reply::Pending { .. })
    }
}

/// A reply borrowing its text: what the library decodes from its stack buffer
/// ([`decode_reply_ref`], [`decode_reply_payload_ref`]) without allocating. Same meaning as
/// [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyRef<'a> {
    /// The exec may proceed.
    Allow,
    /// The exec is refused.
    Deny {
        /// The errno the library reports.
        errno: i32,
        /// Why (UTF-8, validated by the decoder).
        message: &'a str,
    },
    /// A human is being asked; the final reply follows.
    Pending {
        /// The approval's id (UTF-8).
        approval_id: &'a str,
    },
}

impl ReplyRef<'_> {
    /// `true` for `Allow` and `Deny`.
    pub fn is_final(&self) -> bool {
        !matches!(self, ReplyRef::Pending { .. })
    }

    /// An owned copy.
    pub fn to_reply(&self) -> Reply {
        Reply::from(*self)
    }
}

impl From<ReplyRef<'_>> for Reply {
    fn from(reply: ReplyRef<'_>) -> Reply {
        match reply {
            ReplyRef::Allow => Reply::Allow,
            ReplyRef::Deny { errno, message } => Reply::Deny {
                errno,
                message: message.into(),
            },
            ReplyRef::Pending { approval_id } => Reply::Pending {
                approval_id: approval_id.into(),
            },
        }
    }
}

/// Writes the payload of `reply` (no header).
fn write_payload<W: Writer>(reply: &ReplyRef<'_>, writer: W) -> Result<W, EncodeError> {
    let mut enc = EncoderImpl::new(writer, WIRE_CONFIG);
    match reply {
        ReplyRef::Allow => TAG_ALLOW.encode(&mut enc)?,
        ReplyRef::Deny { errno, message } => {
            TAG_DENY.encode(&mut enc)?;
            errno.encode(&mut enc)?;
            message.encode(&mut enc)?;
        }
        ReplyRef::Pending { approval_id } => {
            TAG_PENDING.encode(&mut enc)?;
            approval_id.encode(&mut enc)?;
        }
    }
    Ok(enc.into_writer())
}

/// Payload length of `reply`, after checking the limit.
fn checked_payload_len(reply: &ReplyRef<'_>) -> Result<usize, ProtoError> {
    // A `SizeWriter` cannot fail; treat the impossible error as "too large".
    let len = write_payload(reply, SizeWriter::default())
        .map(|w| w.bytes_written)
        .unwrap_or(usize::MAX);
    if len > MAX_REPLY_PAYLOAD {
        return Err(ProtoError::TooLarge {
            kind: FrameKind::Reply,
            len,
            max: MAX_REPLY_PAYLOAD,
        });
    }
    Ok(len)
}

/// Length of the whole frame (header included) that encoding `reply` produces.
///
/// Errors: [`ProtoError::TooLarge`] when the payload is over [`MAX_REPLY_PAYLOAD`] (a
/// message or approval id of almost 64 KiB): keep messages short.
pub fn encoded_reply_len(reply: &ReplyRef<'_>) -> Result<usize, ProtoError> {
    Ok(HEADER_LEN + checked_payload_len(reply)?)
}

/// Encodes `reply` as one frame into `buf` and returns the frame length. Does not allocate.
///
/// Errors: those of [`encoded_reply_len`], and [`ProtoError::BufferTooSmall`].
pub fn encode_reply_into(reply: &ReplyRef<'_>, buf: &mut [u8]) -> Result<usize, ProtoError> {
    let payload_len = checked_payload_len(reply)?;
    let needed = HEADER_LEN + payload_len;
    let available = buf.len();
    let Some((header, payload)) = buf
        .get_mut(..needed)
        .and_then(|frame| frame.split_first_chunk_mut::<HEADER_LEN>())
    else {
        return Err(ProtoError::BufferTooSmall { needed, available });
    };
    *header = header_bytes(payload_len);
    write_payload(
        reply,
        SliceSink {
            buf: payload,
            pos: 0,
        },
    )
    .map_err(|_| ProtoError::BufferTooSmall { needed, available })?;
    Ok(needed)
}

/// Appends `reply`, encoded as one frame, to `out` and returns the frame length. On error
/// `out` is left unchanged.
///
/// Errors: those of [`encoded_reply_len`].
pub fn encode_reply(reply: &Reply, out: &mut Vec<u8>) -> Result<usize, ProtoError> {
    let view = reply.view();
    let len = encoded_reply_len(&view)?;
    let start = out.len();
    out.resize(start + len, 0);
    let result = match out.get_mut(start..) {
        Some(tail) => encode_reply_into(&view, tail),
        None => Ok(0),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Decodes one complete reply frame (header + payload, nothing more) into an owned
/// [`Reply`] (allocates the message; the library uses [`decode_reply_ref`]).
///
/// Errors: [`ProtoError::Truncated`], [`ProtoError::BadMagic`],
/// [`ProtoError::UnsupportedVersion`], [`ProtoError::TooLarge`] (declared payload over
/// [`MAX_REPLY_PAYLOAD`]), [`ProtoError::TrailingBytes`], [`ProtoError::Malformed`].
pub fn decode_reply(frame: &[u8]) -> Result<Reply, ProtoError> {
    decode_reply_ref(frame).map(Reply::from)
}

/// Decodes one complete reply frame in place: the text borrows from `frame` (the library's
/// stack buffer). **Does not allocate**, not even on error. Errors as [`decode_reply`].
pub fn decode_reply_ref(frame: &[u8]) -> Result<ReplyRef<'_>, ProtoError> {
    decode_reply_payload_ref(split_frame(frame, FrameKind::Reply)?)
}

/// Decodes a reply payload (the bytes after a header checked with
/// [`read_reply_frame_len`](crate::read_reply_frame_len)) in place. **Does not allocate.**
///
/// Errors: [`ProtoError::TooLarge`] (payload over [`MAX_REPLY_PAYLOAD`]),
/// [`ProtoError::TrailingBytes`], [`ProtoError::Malformed`] (unknown kind tag, short
/// payload, text not UTF-8).
pub fn decode_reply_payload_ref(payload: &[u8]) -> Result<ReplyRef<'_>, ProtoError> {
    const KIND: FrameKind = FrameKind::Reply;
    if payload.len() > MAX_REPLY_PAYLOAD {
        return Err(ProtoError::TooLarge {
            kind: KIND,
            len: payload.len(),
            max: MAX_REPLY_PAYLOAD,
        });
    }
    let config = WIRE_CONFIG.with_limit::<MAX_REPLY_PAYLOAD>();
    let mut dec = DecoderImpl::new(Cursor::new(payload), config, ());
    let tag = u32::decode(&mut dec).map_err(|e| malformed(KIND, "kind", e))?;
    let reply = match tag {
        TAG_ALLOW => ReplyRef::Allow,
        TAG_DENY => {
            let errno = i32::decode(&mut dec).map_err(|e| malformed(KIND, "errno", e))?;
            let message: &str =
                BorrowDecode::borrow_decode(&mut dec).map_err(|e| malformed(KIND, "message", e))?;
            ReplyRef::Deny { errno, message }
        }
        TAG_PENDING => {
            let approval_id: &str = BorrowDecode::borrow_decode(&mut dec)
                .map_err(|e| malformed(KIND, "approval_id", e))?;
            ReplyRef::Pending { approval_id }
        }
        other => {
            return Err(ProtoError::Malformed {
                kind: KIND,
                field: "kind",
                problem: DecodeProblem::UnknownTag(other),
            });
        }
    };
    let left = dec.reader().remaining();
    if left != 0 {
        return Err(ProtoError::TrailingBytes {
            kind: KIND,
            count: left,
        });
    }
    Ok(reply)
}

//! The 10-byte frame header, the bincode configuration, and the strict payload reader shared by
//! the request and reply codecs.

use bincode::config::{self, Configuration, Fixint, LittleEndian, NoLimit};
use bincode::de::read::{BorrowReader, Reader};
use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};

use crate::error::{DecodeProblem, FrameKind, ProtoError};

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"RMPT";

/// The protocol version this build speaks (the `u16` after the magic).
pub const VERSION: u16 = 1;

/// Length of the frame header: magic (4) + version (`u16`) + payload length (`u32`).
pub const HEADER_LEN: usize = 10;

/// Largest request payload (bytes after the header): 4 MiB, so an argv up to the default
/// `ARG_MAX` (2 MiB) fits with its length prefixes.
pub const MAX_REQUEST_PAYLOAD: usize = 4 << 20;

/// Largest reply payload (bytes after the header): 64 KiB.
pub const MAX_REPLY_PAYLOAD: usize = 64 << 10;

/// The bincode 2 configuration of every payload: little endian, **fixed-width integers**
/// (`u32`/`i32` take 4 bytes; every length prefix and count is a `u64`), no limit.
///
/// Fixed-width was chosen over bincode's default varints because (a) the layout is trivially
/// predictable, so the library can size a frame before writing it and emit length prefixes
/// on the stack; (b) it bounds the decoder's memory: every argv entry costs at least 8 wire
/// bytes, so a payload of `n` bytes can never describe more than `n / 8` entries; (c) every
/// value has exactly one encoding, so a decoded message re-encodes to the same bytes.
/// Decoding adds a byte limit on top ([`REQUEST_DECODE_LIMIT`](crate::REQUEST_DECODE_LIMIT),
/// [`MAX_REPLY_PAYLOAD`]).
pub type WireConfig = Configuration<LittleEndian, Fixint, NoLimit>;

/// The value of [`WireConfig`]: `bincode::config::standard().with_fixed_int_encoding()`.
pub const WIRE_CONFIG: WireConfig = config::standard()
    .with_little_endian()
    .with_fixed_int_encoding();

/// Checks a frame header and returns `(version, payload length)` for a **request** frame:
/// the daemon reads exactly [`HEADER_LEN`] bytes, calls this, then reads exactly `len` more
/// bytes and passes them to [`decode_request_payload`](crate::decode_request_payload).
///
/// Errors: [`ProtoError::BadMagic`], [`ProtoError::UnsupportedVersion`] (anything but
/// [`VERSION`]), [`ProtoError::TooLarge`] (over [`MAX_REQUEST_PAYLOAD`]).
pub fn read_frame_len(header: &[u8; HEADER_LEN]) -> Result<(u16, usize), ProtoError> {
    parse_header(header, FrameKind::Request)
}

/// [`read_frame_len`] for a **reply** frame (limit [`MAX_REPLY_PAYLOAD`]): the library reads
/// the header, calls this, then reads exactly `len` bytes into its stack buffer and passes
/// them to [`decode_reply_payload_ref`](crate::decode_reply_payload_ref).
pub fn read_reply_frame_len(header: &[u8; HEADER_LEN]) -> Result<(u16, usize), ProtoError> {
    parse_header(header, FrameKind::Reply)
}

/// Checks a header for `kind`; returns `(version, payload length)`.
pub(crate) fn parse_header(
    header: &[u8; HEADER_LEN],
    kind: FrameKind,
) -> Result<(u16, usize), ProtoError> {
    let [m0, m1, m2, m3, v0, v1, l0, l1, l2, l3] = *header;
    let found = [m0, m1, m2, m3];
    if found != MAGIC {
        return Err(ProtoError::BadMagic { kind, found });
    }
    let version = u16::from_le_bytes([v0, v1]);
    if version != VERSION {
        return Err(ProtoError::UnsupportedVersion {
            kind,
            found: version,
            supported: VERSION,
        });
    }
    let declared = u32::from_le_bytes([l0, l1, l2, l3]);
    // A `u32` always fits in `usize` on the 32- and 64-bit targets we build for; saturate
    // rather than wrap anywhere else so the limit check still fires.
    let len = usize::try_from(declared).unwrap_or(usize::MAX);
    let max = kind.max_payload();
    if len > max {
        return Err(ProtoError::TooLarge { kind, len, max });
    }
    Ok((version, len))
}

/// Splits a complete frame into its payload, checking the header and that the frame holds
/// exactly the declared payload (no less, no more).
pub(crate) fn split_frame(frame: &[u8], kind: FrameKind) -> Result<&[u8], ProtoError> {
    let Some((header, rest)) = frame.split_first_chunk::<HEADER_LEN>() else {
        return Err(ProtoError::Truncated {
            kind,
            needed: HEADER_LEN,
            available: frame.len(),
        });
    };
    let (_, len) = parse_header(header, kind)?;
    match rest.len().cmp(&len) {
        core::cmp::Ordering::Less => Err(ProtoError::Truncated {
            kind,
            needed: HEADER_LEN + len,
            available: frame.len(),
        }),
        core::cmp::Ordering::Greater => Err(ProtoError::TrailingBytes {
            kind,
            count: rest.len() - len,
        }),
        core::cmp::Ordering::Equal => Ok(rest),
    }
}

/// Writes the header for a payload of `payload_len` bytes (already checked against the
/// limit, so it fits in a `u32`).
pub(crate) fn header_bytes(payload_len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX).to_le_bytes();
    let v = VERSION.to_le_bytes();
    [
        MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], v[0], v[1], len[0], len[1], len[2], len[3],
    ]
}

/// A bincode reader over a payload that knows how many bytes are left (bincode's own
/// `SliceReader` does not say), for trailing-byte checks and allocation caps.
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { rest: bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }
}

impl Reader for Cursor<'_> {
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), DecodeError> {
        let src = self.take(bytes.len())?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.rest.get(..n)
    }

    fn consume(&mut self, n: usize) {
        self.rest = self.rest.get(n..).unwrap_or_default();
    }
}

impl<'a> BorrowReader<'a> for Cursor<'a> {
    fn take_bytes(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
        self.take(length)
    }
}

impl<'a> Cursor<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
        match self.rest.split_at_checked(length) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(DecodeError::UnexpectedEnd {
                additional: length - self.rest.len(),
            }),
        }
    }
}

/// Copies into a caller buffer; reports [`EncodeError::UnexpectedEnd`] when full.
pub(crate) struct SliceSink<'b> {
    pub(crate) buf: &'b mut [u8],
    pub(crate) pos: usize,
}

impl Writer for SliceSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(EncodeError::UnexpectedEnd)?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::UnexpectedEnd)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
}

/// Maps a bincode decoding error in `field` to a [`ProtoError::Malformed`].
pub(crate) fn malformed(kind: FrameKind, field: &'static str, err: DecodeError) -> ProtoError {
    let problem = match err {
        DecodeError::UnexpectedEnd { .. } => DecodeProblem::UnexpectedEnd,
        DecodeError::LimitExceeded => DecodeProblem::LimitExceeded,
        DecodeError::UnexpectedVariant { found, .. } => DecodeProblem::UnknownTag(found),
        DecodeError::Utf8 { .. } => DecodeProblem::InvalidUtf8,
        DecodeError::OutsideUsizeRange(len) => DecodeProblem::LengthOverflow(len),
        DecodeError::Other(what) => DecodeProblem::Other(what),
        _ => DecodeProblem::Other("unexpected bincode decoding error"),
    };
    ProtoError::Malformed {
        kind,
        field,
        problem,
    }
}

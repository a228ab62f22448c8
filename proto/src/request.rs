//! Requests (library → daemon): the borrowed [`RequestRef`] the library encodes without
//! allocating, the owned [`Request`] the daemon decodes, and their codecs.

use alloc::vec::Vec;
use core::fmt;

use bincode::de::{BorrowDecode, Decode, Decoder, DecoderImpl};
use bincode::enc::{Encode, EncoderImpl};
use bincode::error::DecodeError;

use crate::error::{FrameKind, ProtoError};
use crate::frame::{
    Cursor, HEADER_LEN, MAX_REQUEST_PAYLOAD, SliceSink, WIRE_CONFIG, header_bytes, malformed,
    split_frame,
};

/// Most argv entries a request may carry: 262,144 (2¹⁸).
///
/// With the default 8 MiB stack, Linux's `ARG_MAX` is 2 MiB and every argv entry costs at
/// least 9 bytes of it (pointer + NUL), so a real exec has at most ~233,000 entries.
pub const MAX_ARGC: usize = 1 << 18;

/// The bincode byte limit of request decoding (`with_limit::<REQUEST_DECODE_LIMIT>()`): the
/// payload limit plus one `Vec<u8>` header per allowed argv entry. The decoder allocates only
/// for bytes it has already seen in the payload, and this limit bounds even that, so a hostile
/// length prefix cannot make it reserve more than ~10 MiB.
pub const REQUEST_DECODE_LIMIT: usize =
    MAX_REQUEST_PAYLOAD + MAX_ARGC * core::mem::size_of::<Vec<u8>>();

/// The exec-family function the library intercepted (preload spec §7).
///
/// Encoded as its discriminant (`u32`); new entry points are only ever appended, with a
/// protocol version bump (deliberately not `#[non_exhaustive]`: the daemon should have to
/// handle a new one).
/// `__libc_system` is reported as [`System`](EntryPoint::System) and `_IO_popen` as
/// [`Popen`](EntryPoint::Popen): they are aliases of the same glibc functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryPoint {
    /// `execve(path, argv, envp)`.
    Execve = 0,
    /// `execv(path, argv)`.
    Execv = 1,
    /// `execvp(file, argv)`.
    Execvp = 2,
    /// `execvpe(file, argv, envp)`.
    Execvpe = 3,
    /// `execl(path, arg, ...)`.
    Execl = 4,
    /// `execle(path, arg, ..., envp)`.
    Execle = 5,
    /// `execlp(file, arg, ...)`.
    Execlp = 6,
    /// `fexecve(fd, argv, envp)`.
    Fexecve = 7,
    /// `execveat(dirfd, path, argv, envp, flags)`.
    Execveat = 8,
    /// `posix_spawn(...)`.
    PosixSpawn = 9,
    /// `posix_spawnp(...)`.
    PosixSpawnp = 10,
    /// `system(command)` and `__libc_system`; argv is the single shell string.
    System = 11,
    /// `popen(command, type)` and `_IO_popen`; argv is the single shell string.
    Popen = 12,
    /// `syscall(SYS_execve, ...)`.
    SyscallExecve = 13,
    /// `syscall(SYS_execveat, ...)`.
    SyscallExecveat = 14,
}

impl EntryPoint {
    /// Every entry point, in wire order.
    pub const ALL: [EntryPoint; 15] = [
        EntryPoint::Execve,
        EntryPoint::Execv,
        EntryPoint::Execvp,
        EntryPoint::Execvpe,
        EntryPoint::Execl,
        EntryPoint::Execle,
        EntryPoint::Execlp,
        EntryPoint::Fexecve,
        EntryPoint::Execveat,
        EntryPoint::PosixSpawn,
        EntryPoint::PosixSpawnp,
        EntryPoint::System,
        EntryPoint::Popen,
        EntryPoint::SyscallExecve,
        EntryPoint::SyscallExecveat,
    ];

    /// The wire value (`u32` discriminant).
    pub const fn to_wire(self) -> u32 {
        self as u32
    }

    /// The entry point with wire value `tag`, if any.
    pub const fn from_wire(tag: u32) -> Option<Self> {
        let index = tag as usize;
        if index < Self::ALL.len() {
            Some(Self::ALL[index])
        } else {
            None
        }
    }

    /// The C function name (`"execve"`, `"posix_spawnp"`, `"syscall_execve"`, …), as used in
    /// the audit record's `entry` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryPoint::Execve => "execve",
            EntryPoint::Execv => "execv",
            EntryPoint::Execvp => "execvp",
            EntryPoint::Execvpe => "execvpe",
            EntryPoint::Execl => "execl",
            EntryPoint::Execle => "execle",
            EntryPoint::Execlp => "execlp",
            EntryPoint::Fexecve => "fexecve",
            EntryPoint::Execveat => "execveat",
            EntryPoint::PosixSpawn => "posix_spawn",
            EntryPoint::PosixSpawnp => "posix_spawnp",
            EntryPoint::System => "system",
            EntryPoint::Popen => "popen",
            EntryPoint::SyscallExecve => "syscall_execve",
            EntryPoint::SyscallExecveat => "syscall_execveat",
        }
    }

    /// `true` for `system` and `popen`, whose argv is one shell command string (the daemon
    /// matches it as the command and `/bin/sh` as the path).
    pub const fn is_shell(self) -> bool {
        matches!(self, EntryPoint::System | EntryPoint::Popen)
    }
}

impl fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The library's mode (`RAMPART_MODE`, preload spec R3). Encoded as a `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Deny what the policy denies (the default).
    #[default]
    Enforce = 0,
    /// Never block; still report.
    Monitor = 1,
}

impl Mode {
    /// The wire value.
    pub const fn to_wire(self) -> u32 {
        self as u32
    }

    /// The mode with wire value `tag`, if any.
    pub const fn from_wire(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Mode::Enforce),
            1 => Some(Mode::Monitor),
            _ => None,
        }
    }

    /// `"enforce"` or `"monitor"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

bitflags::bitflags! {
    /// What the library found out about the target before asking (preload spec R8).
    /// Encoded as a `u32`; bits this version does not define are a decoding error.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Flags: u32 {
        /// ELF without `PT_INTERP` (static or static-pie): the library cannot load there.
        const STATIC = 1 << 0;
        /// Go build-id note: Go execs with raw system calls.
        const GO = 1 << 1;
        /// Set-user/group-id bits or file capabilities: ld.so drops `LD_PRELOAD`.
        const SETUID = 1 << 2;
        /// ELF class or machine differs from ours, or `PT_INTERP` is not our glibc loader.
        const FOREIGN_CLASS = 1 << 3;
        /// `fexecve`/`execveat` target is a `memfd:` or deleted file (fileless exec).
        const MEMFD = 1 << 4;
        /// The caller's environment lacked the trusted `LD_PRELOAD`/config; it was re-injected.
        const ENV_SCRUBBED = 1 << 5;
        /// A `#!` script; the request's `interpreter` field names the interpreter.
        const SCRIPT = 1 << 6;
        /// A relative path whose base directory cannot be known (e.g. posix_spawn with a
        /// chdir file action).
        const RELATIVE_UNRESOLVED = 1 << 7;
    }
}

/// Each flag with its name in the specs and audit records.
const FLAG_LABELS: [(Flags, &str); 8] = [
    (Flags::STATIC, "static"),
    (Flags::GO, "go"),
    (Flags::SETUID, "setuid"),
    (Flags::FOREIGN_CLASS, "foreign-class"),
    (Flags::MEMFD, "memfd"),
    (Flags::ENV_SCRUBBED, "env-scrubbed"),
    (Flags::SCRIPT, "script"),
    (Flags::RELATIVE_UNRESOLVED, "relative-unresolved"),
];

impl Flags {
    /// The spec names of the set flags, lowest bit first (`"static"`, `"foreign-class"`, …).
    pub fn labels(self) -> impl Iterator<Item = &'static str> {
        FLAG_LABELS
            .into_iter()
            .filter(move |(flag, _)| self.contains(*flag))
            .map(|(_, label)| label)
    }

    /// The flag named `label` (a spec name such as `"env-scrubbed"`), if any.
    pub fn from_label(label: &str) -> Option<Flags> {
        FLAG_LABELS
            .into_iter()
            .find(|(_, l)| *l == label)
            .map(|(flag, _)| flag)
    }
}

/// A request borrowing all its bytes: what the library builds in the hook from the caller's
/// memory and encodes without allocating.
///
/// `A` is the type of one argv entry: `&[u8]` in the library (the default), `Vec<u8>` when
/// viewing an owned [`Request`] ([`Request::view`]). All byte strings are sent as they are:
/// not UTF-8-validated, not escaped, never truncated.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestRef<'a, A = &'a [u8]> {
    /// The intercepted function.
    pub entry: EntryPoint,
    /// What the library found out about the target.
    pub flags: Flags,
    /// The library's mode.
    pub mode: Mode,
    /// Process id of the caller.
    pub pid: i32,
    /// Parent process id of the caller.
    pub ppid: i32,
    /// Real user id of the caller.
    pub uid: u32,
    /// Resolved absolute executable path (`/bin/sh` for `system`/`popen`).
    pub path: &'a [u8],
    /// The name as requested: a path, a `PATH` name, or `fd:N`.
    pub requested: &'a [u8],
    /// Working directory of the caller.
    pub cwd: &'a [u8],
    /// Agent name (`RAMPART_AGENT`).
    pub agent: &'a [u8],
    /// Session (`RAMPART_SESSION`).
    pub session: &'a [u8],
    /// Script interpreter, when [`Flags::SCRIPT`] is set (not enforced by the codec).
    pub interpreter: Option<&'a [u8]>,
    /// The real argv; for `system`/`popen` the single shell string.
    pub argv: &'a [A],
}

impl<A: AsRef<[u8]>> RequestRef<'_, A> {
    /// An owned copy (allocates; for the daemon side and tests).
    pub fn to_request(&self) -> Request {
        Request {
            entry: self.entry,
            flags: self.flags,
            mode: self.mode,
            pid: self.pid,
            ppid: self.ppid,
            uid: self.uid,
            path: self.path.to_vec(),
            requested: self.requested.to_vec(),
            cwd: self.cwd.to_vec(),
            agent: self.agent.to_vec(),
            session: self.session.to_vec(),
            interpreter: self.interpreter.map(<[u8]>::to_vec),
            argv: self.argv.iter().map(|a| a.as_ref().to_vec()).collect(),
        }
    }
}

impl<A> Clone for RequestRef<'_, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for RequestRef<'_, A> {}

/// A decoded request, owning its bytes: what the daemon works with. Field meanings are those
/// of [`RequestRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The intercepted function.
    pub entry: EntryPoint,
    /// What the library found out about the target.
    pub flags: Flags,
    /// The library's mode.
    pub mode: Mode,
    /// Process id of the caller.
    pub pid: i32,
    /// Parent process id of the caller.
    pub ppid: i32,
    /// Real user id of the caller.
    pub uid: u32,
    /// Resolved absolute executable path.
    pub path: Vec<u8>,
    /// The name as requested.
    pub requested: Vec<u8>,
    /// Working directory of the caller.
    pub cwd: Vec<u8>,
    /// Agent name.
    pub agent: Vec<u8>,
    /// Session.
    pub session: Vec<u8>,
    /// Script interpreter, when flagged.
    pub interpreter: Option<Vec<u8>>,
    /// The real argv (bytes, not UTF-8).
    pub argv: Vec<Vec<u8>>,
}

impl Request {
    /// A borrowed view, for encoding an owned request (tests, clients other than the library).
    pub fn view(&self) -> RequestRef<'_, Vec<u8>> {
        RequestRef {
            entry: self.entry,
            flags: self.flags,
            mode: self.mode,
            pid: self.pid,
            ppid: self.ppid,
            uid: self.uid,
            path: &self.path,
            requested: &self.requested,
            cwd: &self.cwd,
            agent: &self.agent,
            session: &self.session,
            interpreter: self.interpreter.as_deref(),
            argv: &self.argv,
        }
    }
}

/// Capacity of an [`Inline`] segment: the largest piece the encoder produces itself.
pub const INLINE_CAP: usize = 24;

/// A small piece of a frame produced by the encoder (header, fixed fields, a length prefix),
/// held by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inline {
    buf: [u8; INLINE_CAP],
    len: u8,
}

impl Inline {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Encodes `value` with [`WIRE_CONFIG`](crate::WIRE_CONFIG).
    fn encode<T: Encode>(value: &T) -> Result<Inline, ProtoError> {
        let mut buf = [0u8; INLINE_CAP];
        let mut enc = EncoderImpl::new(
            SliceSink {
                buf: &mut buf,
                pos: 0,
            },
            WIRE_CONFIG,
        );
        if value.encode(&mut enc).is_err() {
            return Err(ProtoError::BufferTooSmall {
                needed: INLINE_CAP + 1,
                available: INLINE_CAP,
            });
        }
        let len = enc.into_writer().pos;
        Ok(Inline {
            buf,
            len: u8::try_from(len).unwrap_or(0),
        })
    }

    fn raw(bytes: &[u8]) -> Inline {
        let mut buf = [0u8; INLINE_CAP];
        let len = bytes.len().min(INLINE_CAP);
        if let (Some(dst), Some(src)) = (buf.get_mut(..len), bytes.get(..len)) {
            dst.copy_from_slice(src);
        }
        Inline {
            buf,
            len: u8::try_from(len).unwrap_or(0),
        }
    }
}

/// One piece of an encoded request frame, in order, as produced by [`encode_request_with`].
///
/// Concatenating the bytes of all segments gives exactly the output of [`encode_request`].
/// [`Borrowed`](Segment::Borrowed) pieces point into the request's own data (lifetime `'a`),
/// so the library can put them straight into `iovec`s and copy only the small
/// [`Inline`](Segment::Inline) pieces into a stack staging buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Bytes produced by the encoder (at most [`INLINE_CAP`]).
    Inline(Inline),
    /// A byte string of the request (path, argv entry, …), never empty.
    Borrowed(&'a [u8]),
}

impl Segment<'_> {
    /// The bytes of this piece.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Segment::Inline(inline) => inline.as_bytes(),
            Segment::Borrowed(bytes) => bytes,
        }
    }
}

/// Emits the payload of `req` (no header) as segments.
fn visit_payload<'a, A, E, F>(req: &RequestRef<'a, A>, sink: &mut F) -> Result<(), E>
where
    A: AsRef<[u8]>,
    E: From<ProtoError>,
    F: FnMut(Segment<'a>) -> Result<(), E>,
{
    fn bytes<'a, E, F>(sink: &mut F, data: &'a [u8]) -> Result<(), E>
    where
        E: From<ProtoError>,
        F: FnMut(Segment<'a>) -> Result<(), E>,
    {
        sink(Segment::Inline(Inline::encode(&(data.len() as u64))?))?;
        if !data.is_empty() {
            sink(Segment::Borrowed(data))?;
        }
        Ok(())
    }

    let fixed = (
        req.entry.to_wire(),
        req.flags.bits(),
        req.mode.to_wire(),
        req.pid,
        req.ppid,
        req.uid,
    );
    sink(Segment::Inline(Inline::encode(&fixed)?))?;
    bytes(sink, req.path)?;
    bytes(sink, req.requested)?;
    bytes(sink, req.cwd)?;
    bytes(sink, req.agent)?;
    bytes(sink, req.session)?;
    match req.interpreter {
        None => sink(Segment::Inline(Inline::encode(&0u8)?))?,
        Some(interpreter) => {
            sink(Segment::Inline(Inline::encode(&1u8)?))?;
            bytes(sink, interpreter)?;
        }
    }
    let argv: &'a [A] = req.argv;
    sink(Segment::Inline(Inline::encode(&(argv.len() as u64))?))?;
    for arg in argv {
        bytes(sink, arg.as_ref())?;
    }
    Ok(())
}

/// Payload length of `req`, after checking argc and the payload limit.
fn checked_payload_len<A: AsRef<[u8]>>(req: &RequestRef<'_, A>) -> Result<usize, ProtoError> {
    if req.argv.len() > MAX_ARGC {
        return Err(ProtoError::TooManyArgs {
            count: req.argv.len() as u64,
            max: MAX_ARGC,
        });
    }
    let mut len = 0usize;
    visit_payload(req, &mut |segment: Segment<'_>| -> Result<(), ProtoError> {
        len = len.saturating_add(segment.as_bytes().len());
        Ok(())
    })?;
    if len > MAX_REQUEST_PAYLOAD {
        return Err(ProtoError::TooLarge {
            kind: FrameKind::Request,
            len,
            max: MAX_REQUEST_PAYLOAD,
        });
    }
    Ok(len)
}

/// Length of the whole frame (header included) that encoding `req` produces. Does not
/// allocate.
///
/// Errors: [`ProtoError::TooManyArgs`] (over [`MAX_ARGC`]), [`ProtoError::TooLarge`]
/// (payload over [`MAX_REQUEST_PAYLOAD`]): such a request is not sent (a local error, deny in
/// enforce mode).
pub fn encoded_request_len<A: AsRef<[u8]>>(req: &RequestRef<'_, A>) -> Result<usize, ProtoError> {
    Ok(HEADER_LEN + checked_payload_len(req)?)
}

/// Encodes `req` as one frame (header + payload) into `buf` and returns the frame length.
/// **Does not allocate**: usable in the library's hook path, including in a `vfork` child.
///
/// Errors: those of [`encoded_request_len`], and [`ProtoError::BufferTooSmall`] when `buf`
/// is shorter than the frame (nothing useful is written then).
pub fn encode_request<A: AsRef<[u8]>>(
    req: &RequestRef<'_, A>,
    buf: &mut [u8],
) -> Result<usize, ProtoError> {
    let payload_len = checked_payload_len(req)?;
    let needed = HEADER_LEN + payload_len;
    let available = buf.len();
    let Some((header, payload)) = buf
        .get_mut(..needed)
        .and_then(|frame| frame.split_first_chunk_mut::<HEADER_LEN>())
    else {
        return Err(ProtoError::BufferTooSmall { needed, available });
    };
    *header = header_bytes(payload_len);
    let mut pos = 0usize;
    visit_payload(req, &mut |segment: Segment<'_>| -> Result<(), ProtoError> {
        let bytes = segment.as_bytes();
        let end = pos.saturating_add(bytes.len());
        let Some(dst) = payload.get_mut(pos..end) else {
            return Err(ProtoError::BufferTooSmall { needed, available });
        };
        dst.copy_from_slice(bytes);
        pos = end;
        Ok(())
    })?;
    Ok(needed)
}

/// Encodes `req` as one frame by handing its pieces, in order, to `sink`; returns the frame
/// length. **Does not allocate.**
///
/// This is the streaming form of [`encode_request`] for requests too big for a stack buffer
/// (up to 4 MiB): the header and length prefixes arrive as small [`Segment::Inline`] values,
/// the request's byte strings as [`Segment::Borrowed`] slices of the caller's own memory, fit
/// for `iovec`s. The limits are checked (one counting pass) before the first segment is
/// emitted, so a refused request emits nothing. A sink error stops the encoding and is
/// returned as is.
pub fn encode_request_with<'a, A, E, F>(req: &RequestRef<'a, A>, mut sink: F) -> Result<usize, E>
where
    A: AsRef<[u8]>,
    E: From<ProtoError>,
    F: FnMut(Segment<'a>) -> Result<(), E>,
{
    let payload_len = checked_payload_len(req)?;
    sink(Segment::Inline(Inline::raw(&header_bytes(payload_len))))?;
    visit_payload(req, &mut sink)?;
    Ok(HEADER_LEN + payload_len)
}

/// Encodes `req` into a new `Vec` (allocates; for the daemon side, tests and tools).
pub fn encode_request_to_vec<A: AsRef<[u8]>>(
    req: &RequestRef<'_, A>,
) -> Result<Vec<u8>, ProtoError> {
    let mut out = alloc::vec![0u8; encoded_request_len(req)?];
    let len = encode_request(req, &mut out)?;
    out.truncate(len);
    Ok(out)
}

/// Decodes one complete request frame (header + payload, nothing more).
///
/// Errors: [`ProtoError::Truncated`], [`ProtoError::BadMagic`],
/// [`ProtoError::UnsupportedVersion`], [`ProtoError::TooLarge`] (declared payload over
/// [`MAX_REQUEST_PAYLOAD`]), [`ProtoError::TrailingBytes`], and those of
/// [`decode_request_payload`].
pub fn decode_request(frame: &[u8]) -> Result<Request, ProtoError> {
    decode_request_payload(split_frame(frame, FrameKind::Request)?)
}

/// Decodes a request payload (the bytes after a header checked with
/// [`read_frame_len`](crate::read_frame_len)).
///
/// Strict and bounded: the payload must be at most [`MAX_REQUEST_PAYLOAD`] bytes
/// ([`ProtoError::TooLarge`]) and hold exactly one request ([`ProtoError::TrailingBytes`]);
/// argv may not declare more than [`MAX_ARGC`] entries ([`ProtoError::TooManyArgs`]); unknown
/// flag bits are refused ([`ProtoError::UnknownFlags`]); anything else undecodable is
/// [`ProtoError::Malformed`] naming the field. Bytes are copied out only after they have been
/// seen in the payload, and decoding runs under a bincode limit of [`REQUEST_DECODE_LIMIT`].
pub fn decode_request_payload(payload: &[u8]) -> Result<Request, ProtoError> {
    const KIND: FrameKind = FrameKind::Request;
    if payload.len() > MAX_REQUEST_PAYLOAD {
        return Err(ProtoError::TooLarge {
            kind: KIND,
            len: payload.len(),
            max: MAX_REQUEST_PAYLOAD,
        });
    }
    let config = WIRE_CONFIG.with_limit::<REQUEST_DECODE_LIMIT>();
    let mut dec = DecoderImpl::new(Cursor::new(payload), config, ());

    fn field<T>(name: &'static str, r: Result<T, DecodeError>) -> Result<T, ProtoError> {
        r.map_err(|e| malformed(KIND, name, e))
    }
    fn bytes<'p, D: bincode::de::BorrowDecoder<'p, Context = ()>>(
        name: &'static str,
        dec: &mut D,
    ) -> Result<Vec<u8>, ProtoError> {
        let slice: &'p [u8] = field(name, BorrowDecode::borrow_decode(dec))?;
        Ok(slice.to_vec())
    }

    let tag = field("entry", u32::decode(&mut dec))?;
    let entry = EntryPoint::from_wire(tag).ok_or(ProtoError::Malformed {
        kind: KIND,
        field: "entry",
        problem: crate::DecodeProblem::UnknownTag(tag),
    })?;
    let bits = field("flags", u32::decode(&mut dec))?;
    let flags = Flags::from_bits(bits).ok_or(ProtoError::UnknownFlags {
        bits: bits & !Flags::all().bits(),
        known: Flags::all().bits(),
    })?;
    let tag = field("mode", u32::decode(&mut dec))?;
    let mode = Mode::from_wire(tag).ok_or(ProtoError::Malformed {
        kind: KIND,
        field: "mode",
        problem: crate::DecodeProblem::UnknownTag(tag),
    })?;
    let pid = field("pid", i32::decode(&mut dec))?;
    let ppid = field("ppid", i32::decode(&mut dec))?;
    let uid = field("uid", u32::decode(&mut dec))?;
    let path = bytes("path", &mut dec)?;
    let requested = bytes("requested", &mut dec)?;
    let cwd = bytes("cwd", &mut dec)?;
    let agent = bytes("agent", &mut dec)?;
    let session = bytes("session", &mut dec)?;
    let interpreter = match field("interpreter", u8::decode(&mut dec))? {
        0 => None,
        1 => Some(bytes("interpreter", &mut dec)?),
        tag => {
            return Err(ProtoError::Malformed {
                kind: KIND,
                field: "interpreter",
                problem: crate::DecodeProblem::UnknownTag(u32::from(tag)),
            });
        }
    };
    let count = field("argv", u64::decode(&mut dec))?;
    if count > MAX_ARGC as u64 {
        return Err(ProtoError::TooManyArgs {
            count,
            max: MAX_ARGC,
        });
    }
    // `count <= MAX_ARGC`, so it fits in usize.
    let count = count as usize;
    field("argv", dec.claim_container_read::<Vec<u8>>(count))?;
    // Every entry takes at least its 8-byte length prefix: never reserve for entries the
    // payload cannot hold.
    let mut argv = Vec::with_capacity(count.min(dec.reader().remaining() / 8));
    for _ in 0..count {
        argv.push(bytes("argv", &mut dec)?);
    }
    let left = dec.reader().remaining();
    if left != 0 {
        return Err(ProtoError::TrailingBytes {
            kind: KIND,
            count: left,
        });
    }
    Ok(Request {
        entry,
        flags,
        mode,
        pid,
        ppid,
        uid,
        path,
        requested,
        cwd,
        agent,
        session,
        interpreter,
        argv,
    })
}

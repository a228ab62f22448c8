//! What the target is (preload spec R8), found out before asking: set-id bits and file
//! capabilities, the ELF header (class, machine, `PT_INTERP`, the Go build-id note), a `#!`
//! interpreter, and fileless targets. The daemon's policy decides what the flags mean
//! (`rampart serve --strict` denies what the library cannot follow).

use core::ffi::c_char;

use rampart_proto::Flags;

/// Bytes read from the start of the file: the ELF header and, for ordinary binaries, all
/// program headers; or a `#!` line.
const HEAD: usize = 2048;
/// Longest interpreter path reported.
const INTERP_CAP: usize = 256;

#[cfg(target_arch = "x86_64")]
const OUR_MACHINE: u16 = 62; // EM_X86_64
#[cfg(target_arch = "x86_64")]
const OUR_LOADER: &[u8] = b"ld-linux-x86-64.so.2";
#[cfg(target_arch = "aarch64")]
const OUR_MACHINE: u16 = 183; // EM_AARCH64
#[cfg(target_arch = "aarch64")]
const OUR_LOADER: &[u8] = b"ld-linux-aarch64.so.1";

const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
/// `NT_GO_BUILDID`, in a note owned by "Go".
const NT_GO_BUILDID: u32 = 4;

/// The findings.
pub struct Target {
    pub flags: Flags,
    interpreter: [u8; INTERP_CAP],
    interpreter_len: usize,
}

impl Target {
    pub fn new() -> Target {
        Target {
            flags: Flags::empty(),
            interpreter: [0; INTERP_CAP],
            interpreter_len: 0,
        }
    }

    /// The `#!` interpreter, when the target is a script.
    pub fn interpreter(&self) -> Option<&[u8]> {
        if self.flags.contains(Flags::SCRIPT) {
            self.interpreter.get(..self.interpreter_len)
        } else {
            None
        }
    }
}

/// Inspects the file at `path` (NUL-terminated), whose `stat` is `st`.
pub fn inspect(path: *const c_char, st: &libc::stat, out: &mut Target) {
    if st.st_mode & (libc::S_ISUID | libc::S_ISGID) != 0 || has_capabilities(path) {
        out.flags |= Flags::SETUID;
    }
    // SAFETY: path is NUL-terminated; the descriptor is CLOEXEC and closed below.
    let fd = unsafe { libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY) };
    if fd < 0 {
        // Execute-only files cannot be read: nothing more to learn.
        return;
    }
    let mut head = [0u8; HEAD];
    let n = read_at(fd, &mut head, 0);
    let head = head.get(..n).unwrap_or_default();
    if let Some(line) = head.strip_prefix(b"#!") {
        script(line, out);
    } else if head.starts_with(b"\x7fELF") {
        elf(fd, head, out);
    }
    // SAFETY: we opened fd.
    unsafe { libc::close(fd) };
}

/// Whether the file carries a `security.capability` extended attribute (AT_SECURE on exec).
fn has_capabilities(path: *const c_char) -> bool {
    // SAFETY: a size query (NULL buffer, 0 length) of a NUL-terminated path.
    let r = unsafe {
        libc::getxattr(
            path,
            c"security.capability".as_ptr(),
            core::ptr::null_mut(),
            0,
        )
    };
    r > 0
}

/// Fills `buf` from `offset`: from the bytes already read (`head`) when they cover it, else
/// with one `pread`. Returns how many bytes were filled.
fn fetch(fd: i32, head: &[u8], buf: &mut [u8], offset: u64) -> usize {
    let cached = usize::try_from(offset)
        .ok()
        .and_then(|start| head.get(start..start.checked_add(buf.len())?));
    match cached {
        Some(bytes) => {
            buf.copy_from_slice(bytes);
            buf.len()
        }
        None => read_at(fd, buf, offset),
    }
}

fn read_at(fd: i32, buf: &mut [u8], offset: u64) -> usize {
    let Ok(off) = libc::off_t::try_from(offset) else {
        return 0;
    };
    // SAFETY: buf is writable for buf.len() bytes.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off) };
    usize::try_from(n).unwrap_or(0)
}

/// `#!interpreter [arg]`: the interpreter path, leading blanks skipped.
fn script(line: &[u8], out: &mut Target) {
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let start = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    let rest = line.get(start..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\t' || b == b'\r')
        .unwrap_or(rest.len());
    let interp = rest.get(..end).unwrap_or_default();
    out.flags |= Flags::SCRIPT;
    let len = interp.len().min(INTERP_CAP);
    if let (Some(dst), Some(src)) = (out.interpreter.get_mut(..len), interp.get(..len)) {
        dst.copy_from_slice(src);
        out.interpreter_len = len;
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(s.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// ELF64 little-endian, our machine, our loader; no `PT_INTERP` → static; a Go note → go.
fn elf(fd: i32, head: &[u8], out: &mut Target) {
    let class64 = head.get(4) == Some(&2);
    let little = head.get(5) == Some(&1);
    if !class64 || !little || u16_at(head, 18) != Some(OUR_MACHINE) {
        out.flags |= Flags::FOREIGN_CLASS;
        return;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (u64_at(head, 32), u16_at(head, 54), u16_at(head, 56))
    else {
        return;
    };
    let mut has_interp = false;
    for i in 0..u64::from(phnum.min(256)) {
        let Some(at) = i
            .checked_mul(u64::from(phentsize))
            .and_then(|o| o.checked_add(phoff))
        else {
            break;
        };
        let mut ph = [0u8; 56];
        if fetch(fd, head, &mut ph, at) != ph.len() {
            break;
        }
        let (Some(kind), Some(offset), Some(size)) =
            (u32_at(&ph, 0), u64_at(&ph, 8), u64_at(&ph, 32))
        else {
            break;
        };
        match kind {
            PT_INTERP => {
                has_interp = true;
                let mut interp = [0u8; INTERP_CAP];
                let want = usize::try_from(size).unwrap_or(INTERP_CAP).min(INTERP_CAP);
                let n = fetch(fd, head, interp.get_mut(..want).unwrap_or_default(), offset);
                let name = interp.get(..n).unwrap_or_default();
                let name = name.split(|&b| b == 0).next().unwrap_or_default();
                let base = name.rsplit(|&b| b == b'/').next().unwrap_or_default();
                if base != OUR_LOADER {
                    out.flags |= Flags::FOREIGN_CLASS;
                }
            }
            PT_NOTE if go_note(fd, head, offset, size) => out.flags |= Flags::GO,
            _ => {}
        }
    }
    if !has_interp {
        out.flags |= Flags::STATIC;
    }
}

/// Whether the note segment at `offset` holds a Go build id.
fn go_note(fd: i32, head: &[u8], offset: u64, size: u64) -> bool {
    let mut notes = [0u8; 512];
    let want = usize::try_from(size)
        .unwrap_or(notes.len())
        .min(notes.len());
    let n = fetch(fd, head, notes.get_mut(..want).unwrap_or_default(), offset);
    let notes = notes.get(..n).unwrap_or_default();
    let mut at = 0usize;
    while let (Some(namesz), Some(descsz), Some(kind)) = (
        u32_at(notes, at),
        u32_at(notes, at.saturating_add(4)),
        u32_at(notes, at.saturating_add(8)),
    ) {
        let namesz = usize::try_from(namesz).unwrap_or(usize::MAX);
        let descsz = usize::try_from(descsz).unwrap_or(usize::MAX);
        let name_at = at.saturating_add(12);
        let name = notes.get(name_at..name_at.saturating_add(namesz));
        if kind == NT_GO_BUILDID && name.is_some_and(|n| n.starts_with(b"Go\0")) {
            return true;
        }
        let aligned = |n: usize| n.saturating_add(3) & !3;
        at = name_at
            .saturating_add(aligned(namesz))
            .saturating_add(aligned(descsz));
    }
    false
}

/// Whether a `/proc/self/fd` link target is fileless (`memfd:` or a deleted file).
pub fn is_fileless(target: &[u8]) -> bool {
    target.starts_with(b"/memfd:") || target.ends_with(b" (deleted)")
}

//! C strings and NULL-terminated pointer arrays as borrowed byte slices, and a fixed-capacity
//! byte buffer for composing paths on the stack.

use core::ffi::{CStr, c_char};

/// The bytes of a NUL-terminated string (without the NUL); empty for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// One entry of a C `argv`/`envp` array, read as bytes on demand: lets the wire encoder take
/// the caller's own array as a slice without copying it.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct CArg(pub *const c_char);

impl AsRef<[u8]> for CArg {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: a CArg only ever wraps an entry of a live argv/envp array or a string the
        // hook was given, both NUL-terminated and alive for the whole hook.
        unsafe { bytes(self.0) }
    }
}

/// Number of entries before the NULL terminator of `arr` (0 for a NULL array).
///
/// # Safety
/// `arr` is NULL or a NULL-terminated array of pointers.
pub unsafe fn count(arr: *const *const c_char) -> usize {
    if arr.is_null() {
        return 0;
    }
    let mut n = 0usize;
    // SAFETY: the array is NULL-terminated, so every read up to the terminator is in bounds.
    while !unsafe { *arr.add(n) }.is_null() {
        n = n.wrapping_add(1);
    }
    n
}

/// The entries of a NULL-terminated array as a slice of [`CArg`] (without the terminator).
///
/// # Safety
/// As for [`count`]; the array outlives `'a`.
pub unsafe fn args<'a>(arr: *const *const c_char) -> &'a [CArg] {
    // SAFETY: `count` entries are valid pointers and CArg is a transparent pointer.
    unsafe {
        let n = count(arr);
        if n == 0 {
            return &[];
        }
        core::slice::from_raw_parts(arr.cast::<CArg>(), n)
    }
}

/// When `entry` (`NAME=value`) has the name `name`, its value.
pub fn value_of<'a>(entry: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = entry.strip_prefix(name)?;
    rest.strip_prefix(b"=")
}

/// A byte buffer of fixed capacity, always keeping room for a terminating NUL, so the
/// content can be handed to a system call as a C string.
pub struct PathBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

/// Capacity of the path buffers: `PATH_MAX` plus the terminator.
pub const PATH_CAP: usize = 4097;

impl<const N: usize> PathBuf<N> {
    pub const fn new() -> Self {
        PathBuf {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends `bytes`; false (and nothing appended) when they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len.saturating_add(bytes.len());
        if end >= N {
            return false;
        }
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
                if let Some(nul) = self.buf.get_mut(end) {
                    *nul = 0;
                }
                true
            }
            None => false,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        if let Some(nul) = self.buf.get_mut(0) {
            *nul = 0;
        }
    }

    /// Cuts the content back to `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            if let Some(nul) = self.buf.get_mut(len) {
                *nul = 0;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The content as a C string (the buffer always holds a NUL after it).
    pub fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }

    /// The whole buffer, for system calls that write into it (`getcwd`, `readlink`);
    /// follow with [`PathBuf::set_len`].
    pub fn raw(&mut self) -> &mut [u8; N] {
        &mut self.buf
    }

    /// Declares the first `len` bytes (written through [`PathBuf::raw`]) as the content.
    pub fn set_len(&mut self, len: usize) {
        let len = len.min(N.saturating_sub(1));
        self.len = len;
        if let Some(nul) = self.buf.get_mut(len) {
            *nul = 0;
        }
    }
}

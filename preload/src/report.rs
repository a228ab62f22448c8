//! The lines the library writes to stderr (R12): composed on the stack, emitted with one
//! `write(2, …)` (never a cached descriptor, never a stdio lock), commands cut to a bounded
//! length with control bytes shown as `?`.

use crate::cstr::CArg;

/// Longest command excerpt in a line.
const COMMAND_EXCERPT: usize = 200;

/// One line being composed.
pub struct Line {
    buf: [u8; 768],
    len: usize,
}

impl Line {
    pub fn new() -> Line {
        let mut line = Line {
            buf: [0; 768],
            len: 0,
        };
        line.text(b"rampart: ");
        line
    }

    /// Appends bytes as they are (cut when the line is full).
    pub fn text(&mut self, bytes: &[u8]) -> &mut Line {
        for &b in bytes {
            // Keep one byte for the newline.
            if self.len.saturating_add(1) >= self.buf.len() {
                break;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len = self.len.saturating_add(1);
            }
        }
        self
    }

    /// Appends untrusted bytes: control bytes become `?`, at most `max` bytes, `…` when cut.
    pub fn excerpt(&mut self, bytes: &[u8], max: usize) -> &mut Line {
        let mut written = 0usize;
        for &b in bytes {
            if written >= max {
                return self.text("…".as_bytes());
            }
            let shown = if b < 0x20 || b == 0x7f { b'?' } else { b };
            self.text(&[shown]);
            written = written.saturating_add(1);
        }
        self
    }

    /// Appends the command: argv joined with spaces, bounded.
    pub fn command(&mut self, argv: &[CArg]) -> &mut Line {
        let mut budget = COMMAND_EXCERPT;
        for (i, arg) in argv.iter().enumerate() {
            if i > 0 {
                self.text(b" ");
                budget = budget.saturating_sub(1);
            }
            let bytes = arg.as_ref();
            if bytes.len() > budget {
                self.excerpt(bytes, budget);
                if !self.as_bytes().ends_with("…".as_bytes()) {
                    self.text("…".as_bytes());
                }
                return self;
            }
            self.excerpt(bytes, budget);
            budget = budget.saturating_sub(bytes.len());
        }
        self
    }

    pub fn number(&mut self, n: u64) -> &mut Line {
        let mut digits = [0u8; 20];
        let d = decimal(n, &mut digits);
        self.text(d)
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Writes the line (with its newline) to stderr in one call; errors are ignored (there
    /// is nowhere else to report them).
    pub fn emit(&mut self) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b'\n';
        }
        let len = self.len.saturating_add(1).min(self.buf.len());
        // SAFETY: writing `len` initialized bytes of our own buffer to fd 2.
        let _ = unsafe { libc::write(2, self.buf.as_ptr().cast(), len) };
    }
}

/// Index of the first digit `decimal` writes for `n` into a 20-byte buffer.
fn digits_start(n: u64) -> usize {
    let mut count = 1usize;
    let mut rest = n / 10;
    while rest > 0 {
        count = count.saturating_add(1);
        rest /= 10;
    }
    20usize.saturating_sub(count)
}

/// `n` in decimal, written at the end of `buf`; returns the digits.
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let start = digits_start(n);
    let mut rest = n;
    let mut i = 20usize;
    while i > start {
        i = i.saturating_sub(1);
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0'.saturating_add((rest % 10) as u8);
        }
        rest /= 10;
    }
    buf.get(start..).unwrap_or_default()
}

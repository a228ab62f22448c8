//! The library-side paths never touch the heap: a counting global allocator proves that
//! encoding a request (into a buffer, or as segments), sizing it, checking a header and
//! decoding a reply in place make zero allocations, on success and on error.
//!
//! Counting is per thread, so the test harness's own threads cannot disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rampart_proto::*;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the slot may be gone while a thread is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call unchanged to the system allocator; the counter is a
// const-initialized thread-local `Cell` (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations it made on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = std::hint::black_box(f());
    (out, ALLOCATIONS.with(Cell::get) - before)
}

const ARGV: [&[u8]; 5] = [b"cc", b"-o", b"out", b"caf\xe9.c", b""];

fn request<'a>(argv: &'a [&'a [u8]]) -> RequestRef<'a> {
    RequestRef {
        entry: EntryPoint::Execve,
        flags: Flags::STATIC | Flags::SCRIPT,
        mode: Mode::Enforce,
        pid: 10,
        ppid: 9,
        uid: 1000,
        path: b"/usr/bin/cc",
        requested: b"cc",
        cwd: b"/src",
        agent: b"preload",
        session: b"preload-9",
        interpreter: Some(b"/bin/sh"),
        argv,
    }
}

#[test]
fn the_counter_sees_allocations() {
    let (_, n) = allocations(|| vec![1u8; 64]);
    assert!(n >= 1, "the counting allocator is not in use");
}

#[test]
fn encoding_a_request_into_a_buffer_does_not_allocate() {
    let req = request(&ARGV);
    let mut buf = [0u8; 1024];
    let (len, n) = allocations(|| encode_request(&req, &mut buf));
    let len = len.unwrap();
    assert_eq!(n, 0, "encode_request allocated");
    // And it is the real thing.
    assert_eq!(decode_request(&buf[..len]).unwrap(), req.to_request());

    let (size, n) = allocations(|| encoded_request_len(&req));
    assert_eq!((size.unwrap(), n), (len, 0));
}

#[test]
fn streaming_a_request_does_not_allocate() {
    let req = request(&ARGV);
    // What the library does: small pieces into a stack staging buffer, big ones referenced.
    let mut staging = [0u8; 512];
    let mut staged = 0usize;
    let mut borrowed = 0usize;
    let (len, n) = allocations(|| {
        encode_request_with(&req, |seg| -> Result<(), ProtoError> {
            match seg {
                Segment::Inline(inline) => {
                    let bytes = inline.as_bytes();
                    staging[staged..staged + bytes.len()].copy_from_slice(bytes);
                    staged += bytes.len();
                }
                Segment::Borrowed(bytes) => borrowed += bytes.len(),
            }
            Ok(())
        })
    });
    assert_eq!(n, 0, "encode_request_with allocated");
    assert_eq!(len.unwrap(), staged + borrowed);
}

#[test]
fn a_four_mib_request_encodes_without_allocating() {
    // Allocated up front, outside the measured region.
    let big = vec![b'a'; 1 << 20];
    let argv: Vec<&[u8]> = vec![&big[..]; 3];
    let req = request(&argv);
    let mut buf = vec![0u8; MAX_REQUEST_PAYLOAD + HEADER_LEN];
    let (len, n) = allocations(|| encode_request(&req, &mut buf));
    assert_eq!(n, 0);
    assert!(len.unwrap() > 3 << 20);
}

#[test]
fn encoder_errors_do_not_allocate() {
    let req = request(&ARGV);
    let mut small = [0u8; 16];
    let (r, n) = allocations(|| encode_request(&req, &mut small));
    assert!(matches!(r, Err(ProtoError::BufferTooSmall { .. })));
    assert_eq!(n, 0);

    let many: Vec<&[u8]> = vec![b""; MAX_ARGC + 1];
    let req = request(&many);
    let (r, n) = allocations(|| encode_request(&req, &mut small));
    assert!(matches!(r, Err(ProtoError::TooManyArgs { .. })));
    assert_eq!(n, 0);

    let huge = vec![0u8; MAX_REQUEST_PAYLOAD];
    let argv: [&[u8]; 1] = [&huge];
    let req = request(&argv);
    let (r, n) = allocations(|| encoded_request_len(&req));
    assert!(matches!(r, Err(ProtoError::TooLarge { .. })));
    assert_eq!(n, 0);
}

#[test]
fn decoding_a_reply_in_place_does_not_allocate() {
    let replies = [
        Reply::Allow,
        Reply::Deny {
            errno: EPERM,
            message: "block-destructive: Destructive command blocked".into(),
        },
        Reply::Pending {
            approval_id: "01J9Z8QK3V8T2N6G5R4W7X1Y0A".into(),
        },
    ];
    for reply in replies {
        let mut frame = Vec::new();
        encode_reply(&reply, &mut frame).unwrap();

        // What the library does: the header, then exactly `len` payload bytes, all on the stack.
        let mut stack = [0u8; 256];
        stack[..frame.len()].copy_from_slice(&frame);
        let (decoded, n) = allocations(|| {
            let header: &[u8; HEADER_LEN] = stack[..HEADER_LEN].try_into().unwrap();
            let (_, len) = read_reply_frame_len(header)?;
            let whole = decode_reply_ref(&stack[..HEADER_LEN + len])?;
            let payload = decode_reply_payload_ref(&stack[HEADER_LEN..HEADER_LEN + len])?;
            assert_eq!(whole, payload);
            Ok::<_, ProtoError>(whole)
        });
        assert_eq!(n, 0, "reply decoding allocated for {reply:?}");
        assert_eq!(decoded.unwrap(), reply.view());

        // Encoding a reply into a buffer does not allocate either.
        let mut out = [0u8; 256];
        let (len, n) = allocations(|| encode_reply_into(&reply.view(), &mut out));
        assert_eq!(n, 0);
        assert_eq!(&out[..len.unwrap()], &frame[..]);
    }
}

#[test]
fn reply_decoder_errors_do_not_allocate() {
    let bad: [&[u8]; 6] = [
        b"RMP",
        b"XXXX\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00",
        b"RMPT\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00",
        b"RMPT\x01\x00\x04\x00\x00\x00\x09\x00\x00\x00",
        b"RMPT\x01\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00",
        b"RMPT\x01\x00\x0d\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xff",
    ];
    for frame in bad {
        let (r, n) = allocations(|| decode_reply_ref(frame));
        assert!(r.is_err(), "{frame:?}");
        assert_eq!(n, 0, "{frame:?}: {r:?}");
    }
}

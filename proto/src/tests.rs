//! Unit tests: round trips, every error case, limits.

extern crate std;

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use crate::*;

const ARGV: [&[u8]; 4] = [b"grep", b"-r", b"caf\xe9 \xff\xfe\x00nul", b""];

fn sample() -> RequestRef<'static> {
    RequestRef {
        entry: EntryPoint::PosixSpawnp,
        flags: Flags::SCRIPT | Flags::ENV_SCRUBBED,
        mode: Mode::Monitor,
        pid: 4242,
        ppid: -1,
        uid: 1000,
        path: b"/usr/bin/grep",
        requested: b"grep",
        cwd: b"/home/\x80me",
        agent: b"preload",
        session: b"preload-77",
        interpreter: Some(b"/bin/sh"),
        argv: &ARGV,
    }
}

fn encode(req: &RequestRef<'_>) -> Vec<u8> {
    encode_request_to_vec(req).unwrap()
}

/// A frame with a valid header around an arbitrary request payload.
fn request_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(b"RMPT");
    frame.extend_from_slice(&1u16.to_le_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The fixed part of a request payload (entry, flags, mode, pid, ppid, uid), little endian.
fn fixed(entry: u32, flags: u32, mode: u32) -> Vec<u8> {
    let mut p = Vec::new();
    for v in [entry, flags, mode, 1, 2, 3] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p
}

fn empty_bytes_fields(p: &mut Vec<u8>, n: usize) {
    for _ in 0..n {
        p.extend_from_slice(&0u64.to_le_bytes());
    }
}

fn malformed_field(err: ProtoError) -> (&'static str, DecodeProblem) {
    match err {
        ProtoError::Malformed { field, problem, .. } => (field, problem),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

// ---- requests: round trips ----

#[test]
fn request_round_trip_preserves_everything() {
    let req = sample();
    let frame = encode(&req);
    let back = decode_request(&frame).unwrap();
    assert_eq!(back, req.to_request());
    assert_eq!(back.entry, EntryPoint::PosixSpawnp);
    assert_eq!(back.flags, Flags::SCRIPT | Flags::ENV_SCRUBBED);
    assert_eq!(back.mode, Mode::Monitor);
    assert_eq!((back.pid, back.ppid, back.uid), (4242, -1, 1000));
    assert_eq!(back.cwd, b"/home/\x80me");
    assert_eq!(back.interpreter.as_deref(), Some(&b"/bin/sh"[..]));
    // Non-UTF-8 bytes, an embedded NUL and an empty entry survive unchanged.
    let expected: Vec<Vec<u8>> = ARGV.iter().map(|a| a.to_vec()).collect();
    assert_eq!(back.argv, expected);
    // Canonical: re-encoding gives the same bytes.
    assert_eq!(encode_request_to_vec(&back.view()).unwrap(), frame);
}

#[test]
fn request_without_interpreter_and_argv_round_trips() {
    let req = RequestRef {
        interpreter: None,
        argv: &[],
        path: b"",
        ..sample()
    };
    let back = decode_request(&encode(&req)).unwrap();
    assert_eq!(back.interpreter, None);
    assert!(back.argv.is_empty());
    assert!(back.path.is_empty());
}

#[test]
fn every_entry_point_and_mode_round_trips() {
    for entry in EntryPoint::ALL {
        for mode in [Mode::Enforce, Mode::Monitor] {
            let req = RequestRef {
                entry,
                mode,
                ..sample()
            };
            let back = decode_request(&encode(&req)).unwrap();
            assert_eq!((back.entry, back.mode), (entry, mode));
        }
        assert_eq!(EntryPoint::from_wire(entry.to_wire()), Some(entry));
    }
    assert_eq!(EntryPoint::from_wire(15), None);
    assert_eq!(EntryPoint::PosixSpawn.as_str(), "posix_spawn");
    assert_eq!(EntryPoint::SyscallExecveat.to_string(), "syscall_execveat");
    assert!(EntryPoint::Popen.is_shell() && !EntryPoint::Execve.is_shell());
}

#[test]
fn all_flags_round_trip_and_have_labels() {
    let req = RequestRef {
        flags: Flags::all(),
        ..sample()
    };
    assert_eq!(decode_request(&encode(&req)).unwrap().flags, Flags::all());
    let labels: Vec<&str> = Flags::all().labels().collect();
    assert_eq!(
        labels,
        [
            "static",
            "go",
            "setuid",
            "foreign-class",
            "memfd",
            "env-scrubbed",
            "script",
            "relative-unresolved"
        ]
    );
    for label in labels {
        assert_eq!(
            Flags::from_label(label).unwrap().labels().next(),
            Some(label)
        );
    }
    assert_eq!(Flags::from_label("STATIC"), None);
    assert_eq!(Flags::empty().labels().count(), 0);
}

#[test]
fn wire_layout_of_the_fixed_part_and_header() {
    let frame = encode(&sample());
    assert_eq!(&frame[..4], b"RMPT");
    assert_eq!(&frame[4..6], &[1, 0]);
    assert_eq!(
        u32::from_le_bytes(frame[6..10].try_into().unwrap()) as usize,
        frame.len() - HEADER_LEN
    );
    let p = &frame[HEADER_LEN..];
    assert_eq!(&p[0..4], &10u32.to_le_bytes()); // posix_spawnp
    assert_eq!(
        &p[4..8],
        &(Flags::SCRIPT | Flags::ENV_SCRUBBED).bits().to_le_bytes()
    );
    assert_eq!(&p[8..12], &1u32.to_le_bytes()); // monitor
    assert_eq!(&p[12..16], &4242i32.to_le_bytes());
    assert_eq!(&p[16..20], &(-1i32).to_le_bytes());
    assert_eq!(&p[20..24], &1000u32.to_le_bytes());
    assert_eq!(&p[24..32], &13u64.to_le_bytes());
    assert_eq!(&p[32..45], b"/usr/bin/grep");
}

#[test]
fn owned_request_encodes_like_the_borrowed_one() {
    let frame = encode(&sample());
    let owned = decode_request(&frame).unwrap();
    let mut buf = vec![0u8; frame.len()];
    assert_eq!(
        encode_request(&owned.view(), &mut buf).unwrap(),
        frame.len()
    );
    assert_eq!(buf, frame);
}

// ---- requests: encoder ----

#[test]
fn encoded_len_matches_and_buffer_is_checked() {
    let req = sample();
    let len = encoded_request_len(&req).unwrap();
    let mut big = vec![0xAAu8; len + 7];
    assert_eq!(encode_request(&req, &mut big).unwrap(), len);
    assert!(
        big[len..].iter().all(|&b| b == 0xAA),
        "wrote past the frame"
    );
    let mut exact = vec![0u8; len];
    assert_eq!(encode_request(&req, &mut exact).unwrap(), len);
    assert_eq!(exact, big[..len]);
    let mut short = vec![0u8; len - 1];
    assert_eq!(
        encode_request(&req, &mut short),
        Err(ProtoError::BufferTooSmall {
            needed: len,
            available: len - 1
        })
    );
}

#[test]
fn segments_concatenate_to_the_frame_and_borrow_the_callers_bytes() {
    let req = sample();
    let mut joined = Vec::new();
    let mut borrowed = Vec::new();
    let n = encode_request_with(&req, |seg: Segment<'static>| -> Result<(), ProtoError> {
        joined.extend_from_slice(seg.as_bytes());
        if let Segment::Borrowed(bytes) = seg {
            assert!(!bytes.is_empty());
            borrowed.push(bytes.as_ptr());
        } else {
            assert!(seg.as_bytes().len() <= INLINE_CAP);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(joined, encode(&req));
    assert_eq!(n, joined.len());
    // Every argv entry that is not empty went out as a pointer into the caller's memory.
    for arg in ARGV.iter().filter(|a| !a.is_empty()) {
        assert!(borrowed.contains(&arg.as_ptr()));
    }
}

#[test]
fn sink_errors_stop_the_encoder() {
    #[derive(Debug, PartialEq)]
    enum SendError {
        Proto(ProtoError),
        Pipe,
    }
    impl From<ProtoError> for SendError {
        fn from(e: ProtoError) -> Self {
            SendError::Proto(e)
        }
    }
    let mut calls = 0;
    let r = encode_request_with(&sample(), |_seg| {
        calls += 1;
        if calls == 3 {
            Err(SendError::Pipe)
        } else {
            Ok(())
        }
    });
    assert_eq!(r, Err(SendError::Pipe));
    assert_eq!(calls, 3);
    // Limit errors arrive through `From<ProtoError>` before anything is emitted.
    let many: Vec<&[u8]> = vec![b""; MAX_ARGC + 1];
    let mut emitted = 0;
    let r = encode_request_with(
        &RequestRef {
            argv: &many,
            ..sample()
        },
        |_seg| {
            emitted += 1;
            Ok::<(), SendError>(())
        },
    );
    assert_eq!(
        r,
        Err(SendError::Proto(ProtoError::TooManyArgs {
            count: MAX_ARGC as u64 + 1,
            max: MAX_ARGC
        }))
    );
    assert_eq!(emitted, 0);
}

/// A request with empty fields and one argv entry whose payload is exactly `payload` bytes.
fn request_of_payload_len(payload: usize, storage: &mut Vec<u8>) -> usize {
    // fixed 24 + five empty bytes fields 40 + interpreter tag 1 + argc 8 + arg length 8
    let overhead = 24 + 40 + 1 + 8 + 8;
    storage.resize(payload - overhead, b'x');
    overhead
}

#[test]
fn request_payload_limit_is_exact() {
    let mut arg = Vec::new();
    request_of_payload_len(MAX_REQUEST_PAYLOAD, &mut arg);
    let argv = [&arg[..]];
    let req = RequestRef {
        entry: EntryPoint::Execve,
        flags: Flags::empty(),
        mode: Mode::Enforce,
        pid: 0,
        ppid: 0,
        uid: 0,
        path: b"",
        requested: b"",
        cwd: b"",
        agent: b"",
        session: b"",
        interpreter: None,
        argv: &argv,
    };
    assert_eq!(
        encoded_request_len(&req).unwrap(),
        HEADER_LEN + MAX_REQUEST_PAYLOAD
    );
    let frame = encode(&req);
    assert_eq!(decode_request(&frame).unwrap().argv[0].len(), arg.len());

    let mut longer = arg.clone();
    longer.push(b'y');
    let argv = [&longer[..]];
    let over = RequestRef { argv: &argv, ..req };
    let err = ProtoError::TooLarge {
        kind: FrameKind::Request,
        len: MAX_REQUEST_PAYLOAD + 1,
        max: MAX_REQUEST_PAYLOAD,
    };
    assert_eq!(encoded_request_len(&over), Err(err));
    let mut buf = vec![0u8; HEADER_LEN + MAX_REQUEST_PAYLOAD + 1];
    assert_eq!(encode_request(&over, &mut buf), Err(err));
}

#[test]
fn argc_limit_is_exact_on_both_sides() {
    let max: Vec<&[u8]> = vec![b""; MAX_ARGC];
    let frame = encode(&RequestRef {
        argv: &max,
        ..sample()
    });
    assert_eq!(decode_request(&frame).unwrap().argv.len(), MAX_ARGC);

    let over: Vec<&[u8]> = vec![b""; MAX_ARGC + 1];
    assert_eq!(
        encoded_request_len(&RequestRef {
            argv: &over,
            ..sample()
        }),
        Err(ProtoError::TooManyArgs {
            count: MAX_ARGC as u64 + 1,
            max: MAX_ARGC
        })
    );
    // A hand-made payload declaring MAX_ARGC + 1 entries (with the bytes present) is refused.
    let mut p = fixed(0, 0, 0);
    empty_bytes_fields(&mut p, 5);
    p.push(0);
    p.extend_from_slice(&(MAX_ARGC as u64 + 1).to_le_bytes());
    empty_bytes_fields(&mut p, MAX_ARGC + 1);
    assert_eq!(
        decode_request_payload(&p),
        Err(ProtoError::TooManyArgs {
            count: MAX_ARGC as u64 + 1,
            max: MAX_ARGC
        })
    );
}

// ---- requests: decoder errors ----

#[test]
fn truncated_frames_are_refused() {
    let frame = encode(&sample());
    for cut in 0..HEADER_LEN {
        assert_eq!(
            decode_request(&frame[..cut]),
            Err(ProtoError::Truncated {
                kind: FrameKind::Request,
                needed: HEADER_LEN,
                available: cut
            })
        );
    }
    for cut in HEADER_LEN..frame.len() {
        assert_eq!(
            decode_request(&frame[..cut]),
            Err(ProtoError::Truncated {
                kind: FrameKind::Request,
                needed: frame.len(),
                available: cut
            })
        );
    }
}

#[test]
fn truncated_payload_under_a_consistent_header_names_the_field() {
    let frame = encode(&sample());
    let payload = &frame[HEADER_LEN..];
    // Cut inside the fixed part, inside path, and inside the last argv entry.
    let cases: [(usize, &str); 4] = [
        (2, "entry"),
        (22, "uid"),
        (30, "path"),
        (payload.len() - 1, "argv"),
    ];
    for (cut, field) in cases {
        let err = decode_request(&request_frame(&payload[..cut])).unwrap_err();
        assert_eq!(
            malformed_field(err),
            (field, DecodeProblem::UnexpectedEnd),
            "cut {cut}"
        );
    }
}

#[test]
fn bad_magic_is_refused() {
    let mut frame = encode(&sample());
    frame[..4].copy_from_slice(b"HTTP");
    assert_eq!(
        decode_request(&frame),
        Err(ProtoError::BadMagic {
            kind: FrameKind::Request,
            found: *b"HTTP"
        })
    );
    let header: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
    assert!(matches!(
        read_frame_len(&header),
        Err(ProtoError::BadMagic { .. })
    ));
}

#[test]
fn other_versions_are_refused() {
    for version in [0u16, 2, 0x0100, u16::MAX] {
        let mut frame = encode(&sample());
        frame[4..6].copy_from_slice(&version.to_le_bytes());
        let expected = ProtoError::UnsupportedVersion {
            kind: FrameKind::Request,
            found: version,
            supported: VERSION,
        };
        assert_eq!(decode_request(&frame), Err(expected));
        let header: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
        assert_eq!(read_frame_len(&header), Err(expected));
    }
}

#[test]
fn oversized_declared_lengths_are_refused_before_reading() {
    for declared in [MAX_REQUEST_PAYLOAD as u32 + 1, u32::MAX] {
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(b"RMPT");
        header[4..6].copy_from_slice(&1u16.to_le_bytes());
        header[6..].copy_from_slice(&declared.to_le_bytes());
        let err = ProtoError::TooLarge {
            kind: FrameKind::Request,
            len: declared as usize,
            max: MAX_REQUEST_PAYLOAD,
        };
        assert_eq!(read_frame_len(&header), Err(err));
        // The whole-frame decoder refuses on the header alone, whatever follows.
        assert_eq!(decode_request(&header), Err(err));
    }
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(b"RMPT");
    header[4..6].copy_from_slice(&1u16.to_le_bytes());
    header[6..].copy_from_slice(&(MAX_REQUEST_PAYLOAD as u32).to_le_bytes());
    assert_eq!(read_frame_len(&header), Ok((1, MAX_REQUEST_PAYLOAD)));
    // A request-sized frame is too large for a reply.
    assert!(matches!(
        read_reply_frame_len(&header),
        Err(ProtoError::TooLarge {
            kind: FrameKind::Reply,
            max: MAX_REPLY_PAYLOAD,
            ..
        })
    ));
    // An oversized payload handed straight to the payload decoder.
    let big = vec![0u8; MAX_REQUEST_PAYLOAD + 1];
    assert!(matches!(
        decode_request_payload(&big),
        Err(ProtoError::TooLarge { .. })
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    // After the frame.
    let mut frame = encode(&sample());
    frame.extend_from_slice(b"xyz");
    assert_eq!(
        decode_request(&frame),
        Err(ProtoError::TrailingBytes {
            kind: FrameKind::Request,
            count: 3
        })
    );
    // Inside a payload whose header counts them.
    let frame = encode(&sample());
    let mut payload = frame[HEADER_LEN..].to_vec();
    payload.push(0);
    let err = ProtoError::TrailingBytes {
        kind: FrameKind::Request,
        count: 1,
    };
    assert_eq!(decode_request(&request_frame(&payload)), Err(err));
    assert_eq!(decode_request_payload(&payload), Err(err));
}

#[test]
fn garbage_payloads_are_refused_precisely() {
    let tail = |p: &mut Vec<u8>| {
        empty_bytes_fields(p, 5);
        p.push(0);
        p.extend_from_slice(&0u64.to_le_bytes());
    };
    // A well-formed minimal payload decodes.
    let mut ok = fixed(0, 0, 0);
    tail(&mut ok);
    assert!(decode_request_payload(&ok).is_ok());

    let mut p = fixed(15, 0, 0);
    tail(&mut p);
    assert_eq!(
        malformed_field(decode_request_payload(&p).unwrap_err()),
        ("entry", DecodeProblem::UnknownTag(15))
    );

    let mut p = fixed(0, 0, 2);
    tail(&mut p);
    assert_eq!(
        malformed_field(decode_request_payload(&p).unwrap_err()),
        ("mode", DecodeProblem::UnknownTag(2))
    );

    let mut p = fixed(0, 0x8000_0101, 0);
    tail(&mut p);
    assert_eq!(
        decode_request_payload(&p),
        Err(ProtoError::UnknownFlags {
            bits: 0x8000_0100,
            known: Flags::all().bits()
        })
    );

    let mut p = fixed(0, 0, 0);
    empty_bytes_fields(&mut p, 5);
    p.push(2);
    p.extend_from_slice(&0u64.to_le_bytes());
    assert_eq!(
        malformed_field(decode_request_payload(&p).unwrap_err()),
        ("interpreter", DecodeProblem::UnknownTag(2))
    );

    // A path length larger than the payload but within the limit: short payload.
    let mut p = fixed(0, 0, 0);
    p.extend_from_slice(&1000u64.to_le_bytes());
    assert_eq!(
        malformed_field(decode_request_payload(&p).unwrap_err()),
        ("path", DecodeProblem::UnexpectedEnd)
    );

    // Hostile length prefixes: refused by the decoding limit, nothing reserved.
    for huge in [u64::MAX, 1 << 40, REQUEST_DECODE_LIMIT as u64 + 1] {
        let mut p = fixed(0, 0, 0);
        empty_bytes_fields(&mut p, 2);
        p.extend_from_slice(&huge.to_le_bytes());
        assert_eq!(
            malformed_field(decode_request_payload(&p).unwrap_err()),
            ("cwd", DecodeProblem::LimitExceeded),
            "{huge}"
        );
    }

    // A large argv count with no entries behind it: refused at the first missing entry.
    let mut p = fixed(0, 0, 0);
    empty_bytes_fields(&mut p, 5);
    p.push(0);
    p.extend_from_slice(&(MAX_ARGC as u64).to_le_bytes());
    assert_eq!(
        malformed_field(decode_request_payload(&p).unwrap_err()),
        ("argv", DecodeProblem::UnexpectedEnd)
    );

    // Empty payload.
    assert_eq!(
        malformed_field(decode_request(&request_frame(b"")).unwrap_err()),
        ("entry", DecodeProblem::UnexpectedEnd)
    );
}

#[test]
fn errors_explain_themselves() {
    let e = ProtoError::UnsupportedVersion {
        kind: FrameKind::Request,
        found: 2,
        supported: 1,
    };
    assert_eq!(
        e.to_string(),
        "unsupported protocol version 2 in request frame: this build speaks version 1; \
         upgrade librampart.so and the daemon together"
    );
    let e = ProtoError::Malformed {
        kind: FrameKind::Reply,
        field: "message",
        problem: DecodeProblem::InvalidUtf8,
    };
    assert_eq!(
        e.to_string(),
        "undecodable reply payload at field `message`: the text is not valid UTF-8"
    );
    let e = ProtoError::BadMagic {
        kind: FrameKind::Request,
        found: *b"GET ",
    };
    assert!(e.to_string().contains("[47, 45, 54, 20]"), "{e}");
}

// ---- replies ----

fn replies() -> [Reply; 5] {
    [
        Reply::Allow,
        Reply::Deny {
            errno: EPERM,
            message: "block-destructive: Destructive command blocked".into(),
        },
        Reply::Deny {
            errno: -7,
            message: "".into(),
        },
        Reply::Pending {
            approval_id: "01J9Z8QK3V8T2N6G5R4W7X1Y0A".into(),
        },
        Reply::Deny {
            errno: 13,
            message: "ünïcødé ✓".into(),
        },
    ]
}

#[test]
fn reply_round_trips() {
    for reply in replies() {
        let mut out = vec![0xEE];
        let n = encode_reply(&reply, &mut out).unwrap();
        assert_eq!(n, out.len() - 1);
        assert_eq!(n, encoded_reply_len(&reply.view()).unwrap());
        let frame = &out[1..];
        assert_eq!(decode_reply(frame).unwrap(), reply);
        let view = decode_reply_ref(frame).unwrap();
        assert_eq!(view, reply.view());
        assert_eq!(view.to_reply(), reply);
        assert_eq!(view.is_final(), reply.is_final());
        // In-place decode borrows from the frame.
        if let ReplyRef::Deny { message, .. } = view {
            assert!(frame.as_ptr_range().contains(&message.as_ptr()) || message.is_empty());
        }
        let mut buf = [0u8; 128];
        let m = encode_reply_into(&reply.view(), &mut buf).unwrap();
        assert_eq!(&buf[..m], frame);
        let header: [u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().unwrap();
        let (version, len) = read_reply_frame_len(&header).unwrap();
        assert_eq!((version, len), (VERSION, m - HEADER_LEN));
        assert_eq!(decode_reply_payload_ref(&buf[HEADER_LEN..m]).unwrap(), view);
    }
    assert!(
        !Reply::Pending {
            approval_id: "x".into()
        }
        .is_final()
    );
}

#[test]
fn reply_wire_layout() {
    let mut out = Vec::new();
    encode_reply(&Reply::Allow, &mut out).unwrap();
    assert_eq!(out, b"RMPT\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00");
    out.clear();
    encode_reply(
        &Reply::Deny {
            errno: 1,
            message: "no".into(),
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        b"RMPT\x01\x00\x12\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x02\0\0\0\0\0\0\0no"
    );
}

#[test]
fn reply_limit_is_exact() {
    // tag 4 + errno 4 + length 8
    let fits = "m".repeat(MAX_REPLY_PAYLOAD - 16);
    let reply = Reply::Deny {
        errno: EPERM,
        message: fits.clone(),
    };
    let mut out = Vec::new();
    assert_eq!(
        encode_reply(&reply, &mut out).unwrap(),
        HEADER_LEN + MAX_REPLY_PAYLOAD
    );
    assert_eq!(decode_reply(&out).unwrap(), reply);

    let over = Reply::Deny {
        errno: EPERM,
        message: fits + "m",
    };
    let mut out = vec![1, 2, 3];
    let err = ProtoError::TooLarge {
        kind: FrameKind::Reply,
        len: MAX_REPLY_PAYLOAD + 1,
        max: MAX_REPLY_PAYLOAD,
    };
    assert_eq!(encode_reply(&over, &mut out), Err(err));
    assert_eq!(out, [1, 2, 3], "output untouched on error");
    let mut buf = vec![0u8; 2 * MAX_REPLY_PAYLOAD];
    assert_eq!(encode_reply_into(&over.view(), &mut buf), Err(err));
    assert!(matches!(
        decode_reply_payload_ref(&buf[..MAX_REPLY_PAYLOAD + 1]),
        Err(ProtoError::TooLarge { .. })
    ));
}

#[test]
fn reply_buffer_is_checked() {
    let reply = Reply::Pending {
        approval_id: "abc".into(),
    };
    let len = encoded_reply_len(&reply.view()).unwrap();
    let mut buf = vec![0u8; len - 1];
    assert_eq!(
        encode_reply_into(&reply.view(), &mut buf),
        Err(ProtoError::BufferTooSmall {
            needed: len,
            available: len - 1
        })
    );
}

fn reply_frame(payload: &[u8]) -> Vec<u8> {
    request_frame(payload)
}

#[test]
fn reply_decoder_errors() {
    let mut ok = Vec::new();
    encode_reply(
        &Reply::Deny {
            errno: 1,
            message: "denied".into(),
        },
        &mut ok,
    )
    .unwrap();

    // Truncation, everywhere.
    for cut in 0..ok.len() {
        let err = decode_reply_ref(&ok[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                ProtoError::Truncated {
                    kind: FrameKind::Reply,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // Bad magic, other version, trailing bytes after the frame.
    let mut bad = ok.clone();
    bad[0] = b'X';
    assert!(matches!(
        decode_reply(&bad),
        Err(ProtoError::BadMagic {
            kind: FrameKind::Reply,
            ..
        })
    ));
    let mut bad = ok.clone();
    bad[4] = 2;
    assert!(matches!(
        decode_reply(&bad),
        Err(ProtoError::UnsupportedVersion { found: 2, .. })
    ));
    let mut bad = ok.clone();
    bad.push(0);
    assert_eq!(
        decode_reply_ref(&bad),
        Err(ProtoError::TrailingBytes {
            kind: FrameKind::Reply,
            count: 1
        })
    );
    // Trailing bytes inside the payload.
    let mut payload = ok[HEADER_LEN..].to_vec();
    payload.extend_from_slice(b"??");
    assert_eq!(
        decode_reply_ref(&reply_frame(&payload)),
        Err(ProtoError::TrailingBytes {
            kind: FrameKind::Reply,
            count: 2
        })
    );
    // Payload cut short inside the message.
    let payload = &ok[HEADER_LEN..ok.len() - 1];
    assert_eq!(
        malformed_field(decode_reply_ref(&reply_frame(payload)).unwrap_err()),
        ("message", DecodeProblem::UnexpectedEnd)
    );
    // Unknown kind.
    assert_eq!(
        malformed_field(decode_reply_ref(&reply_frame(&3u32.to_le_bytes())).unwrap_err()),
        ("kind", DecodeProblem::UnknownTag(3))
    );
    // Short tag.
    assert_eq!(
        malformed_field(decode_reply_ref(&reply_frame(&[0, 0])).unwrap_err()),
        ("kind", DecodeProblem::UnexpectedEnd)
    );
    // Invalid UTF-8 in message and approval id.
    let mut p = Vec::new();
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&1i32.to_le_bytes());
    p.extend_from_slice(&2u64.to_le_bytes());
    p.extend_from_slice(b"\xff\xfe");
    assert_eq!(
        malformed_field(decode_reply(&reply_frame(&p)).unwrap_err()),
        ("message", DecodeProblem::InvalidUtf8)
    );
    let mut p = Vec::new();
    p.extend_from_slice(&2u32.to_le_bytes());
    p.extend_from_slice(&1u64.to_le_bytes());
    p.push(0x80);
    assert_eq!(
        malformed_field(decode_reply(&reply_frame(&p)).unwrap_err()),
        ("approval_id", DecodeProblem::InvalidUtf8)
    );
    // A hostile length prefix.
    let mut p = Vec::new();
    p.extend_from_slice(&2u32.to_le_bytes());
    p.extend_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        malformed_field(decode_reply(&reply_frame(&p)).unwrap_err()),
        ("approval_id", DecodeProblem::LimitExceeded)
    );
    // A request frame is not a reply.
    assert!(decode_reply(&encode(&sample())).is_err());
}

//! Property tests: the decoders never panic on arbitrary or mutated bytes, whatever decodes
//! re-encodes to the same bytes, arbitrary messages round-trip, and the payloads are exactly
//! what bincode 2's own derive produces for the documented layout.

use proptest::prelude::*;
use rampart_proto::*;

/// The documented request layout, as bincode's derive sees it.
#[derive(Debug, PartialEq, bincode::Encode, bincode::Decode)]
struct MirrorRequest {
    entry: u32,
    flags: u32,
    mode: u32,
    pid: i32,
    ppid: i32,
    uid: u32,
    path: Vec<u8>,
    requested: Vec<u8>,
    cwd: Vec<u8>,
    agent: Vec<u8>,
    session: Vec<u8>,
    interpreter: Option<Vec<u8>>,
    argv: Vec<Vec<u8>>,
}

impl From<&Request> for MirrorRequest {
    fn from(r: &Request) -> Self {
        MirrorRequest {
            entry: r.entry.to_wire(),
            flags: r.flags.bits(),
            mode: r.mode.to_wire(),
            pid: r.pid,
            ppid: r.ppid,
            uid: r.uid,
            path: r.path.clone(),
            requested: r.requested.clone(),
            cwd: r.cwd.clone(),
            agent: r.agent.clone(),
            session: r.session.clone(),
            interpreter: r.interpreter.clone(),
            argv: r.argv.clone(),
        }
    }
}

/// The documented reply layout, as bincode's derive sees it.
#[derive(Debug, PartialEq, bincode::Encode, bincode::Decode)]
enum MirrorReply {
    Allow,
    Deny { errno: i32, message: String },
    Pending { approval_id: String },
}

impl From<&Reply> for MirrorReply {
    fn from(r: &Reply) -> Self {
        match r.clone() {
            Reply::Allow => MirrorReply::Allow,
            Reply::Deny { errno, message } => MirrorReply::Deny { errno, message },
            Reply::Pending { approval_id } => MirrorReply::Pending { approval_id },
        }
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn arb_request() -> impl Strategy<Value = Request> {
    (
        (
            prop::sample::select(EntryPoint::ALL.to_vec()),
            any::<u32>().prop_map(Flags::from_bits_truncate),
            prop_oneof![Just(Mode::Enforce), Just(Mode::Monitor)],
            any::<i32>(),
            any::<i32>(),
            any::<u32>(),
        ),
        (bytes(64), bytes(32), bytes(64), bytes(16), bytes(16)),
        prop::option::of(bytes(32)),
        prop::collection::vec(bytes(24), 0..24),
    )
        .prop_map(
            |(
                (entry, flags, mode, pid, ppid, uid),
                (path, requested, cwd, agent, session),
                interpreter,
                argv,
            )| Request {
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
            },
        )
}

fn arb_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        Just(Reply::Allow),
        (any::<i32>(), ".{0,64}").prop_map(|(errno, message)| Reply::Deny { errno, message }),
        ".{0,40}".prop_map(|approval_id| Reply::Pending { approval_id }),
    ]
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = b"RMPT\x01\x00".to_vec();
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// Feeds `data` to every decoder; whatever decodes must re-encode to the same bytes.
fn check_all_decoders(data: &[u8]) {
    if let Ok(req) = decode_request(data) {
        assert_eq!(encode_request_to_vec(&req.view()).unwrap(), data);
    }
    if let Ok(reply) = decode_reply(data) {
        let mut out = Vec::new();
        encode_reply(&reply, &mut out).unwrap();
        assert_eq!(out, data);
    }
    let _ = decode_reply_ref(data);
    if let Some(header) = data.first_chunk::<HEADER_LEN>() {
        let _ = read_frame_len(header);
        let _ = read_reply_frame_len(header);
    }
    let _ = decode_request_payload(data);
    let _ = decode_reply_payload_ref(data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(data in bytes(512)) {
        check_all_decoders(&data);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_payloads_under_a_valid_header(payload in bytes(512)) {
        check_all_decoders(&frame(&payload));
    }

    #[test]
    fn decoders_never_panic_on_mutated_requests(
        req in arb_request(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut data = encode_request_to_vec(&req.view()).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(data.len() + 1);
            match op {
                0 if i < data.len() => data[i] = byte,
                1 => data.insert(i, byte),
                _ => data.truncate(i),
            }
        }
        check_all_decoders(&data);
    }

    #[test]
    fn requests_round_trip(req in arb_request()) {
        // Through the borrowed, library-side type.
        let argv: Vec<&[u8]> = req.argv.iter().map(Vec::as_slice).collect();
        let borrowed = RequestRef {
            argv: &argv,
            entry: req.entry,
            flags: req.flags,
            mode: req.mode,
            pid: req.pid,
            ppid: req.ppid,
            uid: req.uid,
            path: &req.path,
            requested: &req.requested,
            cwd: &req.cwd,
            agent: &req.agent,
            session: &req.session,
            interpreter: req.interpreter.as_deref(),
        };
        let len = encoded_request_len(&borrowed).unwrap();
        let mut buf = vec![0u8; len];
        prop_assert_eq!(encode_request(&borrowed, &mut buf).unwrap(), len);
        prop_assert_eq!(&decode_request(&buf).unwrap(), &req);
        prop_assert_eq!(&encode_request_to_vec(&req.view()).unwrap(), &buf);

        // The streamed segments are the same frame.
        let mut joined = Vec::new();
        encode_request_with(&borrowed, |s| {
            joined.extend_from_slice(s.as_bytes());
            Ok::<(), ProtoError>(())
        }).unwrap();
        prop_assert_eq!(&joined, &buf);

        // The daemon's two-step read.
        let header: &[u8; HEADER_LEN] = buf.first_chunk().unwrap();
        let (version, payload_len) = read_frame_len(header).unwrap();
        prop_assert_eq!((version, payload_len), (VERSION, len - HEADER_LEN));
        prop_assert_eq!(&decode_request_payload(&buf[HEADER_LEN..]).unwrap(), &req);
    }

    #[test]
    fn request_payload_is_bincodes_derive_layout(req in arb_request()) {
        let buf = encode_request_to_vec(&req.view()).unwrap();
        let ours = &buf[HEADER_LEN..];
        let mirror = MirrorRequest::from(&req);
        prop_assert_eq!(&bincode::encode_to_vec(&mirror, WIRE_CONFIG).unwrap()[..], ours);
        let (theirs, read): (MirrorRequest, usize) =
            bincode::decode_from_slice(ours, WIRE_CONFIG).unwrap();
        prop_assert_eq!(theirs, mirror);
        prop_assert_eq!(read, ours.len());
    }

    #[test]
    fn replies_round_trip_and_match_bincodes_derive_layout(reply in arb_reply()) {
        let mut out = Vec::new();
        let n = encode_reply(&reply, &mut out).unwrap();
        prop_assert_eq!(n, out.len());
        prop_assert_eq!(&decode_reply(&out).unwrap(), &reply);
        prop_assert_eq!(decode_reply_ref(&out).unwrap(), reply.view());
        let mirror = MirrorReply::from(&reply);
        prop_assert_eq!(&bincode::encode_to_vec(&mirror, WIRE_CONFIG).unwrap()[..], &out[HEADER_LEN..]);
    }
}

//! Arbitrary bytes through every decoder of the wire format: the request and reply decoders
//! (whole frames and bare payloads) and the header checks must never panic, and whatever
//! decodes must re-encode to exactly the same bytes (the encoding is canonical).
//!
//! The first input byte picks how the rest is framed, so the fuzzer also reaches the payload
//! decoders behind a valid header instead of stalling on the magic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_proto::{
    HEADER_LEN, decode_reply, decode_reply_payload_ref, decode_reply_ref, decode_request,
    decode_request_payload, encode_reply, encode_request_to_vec, read_frame_len,
    read_reply_frame_len,
};

/// Wraps `payload` in a valid version-1 header.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(b"RMPT\x01\x00");
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn check(frame: &[u8]) {
    if let Some(header) = frame.first_chunk::<HEADER_LEN>() {
        let request_len = read_frame_len(header);
        let reply_len = read_reply_frame_len(header);
        if let (Ok((_, len)), Ok(req)) = (request_len, decode_request(frame)) {
            assert_eq!(frame.len(), HEADER_LEN + len);
            assert_eq!(
                encode_request_to_vec(&req.view()).expect("re-encode"),
                frame
            );
        }
        if let (Ok((_, len)), Ok(reply)) = (reply_len, decode_reply(frame)) {
            assert_eq!(frame.len(), HEADER_LEN + len);
            let mut out = Vec::new();
            encode_reply(&reply, &mut out).expect("re-encode");
            assert_eq!(out, frame);
            assert_eq!(
                decode_reply_ref(frame).expect("in-place decode"),
                reply.view()
            );
        }
    } else {
        assert!(decode_request(frame).is_err());
        assert!(decode_reply_ref(frame).is_err());
    }
    let _ = decode_reply_ref(frame);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        check(data);
        return;
    };
    if mode & 1 == 0 {
        check(rest);
    } else {
        check(&framed(rest));
    }
    // Bare payloads, as the daemon and the library decode them after reading a header.
    let _ = decode_request_payload(rest);
    let _ = decode_reply_payload_ref(rest);
});

//! The client port's decoders on arbitrary bytes: `decode_request`, `decode_connect`, and the
//! length-prefixed frame splitter feeding them as a connection does (first frame = connect,
//! the rest = requests). Required: no panic, no allocation beyond what the input can hold,
//! and a decoded request re-encodes to bytes that decode to the same request.
#![no_main]

use arbor::jute::{
    decode_connect, decode_request, encode_connect_request, encode_request, next_frame, DEFAULT_MAX_FRAME,
    LEN_PREFIX,
};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn check_request(payload: &[u8]) {
    if let Ok((header, req)) = decode_request(payload) {
        let mut out = BytesMut::new();
        encode_request(&mut out, header, &req);
        let again = decode_request(&out[LEN_PREFIX..]).expect("an encoded request decodes");
        assert_eq!(again, (header, req), "request does not survive encode/decode");
    }
}

fn check_connect(payload: &[u8]) {
    if let Ok(c) = decode_connect(payload) {
        let mut out = BytesMut::new();
        encode_connect_request(&mut out, &c);
        assert_eq!(decode_connect(&out[LEN_PREFIX..]).as_ref(), Ok(&c), "connect does not survive encode/decode");
    }
}

fuzz_target!(|data: &[u8]| {
    // The bytes as one frame payload.
    check_request(data);
    check_connect(data);

    // The bytes as a client's byte stream, split into frames as the server does.
    let mut buf = BytesMut::from(data);
    let mut first = true;
    while let Ok(Some(frame)) = next_frame(&mut buf, DEFAULT_MAX_FRAME) {
        if first {
            check_connect(&frame);
            first = false;
        } else {
            check_request(&frame);
        }
    }
});

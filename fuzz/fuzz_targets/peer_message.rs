//! The peer ports' decoder on arbitrary bytes: `peer::decode` for the two message types the
//! server reads (`ElectionMsg` on the election port, `QuorumMsg` on the quorum port, see
//! src/server/peers.rs). The bytes are tried both as a raw stream (frames taken off the front
//! until none is complete or one fails) and as the body of a single frame. Required: no
//! panic, no unbounded allocation, and a decoded message re-encodes to the same message.
#![no_main]

use arbor::peer::{decode, encode, ElectionMsg, QuorumMsg};
use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};

fn drain<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(mut buf: BytesMut) {
    while let Ok(Some(msg)) = decode::<T>(&mut buf) {
        let mut out = BytesMut::new();
        encode(&mut out, &msg);
        let again = decode::<T>(&mut out).expect("an encoded message decodes");
        assert_eq!(again.as_ref(), Some(&msg), "message does not survive encode/decode");
    }
}

fn framed(body: &[u8]) -> BytesMut {
    let mut b = BytesMut::with_capacity(4 + body.len());
    b.put_u32(body.len() as u32);
    b.put_slice(body);
    b
}

fuzz_target!(|data: &[u8]| {
    drain::<ElectionMsg>(BytesMut::from(data));
    drain::<QuorumMsg>(BytesMut::from(data));
    drain::<ElectionMsg>(framed(data));
    drain::<QuorumMsg>(framed(data));
});

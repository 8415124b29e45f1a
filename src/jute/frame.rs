//! Length-prefixed framing for the client port: every message is a 4-byte big-endian length
//! followed by that many payload bytes (`BinaryInputArchive`, `NIOServerCnxn.readLength`).
//!
//! Invariants: `next_frame` consumes bytes from the buffer only when it returns a whole frame
//! (or never, on error), so a caller may call it after every `read()` without tracking partial
//! state. A length that is negative or over `max_len` (ZooKeeper's `jute.maxbuffer`, 0xfffff by
//! default) is an error before any allocation, and the caller closes that one connection.
//!
//! Four-letter words (`ruok`, `srvr`, ...) share the port and are not frames: the caller must
//! look at the first 4 bytes of a new connection before handing the buffer to `next_frame`
//! (as a length, "ruok" is ~1.9 GB and would be refused as too large).

use bytes::{Buf, Bytes, BytesMut};

/// Bytes in the length prefix.
pub const LEN_PREFIX: usize = 4;

/// ZooKeeper's default `jute.maxbuffer`.
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// `len` is the prefix read as a Java int, so a 2 GiB prefix shows as negative.
    #[error("frame length {len} is negative or over the limit of {max} bytes")]
    TooLarge { len: i32, max: usize },
}

/// Splits one whole frame's payload (without its length prefix) off the front of `buf`.
/// Returns `Ok(None)` until the whole frame is buffered.
pub fn next_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < LEN_PREFIX {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let payload_len = match usize::try_from(len) {
        Ok(n) if n <= max_len => n,
        _ => return Err(FrameError::TooLarge { len, max: max_len }),
    };
    let total = LEN_PREFIX + payload_len;
    if buf.len() < total {
        // The length is already checked against the limit, so reserving the rest now is
        // bounded and saves repeated regrowth while a large frame trickles in.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(LEN_PREFIX);
    Ok(Some(buf.split_to(payload_len).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn two_gib_prefix_is_too_large() {
        let mut buf = BytesMut::from(&[0x80u8, 0, 0, 0, 1, 2, 3][..]);
        assert_eq!(
            next_frame(&mut buf, DEFAULT_MAX_FRAME),
            Err(FrameError::TooLarge { len: i32::MIN, max: DEFAULT_MAX_FRAME })
        );
    }

    #[test]
    fn negative_and_over_limit_lengths_are_too_large() {
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        assert!(matches!(next_frame(&mut buf, 100), Err(FrameError::TooLarge { len: -1, .. })));
        let mut buf = BytesMut::new();
        buf.put_i32(101);
        assert!(matches!(next_frame(&mut buf, 100), Err(FrameError::TooLarge { len: 101, .. })));
        let mut buf = BytesMut::new();
        buf.put_i32(100);
        buf.put_slice(&[7u8; 100]);
        assert_eq!(next_frame(&mut buf, 100).map(|f| f.map(|b| b.len())), Ok(Some(100)));
    }

    #[test]
    fn four_letter_word_is_not_a_frame() {
        let mut buf = BytesMut::from(&b"ruok"[..]);
        assert!(next_frame(&mut buf, DEFAULT_MAX_FRAME).is_err());
    }

    #[test]
    fn partial_frame_is_none_until_complete_byte_by_byte() {
        let wire = framed(b"hello jute");
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            assert_eq!(next_frame(&mut buf, 1024), Ok(None), "at byte {i}");
            buf.put_u8(*b);
        }
        assert_eq!(next_frame(&mut buf, 1024), Ok(Some(Bytes::from_static(b"hello jute"))));
        assert!(buf.is_empty());
        assert_eq!(next_frame(&mut buf, 1024), Ok(None));
    }

    #[test]
    fn several_frames_in_one_buffer_and_a_partial_tail() {
        let mut wire = framed(b"one");
        wire.extend(framed(b""));
        wire.extend(framed(b"three"));
        let tail = framed(b"four");
        wire.extend_from_slice(&tail[..5]);
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(next_frame(&mut buf, 64), Ok(Some(Bytes::from_static(b"one"))));
        assert_eq!(next_frame(&mut buf, 64), Ok(Some(Bytes::new())));
        assert_eq!(next_frame(&mut buf, 64), Ok(Some(Bytes::from_static(b"three"))));
        assert_eq!(next_frame(&mut buf, 64), Ok(None));
        buf.put_slice(&tail[5..]);
        assert_eq!(next_frame(&mut buf, 64), Ok(Some(Bytes::from_static(b"four"))));
        assert!(buf.is_empty());
    }
}

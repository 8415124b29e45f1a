//! The server survives garbage: random bytes (seeded), truncated frames, huge and negative
//! length prefixes, malformed requests after a valid handshake, and a flood of 2,000
//! sessions. Each bad connection is closed by the server; a good client keeps working
//! throughout; at the end the process is alive and its log has the "closing" lines and no
//! panic.
mod common;

use common::*;
use rand::{Rng, RngCore, SeedableRng};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The good client still gets correct answers.
fn still_good(good: &mut RawClient, n: usize) {
    let path = format!("/garbage_probe_{n}");
    good.create(&path, Some(n.to_string().as_bytes()), 0).unwrap_or_else(|e| panic!("probe {n}: create {e}"));
    assert_eq!(good.get_data(&path, false).unwrap().0, Some(n.to_string().into_bytes()));
    good.delete(&path, -1).unwrap();
}

fn assert_server_closes(s: &mut TcpStream, what: &str) -> Vec<u8> {
    match read_until_closed(s, CLOSE_WAIT) {
        Ending::Closed(b) => b,
        Ending::StillOpen(b) => panic!("{what}: connection still open after {CLOSE_WAIT:?} (got {} bytes)", b.len()),
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// A handshaken raw connection (session established).
fn session(addr: &str) -> TcpStream {
    RawClient::connect(addr, 30_000).stream
}

/// The process is alive and answers; with `closing_lines`, the log explains the closes
/// (a client's own EOF is an ordinary disconnect and is not logged).
fn finish(node: &mut Node, closing_lines: bool) {
    assert!(node.is_running(), "arbor died:\n{}", node.log());
    assert_eq!(node.four_letter("ruok"), "imok");
    let log = node.log();
    assert!(!closing_lines || log.contains("closing"), "no closing lines in the log:\n{log}");
    assert!(!log.to_lowercase().contains("panick"), "arbor panicked:\n{log}");
}

#[test]
fn length_prefixes_over_the_limit_close_at_once() {
    let mut node = Node::start_standalone(&[]);
    let mut good = RawClient::connect(&node.addr(), 30_000);
    for (i, prefix) in [0x7fff_ffffu32, 0x8000_0000, 0xffff_ffff, 0x0010_0000, 0x4000_0000].iter().enumerate() {
        // Before the handshake...
        let mut s = raw_connect(&node.addr());
        s.write_all(&prefix.to_be_bytes()).unwrap();
        s.write_all(b"some bytes").unwrap();
        assert_eq!(assert_server_closes(&mut s, &format!("prefix {prefix:#x}")), b"");
        // ...and after it.
        let mut s = session(&node.addr());
        s.write_all(&prefix.to_be_bytes()).unwrap();
        assert_server_closes(&mut s, &format!("prefix {prefix:#x} after handshake"));
        still_good(&mut good, i);
    }
    assert!(node.log().contains("exceeds jute.maxbuffer"), "{}", node.log());
    finish(&mut node, true);
}

#[test]
fn malformed_frames_close_the_connection() {
    let mut node = Node::start_standalone(&[]);
    let addr = node.addr();
    let mut good = RawClient::connect(&addr, 30_000);
    // A ConnectRequest too short to decode.
    let mut s = raw_connect(&addr);
    s.write_all(&frame(&[0, 0, 0, 0, 1, 2, 3])).unwrap();
    assert_eq!(assert_server_closes(&mut s, "short ConnectRequest"), b"");
    // A ConnectRequest whose password length runs past the frame.
    let mut body = connect_frame(30_000)[4..].to_vec();
    body[24..28].copy_from_slice(&1000i32.to_be_bytes());
    let mut s = raw_connect(&addr);
    s.write_all(&frame(&body)).unwrap();
    assert_server_closes(&mut s, "ConnectRequest with a bad password length");
    still_good(&mut good, 0);

    // After a valid handshake: a create whose body is cut short, a bad string length,
    // a vector count of 2^31-1, a header-only getData, an empty frame.
    let bad_requests: Vec<Vec<u8>> = vec![
        [&1i32.to_be_bytes()[..], &1i32.to_be_bytes(), &10i32.to_be_bytes(), b"/ab"].concat(),
        [&1i32.to_be_bytes()[..], &4i32.to_be_bytes(), &(-7i32).to_be_bytes(), b"xx"].concat(),
        [&1i32.to_be_bytes()[..], &14i32.to_be_bytes(), &i32::MAX.to_be_bytes()].concat(),
        [&1i32.to_be_bytes()[..], &15i32.to_be_bytes(), &2i32.to_be_bytes(), b"/a", &[0, 0, 0, 0], &i32::MAX.to_be_bytes()].concat(),
        [&1i32.to_be_bytes()[..], &4i32.to_be_bytes()].concat(),
        vec![1, 2],
        vec![],
    ];
    for (i, req) in bad_requests.iter().enumerate() {
        let mut s = session(&addr);
        s.write_all(&frame(req)).unwrap();
        // Replies to nothing: the server only closes (no reply header for a frame it
        // could not decode).
        assert_server_closes(&mut s, &format!("malformed request #{i}"));
        still_good(&mut good, 10 + i);
    }
    assert!(node.log().contains("malformed request"), "{}", node.log());
    finish(&mut node, true);
}

#[test]
fn truncated_frames_then_eof() {
    let mut node = Node::start_standalone(&[]);
    let addr = node.addr();
    let mut good = RawClient::connect(&addr, 30_000);
    let full = connect_frame(30_000);
    for cut in [1, 3, 4, 5, 20, full.len() - 1] {
        let mut s = raw_connect(&addr);
        send_and_shutdown(&mut s, &full[..cut]).unwrap();
        assert_eq!(assert_server_closes(&mut s, &format!("connect cut at {cut}")), b"");
    }
    // A request cut short after a valid handshake.
    let mut c = RawClient::connect(&addr, 30_000);
    let mut out = bytes::BytesMut::new();
    arbor::jute::encode_request(
        &mut out,
        RequestHeader { xid: 1, op: 4 },
        &Request::GetData { path: "/zookeeper".into(), watch: false },
    );
    send_and_shutdown(&mut c.stream, &out[..out.len() - 3]).unwrap();
    assert_server_closes(&mut c.stream, "truncated getData");
    still_good(&mut good, 0);
    finish(&mut node, false);
}

#[test]
fn random_bytes_seeded() {
    let mut node = Node::start_standalone(&[]);
    let addr = node.addr();
    let mut good = RawClient::connect(&addr, 30_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xa5b0_2024);
    for i in 0..60 {
        let len = rng.gen_range(1..4096);
        let mut junk = vec![0u8; len];
        rng.fill_bytes(&mut junk);
        let after_handshake = i % 2 == 1;
        let mut s = if after_handshake { session(&addr) } else { raw_connect(&addr) };
        let _ = s.write_all(&junk);
        // The server closes by itself when the junk is decodable as a bad frame; if the junk
        // looks like the start of a plausible frame, EOF ends it.
        match read_until_closed(&mut s, Duration::from_millis(300)) {
            Ending::Closed(_) => {}
            Ending::StillOpen(_) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
                assert_server_closes(&mut s, &format!("random junk #{i} (len {len}) then EOF"));
            }
        }
        if i % 10 == 9 {
            still_good(&mut good, i);
        }
    }
    still_good(&mut good, 1000);
    finish(&mut node, true);
}

fn raise_nofile(want: u64) -> u64 {
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        lim.rlim_cur
    }
}

#[test]
fn flood_of_2000_sessions() {
    const N: usize = 2000;
    let limit = raise_nofile(N as u64 + 512);
    assert!(limit >= N as u64 + 256, "RLIMIT_NOFILE {limit} too low for {N} connections");
    let mut node = Node::start_standalone(&[]);
    let addr = node.addr();
    let mut good = RawClient::connect(&addr, 30_000);
    let mut conns = Vec::with_capacity(N);
    let mut ids = std::collections::HashSet::new();
    // Pipeline in batches: connect + send 100 ConnectRequests, then read their answers.
    for batch in 0..N / 100 {
        let mut streams = Vec::with_capacity(100);
        for _ in 0..100 {
            let mut s = raw_connect(&addr);
            s.write_all(&connect_frame(30_000)).unwrap();
            streams.push(s);
        }
        for mut s in streams {
            let payload = read_frame(&mut s).unwrap_or_else(|e| panic!("batch {batch}: no ConnectResponse: {e}"));
            let resp = arbor::jute::decode_connect_response(&payload).unwrap();
            assert_ne!(resp.session_id, 0);
            assert_eq!(resp.timeout_ms, 30_000);
            assert!(ids.insert(resp.session_id), "session id {:#x} given twice", resp.session_id);
            conns.push(s);
        }
        if batch % 5 == 4 {
            still_good(&mut good, batch);
        }
    }
    assert_eq!(ids.len(), N);
    let srvr = node.four_letter("srvr");
    let n_conns: usize = srvr.lines().find_map(|l| l.strip_prefix("Connections: ")).unwrap().trim().parse().unwrap();
    assert!(n_conns > N, "srvr reports {n_conns} connections:\n{srvr}");
    // Every flooded connection is a working session: ping a sample of them.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..50 {
        let s = &mut conns[rng.gen_range(0..N)];
        let mut out = bytes::BytesMut::new();
        arbor::jute::encode_request(&mut out, RequestHeader { xid: -2, op: 11 }, &Request::Ping);
        s.write_all(&out).unwrap();
        let (h, _) = arbor::jute::decode_reply_header(&read_frame(s).unwrap()).map(|(h, b)| (h, b.len())).unwrap();
        assert_eq!((h.xid, h.err), (-2, 0));
    }
    still_good(&mut good, 9999);
    // Drop them all; the server notices and keeps serving.
    drop(conns);
    wait_for(Duration::from_secs(20), "connections to drain", || {
        let srvr = node.four_letter("srvr");
        let n: usize = srvr.lines().find_map(|l| l.strip_prefix("Connections: "))?.trim().parse().ok()?;
        (n < 10).then_some(())
    });
    still_good(&mut good, 10_000);
    assert!(node.is_running());
    let log = node.log();
    assert!(!log.to_lowercase().contains("panick"), "arbor panicked:\n{log}");
}

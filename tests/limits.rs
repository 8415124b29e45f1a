//! Limits on work in progress: `globalOutstandingLimit` (past it no client is read until
//! requests complete; `mntr` reports the real count) and `maxCnxns`.

mod common;

use std::time::{Duration, Instant};

use arbor::jute::Request;
use common::cluster::Cluster;
use common::{Node, RawClient};

fn mntr_outstanding(addr: &str) -> Option<usize> {
    let a: std::net::SocketAddr = addr.parse().ok()?;
    let text = common::four_letter(&a, "mntr").ok()?;
    text.lines().find_map(|l| l.strip_prefix("zk_outstanding_requests\t")).and_then(|v| v.trim().parse().ok())
}

#[test]
fn outstanding_requests_stop_at_global_outstanding_limit_and_mntr_shows_them() {
    // Slow fsyncs keep writes in flight long enough to watch them.
    let cl = Cluster::start_env(3, &["tickTime=2000", "globalOutstandingLimit=10"], &[("ARBOR_FAULT_FSYNC_DELAY_MS", "150")]);
    let leader = (1..=3).find(|id| cl.mode(*id).as_deref() == Some("leader")).expect("a leader");
    let addr = cl.addr(leader);
    let mut c = RawClient::connect(&addr, 30_000);
    c.create("/lim", None, 0).expect("create");
    // 150 pipelined setData from one session, 150 more from another (a session's writes
    // pipeline; past the limit the rest wait unread, so the count stops at 10 and the
    // 300 writes take ~30 fsyncs of 150 ms: long enough to watch).
    let mut d = RawClient::connect(&addr, 30_000);
    let set = |i: usize| Request::SetData { path: "/lim".into(), data: Some(format!("{i}").into_bytes()), version: -1 };
    let xc: Vec<i32> = (0..150).map(|i| c.send(&set(i))).collect();
    let xd: Vec<i32> = (0..150).map(|i| d.send(&set(1000 + i))).collect();
    let waiter = std::thread::spawn(move || {
        for x in xc {
            let (h, _) = c.wait_reply(x).expect("reply");
            assert_eq!(h.err, 0);
        }
        for x in xd {
            let (h, _) = d.wait_reply(x).expect("reply");
            assert_eq!(h.err, 0);
        }
    });
    let (mut seen, mut samples) = (Vec::new(), 0);
    let t0 = Instant::now();
    while !waiter.is_finished() && t0.elapsed() < Duration::from_secs(120) {
        if let Some(n) = mntr_outstanding(&addr) {
            seen.push(n);
            samples += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().expect("every reply arrives, in order, without error");
    let max = seen.iter().copied().max().unwrap_or(0);
    eprintln!("zk_outstanding_requests over {samples} samples: max {max} (limit 10); all 300 writes done in {:?}", t0.elapsed());
    assert!(max > 0, "mntr never reported a request in progress: {seen:?}");
    assert!(max <= 10, "outstanding went past globalOutstandingLimit=10: {seen:?}");
    let done = mntr_outstanding(&addr).expect("mntr");
    assert_eq!(done, 0, "nothing is in progress once every reply arrived");
}

#[test]
fn max_cnxns_refuses_connections_past_the_limit() {
    let node = Node::start_standalone(&["maxCnxns=3"]);
    let held: Vec<RawClient> = (0..3).map(|_| RawClient::connect(&node.addr(), 30_000)).collect();
    let refused = common::raw_handshake(&node.addr(), &common::new_session_request(30_000));
    assert!(refused.is_err(), "a 4th connection was served with maxCnxns=3");
    drop(held);
    // Once connections close, new ones are served again.
    let t0 = Instant::now();
    loop {
        if common::raw_handshake(&node.addr(), &common::new_session_request(30_000)).is_ok() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "still refused after the others closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(node.log().contains("maxCnxns"), "the refusal is logged");
}

/// A connection that never sends a complete request (nothing at all, or half a length
/// prefix) is closed after 10 s, as ZooKeeper's sessionlessCnxnTimeout does; one whose
/// session is established stays. Without this, silent connections held their slots (and
/// counted against maxClientCnxns) for ever.
#[test]
fn connections_that_never_send_a_request_are_closed() {
    use std::io::Write;
    let node = Node::start_standalone(&[]);
    let addr = node.addr();
    let t0 = Instant::now();
    let mut nothing = common::raw_connect(&addr);
    let mut half = common::raw_connect(&addr);
    half.write_all(&[0, 0]).expect("write half a length prefix");
    let mut session = common::raw_connect(&addr);
    session.write_all(&common::connect_frame(60_000)).expect("write a ConnectRequest");
    for (name, s) in [("silent", &mut nothing), ("half a frame", &mut half)] {
        let left = Duration::from_secs(20).saturating_sub(t0.elapsed());
        match common::read_until_closed(s, left) {
            common::Ending::Closed(bytes) => assert!(bytes.is_empty(), "{name}: nothing is sent before the close: {bytes:?}"),
            common::Ending::StillOpen(_) => panic!("{name}: still open after {:?}", t0.elapsed()),
        }
        let took = t0.elapsed();
        assert!(took >= Duration::from_secs(9), "{name}: closed after only {took:?} (the limit is 10 s)");
    }
    // The session's connection got its connect reply and is still open past the limit.
    match common::read_until_closed(&mut session, Duration::from_secs(1)) {
        common::Ending::StillOpen(bytes) => assert!(bytes.len() >= 36, "the connect reply arrived: {} bytes", bytes.len()),
        common::Ending::Closed(_) => panic!("an established session's connection was closed"),
    }
    assert!(t0.elapsed() >= Duration::from_secs(10));
    assert!(node.log().contains("sent no complete request in 10 s"), "the close is logged");
}

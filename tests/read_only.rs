//! Read-only mode (`readonlymode.enabled=true`): a server cut off from the quorum serves
//! reads to clients that connect with canBeReadOnly (after max(2 s, tickTime) without a
//! quorum), answers `isro` with `ro`, refuses writes with NotReadOnly (-119), refuses
//! clients that do not accept a read-only server, and goes back to read-write (closing its
//! read-only sessions) once it rejoins a quorum.

mod common;

use std::time::{Duration, Instant};

use arbor::jute::Request;
use common::cluster::Cluster;
use common::{new_session_request, raw_handshake, RawClient};

const NOT_READ_ONLY: i32 = -119;

fn isro(cl: &Cluster, id: u64) -> String {
    let addr = cl.addr(id).parse().expect("addr");
    common::four_letter(&addr, "isro").unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_server_without_quorum_serves_reads_read_only_and_returns_to_read_write() {
    let mut cl = Cluster::start(3, &["tickTime=200", "readonlymode.enabled=true"]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let mut c = RawClient::connect(&cl.addr(leader), 30_000);
    c.create("/ro", Some(b"before"), 0).expect("create");
    let survivor = (1..=3).find(|id| *id != leader).expect("a follower");
    for id in cl.ids() {
        assert_eq!(isro(&cl, id), "rw", "server {id} with a quorum");
    }
    // Partition by killing the two others: the survivor has no quorum.
    for id in cl.ids().into_iter().filter(|id| *id != survivor) {
        cl.kill9(id);
    }
    let t0 = Instant::now();
    wait_for("the survivor to turn read-only", Duration::from_secs(15), || isro(&cl, survivor) == "ro");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(1500), "read-only only after max(2 s, tickTime) without a quorum, not {took:?}");
    assert_eq!(cl.mode(survivor).as_deref(), Some("read-only"));

    // A client that does not accept a read-only server is turned away.
    let mut rw_only = new_session_request(10_000);
    rw_only.read_only = Some(false);
    assert!(raw_handshake(&cl.addr(survivor), &rw_only).is_err(), "a read-write client gets no session");

    // A client that does gets a read-only session: reads work, writes get NotReadOnly.
    let mut ro = new_session_request(10_000);
    ro.read_only = Some(true);
    let mut r = RawClient::connect_with(&cl.addr(survivor), &ro);
    assert_eq!(r.resp.read_only, Some(true), "the connect response says read-only");
    let (data, _) = r.get_data("/ro", false).expect("a read");
    assert_eq!(data.as_deref(), Some(&b"before"[..]));
    assert_eq!(r.create("/new", None, 0).unwrap_err(), NOT_READ_ONLY);
    assert_eq!(r.set_data("/ro", b"x", -1).unwrap_err(), NOT_READ_ONLY);
    assert_eq!(r.call(&Request::Sync { path: "/".into() }).unwrap_err(), NOT_READ_ONLY);
    // It keeps the session alive with pings, and reads still work a while later.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(r.call(&Request::Ping).is_ok());
    assert!(r.exists("/ro", false).is_ok());

    // The others come back: the survivor rejoins, goes read-write and ends its read-only
    // sessions; nothing written before is lost and nothing was written meanwhile.
    for id in cl.ids().into_iter().filter(|id| *id != survivor) {
        cl.start_node(id);
    }
    cl.wait_leader(Duration::from_secs(30));
    wait_for("the survivor to turn read-write", Duration::from_secs(15), || isro(&cl, survivor) == "rw");
    assert!(r.closed_within(Duration::from_secs(5)), "the read-only session's connection is closed");
    let mut w = RawClient::connect(&cl.addr(survivor), 30_000);
    assert_eq!(w.resp.read_only, Some(false));
    w.set_data("/ro", b"after", -1).expect("writes work again");
    assert!(w.exists("/new", false).is_err(), "nothing was created while read-only");
}

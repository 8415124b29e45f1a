//! Observers (`server.N=…:observer`): they learn every commit, serve reads, forward writes,
//! never vote, never lead and never count toward a quorum; they catch up like followers.
//! 3 voters + 2 observers.

mod common;

use std::time::Duration;

use arbor::jute::Request;
use common::cluster::Cluster;
use common::RawClient;

fn read(cl: &Cluster, id: u64, path: &str) -> Option<Vec<u8>> {
    let mut c = RawClient::connect(&cl.addr(id), 30_000);
    c.call(&Request::Sync { path: "/".into() }).expect("sync");
    c.get_data(path, false).ok().and_then(|(d, _)| d)
}

#[test]
fn observers_serve_and_forward_but_never_vote_or_count() {
    let mut cl = Cluster::start_roles(5, 2, &["tickTime=200"], &[]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    assert!(leader <= 3, "an observer never leads (leader {leader})");
    for id in [4, 5] {
        assert_eq!(cl.mode(id).as_deref(), Some("observer"), "server {id}");
    }
    // Writes through an observer; read back from every server.
    let mut o = RawClient::connect(&cl.addr(4), 30_000);
    o.create("/obs", Some(b"v0"), 0).expect("create through an observer");
    for i in 0..50 {
        o.set_data("/obs", format!("v{}", i + 1).as_bytes(), i).expect("setData through an observer");
    }
    for id in cl.ids() {
        assert_eq!(read(&cl, id, "/obs").as_deref(), Some(&b"v50"[..]), "server {id}");
    }
    // An observer killed and restarted catches up on what it missed.
    cl.kill9(5);
    let mut v = RawClient::connect(&cl.addr(leader), 30_000);
    for i in 0..200 {
        v.create(&format!("/obs-{i}"), Some(b"x"), 0).expect("create while observer 5 is down");
    }
    cl.start_node(5);
    cl.wait_leader(Duration::from_secs(30));
    assert_eq!(read(&cl, 5, "/obs-199").as_deref(), Some(&b"x"[..]), "the restarted observer caught up");
    // A voter killed: 2 of 3 voters are still a quorum; writes go on through an observer.
    let follower = (1..=3).find(|id| *id != leader).expect("a voting follower");
    cl.kill9(follower);
    let mut o = RawClient::connect(&cl.addr(4), 30_000);
    o.set_data("/obs", b"after", -1).expect("a write with 2 of 3 voters up");
    assert_eq!(read(&cl, 5, "/obs").as_deref(), Some(&b"after"[..]));
    // A second voter killed: 1 voter + 2 observers is no quorum. The leader steps down
    // and nobody serves writes, because observers do not count.
    let other = (1..=3).find(|id| *id != leader && *id != follower).expect("the other voter");
    cl.kill9(other);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cl.mode(leader).as_deref() == Some("leader") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(cl.mode(leader).as_deref(), Some("leader"), "one voter and two observers are not a quorum");
    std::thread::sleep(Duration::from_millis(1500));
    for id in [leader, 4, 5] {
        let m = cl.mode(id);
        assert!(!matches!(m.as_deref(), Some("leader" | "follower" | "observer")), "server {id} serves without a quorum: {m:?}");
    }
    // The voters come back: a leader among them, the observers serve again, nothing lost.
    cl.start_node(follower);
    cl.start_node(other);
    let leader = cl.wait_leader(Duration::from_secs(30));
    assert!(leader <= 3);
    for id in cl.ids() {
        assert_eq!(read(&cl, id, "/obs").as_deref(), Some(&b"after"[..]), "server {id}");
    }
}

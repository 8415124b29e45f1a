//! `arbor::client` against real arbor processes: pipelined calls come back in order, watches
//! arrive, and when the server under a session dies the client resumes the same session on
//! the next endpoint (its ephemeral survives).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use arbor::client::{Client, ClientError, ClientOptions};
use arbor::jute::Request;
use common::cluster::Cluster;
use common::Node;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

#[test]
fn pipelined_calls_answer_in_order_and_watches_arrive() {
    let node = Node::start_standalone(&[]);
    let mut c = Client::connect(&[addr(&node.addr())], ClientOptions::default()).expect("connect");
    c.create("/p", b"", 0).expect("create");
    let reqs: Vec<Request> = (0..200)
        .map(|i| Request::Create(arbor::client::create_request(&format!("/p/{i}"), format!("v{i}").as_bytes(), 0)))
        .collect();
    let results = c.call_many(&reqs);
    assert_eq!(results.len(), 200);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let (data, stat) = c.get_data("/p/199", true).expect("get");
    assert_eq!(data.as_deref(), Some(&b"v199"[..]));
    assert_eq!(stat.version, 0);
    assert_eq!(c.create("/p/1", b"", 0).unwrap_err().name(), "NodeExists");
    assert_eq!(c.delete("/p/nope", -1).unwrap_err().name(), "NoNode");

    let mut other = Client::connect(&[addr(&node.addr())], ClientOptions::default()).expect("connect");
    other.set_data("/p/199", b"changed", -1).expect("set");
    let ev = c.next_watch(Duration::from_secs(5)).expect("watch").expect("an event");
    assert_eq!((ev.event_type, ev.path.as_str()), (3, "/p/199"));
    c.close().expect("close");
    other.close().expect("close");
}

#[test]
fn a_dead_server_moves_the_session_to_the_next_endpoint() {
    let mut cl = Cluster::start(3, &[]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let followers: Vec<u64> = cl.ids().into_iter().filter(|i| *i != leader).collect();
    // The first endpoint is a follower that will die; the next is the other follower.
    let eps = [addr(&cl.addr(followers[0])), addr(&cl.addr(followers[1])), addr(&cl.addr(leader))];
    let opts = ClientOptions { session_timeout_ms: 4000, op_timeout: Duration::from_secs(10) };
    let mut c = Client::connect(&eps, opts).expect("connect");
    assert_eq!(c.endpoint(), eps[0]);
    let sid = c.session_id();
    c.create("/eph", b"mine", 1).expect("ephemeral");
    cl.kill9(followers[0]);
    // The first call after the kill may fail with ConnectionLoss (it was in flight); the
    // next ones go to the next endpoint, same session.
    let mut got = None;
    for _ in 0..20 {
        match c.get_data("/eph", false) {
            Ok(x) => {
                got = Some(x);
                break;
            }
            Err(ClientError::ConnectionLoss(_)) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("after the kill: {e}"),
        }
    }
    let (data, stat) = got.expect("served by another server");
    assert_eq!(data.as_deref(), Some(&b"mine"[..]));
    assert_eq!(stat.ephemeral_owner, sid, "the ephemeral still belongs to the resumed session");
    assert_eq!(c.session_id(), sid);
    assert_eq!(c.endpoint(), eps[1]);
    c.close().expect("close");
}

#[test]
fn watches_survive_a_move_to_another_server_and_fire_for_changes_made_meanwhile() {
    let mut cl = Cluster::start(3, &[]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let followers: Vec<u64> = cl.ids().into_iter().filter(|i| *i != leader).collect();
    let eps = [addr(&cl.addr(followers[0])), addr(&cl.addr(followers[1])), addr(&cl.addr(leader))];
    let opts = ClientOptions { session_timeout_ms: 6000, op_timeout: Duration::from_secs(10) };
    let mut c = Client::connect(&eps, opts.clone()).expect("connect");
    c.create("/w", b"0", 0).expect("create");
    c.create("/stays", b"0", 0).expect("create");
    c.get_data("/w", true).expect("data watch");
    assert_eq!(c.exists("/later", true).unwrap_err().name(), "NoNode", "an exist watch");
    c.get_data("/stays", true).expect("data watch");
    cl.kill9(followers[0]);
    // Changed while the client has no server: the resumed session's setWatches must
    // bring these notifications (the server compares with the client's last zxid).
    let mut other = Client::connect(&eps[2..], opts).expect("connect to the leader");
    other.set_data("/w", b"1", -1).expect("set");
    other.create("/later", b"", 0).expect("create");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.len() < 2 && std::time::Instant::now() < deadline {
        match c.next_watch(Duration::from_millis(500)) {
            Ok(Some(ev)) if ev.event_type > 0 => got.push((ev.event_type, ev.path)),
            Ok(_) | Err(ClientError::ConnectionLoss(_)) => {}
            Err(e) => panic!("waiting for the watches: {e}"),
        }
    }
    got.sort();
    assert_eq!(got, [(1, "/later".to_string()), (3, "/w".to_string())], "both watches fired after the move");
    assert_eq!(c.endpoint(), eps[1], "the session moved to the next server");
    // A watch that did not fire is still armed on the new server, and fires once.
    other.set_data("/stays", b"1", -1).expect("set");
    let ev = c.next_watch(Duration::from_secs(10)).expect("watch").expect("an event");
    assert_eq!((ev.event_type, ev.path.as_str()), (3, "/stays"));
    other.set_data("/stays", b"2", -1).expect("set");
    other.set_data("/w", b"2", -1).expect("set");
    assert!(c.next_watch(Duration::from_millis(700)).expect("no error").is_none(), "one-shot watches fire once");
    c.close().expect("close");
}

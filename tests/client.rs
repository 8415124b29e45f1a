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

//! Smoke test of the harness itself: start a standalone node, ask it a few four-letter
//! words, restart it, kill it.
mod common;

use common::{raw_connect, read_until_closed, Ending, Node};
use std::time::Duration;

#[test]
fn harness_starts_restarts_and_kills_a_node() {
    let mut node = Node::start_standalone(&["tickTime=1000"]);
    assert_eq!(node.four_letter("ruok"), "imok");
    assert!(node.four_letter("srvr").contains("Mode: standalone"));
    node.restart();
    assert_eq!(node.four_letter("ruok"), "imok");
    let mut s = raw_connect(&node.addr());
    common::send_and_shutdown(&mut s, b"\x7f\xff\xff\xff garbage").expect("write");
    assert!(matches!(
        read_until_closed(&mut s, Duration::from_secs(5)),
        Ending::Closed(_)
    ));
    node.kill9();
    assert!(!node.is_running());
    node.start_again();
    assert_eq!(node.four_letter("ruok"), "imok");
    assert!(node.stop().is_some(), "arbor should exit on SIGTERM");
    assert!(node.log().contains("harness: starting arbor"));
}

//! Dynamic reconfiguration (op 16) against a 3-node ensemble with `reconfigEnabled=true`:
//! kazoo's TestReconfig cases (no auth, add/remove an observer with the version check,
//! bad input), the switch itself, and a real observer let in and out by reconfig.

mod common;

use std::time::{Duration, Instant};

use arbor::jute::{Request, Response};
use common::cluster::Cluster;
use common::{reconfig_req, wait_for, Node, RawClient};

const NO_AUTH: i32 = -102;
const BAD_ARGUMENTS: i32 = -8;
const BAD_VERSION: i32 = -103;
const UNIMPLEMENTED: i32 = -6;
const RECONFIG_DISABLED: i32 = -123;

fn super_client(addr: &str) -> RawClient {
    let mut c = RawClient::connect(addr, 30_000);
    c.call(&Request::Auth { scheme: "digest".into(), auth: b"super:test".to_vec() }).expect("addauth super");
    c
}

/// The reconfig reply: `/zookeeper/config`'s data as text, and its Stat version.
fn reconfig(c: &mut RawClient, req: &Request) -> Result<(String, i32), i32> {
    match c.call(req)? {
        Response::GetData { data, stat } => Ok((String::from_utf8(data.unwrap_or_default()).expect("utf-8"), stat.version)),
        other => panic!("reconfig answered {other:?}"),
    }
}

/// `version=<hex>`, the last line of the config text.
fn version(text: &str) -> i64 {
    let last = text.lines().last().expect("a version line");
    i64::from_str_radix(last.strip_prefix("version=").expect("version="), 16).expect("hex version")
}

fn config_on(cl: &Cluster, id: u64) -> String {
    let mut c = RawClient::connect(&cl.addr(id), 30_000);
    c.call(&Request::Sync { path: "/".into() }).expect("sync");
    let (data, _) = c.get_data("/zookeeper/config", false).expect("get /zookeeper/config");
    String::from_utf8(data.unwrap_or_default()).expect("utf-8")
}

#[test]
fn kazoo_reconfig_cases_on_an_ensemble() {
    let mut cl = Cluster::start(3, &["reconfigEnabled=true"]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let follower = (1..=3).find(|i| *i != leader).expect("a follower");

    // test_no_super_auth: a sound request without WRITE on /zookeeper/config.
    let mut anon = RawClient::connect(&cl.addr(follower), 30_000);
    let join999 = reconfig_req(Some("server.999=0.0.0.0:1234:2345:observer;3456"), None, None, -1);
    assert_eq!(reconfig(&mut anon, &join999), Err(NO_AUTH));

    // test_bad_input: refused before auth is looked at.
    assert_eq!(reconfig(&mut anon, &reconfig_req(Some("some thing"), None, None, -1)), Err(BAD_ARGUMENTS));

    // test_add_remove_observer, through a follower (forwarded to the leader).
    let mut su = super_client(&cl.addr(follower));
    let joining = "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456";
    let (added, stat_version) = reconfig(&mut su, &reconfig_req(Some(joining), None, None, -1)).expect("observer 100 joins");
    assert!(added.contains(&format!("{joining}\n")), "{added}");
    assert_eq!(stat_version, -1, "ZooKeeper's reconfig txn leaves the config node at version -1");
    assert!(version(&added) > 0, "the version is the reconfig's zxid: {added}");
    // Each server writes it next to zoo.cfg as ZooKeeper names it: sorted lines, no version.
    let dynamic = std::path::PathBuf::from(format!("{}.dynamic.{:x}", cl.cfg_path.display(), version(&added)));
    let text = wait_for(Duration::from_secs(5), "the dynamic config file", || std::fs::read_to_string(&dynamic).ok());
    assert!(text.contains(joining) && !text.contains("version="), "{text}");
    let (removed, _) = reconfig(&mut su, &reconfig_req(None, Some("100"), None, version(&added))).expect("observer 100 leaves");
    assert!(!removed.contains(joining), "{removed}");
    assert!(version(&removed) > version(&added));
    let stale = reconfig_req(Some(joining), None, None, version(&removed) + 1);
    assert_eq!(reconfig(&mut anon, &stale), Err(BAD_VERSION), "version checked before auth");
    assert_eq!(reconfig(&mut su, &reconfig_req(Some(joining), None, None, version(&added))), Err(BAD_VERSION));

    // Every server shows the committed membership.
    for id in cl.ids() {
        assert_eq!(config_on(&cl, id), removed, "server {id}");
    }

    // Voter changes need a joint quorum, which arbor refuses honestly for now.
    assert_eq!(reconfig(&mut su, &reconfig_req(None, Some(&follower.to_string()), None, -1)), Err(UNIMPLEMENTED));
    // The bulk form with the same voters and one observer more is an observer change.
    let bulk = format!("{}\nserver.7=127.0.0.1:1:2:observer;3", removed.lines().filter(|l| l.starts_with("server.")).collect::<Vec<_>>().join(","));
    let (with7, _) = reconfig(&mut su, &reconfig_req(None, None, Some(&bulk), -1)).expect("bulk reconfig");
    assert!(with7.contains("server.7=127.0.0.1:1:2:observer;0.0.0.0:3\n"), "a bare client port is the wildcard: {with7}");
}

#[test]
fn reconfig_is_disabled_by_default_and_unimplemented_standalone() {
    let mut cl = Cluster::start(3, &[]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let mut su = super_client(&cl.addr(leader));
    let join = reconfig_req(Some("server.100=0.0.0.0:1234:2345:observer;3456"), None, None, -1);
    assert_eq!(reconfig(&mut su, &join), Err(RECONFIG_DISABLED));
    drop(cl);
    let node = Node::start_standalone(&["reconfigEnabled=true"]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    assert_eq!(reconfig(&mut c, &join), Err(UNIMPLEMENTED), "standalone ZooKeeper 3.8 cannot reconfigure");
}

#[test]
fn an_observer_let_in_by_reconfig_serves_and_is_dropped_when_it_leaves() {
    let mut cl = Cluster::start(3, &["reconfigEnabled=true"]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let mut su = super_client(&cl.addr(leader));
    su.create("/before", Some(b"b"), 0).expect("create");
    let spec = cl.add_server_line(4, true);
    let (text, _) = reconfig(&mut su, &reconfig_req(Some(&format!("server.4={spec}")), None, None, -1)).expect("observer 4 joins");
    assert!(text.contains(&format!("server.4={spec}\n")), "{text}");
    cl.start_node(4);
    wait_for(Duration::from_secs(30), "server 4 observing", || (cl.mode(4).as_deref() == Some("observer")).then_some(()));
    let mut o = RawClient::connect(&cl.addr(4), 30_000);
    assert_eq!(o.get_data("/before", false).expect("read on the observer").0.as_deref(), Some(&b"b"[..]));
    o.create("/through-4", Some(b"x"), 0).expect("a write through the new observer");
    assert_eq!(config_on(&cl, 4), text, "the observer shows the membership that let it in");

    // It leaves: the leader closes its connection and turns it away from then on.
    reconfig(&mut su, &reconfig_req(None, Some("4"), None, -1)).expect("observer 4 leaves");
    let deadline = Instant::now() + Duration::from_secs(10);
    while cl.mode(4).as_deref() == Some("observer") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1000));
    assert_ne!(cl.mode(4).as_deref(), Some("observer"), "a removed observer is no longer served by the leader");
    cl.kill9(4);
    assert!(su.exists("/through-4", false).is_ok());
}

#[test]
fn a_reconfig_survives_restarts_of_every_voter() {
    let mut cl = Cluster::start(3, &["reconfigEnabled=true"]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let mut su = super_client(&cl.addr(leader));
    let spec = cl.add_server_line(4, true);
    let (text, _) = reconfig(&mut su, &reconfig_req(Some(&format!("server.4={spec}")), None, None, -1)).expect("observer 4 joins");
    cl.start_node(4);
    wait_for(Duration::from_secs(30), "server 4 observing", || (cl.mode(4).as_deref() == Some("observer")).then_some(()));
    // From now on the voters know server 4 only from the reconfig in their logs.
    cl.remove_server_line(4);
    for id in 1..=3 {
        cl.kill9(id);
    }
    for id in 1..=3 {
        cl.start_node(id);
    }
    // `wait_leader` also wants server 4 observing again: the new leader let it back in.
    cl.wait_leader(Duration::from_secs(30));
    for id in cl.ids() {
        assert_eq!(config_on(&cl, id), text, "server {id} after the restart");
    }
    let mut o = RawClient::connect(&cl.addr(4), 30_000);
    o.create("/after-restart", Some(b"x"), 0).expect("a write through observer 4 after the voters restarted");
}

/// The README's sample (`config/reconfig-3.cfg`) parses without warnings for each server,
/// with reconfig on and a superuser to run it.
#[test]
fn the_sample_reconfig_config_parses_without_warnings() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for id in 1..=3 {
        let (c, w) = arbor::config::load(&root.join("config/reconfig-3.cfg"), Some(arbor::proto::ServerId(id))).expect("config/reconfig-3.cfg");
        assert!(w.is_empty(), "server {id}: {w:?}");
        assert!(c.reconfig_enabled);
        assert!(c.super_digest.is_some());
        assert_eq!(c.servers.len(), 3);
    }
}

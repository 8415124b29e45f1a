//! The replicated ensemble, end to end: 3 real `arbor` processes on loopback.
//! (tickTime=200 in these tests: syncLimit·tick = 1 s, so failovers are quick.)

mod common;

use std::time::{Duration, Instant};

use arbor::jute::Response;
use common::cluster::Cluster;
use common::{wait_for, RawClient};

const SESSION_MS: i32 = 4000;

fn client(cl: &Cluster, id: u64) -> RawClient {
    RawClient::connect(&cl.addr(id), SESSION_MS)
}

/// Run `f` against a fresh session on server `id`; None if the server refuses or drops us.
fn try_with<T>(cl: &Cluster, id: u64, f: impl FnOnce(&mut RawClient) -> Option<T>) -> Option<T> {
    let addr = cl.addr(id);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut c = RawClient::connect(&addr, SESSION_MS);
        f(&mut c)
    }))
    .ok()
    .flatten()
}

/// Children of `path` as seen by server `id` after a sync.
fn children_at(cl: &Cluster, id: u64, path: &str) -> Vec<String> {
    let mut c = client(cl, id);
    c.call(&arbor::jute::Request::Sync { path: path.into() }).expect("sync");
    match c.call(&arbor::jute::Request::GetChildren { path: path.into(), watch: false }) {
        Ok(Response::GetChildren { mut children }) => {
            children.sort();
            children
        }
        other => panic!("getChildren {path} at server {id}: {other:?}"),
    }
}

#[test]
fn writes_through_every_server_are_seen_by_all() {
    let cl = Cluster::start(3, &[]);
    client(&cl, 1).create("/e", Some(b"root"), 0).expect("create /e");
    for id in cl.ids() {
        let mut c = client(&cl, id);
        c.create(&format!("/e/from-{id}"), Some(format!("v{id}").as_bytes()), 0).expect("create via server");
        // Read-your-writes on the same session.
        let (data, stat) = c.get_data(&format!("/e/from-{id}"), false).expect("get");
        assert_eq!(data.as_deref(), Some(format!("v{id}").as_bytes()));
        assert_eq!(stat.version, 0);
    }
    let want: Vec<String> = cl.ids().iter().map(|i| format!("from-{i}")).collect();
    for id in cl.ids() {
        assert_eq!(children_at(&cl, id, "/e"), want, "server {id}");
    }
    // Membership in /zookeeper/config on every server; the leader reports its followers.
    for id in cl.ids() {
        let (data, _) = client(&cl, id).get_data("/zookeeper/config", false).expect("config");
        let text = String::from_utf8(data.unwrap_or_default()).expect("utf8");
        for other in cl.ids() {
            assert!(text.contains(&format!("server.{other}=127.0.0.1:")), "server {id}: {text}");
        }
    }
    let mut cl = cl;
    let leader = cl.wait_leader(Duration::from_secs(5));
    let addr: std::net::SocketAddr = cl.addr(leader).parse().expect("addr");
    let srvr = common::four_letter(&addr, "srvr").expect("srvr");
    assert!(srvr.contains("Mode: leader") && srvr.contains("Followers: 2 (2 synced)"), "{srvr}");
    let mntr = common::four_letter(&addr, "mntr").expect("mntr");
    assert!(mntr.contains("zk_synced_followers\t2"), "{mntr}");
    // The same zxid and Stat everywhere.
    let stats: Vec<_> = cl.ids().iter().map(|i| client(&cl, *i).get_data("/e/from-2", false).expect("get").1).collect();
    assert!(stats.windows(2).all(|w| w[0] == w[1]), "{stats:?}");
}

#[test]
fn leader_sigkill_new_leader_serves_no_acknowledged_write_lost_old_leader_catches_up() {
    let mut cl = Cluster::start(3, &[]);
    let leader = cl.wait_leader(Duration::from_secs(10));
    let follower = cl.ids().into_iter().find(|i| *i != leader).expect("a follower");
    let mut c = client(&cl, follower);
    c.create("/k", None, 0).expect("create /k");
    for i in 0..50 {
        c.create(&format!("/k/a{i:03}"), Some(b"x"), 0).expect("acknowledged create");
    }
    drop(c);
    let t0 = Instant::now();
    cl.kill9(leader);
    let new_leader = cl.wait_leader(Duration::from_secs(20));
    assert_ne!(new_leader, leader);
    // The first successful write after the crash.
    let survivor = cl.ids().into_iter().find(|i| *i != leader).expect("survivor");
    wait_for(Duration::from_secs(20), "a write after the leader crash", || {
        try_with(&cl, survivor, |c| c.create("/k/after", Some(b"y"), 0).ok())
    });
    eprintln!("leader SIGKILL -> first write on another server: {:?}", t0.elapsed());
    let want: Vec<String> = (0..50).map(|i| format!("a{i:03}")).chain(["after".to_string()]).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    for id in cl.ids().into_iter().filter(|i| *i != leader) {
        assert_eq!(children_at(&cl, id, "/k"), want_sorted, "server {id}");
    }
    // The old leader restarts, joins the incumbent (no new election won by it) and catches up.
    cl.start_node(leader);
    wait_for(Duration::from_secs(20), "old leader rejoins as follower", || {
        (cl.mode(leader).as_deref() == Some("follower")).then_some(())
    });
    assert_eq!(cl.wait_leader(Duration::from_secs(5)), new_leader);
    assert_eq!(children_at(&cl, leader, "/k"), want_sorted);
}

#[test]
fn a_single_node_of_three_never_accepts_a_write() {
    let mut cl = Cluster::start(3, &[]);
    let ids = cl.ids();
    cl.kill9(ids[0]);
    cl.kill9(ids[1]);
    let lone = ids[2];
    // Within syncLimit it notices it has no quorum; from then on clients are refused.
    wait_for(Duration::from_secs(10), "the lone server stops serving", || {
        (cl.mode(lone).as_deref() != Some("leader") && cl.mode(lone).as_deref() != Some("follower")).then_some(())
    });
    for _ in 0..5 {
        if let Ok((_, resp)) = common::raw_handshake(&cl.addr(lone), &common::new_session_request(SESSION_MS)) {
            panic!("a lone server granted session {:#x}", resp.session_id);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cl.log(lone).contains("role changed role=looking"), "{}", cl.log(lone));
}

#[test]
fn client_fails_over_keeping_session_and_ephemerals() {
    let mut cl = Cluster::start(3, &[]);
    let leader = cl.wait_leader(Duration::from_secs(10));
    let followers: Vec<u64> = cl.ids().into_iter().filter(|i| *i != leader).collect();
    let (a, b) = (followers[0], followers[1]);
    let mut c = client(&cl, a);
    c.create("/eph", Some(b"mine"), 1).expect("ephemeral create");
    let owner = c.exists("/eph", false).expect("exists").ephemeral_owner;
    assert_eq!(owner, c.session_id());
    let (_, stat) = c.get_data("/eph", false).expect("get");
    let resume = c.resume_request(stat.mzxid);
    cl.kill9(a);
    // Same session id and password on another server.
    let mut c2 = RawClient::connect_with(&cl.addr(b), &resume);
    assert_eq!(c2.session_id(), owner);
    let st = c2.exists("/eph", false).expect("ephemeral survived the failover");
    assert_eq!(st.ephemeral_owner, owner);
    // The session stays alive through the leader (pings via the follower), past its timeout.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(1000));
        c2.exists("/", false).expect("session still alive");
    }
    assert_eq!(client(&cl, leader).exists("/eph", false).expect("still there").ephemeral_owner, owner);
    // Closing it deletes the ephemeral everywhere.
    c2.close_session();
    wait_for(Duration::from_secs(5), "ephemeral deleted", || client(&cl, leader).exists("/eph", false).err().map(|_| ()));
}

#[test]
fn follower_far_behind_catches_up_by_snapshot() {
    let mut cl = Cluster::start(3, &["commitLogCount=50", "snapCount=100"]);
    let leader = cl.wait_leader(Duration::from_secs(10));
    let down = cl.ids().into_iter().find(|i| *i != leader).expect("a follower");
    cl.kill9(down);
    let mut c = client(&cl, leader);
    c.create("/s", None, 0).expect("create /s");
    for i in 0..300 {
        c.create(&format!("/s/n{i:04}"), Some(b"z"), 0).expect("create");
    }
    cl.start_node(down);
    wait_for(Duration::from_secs(20), "restarted follower syncs", || (cl.mode(down).as_deref() == Some("follower")).then_some(()));
    assert_eq!(children_at(&cl, down, "/s").len(), 300);
    let snap_for = format!("sync: SNAP: server {down} gets the snapshot at");
    assert!(cl.log(leader).contains(&snap_for), "leader log:\n{}", cl.log(leader));
    assert!(cl.log(leader).contains(&format!("is out to server {down}")), "leader log:\n{}", cl.log(leader));
    assert!(cl.log(down).contains("installed the leader's snapshot"), "follower log:\n{}", cl.log(down));
}

#[test]
fn sigstopped_leader_is_replaced_within_the_timers() {
    let mut cl = Cluster::start(3, &[]);
    let leader = cl.wait_leader(Duration::from_secs(10));
    let t0 = Instant::now();
    cl.sigstop(leader);
    let others: Vec<u64> = cl.ids().into_iter().filter(|i| *i != leader).collect();
    let new_leader = wait_for(Duration::from_secs(20), "a new leader among the others", || {
        others.iter().copied().find(|i| cl.mode(*i).as_deref() == Some("leader"))
    });
    wait_for(Duration::from_secs(20), "a write on the new leader", || try_with(&cl, new_leader, |c| c.create("/stop", None, 0).ok()));
    eprintln!("leader SIGSTOP -> first write on the new leader: {:?}", t0.elapsed());
    cl.sigcont(leader);
    wait_for(Duration::from_secs(20), "old leader follows", || (cl.mode(leader).as_deref() == Some("follower")).then_some(()));
    client(&cl, leader).exists("/stop", false).expect("old leader caught up");
}

#[test]
fn five_nodes_survive_two_failures() {
    let mut cl = Cluster::start(5, &[]);
    let leader = cl.wait_leader(Duration::from_secs(10));
    client(&cl, leader).create("/five", None, 0).expect("create");
    let victims: Vec<u64> = cl.ids().into_iter().filter(|i| *i != leader).take(2).collect();
    for v in &victims {
        cl.kill9(*v);
    }
    let alive: Vec<u64> = cl.ids().into_iter().filter(|i| !victims.contains(i)).collect();
    for id in &alive {
        wait_for(Duration::from_secs(10), "a write on a surviving server", || {
            try_with(&cl, *id, |c| c.create(&format!("/five/w{id}"), None, 0).ok())
        });
    }
    for id in &alive {
        assert_eq!(children_at(&cl, *id, "/five").len(), alive.len(), "server {id}");
    }
}

#[test]
fn requests_pipelined_behind_the_connect_request_are_answered_in_order() {
    // A client may send requests right behind its ConnectRequest; while the new session's
    // txn is in flight they wait, then run in order (they used to be read as another,
    // malformed ConnectRequest, which closed the connection).
    use arbor::jute::{self, CreateKind, Request, RequestHeader};
    use std::io::Write;
    let cl = Cluster::start(3, &[]);
    for id in cl.ids() {
        let mut bytes = common::connect_frame(10_000);
        let mut reqs = bytes::BytesMut::new();
        for i in 1..=3 {
            let r = Request::Create(common::create_req(
                CreateKind::Create,
                &format!("/early-{id}-{i}"),
                Some(b"x"),
                arbor::proto::Acl::open_unsafe(),
                0,
            ));
            jute::encode_request(&mut reqs, RequestHeader { xid: i, op: r.opcode() }, &r);
        }
        bytes.extend_from_slice(&reqs);
        let mut s = std::net::TcpStream::connect(cl.addr(id)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(&bytes).expect("send connect + requests in one write");
        let connect = common::read_frame(&mut s).expect("connect reply");
        let resp = jute::decode_connect_response(&connect).expect("a connect response");
        assert_ne!(resp.session_id, 0, "server {id} granted a session");
        for i in 1..=3 {
            let f = common::read_frame(&mut s).unwrap_or_else(|e| panic!("server {id}: reply {i}: {e}"));
            let (h, _) = jute::decode_reply_header(&f).expect("reply header");
            assert_eq!((h.xid, h.err), (i, 0), "server {id}: replies in order, without error");
        }
    }
}

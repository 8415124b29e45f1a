//! A session's pipelined requests on an ensemble: writes go to the leader without waiting for
//! the session's earlier writes, and yet every reply comes back in request order with the
//! result a one-at-a-time run gives — a read shows every earlier write of its session and no
//! later one, a failing write (bad version) neither changes anything nor overtakes the writes
//! before it, a sync comes after them, and the reply zxids never go down.
//!
//! Each session writes its whole burst in one go from a helper thread and the test checks
//! every reply against a model of what the session alone does to its own znodes.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use arbor::jute::{self, CreateKind, Request, RequestHeader, Response};
use common::cluster::Cluster;
use common::{create_req, RawClient};

/// What the reply to one request must be.
#[derive(Debug)]
enum Expect {
    /// err 0; for setData, the stat's version.
    SetOk(i32),
    Err(i32),
    /// err 0, the data and version the session's last successful setData left.
    Get(Vec<u8>, i32),
    /// err 0 (sync, create, delete).
    Ok,
}

const BAD_VERSION: i32 = -103;
const NO_NODE: i32 = -101;

/// `rounds` rounds of: setData (right version), getData, and now and then a setData with a
/// wrong version, a sync, a create and a delete of a child. Returns the requests and what
/// each reply must be.
fn script(path: &str, rounds: usize) -> (Vec<Request>, Vec<Expect>) {
    let (mut reqs, mut exp) = (Vec::new(), Vec::new());
    let mut version = 0;
    let mut data;
    for i in 0..rounds {
        let value = format!("{path}={i}").into_bytes();
        reqs.push(Request::SetData { path: path.into(), data: Some(value.clone()), version });
        version += 1;
        data = value;
        exp.push(Expect::SetOk(version));
        if i % 5 == 2 {
            // Right behind a write still in flight: answered after it, never before (a
            // follower's SyncDone must not overtake the write's commit).
            reqs.push(Request::Sync { path: path.into() });
            exp.push(Expect::Ok);
        }
        reqs.push(Request::GetData { path: path.into(), watch: false });
        exp.push(Expect::Get(data.clone(), version));
        if i % 7 == 3 {
            reqs.push(Request::SetData { path: path.into(), data: Some(b"never".to_vec()), version: version + 5 });
            exp.push(Expect::Err(BAD_VERSION));
            reqs.push(Request::GetData { path: path.into(), watch: false });
            exp.push(Expect::Get(data.clone(), version));
        }
        if i % 11 == 5 {
            reqs.push(Request::Sync { path: path.into() });
            exp.push(Expect::Ok);
        }
        if i % 13 == 7 {
            let child = format!("{path}/c{i}");
            reqs.push(Request::Create(create_req(CreateKind::Create, &child, Some(b"x"), arbor::proto::Acl::open_unsafe(), 0)));
            exp.push(Expect::Ok);
            reqs.push(Request::Exists { path: child.clone(), watch: false });
            exp.push(Expect::Ok);
            reqs.push(Request::Delete { path: child.clone(), version: -1 });
            exp.push(Expect::Ok);
            reqs.push(Request::Exists { path: child, watch: false });
            exp.push(Expect::Err(NO_NODE));
        }
    }
    (reqs, exp)
}

/// Send the whole burst at once; check every reply, in order. Returns the number checked.
fn run_burst(mut c: RawClient, path: &str, rounds: usize) -> usize {
    c.create(path, None, 0).expect("create the session's znode");
    let (reqs, exp) = script(path, rounds);
    let first_xid = 1000;
    let mut bytes = bytes::BytesMut::new();
    for (i, r) in reqs.iter().enumerate() {
        jute::encode_request(&mut bytes, RequestHeader { xid: first_xid + i as i32, op: r.opcode() }, r);
    }
    let mut writer: TcpStream = c.stream.try_clone().expect("clone stream");
    let sender = std::thread::spawn(move || writer.write_all(&bytes));
    c.stream.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
    let mut last_zxid = 0;
    for (i, (req, want)) in reqs.iter().zip(&exp).enumerate() {
        let xid = first_xid + i as i32;
        let (h, body) = c.wait_reply(xid).unwrap_or_else(|e| panic!("{path}: reply {i} of {} ({req:?}): {e}", reqs.len()));
        assert!(h.zxid >= last_zxid, "{path}: reply {i} ({req:?}) has zxid {:#x} below an earlier reply's {last_zxid:#x}", h.zxid);
        last_zxid = h.zxid;
        let resp = (h.err == 0).then(|| jute::decode_response(req.opcode(), &body).expect("decode reply"));
        match (want, h.err, resp) {
            (Expect::SetOk(v), 0, Some(Response::Stat(s))) => assert_eq!(s.version, *v, "{path}: request {i} {req:?}"),
            (Expect::Err(e), got, _) => assert_eq!(got, *e, "{path}: request {i} {req:?}"),
            (Expect::Get(d, v), 0, Some(Response::GetData { data, stat })) => {
                assert_eq!(data.as_deref(), Some(&d[..]), "{path}: read {i} must show the session's last write, no later one");
                assert_eq!(stat.version, *v, "{path}: read {i}");
            }
            (Expect::Ok, 0, _) => {}
            (want, err, resp) => panic!("{path}: request {i} {req:?}: wanted {want:?}, got err {err} {resp:?}"),
        }
    }
    sender.join().expect("writer thread").expect("write the burst");
    reqs.len()
}

#[test]
fn pipelined_requests_of_sessions_on_every_server_are_answered_in_order_with_one_at_a_time_results() {
    let mut cl = Cluster::start(3, &["tickTime=2000"]);
    cl.wait_leader(Duration::from_secs(30));
    // Two sessions per server, all bursting at once; three repetitions on fresh znodes.
    for rep in 0..3 {
        let mut runs = Vec::new();
        for id in cl.ids() {
            for k in 0..2 {
                let c = RawClient::connect(&cl.addr(id), 30_000);
                let path = format!("/pipe-{rep}-{id}-{k}");
                runs.push(std::thread::spawn(move || run_burst(c, &path, 600)));
            }
        }
        let checked: usize = runs.into_iter().map(|r| r.join().expect("a burst checks out")).sum();
        assert!(checked > 6 * 1200, "every session's burst was checked ({checked} replies)");
    }
    // Every server ends with the same data: the last round's writes, read from each.
    let leader = cl.wait_leader(Duration::from_secs(10));
    let mut lc = RawClient::connect(&cl.addr(leader), 30_000);
    let want = lc.get_data("/pipe-2-1-0", false).expect("read on the leader");
    for id in cl.ids() {
        let mut c = RawClient::connect(&cl.addr(id), 30_000);
        c.call(&Request::Sync { path: "/".into() }).expect("sync");
        assert_eq!(c.get_data("/pipe-2-1-0", false).expect("read"), want, "server {id} agrees");
    }
}

//! Pipelined bursts of large requests from clients that send nothing afterwards.
//!
//! The event loop's readiness is edge-triggered: a connection that the loop stops reading
//! before the kernel says `WouldBlock` is never reported again until its peer sends more.
//! A client that writes 200 requests of ~1 MB in one go and then only waits sends nothing
//! more, so every byte must be read on the loop's own initiative (issue: 3 of 8 such runs
//! used to end with 1–3 replies missing and MBs left unread in the server's Recv-Q).
//! Each test writes the whole burst from a helper thread while the main thread reads the
//! replies, then asserts that every reply arrived, in order, without error.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use arbor::jute::{self, CreateKind, Request, RequestHeader};
use common::cluster::Cluster;
use common::{create_req, Node, RawClient};

const BURST: usize = 200;

/// One buffer holding `BURST` requests with xids 1..=BURST.
fn burst(mut req: impl FnMut(usize) -> Request) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    for i in 0..BURST {
        let r = req(i);
        jute::encode_request(&mut out, RequestHeader { xid: i as i32 + 1, op: r.opcode() }, &r);
    }
    out.to_vec()
}

/// Write `bytes` in one go from a thread; read `BURST` replies here. Returns the time from
/// the first byte sent to the last reply.
fn send_burst_and_collect(c: &mut RawClient, bytes: Vec<u8>, limit: Duration) -> Duration {
    let mut writer: TcpStream = c.stream.try_clone().expect("clone stream");
    let t0 = Instant::now();
    let sender = std::thread::spawn(move || writer.write_all(&bytes));
    c.stream.set_read_timeout(Some(limit)).expect("read timeout");
    for xid in 1..=BURST as i32 {
        let (h, _) = c
            .wait_reply(xid)
            .unwrap_or_else(|e| panic!("reply {xid} of {BURST} did not arrive within {limit:?} of the burst: {e}"));
        assert_eq!(h.err, 0, "request {xid} failed with {}", h.err);
    }
    sender.join().expect("writer thread").expect("write the burst");
    t0.elapsed()
}

#[test]
fn standalone_answers_every_request_of_a_1mb_setdata_burst() {
    let node = Node::start_standalone(&[]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    c.create("/burst", None, 0).expect("create /burst");
    // 1 MB of data plus path and headers stays under jute.maxbuffer (0xfffff).
    let data = vec![0x5au8; 1_000_000];
    let bytes = burst(|_| Request::SetData { path: "/burst".into(), data: Some(data.clone()), version: -1 });
    let took = send_burst_and_collect(&mut c, bytes, Duration::from_secs(60));
    let (_, stat) = c.get_data("/burst", false).expect("get /burst");
    assert_eq!(stat.version, BURST as i32, "every setData applied once");
    eprintln!("standalone: {BURST} pipelined 1 MB setData answered in {took:?}");
}

#[test]
fn follower_answers_every_request_of_an_800kb_create_burst() {
    // tickTime 2000: sessions may last up to 40 s, far beyond the burst.
    let cl = Cluster::start(3, &["tickTime=2000"]);
    let leader = (1..=3).find(|id| cl.mode(*id).as_deref() == Some("leader")).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let mut c = RawClient::connect(&cl.addr(follower), 30_000);
    c.create("/fburst", None, 0).expect("create /fburst");
    let data = vec![0xa5u8; 800_000];
    let bytes = burst(|i| {
        Request::Create(create_req(CreateKind::Create, &format!("/fburst/n{i:03}"), Some(&data), arbor::proto::Acl::open_unsafe(), 0))
    });
    let took = send_burst_and_collect(&mut c, bytes, Duration::from_secs(90));
    eprintln!("through a follower: {BURST} pipelined 800 kB creates answered in {took:?}");
    // Every server holds all of them, byte for byte.
    for id in 1..=3 {
        let mut r = RawClient::connect(&cl.addr(id), 30_000);
        r.call(&Request::Sync { path: "/fburst".into() }).expect("sync");
        for i in [0, BURST / 2, BURST - 1] {
            let (d, _) = r.get_data(&format!("/fburst/n{i:03}"), false).expect("read back");
            assert_eq!(d.as_deref(), Some(&data[..]), "server {id} /fburst/n{i:03}");
        }
        let (_, stat) = r.get_data("/fburst", false).expect("stat /fburst");
        assert_eq!(stat.num_children, BURST as i32, "server {id}");
    }
}

#[test]
fn leader_paces_a_1mb_setdata_burst_to_paused_followers_without_dropping_them() {
    // Pipelined writes reach the proposal stream at once. With both followers paused
    // (SIGSTOP, well within syncLimit), 200 MB of proposals must wait in the client's
    // socket (the leader stops reading it while no quorum of followers takes its output),
    // not pile up until the followers' connections are closed for unsent output.
    let cl = Cluster::start(3, &["tickTime=2000"]);
    let leader = (1..=3).find(|id| cl.mode(*id).as_deref() == Some("leader")).expect("a leader");
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let mut c = RawClient::connect(&cl.addr(leader), 30_000);
    c.create("/lburst", None, 0).expect("create /lburst");
    let data = vec![0x3cu8; 1_000_000];
    let bytes = burst(|_| Request::SetData { path: "/lburst".into(), data: Some(data.clone()), version: -1 });
    for &f in &followers {
        cl.sigstop(f);
    }
    let mut writer: TcpStream = c.stream.try_clone().expect("clone stream");
    let sender = std::thread::spawn(move || writer.write_all(&bytes));
    std::thread::sleep(Duration::from_millis(2000));
    for &f in &followers {
        cl.sigcont(f);
    }
    c.stream.set_read_timeout(Some(Duration::from_secs(90))).expect("read timeout");
    for xid in 1..=BURST as i32 {
        let (h, _) = c.wait_reply(xid).unwrap_or_else(|e| panic!("reply {xid} of {BURST}: {e}"));
        assert_eq!(h.err, 0, "request {xid} failed with {}", h.err);
    }
    sender.join().expect("writer thread").expect("write the burst");
    for id in 1..=3 {
        let mut r = RawClient::connect(&cl.addr(id), 30_000);
        r.call(&Request::Sync { path: "/lburst".into() }).expect("sync");
        let (d, stat) = r.get_data("/lburst", false).expect("read back");
        assert_eq!(stat.version, BURST as i32, "server {id} applied every setData once");
        assert_eq!(d.as_deref(), Some(&data[..]), "server {id}");
        let log = cl.log(id);
        assert!(!log.contains("unread output"), "server {id} closed a connection for unsent output:\n{log}");
        assert!(!log.contains("role changed role=looking"), "server {id} lost its leader during the burst:\n{log}");
    }
}

//! The durability rule with the fsync off the loop: nothing that reveals a txn leaves before
//! the txn is durable, while the loop itself never waits for the disk.
//!
//! `ARBOR_FAULT_FSYNC_DELAY_MS` makes every fdatasync of the server take that much longer,
//! so that "waits for the fsync" and "does not wait for it" become visible in timings with a
//! wide margin (hundreds of ms against the sub-millisecond path without the delay).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbor::jute::{CreateKind, Request};
use common::{create_req, Node, RawClient};

const DELAY_MS: u64 = 300;
const DELAY: Duration = Duration::from_millis(DELAY_MS);

fn create(path: &str) -> Request {
    Request::Create(create_req(CreateKind::Create, path, Some(b"d"), arbor::proto::Acl::open_unsafe(), 0))
}

#[test]
fn standalone_write_replies_and_reads_that_see_a_write_wait_for_its_fsync() {
    let delay = DELAY_MS.to_string();
    let node = Node::start_standalone_env(&[], &[("ARBOR_FAULT_FSYNC_DELAY_MS", &delay)]);
    let mut a = RawClient::connect(&node.addr(), 30_000);
    let addr = node.addr();
    // Another session polls for the znode: it must not see it before it is durable.
    let seen_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicBool::new(false));
    let poller = {
        let (seen_at, stop, ready) = (seen_at.clone(), stop.clone(), ready.clone());
        std::thread::spawn(move || {
            let mut b = RawClient::connect(&addr, 30_000);
            ready.store(true, Ordering::SeqCst);
            while !stop.load(Ordering::SeqCst) {
                if b.exists("/durable", false).is_ok() {
                    seen_at.lock().expect("lock").get_or_insert(Instant::now());
                    return;
                }
            }
        })
    };
    while !ready.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    a.call(&create("/durable")).expect("create");
    let replied = t0.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    poller.join().expect("poller");
    let seen = seen_at.lock().expect("lock").expect("the other session saw the znode").duration_since(t0);
    eprintln!("fsync delayed by {DELAY:?}: write reply after {replied:?}, another session first saw it after {seen:?}");
    assert!(replied >= DELAY, "the reply left {replied:?} after the request, before its fsync ({DELAY:?})");
    assert!(seen >= DELAY, "another session saw the write {seen:?} after it was sent, before its fsync ({DELAY:?})");
}

#[test]
fn standalone_group_commit_grows_with_load_while_syncs_are_slow() {
    // 8 sessions x 25 pipelined creates against 300 ms fsyncs: one fsync at a time, each
    // covering everything written meanwhile. Serially it would take 200 x 300 ms = 60 s.
    let delay = DELAY_MS.to_string();
    let node = Node::start_standalone_env(&[], &[("ARBOR_FAULT_FSYNC_DELAY_MS", &delay)]);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let addr = node.addr();
            std::thread::spawn(move || {
                let mut c = RawClient::connect(&addr, 30_000);
                let xids: Vec<i32> = (0..25).map(|i| c.send(&create(&format!("/g{w}-{i}")))).collect();
                for x in xids {
                    let (h, _) = c.wait_reply(x).expect("reply");
                    assert_eq!(h.err, 0);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let took = t0.elapsed();
    eprintln!("200 creates from 8 pipelining sessions with {DELAY:?} fsyncs: {took:?}");
    assert!(took < DELAY * 20, "took {took:?}: syncs are not grouped");
}

#[test]
fn sigkill_right_after_replies_leave_loses_no_acknowledged_write() {
    // 20 runs: a burst of pipelined creates, SIGKILL the moment the k-th reply arrives,
    // restart, and every acknowledged create must be there.
    let mut node = Node::start_standalone(&[]);
    let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut acked_total = 0;
    for run in 0..20 {
        let mut c = RawClient::connect(&node.addr(), 30_000);
        let n = 200;
        let kill_after = 1 + (next() % 150) as usize;
        let xids: Vec<(i32, String)> = (0..n)
            .map(|i| {
                let p = format!("/r{run}-{i}");
                (c.send(&create(&p)), p)
            })
            .collect();
        let mut acked = Vec::new();
        for (x, p) in &xids {
            let (h, _) = c.wait_reply(*x).expect("reply");
            assert_eq!(h.err, 0, "{p}");
            acked.push(p.clone());
            if acked.len() == kill_after {
                node.kill9();
                break;
            }
        }
        node.start_again();
        let mut r = RawClient::connect(&node.addr(), 30_000);
        for p in &acked {
            assert!(r.exists(p, false).is_ok(), "run {run}: acknowledged {p} lost after SIGKILL");
        }
        acked_total += acked.len();
    }
    eprintln!("20 SIGKILLs right after a reply: all {acked_total} acknowledged creates survived");
}

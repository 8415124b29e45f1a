//! A follower far behind a leader with a large state catches up by SNAP.
//!
//! Before the SNAP was streamed, one peer frame held the whole state: past ~2 MiB the
//! follower could never rejoin (the frame broke the pending-output and frame caps, and the
//! leader serialised everything again on every retry). Here the state is over 300 MB: the
//! follower must rejoin, serve exactly the leader's data, and a retry of the same follower
//! must reuse the leader's snapshot instead of making another. The leader's memory may not
//! grow by anything like the state's size while it streams, and a client of the leader must
//! keep being served. Times are printed (run with `--nocapture`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor::jute::{CreateKind, Request};
use common::cluster::Cluster;
use common::{create_req, RawClient};

/// 320 znodes of 1,000,000 bytes (jute.maxbuffer is 0xfffff) and 1,000 small ones: more
/// txns than the leader keeps for a DIFF (commitLogCount 500).
const BIG: usize = 320;
const BIG_BYTES: usize = 1_000_000;
const SMALL: usize = 1000;
/// Requests in flight while loading.
const WINDOW: usize = 16;

fn big_data(i: usize) -> Vec<u8> {
    let mut d = vec![(i % 251) as u8; BIG_BYTES];
    d[..8].copy_from_slice(&(i as u64).to_be_bytes());
    d
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// Create `paths` with their data, `WINDOW` requests in flight.
fn load(c: &mut RawClient, items: impl Iterator<Item = (String, Vec<u8>)>) {
    let mut inflight = std::collections::VecDeque::new();
    for (path, data) in items {
        let req = Request::Create(create_req(CreateKind::Create, &path, Some(&data), arbor::proto::Acl::open_unsafe(), 0));
        inflight.push_back((c.send(&req), path));
        if inflight.len() >= WINDOW {
            let (xid, path) = inflight.pop_front().expect("in flight");
            let (h, _) = c.wait_reply(xid).expect("reply");
            assert_eq!(h.err, 0, "create {path}");
        }
    }
    for (xid, path) in inflight {
        let (h, _) = c.wait_reply(xid).expect("reply");
        assert_eq!(h.err, 0, "create {path}");
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn follower_rejoins_by_a_streamed_snapshot_of_over_300_mb() {
    // tickTime 2000 (syncLimit 10 s): the follower's loop is busy for a while installing.
    let mut cl = Cluster::start(3, &["tickTime=2000"]);
    let leader = cl.wait_leader(Duration::from_secs(30));
    let down = cl.ids().into_iter().find(|i| *i != leader).expect("a follower");
    cl.kill9(down);

    let t_load = Instant::now();
    let mut c = RawClient::connect(&cl.addr(leader), 40_000);
    c.create("/big", None, 0).expect("create /big");
    c.create("/small", None, 0).expect("create /small");
    load(&mut c, (0..BIG).map(|i| (format!("/big/n{i:04}"), big_data(i))));
    load(&mut c, (0..SMALL).map(|i| (format!("/small/s{i:04}"), format!("small {i}").into_bytes())));
    let state_mb = (BIG * BIG_BYTES) as f64 / 1e6;
    eprintln!("loaded {state_mb:.0} MB in {BIG} znodes + {SMALL} small ones in {:.1} s", t_load.elapsed().as_secs_f64());

    let leader_pid = cl.pid(leader).expect("leader pid");
    let rss_before = status_kb(leader_pid, "VmRSS:");

    // A client of the leader keeps reading while the follower syncs: its worst wait is the
    // leader's longest stall as a client sees it.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (addr, stop) = (cl.addr(leader), stop.clone());
        std::thread::spawn(move || {
            let mut r = RawClient::connect(&addr, 40_000);
            let (mut worst, mut n) = (Duration::ZERO, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                r.get_data("/small/s0000", false).expect("read on the leader during the sync");
                worst = worst.max(t.elapsed());
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (worst, n)
        })
    };

    // First attempt: the follower dies as soon as the leader has begun its snapshot. The
    // retry must get the same snapshot (being written or on disk), not a new one.
    cl.start_node(down);
    let first = format!("sync: SNAP: server {down} gets the snapshot at");
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&cl.log(leader), &first) == 0 {
        assert!(Instant::now() < deadline, "no SNAP began within 60 s; leader log:\n{}", cl.log(leader));
        std::thread::sleep(Duration::from_millis(5));
    }
    cl.kill9(down);
    std::thread::sleep(Duration::from_millis(300));

    let t_sync = Instant::now();
    cl.start_node(down);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if cl.mode(down).as_deref() == Some("follower") {
            let mut f = RawClient::connect(&cl.addr(down), 40_000);
            if f.exists("/big", false).map(|s| s.num_children).unwrap_or(0) == BIG as i32 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server {down} did not rejoin within 180 s\n--- leader ---\n{}\n--- follower ---\n{}",
            cl.log(leader),
            cl.log(down)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rejoin = t_sync.elapsed();
    let rss_hwm = status_kb(leader_pid, "VmHWM:");
    stop.store(true, Ordering::Relaxed);
    let (worst_read, reads) = reader.join().expect("reader thread");

    let (llog, flog) = (cl.log(leader), cl.log(down));
    let snap_lines: Vec<&str> = llog.lines().filter(|l| l.contains(&first)).collect();
    let snapshots_made = llog.lines().filter(|l| l.contains("snapshot started")).count();
    eprintln!("--- leader's SNAP lines ---");
    for l in llog.lines().filter(|l| l.contains("SNAP") || l.contains("snapshot started") || l.contains("snapshot done")) {
        eprintln!("  {l}");
    }
    eprintln!("--- follower's SNAP lines ---");
    for l in flog.lines().filter(|l| l.contains("SNAP")) {
        eprintln!("  {l}");
    }
    eprintln!(
        "rejoin of a follower {state_mb:.0} MB behind: {:.1} s from its (second) start to serving all data; \
         leader RSS {} MB before, peak {} MB during; a leader client's slowest read {:?} over {reads} reads",
        rejoin.as_secs_f64(),
        rss_before / 1024,
        rss_hwm / 1024,
        worst_read
    );
    assert_eq!(snapshots_made, 1, "the retry reused the leader's snapshot:\n{}", snap_lines.join("\n"));
    assert!(
        snap_lines.iter().skip(1).all(|l| l.contains("snapshot=on-disk") || l.contains("snapshot=being-written")),
        "a retry got a fresh snapshot:\n{}",
        snap_lines.join("\n")
    );
    assert!(count(&llog, &format!("is out to server {down}")) >= 1, "leader log:\n{llog}");
    assert!(flog.contains("installed the leader's snapshot"), "follower log:\n{flog}");
    // Streaming holds a window per follower, never the state: the old way needed another
    // state-sized buffer (and the snapshot child's pages are not the leader's RSS).
    assert!(
        rss_hwm < rss_before + 128 * 1024,
        "leader peak RSS {} MB vs {} MB before the SNAP",
        rss_hwm / 1024,
        rss_before / 1024
    );
    assert!(worst_read < Duration::from_secs(2), "a leader client waited {worst_read:?} during the SNAP");

    // The rejoined follower serves exactly the leader's data, Stat included.
    let mut l = RawClient::connect(&cl.addr(leader), 40_000);
    let mut f = RawClient::connect(&cl.addr(down), 40_000);
    for i in 0..BIG {
        let p = format!("/big/n{i:04}");
        let (fd, fs) = f.get_data(&p, false).expect("follower read");
        let (_, ls) = l.get_data(&p, false).expect("leader read");
        assert!(fd.as_deref() == Some(&big_data(i)[..]), "{p}: data differs on server {down}");
        assert_eq!(format!("{fs:?}"), format!("{ls:?}"), "{p}: Stat");
    }
    for i in (0..SMALL).step_by(97) {
        let p = format!("/small/s{i:04}");
        assert_eq!(f.get_data(&p, false).expect("read"), l.get_data(&p, false).expect("read"), "{p}");
    }
    // And it goes on following: a write through it lands everywhere.
    f.create("/after", Some(b"x"), 0).expect("write through the rejoined follower");
    l.call(&Request::Sync { path: "/after".into() }).expect("sync");
    assert!(l.exists("/after", false).is_ok());
}

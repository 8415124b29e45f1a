//! Election latency over many runs, asserting on the worst run (issue 8 part 3): medians of a
//! few runs hid elections that waited initLimit·tickTime for nothing.
//!
//! - Leader SIGKILL at tickTime 200: every failover, from the kill to the first successful
//!   write through a survivor, under 400 ms (ZooKeeper 3.8's median here is 441 ms).
//! - A whole 3-node ensemble holding data, stopped with SIGTERM and started again at tickTime
//!   2000: every restart, from starting the processes to the first successful write, under 3 s.
//!
//! 50 failovers and 20 restarts, 100–170 s together on 2 cores (the two tests take turns:
//! they measure time). `ARBOR_FAILOVER_RUNS` / `ARBOR_RESTART_RUNS` change the counts, e.g.
//! for a quick look: `ARBOR_FAILOVER_RUNS=5 ARBOR_RESTART_RUNS=3 cargo test --release --test
//! election_timing -- --nocapture`. Each prints n, min, median, max and every run.
//!
//! Before the fixes of issue 8 (same harness, n=50/20): failovers 212 / 415 / 2421 ms
//! (min / median / max; most near 420 ms: the winner learnt a supporter's vote only at its
//! next resend and closed the early follower's connection; 2.4 s: it ignored its supporter's
//! Following answer until initLimit); restarts 1266 / 1911 / 21263 ms, 8 of 20 near 21 s
//! (the winner never counted its supporters' Following answers). After: 215 / 233 / 254 ms
//! and 830 / 1118 / 1495 ms.
mod common;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbor::jute::{self, ConnectRequest, CreateKind, Request, RequestHeader};
use arbor::proto::Acl;
use common::cluster::Cluster;
use common::{create_req, read_frame};
use rand::Rng;

const FAILOVER_MAX: Duration = Duration::from_millis(400);
const RESTART_MAX: Duration = Duration::from_secs(3);

/// One session, one create: Ok once the create is acknowledged. Short timeouts, so an
/// attempt against a server that is not serving fails fast.
fn try_create(addr: &SocketAddr, path: &str) -> io::Result<()> {
    let mut s = TcpStream::connect_timeout(addr, Duration::from_millis(300))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut out = bytes::BytesMut::new();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 4000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    jute::encode_connect_request(&mut out, &req);
    s.write_all(&out)?;
    let resp = jute::decode_connect_response(&read_frame(&mut s)?).map_err(|e| io::Error::other(e.to_string()))?;
    if resp.session_id == 0 {
        return Err(io::Error::other("session refused"));
    }
    out.clear();
    let create = Request::Create(create_req(CreateKind::Create, path, Some(b"x"), Acl::open_unsafe(), 0));
    jute::encode_request(&mut out, RequestHeader { xid: 1, op: create.opcode() }, &create);
    s.write_all(&out)?;
    for _ in 0..16 {
        let frame = read_frame(&mut s)?;
        let (h, _) = jute::decode_reply_header(&frame).map_err(|e| io::Error::other(e.to_string()))?;
        if h.xid == 1 {
            return if h.err == 0 { Ok(()) } else { Err(io::Error::other(format!("create: error {}", h.err))) };
        }
    }
    Err(io::Error::other("no reply"))
}

/// Per address: start times of the attempts in flight, and when the last one ended.
type Attempts = (Vec<Instant>, Option<Instant>);

/// Keep trying creates through every address until one succeeds; returns when it did.
/// As scripts/failover-bench.py: a new attempt 5 ms after a failure, and an extra one when
/// the newest has been pending 250 ms (an attempt can hang on a server that dies under it).
fn first_write(addrs: &[String], tag: &str, give_up: Duration) -> Option<Instant> {
    let start = Instant::now();
    let done: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicUsize::new(0));
    let addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().expect("address")).collect();
    let state: Arc<Mutex<Vec<Attempts>>> = Arc::new(Mutex::new(vec![(Vec::new(), None); addrs.len()]));
    let mut handles = Vec::new();
    while start.elapsed() < give_up && done.lock().expect("lock").is_none() {
        let now = Instant::now();
        for (i, addr) in addrs.iter().enumerate() {
            let mut st = state.lock().expect("lock");
            let (pending, last_end) = &mut st[i];
            let fresh = pending.is_empty() && last_end.is_none_or(|t| now - t >= Duration::from_millis(5));
            let stuck = pending.last().is_some_and(|t| now - *t >= Duration::from_millis(250)) && pending.len() < 4;
            if !(fresh || stuck) {
                continue;
            }
            pending.push(now);
            drop(st);
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let (addr, path) = (*addr, format!("/probe-{tag}-{n}"));
            let (done, stop, state) = (done.clone(), stop.clone(), state.clone());
            handles.push(std::thread::spawn(move || {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let ok = try_create(&addr, &path).is_ok();
                let end = Instant::now();
                if ok {
                    done.lock().expect("lock").get_or_insert(end);
                }
                let mut st = state.lock().expect("lock");
                st[i].0.retain(|t| *t != now);
                st[i].1 = Some(end);
            }));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let t = *done.lock().expect("lock");
    t
}

/// The tests of this file measure time: they run one at a time even when the harness runs
/// tests in parallel.
static SERIAL: Mutex<()> = Mutex::new(());

fn runs(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn summary(what: &str, xs: &[Duration]) -> String {
    let mut v: Vec<u128> = xs.iter().map(Duration::as_millis).collect();
    v.sort();
    let n = v.len();
    format!(
        "{what}: n={n} min={} ms median={} ms max={} ms; all (ms, sorted): {v:?}",
        v.first().copied().unwrap_or(0),
        if n == 0 { 0 } else { v[n / 2] },
        v.last().copied().unwrap_or(0)
    )
}

/// Until every server answers a write (after a start, everyone is in and serving).
fn warm_up(cl: &Cluster, tag: &str) {
    for id in cl.ids() {
        let addr = vec![cl.addr(id)];
        assert!(first_write(&addr, &format!("{tag}-warm{id}"), Duration::from_secs(30)).is_some(), "server {id} takes no write");
    }
}

fn leader_sigkill_failovers(n: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cl = Cluster::start(3, &[]);
    warm_up(&cl, "f");
    let mut rng = rand::thread_rng();
    let mut times = Vec::new();
    for run in 0..n {
        let leader = cl.wait_leader(Duration::from_secs(30));
        // Heartbeats and timeouts run on tick boundaries: hit a random phase of them.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..200)));
        let survivors: Vec<String> = cl.ids().into_iter().filter(|i| *i != leader).map(|i| cl.addr(i)).collect();
        let t0 = Instant::now();
        cl.kill9(leader);
        let Some(t) = first_write(&survivors, &format!("f{run}"), Duration::from_secs(30)) else {
            panic!("run {run}: no write within 30 s after killing leader {leader}; {}", summary("so far", &times));
        };
        let took = t - t0;
        eprintln!("failover {run}: leader {leader} killed, first write after {} ms", took.as_millis());
        times.push(took);
        if took >= FAILOVER_MAX {
            for id in cl.ids() {
                eprintln!("--- server {id} log (tail) ---\n{}", tail(&cl.log(id), 30));
            }
        }
        cl.start_node(leader);
        cl.wait_leader(Duration::from_secs(30));
        warm_up(&cl, &format!("f{run}"));
    }
    let s = summary("leader SIGKILL failover, tickTime 200", &times);
    eprintln!("{s}");
    assert!(times.iter().all(|t| *t < FAILOVER_MAX), "a failover took {FAILOVER_MAX:?} or more: {s}");
}

fn full_restarts_with_data(n: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cl = Cluster::start(3, &["tickTime=2000"]);
    warm_up(&cl, "r");
    // Some state to recover: 300 znodes of 1 KB.
    let leader = cl.wait_leader(Duration::from_secs(30));
    let mut c = common::RawClient::connect(&cl.addr(leader), 30_000);
    c.create("/data", None, 0).expect("create /data");
    for i in 0..300 {
        c.create(&format!("/data/n{i:04}"), Some(&[b'v'; 1024]), 0).expect("create");
    }
    drop(c);
    let mut rng = rand::thread_rng();
    let mut times = Vec::new();
    for run in 0..n {
        cl.stop_all();
        let addrs: Vec<String> = cl.ids().into_iter().map(|i| cl.addr(i)).collect();
        let t0 = Instant::now();
        for id in cl.ids() {
            cl.start_node(id);
            // An operator's (or a service manager's) starts are a few ms apart.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
        }
        let Some(t) = first_write(&addrs, &format!("r{run}"), Duration::from_secs(60)) else {
            panic!("run {run}: no write within 60 s of the restart; {}", summary("so far", &times));
        };
        let took = t - t0;
        eprintln!("restart {run}: first write after {} ms", took.as_millis());
        times.push(took);
        if took >= RESTART_MAX {
            for id in cl.ids() {
                eprintln!("--- server {id} log (tail) ---\n{}", tail(&cl.log(id), 60));
            }
        }
        cl.wait_leader(Duration::from_secs(60));
        warm_up(&cl, &format!("r{run}"));
    }
    let s = summary("full ensemble restart with data, tickTime 2000", &times);
    eprintln!("{s}");
    assert!(times.iter().all(|t| *t < RESTART_MAX), "a restart took {RESTART_MAX:?} or more: {s}");
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Leader SIGKILL at tickTime 200, 50 times: the worst failover is under 400 ms.
#[test]
fn every_leader_failover_is_quick() {
    leader_sigkill_failovers(runs("ARBOR_FAILOVER_RUNS", 50));
}

/// A whole ensemble with data restarted at tickTime 2000, 20 times: the worst under 3 s.
#[test]
fn every_full_restart_is_quick() {
    full_restarts_with_data(runs("ARBOR_RESTART_RUNS", 20));
}

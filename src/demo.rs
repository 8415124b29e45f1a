//! `arbor demo`: the failover story in one command. Starts a 3-server ensemble as child
//! processes (config/local-3.cfg's layout, a fresh temporary dataDir), runs a mixed bench of
//! reads and creates with a per-second throughput chart, SIGKILLs the leader halfway, shows
//! the dip, the new leader and how long the election took, restarts the killed server and
//! shows it rejoin (and how it synced), prints the report, then reads back every create the
//! ensemble acknowledged. Exit status 0 only if none was lost.
//!
//! Ports: the config's by default; `--base-port P` uses P+1..P+3 for clients and P+11.., P+21..
//! for quorum and election, so tests and CI runs do not collide with anything on 2181.
//! Children are stopped by PID; the temporary directory is removed at the end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bench::{self, BenchOpts, Observer, Second, SoFar, Workload, WriteKind};
use crate::client::{parse_endpoints, Client, ClientError, ClientOptions};
use crate::jute::Request;
use crate::local::{self, Ensemble};
use crate::proto::ServerId;

#[derive(Clone, Debug)]
pub struct DemoOpts {
    pub config: PathBuf,
    pub duration: Duration,
    pub base_port: Option<u16>,
    pub clients: usize,
    /// Leave the temporary directory (configs, data, each server's arbor.log) for a look.
    pub keep: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Local(#[from] local::LocalError),
    #[error("{0}")]
    Bench(#[from] bench::BenchError),
    #[error("cannot prepare {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Failed(String),
}

/// Three servers on 127.0.0.1: clients on `c+1..c+3`, quorum `q+1..`, election `e+1..`.
/// Three servers on 127.0.0.1: client ports c+1..3, quorum q+1..3, election e+1..3, admin
/// (console) a+1..3.
fn three_servers(data: &str, c: u16, q: u16, e: u16, a: u16) -> String {
    let mut t = String::from("# written by arbor demo\ntickTime=2000\ninitLimit=10\nsyncLimit=5\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n");
    t.push_str(data);
    t.push_str("\nadmin.serverAddress=127.0.0.1\n");
    for id in 1..=3u16 {
        t.push_str(&format!("server.{id}=127.0.0.1:{}:{};127.0.0.1:{}\n", q + id, e + id, c + id));
        t.push_str(&format!("admin.serverPort.{id}={}\n", a + id));
    }
    t
}

/// The config the demo runs: the given one with dataDir moved into `dir`; with a base port,
/// the same shape on other ports; if the default config is not there (run outside the
/// repository), config/local-3.cfg's layout written out.
fn write_config(opts: &DemoOpts, dir: &Path) -> Result<PathBuf, DemoError> {
    let data = format!("dataDir={}/{{id}}", dir.display());
    let text = match (opts.base_port, std::fs::read_to_string(&opts.config)) {
        (Some(p), _) => three_servers(&data, p, p + 10, p + 20, p + 30),
        (None, Ok(orig)) => {
            orig.lines()
                .map(|l| if l.trim_start().starts_with("dataDir") { data.clone() } else { l.to_string() })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        }
        (None, Err(_)) if opts.config == Path::new(DEFAULT_CONFIG) => three_servers(&data, 2180, 2887, 3887, 8080),
        (None, Err(source)) => return Err(DemoError::Io { path: opts.config.clone(), source }),
    };
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, text).map_err(|source| DemoError::Io { path: path.clone(), source })?;
    Ok(path)
}

/// What `--config` defaults to.
pub const DEFAULT_CONFIG: &str = "config/local-3.cfg";

/// The per-second chart: one bar per second, scaled to the best second so far.
struct Chart {
    second: Arc<AtomicU32>,
    best: u64,
    out: Arc<Mutex<()>>,
}

impl Observer for Chart {
    fn on_second(&mut self, s: &Second, _: &SoFar) {
        self.best = self.best.max(s.ops).max(1);
        let width = (s.ops * 50 / self.best) as usize;
        let _g = self.out.lock();
        println!(
            "{:>4}s |{:<50}| {:>7} ops/s  p99 {:>9}  errors {}",
            s.second + 1,
            "#".repeat(width),
            s.ops,
            bench::fmt_us(s.p99_us),
            s.errors
        );
        self.second.store(s.second + 1, Ordering::SeqCst);
    }
}

fn say(out: &Mutex<()>, text: &str) {
    let _g = out.lock();
    println!("{text}");
}

/// What happened around the kill, for the summary.
#[derive(Default, Debug)]
struct Failover {
    killed: Option<ServerId>,
    election: Option<Duration>,
    new_leader: Option<ServerId>,
    rejoined: Option<Duration>,
}

/// At `kill_at` seconds into the bench: SIGKILL the leader, time the election, restart the
/// victim and wait for it to follow. Every wait is bounded (and ends on Ctrl-C).
fn inject(ens: &Mutex<Ensemble>, second: &AtomicU32, kill_at: u32, out: &Mutex<()>, done: &AtomicBool) -> Failover {
    let mut f = Failover::default();
    while second.load(Ordering::SeqCst) < kill_at {
        if done.load(Ordering::SeqCst) || bench::STOP.load(Ordering::SeqCst) {
            return f;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let lock = || ens.lock().unwrap_or_else(|p| p.into_inner());
    let Some(leader) = lock().ready_leader() else {
        say(out, "       !! no single leader at kill time; skipping the kill");
        return f;
    };
    let pid = lock().kill9(leader);
    let t0 = Instant::now();
    say(out, &format!("       >> SIGKILL leader: server {leader} (pid {})", pid.unwrap_or(0)));
    f.killed = Some(leader);
    while t0.elapsed() < Duration::from_secs(30) && !bench::STOP.load(Ordering::SeqCst) {
        if let Some(l) = lock().ready_leader() {
            f.election = Some(t0.elapsed());
            f.new_leader = Some(l);
            say(out, &format!("       >> new leader: server {l}, elected {:.2} s after the kill", t0.elapsed().as_secs_f64()));
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if f.new_leader.is_none() {
        say(out, "       !! no new leader within 30 s");
        return f;
    }
    std::thread::sleep(Duration::from_secs(1));
    let t1 = Instant::now();
    match lock().spawn(leader) {
        Ok(pid) => say(out, &format!("       >> restarted server {leader} (pid {pid})")),
        Err(e) => {
            say(out, &format!("       !! restart of server {leader} failed: {e}"));
            return f;
        }
    }
    let addr = lock().client_addr(leader);
    while t1.elapsed() < Duration::from_secs(30) && !bench::STOP.load(Ordering::SeqCst) {
        if addr.and_then(local::mode_of).as_deref() == Some("follower") {
            f.rejoined = Some(t1.elapsed());
            let how = sync_kind(lock().log_path(leader).as_deref());
            say(out, &format!("       >> server {leader} rejoined as follower {:.2} s after restart ({how})", t1.elapsed().as_secs_f64()));
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f
}

/// How the restarted server caught up, from its log's last start: the follower logs
/// `synced with the leader … mode=DIFF|TRUNC|SNAP`.
fn sync_kind(log: Option<&Path>) -> &'static str {
    let text = log.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    // Only the part written since the last start (the log is appended to; each start
    // begins with the `starting` line).
    let tail = text.rsplit(" starting ").next().unwrap_or(&text);
    let mode = tail.lines().rfind(|l| l.contains("synced with the leader")).and_then(|l| l.split("mode=").nth(1));
    match mode.and_then(|m| m.split_whitespace().next()) {
        Some("SNAP") => "synced by SNAP: a snapshot from the leader",
        Some("TRUNC") => "synced by TRUNC + DIFF: dropped txns the leader never committed",
        _ => "synced by DIFF: the txns it missed",
    }
}

/// Reads back every acknowledged create (pipelined exists, 1000 at a time); the missing ones.
fn verify(endpoints: &str, paths: &[String]) -> Result<Vec<String>, ClientError> {
    let eps = parse_endpoints(endpoints)?;
    let mut c = Client::connect(&eps, ClientOptions::default())?;
    // Reads are served locally: sync first so this server has everything committed.
    c.call(Request::Sync { path: "/".into() })?;
    let mut missing = Vec::new();
    for chunk in paths.chunks(1000) {
        let reqs: Vec<Request> = chunk.iter().map(|p| Request::Exists { path: p.clone(), watch: false }).collect();
        for (p, r) in chunk.iter().zip(c.call_many(&reqs)) {
            match r {
                Ok(_) => {}
                Err(ClientError::Server(-101)) => missing.push(p.clone()),
                Err(e) => return Err(e),
            }
        }
    }
    let _ = c.close();
    Ok(missing)
}

pub fn run(opts: &DemoOpts) -> Result<(), DemoError> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("arbor-demo-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Io { path: dir.clone(), source })?;
    bench::install_sigint_handler();
    let r = run_in(opts, &dir);
    if opts.keep {
        println!("kept {} (each server's log is {{id}}/arbor.log)", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        println!("removed {}", dir.display());
    }
    r
}

fn run_in(opts: &DemoOpts, dir: &Path) -> Result<(), DemoError> {
    let cfg = write_config(opts, dir)?;
    println!("arbor demo: 3 servers from {}, data in {}", cfg.display(), dir.display());
    let ens = Ensemble::start(&cfg)?;
    let ens = Arc::new(Mutex::new(ens));
    let lock = || ens.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let leader = lock().wait_ready(Duration::from_secs(60))?;
    println!("ensemble up in {:.1} s, leader: server {leader}", started.elapsed().as_secs_f64());
    let modes = lock().modes();
    for (id, mode) in modes {
        let pid = lock().pid(id).unwrap_or(0);
        println!("  server {id}: {} (pid {pid})", mode.unwrap_or_default());
    }
    let endpoints = lock().connect_string();
    let bopts = BenchOpts {
        endpoints: parse_endpoints(&endpoints).map_err(|e| DemoError::Failed(e.to_string()))?,
        clients: opts.clients,
        duration: opts.duration,
        workload: Workload::Mixed { read_pct: 50, writes: WriteKind::Create },
        threads: 1,
        pipeline: 1,
        warmup: Duration::ZERO,
        track_creates: true,
        // Short session timeout is not wanted: sessions must survive the election.
        session_timeout_ms: 20_000,
        root: "/arbor-demo".into(),
        ..BenchOpts::default()
    };
    let kill_at = (opts.duration.as_secs_f64() / 2.0).round().max(1.0) as u32;
    println!(
        "\nbench: mixed reads and creates, {} sessions over {endpoints}, {:.0} s; the leader is SIGKILLed at {kill_at} s\n",
        opts.clients,
        opts.duration.as_secs_f64()
    );
    let second = Arc::new(AtomicU32::new(0));
    let out = Arc::new(Mutex::new(()));
    let done = Arc::new(AtomicBool::new(false));
    let injector = {
        let (ens, second, out, done) = (ens.clone(), second.clone(), out.clone(), done.clone());
        std::thread::spawn(move || inject(&ens, &second, kill_at, &out, &done))
    };
    let mut chart = Chart { second, best: 1, out };
    let outcome = bench::run(&bopts, &mut chart);
    done.store(true, Ordering::SeqCst);
    let failover = injector.join().unwrap_or_default();
    let outcome = outcome?;
    println!("\n{}", outcome.report.text());
    let n = outcome.acked_creates.len();
    let missing = verify(&endpoints, &outcome.acked_creates).map_err(|e| DemoError::Failed(format!("read-back: {e}")))?;
    lock().stop_all();
    println!("stopped the servers");
    summary(&failover, n, &missing)
}

fn summary(f: &Failover, acked: usize, missing: &[String]) -> Result<(), DemoError> {
    if let (Some(k), Some(e), Some(l)) = (f.killed, f.election, f.new_leader) {
        println!("failover: leader {k} killed, server {l} elected in {:.2} s", e.as_secs_f64());
    }
    if let Some(r) = f.rejoined {
        println!("rejoin: the killed server followed again {:.2} s after its restart", r.as_secs_f64());
    }
    if missing.is_empty() {
        println!("read back {acked} acknowledged creates: all present, no acknowledged write lost");
    } else {
        println!("LOST {} of {acked} acknowledged creates, e.g. {}", missing.len(), missing[0]);
        return Err(DemoError::Failed(format!("{} acknowledged creates lost", missing.len())));
    }
    if acked == 0 {
        return Err(DemoError::Failed("no create was acknowledged".into()));
    }
    if bench::STOP.load(Ordering::SeqCst) {
        return Ok(());
    }
    if f.new_leader.is_none() {
        return Err(DemoError::Failed("no new leader was elected after the kill".into()));
    }
    if f.rejoined.is_none() {
        return Err(DemoError::Failed("the killed server did not rejoin".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_port_config_has_three_servers_off_the_default_ports() {
        let dir = std::env::temp_dir().join(format!("arbor-demo-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let opts = DemoOpts { config: "nope.cfg".into(), duration: Duration::from_secs(1), base_port: Some(30000), clients: 1, keep: false };
        let text = std::fs::read_to_string(write_config(&opts, &dir).expect("config")).expect("read");
        assert!(text.contains("server.2=127.0.0.1:30012:30022;127.0.0.1:30002"), "{text}");
        assert!(text.contains("admin.serverPort.2=30032"), "{text}");
        assert!(text.contains(&format!("dataDir={}/{{id}}", dir.display())), "{text}");
        // A missing non-default config is an error, not a silent default.
        let opts = DemoOpts { base_port: None, ..opts };
        assert!(write_config(&opts, &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sync_kind_reads_only_the_last_start_of_the_log() {
        let dir = std::env::temp_dir().join(format!("arbor-demo-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("arbor.log");
        let line = |mode: &str| format!("T  INFO [myid:2] synced with the leader leader=1 mode={mode} txns=3 snap_bytes=0 took_ms=4\n");
        let start = "T  INFO [myid:2] starting version=x\n";
        std::fs::write(&log, format!("{start}{}{start}", line("SNAP"))).expect("write");
        assert!(sync_kind(Some(&log)).contains("DIFF"));
        std::fs::write(&log, format!("{start}{}", line("TRUNC"))).expect("write");
        assert!(sync_kind(Some(&log)).contains("TRUNC"));
        std::fs::write(&log, format!("{}{start}{}", line("TRUNC"), line("SNAP"))).expect("write");
        assert!(sync_kind(Some(&log)).contains("SNAP"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

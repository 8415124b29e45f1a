//! `arbor bench`: a load generator that speaks only the ZooKeeper client protocol, so it
//! measures arbor and Apache ZooKeeper alike — and costs less CPU per request than the server
//! it measures (the point of writing it: a zookeeper-client/tokio generator spent ~11 µs per
//! request and was the bottleneck).
//!
//! Layout: `workload` (what a session sends), `worker` (one thread: its own mio Poll and its
//! share of the sessions), `stats` (HDR histograms per op kind, per-second intervals, CPU
//! time), `report` (text, JSON line, CSV, SVG). This file sets the run up (znodes the
//! workload needs), starts the threads, collects per-second intervals for live views, and
//! merges the threads' totals into a `Report`.
//!
//! Time: warm-up seconds come first and are excluded from the report; `duration` seconds are
//! measured after it. Every loop is bounded by that end time; Ctrl-C (SIGINT) ends it early
//! and the partial report is still printed.

mod plot;
mod progress;
mod report;
mod stats;
mod worker;
mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

pub use progress::Progress;
pub use report::{fmt_us, OpReport, Report};
pub use stats::Second;
pub use workload::{OpKind, Workload, WriteKind};

use crate::client::{create_request, Client, ClientError, ClientOptions};
use crate::jute::Request;
use stats::{cpu_times, new_hist, Interval, Stats};

/// Set by SIGINT: every thread stops at its next turn and the partial report is printed.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ctrl-C ends the run early instead of killing the process; so does SIGTERM (so `arbor
/// demo` under `timeout` still stops its children).
pub fn install_sigint_handler() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
}

/// Everything `arbor bench` takes on the command line.
#[derive(Clone, Debug)]
pub struct BenchOpts {
    pub endpoints: Vec<SocketAddr>,
    pub clients: usize,
    pub duration: Duration,
    pub workload: Workload,
    pub threads: usize,
    pub pipeline: usize,
    /// Open loop at this many requests per second in total; closed loop when None.
    pub rate: Option<f64>,
    pub value_size: usize,
    pub keys: usize,
    pub warmup: Duration,
    pub session_timeout_ms: i32,
    /// Keep the paths of acknowledged creates (the demo reads them back).
    pub track_creates: bool,
    /// Top znode everything lives under.
    pub root: String,
    /// Stop after about this many requests in total (split evenly over the sessions), or at
    /// the end of `duration`, whichever comes first. Used to load a known number of znodes.
    pub ops: Option<u64>,
    pub json: Option<PathBuf>,
    pub timeseries: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            endpoints: Vec::new(),
            clients: 16,
            duration: Duration::from_secs(10),
            workload: Workload::Get,
            threads: 1,
            pipeline: 1,
            rate: None,
            value_size: 100,
            keys: 1000,
            warmup: Duration::from_secs(1),
            session_timeout_ms: 10_000,
            track_creates: false,
            root: "/arbor-bench".into(),
            ops: None,
            json: None,
            timeseries: None,
            plot: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bad arguments: {0}")]
    Args(String),
    #[error("setup against {endpoint}: {source}")]
    Setup { endpoint: String, source: ClientError },
    #[error("cannot write {path}: {source}")]
    Output { path: PathBuf, source: std::io::Error },
    #[error("a bench thread panicked")]
    Thread,
}

/// What the threads share, read-only.
pub struct Plan {
    pub endpoints: Vec<SocketAddr>,
    pub clients: usize,
    pub pipeline: usize,
    pub rate: Option<f64>,
    pub workload: Workload,
    pub session_timeout_ms: i32,
    pub track_creates: bool,
    pub ops_per_session: Option<u64>,
    pub keys: Vec<String>,
    pub value: Vec<u8>,
    pub create_parent: String,
    pub delete_parent: String,
    pub delete_count: usize,
    pub watch_path: String,
    /// The clock everything is measured on; times below are ns since it.
    pub base: Instant,
    /// Set by the main thread between the two barrier waits (after every thread connected).
    pub times: OnceLock<Times>,
    pub barrier: Barrier,
}

/// The run's schedule in ns since `Plan::base`.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    /// Load starts: second 0 of the intervals.
    pub start_ns: u64,
    /// Warm-up ends: completions from here on are reported.
    pub measure_from_ns: u64,
    pub end_ns: u64,
}

/// Live views of a run: called once per second with the merged second, and at the end.
pub trait Observer {
    fn on_second(&mut self, second: &Second, totals_so_far: &SoFar);
    fn on_finish(&mut self) {}
}

/// Cumulative view for progress lines (measured window only).
pub struct SoFar {
    pub ops: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub measured_s: f64,
}

/// An observer that shows nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn on_second(&mut self, _: &Second, _: &SoFar) {}
}

/// The outcome of a run: the report, and the acknowledged creates when tracked.
pub struct Outcome {
    pub report: Report,
    pub acked_creates: Vec<String>,
}

/// Unique per run, so repeated runs do not collide on create/delete names.
fn run_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{:x}-{}", t, std::process::id())
}

fn setup_err(opts: &BenchOpts) -> impl Fn(ClientError) -> BenchError + '_ {
    move |source| BenchError::Setup { endpoint: opts.endpoints[0].to_string(), source }
}

/// Creates `paths` (ignoring NodeExists), pipelined in batches.
fn create_all(c: &mut Client, paths: &[String], value: &[u8]) -> Result<(), ClientError> {
    for chunk in paths.chunks(500) {
        let reqs: Vec<Request> = chunk.iter().map(|p| Request::Create(create_request(p, value, 0))).collect();
        for r in c.call_many(&reqs) {
            match r {
                Ok(_) => {}
                Err(ClientError::Server(code)) if code == crate::proto::ErrorCode::NodeExists.code() => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Creates the znodes the workload needs; returns the plan's paths.
fn setup(opts: &BenchOpts) -> Result<(Vec<String>, String, String, String), BenchError> {
    let err = setup_err(opts);
    let mut c = Client::connect(&opts.endpoints, ClientOptions::default()).map_err(&err)?;
    let id = run_id();
    let root = opts.root.trim_end_matches('/').to_string();
    let value = vec![b'x'; opts.value_size];
    create_all(&mut c, std::slice::from_ref(&root), b"").map_err(&err)?;
    let keys: Vec<String> = (0..opts.keys.max(1)).map(|i| format!("{root}/k{i:07}")).collect();
    if opts.workload.needs_keys() {
        create_all(&mut c, &keys, &value).map_err(&err)?;
    }
    let create_parent = format!("{root}/c-{id}");
    let delete_parent = format!("{root}/d-{id}");
    let watch_path = format!("{root}/w-{id}");
    match opts.workload {
        Workload::Create | Workload::Mixed { writes: WriteKind::Create, .. } => {
            create_all(&mut c, std::slice::from_ref(&create_parent), b"").map_err(&err)?
        }
        Workload::Delete => {
            create_all(&mut c, std::slice::from_ref(&delete_parent), b"").map_err(&err)?;
            let victims: Vec<String> = (0..opts.keys).map(|i| format!("{delete_parent}/{i}")).collect();
            create_all(&mut c, &victims, &value).map_err(&err)?;
        }
        Workload::Watch { .. } => create_all(&mut c, std::slice::from_ref(&watch_path), &value).map_err(&err)?,
        _ => {}
    }
    let _ = c.close();
    Ok((keys, create_parent, delete_parent, watch_path))
}

pub fn validate(opts: &BenchOpts) -> Result<(), BenchError> {
    if opts.endpoints.is_empty() {
        return Err(BenchError::Args("no endpoints".into()));
    }
    if opts.clients == 0 || opts.threads == 0 || opts.pipeline == 0 {
        return Err(BenchError::Args("--clients, --threads and --pipeline must be at least 1".into()));
    }
    if opts.duration.is_zero() {
        return Err(BenchError::Args("--duration must be positive".into()));
    }
    if let Some(r) = opts.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err(BenchError::Args("--rate must be a positive number".into()));
        }
    }
    Ok(())
}

/// Runs one bench: setup, load, merge. The observer sees every second as it completes.
pub fn run(opts: &BenchOpts, observer: &mut dyn Observer) -> Result<Outcome, BenchError> {
    validate(opts)?;
    let (keys, create_parent, delete_parent, watch_path) = setup(opts)?;
    // The watch workload has one writer and W watchers, all in one thread (the writer needs
    // to see every watcher's state).
    let (clients, threads) = match opts.workload {
        Workload::Watch { watchers } => (watchers + 1, 1),
        _ => (opts.clients, opts.threads.min(opts.clients)),
    };
    let plan = Arc::new(Plan {
        endpoints: opts.endpoints.clone(),
        clients,
        pipeline: opts.pipeline,
        rate: opts.rate,
        workload: opts.workload,
        session_timeout_ms: opts.session_timeout_ms,
        track_creates: opts.track_creates,
        ops_per_session: opts.ops.map(|n| n.div_ceil(clients as u64).max(1)),
        keys,
        value: vec![b'x'; opts.value_size],
        create_parent,
        delete_parent,
        delete_count: if opts.workload == Workload::Delete { opts.keys } else { 0 },
        watch_path,
        base: Instant::now(),
        times: OnceLock::new(),
        barrier: Barrier::new(threads + 1),
    });
    let (tx, rx) = mpsc::sync_channel::<Interval>(4096);
    let cpu0 = cpu_times();
    let mut handles = Vec::new();
    for t in 0..threads {
        let globals: Vec<usize> = (0..clients).filter(|g| g % threads == t).collect();
        let (plan, tx) = (plan.clone(), tx.clone());
        let h = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || worker::run(plan, globals, tx))
            .map_err(|_| BenchError::Thread)?;
        handles.push(h);
    }
    drop(tx);
    // Connecting is not measured: second 0 starts once every thread has its sessions.
    plan.barrier.wait();
    let start_ns = plan.base.elapsed().as_nanos() as u64;
    let measure_from_ns = start_ns + opts.warmup.as_nanos() as u64;
    let times = Times { start_ns, measure_from_ns, end_ns: measure_from_ns + opts.duration.as_nanos() as u64 };
    let _ = plan.times.set(times);
    plan.barrier.wait();

    let warmup_s = opts.warmup.as_secs_f64();
    let mut collector = Collector::new(threads, warmup_s.ceil() as u32);
    // Bounded: the workers end at end_ns (or on Ctrl-C) and then drop their senders.
    let hard_stop = Instant::now() + opts.warmup + opts.duration + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(iv) => collector.add(iv, observer),
            Err(RecvTimeoutError::Timeout) if Instant::now() < hard_stop => {}
            Err(_) => break,
        }
    }
    collector.flush(observer);
    observer.on_finish();

    let mut stats = Stats::default();
    let mut acked_creates = Vec::new();
    let mut ended_ns = 0;
    for h in handles {
        let r = h.join().map_err(|_| BenchError::Thread)?;
        stats.merge(&r.stats);
        acked_creates.extend(r.acked_creates);
        ended_ns = ended_ns.max(r.ended_ns);
    }
    let cpu1 = cpu_times();
    let measured_s = ended_ns.saturating_sub(times.measure_from_ns) as f64 / 1e9;
    let report = Report::build(
        opts,
        clients,
        threads,
        &stats,
        measured_s.max(0.0),
        (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1),
        STOP.load(Ordering::SeqCst),
        collector.seconds,
    );
    Ok(Outcome { report, acked_creates })
}

/// Merges the threads' per-second intervals; a second is complete when every thread sent it.
struct Collector {
    threads: usize,
    warmup_s: u32,
    pending: BTreeMap<u32, (usize, Interval)>,
    seconds: Vec<Second>,
    total: hdrhistogram::Histogram<u64>,
    total_errors: u64,
}

impl Collector {
    fn new(threads: usize, warmup_s: u32) -> Collector {
        Collector { threads, warmup_s, pending: BTreeMap::new(), seconds: Vec::new(), total: new_hist(), total_errors: 0 }
    }

    fn add(&mut self, iv: Interval, observer: &mut dyn Observer) {
        let e = self.pending.entry(iv.second).or_insert_with(|| (0, Interval::new(iv.second)));
        e.0 += 1;
        let _ = e.1.hist.add(&iv.hist);
        e.1.errors += iv.errors;
        // Emit every second all threads have reported, in order.
        while let Some((&s, (n, _))) = self.pending.first_key_value() {
            if *n < self.threads {
                break;
            }
            let (_, (_, iv)) = self.pending.pop_first().unwrap_or_else(|| unreachable!("just looked"));
            self.emit(s, iv, observer);
        }
    }

    fn flush(&mut self, observer: &mut dyn Observer) {
        while let Some((s, (_, iv))) = self.pending.pop_first() {
            self.emit(s, iv, observer);
        }
    }

    fn emit(&mut self, second: u32, iv: Interval, observer: &mut dyn Observer) {
        let warmup = second < self.warmup_s;
        let sec = Second::from_hist(second, warmup, &iv.hist, iv.errors);
        if !warmup {
            let _ = self.total.add(&iv.hist);
            self.total_errors += iv.errors;
        }
        let so_far = SoFar {
            ops: self.total.len(),
            errors: self.total_errors,
            p50_us: self.total.value_at_quantile(0.5),
            p99_us: self.total.value_at_quantile(0.99),
            measured_s: second.saturating_sub(self.warmup_s) as f64 + 1.0,
        };
        observer.on_second(&sec, &so_far);
        self.seconds.push(sec);
    }
}

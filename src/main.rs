//! The `arbor` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "arbor",
    version,
    about = "A coordination service that speaks the Apache ZooKeeper protocol",
    long_about = "A coordination service that speaks the Apache ZooKeeper client protocol, so \
                  ZooKeeper clients (zkCli, kazoo, Curator, zookeeper-client) use it unchanged. \
                  Configuration uses ZooKeeper's zoo.cfg format; see README.md for the keys."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one server. <ID> picks this server's `server.N` line in <CONFIG> (any id works for
    /// a standalone config with no server lines); the node serves clients until killed.
    Node {
        /// This server's id (ZooKeeper's myid).
        id: u64,
        /// A zoo.cfg-format file, e.g. config/standalone.cfg.
        config: PathBuf,
    },
    /// Run every server of <CONFIG> as child processes on this machine, wait until they are up,
    /// print the connect string and each server's mode; Ctrl-C stops them all (by PID), and
    /// if one dies the others are stopped too. Each server logs to `arbor.log` in its dataDir.
    Local {
        /// A zoo.cfg-format file listing the servers.
        #[arg(default_value = "config/local-3.cfg")]
        config: PathBuf,
    },
    /// Load generator: sessions spread round-robin over the endpoints, closed loop (up to
    /// --pipeline requests in flight per session) or open loop (--rate, latency counted from
    /// each request's scheduled send time). Prints ops/s and p50/p90/p99/p99.9/max per op kind,
    /// errors by ZooKeeper name, and the generator's own CPU per request. Works against any
    /// ZooKeeper-protocol server. Ctrl-C prints the partial report.
    Bench(BenchArgs),
    /// One-shot client: connect to the first server that answers, run one command, print
    /// the result (--json for scripts), exit. Failures exit 1 with ZooKeeper's error name
    /// (NoNode, BadVersion, NodeExists, NoAuth...) first on stderr.
    Cli(arbor::cli::CliArgs),
    /// Failover under load: starts CONFIG's three servers (fresh temporary data), runs a mixed
    /// bench with a per-second chart, SIGKILLs the leader halfway, shows the election and the
    /// restarted server rejoining, then reads back every acknowledged create. Exits 0 only if
    /// none was lost.
    Demo {
        /// The ensemble's layout (its dataDir is replaced by a temporary one).
        #[arg(long, default_value = arbor::demo::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Seconds of load (the leader dies at half).
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Use ports BASE+1..3 (clients), BASE+11..13, BASE+21..23 instead of the config's.
        #[arg(long)]
        base_port: Option<u16>,
        /// Sessions of the bench.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Keep the temporary directory (data and each server's log) instead of removing it.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// host:port[,host:port...]
    #[arg(long, short = 'e')]
    endpoints: String,
    /// Sessions in total.
    #[arg(long, short = 'c', default_value_t = 16)]
    clients: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// create, set, get, mixed:R (R % reads, rest setData; mixed:R:create for creates),
    /// delete, multi:K (K setData per multi), watch:W (W watchers, one writer).
    #[arg(long, short = 'w', default_value = "get")]
    workload: String,
    /// Threads, each with its own poll loop and a share of the sessions.
    #[arg(long, short = 't', default_value_t = 1)]
    threads: usize,
    /// Requests in flight per session (closed loop), or the cap per session (open loop).
    #[arg(long, short = 'p', default_value_t = 1)]
    pipeline: usize,
    /// Open loop: requests per second in total.
    #[arg(long, short = 'r')]
    rate: Option<f64>,
    /// Bytes of data per create/setData.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Znodes read and written (created at setup), or deleted by `delete`.
    #[arg(long, short = 'k', default_value_t = 1000)]
    keys: usize,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Session timeout asked for (ms).
    #[arg(long, default_value_t = 10_000)]
    session_timeout: i32,
    /// Znode the bench works under.
    #[arg(long, default_value = "/arbor-bench")]
    root: String,
    /// Stop after about N requests in total (e.g. to load N znodes with `create`), or at
    /// --duration, whichever comes first.
    #[arg(long)]
    ops: Option<u64>,
    /// Write the report as one JSON line to FILE (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write per-second ops/s, p50, p99 and errors as CSV to FILE.
    #[arg(long)]
    timeseries: Option<PathBuf>,
    /// Draw throughput and latency over time as an SVG to FILE.
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn secs(x: f64, what: &str) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(x).map_err(|_| format!("--{what} {x}: not a number of seconds"))
}

fn bench_opts(a: &BenchArgs) -> Result<arbor::bench::BenchOpts, String> {
    Ok(arbor::bench::BenchOpts {
        endpoints: arbor::client::parse_endpoints(&a.endpoints).map_err(|e| e.to_string())?,
        clients: a.clients,
        duration: secs(a.duration, "duration")?,
        workload: arbor::bench::Workload::parse(&a.workload)?,
        threads: a.threads,
        pipeline: a.pipeline,
        rate: a.rate,
        value_size: a.value_size,
        keys: a.keys,
        warmup: secs(a.warmup, "warmup")?,
        session_timeout_ms: a.session_timeout,
        track_creates: false,
        root: a.root.clone(),
        ops: a.ops,
        json: a.json.clone(),
        timeseries: a.timeseries.clone(),
        plot: a.plot.clone(),
    })
}

fn run_bench(a: &BenchArgs) -> Result<(), String> {
    let opts = bench_opts(a)?;
    arbor::bench::validate(&opts).map_err(|e| e.to_string())?;
    arbor::bench::install_sigint_handler();
    let total = (opts.warmup + opts.duration).as_secs_f64().ceil() as u64;
    let mut progress = arbor::bench::Progress::new(total);
    let out = arbor::bench::run(&opts, &mut progress).map_err(|e| e.to_string())?;
    let r = &out.report;
    print!("{}", r.text());
    match opts.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{}", r.json_line()),
        Some(p) => r.write_json(p).map_err(|e| e.to_string())?,
        None => {}
    }
    if let Some(p) = &opts.timeseries {
        r.write_timeseries(p).map_err(|e| e.to_string())?;
    }
    if let Some(p) = &opts.plot {
        r.write_plot(p).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node { id, config } => match arbor::node::run(arbor::proto::ServerId(id), &config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("arbor: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Local { config } => match arbor::local::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("arbor local: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Cli(a) => match arbor::cli::run(&a) {
            Ok(out) => {
                if !out.is_empty() {
                    println!("{out}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Demo { config, duration, base_port, clients, keep } => {
            let opts = match secs(duration, "duration") {
                Ok(d) => arbor::demo::DemoOpts { config, duration: d, base_port, clients, keep },
                Err(e) => {
                    eprintln!("arbor demo: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match arbor::demo::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("arbor demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Bench(a) => match run_bench(&a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("arbor bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

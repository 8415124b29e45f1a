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
    /// Run one server: `arbor node [ID] CONFIG`. ID picks this server's `server.N` line in
    /// CONFIG (any id works for a standalone config); without ID it is read from
    /// `dataDir/myid`, as ZooKeeper does. Serves clients until SIGTERM/SIGINT, which stop it
    /// cleanly (the txn log sync in flight completes; exit status 0).
    Node {
        /// [ID] CONFIG: this server's id (ZooKeeper's myid; optional) and a zoo.cfg-format
        /// file, e.g. config/standalone.cfg.
        #[arg(num_args = 1..=2, required = true, value_names = ["ID", "CONFIG"])]
        args: Vec<String>,
        /// Log filter: a level (error, warn, info, debug, trace) or tracing directives
        /// (`arbor::server=debug,info`). Default: RUST_LOG, else info.
        #[arg(long)]
        log_level: Option<String>,
        /// Append the log to FILE instead of stderr (errors still go to stderr as well).
        #[arg(long)]
        log_file: Option<PathBuf>,
        /// Rotate the log file when it would pass SIZE (e.g. 256M, 64k; 0: never), as
        /// ZooKeeper's zookeeper.log.maxfilesize.
        #[arg(long, default_value = "256M", value_parser = arbor::logging::rolling::parse_size)]
        log_max_size: u64,
        /// Rotated log files kept (FILE.1 newest … FILE.N), as zookeeper.log.maxbackupindex.
        #[arg(long, default_value_t = 20)]
        log_backups: u32,
    },
    /// Run every server of CONFIG as child processes on this machine, wait until they are up,
    /// print the connect string and each server's mode. A server that dies is reported and
    /// restarted (up to 3 times); the others keep running. Ctrl-C stops them all (by PID).
    /// Each server logs to `arbor.log` in its dataDir, rotated as `node --log-file` rotates
    /// it. Without CONFIG: `config/local-3.cfg` if it exists here, else the same 3-server
    /// config built into arbor.
    Local {
        /// A zoo.cfg-format file listing the servers.
        config: Option<PathBuf>,
        /// Rotate each server's arbor.log when it would pass SIZE (as `node --log-max-size`).
        #[arg(long, default_value = "256M", value_parser = arbor::logging::rolling::parse_size)]
        log_max_size: u64,
        /// Rotated log files kept per server (as `node --log-backups`).
        #[arg(long, default_value_t = 20)]
        log_backups: u32,
    },
    /// Txn log tools (read-only): `arbor log dump DIR|FILE [--json]`.
    Log {
        #[command(subcommand)]
        cmd: LogCmd,
    },
    /// Snapshot tools (read-only): `arbor snapshot dump FILE [--json]`.
    Snapshot {
        #[command(subcommand)]
        cmd: SnapshotCmd,
    },
    /// Data directory tools (read-only): `arbor data check DIR`.
    Data {
        #[command(subcommand)]
        cmd: DataCmd,
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

#[derive(Subcommand)]
enum LogCmd {
    /// Print every txn of a txn log segment file, or of every segment in a directory, in
    /// zxid order (like ZooKeeper's zkTxnLogToolkit). Never writes.
    Dump {
        /// A dataLogDir, or one `log.<zxid>` file.
        path: PathBuf,
        /// One JSON object per txn (and a final summary object).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Print a snapshot's znodes (path, Stat, data size, ACL), sessions and digest
    /// (like ZooKeeper's zkSnapShotToolkit). Never writes.
    Dump {
        /// A `snapshot.<zxid>` file.
        file: PathBuf,
        /// One JSON document.
        #[arg(long)]
        json: bool,
        /// Show each znode's data (as text when printable, else hex), up to this many bytes.
        #[arg(long, default_value_t = 0)]
        data: usize,
    },
}

#[derive(Subcommand)]
enum DataCmd {
    /// Verify every CRC and the zxid order of every snapshot and txn log segment in DIR
    /// (dataDir; also dataLogDir when given), and say what recovery would truncate or
    /// refuse. Exits 0 when recovery would start cleanly, 1 when it would truncate a torn
    /// tail, 2 on damage recovery refuses. Never writes.
    Check {
        /// The dataDir (snapshots; the txn log too unless --log-dir is given).
        dir: PathBuf,
        /// The dataLogDir, when it differs from DIR.
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// The report as one JSON document.
        #[arg(long)]
        json: bool,
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

/// `arbor node [ID] CONFIG`: which server, its config, then the logger, then the server.
/// Errors before the logger exists go to stderr as they are.
fn run_node(args: &[String], log_level: Option<&str>, log_file: Option<&std::path::Path>, rolling: arbor::logging::rolling::Rolling) -> ExitCode {
    let (id, config) = match args {
        [config] => (None, PathBuf::from(config)),
        [id, config] => match id.parse::<u64>() {
            Ok(id) => (Some(arbor::proto::ServerId(id)), PathBuf::from(config)),
            Err(_) => {
                eprintln!("arbor node: bad server id {id:?} (expected `arbor node [ID] CONFIG`)");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("arbor node: expected `arbor node [ID] CONFIG`");
            return ExitCode::FAILURE;
        }
    };
    let (id, cfg, warnings) = match arbor::node::load(id, &config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("arbor: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = arbor::logging::init(id.0, log_level, log_file, rolling) {
        eprintln!("arbor: {e}");
        return ExitCode::FAILURE;
    }
    match arbor::node::run(id, cfg, &warnings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped");
            ExitCode::FAILURE
        }
    }
}

/// A data tool's result: its output went to stdout; an error goes to stderr (exit 1).
fn tool(name: &str, r: Result<(), arbor::tools::ToolError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(arbor::tools::ToolError::Pipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arbor {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node { args, log_level, log_file, log_max_size, log_backups } => run_node(
            &args,
            log_level.as_deref(),
            log_file.as_deref(),
            arbor::logging::rolling::Rolling { max_bytes: log_max_size, backups: log_backups },
        ),
        Cmd::Log { cmd: LogCmd::Dump { path, json } } => tool("log dump", arbor::tools::log_dump(&path, json)),
        Cmd::Snapshot { cmd: SnapshotCmd::Dump { file, json, data } } => {
            tool("snapshot dump", arbor::tools::snapshot_dump(&file, json, data))
        }
        Cmd::Data { cmd: DataCmd::Check { dir, log_dir, json } } => {
            match arbor::tools::data_check(&dir, log_dir.as_deref(), json) {
                Ok(verdict) => ExitCode::from(verdict.exit_code()),
                Err(e) => {
                    eprintln!("arbor data check: {e}");
                    ExitCode::from(3)
                }
            }
        }
        Cmd::Local { config, log_max_size, log_backups } => match arbor::local::run(
            config.as_deref(),
            arbor::logging::rolling::Rolling { max_bytes: log_max_size, backups: log_backups },
        ) {
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

//! `arbor-sim`: run the whole-ensemble simulator (`arbor::sim`) over seeds, or replay one.
//!
//!   arbor-sim --seed 42 --trace        replay one seed, printing every event
//!   arbor-sim --seeds 1000             seeds 0..1000
//!   arbor-sim --minutes 30             a soak: consecutive seeds until the time is up
//!
//! Exits non-zero on the first failing seed, printing the failure and how to replay it.

use std::time::{Duration, Instant};

use clap::Parser;

use arbor::sim::{run, SimConfig};

#[derive(Parser, Debug)]
#[command(name = "arbor-sim", about = "Deterministic simulation of arbor ensembles with ZooKeeper clients")]
struct Args {
    /// Run only this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The first seed of a range.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// How many seeds (from `--from`).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// Soak: run consecutive seeds for this many minutes (overrides --seeds).
    #[arg(long)]
    minutes: Option<f64>,
    /// Servers in the ensemble (3 or 5).
    #[arg(long, default_value_t = 3)]
    servers: u64,
    /// Simulated clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Simulated milliseconds of faults per run.
    #[arg(long, default_value_t = 4000)]
    fault_ms: i64,
    /// Now and then write a value of this many bytes (MB-sized frames and snapshots).
    #[arg(long)]
    big_value: Option<usize>,
    /// The chance that a crash is a power loss of every server (0 replays the histories
    /// seeds played before power losses were simulated).
    #[arg(long, default_value_t = 0.2)]
    power_loss: f64,
    /// Print every event (use with --seed).
    #[arg(long)]
    trace: bool,
    /// Plant a known bug in every server (to see the checks catch it): one of
    /// commit-before-quorum, election-ignores-zxid, apply-before-fsync, reply-before-commit,
    /// lost-watch.
    #[arg(long)]
    plant: Option<String>,
    /// Dynamic reconfiguration: two spare servers, and a superuser client adding and
    /// removing voters (the leader too) and observers during the faults.
    #[arg(long)]
    reconfig: bool,
    /// Go on after a failing seed (print its first line), and count the failures.
    #[arg(long)]
    keep_going: bool,
}

fn main() {
    let args = Args::parse();
    let planted = match args.plant.as_deref().map(arbor::planted::Planted::one) {
        None => Default::default(),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("arbor-sim: {e}");
            std::process::exit(2);
        }
    };
    let cfg = SimConfig {
        planted,
        servers: args.servers,
        clients: args.clients,
        fault_ms: args.fault_ms,
        big_value: args.big_value,
        power_loss: args.power_loss,
        trace: args.trace,
        reconfig: args.reconfig,
        ..SimConfig::default()
    };
    let started = Instant::now();
    let deadline = args.minutes.map(|m| started + Duration::from_secs_f64(m * 60.0));
    let seeds: Box<dyn Iterator<Item = u64>> = match (args.seed, deadline) {
        (Some(s), _) => Box::new(std::iter::once(s)),
        (None, Some(_)) => Box::new(args.from..),
        (None, None) => Box::new(args.from..args.from + args.seeds),
    };
    let (mut runs, mut ops, mut sim_ms, mut faults, mut snaps, mut truncs) = (0u64, 0usize, 0i64, 0usize, 0usize, 0usize);
    let (mut expired, mut closed, mut notes, mut multis, mut syncs) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let (mut reconfigs, mut acked, mut refused, mut configs) = (0usize, 0usize, 0usize, 0usize);
    let (mut failed, mut gaps) = (Vec::new(), 0usize);
    for seed in seeds {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match run(seed, &cfg) {
            Ok(o) => {
                runs += 1;
                ops += o.ops;
                sim_ms += o.sim_ms;
                faults += o.faults;
                snaps += o.snaps;
                truncs += o.truncs;
                expired += o.expired;
                closed += o.closed;
                notes += o.model.notifications;
                multis += o.model.multis_checked;
                syncs += o.model.syncs_checked;
                reconfigs += o.reconfigs;
                acked += o.model.reconfigs_acked;
                refused += o.model.reconfigs_refused;
                configs += o.configs;
                if args.seed.is_some() {
                    println!("{o:?}");
                }
            }
            Err(f) if args.keep_going => {
                failed.push(f.seed);
                if f.reason.contains(arbor::sim::STALE_CONFIG_GAP) {
                    gaps += 1;
                }
                eprintln!("seed {} failed at {} ms: {}", f.seed, f.at_ms, f.reason);
            }
            Err(f) => {
                eprintln!("{f}");
                std::process::exit(1);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{runs} seeds passed in {secs:.1} s ({:.0} histories/min): {ops} client ops, {faults} faults, {snaps} SNAPs, \
         {truncs} TRUNCs, {:.0} s simulated; {multis} multis, {syncs} syncs, {notes} watch notifications, \
         {expired} sessions expired, {closed} closed",
        runs as f64 / secs * 60.0,
        sim_ms as f64 / 1000.0
    );
    if args.reconfig {
        println!("reconfigs: {reconfigs} issued, {acked} acknowledged, {refused} refused as expected, {configs} configs committed");
    }
    if !failed.is_empty() {
        println!("{} seeds failed ({gaps} of them the known stale-config gap): {failed:?}", failed.len());
        std::process::exit(1);
    }
}

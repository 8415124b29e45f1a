//! The metric set, under ZooKeeper's names, and its three renderings: `mntr` text
//! (`zk_<name>\t<value>`), the `monitor` command's JSON, and Prometheus text exposition
//! (what ZooKeeper's PrometheusMetricsProvider serves).
//!
//! One list (`collect`) feeds all three, so they never disagree. Units follow ZooKeeper:
//! latencies and times in ms (recorded in µs; `avg` keeps the fraction, the other figures
//! are whole ms as ZooKeeper's are), sizes as counts. arbor's own metrics are named
//! `arbor_*` and keep µs where ms would round a fast disk's fsync to 0.
//!
//! Only what arbor measures is listed: ZooKeeper keys for things arbor does not have or
//! does not count (TLS, JVM, response caches, auth failures, …) are absent, never 0.

use std::fmt::Write as _;

use serde_json::{Map, Value as Json};

use super::super::{fd_counts, EventLoop};
use crate::metrics::Summary;
use crate::zab::Role;

/// A gauge's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Str(String),
}

/// How a summary's recorded values are shown.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Recorded in µs, shown in ms (ZooKeeper's latencies and times).
    Millis,
    /// Recorded and shown in µs (arbor's own).
    Micros,
    /// A count (batch sizes, txns).
    Count,
}

/// ZooKeeper's two kinds of summary.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// avg/min/max/cnt/sum (`AvgMinMaxCounter`; Prometheus: quantile 0.5).
    Basic,
    /// … and p50/p95/p99/p999 (`AvgMinMaxPercentileCounter`; Prometheus: 0.5, 0.9, 0.99).
    Advanced,
}

pub enum Metric<'a> {
    /// A gauge; `Str` gauges appear in mntr/JSON only (Prometheus values are numbers).
    Gauge(&'static str, Value),
    Counter(&'static str, u64),
    Summary { name: &'static str, summary: &'a Summary, unit: Unit, detail: Detail },
}

fn gauge(name: &'static str, v: impl TryInto<i64>) -> Metric<'static> {
    Metric::Gauge(name, Value::Int(v.try_into().unwrap_or(i64::MAX)))
}

/// Every metric, in ZooKeeper's order where it has one (`dumpMonitorValues`, then the
/// metrics provider's).
pub fn collect(ev: &EventLoop) -> Vec<Metric<'_>> {
    use Detail::*;
    use Unit::*;
    let svc = ev.service();
    let st = svc.stats();
    let tree = svc.tree();
    let (open_fds, max_fds) = fd_counts();
    let (avg_ms, min_ms, max_ms) = ev.latency_ms();
    let (remote, local) = ev.conn_locality();
    let mut m = vec![
        Metric::Gauge("version", Value::Str(ev.cfg.version.clone())),
        Metric::Gauge("avg_latency", Value::Float(avg_ms)),
        gauge("max_latency", max_ms),
        gauge("min_latency", min_ms),
        gauge("packets_received", st.packets_received),
        gauge("packets_sent", st.packets_sent),
        gauge("num_alive_connections", svc.client_count()),
        gauge("outstanding_requests", svc.outstanding()),
        Metric::Gauge("server_state", Value::Str(ev.mode_name())),
        gauge("znode_count", tree.node_count()),
        gauge("watch_count", svc.watches().watch_count()),
        gauge("ephemerals_count", tree.ephemeral_count()),
        gauge("approximate_data_size", tree.approximate_data_size()),
        gauge("open_file_descriptor_count", open_fds),
        gauge("max_file_descriptor_count", max_fds),
        gauge("uptime", ev.admin.started.elapsed().as_millis()),
        gauge("global_sessions", svc.sessions().len()),
        gauge("non_mtls_remote_conn_count", remote),
        gauge("non_mtls_local_conn_count", local),
        Metric::Gauge("last_zxid", Value::Str(format!("0x{:x}", svc.last_zxid().0))),
    ];
    if let Some(zab) = ev.replica.zab() {
        let z = zab.status();
        let obs = &ev.admin.observer;
        m.push(Metric::Gauge("peer_state", Value::Str(obs.peer_state())));
        m.push(gauge("quorum_size", ev.admin.settings.servers.iter().filter(|s| s.participant).count()));
        m.push(gauge("current_epoch", z.current_epoch));
        m.push(gauge("accepted_epoch", z.accepted_epoch));
        m.push(Metric::Gauge("last_committed", Value::Str(format!("0x{:x}", z.last_committed.0))));
        if matches!(z.role, Role::Leading { .. }) && z.serving {
            let synced = z.followers.iter().filter(|f| f.1).count();
            m.push(gauge("learners", z.followers.len()));
            m.push(gauge("followers", z.followers.len()));
            m.push(gauge("synced_followers", synced));
            m.push(gauge("pending_syncs", z.pending_syncs));
            if let Some(t) = obs.leading_since {
                m.push(gauge("leader_uptime", t.elapsed().as_millis()));
            }
            if let Some((last, lo, hi)) = obs.proposal_sizes {
                m.push(gauge("last_proposal_size", last));
                m.push(gauge("min_proposal_size", lo));
                m.push(gauge("max_proposal_size", hi));
            }
        }
    }
    let lm = &ev.admin.observer.metrics;
    let rm = svc.metrics();
    let sum = |name, summary, unit, detail| Metric::Summary { name, summary, unit, detail };
    m.extend([
        Metric::Counter("proposal_count", lm.proposal_count.get()),
        Metric::Counter("commit_count", lm.commit_count.get()),
        Metric::Counter("diff_count", lm.diff_count.get()),
        Metric::Counter("snap_count", lm.snap_count.get()),
        Metric::Counter("looking_count", lm.looking_count.get()),
        Metric::Counter("learner_proposal_received_count", lm.learner_proposal_received_count.get()),
        Metric::Counter("learner_commit_received_count", lm.learner_commit_received_count.get()),
        Metric::Counter("arbor_trunc_count", lm.trunc_count.get()),
        sum("election_time", &lm.election_time, Millis, Basic),
        sum("follower_sync_time", &lm.follower_sync_time, Millis, Basic),
        sum("unavailable_time", &lm.unavailable_time, Millis, Basic),
        sum("dbinittime", &lm.dbinittime, Millis, Basic),
        sum("startup_snap_load_time", &lm.startup_snap_load_time, Millis, Basic),
        sum("startup_txns_load_time", &lm.startup_txns_load_time, Millis, Basic),
        sum("startup_txns_loaded", &lm.startup_txns_loaded, Count, Basic),
        sum("readlatency", &rm.read_latency, Millis, Advanced),
        sum("updatelatency", &rm.update_latency, Millis, Advanced),
        sum("propagation_latency", &rm.propagation_latency, Millis, Advanced),
        sum("quorum_ack_latency", &lm.quorum_ack_latency, Millis, Advanced),
    ]);
    if let Some(sm) = ev.sink.metrics() {
        m.extend([
            sum("fsynctime", &sm.fsync_time, Millis, Basic),
            sum("sync_processor_batch_size", &sm.sync_batch_size, Count, Basic),
            sum("snapshottime", &sm.snapshot_time, Millis, Basic),
            sum("arbor_fsync_time_us", &sm.fsync_time, Micros, Advanced),
            sum("arbor_sync_batch_size", &sm.sync_batch_size, Count, Advanced),
        ]);
    }
    m.push(sum("arbor_loop_turn_time_us", &lm.loop_turn, Micros, Advanced));
    m.push(Metric::Gauge(
        "arbor_force_sync",
        Value::Str(if ev.cfg.force_sync { "yes".into() } else { "no (acknowledged writes are not fsynced)".into() }),
    ));
    m
}

/// A summary's figures in its display unit: (avg, [min, max, cnt, sum], quantiles).
fn shown(s: &Summary, unit: Unit) -> (f64, [u64; 4], [u64; 4]) {
    let v = s.values();
    let div = if unit == Unit::Millis { 1000 } else { 1 };
    let avg = v.avg / div as f64;
    (avg, [v.min / div, v.max / div, v.count, v.sum / div], v.quantiles.map(|q| q / div))
}

/// The flat key → value list of `mntr` and `monitor` (ZooKeeper's `dump`: a summary
/// `x` becomes `avg_x`, `min_x`, `max_x`, `cnt_x`, `sum_x` [, `p50_x` … `p999_x`]).
pub fn monitor_pairs(ev: &EventLoop) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for m in collect(ev) {
        match m {
            Metric::Gauge(n, v) => out.push((n.to_string(), v)),
            Metric::Counter(n, c) => out.push((n.to_string(), Value::Int(c as i64))),
            Metric::Summary { name, summary, unit, detail } => {
                let (avg, [min, max, cnt, sum], q) = shown(summary, unit);
                out.push((format!("avg_{name}"), Value::Float(avg)));
                for (k, v) in [("min", min), ("max", max), ("cnt", cnt), ("sum", sum)] {
                    out.push((format!("{k}_{name}"), Value::Int(v as i64)));
                }
                if detail == Detail::Advanced {
                    for (k, v) in ["p50", "p95", "p99", "p999"].iter().zip(q) {
                        out.push((format!("{k}_{name}"), Value::Int(v as i64)));
                    }
                }
            }
        }
    }
    out
}

/// A double as Java prints it (`0.0`, `1.5`): ZooKeeper's mntr shows `avg_*` that way.
fn java_double(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// The four-letter `mntr`: `zk_<key>\t<value>` per line.
pub fn mntr_text(ev: &EventLoop) -> String {
    let mut s = String::new();
    for (k, v) in monitor_pairs(ev) {
        let _ = match v {
            Value::Int(i) => writeln!(s, "zk_{k}\t{i}"),
            Value::Float(f) => writeln!(s, "zk_{k}\t{}", java_double(f)),
            Value::Str(t) => writeln!(s, "zk_{k}\t{t}"),
        };
    }
    s
}

/// The `monitor` command's fields.
pub fn monitor_json(ev: &EventLoop) -> Map<String, Json> {
    monitor_pairs(ev)
        .into_iter()
        .map(|(k, v)| {
            let j = match v {
                Value::Int(i) => Json::from(i),
                Value::Float(f) => Json::from(f),
                Value::Str(t) => Json::from(t),
            };
            (k, j)
        })
        .collect()
}

/// Prometheus text exposition (format 0.0.4), as ZooKeeper's PrometheusMetricsProvider:
/// gauges and counters under their ZooKeeper names, summaries with `quantile` labels plus
/// `_sum` and `_count`.
pub fn prometheus(ev: &EventLoop) -> String {
    let mut s = String::with_capacity(16 << 10);
    for m in collect(ev) {
        match m {
            Metric::Gauge(_, Value::Str(_)) => {}
            Metric::Gauge(n, v) => {
                let x = match v {
                    Value::Int(i) => i as f64,
                    Value::Float(f) => f,
                    Value::Str(_) => continue,
                };
                let _ = write!(s, "# HELP {n} {n}\n# TYPE {n} gauge\n{n} {}\n", prom_num(x));
            }
            Metric::Counter(n, c) => {
                let _ = write!(s, "# HELP {n} {n}\n# TYPE {n} counter\n{n} {c}\n");
            }
            Metric::Summary { name, summary, unit, detail } => {
                let div = if unit == Unit::Millis { 1000.0 } else { 1.0 };
                let _ = write!(s, "# HELP {name} {name}\n# TYPE {name} summary\n");
                let qs: &[f64] = match detail {
                    Detail::Basic => &[0.5],
                    Detail::Advanced => &[0.5, 0.9, 0.99],
                };
                for &q in qs {
                    let v = summary.quantile(q) as f64 / div;
                    let _ = writeln!(s, "{name}{{quantile=\"{q}\"}} {}", prom_num(v));
                }
                let v = summary.values();
                let _ = write!(s, "{name}_sum {}\n{name}_count {}\n", prom_num(v.sum as f64 / div), v.count);
            }
        }
    }
    s
}

fn prom_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "NaN".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(3.0), "3.0");
        assert_eq!(java_double(0.25), "0.25");
    }

    #[test]
    fn millisecond_summaries_keep_the_fraction_in_avg_only() {
        let mut s = Summary::new();
        s.record(1500);
        s.record(2500);
        let (avg, [min, max, cnt, sum], q) = shown(&s, Unit::Millis);
        assert_eq!((avg, min, max, cnt, sum), (2.0, 1, 2, 2, 4));
        assert!(q.iter().all(|v| (1..=2).contains(v)), "{q:?}");
    }
}

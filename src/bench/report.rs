//! The results of a run and their four forms: the human report, one JSON line (`--json`),
//! a per-second CSV (`--timeseries`) and an SVG of throughput and latency over time
//! (`--plot`). Numbers are computed once here, so every form says the same thing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::stats::{Second, Stats};
use super::workload::OpKind;
use super::{BenchError, BenchOpts};
use crate::client::code_name;

#[derive(Clone, Debug, Serialize)]
pub struct OpReport {
    pub op: String,
    pub ops: u64,
    pub ops_per_s: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl OpReport {
    fn new(op: &str, h: &Histogram<u64>, measured_s: f64) -> OpReport {
        OpReport {
            op: op.to_string(),
            ops: h.len(),
            ops_per_s: if measured_s > 0.0 { h.len() as f64 / measured_s } else { 0.0 },
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub workload: String,
    pub endpoints: Vec<String>,
    pub clients: usize,
    pub threads: usize,
    pub pipeline: usize,
    /// Requests per second asked for (open loop), or null (closed loop).
    pub rate: Option<f64>,
    pub value_size: usize,
    pub keys: usize,
    pub warmup_s: f64,
    /// Seconds actually measured (shorter than asked when interrupted).
    pub duration_s: f64,
    /// Successful operations in the measured window, all kinds.
    pub ops: u64,
    pub ops_per_s: f64,
    pub errors: u64,
    pub errors_by_name: BTreeMap<String, u64>,
    /// All kinds together (µs).
    pub latency: OpReport,
    pub per_op: Vec<OpReport>,
    /// Generator CPU (getrusage, every thread of this process) from the threads' start to
    /// their end, divided by every reply received in that time (warm-up included).
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub requests_total: u64,
    pub cpu_us_per_request: f64,
    pub interrupted: bool,
    #[serde(skip)]
    pub seconds: Vec<Second>,
}

impl Report {
    /// `clients`/`threads` are what actually ran (the watch workload runs W+1 sessions on one
    /// thread, whatever was asked).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        opts: &BenchOpts,
        clients: usize,
        threads: usize,
        stats: &Stats,
        measured_s: f64,
        cpu: (f64, f64),
        interrupted: bool,
        seconds: Vec<Second>,
    ) -> Report {
        let combined = stats.combined();
        let per_op = OpKind::ALL
            .iter()
            .zip(&stats.hist)
            .filter(|(k, h)| **k != OpKind::Other && !h.is_empty())
            .map(|(k, h)| OpReport::new(k.name(), h, measured_s))
            .collect();
        let mut errors_by_name = BTreeMap::new();
        for (code, n) in &stats.errors {
            *errors_by_name.entry(code_name(*code)).or_default() += n;
        }
        let cpu_total = cpu.0 + cpu.1;
        Report {
            workload: opts.workload.to_string(),
            endpoints: opts.endpoints.iter().map(|e| e.to_string()).collect(),
            clients,
            threads,
            pipeline: opts.pipeline,
            rate: opts.rate,
            value_size: opts.value_size,
            keys: opts.keys,
            warmup_s: opts.warmup.as_secs_f64(),
            duration_s: (measured_s * 1000.0).round() / 1000.0,
            ops: stats.ok_ops(),
            ops_per_s: if measured_s > 0.0 { (stats.ok_ops() as f64 / measured_s * 10.0).round() / 10.0 } else { 0.0 },
            errors: stats.error_count(),
            errors_by_name,
            latency: OpReport::new("all", &combined, measured_s),
            per_op,
            cpu_user_s: cpu.0,
            cpu_sys_s: cpu.1,
            requests_total: stats.replies_total,
            cpu_us_per_request: if stats.replies_total > 0 {
                (cpu_total * 1e6 / stats.replies_total as f64 * 100.0).round() / 100.0
            } else {
                0.0
            },
            interrupted,
            seconds,
        }
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let mode = match self.rate {
            Some(r) => format!("open loop at {r} req/s"),
            None => format!("closed loop, {} in flight per session", self.pipeline),
        };
        let _ = writeln!(
            s,
            "{}{} — {} sessions over {} endpoint(s), {} thread(s), {mode}, {:.1} s measured after {:.1} s warm-up",
            self.workload,
            if self.interrupted { " (interrupted: partial report)" } else { "" },
            self.clients,
            self.endpoints.len(),
            self.threads,
            self.duration_s,
            self.warmup_s
        );
        let _ = writeln!(s, "{:<8} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}", "op", "ops", "ops/s", "p50", "p90", "p99", "p99.9", "max");
        for r in self.per_op.iter().chain((self.per_op.len() > 1).then_some(&self.latency)) {
            let _ = writeln!(
                s,
                "{:<8} {:>10} {:>11.1} {:>9} {:>9} {:>9} {:>9} {:>9}",
                r.op,
                r.ops,
                r.ops_per_s,
                fmt_us(r.p50_us),
                fmt_us(r.p90_us),
                fmt_us(r.p99_us),
                fmt_us(r.p999_us),
                fmt_us(r.max_us)
            );
        }
        if self.errors == 0 {
            let _ = writeln!(s, "errors: none");
        } else {
            let list: Vec<String> = self.errors_by_name.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "errors: {} ({})", self.errors, list.join(", "));
        }
        let _ = writeln!(
            s,
            "generator CPU: {:.2} µs per request ({:.2} s user + {:.2} s sys for {} replies)",
            self.cpu_us_per_request, self.cpu_user_s, self.cpu_sys_s, self.requests_total
        );
        s
    }

    pub fn json_line(&self) -> String {
        // Serializing plain numbers, strings and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        write(path, format!("{}\n", self.json_line()))
    }

    /// second,phase,ops_per_s,p50_us,p99_us,max_us,errors — one row per second of the run.
    pub fn write_timeseries(&self, path: &Path) -> Result<(), BenchError> {
        let mut s = String::from("second,phase,ops_per_s,p50_us,p99_us,max_us,errors\n");
        for x in &self.seconds {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{}",
                x.second,
                if x.warmup { "warmup" } else { "measure" },
                x.ops,
                x.p50_us,
                x.p99_us,
                x.max_us,
                x.errors
            );
        }
        write(path, s)
    }

    pub fn write_plot(&self, path: &Path) -> Result<(), BenchError> {
        super::plot::draw(path, &self.title(), &self.seconds)
            .map_err(|e| BenchError::Output { path: path.into(), source: std::io::Error::other(e) })
    }

    fn title(&self) -> String {
        format!("arbor bench {} — {} sessions, {}", self.workload, self.clients, self.endpoints.join(","))
    }
}

fn write(path: &Path, text: String) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::Output { path: path.into(), source })
}

/// 850 µs, 12.3 ms, 1.52 s.
pub fn fmt_us(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

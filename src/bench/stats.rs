//! What a bench thread measures: one HDR histogram of latencies (µs) per op kind for the
//! measured window, errors by ZooKeeper code, and per-second intervals (all ops together)
//! for the live line, the timeseries and the demo's chart.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::workload::OpKind;

/// Histograms go from 1 µs to an hour at 3 significant digits (0.1 % resolution).
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_hist() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts; a failure is a programmer error.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Totals of one thread (or, merged, of the run) for the measured window.
#[derive(Clone)]
pub struct Stats {
    pub hist: Vec<Histogram<u64>>,
    /// Error code -> count.
    pub errors: BTreeMap<i32, u64>,
    /// Replies of any outcome, warm-up included: the denominator of CPU per request.
    pub replies_total: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { hist: OpKind::ALL.iter().map(|_| new_hist()).collect(), errors: BTreeMap::new(), replies_total: 0 }
    }
}

impl Stats {
    pub fn record_ok(&mut self, kind: OpKind, latency_us: u64) {
        self.hist[kind.index()].saturating_record(latency_us.max(1));
    }

    pub fn record_err(&mut self, code: i32) {
        *self.errors.entry(code).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = a.add(b);
        }
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.replies_total += other.replies_total;
    }

    pub fn ok_ops(&self) -> u64 {
        self.hist.iter().map(|h| h.len()).sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// All measured kinds together (the headline latency).
    pub fn combined(&self) -> Histogram<u64> {
        let mut h = new_hist();
        for (k, x) in OpKind::ALL.iter().zip(&self.hist) {
            if *k != OpKind::Other {
                let _ = h.add(x);
            }
        }
        h
    }
}

/// One second of one thread: every completion (warm-up included), for live views.
#[derive(Clone)]
pub struct Interval {
    /// Seconds since the run started (warm-up is seconds 0..warmup).
    pub second: u32,
    pub hist: Histogram<u64>,
    pub errors: u64,
}

impl Interval {
    pub fn new(second: u32) -> Interval {
        Interval { second, hist: new_hist(), errors: 0 }
    }
}

/// One second of the whole run, merged over threads.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Second {
    pub second: u32,
    pub warmup: bool,
    pub ops: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub errors: u64,
}

impl Second {
    pub fn from_hist(second: u32, warmup: bool, h: &Histogram<u64>, errors: u64) -> Second {
        Second {
            second,
            warmup,
            ops: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            errors,
        }
    }
}

/// CPU seconds (user, system) this process has used, all threads (getrusage RUSAGE_SELF).
pub fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage writes into the struct we pass; zeroed is a valid initial value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (0.0, 0.0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

//! Metric primitives: counters and summaries, cheap enough for the request path.
//!
//! A `Summary` keeps the exact count, sum, min and max of what it was given and an HDR
//! histogram for percentiles (ZooKeeper's `AvgMinMaxCounter` and
//! `AvgMinMaxPercentileCounter`; which of the two a summary is shown as is the
//! exposition's choice, after ZooKeeper's key set). Recording is O(1) and never
//! allocates: the histogram's buckets are allocated once, for a fixed range, and values out
//! of range saturate at its ends instead of growing it.
//!
//! Units are the recorder's (µs for latencies, a count for sizes); the exposition
//! (`server::admin::metrics`) converts to ZooKeeper's units (ms) when it prints.
//!
//! Who owns which: the service its request latencies (`Service::metrics`), the storage its
//! fsync/batch/snapshot figures (`TxnSink::metrics`), the event loop the rest (replication,
//! loop turns). Nothing is shared between threads: the fsync thread hands its timing back
//! with its result.

use hdrhistogram::Histogram;

/// Largest value a histogram resolves (µs: one hour); larger values count as this.
const HIST_MAX: u64 = 3_600_000_000;
/// Two significant digits: 1 % resolution at ~3 KiB of buckets per summary.
const HIST_SIGFIG: u8 = 2;

/// A value that only goes up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter(pub u64);

impl Counter {
    #[inline]
    pub fn inc(&mut self) {
        self.0 += 1;
    }
    #[inline]
    pub fn add(&mut self, n: u64) {
        self.0 += n;
    }
    pub fn get(&self) -> u64 {
        self.0
    }
}

/// avg/min/max/count/sum and percentiles.
#[derive(Clone, Debug)]
pub struct Summary {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    hist: Histogram<u64>,
}

/// What a summary holds at one moment, in its recording unit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SummaryValues {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
    pub avg: f64,
    /// p50, p95, p99, p99.9 (`QUANTILES`).
    pub quantiles: [u64; 4],
}

/// The quantiles `SummaryValues` reports (ZooKeeper's p50/p95/p99/p999).
pub const QUANTILES: [f64; 4] = [0.5, 0.95, 0.99, 0.999];

impl Default for Summary {
    fn default() -> Self {
        Summary::new()
    }
}

impl Summary {
    pub fn new() -> Summary {
        // Bounds are constants that `new_with_bounds` accepts; a failure would be a bug here.
        let hist = Histogram::new_with_bounds(1, HIST_MAX, HIST_SIGFIG).expect("constant histogram bounds are valid");
        Summary { count: 0, sum: 0, min: 0, max: 0, hist }
    }

    #[inline]
    pub fn record(&mut self, v: u64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        self.hist.saturating_record(v.clamp(1, HIST_MAX));
    }

    /// Record a duration in microseconds.
    #[inline]
    pub fn record_duration(&mut self, d: std::time::Duration) {
        self.record(d.as_micros().min(u64::MAX as u128) as u64);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn reset(&mut self) {
        self.count = 0;
        self.sum = 0;
        self.min = 0;
        self.max = 0;
        self.hist.reset();
    }

    /// The value at quantile `q` (0 when empty), within [min, max]: the histogram's bucket
    /// edges may lie just outside.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        self.hist.value_at_quantile(q).clamp(self.min, self.max)
    }

    pub fn values(&self) -> SummaryValues {
        let avg = if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 };
        let quantiles = QUANTILES.map(|q| self.quantile(q));
        SummaryValues { count: self.count, sum: self.sum, min: self.min, max: self.max, avg, quantiles }
    }
}

/// Updates answered by a standalone server whose txn is not yet durable, waiting for their
/// latency to be complete. Past this many the oldest are not measured (the figure stays
/// right for the rest; memory stays bounded).
const UNSYNCED_MAX: usize = 1 << 16;

/// The service's request latencies (ZooKeeper's `readlatency` and `updatelatency`), in µs.
///
/// A read's latency ends when its reply is built (reads reveal nothing that is not
/// durable). An update's ends when it may be answered: in an ensemble when it is applied
/// after a quorum's fsync; standalone when the local fsync covering it completes, which the
/// loop reports with `log_durable`.
#[derive(Clone, Debug, Default)]
pub struct RequestMetrics {
    pub read_latency: Summary,
    pub update_latency: Summary,
    /// ZooKeeper's `propagation_latency`: from the leader stamping a txn (its header's
    /// wall-clock ms) to its being applied here, on every server, recorded as whole ms in
    /// µs. Two hosts' wall clocks: skew shows in it, and a negative value is dropped, as
    /// ZooKeeper drops it.
    pub propagation_latency: Summary,
    /// (zxid, when its request arrived in µs of the step clock).
    unsynced: std::collections::VecDeque<(crate::proto::Zxid, i64)>,
}


impl RequestMetrics {
    /// An update applied at `zxid` (its request arrived at `started_us`) is answered at
    /// `now_us`, or — with `until_durable` — once the log is durable up to `zxid`. Times
    /// are the core's step clock (`proto::Now::us`), never read here.
    #[inline]
    pub fn update_done(&mut self, zxid: crate::proto::Zxid, started_us: i64, now_us: i64, until_durable: bool) {
        if !until_durable {
            self.update_latency.record(now_us.saturating_sub(started_us).max(0) as u64);
        } else if self.unsynced.len() < UNSYNCED_MAX {
            self.unsynced.push_back((zxid, started_us));
        }
    }

    /// A committed txn stamped at `txn_time_ms` (wall clock) was applied at `now_wall_ms`.
    #[inline]
    pub fn txn_applied(&mut self, txn_time_ms: i64, now_wall_ms: i64) {
        if let Ok(ms) = u64::try_from(now_wall_ms.saturating_sub(txn_time_ms)) {
            self.propagation_latency.record(ms.saturating_mul(1000));
        }
    }

    /// The log is durable up to `zxid` at `now_us`: the updates it covers are complete.
    pub fn log_durable(&mut self, zxid: crate::proto::Zxid, now_us: i64) {
        while let Some(&(z, started_us)) = self.unsynced.front() {
            if z > zxid {
                break;
            }
            self.update_latency.record(now_us.saturating_sub(started_us).max(0) as u64);
            self.unsynced.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_summary_is_all_zero() {
        let s = Summary::new();
        let v = s.values();
        assert_eq!((v.count, v.sum, v.min, v.max, v.avg), (0, 0, 0, 0, 0.0));
        assert_eq!(v.quantiles, [0; 4]);
    }

    #[test]
    fn exact_count_sum_min_max_and_close_percentiles() {
        let mut s = Summary::new();
        for v in 1..=1000u64 {
            s.record(v * 10);
        }
        let v = s.values();
        assert_eq!((v.count, v.sum, v.min, v.max), (1000, 5_005_000, 10, 10_000));
        assert!((v.avg - 5005.0).abs() < 1e-9);
        let q = v.quantiles;
        for (got, want) in q.iter().zip([5000u64, 9500, 9900, 9990]) {
            let err = (*got as f64 - want as f64).abs() / want as f64;
            assert!(err <= 0.02, "quantile {got} vs {want}");
        }
        s.reset();
        assert_eq!(s.values().count, 0);
        assert_eq!(s.values().quantiles, [0; 4]);
    }

    #[test]
    fn standalone_updates_complete_when_durable() {
        use crate::proto::Zxid;
        let mut m = RequestMetrics::default();
        m.update_done(Zxid(1), 100, 150, true);
        m.update_done(Zxid(2), 120, 150, true);
        m.update_done(Zxid(3), 130, 150, false);
        assert_eq!(m.update_latency.count(), 1, "an ensemble update counts at once");
        assert_eq!(m.update_latency.values().max, 20, "from its arrival to its answer, in µs");
        m.log_durable(Zxid(1), 400);
        assert_eq!(m.update_latency.count(), 2);
        assert_eq!(m.update_latency.values().max, 300, "a standalone update ends when durable");
        m.log_durable(Zxid(5), 500);
        assert_eq!(m.update_latency.count(), 3);
        m.log_durable(Zxid(9), 600);
        assert_eq!(m.update_latency.count(), 3);
    }

    #[test]
    fn propagation_latency_is_whole_wall_ms_and_drops_clock_skew() {
        let mut m = RequestMetrics::default();
        m.txn_applied(1_000, 1_007);
        m.txn_applied(1_000, 1_000);
        m.txn_applied(1_010, 1_000);
        let v = m.propagation_latency.values();
        assert_eq!((v.count, v.min, v.max), (2, 0, 7_000), "µs of whole ms; the negative one is dropped");
    }

    #[test]
    fn out_of_range_values_saturate_instead_of_growing() {
        let mut s = Summary::new();
        s.record(0);
        s.record(u64::MAX / 2);
        let v = s.values();
        assert_eq!(v.count, 2);
        assert_eq!(v.min, 0);
        assert_eq!(v.max, u64::MAX / 2);
        let q = v.quantiles;
        assert!(q[3] >= HIST_MAX / 2, "top quantile saturates near the range's end: {q:?}");
    }
}

//! A linearizability checker for ZooKeeper histories: plain data in (`Entry`), a verdict out.
//! Used by the fault tests of the real binary (tests/netns_faults.rs) and by the ensemble
//! simulator; it knows nothing of sockets or of arbor's client.
//!
//! What it checks, per path (P-compositionality: linearizability of independent objects is
//! checked object by object; every path lives under one parent that always exists):
//! - Writes (create, setData, delete, failed ones included — a BadVersion or NodeExists
//!   reply is an observation too) are linearizable: one total order, consistent with real
//!   time, in which the model (`model.rs`) gives every recorded reply. Wing–Gong search with
//!   Lowe's memo of (linearized set, state) (`search.rs`). Ops with an unknown outcome may
//!   take effect at any time after their invocation, or never.
//! - Reads (getData) are ZooKeeper's: not linearizable, but sequentially consistent per
//!   session: each returns a state of the write order at a position no earlier than what
//!   its session already observed, made by writes invoked before the read completed
//!   (`reads.rs`).
//!
//! How: reads are first tied to the write that carried their value, which turns a session's
//! observations into precedence edges between writes (`prepare.rs`); the search enforces
//! them while it looks for a write order, and the read pass then places every read in the
//! order found. If it cannot, the search goes on to the next order, up to
//! `Limits::max_witnesses`; then it searches again without the memo (which may have pruned
//! the order the reads need: it is exact for the writes, not for the reads), within
//! `Limits::max_steps_without_memo`. Only an exhausted search is a violation; running out
//! of steps there is `Inconclusive`, so reads never give a false alarm from pruning.
//!
//! Requirements and limits, stated honestly:
//! - Data values must be unique per write on a path (the generators and tests guarantee
//!   it). A value carried by several writes is not tied to one: such reads get no edges and
//!   rely on the read pass over the orders found, which is slower (more orders to try) and
//!   more often `Inconclusive`.
//! - A NoNode read is never tied to a write (absent is a state many writes produce); it is
//!   placed by the read pass over the orders found, with the same cost.
//! - A failed write (no change to the node) is placed by the read pass at the earliest
//!   state that gives its reply and fits real time against the writes that took effect;
//!   real time between two failed writes is not re-checked (permissive).
//! - Sessions are FIFO per path only: an order between a session's ops on different paths
//!   is not checked (that would break compositionality).
//! - The initial state of every path is absent.
//! - Ops that complete exactly when another is invoked count as concurrent (permissive).
//! - The memo makes the search exponential only in the number of ops open at once (plus
//!   unknown-outcome ops, which stay open forever); every step counts against
//!   `Limits::max_steps` and past it the verdict is `Inconclusive`, never a hang.
//!
//! API: `check(&history)` / `check_with(&history, &limits)` → `Ok(Stats)` or a
//! `CheckError` (`Violation` with the path, the ops and the states tried; `Inconclusive`;
//! `Malformed`).

mod error;
mod history;
mod model;
mod prepare;
mod reads;
mod search;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use error::{CheckError, Rule, Violation};
pub use history::{Entry, Op, Outcome, Ticks};

use prepare::PathOps;
use search::{Found, Mode, Stuck};

/// Bounds on the work of one check.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Search steps over the whole history (all paths together).
    pub max_steps: u64,
    /// Write orders per path offered to the read pass before the search is repeated
    /// without its memo.
    pub max_witnesses: u32,
    /// Steps of that repeated search (it is exponential: the memo is what keeps the first
    /// one polynomial in the ops open at once); past them the verdict is `Inconclusive`.
    pub max_steps_without_memo: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_steps: 5_000_000, max_witnesses: 64, max_steps_without_memo: 1_000_000 }
    }
}

/// What a successful check looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub paths: usize,
    pub writes: usize,
    pub reads: usize,
    /// Writes with an unknown outcome.
    pub unknown: usize,
    pub steps: u64,
}

/// Checks `history` with the default limits.
pub fn check(history: &[Entry]) -> Result<Stats, CheckError> {
    check_with(history, &Limits::default())
}

/// Checks `history`: writes linearizable per path, reads sequentially consistent per
/// session. The first failing path (in path order) is reported.
pub fn check_with(history: &[Entry], limits: &Limits) -> Result<Stats, CheckError> {
    let mut by_path: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in history.iter().enumerate() {
        if let Some(why) = e.malformed() {
            return Err(CheckError::Malformed { index: i, why });
        }
        by_path.entry(e.op.path()).or_default().push(i);
    }
    let mut stats = Stats { paths: by_path.len(), ..Stats::default() };
    for idx in by_path.values() {
        let ops = prepare::prepare(history, idx).map_err(CheckError::Violation)?;
        stats.writes += ops.writes.len();
        stats.reads += ops.reads.len();
        stats.unknown += idx.iter().filter(|i| history[**i].outcome.is_none() && !history[**i].op.is_read()).count();
        check_path(history, &ops, limits, &mut stats.steps)?;
    }
    Ok(stats)
}

fn check_path(history: &[Entry], ops: &PathOps, limits: &Limits, steps: &mut u64) -> Result<(), CheckError> {
    let accept = |order: &[usize]| reads::check_reads(history, ops, order);
    let inconclusive = |steps: u64, why: &str| CheckError::Inconclusive { path: ops.path.clone(), steps, why: why.to_string() };
    let full = Mode { edges: true, memo: true };
    match search::search(ops, limits.max_steps, limits.max_witnesses, full, steps, accept) {
        Found::Order => Ok(()),
        Found::Limit => Err(inconclusive(*steps, "the step limit")),
        Found::Rejected(v) => {
            // The memo may have pruned the order the reads need: search again without it,
            // within a budget. Exhausted: a violation; out of budget: no verdict.
            let budget = (*steps).saturating_add(limits.max_steps_without_memo).min(limits.max_steps);
            let no_memo = Mode { edges: true, memo: false };
            match search::search(ops, budget, u32::MAX, no_memo, steps, accept) {
                Found::Order => Ok(()),
                Found::Rejected(_) | Found::Stuck(_) => Err(CheckError::Violation(v)),
                Found::Limit => Err(inconclusive(*steps, &format!("the step limit of the search without memo, for the reads: {}", v.summary))),
            }
        }
        Found::Stuck(s) => {
            // Stuck with the reads' edges: do the writes alone have an order? Then it is the
            // reads (a session's observations) that no order satisfies.
            let writes_only = Mode { edges: false, memo: true };
            let rule = match search::search(ops, limits.max_steps, 1, writes_only, steps, |_| Ok::<(), ()>(())) {
                Found::Order => Rule::Reads,
                Found::Limit => return Err(inconclusive(*steps, "the step limit")),
                Found::Stuck(_) | Found::Rejected(()) => Rule::Writes,
            };
            Err(CheckError::Violation(stuck_violation(history, ops, &s, rule)))
        }
    }
}

/// The explanation of a dead end: the op that could not be placed, the ops open with it,
/// the last few placed before, and the states tried there.
fn stuck_violation(history: &[Entry], ops: &PathOps, s: &Stuck, rule: Rule) -> Box<Violation> {
    let w = &ops.writes[s.op];
    let summary = match (rule, w.want) {
        (Rule::Reads, _) => format!(
            "the writes have an order, but none that also fits what the sessions read: entry #{} cannot be placed after what its sessions saw before it",
            w.entry
        ),
        (Rule::Writes, Some(want)) => format!(
            "no order of the writes gives entry #{} its reply {want:?} before it completed ({} ops still open there, {} placed before)",
            w.entry,
            s.open.len(),
            s.prefix.len()
        ),
        (Rule::Writes, None) => format!("entry #{} cannot be placed", w.entry),
    };
    let mut shown: Vec<usize> = s.prefix.iter().chain(std::iter::once(&s.op)).chain(s.open.iter().take(12)).map(|w| ops.writes[*w].entry).collect();
    shown.dedup();
    let states = s.states.iter().map(|st| ops.data.show(*st)).collect();
    Violation::new(history, &ops.path, rule, summary, shown, states)
}

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
//!   its session already observed (its earlier completed writes and reads, FIFO order),
//!   made by writes invoked before the read completed.
//!
//! How: reads take part in the same search, with their own placement rules instead of real
//! time (a read may be placed at an earlier state, as far back as its session allows; not
//! after a write invoked after it completed; session order is a chain of precedence edges).
//! So one search checks both, and its memo stays exact: whatever follows depends only on
//! the set of placed ops and the node's state (`prepare.rs` has the rules). Reads tied to
//! the write that carried their value add edges that cut dead branches early.
//!
//! Requirements and limits, stated honestly:
//! - Data values should be unique per write on a path (the generators and tests guarantee
//!   it): a read is tied to its write only then (early pruning and sharper explanations; a
//!   read of a value several writes carried is still checked, just found later).
//! - Sessions are FIFO per path only: an order between a session's ops on different paths
//!   is not checked (that would break compositionality).
//! - The initial state of every path is absent.
//! - Ops that complete exactly when another is invoked count as concurrent (permissive).
//! - An op with an unknown outcome is placed only where it changes the node (failing is the
//!   same as not happening); one seen by a read must have taken effect.
//! - The memo makes the search exponential only in the number of ops open at once (plus
//!   unknown-outcome ops, which stay open forever); every step counts against
//!   `Limits::max_steps` and past it the verdict is `Inconclusive`, never a hang.
//! - A violation reports the op that got stuck deepest with the ops open there: a small
//!   failing set, not a minimal one.
//!
//! API: `check(&history)` / `check_with(&history, &limits)` → `Ok(Stats)` or a
//! `CheckError` (`Violation` with the path, the ops and the states tried; `Inconclusive`;
//! `Malformed`).

mod error;
mod history;
mod model;
mod prepare;
mod search;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use error::{CheckError, Rule, Violation};
pub use history::{Entry, Op, Outcome, Ticks};

use prepare::PathOps;
use search::{Found, Stuck};

/// Bounds on the work of one check.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Search steps over the whole history (all paths together).
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_steps: 5_000_000 }
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
        stats.writes += ops.writes;
        stats.reads += ops.reads();
        stats.unknown += idx.iter().filter(|i| history[**i].outcome.is_none() && !history[**i].op.is_read()).count();
        check_path(history, &ops, limits, &mut stats.steps)?;
    }
    Ok(stats)
}

fn check_path(history: &[Entry], ops: &PathOps, limits: &Limits, steps: &mut u64) -> Result<(), CheckError> {
    let inconclusive = |steps: u64| CheckError::Inconclusive { path: ops.path.clone(), steps };
    match search::search(&ops.ops, true, limits.max_steps, steps) {
        Found::Order => Ok(()),
        Found::Limit => Err(inconclusive(*steps)),
        Found::Stuck(s) => {
            // Do the writes alone (no reads, no session edges) have an order? Then it is the
            // reads, what the sessions observed, that no order satisfies.
            let rule = match search::search(&ops.ops[..ops.writes], false, limits.max_steps, steps) {
                Found::Order => Rule::Reads,
                Found::Limit => return Err(inconclusive(*steps)),
                Found::Stuck(_) => Rule::Writes,
            };
            Err(CheckError::Violation(stuck_violation(history, ops, &s, rule)))
        }
    }
}

/// The explanation of a dead end: the op that could not be placed, the ops open with it,
/// the last few placed before, and the states tried there.
fn stuck_violation(history: &[Entry], ops: &PathOps, s: &Stuck, rule: Rule) -> Box<Violation> {
    let w = &ops.ops[s.op];
    let summary = match (rule, w.want) {
        (Rule::Reads, _) => format!(
            "the writes have an order, but none that also fits what the sessions observed: entry #{} cannot be placed before it completed, after what its session saw before it",
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
    let mut shown: Vec<usize> = s.prefix.iter().chain(std::iter::once(&s.op)).chain(s.open.iter().take(12)).map(|o| ops.ops[*o].entry).collect();
    shown.dedup();
    let states = s.states.iter().map(|st| ops.data.show(*st)).collect();
    Violation::new(history, &ops.path, rule, summary, shown, states)
}

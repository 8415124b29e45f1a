//! The in-memory view of the local log that every role shares.
//!
//! Invariants (asserted where they are established):
//! - `txns` holds strictly increasing zxids ending at `last_logged` (when non-empty).
//! - Every txn in (`applied`, `last_logged`] is in `txns`: `Apply` carries the txn itself,
//!   so nothing not yet applied may be evicted. At most `max_kept` txns at or below
//!   `applied` are kept, for DIFF syncs (ZooKeeper's committedLog).
//! - `applied <= last_logged` and `synced <= last_logged`.
//! - `floor` is the oldest zxid a DIFF can start from: the first kept txn, or `last_logged`
//!   when nothing is kept (the zxid *before* the first kept txn is not known to us).

use std::collections::VecDeque;

use crate::proto::Zxid;
use crate::txn::Txn;

#[derive(Debug)]
pub(crate) struct History {
    txns: VecDeque<Txn>,
    last_logged: Zxid,
    synced: Zxid,
    applied: Zxid,
    max_kept: usize,
}

impl History {
    /// At recovery the service has replayed its whole log into the tree (as ZooKeeper
    /// does), so everything logged counts as applied; whatever of it was never committed
    /// is removed later by a TRUNC from the leader.
    pub fn new(recent: Vec<Txn>, last_logged: Zxid, max_kept: usize) -> History {
        let mut txns: VecDeque<Txn> = recent.into_iter().filter(|t| t.header.zxid <= last_logged).collect();
        for w in txns.make_contiguous().windows(2) {
            assert!(w[0].header.zxid < w[1].header.zxid, "recent log out of order");
        }
        let mut h = History { txns, last_logged, synced: last_logged, applied: last_logged, max_kept };
        h.trim();
        h
    }

    pub fn last_logged(&self) -> Zxid {
        self.last_logged
    }
    pub fn synced(&self) -> Zxid {
        self.synced
    }
    pub fn applied(&self) -> Zxid {
        self.applied
    }
    pub fn floor(&self) -> Zxid {
        self.txns.front().map_or(self.last_logged, |t| t.header.zxid)
    }

    /// Is `z` a point of my history a DIFF can start from?
    pub fn contains(&self, z: Zxid) -> bool {
        z == self.last_logged || self.index_of(z).is_ok()
    }

    /// The largest zxid of my in-memory history `<= z` (only meaningful when `z >= floor`).
    pub fn largest_at_or_below(&self, z: Zxid) -> Zxid {
        match self.index_of(z) {
            Ok(_) => z,
            Err(0) => self.floor(),
            Err(i) => self.txns[i - 1].header.zxid,
        }
    }

    fn index_of(&self, z: Zxid) -> Result<usize, usize> {
        self.txns.binary_search_by(|t| t.header.zxid.cmp(&z))
    }

    /// Txns strictly after `z`, oldest first.
    pub fn after(&self, z: Zxid) -> impl Iterator<Item = &Txn> {
        let start = match self.index_of(z) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.txns.range(start..)
    }

    pub fn append(&mut self, txn: Txn) {
        // Programmer error if violated: every caller checks peer-provided zxids first.
        assert!(txn.header.zxid > self.last_logged, "log zxids must strictly increase");
        self.last_logged = txn.header.zxid;
        self.txns.push_back(txn);
    }

    /// The log is durable up to `z`. Clamped: a report from before a truncation may name a
    /// zxid we no longer hold (every txn logged since then is above it, see follower TRUNC).
    pub fn mark_synced(&mut self, z: Zxid) {
        self.synced = self.synced.max(z).min(self.last_logged);
    }

    /// Mark everything up to `upto` applied; returns the txns to `Apply`, in order.
    pub fn apply_upto(&mut self, upto: Zxid) -> Vec<Txn> {
        assert!(upto <= self.last_logged, "cannot apply past the log");
        let out: Vec<Txn> = self.after(self.applied).take_while(|t| t.header.zxid <= upto).cloned().collect();
        if let Some(last) = out.last() {
            self.applied = last.header.zxid;
        }
        self.trim();
        out
    }

    /// After `TruncateLog` / `LoadSnapshot`: the log and the service state end at `z`.
    pub fn restored(&mut self, z: Zxid, snapshot: bool) {
        if snapshot {
            self.txns.clear();
        } else {
            while self.txns.back().is_some_and(|t| t.header.zxid > z) {
                self.txns.pop_back();
            }
        }
        self.last_logged = z;
        self.applied = z;
        self.synced = if snapshot { z } else { self.synced.min(z) };
        self.trim();
    }

    /// Evict applied txns beyond `max_kept`; never an unapplied one.
    fn trim(&mut self) {
        let kept_applied = self.txns.iter().take_while(|t| t.header.zxid <= self.applied).count();
        for _ in self.max_kept..kept_applied {
            self.txns.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::SessionId;
    use crate::txn::{TxnHeader, TxnOp};

    fn t(e: u32, c: u32) -> Txn {
        Txn {
            header: TxnHeader { session: SessionId(0), cxid: 0, zxid: Zxid::new(e, c), time_ms: 0 },
            op: TxnOp::Check { path: "/".into(), version: 0 },
        }
    }

    #[test]
    fn keeps_unapplied_and_bounded_applied() {
        let mut h = History::new(vec![t(1, 1), t(1, 2), t(1, 3)], Zxid::new(1, 3), 2);
        assert_eq!(h.floor(), Zxid::new(1, 2));
        for c in 4..10 {
            h.append(t(1, c));
        }
        // Nothing above `applied` is evicted, however many.
        assert_eq!(h.after(Zxid::new(1, 3)).count(), 6);
        assert_eq!(h.apply_upto(Zxid::new(1, 5)).len(), 2);
        assert_eq!(h.floor(), Zxid::new(1, 4));
        assert!(h.contains(Zxid::new(1, 4)) && !h.contains(Zxid::new(1, 3)));
        assert_eq!(h.largest_at_or_below(Zxid::new(1, 100)), Zxid::new(1, 9));
    }

    #[test]
    fn restore_truncates_and_clamps_sync() {
        let mut h = History::new(vec![], Zxid::ZERO, 10);
        h.append(t(1, 1));
        h.append(t(1, 2));
        h.mark_synced(Zxid::new(1, 2));
        h.restored(Zxid::new(1, 1), false);
        assert_eq!((h.last_logged(), h.synced(), h.applied()), (Zxid::new(1, 1), Zxid::new(1, 1), Zxid::new(1, 1)));
        h.mark_synced(Zxid::new(1, 2));
        assert_eq!(h.synced(), Zxid::new(1, 1));
    }
}

//! The leader's `sync`s: a sync is answered only once (a) every proposal logged before it
//! arrived is committed, and (b) a quorum of voters has answered a ping sent after it
//! arrived, which proves this server was still their leader then (Raft's ReadIndex).
//!
//! Why (a): a follower forwards a client's writes and syncs on one connection and answers
//! them in the session's order; a SyncDone sent before the commit of a write forwarded
//! ahead of it would reach the follower first, and the follower would answer the sync
//! before the write (ZooKeeper's `Leader.processSync` waits for outstanding proposals too).
//!
//! Why (b): a leader cut off from its followers keeps leading until syncLimit runs out,
//! while the others may already have elected a new leader and committed more. ZooKeeper
//! answers a sync from such a leader at once, so "sync, then read" can miss a write
//! acknowledged before the sync was issued. The simulator found that (seed 106199). A
//! voter that has promised a later epoch never answers this leader's pings again, so a
//! quorum of answers to pings sent after the sync arrived means no later epoch had a
//! quorum when it arrived, and nothing was committed that this leader does not know of.
//!
//! Rounds: at most one confirmation round is in flight; syncs that arrive during round r
//! wait for round r + 1, which starts when r is confirmed. Under a stream of syncs each
//! costs at most two ping round trips, and one round serves all that arrived meanwhile.
//! Tick pings carry the latest round started; an answer to any ping carrying r proves
//! liveness after round r started, so it counts for r.
//!
//! Bound: every waiting sync is an outstanding request of some server's client (its
//! service caps those: `globalOutstandingLimit`), and the queue is dropped with the leader.

use std::collections::VecDeque;

use crate::proto::{ServerId, SessionId, Zxid};

/// Who asked: a client of this server, or a follower on behalf of one of its clients.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Asker {
    Local,
    Follower(ServerId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Waiting {
    pub asker: Asker,
    pub session: SessionId,
    pub cxid: i32,
    pub path: String,
    /// The round that must be confirmed.
    round: u64,
    /// The last proposal logged when it arrived: it must be committed first.
    after: Zxid,
}

#[derive(Debug, Default)]
pub(super) struct Syncs {
    /// Highest round started (its pings sent).
    started: u64,
    /// Highest round a quorum has answered.
    confirmed: u64,
    /// In arrival order, so `round` and `after` never decrease along it.
    waiting: VecDeque<Waiting>,
}

impl Syncs {
    /// The round pings carry now.
    pub fn round(&self) -> u64 {
        self.started
    }

    /// A sync arrived with `last_logged` the last proposal. Returns the round to start now,
    /// if none is in flight.
    pub fn arrive(&mut self, asker: Asker, session: SessionId, cxid: i32, path: String, last_logged: Zxid) -> Option<u64> {
        self.waiting.push_back(Waiting { asker, session, cxid, path, round: self.started + 1, after: last_logged });
        self.maybe_start()
    }

    /// A quorum answered pings carrying `round`. Returns the next round to start, if syncs
    /// wait for one.
    pub fn confirmed(&mut self, round: u64) -> Option<u64> {
        self.confirmed = self.confirmed.max(round.min(self.started));
        self.maybe_start()
    }

    /// Whether a round is in flight (pings sent, no quorum of answers yet).
    pub fn in_flight(&self) -> Option<u64> {
        (self.started > self.confirmed).then_some(self.started)
    }

    fn maybe_start(&mut self) -> Option<u64> {
        let needed = self.waiting.back().is_some_and(|w| w.round > self.started);
        if needed && self.started == self.confirmed {
            self.started += 1;
            Some(self.started)
        } else {
            None
        }
    }

    /// The syncs that may be answered now, `committed` being the leader's commit point.
    pub fn ready(&mut self, committed: Zxid) -> Vec<Waiting> {
        let mut done = Vec::new();
        while let Some(w) = self.waiting.front() {
            if w.round > self.confirmed || w.after > committed {
                break;
            }
            done.extend(self.waiting.pop_front());
        }
        done
    }

    /// A follower left: its clients' syncs will never be answered (it has dropped them).
    pub fn forget(&mut self, follower: ServerId) {
        self.waiting.retain(|w| w.asker != Asker::Follower(follower));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(c: u32) -> Zxid {
        Zxid::new(1, c)
    }

    #[test]
    fn a_sync_waits_for_a_round_started_after_it_arrived() {
        let mut s = Syncs::default();
        assert_eq!(s.arrive(Asker::Local, SessionId(1), 1, "/".into(), z(0)), Some(1));
        // Arrives while round 1 is in flight: round 1's pings may predate it.
        assert_eq!(s.arrive(Asker::Local, SessionId(1), 2, "/".into(), z(0)), None);
        assert!(s.ready(z(0)).is_empty());
        assert_eq!(s.confirmed(1), Some(2), "the second sync needs round 2");
        let first = s.ready(z(0));
        assert_eq!(first.iter().map(|w| w.cxid).collect::<Vec<_>>(), [1]);
        assert_eq!(s.confirmed(2), None);
        assert_eq!(s.ready(z(0)).len(), 1);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_sync_waits_for_the_proposals_logged_before_it() {
        let mut s = Syncs::default();
        s.arrive(Asker::Follower(ServerId(2)), SessionId(1), 1, "/".into(), z(5));
        s.confirmed(1);
        assert!(s.ready(z(4)).is_empty(), "z(5) is not committed yet");
        assert_eq!(s.ready(z(5)).len(), 1);
    }

    #[test]
    fn a_confirmation_of_a_round_not_started_counts_for_none_after_it() {
        let mut s = Syncs::default();
        s.confirmed(7);
        s.arrive(Asker::Local, SessionId(1), 1, "/".into(), z(0));
        assert!(s.ready(z(0)).is_empty(), "a stale confirmation must not release a later sync");
    }

    #[test]
    fn a_departed_followers_syncs_are_dropped() {
        let mut s = Syncs::default();
        s.arrive(Asker::Follower(ServerId(2)), SessionId(1), 1, "/".into(), z(0));
        s.arrive(Asker::Local, SessionId(3), 1, "/".into(), z(0));
        s.forget(ServerId(2));
        s.confirmed(1);
        s.confirmed(2);
        assert_eq!(s.ready(z(0)).iter().map(|w| w.asker).collect::<Vec<_>>(), [Asker::Local]);
    }
}

//! The follower (ZooKeeper's `Follower` + `Learner`; the Zab paper's phases 1–3 on the
//! follower side).
//!
//! Phases: `Connecting` (dial the elected leader, retried every tick until initLimit) →
//! `Discovery` (FOLLOWERINFO sent, waiting NEWEPOCH until initLimit: a leader still finishing
//! its election holds the connection) → `Syncing` (ACKEPOCH sent; receiving
//! DIFF/TRUNC/SNAP and proposals until NEWLEADER) → `Broadcast` (NEWLEADER seen; serving
//! after UPTODATE).
//!
//! Invariants:
//! - A NEWEPOCH below my accepted epoch is refused (back to Looking): I promised a later
//!   leader. Accepting one persists it before ACKEPOCH goes out.
//! - NEWLEADER is acked only once everything received before it is durable (LogSynced);
//!   currentEpoch is persisted at that moment, not before: a crash that lost an unsynced
//!   tail must not leave currentEpoch = e with a log shorter than epoch e's initial history
//!   (its vote (e, short log) would beat every (e-1, longer log) and lose committed txns).
//! - Proposals are acked only after NEWLEADER, each once durable; commits apply in zxid
//!   order, only txns I have logged (a COMMIT beyond my log is a protocol error → Looking).
//! - While a TRUNC or SNAP is being restored, later messages wait in order (pings are
//!   answered at once: they carry no state, and the leader judges liveness by them).
//! - A SNAP arrives as `SnapBegin`, chunks and `SnapEnd`; each chunk is progress, so
//!   initLimit counts from the last one (a large state is not cut off for being large),
//!   and the snapshot is installed only once complete and verified.
//! - Anything out of sequence from the leader sends me back to Looking; messages from
//!   other servers are ignored.

use std::collections::BTreeSet;

use crate::peer::QuorumMsg;
use crate::proto::{Millis, ServerId, SessionId, Zxid};

use super::{Action, Core, Input, Next};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Connecting { dialing: bool },
    Discovery,
    Syncing,
    Broadcast,
}

#[derive(Debug)]
pub struct Follower {
    leader: ServerId,
    phase: Phase,
    epoch: Option<u32>,
    /// TRUNC/SNAP in progress: (expected zxid, is snapshot), and what arrived meanwhile.
    restoring: Option<(Zxid, bool)>,
    buffered: Vec<QuorumMsg>,
    /// A SNAP being received: its zxid and the bytes still expected.
    receiving: Option<(Zxid, u64)>,
    /// NEWLEADER seen, ack pending: (its zxid, our last logged when it arrived).
    nl_pending: Option<(Zxid, Zxid)>,
    nl_acked: bool,
    serving: bool,
    /// Highest zxid acked to the leader.
    acked: Zxid,
    touched: BTreeSet<SessionId>,
    started: Millis,
    last_heard: Millis,
    next_tick: Millis,
}

impl Follower {
    pub(crate) fn new(core: &Core, leader: ServerId, now: Millis, out: &mut Vec<Action>) -> Follower {
        out.push(Action::ConnectQuorum { leader });
        Follower {
            leader,
            phase: Phase::Connecting { dialing: true },
            epoch: None,
            restoring: None,
            buffered: Vec::new(),
            receiving: None,
            nl_pending: None,
            nl_acked: false,
            serving: false,
            acked: Zxid::ZERO,
            touched: BTreeSet::new(),
            started: now,
            last_heard: now,
            next_tick: now + core.cfg.tick_ms,
        }
    }

    pub fn leader(&self) -> ServerId {
        self.leader
    }
    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }
    pub fn serving(&self) -> bool {
        self.serving
    }
    pub fn deadline(&self) -> Millis {
        self.next_tick
    }

    pub(crate) fn close(self, out: &mut Vec<Action>) {
        out.push(Action::CloseQuorum { peer: self.leader });
    }

    pub(crate) fn step(&mut self, core: &mut Core, now: Millis, input: Input, out: &mut Vec<Action>) -> Next {
        match input {
            Input::Tick if now >= self.next_tick => self.tick(core, now, out),
            Input::QuorumConnected { peer } if peer == self.leader => {
                if let Phase::Connecting { .. } = self.phase {
                    self.phase = Phase::Discovery;
                    self.last_heard = now;
                    let msg = QuorumMsg::FollowerInfo {
                        from: core.cfg.me,
                        accepted_epoch: core.durable.accepted_epoch,
                        last_zxid: core.hist.last_logged(),
                    };
                    out.push(Action::SendQuorum { to: self.leader, msg });
                }
                Next::Stay
            }
            Input::QuorumDisconnected { peer } if peer == self.leader => match self.phase {
                // Refused (its process may be restarting): redial next tick, within
                // initLimit. Closed after our FollowerInfo arrived is different: a server
                // still Looking holds it, so one that closes it will not lead (it follows
                // another, or decided so): look again now rather than redial it until
                // initLimit (the whole-ensemble simulator's seed 1250 waited a second).
                Phase::Connecting { .. } if self.epoch.is_none() => {
                    self.phase = Phase::Connecting { dialing: false };
                    Next::Stay
                }
                _ => Next::Looking,
            },
            Input::Quorum { from, msg } if from == self.leader => {
                if let Phase::Connecting { .. } = self.phase {
                    return Next::Stay;
                }
                self.last_heard = now;
                if matches!(msg, QuorumMsg::SnapChunk { .. } | QuorumMsg::SnapEnd) {
                    // Sync progress: initLimit counts from here.
                    self.started = now;
                }
                if self.restoring.is_some() && !matches!(msg, QuorumMsg::Ping { .. }) {
                    self.buffered.push(msg);
                    return Next::Stay;
                }
                self.on_message(core, msg, out)
            }
            Input::LogSynced { .. } => {
                self.maybe_ack(core, out);
                Next::Stay
            }
            Input::Restored { last_zxid, .. } => self.on_restored(core, last_zxid, out),
            Input::Forward(msg) => {
                if self.phase == Phase::Broadcast {
                    out.push(Action::SendQuorum { to: self.leader, msg });
                } else {
                    note!("follower: not connected to a leader; dropping {msg:?}");
                }
                Next::Stay
            }
            Input::Touched(ids) => {
                self.touched.extend(ids);
                Next::Stay
            }
            other => {
                note!("follower: ignoring {other:?}");
                Next::Stay
            }
        }
    }

    fn tick(&mut self, core: &Core, now: Millis, out: &mut Vec<Action>) -> Next {
        self.next_tick = now + core.cfg.tick_ms;
        let (init, sync) = (core.ticks(core.cfg.init_limit), core.ticks(core.cfg.sync_limit));
        match self.phase {
            Phase::Connecting { .. } if now - self.started >= init => Next::Looking,
            Phase::Connecting { dialing: false } => {
                self.phase = Phase::Connecting { dialing: true };
                out.push(Action::ConnectQuorum { leader: self.leader });
                Next::Stay
            }
            Phase::Connecting { dialing: true } => Next::Stay,
            // FOLLOWERINFO sent, no NEWEPOCH yet: the leader may still be finishing its
            // election and holds the connection until it decides. ZooKeeper's learner waits
            // initLimit for LEADERINFO too; syncLimit is for a leader that has spoken.
            Phase::Discovery if now - self.started >= init => Next::Looking,
            Phase::Discovery => Next::Stay,
            _ if now - self.last_heard >= sync => {
                note!("follower: leader silent for syncLimit");
                Next::Looking
            }
            _ if !self.serving && now - self.started >= init => {
                note!("follower: not in sync within initLimit");
                Next::Looking
            }
            _ => Next::Stay,
        }
    }

    fn on_message(&mut self, core: &mut Core, msg: QuorumMsg, out: &mut Vec<Action>) -> Next {
        let to = self.leader;
        match (self.phase, msg) {
            (Phase::Discovery, QuorumMsg::NewEpoch { epoch }) => {
                if epoch < core.durable.accepted_epoch {
                    note!("follower: NEWEPOCH {epoch} below my accepted epoch");
                    return Next::Looking;
                }
                if epoch > core.durable.accepted_epoch {
                    core.persist_epoch(epoch, core.durable.current_epoch, out);
                }
                self.epoch = Some(epoch);
                self.phase = Phase::Syncing;
                let msg =
                    QuorumMsg::AckEpoch { current_epoch: core.durable.current_epoch, last_zxid: core.hist.last_logged() };
                out.push(Action::SendQuorum { to, msg });
            }
            (Phase::Syncing, QuorumMsg::Diff { last_zxid }) => {
                if last_zxid != core.hist.last_logged() {
                    note!("follower: DIFF from {last_zxid} but my log ends elsewhere");
                    return Next::Looking;
                }
            }
            (Phase::Syncing, QuorumMsg::Trunc { zxid }) => {
                self.restoring = Some((zxid, false));
                out.push(Action::TruncateLog(zxid));
            }
            (Phase::Syncing, QuorumMsg::SnapBegin { zxid, size }) if self.receiving.is_none() => {
                self.receiving = Some((zxid, size));
                out.push(Action::SnapshotBegin { zxid, size });
            }
            (Phase::Syncing, QuorumMsg::SnapChunk { data }) => {
                let Some((_, left)) = self.receiving.as_mut() else {
                    note!("follower: snapshot chunk without SnapBegin");
                    return Next::Looking;
                };
                let Some(rest) = left.checked_sub(data.len() as u64) else {
                    note!("follower: snapshot longer than announced");
                    return Next::Looking;
                };
                *left = rest;
                out.push(Action::SnapshotChunk(data));
            }
            (Phase::Syncing, QuorumMsg::SnapEnd) => {
                let Some((zxid, 0)) = self.receiving.take() else {
                    note!("follower: snapshot end without its begin or short of its size");
                    return Next::Looking;
                };
                self.restoring = Some((zxid, true));
                out.push(Action::LoadSnapshot { zxid });
            }
            (Phase::Syncing | Phase::Broadcast, QuorumMsg::Proposal(txn)) => {
                if txn.header.zxid <= core.hist.last_logged() {
                    note!("follower: proposal {} not after my log", txn.header.zxid);
                    return Next::Looking;
                }
                core.append(txn.clone());
                out.push(Action::Persist(txn));
                if core.cfg.planted.apply_before_fsync {
                    // PLANTED BUG (apply-before-fsync): ack on receipt, not on LogSynced.
                    self.maybe_ack(core, out);
                }
            }
            (Phase::Syncing | Phase::Broadcast, QuorumMsg::Commit { zxid }) => {
                if zxid > core.hist.last_logged() {
                    note!("follower: commit {zxid} beyond my log");
                    return Next::Looking;
                }
                core.apply_upto(zxid, out);
            }
            (Phase::Syncing, QuorumMsg::NewLeader { epoch, zxid }) => {
                if Some(epoch) != self.epoch || zxid != Zxid::new(epoch, 0) {
                    return Next::Looking;
                }
                // currentEpoch waits for the log (maybe_ack): see the module doc.
                self.phase = Phase::Broadcast;
                self.nl_pending = Some((zxid, core.hist.last_logged()));
                self.maybe_ack(core, out);
            }
            (Phase::Broadcast, QuorumMsg::UpToDate) if self.nl_acked => self.serving = true,
            (Phase::Discovery | Phase::Syncing | Phase::Broadcast, QuorumMsg::Ping { round, .. }) => {
                let touched = std::mem::take(&mut self.touched).into_iter().collect();
                out.push(Action::SendQuorum { to, msg: QuorumMsg::PingReply { touched, round } });
            }
            (Phase::Broadcast, msg @ QuorumMsg::SyncDone { .. }) => {
                // For the service: every commit sent before it has been applied above.
                out.push(Action::Forwarded { from: to, msg });
            }
            (phase, msg) => {
                note!("follower: {msg:?} unexpected in {phase:?}");
                return Next::Looking;
            }
        }
        Next::Stay
    }

    fn on_restored(&mut self, core: &mut Core, last_zxid: Zxid, out: &mut Vec<Action>) -> Next {
        let Some((expected, snapshot)) = self.restoring.take() else {
            note!("follower: Restored without a restore in progress");
            return Next::Stay;
        };
        if last_zxid != expected {
            note!("follower: restored to {last_zxid}, leader expects {expected}");
            return Next::Looking;
        }
        core.hist.restored(last_zxid, snapshot);
        // A TRUNC deleted the snapshots above its point; a SNAP left exactly one here.
        core.snapshot = snapshot.then_some(last_zxid);
        for msg in std::mem::take(&mut self.buffered) {
            if self.restoring.is_some() {
                self.buffered.push(msg);
            } else if self.on_message(core, msg, out) == Next::Looking {
                return Next::Looking;
            }
        }
        Next::Stay
    }

    /// Ack NEWLEADER once everything before it is durable; then each newly durable proposal.
    fn maybe_ack(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        let synced = core.ackable();
        if let Some((zxid, upto)) = self.nl_pending {
            if synced < upto {
                return;
            }
            self.nl_pending = None;
            self.nl_acked = true;
            let epoch = zxid.epoch();
            core.persist_epoch(core.durable.accepted_epoch.max(epoch), epoch, out);
            self.acked = upto;
            out.push(Action::SendQuorum { to: self.leader, msg: QuorumMsg::Ack { zxid } });
        }
        if self.nl_acked && synced > self.acked {
            self.acked = synced;
            out.push(Action::SendQuorum { to: self.leader, msg: QuorumMsg::Ack { zxid: synced } });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::peer::{Notification, PeerState, QuorumMsg, Vote};
    use crate::proto::{ServerId, SessionId, Zxid};
    use crate::txn::{Txn, TxnHeader, TxnOp};
    use crate::zab::{Action, DurableState, Input, Role, Zab, ZabConfig};

    fn follower_of_3(durable: DurableState) -> (Zab, Vec<Action>) {
        let cfg = ZabConfig::for_test(1, 3, 10);
        let mut z = Zab::new(cfg, durable, vec![], 0);
        let mut out = vec![];
        let vote = Vote { leader: ServerId(3), zxid: durable.last_logged, epoch: durable.current_epoch };
        for s in [2, 3] {
            let n = Notification { sender: ServerId(s), state: PeerState::Looking, vote, round: 1 };
            z.step(1, Input::Election(n), &mut out);
        }
        z.step(30, Input::Tick, &mut out);
        assert!(matches!(z.role(), Role::Following { leader: ServerId(3), .. }));
        assert!(out.contains(&Action::ConnectQuorum { leader: ServerId(3) }));
        out.clear();
        z.step(31, Input::QuorumConnected { peer: ServerId(3) }, &mut out);
        (z, out)
    }

    fn from_leader(z: &mut Zab, msg: QuorumMsg, out: &mut Vec<Action>) {
        z.step(40, Input::Quorum { from: ServerId(3), msg }, out);
    }

    fn txn(e: u32, c: u32) -> Txn {
        Txn {
            header: TxnHeader { session: SessionId(0), cxid: 0, zxid: Zxid::new(e, c), time_ms: 0 },
            op: TxnOp::Check { path: "/".into(), version: 0 },
        }
    }

    /// Zab phase 1: a follower never acks an epoch below one it promised.
    #[test]
    fn refuses_newepoch_below_accepted() {
        let (mut z, out) = follower_of_3(DurableState { accepted_epoch: 5, current_epoch: 4, last_logged: Zxid::ZERO });
        assert!(matches!(&out[..], [Action::SendQuorum { msg: QuorumMsg::FollowerInfo { accepted_epoch: 5, .. }, .. }]));
        let mut out = vec![];
        from_leader(&mut z, QuorumMsg::NewEpoch { epoch: 4 }, &mut out);
        assert_eq!(z.role(), Role::Looking);
        assert!(out.contains(&Action::CloseQuorum { peer: ServerId(3) }));
        assert!(!out.iter().any(|a| matches!(a, Action::PersistEpoch { .. })));
    }

    /// Zab phase 2: NEWLEADER is acked, and currentEpoch persisted, only once the synced
    /// history is durable; the COMMIT before UPTODATE applies it in order.
    #[test]
    fn newleader_ack_waits_for_log_sync() {
        let (mut z, _) = follower_of_3(DurableState::default());
        let mut out = vec![];
        from_leader(&mut z, QuorumMsg::NewEpoch { epoch: 1 }, &mut out);
        assert_eq!(out[0], Action::PersistEpoch { accepted: 1, current: 0 });
        out.clear();
        from_leader(&mut z, QuorumMsg::Diff { last_zxid: Zxid::ZERO }, &mut out);
        from_leader(&mut z, QuorumMsg::Proposal(txn(1, 1)), &mut out);
        from_leader(&mut z, QuorumMsg::NewLeader { epoch: 1, zxid: Zxid::new(1, 0) }, &mut out);
        assert_eq!(out, vec![Action::Persist(txn(1, 1))], "no ack, no currentEpoch before the fsync");
        out.clear();
        z.step(41, Input::LogSynced { zxid: Zxid::new(1, 1) }, &mut out);
        assert_eq!(
            out,
            vec![
                Action::PersistEpoch { accepted: 1, current: 1 },
                Action::SendQuorum { to: ServerId(3), msg: QuorumMsg::Ack { zxid: Zxid::new(1, 0) } },
            ]
        );
        out.clear();
        from_leader(&mut z, QuorumMsg::Commit { zxid: Zxid::new(1, 1) }, &mut out);
        from_leader(&mut z, QuorumMsg::UpToDate, &mut out);
        assert_eq!(out, vec![Action::Apply(txn(1, 1))]);
        assert!(z.serving());
    }

    /// A COMMIT for a txn never proposed is a protocol error: back to Looking.
    #[test]
    fn commit_beyond_log_sends_back_to_looking() {
        let (mut z, _) = follower_of_3(DurableState::default());
        let mut out = vec![];
        from_leader(&mut z, QuorumMsg::NewEpoch { epoch: 1 }, &mut out);
        from_leader(&mut z, QuorumMsg::Commit { zxid: Zxid::new(1, 7) }, &mut out);
        assert_eq!(z.role(), Role::Looking);
    }
}

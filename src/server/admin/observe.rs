//! What the loop sees of replication, turned into metrics and a short event history.
//!
//! The loop already carries every quorum message to the replica and performs every output
//! it returns; `Observer` is shown both (`on_quorum_msg`, `on_output`, which includes the
//! replica's role, serving, proposal and commit reports), and derives from them: election
//! time, follower sync time and mode (DIFF/TRUNC/SNAP), quorum-ack latency (a proposal's
//! `Proposed` to its `Committed` on the leader), proposal/commit/diff/snap/trunc counts, ZooKeeper's detailed peer state
//! (`following - broadcast`), and a bounded ring of recent elections and syncs for the
//! console. It decides nothing; the cores do not know it exists. A follower's sync is
//! followed with `sync_progress::SyncProgress`, the piece the operator log (`oplog`) uses too.
//!
//! Cost on the hot path: one `Instant::now()` per proposal and per commit on the leader,
//! a bounded deque push/pop; no allocation once the deque has grown.

use std::collections::VecDeque;
use std::time::Instant;

use super::super::sync_progress::{role_name, SyncMode, SyncProgress};
use crate::metrics::{Counter, Summary};
use crate::peer::QuorumMsg;
use crate::proto::{ServerId, Zxid};
use crate::replica::Output;
use crate::zab::Role;

/// Recent events kept for the console.
const EVENTS_MAX: usize = 64;
/// Proposals awaiting their commit that are timed; more are counted but not timed.
const PROPOSALS_TIMED_MAX: usize = 1 << 16;

/// Metrics the loop records.
#[derive(Clone, Debug, Default)]
pub struct LoopMetrics {
    /// Leader: proposal to quorum ack (commit), µs (`quorum_ack_latency`).
    pub quorum_ack_latency: Summary,
    /// Looking until a leader is decided, µs (`election_time`).
    pub election_time: Summary,
    /// Follower: connecting to the leader until serving (UPTODATE), µs (`follower_sync_time`).
    pub follower_sync_time: Summary,
    /// Not serving clients until serving again, µs (`unavailable_time`).
    pub unavailable_time: Summary,
    /// Busy time of each loop turn (poll wait excluded), µs: a stall shows as its max.
    pub loop_turn: Summary,
    pub startup_snap_load_time: Summary,
    pub startup_txns_load_time: Summary,
    pub startup_txns_loaded: Summary,
    pub dbinittime: Summary,
    pub proposal_count: Counter,
    pub commit_count: Counter,
    pub diff_count: Counter,
    pub snap_count: Counter,
    pub trunc_count: Counter,
    pub looking_count: Counter,
    pub learner_proposal_received_count: Counter,
    pub learner_commit_received_count: Counter,
}


#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Election,
    Sync,
    Role,
}

/// One entry of the console's history.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Event {
    /// Wall clock, ms since the epoch.
    pub time_ms: i64,
    pub kind: EventKind,
    pub text: String,
    pub took_ms: Option<f64>,
}

/// A follower's sync with its leader, as far as it went.
#[derive(Clone, Debug)]
struct FollowerSync {
    leader: ServerId,
    progress: SyncProgress,
}

#[derive(Debug)]
pub struct Observer {
    pub metrics: LoopMetrics,
    events: VecDeque<Event>,
    role: Role,
    serving: bool,
    looking_since: Option<Instant>,
    unavailable_since: Option<Instant>,
    sync: Option<FollowerSync>,
    /// Leader: a sync was sent to some follower since leading (discovery is over).
    leader_synced_any: bool,
    /// Leader: proposals awaiting commit, in zxid order.
    proposals: VecDeque<(Zxid, Instant)>,
    /// Leader: bytes of the proposals sent, (last, min, max) (`*_proposal_size`).
    pub proposal_sizes: Option<(u64, u64, u64)>,
    /// When this server started leading.
    pub leading_since: Option<Instant>,
}

impl Observer {
    /// `ensemble`: this process is an ensemble member (it starts Looking).
    pub fn new(ensemble: bool, now: Instant) -> Observer {
        let mut metrics = LoopMetrics::default();
        if ensemble {
            metrics.looking_count.inc();
        }
        Observer {
            metrics,
            events: VecDeque::new(),
            role: Role::Looking,
            serving: false,
            looking_since: ensemble.then_some(now),
            unavailable_since: ensemble.then_some(now),
            sync: None,
            leader_synced_any: false,
            proposals: VecDeque::new(),
            proposal_sizes: None,
            leading_since: None,
        }
    }

    /// Leader: a PROPOSAL of `bytes` (framed) went to a follower.
    #[inline]
    pub fn proposal_sent(&mut self, bytes: usize) {
        let b = bytes as u64;
        self.proposal_sizes = Some(match self.proposal_sizes {
            None => (b, b, b),
            Some((_, lo, hi)) => (b, lo.min(b), hi.max(b)),
        });
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    fn event(&mut self, kind: EventKind, text: String, took: Option<std::time::Duration>) {
        if self.events.len() == EVENTS_MAX {
            self.events.pop_front();
        }
        let time_ms = super::super::wall_ms();
        self.events.push_back(Event { time_ms, kind, text, took_ms: took.map(|d| d.as_secs_f64() * 1000.0) });
    }

    /// ZooKeeper's detailed peer state (`QuorumPeer.getDetailedPeerState`).
    pub fn peer_state(&self) -> String {
        match self.role {
            Role::Looking => "looking".into(),
            Role::Following { .. } if self.serving => "following - broadcast".into(),
            Role::Following { .. } => match self.sync.as_ref().and_then(|s| s.progress.mode) {
                Some(m) => format!("following - synchronization - {}", m.name().to_ascii_lowercase()),
                None => "following - discovery".into(),
            },
            Role::Leading { .. } if self.serving => "leading - broadcast".into(),
            Role::Leading { .. } if self.leader_synced_any => "leading - synchronization".into(),
            Role::Leading { .. } => "leading - discovery".into(),
        }
    }

    /// An input about to be given to the replication core.
    #[inline]
    /// A quorum message arrived (from the leader, at a follower).
    pub fn on_quorum_msg(&mut self, msg: &QuorumMsg) {
        match msg {
            QuorumMsg::Proposal(_) => self.metrics.learner_proposal_received_count.inc(),
            QuorumMsg::Commit { .. } => self.metrics.learner_commit_received_count.inc(),
            _ => {}
        }
        // Until serving: the sync's messages (`sync` is taken when serving starts).
        if !self.serving {
            if let Some(s) = self.sync.as_mut() {
                s.progress.note(msg);
            }
        }
    }

    /// An action the core returned, about to be performed.
    #[inline]
    /// The replica asked for something (or reported a proposal or a commit).
    pub fn on_output(&mut self, output: &Output) {
        match output {
            Output::Proposed { zxid } => {
                self.metrics.proposal_count.inc();
                if self.proposals.len() < PROPOSALS_TIMED_MAX {
                    self.proposals.push_back((*zxid, Instant::now()));
                }
            }
            Output::ServingChanged(serving) => self.serving_changed(*serving),
            Output::Committed(header) if matches!(self.role, Role::Leading { .. }) => {
                self.metrics.commit_count.inc();
                let zxid = header.zxid;
                let mut now = None;
                while let Some(&(z, t)) = self.proposals.front() {
                    if z > zxid {
                        break;
                    }
                    let now = *now.get_or_insert_with(Instant::now);
                    self.metrics.quorum_ack_latency.record_duration(now.saturating_duration_since(t));
                    self.proposals.pop_front();
                }
            }
            Output::SendQuorum { to, msg: QuorumMsg::Diff { last_zxid } } => {
                self.metrics.diff_count.inc();
                self.leader_synced_any = true;
                self.event(EventKind::Sync, format!("follower {to}: DIFF from 0x{:x}", last_zxid.0), None);
            }
            Output::SendQuorum { to, msg: QuorumMsg::Trunc { zxid } } => {
                self.metrics.trunc_count.inc();
                self.leader_synced_any = true;
                self.event(EventKind::Sync, format!("follower {to}: TRUNC to 0x{:x}", zxid.0), None);
            }
            Output::SendSnapshot { to, zxid } => {
                self.metrics.snap_count.inc();
                self.leader_synced_any = true;
                self.event(EventKind::Sync, format!("follower {to}: SNAP at 0x{:x}", zxid.0), None);
            }
            Output::ConnectQuorum { leader } => {
                self.sync = Some(FollowerSync { leader: *leader, progress: SyncProgress::new(Instant::now()) });
            }
            Output::RoleChanged(role) => self.role_changed(*role),
            _ => {}
        }
    }

    fn role_changed(&mut self, role: Role) {
        let now = Instant::now();
        let was = std::mem::replace(&mut self.role, role);
        // The core reports the role again when only its epoch became known (after NEWEPOCH):
        // the same leader, the same election.
        let same = match (was, role) {
            (Role::Following { leader: a, .. }, Role::Following { leader: b, .. }) => a == b,
            (Role::Leading { .. }, Role::Leading { .. }) => true,
            _ => false,
        };
        if same {
            return;
        }
        self.proposals.clear();
        self.leader_synced_any = false;
        self.leading_since = matches!(role, Role::Leading { .. }).then_some(now);
        match role {
            Role::Looking => {
                self.metrics.looking_count.inc();
                self.looking_since = Some(now);
                self.sync = None;
                self.event(EventKind::Role, format!("looking (was {})", role_name(was)), None);
            }
            Role::Following { leader, .. } => self.decided(now, format!("elected server {leader}; following it")),
            Role::Leading { .. } => self.decided(now, "elected; leading".into()),
        }
    }

    fn decided(&mut self, now: Instant, text: String) {
        let took = self.looking_since.take().map(|t| now.saturating_duration_since(t));
        if let Some(d) = took {
            self.metrics.election_time.record_duration(d);
        }
        self.event(EventKind::Election, text, took);
    }

    /// The service started or stopped serving clients (after the role's sync).
    pub fn serving_changed(&mut self, serving: bool) {
        if serving == self.serving {
            return;
        }
        self.serving = serving;
        let now = Instant::now();
        if !serving {
            self.unavailable_since = Some(now);
            return;
        }
        if let Some(t) = self.unavailable_since.take() {
            self.metrics.unavailable_time.record_duration(now.saturating_duration_since(t));
        }
        if let (Role::Following { .. }, Some(FollowerSync { leader, progress: s })) = (self.role, self.sync.take()) {
            let took = now.saturating_duration_since(s.started);
            self.metrics.follower_sync_time.record_duration(took);
            let how = match s.mode {
                Some(SyncMode::Snap) => format!("SNAP of {} bytes, then {} txns", s.snap_bytes, s.txns),
                Some(m) => format!("{} of {} txns", m.name(), s.txns),
                None => format!("{} txns", s.txns),
            };
            self.event(EventKind::Sync, format!("synced with leader {leader}: {how}"), Some(took));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::SessionId;
    use crate::txn::{Txn, TxnHeader, TxnOp};

    fn txn(z: i64) -> Txn {
        Txn { header: TxnHeader { session: SessionId(1), cxid: 1, zxid: Zxid(z), time_ms: 0 }, op: TxnOp::CloseSession }
    }

    #[test]
    fn election_then_leading_with_proposals_committed() {
        let mut o = Observer::new(true, Instant::now());
        assert_eq!(o.peer_state(), "looking");
        o.on_output(&Output::RoleChanged(Role::Leading { epoch: 1 }));
        o.on_output(&Output::RoleChanged(Role::Leading { epoch: 2 }));
        assert_eq!(o.metrics.election_time.count(), 1, "an epoch update is not a second election");
        assert_eq!(o.peer_state(), "leading - discovery");
        o.on_output(&Output::SendQuorum { to: ServerId(2), msg: QuorumMsg::Diff { last_zxid: Zxid(5) } });
        assert_eq!(o.peer_state(), "leading - synchronization");
        o.serving_changed(true);
        assert_eq!(o.peer_state(), "leading - broadcast");
        for z in 1..=3 {
            o.on_output(&Output::Proposed { zxid: Zxid(z) });
        }
        o.on_output(&Output::Committed(txn(2).header));
        assert_eq!(o.metrics.quorum_ack_latency.count(), 2);
        assert_eq!((o.metrics.proposal_count.get(), o.metrics.commit_count.get(), o.metrics.diff_count.get()), (3, 1, 1));
        let kinds: Vec<EventKind> = o.events().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Election, EventKind::Sync]);
    }

    #[test]
    fn follower_sync_mode_and_time() {
        let mut o = Observer::new(true, Instant::now());
        o.on_output(&Output::RoleChanged(Role::Following { leader: ServerId(3), epoch: 1 }));
        o.on_output(&Output::ConnectQuorum { leader: ServerId(3) });
        assert_eq!(o.peer_state(), "following - discovery");
        o.on_quorum_msg(&QuorumMsg::Trunc { zxid: Zxid(4) });
        o.on_quorum_msg(&QuorumMsg::Diff { last_zxid: Zxid(4) });
        o.on_quorum_msg(&QuorumMsg::Proposal(txn(5)));
        assert_eq!(o.peer_state(), "following - synchronization - trunc");
        o.serving_changed(true);
        assert_eq!(o.peer_state(), "following - broadcast");
        assert_eq!(o.metrics.follower_sync_time.count(), 1);
        let last = o.events().last().expect("event").text.clone();
        assert_eq!(last, "synced with leader 3: TRUNC of 1 txns");
        o.on_output(&Output::RoleChanged(Role::Looking));
        assert_eq!(o.metrics.looking_count.get(), 2);
    }

    #[test]
    fn the_event_ring_is_bounded() {
        let mut o = Observer::new(true, Instant::now());
        for i in 0..(EVENTS_MAX as i64 * 3) {
            o.on_output(&Output::SendSnapshot { to: ServerId(2), zxid: Zxid(i) });
        }
        assert_eq!(o.events().count(), EVENTS_MAX);
        assert_eq!(o.metrics.snap_count.get(), EVENTS_MAX as u64 * 3);
    }
}

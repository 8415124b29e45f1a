//! Replication (sans-IO): leader election, discovery, sync and atomic broadcast, Zab-style
//! (see ../shared/design.md "Replication protocol"; ZooKeeper's `FastLeaderElection`,
//! `Leader`, `Follower`, `Learner`, `LearnerHandler`; the Zab paper's invariants).
//!
//! One `Zab` per server, stepped by the event loop with `(now, Input)`; it pushes `Action`s
//! that the loop performs (send, persist, apply...). No sockets, files or clocks inside, so
//! a deterministic in-memory network can run whole clusters (see `sim` tests).
//!
//! States: `Looking` (election) → `Following(leader)` | `Leading`. The dispatcher `step`
//! branches on the state once; `election`, `leader` and `follower` hold the per-state logic.
//!
//! Contract with the loop / service:
//! - Every `Action::Persist(txn)` is appended to the local log in order; at the end of the
//!   loop turn the log is fsynced and the loop feeds `Input::LogSynced { zxid }` (the last
//!   durable zxid). Nothing that depends on a txn being durable (an ACK, a commit) is sent
//!   before that input arrives.
//! - `Action::PersistEpoch` must be durable before the loop steps the core again (the
//!   storage writes the epoch files synchronously: temp + fsync + rename).
//! - `Action::Apply(txn)` comes in strictly increasing zxid order, only for committed txns;
//!   the service applies it to the tree and replies to the client that sent it, if local.
//! - `Action::TruncateLog(z)`: drop log records above `z` and rebuild the tree from the
//!   snapshot + log (the state may contain applied-at-recovery txns above `z`), then feed
//!   `Input::Restored { last_zxid }`.
//! - `Action::SendSnapshot { to, zxid }`: the leader's loop sends the snapshot file at `zxid`
//!   to `to` as `SnapBegin`, `SnapChunk`s and `SnapEnd`, paced by the socket, and holds every
//!   later message for `to` (pings excepted) until the last chunk is out; then it feeds
//!   `Input::SnapshotSent { to }`. `zxid` is either a snapshot the loop reported with
//!   `Input::SnapshotWritten` or the leader's last applied zxid, which the loop then
//!   snapshots itself (copy-on-write, off the loop thread) — a snapshot already being made
//!   for an earlier request is reused, never made twice (a follower that reconnects while
//!   its snapshot is being made or sent gets the same one). If the loop cannot produce it,
//!   it feeds `Input::SnapshotUnavailable` and closes the connection; the follower starts
//!   over and the core picks another.
//! - Follower: `Action::SnapshotBegin` / `SnapshotChunk` write the arriving file;
//!   `Action::LoadSnapshot { zxid }` verifies it (every CRC, the zxid), installs it durably
//!   and atomically in place of the local state and log, then feeds `Input::Restored`.
//!   A received snapshot that fails verification is not installed: the loop closes the
//!   quorum connection.
//! - `Input::SnapshotWritten { zxid }`: a complete snapshot of the applied state at `zxid`
//!   is on disk (periodic, or made for a SNAP): a leader may send it instead of making one.
//! - Client-facing roles: the service serves clients only while `serving()` is true (leader
//!   after a quorum acked NEWLEADER; follower after UPTODATE). On leaving Following/Leading
//!   the loop closes every client connection (clients see ConnectionLoss and move on).

/// A debug note at a point where a peer's message is ignored. Compiled out (the cores do
/// no I/O); kept so the reason is written where the decision is made.
macro_rules! note {
    ($($arg:tt)*) => {
        if false {
            let _ = format_args!($($arg)*);
        }
    };
}

pub mod election;
pub mod follower;
mod canvass;
mod history;
mod syncs;
pub mod leader;
#[cfg(test)]
mod sim;

use std::collections::{BTreeMap, BTreeSet};

use crate::peer::{Notification, PeerState, QuorumMsg, Vote};
use crate::proto::{Millis, ServerId, Zxid};
use crate::txn::Txn;

/// Static ensemble settings.
#[derive(Clone, Debug)]
pub struct ZabConfig {
    pub me: ServerId,
    /// Every voting member of the committed configuration, `me` included (when I vote).
    pub voters: BTreeSet<ServerId>,
    /// A reconfig that changes the voters, logged here and not yet committed (ZooKeeper's
    /// `lastSeenQuorumVerifier`): until it is applied every quorum (election, epoch,
    /// NEWLEADER, liveness, commits from it on) must be a quorum of `voters` AND of these.
    pub proposed: Option<Proposed>,
    /// Observers (`server.N=…:observer`): they learn every commit and serve clients, but
    /// never vote, never lead and never count toward a quorum.
    pub observers: BTreeSet<ServerId>,
    pub tick_ms: Millis,
    /// Ticks a follower may take to connect and sync.
    pub init_limit: u32,
    /// Ticks of silence after which leader/follower give up on each other.
    pub sync_limit: u32,
    /// How long a Looking server waits for a better vote once a quorum agrees
    /// (ZooKeeper's finalizeWait, 200 ms).
    pub finalize_wait_ms: Millis,
    /// How many committed txns the leader keeps in memory for DIFF syncs.
    pub committed_log_max: usize,
    /// Bugs a test planted (none in a server).
    pub planted: crate::planted::Planted,
}

impl ZabConfig {
    /// Tests: voters 1..=n, server `me`, 100 ms ticks, the simulator's limits.
    #[cfg(test)]
    pub(crate) fn for_test(me: u64, n: u64, committed_log_max: usize) -> ZabConfig {
        ZabConfig {
            me: ServerId(me),
            voters: (1..=n).map(ServerId).collect(),
            proposed: None,
            observers: Default::default(),
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait_ms: 20,
            committed_log_max,
            planted: Default::default(),
        }
    }

    /// Votes needed for a quorum of the committed voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
    /// A voter of the committed configuration or of the proposed one.
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id) || self.proposed.as_ref().is_some_and(|p| p.voters.contains(&id))
    }
    /// A server of the ensemble: a voter (committed or proposed) or an observer.
    pub fn is_member(&self, id: ServerId) -> bool {
        self.is_voter(id) || self.observers.contains(&id)
    }
    /// The voters of both configurations while a change is proposed, each once.
    pub fn all_voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        let extra = self.proposed.iter().flat_map(|p| p.voters.iter()).filter(|id| !self.voters.contains(id));
        self.voters.iter().chain(extra).copied()
    }
    /// Whether the servers `counted` holds for make a quorum: of the committed voters and,
    /// while a change is proposed, of its voters too (the joint quorum).
    pub fn is_quorum(&self, counted: impl Fn(ServerId) -> bool) -> bool {
        majority(&self.voters, &counted) && self.proposed.as_ref().is_none_or(|p| majority(&p.voters, &counted))
    }
    /// Whether `counted` is a quorum of the committed voters or of the proposed ones. Enough
    /// to *follow* a leader that is already established (a Looking server joining it): the
    /// leader counted its own quorums, jointly where it must, so following it adds no
    /// decision; requiring both would leave a server that replayed a change its leader
    /// never had (it will be truncated away) waiting for voters that will never join.
    pub fn is_quorum_of_either(&self, counted: impl Fn(ServerId) -> bool) -> bool {
        majority(&self.voters, &counted) || self.proposed.as_ref().is_some_and(|p| majority(&p.voters, &counted))
    }
}

/// A majority of `voters` is `counted`.
pub(crate) fn majority(voters: &BTreeSet<ServerId>, counted: impl Fn(ServerId) -> bool) -> bool {
    voters.iter().filter(|id| counted(**id)).count() > voters.len() / 2
}

/// A voter change proposed (logged) and not yet committed here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// The reconfig txn's zxid.
    pub zxid: Zxid,
    pub voters: BTreeSet<ServerId>,
    /// The service applied it before its commit was known: replayed from the log at
    /// recovery, or rebuilt by a TRUNC or carried by a SNAP (`reconfig::Recovered`). No
    /// `Apply` will announce its commit, so the core does, with
    /// `Action::ReplayedConfigCommitted`, once a leader's commit covers it.
    pub replayed: bool,
}

/// The voters a reconfig txn sets, if `txn` is one (its data is `/zookeeper/config`'s text,
/// written by the leader's service; one that does not parse changes nothing, as on apply).
fn reconfig_voters(txn: &Txn) -> Option<BTreeSet<ServerId>> {
    let crate::txn::TxnOp::Reconfig { data } = &txn.op else { return None };
    let text = std::str::from_utf8(data).ok()?;
    crate::reconfig::Membership::parse(text).ok().map(|m| m.voters())
}

/// What the storage knows at start (or after a restore).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// Last txn in the local log (committed or not).
    pub last_logged: Zxid,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Timers; the loop calls it at `next_deadline()` and whenever convenient.
    Tick,
    /// An election message from another server.
    Election(Notification),
    /// A quorum-port message. `from` is the follower (at the leader) or the leader.
    Quorum { from: ServerId, msg: QuorumMsg },
    /// A quorum connection opened (follower → leader; the leader learns the id from
    /// `FollowerInfo`) or closed / failed (zero-byte read, error, connect refused).
    QuorumConnected { peer: ServerId },
    QuorumDisconnected { peer: ServerId },
    /// The local log is durable up to `zxid`.
    LogSynced { zxid: Zxid },
    /// After `TruncateLog` or `LoadSnapshot`: the state now ends at `last_zxid`.
    /// `replayed`: a voter change the rebuilt state holds that is newer than the committed
    /// membership (`Proposed::replayed`), which stays proposed until a commit covers it.
    Restored { last_zxid: Zxid, replayed: Option<Proposed> },
    /// Leader only: a prepared txn to replicate (zxid from `next_zxid()`).
    Propose(Txn),
    /// Follower: forward this to the leader (client request, session open, sync). Leader:
    /// a local client's `sync`, answered with `Action::SyncDone` (see `syncs`).
    Forward(QuorumMsg),
    /// Sessions touched by local clients since the last report (follower → leader in
    /// `PingReply`; the leader's own are handled by its service directly).
    Touched(Vec<crate::proto::SessionId>),
    /// Leader: the last chunk of the snapshot for `to` has been handed to its socket.
    SnapshotSent { to: ServerId },
    /// A complete snapshot file of the applied state at `zxid` is on disk.
    SnapshotWritten { zxid: Zxid },
    /// There is no snapshot at `zxid` after all (its job failed, its file is gone).
    SnapshotUnavailable { zxid: Zxid },
    /// A reconfig committed (or was recovered): the ensemble's members are now these. A
    /// proposed voter change at or below the applied point is settled; a leader that is no
    /// longer a voter steps down, and a server that is no longer a member stops taking part.
    Membership { voters: BTreeSet<ServerId>, observers: BTreeSet<ServerId> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send an election notification to one server.
    SendElection { to: ServerId, msg: Notification },
    /// Send on the quorum connection with `to`.
    SendQuorum { to: ServerId, msg: QuorumMsg },
    /// Follower: dial the quorum port of `leader`.
    ConnectQuorum { leader: ServerId },
    /// Close the quorum connection with `peer` (leader dropping a follower, or a follower
    /// leaving its leader).
    CloseQuorum { peer: ServerId },
    /// Append to the local log (fsync at the end of the turn, then `LogSynced`).
    Persist(Txn),
    /// Durably record the epochs before the next step.
    PersistEpoch { accepted: u32, current: u32 },
    TruncateLog(Zxid),
    /// Leader: stream the snapshot file at `zxid` to `to` (see the module doc).
    SendSnapshot { to: ServerId, zxid: Zxid },
    /// Follower: a snapshot at `zxid` of `size` bytes starts arriving: open a file for it.
    SnapshotBegin { zxid: Zxid, size: u64 },
    /// Follower: the next bytes of that file.
    SnapshotChunk(Vec<u8>),
    /// Follower: the file is complete: verify and install it, then `Restored`.
    LoadSnapshot { zxid: Zxid },
    /// Apply a committed txn (strictly increasing zxids).
    Apply(Txn),
    /// Leader: a follower forwarded a client request or session open; the service
    /// prepares it and calls `Input::Propose`. (Forwarded syncs are answered by `zab`.)
    Forwarded { from: ServerId, msg: QuorumMsg },
    /// Leader: sessions touched at a follower (keep them alive).
    SessionsTouched(Vec<crate::proto::SessionId>),
    /// Leader: a local client's `sync` (from `Input::Forward`) may be answered now.
    SyncDone { session: crate::proto::SessionId, cxid: i32, path: String },
    /// The role changed; on `Looking` the loop drops all client connections.
    RoleChanged(Role),
    /// A replayed voter change (`Proposed::replayed`) is now known committed: the
    /// replica makes it the membership (as an applied reconfig does, `Input::Membership`).
    ReplayedConfigCommitted { zxid: Zxid },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Looking,
    Following { leader: ServerId, epoch: u32 },
    Leading { epoch: u32 },
}

/// For `srvr`/`mntr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZabStatus {
    pub role: Role,
    pub serving: bool,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    pub last_logged: Zxid,
    pub last_committed: Zxid,
    /// Leader only: (follower, synced = acked NEWLEADER, last acked zxid), by id.
    pub followers: Vec<(ServerId, bool, Zxid)>,
    /// Leader only: syncs waiting for their confirmation round or earlier commits
    /// (ZooKeeper's `pending_syncs`).
    pub pending_syncs: usize,
}

/// State every role shares: settings, epochs and the in-memory log.
#[derive(Debug)]
pub(crate) struct Core {
    pub cfg: ZabConfig,
    pub durable: DurableState,
    pub hist: history::History,
    /// The newest snapshot of this history the loop has (or is making) on disk: a SNAP
    /// can send it, followed by the txns after it, instead of serializing the state again.
    pub snapshot: Option<Zxid>,
}

impl Core {
    fn ticks(&self, n: u32) -> Millis {
        self.cfg.tick_ms * n as Millis
    }
    fn persist_epoch(&mut self, accepted: u32, current: u32, out: &mut Vec<Action>) {
        self.durable.accepted_epoch = accepted;
        self.durable.current_epoch = current;
        out.push(Action::PersistEpoch { accepted, current });
    }
    fn apply_upto(&mut self, z: Zxid, out: &mut Vec<Action>) {
        out.extend(self.hist.apply_upto(z).into_iter().map(Action::Apply));
        self.note_committed(z, out);
    }
    /// Everything up to `z` is known committed (a leader's count, or its COMMIT). A
    /// replayed voter change it covers is committed: announce it once (its `Apply` was at
    /// recovery, before anybody knew).
    fn note_committed(&mut self, z: Zxid, out: &mut Vec<Action>) {
        if let Some(p) = self.cfg.proposed.as_mut().filter(|p| p.replayed && p.zxid <= z) {
            p.replayed = false;
            out.push(Action::ReplayedConfigCommitted { zxid: p.zxid });
        }
    }
    /// How far this server may claim its log durable, in its own acks and in the leader's
    /// count of itself: what the fsync covered (`LogSynced`), never what was only appended.
    fn ackable(&self) -> Zxid {
        if self.cfg.planted.apply_before_fsync {
            // PLANTED BUG (apply-before-fsync): claim what is appended (in the page cache) as
            // durable, so an ack can count towards a commit that a crash of this server
            // then loses.
            return self.hist.last_logged();
        }
        self.hist.synced()
    }
    /// Log `txn` in memory (a proposal, at the leader or a follower). A reconfig that
    /// changes the voters becomes the proposed configuration from here on.
    fn append(&mut self, txn: Txn) {
        if let Some(voters) = reconfig_voters(&txn).filter(|v| *v != self.cfg.voters) {
            tracing::info!(zxid = %txn.header.zxid, from = ?self.cfg.voters, to = ?voters, "voter change proposed: joint quorums until it commits");
            self.cfg.proposed = Some(Proposed { zxid: txn.header.zxid, voters, replayed: false });
        }
        self.hist.append(txn);
    }
    fn own_vote(&self) -> Vote {
        Vote { leader: self.cfg.me, zxid: self.hist.last_logged(), epoch: self.durable.current_epoch }
    }
}

/// What a role handler asks of the dispatcher.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Next {
    Stay,
    /// Leave the role and start an election.
    Looking,
}

#[derive(Debug)]
enum State {
    Looking,
    Following(follower::Follower),
    Leading(leader::Leader),
}

/// One server's replication core. See the module doc for the contract.
#[derive(Debug)]
pub struct Zab {
    core: Core,
    election: election::Election,
    state: State,
    /// The role last reported with `RoleChanged` (emitted whenever `role()` changes,
    /// including a Leading/Following epoch becoming known after discovery).
    reported: Role,
    /// Looking: FOLLOWERINFOs of peers that decided I lead before I did. Their connections
    /// are held, not closed: if I decide to lead they are my first followers at once;
    /// closing made them redial a whole tick later. One per peer (a newer one replaces it).
    held: BTreeMap<ServerId, QuorumMsg>,
    /// Leading, in discovery: who has committed elsewhere (see `canvass`).
    canvass: Option<canvass::Canvass>,
}

impl Zab {
    /// `recent`: the tail of the local log (up to cfg.committed_log_max txns, oldest first),
    /// loaded at recovery, so a server that becomes leader can DIFF followers without disk
    /// reads. The service state is assumed to include every logged txn (recovery replays the
    /// whole log), so `last_committed()` starts at `durable.last_logged`.
    pub fn new(cfg: ZabConfig, durable: DurableState, recent: Vec<Txn>, now: Millis) -> Zab {
        let hist = history::History::new(recent, durable.last_logged, cfg.committed_log_max);
        let mut election = election::Election::new(cfg.me);
        let core = Core { cfg, durable, hist, snapshot: None };
        // The first notifications go out on the first Tick (the deadline is `now`).
        election.start(&core.cfg, now - core.cfg.tick_ms, core.own_vote(), &mut Vec::new());
        Zab { core, election, state: State::Looking, reported: Role::Looking, held: BTreeMap::new(), canvass: None }
    }

    pub fn step(&mut self, now: Millis, input: Input, out: &mut Vec<Action>) {
        if let Input::LogSynced { zxid } = input {
            self.core.hist.mark_synced(zxid);
        }
        if let Input::SnapshotWritten { zxid } = input {
            // Only a point of my current history (a job that finished after a TRUNC may
            // report a snapshot the truncation deleted).
            if self.core.hist.contains(zxid) && self.core.snapshot.is_none_or(|z| zxid > z) {
                self.core.snapshot = Some(zxid);
            }
            return;
        }
        if let Input::SnapshotUnavailable { zxid } = input {
            if self.core.snapshot == Some(zxid) {
                self.core.snapshot = None;
            }
            return;
        }
        if let Input::Membership { voters, observers } = input {
            self.set_members(now, voters, observers, out);
            return;
        }
        if let Input::Restored { replayed, .. } = &input {
            // The state was rebuilt from the log that is left (TRUNC) or replaced (SNAP):
            // everything logged is applied. A proposed change was cut away, or is in the
            // rebuilt state, where it stays proposed until a commit covers it.
            self.core.cfg.proposed = replayed.clone();
        }
        if let (Input::Tick, State::Leading(l), Some(cv)) = (&input, &self.state, self.canvass.as_mut()) {
            if l.discovering() {
                let mine = self.election.notification(&self.core.cfg, PeerState::Leading);
                cv.probe(&self.core.cfg, now, &mine, |v| l.has(v), out);
            }
        }
        let next = match (&mut self.state, input) {
            (_, Input::Election(n)) => {
                self.on_notification(now, n, out);
                Next::Stay
            }
            (State::Looking, Input::Tick) => {
                if let Some(d) = self.election.tick(&self.core.cfg, now, out) {
                    self.decide(now, d, out);
                }
                Next::Stay
            }
            (State::Looking, Input::Quorum { from, msg: msg @ QuorumMsg::FollowerInfo { .. } }) => {
                self.hold(now, from, msg, out);
                Next::Stay
            }
            (State::Looking, Input::QuorumDisconnected { peer }) => {
                self.held.remove(&peer);
                Next::Stay
            }
            (State::Looking, other) => {
                note!("looking: ignoring {other:?}");
                Next::Stay
            }
            // A server that dialled me as its leader while I follow another: close it, so
            // it looks again at once instead of waiting initLimit for a NEWEPOCH that never
            // comes (ZooKeeper's followers do not even listen on the quorum port). Found by
            // the whole-ensemble simulator (seed 1250).
            (State::Following(f), Input::Quorum { from, msg: QuorumMsg::FollowerInfo { .. } }) if from != f.leader() => {
                out.push(Action::CloseQuorum { peer: from });
                Next::Stay
            }
            (State::Following(f), input) => f.step(&mut self.core, now, input, out),
            (State::Leading(l), input) => l.step(&mut self.core, now, input, out),
        };
        if next == Next::Looking {
            self.become_looking(now, out);
        }
        self.report_role(out);
    }

    pub fn next_deadline(&self) -> Millis {
        match &self.state {
            State::Looking => self.election.deadline(),
            State::Following(f) => f.deadline(),
            State::Leading(l) => match &self.canvass {
                Some(cv) if l.discovering() => l.deadline().min(cv.deadline()),
                _ => l.deadline(),
            },
        }
    }

    pub fn role(&self) -> Role {
        match &self.state {
            State::Looking => Role::Looking,
            State::Following(f) => {
                Role::Following { leader: f.leader(), epoch: f.epoch().unwrap_or(self.core.durable.accepted_epoch) }
            }
            State::Leading(l) => Role::Leading { epoch: l.epoch().unwrap_or(self.core.durable.accepted_epoch) },
        }
    }

    /// Leader after a quorum acked NEWLEADER; follower after UPTODATE.
    pub fn serving(&self) -> bool {
        match &self.state {
            State::Looking => false,
            State::Following(f) => f.serving(),
            State::Leading(l) => l.serving(),
        }
    }

    /// Leader: the zxid the next `Input::Propose` must carry.
    /// This server is an observer (it follows, never votes or leads).
    pub fn is_observer(&self) -> bool {
        !self.core.cfg.is_voter(self.core.cfg.me)
    }

    /// Leader: the servers connected and synced with it (NEWLEADER acked), itself
    /// included; nothing in other roles. A voter change is proposed only if a quorum of the
    /// new voters is among them (ZooKeeper's NewConfigNoQuorum otherwise).
    /// In id order.
    pub fn synced_servers(&self) -> impl Iterator<Item = ServerId> + '_ {
        let me = self.core.cfg.me;
        let learners = match &self.state {
            State::Leading(l) if l.serving() => Some(l.synced_learners()),
            _ => None,
        };
        let learners = learners.into_iter().flatten();
        let below = learners.clone().filter(move |id| *id < me);
        let above = learners.filter(move |id| *id > me);
        let leading = matches!(&self.state, State::Leading(l) if l.serving());
        below.chain(leading.then_some(me)).chain(above)
    }

    /// Votes needed for a quorum of the committed voters (self included).
    pub fn quorum_size(&self) -> usize {
        self.core.cfg.quorum()
    }

    /// Leader: proposals not yet committed; 0 in any other role.
    pub fn proposals_in_flight(&self) -> u64 {
        match &self.state {
            State::Leading(l) => l.in_flight(&self.core),
            _ => 0,
        }
    }

    pub fn next_zxid(&self) -> Zxid {
        let epoch = match &self.state {
            State::Leading(l) => l.epoch().unwrap_or(self.core.durable.current_epoch),
            _ => self.core.durable.current_epoch,
        };
        let last = self.core.hist.last_logged();
        if last.epoch() == epoch {
            last.next()
        } else {
            Zxid::new(epoch, 1)
        }
    }

    /// The last txn applied (for the leader: committed). At start, the last logged one.
    pub fn last_committed(&self) -> Zxid {
        self.core.hist.applied()
    }

    pub fn last_logged(&self) -> Zxid {
        self.core.hist.last_logged()
    }

    /// The last election, for the log: (round, servers backing the winner, voters).
    pub fn election_summary(&self) -> (u64, usize, usize) {
        (self.election.round(), self.election.supporters(&self.core.cfg), self.core.cfg.voters.len())
    }

    pub fn durable(&self) -> DurableState {
        DurableState { last_logged: self.core.hist.last_logged(), ..self.core.durable }
    }

    pub fn status(&self) -> ZabStatus {
        ZabStatus {
            role: self.role(),
            serving: self.serving(),
            accepted_epoch: self.core.durable.accepted_epoch,
            current_epoch: self.core.durable.current_epoch,
            last_logged: self.core.hist.last_logged(),
            last_committed: self.core.hist.applied(),
            followers: match &self.state {
                State::Leading(l) => l.follower_status(),
                _ => Vec::new(),
            },
            pending_syncs: match &self.state {
                State::Leading(l) => l.pending_syncs(),
                _ => 0,
            },
        }
    }

    fn on_notification(&mut self, now: Millis, n: Notification, out: &mut Vec<Action>) {
        let cfg = &self.core.cfg;
        let lost = match &self.state {
            State::Looking => {
                if let Some(d) = self.election.receive(cfg, now, n, out) {
                    self.decide(now, d, out);
                }
                false
            }
            State::Following(_) => {
                self.election.answer(cfg, &n, PeerState::Following, out);
                false
            }
            State::Leading(l) => {
                self.election.answer(cfg, &n, PeerState::Leading, out);
                match self.canvass.as_mut() {
                    Some(cv) if l.discovering() => !cv.hear(cfg, &n),
                    _ => false,
                }
            }
        };
        if lost {
            note!("leader: too many voters follow another leader for a quorum to join; looking again");
            self.become_looking(now, out);
        }
    }

    /// Looking: a peer decided I lead and sent FOLLOWERINFO; keep it for the decision.
    fn hold(&mut self, now: Millis, from: ServerId, msg: QuorumMsg, out: &mut Vec<Action>) {
        let cfg = &self.core.cfg;
        let valid = matches!(msg, QuorumMsg::FollowerInfo { from: id, .. } if id == from);
        if !valid || from == cfg.me || !cfg.is_voter(from) {
            note!("looking: FOLLOWERINFO from {from} that is not a voter; closing");
            out.push(Action::CloseQuorum { peer: from });
            return;
        }
        self.held.insert(from, msg);
        // A quorum has already dialled me as its leader (each decided from votes for me,
        // maybe older ones than my current vote, so the election would not count them):
        // lead. Leading is always safe — discovery establishes the epoch only with a quorum
        // of fresh promises and steps down for a more up-to-date follower — and waiting
        // would cost them initLimit·tickTime (simulator seed 213172: 1 and 3 followed 2,
        // which kept looking in a later round).
        let cfg = &self.core.cfg;
        if cfg.is_voter(cfg.me) && cfg.is_quorum(|id| id == cfg.me || self.held.contains_key(&id)) {
            note!("looking: a quorum dialled me as leader; leading");
            // What I answer others from now on: Leading, with a vote for me.
            let mine = self.core.own_vote();
            self.election.settle(mine);
            self.decide(now, election::Decision::Lead, out);
        }
    }

    fn decide(&mut self, now: Millis, d: election::Decision, out: &mut Vec<Action>) {
        let held = std::mem::take(&mut self.held);
        match d {
            election::Decision::Lead => {
                let mut l = leader::Leader::new(&self.core, now);
                let mut next = Next::Stay;
                for (from, msg) in held {
                    if next == Next::Stay {
                        next = l.step(&mut self.core, now, Input::Quorum { from, msg }, out);
                    }
                }
                // A single-voter ensemble (or one whose followers were held) may finish
                // discovery right away.
                if next == Next::Stay {
                    next = l.after_start(&mut self.core, now, out);
                }
                self.state = State::Leading(l);
                self.canvass = Some(canvass::Canvass::new(now));
                if next == Next::Looking {
                    self.become_looking(now, out);
                }
            }
            election::Decision::Follow(leader) => {
                // They expected me to lead: let them go (they redial or re-elect). Closed
                // before I dial my leader, who may be one of them.
                out.extend(held.into_keys().map(|peer| Action::CloseQuorum { peer }));
                self.state = State::Following(follower::Follower::new(&self.core, leader, now, out));
            }
        }
    }

    /// A reconfig was applied here: these are the members now. Learners that left lose
    /// their connection to a leader; a leader that is no longer a voter steps down so the
    /// new voters elect one among themselves; a server that is no longer a member leaves its
    /// leader and takes no part from now on (it never decides in an election).
    fn set_members(&mut self, now: Millis, voters: BTreeSet<ServerId>, observers: BTreeSet<ServerId>, out: &mut Vec<Action>) {
        let cfg = &mut self.core.cfg;
        let before: BTreeSet<ServerId> = cfg.voters.union(&cfg.observers).copied().collect();
        let old_voters = std::mem::replace(&mut cfg.voters, voters);
        if old_voters != cfg.voters {
            tracing::info!(from = ?old_voters, to = ?cfg.voters, "voters changed by reconfig");
        }
        if observers != cfg.observers {
            tracing::info!(from = ?cfg.observers, to = ?observers, "observers changed by reconfig");
            cfg.observers = observers;
        }
        let applied = self.core.hist.applied();
        if cfg.proposed.as_ref().is_some_and(|p| p.zxid <= applied) {
            cfg.proposed = None;
        }
        let (me, voter, member) = (cfg.me, cfg.is_voter(cfg.me), cfg.is_member(cfg.me));
        let leave = match &mut self.state {
            State::Leading(l) => {
                l.members_changed(&self.core, &before, out);
                if !voter {
                    tracing::info!(server = %me, "this leader is no longer a voter; stepping down for the new voters to elect one");
                }
                !voter
            }
            State::Following(_) if !member => {
                tracing::info!(server = %me, "this server is no longer a member; leaving its leader");
                true
            }
            _ => false,
        };
        if leave {
            self.become_looking(now, out);
        }
    }

    fn become_looking(&mut self, now: Millis, out: &mut Vec<Action>) {
        self.canvass = None;
        match std::mem::replace(&mut self.state, State::Looking) {
            State::Looking => {}
            State::Following(f) => f.close(out),
            State::Leading(l) => l.close(out),
        }
        self.report_role(out);
        self.election.start(&self.core.cfg, now, self.core.own_vote(), out);
    }

    fn report_role(&mut self, out: &mut Vec<Action>) {
        let role = self.role();
        if role != self.reported {
            self.reported = role;
            out.push(Action::RoleChanged(role));
        }
    }
}

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
//! - `Action::SendSnapshot { to }`: the leader's loop serializes its tree as of its last
//!   applied zxid (= the leader's last committed zxid at that moment) and sends
//!   `QuorumMsg::Snap`; the core then streams the txns after it.
//! - `Action::LoadSnapshot`: replace tree + sessions with the snapshot, persist it as a
//!   local snapshot file, then feed `Input::Restored`.
//! - Client-facing roles: the service serves clients only while `serving()` is true (leader
//!   after a quorum acked NEWLEADER; follower after UPTODATE). On leaving Following/Leading
//!   the loop closes every client connection (clients see ConnectionLoss and move on).

pub mod election;
pub mod follower;
pub mod leader;
#[cfg(test)]
mod sim;

use std::collections::BTreeSet;

use crate::peer::{Notification, QuorumMsg};
use crate::proto::{Millis, ServerId, Zxid};
use crate::txn::Txn;

/// Static ensemble settings.
#[derive(Clone, Debug)]
pub struct ZabConfig {
    pub me: ServerId,
    /// Every voting member, `me` included.
    pub voters: BTreeSet<ServerId>,
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
}

impl ZabConfig {
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
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
    Restored { last_zxid: Zxid },
    /// Leader only: a prepared txn to replicate (zxid from `next_zxid()`).
    Propose(Txn),
    /// Follower only: forward this to the leader (client request, session open, sync).
    Forward(QuorumMsg),
    /// Sessions touched by local clients since the last report (follower → leader in
    /// `PingReply`; the leader's own are handled by its service directly).
    Touched(Vec<crate::proto::SessionId>),
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
    SendSnapshot { to: ServerId },
    LoadSnapshot { zxid: Zxid, snapshot: Vec<u8> },
    /// Apply a committed txn (strictly increasing zxids).
    Apply(Txn),
    /// Leader: a follower forwarded a client request / session open / sync; the service
    /// prepares it and calls `Input::Propose` (or answers SyncDone through `SendQuorum`).
    Forwarded { from: ServerId, msg: QuorumMsg },
    /// Leader: sessions touched at a follower (keep them alive).
    SessionsTouched(Vec<crate::proto::SessionId>),
    /// The role changed; on `Looking` the loop drops all client connections.
    RoleChanged(Role),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Looking,
    Following { leader: ServerId, epoch: u32 },
    Leading { epoch: u32 },
}

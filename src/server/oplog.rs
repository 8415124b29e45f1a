//! Operational log lines about replication: elections, role changes and follower syncs.
//!
//! The replication core does no I/O, so it does not log; the loop watches what it performs
//! (`RoleChanged`, the sync messages going to and coming from each follower) and writes one
//! line per event with its numbers:
//! - `election over`: round, supporters of the winner out of the voters, leader, how long
//!   this server was Looking;
//! - `role changed`: looking / following (leader, epoch) / leading (epoch);
//! - leader, per follower, `follower synced`: DIFF, TRUNC or SNAP, txns sent in the sync,
//!   snapshot bytes, time from FOLLOWERINFO to its ACK of NEWLEADER;
//! - follower, `synced with the leader`: the same from its side (until UPTODATE).

use std::collections::BTreeMap;
use std::time::Instant;

use super::sync_progress::{role_name, SyncProgress};
use crate::peer::QuorumMsg;
use crate::proto::{ServerId, Zxid};
use crate::zab::{Role, Zab};

/// Leader side: a follower's sync, and the NEWLEADER zxid whose ACK ends it.
#[derive(Debug)]
struct FollowerSync {
    progress: SyncProgress,
    /// NEWLEADER went out with this zxid; the follower's ACK of it ends the sync.
    newleader: Option<Zxid>,
}

#[derive(Debug)]
pub(super) struct OpLog {
    /// When this server last began Looking (at start, the loop's creation).
    looking_since: Option<Instant>,
    /// Leader: syncs in progress, by follower.
    followers: BTreeMap<ServerId, FollowerSync>,
    /// Follower: the sync with the leader, until UPTODATE.
    with_leader: Option<(ServerId, SyncProgress)>,
}

impl OpLog {
    pub(super) fn new() -> OpLog {
        OpLog { looking_since: Some(Instant::now()), followers: BTreeMap::new(), with_leader: None }
    }

    /// `Action::RoleChanged`.
    pub(super) fn role_changed(&mut self, role: Role, zab: &Zab, me: ServerId) {
        let name = role_name(role);
        let (leader, epoch) = match role {
            Role::Looking => (None, None),
            Role::Following { leader, epoch } => (Some(leader), Some(epoch)),
            Role::Leading { epoch } => (None, Some(epoch)),
        };
        if role == Role::Looking {
            self.looking_since = Some(Instant::now());
            self.followers.clear();
            self.with_leader = None;
        } else if let Some(since) = self.looking_since.take() {
            let (round, votes, voters) = zab.election_summary();
            let winner = leader.unwrap_or(me);
            let took_ms = since.elapsed().as_millis() as u64;
            tracing::info!(round, votes, voters, leader = %winner, took_ms, "election over");
        }
        match (leader, epoch) {
            (Some(l), Some(e)) => tracing::info!(role = %name, leader = %l, epoch = e, "role changed"),
            (None, Some(e)) => tracing::info!(role = %name, epoch = e, "role changed"),
            _ => tracing::info!(role = %name, "role changed"),
        }
    }

    /// A quorum message from `from` (a follower at the leader, the leader at a follower).
    pub(super) fn received(&mut self, from: ServerId, msg: &QuorumMsg) {
        match msg {
            QuorumMsg::FollowerInfo { .. } => {
                self.followers.insert(from, FollowerSync { progress: SyncProgress::new(Instant::now()), newleader: None });
            }
            QuorumMsg::Ack { zxid } => {
                let done = self.followers.get(&from).is_some_and(|s| s.newleader == Some(*zxid));
                if done {
                    if let Some(FollowerSync { progress: s, .. }) = self.followers.remove(&from) {
                        tracing::info!(
                            follower = %from,
                            mode = %s.mode_name(),
                            txns = s.txns,
                            snap_bytes = s.snap_bytes,
                            took_ms = s.started.elapsed().as_millis() as u64,
                            "follower synced"
                        );
                    }
                }
            }
            QuorumMsg::NewEpoch { .. } => self.with_leader = Some((from, SyncProgress::new(Instant::now()))),
            QuorumMsg::Diff { .. } | QuorumMsg::Trunc { .. } | QuorumMsg::SnapBegin { .. } | QuorumMsg::Proposal(_) => {
                if let Some((_, s)) = self.with_leader.as_mut() {
                    s.note(msg);
                }
            }
            QuorumMsg::UpToDate => {
                if let Some((leader, s)) = self.with_leader.take() {
                    tracing::info!(
                        leader = %leader,
                        mode = %s.mode_name(),
                        txns = s.txns,
                        snap_bytes = s.snap_bytes,
                        took_ms = s.started.elapsed().as_millis() as u64,
                        "synced with the leader"
                    );
                }
            }
            _ => {}
        }
    }

    /// A quorum message to `to` (leader → follower during its sync).
    pub(super) fn sent(&mut self, to: ServerId, msg: &QuorumMsg) {
        if self.followers.is_empty() {
            return;
        }
        let Some(s) = self.followers.get_mut(&to) else { return };
        if let QuorumMsg::NewLeader { zxid, .. } = msg {
            s.newleader = Some(*zxid);
        } else if s.newleader.is_none() {
            s.progress.note(msg);
        }
    }

    /// Leader: a SNAP to `to` of `bytes` went out.
    pub(super) fn snapshot_sent(&mut self, to: ServerId, bytes: u64) {
        if let Some(s) = self.followers.get_mut(&to) {
            s.progress.snapshot_sent(bytes);
        }
    }
}

//! Serving modes, set by the replication layer (`replica::sync_mode`). A change of mode
//! closes every client connection and drops all in-flight bookkeeping: clients reconnect
//! and resume their sessions, here or elsewhere, as with ZooKeeper.

use crate::proto::{Millis, Zxid};

use super::{ClientId, ClientState, Outbox, Service};

/// What this server does with writes, decided by the replication layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Prepare, log and apply at once (one fsync per loop turn, then reply).
    Standalone,
    /// Prepare against the tree plus the txns in flight, propose; apply on commit.
    Leader,
    /// Forward writes to the leader; apply on commit.
    Follower,
    /// No leader: refuse clients (they move to another server).
    NotServing,
    /// No leader for a while, `readonlymode.enabled`: serve reads to clients that connect
    /// with `canBeReadOnly`, answer writes with NotReadOnly, refuse other clients.
    ReadOnly,
}

impl Service {
    /// The mode before any client connected (an ensemble member starts `NotServing`).
    pub fn set_initial_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// The replication layer changed role. Every client connection is closed on a change
    /// (ZooKeeper does the same: clients reconnect, to this server or another, and resume
    /// their sessions), and all in-flight bookkeeping is dropped with them.
    pub fn set_mode(&mut self, mode: Mode, next_zxid: Zxid, now: Millis, out: &mut dyn Outbox) {
        // Sessions a read-only server made exist nowhere else: they end with the mode.
        for s in std::mem::take(&mut self.ro_sessions) {
            self.sessions.remove(s);
        }
        if mode == self.mode {
            return;
        }
        tracing::debug!(from = ?self.mode, to = ?mode, "service mode");
        self.mode = mode;
        // In connection order, not the map's: a replica's outputs are a function of its
        // inputs (the simulator replays a seed exactly).
        let mut clients: Vec<ClientId> = self.clients.keys().copied().collect();
        clients.sort_unstable();
        for c in clients {
            if let Some(info) = self.clients.get_mut(&c) {
                info.state = ClientState::Closing;
            }
            out.close_client(c);
        }
        self.owners.clear();
        self.inflight.clear();
        self.inflight_total = 0;
        self.queued.clear();
        self.queued_total = 0;
        self.pending_connects.clear();
        self.pending.clear();
        self.touched.clear();
        if mode == Mode::Leader {
            self.next_zxid = next_zxid;
            // A new leader owns expiry from now: every session gets a full timeout.
            self.sessions.touch_all(now);
        }
    }

    /// Storage tells the service that writes must stop (`Some(reason)`) or may resume.
    pub fn set_writes_refused(&mut self, reason: Option<String>) {
        self.writes_refused = reason;
    }
}

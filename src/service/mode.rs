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
        self.sessions.reopen_closing(now);
        self.touched.clear();
        self.reconfig_in_flight = None;
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

#[cfg(test)]
mod tests {
    use crate::jute::ConnectRequest;
    use crate::proto::{ErrorCode, SessionId, Zxid};
    use crate::service::testkit::{create, get, Harness, MAX_TIMEOUT_MS};
    use crate::service::Mode;

    #[test]
    fn a_change_of_mode_closes_every_client_and_forgets_what_was_in_flight() {
        let mut h = Harness::in_mode(Mode::Leader);
        let mut clients = Vec::new();
        for _ in 0..2 {
            let c = h.accept();
            h.send_connect(c, SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
            h.commit_proposed();
            clients.push(c);
        }
        h.send(clients[0], &create("/a", b""));
        assert_eq!(h.svc.outstanding(), 1);
        h.svc.set_mode(Mode::Follower, Zxid::new(2, 1), h.now.ms, &mut h.out);
        assert_eq!(h.out.closed, clients, "in connection order");
        assert_eq!(h.svc.outstanding(), 0);
        assert_eq!(h.svc.mode(), Mode::Follower);
    }

    #[test]
    fn read_only_serves_reads_to_read_only_clients_and_refuses_writes() {
        let mut h = Harness::in_mode(Mode::ReadOnly);
        let plain = h.accept();
        h.send_connect(plain, SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        assert_eq!(h.out.closed, vec![plain], "a client that cannot be read-only goes elsewhere");
        let c = h.accept();
        let req = ConnectRequest { protocol_version: 0, last_zxid_seen: 0, timeout_ms: MAX_TIMEOUT_MS, session_id: 0, passwd: vec![0; 16], read_only: Some(true) };
        let mut buf = bytes::BytesMut::new();
        crate::jute::encode_connect_request(&mut buf, &req);
        h.svc.client_frame(h.now, c, &buf[crate::jute::LEN_PREFIX..], &mut h.out);
        let resp = h.connect_response(c).expect("a local session");
        assert_eq!(resp.read_only, Some(true));
        assert!(h.out.persisted.is_empty() && h.out.forwarded.is_empty(), "nothing can be logged");
        assert_eq!(h.call(c, &get("/", false)).0.err, 0);
        assert_eq!(h.call(c, &create("/a", b"")).0.err, ErrorCode::NotReadOnly.code());
        // Its sessions end with the mode.
        h.svc.set_mode(Mode::Follower, Zxid::new(2, 1), h.now.ms, &mut h.out);
        assert!(!h.svc.sessions().is_live(SessionId(resp.session_id)));
    }
}

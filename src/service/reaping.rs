//! Timers (leader or standalone only; followers leave expiry to the leader): sessions that
//! expired get a CloseSession txn (their ephemerals go with it), and every
//! `container_check_ms` empty containers that once had children and expired TTL nodes are
//! deleted by the server itself (ZooKeeper's `SessionTrackerImpl`, `ContainerManager`).
//! While writes are refused (the disk cannot take a txn) expiry and reaping are postponed.

use crate::acl;
use crate::jute::Request;
use crate::proto::{Id, Now, SessionId};
use crate::txn::TxnOp;

use super::{Mode, Outbox, Service};

impl Service {
    /// Timers: session expiry, container and TTL reaping.
    pub fn tick(&mut self, now: Now, out: &mut dyn Outbox) {
        if self.writes_refused.is_some() {
            // Closing a session is a txn: postpone expiry (and reaping) until the disk is back.
            for session in self.sessions.expired(now.ms) {
                let timeout = self.sessions.get(session).map_or(0, |s| s.timeout_ms);
                self.sessions.add(session, timeout, now.ms);
            }
            self.next_reap_ms = now.ms + self.cfg.container_check_ms;
            return;
        }
        if !matches!(self.mode, Mode::Standalone | Mode::Leader) {
            if now.ms >= self.next_reap_ms {
                self.next_reap_ms = now.ms + self.cfg.container_check_ms;
            }
            return;
        }
        for session in self.sessions.expired(now.ms) {
            tracing::debug!(%session, "session expired");
            let txn = self.new_txn(session, 0, now.wall_ms, TxnOp::CloseSession);
            self.submit(now, txn, None, out);
        }
        if now.ms >= self.next_reap_ms {
            self.next_reap_ms = now.ms + self.cfg.container_check_ms;
            self.reap(now, out);
        }
    }

    /// Delete empty containers that once had children and expired TTL nodes, as the
    /// server itself (ZooKeeper's ContainerManager).
    pub(super) fn reap(&mut self, now: Now, out: &mut dyn Outbox) {
        let wall_ms = now.wall_ms;
        let mut victims = self.tree.container_candidates();
        victims.extend(self.tree.expired_ttl_nodes(wall_ms));
        let super_auth = [Id::new(acl::SUPER_SCHEME, "")];
        for path in victims {
            let req = Request::Delete { path, version: -1 };
            let zxid = self.next_txn_zxid();
            if let Ok(op) = self.prepare(SessionId(0), 0, &super_auth, &req, zxid, wall_ms) {
                let txn = self.new_txn(SessionId(0), 0, wall_ms, op);
                self.submit(now, txn, None, out);
            }
        }
    }
}

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
            // Prepared like a client's close: its ephemerals' deletion is in flight.
            let op = self.prepare(session, 0, &[], &Request::CloseSession, self.next_txn_zxid(), now.wall_ms);
            let txn = self.new_txn(session, 0, now.wall_ms, op.unwrap_or(TxnOp::CloseSession));
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

#[cfg(test)]
mod tests {
    use crate::jute::CreateKind;
    use crate::proto::{ErrorCode, SessionId};
    use crate::service::testkit::{create, create_as, get, Harness, MIN_TIMEOUT_MS, REAP_EVERY_MS};
    use crate::service::Mode;
    use crate::txn::TxnOp;

    #[test]
    fn an_expired_session_is_closed_with_its_ephemerals() {
        let mut h = Harness::standalone();
        let (owner, resp) = h.connect(MIN_TIMEOUT_MS);
        let (other, _) = h.connect(MIN_TIMEOUT_MS * 4);
        h.call(owner, &create_as(CreateKind::Create, "/eph", b"", 1));
        h.call(owner, &create("/keep", b""));
        h.advance(MIN_TIMEOUT_MS as i64 * 2);
        h.call(other, &crate::jute::Request::Ping);
        h.tick();
        assert_eq!(h.out.persisted.last().map(|t| (&t.op, t.header.session)), Some((&TxnOp::CloseSession, SessionId(resp.session_id))));
        assert!(!h.svc.sessions().is_live(SessionId(resp.session_id)));
        assert!(h.out.closed.contains(&owner), "its connection goes too");
        assert_eq!(h.call(other, &get("/eph", false)).0.err, ErrorCode::NoNode.code());
        assert_eq!(h.call(other, &get("/keep", false)).0.err, 0);
        assert!(h.svc.sessions().is_live(SessionId(h.svc.clients().find(|(c, _)| **c == other).and_then(|(_, i)| i.session()).expect("s").0)));
    }

    #[test]
    fn a_session_that_pings_does_not_expire() {
        let mut h = Harness::standalone();
        let (c, resp) = h.connect(MIN_TIMEOUT_MS);
        for _ in 0..4 {
            h.advance(MIN_TIMEOUT_MS as i64 / 2);
            h.call(c, &crate::jute::Request::Ping);
            h.tick();
        }
        assert!(h.svc.sessions().is_live(SessionId(resp.session_id)));
        assert!(h.out.closed.is_empty());
    }

    #[test]
    fn an_empty_container_that_had_children_is_reaped() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MIN_TIMEOUT_MS);
        h.call(c, &create_as(CreateKind::CreateContainer, "/box", b"", 4));
        h.call(c, &create("/never-had-children", b""));
        h.advance(REAP_EVERY_MS);
        h.call(c, &crate::jute::Request::Ping);
        h.tick();
        assert!(h.svc.tree().lookup("/box").is_some(), "a container that never had a child stays");
        h.call(c, &create("/box/x", b""));
        h.call(c, &crate::jute::Request::Delete { path: "/box/x".into(), version: -1 });
        h.tick();
        assert!(h.svc.tree().lookup("/box").is_some(), "not before the next check");
        h.advance(REAP_EVERY_MS);
        h.call(c, &crate::jute::Request::Ping);
        h.tick();
        assert!(h.svc.tree().lookup("/box").is_none(), "reaped");
        assert!(h.svc.tree().lookup("/never-had-children").is_some());
        assert!(matches!(&h.out.persisted.last().map(|t| &t.op), Some(TxnOp::Delete { path }) if path == "/box"));
    }

    #[test]
    fn followers_leave_expiry_to_the_leader() {
        let mut h = Harness::in_mode(Mode::Follower);
        let header = crate::txn::TxnHeader { session: SessionId(5), cxid: 0, zxid: crate::proto::Zxid::new(1, 1), time_ms: h.now.wall_ms };
        let txn = crate::txn::Txn { header, op: TxnOp::CreateSession { timeout_ms: MIN_TIMEOUT_MS } };
        h.svc.apply_committed(h.now, txn, &mut h.out);
        h.advance(MIN_TIMEOUT_MS as i64 * 3);
        h.tick();
        assert!(h.out.persisted.is_empty() && h.out.proposed.is_empty() && h.out.forwarded.is_empty());
        assert!(h.svc.sessions().is_live(SessionId(5)));
    }
}

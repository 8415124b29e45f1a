//! Forwarding between a follower and the leader, the leader's side: writes and session
//! creations a follower forwarded (prepared and proposed here as if local, so they take
//! their place in the one zxid order), `sync` (answered on the same connection, after every
//! commit queued before it), and sessions kept alive by followers' clients. The follower's
//! side: `Service::write` forwards writes and syncs, `connect` (`handshake`) new sessions,
//! and `sync_done` here answers a sync once the leader's SyncDone comes back.

use crate::jute::{self, Request, Response};
use crate::peer::QuorumMsg;
use crate::proto::{ErrorCode, Millis, Now, ServerId, SessionId, Zxid};
use crate::txn::TxnOp;

use super::{Mode, Outbox, Service};

impl Service {
    /// Follower: sessions touched since the last call (reported to the leader).
    pub fn take_touched(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.touched).into_iter().collect()
    }

    /// Leader: sessions kept alive by clients of followers.
    pub fn touch_sessions(&mut self, sessions: &[SessionId], now: Millis) {
        for s in sessions {
            self.sessions.touch(*s, now);
        }
    }

    /// Leader: a follower forwarded something from one of its clients.
    pub fn forwarded(&mut self, now: Now, from: ServerId, msg: QuorumMsg, out: &mut dyn Outbox) {
        if self.mode != Mode::Leader {
            return;
        }
        let wall_ms = now.wall_ms;
        match msg {
            QuorumMsg::CreateSession { session, timeout_ms } => {
                let txn = self.new_txn(session, 0, wall_ms, TxnOp::CreateSession { timeout_ms });
                self.submit(now, txn, None, out);
            }
            QuorumMsg::Request { session, cxid, op: _, body, auth } => {
                let zxid = self.next_zxid;
                let op = match jute::decode_request(&body) {
                    Ok((_, req)) => {
                        if matches!(req, Request::CloseSession) {
                            self.sessions.set_closing(session);
                        }
                        self.check_session(session, &req)
                            .and_then(|()| self.prepare(session, cxid, &auth, &req, zxid, wall_ms))
                            .unwrap_or_else(|err| TxnOp::Error { err })
                    }
                    Err(e) => {
                        tracing::warn!(server = %from, error = %e, "undecodable forwarded request");
                        TxnOp::Error { err: ErrorCode::MarshallingError }
                    }
                };
                let txn = self.new_txn(session, cxid, wall_ms, op);
                self.submit(now, txn, None, out);
            }
            // Every commit before this point has already been queued to that follower on
            // the same connection, so answering now is answering after them.
            QuorumMsg::Sync { session, cxid, path } => out.send_peer(from, QuorumMsg::SyncDone { session, cxid, path }),
            other => tracing::warn!(server = %from, msg = ?other, "unexpected forwarded message"),
        }
    }

    /// Follower: the leader answered a forwarded `sync`.
    pub fn sync_done(&mut self, now: Now, session: SessionId, cxid: i32, path: String, out: &mut dyn Outbox) {
        if let Some((client, _)) = self.done_waiting(now, session, cxid, Zxid::ZERO) {
            self.reply(client, cxid, ErrorCode::Ok, &Response::Sync { path }, out);
        }
        self.drain_queue(now, session, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::jute::{Request, Response};
    use crate::peer::QuorumMsg;
    use crate::proto::{ServerId, SessionId, Zxid};
    use crate::service::testkit::{create, get, Harness, MAX_TIMEOUT_MS};
    use crate::service::{ClientId, Mode};
    use crate::txn::{Txn, TxnHeader, TxnOp};

    /// A follower with one client in a session, and the leader that made the session.
    fn pair() -> (Harness, Harness, ClientId) {
        let mut leader = Harness::in_mode(Mode::Leader);
        let mut follower = Harness::in_mode(Mode::Follower);
        let c = follower.accept();
        follower.send_connect(c, SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        let msg = follower.out.forwarded.pop().expect("CreateSession forwarded");
        leader.svc.forwarded(leader.now, ServerId(2), msg, &mut leader.out);
        let txn = leader.commit_proposed();
        follower.svc.apply_committed(follower.now, txn, &mut follower.out);
        follower.connect_response(c).expect("connected");
        (leader, follower, c)
    }

    #[test]
    fn a_follower_forwards_a_write_and_answers_it_when_the_leaders_txn_commits() {
        let (mut leader, mut follower, c) = pair();
        let xid = follower.send(c, &create("/f", b"v"));
        assert!(follower.replies(c).is_empty() && follower.out.persisted.is_empty(), "nothing decided locally");
        let msg = follower.out.forwarded.pop().expect("forwarded");
        let QuorumMsg::Request { cxid, .. } = &msg else { panic!("{msg:?}") };
        assert_eq!(*cxid, xid);
        leader.svc.forwarded(leader.now, ServerId(2), msg, &mut leader.out);
        let txn = leader.out.proposed.last().cloned().expect("the leader proposes it");
        assert!(matches!(&txn.op, TxnOp::Create { path, .. } if path == "/f"), "{txn:?}");
        leader.commit_proposed();
        follower.svc.apply_committed(follower.now, txn.clone(), &mut follower.out);
        let got = follower.replies(c);
        assert_eq!(got, vec![(crate::jute::ReplyHeader { xid, zxid: txn.header.zxid.0, err: 0 }, Response::Create { path: "/f".into() })]);
        assert!(leader.svc.tree().lookup("/f").is_some() && follower.svc.tree().lookup("/f").is_some());
    }

    #[test]
    fn the_leader_prepares_a_forwarded_failure_as_an_error_txn() {
        let (mut leader, mut follower, c) = pair();
        follower.send(c, &Request::Delete { path: "/missing".into(), version: -1 });
        let msg = follower.out.forwarded.pop().expect("forwarded");
        leader.svc.forwarded(leader.now, ServerId(2), msg, &mut leader.out);
        assert_eq!(leader.out.proposed.last().map(|t| &t.op), Some(&TxnOp::Error { err: crate::proto::ErrorCode::NoNode }));
    }

    /// ZooKeeper's checkSession at the leader: a request forwarded after the leader started
    /// closing the session (its expiry is in flight) fails with SessionExpired instead of
    /// being proposed (simulator seed 637: the ephemeral it created outlived its session).
    #[test]
    fn a_forwarded_request_of_a_closing_session_fails_with_session_expired() {
        let (mut leader, mut follower, c) = pair();
        follower.send(c, &create("/late", b"v"));
        let msg = follower.out.forwarded.pop().expect("forwarded");
        let QuorumMsg::Request { session, .. } = &msg else { panic!("{msg:?}") };
        // The leader expires the session before the forward arrives.
        leader.svc.forwarded(
            leader.now,
            ServerId(2),
            QuorumMsg::Request { session: *session, cxid: 0, op: crate::proto::OpCode::CloseSession.code(), body: close_body(), auth: vec![] },
            &mut leader.out,
        );
        assert_eq!(leader.out.proposed.last().map(|t| &t.op), Some(&TxnOp::CloseSession));
        leader.svc.forwarded(leader.now, ServerId(2), msg, &mut leader.out);
        assert_eq!(leader.out.proposed.last().map(|t| &t.op), Some(&TxnOp::Error { err: crate::proto::ErrorCode::SessionExpired }));
    }

    fn close_body() -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        crate::jute::encode_request(&mut out, crate::jute::RequestHeader { xid: 0, op: crate::proto::OpCode::CloseSession.code() }, &Request::CloseSession);
        out[4..].to_vec()
    }

    #[test]
    fn a_sync_is_answered_on_the_peer_link_and_then_by_the_follower() {
        let (mut leader, mut follower, c) = pair();
        let xid = follower.send(c, &Request::Sync { path: "/".into() });
        assert!(follower.replies(c).is_empty(), "a follower's sync waits for the leader");
        let msg = follower.out.forwarded.pop().expect("forwarded");
        leader.svc.forwarded(leader.now, ServerId(2), msg, &mut leader.out);
        let (to, done) = leader.out.sent.pop().expect("answered on the quorum link");
        assert_eq!(to, ServerId(2));
        let QuorumMsg::SyncDone { session, cxid, path } = done else { panic!("{done:?}") };
        follower.svc.sync_done(follower.now, session, cxid, path, &mut follower.out);
        let got = follower.replies(c);
        assert_eq!((got[0].0.xid, &got[0].1), (xid, &Response::Sync { path: "/".into() }));
    }

    #[test]
    fn only_a_leader_takes_forwarded_requests() {
        let mut follower = Harness::in_mode(Mode::Follower);
        let msg = QuorumMsg::CreateSession { session: SessionId(77), timeout_ms: MAX_TIMEOUT_MS };
        follower.svc.forwarded(follower.now, ServerId(3), msg, &mut follower.out);
        assert!(follower.out.proposed.is_empty() && follower.out.persisted.is_empty());
    }

    #[test]
    fn a_follower_reports_the_sessions_its_clients_kept_alive() {
        let (_, mut follower, c) = pair();
        follower.svc.take_touched();
        follower.send(c, &get("/", false));
        let session = follower.svc.clients().find(|(id, _)| **id == c).and_then(|(_, i)| i.session()).expect("session");
        assert_eq!(follower.svc.take_touched(), vec![session]);
        assert!(follower.svc.take_touched().is_empty(), "reported once");
        // The leader keeps such sessions alive: they do not expire at the old deadline.
        let mut leader = Harness::in_mode(Mode::Leader);
        let header = TxnHeader { session, cxid: 0, zxid: Zxid::new(1, 1), time_ms: leader.now.wall_ms };
        leader.svc.apply_committed(leader.now, Txn { header, op: TxnOp::CreateSession { timeout_ms: MAX_TIMEOUT_MS } }, &mut leader.out);
        leader.advance(MAX_TIMEOUT_MS as i64 - 1);
        leader.svc.touch_sessions(&[session], leader.now.ms);
        leader.advance(MAX_TIMEOUT_MS as i64 / 2);
        leader.tick();
        assert!(leader.out.proposed.is_empty(), "touched: not expired");
    }
}

//! Forwarding between a follower and the leader, the leader's side: writes and session
//! creations a follower forwarded (prepared and proposed here as if local, so they take
//! their place in the one zxid order) and sessions kept alive by followers' clients. Syncs
//! are the replication core's (`zab::syncs`). The follower's side: `Service::write`
//! forwards writes and syncs, `connect` (`handshake`) new sessions, and `sync_done` here
//! answers a sync once the leader's SyncDone comes back (the leader's own syncs too).

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
            other => tracing::warn!(server = %from, msg = ?other, "unexpected forwarded message"),
        }
    }

    /// The replication core answered a `sync` (a follower's from the leader's SyncDone, the
    /// leader's own once confirmed).
    pub fn sync_done(&mut self, now: Now, session: SessionId, cxid: i32, path: String, out: &mut dyn Outbox) {
        // With writes of the session held behind it, the sync's reply carries the first
        // one's zxid, so the zxids a client sees never go down (its state includes that
        // write, and everything committed before the sync was issued is below it).
        let behind = self.inflight.get(&session).and_then(|q| q.get(1)).and_then(|w| w.held_zxid());
        match self.done_waiting(now, session, cxid, Zxid::ZERO) {
            Some((client, _)) => {
                let zxid = behind.unwrap_or(self.last_zxid.0);
                self.reply_zxid(client, cxid, zxid, ErrorCode::Ok, &Response::Sync { path }, out);
                self.release_held(session, out);
            }
            None => tracing::debug!(%session, cxid, "sync answered for no waiting request"),
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
    fn a_sync_waits_for_the_replication_core_at_a_follower_and_at_the_leader() {
        let (mut leader, mut follower, c) = pair();
        let xid = follower.send(c, &Request::Sync { path: "/".into() });
        assert!(follower.replies(c).is_empty(), "a follower's sync waits for the leader");
        let msg = follower.out.forwarded.pop().expect("forwarded");
        assert!(matches!(msg, QuorumMsg::Sync { .. }), "{msg:?}");
        // (The leader's core answers it: zab::syncs.) Its SyncDone comes back:
        let QuorumMsg::Sync { session, cxid, path } = msg else { unreachable!() };
        follower.svc.sync_done(follower.now, session, cxid, path, &mut follower.out);
        let got = follower.replies(c);
        assert_eq!((got[0].0.xid, &got[0].1), (xid, &Response::Sync { path: "/".into() }));

        // A leader's own client's sync goes to its core as well, not answered at once.
        let lc = leader.accept();
        leader.send_connect(lc, SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        leader.commit_proposed();
        leader.connect_response(lc).expect("connected");
        leader.out.forwarded.clear();
        let xid = leader.send(lc, &Request::Sync { path: "/a".into() });
        assert!(leader.replies(lc).is_empty(), "a leader's sync waits for its confirmation round");
        let Some(QuorumMsg::Sync { session, cxid, path }) = leader.out.forwarded.pop() else { panic!("not handed to the core") };
        leader.svc.sync_done(leader.now, session, cxid, path, &mut leader.out);
        let got = leader.replies(lc);
        assert_eq!((got[0].0.xid, &got[0].1), (xid, &Response::Sync { path: "/a".into() }));
    }

    /// The leader answers a sync once a quorum confirmed it (`zab::syncs`), which may come
    /// after a write pipelined behind the sync committed: that write's reply waits for the
    /// sync's, and the sync's carries the write's zxid (a client's zxids never go down).
    #[test]
    fn a_write_that_commits_before_the_sync_ahead_of_it_is_answered_after_it() {
        let (mut leader, mut follower, c) = pair();
        let a = follower.send(c, &create("/a", b"v"));
        let s = follower.send(c, &Request::Sync { path: "/".into() });
        let b = follower.send(c, &create("/b", b"v"));
        let mut sync = None;
        for msg in std::mem::take(&mut follower.out.forwarded) {
            match msg {
                QuorumMsg::Sync { .. } => sync = Some(msg),
                m => leader.svc.forwarded(leader.now, ServerId(2), m, &mut leader.out),
            }
        }
        let txns: Vec<Txn> = leader.out.proposed.clone();
        assert_eq!(txns.len(), 2, "both creates proposed");
        // Both commit before the SyncDone comes back.
        for t in &txns {
            follower.svc.apply_committed(follower.now, t.clone(), &mut follower.out);
        }
        let early = follower.replies(c);
        assert_eq!(early.iter().map(|(h, _)| h.xid).collect::<Vec<_>>(), [a], "b waits behind the sync");
        let Some(QuorumMsg::Sync { session, cxid, path }) = sync else { panic!("sync not forwarded") };
        follower.svc.sync_done(follower.now, session, cxid, path, &mut follower.out);
        let late = follower.replies(c);
        let order: Vec<(i32, i64)> = late.iter().map(|(h, _)| (h.xid, h.zxid)).collect();
        let zb = txns[1].header.zxid.0;
        assert_eq!(order, [(s, zb), (b, zb)]);
        assert_eq!(late[1].1, Response::Create { path: "/b".into() });
        assert!(follower.svc.outstanding() == 0, "nothing left in flight");
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

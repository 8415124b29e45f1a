//! Forwarding between a follower and the leader, the leader's side: writes and session
//! creations a follower forwarded (prepared and proposed here as if local, so they take
//! their place in the one zxid order), `sync` (answered on the same connection, after every
//! commit queued before it), and sessions kept alive by followers' clients. The follower's
//! side of forwarding is in `Service::dispatch` (`writes`) and `handshake`.

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
                        self.prepare(session, cxid, &auth, &req, zxid, wall_ms).unwrap_or_else(|err| TxnOp::Error { err })
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

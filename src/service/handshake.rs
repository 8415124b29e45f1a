//! Connections and sessions: a connection's life from accept to close, the ConnectRequest
//! (a new session made by a CreateSession txn, a resumed one checked by its password, a
//! local one on a read-only server) and `addauth` (`ZooKeeperServer.processConnectRequest`,
//! `processPacket`'s auth branch).
//!
//! A new session exists once its txn is applied: until then the connection is `Connecting`
//! and what the client pipelines behind its ConnectRequest waits (bounded) in arrival order.

use crate::acl;
use crate::jute::{self, ConnectRequest, ConnectResponse};
use crate::peer::QuorumMsg;
use crate::proto::{ErrorCode, Id, Now, SessionId, Zxid};
use crate::session;
use crate::txn::TxnOp;
use crate::watch::WatcherId;

use super::{ClientId, ClientInfo, ClientState, Mode, Outbox, Service};

/// Frames a client may pipeline behind its ConnectRequest before the connect reply; past
/// this the connection is closed (ZooKeeper's clients send none or a few).
pub(super) const EARLY_FRAMES_MAX: usize = 1000;

/// A connect waiting for its CreateSession txn to commit.
pub(super) struct PendingConnect {
    pub(super) client: ClientId,
    pub(super) timeout_ms: i32,
    pub(super) ip: String,
    pub(super) read_only: Option<bool>,
}

impl Service {
    /// The connection authenticated below the protocol (TLS client certificate: `x509`).
    pub fn client_authenticated(&mut self, client: ClientId, id: Id) {
        if let Some(info) = self.clients.get_mut(&client) {
            if !info.auth.contains(&id) {
                info.auth.push(id);
            }
        }
    }

    pub fn client_connected(&mut self, client: ClientId, addr: String, now_wall_ms: i64) {
        self.clients.insert(
            client,
            ClientInfo {
                addr,
                state: ClientState::Handshake,
                auth: Vec::new(),
                received: 0,
                sent: 0,
                established_ms: now_wall_ms,
                timeout_ms: 0,
                last_op: "NA",
                last_cxid: 0,
                last_zxid: 0,
                last_response_ms: 0,
                early: Vec::new(),
            },
        );
    }

    /// The connection is gone. Its session lives on until it expires or another
    /// connection resumes it; its watches die with it (the client re-registers them).
    pub fn client_disconnected(&mut self, client: ClientId) {
        if let Some(info) = self.clients.remove(&client) {
            if let ClientState::Session(s) = info.state {
                if self.owners.get(&s) == Some(&client) {
                    self.owners.remove(&s);
                }
            }
        }
        self.watches.remove_watcher(WatcherId(client.0));
    }

    pub(super) fn connect(&mut self, now: Now, client: ClientId, req: ConnectRequest, out: &mut dyn Outbox) {
        if self.mode == Mode::NotServing || (self.mode == Mode::ReadOnly && req.read_only != Some(true)) {
            // No quorum behind us: the client tries another server.
            out.close_client(client);
            return;
        }
        if req.last_zxid_seen > self.last_zxid.0 {
            tracing::warn!(
                client = %self.addr(client),
                seen_zxid = %Zxid(req.last_zxid_seen),
                last_zxid = %self.last_zxid,
                "connection refused: the client has seen a newer zxid than this server"
            );
            out.close_client(client);
            return;
        }
        let timeout = req.timeout_ms.clamp(self.cfg.min_session_timeout_ms, self.cfg.max_session_timeout_ms);
        let ip = self.addr(client).rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']']).to_string()).unwrap_or_default();
        if req.session_id == 0 && self.mode == Mode::ReadOnly {
            // ZooKeeper's read-only server: a local session, no txn (nothing can be logged).
            let session = self.sessions.next_session_id();
            self.sessions.add(session, timeout, now.ms);
            self.ro_sessions.push(session);
            self.bind(client, session, timeout, ip, req.read_only, out);
            return;
        }
        if req.session_id == 0 {
            if let Some(why) = &self.writes_refused {
                tracing::warn!(client = %self.addr(client), reason = %why, "connection refused: no new sessions while writes are refused");
                out.close_client(client);
                return;
            }
            // The session exists once its CreateSession txn is applied; the connect reply
            // goes out then (`apply_committed`).
            let session = self.sessions.next_session_id();
            if let Some(info) = self.clients.get_mut(&client) {
                info.state = ClientState::Connecting;
            }
            self.pending_connects.insert(session, PendingConnect { client, timeout_ms: timeout, ip, read_only: req.read_only });
            if self.mode == Mode::Follower {
                out.forward(QuorumMsg::CreateSession { session, timeout_ms: timeout });
            } else {
                let txn = self.new_txn(session, 0, now.wall_ms, TxnOp::CreateSession { timeout_ms: timeout });
                self.submit(now, txn, None, out);
            }
            return;
        }
        let session = SessionId(req.session_id);
        // A connection resuming a session takes it over: the old connection is closed,
        // even if the password check below fails (as ZooKeeper does).
        if let Some(old) = self.owners.remove(&session) {
            if old != client {
                if let Some(info) = self.clients.get_mut(&old) {
                    info.state = ClientState::Closing;
                }
                out.close_client(old);
            }
        }
        let valid = self.sessions.is_live(session) && req.passwd.as_slice() == session::password(session);
        if valid {
            self.sessions.touch(session, now.ms);
            self.bind(client, session, timeout, ip, req.read_only, out);
        } else {
            let resp = ConnectResponse { protocol_version: 0, timeout_ms: 0, session_id: 0, passwd: vec![0; 16], read_only: req.read_only };
            if let Some(buf) = out.client_buf(client) {
                jute::encode_connect_response(buf, &resp);
            }
            if let Some(info) = self.clients.get_mut(&client) {
                info.state = ClientState::Closing;
            }
            out.close_client(client);
        }
    }

    pub(super) fn bind(&mut self, client: ClientId, session: SessionId, timeout: i32, ip: String, ro: Option<bool>, out: &mut dyn Outbox) {
        let Some(info) = self.clients.get_mut(&client) else { return };
        info.state = ClientState::Session(session);
        // Ids the connection proved before its ConnectRequest (a TLS client certificate)
        // stay; the ip id comes first, as ZooKeeper adds it when the connection is made.
        let below: Vec<Id> = info.auth.drain(..).filter(|i| i.scheme != "ip").collect();
        info.auth = vec![Id::new("ip", &ip)];
        info.auth.extend(below);
        info.timeout_ms = timeout;
        info.sent += 1;
        self.stats.packets_sent += 1;
        self.owners.insert(session, client);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout,
            session_id: session.0,
            passwd: session::password(session).to_vec(),
            read_only: ro.map(|_| self.mode == Mode::ReadOnly),
        };
        if let Some(buf) = out.client_buf(client) {
            jute::encode_connect_response(buf, &resp);
        }
    }

    /// `addauth`: the ids a scheme proves join the connection's; a failure closes it
    /// (as ZooKeeper does). Answered outside the request pipeline (`reply_auth`).
    pub(super) fn auth(&mut self, client: ClientId, xid: i32, scheme: &str, data: &[u8], auth: &[Id], out: &mut dyn Outbox) {
        let ip = auth.iter().find(|i| i.scheme == "ip").map(|i| i.id.clone()).unwrap_or_default();
        match acl::authenticate(scheme, data, self.cfg.super_digest.as_deref(), &ip) {
            acl::AuthResult::Added(ids) => {
                if let Some(info) = self.clients.get_mut(&client) {
                    for id in ids {
                        if !info.auth.contains(&id) {
                            info.auth.push(id);
                        }
                    }
                }
                self.reply_auth(client, xid, ErrorCode::Ok, out);
            }
            acl::AuthResult::Failed => {
                tracing::info!(client = %self.addr(client), scheme = %scheme, "auth failed; closing");
                self.reply_auth(client, xid, ErrorCode::AuthFailed, out);
                if let Some(info) = self.clients.get_mut(&client) {
                    info.state = ClientState::Closing;
                }
                out.close_client(client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::jute::{ConnectRequest, Request, Response};
    use crate::proto::{ErrorCode, SessionId, Zxid};
    use crate::service::testkit::{create, get, password, Harness, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS};
    use crate::service::Mode;
    use crate::txn::TxnOp;

    #[test]
    fn a_new_session_gets_an_id_its_password_and_the_negotiated_timeout() {
        let mut h = Harness::standalone();
        let (c, resp) = h.connect(MAX_TIMEOUT_MS * 10);
        assert_ne!(resp.session_id, 0);
        assert_eq!(resp.timeout_ms, MAX_TIMEOUT_MS, "clamped to the server's maximum");
        assert_eq!(resp.passwd, password(SessionId(resp.session_id)));
        assert_eq!(h.out.persisted[0].op, TxnOp::CreateSession { timeout_ms: MAX_TIMEOUT_MS });
        assert!(h.svc.sessions().is_live(SessionId(resp.session_id)));
        let (_, small) = h.connect(1);
        assert_eq!(small.timeout_ms, MIN_TIMEOUT_MS, "clamped to the minimum");
        assert_ne!(small.session_id, resp.session_id);
        assert_eq!(h.svc.clients().find(|(id, _)| **id == c).and_then(|(_, i)| i.session()), Some(SessionId(resp.session_id)));
    }

    #[test]
    fn a_resumed_session_moves_to_the_new_connection() {
        let mut h = Harness::standalone();
        let (old, resp) = h.connect(MAX_TIMEOUT_MS);
        let session = SessionId(resp.session_id);
        let new = h.accept();
        h.send_connect(new, session, password(session), MAX_TIMEOUT_MS);
        let again = h.connect_response(new).expect("answered");
        assert_eq!((again.session_id, again.timeout_ms), (session.0, MAX_TIMEOUT_MS));
        assert_eq!(h.out.closed, vec![old], "the old connection is closed");
        assert_eq!(h.call(new, &create("/a", b"")).0.err, 0);
    }

    #[test]
    fn a_wrong_password_gets_a_zero_session_and_a_close() {
        let mut h = Harness::standalone();
        let (_, resp) = h.connect(MAX_TIMEOUT_MS);
        let c = h.accept();
        h.send_connect(c, SessionId(resp.session_id), vec![7; 16], MAX_TIMEOUT_MS);
        let refused = h.connect_response(c).expect("answered");
        assert_eq!((refused.session_id, refused.timeout_ms), (0, 0));
        assert!(h.out.closed.contains(&c));
    }

    #[test]
    fn a_client_that_saw_a_newer_zxid_is_refused() {
        let mut h = Harness::standalone();
        let c = h.accept();
        let req = ConnectRequest { protocol_version: 0, last_zxid_seen: 99, timeout_ms: MAX_TIMEOUT_MS, session_id: 0, passwd: vec![0; 16], read_only: None };
        let mut buf = bytes::BytesMut::new();
        crate::jute::encode_connect_request(&mut buf, &req);
        h.svc.client_frame(h.now, c, &buf[crate::jute::LEN_PREFIX..], &mut h.out);
        assert_eq!(h.out.closed, vec![c]);
        assert!(h.connect_response(c).is_none(), "no session for it");
        assert!(h.out.persisted.is_empty());
    }

    #[test]
    fn requests_sent_before_the_connect_reply_run_after_it_in_order() {
        let mut h = Harness::in_mode(Mode::Follower);
        let c = h.accept();
        h.send_connect(c, SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        let Some(crate::peer::QuorumMsg::CreateSession { session, timeout_ms }) = h.out.forwarded.pop() else {
            panic!("a follower forwards the new session: {:?}", h.out.forwarded)
        };
        let xid = h.send(c, &get("/", false));
        assert!(h.connect_response(c).is_none(), "the session exists once its txn commits");
        let header = crate::txn::TxnHeader { session, cxid: 0, zxid: Zxid::new(1, 1), time_ms: h.now.wall_ms };
        h.svc.apply_committed(h.now, crate::txn::Txn { header, op: TxnOp::CreateSession { timeout_ms } }, &mut h.out);
        assert_eq!(h.connect_response(c).map(|r| r.session_id), Some(session.0));
        let got = h.replies(c);
        assert_eq!((got.len(), got[0].0.xid, got[0].0.err), (1, xid, 0), "{got:?}");
    }

    #[test]
    fn addauth_adds_an_identity_and_a_bad_scheme_closes() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        let (hdr, _) = h.call(c, &Request::Auth { scheme: "digest".into(), auth: b"alice:secret".to_vec() });
        assert_eq!((hdr.err, hdr.zxid), (0, 0), "auth replies carry zxid 0");
        let (_, who) = h.call(c, &Request::WhoAmI);
        let Response::WhoAmI(ids) = who else { panic!("{who:?}") };
        assert!(ids.contains(&("digest".to_string(), "alice".to_string())), "{ids:?}");
        assert!(ids.iter().any(|(scheme, _)| scheme == "ip"), "{ids:?}");
        let (hdr, _) = h.call(c, &Request::Auth { scheme: "nosuch".into(), auth: b"x".to_vec() });
        assert_eq!(hdr.err, ErrorCode::AuthFailed.code());
        assert_eq!(h.out.closed, vec![c]);
    }

    #[test]
    fn a_not_serving_server_turns_clients_away() {
        let mut h = Harness::in_mode(Mode::NotServing);
        let c = h.accept();
        h.send_connect(c, SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        assert_eq!(h.out.closed, vec![c]);
        assert!(h.out.forwarded.is_empty() && h.out.proposed.is_empty());
    }
}

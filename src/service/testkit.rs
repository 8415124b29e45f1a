//! Unit-test kit for the service: a `Service` driven through its public inputs only, an
//! `Outbox` that records every effect, and clients that speak real jute frames (the codec's
//! client half encodes requests and decodes replies, as a ZooKeeper client would).

use std::collections::BTreeMap;

use bytes::BytesMut;

use crate::jute::{
    self, ConnectRequest, ConnectResponse, CreateKind, CreateRequest, ReplyHeader, Request, RequestHeader, Response,
    WatcherEvent,
};
use crate::peer::QuorumMsg;
use crate::proto::{Acl, Now, ServerId, SessionId, Zxid};
use crate::session::{self, SessionTable};
use crate::tree::DataTree;
use crate::txn::Txn;

use super::{ClientId, Mode, Outbox, Service, ServiceConfig};

/// Session timeouts are clamped to [MIN_TIMEOUT_MS, MAX_TIMEOUT_MS].
pub const MIN_TIMEOUT_MS: i32 = 4_000;
pub const MAX_TIMEOUT_MS: i32 = 40_000;
/// Containers and TTL nodes are looked at this often.
pub const REAP_EVERY_MS: i64 = 1_000;
/// The wall clock at step time 0.
const WALL_BASE_MS: i64 = 1_700_000_000_000;

/// Every effect of the service, in the order of each kind.
#[derive(Default)]
pub struct Recorder {
    /// Bytes written to each client (whole frames, length prefix included).
    pub bufs: BTreeMap<ClientId, BytesMut>,
    pub closed: Vec<ClientId>,
    pub persisted: Vec<Txn>,
    pub proposed: Vec<Txn>,
    pub forwarded: Vec<QuorumMsg>,
    pub sent: Vec<(ServerId, QuorumMsg)>,
}

impl Outbox for Recorder {
    fn client_buf(&mut self, client: ClientId) -> Option<&mut BytesMut> {
        Some(self.bufs.entry(client).or_default())
    }
    fn close_client(&mut self, client: ClientId) {
        self.closed.push(client);
    }
    fn persist(&mut self, txn: &Txn) {
        self.persisted.push(txn.clone());
    }
    fn propose(&mut self, txn: Txn) {
        self.proposed.push(txn);
    }
    fn forward(&mut self, msg: QuorumMsg) {
        self.forwarded.push(msg);
    }
    fn send_peer(&mut self, to: ServerId, msg: QuorumMsg) {
        self.sent.push((to, msg));
    }
}

/// What a client received, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Reply(ReplyHeader, Response),
    Event(WatcherEvent),
}

/// One service with its recorder and a step clock that only moves when told.
pub struct Harness {
    pub svc: Service,
    pub out: Recorder,
    pub now: Now,
    next_client: u64,
    next_xid: i32,
    /// The opcode of each request sent, by (client, xid): replies are decoded by it.
    sent_ops: BTreeMap<(ClientId, i32), i32>,
}

impl Harness {
    pub fn standalone() -> Harness {
        Harness::in_mode(Mode::Standalone)
    }

    /// A service in `mode` as the replica sets it (an ensemble member starts NotServing).
    pub fn in_mode(mode: Mode) -> Harness {
        let cfg = ServiceConfig {
            server_id: ServerId(1),
            tick_ms: 2_000,
            min_session_timeout_ms: MIN_TIMEOUT_MS,
            max_session_timeout_ms: MAX_TIMEOUT_MS,
            super_digest: None,
            reconfig_enabled: false,
            container_check_ms: REAP_EVERY_MS,
            planted: crate::planted::Planted::NONE,
        };
        let now = Now { ms: 0, us: 0, wall_ms: WALL_BASE_MS };
        let sessions = SessionTable::new(ServerId(1), now.wall_ms);
        let mut svc = Service::new(cfg, DataTree::new(), sessions, now.ms);
        let mut out = Recorder::default();
        if mode != Mode::Standalone {
            svc.set_initial_mode(Mode::NotServing);
            svc.set_mode(mode, Zxid::new(1, 1), now.ms, &mut out);
        }
        Harness { svc, out, now, next_client: 1, next_xid: 1, sent_ops: BTreeMap::new() }
    }

    /// Move every clock forward.
    pub fn advance(&mut self, ms: i64) {
        self.now = Now { ms: self.now.ms + ms, us: self.now.us + ms * 1000, wall_ms: self.now.wall_ms + ms };
    }

    pub fn tick(&mut self) {
        self.svc.tick(self.now, &mut self.out);
    }

    /// A new connection (not yet handshaken).
    pub fn accept(&mut self) -> ClientId {
        let c = ClientId(self.next_client);
        self.next_client += 1;
        self.svc.client_connected(c, format!("10.0.0.{}:4{:04}", c.0, c.0), self.now.wall_ms);
        c
    }

    /// Send a ConnectRequest on `c`.
    pub fn send_connect(&mut self, c: ClientId, session: SessionId, passwd: Vec<u8>, timeout_ms: i32) {
        let req =
            ConnectRequest { protocol_version: 0, last_zxid_seen: 0, timeout_ms, session_id: session.0, passwd, read_only: None };
        let mut buf = BytesMut::new();
        jute::encode_connect_request(&mut buf, &req);
        self.svc.client_frame(self.now, c, &buf[jute::LEN_PREFIX..], &mut self.out);
    }

    /// The ConnectResponse `c` received (the first frame of its output), if any yet.
    pub fn connect_response(&mut self, c: ClientId) -> Option<ConnectResponse> {
        let buf = self.out.bufs.get_mut(&c)?;
        let payload = jute::next_frame(buf, jute::DEFAULT_MAX_FRAME).expect("frame")?;
        Some(jute::decode_connect_response(&payload).expect("connect response"))
    }

    /// A connection with a new session (standalone: created at once).
    pub fn connect(&mut self, timeout_ms: i32) -> (ClientId, ConnectResponse) {
        let c = self.accept();
        self.send_connect(c, SessionId(0), vec![0; 16], timeout_ms);
        let resp = self.connect_response(c).expect("the session is made at once");
        (c, resp)
    }

    /// Send one request frame on `c`; returns its xid.
    pub fn send(&mut self, c: ClientId, req: &Request) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_as(c, xid, req.opcode(), req);
        xid
    }

    /// Send a frame with a header of our choosing (a raw opcode, an unknown one).
    pub fn send_as(&mut self, c: ClientId, xid: i32, op: i32, req: &Request) {
        self.sent_ops.insert((c, xid), op);
        let mut buf = BytesMut::new();
        jute::encode_request(&mut buf, RequestHeader { xid, op }, req);
        self.svc.client_frame(self.now, c, &buf[jute::LEN_PREFIX..], &mut self.out);
    }

    /// Everything `c` received since the last look, decoded.
    pub fn frames(&mut self, c: ClientId) -> Vec<Frame> {
        let mut got = Vec::new();
        let Some(buf) = self.out.bufs.get_mut(&c) else { return got };
        while let Some(payload) = jute::next_frame(buf, jute::DEFAULT_MAX_FRAME).expect("frame") {
            let (hdr, body) = jute::decode_reply_header(&payload).expect("reply header");
            if hdr.xid == jute::xid::NOTIFICATION {
                got.push(Frame::Event(jute::decode_watcher_event(body).expect("event")));
                continue;
            }
            let op = self.sent_ops.get(&(c, hdr.xid)).copied().unwrap_or(0);
            let resp = if hdr.err == 0 { jute::decode_response(op, body).expect("body") } else { Response::Empty };
            got.push(Frame::Reply(hdr, resp));
        }
        got
    }

    /// The replies (not events) `c` received since the last look.
    pub fn replies(&mut self, c: ClientId) -> Vec<(ReplyHeader, Response)> {
        self.frames(c)
            .into_iter()
            .filter_map(|f| match f {
                Frame::Reply(h, r) => Some((h, r)),
                Frame::Event(_) => None,
            })
            .collect()
    }

    /// Send `req` and take the one reply it got at once.
    pub fn call(&mut self, c: ClientId, req: &Request) -> (ReplyHeader, Response) {
        let xid = self.send(c, req);
        let mut got = self.replies(c);
        assert_eq!(got.len(), 1, "one reply to {req:?}: {got:?}");
        let (h, r) = got.remove(0);
        assert_eq!(h.xid, xid);
        (h, r)
    }

    /// The txn a leader proposed last, committed: what the replication layer would do.
    pub fn commit_proposed(&mut self) -> Txn {
        let txn = self.out.proposed.pop().expect("a proposal");
        self.svc.apply_committed(self.now, txn.clone(), &mut self.out);
        txn
    }
}

pub fn create(path: &str, data: &[u8]) -> Request {
    create_as(CreateKind::Create, path, data, 0)
}

/// `flags`: ZooKeeper's create mode (1 ephemeral, 2 sequential, 4 container, 5 TTL).
pub fn create_as(kind: CreateKind, path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        kind,
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl_ms: -1,
    })
}

pub fn get(path: &str, watch: bool) -> Request {
    Request::GetData { path: path.into(), watch }
}

pub fn set(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData { path: path.into(), data: Some(data.to_vec()), version }
}

/// A session resumed on a new connection with its real password.
pub fn password(session: SessionId) -> Vec<u8> {
    session::password(session).to_vec()
}

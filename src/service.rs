//! The ZooKeeper service core (sans-IO): client connections' protocol state, sessions,
//! request dispatch, txn application, replies and watch notifications
//! (`ZooKeeperServer.java` + `FinalRequestProcessor.java` for a standalone server).
//!
//! The event loop feeds it decoded-frame inputs with the current time and gives it an
//! `Outbox`: replies and notifications are encoded straight into the connection's write
//! buffer, and every txn goes to `Outbox::persist` before it is applied. The loop writes
//! nothing to any socket until the txns persisted during that turn are fsynced (group
//! commit), so no client ever sees a state the log could lose.
//!
//! Ordering: replies to one connection leave in request order (everything is processed in
//! arrival order, synchronously); a notification caused by a write is encoded before the
//! reply to that write.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::BytesMut;

use crate::acl;
use crate::jute::{
    self, ConnectRequest, ConnectResponse, CreateKind, MultiOp, MultiReadOp, MultiResult, ReplyHeader, Request,
    Response, WatcherEvent,
};
use crate::peer::QuorumMsg;
use crate::prep::{self, Context, Overlay, Pending};
use crate::proto::{perms, ErrorCode, Id, KeeperState, Millis, ServerId, SessionId, WatchKind, Zxid};
use crate::session::{self, SessionTable};
use crate::tree::{ApplyOutcome, DataTree, Trigger};
use crate::txn::{Txn, TxnHeader, TxnOp};
use crate::watch::{Notification, WatchManager, WatcherId, WatcherType};

/// A client connection, as the event loop names it: unique for the life of the process
/// (slab key in the low 32 bits, a generation above), so a reused slab slot never receives
/// what was meant for the connection that held it before.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

impl ClientId {
    pub fn slot(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

/// Where the core's effects go. Implemented by the event loop (and by tests).
pub trait Outbox {
    /// The write buffer of a live client connection.
    fn client_buf(&mut self, client: ClientId) -> Option<&mut BytesMut>;
    /// Close a client connection once its buffered output is flushed.
    fn close_client(&mut self, client: ClientId);
    /// Append a txn to the log; it is fsynced before any output of this turn leaves.
    fn persist(&mut self, txn: &Txn);
    /// Leader: replicate a prepared txn (it comes back through `apply_committed`).
    fn propose(&mut self, _txn: Txn) {}
    /// Follower: send to the leader.
    fn forward(&mut self, _msg: QuorumMsg) {}
    /// Leader: answer a follower on its quorum connection.
    fn send_peer(&mut self, _to: ServerId, _msg: QuorumMsg) {}
}

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

/// Static settings of the service, from the config.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub server_id: ServerId,
    pub tick_ms: i32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `super:<base64 sha1>` from superDigest, if configured.
    pub super_digest: Option<String>,
    /// How often containers and TTL nodes are checked for reaping.
    pub container_check_ms: Millis,
    /// Bugs a test planted (none in a server).
    pub planted: crate::planted::Planted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ClientState {
    /// Connected, ConnectRequest not seen yet.
    Handshake,
    /// A new session is being created (its txn is in flight): requests the client sends
    /// before the connect reply wait in `ClientInfo::early`.
    Connecting,
    /// Bound to a session.
    Session(SessionId),
    /// Done (expired session reply, auth failure, closeSession): ignore further input.
    Closing,
}

/// Per-connection bookkeeping, also what `cons` reports.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub addr: String,
    state: ClientState,
    auth: Vec<Id>,
    pub received: u64,
    pub sent: u64,
    pub established_ms: i64,
    pub timeout_ms: i32,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    /// Frames that arrived while `Connecting`, in order.
    early: Vec<Vec<u8>>,
}

/// Frames a client may pipeline behind its ConnectRequest before the connect reply; past
/// this the connection is closed (ZooKeeper's clients send none or a few).
const EARLY_FRAMES_MAX: usize = 1000;

impl ClientInfo {
    pub fn session(&self) -> Option<SessionId> {
        match self.state {
            ClientState::Session(s) => Some(s),
            _ => None,
        }
    }
}

/// Counters for srvr/stat/mntr.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency_min_us: u64,
    pub latency_max_us: u64,
    pub latency_total_us: u64,
    pub latency_count: u64,
}

/// How a write request's reply is built once its txn is applied.
#[derive(Clone, Debug)]
enum ReplyKind {
    Create(CreateKind),
    Delete,
    SetData,
    SetAcl,
    Check(String),
    Multi(Vec<Option<CreateKind>>),
    CloseSession,
    /// A follower's `sync`, answered when the leader's SyncDone comes back.
    Sync,
}

/// A write in flight: who gets the reply and how it is built once its txn is applied.
struct Waiter {
    cxid: i32,
    client: ClientId,
    kind: ReplyKind,
    /// For `updatelatency`.
    started: std::time::Instant,
}

/// A request held back because an earlier write of its session is still in flight
/// (a session's replies leave in request order).
struct Queued {
    client: ClientId,
    xid: i32,
    op: i32,
    req: Request,
    payload: Vec<u8>,
}

/// A connect waiting for its CreateSession txn to commit.
struct PendingConnect {
    client: ClientId,
    timeout_ms: i32,
    ip: String,
    read_only: Option<bool>,
}

pub struct Service {
    cfg: ServiceConfig,
    tree: DataTree,
    sessions: SessionTable,
    watches: WatchManager,
    clients: HashMap<ClientId, ClientInfo>,
    /// The connection currently holding each session.
    owners: HashMap<SessionId, ClientId>,
    last_zxid: Zxid,
    stats: Stats,
    metrics: crate::metrics::RequestMetrics,
    next_reap_ms: Millis,
    scratch_triggers: Vec<Trigger>,
    scratch_notes: Vec<Notification>,
    mode: Mode,
    /// Leader: changes of proposed, not yet applied txns.
    pending: Pending,
    /// Leader: the zxid the next proposal carries.
    next_zxid: Zxid,
    /// Writes in flight per session, oldest first. A session's writes are proposed (or
    /// forwarded) in request order and so commit in that order: a commit answers the
    /// front waiter when its cxid matches (a txn of the session made elsewhere, by an
    /// earlier connection of a session that moved, matches none).
    inflight: HashMap<SessionId, VecDeque<Waiter>>,
    /// Writes in `inflight`, all sessions together.
    inflight_total: usize,
    /// Requests that must wait for the session's writes in flight: a read (its result
    /// must show them) and whatever arrives behind a queued request.
    queued: HashMap<SessionId, VecDeque<Queued>>,
    /// Requests in `queued`, all sessions together.
    queued_total: usize,
    pending_connects: HashMap<SessionId, PendingConnect>,
    /// Read-only mode: the sessions it created (local, never logged).
    ro_sessions: Vec<SessionId>,
    /// Follower: sessions active since the last report to the leader.
    touched: BTreeSet<SessionId>,
    /// `/zookeeper/config` contents of an ensemble member.
    membership: Option<String>,
    /// Why writes are refused (the txn log's disk cannot take more), if they are: write
    /// requests get `SystemError`, new sessions are turned away, expiry is postponed.
    writes_refused: Option<String>,
}

const OP_NAMES: &[(i32, &str)] = &[
    (1, "CREA"), (2, "DELE"), (3, "EXIS"), (4, "GETD"), (5, "SETD"), (6, "GETA"), (7, "SETA"), (8, "GETC"),
    (9, "SYNC"), (11, "PING"), (12, "GETC"), (13, "CHEC"), (14, "MULT"), (15, "CREA"), (19, "CREA"), (21, "CREA"),
    (22, "MLTR"), (100, "AUTH"), (101, "SETW"), (105, "SETW"), (106, "ADDW"), (-11, "CLOS"),
];

/// Requests `readlatency` counts (they answer from the local tree).
fn is_read(op: i32) -> bool {
    use crate::proto::OpCode::*;
    [Exists, GetData, GetAcl, GetChildren, GetChildren2, MultiRead, GetEphemerals, GetAllChildrenNumber]
        .iter()
        .any(|o| o.code() == op)
}

fn op_name(op: i32) -> &'static str {
    OP_NAMES.iter().find(|(o, _)| *o == op).map(|(_, n)| *n).unwrap_or("UNKN")
}

impl Service {
    /// `tree` and `sessions` come from recovery (or are fresh); `last_zxid` is the last
    /// zxid in the log or snapshot.
    pub fn new(cfg: ServiceConfig, tree: DataTree, sessions: SessionTable, now: Millis) -> Service {
        let last_zxid = tree.last_applied();
        Service {
            next_reap_ms: now + cfg.container_check_ms,
            cfg,
            tree,
            sessions,
            watches: WatchManager::new(),
            clients: HashMap::new(),
            owners: HashMap::new(),
            last_zxid,
            stats: Stats::default(),
            metrics: crate::metrics::RequestMetrics::default(),
            scratch_triggers: Vec::new(),
            scratch_notes: Vec::new(),
            mode: Mode::Standalone,
            pending: Pending::default(),
            next_zxid: last_zxid.next(),
            inflight: HashMap::new(),
            inflight_total: 0,
            queued: HashMap::new(),
            queued_total: 0,
            pending_connects: HashMap::new(),
            ro_sessions: Vec::new(),
            touched: BTreeSet::new(),
            writes_refused: None,
            membership: None,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

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
        if mode == Mode::Leader {
            self.next_zxid = next_zxid;
            // A new leader owns expiry from now: every session gets a full timeout.
            self.sessions.touch_all(now);
        }
    }

    /// The ensemble's membership, as `/zookeeper/config` shows it (`server.N=...` lines).
    pub fn set_membership(&mut self, text: String) {
        self.tree.set_system_data("/zookeeper/config", text.as_bytes());
        self.membership = Some(text);
    }

    /// Replace the state wholesale (a follower that received a snapshot, or rebuilt its
    /// tree after a truncation).
    pub fn restore(&mut self, mut tree: DataTree, sessions: SessionTable) {
        if let Some(m) = &self.membership {
            tree.set_system_data("/zookeeper/config", m.as_bytes());
        }
        self.last_zxid = tree.last_applied();
        self.tree = tree;
        self.sessions = sessions;
        self.pending.clear();
    }

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

    /// Storage tells the service that writes must stop (`Some(reason)`) or may resume.
    pub fn set_writes_refused(&mut self, reason: Option<String>) {
        self.writes_refused = reason;
    }
    pub fn writes_refused(&self) -> Option<&str> {
        self.writes_refused.as_deref()
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }
    /// The tree to freeze or step a snapshot of (the freeze lives in the tree), and the
    /// sessions it records.
    pub fn tree_for_snapshot(&mut self) -> (&mut DataTree, &SessionTable) {
        (&mut self.tree, &self.sessions)
    }
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn metrics(&self) -> &crate::metrics::RequestMetrics {
        &self.metrics
    }
    /// Standalone: the log is durable up to `zxid` (completes those updates' latency).
    pub fn log_durable(&mut self, zxid: Zxid) {
        self.metrics.log_durable(zxid);
    }
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }
    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }
    pub fn clients(&self) -> impl Iterator<Item = (&ClientId, &ClientInfo)> {
        self.clients.iter()
    }
    /// Requests received and not yet answered: writes in flight and what waits behind
    /// them (`Outstanding` in srvr, `zk_outstanding_requests` in mntr; the loop stops
    /// reading clients past `globalOutstandingLimit`).
    pub fn outstanding(&self) -> usize {
        self.inflight_total + self.queued_total
    }

    /// Requests of `client`'s session in progress (in flight or queued behind one).
    pub fn backlog(&self, client: ClientId) -> usize {
        let Some(ClientState::Session(s)) = self.clients.get(&client).map(|c| &c.state) else { return 0 };
        self.inflight.get(s).map_or(0, |w| w.len()) + self.queued.get(s).map_or(0, |q| q.len())
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The earliest time `tick` has work to do.
    pub fn next_deadline(&self) -> Millis {
        if !matches!(self.mode, Mode::Standalone | Mode::Leader) {
            return self.next_reap_ms;
        }
        match self.sessions.next_deadline() {
            Some(d) => d.min(self.next_reap_ms),
            None => self.next_reap_ms,
        }
    }

    // ---- inputs ----------------------------------------------------------------------

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

    /// One complete frame from a client (the length prefix already stripped).
    pub fn client_frame(&mut self, now: Millis, wall_ms: i64, client: ClientId, payload: &[u8], out: &mut dyn Outbox) {
        let Some(info) = self.clients.get_mut(&client) else { return };
        info.received += 1;
        self.stats.packets_received += 1;
        self.handle_frame(now, wall_ms, client, payload, out);
    }

    fn handle_frame(&mut self, now: Millis, wall_ms: i64, client: ClientId, payload: &[u8], out: &mut dyn Outbox) {
        let Some(info) = self.clients.get_mut(&client) else { return };
        match info.state.clone() {
            ClientState::Connecting => {
                if info.early.len() >= EARLY_FRAMES_MAX {
                    tracing::warn!(client = %self.addr(client), "{EARLY_FRAMES_MAX} requests sent before the connect reply; closing");
                    out.close_client(client);
                } else {
                    info.early.push(payload.to_vec());
                }
            }
            ClientState::Handshake => match jute::decode_connect(payload) {
                Ok(req) => self.connect(now, wall_ms, client, req, out),
                Err(e) => {
                    tracing::warn!(client = %self.addr(client), error = %e, "malformed ConnectRequest; closing");
                    out.close_client(client);
                }
            },
            ClientState::Session(session) => match jute::decode_request(payload) {
                Ok((hdr, req)) => {
                    let t0 = std::time::Instant::now();
                    self.sessions.touch(session, now);
                    if self.mode == Mode::Follower {
                        self.touched.insert(session);
                    }
                    let queued = self.queued_total;
                    self.request(now, wall_ms, client, session, hdr.xid, hdr.op, req, payload, out);
                    let us = t0.elapsed().as_micros() as u64;
                    self.record_latency(us);
                    // A read queued behind a write is answered later: not measured.
                    if is_read(hdr.op) && self.queued_total == queued {
                        self.metrics.read_latency.record(us);
                    }
                }
                Err(e) => {
                    tracing::warn!(client = %self.addr(client), error = %e, "malformed request; closing");
                    out.close_client(client);
                }
            },
            ClientState::Closing => {}
        }
    }

    /// Timers: session expiry, container and TTL reaping.
    pub fn tick(&mut self, now: Millis, wall_ms: i64, out: &mut dyn Outbox) {
        if self.writes_refused.is_some() {
            // Closing a session is a txn: postpone expiry (and reaping) until the disk is back.
            for session in self.sessions.expired(now) {
                let timeout = self.sessions.get(session).map_or(0, |s| s.timeout_ms);
                self.sessions.add(session, timeout, now);
            }
            self.next_reap_ms = now + self.cfg.container_check_ms;
            return;
        }
        if !matches!(self.mode, Mode::Standalone | Mode::Leader) {
            if now >= self.next_reap_ms {
                self.next_reap_ms = now + self.cfg.container_check_ms;
            }
            return;
        }
        for session in self.sessions.expired(now) {
            tracing::debug!(%session, "session expired");
            // Prepared like a client's close: its ephemerals' deletion is in flight.
            let op = self.prepare(session, 0, &[], &Request::CloseSession, self.next_txn_zxid(), wall_ms);
            let txn = self.new_txn(session, 0, wall_ms, op.unwrap_or(TxnOp::CloseSession));
            self.submit(now, txn, None, out);
        }
        if now >= self.next_reap_ms {
            self.next_reap_ms = now + self.cfg.container_check_ms;
            self.reap(wall_ms, out);
        }
    }

    fn addr(&self, client: ClientId) -> String {
        self.clients.get(&client).map(|c| c.addr.clone()).unwrap_or_default()
    }

    fn record_latency(&mut self, us: u64) {
        let s = &mut self.stats;
        if s.latency_count == 0 || us < s.latency_min_us {
            s.latency_min_us = us;
        }
        s.latency_max_us = s.latency_max_us.max(us);
        s.latency_total_us += us;
        s.latency_count += 1;
    }

    // ---- connect -----------------------------------------------------------------------

    fn connect(&mut self, now: Millis, wall_ms: i64, client: ClientId, req: ConnectRequest, out: &mut dyn Outbox) {
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
            self.sessions.add(session, timeout, now);
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
                let txn = self.new_txn(session, 0, wall_ms, TxnOp::CreateSession { timeout_ms: timeout });
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
            self.sessions.touch(session, now);
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

    fn bind(&mut self, client: ClientId, session: SessionId, timeout: i32, ip: String, ro: Option<bool>, out: &mut dyn Outbox) {
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

    // ---- requests ----------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        now: Millis,
        wall_ms: i64,
        client: ClientId,
        session: SessionId,
        xid: i32,
        op: i32,
        req: Request,
        payload: &[u8],
        out: &mut dyn Outbox,
    ) {
        // A session's replies leave in request order. Writes pipeline: they are proposed
        // (or forwarded) in order and commit in order, so a write may go while earlier
        // ones are in flight. Anything else behind a write in flight waits, and so does
        // everything behind a request that waits.
        let busy = self.inflight.contains_key(&session);
        let held = self.queued.contains_key(&session);
        if (busy || held) && !matches!(req, Request::Ping) && (held || !self.pipelines(&req)) {
            self.queued.entry(session).or_default().push_back(Queued { client, xid, op, req, payload: payload.to_vec() });
            self.queued_total += 1;
            return;
        }
        self.dispatch(now, wall_ms, client, session, xid, op, req, payload, out);
    }

    /// Whether `req` may be dispatched while earlier writes of its session are in flight:
    /// a write whose reply is certain to come after theirs. Not so when writes are
    /// refused (the refusal is answered at once) or on a server that answers a write
    /// itself (standalone writes never stay in flight).
    fn pipelines(&self, req: &Request) -> bool {
        self.writes_refused.is_none()
            && matches!(self.mode, Mode::Leader | Mode::Follower)
            && match req {
                Request::Create(_)
                | Request::Delete { .. }
                | Request::SetData { .. }
                | Request::SetAcl { .. }
                | Request::Check { .. }
                | Request::Multi(_) => true,
                // A follower forwards a sync on the same connection as the writes.
                Request::Sync { .. } => self.mode == Mode::Follower,
                _ => false,
            }
    }

    /// Requests that waited behind a session's writes, now that one completed: in order,
    /// each write at once, anything else once no write is in flight.
    fn drain_queue(&mut self, now: Millis, wall_ms: i64, session: SessionId, out: &mut dyn Outbox) {
        loop {
            let Some(front) = self.queued.get(&session).and_then(|q| q.front()) else { break };
            if self.inflight.contains_key(&session) && !self.pipelines(&front.req) {
                break;
            }
            let Some(q) = self.queued.get_mut(&session).and_then(|q| q.pop_front()) else { break };
            self.queued_total -= 1;
            if !self.clients.contains_key(&q.client) {
                continue;
            }
            self.dispatch(now, wall_ms, q.client, session, q.xid, q.op, q.req, &q.payload, out);
        }
        if self.queued.get(&session).is_some_and(|q| q.is_empty()) {
            self.queued.remove(&session);
        }
    }

    /// Prepare a write against the tree (and, on a leader, the txns in flight).
    fn prepare(&mut self, session: SessionId, xid: i32, auth: &[Id], req: &Request, zxid: Zxid, wall_ms: i64) -> Result<TxnOp, ErrorCode> {
        let ctx = Context { session, cxid: xid, auth, zxid, time_ms: wall_ms };
        let mut ov = Overlay::with_pending(&self.tree, &self.pending);
        let r = match req {
            Request::Create(c) => prep::create(&mut ov, &ctx, c),
            Request::Delete { path, version } => prep::delete(&mut ov, &ctx, path, *version),
            Request::SetData { path, data, version } => prep::set_data(&mut ov, &ctx, path, data, *version),
            Request::SetAcl { path, acl, version } => prep::set_acl(&mut ov, &ctx, path, acl, *version),
            Request::Check { path, version } => prep::check(&mut ov, &ctx, path, *version),
            Request::Multi(ops) => Ok(prep::multi(&mut ov, &ctx, ops)),
            Request::CloseSession => Ok(prep::close_session(&mut ov, session)),
            _ => Err(ErrorCode::Unimplemented),
        };
        let failed_multi = matches!(&r, Ok(TxnOp::Multi(ops)) if ops.iter().any(|o| matches!(o, TxnOp::Error { .. })));
        let changes = ov.into_changes();
        if r.is_ok() && !failed_multi && self.mode == Mode::Leader {
            self.pending.record(changes, zxid);
        }
        r
    }

    /// The zxid the next txn this server creates will carry.
    fn next_txn_zxid(&self) -> Zxid {
        if self.mode == Mode::Leader {
            self.next_zxid
        } else {
            self.last_zxid.next()
        }
    }

    fn new_txn(&self, session: SessionId, cxid: i32, wall_ms: i64, op: TxnOp) -> Txn {
        Txn { header: TxnHeader { session, cxid, zxid: self.next_txn_zxid(), time_ms: wall_ms }, op }
    }

    /// Standalone: log and apply now. Leader: propose; it is applied on commit.
    fn submit(&mut self, now: Millis, txn: Txn, origin: Option<(ClientId, ReplyKind)>, out: &mut dyn Outbox) {
        if let Some((client, kind)) = origin {
            self.wait(txn.header.session, txn.header.cxid, client, kind);
        }
        if self.mode == Mode::Leader {
            self.next_zxid = txn.header.zxid.next();
            out.propose(txn);
        } else {
            out.persist(&txn);
            self.apply_committed(now, txn, out);
        }
    }

    fn wait(&mut self, session: SessionId, cxid: i32, client: ClientId, kind: ReplyKind) {
        self.inflight.entry(session).or_default().push_back(Waiter { cxid, client, kind, started: std::time::Instant::now() });
        self.inflight_total += 1;
    }

    /// The waiter a completed write of `session`, applied at `zxid`, answers: the oldest in
    /// flight, if it is this one (commits of a session come in the order its writes went out).
    fn done_waiting(&mut self, session: SessionId, cxid: i32, zxid: Zxid) -> Option<(ClientId, ReplyKind)> {
        let q = self.inflight.get_mut(&session)?;
        if q.front()?.cxid != cxid {
            return None;
        }
        let w = q.pop_front()?;
        if q.is_empty() {
            self.inflight.remove(&session);
        }
        self.inflight_total -= 1;
        self.metrics.update_done(zxid, w.started, self.mode == Mode::Standalone);
        Some((w.client, w.kind))
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        now: Millis,
        wall_ms: i64,
        client: ClientId,
        session: SessionId,
        xid: i32,
        op: i32,
        req: Request,
        payload: &[u8],
        out: &mut dyn Outbox,
    ) {
        if let Some(info) = self.clients.get_mut(&client) {
            info.last_op = op_name(op);
            info.last_cxid = xid;
            info.last_response_ms = wall_ms;
        }
        let auth = self.clients.get(&client).map(|c| c.auth.clone()).unwrap_or_default();
        let kind = match &req {
            Request::Create(c) => Some(ReplyKind::Create(c.kind)),
            Request::Delete { .. } => Some(ReplyKind::Delete),
            Request::SetData { .. } => Some(ReplyKind::SetData),
            Request::SetAcl { .. } => Some(ReplyKind::SetAcl),
            Request::Check { path, .. } => Some(ReplyKind::Check(path.clone())),
            Request::Multi(ops) => {
                Some(ReplyKind::Multi(ops.iter().map(|o| if let MultiOp::Create(c) = o { Some(c.kind) } else { None }).collect()))
            }
            Request::CloseSession => Some(ReplyKind::CloseSession),
            Request::Sync { .. } if matches!(self.mode, Mode::Follower | Mode::ReadOnly) => Some(ReplyKind::Sync),
            _ => None,
        };
        if let Some(kind) = kind {
            if self.writes_refused.is_some() && !matches!(req, Request::Sync { .. }) {
                // Every write (closing a session included) is a txn the disk cannot take:
                // the session stays and expires later.
                self.reply_err(client, xid, ErrorCode::SystemError, out);
                if matches!(req, Request::CloseSession) {
                    out.close_client(client);
                }
                return;
            }
            if matches!(req, Request::CloseSession) {
                self.sessions.set_closing(session);
            }
            match self.mode {
                Mode::Follower => {
                    self.wait(session, xid, client, kind);
                    let msg = match req {
                        Request::Sync { path } => QuorumMsg::Sync { session, cxid: xid, path },
                        _ => QuorumMsg::Request { session, cxid: xid, op, body: payload.to_vec(), auth },
                    };
                    out.forward(msg);
                }
                Mode::NotServing => out.close_client(client),
                Mode::ReadOnly if matches!(req, Request::CloseSession) => {
                    self.sessions.remove(session);
                    self.ro_sessions.retain(|s| *s != session);
                    self.reply(client, xid, ErrorCode::Ok, &Response::Empty, out);
                    if let Some(info) = self.clients.get_mut(&client) {
                        info.state = ClientState::Closing;
                    }
                    out.close_client(client);
                }
                Mode::ReadOnly => self.reply_err(client, xid, ErrorCode::NotReadOnly, out),
                Mode::Standalone | Mode::Leader => {
                    let zxid = self.next_txn_zxid();
                    match self.prepare(session, xid, &auth, &req, zxid, wall_ms) {
                        Ok(op) => {
                            let txn = self.new_txn(session, xid, wall_ms, op);
                            self.submit(now, txn, Some((client, kind)), out);
                        }
                        // A leader logs failures too, so that replies keep their order on
                        // every server; standalone answers at once.
                        Err(e) if self.mode == Mode::Leader => {
                            let txn = self.new_txn(session, xid, wall_ms, TxnOp::Error { err: e });
                            self.submit(now, txn, Some((client, kind)), out);
                        }
                        Err(e) => self.reply_err(client, xid, e, out),
                    }
                }
            }
            return;
        }
        match req {
            Request::Ping => self.reply(client, xid, ErrorCode::Ok, &Response::Empty, out),
            Request::Auth { scheme, auth: data } => {
                let ip = auth.iter().find(|i| i.scheme == "ip").map(|i| i.id.clone()).unwrap_or_default();
                match acl::authenticate(&scheme, &data, self.cfg.super_digest.as_deref(), &ip) {
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
            other => {
                let (err, resp) = self.read(client, session, &auth, other, out);
                self.reply(client, xid, err, &resp, out);
            }
        }
    }

    /// Reads and watch management: answered from the local tree.
    fn read(&mut self, client: ClientId, session: SessionId, auth: &[Id], req: Request, out: &mut dyn Outbox) -> (ErrorCode, Response) {
        let watcher = WatcherId(client.0);
        let r: Result<Response, ErrorCode> = (|| match req {
            Request::Exists { path, watch } => {
                // ZooKeeper rejects only a NUL here; other malformed paths are just absent.
                if path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                match self.tree.lookup(&path) {
                    Some(id) => {
                        if watch {
                            self.watches.add(watcher, &path, WatchKind::Data);
                        }
                        Ok(Response::Stat(self.tree.stat(id)))
                    }
                    None => {
                        // An exists watch on a missing node waits for its creation.
                        if watch {
                            self.watches.add(watcher, &path, WatchKind::Data);
                        }
                        Err(ErrorCode::NoNode)
                    }
                }
            }
            Request::GetData { path, watch } => {
                let id = self.readable(&path, auth)?;
                if watch {
                    self.watches.add(watcher, &path, WatchKind::Data);
                }
                Ok(Response::GetData { data: self.tree.data_opt(id).map(<[u8]>::to_vec), stat: self.tree.stat(id) })
            }
            Request::GetChildren { path, watch } => {
                let id = self.readable(&path, auth)?;
                if watch {
                    self.watches.add(watcher, &path, WatchKind::Child);
                }
                Ok(Response::GetChildren { children: self.tree.children(id) })
            }
            Request::GetChildren2 { path, watch } => {
                let id = self.readable(&path, auth)?;
                if watch {
                    self.watches.add(watcher, &path, WatchKind::Child);
                }
                Ok(Response::GetChildren2 { children: self.tree.children(id), stat: self.tree.stat(id) })
            }
            Request::GetAcl { path } => {
                prep::validate_path(&path, false)?;
                let id = self.tree.lookup(&path).ok_or(ErrorCode::NoNode)?;
                let node_acl = self.tree.acl(id);
                if !acl::check(node_acl, perms::READ | perms::ADMIN, auth) {
                    return Err(ErrorCode::NoAuth);
                }
                let mut list = node_acl.to_vec();
                // Without ADMIN, digest hashes are masked (ZOOKEEPER-1392).
                if !acl::check(node_acl, perms::ADMIN, auth) {
                    for a in list.iter_mut().filter(|a| a.id.scheme == "digest") {
                        if let Some((user, _)) = a.id.id.split_once(':') {
                            a.id.id = format!("{user}:x");
                        }
                    }
                }
                Ok(Response::GetAcl { acl: list, stat: self.tree.stat(id) })
            }
            Request::Sync { path } => Ok(Response::Sync { path }),
            Request::GetEphemerals { prefix_path } => {
                let mut paths = self.tree.ephemerals(session);
                if !(prefix_path.is_empty() || prefix_path == "/") {
                    paths.retain(|p| p.starts_with(&prefix_path));
                }
                Ok(Response::GetEphemerals { paths })
            }
            Request::GetAllChildrenNumber { path } => {
                let id = self.readable(&path, auth)?;
                Ok(Response::AllChildrenNumber(self.tree.descendant_count(id) as i32))
            }
            Request::WhoAmI => {
                let mut v: Vec<(String, String)> = auth
                    .iter()
                    .filter(|i| i.scheme != "ip")
                    .chain(auth.iter().filter(|i| i.scheme == "ip"))
                    .map(|i| {
                        let user = if i.scheme == "digest" { i.id.split(':').next().unwrap_or("").to_string() } else { i.id.clone() };
                        (i.scheme.clone(), user)
                    })
                    .collect();
                v.dedup();
                Ok(Response::WhoAmI(v))
            }
            Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    let r = match op {
                        MultiReadOp::GetChildren { path } => self
                            .readable(&path, auth)
                            .map(|id| MultiResult::GetChildren { children: self.tree.children(id) }),
                        MultiReadOp::GetData { path } => self
                            .readable(&path, auth)
                            .map(|id| MultiResult::GetData { data: self.tree.data_opt(id).map(<[u8]>::to_vec), stat: self.tree.stat(id) }),
                    };
                    results.push(r.unwrap_or_else(|e| MultiResult::Error(e.code())));
                }
                Ok(Response::Multi(results))
            }
            Request::SetWatches { relative_zxid, data, exist, child, persistent, persistent_recursive } => {
                let mut fired = Vec::new();
                for p in data {
                    match self.tree.lookup(&p) {
                        None => fired.push((crate::proto::EventType::NodeDeleted, p)),
                        Some(id) if self.tree.stat(id).mzxid > relative_zxid => fired.push((crate::proto::EventType::NodeDataChanged, p)),
                        Some(_) => self.watches.add(watcher, &p, WatchKind::Data),
                    }
                }
                for p in exist {
                    match self.tree.lookup(&p) {
                        Some(_) => fired.push((crate::proto::EventType::NodeCreated, p)),
                        None => self.watches.add(watcher, &p, WatchKind::Data),
                    }
                }
                for p in child {
                    match self.tree.lookup(&p) {
                        None => fired.push((crate::proto::EventType::NodeDeleted, p)),
                        Some(id) if self.tree.stat(id).pzxid > relative_zxid => {
                            fired.push((crate::proto::EventType::NodeChildrenChanged, p))
                        }
                        Some(_) => self.watches.add(watcher, &p, WatchKind::Child),
                    }
                }
                for p in persistent {
                    self.watches.add(watcher, &p, WatchKind::Persistent);
                }
                for p in persistent_recursive {
                    self.watches.add(watcher, &p, WatchKind::PersistentRecursive);
                }
                for (event, path) in fired {
                    self.notify(client, event, &path, out);
                }
                Ok(Response::Empty)
            }
            // ZooKeeper 3.8 takes any path here (a watch on a malformed one never fires) and
            // answers an unknown mode (or watcher type below) with MarshallingError: the
            // IllegalArgumentException of its enum conversion lands in the catch-all.
            Request::AddWatch { path, mode } => {
                let kind = match mode {
                    0 => WatchKind::Persistent,
                    1 => WatchKind::PersistentRecursive,
                    _ => return Err(ErrorCode::MarshallingError),
                };
                self.watches.add(watcher, &path, kind);
                Ok(Response::AddWatch)
            }
            Request::RemoveWatches { path, watch_type } => {
                let t = WatcherType::from_i32(watch_type).ok_or(ErrorCode::MarshallingError)?;
                if self.watches.remove(watcher, &path, t) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::CheckWatches { path, watch_type } => {
                let t = WatcherType::from_i32(watch_type).ok_or(ErrorCode::MarshallingError)?;
                if self.watches.contains(watcher, &path, t) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::Unimplemented(_) => Err(ErrorCode::Unimplemented),
            // Writes, ping, auth and close are dispatched before reaching here.
            _ => Err(ErrorCode::Unimplemented),
        })();
        match r {
            Ok(resp) => (ErrorCode::Ok, resp),
            Err(e) => (e, Response::Empty),
        }
    }

    /// Look up a node the session may READ.
    /// Reads do not validate the path (ZooKeeper 3.8 answers NoNode for a malformed one:
    /// no node can have such a path).
    fn readable(&self, path: &str, auth: &[Id]) -> Result<crate::tree::NodeId, ErrorCode> {
        let id = self.tree.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(self.tree.acl(id), perms::READ, auth) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(id)
    }

    // ---- commit path -------------------------------------------------------------------

    /// Apply a committed txn (standalone: right after logging it; ensemble: in zxid order
    /// from the replication layer): update the tree and sessions, notify watchers, then
    /// answer the local client that sent it, if any.
    pub fn apply_committed(&mut self, now: Millis, txn: Txn, out: &mut dyn Outbox) {
        let mut triggers = std::mem::take(&mut self.scratch_triggers);
        triggers.clear();
        let outcome = self.tree.apply(&txn, &mut triggers);
        let zxid = txn.header.zxid;
        let session = txn.header.session;
        self.last_zxid = zxid;
        self.pending.applied(zxid);
        match &txn.op {
            TxnOp::CreateSession { timeout_ms } => self.sessions.add(session, *timeout_ms, now),
            TxnOp::CloseSession => {
                self.sessions.remove(session);
            }
            _ => {}
        }
        let mut notes = std::mem::take(&mut self.scratch_notes);
        notes.clear();
        for t in &triggers {
            self.watches.trigger(&t.path, t.event, &mut notes);
        }
        for n in &notes {
            self.notify(ClientId(n.watcher.0), n.event, &n.path, out);
        }
        self.scratch_triggers = triggers;
        self.scratch_notes = notes;
        if let TxnOp::CreateSession { .. } = txn.op {
            if let Some(pc) = self.pending_connects.remove(&session) {
                self.bind(pc.client, session, pc.timeout_ms, pc.ip, pc.read_only, out);
                // Requests pipelined behind the ConnectRequest run now, in order.
                let early = self.clients.get_mut(&pc.client).map(|i| std::mem::take(&mut i.early)).unwrap_or_default();
                for frame in early {
                    self.handle_frame(now, txn.header.time_ms, pc.client, &frame, out);
                }
            }
            return;
        }
        let waiter = self.done_waiting(session, txn.header.cxid, zxid);
        if let Some((client, kind)) = waiter {
            let (err, resp) = self.build_reply(kind, outcome);
            self.reply_zxid(client, txn.header.cxid, zxid.0, err, &resp, out);
        }
        if let TxnOp::CloseSession = txn.op {
            // Closed by its client, or expired: the connection holding it goes too.
            if let Some(c) = self.owners.remove(&session) {
                if let Some(info) = self.clients.get_mut(&c) {
                    info.state = ClientState::Closing;
                }
                out.close_client(c);
            }
            if let Some(q) = self.queued.remove(&session) {
                self.queued_total -= q.len();
            }
            // Writes pipelined behind the close fail on the closed session; nobody waits.
            if let Some(w) = self.inflight.remove(&session) {
                self.inflight_total -= w.len();
            }
            return;
        }
        let wall_ms = txn.header.time_ms;
        self.drain_queue(now, wall_ms, session, out);
    }

    /// Leader: a follower forwarded something from one of its clients.
    pub fn forwarded(&mut self, now: Millis, wall_ms: i64, from: ServerId, msg: QuorumMsg, out: &mut dyn Outbox) {
        if self.mode != Mode::Leader {
            return;
        }
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
    pub fn sync_done(&mut self, now: Millis, wall_ms: i64, session: SessionId, cxid: i32, path: String, out: &mut dyn Outbox) {
        if let Some((client, _)) = self.done_waiting(session, cxid, Zxid::ZERO) {
            self.reply(client, cxid, ErrorCode::Ok, &Response::Sync { path }, out);
        }
        self.drain_queue(now, wall_ms, session, out);
    }

    fn build_reply(&self, kind: ReplyKind, outcome: ApplyOutcome) -> (ErrorCode, Response) {
        if let ApplyOutcome::Error(e) = outcome {
            return (e, Response::Empty);
        }
        match (kind, outcome) {
            (ReplyKind::Create(CreateKind::Create), ApplyOutcome::Created { path, .. }) => (ErrorCode::Ok, Response::Create { path }),
            (ReplyKind::Create(_), ApplyOutcome::Created { path, stat }) => (ErrorCode::Ok, Response::Create2 { path, stat }),
            (ReplyKind::Delete, _) => (ErrorCode::Ok, Response::Empty),
            (ReplyKind::SetData, ApplyOutcome::DataSet { stat }) => (ErrorCode::Ok, Response::Stat(stat)),
            (ReplyKind::SetAcl, ApplyOutcome::AclSet { stat }) => (ErrorCode::Ok, Response::Stat(stat)),
            (ReplyKind::Check(path), _) => match self.tree.lookup(&path) {
                Some(id) => (ErrorCode::Ok, Response::Stat(self.tree.stat(id))),
                None => (ErrorCode::NoNode, Response::Empty),
            },
            (ReplyKind::Multi(kinds), ApplyOutcome::Multi(outcomes)) => {
                let results = outcomes
                    .into_iter()
                    .zip(kinds.into_iter().chain(std::iter::repeat(None)))
                    .map(|(o, k)| match o {
                        // ZooKeeper turns create and create2 sub-ops into `Op.create`
                        // (MultiOperationRecord), so both answer with the path only, typed 1;
                        // container and TTL creates answer path + Stat, typed 15.
                        ApplyOutcome::Created { path, .. }
                            if matches!(k, Some(CreateKind::Create | CreateKind::Create2)) =>
                        {
                            MultiResult::Create { path }
                        }
                        ApplyOutcome::Created { path, stat } => MultiResult::Create2 { path, stat },
                        ApplyOutcome::Deleted => MultiResult::Delete,
                        ApplyOutcome::DataSet { stat } => MultiResult::SetData { stat },
                        ApplyOutcome::Checked => MultiResult::Check,
                        ApplyOutcome::Error(e) => MultiResult::Error(e.code()),
                        _ => MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
                    })
                    .collect();
                (ErrorCode::Ok, Response::Multi(results))
            }
            (ReplyKind::CloseSession, _) => (ErrorCode::Ok, Response::Empty),
            (k, o) => {
                tracing::error!(kind = ?k, outcome = ?o, "internal: reply kind does not match the outcome");
                (ErrorCode::SystemError, Response::Empty)
            }
        }
    }

    /// Delete empty containers that once had children and expired TTL nodes, as the
    /// server itself (ZooKeeper's ContainerManager).
    fn reap(&mut self, wall_ms: i64, out: &mut dyn Outbox) {
        let mut victims = self.tree.container_candidates();
        victims.extend(self.tree.expired_ttl_nodes(wall_ms));
        let super_auth = [Id::new(acl::SUPER_SCHEME, "")];
        for path in victims {
            let req = Request::Delete { path, version: -1 };
            let zxid = self.next_txn_zxid();
            if let Ok(op) = self.prepare(SessionId(0), 0, &super_auth, &req, zxid, wall_ms) {
                let txn = self.new_txn(SessionId(0), 0, wall_ms, op);
                self.submit(0, txn, None, out);
            }
        }
    }

    // ---- output ------------------------------------------------------------------------

    fn notify(&mut self, client: ClientId, event: crate::proto::EventType, path: &str, out: &mut dyn Outbox) {
        // PLANTED BUG (lost_watch, tests only): every 5th notification is dropped.
        if self.cfg.planted.lost_watch && self.watches.planted_drop() {
            return;
        }
        let Some(buf) = out.client_buf(client) else { return };
        let ev = WatcherEvent { event_type: event.code(), state: KeeperState::SyncConnected.code(), path: path.to_string() };
        jute::encode_notification(buf, &ev);
        self.stats.packets_sent += 1;
        if let Some(info) = self.clients.get_mut(&client) {
            info.sent += 1;
        }
    }

    fn reply_err(&mut self, client: ClientId, xid: i32, err: ErrorCode, out: &mut dyn Outbox) {
        self.reply(client, xid, err, &Response::Empty, out);
    }

    fn reply(&mut self, client: ClientId, xid: i32, err: ErrorCode, resp: &Response, out: &mut dyn Outbox) {
        let zxid = self.last_zxid.0;
        self.reply_zxid(client, xid, zxid, err, resp, out);
    }

    /// ZooKeeper answers auth outside the request pipeline with zxid 0 in the header
    /// (`ZooKeeperServer.processPacket`), and it does not count as the client's last zxid.
    fn reply_auth(&mut self, client: ClientId, xid: i32, err: ErrorCode, out: &mut dyn Outbox) {
        let Some(buf) = out.client_buf(client) else { return };
        jute::encode_reply(buf, ReplyHeader { xid, zxid: 0, err: err.code() }, &Response::Empty);
        self.stats.packets_sent += 1;
        if let Some(info) = self.clients.get_mut(&client) {
            info.sent += 1;
        }
    }

    fn reply_zxid(&mut self, client: ClientId, xid: i32, zxid: i64, err: ErrorCode, resp: &Response, out: &mut dyn Outbox) {
        let Some(buf) = out.client_buf(client) else { return };
        jute::encode_reply(buf, ReplyHeader { xid, zxid, err: err.code() }, resp);
        self.stats.packets_sent += 1;
        if let Some(info) = self.clients.get_mut(&client) {
            info.sent += 1;
            info.last_zxid = zxid;
        }
    }
}

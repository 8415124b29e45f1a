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
//!
//! This file holds the `Service` itself, its contract with the replica core (`Outbox`,
//! the inputs below) and the dispatcher that routes a client frame by connection state and
//! request kind. The rest is split by concern, each an `impl Service` block:
//! - `handshake`: connections, ConnectRequest (new, resumed, read-only sessions), auth.
//! - `reads`: reads and watch registration, answered from the local tree.
//! - `writes`: prepare → submit (log or propose) → apply committed → reply; per-session
//!   ordering of writes in flight and of requests queued behind them.
//! - `forwarding`: a follower's writes and syncs as the leader receives them; session
//!   liveness reported by followers.
//! - `reaping`: timers: session expiry, containers and TTL nodes.
//! - `mode`: serving modes (standalone, leader, follower, read-only, not serving).
//! - `output`: replies and notifications encoded into a connection's buffer.
//! - `testkit` (tests only): a `Service` driven through these inputs with a recording
//!   `Outbox` and real jute frames; each module's unit tests use it.

mod forwarding;
mod handshake;
mod mode;
mod output;
mod reads;
mod reaping;
mod writes;

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::BytesMut;

use crate::jute::{self, MultiOp, Request, Response};
use crate::peer::QuorumMsg;
use crate::prep::Pending;
use crate::proto::{ErrorCode, Id, Millis, Now, OpCode, ServerId, SessionId, Zxid};
use crate::session::SessionTable;
use crate::tree::{DataTree, Trigger};
use crate::txn::Txn;
use crate::watch::{Notification, WatchManager};

pub use mode::Mode;

use handshake::{PendingConnect, EARLY_FRAMES_MAX};
use reads::is_read;
use writes::{Queued, ReplyKind, Waiter};

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
    /// A reconfig committed here: replication takes these members (`reconfig`). `committed`:
    /// they are the txn's (recorded as the committed membership), not a newer one held.
    fn membership_changed(&mut self, _members: &crate::reconfig::Membership, _committed: bool) {}
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
    /// `reconfigEnabled`: an ensemble answers reconfig (else ReconfigDisabled).
    pub reconfig_enabled: bool,
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
    /// Leader: the zxid of the reconfig proposed and not yet applied (one at a time).
    reconfig_in_flight: Option<Zxid>,
    /// Leader: the servers synced with it, itself included (kept by the replica from the
    /// replication core); a voter change needs a quorum of its new voters among them.
    synced: crate::reconfig::Synced,
    /// Why writes are refused (the txn log's disk cannot take more), if they are: write
    /// requests get `SystemError`, new sessions are turned away, expiry is postponed.
    writes_refused: Option<String>,
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
            reconfig_in_flight: None,
            synced: Default::default(),
        }
    }

    /// Leader: the servers synced with it now (see `synced`).
    pub fn synced_servers(&self) -> &crate::reconfig::Synced {
        &self.synced
    }
    pub fn set_synced_servers(&mut self, synced: crate::reconfig::Synced) {
        self.synced = synced;
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The ensemble's membership, as `/zookeeper/config` shows it (`server.N=...` lines).
    /// A reconfig the tree already holds (replayed from the log) wins over an older `text`.
    pub fn set_membership(&mut self, text: String) {
        let text = crate::reconfig::newer(text, &self.tree);
        self.tree.set_system_data("/zookeeper/config", text.as_bytes());
        self.membership = Some(text);
    }

    /// The membership `/zookeeper/config` shows (an ensemble member's).
    pub fn membership(&self) -> Option<&str> {
        self.membership.as_deref()
    }

    /// Replace the state wholesale (a follower that received a snapshot, or rebuilt its
    /// tree after a truncation).
    /// `base`: the membership to show unless the new state holds a newer one (default: what
    /// was shown).
    pub fn restore(&mut self, mut tree: DataTree, sessions: SessionTable, base: Option<String>) {
        if let Some(m) = base.or(self.membership.take()) {
            let m = crate::reconfig::newer(m, &tree);
            tree.set_system_data("/zookeeper/config", m.as_bytes());
            self.membership = Some(m);
        }
        self.last_zxid = tree.last_applied();
        self.tree = tree;
        self.sessions = sessions;
        self.pending.clear();
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
    pub fn log_durable(&mut self, zxid: Zxid, now: Now) {
        self.metrics.log_durable(zxid, now.us);
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

    /// One complete frame from a client (the length prefix already stripped).
    pub fn client_frame(&mut self, now: Now, client: ClientId, payload: &[u8], out: &mut dyn Outbox) {
        let Some(info) = self.clients.get_mut(&client) else { return };
        info.received += 1;
        self.stats.packets_received += 1;
        self.handle_frame(now, client, payload, out);
    }

    // ---- the dispatcher ----------------------------------------------------------------

    /// Route a frame by the connection's state: held while its session is being made,
    /// the handshake, or a request of its session.
    fn handle_frame(&mut self, now: Now, client: ClientId, payload: &[u8], out: &mut dyn Outbox) {
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
                Ok(req) => self.connect(now, client, req, out),
                Err(e) => {
                    tracing::warn!(client = %self.addr(client), error = %e, "malformed ConnectRequest; closing");
                    out.close_client(client);
                }
            },
            ClientState::Session(session) => match jute::decode_request(payload) {
                Ok((hdr, req)) => {
                    self.sessions.touch(session, now.ms);
                    if self.mode == Mode::Follower {
                        self.touched.insert(session);
                    }
                    let queued = self.queued_total;
                    let r = Incoming { client, session, xid: hdr.xid, op: hdr.op, req, payload };
                    self.request(now, r, out);
                    // The step's clock stands still while the core works: what is answered
                    // in the step it arrived in took no time at this resolution (the
                    // loop's own time before the step is not the core's to see). A write's
                    // latency runs from here to its commit (`updatelatency`, `done_waiting`).
                    let us = 0;
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

    /// A session's request: dispatched now, or queued behind the session's writes.
    fn request(&mut self, now: Now, r: Incoming<'_>, out: &mut dyn Outbox) {
        // A session's replies leave in request order. Writes pipeline: they are proposed
        // (or forwarded) in order and commit in order, so a write may go while earlier
        // ones are in flight. Anything else behind a write in flight waits, and so does
        // everything behind a request that waits.
        let busy = self.inflight.contains_key(&r.session);
        let held = self.queued.contains_key(&r.session);
        if (busy || held) && !matches!(r.req, Request::Ping) && (held || !self.pipelines(&r.req)) {
            let q = Queued { client: r.client, xid: r.xid, op: r.op, req: r.req, payload: r.payload.to_vec() };
            self.queued.entry(r.session).or_default().push_back(q);
            self.queued_total += 1;
            return;
        }
        self.dispatch(now, r, out);
    }

    /// Route a request by kind: writes (and a follower's sync) to the write path, auth and
    /// ping here, everything else is a read.
    fn dispatch(&mut self, now: Now, r: Incoming<'_>, out: &mut dyn Outbox) {
        let Incoming { client, xid, .. } = r;
        if let Some(info) = self.clients.get_mut(&client) {
            info.last_op = OpCode::name_of(r.op);
            info.last_cxid = xid;
            info.last_response_ms = now.wall_ms;
        }
        let auth = self.clients.get(&client).map(|c| c.auth.clone()).unwrap_or_default();
        let kind = match &r.req {
            Request::Create(c) => Some(ReplyKind::Create(c.kind)),
            Request::Delete { .. } => Some(ReplyKind::Delete),
            Request::SetData { .. } => Some(ReplyKind::SetData),
            Request::SetAcl { .. } => Some(ReplyKind::SetAcl),
            Request::Check { path, .. } => Some(ReplyKind::Check(path.clone())),
            Request::Multi(ops) => {
                Some(ReplyKind::Multi(ops.iter().map(|o| if let MultiOp::Create(c) = o { Some(c.kind) } else { None }).collect()))
            }
            Request::CloseSession => Some(ReplyKind::CloseSession),
            Request::Reconfig { .. } => Some(ReplyKind::Reconfig),
            Request::Sync { .. } if matches!(self.mode, Mode::Leader | Mode::Follower | Mode::ReadOnly) => Some(ReplyKind::Sync),
            _ => None,
        };
        if let Some(kind) = kind {
            self.write(now, r, kind, auth, out);
            return;
        }
        match r.req {
            Request::Ping => self.reply(client, xid, ErrorCode::Ok, &Response::Empty, out),
            Request::Auth { scheme, auth: data } => self.auth(client, xid, &scheme, &data, &auth, out),
            other => {
                let (err, resp) = self.read(client, r.session, &auth, other, out);
                self.reply(client, xid, err, &resp, out);
            }
        }
    }
}

/// One decoded request of a session, as the dispatcher routes it.
struct Incoming<'a> {
    client: ClientId,
    session: SessionId,
    xid: i32,
    /// The wire opcode (`cons`'s last operation; what a follower forwards).
    op: i32,
    req: Request,
    /// The frame as received (a follower forwards it as it is).
    payload: &'a [u8],
}

#[cfg(test)]
mod testkit;

#[cfg(test)]
mod tests {
    use crate::jute::{Request, Response};
    use crate::proto::{ErrorCode, OpCode};
    use crate::service::testkit::{create, get, Harness, MAX_TIMEOUT_MS};

    fn last_op(h: &Harness, c: super::ClientId) -> &'static str {
        h.svc.clients().find(|(id, _)| **id == c).map(|(_, i)| i.last_op).expect("client")
    }

    #[test]
    fn cons_shows_the_last_operation_by_its_opcode_name() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        assert_eq!(last_op(&h, c), "NA");
        h.call(c, &create("/a", b""));
        assert_eq!(last_op(&h, c), "CREA");
        h.call(c, &get("/a", false));
        assert_eq!(last_op(&h, c), OpCode::GetData.name());
        h.call(c, &Request::GetEphemerals { prefix_path: "/".into() });
        assert_eq!(last_op(&h, c), "UNKN", "ZooKeeper has no name for it either");
    }

    #[test]
    fn an_unknown_opcode_is_unimplemented_and_the_connection_stays() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        h.send_as(c, 41, 9999, &Request::Unimplemented(9999));
        let got = h.replies(c);
        assert_eq!((got[0].0.xid, got[0].0.err), (41, ErrorCode::Unimplemented.code()));
        assert!(h.out.closed.is_empty());
        assert_eq!(h.call(c, &get("/", false)).0.err, 0);
    }

    #[test]
    fn a_malformed_request_closes_the_connection() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        // A getData header whose body is cut short.
        let frame = [0, 0, 0, 7, 0, 0, 0, OpCode::GetData.code() as u8, 0, 0, 0, 9, b'/'];
        h.svc.client_frame(h.now, c, &frame, &mut h.out);
        assert_eq!(h.out.closed, vec![c]);
        assert!(h.replies(c).is_empty());
    }

    #[test]
    fn counters_follow_frames_in_and_replies_out() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        h.call(c, &create("/a", b""));
        h.call(c, &Request::Ping);
        let st = h.svc.stats();
        assert_eq!((st.packets_received, st.packets_sent, st.latency_count), (3, 3, 2), "connect + 2 requests");
        let (_, resp) = h.call(c, &get("/a", false));
        assert!(matches!(resp, Response::GetData { .. }));
        assert_eq!(h.svc.metrics().read_latency.count(), 1, "a read is measured");
    }
}

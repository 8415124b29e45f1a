//! The write path: prepare a request into a txn against the tree (and, on a leader, the
//! txns in flight), submit it (standalone: log and apply at once; leader: propose), apply
//! what commits in zxid order, and answer the client that sent it.
//!
//! Per-session order: a session's writes go out (proposed or forwarded) in request order and
//! so commit in that order; the front of its `inflight` queue is the waiter the next commit
//! of that session answers. Anything that must see those writes (a read) waits in `queued`,
//! and so does everything behind it.

use crate::jute::{CreateKind, MultiResult, Request, Response};
use crate::prep::{self, Context, Overlay};
use crate::peer::QuorumMsg;
use crate::proto::{ErrorCode, Id, Now, SessionId, Zxid};
use crate::tree::ApplyOutcome;
use crate::txn::{Txn, TxnHeader, TxnOp};

use super::{ClientId, ClientState, Incoming, Mode, Outbox, Service};

/// How a write request's reply is built once its txn is applied.
#[derive(Clone, Debug)]
pub(super) enum ReplyKind {
    Create(CreateKind),
    Delete,
    SetData,
    SetAcl,
    Check(String),
    Multi(Vec<Option<CreateKind>>),
    CloseSession,
    /// A `sync`, answered when the replication core says so (`sync_done`).
    Sync,
    /// Answered with `/zookeeper/config` (data and Stat), as a getData.
    Reconfig,
}

/// A write in flight: who gets the reply and how it is built once its txn is applied.
pub(super) struct Waiter {
    cxid: i32,
    client: ClientId,
    kind: ReplyKind,
    /// When the request arrived (the step's clock), for `updatelatency`.
    started_us: i64,
    /// Its reply frame, when its txn was applied while a `sync` before it still waited: a
    /// sync is answered once a quorum confirmed the leader (`zab::syncs`), which may come
    /// after later writes of the session committed. Sent when the sync's reply is.
    held: Option<(i64, bytes::Bytes)>,
}

impl Waiter {
    /// The zxid of its reply, if that is held behind a sync.
    pub(super) fn held_zxid(&self) -> Option<i64> {
        self.held.as_ref().map(|(z, _)| *z)
    }
}

/// A request held back because an earlier write of its session is still in flight
/// (a session's replies leave in request order).
pub(super) struct Queued {
    pub(super) client: ClientId,
    pub(super) xid: i32,
    pub(super) op: i32,
    pub(super) req: Request,
    pub(super) payload: Vec<u8>,
}

impl Service {
    /// Whether `req` may be dispatched while earlier writes of its session are in flight:
    /// a write whose reply is certain to come after theirs. Not so when writes are
    /// refused (the refusal is answered at once) or on a server that answers a write
    /// itself (standalone writes never stay in flight).
    pub(super) fn pipelines(&self, req: &Request) -> bool {
        self.writes_refused.is_none()
            && matches!(self.mode, Mode::Leader | Mode::Follower)
            && match req {
                Request::Create(_)
                | Request::Delete { .. }
                | Request::SetData { .. }
                | Request::SetAcl { .. }
                | Request::Check { .. }
                | Request::Multi(_) => true,
                // A sync goes to the replication core after the writes before it, which
                // answers it only after they commit (a follower: on the same connection).
                Request::Sync { .. } => true,
                _ => false,
            }
    }

    /// Requests that waited behind a session's writes, now that one completed: in order,
    /// each write at once, anything else once no write is in flight.
    pub(super) fn drain_queue(&mut self, now: Now, session: SessionId, out: &mut dyn Outbox) {
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
            let r = Incoming { client: q.client, session, xid: q.xid, op: q.op, req: q.req, payload: &q.payload };
            self.dispatch(now, r, out);
        }
        if self.queued.get(&session).is_some_and(|q| q.is_empty()) {
            self.queued.remove(&session);
        }
    }

    /// A write (or an ensemble member's sync): refused while the disk is,
    /// forwarded by a follower, refused read-only, prepared and submitted otherwise.
    pub(super) fn write(&mut self, now: Now, r: Incoming<'_>, kind: ReplyKind, auth: Vec<Id>, out: &mut dyn Outbox) {
        let Incoming { client, session, xid, op, req, payload } = r;
        let wall_ms = now.wall_ms;
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
                self.wait(now, session, xid, client, kind);
                let msg = match req {
                    Request::Sync { path } => QuorumMsg::Sync { session, cxid: xid, path },
                    _ => QuorumMsg::Request { session, cxid: xid, op, body: payload.to_vec(), auth },
                };
                out.forward(msg);
            }
            // The replication core answers it once it may (`zab::syncs`): `sync_done`.
            Mode::Leader if matches!(req, Request::Sync { .. }) => {
                let Request::Sync { path } = req else { return };
                self.wait(now, session, xid, client, kind);
                out.forward(QuorumMsg::Sync { session, cxid: xid, path });
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
                match self.check_session(session, &req).and_then(|()| self.prepare(session, xid, &auth, &req, zxid, wall_ms)) {
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
    }

    /// Prepare a write against the tree (and, on a leader, the txns in flight).
    /// ZooKeeper's checkSession, for a client's request (local or forwarded): a session that
    /// is closing (its expiry or close is in flight) or unknown cannot write. Else a create
    /// prepared after the close left an ephemeral that no session owns, on every server, for
    /// ever (found by the simulator, seed 637: a follower forwarded the create just after the
    /// leader expired the session). Closing is exempt: the expiry queues it for the session.
    pub(super) fn check_session(&self, session: SessionId, req: &Request) -> Result<(), ErrorCode> {
        if matches!(req, Request::CloseSession) || self.sessions.is_live(session) {
            Ok(())
        } else {
            Err(ErrorCode::SessionExpired)
        }
    }

    pub(super) fn prepare(&mut self, session: SessionId, xid: i32, auth: &[Id], req: &Request, zxid: Zxid, wall_ms: i64) -> Result<TxnOp, ErrorCode> {
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
            Request::Reconfig { joining, leaving, new_members, cur_config_id } => {
                let gate = crate::reconfig::Gate {
                    ensemble: self.mode != Mode::Standalone,
                    enabled: self.cfg.reconfig_enabled,
                    in_flight: self.reconfig_in_flight.is_some(),
                };
                let change = crate::reconfig::Change { joining: joining.clone(), leaving: leaving.clone(), new_members: new_members.clone() };
                crate::reconfig::prepare_txn(gate, &self.synced, self.membership.as_deref(), &ov, &ctx, &change, *cur_config_id)
            }
            _ => Err(ErrorCode::Unimplemented),
        };
        if matches!(r, Ok(TxnOp::Reconfig { .. })) && self.mode == Mode::Leader {
            self.reconfig_in_flight = Some(zxid);
        }
        let failed_multi = matches!(&r, Ok(TxnOp::Multi(ops)) if ops.iter().any(|o| matches!(o, TxnOp::Error { .. })));
        let changes = ov.into_changes();
        if r.is_ok() && !failed_multi && self.mode == Mode::Leader {
            self.pending.record(changes, zxid);
        }
        r
    }

    /// The zxid the next txn this server creates will carry.
    pub(super) fn next_txn_zxid(&self) -> Zxid {
        if self.mode == Mode::Leader {
            self.next_zxid
        } else {
            self.last_zxid.next()
        }
    }

    pub(super) fn new_txn(&self, session: SessionId, cxid: i32, wall_ms: i64, op: TxnOp) -> Txn {
        Txn { header: TxnHeader { session, cxid, zxid: self.next_txn_zxid(), time_ms: wall_ms }, op }
    }

    /// Standalone: log and apply now. Leader: propose; it is applied on commit.
    pub(super) fn submit(&mut self, now: Now, txn: Txn, origin: Option<(ClientId, ReplyKind)>, out: &mut dyn Outbox) {
        if let Some((client, kind)) = origin {
            self.wait(now, txn.header.session, txn.header.cxid, client, kind);
        }
        if self.mode == Mode::Leader {
            self.next_zxid = txn.header.zxid.next();
            if self.cfg.planted.reply_before_commit {
                // PLANTED BUG (reply-before-commit): answer now, as if the proposal had
                // committed; a leader that loses its quorum loses an acknowledged write.
                let (h, outcome) = (txn.header.clone(), crate::planted::outcome_when_proposed(&txn));
                if let Some((client, kind)) = self.done_waiting(now, h.session, h.cxid, h.zxid) {
                    let (err, resp) = self.build_reply(kind, outcome);
                    self.reply_zxid(client, h.cxid, h.zxid.0, err, &resp, out);
                }
            }
            out.propose(txn);
        } else {
            out.persist(&txn);
            self.apply_committed(now, txn, out);
        }
    }

    pub(super) fn wait(&mut self, now: Now, session: SessionId, cxid: i32, client: ClientId, kind: ReplyKind) {
        self.inflight.entry(session).or_default().push_back(Waiter { cxid, client, kind, started_us: now.us, held: None });
        self.inflight_total += 1;
    }

    /// The waiter a completed write of `session`, applied at `zxid`, answers: the oldest in
    /// flight, if it is this one (commits of a session come in the order its writes went out).
    pub(super) fn done_waiting(&mut self, now: Now, session: SessionId, cxid: i32, zxid: Zxid) -> Option<(ClientId, ReplyKind)> {
        let q = self.inflight.get_mut(&session)?;
        if q.front()?.cxid != cxid {
            return None;
        }
        let w = q.pop_front()?;
        if q.is_empty() {
            self.inflight.remove(&session);
        }
        self.inflight_total -= 1;
        self.metrics.update_done(zxid, w.started_us, now.us, self.mode == Mode::Standalone);
        Some((w.client, w.kind))
    }

    /// A write of `session` completed while a `sync` ahead of it still waits: keep its reply
    /// with its waiter until the sync is answered (`release_held`).
    fn hold_behind_sync(&mut self, now: Now, session: SessionId, cxid: i32, zxid: Zxid, outcome: ApplyOutcome) {
        let Some(q) = self.inflight.get(&session) else { return };
        let Some(pos) = q.iter().position(|w| w.cxid == cxid && w.held.is_none()) else { return };
        // Only syncs and writes already completed may stand before it.
        if !q.iter().take(pos).all(|w| matches!(w.kind, ReplyKind::Sync) || w.held.is_some()) {
            return;
        }
        let kind = q[pos].kind.clone();
        let (err, resp) = self.build_reply(kind, outcome);
        let mut frame = bytes::BytesMut::new();
        crate::jute::encode_reply(&mut frame, crate::jute::ReplyHeader { xid: cxid, zxid: zxid.0, err: err.code() }, &resp);
        let started = q[pos].started_us;
        self.metrics.update_done(zxid, started, now.us, false);
        if let Some(w) = self.inflight.get_mut(&session).and_then(|q| q.get_mut(pos)) {
            w.held = Some((zxid.0, frame.freeze()));
        }
    }

    /// After a sync's reply: the replies held behind it leave, in order, up to the next
    /// request still waiting.
    pub(super) fn release_held(&mut self, session: SessionId, out: &mut dyn Outbox) {
        while let Some(q) = self.inflight.get_mut(&session) {
            let Some((zxid, frame)) = q.front_mut().and_then(|w| w.held.take()) else { break };
            let Some(w) = q.pop_front() else { break };
            if q.is_empty() {
                self.inflight.remove(&session);
            }
            self.inflight_total -= 1;
            self.send_held(w.client, zxid, &frame, out);
        }
    }

    /// Apply a committed txn (standalone: right after logging it; ensemble: in zxid order
    /// from the replication layer): update the tree and sessions, notify watchers, then
    /// answer the local client that sent it, if any. What this runs for clients (early
    /// frames, queued requests) carries the txn's time as its wall clock.
    pub fn apply_committed(&mut self, now: Now, txn: Txn, out: &mut dyn Outbox) {
        let mut triggers = std::mem::take(&mut self.scratch_triggers);
        triggers.clear();
        let outcome = self.tree.apply(&txn, &mut triggers);
        self.metrics.txn_applied(txn.header.time_ms, now.wall_ms);
        let zxid = txn.header.zxid;
        let session = txn.header.session;
        let at = Now { wall_ms: txn.header.time_ms, ..now };
        self.last_zxid = zxid;
        self.pending.applied(zxid);
        if let TxnOp::Reconfig { data } = &txn.op {
            self.reconfig_in_flight = None;
            let text = String::from_utf8_lossy(data).into_owned();
            let held = self.membership.as_deref().and_then(|t| crate::reconfig::Membership::parse(t).ok());
            match crate::reconfig::Membership::parse(&text) {
                // ZooKeeper's `setQuorumVerifier`: a config no newer than the one this server
                // has is not taken. A server readied to join (the current config plus
                // itself) replays older reconfigs in its DIFF; taking one made it a
                // non-member, and it left its leader for good (simulator seed 125, with
                // --reconfig). Replication still hears of the held one: a voter change
                // proposed at that zxid is settled.
                Ok(m) if held.as_ref().is_some_and(|h| m.version <= h.version) => {
                    let held = held.expect("checked above");
                    tracing::info!(%zxid, version = %format!("{:x}", m.version), held = %format!("{:x}", held.version), "reconfig older than the config held; keeping the held one");
                    let shown = held.render();
                    self.tree.set_system_data(crate::reconfig::CONFIG_NODE, shown.as_bytes());
                    // Not a commit of the held one (a joiner's own file): not recorded.
                    out.membership_changed(&held, false);
                }
                Ok(m) => {
                    out.membership_changed(&m, true);
                    self.membership = Some(text);
                }
                Err(e) => {
                    tracing::error!(%zxid, error = %e, "committed reconfig does not parse; replication keeps its members");
                    self.membership = Some(text);
                }
            }
        }
        match &txn.op {
            TxnOp::CreateSession { timeout_ms } => self.sessions.add(session, *timeout_ms, now.ms),
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
                    self.handle_frame(at, pc.client, &frame, out);
                }
            }
            return;
        }
        let waiter = self.done_waiting(now, session, txn.header.cxid, zxid);
        if let Some((client, kind)) = waiter {
            let (err, resp) = self.build_reply(kind, outcome);
            self.reply_zxid(client, txn.header.cxid, zxid.0, err, &resp, out);
        } else {
            self.hold_behind_sync(now, session, txn.header.cxid, zxid, outcome);
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
        self.drain_queue(at, session, out);
    }

    pub(super) fn build_reply(&self, kind: ReplyKind, outcome: ApplyOutcome) -> (ErrorCode, Response) {
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
            (ReplyKind::Reconfig, ApplyOutcome::DataSet { stat }) => {
                (ErrorCode::Ok, Response::GetData { data: self.membership.as_ref().map(|m| m.as_bytes().to_vec()), stat })
            }
            (k, o) => {
                tracing::error!(kind = ?k, outcome = ?o, "internal: reply kind does not match the outcome");
                (ErrorCode::SystemError, Response::Empty)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::jute::{CreateKind, MultiOp, MultiResult, Request, Response};
    use crate::proto::{ErrorCode, Zxid};
    use crate::service::testkit::{create, get, set, Harness, MAX_TIMEOUT_MS};
    use crate::service::Mode;
    use crate::txn::TxnOp;

    #[test]
    fn create_then_set_data_bumps_the_version_and_mzxid() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        let (hdr, resp) = h.call(c, &create("/a", b"one"));
        assert_eq!((hdr.err, resp), (0, Response::Create { path: "/a".into() }));
        let created_at = hdr.zxid;
        let (hdr, resp) = h.call(c, &set("/a", b"two", 0));
        assert_eq!(hdr.err, 0);
        let Response::Stat(stat) = resp else { panic!("setData answers a Stat: {resp:?}") };
        assert_eq!((stat.version, stat.czxid, stat.mzxid, stat.data_length), (1, created_at, hdr.zxid, 3));
        assert!(hdr.zxid > created_at, "every write takes the next zxid");
        let (_, resp) = h.call(c, &get("/a", false));
        let Response::GetData { data, stat } = resp else { panic!("{resp:?}") };
        assert_eq!((data.as_deref(), stat.version), (Some(&b"two"[..]), 1));
    }

    #[test]
    fn a_stale_version_is_bad_version_and_a_missing_node_no_node() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        h.call(c, &create("/a", b""));
        h.call(c, &set("/a", b"x", 0));
        let (hdr, _) = h.call(c, &set("/a", b"y", 0));
        assert_eq!(hdr.err, ErrorCode::BadVersion.code());
        let (hdr, _) = h.call(c, &Request::Delete { path: "/nope".into(), version: -1 });
        assert_eq!(hdr.err, ErrorCode::NoNode.code());
        let (hdr, _) = h.call(c, &create("/a", b""));
        assert_eq!(hdr.err, ErrorCode::NodeExists.code());
        let (_, resp) = h.call(c, &get("/a", false));
        assert!(matches!(resp, Response::GetData { data: Some(d), .. } if d == b"x"), "failed writes change nothing");
    }

    #[test]
    fn standalone_logs_each_write_before_answering_it() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        let logged = h.out.persisted.len();
        let (hdr, _) = h.call(c, &create("/a", b""));
        let txn = h.out.persisted.last().expect("persisted");
        assert_eq!(h.out.persisted.len(), logged + 1);
        assert_eq!((txn.header.zxid, &txn.header.session), (Zxid(hdr.zxid), &txn.header.session));
        assert!(matches!(txn.op, TxnOp::Create { .. }));
        // A failed write is answered without a txn.
        h.call(c, &create("/a", b""));
        assert_eq!(h.out.persisted.len(), logged + 1);
    }

    #[test]
    fn multi_is_all_or_nothing() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        let ops = vec![
            MultiOp::Create(match create("/m", b"") {
                Request::Create(r) => r,
                _ => unreachable!(),
            }),
            MultiOp::Delete { path: "/missing".into(), version: -1 },
        ];
        let (hdr, resp) = h.call(c, &Request::Multi(ops));
        assert_eq!(hdr.err, 0, "a multi answers Ok with per-op results");
        let Response::Multi(results) = resp else { panic!("{resp:?}") };
        assert_eq!(
            results,
            vec![MultiResult::Error(ErrorCode::Ok.code()), MultiResult::Error(ErrorCode::NoNode.code())],
            "the op that would have run is rolled back"
        );
        let (hdr, _) = h.call(c, &get("/m", false));
        assert_eq!(hdr.err, ErrorCode::NoNode.code());
    }

    #[test]
    fn a_leader_answers_a_write_only_when_it_commits() {
        let mut h = Harness::in_mode(Mode::Leader);
        let c = h.accept();
        h.send_connect(c, crate::proto::SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        h.commit_proposed();
        assert!(h.connect_response(c).is_some());
        let xid = h.send(c, &create("/a", b""));
        assert!(h.replies(c).is_empty(), "proposed, not committed");
        assert!(h.out.persisted.is_empty(), "a leader logs through replication, not here");
        assert_eq!(h.svc.outstanding(), 1);
        let txn = h.commit_proposed();
        let got = h.replies(c);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.xid, got[0].0.zxid, got[0].0.err), (xid, txn.header.zxid.0, 0));
        assert_eq!(h.svc.outstanding(), 0);
    }

    #[test]
    fn a_leader_logs_a_failed_write_so_replies_keep_their_order() {
        let mut h = Harness::in_mode(Mode::Leader);
        let c = h.accept();
        h.send_connect(c, crate::proto::SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        h.commit_proposed();
        h.connect_response(c);
        h.send(c, &Request::Delete { path: "/nope".into(), version: -1 });
        assert_eq!(h.out.proposed.last().map(|t| &t.op), Some(&TxnOp::Error { err: ErrorCode::NoNode }));
        h.commit_proposed();
        assert_eq!(h.replies(c)[0].0.err, ErrorCode::NoNode.code());
    }

    #[test]
    fn a_read_behind_a_write_in_flight_waits_for_it() {
        let mut h = Harness::in_mode(Mode::Leader);
        let c = h.accept();
        h.send_connect(c, crate::proto::SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        h.commit_proposed();
        h.connect_response(c);
        let w = h.send(c, &create("/a", b"v"));
        let r = h.send(c, &get("/a", false));
        assert!(h.replies(c).is_empty(), "the read must see the write: it waits");
        assert_eq!(h.svc.outstanding(), 2);
        h.commit_proposed();
        let got = h.replies(c);
        let xids: Vec<i32> = got.iter().map(|(hdr, _)| hdr.xid).collect();
        assert_eq!(xids, vec![w, r], "replies in request order");
        assert!(matches!(&got[1].1, Response::GetData { data: Some(d), .. } if d == b"v"));
    }

    #[test]
    fn writes_refused_by_the_disk_are_system_errors() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        h.svc.set_writes_refused(Some("disk full".into()));
        let (hdr, _) = h.call(c, &create("/a", b""));
        assert_eq!(hdr.err, ErrorCode::SystemError.code());
        let (hdr, _) = h.call(c, &get("/", false));
        assert_eq!(hdr.err, 0, "reads still work");
        h.svc.set_writes_refused(None);
        assert_eq!(h.call(c, &create("/a", b"")).0.err, 0);
    }

    #[test]
    fn update_latency_runs_on_the_step_clock_from_request_to_commit() {
        let mut h = Harness::in_mode(Mode::Leader);
        let c = h.accept();
        h.send_connect(c, crate::proto::SessionId(0), vec![0; 16], MAX_TIMEOUT_MS);
        h.commit_proposed();
        h.connect_response(c);
        h.send(c, &crate::service::testkit::create_as(CreateKind::Create2, "/a", b"", 0));
        h.advance(7);
        h.commit_proposed();
        let v = h.svc.metrics().update_latency.values();
        assert_eq!((v.count, v.max), (1, 7_000), "7 ms between the request's step and its commit's");
    }
}

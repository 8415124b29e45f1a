//! The replica core (sans-IO): one server's whole protocol, the ZooKeeper service and, in an
//! ensemble, the replication core (`zab`) and the glue between them, stepped as
//! `step(now, input, &mut outputs)`.
//!
//! The event loop owns sockets, timers and files and decides nothing: it turns readiness
//! into `Input`s and performs `Output`s in the order they come. Storage sits below the
//! loop. A simulator can run whole ensembles of replicas with clients, because nothing in
//! here reads a clock, touches a socket or a file.
//!
//! Contract with the loop:
//! - Outputs are performed in order. `Output::Append` goes to the log; nothing that is
//!   output after an append may reach its peer or client before that append is durable
//!   (the loop holds such client output until the sync covering it completes; in an
//!   ensemble, commits and replies already wait for a quorum's fsyncs in `zab`).
//! - `Input::LogDurable { zxid }` reports how far the local log is durable, in any turn.
//! - `Output::TruncateLog` and `Output::LoadSnapshot` are answered with `Input::Restored`
//!   (the rebuilt state) before anything else is stepped; `Output::PersistEpoch` is durable
//!   before the loop steps again.
//! - `Output::SendSnapshot { to, zxid }`: the loop streams the snapshot file at `zxid` (see
//!   `zab`'s module doc), making one with `snapshot_now` when `zxid` is the current state
//!   and none is on disk, and answers `Input::SnapshotSent` / `SnapshotUnavailable`.
//! - `next_deadline()` is when `Input::Tick` is due at the latest.
//!
//! Modes: the service serves clients by the core's role (`sync_mode`): leader, follower,
//! not serving, or read-only after `read_only_after` ms without a quorum.

mod outbox;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::peer::{ConfigGossip, Notification, QuorumMsg};
use crate::proto::{Id, Millis, ServerId, Zxid};
use crate::reconfig::Membership;
use crate::service::{ClientId, Mode, Service};
use crate::session::SessionTable;
use crate::tree::DataTree;
use crate::txn::{Txn, TxnHeader};
use crate::zab::{self, Action, Role, Zab};

use outbox::Collect;

/// The clocks a step reads; shared with the service, which takes them as they are.
pub use crate::proto::Now;

/// Everything that can happen to a replica.
pub enum Input<'a> {
    /// Timers (sessions, reaping, elections, pings); due at `next_deadline()`.
    Tick,
    /// A client connection was accepted.
    ClientConnected { client: ClientId, addr: String },
    /// The connection proved an identity below the protocol (TLS: ZooKeeper's `x509` id
    /// from its client certificate); its session gets it.
    ClientAuthenticated { client: ClientId, id: Id },
    /// One complete client frame, its length prefix stripped.
    ClientFrame { client: ClientId, frame: &'a [u8] },
    /// A client connection is gone (closed by either side, or failed).
    ClientGone { client: ClientId },
    /// An election notification from another server.
    Election(Notification),
    /// A quorum-port message: from the follower (at the leader) or from the leader.
    Quorum { from: ServerId, msg: QuorumMsg },
    /// The quorum connection with `peer` is up / is gone.
    QuorumConnected { peer: ServerId },
    QuorumDisconnected { peer: ServerId },
    /// The local log is durable up to `zxid`.
    LogDurable { zxid: Zxid },
    /// After `TruncateLog` or `LoadSnapshot`: the rebuilt state.
    Restored { tree: DataTree, sessions: SessionTable },
    /// A complete snapshot of the applied state at `zxid` is on disk.
    SnapshotWritten { zxid: Zxid },
    /// There is no snapshot at `zxid` after all.
    SnapshotUnavailable { zxid: Zxid },
    /// Leader: the last chunk of the snapshot for `to` is on its socket.
    SnapshotSent { to: ServerId },
    /// Storage: writes must stop (`Some(reason)`: the disk is full or failing) or may resume.
    WritesRefused(Option<String>),
}

/// Everything a replica asks of the world, in the order it must happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Bytes for a client connection (replies and notifications, framed). Dropped by the
    /// loop if that connection is gone.
    ToClient { client: ClientId, bytes: Bytes },
    /// Close a client connection once what was queued for it is written.
    CloseClient { client: ClientId },
    /// Append a txn to the local log.
    Append(Txn),
    /// Record the replication epochs durably before the next step.
    PersistEpoch { accepted: u32, current: u32 },
    /// Drop log records above the zxid and rebuild the state (then `Input::Restored`).
    TruncateLog(Zxid),
    SendElection { to: ServerId, msg: Notification },
    SendQuorum { to: ServerId, msg: QuorumMsg },
    /// Follower: dial the leader's quorum port.
    ConnectQuorum { leader: ServerId },
    CloseQuorum { peer: ServerId },
    /// Leader: stream the snapshot at `zxid` to `to`.
    SendSnapshot { to: ServerId, zxid: Zxid },
    /// Follower: a snapshot from the leader starts arriving / continues / is complete
    /// (verify and install it, then `Input::Restored`).
    SnapshotBegin { zxid: Zxid, size: u64 },
    SnapshotChunk(Vec<u8>),
    LoadSnapshot { zxid: Zxid },
    /// The replication role changed (for logs and metrics; client connections are closed
    /// by `CloseClient`s of their own).
    RoleChanged(Role),
    /// The service started or stopped serving as a leader or follower (metrics).
    ServingChanged(bool),
    /// Leader: a txn was proposed (metrics: proposal counts, quorum latency).
    Proposed { zxid: Zxid },
    /// A committed txn was applied here (every role; metrics, and the simulator's checks).
    Committed(TxnHeader),
    /// The ensemble's members: the loop learns the peer addresses of new members. When
    /// `committed` (a reconfig committed, or a replayed one became known committed), the
    /// loop also records it durably as the committed configuration (the dynamic config
    /// file ZooKeeper writes, which a restart starts from); otherwise it is a newer
    /// membership the state holds that may not have committed (`reconfig::Recovered`).
    Membership { members: Membership, committed: bool },
}

/// The replication side of a replica.
struct Ensemble {
    zab: Zab,
    /// `readonlymode.enabled`: how long without a quorum before serving read-only clients.
    read_only_after: Option<Millis>,
    /// Since when this server has had no leader to serve with (None while serving).
    not_serving_since: Option<Millis>,
    /// Highest zxid known durable.
    synced: Zxid,
    /// The last committed membership (what the config files hold). The service shows the
    /// newest its state holds, which may be a replayed change not yet known committed.
    committed: Membership,
    /// `committed` is known from a commit: an applied reconfig, a replayed one a leader
    /// then committed, a peer's gossip, or a recorded one the log holds too. A config file
    /// alone is not: an operator readying a server to join writes the ensemble's membership
    /// plus that server under the ensemble's version, as ZooKeeper's docs have it, and a
    /// server with an older membership would take that from the joiner's votes.
    confirmed: bool,
    /// Inputs for `zab` made inside this step (proposals, forwards, sync reports).
    inputs: VecDeque<zab::Input>,
}

/// One server's protocol state.
pub struct Replica {
    service: Service,
    ens: Option<Ensemble>,
    /// Client bytes are encoded here and cut into `Output::ToClient` (capacity reused).
    scratch: BytesMut,
    actions: Vec<Action>,
}

/// Inputs a step may make for itself (each one's actions may queue more, never without end).
const INTERNAL_STEPS_MAX: usize = 100_000;

impl Replica {
    /// A standalone server: the service alone.
    pub fn standalone(service: Service) -> Replica {
        Replica { service, ens: None, scratch: BytesMut::new(), actions: Vec::new() }
    }

    /// An ensemble member. `committed`: the last committed membership, from the config
    /// files; `zab`'s configuration holds it, with any newer change the log replayed as
    /// proposed (see `replayed_config`). `snapshot`: the newest snapshot on disk, which a
    /// SNAP can send as it is. `read_only_after`: `readonlymode.enabled`'s wait.
    pub fn ensemble(
        mut service: Service,
        zab: Zab,
        committed: Membership,
        snapshot: Option<Zxid>,
        read_only_after: Option<Millis>,
    ) -> Replica {
        // Gossiped in votes only once the state confirms it (see `Ensemble::confirmed`).
        let confirmed = committed.version == 0 || crate::reconfig::held(service.tree()).as_ref() == Some(&committed);
        // Shown: the committed membership, unless the state holds a newer one.
        service.set_membership(committed.render());
        // Until the election settles nobody serves clients.
        service.set_initial_mode(Mode::NotServing);
        let synced = zab.last_logged();
        let mut inputs = VecDeque::new();
        if let Some(zxid) = snapshot {
            inputs.push_back(zab::Input::SnapshotWritten { zxid });
        }
        let ens = Ensemble { zab, read_only_after, not_serving_since: Some(0), synced, committed, confirmed, inputs };
        Replica { service, ens: Some(ens), scratch: BytesMut::new(), actions: Vec::new() }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// For `srvr`/`stat` resetting statistics and for snapshots (the tree is frozen, not
    /// changed).
    pub fn service_mut(&mut self) -> &mut Service {
        &mut self.service
    }

    /// The replication core, in an ensemble.
    pub fn zab(&self) -> Option<&Zab> {
        self.ens.as_ref().map(|e| &e.zab)
    }

    /// The `Mode:` of srvr/stat/mntr.
    pub fn mode_name(&self) -> &'static str {
        let Some(ens) = &self.ens else { return "standalone" };
        match (ens.zab.role(), ens.zab.serving()) {
            (Role::Leading { .. }, true) => "leader",
            (Role::Following { .. }, true) if ens.zab.is_observer() => "observer",
            (Role::Following { .. }, true) => "follower",
            _ => "looking",
        }
    }

    /// The latest time `Input::Tick` is due.
    pub fn next_deadline(&self) -> Millis {
        let mut at = self.service.next_deadline();
        if let Some(ens) = &self.ens {
            at = at.min(ens.zab.next_deadline());
            if let Some(ro) = ens.read_only_at().filter(|_| self.service.mode() == Mode::NotServing) {
                at = at.min(ro);
            }
        }
        at
    }

    /// Step with one input; the outputs are appended to `out` in the order they must be
    /// performed.
    pub fn step(&mut self, now: Now, input: Input<'_>, out: &mut Vec<Output>) {
        match input {
            Input::Tick => {
                if now.ms >= self.service.next_deadline() {
                    let mut c = Collect::new(out, &mut self.scratch, self.ens.as_mut().map(|e| &mut e.inputs));
                    self.service.tick(now, &mut c);
                    c.seal();
                }
                if let Some(ens) = self.ens.as_mut() {
                    // A follower reports the sessions its clients kept alive, with its pings.
                    if self.service.mode() == Mode::Follower {
                        let touched = self.service.take_touched();
                        if !touched.is_empty() {
                            ens.inputs.push_back(zab::Input::Touched(touched));
                        }
                    }
                    if now.ms >= ens.zab.next_deadline() {
                        ens.inputs.push_back(zab::Input::Tick);
                    }
                }
            }
            Input::ClientConnected { client, addr } => self.service.client_connected(client, addr, now.wall_ms),
            Input::ClientAuthenticated { client, id } => self.service.client_authenticated(client, id),
            Input::ClientFrame { client, frame } => {
                let mut c = Collect::new(out, &mut self.scratch, self.ens.as_mut().map(|e| &mut e.inputs));
                self.service.client_frame(now, client, frame, &mut c);
                c.seal();
            }
            Input::ClientGone { client } => self.service.client_disconnected(client),
            Input::Election(mut n) => {
                if let Some(gossip) = n.config.take() {
                    self.adopt_gossiped_membership(gossip, out);
                }
                self.zab_input(zab::Input::Election(n))
            }
            // A follower's answers to forwarded syncs go to the service, in stream order
            // with the commits before them.
            Input::Quorum { msg: QuorumMsg::SyncDone { session, cxid, path }, .. } => {
                let mut c = Collect::new(out, &mut self.scratch, self.ens.as_mut().map(|e| &mut e.inputs));
                self.service.sync_done(now, session, cxid, path, &mut c);
                c.seal();
            }
            Input::Quorum { from, msg } => self.zab_input(zab::Input::Quorum { from, msg }),
            Input::QuorumConnected { peer } => self.zab_input(zab::Input::QuorumConnected { peer }),
            Input::QuorumDisconnected { peer } => self.zab_input(zab::Input::QuorumDisconnected { peer }),
            Input::LogDurable { zxid } => match self.ens.as_mut() {
                Some(ens) => {
                    // (Lower only after a TRUNC or SNAP replaced the log; `Restored` set it.)
                    if zxid > ens.synced {
                        ens.synced = zxid;
                        ens.inputs.push_back(zab::Input::LogSynced { zxid });
                    }
                }
                None => self.service.log_durable(zxid, now),
            },
            Input::Restored { tree, sessions } => {
                let last = tree.last_applied();
                // Shown from here: the committed membership, unless the new state holds a
                // newer one (which a TRUNC may just have cut away from what was shown).
                let base = self.ens.as_ref().map(|e| e.committed.render());
                self.service.restore(tree, sessions, base);
                if let Some(ens) = self.ens.as_mut() {
                    ens.synced = last;
                    // A snapshot from the leader may carry a reconfig this server never
                    // applied; a TRUNC may keep one it replayed. Proposed until committed.
                    let logged = self.service.membership().and_then(|t| Membership::parse(t).ok());
                    let replayed = crate::reconfig::recovered(ens.committed.clone(), logged).replayed.map(|m| {
                        out.push(Output::Membership { members: m.clone(), committed: false });
                        replayed_config(&m)
                    });
                    ens.inputs.push_back(zab::Input::Restored { last_zxid: last, replayed });
                }
            }
            Input::SnapshotWritten { zxid } => self.zab_input(zab::Input::SnapshotWritten { zxid }),
            Input::SnapshotUnavailable { zxid } => self.zab_input(zab::Input::SnapshotUnavailable { zxid }),
            Input::SnapshotSent { to } => self.zab_input(zab::Input::SnapshotSent { to }),
            Input::WritesRefused(reason) => self.service.set_writes_refused(reason),
        }
        self.drive(now, out);
    }

    fn zab_input(&mut self, input: zab::Input) {
        if let Some(ens) = self.ens.as_mut() {
            ens.inputs.push_back(input);
        }
    }

    /// Step `zab` with every queued input, performing its actions, until quiet; keep the
    /// service's mode in line with the role after each.
    fn drive(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.ens.is_none() {
            return;
        }
        // Time alone can change the mode (read-only after a while without a quorum).
        self.sync_mode(now, out);
        for _ in 0..INTERNAL_STEPS_MAX {
            let Some(ens) = self.ens.as_mut() else { return };
            let Some(input) = ens.inputs.pop_front() else { return };
            if let zab::Input::Propose(txn) = &input {
                out.push(Output::Proposed { zxid: txn.header.zxid });
            }
            let mut actions = std::mem::take(&mut self.actions);
            ens.zab.step(now.ms, input, &mut actions);
            for a in actions.drain(..) {
                self.perform(now, a, out);
            }
            self.actions = actions;
            self.sync_mode(now, out);
        }
    }

    /// A `zab` action: the service's share is done here, the world's becomes an output.
    fn perform(&mut self, now: Now, action: Action, out: &mut Vec<Output>) {
        let o = match action {
            Action::SendElection { to, mut msg } => {
                // A membership a reconfig made travels with every vote, for servers that
                // missed it (the static config's, version 0, everybody has); only one known
                // from a commit (`Ensemble::confirmed`).
                msg.config = self
                    .ens
                    .as_ref()
                    .filter(|e| e.committed.version > 0 && e.confirmed)
                    .map(|e| ConfigGossip { version: e.committed.version, text: e.committed.render() });
                Output::SendElection { to, msg }
            }
            Action::SendQuorum { to, msg } => Output::SendQuorum { to, msg },
            Action::ConnectQuorum { leader } => Output::ConnectQuorum { leader },
            Action::CloseQuorum { peer } => Output::CloseQuorum { peer },
            Action::Persist(txn) => Output::Append(txn),
            Action::PersistEpoch { accepted, current } => Output::PersistEpoch { accepted, current },
            Action::TruncateLog(zxid) => Output::TruncateLog(zxid),
            Action::SendSnapshot { to, zxid } => Output::SendSnapshot { to, zxid },
            Action::SnapshotBegin { zxid, size } => Output::SnapshotBegin { zxid, size },
            Action::SnapshotChunk(data) => Output::SnapshotChunk(data),
            Action::LoadSnapshot { zxid } => Output::LoadSnapshot { zxid },
            Action::RoleChanged(role) => Output::RoleChanged(role),
            Action::Apply(txn) => {
                out.push(Output::Committed(txn.header.clone()));
                // What committed is the txn's membership (the service may keep a newer
                // one it holds: a joiner's own config).
                let reconfig = match &txn.op {
                    crate::txn::TxnOp::Reconfig { data } => std::str::from_utf8(data).ok().and_then(|t| Membership::parse(t).ok()),
                    _ => None,
                };
                let mut c = Collect::new(out, &mut self.scratch, self.ens.as_mut().map(|e| &mut e.inputs));
                self.service.apply_committed(now, txn, &mut c);
                c.seal();
                if let Some(m) = reconfig {
                    self.membership_committed(None, Some(m));
                }
                return;
            }
            Action::ReplayedConfigCommitted { zxid } => {
                let m = self.membership_committed(Some(out), None);
                debug_assert!(m.is_none_or(|v| v >= zxid.0), "a replayed change is the newest the state holds");
                return;
            }
            Action::Forwarded { from, msg } => {
                let mut c = Collect::new(out, &mut self.scratch, self.ens.as_mut().map(|e| &mut e.inputs));
                self.service.forwarded(now, from, msg, &mut c);
                c.seal();
                return;
            }
            Action::SessionsTouched(list) => {
                self.service.touch_sessions(&list, now.ms);
                return;
            }
            Action::SyncDone { session, cxid, path } => {
                let mut c = Collect::new(out, &mut self.scratch, self.ens.as_mut().map(|e| &mut e.inputs));
                self.service.sync_done(now, session, cxid, path, &mut c);
                c.seal();
                return;
            }
        };
        out.push(o);
    }

    /// The membership the service shows has committed: keep it as the committed one. For a
    /// replayed change (`out` given) the service applied it long ago, so the loop and the
    /// core hear of it here; an applied reconfig told them itself (`membership_changed`).
    /// Returns its version.
    /// `applied`: the membership an applied reconfig txn carries (else the one shown).
    fn membership_committed(&mut self, out: Option<&mut Vec<Output>>, applied: Option<Membership>) -> Option<i64> {
        let ens = self.ens.as_mut()?;
        let m = applied.or_else(|| self.service.membership().and_then(|t| Membership::parse(t).ok()))?;
        if m.version < ens.committed.version {
            // An older reconfig replayed by a DIFF to a server that holds a newer one.
            return None;
        }
        let version = m.version;
        if let Some(out) = out {
            ens.inputs.push_back(zab::Input::Membership { voters: m.voters(), observers: m.observers(), version: Zxid(version) });
            out.push(Output::Membership { members: m.clone(), committed: true });
        }
        ens.committed = m;
        ens.confirmed = true;
        Some(version)
    }

    /// A peer's election message carries its committed membership. A Looking server whose
    /// own is older takes it (ZooKeeper's FastLeaderElection does the same with the config
    /// in a notification): it was committed, so counting in it is what every up-to-date
    /// server does; the txn that made it arrives with the next sync. A server in a role
    /// learns it from its leader instead.
    fn adopt_gossiped_membership(&mut self, gossip: ConfigGossip, out: &mut Vec<Output>) {
        let Some(ens) = self.ens.as_mut() else { return };
        if gossip.version <= ens.committed.version || ens.zab.role() != Role::Looking {
            return;
        }
        let Ok(mut m) = Membership::parse(&gossip.text) else { return };
        if m.members.is_empty() {
            return;
        }
        m.version = gossip.version;
        ens.inputs.push_back(zab::Input::Membership { voters: m.voters(), observers: m.observers(), version: Zxid(m.version) });
        out.push(Output::Membership { members: m.clone(), committed: true });
        ens.committed = m;
        ens.confirmed = true;
        // Shown unless the state holds a newer one (a replayed change, still proposed).
        self.service.set_membership(ens.committed.render());
    }

    /// Keep the service's mode in line with the core's role.
    fn sync_mode(&mut self, now: Now, out: &mut Vec<Output>) {
        let Some(ens) = self.ens.as_mut() else { return };
        // The leader's synced servers, for a reconfig's NewConfigNoQuorum check (compared in
        // place: a set is built only when it changed).
        if !ens.zab.synced_servers().eq(self.service.synced_servers().iter().copied()) {
            self.service.set_synced_servers(ens.zab.synced_servers().collect());
        }
        let serving = match (ens.zab.role(), ens.zab.serving()) {
            (Role::Leading { .. }, true) => Some(Mode::Leader),
            (Role::Following { .. }, true) => Some(Mode::Follower),
            _ => None,
        };
        ens.not_serving_since = match serving {
            Some(_) => None,
            None => Some(ens.not_serving_since.unwrap_or(now.ms)),
        };
        let mode = match serving {
            Some(m) => m,
            None if ens.read_only_at().is_some_and(|t| now.ms >= t) => Mode::ReadOnly,
            None => Mode::NotServing,
        };
        if mode != self.service.mode() {
            out.push(Output::ServingChanged(matches!(mode, Mode::Leader | Mode::Follower)));
            let next = ens.zab.next_zxid();
            let mut c = Collect::new(out, &mut self.scratch, Some(&mut ens.inputs));
            self.service.set_mode(mode, next, now.ms, &mut c);
            c.seal();
        }
    }

    /// Requests this server has in progress.
    pub fn outstanding(&self) -> usize {
        self.service.outstanding()
    }

    /// Leader: proposals waiting for their commit.
    pub fn proposals_in_flight(&self) -> u64 {
        self.ens.as_ref().map_or(0, |e| e.zab.proposals_in_flight())
    }

    /// Whether inputs wait for a step (never after `step` returns, short of the bound).
    pub fn busy(&self) -> bool {
        self.ens.as_ref().is_some_and(|e| !e.inputs.is_empty())
    }

    /// The tree and sessions, for a snapshot (frozen and encoded in slices by storage).
    pub fn tree_for_snapshot(&mut self) -> (&mut DataTree, &SessionTable) {
        self.service.tree_for_snapshot()
    }
}

/// A membership the state holds that is not known committed, as the core counts it: a
/// proposed change (joint quorums) whose commit the core will announce.
pub fn replayed_config(m: &Membership) -> zab::Proposed {
    zab::Proposed { zxid: Zxid(m.version), voters: m.voters(), replayed: true }
}

impl Ensemble {
    /// When a server without a quorum turns read-only, if it will.
    fn read_only_at(&self) -> Option<Millis> {
        Some(self.not_serving_since? + self.read_only_after?)
    }
}

#[cfg(test)]
mod tests;

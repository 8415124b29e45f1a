//! Deterministic whole-cluster simulation of the Zab cores (design.md "Testing pyramid" 2).
//!
//! N `Zab` cores wired through an in-memory network, disk and clock, all driven by one
//! seeded `StdRng`, so a seed replays exactly (`ZAB_SIM_SEED=n` reruns one seed of the
//! randomized test; `ZAB_SIM_TRACE=1` prints every delivery).
//!
//! The model follows what the real transport can do:
//! - election messages travel individually and may be dropped or delayed;
//! - a quorum connection is FIFO; it never loses a single message, only breaks as a whole
//!   (crash, close, partition), losing what was in flight. A break is reported to the
//!   surviving ends (`QuorumDisconnected`), except a "silent" partition break, which only the
//!   timers can notice (a SIGSTOP'ed peer or a cable pulled without FIN);
//! - the disk: `Persist` appends, an fsync some ms later makes the log durable and feeds
//!   `LogSynced`; a crash loses the unsynced tail; epochs are durable at once;
//! - the service: `Apply` appends to the node's applied history (its "tree"); restart,
//!   TRUNC and SNAP rebuild it from the log, as the real service does.
//!
//! Invariants checked continuously: one serving leader per epoch; every node's applied
//! history is a prefix of one global history (committed prefixes never diverge); applied
//! zxids strictly increase; after healing, everything a leader reported committed is in
//! every server's final history, and a leader is elected and serves within a bound.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Action, DurableState, Input, Role, Zab, ZabConfig};
use crate::peer::{Notification, QuorumMsg};
use crate::proto::{Millis, ServerId, SessionId, Zxid};
use crate::txn::{Txn, TxnHeader, TxnOp};

const TICK: Millis = 100;

/// A reconfig txn that makes `voters` the voters (its data as the service renders it).
fn reconfig_txn(zxid: Zxid, voters: &BTreeSet<ServerId>) -> Txn {
    let lines: Vec<String> = voters.iter().map(|v| format!("server.{}=127.0.0.1:{}:{};{}", v.0, 1000 + v.0, 2000 + v.0, 3000 + v.0)).collect();
    let data = format!("{}\nversion={:x}", lines.join("\n"), zxid.0).into_bytes();
    Txn { header: TxnHeader { session: SessionId(0), cxid: 0, zxid, time_ms: 0 }, op: TxnOp::Reconfig { data } }
}

fn txn(zxid: Zxid, data: u64) -> Txn {
    Txn {
        header: TxnHeader { session: SessionId(0), cxid: 0, zxid, time_ms: 0 },
        op: TxnOp::SetData { path: "/k".into(), data: Some(data.to_be_bytes().to_vec()), version: 0 },
    }
}

#[derive(Clone, Debug, Default)]
struct Disk {
    log: Vec<Txn>,
    synced: usize,
    accepted: u32,
    current: u32,
}

impl Disk {
    fn last(&self) -> Zxid {
        self.log.last().map_or(Zxid::ZERO, |t| t.header.zxid)
    }
}

struct Node {
    id: ServerId,
    core: Option<Zab>,
    incarnation: u64,
    disk: Disk,
    /// The service's applied history.
    tree: Vec<Txn>,
    fsync_pending: bool,
    /// Snapshot files on disk (zxids of applied states), as the loop reports them.
    snaps: Vec<Zxid>,
    /// A SNAP arriving: its zxid and the bytes so far.
    receiving: Option<(Zxid, Vec<u8>)>,
    /// The committed membership recorded on disk (the dynamic config file): written when
    /// the service applies a reconfig or the core announces a replayed one committed, in
    /// an event of its own that a crash can pre-empt. `None`: the static config.
    config_file: Option<(Zxid, BTreeSet<ServerId>)>,
}

#[derive(Debug)]
enum Ev {
    Election { to: ServerId, msg: Notification },
    /// On the connection `conn` = (follower, leader), generation `gen`.
    Quorum { to: ServerId, from: ServerId, conn: (ServerId, ServerId), gen: u64, msg: QuorumMsg },
    Connected { conn: (ServerId, ServerId), gen: u64 },
    Disconnected { to: ServerId, peer: ServerId, conn: (ServerId, ServerId), gen: u64 },
    Fsync { node: ServerId, incarnation: u64 },
    Restored { node: ServerId, incarnation: u64, last: Zxid },
    /// A snapshot job of the applied state at `zxid` ended.
    SnapshotWritten { node: ServerId, incarnation: u64, zxid: Zxid },
    /// The leader's loop handed the last chunk of `to`'s snapshot to the socket.
    SnapshotSent { node: ServerId, incarnation: u64, to: ServerId },
    Client,
    /// The service applied a reconfig (or a replayed one is known committed): it goes to
    /// the config file, and the core takes its members.
    Membership { node: ServerId, incarnation: u64, zxid: Zxid, voters: BTreeSet<ServerId> },
}

#[derive(Debug)]
struct Conn {
    gen: u64,
    open: bool,
    /// Last scheduled delivery per direction (0: follower→leader, 1: leader→follower): FIFO.
    last_at: [Millis; 2],
}

/// What happens to election messages from one server to another (scenario tests).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum LinkRule {
    Drop,
    /// Delivered this much later than usual.
    Delay(Millis),
}

/// Which sync a follower received (for the scenario tests).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum SyncKind {
    Diff,
    Trunc,
    Snap,
}

/// The newest voter change in `state` (the replayed log, or a rebuilt state) if it is newer
/// than the config file's: proposed, not known committed (`reconfig::Recovered`).
fn replayed(state: &[Txn], file: Option<Zxid>) -> Option<super::Proposed> {
    let (zxid, voters) = state.iter().rev().find_map(|t| super::reconfig_voters(t).map(|v| (t.header.zxid, v)))?;
    file.is_none_or(|f| zxid > f).then_some(super::Proposed { zxid, voters, replayed: true })
}

struct Sim {
    seed: u64,
    rng: StdRng,
    now: Millis,
    cfg: ZabConfig,
    nodes: Vec<Node>,
    queue: BTreeMap<(Millis, u64), Ev>,
    seq: u64,
    conns: BTreeMap<(ServerId, ServerId), Conn>,
    next_gen: u64,
    cut: BTreeSet<(ServerId, ServerId)>,
    drop_election: f64,
    /// Per (from, to): election messages dropped or delayed (one direction only).
    election_rules: BTreeMap<(ServerId, ServerId), LinkRule>,
    /// (when, by, peer) of every `CloseQuorum` a core asked for.
    closes: Vec<(Millis, ServerId, ServerId)>,
    /// FOLLOWERINFOs delivered to a server that was still Looking.
    early_infos: u64,
    /// (when, server, role) of every role change.
    roles: Vec<(Millis, ServerId, Role)>,
    /// The longest applied history any node has reached.
    history: Vec<Txn>,
    leaders: BTreeMap<u32, ServerId>,
    /// Txns a leader reported committed (applied): the clients' acknowledged writes.
    acked: BTreeMap<Zxid, Txn>,
    syncs: Vec<(ServerId, SyncKind)>,
    client_on: bool,
    next_data: u64,
    steps: u64,
    crashes: u64,
    trace: bool,
    /// Servers that start with a config listing the voters and themselves (joining by
    /// reconfig); the others start with `cfg.voters`. A node's voters are then those of the
    /// last reconfig in its applied history, as the service tells the core.
    joiners: BTreeSet<ServerId>,
    /// A voter change the workload proposes once the joiners follow (its voters).
    join_to: Option<BTreeSet<ServerId>>,
}

impl Sim {
    fn new(seed: u64, n: u64, committed_log_max: usize) -> Sim {
        Sim::with_observers(seed, n, 0, committed_log_max)
    }

    /// `n` voters (ids 1..=n) and `observers` observers (the next ids).
    fn with_observers(seed: u64, n: u64, observers: u64, committed_log_max: usize) -> Sim {
        let voters: BTreeSet<ServerId> = (1..=n).map(ServerId).collect();
        let observer_ids: BTreeSet<ServerId> = (n + 1..=n + observers).map(ServerId).collect();
        let cfg = ZabConfig {
            me: ServerId(0),
            voters: voters.clone(),
            proposed: None,
            observers: observer_ids.clone(),
            tick_ms: TICK,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait_ms: 20,
            committed_log_max,
            planted: Default::default(),
        };
        let nodes = voters
            .iter()
            .chain(observer_ids.iter())
            .map(|&id| Node {
                id,
                core: None,
                incarnation: 0,
                disk: Disk::default(),
                tree: vec![],
                fsync_pending: false,
                snaps: vec![],
                receiving: None,
                config_file: None,
            })
            .collect();
        Sim {
            seed,
            rng: StdRng::seed_from_u64(seed),
            now: 0,
            cfg,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            conns: BTreeMap::new(),
            next_gen: 1,
            cut: BTreeSet::new(),
            drop_election: 0.0,
            election_rules: BTreeMap::new(),
            closes: vec![],
            early_infos: 0,
            roles: vec![],
            history: vec![],
            leaders: BTreeMap::new(),
            acked: BTreeMap::new(),
            syncs: vec![],
            client_on: false,
            next_data: 1,
            steps: 0,
            crashes: 0,
            trace: std::env::var_os("ZAB_SIM_TRACE").is_some(),
            joiners: BTreeSet::new(),
            join_to: None,
        }
    }

    /// Give node `id` a log (all synced) and epochs before it starts.
    fn preload(&mut self, id: u64, log: Vec<Txn>, current: u32) {
        let n = &mut self.nodes[id as usize - 1];
        n.disk = Disk { synced: log.len(), log, accepted: current, current };
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.restart(ServerId(i as u64 + 1));
        }
    }

    fn node(&mut self, id: ServerId) -> &mut Node {
        &mut self.nodes[id.0 as usize - 1]
    }

    fn core(&self, id: ServerId) -> Option<&Zab> {
        self.nodes[id.0 as usize - 1].core.as_ref()
    }

    fn schedule(&mut self, at: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn delay(&mut self) -> Millis {
        self.rng.gen_range(1..=8)
    }

    fn linked(&self, a: ServerId, b: ServerId) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    fn alive(&self, id: ServerId) -> bool {
        self.nodes[id.0 as usize - 1].core.is_some()
    }

    // ---- faults ----

    fn crash(&mut self, id: ServerId) {
        if self.trace {
            eprintln!("{:>7} CRASH {id}", self.now);
        }
        self.crashes += 1;
        let n = self.node(id);
        n.core = None;
        n.incarnation += 1;
        n.tree.clear();
        n.fsync_pending = false;
        n.receiving = None;
        let synced = n.disk.synced;
        n.disk.log.truncate(synced);
        let last = n.disk.last();
        n.snaps.retain(|z| *z <= last);
        // The kernel resets its connections: the peers notice.
        let keys: Vec<_> = self.conns.keys().filter(|(f, l)| *f == id || *l == id).copied().collect();
        for k in keys {
            self.break_conn(k, true);
        }
    }

    fn restart(&mut self, id: ServerId) {
        let mut cfg = self.cfg.clone();
        cfg.me = id;
        if self.joiners.contains(&id) {
            cfg.voters.insert(id);
        }
        // As node::run: the committed voters are the config file's; a newer change the
        // log replays stays proposed until a commit covers it.
        let file = self.node(id).config_file.clone();
        if let Some((_, v)) = &file {
            cfg.voters = v.clone();
        }
        let log = self.node(id).disk.log.clone();
        cfg.proposed = replayed(&log, file.as_ref().map(|f| f.0));
        let now = self.now;
        let n = self.node(id);
        if n.core.is_some() {
            return;
        }
        let recent_from = n.disk.log.len().saturating_sub(cfg.committed_log_max);
        let recent = n.disk.log[recent_from..].to_vec();
        let durable = DurableState { accepted_epoch: n.disk.accepted, current_epoch: n.disk.current, last_logged: n.disk.last() };
        // Recovery replays the whole log into the tree.
        n.tree = n.disk.log.clone();
        n.core = Some(Zab::new(cfg, durable, recent, now));
        // The loop tells a new core about the newest snapshot recovery found.
        if let Some(&zxid) = n.snaps.iter().max() {
            let inc = n.incarnation;
            self.schedule(now, Ev::SnapshotWritten { node: id, incarnation: inc, zxid });
        }
        if self.trace {
            eprintln!("{:>7} START {id} {durable:?}", self.now);
        }
    }

    fn partition(&mut self, a: ServerId, b: ServerId) {
        self.cut.insert((a.min(b), a.max(b)));
        for k in [(a, b), (b, a)] {
            if self.conns.get(&k).is_some_and(|c| c.open) {
                let loud = self.rng.gen_bool(0.5);
                self.break_conn(k, loud);
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// The connection dies with whatever was in flight; `loud`: both ends are told.
    fn break_conn(&mut self, k: (ServerId, ServerId), loud: bool) {
        let Some(c) = self.conns.get_mut(&k) else { return };
        if !c.open {
            return;
        }
        c.open = false;
        let gen = c.gen;
        if loud {
            let (f, l) = k;
            let (d1, d2) = (self.delay(), self.delay());
            self.schedule(self.now + d1, Ev::Disconnected { to: f, peer: l, conn: k, gen });
            self.schedule(self.now + d2, Ev::Disconnected { to: l, peer: f, conn: k, gen });
        }
    }

    // ---- driving ----

    fn step_node(&mut self, id: ServerId, input: Input) {
        let now = self.now;
        let voter = self.cfg.is_voter(id) || self.joiners.contains(&id);
        let Some(core) = self.node(id).core.as_mut() else { return };
        let mut out = Vec::new();
        core.step(now, input, &mut out);
        if let Role::Leading { epoch } = core.role() {
            assert!(voter, "seed {}: observer {id} leads", self.seed);
            if core.serving() {
                let prev = *self.leaders.entry(epoch).or_insert(id);
                assert_eq!(prev, id, "seed {}: two leaders in epoch {epoch}", self.seed);
            }
        }
        for a in out {
            self.perform(id, a);
        }
    }

    fn perform(&mut self, me: ServerId, a: Action) {
        if self.trace {
            eprintln!("{:>7} {me} -> {a:?}", self.now);
        }
        match a {
            Action::SendElection { to, msg } => {
                if self.linked(me, to) && !self.rng.gen_bool(self.drop_election) {
                    let d = self.delay();
                    let extra = match self.election_rules.get(&(me, to)) {
                        Some(LinkRule::Drop) => return,
                        Some(LinkRule::Delay(x)) => *x,
                        None => 0,
                    };
                    self.schedule(self.now + d + extra, Ev::Election { to, msg });
                }
            }
            Action::SendQuorum { to, msg } => self.send_quorum(me, to, msg),
            Action::ReplayedConfigCommitted { zxid } => {
                let seed = self.seed;
                let n = self.node(me);
                let voters = n.tree.iter().rev().find(|t| t.header.zxid == zxid).and_then(super::reconfig_voters);
                let voters = voters.unwrap_or_else(|| panic!("seed {seed}: {me} announced {zxid} committed, not a reconfig it holds"));
                let inc = n.incarnation;
                self.schedule(self.now, Ev::Membership { node: me, incarnation: inc, zxid, voters });
            }
            Action::ConnectQuorum { leader } => self.connect(me, leader),
            Action::CloseQuorum { peer } => {
                self.closes.push((self.now, me, peer));
                self.break_conn((me, peer), true);
                self.break_conn((peer, me), true);
            }
            Action::Persist(t) => {
                let n = self.node(me);
                assert!(t.header.zxid > n.disk.last(), "persisted zxids must increase");
                n.disk.log.push(t);
                if !n.fsync_pending {
                    n.fsync_pending = true;
                    let inc = n.incarnation;
                    let d = self.rng.gen_range(0..=3);
                    self.schedule(self.now + d, Ev::Fsync { node: me, incarnation: inc });
                }
            }
            Action::PersistEpoch { accepted, current } => {
                let d = &mut self.node(me).disk;
                assert!(accepted >= d.accepted && current >= d.current, "epochs never go back");
                (d.accepted, d.current) = (accepted, current);
            }
            Action::TruncateLog(z) => {
                let n = self.node(me);
                n.disk.log.retain(|t| t.header.zxid <= z);
                n.disk.synced = n.disk.synced.min(n.disk.log.len());
                n.tree = n.disk.log.clone();
                n.snaps.retain(|s| *s <= z);
                let (last, inc) = (n.disk.last(), n.incarnation);
                self.schedule(self.now, Ev::Restored { node: me, incarnation: inc, last });
            }
            Action::SendSnapshot { to, zxid } => {
                let seed = self.seed;
                let n = &mut self.nodes[me.0 as usize - 1];
                let applied = n.tree.last().map_or(Zxid::ZERO, |t| t.header.zxid);
                // The loop sends a snapshot it has, or makes one of the current state.
                assert!(
                    zxid == applied || n.snaps.contains(&zxid),
                    "seed {seed}: SNAP at {zxid}: neither applied ({applied}) nor a snapshot on disk ({:?})",
                    n.snaps
                );
                if !n.snaps.contains(&zxid) {
                    n.snaps.push(zxid);
                }
                let upto = n.tree.iter().position(|t| t.header.zxid == zxid).map_or(0, |i| i + 1);
                assert!(zxid == Zxid::ZERO || upto > 0, "seed {seed}: SNAP at {zxid}, not a point of the applied history");
                let bytes = rmp_serde::to_vec(&n.tree[..upto]).expect("txns serialize");
                let inc = n.incarnation;
                self.send_quorum(me, to, QuorumMsg::SnapBegin { zxid, size: bytes.len() as u64 });
                let parts = self.rng.gen_range(1..=3);
                let step = bytes.len().div_ceil(parts).max(1);
                for chunk in bytes.chunks(step) {
                    self.send_quorum(me, to, QuorumMsg::SnapChunk { data: chunk.to_vec() });
                }
                self.send_quorum(me, to, QuorumMsg::SnapEnd);
                // The loop reports the stream done later (paced by the socket).
                let d = self.delay() * 3;
                self.schedule(self.now + d, Ev::SnapshotSent { node: me, incarnation: inc, to });
            }
            Action::SnapshotBegin { zxid, size } => {
                self.node(me).receiving = Some((zxid, Vec::with_capacity(size as usize)));
            }
            Action::SnapshotChunk(data) => {
                let seed = self.seed;
                let r = self.node(me).receiving.as_mut();
                r.unwrap_or_else(|| panic!("seed {seed}: chunk with no snapshot begun")).1.extend_from_slice(&data);
            }
            Action::LoadSnapshot { zxid } => {
                let seed = self.seed;
                let (got, bytes) = self.node(me).receiving.take().unwrap_or_else(|| panic!("seed {seed}: load with nothing received"));
                assert_eq!(got, zxid, "seed {seed}");
                let tree: Vec<Txn> = rmp_serde::from_slice(&bytes).expect("snapshot decodes");
                assert_eq!(tree.last().map_or(Zxid::ZERO, |t| t.header.zxid), zxid);
                let n = self.node(me);
                n.disk.log = tree.clone();
                n.disk.synced = tree.len();
                n.tree = tree;
                n.snaps = vec![zxid];
                let inc = n.incarnation;
                self.schedule(self.now, Ev::Restored { node: me, incarnation: inc, last: zxid });
            }
            Action::Apply(t) => self.apply(me, t),
            Action::RoleChanged(role) => self.roles.push((self.now, me, role)),
            Action::Forwarded { .. } | Action::SessionsTouched(_) | Action::SyncDone { .. } => {}
        }
    }

    fn apply(&mut self, me: ServerId, t: Txn) {
        let seed = self.seed;
        let leading = matches!(self.core(me).map(|c| c.role()), Some(Role::Leading { .. }));
        let n = &mut self.nodes[me.0 as usize - 1];
        if let Some(last) = n.tree.last() {
            assert!(t.header.zxid > last.header.zxid, "seed {seed}: node {me} applied {} after {}", t.header.zxid, last.header.zxid);
        }
        n.tree.push(t.clone());
        let (tree, h) = (&n.tree, &mut self.history);
        let common = tree.len().min(h.len());
        if tree[..common] != h[..common] {
            let i = (0..common).find(|&i| tree[i] != h[i]).unwrap_or(0);
            panic!(
                "seed {seed}: node {me} diverged at index {i}: {:?} vs {:?}",
                tree[i].header.zxid, h[i].header.zxid
            );
        }
        if tree.len() > h.len() {
            h.extend_from_slice(&tree[common..]);
        }
        // Now and then a periodic snapshot of this (durable) state, ending a little later.
        let durable = n.disk.synced.checked_sub(1).map_or(Zxid::ZERO, |i| n.disk.log[i].header.zxid);
        let inc = n.incarnation;
        if t.header.zxid <= durable && self.rng.gen_bool(0.03) {
            let d = self.delay() * 5;
            self.schedule(self.now + d, Ev::SnapshotWritten { node: me, incarnation: inc, zxid: t.header.zxid });
        }
        if let Some(voters) = super::reconfig_voters(&t) {
            self.schedule(self.now, Ev::Membership { node: me, incarnation: inc, zxid: t.header.zxid, voters });
        }
        if leading {
            self.acked.insert(t.header.zxid, t);
        }
    }

    fn send_quorum(&mut self, me: ServerId, to: ServerId, msg: QuorumMsg) {
        // Follower-originated messages travel on the connection `me` dialled.
        let upstream = matches!(
            msg,
            QuorumMsg::FollowerInfo { .. }
                | QuorumMsg::AckEpoch { .. }
                | QuorumMsg::Ack { .. }
                | QuorumMsg::PingReply { .. }
                | QuorumMsg::Request { .. }
                | QuorumMsg::CreateSession { .. }
                | QuorumMsg::Sync { .. }
        );
        let (k, dir) = if upstream { ((me, to), 0) } else { ((to, me), 1) };
        let d = self.delay();
        let now = self.now;
        let Some(c) = self.conns.get_mut(&k) else { return };
        if !c.open {
            return;
        }
        let at = (now + d).max(c.last_at[dir]);
        c.last_at[dir] = at;
        let gen = c.gen;
        self.schedule(at, Ev::Quorum { to, from: me, conn: k, gen, msg });
    }

    fn connect(&mut self, f: ServerId, l: ServerId) {
        let d = self.delay();
        let k = (f, l);
        if !self.alive(l) || !self.linked(f, l) || f == l {
            // Refused (or timed out across a partition).
            let gen = self.next_gen;
            self.next_gen += 1;
            self.conns.insert(k, Conn { gen, open: false, last_at: [0; 2] });
            self.schedule(self.now + d * 3, Ev::Disconnected { to: f, peer: l, conn: k, gen });
            return;
        }
        // A newer connection supersedes an older one (the loop binds the peer to it).
        let gen = self.next_gen;
        self.next_gen += 1;
        self.conns.insert(k, Conn { gen, open: true, last_at: [self.now + d; 2] });
        self.schedule(self.now + d, Ev::Connected { conn: k, gen });
    }

    fn conn_current(&self, k: (ServerId, ServerId), gen: u64, need_open: bool) -> bool {
        self.conns.get(&k).is_some_and(|c| c.gen == gen && (c.open || !need_open))
    }

    fn deliver(&mut self, ev: Ev) {
        if self.trace && !matches!(ev, Ev::Client) {
            eprintln!("{:>7} deliver {ev:?}", self.now);
        }
        match ev {
            Ev::Election { to, msg } => {
                if self.linked(msg.sender, to) {
                    self.step_node(to, Input::Election(msg));
                }
            }
            Ev::Quorum { to, from, conn, gen, msg } => {
                if self.conn_current(conn, gen, true) {
                    let kind = match msg {
                        QuorumMsg::Diff { .. } => Some(SyncKind::Diff),
                        QuorumMsg::Trunc { .. } => Some(SyncKind::Trunc),
                        QuorumMsg::SnapBegin { .. } => Some(SyncKind::Snap),
                        _ => None,
                    };
                    if let Some(k) = kind {
                        self.syncs.push((to, k));
                    }
                    if matches!(msg, QuorumMsg::FollowerInfo { .. }) && self.core(to).is_some_and(|c| c.role() == Role::Looking) {
                        self.early_infos += 1;
                    }
                    self.step_node(to, Input::Quorum { from, msg });
                }
            }
            Ev::Connected { conn, gen } => {
                if self.conn_current(conn, gen, true) {
                    self.step_node(conn.0, Input::QuorumConnected { peer: conn.1 });
                }
            }
            Ev::Disconnected { to, peer, conn, gen } => {
                if self.conn_current(conn, gen, false) {
                    self.step_node(to, Input::QuorumDisconnected { peer });
                }
            }
            Ev::Fsync { node, incarnation } => {
                let n = self.node(node);
                if n.incarnation != incarnation || n.core.is_none() {
                    return;
                }
                n.fsync_pending = false;
                n.disk.synced = n.disk.log.len();
                let last = n.disk.last();
                if last > Zxid::ZERO {
                    self.step_node(node, Input::LogSynced { zxid: last });
                }
            }
            Ev::Restored { node, incarnation, last } => {
                if self.node(node).incarnation == incarnation {
                    // A newer change the rebuilt state holds is proposed, as the replica
                    // tells the core.
                    let tree = self.node(node).tree.clone();
                    let file = self.node(node).config_file.as_ref().map(|f| f.0);
                    self.step_node(node, Input::Restored { last_zxid: last, replayed: replayed(&tree, file) });
                }
            }
            Ev::Membership { node, incarnation, zxid, voters } => {
                let n = self.node(node);
                if n.incarnation == incarnation {
                    if n.config_file.as_ref().is_none_or(|f| f.0 < zxid) {
                        n.config_file = Some((zxid, voters.clone()));
                    }
                    self.step_node(node, Input::Membership { voters, observers: self.cfg.observers.clone() });
                }
            }
            Ev::SnapshotWritten { node, incarnation, zxid } => {
                let n = self.node(node);
                // A job whose state a TRUNC or SNAP since replaced left no file.
                let on_disk = zxid == Zxid::ZERO || n.tree.iter().any(|t| t.header.zxid == zxid);
                if n.incarnation == incarnation && on_disk {
                    if !n.snaps.contains(&zxid) {
                        n.snaps.push(zxid);
                    }
                    self.step_node(node, Input::SnapshotWritten { zxid });
                }
            }
            Ev::SnapshotSent { node, incarnation, to } => {
                if self.node(node).incarnation == incarnation {
                    self.step_node(node, Input::SnapshotSent { to });
                }
            }
            Ev::Client => self.client(),
        }
    }

    /// The workload: propose at a serving leader, a bounded number in flight.
    fn client(&mut self) {
        if !self.client_on {
            return;
        }
        let d = self.rng.gen_range(1..=20);
        self.schedule(self.now + d, Ev::Client);
        let leaders: Vec<ServerId> = self
            .nodes
            .iter()
            .filter(|n| n.core.as_ref().is_some_and(|c| c.serving() && matches!(c.role(), Role::Leading { .. })))
            .map(|n| n.id)
            .collect();
        if leaders.is_empty() {
            return;
        }
        let l = leaders[self.rng.gen_range(0..leaders.len())];
        let core = self.core(l).expect("alive");
        if core.last_logged().0 - core.last_committed().0 > 20 && core.last_logged().epoch() == core.last_committed().epoch() {
            return;
        }
        let next = core.next_zxid();
        // As the service does: one reconfig at a time, only with a synced quorum of the new
        // voters (NewConfigNoQuorum otherwise).
        let join = self.join_to.clone().filter(|to| {
            let c = &core.core.cfg;
            let synced: BTreeSet<ServerId> = core.synced_servers().collect();
            c.voters != *to && c.proposed.is_none() && super::majority(to, |id| synced.contains(&id))
        });
        if let Some(to) = join.filter(|_| self.rng.gen_bool(0.05)) {
            self.step_node(l, Input::Propose(reconfig_txn(next, &to)));
            return;
        }
        let t = txn(next, self.next_data);
        self.next_data += 1;
        self.step_node(l, Input::Propose(t));
    }

    fn start_client(&mut self) {
        if !self.client_on {
            self.client_on = true;
            self.schedule(self.now + 1, Ev::Client);
        }
    }

    /// One event or one timer, whichever is first. False when nothing is left before `until`.
    fn step_once(&mut self, until: Millis) -> bool {
        let ev_at = self.queue.keys().next().map(|k| k.0);
        let timer = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref().map(|c| (c.next_deadline(), n.id)))
            .min();
        let t = match (ev_at, timer) {
            (Some(e), Some((d, _))) => e.min(d),
            (Some(e), None) => e,
            (None, Some((d, _))) => d,
            (None, None) => return false,
        };
        if t > until {
            self.now = self.now.max(until);
            return false;
        }
        self.now = self.now.max(t);
        self.steps += 1;
        match timer {
            Some((d, id)) if ev_at.is_none_or(|e| d < e) => self.step_node(id, Input::Tick),
            _ => {
                let (_, ev) = self.queue.pop_first().expect("an event is due");
                self.deliver(ev);
            }
        }
        true
    }

    fn run_for(&mut self, dt: Millis) {
        let until = self.now + dt;
        while self.step_once(until) {
            assert!(self.steps < 50_000_000, "seed {}: runaway simulation", self.seed);
        }
    }

    /// Run until `pred` holds, at most `dt`; returns whether it did.
    fn run_until(&mut self, dt: Millis, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        let until = self.now + dt;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step_once(until) {
                return pred(self);
            }
        }
    }

    // ---- observations ----

    /// The single serving leader every live node follows (and serves under), if any.
    fn stable_leader(&self) -> Option<ServerId> {
        let leaders: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.core.as_ref().is_some_and(|c| c.serving() && matches!(c.role(), Role::Leading { .. })))
            .collect();
        let [l] = leaders[..] else { return None };
        let Role::Leading { epoch } = l.core.as_ref()?.role() else { return None };
        let all = self.nodes.iter().filter_map(|n| n.core.as_ref().map(|c| (n.id, c))).all(|(id, c)| {
            id == l.id || (c.serving() && c.role() == Role::Following { leader: l.id, epoch })
        });
        all.then_some(l.id)
    }

    fn leader_epoch(&self, l: ServerId) -> u32 {
        match self.core(l).map(|c| c.role()) {
            Some(Role::Leading { epoch }) => epoch,
            r => panic!("seed {}: {l} is not leading: {r:?}", self.seed),
        }
    }

    /// Everyone live has applied exactly the leader's log, all committed.
    fn quiescent(&self, l: ServerId) -> bool {
        let Some(lc) = self.core(l) else { return false };
        lc.last_committed() == lc.last_logged()
            && self.nodes.iter().filter(|n| n.core.is_some()).all(|n| {
                let c = n.core.as_ref().expect("filtered");
                c.last_committed() == lc.last_committed() && n.tree.len() == self.nodes[l.0 as usize - 1].tree.len()
            })
    }

    /// Heal everything, wait for a serving leader, commit one more txn everywhere, check
    /// that all histories are equal and hold every acknowledged txn. Returns the leader.
    fn heal_and_check(&mut self, bound: Millis) -> ServerId {
        self.heal();
        self.drop_election = 0.0;
        for i in 1..=self.nodes.len() as u64 {
            self.restart(ServerId(i));
        }
        let seed = self.seed;
        assert!(self.run_until(bound, |s| s.stable_leader().is_some()), "seed {seed}: no stable leader within {bound} ms after healing");
        self.client_on = false;
        let l = self.stable_leader().expect("checked");
        let z = self.core(l).expect("alive").next_zxid();
        let data = self.next_data;
        self.next_data += 1;
        self.step_node(l, Input::Propose(txn(z, data)));
        assert!(self.run_until(bound, |s| s.quiescent(l)), "seed {seed}: probe txn {z} not applied everywhere");
        let reference = self.nodes[l.0 as usize - 1].tree.clone();
        assert_eq!(reference.last().map(|t| t.header.zxid), Some(z));
        for n in &self.nodes {
            assert!(n.tree == reference, "seed {seed}: node {} history differs from the leader's", n.id);
            let zs: BTreeMap<Zxid, &Txn> = n.tree.iter().map(|t| (t.header.zxid, t)).collect();
            for (z, t) in &self.acked {
                assert_eq!(zs.get(z), Some(&t), "seed {seed}: acknowledged {z} lost at node {}", n.id);
            }
        }
        l
    }

    fn random_faults(&mut self, steps: u64) {
        let n = self.nodes.len() as u64;
        let end = self.steps + steps;
        // ZAB_SIM_FAULTS=k multiplies the fault rates (stress runs).
        let scale: f64 = std::env::var("ZAB_SIM_FAULTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
        while self.steps < end {
            let r: f64 = self.rng.gen::<f64>() / scale;
            let pick = ServerId(self.rng.gen_range(1..=n));
            if r < 0.002 {
                if self.alive(pick) {
                    self.crash(pick);
                } else {
                    self.restart(pick);
                }
            } else if r < 0.004 {
                let other = ServerId(self.rng.gen_range(1..=n));
                if other != pick {
                    self.partition(pick, other);
                }
            } else if r < 0.006 {
                self.heal();
            } else if r < 0.008 {
                self.restart(pick);
            } else if r < 0.009 {
                self.drop_election = [0.0, 0.1, 0.5][self.rng.gen_range(0..3)];
            }
            if !self.step_once(self.now + 10 * TICK) {
                // Nothing scheduled soon (all crashed): let time pass.
                self.now += TICK;
                self.steps += 1;
            }
        }
    }
}

fn t(e: u32, c: u32) -> Txn {
    txn(Zxid::new(e, c), (e as u64) << 32 | c as u64)
}

const BOUND: Millis = 200 * TICK;

fn stable(sim: &mut Sim) -> ServerId {
    let seed = sim.seed;
    assert!(sim.run_until(BOUND, |s| s.stable_leader().is_some()), "seed {seed}: no leader");
    sim.stable_leader().expect("checked")
}

/// Design "Replication protocol": among equally up-to-date logs the highest id wins.
#[test]
fn stable_start_elects_highest_id() {
    for n in [3, 5] {
        let mut sim = Sim::new(1, n, 100);
        sim.start_all();
        assert_eq!(stable(&mut sim), ServerId(n));
        sim.start_client();
        sim.run_for(20 * TICK);
        assert!(!sim.acked.is_empty(), "{n} nodes: the leader commits");
        sim.heal_and_check(BOUND);
    }
}

/// Votes order by (epoch, last zxid, id): the most up-to-date log beats a higher id, and
/// its extra txn becomes part of everyone's history (DIFF).
#[test]
fn most_up_to_date_log_wins() {
    let mut sim = Sim::new(2, 3, 100);
    sim.preload(1, vec![t(1, 1), t(1, 2)], 1);
    sim.preload(2, vec![t(1, 1)], 1);
    sim.preload(3, vec![t(1, 1)], 1);
    sim.start_all();
    assert_eq!(stable(&mut sim), ServerId(1));
    assert!(sim.syncs.iter().all(|(_, k)| *k == SyncKind::Diff));
    let l = sim.heal_and_check(BOUND);
    assert_eq!(l, ServerId(1));
    assert_eq!(sim.nodes[1].tree[1], t(1, 2));
}

/// Zab: a leader crash loses no committed txn; the restarted old leader catches up by DIFF
/// and joins the incumbent rather than deposing it (out-of-election answer).
#[test]
fn leader_crash_then_old_leader_rejoins_by_diff() {
    for n in [3, 5] {
        let mut sim = Sim::new(3, n, 1000);
        sim.start_all();
        let old = stable(&mut sim);
        sim.start_client();
        sim.run_for(10 * TICK);
        let acked_before = sim.acked.len();
        assert!(acked_before > 0);
        sim.crash(old);
        let new = stable(&mut sim);
        assert_ne!(new, old);
        let epoch = sim.leader_epoch(new);
        sim.run_for(10 * TICK);
        sim.syncs.clear();
        sim.restart(old);
        assert_eq!(stable(&mut sim), new, "{n} nodes: the incumbent stays");
        assert_eq!(sim.leader_epoch(new), epoch, "no new epoch");
        // DIFF; preceded by a TRUNC when the crash left a logged but uncommitted txn there.
        assert!(
            sim.syncs == vec![(old, SyncKind::Diff)] || sim.syncs == vec![(old, SyncKind::Trunc), (old, SyncKind::Diff)],
            "{n} nodes: {:?}",
            sim.syncs
        );
        assert_eq!(sim.heal_and_check(BOUND), new);
    }
}

fn role_of(sim: &Sim, id: u64) -> Option<Role> {
    sim.core(ServerId(id)).map(|c| c.role())
}

/// Issue 8 part 3, the lone supporter: after the leader dies, server 1 hears 2's vote, adopts
/// it and decides to follow 2 before 2 ever hears 1's agreement (its Looking votes are lost).
/// From then on 2 only gets 1's Following answers. They count (same round, same vote), so 2
/// learns it won at once; counting only Looking peers left 2 Looking until 1 gave up at
/// initLimit (10 ticks here; 2.4 s at tickTime 200 on real processes).
#[test]
fn lone_supporter_that_already_follows_elects_its_leader() {
    let mut sim = Sim::new(7, 3, 100);
    sim.start_all();
    let old = stable(&mut sim);
    assert_eq!(old, ServerId(3));
    sim.start_client();
    sim.run_for(5 * TICK);
    sim.election_rules.insert((ServerId(1), ServerId(2)), LinkRule::Drop);
    let crash_at = sim.now;
    sim.crash(old);
    assert!(sim.run_until(BOUND, |s| matches!(role_of(s, 1), Some(Role::Following { leader: ServerId(2), .. }))));
    assert!(matches!(role_of(&sim, 2), Some(Role::Looking)), "the scenario: 2 has not decided yet");
    // 1's messages flow again; all 2 can get from 1 now is a Following answer.
    sim.election_rules.clear();
    let decided = sim.now;
    assert!(sim.run_until(BOUND, |s| s.stable_leader() == Some(ServerId(2))));
    let took = sim.now - decided;
    assert!(took < 2 * TICK, "2 took {took} ms after 1 followed it (initLimit is {} ms)", 10 * TICK);
    assert!(
        !sim.roles.iter().any(|(t, id, r)| *t > decided && *id == ServerId(1) && *r == Role::Looking),
        "1 never had to give up and re-elect: {:?}",
        sim.roles
    );
    eprintln!("lone supporter: crash -> 1 follows 2 after {} ms; 2 serving {took} ms later", decided - crash_at);
    sim.heal_and_check(BOUND);
}

/// Issue 8 part 3, the early follower: 1 decides first and dials 2 while 2 is still in its
/// finalize wait (1's votes reach 2 late). 2 holds that connection and, on deciding to lead,
/// takes 1 as its first follower at once; closing it made 1 redial a whole tick later.
#[test]
fn follower_that_connects_before_its_leader_decides_is_held() {
    let mut sim = Sim::new(8, 3, 100);
    sim.start_all();
    let old = stable(&mut sim);
    assert_eq!(old, ServerId(3));
    sim.start_client();
    sim.run_for(5 * TICK);
    sim.election_rules.insert((ServerId(1), ServerId(2)), LinkRule::Delay(15));
    let crash_at = sim.now;
    sim.crash(old);
    assert!(sim.run_until(BOUND, |s| s.stable_leader() == Some(ServerId(2))));
    let took = sim.now - crash_at;
    assert!(sim.early_infos >= 1, "the scenario: 1's FOLLOWERINFO reached 2 while 2 was Looking");
    let between: Vec<_> = sim.closes.iter().filter(|(t, by, peer)| *t > crash_at && *peer != old && *by != old).collect();
    assert!(between.is_empty(), "no quorum connection between the survivors was closed: {between:?}");
    assert!(took < TICK, "serving {took} ms after the crash; a redial alone costs a tick ({TICK} ms)");
    sim.heal_and_check(BOUND);
}

/// A follower holding txns the new leader never had (never committed) is TRUNCated back to
/// where the histories agree, then DIFFed.
#[test]
fn follower_with_uncommitted_txns_gets_trunc() {
    let mut sim = Sim::new(4, 3, 100);
    sim.preload(1, vec![t(1, 1), t(1, 2), t(1, 3)], 1);
    sim.preload(2, vec![t(1, 1), t(2, 1)], 2);
    sim.preload(3, vec![t(1, 1), t(2, 1)], 2);
    sim.start_all();
    assert_eq!(stable(&mut sim), ServerId(3));
    assert!(sim.syncs.contains(&(ServerId(1), SyncKind::Trunc)));
    sim.heal_and_check(BOUND);
    assert_eq!(sim.nodes[0].tree[..2], [t(1, 1), t(2, 1)]);
}

/// A follower older than the leader's in-memory history gets a SNAP (then the txns after).
#[test]
fn far_behind_follower_gets_snap() {
    let mut sim = Sim::new(5, 3, 5);
    sim.start_all();
    let l = stable(&mut sim);
    let f = ServerId(if l.0 == 1 { 2 } else { 1 });
    sim.crash(f);
    sim.start_client();
    assert!(sim.run_until(BOUND, |s| s.acked.len() > 30));
    sim.syncs.clear();
    sim.restart(f);
    assert_eq!(stable(&mut sim), l);
    assert_eq!(sim.syncs, vec![(f, SyncKind::Snap)]);
    sim.heal_and_check(BOUND);
}

/// A voter change that was logged but never committed (the leader and the two joiners
/// logged it, then everyone went down) is not a configuration after a restart: the servers
/// that replay it count quorums in the old voters AND the new ones until a leader commits it.
/// Counting in the new voters alone, 1, 4 and 5 (3 of 5) would elect a leader while 2 and
/// 3 (2 of the committed 3) elect another: two serving leaders, two histories.
#[test]
fn a_replayed_uncommitted_voter_change_counts_jointly_after_a_restart() {
    let mut sim = Sim::new(17, 5, 100);
    sim.cfg.voters = (1..=3).map(ServerId).collect();
    sim.joiners = [ServerId(4), ServerId(5)].into();
    let all: BTreeSet<ServerId> = (1..=5).map(ServerId).collect();
    let r = reconfig_txn(Zxid::new(1, 2), &all);
    for id in [1, 4, 5] {
        sim.preload(id, vec![txn(Zxid::new(1, 1), 1), r.clone()], 1);
    }
    for id in [2, 3] {
        sim.preload(id, vec![txn(Zxid::new(1, 1), 1)], 1);
    }
    for a in [ServerId(1), ServerId(4), ServerId(5)] {
        for b in [ServerId(2), ServerId(3)] {
            sim.partition(a, b);
        }
    }
    sim.start_all();
    // A joiner's config file lists the voters and itself (it joins as a non-counting learner).
    let own = |s: &Sim, id: u64| -> BTreeSet<ServerId> { s.cfg.voters.iter().copied().chain((id > 3).then_some(ServerId(id))).collect() };
    for id in [1, 4, 5] {
        let cfg = &sim.core(ServerId(id)).expect("up").core.cfg;
        assert_eq!(cfg.voters, own(&sim, id), "{id}: the committed voters are the config file's");
        assert_eq!(cfg.proposed.as_ref().map(|p| (p.zxid, p.replayed)), Some((r.header.zxid, true)), "{id}");
    }
    let serving = |s: &Sim, ids: &[u64]| ids.iter().any(|&i| s.core(ServerId(i)).is_some_and(|c| c.serving()));
    // 2 and 3 are a majority of the committed voters: they elect a leader and serve.
    assert!(sim.run_until(BOUND, |s| serving(s, &[2, 3])), "the committed majority serves");
    sim.run_for(3 * sim.cfg.init_limit as Millis * TICK);
    assert!(!serving(&sim, &[1, 4, 5]), "1, 4 and 5 are no majority of the committed voters");
    // Healed, the change that never committed is truncated away: the voters stay 1, 2, 3.
    let l = sim.heal_and_check(BOUND);
    assert!(l == ServerId(2) || l == ServerId(3), "leader {l}");
    for id in 1..=5 {
        let n = &sim.nodes[id - 1];
        assert!(!n.tree.contains(&r), "{id} still holds the uncommitted change");
        let cfg = &n.core.as_ref().expect("up").core.cfg;
        assert_eq!((&cfg.voters, &cfg.proposed), (&own(&sim, id as u64), &None), "{id}");
    }
}

/// The same change, replayed by a majority of both memberships (1, 2, 4, 5): it may have
/// committed, so a leader among them commits it, announces it (`ReplayedConfigCommitted`)
/// and records it; from then on the new voters alone count, after another restart too.
#[test]
fn a_replayed_voter_change_becomes_the_committed_one_once_a_leader_commits_it() {
    let mut sim = Sim::new(18, 5, 100);
    sim.cfg.voters = (1..=3).map(ServerId).collect();
    sim.joiners = [ServerId(4), ServerId(5)].into();
    let all: BTreeSet<ServerId> = (1..=5).map(ServerId).collect();
    let r = reconfig_txn(Zxid::new(1, 2), &all);
    for id in [1, 2, 4, 5] {
        sim.preload(id, vec![txn(Zxid::new(1, 1), 1), r.clone()], 1);
    }
    sim.preload(3, vec![txn(Zxid::new(1, 1), 1)], 1);
    sim.start_all();
    let committed = |s: &Sim| {
        s.nodes.iter().all(|n| {
            n.config_file.as_ref().is_some_and(|f| f.0 == r.header.zxid && f.1 == all)
                && n.core.as_ref().is_some_and(|c| c.core.cfg.voters == all && c.core.cfg.proposed.is_none())
        })
    };
    assert!(sim.run_until(BOUND, committed), "the change is committed and recorded everywhere");
    let l = stable(&mut sim);
    // 2 and 3 down: 1, 4 and 5 are a majority of the new voters, after a restart as well.
    for id in [2, 3] {
        sim.crash(ServerId(id));
    }
    if l == ServerId(2) || l == ServerId(3) {
        assert!(sim.run_until(BOUND, |s| s.stable_leader().is_some()), "the new voters elect a leader");
    }
    for id in [1, 4, 5] {
        sim.crash(ServerId(id));
        sim.restart(ServerId(id));
    }
    assert!(sim.run_until(BOUND, |s| s.stable_leader().is_some()), "3 of the 5 committed voters lead after a restart");
    sim.start_client();
    sim.run_for(10 * TICK);
    assert!(sim.acked.keys().any(|z| *z > r.header.zxid), "and commit");
}

/// A minority never commits: the leader cut off with a minority steps down, and what it
/// proposed alone is truncated once the partition heals; the majority moves on.
#[test]
fn minority_partition_never_commits() {
    let mut sim = Sim::new(6, 5, 100);
    sim.start_all();
    let l = stable(&mut sim);
    assert_eq!(l, ServerId(5));
    sim.start_client();
    sim.run_for(10 * TICK);
    for a in [ServerId(4), ServerId(5)] {
        for b in [ServerId(1), ServerId(2), ServerId(3)] {
            sim.partition(a, b);
        }
    }
    let cut_at = sim.now;
    let committed_at_cut = sim.core(l).expect("alive").last_committed();
    // A txn logged before the cut may still commit after it: a majority member may have
    // acked it just before, the leader's own fsync completing just after. Nothing proposed
    // after the cut may.
    let logged_at_cut = sim.core(l).expect("alive").last_logged();
    // It steps down within syncLimit (+ a tick), committing nothing new.
    let sync_ms = sim.cfg.sync_limit as Millis * TICK;
    assert!(sim.run_until(sync_ms + 2 * TICK, |s| !matches!(s.core(l).expect("alive").role(), Role::Leading { .. })));
    assert!(sim.now - cut_at <= sync_ms + 2 * TICK);
    assert!(sim.acked.keys().filter(|z| z.epoch() == committed_at_cut.epoch()).all(|z| *z <= logged_at_cut));
    for id in [ServerId(4), ServerId(5)] {
        assert!(sim.core(id).expect("alive").last_committed() <= logged_at_cut, "the minority applies nothing new");
    }
    // The majority elects one of its own (the most up-to-date log) and serves.
    assert!(sim.run_until(BOUND, |s| {
        (1..=3).any(|i| s.core(ServerId(i)).is_some_and(|c| c.serving() && matches!(c.role(), Role::Leading { .. })))
    }));
    sim.run_for(10 * TICK);
    assert!(sim.acked.keys().any(|z| z.epoch() > committed_at_cut.epoch()));
    sim.heal_and_check(BOUND);
}

/// Randomized: crashes, restarts, partitions (loud and silent) and election-message loss
/// under a write workload, then heal and check liveness and that nothing acknowledged is
/// lost. `ZAB_SIM_SEED=n` replays one seed; `ZAB_SIM_SEEDS=k` runs k seeds.
#[test]
fn randomized_faults_keep_zab_invariants() {
    let seeds: Vec<u64> = match std::env::var("ZAB_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("ZAB_SIM_SEED is a number")],
        Err(_) => (0..std::env::var("ZAB_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200)).collect(),
    };
    for seed in seeds {
        let r = std::panic::catch_unwind(|| {
            let n = if seed % 2 == 0 { 3 } else { 5 };
            let log_max = if seed % 3 == 0 { 4 } else { 200 };
            // Every fifth seed adds observers: they must never lead or count, and must
            // end with the same history as everyone else.
            let observers = if seed % 5 == 4 { 1 + seed % 2 } else { 0 };
            let mut sim = Sim::with_observers(seed, n, observers, log_max);
            sim.start_all();
            sim.start_client();
            let steps = std::env::var("ZAB_SIM_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
            sim.random_faults(steps);
            let l = sim.heal_and_check(BOUND);
            if std::env::var_os("ZAB_SIM_STATS").is_some() {
                let kinds = |k| sim.syncs.iter().filter(|(_, s)| *s == k).count();
                eprintln!(
                    "seed {seed}: n={n} leader={l} epochs={} acked={} history={} crashes={} diff/trunc/snap={}/{}/{} t={}ms steps={}",
                    sim.leaders.len(), sim.acked.len(), sim.history.len(), sim.crashes,
                    kinds(SyncKind::Diff), kinds(SyncKind::Trunc), kinds(SyncKind::Snap), sim.now, sim.steps
                );
            }
        });
        if let Err(e) = r {
            eprintln!("failing seed: {seed} (replay: ZAB_SIM_SEED={seed} cargo test --lib randomized_faults)");
            std::panic::resume_unwind(e);
        }
    }
}

/// Randomized, with a voter joining: server n+1 starts with a config listing itself and
/// follows without counting; the workload proposes the reconfig that adds it once a quorum
/// of the new voters is synced. Under crashes, partitions and message loss the usual
/// invariants hold (one leader per epoch, no divergence, nothing acknowledged lost), and
/// after healing the change is committed everywhere (proposed again if it was lost).
#[test]
fn randomized_faults_with_a_voter_joining_keep_zab_invariants() {
    let seeds: Vec<u64> = match std::env::var("ZAB_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("ZAB_SIM_SEED is a number")],
        Err(_) => (0..std::env::var("ZAB_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100)).collect(),
    };
    for seed in seeds {
        let r = std::panic::catch_unwind(|| {
            let n = if seed % 2 == 0 { 3 } else { 4 };
            let mut sim = Sim::new(seed, n + 1, if seed % 3 == 0 { 4 } else { 200 });
            sim.cfg.voters = (1..=n).map(ServerId).collect();
            sim.joiners = [ServerId(n + 1)].into();
            let all: BTreeSet<ServerId> = (1..=n + 1).map(ServerId).collect();
            sim.join_to = Some(all.clone());
            sim.start_all();
            sim.start_client();
            sim.random_faults(3000);
            let l = sim.heal_and_check(BOUND);
            // The change commits once all are up (the client proposes it again if lost).
            sim.start_client();
            let done = sim.run_until(BOUND, |s| {
                s.nodes.iter().all(|nd| nd.core.as_ref().is_some_and(|c| c.core.cfg.voters == all && c.core.cfg.proposed.is_none()))
            });
            assert!(done, "seed {seed}: voter {} not added everywhere (leader {l})", n + 1);
            sim.client_on = false;
            sim.heal_and_check(BOUND);
        });
        if let Err(e) = r {
            eprintln!("failing seed: {seed} (replay: ZAB_SIM_SEED={seed} cargo test --lib randomized_faults_with_a_voter)");
            std::panic::resume_unwind(e);
        }
    }
}

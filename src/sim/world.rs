//! The simulated world: servers, clients, the network between them, one event queue, one
//! RNG. `run(seed, cfg)` plays one history and checks it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};

use super::check::{self, Committed, HistOp, Leaders, ModelStats, WatchSeen};
use super::client::{self, Link, SimClient};
use super::node::{self, History, Node};
use crate::client::{Directive, Event, Input as ClientInput};
use crate::jute;
use crate::peer::{Notification, QuorumMsg};
use crate::proto::{Millis, ServerId, Zxid};
use crate::reconfig::{Member, Membership, Role as MemberRole};
use crate::replica::{Input, Output};
use crate::service::ClientId;
use crate::storage::snapshot;
use crate::txn::Txn;
use crate::zab::{Role, ZabConfig};

/// SplitMix64: small, fast, and the same sequence on every platform and version (a seed
/// must replay exactly, forever).
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, n) (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// What one run looks like.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub servers: u64,
    pub clients: usize,
    /// Znodes the clients work on.
    pub paths: u64,
    /// Faults are injected during this much simulated time; then everything heals.
    pub fault_ms: Millis,
    /// After healing: the bound within which a leader must serve with every server.
    pub liveness_ms: Millis,
    pub tick_ms: Millis,
    /// Txns the leader keeps for DIFF; small, so that SNAP happens too.
    pub committed_log_max: usize,
    /// Now and then a value of this size (MB-sized frames and snapshots), if set.
    pub big_value: Option<usize>,
    /// The chance that a crash fault is a power loss of every server instead (0: never,
    /// which replays the histories seeds played before power losses existed).
    pub power_loss: f64,
    /// Print every event (the replay of a failing seed).
    pub trace: bool,
    /// Known bugs planted in every server (to show the checks catch them).
    pub planted: crate::planted::Planted,
    /// Dynamic reconfiguration: `SPARES` more servers, outside the initial membership,
    /// and a superuser client that adds and removes voters and observers during the faults.
    pub reconfig: bool,
}

/// How a liveness failure names arbor's known reconfig gap: a member that missed a
/// reconfig (a commit lost to a silent break, a crash before it arrived) keeps its older
/// config, and arbor's election notifications carry no config (ZooKeeper 3.5's carry the
/// sender's, and a Looking server takes a newer one), so it never learns the new voters:
/// a quorum of its old voters backs no leader (the removed ones never lead), or backs a
/// removed server that will not lead.
pub const STALE_CONFIG_GAP: &str = "members still holding an older config after healing";

/// Servers a reconfig run has beyond the initial membership (ids after it).
pub const SPARES: u64 = 2;
/// The reconfig client never removes a voter below this many (ZooKeeper's floor is 2; 3
/// keeps one crash survivable, so runs stay meaningful).
pub const MIN_VOTERS: usize = 3;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            servers: 3,
            clients: 4,
            paths: 6,
            fault_ms: 4_000,
            liveness_ms: 1_500,
            tick_ms: 100,
            committed_log_max: 64,
            big_value: None,
            power_loss: 0.2,
            trace: false,
            planted: Default::default(),
            reconfig: false,
        }
    }
}

/// A run that passed every check.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub sim_ms: Millis,
    pub events: u64,
    pub ops: usize,
    pub model: ModelStats,
    pub committed: usize,
    pub faults: usize,
    pub elections: usize,
    pub snaps: usize,
    pub truncs: usize,
    /// Client sessions that expired / that their clients closed.
    pub expired: usize,
    pub closed: usize,
    /// Reconfigs the reconfig client issued, and the configs committed (applied somewhere).
    pub reconfigs: usize,
    pub configs: usize,
}

/// A run that broke an invariant: what, when, and the last events before it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub at_ms: Millis,
    pub reason: String,
    pub trace: Vec<String>,
    /// `arbor-sim` flags beyond the seed that replay it (`--reconfig`).
    pub flags: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} failed at {} ms: {}", self.seed, self.at_ms, self.reason)?;
        writeln!(f, "last events:")?;
        for l in &self.trace {
            writeln!(f, "  {l}")?;
        }
        write!(f, "replay: cargo run --release --bin arbor-sim -- --seed {}{} --trace", self.seed, self.flags)
    }
}

/// Connection key of a quorum connection: (follower, leader).
type QKey = (ServerId, ServerId);

#[derive(Debug)]
enum Ev {
    Election { to: ServerId, msg: Notification },
    Quorum { key: QKey, gen: u64, to: ServerId, msg: QuorumMsg },
    QuorumUp { key: QKey, gen: u64 },
    QuorumDown { key: QKey, gen: u64, to: ServerId },
    Fsync { node: ServerId, incarnation: u64 },
    /// Client bytes to its server / server bytes to the client, on connection `gen`.
    ToServer { client: usize, gen: u64, bytes: Bytes },
    ToClient { client: usize, gen: u64, bytes: Bytes },
    /// The server closed the client's connection after what it sent before.
    ClientClosed { client: usize, gen: u64 },
    ClientUp { client: usize, gen: u64 },
    Fault,
    Restart(ServerId),
    Resume(ServerId),
    /// A dynamic config file reaches the disk (unless the node crashed since).
    ConfigWrite { node: ServerId, incarnation: u64, text: String },
}

#[derive(Debug)]
struct QConn {
    gen: u64,
    open: bool,
    /// Last scheduled delivery time per direction (0: to the leader, 1: to the follower).
    last_at: [Millis; 2],
    /// The end whose core closed it: what that end sent before still arrives (the real
    /// loop writes out a closing connection's queued output before it closes the socket).
    closed_by: Option<ServerId>,
}

struct World {
    cfg: SimConfig,
    zab_cfg: ZabConfig,
    rng: Rng,
    /// Draws for fault kinds added after the regression seeds were found: a seed in which
    /// they do not fire plays exactly the history it played before they existed.
    later_rng: Rng,
    now: Millis,
    nodes: Vec<Node>,
    clients: Vec<SimClient>,
    queue: BTreeMap<(Millis, u64), Ev>,
    seq: u64,
    qconns: BTreeMap<QKey, QConn>,
    /// Client connection generation → (client, server); the server's side is `ClientId(gen)`.
    cconns: BTreeMap<u64, (usize, ServerId)>,
    /// Server side of client connections: bytes not yet cut into frames.
    server_inbox: BTreeMap<u64, BytesMut>,
    /// Last scheduled delivery per client connection and direction (0: to server).
    cconn_last: BTreeMap<u64, [Millis; 2]>,
    next_gen: u64,
    /// Directed cuts: messages from .0 to .1 are lost.
    cut: BTreeSet<(ServerId, ServerId)>,
    /// Servers cut off from the clients.
    isolated: BTreeSet<ServerId>,
    drop_election: f64,
    /// Paused servers (SIGSTOP) and what arrived for them meanwhile.
    held: BTreeMap<ServerId, VecDeque<Ev>>,
    history: Vec<HistOp>,
    /// What each client session (by history id) saw of its watches.
    watch_log: BTreeMap<u64, Vec<WatchSeen>>,
    /// Sessions that expired or were closed: no server may keep an ephemeral of theirs.
    ended: BTreeSet<i64>,
    expired: usize,
    closed: usize,
    committed: Committed,
    /// Every txn a server logged, by zxid and issuer (to rebuild the committed sequence).
    logged: BTreeMap<(Zxid, i64, i32, i64), Txn>,
    /// The history a SNAP in flight carries, by (receiver, zxid).
    snap_history: BTreeMap<(ServerId, Zxid), History>,
    leaders: Leaders,
    faults: usize,
    snaps: usize,
    truncs: usize,
    events: u64,
    trace: VecDeque<String>,
    failure: Option<String>,
    /// Servers (the initial members, then the spares of a reconfig run).
    total: u64,
    /// Draws of the reconfig runs (none in others: their seeds replay as before).
    recfg_rng: Rng,
    /// Ghost state: every config a reconfig committed (applied by some server), by version.
    configs: BTreeMap<i64, Membership>,
    initial: Membership,
    /// Servers some committed config listed.
    ever_member: BTreeSet<ServerId>,
    /// The reconfig client (an index into `clients`).
    admin: Option<usize>,
    /// A server the operator provisioned to join; the reconfig client adds it next.
    planned_add: Option<(ServerId, MemberRole)>,
    reconfigs: usize,
    /// A reconfig txn a server is applying in this step, and the config it sets (its
    /// `Output::Membership` follows).
    applying_reconfig: Option<(ServerId, Zxid, Membership)>,
}

const TRACE_KEEP: usize = 80;
/// Events one run may take (a bound: a livelock fails the seed instead of hanging).
const EVENTS_MAX: u64 = 3_000_000;
const SNAP_CHUNK: usize = 256 << 10;
/// Tells `World::later_rng` apart from the main stream of the same seed.
const LATER_STREAM: u64 = 0x6C61_7465_7200_0000 /* "later" */;
/// Tells `World::recfg_rng` apart.
const RECONFIG_STREAM: u64 = 0x7265_636F_6E66_0000 /* "reconf" */;

/// Play one history from `seed`; check it.
pub fn run(seed: u64, cfg: &SimConfig) -> Result<Outcome, Failure> {
    let mut w = World::new(seed, cfg.clone());
    let r = w.play();
    match r {
        Ok(o) => Ok(o),
        Err(reason) => {
            let flags = if cfg.reconfig { " --reconfig" } else { "" }.to_string();
            Err(Failure { seed, at_ms: w.now, reason, trace: w.trace.into_iter().collect(), flags })
        }
    }
}

impl World {
    fn new(seed: u64, cfg: SimConfig) -> World {
        let mut rng = Rng::new(seed);
        let voters: BTreeSet<ServerId> = (1..=cfg.servers).map(ServerId).collect();
        let zab_cfg = ZabConfig {
            me: ServerId(0),
            voters: voters.clone(),
            proposed: None,
            observers: BTreeSet::new(),
            tick_ms: cfg.tick_ms,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait_ms: 20,
            committed_log_max: cfg.committed_log_max,
            planted: cfg.planted,
        };
        let initial = Membership { members: voters.iter().map(|&id| (id, member(id, MemberRole::Participant))).collect(), version: 0 };
        let membership = initial.render();
        let total = cfg.servers + if cfg.reconfig { SPARES } else { 0 };
        let mut recfg_rng = Rng::new(seed ^ RECONFIG_STREAM);
        let nodes = (1..=total)
            .map(ServerId)
            .map(|id| {
                // A spare starts with the initial membership plus itself, as an operator
                // configures a server that is to join: it follows without counting.
                let config = if id.0 <= cfg.servers { membership.clone() } else { joining_config(&initial, id, spare_role(&mut recfg_rng)) };
                Node::new(id, rng.range(980, 1020), rng.range(0, 10_000), rng.range(-3_000, 3_000), config)
            })
            .collect();
        let timeout = (cfg.tick_ms * 10) as i32;
        let mut clients: Vec<SimClient> = (0..cfg.clients).map(|i| SimClient::new(i, timeout)).collect();
        let admin = cfg.reconfig.then(|| {
            clients.push(SimClient::new(cfg.clients, timeout));
            cfg.clients
        });
        World {
            zab_cfg,
            rng,
            later_rng: Rng::new(seed ^ LATER_STREAM),
            now: 0,
            nodes,
            clients,
            queue: BTreeMap::new(),
            seq: 0,
            qconns: BTreeMap::new(),
            cconns: BTreeMap::new(),
            server_inbox: BTreeMap::new(),
            cconn_last: BTreeMap::new(),
            next_gen: 1,
            cut: BTreeSet::new(),
            isolated: BTreeSet::new(),
            drop_election: 0.0,
            held: BTreeMap::new(),
            history: Vec::new(),
            watch_log: BTreeMap::new(),
            ended: BTreeSet::new(),
            expired: 0,
            closed: 0,
            committed: Committed::default(),
            logged: BTreeMap::new(),
            snap_history: BTreeMap::new(),
            leaders: Leaders::default(),
            faults: 0,
            snaps: 0,
            truncs: 0,
            events: 0,
            trace: VecDeque::new(),
            failure: None,
            total,
            recfg_rng,
            configs: BTreeMap::new(),
            ever_member: voters,
            initial,
            admin,
            planned_add: None,
            reconfigs: 0,
            applying_reconfig: None,
            cfg,
        }
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        let l = format!("{:>7} {}", self.now, line());
        if self.cfg.trace {
            eprintln!("{l}");
        }
        if self.trace.len() == TRACE_KEEP {
            self.trace.pop_front();
        }
        self.trace.push_back(l);
    }

    fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }

    fn node(&self, id: ServerId) -> &Node {
        &self.nodes[id.0 as usize - 1]
    }

    fn node_mut(&mut self, id: ServerId) -> &mut Node {
        &mut self.nodes[id.0 as usize - 1]
    }

    fn schedule(&mut self, at: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn delay(&mut self) -> Millis {
        self.rng.range(1, 6)
    }

    fn linked(&self, a: ServerId, b: ServerId) -> bool {
        !self.cut.contains(&(a, b))
    }

    // ---- the run ---------------------------------------------------------------------

    fn play(&mut self) -> Result<Outcome, String> {
        for i in 0..self.nodes.len() {
            self.start(ServerId(i as u64 + 1))?;
        }
        let first_fault = self.rng.range(300, 800);
        self.schedule(first_fault, Ev::Fault);
        // Phase 1: load and faults.
        self.run_until(self.cfg.fault_ms, |_| false)?;
        // Phase 2: heal everything; a leader must serve with every server within the bound.
        self.heal_all()?;
        let healed = self.now;
        let bound = healed + self.cfg.liveness_ms;
        if !self.run_until(bound, |w| w.all_serving())? {
            let gap = self.stale_config_members();
            return Err(format!(
                "liveness: {} ms after the last fault healed, the ensemble is not serving: {}{}",
                self.cfg.liveness_ms,
                self.roles(),
                match gap {
                    Some(ids) => format!(" [{STALE_CONFIG_GAP}: {ids:?}]"),
                    None => String::new(),
                }
            ));
        }
        // Phase 3: the clients finish what they have in flight (bounded), then stop.
        for c in &mut self.clients {
            c.done = true;
        }
        let drain = self.now + 3_000;
        self.run_until(drain, |w| w.clients.iter().all(|c| c.in_flight.is_none()))?;
        // Phase 4: let the last commits reach every server.
        let settle = self.now + 1_000;
        self.run_until(settle, |w| w.all_caught_up())?;
        // Phase 5: idle clients ping; each ping reply carries the zxid its server is at,
        // so every watch whose path changed must have fired by the end (`watch_check`). It
        // lasts a session timeout and a few ticks: a session that a leader later deposed
        // told its client had expired (its close never committed) lives on in the committed
        // state, and the final leader must expire it within that time, as ZooKeeper's does
        // (seed 55978: the check below came 800 ms after the leader started).
        let pings = self.now + (self.cfg.tick_ms * 10 + 3 * self.cfg.tick_ms).max(800);
        self.run_until(pings, |_| false)?;
        // (Sessions may have expired meanwhile: their closes reach every server too.)
        let settle = self.now + 1_000;
        self.run_until(settle, |w| w.all_caught_up())?;
        self.final_checks()
    }

    /// Step events and timers until `until` or `stop` holds; Ok(true) if `stop` held.
    fn run_until(&mut self, until: Millis, stop: impl Fn(&World) -> bool) -> Result<bool, String> {
        loop {
            if let Some(f) = self.failure.take() {
                return Err(f);
            }
            if stop(self) {
                return Ok(true);
            }
            if self.events >= EVENTS_MAX {
                return Err(format!("more than {EVENTS_MAX} events: a livelock?"));
            }
            let next_ev = self.queue.keys().next().map(|k| k.0);
            let next_timer = self.next_timer();
            let t = match (next_ev, next_timer) {
                (Some(e), Some(tm)) => e.min(tm),
                (Some(e), None) => e,
                (None, Some(tm)) => tm,
                (None, None) => until,
            };
            if t > until {
                self.now = until;
                return Ok(stop(self));
            }
            self.now = self.now.max(t);
            self.events += 1;
            if next_ev == Some(t) {
                let (_, ev) = self.queue.pop_first().ok_or("queue emptied")?;
                self.deliver(ev);
            } else {
                self.timers();
            }
        }
    }

    /// The earliest timer of any server or client.
    fn next_timer(&self) -> Option<Millis> {
        let servers = self.nodes.iter().filter_map(|n| {
            let r = n.replica.as_ref()?;
            Some(n.global_at(r.next_deadline()).max(n.paused_until))
        });
        let clients = self.clients.iter().flat_map(|c| {
            let session = c.session.next_deadline();
            let op = (!c.done && c.in_flight.is_none() && c.session.is_connected()).then_some(c.next_op_at);
            [session, op, c.redial_at]
        });
        servers.chain(clients.flatten()).map(|t| t.max(self.now)).min()
    }

    fn timers(&mut self) {
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            let Some(r) = n.replica.as_ref() else { continue };
            if self.held.contains_key(&n.id) {
                continue;
            }
            if n.global_at(r.next_deadline()) <= self.now {
                self.step(n.id, Input::Tick);
            }
        }
        for c in 0..self.clients.len() {
            if self.clients[c].redial_at.is_some_and(|t| t <= self.now) {
                self.dial(c);
            }
            if self.clients[c].session.next_deadline().is_some_and(|t| t <= self.now) {
                self.client_input(c, ClientInput::Tick);
            }
            let cl = &self.clients[c];
            if !cl.done && cl.in_flight.is_none() && cl.session.is_connected() && cl.next_op_at <= self.now {
                self.issue(c);
            }
        }
    }

    // ---- servers ---------------------------------------------------------------------

    fn start(&mut self, id: ServerId) -> Result<(), String> {
        let (now, zab_cfg, reconfig) = (self.now, self.zab_cfg.clone(), self.cfg.reconfig);
        self.node_mut(id).start(now, &zab_cfg, reconfig)?;
        if reconfig {
            let v = self.node(id).config_version;
            self.note(|| format!("START {id} (config version {v:#x})"));
        } else {
            self.note(|| format!("START {id}"));
        }
        Ok(())
    }

    fn step(&mut self, id: ServerId, input: Input<'_>) {
        let mut feedback = VecDeque::new();
        self.step_one(id, input, &mut feedback);
        for _ in 0..1000 {
            let Some(i) = feedback.pop_front() else { break };
            self.step_one(id, i, &mut feedback);
        }
    }

    fn step_one(&mut self, id: ServerId, input: Input<'_>, feedback: &mut VecDeque<Input<'static>>) {
        let gnow = self.now;
        let node = self.node_mut(id);
        let now = node.now(gnow);
        let Some(replica) = node.replica.as_mut() else { return };
        let mut out = Vec::new();
        replica.step(now, input, &mut out);
        self.check_roles(id);
        for o in out {
            self.perform(id, o, feedback);
        }
    }

    /// At most one serving leader per epoch.
    fn check_roles(&mut self, id: ServerId) {
        let Some(zab) = self.node(id).replica.as_ref().and_then(|r| r.zab()) else { return };
        if let (Role::Leading { epoch }, true) = (zab.role(), zab.serving()) {
            if let Err(e) = self.leaders.serving(epoch, id) {
                self.fail(e);
            }
        }
    }

    fn perform(&mut self, me: ServerId, o: Output, feedback: &mut VecDeque<Input<'static>>) {
        match o {
            Output::ToClient { client, bytes } => {
                let Some(&(c, _)) = self.cconns.get(&client.0) else { return };
                let at = self.cconn_at(client.0, 1);
                self.schedule(at, Ev::ToClient { client: c, gen: client.0, bytes });
            }
            Output::CloseClient { client } => {
                let Some(&(c, _)) = self.cconns.get(&client.0) else { return };
                let at = self.cconn_at(client.0, 1);
                self.schedule(at, Ev::ClientClosed { client: c, gen: client.0 });
            }
            Output::Append(txn) => {
                let h = &txn.header;
                self.logged.insert((h.zxid, h.session.0, h.cxid, h.time_ms), txn.clone());
                let inc = self.node(me).incarnation;
                let n = self.node_mut(me);
                n.disk.log.push(txn);
                if !n.fsync_pending {
                    n.fsync_pending = true;
                    let at = self.now + self.rng.range(1, 8);
                    self.schedule(at, Ev::Fsync { node: me, incarnation: inc });
                }
            }
            Output::PersistEpoch { accepted, current } => {
                let n = self.node_mut(me);
                n.disk.accepted = accepted;
                n.disk.current = current;
            }
            Output::TruncateLog(zxid) => {
                self.truncs += 1;
                self.note(|| format!("{me} TRUNC to {zxid}"));
                let gnow = self.now;
                let n = self.node_mut(me);
                if n.disk.snapshot.as_ref().is_some_and(|s| s.0 > zxid) {
                    let why = format!("server {me}: TRUNC to {zxid} below its installed snapshot (committed state dropped)");
                    self.fail(why);
                    return;
                }
                n.disk.truncate(zxid);
                match n.rebuild(gnow) {
                    Ok((tree, sessions)) => feedback.push_back(Input::Restored { tree, sessions }),
                    Err(e) => self.fail(format!("server {me}: cannot rebuild after TRUNC: {e}")),
                }
            }
            Output::SendElection { to, msg } => {
                if self.rng.chance(self.drop_election) {
                    return;
                }
                let copies = if self.rng.chance(0.02) { 2 } else { 1 };
                for _ in 0..copies {
                    let at = self.now + self.rng.range(1, 12);
                    self.schedule(at, Ev::Election { to, msg: msg.clone() });
                }
            }
            Output::SendQuorum { to, msg } => self.send_quorum(me, to, msg),
            Output::ConnectQuorum { leader } => self.connect_quorum(me, leader),
            Output::CloseQuorum { peer } => {
                let key = self.qkey(me, peer);
                if self.cfg.reconfig {
                    self.close_qconn(key, me);
                } else {
                    // (Runs without reconfig keep the histories their seeds always played:
                    // a close there drops what is in flight both ways.)
                    self.break_qconn(key, true, Some(me));
                }
            }
            Output::SendSnapshot { to, zxid } => {
                let Some(r) = self.node(me).replica.as_ref() else { return };
                let tree = r.service().tree();
                if tree.last_applied() != zxid {
                    feedback.push_back(Input::SnapshotUnavailable { zxid });
                    let key = (to, me);
                    self.break_qconn(key, true, None);
                    return;
                }
                let image = snapshot::encode(tree, r.service().sessions());
                let bytes = snapshot::to_bytes(&image);
                self.snaps += 1;
                self.note(|| format!("{me} SNAP at {zxid} to {to}: {} bytes", bytes.len()));
                self.send_quorum(me, to, QuorumMsg::SnapBegin { zxid, size: bytes.len() as u64 });
                for chunk in bytes.chunks(SNAP_CHUNK) {
                    self.send_quorum(me, to, QuorumMsg::SnapChunk { data: chunk.to_vec() });
                }
                self.send_quorum(me, to, QuorumMsg::SnapEnd);
                let history = self.node(me).history.clone();
                self.snap_history.insert((to, zxid), history);
                feedback.push_back(Input::SnapshotSent { to });
            }
            Output::SnapshotBegin { zxid, size } => {
                self.node_mut(me).receiving = Some((zxid, Vec::with_capacity(size.min(64 << 20) as usize)));
            }
            Output::SnapshotChunk(data) => {
                if let Some((_, buf)) = self.node_mut(me).receiving.as_mut() {
                    buf.extend_from_slice(&data);
                }
            }
            Output::LoadSnapshot { zxid } => {
                let gnow = self.now;
                let carried = self.snap_history.remove(&(me, zxid)).unwrap_or_default();
                let n = self.node_mut(me);
                let Some((z, bytes)) = n.receiving.take() else { return };
                if z != zxid {
                    self.fail(format!("server {me}: LoadSnapshot {zxid} but received {z}"));
                    return;
                }
                n.disk.snapshot = Some((zxid, bytes));
                n.disk.snapshot_history = carried;
                n.disk.log.clear();
                n.disk.synced = 0;
                match n.rebuild(gnow) {
                    Ok((tree, sessions)) => feedback.push_back(Input::Restored { tree, sessions }),
                    Err(e) => self.fail(format!("server {me}: cannot load the received snapshot: {e}")),
                }
            }
            Output::RoleChanged(role) => {
                self.note(|| format!("{me} role {role:?}"));
            }
            Output::ServingChanged(_) | Output::Proposed { .. } => {}
            Output::Membership { members, committed } => self.membership_taken(me, members, committed),
            Output::Committed(h) => {
                let key = (h.zxid, h.session.0, h.cxid, h.time_ms);
                if let Some(crate::txn::TxnOp::Reconfig { data }) = self.logged.get(&key).map(|t| &t.op) {
                    match Membership::parse(&String::from_utf8_lossy(data)) {
                        Ok(m) => self.applying_reconfig = Some((me, h.zxid, m)),
                        Err(e) => self.fail(format!("server {me} applied a reconfig at {} that does not parse: {e}", h.zxid)),
                    }
                }
                let n = self.node_mut(me);
                if h.zxid <= n.applied {
                    let why = format!("server {me} applied {} after {}: zxids must increase", h.zxid, n.applied);
                    self.fail(why);
                }
                let n = self.node_mut(me);
                n.applied = h.zxid;
                n.history.insert(h.zxid, node::txn_id(&h));
                let now = self.now;
                if let Err(e) = self.committed.applied(me, &h, now) {
                    self.fail(e);
                }
            }
        }
    }

    /// The quorum connection between two servers: keyed (follower, leader), whoever
    /// dialled; if both ever dialled, the open one, else the newer.
    fn qkey(&self, me: ServerId, peer: ServerId) -> QKey {
        let rank = |k: &QKey| self.qconns.get(k).map(|c| (c.open, c.gen));
        if rank(&(me, peer)) >= rank(&(peer, me)) {
            (me, peer)
        } else {
            (peer, me)
        }
    }

    fn send_quorum(&mut self, me: ServerId, to: ServerId, msg: QuorumMsg) {
        let key = self.qkey(me, to);
        let Some(c) = self.qconns.get(&key) else { return };
        if !c.open {
            return;
        }
        let gen = c.gen;
        if !self.linked(me, to) {
            // A partition: the stream stalls; only timers notice.
            self.break_qconn(key, false, None);
            return;
        }
        let dir = usize::from(to == key.0);
        let d = self.delay();
        let c = self.qconns.get_mut(&key).expect("checked above");
        let at = (c.last_at[dir]).max(self.now + d);
        c.last_at[dir] = at;
        self.schedule(at, Ev::Quorum { key, gen, to, msg });
    }

    fn connect_quorum(&mut self, f: ServerId, l: ServerId) {
        let d = self.delay();
        let key = (f, l);
        let gen = self.next_gen;
        self.next_gen += 1;
        // A newer connection replaces an older one to the same leader (the leader's loop
        // closes the old one on the new FollowerInfo without telling the core).
        let reachable = self.node(l).alive() && self.linked(f, l) && self.linked(l, f) && f != l;
        if !reachable {
            self.qconns.insert(key, QConn { gen, open: false, last_at: [0; 2], closed_by: None });
            self.schedule(self.now + d * 5, Ev::QuorumDown { key, gen, to: f });
            return;
        }
        self.qconns.insert(key, QConn { gen, open: true, last_at: [self.now + d; 2], closed_by: None });
        self.schedule(self.now + d, Ev::QuorumUp { key, gen });
    }

    /// Break a quorum connection; `loud`: the ends hear of it (except `quiet_end`, which
    /// closed it itself).
    fn break_qconn(&mut self, key: QKey, loud: bool, quiet_end: Option<ServerId>) {
        let Some(c) = self.qconns.get_mut(&key) else { return };
        // (A crash or a cut also ends what a closing end still had on its way.)
        c.closed_by = None;
        if !c.open {
            return;
        }
        c.open = false;
        let gen = c.gen;
        if loud {
            let d = self.delay();
            for end in [key.0, key.1] {
                if Some(end) != quiet_end {
                    self.schedule(self.now + d, Ev::QuorumDown { key, gen, to: end });
                }
            }
        }
    }

    fn qconn_current(&self, key: QKey, gen: u64) -> bool {
        self.qconns.get(&key).is_some_and(|c| c.gen == gen && c.open)
    }

    /// `me`'s core closed the connection: what it sent before still arrives, then the FIN
    /// (`QuorumDown` at the peer); what was on its way to `me` is lost. (A leader that a
    /// reconfig removed sends the COMMIT of that reconfig and then closes: its followers
    /// must still learn of it.)
    fn close_qconn(&mut self, key: QKey, me: ServerId) {
        let d = self.delay();
        let Some(c) = self.qconns.get_mut(&key) else { return };
        if !c.open {
            return;
        }
        c.open = false;
        c.closed_by = Some(me);
        let peer = if me == key.0 { key.1 } else { key.0 };
        let dir = usize::from(peer == key.0);
        let at = c.last_at[dir].max(self.now + d);
        c.last_at[dir] = at;
        let gen = c.gen;
        self.schedule(at, Ev::QuorumDown { key, gen, to: peer });
    }

    /// Whether a quorum message on `key` reaches `to`: the connection is open, or its other
    /// end closed it after sending it.
    fn qconn_delivers(&self, key: QKey, gen: u64, to: ServerId) -> bool {
        self.qconns.get(&key).is_some_and(|c| c.gen == gen && (c.open || c.closed_by.is_some_and(|b| b != to)))
    }

    // ---- membership ------------------------------------------------------------------

    /// `me` took membership `m` (a reconfig applied, or a restored state's): a committed
    /// reconfig is the same config on every server that applies it; a server's config
    /// version never goes down within a life; and the real server writes the dynamic config
    /// file, which a crash may pre-empt.
    fn membership_taken(&mut self, me: ServerId, m: Membership, committed: bool) {
        if !committed {
            // A newer membership the state holds (replayed, or carried by a SNAP) that may
            // not have committed: proposed, neither checked nor recorded here.
            let v = m.version;
            self.note(|| format!("{me} holds config {v:#x}, not known committed"));
            return;
        }
        let applied = self.applying_reconfig.take().filter(|(who, _, _)| *who == me);
        // A server that holds a config as new as a reconfig it applies keeps it, as
        // ZooKeeper does (one readied to join replays older reconfigs in its DIFF).
        let taken = applied.as_ref().is_some_and(|(_, _, txn)| *txn == m);
        if let Some((_, zxid, txn)) = applied.filter(|_| !taken) {
            if m.version < zxid.0 {
                self.fail(format!("server {me} applied the reconfig at {zxid} as {:?}, not as {:?}", m.render(), txn.render()));
            }
        }
        if taken {
            match self.configs.get(&m.version) {
                Some(seen) if *seen != m => {
                    let why = format!("server {me} applied config version {:#x} as {:?}, another server as {:?}", m.version, m.render(), seen.render());
                    self.fail(why);
                }
                Some(_) => {}
                None => {
                    self.note(|| format!("{me} COMMITTED CONFIG {:#x}: {}", m.version, m.render().replace('\n', " ")));
                    self.ever_member.extend(m.members.keys().copied());
                    self.configs.insert(m.version, m.clone());
                }
            }
        }
        let n = self.node_mut(me);
        if m.version < n.config_version {
            let why = format!("server {me}: its config version went down from {:#x} to {:#x} within a life", n.config_version, m.version);
            self.fail(why);
        }
        let n = self.node_mut(me);
        n.config_version = n.config_version.max(m.version);
        // The real server writes `<zoo.cfg>.dynamic.<version>` (never for the static 0).
        if m.version != 0 && self.cfg.reconfig {
            let (incarnation, text) = (self.node(me).incarnation, m.render());
            let at = self.now + self.recfg_rng.range(1, 8);
            self.schedule(at, Ev::ConfigWrite { node: me, incarnation, text });
        }
    }

    /// The newest config a reconfig committed (the initial one before any).
    fn committed_config(&self) -> &Membership {
        self.configs.values().next_back().unwrap_or(&self.initial)
    }

    /// The config the checks hold the ensemble to: the newest one a reconfig committed, or
    /// the newest in a serving leader's history if that is newer. (A reconfig logged by a
    /// quorum and replayed after a crash is committed by the next leader's sync without
    /// any server applying it as a commit.)
    fn final_config(&self) -> std::borrow::Cow<'_, Membership> {
        let committed = self.committed_config();
        let in_leader = self.serving_leader().and_then(|l| {
            self.node(l).history.iter().rev().find_map(|(z, id)| match self.logged.get(&(*z, id.0, id.1, id.2)).map(|t| &t.op) {
                Some(crate::txn::TxnOp::Reconfig { data }) => Membership::parse(&String::from_utf8_lossy(data)).ok(),
                _ => None,
            })
        });
        match in_leader {
            Some(m) if m.version > committed.version => std::borrow::Cow::Owned(m),
            _ => std::borrow::Cow::Borrowed(committed),
        }
    }

    fn serving_leader(&self) -> Option<ServerId> {
        self.nodes.iter().find_map(|n| {
            let z = n.replica.as_ref()?.zab()?;
            (matches!(z.role(), Role::Leading { .. }) && z.serving()).then_some(n.id)
        })
    }

    /// Whether `id` runs with a config that lists it as `role` at `version` or later (the
    /// operator provisioned it to join, and nothing since made it leave).
    fn provisioned(&self, id: ServerId, version: i64, role: MemberRole) -> bool {
        let Some(r) = self.node(id).replica.as_ref() else { return false };
        r.service()
            .membership()
            .and_then(|t| Membership::parse(t).ok())
            .is_some_and(|m| m.version >= version && m.members.get(&id).is_some_and(|x| x.role == role))
    }

    /// The operator readies `id` to join as `role`: it stops the server (an orderly stop:
    /// the log stays), writes it a config of the current membership plus itself, and starts
    /// it again (its data kept).
    fn provision(&mut self, id: ServerId, role: MemberRole) {
        let config = joining_config(self.committed_config(), id, role);
        self.note(|| format!("PROVISION {id} to join as {role:?}"));
        if self.node(id).alive() {
            let unsynced = self.node(id).disk.log.len() - self.node(id).disk.synced;
            self.crash(id, unsynced);
        }
        let n = self.node_mut(id);
        n.static_config = config;
        n.config_file = None;
        let at = self.now + self.recfg_rng.range(20, 200);
        self.schedule(at, Ev::Restart(id));
    }

    /// The reconfig client's next request: add a server that is not a member (readied by
    /// the operator first), remove a voter (the leader now and then; never below
    /// `MIN_VOTERS`), or remove an observer. Mostly from the version it knows, so that a
    /// change it missed makes it BadVersion; adds sometimes from any version (-1).
    fn next_reconfig(&mut self) -> Option<(jute::Request, check::OpKind)> {
        let current = self.committed_config().clone();
        let v = current.version;
        let version = |rng: &mut Rng| if rng.chance(0.8) { v } else { -1 };
        if let Some((id, role)) = self.planned_add.take() {
            if !current.members.contains_key(&id) && self.provisioned(id, v, role) {
                let line = format!("server.{id}={}", member(id, role).spec());
                return Some(reconfig_op(Some(line), None, version(&mut self.recfg_rng)));
            }
        }
        let outsiders: Vec<ServerId> = (1..=self.total).map(ServerId).filter(|id| !current.members.contains_key(id)).collect();
        let voters: Vec<ServerId> = current.voters().into_iter().collect();
        let observers: Vec<ServerId> = current.observers().into_iter().collect();
        match self.recfg_rng.below(4) {
            0 | 1 if !outsiders.is_empty() => {
                let id = outsiders[self.recfg_rng.below(outsiders.len() as u64) as usize];
                let role = spare_role(&mut self.recfg_rng);
                if self.provisioned(id, v, role) {
                    let line = format!("server.{id}={}", member(id, role).spec());
                    return Some(reconfig_op(Some(line), None, version(&mut self.recfg_rng)));
                }
                self.provision(id, role);
                self.planned_add = Some((id, role));
                None
            }
            2 if voters.len() > MIN_VOTERS => {
                let leader = self.serving_leader().filter(|l| voters.contains(l));
                let id = match leader {
                    Some(l) if self.recfg_rng.chance(0.4) => l,
                    _ => voters[self.recfg_rng.below(voters.len() as u64) as usize],
                };
                Some(reconfig_op(None, Some(id.to_string()), v))
            }
            3 if !observers.is_empty() => {
                let id = observers[self.recfg_rng.below(observers.len() as u64) as usize];
                Some(reconfig_op(None, Some(id.to_string()), v))
            }
            _ => None,
        }
    }

    // ---- events ----------------------------------------------------------------------

    fn deliver(&mut self, ev: Ev) {
        // A paused server takes nothing now: its events wait until it resumes, in order
        // (FIFO streams stay FIFO).
        if let Some(to) = self.ev_server(&ev) {
            if let Some(q) = self.held.get_mut(&to) {
                q.push_back(ev);
                return;
            }
        }
        match ev {
            Ev::Election { to, msg } => {
                if self.linked(msg.sender, to) && self.node(to).alive() {
                    self.note(|| format!("{} -> {to} vote {:?} r{}", msg.sender, msg.vote, msg.round));
                    self.step(to, Input::Election(msg));
                }
            }
            Ev::Quorum { key, gen, to, msg } => {
                if !self.qconn_delivers(key, gen, to) {
                    return;
                }
                let from = if to == key.0 { key.1 } else { key.0 };
                if self.trace_quorum(&msg) {
                    self.note(|| format!("{from} -> {to} {}", short(&msg)));
                }
                self.step(to, Input::Quorum { from, msg });
            }
            Ev::QuorumUp { key, gen } => {
                if self.qconn_current(key, gen) {
                    self.note(|| format!("quorum {} -> {} up", key.0, key.1));
                    self.step(key.0, Input::QuorumConnected { peer: key.1 });
                }
            }
            Ev::QuorumDown { key, gen, to } => {
                if self.qconns.get(&key).is_some_and(|c| c.gen == gen) {
                    if let Some(c) = self.qconns.get_mut(&key) {
                        c.open = false;
                    }
                    let peer = if to == key.0 { key.1 } else { key.0 };
                    self.note(|| format!("quorum {} -> {} down at {to}", key.0, key.1));
                    self.step(to, Input::QuorumDisconnected { peer });
                }
            }
            Ev::Fsync { node, incarnation } => {
                let n = self.node_mut(node);
                if n.incarnation != incarnation || !n.alive() {
                    return;
                }
                n.fsync_pending = false;
                n.disk.synced = n.disk.log.len();
                let zxid = n.disk.durable_last();
                self.step(node, Input::LogDurable { zxid });
            }
            Ev::ToServer { client, gen, bytes } => {
                let Some(&(_, server)) = self.cconns.get(&gen) else { return };
                let _ = client;
                let inbox = self.server_inbox.entry(gen).or_default();
                inbox.extend_from_slice(&bytes);
                loop {
                    let Some(inbox) = self.server_inbox.get_mut(&gen) else { return };
                    match jute::next_frame(inbox, 64 << 20) {
                        Ok(Some(frame)) => self.step(server, Input::ClientFrame { client: ClientId(gen), frame: &frame }),
                        Ok(None) => break,
                        Err(e) => {
                            self.fail(format!("client {client}: server {server} could not cut a frame: {e}"));
                            break;
                        }
                    }
                }
            }
            Ev::ToClient { client, gen, bytes } => {
                let Some(link) = self.clients[client].link.as_mut().filter(|l| l.gen == gen) else { return };
                link.inbox.extend_from_slice(&bytes);
                loop {
                    let Some(link) = self.clients[client].link.as_mut().filter(|l| l.gen == gen) else { return };
                    match jute::next_frame(&mut link.inbox, 64 << 20) {
                        Ok(Some(frame)) => self.client_input(client, ClientInput::Frame(frame)),
                        Ok(None) => break,
                        Err(e) => {
                            self.fail(format!("client {client} could not cut a frame: {e}"));
                            break;
                        }
                    }
                }
            }
            Ev::ClientClosed { client, gen } => {
                if self.clients[client].link.as_ref().is_some_and(|l| l.gen == gen) {
                    self.drop_client_conn(client, true);
                }
            }
            Ev::ClientUp { client, gen } => {
                let Some(&(_, server)) = self.cconns.get(&gen) else { return };
                if !self.node(server).alive() {
                    self.drop_client_conn(client, false);
                    return;
                }
                if let Some(l) = self.clients[client].link.as_mut().filter(|l| l.gen == gen) {
                    l.up = true;
                    self.step(server, Input::ClientConnected { client: ClientId(gen), addr: format!("sim-client-{client}") });
                    self.client_input(client, ClientInput::TcpConnected);
                }
            }
            Ev::Fault => {
                // (One already queued when the faults ended is void: the world healed.)
                if self.now >= self.cfg.fault_ms {
                    return;
                }
                self.fault();
                if self.now < self.cfg.fault_ms {
                    let at = self.now + self.rng.range(100, 700);
                    self.schedule(at, Ev::Fault);
                }
            }
            Ev::Restart(id) => {
                if !self.node(id).alive() {
                    if let Err(e) = self.start(id) {
                        self.fail(format!("server {id} cannot restart: {e}"));
                    }
                }
            }
            Ev::Resume(id) => self.resume(id),
            Ev::ConfigWrite { node, incarnation, text } => {
                let n = self.node_mut(node);
                if n.incarnation == incarnation && node::membership_version(Some(&text)) > node::membership_version(n.config_file.as_deref()) {
                    n.config_file = Some(text);
                }
            }
        }
    }

    /// The server an event is delivered to, if it is a server's.
    fn ev_server(&self, ev: &Ev) -> Option<ServerId> {
        match ev {
            Ev::Election { to, .. } | Ev::Quorum { to, .. } | Ev::QuorumDown { to, .. } => Some(*to),
            Ev::QuorumUp { key, .. } => Some(key.0),
            Ev::Fsync { node, .. } | Ev::ConfigWrite { node, .. } => Some(*node),
            Ev::ToServer { gen, .. } | Ev::ClientUp { gen, .. } => self.cconns.get(gen).map(|c| c.1),
            _ => None,
        }
    }

    fn trace_quorum(&self, msg: &QuorumMsg) -> bool {
        self.cfg.trace || !matches!(msg, QuorumMsg::Ping { .. } | QuorumMsg::SnapChunk { .. })
    }

    // ---- clients ---------------------------------------------------------------------

    /// The last delivery time of a client connection's direction (0: to the server),
    /// pushed forward: FIFO.
    fn cconn_at(&mut self, gen: u64, dir: usize) -> Millis {
        let d = self.delay();
        let last = self.cconn_last.entry(gen).or_insert([0; 2]);
        let at = last[dir].max(self.now + d);
        last[dir] = at;
        at
    }

    fn dial(&mut self, c: usize) {
        self.clients[c].redial_at = None;
        let server = ServerId(1 + self.rng.below(self.total));
        let gen = self.next_gen;
        self.next_gen += 1;
        if !self.node(server).alive() || self.isolated.contains(&server) {
            // Refused or timed out: try again later.
            self.clients[c].redial_at = Some(self.now + self.rng.range(20, 200));
            return;
        }
        self.cconns.insert(gen, (c, server));
        if self.cfg.trace {
            self.note(|| format!("client {c} dials {server} (connection {gen})"));
        }
        self.clients[c].link = Some(Link { server, gen, inbox: BytesMut::new(), up: false });
        let at = self.now + self.delay();
        self.schedule(at, Ev::ClientUp { client: c, gen });
    }

    /// The client's connection is gone; `tell_client`: the server or its death closed it
    /// and the client reads the FIN (else the client's own core closed it). The server
    /// hears of it either way.
    fn drop_client_conn(&mut self, c: usize, tell_client: bool) {
        let Some(link) = self.clients[c].link.take() else { return };
        self.cconns.remove(&link.gen);
        self.server_inbox.remove(&link.gen);
        self.cconn_last.remove(&link.gen);
        if link.up && self.node(link.server).alive() {
            self.step(link.server, Input::ClientGone { client: ClientId(link.gen) });
        }
        // (Otherwise the client closed it itself: its core already failed what was pending.)
        if tell_client && link.up {
            self.client_input_unlinked(c, ClientInput::TcpClosed);
        }
        self.clients[c].redial_at = Some(self.now + self.rng.range(5, 100));
    }

    fn client_input(&mut self, c: usize, input: ClientInput) {
        let mut events = Vec::new();
        let gnow = self.now;
        let d = self.clients[c].session.step(gnow, input, &mut events);
        self.client_events(c, events);
        self.client_seen(c);
        if let Directive::Close(_) = d {
            self.drop_client_conn(c, false);
        } else {
            self.client_flush(c);
        }
        if std::mem::take(&mut self.clients[c].closed) {
            // It closed its session (the server closes the connection too): a new one.
            self.drop_client_conn(c, true);
            self.new_session(c);
            self.closed += 1;
        }
    }

    /// The session's client ended it, or heard it expired: the next connection asks for a
    /// new session, under a new history id.
    fn new_session(&mut self, c: usize) {
        self.ended.insert(self.clients[c].session.session_id());
        let cl = &mut self.clients[c];
        cl.session.renew();
        cl.sessions += 1;
        cl.after_sync = None;
    }

    /// The connection a client's events arrive on (0: none).
    fn conn_of(&self, c: usize) -> u64 {
        self.clients[c].link.as_ref().map_or(0, |l| l.gen)
    }

    /// Records a rise of the zxid the client's session has seen (replies and pings).
    fn client_seen(&mut self, c: usize) {
        let z = self.clients[c].session.last_zxid();
        if z > self.clients[c].seen_zxid {
            self.clients[c].seen_zxid = z;
            let (hid, conn, at) = (self.clients[c].history_id(), self.conn_of(c), self.now);
            self.watch_log.entry(hid).or_default().push(WatchSeen::Zxid { zxid: z, conn, at });
        }
    }

    fn client_input_unlinked(&mut self, c: usize, input: ClientInput) {
        let mut events = Vec::new();
        let gnow = self.now;
        let _ = self.clients[c].session.step(gnow, input, &mut events);
        self.client_events(c, events);
    }

    fn client_events(&mut self, c: usize, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Reply(r) if r.xid == jute::xid::AUTH => {
                    // (A lost connection fails it too: the next connection logs in again.)
                    if r.err == crate::proto::ErrorCode::AuthFailed.code() {
                        self.fail(format!("client {c}: the superuser's auth failed with {}", r.err));
                    }
                }
                Event::Reply(r) => {
                    let Some(i) = self.clients[c].in_flight.take() else { continue };
                    let (conn, now) = (self.conn_of(c), self.now);
                    let op = &mut self.history[i];
                    op.ret = Some(now);
                    op.outcome = client::outcome(&r);
                    if !matches!(op.outcome, check::Outcome::Unknown) {
                        op.zxid = Some(r.zxid);
                    }
                    // The watch is armed when the read found the node (exists: or not).
                    let armed = match (&op.kind, &op.outcome) {
                        (check::OpKind::Exists { .. }, check::Outcome::Err(-101)) | (_, check::Outcome::Ok(_)) => op.kind.watch(),
                        _ => None,
                    };
                    if let Some((path, child)) = armed {
                        let seen = WatchSeen::Registered { path: path.to_string(), child, zxid: r.zxid, conn };
                        self.watch_log.entry(op.client).or_default().push(seen);
                    }
                    if matches!((&op.kind, &op.outcome), (check::OpKind::CloseSession, check::Outcome::Ok(_))) {
                        self.clients[c].closed = true;
                    }
                    let think = if Some(c) == self.admin { self.recfg_rng.range(100, 500) } else { self.rng.range(0, 20) };
                    self.clients[c].next_op_at = self.now + think;
                }
                Event::Connected { session_id, .. } => {
                    self.note(|| format!("client {c} session {session_id:#x} connected"));
                    if Some(c) == self.admin {
                        // Auth is per connection: the superuser logs in on each one.
                        let auth = jute::Request::Auth { scheme: "digest".into(), auth: b"super:test".to_vec() };
                        if let Err(e) = self.clients[c].session.submit(self.now, &auth, 0) {
                            self.fail(format!("client {c}: cannot send the superuser's auth: {e}"));
                        }
                    }
                }
                Event::Expired => {
                    self.note(|| format!("client {c} session expired"));
                    self.new_session(c);
                    self.expired += 1;
                }
                Event::Watch(ev) => {
                    let (hid, conn, at) = (self.clients[c].history_id(), self.conn_of(c), self.now);
                    let seen = WatchSeen::Notified { path: ev.path, event: ev.event_type, conn, at };
                    self.watch_log.entry(hid).or_default().push(seen);
                }
                Event::Disconnected => {}
            }
        }
    }

    fn client_flush(&mut self, c: usize) {
        let Some(link) = self.clients[c].link.as_ref() else { return };
        if !link.up {
            return;
        }
        let gen = link.gen;
        let bytes = Bytes::copy_from_slice(self.clients[c].session.transmit());
        if bytes.is_empty() {
            return;
        }
        self.clients[c].session.sent(bytes.len());
        let at = self.cconn_at(gen, 0);
        self.schedule(at, Ev::ToServer { client: c, gen, bytes });
    }

    fn issue(&mut self, c: usize) {
        let (req, kind) = if Some(c) == self.admin {
            // Reconfigs during the faults only: the last one settles before the checks.
            if self.now >= self.cfg.fault_ms {
                self.clients[c].done = true;
                return;
            }
            match self.next_reconfig() {
                Some(op) => {
                    self.reconfigs += 1;
                    let what = format!("{:?}", op.1);
                    self.note(|| format!("client {c} RECONFIG {what}"));
                    op
                }
                None => {
                    self.clients[c].next_op_at = self.now + self.recfg_rng.range(100, 400);
                    return;
                }
            }
        } else {
            let paths = self.cfg.paths;
            let big = self.cfg.big_value;
            let (cl, rng) = (&mut self.clients[c], &mut self.rng);
            cl.next_op(rng, paths, big)
        };
        let gnow = self.now;
        let hid = self.clients[c].history_id();
        let session = self.clients[c].session.session_id();
        match self.clients[c].session.submit(gnow, &req, 0) {
            Ok(xid) => {
                let mut op = client::issued(hid, kind, gnow);
                op.session = session;
                op.xid = xid;
                self.history.push(op);
                self.clients[c].in_flight = Some(self.history.len() - 1);
                self.client_flush(c);
            }
            Err(_) => self.clients[c].next_op_at = gnow + 10,
        }
    }

    // ---- faults ----------------------------------------------------------------------

    fn fault(&mut self) {
        self.faults += 1;
        let n = self.total;
        let id = ServerId(1 + self.rng.below(n));
        match self.rng.below(10) {
            0 | 1 => {
                if self.cfg.power_loss > 0.0 && self.later_rng.chance(self.cfg.power_loss) {
                    // Every server at once (a rack's power): the one fault that can lose a
                    // txn from a whole quorum's logs, so the one that shows an ack sent
                    // before its fsync (one crash cannot: the other acks were durable).
                    self.note(|| "POWER LOSS".into());
                    for i in 0..n {
                        self.crash_and_restart(ServerId(i + 1));
                    }
                } else {
                    self.crash_and_restart(id);
                }
            }
            2 => {
                // Symmetric partition of one server.
                self.note(|| format!("PARTITION {id}"));
                for j in 1..=n {
                    let o = ServerId(j);
                    if o != id {
                        self.cut.insert((id, o));
                        self.cut.insert((o, id));
                    }
                }
                if self.rng.chance(0.5) {
                    self.isolated.insert(id);
                }
                self.break_links_of(id);
            }
            3 => {
                // One-way: what `id` sends to one peer is lost.
                let o = ServerId(1 + self.rng.below(n));
                if o != id {
                    self.note(|| format!("ONE-WAY {id} -x-> {o}"));
                    self.cut.insert((id, o));
                    let (a, b) = (self.qkey(id, o), self.qkey(o, id));
                    self.break_qconn(a, false, None);
                    self.break_qconn(b, false, None);
                }
            }
            4 => {
                self.note(|| "HEAL".into());
                self.cut.clear();
                self.isolated.clear();
            }
            5 => {
                // SIGSTOP for a while.
                let d = self.rng.range(100, 1500);
                self.note(|| format!("PAUSE {id} for {d} ms"));
                self.node_mut(id).paused_until = self.now + d;
                self.held.entry(id).or_default();
                self.schedule(self.now + d, Ev::Resume(id));
            }
            6 => {
                self.drop_election = [0.0, 0.1, 0.3][self.rng.below(3) as usize];
                let p = self.drop_election;
                self.note(|| format!("ELECTION LOSS {p}"));
            }
            7 => {
                // A wall clock jump.
                let j = self.rng.range(-5_000, 5_000);
                self.note(|| format!("WALL CLOCK {id} jumps {j} ms"));
                self.node_mut(id).wall_skew += j;
            }
            8 => {
                // A client goes away (killed, or stopped and its connection reset) for longer
                // than its session timeout: the leader expires the session and its ephemerals
                // go; the client hears of it when it comes back.
                let c = self.rng.below(self.clients.len() as u64) as usize;
                let away = self.rng.range(1_500, 3_000);
                self.note(|| format!("CLIENT {c} away for {away} ms"));
                self.drop_client_conn(c, true);
                self.clients[c].redial_at = Some(self.now + away);
            }
            _ => {
                // A silent break of one quorum connection (a pulled cable).
                let keys: Vec<QKey> = self.qconns.iter().filter(|(_, c)| c.open).map(|(k, _)| *k).collect();
                if !keys.is_empty() {
                    let k = keys[self.rng.below(keys.len() as u64) as usize];
                    self.note(|| format!("SILENT BREAK {} -> {}", k.0, k.1));
                    self.break_qconn(k, false, None);
                }
            }
        }
    }

    /// Crash, restart later; a random part of the unsynced tail survives.
    fn crash_and_restart(&mut self, id: ServerId) {
        if !self.node(id).alive() {
            return;
        }
        let unsynced = self.node(id).disk.log.len() - self.node(id).disk.synced;
        let survive = self.rng.below(unsynced as u64 + 1) as usize;
        self.note(|| format!("CRASH {id} (keeps {survive} of {unsynced} unsynced)"));
        self.crash(id, survive);
        let at = self.now + self.rng.range(50, 1500);
        self.schedule(at, Ev::Restart(id));
    }

    /// A paused server goes on: what arrived meanwhile first, in order.
    fn resume(&mut self, id: ServerId) {
        self.node_mut(id).paused_until = 0;
        let Some(held) = self.held.remove(&id) else { return };
        self.note(|| format!("RESUME {id} ({} events held)", held.len()));
        for ev in held {
            self.deliver(ev);
        }
    }

    fn crash(&mut self, id: ServerId, survive: usize) {
        // What waited for a paused server dies with it.
        self.held.remove(&id);
        self.node_mut(id).paused_until = 0;
        self.node_mut(id).crash(survive);
        // Its connections end: the OS of a dead process closes them (loud).
        let keys: Vec<QKey> = self.qconns.keys().filter(|k| k.0 == id || k.1 == id).copied().collect();
        for k in keys {
            self.break_qconn(k, true, Some(id));
        }
        let links: Vec<usize> = (0..self.clients.len())
            .filter(|&c| self.clients[c].link.as_ref().is_some_and(|l| l.server == id))
            .collect();
        for c in links {
            let gen = self.clients[c].link.as_ref().map_or(0, |l| l.gen);
            let at = self.now + self.delay();
            self.schedule(at, Ev::ClientClosed { client: c, gen });
        }
    }

    /// A partitioned server's connections stall (silently); its clients find out by timers.
    fn break_links_of(&mut self, id: ServerId) {
        let keys: Vec<QKey> = self.qconns.keys().filter(|k| k.0 == id || k.1 == id).copied().collect();
        for k in keys {
            self.break_qconn(k, false, None);
        }
        if self.isolated.contains(&id) {
            let links: Vec<usize> = (0..self.clients.len())
                .filter(|&c| self.clients[c].link.as_ref().is_some_and(|l| l.server == id))
                .collect();
            for c in links {
                // The stream stalls: nothing more arrives either way.
                if let Some(l) = self.clients[c].link.as_ref() {
                    let gen = l.gen;
                    self.cconn_last.insert(gen, [Millis::MAX / 4; 2]);
                }
            }
        }
    }

    fn heal_all(&mut self) -> Result<(), String> {
        self.note(|| "HEAL ALL".into());
        self.cut.clear();
        self.isolated.clear();
        self.drop_election = 0.0;
        for i in 0..self.nodes.len() {
            let id = ServerId(i as u64 + 1);
            self.resume(id);
            if !self.node(id).alive() {
                self.start(id)?;
            }
        }
        // Events held for paused servers or stalled streams come now.
        let late: Vec<(Millis, u64)> = self.queue.keys().filter(|k| k.0 > self.now + 100).copied().collect();
        for k in late {
            if let Some(ev) = self.queue.remove(&k) {
                if !matches!(ev, Ev::Restart(_) | Ev::Fault | Ev::Resume(_)) {
                    self.schedule(self.now + 1, ev);
                }
            }
        }
        let stalled: Vec<u64> = self.cconn_last.iter().filter(|(_, l)| l[0] >= Millis::MAX / 4).map(|(g, _)| *g).collect();
        for g in stalled {
            if let Some(&(c, _)) = self.cconns.get(&g) {
                self.drop_client_conn(c, true);
            }
        }
        Ok(())
    }

    // ---- checks ----------------------------------------------------------------------

    fn roles(&self) -> String {
        self.nodes
            .iter()
            .map(|n| match n.replica.as_ref().and_then(|r| r.zab().map(|z| (r, z))) {
                Some((r, z)) => {
                    let config = if self.cfg.reconfig { format!(" config {:#x}", node::membership_version(r.service().membership())) } else { String::new() };
                    format!("{}: {:?}{}{config}", n.id, z.role(), if z.serving() { " serving" } else { "" })
                }
                None => format!("{}: down", n.id),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The members of the newest committed config that do not serve with its leader, if
    /// each of them holds an older config (it missed a reconfig): the known gap
    /// `STALE_CONFIG_GAP`. None if some other member is stuck, or none is.
    fn stale_config_members(&self) -> Option<Vec<ServerId>> {
        if !self.cfg.reconfig {
            return None;
        }
        let config = self.final_config();
        let leader = self.serving_leader().filter(|l| config.voters().contains(l))?;
        let stuck: Vec<ServerId> = self
            .members()
            .into_iter()
            .filter(|&id| {
                let z = self.node(id).replica.as_ref().and_then(|r| r.zab());
                !z.is_some_and(|z| z.serving() && (id == leader || matches!(z.role(), Role::Following { leader: l, .. } if l == leader)))
            })
            .collect();
        let stale = |id: ServerId| {
            let shown = self.node(id).replica.as_ref().and_then(|r| r.service().membership());
            node::membership_version(shown) < config.version
        };
        (!stuck.is_empty() && stuck.iter().all(|&id| stale(id))).then_some(stuck)
    }

    /// The servers the checks expect serving, caught up and equal: every server, or in a
    /// reconfig run the members of the newest committed config.
    fn members(&self) -> Vec<ServerId> {
        if !self.cfg.reconfig {
            return (1..=self.total).map(ServerId).collect();
        }
        self.final_config().members.keys().copied().collect()
    }

    /// One serving leader, every other member serving as its follower. In a reconfig run:
    /// the leader is a voter of the newest committed config, every member has taken that
    /// config, and no server outside it serves as its leader, nor as a follower unless its
    /// own config lists it (a server readied to join follows without counting).
    fn all_serving(&self) -> bool {
        let members = self.members();
        let mut leader = None;
        for &id in &members {
            let Some(z) = self.node(id).replica.as_ref().and_then(|r| r.zab()) else { return false };
            if !z.serving() {
                return false;
            }
            match z.role() {
                Role::Leading { .. } => leader = Some(id),
                Role::Following { .. } => {}
                Role::Looking => return false,
            }
        }
        let Some(leader) = leader else { return false };
        let follows = |id: ServerId| match self.node(id).replica.as_ref().and_then(|r| r.zab()).map(|z| z.role()) {
            Some(Role::Following { leader: l, .. }) => l == leader,
            Some(Role::Leading { .. }) => id == leader,
            _ => false,
        };
        if !members.iter().all(|&id| follows(id)) {
            return false;
        }
        if !self.cfg.reconfig {
            return true;
        }
        let config = self.final_config();
        if !config.voters().contains(&leader) {
            return false;
        }
        let taken = |id: ServerId| {
            self.node(id).replica.as_ref().and_then(|r| r.service().membership()).and_then(|t| Membership::parse(t).ok())
        };
        if !members.iter().all(|&id| taken(id).as_ref() == Some(&*config)) {
            return false;
        }
        (1..=self.total).map(ServerId).filter(|id| !config.members.contains_key(id)).all(|id| {
            let Some(z) = self.node(id).replica.as_ref().and_then(|r| r.zab()) else { return true };
            match (z.role(), z.serving()) {
                (_, false) | (Role::Looking, _) => true,
                (Role::Leading { .. }, true) => false,
                (Role::Following { .. }, true) => taken(id).is_some_and(|m| m.members.contains_key(&id)),
            }
        })
    }

    fn all_caught_up(&self) -> bool {
        let last: Vec<Zxid> =
            self.members().into_iter().filter_map(|id| self.node(id).replica.as_ref().map(|r| r.service().last_zxid())).collect();
        // A restart replays the whole log, txns not yet known committed included (as
        // ZooKeeper does); a new leader then commits them by its sync. So the servers must
        // agree with each other, and be at or past every commit seen.
        let max = self.committed.txns.keys().next_back().copied().unwrap_or(Zxid::ZERO);
        last.len() == self.members().len() && last.iter().all(|z| *z == last[0] && *z >= max)
    }

    fn final_checks(&mut self) -> Result<Outcome, String> {
        if !self.all_caught_up() {
            let max = self.committed.txns.keys().next_back().copied().unwrap_or(Zxid::ZERO);
            return Err(format!(
                "after healing and settling, servers have not applied every commit (the last is {max}): {}",
                self.members()
                    .into_iter()
                    .map(|id| format!("{id}: {:?}", self.node(id).replica.as_ref().map(|r| r.service().last_zxid())))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // Every server's (member's) tree is the same.
        let members: Vec<&Node> = self.members().into_iter().map(|id| self.node(id)).collect();
        let trees: Vec<(ServerId, BTreeMap<String, String>)> =
            members.iter().filter_map(|n| Some((n.id, canonical(n.replica.as_ref()?.service().tree())))).collect();
        for w in trees.windows(2) {
            if w[0].1 != w[1].1 {
                let paths: BTreeSet<&String> = w[0].1.keys().chain(w[1].1.keys()).collect();
                let diff = paths.into_iter().find(|p| w[0].1.get(*p) != w[1].1.get(*p)).cloned().unwrap_or_default();
                return Err(format!(
                    "servers {} and {} end with different trees; first difference at {diff}: {:?} vs {:?}",
                    w[0].0,
                    w[1].0,
                    w[0].1.get(&diff),
                    w[1].1.get(&diff)
                ));
            }
        }
        // No ephemeral outlives its session, and none of an expired or closed session is
        // left on any server.
        for n in &members {
            let Some(r) = n.replica.as_ref() else { continue };
            for s in r.service().tree().sessions_with_ephemerals() {
                if r.service().sessions().get(s).is_none() {
                    return Err(format!("server {}: ephemerals of session {s} outlive it", n.id));
                }
                if self.ended.contains(&s.0) {
                    return Err(format!("server {}: ephemerals of session {s} remain after it expired or closed", n.id));
                }
            }
        }
        // Every server's tree holds the same txns (ghost state carried through replays and
        // SNAPs), and every txn a server reported committing is among them: that sequence is
        // the committed order the clients' history is checked against.
        // (A joiner's history came with its SNAP or DIFF, so it is whole from its first
        // zxid on.)
        let histories: Vec<(ServerId, &History)> = members.iter().filter(|n| n.alive()).map(|n| (n.id, &n.history)).collect();
        for w in histories.windows(2) {
            if w[0].1 != w[1].1 {
                let diff = w[0].1.iter().zip(w[1].1.iter()).find(|(a, b)| a != b).map(|(a, _)| *a.0);
                return Err(format!(
                    "servers {} and {} hold different txn sequences ({} vs {} txns; first difference at {diff:?})",
                    w[0].0,
                    w[1].0,
                    w[0].1.len(),
                    w[1].1.len()
                ));
            }
        }
        let Some(&(_, history)) = histories.first() else { return Err("no server alive at the end".into()) };
        if self.cfg.reconfig {
            // Every member shows the newest committed config.
            let config = self.final_config();
            for n in &members {
                let shown = n.replica.as_ref().and_then(|r| r.service().membership()).and_then(|t| Membership::parse(t).ok());
                if shown.as_ref() != Some(&*config) {
                    return Err(format!("server {} ends with config {:?}, not the committed {:?}", n.id, shown.map(|m| m.render()), config.render()));
                }
            }
        }
        for (z, id) in &self.committed.txns {
            if history.get(z) != Some(id) {
                return Err(format!("txn {z} was reported committed but is not in the final sequence"));
            }
        }
        let mut txns = BTreeMap::new();
        for (z, id) in history {
            match self.logged.get(&(*z, id.0, id.1, id.2)) {
                Some(t) => {
                    txns.insert(*z, t.clone());
                }
                None => return Err(format!("committed txn {z} was never logged by any server")),
            }
        }
        let mut model = check::model_check(&self.history, &txns, &self.committed.at)?;
        check::watch_check(&self.watch_log, &txns, &mut model)?;
        self.trees_match_model(&txns)?;
        // And the same history through the black-box checker (no zxids: only times).
        crate::lincheck::check(&check::to_lincheck(&self.history)).map_err(|e| format!("linearizability checker: {e}"))?;
        Ok(Outcome {
            sim_ms: self.now,
            events: self.events,
            ops: self.history.len(),
            model,
            committed: self.committed.txns.len(),
            faults: self.faults,
            elections: self.leaders.by_epoch.len(),
            snaps: self.snaps,
            truncs: self.truncs,
            expired: self.expired,
            closed: self.closed,
            reconfigs: self.reconfigs,
            configs: self.configs.len(),
        })
    }

    /// Every server's tree ends where the committed txns lead (data, version, ephemeral
    /// owner of every path the workload touched): the trees applied each multi whole.
    fn trees_match_model(&self, txns: &BTreeMap<Zxid, Txn>) -> Result<(), String> {
        let (t, _) = check::timeline(txns);
        let last = txns.keys().next_back().map_or(0, |z| z.0);
        for id in self.members() {
            let n = self.node(id);
            let Some(tree) = n.replica.as_ref().map(|r| r.service().tree()) else { continue };
            for path in t.keys() {
                let want = check::state_at(&t, path, last);
                let have = tree.lookup(path).map(|id| {
                    let st = tree.stat(id);
                    check::Znode { data: tree.data_opt(id).unwrap_or_default().to_vec(), version: st.version, owner: st.ephemeral_owner }
                });
                if have.as_ref() != want {
                    return Err(format!("server {}: {path} ends as {have:?}, but the committed txns leave {want:?}", n.id));
                }
            }
        }
        Ok(())
    }
}


fn short(msg: &QuorumMsg) -> String {
    match msg {
        QuorumMsg::Proposal(t) => {
            let mut op = format!("{:?}", t.op);
            op.truncate(80);
            format!("Proposal {} session {:#x} cxid {}: {op}", t.header.zxid, t.header.session.0, t.header.cxid)
        }
        QuorumMsg::SnapChunk { data } => format!("SnapChunk {} bytes", data.len()),
        other => {
            let mut s = format!("{other:?}");
            s.truncate(120);
            s
        }
    }
}

/// Every node of the tree: data and stat, by path.
fn canonical(tree: &crate::tree::DataTree) -> BTreeMap<String, String> {
    let mut nodes = BTreeMap::new();
    tree.for_each_preorder(|path, v| {
        let data = v.data.map(|d| String::from_utf8_lossy(&d[..d.len().min(32)]).into_owned());
        nodes.insert(path.to_string(), format!("{data:?} {:?} acl {:?}", v.raw, v.acl));
    });
    nodes
}

/// A simulated server's `server.N` entry.
fn member(id: ServerId, role: MemberRole) -> Member {
    Member { id, host: format!("sim{id}"), quorum_port: 2888, election_port: 3888, role, client: Some(("0.0.0.0".into(), 2181)) }
}

/// The config an operator gives a server that is to join: `current` plus itself, at
/// `current`'s version.
fn joining_config(current: &Membership, id: ServerId, role: MemberRole) -> String {
    let mut m = current.clone();
    m.members.insert(id, member(id, role));
    m.render()
}

fn spare_role(rng: &mut Rng) -> MemberRole {
    if rng.chance(0.6) {
        MemberRole::Participant
    } else {
        MemberRole::Observer
    }
}

fn reconfig_op(joining: Option<String>, leaving: Option<String>, version: i64) -> (jute::Request, check::OpKind) {
    let req = jute::Request::Reconfig { joining: joining.clone(), leaving: leaving.clone(), new_members: None, cur_config_id: version };
    (req, check::OpKind::Reconfig { joining, leaving, version })
}

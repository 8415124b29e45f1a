//! What the simulator records and checks: the clients' history (operations and what each
//! session saw of its watches), the committed sequence of txns, the leaders of each epoch.

use std::collections::{BTreeMap, BTreeSet};

use crate::proto::{ErrorCode, EventType, Millis, ServerId, Zxid};
use crate::txn::{Txn, TxnHeader, TxnOp};

/// A client operation, as the simulated clients issue it. Paths are children of `/` (the
/// workload's `/k*` and `/e*`), except `GetChildren`, which lists `/` itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create { path: String, data: Vec<u8>, ephemeral: bool },
    /// `version` -1 matches any version.
    SetData { path: String, data: Vec<u8>, version: i32 },
    Delete { path: String, version: i32 },
    GetData { path: String, watch: bool },
    Exists { path: String, watch: bool },
    GetChildren { path: String, watch: bool },
    /// The sync of a sync-then-read pair (the client's next op reads `path`).
    Sync { path: String },
    /// One transaction; its sub-ops name distinct paths.
    Multi(Vec<SubOp>),
    CloseSession,
    /// An incremental reconfig (superuser): `joining` a `server.N=` line, `leaving` an id,
    /// from config `version` (-1: any).
    Reconfig { joining: Option<String>, leaving: Option<String>, version: i64 },
}

/// One op of a multi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubOp {
    Check { path: String, version: i32 },
    Create { path: String, data: Vec<u8> },
    SetData { path: String, data: Vec<u8>, version: i32 },
    Delete { path: String, version: i32 },
}

impl SubOp {
    pub fn path(&self) -> &str {
        match self {
            SubOp::Check { path, .. } | SubOp::Create { path, .. } | SubOp::SetData { path, .. } | SubOp::Delete { path, .. } => path,
        }
    }
}

impl OpKind {
    /// Whether it takes a zxid of its own (a txn, possibly an error txn).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            OpKind::Create { .. }
                | OpKind::SetData { .. }
                | OpKind::Delete { .. }
                | OpKind::Multi(_)
                | OpKind::CloseSession
                | OpKind::Reconfig { .. }
        )
    }

    /// The watch a successful answer registers: (path, child watch?).
    pub fn watch(&self) -> Option<(&str, bool)> {
        match self {
            OpKind::GetData { path, watch: true } | OpKind::Exists { path, watch: true } => Some((path, false)),
            OpKind::GetChildren { path, watch: true } => Some((path, true)),
            _ => None,
        }
    }
}

/// What a successful reply said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// create, delete, sync, closeSession.
    Done,
    /// setData, exists.
    Stat { version: i32, owner: i64 },
    Data { data: Vec<u8>, version: i32, owner: i64 },
    Children(Vec<String>),
    /// Per sub-op: Ok (with the new version of a setData) or the error code ZooKeeper puts
    /// there (0 before the failing op, its code, -2 after it).
    Multi(Vec<Result<Option<i32>, i32>>),
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(Answer),
    /// The server's error code.
    Err(i32),
    /// No answer (connection lost, session expired): it may or may not have happened.
    Unknown,
}

/// One operation of the history.
#[derive(Clone, Debug)]
pub struct HistOp {
    /// The client session that issued it (operations of one session are sequential).
    pub client: u64,
    pub kind: OpKind,
    /// Global simulated time it was issued / answered.
    pub call: Millis,
    pub ret: Option<Millis>,
    pub outcome: Outcome,
    /// The zxid of the reply header (for writes: the txn's zxid).
    pub zxid: Option<i64>,
    /// The ZooKeeper session id and xid it was sent with.
    pub session: i64,
    pub xid: i32,
}

/// What one session saw of its watches, in the order it saw it; `conn` names the
/// connection (a reconnect changes it).
#[derive(Clone, Debug)]
pub enum WatchSeen {
    /// A watching read succeeded (exists: NoNode too) with its reply at `zxid`.
    Registered { path: String, child: bool, zxid: i64, conn: u64 },
    /// A notification arrived.
    Notified { path: String, event: i32, conn: u64, at: Millis },
    /// A reply (a ping's too) raised the zxid the session has seen to `zxid`.
    Zxid { zxid: i64, conn: u64, at: Millis },
}

/// The committed sequence as the servers applied it.
#[derive(Default)]
pub struct Committed {
    /// zxid → who issued the txn (session, cxid) and when (identifies it across servers).
    pub txns: BTreeMap<Zxid, (i64, i32, i64)>,
    /// zxid → when a server first reported applying it (global time): from then on it is
    /// committed, and a sync issued later must see it.
    pub at: BTreeMap<Zxid, Millis>,
}

impl Committed {
    /// A server applied `h` at global time `now`: it must be the txn every other server
    /// applied at that zxid.
    pub fn applied(&mut self, server: ServerId, h: &TxnHeader, now: Millis) -> Result<(), String> {
        let id = (h.session.0, h.cxid, h.time_ms);
        self.at.entry(h.zxid).or_insert(now);
        match self.txns.get(&h.zxid) {
            Some(seen) if *seen != id => Err(format!(
                "committed histories diverge at {}: server {server} applied (session {:#x}, cxid {}, time {}), \
                 another server (session {:#x}, cxid {}, time {})",
                h.zxid, id.0, id.1, id.2, seen.0, seen.1, seen.2
            )),
            Some(_) => Ok(()),
            None => {
                self.txns.insert(h.zxid, id);
                Ok(())
            }
        }
    }
}

/// Serving leaders by epoch: at most one per epoch.
#[derive(Default)]
pub struct Leaders {
    pub by_epoch: BTreeMap<u32, ServerId>,
}

impl Leaders {
    pub fn serving(&mut self, epoch: u32, id: ServerId) -> Result<(), String> {
        match self.by_epoch.insert(epoch, id) {
            Some(other) if other != id => Err(format!("two leaders in epoch {epoch}: servers {other} and {id}")),
            _ => Ok(()),
        }
    }
}

/// A znode as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Znode {
    pub data: Vec<u8>,
    pub version: i32,
    /// The owning session of an ephemeral, else 0.
    pub owner: i64,
}

/// Path states along the committed order: for each path, (zxid, state after it) at each
/// change; `None` = absent.
pub type Timeline = BTreeMap<String, Vec<(Zxid, Option<Znode>)>>;

/// The watch events each committed txn triggers, by path: (zxid, event), in order.
pub type Triggers = BTreeMap<String, Vec<(i64, EventType)>>;

/// The parent of a path the workload touches (all are children of `/`).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The states of every path the committed txns touch, and the watch events they trigger
/// (`DataTree`'s rules: a create fires NodeCreated on the path and NodeChildrenChanged on
/// its parent, a delete NodeDeleted and NodeChildrenChanged, a setData NodeDataChanged; a
/// closed or expired session deletes its ephemerals; a multi's ops in order, a failed
/// multi nothing).
pub fn timeline(txns: &BTreeMap<Zxid, Txn>) -> (Timeline, Triggers) {
    fn cur<'a>(t: &'a Timeline, p: &str) -> Option<&'a Znode> {
        t.get(p).and_then(|v| v.last()).and_then(|s| s.1.as_ref())
    }
    fn fire(tr: &mut Triggers, z: Zxid, p: &str, ev: EventType) {
        tr.entry(p.to_string()).or_default().push((z.0, ev));
    }
    fn delete(t: &mut Timeline, tr: &mut Triggers, z: Zxid, path: &str) {
        if cur(t, path).is_some() {
            t.entry(path.to_string()).or_default().push((z, None));
            fire(tr, z, path, EventType::NodeDeleted);
            fire(tr, z, parent(path), EventType::NodeChildrenChanged);
        }
    }
    fn apply(t: &mut Timeline, tr: &mut Triggers, z: Zxid, session: i64, op: &TxnOp) {
        match op {
            TxnOp::Create { path, data, ephemeral_owner, .. } => {
                let node = Znode { data: data.clone().unwrap_or_default(), version: 0, owner: *ephemeral_owner };
                t.entry(path.clone()).or_default().push((z, Some(node)));
                fire(tr, z, path, EventType::NodeCreated);
                fire(tr, z, parent(path), EventType::NodeChildrenChanged);
            }
            TxnOp::SetData { path, data, version } => {
                let owner = cur(t, path).map_or(0, |n| n.owner);
                let node = Znode { data: data.clone().unwrap_or_default(), version: *version, owner };
                t.entry(path.clone()).or_default().push((z, Some(node)));
                fire(tr, z, path, EventType::NodeDataChanged);
            }
            TxnOp::Delete { path } => delete(t, tr, z, path),
            TxnOp::CloseSession => {
                let owned: Vec<String> = t.keys().filter(|p| cur(t, p).is_some_and(|n| n.owner == session)).cloned().collect();
                for p in owned {
                    delete(t, tr, z, &p);
                }
            }
            TxnOp::Multi(ops) => ops.iter().for_each(|o| apply(t, tr, z, session, o)),
            _ => {}
        }
    }
    let (mut t, mut tr) = (Timeline::new(), Triggers::new());
    for (z, txn) in txns {
        apply(&mut t, &mut tr, *z, txn.header.session.0, &txn.op);
    }
    (t, tr)
}

/// The state of `path` once every txn up to `z` is applied.
pub fn state_at<'a>(t: &'a Timeline, path: &str, z: i64) -> Option<&'a Znode> {
    let v = t.get(path)?;
    let i = v.partition_point(|(zz, _)| zz.0 <= z);
    v[..i].last().and_then(|s| s.1.as_ref())
}

/// What the model check looked at.
#[derive(Clone, Copy, Debug, Default)]
pub struct ModelStats {
    pub writes_acked: usize,
    pub errors_checked: usize,
    pub reads_checked: usize,
    pub multis_checked: usize,
    pub syncs_checked: usize,
    /// Watches registered and notifications checked.
    pub watches: usize,
    pub notifications: usize,
    /// Reconfigs acknowledged, and refused for one of the expected reasons
    /// (ReconfigInProgress, NewConfigNoQuorum, BadVersion).
    pub reconfigs_acked: usize,
    pub reconfigs_refused: usize,
}

const NO_NODE: i32 = -101;
const NODE_EXISTS: i32 = -110;
const BAD_VERSION: i32 = -103;
const NEW_CONFIG_NO_QUORUM: i32 = -13;
const RECONFIG_IN_PROGRESS: i32 = -14;

/// Whether a write of this shape fails with `code` for a reason the state before it gives
/// (`before`), or (`code` 0) succeeds there.
fn fits(code: i32, sub: &SubOp, before: Option<&Znode>) -> bool {
    match (sub, before) {
        (SubOp::Create { .. }, None) => code == 0,
        (SubOp::Create { .. }, Some(_)) => code == NODE_EXISTS,
        (SubOp::Check { .. } | SubOp::SetData { .. } | SubOp::Delete { .. }, None) => code == NO_NODE,
        (SubOp::Check { version, .. } | SubOp::SetData { version, .. } | SubOp::Delete { version, .. }, Some(n)) => {
            if *version == -1 || *version == n.version {
                code == 0
            } else {
                code == BAD_VERSION
            }
        }
    }
}

/// A plain write as a sub-op (the rules are the same).
fn as_sub(kind: &OpKind) -> Option<SubOp> {
    Some(match kind.clone() {
        OpKind::Create { path, data, .. } => SubOp::Create { path, data },
        OpKind::SetData { path, data, version } => SubOp::SetData { path, data, version },
        OpKind::Delete { path, version } => SubOp::Delete { path, version },
        _ => return None,
    })
}

/// The state a successful sub-op leaves, checked against the state after its txn.
fn applied_ok(sub: &SubOp, result: Option<i32>, owner: i64, before: Option<&Znode>, after: Option<&Znode>) -> bool {
    match sub {
        SubOp::Check { .. } => after == before,
        SubOp::Create { data, .. } => after == Some(&Znode { data: data.clone(), version: 0, owner }),
        SubOp::SetData { data, .. } => after.is_some_and(|n| {
            &n.data == data && result.is_none_or(|v| v == n.version) && before.is_some_and(|b| b.version.wrapping_add(1) == n.version)
        }),
        SubOp::Delete { .. } => after.is_none(),
    }
}

/// The clients' history against the committed order. Every reply names a zxid (a write's:
/// its txn; a read's: the state the server had applied), so this needs no search:
/// - each acknowledged write is the committed txn at its zxid (no acknowledged write lost)
///   and leaves the state it should (an ephemeral owned by its session);
/// - writes are linearizable: the zxid order respects real time (a write that completed
///   before another began has the smaller zxid), and each failed write that took a zxid
///   (ZooKeeper's error txns) fails for a reason the state before it gives;
/// - a multi is one txn at one zxid, all or nothing: if it succeeded, every op's effect is
///   in the state after it; if it failed, its txn changes nothing, the ops before the
///   failing one would have succeeded and the failing one fails for a reason the state
///   gives;
/// - closing a session removes its ephemerals in the same txn;
/// - reads (getData, exists, getChildren of `/`) are sequentially consistent per session:
///   a read returns exactly the state at its reply's zxid, and a session's zxids never go
///   back (its own writes included), across reconnects to other servers;
/// - a sync's reply (and so the read after it) reflects at least every txn some server had
///   applied before the sync was issued.
pub fn model_check(history: &[HistOp], txns: &BTreeMap<Zxid, Txn>, committed_at: &BTreeMap<Zxid, Millis>) -> Result<ModelStats, String> {
    let mut stats = ModelStats::default();
    let (t, _) = timeline(txns);
    let ours = |op: &HistOp, z: i64| txns.get(&Zxid(z)).is_some_and(|x| x.header.session.0 == op.session && x.header.cxid == op.xid);
    // Real-time order of writes: sorted by zxid, no write may have finished before an
    // earlier-zxid write began.
    let mut writes: Vec<(i64, &HistOp)> = history
        .iter()
        .filter(|o| o.kind.is_write() && o.ret.is_some())
        .filter_map(|o| Some((o.zxid?, o)))
        .filter(|(z, o)| ours(o, *z))
        .collect();
    writes.sort_by_key(|(z, _)| *z);
    let mut latest_call: Option<(&HistOp, i64)> = None;
    for (z, op) in &writes {
        if let (Some((b, bz)), Some(ret)) = (latest_call, op.ret) {
            if ret < b.call {
                return Err(format!(
                    "writes not linearizable: {:?} (zxid {z:#x}) completed at {ret} before {:?} (zxid {bz:#x}) \
                     began at {}, yet was ordered after it",
                    op.kind, b.kind, b.call
                ));
            }
        }
        if latest_call.is_none_or(|(b, _)| op.call > b.call) {
            latest_call = Some((op, *z));
        }
    }
    // The highest zxid applied somewhere by each time: (time, running max), by time.
    let mut by_time: Vec<(Millis, i64)> = committed_at.iter().map(|(z, at)| (*at, z.0)).collect();
    by_time.sort();
    let mut max = i64::MIN;
    for e in by_time.iter_mut() {
        max = max.max(e.1);
        e.1 = max;
    }
    // Per session, in the order issued.
    let mut by_session: BTreeMap<u64, Vec<&HistOp>> = BTreeMap::new();
    for op in history {
        by_session.entry(op.client).or_default().push(op);
    }
    for ops in by_session.values_mut() {
        ops.sort_by_key(|o| o.call);
        let mut floor = i64::MIN;
        let mut floor_op: Option<&HistOp> = None;
        for op in ops.iter() {
            let Some(z) = op.zxid else { continue };
            if matches!(op.outcome, Outcome::Unknown) {
                continue;
            }
            if z < floor {
                return Err(format!(
                    "session {:#x} went back in time: {:?} answered at zxid {z:#x} after {:?} at {floor:#x}",
                    op.session,
                    op.kind,
                    floor_op.map(|o| &o.kind)
                ));
            }
            floor = z;
            floor_op = Some(op);
            if op.kind.is_write() {
                check_write(op, z, txns, &t, &ours, &mut stats)?;
            } else {
                check_read(op, z, &t, &by_time, &mut stats)?;
            }
        }
    }
    Ok(stats)
}

fn check_read(op: &HistOp, z: i64, t: &Timeline, by_time: &[(Millis, i64)], stats: &mut ModelStats) -> Result<(), String> {
    let bad = |what: String, path: &str| {
        let state = state_at(t, path, z).map_or("absent".to_string(), show_node);
        Err(format!("{:?} by session {:#x} at zxid {z:#x} {what}, but the committed state there is {state}", op.kind, op.session))
    };
    stats.reads_checked += 1;
    match (&op.kind, &op.outcome) {
        (OpKind::GetData { path, .. }, Outcome::Ok(Answer::Data { data, version, owner })) => {
            let seen = Znode { data: data.clone(), version: *version, owner: *owner };
            if state_at(t, path, z) != Some(&seen) {
                return bad(format!("returned {}", show_node(&seen)), path);
            }
        }
        (OpKind::Exists { path, .. }, Outcome::Ok(Answer::Stat { version, owner })) => {
            if !state_at(t, path, z).is_some_and(|n| n.version == *version && n.owner == *owner) {
                return bad(format!("returned version {version} owner {owner:#x}"), path);
            }
        }
        (OpKind::GetData { path, .. } | OpKind::Exists { path, .. }, Outcome::Err(NO_NODE)) => {
            if state_at(t, path, z).is_some() {
                return bad("said NoNode".into(), path);
            }
        }
        (OpKind::GetChildren { path, .. }, Outcome::Ok(Answer::Children(names))) => {
            // Only the workload's paths (the tree has /zookeeper too).
            let seen: BTreeSet<String> =
                names.iter().map(|n| format!("{}/{n}", path.trim_end_matches('/'))).filter(|p| t.contains_key(p)).collect();
            let want: BTreeSet<String> = t.keys().filter(|p| parent(p) == path && state_at(t, p, z).is_some()).cloned().collect();
            if seen != want {
                return Err(format!(
                    "getChildren {path} by session {:#x} at zxid {z:#x} returned {seen:?}, but the committed children \
                     there are {want:?}",
                    op.session
                ));
            }
        }
        (OpKind::Sync { path }, Outcome::Ok(_)) => {
            stats.syncs_checked += 1;
            let i = by_time.partition_point(|(at, _)| *at < op.call);
            if let Some(&(_, need)) = i.checked_sub(1).and_then(|i| by_time.get(i)) {
                if z < need {
                    return Err(format!(
                        "sync {path} by session {:#x} issued at {} was answered at zxid {z:#x}, but {need:#x} was \
                         already committed then",
                        op.session, op.call
                    ));
                }
            }
        }
        _ => stats.reads_checked -= 1,
    }
    Ok(())
}

fn check_write(
    op: &HistOp,
    z: i64,
    txns: &BTreeMap<Zxid, Txn>,
    t: &Timeline,
    ours: &dyn Fn(&HistOp, i64) -> bool,
    stats: &mut ModelStats,
) -> Result<(), String> {
    let before = |p: &str| state_at(t, p, z - 1);
    let after = |p: &str| state_at(t, p, z);
    let txn = || txns.get(&Zxid(z)).map_or("missing".to_string(), |x| format!("{:?}", x.header));
    let kind = &op.kind;
    match &op.outcome {
        Outcome::Ok(answer) => {
            stats.writes_acked += 1;
            if !ours(op, z) {
                return Err(format!(
                    "acknowledged write lost: {kind:?} by session {:#x} xid {} was answered with zxid {z:#x}, but \
                     the committed txn there is {}",
                    op.session,
                    op.xid,
                    txn()
                ));
            }
            let ok = match (kind, answer) {
                (OpKind::Create { ephemeral, .. }, _) => {
                    let sub = as_sub(kind).expect("a create");
                    let owner = if *ephemeral { op.session } else { 0 };
                    applied_ok(&sub, None, owner, before(sub.path()), after(sub.path()))
                }
                (OpKind::SetData { path, .. }, Answer::Stat { version, .. }) => {
                    applied_ok(&as_sub(kind).expect("a setData"), Some(*version), 0, before(path), after(path))
                }
                (OpKind::Delete { path, .. }, _) => after(path).is_none(),
                (OpKind::CloseSession, _) => !t.keys().any(|p| after(p).is_some_and(|n| n.owner == op.session)),
                (OpKind::Multi(subs), Answer::Multi(results)) => return check_multi(op, z, subs, results, txns, t, stats),
                (OpKind::Reconfig { version, .. }, Answer::Data { data, .. }) => {
                    stats.reconfigs_acked += 1;
                    return check_reconfig(op, z, *version, Ok(data), txns);
                }
                _ => false,
            };
            if !ok {
                let states: Vec<String> = kind_paths(kind).iter().map(|p| format!("{p}: {:?} -> {:?}", before(p), after(p))).collect();
                return Err(format!(
                    "{kind:?} by session {:#x} succeeded at zxid {z:#x} ({answer:?}), but the committed states do not \
                     show it: {}",
                    op.session,
                    states.join("; ")
                ));
            }
        }
        Outcome::Err(code) if matches!(kind, OpKind::Reconfig { .. }) => {
            if let OpKind::Reconfig { version, .. } = kind {
                stats.reconfigs_refused += 1;
                return check_reconfig(op, z, *version, Err(*code), txns);
            }
        }
        Outcome::Err(code) if ours(op, z) => {
            stats.errors_checked += 1;
            let ok = as_sub(kind).is_some_and(|s| *code != 0 && fits(*code, &s, before(s.path())));
            if !ok {
                let path = kind_paths(kind).first().copied().unwrap_or("");
                return Err(format!(
                    "{kind:?} by session {:#x} failed with {code} at zxid {z:#x}, but the state before it was {:?} \
                     (the path's committed changes: {})",
                    op.session,
                    before(path),
                    changes(t, path, txns)
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The config version in force just before `z`: the zxid of the last reconfig txn below it
/// (0: the static config).
fn config_version_before(txns: &BTreeMap<Zxid, Txn>, z: i64) -> i64 {
    txns.range(..Zxid(z)).rev().find(|(_, t)| matches!(t.op, TxnOp::Reconfig { .. })).map_or(0, |(zz, _)| zz.0)
}

/// A reconfig's answer: an acknowledged one is the committed reconfig txn at its zxid (no
/// lost acknowledged reconfig), returns what that txn set, at version = its zxid, and was
/// asked of the version in force before it; a refusal is one of the expected ones (in
/// flight, no synced quorum of the new voters, a stale version) and a BadVersion one named
/// a version other than the one in force when it was refused (only checkable if it took a
/// zxid of its own, as an error txn does).
fn check_reconfig(op: &HistOp, z: i64, asked: i64, answer: Result<&[u8], i32>, txns: &BTreeMap<Zxid, Txn>) -> Result<(), String> {
    let fail = |why: String| Err(format!("{:?} by session {:#x} xid {} answered at zxid {z:#x}: {why}", op.kind, op.session, op.xid));
    let txn = txns.get(&Zxid(z)).filter(|t| t.header.session.0 == op.session && t.header.cxid == op.xid);
    let in_force = config_version_before(txns, z);
    match answer {
        Ok(data) => {
            let Some(TxnOp::Reconfig { data: logged }) = txn.map(|t| &t.op) else {
                return fail(format!("acknowledged reconfig lost: the committed txn there is {:?}", txns.get(&Zxid(z)).map(|t| &t.header)));
            };
            if logged.as_slice() != data {
                return fail("the reply's config is not the one committed".into());
            }
            let text = String::from_utf8_lossy(data);
            match crate::reconfig::Membership::parse(&text) {
                Ok(m) if m.version == z => {}
                other => return fail(format!("the new config's version is not the txn's zxid: {other:?}")),
            }
            if asked != -1 && asked != in_force {
                return fail(format!("it asked for version {asked:#x}, but {in_force:#x} was in force"));
            }
        }
        Err(NEW_CONFIG_NO_QUORUM | RECONFIG_IN_PROGRESS) => {}
        Err(BAD_VERSION) => {
            if txn.is_some() && (asked == -1 || asked == in_force) {
                return fail(format!("BadVersion, but it asked for {asked:#x} and {in_force:#x} was in force"));
            }
        }
        Err(code) => return fail(format!("refused with {code}, not one of the expected refusals")),
    }
    Ok(())
}

/// A multi's reply against its txn and the states around it.
fn check_multi(
    op: &HistOp,
    z: i64,
    subs: &[SubOp],
    results: &[Result<Option<i32>, i32>],
    txns: &BTreeMap<Zxid, Txn>,
    t: &Timeline,
    stats: &mut ModelStats,
) -> Result<(), String> {
    stats.multis_checked += 1;
    let before = |p: &str| state_at(t, p, z - 1);
    let after = |p: &str| state_at(t, p, z);
    let fail = |why: String| Err(format!("multi {subs:?} by session {:#x} at zxid {z:#x} answered {results:?}: {why}", op.session));
    if results.len() != subs.len() {
        return fail("not one result per op".into());
    }
    let Some(TxnOp::Multi(logged)) = txns.get(&Zxid(z)).map(|x| &x.op) else {
        return fail("the txn there is not a multi".into());
    };
    let errors = logged.iter().filter(|o| matches!(o, TxnOp::Error { .. })).count();
    match results.iter().position(|r| r.is_err_and(|c| c != 0)) {
        None => {
            if errors != 0 {
                return fail(format!("it succeeded, but its txn holds {errors} error ops"));
            }
            for (sub, r) in subs.iter().zip(results) {
                let Ok(version) = r else { return fail("a result 0 in a success".into()) };
                if !fits(0, sub, before(sub.path())) || !applied_ok(sub, *version, 0, before(sub.path()), after(sub.path())) {
                    return fail(format!("{sub:?} went {:?} -> {:?}", before(sub.path()), after(sub.path())));
                }
            }
        }
        Some(at) => {
            if errors != logged.len() {
                return fail("it failed, but its txn changes something (not all or nothing)".into());
            }
            let code = results[at].err().unwrap_or(0);
            for (i, (sub, r)) in subs.iter().zip(results).enumerate() {
                let want = match i.cmp(&at) {
                    std::cmp::Ordering::Less => Err(0),
                    std::cmp::Ordering::Equal => Err(code),
                    std::cmp::Ordering::Greater => Err(ErrorCode::RuntimeInconsistency.code()),
                };
                if *r != want {
                    return fail(format!("result {i} is {r:?}, not {want:?}"));
                }
                if i <= at && !fits(if i < at { 0 } else { code }, sub, before(sub.path())) {
                    return fail(format!("{sub:?} does not fit the state before it, {:?}", before(sub.path())));
                }
                if after(sub.path()) != before(sub.path()) {
                    return fail(format!("{} changed although the multi failed", sub.path()));
                }
            }
        }
    }
    Ok(())
}

fn kind_paths(k: &OpKind) -> Vec<&str> {
    match k {
        OpKind::Create { path, .. }
        | OpKind::SetData { path, .. }
        | OpKind::Delete { path, .. }
        | OpKind::GetData { path, .. }
        | OpKind::Exists { path, .. }
        | OpKind::GetChildren { path, .. }
        | OpKind::Sync { path } => vec![path],
        OpKind::Multi(subs) => subs.iter().map(SubOp::path).collect(),
        OpKind::CloseSession | OpKind::Reconfig { .. } => vec![],
    }
}

/// The last few committed changes of a path, with the txns that made them (for failures).
fn changes(t: &Timeline, path: &str, txns: &BTreeMap<Zxid, Txn>) -> String {
    let v = t.get(path).map_or(&[][..], |v| &v[..]);
    v[v.len().saturating_sub(6)..]
        .iter()
        .map(|(z, n)| {
            let h = txns.get(z).map(|x| format!("session {:#x} {:?}", x.header.session.0, x.op)).unwrap_or_default();
            let mut h = h;
            h.truncate(160);
            format!("{z} -> {}: {h}", n.as_ref().map_or("absent".to_string(), show_node))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn show_node(n: &Znode) -> String {
    format!("version {} owner {:#x} ({})", n.version, n.owner, show(&n.data))
}

fn show(d: &[u8]) -> String {
    if d.len() <= 40 {
        String::from_utf8_lossy(d).into_owned()
    } else {
        format!("{}… {} bytes", String::from_utf8_lossy(&d[..24]), d.len())
    }
}

/// A watch a session holds, as far as it knows.
struct Armed {
    /// The zxid of the reply that registered it: it fires for the first change after it.
    zxid: i64,
    conn: u64,
}

fn event_name(code: i32) -> String {
    [EventType::NodeCreated, EventType::NodeDeleted, EventType::NodeDataChanged, EventType::NodeChildrenChanged]
        .into_iter()
        .find(|e| e.code() == code)
        .map_or(format!("event {code}"), |e| format!("{e:?}"))
}

/// ZooKeeper's watch guarantees, per session, against the committed order (`Triggers`):
/// - a watch fires at most once per registration (one-shot; registering the same watch
///   again before it fires is the same registration, as on the server);
/// - a notification for path P of type T stands for a committed txn that changed P after
///   the registration's zxid: on the connection that registered it, exactly the first
///   such change, of that type; after a reconnect (setWatches with the last zxid seen may
///   report a later change, or a delete-and-recreate as NodeDataChanged) some change;
/// - the session sees the notification before anything that reflects the triggering txn:
///   no reply (a ping's included) on the registering connection carries a zxid at or past
///   it while the notification is still due. Together with the final pings (every server
///   has applied everything by then) this is also "a watch whose path changed does fire".
///   A reconnect ends these two: the client re-arms its watches with setWatches, and an
///   exists watch on a node created and deleted meanwhile is legitimately lost.
pub fn watch_check(log: &BTreeMap<u64, Vec<WatchSeen>>, txns: &BTreeMap<Zxid, Txn>, stats: &mut ModelStats) -> Result<(), String> {
    let (_, triggers) = timeline(txns);
    // The first event after `zxid` that fires a data (or child) watch on `path`.
    let first = |path: &str, child: bool, zxid: i64| -> Option<(i64, i32)> {
        let fires = |e: EventType| match e {
            EventType::NodeDeleted => true,
            EventType::NodeChildrenChanged => child,
            EventType::NodeCreated | EventType::NodeDataChanged => !child,
            _ => false,
        };
        let v = triggers.get(path)?;
        let i = v.partition_point(|(z, _)| *z <= zxid);
        v[i..].iter().find(|(_, e)| fires(*e)).map(|(z, e)| (*z, e.code()))
    };
    for (session, seen) in log {
        let mut armed: BTreeMap<(String, bool), Armed> = BTreeMap::new();
        for s in seen {
            match s {
                WatchSeen::Registered { path, child, zxid, conn } => {
                    stats.watches += 1;
                    armed.entry((path.clone(), *child)).or_insert(Armed { zxid: *zxid, conn: *conn });
                }
                WatchSeen::Notified { path, event, conn, at } => {
                    stats.notifications += 1;
                    let kinds: &[bool] = match *event {
                        e if e == EventType::NodeChildrenChanged.code() => &[true],
                        e if e == EventType::NodeDeleted.code() => &[false, true],
                        _ => &[false],
                    };
                    let hits: Vec<(bool, Armed)> = kinds.iter().filter_map(|k| Some((*k, armed.remove(&(path.clone(), *k))?))).collect();
                    if hits.is_empty() {
                        return Err(format!(
                            "watch: client {} session #{} got {} for {path} at {at} with no watch armed there (a watch \
                             fired twice, or one never registered)",
                            session >> 16,
                            session & 0xffff,
                            event_name(*event)
                        ));
                    }
                    for (child, a) in hits {
                        let t = first(path, child, a.zxid);
                        let ok = match t {
                            Some((_, e)) if a.conn == *conn => e == *event,
                            Some(_) => true,
                            None => false,
                        };
                        if !ok {
                            return Err(format!(
                                "watch: client {} session #{} got {} for {path} at {at}, but the first change that fires \
                                 its {} watch (registered at zxid {:#x}{}) is {}",
                                session >> 16,
                                session & 0xffff,
                                event_name(*event),
                                if child { "child" } else { "data" },
                                a.zxid,
                                if a.conn == *conn { "" } else { ", before a reconnect" },
                                t.map_or("none".to_string(), |(z, e)| format!("{} at {z:#x}", event_name(e)))
                            ));
                        }
                    }
                }
                WatchSeen::Zxid { zxid, conn, at } => {
                    for ((path, child), a) in armed.iter().filter(|(_, a)| a.conn == *conn) {
                        if let Some((tz, e)) = first(path, *child, a.zxid).filter(|(tz, _)| tz <= zxid) {
                            return Err(format!(
                                "watch lost or late: client {} session #{} registered a {} watch on {path} at zxid {:#x}; \
                                 the txn at {tz:#x} fires it ({}), yet at {at} a reply on the same connection reflected \
                                 zxid {zxid:#x} with no notification before it",
                                session >> 16,
                                session & 0xffff,
                                if *child { "child" } else { "data" },
                                a.zxid,
                                event_name(e)
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Paths the black-box checker sees: the `/k*` ones (`/e*` hold ephemerals, which a
/// session's end deletes with no client op to show for it).
fn lincheck_path(p: &str) -> bool {
    p.starts_with("/k")
}

/// The history in the black-box checker's terms (`lincheck`): no zxids, only what each
/// client saw and when. Only create / setData / delete / getData on the `/k*` paths; a
/// multi counts as its writes, each on its own path (a per-path projection: the checker
/// checks paths one by one); a failed multi changed nothing and is left out, as are errors
/// other than the three the checker models.
pub fn to_lincheck(history: &[HistOp]) -> Vec<crate::lincheck::Entry> {
    use crate::lincheck::{Entry, Op as L, Outcome as O};
    let mut out = Vec::new();
    for h in history {
        let call = h.call as u64;
        let ret = h.ret.map(|r| (r as u64).max(call + 1));
        let mut push = |op: L, outcome: Option<O>| {
            if !lincheck_path(op.path()) {
                return;
            }
            out.push(match (outcome, ret) {
                (Some(o), Some(r)) => Entry::done(h.client, call, r, op, o),
                _ => Entry::unknown(h.client, call, op),
            });
        };
        let known = !matches!(h.outcome, Outcome::Unknown);
        let plain = |o: &Outcome| match o {
            Outcome::Ok(Answer::Stat { version, .. }) => Some(Some(O::SetOk { version: *version })),
            Outcome::Ok(Answer::Data { data, version, .. }) => Some(Some(O::Data { data: data.clone(), version: *version })),
            Outcome::Ok(_) => Some(Some(O::Ok)),
            Outcome::Err(NODE_EXISTS) => Some(Some(O::NodeExists)),
            Outcome::Err(NO_NODE) => Some(Some(O::NoNode)),
            Outcome::Err(BAD_VERSION) => Some(Some(O::BadVersion)),
            Outcome::Err(_) => None,
            Outcome::Unknown => Some(None),
        };
        match &h.kind {
            OpKind::Create { path, data, ephemeral: false } => {
                if let Some(o) = plain(&h.outcome) {
                    push(L::Create { path: path.clone(), data: data.clone() }, o);
                }
            }
            OpKind::SetData { path, data, version } => {
                if let Some(o) = plain(&h.outcome) {
                    push(L::SetData { path: path.clone(), data: data.clone(), version: *version }, o);
                }
            }
            OpKind::Delete { path, version } => {
                if let Some(o) = plain(&h.outcome) {
                    push(L::Delete { path: path.clone(), version: *version }, o);
                }
            }
            OpKind::GetData { path, .. } if known => {
                if let Some(o) = plain(&h.outcome) {
                    push(L::GetData { path: path.clone() }, o);
                }
            }
            OpKind::Multi(subs) => {
                let results: Option<&Vec<Result<Option<i32>, i32>>> = match &h.outcome {
                    Outcome::Ok(Answer::Multi(r)) if r.iter().all(|r| r.is_ok()) => Some(r),
                    Outcome::Unknown => None,
                    _ => continue,
                };
                for (i, sub) in subs.iter().enumerate() {
                    let r = results.and_then(|r| r.get(i)).map(|r| r.ok().flatten());
                    match sub {
                        SubOp::Check { .. } => {}
                        SubOp::Create { path, data } => push(L::Create { path: path.clone(), data: data.clone() }, r.map(|_| O::Ok)),
                        SubOp::SetData { path, data, version } => push(
                            L::SetData { path: path.clone(), data: data.clone(), version: *version },
                            r.map(|v| O::SetOk { version: v.unwrap_or(-1) }),
                        ),
                        SubOp::Delete { path, version } => push(L::Delete { path: path.clone(), version: *version }, r.map(|_| O::Ok)),
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::SessionId;

    fn txn(z: i64, session: i64, cxid: i32, op: TxnOp) -> (Zxid, Txn) {
        (Zxid(z), Txn { header: TxnHeader { session: SessionId(session), cxid, zxid: Zxid(z), time_ms: 0 }, op })
    }

    fn create(path: &str, owner: i64) -> TxnOp {
        TxnOp::Create { path: path.into(), data: Some(b"v".to_vec()), acl: vec![], ephemeral_owner: owner, parent_cversion: -1 }
    }

    fn set(path: &str, version: i32) -> TxnOp {
        TxnOp::SetData { path: path.into(), data: Some(b"w".to_vec()), version }
    }

    /// /k0 created at 1, set at 2 and 3.
    fn txns() -> BTreeMap<Zxid, Txn> {
        [txn(1, 9, 1, create("/k0", 0)), txn(2, 9, 2, set("/k0", 1)), txn(3, 9, 3, set("/k0", 2))].into_iter().collect()
    }

    fn reg(zxid: i64, conn: u64) -> WatchSeen {
        WatchSeen::Registered { path: "/k0".into(), child: false, zxid, conn }
    }

    fn note(event: EventType, conn: u64) -> WatchSeen {
        WatchSeen::Notified { path: "/k0".into(), event: event.code(), conn, at: 0 }
    }

    fn seen(zxid: i64, conn: u64) -> WatchSeen {
        WatchSeen::Zxid { zxid, conn, at: 0 }
    }

    fn watch(log: Vec<WatchSeen>) -> Result<(), String> {
        watch_check(&[(1, log)].into_iter().collect(), &txns(), &mut ModelStats::default())
    }

    #[test]
    fn a_watch_that_fires_once_before_the_change_shows_passes() {
        assert_eq!(watch(vec![reg(1, 1), note(EventType::NodeDataChanged, 1), seen(2, 1), seen(3, 1)]), Ok(()));
    }

    #[test]
    fn a_watch_that_fires_twice_fails() {
        let e = watch(vec![reg(1, 1), note(EventType::NodeDataChanged, 1), note(EventType::NodeDataChanged, 1)]).unwrap_err();
        assert!(e.contains("no watch armed"), "{e}");
    }

    #[test]
    fn a_reply_reflecting_the_change_before_the_notification_fails() {
        let e = watch(vec![reg(1, 1), seen(2, 1), note(EventType::NodeDataChanged, 1)]).unwrap_err();
        assert!(e.contains("lost or late"), "{e}");
    }

    #[test]
    fn a_notification_of_the_wrong_type_fails_but_not_after_a_reconnect() {
        let e = watch(vec![reg(1, 1), note(EventType::NodeDeleted, 1)]).unwrap_err();
        assert!(e.contains("first change"), "{e}");
        assert_eq!(watch(vec![reg(1, 1), note(EventType::NodeDeleted, 2), seen(3, 2)]), Ok(()));
    }

    #[test]
    fn a_notification_with_no_change_after_the_registration_fails() {
        let e = watch(vec![reg(3, 1), note(EventType::NodeDataChanged, 2)]).unwrap_err();
        assert!(e.contains("none"), "{e}");
    }

    #[test]
    fn closing_a_session_deletes_its_ephemerals_in_the_model() {
        let t: BTreeMap<Zxid, Txn> = [txn(1, 7, 1, create("/e0", 7)), txn(2, 7, 2, TxnOp::CloseSession)].into_iter().collect();
        let (tl, tr) = timeline(&t);
        assert_eq!(state_at(&tl, "/e0", 1).map(|n| n.owner), Some(7));
        assert_eq!(state_at(&tl, "/e0", 2), None);
        assert_eq!(tr["/"], vec![(1, EventType::NodeChildrenChanged), (2, EventType::NodeChildrenChanged)]);
    }

    fn multi_op(outcome: Outcome) -> HistOp {
        let subs = vec![SubOp::Check { path: "/k0".into(), version: 2 }, SubOp::Create { path: "/k1".into(), data: b"x".to_vec() }];
        HistOp { client: 1, kind: OpKind::Multi(subs), call: 10, ret: Some(20), outcome, zxid: Some(4), session: 9, xid: 4 }
    }

    #[test]
    fn a_failed_multi_must_change_nothing_and_fail_for_a_reason() {
        let mut t = txns();
        let failed = TxnOp::Multi(vec![TxnOp::Error { err: ErrorCode::Ok }, TxnOp::Error { err: ErrorCode::NodeExists }]);
        t.extend([txn(4, 9, 4, failed)]);
        // /k1 is absent: the create cannot be what failed.
        let op = multi_op(Outcome::Ok(Answer::Multi(vec![Err(0), Err(NODE_EXISTS)])));
        let e = model_check(&[op], &t, &BTreeMap::new()).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        // The check failing (the version is 2, not 1) is a reason.
        let mut t = txns();
        t.extend([txn(4, 9, 4, TxnOp::Multi(vec![TxnOp::Error { err: ErrorCode::BadVersion }, TxnOp::Error { err: ErrorCode::RuntimeInconsistency }]))]);
        let mut op = multi_op(Outcome::Ok(Answer::Multi(vec![Err(BAD_VERSION), Err(-2)])));
        op.kind = OpKind::Multi(vec![SubOp::Check { path: "/k0".into(), version: 1 }, SubOp::Create { path: "/k1".into(), data: b"x".to_vec() }]);
        assert!(model_check(&[op], &t, &BTreeMap::new()).is_ok());
    }

    #[test]
    fn a_successful_multi_must_apply_every_op() {
        let mut t = txns();
        // The txn forgot the create.
        t.extend([txn(4, 9, 4, TxnOp::Multi(vec![TxnOp::Check { path: "/k0".into(), version: 2 }]))]);
        let op = multi_op(Outcome::Ok(Answer::Multi(vec![Ok(None), Ok(None)])));
        assert!(model_check(&[op], &t, &BTreeMap::new()).is_err());
        let mut t = txns();
        let both = TxnOp::Multi(vec![TxnOp::Check { path: "/k0".into(), version: 2 }, create("/k1", 0)]);
        t.extend([txn(4, 9, 4, both)]);
        let mut op = multi_op(Outcome::Ok(Answer::Multi(vec![Ok(None), Ok(None)])));
        op.kind = OpKind::Multi(vec![SubOp::Check { path: "/k0".into(), version: 2 }, SubOp::Create { path: "/k1".into(), data: b"v".to_vec() }]);
        assert!(model_check(&[op], &t, &BTreeMap::new()).is_ok());
    }

    #[test]
    fn a_sync_must_see_what_was_committed_before_it() {
        let t = txns();
        let at: BTreeMap<Zxid, Millis> = [(Zxid(1), 1), (Zxid(2), 5), (Zxid(3), 50)].into_iter().collect();
        let sync = |z| HistOp {
            client: 1,
            kind: OpKind::Sync { path: "/k0".into() },
            call: 10,
            ret: Some(20),
            outcome: Outcome::Ok(Answer::Done),
            zxid: Some(z),
            session: 9,
            xid: 1,
        };
        assert!(model_check(&[sync(1)], &t, &at).is_err());
        assert!(model_check(&[sync(2)], &t, &at).is_ok());
    }
}

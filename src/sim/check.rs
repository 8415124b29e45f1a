//! What the simulator records and checks: the clients' history, the committed sequence of
//! txns, the leaders of each epoch.

use std::collections::BTreeMap;

use crate::proto::{Millis, ServerId, Zxid};
use crate::txn::{Txn, TxnHeader, TxnOp};

/// A client operation on one znode: the black-box checker's (`lincheck::Op`).
pub use crate::lincheck::Op as OpKind;

fn is_write(op: &OpKind) -> bool {
    !op.is_read()
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success; `version` for setData and getData, `data` for getData.
    Ok { version: Option<i32>, data: Option<Vec<u8>> },
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

/// The committed sequence as the servers applied it.
#[derive(Default)]
pub struct Committed {
    /// zxid → who issued the txn (session, cxid) and when (identifies it across servers).
    pub txns: BTreeMap<Zxid, (i64, i32, i64)>,
}

impl Committed {
    /// A server applied `h`: it must be the txn every other server applied at that zxid.
    pub fn applied(&mut self, server: ServerId, h: &TxnHeader) -> Result<(), String> {
        let id = (h.session.0, h.cxid, h.time_ms);
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

/// Path states along the committed order: for each path, (zxid, state after it) at each
/// change; `None` = absent.
pub type Timeline = BTreeMap<String, Vec<(Zxid, Option<(Vec<u8>, i32)>)>>;

/// The states of every path the committed txns touch.
pub fn timeline(txns: &BTreeMap<Zxid, Txn>) -> Timeline {
    fn apply(t: &mut Timeline, z: Zxid, op: &TxnOp) {
        let cur = |t: &Timeline, p: &str| t.get(p).and_then(|v| v.last()).and_then(|s| s.1.clone());
        match op {
            TxnOp::Create { path, data, .. } => {
                t.entry(path.clone()).or_default().push((z, Some((data.clone().unwrap_or_default(), 0))));
            }
            TxnOp::SetData { path, data, version } => {
                t.entry(path.clone()).or_default().push((z, Some((data.clone().unwrap_or_default(), *version))));
            }
            TxnOp::Delete { path } => {
                if cur(t, path).is_some() {
                    t.entry(path.clone()).or_default().push((z, None));
                }
            }
            TxnOp::Multi(ops) => ops.iter().for_each(|o| apply(t, z, o)),
            _ => {}
        }
    }
    let mut t = Timeline::new();
    for (z, txn) in txns {
        apply(&mut t, *z, &txn.op);
    }
    t
}

/// The state of `path` once every txn up to `z` is applied.
fn state_at<'a>(t: &'a Timeline, path: &str, z: i64) -> Option<&'a (Vec<u8>, i32)> {
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
}

/// The clients' history against the committed order. Every reply names a zxid (a write's:
/// its txn; a read's: the state the server had applied), so this needs no search:
/// - each acknowledged write is the committed txn at its zxid (no acknowledged write lost);
/// - writes are linearizable: the zxid order respects real time (a write that completed
///   before another began has the smaller zxid), and each failed write that took a zxid
///   (ZooKeeper's error txns) fails for a reason the state before it gives;
/// - reads are sequentially consistent per session: a read returns exactly the path's
///   state at its reply's zxid, and a session's zxids never go back (its own writes
///   included), across reconnects to other servers.
pub fn model_check(history: &[HistOp], txns: &BTreeMap<Zxid, Txn>) -> Result<ModelStats, String> {
    let mut stats = ModelStats::default();
    let t = timeline(txns);
    let ours = |op: &HistOp, z: i64| txns.get(&Zxid(z)).is_some_and(|x| x.header.session.0 == op.session && x.header.cxid == op.xid);
    // Real-time order of writes: sorted by zxid, no write may have finished before an
    // earlier-zxid write began.
    let mut writes: Vec<(i64, &HistOp)> = history
        .iter()
        .filter(|o| is_write(&o.kind) && o.ret.is_some())
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
            match (&op.kind, &op.outcome) {
                (OpKind::GetData { path }, Outcome::Ok { version: Some(v), data: Some(d) }) => {
                    stats.reads_checked += 1;
                    match state_at(&t, path, z) {
                        Some((data, version)) if data == d && version == v => {}
                        other => {
                            return Err(format!(
                                "read of {path} by session {:#x} at zxid {z:#x} returned version {v} ({}), \
                                 but the committed state there is {}",
                                op.session,
                                show(d),
                                other.map_or("absent".to_string(), |(d, v)| format!("version {v} ({})", show(d)))
                            ))
                        }
                    }
                }
                (OpKind::GetData { path }, Outcome::Err(code)) if *code == crate::proto::ErrorCode::NoNode.code() => {
                    stats.reads_checked += 1;
                    if let Some((d, v)) = state_at(&t, path, z) {
                        return Err(format!(
                            "read of {path} by session {:#x} at zxid {z:#x} said NoNode, but the committed \
                             state there is version {v} ({})",
                            op.session,
                            show(d)
                        ));
                    }
                }
                (kind, Outcome::Ok { .. }) if is_write(kind) => {
                    stats.writes_acked += 1;
                    if !ours(op, z) {
                        return Err(format!(
                            "acknowledged write lost: {kind:?} by session {:#x} xid {} was answered with zxid \
                             {z:#x}, but the committed txn there is {}",
                            op.session,
                            op.xid,
                            txns.get(&Zxid(z)).map_or("missing".to_string(), |x| format!("{:?}", x.header))
                        ));
                    }
                    if let (OpKind::SetData { path, data, .. }, Outcome::Ok { version: Some(v), .. }) = (kind, &op.outcome) {
                        if state_at(&t, path, z) != Some(&(data.clone(), *v)) {
                            return Err(format!("setData of {path} at zxid {z:#x}: the reply's version {v} is not the committed one"));
                        }
                    }
                }
                (kind, Outcome::Err(code)) if is_write(kind) && ours(op, z) => {
                    stats.errors_checked += 1;
                    let before = |p: &str| state_at(&t, p, z - 1);
                    let ok = match kind {
                        OpKind::Create { path, .. } => *code == -110 && before(path).is_some(),
                        OpKind::SetData { path, version, .. } | OpKind::Delete { path, version } => match before(path) {
                            None => *code == -101,
                            Some((_, v)) => *code == -103 && *version != -1 && v != version,
                        },
                        OpKind::GetData { .. } => true,
                    };
                    if !ok {
                        return Err(format!(
                            "{kind:?} by session {:#x} failed with {code} at zxid {z:#x}, but the state before it \
                             was {:?}",
                            op.session,
                            kind_path(kind).and_then(before).map(|(d, v)| (show(d), *v))
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(stats)
}

fn kind_path(k: &OpKind) -> Option<&str> {
    Some(k.path())
}

fn show(d: &[u8]) -> String {
    if d.len() <= 40 {
        String::from_utf8_lossy(d).into_owned()
    } else {
        format!("{}… {} bytes", String::from_utf8_lossy(&d[..24]), d.len())
    }
}

/// The history in the black-box checker's terms (`lincheck`): no zxids, only what each
/// client saw and when. Errors other than the three it models end no operation there.
pub fn to_lincheck(history: &[HistOp]) -> Vec<crate::lincheck::Entry> {
    use crate::lincheck::{Entry, Outcome as L};
    history
        .iter()
        .filter_map(|h| {
            let op = h.kind.clone();
            let call = h.call as u64;
            let ret = h.ret.map(|r| (r as u64).max(call + 1));
            let outcome = match (&h.kind, &h.outcome) {
                (_, Outcome::Unknown) => None,
                (OpKind::SetData { .. }, Outcome::Ok { version: Some(v), .. }) => Some(L::SetOk { version: *v }),
                (OpKind::GetData { .. }, Outcome::Ok { version: Some(v), data: Some(d) }) => Some(L::Data { data: d.clone(), version: *v }),
                (_, Outcome::Ok { .. }) => Some(L::Ok),
                (_, Outcome::Err(-110)) => Some(L::NodeExists),
                (_, Outcome::Err(-101)) => Some(L::NoNode),
                (_, Outcome::Err(-103)) => Some(L::BadVersion),
                (_, Outcome::Err(_)) => return None,
            };
            Some(match (outcome, ret) {
                (Some(o), Some(r)) => Entry::done(h.client, call, r, op, o),
                _ => Entry::unknown(h.client, call, op),
            })
        })
        .collect()
}

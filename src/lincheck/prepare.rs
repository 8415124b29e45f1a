//! Turns one path's entries into what the search needs: writes with interned data, the
//! reply each must have had (None: optional, its outcome is unknown), and precedence edges
//! between writes that the reads and the sessions' FIFO order imply.
//!
//! Why edges: a read is tied to the unique write that carried its data (values are unique
//! per write — the generators guarantee it), so "session S saw W1 and later W2" becomes
//! "W1 is linearized no later than W2", a constraint the write search can enforce while it
//! searches. Without it the search could settle on an order of concurrent writes that the
//! reads then contradict, although another order would have fitted both.
//!
//! Anchors of a session (its completed ops on the path, in invocation order): every write
//! that took effect, and every read tied to a write. Between consecutive anchors:
//! write w → read of W: W = w or w before W; read of W → write w: W before w (W = w would
//! be a read of its own future write); read W1 → read W2: W1 = W2 or W1 before W2;
//! write → write: in that order. Failed writes are not anchors (they leave the state as it
//! was, so a read after one may still see an older write); the read pass checks them.

use super::error::Violation;
use super::history::{Entry, Op, Outcome, Ticks};
use super::model::{DataId, Interner, Reply, State, Write};

pub(crate) struct WriteOp {
    /// Index of the entry in the history.
    pub entry: usize,
    pub invoked: Ticks,
    /// None: may take effect any time after `invoked` (outcome unknown).
    pub completed: Option<Ticks>,
    pub write: Write,
    /// The reply the write must get in the linearization; None: optional, it may take
    /// effect (then the search only places it where it changes the node) or not.
    pub want: Option<Reply>,
    /// Writes that must be linearized before this one.
    pub preds: Vec<usize>,
}

pub(crate) struct ReadOp {
    pub entry: usize,
    pub completed: Ticks,
    pub seen: State,
}

/// A completed op of a session, for the read pass.
#[derive(Clone, Copy)]
pub(crate) enum SessionOp {
    Write(usize),
    Read(usize),
}

pub(crate) struct PathOps {
    pub path: String,
    pub data: Interner,
    pub writes: Vec<WriteOp>,
    pub reads: Vec<ReadOp>,
    /// Per session, its completed ops on this path in invocation order.
    pub sessions: Vec<Vec<SessionOp>>,
}

/// Builds a path's ops from `idx` (entries of `history` on one path, in history order).
pub(crate) fn prepare(history: &[Entry], idx: &[usize]) -> Result<PathOps, Box<Violation>> {
    let path = history[idx[0]].op.path().to_string();
    let mut data = Interner::default();
    let mut writes = Vec::new();
    let mut write_of_entry = std::collections::HashMap::new();
    for &i in idx {
        let e = &history[i];
        let write = match &e.op {
            Op::Create { data: d, .. } => Write::Create { data: data.written(d) },
            Op::SetData { data: d, version, .. } => Write::Set { data: data.written(d), version: *version },
            Op::Delete { version, .. } => Write::Delete { version: *version },
            Op::GetData { .. } => continue,
        };
        let want = e.outcome.as_ref().map(reply_of);
        let completed = if want.is_some() { e.completed } else { None };
        write_of_entry.insert(i, writes.len());
        writes.push(WriteOp { entry: i, invoked: e.invoked, completed, write, want, preds: Vec::new() });
    }
    let mut ops = PathOps { path, data, writes, reads: Vec::new(), sessions: Vec::new() };
    collect_reads(history, idx, &mut ops)?;
    let writer = tie_reads(history, &mut ops)?;
    order_sessions(history, idx, &write_of_entry, &mut ops);
    add_edges(history, &writer, &mut ops)?;
    Ok(ops)
}

fn reply_of(o: &Outcome) -> Reply {
    match o {
        Outcome::Ok | Outcome::Data { .. } => Reply::Ok,
        Outcome::SetOk { version } => Reply::SetOk { version: *version },
        Outcome::NodeExists => Reply::NodeExists,
        Outcome::NoNode => Reply::NoNode,
        Outcome::BadVersion => Reply::BadVersion,
    }
}

/// Completed reads (reads with an unknown outcome observed nothing and are dropped).
fn collect_reads(history: &[Entry], idx: &[usize], ops: &mut PathOps) -> Result<(), Box<Violation>> {
    for &i in idx {
        let e = &history[i];
        let (Op::GetData { .. }, Some(outcome), Some(completed)) = (&e.op, &e.outcome, e.completed) else { continue };
        let seen = match outcome {
            Outcome::Data { data, version } => match ops.data.lookup(data) {
                Some(id) => State::Present { data: id, version: *version },
                None => return Err(Violation::read(history, &ops.path, "read of a value no write carried", vec![i], Vec::new())),
            },
            _ => State::Absent,
        };
        ops.reads.push(ReadOp { entry: i, completed, seen });
    }
    Ok(())
}

/// For each read, the write it is tied to (None: absent, or a value several writes
/// carried). Checks what a single read implies on its own, and makes an unknown-outcome
/// write that a read saw required (it must have taken effect, with the version read).
fn tie_reads(history: &[Entry], ops: &mut PathOps) -> Result<Vec<Option<usize>>, Box<Violation>> {
    let mut writer = Vec::with_capacity(ops.reads.len());
    for r in 0..ops.reads.len() {
        let read = &ops.reads[r];
        let State::Present { data, version } = read.seen else {
            writer.push(None);
            continue;
        };
        if ops.data.writers(data) != 1 {
            writer.push(None);
            continue;
        }
        let w = ops.writes.iter().position(|w| carried(w.write) == Some(data)).unwrap_or(usize::MAX);
        let Some(wop) = ops.writes.get(w) else {
            writer.push(None);
            continue;
        };
        let fail = |why: &str| Err(Violation::read(history, &ops.path, why, vec![wop.entry, read.entry], Vec::new()));
        if wop.invoked > read.completed {
            return fail("a read returned a value whose write was invoked after the read completed");
        }
        let produced = match (wop.write, wop.want) {
            (Write::Create { .. }, Some(Reply::Ok)) => Some(0),
            (_, Some(Reply::SetOk { version })) => Some(version),
            (_, Some(_)) => return fail("a read returned the value of a write that failed"),
            (Write::Create { .. }, None) => Some(0),
            (_, None) => None,
        };
        match produced {
            Some(v) if v != version => return fail("a read returned a value with a version its write did not produce"),
            Some(_) => {}
            None => {
                // An unknown setData someone read: it took effect, making this version.
                ops.writes[w].want = Some(Reply::SetOk { version });
            }
        }
        if let (Write::Create { .. }, None) = (ops.writes[w].write, ops.writes[w].want) {
            ops.writes[w].want = Some(Reply::Ok);
        }
        writer.push(Some(w));
    }
    Ok(writer)
}

fn carried(w: Write) -> Option<DataId> {
    match w {
        Write::Create { data } | Write::Set { data, .. } => Some(data),
        Write::Delete { .. } => None,
    }
}

/// Each session's completed ops on the path, in invocation order (ties: history order).
fn order_sessions(history: &[Entry], idx: &[usize], write_of_entry: &std::collections::HashMap<usize, usize>, ops: &mut PathOps) {
    let read_of_entry: std::collections::HashMap<usize, usize> = ops.reads.iter().enumerate().map(|(r, op)| (op.entry, r)).collect();
    let mut order: Vec<usize> = idx.iter().copied().filter(|i| history[*i].outcome.is_some()).collect();
    order.sort_by_key(|i| (history[*i].session, history[*i].invoked, *i));
    let mut current: Option<u64> = None;
    for i in order {
        let op = match (write_of_entry.get(&i), read_of_entry.get(&i)) {
            (Some(w), _) => SessionOp::Write(*w),
            (_, Some(r)) => SessionOp::Read(*r),
            _ => continue,
        };
        if current != Some(history[i].session) {
            ops.sessions.push(Vec::new());
            current = Some(history[i].session);
        }
        if let Some(s) = ops.sessions.last_mut() {
            s.push(op);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Write(usize),
    Read(usize),
}

fn add_edges(history: &[Entry], writer: &[Option<usize>], ops: &mut PathOps) -> Result<(), Box<Violation>> {
    for s in 0..ops.sessions.len() {
        let mut last: Option<(Anchor, usize)> = None;
        for k in 0..ops.sessions[s].len() {
            let (anchor, entry) = match ops.sessions[s][k] {
                SessionOp::Write(w) if ops.writes[w].want.is_some_and(Reply::took_effect) => (Anchor::Write(w), ops.writes[w].entry),
                SessionOp::Read(r) => match writer[r] {
                    Some(w) => (Anchor::Read(w), ops.reads[r].entry),
                    None => continue,
                },
                SessionOp::Write(_) => continue,
            };
            if let Some((prev, prev_entry)) = last {
                let (a, b, strict) = match (prev, anchor) {
                    (Anchor::Write(a), Anchor::Read(b)) | (Anchor::Read(a), Anchor::Read(b)) => (a, b, false),
                    (Anchor::Read(a), Anchor::Write(b)) | (Anchor::Write(a), Anchor::Write(b)) => (a, b, true),
                };
                if a == b && strict {
                    let why = "a session read a value before it wrote it";
                    return Err(Violation::read(history, &ops.path, why, vec![prev_entry, entry], Vec::new()));
                }
                if a != b && !ops.writes[b].preds.contains(&a) {
                    ops.writes[b].preds.push(a);
                }
            }
            last = Some((anchor, entry));
        }
    }
    Ok(())
}

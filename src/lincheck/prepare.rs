//! Turns one path's entries into the ops of the search: writes with interned data and the
//! reply each must get (None: optional, its outcome is unknown), completed reads (each must
//! be placed where the node is in the state it returned), and precedence edges.
//!
//! Reads are ZooKeeper's: sequentially consistent per session, not linearizable. So a read
//! takes part in the search with these rules instead of real time:
//! - its invocation counts as that of its session's last completed write before it (0 if
//!   none): it may be placed at any earlier state the session may still see (stale);
//! - its completion is its own: writes invoked after it completed cannot precede it;
//! - session (FIFO) order: each completed op of a session has the one before it (same path,
//!   invocation order) as a predecessor, reads and failed writes included.
//!
//! With that, a (set of placed ops, state) pair decides everything that follows, so the
//! search's memo stays exact for reads too.
//!
//! Extra edges, from reads tied to the unique write that carried their value (values are
//! unique per write — the generators guarantee it): a session's anchors (writes that took
//! effect, and tied reads) must be ordered as the session saw them. write w → read of W:
//! W = w or w before W; read of W → write w: W before w (W = w: a read of its own future
//! write); read W1 → read W2: W1 = W2 or W1 before W2. They are implied by the rules above
//! but let the search cut dead branches early, and make single-read contradictions (a value
//! no write carried, a failed write's value, a version the write did not make) explicit.


use super::error::Violation;
use super::history::{Entry, Op, Outcome, Ticks};
use super::model::{Action, DataId, Interner, Reply, State};

pub(crate) struct SearchOp {
    /// Index of the entry in the history.
    pub entry: usize,
    /// When the op may be placed from (a read: see the module doc).
    pub invoked: Ticks,
    /// None: no completion (unknown outcome: may take effect any time after `invoked`).
    pub completed: Option<Ticks>,
    pub action: Action,
    /// The reply the op must get; None: optional, it may take effect (then the search only
    /// places it where it changes the node) or not.
    pub want: Option<Reply>,
    /// Ops that must be placed before this one.
    pub preds: Vec<usize>,
}

pub(crate) struct PathOps {
    pub path: String,
    pub data: Interner,
    /// Writes first (`writes` of them), then the completed reads.
    pub ops: Vec<SearchOp>,
    pub writes: usize,
}

impl PathOps {
    pub(crate) fn reads(&self) -> usize {
        self.ops.len() - self.writes
    }
}

/// Builds a path's ops from `idx` (entries of `history` on one path, in history order).
pub(crate) fn prepare(history: &[Entry], idx: &[usize]) -> Result<PathOps, Box<Violation>> {
    let path = history[idx[0]].op.path().to_string();
    let mut data = Interner::default();
    let mut ops = Vec::new();
    for &i in idx {
        let e = &history[i];
        let action = match &e.op {
            Op::Create { data: d, .. } => Action::Create { data: data.written(d) },
            Op::SetData { data: d, version, .. } => Action::Set { data: data.written(d), version: *version },
            Op::Delete { version, .. } => Action::Delete { version: *version },
            Op::GetData { .. } => continue,
        };
        let want = e.outcome.as_ref().map(reply_of);
        let completed = if want.is_some() { e.completed } else { None };
        ops.push(SearchOp { entry: i, invoked: e.invoked, completed, action, want, preds: Vec::new() });
    }
    let writes = ops.len();
    let mut p = PathOps { path, data, ops, writes };
    collect_reads(history, idx, &mut p)?;
    let writer = tie_reads(history, &mut p)?;
    let sessions = session_order(history, &p);
    chain_sessions(&sessions, &mut p);
    add_edges(history, &sessions, &writer, &mut p)?;
    Ok(p)
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

/// Completed reads become ops (reads with an unknown outcome observed nothing: dropped).
fn collect_reads(history: &[Entry], idx: &[usize], p: &mut PathOps) -> Result<(), Box<Violation>> {
    for &i in idx {
        let e = &history[i];
        let (Op::GetData { .. }, Some(outcome), Some(completed)) = (&e.op, &e.outcome, e.completed) else { continue };
        let seen = match outcome {
            Outcome::Data { data, version } => match p.data.lookup(data) {
                Some(id) => State::Present { data: id, version: *version },
                None => return Err(Violation::read(history, &p.path, "read of a value no write carried", vec![i], Vec::new())),
            },
            _ => State::Absent,
        };
        let action = Action::Read { seen };
        p.ops.push(SearchOp { entry: i, invoked: 0, completed: Some(completed), action, want: Some(Reply::Ok), preds: Vec::new() });
    }
    Ok(())
}

/// For each op, the write its read is tied to (None: not a read, absent, or a value several
/// writes carried). Checks what a single read implies on its own, and makes an
/// unknown-outcome write that a read saw required (it took effect, with the version read).
fn tie_reads(history: &[Entry], p: &mut PathOps) -> Result<Vec<Option<usize>>, Box<Violation>> {
    let mut writer = vec![None; p.ops.len()];
    #[allow(clippy::needless_range_loop)] // `p.ops[w]` is updated inside: no iterator over it
    for r in p.writes..p.ops.len() {
        let Action::Read { seen: State::Present { data, version } } = p.ops[r].action else { continue };
        if p.data.writers(data) != 1 {
            continue;
        }
        let Some(w) = p.ops[..p.writes].iter().position(|w| carried(w.action) == Some(data)) else { continue };
        let (wop, read) = (&p.ops[w], &p.ops[r]);
        let fail = |why: &str| Err(Violation::read(history, &p.path, why, vec![wop.entry, read.entry], Vec::new()));
        if Some(wop.invoked) > read.completed {
            return fail("a read returned a value whose write was invoked after the read completed");
        }
        let produced = match (wop.action, wop.want) {
            (Action::Create { .. }, Some(Reply::Ok) | None) => Some(0),
            (_, Some(Reply::SetOk { version })) => Some(version),
            (_, Some(_)) => return fail("a read returned the value of a write that failed"),
            (_, None) => None,
        };
        if produced.is_some_and(|v| v != version) {
            return fail("a read returned a value with a version its write did not produce");
        }
        // An unknown write someone read took effect (making the version read).
        if p.ops[w].want.is_none() {
            p.ops[w].want = Some(match p.ops[w].action {
                Action::Create { .. } => Reply::Ok,
                _ => Reply::SetOk { version },
            });
        }
        writer[r] = Some(w);
    }
    Ok(writer)
}

fn carried(a: Action) -> Option<DataId> {
    match a {
        Action::Create { data } | Action::Set { data, .. } => Some(data),
        Action::Delete { .. } | Action::Read { .. } => None,
    }
}

/// Each session's completed ops (indices into `p.ops`), in invocation order (ties: history
/// order). Required-by-a-read unknown writes are not completed: they are not in it.
fn session_order(history: &[Entry], p: &PathOps) -> Vec<Vec<usize>> {
    let mut done: Vec<usize> = (0..p.ops.len()).filter(|o| p.ops[*o].completed.is_some()).collect();
    done.sort_by_key(|o| {
        let e = &history[p.ops[*o].entry];
        (e.session, e.invoked, p.ops[*o].entry)
    });
    let mut sessions: Vec<Vec<usize>> = Vec::new();
    let mut current = None;
    for o in done {
        let s = history[p.ops[o].entry].session;
        if current != Some(s) {
            sessions.push(Vec::new());
            current = Some(s);
        }
        if let Some(v) = sessions.last_mut() {
            v.push(o);
        }
    }
    sessions
}

/// FIFO order within each session, and each read's "invocation" (see the module doc).
fn chain_sessions(sessions: &[Vec<usize>], p: &mut PathOps) {
    for s in sessions {
        let mut last_write_invoked = 0;
        for (k, &o) in s.iter().enumerate() {
            if k > 0 {
                p.ops[o].preds.push(s[k - 1]);
            }
            if o < p.writes {
                last_write_invoked = p.ops[o].invoked;
            } else {
                p.ops[o].invoked = last_write_invoked;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Write(usize),
    Read(usize),
}

fn add_edges(history: &[Entry], sessions: &[Vec<usize>], writer: &[Option<usize>], p: &mut PathOps) -> Result<(), Box<Violation>> {
    for s in sessions {
        let mut last: Option<(Anchor, usize)> = None;
        for &o in s {
            let anchor = if o < p.writes {
                if !p.ops[o].want.is_some_and(Reply::took_effect) {
                    continue;
                }
                Anchor::Write(o)
            } else {
                match writer[o] {
                    Some(w) => Anchor::Read(w),
                    None => continue,
                }
            };
            let entry = p.ops[o].entry;
            if let Some((prev, prev_entry)) = last {
                let (a, b, strict) = match (prev, anchor) {
                    (Anchor::Write(a), Anchor::Read(b)) | (Anchor::Read(a), Anchor::Read(b)) => (a, b, false),
                    (Anchor::Read(a), Anchor::Write(b)) | (Anchor::Write(a), Anchor::Write(b)) => (a, b, true),
                };
                if a == b && strict {
                    let why = "a session read a value before it wrote it";
                    return Err(Violation::read(history, &p.path, why, vec![prev_entry, entry], Vec::new()));
                }
                if a != b && !p.ops[b].preds.contains(&a) {
                    p.ops[b].preds.push(a);
                }
            }
            last = Some((anchor, entry));
        }
    }
    Ok(())
}

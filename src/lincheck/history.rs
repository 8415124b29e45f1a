//! What a history is made of: one `Entry` per client operation, plain data (no sockets, no
//! client types), so the fault tests of the real binary and the whole-ensemble simulator
//! record the same thing.
//!
//! Times are `Ticks`, any unit, from one clock shared by every client of the history.
//! An entry with an `outcome` completed at `completed` (strictly after `invoked`); an entry
//! whose outcome is `None` timed out or lost its connection: it may have taken effect at any
//! time after `invoked`, or never, and its `completed` (if any) is ignored.

use std::fmt;

/// Time of an invocation or a completion, in any unit, from one clock.
pub type Ticks = u64;

/// A ZooKeeper operation on one znode. Every path of a history lives under one parent that
/// always exists, so `Create` never fails with NoNode and `Delete` never with NotEmpty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Create { path: String, data: Vec<u8> },
    /// `version` -1 matches any version.
    SetData { path: String, data: Vec<u8>, version: i32 },
    /// `version` -1 matches any version.
    Delete { path: String, version: i32 },
    GetData { path: String },
}

impl Op {
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. } | Op::SetData { path, .. } | Op::Delete { path, .. } | Op::GetData { path } => path,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, Op::GetData { .. })
    }
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Create or Delete succeeded.
    Ok,
    /// SetData succeeded; the znode's new version.
    SetOk { version: i32 },
    /// GetData found the znode.
    Data { data: Vec<u8>, version: i32 },
    NodeExists,
    NoNode,
    BadVersion,
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The client session (or any id of a FIFO client): reads are checked per session.
    pub session: u64,
    pub invoked: Ticks,
    pub completed: Option<Ticks>,
    pub op: Op,
    /// None: unknown (timeout, connection loss).
    pub outcome: Option<Outcome>,
}

impl Entry {
    /// An operation that completed with `outcome`.
    pub fn done(session: u64, invoked: Ticks, completed: Ticks, op: Op, outcome: Outcome) -> Entry {
        Entry { session, invoked, completed: Some(completed), op, outcome: Some(outcome) }
    }

    /// An operation whose outcome is unknown (it may take effect any time after `invoked`).
    pub fn unknown(session: u64, invoked: Ticks, op: Op) -> Entry {
        Entry { session, invoked, completed: None, op, outcome: None }
    }

    /// Why this entry cannot be checked, if it cannot: a completion not after the
    /// invocation, or an outcome the operation cannot have.
    pub(crate) fn malformed(&self) -> Option<String> {
        let Some(outcome) = &self.outcome else { return None };
        match self.completed {
            None => return Some("an outcome without a completion time".into()),
            Some(c) if c <= self.invoked => return Some(format!("completed at {c}, not after its invocation at {}", self.invoked)),
            Some(_) => {}
        }
        let fits = matches!(
            (&self.op, outcome),
            (Op::Create { .. }, Outcome::Ok | Outcome::NodeExists)
                | (Op::SetData { .. }, Outcome::SetOk { .. } | Outcome::BadVersion | Outcome::NoNode)
                | (Op::Delete { .. }, Outcome::Ok | Outcome::BadVersion | Outcome::NoNode)
                | (Op::GetData { .. }, Outcome::Data { .. } | Outcome::NoNode)
        );
        (!fits).then(|| format!("outcome {outcome:?} is not one {} can have", op_name(&self.op)))
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Create { .. } => "create",
        Op::SetData { .. } => "setData",
        Op::Delete { .. } => "delete",
        Op::GetData { .. } => "getData",
    }
}

/// Data as text for explanations: UTF-8 shown quoted, cut at 32 bytes.
pub(crate) struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = &self.0[..self.0.len().min(32)];
        let more = if cut.len() < self.0.len() { "…" } else { "" };
        write!(f, "{:?}{more}", String::from_utf8_lossy(cut))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Create { path, data } => write!(f, "create {path} {}", Shown(data)),
            Op::SetData { path, data, version } => write!(f, "setData {path} {} v={version}", Shown(data)),
            Op::Delete { path, version } => write!(f, "delete {path} v={version}"),
            Op::GetData { path } => write!(f, "getData {path}"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("Ok"),
            Outcome::SetOk { version } => write!(f, "Ok(version {version})"),
            Outcome::Data { data, version } => write!(f, "Ok({} version {version})", Shown(data)),
            Outcome::NodeExists => f.write_str("NodeExists"),
            Outcome::NoNode => f.write_str("NoNode"),
            Outcome::BadVersion => f.write_str("BadVersion"),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.outcome, self.completed) {
            (Some(o), Some(c)) => write!(f, "session {} [{}..{}] {} -> {o}", self.session, self.invoked, c, self.op),
            _ => write!(f, "session {} [{}..?] {} -> unknown", self.session, self.invoked, self.op),
        }
    }
}

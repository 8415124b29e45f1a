//! The sequential model of one znode (ZooKeeper's DataTree rules for a node whose parent
//! always exists): absent, or present with data and a version that is 0 after create and +1
//! per setData. Data is interned per path (`DataId`) so a state is `Copy` and cheap to hash
//! in the search's memo.

use std::collections::HashMap;

/// Index of a data value in a path's `Interner`.
pub(crate) type DataId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum State {
    Absent,
    Present { data: DataId, version: i32 },
}

/// An op of the search, data interned: a write, or a completed read (which changes
/// nothing and fits only the state it returned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Create { data: DataId },
    Set { data: DataId, version: i32 },
    Delete { version: i32 },
    Read { seen: State },
}

/// The model's reply to a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Ok,
    SetOk { version: i32 },
    NodeExists,
    NoNode,
    BadVersion,
    /// A read placed where the node is in another state than it returned.
    Mismatch,
}

impl Reply {
    /// Whether a write changed the node (a failed write leaves it as it was; never asked
    /// of a read).
    pub(crate) fn took_effect(self) -> bool {
        matches!(self, Reply::Ok | Reply::SetOk { .. })
    }
}

fn version_matches(expected: i32, actual: i32) -> bool {
    expected == -1 || expected == actual
}

/// Applies `w` to `s`: the reply a server would send and the state after it.
pub(crate) fn step(s: State, w: Action) -> (Reply, State) {
    match (w, s) {
        (Action::Read { seen }, _) => (if seen == s { Reply::Ok } else { Reply::Mismatch }, s),
        (Action::Create { data }, State::Absent) => (Reply::Ok, State::Present { data, version: 0 }),
        (Action::Create { .. }, State::Present { .. }) => (Reply::NodeExists, s),
        (Action::Set { .. } | Action::Delete { .. }, State::Absent) => (Reply::NoNode, s),
        (Action::Set { data, version: want }, State::Present { version, .. }) => {
            if version_matches(want, version) {
                // ZooKeeper's version is an int that wraps.
                let version = version.wrapping_add(1);
                (Reply::SetOk { version }, State::Present { data, version })
            } else {
                (Reply::BadVersion, s)
            }
        }
        (Action::Delete { version: want }, State::Present { version, .. }) => {
            if version_matches(want, version) {
                (Reply::Ok, State::Absent)
            } else {
                (Reply::BadVersion, s)
            }
        }
    }
}

/// Data values of one path, each stored once.
#[derive(Default)]
pub(crate) struct Interner {
    ids: HashMap<Vec<u8>, DataId>,
    values: Vec<Vec<u8>>,
    /// How many writes carry each value: reads are tied to a write only when it is 1.
    writers: Vec<u32>,
}

impl Interner {
    /// The id of a value a write carries (counted as one more writer of it).
    pub(crate) fn written(&mut self, data: &[u8]) -> DataId {
        let id = match self.ids.get(data) {
            Some(id) => *id,
            None => {
                let id = self.values.len() as DataId;
                self.ids.insert(data.to_vec(), id);
                self.values.push(data.to_vec());
                self.writers.push(0);
                id
            }
        };
        self.writers[id as usize] += 1;
        id
    }

    /// The id of a value a read returned, None if no write carried it.
    pub(crate) fn lookup(&self, data: &[u8]) -> Option<DataId> {
        self.ids.get(data).copied()
    }

    pub(crate) fn writers(&self, id: DataId) -> u32 {
        self.writers[id as usize]
    }

    pub(crate) fn value(&self, id: DataId) -> &[u8] {
        &self.values[id as usize]
    }

    /// A state as text, for explanations.
    pub(crate) fn show(&self, s: State) -> String {
        match s {
            State::Absent => "absent".into(),
            State::Present { data, version } => format!("{} version {version}", super::history::Shown(self.value(data))),
        }
    }
}

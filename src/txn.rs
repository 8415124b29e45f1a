//! Transactions: the deterministic state changes that the log stores, the ensemble replicates
//! and `DataTree::apply` executes.
//!
//! Only request preparation (`prep`, on the leader or standalone server) turns client requests
//! into txns; it has already checked paths, versions, ACLs and existence against the current
//! state, and has fixed every value that could differ between servers (the zxid, the time, the
//! sequential suffix, the parent's new cversion). So applying the same txn sequence to the same
//! starting tree always gives the same tree on every server.

use serde::{Deserialize, Serialize};

use crate::proto::{Acl, ErrorCode, SessionId, Zxid};

/// Who issued a txn and when. `time_ms` is the leader's wall clock at preparation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnHeader {
    pub session: SessionId,
    /// The client's xid for this request (0 for server-generated txns such as expiry).
    pub cxid: i32,
    pub zxid: Zxid,
    pub time_ms: i64,
}

/// One state change. `Multi` holds the ops of a multi-op request in order; a multi that
/// failed prep is stored as `Error` (nothing changes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// A session was created with this (already clamped) timeout.
    CreateSession { timeout_ms: i32 },
    /// The session ended (close or expiry): delete its ephemeral nodes.
    CloseSession,
    /// Create `path` (final name, sequential suffix already appended).
    /// `ephemeral_owner` is 0, the owning session id, `CONTAINER_OWNER`, or a TTL encoding
    /// (`TTL_MASK | ttl_ms`). `parent_cversion` is the parent's new stored cversion
    /// (the count of child creations, see `tree`).
    Create {
        path: String,
        /// `None` = null data (distinct from empty, as in ZooKeeper).
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    /// Delete `path` (it exists and has no children when prep made this txn).
    Delete { path: String },
    /// Replace the data; `version` is the node's new data version.
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    /// Replace the ACL; `version` is the node's new aversion.
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    /// A version check inside a multi (changes nothing).
    Check { path: String, version: i32 },
    /// A failed request that still consumes a zxid (ZooKeeper logs these too, keeping
    /// the per-session order of replies).
    Error { err: ErrorCode },
    /// All-or-nothing group; never nested.
    Multi(Vec<TxnOp>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub header: TxnHeader,
    pub op: TxnOp,
}

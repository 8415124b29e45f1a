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

/// One state change. Data is serialized as MessagePack `bin` (`serde_bytes`): one length
/// and a copy, where the default (an array of integers) costs up to two bytes and a decode
/// step per byte — seconds for a burst of 1 MB values. Records written before this used
/// arrays; `serde_bytes` still reads those (its visitor accepts a sequence of u8).
/// `Multi` holds the ops of a multi-op request in order; a multi that
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
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    /// Delete `path` (it exists and has no children when prep made this txn).
    Delete { path: String },
    /// Replace the data; `version` is the node's new data version.
    SetData {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Option<Vec<u8>>,
        version: i32,
    },
    /// Replace the ACL; `version` is the node's new aversion.
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    /// A version check inside a multi (changes nothing).
    Check { path: String, version: i32 },
    /// A failed request that still consumes a zxid (ZooKeeper logs these too, keeping
    /// the per-session order of replies).
    Error { err: ErrorCode },
    /// All-or-nothing group; never nested.
    Multi(Vec<TxnOp>),
    /// A committed reconfig: `/zookeeper/config` becomes `data` (the new membership, see
    /// `reconfig`) with data version -1, as ZooKeeper's reconfig SetDataTxn leaves it; every
    /// server then applies the membership to replication. Last, so that logs written
    /// before it still decode.
    Reconfig {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub header: TxnHeader,
    pub op: TxnOp,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The txn shape before data became `bin`: logs written then must still load.
    #[derive(Serialize)]
    enum LegacyOp {
        #[allow(dead_code)]
        CreateSession { timeout_ms: i32 },
        #[allow(dead_code)]
        CloseSession,
        #[allow(dead_code)]
        Create { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, ephemeral_owner: i64, parent_cversion: i32 },
        #[allow(dead_code)]
        Delete { path: String },
        SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    }

    #[test]
    fn data_is_bin_and_legacy_arrays_still_decode() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let op = TxnOp::SetData { path: "/a".into(), data: Some(data.clone()), version: 3 };
        let bytes = rmp_serde::to_vec(&op).expect("encode");
        assert!(bytes.len() < 1000 + 32, "bin encoding is one length plus the bytes ({} bytes)", bytes.len());
        assert_eq!(rmp_serde::from_slice::<TxnOp>(&bytes).expect("decode"), op);
        let legacy = rmp_serde::to_vec(&LegacyOp::SetData { path: "/a".into(), data: Some(data.clone()), version: 3 })
            .expect("encode legacy");
        assert!(legacy.len() > 1500, "legacy arrays spend 2 bytes on values >= 128");
        assert_eq!(rmp_serde::from_slice::<TxnOp>(&legacy).expect("decode legacy"), op);
        let null = TxnOp::SetData { path: "/a".into(), data: None, version: 1 };
        assert_eq!(rmp_serde::from_slice::<TxnOp>(&rmp_serde::to_vec(&null).expect("encode")).expect("decode"), null);
    }
}

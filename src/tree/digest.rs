//! ZooKeeper's tree digest (3.8: `DigestCalculator` at digest version 2, summed by `AdHash`),
//! kept up to date by every write and logged every 128 zxids for `/commands/hash`.
//!
//! A node's digest is the CRC32 (IEEE, `java.util.zip.CRC32`) of its path ("" for the
//! root), its data, and 60 bytes of stored Stat, big-endian: czxid, mzxid, pzxid, ctime,
//! mtime (i64), version, cversion, aversion (i32; the STORED cversion), ephemeralOwner (the
//! raw i64). Nodes under `/zookeeper/` count 0 (ZooKeeper leaves them out: quota nodes are
//! written locally, without a txn). The tree's digest is the wrapping i64 sum of its
//! nodes' digests, so a write adds the new state's digest and subtracts the old one: the
//! path and data of each changed node are hashed, never the tree. Two servers that applied
//! the same txns have the same value, and so does a ZooKeeper 3.8 server given the same
//! txns (`tests/digest_zk.rs` checks that against the Debian package's `DataTree`).
//!
//! ZooKeeper caches each node's digest in its `DataNode`; arbor does not (a `Node` is 96
//! bytes by budget) and re-hashes the old state instead. When only the Stat changes (a
//! parent's cversion/pzxid on create and delete, an ACL's aversion) the path and data are
//! hashed once and the hasher state is reused for the old and the new Stat (`NodeHash`).
//!
//! History (`ZxidDigest`s): as ZooKeeper, the digest after every txn whose zxid is a
//! multiple of 128, so every server logs the same zxids and histories line up; the last
//! 1024 are kept (ZooKeeper's `DIGEST_LOG_LIMIT`: the last 131,072 txns, 16 KiB here), enough
//! to find where two servers diverged long after it happened.

use std::collections::VecDeque;

use crc32fast::Hasher;

use super::RawStat;
use crate::proto::Zxid;

/// ZooKeeper's `DigestCalculator.DIGEST_VERSION` for this calculation.
pub const DIGEST_VERSION: i32 = 2;
/// A digest is logged after each txn whose zxid is a multiple of this (`DIGEST_LOG_INTERVAL`).
pub const LOG_INTERVAL: i64 = 128;
/// Logged digests kept (`DIGEST_LOG_LIMIT`).
pub const LOG_LIMIT: usize = 1024;
/// Nodes below this path count 0 (`ZooDefs.ZOOKEEPER_NODE_SUBTREE`).
const SYSTEM_SUBTREE: &str = "/zookeeper/";

/// The tree's digest after the txn `zxid` was applied.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: Zxid,
    /// ZooKeeper's signed long.
    pub digest: i64,
}

/// A node's path and data hashed, waiting for a Stat to finish its digest.
pub(crate) struct NodeHash(Option<Hasher>);

impl NodeHash {
    pub(crate) fn new(path: &str, data: &[u8]) -> NodeHash {
        if path.starts_with(SYSTEM_SUBTREE) {
            return NodeHash(None);
        }
        let mut h = Hasher::new();
        // ZooKeeper keys the root as "" when it adds children and "/" elsewhere; it hashes "".
        if path != "/" {
            h.update(path.as_bytes());
        }
        h.update(data);
        NodeHash(Some(h))
    }

    /// The node's digest with this Stat (0 under `/zookeeper/`).
    pub(crate) fn with(&self, raw: &RawStat) -> i64 {
        let Some(h) = &self.0 else { return 0 };
        let mut h = h.clone();
        h.update(&stat_bytes(raw));
        i64::from(h.finalize())
    }
}

/// One node's digest.
pub(crate) fn node_digest(path: &str, data: &[u8], raw: &RawStat) -> i64 {
    NodeHash::new(path, data).with(raw)
}

/// The Stat as `DigestCalculator` lays it out (note: pzxid third, unlike the snapshot).
fn stat_bytes(r: &RawStat) -> [u8; 60] {
    let mut b = [0u8; 60];
    let longs = [r.czxid, r.mzxid, r.pzxid, r.ctime, r.mtime];
    for (i, v) in longs.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    for (i, v) in [r.version, r.cversion, r.aversion].iter().enumerate() {
        b[40 + i * 4..44 + i * 4].copy_from_slice(&v.to_be_bytes());
    }
    b[52..60].copy_from_slice(&r.ephemeral_owner.to_be_bytes());
    b
}

/// The running sum and its history.
#[derive(Clone, Debug, Default)]
pub(crate) struct Digest {
    sum: i64,
    log: VecDeque<ZxidDigest>,
}

impl Digest {
    #[inline]
    pub(crate) fn add(&mut self, d: i64) {
        self.sum = self.sum.wrapping_add(d);
    }

    #[inline]
    pub(crate) fn remove(&mut self, d: i64) {
        self.sum = self.sum.wrapping_sub(d);
    }

    /// Replace `old` by `new` (a node's state changed).
    #[inline]
    pub(crate) fn change(&mut self, old: i64, new: i64) {
        self.sum = self.sum.wrapping_sub(old).wrapping_add(new);
    }

    pub(crate) fn value(&self) -> i64 {
        self.sum
    }

    /// A whole txn was applied (`DataTree.logZxidDigest`).
    pub(crate) fn applied(&mut self, zxid: Zxid) {
        if zxid.0 % LOG_INTERVAL == 0 {
            if self.log.len() == LOG_LIMIT {
                self.log.pop_front();
            }
            self.log.push_back(ZxidDigest { zxid, digest: self.sum });
        }
    }

    pub(crate) fn log(&self) -> impl Iterator<Item = &ZxidDigest> {
        self.log.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_nodes_count_zero_and_the_root_hashes_as_empty() {
        let raw = RawStat::default();
        assert_eq!(node_digest("/zookeeper/quota", b"", &raw), 0);
        assert_ne!(node_digest("/zookeeper", b"", &raw), 0, "/zookeeper itself counts");
        let mut h = Hasher::new();
        h.update(&[0u8; 60]);
        assert_eq!(node_digest("/", b"", &raw), i64::from(h.finalize()));
        // A Stat-only change through a reused prefix equals hashing from scratch.
        let nh = NodeHash::new("/a", b"data");
        let raw2 = RawStat { pzxid: 7, cversion: 3, ..raw };
        assert_eq!(nh.with(&raw2), node_digest("/a", b"data", &raw2));
        assert_ne!(nh.with(&raw2), nh.with(&raw));
    }

    #[test]
    fn the_history_keeps_multiples_of_128_and_is_bounded() {
        let mut d = Digest::default();
        for z in 1..=(LOG_INTERVAL * (LOG_LIMIT as i64 + 5)) {
            d.add(1);
            d.applied(Zxid(z));
        }
        assert_eq!(d.log().count(), LOG_LIMIT);
        let first = d.log().next().expect("entry");
        assert_eq!(first.zxid, Zxid(LOG_INTERVAL * 6));
        assert_eq!(first.digest, LOG_INTERVAL * 6);
    }
}

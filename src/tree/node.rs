//! The per-znode record kept in the tree's arena.
//!
//! Layout is the memory budget: one `Node` is 96 bytes inline plus ONE heap block holding
//! the node's name followed by its data. The raw `ephemeralOwner` is not stored inline:
//! most znodes are plain persistent nodes, so a flag bit in `name_meta` says whether the
//! tree's side map holds an owner for this node (8 bytes saved on every other node).
//! The full path is never stored (it is rebuilt from the parent chain); children hang off an
//! intrusive doubly linked sibling list so that insert and unlink are O(1) with no
//! per-directory collection.

use serde::{Deserialize, Serialize};

/// "No node" in the `u32` links (`parent` of the root, end of a sibling list).
pub(crate) const NIL: u32 = u32::MAX;
/// `parent` of a slot on the free list, so a freed slot is never mistaken for a live node.
pub(crate) const FREE: u32 = u32::MAX - 1;

/// The stored (persisted) fields of a znode, as snapshots keep them: `cversion` is the
/// STORED one (count of child creations) and `ephemeral_owner` the raw encoding
/// (session id, `CONTAINER_OWNER`, TTL encoding or 0). `dataLength` and `numChildren` are
/// not stored: they follow from the data and the tree.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

pub(crate) struct Node {
    /// Name bytes (`name_len` of them, valid UTF-8) then data bytes. Empty for free slots.
    pub(crate) buf: Box<[u8]>,
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) pzxid: i64,
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    pub(crate) version: i32,
    /// Stored cversion: the number of child creations (see `DataTree::stat`).
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    /// Index into the tree's `AclCache`.
    pub(crate) acl: u32,
    /// `NIL` for the root, `FREE` for a slot on the free list.
    pub(crate) parent: u32,
    pub(crate) first_child: u32,
    /// Next sibling; for a free slot, the next free slot.
    pub(crate) next: u32,
    pub(crate) prev: u32,
    pub(crate) num_children: u32,
    /// Name length in the low 31 bits; `HAS_OWNER` set when the raw ephemeralOwner is
    /// non-zero (then `DataTree::owners` holds it).
    name_meta: u32,
}

const HAS_OWNER: u32 = 1 << 31;
/// The data is null (the client sent length -1), which ZooKeeper keeps apart from empty.
const NULL_DATA: u32 = 1 << 30;
const NAME_LEN_MASK: u32 = !(HAS_OWNER | NULL_DATA);

// The budget in the module doc; a field added by accident shows up here first.
const _: () = assert!(std::mem::size_of::<Node>() == 96);

impl Node {
    pub(crate) fn new(name: &str, data: Option<&[u8]>, acl: u32, parent: u32, raw: &RawStat) -> Node {
        Node {
            buf: join(name.as_bytes(), data.unwrap_or(&[])),
            czxid: raw.czxid,
            mzxid: raw.mzxid,
            pzxid: raw.pzxid,
            ctime: raw.ctime,
            mtime: raw.mtime,
            version: raw.version,
            cversion: raw.cversion,
            aversion: raw.aversion,
            acl,
            parent,
            first_child: NIL,
            next: NIL,
            prev: NIL,
            num_children: 0,
            name_meta: u32::try_from(name.len())
                .ok()
                .filter(|&l| l <= NAME_LEN_MASK)
                .expect("znode name shorter than 1 GiB (jute limits it to 1 MiB)")
                | owner_flag(raw.ephemeral_owner)
                | null_flag(data),
        }
    }

    /// A slot on the free list: owns no heap memory.
    pub(crate) fn vacant(next_free: u32) -> Node {
        Node {
            buf: Box::default(),
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            acl: 0,
            parent: FREE,
            first_child: NIL,
            next: next_free,
            prev: NIL,
            num_children: 0,
            name_meta: 0,
        }
    }

    pub(crate) fn is_free(&self) -> bool {
        self.parent == FREE
    }

    pub(crate) fn name_len(&self) -> usize {
        (self.name_meta & NAME_LEN_MASK) as usize
    }

    /// Whether the raw ephemeralOwner is non-zero (stored in the tree's side map).
    pub(crate) fn has_owner(&self) -> bool {
        self.name_meta & HAS_OWNER != 0
    }

    pub(crate) fn name_bytes(&self) -> &[u8] {
        &self.buf[..self.name_len()]
    }

    pub(crate) fn name(&self) -> &str {
        // Names are only ever stored from `&str` (see `new`), so this cannot fail.
        std::str::from_utf8(self.name_bytes()).expect("znode names are stored as UTF-8")
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.name_len()..]
    }

    /// The data, `None` when it is null.
    pub(crate) fn data_opt(&self) -> Option<&[u8]> {
        if self.name_meta & NULL_DATA != 0 {
            None
        } else {
            Some(self.data())
        }
    }

    pub(crate) fn set_data(&mut self, data: Option<&[u8]>) {
        self.buf = join(self.name_bytes(), data.unwrap_or(&[]));
        self.name_meta = (self.name_meta & !NULL_DATA) | null_flag(data);
    }

    /// The stored fields; `owner` comes from the tree's side map.
    pub(crate) fn raw(&self, owner: i64) -> RawStat {
        RawStat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: owner,
            pzxid: self.pzxid,
        }
    }

    pub(crate) fn set_raw(&mut self, raw: &RawStat) {
        self.czxid = raw.czxid;
        self.mzxid = raw.mzxid;
        self.ctime = raw.ctime;
        self.mtime = raw.mtime;
        self.version = raw.version;
        self.cversion = raw.cversion;
        self.aversion = raw.aversion;
        self.name_meta = (self.name_meta & !HAS_OWNER) | owner_flag(raw.ephemeral_owner);
        self.pzxid = raw.pzxid;
    }
}

fn null_flag(data: Option<&[u8]>) -> u32 {
    if data.is_none() {
        NULL_DATA
    } else {
        0
    }
}

fn owner_flag(owner: i64) -> u32 {
    if owner != 0 {
        HAS_OWNER
    } else {
        0
    }
}

/// One exact-size allocation holding `a` then `b` (no spare capacity, so no realloc).
fn join(a: &[u8], b: &[u8]) -> Box<[u8]> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v.into_boxed_slice()
}

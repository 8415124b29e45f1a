//! The in-memory data tree: every znode with its data, ACL and Stat, and the deterministic
//! application of txns to it (ZooKeeper 3.8 `DataTree.java` / `DataNode.java`).
//!
//! Role: `apply(&Txn)` is the only writer during normal operation; reads (`lookup`, `stat`,
//! `data`, `children`, …) serve client requests from the local state. Prep has already
//! validated every txn, so apply never decides anything: it executes, reports per-op
//! outcomes for the replies, and emits `Trigger`s for the watch layer. It never panics on a
//! bad txn (a missing node is `Error(NoNode)`); the only assertion is the programmer error
//! of a non-increasing zxid.
//!
//! Memory layout (the 1M-znode budget):
//! - nodes live in an arena (96 bytes each, see `node.rs`) `Vec<Node>` indexed by `NodeId(u32)`; deleted slots go on a free
//!   list and their ids are reused, so a `NodeId` is only valid until the next `apply`;
//! - each node stores its NAME, not its path, in one heap block shared with its data;
//! - one global `HashTable<u32>` maps hash(parent id, name) to the child's id, comparing
//!   against the node's own stored parent and name (no duplicated keys);
//! - children form an intrusive doubly linked sibling list (O(1) insert/unlink); `children()`
//!   sorts names on demand;
//! - ACL lists are interned in a reference-counted table (`acl.rs`).
//!
//! Invariants: every live node except the root is in `index` exactly once and in its
//! parent's sibling list exactly once, `num_children` is that list's length; the root has
//! id 0 and parent `NIL`; a node has its `has_owner` flag set iff `owners` holds its non-zero
//! raw ephemeralOwner; a node with a session owner is in `ephemerals[owner]`, a container
//! in `containers`, a TTL node in `ttls`; `data_size` is the sum over live nodes of full
//! path length + data length; `digest` is the wrapping sum over live nodes of ZooKeeper's
//! per-node digest (`digest.rs`): every change of a node's data or Stat, wherever it
//! happens, replaces its old digest by its new one. Nothing here recurses over the tree:
//! walks use explicit stacks.
//!
//! Stat rules (client view, `DataNode.copyStat`): the STORED cversion counts child creations
//! (prep derives the sequential suffix from it), the REPORTED cversion is
//! `stored * 2 - numChildren` (each creation is matched by a deletion except for the
//! children still present); containers and TTL nodes report ephemeralOwner 0.

mod acl;
mod apply;
mod digest;
mod freeze;
mod node;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};

use crate::proto::{Acl, ErrorCode, EventType, SessionId, Stat, Zxid, CONTAINER_OWNER, TTL_MASK, TTL_MAX_MS};

use acl::AclCache;
use node::{Node, FREE, NIL};
pub use digest::{ZxidDigest, DIGEST_VERSION};
pub use freeze::FreezeProgress;
pub use node::RawStat;

/// A live node's slot in the arena. Valid until the next mutation of the tree (ids of
/// deleted nodes are reused).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(u32);

impl NodeId {
    /// The root `/` always has this id.
    pub const ROOT: NodeId = NodeId(0);
}

/// What applying a txn did, per op, for building replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    SessionCreated,
    /// Full paths of the ephemerals removed, sorted.
    SessionClosed { deleted: Vec<String> },
    /// Stat of the new node, client view.
    Created { path: String, stat: Stat },
    Deleted,
    DataSet { stat: Stat },
    AclSet { stat: Stat },
    Checked,
    Error(ErrorCode),
    Multi(Vec<ApplyOutcome>),
}

/// A watch trigger produced by apply: the watch layer maps it to watchers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub event: EventType,
}

/// One node as `for_each_preorder` shows it to a snapshot writer.
#[derive(Copy, Clone, Debug)]
pub struct NodeView<'a> {
    /// `None` for null data.
    pub data: Option<&'a [u8]>,
    pub acl: &'a [Acl],
    pub raw: RawStat,
    pub num_children: u32,
}

/// What a raw `ephemeralOwner` means (`EphemeralType.java`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum OwnerKind {
    Persistent,
    Session(SessionId),
    Container,
    Ttl { ttl_ms: i64 },
}

pub(crate) fn owner_kind(raw: i64) -> OwnerKind {
    if raw == 0 {
        OwnerKind::Persistent
    } else if raw == CONTAINER_OWNER {
        OwnerKind::Container
    } else if raw & TTL_MASK == TTL_MASK {
        OwnerKind::Ttl { ttl_ms: raw & TTL_MAX_MS }
    } else {
        OwnerKind::Session(SessionId(raw))
    }
}

/// The name a sequential create gets: `prefix` + the parent's STORED cversion as `%010d`
/// (`PrepRequestProcessor`; not the reported cversion, see the module doc).
pub fn sequential_path(prefix: &str, parent_stored_cversion: i32) -> String {
    format!("{prefix}{parent_stored_cversion:010}")
}

/// Splits a validated absolute path into (parent path, last name). `None` for "/" or a
/// path that does not start with '/' or ends in '/'.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    if !path.starts_with('/') || path.len() < 2 {
        return None;
    }
    let slash = path.rfind('/')?;
    let name = &path[slash + 1..];
    if name.is_empty() {
        return None;
    }
    Some((if slash == 0 { "/" } else { &path[..slash] }, name))
}

pub struct DataTree {
    nodes: Vec<Node>,
    /// Head of the free-slot list (threaded through `Node::next`), or `NIL`.
    free_head: u32,
    live: usize,
    /// Child ids keyed by hash(parent id, name); the root is not in it.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    acls: AclCache,
    /// Session → ids of its ephemeral nodes. A `BTreeMap` so sessions list deterministically.
    ephemerals: BTreeMap<SessionId, HashSet<u32>>,
    /// Raw ephemeralOwner of every node that has a non-zero one (see `node.rs`).
    owners: HashMap<u32, i64>,
    containers: HashSet<u32>,
    ttls: HashSet<u32>,
    data_size: u64,
    last_applied: Zxid,
    /// The state being read out for a snapshot, if one is (`freeze.rs`).
    freeze: Option<Box<freeze::Freeze>>,
    /// ZooKeeper's tree digest and its history (`digest.rs`).
    digest: digest::Digest,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// The tree of a fresh server: "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"
    /// (`DataTree()` + `addConfigNode`: the config node is read-only with aversion -1).
    pub fn new() -> DataTree {
        let mut t = DataTree {
            nodes: Vec::new(),
            free_head: NIL,
            live: 0,
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            acls: AclCache::new(),
            ephemerals: BTreeMap::new(),
            owners: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            data_size: 0,
            last_applied: Zxid::ZERO,
            freeze: None,
            digest: digest::Digest::default(),
        };
        let open = t.acls.intern(&Acl::open_unsafe());
        t.nodes.push(Node::new("", Some(&[]), open, NIL, &RawStat::default()));
        t.digest.add(digest::node_digest("/", &[], &RawStat::default()));
        t.live = 1;
        t.data_size = 1; // "/" counts its path length like any other node
        let zero = RawStat::default();
        let zk = t.insert_node(NodeId::ROOT, "/zookeeper", Some(b""), &Acl::open_unsafe(), &zero);
        t.insert_node(zk, "/zookeeper/quota", Some(b""), &Acl::open_unsafe(), &zero);
        let config = RawStat { aversion: -1, ..zero };
        t.insert_node(zk, "/zookeeper/config", Some(b""), &Acl::read_unsafe(), &config);
        t
    }

    // ---- reads ----------------------------------------------------------------------------

    /// The node at an absolute path; `None` if absent or if the path is malformed.
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        if path == "/" {
            return Some(NodeId::ROOT);
        }
        let rest = path.strip_prefix('/')?;
        let mut cur = 0u32;
        for name in rest.split('/') {
            if name.is_empty() {
                return None;
            }
            cur = self.child(cur, name)?;
        }
        Some(NodeId(cur))
    }

    /// Client-view Stat (see the module doc for the cversion and ephemeralOwner rules).
    pub fn stat(&self, id: NodeId) -> Stat {
        let n = self.node(id);
        let raw_owner = self.owner(id.0);
        let owner = match owner_kind(raw_owner) {
            OwnerKind::Container | OwnerKind::Ttl { .. } => 0,
            _ => raw_owner,
        };
        Stat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.cversion.wrapping_mul(2).wrapping_sub(n.num_children as i32),
            aversion: n.aversion,
            ephemeral_owner: owner,
            data_length: n.data().len() as i32,
            num_children: n.num_children as i32,
            pzxid: n.pzxid,
        }
    }

    /// The data; null data reads as empty (see `data_opt`).
    pub fn data(&self, id: NodeId) -> &[u8] {
        self.node(id).data()
    }

    /// The data, `None` when it was set to null.
    pub fn data_opt(&self, id: NodeId) -> Option<&[u8]> {
        self.node(id).data_opt()
    }

    pub fn acl(&self, id: NodeId) -> &[Acl] {
        self.acls.get(self.node(id).acl)
    }

    /// Child names, sorted ascending (ZooKeeper returns hash order; sorted is a valid order
    /// and keeps replies deterministic).
    pub fn children(&self, id: NodeId) -> Vec<String> {
        let mut out = Vec::with_capacity(self.node(id).num_children as usize);
        let mut c = self.node(id).first_child;
        while c != NIL {
            let n = &self.nodes[c as usize];
            out.push(n.name().to_string());
            c = n.next;
        }
        out.sort_unstable();
        out
    }

    /// At most `max` child names, in the tree's own (unsorted) order: a bounded look at a
    /// node that may have millions of children (the admin console).
    pub fn some_children(&self, id: NodeId, max: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(max.min(self.node(id).num_children as usize));
        let mut c = self.node(id).first_child;
        while c != NIL && out.len() < max {
            let n = &self.nodes[c as usize];
            out.push(n.name().to_string());
            c = n.next;
        }
        out
    }

    pub fn num_children(&self, id: NodeId) -> u32 {
        self.node(id).num_children
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        match self.node(id).parent {
            NIL | FREE => None,
            p => Some(NodeId(p)),
        }
    }

    /// Full path, rebuilt from the parent chain.
    pub fn path(&self, id: NodeId) -> String {
        if id == NodeId::ROOT {
            return "/".to_string();
        }
        let mut path = String::new();
        self.path_into(id.0, &mut path);
        path
    }

    /// The full path of live node `id` into `path` (cleared first), without allocating
    /// once `path` has grown: written from the end, one name at a time up the parent chain.
    fn path_into(&self, id: u32, path: &mut String) {
        path.clear();
        if id == 0 {
            path.push('/');
            return;
        }
        let mut len = 0;
        let mut cur = id;
        while cur != 0 && cur != NIL && cur != FREE {
            let n = &self.nodes[cur as usize];
            len += 1 + n.name_len();
            cur = n.parent;
        }
        let mut buf = std::mem::take(path).into_bytes();
        buf.resize(len, b'/');
        let mut end = len;
        let mut cur = id;
        while cur != 0 && cur != NIL && cur != FREE {
            let n = &self.nodes[cur as usize];
            let name = n.name_bytes();
            buf[end - name.len()..end].copy_from_slice(name);
            buf[end - name.len() - 1] = b'/';
            end -= name.len() + 1;
            cur = n.parent;
        }
        // Names are stored from `&str` and joined by '/': valid UTF-8.
        *path = String::from_utf8(buf).unwrap_or_default();
    }

    pub fn raw_ephemeral_owner(&self, id: NodeId) -> i64 {
        self.owner(id.0)
    }

    /// The stored cversion: the number of child creations (the sequential counter).
    pub fn stored_cversion(&self, id: NodeId) -> i32 {
        self.node(id).cversion
    }

    pub fn version(&self, id: NodeId) -> i32 {
        self.node(id).version
    }

    pub fn aversion(&self, id: NodeId) -> i32 {
        self.node(id).aversion
    }

    pub fn mtime(&self, id: NodeId) -> i64 {
        self.node(id).mtime
    }

    pub fn raw_stat(&self, id: NodeId) -> RawStat {
        self.node(id).raw(self.owner(id.0))
    }

    /// Full paths of the session's ephemeral nodes, sorted.
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        self.ephemerals.get(&session).map_or_else(Vec::new, |ids| self.sorted_paths(ids))
    }

    /// Sessions owning at least one ephemeral node, ascending.
    pub fn sessions_with_ephemerals(&self) -> Vec<SessionId> {
        self.ephemerals.keys().copied().collect()
    }

    /// All descendants of the node, not counting itself (`getAllChildrenNumber`).
    pub fn descendant_count(&self, id: NodeId) -> u64 {
        if id == NodeId::ROOT {
            return self.live as u64 - 1;
        }
        let mut count = 0u64;
        // Sibling cursors, as in `for_each_preorder`: the stack stays as deep as the tree.
        let mut stack = Vec::new();
        if self.node(id).first_child != NIL {
            stack.push(self.node(id).first_child);
        }
        while let Some(c) = stack.pop() {
            count += 1;
            let n = &self.nodes[c as usize];
            if n.next != NIL {
                stack.push(n.next);
            }
            if n.first_child != NIL {
                stack.push(n.first_child);
            }
        }
        count
    }

    /// Containers that had at least one child and have none now (`ContainerManager`):
    /// the container manager deletes these. Sorted paths.
    pub fn container_candidates(&self) -> Vec<String> {
        let ids: Vec<u32> = self
            .containers
            .iter()
            .copied()
            .filter(|&i| {
                let n = &self.nodes[i as usize];
                n.num_children == 0 && n.cversion > 0
            })
            .collect();
        self.sorted_paths(&ids)
    }

    /// Childless TTL nodes not modified for longer than their TTL
    /// (`ContainerManager.getElapsed(node) > ttl`). Sorted paths.
    pub fn expired_ttl_nodes(&self, now_ms: i64) -> Vec<String> {
        let ids: Vec<u32> = self
            .ttls
            .iter()
            .copied()
            .filter(|&i| {
                let n = &self.nodes[i as usize];
                match owner_kind(self.owner(i)) {
                    OwnerKind::Ttl { ttl_ms } => {
                        n.num_children == 0 && ttl_ms != 0 && now_ms.saturating_sub(n.mtime) > ttl_ms
                    }
                    _ => false,
                }
            })
            .collect();
        self.sorted_paths(&ids)
    }

    /// Live znodes, the root included. (ZooKeeper's `zk_znode_count` is one higher: its map
    /// holds the root under both "" and "/".)
    pub fn node_count(&self) -> usize {
        self.live
    }

    /// Sum over nodes of full path length + data length (`DataTree.approximateDataSize`).
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Number of distinct ACL lists in use (mntr-style diagnostics).
    pub fn acl_count(&self) -> usize {
        self.acls.len()
    }

    pub fn last_applied(&self) -> Zxid {
        self.last_applied
    }

    pub fn set_last_applied(&mut self, z: Zxid) {
        self.last_applied = z;
    }

    /// ZooKeeper's digest of the tree as it is now (`DataTree.getTreeDigest`), kept up to
    /// date by every write (`digest.rs`).
    pub fn digest(&self) -> i64 {
        self.digest.value()
    }

    /// The digests logged after txns whose zxid is a multiple of 128, oldest first, at most
    /// 1024 (`DataTree.getDigestLog`, the admin command `hash`).
    pub fn digest_log(&self) -> impl Iterator<Item = &ZxidDigest> {
        self.digest.log()
    }

    /// The digest computed from scratch over every node: what `digest` must equal. O(tree):
    /// for tools and checks, never on a write.
    pub fn recompute_digest(&self) -> i64 {
        let mut sum = 0i64;
        self.for_each_preorder(|path, v| sum = sum.wrapping_add(digest::node_digest(path, v.data.unwrap_or(&[]), &v.raw)));
        sum
    }

    // ---- snapshots ------------------------------------------------------------------------

    /// Visits every node, each parent before its children (siblings in list order).
    pub fn for_each_preorder(&self, mut f: impl FnMut(&str, NodeView<'_>)) {
        let root = &self.nodes[0];
        f("/", self.view(0));
        let mut path = String::new();
        // Sibling cursors: (next node to visit, length of its parent's path in `path`, 0
        // under the root). Depth-bounded: one pending cursor per level, not per child.
        let mut stack: Vec<(u32, usize)> = Vec::new();
        if root.first_child != NIL {
            stack.push((root.first_child, 0));
        }
        while let Some((id, prefix)) = stack.pop() {
            let n = &self.nodes[id as usize];
            if n.next != NIL {
                stack.push((n.next, prefix));
            }
            path.truncate(prefix);
            path.push('/');
            path.push_str(n.name());
            f(&path, self.view(id));
            if n.first_child != NIL {
                stack.push((n.first_child, path.len()));
            }
        }
    }

    /// Restores one node from a snapshot; its parent must already exist. A node that
    /// already exists (the fresh tree's "/" and "/zookeeper…", or a repeat) is overwritten
    /// in place, keeping its children. Parent stats are not touched: they are restored
    /// from their own records.
    pub fn insert_restored(&mut self, path: &str, data: Option<&[u8]>, acl: &[Acl], raw: RawStat) -> Result<(), ErrorCode> {
        if path == "/" {
            self.overwrite(NodeId::ROOT, path, data, acl, &raw);
            return Ok(());
        }
        // One walk to the parent, then one probe for the child (restarts load millions).
        let (parent_path, name) = split_path(path).ok_or(ErrorCode::BadArguments)?;
        let parent = self.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        match self.child(parent.0, name) {
            Some(id) => self.overwrite(NodeId(id), path, data, acl, &raw),
            None => {
                self.insert_node(parent, path, data, acl, &raw);
            }
        }
        Ok(())
    }

    // ---- internals ------------------------------------------------------------------------

    fn view(&self, id: u32) -> NodeView<'_> {
        let n = &self.nodes[id as usize];
        NodeView { data: n.data_opt(), acl: self.acls.get(n.acl), raw: n.raw(self.owner(id)), num_children: n.num_children }
    }

    fn node(&self, id: NodeId) -> &Node {
        let n = &self.nodes[id.0 as usize];
        debug_assert!(!n.is_free(), "stale NodeId {id:?}: ids are valid until the next apply");
        n
    }

    fn child(&self, parent: u32, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one((parent, name.as_bytes()));
        self.index
            .find(hash, |&i| {
                let n = &self.nodes[i as usize];
                n.parent == parent && n.name_bytes() == name.as_bytes()
            })
            .copied()
    }

    fn sorted_paths<'a>(&self, ids: impl IntoIterator<Item = &'a u32>) -> Vec<String> {
        let mut out: Vec<String> = ids.into_iter().map(|&i| self.path(NodeId(i))).collect();
        out.sort_unstable();
        out
    }

    /// Links a new node named after `path`'s last component under `parent` (which the
    /// caller has checked has no such child) and registers it everywhere.
    fn insert_node(&mut self, parent: NodeId, path: &str, data: Option<&[u8]>, acl: &[Acl], raw: &RawStat) -> NodeId {
        let name = split_path(path).map_or("", |(_, n)| n);
        let acl = self.acls.intern(acl);
        let node = Node::new(name, data, acl, parent.0, raw);
        let id = match self.free_head {
            NIL => {
                let id = u32::try_from(self.nodes.len()).ok().filter(|&i| i < FREE).expect("fewer than 2^32-2 znodes");
                self.nodes.push(node);
                id
            }
            id => {
                self.free_head = self.nodes[id as usize].next;
                self.nodes[id as usize] = node;
                id
            }
        };
        self.claim(id);
        let p = &mut self.nodes[parent.0 as usize];
        let old_first = p.first_child;
        p.first_child = id;
        p.num_children += 1;
        if old_first != NIL {
            self.nodes[old_first as usize].prev = id;
        }
        self.nodes[id as usize].next = old_first;

        let hash = self.hasher.hash_one((parent.0, name.as_bytes()));
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.insert_unique(hash, id, |&i| {
            let n = &nodes[i as usize];
            hasher.hash_one((n.parent, n.name_bytes()))
        });
        self.track_owner(id, raw.ephemeral_owner);
        self.live += 1;
        self.data_size += (path.len() + data.map_or(0, <[u8]>::len)) as u64;
        self.digest.add(digest::node_digest(path, data.unwrap_or(&[]), raw));
        NodeId(id)
    }

    /// Unlinks a childless non-root node (at `path`) and returns its slot to the free list.
    fn remove_node(&mut self, id: NodeId, path: &str) {
        self.preserve(id.0);
        let owner = self.owner(id.0);
        let gone = {
            let n = &self.nodes[id.0 as usize];
            digest::node_digest(path, n.data(), &n.raw(owner))
        };
        self.digest.remove(gone);
        let (parent, prev, next, acl, data_len) = {
            let n = &self.nodes[id.0 as usize];
            (n.parent, n.prev, n.next, n.acl, n.data().len())
        };
        let hash = self.hasher.hash_one((parent, self.nodes[id.0 as usize].name_bytes()));
        if let Ok(e) = self.index.find_entry(hash, |&i| i == id.0) {
            e.remove();
        }
        if prev == NIL {
            self.nodes[parent as usize].first_child = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        self.nodes[parent as usize].num_children -= 1;
        self.untrack_owner(id.0, owner);
        self.acls.release(acl);
        self.live -= 1;
        self.data_size -= (path.len() + data_len) as u64;
        self.nodes[id.0 as usize] = Node::vacant(self.free_head);
        self.free_head = id.0;
    }

    /// Replaces the data, ACL and Stat of live node `id` at `path`.
    fn overwrite(&mut self, id: NodeId, path: &str, data: Option<&[u8]>, acl: &[Acl], raw: &RawStat) {
        self.preserve(id.0);
        let new_acl = self.acls.intern(acl);
        let old_owner = self.owner(id.0);
        let (old_acl, old_len, old_digest) = {
            let n = &self.nodes[id.0 as usize];
            (n.acl, n.data().len(), digest::node_digest(path, n.data(), &n.raw(old_owner)))
        };
        self.digest.change(old_digest, digest::node_digest(path, data.unwrap_or(&[]), raw));
        self.acls.release(old_acl);
        self.untrack_owner(id.0, old_owner);
        let n = &mut self.nodes[id.0 as usize];
        n.acl = new_acl;
        n.set_data(data);
        n.set_raw(raw);
        self.track_owner(id.0, raw.ephemeral_owner);
        self.data_size = self.data_size - old_len as u64 + data.map_or(0, <[u8]>::len) as u64;
    }

    /// Replace the data of a server-maintained node (`/zookeeper/config`) without a txn:
    /// every server derives it from the same config file. False if the node is missing.
    pub fn set_system_data(&mut self, path: &str, data: &[u8]) -> bool {
        let Some(id) = self.lookup(path) else { return false };
        let acl = self.acl(id).to_vec();
        let raw = self.raw_stat(id);
        self.overwrite(id, path, Some(data), &acl, &raw);
        true
    }

    /// The raw ephemeralOwner of a live node (0 unless its `has_owner` flag is set).
    fn owner(&self, id: u32) -> i64 {
        if self.nodes[id as usize].has_owner() {
            self.owners.get(&id).copied().unwrap_or(0)
        } else {
            0
        }
    }

    fn track_owner(&mut self, id: u32, owner: i64) {
        if owner != 0 {
            self.owners.insert(id, owner);
        }
        match owner_kind(owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Session(s) => {
                self.ephemerals.entry(s).or_default().insert(id);
            }
            OwnerKind::Container => {
                self.containers.insert(id);
            }
            OwnerKind::Ttl { .. } => {
                self.ttls.insert(id);
            }
        }
    }

    fn untrack_owner(&mut self, id: u32, owner: i64) {
        if owner != 0 {
            self.owners.remove(&id);
        }
        match owner_kind(owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Session(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            OwnerKind::Container => {
                self.containers.remove(&id);
            }
            OwnerKind::Ttl { .. } => {
                self.ttls.remove(&id);
            }
        }
    }

    /// Heap bytes held by the tree's own structures (arena, index, sets), excluding the
    /// per-node name+data blocks and the ACL lists. For memory diagnostics.
    pub fn structure_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.index.allocation_size()
            + self.owners.allocation_size()
            + self.containers.allocation_size()
            + self.ttls.allocation_size()
            + self.ephemerals.values().map(|s| s.allocation_size() + 64).sum::<usize>()
    }
}

//! `DataTree::apply`: executes one committed txn (ZooKeeper 3.8 `DataTree.processTxn`).
//!
//! Prep has validated everything, so each op simply happens; an op that finds the tree
//! unexpectedly different (missing node, existing node) reports `Error(code)` and changes
//! nothing instead of panicking. Triggers are appended in the order ZooKeeper fires them.

use crate::proto::{Acl, ErrorCode, EventType, Zxid};
use crate::txn::{Txn, TxnOp};

use super::digest::{node_digest, NodeHash};
use super::{split_path, ApplyOutcome, DataTree, RawStat, Trigger};

impl DataTree {
    /// Applies a committed txn. Panics only on the programmer error of a zxid that does not
    /// increase (txns are applied exactly once, in log order).
    pub fn apply(&mut self, txn: &Txn, triggers: &mut Vec<Trigger>) -> ApplyOutcome {
        let h = &txn.header;
        assert!(
            h.zxid > self.last_applied,
            "txn zxid {} applied after {} (zxids must strictly increase)",
            h.zxid,
            self.last_applied
        );
        self.last_applied = h.zxid;
        let outcome = match &txn.op {
            TxnOp::CreateSession { .. } => ApplyOutcome::SessionCreated,
            TxnOp::CloseSession => {
                let deleted = self.ephemerals(h.session);
                for path in &deleted {
                    self.delete(h.zxid, path, triggers);
                }
                ApplyOutcome::SessionClosed { deleted }
            }
            TxnOp::Multi(ops) => {
                let outcomes = ops
                    .iter()
                    .map(|op| match op {
                        // Never produced by prep; no recursion and no partial nesting.
                        TxnOp::Multi(_) | TxnOp::CreateSession { .. } | TxnOp::CloseSession | TxnOp::Reconfig { .. } => {
                            ApplyOutcome::Error(ErrorCode::MarshallingError)
                        }
                        op => self.apply_path_op(h.zxid, h.time_ms, op, triggers),
                    })
                    .collect();
                ApplyOutcome::Multi(outcomes)
            }
            TxnOp::Reconfig { data } => {
                self.set_data(h.zxid, h.time_ms, crate::reconfig::CONFIG_NODE, Some(data), -1, triggers)
            }
            op => self.apply_path_op(h.zxid, h.time_ms, op, triggers),
        };
        // After the whole txn, as ZooKeeper logs it (never after part of a multi).
        self.digest.applied(h.zxid);
        outcome
    }

    fn set_data(
        &mut self,
        zxid: Zxid,
        time_ms: i64,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        triggers: &mut Vec<Trigger>,
    ) -> ApplyOutcome {
        let Some(id) = self.lookup(path) else { return ApplyOutcome::Error(ErrorCode::NoNode) };
        self.preserve(id.0);
        let owner = self.owner(id.0);
        let n = &mut self.nodes[id.0 as usize];
        let old_len = n.data().len() as u64;
        let old_digest = node_digest(path, n.data(), &n.raw(owner));
        n.set_data(data);
        n.version = version;
        n.mzxid = zxid.0;
        n.mtime = time_ms;
        let new_digest = node_digest(path, n.data(), &n.raw(owner));
        self.digest.change(old_digest, new_digest);
        self.data_size = self.data_size - old_len + data.map_or(0, <[u8]>::len) as u64;
        triggers.push(Trigger { path: path.to_string(), event: EventType::NodeDataChanged });
        ApplyOutcome::DataSet { stat: self.stat(id) }
    }

    /// One op that names a path (or an error), standalone or inside a multi.
    fn apply_path_op(&mut self, zxid: Zxid, time_ms: i64, op: &TxnOp, triggers: &mut Vec<Trigger>) -> ApplyOutcome {
        match op {
            TxnOp::Create { path, data, acl, ephemeral_owner, parent_cversion } => {
                let raw = RawStat {
                    czxid: zxid.0,
                    mzxid: zxid.0,
                    ctime: time_ms,
                    mtime: time_ms,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: *ephemeral_owner,
                    pzxid: zxid.0,
                };
                self.create(path, data.as_deref(), acl, raw, *parent_cversion, triggers)
            }
            TxnOp::Delete { path } => self.delete(zxid, path, triggers),
            TxnOp::SetData { path, data, version } => {
                self.set_data(zxid, time_ms, path, data.as_deref(), *version, triggers)
            }
            TxnOp::SetAcl { path, acl, version } => {
                let Some(id) = self.lookup(path) else { return ApplyOutcome::Error(ErrorCode::NoNode) };
                self.preserve(id.0);
                let new_acl = self.acls.intern(acl);
                let owner = self.owner(id.0);
                let n = &mut self.nodes[id.0 as usize];
                // The ACL itself is not in the digest; the aversion is.
                let hash = NodeHash::new(path, n.data());
                let old_digest = hash.with(&n.raw(owner));
                let old_acl = std::mem::replace(&mut n.acl, new_acl);
                n.aversion = *version;
                let new_digest = hash.with(&n.raw(owner));
                self.digest.change(old_digest, new_digest);
                self.acls.release(old_acl);
                ApplyOutcome::AclSet { stat: self.stat(id) }
            }
            TxnOp::Check { path, .. } => match self.lookup(path) {
                Some(_) => ApplyOutcome::Checked,
                None => ApplyOutcome::Error(ErrorCode::NoNode),
            },
            TxnOp::Error { err } => ApplyOutcome::Error(*err),
            TxnOp::CreateSession { .. } | TxnOp::CloseSession | TxnOp::Multi(_) | TxnOp::Reconfig { .. } => {
                ApplyOutcome::Error(ErrorCode::MarshallingError)
            }
        }
    }

    /// `DataTree.createNode`. `parent_cversion` -1 means "stored + 1"; the parent's
    /// cversion and pzxid only move forward (ZooKeeper guards replays over a fuzzy snapshot
    /// the same way).
    fn create(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        raw: RawStat,
        parent_cversion: i32,
        triggers: &mut Vec<Trigger>,
    ) -> ApplyOutcome {
        let Some((parent_path, name)) = split_path(path) else {
            return ApplyOutcome::Error(ErrorCode::BadArguments);
        };
        let Some(parent) = self.lookup(parent_path) else { return ApplyOutcome::Error(ErrorCode::NoNode) };
        if self.child(parent.0, name).is_some() {
            return ApplyOutcome::Error(ErrorCode::NodeExists);
        }
        self.preserve(parent.0);
        let owner = self.owner(parent.0);
        let p = &mut self.nodes[parent.0 as usize];
        let new_cversion = if parent_cversion == -1 { p.cversion.wrapping_add(1) } else { parent_cversion };
        if new_cversion > p.cversion {
            let hash = NodeHash::new(parent_path, p.data());
            let old_digest = hash.with(&p.raw(owner));
            p.cversion = new_cversion;
            p.pzxid = raw.czxid;
            let new_digest = hash.with(&p.raw(owner));
            self.digest.change(old_digest, new_digest);
        }
        let id = self.insert_node(parent, path, data, acl, &raw);
        triggers.push(Trigger { path: path.to_string(), event: EventType::NodeCreated });
        triggers.push(Trigger { path: parent_path.to_string(), event: EventType::NodeChildrenChanged });
        ApplyOutcome::Created { path: path.to_string(), stat: self.stat(id) }
    }

    /// `DataTree.deleteNode`: the parent's stored cversion is unchanged (it counts
    /// creations); its pzxid only moves forward.
    fn delete(&mut self, zxid: Zxid, path: &str, triggers: &mut Vec<Trigger>) -> ApplyOutcome {
        let Some(id) = self.lookup(path) else { return ApplyOutcome::Error(ErrorCode::NoNode) };
        let Some((parent_path, _)) = split_path(path) else {
            return ApplyOutcome::Error(ErrorCode::BadArguments); // the root
        };
        if self.nodes[id.0 as usize].num_children > 0 {
            // ZooKeeper would orphan the children; prep never asks for this.
            return ApplyOutcome::Error(ErrorCode::NotEmpty);
        }
        let parent = self.nodes[id.0 as usize].parent;
        self.remove_node(id, path);
        self.preserve(parent);
        let owner = self.owner(parent);
        let p = &mut self.nodes[parent as usize];
        if zxid.0 > p.pzxid {
            let hash = NodeHash::new(parent_path, p.data());
            let old_digest = hash.with(&p.raw(owner));
            p.pzxid = zxid.0;
            let new_digest = hash.with(&p.raw(owner));
            self.digest.change(old_digest, new_digest);
        }
        triggers.push(Trigger { path: path.to_string(), event: EventType::NodeDeleted });
        triggers.push(Trigger { path: parent_path.to_string(), event: EventType::NodeChildrenChanged });
        ApplyOutcome::Deleted
    }

}

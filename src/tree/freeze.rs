//! A frozen view of the tree at one zxid, read out in bounded slices while `apply` goes on
//! changing the tree: the source of a snapshot that neither forks nor stops the loop.
//!
//! Copy-on-write at node granularity. `begin_freeze` remembers how many arena slots exist
//! (`end`) and allocates one bit per slot (`done`), all clear. Then:
//! - the scan visits slots in index order; a slot below `end` whose bit is clear and
//!   which holds a live node still holds exactly the node it held at the freeze: it is
//!   emitted as it is now, and its bit set;
//! - before `apply` changes a stored field of a node (data, ACL, a Stat field) or deletes
//!   it, `preserve` copies the node's current (= frozen) state aside if its bit is clear
//!   and the scan has not passed it, and sets the bit; the copy is emitted with the next
//!   slice and dropped;
//! - a node created after the freeze `claim`s its slot's bit, so the scan skips it (a slot
//!   free at the freeze that is still free when the scan reaches it is skipped too);
//! - slots at or above `end` were pushed after the freeze and are never visited.
//!
//! So every node live at the freeze is emitted exactly once, in its state at the freeze,
//! and nothing created later is: the result is the tree at exactly that zxid, not a fuzzy
//! one, and recovery needs no idempotent replay. The cost lands only on nodes written
//! while the scan runs (one copy each, at most once per freeze), not on pages, and the
//! loop pays for the scan in slices it chooses. Nodes come out in slot order, except that
//! a node's ancestors still pending go out (or are saved) right before it, so every parent
//! precedes its children, as the snapshot format requires: slots are reused, so a child
//! can sit in a lower slot than its parent.
//!
//! Links (children, siblings, `num_children`) are not part of a snapshot record, so
//! changing them does not preserve anything.

use crate::proto::{Acl, Zxid};

use super::node::{RawStat, FREE, NIL};
use super::{DataTree, NodeView};

/// A node's state at the freeze, copied before `apply` changed it.
struct Saved {
    path: String,
    data: Option<Box<[u8]>>,
    acl: Vec<Acl>,
    raw: RawStat,
}

pub(super) struct Freeze {
    zxid: Zxid,
    /// The scan has visited every slot below this.
    next: u32,
    /// Slots that existed at the freeze.
    end: u32,
    /// One bit per slot below `end`: its frozen state was emitted or saved, or a node
    /// created after the freeze lives there.
    done: Vec<u64>,
    saved: Vec<Saved>,
    emitted: u64,
    /// Nodes copied aside in all (a measure of what the freeze cost the writes).
    copies: u64,
}

impl Freeze {
    fn pending(&self, id: u32) -> bool {
        id >= self.next && id < self.end && self.done[(id / 64) as usize] & (1 << (id % 64)) == 0
    }

    fn mark(&mut self, id: u32) {
        self.done[(id / 64) as usize] |= 1 << (id % 64);
    }
}

/// What one `freeze_step` did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FreezeProgress {
    /// Nodes emitted by this step.
    pub nodes: u64,
    /// Path and data bytes emitted by this step.
    pub bytes: u64,
    /// Every node of the frozen state has been emitted; the freeze has ended.
    pub finished: bool,
}

impl DataTree {
    /// Freeze the current state (at `last_applied`) for `freeze_step` to read out. Replaces
    /// a freeze still running (its reader is gone). O(slots / 64) zeroed words.
    pub fn begin_freeze(&mut self) -> Zxid {
        let end = self.nodes.len() as u32;
        self.freeze = Some(Box::new(Freeze {
            zxid: self.last_applied,
            next: 0,
            end,
            done: vec![0u64; (end as usize).div_ceil(64)],
            saved: Vec::new(),
            emitted: 0,
            copies: 0,
        }));
        self.last_applied
    }

    /// The zxid of the running freeze, if one runs.
    pub fn frozen_at(&self) -> Option<Zxid> {
        self.freeze.as_ref().map(|f| f.zxid)
    }

    /// Drop the running freeze, if any (its snapshot was cancelled).
    pub fn end_freeze(&mut self) {
        self.freeze = None;
    }

    /// Nodes copied aside by the running freeze so far (0 without one).
    pub fn freeze_copies(&self) -> u64 {
        self.freeze.as_ref().map_or(0, |f| f.copies)
    }

    /// Emit the next part of the frozen state through `f`: first the nodes copied aside
    /// since the last step, then live slots in index order until `max_nodes` nodes or
    /// `max_bytes` bytes (at least one node) have gone out. When everything has, the freeze
    /// ends and `finished` is set. Without a freeze: nothing, and `finished`.
    pub fn freeze_step(&mut self, max_nodes: u64, max_bytes: u64, mut f: impl FnMut(&str, NodeView<'_>)) -> FreezeProgress {
        let Some(mut fz) = self.freeze.take() else {
            return FreezeProgress { finished: true, ..FreezeProgress::default() };
        };
        let mut p = FreezeProgress::default();
        for s in fz.saved.drain(..) {
            f(&s.path, NodeView { data: s.data.as_deref(), acl: &s.acl, raw: s.raw, num_children: 0 });
            p.nodes += 1;
            p.bytes += (s.path.len() + s.data.as_ref().map_or(0, |d| d.len())) as u64;
        }
        let mut path = String::new();
        let mut chain = Vec::new();
        while fz.next < fz.end && p.nodes < max_nodes && p.bytes < max_bytes {
            let id = fz.next;
            let pending = fz.pending(id);
            fz.next += 1;
            if !pending || self.nodes[id as usize].is_free() {
                continue;
            }
            // Parents first: ancestors in later slots (reused ones hold younger nodes) go
            // out before the node, top down.
            self.pending_ancestors(&fz, id, &mut chain);
            chain.insert(0, id); // `id`, then its ancestors upward: reversed, parents first
            for &a in chain.iter().rev() {
                fz.mark(a);
                self.path_into(a, &mut path);
                let v = self.view(a);
                p.bytes += (path.len() + v.data.map_or(0, <[u8]>::len)) as u64;
                f(&path, v);
                p.nodes += 1;
            }
        }
        fz.emitted += p.nodes;
        if fz.next >= fz.end && fz.saved.is_empty() {
            p.finished = true;
        } else {
            self.freeze = Some(fz);
        }
        p
    }

    /// Before a stored field of live node `id` changes or the node is deleted: keep its
    /// frozen state if the scan still needs it.
    pub(super) fn preserve(&mut self, id: u32) {
        let Some(mut fz) = self.freeze.take() else { return };
        if fz.pending(id) {
            // Its pending ancestors are saved first, so that the saved list, too, has
            // every parent before its children.
            let mut chain = Vec::new();
            self.pending_ancestors(&fz, id, &mut chain);
            chain.insert(0, id); // `id`, then its ancestors upward: reversed, parents first
            for &a in chain.iter().rev() {
                let mut path = String::new();
                self.path_into(a, &mut path);
                let v = self.view(a);
                fz.saved.push(Saved { path, data: v.data.map(Box::from), acl: v.acl.to_vec(), raw: v.raw });
                fz.mark(a);
                fz.copies += 1;
            }
        }
        self.freeze = Some(fz);
    }

    /// The ancestors of `id` still pending, nearest first, into `chain` (cleared first).
    /// An ancestor that is not pending was emitted or saved, and by induction so were
    /// its own ancestors, before it (it cannot be a node created after the freeze: `id`
    /// is older than that and lives under it). Usually the parent is done: one bit test.
    fn pending_ancestors(&self, fz: &Freeze, id: u32, chain: &mut Vec<u32>) {
        chain.clear();
        let mut p = self.nodes[id as usize].parent;
        while p != NIL && p != FREE && fz.pending(p) {
            chain.push(p);
            p = self.nodes[p as usize].parent;
        }
    }

    /// A node created after the freeze now lives in slot `id`: the scan must skip it.
    pub(super) fn claim(&mut self, id: u32) {
        if let Some(fz) = self.freeze.as_mut() {
            if id < fz.end {
                fz.mark(id);
            }
        }
    }
}

//! Deduplicated, reference-counted ACL lists (ZooKeeper's `ReferenceCountedACLCache`).
//!
//! Almost every znode carries one of a handful of ACL lists, so each node stores a `u32`
//! index into this table instead of its own `Vec<Acl>`. Invariants: a slot's `refs` equals
//! the number of live nodes pointing at it; a slot with `refs == 0` is on the free list, has
//! an empty list and is absent from `index`; `index` holds each distinct live list once.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::proto::Acl;

struct Slot {
    acl: Vec<Acl>,
    refs: u32,
}

pub(crate) struct AclCache {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slot indices keyed by the hash of their list; equality compares the stored list, so
    /// the list itself is kept only once.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl AclCache {
    pub(crate) fn new() -> AclCache {
        AclCache {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Takes one reference on `acl`'s slot, creating it if this list is new.
    pub(crate) fn intern(&mut self, acl: &[Acl]) -> u32 {
        let hash = self.hasher.hash_one(acl);
        let slots = &mut self.slots;
        if let Some(&i) = self.index.find(hash, |&i| slots[i as usize].acl == acl) {
            slots[i as usize].refs += 1;
            return i;
        }
        let i = match self.free.pop() {
            Some(i) => {
                slots[i as usize] = Slot { acl: acl.to_vec(), refs: 1 };
                i
            }
            None => {
                let i = u32::try_from(slots.len()).expect("fewer than 2^32 distinct ACL lists");
                slots.push(Slot { acl: acl.to_vec(), refs: 1 });
                i
            }
        };
        let hasher = &self.hasher;
        self.index.insert_unique(hash, i, |&j| hasher.hash_one(&slots[j as usize].acl[..]));
        i
    }

    /// Drops one reference; the slot is recycled when no node uses it any more.
    pub(crate) fn release(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        assert!(slot.refs > 0, "ACL slot {i} released more often than taken");
        slot.refs -= 1;
        if slot.refs > 0 {
            return;
        }
        let hash = self.hasher.hash_one(&slot.acl[..]);
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        self.slots[i as usize].acl = Vec::new();
        self.free.push(i);
    }

    pub(crate) fn get(&self, i: u32) -> &[Acl] {
        &self.slots[i as usize].acl
    }

    /// Number of distinct ACL lists in use.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_lists_share_one_slot_and_slots_are_recycled() {
        let mut c = AclCache::new();
        let a = c.intern(&Acl::open_unsafe());
        let b = c.intern(&Acl::open_unsafe());
        let r = c.intern(&Acl::read_unsafe());
        assert_eq!(a, b);
        assert_ne!(a, r);
        assert_eq!(c.len(), 2);
        c.release(a);
        assert_eq!(c.len(), 2);
        c.release(b);
        assert_eq!(c.len(), 1);
        let again = c.intern(&Acl::open_unsafe());
        assert_eq!(again, a, "freed slot is reused");
        assert_eq!(c.get(again), &Acl::open_unsafe()[..]);
    }
}

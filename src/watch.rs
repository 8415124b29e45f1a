//! The watch registry: which connection watches which path, and how tree changes turn into
//! notifications (`WatchManager.java`, `DataTree.setWatches`).
//!
//! Watches are local to the server holding the connection; they are never replicated. A
//! one-shot watch is removed when it fires; persistent ones stay until removed or until the
//! connection goes away. Each watcher gets at most one notification per trigger, even when
//! it holds several kinds of watch on the path (ZooKeeper suppresses duplicates the same way).
//!
//! Invariant: `by_watcher` is the exact reverse index of `by_path`.

use std::collections::{HashMap, HashSet};

use crate::proto::{EventType, WatchKind};

/// Identifies a watcher: a client connection (its slab key and a generation, so a reused
/// slot never inherits the watches of the connection that had it before).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatcherId(pub u64);

#[derive(Default, Debug)]
struct PathWatches {
    data: Vec<WatcherId>,
    child: Vec<WatcherId>,
    persistent: Vec<WatcherId>,
    recursive: Vec<WatcherId>,
}

impl PathWatches {
    fn list(&mut self, kind: WatchKind) -> &mut Vec<WatcherId> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty() && self.child.is_empty() && self.persistent.is_empty() && self.recursive.is_empty()
    }
}

/// One notification to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub watcher: WatcherId,
    pub event: EventType,
    pub path: String,
}

/// `removeWatches`/`checkWatches` watcher types (`WatcherType.java`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WatcherType {
    Children,
    Data,
    Any,
    Persistent,
    PersistentRecursive,
}

impl WatcherType {
    pub fn from_i32(v: i32) -> Option<WatcherType> {
        Some(match v {
            1 => WatcherType::Children,
            2 => WatcherType::Data,
            3 => WatcherType::Any,
            4 => WatcherType::Persistent,
            5 => WatcherType::PersistentRecursive,
            _ => return None,
        })
    }
    fn kinds(self) -> &'static [WatchKind] {
        match self {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data],
            WatcherType::Any => &[WatchKind::Data, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
        }
    }
}

#[derive(Default, Debug)]
pub struct WatchManager {
    by_path: HashMap<String, PathWatches>,
    by_watcher: HashMap<WatcherId, HashSet<(String, WatchKind)>>,
    /// Count of recursive registrations: when zero, triggers skip the walk up the ancestors.
    recursive_count: usize,
    /// Notifications counted for the planted `lost_watch` bug (tests only).
    planted_count: u64,
}

impl WatchManager {
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    /// PLANTED BUG (lost_watch): true for every 5th notification, which the service then
    /// drops. Only `Planted::lost_watch` (tests, `arbor-sim --plant`) calls this.
    pub(crate) fn planted_drop(&mut self) -> bool {
        self.planted_count += 1;
        self.planted_count % 5 == 0
    }

    /// Register a watch; registering the same (path, kind) twice is a no-op.
    pub fn add(&mut self, watcher: WatcherId, path: &str, kind: WatchKind) {
        let set = self.by_watcher.entry(watcher).or_default();
        if !set.insert((path.to_string(), kind)) {
            return;
        }
        self.by_path.entry(path.to_string()).or_default().list(kind).push(watcher);
        if kind == WatchKind::PersistentRecursive {
            self.recursive_count += 1;
        }
    }

    fn remove_one(&mut self, watcher: WatcherId, path: &str, kind: WatchKind) -> bool {
        let Some(pw) = self.by_path.get_mut(path) else { return false };
        let list = pw.list(kind);
        let Some(pos) = list.iter().position(|w| *w == watcher) else { return false };
        list.swap_remove(pos);
        if pw.is_empty() {
            self.by_path.remove(path);
        }
        if kind == WatchKind::PersistentRecursive {
            self.recursive_count -= 1;
        }
        if let Some(set) = self.by_watcher.get_mut(&watcher) {
            set.remove(&(path.to_string(), kind));
            if set.is_empty() {
                self.by_watcher.remove(&watcher);
            }
        }
        true
    }

    /// Whether `watcher` holds a watch of `wtype` on `path` (checkWatches).
    pub fn contains(&self, watcher: WatcherId, path: &str, wtype: WatcherType) -> bool {
        let Some(set) = self.by_watcher.get(&watcher) else { return false };
        wtype.kinds().iter().any(|k| set.contains(&(path.to_string(), *k)))
    }

    /// removeWatches: remove `watcher`'s watches of `wtype` on `path`; false if none.
    pub fn remove(&mut self, watcher: WatcherId, path: &str, wtype: WatcherType) -> bool {
        let mut any = false;
        for k in wtype.kinds() {
            any |= self.remove_one(watcher, path, *k);
        }
        any
    }

    /// Drop every watch of a watcher (its connection closed).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(set) = self.by_watcher.remove(&watcher) else { return };
        for (path, kind) in set {
            if let Some(pw) = self.by_path.get_mut(&path) {
                let list = pw.list(kind);
                if let Some(pos) = list.iter().position(|w| *w == watcher) {
                    list.swap_remove(pos);
                    if kind == WatchKind::PersistentRecursive {
                        self.recursive_count -= 1;
                    }
                }
                if pw.is_empty() {
                    self.by_path.remove(&path);
                }
            }
        }
    }

    /// Turn one tree change into notifications, removing the one-shot watches that fire.
    pub fn trigger(&mut self, path: &str, event: EventType, out: &mut Vec<Notification>) {
        let start = out.len();
        let push = |out: &mut Vec<Notification>, w: WatcherId| {
            if !out[start..].iter().any(|n| n.watcher == w) {
                out.push(Notification { watcher: w, event, path: path.to_string() });
            }
        };
        let mut fired_one_shot: Vec<(WatcherId, WatchKind)> = Vec::new();
        if let Some(pw) = self.by_path.get(path) {
            let one_shot: &[(WatchKind, &Vec<WatcherId>)] = match event {
                EventType::NodeCreated | EventType::NodeDataChanged => &[(WatchKind::Data, &pw.data)],
                EventType::NodeDeleted => &[(WatchKind::Data, &pw.data), (WatchKind::Child, &pw.child)],
                EventType::NodeChildrenChanged => &[(WatchKind::Child, &pw.child)],
                _ => &[],
            };
            for (kind, list) in one_shot {
                for w in list.iter() {
                    push(out, *w);
                    fired_one_shot.push((*w, *kind));
                }
            }
            for w in &pw.persistent {
                push(out, *w);
            }
            if event != EventType::NodeChildrenChanged {
                for w in &pw.recursive {
                    push(out, *w);
                }
            }
        }
        // Recursive watches on ancestors see every event below them except child changes.
        if self.recursive_count > 0 && event != EventType::NodeChildrenChanged {
            let mut p = path;
            while let Some(idx) = p.rfind('/') {
                p = if idx == 0 { "/" } else { &p[..idx] };
                if let Some(pw) = self.by_path.get(p) {
                    for w in &pw.recursive {
                        push(out, *w);
                    }
                }
                if p == "/" {
                    break;
                }
            }
        }
        for (w, k) in fired_one_shot {
            self.remove_one(w, path, k);
        }
    }

    /// `wchs` as ZooKeeper 3.8 reports it (`DataTree.getWatchesSummary`): data and exist
    /// watches only — (watchers, paths, watches).
    pub fn data_watch_summary(&self) -> (usize, usize, usize) {
        let mut watchers = std::collections::BTreeSet::new();
        let (mut paths, mut total) = (0, 0);
        for pw in self.by_path.values().filter(|pw| !pw.data.is_empty()) {
            paths += 1;
            total += pw.data.len();
            watchers.extend(pw.data.iter().copied());
        }
        (watchers.len(), paths, total)
    }

    pub fn watch_count(&self) -> usize {
        self.by_watcher.values().map(|s| s.len()).sum()
    }
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.len()
    }

    /// `wchc`-style dump: watcher → paths (sorted, for stable output).
    pub fn by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        let mut v: Vec<_> = self
            .by_watcher
            .iter()
            .map(|(w, s)| {
                let mut p: Vec<String> = s.iter().map(|(p, _)| p.clone()).collect();
                p.sort();
                p.dedup();
                (*w, p)
            })
            .collect();
        v.sort_by_key(|(w, _)| *w);
        v
    }

    /// `wchp`-style dump: path → watchers.
    pub fn by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        let mut v: Vec<_> = self
            .by_path
            .iter()
            .map(|(p, pw)| {
                let mut w: Vec<WatcherId> =
                    pw.data.iter().chain(&pw.child).chain(&pw.persistent).chain(&pw.recursive).copied().collect();
                w.sort();
                w.dedup();
                (p.clone(), w)
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: WatcherId = WatcherId(1);
    const B: WatcherId = WatcherId(2);

    fn fire(m: &mut WatchManager, path: &str, e: EventType) -> Vec<(WatcherId, EventType, String)> {
        let mut out = Vec::new();
        m.trigger(path, e, &mut out);
        out.into_iter().map(|n| (n.watcher, n.event, n.path)).collect()
    }

    #[test]
    fn one_shot_fires_once() {
        let mut m = WatchManager::new();
        m.add(A, "/a", WatchKind::Data);
        assert_eq!(fire(&mut m, "/a", EventType::NodeDataChanged), vec![(A, EventType::NodeDataChanged, "/a".into())]);
        assert!(fire(&mut m, "/a", EventType::NodeDataChanged).is_empty());
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn delete_fires_data_and_child_watch_once_per_watcher() {
        let mut m = WatchManager::new();
        m.add(A, "/a", WatchKind::Data);
        m.add(A, "/a", WatchKind::Child);
        m.add(B, "/a", WatchKind::Child);
        let got = fire(&mut m, "/a", EventType::NodeDeleted);
        assert_eq!(got.len(), 2);
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn child_watch_ignores_data_changes() {
        let mut m = WatchManager::new();
        m.add(A, "/a", WatchKind::Child);
        assert!(fire(&mut m, "/a", EventType::NodeDataChanged).is_empty());
        assert_eq!(fire(&mut m, "/a", EventType::NodeChildrenChanged).len(), 1);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut m = WatchManager::new();
        m.add(A, "/a", WatchKind::Persistent);
        m.add(B, "/", WatchKind::PersistentRecursive);
        assert_eq!(fire(&mut m, "/a", EventType::NodeDataChanged).len(), 2);
        assert_eq!(fire(&mut m, "/a", EventType::NodeDataChanged).len(), 2);
        // Recursive watches skip child events; persistent ones get them.
        assert_eq!(fire(&mut m, "/a", EventType::NodeChildrenChanged), vec![(A, EventType::NodeChildrenChanged, "/a".into())]);
        assert_eq!(fire(&mut m, "/a/b/c", EventType::NodeCreated), vec![(B, EventType::NodeCreated, "/a/b/c".into())]);
        assert!(m.remove(B, "/", WatcherType::Any));
        assert!(fire(&mut m, "/a/b/c", EventType::NodeCreated).is_empty());
        assert!(!m.remove(B, "/", WatcherType::Any));
    }

    #[test]
    fn remove_watcher_clears_everything() {
        let mut m = WatchManager::new();
        m.add(A, "/a", WatchKind::Data);
        m.add(A, "/b", WatchKind::PersistentRecursive);
        m.add(B, "/a", WatchKind::Data);
        m.remove_watcher(A);
        assert_eq!(m.watch_count(), 1);
        assert_eq!(fire(&mut m, "/b/x", EventType::NodeCreated), vec![]);
        assert_eq!(fire(&mut m, "/a", EventType::NodeDeleted).len(), 1);
        assert_eq!(m.path_count(), 0);
    }

    #[test]
    fn check_and_remove_by_type() {
        let mut m = WatchManager::new();
        m.add(A, "/a", WatchKind::Data);
        assert!(m.contains(A, "/a", WatcherType::Data));
        assert!(!m.contains(A, "/a", WatcherType::Children));
        assert!(!m.remove(A, "/a", WatcherType::Children));
        assert!(m.remove(A, "/a", WatcherType::Data));
        assert!(!m.contains(A, "/a", WatcherType::Any));
    }
}

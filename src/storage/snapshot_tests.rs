//! The streamed snapshot (`snapshot::Stream` over `tree::freeze`): what it writes is the
//! tree at exactly its zxid, however writes interleave with its steps, and the reader
//! takes nodes in any order but never a parent that is not defined.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::snapshot::{self, BodyEncoder, SnapshotImage, Stream};
use super::tests::dump;
use crate::proto::{perms, Acl, Id, ServerId, SessionId, Zxid};
use crate::session::SessionTable;
use crate::tree::{DataTree, NodeView, RawStat};
use crate::txn::{Txn, TxnHeader, TxnOp};

/// Random client-like writes on a small tree, so that paths are deleted and created
/// again (arena slots are reused) while a snapshot runs.
struct Writer {
    rng: StdRng,
    zxid: i64,
    triggers: Vec<crate::tree::Trigger>,
}

const SESSIONS: [SessionId; 2] = [SessionId(0x51), SessionId(0x52)];

impl Writer {
    fn paths(tree: &DataTree) -> Vec<(String, bool)> {
        let mut v = Vec::new();
        tree.for_each_preorder(|p, n| v.push((p.to_string(), n.raw.ephemeral_owner != 0)));
        v
    }

    fn op(&mut self, tree: &DataTree) -> (SessionId, TxnOp) {
        let paths = Self::paths(tree);
        let (path, ephemeral) = paths[self.rng.gen_range(0..paths.len())].clone();
        let size = if self.rng.gen_bool(0.05) { 70_000 } else { self.rng.gen_range(0..40) };
        let data: Vec<u8> = (0..size).map(|_| self.rng.gen()).collect();
        match self.rng.gen_range(0..10) {
            0..=3 if !ephemeral && !path.starts_with("/zookeeper") => {
                let name = format!("n{}", self.rng.gen_range(0..6));
                let child = if path == "/" { format!("/{name}") } else { format!("{path}/{name}") };
                let owner = if self.rng.gen_bool(0.2) { SESSIONS[self.rng.gen_range(0..2)].0 } else { 0 };
                let acl = if self.rng.gen_bool(0.3) {
                    vec![Acl { perms: perms::ALL, id: Id::new("digest", &format!("u{}:x=", self.rng.gen_range(0..3))) }]
                } else {
                    Acl::open_unsafe()
                };
                (SessionId(owner), TxnOp::Create { path: child, data: Some(data), acl, ephemeral_owner: owner, parent_cversion: -1 })
            }
            4..=5 if path != "/" && !path.starts_with("/zookeeper") => (SessionId(0), TxnOp::Delete { path }),
            6 if path != "/" => (
                SessionId(0),
                TxnOp::SetAcl { path, acl: vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }], version: 1 },
            ),
            7 => (SESSIONS[self.rng.gen_range(0..2)], TxnOp::CloseSession),
            _ => (SessionId(0), TxnOp::SetData { path, data: if self.rng.gen_bool(0.1) { None } else { Some(data) }, version: 1 }),
        }
    }

    /// One random write (a create under a missing parent or a delete of a node with
    /// children simply fails in apply, as a replayed txn would).
    fn write(&mut self, tree: &mut DataTree) {
        let (session, op) = self.op(tree);
        self.zxid += 1;
        let txn = Txn { header: TxnHeader { session, cxid: 0, zxid: Zxid(self.zxid), time_ms: self.zxid }, op };
        self.triggers.clear();
        tree.apply(&txn, &mut self.triggers);
    }
}

fn sessions() -> SessionTable {
    let mut s = SessionTable::new(ServerId(1), 0);
    s.add(SessionId(0x51), 4000, 0);
    s
}

#[test]
fn streamed_snapshot_is_the_state_at_its_zxid_whatever_the_writes_during_it() {
    // Nodes copied aside over all runs: the copy path must have been exercised.
    let mut copies = 0;
    for seed in 0..60u64 {
        let d = tempfile::tempdir().expect("tmp");
        let mut w = Writer { rng: StdRng::seed_from_u64(seed), zxid: 0x1_0000_0000, triggers: Vec::new() };
        let mut tree = DataTree::new();
        for _ in 0..400 {
            w.write(&mut tree);
        }
        let want = dump(&tree);
        let zxid = tree.last_applied();
        let mut stream = Stream::start(d.path(), &mut tree, &sessions()).expect("start");
        let mut steps = 0;
        let mut copies_now;
        loop {
            for _ in 0..w.rng.gen_range(0..6) {
                w.write(&mut tree);
            }
            copies_now = tree.freeze_copies();
            let max_nodes = w.rng.gen_range(1..5);
            let step = stream.step(&mut tree, max_nodes, 1 << 20).expect("step");
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: the snapshot never finished");
            if step.encoded {
                break;
            }
        }
        assert_eq!(tree.frozen_at(), None, "seed {seed}: the freeze ended with the snapshot");
        let (path, _) = stream.finish().expect("written");
        assert_eq!(path, snapshot::snapshot_path(d.path(), zxid));
        let l = snapshot::load(&path).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(dump(&l.tree), want, "seed {seed}: the snapshot is not the tree at {zxid}");
        assert_eq!(l.sessions, vec![(SessionId(0x51), 4000)]);
        copies += copies_now;
    }
    assert!(copies > 100, "only {copies} nodes were copied aside in all runs");
}

#[test]
fn writes_after_the_freeze_are_not_in_the_snapshot_and_changed_nodes_are_copied_once() {
    let d = tempfile::tempdir().expect("tmp");
    let mut w = Writer { rng: StdRng::seed_from_u64(7), zxid: 0x1_0000_0000, triggers: Vec::new() };
    let mut tree = DataTree::new();
    let mut z = 0x1_0000_0000i64;
    let mut apply = |tree: &mut DataTree, op: TxnOp| {
        z += 1;
        let t = Txn { header: TxnHeader { session: SessionId(0), cxid: 0, zxid: Zxid(z), time_ms: z }, op };
        tree.apply(&t, &mut w.triggers);
    };
    for i in 0..50 {
        apply(&mut tree, TxnOp::Create { path: format!("/k{i}"), data: Some(vec![1]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: -1 });
    }
    let want = dump(&tree);
    let mut stream = Stream::start(d.path(), &mut tree, &SessionTable::new(ServerId(1), 0)).expect("start");
    // The same node written 3 times before the scan reaches it: one copy.
    for _ in 0..3 {
        apply(&mut tree, TxnOp::SetData { path: "/k49".into(), data: Some(vec![9; 10]), version: 1 });
    }
    apply(&mut tree, TxnOp::Delete { path: "/k48".into() });
    apply(&mut tree, TxnOp::Create { path: "/new".into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: -1 });
    // "/" changed (cversion, pzxid) by both: copied once too.
    assert_eq!(tree.freeze_copies(), 3);
    while !stream.step(&mut tree, 7, 1 << 20).expect("step").encoded {}
    let (path, _) = stream.finish().expect("written");
    assert_eq!(dump(&snapshot::load(&path).expect("load").tree), want);
}

#[test]
fn cancelled_snapshot_leaves_no_file_and_ends_the_freeze() {
    let d = tempfile::tempdir().expect("tmp");
    let mut tree = DataTree::new();
    let mut stream = Stream::start(d.path(), &mut tree, &SessionTable::new(ServerId(1), 0)).expect("start");
    stream.step(&mut tree, 1, 1 << 20).expect("step");
    let handle = stream.cancel(Some(&mut tree));
    assert_eq!(tree.frozen_at(), None);
    assert!(handle.join().expect("thread").is_err(), "a cancelled writer reports no file");
    let left: Vec<_> = std::fs::read_dir(d.path()).expect("dir").flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn a_stream_refuses_a_tree_that_is_not_the_frozen_one() {
    let d = tempfile::tempdir().expect("tmp");
    let mut tree = DataTree::new();
    let mut stream = Stream::start(d.path(), &mut tree, &SessionTable::new(ServerId(1), 0)).expect("start");
    let mut other = DataTree::new();
    assert!(stream.step(&mut other, 10, 1 << 20).is_err());
}

fn image(records: &[&str]) -> SnapshotImage {
    let mut enc = BodyEncoder::new(0);
    let acl = Acl::open_unsafe();
    for p in records {
        enc.node(p, &NodeView { data: Some(p.as_bytes()), acl: &acl, raw: RawStat { czxid: 3, ..RawStat::default() }, num_children: 0 });
    }
    enc.end();
    SnapshotImage { zxid: Zxid(9), nodes: enc.nodes, sessions: 0, body: enc.body }
}

/// Slots are reused last-freed first, so a child can live in a lower slot than its parent:
/// the scan must still emit the parent first, and so must a copy made before the scan.
#[test]
fn parents_come_first_even_from_reused_slots() {
    for touch_child in [false, true] {
        let mut tree = DataTree::new();
        let mut z = 0x1_0000_0000i64;
        let mut trig = Vec::new();
        let mut apply = |tree: &mut DataTree, op: TxnOp| {
            z += 1;
            let t = Txn { header: TxnHeader { session: SessionId(0), cxid: 0, zxid: Zxid(z), time_ms: z }, op };
            tree.apply(&t, &mut trig);
        };
        let create = |path: &str| TxnOp::Create { path: path.into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: -1 };
        for p in ["/x1", "/x2", "/x3"] {
            apply(&mut tree, create(p));
        }
        for p in ["/x1", "/x2", "/x3"] {
            apply(&mut tree, TxnOp::Delete { path: p.into() });
        }
        apply(&mut tree, create("/p")); // x3's slot
        apply(&mut tree, create("/p/c")); // x2's slot, lower
        tree.begin_freeze();
        if touch_child {
            apply(&mut tree, TxnOp::SetData { path: "/p/c".into(), data: Some(vec![1]), version: 1 });
        }
        let mut order = Vec::new();
        while !tree.freeze_step(1, 1 << 20, |path, _| order.push(path.to_string())).finished {}
        let pos = |p: &str| order.iter().position(|x| x == p).unwrap_or_else(|| panic!("{p} not emitted: {order:?}"));
        assert!(pos("/p") < pos("/p/c"), "child before parent: {order:?}");
        assert_eq!(order.len(), tree.node_count(), "each node once: {order:?}");
    }
}

#[test]
fn reader_rejects_a_child_before_its_parent() {
    let d = tempfile::tempdir().expect("tmp");
    let (path, _) = snapshot::write_image(d.path(), &image(&["/a/b", "/a"])).expect("write");
    let err = snapshot::load(&path).err().expect("must fail").to_string();
    assert!(err.contains("\"/a/b\"") && err.contains("NoNode"), "{err}");
}

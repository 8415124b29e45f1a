//! Tree semantics against ZooKeeper 3.8 `DataTree`/`DataNode` behaviour (Stat rules,
//! triggers, bookkeeping) and the snapshot round trip.

use super::*;
use crate::proto::{perms, Id};
use crate::txn::{Txn, TxnHeader, TxnOp};

const S1: SessionId = SessionId(0x100);
const S2: SessionId = SessionId(0x200);

/// A tree plus a zxid/time counter, so tests read as a sequence of client operations.
struct T {
    tree: DataTree,
    zxid: i64,
    triggers: Vec<Trigger>,
}

impl T {
    fn new() -> T {
        T { tree: DataTree::new(), zxid: 0x1_0000_0000, triggers: Vec::new() }
    }

    fn run(&mut self, session: SessionId, op: TxnOp) -> ApplyOutcome {
        self.zxid += 1;
        let txn = Txn {
            header: TxnHeader { session, cxid: 1, zxid: Zxid(self.zxid), time_ms: 1000 + self.zxid % 1000 },
            op,
        };
        self.triggers.clear();
        self.tree.apply(&txn, &mut self.triggers)
    }

    /// A create as prep would make it: parent cversion = stored + 1.
    fn create_op(&self, path: &str, data: &[u8], owner: i64) -> TxnOp {
        let (parent, _) = split_path(path).unwrap();
        let parent_cversion = self.tree.lookup(parent).map_or(1, |p| self.tree.stored_cversion(p) + 1);
        TxnOp::Create {
            path: path.to_string(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral_owner: owner,
            parent_cversion,
        }
    }

    fn create(&mut self, path: &str, data: &[u8]) -> ApplyOutcome {
        self.create_owned(path, data, 0)
    }

    fn create_owned(&mut self, path: &str, data: &[u8], owner: i64) -> ApplyOutcome {
        let op = self.create_op(path, data, owner);
        let session = if owner > 0 { SessionId(owner) } else { S1 };
        self.run(session, op)
    }

    fn delete(&mut self, path: &str) -> ApplyOutcome {
        self.run(S1, TxnOp::Delete { path: path.to_string() })
    }

    fn stat(&self, path: &str) -> Stat {
        self.tree.stat(self.tree.lookup(path).unwrap_or_else(|| panic!("{path} missing")))
    }
}

fn trig(path: &str, event: EventType) -> Trigger {
    Trigger { path: path.to_string(), event }
}

#[test]
fn fresh_tree_has_root_and_zookeeper_nodes() {
    let t = DataTree::new();
    assert_eq!(t.node_count(), 4);
    assert_eq!(t.stat(NodeId::ROOT), Stat { cversion: -1, num_children: 1, ..Stat::default() });
    let zk = t.lookup("/zookeeper").unwrap();
    assert_eq!(t.children(zk), vec!["config", "quota"]);
    // stored cversion 0, two children: 0*2 - 2.
    assert_eq!(t.stat(zk).cversion, -2);
    assert_eq!(t.acl(zk), &Acl::open_unsafe()[..]);
    let quota = t.lookup("/zookeeper/quota").unwrap();
    assert_eq!(t.stat(quota), Stat::default());
    assert_eq!(t.acl(quota), &Acl::open_unsafe()[..]);
    let config = t.lookup("/zookeeper/config").unwrap();
    assert_eq!(t.stat(config), Stat { aversion: -1, ..Stat::default() });
    assert_eq!(t.acl(config), &Acl::read_unsafe()[..]);
    assert!(t.data(config).is_empty());
    // "/" + "/zookeeper" + "/zookeeper/quota" + "/zookeeper/config", as ZooKeeper counts.
    assert_eq!(t.approximate_data_size(), 1 + 10 + 16 + 17);
    assert_eq!(t.last_applied(), Zxid::ZERO);
}

#[test]
fn create_sets_node_stat_and_parent_cversion_pzxid_with_triggers() {
    let mut t = T::new();
    t.create("/a", b"x");
    let out = t.create("/a/b", b"hello");
    let z = t.zxid;
    let expected = Stat {
        czxid: z,
        mzxid: z,
        ctime: 1000 + z % 1000,
        mtime: 1000 + z % 1000,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
        pzxid: z,
    };
    assert_eq!(out, ApplyOutcome::Created { path: "/a/b".into(), stat: expected });
    assert_eq!(t.stat("/a/b"), expected);
    assert_eq!(t.triggers, vec![trig("/a/b", EventType::NodeCreated), trig("/a", EventType::NodeChildrenChanged)]);
    let a = t.tree.lookup("/a").unwrap();
    assert_eq!(t.tree.stored_cversion(a), 1);
    let sa = t.tree.stat(a);
    assert_eq!((sa.cversion, sa.num_children, sa.pzxid, sa.mzxid), (1, 1, z, z - 1));
    assert_eq!(t.tree.data(t.tree.lookup("/a/b").unwrap()), b"hello");
    assert_eq!(t.tree.last_applied(), Zxid(z));
}

#[test]
fn create_under_root_fires_children_changed_on_slash() {
    let mut t = T::new();
    t.create("/a", b"");
    assert_eq!(t.triggers, vec![trig("/a", EventType::NodeCreated), trig("/", EventType::NodeChildrenChanged)]);
}

#[test]
fn create_errors_do_not_change_the_tree() {
    let mut t = T::new();
    t.create("/a", b"");
    let before = t.stat("/a");
    assert_eq!(t.create("/a", b"again"), ApplyOutcome::Error(ErrorCode::NodeExists));
    assert_eq!(t.create("/missing/x", b""), ApplyOutcome::Error(ErrorCode::NoNode));
    assert!(t.triggers.is_empty());
    assert_eq!(t.stat("/a"), before);
    assert_eq!(t.tree.node_count(), 5);
}

#[test]
fn cversion_reports_creations_plus_deletions_and_suffix_counts_creations() {
    let mut t = T::new();
    t.create("/p", b"");
    let p = t.tree.lookup("/p").unwrap();
    let name = sequential_path("/p/n-", t.tree.stored_cversion(p));
    assert_eq!(name, "/p/n-0000000000");
    t.create(&name, b"");
    t.delete(&name);
    // One creation and one deletion: reported 2, next suffix 1 (zk-protocol.md).
    assert_eq!(t.stat("/p").cversion, 2);
    assert_eq!(t.tree.stored_cversion(p), 1);
    assert_eq!(sequential_path("/p/n-", t.tree.stored_cversion(p)), "/p/n-0000000001");
    t.create("/p/c1", b"");
    t.create("/p/c2", b"");
    assert_eq!(t.stat("/p").cversion, 3 * 2 - 2);
    assert_eq!(sequential_path("x", -5), "x-000000005");
}

#[test]
fn delete_keeps_stored_cversion_and_moves_pzxid_only_forward() {
    let mut t = T::new();
    t.create("/p", b"");
    t.create("/p/a", b"");
    let p = t.tree.lookup("/p").unwrap();
    assert_eq!(t.delete("/p/a"), ApplyOutcome::Deleted);
    let z = t.zxid;
    assert_eq!(t.triggers, vec![trig("/p/a", EventType::NodeDeleted), trig("/p", EventType::NodeChildrenChanged)]);
    assert_eq!(t.tree.stored_cversion(p), 1);
    assert_eq!(t.tree.stat(p).pzxid, z);
    assert!(t.tree.lookup("/p/a").is_none());

    // A create replayed with an explicit cversion sets pzxid; a later delete of an older
    // child with a lower zxid (as replay over a fuzzy snapshot could) must not lower it.
    let mut tree = DataTree::new();
    let mut tr = Vec::new();
    let mk = |zxid: i64, op: TxnOp| Txn { header: TxnHeader { session: S1, cxid: 0, zxid: Zxid(zxid), time_ms: 5 }, op };
    let create = |path: &str, cv: i32| TxnOp::Create {
        path: path.into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        ephemeral_owner: 0,
        parent_cversion: cv,
    };
    tree.apply(&mk(10, create("/q", 1)), &mut tr);
    tree.apply(&mk(11, create("/q/a", 1)), &mut tr);
    tree.apply(&mk(12, create("/q/b", 2)), &mut tr);
    let q = tree.lookup("/q").unwrap();
    // Force a pzxid from the future, as a snapshot taken later would carry.
    let mut raw = tree.raw_stat(q);
    raw.pzxid = 50;
    tree.insert_restored("/q", Some(b""), &Acl::open_unsafe(), raw).unwrap();
    tree.apply(&mk(13, TxnOp::Delete { path: "/q/a".into() }), &mut tr);
    assert_eq!(tree.stat(q).pzxid, 50);
    tree.apply(&mk(51, TxnOp::Delete { path: "/q/b".into() }), &mut tr);
    assert_eq!(tree.stat(q).pzxid, 51);
}

#[test]
fn create_with_stale_parent_cversion_does_not_lower_it() {
    let mut t = T::new();
    t.create("/p", b"");
    t.create("/p/a", b"");
    let p = t.tree.lookup("/p").unwrap();
    let pz = t.tree.stat(p).pzxid;
    let op = TxnOp::Create { path: "/p/b".into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: 1 };
    assert!(matches!(t.run(S1, op), ApplyOutcome::Created { .. }));
    assert_eq!((t.tree.stored_cversion(p), t.tree.stat(p).pzxid), (1, pz));
    let op = TxnOp::Create { path: "/p/c".into(), data: Some(vec![]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: -1 };
    t.run(S1, op);
    assert_eq!((t.tree.stored_cversion(p), t.tree.stat(p).pzxid), (2, t.zxid));
}

#[test]
fn set_data_updates_version_mzxid_mtime_and_fires_data_changed() {
    let mut t = T::new();
    t.create("/a", b"old");
    let before = t.stat("/a");
    let out = t.run(S1, TxnOp::SetData { path: "/a".into(), data: Some(b"newer".to_vec()), version: 7 });
    let z = t.zxid;
    let after = t.stat("/a");
    assert_eq!(out, ApplyOutcome::DataSet { stat: after });
    assert_eq!((after.version, after.mzxid, after.mtime, after.data_length), (7, z, 1000 + z % 1000, 5));
    assert_eq!((after.czxid, after.ctime, after.pzxid), (before.czxid, before.ctime, before.pzxid));
    assert_eq!(t.tree.data(t.tree.lookup("/a").unwrap()), b"newer");
    assert_eq!(t.triggers, vec![trig("/a", EventType::NodeDataChanged)]);
    assert_eq!(t.tree.approximate_data_size(), 44 + 2 + 5);
}

#[test]
fn set_acl_updates_aversion_only_and_fires_nothing() {
    let mut t = T::new();
    t.create("/a", b"d");
    let before = t.stat("/a");
    let acl = vec![Acl { perms: perms::READ | perms::WRITE, id: Id::new("digest", "u:h") }];
    let out = t.run(S1, TxnOp::SetAcl { path: "/a".into(), acl: acl.clone(), version: 3 });
    let after = t.stat("/a");
    assert_eq!(out, ApplyOutcome::AclSet { stat: after });
    assert_eq!(after, Stat { aversion: 3, ..before });
    assert_eq!(t.tree.acl(t.tree.lookup("/a").unwrap()), &acl[..]);
    assert!(t.triggers.is_empty());
    assert_eq!(t.tree.acl_count(), 3, "open, read-only, the new digest list");
}

#[test]
fn container_and_ttl_owners_are_reported_as_zero() {
    let mut t = T::new();
    t.create_owned("/c", b"", CONTAINER_OWNER);
    let ttl = TTL_MASK | 5000;
    t.create_owned("/t", b"", ttl);
    t.create_owned("/e", b"", S1.0);
    assert_eq!(t.stat("/c").ephemeral_owner, 0);
    assert_eq!(t.stat("/t").ephemeral_owner, 0);
    assert_eq!(t.stat("/e").ephemeral_owner, S1.0);
    assert_eq!(t.tree.raw_ephemeral_owner(t.tree.lookup("/c").unwrap()), CONTAINER_OWNER);
    assert_eq!(t.tree.raw_ephemeral_owner(t.tree.lookup("/t").unwrap()), ttl);
    assert_eq!(t.tree.ephemeral_count(), 1);
}

#[test]
fn container_candidates_need_a_past_child_and_no_current_one() {
    let mut t = T::new();
    t.create_owned("/c", b"", CONTAINER_OWNER);
    t.create_owned("/never", b"", CONTAINER_OWNER);
    assert!(t.tree.container_candidates().is_empty());
    t.create("/c/x", b"");
    assert!(t.tree.container_candidates().is_empty());
    t.delete("/c/x");
    assert_eq!(t.tree.container_candidates(), vec!["/c"]);
    t.delete("/c");
    assert!(t.tree.container_candidates().is_empty());
}

#[test]
fn ttl_nodes_expire_when_childless_and_untouched_past_their_ttl() {
    let mut t = T::new();
    t.create_owned("/t", b"", TTL_MASK | 100);
    let mtime = t.tree.mtime(t.tree.lookup("/t").unwrap());
    assert!(t.tree.expired_ttl_nodes(mtime + 100).is_empty());
    assert_eq!(t.tree.expired_ttl_nodes(mtime + 101), vec!["/t"]);
    t.create("/t/child", b"");
    assert!(t.tree.expired_ttl_nodes(mtime + 1_000_000).is_empty());
}

#[test]
fn close_session_deletes_exactly_its_ephemerals_with_triggers() {
    let mut t = T::new();
    t.create("/app", b"");
    t.create_owned("/app/e2", b"", S1.0);
    t.create_owned("/app/e1", b"", S1.0);
    t.create_owned("/top", b"", S1.0);
    t.create_owned("/app/other", b"", S2.0);
    assert_eq!(t.tree.ephemerals(S1), vec!["/app/e1", "/app/e2", "/top"]);
    assert_eq!(t.tree.sessions_with_ephemerals(), vec![S1, S2]);
    assert_eq!(t.tree.ephemeral_count(), 4);

    let out = t.run(S1, TxnOp::CloseSession);
    let z = t.zxid;
    assert_eq!(out, ApplyOutcome::SessionClosed { deleted: vec!["/app/e1".into(), "/app/e2".into(), "/top".into()] });
    assert_eq!(
        t.triggers,
        vec![
            trig("/app/e1", EventType::NodeDeleted),
            trig("/app", EventType::NodeChildrenChanged),
            trig("/app/e2", EventType::NodeDeleted),
            trig("/app", EventType::NodeChildrenChanged),
            trig("/top", EventType::NodeDeleted),
            trig("/", EventType::NodeChildrenChanged),
        ]
    );
    assert_eq!(t.tree.children(t.tree.lookup("/app").unwrap()), vec!["other"]);
    assert_eq!(t.stat("/app").pzxid, z);
    assert!(t.tree.ephemerals(S1).is_empty());
    assert_eq!(t.tree.sessions_with_ephemerals(), vec![S2]);
    assert_eq!(t.tree.ephemeral_count(), 1);
    assert_eq!(t.run(S1, TxnOp::CloseSession), ApplyOutcome::SessionClosed { deleted: vec![] });
    assert_eq!(t.run(S2, TxnOp::CreateSession { timeout_ms: 3000 }), ApplyOutcome::SessionCreated);
}

#[test]
fn multi_applies_in_order_and_reports_each_op() {
    let mut t = T::new();
    t.create("/m", b"");
    let c = t.create_op("/m/a", b"1", 0);
    let out = t.run(
        S1,
        TxnOp::Multi(vec![
            c,
            TxnOp::Check { path: "/m".into(), version: 0 },
            TxnOp::SetData { path: "/m/a".into(), data: Some(b"22".to_vec()), version: 1 },
            TxnOp::Delete { path: "/missing".into() },
            TxnOp::Delete { path: "/m/a".into() },
        ]),
    );
    let ApplyOutcome::Multi(outs) = out else { panic!("not a multi outcome: {out:?}") };
    assert_eq!(outs.len(), 5);
    assert!(matches!(&outs[0], ApplyOutcome::Created { path, .. } if path == "/m/a"));
    assert_eq!(outs[1], ApplyOutcome::Checked);
    assert!(matches!(outs[2], ApplyOutcome::DataSet { stat } if stat.version == 1 && stat.data_length == 2));
    assert_eq!(outs[3], ApplyOutcome::Error(ErrorCode::NoNode));
    assert_eq!(outs[4], ApplyOutcome::Deleted);
    assert_eq!(t.triggers.len(), 2 + 1 + 2);
    // All ops share the multi's zxid.
    assert_eq!(t.stat("/m").pzxid, t.zxid);
    assert_eq!(t.run(S1, TxnOp::Error { err: ErrorCode::BadVersion }), ApplyOutcome::Error(ErrorCode::BadVersion));
}

#[test]
fn ops_on_missing_paths_return_no_node_without_panicking() {
    let mut t = T::new();
    for op in [
        TxnOp::Delete { path: "/nope".into() },
        TxnOp::SetData { path: "/nope".into(), data: Some(vec![]), version: 1 },
        TxnOp::SetAcl { path: "/nope/x".into(), acl: Acl::open_unsafe(), version: 1 },
        TxnOp::Check { path: "/nope".into(), version: 1 },
        TxnOp::Delete { path: "bad//path".into() },
    ] {
        assert_eq!(t.run(S1, op), ApplyOutcome::Error(ErrorCode::NoNode));
    }
    assert!(t.triggers.is_empty());
    t.create("/p", b"");
    t.create("/p/c", b"");
    assert_eq!(t.delete("/p"), ApplyOutcome::Error(ErrorCode::NotEmpty));
    assert_eq!(t.delete("/"), ApplyOutcome::Error(ErrorCode::BadArguments));
    assert_eq!(t.tree.node_count(), 6);
}

#[test]
#[should_panic(expected = "strictly increase")]
fn non_increasing_zxid_is_a_programmer_error() {
    let mut tree = DataTree::new();
    let txn = Txn { header: TxnHeader { session: S1, cxid: 0, zxid: Zxid(5), time_ms: 0 }, op: TxnOp::CreateSession { timeout_ms: 1 } };
    tree.apply(&txn, &mut Vec::new());
    tree.apply(&txn, &mut Vec::new());
}

#[test]
fn children_are_sorted_and_lookup_rejects_malformed_paths() {
    let mut t = T::new();
    t.create("/d", b"");
    for n in ["b", "a", "c10", "c2"] {
        t.create(&format!("/d/{n}"), b"");
    }
    let d = t.tree.lookup("/d").unwrap();
    assert_eq!(t.tree.children(d), vec!["a", "b", "c10", "c2"]);
    assert_eq!(t.tree.num_children(d), 4);
    for bad in ["", "d", "/d/", "//d", "/d//a", "/d/a/"] {
        assert_eq!(t.tree.lookup(bad), None, "{bad:?}");
    }
    assert_eq!(t.tree.parent(d), Some(NodeId::ROOT));
    assert_eq!(t.tree.parent(NodeId::ROOT), None);
}

#[test]
fn path_is_rebuilt_from_parent_chain() {
    let mut t = T::new();
    let mut p = String::new();
    for i in 0..50 {
        p = format!("{p}/l{i}");
        t.create(&p, b"");
    }
    let id = t.tree.lookup(&p).unwrap();
    assert_eq!(t.tree.path(id), p);
    assert_eq!(t.tree.path(NodeId::ROOT), "/");
    assert_eq!(t.tree.path(t.tree.lookup("/zookeeper/quota").unwrap()), "/zookeeper/quota");
}

#[test]
fn descendant_count_counts_all_descendants_but_not_the_node() {
    let mut t = T::new();
    t.create("/a", b"");
    t.create("/a/b", b"");
    t.create("/a/b/c", b"");
    t.create("/a/b/d", b"");
    t.create("/a/e", b"");
    let a = t.tree.lookup("/a").unwrap();
    assert_eq!(t.tree.descendant_count(a), 4);
    assert_eq!(t.tree.descendant_count(t.tree.lookup("/a/e").unwrap()), 0);
    assert_eq!(t.tree.descendant_count(NodeId::ROOT), 3 + 5);
}

#[test]
fn deleted_ids_are_reused_and_bookkeeping_stays_exact() {
    let mut t = T::new();
    t.create("/x", b"12345");
    let x = t.tree.lookup("/x").unwrap();
    let size = t.tree.approximate_data_size();
    assert_eq!(size, 44 + 2 + 5);
    t.delete("/x");
    assert_eq!(t.tree.approximate_data_size(), 44);
    assert_eq!(t.tree.node_count(), 4);
    t.create("/y", b"");
    let y = t.tree.lookup("/y").unwrap();
    assert_eq!(x, y, "the freed slot is reused");
    assert_eq!(t.tree.path(y), "/y");
    assert!(t.tree.lookup("/x").is_none());
    assert_eq!(t.tree.acl_count(), 2);
}

#[test]
fn many_siblings_unlink_from_any_position() {
    let mut t = T::new();
    t.create("/d", b"");
    for i in 0..10 {
        t.create(&format!("/d/{i}"), b"");
    }
    for i in [0, 9, 5, 1, 8] {
        t.delete(&format!("/d/{i}"));
    }
    let d = t.tree.lookup("/d").unwrap();
    assert_eq!(t.tree.children(d), vec!["2", "3", "4", "6", "7"]);
    assert_eq!(t.tree.descendant_count(d), 5);
    for i in [2, 3, 4, 6, 7] {
        assert!(t.tree.lookup(&format!("/d/{i}")).is_some());
    }
}

#[test]
fn preorder_and_insert_restored_round_trip() {
    let mut t = T::new();
    t.create("/a", b"data-a");
    t.create("/a/b", b"");
    t.create_owned("/a/b/e", b"eph", S1.0);
    t.create_owned("/c", b"", CONTAINER_OWNER);
    t.create("/c/x", b"");
    t.delete("/c/x");
    t.create_owned("/ttl", b"t", TTL_MASK | 9);
    let acl = vec![Acl { perms: perms::ALL, id: Id::new("ip", "10.0.0.0/8") }];
    t.run(S1, TxnOp::SetAcl { path: "/a/b".into(), acl, version: 1 });
    t.run(S1, TxnOp::SetData { path: "/zookeeper/quota".into(), data: Some(b"q".to_vec()), version: 1 });

    let mut records = Vec::new();
    t.tree.for_each_preorder(|path, v| {
        records.push((path.to_string(), v.data.map(<[u8]>::to_vec), v.acl.to_vec(), v.raw));
    });
    assert_eq!(records.len(), t.tree.node_count());
    assert_eq!(records[0].0, "/");
    for (i, (path, ..)) in records.iter().enumerate() {
        if let Some((parent, _)) = split_path(path) {
            assert!(records[..i].iter().any(|r| r.0 == parent), "{path} before its parent");
        }
    }

    let mut restored = DataTree::new();
    for (path, data, acl, raw) in &records {
        // RawStat goes through serde like a snapshot would.
        let bytes = rmp_serde::to_vec(raw).unwrap();
        let raw: RawStat = rmp_serde::from_slice(&bytes).unwrap();
        restored.insert_restored(path, data.as_deref(), acl, raw).unwrap();
    }
    restored.set_last_applied(t.tree.last_applied());
    assert_eq!(restored.last_applied(), Zxid(t.zxid));
    assert_eq!(restored.node_count(), t.tree.node_count());
    assert_eq!(restored.approximate_data_size(), t.tree.approximate_data_size());
    for (path, ..) in &records {
        let (a, b) = (t.tree.lookup(path).unwrap(), restored.lookup(path).unwrap());
        assert_eq!(restored.stat(b), t.tree.stat(a), "{path}");
        assert_eq!(restored.stored_cversion(b), t.tree.stored_cversion(a), "{path}");
        assert_eq!(restored.data(b), t.tree.data(a), "{path}");
        assert_eq!(restored.acl(b), t.tree.acl(a), "{path}");
        assert_eq!(restored.children(b), t.tree.children(a), "{path}");
    }
    assert_eq!(restored.ephemerals(S1), vec!["/a/b/e"]);
    assert_eq!(restored.container_candidates(), vec!["/c"]);
    assert_eq!(restored.expired_ttl_nodes(i64::MAX), vec!["/ttl"]);
    assert_eq!(restored.acl_count(), t.tree.acl_count());

    assert_eq!(restored.insert_restored("/no/parent", Some(b""), &Acl::open_unsafe(), RawStat::default()), Err(ErrorCode::NoNode));
}

#[test]
fn owner_side_map_follows_reuse_and_restore() {
    let mut t = T::new();
    t.create_owned("/e", b"", S1.0);
    let e = t.tree.lookup("/e").unwrap();
    t.delete("/e");
    assert_eq!(t.tree.ephemeral_count(), 0);
    t.create("/p", b"");
    let p = t.tree.lookup("/p").unwrap();
    assert_eq!(p, e, "slot reused");
    assert_eq!(t.tree.raw_ephemeral_owner(p), 0);
    assert_eq!(t.tree.stat(p).ephemeral_owner, 0);

    // Restoring over an existing node replaces its owner registration.
    let raw = RawStat { ephemeral_owner: S2.0, ..t.tree.raw_stat(p) };
    t.tree.insert_restored("/p", Some(b""), &Acl::open_unsafe(), raw).unwrap();
    assert_eq!(t.tree.ephemerals(S2), vec!["/p"]);
    let raw = RawStat { ephemeral_owner: 0, ..raw };
    t.tree.insert_restored("/p", Some(b""), &Acl::open_unsafe(), raw).unwrap();
    assert!(t.tree.sessions_with_ephemerals().is_empty());
    assert_eq!(t.tree.raw_ephemeral_owner(p), 0);
}

/// The digest kept by each write equals the digest computed over the whole tree, after
/// every one of a long random mix of every kind of write (creates of each owner kind,
/// deletes, setData with null and large data, setACL, closeSession, multis, reconfig, the
/// system config node, restores over existing nodes): a write that forgot a node it
/// changed (a parent's cversion/pzxid, an aversion) makes them differ at once.
#[test]
fn incremental_digest_equals_a_full_recomputation_after_random_writes() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut t = T::new();
    assert_eq!(t.tree.digest(), t.tree.recompute_digest(), "fresh tree");
    let names = ["a", "b", "c", "d"];
    let mut kinds = [0u32; 10];
    for step in 0..4000 {
        // A random path of depth 1..=3 over a small alphabet, so ops hit existing nodes.
        let depth = rng.gen_range(1..=3);
        let path: String = (0..depth).map(|_| format!("/{}", names[rng.gen_range(0..names.len())])).collect();
        let exists = t.tree.lookup(&path).is_some();
        let data: Option<Vec<u8>> = match rng.gen_range(0..4) {
            0 => None,
            1 => Some(vec![rng.gen(); rng.gen_range(0..5000)]),
            _ => Some(format!("v{step}").into_bytes()),
        };
        let kind = rng.gen_range(0..10);
        match kind {
            0..=2 if !exists => {
                let owner = match rng.gen_range(0..4) {
                    0 => S1.0,
                    1 => S2.0,
                    2 => CONTAINER_OWNER,
                    _ => 0,
                };
                let mut op = t.create_op(&path, b"", owner);
                if let TxnOp::Create { data: d, .. } = &mut op {
                    *d = data;
                }
                t.run(if owner == S2.0 { S2 } else { S1 }, op);
            }
            3 if exists => {
                t.delete(&path);
            }
            4 => {
                t.run(S1, TxnOp::SetData { path: path.clone(), data, version: step });
            }
            5 => {
                let acl = vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }];
                t.run(S1, TxnOp::SetAcl { path: path.clone(), acl, version: step });
            }
            6 if step % 7 == 0 => {
                t.run(if step % 2 == 0 { S1 } else { S2 }, TxnOp::CloseSession);
            }
            7 => {
                let other = format!("{path}/m");
                let ops = vec![t.create_op(&other, b"m", 0), TxnOp::SetData { path: path.clone(), data: Some(b"mm".to_vec()), version: 2 }];
                t.run(S1, TxnOp::Multi(ops));
            }
            8 => {
                t.run(S1, TxnOp::Reconfig { data: format!("server.1=127.0.0.1:{step}:1:participant\nversion=1").into_bytes() });
                t.tree.set_system_data("/zookeeper/config", format!("cfg{step}").as_bytes());
            }
            9 if exists => {
                // A restore over an existing node (what loading a snapshot over the fresh
                // tree does), with a changed Stat and data.
                let id = t.tree.lookup(&path).unwrap();
                let raw = RawStat { mzxid: t.zxid + 5, version: 77, ..t.tree.raw_stat(id) };
                let acl = t.tree.acl(id).to_vec();
                t.tree.insert_restored(&path, Some(b"restored"), &acl, raw).unwrap();
            }
            _ => continue,
        }
        kinds[kind] += 1;
        assert_eq!(t.tree.digest(), t.tree.recompute_digest(), "after step {step} (op kind {kind} on {path})");
    }
    assert!(kinds.iter().all(|&k| k > 20), "every kind of write ran: {kinds:?}");
    assert!(t.tree.node_count() > 20, "the tree grew: {}", t.tree.node_count());

    // A tree restored from the records of this one (a snapshot load) has the same digest.
    let mut restored = DataTree::new();
    t.tree.for_each_preorder(|path, v| restored.insert_restored(path, v.data, v.acl, v.raw).unwrap());
    assert_eq!(restored.digest(), t.tree.digest());
}

#[test]
fn digest_log_has_the_digest_after_each_128th_zxid() {
    let mut t = T::new();
    t.zxid = 0x2_0000_0000;
    let mut want = Vec::new();
    for i in 0..300 {
        t.create(&format!("/n{i}"), b"x");
        if t.zxid % 128 == 0 {
            want.push(ZxidDigest { zxid: Zxid(t.zxid), digest: t.tree.digest() });
        }
    }
    let got: Vec<ZxidDigest> = t.tree.digest_log().copied().collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 2);
    assert_ne!(got[0].digest, got[1].digest, "writes in between change the digest");
}

//! Watches end to end: one-shot data/child/exist watches, the notification-before-reply
//! order, persistent and persistent-recursive watches (addWatch), removeWatches/checkWatches,
//! and setWatches/setWatches2 firing what a reconnecting client missed.
//!
//! Cross-connection "no event" checks are exact, not timed: the server handles requests one
//! at a time and encodes a notification before the reply to the write that fired it, so once
//! the writer has its reply, a round trip (sync) on the watcher's connection has seen every
//! notification that write caused.
mod common;

use common::*;
use std::time::Duration;

const NODE_CREATED: i32 = 1;
const NODE_DELETED: i32 = 2;
const NODE_DATA_CHANGED: i32 = 3;
const NODE_CHILDREN_CHANGED: i32 = 4;
const SYNC_CONNECTED: i32 = 3;

const EVENT_WAIT: Duration = Duration::from_secs(5);

fn ev(t: i32, path: &str) -> WatcherEvent {
    WatcherEvent { event_type: t, state: SYNC_CONNECTED, path: path.to_string() }
}

/// Every notification `c` has received so far (a sync round trip flushes the pipe).
fn drain(c: &mut RawClient) -> Vec<WatcherEvent> {
    c.call(&Request::Sync { path: "/".into() }).expect("sync");
    std::mem::take(&mut c.events)
}

fn mk(c: &mut RawClient, path: &str) {
    c.create(path, Some(b""), 0).unwrap_or_else(|e| panic!("create {path}: {e}"));
}

#[test]
fn data_watch_is_one_shot() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_data");
    mk(&mut c, &root);
    w.get_data(&root, true).unwrap();
    c.set_data(&root, b"1", -1).unwrap();
    assert_eq!(w.wait_event(EVENT_WAIT), Some(ev(NODE_DATA_CHANGED, &root)));
    c.set_data(&root, b"2", -1).unwrap();
    assert_eq!(drain(&mut w), vec![], "a one-shot watch fires once");
    // Re-arm via exists; a delete fires NodeDeleted.
    w.exists(&root, true).unwrap();
    c.delete(&root, -1).unwrap();
    assert_eq!(w.wait_event(EVENT_WAIT), Some(ev(NODE_DELETED, &root)));
    assert_eq!(drain(&mut w), vec![]);
}

#[test]
fn two_watches_same_path_one_notification() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_dup");
    mk(&mut c, &root);
    w.get_data(&root, true).unwrap();
    w.exists(&root, true).unwrap();
    w.get_data(&root, true).unwrap();
    c.set_data(&root, b"1", -1).unwrap();
    assert_eq!(drain(&mut w), vec![ev(NODE_DATA_CHANGED, &root)]);
}

#[test]
fn exists_watch_on_missing_node_fires_node_created() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_exists");
    assert_eq!(w.exists(&root, true), Err(err::NO_NODE));
    mk(&mut c, &root);
    assert_eq!(w.wait_event(EVENT_WAIT), Some(ev(NODE_CREATED, &root)));
    c.set_data(&root, b"x", -1).unwrap();
    assert_eq!(drain(&mut w), vec![]);
    // getData with watch on a missing node registers nothing (ZooKeeper: NoNode, no watch).
    let gone = format!("{root}/never");
    assert_eq!(w.get_data(&gone, true), Err(err::NO_NODE));
    mk(&mut c, &gone);
    assert_eq!(drain(&mut w), vec![]);
}

#[test]
fn child_watch_fires_on_child_create_and_delete_not_on_data() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_child");
    mk(&mut c, &root);
    w.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    c.set_data(&root, b"data", -1).unwrap();
    assert_eq!(drain(&mut w), vec![], "data change does not fire a child watch");
    mk(&mut c, &format!("{root}/a"));
    assert_eq!(w.wait_event(EVENT_WAIT), Some(ev(NODE_CHILDREN_CHANGED, &root)));
    w.call(&Request::GetChildren2 { path: root.clone(), watch: true }).unwrap();
    c.set_data(&format!("{root}/a"), b"x", -1).unwrap();
    assert_eq!(drain(&mut w), vec![], "a child's data change does not fire the parent's child watch");
    c.delete(&format!("{root}/a"), -1).unwrap();
    assert_eq!(w.wait_event(EVENT_WAIT), Some(ev(NODE_CHILDREN_CHANGED, &root)));
    // Deleting the watched node itself: NodeDeleted to child and data watchers.
    w.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    w.get_data(&root, true).unwrap();
    c.delete(&root, -1).unwrap();
    assert_eq!(drain(&mut w), vec![ev(NODE_DELETED, &root)]);
}

#[test]
fn notification_precedes_the_reply_to_the_write() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("w_order");
    mk(&mut c, &root);
    c.get_data(&root, true).unwrap();
    c.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    c.trace.clear();
    let xid = c.send(&Request::SetData { path: root.clone(), data: Some(b"v".to_vec()), version: -1 });
    c.wait_reply(xid).unwrap();
    let kinds: Vec<String> = c
        .trace
        .iter()
        .map(|i| match i {
            Incoming::Event(e) => format!("event {} {}", e.event_type, e.path),
            Incoming::Reply(h, _) => format!("reply {}", h.xid),
        })
        .collect();
    assert_eq!(kinds, vec![format!("event 3 {root}"), format!("reply {xid}")]);
    c.trace.clear();
    let xid = c.send(&Request::Create(create_req(CreateKind::Create, &format!("{root}/k"), None, Acl::open_unsafe(), 0)));
    c.wait_reply(xid).unwrap();
    assert!(matches!(&c.trace[0], Incoming::Event(e) if e.event_type == NODE_CHILDREN_CHANGED), "{:?}", c.trace);
    assert_eq!(c.trace.len(), 2);
    // The same inside a multi.
    c.get_data(&root, true).unwrap();
    c.trace.clear();
    let xid = c.send(&Request::Multi(vec![MultiOp::SetData { path: root.clone(), data: None, version: -1 }]));
    c.wait_reply(xid).unwrap();
    assert!(matches!(&c.trace[0], Incoming::Event(e) if e.event_type == NODE_DATA_CHANGED), "{:?}", c.trace);
}

#[test]
fn persistent_watch_fires_every_time_on_the_node_only() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_persist");
    mk(&mut c, &root);
    assert_eq!(w.call(&Request::AddWatch { path: root.clone(), mode: 0 }), Ok(Response::AddWatch));
    c.set_data(&root, b"1", -1).unwrap();
    c.set_data(&root, b"2", -1).unwrap();
    mk(&mut c, &format!("{root}/k"));
    mk(&mut c, &format!("{root}/k/g"));
    c.set_data(&format!("{root}/k"), b"x", -1).unwrap();
    assert_eq!(
        drain(&mut w),
        vec![ev(NODE_DATA_CHANGED, &root), ev(NODE_DATA_CHANGED, &root), ev(NODE_CHILDREN_CHANGED, &root)]
    );
    c.delete(&format!("{root}/k/g"), -1).unwrap();
    c.delete(&format!("{root}/k"), -1).unwrap();
    c.delete(&root, -1).unwrap();
    mk(&mut c, &root);
    assert_eq!(
        drain(&mut w),
        vec![ev(NODE_CHILDREN_CHANGED, &root), ev(NODE_DELETED, &root), ev(NODE_CREATED, &root)],
        "a persistent watch survives the node's deletion"
    );
    // A persistent watch may be added on a missing node.
    let missing = format!("{root}/later");
    assert_eq!(w.call(&Request::AddWatch { path: missing.clone(), mode: 0 }), Ok(Response::AddWatch));
    mk(&mut c, &missing);
    // ZooKeeper fires the child's NodeCreated before the parent's NodeChildrenChanged.
    assert_eq!(drain(&mut w), vec![ev(NODE_CREATED, &missing), ev(NODE_CHILDREN_CHANGED, &root)]);
}

#[test]
fn persistent_recursive_watch_covers_descendants_without_child_events() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_recursive");
    mk(&mut c, &root);
    assert_eq!(w.call(&Request::AddWatch { path: root.clone(), mode: 1 }), Ok(Response::AddWatch));
    let a = format!("{root}/a");
    let ab = format!("{root}/a/b");
    mk(&mut c, &a);
    mk(&mut c, &ab);
    c.set_data(&ab, b"x", -1).unwrap();
    c.set_data(&root, b"y", -1).unwrap();
    c.delete(&ab, -1).unwrap();
    assert_eq!(
        drain(&mut w),
        vec![
            ev(NODE_CREATED, &a),
            ev(NODE_CREATED, &ab),
            ev(NODE_DATA_CHANGED, &ab),
            ev(NODE_DATA_CHANGED, &root),
            ev(NODE_DELETED, &ab),
        ]
    );
    // A sibling with the same name prefix is not a descendant.
    mk(&mut c, &format!("{root}x"));
    assert_eq!(drain(&mut w), vec![]);
    c.delete(&format!("{root}x"), -1).unwrap();
}

#[test]
fn check_and_remove_watches() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_remove");
    mk(&mut c, &root);
    let check = |w: &mut RawClient, t: i32| w.call(&Request::CheckWatches { path: root.clone(), watch_type: t });
    let remove = |w: &mut RawClient, t: i32| w.call(&Request::RemoveWatches { path: root.clone(), watch_type: t });
    // Nothing registered: NoWatcher for every type.
    for t in [1, 2, 3] {
        assert_eq!(check(&mut w, t), Err(err::NO_WATCHER), "checkWatches type {t}");
        assert_eq!(remove(&mut w, t), Err(err::NO_WATCHER), "removeWatches type {t}");
    }
    // A data watch: type 2 and 3 see it, type 1 (children) does not.
    w.get_data(&root, true).unwrap();
    assert_eq!(check(&mut w, 2), Ok(Response::Empty));
    assert_eq!(check(&mut w, 3), Ok(Response::Empty));
    assert_eq!(check(&mut w, 1), Err(err::NO_WATCHER));
    // Another session's watches are not ours.
    assert_eq!(check(&mut c, 2), Err(err::NO_WATCHER));
    assert_eq!(remove(&mut w, 2), Ok(Response::Empty));
    if srv.is_arbor() {
        // ZooKeeper 3.8.0 still answers 0 here (its containsWatcher quirk); the watch is gone
        // all the same, as the next check shows.
        assert_eq!(check(&mut w, 2), Err(err::NO_WATCHER));
    }
    c.set_data(&root, b"1", -1).unwrap();
    assert_eq!(drain(&mut w), vec![], "a removed watch does not fire");
    // A child watch removed by "any" leaves nothing behind.
    w.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    assert_eq!(check(&mut w, 1), Ok(Response::Empty));
    assert_eq!(remove(&mut w, 3), Ok(Response::Empty));
    if srv.is_arbor() {
        assert_eq!(check(&mut w, 3), Err(err::NO_WATCHER));
    }
    mk(&mut c, &format!("{root}/k"));
    assert_eq!(drain(&mut w), vec![]);
    // Removing only the child watch keeps the data watch.
    w.get_data(&root, true).unwrap();
    w.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    assert_eq!(remove(&mut w, 1), Ok(Response::Empty));
    c.set_data(&root, b"2", -1).unwrap();
    c.delete(&format!("{root}/k"), -1).unwrap();
    assert_eq!(drain(&mut w), vec![ev(NODE_DATA_CHANGED, &root)]);
}

#[test]
fn set_watches_fires_what_was_missed() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("w_setwatches");
    mk(&mut c, &root);
    let p = |n: &str| format!("{root}/{n}");
    for n in ["changed", "same", "gone", "kids", "quiet", "exists"] {
        mk(&mut c, &p(n));
    }
    // The zxid a client had seen before "disconnecting".
    let rel = c.exists(&root, false).unwrap().pzxid.max(c.exists(&p("exists"), false).unwrap().czxid);
    c.set_data(&p("changed"), b"new", -1).unwrap();
    c.delete(&p("gone"), -1).unwrap();
    mk(&mut c, &p("kids/k"));
    mk(&mut c, &p("appeared"));

    let mut w = srv.raw();
    let (h, _) = w.call_full(&Request::SetWatches {
        relative_zxid: rel,
        data: vec![p("changed"), p("same"), p("gone")],
        exist: vec![p("appeared"), p("absent"), p("exists")],
        child: vec![p("kids"), p("quiet"), p("vanished")],
        persistent: vec![],
        persistent_recursive: vec![],
    });
    assert_eq!((h.xid, h.err), (-8, 0));
    let mut got = std::mem::take(&mut w.events);
    got.sort_by(|a, b| a.path.cmp(&b.path));
    let mut want = vec![
        ev(NODE_DATA_CHANGED, &p("changed")),
        ev(NODE_DELETED, &p("gone")),
        ev(NODE_CREATED, &p("appeared")),
        ev(NODE_CREATED, &p("exists")),
        ev(NODE_CHILDREN_CHANGED, &p("kids")),
        ev(NODE_DELETED, &p("vanished")),
    ];
    want.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(got, want, "setWatches with relativeZxid {rel}");
    // What did not fire is registered now.
    c.set_data(&p("same"), b"1", -1).unwrap();
    mk(&mut c, &p("absent"));
    mk(&mut c, &p("quiet/q"));
    c.set_data(&p("changed"), b"again", -1).unwrap(); // fired already: one-shot, gone
    assert_eq!(
        drain(&mut w),
        vec![ev(NODE_DATA_CHANGED, &p("same")), ev(NODE_CREATED, &p("absent")), ev(NODE_CHILDREN_CHANGED, &p("quiet"))]
    );
}

#[test]
fn set_watches2_registers_persistent_watches() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("w_setwatches2");
    mk(&mut c, &root);
    let zxid = c.exists(&root, false).unwrap().czxid;
    let sub = format!("{root}/sub");
    let mut w = srv.raw();
    let (h, _) = w.call_full(&Request::SetWatches {
        relative_zxid: zxid,
        data: vec![],
        exist: vec![],
        child: vec![],
        persistent: vec![root.clone()],
        persistent_recursive: vec![sub.clone()],
    });
    assert_eq!((h.xid, h.err), (-8, 0));
    assert_eq!(w.events, vec![], "persistent watches never fire on setWatches2 itself");
    mk(&mut c, &sub);
    mk(&mut c, &format!("{sub}/deep"));
    c.set_data(&root, b"x", -1).unwrap();
    c.set_data(&root, b"y", -1).unwrap();
    assert_eq!(
        drain(&mut w),
        vec![
            ev(NODE_CREATED, &sub),
            ev(NODE_CHILDREN_CHANGED, &root),
            ev(NODE_CREATED, &format!("{sub}/deep")),
            ev(NODE_DATA_CHANGED, &root),
            ev(NODE_DATA_CHANGED, &root),
        ]
    );
}

#[test]
fn watches_of_a_closed_session_are_dropped() {
    let srv = Server::start(&[]);
    let (mut w, mut c) = (srv.raw(), srv.raw());
    let root = test_root("w_closed");
    mk(&mut c, &root);
    w.get_data(&root, true).unwrap();
    w.call(&Request::AddWatch { path: root.clone(), mode: 1 }).unwrap();
    assert_eq!(w.close_session().err, 0);
    c.set_data(&root, b"x", -1).unwrap();
    // The server must not crash or misbehave notifying a dead connection.
    let wchs = srv.four_letter("wchs");
    if srv.is_arbor() {
        assert!(wchs.contains("Total watches:0"), "wchs after close:\n{wchs}");
    }
    assert_eq!(c.exists(&root, false).map(|s| s.version), Ok(1));
}

// ---- through the zookeeper-client crate ------------------------------------------------

use zookeeper_client as zk;

#[tokio::test]
async fn client_crate_watchers() {
    let srv = Server::start(&[]);
    let c = srv.client().await;
    let root = test_root("crate_watch");
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let t = Duration::from_secs(5);

    let (stat, w) = c.check_and_watch_stat(&root).await.unwrap();
    assert_eq!(stat, None);
    c.create(&root, b"", &open).await.unwrap();
    let e = tokio::time::timeout(t, w.changed()).await.expect("NodeCreated in time");
    assert_eq!((e.event_type, e.path.as_str()), (zk::EventType::NodeCreated, root.as_str()));

    let (_, _, w) = c.get_and_watch_data(&root).await.unwrap();
    c.set_data(&root, b"x", None).await.unwrap();
    let e = tokio::time::timeout(t, w.changed()).await.expect("NodeDataChanged in time");
    assert_eq!(e.event_type, zk::EventType::NodeDataChanged);

    let (_, w) = c.list_and_watch_children(&root).await.unwrap();
    c.create(&format!("{root}/k"), b"", &open).await.unwrap();
    let e = tokio::time::timeout(t, w.changed()).await.expect("NodeChildrenChanged in time");
    assert_eq!(e.event_type, zk::EventType::NodeChildrenChanged);

    let mut pw = c.watch(&root, zk::AddWatchMode::PersistentRecursive).await.unwrap();
    c.set_data(&format!("{root}/k"), b"1", None).await.unwrap();
    c.delete(&format!("{root}/k"), None).await.unwrap();
    let e1 = tokio::time::timeout(t, pw.changed()).await.expect("event 1");
    let e2 = tokio::time::timeout(t, pw.changed()).await.expect("event 2");
    assert_eq!((e1.event_type, e1.path.as_str()), (zk::EventType::NodeDataChanged, format!("{root}/k").as_str()));
    assert_eq!(e2.event_type, zk::EventType::NodeDeleted);
    // Removing it goes through removeWatches on the server.
    pw.remove().await.unwrap();

    let (_, _, w) = c.get_and_watch_data(&root).await.unwrap();
    w.remove().await.unwrap();
}

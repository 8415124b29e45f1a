//! Every data op of the client protocol against a real `arbor` process, with exact Stat values
//! and error codes. Most tests use the raw client from tests/common (every wire field visible);
//! `client_crate_*` tests drive the same ops through the `zookeeper-client` crate.
//!
//! Expectations were checked against ZooKeeper 3.8.0: run with `ARBOR_TEST_ZK=127.0.0.1:port`
//! to point the raw tests at a real ZooKeeper instead of arbor.
mod common;

use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PERSISTENT: i32 = 0;
const EPHEMERAL: i32 = 1;
const PERSISTENT_SEQUENTIAL: i32 = 2;
const EPHEMERAL_SEQUENTIAL: i32 = 3;
const CONTAINER: i32 = 4;
const PERSISTENT_WITH_TTL: i32 = 5;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn create2(c: &mut RawClient, path: &str, data: &[u8], flags: i32) -> (String, Stat, i64) {
    let (h, r) = c.call_full(&Request::Create(create_req(CreateKind::Create2, path, Some(data), Acl::open_unsafe(), flags)));
    match r {
        Some(Response::Create2 { path, stat }) => (path, stat, h.zxid),
        _ => panic!("create2 {path} failed with {}", h.err),
    }
}

fn create_err(c: &mut RawClient, kind: CreateKind, path: &str, flags: i32) -> i32 {
    match c.call(&Request::Create(create_req(kind, path, Some(b"x"), Acl::open_unsafe(), flags))) {
        Ok(r) => panic!("create {path} (flags {flags}) succeeded: {r:?}"),
        Err(e) => e,
    }
}

fn children(c: &mut RawClient, path: &str) -> Vec<String> {
    match c.call(&Request::GetChildren { path: path.into(), watch: false }) {
        Ok(Response::GetChildren { mut children }) => {
            children.sort();
            children
        }
        other => panic!("getChildren {path}: {other:?}"),
    }
}

#[test]
fn create2_stat_and_parent_stat() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_create2");
    let t0 = now_ms();
    let (p, st, zxid) = create2(&mut c, &root, b"hello", PERSISTENT);
    let t1 = now_ms();
    assert_eq!(p, root);
    assert!(zxid > 0, "reply zxid {zxid}");
    assert_eq!((st.czxid, st.mzxid, st.pzxid), (zxid, zxid, zxid), "{st:?}");
    assert_eq!((st.version, st.cversion, st.aversion), (0, 0, 0));
    assert_eq!((st.ephemeral_owner, st.data_length, st.num_children), (0, 5, 0));
    assert_eq!(st.ctime, st.mtime);
    assert!(st.ctime >= t0 - 1000 && st.ctime <= t1 + 1000, "ctime {} not within [{t0}, {t1}]", st.ctime);
    assert_eq!(c.exists(&root, false), Ok(st), "exists returns the create2 Stat");

    let child = format!("{root}/c");
    let (_, cst, czxid) = create2(&mut c, &child, b"", PERSISTENT);
    assert_eq!(cst.czxid, czxid);
    assert!(czxid > zxid);
    let pst = c.exists(&root, false).unwrap();
    assert_eq!(pst.cversion, 1);
    assert_eq!(pst.num_children, 1);
    assert_eq!(pst.pzxid, czxid, "parent pzxid = child's czxid");
    assert_eq!(pst.mzxid, zxid, "a child create does not touch the parent's mzxid");
    assert_eq!(pst.version, 0);

    // Deleting the child bumps cversion and pzxid again.
    let (h, _) = c.call_full(&Request::Delete { path: child.clone(), version: -1 });
    assert_eq!(h.err, 0);
    let pst = c.exists(&root, false).unwrap();
    assert_eq!((pst.cversion, pst.num_children, pst.pzxid), (2, 0, h.zxid));
}

#[test]
fn create_opcode_1_replies_with_the_path_only() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_create1");
    let r = c.call(&Request::Create(create_req(CreateKind::Create, &root, Some(b"v"), Acl::open_unsafe(), PERSISTENT)));
    assert_eq!(r, Ok(Response::Create { path: root.clone() }));
    assert_eq!(c.get_data(&root, false).unwrap().0, Some(b"v".to_vec()));
}

#[test]
fn node_exists_and_missing_parent() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_exists");
    create2(&mut c, &root, b"", PERSISTENT);
    assert_eq!(create_err(&mut c, CreateKind::Create2, &root, PERSISTENT), err::NODE_EXISTS);
    assert_eq!(create_err(&mut c, CreateKind::Create, &root, PERSISTENT), err::NODE_EXISTS);
    assert_eq!(create_err(&mut c, CreateKind::Create2, &format!("{root}/no/such"), PERSISTENT), err::NO_NODE);
    assert_eq!(create_err(&mut c, CreateKind::Create2, "/", PERSISTENT), err::NODE_EXISTS);
    assert_eq!(c.exists(&format!("{root}/nope"), false), Err(err::NO_NODE));
    assert_eq!(c.get_data(&format!("{root}/nope"), false), Err(err::NO_NODE));
}

#[test]
fn ephemeral_nodes_are_owned_and_childless() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_eph");
    create2(&mut c, &root, b"", PERSISTENT);
    let e = format!("{root}/e");
    let (_, st, _) = create2(&mut c, &e, b"x", EPHEMERAL);
    assert_eq!(st.ephemeral_owner, c.session_id());
    assert_eq!(create_err(&mut c, CreateKind::Create2, &format!("{e}/child"), PERSISTENT), err::NO_CHILDREN_FOR_EPHEMERALS);
    assert_eq!(
        create_err(&mut c, CreateKind::Create2, &format!("{e}/child-"), PERSISTENT_SEQUENTIAL),
        err::NO_CHILDREN_FOR_EPHEMERALS
    );
    let (es, st2, _) = create2(&mut c, &format!("{root}/es-"), b"x", EPHEMERAL_SEQUENTIAL);
    assert_eq!(es, format!("{root}/es-0000000001"));
    assert_eq!(st2.ephemeral_owner, c.session_id());

    // getEphemerals: by prefix, and "/" for all of this session's.
    let mut want = vec![e.clone(), es.clone()];
    want.sort();
    for prefix in [root.as_str(), "/"] {
        match c.call(&Request::GetEphemerals { prefix_path: prefix.into() }) {
            Ok(Response::GetEphemerals { mut paths }) => {
                paths.sort();
                assert_eq!(paths, want, "prefix {prefix}");
            }
            other => panic!("getEphemerals: {other:?}"),
        }
    }
    match c.call(&Request::GetEphemerals { prefix_path: format!("{root}/es") }) {
        Ok(Response::GetEphemerals { paths }) => assert_eq!(paths, vec![es.clone()]),
        other => panic!("getEphemerals: {other:?}"),
    }
    // Another session owns none of them.
    let mut other = srv.raw();
    assert_eq!(
        other.call(&Request::GetEphemerals { prefix_path: "/".into() }),
        Ok(Response::GetEphemerals { paths: vec![] })
    );
    // Closing the session deletes them.
    assert_eq!(c.close_session().err, 0);
    assert_eq!(other.exists(&e, false), Err(err::NO_NODE));
    assert_eq!(other.exists(&es, false), Err(err::NO_NODE));
    assert_eq!(other.exists(&root, false).unwrap().num_children, 0);
}

#[test]
fn sequential_suffix_counts_creations_cversion_counts_deletes_too() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_seq");
    create2(&mut c, &root, b"", PERSISTENT);
    let (s0, _, _) = create2(&mut c, &format!("{root}/s-"), b"", PERSISTENT_SEQUENTIAL);
    assert_eq!(s0, format!("{root}/s-0000000000"));
    assert_eq!(c.exists(&root, false).unwrap().cversion, 1);
    c.delete(&s0, -1).unwrap();
    assert_eq!(c.exists(&root, false).unwrap().cversion, 2, "delete bumps the reported cversion");
    let (s1, _, _) = create2(&mut c, &format!("{root}/s-"), b"", PERSISTENT_SEQUENTIAL);
    assert_eq!(s1, format!("{root}/s-0000000001"), "suffix counts creations only");
    assert_eq!(c.exists(&root, false).unwrap().cversion, 3);
    // A plain create counts too; a sequential name with no prefix works.
    create2(&mut c, &format!("{root}/plain"), b"", PERSISTENT);
    let (s3, _, _) = create2(&mut c, &format!("{root}/"), b"", PERSISTENT_SEQUENTIAL);
    assert_eq!(s3, format!("{root}/0000000003"));
    assert_eq!(children(&mut c, &root), vec!["0000000003".to_string(), "plain".into(), "s-0000000001".into()]);
}

#[test]
fn container_reports_ephemeral_owner_zero() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_container");
    let r = c.call(&Request::Create(create_req(CreateKind::CreateContainer, &root, Some(b"c"), Acl::open_unsafe(), CONTAINER)));
    let st = match r {
        Ok(Response::Create2 { path, stat }) => {
            assert_eq!(path, root);
            stat
        }
        other => panic!("createContainer: {other:?}"),
    };
    assert_eq!(st.ephemeral_owner, 0);
    assert_eq!(c.exists(&root, false).unwrap().ephemeral_owner, 0);
    // Children are allowed under a container.
    create2(&mut c, &format!("{root}/kid"), b"", PERSISTENT);
    assert_eq!(c.exists(&root, false).unwrap().num_children, 1);
}

#[test]
fn ttl_nodes_via_create_ttl() {
    let srv = Server::start(&[]);
    if !srv.is_arbor() {
        eprintln!("SKIP ttl_nodes_via_create_ttl: ZooKeeper needs extendedTypesEnabled for TTL nodes");
        return;
    }
    let mut c = srv.raw();
    let root = test_root("crud_ttl");
    let mut req = create_req(CreateKind::CreateTtl, &root, Some(b"t"), Acl::open_unsafe(), PERSISTENT_WITH_TTL);
    req.ttl_ms = 60_000;
    let st = match c.call(&Request::Create(req.clone())) {
        Ok(Response::Create2 { path, stat }) => {
            assert_eq!(path, root);
            stat
        }
        other => panic!("createTTL: {other:?}"),
    };
    assert_eq!(st.ephemeral_owner, 0, "TTL nodes report owner 0, like containers");
    assert_eq!(c.exists(&root, false).unwrap().ephemeral_owner, 0);
    // A TTL of 0, a TTL mode without createTTL, and createTTL with a non-TTL mode: BadArguments.
    let mut zero = req.clone();
    zero.path = format!("{root}/zero");
    zero.ttl_ms = 0;
    assert_eq!(c.call(&Request::Create(zero)), Err(err::BAD_ARGUMENTS));
    assert_eq!(create_err(&mut c, CreateKind::Create2, &format!("{root}/x"), PERSISTENT_WITH_TTL), err::BAD_ARGUMENTS);
    let mut wrong_mode = req.clone();
    wrong_mode.path = format!("{root}/y");
    wrong_mode.flags = EPHEMERAL;
    assert_eq!(c.call(&Request::Create(wrong_mode)), Err(err::BAD_ARGUMENTS));
}

#[test]
fn get_and_set_data_with_versions() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_set");
    let (_, st0, _) = create2(&mut c, &root, b"one", PERSISTENT);
    let (h, r) = c.call_full(&Request::SetData { path: root.clone(), data: Some(b"three".to_vec()), version: 0 });
    let st1 = match r {
        Some(Response::Stat(s)) => s,
        other => panic!("setData: {other:?} err {}", h.err),
    };
    assert_eq!(st1.version, 1);
    assert_eq!(st1.mzxid, h.zxid);
    assert_eq!(st1.czxid, st0.czxid);
    assert_eq!(st1.pzxid, st0.pzxid, "setData leaves pzxid alone");
    assert_eq!(st1.data_length, 5);
    assert!(st1.mtime >= st0.mtime);
    assert_eq!(st1.ctime, st0.ctime);
    assert_eq!(c.get_data(&root, false), Ok((Some(b"three".to_vec()), st1)));
    assert_eq!(c.set_data(&root, b"x", 0), Err(err::BAD_VERSION));
    assert_eq!(c.set_data(&root, b"x", 7), Err(err::BAD_VERSION));
    assert_eq!(c.set_data(&root, b"four", -1).map(|s| s.version), Ok(2));
    assert_eq!(c.set_data(&root, b"five", 2).map(|s| s.version), Ok(3));
    assert_eq!(c.set_data(&format!("{root}/missing"), b"x", -1), Err(err::NO_NODE));
    assert_eq!(c.get_data(&root, false).unwrap().0, Some(b"five".to_vec()));
}

#[test]
fn null_data_is_kept_distinct_from_empty() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_null");
    c.create(&root, None, PERSISTENT).unwrap();
    let (d, st) = c.get_data(&root, false).unwrap();
    assert_eq!(d, None, "null data comes back null");
    assert_eq!(st.data_length, 0);
    let empty = format!("{root}/empty");
    c.create(&empty, Some(b""), PERSISTENT).unwrap();
    assert_eq!(c.get_data(&empty, false).unwrap().0, Some(vec![]));
    // setData with null data.
    c.call(&Request::SetData { path: empty.clone(), data: None, version: -1 }).unwrap();
    assert_eq!(c.get_data(&empty, false).unwrap().0, None);
}

#[test]
fn delete_versions_and_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_delete");
    create2(&mut c, &root, b"", PERSISTENT);
    let kid = format!("{root}/kid");
    create2(&mut c, &kid, b"", PERSISTENT);
    c.set_data(&kid, b"v", -1).unwrap();
    assert_eq!(c.delete(&root, -1), Err(err::NOT_EMPTY));
    assert_eq!(c.delete(&kid, 0), Err(err::BAD_VERSION));
    assert_eq!(c.delete(&format!("{root}/none"), -1), Err(err::NO_NODE));
    assert_eq!(c.delete(&format!("{root}/none/deeper"), -1), Err(err::NO_NODE));
    assert_eq!(c.delete(&kid, 1), Ok(()));
    assert_eq!(c.delete(&kid, -1), Err(err::NO_NODE));
    assert_eq!(c.delete(&root, 0), Ok(()));
    assert_eq!(c.exists(&root, false), Err(err::NO_NODE));
}

#[test]
fn get_children_and_children2() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_children");
    create2(&mut c, &root, b"data", PERSISTENT);
    assert_eq!(children(&mut c, &root), Vec::<String>::new());
    for n in ["b", "a", "c"] {
        create2(&mut c, &format!("{root}/{n}"), b"", PERSISTENT);
    }
    assert_eq!(children(&mut c, &root), vec!["a", "b", "c"]);
    match c.call(&Request::GetChildren2 { path: root.clone(), watch: false }) {
        Ok(Response::GetChildren2 { mut children, stat }) => {
            children.sort();
            assert_eq!(children, vec!["a", "b", "c"]);
            assert_eq!(stat, c.exists(&root, false).unwrap());
            assert_eq!((stat.num_children, stat.cversion, stat.data_length), (3, 3, 4));
        }
        other => panic!("getChildren2: {other:?}"),
    }
    assert_eq!(c.call(&Request::GetChildren { path: format!("{root}/zz"), watch: false }), Err(err::NO_NODE));
    assert_eq!(c.call(&Request::GetChildren2 { path: format!("{root}/zz"), watch: false }), Err(err::NO_NODE));
    // getAllChildrenNumber counts all descendants.
    create2(&mut c, &format!("{root}/a/x"), b"", PERSISTENT);
    create2(&mut c, &format!("{root}/a/x/y"), b"", PERSISTENT);
    assert_eq!(c.call(&Request::GetAllChildrenNumber { path: root.clone() }), Ok(Response::AllChildrenNumber(5)));
    assert_eq!(
        c.call(&Request::GetAllChildrenNumber { path: format!("{root}/a/x/y") }),
        Ok(Response::AllChildrenNumber(0))
    );
    assert_eq!(c.call(&Request::GetAllChildrenNumber { path: format!("{root}/q") }), Err(err::NO_NODE));
}

#[test]
fn large_values_up_to_jute_maxbuffer() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_large");
    let big: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    let (_, st, _) = create2(&mut c, &root, &big, PERSISTENT);
    assert_eq!(st.data_length, big.len() as i32);
    assert_eq!(c.get_data(&root, false).unwrap().0.as_deref(), Some(&big[..]));

    // 2 MiB is over jute.maxbuffer: the server drops this connection, nothing else.
    let mut victim = srv.raw();
    let huge = vec![7u8; 2 << 20];
    let req = Request::Create(create_req(CreateKind::Create2, &format!("{root}/huge"), Some(&huge), Acl::open_unsafe(), 0));
    let mut frame = bytes::BytesMut::new();
    arbor::jute::encode_request(&mut frame, arbor::jute::RequestHeader { xid: 1, op: req.opcode() }, &req);
    // The server may close (and reset) the connection as soon as it has read the length,
    // while the rest of the 2 MiB is still being written: a failed write is that drop.
    let _ = victim.send_bytes(&frame);
    assert!(victim.closed_within(Duration::from_secs(10)), "2 MiB create should drop the connection");
    assert_eq!(c.exists(&format!("{root}/huge"), false), Err(err::NO_NODE));
    assert_eq!(c.exists(&root, false).unwrap().num_children, 0);
}

#[test]
fn invalid_paths_are_bad_arguments() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_paths");
    create2(&mut c, &root, b"", PERSISTENT);
    let bad = [
        "".to_string(),
        "noslash".into(),
        format!("{root}/"),
        format!("{root}//x"),
        format!("{root}/./x"),
        format!("{root}/../x"),
        format!("{root}/."),
        format!("{root}/a\u{0}b"),
        format!("{root}/a\u{1}b"),
    ];
    // ZooKeeper's create and delete first check only for a '/' and a NUL
    // (`validatePathForCreate`, `getParentPathAndValidate`), then look the parent up (NoNode),
    // and only a create validates the full path after that (`PathUtils.validatePath`).
    let slash_nul_bad = |p: &str| !p.contains('/') || p.contains('\0');
    for p in &bad {
        let parent_exists = p.rfind('/').map(|i| p[..i] == root).unwrap_or(false);
        let want = if slash_nul_bad(p) || parent_exists { err::BAD_ARGUMENTS } else { err::NO_NODE };
        assert_eq!(create_err(&mut c, CreateKind::Create2, p, PERSISTENT), want, "create {p:?}");
        assert_eq!(c.set_data(p, b"", -1), Err(err::BAD_ARGUMENTS), "setData {p:?}");
        // delete only rejects a path without '/' or with a NUL (`getParentPathAndValidate`);
        // any other malformed path is simply not found.
        let want = if slash_nul_bad(p) { err::BAD_ARGUMENTS } else { err::NO_NODE };
        assert_eq!(c.delete(p, -1), Err(want), "delete {p:?}");
    }
    // A trailing slash is fine for a sequential create (the suffix follows it).
    create2(&mut c, &format!("{root}/"), b"", PERSISTENT_SEQUENTIAL);
    // Unknown create flags.
    assert_eq!(create_err(&mut c, CreateKind::Create2, &format!("{root}/f"), 42), err::BAD_ARGUMENTS);
    // The connection is still fine.
    assert_eq!(children(&mut c, &root).len(), 1);
}

#[test]
fn reads_of_malformed_paths_are_no_node() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_readpaths");
    c.create(&root, Some(b""), PERSISTENT).unwrap();
    for p in [format!("{root}/"), format!("{root}//x"), format!("{root}/./x"), format!("{root}/.."), format!("{root}/a\u{0}b")] {
        // Reads do not validate: a malformed path is just not there...
        assert_eq!(c.get_data(&p, false).map(|_| ()), Err(err::NO_NODE), "getData {p:?}");
        assert_eq!(c.call(&Request::GetChildren { path: p.clone(), watch: false }), Err(err::NO_NODE), "getChildren {p:?}");
        // ...except that exists rejects a NUL (FinalRequestProcessor).
        let want = if p.contains('\0') { err::BAD_ARGUMENTS } else { err::NO_NODE };
        assert_eq!(c.exists(&p, false).map(|_| ()), Err(want), "exists {p:?}");
    }
}

#[test]
fn check_op_standalone() {
    let srv = Server::start(&[]);
    if !srv.is_arbor() {
        eprintln!("SKIP check_op_standalone: ZooKeeper 3.8.0 never answers a check outside a multi");
        return;
    }
    let mut c = srv.raw();
    let root = test_root("crud_check");
    create2(&mut c, &root, b"", PERSISTENT);
    c.set_data(&root, b"a", -1).unwrap();
    assert_eq!(c.call(&Request::Check { path: root.clone(), version: 1 }), Ok(Response::Empty));
    assert_eq!(c.call(&Request::Check { path: root.clone(), version: -1 }), Ok(Response::Empty));
    assert_eq!(c.call(&Request::Check { path: root.clone(), version: 0 }), Err(err::BAD_VERSION));
    assert_eq!(c.call(&Request::Check { path: format!("{root}/x"), version: 0 }), Err(err::NO_NODE));
}

fn multi(c: &mut RawClient, ops: Vec<MultiOp>) -> (ReplyHeader, Vec<MultiResult>) {
    match c.call_full(&Request::Multi(ops)) {
        (h, Some(Response::Multi(rs))) => (h, rs),
        (h, other) => panic!("multi: header {h:?} body {other:?}"),
    }
}

#[test]
fn multi_is_all_or_nothing_with_per_op_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_multi");
    create2(&mut c, &root, b"", PERSISTENT);
    let a = format!("{root}/a");
    let (h, rs) = multi(
        &mut c,
        vec![
            MultiOp::Create(create_req(CreateKind::Create, &a, Some(b"1"), Acl::open_unsafe(), 0)),
            MultiOp::Create(create_req(CreateKind::Create, &root, Some(b"2"), Acl::open_unsafe(), 0)),
            MultiOp::SetData { path: a.clone(), data: Some(b"3".to_vec()), version: -1 },
            MultiOp::Delete { path: a.clone(), version: -1 },
        ],
    );
    assert_eq!(h.err, 0, "a failed multi still has header err 0");
    assert_eq!(
        rs,
        vec![
            MultiResult::Error(err::OK),
            MultiResult::Error(err::NODE_EXISTS),
            MultiResult::Error(err::RUNTIME_INCONSISTENCY),
            MultiResult::Error(err::RUNTIME_INCONSISTENCY),
        ]
    );
    assert_eq!(c.exists(&a, false), Err(err::NO_NODE), "nothing of a failed multi applies");
    let before = c.exists(&root, false).unwrap();
    assert_eq!(before.cversion, 0);

    // A check failing first.
    let (_, rs) = multi(
        &mut c,
        vec![
            MultiOp::Check { path: root.clone(), version: 5 },
            MultiOp::Create(create_req(CreateKind::Create, &a, None, Acl::open_unsafe(), 0)),
        ],
    );
    assert_eq!(rs, vec![MultiResult::Error(err::BAD_VERSION), MultiResult::Error(err::RUNTIME_INCONSISTENCY)]);

    // All succeed: results per op type; later ops see earlier ones.
    let (h, rs) = multi(
        &mut c,
        vec![
            MultiOp::Check { path: root.clone(), version: 0 },
            MultiOp::Create(create_req(CreateKind::Create, &a, Some(b"1"), Acl::open_unsafe(), 0)),
            MultiOp::Create(create_req(CreateKind::Create2, &format!("{a}/s-"), Some(b""), Acl::open_unsafe(), 2)),
            MultiOp::SetData { path: a.clone(), data: Some(b"22".to_vec()), version: 0 },
            MultiOp::Check { path: a.clone(), version: 1 },
            MultiOp::Create(create_req(CreateKind::Create, &format!("{root}/gone"), None, Acl::open_unsafe(), 0)),
            MultiOp::Delete { path: format!("{root}/gone"), version: 0 },
        ],
    );
    assert_eq!(h.err, 0);
    assert_eq!(rs.len(), 7);
    assert_eq!(rs[0], MultiResult::Check);
    assert_eq!(rs[1], MultiResult::Create { path: a.clone() });
    // ZooKeeper 3.8 answers a create2 inside a multi like a create, path only, typed 1
    // (ZOOKEEPER-4026, changed in 3.9); clients take either shape.
    assert_eq!(rs[2], MultiResult::Create { path: format!("{a}/s-0000000000") });
    let MultiResult::SetData { stat } = &rs[3] else { panic!("{:?}", rs[3]) };
    assert_eq!((stat.version, stat.mzxid, stat.data_length, stat.num_children), (1, h.zxid, 2, 1));
    assert_eq!(rs[4], MultiResult::Check);
    assert_eq!(rs[6], MultiResult::Delete);
    assert_eq!(c.get_data(&a, false).unwrap().0, Some(b"22".to_vec()));
    assert_eq!(c.exists(&format!("{root}/gone"), false), Err(err::NO_NODE));
    // An empty multi is fine.
    let (h, rs) = multi(&mut c, vec![]);
    assert_eq!((h.err, rs), (0, vec![]));
}

#[test]
fn multi_read_reports_errors_per_op() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_multiread");
    create2(&mut c, &root, b"top", PERSISTENT);
    create2(&mut c, &format!("{root}/k"), b"", PERSISTENT);
    let st = c.exists(&root, false).unwrap();
    let (h, r) = c.call_full(&Request::MultiRead(vec![
        MultiReadOp::GetData { path: root.clone() },
        MultiReadOp::GetChildren { path: root.clone() },
        MultiReadOp::GetData { path: format!("{root}/missing") },
        MultiReadOp::GetChildren { path: format!("{root}/k") },
    ]));
    assert_eq!(h.err, 0);
    assert_eq!(
        r,
        Some(Response::Multi(vec![
            MultiResult::GetData { data: Some(b"top".to_vec()), stat: st },
            MultiResult::GetChildren { children: vec!["k".into()] },
            MultiResult::Error(err::NO_NODE),
            MultiResult::GetChildren { children: vec![] },
        ]))
    );
}

#[test]
fn sync_replies_with_the_path() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("crud_sync");
    create2(&mut c, &root, b"", PERSISTENT);
    assert_eq!(c.call(&Request::Sync { path: root.clone() }), Ok(Response::Sync { path: root.clone() }));
}

#[test]
fn who_am_i_lists_ip_then_digest() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    assert_eq!(c.call(&Request::WhoAmI), Ok(Response::WhoAmI(vec![("ip".into(), "127.0.0.1".into())])));
    let (h, _) = c.call_full(&Request::Auth { scheme: "digest".into(), auth: b"alice:secret".to_vec() });
    assert_eq!(h.err, 0);
    match c.call(&Request::WhoAmI) {
        Ok(Response::WhoAmI(mut ids)) => {
            ids.sort();
            assert_eq!(ids, vec![("digest".to_string(), "alice".to_string()), ("ip".into(), "127.0.0.1".into())]);
        }
        other => panic!("whoAmI: {other:?}"),
    }
}

#[test]
fn zookeeper_subtree() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let mut root_kids = children(&mut c, "/");
    root_kids.retain(|k| k == "zookeeper");
    assert_eq!(root_kids, vec!["zookeeper"]);
    assert_eq!(children(&mut c, "/zookeeper"), vec!["config", "quota"]);
    let (data, st) = c.get_data("/zookeeper/config", false).unwrap();
    assert_eq!(data.unwrap_or_default(), b"");
    assert_eq!(
        st,
        Stat {
            czxid: 0,
            mzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: -1,
            ephemeral_owner: 0,
            data_length: 0,
            num_children: 0,
            pzxid: 0
        }
    );
    // The special nodes cannot be deleted.
    assert_eq!(c.delete("/zookeeper/config", -1), Err(err::BAD_ARGUMENTS));
    assert_eq!(c.delete("/zookeeper/quota", -1), Err(err::BAD_ARGUMENTS));
    assert_eq!(c.delete("/zookeeper", -1), Err(err::BAD_ARGUMENTS));
}

#[test]
fn unknown_opcode_gets_unimplemented_and_connection_stays() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    // (ZooKeeper closes the connection on some unknown codes, e.g. 50 or 1000; arbor never
    // does, as zk-protocol.md asks.)
    let mut ops = vec![999];
    if srv.is_arbor() {
        ops.extend([50, 1000, -5, i32::MAX, i32::MIN]);
    }
    for op in ops {
        let (h, r) = c.call_full(&Request::Unimplemented(op));
        assert_eq!(h.err, err::UNIMPLEMENTED, "op {op}");
        assert_eq!(r, None);
    }
    if !srv.is_arbor() {
        return; // ZooKeeper 3.8.0 closes the connection after answering an unknown op.
    }
    assert_eq!(c.call(&Request::Sync { path: "/".into() }), Ok(Response::Sync { path: "/".into() }));
}

// ---- the same ops through the zookeeper-client crate ----------------------------------

use zookeeper_client as zk;

#[tokio::test]
async fn client_crate_create_modes_get_set_delete() {
    let srv = Server::start(&[]);
    let c = srv.client().await;
    let root = test_root("crate_crud");
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let (st, seq) = c.create(&root, b"r", &open).await.unwrap();
    assert_eq!((st.version, st.data_length, st.ephemeral_owner), (0, 1, 0));
    assert_eq!(seq.into_i64(), -1);
    assert_eq!(c.create(&root, b"r", &open).await.unwrap_err(), zk::Error::NodeExists);

    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let (st, _) = c.create(&format!("{root}/e"), b"", &eph).await.unwrap();
    assert_eq!(st.ephemeral_owner, c.session_id().0);
    assert_eq!(c.create(&format!("{root}/e/x"), b"", &open).await.unwrap_err(), zk::Error::NoChildrenForEphemerals);

    let seq_opts = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, s) = c.create(&format!("{root}/s-"), b"", &seq_opts).await.unwrap();
    assert_eq!(s.into_i64(), 1);
    let eseq = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let (st, s) = c.create(&format!("{root}/es-"), b"", &eseq).await.unwrap();
    assert_eq!((s.into_i64(), st.ephemeral_owner), (2, c.session_id().0));

    let cont = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    let (st, _) = c.create(&format!("{root}/c"), b"", &cont).await.unwrap();
    assert_eq!(st.ephemeral_owner, 0);
    if srv.is_arbor() {
        let ttl = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()).with_ttl(Duration::from_secs(60));
        let (st, _) = c.create(&format!("{root}/t"), b"", &ttl).await.unwrap();
        assert_eq!(st.ephemeral_owner, 0);
    }

    let (data, st) = c.get_data(&root).await.unwrap();
    assert_eq!((data, st.num_children), (b"r".to_vec(), if srv.is_arbor() { 5 } else { 4 }));
    let st2 = c.set_data(&root, b"rr", Some(0)).await.unwrap();
    assert_eq!(st2.version, 1);
    assert_eq!(c.set_data(&root, b"x", Some(0)).await.unwrap_err(), zk::Error::BadVersion);
    assert_eq!(c.check_stat(&format!("{root}/nope")).await.unwrap(), None);
    assert_eq!(c.check_stat(&root).await.unwrap(), Some(st2));
    let mut kids = c.list_children(&root).await.unwrap();
    kids.sort();
    assert_eq!(kids.len(), if srv.is_arbor() { 5 } else { 4 });
    let (kids2, st3) = c.get_children(&root).await.unwrap();
    assert_eq!((kids2.len(), st3), (kids.len(), st2));
    assert_eq!(c.count_descendants_number(&root).await.unwrap(), kids.len());
    let mut ephs = c.list_ephemerals(&root).await.unwrap();
    ephs.sort();
    assert_eq!(ephs, vec![format!("{root}/e"), format!("{root}/es-0000000002")]);
    c.sync(&root).await.unwrap();
    assert_eq!(c.delete(&root, None).await.unwrap_err(), zk::Error::NotEmpty);
    assert_eq!(c.delete(&format!("{root}/s-0000000001"), Some(3)).await.unwrap_err(), zk::Error::BadVersion);
    c.delete(&format!("{root}/s-0000000001"), Some(0)).await.unwrap();
    assert_eq!(c.delete(&format!("{root}/s-0000000001"), None).await.unwrap_err(), zk::Error::NoNode);
    let (cfg, cfg_stat) = c.get_config().await.unwrap();
    assert!(cfg.is_empty() || !srv.is_arbor());
    assert_eq!(cfg_stat.aversion, -1);
    let users = c.list_auth_users().await.unwrap();
    assert_eq!(users, vec![zk::AuthUser::new("ip", "127.0.0.1")]);
}

#[tokio::test]
async fn client_crate_multi_writer_and_reader() {
    let srv = Server::start(&[]);
    let c = srv.client().await;
    let root = test_root("crate_multi");
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    c.create(&root, b"", &open).await.unwrap();
    let mut w = c.new_multi_writer();
    w.add_create(&format!("{root}/a"), b"1", &open).unwrap();
    w.add_create(&root, b"", &open).unwrap();
    w.add_set_data(&format!("{root}/a"), b"2", None).unwrap();
    match w.commit().await {
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!((index, source), (1, zk::Error::NodeExists))
        }
        other => panic!("failed multi gave {other:?}"),
    }
    assert_eq!(c.check_stat(&format!("{root}/a")).await.unwrap(), None);

    let mut w = c.new_multi_writer();
    w.add_check_version(&root, 0).unwrap();
    w.add_create(&format!("{root}/a"), b"1", &open).unwrap();
    w.add_set_data(&format!("{root}/a"), b"2", Some(0)).unwrap();
    w.add_delete(&format!("{root}/a"), Some(1)).unwrap();
    let rs = w.commit().await.unwrap();
    assert_eq!(rs.len(), 4);
    assert_eq!(rs[0], zk::MultiWriteResult::Check);
    assert!(matches!(&rs[1], zk::MultiWriteResult::Create { path, .. } if path == &format!("{root}/a")));
    assert!(matches!(&rs[2], zk::MultiWriteResult::SetData { stat } if stat.version == 1));
    assert_eq!(rs[3], zk::MultiWriteResult::Delete);

    c.create(&format!("{root}/b"), b"bee", &open).await.unwrap();
    let mut r = c.new_multi_reader();
    r.add_get_data(&format!("{root}/b")).unwrap();
    r.add_get_children(&root).unwrap();
    r.add_get_data(&format!("{root}/zz")).unwrap();
    let rs = r.commit().await.unwrap();
    assert!(matches!(&rs[0], zk::MultiReadResult::Data { data, .. } if data == b"bee"));
    assert!(matches!(&rs[1], zk::MultiReadResult::Children { children } if children == &vec!["b".to_string()]));
    assert!(matches!(&rs[2], zk::MultiReadResult::Error { err } if *err == zk::Error::NoNode));
}

//! ACLs end to end: the world, auth, digest and ip schemes; NoAuth on every op kind;
//! InvalidACL; AuthFailed (then the connection closes); the superDigest user; getACL masking
//! digest hashes for readers without ADMIN. Expectations checked against ZooKeeper 3.8.0
//! (`ARBOR_TEST_ZK=host:port` runs them against a real server; it needs superDigest super:test).
mod common;

use base64::Engine;
use common::*;
use sha1::{Digest, Sha1};
use std::time::Duration;

const READ: i32 = 1;
const WRITE: i32 = 2;
const CREATE: i32 = 4;
const DELETE: i32 = 8;
const ADMIN: i32 = 16;
const ALL: i32 = 31;

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl { perms, id: Id::new(scheme, id) }
}

/// `DigestAuthenticationProvider.generateDigest`: "user:" + base64(sha1("user:password")).
fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap();
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

fn add_auth(c: &mut RawClient, scheme: &str, auth: &str) -> i32 {
    let (h, _) = c.call_full(&Request::Auth { scheme: scheme.into(), auth: auth.as_bytes().to_vec() });
    assert_eq!(h.xid, -4, "auth replies carry xid -4");
    h.err
}

fn create_acl(c: &mut RawClient, path: &str, acls: Vec<Acl>) -> Result<Response, i32> {
    c.call(&Request::Create(create_req(CreateKind::Create, path, Some(b"secret"), acls, 0)))
}

fn get_acl(c: &mut RawClient, path: &str) -> Result<(Vec<Acl>, Stat), i32> {
    match c.call(&Request::GetAcl { path: path.into() })? {
        Response::GetAcl { acl, stat } => Ok((acl, stat)),
        r => panic!("getACL: {r:?}"),
    }
}

#[test]
fn digest_hash_matches_zookeeper() {
    // The digest of super:test is the one kazoo's suite configures.
    assert_eq!(format!("super:{}", digest_id("super:test").split_once(':').unwrap().1), SUPER_DIGEST);
}

#[test]
fn no_auth_on_every_op_kind() {
    let srv = Server::start(&[]);
    let mut owner = srv.raw();
    let root = test_root("acl_noauth");
    owner.create(&root, Some(b""), 0).unwrap();
    assert_eq!(add_auth(&mut owner, "digest", "alice:pw"), 0);
    let locked = format!("{root}/locked");
    let alice_all = vec![acl(ALL, "digest", &digest_id("alice:pw"))];
    create_acl(&mut owner, &locked, alice_all.clone()).unwrap();
    create_acl(&mut owner, &format!("{locked}/kid"), Acl::open_unsafe()).unwrap();

    let mut other = srv.raw();
    let kid = format!("{locked}/kid");
    // Reads that need READ.
    assert_eq!(other.get_data(&locked, false), Err(err::NO_AUTH), "getData");
    assert_eq!(other.call(&Request::GetChildren { path: locked.clone(), watch: false }), Err(err::NO_AUTH), "getChildren");
    assert_eq!(other.call(&Request::GetChildren2 { path: locked.clone(), watch: true }), Err(err::NO_AUTH), "getChildren2");
    assert_eq!(other.call(&Request::GetAcl { path: locked.clone() }), Err(err::NO_AUTH), "getACL needs READ or ADMIN");
    // exists needs no permission; the open child stays readable.
    assert_eq!(other.exists(&locked, false).map(|s| s.num_children), Ok(1));
    assert_eq!(other.get_data(&kid, false).map(|d| d.0), Ok(Some(b"secret".to_vec())));
    // Writes.
    assert_eq!(other.set_data(&locked, b"x", -1), Err(err::NO_AUTH), "setData needs WRITE");
    assert_eq!(
        other.call(&Request::SetAcl { path: locked.clone(), acl: Acl::open_unsafe(), version: -1 }),
        Err(err::NO_AUTH),
        "setACL needs ADMIN"
    );
    assert_eq!(create_acl(&mut other, &format!("{locked}/new"), Acl::open_unsafe()), Err(err::NO_AUTH), "create needs CREATE");
    assert_eq!(other.delete(&kid, -1), Err(err::NO_AUTH), "delete needs DELETE on the parent");
    // Inside a multi: the failing op reports NoAuth, the others 0 / -2.
    match other.call(&Request::Multi(vec![
        MultiOp::Create(create_req(CreateKind::Create, &format!("{root}/ok"), None, Acl::open_unsafe(), 0)),
        MultiOp::SetData { path: locked.clone(), data: None, version: -1 },
        MultiOp::Delete { path: kid.clone(), version: -1 },
    ])) {
        Ok(Response::Multi(rs)) => assert_eq!(
            rs,
            vec![MultiResult::Error(0), MultiResult::Error(err::NO_AUTH), MultiResult::Error(err::RUNTIME_INCONSISTENCY)]
        ),
        other => panic!("multi: {other:?}"),
    }
    assert_eq!(other.exists(&format!("{root}/ok"), false), Err(err::NO_NODE));
    match other.call(&Request::MultiRead(vec![
        MultiReadOp::GetData { path: locked.clone() },
        MultiReadOp::GetChildren { path: locked.clone() },
        MultiReadOp::GetData { path: kid.clone() },
    ])) {
        Ok(Response::Multi(rs)) => {
            assert_eq!(rs[0], MultiResult::Error(err::NO_AUTH));
            assert_eq!(rs[1], MultiResult::Error(err::NO_AUTH));
            assert!(matches!(&rs[2], MultiResult::GetData { data: Some(d), .. } if d == b"secret"));
        }
        other => panic!("multiRead: {other:?}"),
    }
    // The owner (alice) can do it all.
    assert_eq!(owner.set_data(&locked, b"mine", -1).map(|s| s.version), Ok(1));
    assert_eq!(owner.delete(&kid, -1), Ok(()));
    // A second session authenticating as alice gets in too.
    assert_eq!(add_auth(&mut other, "digest", "alice:pw"), 0);
    assert_eq!(other.get_data(&locked, false).map(|d| d.0), Ok(Some(b"mine".to_vec())));
    // A wrong password is a different identity: still NoAuth (auth itself succeeds).
    let mut wrong = srv.raw();
    assert_eq!(add_auth(&mut wrong, "digest", "alice:nope"), 0);
    assert_eq!(wrong.get_data(&locked, false), Err(err::NO_AUTH));
}

#[test]
fn per_permission_bits() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("acl_bits");
    c.create(&root, Some(b""), 0).unwrap();
    let anyone = |p| vec![acl(p, "world", "anyone")];
    let node = |n: &str| format!("{root}/{n}");
    create_acl(&mut c, &node("r"), anyone(READ)).unwrap();
    create_acl(&mut c, &node("w"), anyone(WRITE)).unwrap();
    create_acl(&mut c, &node("c"), anyone(CREATE)).unwrap();
    create_acl(&mut c, &node("cd"), anyone(CREATE | DELETE)).unwrap();
    create_acl(&mut c, &node("a"), anyone(ADMIN)).unwrap();
    assert!(c.get_data(&node("r"), false).is_ok());
    assert_eq!(c.set_data(&node("r"), b"", -1), Err(err::NO_AUTH));
    assert_eq!(c.get_data(&node("w"), false), Err(err::NO_AUTH));
    assert_eq!(c.set_data(&node("w"), b"1", -1).map(|s| s.version), Ok(1));
    // CREATE without DELETE: children can be made but not removed.
    create_acl(&mut c, &format!("{}/k", node("c")), Acl::open_unsafe()).unwrap();
    assert_eq!(c.delete(&format!("{}/k", node("c")), -1), Err(err::NO_AUTH));
    create_acl(&mut c, &format!("{}/k", node("cd")), Acl::open_unsafe()).unwrap();
    assert_eq!(c.delete(&format!("{}/k", node("cd")), -1), Ok(()));
    // getACL with ADMIN only is allowed; setACL with ADMIN works and bumps aversion.
    let (a, st) = get_acl(&mut c, &node("a")).unwrap();
    assert_eq!((a, st.aversion), (anyone(ADMIN), 0));
    assert_eq!(get_acl(&mut c, &node("c")), Err(err::NO_AUTH), "neither READ nor ADMIN");
    match c.call(&Request::SetAcl { path: node("a"), acl: anyone(ADMIN | READ), version: 0 }) {
        Ok(Response::Stat(s)) => assert_eq!((s.aversion, s.version), (1, 0)),
        other => panic!("setACL: {other:?}"),
    }
    assert_eq!(c.call(&Request::SetAcl { path: node("a"), acl: anyone(ALL), version: 0 }), Err(err::BAD_VERSION));
    assert_eq!(c.call(&Request::SetAcl { path: node("zz"), acl: anyone(ALL), version: -1 }), Err(err::NO_NODE));
    assert_eq!(get_acl(&mut c, &node("zz")), Err(err::NO_NODE));
    assert_eq!(get_acl(&mut c, &node("a")).unwrap().1.aversion, 1);
}

#[test]
fn auth_scheme_uses_the_sessions_digest_identities() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("acl_authscheme");
    c.create(&root, Some(b""), 0).unwrap();
    // No authenticated identity yet (ip does not count): InvalidACL.
    assert_eq!(create_acl(&mut c, &format!("{root}/x"), vec![acl(ALL, "auth", "")]), Err(err::INVALID_ACL));
    assert_eq!(add_auth(&mut c, "digest", "bob:pw"), 0);
    assert_eq!(add_auth(&mut c, "digest", "carol:pw2"), 0);
    create_acl(&mut c, &format!("{root}/x"), vec![acl(READ | WRITE, "auth", "")]).unwrap();
    // Without ADMIN the stored hashes come back masked.
    let (mut got, _) = get_acl(&mut c, &format!("{root}/x")).unwrap();
    got.sort_by(|a, b| a.id.id.cmp(&b.id.id));
    assert_eq!(got, vec![acl(READ | WRITE, "digest", "bob:x"), acl(READ | WRITE, "digest", "carol:x")]);
    create_acl(&mut c, &format!("{root}/y"), vec![acl(READ | ADMIN, "auth", "")]).unwrap();
    let (mut got, _) = get_acl(&mut c, &format!("{root}/y")).unwrap();
    got.sort_by(|a, b| a.id.id.cmp(&b.id.id));
    assert_eq!(got, vec![acl(READ | ADMIN, "digest", &digest_id("bob:pw")), acl(READ | ADMIN, "digest", &digest_id("carol:pw2"))]);
    // setACL with auth works the same way.
    c.call(&Request::SetAcl { path: root.clone(), acl: vec![acl(ALL, "auth", "ignored")], version: -1 }).unwrap();
    let (got, _) = get_acl(&mut c, &root).unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|a| a.id.scheme == "digest" && a.perms == ALL), "{got:?}");
}

#[test]
fn invalid_acls_are_rejected() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("acl_invalid");
    c.create(&root, Some(b""), 0).unwrap();
    let p = format!("{root}/n");
    for (what, a) in [
        ("empty list", vec![]),
        ("unknown scheme", vec![acl(ALL, "foo", "bar")]),
        ("world with another id", vec![acl(ALL, "world", "someone")]),
        ("digest without hash", vec![acl(ALL, "digest", "nocolon")]),
        ("bad ip", vec![acl(ALL, "ip", "not.an.ip")]),
        ("ip with bad prefix", vec![acl(ALL, "ip", "127.0.0.1/99")]),
    ] {
        assert_eq!(create_acl(&mut c, &p, a.clone()), Err(err::INVALID_ACL), "create with {what}");
        assert_eq!(
            c.call(&Request::SetAcl { path: root.clone(), acl: a, version: -1 }),
            Err(err::INVALID_ACL),
            "setACL with {what}"
        );
    }
    assert_eq!(c.exists(&p, false), Err(err::NO_NODE));
    // Duplicates are removed.
    create_acl(&mut c, &p, vec![acl(ALL, "world", "anyone"), acl(ALL, "world", "anyone")]).unwrap();
    assert_eq!(get_acl(&mut c, &p).unwrap().0, Acl::open_unsafe());
}

#[test]
fn ip_scheme() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("acl_ip");
    c.create(&root, Some(b""), 0).unwrap();
    for (id, ok) in [("127.0.0.1", true), ("127.0.0.0/8", true), ("10.1.2.3", false), ("10.0.0.0/8", false)] {
        let p = format!("{root}/{}", id.replace('/', "_"));
        create_acl(&mut c, &p, vec![acl(READ, "ip", id)]).unwrap();
        let want = if ok { Ok(Some(b"secret".to_vec())) } else { Err(err::NO_AUTH) };
        assert_eq!(c.get_data(&p, false).map(|d| d.0), want, "ip:{id}");
    }
}

#[test]
fn unknown_auth_scheme_fails_and_closes() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    assert_eq!(add_auth(&mut c, "nosuchscheme", "whatever"), err::AUTH_FAILED);
    assert!(c.closed_within(Duration::from_secs(5)), "connection should close after AuthFailed");
    // The server is fine.
    let mut d = srv.raw();
    assert!(d.exists("/", false).is_ok());
}

#[test]
fn super_digest_bypasses_acls() {
    let srv = Server::start(&[]);
    let mut owner = srv.raw();
    let root = test_root("acl_super");
    owner.create(&root, Some(b""), 0).unwrap();
    let locked = format!("{root}/locked");
    create_acl(&mut owner, &locked, vec![acl(ALL, "digest", &digest_id("alice:pw"))]).unwrap();
    let nothing = format!("{root}/nothing");
    create_acl(&mut owner, &nothing, vec![acl(0, "world", "anyone")]).unwrap();

    let mut su = srv.raw();
    assert_eq!(add_auth(&mut su, "digest", "super:test"), 0);
    assert_eq!(su.get_data(&locked, false).map(|d| d.0), Ok(Some(b"secret".to_vec())));
    assert_eq!(su.set_data(&locked, b"su", -1).map(|s| s.version), Ok(1));
    create_acl(&mut su, &format!("{locked}/k"), Acl::open_unsafe()).unwrap();
    assert_eq!(su.delete(&format!("{locked}/k"), -1), Ok(()));
    assert_eq!(su.get_data(&nothing, false).map(|d| d.0), Ok(Some(b"secret".to_vec())));
    // super sees the unmasked hash.
    assert_eq!(get_acl(&mut su, &locked).unwrap().0, vec![acl(ALL, "digest", &digest_id("alice:pw"))]);
    su.call(&Request::SetAcl { path: nothing.clone(), acl: Acl::open_unsafe(), version: -1 }).unwrap();
    assert_eq!(owner.get_data(&nothing, false).map(|d| d.0), Ok(Some(b"secret".to_vec())));
    // A wrong super password is just another digest user.
    let mut not_su = srv.raw();
    assert_eq!(add_auth(&mut not_su, "digest", "super:wrong"), 0);
    assert_eq!(not_su.get_data(&locked, false), Err(err::NO_AUTH));
}

#[test]
fn get_acl_masks_digest_hashes_without_admin() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("acl_mask");
    c.create(&root, Some(b""), 0).unwrap();
    let p = format!("{root}/n");
    let alice = digest_id("alice:pw");
    let full = vec![acl(ALL, "digest", &alice), acl(READ, "world", "anyone")];
    create_acl(&mut c, &p, full.clone()).unwrap();
    // READ but no ADMIN: the hash is masked as "user:x".
    assert_eq!(get_acl(&mut c, &p).unwrap().0, vec![acl(ALL, "digest", "alice:x"), acl(READ, "world", "anyone")]);
    assert_eq!(add_auth(&mut c, "digest", "alice:pw"), 0);
    assert_eq!(get_acl(&mut c, &p).unwrap().0, full);
}

#[test]
fn delete_checks_the_parents_permission_before_the_node() {
    // ZooKeeper checks DELETE on the parent before looking the node up: a missing child under
    // a parent without DELETE is NoAuth, not NoNode.
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("acl_delorder");
    create_acl(&mut c, &root, vec![acl(READ | CREATE, "world", "anyone")]).unwrap();
    assert_eq!(c.delete(&format!("{root}/missing"), -1), Err(err::NO_AUTH));
    create_acl(&mut c, &format!("{root}/k"), Acl::open_unsafe()).unwrap();
    assert_eq!(c.delete(&format!("{root}/k"), -1), Err(err::NO_AUTH));
}

// ---- through the zookeeper-client crate ------------------------------------------------

use zookeeper_client as zk;

#[tokio::test]
async fn client_crate_acls() {
    let srv = Server::start(&[]);
    let alice = zk::Client::connector()
        .auth("digest".into(), b"alice:pw".to_vec())
        .connect(&srv.addr())
        .await
        .unwrap();
    let root = test_root("crate_acl");
    alice.create(&root, b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await.unwrap();
    let p = format!("{root}/mine");
    alice.create(&p, b"s", &zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all())).await.unwrap();
    let (acls, _) = alice.get_acl(&p).await.unwrap();
    assert_eq!(acls.len(), 1);
    assert_eq!((acls[0].scheme(), acls[0].id()), ("digest", digest_id("alice:pw").as_str()));
    let anon = srv.client().await;
    assert_eq!(anon.get_data(&p).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(anon.set_data(&p, b"x", None).await.unwrap_err(), zk::Error::NoAuth);
    assert_eq!(anon.get_acl(&p).await.unwrap_err(), zk::Error::NoAuth);
    anon.auth("digest".into(), b"super:test".to_vec()).await.unwrap();
    assert_eq!(anon.get_data(&p).await.unwrap().0, b"s".to_vec());
    let mut users = anon.list_auth_users().await.unwrap();
    users.sort_by(|a, b| a.scheme().cmp(b.scheme()));
    // ZooKeeper lists the super identity too.
    assert_eq!(
        users,
        vec![zk::AuthUser::new("digest", "super"), zk::AuthUser::new("ip", "127.0.0.1"), zk::AuthUser::new("super", "")]
    );
    let st = anon.set_acl(&p, &zk::Acls::anyone_read(), None).await.unwrap();
    assert_eq!(st.aversion, 1);
    let bad = zk::Client::connector().connect(&srv.addr()).await.unwrap();
    assert_eq!(bad.auth("nosuch".into(), b"x".to_vec()).await.unwrap_err(), zk::Error::AuthFailed);
}

//! Sessions on a real `arbor` process: expiry on the server's clock (ephemerals deleted,
//! other sessions' watches fired), timeout clamping to [2, 20]·tickTime, resuming a live
//! session on a new connection (the old one is closed), the expired-session reply for a
//! wrong password or an unknown id, closeSession, and a client ahead of the server's zxid.
mod common;

use common::*;
use std::time::{Duration, Instant};

/// tickTime=200: sessions may last 400 ms .. 4 s.
const TICK: &str = "tickTime=200";

fn eph(c: &mut RawClient, path: &str) {
    c.create(path, Some(b"e"), 1).unwrap_or_else(|e| panic!("create ephemeral {path}: {e}"));
}

#[test]
fn timeout_is_clamped_to_2_and_20_ticks() {
    let srv = Server::start(&[TICK]);
    for (asked, granted) in [(1, 400), (100, 400), (400, 400), (1234, 1234), (4000, 4000), (60_000, 4000)] {
        let c = RawClient::connect(&srv.addr(), asked);
        assert_eq!(c.resp.timeout_ms, granted, "asked {asked}");
        assert_eq!(c.resp.passwd.len(), 16);
        assert_eq!(c.resp.protocol_version, 0);
        assert_eq!(c.resp.read_only, Some(false), "readOnly byte echoed when sent");
    }
    // Without the trailing readOnly byte, the reply has none either.
    let mut req = new_session_request(1000);
    req.read_only = None;
    let (_, resp) = raw_handshake(&srv.addr(), &req).unwrap();
    assert_eq!((resp.read_only, resp.timeout_ms), (None, 1000));
    assert_ne!(resp.session_id, 0);
}

#[test]
fn expiry_deletes_ephemerals_and_fires_watches() {
    let srv = Server::start(&[TICK]);
    let mut dying = RawClient::connect(&srv.addr(), 400);
    assert_eq!(dying.resp.timeout_ms, 400);
    let mut watcher = srv.raw();
    let root = test_root("s_expire");
    watcher.create(&root, Some(b""), 0).unwrap();
    let e = format!("{root}/e");
    eph(&mut dying, &e);
    eph(&mut dying, &format!("{root}/f"));
    assert_eq!(watcher.exists(&e, true).unwrap().ephemeral_owner, dying.session_id());
    watcher.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    // The session must survive while it pings...
    let t0 = Instant::now();
    let mut last_ping = t0;
    while t0.elapsed() < Duration::from_millis(1200) {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(dying.call_full(&Request::Ping).0.xid, -2);
        last_ping = Instant::now();
    }
    assert!(watcher.exists(&e, false).is_ok(), "a pinging session must not expire");
    assert_eq!(watcher.events, vec![]);
    // ...and expire once it goes quiet: the watcher sees the deletions.
    let first = watcher.wait_event(Duration::from_secs(10)).expect("no notification after expiry");
    let waited = last_ping.elapsed();
    // Expiry is checked on tick boundaries: no earlier than the timeout (minus scheduling slack).
    assert!(waited >= Duration::from_millis(350), "expired {waited:?} after the last ping; timeout is 400 ms");
    let mut events = vec![first];
    events.extend(std::mem::take(&mut watcher.events));
    watcher.call(&Request::Sync { path: "/".into() }).unwrap();
    events.extend(std::mem::take(&mut watcher.events));
    let mut got: Vec<(i32, String)> = events.into_iter().map(|e| (e.event_type, e.path)).collect();
    got.sort();
    assert_eq!(got, vec![(2, e.clone()), (4, root.clone())]);
    assert_eq!(watcher.exists(&e, false), Err(err::NO_NODE));
    assert_eq!(watcher.exists(&root, false).unwrap().num_children, 0);
    // The expired session's connection is closed, and the session cannot be resumed.
    assert!(dying.closed_within(Duration::from_secs(5)), "expired session's connection stays open");
    let (mut s, resp) = raw_handshake(&srv.addr(), &dying.resume_request(0)).unwrap();
    assert_eq!((resp.timeout_ms, resp.session_id, resp.passwd.clone()), (0, 0, vec![0u8; 16]));
    assert!(matches!(read_until_closed(&mut s, Duration::from_secs(5)), Ending::Closed(_)));
}

#[test]
fn resume_on_a_new_connection_keeps_ephemerals_and_closes_the_old_one() {
    let srv = Server::start(&[TICK]);
    let mut first = RawClient::connect(&srv.addr(), 4000);
    let root = test_root("s_resume");
    first.create(&root, Some(b""), 0).unwrap();
    let e = format!("{root}/e");
    eph(&mut first, &e);
    let zxid = first.exists(&e, false).unwrap().czxid;
    let mut second = RawClient::connect_with(&srv.addr(), &first.resume_request(zxid));
    assert_eq!(second.session_id(), first.session_id());
    assert_eq!(second.resp.timeout_ms, 4000);
    assert_eq!(second.resp.passwd, first.resp.passwd);
    assert!(first.closed_within(Duration::from_secs(5)), "the taken-over connection must be closed");
    assert_eq!(second.exists(&e, false).unwrap().ephemeral_owner, second.session_id());
    let mut eps = match second.call(&Request::GetEphemerals { prefix_path: "/".into() }) {
        Ok(Response::GetEphemerals { paths }) => paths,
        other => panic!("{other:?}"),
    };
    eps.sort();
    assert_eq!(eps, vec![e.clone()]);
    // The session keeps working on the new connection.
    eph(&mut second, &format!("{root}/f"));
    assert_eq!(second.close_session().err, 0);
    let mut other = srv.raw();
    assert_eq!(other.exists(&root, false).unwrap().num_children, 0);
}

#[test]
fn wrong_password_or_unknown_session_gets_the_expired_reply() {
    let srv = Server::start(&[TICK]);
    let mut live = RawClient::connect(&srv.addr(), 4000);
    let root = test_root("s_badpw");
    live.create(&root, Some(b""), 0).unwrap();
    eph(&mut live, &format!("{root}/e"));
    let expired = |req: &ConnectRequest| {
        let (mut s, resp) = raw_handshake(&srv.addr(), req).expect("handshake");
        assert_eq!(resp.timeout_ms, 0, "{req:?}");
        assert_eq!(resp.session_id, 0);
        assert_eq!(resp.passwd, vec![0u8; 16]);
        assert!(matches!(read_until_closed(&mut s, Duration::from_secs(5)), Ending::Closed(_)), "not closed after expired reply");
    };
    let mut unknown = new_session_request(4000);
    unknown.session_id = 0x1234_5678_9abc;
    unknown.passwd = vec![1u8; 16];
    expired(&unknown);
    let mut wrong = live.resume_request(0);
    wrong.passwd[0] ^= 0xff;
    expired(&wrong);
    // As in ZooKeeper, the attempt closes the session's current connection even though the
    // password was wrong; the session itself lives on and can be resumed properly.
    assert!(live.closed_within(Duration::from_secs(5)), "takeover attempt should close the old connection");
    let mut back = RawClient::connect_with(&srv.addr(), &live.resume_request(0));
    assert_eq!(back.session_id(), live.session_id());
    assert!(back.exists(&format!("{root}/e"), false).is_ok());
}

#[test]
fn close_session_replies_then_closes() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("s_close");
    c.create(&root, Some(b""), 0).unwrap();
    eph(&mut c, &format!("{root}/e"));
    let xid = c.send(&Request::CloseSession);
    let (h, body) = c.wait_reply(xid).unwrap();
    assert_eq!((h.xid, h.err, body.len()), (xid, 0, 0));
    assert!(h.zxid > 0);
    assert!(c.closed_within(Duration::from_secs(5)), "closeSession must close the connection");
    let mut other = srv.raw();
    assert_eq!(other.exists(&format!("{root}/e"), false), Err(err::NO_NODE));
    // The closed session cannot be resumed.
    let (mut s, resp) = raw_handshake(&srv.addr(), &c.resume_request(0)).unwrap();
    assert_eq!(resp.session_id, 0);
    assert!(matches!(read_until_closed(&mut s, Duration::from_secs(5)), Ending::Closed(_)));
}

#[test]
fn client_ahead_of_the_server_is_refused() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let zxid = c.call_full(&Request::Sync { path: "/".into() }).0.zxid;
    let mut req = new_session_request(10_000);
    req.last_zxid_seen = zxid + 1_000_000;
    let mut s = raw_connect(&srv.addr());
    let mut out = bytes::BytesMut::new();
    arbor::jute::encode_connect_request(&mut out, &req);
    use std::io::Write;
    s.write_all(&out).unwrap();
    match read_until_closed(&mut s, Duration::from_secs(5)) {
        Ending::Closed(bytes) => assert!(bytes.is_empty(), "no ConnectResponse expected, got {bytes:?}"),
        Ending::StillOpen(_) => panic!("connection with lastZxidSeen ahead of the server stays open"),
    }
    // Equal to the server's zxid is fine.
    req.last_zxid_seen = zxid;
    let ok = RawClient::connect_with(&srv.addr(), &req);
    assert_ne!(ok.session_id(), 0);
}

#[test]
fn pings_are_answered_with_the_last_zxid() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("s_ping");
    let (h, _) = c.call_full(&Request::Create(create_req(CreateKind::Create, &root, None, Acl::open_unsafe(), 0)));
    let (p, body) = {
        let xid = c.send(&Request::Ping);
        c.wait_reply(xid).unwrap()
    };
    assert_eq!((p.xid, p.err, p.zxid, body.len()), (-2, 0, h.zxid, 0));
}

// ---- through the zookeeper-client crate ------------------------------------------------

use zookeeper_client as zk;

#[tokio::test]
async fn client_crate_session_expiry_and_resume() {
    let srv = Server::start(&[TICK]);
    // Detached: dropping it leaves the session open (two live clients on one session would
    // keep taking it over from each other).
    let c = zk::Client::connector()
        .session_timeout(Duration::from_millis(1000))
        .detached()
        .connect(&srv.addr())
        .await
        .unwrap();
    assert_eq!(c.session_timeout(), Duration::from_millis(1000));
    let root = test_root("crate_session");
    c.create(&root, b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await.unwrap();
    c.create(&format!("{root}/e"), b"", &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())).await.unwrap();
    // Resume the same session from another client object.
    let info = c.session().clone();
    let id = c.session_id();
    drop(c);
    let c2 = zk::Client::connector().session(info).connect(&srv.addr()).await.unwrap();
    assert_eq!(c2.session_id(), id);
    assert_eq!(c2.check_stat(&format!("{root}/e")).await.unwrap().map(|s| s.ephemeral_owner), Some(id.0));
    // A closed session: SessionExpired. Dropping the client closes its session in the
    // background, so poll (bounded) until the server has processed the close.
    let other = srv.client().await;
    let info = other.session().clone();
    drop(other);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match zk::Client::connector().session(info.clone()).connect(&srv.addr()).await {
            Err(e) => {
                assert_eq!(e, zk::Error::SessionExpired);
                break;
            }
            Ok(still_alive) => drop(still_alive),
        }
        assert!(Instant::now() < deadline, "closed session still resumable after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

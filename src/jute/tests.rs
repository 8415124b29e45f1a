//! Codec tests: round trips for every record, golden bytes assembled by hand from
//! `zookeeper.jute`, and seeded robustness checks (no panic, no allocation driven by a
//! forged count). The real-client check is in `interop.rs`.

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::proto::{Id, Stat};

fn stat(seed: i64) -> Stat {
    Stat {
        czxid: seed,
        mzxid: seed + 1,
        ctime: 1_700_000_000_000 + seed,
        mtime: 1_700_000_000_001 + seed,
        version: 3,
        cversion: -4,
        aversion: 5,
        ephemeral_owner: i64::MIN,
        data_length: 100,
        num_children: 7,
        pzxid: 0x1_0000_0002 + seed,
    }
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl { perms, id: Id::new(scheme, id) }
}

fn create(kind: CreateKind, path: &str) -> CreateRequest {
    CreateRequest {
        kind,
        path: path.into(),
        data: Some(b"payload".to_vec()),
        acl: vec![acl(31, "world", "anyone"), acl(1, "digest", "u:pw=")],
        flags: 3,
        ttl_ms: if kind == CreateKind::CreateTtl { 60_000 } else { -1 },
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every `Request` variant, with the opcode it is sent as.
fn all_requests() -> Vec<(i32, Request)> {
    let p = || "/a/b".to_string();
    vec![
        (11, Request::Ping),
        (-11, Request::CloseSession),
        (1, Request::Create(create(CreateKind::Create, "/c1"))),
        (15, Request::Create(create(CreateKind::Create2, "/c2"))),
        (19, Request::Create(create(CreateKind::CreateContainer, "/c3"))),
        (21, Request::Create(create(CreateKind::CreateTtl, "/c4"))),
        (2, Request::Delete { path: p(), version: -1 }),
        (3, Request::Exists { path: p(), watch: true }),
        (4, Request::GetData { path: p(), watch: false }),
        (5, Request::SetData { path: p(), data: Some(vec![0, 1, 255]), version: 9 }),
        (6, Request::GetAcl { path: p() }),
        (7, Request::SetAcl { path: p(), acl: vec![acl(1, "ip", "10.0.0.0/8")], version: 2 }),
        (8, Request::GetChildren { path: p(), watch: true }),
        (12, Request::GetChildren2 { path: p(), watch: false }),
        (9, Request::Sync { path: p() }),
        (13, Request::Check { path: p(), version: 4 }),
        (
            14,
            Request::Multi(vec![
                MultiOp::Create(create(CreateKind::Create, "/m1")),
                MultiOp::Create(create(CreateKind::Create2, "/m2")),
                MultiOp::Create(create(CreateKind::CreateContainer, "/m3")),
                MultiOp::Create(create(CreateKind::CreateTtl, "/m4")),
                MultiOp::Delete { path: p(), version: 1 },
                MultiOp::SetData { path: p(), data: Some(b"d".to_vec()), version: -1 },
                MultiOp::Check { path: p(), version: 0 },
            ]),
        ),
        (14, Request::Multi(vec![])),
        (
            22,
            Request::MultiRead(vec![
                MultiReadOp::GetChildren { path: p() },
                MultiReadOp::GetData { path: "/x".into() },
            ]),
        ),
        (100, Request::Auth { scheme: "digest".into(), auth: b"user:pw".to_vec() }),
        (
            101,
            Request::SetWatches {
                relative_zxid: 0x2_0000_0001,
                data: strs(&["/d1", "/d2"]),
                exist: strs(&["/e"]),
                child: vec![],
                persistent: vec![],
                persistent_recursive: vec![],
            },
        ),
        (
            105,
            Request::SetWatches {
                relative_zxid: 7,
                data: vec![],
                exist: strs(&["/e"]),
                child: strs(&["/c"]),
                persistent: strs(&["/p"]),
                persistent_recursive: strs(&["/r1", "/r2"]),
            },
        ),
        (106, Request::AddWatch { path: p(), mode: 1 }),
        (18, Request::RemoveWatches { path: p(), watch_type: 3 }),
        (17, Request::CheckWatches { path: p(), watch_type: 1 }),
        (103, Request::GetEphemerals { prefix_path: "/eph".into() }),
        (104, Request::GetAllChildrenNumber { path: p() }),
        (107, Request::WhoAmI),
        (16, Request::Reconfig { joining: Some("server.4=h:1:2;3".into()), leaving: None, new_members: None, cur_config_id: -1 }),
        (16, Request::Reconfig { joining: None, leaving: Some("4".into()), new_members: Some(String::new()), cur_config_id: 0x1_0000_0003 }),
        (102, Request::Unimplemented(102)),
        (20, Request::Unimplemented(20)),
        (12345, Request::Unimplemented(12345)),
    ]
}

/// Every `Response` variant (and every `MultiResult`), with the opcode it answers.
fn all_responses() -> Vec<(i32, Response)> {
    vec![
        (2, Response::Empty),
        (1, Response::Create { path: "/c".into() }),
        (15, Response::Create2 { path: "/c2".into(), stat: stat(1) }),
        (3, Response::Stat(stat(2))),
        (4, Response::GetData { data: Some(vec![9; 100]), stat: stat(3) }),
        (4, Response::GetData { data: Some(vec![]), stat: stat(3) }),
        (6, Response::GetAcl { acl: vec![acl(31, "world", "anyone"), acl(17, "auth", "")], stat: stat(4) }),
        (8, Response::GetChildren { children: strs(&["a", "b", "ü"]) }),
        (12, Response::GetChildren2 { children: strs(&["x"]), stat: stat(5) }),
        (9, Response::Sync { path: "/s".into() }),
        (
            14,
            Response::Multi(vec![
                MultiResult::Create { path: "/m1".into() },
                MultiResult::Create2 { path: "/m2".into(), stat: stat(6) },
                MultiResult::Delete,
                MultiResult::SetData { stat: stat(7) },
                MultiResult::Check,
            ]),
        ),
        (14, Response::Multi(vec![MultiResult::Error(0), MultiResult::Error(-101), MultiResult::Error(-2)])),
        (
            22,
            Response::Multi(vec![
                MultiResult::GetChildren { children: strs(&["k1", "k2"]) },
                MultiResult::GetData { data: Some(b"v".to_vec()), stat: stat(8) },
                MultiResult::Error(-101),
            ]),
        ),
        (103, Response::GetEphemerals { paths: strs(&["/e1", "/e2"]) }),
        (104, Response::AllChildrenNumber(42)),
        (107, Response::WhoAmI(vec![("ip".into(), "127.0.0.1".into()), ("digest".into(), "u".into())])),
        (106, Response::AddWatch),
    ]
}

fn one_frame(out: &mut BytesMut) -> bytes::Bytes {
    let frame = next_frame(out, DEFAULT_MAX_FRAME).expect("frame fits").expect("whole frame");
    assert!(out.is_empty(), "encoder wrote more than one frame");
    frame
}

#[test]
fn every_request_round_trips_client_encode_to_server_decode() {
    for (i, (code, req)) in all_requests().into_iter().enumerate() {
        assert_eq!(req.opcode(), code, "{req:?}");
        let header = RequestHeader { xid: i as i32 + 1, op: code };
        let mut out = BytesMut::new();
        encode_request(&mut out, header, &req);
        let frame = one_frame(&mut out);
        assert_eq!(decode_request(&frame), Ok((header, req)));
    }
}

#[test]
fn every_response_round_trips_server_encode_to_client_decode() {
    for (i, (code, resp)) in all_responses().into_iter().enumerate() {
        let header = ReplyHeader { xid: i as i32, zxid: 0x3_0000_0010, err: 0 };
        let mut out = BytesMut::new();
        encode_reply(&mut out, header, &resp);
        let frame = one_frame(&mut out);
        let (h, body) = decode_reply_header(&frame).expect("header");
        assert_eq!(h, header);
        assert_eq!(decode_response(code, body), Ok(resp));
    }
}

#[test]
fn error_reply_has_no_body() {
    let header = ReplyHeader { xid: 5, zxid: 9, err: -101 };
    let mut out = BytesMut::new();
    encode_reply(&mut out, header, &Response::Stat(stat(1)));
    let frame = one_frame(&mut out);
    assert_eq!(frame.len(), REPLY_HEADER_LEN);
    assert_eq!(decode_reply_header(&frame), Ok((header, &[][..])));
}

#[test]
fn connect_round_trips_with_and_without_read_only() {
    for read_only in [None, Some(false), Some(true)] {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 77,
            timeout_ms: 30_000,
            session_id: 0x0100_0000_0000_0001,
            passwd: vec![7; 16],
            read_only,
        };
        let mut out = BytesMut::new();
        encode_connect_request(&mut out, &req);
        assert_eq!(decode_connect(&one_frame(&mut out)), Ok(req));

        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 4000,
            session_id: 5,
            passwd: vec![1; 16],
            read_only,
        };
        encode_connect_response(&mut out, &resp);
        assert_eq!(decode_connect_response(&one_frame(&mut out)), Ok(resp));
    }
}

#[test]
fn notification_round_trips() {
    let ev = WatcherEvent { event_type: 4, state: 3, path: "/n".into() };
    let mut out = BytesMut::new();
    encode_notification(&mut out, &ev);
    let frame = one_frame(&mut out);
    let (h, body) = decode_reply_header(&frame).expect("header");
    assert_eq!(h, ReplyHeader { xid: xid::NOTIFICATION, zxid: -1, err: 0 });
    assert_eq!(decode_watcher_event(body), Ok(ev));
}

// ---------------------------------------------------------------------------------------
// Golden bytes, assembled field by field from zookeeper.jute (independent of the encoder)
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Golden(Vec<u8>);

impl Golden {
    fn int(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn long(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn boolean(mut self, v: bool) -> Self {
        self.0.push(v as u8);
        self
    }
    fn bytes(self, v: &[u8]) -> Self {
        let mut g = self.int(v.len() as i32);
        g.0.extend_from_slice(v);
        g
    }
    fn stat(self, s: &Stat) -> Self {
        self.long(s.czxid)
            .long(s.mzxid)
            .long(s.ctime)
            .long(s.mtime)
            .int(s.version)
            .int(s.cversion)
            .int(s.aversion)
            .long(s.ephemeral_owner)
            .int(s.data_length)
            .int(s.num_children)
            .long(s.pzxid)
    }
    fn framed(self) -> Vec<u8> {
        let mut v = (self.0.len() as i32).to_be_bytes().to_vec();
        v.extend(self.0);
        v
    }
}

#[rustfmt::skip]
const CONNECT_WITH_READ_ONLY: [u8; 49] = [
    0, 0, 0, 45,                    // frame length
    0, 0, 0, 0,                     // protocolVersion
    0, 0, 0, 0, 0, 0, 0, 0x2a,      // lastZxidSeen = 42
    0, 0, 0x75, 0x30,               // timeOut = 30000
    0x01, 0, 0, 0, 0, 0, 0, 0x05,   // sessionId
    0, 0, 0, 16,                    // passwd length
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    0,                              // readOnly = false
];

#[test]
fn golden_connect_request_with_and_without_read_only() {
    let expected = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 42,
        timeout_ms: 30_000,
        session_id: 0x0100_0000_0000_0005,
        passwd: (1..=16).collect(),
        read_only: Some(false),
    };
    assert_eq!(decode_connect(&CONNECT_WITH_READ_ONLY[4..]), Ok(expected.clone()));
    let mut out = BytesMut::new();
    encode_connect_request(&mut out, &expected);
    assert_eq!(&out[..], &CONNECT_WITH_READ_ONLY[..]);

    // An old client without the trailing byte: 44-byte payload, and no byte echoed back.
    let without = &CONNECT_WITH_READ_ONLY[4..48];
    let req = decode_connect(without).expect("decodes");
    assert_eq!(req.read_only, None);
    let mut out = BytesMut::new();
    encode_connect_request(&mut out, &req);
    assert_eq!(&out[4..], without);
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4000,
        session_id: 1,
        passwd: vec![0; 16],
        read_only: None,
    };
    encode_connect_response(&mut out, &resp);
    assert_eq!(&out[48..], &Golden::default().int(0).int(4000).long(1).bytes(&[0; 16]).framed()[..]);
}

/// The ConnectRequest payload zookeeper-client 0.9.3 really sent for a fresh session
/// (captured by the interop test): empty password as length 0, readOnly byte present.
#[rustfmt::skip]
const ZOOKEEPER_CLIENT_FRESH_CONNECT: [u8; 29] = [
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x17, 0x70,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00,
];

#[test]
fn golden_zookeeper_client_fresh_connect() {
    assert_eq!(
        decode_connect(&ZOOKEEPER_CLIENT_FRESH_CONNECT),
        Ok(ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 6000,
            session_id: 0,
            passwd: vec![],
            read_only: Some(false),
        })
    );
}

#[test]
fn golden_create_request() {
    let wire = Golden::default()
        .int(1) // xid
        .int(1) // create
        .bytes(b"/a")
        .bytes(b"x")
        .int(1) // one ACL
        .int(31)
        .bytes(b"world")
        .bytes(b"anyone")
        .int(0) // flags: persistent
        .framed();
    let req = CreateRequest {
        kind: CreateKind::Create,
        path: "/a".into(),
        data: Some(b"x".to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl_ms: -1,
    };
    let header = RequestHeader { xid: 1, op: 1 };
    assert_eq!(decode_request(&wire[4..]), Ok((header, Request::Create(req.clone()))));
    let mut out = BytesMut::new();
    encode_request(&mut out, header, &Request::Create(req));
    assert_eq!(&out[..], &wire[..]);
}

#[rustfmt::skip]
const GET_DATA_WATCH: [u8; 19] = [
    0, 0, 0, 15,        // frame length
    0, 0, 0, 2,         // xid
    0, 0, 0, 4,         // getData
    0, 0, 0, 2, b'/', b'a',
    1,                  // watch
];

#[test]
fn golden_get_data_request() {
    let header = RequestHeader { xid: 2, op: 4 };
    let req = Request::GetData { path: "/a".into(), watch: true };
    assert_eq!(decode_request(&GET_DATA_WATCH[4..]), Ok((header, req.clone())));
    let mut out = BytesMut::new();
    encode_request(&mut out, header, &req);
    assert_eq!(&out[..], &GET_DATA_WATCH[..]);
}

#[test]
fn golden_exists_reply_carries_a_68_byte_stat() {
    let s = stat(10);
    let wire = Golden::default().int(7).long(0x500).int(0).stat(&s).framed();
    assert_eq!(wire.len(), 4 + REPLY_HEADER_LEN + STAT_LEN);
    let mut out = BytesMut::new();
    encode_reply(&mut out, ReplyHeader { xid: 7, zxid: 0x500, err: 0 }, &Response::Stat(s));
    assert_eq!(&out[..], &wire[..]);
}

/// ZooKeeper 3.8 answers addWatch with the header plus `ErrorResponse {int err = 0}`: 20
/// bytes, not 16 (the Java client reads the int and fails with EOFException without it).
#[test]
fn golden_add_watch_reply_carries_an_error_response_body() {
    let wire = Golden::default().int(9).long(0x700).int(0).int(0).framed();
    assert_eq!(wire.len(), 4 + 20);
    let mut out = BytesMut::new();
    encode_reply(&mut out, ReplyHeader { xid: 9, zxid: 0x700, err: 0 }, &Response::AddWatch);
    assert_eq!(&out[..], &wire[..]);
}

#[test]
fn golden_failed_multi_reply() {
    // PrepRequestProcessor: ops before the failure 0, the failing op its code, later -2;
    // the reply header itself says err 0.
    let wire = Golden::default()
        .int(3)
        .long(0x600)
        .int(0)
        .int(-1)
        .boolean(false)
        .int(0)
        .int(0)
        .int(-1)
        .boolean(false)
        .int(-101)
        .int(-101)
        .int(-1)
        .boolean(false)
        .int(-2)
        .int(-2)
        .int(-1)
        .boolean(true)
        .int(-1)
        .framed();
    let resp = Response::Multi(vec![MultiResult::Error(0), MultiResult::Error(-101), MultiResult::Error(-2)]);
    let mut out = BytesMut::new();
    encode_reply(&mut out, ReplyHeader { xid: 3, zxid: 0x600, err: 0 }, &resp);
    assert_eq!(&out[..], &wire[..]);
}

#[test]
fn golden_multi_reply_with_create_and_set_data() {
    let s = stat(1);
    let wire = Golden::default()
        .int(4)
        .long(1)
        .int(0)
        .int(1)
        .boolean(false)
        .int(0)
        .bytes(b"/a")
        .int(15)
        .boolean(false)
        .int(0)
        .bytes(b"/b")
        .stat(&s)
        .int(5)
        .boolean(false)
        .int(0)
        .stat(&s)
        .int(2)
        .boolean(false)
        .int(0)
        .int(13)
        .boolean(false)
        .int(0)
        .int(-1)
        .boolean(true)
        .int(-1)
        .framed();
    let resp = Response::Multi(vec![
        MultiResult::Create { path: "/a".into() },
        MultiResult::Create2 { path: "/b".into(), stat: s },
        MultiResult::SetData { stat: s },
        MultiResult::Delete,
        MultiResult::Check,
    ]);
    let mut out = BytesMut::new();
    encode_reply(&mut out, ReplyHeader { xid: 4, zxid: 1, err: 0 }, &resp);
    assert_eq!(&out[..], &wire[..]);
}

#[test]
fn golden_notification() {
    #[rustfmt::skip]
    let wire: [u8; 34] = [
        0, 0, 0, 30,
        0xff, 0xff, 0xff, 0xff,                          // xid -1
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // zxid -1
        0, 0, 0, 0,                                      // err
        0, 0, 0, 3,                                      // NodeDataChanged
        0, 0, 0, 3,                                      // SyncConnected
        0, 0, 0, 2, b'/', b'a',
    ];
    let mut out = BytesMut::new();
    encode_notification(&mut out, &WatcherEvent { event_type: 3, state: 3, path: "/a".into() });
    assert_eq!(&out[..], &wire[..]);
}

#[test]
fn kazoo_null_strings_and_buffers_decode_as_empty() {
    // kazoo writes "" as length -1; Java writes null buffers the same way.
    let wire = Golden::default().int(1).int(5).int(-1).int(-1).int(-1).framed();
    assert_eq!(
        decode_request(&wire[4..]),
        Ok((
            RequestHeader { xid: 1, op: 5 },
            Request::SetData { path: String::new(), data: None, version: -1 }
        ))
    );
    let wire = Golden::default().int(1).int(7).bytes(b"/a").int(-1).int(0).framed();
    assert_eq!(
        decode_request(&wire[4..]).map(|(_, r)| r),
        Ok(Request::SetAcl { path: "/a".into(), acl: vec![], version: 0 })
    );
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let wire = Golden::default().int(1).int(3).bytes(&[b'/', 0xff, b'a']).boolean(false).framed();
    assert_eq!(
        decode_request(&wire[4..]).map(|(_, r)| r),
        Ok(Request::Exists { path: "/\u{fffd}a".into(), watch: false })
    );
}

#[test]
fn trailing_bytes_after_a_known_body_are_ignored() {
    let mut wire = GET_DATA_WATCH[4..].to_vec();
    wire.extend_from_slice(b"junk");
    assert_eq!(
        decode_request(&wire).map(|(_, r)| r),
        Ok(Request::GetData { path: "/a".into(), watch: true })
    );
}

/// `ReconfigRequest` as kazoo sends it: null leaving and newMembers, curConfigId -1.
#[test]
fn golden_reconfig_request_with_null_strings() {
    let joining = "server.4=h:1:2:observer;3";
    let wire = Golden::default().int(9).int(16).bytes(joining.as_bytes()).int(-1).int(-1).long(-1).framed();
    assert_eq!(
        decode_request(&wire[4..]).map(|(_, r)| r),
        Ok(Request::Reconfig { joining: Some(joining.into()), leaving: None, new_members: None, cur_config_id: -1 })
    );
}

#[test]
fn unsupported_opcodes_ignore_their_body() {
    for code in [102, 20, 10, 0, -10, 999, i32::MIN] {
        let wire = Golden::default().int(9).int(code).int(-77).framed();
        assert_eq!(
            decode_request(&wire[4..]),
            Ok((RequestHeader { xid: 9, op: code }, Request::Unimplemented(code)))
        );
    }
}

#[test]
fn read_ops_inside_multi_and_writes_inside_multi_read_are_rejected() {
    let get_in_multi =
        Golden::default().int(1).int(14).int(4).boolean(false).int(-1).bytes(b"/a").boolean(false);
    assert_eq!(decode_request(&get_in_multi.0), Err(DecodeError::BadMultiOp(4)));
    let del_in_read = Golden::default().int(1).int(22).int(2).boolean(false).int(-1).bytes(b"/a").int(0);
    assert_eq!(decode_request(&del_in_read.0), Err(DecodeError::BadMultiOp(2)));
    let unterminated = Golden::default().int(1).int(14).int(13).boolean(false).int(-1).bytes(b"/a").int(0);
    assert!(matches!(decode_request(&unterminated.0), Err(DecodeError::Truncated { .. })));
}

#[test]
fn negative_lengths_other_than_minus_one_are_rejected() {
    let wire = Golden::default().int(1).int(3).int(-2).boolean(false);
    assert_eq!(decode_request(&wire.0), Err(DecodeError::BadLength(-2)));
}

#[test]
fn huge_vector_count_fails_fast_without_allocating() {
    // A count of 2^31-1 with a 4-byte remainder: rejected before `Vec::with_capacity`,
    // which would otherwise try to reserve tens of GiB and abort the process.
    let children = Golden::default().int(i32::MAX).int(0);
    assert!(matches!(decode_response(8, &children.0), Err(DecodeError::Truncated { .. })));
    let set_acl = Golden::default().int(1).int(7).bytes(b"/a").int(i32::MAX).int(0);
    assert!(matches!(decode_request(&set_acl.0), Err(DecodeError::Truncated { .. })));
    let set_watches = Golden::default().int(-8).int(101).long(0).int(0x4000_0000);
    assert!(matches!(decode_request(&set_watches.0), Err(DecodeError::Truncated { .. })));
    let who = Golden::default().int(i32::MAX);
    assert!(matches!(decode_response(107, &who.0), Err(DecodeError::Truncated { .. })));
    let huge_string = Golden::default().int(1).int(4).int(i32::MAX).bytes(b"x");
    assert!(matches!(decode_request(&huge_string.0), Err(DecodeError::Truncated { .. })));
}

// ---------------------------------------------------------------------------------------
// Seeded robustness: random and mutated frames must give Ok or Err, never a panic
// ---------------------------------------------------------------------------------------

fn corpus() -> Vec<Vec<u8>> {
    let mut out = BytesMut::new();
    for (i, (code, req)) in all_requests().iter().enumerate() {
        encode_request(&mut out, RequestHeader { xid: i as i32, op: *code }, req);
    }
    for (code, resp) in all_responses() {
        encode_reply(&mut out, ReplyHeader { xid: code, zxid: 1, err: 0 }, &resp);
    }
    encode_notification(&mut out, &WatcherEvent { event_type: 1, state: 3, path: "/w".into() });
    out.extend_from_slice(&CONNECT_WITH_READ_ONLY);
    out.extend_from_slice(&(ZOOKEEPER_CLIENT_FRESH_CONNECT.len() as i32).to_be_bytes());
    out.extend_from_slice(&ZOOKEEPER_CLIENT_FRESH_CONNECT);
    let mut frames = Vec::new();
    while let Ok(Some(f)) = next_frame(&mut out, DEFAULT_MAX_FRAME) {
        frames.push(f.to_vec());
    }
    frames
}

const INTERESTING_INTS: [i32; 9] = [-1, -2, 0, 1, 0x7fff_ffff, i32::MIN, 0x4000_0000, 0xffff, 68];

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.gen_range(1..=3) {
        match rng.gen_range(0..6) {
            0 => v.truncate(rng.gen_range(0..=v.len())),
            1 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] = rng.gen();
            }
            2 if v.len() >= 4 => {
                let i = rng.gen_range(0..=v.len() - 4);
                let x = INTERESTING_INTS[rng.gen_range(0..INTERESTING_INTS.len())];
                v[i..i + 4].copy_from_slice(&x.to_be_bytes());
            }
            3 => {
                let i = rng.gen_range(0..=v.len());
                let extra: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                v.splice(i..i, extra);
            }
            4 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                let j = rng.gen_range(i..=v.len());
                v.drain(i..j);
            }
            _ => v = (0..rng.gen_range(0..80)).map(|_| rng.gen()).collect(),
        }
    }
    v
}

#[test]
fn random_and_mutated_frames_never_panic() {
    const OPS: [i32; 24] =
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 19, 21, 22, 100, 101, 103, 104, 105, 107, -1];
    let seeds = corpus();
    let mut rng = StdRng::seed_from_u64(0x6a75_7465);
    let (mut ok, mut err) = (0u32, 0u32);
    for _ in 0..200_000 {
        let input = if rng.gen_bool(0.1) {
            (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
        } else {
            let seed = &seeds[rng.gen_range(0..seeds.len())];
            mutate(&mut rng, seed)
        };
        let code = OPS[rng.gen_range(0..OPS.len())];
        for r in [
            decode_connect(&input).map(|_| ()),
            decode_request(&input).map(|_| ()),
            decode_response(code, &input).map(|_| ()),
            decode_connect_response(&input).map(|_| ()),
            decode_reply_header(&input).and_then(|(_, body)| decode_watcher_event(body)).map(|_| ()),
        ] {
            if r.is_ok() {
                ok += 1;
            } else {
                err += 1;
            }
        }
        // Framing over the same bytes with a small limit.
        let mut buf = BytesMut::from(&input[..]);
        while let Ok(Some(_)) = next_frame(&mut buf, 256) {}
    }
    // Both outcomes must actually be exercised, or the mutator is useless.
    assert!(ok > 10_000 && err > 10_000, "ok={ok} err={err}");
}

//! Tests of the session core with frames built by the server half of the codec.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::jute::{self, ConnectResponse, ReplyHeader, Request, Response, WatcherEvent};
use crate::proto::Stat;

fn payload(mut framed: BytesMut) -> Bytes {
    let _ = framed.split_to(4);
    framed.freeze()
}

fn connect_response(session_id: i64, timeout_ms: i32) -> Bytes {
    let mut b = BytesMut::new();
    jute::encode_connect_response(
        &mut b,
        &ConnectResponse { protocol_version: 0, timeout_ms, session_id, passwd: vec![7u8; 16], read_only: Some(false) },
    );
    payload(b)
}

fn reply(xid: i32, zxid: i64, err: i32, resp: &Response) -> Bytes {
    let mut b = BytesMut::new();
    jute::encode_reply(&mut b, ReplyHeader { xid, zxid, err }, resp);
    payload(b)
}

fn connected(events: &mut Vec<Event>) -> Session {
    let mut s = Session::new(6000);
    assert!(matches!(s.step(0, Input::TcpConnected, events), Directive::Keep));
    let sent = payload(BytesMut::from(s.transmit()));
    let req = jute::decode_connect(&sent).expect("a connect request");
    assert_eq!((req.session_id, req.timeout_ms, req.last_zxid_seen), (0, 6000, 0));
    s.sent(s.transmit().len());
    assert!(matches!(s.step(1, Input::Frame(connect_response(0x55, 6000)), events), Directive::Keep));
    assert!(matches!(events.pop(), Some(Event::Connected { session_id: 0x55, timeout_ms: 6000, resumed: false })));
    s
}

fn get(path: &str) -> Request {
    Request::GetData { path: path.into(), watch: false }
}

#[test]
fn pipelined_replies_match_in_order_and_carry_tags() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    let x1 = s.submit(2, &get("/a"), 11).expect("submit");
    let x2 = s.submit(2, &get("/b"), 22).expect("submit");
    assert_eq!((x1, x2), (1, 2));
    let body = Response::GetData { data: Some(b"v".to_vec()), stat: Stat::default() };
    s.step(3, Input::Frame(reply(1, 9, 0, &body)), &mut ev);
    s.step(3, Input::Frame(reply(2, 10, -101, &Response::Empty)), &mut ev);
    let [Event::Reply(a), Event::Reply(b)] = &ev[..] else { panic!("{ev:?}") };
    assert_eq!((a.tag, b.tag), (11, 22));
    assert_eq!(a.result().expect("ok"), body);
    assert_eq!(b.result().unwrap_err().name(), "NoNode");
    assert_eq!(s.last_zxid(), 10);
    assert_eq!(s.pending_len(), 0);
}

#[test]
fn a_reply_out_of_order_closes_and_fails_everything_pending() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    s.submit(2, &get("/a"), 1).expect("submit");
    s.submit(2, &get("/b"), 2).expect("submit");
    let d = s.step(3, Input::Frame(reply(2, 1, 0, &Response::Stat(Stat::default()))), &mut ev);
    assert!(matches!(d, Directive::Close(ClientError::ConnectionLoss(_))));
    let names: Vec<String> = ev
        .iter()
        .filter_map(|e| if let Event::Reply(r) = e { Some(code_name(r.err)) } else { None })
        .collect();
    assert_eq!(names, ["ConnectionLoss", "ConnectionLoss"]);
    assert!(matches!(ev.last(), Some(Event::Disconnected)));
    assert!(s.submit(4, &get("/a"), 3).is_err(), "no submits while disconnected");
}

#[test]
fn reconnect_resumes_the_same_session_with_the_last_zxid() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    s.submit(2, &get("/a"), 1).expect("submit");
    s.step(3, Input::Frame(reply(1, 0x300, 0, &Response::GetData { data: None, stat: Stat::default() })), &mut ev);
    s.step(4, Input::TcpClosed, &mut ev);
    s.step(5, Input::TcpConnected, &mut ev);
    let req = jute::decode_connect(&payload(BytesMut::from(s.transmit()))).expect("connect");
    assert_eq!((req.session_id, req.passwd.clone(), req.last_zxid_seen), (0x55, vec![7u8; 16], 0x300));
    s.step(6, Input::Frame(connect_response(0x55, 6000)), &mut ev);
    assert!(matches!(ev.last(), Some(Event::Connected { resumed: true, .. })));
}

#[test]
fn an_expired_reply_to_a_resume_is_final() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    s.step(4, Input::TcpClosed, &mut ev);
    s.step(5, Input::TcpConnected, &mut ev);
    let d = s.step(6, Input::Frame(connect_response(0, 0)), &mut ev);
    assert!(matches!(d, Directive::Close(ClientError::SessionExpired)));
    assert!(s.is_expired());
    assert!(matches!(ev.last(), Some(Event::Expired)));
    assert_eq!(s.submit(7, &get("/a"), 0).unwrap_err().name(), "SessionExpired");
}

#[test]
fn pings_after_a_third_of_the_timeout_and_gives_up_after_two_thirds_of_silence() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    s.sent(s.transmit().len());
    assert_eq!(s.next_deadline(), Some(2000));
    s.step(2000, Input::Tick, &mut ev);
    let ping = payload(BytesMut::from(s.transmit()));
    assert_eq!(&ping[..8], &[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]);
    s.sent(s.transmit().len());
    // The ping reply is consumed silently.
    s.step(2001, Input::Frame(reply(-2, 5, 0, &Response::Empty)), &mut ev);
    assert!(ev.is_empty(), "{ev:?}");
    let d = s.step(2001 + 4000, Input::Tick, &mut ev);
    assert!(matches!(d, Directive::Close(ClientError::ConnectionLoss(_))), "{d:?}");
}

#[test]
fn notifications_are_events_not_replies() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    let mut b = BytesMut::new();
    jute::encode_notification(&mut b, &WatcherEvent { event_type: 3, state: 3, path: "/w".into() });
    s.step(2, Input::Frame(payload(b)), &mut ev);
    assert!(matches!(&ev[..], [Event::Watch(w)] if w.path == "/w" && w.event_type == 3));
}

/// Every request frame in `bytes` (length-prefixed), decoded.
fn sent_requests(bytes: &[u8]) -> Vec<(i32, Request)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let (frame, tail) = rest[4..].split_at(len);
        let (h, req) = jute::decode_request(frame).expect("a request");
        out.push((h.xid, req));
        rest = tail;
    }
    out
}

fn watched(s: &mut Session, ev: &mut Vec<Event>, req: Request, zxid: i64, err: i32, resp: &Response) {
    let x = s.submit(2, &req, 0).expect("submit");
    s.sent(s.transmit().len());
    s.step(3, Input::Frame(reply(x, zxid, err, resp)), ev);
}

fn notification(event_type: i32, path: &str) -> Bytes {
    let mut b = BytesMut::new();
    jute::encode_notification(&mut b, &WatcherEvent { event_type, state: 3, path: path.into() });
    payload(b)
}

#[test]
fn watches_the_server_accepted_are_set_again_on_a_resume_and_fired_ones_are_not() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    let data = Response::GetData { data: None, stat: Stat::default() };
    watched(&mut s, &mut ev, Request::GetData { path: "/d".into(), watch: true }, 0x10, 0, &data);
    // A failed getData sets nothing; exists on a missing node sets an exist watch.
    watched(&mut s, &mut ev, Request::GetData { path: "/gone".into(), watch: true }, 0x10, -101, &Response::Empty);
    watched(&mut s, &mut ev, Request::Exists { path: "/e".into(), watch: true }, 0x11, -101, &Response::Empty);
    watched(&mut s, &mut ev, Request::GetChildren { path: "/c".into(), watch: true }, 0x12, 0, &Response::GetChildren { children: vec![] });
    watched(&mut s, &mut ev, Request::AddWatch { path: "/p".into(), mode: 1 }, 0x13, 0, &Response::AddWatch);
    watched(&mut s, &mut ev, Request::GetData { path: "/f".into(), watch: true }, 0x14, 0, &data);
    assert_eq!(s.watch_counts(), [2, 1, 1, 0, 1]);
    // /f's watch fires (one-shot): it is gone; the persistent one stays.
    s.step(4, Input::Frame(notification(3, "/f")), &mut ev);
    s.step(4, Input::Frame(notification(3, "/p/x")), &mut ev);
    assert_eq!(s.watch_counts(), [1, 1, 1, 0, 1]);
    let replies_before = ev.iter().filter(|e| matches!(e, Event::Reply(_))).count();
    s.step(5, Input::TcpClosed, &mut ev);
    s.step(6, Input::TcpConnected, &mut ev);
    s.sent(s.transmit().len());
    s.step(7, Input::Frame(connect_response(0x55, 6000)), &mut ev);
    let sent = sent_requests(s.transmit());
    let [(xid, Request::SetWatches { relative_zxid, data, exist, child, persistent, persistent_recursive })] = &sent[..] else {
        panic!("one setWatches after the resume: {sent:?}")
    };
    assert_eq!(*xid, -8);
    assert_eq!(*relative_zxid, 0x14, "the last zxid seen");
    assert_eq!((data, exist, child), (&vec!["/d".to_string()], &vec!["/e".to_string()], &vec!["/c".to_string()]));
    assert!(persistent.is_empty());
    assert_eq!(persistent_recursive, &vec!["/p".to_string()]);
    s.sent(s.transmit().len());
    // Its reply is the core's own: no Reply event for the caller.
    s.step(8, Input::Frame(reply(-8, 0x14, 0, &Response::Empty)), &mut ev);
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::Reply(_))).count(), replies_before);
    assert_eq!(s.pending_len(), 0);
    // Deleting /c fires the child watch; removeWatches drops the rest.
    s.step(9, Input::Frame(notification(2, "/c")), &mut ev);
    s.submit(10, &Request::RemoveWatches { path: "/d".into(), watch_type: 3 }, 0).expect("submit");
    s.submit(10, &Request::RemoveWatches { path: "/p".into(), watch_type: 3 }, 0).expect("submit");
    assert_eq!(s.watch_counts(), [0, 1, 0, 0, 0]);
}

#[test]
fn many_watches_are_set_again_in_frames_of_at_most_128_kib_of_paths() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    let data = Response::GetData { data: None, stat: Stat::default() };
    let paths: Vec<String> = (0..3000).map(|i| format!("/{i:0>99}")).collect();
    for p in &paths {
        watched(&mut s, &mut ev, Request::GetData { path: p.clone(), watch: true }, 0x20, 0, &data);
    }
    s.step(5, Input::TcpClosed, &mut ev);
    s.step(6, Input::TcpConnected, &mut ev);
    s.sent(s.transmit().len());
    s.step(7, Input::Frame(connect_response(0x55, 6000)), &mut ev);
    let sent = sent_requests(s.transmit());
    assert!(sent.len() >= 3, "300 kB of paths take several frames, not {}", sent.len());
    let mut all = Vec::new();
    for (_, r) in sent {
        let Request::SetWatches { data, .. } = r else { panic!("{r:?}") };
        assert!(data.iter().map(String::len).sum::<usize>() <= 128 * 1024);
        all.extend(data);
    }
    all.sort();
    assert_eq!(all, paths, "every watch once");
}

#[test]
fn a_new_session_after_a_lost_one_sets_no_old_watches() {
    let mut ev = Vec::new();
    let mut s = connected(&mut ev);
    let data = Response::GetData { data: None, stat: Stat::default() };
    watched(&mut s, &mut ev, Request::GetData { path: "/d".into(), watch: true }, 0x10, 0, &data);
    s.step(5, Input::TcpClosed, &mut ev);
    s.step(6, Input::TcpConnected, &mut ev);
    s.sent(s.transmit().len());
    // Another session id: the old one (and its watches) is gone.
    s.step(7, Input::Frame(connect_response(0x77, 6000)), &mut ev);
    assert!(s.transmit().is_empty(), "nothing re-armed");
    assert_eq!(s.watch_counts(), [0; 5]);
}

//! The replica core's client hot path, with no sockets and no disk: CPU per request from the
//! frame to the reply bytes (`Output::ToClient`). A standalone replica, one session.
//! Run with `cargo bench --bench replica`.
//!
//! - getData: decode, ACL check, tree lookup, encode the reply;
//! - setData: prep, apply and append (the txn is handed out as `Output::Append`, the reply
//!   right after it: standalone, the loop holds it until the log is durable), then the
//!   durable point moves (`LogDurable`).

use arbor::jute::{encode_connect_request, encode_request, next_frame, ConnectRequest, Request, RequestHeader, DEFAULT_MAX_FRAME};
use arbor::proto::{Acl, ServerId, Zxid};
use arbor::replica::{Input, Now, Output, Replica};
use arbor::service::{ClientId, Service, ServiceConfig};
use arbor::session::SessionTable;
use arbor::tree::DataTree;
use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const NOW: Now = Now { ms: 1_000, us: 1_000_000, wall_ms: 1_780_000_000_000 };
const CLIENT: ClientId = ClientId(1);

fn frame(fill: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut out = BytesMut::new();
    fill(&mut out);
    next_frame(&mut out, DEFAULT_MAX_FRAME).ok().flatten().expect("one whole frame")
}

fn request(xid: i32, req: &Request) -> Bytes {
    frame(|out| encode_request(out, RequestHeader { xid, op: req.opcode() }, req))
}

/// The durable point after everything appended so far (standalone replies wait for it).
fn settle(r: &mut Replica, out: &mut Vec<Output>) {
    let last = out.iter().rev().find_map(|o| match o {
        Output::Append(t) => Some(t.header.zxid),
        _ => None,
    });
    if let Some(zxid) = last {
        r.step(NOW, Input::LogDurable { zxid }, out);
    }
}

/// A standalone replica with one session and `/bench` holding 100 bytes.
fn replica() -> Replica {
    let cfg = ServiceConfig {
        server_id: ServerId(1),
        tick_ms: 2000,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40000,
        super_digest: None,
        reconfig_enabled: false,
        container_check_ms: 60_000,
        planted: Default::default(),
    };
    let svc = Service::new(cfg, DataTree::new(), SessionTable::new(ServerId(1), NOW.wall_ms), NOW.ms);
    let mut r = Replica::standalone(svc);
    let mut out = Vec::new();
    r.step(NOW, Input::ClientConnected { client: CLIENT, addr: "127.0.0.1:1".into() }, &mut out);
    let connect = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    let f = frame(|o| encode_connect_request(o, &connect));
    r.step(NOW, Input::ClientFrame { client: CLIENT, frame: &f }, &mut out);
    settle(&mut r, &mut out);
    let create = Request::Create(arbor::jute::CreateRequest {
        kind: arbor::jute::CreateKind::Create,
        path: "/bench".into(),
        data: Some(vec![0x5a; 100]),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl_ms: -1,
    });
    let f = request(1, &create);
    out.clear();
    r.step(NOW, Input::ClientFrame { client: CLIENT, frame: &f }, &mut out);
    settle(&mut r, &mut out);
    // The root, /zookeeper, its config and quota nodes, and /bench: else the session or the
    // create failed and the bench would measure an error path.
    let before = DataTree::new().node_count();
    assert_eq!(r.service().tree().node_count(), before + 1, "/bench was created");
    r
}

fn hot_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("replica");
    g.throughput(Throughput::Elements(1));

    let mut r = replica();
    let get = request(2, &Request::GetData { path: "/bench".into(), watch: false });
    let mut out = Vec::with_capacity(16);
    g.bench_function("getData (frame to reply bytes)", |b| {
        b.iter(|| {
            out.clear();
            r.step(NOW, Input::ClientFrame { client: CLIENT, frame: black_box(&get) }, &mut out);
            black_box(out.len())
        })
    });

    let mut r = replica();
    let set = request(3, &Request::SetData { path: "/bench".into(), data: Some(vec![0x33; 100]), version: -1 });
    let mut out = Vec::with_capacity(16);
    let mut durable = Zxid::ZERO;
    g.bench_function("setData (frame, append, durable, reply)", |b| {
        b.iter(|| {
            out.clear();
            r.step(NOW, Input::ClientFrame { client: CLIENT, frame: black_box(&set) }, &mut out);
            for o in &out {
                if let Output::Append(t) = o {
                    durable = t.header.zxid;
                }
            }
            r.step(NOW, Input::LogDurable { zxid: durable }, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);

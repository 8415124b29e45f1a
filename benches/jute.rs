//! Codec hot paths: decoding the two most common requests and encoding the most common reply.
//! Run with `cargo bench --bench jute`.

use arbor::jute::{
    decode_request, encode_reply, encode_request, next_frame, CreateKind, CreateRequest, ReplyHeader,
    Request, RequestHeader, Response, DEFAULT_MAX_FRAME,
};
use arbor::proto::{Acl, Stat};
use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn payload(header: RequestHeader, req: &Request) -> Bytes {
    let mut out = BytesMut::new();
    encode_request(&mut out, header, req);
    next_frame(&mut out, DEFAULT_MAX_FRAME).ok().flatten().expect("one whole frame")
}

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0001,
        mzxid: 0x1_0000_0002,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 1,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 100,
        num_children: 0,
        pzxid: 0x1_0000_0001,
    }
}

fn decode(c: &mut Criterion) {
    let get_data = payload(
        RequestHeader { xid: 7, op: 4 },
        &Request::GetData { path: "/app/config/service-42".into(), watch: true },
    );
    let create = payload(
        RequestHeader { xid: 8, op: 15 },
        &Request::Create(CreateRequest {
            kind: CreateKind::Create2,
            path: "/app/locks/lock-".into(),
            data: Some(vec![0x5a; 100]),
            acl: Acl::open_unsafe(),
            flags: 3,
            ttl_ms: -1,
        }),
    );
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("getData request", |b| b.iter(|| decode_request(black_box(&get_data))));
    g.bench_function("create2 request (100 B data)", |b| b.iter(|| decode_request(black_box(&create))));
    g.finish();
}

fn encode(c: &mut Criterion) {
    let resp = Response::GetData { data: Some(vec![0x5a; 100]), stat: stat() };
    let header = ReplyHeader { xid: 7, zxid: 0x1_0000_0002, err: 0 };
    let mut out = BytesMut::with_capacity(4096);
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("getData reply (100 B data + Stat)", |b| {
        b.iter(|| {
            out.clear();
            encode_reply(&mut out, header, black_box(&resp));
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);

//! Storage throughput: txn log appends (group commit of 100 records, and one record per
//! fsync; with and without fsync), snapshot serialize / write / load at 100k znodes.
//! 1M/2M znodes and restart-to-serving: `cargo run --release --example restart_time`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use arbor::proto::{Acl, ServerId, SessionId, Zxid};
use arbor::session::SessionTable;
use arbor::storage::{snapshot, LogOptions, TxnLog};
use arbor::tree::DataTree;
use arbor::txn::{Txn, TxnHeader, TxnOp};

fn set_data(z: i64) -> Txn {
    Txn {
        header: TxnHeader { session: SessionId(1), cxid: z as i32, zxid: Zxid(z), time_ms: 1_700_000_000_000 },
        op: TxnOp::SetData { path: "/bench/some/node".into(), data: Some(vec![7u8; 100]), version: z as i32 },
    }
}

fn log_appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("txnlog");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for (force_sync, batch) in [(true, 100usize), (true, 1), (false, 100), (false, 1)] {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = TxnLog::open(dir.path(), LogOptions { segment_bytes: 64 << 20, force_sync }, Zxid::ZERO, |_| Ok(())).expect("open");
        let mut z = 0i64;
        g.throughput(Throughput::Elements(batch as u64));
        let name = format!("append_{}_per_sync_{}", batch, if force_sync { "fsync" } else { "nofsync" });
        g.bench_function(name, |b| {
            b.iter(|| {
                log.ensure_spare().expect("spare");
                for _ in 0..batch {
                    z += 1;
                    log.append(&set_data(z)).expect("append");
                }
                log.sync().expect("sync");
            })
        });
    }
    g.finish();
}

fn tree(n: usize) -> DataTree {
    let mut t = DataTree::new();
    let mut trig = Vec::new();
    let mut z = Zxid::new(1, 0);
    let mut mk = |t: &mut DataTree, path: String, pc: i32| {
        z = z.next();
        let op = TxnOp::Create { path, data: Some(vec![7u8; 100]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: pc };
        t.apply(&Txn { header: TxnHeader { session: SessionId(1), cxid: 0, zxid: z, time_ms: 1 }, op }, &mut trig);
    };
    mk(&mut t, "/b".into(), 2);
    for d in 0..100 {
        mk(&mut t, format!("/b/d{d:03}"), d + 1);
    }
    for i in 0..n {
        mk(&mut t, format!("/b/d{:03}/n{i:07}", i % 100), (i / 100) as i32 + 1);
    }
    t
}

fn snapshots(c: &mut Criterion) {
    let n = 100_000;
    let mut t = tree(n);
    let sessions = SessionTable::new(ServerId(1), 0);
    let dir = tempfile::tempdir().expect("tmp");
    let mut g = c.benchmark_group("snapshot_100k");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("serialize", |b| b.iter(|| snapshot::encode(&t, &sessions)));
    // What a server's loop spends on a snapshot in all: freeze, then slot-order slices of
    // 2048 nodes into the record encoder (the writer thread's part is not counted).
    g.bench_function("freeze_and_encode_in_slices", |b| {
        b.iter(|| {
            t.begin_freeze();
            let mut enc = snapshot::BodyEncoder::new(1 << 20);
            loop {
                enc.new_step();
                let p = t.freeze_step(2048, 512 << 10, |path, v| enc.node(path, &v));
                if enc.body.len() >= 1 << 20 {
                    enc.body.clear();
                }
                if p.finished {
                    break enc.nodes;
                }
            }
        })
    });
    let image = snapshot::encode(&t, &sessions);
    g.bench_function("write_fsync", |b| b.iter(|| snapshot::write_image(dir.path(), &image).expect("write")));
    let (path, _) = snapshot::write_image(dir.path(), &image).expect("write");
    g.bench_function("load", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                let l = snapshot::load(&path).expect("load");
                total += t0.elapsed();
                drop(l);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, log_appends, snapshots);
criterion_main!(benches);

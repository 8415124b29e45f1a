//! DataTree throughput: applying creates, path lookup, getData + stat, setData, on a tree
//! of 100k znodes (100 directories of 1000 children, 100-byte data).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use arbor::proto::{Acl, SessionId, Zxid};
use arbor::tree::DataTree;
use arbor::txn::{Txn, TxnHeader, TxnOp};

const NODES: usize = 100_000;
const DIRS: usize = 100;

fn header(zxid: Zxid) -> TxnHeader {
    TxnHeader { session: SessionId(1), cxid: 0, zxid, time_ms: 1_700_000_000_000 }
}

fn create(zxid: Zxid, path: String, parent_cversion: i32) -> Txn {
    let op = TxnOp::Create { path, data: Some(vec![7u8; 100]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion };
    Txn { header: header(zxid), op }
}

/// The creates for the whole tree, directories first; prep-style parent cversions.
fn create_txns() -> Vec<Txn> {
    let mut zxid = Zxid::new(1, 0);
    let mut next = || {
        zxid = zxid.next();
        zxid
    };
    let mut txns = vec![create(next(), "/b".into(), 2)];
    for d in 0..DIRS {
        txns.push(create(next(), format!("/b/d{d:03}"), d as i32 + 1));
    }
    for i in 0..NODES {
        let d = i % DIRS;
        txns.push(create(next(), format!("/b/d{d:03}/n{i:07}"), (i / DIRS) as i32 + 1));
    }
    txns
}

fn build(txns: &[Txn]) -> DataTree {
    let mut tree = DataTree::new();
    let mut triggers = Vec::new();
    for t in txns {
        triggers.clear();
        tree.apply(t, &mut triggers);
    }
    tree
}

fn leaf_paths() -> Vec<String> {
    // A fixed pseudo-random order so lookups do not walk the arena sequentially.
    (0..NODES).map(|i| (i * 7919) % NODES).map(|i| format!("/b/d{:03}/n{i:07}", i % DIRS)).collect()
}

fn benches(c: &mut Criterion) {
    let txns = create_txns();
    let paths = leaf_paths();

    let mut g = c.benchmark_group("tree");
    g.sample_size(10);
    g.throughput(Throughput::Elements(txns.len() as u64));
    g.bench_function("apply_create_100k", |b| {
        b.iter_batched(|| txns.clone(), |txns| black_box(build(&txns)), BatchSize::LargeInput)
    });

    let tree = build(&txns);
    g.throughput(Throughput::Elements(NODES as u64));
    g.bench_function("lookup_100k", |b| {
        b.iter(|| {
            for p in &paths {
                black_box(tree.lookup(p));
            }
        })
    });
    g.bench_function("get_data_and_stat_100k", |b| {
        b.iter(|| {
            for p in &paths {
                if let Some(id) = tree.lookup(p) {
                    black_box((tree.data(id), tree.stat(id)));
                }
            }
        })
    });

    let mut tree = tree;
    let mut zxid = tree.last_applied();
    let mut version = 0;
    let mut triggers = Vec::new();
    g.bench_function("apply_set_data_100k", |b| {
        b.iter_batched(
            || {
                version += 1;
                paths
                    .iter()
                    .map(|p| {
                        zxid = zxid.next();
                        Txn { header: header(zxid), op: TxnOp::SetData { path: p.clone(), data: Some(vec![9u8; 100]), version } }
                    })
                    .collect::<Vec<_>>()
            },
            |batch| {
                for t in &batch {
                    triggers.clear();
                    black_box(tree.apply(t, &mut triggers));
                }
                batch
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(tree_benches, benches);
criterion_main!(tree_benches);

//! Memory footprint of the DataTree at scale.
//!
//! Builds N znodes (default 1,000,000) shaped like `/bench/dir-XXX/node-XXXXXXX` with 100
//! bytes of data over 1000 directories, by applying Create txns as a server would, then
//! prints the raw floor (full path + data + 68-byte Stat per node), the heap bytes actually
//! requested (counted by a wrapping global allocator) and the RSS growth, with ratios.
//!
//! Run: `cargo run --release --example tree_mem -- [N]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use arbor::proto::{Acl, SessionId, Zxid};
use arbor::tree::DataTree;
use arbor::txn::{Txn, TxnHeader, TxnOp};

/// Counts live heap bytes (requested sizes; malloc's own headers show up only in RSS).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

const DIRS: usize = 1000;
const DATA_LEN: usize = 100;
const STAT_LEN: usize = 68;

fn main() {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => match a.parse() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("usage: tree_mem [NODES]");
                std::process::exit(2);
            }
        },
        None => 1_000_000,
    };
    let rss0 = rss_bytes();
    let heap0 = LIVE.load(Ordering::Relaxed);
    let mut tree = DataTree::new();
    let mut zxid = Zxid::new(1, 0);
    let mut triggers = Vec::new();
    let data = vec![b'x'; DATA_LEN];
    let mut floor = 0usize;
    let mut apply = |tree: &mut DataTree, path: String, parent_cversion: i32, floor: &mut usize| {
        zxid = zxid.next();
        *floor += path.len() + DATA_LEN + STAT_LEN;
        let txn = Txn {
            header: TxnHeader { session: SessionId(1), cxid: 0, zxid, time_ms: 1_700_000_000_000 },
            op: TxnOp::Create { path, data: Some(data.clone()), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion },
        };
        triggers.clear();
        tree.apply(&txn, &mut triggers);
    };
    // Directories and leaves both count: every znode pays the same per-node overhead.
    apply(&mut tree, "/bench".to_string(), 2, &mut floor);
    let dirs = DIRS.min(n.max(1));
    for d in 0..dirs {
        apply(&mut tree, format!("/bench/dir-{d:03}"), d as i32 + 1, &mut floor);
    }
    let mut created = vec![0i32; dirs];
    for i in 0..n.saturating_sub(dirs + 1) {
        let d = i % dirs;
        created[d] += 1;
        apply(&mut tree, format!("/bench/dir-{d:03}/node-{i:07}"), created[d], &mut floor);
    }
    let heap = LIVE.load(Ordering::Relaxed) - heap0;
    let rss = rss_bytes().saturating_sub(rss0);
    let nodes = tree.node_count();
    let per = |b: usize| b as f64 / nodes as f64;
    println!("nodes:              {nodes}");
    println!("raw floor:          {floor} B  ({:.1} B/node)", per(floor));
    println!("heap allocated:     {heap} B  ({:.1} B/node, {:.2}x floor)", per(heap), heap as f64 / floor as f64);
    println!("  of which arena+index+sets: {} B ({:.1} B/node)", tree.structure_bytes(), per(tree.structure_bytes()));
    println!("RSS delta:          {rss} B  ({:.1} B/node, {:.2}x floor)", per(rss), rss as f64 / floor as f64);
    println!("approx data size:   {}", tree.approximate_data_size());
}

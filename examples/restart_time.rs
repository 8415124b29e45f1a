//! Snapshot and restart numbers for big trees (too slow for criterion).
//!
//! `cargo run --release --example restart_time -- [znodes] [path/to/arbor]`
//!
//! Builds a tree of `znodes` (default 2M: 1000 directories, 100-byte data), then reports
//! the loop stall of a snapshot (serializing the tree in memory), the background write
//! (chunk CRCs + write + fsync + rename), and the load time. With an `arbor` binary, it
//! also writes that snapshot into a fresh dataDir, starts `arbor node 1` on it and times
//! from spawn until a getData of the last znode is answered (restart-to-serving).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use arbor::jute::{self, ConnectRequest, Request, RequestHeader};
use arbor::proto::{Acl, ServerId, SessionId, Zxid};
use arbor::session::SessionTable;
use arbor::storage::snapshot;
use arbor::tree::DataTree;
use arbor::txn::{Txn, TxnHeader, TxnOp};

const DIRS: usize = 1000;

fn create(zxid: Zxid, path: String, parent_cversion: i32) -> Txn {
    let op = TxnOp::Create { path, data: Some(vec![7u8; 100]), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion };
    Txn { header: TxnHeader { session: SessionId(1), cxid: 0, zxid, time_ms: 1_700_000_000_000 }, op }
}

pub fn build(n: usize) -> (DataTree, String) {
    let mut tree = DataTree::new();
    let mut trig = Vec::new();
    let mut z = Zxid::new(1, 0);
    let mut apply = |tree: &mut DataTree, path: String, pc: i32| {
        z = z.next();
        tree.apply(&create(z, path, pc), &mut trig);
    };
    apply(&mut tree, "/b".into(), 2);
    for d in 0..DIRS {
        apply(&mut tree, format!("/b/d{d:04}"), d as i32 + 1);
    }
    let mut last = String::new();
    for i in 0..n.saturating_sub(DIRS + 1) {
        let d = i % DIRS;
        last = format!("/b/d{d:04}/n{i:08}");
        apply(&mut tree, last.clone(), (i / DIRS) as i32 + 1);
    }
    (tree, last)
}

fn get_data_answered(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut out = BytesMut::new();
    let req = ConnectRequest { protocol_version: 0, last_zxid_seen: 0, timeout_ms: 30_000, session_id: 0, passwd: vec![0; 16], read_only: Some(false) };
    jute::encode_connect_request(&mut out, &req);
    jute::encode_request(&mut out, RequestHeader { xid: 1, op: 4 }, &Request::GetData { path: path.into(), watch: false });
    if s.write_all(&out).is_err() {
        return false;
    }
    let mut buf = BytesMut::new();
    let mut frames = 0;
    let mut tmp = [0u8; 4096];
    while frames < 2 {
        match jute::next_frame(&mut buf, 1 << 20) {
            Ok(Some(f)) => {
                frames += 1;
                if frames == 2 {
                    return jute::decode_reply_header(&f).map(|(h, _)| h.err == 0).unwrap_or(false);
                }
                continue;
            }
            Ok(None) => {}
            Err(_) => return false,
        }
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    false
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let binary = args.next();
    let t = Instant::now();
    let (mut tree, last) = build(n);
    println!("built {} znodes in {:.2} s", tree.node_count(), t.elapsed().as_secs_f64());
    let sessions = SessionTable::new(ServerId(1), 0);

    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let t = Instant::now();
    let image = snapshot::encode(&tree, &sessions);
    let stall = t.elapsed();
    let t = Instant::now();
    let (path, size) = snapshot::write_image(&data_dir, &image).expect("write snapshot");
    let write = t.elapsed();
    drop(image);
    println!(
        "snapshot of {n} znodes: loop stall (serialize) {:.0} ms; background write+fsync {:.0} ms; {} MiB",
        stall.as_secs_f64() * 1e3,
        write.as_secs_f64() * 1e3,
        size >> 20
    );
    // The server's way: freeze, encode a slice per loop turn, a thread writes.
    let stream_dir = dir.path().join("streamed");
    let cfg = arbor::storage::StorageConfig {
        data_dir: stream_dir.clone(),
        data_log_dir: stream_dir,
        snap_count: u64::MAX,
        force_sync: true,
        segment_bytes: 1 << 20,
        snap_retain_count: 3,
        purge_interval_h: 0,
    };
    let mut storage = arbor::storage::recover(cfg, ServerId(1), 0, 0).expect("storage").storage;
    let t = Instant::now();
    storage.start_snapshot(&mut tree, &sessions);
    let (mut steps, mut in_steps) = (0u64, std::time::Duration::ZERO);
    while storage.running_snapshot().is_some() {
        let s = Instant::now();
        storage.snapshot_step(&mut tree);
        in_steps += s.elapsed();
        steps += 1;
    }
    println!(
        "streamed snapshot of {n} znodes: {steps} steps, {:.0} ms of loop time in all, longest {:.2} ms; done after {:.0} ms",
        in_steps.as_secs_f64() * 1e3,
        storage.stats.longest_snapshot_stall_us as f64 / 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(tree);
    let t = Instant::now();
    let loaded = snapshot::load(&path).expect("load");
    println!("snapshot load: {:.0} ms ({} znodes)", t.elapsed().as_secs_f64() * 1e3, loaded.tree.node_count());
    drop(loaded);

    let Some(binary) = binary else { return };
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, format!("tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n", data_dir.display()))
        .expect("write cfg");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let t = Instant::now();
    let mut child = Command::new(&binary)
        .args(["node", "1"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn arbor");
    while !get_data_answered(addr, &last) {
        if t.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("restart-to-serving with {n} znodes: {:.2} s (first getData {last} answered)", t.elapsed().as_secs_f64());
    let _ = child.kill();
    let _ = child.wait();
}

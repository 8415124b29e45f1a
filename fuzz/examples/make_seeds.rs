//! Builds the committed seed corpora (fuzz/seeds/<target>/) from real data:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds -- DATA_DIR OUT_DIR
//!
//! DATA_DIR is the dataDir of a standalone arbor that took some client writes (see the
//! "Fuzzing" section of README.md); its txn log segments and snapshots become seeds of
//! `txnlog_reader` and `snapshot_reader`, and its txns, wrapped in the peer messages a leader
//! sends, seeds of `peer_message`. `jute_request` is seeded with the client frames recorded
//! in tests/fixtures/wire-replies-zk38.txt (the requests of tests/wire_replies.rs as a real
//! client sends them).

use std::fs;
use std::path::{Path, PathBuf};

use arbor::peer::{encode, ElectionMsg, Notification, PeerState, QuorumMsg, Vote};
use arbor::proto::{Id, ServerId, SessionId, Zxid};
use arbor::storage::{snapshot, txnlog, LogReader};
use bytes::{BufMut, BytesMut};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// A segment without its preallocated zero tail (the reader treats end of file as the end):
/// up to the end of its last record.
fn trimmed(seg: &[u8]) -> &[u8] {
    let mut off = txnlog::SEGMENT_HEADER_BYTES as usize;
    while off + txnlog::RECORD_HEADER_BYTES <= seg.len() {
        let len = u32::from_be_bytes([seg[off], seg[off + 1], seg[off + 2], seg[off + 3]]) as usize;
        if len == 0 {
            break;
        }
        off += txnlog::RECORD_HEADER_BYTES + len;
    }
    &seg[..off.min(seg.len())]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (data, out) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");

    // jute_request: every recorded client payload alone, and one connection's stream framed.
    let fixture = fs::read_to_string(root.join("tests/fixtures/wire-replies-zk38.txt")).unwrap();
    let dir = out.join("jute_request");
    let mut stream = BytesMut::new();
    let mut requests = Vec::new();
    for (i, line) in fixture.lines().enumerate() {
        let mut f = line.split(' ');
        let (Some(kind), Some(conn), Some(hex)) = (f.next(), f.next(), f.next()) else { continue };
        if kind != "connect" && kind != "send" {
            continue;
        }
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|j| u8::from_str_radix(&hex[j..j + 2], 16).unwrap()).collect();
        write(&dir, &format!("{kind}-{i:03}"), &bytes);
        if conn == "0" {
            stream.put_u32(bytes.len() as u32);
            stream.put_slice(&bytes);
        }
        if kind == "send" {
            requests.push(bytes);
        }
    }
    write(&dir, "stream-conn0", &stream);

    // txnlog_reader: flags byte + segment (0: CRCs as stored; 1: CRCs rewritten; 3: split).
    let dir = out.join("txnlog_reader");
    let segs = txnlog::segments(&data).unwrap();
    let mut all = Vec::new();
    for (z, path) in &segs {
        let seg = fs::read(path).unwrap();
        let t = trimmed(&seg);
        all.push(t.to_vec());
        write(&dir, &format!("log-{z:x}"), &[&[0u8][..], t].concat());
        // A torn tail: the last record cut in the middle.
        write(&dir, &format!("log-{z:x}-torn"), &[&[0u8][..], &t[..t.len() - 5]].concat());
    }
    if all.len() >= 2 {
        let split = (all[0].len() as u16).to_be_bytes();
        write(&dir, "two-segments", &[&[3u8, split[0], split[1]][..], &all[0], &all[1]].concat());
    }
    let txns: Vec<_> = LogReader::new(&data, Zxid(0)).unwrap().collect::<Result<_, _>>().unwrap();

    // snapshot_reader: flags byte + file.
    let dir = out.join("snapshot_reader");
    let snaps = snapshot::list(&data).unwrap();
    for (z, path) in &snaps {
        write(&dir, &format!("snapshot-{:x}", z.0), &[&[1u8][..], &fs::read(path).unwrap()].concat());
    }

    // peer_message: one framed message per file, and a leader's sync as one stream.
    let dir = out.join("peer_message");
    let vote = Vote { leader: ServerId(3), zxid: Zxid::new(1, 0x9c), epoch: 1 };
    let election = [
        ElectionMsg::Hello { from: ServerId(2) },
        ElectionMsg::Notification(Notification { sender: ServerId(2), state: PeerState::Looking, vote, round: 4 }),
        ElectionMsg::Notification(Notification { sender: ServerId(3), state: PeerState::Leading, vote, round: 4 }),
    ];
    for (i, m) in election.iter().enumerate() {
        let mut b = BytesMut::new();
        encode(&mut b, m);
        write(&dir, &format!("election-{i}"), &b);
    }
    let snap_bytes = snaps.last().map(|(_, p)| fs::read(p).unwrap()).unwrap_or_default();
    let last = txns.last().map_or(Zxid(0), |t| t.header.zxid);
    let mut quorum = vec![
        QuorumMsg::FollowerInfo { from: ServerId(2), accepted_epoch: 1, last_zxid: Zxid(0x28) },
        QuorumMsg::NewEpoch { epoch: 2 },
        QuorumMsg::AckEpoch { current_epoch: 1, last_zxid: Zxid(0x28) },
        QuorumMsg::Diff { last_zxid: Zxid(0x28) },
        QuorumMsg::Trunc { zxid: Zxid(0x20) },
        QuorumMsg::SnapBegin { zxid: last, size: snap_bytes.len() as u64 },
        QuorumMsg::SnapChunk { data: snap_bytes[..snap_bytes.len().min(512)].to_vec() },
        QuorumMsg::SnapEnd,
        QuorumMsg::NewLeader { epoch: 2, zxid: Zxid::new(2, 0) },
        QuorumMsg::Ack { zxid: Zxid::new(2, 0) },
        QuorumMsg::UpToDate,
        QuorumMsg::Ping { zxid: last },
        QuorumMsg::PingReply { touched: vec![SessionId(0x1000_0000_0001), SessionId(7)] },
        QuorumMsg::CreateSession { session: SessionId(0x1000_0000_0002), timeout_ms: 10000 },
        QuorumMsg::Sync { session: SessionId(0x1000_0000_0002), cxid: 9, path: "/app".into() },
        QuorumMsg::SyncDone { session: SessionId(0x1000_0000_0002), cxid: 9, path: "/app".into() },
    ];
    for body in requests.iter().filter(|b| b.len() > 8).take(6) {
        let op = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        quorum.push(QuorumMsg::Request {
            session: SessionId(0x1000_0000_0002),
            cxid: 3,
            op,
            body: body.clone(),
            auth: vec![Id::new("ip", "127.0.0.1")],
        });
    }
    // One proposal of each kind of txn op in the log.
    let mut kinds = std::collections::HashSet::new();
    for t in &txns {
        let kind = format!("{:?}", t.op).split([' ', '{', '(']).next().unwrap().to_string();
        if kinds.insert(kind) {
            quorum.push(QuorumMsg::Proposal(t.clone()));
            quorum.push(QuorumMsg::Commit { zxid: t.header.zxid });
        }
    }
    let mut sync = BytesMut::new();
    for (i, m) in quorum.iter().enumerate() {
        let mut b = BytesMut::new();
        encode(&mut b, m);
        write(&dir, &format!("quorum-{i:02}"), &b);
        encode(&mut sync, m);
    }
    write(&dir, "quorum-stream", &sync);
    println!("{} txns, {} segments, {} snapshots, {} requests", txns.len(), segs.len(), snaps.len(), requests.len());
}

//! Storage for the replicated ensemble: epoch files, TRUNC (`truncate_to`), SNAP
//! (`encode_snapshot` → `install`), the log tail for the in-memory history, and zxids that
//! jump at epoch changes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::tests::{cfg, create, dump, history, record_offset, replay, sample_tree, segments, txns, write_log};
use super::*;
use crate::proto::{ServerId, SessionId, Zxid};
use crate::session::SessionTable;
use crate::tree::DataTree;
use crate::txn::{Txn, TxnHeader, TxnOp};

const SEG: u64 = 64 << 10;

fn apply_all(txns: &[Txn]) -> DataTree {
    let mut tree = DataTree::new();
    let mut trig = Vec::new();
    for t in txns {
        tree.apply(t, &mut trig);
    }
    tree
}

/// Append through the event loop's interface, one sync per `batch` txns.
fn append(s: &mut Storage, txns: &[Txn], batch: usize) {
    for chunk in txns.chunks(batch) {
        for t in chunk {
            TxnSink::append(s, t).expect("append");
        }
        TxnSink::sync(s).expect("sync");
    }
}

fn open(d: &Path) -> Recovered {
    recover(cfg(d), ServerId(1), 0, 0).expect("recover")
}

fn session_list(t: &SessionTable) -> Vec<(SessionId, i32)> {
    t.iter_sorted().iter().map(|s| (s.id, s.timeout_ms)).collect()
}

/// Txns that differ from `txns(n)` at the same zxids (another leader's history).
fn other(zxids: std::ops::RangeInclusive<i64>) -> Vec<Txn> {
    zxids.map(|z| create(z, &format!("/other{z}"), b"other")).collect()
}

fn snapshot_zxids(d: &Path) -> Vec<Zxid> {
    snapshot::list(d).expect("list").into_iter().map(|(z, _)| z).collect()
}

#[test]
fn epochs_are_persisted_and_unchanged_files_are_not_rewritten() {
    let d = tempfile::tempdir().expect("tmp");
    assert_eq!(read_epochs(d.path()).expect("read"), (0, 0), "absent files read as 0");
    let mut r = open(d.path());
    r.storage.persist_epochs(1, 0).expect("persist");
    assert_eq!(read_epochs(d.path()).expect("read"), (1, 0));
    assert!(!d.path().join(CURRENT_EPOCH).exists(), "0 equals the absent file: not written");
    r.storage.persist_epochs(2, 1).expect("persist");
    let ino = fs::metadata(d.path().join(CURRENT_EPOCH)).expect("stat").ino();
    r.storage.persist_epochs(3, 1).expect("persist");
    assert_eq!(fs::metadata(d.path().join(CURRENT_EPOCH)).expect("stat").ino(), ino, "unchanged currentEpoch kept");
    assert_eq!(read_epochs(d.path()).expect("read"), (3, 1));
    drop(r);
    // A new process reads the files before deciding what is unchanged.
    let mut r = open(d.path());
    r.storage.persist_epochs(3, 3).expect("persist");
    assert_eq!(read_epochs(d.path()).expect("read"), (3, 3));
    fs::write(d.path().join(ACCEPTED_EPOCH), "junk\n").expect("write");
    assert!(read_epochs(d.path()).is_err());
}

/// Log of `n` creates in 64 KiB segments, truncated to `z`, then 40 other txns after `z`
/// (reusing cut zxids); checks the returned state, the files and a fresh recovery.
fn truncate_then_append(n: i64, z: i64) {
    let d = tempfile::tempdir().expect("tmp");
    let all = txns(n);
    let mut r = open(d.path());
    append(&mut r.storage, &all, 50);
    let (tree, sessions) = TxnSink::truncate(&mut r.storage, Zxid(z), 1).expect("truncate");
    let kept = &all[..(z.min(n) as usize)];
    assert_eq!(dump(&tree), dump(&apply_all(kept)), "z = {z}");
    assert!(sessions.is_empty());
    assert_eq!(r.storage.log().last_zxid(), Zxid(z));
    for (i, seg) in segments(d.path()).iter().enumerate() {
        let name = seg.file_name().and_then(|n| n.to_str()).and_then(|n| fsutil::parse_hex_name(n, "log.")).expect("name");
        assert!(name <= z, "segment {} survived truncation to {z}", seg.display());
        let bytes = fs::read(seg).expect("read");
        assert_eq!(bytes.len() as u64, SEG, "preallocated size kept");
        if i + 1 == segments(d.path()).len() && z < n {
            let off = record_offset(&bytes, z);
            let len = u32::from_be_bytes(bytes[off..off + 4].try_into().expect("4")) as usize;
            assert!(bytes[off + 16 + len..].iter().all(|&b| b == 0), "tail after zxid {z} zeroed");
        }
    }
    let new = other(z + 1..=z + 40);
    append(&mut r.storage, &new, 7);
    drop(r);
    let want = [kept, &new[..]].concat();
    assert_eq!(replay(d.path(), SEG, Zxid::ZERO).expect("replay"), want, "z = {z}");
    let r = open(d.path());
    assert_eq!(dump(&r.tree), dump(&apply_all(&want)), "z = {z}");
}

#[test]
fn truncate_in_the_middle_of_a_segment_then_append_reuses_cut_zxids() {
    truncate_then_append(50, 30);
}

#[test]
fn truncate_across_segments_deletes_later_ones() {
    let d = tempfile::tempdir().expect("tmp");
    write_log(d.path(), SEG, &txns(3000), 50);
    let segs = fsutil::list_by_zxid(d.path(), "log.").expect("list");
    assert!(segs.len() >= 3, "needs several segments");
    // The last record of segment 1 is one below segment 2's name.
    let boundary = segs[2].0 - 1;
    for z in [1234, boundary, boundary + 1, 17, 0, 3000, 5000] {
        truncate_then_append(3000, z);
    }
}

#[test]
fn truncate_deletes_later_snapshots_and_rebuilds_from_an_earlier_one() {
    let d = tempfile::tempdir().expect("tmp");
    history(d.path());
    let all = txns(300);
    let mut r = open(d.path());
    let (tree, _) = r.storage.truncate_to(Zxid(250), ServerId(1), 0, 0).expect("truncate");
    assert_eq!(snapshot_zxids(d.path()), vec![Zxid(100), Zxid(200)]);
    assert_eq!(dump(&tree), dump(&apply_all(&all[..250])));
    let (tree, _) = r.storage.truncate_to(Zxid(100), ServerId(1), 0, 0).expect("truncate");
    assert_eq!(snapshot_zxids(d.path()), vec![Zxid(100)]);
    assert_eq!(dump(&tree), dump(&apply_all(&all[..100])));
    let new = other(101..=120);
    append(&mut r.storage, &new, 5);
    drop(r);
    let r = open(d.path());
    assert_eq!(r.report.snapshot.as_ref().map(|s| s.0), Some(Zxid(100)));
    assert_eq!(dump(&r.tree), dump(&apply_all(&[&all[..100], &new[..]].concat())));
}

#[test]
fn truncate_below_the_oldest_state_is_an_error_and_changes_nothing() {
    let d = tempfile::tempdir().expect("tmp");
    let want = dump(&history(d.path()));
    for z in [Zxid(100), Zxid(200)] {
        fs::remove_file(snapshot::snapshot_path(d.path(), z)).expect("rm");
    }
    purge(d.path(), d.path(), 1).expect("purge");
    let segs = segments(d.path());
    let mut r = open(d.path());
    let err = TxnSink::truncate(&mut r.storage, Zxid(150), 1).err().expect("must fail");
    assert!(err.to_string().contains("cannot truncate"), "{err}");
    drop(r);
    assert_eq!(snapshot_zxids(d.path()), vec![Zxid(300)]);
    assert_eq!(segments(d.path()), segs);
    assert_eq!(dump(&open(d.path()).tree), want);
}

/// What the follower's loop does with a streamed SNAP: begin, the chunks, install.
fn install_streamed(s: &mut Storage, bytes: &[u8], zxid: Zxid, server: u64) -> io::Result<(DataTree, SessionTable)> {
    TxnSink::receive_snapshot_begin(s, zxid, bytes.len() as u64)?;
    for chunk in bytes.chunks(777) {
        TxnSink::receive_snapshot_chunk(s, chunk)?;
    }
    TxnSink::install_received_snapshot(s, zxid, server)
}

#[test]
fn streamed_snapshot_install_replaces_a_diverged_follower() {
    let (d_leader, d_follower) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let (tree, sessions) = sample_tree();
    let x = tree.last_applied();
    // The leader sends a complete snapshot file (written here without the fork).
    let leader = open(d_leader.path());
    assert_eq!(TxnSink::snapshot_file(&leader.storage, x), None);
    snapshot::write_image(d_leader.path(), &snapshot::encode(&tree, &sessions)).expect("leader snapshot");
    assert_eq!(TxnSink::newest_snapshot(&leader.storage), Some(x));
    let bytes = fs::read(TxnSink::snapshot_file(&leader.storage, x).expect("file")).expect("read");
    // The follower has its own history, past x, with a snapshot inside it.
    let mut f = open(d_follower.path());
    let diverged = other(1..=40);
    append(&mut f.storage, &diverged, 10);
    snapshot::write_image(d_follower.path(), &snapshot::encode(&apply_all(&diverged[..20]), &SessionTable::new(ServerId(2), 0)))
        .expect("snapshot");
    let (t2, s2) = install_streamed(&mut f.storage, &bytes, x, 2).expect("install");
    assert_eq!(dump(&t2), dump(&tree));
    assert_eq!(session_list(&s2), session_list(&sessions));
    assert_eq!(snapshot_zxids(d_follower.path()), vec![x], "the diverged snapshot is gone");
    assert_eq!(fs::read(snapshot::snapshot_path(d_follower.path(), x)).expect("read"), bytes);
    assert!(segments(d_follower.path()).is_empty(), "the old log is superseded");
    assert!(fs::read_dir(d_follower.path()).expect("ls").flatten().all(|e| !e.file_name().to_string_lossy().ends_with(".tmp")));
    assert_eq!(f.storage.log().last_zxid(), x);
    // The log restarts after x; zxids may jump (a new epoch).
    let e = 1i64 << 32;
    let later: Vec<Txn> = (1..=3).map(|c| create(e | c, &format!("/after{c}"), b"later")).collect();
    append(&mut f.storage, &later, 2);
    assert_eq!(segments(d_follower.path()), vec![d_follower.path().join(format!("log.{:x}", x.0 + 1))]);
    drop(f);
    let r = open(d_follower.path());
    assert_eq!(r.report.snapshot.as_ref().map(|s| s.0), Some(x));
    assert_eq!(r.report.replayed, 3);
    let mut want = tree;
    let mut trig = Vec::new();
    for t in &later {
        want.apply(t, &mut trig);
    }
    assert_eq!(dump(&r.tree), dump(&want));
    assert_eq!(session_list(&r.sessions), session_list(&sessions));
}

#[test]
fn install_of_damaged_bytes_fails_cleanly_and_changes_nothing() {
    let d = tempfile::tempdir().expect("tmp");
    let (tree, sessions) = sample_tree();
    let bytes = snapshot::to_bytes(&snapshot::encode(&tree, &sessions));
    let x = tree.last_applied();
    let mine = txns(10);
    let mut r = open(d.path());
    append(&mut r.storage, &mine, 10);
    let mut tried = 0;
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            let err = install_streamed(&mut r.storage, &bad, x, 1).err().unwrap_or_else(|| panic!("bit {bit:#x} of byte {i}"));
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {i}: {err}");
            assert!(err.to_string().contains("cannot install the leader's snapshot"), "{err}");
            tried += 1;
        }
    }
    for len in 0..bytes.len() {
        assert!(install_streamed(&mut r.storage, &bytes[..len], x, 1).is_err(), "truncated to {len} bytes");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(install_streamed(&mut r.storage, &longer, x, 1).is_err(), "bytes after the end chunk");
    // A whole, valid snapshot announced at another zxid is refused too.
    let err = install_streamed(&mut r.storage, &bytes, Zxid(x.0 + 1), 1).err().expect("wrong zxid");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    // Chunks with no snapshot begun are an error, not a panic.
    assert!(TxnSink::receive_snapshot_chunk(&mut r.storage, b"stray").is_err());
    assert!(tried > 100);
    assert!(snapshot_zxids(d.path()).is_empty());
    assert!(fs::read_dir(d.path()).expect("ls").flatten().all(|e| !e.file_name().to_string_lossy().ends_with(".tmp")), "no partial file left");
    // Still usable, and nothing was lost.
    append(&mut r.storage, &txns(11)[10..], 1);
    drop(r);
    assert_eq!(dump(&open(d.path()).tree), dump(&apply_all(&txns(11))));
}

#[test]
fn garbage_snapshot_bodies_with_valid_crcs_are_errors() {
    // Bodies an attacker (or a bug) could frame correctly: the parser must reject them.
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x42],
        vec![0xFF, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        // A node whose parent does not exist.
        [&[0x01u8, 0, 0, 0, 0, 0, 0, 0, 0][..], &[0x02, 4, 0, 0, 0], b"/a/b", &[0xFF; 4], &[0; 4], &[0; 52]].concat(),
        // A node with an ACL id never defined, and a path that is not absolute.
        [&[0x02u8, 1, 0, 0, 0][..], b"a", &[0xFF; 4], &[9, 0, 0, 0], &[0; 52]].concat(),
        // A string length far past the end.
        vec![0x02, 0xFF, 0xFF, 0xFF, 0x7F, b'/'],
    ];
    for body in bodies {
        let image = snapshot::SnapshotImage { zxid: Zxid(9), body: body.clone(), nodes: 0, sessions: 0 };
        assert!(snapshot::decode(&snapshot::to_bytes(&image), "test").is_err(), "{body:?}");
    }
}

#[test]
fn recent_txns_returns_the_tail_in_order_across_segments() {
    let d = tempfile::tempdir().expect("tmp");
    let all = txns(3000);
    write_log(d.path(), SEG, &all, 50);
    assert!(segments(d.path()).len() >= 3);
    assert_eq!(recent_txns(d.path(), Zxid::ZERO, 100).expect("tail"), all[2900..].to_vec());
    assert_eq!(recent_txns(d.path(), Zxid::ZERO, 2500).expect("tail"), all[500..].to_vec());
    assert_eq!(recent_txns(d.path(), Zxid::ZERO, 10_000).expect("tail"), all);
    assert_eq!(recent_txns(d.path(), Zxid(2950), 100).expect("tail"), all[2950..].to_vec());
    assert!(recent_txns(d.path(), Zxid::ZERO, 0).expect("tail").is_empty());
    assert!(recent_txns(d.path(), Zxid(3000), 10).expect("tail").is_empty());
    let r = open(d.path());
    assert_eq!(r.storage.recent_txns(3).expect("tail"), all[2997..].to_vec());
    drop(r);
    // A purged log start is not an error: the history is what the log still holds.
    fs::remove_file(&segments(d.path())[0]).expect("rm");
    assert_eq!(recent_txns(d.path(), Zxid::ZERO, 100).expect("tail"), all[2900..].to_vec());
    assert!(recent_txns(&d.path().join("missing"), Zxid::ZERO, 10).expect("no dir").is_empty());
}

#[test]
fn zxids_that_jump_at_epoch_changes_recover_and_purge() {
    let d = tempfile::tempdir().expect("tmp");
    let e1 = 1i64 << 32;
    let e2 = 2i64 << 32;
    let mk = |z: i64| create(z, &format!("/z{z:x}"), b"v");
    let first: Vec<Txn> = (1..=3).map(|c| mk(e1 | c)).collect();
    let mut r = open(d.path());
    append(&mut r.storage, &first, 3);
    drop(r);
    // A log that starts at 0x100000001 is not a gap after zxid 0.
    assert_eq!(segments(d.path()), vec![d.path().join("log.1")]);
    let mut r = open(d.path());
    assert_eq!(dump(&r.tree), dump(&apply_all(&first)));
    snapshot::write_image(d.path(), &snapshot::encode(&r.tree, &r.sessions)).expect("snapshot");
    // What `start_snapshot` does to the log, without forking in a test process.
    r.storage.log.request_roll();
    let second: Vec<Txn> = (1..=3).map(|c| mk(e2 | c)).collect();
    append(&mut r.storage, &second, 3);
    drop(r);
    assert_eq!(segments(d.path()), vec![d.path().join("log.1"), d.path().join(format!("log.{:x}", (e1 | 3) + 1))]);
    let report = purge(d.path(), d.path(), 1).expect("purge");
    assert_eq!(report.segments, vec![d.path().join("log.1")], "everything in log.1 is in the snapshot");
    let r = open(d.path());
    assert_eq!(r.report.replayed, 3);
    assert_eq!(dump(&r.tree), dump(&apply_all(&[&first[..], &second[..]].concat())));
}

#[test]
fn sessions_survive_truncation() {
    let d = tempfile::tempdir().expect("tmp");
    let s = SessionId((1i64 << 56) | 5);
    let mk = |z: i64, op: TxnOp| Txn { header: TxnHeader { session: s, cxid: 0, zxid: Zxid(z), time_ms: 1 }, op };
    let t = vec![
        mk(1, TxnOp::CreateSession { timeout_ms: 5000 }),
        mk(2, TxnOp::Create { path: "/e".into(), data: None, acl: crate::proto::Acl::open_unsafe(), ephemeral_owner: s.0, parent_cversion: 1 }),
        mk(3, TxnOp::CloseSession),
    ];
    let mut r = open(d.path());
    append(&mut r.storage, &t, 1);
    let (tree, sessions) = r.storage.truncate_to(Zxid(2), ServerId(1), 0, 100).expect("truncate");
    assert_eq!(sessions.get(s).map(|x| (x.timeout_ms, x.deadline_ms)), Some((5000, 5100)));
    assert_eq!(tree.ephemerals(s), vec!["/e".to_string()]);
}

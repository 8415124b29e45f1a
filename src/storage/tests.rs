//! Storage unit tests: log round trips and damage, snapshots and fallback, purge, epochs,
//! recovery of tree + sessions.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::proto::{Acl, ServerId, SessionId, Zxid};
use crate::session::SessionTable;
use crate::tree::DataTree;
use crate::txn::{Txn, TxnHeader, TxnOp};

pub(super) fn create(z: i64, path: &str, data: &[u8]) -> Txn {
    Txn {
        header: TxnHeader { session: SessionId(7), cxid: z as i32, zxid: Zxid(z), time_ms: 1_700_000_000_000 + z },
        op: TxnOp::Create { path: path.into(), data: Some(data.to_vec()), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: z as i32 },
    }
}

pub(super) fn opts(segment_bytes: u64) -> LogOptions {
    LogOptions { segment_bytes, force_sync: true }
}

/// Append `txns` in batches of `batch` (one sync per batch).
pub(super) fn write_log(dir: &Path, segment_bytes: u64, txns: &[Txn], batch: usize) {
    let mut log = TxnLog::open(dir, opts(segment_bytes), Zxid::ZERO, |_| Ok(())).expect("open");
    for chunk in txns.chunks(batch) {
        log.ensure_spare().expect("spare");
        for t in chunk {
            log.append(t).expect("append");
        }
        log.sync().expect("sync");
    }
}

pub(super) fn replay(dir: &Path, segment_bytes: u64, after: Zxid) -> Result<Vec<Txn>, StorageError> {
    let mut got = Vec::new();
    TxnLog::open(dir, opts(segment_bytes), after, |t| {
        got.push(t);
        Ok(())
    })?;
    Ok(got)
}

pub(super) fn txns(n: i64) -> Vec<Txn> {
    (1..=n).map(|z| create(z, &format!("/n{z}"), format!("data-{z}").as_bytes())).collect()
}

pub(super) fn segments(dir: &Path) -> Vec<PathBuf> {
    fsutil::list_by_zxid(dir, txnlog::SEGMENT_PREFIX).expect("list").into_iter().map(|(_, p)| p).collect()
}

/// Byte offset of the record with zxid `z` in a segment image.
pub(super) fn record_offset(bytes: &[u8], z: i64) -> usize {
    let mut off = txnlog::SEGMENT_HEADER_BYTES as usize;
    loop {
        let len = u32::from_be_bytes(bytes[off..off + 4].try_into().expect("4 bytes")) as usize;
        assert!(len > 0, "zxid {z} not found");
        let zx = i64::from_be_bytes(bytes[off + 8..off + 16].try_into().expect("8 bytes"));
        if zx == z {
            return off;
        }
        off += 16 + len;
    }
}

pub(super) fn flip_bit(path: &Path, offset: usize) {
    let f = fs::OpenOptions::new().read(true).write(true).open(path).expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset as u64).expect("read");
    b[0] ^= 0x10;
    f.write_all_at(&b, offset as u64).expect("write");
}

#[test]
fn log_round_trip_across_segments() {
    let d = tempfile::tempdir().expect("tmp");
    let all = txns(3000);
    write_log(d.path(), 64 << 10, &all, 37);
    assert!(segments(d.path()).len() > 1, "64 KiB segments must roll");
    assert_eq!(replay(d.path(), 64 << 10, Zxid::ZERO).expect("replay"), all);
    let after = replay(d.path(), 64 << 10, Zxid(2500)).expect("replay");
    assert_eq!(after, all[2500..].to_vec());
    let read: Vec<Txn> = LogReader::new(d.path(), Zxid(100)).expect("reader").collect::<Result<_, _>>().expect("read");
    assert_eq!(read, all[100..].to_vec());
}

#[test]
fn appending_after_reopen_continues_the_sequence() {
    let d = tempfile::tempdir().expect("tmp");
    let all = txns(200);
    write_log(d.path(), 64 << 10, &all[..100], 10);
    let mut log = TxnLog::open(d.path(), opts(64 << 10), Zxid::ZERO, |_| Ok(())).expect("open");
    assert_eq!(log.last_zxid(), Zxid(100));
    for t in &all[100..] {
        log.append(t).expect("append");
    }
    log.sync().expect("sync");
    assert_eq!(replay(d.path(), 64 << 10, Zxid::ZERO).expect("replay"), all);
}

#[test]
#[should_panic(expected = "zxids must strictly increase")]
fn append_asserts_increasing_zxids() {
    let d = tempfile::tempdir().expect("tmp");
    let mut log = TxnLog::open(d.path(), opts(64 << 10), Zxid::ZERO, |_| Ok(())).expect("open");
    log.append(&create(5, "/a", b"")).expect("append");
    let _ = log.append(&create(5, "/b", b""));
}

#[test]
fn torn_tail_is_truncated_and_log_stays_usable() {
    let d = tempfile::tempdir().expect("tmp");
    let all = txns(50);
    write_log(d.path(), 64 << 10, &all, 10);
    let seg = segments(d.path()).pop().expect("segment");
    let bytes = fs::read(&seg).expect("read");
    let off = record_offset(&bytes, 50);
    // A torn write: the last record's second half never reached the disk.
    let f = fs::OpenOptions::new().write(true).open(&seg).expect("open");
    f.write_all_at(&[0u8; 8], off as u64 + 20).expect("zero");
    assert_eq!(replay(d.path(), 64 << 10, Zxid::ZERO).expect("replay"), all[..49].to_vec());
    // The tail was zeroed: a second recovery is clean, and appends continue from 49.
    let mut log = TxnLog::open(d.path(), opts(64 << 10), Zxid::ZERO, |_| Ok(())).expect("reopen");
    assert_eq!(log.last_zxid(), Zxid(49));
    log.append(&all[49]).expect("append");
    log.sync().expect("sync");
    assert_eq!(replay(d.path(), 64 << 10, Zxid::ZERO).expect("replay"), all);
}

#[test]
fn flipped_bit_in_last_record_is_a_torn_tail() {
    let d = tempfile::tempdir().expect("tmp");
    let all = txns(20);
    write_log(d.path(), 64 << 10, &all, 5);
    let seg = segments(d.path()).pop().expect("segment");
    let off = record_offset(&fs::read(&seg).expect("read"), 20);
    flip_bit(&seg, off + 20);
    assert_eq!(replay(d.path(), 64 << 10, Zxid::ZERO).expect("replay"), all[..19].to_vec());
}

#[test]
fn flipped_bit_in_the_middle_is_an_error_naming_file_and_offset() {
    let d = tempfile::tempdir().expect("tmp");
    write_log(d.path(), 64 << 10, &txns(20), 5);
    let seg = segments(d.path()).pop().expect("segment");
    let off = record_offset(&fs::read(&seg).expect("read"), 10);
    flip_bit(&seg, off + 20);
    match replay(d.path(), 64 << 10, Zxid::ZERO) {
        Err(StorageError::Corrupt { path, offset, reason }) => {
            assert_eq!(path, seg);
            assert_eq!(offset, off as u64);
            assert!(reason.contains("CRC32C"), "{reason}");
        }
        other => panic!("expected a corruption error, got {:?}", other.map(|v| v.len())),
    }
    // Also the damaged length field: the next valid record is found by scanning.
    let d2 = tempfile::tempdir().expect("tmp");
    write_log(d2.path(), 64 << 10, &txns(20), 5);
    let seg2 = segments(d2.path()).pop().expect("segment");
    let off2 = record_offset(&fs::read(&seg2).expect("read"), 10);
    flip_bit(&seg2, off2 + 2);
    let err = replay(d2.path(), 64 << 10, Zxid::ZERO).expect_err("must fail");
    assert!(err.to_string().contains(&format!("offset {off2}")), "{err}");
}

/// Found by fuzz/fuzz_targets/txnlog_reader: a CRC-valid record whose header zxid (2) is not
/// its txn's zxid (1). The scan saw zxids 1, 2 and replay applied txn zxid 1 twice, so
/// `DataTree::apply`'s order assert panicked the recovering server. Now it is a corrupt
/// record at its offset, and `arbor data check` says so too.
#[test]
fn record_whose_txn_has_another_zxid_is_corrupt_not_a_panic() {
    let d = tempfile::tempdir().expect("tmp");
    let record = |zxid: i64, txn: &Txn| {
        let payload = rmp_serde::to_vec(txn).expect("encode");
        let mut body = zxid.to_be_bytes().to_vec();
        body.extend_from_slice(&payload);
        let mut r = (payload.len() as u32).to_be_bytes().to_vec();
        r.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        r.extend_from_slice(&body);
        r
    };
    let mut seg = txnlog::SEGMENT_MAGIC.to_vec();
    seg.extend_from_slice(&txnlog::SEGMENT_VERSION.to_be_bytes());
    seg.extend_from_slice(&[0; 4]);
    seg.extend(record(1, &create(1, "/a", b"x")));
    let second = seg.len();
    seg.extend(record(2, &create(1, "/b", b"y")));
    let path = d.path().join("log.1");
    fs::write(&path, &seg).expect("write");
    match recover(cfg(d.path()), ServerId(1), 0, 0).map(|r| r.report.last_zxid) {
        Err(StorageError::Corrupt { path: p, offset, reason }) => {
            assert_eq!((p, offset), (path, second as u64));
            assert!(reason.contains("record zxid 0x2 but its txn has zxid 0x1"), "{reason}");
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[test]
fn damage_in_an_earlier_segment_is_an_error() {
    let d = tempfile::tempdir().expect("tmp");
    write_log(d.path(), 64 << 10, &txns(3000), 50);
    let segs = segments(d.path());
    assert!(segs.len() >= 2);
    let first = &segs[0];
    let bytes = fs::read(first).expect("read");
    // The last record of the first segment: damage at a segment's end is still fatal.
    let mut off = txnlog::SEGMENT_HEADER_BYTES as usize;
    let mut last = off;
    // A segment can be filled to its last byte, so the walk stops at the file's end as well
    // as at the zero length that ends a shorter one.
    while off + 4 <= bytes.len() && u32::from_be_bytes(bytes[off..off + 4].try_into().expect("4")) != 0 {
        last = off;
        off += 16 + u32::from_be_bytes(bytes[off..off + 4].try_into().expect("4")) as usize;
    }
    flip_bit(first, last + 18);
    let err = replay(d.path(), 64 << 10, Zxid::ZERO).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains(&first.display().to_string()) && msg.contains(&format!("offset {last}")), "{msg}");
}

pub(super) fn sample_tree() -> (DataTree, SessionTable) {
    let mut tree = DataTree::new();
    let mut sessions = SessionTable::new(ServerId(1), 1_700_000_000_000);
    let s1 = sessions.next_session_id();
    let s2 = sessions.next_session_id();
    sessions.add(s1, 6000, 0);
    sessions.add(s2, 9000, 0);
    let mut trig = Vec::new();
    let mut z = 0;
    let mut next = || {
        z += 1;
        Zxid(z)
    };
    let digest = vec![Acl { perms: 31, id: crate::proto::Id::new("digest", "u:abc=") }];
    let ops = vec![
        (SessionId(0), TxnOp::Create { path: "/a".into(), data: Some(b"x".to_vec()), acl: Acl::open_unsafe(), ephemeral_owner: 0, parent_cversion: 1 }),
        (SessionId(0), TxnOp::Create { path: "/a/b".into(), data: None, acl: digest.clone(), ephemeral_owner: 0, parent_cversion: 1 }),
        (SessionId(0), TxnOp::Create { path: "/a/b/c".into(), data: Some(vec![]), acl: digest, ephemeral_owner: 0, parent_cversion: 1 }),
        (s1, TxnOp::Create { path: "/a/e1".into(), data: Some(b"eph".to_vec()), acl: Acl::open_unsafe(), ephemeral_owner: s1.0, parent_cversion: 2 }),
        (SessionId(0), TxnOp::SetData { path: "/a".into(), data: Some(b"yy".to_vec()), version: 1 }),
    ];
    for (session, op) in ops {
        let t = Txn { header: TxnHeader { session, cxid: 0, zxid: next(), time_ms: 5 }, op };
        tree.apply(&t, &mut trig);
    }
    (tree, sessions)
}

/// Everything observable about a tree, for equality checks.
pub(super) fn dump(tree: &DataTree) -> Vec<String> {
    let mut v = Vec::new();
    tree.for_each_preorder(|p, n| v.push(format!("{p} {:?} {:?} {:?} {}", n.data, n.acl, n.raw, n.num_children)));
    v.sort();
    v.push(format!("last={} eph={:?}", tree.last_applied(), tree.sessions_with_ephemerals()));
    v
}

#[test]
fn snapshot_round_trip() {
    let d = tempfile::tempdir().expect("tmp");
    let (tree, sessions) = sample_tree();
    let image = snapshot::encode(&tree, &sessions);
    let (path, _) = snapshot::write_image(d.path(), &image).expect("write");
    assert_eq!(path, d.path().join("snapshot.5"));
    let l = snapshot::load(&path).expect("load");
    assert_eq!(l.zxid, Zxid(5));
    assert_eq!(dump(&l.tree), dump(&tree));
    let want: Vec<(SessionId, i32)> = sessions.iter_sorted().iter().map(|s| (s.id, s.timeout_ms)).collect();
    assert_eq!(l.sessions, want);
}

/// Writes snapshots at zxids 100, 200, 300 of a log of 300 creates; returns the final tree.
pub(super) fn history(d: &Path) -> DataTree {
    let all = txns(300);
    let mut log = TxnLog::open(d, opts(64 << 10), Zxid::ZERO, |_| Ok(())).expect("open");
    let mut tree = DataTree::new();
    let sessions = SessionTable::new(ServerId(1), 0);
    let mut trig = Vec::new();
    for t in &all {
        log.ensure_spare().expect("spare");
        log.append(t).expect("append");
        log.sync().expect("sync");
        tree.apply(t, &mut trig);
        if t.header.zxid.0 % 100 == 0 {
            snapshot::write_image(d, &snapshot::encode(&tree, &sessions)).expect("snapshot");
            log.request_roll();
        }
    }
    tree
}

pub(super) fn cfg(d: &Path) -> StorageConfig {
    StorageConfig {
        data_dir: d.to_path_buf(),
        data_log_dir: d.to_path_buf(),
        snap_count: 100_000,
        force_sync: true,
        segment_bytes: 64 << 10,
        snap_retain_count: 3,
        purge_interval_h: 0,
    }
}

#[test]
fn corrupt_or_missing_newest_snapshot_falls_back_to_the_previous() {
    let d = tempfile::tempdir().expect("tmp");
    let want = dump(&history(d.path()));
    let r = recover(cfg(d.path()), ServerId(1), 0, 0).expect("recover");
    assert_eq!(r.report.snapshot.as_ref().map(|s| s.0), Some(Zxid(300)));
    assert_eq!(dump(&r.tree), want);
    drop(r);
    // Corrupt the newest: recovery uses snapshot 200 and replays 201..=300.
    flip_bit(&d.path().join("snapshot.12c"), 100);
    let r = recover(cfg(d.path()), ServerId(1), 0, 0).expect("recover");
    assert_eq!(r.report.snapshot.as_ref().map(|s| s.0), Some(Zxid(200)));
    assert_eq!(r.report.replayed, 100);
    assert_eq!(dump(&r.tree), want);
    drop(r);
    // Missing (deleted) newest two: snapshot 100 + replay.
    fs::remove_file(d.path().join("snapshot.12c")).expect("rm");
    fs::remove_file(d.path().join("snapshot.c8")).expect("rm");
    let r = recover(cfg(d.path()), ServerId(1), 0, 0).expect("recover");
    assert_eq!(r.report.snapshot.as_ref().map(|s| s.0), Some(Zxid(100)));
    assert_eq!(dump(&r.tree), want);
}

#[test]
fn truncated_snapshot_is_rejected() {
    let d = tempfile::tempdir().expect("tmp");
    let (tree, sessions) = sample_tree();
    let (path, size) = snapshot::write_image(d.path(), &snapshot::encode(&tree, &sessions)).expect("write");
    let f = fs::OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(size - 8).expect("truncate");
    assert!(snapshot::load(&path).is_err());
    assert!(snapshot::load_newest(d.path()).is_err(), "the only snapshot is bad: no silent empty start");
}

#[test]
fn purge_keeps_newest_snapshots_and_the_logs_they_need() {
    let d = tempfile::tempdir().expect("tmp");
    let want = dump(&history(d.path()));
    // Two more snapshots' worth, so there is something to purge.
    let segs_before = segments(d.path());
    let report = purge(d.path(), d.path(), 2).expect("purge");
    assert_eq!(report.snapshots, vec![d.path().join("snapshot.64")]);
    assert!(!report.segments.is_empty() && report.segments.len() < segs_before.len());
    // The oldest kept snapshot (200) alone must still recover everything.
    fs::remove_file(d.path().join("snapshot.12c")).expect("rm");
    let r = recover(cfg(d.path()), ServerId(1), 0, 0).expect("recover after purge");
    assert_eq!(r.report.snapshot.as_ref().map(|s| s.0), Some(Zxid(200)));
    assert_eq!(dump(&r.tree), want);
    // Purging again with the same retention removes nothing more that is needed.
    assert!(recover(cfg(d.path()), ServerId(1), 0, 0).is_ok());
}

#[test]
fn a_gap_between_snapshot_and_log_is_an_error() {
    let d = tempfile::tempdir().expect("tmp");
    history(d.path());
    for (z, p) in snapshot::list(d.path()).expect("list") {
        if z < Zxid(300) {
            fs::remove_file(p).expect("rm");
        }
    }
    purge(d.path(), d.path(), 3).expect("purge");
    fs::remove_file(d.path().join("snapshot.12c")).expect("rm");
    // No snapshot left, and the log no longer starts at zxid 1.
    let err = recover(cfg(d.path()), ServerId(1), 0, 0).err().expect("must fail");
    assert!(err.to_string().contains("gap"), "{err}");
}

#[test]
fn recovery_restores_sessions_and_continues_zxids() {
    let d = tempfile::tempdir().expect("tmp");
    let s = SessionId((1i64 << 56) | 42);
    let mut log = TxnLog::open(d.path(), opts(64 << 10), Zxid::ZERO, |_| Ok(())).expect("open");
    let mk = |z: i64, session: SessionId, op: TxnOp| Txn { header: TxnHeader { session, cxid: 0, zxid: Zxid(z), time_ms: 1 }, op };
    let t = [
        mk(1, s, TxnOp::CreateSession { timeout_ms: 8000 }),
        mk(2, s, TxnOp::Create { path: "/e".into(), data: None, acl: Acl::open_unsafe(), ephemeral_owner: s.0, parent_cversion: 1 }),
        mk(3, SessionId(99), TxnOp::CreateSession { timeout_ms: 4000 }),
        mk(4, SessionId(99), TxnOp::CloseSession),
    ];
    log.ensure_spare().expect("spare");
    for x in &t {
        log.append(x).expect("append");
    }
    log.sync().expect("sync");
    drop(log);
    let r = recover(cfg(d.path()), ServerId(1), 0, 1000).expect("recover");
    assert_eq!(r.tree.last_applied(), Zxid(4));
    assert_eq!(r.sessions.len(), 1);
    assert_eq!(r.sessions.get(s).map(|x| (x.timeout_ms, x.deadline_ms)), Some((8000, 9000)));
    assert_eq!(r.tree.ephemerals(s), vec!["/e".to_string()]);
    assert_eq!(r.storage.log().last_zxid(), Zxid(4));
}

#[test]
fn epochs_round_trip_atomically() {
    let d = tempfile::tempdir().expect("tmp");
    assert_eq!(read_epoch(d.path(), ACCEPTED_EPOCH).expect("read"), None);
    write_epoch(d.path(), ACCEPTED_EPOCH, 7).expect("write");
    write_epoch(d.path(), CURRENT_EPOCH, 6).expect("write");
    write_epoch(d.path(), ACCEPTED_EPOCH, 8).expect("write");
    assert_eq!(read_epoch(d.path(), ACCEPTED_EPOCH).expect("read"), Some(8));
    assert_eq!(read_epoch(d.path(), CURRENT_EPOCH).expect("read"), Some(6));
    assert!(!d.path().join("acceptedEpoch.tmp").exists());
    fs::write(d.path().join(CURRENT_EPOCH), "x\n").expect("write");
    assert!(read_epoch(d.path(), CURRENT_EPOCH).is_err());
}

//! The txn log reader on arbitrary bytes: `decode_record` on the bytes as one record payload,
//! then the bytes as a segment file (or two) in a temp data dir, recovered with
//! `storage::recover` exactly as a starting server does (scan, CRC and zxid checks, decode,
//! replay into a tree, torn-tail repair).
//!
//! Input: byte 0 holds flags, the rest is the file. Flag bit 0 rewrites every record's CRC
//! so mutations reach the decoder and replay (libFuzzer cannot forge CRC32C). With bit 1,
//! bytes 1..3 are a big-endian offset and the file (from byte 3) is split there into two
//! segments, `log.1` and `log.2`.
//!
//! Required: no panic, no unbounded allocation; recovery either fails with a typed error or
//! succeeds, and after a success the log is clean: a second recovery finds the same last
//! zxid and replays the same txns, and `LogReader` reads every record without an error
//! (a corrupt tail was truncated, not left behind).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbor::proto::{ServerId, Zxid};
use arbor::storage::txnlog::{decode_record, MAX_RECORD_BYTES, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use arbor::storage::{recover, LogReader, StorageConfig};
use libfuzzer_sys::fuzz_target;

/// One temp dir for the whole run (on tmpfs when there is one: recovery fsyncs).
fn root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let b = tempfile::Builder::new().prefix("arbor-fuzz-txnlog").tempdir_in(if shm.is_dir() { shm } else { Path::new("/tmp") });
        b.expect("temp dir")
    })
    .path()
}

/// Rewrite the CRC of every record whose length fits, as the writer would have.
fn fix_crcs(seg: &mut [u8]) {
    let mut off = SEGMENT_HEADER_BYTES as usize;
    while off + RECORD_HEADER_BYTES <= seg.len() {
        let len = u32::from_be_bytes([seg[off], seg[off + 1], seg[off + 2], seg[off + 3]]);
        if len == 0 || len > MAX_RECORD_BYTES || off + RECORD_HEADER_BYTES + len as usize > seg.len() {
            return;
        }
        let end = off + RECORD_HEADER_BYTES + len as usize;
        let crc = crc32c::crc32c(&seg[off + 8..end]);
        seg[off + 4..off + 8].copy_from_slice(&crc.to_be_bytes());
        off = end;
    }
}

fn config(dir: &Path) -> StorageConfig {
    StorageConfig {
        data_dir: dir.join("data"),
        data_log_dir: dir.join("log"),
        snap_count: 100_000,
        force_sync: false,
        segment_bytes: 64 << 10,
        snap_retain_count: 3,
        purge_interval_h: 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_record(Path::new("fuzz"), 0, Zxid(0), data);
    let Some((&flags, rest)) = data.split_first() else { return };
    let (split, file) = match rest {
        [hi, lo, file @ ..] if flags & 2 != 0 => ((u16::from_be_bytes([*hi, *lo]) as usize).min(file.len()), file),
        _ => (rest.len(), rest),
    };

    let dir = root();
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let _ = std::fs::remove_dir_all(dir.join("log"));
    std::fs::create_dir_all(dir.join("log")).unwrap();
    let mut segs: Vec<(PathBuf, Vec<u8>)> = vec![(dir.join("log/log.1"), file[..split].to_vec())];
    if split < file.len() {
        segs.push((dir.join("log/log.2"), file[split..].to_vec()));
    }
    for (path, bytes) in &mut segs {
        if flags & 1 != 0 {
            fix_crcs(bytes);
        }
        std::fs::write(path, bytes).unwrap();
    }

    let cfg = config(dir);
    let Ok(first) = recover(cfg.clone(), ServerId(1), 0, 0) else { return };
    let (last, replayed) = (first.report.last_zxid, first.report.replayed);
    drop(first);
    let second = recover(cfg.clone(), ServerId(1), 0, 0).expect("a log that recovered once recovers again");
    assert_eq!(second.report.last_zxid, last, "second recovery ends elsewhere");
    assert_eq!(second.report.replayed, replayed, "second recovery replays a different number of txns");
    drop(second);
    let read = LogReader::new(&cfg.data_log_dir, Zxid(0))
        .expect("segments of a recovered log")
        .collect::<Result<Vec<_>, _>>()
        .expect("a recovered log reads without errors");
    assert_eq!(read.len() as u64, replayed, "LogReader and recovery disagree on the records");
});

//! The write-ahead txn log: append-only, preallocated segment files, group-committed.
//!
//! # On-disk format
//!
//! The log is a set of segment files in `dataLogDir`, named `log.<n hex>` (lower-case hex,
//! no padding, like ZooKeeper's `log.<zxid>`) where `n` is one more than the last zxid
//! before the segment: the previous segment's last record, or the zxid the log was started
//! after (a snapshot's). So `log.<n>` holds records with zxids ≥ `n`, and every zxid below
//! `n` is in earlier segments or in that snapshot. Sorted by `n` the segments form one
//! zxid-ordered sequence. In standalone mode zxids are consecutive and `n` is the first
//! record's zxid, as in ZooKeeper. In an ensemble zxids jump at each new epoch
//! (`(epoch << 32) | counter`); naming a segment after its first record would make a log
//! starting at `0x100000001` look as if zxids 1..=0x100000000 were missing.
//!
//! ```text
//! Segment   := SegmentHeader Record* Zeros
//! SegmentHeader (16 bytes) := magic "ARBORLOG" (8 bytes) | version u32 BE (= 1) | 0 u32
//! Record    := len u32 BE | crc u32 BE | zxid i64 BE | payload (len bytes)
//!              crc    = CRC32C over (zxid bytes ++ payload)
//!              payload = rmp-serde (MessagePack) encoding of `txn::Txn`, never empty
//! Zeros     := 0x00 up to the preallocated size
//! ```
//!
//! A segment is preallocated (`preAllocSize`, default 64 MiB, with `posix_fallocate`), so a
//! record header of 16 zero bytes marks the end of the written data, and everything after
//! it is zero. Zxids strictly increase within a segment and across segments, and every
//! record's zxid is at least the zxid in its segment's name. The next segment is prepared
//! ahead of time as `log.next` (header written, space reserved, fsynced) and renamed when
//! the active one is full or a roll is requested (after a snapshot starts), so running
//! out of disk shows up while the active segment still has room (see `ensure_spare`).
//!
//! # Durability
//! `append` only encodes into a memory buffer. `write_pending` writes the buffered records
//! with `pwrite` and returns the segment to fdatasync, which the sync thread does
//! (`syncer`; group commit: one fdatasync covers everything written since the last one);
//! `sync` does both inline, for the rare callers that must wait. The fdatasync is skipped
//! with `forceSync=no`. When a batch spills into a new segment, the old segment is
//! fdatasynced first, so every segment but the last is complete on disk.
//!
//! # Truncation and reset (replication)
//! `truncate(z)` (a leader's TRUNC) cuts the log after the last record ≤ `z`: that
//! segment's tail is zeroed in place (preallocation stays, a zero header still marks the
//! end), later segments are deleted, and appends continue after `z` — possibly with zxids
//! below the ones cut. `reset(z)` (a snapshot from the leader at `z` replaces the state)
//! deletes every segment; the next one is named `z + 1`.
//!
//! # Recovery
//! `open` scans the segments that hold records after the snapshot zxid. A torn or
//! CRC-failing record at the tail of the LAST segment (nothing valid after it) is an
//! unfinished write that was never acknowledged: it is zeroed out with a warning. A bad
//! record anywhere else — in an earlier segment, or followed by a valid record — means
//! acknowledged data is damaged: recovery stops with an error naming the file and byte
//! offset. Nothing is ever skipped silently. Caveat: after a power loss, the disk may have
//! persisted a later sector of the last unacknowledged batch but not an earlier one; that
//! also reads as "bad record followed by a valid one" and stops the server for an operator
//! to look at (the safe side).

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::proto::Zxid;
use crate::txn::Txn;

use super::fsutil::{self, datasync, preallocate};
use super::StorageError;

pub const SEGMENT_MAGIC: &[u8; 8] = b"ARBORLOG";
pub const SEGMENT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_BYTES: u64 = 16;
pub const RECORD_HEADER_BYTES: usize = 16;
/// A length above this is garbage, not a txn (requests are limited by `jute.maxbuffer`).
pub const MAX_RECORD_BYTES: u32 = 256 << 20;
pub const SEGMENT_PREFIX: &str = "log.";
/// The prepared next segment.
const SPARE_NAME: &str = "log.next";

#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Preallocated size of a segment, header included.
    pub segment_bytes: u64,
    /// `forceSync`: false skips fdatasync (benchmarks only).
    pub force_sync: bool,
}

struct Segment {
    /// Shared with the sync thread, which fdatasyncs it.
    file: Arc<File>,
    path: PathBuf,
    /// Logical end: where the next record goes.
    end: u64,
    capacity: u64,
}

pub struct TxnLog {
    dir: PathBuf,
    opts: LogOptions,
    active: Option<Segment>,
    /// The prepared next segment (`log.next`) and its capacity.
    spare: Option<(File, u64)>,
    /// `log.next` being prepared on a helper thread (create, reserve, header, fsync: the
    /// loop must not wait for that while a snapshot keeps the device busy), and its size.
    spare_job: Option<(std::thread::JoinHandle<std::io::Result<File>>, u64)>,
    /// Encoded records not yet written, and where each starts in `buf`.
    buf: Vec<u8>,
    starts: Vec<(Zxid, usize)>,
    last_zxid: Zxid,
    /// Every zxid up to this one is on disk or before the log's base: the next segment is
    /// named after `written + 1`.
    written: Zxid,
    roll_requested: bool,
}

/// Create a spare segment file at `path`: header, reserved space, fsynced. Removed again
/// if any step fails.
fn create_spare_file(path: &Path, size: u64) -> std::io::Result<File> {
    let result = (|| {
        let file = File::create(path)?;
        preallocate(&file, size)?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        header[..8].copy_from_slice(SEGMENT_MAGIC);
        header[8..12].copy_from_slice(&SEGMENT_VERSION.to_be_bytes());
        file.write_all_at(&header, 0)?;
        file.sync_all()?;
        Ok(file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// What one parse step found.
enum Parsed {
    Record { zxid: Zxid, payload: std::ops::Range<usize>, next: usize },
    End,
    Bad(String),
}

/// Parse the record at `off` of a segment image, verifying its CRC.
fn parse_at(bytes: &[u8], off: usize) -> Parsed {
    let rest = &bytes[off.min(bytes.len())..];
    if rest.len() < RECORD_HEADER_BYTES {
        return if rest.iter().all(|&b| b == 0) { Parsed::End } else { Parsed::Bad("torn record header".into()) };
    }
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let mut zb = [0u8; 8];
    zb.copy_from_slice(&rest[8..16]);
    let zxid = i64::from_be_bytes(zb);
    if len == 0 {
        return if rest[..RECORD_HEADER_BYTES].iter().all(|&b| b == 0) {
            Parsed::End
        } else {
            Parsed::Bad("zero length with a non-zero header".into())
        };
    }
    if len > MAX_RECORD_BYTES || RECORD_HEADER_BYTES + len as usize > rest.len() {
        return Parsed::Bad(format!("record length {len} runs past the end of the segment"));
    }
    let body = &rest[8..RECORD_HEADER_BYTES + len as usize];
    let actual = crc32c::crc32c(body);
    if actual != crc {
        return Parsed::Bad(format!("CRC32C mismatch (stored {crc:#010x}, computed {actual:#010x}) for zxid {zxid:#x}"));
    }
    let start = off + RECORD_HEADER_BYTES;
    Parsed::Record { zxid: Zxid(zxid), payload: start..start + len as usize, next: start + len as usize }
}

/// Whether some CRC-valid record with a zxid above `prev` starts anywhere in `bytes[from..]`:
/// a bad record followed by a good one is damage, not a torn tail. The zxid window filters
/// almost every offset before any CRC is computed.
fn valid_record_after(bytes: &[u8], from: usize, prev: Zxid) -> Option<usize> {
    let mut off = from;
    while off + RECORD_HEADER_BYTES <= bytes.len() {
        let mut zb = [0u8; 8];
        zb.copy_from_slice(&bytes[off + 8..off + 16]);
        let z = i64::from_be_bytes(zb);
        // i128: `prev` starts at i64::MIN, where an i64 difference would overflow.
        if z > prev.0 && (z as i128 - prev.0 as i128) < (1i128 << 40) {
            if let Parsed::Record { .. } = parse_at(bytes, off) {
                return Some(off);
            }
        }
        off += 1;
    }
    None
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let corrupt = |reason: &str| StorageError::Corrupt { path: path.to_path_buf(), offset: 0, reason: reason.to_string() };
    if bytes.len() < SEGMENT_HEADER_BYTES as usize {
        return Err(corrupt("shorter than the segment header"));
    }
    if &bytes[..8] != SEGMENT_MAGIC {
        return Err(corrupt("bad magic (not an arbor txn log segment)"));
    }
    let version = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != SEGMENT_VERSION {
        return Err(corrupt(&format!("unsupported segment version {version}")));
    }
    Ok(())
}

/// Decode the payload of the record with header zxid `zxid` at `off`.
fn decode(path: &Path, off: usize, zxid: Zxid, payload: &[u8]) -> Result<Txn, StorageError> {
    let txn: Txn = rmp_serde::from_slice(payload).map_err(|e| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: off as u64,
        reason: format!("CRC holds but the txn does not decode: {e}"),
    })?;
    // `append` writes the txn's own zxid into the header. The scan checks the order of the
    // header zxids only, and replay (`DataTree::apply`) asserts the order of the txns' zxids,
    // so a CRC-valid record whose two zxids differ must stop here, not panic replay.
    if txn.header.zxid != zxid {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: off as u64,
            reason: format!("record zxid {zxid} but its txn has zxid {}", txn.header.zxid),
        });
    }
    Ok(txn)
}

/// The segments holding records after `after`: from the last one whose name is at most
/// `after + 1`. A first needed segment named above `after + 1` means records are missing.
pub fn needed_segments(dir: &Path, after: Zxid) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let segs = fsutil::list_by_zxid(dir, SEGMENT_PREFIX)?;
    let start = segs.iter().rposition(|(z, _)| *z <= after.0 + 1).unwrap_or(0);
    let needed = segs[start..].to_vec();
    if let Some((first, path)) = needed.first() {
        if *first > after.0 + 1 {
            return Err(StorageError::Inconsistent(format!(
                "txn log gap: state covers up to zxid {after}, but the oldest segment {} starts at {:#x}",
                path.display(),
                first
            )));
        }
    }
    Ok(needed)
}

/// A bad record at the tail of the last segment with nothing valid after it: an unfinished
/// write. Recovery zeroes `bytes` bytes from `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub offset: usize,
    pub bytes: usize,
    pub reason: String,
}

/// How one segment image ends.
#[derive(Clone, Debug)]
pub struct SegmentEnd {
    /// The byte after the last valid record (where appends would continue).
    pub end: usize,
    pub torn: Option<TornTail>,
}

/// Walk one segment image as recovery does: check the header, verify every record's CRC and
/// that zxids increase (from `*prev`, across segments) and are at least the segment's name,
/// handing each record (offset, zxid, payload) to `on_record`. A bad record at the tail of
/// the last segment (nothing valid after it) is reported as `torn`; any other bad record is
/// an error naming the file and offset. Reads only: recovery and `arbor data check` share it.
pub fn scan_segment(
    path: &Path,
    bytes: &[u8],
    name_zxid: i64,
    is_last: bool,
    prev: &mut Zxid,
    mut on_record: impl FnMut(usize, Zxid, &[u8]) -> Result<(), StorageError>,
) -> Result<SegmentEnd, StorageError> {
    check_header(path, bytes)?;
    let mut off = SEGMENT_HEADER_BYTES as usize;
    loop {
        let (reason, at) = match parse_at(bytes, off) {
            Parsed::Record { zxid, payload, next } => {
                if zxid <= *prev || zxid.0 < name_zxid {
                    return Err(StorageError::Corrupt {
                        path: path.to_path_buf(),
                        offset: off as u64,
                        reason: format!("zxid {zxid} does not increase (previous {prev}, segment starts at {name_zxid:#x})"),
                    });
                }
                *prev = zxid;
                on_record(off, zxid, &bytes[payload])?;
                off = next;
                continue;
            }
            Parsed::End => match bytes[off..].iter().position(|&b| b != 0) {
                None => return Ok(SegmentEnd { end: off, torn: None }),
                Some(p) => (format!("non-zero bytes at offset {} after the end of the records", off + p), off),
            },
            Parsed::Bad(reason) => (reason, off),
        };
        return bad_record(path, bytes, at, reason, is_last, *prev).map(|torn| SegmentEnd { end: at, torn: Some(torn) });
    }
}

/// A bad record at `off`: a torn tail of the last segment, or an error naming the file and
/// offset.
fn bad_record(path: &Path, bytes: &[u8], off: usize, reason: String, is_last: bool, prev: Zxid) -> Result<TornTail, StorageError> {
    if !is_last {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: off as u64,
            reason: format!("{reason} (in a segment that is not the last one)"),
        });
    }
    if let Some(valid) = valid_record_after(bytes, off + 1, prev) {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: off as u64,
            reason: format!("{reason}; a valid record follows at offset {valid}, so this is not a torn tail"),
        });
    }
    let last_nonzero = bytes.iter().rposition(|&b| b != 0).map_or(off, |p| p + 1).max(off);
    Ok(TornTail { offset: off, bytes: last_nonzero - off, reason })
}

/// Decode the payload of the record with header zxid `zxid` (a CRC-valid record whose txn
/// does not decode, or carries another zxid, is corrupt).
pub fn decode_record(path: &Path, off: usize, zxid: Zxid, payload: &[u8]) -> Result<Txn, StorageError> {
    decode(path, off, zxid, payload)
}

/// The segment files of `dir` (`log.<hex>`), by the zxid in their names.
pub fn segments(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    fsutil::list_by_zxid(dir, SEGMENT_PREFIX)
}

impl TxnLog {
    /// Recover the log in `dir`: hand every record with a zxid above `after` to `apply`, in
    /// order, repair a torn tail of the last segment, and return the log ready to append.
    pub fn open(
        dir: &Path,
        opts: LogOptions,
        after: Zxid,
        mut apply: impl FnMut(Txn) -> Result<(), StorageError>,
    ) -> Result<TxnLog, StorageError> {
        fsutil::ensure_dir(dir)?;
        let spare = dir.join(SPARE_NAME);
        if spare.exists() {
            fs::remove_file(&spare).map_err(|e| StorageError::io(&spare, e))?;
        }
        let segs = needed_segments(dir, after)?;
        let mut last = after;
        let mut prev_record = Zxid(i64::MIN);
        let mut active = None;
        for (i, (name_zxid, path)) in segs.iter().enumerate() {
            let is_last = i + 1 == segs.len();
            let bytes = fs::read(path).map_err(|e| StorageError::io(path, e))?;
            let scan = scan_segment(path, &bytes, *name_zxid, is_last, &mut prev_record, |off, zxid, payload| {
                if zxid > after {
                    apply(decode(path, off, zxid, payload)?)?;
                    last = zxid;
                }
                Ok(())
            })?;
            if let Some(torn) = &scan.torn {
                Self::zero_tail(path, torn)?;
            }
            if is_last {
                let file = fsutil::open_rw(path)?;
                active = Some(Segment { file: Arc::new(file), path: path.clone(), end: scan.end as u64, capacity: bytes.len() as u64 });
            }
        }
        Ok(TxnLog {
            dir: dir.to_path_buf(),
            opts,
            active,
            spare: None,
            spare_job: None,
            buf: Vec::new(),
            starts: Vec::new(),
            last_zxid: last,
            written: last,
            roll_requested: false,
        })
    }

    /// Zero a torn tail (see `scan_segment`), with a warning: it is an unfinished write that
    /// was never acknowledged. Zeroed, not shrunk, so the preallocated space stays allocated
    /// and a zero header keeps marking the end.
    fn zero_tail(path: &Path, torn: &TornTail) -> Result<(), StorageError> {
        tracing::warn!(
            path = %path.display(),
            offset = torn.offset,
            bytes = torn.bytes,
            reason = %torn.reason,
            "torn or damaged record at the tail of the txn log; truncating an unacknowledged write"
        );
        let file = fsutil::open_rw(path)?;
        let zeros = vec![0u8; 1 << 20];
        let (mut pos, end) = (torn.offset, torn.offset + torn.bytes);
        while pos < end {
            let n = (end - pos).min(zeros.len());
            file.write_all_at(&zeros[..n], pos as u64).map_err(|e| StorageError::io(path, e))?;
            pos += n;
        }
        datasync(&file).map_err(|e| StorageError::io(path, e))
    }

    /// The zxid of the last record appended (or recovered).
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Buffer one record. Zxids must strictly increase (a programmer error otherwise).
    pub fn append(&mut self, txn: &Txn) -> Result<(), StorageError> {
        let zxid = txn.header.zxid;
        assert!(zxid > self.last_zxid, "txn log append: zxid {zxid} after {} (zxids must strictly increase)", self.last_zxid);
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
        if let Err(e) = rmp_serde::encode::write(&mut self.buf, txn) {
            self.buf.truncate(start);
            return Err(StorageError::Encode { zxid, reason: e.to_string() });
        }
        let len = self.buf.len() - start - RECORD_HEADER_BYTES;
        if len > MAX_RECORD_BYTES as usize {
            self.buf.truncate(start);
            return Err(StorageError::Encode { zxid, reason: format!("{len} bytes is over the record limit") });
        }
        self.buf[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        self.buf[start + 8..start + 16].copy_from_slice(&zxid.0.to_be_bytes());
        let crc = crc32c::crc32c(&self.buf[start + 8..]);
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
        self.starts.push((zxid, start));
        self.last_zxid = zxid;
        Ok(())
    }

    /// Write every buffered record and fdatasync once. On error the log must not be used
    /// again: what reached the disk is unknown (a failed fsync may have dropped dirty pages).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        if let Some(seg) = self.active.as_ref().filter(|_| self.opts.force_sync) {
            datasync(&seg.file).map_err(|e| StorageError::io(&seg.path, e))?;
        }
        Ok(())
    }

    /// Write every buffered record (`pwrite`, into the page cache) without the final
    /// fdatasync, which the caller runs (the sync thread): returns the segment to sync and
    /// the last zxid written, or None if nothing was buffered. When a batch spills into a
    /// new segment, the full one is fdatasynced here first: recovery treats damage in any
    /// segment but the last as fatal, so only the last may hold records not yet durable
    /// (a rare wait: once per `preAllocSize` of log).
    pub fn write_pending(&mut self) -> Result<Option<(Arc<File>, Zxid)>, StorageError> {
        let n = self.starts.len();
        if n == 0 {
            return Ok(None);
        }
        let mut i = 0;
        while i < n {
            let rec_len = self.record_len(i) as u64;
            let must_roll = match &self.active {
                None => true,
                // A requested roll waits for a spare being prepared, unless the record
                // does not fit anyway.
                Some(s) => (self.roll_requested && self.spare_job.is_none()) || s.end + rec_len > s.capacity,
            };
            if must_roll {
                if let Some(seg) = self.active.as_ref().filter(|_| self.opts.force_sync) {
                    datasync(&seg.file).map_err(|e| StorageError::io(&seg.path, e))?;
                }
                let prev = if i == 0 { self.written } else { self.starts[i - 1].0 };
                self.roll(Zxid(prev.0 + 1), rec_len)?;
            }
            let Some(seg) = self.active.as_mut() else { unreachable!("roll sets the active segment") };
            let mut j = i;
            let mut end = seg.end;
            while j < n {
                let l = (if j + 1 < n { self.starts[j + 1].1 } else { self.buf.len() } - self.starts[j].1) as u64;
                if end + l > seg.capacity {
                    break;
                }
                end += l;
                j += 1;
            }
            let from = self.starts[i].1;
            let to = if j < n { self.starts[j].1 } else { self.buf.len() };
            seg.file.write_all_at(&self.buf[from..to], seg.end).map_err(|e| StorageError::io(&seg.path, e))?;
            seg.end = end;
            i = j;
        }
        self.buf.clear();
        self.starts.clear();
        self.written = self.last_zxid;
        Ok(self.active.as_ref().map(|s| (s.file.clone(), self.written)))
    }

    /// The last zxid written to a segment file (durable or not).
    pub fn written(&self) -> Zxid {
        self.written
    }

    /// The segment being appended to, for the sync thread.
    pub fn active_file(&self) -> Option<Arc<File>> {
        self.active.as_ref().map(|s| s.file.clone())
    }

    fn record_len(&self, i: usize) -> usize {
        let end = if i + 1 < self.starts.len() { self.starts[i + 1].1 } else { self.buf.len() };
        end - self.starts[i].1
    }

    /// Start a new segment at the next append (after a snapshot, so older segments can be
    /// purged once snapshots cover them).
    pub fn request_roll(&mut self) {
        if self.active.as_ref().is_some_and(|s| s.end > SEGMENT_HEADER_BYTES) {
            self.roll_requested = true;
        }
    }

    /// Make the spare the active segment, named `log.<name>` (see the module doc).
    fn roll(&mut self, name: Zxid, rec_len: u64) -> Result<(), StorageError> {
        let need = SEGMENT_HEADER_BYTES + rec_len;
        // A spare still being prepared is waited for: it owns `log.next`.
        let _ = self.take_spare_job(true);
        let (file, capacity) = match self.spare.take() {
            Some((f, cap)) if cap >= need => (f, cap),
            _ => self.create_spare(self.opts.segment_bytes.max(need))?,
        };
        let path = self.dir.join(format!("{SEGMENT_PREFIX}{:x}", name.0));
        let spare_path = self.dir.join(SPARE_NAME);
        fs::rename(&spare_path, &path).map_err(|e| StorageError::io(&path, e))?;
        fsutil::sync_dir(&self.dir)?;
        self.active = Some(Segment { file: Arc::new(file), path, end: SEGMENT_HEADER_BYTES, capacity });
        self.roll_requested = false;
        Ok(())
    }

    /// Create `log.next`: header, reserved space, fsynced.
    fn create_spare(&self, size: u64) -> Result<(File, u64), StorageError> {
        let path = self.dir.join(SPARE_NAME);
        match create_spare_file(&path, size) {
            Ok(f) => Ok((f, size)),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// Take in the spare being prepared once it is ready (or wait for it with `block`).
    fn take_spare_job(&mut self, block: bool) -> Result<(), StorageError> {
        let Some((job, _)) = self.spare_job.as_ref() else { return Ok(()) };
        if !block && !job.is_finished() {
            return Ok(());
        }
        let Some((job, size)) = self.spare_job.take() else { return Ok(()) };
        let path = self.dir.join(SPARE_NAME);
        match job.join() {
            Ok(Ok(f)) => {
                self.spare = Some((f, size));
                Ok(())
            }
            Ok(Err(e)) => Err(StorageError::io(&path, e)),
            Err(_) => Err(StorageError::Inconsistent(format!("{}: the thread preparing it panicked", path.display()))),
        }
    }

    /// Prepare the next segment when the active one is missing or three-quarters full, or
    /// a roll was asked for: on a helper thread, taken in by a later call. Called between
    /// turns, so that a full disk is noticed while the active segment still has room for
    /// what is already applied. Returns an error if the space cannot be had.
    pub fn ensure_spare(&mut self) -> Result<(), StorageError> {
        // Nearly full with the spare still in the making: wait for it here, where a failure
        // means refusing writes, rather than at the roll, where it would be fatal.
        let nearly_full = self.active.as_ref().is_some_and(|s| s.capacity - s.end < self.opts.segment_bytes / 8);
        self.take_spare_job(nearly_full)?;
        if self.spare.is_some() || self.spare_job.is_some() {
            return Ok(());
        }
        let low = match &self.active {
            None => true,
            Some(s) => self.roll_requested || s.capacity - s.end < self.opts.segment_bytes / 4,
        };
        if low {
            let size = self.opts.segment_bytes;
            let path = self.dir.join(SPARE_NAME);
            match std::thread::Builder::new().name("arbor-log-spare".into()).spawn(move || create_spare_file(&path, size)) {
                Ok(job) => self.spare_job = Some((job, size)),
                Err(_) => self.spare = Some(self.create_spare(size)?),
            }
        }
        Ok(())
    }

    /// Cut the log after the last record with a zxid ≤ `z` (a leader's TRUNC). Buffered
    /// records are written first. Later segments are deleted newest first, each deletion
    /// made durable before the next, then the tail of the segment holding the last kept
    /// record is zeroed and fdatasynced: a crash at any point leaves a prefix of the log.
    /// Appends continue after `z` (in the cut segment, whose space stays allocated), so
    /// they may reuse zxids that were cut. Returns the zxid of the last record kept.
    pub fn truncate(&mut self, z: Zxid) -> Result<Option<Zxid>, StorageError> {
        self.sync()?;
        let segs = fsutil::list_by_zxid(&self.dir, SEGMENT_PREFIX)?;
        let keep = segs.iter().rposition(|(name, _)| *name <= z.0);
        self.active = None;
        for (_, path) in segs[keep.map_or(0, |k| k + 1)..].iter().rev() {
            fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
            fsutil::sync_dir(&self.dir)?;
        }
        let mut last_kept = None;
        if let Some(k) = keep {
            let (seg, last) = cut_segment(&segs[k].1, z)?;
            self.active = Some(seg);
            last_kept = last;
        }
        self.last_zxid = z;
        self.written = z;
        self.roll_requested = false;
        Ok(last_kept)
    }

    /// Drop every record (buffered or on disk) and continue after `z`: a snapshot at `z`
    /// from the leader supersedes the whole log. The next segment is named `z + 1`. The
    /// caller has made that snapshot durable first.
    pub fn reset(&mut self, z: Zxid) -> Result<(), StorageError> {
        self.buf.clear();
        self.starts.clear();
        self.active = None;
        let segs = fsutil::list_by_zxid(&self.dir, SEGMENT_PREFIX)?;
        for (_, path) in segs.iter().rev() {
            fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
        }
        if !segs.is_empty() {
            fsutil::sync_dir(&self.dir)?;
        }
        self.last_zxid = z;
        self.written = z;
        self.roll_requested = false;
        Ok(())
    }

    /// Room left in the active segment (0 without one), for diagnostics and tests.
    pub fn active_room(&self) -> u64 {
        self.active.as_ref().map_or(0, |s| s.capacity - s.end)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Zero `path` after its last record with a zxid ≤ `z` and reopen it as the active segment.
/// Returns it and the zxid of that record. The log has been synced and its tail repaired
/// by `open`, so any bad record here is damage: an error, nothing is cut.
fn cut_segment(path: &Path, z: Zxid) -> Result<(Segment, Option<Zxid>), StorageError> {
    let bytes = fs::read(path).map_err(|e| StorageError::io(path, e))?;
    check_header(path, &bytes)?;
    let mut off = SEGMENT_HEADER_BYTES as usize;
    let mut last = None;
    loop {
        match parse_at(&bytes, off) {
            Parsed::Record { zxid, next, .. } if zxid <= z => {
                if last.is_some_and(|l| zxid <= l) {
                    return Err(StorageError::Corrupt {
                        path: path.to_path_buf(),
                        offset: off as u64,
                        reason: format!("zxid {zxid} does not increase"),
                    });
                }
                last = Some(zxid);
                off = next;
            }
            Parsed::Record { .. } | Parsed::End => break,
            Parsed::Bad(reason) => return Err(StorageError::Corrupt { path: path.to_path_buf(), offset: off as u64, reason }),
        }
    }
    let file = fsutil::open_rw(path)?;
    let last_nonzero = bytes.iter().rposition(|&b| b != 0).map_or(off, |p| p + 1).max(off);
    let zeros = vec![0u8; (last_nonzero - off).min(1 << 20)];
    let mut pos = off;
    while pos < last_nonzero {
        let n = (last_nonzero - pos).min(zeros.len());
        file.write_all_at(&zeros[..n], pos as u64).map_err(|e| StorageError::io(path, e))?;
        pos += n;
    }
    datasync(&file).map_err(|e| StorageError::io(path, e))?;
    let seg = Segment { file: Arc::new(file), path: path.to_path_buf(), end: off as u64, capacity: bytes.len() as u64 };
    Ok((seg, last))
}

/// The last `max` records with zxids above `after`, oldest first, reading segments from the
/// newest back only as far as needed. Call it after `TxnLog::open` (which repairs a torn
/// tail): any bad record is an error. Fewer than `max` when the log holds fewer.
pub fn recent_txns(dir: &Path, after: Zxid, max: usize) -> Result<Vec<Txn>, StorageError> {
    let segs = fsutil::list_by_zxid(dir, SEGMENT_PREFIX)?;
    let mut newest_first: Vec<Vec<Txn>> = Vec::new();
    let mut total = 0usize;
    for i in (0..segs.len()).rev() {
        if total >= max {
            break;
        }
        // `log.<n>` holds zxids ≥ n: if the next segment starts at or below `after + 1`,
        // this one and all before it hold nothing above `after`.
        if segs.get(i + 1).is_some_and(|(next, _)| *next <= after.0.saturating_add(1)) {
            break;
        }
        let reader = LogReader { segs: vec![segs[i].clone()].into_iter(), cur: None, after, prev: Zxid(i64::MIN), failed: false };
        let txns = reader.collect::<Result<Vec<Txn>, StorageError>>()?;
        total += txns.len();
        newest_first.push(txns);
    }
    let mut out: Vec<Txn> = newest_first.into_iter().rev().flatten().collect();
    if out.windows(2).any(|w| w[0].header.zxid >= w[1].header.zxid) {
        return Err(StorageError::Inconsistent(format!("txn log in {}: zxids do not increase across segments", dir.display())));
    }
    let skip = out.len().saturating_sub(max);
    out.drain(..skip);
    Ok(out)
}

/// Reads records with zxids above a given one, in order, across segments. Every record is
/// CRC-checked; any bad record (including at the tail: `TxnLog::open` has repaired the
/// tail already) is an error naming the file and offset.
pub struct LogReader {
    segs: std::vec::IntoIter<(i64, PathBuf)>,
    cur: Option<(PathBuf, Vec<u8>, usize)>,
    after: Zxid,
    prev: Zxid,
    failed: bool,
}

impl LogReader {
    pub fn new(dir: &Path, after: Zxid) -> Result<LogReader, StorageError> {
        let segs = needed_segments(dir, after)?;
        Ok(LogReader { segs: segs.into_iter(), cur: None, after, prev: Zxid(i64::MIN), failed: false })
    }

    fn step(&mut self) -> Result<Option<Txn>, StorageError> {
        loop {
            if self.cur.is_none() {
                let Some((_, path)) = self.segs.next() else { return Ok(None) };
                let bytes = fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
                check_header(&path, &bytes)?;
                self.cur = Some((path, bytes, SEGMENT_HEADER_BYTES as usize));
            }
            let Some((path, bytes, off)) = self.cur.as_mut() else { continue };
            match parse_at(bytes, *off) {
                Parsed::End => self.cur = None,
                Parsed::Bad(reason) => return Err(StorageError::Corrupt { path: path.clone(), offset: *off as u64, reason }),
                Parsed::Record { zxid, payload, next } => {
                    let at = *off;
                    *off = next;
                    if zxid <= self.prev {
                        return Err(StorageError::Corrupt {
                            path: path.clone(),
                            offset: at as u64,
                            reason: format!("zxid {zxid} does not increase (previous {})", self.prev),
                        });
                    }
                    self.prev = zxid;
                    if zxid > self.after {
                        return decode(path, at, zxid, &bytes[payload]).map(Some);
                    }
                }
            }
        }
    }
}

impl Iterator for LogReader {
    type Item = Result<Txn, StorageError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(t) => t.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

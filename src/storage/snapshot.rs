//! Snapshots: the whole DataTree and the session table at one zxid, in one file.
//!
//! # On-disk format
//!
//! `snapshot.<zxid hex>` in `dataDir` (lower-case hex, no padding), written as
//! `snapshot.<zxid hex>.tmp`, fsynced, renamed, and the directory fsynced.
//!
//! ```text
//! File    := Header Chunk* EndChunk
//! Header (24 bytes) := magic "ARBORSNP" | version u32 BE (= 1) | hcrc u32 BE | zxid i64 BE
//!            hcrc = CRC32C of the 24 header bytes with hcrc zeroed; 0 in files written
//!            before it existed, and then not checked (older readers ignore the field)
//! Chunk   := len u32 BE (1..=1 MiB) | crc u32 BE (CRC32C of the bytes) | bytes
//! EndChunk := 0 u32 | 0 u32                      (nothing may follow)
//! ```
//!
//! The concatenated chunk bytes form the body, a sequence of tagged records (integers
//! little-endian, strings as u32 length + UTF-8):
//!
//! ```text
//! Acl     := 0x01 | id u32 | count u32 | (perms i32 | scheme str | id str){count}
//! Node    := 0x02 | path str | dataLen i32 (-1 = null) | data | acl id u32
//!            | czxid i64 | mzxid i64 | ctime i64 | mtime i64
//!            | version i32 | cversion i32 (stored) | aversion i32
//!            | ephemeralOwner i64 (raw) | pzxid i64
//! Session := 0x03 | id i64 | timeout_ms i32
//! End     := 0xFF | node count u64 | session count u64
//! ```
//!
//! Nodes come parents first (a streamed snapshot emits arena slots in order, each node's
//! pending ancestors right before it), so loading inserts each under an existing parent.
//! An ACL list is defined by an `Acl` record before the first node that uses it.
//! A file is valid only if its header and name agree on the zxid, the header CRC (when
//! present) and every chunk's CRC hold, the body ends exactly with `End`, and the counts
//! match. The same bytes are what a leader sends in SNAP (`to_bytes`, `decode`): there
//! is no file name to check the zxid against, so a non-zero header CRC is what covers it.
//!
//! # Not stalling the loop
//! A server snapshots with `Stream`: `DataTree::begin_freeze` marks the state at the
//! snapshot's zxid (node-granularity copy-on-write, see `tree::freeze`), each loop turn
//! encodes a bounded slice of it (`Storage::snapshot_step`), and a writer thread adds the
//! chunk CRCs, writes, fsyncs and renames. No fork: the loop pays a few hundred
//! microseconds per turn, and memory grows only by the nodes written while the scan runs
//! (each copied once) plus a few MiB of queued chunks. `encode` (the whole tree into one
//! buffer at once) remains for tools, tests and benchmarks.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::proto::{Acl, Id, SessionId, Zxid};
use crate::session::SessionTable;
use crate::tree::{DataTree, NodeView, RawStat};

use super::fsutil;
use super::StorageError;

pub const SNAP_MAGIC: &[u8; 8] = b"ARBORSNP";
pub const SNAP_VERSION: u32 = 1;
pub const SNAP_PREFIX: &str = "snapshot.";
const HEADER_BYTES: usize = 24;
const CHUNK_BYTES: usize = 1 << 20;
/// Far above any creatable path (jute.maxbuffer), far below the tree's 1 GiB name limit.
const MAX_PATH_BYTES: usize = 64 << 20;

/// How often loading a snapshot logs its progress.
const LOAD_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

const TAG_ACL: u8 = 0x01;
const TAG_NODE: u8 = 0x02;
const TAG_SESSION: u8 = 0x03;
const TAG_END: u8 = 0xFF;

/// A tree serialized in memory, not yet on disk.
pub struct SnapshotImage {
    pub zxid: Zxid,
    pub body: Vec<u8>,
    pub nodes: u64,
    pub sessions: u64,
}

/// A snapshot read back.
pub struct Loaded {
    pub zxid: Zxid,
    pub tree: DataTree,
    /// (id, timeout) of every session live at `zxid`.
    pub sessions: Vec<(SessionId, i32)>,
    /// Where it was read from (a file, or the origin given to `decode`).
    pub path: PathBuf,
}

pub fn snapshot_path(dir: &Path, zxid: Zxid) -> PathBuf {
    dir.join(format!("{SNAP_PREFIX}{:x}", zxid.0))
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Writes body records one at a time: the whole-tree `encode` and the streaming snapshot
/// (`Stream`) share it. ACL lists get ids in order of first use, looked up by content: a
/// streamed snapshot spans many loop turns, during which the tree may free a list and
/// intern another at the same address. Within one call sequence over an unchanging tree
/// (`same_step`) the list's address is a shortcut for the common run of equal ACLs.
pub struct BodyEncoder {
    pub body: Vec<u8>,
    acl_ids: HashMap<Vec<Acl>, u32>,
    /// (address, length, id) of the last ACL list seen in this step.
    last_acl: Option<(usize, usize, u32)>,
    pub nodes: u64,
    pub sessions: u64,
}

impl BodyEncoder {
    pub fn new(capacity: usize) -> BodyEncoder {
        BodyEncoder { body: Vec::with_capacity(capacity), acl_ids: HashMap::new(), last_acl: None, nodes: 0, sessions: 0 }
    }

    /// The tree may have changed since the last record: forget ACL addresses.
    pub fn new_step(&mut self) {
        self.last_acl = None;
    }

    fn acl_id(&mut self, acl: &[Acl], by_address: bool) -> u32 {
        let key = (acl.as_ptr() as usize, acl.len());
        if by_address {
            if let Some((a, l, id)) = self.last_acl {
                if (a, l) == key {
                    return id;
                }
            }
        }
        let id = match self.acl_ids.get(acl) {
            Some(&id) => id,
            None => {
                let id = self.acl_ids.len() as u32;
                self.acl_ids.insert(acl.to_vec(), id);
                let body = &mut self.body;
                body.push(TAG_ACL);
                body.extend_from_slice(&id.to_le_bytes());
                body.extend_from_slice(&(acl.len() as u32).to_le_bytes());
                for a in acl {
                    body.extend_from_slice(&a.perms.to_le_bytes());
                    put_str(body, &a.id.scheme);
                    put_str(body, &a.id.id);
                }
                id
            }
        };
        if by_address {
            self.last_acl = Some((key.0, key.1, id));
        }
        id
    }

    /// One node record (its ACL record first if the list is new).
    pub fn node(&mut self, path: &str, v: &NodeView<'_>) {
        let acl_id = self.acl_id(v.acl, true);
        let body = &mut self.body;
        body.push(TAG_NODE);
        put_str(body, path);
        match v.data {
            None => body.extend_from_slice(&(-1i32).to_le_bytes()),
            Some(d) => {
                body.extend_from_slice(&(d.len() as i32).to_le_bytes());
                body.extend_from_slice(d);
            }
        }
        body.extend_from_slice(&acl_id.to_le_bytes());
        let r = &v.raw;
        for x in [r.czxid, r.mzxid, r.ctime, r.mtime] {
            body.extend_from_slice(&x.to_le_bytes());
        }
        for x in [r.version, r.cversion, r.aversion] {
            body.extend_from_slice(&x.to_le_bytes());
        }
        body.extend_from_slice(&r.ephemeral_owner.to_le_bytes());
        body.extend_from_slice(&r.pzxid.to_le_bytes());
        self.nodes += 1;
    }

    /// A session record for each live session.
    pub fn sessions(&mut self, sessions: &SessionTable) {
        for s in sessions.iter_sorted() {
            self.body.push(TAG_SESSION);
            self.body.extend_from_slice(&s.id.0.to_le_bytes());
            self.body.extend_from_slice(&s.timeout_ms.to_le_bytes());
            self.sessions += 1;
        }
    }

    /// The end record (nothing may follow it).
    pub fn end(&mut self) {
        self.body.push(TAG_END);
        self.body.extend_from_slice(&self.nodes.to_le_bytes());
        self.body.extend_from_slice(&self.sessions.to_le_bytes());
    }
}

/// Serialize the tree and sessions (at the tree's last applied zxid) into memory at once,
/// parents first (tools, tests, benchmarks; a server streams with `Stream`).
pub fn encode(tree: &DataTree, sessions: &SessionTable) -> SnapshotImage {
    let estimate = tree.approximate_data_size() as usize + tree.node_count() * 72 + sessions.len() * 13 + 64;
    let mut enc = BodyEncoder::new(estimate);
    tree.for_each_preorder(|path, v| enc.node(path, &v));
    enc.sessions(sessions);
    enc.end();
    SnapshotImage { zxid: tree.last_applied(), nodes: enc.nodes, sessions: enc.sessions, body: enc.body }
}

/// The 24-byte header of a snapshot at `zxid`.
fn header(zxid: Zxid) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(SNAP_MAGIC);
    header[8..12].copy_from_slice(&SNAP_VERSION.to_be_bytes());
    header[16..24].copy_from_slice(&zxid.0.to_be_bytes());
    let hcrc = crc32c::crc32c(&header);
    header[12..16].copy_from_slice(&hcrc.to_be_bytes());
    header
}

/// `body` as CRC'd chunks of at most `CHUNK_BYTES`; returns the bytes written.
fn write_chunks<W: Write>(w: &mut W, body: &[u8]) -> std::io::Result<u64> {
    let mut size = 0;
    for chunk in body.chunks(CHUNK_BYTES) {
        w.write_all(&(chunk.len() as u32).to_be_bytes())?;
        w.write_all(&crc32c::crc32c(chunk).to_be_bytes())?;
        w.write_all(chunk)?;
        size += 8 + chunk.len() as u64;
    }
    Ok(size)
}

/// The file format (header, CRC'd chunks, end chunk) of `body` at `zxid`, into `w`.
/// Returns the number of bytes written.
fn write_file<W: Write>(w: &mut W, zxid: Zxid, body: &[u8]) -> std::io::Result<u64> {
    w.write_all(&header(zxid))?;
    let size = HEADER_BYTES as u64 + write_chunks(w, body)?;
    w.write_all(&[0u8; 8])?;
    Ok(size + 8)
}

/// An image as the bytes of a snapshot file (what a leader sends in SNAP).
pub fn to_bytes(image: &SnapshotImage) -> Vec<u8> {
    let chunks = image.body.len().div_ceil(CHUNK_BYTES);
    let mut out = Vec::with_capacity(HEADER_BYTES + image.body.len() + 8 * chunks + 8);
    write_file(&mut out, image.zxid, &image.body).expect("writing into a Vec cannot fail");
    out
}

/// Create `snapshot.<zxid>` durably: `fill` writes the contents into a temp file, which is
/// fsynced and renamed, and the directory fsynced. Returns the final path and its size.
fn write_durably(
    dir: &Path,
    zxid: Zxid,
    fill: impl FnOnce(&mut std::io::BufWriter<File>) -> std::io::Result<u64>,
) -> Result<(PathBuf, u64), StorageError> {
    fsutil::ensure_dir(dir)?;
    let path = snapshot_path(dir, zxid);
    let tmp = dir.join(format!("{SNAP_PREFIX}{:x}.tmp", zxid.0));
    let result = (|| -> std::io::Result<u64> {
        let mut f = std::io::BufWriter::with_capacity(4 << 20, File::create(&tmp)?);
        let size = fill(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(size)
    })();
    let size = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(StorageError::io(&tmp, e));
        }
    };
    fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
    fsutil::sync_dir(dir)?;
    Ok((path, size))
}

/// Write an image durably as `snapshot.<zxid>`: temp file, fsync, rename, directory fsync.
/// Meant for a helper thread. Returns the final path and its size.
pub fn write_image(dir: &Path, image: &SnapshotImage) -> Result<(PathBuf, u64), StorageError> {
    write_durably(dir, image.zxid, |f| write_file(f, image.zxid, &image.body))
}


/// What the loop hands the snapshot writer thread.
enum Piece {
    Body(Vec<u8>),
    /// The body is complete: end chunk, fsync, rename.
    Finish,
}

/// Body bytes gathered on the loop before they go to the writer thread.
const PIECE_BYTES: usize = 1 << 20;
/// Pieces in flight to the writer thread: the loop never holds more than this many
/// MiB of a snapshot in memory (and stops encoding while the disk lags).
const PIECES_IN_FLIGHT: usize = 4;

/// What one `Stream::step` did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStep {
    pub nodes: u64,
    /// Everything is with the writer thread: wait for it to end (`is_written`).
    pub encoded: bool,
}

/// A snapshot being taken while the server goes on: the loop reads the frozen tree
/// (`DataTree::freeze_step`) slice by slice into records, a writer thread puts them into
/// a temp file in CRC'd chunks, and at the end fsyncs it, renames it into place and
/// fsyncs the directory. No fork, no whole-tree buffer, and the loop's share of the work
/// per turn is bounded by the step's budget.
pub struct Stream {
    zxid: Zxid,
    enc: BodyEncoder,
    /// Pieces the channel had no room for yet, in order.
    held: std::collections::VecDeque<Piece>,
    tx: Option<std::sync::mpsc::SyncSender<Piece>>,
    thread: std::thread::JoinHandle<Result<(PathBuf, u64), StorageError>>,
    encoded: bool,
}

impl Stream {
    /// Freeze `tree` and start the writer thread; the sessions are recorded now (the
    /// table is small, and this is the moment the snapshot stands for).
    pub fn start(dir: &Path, tree: &mut DataTree, sessions: &SessionTable) -> std::io::Result<Stream> {
        let zxid = tree.last_applied();
        let (tx, rx) = std::sync::mpsc::sync_channel(PIECES_IN_FLIGHT);
        let d = dir.to_path_buf();
        let thread = std::thread::Builder::new().name("arbor-snapshot".into()).spawn(move || write_stream(&d, zxid, rx))?;
        tree.begin_freeze();
        let mut enc = BodyEncoder::new(PIECE_BYTES + (64 << 10));
        enc.sessions(sessions);
        Ok(Stream { zxid, enc, held: Default::default(), tx: Some(tx), thread, encoded: false })
    }

    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    /// Encode the next slice (at most `max_nodes` nodes or `max_bytes` bytes) and pass full
    /// buffers on. Does nothing while the writer is `PIECES_IN_FLIGHT` behind. An error
    /// means the snapshot cannot complete (the writer failed, or `tree` is not the one
    /// frozen for it): drop the stream.
    pub fn step(&mut self, tree: &mut DataTree, max_nodes: u64, max_bytes: u64) -> Result<StreamStep, String> {
        let mut out = StreamStep { nodes: 0, encoded: self.encoded };
        if !self.send_held()? || self.encoded {
            return Ok(out);
        }
        if tree.frozen_at() != Some(self.zxid) {
            return Err(format!("the state frozen at {} is gone (replaced or refrozen)", self.zxid));
        }
        self.enc.new_step();
        let enc = &mut self.enc;
        let p = tree.freeze_step(max_nodes, max_bytes, |path, v| enc.node(path, &v));
        out.nodes = p.nodes;
        if p.finished {
            self.enc.end();
            self.encoded = true;
            out.encoded = true;
        }
        if self.enc.body.len() >= PIECE_BYTES || self.encoded {
            let body = std::mem::replace(&mut self.enc.body, Vec::with_capacity(if self.encoded { 0 } else { PIECE_BYTES + (64 << 10) }));
            self.held.push_back(Piece::Body(body));
            if self.encoded {
                self.held.push_back(Piece::Finish);
            }
            self.send_held()?;
        }
        Ok(out)
    }

    /// Pass held pieces to the writer; false while its queue is full.
    fn send_held(&mut self) -> Result<bool, String> {
        use std::sync::mpsc::TrySendError;
        let Some(tx) = self.tx.as_ref() else { return Ok(true) };
        while let Some(piece) = self.held.pop_front() {
            match tx.try_send(piece) {
                Ok(()) => {}
                Err(TrySendError::Full(piece)) => {
                    self.held.push_front(piece);
                    return Ok(false);
                }
                Err(TrySendError::Disconnected(_)) => return Err("the snapshot writer thread stopped".into()),
            }
        }
        if self.encoded {
            // Everything is queued: closing the channel after Finish changes nothing.
            self.tx = None;
        }
        Ok(true)
    }

    /// There is encoding to do and room to pass it on (the loop should not sleep).
    pub fn has_work(&self) -> bool {
        !self.encoded && self.held.is_empty()
    }

    /// The writer thread has ended (written, failed or cancelled): `finish` won't wait.
    pub fn is_written(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the writer thread: the final path and size, or why there is no file.
    pub fn finish(self) -> Result<(PathBuf, u64), StorageError> {
        drop(self.tx);
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => Err(StorageError::Inconsistent("the snapshot writer thread panicked".into())),
        }
    }

    /// Give up: the writer deletes its temp file and ends on its own (it holds at most a
    /// few pieces), so the caller need not wait; `finish` on the returned handle reaps it.
    /// `tree` is the frozen one if it is still around (else its freeze dies with it, or
    /// `Storage::snapshot_step` ends it).
    pub fn cancel(mut self, tree: Option<&mut DataTree>) -> std::thread::JoinHandle<Result<(PathBuf, u64), StorageError>> {
        if let Some(tree) = tree.filter(|t| t.frozen_at() == Some(self.zxid)) {
            tree.end_freeze();
        }
        self.held.clear();
        self.tx = None;
        self.thread
    }
}

/// How much of a streamed snapshot may be written but not yet on the device. The txn
/// log's fdatasync queues behind whatever the device is writing: a snapshot of hundreds
/// of MiB flushed in one fsync made a log sync wait 200 ms (so did every reply behind
/// it). Written back a window at a time, the log waits behind one window at most.
const WRITE_BEHIND_BYTES: u64 = 4 << 20;

/// Write-behind for a file being streamed out: start the writeback of the window just
/// written, wait for the one before it, and drop that from the page cache (a snapshot is
/// read again only to be sent to a follower, sequentially, and by recovery).
struct WriteBehind {
    /// Bytes before this offset have been handed to the device and waited for.
    done: u64,
    /// Writeback of [done, started) has been started.
    started: u64,
}

impl WriteBehind {
    fn advance(&mut self, f: &mut std::io::BufWriter<File>, written: u64) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        if written - self.started < WRITE_BEHIND_BYTES {
            return Ok(());
        }
        f.flush()?;
        let fd = f.get_ref().as_raw_fd();
        // SAFETY: plain syscalls on a descriptor we own, with in-range offsets.
        unsafe {
            libc::sync_file_range(fd, self.started as i64, (written - self.started) as i64, libc::SYNC_FILE_RANGE_WRITE);
            if self.started > self.done {
                let (off, len) = (self.done as i64, (self.started - self.done) as i64);
                let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                libc::sync_file_range(fd, off, len, flags);
                libc::posix_fadvise(fd, off, len, libc::POSIX_FADV_DONTNEED);
            }
        }
        // (Errors here only lose the pacing: the final fsync reports any real failure.)
        self.done = self.started;
        self.started = written;
        Ok(())
    }
}

/// The writer thread's side of `Stream`: a sender dropped before `Finish` is a cancel, and
/// leaves no file behind.
fn write_stream(dir: &Path, zxid: Zxid, rx: std::sync::mpsc::Receiver<Piece>) -> Result<(PathBuf, u64), StorageError> {
    write_durably(dir, zxid, |f| {
        f.write_all(&header(zxid))?;
        // Pieces are already large buffers: straight to the file, not copied through
        // the BufWriter (one memcpy of the whole snapshot less).
        f.flush()?;
        let mut size = HEADER_BYTES as u64;
        let mut behind = WriteBehind { done: 0, started: 0 };
        loop {
            match rx.recv() {
                Ok(Piece::Body(b)) => {
                    size += write_chunks(f.get_mut(), &b)?;
                    behind.advance(f, size)?;
                }
                Ok(Piece::Finish) => break,
                Err(_) => return Err(std::io::Error::other("snapshot cancelled")),
            }
        }
        f.write_all(&[0u8; 8])?;
        Ok(size + 8)
    })
}

/// Where a snapshot received from a leader is written while it arrives (a `.tmp` name, so
/// a crash mid-transfer leaves nothing recovery would load: `remove_partial` deletes it).
pub fn receive_path(dir: &Path, zxid: Zxid) -> PathBuf {
    dir.join(format!("{SNAP_PREFIX}{:x}.recv.tmp", zxid.0))
}

/// Load a snapshot file that is not (yet) under its final name, verifying everything as
/// `load` does and that its header names `zxid`.
pub fn load_expecting(path: &Path, zxid: Zxid) -> Result<Loaded, StorageError> {
    let io_err = |e: std::io::Error| StorageError::io(path, e);
    let mut f = std::io::BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err)?);
    let file_len = f.get_ref().metadata().map_err(io_err)?.len();
    let l = parse(&mut f, file_len, path)?;
    if l.zxid != zxid {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 16,
            reason: format!("header zxid {} where the leader announced {zxid}", l.zxid),
        });
    }
    Ok(l)
}

/// Completed snapshots in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    Ok(fsutil::list_by_zxid(dir, SNAP_PREFIX)?.into_iter().map(|(z, p)| (Zxid(z), p)).collect())
}

/// Remove `snapshot.*.tmp` left by a crash during a snapshot write or a SNAP transfer.
pub fn remove_partial(dir: &Path) -> Result<(), StorageError> {
    remove_tmp(dir, |_| true)
}

/// Remove the temp file of a snapshot write that was cancelled, keeping a snapshot being
/// received from a leader (`receive_path`).
pub fn remove_partial_named(dir: &Path) -> Result<(), StorageError> {
    remove_tmp(dir, |name| !name.ends_with(".recv.tmp"))
}

fn remove_tmp(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<(), StorageError> {
    let Ok(rd) = fs::read_dir(dir) else { return Ok(()) };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SNAP_PREFIX) && name.ends_with(".tmp") && wanted(&name) {
            fs::remove_file(e.path()).map_err(|err| StorageError::io(&e.path(), err))?;
        }
    }
    Ok(())
}

/// The newest snapshot that loads, falling back to older ones with a warning. `None` when
/// there is no snapshot at all; an error when snapshots exist and none is valid.
pub fn load_newest(dir: &Path) -> Result<Option<Loaded>, StorageError> {
    load_newest_at_most(dir, Zxid(i64::MAX))
}

/// As `load_newest`, among the snapshots at or below `z` (a truncation's base).
pub fn load_newest_at_most(dir: &Path, z: Zxid) -> Result<Option<Loaded>, StorageError> {
    let snaps = list(dir)?;
    let mut failures = Vec::new();
    for (_, path) in snaps.iter().rev().filter(|(sz, _)| *sz <= z) {
        match load(path) {
            Ok(l) => return Ok(Some(l)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "snapshot is not usable; trying the previous one");
                failures.push(e.to_string());
            }
        }
    }
    if failures.is_empty() {
        Ok(None)
    } else {
        Err(StorageError::Inconsistent(format!("no valid snapshot in {}: {}", dir.display(), failures.join("; "))))
    }
}

/// Why parsing stopped early.
enum Stop {
    /// The record continues in the next chunk.
    Short,
    Bad(String),
}

/// A bounds-checked reader over the buffered body.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        if self.b.len() - self.pos < n {
            return Err(Stop::Short);
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Stop> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn i32(&mut self) -> Result<i32, Stop> {
        Ok(self.u32()? as i32)
    }
    fn i64(&mut self) -> Result<i64, Stop> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(i64::from_le_bytes(a))
    }
    fn str(&mut self) -> Result<&'a str, Stop> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| Stop::Bad("invalid UTF-8 in a string".into()))
    }
}

/// The body being rebuilt, record by record.
struct Parser {
    tree: DataTree,
    acls: Vec<Vec<Acl>>,
    sessions: Vec<(SessionId, i32)>,
    nodes: u64,
    done: bool,
    /// Body bytes consumed before the current buffer, for error offsets.
    base: u64,
}

impl Parser {
    /// Parse every complete record in `buf`; returns how many bytes were consumed.
    fn feed(&mut self, buf: &[u8]) -> Result<usize, String> {
        let mut c = Cursor { b: buf, pos: 0 };
        loop {
            let at = c.pos;
            if self.done || at == buf.len() {
                return Ok(at);
            }
            match self.record(&mut c) {
                Ok(()) => {}
                Err(Stop::Short) => return Ok(at),
                Err(Stop::Bad(why)) => return Err(format!("{why} (record at body offset {})", self.base + at as u64)),
            }
        }
    }

    fn record(&mut self, c: &mut Cursor<'_>) -> Result<(), Stop> {
        match c.u8()? {
            TAG_ACL => {
                let id = c.u32()? as usize;
                if id != self.acls.len() {
                    return Err(Stop::Bad(format!("ACL id {id} out of sequence")));
                }
                let n = c.u32()? as usize;
                let mut list = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let perms = c.i32()?;
                    let scheme = c.str()?;
                    let idv = c.str()?;
                    list.push(Acl { perms, id: Id::new(scheme, idv) });
                }
                self.acls.push(list);
            }
            TAG_NODE => {
                let path = c.str()?;
                if path.len() > MAX_PATH_BYTES {
                    return Err(Stop::Bad(format!("path of {} bytes is over the limit", path.len())));
                }
                let dlen = c.i32()?;
                let data = if dlen < 0 { None } else { Some(c.take(dlen as usize)?) };
                let acl_id = c.u32()? as usize;
                let raw = RawStat {
                    czxid: c.i64()?,
                    mzxid: c.i64()?,
                    ctime: c.i64()?,
                    mtime: c.i64()?,
                    version: c.i32()?,
                    cversion: c.i32()?,
                    aversion: c.i32()?,
                    ephemeral_owner: c.i64()?,
                    pzxid: c.i64()?,
                };
                let acl = self.acls.get(acl_id).ok_or_else(|| Stop::Bad(format!("undefined ACL id {acl_id}")))?;
                self.tree
                    .insert_restored(path, data, acl, raw)
                    .map_err(|e| Stop::Bad(format!("node {path:?} cannot be restored: {e:?}")))?;
                self.nodes += 1;
            }
            TAG_SESSION => {
                let id = c.i64()?;
                let timeout = c.i32()?;
                self.sessions.push((SessionId(id), timeout));
            }
            TAG_END => {
                let n = c.i64()? as u64;
                let s = c.i64()? as u64;
                if n != self.nodes || s != self.sessions.len() as u64 {
                    return Err(Stop::Bad(format!(
                        "end record counts {n} nodes/{s} sessions, body has {}/{}",
                        self.nodes,
                        self.sessions.len()
                    )));
                }
                self.done = true;
            }
            t => return Err(Stop::Bad(format!("unknown record tag {t:#04x}"))),
        }
        Ok(())
    }
}

/// Load one snapshot file, verifying everything. Streams: each chunk is read into a small
/// buffer, CRC-checked, and its complete records inserted at once (no whole-file buffer:
/// a 2M-znode restart would otherwise fault in and copy hundreds of MiB first).
pub fn load(path: &Path) -> Result<Loaded, StorageError> {
    let io_err = |e: std::io::Error| StorageError::io(path, e);
    let mut f = std::io::BufReader::new(File::open(path).map_err(io_err)?);
    let file_len = f.get_ref().metadata().map_err(io_err)?.len();
    let l = parse(&mut f, file_len, path)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if fsutil::parse_hex_name(name, SNAP_PREFIX) != Some(l.zxid.0) {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 16,
            reason: format!("header zxid {} does not match the file name", l.zxid),
        });
    }
    Ok(l)
}

/// Load a snapshot file whatever its name (a copy an operator made), verifying everything
/// `load` does except that the name matches the header's zxid. Read-only.
pub fn load_unnamed(path: &Path) -> Result<Loaded, StorageError> {
    let io_err = |e: std::io::Error| StorageError::io(path, e);
    let mut f = std::io::BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err)?);
    let file_len = f.get_ref().metadata().map_err(io_err)?.len();
    parse(&mut f, file_len, path)
}

/// Decode the bytes of a snapshot file received from elsewhere (a leader's SNAP), with the
/// same checks as `load`: nothing in `bytes` is trusted. `origin` names the source in
/// errors (it stands where a file path would).
pub fn decode(bytes: &[u8], origin: &str) -> Result<Loaded, StorageError> {
    let mut r = bytes;
    parse(&mut r, bytes.len() as u64, Path::new(origin))
}

/// Parse a whole snapshot of `len` bytes from `r`; errors name `path`.
fn parse<R: Read>(f: &mut R, file_len: u64, path: &Path) -> Result<Loaded, StorageError> {
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt { path: path.to_path_buf(), offset, reason };
    let io_err = |e: std::io::Error| StorageError::io(path, e);
    let mut header = [0u8; HEADER_BYTES];
    if file_len < HEADER_BYTES as u64 {
        return Err(corrupt(0, "shorter than the header".into()));
    }
    f.read_exact(&mut header).map_err(io_err)?;
    if &header[..8] != SNAP_MAGIC {
        return Err(corrupt(0, "bad magic (not an arbor snapshot)".into()));
    }
    let version = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if version != SNAP_VERSION {
        return Err(corrupt(8, format!("unsupported snapshot version {version}")));
    }
    let stored = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    if stored != 0 {
        let mut h = header;
        h[12..16].fill(0);
        let actual = crc32c::crc32c(&h);
        if actual != stored {
            return Err(corrupt(12, format!("header CRC32C mismatch (stored {stored:#010x}, computed {actual:#010x})")));
        }
    }
    let mut zb = [0u8; 8];
    zb.copy_from_slice(&header[16..24]);
    let zxid = Zxid(i64::from_be_bytes(zb));
    if zxid.0 < 0 {
        return Err(corrupt(16, format!("negative zxid {zxid}")));
    }
    let mut p = Parser {
        tree: DataTree::new(),
        acls: Vec::new(),
        sessions: Vec::new(),
        nodes: 0,
        done: false,
        base: 0,
    };
    let mut pending: Vec<u8> = Vec::with_capacity(2 * CHUNK_BYTES);
    let mut off = HEADER_BYTES as u64;
    // A large snapshot takes seconds to load: say how far it got every few seconds.
    let mut report_at = std::time::Instant::now() + LOAD_PROGRESS_EVERY;
    loop {
        if std::time::Instant::now() >= report_at {
            report_at += LOAD_PROGRESS_EVERY;
            tracing::info!(path = %path.display(), read_bytes = off, total_bytes = file_len, znodes = p.nodes, "loading snapshot");
        }
        let mut ch = [0u8; 8];
        if off + 8 > file_len {
            return Err(corrupt(off, "truncated: no end chunk".into()));
        }
        f.read_exact(&mut ch).map_err(io_err)?;
        let len = u32::from_be_bytes([ch[0], ch[1], ch[2], ch[3]]) as usize;
        let crc = u32::from_be_bytes([ch[4], ch[5], ch[6], ch[7]]);
        if len == 0 {
            if crc != 0 || off + 8 != file_len {
                return Err(corrupt(off, "bad end chunk or bytes after it".into()));
            }
            break;
        }
        if len > CHUNK_BYTES || off + 8 + len as u64 > file_len {
            return Err(corrupt(off, format!("chunk length {len} runs past the end of the file")));
        }
        let start = pending.len();
        pending.resize(start + len, 0);
        f.read_exact(&mut pending[start..]).map_err(io_err)?;
        let actual = crc32c::crc32c(&pending[start..]);
        if actual != crc {
            return Err(corrupt(off, format!("chunk CRC32C mismatch (stored {crc:#010x}, computed {actual:#010x})")));
        }
        off += 8 + len as u64;
        let used = p.feed(&pending).map_err(|r| corrupt(off, r))?;
        p.base += used as u64;
        pending.drain(..used);
    }
    if !p.done || !pending.is_empty() {
        return Err(corrupt(off, "the body does not end with exactly one end record".into()));
    }
    let mut tree = p.tree;
    tree.set_last_applied(zxid);
    Ok(Loaded { zxid, tree, sessions: p.sessions, path: path.to_path_buf() })
}

//! Durable storage: the write-ahead txn log, snapshots, recovery, purge and the epoch files.
//!
//! # Layout
//! - `txnlog`: preallocated, CRC-checked, group-committed segments (`log.<zxid hex>`).
//! - `snapshot`: the tree + sessions at a zxid (`snapshot.<zxid hex>`), written off-thread.
//! - `recovery`: newest valid snapshot + replay of later records → tree, sessions, `Storage`.
//! - `fsutil`: fsync/rename/preallocation helpers.
//!
//! `Storage` is the event loop's `TxnSink`: `append` buffers a txn, `sync` writes and
//! fdatasyncs once per loop turn (before any reply leaves), and `after_sync` does the
//! housekeeping that needs the service: starting and reaping snapshots, preparing the next
//! log segment (which is where a full disk is noticed), purging.
//!
//! # Disk full or failing
//! Log segments are preallocated and the next one is prepared when the active one is three
//! quarters full. If that preparation fails (ENOSPC, EIO…), nothing applied so far is at
//! risk — the active segment still has room — so the service is told to refuse writes:
//! write requests and new sessions get `SystemError` (-1, "disk failed"; ZooKeeper would
//! drop the connection, which clients retry forever), reads keep working, session expiry
//! is postponed. Every 5 s the preparation is retried; once it succeeds, writes resume.
//! If a `sync` itself fails, txns of this turn are applied in memory but not durable, and
//! after a failed fsync nobody knows what the disk holds: the loop stops before flushing
//! any reply of that turn and the process exits with an error. Restarting recovers exactly
//! what was acknowledged. (Keeping the diverged tree to serve reads would show clients
//! writes that the log lost; rebuilding it in-process is possible but is a restart anyway.)
//!
//! # Replication (ensemble)
//! The event loop drives the replication core's storage needs through `TxnSink`:
//! - `persist_epochs`: `acceptedEpoch` then `currentEpoch`, each replaced atomically, a file
//!   whose value did not change is left alone (`read_epochs` reads them at start, 0 when
//!   absent).
//! - `truncate(z)` (TRUNC): the log is cut after its last record ≤ `z`, snapshots above `z`
//!   are deleted, and the state is rebuilt as recovery would (newest valid snapshot ≤ `z` +
//!   replay). If no snapshot ≤ `z` plus the log reaches back far enough, it is an error and
//!   nothing changes (the leader sends a snapshot instead). Appends continue after `z`.
//! - SNAP, leader side: `snapshot_now` starts a snapshot of the current state (the same
//!   streamed job as periodic snapshots, reused if one at that zxid is already
//!   running), `take_finished` reports jobs that ended, `snapshot_file` names a complete
//!   file; the loop streams that file to the follower in chunks.
//! - SNAP, follower side: `receive_begin` / `receive_chunk` write the arriving file under a
//!   `.recv.tmp` name (recovery ignores and deletes it); `install_received` verifies every
//!   byte (it comes from the network) and the announced zxid, fsyncs it, cuts the log after
//!   the snapshot zxid, renames the file into place, and starts an empty log after it.
//! - `recent_txns`: the tail of the log, for the core's in-memory history at start.
//!
//! Each of these waits for a running snapshot job first (so that none writes a snapshot of
//! a state being dropped) and orders its file operations so that a crash at any point
//! recovers to a prefix of the old history or to the new state, never a mixture. Zxids
//! jump at epoch changes, which is why log segments are named after the previous zxid + 1
//! (see `txnlog`). Truncate and install give sessions deadlines counted from `now` = 0,
//! as recovery at start does.
//!
//! # Files in `dataDir` / `dataLogDir`
//! `snapshot.<zxid>` (dataDir), `log.<zxid>` and `log.next` (dataLogDir), `acceptedEpoch`
//! and `currentEpoch` (dataDir; decimal text, as in ZooKeeper, replaced atomically).
//!
//! # Purge (ZooKeeper semantics)
//! With `autopurge.purgeInterval` = N > 0 hours, purge runs at start and every N hours: it
//! keeps the newest `autopurge.snapRetainCount` snapshots and every log segment holding
//! txns after the oldest kept snapshot. With 0 (the default) nothing is ever deleted.

pub mod fsutil;
pub mod sink;
pub mod recovery;
pub mod snapshot;
pub mod syncer;
pub mod txnlog;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::Summary;
use crate::config::Config;
use crate::proto::{Millis, ServerId, Zxid};
use crate::session::SessionTable;
use crate::tree::DataTree;
use crate::txn::Txn;

pub use recovery::{recover, Recovered};
pub use sink::TxnSink;
pub use txnlog::{recent_txns, LogOptions, LogReader, TxnLog};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: corrupt at byte offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("{0}")]
    Inconsistent(String),
    #[error("cannot encode txn {zxid}: {reason}")]
    Encode { zxid: Zxid, reason: String },
}

impl StorageError {
    pub fn io(path: &Path, source: io::Error) -> StorageError {
        StorageError::Io { path: path.to_path_buf(), source }
    }
}

pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";
pub const CURRENT_EPOCH: &str = "currentEpoch";

/// Read an epoch file (`None` if it does not exist yet).
pub fn read_epoch(dir: &Path, name: &str) -> Result<Option<u32>, StorageError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().map(Some).map_err(|_| StorageError::Corrupt {
            path,
            offset: 0,
            reason: format!("not an epoch number: {:?}", s.trim()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(&path, e)),
    }
}

/// Write an epoch file atomically (temp + fsync + rename + directory fsync).
pub fn write_epoch(dir: &Path, name: &str, epoch: u32) -> Result<(), StorageError> {
    fsutil::ensure_dir(dir)?;
    fsutil::write_atomic(&dir.join(name), format!("{epoch}\n").as_bytes())
}

/// Both epoch files: (acceptedEpoch, currentEpoch), 0 for a file that does not exist yet.
pub fn read_epochs(data_dir: &Path) -> Result<(u32, u32), StorageError> {
    Ok((read_epoch(data_dir, ACCEPTED_EPOCH)?.unwrap_or(0), read_epoch(data_dir, CURRENT_EPOCH)?.unwrap_or(0)))
}

/// Delete every snapshot above `z` (newest first, each deletion durable before the next,
/// so a crash never leaves a newer snapshot without the older ones). Returns how many.
fn remove_snapshots_above(dir: &Path, z: Zxid) -> Result<usize, StorageError> {
    let snaps = snapshot::list(dir)?;
    let mut n = 0;
    for (_, path) in snaps.iter().rev().filter(|(sz, _)| *sz > z) {
        std::fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
        fsutil::sync_dir(dir)?;
        n += 1;
    }
    Ok(n)
}

/// What purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub snapshots: Vec<PathBuf>,
    pub segments: Vec<PathBuf>,
}

/// Keep the newest `retain` snapshots and the log segments holding txns after the oldest
/// kept one (a segment is removable when the next segment starts at or below that
/// snapshot's zxid + 1). Without snapshots nothing is removed.
pub fn purge(data_dir: &Path, log_dir: &Path, retain: usize) -> Result<PurgeReport, StorageError> {
    let retain = retain.max(1);
    let snaps = snapshot::list(data_dir)?;
    let mut report = PurgeReport::default();
    if snaps.is_empty() {
        return Ok(report);
    }
    let keep_from = snaps.len().saturating_sub(retain);
    let oldest_kept = snaps[keep_from].0;
    for (_, p) in &snaps[..keep_from] {
        std::fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
        report.snapshots.push(p.clone());
    }
    let segs = fsutil::list_by_zxid(log_dir, txnlog::SEGMENT_PREFIX)?;
    for w in segs.windows(2) {
        if w[1].0 <= oldest_kept.0 + 1 {
            std::fs::remove_file(&w[0].1).map_err(|e| StorageError::io(&w[0].1, e))?;
            report.segments.push(w[0].1.clone());
        }
    }
    if !report.snapshots.is_empty() {
        fsutil::sync_dir(data_dir)?;
    }
    if !report.segments.is_empty() {
        fsutil::sync_dir(log_dir)?;
    }
    Ok(report)
}

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub snap_count: u64,
    pub force_sync: bool,
    pub segment_bytes: u64,
    pub snap_retain_count: u32,
    pub purge_interval_h: u32,
}

impl StorageConfig {
    pub fn from_config(cfg: &Config) -> StorageConfig {
        StorageConfig {
            data_dir: cfg.data_dir.clone(),
            data_log_dir: cfg.data_log_dir.clone(),
            snap_count: cfg.snap_count.max(1),
            force_sync: cfg.force_sync,
            segment_bytes: cfg.pre_alloc_size_kb.max(64) * 1024,
            snap_retain_count: cfg.autopurge_snap_retain_count,
            purge_interval_h: cfg.autopurge_purge_interval_h,
        }
    }

    pub fn log_options(&self) -> LogOptions {
        LogOptions { segment_bytes: self.segment_bytes, force_sync: self.force_sync }
    }
}

/// Counters for diagnostics and the benchmarks.
#[derive(Clone, Debug, Default)]
pub struct StorageStats {
    pub snapshots_written: u64,
    pub snapshots_failed: u64,
    /// Longest time one loop turn spent on a snapshot (freezing, or one encoding step).
    pub longest_snapshot_stall_us: u64,
    /// Nodes the last snapshot copied aside because a write changed them before the scan
    /// reached them (see `tree::freeze`).
    pub last_snapshot_copies: u64,
    pub last_snapshot_zxid: Zxid,
    /// Wall-clock time (ms since the epoch) the last snapshot was completed.
    pub last_snapshot_wall_ms: i64,
}

/// What the storage measures for `mntr` and `/metrics` (see `crate::metrics`).
#[derive(Clone, Debug, Default)]
pub struct StorageMetrics {
    /// Each fdatasync of the txn log, µs (ZooKeeper's `fsynctime`).
    pub fsync_time: Summary,
    /// Txns covered by each fdatasync: the group commit (`sync_processor_batch_size`).
    pub sync_batch_size: Summary,
    /// Each snapshot from start to its file being complete, µs (`snapshottime`).
    pub snapshot_time: Summary,
}


struct SnapshotJob {
    started: Instant,
    stream: snapshot::Stream,
    /// Nodes encoded so far (progress in the log).
    nodes: u64,
    /// When it last logged its progress.
    reported: Instant,
}

/// One loop turn's share of a snapshot: at most this many nodes, or this many path and
/// data bytes, are encoded per turn (about 0.2–0.5 ms of the loop's time with small
/// values), so no client waits behind a whole-tree walk.
const SNAP_STEP_NODES: u64 = 2048;
const SNAP_STEP_BYTES: u64 = 512 << 10;
/// How long the loop may sleep while the snapshot waits for its writer thread.
const SNAP_WRITER_POLL_MS: u64 = 2;
/// A long snapshot logs how far it got this often.
const SNAP_PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// A seed that differs between the servers of an ensemble started together.
fn roll_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

/// How long to wait before trying again to prepare log space after a failure.
const SPACE_RETRY: Duration = Duration::from_secs(5);

pub struct Storage {
    cfg: StorageConfig,
    log: TxnLog,
    since_snapshot: u64,
    /// Take a snapshot once `since_snapshot` reaches this: snapCount/2 plus a random part
    /// of snapCount/2, drawn anew after each snapshot (ZooKeeper's `randRoll`), so that
    /// the servers of an ensemble do not all snapshot at once.
    snap_threshold: u64,
    /// State of the generator drawing `snap_threshold`.
    roll: u64,
    job: Option<SnapshotJob>,
    next_purge: Option<Instant>,
    /// Why writes are refused (the disk cannot take more), if they are.
    disk_problem: Option<String>,
    next_space_try: Instant,
    /// `disk_problem` changed and the service has not been told yet.
    tell_service: bool,
    /// (acceptedEpoch, currentEpoch) as on disk, once read or written.
    epochs: Option<(u32, u32)>,
    /// Snapshot jobs that ended since the loop last asked: (zxid, written).
    finished: Vec<(Zxid, bool)>,
    /// Writer threads of cancelled snapshots, reaped once they end (each deletes its temp
    /// file and stops at once; nobody waits for them).
    retired: Vec<JoinHandle<Result<(PathBuf, u64), StorageError>>>,
    /// A snapshot arriving from the leader.
    receiving: Option<Receiving>,
    /// The fdatasync thread (once the loop gave a waker; syncs run inline before that).
    syncer: Option<syncer::Syncer>,
    /// Every record up to this zxid is durable.
    durable: Zxid,
    pub stats: StorageStats,
    pub metrics: StorageMetrics,
    /// Txns appended since the last sync was started (its batch size).
    unsynced_appends: u64,
}

/// A leader's snapshot being written to disk as its chunks arrive.
struct Receiving {
    zxid: Zxid,
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    written: u64,
    started: Instant,
}

impl Storage {
    pub fn new(cfg: StorageConfig, log: TxnLog) -> Storage {
        let next_purge = (cfg.purge_interval_h > 0).then(Instant::now);
        // What recovery found on disk is durable (a torn tail was cut).
        let durable = log.last_zxid();
        let mut s = Storage {
            cfg,
            log,
            since_snapshot: 0,
            snap_threshold: 0,
            roll: roll_seed(),
            job: None,
            next_purge,
            disk_problem: None,
            next_space_try: Instant::now(),
            tell_service: false,
            epochs: None,
            finished: Vec::new(),
            retired: Vec::new(),
            receiving: None,
            syncer: None,
            durable,
            stats: StorageStats::default(),
            metrics: StorageMetrics::default(),
            unsynced_appends: 0,
        };
        s.snap_threshold = s.next_threshold();
        s
    }

    /// Run fdatasync on a thread from now on, waking the loop through `wake` when one
    /// completes (see `syncer`). Without it (tests, tools) every sync runs inline.
    pub fn start_sync_thread(&mut self, wake: std::sync::Arc<dyn syncer::Wake>) -> Result<(), StorageError> {
        if self.cfg.force_sync && self.syncer.is_none() {
            self.syncer = Some(syncer::Syncer::start(wake).map_err(|e| StorageError::io(&self.cfg.data_log_dir, e))?);
        }
        Ok(())
    }

    /// Write the appended records to the log file and, if no sync is running, start one
    /// that covers them (inline without the thread). Never waits for the device with
    /// the thread, except at a segment boundary (see `TxnLog::write_pending`).
    pub fn flush_log(&mut self) -> Result<(), StorageError> {
        let written = self.log.write_pending()?;
        match self.syncer.as_mut() {
            None => {
                if let Some((file, z)) = written {
                    if self.cfg.force_sync {
                        let t0 = Instant::now();
                        fsutil::datasync(&file).map_err(|e| StorageError::io(&self.cfg.data_log_dir, e))?;
                        self.metrics.fsync_time.record_duration(t0.elapsed());
                        self.metrics.sync_batch_size.record(std::mem::take(&mut self.unsynced_appends));
                    }
                    self.durable = z;
                }
            }
            Some(_) => self.kick_sync(written.map(|(f, _)| f)),
        }
        Ok(())
    }

    /// Start a sync of what is written and not yet durable, if none is in flight.
    fn kick_sync(&mut self, file: Option<std::sync::Arc<std::fs::File>>) {
        let written = self.log.written();
        let Some(s) = self.syncer.as_mut() else { return };
        if s.in_flight().is_some() || written <= self.durable {
            return;
        }
        if let Some(f) = file.or_else(|| self.log.active_file()) {
            s.request(f, written);
            self.metrics.sync_batch_size.record(std::mem::take(&mut self.unsynced_appends));
        }
    }

    /// Up to where the log is durable, after taking in a finished sync (and starting the
    /// next one if more was written meanwhile). An error is fatal: after a failed
    /// fdatasync nobody knows what the disk holds.
    pub fn poll_durable(&mut self) -> Result<Zxid, StorageError> {
        if let Some(r) = self.syncer.as_mut().and_then(|s| s.poll()) {
            if let Some(took) = self.syncer.as_mut().and_then(|s| s.take_took()) {
                self.metrics.fsync_time.record_duration(took);
            }
            self.durable = r.map_err(|e| StorageError::io(&self.cfg.data_log_dir, e))?.max(self.durable);
            self.kick_sync(None);
        }
        Ok(self.durable)
    }

    /// Wait for a running sync, then write and sync everything inline: before the log is
    /// cut or replaced, and before a snapshot is installed, every record must be durable
    /// and no late completion may speak for records that are gone.
    fn sync_all_now(&mut self) -> Result<(), StorageError> {
        if let Some(r) = self.syncer.as_mut().and_then(|s| s.wait()) {
            r.map_err(|e| StorageError::io(&self.cfg.data_log_dir, e))?;
        }
        self.log.sync()?;
        self.durable = self.log.written();
        Ok(())
    }

    /// The newest complete snapshot on disk, if any (at start: what recovery loaded).
    pub fn newest_snapshot(&self) -> Option<Zxid> {
        snapshot::list(&self.cfg.data_dir).ok()?.last().map(|(z, _)| *z)
    }

    /// The complete snapshot file at `zxid`, if there is one (written as temp + rename, so
    /// the final name only ever names a whole file).
    pub fn snapshot_file(&self, zxid: Zxid) -> Option<PathBuf> {
        let p = snapshot::snapshot_path(&self.cfg.data_dir, zxid);
        p.is_file().then_some(p)
    }

    /// The zxid of the snapshot being written, if one is.
    pub fn running_snapshot(&self) -> Option<Zxid> {
        self.job.as_ref().map(|j| j.stream.zxid())
    }

    /// Snapshot jobs that ended since the last call: (zxid, whether the file was written).
    pub fn take_finished(&mut self) -> Vec<(Zxid, bool)> {
        std::mem::take(&mut self.finished)
    }

    /// Make a snapshot of the current state now, for a leader's SNAP. A job already running
    /// at the same zxid is the one wanted; one at an older zxid (a periodic snapshot) is
    /// cancelled, since the new one supersedes it. Returns false if no job could be started.
    pub fn snapshot_now(&mut self, tree: &mut DataTree, sessions: &SessionTable) -> bool {
        let zxid = tree.last_applied();
        if self.running_snapshot() == Some(zxid) {
            return true;
        }
        self.cancel_snapshot(Some(tree), "a newer one is needed");
        self.start_snapshot(tree, sessions);
        self.running_snapshot() == Some(zxid)
    }

    /// Drop the running snapshot job, if any: whoever waited for it (a SNAP) learns it
    /// will not come. `tree` is the frozen one, if it is still around.
    fn cancel_snapshot(&mut self, tree: Option<&mut DataTree>, why: &str) {
        let Some(job) = self.job.take() else { return };
        let zxid = job.stream.zxid();
        tracing::info!(%zxid, reason = why, "snapshot cancelled");
        self.finished.push((zxid, false));
        self.retired.push(job.stream.cancel(tree));
    }

    /// Cancel the running snapshot and wait until no writer thread is left: one whose
    /// `Finish` was already queued would otherwise still rename its file into place, and
    /// before a TRUNC or an installed SNAP that file would be a state being dropped.
    fn cancel_snapshot_and_wait(&mut self, why: &str) {
        self.cancel_snapshot(None, why);
        for h in self.retired.drain(..) {
            let _ = h.join();
        }
    }

    /// A snapshot at `zxid` of `size` bytes starts arriving from the leader: open its temp
    /// file (any earlier unfinished one is dropped).
    pub fn receive_begin(&mut self, zxid: Zxid, size: u64) -> Result<(), StorageError> {
        self.receive_abort();
        fsutil::ensure_dir(&self.cfg.data_dir)?;
        let path = snapshot::receive_path(&self.cfg.data_dir, zxid);
        let file = std::fs::File::create(&path).map_err(|e| StorageError::io(&path, e))?;
        tracing::info!(%zxid, bytes = size, path = %path.display(), "sync: SNAP: receiving the leader's snapshot");
        let file = std::io::BufWriter::with_capacity(1 << 20, file);
        self.receiving = Some(Receiving { zxid, path, file, written: 0, started: Instant::now() });
        Ok(())
    }

    /// The next bytes of the snapshot being received.
    pub fn receive_chunk(&mut self, data: &[u8]) -> Result<(), StorageError> {
        use std::io::Write;
        let Some(r) = self.receiving.as_mut() else {
            return Err(StorageError::Inconsistent("a snapshot chunk arrived with no snapshot being received".into()));
        };
        r.file.write_all(data).map_err(|e| StorageError::io(&r.path, e))?;
        r.written += data.len() as u64;
        Ok(())
    }

    /// Drop a partly received snapshot (the connection to the leader broke).
    pub fn receive_abort(&mut self) {
        if let Some(r) = self.receiving.take() {
            drop(r.file);
            let _ = std::fs::remove_file(&r.path);
        }
    }

    /// The received snapshot is complete: make it durable, verify it (every CRC, the zxid
    /// the leader announced), and only then replace the local state with it, in the order
    /// `install` documents. A file that fails verification is deleted and nothing local
    /// changes (`StorageError::Corrupt`).
    pub fn install_received(
        &mut self,
        zxid: Zxid,
        server: ServerId,
        wall_ms: i64,
        now: Millis,
    ) -> Result<(DataTree, SessionTable), StorageError> {
        let Some(r) = self.receiving.take() else {
            return Err(StorageError::Inconsistent(format!("no snapshot at zxid {zxid} was received")));
        };
        let Receiving { zxid: got, path, file, written, started } = r;
        let file = file.into_inner().map_err(|e| StorageError::io(&path, e.into_error()))?;
        let received_ms = started.elapsed().as_millis();
        // Verify before the fsync: a bad file costs no disk flush, and what is read back
        // (from the page cache) is what the fsync makes durable.
        let checked = match snapshot::load_expecting(&path, zxid) {
            Ok(l) if got == zxid => file.sync_all().map_err(|e| StorageError::io(&path, e)).map(|()| l),
            Ok(_) => Err(StorageError::Inconsistent(format!("received snapshot {got}, asked to install {zxid}"))),
            Err(e) => Err(e),
        };
        drop(file);
        let loaded = match checked {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let x = loaded.zxid;
        // The local state is about to be replaced: a snapshot of it is moot.
        self.cancel_snapshot_and_wait("the leader's snapshot replaces the state");
        self.sync_all_now()?;
        remove_snapshots_above(&self.cfg.data_dir, x)?;
        self.log.truncate(x)?;
        let final_path = snapshot::snapshot_path(&self.cfg.data_dir, x);
        std::fs::rename(&path, &final_path).map_err(|e| StorageError::io(&final_path, e))?;
        fsutil::sync_dir(&self.cfg.data_dir)?;
        self.log.reset(x)?;
        self.durable = x;
        self.since_snapshot = 0;
        self.stats.last_snapshot_zxid = x;
        let mut sessions = SessionTable::new(server, wall_ms);
        recovery::add_sessions(&mut sessions, &loaded.sessions, now);
        tracing::info!(
            zxid = %x,
            bytes = written,
            znodes = loaded.tree.node_count(),
            sessions = sessions.len(),
            path = %final_path.display(),
            received_ms,
            install_ms = started.elapsed().as_millis() - received_ms,
            "sync: SNAP: installed the leader's snapshot; txn log restarted after it"
        );
        Ok((loaded.tree, sessions))
    }

    pub fn log(&self) -> &TxnLog {
        &self.log
    }

    /// Why writes are refused, if they are.
    pub fn disk_problem(&self) -> Option<&str> {
        self.disk_problem.as_deref()
    }

    /// Start a snapshot of the current state: freeze the tree (`tree::freeze`, one zeroed
    /// bit per node) and start the writer thread; `snapshot_step` then encodes it slice by
    /// slice between loop turns. The log is rolled, so the segments before this point can
    /// be purged once snapshots cover them.
    pub fn start_snapshot(&mut self, tree: &mut DataTree, sessions: &SessionTable) {
        let t0 = Instant::now();
        let zxid = tree.last_applied();
        if let Err(e) = fsutil::ensure_dir(&self.cfg.data_dir) {
            self.stats.snapshots_failed += 1;
            tracing::warn!(error = %e, "cannot take a snapshot; the txn log still holds everything");
            return;
        }
        let stream = match snapshot::Stream::start(&self.cfg.data_dir, tree, sessions) {
            Ok(s) => s,
            Err(e) => {
                self.stats.snapshots_failed += 1;
                tracing::warn!(error = %e, "cannot start the snapshot writer thread; the txn log still holds everything");
                return;
            }
        };
        let stall_us = t0.elapsed().as_micros() as u64;
        self.stats.longest_snapshot_stall_us = self.stats.longest_snapshot_stall_us.max(stall_us);
        self.log.request_roll();
        // The next segment is prepared off the loop; the roll waits for it (a failure
        // shows up again, and is handled, in `check_space`).
        let _ = self.log.ensure_spare();
        self.since_snapshot = 0;
        tracing::info!(%zxid, znodes = tree.node_count(), sessions = sessions.len(), "snapshot started");
        self.job = Some(SnapshotJob { started: t0, stream, nodes: 0, reported: t0 });
    }

    /// Between loop turns: encode the next slice of the running snapshot, and take in a
    /// finished one. `tree` is the service's (the one frozen, unless it was replaced).
    pub fn snapshot_step(&mut self, tree: &mut DataTree) {
        self.retired.retain(|h| !h.is_finished());
        let Some(job) = self.job.as_mut() else {
            // A freeze whose job was cancelled without the tree at hand ends here: left
            // alone it would keep copying nodes aside.
            if tree.frozen_at().is_some() {
                tree.end_freeze();
            }
            return;
        };
        let t0 = Instant::now();
        let copies = tree.freeze_copies();
        match job.stream.step(tree, SNAP_STEP_NODES, SNAP_STEP_BYTES) {
            Ok(step) => {
                job.nodes += step.nodes;
                let us = t0.elapsed().as_micros() as u64;
                self.stats.longest_snapshot_stall_us = self.stats.longest_snapshot_stall_us.max(us);
                if step.encoded && step.nodes > 0 {
                    self.stats.last_snapshot_copies = copies;
                }
                if job.reported.elapsed() >= SNAP_PROGRESS_EVERY {
                    job.reported = Instant::now();
                    tracing::info!(zxid = %job.stream.zxid(), nodes = job.nodes, of = tree.node_count(), "snapshot in progress");
                }
            }
            Err(why) => {
                let zxid = job.stream.zxid();
                self.stats.snapshots_failed += 1;
                tracing::warn!(%zxid, error = %why, "snapshot failed; the txn log still holds everything");
                self.cancel_snapshot(Some(tree), "failed");
                return;
            }
        }
        if job.stream.is_written() {
            self.reap_snapshot();
        }
    }

    /// The running snapshot's writer thread has ended: record how.
    fn reap_snapshot(&mut self) {
        let Some(job) = self.job.take() else { return };
        let zxid = job.stream.zxid();
        match job.stream.finish() {
            Ok((path, bytes)) => {
                self.finished.push((zxid, true));
                self.stats.snapshots_written += 1;
                self.stats.last_snapshot_zxid = zxid;
                self.stats.last_snapshot_wall_ms = wall_clock_ms();
                self.metrics.snapshot_time.record_duration(job.started.elapsed());
                tracing::info!(
                    %zxid,
                    nodes = job.nodes,
                    bytes,
                    copied_aside = self.stats.last_snapshot_copies,
                    took_ms = job.started.elapsed().as_millis() as u64,
                    path = %path.display(),
                    "snapshot done"
                );
            }
            Err(e) => {
                self.finished.push((zxid, false));
                self.stats.snapshots_failed += 1;
                tracing::warn!(%zxid, error = %e, "snapshot failed; the txn log still holds everything");
            }
        }
    }

    /// How long the loop may sleep as far as the snapshot is concerned: not at all while
    /// there is encoding to do, a little while the writer thread works.
    pub fn snapshot_wait_ms(&self) -> Option<u64> {
        let job = self.job.as_ref()?;
        Some(if job.stream.has_work() { 0 } else { SNAP_WRITER_POLL_MS })
    }

    /// Durably record the replication epochs, `acceptedEpoch` first (so that on disk
    /// currentEpoch ≤ acceptedEpoch holds after a crash between the two). A file whose
    /// value is unchanged is not rewritten.
    pub fn write_epochs(&mut self, accepted: u32, current: u32) -> Result<(), StorageError> {
        let on_disk = match self.epochs {
            Some(e) => e,
            None => read_epochs(&self.cfg.data_dir)?,
        };
        // Unknown after a failure: read the files again next time.
        self.epochs = None;
        if accepted != on_disk.0 {
            write_epoch(&self.cfg.data_dir, ACCEPTED_EPOCH, accepted)?;
        }
        if current != on_disk.1 {
            write_epoch(&self.cfg.data_dir, CURRENT_EPOCH, current)?;
        }
        self.epochs = Some((accepted, current));
        Ok(())
    }

    /// Drop every txn above `z` (a leader's TRUNC) and rebuild the state as recovery would
    /// from what is left: the newest valid snapshot ≤ `z` and the log after it.
    ///
    /// Order, so that a crash at any point leaves a state recovery turns into a prefix of
    /// the old history: wait for a running snapshot job (it could write a snapshot above
    /// `z`), write what is buffered, check that snapshot + log reach back far enough (else
    /// an error and nothing changes: the leader must send a snapshot), delete snapshots
    /// above `z`, cut the log, replay.
    pub fn truncate_to(&mut self, z: Zxid, server: ServerId, wall_ms: i64, now: Millis) -> Result<(DataTree, SessionTable), StorageError> {
        // It could only write a snapshot above `z`.
        self.cancel_snapshot_and_wait("the state is being truncated");
        self.sync_all_now()?;
        let base = snapshot::load_newest_at_most(&self.cfg.data_dir, z)?;
        let base_zxid = base.as_ref().map_or(Zxid::ZERO, |l| l.zxid);
        // Records after the base must start right after it: a log that begins later (purged)
        // cannot rebuild the state at `z`.
        LogReader::new(&self.cfg.data_log_dir, base_zxid).map_err(|e| {
            StorageError::Inconsistent(format!("cannot truncate to zxid {z}: no snapshot at or below it covers the start of the txn log ({e})"))
        })?;
        let removed = remove_snapshots_above(&self.cfg.data_dir, z)?;
        let last_kept = self.log.truncate(z)?;
        self.durable = z;
        let mut sessions = SessionTable::new(server, wall_ms);
        let mut tree = match base {
            Some(l) => {
                recovery::add_sessions(&mut sessions, &l.sessions, now);
                l.tree
            }
            None => DataTree::new(),
        };
        let mut triggers = Vec::new();
        let mut replayed = 0u64;
        for txn in LogReader::new(&self.cfg.data_log_dir, base_zxid)? {
            let txn = txn?;
            if txn.header.zxid > z {
                return Err(StorageError::Inconsistent(format!("txn log still holds zxid {} after truncating to {z}", txn.header.zxid)));
            }
            recovery::replay_one(&mut tree, &mut sessions, &txn, now, &mut triggers);
            replayed += 1;
        }
        self.since_snapshot = replayed;
        tracing::info!(
            zxid = %z,
            last_kept = %last_kept.map_or("none".to_string(), |k| k.to_string()),
            snapshots_deleted = removed,
            snapshot = %base_zxid,
            replayed,
            "txn log truncated; state rebuilt from the snapshot and the log"
        );
        Ok((tree, sessions))
    }

    /// The last `max` txns of the log (oldest first), e.g. for the replication core's
    /// in-memory history at start. Reads only the segments it needs.
    pub fn recent_txns(&self, max: usize) -> Result<Vec<Txn>, StorageError> {
        recent_txns(&self.cfg.data_log_dir, Zxid(i64::MIN), max)
    }

    /// Between loop turns: snapshots, log space, purge. `Some` when writes must stop
    /// (`Some(Some(reason))`) or may resume (`Some(None)`).
    pub fn housekeeping(&mut self, tree: &mut DataTree, sessions: &SessionTable) -> Option<Option<String>> {
        self.snapshot_step(tree);
        if self.job.is_none() && self.since_snapshot >= self.snap_threshold {
            self.snap_threshold = self.next_threshold();
            self.start_snapshot(tree, sessions);
        }
        self.check_space();
        if let Some(at) = self.next_purge {
            if Instant::now() >= at {
                self.next_purge = Some(at + Duration::from_secs(self.cfg.purge_interval_h as u64 * 3600));
                self.run_purge();
            }
        }
        if self.tell_service {
            self.tell_service = false;
            return Some(self.disk_problem.clone());
        }
        None
    }

    /// snapCount/2 + a uniform draw from [0, snapCount/2] (xorshift64*: no cryptographic
    /// need, and no dependency for it).
    fn next_threshold(&mut self) -> u64 {
        self.roll ^= self.roll >> 12;
        self.roll ^= self.roll << 25;
        self.roll ^= self.roll >> 27;
        let r = self.roll.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let half = self.cfg.snap_count / 2;
        (half + r % (half + 1)).max(1)
    }

    fn check_space(&mut self) {
        if self.disk_problem.is_some() && Instant::now() < self.next_space_try {
            return;
        }
        match self.log.ensure_spare() {
            Ok(()) => {
                if self.disk_problem.take().is_some() {
                    tracing::warn!("txn log space is available again; accepting writes");
                    self.tell_service = true;
                }
            }
            Err(e) => {
                self.next_space_try = Instant::now() + SPACE_RETRY;
                if self.disk_problem.is_none() {
                    tracing::error!(
                        error = %e,
                        retry_s = SPACE_RETRY.as_secs(),
                        "disk trouble: cannot prepare the next txn log segment. REFUSING WRITES \
                         (clients get SystemError) and serving reads only"
                    );
                    self.disk_problem = Some(format!("txn log disk failed: {e}"));
                    self.tell_service = true;
                }
            }
        }
    }

    fn run_purge(&mut self) {
        let retain = self.cfg.snap_retain_count as usize;
        match purge(&self.cfg.data_dir, &self.cfg.data_log_dir, retain) {
            Ok(r) if r.snapshots.is_empty() && r.segments.is_empty() => {}
            Ok(r) => tracing::info!(snapshots = r.snapshots.len(), segments = r.segments.len(), "purge removed old files"),
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
    }
}

impl TxnSink for Storage {
    fn append(&mut self, txn: &Txn) -> io::Result<()> {
        self.log.append(txn).map_err(|e| io::Error::other(e.to_string()))?;
        self.since_snapshot += 1;
        self.unsynced_appends += 1;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_all_now().map_err(fatal_log_error)
    }

    fn attach_waker(&mut self, waker: std::sync::Arc<mio::Waker>) -> io::Result<()> {
        self.start_sync_thread(waker).map_err(|e| io::Error::other(format!("cannot start the fsync thread: {e}")))
    }

    fn flush_log(&mut self) -> io::Result<()> {
        self.flush_log().map_err(fatal_log_error)
    }

    fn durable(&mut self) -> io::Result<Zxid> {
        self.poll_durable().map_err(fatal_log_error)
    }

    fn last_appended(&self) -> Zxid {
        self.log.last_zxid()
    }

    fn persist_epochs(&mut self, accepted: u32, current: u32) -> io::Result<()> {
        self.write_epochs(accepted, current).map_err(|e| io::Error::other(format!("cannot persist the epochs: {e}")))
    }

    fn truncate(&mut self, zxid: Zxid, server: u64) -> io::Result<(DataTree, SessionTable)> {
        self.truncate_to(zxid, ServerId(server), wall_clock_ms(), 0)
            .map_err(|e| io::Error::other(format!("cannot truncate the txn log to zxid {zxid}: {e}")))
    }

    fn newest_snapshot(&self) -> Option<Zxid> {
        Storage::newest_snapshot(self)
    }

    fn snapshot_file(&self, zxid: Zxid) -> Option<PathBuf> {
        Storage::snapshot_file(self, zxid)
    }

    fn running_snapshot(&self) -> Option<Zxid> {
        Storage::running_snapshot(self)
    }

    fn snapshot_now(&mut self, tree: &mut DataTree, sessions: &SessionTable) -> bool {
        Storage::snapshot_now(self, tree, sessions)
    }

    fn snapshot_wait_ms(&self) -> Option<u64> {
        Storage::snapshot_wait_ms(self)
    }

    fn take_finished_snapshots(&mut self) -> Vec<(Zxid, bool)> {
        self.take_finished()
    }

    fn receive_snapshot_begin(&mut self, zxid: Zxid, size: u64) -> io::Result<()> {
        self.receive_begin(zxid, size).map_err(|e| io::Error::other(e.to_string()))
    }

    fn receive_snapshot_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.receive_chunk(data).map_err(|e| io::Error::other(e.to_string()))
    }

    fn receive_snapshot_abort(&mut self) {
        self.receive_abort()
    }

    fn install_received_snapshot(&mut self, zxid: Zxid, server: u64) -> io::Result<(DataTree, SessionTable)> {
        self.install_received(zxid, ServerId(server), wall_clock_ms(), 0).map_err(|e| {
            // Corrupt / inconsistent: found before anything local changed.
            let kind = match e {
                StorageError::Corrupt { .. } | StorageError::Inconsistent(_) => io::ErrorKind::InvalidData,
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, format!("cannot install the leader's snapshot: {e}"))
        })
    }

    fn after_sync(&mut self, tree: &mut DataTree, sessions: &SessionTable) -> Option<Option<String>> {
        self.housekeeping(tree, sessions)
    }

    fn metrics(&self) -> Option<&StorageMetrics> {
        Some(&self.metrics)
    }

    fn last_snapshot(&self) -> Option<(Zxid, i64)> {
        (self.stats.snapshots_written > 0).then_some((self.stats.last_snapshot_zxid, self.stats.last_snapshot_wall_ms))
    }
}

/// A failed log write or fdatasync: the loop stops (see "Disk full or failing").
fn fatal_log_error(e: StorageError) -> io::Error {
    tracing::error!(
        error = %e,
        "disk trouble: txn log write/fsync failed. Writes not yet durable are applied in memory \
         but may not be on disk, so nothing that reveals them is sent and the server stops; \
         a restart recovers every acknowledged write."
    );
    io::Error::other(e.to_string())
}

/// Milliseconds since the Unix epoch (seeds fresh session ids after a rebuilt state).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

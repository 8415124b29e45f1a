//! What the event loop needs of the storage: `TxnSink` (the loop sits above the storage;
//! the storage knows neither the loop nor the service).

use std::io;

use crate::proto::Zxid;
use crate::session::SessionTable;
use crate::tree::DataTree;
use crate::txn::Txn;

/// Where txns go before they are acknowledged (the storage layer).
///
/// Durability without waiting: each turn the loop calls `flush_log` (records go to the
/// file and a sync starts on the sync thread if none is running) and `durable` (how far
/// the log is durable now); a finished sync wakes the loop through the waker it attached.
pub trait TxnSink {
    fn append(&mut self, txn: &Txn) -> io::Result<()>;
    /// Make everything appended so far durable, waiting for it.
    fn sync(&mut self) -> io::Result<()>;
    /// From now on sync off the loop thread, waking the loop when a sync completes.
    fn attach_waker(&mut self, _waker: std::sync::Arc<mio::Waker>) -> io::Result<()> {
        Ok(())
    }
    /// Write what was appended and start making it durable (inline without a waker).
    fn flush_log(&mut self) -> io::Result<()> {
        self.sync()
    }
    /// Every txn up to this zxid is durable.
    fn durable(&mut self) -> io::Result<Zxid> {
        Ok(self.last_appended())
    }
    /// The last zxid appended.
    fn last_appended(&self) -> Zxid;
    /// Durably record the replication epochs (before the core is stepped again).
    fn persist_epochs(&mut self, _accepted: u32, _current: u32) -> io::Result<()> {
        Ok(())
    }
    /// Drop log records above `zxid` and rebuild the state from snapshot + log.
    fn truncate(&mut self, _zxid: Zxid, _server: u64) -> io::Result<(DataTree, SessionTable)> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this txn sink cannot truncate"))
    }
    /// The newest complete snapshot on disk (told to the replication core at start).
    fn newest_snapshot(&self) -> Option<Zxid> {
        None
    }
    /// The complete snapshot file at `zxid`, if there is one.
    fn snapshot_file(&self, _zxid: Zxid) -> Option<std::path::PathBuf> {
        None
    }
    /// The zxid of the snapshot being written, if any.
    fn running_snapshot(&self) -> Option<Zxid> {
        None
    }
    /// Start a snapshot of the current state (frozen, then encoded in slices between
    /// turns) for a SNAP; false if none could be started.
    fn snapshot_now(&mut self, _tree: &mut DataTree, _sessions: &SessionTable) -> bool {
        false
    }
    /// How long the loop may sleep for the running snapshot (0: it has work each turn).
    fn snapshot_wait_ms(&self) -> Option<u64> {
        None
    }
    /// Snapshot jobs that ended since the last call: (zxid, written).
    fn take_finished_snapshots(&mut self) -> Vec<(Zxid, bool)> {
        Vec::new()
    }
    /// Follower: a leader's snapshot at `zxid` of `size` bytes starts arriving.
    fn receive_snapshot_begin(&mut self, _zxid: Zxid, _size: u64) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this txn sink cannot receive snapshots"))
    }
    /// Follower: the next bytes of it.
    fn receive_snapshot_chunk(&mut self, _data: &[u8]) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this txn sink cannot receive snapshots"))
    }
    /// Follower: the transfer broke; drop what arrived.
    fn receive_snapshot_abort(&mut self) {}
    /// Follower: verify the received snapshot and replace the local state with it (and
    /// persist it). `InvalidData`: the file was bad and nothing local changed.
    fn install_received_snapshot(&mut self, _zxid: Zxid, _server: u64) -> io::Result<(DataTree, SessionTable)> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this txn sink cannot install snapshots"))
    }
    /// After each turn's sync and flush: housekeeping that needs the state (snapshots are
    /// frozen and encoded in slices; log space is checked). `Some` when writes must stop
    /// (`Some(Some(reason))`) or may resume (`Some(None)`). Default: nothing.
    fn after_sync(&mut self, _tree: &mut DataTree, _sessions: &SessionTable) -> Option<Option<String>> {
        None
    }
    /// fsync, group-commit and snapshot figures, for `mntr` and `/metrics`.
    fn metrics(&self) -> Option<&crate::storage::StorageMetrics> {
        None
    }
    /// The last snapshot this process completed: (zxid, wall-clock ms).
    fn last_snapshot(&self) -> Option<(Zxid, i64)> {
        None
    }
}


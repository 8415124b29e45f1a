//! Recovery on start: newest valid snapshot, then replay of every later log record.
//!
//! The snapshot gives the tree and the sessions live at its zxid; replay applies each later
//! txn with `DataTree::apply` and mirrors `Service::commit` for the session table
//! (`CreateSession` adds, `CloseSession` removes). Sessions get a fresh deadline counted
//! from recovery (`now`), so a client that reconnects within its timeout gets its session
//! and ephemerals back. The recovered tree's last applied zxid is where new zxids continue.

use std::path::PathBuf;
use std::time::Instant;

use crate::proto::{Millis, ServerId, SessionId, Zxid};
use crate::session::SessionTable;
use crate::tree::{DataTree, Trigger};
use crate::txn::{Txn, TxnOp};

use super::{fsutil, snapshot, Storage, StorageConfig, StorageError, TxnLog};

pub struct Recovered {
    pub storage: Storage,
    pub tree: DataTree,
    pub sessions: SessionTable,
    pub report: RecoveryReport,
}

#[derive(Clone, Debug)]
pub struct RecoveryReport {
    pub snapshot: Option<(Zxid, PathBuf)>,
    pub snapshot_load_ms: u64,
    pub replayed: u64,
    pub last_zxid: Zxid,
    pub total_ms: u64,
}

impl std::fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.snapshot {
            Some((z, p)) => write!(f, "snapshot {} (zxid {z}) loaded in {} ms", p.display(), self.snapshot_load_ms)?,
            None => write!(f, "no snapshot")?,
        }
        write!(f, ", {} txns replayed, last zxid {}, recovery took {} ms", self.replayed, self.last_zxid, self.total_ms)
    }
}

/// Rebuild the state from `cfg`'s directories. `wall_ms` seeds fresh session ids; `now` is
/// the loop's monotonic time that session deadlines count from.
pub fn recover(cfg: StorageConfig, server: ServerId, wall_ms: i64, now: Millis) -> Result<Recovered, StorageError> {
    let t0 = Instant::now();
    fsutil::ensure_dir(&cfg.data_dir)?;
    fsutil::ensure_dir(&cfg.data_log_dir)?;
    snapshot::remove_partial(&cfg.data_dir)?;
    let mut sessions = SessionTable::new(server, wall_ms);
    let (mut tree, base, snap) = match snapshot::load_newest(&cfg.data_dir)? {
        Some(l) => {
            add_sessions(&mut sessions, &l.sessions, now);
            (l.tree, l.zxid, Some((l.zxid, l.path)))
        }
        None => (DataTree::new(), Zxid::ZERO, None),
    };
    let snapshot_load_ms = t0.elapsed().as_millis() as u64;
    let mut replayed = 0u64;
    let mut triggers = Vec::new();
    let log = TxnLog::open(&cfg.data_log_dir, cfg.log_options(), base, |txn| {
        replay_one(&mut tree, &mut sessions, &txn, now, &mut triggers);
        replayed += 1;
        Ok(())
    })?;
    let last_zxid = tree.last_applied();
    debug_assert!(last_zxid >= log.last_zxid() || replayed == 0);
    let storage = Storage::new(cfg, log);
    let report = RecoveryReport { snapshot: snap, snapshot_load_ms, replayed, last_zxid, total_ms: t0.elapsed().as_millis() as u64 };
    Ok(Recovered { storage, tree, sessions, report })
}

/// The sessions of a snapshot, each with a fresh deadline counted from `now`.
pub(crate) fn add_sessions(table: &mut SessionTable, sessions: &[(SessionId, i32)], now: Millis) {
    for (id, timeout) in sessions {
        table.add(*id, *timeout, now);
    }
}

/// Apply one replayed txn: the tree's `apply`, and for the session table what
/// `Service::commit` does (`CreateSession` adds, `CloseSession` removes).
pub(crate) fn replay_one(tree: &mut DataTree, sessions: &mut SessionTable, txn: &Txn, now: Millis, triggers: &mut Vec<Trigger>) {
    triggers.clear();
    tree.apply(txn, triggers);
    match &txn.op {
        TxnOp::CreateSession { timeout_ms } => sessions.add(txn.header.session, *timeout_ms, now),
        TxnOp::CloseSession => {
            sessions.remove(txn.header.session);
        }
        _ => {}
    }
}

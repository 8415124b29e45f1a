//! One simulated server: a replica core over a simulated disk, with its own clock.

use std::collections::{BTreeMap, BTreeSet};

use crate::proto::{Millis, ServerId, Zxid};
use crate::replica::{Now, Replica};
use crate::service::{Service, ServiceConfig};
use crate::session::SessionTable;
use crate::storage::recovery::{add_sessions, replay_one};
use crate::storage::snapshot;
use crate::tree::DataTree;
use crate::txn::Txn;
use crate::zab::{DurableState, Zab, ZabConfig};

/// What survives a crash. The log keeps every txn from the snapshot on (the simulator never
/// purges), so TRUNC can always rebuild.
#[derive(Clone, Debug, Default)]
pub(super) struct Disk {
    pub log: Vec<Txn>,
    /// `log[..synced]` is durable.
    pub synced: usize,
    pub accepted: u32,
    pub current: u32,
    /// A snapshot received from a leader (SNAP): its zxid and bytes; the log follows it.
    pub snapshot: Option<(Zxid, Vec<u8>)>,
    /// Ghost state: the txns the snapshot holds (the sender's history when it was sent).
    pub snapshot_history: History,
}

/// Which txn (issuer session, cxid, time) a tree holds at each zxid: ghost state the
/// simulator carries along trees, snapshots and replays, so that the committed order is
/// known even for txns applied by a replay (no commit report) and carried by a SNAP.
pub(super) type History = BTreeMap<Zxid, TxnId>;
pub(super) type TxnId = (i64, i32, i64);

pub(super) fn txn_id(h: &crate::txn::TxnHeader) -> TxnId {
    (h.session.0, h.cxid, h.time_ms)
}

impl Disk {
    pub fn last(&self) -> Zxid {
        self.log.last().map(|t| t.header.zxid).or(self.snapshot.as_ref().map(|s| s.0)).unwrap_or(Zxid::ZERO)
    }

    pub fn durable_last(&self) -> Zxid {
        match self.synced {
            0 => self.snapshot.as_ref().map_or(Zxid::ZERO, |s| s.0),
            n => self.log[n - 1].header.zxid,
        }
    }

    /// The state the disk holds: the snapshot, then the log replayed over it.
    pub fn rebuild(&self, server: ServerId, wall_ms: i64, now: Millis) -> Result<(DataTree, SessionTable), String> {
        let mut sessions = SessionTable::new(server, wall_ms);
        let mut tree = match &self.snapshot {
            Some((zxid, bytes)) => {
                let loaded = snapshot::decode(bytes, "sim").map_err(|e| format!("snapshot {zxid}: {e}"))?;
                add_sessions(&mut sessions, &loaded.sessions, now);
                loaded.tree
            }
            None => DataTree::new(),
        };
        let mut triggers = Vec::new();
        for t in &self.log {
            if t.header.zxid > tree.last_applied() {
                replay_one(&mut tree, &mut sessions, t, now, &mut triggers);
            }
        }
        Ok((tree, sessions))
    }

    /// The history of the state `rebuild` gives.
    pub fn history(&self) -> History {
        let base = self.snapshot.as_ref().map_or(Zxid::ZERO, |s| s.0);
        let mut h = self.snapshot_history.clone();
        h.extend(self.log.iter().filter(|t| t.header.zxid > base).map(|t| (t.header.zxid, txn_id(&t.header))));
        h
    }

    /// Drop log records above `zxid` (TRUNC).
    pub fn truncate(&mut self, zxid: Zxid) {
        let keep = self.log.iter().take_while(|t| t.header.zxid <= zxid).count();
        self.log.truncate(keep);
        self.synced = self.synced.min(keep);
    }
}

pub(super) struct Node {
    pub id: ServerId,
    pub replica: Option<Replica>,
    /// Bumped on every crash: events of an earlier life are ignored.
    pub incarnation: u64,
    pub disk: Disk,
    pub fsync_pending: bool,
    /// Monotonic clock: local = offset + global * rate / 1000.
    pub rate: i64,
    pub offset: Millis,
    /// Wall clock skew (ms), changed by jumps.
    pub wall_skew: i64,
    /// A SNAP arriving: its zxid and the bytes so far.
    pub receiving: Option<(Zxid, Vec<u8>)>,
    /// SIGSTOP: handles nothing before this global time.
    pub paused_until: Millis,
    /// The last zxid this server applied in this life (applied zxids must increase).
    pub applied: Zxid,
    /// Ghost state: the txns its tree holds.
    pub history: History,
    /// Quorum peers this node has a current connection with (for loud breaks on crash).
    pub peers: BTreeSet<ServerId>,
    /// The config file the operator wrote (`server.N=` lines and a version): the static
    /// config, or for a server joining by reconfig the membership then plus itself.
    pub static_config: String,
    /// The newest dynamic config file written durably (`<zoo.cfg>.dynamic.<version>`, the
    /// real server's answer to `Output::Membership`): the membership text, version last.
    pub config_file: Option<String>,
    /// Ghost state: the highest config version this life has taken (it must never go down).
    pub config_version: i64,
}

/// `super:test` (the digest kazoo's suite and the reconfig tests log in with).
pub(super) const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

/// The version of a membership text (-1 if it does not parse).
pub(super) fn membership_version(text: Option<&str>) -> i64 {
    text.and_then(|t| crate::reconfig::Membership::parse(t).ok()).map_or(-1, |m| m.version)
}

/// Wall clock of the simulated world at global time 0 (an arbitrary recent date).
pub(super) const WALL_BASE: i64 = 1_780_000_000_000;

impl Node {
    pub fn new(id: ServerId, rate: i64, offset: Millis, wall_skew: i64, static_config: String) -> Node {
        Node {
            id,
            replica: None,
            incarnation: 0,
            disk: Disk::default(),
            fsync_pending: false,
            rate,
            offset,
            wall_skew,
            receiving: None,
            paused_until: 0,
            applied: Zxid::ZERO,
            history: History::new(),
            peers: BTreeSet::new(),
            static_config,
            config_file: None,
            config_version: 0,
        }
    }

    pub fn now(&self, global: Millis) -> Now {
        let ms = self.offset + global * self.rate / 1000;
        // The simulated clocks tick in milliseconds.
        Now { ms, us: ms * 1000, wall_ms: WALL_BASE + global + self.wall_skew }
    }

    /// The global time at which this node's clock reads `local` (rounded up).
    pub fn global_at(&self, local: Millis) -> Millis {
        let d = (local - self.offset).max(0);
        (d * 1000 + self.rate - 1) / self.rate
    }

    pub fn alive(&self) -> bool {
        self.replica.is_some()
    }

    /// The state the disk holds (after a start, a TRUNC or an installed SNAP), with this
    /// life's applied point and ghost history set to it.
    pub fn rebuild(&mut self, global: Millis) -> Result<(DataTree, SessionTable), String> {
        let now = self.now(global);
        let (tree, sessions) = self.disk.rebuild(self.id, now.wall_ms, now.ms)?;
        self.applied = tree.last_applied();
        self.history = self.disk.history();
        Ok((tree, sessions))
    }

    /// The membership a start reads from disk: the newest dynamic config file written,
    /// else the operator's config.
    pub fn config_text(&self) -> &str {
        self.config_file.as_deref().unwrap_or(&self.static_config)
    }

    /// Start (or restart) from what the disk holds, as `node::run` does after recovery:
    /// the config file (`config_text`) and the log. `reconfig`: reconfigEnabled, with a
    /// superuser (`super:test`) that may issue them.
    pub fn start(&mut self, global: Millis, zab_cfg: &ZabConfig, reconfig: bool) -> Result<(), String> {
        let now = self.now(global);
        let (tree, sessions) = self.rebuild(global)?;
        let last_logged = self.disk.last();
        let durable = DurableState { accepted_epoch: self.disk.accepted, current_epoch: self.disk.current, last_logged };
        let recent: Vec<Txn> = {
            let n = self.disk.log.len();
            self.disk.log[n.saturating_sub(zab_cfg.committed_log_max)..].to_vec()
        };
        let mut cfg = zab_cfg.clone();
        cfg.me = self.id;
        // As node::run: the committed membership is the config's; a newer one the log
        // replayed stays proposed until a leader commits it.
        let membership = self.config_text().to_string();
        let committed = crate::reconfig::Membership::parse(&membership).map_err(|e| format!("sim membership: {e}"))?;
        let recovered = crate::reconfig::recovered(committed, crate::reconfig::held(&tree));
        cfg.voters = recovered.committed.voters();
        cfg.observers = recovered.committed.observers();
        cfg.proposed = recovered.replayed.as_ref().map(crate::replica::replayed_config);
        let zab = Zab::new(cfg, durable, recent, now.ms);
        let svc_cfg = ServiceConfig {
            server_id: self.id,
            tick_ms: zab_cfg.tick_ms as i32,
            min_session_timeout_ms: 2 * zab_cfg.tick_ms as i32,
            max_session_timeout_ms: 20 * zab_cfg.tick_ms as i32,
            super_digest: reconfig.then(|| SUPER_DIGEST.to_string()),
            reconfig_enabled: reconfig,
            container_check_ms: 60_000,
            planted: zab_cfg.planted,
        };
        let service = Service::new(svc_cfg, tree, sessions, now.ms);
        self.config_version = recovered.committed.version;
        let snapshot = self.disk.snapshot.as_ref().map(|s| s.0);
        self.replica = Some(Replica::ensemble(service, zab, recovered.committed, snapshot, None));
        self.fsync_pending = false;
        self.receiving = None;
        self.peers.clear();
        Ok(())
    }

    /// A crash: the process and its unsynced tail are gone, except `survive` records of it
    /// that reached the disk anyway.
    pub fn crash(&mut self, survive: usize) {
        self.replica = None;
        self.incarnation += 1;
        let keep = (self.disk.synced + survive).min(self.disk.log.len());
        self.disk.log.truncate(keep);
        self.disk.synced = keep;
        self.fsync_pending = false;
        self.receiving = None;
        self.peers.clear();
    }
}

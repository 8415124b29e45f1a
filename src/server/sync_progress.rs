//! One follower sync as the messages that carry it show it: its mode (DIFF, TRUNC or
//! SNAP), the txns and snapshot bytes it brought, when it started. The operator log
//! (`oplog`, one line per finished sync) and the admin metrics and console history
//! (`admin::observe`) both follow syncs with this, so they always agree on what a sync was.

use std::time::Instant;

use crate::peer::QuorumMsg;
use crate::zab::Role;

/// How a follower is being brought up to date (ZooKeeper's `SyncMode`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum SyncMode {
    Diff,
    Trunc,
    Snap,
}

impl SyncMode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SyncMode::Diff => "DIFF",
            SyncMode::Trunc => "TRUNC",
            SyncMode::Snap => "SNAP",
        }
    }
}

/// A sync in progress.
#[derive(Clone, Debug)]
pub(crate) struct SyncProgress {
    pub(crate) started: Instant,
    /// None until a sync message said (DIFF, TRUNC or SNAP).
    pub(crate) mode: Option<SyncMode>,
    /// Txns sent in the sync (PROPOSALs before UPTODATE / the follower's ACK of NEWLEADER).
    pub(crate) txns: u64,
    pub(crate) snap_bytes: u64,
}

impl SyncProgress {
    pub(crate) fn new(started: Instant) -> SyncProgress {
        SyncProgress { started, mode: None, txns: 0, snap_bytes: 0 }
    }

    /// What one sync message says about the sync. The mode only gets stronger: a TRUNC is
    /// followed by a DIFF of what comes after it and stays TRUNC; a SNAP stays SNAP.
    pub(crate) fn note(&mut self, msg: &QuorumMsg) {
        match msg {
            QuorumMsg::Diff { .. } if self.mode.is_none() => self.mode = Some(SyncMode::Diff),
            QuorumMsg::Trunc { .. } if self.mode != Some(SyncMode::Snap) => self.mode = Some(SyncMode::Trunc),
            QuorumMsg::SnapBegin { size, .. } => {
                self.mode = Some(SyncMode::Snap);
                self.snap_bytes += *size;
            }
            QuorumMsg::Proposal(_) => self.txns += 1,
            _ => {}
        }
    }

    /// A SNAP of `bytes` was sent (the leader learns the size when the stream starts).
    pub(crate) fn snapshot_sent(&mut self, bytes: u64) {
        self.mode = Some(SyncMode::Snap);
        self.snap_bytes = bytes;
    }

    /// The mode's name; DIFF when no message named one (an empty DIFF).
    pub(crate) fn mode_name(&self) -> &'static str {
        self.mode.map_or("DIFF", SyncMode::name)
    }
}

/// A role's name as the log and the console show it.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Looking => "looking",
        Role::Following { .. } => "following",
        Role::Leading { .. } => "leading",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Zxid;

    #[test]
    fn the_mode_only_gets_stronger_and_txns_and_bytes_add_up() {
        let mut s = SyncProgress::new(Instant::now());
        assert_eq!(s.mode_name(), "DIFF");
        s.note(&QuorumMsg::Trunc { zxid: Zxid(4) });
        s.note(&QuorumMsg::Diff { last_zxid: Zxid(4) });
        assert_eq!(s.mode, Some(SyncMode::Trunc), "TRUNC then DIFF stays TRUNC");
        s.note(&QuorumMsg::SnapBegin { zxid: Zxid(9), size: 100 });
        s.note(&QuorumMsg::Trunc { zxid: Zxid(4) });
        s.note(&QuorumMsg::Diff { last_zxid: Zxid(4) });
        assert_eq!((s.mode, s.snap_bytes), (Some(SyncMode::Snap), 100), "SNAP stays SNAP");
    }
}

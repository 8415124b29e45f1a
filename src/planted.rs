//! Known bugs a test can plant, to show that the simulator catches each one (issue 10:
//! "proof that it can fail"). Every switch is off unless a test or `arbor-sim --plant`
//! turns it on; no config key reaches them, so a server never runs with one.

use std::fmt;

use crate::proto::Stat;
use crate::tree::ApplyOutcome;
use crate::txn::{Txn, TxnOp};

/// Which bugs are planted. `Copy` and tiny: it rides in `ZabConfig` and `ServiceConfig`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Planted {
    /// Leader: commit a proposal on its own ack, without waiting for a quorum.
    pub commit_before_quorum: bool,
    /// Election: vote for the highest server id, ignoring (epoch, zxid).
    pub election_ignores_zxid: bool,
    /// Apply and acknowledge a txn before the local fsync covers it.
    pub apply_before_fsync: bool,
    /// Answer a write's client when it is proposed, before it commits.
    pub reply_before_commit: bool,
    /// Drop a watch notification now and then.
    pub lost_watch: bool,
}

/// The names `arbor-sim --plant` and the tests use, in the order of the fields.
pub const NAMES: [&str; 5] =
    ["commit-before-quorum", "election-ignores-zxid", "apply-before-fsync", "reply-before-commit", "lost-watch"];

/// A name that is not in `NAMES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBug(pub String);

impl fmt::Display for UnknownBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no planted bug is called {:?} (known: {})", self.0, NAMES.join(", "))
    }
}

impl std::error::Error for UnknownBug {}

impl Planted {
    /// Nothing planted.
    pub const NONE: Planted = Planted {
        commit_before_quorum: false,
        election_ignores_zxid: false,
        apply_before_fsync: false,
        reply_before_commit: false,
        lost_watch: false,
    };

    /// Exactly one bug, by name.
    pub fn one(name: &str) -> Result<Planted, UnknownBug> {
        let mut p = Planted::NONE;
        match name {
            "commit-before-quorum" => p.commit_before_quorum = true,
            "election-ignores-zxid" => p.election_ignores_zxid = true,
            "apply-before-fsync" => p.apply_before_fsync = true,
            "reply-before-commit" => p.reply_before_commit = true,
            "lost-watch" => p.lost_watch = true,
            other => return Err(UnknownBug(other.to_string())),
        }
        Ok(p)
    }

    pub fn any(&self) -> bool {
        *self != Planted::NONE
    }
}

/// reply-before-commit: the outcome a proposed txn would have if it committed, as a
/// leader that answers before the commit must guess it (the tree does not have the txn
/// yet). Stats carry what the txn says (zxid, new version), the rest is left zero.
pub fn outcome_when_proposed(txn: &Txn) -> ApplyOutcome {
    fn guess(op: &TxnOp, zxid: i64) -> ApplyOutcome {
        let stat = |version| Stat { czxid: zxid, mzxid: zxid, pzxid: zxid, version, ..Stat::default() };
        match op {
            TxnOp::CreateSession { .. } => ApplyOutcome::SessionCreated,
            TxnOp::CloseSession => ApplyOutcome::SessionClosed { deleted: vec![] },
            TxnOp::Create { path, .. } => ApplyOutcome::Created { path: path.clone(), stat: stat(0) },
            TxnOp::Delete { .. } => ApplyOutcome::Deleted,
            TxnOp::SetData { version, .. } => ApplyOutcome::DataSet { stat: stat(*version) },
            TxnOp::SetAcl { version, .. } => ApplyOutcome::AclSet { stat: Stat { aversion: *version, ..stat(0) } },
            TxnOp::Check { .. } => ApplyOutcome::Checked,
            TxnOp::Error { err } => ApplyOutcome::Error(*err),
            TxnOp::Multi(ops) => ApplyOutcome::Multi(ops.iter().map(|o| guess(o, zxid)).collect()),
            TxnOp::Reconfig { .. } => ApplyOutcome::DataSet { stat: stat(-1) },
        }
    }
    guess(&txn.op, txn.header.zxid.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_plants_one_distinct_bug() {
        let all: Vec<Planted> = NAMES.iter().map(|n| Planted::one(n).expect("known name")).collect();
        for (i, p) in all.iter().enumerate() {
            assert!(p.any(), "{} plants nothing", NAMES[i]);
            assert!(all[i + 1..].iter().all(|q| q != p), "{} repeats another name", NAMES[i]);
        }
        assert!(Planted::one("commit-early").is_err());
        assert!(!Planted::default().any());
    }
}

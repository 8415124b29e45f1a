//! `arbor data check DIR [--log-dir D] [--json]`: verify a data directory and say what
//! recovery would do with it, without writing anything.
//!
//! Two passes, both with the storage layer's readers:
//! 1. Every file on its own: each snapshot loads with every chunk CRC verified; each txn log
//!    segment, in name order, has every record's CRC verified and decoded, zxids increasing
//!    across segments and never below the segment's name.
//! 2. Recovery's rules exactly (`recovery::recover`): the newest valid snapshot (older ones
//!    when newer ones are damaged), the segments it needs (`needed_segments`, which refuses a
//!    gap), and their scan as `TxnLog::open` does it — a bad record at the tail of the last
//!    segment is a torn write recovery truncates, anything else stops recovery.
//!
//! Exit status (`Verdict::exit_code`): 0 clean; 1 damaged but recovery starts (it would
//! truncate a torn tail, skip a damaged snapshot, or the damage is in a segment it does not
//! need); 2 recovery would refuse to start. Messages are the storage layer's own, so they
//! match what a server logs for the same files.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Out, ToolError};
use crate::proto::Zxid;
use crate::storage::snapshot::{self, SNAP_PREFIX};
use crate::storage::txnlog::{self, TornTail};
use crate::storage::{self as st, StorageError};

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Clean,
    /// Damage recovery works around (or truncates).
    Recoverable,
    /// Recovery would stop with an error.
    Refused,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Clean => 0,
            Verdict::Recoverable => 1,
            Verdict::Refused => 2,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Recoverable => "damaged, recoverable",
            Verdict::Refused => "damaged, recovery refuses to start",
        }
    }
}

/// One file's own check (pass 1).
struct FileReport {
    path: PathBuf,
    /// "ok: …" details, or the damage.
    result: Result<String, String>,
}

/// What recovery would do (pass 2).
struct RecoveryPlan {
    snapshot: Option<(Zxid, PathBuf)>,
    skipped_snapshots: Vec<String>,
    replayed: u64,
    last_zxid: Zxid,
    truncate: Option<(PathBuf, TornTail)>,
    refused: Option<String>,
}

fn check_snapshots(dir: &Path) -> Result<Vec<FileReport>, ToolError> {
    let mut out = Vec::new();
    for (zxid, path) in snapshot::list(dir)? {
        let result = match snapshot::load(&path) {
            Ok(l) => Ok(format!(
                "zxid {zxid}, {} znodes, {} sessions, digest {}",
                l.tree.node_count(),
                l.sessions.len(),
                l.tree.digest()
            )),
            Err(e) => Err(e.to_string()),
        };
        out.push(FileReport { path, result });
    }
    Ok(out)
}

/// Every segment, CRCs and decoding, zxids increasing across all of them.
fn check_segments(log_dir: &Path) -> Result<Vec<FileReport>, ToolError> {
    let segs = txnlog::segments(log_dir)?;
    let mut prev = Zxid(i64::MIN);
    let mut out = Vec::new();
    for (i, (name_zxid, path)) in segs.iter().enumerate() {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                out.push(FileReport { path: path.clone(), result: Err(StorageError::io(path, e).to_string()) });
                continue;
            }
        };
        let (mut n, mut first) = (0u64, None);
        let scanned = txnlog::scan_segment(path, &bytes, *name_zxid, i + 1 == segs.len(), &mut prev, |off, zxid, payload| {
            txnlog::decode_record(path, off, zxid, payload)?;
            n += 1;
            first.get_or_insert(zxid);
            Ok(())
        });
        let range = first.map_or(String::new(), |f| format!(", zxids {f}..{prev}"));
        let result = match scanned {
            Ok(end) => match end.torn {
                None => Ok(format!("{n} records{range}, data ends at byte {}", end.end)),
                Some(t) => Err(format!(
                    "{n} valid records{range}, then a torn record at byte offset {} ({}): {} bytes",
                    t.offset, t.reason, t.bytes
                )),
            },
            Err(e) => Err(format!("{n} valid records{range}, then: {e}")),
        };
        out.push(FileReport { path: path.clone(), result });
    }
    Ok(out)
}

/// Recovery's decisions, read-only (see `recovery::recover` and `TxnLog::open`).
fn plan_recovery(dir: &Path, log_dir: &Path) -> Result<RecoveryPlan, ToolError> {
    let mut plan = RecoveryPlan {
        snapshot: None,
        skipped_snapshots: Vec::new(),
        replayed: 0,
        last_zxid: Zxid::ZERO,
        truncate: None,
        refused: None,
    };
    let snaps = snapshot::list(dir)?;
    for (zxid, path) in snaps.iter().rev() {
        match snapshot::load(path) {
            Ok(_) => {
                plan.snapshot = Some((*zxid, path.clone()));
                break;
            }
            Err(e) => plan.skipped_snapshots.push(e.to_string()),
        }
    }
    if plan.snapshot.is_none() && !snaps.is_empty() {
        plan.refused = Some(format!("no valid snapshot in {}: {}", dir.display(), plan.skipped_snapshots.join("; ")));
        return Ok(plan);
    }
    let base = plan.snapshot.as_ref().map_or(Zxid::ZERO, |(z, _)| *z);
    plan.last_zxid = base;
    let segs = match txnlog::needed_segments(log_dir, base) {
        Ok(s) => s,
        Err(e) => {
            plan.refused = Some(e.to_string());
            return Ok(plan);
        }
    };
    let mut prev = Zxid(i64::MIN);
    for (i, (name_zxid, path)) in segs.iter().enumerate() {
        let bytes = fs::read(path).map_err(|e| StorageError::io(path, e))?;
        let (mut replayed, mut last) = (0u64, plan.last_zxid);
        let scanned = txnlog::scan_segment(path, &bytes, *name_zxid, i + 1 == segs.len(), &mut prev, |off, zxid, payload| {
            if zxid > base {
                txnlog::decode_record(path, off, zxid, payload)?;
                replayed += 1;
                last = zxid;
            }
            Ok(())
        });
        plan.replayed += replayed;
        plan.last_zxid = last;
        match scanned {
            Ok(end) => {
                if let Some(t) = end.torn {
                    plan.truncate = Some((path.clone(), t));
                }
            }
            Err(e) => {
                plan.refused = Some(e.to_string());
                return Ok(plan);
            }
        }
    }
    // Ensemble members read the epoch files at start.
    if let Err(e) = st::read_epochs(dir) {
        plan.refused = Some(e.to_string());
    }
    Ok(plan)
}

/// Leftovers of an interrupted write that recovery deletes (not damage).
fn temp_files(dir: &Path, log_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in [dir, log_dir] {
        let Ok(rd) = fs::read_dir(d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if (name.starts_with(SNAP_PREFIX) && name.ends_with(".tmp")) || name == "log.next" {
                out.push(e.path());
            }
        }
        if dir == log_dir {
            break;
        }
    }
    out.sort();
    out
}

fn plan_text(p: &RecoveryPlan) -> String {
    if let Some(why) = &p.refused {
        return format!("would REFUSE to start: {why}");
    }
    let mut s = match &p.snapshot {
        Some((z, path)) => format!("would load {} (zxid {z})", path.display()),
        None => "would start from an empty tree (no snapshot)".into(),
    };
    if !p.skipped_snapshots.is_empty() {
        s.push_str(&format!(" after skipping {} damaged newer snapshot(s)", p.skipped_snapshots.len()));
    }
    s.push_str(&format!(", replay {} txns up to zxid {}", p.replayed, p.last_zxid));
    if let Some((path, t)) = &p.truncate {
        s.push_str(&format!(
            ", and truncate {} at byte offset {} ({} bytes of an unacknowledged write: {})",
            path.display(),
            t.offset,
            t.bytes,
            t.reason
        ));
    }
    s
}

pub fn data_check(dir: &Path, log_dir: Option<&Path>, json: bool) -> Result<Verdict, ToolError> {
    if !dir.is_dir() {
        return Err(ToolError::Usage(format!("{}: not a directory", dir.display())));
    }
    let log_dir = log_dir.unwrap_or(dir);
    let snaps = check_snapshots(dir)?;
    let segs = check_segments(log_dir)?;
    let plan = plan_recovery(dir, log_dir)?;
    let temps = temp_files(dir, log_dir);
    let damaged = snaps.iter().chain(segs.iter()).any(|f| f.result.is_err()) || plan.truncate.is_some();
    let verdict = if plan.refused.is_some() {
        Verdict::Refused
    } else if damaged || !plan.skipped_snapshots.is_empty() {
        Verdict::Recoverable
    } else {
        Verdict::Clean
    };
    let mut out = Out::new();
    if json {
        let files = |v: &[FileReport]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|f| match &f.result {
                    Ok(d) => json!({ "path": f.path.display().to_string(), "ok": true, "detail": d }),
                    Err(d) => json!({ "path": f.path.display().to_string(), "ok": false, "damage": d }),
                })
                .collect()
        };
        let doc = json!({
            "data_dir": dir.display().to_string(),
            "log_dir": log_dir.display().to_string(),
            "snapshots": files(&snaps),
            "segments": files(&segs),
            "temp_files": temps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "recovery": {
                "refused": plan.refused,
                "snapshot": plan.snapshot.as_ref().map(|(_, p)| p.display().to_string()),
                "snapshot_zxid": plan.snapshot.as_ref().map(|(z, _)| z.to_string()),
                "skipped_snapshots": plan.skipped_snapshots,
                "txns_replayed": plan.replayed,
                "last_zxid": plan.last_zxid.to_string(),
                "truncate": plan.truncate.as_ref().map(|(p, t)| json!({
                    "path": p.display().to_string(), "offset": t.offset, "bytes": t.bytes, "reason": t.reason,
                })),
                "summary": plan_text(&plan),
            },
            "verdict": verdict.name(),
            "exit_code": verdict.exit_code(),
        });
        out.line(&serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        out.finish()?;
        return Ok(verdict);
    }
    out.line(&format!("data dir {} (txn log in {})", dir.display(), log_dir.display()))?;
    if snaps.is_empty() {
        out.line("snapshots: none")?;
    }
    for f in &snaps {
        match &f.result {
            Ok(d) => out.line(&format!("ok       {}: {d}", f.path.display()))?,
            Err(d) => out.line(&format!("DAMAGED  {d}"))?,
        }
    }
    if segs.is_empty() {
        out.line("txn log segments: none")?;
    }
    for f in &segs {
        match &f.result {
            Ok(d) => out.line(&format!("ok       {}: {d}", f.path.display()))?,
            Err(d) => out.line(&format!("DAMAGED  {}: {d}", f.path.display()))?,
        }
    }
    for t in &temps {
        out.line(&format!("temp     {}: left by an interrupted write; recovery deletes it", t.display()))?;
    }
    out.line(&format!("recovery {}", plan_text(&plan)))?;
    out.line(&format!("verdict  {} (exit {})", verdict.name(), verdict.exit_code()))?;
    out.finish()?;
    Ok(verdict)
}

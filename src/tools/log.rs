//! `arbor log dump DIR|FILE [--json]`: every txn in zxid order, one per line.
//!
//! Human form (like zkTxnLogToolkit): `TIME session 0x… cxid 0x… zxid 0x… OP details`.
//! `--json`: one object per txn (with its segment file and byte offset), then `{"summary": …}`. A torn tail (what recovery would
//! truncate) is noted on stderr after the records before it; damage that recovery refuses
//! ends the dump with that error (exit 1) after every record before it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{acl_text, json_data, show_data, utc_time, Out, ToolError};
use crate::proto::Zxid;
use crate::storage::fsutil;
use crate::storage::txnlog::{self, SEGMENT_PREFIX};
use crate::txn::{Txn, TxnOp};

/// Data bytes shown per txn in the human form.
const DATA_SHOWN: usize = 64;

/// The segments to read: every `log.<zxid>` of a directory, or the one file given.
fn segments(path: &Path) -> Result<Vec<(i64, PathBuf)>, ToolError> {
    if path.is_dir() {
        let segs = txnlog::segments(path)?;
        if segs.is_empty() {
            return Err(ToolError::Usage(format!("{}: no {SEGMENT_PREFIX}<zxid> files here", path.display())));
        }
        return Ok(segs);
    }
    if !path.exists() {
        return Err(ToolError::Usage(format!("{}: no such file or directory", path.display())));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // A copy under another name is still readable; only the name check is skipped.
    Ok(vec![(fsutil::parse_hex_name(name, SEGMENT_PREFIX).unwrap_or(i64::MIN), path.to_path_buf())])
}

pub fn log_dump(path: &Path, json: bool) -> Result<(), ToolError> {
    let segs = segments(path)?;
    let mut out = Out::new();
    let mut prev = Zxid(i64::MIN);
    let (mut count, mut first) = (0u64, None);
    let mut torn_note = None;
    let mut failure = None;
    let mut out_failed = None;
    for (i, (name_zxid, seg)) in segs.iter().enumerate() {
        let bytes = fs::read(seg).map_err(|source| ToolError::Io { path: seg.display().to_string(), source })?;
        let seg_name = seg.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let scanned = txnlog::scan_segment(seg, &bytes, *name_zxid, i + 1 == segs.len(), &mut prev, |off, zxid, payload| {
            let txn = txnlog::decode_record(seg, off, zxid, payload)?;
            let line = if json {
                let mut v = txn_json(&txn);
                v["segment"] = json!(seg_name);
                v["offset"] = json!(off);
                v.to_string()
            } else {
                txn_text(&txn)
            };
            if let Err(e) = out.line(&line) {
                // Stop the scan; the output error is what is reported.
                out_failed = Some(e);
                return Err(crate::storage::StorageError::Inconsistent("output closed".into()));
            }
            first.get_or_insert(zxid);
            count += 1;
            Ok(())
        });
        if let Some(e) = out_failed {
            return Err(e);
        }
        match scanned {
            Ok(end) => {
                if let Some(t) = end.torn {
                    torn_note = Some(format!(
                        "{}: torn record at byte offset {} ({}): recovery would truncate {} bytes there",
                        seg.display(),
                        t.offset,
                        t.reason,
                        t.bytes
                    ));
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let last = (count > 0).then_some(prev);
    if json {
        let summary = json!({ "summary": {
            "txns": count,
            "segments": segs.len(),
            "first_zxid": first.map(|z| z.to_string()),
            "last_zxid": last.map(|z| z.to_string()),
        }});
        out.line(&summary.to_string())?;
    } else {
        let range = match (first, last) {
            (Some(a), Some(b)) => format!(", zxids {a}..{b}"),
            _ => String::new(),
        };
        out.line(&format!("-- {count} txns in {} segment(s){range}", segs.len()))?;
    }
    out.finish()?;
    if let Some(note) = torn_note {
        eprintln!("note: {note}");
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn txn_text(t: &Txn) -> String {
    let h = &t.header;
    format!("{} session {} cxid {:#x} zxid {} {}", utc_time(h.time_ms), h.session, h.cxid, h.zxid, op_text(&t.op))
}

fn op_text(op: &TxnOp) -> String {
    match op {
        TxnOp::CreateSession { timeout_ms } => format!("createSession timeout={timeout_ms}ms"),
        TxnOp::CloseSession => "closeSession".into(),
        TxnOp::Create { path, data, acl, ephemeral_owner, parent_cversion } => format!(
            "create {path} data={} acl={} ephemeralOwner={ephemeral_owner:#x} parentCversion={parent_cversion}",
            data.as_deref().map_or("null".into(), |d| show_data(d, DATA_SHOWN)),
            acl_text(acl)
        ),
        TxnOp::Delete { path } => format!("delete {path}"),
        TxnOp::SetData { path, data, version } => format!(
            "setData {path} data={} version={version}",
            data.as_deref().map_or("null".into(), |d| show_data(d, DATA_SHOWN))
        ),
        TxnOp::SetAcl { path, acl, version } => format!("setACL {path} acl={} aversion={version}", acl_text(acl)),
        TxnOp::Check { path, version } => format!("check {path} version={version}"),
        TxnOp::Error { err } => format!("error {err:?}"),
        TxnOp::Multi(ops) => format!("multi [{}]", ops.iter().map(op_text).collect::<Vec<_>>().join("; ")),
        TxnOp::Reconfig { data } => format!("reconfig data={}", show_data(data, DATA_SHOWN)),
    }
}

fn txn_json(t: &Txn) -> serde_json::Value {
    let h = &t.header;
    let mut v = op_json(&t.op);
    if let Some(o) = v.as_object_mut() {
        o.insert("zxid".into(), json!(h.zxid.to_string()));
        o.insert("time".into(), json!(utc_time(h.time_ms)));
        o.insert("time_ms".into(), json!(h.time_ms));
        o.insert("session".into(), json!(h.session.to_string()));
        o.insert("cxid".into(), json!(h.cxid));
    }
    v
}

fn acl_json(acl: &[crate::proto::Acl]) -> serde_json::Value {
    acl.iter().map(|a| json!({ "perms": a.perms, "scheme": a.id.scheme, "id": a.id.id })).collect()
}

fn op_json(op: &TxnOp) -> serde_json::Value {
    match op {
        TxnOp::CreateSession { timeout_ms } => json!({ "type": "createSession", "timeout_ms": timeout_ms }),
        TxnOp::CloseSession => json!({ "type": "closeSession" }),
        TxnOp::Create { path, data, acl, ephemeral_owner, parent_cversion } => json!({
            "type": "create", "path": path, "data": json_data(data.as_deref()),
            "data_length": data.as_ref().map_or(-1, |d| d.len() as i64),
            "acl": acl_json(acl), "ephemeral_owner": format!("{ephemeral_owner:#x}"), "parent_cversion": parent_cversion,
        }),
        TxnOp::Delete { path } => json!({ "type": "delete", "path": path }),
        TxnOp::SetData { path, data, version } => json!({
            "type": "setData", "path": path, "data": json_data(data.as_deref()),
            "data_length": data.as_ref().map_or(-1, |d| d.len() as i64), "version": version,
        }),
        TxnOp::SetAcl { path, acl, version } => json!({ "type": "setACL", "path": path, "acl": acl_json(acl), "aversion": version }),
        TxnOp::Check { path, version } => json!({ "type": "check", "path": path, "version": version }),
        TxnOp::Error { err } => json!({ "type": "error", "error": format!("{err:?}") }),
        TxnOp::Multi(ops) => json!({ "type": "multi", "ops": ops.iter().map(op_json).collect::<Vec<_>>() }),
        TxnOp::Reconfig { data } => json!({ "type": "reconfig", "data": json_data(Some(data)), "data_length": data.len() }),
    }
}

//! `arbor snapshot dump FILE [--json] [--data N]`: a snapshot's znodes (preorder, one line
//! each, with the Stat clients would see and the ACL), its sessions with their ephemerals,
//! and a digest of the tree.
//!
//! The digest is ZooKeeper's (`DataTree.getTreeDigest`, digest version 2: see
//! `tree::digest`), kept while the snapshot loads, printed in decimal as ZooKeeper's
//! `hash` command and zkSnapShotToolkit print it: a sum over znodes, so two servers with the
//! same tree print the same digest whatever their history, and one changed byte changes
//! it. `arbor data check` prints the same figure per snapshot.

use std::path::Path;

use serde_json::json;

use super::{acl_text, json_data, show_data, Out, ToolError};
use crate::storage::fsutil;
use crate::storage::snapshot::{self, SNAP_PREFIX};

fn load(file: &Path) -> Result<snapshot::Loaded, ToolError> {
    if !file.is_file() {
        return Err(ToolError::Usage(format!("{}: not a snapshot file", file.display())));
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // Under its own name the name must agree with the header (as recovery checks); a copy
    // under another name is read without that check.
    Ok(if fsutil::parse_hex_name(name, SNAP_PREFIX).is_some() { snapshot::load(file)? } else { snapshot::load_unnamed(file)? })
}

pub fn snapshot_dump(file: &Path, json: bool, data_max: usize) -> Result<(), ToolError> {
    let l = load(file)?;
    let tree = &l.tree;
    let digest = tree.digest();
    let mut out = Out::new();
    if json {
        out.raw(&format!(
            "{{\"file\":{},\"zxid\":\"{}\",\"node_count\":{},\"session_count\":{},\"digest\":{digest},\"digest_version\":{},\"nodes\":[",
            json!(file.display().to_string()),
            l.zxid,
            tree.node_count(),
            l.sessions.len(),
            crate::tree::DIGEST_VERSION
        ))?;
    } else {
        out.line(&format!(
            "snapshot {}: zxid {}, {} znodes, {} sessions, digest {digest}",
            file.display(),
            l.zxid,
            tree.node_count(),
            l.sessions.len()
        ))?;
    }
    let mut first = true;
    let mut failed = None;
    tree.for_each_preorder(|path, v| {
        if failed.is_some() {
            return;
        }
        let Some(stat) = tree.lookup(path).map(|id| tree.stat(id)) else { return };
        let line = if json {
            let mut node = json!({
                "path": path,
                "stat": {
                    "czxid": format!("{:#x}", stat.czxid), "mzxid": format!("{:#x}", stat.mzxid),
                    "pzxid": format!("{:#x}", stat.pzxid), "ctime": stat.ctime, "mtime": stat.mtime,
                    "version": stat.version, "cversion": stat.cversion, "aversion": stat.aversion,
                    "ephemeralOwner": format!("{:#x}", stat.ephemeral_owner),
                    "dataLength": stat.data_length, "numChildren": stat.num_children,
                },
                "acl": v.acl.iter().map(|a| json!({ "perms": a.perms, "scheme": a.id.scheme, "id": a.id.id })).collect::<Vec<_>>(),
            });
            if data_max > 0 {
                node["data"] = json_data(v.data.map(|d| &d[..d.len().min(data_max)]));
            }
            format!("{}{node}", if first { "" } else { "," })
        } else {
            let data = match (data_max, v.data) {
                (0, _) => String::new(),
                (_, None) => " data=null".into(),
                (n, Some(d)) => format!(" data={}", show_data(d, n)),
            };
            format!(
                "{path} czxid={:#x} mzxid={:#x} pzxid={:#x} ctime={} mtime={} version={} cversion={} aversion={} \
                 ephemeralOwner={:#x} dataLength={} numChildren={} acl={}{data}",
                stat.czxid,
                stat.mzxid,
                stat.pzxid,
                stat.ctime,
                stat.mtime,
                stat.version,
                stat.cversion,
                stat.aversion,
                stat.ephemeral_owner,
                stat.data_length,
                stat.num_children,
                acl_text(v.acl)
            )
        };
        first = false;
        if let Err(e) = if json { out.raw(&line) } else { out.line(&line) } {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if json {
        out.raw("],\"sessions\":[")?;
    } else {
        out.line(&format!("sessions: {}", l.sessions.len()))?;
    }
    for (i, (id, timeout)) in l.sessions.iter().enumerate() {
        let eph = tree.ephemerals(*id);
        if json {
            let s = json!({ "id": id.to_string(), "timeout_ms": timeout, "ephemerals": eph });
            out.raw(&format!("{}{s}", if i == 0 { "" } else { "," }))?;
        } else {
            out.line(&format!("  session {id} timeout={timeout}ms ephemerals={}", eph.len()))?;
            for p in eph {
                out.line(&format!("    {p}"))?;
            }
        }
    }
    if json {
        out.line("]}")?;
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use crate::tree::DataTree;

    #[test]
    fn digest_depends_on_content_not_history() {
        let mut a = DataTree::new();
        let acl = vec![crate::proto::Acl { perms: 31, id: crate::proto::Id::new("world", "anyone") }];
        let raw = |z: i64| crate::tree::RawStat { czxid: z, mzxid: z, pzxid: z, ..Default::default() };
        a.insert_restored("/x", Some(b"1"), &acl, raw(1)).expect("insert");
        a.insert_restored("/y", Some(b"2"), &acl, raw(2)).expect("insert");
        let mut b = DataTree::new();
        b.insert_restored("/y", Some(b"2"), &acl, raw(2)).expect("insert");
        b.insert_restored("/x", Some(b"1"), &acl, raw(1)).expect("insert");
        assert_eq!(a.digest(), b.digest());
        let mut c = DataTree::new();
        c.insert_restored("/x", Some(b"1"), &acl, raw(1)).expect("insert");
        c.insert_restored("/y", Some(b"3"), &acl, raw(2)).expect("insert");
        assert_ne!(a.digest(), c.digest());
    }
}

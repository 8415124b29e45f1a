//! The web console: static assets compiled into the binary, and the two JSON endpoints the
//! page reads.
//!
//! - `/api/status`: this server at a glance (mode, epoch, zxids, sessions, packet counters
//!   for ops/s, followers' acked zxids on a leader), every server of the config with its
//!   admin URL, and this server's recent elections and syncs. The page asks every server
//!   for it directly, so "live" means that server's own admin port answered. It carries
//!   `Access-Control-Allow-Origin: *` — the only route that does: it says what `srvr` says
//!   on the client port to anyone anyway, and without it a page served by one server could
//!   not read the others (each admin port is its own origin). The server does no fan-out
//!   itself: the loop stays a server only, with no outbound HTTP and no waiting on peers.
//! - `/api/tree?path=P`: one znode, read-only and bounded — its Stat, its ACL, at most
//!   `CHILDREN_MAX` child names and `DATA_MAX` bytes of data (hex; the page shows text when
//!   it decodes as UTF-8). Same-origin only. The admin port has no authentication (as
//!   ZooKeeper's), so data, children and ACL are shown only where the znode's ACL lets
//!   `world:anyone` read (ACL: read or admin); the Stat, which `exists` gives anyone,
//!   always.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::super::EventLoop;
use super::http::{self, Request, Response};
use crate::proto::{perms, Id};
use crate::zab::Role;

/// Child names listed per znode.
pub const CHILDREN_MAX: usize = 1000;
/// Above this many children the listing is a sample in the tree's order, not sorted names
/// (sorting millions of names would stall the loop).
const SORT_MAX: u32 = 10_000;
/// Data bytes returned per znode.
pub const DATA_MAX: usize = 16 << 10;

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

pub fn asset(name: &str) -> Response {
    let (ct, body) = match name {
        "index.html" => (http::HTML, INDEX_HTML),
        "console.js" => (http::JS, CONSOLE_JS),
        "console.css" => (http::CSS, CONSOLE_CSS),
        _ => return Response::error(404, "no such asset"),
    };
    Response::new(200, ct, body)
}

pub fn status(ev: &EventLoop, _req: &Request) -> Response {
    let svc = ev.service();
    let st = svc.stats();
    let last = svc.last_zxid();
    let settings = &ev.admin.settings;
    let me = ev.cfg.server_id;
    let mut v = json!({
        "id": me,
        "mode": ev.mode_name(),
        "version": ev.cfg.version,
        "last_zxid": format!("0x{:x}", last.0),
        "epoch": last.0 >> 32,
        "counter": last.0 & 0xffff_ffff,
        "sessions": svc.sessions().len(),
        "connections": svc.client_count(),
        "outstanding": svc.outstanding(),
        "packets_received": st.packets_received,
        "packets_sent": st.packets_sent,
        "znode_count": svc.tree().node_count(),
        "watch_count": svc.watches().watch_count(),
        "uptime_ms": ev.admin.started.elapsed().as_millis() as u64,
        "time_ms": super::super::wall_ms(),
        "read_p99_ms": svc.metrics().read_latency.quantile(0.99) as f64 / 1000.0,
        "update_p99_ms": svc.metrics().update_latency.quantile(0.99) as f64 / 1000.0,
    });
    if let Some(zab) = ev.replica.zab() {
        let z = zab.status();
        v["peer_state"] = json!(ev.admin.observer.peer_state());
        v["current_epoch"] = json!(z.current_epoch);
        v["accepted_epoch"] = json!(z.accepted_epoch);
        v["leader_id"] = match z.role {
            Role::Leading { .. } => json!(me),
            Role::Following { leader, .. } => json!(leader.0),
            Role::Looking => Value::Null,
        };
        v["followers"] = z
            .followers
            .iter()
            .map(|(id, synced, acked)| json!({ "id": id.0, "synced": synced, "acked_zxid": format!("0x{:x}", acked.0) }))
            .collect();
    }
    v["servers"] = settings
        .servers
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "host": s.host,
                "client": s.client_addr.map(|a| a.to_string()),
                "participant": s.participant,
                "admin_url": s.admin_port.map(|p| format!("http://{}:{p}", url_host(&s.host))),
            })
        })
        .collect();
    v["events"] = ev.admin.observer.events().map(|e| json!(e)).collect();
    Response::json(200, &v).header("Access-Control-Allow-Origin", "*")
}

/// A host as it goes into a URL (IPv6 literals in brackets).
fn url_host(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

fn perm_string(p: i32) -> String {
    [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

pub fn tree(ev: &EventLoop, req: &Request) -> Response {
    let path = req.param("path").unwrap_or("/");
    if !path.starts_with('/') || (path.len() > 1 && path.ends_with('/')) || path.contains("//") {
        return Response::error(400, &format!("bad znode path {path:?}"));
    }
    let tree = ev.service().tree();
    let Some(id) = tree.lookup(path) else {
        return Response::json(404, &json!({ "path": path, "error": "NoNode" }));
    };
    let s = tree.stat(id);
    let acl = tree.acl(id);
    let anyone = [Id::new("world", "anyone")];
    let readable = crate::acl::check(acl, perms::READ, &anyone);
    let acl_visible = readable || crate::acl::check(acl, perms::ADMIN, &anyone);
    let mut v = json!({
        "path": path,
        "stat": {
            "czxid": format!("0x{:x}", s.czxid), "mzxid": format!("0x{:x}", s.mzxid), "pzxid": format!("0x{:x}", s.pzxid),
            "ctime": s.ctime, "mtime": s.mtime, "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
            "ephemeralOwner": format!("0x{:x}", s.ephemeral_owner), "dataLength": s.data_length, "numChildren": s.num_children,
        },
        "readable": readable,
    });
    if acl_visible {
        v["acl"] = acl.iter().map(|a| json!({ "scheme": a.id.scheme, "id": a.id.id, "perms": perm_string(a.perms) })).collect();
    }
    if readable {
        let total = tree.num_children(id);
        let (children, sorted) = if total <= SORT_MAX {
            let mut all = tree.children(id);
            all.truncate(CHILDREN_MAX);
            (all, true)
        } else {
            let mut some = tree.some_children(id, CHILDREN_MAX);
            some.sort_unstable();
            (some, false)
        };
        v["children_truncated"] = json!(children.len() < total as usize);
        v["children_sorted"] = json!(sorted);
        v["children"] = json!(children);
        let data = tree.data(id);
        let shown = &data[..data.len().min(DATA_MAX)];
        let mut hex = String::with_capacity(shown.len() * 2);
        for b in shown {
            let _ = write!(hex, "{b:02x}");
        }
        v["data_hex"] = json!(hex);
        v["data_truncated"] = json!(shown.len() < data.len());
    }
    Response::json(200, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_print_as_zkcli_does() {
        assert_eq!(perm_string(perms::ALL), "cdrwa");
        assert_eq!(perm_string(perms::READ | perms::ADMIN), "ra");
        assert_eq!(perm_string(0), "");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(url_host("127.0.0.1"), "127.0.0.1");
    }
}

//! `/commands/<name>`: ZooKeeper 3.8's AdminServer commands (`admin/Commands.java`), with
//! their primary names and aliases, answering JSON with ZooKeeper's keys plus `command`
//! (the primary name) and `error` (null).
//!
//! Values are arbor's own and real; a key ZooKeeper has for something arbor does not
//! measure (per-connection latencies, response buffer sizes, JVM memory) is left out rather
//! than filled with a constant. Only commands that change nothing are served: `srst`,
//! `crst` and `stmk` stay four-letter words (a GET that resets counters could be triggered
//! by any web page a browser visits).
//!
//! One difference from ZooKeeper 3.8, which answers an unknown command with status 200 and
//! an `error`: arbor sends the same body with 404, so scripts that check the status see it.

use serde_json::{json, Map, Value};

use super::super::{dir_size, EventLoop};
use super::http::Response;
use crate::zab::Role;

/// (primary name, aliases). ZooKeeper's names.
const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("hash", &[]),
    ("initial_configuration", &["icfg"]),
    ("is_read_only", &["isro"]),
    ("last_snapshot", &["lsnp"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("stats", &["stat"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
    ("zabstate", &[]),
];

/// The primary name for `name` (itself or an alias).
pub fn primary(name: &str) -> Option<&'static str> {
    COMMANDS.iter().find(|(p, aliases)| *p == name || aliases.contains(&name)).map(|(p, _)| *p)
}

/// `/commands`: links to every command, as ZooKeeper lists them.
pub fn index() -> String {
    let mut s = String::new();
    for (p, _) in COMMANDS {
        s.push_str(&format!("<a href=\"/commands/{p}\">{p}</a>\n<br/>\n"));
    }
    s
}

/// Run command `name` (a primary name or an alias).
pub fn run(ev: &EventLoop, name: &str) -> Response {
    let Some(cmd) = primary(name) else {
        return Response::json(404, &json!({ "command": name, "error": format!("Unknown command: {name}") }));
    };
    let mut m = match cmd {
        "configuration" => configuration(ev),
        "connections" => {
            let mut m = Map::new();
            m.insert("connections".into(), Value::Array(connections(ev)));
            m.insert("secure_connections".into(), json!([]));
            m
        }
        "dirs" => obj(json!({
            "datadir_size": dir_size(&ev.cfg.data_dir),
            "logdir_size": dir_size(&ev.cfg.data_log_dir),
        })),
        "environment" => environment(ev),
        "hash" => hash(ev),
        "initial_configuration" => obj(json!({ "initial_configuration": ev.admin.settings.initial_config })),
        "is_read_only" => obj(json!({ "read_only": ev.service().mode() == crate::service::Mode::ReadOnly })),
        "last_snapshot" => last_snapshot(ev),
        "leader" => leader(ev),
        "monitor" => super::metrics::monitor_json(ev),
        "ruok" => Map::new(),
        "server_stats" => server_stats(ev),
        "stats" => {
            let mut m = server_stats(ev);
            m.insert("connections".into(), Value::Array(connections(ev)));
            m.insert("secure_connections".into(), json!([]));
            m
        }
        "voting_view" => voting_view(ev),
        "watch_summary" => {
            let (conns, paths, total) = ev.service().watches().data_watch_summary();
            obj(json!({ "num_connections": conns, "num_paths": paths, "num_total_watches": total }))
        }
        "watches" => watches(ev),
        "watches_by_path" => watches_by_path(ev),
        "dump" => dump(ev),
        "zabstate" => zabstate(ev),
        _ => Map::new(),
    };
    m.insert("command".into(), json!(cmd));
    if !m.contains_key("error") {
        m.insert("error".into(), Value::Null);
    }
    Response::json(200, &Value::Object(m))
}

/// `hash` (`DigestCommand`): the tree digests logged every 128 zxids, oldest first, each as
/// ZooKeeper's `ZxidDigest` bean (`zxid`, `digestVersion`, `digest`: Jackson's names).
fn hash(ev: &EventLoop) -> Map<String, Value> {
    let digests: Vec<Value> = ev
        .service()
        .tree()
        .digest_log()
        .map(|d| json!({ "zxid": d.zxid.0, "digestVersion": crate::tree::DIGEST_VERSION, "digest": d.digest }))
        .collect();
    obj(json!({ "digests": digests }))
}

/// The session id of a watcher (a client connection), 0 if it has none (yet).
fn watcher_session(ev: &EventLoop, watcher: u64) -> i64 {
    ev.service().clients().find(|(c, _)| c.0 == watcher).and_then(|(_, i)| i.session()).map_or(0, |s| s.0)
}

/// `watches` (wchc): `session_id_to_watched_paths`, session id (decimal, as ZooKeeper's JSON
/// writes a Long key) → watched paths.
fn watches(ev: &EventLoop) -> Map<String, Value> {
    let mut by_session: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    for (watcher, paths) in ev.service().watches().by_watcher() {
        by_session.entry(watcher_session(ev, watcher.0)).or_default().extend(paths.into_iter().map(|p| p.to_string()));
    }
    let m: Map<String, Value> = by_session.into_iter().map(|(sid, paths)| (sid.to_string(), json!(paths))).collect();
    obj(json!({ "session_id_to_watched_paths": m }))
}

/// `watches_by_path` (wchp): `path_to_session_ids`, path → ids of the sessions watching it.
fn watches_by_path(ev: &EventLoop) -> Map<String, Value> {
    let mut m = Map::new();
    for (path, watchers) in ev.service().watches().by_path() {
        let mut ids: Vec<i64> = watchers.into_iter().map(|w| watcher_session(ev, w.0)).collect();
        ids.sort_unstable();
        ids.dedup();
        m.insert(path.to_string(), json!(ids));
    }
    obj(json!({ "path_to_session_ids": m }))
}

/// `dump`: `expiry_time_to_session_ids` (the monotonic expiry deadline, ms, like ZooKeeper's
/// elapsed-time buckets → session ids) and `session_id_to_ephemeral_paths`. A follower does not
/// track expiry (the leader owns it): its deadlines are those it last heard of.
fn dump(ev: &EventLoop) -> Map<String, Value> {
    let svc = ev.service();
    let mut expiry: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for s in svc.sessions().iter_sorted() {
        if !s.closing {
            expiry.entry(s.deadline_ms).or_default().push(s.id.0);
        }
    }
    let expiry: Map<String, Value> = expiry.into_iter().map(|(t, ids)| (t.to_string(), json!(ids))).collect();
    let mut ephemerals = Map::new();
    for owner in svc.tree().sessions_with_ephemerals() {
        let paths: Vec<String> = svc.tree().ephemerals(owner).into_iter().map(|p| p.to_string()).collect();
        ephemerals.insert(owner.0.to_string(), json!(paths));
    }
    obj(json!({ "expiry_time_to_session_ids": expiry, "session_id_to_ephemeral_paths": ephemerals }))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn client_port(ev: &EventLoop) -> u16 {
    ev.cfg.client_addr.port()
}

fn configuration(ev: &EventLoop) -> Map<String, Value> {
    let c = ev.service().config();
    obj(json!({
        "client_port": client_port(ev),
        "data_dir": ev.cfg.data_dir,
        "data_log_dir": ev.cfg.data_log_dir,
        "tick_time": ev.cfg.tick_ms,
        "max_client_cnxns": ev.cfg.max_client_cnxns,
        "min_session_timeout": c.min_session_timeout_ms,
        "max_session_timeout": c.max_session_timeout_ms,
        "server_id": ev.cfg.server_id,
        "client_port_listen_backlog": -1,
    }))
}

/// `ServerCnxn.getConnectionInfo(false)`, without the per-connection latencies arbor does
/// not keep.
fn connections(ev: &EventLoop) -> Vec<Value> {
    let mut v: Vec<_> = ev.service().clients().collect();
    v.sort_by_key(|(c, _)| **c);
    v.into_iter()
        .map(|(id, i)| {
            // OP_READ = 1, OP_WRITE = 4 (java.nio SelectionKey), as the loop has them now.
            let interest = ev.conns.get(id.slot()).map_or(0, |c| {
                let read = if c.paused || c.throttled { 0 } else { 1 };
                read | if c.writable_registered { 4 } else { 0 }
            });
            let mut m = obj(json!({
                "remote_socket_address": i.addr,
                "interest_ops": interest,
                "outstanding_requests": ev.service().backlog(*id),
                "packets_received": i.received,
                "packets_sent": i.sent,
            }));
            if let Some(sid) = i.session() {
                m.extend(obj(json!({
                    "session_id": sid.0,
                    "last_operation": i.last_op,
                    "established": i.established_ms,
                    "session_timeout": i.timeout_ms,
                    "last_cxid": i.last_cxid,
                    "last_zxid": i.last_zxid,
                    "last_response_time": i.last_response_ms,
                })));
            }
            Value::Object(m)
        })
        .collect()
}

fn environment(ev: &EventLoop) -> Map<String, Value> {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).ok();
    let mut m = Map::new();
    m.insert("zookeeper.version".into(), json!(ev.cfg.version));
    if let Some(h) = read("/proc/sys/kernel/hostname") {
        m.insert("host.name".into(), json!(h));
    }
    m.insert("os.name".into(), json!(os_name()));
    // Java's spelling of the architecture.
    m.insert("os.arch".into(), json!(if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }));
    if let Some(v) = read("/proc/sys/kernel/osrelease") {
        m.insert("os.version".into(), json!(v));
    }
    if let Some((name, home)) = current_user() {
        m.insert("user.name".into(), json!(name));
        m.insert("user.home".into(), json!(home));
    }
    if let Ok(d) = std::env::current_dir() {
        m.insert("user.dir".into(), json!(d.display().to_string()));
    }
    m.insert("arbor.version".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("arbor.pid".into(), json!(std::process::id()));
    m
}

/// The process's user name and home directory, from the password database.
fn current_user() -> Option<(String, String)> {
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    // SAFETY: getpwuid_r fills `pw` with pointers into `buf`, which outlives their use; a
    // zeroed passwd is a valid out-parameter.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(libc::getuid(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found);
        if r != 0 || found.is_null() || pw.pw_name.is_null() || pw.pw_dir.is_null() {
            return None;
        }
        let s = |p: *const libc::c_char| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
        Some((s(pw.pw_name), s(pw.pw_dir)))
    }
}

/// Java's `os.name` spelling.
fn os_name() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Mac OS X",
        other => other,
    }
}

/// `{zxid: hex without 0x, timestamp: seconds}`; ZooKeeper's `-1` values when there is none.
fn last_snapshot(ev: &EventLoop) -> Map<String, Value> {
    let found = ev.sink.last_snapshot().map(|(z, ms)| (z, ms / 1000)).or_else(|| {
        let z = ev.sink.newest_snapshot()?;
        let secs = ev
            .sink
            .snapshot_file(z)
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_secs() as i64);
        Some((z, secs))
    });
    match found {
        Some((z, secs)) => obj(json!({ "zxid": format!("{:x}", z.0), "timestamp": secs })),
        None => obj(json!({ "zxid": format!("{:x}", -1i64), "timestamp": -1 })),
    }
}

fn leader(ev: &EventLoop) -> Map<String, Value> {
    let (Some(ens), Some(zab)) = (ev.ens.as_ref(), ev.replica.zab()) else {
        return obj(json!({ "error": "server is not initialized" }));
    };
    let (is_leader, id) = match zab.role() {
        Role::Leading { .. } => (true, Some(ens.me.0)),
        Role::Following { leader, .. } => (false, Some(leader.0)),
        Role::Looking => (false, None),
    };
    let ip = id
        .and_then(|id| ev.admin.settings.servers.iter().find(|s| s.id == id))
        .map(|s| s.host.clone())
        .unwrap_or_default();
    obj(json!({ "is_leader": is_leader, "leader_id": id.map_or(-1, |i| i as i64), "leader_ip": ip }))
}

fn server_stats(ev: &EventLoop) -> Map<String, Value> {
    let svc = ev.service();
    let st = svc.stats();
    let (avg, min, max) = ev.latency_ms();
    let (remote, local) = ev.conn_locality();
    let stats = json!({
        "packets_sent": st.packets_sent,
        "packets_received": st.packets_received,
        "data_dir_size": dir_size(&ev.cfg.data_dir),
        "log_dir_size": dir_size(&ev.cfg.data_log_dir),
        "provider_null": false,
        "server_state": ev.mode_name(),
        "last_processed_zxid": svc.last_zxid().0,
        "outstanding_requests": svc.outstanding(),
        "avg_latency": avg,
        "max_latency": max,
        "min_latency": min,
        "num_alive_client_connections": svc.client_count(),
        "non_mtlsremote_conn_count": remote,
        "non_mtlslocal_conn_count": local,
        "uptime": ev.admin.started.elapsed().as_millis() as u64,
    });
    let mut m = obj(json!({ "version": ev.cfg.version, "read_only": false, "server_stats": stats }));
    if let (Some(zab), Some((last, lo, hi))) = (ev.replica.zab(), ev.admin.observer.proposal_sizes) {
        if matches!(zab.role(), Role::Leading { .. }) {
            m.insert("proposal_stats".into(), json!({ "last_buffer_size": last, "min_buffer_size": lo, "max_buffer_size": hi }));
        }
    }
    m.insert("node_count".into(), json!(svc.tree().node_count()));
    m
}

fn voting_view(ev: &EventLoop) -> Map<String, Value> {
    let mut cfg = Map::new();
    if ev.ens.is_some() {
        for s in ev.admin.settings.servers.iter().filter(|s| s.participant) {
            cfg.insert(
                s.id.to_string(),
                json!({
                    "server_addresses": [format!("{}:{}", s.host, s.quorum_port)],
                    "election_addresses": [format!("{}:{}", s.host, s.election_port)],
                    "client_address": s.client_addr.map(|a| a.to_string()).unwrap_or_default(),
                    "learner_type": "participant",
                }),
            );
        }
    }
    let mut m = Map::new();
    m.insert("current_config".into(), Value::Object(cfg));
    m
}

/// `zabstate`: this member's replication state in a line.
fn zabstate(ev: &EventLoop) -> Map<String, Value> {
    let (Some(ens), Some(zab)) = (ev.ens.as_ref(), ev.replica.zab()) else {
        return obj(json!({ "voting": false, "zabstate": "" }));
    };
    let me = ev.admin.settings.servers.iter().find(|s| s.id == ens.me.0);
    let z = zab.status();
    let last = ev.service().last_zxid();
    let state = match (z.role, z.serving) {
        (Role::Looking, _) => "election",
        (_, true) => "broadcast",
        _ => "synchronization",
    };
    obj(json!({
        "myid": ens.me.0,
        "is_leader": matches!(z.role, Role::Leading { .. }),
        "quorum_address": me.map(|s| format!("{}:{}", s.host, s.quorum_port)).unwrap_or_default(),
        "election_address": me.map(|s| format!("{}:{}", s.host, s.election_port)).unwrap_or_default(),
        "client_address": me.and_then(|s| s.client_addr).map(|a| a.to_string()).unwrap_or_default(),
        "voting": me.is_some_and(|s| s.participant),
        "last_zxid": format!("0x{:x}", last.0),
        "zab_epoch": last.0 >> 32,
        "zab_counter": last.0 & 0xffff_ffff,
        "zabstate": state,
    }))
}

//! Four-letter words on the client port (`FourLetterCommands.java`): a new connection whose
//! first four bytes spell a known command gets a plain-text answer and is closed.
//!
//! The whitelist (`4lw.commands.whitelist`) decides which commands run; the others get
//! ZooKeeper's "not executed" sentence.

use std::fmt::Write;

use crate::service::Service;

/// Every command arbor knows. A connection starting with one of these is a 4lw request.
pub const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "envi", "isro", "cons", "conf", "wchs", "wchc", "wchp", "dump", "srst", "crst",
    "dirs", "gtmk", "stmk",
];

pub fn is_word(first4: &[u8]) -> Option<&'static str> {
    WORDS.iter().copied().find(|w| w.as_bytes() == first4)
}

/// What a 4lw answer needs beyond the service itself.
pub struct NodeFacts<'a> {
    pub mode: &'a str,
    pub version: &'a str,
    pub client_addr: String,
    pub data_dir: String,
    pub data_log_dir: String,
    pub tick_ms: i32,
    pub max_client_cnxns: u32,
    pub server_id: u64,
    pub force_sync: bool,
    pub log_dir_bytes: u64,
    pub snap_dir_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub now_wall_ms: i64,
    /// Replication state of an ensemble member.
    pub ensemble: Option<crate::zab::ZabStatus>,
    /// `conf`'s ensemble part (limits, ports, `membership:` lines) of an ensemble member.
    pub quorum_conf: Option<String>,
}

pub fn answer(word: &str, allowed: bool, svc: &mut Service, facts: &NodeFacts) -> String {
    if !allowed {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let mut s = String::new();
    match word {
        "ruok" => s.push_str("imok"),
        "srvr" => srvr(&mut s, svc, facts, false),
        "stat" => srvr(&mut s, svc, facts, true),
        // The loop answers mntr itself (`admin::metrics::mntr_text`); this is its
        // not-whitelisted path only.
        "mntr" => {}
        "envi" => envi(&mut s, facts),
        "isro" => s.push_str(if svc.mode() == crate::service::Mode::ReadOnly { "ro" } else { "rw" }),
        "cons" => {
            cons(&mut s, svc, facts);
            s.push('\n');
        }
        "crst" => {
            s.push_str("Connection stats reset.\n");
        }
        "srst" => {
            svc.reset_stats();
            s.push_str("Server stats reset.\n");
        }
        "conf" => conf(&mut s, svc, facts),
        "wchs" => {
            let (watchers, paths, total) = svc.watches().data_watch_summary();
            let _ = writeln!(s, "{watchers} connections watching {paths} paths");
            let _ = writeln!(s, "Total watches:{total}");
        }
        "wchc" => {
            for (watcher, paths) in svc.watches().by_watcher() {
                let sid = svc
                    .clients()
                    .find(|(c, _)| c.0 == watcher.0)
                    .and_then(|(_, i)| i.session())
                    .map(|s| s.0)
                    .unwrap_or(0);
                let _ = writeln!(s, "0x{sid:x}");
                for p in paths {
                    let _ = writeln!(s, "\t{p}");
                }
            }
        }
        "wchp" => {
            for (path, watchers) in svc.watches().by_path() {
                let _ = writeln!(s, "{path}");
                for w in watchers {
                    let sid = svc.clients().find(|(c, _)| c.0 == w.0).and_then(|(_, i)| i.session()).map(|s| s.0).unwrap_or(0);
                    let _ = writeln!(s, "\t0x{sid:x}");
                }
            }
        }
        "dump" => dump(&mut s, svc),
        "dirs" => {
            let _ = writeln!(s, "datadir_size: {}", facts.snap_dir_bytes);
            let _ = writeln!(s, "logdir_size: {}", facts.log_dir_bytes);
        }
        "gtmk" => s.push_str("0\n"),
        "stmk" => s.push_str("0\n"),
        _ => s.push_str("unknown command\n"),
    }
    s
}

fn latency(svc: &Service) -> (f64, f64, f64) {
    let st = svc.stats();
    let avg = if st.latency_count == 0 { 0.0 } else { st.latency_total_us as f64 / st.latency_count as f64 / 1000.0 };
    (st.latency_min_us as f64 / 1000.0, avg, st.latency_max_us as f64 / 1000.0)
}

fn srvr(s: &mut String, svc: &Service, f: &NodeFacts, with_clients: bool) {
    let _ = writeln!(s, "Zookeeper version: {}", f.version);
    if with_clients {
        s.push_str("Clients:\n");
        cons_short(s, svc);
        s.push('\n');
    }
    let (min, avg, max) = latency(svc);
    let _ = writeln!(s, "Latency min/avg/max: {min:.3}/{avg:.4}/{max:.3}");
    let _ = writeln!(s, "Received: {}", svc.stats().packets_received);
    let _ = writeln!(s, "Sent: {}", svc.stats().packets_sent);
    let _ = writeln!(s, "Connections: {}", svc.client_count());
    let _ = writeln!(s, "Outstanding: {}", svc.outstanding());
    let _ = writeln!(s, "Zxid: 0x{:x}", svc.last_zxid().0);
    let _ = writeln!(s, "Mode: {}", f.mode);
    let _ = writeln!(s, "Node count: {}", svc.tree().node_count());
    if let Some(z) = &f.ensemble {
        let _ = writeln!(s, "Epoch: {} (accepted {})", z.current_epoch, z.accepted_epoch);
        let _ = writeln!(s, "Last committed: 0x{:x}", z.last_committed.0);
        if let crate::zab::Role::Following { leader, .. } = z.role {
            let _ = writeln!(s, "Leader: {leader}");
        }
        if matches!(z.role, crate::zab::Role::Leading { .. }) {
            let synced = z.followers.iter().filter(|f| f.1).count();
            let _ = writeln!(s, "Followers: {} ({} synced)", z.followers.len(), synced);
            for (id, ok, acked) in &z.followers {
                let _ = writeln!(s, "  server {id}: {}, acked 0x{:x}", if *ok { "synced" } else { "syncing" }, acked.0);
            }
        }
    }
    if !f.force_sync {
        let _ = writeln!(s, "WARNING: forceSync=no: acknowledged writes are NOT fsynced (benchmarks only)");
    }
}

fn cons_short(s: &mut String, svc: &Service) {
    let mut v: Vec<_> = svc.clients().collect();
    v.sort_by_key(|(c, _)| **c);
    for (_, i) in v {
        let _ = writeln!(s, " /{}[1](queued=0,recved={},sent={})", i.addr, i.received, i.sent);
    }
}

fn cons(s: &mut String, svc: &Service, f: &NodeFacts) {
    let mut v: Vec<_> = svc.clients().collect();
    v.sort_by_key(|(c, _)| **c);
    let _ = f;
    for (_, i) in v {
        let sid = i.session().map(|s| s.0).unwrap_or(0);
        let _ = writeln!(
            s,
            " /{}[1](queued=0,recved={},sent={},sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat=0,minlat=0,avglat=0,maxlat=0)",
            i.addr, i.received, i.sent, sid, i.last_op, i.established_ms, i.timeout_ms, i.last_cxid, i.last_zxid, i.last_response_ms
        );
    }
}

fn envi(s: &mut String, f: &NodeFacts) {
    s.push_str("Environment:\n");
    let _ = writeln!(s, "zookeeper.version={}", f.version);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let _ = writeln!(s, "host.name={}", host.trim());
    let _ = writeln!(s, "java.version=none (arbor is written in Rust)");
    let _ = writeln!(s, "os.name={}", std::env::consts::OS);
    let _ = writeln!(s, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(s, "user.dir={}", std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default());
    let _ = writeln!(s, "arbor.version={}", env!("CARGO_PKG_VERSION"));
}

fn conf(s: &mut String, svc: &Service, f: &NodeFacts) {
    let c = svc.config();
    let _ = writeln!(s, "clientPort={}", f.client_addr.rsplit(':').next().unwrap_or(""));
    let _ = writeln!(s, "secureClientPort=-1");
    let _ = writeln!(s, "dataDir={}", f.data_dir);
    let _ = writeln!(s, "dataDirSize={}", f.snap_dir_bytes);
    let _ = writeln!(s, "dataLogDir={}", f.data_log_dir);
    let _ = writeln!(s, "dataLogSize={}", f.log_dir_bytes);
    let _ = writeln!(s, "tickTime={}", f.tick_ms);
    let _ = writeln!(s, "maxClientCnxns={}", f.max_client_cnxns);
    let _ = writeln!(s, "minSessionTimeout={}", c.min_session_timeout_ms);
    let _ = writeln!(s, "maxSessionTimeout={}", c.max_session_timeout_ms);
    let _ = writeln!(s, "clientPortListenBacklog=-1");
    let _ = writeln!(s, "serverId={}", f.server_id);
    let _ = writeln!(s, "forceSync={}", if f.force_sync { "yes" } else { "no" });
    if let Some(q) = &f.quorum_conf {
        s.push_str(q);
        if !q.ends_with('\n') {
            s.push('\n');
        }
    }
}

fn dump(s: &mut String, svc: &Service) {
    let sessions = svc.sessions().iter_sorted();
    s.push_str("SessionTracker dump:\n");
    let _ = writeln!(s, "Global Sessions({}):", sessions.len());
    for sess in &sessions {
        let _ = writeln!(s, "0x{:x}\t{}ms", sess.id.0, sess.timeout_ms);
    }
    s.push_str("ephemeral nodes dump:\n");
    let owners = svc.tree().sessions_with_ephemerals();
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", owners.len());
    for o in owners {
        let _ = writeln!(s, "0x{:x}:", o.0);
        for p in svc.tree().ephemerals(o) {
            let _ = writeln!(s, "\t{p}");
        }
    }
    let _ = writeln!(s, "Connections dump:");
    let _ = writeln!(s, "Connections Sets (1)/({}):", svc.client_count());
}

//! Wiring one server process together: config → recovered state → service → event loop.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use crate::config;
use crate::proto::{ServerId, Zxid};
use crate::zab::{DurableState, Zab, ZabConfig};
use crate::server::admin::{AdminSettings, ServerView, StartupTimes};
use crate::server::{Ensemble, EventLoop, LoopConfig};
use crate::service::{Mode, Service, ServiceConfig};
use crate::storage::{self, StorageConfig, StorageError};

/// The version string clients see (`srvr`, `envi`): the ZooKeeper protocol level first,
/// since clients such as kazoo parse it to decide which features to use.
pub fn version_string() -> String {
    format!("3.8.0-arbor-{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("cannot recover the state from disk: {0}")]
    Storage(#[from] StorageError),
    #[error("event loop stopped: {0}")]
    Loop(std::io::Error),
    #[error("{0}")]
    Unsupported(String),
}

pub fn run(id: ServerId, config_path: &Path) -> Result<(), NodeError> {
    let (cfg, warnings) = config::load(config_path, Some(id))?;
    for w in &warnings {
        eprintln!("arbor: warning: {w}");
    }
    let client_addr = cfg.client_addr(id)?;
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let svc_cfg = ServiceConfig {
        server_id: id,
        tick_ms: cfg.tick_time_ms as i32,
        min_session_timeout_ms: cfg.min_session_timeout_ms as i32,
        max_session_timeout_ms: cfg.max_session_timeout_ms as i32,
        super_digest: cfg.super_digest.as_ref().map(|s| format!("{}:{}", s.user, s.digest)),
        container_check_ms: 60_000,
    };
    if !cfg.force_sync {
        eprintln!(
            "arbor: WARNING: forceSync=no: the txn log is not fsynced; acknowledged writes can be \
             lost on a crash or power failure. For benchmarks only."
        );
    }
    // The loop's monotonic clock starts at 0 when it is created; recovered sessions count
    // their timeout from there.
    let recovered = storage::recover(StorageConfig::from_config(&cfg), id, wall, 0)?;
    eprintln!("arbor: recovered: {}", recovered.report);
    let r = &recovered.report;
    let startup = StartupTimes {
        snap_load_ms: r.snapshot_load_ms,
        txns_load_ms: r.total_ms.saturating_sub(r.snapshot_load_ms),
        txns_loaded: r.replayed,
        total_ms: r.total_ms,
    };
    let mut storage = recovered.storage;
    let last_logged = recovered.tree.last_applied();
    let mut service = Service::new(svc_cfg, recovered.tree, recovered.sessions, 0);
    let ens = if cfg.is_standalone() {
        None
    } else {
        // Until the election settles nobody serves clients.
        service.set_initial_mode(Mode::NotServing);
        service.set_membership(membership(&cfg));
        Some(ensemble(&cfg, id, last_logged)?)
    };
    // Notice a full disk before the first write arrives.
    storage.housekeeping(&mut service);
    let allowed: Vec<String> = cfg.four_lw_whitelist.words().map(str::to_string).collect();
    let loop_cfg = LoopConfig {
        client_addr,
        max_frame: cfg.jute_max_buffer as usize,
        max_client_cnxns: cfg.max_client_cnxns,
        four_lw_allowed: Some(allowed),
        mode: "standalone".into(),
        version: version_string(),
        data_dir: cfg.data_dir.display().to_string(),
        data_log_dir: cfg.data_log_dir.display().to_string(),
        tick_ms: cfg.tick_time_ms as i32,
        server_id: id.0,
        force_sync: cfg.force_sync,
        global_outstanding_limit: cfg.global_outstanding_limit as usize,
        max_cnxns: cfg.max_cnxns,
        admin: admin_settings(&cfg, id, config_path, startup),
    };
    let standalone = ens.is_none();
    let mut ev = EventLoop::new(loop_cfg, service, Box::new(storage), ens)
        .map_err(|source| NodeError::Listen { addr: client_addr, source })?;
    eprintln!(
        "arbor {} node {id} serving clients on {} ({}; txn log in {}, snapshots in {})",
        version_string(),
        ev.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        if standalone { "standalone".to_string() } else { format!("one of {} servers", cfg.servers.len()) },
        cfg.data_log_dir.display(),
        cfg.data_dir.display()
    );
    if let Some(a) = ev.admin_addr() {
        eprintln!("arbor: admin server (console, /commands, /metrics) on http://{a}/");
    }
    ev.run().map_err(NodeError::Loop)
}

/// What the admin server reports beyond the loop's own state.
fn admin_settings(cfg: &config::Config, id: ServerId, path: &Path, startup: StartupTimes) -> AdminSettings {
    /// `initial_configuration` shows the file; a larger one is cut (it is not a config).
    const INITIAL_CONFIG_MAX: usize = 64 << 10;
    let mut initial_config = std::fs::read_to_string(path).unwrap_or_default();
    if initial_config.len() > INITIAL_CONFIG_MAX {
        let mut cut = INITIAL_CONFIG_MAX;
        while !initial_config.is_char_boundary(cut) {
            cut -= 1;
        }
        initial_config.truncate(cut);
    }
    let servers = cfg
        .servers
        .iter()
        .map(|(sid, s)| ServerView {
            id: sid.0,
            host: s.host.clone(),
            quorum_port: s.quorum_port,
            election_port: s.election_port,
            client_addr: s.client_addr,
            participant: s.role == config::Role::Participant,
            admin_port: cfg.admin.enabled.then(|| cfg.admin.port_of(*sid)),
        })
        .collect();
    AdminSettings {
        addr: cfg.admin_addr(id),
        idle_timeout_ms: cfg.admin.idle_timeout_ms,
        initial_config,
        servers,
        init_limit: cfg.init_limit,
        sync_limit: cfg.sync_limit,
        membership: (!cfg.is_standalone()).then(|| membership(cfg)),
        startup: Some(startup),
    }
}

fn resolve(host: &str, port: u16, what: &str, id: ServerId) -> Result<SocketAddr, NodeError> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| NodeError::Unsupported(format!("server.{id}: cannot resolve {what} address {host}:{port}")))
}

/// The replication side: addresses of every server, durable epochs, the log's tail.
fn ensemble(cfg: &config::Config, me: ServerId, last_logged: Zxid) -> Result<Ensemble, NodeError> {
    let mut election = BTreeMap::new();
    let mut quorum = BTreeMap::new();
    for (id, spec) in &cfg.servers {
        election.insert(*id, resolve(&spec.host, spec.election_port, "election", *id)?);
        quorum.insert(*id, resolve(&spec.host, spec.quorum_port, "quorum", *id)?);
    }
    let (accepted, current) = storage::read_epochs(&cfg.data_dir)?;
    // The in-memory history the core syncs followers from: the log's tail.
    let history = cfg.commit_log_count as usize;
    let recent = storage::recent_txns(&cfg.data_log_dir, Zxid::ZERO, history)?;
    let zab_cfg = ZabConfig {
        me,
        voters: cfg.voters().map(|(id, _)| id).collect(),
        observers: cfg.servers.iter().filter(|(_, s)| s.role == config::Role::Observer).map(|(id, _)| *id).collect(),
        tick_ms: cfg.tick_time_ms,
        init_limit: cfg.init_limit,
        sync_limit: cfg.sync_limit,
        finalize_wait_ms: 200,
        committed_log_max: history,
    };
    let durable = DurableState { accepted_epoch: accepted, current_epoch: current, last_logged };
    eprintln!("arbor: server {me}: acceptedEpoch {accepted}, currentEpoch {current}, last zxid {last_logged}; {} txns of history in memory", recent.len());
    let zab = Zab::new(zab_cfg, durable, recent, 0);
    Ensemble::new(zab, me, election, quorum).map_err(|e| NodeError::Unsupported(format!("cannot listen for peers: {e}")))
}

/// `/zookeeper/config` as ZooKeeper 3.8 shows it: one `server.N=` line per member, then the
/// config version.
fn membership(cfg: &config::Config) -> String {
    let mut out = String::new();
    for (id, s) in &cfg.servers {
        let role = match s.role {
            config::Role::Participant => "participant",
            config::Role::Observer => "observer",
        };
        let client = s.client_addr.map(|a| format!(";{a}")).unwrap_or_default();
        out.push_str(&format!("server.{id}={}:{}:{}:{role}{client}\n", s.host, s.quorum_port, s.election_port));
    }
    out.push_str("version=0");
    out
}

//! Wiring one server process together: config → recovered state → service → event loop.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use mio::net::TcpListener;

use crate::config;
use crate::reconfig;
use crate::proto::{ServerId, Zxid};
use crate::zab::{DurableState, Zab, ZabConfig};
use crate::server::admin::{AdminSettings, ServerView, StartupTimes};
use crate::server::tls::{TlsSetup, TlsSetupError};
use crate::server::{Ensemble, EventLoop, LoopConfig, TxnSink};
use crate::replica::Replica;
use crate::service::{Service, ServiceConfig};
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
    #[error("cannot listen on {addr} ({what} port): {source}{hint}", hint = if source.kind() == std::io::ErrorKind::AddrInUse { " (is another server running on it?)" } else { "" })]
    Listen { addr: std::net::SocketAddr, what: &'static str, source: std::io::Error },
    #[error("cannot recover the state from disk: {0}")]
    Storage(#[from] StorageError),
    #[error("event loop stopped: {0}")]
    Loop(std::io::Error),
    #[error("{0}")]
    MyId(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Tls(#[from] TlsSetupError),
}

/// ZooKeeper's id file in `dataDir`.
pub const MYID: &str = "myid";

/// Which server this process is and its config. With `id`, that id (a `dataDir/myid` that
/// says otherwise is an error: two servers would share a data directory); without, the id
/// in `dataDir/myid`, as ZooKeeper reads it. Returns the config's warnings too.
pub fn load(id: Option<ServerId>, config_path: &Path) -> Result<(ServerId, config::Config, Vec<String>), NodeError> {
    // The dataDir as written, where ZooKeeper keeps myid (a dataDir with `{id}` in it is
    // arbor's one-file layout: the id must come from the command line).
    let myid_at = match config::load(config_path, None) {
        Ok((cfg, _)) => Some(cfg.data_dir),
        Err(e) if id.is_none() => return Err(e.into()),
        Err(_) => None,
    };
    let myid = match &myid_at {
        Some(dir) => read_myid(dir)?,
        None => None,
    };
    let id = match (id, myid) {
        (Some(given), Some(mine)) if given != mine => {
            let dir = myid_at.unwrap_or_default();
            return Err(NodeError::MyId(format!(
                "{} says this is server {mine}, the command line says {given}",
                dir.join(MYID).display()
            )));
        }
        (Some(given), _) => given,
        (None, Some(mine)) => mine,
        (None, None) => {
            return Err(NodeError::MyId(format!(
                "{}: no server id given and no {MYID} in dataDir {} (write the id there, as for ZooKeeper, or run `arbor node ID CONFIG`)",
                config_path.display(),
                myid_at.unwrap_or_default().display()
            )))
        }
    };
    let (cfg, warnings) = config::load(config_path, Some(id))?;
    if let Some(mine) = read_myid(&cfg.data_dir)? {
        if mine != id {
            return Err(NodeError::MyId(format!(
                "{} says this is server {mine}, the command line says {id}",
                cfg.data_dir.join(MYID).display()
            )));
        }
    }
    Ok((id, cfg, warnings))
}

/// `dataDir/myid`: the server id as decimal text (surrounding whitespace allowed). `None`
/// when the file does not exist.
pub fn read_myid(data_dir: &Path) -> Result<Option<ServerId>, NodeError> {
    let path = data_dir.join(MYID);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NodeError::MyId(format!("{}: cannot read: {e}", path.display()))),
    };
    match text.trim().parse::<u64>() {
        Ok(id) if (1..=config::MAX_SERVER_ID).contains(&id) => Ok(Some(ServerId(id))),
        _ => Err(NodeError::MyId(format!(
            "{}: expected a server id (1..={}), found {:?}",
            path.display(),
            config::MAX_SERVER_ID,
            text.trim()
        ))),
    }
}

fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr).map_err(|source| NodeError::Listen { addr, what, source })
}

/// Run server `id` until a stop signal (`Ok`) or a fatal error. Logging is set up by the
/// caller; `warnings` are the config's.
pub fn run(id: ServerId, cfg: config::Config, warnings: &[String]) -> Result<(), NodeError> {
    for w in warnings {
        tracing::warn!("config: {w}");
    }
    // Without clientPort the secure port is the one client listener.
    let plain_addr = cfg.plain_client_addr(id)?;
    let secure_addr = cfg.secure_client_addr(id);
    let client_addr = match plain_addr.or(secure_addr) {
        Some(a) => a,
        None => cfg.client_addr(id)?,
    };
    let peers = if cfg.is_standalone() { None } else { Some(peer_addrs(&cfg)?) };
    // Key and trust stores are read before anything is bound or touched on disk.
    let tls = TlsSetup::load(&cfg)?;
    // Every port first: a port in use must stop the server before recovery creates the
    // dataDir and preallocates a log segment.
    let client_listener = bind(client_addr, if plain_addr.is_some() { "client" } else { "secure client" })?;
    let secure_listener = match (plain_addr, secure_addr) {
        (Some(_), Some(a)) => Some(bind(a, "secure client")?),
        _ => None,
    };
    let peer_listeners = match &peers {
        None => None,
        Some((election, quorum)) => {
            let e = *election.get(&id).ok_or_else(|| NodeError::Unsupported(format!("no server.{id} line")))?;
            let q = *quorum.get(&id).ok_or_else(|| NodeError::Unsupported(format!("no server.{id} line")))?;
            Some((bind(e, "election")?, bind(q, "quorum")?))
        }
    };
    log_start(id, &cfg, client_addr);
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
        reconfig_enabled: cfg.reconfig_enabled,
        container_check_ms: 60_000,
        planted: Default::default(),
    };
    if !cfg.force_sync {
        tracing::warn!(
            "forceSync=no: the txn log is not fsynced; acknowledged writes can be lost on a crash or power \
             failure. For benchmarks only."
        );
    }
    // The loop's monotonic clock starts at 0 when it is created; recovered sessions count
    // their timeout from there.
    let recovered = storage::recover(StorageConfig::from_config(&cfg), id, wall, 0)?;
    log_recovery(&recovered.report, recovered.sessions.len());
    let r = &recovered.report;
    let startup = StartupTimes {
        snap_load_ms: r.snapshot_load_ms,
        txns_load_ms: r.total_ms.saturating_sub(r.snapshot_load_ms),
        txns_loaded: r.replayed,
        total_ms: r.total_ms,
    };
    let mut storage = recovered.storage;
    let last_logged = recovered.tree.last_applied();
    let service = Service::new(svc_cfg, recovered.tree, recovered.sessions, 0);
    let (mut replica, ens) = match (peers, peer_listeners) {
        (Some((mut election, mut quorum)), Some(listeners)) => {
            // The committed membership is the config files'; the log may have replayed a
            // newer one that never committed (`reconfig::Recovered`).
            let committed = committed_membership(&cfg);
            let logged = reconfig::held(service.tree());
            let recovered = reconfig::recovered(committed, logged);
            recovered_members(Some(&recovered.committed), id, &mut election, &mut quorum);
            recovered_members(recovered.replayed.as_ref(), id, &mut election, &mut quorum);
            if let Some(r) = &recovered.replayed {
                tracing::warn!(
                    committed_version = %format_args!("{:x}", recovered.committed.version),
                    logged_version = %format_args!("{:x}", r.version),
                    "the log holds a reconfig not known to have committed: quorums count both memberships until a leader commits it"
                );
            }
            let zab = replication_core(&cfg, id, last_logged, &recovered)?;
            let ens = Ensemble::new(id, election, quorum, listeners).map_err(NodeError::Loop)?;
            // ZooKeeper's QuorumPeer waits max(2 s, tickTime) before going read-only.
            let read_only_after = cfg.read_only_mode.then(|| cfg.tick_time_ms.max(2000));
            // What recovery loaded is a snapshot a SNAP can send as it is.
            let snapshot = TxnSink::newest_snapshot(&storage);
            (Replica::ensemble(service, zab, recovered.committed, snapshot, read_only_after), Some(ens))
        }
        _ => (Replica::standalone(service), None),
    };
    // Notice a full disk before the first write arrives.
    let (tree, sessions) = replica.tree_for_snapshot();
    if let Some(refused) = storage.housekeeping(tree, sessions) {
        replica.service_mut().set_writes_refused(refused);
    }
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
        admin: admin_settings(&cfg, id, Path::new(&cfg.file_name), startup),
        dynamic_config_base: (!cfg.is_standalone()).then(|| std::path::PathBuf::from(&cfg.file_name)),
    };
    let mut ev = EventLoop::new(loop_cfg, client_listener, replica, Box::new(storage), ens).map_err(NodeError::Loop)?;
    ev.enable_tls(tls, secure_listener, plain_addr.is_none()).map_err(NodeError::Loop)?;
    ev.stop_on_signals().map_err(NodeError::Loop)?;
    tracing::info!(addr = %ev.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving clients");
    if let Some(a) = secure_addr {
        tracing::info!(addr = %a, client_auth = ?cfg.tls.client.client_auth, "serving clients over TLS (secureClientPort)");
    }
    if cfg.tls.ssl_quorum && !cfg.is_standalone() {
        tracing::info!(client_auth = ?cfg.tls.quorum.client_auth, "election and quorum connections use TLS (sslQuorum)");
    }
    if let Some(a) = ev.admin_addr() {
        tracing::info!(url = %format!("http://{a}/"), "admin server (console, /commands, /metrics)");
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
        membership: (!cfg.is_standalone()).then(|| membership(cfg).render()),
        startup: Some(startup),
    }
}

/// The start-up line: what this server is and the settings that matter most.
fn log_start(id: ServerId, cfg: &config::Config, client_addr: SocketAddr) {
    let servers: Vec<String> = cfg.servers.keys().map(|s| s.to_string()).collect();
    tracing::info!(
        version = %version_string(),
        server = %id,
        config = %cfg.file_name,
        mode = %if cfg.is_standalone() { "standalone" } else { "ensemble" },
        servers = %servers.join(","),
        client = %client_addr,
        data_dir = %cfg.data_dir.display(),
        data_log_dir = %cfg.data_log_dir.display(),
        tick_ms = cfg.tick_time_ms,
        init_limit = cfg.init_limit,
        sync_limit = cfg.sync_limit,
        snap_count = cfg.snap_count,
        force_sync = cfg.force_sync,
        max_cnxns = cfg.max_cnxns,
        max_client_cnxns = cfg.max_client_cnxns,
        pid = std::process::id(),
        "starting"
    );
}

fn log_recovery(r: &storage::recovery::RecoveryReport, sessions: usize) {
    let (snap_zxid, snap_path) = match &r.snapshot {
        Some((z, p)) => (z.to_string(), p.display().to_string()),
        None => ("none".to_string(), "none".to_string()),
    };
    tracing::info!(
        snapshot = %snap_path,
        snapshot_zxid = %snap_zxid,
        snapshot_load_ms = r.snapshot_load_ms,
        txns_replayed = r.replayed,
        last_zxid = %r.last_zxid,
        sessions,
        took_ms = r.total_ms,
        "recovered"
    );
}

fn resolve(host: &str, port: u16, what: &str, id: ServerId) -> Result<SocketAddr, NodeError> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| NodeError::Unsupported(format!("server.{id}: cannot resolve {what} address {host}:{port}")))
}

type PeerAddrs = BTreeMap<ServerId, SocketAddr>;

/// Every server's election and quorum addresses.
fn peer_addrs(cfg: &config::Config) -> Result<(PeerAddrs, PeerAddrs), NodeError> {
    let mut election = BTreeMap::new();
    let mut quorum = BTreeMap::new();
    for (id, spec) in &cfg.servers {
        election.insert(*id, resolve(&spec.host, spec.election_port, "election", *id)?);
        quorum.insert(*id, resolve(&spec.host, spec.quorum_port, "quorum", *id)?);
    }
    Ok((election, quorum))
}

/// A reconfig recovered from the log or a snapshot may name members the static config does
/// not (an observer let in later): the loop must be able to reach them too. Members the
/// reconfig removed stay reachable until the next reconfig; replication refuses them.
fn recovered_members(m: Option<&reconfig::Membership>, me: ServerId, election: &mut PeerAddrs, quorum: &mut PeerAddrs) {
    let Some(m) = m else { return };
    for member in m.members.values().filter(|x| x.id != me) {
        if election.contains_key(&member.id) {
            continue;
        }
        match (resolve(&member.host, member.election_port, "election", member.id), resolve(&member.host, member.quorum_port, "quorum", member.id)) {
            (Ok(e), Ok(q)) => {
                election.insert(member.id, e);
                quorum.insert(member.id, q);
            }
            (Err(e), _) | (_, Err(e)) => tracing::warn!(server = %member.id, error = %e, "a member from a reconfig cannot be resolved"),
        }
    }
}

/// The replication core: the ensemble's members, durable epochs, the log's tail.
fn replication_core(cfg: &config::Config, me: ServerId, last_logged: Zxid, members: &reconfig::Recovered) -> Result<Zab, NodeError> {
    let (accepted, current) = storage::read_epochs(&cfg.data_dir)?;
    // The in-memory history the core syncs followers from: the log's tail.
    let history = cfg.commit_log_count as usize;
    let recent = storage::recent_txns(&cfg.data_log_dir, Zxid::ZERO, history)?;
    let zab_cfg = ZabConfig {
        me,
        voters: members.committed.voters(),
        proposed: members.replayed.as_ref().map(crate::replica::replayed_config),
        observers: members.committed.observers(),
        tick_ms: cfg.tick_time_ms,
        init_limit: cfg.init_limit,
        sync_limit: cfg.sync_limit,
        finalize_wait_ms: 200,
        committed_log_max: history,
        planted: Default::default(),
    };
    let durable = DurableState { accepted_epoch: accepted, current_epoch: current, last_logged };
    tracing::info!(
        accepted_epoch = accepted,
        current_epoch = current,
        last_zxid = %last_logged,
        history_txns = recent.len(),
        voters = members.committed.voters().len(),
        "replication state loaded; looking for a leader"
    );
    Ok(Zab::new(zab_cfg, durable, recent, 0))
}

/// The last committed membership: the config file's (its dynamic file's, with its version),
/// or a newer one recorded beside it (`dynconfig::newest_committed`).
fn committed_membership(cfg: &config::Config) -> reconfig::Membership {
    let own = membership(cfg);
    match crate::dynconfig::newest_committed(std::path::Path::new(&cfg.file_name)) {
        Some(m) if m.version > own.version => {
            tracing::info!(version = %format_args!("{:x}", m.version), "a newer committed membership is recorded beside the config file; starting from it");
            m
        }
        _ => own,
    }
}

/// `/zookeeper/config` as ZooKeeper 3.8 shows it: one `server.N=` line per member, then the
/// config version (0 for the static config; a reconfig's zxid later).
fn membership(cfg: &config::Config) -> reconfig::Membership {
    let members = cfg
        .servers
        .iter()
        .map(|(id, s)| {
            let role = match s.role {
                config::Role::Participant => reconfig::Role::Participant,
                config::Role::Observer => reconfig::Role::Observer,
            };
            let member = reconfig::Member {
                id: *id,
                host: s.host.clone(),
                quorum_port: s.quorum_port,
                election_port: s.election_port,
                role,
                client: s.client_addr.map(|a| (a.ip().to_string(), a.port())),
            };
            (*id, member)
        })
        .collect();
    reconfig::Membership { members, version: cfg.config_version }
}

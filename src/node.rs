//! Wiring one server process together: config → recovered state → service → event loop.

use std::path::Path;

use crate::config;
use crate::proto::ServerId;
use crate::server::{EventLoop, LoopConfig};
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
    if !cfg.is_standalone() {
        return Err(NodeError::Unsupported(format!(
            "{}: {} server lines: replicated mode is not implemented yet; use a standalone config",
            cfg.file_name,
            cfg.servers.len()
        )));
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
    let mut storage = recovered.storage;
    let mut service = Service::new(svc_cfg, recovered.tree, recovered.sessions, 0);
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
    };
    let mut ev = EventLoop::new(loop_cfg, service, Box::new(storage), None)
        .map_err(|source| NodeError::Listen { addr: client_addr, source })?;
    eprintln!(
        "arbor {} node {id} serving clients on {} (standalone; txn log in {}, snapshots in {})",
        version_string(),
        ev.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        cfg.data_log_dir.display(),
        cfg.data_dir.display()
    );
    ev.run().map_err(NodeError::Loop)
}

//! The admin HTTP server, in the same event loop as everything else (ZooKeeper's
//! AdminServer: `admin.enableServer`, `admin.serverAddress`, `admin.serverPort`,
//! `admin.idleTimeout`).
//!
//! Routes (GET/HEAD only; anything else is 405):
//! - `/commands`, `/commands/<name>`: ZooKeeper 3.8's command JSON (`commands`).
//! - `/metrics`: Prometheus text exposition with ZooKeeper's metric names (`metrics`).
//! - `/`: the web console, assets compiled into the binary; `/api/status` and `/api/tree`
//!   are its JSON (`console`).
//!
//! An admin connection is one more entry in the loop's slab (`ConnRole::Admin`): its bytes
//! are read like any other, parsed by `http` once a whole request head is buffered
//! (at most `http::MAX_REQUEST_BYTES`), answered into its write buffer and closed after
//! the flush; the loop's ordinary nonblocking writes send it. At most
//! `MAX_ADMIN_CONNS` are open at once, and one idle for `admin.idleTimeout` is closed, so a
//! client that connects and never sends costs a slot for a while and nothing else. A
//! listener that cannot bind is logged and the server runs without it (as ZooKeeper does).

pub mod commands;
pub mod console;
pub mod http;
pub mod metrics;
pub mod observe;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use mio::net::TcpListener;
use mio::{Interest, Token};

use super::{Conn, ConnRole, EventLoop, ADMIN_LISTENER};
use crate::service::ClientId;
use http::{Method, Request, Response};

/// Admin connections open at once; more are refused (closed at accept).
const MAX_ADMIN_CONNS: usize = 64;
/// How often idle admin connections are looked for.
const SWEEP_MS: i64 = 500;

/// What the admin server knows about the process beyond the loop's own state (from the
/// config and recovery, given once by `node`).
#[derive(Clone, Debug, Default)]
pub struct AdminSettings {
    /// Where to listen; `None` = disabled.
    pub addr: Option<SocketAddr>,
    pub idle_timeout_ms: i64,
    /// The config file as read (`initial_configuration`).
    pub initial_config: String,
    /// Every `server.N` of the config (empty when standalone).
    pub servers: Vec<ServerView>,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// `/zookeeper/config` text: `server.N=` lines and `version=`.
    pub membership: Option<String>,
    pub startup: Option<StartupTimes>,
}

/// One `server.N` line, for `voting_view`, `conf` and the console.
#[derive(Clone, Debug)]
pub struct ServerView {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub client_addr: Option<SocketAddr>,
    pub participant: bool,
    /// Its admin port, when its admin server is enabled.
    pub admin_port: Option<u16>,
}

/// What recovery took at start (`startup_*` and `dbinittime`).
#[derive(Clone, Copy, Debug)]
pub struct StartupTimes {
    pub snap_load_ms: u64,
    pub txns_load_ms: u64,
    pub txns_loaded: u64,
    pub total_ms: u64,
}

/// The loop's admin side.
pub(super) struct AdminState {
    pub(super) listener: Option<TcpListener>,
    /// Open admin connections: slot → when accepted (loop ms).
    conns: BTreeMap<usize, i64>,
    next_sweep: i64,
    pub(super) observer: observe::Observer,
    pub(super) settings: AdminSettings,
    /// When the loop started (`uptime`).
    pub(super) started: Instant,
}

impl AdminState {
    /// Bind the listener if enabled. A failure to bind is reported and the server goes on
    /// without an admin port.
    pub(super) fn new(settings: AdminSettings, ensemble: bool, registry: &mio::Registry) -> AdminState {
        let now = Instant::now();
        let mut listener = None;
        if let Some(addr) = settings.addr {
            match TcpListener::bind(addr) {
                Ok(mut l) => match registry.register(&mut l, ADMIN_LISTENER, Interest::READABLE) {
                    Ok(()) => listener = Some(l),
                    Err(e) => tracing::warn!(%addr, error = %e, "admin server unavailable; running without it"),
                },
                Err(e) => tracing::warn!(%addr, error = %e, "cannot start the admin server; running without it"),
            }
        }
        let mut observer = observe::Observer::new(ensemble, now);
        if let Some(s) = settings.startup {
            let m = &mut observer.metrics;
            m.startup_snap_load_time.record(s.snap_load_ms * 1000);
            m.startup_txns_load_time.record(s.txns_load_ms * 1000);
            m.startup_txns_loaded.record(s.txns_loaded);
            m.dbinittime.record(s.total_ms * 1000);
        }
        AdminState { listener, conns: BTreeMap::new(), next_sweep: 0, observer, settings, started: now }
    }
}

impl EventLoop {
    /// The admin listener's address, if it is listening.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// `Mode:` / `server_state`: leader, follower, observer, read-only, looking or standalone.
    pub(super) fn mode_name(&self) -> String {
        if self.service().mode() == crate::service::Mode::ReadOnly {
            return "read-only".to_string();
        }
        match self.replica.zab() {
            Some(_) => self.replica.mode_name().to_string(),
            None => self.cfg.mode.clone(),
        }
    }

    /// Client connections (from another host, from this one): ZooKeeper's
    /// `non_mtls_remote_conn_count` / `non_mtls_local_conn_count` (arbor has no TLS).
    pub(super) fn conn_locality(&self) -> (u64, u64) {
        let (mut remote, mut local) = (0u64, 0u64);
        for (_, c) in self.service().clients() {
            match c.addr.parse::<SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => local += 1,
                _ => remote += 1,
            }
        }
        (remote, local)
    }

    /// Request latency as ZooKeeper's ServerStats shows it: (avg ms with its fraction,
    /// min ms, max ms).
    pub(super) fn latency_ms(&self) -> (f64, u64, u64) {
        let st = self.service().stats();
        let avg = if st.latency_count == 0 { 0.0 } else { st.latency_total_us as f64 / st.latency_count as f64 / 1000.0 };
        (avg, st.latency_min_us / 1000, st.latency_max_us / 1000)
    }

    /// The ensemble part of `conf`, as ZooKeeper's `QuorumZooKeeperServer.dumpConf` prints
    /// it (`membership:` then the `server.N` lines and `version=`).
    pub(super) fn quorum_conf(&self) -> Option<String> {
        let ens = self.ens.as_ref()?;
        let a = &self.admin.settings;
        let me = a.servers.iter().find(|s| s.id == ens.me.0)?;
        Some(format!(
            "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\npeerType={}\nmembership: \n{}",
            a.init_limit,
            a.sync_limit,
            me.election_port,
            me.quorum_port,
            if me.participant { 0 } else { 1 },
            a.membership.as_deref().unwrap_or_default()
        ))
    }

    pub(super) fn admin_accept(&mut self) {
        loop {
            let Some(listener) = self.admin.listener.as_ref() else { return };
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.admin.conns.len() >= MAX_ADMIN_CONNS {
                        tracing::warn!(%peer, open = MAX_ADMIN_CONNS, "admin connection refused: too many open");
                        continue;
                    }
                    let entry = self.conns.vacant_entry();
                    let slot = entry.key();
                    if let Err(e) = self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE) {
                        tracing::warn!(%peer, error = %e, "admin connection: register failed");
                        continue;
                    }
                    self.generation += 1;
                    entry.insert(Conn {
                        stream,
                        id: ClientId((self.generation << 32) | slot as u64),
                        peer,
                        read_buf: BytesMut::with_capacity(1024),
                        write_buf: BytesMut::new(),
                        first_frame: false,
                        closing: false,
                        paused: false,
                        throttled: false,
                        writable_registered: false,
                        role: ConnRole::Admin,
                        flushed: 0,
                        gate: Default::default(),
                        released: 0,
                        silent_until: None,
                        tls: None,
                    });
                    let now = self.now();
                    self.admin.conns.insert(slot, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    return;
                }
            }
        }
    }

    /// Bytes arrived on an admin connection: answer once a whole request head is here.
    /// `eof`: the peer closed its side (a request may still be complete).
    pub(super) fn admin_input(&mut self, slot: usize, eof: bool) {
        let Some(conn) = self.conns.get(slot) else { return };
        if conn.closing {
            return;
        }
        let (resp, head_only) = match http::parse(&conn.read_buf) {
            Ok(None) if eof || conn.read_buf.is_empty() => {
                if eof {
                    self.remove(slot);
                }
                return;
            }
            Ok(None) => return,
            Ok(Some(req)) => (self.admin_route(&req), req.method == Method::Head),
            Err(e) => (Response::error(e.status(), &e.to_string()), false),
        };
        let Some(conn) = self.conns.get_mut(slot) else { return };
        resp.write(head_only, &mut conn.write_buf);
        conn.read_buf.clear();
        conn.closing = true;
        self.dirty.push(slot);
    }

    fn admin_route(&self, req: &Request) -> Response {
        if req.method == Method::Other {
            return Response::error(405, "only GET and HEAD are served").header("Allow", "GET, HEAD");
        }
        let path = req.path.as_str();
        match path {
            "/" | "/index.html" => console::asset("index.html"),
            "/console.js" => console::asset("console.js"),
            "/console.css" => console::asset("console.css"),
            "/api/status" => console::status(self, req),
            "/api/tree" => console::tree(self, req),
            "/metrics" => Response::new(200, http::PROMETHEUS, metrics::prometheus(self)),
            "/commands" | "/commands/" => Response::new(200, http::HTML, commands::index()),
            _ => match path.strip_prefix("/commands/") {
                Some(name) => commands::run(self, name),
                None => Response::error(404, &format!("no such page: {path}")),
            },
        }
    }

    /// The admin connection at `slot` is gone.
    pub(super) fn admin_removed(&mut self, slot: usize) {
        self.admin.conns.remove(&slot);
    }

    /// Close admin connections idle past `admin.idleTimeout` (checked every `SWEEP_MS`).
    pub(super) fn admin_sweep(&mut self, now: i64) {
        if now < self.admin.next_sweep || self.admin.conns.is_empty() {
            return;
        }
        self.admin.next_sweep = now + SWEEP_MS;
        let limit = self.admin.settings.idle_timeout_ms;
        let idle: Vec<usize> = self.admin.conns.iter().filter(|(_, t)| now - **t >= limit).map(|(s, _)| *s).collect();
        for slot in idle {
            self.remove(slot);
        }
    }
}

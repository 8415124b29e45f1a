//! `arbor local [config]`: run every server of a config as child processes of one command on
//! this machine — the quickest way to a working ensemble.
//!
//! Starts `arbor node <id> <config>` for each `server.N` line (or the single node of a
//! standalone config), waits until the ensemble answers (a leader and everyone else following,
//! or `standalone`), prints the connect string and each server's mode, then supervises: a
//! child that dies is reported (exit status, the tail of its log) and restarted after a
//! second, at most `MAX_RESTARTS` times per server, while the others keep running — so a
//! newcomer can kill a leader and watch the failover; mode changes are printed as they
//! happen. Ctrl-C / SIGTERM stops every child by PID. Each child logs to `arbor.log` in its
//! dataDir through `--log-file`, so it rotates as a hand-started node's log does
//! (`logging::rolling`, the same defaults, `--log-max-size`/`--log-backups` passed on);
//! what a child writes outside its log (its errors again, a panic's message) goes to
//! `arbor.out` beside it, started afresh by each (re)start so it stays small.
//!
//! A server without a plain client port (`secureClientPort` and no `clientPort`) is checked
//! over TLS (`server::tls::probe`, with the config's own `ssl.keyStore`); its secure port is
//! what is reported and what the connect string lists.
//!
//! Without a config: `config/local-3.cfg` when run from the source tree, else the same file
//! built into the binary, written to the temp dir next to its data (`/tmp/arbor`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{self, Config};
use crate::logging::rolling::Rolling;
use crate::proto::ServerId;
use crate::server::tls::probe::Probe;
use crate::server::tls::TlsSetupError;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot check the TLS-only servers: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("cannot start server {id}: {source}")]
    Spawn { id: ServerId, source: std::io::Error },
    #[error("cannot create {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("the ensemble did not come up within {0:?}; see the logs above")]
    Timeout(Duration),
    #[error("server {id} (pid {pid}) exited unexpectedly ({status}); see {log}")]
    Died { id: ServerId, pid: u32, status: String, log: String },
    #[error("every server has stopped and none may be restarted any more; see their logs")]
    AllDown,
}

/// Restarts per server before `arbor local` gives up on it (the others keep running).
pub const MAX_RESTARTS: u32 = 3;
/// The default config, as shipped in the source tree.
pub const DEFAULT_CONFIG: &str = "config/local-3.cfg";
const BUILT_IN_CONFIG: &str = include_str!("../config/local-3.cfg");

/// `config/local-3.cfg` when it exists here; else the built-in copy, written to
/// `<tmp>/arbor/local-3.cfg` (where its dataDirs are).
pub fn default_config() -> Result<PathBuf, LocalError> {
    let here = Path::new(DEFAULT_CONFIG);
    if here.is_file() {
        return Ok(here.to_path_buf());
    }
    let dir = std::env::temp_dir().join("arbor");
    std::fs::create_dir_all(&dir).map_err(|source| LocalError::Dir { path: dir.clone(), source })?;
    let path = dir.join("local-3.cfg");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(BUILT_IN_CONFIG) {
        std::fs::write(&path, BUILT_IN_CONFIG).map_err(|source| LocalError::Dir { path: path.clone(), source })?;
    }
    Ok(path)
}

struct Member {
    id: ServerId,
    /// The port readiness checks use: the plain client port, else the secure one.
    client: SocketAddr,
    /// The TLS client port (`secureClientPort`), when there is one.
    secure: Option<SocketAddr>,
    /// `arbor.log`, written and rotated by the child itself.
    log: PathBuf,
    /// `arbor.out`: the child's stdout and stderr during its current run.
    out: PathBuf,
    child: Option<Child>,
}

/// Every server of one config running as children of this process. Used by `arbor local`
/// and `arbor demo`; children are only ever signalled by their own PID.
pub struct Ensemble {
    config_path: PathBuf,
    exe: PathBuf,
    members: Vec<Member>,
    /// For servers with only a secure client port.
    probe: Option<Probe>,
    /// How each child rotates its `arbor.log`.
    rolling: Rolling,
}

impl Ensemble {
    /// Starts `arbor node <id> <config>` for every server of the config (or the one node of
    /// a standalone config), each logging to `arbor.log` in its dataDir with the default
    /// rotation.
    pub fn start(config_path: &Path) -> Result<Ensemble, LocalError> {
        Ensemble::start_with(config_path, Rolling::default())
    }

    /// `start`, the children rotating their logs by `rolling`.
    pub fn start_with(config_path: &Path, rolling: Rolling) -> Result<Ensemble, LocalError> {
        let (probe, _) = config::load(config_path, None).or_else(|_| config::load(config_path, Some(ServerId(1))))?;
        let ids: Vec<ServerId> = if probe.servers.is_empty() { vec![ServerId(1)] } else { probe.servers.keys().copied().collect() };
        let exe = std::env::current_exe().map_err(|source| LocalError::Spawn { id: ids[0], source })?;
        let mut e = Ensemble { config_path: config_path.to_path_buf(), exe, members: Vec::new(), probe: None, rolling };
        for id in &ids {
            let (cfg, _): (Config, _) = config::load(config_path, Some(*id))?;
            let secure = cfg.secure_client_addr(*id).map(loopback_if_unspecified);
            let client = match (cfg.plain_client_addr(*id)?, secure) {
                (Some(plain), _) => loopback_if_unspecified(plain),
                (None, Some(tls)) => {
                    if e.probe.is_none() {
                        e.probe = Some(Probe::new(&cfg)?);
                    }
                    tls
                }
                (None, None) => loopback_if_unspecified(cfg.client_addr(*id)?),
            };
            std::fs::create_dir_all(&cfg.data_dir).map_err(|source| LocalError::Dir { path: cfg.data_dir.clone(), source })?;
            let (log, out) = (cfg.data_dir.join("arbor.log"), cfg.data_dir.join("arbor.out"));
            e.members.push(Member { id: *id, client, secure, log, out, child: None });
            if let Err(err) = e.spawn(*id) {
                e.stop_all();
                return Err(err);
            }
        }
        Ok(e)
    }

    fn member(&mut self, id: ServerId) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// (Re)starts server `id` (its log is appended to and rotated by the child; `arbor.out`
    /// starts afresh).
    pub fn spawn(&mut self, id: ServerId) -> Result<u32, LocalError> {
        let (exe, cfg, rolling) = (self.exe.clone(), self.config_path.clone(), self.rolling);
        let m = self.member(id).ok_or(LocalError::Spawn { id, source: std::io::Error::other("no such server") })?;
        let out = std::fs::File::create(&m.out).map_err(|source| LocalError::Dir { path: m.out.clone(), source })?;
        let err = out.try_clone().map_err(|source| LocalError::Dir { path: m.out.clone(), source })?;
        let child = Command::new(exe)
            .arg("node")
            .arg("--log-file")
            .arg(&m.log)
            .arg("--log-max-size")
            .arg(rolling.max_bytes.to_string())
            .arg("--log-backups")
            .arg(rolling.backups.to_string())
            .arg(id.0.to_string())
            .arg(cfg)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| LocalError::Spawn { id, source })?;
        let pid = child.id();
        m.child = Some(child);
        Ok(pid)
    }

    pub fn ids(&self) -> Vec<ServerId> {
        self.members.iter().map(|m| m.id).collect()
    }

    pub fn client_addr(&self, id: ServerId) -> Option<SocketAddr> {
        self.members.iter().find(|m| m.id == id).map(|m| m.client)
    }

    pub fn log_path(&self, id: ServerId) -> Option<PathBuf> {
        self.members.iter().find(|m| m.id == id).map(|m| m.log.clone())
    }

    /// Where server `id`'s stdout and stderr go (`arbor.out`).
    pub fn out_path(&self, id: ServerId) -> Option<PathBuf> {
        self.members.iter().find(|m| m.id == id).map(|m| m.out.clone())
    }

    pub fn pid(&self, id: ServerId) -> Option<u32> {
        self.members.iter().find(|m| m.id == id).and_then(|m| m.child.as_ref()).map(Child::id)
    }

    /// "h:p,h:p,…" in server order.
    pub fn connect_string(&self) -> String {
        self.members.iter().map(|m| m.client.to_string()).collect::<Vec<_>>().join(",")
    }

    /// Whether clients reach server `id` only over TLS.
    pub fn tls_only(&self, id: ServerId) -> bool {
        self.members.iter().any(|m| m.id == id && m.secure == Some(m.client))
    }

    /// Each server's `srvr` mode (None when it does not answer), in server order; over TLS
    /// for a server with only a secure client port.
    pub fn modes(&self) -> Vec<(ServerId, Option<String>)> {
        self.members
            .iter()
            .map(|m| {
                let mode = match (&m.child, &self.probe) {
                    (None, _) => None,
                    (Some(_), Some(p)) if m.secure == Some(m.client) => mode_in(&p.four_letter(m.client, "srvr")),
                    (Some(_), _) => mode_of(m.client),
                };
                (m.id, mode)
            })
            .collect()
    }

    /// The one leader, once every running server is leader, follower or observer (or the single node
    /// answers as standalone).
    pub fn ready_leader(&self) -> Option<ServerId> {
        let modes = self.modes();
        if modes.len() == 1 {
            return modes[0].1.as_ref().map(|_| modes[0].0);
        }
        let running: Vec<_> = modes.iter().filter(|(id, _)| self.pid(*id).is_some()).collect();
        let leaders: Vec<ServerId> = running.iter().filter(|(_, m)| m.as_deref() == Some("leader")).map(|(id, _)| *id).collect();
        let all_in = running.iter().all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower" | "observer")));
        (leaders.len() == 1 && all_in).then(|| leaders[0])
    }

    /// Waits (bounded) for `ready_leader`, failing early if a child dies.
    pub fn wait_ready(&mut self, limit: Duration) -> Result<ServerId, LocalError> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if let Some(l) = self.ready_leader() {
                return Ok(l);
            }
            if start.elapsed() > limit || STOP.load(Ordering::SeqCst) {
                return Err(LocalError::Timeout(limit));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL server `id` and reap it: a crash with no chance to flush anything.
    pub fn kill9(&mut self, id: ServerId) -> Option<u32> {
        let m = self.member(id)?;
        let mut c = m.child.take()?;
        let pid = c.id();
        // Child::kill sends SIGKILL to this child's own PID.
        let _ = c.kill();
        let _ = c.wait();
        Some(pid)
    }

    /// An error naming the first child that exited on its own.
    pub fn check_alive(&mut self) -> Result<(), LocalError> {
        for m in self.members.iter_mut() {
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(LocalError::Died { id: m.id, pid: c.id(), status: status.to_string(), log: m.log.display().to_string() });
                }
            }
        }
        Ok(())
    }

    /// Children that exited since the last call (reaped): (id, pid, exit status).
    pub fn take_exited(&mut self) -> Vec<(ServerId, u32, String)> {
        let mut out = Vec::new();
        for m in self.members.iter_mut() {
            let Some(c) = m.child.as_mut() else { continue };
            if let Ok(Some(status)) = c.try_wait() {
                out.push((m.id, c.id(), status.to_string()));
                m.child = None;
            }
        }
        out
    }

    /// SIGTERM every child by PID, SIGKILL what is left after 5 s.
    pub fn stop_all(&mut self) {
        for m in self.members.iter() {
            if let Some(c) = m.child.as_ref() {
                // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
                unsafe {
                    libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for m in self.members.iter_mut() {
            let Some(mut c) = m.child.take() else { continue };
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Ask a server a four-letter word; empty string when it does not answer.
pub fn four_letter(addr: SocketAddr, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The `Mode:` line of `srvr`, if the server answers.
pub fn mode_of(addr: SocketAddr) -> Option<String> {
    mode_in(&four_letter(addr, "srvr"))
}

fn mode_in(srvr: &str) -> Option<String> {
    srvr.lines().find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
}

fn loopback_if_unspecified(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), a.port())
    } else {
        a
    }
}

/// `arbor local [CONFIG]`; each server's log rotates by `rolling`.
pub fn run(config_path: Option<&Path>, rolling: Rolling) -> Result<(), LocalError> {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let config_path = match config_path {
        Some(p) => p.to_path_buf(),
        None => {
            let p = default_config()?;
            if p != Path::new(DEFAULT_CONFIG) {
                println!("using the built-in 3-server config (written to {})", p.display());
            }
            p
        }
    };
    let mut e = Ensemble::start_with(&config_path, rolling)?;
    for id in e.ids() {
        let m = e.members.iter().find(|m| m.id == id).map(|m| (m.client, m.secure, m.log.clone()));
        if let (Some(pid), Some((client, secure, log))) = (e.pid(id), m) {
            let ports = match secure {
                Some(s) if s == client => format!("secure client port {s} (TLS only)"),
                Some(s) => format!("client port {client}, secure client port {s}"),
                None => format!("client port {client}"),
            };
            println!("started server {id} (pid {pid}), {ports}, log {}", log.display());
        }
    }
    let result = supervise(&mut e);
    e.stop_all();
    if result.is_ok() {
        println!("stopped all servers");
    }
    result
}

/// The last `n` lines of a log file.
fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

/// Watching the ensemble after it is up: deaths, restarts, mode changes.
struct Supervisor {
    restarts: std::collections::BTreeMap<ServerId, u32>,
    /// Servers to restart, and when.
    pending: Vec<(ServerId, Instant)>,
    modes: Vec<(ServerId, Option<String>)>,
    next_modes: Instant,
}

impl Supervisor {
    fn on_exit(&mut self, e: &Ensemble, id: ServerId, pid: u32, status: &str) {
        println!("
server {id} (pid {pid}) exited ({status}); the other servers keep running. Its log ends:");
        if let Some(log) = e.log_path(id) {
            for l in log_tail(&log, 5) {
                println!("    {l}");
            }
        }
        // A panic's message is not in the log: the process wrote it to stderr.
        let out = e.out_path(id).map(|p| log_tail(&p, 5)).unwrap_or_default();
        if out.iter().any(|l| !l.trim().is_empty()) {
            println!("  and its output (arbor.out):");
            for l in out {
                println!("    {l}");
            }
        }
        let n = self.restarts.entry(id).or_insert(0);
        if *n < MAX_RESTARTS {
            *n += 1;
            println!("restarting server {id} in 1 s (restart {n} of {MAX_RESTARTS})");
            self.pending.push((id, Instant::now() + Duration::from_secs(1)));
        } else {
            println!("server {id} has been restarted {MAX_RESTARTS} times already; not restarting it again");
        }
    }

    fn restart_due(&mut self, e: &mut Ensemble) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(_, at)| *at <= now);
        self.pending = later;
        for (id, _) in due {
            match e.spawn(id) {
                Ok(pid) => println!("restarted server {id} (pid {pid})"),
                Err(err) => println!("cannot restart server {id}: {err}"),
            }
        }
    }

    /// Print each server whose `srvr` mode changed (polled once a second).
    fn report_modes(&mut self, e: &Ensemble) {
        if Instant::now() < self.next_modes {
            return;
        }
        self.next_modes = Instant::now() + Duration::from_secs(1);
        let modes = e.modes();
        for ((id, new), (_, old)) in modes.iter().zip(self.modes.iter()) {
            if new != old {
                let show = |m: &Option<String>| m.clone().unwrap_or_else(|| "down".into());
                println!("server {id}: {} -> {}", show(old), show(new));
            }
        }
        self.modes = modes;
    }
}

fn supervise(e: &mut Ensemble) -> Result<(), LocalError> {
    let start = Instant::now();
    match e.wait_ready(Duration::from_secs(60)) {
        Ok(_) => {}
        Err(LocalError::Timeout(_)) if STOP.load(Ordering::SeqCst) => return Ok(()),
        Err(err) => return Err(err),
    }
    let tls = if e.ids().iter().all(|id| e.tls_only(*id)) { " (TLS: clients need zookeeper.client.secure=true)" } else { "" };
    println!("\nensemble up in {:.1} s; connect string: {}{tls}", start.elapsed().as_secs_f64(), e.connect_string());
    let modes = e.modes();
    for (id, mode) in &modes {
        let addr = e.client_addr(*id).map(|a| a.to_string()).unwrap_or_default();
        println!("  server {id}: {} on {addr}", mode.as_deref().unwrap_or("?"));
    }
    println!("Ctrl-C stops every server. A server that dies is restarted (up to {MAX_RESTARTS} times).");
    let mut sup = Supervisor {
        restarts: Default::default(),
        pending: Vec::new(),
        modes,
        next_modes: Instant::now() + Duration::from_secs(1),
    };
    while !STOP.load(Ordering::SeqCst) {
        for (id, pid, status) in e.take_exited() {
            sup.on_exit(e, id, pid, &status);
        }
        sup.restart_due(e);
        if sup.pending.is_empty() && e.ids().iter().all(|id| e.pid(*id).is_none()) {
            return Err(LocalError::AllDown);
        }
        sup.report_modes(e);
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("\nstopping");
    Ok(())
}

//! `arbor local <config>`: run every server of a config as child processes of one command on
//! this machine — the quickest way to a working ensemble.
//!
//! Starts `arbor node <id> <config>` for each `server.N` line (or the single node of a
//! standalone config), waits until the ensemble answers (a leader and everyone else following,
//! or `standalone`), prints the connect string and each server's mode, then supervises: on
//! Ctrl-C / SIGTERM it stops every child by PID, and if one child dies unexpectedly it says
//! which, stops the rest and exits non-zero. Each child's output goes to `arbor.log` in its
//! dataDir.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{self, Config};
use crate::proto::ServerId;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot start server {id}: {source}")]
    Spawn { id: ServerId, source: std::io::Error },
    #[error("cannot create {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("the ensemble did not come up within {0:?}; see the logs above")]
    Timeout(Duration),
    #[error("server {id} (pid {pid}) exited unexpectedly ({status}); see {log}")]
    Died { id: ServerId, pid: u32, status: String, log: String },
}

struct Member {
    id: ServerId,
    client: SocketAddr,
    log: PathBuf,
    child: Child,
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
    four_letter(addr, "srvr").lines().find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
}

fn loopback_if_unspecified(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), a.port())
    } else {
        a
    }
}

fn stop_all(members: &mut [Member]) {
    for m in members.iter() {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        unsafe {
            libc::kill(m.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for m in members.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = m.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = m.child.try_wait() {
            let _ = m.child.kill();
            let _ = m.child.wait();
        }
    }
}

pub fn run(config_path: &Path) -> Result<(), LocalError> {
    let (probe, _) = config::load(config_path, None).or_else(|_| config::load(config_path, Some(ServerId(1))))?;
    let ids: Vec<ServerId> = if probe.servers.is_empty() { vec![ServerId(1)] } else { probe.servers.keys().copied().collect() };
    let exe = std::env::current_exe().map_err(|source| LocalError::Spawn { id: ids[0], source })?;
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let mut members = Vec::new();
    for id in &ids {
        let (cfg, _): (Config, _) = config::load(config_path, Some(*id))?;
        let client = loopback_if_unspecified(cfg.client_addr(*id)?);
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| LocalError::Dir { path: cfg.data_dir.clone(), source })?;
        let log = cfg.data_dir.join("arbor.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| LocalError::Dir { path: log.clone(), source })?;
        let err = file.try_clone().map_err(|source| LocalError::Dir { path: log.clone(), source })?;
        let child = Command::new(&exe)
            .arg("node")
            .arg(id.0.to_string())
            .arg(config_path)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|source| LocalError::Spawn { id: *id, source })?;
        println!("started server {id} (pid {}), client port {client}, log {}", child.id(), log.display());
        members.push(Member { id: *id, client, log, child });
    }
    let result = supervise(&mut members);
    stop_all(&mut members);
    if result.is_ok() {
        println!("stopped all servers");
    }
    result
}

fn check_alive(members: &mut [Member]) -> Result<(), LocalError> {
    for m in members.iter_mut() {
        if let Ok(Some(status)) = m.child.try_wait() {
            return Err(LocalError::Died { id: m.id, pid: m.child.id(), status: status.to_string(), log: m.log.display().to_string() });
        }
    }
    Ok(())
}

fn supervise(members: &mut [Member]) -> Result<(), LocalError> {
    let limit = Duration::from_secs(60);
    let start = Instant::now();
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        check_alive(members)?;
        let modes: Vec<Option<String>> = members.iter().map(|m| mode_of(m.client)).collect();
        let leaders = modes.iter().filter(|m| m.as_deref() == Some("leader")).count();
        let ready = if members.len() == 1 {
            modes[0].is_some()
        } else {
            leaders == 1 && modes.iter().all(|m| matches!(m.as_deref(), Some("leader") | Some("follower")))
        };
        if ready {
            let connect: Vec<String> = members.iter().map(|m| m.client.to_string()).collect();
            println!("\nensemble up in {:.1} s; connect string: {}", start.elapsed().as_secs_f64(), connect.join(","));
            for (m, mode) in members.iter().zip(&modes) {
                println!("  server {}: {} on {}", m.id, mode.as_deref().unwrap_or("?"), m.client);
            }
            println!("Ctrl-C stops every server.");
            break;
        }
        if start.elapsed() > limit {
            return Err(LocalError::Timeout(limit));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    while !STOP.load(Ordering::SeqCst) {
        check_alive(members)?;
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("\nstopping");
    Ok(())
}

//! An ensemble of real `arbor` processes on loopback, for integration tests.
//!
//! `Cluster::start(n, extra)` writes ONE zoo.cfg shared by all nodes (`dataDir=<tmp>/{id}`,
//! free ports for client, quorum and election), starts `arbor node <id> <cfg>` for each id,
//! and waits until exactly one reports `Mode: leader` and the others `follower`. Nodes are
//! signalled by their own PID only; dropping the cluster kills what is left (SIGCONT first,
//! so a SIGSTOPped node dies too).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{four_letter, free_port, signal, STOP_TIMEOUT};

pub struct Cluster {
    dir: tempfile::TempDir,
    pub cfg_path: PathBuf,
    clients: BTreeMap<u64, u16>,
    /// Admin HTTP ports, when started with `admin.enableServer=true`.
    admin_ports: BTreeMap<u64, u16>,
    children: BTreeMap<u64, Option<Child>>,
    /// Extra environment for every node (fault-injection knobs).
    env: Vec<(String, String)>,
    /// Servers that start from a config file of their own (`own_config`).
    own_cfg: BTreeMap<u64, PathBuf>,
}

impl Cluster {
    /// `extra`: more zoo.cfg lines (tickTime defaults to 200 here, for fast failovers).
    pub fn start(n: u64, extra: &[&str]) -> Cluster {
        Cluster::start_env(n, extra, &[])
    }

    /// `start` with extra environment variables for every node.
    pub fn start_env(n: u64, extra: &[&str], env: &[(&str, &str)]) -> Cluster {
        Cluster::start_roles(n, 0, extra, env)
    }

    /// `n` servers of which the last `observers` are observers (`server.N=…:observer`).
    pub fn start_roles(n: u64, observers: u64, extra: &[&str], env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::Builder::new().prefix("arbor-cluster-").tempdir().expect("temp dir");
        let mut cfg = String::from("# written by tests/common/cluster.rs\n");
        let has = |k: &str| extra.iter().any(|l| l.split_once('=').is_some_and(|(x, _)| x.trim() == k));
        if !has("tickTime") {
            cfg.push_str("tickTime=200\n");
        }
        for l in [
            "initLimit=10",
            "syncLimit=5",
            "maxClientCnxns=0",
            "4lw.commands.whitelist=*",
            "superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
        ] {
            if !has(l.split_once('=').map(|(k, _)| k).unwrap_or(l)) {
                cfg.push_str(l);
                cfg.push('\n');
            }
        }
        cfg.push_str(&format!("dataDir={}/{{id}}\n", dir.path().display()));
        // The admin server is off unless a test turns it on with `admin.enableServer=true`:
        // then each node gets its own free port on 127.0.0.1 (8080 would collide).
        let admin = extra.iter().any(|l| l.replace(' ', "") == "admin.enableServer=true");
        if admin {
            cfg.push_str("admin.serverAddress=127.0.0.1\n");
        } else if !extra.iter().any(|l| l.trim_start().starts_with("admin.")) {
            cfg.push_str("admin.enableServer=false\n");
        }
        let mut clients = BTreeMap::new();
        let mut admin_ports = BTreeMap::new();
        for id in 1..=n {
            let (c, q, e) = (free_port(), free_port(), free_port());
            let role = if id > n - observers { ":observer" } else { "" };
            cfg.push_str(&format!("server.{id}=127.0.0.1:{q}:{e}{role};127.0.0.1:{c}\n"));
            clients.insert(id, c);
            if admin {
                let a = free_port();
                cfg.push_str(&format!("admin.serverPort.{id}={a}\n"));
                admin_ports.insert(id, a);
            }
        }
        for l in extra {
            cfg.push_str(l);
            cfg.push('\n');
        }
        let cfg_path = dir.path().join("zoo.cfg");
        fs::write(&cfg_path, cfg).expect("write zoo.cfg");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut cl = Cluster { dir, cfg_path, clients, admin_ports, children: BTreeMap::new(), env, own_cfg: BTreeMap::new() };
        for id in 1..=n {
            cl.start_node(id);
        }
        cl.wait_leader(Duration::from_secs(30));
        cl
    }

    pub fn ids(&self) -> Vec<u64> {
        self.clients.keys().copied().collect()
    }

    pub fn addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.clients[&id])
    }

    /// Node `id`'s admin server, `127.0.0.1:port` (only with `admin.enableServer=true`).
    #[allow(dead_code)]
    pub fn admin_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.admin_ports[&id])
    }

    pub fn connect_string(&self) -> String {
        self.ids().iter().map(|i| self.addr(*i)).collect::<Vec<_>>().join(",")
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("arbor-{id}.log"))
    }

    pub fn log(&self, id: u64) -> String {
        fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(id.to_string())
    }

    /// Start (or restart, keeping its data) one node; does not wait.
    pub fn start_node(&mut self, id: u64) {
        let log = File::options().create(true).append(true).open(self.log_path(id)).expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_arbor"))
            .arg("node")
            .arg(id.to_string())
            .arg(self.own_cfg.get(&id).unwrap_or(&self.cfg_path))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn arbor");
        self.children.insert(id, Some(child));
    }

    pub fn is_running(&mut self, id: u64) -> bool {
        match self.children.get_mut(&id) {
            Some(Some(c)) => matches!(c.try_wait(), Ok(None)),
            _ => false,
        }
    }

    pub fn kill9(&mut self, id: u64) {
        if let Some(Some(mut c)) = self.children.insert(id, None) {
            signal(&c, libc::SIGKILL);
            let _ = c.wait();
        }
    }

    /// The PID of a running node.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.children.get(&id)?.as_ref().map(|c| c.id())
    }

    /// SIGTERM every running node at once, then wait for each (SIGKILL after
    /// `STOP_TIMEOUT`): a whole ensemble shut down the way an operator does it.
    pub fn stop_all(&mut self) {
        for c in self.children.values().flatten() {
            signal(c, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for c in self.children.values_mut() {
            let Some(mut child) = c.take() else { continue };
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() >= deadline {
                    eprintln!("arbor pid {} ignored SIGTERM for {STOP_TIMEOUT:?}; sending SIGKILL", child.id());
                    signal(&child, libc::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    pub fn sigstop(&self, id: u64) {
        if let Some(Some(c)) = self.children.get(&id) {
            signal(c, libc::SIGSTOP);
        }
    }

    pub fn sigcont(&self, id: u64) {
        if let Some(Some(c)) = self.children.get(&id) {
            signal(c, libc::SIGCONT);
        }
    }

    /// `Mode:` from srvr, None when the node does not answer.
    pub fn mode(&self, id: u64) -> Option<String> {
        let addr: SocketAddr = self.addr(id).parse().ok()?;
        let out = four_letter(&addr, "srvr").ok()?;
        out.lines().find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
    }

    /// Wait until exactly one of the running nodes leads and every other running node
    /// follows or observes; returns the leader's id. Panics with the logs after `timeout`.
    pub fn wait_leader(&mut self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<u64> = self.ids().into_iter().filter(|i| self.is_running(*i)).collect();
            let modes: Vec<(u64, Option<String>)> = running.iter().map(|i| (*i, self.mode(*i))).collect();
            let leaders: Vec<u64> = modes.iter().filter(|(_, m)| m.as_deref() == Some("leader")).map(|(i, _)| *i).collect();
            let all_in = modes.iter().all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower" | "observer")));
            if leaders.len() == 1 && all_in {
                return leaders[0];
            }
            if Instant::now() > deadline {
                let logs: String = self.ids().iter().map(|i| format!("--- server {i} ---\n{}\n", tail(&self.log(*i)))).collect();
                panic!("no settled leader within {timeout:?}: {modes:?}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new server `id` (an observer when `observer`), for a reconfig to let in: its
    /// `server.N=` line is appended to the shared zoo.cfg (nodes already running never read
    /// it again, so only `id` and later restarts see it); returns the line's value, the spec a
    /// reconfig `joining` takes. Start it with `start_node`.
    #[allow(dead_code)]
    pub fn add_server_line(&mut self, id: u64, observer: bool) -> String {
        let (c, q, e) = (free_port(), free_port(), free_port());
        let role = if observer { "observer" } else { "participant" };
        let spec = format!("127.0.0.1:{q}:{e}:{role};127.0.0.1:{c}");
        let mut cfg = fs::read_to_string(&self.cfg_path).expect("read zoo.cfg");
        cfg.push_str(&format!("server.{id}={spec}\n"));
        fs::write(&self.cfg_path, cfg).expect("write zoo.cfg");
        self.clients.insert(id, c);
        spec
    }

    /// From now on server `id` starts from its own copy of zoo.cfg as it is now (another
    /// machine's config file: a committed reconfig rewrites the shared one, not this copy).
    #[allow(dead_code)]
    pub fn own_config(&mut self, id: u64) -> PathBuf {
        let path = self.dir.path().join(format!("zoo-{id}.cfg"));
        fs::copy(&self.cfg_path, &path).expect("copy zoo.cfg");
        self.own_cfg.insert(id, path.clone());
        path
    }

    /// Take server `id`'s line out of the shared zoo.cfg again (after `add_server_line` and
    /// its start): nodes (re)started from now on know it only from a reconfig.
    #[allow(dead_code)]
    pub fn remove_server_line(&mut self, id: u64) {
        let cfg = fs::read_to_string(&self.cfg_path).expect("read zoo.cfg");
        let prefix = format!("server.{id}=");
        let kept: String = cfg.lines().filter(|l| !l.starts_with(&prefix)).map(|l| format!("{l}\n")).collect();
        fs::write(&self.cfg_path, kept).expect("write zoo.cfg");
    }

    /// Followers (running, answering `follower`).
    pub fn followers(&mut self) -> Vec<u64> {
        self.ids().into_iter().filter(|i| self.mode(*i).as_deref() == Some("follower")).collect()
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for (id, c) in self.children.iter_mut() {
            if let Some(mut c) = c.take() {
                signal(&c, libc::SIGCONT);
                signal(&c, libc::SIGKILL);
                let _ = c.wait();
            }
            if panicking {
                eprintln!("--- server {id} log (tail) ---\n{}", tail(&fs::read_to_string(self.dir.path().join(format!("arbor-{id}.log"))).unwrap_or_default()));
            }
        }
    }
}

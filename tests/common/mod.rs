//! Integration-test harness: runs the real `arbor` binary as a child process.
//!
//! `Node::start_standalone(&[..])` writes a zoo.cfg into a fresh temp dir (data inside it),
//! picks a free loopback port, starts `arbor node 1 <cfg>` with stdout and stderr going to
//! `<dir>/arbor.log`, and returns once `ruok` answers `imok` (at most 20 s; otherwise it panics
//! with the log). Processes are only ever signalled by their own PID. Dropping a `Node` kills
//! it; if the test is panicking, the tail of its log goes to stderr first.
//!
//! Use from a test file with `mod common;`. Each test binary uses a different subset, hence
//! the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a node gets to answer `ruok` after a (re)start.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `stop()` waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect / read / write timeout of the raw-socket helpers.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// `super:test`, the digest kazoo's suite logs in with.
pub const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

pub struct Node {
    child: Option<Child>,
    /// Holds the config, the data dir and the log; deleted on drop.
    dir: tempfile::TempDir,
    pub port: u16,
    pub cfg_path: PathBuf,
    pub log_path: PathBuf,
    pub data_dir: PathBuf,
}

impl Node {
    /// Start a standalone node. `extra_cfg_lines` are `key=value` lines appended to the
    /// config; a key given there replaces the harness default (tickTime=2000,
    /// 4lw.commands.whitelist=*, maxClientCnxns=0, superDigest=super:test, clientPort,
    /// clientPortAddress=127.0.0.1, dataDir=<tmp>/data).
    pub fn start_standalone(extra_cfg_lines: &[&str]) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("arbor-test-")
            .tempdir()
            .expect("create temp dir");
        let port = free_port();
        let data_dir = dir.path().join("data");
        let port_s = port.to_string();
        let data_s = data_dir.display().to_string();
        let defaults: [(&str, &str); 7] = [
            ("tickTime", "2000"),
            ("dataDir", &data_s),
            ("clientPort", &port_s),
            ("clientPortAddress", "127.0.0.1"),
            ("maxClientCnxns", "0"),
            ("4lw.commands.whitelist", "*"),
            ("superDigest", SUPER_DIGEST),
        ];
        let extra_keys: BTreeSet<&str> = extra_cfg_lines
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k.trim())
            .collect();
        let mut cfg = String::from("# written by tests/common/mod.rs\n");
        for (k, v) in defaults.iter().filter(|(k, _)| !extra_keys.contains(k)) {
            cfg.push_str(&format!("{k}={v}\n"));
        }
        for l in extra_cfg_lines {
            cfg.push_str(l);
            cfg.push('\n');
        }
        let cfg_path = dir.path().join("zoo.cfg");
        fs::write(&cfg_path, cfg).expect("write zoo.cfg");
        let log_path = dir.path().join("arbor.log");
        let mut node = Node {
            child: None,
            dir,
            port,
            cfg_path,
            log_path,
            data_dir,
        };
        node.spawn();
        node.wait_ready();
        node
    }

    /// "127.0.0.1:port", the client address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the child process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Send a four-letter word and return the whole answer (the server closes after it).
    /// Panics (with the log) if the node cannot be reached.
    pub fn four_letter(&self, word: &str) -> String {
        match four_letter(&self.socket_addr(), word) {
            Ok(s) => s,
            Err(e) => panic!("4lw {word} to {}: {e}\n{}", self.addr(), self.log_tail()),
        }
    }

    /// SIGKILL and reap: a crash with no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, libc::SIGKILL);
            let _ = c.wait();
        }
    }

    /// SIGTERM, wait up to `STOP_TIMEOUT`, then SIGKILL. Returns the exit status if the
    /// process ended on SIGTERM, None if it had to be killed (or was not running).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        signal(&c, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "arbor pid {} ignored SIGTERM for {STOP_TIMEOUT:?}; sending SIGKILL",
            c.id()
        );
        signal(&c, libc::SIGKILL);
        let _ = c.wait();
        None
    }

    /// Stop (SIGTERM) and start again on the same port with the same config and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready();
    }

    /// Start again after `kill9()`/`stop()` (same port, config and data).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "node is already running");
        self.spawn();
        self.wait_ready();
    }

    /// Everything the process wrote to stdout and stderr so far (across restarts).
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(200);
        format!(
            "---- {} (last {} lines) ----\n{}\n----",
            self.log_path.display(),
            lines.len() - start,
            lines[start..].join("\n")
        )
    }

    fn spawn(&mut self) {
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open log");
        let _ = writeln!(
            log,
            "==== harness: starting arbor node 1 {} ====",
            self.cfg_path.display()
        );
        let err = log.try_clone().expect("clone log fd");
        let child = Command::new(env!("CARGO_BIN_EXE_arbor"))
            .arg("node")
            .arg("1")
            .arg(&self.cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn arbor binary");
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "arbor exited during startup ({status})\n{}",
                    self.log_tail()
                );
            }
            match four_letter(&self.socket_addr(), "ruok") {
                Ok(s) if s == "imok" => return,
                Ok(s) => last = format!("ruok answered {s:?}"),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        panic!(
            "arbor did not answer ruok on {} within {START_TIMEOUT:?} (last: {last})\n{}",
            self.addr(),
            self.log_tail()
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        self.kill9();
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // By PID only, and only our own child; it is not reaped yet, so the PID is still ours.
    let pid = child.id() as libc::pid_t;
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A loopback port nobody in this test process has been given yet. Binding port 0 and
/// releasing it leaves a small race with other processes; the set rules out races between
/// tests of the same binary.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
    panic!("no free loopback port after 100 tries");
}

/// Send a four-letter word to `addr` and read the answer until the server closes.
pub fn four_letter(addr: &SocketAddr, word: &str) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A plain TCP connection for garbage tests, with `IO_TIMEOUT` on connect, read and write.
pub fn raw_connect(addr: &str) -> TcpStream {
    let sa: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("bad address {addr:?}: {e}"));
    let s = TcpStream::connect_timeout(&sa, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT))
        .expect("set read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("set write timeout");
    s.set_nodelay(true).expect("set nodelay");
    s
}

/// How a connection ended from the client's side.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server closed it (EOF or reset); the bytes it sent before that.
    Closed(Vec<u8>),
    /// Still open after the timeout; the bytes received meanwhile.
    StillOpen(Vec<u8>),
}

/// Read until the server closes the connection or `timeout` passes.
pub fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> Ending {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ending::StillOpen(got);
        }
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match s.read(&mut buf) {
            Ok(0) => return Ending::Closed(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ending::StillOpen(got)
            }
            Err(_) => return Ending::Closed(got), // reset counts as a close
        }
    }
}

/// Write bytes, then half-close our side (the server sees EOF after them).
pub fn send_and_shutdown(s: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes)?;
    s.shutdown(Shutdown::Write)
}

/// A complete, length-prefixed ConnectRequest for a new session (protocolVersion 0,
/// lastZxidSeen 0, sessionId 0, 16 zero password bytes, readOnly false).
pub fn connect_frame(timeout_ms: i32) -> Vec<u8> {
    let mut body = Vec::with_capacity(45);
    body.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    body.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    body.extend_from_slice(&timeout_ms.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    body.extend_from_slice(&16i32.to_be_bytes()); // passwd length
    body.extend_from_slice(&[0u8; 16]);
    body.push(0); // readOnly
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Write a config file into `dir` and return its path (for CLI tests with bad configs).
pub fn write_cfg(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    let mut f = File::create(&p).expect("create cfg");
    f.write_all(text.as_bytes()).expect("write cfg");
    p
}

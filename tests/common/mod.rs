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

pub mod cluster;

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
    /// Extra environment for the server process (fault-injection knobs).
    pub env: Vec<(String, String)>,
}

impl Node {
    /// Start a standalone node. `extra_cfg_lines` are `key=value` lines appended to the
    /// config; a key given there replaces the harness default (tickTime=2000,
    /// 4lw.commands.whitelist=*, maxClientCnxns=0, superDigest=super:test, clientPort,
    /// clientPortAddress=127.0.0.1, dataDir=<tmp>/data).
    pub fn start_standalone(extra_cfg_lines: &[&str]) -> Node {
        Node::start_standalone_env(extra_cfg_lines, &[])
    }

    /// `start_standalone` with extra environment variables for the server.
    pub fn start_standalone_env(extra_cfg_lines: &[&str], env: &[(&str, &str)]) -> Node {
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
        // The admin server is off unless the test sets an admin.* key (8080 would collide).
        if !extra_keys.iter().any(|k| k.starts_with("admin.")) {
            cfg.push_str("admin.enableServer=false\n");
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
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
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
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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

// ---------------------------------------------------------------------------------------
// Raw protocol client (arbor's own jute codec over a blocking TcpStream)
// ---------------------------------------------------------------------------------------

#[allow(unused_imports)]
pub use arbor::jute::{
    ConnectRequest, ConnectResponse, CreateKind, CreateRequest, MultiOp, MultiReadOp, MultiResult,
    ReplyHeader, Request, RequestHeader, Response, WatcherEvent,
};
#[allow(unused_imports)]
pub use arbor::proto::{Acl, Id, Stat};

/// Error codes as plain numbers (tests compare wire values).
pub mod err {
    pub const OK: i32 = 0;
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const SESSION_EXPIRED: i32 = -112;
    pub const INVALID_ACL: i32 = -114;
    pub const AUTH_FAILED: i32 = -115;
    pub const NO_WATCHER: i32 = -121;
}

/// One frame received from the server after the handshake.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// xid -1: a watch notification.
    Event(WatcherEvent),
    /// Any other xid: the header and the undecoded body.
    Reply(ReplyHeader, Vec<u8>),
}

/// A blocking, hand-driven ZooKeeper client: every request and reply is visible, in wire
/// order. Notifications read while waiting for a reply are kept in `events`, and `trace`
/// records every frame in arrival order (to check a notification precedes a reply).
pub struct RawClient {
    pub stream: TcpStream,
    pub resp: ConnectResponse,
    buf: bytes::BytesMut,
    next_xid: i32,
    pub events: Vec<WatcherEvent>,
    pub trace: Vec<Incoming>,
}

/// A ConnectRequest for a new session with the given timeout.
pub fn new_session_request(timeout_ms: i32) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms,
        session_id: 0,
        passwd: vec![0u8; 16],
        read_only: Some(false),
    }
}

/// Read one length-prefixed frame payload (blocking, with the stream's read timeout).
pub fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&n) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame length {n}")));
    }
    let mut body = vec![0u8; n as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Send a ConnectRequest on a fresh connection and read the ConnectResponse.
/// Returns the stream too (the server may close it after an expired-session reply).
pub fn raw_handshake(addr: &str, req: &ConnectRequest) -> io::Result<(TcpStream, ConnectResponse)> {
    let mut s = raw_connect(addr);
    let mut out = bytes::BytesMut::new();
    arbor::jute::encode_connect_request(&mut out, req);
    s.write_all(&out)?;
    let payload = read_frame(&mut s)?;
    let resp = arbor::jute::decode_connect_response(&payload)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    Ok((s, resp))
}

impl RawClient {
    /// A new session with `timeout_ms` requested.
    pub fn connect(addr: &str, timeout_ms: i32) -> RawClient {
        Self::connect_with(addr, &new_session_request(timeout_ms))
    }

    /// Handshake with an arbitrary ConnectRequest; panics unless a session was granted.
    pub fn connect_with(addr: &str, req: &ConnectRequest) -> RawClient {
        let (stream, resp) = raw_handshake(addr, req).unwrap_or_else(|e| panic!("handshake with {addr}: {e}"));
        assert_ne!(resp.session_id, 0, "server refused the session: {resp:?}");
        RawClient { stream, resp, buf: bytes::BytesMut::new(), next_xid: 1, events: Vec::new(), trace: Vec::new() }
    }

    pub fn session_id(&self) -> i64 {
        self.resp.session_id
    }

    /// A ConnectRequest that resumes this session (same id and password).
    pub fn resume_request(&self, last_zxid_seen: i64) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen,
            timeout_ms: self.resp.timeout_ms,
            session_id: self.resp.session_id,
            passwd: self.resp.passwd.clone(),
            read_only: Some(false),
        }
    }

    /// Encode and send `req` with a fresh xid (or the special xid it needs); returns the xid.
    pub fn send(&mut self, req: &Request) -> i32 {
        let xid = match req {
            Request::Ping => -2,
            Request::Auth { .. } => -4,
            Request::SetWatches { .. } => -8,
            _ => {
                let x = self.next_xid;
                self.next_xid += 1;
                x
            }
        };
        self.send_with_xid(xid, req);
        xid
    }

    pub fn send_with_xid(&mut self, xid: i32, req: &Request) {
        let mut out = bytes::BytesMut::new();
        arbor::jute::encode_request(&mut out, RequestHeader { xid, op: req.opcode() }, req);
        self.stream.write_all(&out).expect("write request");
    }

    /// Send raw bytes (a whole frame, prefix included, or garbage).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Next frame from the server, decoded into an event or a reply; records it in `trace`.
    pub fn next_incoming(&mut self) -> io::Result<Incoming> {
        let payload = read_frame(&mut self.stream)?;
        let (h, body) = arbor::jute::decode_reply_header(&payload)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let inc = if h.xid == -1 {
            let ev = arbor::jute::decode_watcher_event(body)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.events.push(ev.clone());
            Incoming::Event(ev)
        } else {
            Incoming::Reply(h, body.to_vec())
        };
        self.trace.push(inc.clone());
        Ok(inc)
    }

    /// Read until the reply with `xid` arrives (events go to `events`).
    pub fn wait_reply(&mut self, xid: i32) -> io::Result<(ReplyHeader, Vec<u8>)> {
        loop {
            match self.next_incoming()? {
                Incoming::Reply(h, body) if h.xid == xid => return Ok((h, body)),
                Incoming::Reply(h, _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("reply out of order: got xid {} while waiting for {xid}", h.xid),
                    ))
                }
                Incoming::Event(_) => {}
            }
        }
    }

    /// Send and wait: `Ok(response)` when err == 0, else `Err(code)`.
    pub fn call(&mut self, req: &Request) -> Result<Response, i32> {
        let (h, r) = self.call_full(req);
        if h.err == 0 {
            Ok(r.expect("body"))
        } else {
            Err(h.err)
        }
    }

    /// Send and wait; the header plus the decoded body when err == 0.
    pub fn call_full(&mut self, req: &Request) -> (ReplyHeader, Option<Response>) {
        let op = req.opcode();
        let xid = self.send(req);
        let (h, body) = self.wait_reply(xid).unwrap_or_else(|e| panic!("waiting for reply to op {op}: {e}"));
        if h.err != 0 {
            return (h, None);
        }
        let r = arbor::jute::decode_response(op, &body).unwrap_or_else(|e| panic!("decode reply to op {op}: {e}"));
        (h, Some(r))
    }

    /// Wait up to `timeout` for a notification (returns ones already buffered first).
    pub fn wait_event(&mut self, timeout: Duration) -> Option<WatcherEvent> {
        if !self.events.is_empty() {
            return Some(self.events.remove(0));
        }
        let _ = self.stream.set_read_timeout(Some(timeout));
        let r = match self.next_incoming() {
            Ok(Incoming::Event(_)) => Some(self.events.remove(0)),
            Ok(Incoming::Reply(h, _)) => panic!("unexpected reply {h:?} while waiting for an event"),
            Err(_) => None,
        };
        let _ = self.stream.set_read_timeout(Some(IO_TIMEOUT));
        r
    }

    /// True if the server closes the connection within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        matches!(read_until_closed(&mut self.stream, timeout), Ending::Closed(_))
    }

    // Convenience wrappers for the common ops.

    pub fn create(&mut self, path: &str, data: Option<&[u8]>, flags: i32) -> Result<Response, i32> {
        self.call(&Request::Create(create_req(CreateKind::Create2, path, data, Acl::open_unsafe(), flags)))
    }

    pub fn get_data(&mut self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat), i32> {
        match self.call(&Request::GetData { path: path.into(), watch })? {
            Response::GetData { data, stat } => Ok((data, stat)),
            r => panic!("unexpected {r:?}"),
        }
    }

    pub fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, i32> {
        match self.call(&Request::Exists { path: path.into(), watch })? {
            Response::Stat(s) => Ok(s),
            r => panic!("unexpected {r:?}"),
        }
    }

    pub fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, i32> {
        match self.call(&Request::SetData { path: path.into(), data: Some(data.to_vec()), version })? {
            Response::Stat(s) => Ok(s),
            r => panic!("unexpected {r:?}"),
        }
    }

    pub fn delete(&mut self, path: &str, version: i32) -> Result<(), i32> {
        self.call(&Request::Delete { path: path.into(), version }).map(|_| ())
    }

    pub fn close_session(&mut self) -> ReplyHeader {
        self.call_full(&Request::CloseSession).0
    }
}

/// A create request body.
/// A reconfig request (op 16), incremental when `new_members` is None.
#[allow(dead_code)]
pub fn reconfig_req(joining: Option<&str>, leaving: Option<&str>, new_members: Option<&str>, cur_config_id: i64) -> Request {
    Request::Reconfig {
        joining: joining.map(str::to_string),
        leaving: leaving.map(str::to_string),
        new_members: new_members.map(str::to_string),
        cur_config_id,
    }
}

pub fn create_req(kind: CreateKind, path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32) -> CreateRequest {
    CreateRequest { kind, path: path.into(), data: data.map(<[u8]>::to_vec), acl, flags, ttl_ms: -1 }
}

/// Poll `f` every 20 ms until it returns Some, or panic after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server a protocol test talks to: a fresh standalone arbor or, when the environment
/// variable `ARBOR_TEST_ZK=host:port` names a running ZooKeeper 3.8, that server (to check the
/// tests' expectations against the reference; tests needing arbor's log or config skip then).
/// Tests keep their znodes under their own top-level path so a shared server works.
pub struct Server {
    pub node: Option<Node>,
    addr: String,
}

impl Server {
    pub fn start(extra_cfg_lines: &[&str]) -> Server {
        match std::env::var("ARBOR_TEST_ZK") {
            Ok(a) if !a.is_empty() => Server { node: None, addr: a },
            _ => {
                let node = Node::start_standalone(extra_cfg_lines);
                let addr = node.addr();
                Server { node: Some(node), addr }
            }
        }
    }

    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    pub fn is_arbor(&self) -> bool {
        self.node.is_some()
    }

    pub fn four_letter(&self, word: &str) -> String {
        let sa: SocketAddr = self.addr.parse().expect("addr");
        four_letter(&sa, word).unwrap_or_else(|e| panic!("4lw {word}: {e}"))
    }

    /// A raw client with a new session (30 s requested).
    pub fn raw(&self) -> RawClient {
        RawClient::connect(&self.addr, 30_000)
    }

    /// A `zookeeper-client` session.
    pub async fn client(&self) -> zookeeper_client::Client {
        zookeeper_client::Client::connector()
            .session_timeout(Duration::from_secs(30))
            .connect(&self.addr)
            .await
            .unwrap_or_else(|e| panic!("zookeeper-client connect to {}: {e}", self.addr))
    }
}

/// A unique top-level test root, e.g. "/crud_sequential_4821" (unique across runs, so tests can
/// share an external ZooKeeper).
pub fn test_root(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("/{name}_{}_{nanos}", std::process::id())
}

/// An HTTP/1.1 GET (or any raw request text) to `addr`, read until the server closes:
/// (status, head, body). Panics if the server does not answer within `IO_TIMEOUT`.
pub fn http_raw(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    // The server may answer and close before reading everything (a refused oversized head).
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no HTTP status from {addr}: {text:?}"));
    (status, head.to_string(), body.to_string())
}

/// GET `path` from the admin server at `addr`.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes());
    (status, body)
}

/// GET `path` and parse the JSON body (asserting status 200).
pub fn http_json(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// The jars of Debian's `zookeeper` package (ZooKeeper 3.8) the Java helpers in tests/java
/// compile and run against.
pub const ZK_JARS: [&str; 3] = ["/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar", "/usr/share/java/slf4j-api.jar"];

/// Compiles tests/java/`file` against `ZK_JARS` into a temp dir and returns it with the
/// classpath to run it by; None (after printing `SKIP test: why`) when javac or a jar is
/// missing. CI sets ARBOR_REQUIRE_JAVA: there a missing toolchain fails the test instead.
pub fn compile_java(test: &str, file: &str) -> Option<(tempfile::TempDir, String)> {
    let required = std::env::var_os("ARBOR_REQUIRE_JAVA").is_some();
    if let Some(j) = ZK_JARS.iter().find(|j| !Path::new(j).exists()) {
        assert!(!required, "{test}: {j} not found (apt-get install zookeeper)");
        eprintln!("SKIP {test}: {j} not found (apt-get install zookeeper)");
        return None;
    }
    if Command::new("javac").arg("-version").output().is_err() {
        assert!(!required, "{test}: javac not found (apt-get install default-jdk-headless)");
        eprintln!("SKIP {test}: javac not found");
        return None;
    }
    let classes = tempfile::Builder::new().prefix("arbor-java-").tempdir().expect("temp dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java").join(file);
    let out = Command::new("javac").arg("-cp").arg(ZK_JARS.join(":")).arg("-d").arg(classes.path()).arg(&src).output().expect("run javac");
    assert!(out.status.success(), "javac {file} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let cp = format!("{}:{}", classes.path().display(), ZK_JARS.join(":"));
    Some((classes, cp))
}

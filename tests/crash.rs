//! Durability against the real binary: SIGKILL under load (every acknowledged write survives,
//! no unacknowledged write appears twice), sessions surviving a restart, and a full disk
//! (writes refused with an error, reads served, nothing acknowledged lost).
//!
//! The client is a minimal blocking one built on `arbor::jute` over std `TcpStream`: one
//! request in flight per connection, so "acknowledged" is exact.

mod common;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::{Rng, SeedableRng};

use arbor::jute::{self, ConnectRequest, CreateKind, CreateRequest, Request, RequestHeader, Response};
use arbor::proto::{Acl, Stat};
use common::Node;

const OP_CREATE: i32 = 1;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_GET_CHILDREN: i32 = 8;
const FLAG_EPHEMERAL: i32 = 1;
const FLAG_SEQUENTIAL: i32 = 2;

struct Client {
    s: TcpStream,
    buf: BytesMut,
    xid: i32,
    session: i64,
    passwd: Vec<u8>,
    last_zxid: i64,
}

/// `Err(code)` for a non-zero reply error code.
type Reply = Result<Response, i32>;

impl Client {
    fn connect(addr: SocketAddr, timeout_ms: i32, resume: Option<(i64, Vec<u8>)>, last_zxid_seen: i64) -> io::Result<Client> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        let (session, passwd) = resume.unwrap_or((0, vec![0; 16]));
        let mut c = Client { s, buf: BytesMut::new(), xid: 0, session, passwd: passwd.clone(), last_zxid: last_zxid_seen };
        let mut out = BytesMut::new();
        let req = ConnectRequest { protocol_version: 0, last_zxid_seen, timeout_ms, session_id: session, passwd, read_only: Some(false) };
        jute::encode_connect_request(&mut out, &req);
        c.s.write_all(&out)?;
        let frame = c.frame()?;
        let resp = jute::decode_connect_response(&frame).map_err(|e| io::Error::other(e.to_string()))?;
        if resp.timeout_ms <= 0 || resp.session_id == 0 {
            return Err(io::Error::other("session refused (expired or unknown)"));
        }
        c.session = resp.session_id;
        c.passwd = resp.passwd;
        Ok(c)
    }

    fn frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match jute::next_frame(&mut self.buf, 16 << 20) {
                Ok(Some(f)) => return Ok(f.to_vec()),
                Ok(None) => {}
                Err(e) => return Err(io::Error::other(format!("{e:?}"))),
            }
            let mut tmp = [0u8; 64 << 10];
            let n = self.s.read(&mut tmp)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    fn call(&mut self, op: i32, req: &Request) -> io::Result<Reply> {
        self.xid += 1;
        let mut out = BytesMut::new();
        jute::encode_request(&mut out, RequestHeader { xid: self.xid, op }, req);
        self.s.write_all(&out)?;
        loop {
            let frame = self.frame()?;
            let (h, body) = jute::decode_reply_header(&frame).map_err(|e| io::Error::other(e.to_string()))?;
            if h.xid == jute::xid::NOTIFICATION {
                continue;
            }
            assert_eq!(h.xid, self.xid, "replies come in order");
            if h.zxid > 0 {
                assert!(h.zxid >= self.last_zxid, "zxid went backwards: {:#x} after {:#x}", h.zxid, self.last_zxid);
                self.last_zxid = h.zxid;
            }
            if h.err != 0 {
                return Ok(Err(h.err));
            }
            return jute::decode_response(op, body).map(Ok).map_err(|e| io::Error::other(e.to_string()));
        }
    }

    fn create(&mut self, path: &str, data: &[u8], flags: i32) -> io::Result<Result<String, i32>> {
        let req = Request::Create(CreateRequest {
            kind: CreateKind::Create,
            path: path.into(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            flags,
            ttl_ms: -1,
        });
        Ok(self.call(OP_CREATE, &req)?.map(|r| match r {
            Response::Create { path } => path,
            other => panic!("create answered {other:?}"),
        }))
    }

    fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> io::Result<Result<Stat, i32>> {
        let req = Request::SetData { path: path.into(), data: Some(data.to_vec()), version };
        Ok(self.call(OP_SET_DATA, &req)?.map(|r| match r {
            Response::Stat(s) => s,
            other => panic!("setData answered {other:?}"),
        }))
    }

    fn get_data(&mut self, path: &str) -> io::Result<Result<(Vec<u8>, Stat), i32>> {
        let req = Request::GetData { path: path.into(), watch: false };
        Ok(self.call(OP_GET_DATA, &req)?.map(|r| match r {
            Response::GetData { data, stat } => (data.unwrap_or_default(), stat),
            other => panic!("getData answered {other:?}"),
        }))
    }

    fn children(&mut self, path: &str) -> io::Result<Result<Vec<String>, i32>> {
        let req = Request::GetChildren { path: path.into(), watch: false };
        Ok(self.call(OP_GET_CHILDREN, &req)?.map(|r| match r {
            Response::GetChildren { children } => children,
            other => panic!("getChildren answered {other:?}"),
        }))
    }
}

/// What one writer knows for sure (acknowledged) and what it had in flight when the
/// server died.
#[derive(Default, Clone, Debug)]
struct Model {
    /// Sequential child name → token, for acknowledged creates.
    created: BTreeMap<String, String>,
    /// Acknowledged (data, version) of the worker's counter node.
    counter: (Vec<u8>, i32),
    in_flight: Option<Pending>,
    next_token: u64,
}

#[derive(Clone, Debug)]
enum Pending {
    Create { token: String },
    Set { data: Vec<u8>, version: i32 },
}

/// Runs one worker until the connection breaks; returns its model.
fn worker(addr: SocketAddr, t: usize, mut m: Model, last_zxid: i64, stop: Arc<AtomicBool>) -> (Model, i64) {
    let Ok(mut c) = Client::connect(addr, 10_000, None, last_zxid) else { return (m, last_zxid) };
    let dir = format!("/w{t}");
    while !stop.load(Ordering::Relaxed) {
        m.next_token += 1;
        let token = format!("t{t}-{}", m.next_token);
        if m.next_token.is_multiple_of(2) {
            m.in_flight = Some(Pending::Create { token: token.clone() });
            match c.create(&format!("{dir}/s-"), token.as_bytes(), FLAG_SEQUENTIAL) {
                Ok(Ok(path)) => {
                    let name = path.rsplit('/').next().unwrap_or("").to_string();
                    m.created.insert(name, token);
                    m.in_flight = None;
                }
                Ok(Err(code)) => panic!("create failed with {code}"),
                Err(_) => break,
            }
        } else {
            let data = token.into_bytes();
            let version = m.counter.1;
            m.in_flight = Some(Pending::Set { data: data.clone(), version: version + 1 });
            match c.set_data(&format!("{dir}/counter"), &data, version) {
                Ok(Ok(stat)) => {
                    assert_eq!(stat.version, version + 1);
                    m.counter = (data, stat.version);
                    m.in_flight = None;
                }
                Ok(Err(code)) => panic!("setData failed with {code} (expected version {version})"),
                Err(_) => break,
            }
        }
    }
    let z = c.last_zxid;
    (m, z)
}

/// Check the server against the model; fold the in-flight outcome into it.
fn verify(c: &mut Client, t: usize, m: &mut Model) {
    let dir = format!("/w{t}");
    let kids = c.children(&dir).expect("io").expect("children");
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for k in kids.iter().filter(|k| k.starts_with("s-")) {
        let (data, stat) = c.get_data(&format!("{dir}/{k}")).expect("io").expect("getData");
        assert_eq!(stat.version, 0);
        let token = String::from_utf8(data).expect("utf8");
        if let Some(prev) = seen.values().find(|v| **v == token) {
            panic!("token {token} appears twice ({prev})");
        }
        seen.insert(k.clone(), token);
    }
    for (name, token) in &m.created {
        assert_eq!(seen.get(name), Some(token), "acknowledged create {dir}/{name} lost or changed");
    }
    for (name, token) in &seen {
        if !m.created.contains_key(name) {
            match &m.in_flight {
                Some(Pending::Create { token: t2 }) if t2 == token => {}
                other => panic!("unacknowledged {dir}/{name}={token} appeared (in flight: {other:?})"),
            }
        }
    }
    m.created = seen;
    let (data, stat) = c.get_data(&format!("{dir}/counter")).expect("io").expect("counter");
    let ok_acked = (data.clone(), stat.version) == m.counter;
    let ok_flight = matches!(&m.in_flight, Some(Pending::Set { data: d, version: v }) if *d == data && *v == stat.version);
    assert!(ok_acked || ok_flight, "counter of w{t}: server has v{} {:?}, acked v{} {:?}, in flight {:?}",
        stat.version, String::from_utf8_lossy(&data), m.counter.1, String::from_utf8_lossy(&m.counter.0), m.in_flight);
    m.counter = (data, stat.version);
    m.in_flight = None;
}

#[test]
fn sigkill_under_load_keeps_every_acknowledged_write() {
    const WORKERS: usize = 4;
    const KILLS: usize = 22;
    // Small snapCount and segments so snapshots, rolls and purges happen between kills.
    let mut node = Node::start_standalone(&["snapCount=500", "preAllocSize=128", "autopurge.purgeInterval=1"]);
    let addr = node.socket_addr();
    let mut setup = Client::connect(addr, 10_000, None, 0).expect("connect");
    for t in 0..WORKERS {
        setup.create(&format!("/w{t}"), b"", 0).expect("io").expect("create dir");
        setup.create(&format!("/w{t}/counter"), b"", 0).expect("io").expect("create counter");
    }
    let mut last_zxid = setup.last_zxid;
    drop(setup);
    let mut models: Vec<Model> = vec![Model::default(); WORKERS];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xA5B0);
    let started = Instant::now();
    let mut acked_total = 0usize;
    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..WORKERS)
            .map(|t| {
                let m = models[t].clone();
                let stop = stop.clone();
                std::thread::spawn(move || worker(addr, t, m, last_zxid, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        for (t, h) in handles.into_iter().enumerate() {
            let (m, z) = h.join().expect("worker");
            models[t] = m;
            last_zxid = last_zxid.max(z);
        }
        node.start_again();
        // lastZxidSeen = the highest zxid any client saw: the server refuses us if it went back.
        let mut c = Client::connect(addr, 10_000, None, last_zxid)
            .unwrap_or_else(|e| panic!("round {round}: reconnect with lastZxidSeen {last_zxid:#x}: {e}"));
        for (t, m) in models.iter_mut().enumerate() {
            verify(&mut c, t, m);
        }
        last_zxid = last_zxid.max(c.last_zxid);
        acked_total = models.iter().map(|m| m.created.len()).sum();
    }
    let log = node.log();
    assert!(log.contains("snapshot") && log.contains("done"), "snapshots should have been taken:\n{log}");
    eprintln!("{KILLS} SIGKILLs, {acked_total} sequential creates verified, in {:?}", started.elapsed());
}

#[test]
fn sessions_and_ephemerals_survive_a_restart_and_zxids_keep_growing() {
    let mut node = Node::start_standalone(&[]);
    let addr = node.socket_addr();
    let mut c = Client::connect(addr, 30_000, None, 0).expect("connect");
    c.create("/eph", b"mine", FLAG_EPHEMERAL).expect("io").expect("create ephemeral");
    c.create("/p", b"persistent", 0).expect("io").expect("create");
    let (session, passwd, zxid) = (c.session, c.passwd.clone(), c.last_zxid);
    drop(c);
    node.kill9();
    node.start_again();
    let mut c = Client::connect(addr, 30_000, Some((session, passwd)), zxid).expect("resume the session after restart");
    assert_eq!(c.session, session);
    let (data, stat) = c.get_data("/eph").expect("io").expect("ephemeral still there");
    assert_eq!((data.as_slice(), stat.ephemeral_owner), (&b"mine"[..], session));
    c.create("/after", b"", 0).expect("io").expect("create after restart");
    assert!(c.last_zxid > zxid, "zxid {:#x} must be above {zxid:#x}", c.last_zxid);
    // A graceful restart too.
    let z2 = c.last_zxid;
    drop(c);
    node.restart();
    let mut c = Client::connect(addr, 30_000, None, z2).expect("connect after restart");
    c.create("/after2", b"", 0).expect("io").expect("create");
    assert!(c.last_zxid > z2);
    assert!(c.get_data("/eph").expect("io").is_ok());
}

// ---- disk full ------------------------------------------------------------------------

/// A tmpfs mounted for the test; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { dir })
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn full_disk_refuses_writes_serves_reads_and_loses_nothing() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIP full_disk_refuses_writes_serves_reads_and_loses_nothing: {why}");
            eprintln!("SKIP full_disk_refuses_writes_serves_reads_and_loses_nothing: {why}");
            return;
        }
    };
    let data_dir: PathBuf = fs.path().join("data");
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 1 << 20]).expect("ballast");
    let dd = format!("dataDir={}", data_dir.display());
    let mut node = Node::start_standalone(&[&dd, "preAllocSize=256", "snapCount=100000"]);
    let addr = node.socket_addr();
    let mut c = Client::connect(addr, 30_000, None, 0).expect("connect");
    let payload = vec![7u8; 8 << 10];
    let mut acked = Vec::new();
    let refused = loop {
        let path = format!("/f{}", acked.len());
        match c.create(&path, &payload, 0).expect("the server must answer, not hang or drop us") {
            Ok(p) => acked.push(p),
            Err(code) => break code,
        }
        assert!(acked.len() < 2000, "4 MiB should fill up long before 16 MiB of writes");
    };
    assert_eq!(refused, -1, "writes on a full disk get SystemError");
    assert!(acked.len() > 50, "only {} writes before the disk was full", acked.len());
    assert!(node.is_running());
    // Reads still work, on this connection and on a resumed session.
    let (data, _) = c.get_data(&acked[0]).expect("io").expect("read while disk is full");
    assert_eq!(data, payload);
    assert!(node.log().contains("REFUSING WRITES"), "the log says why");
    // Free space: writes resume (the space check retries every 5 s).
    std::fs::remove_file(&ballast).expect("rm ballast");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match c.create("/after-space", b"", 0).expect("io") {
            Ok(_) => break,
            Err(-1) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(250)),
            Err(code) => panic!("writes did not resume after space was freed: {code}"),
        }
    }
    drop(c);
    node.kill9();
    node.start_again();
    let mut c = Client::connect(addr, 30_000, None, 0).expect("connect after restart");
    for p in &acked {
        let (data, _) = c.get_data(p).expect("io").unwrap_or_else(|e| panic!("acknowledged {p} lost: {e}"));
        assert_eq!(data, payload);
    }
    drop(c);
    node.kill9();
}

//! `arbor local`: a server that dies is reported and restarted while the others keep
//! serving, up to a bound; Ctrl-C/SIGTERM stops everything; without a config it finds
//! (or carries) its default wherever it is run from.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{four_letter, free_port};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");

struct Local {
    child: Child,
    out: std::path::PathBuf,
}

impl Local {
    fn start(args: &[&str], cwd: &Path, out: std::path::PathBuf) -> Local {
        let f = fs::File::create(&out).expect("out");
        let child = Command::new(ARBOR)
            .arg("local")
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup"))
            .stderr(f)
            .spawn()
            .expect("spawn arbor local");
        Local { child, out }
    }

    fn output(&self) -> String {
        let mut s = String::new();
        let _ = fs::File::open(&self.out).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    fn wait_for(&mut self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.output();
            if out.contains(what) {
                return out;
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("arbor local exited ({s}) before {what:?}:\n{out}");
            }
            assert!(Instant::now() < deadline, "no {what:?} within {limit:?}:\n{out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM; the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("arbor local ignored SIGTERM:\n{}", self.output());
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = self.child.wait();
        }
    }
}

/// The pid of server `id` from the last "started/restarted server N (pid P)" line.
fn pid_of(out: &str, id: u64) -> u32 {
    out.lines()
        .filter(|l| l.starts_with(&format!("started server {id} ")) || l.starts_with(&format!("restarted server {id} ")))
        .filter_map(|l| l.split("(pid ").nth(1)?.split(')').next()?.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no pid for server {id} in:\n{out}"))
}

fn mode(port: u16) -> Option<String> {
    let s = four_letter(&std::net::SocketAddr::from(([127, 0, 0, 1], port)), "srvr").ok()?;
    s.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_string())
}

fn kill9(pid: u32) {
    // A child of `arbor local`, by its own PID.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn a_dead_server_is_restarted_and_the_others_keep_serving() {
    let dir = tempfile::tempdir().expect("tmp");
    let clients: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut cfg = format!("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}/{{id}}\n", dir.path().display());
    for (i, c) in clients.iter().enumerate() {
        cfg.push_str(&format!("server.{}=127.0.0.1:{}:{};127.0.0.1:{c}\n", i + 1, free_port(), free_port()));
    }
    let cfg_path = dir.path().join("local.cfg");
    fs::write(&cfg_path, cfg).expect("cfg");
    let mut local = Local::start(&[cfg_path.to_str().expect("utf8")], dir.path(), dir.path().join("local.out"));
    let out = local.wait_for("ensemble up", Duration::from_secs(60));
    let leader = (1..=3u64).find(|id| out.contains(&format!("server {id}: leader"))).expect("a leader");

    // Kill the leader: reported, restarted, and the other two elect a new leader meanwhile.
    let pid = pid_of(&out, leader);
    kill9(pid);
    local.wait_for(&format!("server {leader} (pid {pid}) exited"), Duration::from_secs(10));
    local.wait_for(&format!("restarted server {leader} (pid"), Duration::from_secs(10));
    let others: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(1..=3).all(|id| matches!(mode(clients[id as usize - 1]).as_deref(), Some("leader" | "follower"))) {
        assert!(Instant::now() < deadline, "the ensemble did not recover:\n{}", local.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = local.wait_for(" -> ", Duration::from_secs(10));
    assert!(out.contains("the other servers keep running"), "{out}");

    // Kill the same server again until the bound: no restart after MAX_RESTARTS (3).
    for round in 2..=4 {
        let out = local.output();
        let pid = pid_of(&out, leader);
        kill9(pid);
        local.wait_for(&format!("server {leader} (pid {pid}) exited"), Duration::from_secs(10));
        if round <= 3 {
            local.wait_for(&format!("(restart {round} of 3)"), Duration::from_secs(10));
            let deadline = Instant::now() + Duration::from_secs(10);
            while pid_of(&local.output(), leader) == pid {
                assert!(Instant::now() < deadline, "no restart {round}:\n{}", local.output());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    local.wait_for("not restarting it again", Duration::from_secs(10));
    // The two others still form a quorum and serve.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !others.iter().all(|id| matches!(mode(clients[*id as usize - 1]).as_deref(), Some("leader" | "follower"))) {
        assert!(Instant::now() < deadline, "the remaining two do not serve:\n{}", local.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = local.output();
    let pids: Vec<u32> = others.iter().map(|id| pid_of(&out, *id)).collect();
    let status = local.stop();
    assert!(status.success(), "exit {status}:\n{}", local.output());
    assert!(local.output().contains("stopped all servers"));
    for p in pids {
        assert!(!alive(p), "server pid {p} survived arbor local");
    }
}

/// Fixed ports 2181-2183 (the built-in config): serialized with other fixed-port tests.
struct PortsLock(fs::File);

impl PortsLock {
    fn take() -> PortsLock {
        let f = fs::File::create("/tmp/arbor-fixed-ports.lock").expect("lock file");
        use std::os::unix::io::AsRawFd;
        unsafe {
            libc::flock(f.as_raw_fd(), libc::LOCK_EX);
        }
        PortsLock(f)
    }
}

#[test]
fn without_a_config_it_runs_the_built_in_one_from_any_directory() {
    let _lock = PortsLock::take();
    let busy: Vec<u16> = (2181..=2183).filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err()).collect();
    assert!(busy.is_empty(), "ports {busy:?} are taken by something outside the fixed-ports lock");
    let elsewhere = tempfile::tempdir().expect("tmp");
    let mut local = Local::start(&[], elsewhere.path(), elsewhere.path().join("local.out"));
    let out = local.wait_for("ensemble up", Duration::from_secs(60));
    assert!(out.contains("using the built-in 3-server config"), "{out}");
    assert!(out.contains("127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183"), "{out}");
    let status = local.stop();
    assert!(status.success(), "exit {status}:\n{}", local.output());
    let _ = &_lock.0;
}

/// A TLS-only ensemble (secureClientPort.N without any plain client port, sslQuorum with
/// PKCS#12 quorum stores named `.jks`): `arbor local` starts it, reports the secure ports,
/// and its readiness checks (`srvr` for each server's mode) run over TLS. Certificates from
/// scripts/make-test-certs.sh.
#[test]
fn a_tls_only_ensemble_starts_and_is_checked_over_tls() {
    let dir = tempfile::tempdir().expect("tmp");
    let certs = dir.path().join("certs");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let made = Command::new("bash").arg(root.join("scripts/make-test-certs.sh")).arg(&certs).output();
    match made {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("SKIP a_tls_only_ensemble_starts_and_is_checked_over_tls: make-test-certs.sh (openssl) failed: {other:?}");
            return;
        }
    }
    let c = |f: &str| certs.join(f).display().to_string();
    let p12 = Command::new("openssl")
        .args(["pkcs12", "-export", "-in", &c("server-cert.pem"), "-inkey", &c("server-key.pem"), "-certfile", &c("ca.pem")])
        .args(["-passout", "pass:quorum-pw", "-out", &c("quorum.jks")])
        .output()
        .expect("openssl");
    assert!(p12.status.success(), "{p12:?}");
    let secure: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut cfg = format!(
        "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}/{{id}}\nclientPortAddress=127.0.0.1\n\
         ssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth=need\n\
         sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=quorum-pw\nssl.quorum.trustStore.location={}\n",
        dir.path().display(),
        c("server.pem"),
        c("ca.pem"),
        c("quorum.jks"),
        c("ca.pem"),
    );
    for (i, s) in secure.iter().enumerate() {
        cfg.push_str(&format!("server.{}=127.0.0.1:{}:{}\nsecureClientPort.{}={s}\n", i + 1, free_port(), free_port(), i + 1));
    }
    let cfg_path = dir.path().join("tls-only.cfg");
    fs::write(&cfg_path, cfg).expect("cfg");
    let mut local = Local::start(&[cfg_path.to_str().expect("utf8")], dir.path(), dir.path().join("local.out"));
    let out = local.wait_for("ensemble up", Duration::from_secs(60));
    for (i, s) in secure.iter().enumerate() {
        assert!(out.contains(&format!("started server {} (pid", i + 1)), "{out}");
        assert!(out.contains(&format!("secure client port 127.0.0.1:{s} (TLS only)")), "{out}");
    }
    let connect = secure.iter().map(|s| format!("127.0.0.1:{s}")).collect::<Vec<_>>().join(",");
    assert!(out.contains(&format!("connect string: {connect} (TLS")), "{out}");
    // The modes came over TLS: plain text on those ports gets no answer.
    assert!(mode(secure[0]).is_none(), "a plain srvr was answered on a secure port");
    let modes: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("server ") && l.contains(" on 127.0.0.1:")).collect();
    assert_eq!(modes.len(), 3, "{out}");
    assert_eq!(modes.iter().filter(|l| l.contains(": leader on")).count(), 1, "{out}");
    assert_eq!(modes.iter().filter(|l| l.contains(": follower on")).count(), 2, "{out}");
    let status = local.stop();
    assert!(status.success(), "exit {status}:\n{}", local.output());
}

/// Each server's `arbor.log` rotates as `arbor node --log-file` rotates it: size-bounded,
/// `arbor.log.1` newest, no more than `--log-backups` old files (here a standalone node whose
/// refused connections, one warning line each, fill several 1 KiB files).
#[test]
fn each_servers_log_rotates_like_a_log_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let client = free_port();
    let data = dir.path().join("data");
    let cfg = format!("tickTime=2000\nmaxClientCnxns=1\nclientPort={client}\nclientPortAddress=127.0.0.1\ndataDir={}\nadmin.enableServer=false\n", data.display());
    let cfg_path = dir.path().join("standalone.cfg");
    fs::write(&cfg_path, cfg).expect("cfg");
    let args = ["--log-max-size", "1k", "--log-backups", "2", cfg_path.to_str().expect("utf8")];
    let mut local = Local::start(&args, dir.path(), dir.path().join("local.out"));
    local.wait_for("ensemble up", Duration::from_secs(60));
    // One connection is allowed from 127.0.0.1; each further one is refused with a line.
    let held: Vec<std::net::TcpStream> =
        (0..60).filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", client)).ok()).collect();
    let log = data.join("arbor.log");
    let backup = |n: u32| data.join(format!("arbor.log.{n}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !backup(2).exists() {
        assert!(Instant::now() < deadline, "no arbor.log.2 in {}:\n{}", data.display(), local.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
    assert!(!backup(3).exists(), "at most 2 backups");
    for p in [log.clone(), backup(1), backup(2)] {
        let len = fs::metadata(&p).map(|m| m.len()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(len <= 1024, "{} is {len} bytes, over --log-max-size", p.display());
    }
    let rotated = fs::read_to_string(backup(1)).expect("arbor.log.1");
    assert!(rotated.contains("[myid:1]") && rotated.contains("connection refused"), "{rotated}");
    // The process's own output file exists beside the log (its errors, a panic's message).
    assert!(data.join("arbor.out").exists());
    let status = local.stop();
    assert!(status.success(), "exit {status}:\n{}", local.output());
}

//! `arbor node` as an operator runs it: log lines with time, level and server id, the
//! log level and file flags, SIGTERM/SIGINT ending it cleanly (exit 0, logged, acknowledged
//! writes there after a restart), and a port in use refused before anything touches the disk.

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{four_letter, free_port, write_cfg, Node, RawClient};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");

/// `2025-06-01T12:00:00.123456Z  INFO [myid:1] …`
fn is_log_line(line: &str, id: u64) -> bool {
    let mut parts = line.split_whitespace();
    let (Some(ts), Some(level), Some(myid)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let ts_ok = ts.len() >= 20
        && ts.ends_with('Z')
        && ts.as_bytes()[4] == b'-'
        && ts.as_bytes()[10] == b'T'
        && ts[..4].chars().all(|c| c.is_ascii_digit());
    ts_ok && ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level) && myid == format!("[myid:{id}]")
}

#[test]
fn every_line_has_time_level_and_server_id_and_sigterm_stops_cleanly() {
    let mut node = Node::start_standalone(&["tickTmie=2000"]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    for i in 0..50 {
        c.create(&format!("/n{i}"), Some(b"x"), 0).expect("create");
    }
    let status = node.stop().expect("the node ended on SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");
    let log = node.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with("==== harness")).collect();
    assert!(lines.len() >= 5, "{log}");
    for l in &lines {
        assert!(is_log_line(l, 1), "not a `TIME LEVEL [myid:1] …` line: {l:?}\n{log}");
    }
    let find = |what: &str| lines.iter().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what:?} line:\n{log}")).to_string();
    let start = find(" starting ");
    for field in ["version=", "mode=standalone", "client=127.0.0.1:", "data_dir=", "tick_ms=2000", "snap_count="] {
        assert!(start.contains(field), "start-up line lacks {field}: {start}");
    }
    let rec = find(" recovered ");
    assert!(rec.contains("txns_replayed=0") && rec.contains("took_ms="), "{rec}");
    assert!(find("tickTmie").contains("WARN") && find("tickTmie").contains("did you mean tickTime?"), "{log}");
    assert!(find("shutting down").contains("signal=SIGTERM"), "{log}");
    assert!(find("shut down cleanly").contains("durable_zxid=0x"), "{log}");

    // Restarted, it recovers every acknowledged write and logs how.
    node.start_again();
    let mut c = RawClient::connect(&node.addr(), 30_000);
    assert!(c.exists("/n49", false).is_ok());
    let rec = node.log().lines().rfind(|l| l.contains(" recovered ")).expect("second recovery").to_string();
    // createSession + 50 creates, no snapshot yet (snapCount is 100000).
    assert!(rec.contains("txns_replayed=51 ") && rec.contains("snapshot_zxid=none"), "{rec}");
}

fn spawn(args: &[&str], cfg: &Path, env: &[(&str, &str)], out: &Path) -> Child {
    let f = fs::File::create(out).expect("out");
    let mut cmd = Command::new(ARBOR);
    cmd.arg("node").args(args).arg(cfg);
    if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
        cmd.env_remove("RUST_LOG");
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(f.try_clone().expect("dup"))
        .stderr(f)
        .spawn()
        .expect("spawn arbor")
}

fn wait_serving(child: &mut Child, port: u16, out: &Path) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("arbor exited ({s}):\n{}", fs::read_to_string(out).unwrap_or_default());
        }
        // srvr: the only word allowed without a whitelist.
        if four_letter(&addr, "srvr").is_ok_and(|s| s.contains("Mode: standalone")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not serving:\n{}", fs::read_to_string(out).unwrap_or_default());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("arbor did not exit within {limit:?}");
}

fn signal(child: &Child, sig: libc::c_int) {
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

#[test]
fn log_file_and_level_flags_and_sigint() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let cfg = write_cfg(
        dir.path(),
        "zoo.cfg",
        &format!("dataDir={}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout=1000\n", dir.path().display()),
    );
    // --log-file with --log-level debug: the file gets DEBUG lines (a session expiring),
    // stdout/stderr get nothing but errors.
    let file = dir.path().join("arbor.log");
    let out = dir.path().join("stderr.txt");
    let file_s = file.to_str().expect("utf8");
    let mut child = spawn(&["1", "--log-file", file_s, "--log-level", "debug"], &cfg, &[], &out);
    wait_serving(&mut child, port, &out);
    let addr = format!("127.0.0.1:{port}");
    let c = RawClient::connect(&addr, 1000);
    let session = c.session_id();
    drop(c);
    let want = format!("session expired session={session:#x}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !fs::read_to_string(&file).unwrap_or_default().contains(&want) {
        assert!(Instant::now() < deadline, "no {want:?} in the log file:\n{}", fs::read_to_string(&file).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).code(), Some(0));
    let log = fs::read_to_string(&file).expect("log file");
    assert!(log.lines().all(|l| is_log_line(l, 1)), "{log}");
    assert!(log.lines().any(|l| l.contains(" DEBUG ")), "{log}");
    assert!(log.contains("signal=SIGINT") && log.contains("shut down cleanly"), "{log}");
    assert_eq!(fs::read_to_string(&out).unwrap_or_default(), "", "only errors go to stderr with --log-file");

    // RUST_LOG=warn: no INFO lines; a bad --log-level is refused with a clear message.
    let out2 = dir.path().join("warn.txt");
    let mut child = spawn(&["1"], &cfg, &[("RUST_LOG", "warn")], &out2);
    wait_serving(&mut child, port, &out2);
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).code(), Some(0));
    let warn_log = fs::read_to_string(&out2).unwrap_or_default();
    assert!(!warn_log.contains(" INFO "), "RUST_LOG=warn still logged INFO:\n{warn_log}");
    let bad = Command::new(ARBOR).args(["node", "1", "--log-level", "arbor=loud"]).arg(&cfg).output().expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad log filter \"arbor=loud\""), "{bad:?}");
}

#[test]
fn a_port_in_use_is_refused_before_the_data_dir_is_created() {
    let dir = tempfile::tempdir().expect("tmp");
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let data = dir.path().join("data");
    let cfg = write_cfg(dir.path(), "zoo.cfg", &format!("dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n", data.display()));
    let out = Command::new(ARBOR).args(["node", "1"]).arg(&cfg).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port} (client port)")) && err.contains("another server running"),
        "{err}"
    );
    assert!(!data.exists(), "the dataDir was created although the port was busy");

    // Ensemble: a busy election port, same rule.
    let (c, q) = (free_port(), free_port());
    let data2 = dir.path().join("data2");
    let cfg2 = write_cfg(
        dir.path(),
        "ens.cfg",
        &format!(
            "dataDir={}\nserver.1=127.0.0.1:{q}:{port};127.0.0.1:{c}\nserver.2=127.0.0.1:{}:{};127.0.0.1:{}\n",
            data2.display(),
            free_port(),
            free_port(),
            free_port()
        ),
    );
    let out = Command::new(ARBOR).args(["node", "1"]).arg(&cfg2).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port} (election port)")), "{err}");
    assert!(!data2.exists(), "the dataDir was created although a port was busy");
    drop(busy);
}

/// `--log-file` rotates by size: with a 1 KiB limit and 2 backups, a node's start, sessions
/// and shutdown leave `arbor.log`, `.1` and `.2` (never `.3`), every line whole.
#[test]
fn the_log_file_rotates_by_size_and_keeps_the_window() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = common::free_port();
    let cfg = write_cfg(
        dir.path(),
        "zoo.cfg",
        &format!("dataDir={}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout=1000\n", dir.path().display()),
    );
    let file = dir.path().join("arbor.log");
    let out = dir.path().join("stderr.txt");
    let file_s = file.to_str().expect("utf8");
    let mut child = spawn(&["1", "--log-file", file_s, "--log-level", "debug", "--log-max-size", "1k", "--log-backups", "2"], &cfg, &[], &out);
    wait_serving(&mut child, port, &out);
    // Sessions that expire log a DEBUG line each: enough to rotate several times.
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..20 {
        drop(RawClient::connect(&addr, 1000));
    }
    let backup = |n: u32| dir.path().join(format!("arbor.log.{n}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !backup(2).exists() {
        assert!(Instant::now() < deadline, "no second backup: {:?}", fs::read_dir(dir.path()).map(|d| d.count()));
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).code(), Some(0));
    assert!(!backup(3).exists(), "only 2 backups are kept");
    for p in [file.clone(), backup(1), backup(2)] {
        let text = fs::read_to_string(&p).expect("log");
        assert!(!text.is_empty(), "{} is empty", p.display());
        assert!(text.lines().all(|l| is_log_line(l, 1)), "a split or foreign line in {}:\n{text}", p.display());
    }
    // A rotated file stays within the limit unless it holds a single longer line.
    let b1 = fs::read_to_string(backup(1)).expect("backup");
    assert!(b1.len() <= 1024 || b1.lines().count() == 1, "{} bytes in .1", b1.len());
}

//! The `arbor node <id> <config>` launch path and its config errors, end to end: a bad line
//! makes the process exit non-zero with `file:line: reason` on stderr; an unknown key is only
//! a warning and the node serves.
mod common;

use common::{write_cfg, Node};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `arbor node <id> <cfg>` expecting it to exit by itself within 10 s.
fn run_expecting_exit(id: &str, cfg: &std::path::Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["node", id])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn arbor");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("collect output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("collect output");
    panic!(
        "arbor kept running with a bad config {}\nstderr: {}",
        cfg.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_server_line_names_file_line_and_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = write_cfg(
        dir.path(),
        "bad.cfg",
        "tickTime=2000\ndataDir=/tmp/arbor-never\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2181\nserver.2=127.0.0.1:2889:38x8;127.0.0.1:2182\n",
    );
    let out = run_expecting_exit("1", &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {}", out.status);
    let want = format!("{}:4: server.2: bad port \"38x8\"", cfg.display());
    assert!(stderr.contains(&want), "stderr lacks {want:?}:\n{stderr}");
}

#[test]
fn missing_data_dir_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = write_cfg(dir.path(), "nodata.cfg", "clientPort=2181\n");
    let out = run_expecting_exit("1", &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let want = format!("{}: missing required key dataDir", cfg.display());
    assert!(stderr.contains(&want), "stderr lacks {want:?}:\n{stderr}");
}

#[test]
fn missing_config_file_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("absent.cfg");
    let out = run_expecting_exit("1", &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&cfg.display().to_string()),
        "stderr does not name the file:\n{stderr}"
    );
}

#[test]
fn unknown_key_is_a_warning_and_the_node_serves() {
    let node = Node::start_standalone(&["frobnicate=yes", "admin.enableServer=false"]);
    assert_eq!(node.four_letter("ruok"), "imok");
    let log = node.log();
    assert!(
        log.contains("frobnicate: unknown key; ignored"),
        "no warning in log:\n{log}"
    );
}

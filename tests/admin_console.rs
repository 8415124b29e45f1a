//! The web console in headless Chromium against a running 3-node ensemble: the page loads
//! from one server's admin port, shows all three servers (live, one leader, two followers),
//! browses into a znode the test created and shows its data. The screenshot is kept at
//! target/tmp/admin-console.png.
//!
//! Needs Debian's `chromium`, `node`, and npm's `playwright-core` in
//! ~/.cache/arbor-console-test (or $ARBOR_PLAYWRIGHT_DIR); `.ci/run` installs all three.
//! Without them the test says so and passes, unless ARBOR_REQUIRE_CHROMIUM=1 (CI), where a
//! missing piece is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cluster::Cluster;
use common::*;

fn playwright_dir() -> PathBuf {
    match std::env::var("ARBOR_PLAYWRIGHT_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/arbor-console-test"),
    }
}

/// What is missing to run the browser, if anything.
fn missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} (apt-get install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node".into());
    }
    let pw = playwright_dir().join("node_modules/playwright-core");
    if !pw.exists() {
        return Some(format!("{} (npm install --prefix {} playwright-core@1.65.1)", pw.display(), playwright_dir().display()));
    }
    None
}

#[test]
fn console_shows_the_ensemble_and_browses_into_a_znode() {
    if let Some(what) = missing() {
        let required = std::env::var("ARBOR_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(!required, "ARBOR_REQUIRE_CHROMIUM=1 but the console test cannot run: missing {what}");
        eprintln!("SKIPPED: the console test needs {what}");
        return;
    }
    let cl = Cluster::start(3, &["admin.enableServer=true", "tickTime=2000"]);
    let mut c = RawClient::connect(&cl.addr(1), 30_000);
    let data = "hello from the console test ✓";
    c.create("/console-test", Some(b"dir"), 0).expect("create dir");
    c.create("/console-test/hello", Some(data.as_bytes()), 0).expect("create znode");
    for i in 0..5 {
        c.create(&format!("/console-test/n{i}"), Some(&[0u8, 1, 2, 255]), 0).expect("create");
    }
    // The page is served by server 2; it reaches the others through their admin ports.
    let url = format!("http://{}/", cl.admin_addr(2));
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-console.png");
    let _ = std::fs::remove_file(&shot);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/console.cjs");
    let out = Command::new("timeout")
        .args(["-k", "5", "150", "node"])
        .arg(&script)
        .args([&url, "/console-test", "hello", data])
        .arg(&shot)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "console check failed ({}):\n{stdout}\n{stderr}", out.status);
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let modes: Vec<&str> = seen["modes"].as_array().expect("modes").iter().filter_map(|m| m.as_str()).collect();
    assert_eq!(modes.iter().filter(|m| **m == "leader").count(), 1, "{modes:?}");
    assert_eq!(modes.iter().filter(|m| **m == "follower").count(), 2, "{modes:?}");
    assert!(seen["stat"].as_str().expect("stat").contains("dataLength"), "{seen}");
    let events = seen["events"].as_array().expect("events");
    assert!(events.iter().any(|e| e.as_str().is_some_and(|t| t.contains("election"))), "elections listed: {events:?}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "screenshot is a PNG of some size: {} bytes", png.len());
    eprintln!("console screenshot: {}", shot.display());
}

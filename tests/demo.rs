//! `arbor demo` with a short duration on ports of its own: it must kill the leader, see a new
//! one elected and the killed server rejoin, read back every acknowledged create, exit 0, and
//! leave no child process and no temporary directory behind.

mod common;

use std::net::TcpListener;
use std::process::Command;

/// A base port whose demo ports (base+1..3, +11..13, +21..23, admin +31..33) are all free
/// right now.
fn free_base() -> u16 {
    for _ in 0..50 {
        let base = common::free_port().saturating_sub(40).max(20_000);
        let offsets = [1u16, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33];
        if offsets.iter().all(|o| TcpListener::bind(("127.0.0.1", base + o)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range for the demo");
}

#[test]
fn demo_kills_the_leader_and_loses_no_acknowledged_write() {
    let base = free_base().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["demo", "--duration", "4", "--clients", "8", "--base-port", &base])
        .output()
        .expect("run arbor demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["SIGKILL leader", "new leader: server", "rejoined as follower", "no acknowledged write lost", "p99.9"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // A chart line per second.
    assert!(text.lines().filter(|l| l.contains(" ops/s  p99")).count() >= 4, "{text}");
    // Every child it started (by PID) is gone, and so is its temporary directory.
    for pid in text.split("(pid ").skip(1).filter_map(|s| s.split(')').next()).filter_map(|p| p.parse::<u32>().ok()) {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmdline.contains("arbor-demo"), "child {pid} still running: {cmdline}");
    }
    let removed = text.lines().find_map(|l| l.strip_prefix("removed ")).expect("removed line");
    assert!(!std::path::Path::new(removed).exists(), "{removed} left behind");
}

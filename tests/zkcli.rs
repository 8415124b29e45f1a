//! ZooKeeper's own CLI (zkCli.sh 3.8, Java) against a fresh arbor: the normalised transcript
//! of ../shared/peers/kazoo/zkcli-script.txt must equal ZooKeeper 3.8's (zkcli-zk38.txt), and
//! so must the one of tests/zkcli/addwatch-script.txt (tests/zkcli/addwatch-zk38.txt).
//!
//! The peers dir is `$ARBOR_PEERS_DIR/kazoo` if set, else `$CARGO_MANIFEST_DIR/../shared/peers/kazoo`.
//! Needs zkCli.sh (Debian package `zookeeper`) and java; without them the test prints a
//! SKIP line and passes (scripts/test-all.sh's ARBOR_REQUIRE_ZKCLI=1 makes that an error there).
mod common;

use common::Node;
use std::path::{Path, PathBuf};
use std::process::Command;

fn zkcli() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ZKCLI") {
        return Some(PathBuf::from(p));
    }
    ["/usr/share/zookeeper/bin/zkCli.sh", "/opt/zookeeper/bin/zkCli.sh", "/usr/local/zookeeper/bin/zkCli.sh"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn peers_kazoo() -> PathBuf {
    match std::env::var("ARBOR_PEERS_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d).join("kazoo"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/kazoo"),
    }
}

/// Runs `script` through zkcli-run.sh against a fresh arbor and diffs the normalised
/// transcript with `expected_path` (ZooKeeper 3.8's). Returns false (SKIP) when zkCli or java
/// is missing.
fn transcript_matches(test: &str, script: &Path, expected_path: &Path) -> bool {
    let Some(cli) = zkcli() else {
        eprintln!("SKIP {test}: zkCli.sh not found (apt-get install zookeeper)");
        return false;
    };
    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("SKIP {test}: java not found");
        return false;
    }
    let run = peers_kazoo().join("zkcli-run.sh");
    assert!(run.exists(), "{} missing (set ARBOR_PEERS_DIR)", run.display());
    // The same settings as config/kazoo.cfg (what the transcripts were recorded against).
    let node = Node::start_standalone(&[
        "admin.enableServer=false",
        "reconfigEnabled=true",
        "localSessionsEnabled=false",
        "localSessionsUpgradingEnabled=false",
    ]);
    let out = Command::new("timeout")
        .arg("300")
        .arg("bash")
        .arg(&run)
        .arg(node.addr())
        .arg(script)
        .env("ZKCLI", &cli)
        .output()
        .expect("run zkcli-run.sh");
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "zkcli-run.sh failed ({}):\n{}\n{got}", out.status, String::from_utf8_lossy(&out.stderr));
    let want = std::fs::read_to_string(expected_path).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    assert!(got.lines().count() > 20, "transcript too short:\n{got}");
    if got.trim_end() != want.trim_end() {
        let tmp = tempfile::Builder::new().prefix("zkcli-arbor-").suffix(".txt").tempfile().unwrap();
        std::fs::write(tmp.path(), &got).unwrap();
        let diff = Command::new("diff").arg("-u").arg(expected_path).arg(tmp.path()).output().expect("diff");
        panic!(
            "zkCli transcript differs from ZooKeeper 3.8's (- zk38, + arbor):\n{}",
            String::from_utf8_lossy(&diff.stdout)
        );
    }
    assert!(node.log().find("panick").is_none(), "{}", node.log());
    true
}

#[test]
fn zkcli_transcript_matches_zookeeper_38() {
    let dir = peers_kazoo();
    transcript_matches("zkcli_transcript_matches_zookeeper_38", &dir.join("zkcli-script.txt"), &dir.join("zkcli-zk38.txt"));
}

/// zkCli's `addWatch` (persistent and persistent-recursive watches, op 106) and the events
/// they deliver. The script and ZooKeeper 3.8.0's transcript live in tests/zkcli/ (recorded
/// with scripts/record-zkcli-transcripts.sh): the shared transcript has no addWatch.
#[test]
fn zkcli_addwatch_transcript_matches_zookeeper_38() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/zkcli");
    transcript_matches(
        "zkcli_addwatch_transcript_matches_zookeeper_38",
        &dir.join("addwatch-script.txt"),
        &dir.join("addwatch-zk38.txt"),
    );
}

//! ZooKeeper's own CLI (zkCli.sh 3.8, Java) against a fresh arbor: the normalised transcript
//! of ../shared/peers/kazoo/zkcli-script.txt must equal ZooKeeper 3.8's (zkcli-zk38.txt).
//!
//! The peers dir is `$ARBOR_PEERS_DIR/kazoo` if set, else `$CARGO_MANIFEST_DIR/../shared/peers/kazoo`.
//! Needs zkCli.sh (Debian package `zookeeper`) and java; without them the test prints a
//! SKIP line and passes (scripts/test-all.sh's ARBOR_REQUIRE_ZKCLI=1 makes that an error there).
mod common;

use common::Node;
use std::path::PathBuf;
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

#[test]
fn zkcli_transcript_matches_zookeeper_38() {
    let Some(cli) = zkcli() else {
        eprintln!("SKIP zkcli_transcript_matches_zookeeper_38: zkCli.sh not found (apt-get install zookeeper)");
        return;
    };
    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("SKIP zkcli_transcript_matches_zookeeper_38: java not found");
        return;
    }
    let dir = peers_kazoo();
    let run = dir.join("zkcli-run.sh");
    let expected_path = dir.join("zkcli-zk38.txt");
    assert!(run.exists(), "{} missing (set ARBOR_PEERS_DIR)", run.display());
    // The same settings as config/kazoo.cfg (what the transcript was recorded against).
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
        .env("ZKCLI", &cli)
        .output()
        .expect("run zkcli-run.sh");
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "zkcli-run.sh failed ({}):\n{}\n{got}", out.status, String::from_utf8_lossy(&out.stderr));
    let want = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    assert!(got.lines().count() > 20, "transcript too short:\n{got}");
    if got.trim_end() != want.trim_end() {
        let tmp = tempfile::Builder::new().prefix("zkcli-arbor-").suffix(".txt").tempfile().unwrap();
        std::fs::write(tmp.path(), &got).unwrap();
        let diff = Command::new("diff").arg("-u").arg(&expected_path).arg(tmp.path()).output().expect("diff");
        panic!(
            "zkCli transcript differs from ZooKeeper 3.8's (- zk38, + arbor):\n{}",
            String::from_utf8_lossy(&diff.stdout)
        );
    }
    assert!(node.log().find("panick").is_none(), "{}", node.log());
}

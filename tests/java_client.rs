//! The ZooKeeper 3.8 Java client (Debian package `zookeeper`: /usr/share/java/zookeeper.jar)
//! against a fresh arbor: tests/java/PersistentWatchCheck.java adds a persistent-recursive and
//! a persistent watch and must receive their events in order without its connection dropping
//! (issue 8 part 4: a 16-byte addWatch reply made this client fail in
//! ErrorResponse.deserialize and reconnect in a loop). It was checked against ZooKeeper 3.8.0
//! too (`java -cp ... PersistentWatchCheck HOST:PORT /root` prints OK there).
//!
//! Needs javac/java and the jars; without them the test prints a SKIP line and passes.
mod common;

use std::path::Path;
use std::process::Command;

use common::Node;

const JARS: [&str; 3] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
];

#[test]
fn java_client_receives_persistent_watch_events() {
    let test = "java_client_receives_persistent_watch_events";
    // CI sets ARBOR_REQUIRE_JAVA: there a missing toolchain is a failure, not a skip.
    let required = std::env::var_os("ARBOR_REQUIRE_JAVA").is_some();
    if let Some(j) = JARS.iter().find(|j| !Path::new(j).exists()) {
        assert!(!required, "{test}: {j} not found (apt-get install zookeeper)");
        eprintln!("SKIP {test}: {j} not found (apt-get install zookeeper)");
        return;
    }
    if Command::new("javac").arg("-version").output().is_err() {
        assert!(!required, "{test}: javac not found (apt-get install default-jdk-headless)");
        eprintln!("SKIP {test}: javac not found");
        return;
    }
    let classes = tempfile::Builder::new().prefix("arbor-java-").tempdir().expect("temp dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/PersistentWatchCheck.java");
    let out = Command::new("javac")
        .arg("-cp")
        .arg(JARS.join(":"))
        .arg("-d")
        .arg(classes.path())
        .arg(&src)
        .output()
        .expect("run javac");
    assert!(out.status.success(), "javac failed:\n{}", String::from_utf8_lossy(&out.stderr));

    let node = Node::start_standalone(&[]);
    let cp = format!("{}:{}", classes.path().display(), JARS.join(":"));
    let out = Command::new("timeout")
        .arg("60")
        .arg("java")
        .arg("-cp")
        .arg(&cp)
        .arg("PersistentWatchCheck")
        .arg(node.addr())
        .arg("/java-client")
        .output()
        .expect("run java");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().last() == Some("OK"),
        "Java client check failed ({}):\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
}

//! The ZooKeeper 3.8 Java client (Debian package `zookeeper`: /usr/share/java/zookeeper.jar)
//! against a fresh arbor: tests/java/PersistentWatchCheck.java adds a persistent-recursive and
//! a persistent watch and must receive their events in order without its connection dropping
//! (issue 8 part 4: a 16-byte addWatch reply made this client fail in
//! ErrorResponse.deserialize and reconnect in a loop). It was checked against ZooKeeper 3.8.0
//! too (`java -cp ... PersistentWatchCheck HOST:PORT /root` prints OK there).
//!
//! Needs javac/java and the jars; without them the test prints a SKIP line and passes.
mod common;

use std::process::Command;

use common::Node;

#[test]
fn java_client_receives_persistent_watch_events() {
    let Some((_classes, cp)) = common::compile_java("java_client_receives_persistent_watch_events", "PersistentWatchCheck.java") else {
        return;
    };
    let node = Node::start_standalone(&[]);
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

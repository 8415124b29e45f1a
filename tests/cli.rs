//! `arbor cli` against a real standalone arbor: every command's output, and every error exit
//! with ZooKeeper's error name on stderr.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::Node;

fn cli(servers: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["cli", "-s", servers, "--timeout", "5"])
        .args(args)
        .output()
        .expect("run arbor cli")
}

fn ok(servers: &str, args: &[&str]) -> String {
    let o = cli(servers, args);
    assert!(o.status.success(), "arbor cli {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

/// Asserts the command fails (exit 1) and stderr starts with the ZooKeeper error `name`.
fn fails(servers: &str, args: &[&str], name: &str) {
    let o = cli(servers, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "arbor cli {args:?}: stdout {:?} stderr {err:?}", String::from_utf8_lossy(&o.stdout));
    assert!(err.starts_with(&format!("{name}: ")), "arbor cli {args:?}: expected {name}, stderr {err:?}");
}

fn json(servers: &str, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(servers, &a)).expect("JSON output")
}

#[test]
fn commands_print_what_zkcli_would_and_json_for_scripts() {
    let node = Node::start_standalone(&[]);
    // The first endpoint refuses: the cli moves on to the next.
    let s = &format!("127.0.0.1:1,{}", node.addr());
    assert_eq!(ok(s, &["create", "/c", "hello"]), "Created /c");
    assert_eq!(ok(s, &["get", "/c"]), "hello");
    let g = json(s, &["get", "/c"]);
    assert_eq!(g["data"], "hello");
    assert_eq!(g["stat"]["version"], 0);
    assert!(ok(s, &["get", "-s", "/c"]).contains("dataVersion = 0"));
    assert!(ok(s, &["set", "-v", "0", "/c", "v1"]).contains("dataVersion = 1"));
    assert_eq!(json(s, &["stat", "/c"])["stat"]["dataLength"], 2);

    // DATA from stdin and from a file.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["cli", "-s", s, "set", "/c", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(b"from stdin").expect("write stdin");
    assert!(child.wait().expect("wait").success());
    assert_eq!(ok(s, &["get", "/c"]), "from stdin");
    let f = node.dir().join("data.bin");
    std::fs::write(&f, b"from file").expect("write file");
    ok(s, &["create", "/c/f", &format!("@{}", f.display())]);
    assert_eq!(ok(s, &["get", "/c/f"]), "from file");

    let seq = json(s, &["create", "-s", "/c/q-", "x"]);
    assert_eq!(seq["path"], "/c/q-0000000001");
    assert_eq!(ok(s, &["create", "-c", "/c/box"]), "Created /c/box");
    assert_eq!(ok(s, &["ls", "/c"]), "[box, f, q-0000000001]");
    assert!(ok(s, &["ls", "-s", "/c"]).contains("numChildren = 3"));
    let all = json(s, &["ls", "-R", "/c"]);
    assert_eq!(all["subtree"].as_array().map(Vec::len), Some(4));
    assert_eq!(ok(s, &["sync", "/c"]), "Sync is OK for /c");
    assert_eq!(ok(s, &["getacl", "/c"]), "'world,'anyone\n: cdrwa");

    // ACLs and auth: after setacl to digest-only, the anonymous client gets NoAuth.
    ok(s, &["--auth", "digest:u:p", "setacl", "/c/f", "auth::cdrwa"]);
    // getACL needs READ or ADMIN, as in ZooKeeper 3.8.
    fails(s, &["getacl", "/c/f"], "NoAuth");
    let acl = json(s, &["--auth", "digest:u:p", "getacl", "/c/f"]);
    assert_eq!(acl["acl"][0]["scheme"], "digest");
    assert_eq!(acl["acl"][0]["perms"], "cdrwa");
    fails(s, &["get", "/c/f"], "NoAuth");
    assert_eq!(ok(s, &["--auth", "digest:u:p", "get", "/c/f"]), "from file");
    ok(s, &["--auth", "digest:u:p", "setacl", "/c/f", "world:anyone:cdrwa"]);

    ok(s, &["delete", "/c/box"]);
    ok(s, &["deleteall", "/c"]);
    fails(s, &["stat", "/c"], "NoNode");

    let srvr = ok(s, &["srvr"]);
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(ok(s, &["mntr"]).contains("zk_znode_count"));
}

#[test]
fn every_error_exits_one_with_the_zookeeper_name() {
    let node = Node::start_standalone(&[]);
    let s = &node.addr();
    ok(s, &["create", "/e", "x"]);
    ok(s, &["create", "/e/kid"]);
    fails(s, &["get", "/nope"], "NoNode");
    fails(s, &["create", "/e", "again"], "NodeExists");
    fails(s, &["set", "-v", "7", "/e", "y"], "BadVersion");
    fails(s, &["delete", "-v", "3", "/e/kid"], "BadVersion");
    fails(s, &["delete", "/e"], "NotEmpty");
    fails(s, &["create", "/missing/parent"], "NoNode");
    fails(s, &["setacl", "/e", "digest:no-hash-here:cdrwa"], "InvalidACL");
    fails(s, &["setacl", "/e", "world:anyone:xyz"], "BadArguments");
    fails(s, &["create", "-c", "-t", "5", "/e/x"], "BadArguments");
    assert_eq!(ok(s, &["create", "-t", "60000", "/e/ttl"]), "Created /e/ttl");
    ok(s, &["setacl", "/e/kid", "world:anyone:r"]);
    fails(s, &["set", "/e/kid", "z"], "NoAuth");
    fails(s, &["--auth", "nosuchscheme:x", "get", "/e"], "AuthFailed");
    fails(s, &["watch", "/e", "--timeout", "0.3"], "OperationTimeout");
    fails("127.0.0.1:1", &["get", "/e"], "ConnectionLoss");
    fails("127.0.0.1:1", &["srvr"], "ConnectionLoss");
}

#[test]
fn watch_prints_the_event_it_waited_for() {
    let node = Node::start_standalone(&[]);
    let s = node.addr();
    let s2 = s.clone();
    let waiter = std::thread::spawn(move || ok(&s2, &["--json", "watch", "/w", "--timeout", "10"]));
    // Create only once the server holds the watcher's watch (wchs), so the event cannot be missed.
    common::wait_for(std::time::Duration::from_secs(10), "the watch to be registered", || {
        let wchs = node.four_letter("wchs");
        let n: u64 = wchs.lines().find_map(|l| l.strip_prefix("Total watches:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        (n > 0).then_some(())
    });
    ok(&s, &["create", "/w", "x"]);
    let out: serde_json::Value = serde_json::from_str(&waiter.join().expect("watcher")).expect("json");
    assert_eq!(out["event"], "NodeCreated");
    assert_eq!(out["path"], "/w");
}

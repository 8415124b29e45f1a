//! arbor's tree digest against ZooKeeper 3.8's own: the same random txns (creates of every
//! owner kind, setData with empty, null and binary data, deletes, setACL, session
//! create/close, writes to "/", "/zookeeper" and "/zookeeper/quota") go through arbor's
//! `DataTree` and through the `DataTree` of the Debian package's zookeeper.jar
//! (tests/java/DigestCheck.java); the digest after every txn and the digest log must be
//! the same numbers.
//!
//! Needs javac/java and the jars; without them the test prints a SKIP line and passes
//! (CI sets ARBOR_REQUIRE_JAVA, and there a missing toolchain fails it).

mod common;

use std::fmt::Write as _;
use std::process::Command;

use arbor::proto::{Acl, SessionId, Zxid, CONTAINER_OWNER, TTL_MASK};
use arbor::tree::DataTree;
use arbor::txn::{Txn, TxnHeader, TxnOp};
use rand::{Rng, SeedableRng};

const SESSIONS: [i64; 2] = [0x1000_0000_0001, 0x1000_0000_0002];

fn hex(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "-".into(),
        Some(b) if b.is_empty() => ".".into(),
        Some(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Random valid txns, applied to `tree` as they are made; returns the script for
/// DigestCheck and arbor's expected output lines.
fn script(tree: &mut DataTree, n: usize) -> (String, Vec<String>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(38);
    let names = ["a", "b", "c", "zookeeper"];
    let mut text = String::new();
    let mut lines = vec![format!("0 {}", tree.digest())];
    let mut zxid = (1i64 << 32) + 1;
    let mut applied = 0;
    while applied < n {
        let session = SESSIONS[rng.gen_range(0..2)];
        let time = 1_700_000_000_000 + zxid * 7 % 100_000;
        let depth = rng.gen_range(1..=3);
        let mut path: String = (0..depth).map(|_| format!("/{}", names[rng.gen_range(0..names.len())])).collect();
        match rng.gen_range(0..20) {
            0 => path = "/".into(),
            1 => path = "/zookeeper/quota".into(),
            _ => {}
        }
        let id = tree.lookup(&path);
        let data = match rng.gen_range(0..5) {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some((0..rng.gen_range(1..300)).map(|_| rng.gen()).collect()),
            _ => Some(format!("value-{zxid}").into_bytes()),
        };
        let (line, op) = match rng.gen_range(0..12) {
            0..=3 if id.is_none() => {
                // Its parent must exist and not be ephemeral (prep refuses children there).
                let parent = path.rsplit_once('/').map(|(p, _)| if p.is_empty() { "/" } else { p }).unwrap_or("/");
                let Some(pid) = tree.lookup(parent) else { continue };
                let powner = tree.raw_ephemeral_owner(pid);
                if powner != 0 && powner != CONTAINER_OWNER && powner & TTL_MASK != TTL_MASK {
                    continue;
                }
                let (kind, ttl, owner) = match rng.gen_range(0..6) {
                    0 => ("e", 0, session),
                    1 => ("c", 0, CONTAINER_OWNER),
                    2 => ("t", 5000i64, TTL_MASK | 5000),
                    _ => ("p", 0, 0),
                };
                let line = format!("C {session} {zxid} {time} {kind} {ttl} {path} {}", hex(&data));
                (line, TxnOp::Create { path, data, acl: Acl::open_unsafe(), ephemeral_owner: owner, parent_cversion: -1 })
            }
            4 if id.is_some_and(|i| tree.num_children(i) == 0) && path != "/" && !path.starts_with("/zookeeper") => {
                (format!("D {session} {zxid} {time} {path}"), TxnOp::Delete { path })
            }
            5..=7 if id.is_some() => {
                let version = rng.gen_range(0..100);
                (format!("S {session} {zxid} {time} {version} {path} {}", hex(&data)), TxnOp::SetData { path, data, version })
            }
            8 if id.is_some() => {
                let version = rng.gen_range(0..100);
                (format!("A {session} {zxid} {time} {version} {path}"), TxnOp::SetAcl { path, acl: Acl::read_unsafe(), version })
            }
            9 => (format!("N {session} {zxid} {time}"), TxnOp::CreateSession { timeout_ms: 30000 }),
            10 => (format!("X {session} {zxid} {time}"), TxnOp::CloseSession),
            _ => continue,
        };
        let txn = Txn { header: TxnHeader { session: SessionId(session), cxid: 1, zxid: Zxid(zxid), time_ms: time }, op };
        let mut triggers = Vec::new();
        tree.apply(&txn, &mut triggers);
        writeln!(text, "{line}").expect("string");
        lines.push(format!("{zxid} {}", tree.digest()));
        zxid += 1;
        applied += 1;
    }
    lines.extend(tree.digest_log().map(|d| format!("log {} {}", d.zxid.0, d.digest)));
    (text, lines)
}

#[test]
fn digest_after_every_txn_equals_zookeeper_38s() {
    let Some((dir, cp)) = common::compile_java("digest_after_every_txn_equals_zookeeper_38s", "DigestCheck.java") else {
        return;
    };
    let mut tree = DataTree::new();
    let (text, ours) = script(&mut tree, 1000);
    assert_eq!(tree.digest(), tree.recompute_digest());
    assert!(ours.iter().filter(|l| l.starts_with("log ")).count() >= 7, "the log has an entry per 128 zxids");

    let script_path = dir.path().join("txns.txt");
    std::fs::write(&script_path, &text).expect("write script");
    let out = Command::new("timeout")
        .args(["120", "java", "-Dzookeeper.extendedTypesEnabled=true", "-cp", &cp, "DigestCheck"])
        .arg(&script_path)
        .output()
        .expect("run java");
    let zk = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "DigestCheck failed:\n{zk}\n{}", String::from_utf8_lossy(&out.stderr));
    let zk: Vec<&str> = zk.lines().collect();
    assert_eq!(zk.len(), ours.len(), "line counts differ");
    for (i, (z, o)) in zk.iter().zip(&ours).enumerate() {
        let txn = if i == 0 { "(the fresh tree)" } else { text.lines().nth(i - 1).unwrap_or("(log)") };
        assert_eq!(z, o, "ZooKeeper vs arbor after txn {i}: {txn}");
    }
}

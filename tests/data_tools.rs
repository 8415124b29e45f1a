//! `arbor log dump`, `arbor snapshot dump` and `arbor data check` on the dataDir of a real
//! server that was written to and then SIGKILLed; then on damaged copies of it (a byte
//! flipped mid-log, a torn tail, a damaged snapshot): `data check` exits non-zero, names the
//! damage and says what recovery would do, and a server started on the copy does exactly
//! that. The tools never change a byte.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{four_letter, free_port, Node, RawClient};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");
/// Znodes the test writes (each a create, every third also a setData): with the
/// createSession that is 161 txns, so the 4th snapshot is at 0xa0 ...
const WRITES: usize = 120;
/// ... and these creates (/t00../t19) are in the last log segment, after it.
const TAIL: usize = 20;

fn arbor(args: &[&str]) -> Output {
    Command::new(ARBOR).args(args).stdin(Stdio::null()).output().expect("run arbor")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every file of a directory and its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().to_string(), fs::read(e.path()).expect("read")))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for (name, bytes) in files(from) {
        fs::write(to.join(name), bytes).expect("copy");
    }
}

/// A server that wrote `WRITES` znodes (snapshots every 40 txns, so there are several
/// snapshots and segments), then was SIGKILLed.
/// Returns the node (killed), its dataDir and how many `/tNN` tail creates it wrote: at least
/// `TAIL`, and more until three of them come after the last snapshot started (snapCount's
/// random draw can put a snapshot at the very end; the damage tests need records after it).
fn written_data_dir() -> (Node, PathBuf, usize) {
    let mut node = Node::start_standalone(&["snapCount=40"]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    for i in 0..WRITES {
        let data: Vec<u8> = if i % 5 == 0 { vec![0, 0xff, i as u8] } else { format!("value {i}").into_bytes() };
        c.create(&format!("/k{i:03}"), Some(&data), 0).expect("create");
        if i % 3 == 0 {
            c.set_data(&format!("/k{i:03}"), b"changed", 0).expect("set");
        }
    }
    let mut tail = 0;
    let mut since_snapshot = 0;
    while tail < TAIL || since_snapshot < 3 {
        assert!(tail < 80, "no quiet stretch of 3 writes without a snapshot start");
        let started = node.log().matches("snapshot started").count();
        c.create(&format!("/t{tail:02}"), Some(b"tail"), 0).expect("create");
        tail += 1;
        since_snapshot = if node.log().matches("snapshot started").count() == started { since_snapshot + 1 } else { 0 };
    }
    // Let a snapshot being written finish, so the complete ones are known (recovery would
    // just delete a half-written one).
    common::wait_for(Duration::from_secs(20), "snapshots to finish", || {
        let log = node.log();
        (log.matches("snapshot started").count() == log.matches("snapshot done").count()).then_some(())
    });
    node.kill9();
    let data = node.data_dir.clone();
    (node, data, tail)
}

/// `arbor node 1` on a config whose dataDir is `data`: the child and its client port.
fn start_on(dir: &Path, data: &Path) -> (Child, u16, PathBuf) {
    let port = free_port();
    let cfg = dir.join("zoo.cfg");
    fs::write(&cfg, format!("dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n", data.display()))
        .expect("cfg");
    let log = dir.join("node.log");
    let out = fs::File::create(&log).expect("log");
    let child = Command::new(ARBOR)
        .args(["node", "1"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("spawn");
    (child, port, log)
}

/// Wait until the node answers (Some) or exits (None).
fn wait_up(child: &mut Child, port: u16) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if four_letter(&addr, "ruok").is_ok_and(|s| s == "imok") {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("node neither served nor exited within 20 s");
}

fn stop(mut child: Child) {
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
    }
    let _ = child.wait();
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn newest_snapshot(dir: &Path) -> (i64, PathBuf) {
    snapshots(dir).pop().expect("a snapshot")
}

fn snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut v: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let z = i64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()?;
            Some((z, e.path()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn tools_read_a_real_data_dir_and_change_nothing() {
    let (_node, data, tail) = written_data_dir();
    let before = files(&data);
    let d = data.to_str().expect("utf8 path");

    let dump = arbor(&["log", "dump", d]);
    assert!(dump.status.success(), "{}", text(&dump));
    let out = String::from_utf8_lossy(&dump.stdout);
    for i in [0, 57, WRITES - 1] {
        assert!(out.contains(&format!(" create /k{i:03} ")), "no create of /k{i:03} in:\n{out}");
    }
    assert!(out.contains("data=0x00ff00 "), "binary data shown as hex:\n{out}");
    assert!(out.contains("setData /k003 data=\"changed\" version=1"), "{out}");
    // One createSession + the creates + WRITES/3 setData; no closeSession (kill9).
    let txns = out.lines().filter(|l| l.contains(" zxid 0x")).count();
    assert_eq!(txns, 1 + WRITES + WRITES.div_ceil(3) + tail, "{out}");

    let json = arbor(&["log", "dump", "--json", d]);
    assert!(json.status.success(), "{}", text(&json));
    let lines = json_lines(&json);
    let (summary, txns_json) = lines.split_last().expect("lines");
    assert_eq!(summary["summary"]["txns"], txns as u64);
    let zxids: Vec<i64> = txns_json
        .iter()
        .map(|t| i64::from_str_radix(t["zxid"].as_str().expect("zxid").trim_start_matches("0x"), 16).expect("hex"))
        .collect();
    assert!(zxids.windows(2).all(|w| w[0] < w[1]), "zxids increase");
    let create = txns_json.iter().find(|t| t["path"] == "/k001").expect("create /k001");
    assert_eq!(create["type"], "create");
    assert_eq!(create["data"]["text"], "value 1");

    // One segment file on its own.
    let seg = txns_json[0]["segment"].as_str().expect("segment");
    let one = arbor(&["log", "dump", data.join(seg).to_str().expect("utf8")]);
    assert!(one.status.success() && String::from_utf8_lossy(&one.stdout).contains("createSession"), "{}", text(&one));

    let (snap_zxid, snap) = newest_snapshot(&data);
    let sd = arbor(&["snapshot", "dump", "--data", "16", snap.to_str().expect("utf8")]);
    assert!(sd.status.success(), "{}", text(&sd));
    let s = String::from_utf8_lossy(&sd.stdout);
    assert!(s.lines().next().is_some_and(|l| l.contains(&format!("zxid {snap_zxid:#x}")) && l.split("digest ").nth(1).is_some_and(|d| d.trim().parse::<i64>().is_ok())), "{s}");
    assert!(s.contains("/k000 ") && s.contains("data=\"changed\""), "{s}");
    let sj = arbor(&["snapshot", "dump", "--json", snap.to_str().expect("utf8")]);
    let doc: serde_json::Value = serde_json::from_slice(&sj.stdout).expect("snapshot json");
    assert_eq!(doc["node_count"].as_u64().expect("count") as usize, doc["nodes"].as_array().expect("nodes").len());
    assert!(doc["nodes"].as_array().expect("nodes").iter().any(|n| n["path"] == "/k000" && n["stat"]["version"] == 1));

    let check = arbor(&["data", "check", d]);
    let ct = text(&check);
    assert_eq!(check.status.code(), Some(0), "{ct}");
    assert!(ct.contains("verdict  clean"), "{ct}");
    assert!(!ct.contains("DAMAGED"), "{ct}");

    assert!(before == files(&data), "the tools changed the data directory");

    // The same digest for the same tree: a server restarted on it snapshots the same state.
    let digest = |o: &Output| {
        String::from_utf8_lossy(&o.stdout).lines().next().and_then(|l| l.split("digest ").nth(1)).map(str::to_string)
    };
    let copy = tempfile::tempdir().expect("tmp");
    fs::copy(&snap, copy.path().join("renamed.snap")).expect("copy");
    let again = arbor(&["snapshot", "dump", copy.path().join("renamed.snap").to_str().expect("utf8")]);
    assert_eq!(digest(&again), digest(&sd), "{}", text(&again));
}

/// Each segment's records (zxid, byte offset), from `log dump --json`, in log order.
fn records(data: &Path) -> Vec<(PathBuf, Vec<(i64, u64)>)> {
    let j = arbor(&["log", "dump", "--json", data.to_str().expect("utf8")]);
    let mut out: Vec<(PathBuf, Vec<(i64, u64)>)> = Vec::new();
    for t in json_lines(&j).iter().filter(|t| t.get("summary").is_none()) {
        let seg = data.join(t["segment"].as_str().expect("segment"));
        let zxid = i64::from_str_radix(t["zxid"].as_str().expect("zxid").trim_start_matches("0x"), 16).expect("hex");
        let rec = (zxid, t["offset"].as_u64().expect("offset"));
        match out.last_mut() {
            Some((p, v)) if *p == seg => v.push(rec),
            _ => out.push((seg, vec![rec])),
        }
    }
    out
}

/// The last segment and its records' offsets.
fn record_offsets(data: &Path) -> (PathBuf, Vec<u64>) {
    let (seg, recs) = records(data).pop().expect("a segment");
    (seg, recs.iter().map(|r| r.1).collect())
}

#[test]
fn damage_is_named_and_recovery_does_what_check_says() {
    let (_node, data, tail) = written_data_dir();
    let work = tempfile::tempdir().expect("tmp");

    // 1. A byte flipped in the middle of the last segment, valid records after it: recovery
    //    must refuse, naming the same file and offset as the check.
    let d1 = work.path().join("flip");
    copy_dir(&data, &d1);
    // The fullest segment recovery replays from (records above the newest snapshot).
    let (newest_zxid, _) = newest_snapshot(&d1);
    let (seg, recs) = records(&d1)
        .into_iter()
        .filter(|(_, r)| r.iter().any(|(z, _)| *z > newest_zxid))
        .max_by_key(|(_, r)| r.len())
        .expect("a segment after the newest snapshot");
    assert!(recs.len() >= 3, "records after snapshot {newest_zxid:#x}: {recs:?}");
    let mid = recs[recs.len() / 2].1;
    let mut bytes = fs::read(&seg).expect("read");
    bytes[mid as usize + 20] ^= 0x40;
    fs::write(&seg, &bytes).expect("write");
    let check = arbor(&["data", "check", d1.to_str().expect("utf8")]);
    let ct = text(&check);
    assert_eq!(check.status.code(), Some(2), "{ct}");
    let named = format!("{}: corrupt at byte offset {mid}", seg.display());
    assert!(ct.contains(&named) && ct.contains("CRC32C mismatch"), "check does not name {named:?}:\n{ct}");
    assert!(ct.contains("would REFUSE to start"), "{ct}");
    let before = files(&d1);
    let (mut child, port, log) = start_on(&work.path().join("n1").tap_mkdir(), &d1);
    assert!(wait_up(&mut child, port).is_none(), "a server started on a log damaged mid-way");
    let nl = fs::read_to_string(&log).expect("log");
    assert!(nl.contains(&named), "the server does not name {named:?}:\n{nl}");
    let mut after = files(&d1);
    let mut before = before;
    // Any start drops the prepared spare segment and half-written snapshots; nothing else
    // may change.
    before.retain(|name, _| name != "log.next" && !name.ends_with(".tmp"));
    after.retain(|name, _| name != "log.next" && !name.ends_with(".tmp"));
    assert!(before == after, "a refused recovery changed files");

    // 2. A torn tail: the last record cut short. Check says recovery truncates it there;
    //    recovery does, keeps every earlier txn, and the directory is then clean.
    let d2 = work.path().join("torn");
    copy_dir(&data, &d2);
    let (seg, offs) = record_offsets(&d2);
    let last = *offs.last().expect("a record");
    let f = fs::OpenOptions::new().write(true).open(&seg).expect("open");
    f.set_len(last + 10).expect("truncate");
    drop(f);
    let check = arbor(&["data", "check", d2.to_str().expect("utf8")]);
    let ct = text(&check);
    assert_eq!(check.status.code(), Some(1), "{ct}");
    let plan = format!("truncate {} at byte offset {last} (", seg.display());
    assert!(ct.contains(&plan), "check does not say {plan:?}:\n{ct}");
    let (mut child, port, log) = start_on(&work.path().join("n2").tap_mkdir(), &d2);
    assert!(wait_up(&mut child, port).is_some(), "{}", fs::read_to_string(&log).unwrap_or_default());
    let nl = fs::read_to_string(&log).expect("log");
    assert!(nl.contains(&format!("offset={last} ")) && nl.contains("torn"), "{nl}");
    let mut c = RawClient::connect(&format!("127.0.0.1:{port}"), 30_000);
    assert!(c.exists("/t18", false).is_ok(), "a txn before the torn one was lost");
    assert!(c.exists("/t19", false).is_err(), "the torn txn (create /t19) was not truncated");
    stop(child);
    let check = arbor(&["data", "check", d2.to_str().expect("utf8")]);
    assert_eq!(check.status.code(), Some(0), "after recovery:\n{}", text(&check));

    // 3. The newest snapshot damaged: recovery skips it for the previous one and replays
    //    more of the log, exactly as check predicts.
    let d3 = work.path().join("snap");
    copy_dir(&data, &d3);
    let snaps = snapshots(&d3);
    assert!(snaps.len() >= 2, "{snaps:?}");
    let (_, newest) = snaps.last().expect("snapshot").clone();
    let (prev_zxid, prev) = snaps[snaps.len() - 2].clone();
    let mut bytes = fs::read(&newest).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&newest, &bytes).expect("write");
    let check = arbor(&["data", "check", d3.to_str().expect("utf8")]);
    let ct = text(&check);
    assert_eq!(check.status.code(), Some(1), "{ct}");
    assert!(ct.contains(&format!("DAMAGED  {}: corrupt at byte offset", newest.display())), "{ct}");
    let want = format!("would load {} (zxid {prev_zxid:#x}) after skipping 1 damaged newer snapshot(s), replay ", prev.display());
    let replay: u64 = ct
        .split(&want)
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("check does not say {want:?}:\n{ct}"));
    let (mut child, port, log) = start_on(&work.path().join("n3").tap_mkdir(), &d3);
    assert!(wait_up(&mut child, port).is_some(), "{}", fs::read_to_string(&log).unwrap_or_default());
    let nl = fs::read_to_string(&log).expect("log");
    let recovered = nl.lines().find(|l| l.contains(" recovered ")).expect("recovered line");
    assert!(
        recovered.contains(&format!("snapshot_zxid={prev_zxid:#x}")) && recovered.contains(&format!("txns_replayed={replay} ")),
        "check said {prev_zxid:#x} + {replay} txns; the server: {recovered}"
    );
    let mut c = RawClient::connect(&format!("127.0.0.1:{port}"), 30_000);
    assert!(c.exists(&format!("/t{:02}", tail - 1), false).is_ok(), "the last write is back");
    stop(child);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        fs::create_dir_all(&self).expect("mkdir");
        self
    }
}

//! A config directory laid out as a ZooKeeper operator's: one conf dir per server with its
//! own zoo.cfg (properties syntax: `key value`, `key: value`, `!` comments, a `\`
//! continuation), `clientPort`, `dynamicConfigFile=` naming a `zoo.cfg.dynamic.100000000`
//! with the `server.N` lines as ZooKeeper writes them (`…:participant;0.0.0.0:port`), and
//! the id in `dataDir/myid`. `arbor node CONFIG` (no id) brings the ensemble up and it serves.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{four_letter, free_port, RawClient};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");

struct Servers {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGKILL);
            }
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for l in &self.logs {
                eprintln!("--- {} ---\n{}", l.display(), fs::read_to_string(l).unwrap_or_default());
            }
        }
    }
}

fn mode(port: u16) -> Option<String> {
    let s = four_letter(&std::net::SocketAddr::from(([127, 0, 0, 1], port)), "srvr").ok()?;
    s.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_string())
}

/// conf1..conf3 and data1..data3 under `base`; returns (conf paths, client ports).
fn zookeeper_layout(base: &Path) -> (Vec<PathBuf>, Vec<u16>) {
    let ids = [1u64, 2, 3];
    let clients: Vec<u16> = ids.iter().map(|_| free_port()).collect();
    let peers: Vec<(u16, u16)> = ids.iter().map(|_| (free_port(), free_port())).collect();
    let dynamic: String = ids
        .iter()
        .zip(&peers)
        .zip(&clients)
        .map(|((id, (q, e)), c)| format!("server.{id}=127.0.0.1:{q}:{e}:participant;0.0.0.0:{c}\n"))
        .collect();
    let mut confs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let conf = base.join(format!("conf{id}"));
        let data = base.join(format!("data{id}"));
        fs::create_dir_all(&conf).expect("conf dir");
        fs::create_dir_all(&data).expect("data dir");
        fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
        let dyn_file = conf.join("zoo.cfg.dynamic.100000000");
        fs::write(&dyn_file, &dynamic).expect("dynamic");
        let cfg = format!(
            "# The number of milliseconds of each tick\n\
             tickTime 200\n\
             ! Java properties comment\n\
             initLimit: 10\n\
             syncLimit=5\n\
             dataDir={}\n\
             clientPort={}\n\
             4lw.commands.whitelist=srvr, \\\n    ruok, mntr, conf\n\
             reconfigEnabled=false\n\
             dynamicConfigFile={}\n",
            data.display(),
            clients[i],
            dyn_file.display()
        );
        let path = conf.join("zoo.cfg");
        fs::write(&path, cfg).expect("zoo.cfg");
        confs.push(path);
    }
    (confs, clients)
}

fn start(base: &Path, confs: &[PathBuf]) -> Servers {
    let mut s = Servers { children: Vec::new(), logs: Vec::new() };
    for (i, conf) in confs.iter().enumerate() {
        let log = base.join(format!("server{}.log", i + 1));
        let f = fs::File::create(&log).expect("log");
        // From another working directory, with only the config path: the id is in myid.
        let child = Command::new(ARBOR)
            .arg("node")
            .arg(conf)
            .current_dir(base)
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup"))
            .stderr(f)
            .spawn()
            .expect("spawn");
        s.children.push(child);
        s.logs.push(log);
    }
    s
}

#[test]
fn a_zookeeper_operators_config_dirs_bring_up_an_ensemble() {
    let base = tempfile::tempdir().expect("tmp");
    let (confs, clients) = zookeeper_layout(base.path());
    let servers = start(base.path(), &confs);
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let modes: Vec<Option<String>> = clients.iter().map(|p| mode(*p)).collect();
        let leaders: Vec<usize> = (0..3).filter(|i| modes[*i].as_deref() == Some("leader")).collect();
        if leaders.len() == 1 && modes.iter().filter(|m| m.as_deref() == Some("follower")).count() == 2 {
            break leaders[0];
        }
        assert!(Instant::now() < deadline, "no leader and two followers within 30 s: {modes:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // A write through a follower is read back on every server.
    let follower = (leader + 1) % 3;
    let mut c = RawClient::connect(&format!("127.0.0.1:{}", clients[follower]), 30_000);
    c.create("/layout", Some(b"zk-style"), 0).expect("create");
    for p in &clients {
        let mut r = RawClient::connect(&format!("127.0.0.1:{p}"), 30_000);
        let mut tries = 0;
        loop {
            match r.get_data("/layout", false) {
                Ok((d, _)) => {
                    assert_eq!(d.as_deref(), Some(&b"zk-style"[..]));
                    break;
                }
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("server on {p}: getData /layout: error {e}"),
            }
        }
    }
    // The membership is what the dynamic file says, in ZooKeeper's form.
    let (cfg_data, _) = c.get_data("/zookeeper/config", false).expect("config node");
    let cfg_text = String::from_utf8(cfg_data.unwrap_or_default()).expect("utf8");
    for (i, p) in clients.iter().enumerate() {
        assert!(cfg_text.contains(&format!("server.{}=127.0.0.1:", i + 1)), "{cfg_text}");
        assert!(cfg_text.contains(&format!(":participant;0.0.0.0:{p}")), "{cfg_text}");
    }
    // Each server knows its id from myid: every log line says so.
    for (i, log) in servers.logs.iter().enumerate() {
        let text = fs::read_to_string(log).expect("log");
        let tag = format!("[myid:{}]", i + 1);
        assert!(text.lines().all(|l| l.contains(&tag)), "{}:\n{text}", log.display());
        assert!(!text.contains("reconfigEnabled"), "reconfigEnabled is a known key now: {text}");
    }
}

#[test]
fn myid_and_the_command_line_must_agree() {
    let base = tempfile::tempdir().expect("tmp");
    let (confs, _) = zookeeper_layout(base.path());
    let out = Command::new(ARBOR).args(["node", "2"]).arg(&confs[0]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("data1/myid says this is server 1, the command line says 2"), "{err}");

    fs::remove_file(base.path().join("data1/myid")).expect("rm myid");
    let out = Command::new(ARBOR).arg("node").arg(&confs[0]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no server id given and no myid in dataDir"), "{err}");

    fs::write(base.path().join("data1/myid"), "one\n").expect("bad myid");
    let out = Command::new(ARBOR).arg("node").arg(&confs[0]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("myid: expected a server id (1..=255), found \"one\""), "{err}");
}

#[test]
fn a_bad_line_in_the_dynamic_file_names_that_file_and_line() {
    let base = tempfile::tempdir().expect("tmp");
    let (confs, _) = zookeeper_layout(base.path());
    let dyn_file = base.path().join("conf1/zoo.cfg.dynamic.100000000");
    let mut text = fs::read_to_string(&dyn_file).expect("read");
    text = text.replacen(":participant;", ":particpant;", 1);
    fs::write(&dyn_file, text).expect("write");
    let out = Command::new(ARBOR).arg("node").arg(&confs[0]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let want = format!("{}:1: server.1: bad role \"particpant\"", dyn_file.display());
    assert!(err.contains(&want), "{err}");
}

//! Fault tests of the real binary: a 3-server ensemble in network namespaces, faults
//! injected while clients write, then every server checked and the clients' history run
//! through `arbor::lincheck`.
//!
//! Topology: namespaces `arbor<pid>n1..n3` each hold one server (10.199.0.{1,2,3}, the same
//! ports in each) on a veth whose peer sits on a bridge in `arbor<pid>b`; the test's client
//! threads enter that bridge namespace with setns(2) (network namespaces are per thread), so
//! nothing of this reaches the host's network. Servers run as `ip netns exec NS arbor node`
//! (ip execs, so the PID is arbor's) and are signalled by that PID only.
//!
//! Faults, one after another, each bounded: the leader cut off without FIN (its bridge-side
//! veth down), a one-way partition (nftables drops the leader's outbound packets), packet
//! loss (nftables `numgen random`; delay too when tc's netem qdisc exists, else a notice),
//! SIGSTOP/SIGCONT of the leader, and a kill -9 / restart loop. After healing: each path gets
//! one final write, every server returns it after `sync`, all servers list the same children
//! with the same Stat, and the history (invocation and completion from one monotonic clock,
//! unknown outcome on timeout or connection loss) passes the checker.
//!
//! Needs root and iproute2 (+ nftables for the partition and loss scenarios). When the
//! machine cannot make namespaces the test prints "SKIPPED: cannot create network
//! namespaces: <reason>" and passes, unless ARBOR_REQUIRE_NETNS=1.

mod common;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arbor::client::{Client, ClientError, ClientOptions};
use arbor::jute::Request;
use arbor::lincheck::{self, Entry, Op, Outcome};

const SERVERS: u64 = 3;
const PATHS: usize = 20;
const CLIENTS: u64 = 4;
const PARENT: &str = "/lin";
const CLIENT_PORT: u16 = 2181;
/// Every wait for a settled ensemble is bounded by this.
const SETTLE: Duration = Duration::from_secs(40);

/// Written to the process's stderr directly: the test harness captures `eprintln!` of a
/// passing test, and a skip must be visible.
fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn require() -> bool {
    std::env::var("ARBOR_REQUIRE_NETNS").is_ok_and(|v| v == "1")
}

/// Runs a command; Err with its stderr when it fails.
fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd).args(args).stdin(Stdio::null()).output().map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn must(cmd: &str, args: &[&str]) {
    if let Err(e) = run(cmd, args) {
        panic!("{e}");
    }
}

/// The namespaces and their links; deleting a namespace removes its veths. Dropped last.
struct Net {
    prefix: String,
    made: Vec<String>,
}

impl Net {
    fn bridge(&self) -> String {
        format!("{}b", self.prefix)
    }
    fn node(&self, id: u64) -> String {
        format!("{}n{id}", self.prefix)
    }

    fn add(&mut self, name: String) -> Result<(), String> {
        run("ip", &["netns", "add", &name])?;
        self.made.push(name);
        Ok(())
    }

    fn build() -> Result<Net, String> {
        remove_stale();
        let mut net = Net { prefix: format!("arbor{}", std::process::id()), made: Vec::new() };
        let b = net.bridge();
        net.add(b.clone())?;
        run("ip", &["-n", &b, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &b, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &b, "addr", "add", "10.199.0.254/24", "dev", "br0"])?;
        run("ip", &["-n", &b, "link", "set", "br0", "up"])?;
        for id in 1..=SERVERS {
            let n = net.node(id);
            net.add(n.clone())?;
            let peer = format!("v{id}");
            run("ip", &["-n", &n, "link", "add", "eth0", "type", "veth", "peer", "name", &peer, "netns", &b])?;
            run("ip", &["-n", &b, "link", "set", &peer, "master", "br0", "up"])?;
            run("ip", &["-n", &n, "addr", "add", &format!("10.199.0.{id}/24"), "dev", "eth0"])?;
            run("ip", &["-n", &n, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &n, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Moves the calling thread into the bridge namespace (sockets it opens live there).
    fn enter_bridge(&self) {
        let path = format!("/var/run/netns/{}", self.bridge());
        let f = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a valid namespace fd; it changes only this thread's namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
    }

    fn exec(&self, id: u64, cmd: &str, args: &[&str]) -> Result<(), String> {
        let ns = self.node(id);
        let mut all = vec!["netns", "exec", ns.as_str(), cmd];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// nftables table `arbor` in server `id`'s namespace with one output rule.
    fn drop_out(&self, id: u64, rule: &str) {
        self.exec(id, "nft", &["add", "table", "inet", "arbor"]).unwrap_or_else(|e| panic!("{e}"));
        self.exec(id, "nft", &["add chain inet arbor out { type filter hook output priority 0; policy accept; }"])
            .unwrap_or_else(|e| panic!("{e}"));
        self.exec(id, "nft", &[&format!("add rule inet arbor out oifname \"eth0\" {rule}")]).unwrap_or_else(|e| panic!("{e}"));
    }

    fn heal(&self, id: u64) {
        let _ = self.exec(id, "nft", &["delete", "table", "inet", "arbor"]);
        let _ = self.exec(id, "tc", &["qdisc", "del", "dev", "eth0", "root"]);
        let _ = run("ip", &["-n", &self.bridge(), "link", "set", &format!("v{id}"), "up"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in self.made.iter().rev() {
            if let Err(e) = run("ip", &["netns", "del", n]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Deletes namespaces a killed earlier run of this test left (`arbor<PID>b`, `arbor<PID>n1`,
/// ... whose PID is gone); Drop guards do not run on SIGKILL.
fn remove_stale() {
    let Ok(dir) = fs::read_dir("/var/run/netns") else { return };
    for name in dir.flatten().filter_map(|e| e.file_name().into_string().ok()) {
        let Some(rest) = name.strip_prefix("arbor") else { continue };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let suffix = &rest[digits.len()..];
        let ours = matches!(suffix, "b" | "n1" | "n2" | "n3" | "probe");
        if ours && !digits.is_empty() && !std::path::Path::new(&format!("/proc/{digits}")).exists() {
            eprintln!("removing namespace {name} left by an earlier run");
            let _ = run("ip", &["netns", "del", &name]);
        }
    }
}

/// Can this machine make namespaces (and veths and bridges)? Err: why not.
fn probe() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    let name = format!("arbor{}probe", std::process::id());
    run("ip", &["netns", "add", &name])?;
    let r = run("ip", &["-n", &name, "link", "add", "br0", "type", "bridge"])
        .and_then(|_| run("ip", &["-n", &name, "link", "add", "a0", "type", "veth", "peer", "name", "a1"]));
    let _ = run("ip", &["netns", "del", &name]);
    r
}

/// The three servers; dropped before `Net` (SIGCONT then SIGKILL, by PID).
struct Servers {
    dir: tempfile::TempDir,
    cfg: String,
    children: Vec<Option<Child>>,
    net_prefix: String,
}

impl Servers {
    fn start(net: &Net) -> Servers {
        let dir = tempfile::Builder::new().prefix("arbor-netns-").tempdir().expect("temp dir");
        let mut cfg = String::from("tickTime=200\ninitLimit=10\nsyncLimit=5\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n");
        cfg.push_str(&format!("dataDir={}/{{id}}\n", dir.path().display()));
        for id in 1..=SERVERS {
            cfg.push_str(&format!("server.{id}=10.199.0.{id}:2888:3888;10.199.0.{id}:{CLIENT_PORT}\n"));
        }
        let cfg_path = dir.path().join("zoo.cfg");
        fs::write(&cfg_path, cfg).expect("write zoo.cfg");
        let mut s = Servers { cfg: cfg_path.display().to_string(), dir, children: Vec::new(), net_prefix: net.prefix.clone() };
        for id in 1..=SERVERS {
            s.children.push(None);
            s.spawn(id);
        }
        s
    }

    fn spawn(&mut self, id: u64) {
        let log = File::options().create(true).append(true).open(self.log_path(id)).expect("log");
        let err = log.try_clone().expect("log");
        let ns = format!("{}n{id}", self.net_prefix);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_arbor"), "node", &id.to_string(), &self.cfg]);
        // SAFETY: prctl is async-signal-safe. The server dies with the thread that started it
        // (the test's), even when the test process is SIGKILLed and no Drop runs.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn arbor");
        self.children[(id - 1) as usize] = Some(child);
    }

    fn log_path(&self, id: u64) -> std::path::PathBuf {
        self.dir.path().join(format!("arbor-{id}.log"))
    }

    fn signal(&self, id: u64, sig: i32) {
        if let Some(c) = &self.children[(id - 1) as usize] {
            signal(c, sig);
        }
    }

    fn kill9(&mut self, id: u64) {
        if let Some(mut c) = self.children[(id - 1) as usize].take() {
            signal(&c, libc::SIGKILL);
            let _ = c.wait();
        }
    }

    fn tails(&self) -> String {
        (1..=SERVERS)
            .map(|id| {
                let log = fs::read_to_string(self.log_path(id)).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                format!("--- server {id} ---\n{}\n", lines[lines.len().saturating_sub(30)..].join("\n"))
            })
            .collect()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for id in 1..=SERVERS {
            self.signal(id, libc::SIGCONT);
            self.kill9(id);
        }
        if thread::panicking() {
            eprintln!("{}", self.tails());
        }
    }
}

/// Signals our own, not yet reaped child by its PID (so the PID is still ours).
fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) with a PID we own; no memory is involved.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn addr(id: u64) -> SocketAddr {
    SocketAddr::from(([10, 199, 0, id as u8], CLIENT_PORT))
}

fn mode(id: u64) -> Option<String> {
    let out = common::four_letter(&addr(id), "srvr").ok()?;
    out.lines().find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
}

/// Waits until one server leads and the others follow (all three answering); the leader.
fn wait_settled(servers: &Servers) -> u64 {
    let deadline = Instant::now() + SETTLE;
    loop {
        let modes: Vec<Option<String>> = (1..=SERVERS).map(mode).collect();
        let leaders: Vec<u64> = (1..=SERVERS).filter(|i| modes[(*i - 1) as usize].as_deref() == Some("leader")).collect();
        if leaders.len() == 1 && modes.iter().all(|m| matches!(m.as_deref(), Some("leader" | "follower"))) {
            return leaders[0];
        }
        if Instant::now() > deadline {
            panic!("no settled ensemble within {SETTLE:?}: {modes:?}\n{}", servers.tails());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The history all clients append to, with one clock.
struct Recorder {
    base: Instant,
    entries: Mutex<Vec<Entry>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// Runs `f` and records it as `op` by `session`.
    fn record<T>(&self, session: u64, op: Op, f: impl FnOnce() -> Result<T, ClientError>, outcome: impl FnOnce(&T) -> Outcome) -> Result<T, ClientError> {
        let invoked = self.now();
        let r = f();
        // Completion strictly after invocation, even within one microsecond.
        let completed = self.now().max(invoked + 1);
        let entry = match &r {
            Ok(v) => Entry::done(session, invoked, completed, op, outcome(v)),
            Err(ClientError::Server(code)) => match known_error(*code) {
                Some(o) => Entry::done(session, invoked, completed, op, o),
                None => Entry::unknown(session, invoked, op),
            },
            Err(_) => Entry::unknown(session, invoked, op),
        };
        self.entries.lock().expect("history lock").push(entry);
        r
    }
}

fn known_error(code: i32) -> Option<Outcome> {
    match code {
        -101 => Some(Outcome::NoNode),
        -110 => Some(Outcome::NodeExists),
        -103 => Some(Outcome::BadVersion),
        _ => None,
    }
}

fn opts() -> ClientOptions {
    ClientOptions { session_timeout_ms: 4000, op_timeout: Duration::from_secs(3) }
}

fn path(k: usize) -> String {
    format!("{PARENT}/p{k:02}")
}

/// One client thread: its own session (a new one after expiry), spread over the servers,
/// random ops on the paths with unique data, until `stop`.
fn client_loop(net: &Net, rec: &Recorder, stop: &AtomicBool, t: u64) -> (u64, u64) {
    net.enter_bridge();
    let mut endpoints: Vec<SocketAddr> = (1..=SERVERS).map(addr).collect();
    endpoints.rotate_left((t % SERVERS) as usize);
    let mut rng = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let (mut ops, mut sessions) = (0u64, 0u64);
    let mut seen_version = [-1i32; PATHS];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut c) = Client::connect(&endpoints, opts()) else {
            thread::sleep(Duration::from_millis(200));
            continue;
        };
        sessions += 1;
        let session = t * 1000 + sessions;
        while !stop.load(Ordering::Relaxed) {
            let k = next(PATHS as u64) as usize;
            let p = path(k);
            let data = format!("c{t}-{ops}").into_bytes();
            ops += 1;
            let version = if next(2) == 0 { -1 } else { seen_version[k] };
            let r = match next(10) {
                0..=1 => rec.record(session, Op::Create { path: p.clone(), data: data.clone() }, || c.create(&p, &data, 0).map(|_| ()), |_| Outcome::Ok),
                2..=4 => rec
                    .record(session, Op::SetData { path: p.clone(), data: data.clone(), version }, || c.set_data(&p, &data, version), |s| Outcome::SetOk { version: s.version })
                    .map(|s| seen_version[k] = s.version),
                5 => rec.record(session, Op::Delete { path: p.clone(), version }, || c.delete(&p, version), |_| Outcome::Ok),
                _ => rec
                    .record(session, Op::GetData { path: p.clone() }, || c.get_data(&p, false), |(d, s)| Outcome::Data { data: d.clone().unwrap_or_default(), version: s.version })
                    .map(|(_, s)| seen_version[k] = s.version),
            };
            if matches!(r, Err(ClientError::SessionExpired)) {
                break;
            }
        }
        let _ = c.close();
    }
    (ops, sessions)
}

fn netem_available(net: &Net) -> Result<(), String> {
    let r = net.exec(1, "tc", &["qdisc", "add", "dev", "eth0", "root", "netem", "delay", "30ms", "10ms"]);
    let _ = net.exec(1, "tc", &["qdisc", "del", "dev", "eth0", "root"]);
    r
}

fn nft_available(net: &Net) -> Result<(), String> {
    net.exec(1, "nft", &["list", "tables"])
}

#[test]
fn faults_in_network_namespaces_keep_acknowledged_writes_and_a_linearizable_history() {
    if let Err(why) = probe() {
        assert!(!require(), "ARBOR_REQUIRE_NETNS=1 but cannot create network namespaces: {why}");
        notice(&format!("SKIPPED: cannot create network namespaces: {why}"));
        return;
    }
    let t0 = Instant::now();
    let net = Net::build().unwrap_or_else(|e| panic!("building the namespaces: {e}"));
    net.enter_bridge();
    let mut servers = Servers::start(&net);
    let leader = wait_settled(&servers);
    eprintln!("[netns] ensemble up in {:?}, leader {leader}", t0.elapsed());
    {
        let mut c = Client::connect(&[addr(1), addr(2), addr(3)], opts()).expect("connect");
        c.create(PARENT, b"", 0).expect("create parent");
    }
    let nft = nft_available(&net);
    if let Err(e) = &nft {
        assert!(!require(), "ARBOR_REQUIRE_NETNS=1 but nft does not work: {e}");
        notice(&format!("NOTICE: nft unavailable ({e}): the one-way partition and packet-loss scenarios are skipped"));
    }

    let rec = Arc::new(Recorder { base: Instant::now(), entries: Mutex::new(Vec::new()) });
    let stop = Arc::new(AtomicBool::new(false));
    let counts = thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let (net, rec, stop) = (&net, &rec, &stop);
                s.spawn(move || client_loop(net, rec, stop, t))
            })
            .collect();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_faults(&net, &mut servers, nft.is_ok())));
        stop.store(true, Ordering::Relaxed);
        let counts: Vec<(u64, u64)> = handles.into_iter().map(|h| h.join().expect("client thread")).collect();
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
        counts
    });
    for id in 1..=SERVERS {
        net.heal(id);
    }
    let leader = wait_settled(&servers);
    eprintln!("[netns] faults done at {:?}; clients (ops, sessions): {counts:?}; leader {leader}", t0.elapsed());

    verify(&rec, &servers);
    eprintln!("[netns] total {:?}", t0.elapsed());
}

/// The fault scenarios, one after another, each healed before the next.
fn run_faults(net: &Net, servers: &mut Servers, nft: bool) {
    let warm = Duration::from_secs(2);
    thread::sleep(warm);

    let l = wait_settled(servers);
    eprintln!("[netns] partition leader {l} (veth down, no FIN) for 4 s");
    must("ip", &["-n", &net.bridge(), "link", "set", &format!("v{l}"), "down"]);
    thread::sleep(Duration::from_secs(4));
    net.heal(l);
    wait_settled(servers);

    if nft {
        let l = wait_settled(servers);
        eprintln!("[netns] one-way partition: leader {l}'s outbound dropped for 4 s");
        net.drop_out(l, "drop");
        thread::sleep(Duration::from_secs(4));
        net.heal(l);
        wait_settled(servers);

        match netem_available(net) {
            Ok(()) => eprintln!("[netns] netem: 30 ms ± 10 ms delay on every server"),
            Err(e) => notice(&format!("NOTICE: tc netem unavailable ({e}): packet delay skipped, loss via nftables only")),
        }
        eprintln!("[netns] 10% outbound packet loss on every server for 6 s");
        for id in 1..=SERVERS {
            let _ = net.exec(id, "tc", &["qdisc", "add", "dev", "eth0", "root", "netem", "delay", "30ms", "10ms"]);
            net.drop_out(id, "numgen random mod 100 < 10 drop");
        }
        thread::sleep(Duration::from_secs(6));
        for id in 1..=SERVERS {
            net.heal(id);
        }
        wait_settled(servers);
    }

    let l = wait_settled(servers);
    eprintln!("[netns] SIGSTOP leader {l} for 4 s");
    servers.signal(l, libc::SIGSTOP);
    thread::sleep(Duration::from_secs(4));
    servers.signal(l, libc::SIGCONT);
    wait_settled(servers);

    for round in 0..5 {
        let l = wait_settled(servers);
        // Alternate the leader and a follower: both paths of recovery.
        let victim = if round % 2 == 0 { l } else { l % SERVERS + 1 };
        eprintln!("[netns] kill -9 server {victim} (round {round}), restart after 1 s");
        servers.kill9(victim);
        thread::sleep(Duration::from_secs(1));
        servers.spawn(victim);
        thread::sleep(Duration::from_millis(500));
    }
    wait_settled(servers);
    thread::sleep(warm);
}

/// After healing: one final write per path, read back from every server after sync; the
/// trees equal; the whole history checked.
fn verify(rec: &Recorder, servers: &Servers) {
    const VERIFIER: u64 = 999_000;
    let mut finals = Vec::new();
    {
        let mut c = Client::connect(&[addr(1), addr(2), addr(3)], opts()).expect("verifier connect");
        for k in 0..PATHS {
            let p = path(k);
            let data = format!("final-{k}").into_bytes();
            let set = rec.record(VERIFIER, Op::SetData { path: p.clone(), data: data.clone(), version: -1 }, || c.set_data(&p, &data, -1), |s| Outcome::SetOk { version: s.version });
            let version = match set {
                Ok(s) => s.version,
                Err(ClientError::Server(-101)) => {
                    let data = format!("final-{k}-created").into_bytes();
                    rec.record(VERIFIER, Op::Create { path: p.clone(), data: data.clone() }, || c.create(&p, &data, 0), |_| Outcome::Ok)
                        .unwrap_or_else(|e| panic!("final create {p}: {e}\n{}", servers.tails()));
                    finals.push((data, 0));
                    continue;
                }
                Err(e) => panic!("final setData {p}: {e}\n{}", servers.tails()),
            };
            finals.push((data, version));
        }
    }
    let mut trees = Vec::new();
    for id in 1..=SERVERS {
        let mut c = Client::connect(&[addr(id)], opts()).unwrap_or_else(|e| panic!("connect to server {id}: {e}"));
        c.call(Request::Sync { path: PARENT.into() }).unwrap_or_else(|e| panic!("sync at server {id}: {e}"));
        let (mut children, _) = c.get_children(PARENT).unwrap_or_else(|e| panic!("children at server {id}: {e}"));
        children.sort();
        let mut tree = vec![format!("children {children:?}")];
        for (k, (data, version)) in finals.iter().enumerate() {
            let p = path(k);
            let session = VERIFIER + id;
            let (d, stat) = rec
                .record(session, Op::GetData { path: p.clone() }, || c.get_data(&p, false), |(d, s)| Outcome::Data { data: d.clone().unwrap_or_default(), version: s.version })
                .unwrap_or_else(|e| panic!("final read of {p} at server {id}: {e}"));
            assert_eq!(
                (d.as_deref().unwrap_or_default(), stat.version),
                (data.as_slice(), *version),
                "server {id} misses the final write to {p}"
            );
            tree.push(format!("{p} {:?} czxid {:x} mzxid {:x} version {}", String::from_utf8_lossy(data), stat.czxid, stat.mzxid, stat.version));
        }
        trees.push(tree);
    }
    for id in 2..=SERVERS as usize {
        assert_eq!(trees[id - 1], trees[0], "server {id}'s tree differs from server 1's");
    }
    let history = rec.entries.lock().expect("history lock").clone();
    let unknown = history.iter().filter(|e| e.outcome.is_none()).count();
    let t = Instant::now();
    let verdict = lincheck::check(&history);
    eprintln!("[netns] history: {} ops, {unknown} unknown outcomes; checked in {:?}: {verdict:?}", history.len(), t.elapsed());
    if let Err(e) = verdict {
        panic!("the clients' history does not check out:\n{e}");
    }
    // The checker has teeth on this very history: the last acknowledged setData of a path
    // reported one version too high (as if an earlier write had been lost) must be caught.
    let mut planted = history;
    let i = planted.iter().rposition(|e| matches!(e.outcome, Some(Outcome::SetOk { .. }))).expect("an acknowledged setData");
    if let Some(Outcome::SetOk { version }) = planted[i].outcome.as_mut() {
        *version += 1;
    }
    let caught = lincheck::check(&planted);
    assert!(caught.as_ref().is_err_and(|e| e.is_violation()), "a planted inconsistency went unnoticed: {caught:?}");
}

//! The admin HTTP server against the real binary: ZooKeeper 3.8's command JSON (key sets and
//! value types compared with a real ZooKeeper's answers in tests/fixtures/zk-admin), bad
//! requests answered with 4xx while clients keep being served, idle admin connections
//! bothering nobody, the console's tree endpoint, and `/metrics` read with a Prometheus
//! text parser on a 3-node ensemble whose values must move with the writes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;
use serde_json::Value;

fn admin_node(extra: &[&str]) -> (Node, String) {
    let port = free_port();
    let mut lines = vec!["admin.serverAddress=127.0.0.1".to_string(), format!("admin.serverPort={port}")];
    lines.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let node = Node::start_standalone(&refs);
    (node, format!("127.0.0.1:{port}"))
}

/// ZooKeeper's recorded answers, kept in the repository (copied from ../shared/peers/zk-admin)
/// so that the test does not depend on where the checkout sits.
fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zk-admin")
}

/// A real ZooKeeper 3.8's answer to `/commands/<file>` (see zk-admin/README.md).
fn reference(file: &str) -> serde_json::Map<String, Value> {
    let p = fixtures_dir().join(format!("{file}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        other => panic!("{}: not a JSON object: {other:?}", p.display()),
    }
}

/// The JSON type of a value, integers apart from other numbers (ZooKeeper writes longs
/// and doubles differently: 0 vs 0.0).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `ours` has every key of `zk` but the `absent` ones (what arbor does not measure), no key
/// ZooKeeper does not have but the `extra` ones, and the same type for each shared key.
fn same_shape(what: &str, ours: &serde_json::Map<String, Value>, zk: &serde_json::Map<String, Value>, absent: &[&str], extra: &[&str]) {
    for (k, v) in zk {
        if absent.contains(&k.as_str()) {
            assert!(!ours.contains_key(k), "{what}: {k} is listed as not measured but is present");
            continue;
        }
        let o = ours.get(k).unwrap_or_else(|| panic!("{what}: ZooKeeper's key {k} is missing: {ours:?}"));
        // `error` is null on success in both; the reference `leader` shows ZooKeeper's error.
        if !(v.is_null() || o.is_null()) {
            assert_eq!(kind(o), kind(v), "{what}.{k}: ours {o} vs ZooKeeper's {v}");
        }
        if let (Value::Object(a), Value::Object(b)) = (o, v) {
            same_shape(&format!("{what}.{k}"), a, b, absent, extra);
        }
    }
    for k in ours.keys() {
        assert!(zk.contains_key(k) || extra.contains(&k.as_str()), "{what}: key {k} is not ZooKeeper's");
    }
}

fn command(addr: &str, name: &str) -> serde_json::Map<String, Value> {
    match http_json(addr, &format!("/commands/{name}")) {
        Value::Object(m) => m,
        other => panic!("{name}: not an object: {other}"),
    }
}

#[test]
fn every_command_answers_with_zookeepers_keys_and_types() {
    let (node, admin) = admin_node(&[]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    c.create("/adm", Some(b"x"), 0).expect("create");
    c.get_data("/adm", true).expect("get with watch");

    // (our command, reference file, keys arbor leaves out because it does not measure them,
    // arbor's extra keys).
    let server_stats_absent: &[&str] = &["fsync_threshold_exceed_count", "client_response_stats", "auth_failed_count", "client_response"];
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        ("configuration", "configuration", &[], &[]),
        ("dirs", "dirs", &[], &[]),
        ("initial_configuration", "initial_configuration", &[], &[]),
        ("is_read_only", "is_read_only", &[], &[]),
        ("last_snapshot", "last_snapshot", &[], &[]),
        ("leader", "leader", &[], &[]),
        ("ruok", "ruok", &[], &[]),
        ("server_stats", "server_stats", server_stats_absent, &[]),
        ("stats", "stats", server_stats_absent, &[]),
        ("voting_view", "voting_view", &[], &[]),
        ("watch_summary", "watch_summary", &[], &[]),
        ("connections", "connections", &[], &[]),
        // The JVM's properties are not arbor's; what a Rust process has is there.
        (
            "environment",
            "environment",
            &["java.version", "java.vendor", "java.home", "java.class.path", "java.library.path", "java.io.tmpdir", "java.compiler", "os.memory.free", "os.memory.max", "os.memory.total"],
            &["arbor.version", "arbor.pid"],
        ),
    ];
    for (name, file, absent, extra) in cases {
        let ours = command(&admin, name);
        assert_eq!(ours["command"], *name, "{name}");
        same_shape(name, &ours, &reference(file), absent, extra);
    }
    // Aliases answer under the primary name, as in ZooKeeper.
    for (alias, primary) in [("srvr", "server_stats"), ("conf", "configuration"), ("mntr", "monitor"), ("wchs", "watch_summary"), ("envi", "environment")] {
        assert_eq!(command(&admin, alias)["command"], primary);
    }
    // Values are this server's.
    let conf = command(&admin, "configuration");
    assert_eq!(conf["client_port"], node.port);
    assert_eq!(conf["tick_time"], 2000);
    let stats = command(&admin, "stats");
    assert_eq!(stats["server_stats"]["server_state"], "standalone");
    assert_eq!(stats["server_stats"]["num_alive_client_connections"], 1);
    let conns = stats["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1);
    // A connection's keys are ZooKeeper's (`ServerCnxn.getConnectionInfo`), less the
    // per-connection latencies arbor does not keep.
    let zk_conn_keys = [
        "remote_socket_address", "interest_ops", "outstanding_requests", "packets_received", "packets_sent", "session_id",
        "last_operation", "established", "session_timeout", "last_cxid", "last_zxid", "last_response_time",
    ];
    let keys: BTreeSet<&str> = conns[0].as_object().expect("obj").keys().map(String::as_str).collect();
    assert_eq!(keys, zk_conn_keys.into_iter().collect());
    assert_eq!(conns[0]["session_id"], c.session_id());
    assert_eq!(command(&admin, "watch_summary")["num_total_watches"], 1);
    let icfg = command(&admin, "initial_configuration");
    assert!(icfg["initial_configuration"].as_str().expect("text").contains(&format!("clientPort={}", node.port)));
    assert_eq!(command(&admin, "leader")["error"], "server is not initialized");
    let vv = command(&admin, "voting_view");
    assert_eq!(vv["current_config"], serde_json::json!({}));

    // monitor: every key arbor shares with ZooKeeper has ZooKeeper's type; the classic ones
    // and the summaries arbor measures are there with all their fields.
    let mon = command(&admin, "monitor");
    let zk_mon = reference("monitor");
    for (k, v) in &mon {
        if let Some(z) = zk_mon.get(k) {
            assert_eq!(kind(v), kind(z), "monitor.{k}: ours {v} vs ZooKeeper's {z}");
        }
    }
    let classic = [
        "version", "avg_latency", "max_latency", "min_latency", "packets_received", "packets_sent", "num_alive_connections",
        "outstanding_requests", "server_state", "znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
        "open_file_descriptor_count", "max_file_descriptor_count", "uptime", "global_sessions",
    ];
    for k in classic {
        assert!(mon.contains_key(k) && zk_mon.contains_key(k), "monitor: {k}");
    }
    for (summary, advanced) in [
        ("readlatency", true), ("updatelatency", true), ("quorum_ack_latency", true), ("fsynctime", false),
        ("sync_processor_batch_size", false), ("snapshottime", false), ("election_time", false), ("follower_sync_time", false),
        ("startup_snap_load_time", false), ("startup_txns_load_time", false), ("dbinittime", false),
    ] {
        let stats: &[&str] = if advanced { &["avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999"] } else { &["avg", "min", "max", "cnt", "sum"] };
        for s in stats {
            let k = format!("{s}_{summary}");
            assert!(zk_mon.contains_key(&k), "reference lacks {k}");
            assert!(mon.contains_key(&k), "monitor lacks {k}");
        }
    }
    assert!(mon["cnt_readlatency"].as_u64().expect("count") >= 1, "the get was measured: {mon:?}");
    assert!(mon["cnt_updatelatency"].as_u64().expect("count") >= 1, "the create was measured");
    assert!(mon["cnt_fsynctime"].as_u64().expect("count") >= 1, "the create was fsynced");
    assert_eq!(mon["znode_count"].as_u64(), Some(node_count(&node)));

    // mntr on the client port prints the same keys, zk_-prefixed.
    let mntr = node.four_letter("mntr");
    let mntr_keys: BTreeSet<String> = mntr.lines().filter_map(|l| l.split('\t').next()).map(str::to_string).collect();
    let mon_keys: BTreeSet<String> = mon.keys().filter(|k| *k != "command" && *k != "error").map(|k| format!("zk_{k}")).collect();
    assert_eq!(mntr_keys, mon_keys);
    assert!(mntr.contains("zk_avg_readlatency\t"), "{mntr}");
}

fn node_count(node: &Node) -> u64 {
    let srvr = node.four_letter("srvr");
    srvr.lines().find_map(|l| l.strip_prefix("Node count: ")).and_then(|v| v.trim().parse().ok()).expect("Node count")
}

#[test]
fn bad_requests_get_4xx_and_clients_keep_being_served() {
    let (node, admin) = admin_node(&[]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n".to_vec(), 400),
        (b"GET /commands/%zz HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET nothing HTTP/1.1\r\n\r\n".to_vec(), 400),
        (format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(64 << 10)).into_bytes(), 431),
        ((0..100).map(|i| format!("X-{i}: y\r\n")).fold("GET / HTTP/1.1\r\n".to_string(), |a, h| a + &h).into_bytes(), 431),
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)).into_bytes(), 414),
        (b"POST /commands/ruok HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi".to_vec(), 405),
        (b"DELETE / HTTP/1.1\r\n\r\n".to_vec(), 405),
        (b"GET /commands/no_such_command HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"GET /no/such/page HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"GET /api/tree?path=relative HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /api/tree?path=/missing HTTP/1.1\r\n\r\n".to_vec(), 404),
    ];
    for round in 0..3 {
        for (req, want) in &cases {
            let (status, head, body) = http_raw(&admin, req);
            assert_eq!(status, *want, "round {round}: {:?}: {head}\n{body}", String::from_utf8_lossy(&req[..req.len().min(60)]));
            assert!(head.contains("Connection: close"), "{head}");
            // Clients are served between bad requests.
            let p = format!("/bad-{round}-{want}-{}", req.len());
            if c.exists(&p, false).is_err() {
                c.create(&p, Some(b"v"), 0).expect("create between bad requests");
            }
        }
    }
    let (_, _, unknown) = http_raw(&admin, b"GET /commands/no_such_command HTTP/1.1\r\n\r\n");
    let j: Value = serde_json::from_str(&unknown).expect("json");
    assert_eq!(j["error"], "Unknown command: no_such_command");
    // HEAD: the head without the body.
    let (status, head, body) = http_raw(&admin, b"HEAD /commands/ruok HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, ""), "{head}");
    assert_eq!(command(&admin, "ruok")["error"], Value::Null);
    assert_eq!(node.four_letter("ruok"), "imok");
    assert!(node.log().lines().all(|l| !l.contains("panicked")), "{}", node.log());
}

#[test]
fn silent_admin_connections_bother_nobody_and_are_closed_when_idle() {
    let (node, admin) = admin_node(&["admin.idleTimeout=1000"]);
    // More silent connections than the admin server takes at once.
    let silent: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(&admin).expect("connect")).collect();
    // Clients are served meanwhile.
    let mut c = RawClient::connect(&node.addr(), 30_000);
    let t0 = Instant::now();
    for i in 0..50 {
        c.create(&format!("/silent-{i}"), None, 0).expect("create while admin connections idle");
    }
    assert!(t0.elapsed() < Duration::from_secs(10));
    // Each silent connection is closed by the server: at once past the limit, after
    // admin.idleTimeout otherwise.
    let t0 = Instant::now();
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut b = [0u8; 16];
        let n = s.read(&mut b).unwrap_or(0);
        assert_eq!(n, 0, "a silent connection gets nothing but its close");
    }
    let waited = t0.elapsed();
    assert!(waited < Duration::from_secs(8), "idle admin connections closed after {waited:?}");
    // And the admin server answers again.
    assert_eq!(command(&admin, "ruok")["command"], "ruok");
    // A request trickled in slowly is still answered (within the idle timeout).
    let mut s = TcpStream::connect(&admin).expect("connect");
    for chunk in [&b"GET /comm"[..], b"ands/ruok HTTP/1.1\r\n", b"\r\n"] {
        std::io::Write::write_all(&mut s, chunk).expect("write");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
}

#[test]
fn tree_endpoint_is_bounded_and_respects_world_read() {
    let (node, admin) = admin_node(&[]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    c.create("/t", Some("héllo wörld".as_bytes()), 0).expect("create");
    let big = vec![0xabu8; 40_000];
    c.create("/t/big", Some(&big), 0).expect("create big");
    c.create("/t/many", None, 0).expect("create many");
    for i in 0..1200 {
        c.create(&format!("/t/many/c{i:04}"), None, 0).expect("create child");
    }
    let locked = Acl { perms: 31, id: Id::new("digest", "u:ZmFrZWhhc2hmYWtlaGFzaGZha2U=") };
    c.call(&Request::Create(create_req(CreateKind::Create, "/t/secret", Some(b"s3cret"), vec![locked], 0))).expect("create locked");

    let t = http_json(&admin, "/api/tree?path=%2Ft");
    assert_eq!(t["readable"], true);
    assert_eq!(t["data_hex"], hex("héllo wörld".as_bytes()));
    assert_eq!(t["children"], serde_json::json!(["big", "many", "secret"]));
    assert_eq!(t["stat"]["numChildren"], 3);
    assert_eq!(t["acl"][0]["perms"], "cdrwa");
    let b = http_json(&admin, "/api/tree?path=/t/big");
    assert_eq!(b["data_truncated"], true);
    assert_eq!(b["data_hex"].as_str().expect("hex").len(), 2 * (16 << 10));
    assert_eq!(b["stat"]["dataLength"], 40_000);
    let m = http_json(&admin, "/api/tree?path=/t/many");
    assert_eq!(m["children"].as_array().expect("children").len(), 1000);
    assert_eq!(m["children"][0], "c0000");
    assert_eq!(m["children_truncated"], true);
    let s = http_json(&admin, "/api/tree?path=/t/secret");
    assert_eq!(s["readable"], false);
    assert!(s.get("data_hex").is_none() && s.get("acl").is_none() && s.get("children").is_none(), "{s}");
    assert_eq!(s["stat"]["dataLength"], 6, "the Stat is shown (exists needs no permission)");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parse `/metrics` with the Prometheus text parser: name → (type, samples by label set).
fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let (status, head, body) = http_raw(addr, format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes());
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{body}"))
}

fn gauge(s: &prometheus_parse::Scrape, name: &str) -> f64 {
    let sample = s.samples.iter().find(|x| x.metric == name).unwrap_or_else(|| panic!("no metric {name}"));
    match &sample.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{name}: not a gauge: {other:?}"),
    }
}

/// A summary's quantiles and count.
fn summary(s: &prometheus_parse::Scrape, name: &str) -> (BTreeMap<String, f64>, f64) {
    let sample = s.samples.iter().find(|x| x.metric == name).unwrap_or_else(|| panic!("no summary {name}"));
    let prometheus_parse::Value::Summary(qs) = &sample.value else { panic!("{name}: not a summary: {:?}", sample.value) };
    let quantiles = qs.iter().map(|q| (q.quantile.to_string(), q.count)).collect();
    let count = s.samples.iter().find(|x| x.metric == format!("{name}_count")).map(|x| match x.value {
        prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
        _ => f64::NAN,
    });
    (quantiles, count.unwrap_or_else(|| panic!("{name}_count missing")))
}

#[test]
fn ensemble_metrics_parse_as_prometheus_and_move_with_the_writes() {
    let cl = Cluster::start(3, &["admin.enableServer=true", "tickTime=2000"]);
    let admins: Vec<String> = cl.ids().iter().map(|&i| cl.admin_addr(i)).collect();
    // Exactly one leader, the others following it, as `leader` and `monitor` say.
    let leaders: Vec<usize> = wait_for(Duration::from_secs(20), "a serving leader", || {
        let l: Vec<usize> = (0..3).filter(|&i| command(&admins[i], "leader")["is_leader"] == true).collect();
        let serving = l.len() == 1 && command(&admins[l[0]], "monitor")["synced_followers"] == 2;
        serving.then_some(l)
    });
    let leader = &admins[leaders[0]];
    let leader_id = command(leader, "leader")["leader_id"].clone();
    for (i, a) in admins.iter().enumerate() {
        let mon = command(a, "monitor");
        let want = if i == leaders[0] { "leading - broadcast" } else { "following - broadcast" };
        assert_eq!(mon["peer_state"], want, "server {}", i + 1);
        assert_eq!(mon["quorum_size"], 3);
        assert_eq!(command(a, "leader")["leader_id"], leader_id);
        let vv = command(a, "voting_view");
        assert_eq!(vv["current_config"].as_object().expect("config").len(), 3);
        let zs = command(a, "zabstate");
        for k in ["myid", "is_leader", "quorum_address", "election_address", "client_address", "voting", "last_zxid", "zab_epoch", "zab_counter"] {
            assert!(zs.contains_key(k), "zabstate lacks {k}: {zs:?}");
        }
        assert_eq!(zs["zabstate"], "broadcast");
    }
    let conf = common::four_letter(&cl.addr(1).parse().expect("addr"), "conf").expect("conf");
    assert_eq!(conf.lines().filter(|l| l.starts_with("server.")).count(), 3, "{conf}");
    assert!(conf.contains("membership: "), "{conf}");

    let before: Vec<prometheus_parse::Scrape> = admins.iter().map(|a| scrape(a)).collect();
    let mut c = RawClient::connect(&cl.addr(1), 30_000);
    const N: usize = 40;
    for i in 0..N {
        c.create(&format!("/prom-{i}"), Some(b"v"), 0).expect("create");
    }
    for i in 0..N {
        c.get_data(&format!("/prom-{i}"), false).expect("get");
    }
    // Everything is committed everywhere once a sync on each server returns.
    for id in cl.ids() {
        let mut s = RawClient::connect(&cl.addr(id), 30_000);
        s.call(&Request::Sync { path: "/".into() }).expect("sync");
    }
    let after: Vec<prometheus_parse::Scrape> = admins.iter().map(|a| scrape(a)).collect();
    let li = leaders[0];
    for i in 0..3 {
        let grew = gauge(&after[i], "znode_count") - gauge(&before[i], "znode_count");
        assert_eq!(grew, N as f64, "server {}: znode_count grew by {grew}", i + 1);
        assert_eq!(gauge(&after[i], "quorum_size"), 3.0);
        let (_, fsyncs) = summary(&after[i], "fsynctime");
        assert!(fsyncs >= 1.0, "server {} fsynced", i + 1);
        let (q, _) = summary(&after[i], "arbor_fsync_time_us");
        assert!(q.contains_key("0.99"), "{q:?}");
        summary(&after[i], "arbor_loop_turn_time_us");
        summary(&after[i], "arbor_sync_batch_size");
    }
    let (q, reads) = summary(&after[0], "readlatency");
    let (_, reads_before) = summary(&before[0], "readlatency");
    assert!(reads - reads_before >= N as f64, "server 1 measured the reads: {reads_before} -> {reads}");
    assert_eq!(q.keys().cloned().collect::<Vec<_>>(), ["0.5", "0.9", "0.99"], "ZooKeeper's quantiles");
    let (_, updates) = summary(&after[0], "updatelatency");
    assert!(updates >= N as f64, "server 1 answered the creates: {updates}");
    let proposals = gauge(&after[li], "proposal_count") - gauge(&before[li], "proposal_count");
    assert!(proposals >= N as f64, "leader proposed {proposals}");
    let (_, acks) = summary(&after[li], "quorum_ack_latency");
    assert!(acks >= N as f64, "leader timed {acks} quorum acks");
    assert_eq!(gauge(&after[li], "synced_followers"), 2.0);
    for i in (0..3).filter(|&i| i != li) {
        let got = gauge(&after[i], "learner_proposal_received_count") - gauge(&before[i], "learner_proposal_received_count");
        assert!(got >= N as f64, "follower {} received {got} proposals", i + 1);
        let (_, synced) = summary(&after[i], "follower_sync_time");
        assert!(synced >= 1.0, "follower {} timed its sync", i + 1);
    }
}

/// `watches` (wchc), `watches_by_path` (wchp) and `dump`: ZooKeeper's keys, with this
/// server's watches, sessions and ephemerals in them.
#[test]
fn watch_and_dump_commands_show_sessions_watches_and_ephemerals() {
    let (node, admin) = admin_node(&[]);
    let mut c = RawClient::connect(&node.addr(), 30_000);
    let mut d = RawClient::connect(&node.addr(), 30_000);
    c.create("/w", Some(b"x"), 0).expect("create");
    c.create("/eph", None, 1).expect("create an ephemeral");
    c.get_data("/w", true).expect("watch /w from c");
    d.get_data("/w", true).expect("watch /w from d");
    d.exists("/eph", true).expect("watch /eph from d");
    let (cs, ds) = (c.session_id(), d.session_id());

    let w = command(&admin, "wchc");
    assert_eq!(w["command"], "watches");
    let by_session = w["session_id_to_watched_paths"].as_object().expect("a map");
    let paths = |sid: i64| -> BTreeSet<String> {
        by_session[&sid.to_string()].as_array().expect("paths").iter().map(|p| p.as_str().expect("path").to_string()).collect()
    };
    assert_eq!(paths(cs), ["/w".to_string()].into_iter().collect());
    assert_eq!(paths(ds), ["/w".to_string(), "/eph".to_string()].into_iter().collect());

    let p = command(&admin, "wchp");
    assert_eq!(p["command"], "watches_by_path");
    let by_path = p["path_to_session_ids"].as_object().expect("a map");
    let mut w_ids: Vec<i64> = by_path["/w"].as_array().expect("ids").iter().map(|v| v.as_i64().expect("id")).collect();
    w_ids.sort_unstable();
    let mut want = vec![cs, ds];
    want.sort_unstable();
    assert_eq!(w_ids, want);
    assert_eq!(by_path["/eph"], serde_json::json!([ds]));

    let dump = command(&admin, "dump");
    assert_eq!(dump["session_id_to_ephemeral_paths"], serde_json::json!({ cs.to_string(): ["/eph"] }));
    let expiry = dump["expiry_time_to_session_ids"].as_object().expect("a map");
    let mut sessions: Vec<i64> = expiry.values().flat_map(|v| v.as_array().expect("ids").iter().map(|i| i.as_i64().expect("id"))).collect();
    sessions.sort_unstable();
    assert_eq!(sessions, want, "both sessions have an expiry time");
    // A watch that fired is gone.
    c.set_data("/w", b"y", -1).expect("set");
    let after = command(&admin, "wchp");
    assert!(after["path_to_session_ids"].get("/w").is_none(), "{after:?}");
}

/// The `hash` command's entries as (zxid, digest), checking each has ZooKeeper's
/// `ZxidDigest` keys and digest version 2.
fn digest_log(addr: &str) -> Vec<(i64, i64)> {
    let h = command(addr, "hash");
    assert_eq!(h["command"], "hash");
    h["digests"]
        .as_array()
        .unwrap_or_else(|| panic!("digests: {h:?}"))
        .iter()
        .map(|d| {
            let keys: BTreeSet<&str> = d.as_object().expect("object").keys().map(String::as_str).collect();
            assert_eq!(keys, ["digest", "digestVersion", "zxid"].into_iter().collect(), "{d}");
            assert_eq!(d["digestVersion"], 2);
            (d["zxid"].as_i64().expect("zxid"), d["digest"].as_i64().expect("digest"))
        })
        .collect()
}

/// `hash` on a 3-node ensemble: after the same writes every server has logged the same
/// digests at the same zxids (every 128th), the digest moves with the writes; and
/// `propagation_latency` counts the committed txns on every server.
#[test]
fn hash_is_the_same_on_every_server_and_moves_with_the_writes() {
    let cl = Cluster::start(3, &["admin.enableServer=true", "tickTime=2000"]);
    let admins: Vec<String> = cl.ids().iter().map(|&i| cl.admin_addr(i)).collect();
    wait_for(Duration::from_secs(20), "a serving leader", || {
        let l: Vec<usize> = (0..3).filter(|&i| command(&admins[i], "leader")["is_leader"] == true).collect();
        (l.len() == 1 && command(&admins[l[0]], "monitor")["synced_followers"] == 2).then_some(())
    });
    let before: Vec<u64> = admins.iter().map(|a| command(a, "monitor")["cnt_propagation_latency"].as_u64().expect("cnt")).collect();
    // Writes through two servers: creates, then data changes of half of them.
    let mut c1 = RawClient::connect(&cl.addr(1), 30_000);
    let mut c2 = RawClient::connect(&cl.addr(2), 30_000);
    const N: usize = 300;
    for i in 0..N {
        let c = if i % 2 == 0 { &mut c1 } else { &mut c2 };
        c.create(&format!("/hash-{i}"), Some(format!("v{i}").as_bytes()), 0).expect("create");
    }
    for i in (0..N).step_by(2) {
        c2.set_data(&format!("/hash-{i}"), b"changed", 0).expect("set");
    }
    for id in cl.ids() {
        let mut s = RawClient::connect(&cl.addr(id), 30_000);
        s.call(&Request::Sync { path: "/".into() }).expect("sync");
    }
    let logs: Vec<Vec<(i64, i64)>> = admins.iter().map(|a| digest_log(a)).collect();
    assert!(logs[0].len() >= 3, "{} txns log at least 3 digests: {:?}", N + N / 2, logs[0]);
    for (i, l) in logs.iter().enumerate() {
        assert_eq!(l, &logs[0], "server {} and server 1 logged different digests", i + 1);
    }
    assert!(logs[0].iter().all(|(z, _)| z % 128 == 0), "{:?}", logs[0]);
    let digests: BTreeSet<i64> = logs[0].iter().map(|(_, d)| *d).collect();
    assert_eq!(digests.len(), logs[0].len(), "each logged digest differs from the others: {:?}", logs[0]);
    for (i, a) in admins.iter().enumerate() {
        let mon = command(a, "monitor");
        let cnt = mon["cnt_propagation_latency"].as_u64().expect("cnt");
        assert!(cnt - before[i] >= (N + N / 2) as u64, "server {}: {} txns timed", i + 1, cnt - before[i]);
        for k in ["avg", "min", "max", "sum", "p50", "p95", "p99", "p999"] {
            assert!(mon.contains_key(&format!("{k}_propagation_latency")), "server {}: {k}", i + 1);
        }
    }
}

//! Four-letter words on the client port: ruok, srvr, stat, mntr, envi, isro, cons, conf,
//! wchs, dump (content checked against what the session did), and the whitelist.
//! Runs against ZooKeeper 3.8 too with `ARBOR_TEST_ZK=host:port` (config checks skipped).
mod common;

use common::*;

/// `key: value` / `key=value` / `key\tvalue` lookup in a 4lw answer.
fn field<'a>(text: &'a str, key: &str, sep: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(sep)))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
        .trim()
}

fn last_zxid(c: &mut RawClient) -> i64 {
    c.call_full(&Request::Sync { path: "/".into() }).0.zxid
}

#[test]
fn ruok_isro_envi() {
    let srv = Server::start(&[]);
    assert_eq!(srv.four_letter("ruok"), "imok");
    assert_eq!(srv.four_letter("isro"), "rw");
    let envi = srv.four_letter("envi");
    assert!(envi.starts_with("Environment:\n"), "{envi}");
    assert!(field(&envi, "zookeeper.version", "=").starts_with("3."), "kazoo's server_version parses this:\n{envi}");
    assert!(envi.contains("\nos.name="), "{envi}");
}

#[test]
fn srvr_stat_and_mntr_track_the_tree() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("4lw_srvr");
    let before: i64 = field(&srv.four_letter("srvr"), "Node count", ": ").parse().unwrap();
    c.create(&root, Some(b""), 0).unwrap();
    c.create(&format!("{root}/a"), Some(b""), 0).unwrap();
    c.create(&format!("{root}/e"), Some(b""), 1).unwrap();
    let zxid = last_zxid(&mut c);

    let srvr = srv.four_letter("srvr");
    assert!(srvr.starts_with("Zookeeper version: 3."), "{srvr}");
    assert_eq!(field(&srvr, "Mode", ": "), "standalone");
    assert_eq!(field(&srvr, "Zxid", ": "), format!("0x{zxid:x}"));
    if srv.is_arbor() {
        // (A shared ZooKeeper has other tests' nodes coming and going.)
        assert_eq!(field(&srvr, "Node count", ": ").parse::<i64>().unwrap(), before + 3);
    }
    assert_eq!(field(&srvr, "Outstanding", ": "), "0");
    let conns: i64 = field(&srvr, "Connections", ": ").parse().unwrap();
    assert!(conns >= 1, "{srvr}");
    let lat = field(&srvr, "Latency min/avg/max", ": ");
    assert_eq!(lat.split('/').count(), 3, "{lat}");
    assert!(!srvr.contains("Clients:"), "srvr has no client list");

    // stat = srvr + the client list, which has our connection.
    let stat = srv.four_letter("stat");
    assert_eq!(field(&stat, "Mode", ": "), "standalone");
    let me = format!("/127.0.0.1:{}[", c.stream.local_addr().unwrap().port());
    assert!(stat.contains("Clients:\n") && stat.contains(&me), "no {me} in stat:\n{stat}");

    let mntr = srv.four_letter("mntr");
    assert_eq!(field(&mntr, "zk_server_state", "\t"), "standalone");
    assert!(field(&mntr, "zk_version", "\t").starts_with("3."));
    let nodes: i64 = field(&mntr, "zk_znode_count", "\t").parse().unwrap();
    if srv.is_arbor() {
        assert!(nodes == before + 3 || nodes == before + 4, "zk_znode_count {nodes} vs srvr {before}+3");
    }
    assert!(field(&mntr, "zk_ephemerals_count", "\t").parse::<i64>().unwrap() >= 1);
    assert_eq!(field(&mntr, "zk_outstanding_requests", "\t"), "0");
    for key in ["zk_avg_latency", "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections", "zk_watch_count", "zk_approximate_data_size"] {
        field(&mntr, key, "\t");
    }
    if srv.is_arbor() {
        assert_eq!(field(&mntr, "zk_ephemerals_count", "\t"), "1");
    }
}

#[test]
fn wchs_and_mntr_count_watches() {
    let srv = Server::start(&[]);
    let mut w = srv.raw();
    let root = test_root("4lw_wchs");
    w.create(&root, Some(b""), 0).unwrap();
    w.create(&format!("{root}/b"), Some(b""), 0).unwrap();
    let base = srv.four_letter("wchs");
    if srv.is_arbor() {
        assert_eq!(base, "0 connections watching 0 paths\nTotal watches:0\n");
    }
    w.get_data(&root, true).unwrap();
    w.exists(&format!("{root}/b"), true).unwrap();
    w.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    let wchs = srv.four_letter("wchs");
    if srv.is_arbor() {
        // wchs summarises data/exist watches only, as ZooKeeper does; mntr counts all.
        assert_eq!(wchs, "1 connections watching 2 paths\nTotal watches:2\n");
        assert_eq!(field(&srv.four_letter("mntr"), "zk_watch_count", "\t"), "3");
    }
    // A fired watch is gone.
    w.set_data(&format!("{root}/b"), b"x", -1).unwrap();
    let total: i64 = field(&srv.four_letter("wchs"), "Total watches", ":").parse().unwrap();
    let before: i64 = field(&wchs, "Total watches", ":").parse().unwrap();
    assert_eq!(total, before - 1);
}

#[test]
fn cons_lists_each_connection() {
    let srv = Server::start(&[]);
    let mut a = srv.raw();
    let b = srv.raw();
    a.exists("/", false).unwrap();
    let cons = srv.four_letter("cons");
    for c in [&a, &b] {
        let me = format!(" /127.0.0.1:{}[", c.stream.local_addr().unwrap().port());
        let line = cons.lines().find(|l| l.starts_with(&me)).unwrap_or_else(|| panic!("no {me} in cons:\n{cons}"));
        assert!(line.contains("(queued=0,recved="), "{line}");
    }
}

#[test]
fn conf_reports_the_config() {
    let srv = Server::start(&["tickTime=300"]);
    let Some(node) = &srv.node else {
        eprintln!("SKIP conf_reports_the_config: needs arbor's own config");
        return;
    };
    let conf = srv.four_letter("conf");
    assert_eq!(field(&conf, "clientPort", "="), node.port.to_string());
    assert_eq!(field(&conf, "tickTime", "="), "300");
    assert_eq!(field(&conf, "maxClientCnxns", "="), "0");
    assert_eq!(field(&conf, "minSessionTimeout", "="), "600");
    assert_eq!(field(&conf, "maxSessionTimeout", "="), "6000");
    assert!(field(&conf, "dataDir", "=").starts_with(&node.data_dir.display().to_string()), "{conf}");
}

#[test]
fn dump_lists_sessions_with_ephemerals() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let root = test_root("4lw_dump");
    c.create(&root, Some(b""), 0).unwrap();
    let e = format!("{root}/e");
    c.create(&e, Some(b""), 1).unwrap();
    let dump = srv.four_letter("dump");
    assert!(dump.starts_with("SessionTracker dump:"), "{dump}");
    assert!(dump.contains("ephemeral nodes dump:"), "{dump}");
    let sid = format!("0x{:x}", c.session_id());
    let at = dump.find(&sid).unwrap_or_else(|| panic!("no {sid} in dump:\n{dump}"));
    assert!(dump[at..].contains(&e), "{e} not listed under {sid}:\n{dump}");
    if srv.is_arbor() {
        assert!(dump.contains("Sessions with Ephemerals (1):"), "{dump}");
    }
}

#[test]
fn whitelist_limits_the_words() {
    let srv = Server::start(&["4lw.commands.whitelist=ruok, srvr"]);
    if !srv.is_arbor() {
        return;
    }
    assert_eq!(srv.four_letter("ruok"), "imok");
    assert!(srv.four_letter("srvr").contains("Mode: standalone"));
    for w in ["stat", "mntr", "envi", "cons", "conf", "wchs", "dump", "isro"] {
        assert_eq!(srv.four_letter(w), format!("{w} is not executed because it is not in the whitelist.\n"));
    }
    // Ordinary clients are unaffected.
    let mut c = srv.raw();
    assert!(c.exists("/", false).is_ok());
}

#[test]
fn wchs_counts_data_watches_only() {
    let srv = Server::start(&[]);
    let mut w = srv.raw();
    let root = test_root("4lw_wchs_zk");
    w.create(&root, Some(b""), 0).unwrap();
    w.create(&format!("{root}/b"), Some(b""), 0).unwrap();
    w.get_data(&root, true).unwrap();
    w.exists(&format!("{root}/b"), true).unwrap();
    w.call(&Request::GetChildren { path: root.clone(), watch: true }).unwrap();
    // Checked against ZooKeeper 3.8.0 with this exact sequence.
    assert_eq!(srv.four_letter("wchs"), "1 connections watching 2 paths\nTotal watches:2\n");
}

//! `arbor bench` against real arbor processes: the JSON line's fields, the timeseries and
//! plot files, open-loop pacing, every workload, and errors counted by ZooKeeper name when
//! the server dies mid-run (the run still ends on time).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::Node;
use serde_json::Value;

fn bench(endpoints: &str, args: &[&str], json: &Path) -> (Output, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["bench", "--endpoints", endpoints, "--json"])
        .arg(json)
        .args(args)
        .output()
        .expect("run arbor bench");
    assert!(out.status.success(), "arbor bench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let line = std::fs::read_to_string(json).expect("json file");
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    (out, serde_json::from_str(&line).expect("valid JSON"))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[test]
fn closed_loop_get_reports_every_field_and_writes_timeseries_and_plot() {
    let node = Node::start_standalone(&[]);
    let dir = node.dir().to_path_buf();
    let (out, j) = bench(
        &node.addr(),
        &[
            "--clients", "8", "--duration", "2", "--warmup", "0.5", "--workload", "get", "--pipeline", "2",
            "--timeseries", dir.join("ts.csv").to_str().expect("path"),
            "--plot", dir.join("plot.svg").to_str().expect("path"),
        ],
        &dir.join("r.json"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("p99.9") && text.contains("generator CPU"), "{text}");
    assert_eq!(j["workload"], "get");
    assert_eq!(j["clients"], 8);
    assert_eq!(j["pipeline"], 2);
    assert!(j["rate"].is_null());
    assert!((f(&j, "duration_s") - 2.0).abs() < 0.2, "{j}");
    assert!(f(&j, "ops") > 100.0, "{j}");
    assert!((f(&j, "ops_per_s") - f(&j, "ops") / f(&j, "duration_s")).abs() < 0.01 * f(&j, "ops_per_s") + 1.0);
    assert_eq!(f(&j, "errors"), 0.0, "{j}");
    assert_eq!(j["errors_by_name"], serde_json::json!({}));
    let l = &j["latency"];
    assert!(f(l, "p50_us") >= 1.0 && f(l, "p50_us") <= f(l, "p90_us") && f(l, "p90_us") <= f(l, "p99_us"));
    assert!(f(l, "p99_us") <= f(l, "p999_us") && f(l, "p999_us") <= f(l, "max_us"), "{l}");
    assert_eq!(j["per_op"][0]["op"], "get");
    // Warm-up replies count for CPU per request, not for the measured ops.
    assert!(f(&j, "requests_total") > f(&j, "ops"));
    assert!(f(&j, "cpu_us_per_request") > 0.0 && f(&j, "cpu_us_per_request") < 1000.0, "{j}");
    assert_eq!(j["interrupted"], false);

    let ts = std::fs::read_to_string(dir.join("ts.csv")).expect("timeseries");
    let mut rows = ts.lines();
    assert_eq!(rows.next(), Some("second,phase,ops_per_s,p50_us,p99_us,max_us,errors"));
    let rows: Vec<&str> = rows.collect();
    assert!(rows.len() >= 2, "{ts}");
    assert!(rows[0].starts_with("0,warmup,"), "{ts}");
    assert!(rows.iter().any(|r| r.contains(",measure,")), "{ts}");
    let svg = std::fs::read_to_string(dir.join("plot.svg")).expect("plot");
    assert!(svg.starts_with("<svg") && svg.contains("ops/s"), "{}", &svg[..svg.len().min(200)]);
}

#[test]
fn open_loop_sends_at_the_asked_rate() {
    let node = Node::start_standalone(&[]);
    let (_, j) = bench(
        &node.addr(),
        &["--clients", "4", "--duration", "2", "--warmup", "0.5", "--workload", "get", "--rate", "400"],
        &node.dir().join("r.json"),
    );
    assert_eq!(f(&j, "rate"), 400.0);
    let ops = f(&j, "ops");
    assert!((700.0..=900.0).contains(&ops), "400/s for 2 s gave {ops}: {j}");
}

#[test]
fn every_workload_runs_and_reports_its_op_kinds() {
    let node = Node::start_standalone(&[]);
    let cases: [(&str, &[&str]); 7] = [
        ("create", &["create"]),
        ("set", &["set"]),
        ("mixed:50", &["get", "set"]),
        ("mixed:50:create", &["get", "create"]),
        ("delete", &["delete"]),
        ("multi:3", &["multi"]),
        ("watch:3", &["get", "set", "watch"]),
    ];
    for (w, kinds) in cases {
        // delete uses up its znodes: give it more than a second's worth.
        let keys = if w == "delete" { "4000" } else { "200" };
        let (_, j) = bench(
            &node.addr(),
            &["--clients", "4", "--threads", "2", "--duration", "1", "--warmup", "0.2", "--workload", w, "--keys", keys],
            &node.dir().join("r.json"),
        );
        assert_eq!(j["workload"], w);
        assert_eq!(f(&j, "errors"), 0.0, "{w}: {j}");
        let got: Vec<&str> = j["per_op"].as_array().expect("per_op").iter().filter_map(|o| o["op"].as_str()).collect();
        assert_eq!(got, kinds, "{w}: {j}");
        assert!(f(&j, "ops") > 0.0, "{w}: {j}");
    }
}

#[test]
fn a_server_killed_mid_run_shows_as_connection_loss_and_the_run_ends_on_time() {
    let mut node = Node::start_standalone(&[]);
    let json = node.dir().join("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["bench", "--endpoints", &node.addr(), "--clients", "4", "--pipeline", "4", "--workload", "get"])
        .args(["--duration", "3", "--warmup", "0.2", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn bench");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    node.kill9();
    let out = child.wait_with_output().expect("bench exits");
    assert!(out.status.success());
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by --duration: {:?}", started.elapsed());
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert!(f(&j, "ops") > 0.0, "{j}");
    assert!(f(&j["errors_by_name"], "ConnectionLoss") >= 1.0, "{j}");
    assert_eq!(f(&j, "errors"), f(&j["errors_by_name"], "ConnectionLoss"), "{j}");
}

#[test]
fn ops_stops_after_that_many_requests() {
    let node = Node::start_standalone(&[]);
    let started = Instant::now();
    let (_, j) = bench(
        &node.addr(),
        &["--clients", "4", "--duration", "60", "--warmup", "0", "--workload", "create", "--ops", "400", "--pipeline", "4"],
        &node.dir().join("r.json"),
    );
    assert!(started.elapsed() < Duration::from_secs(30), "ended early: {:?}", started.elapsed());
    assert_eq!(f(&j, "ops"), 400.0, "{j}");
    assert!(f(&j, "duration_s") < 30.0, "{j}");
}

//! arbor: a replicated coordination service that speaks the Apache ZooKeeper wire protocol.
//!
//! # Layout
//! - `proto`: ids, Stat, ACL, error codes, the one opcode table (wire numbers and `cons`
//!   names live here only), `Now` (the clocks a core's step is given).
//! - `jute`: client wire codec and framing.
//! - `txn`: the deterministic state changes the log stores and the tree applies.
//! - `tree`: the in-memory DataTree (compact, 1M+ znodes), Stat rules.
//! - `acl`: authentication schemes and permission checks.
//! - `watch`: the watch registry and how tree changes become notifications.
//! - `session`: the session table and expiry.
//! - `prep`: request preparation (client write → txn).
//! - `service`: the sans-IO ZooKeeper service: requests in, replies/notifications/txns out.
//!   `service/mod.rs` is the `Service`, its `Outbox` contract with the replica and the
//!   dispatcher; the rest by concern: `handshake` (connect, sessions, auth), `reads`,
//!   `writes` (prepare → submit → apply committed → reply, per-session order), `forwarding`
//!   (the leader's side of followers' requests, sync), `reaping` (expiry, containers, TTL),
//!   `mode`, `output` (reply and notification encoding).
//! - `zab`: replication (sans-IO): election, discovery, sync, broadcast.
//! - `peer`: server-to-server messages (election and quorum ports) and their framing.
//! - `replica`: one server's whole protocol (service + replication), sans-IO:
//!   `step(now, input, &mut outputs)`; what the loop and a simulator drive.
//! - `sim`: a deterministic simulator of whole ensembles (replicas + ZooKeeper clients
//!   over a simulated network, disk and clocks) with its checks; `arbor-sim` runs it.
//! - `server`: the one mio loop per process: sockets, timers, files; steps the replica and
//!   performs its outputs, deciding nothing itself.
//!   `server::admin`: the admin HTTP server (ZooKeeper's commands, Prometheus, console).
//!   `server::tls`: TLS (rustls) on client and peer connections, PEM stores, `x509` ids.
//! - `metrics`: counters and summaries (O(1), allocation-free recording) for mntr/metrics.
//! - `storage`: txn log, snapshots, recovery, purge (the durable state on disk).
//! - `bench`: `arbor bench`, the load generator (workloads, threads, HDR histograms, reports).
//! - `cli`: `arbor cli`, the one-shot client command.
//! - `client`: a minimal ZooKeeper client (sans-IO core + mio driver) for bench, cli, demo, tests.
//! - `demo`: `arbor demo`, a 3-server failover under load, checked for lost writes.
//! - `lincheck`: a linearizability checker for recorded client histories (plain data in,
//!   verdict out), for the fault tests of the real binary and the ensemble simulator.
//! - `planted`: known bugs a test can switch on, to show the simulator catches each.
//! - `local`: `arbor local`, every server of a config as child processes.
//! - `config`: zoo.cfg parsing. `node`: wires a process together. `logging`: the server's
//!   log lines (tracing). `tools`: `arbor log dump`, `snapshot dump`, `data check` (read-only).

pub mod acl;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod dynconfig;
pub mod jute;
pub mod lincheck;
pub mod local;
pub mod metrics;
pub mod logging;
pub mod node;
pub mod peer;
pub mod planted;
pub mod prep;
pub mod proto;
pub mod reconfig;
pub mod replica;
pub mod server;
pub mod service;
pub mod session;
pub mod sim;
pub mod storage;
pub mod tools;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;

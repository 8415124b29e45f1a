//! arbor: a replicated coordination service that speaks the Apache ZooKeeper wire protocol.
//!
//! # Layout
//! - `config`: zoo.cfg parsing (ZooKeeper's keys, `{id}` in dataDir).
//! - `proto`: ids, Stat, ACL, error codes, opcodes (wire numbers live here only).
//! - `jute`: client wire codec and framing.
//! - `txn`: the deterministic state changes the log stores and the tree applies.
//! - `tree`: the in-memory DataTree (compact, 1M+ znodes), Stat rules, ACL checks.
//! - `server`: the one mio loop per process: sockets, timers, disk; steps the cores.

pub mod config;
pub mod jute;
pub mod proto;
pub mod txn;

//! Simulated ZooKeeper clients: the real client session core (`client::session`) with a
//! random workload over a few znodes (plain, ephemeral, watched, in multis, synced), each
//! operation recorded for the checker.

use bytes::BytesMut;

use super::check::{Answer, HistOp, OpKind, Outcome as OpOutcome, SubOp};
use super::world::Rng;
use crate::client::{Reply, Session};
use crate::client::ClientError;
use crate::jute::{CreateKind, CreateRequest, MultiOp, MultiResult, Request, Response};
use crate::proto::{Acl, Millis, ServerId};

/// A client's connection to one server (its generation names it in events).
#[derive(Debug)]
pub(super) struct Link {
    pub server: ServerId,
    pub gen: u64,
    /// Bytes from the server not yet cut into frames.
    pub inbox: BytesMut,
    /// The server accepted the connection (our `TcpConnected` was delivered).
    pub up: bool,
}

pub(super) struct SimClient {
    pub idx: usize,
    pub session: Session,
    pub link: Option<Link>,
    /// When to dial again after losing a connection.
    pub redial_at: Option<Millis>,
    /// The operation in flight: its index in the history.
    pub in_flight: Option<usize>,
    /// When to issue the next operation.
    pub next_op_at: Millis,
    /// Operations issued so far (makes every written value unique).
    pub issued: u64,
    /// Sessions this client had (a new one after an expiry).
    pub sessions: u64,
    /// No more operations (the run is winding down).
    pub done: bool,
    /// The path a sync just synced: the next op reads it.
    pub after_sync: Option<String>,
    /// The highest zxid the session had seen when last looked at (for `WatchSeen::Zxid`).
    pub seen_zxid: i64,
    /// The session closed itself: start a new one.
    pub closed: bool,
}

/// Paths the workload touches: children of `/`, which always exists.
pub(super) fn path(i: u64) -> String {
    format!("/k{i}")
}

impl SimClient {
    pub fn new(idx: usize, timeout_ms: i32) -> SimClient {
        SimClient {
            idx,
            session: Session::new(timeout_ms),
            link: None,
            redial_at: Some(0),
            in_flight: None,
            next_op_at: 0,
            issued: 0,
            sessions: 1,
            done: false,
            after_sync: None,
            seen_zxid: 0,
            closed: false,
        }
    }

    /// The id the checker knows this client's current session by (one per session).
    pub fn history_id(&self) -> u64 {
        (self.idx as u64) << 16 | self.sessions
    }

    /// Pick the next operation: mostly plain reads and writes of the `/k*` paths (checked
    /// by both checkers), and now and then an ephemeral of `/e*`, a watching read, a
    /// multi, a sync (whose next op reads what it synced), or closing the session.
    pub fn next_op(&mut self, rng: &mut Rng, paths: u64, big_value: Option<usize>) -> (Request, OpKind) {
        self.issued += 1;
        let mut value = format!("c{}.{}", self.idx, self.issued).into_bytes();
        if let Some(size) = big_value.filter(|_| rng.chance(0.02)) {
            // MB-sized values now and then: frames and snapshots of realistic size.
            value.resize(size, b'x');
        }
        if let Some(p) = self.after_sync.take() {
            return (Request::GetData { path: p.clone(), watch: false }, OpKind::GetData { path: p, watch: false });
        }
        if rng.chance(0.003) {
            return (Request::CloseSession, OpKind::CloseSession);
        }
        let p = path(rng.below(paths));
        let e = ephemeral_path(rng.below(EPHEMERALS));
        let watch = rng.chance(0.5);
        match rng.below(20) {
            0..=2 => create(p, value, false),
            3..=6 => {
                let version = if rng.chance(0.5) { -1 } else { rng.below(4) as i32 };
                (Request::SetData { path: p.clone(), data: Some(value.clone()), version }, OpKind::SetData { path: p, data: value, version })
            }
            7 => {
                let version = if rng.chance(0.7) { -1 } else { rng.below(4) as i32 };
                (Request::Delete { path: p.clone(), version }, OpKind::Delete { path: p, version })
            }
            8..=11 => (Request::GetData { path: p.clone(), watch }, OpKind::GetData { path: p, watch }),
            12 => {
                let p = if rng.chance(0.5) { p } else { e };
                (Request::Exists { path: p.clone(), watch }, OpKind::Exists { path: p, watch })
            }
            13 => (Request::GetChildren { path: "/".into(), watch }, OpKind::GetChildren { path: "/".into(), watch }),
            14 => create(e, value, true),
            15 => match rng.below(3) {
                0 => (Request::Delete { path: e.clone(), version: -1 }, OpKind::Delete { path: e, version: -1 }),
                1 => (Request::SetData { path: e.clone(), data: Some(value.clone()), version: -1 }, OpKind::SetData { path: e, data: value, version: -1 }),
                _ => (Request::GetData { path: e.clone(), watch }, OpKind::GetData { path: e, watch }),
            },
            16 => self.multi(rng, paths),
            17 => {
                self.after_sync = Some(p.clone());
                (Request::Sync { path: p.clone() }, OpKind::Sync { path: p })
            }
            _ => (Request::GetData { path: p.clone(), watch: false }, OpKind::GetData { path: p, watch: false }),
        }
    }

    /// A multi over distinct paths: often a version check first, then one or two writes.
    fn multi(&mut self, rng: &mut Rng, paths: u64) -> (Request, OpKind) {
        let mut chosen: Vec<u64> = Vec::new();
        let n = 2 + rng.below(2) as usize;
        while chosen.len() < n.min(paths as usize) {
            let i = rng.below(paths);
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        let mut subs = Vec::new();
        for (j, i) in chosen.into_iter().enumerate() {
            let path = path(i);
            let data = format!("c{}.{}.{j}", self.idx, self.issued).into_bytes();
            let version = if rng.chance(0.5) { -1 } else { rng.below(4) as i32 };
            subs.push(match (j, rng.below(4)) {
                (0, 0..=1) => SubOp::Check { path, version: rng.below(4) as i32 },
                (_, 0) => SubOp::Create { path, data },
                (_, 1 | 2) => SubOp::SetData { path, data, version },
                _ => SubOp::Delete { path, version },
            });
        }
        let ops = subs
            .iter()
            .map(|s| match s.clone() {
                SubOp::Check { path, version } => MultiOp::Check { path, version },
                SubOp::Create { path, data } => MultiOp::Create(create_request(path, data, false)),
                SubOp::SetData { path, data, version } => MultiOp::SetData { path, data: Some(data), version },
                SubOp::Delete { path, version } => MultiOp::Delete { path, version },
            })
            .collect();
        (Request::Multi(ops), OpKind::Multi(subs))
    }
}

/// Ephemeral paths: `/e0` …
pub(super) const EPHEMERALS: u64 = 3;

pub(super) fn ephemeral_path(i: u64) -> String {
    format!("/e{i}")
}

fn create_request(path: String, data: Vec<u8>, ephemeral: bool) -> CreateRequest {
    CreateRequest { kind: CreateKind::Create, path, data: Some(data), acl: Acl::open_unsafe(), flags: i32::from(ephemeral), ttl_ms: -1 }
}

fn create(path: String, data: Vec<u8>, ephemeral: bool) -> (Request, OpKind) {
    (Request::Create(create_request(path.clone(), data.clone(), ephemeral)), OpKind::Create { path, data, ephemeral })
}

/// What a reply says about the operation.
pub(super) fn outcome(reply: &Reply) -> OpOutcome {
    match reply.result() {
        Ok(resp) => OpOutcome::Ok(match resp {
            Response::Stat(s) => Answer::Stat { version: s.version, owner: s.ephemeral_owner },
            Response::GetData { data, stat } => {
                Answer::Data { data: data.unwrap_or_default(), version: stat.version, owner: stat.ephemeral_owner }
            }
            Response::GetChildren { children } => Answer::Children(children),
            Response::Multi(results) => Answer::Multi(
                results
                    .into_iter()
                    .map(|r| match r {
                        MultiResult::Error(code) => Err(code),
                        MultiResult::SetData { stat } => Ok(Some(stat.version)),
                        _ => Ok(None),
                    })
                    .collect(),
            ),
            _ => Answer::Done,
        }),
        Err(ClientError::Server(code)) => OpOutcome::Err(code),
        // Connection lost or session gone before the answer: it may have happened or not.
        Err(_) => OpOutcome::Unknown,
    }
}

/// A recorded operation, just issued.
pub(super) fn issued(client: u64, kind: OpKind, at: Millis) -> HistOp {
    HistOp { client, kind, call: at, ret: None, outcome: OpOutcome::Unknown, zxid: None, session: 0, xid: 0 }
}

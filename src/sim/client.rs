//! Simulated ZooKeeper clients: the real client session core (`client::session`) with a
//! random workload over a few znodes, each operation recorded for the checker.

use bytes::BytesMut;

use super::check::{HistOp, OpKind, Outcome as OpOutcome};
use super::world::Rng;
use crate::client::{Reply, Session};
use crate::client::ClientError;
use crate::jute::{CreateKind, CreateRequest, Request, Response};
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
        }
    }

    /// The id the checker knows this client's current session by (one per session).
    pub fn history_id(&self) -> u64 {
        (self.idx as u64) << 16 | self.sessions
    }

    /// Pick the next operation.
    pub fn next_op(&mut self, rng: &mut Rng, paths: u64, big_value: Option<usize>) -> (Request, OpKind) {
        self.issued += 1;
        let p = path(rng.below(paths));
        let mut value = format!("c{}.{}", self.idx, self.issued).into_bytes();
        if let Some(size) = big_value.filter(|_| rng.chance(0.02)) {
            // MB-sized values now and then: frames and snapshots of realistic size.
            value.resize(size, b'x');
        }
        match rng.below(10) {
            0..=1 => (
                Request::Create(CreateRequest {
                    kind: CreateKind::Create,
                    path: p.clone(),
                    data: Some(value.clone()),
                    acl: Acl::open_unsafe(),
                    flags: 0,
                    ttl_ms: -1,
                }),
                OpKind::Create { path: p, data: value },
            ),
            2..=4 => {
                let version = if rng.chance(0.5) { -1 } else { rng.below(4) as i32 };
                (
                    Request::SetData { path: p.clone(), data: Some(value.clone()), version },
                    OpKind::SetData { path: p, data: value, version },
                )
            }
            5 => {
                let version = if rng.chance(0.7) { -1 } else { rng.below(4) as i32 };
                (Request::Delete { path: p.clone(), version }, OpKind::Delete { path: p, version })
            }
            _ => (Request::GetData { path: p.clone(), watch: false }, OpKind::GetData { path: p }),
        }
    }
}

/// What a reply says about the operation.
pub(super) fn outcome(kind: &OpKind, reply: &Reply) -> OpOutcome {
    match reply.result() {
        Ok(resp) => match (kind, resp) {
            (OpKind::SetData { .. }, Response::Stat(stat)) => OpOutcome::Ok { version: Some(stat.version), data: None },
            (OpKind::GetData { .. }, Response::GetData { data, stat }) => {
                OpOutcome::Ok { version: Some(stat.version), data: Some(data.unwrap_or_default()) }
            }
            _ => OpOutcome::Ok { version: None, data: None },
        },
        Err(ClientError::Server(code)) => OpOutcome::Err(code),
        // Connection lost or session gone before the answer: it may have happened or not.
        Err(_) => OpOutcome::Unknown,
    }
}

/// A recorded operation, just issued.
pub(super) fn issued(client: u64, kind: OpKind, at: Millis) -> HistOp {
    HistOp { client, kind, call: at, ret: None, outcome: OpOutcome::Unknown, zxid: None, session: 0, xid: 0 }
}

//! `Client`: one session driven to completion call by call, for the one-shot CLI, the demo's
//! read-back, the bench's setup and the tests. It owns a `mio::Poll` with one `Connection`.
//!
//! Every wait is bounded by the client's operation timeout; a call made while the connection
//! is down waits (within that bound) for the driver to reconnect, to the next endpoint, with
//! the same session.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::conn::Connection;
use super::session::{Event, Session};
use super::ClientError;
use crate::jute::{CreateKind, CreateRequest, Request, Response, WatcherEvent};
use crate::proto::{Acl, Millis, Stat};

#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub session_timeout_ms: i32,
    /// Bound on connecting and on each call.
    pub op_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions { session_timeout_ms: 10_000, op_timeout: Duration::from_secs(10) }
    }
}

pub struct Client {
    poll: Poll,
    mio_events: Events,
    conn: Connection,
    base: Instant,
    events: Vec<Event>,
    /// Replies read while waiting for another one (pipelined calls), in arrival order.
    replies: VecDeque<super::Reply>,
    watches: VecDeque<WatcherEvent>,
    opts: ClientOptions,
}

/// Parses "h:p,h:p" (names allowed) into socket addresses, in order.
pub fn parse_endpoints(s: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let addrs = part.to_socket_addrs().map_err(|e| ClientError::BadArguments(format!("endpoint {part}: {e}")))?;
        out.extend(addrs.take(1));
    }
    if out.is_empty() {
        return Err(ClientError::BadArguments(format!("no endpoint in {s:?}")));
    }
    Ok(out)
}

impl Client {
    /// Connects to the first endpoint that answers (in the given order) and waits for the
    /// session to be established.
    pub fn connect(endpoints: &[SocketAddr], opts: ClientOptions) -> Result<Client, ClientError> {
        let poll = Poll::new().map_err(|e| ClientError::ConnectionLoss(format!("poll: {e}")))?;
        let conn = Connection::new(Token(0), endpoints.to_vec(), 0, Session::new(opts.session_timeout_ms));
        let mut c = Client {
            poll,
            mio_events: Events::with_capacity(16),
            conn,
            base: Instant::now(),
            events: Vec::new(),
            replies: VecDeque::new(),
            watches: VecDeque::new(),
            opts,
        };
        let deadline = Instant::now() + c.opts.op_timeout;
        c.wait_connected(deadline)?;
        Ok(c)
    }

    pub fn session_id(&self) -> i64 {
        self.conn.core().session_id()
    }

    pub fn passwd(&self) -> &[u8] {
        self.conn.core().passwd()
    }

    pub fn endpoint(&self) -> SocketAddr {
        self.conn.endpoint()
    }

    fn now(&self) -> Millis {
        self.base.elapsed().as_millis() as Millis
    }

    fn wait_connected(&mut self, deadline: Instant) -> Result<(), ClientError> {
        while !self.conn.is_connected() {
            if self.conn.is_dead() {
                return Err(ClientError::SessionExpired);
            }
            if Instant::now() >= deadline {
                let why = self.conn.last_error.clone().unwrap_or_else(|| "no server answered".into());
                return Err(ClientError::ConnectionLoss(why));
            }
            self.turn(deadline)?;
        }
        Ok(())
    }

    /// One poll turn (at most until `deadline` or the connection's next timer).
    fn turn(&mut self, deadline: Instant) -> Result<(), ClientError> {
        let now = self.now();
        let mut wait = deadline.saturating_duration_since(Instant::now());
        if let Some(d) = self.conn.next_deadline() {
            wait = wait.min(Duration::from_millis((d - now).max(0) as u64));
        }
        match self.poll.poll(&mut self.mio_events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ClientError::ConnectionLoss(format!("poll: {e}"))),
        }
        let now = self.now();
        for ev in self.mio_events.iter() {
            self.conn.ready(self.poll.registry(), ev, now, &mut self.events);
        }
        self.conn.tick(self.poll.registry(), now, &mut self.events);
        for ev in self.events.drain(..) {
            match ev {
                Event::Reply(r) => self.replies.push_back(r),
                Event::Watch(w) => self.watches.push_back(w),
                Event::Connected { .. } | Event::Disconnected | Event::Expired => {}
            }
        }
        Ok(())
    }

    /// Sends several requests back to back (pipelined) and returns their results in order.
    pub fn call_many(&mut self, reqs: &[Request]) -> Vec<Result<Response, ClientError>> {
        let deadline = Instant::now() + self.opts.op_timeout;
        if let Err(e) = self.wait_connected(deadline) {
            let name = e.code();
            return reqs.iter().map(|_| Err(ClientError::from_code(name))).collect();
        }
        let now = self.now();
        let mut xids = Vec::with_capacity(reqs.len());
        for r in reqs {
            xids.push(self.conn.submit(now, r, 0));
        }
        self.conn.flush(self.poll.registry(), now, &mut self.events);
        let mut out = Vec::with_capacity(reqs.len());
        for x in xids {
            out.push(match x {
                Ok(xid) => self.wait_reply(xid, deadline),
                Err(e) => Err(e),
            });
        }
        out
    }

    fn wait_reply(&mut self, xid: i32, deadline: Instant) -> Result<Response, ClientError> {
        loop {
            if let Some(i) = self.replies.iter().position(|r| r.xid == xid) {
                let r = self.replies.remove(i).ok_or(ClientError::Timeout(0))?;
                return r.result();
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(self.opts.op_timeout.as_millis() as u64));
            }
            self.turn(deadline)?;
        }
    }

    /// One request, one reply.
    pub fn call(&mut self, req: Request) -> Result<Response, ClientError> {
        let mut v = self.call_many(std::slice::from_ref(&req));
        v.pop().unwrap_or(Err(ClientError::Timeout(0)))
    }

    /// The next watch notification, waiting up to `timeout`.
    pub fn next_watch(&mut self, timeout: Duration) -> Result<Option<WatcherEvent>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(w) = self.watches.pop_front() {
                return Ok(Some(w));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            if self.conn.is_dead() {
                return Err(ClientError::SessionExpired);
            }
            self.turn(deadline)?;
        }
    }

    /// Sends closeSession and waits (bounded) for its reply; the server closes the socket.
    pub fn close(mut self) -> Result<(), ClientError> {
        let r = self.call(Request::CloseSession).map(|_| ());
        self.conn.shutdown(self.poll.registry());
        r
    }

    // Conveniences for the common ops.

    pub fn create(&mut self, path: &str, data: &[u8], flags: i32) -> Result<String, ClientError> {
        match self.call(Request::Create(create_request(path, data, flags)))? {
            Response::Create { path } | Response::Create2 { path, .. } => Ok(path),
            r => Err(unexpected(r)),
        }
    }

    pub fn get_data(&mut self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat), ClientError> {
        match self.call(Request::GetData { path: path.into(), watch })? {
            Response::GetData { data, stat } => Ok((data, stat)),
            r => Err(unexpected(r)),
        }
    }

    pub fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, ClientError> {
        match self.call(Request::Exists { path: path.into(), watch })? {
            Response::Stat(s) => Ok(s),
            r => Err(unexpected(r)),
        }
    }

    pub fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, ClientError> {
        match self.call(Request::SetData { path: path.into(), data: Some(data.to_vec()), version })? {
            Response::Stat(s) => Ok(s),
            r => Err(unexpected(r)),
        }
    }

    pub fn delete(&mut self, path: &str, version: i32) -> Result<(), ClientError> {
        self.call(Request::Delete { path: path.into(), version }).map(|_| ())
    }

    pub fn get_children(&mut self, path: &str) -> Result<(Vec<String>, Stat), ClientError> {
        match self.call(Request::GetChildren2 { path: path.into(), watch: false })? {
            Response::GetChildren2 { children, stat } => Ok((children, stat)),
            r => Err(unexpected(r)),
        }
    }
}

/// A create2 request (the reply carries the Stat) with the open ACL.
pub fn create_request(path: &str, data: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        kind: CreateKind::Create2,
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl_ms: -1,
    }
}

fn unexpected(r: Response) -> ClientError {
    ClientError::ConnectionLoss(format!("unexpected reply body {r:?}"))
}

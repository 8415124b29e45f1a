//! The sans-IO core of one client session: the ZooKeeper client protocol of `ClientCnxn.java`
//! without sockets or clocks. The driver (`conn.rs`) tells it when a TCP connection is up,
//! hands it whole frames and the time, and writes out what `transmit()` holds.
//!
//! What it does: the connect handshake (a new session, or resuming one with its id, password
//! and the last zxid seen, so a reconnect to another server keeps the session); xids; matching
//! replies to requests (the server answers in request order, so the oldest pending request must
//! be the one answered — anything else is a protocol error and closes the connection);
//! pipelining (any number of requests may be pending); pings after timeout/3 of silence from
//! us, and giving up on a connection after 2/3 of the timeout of silence from the server (the
//! Java client's read timeout); watch notifications; auth replies (which may overtake).
//!
//! Invariant: every request accepted by `submit` produces exactly one `Event::Reply`, either
//! the server's or a synthesized `ConnectionLoss` / `SessionExpired` when the connection or
//! session ends first. The bench relies on this to count every request it sent.
//!
//! Watches survive a reconnect, as with `ClientCnxn`: the core remembers every watch the
//! server accepted (data, exist and child watches from a successful read, persistent ones
//! from addWatch; one-shot ones forgotten when they fire) and, when a reconnect resumes the
//! session, sends them in setWatches requests (at most `SET_WATCHES_MAX_BYTES` of paths
//! each) with the last zxid seen, so the server fires at once for what changed meanwhile.
//! Callers still see `Event::Disconnected`; they need not re-arm anything.

use std::collections::{BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};

use super::ClientError;
use crate::jute::{self, xid, ConnectRequest, Request, RequestHeader, Response, WatcherEvent};
use crate::proto::{ErrorCode, Millis};

/// A reply to one request, or its synthesized failure. The body is decoded only on demand
/// (`result`), so the bench can count replies without allocating.
#[derive(Clone, Debug)]
pub struct Reply {
    pub xid: i32,
    /// The caller's value from `submit`, returned untouched.
    pub tag: u64,
    pub opcode: i32,
    pub zxid: i64,
    pub err: i32,
    body: Bytes,
}

impl Reply {
    /// The decoded body, or the error the server (or the lost connection) gave.
    pub fn result(&self) -> Result<Response, ClientError> {
        if self.err != 0 {
            return Err(ClientError::from_code(self.err));
        }
        Ok(jute::decode_response(self.opcode, &self.body)?)
    }
}

/// What the core tells its caller.
#[derive(Clone, Debug)]
pub enum Event {
    /// The handshake finished; `resumed` is true when an existing session was kept.
    Connected { session_id: i64, timeout_ms: i32, resumed: bool },
    Reply(Reply),
    Watch(WatcherEvent),
    /// The connection ended; the session may live on and the driver will redial.
    Disconnected,
    /// The server refused the session (expired, or a wrong password). Final for this session.
    Expired,
}

/// What the driver tells the core.
#[derive(Debug)]
pub enum Input {
    /// A TCP connection to some server is established: start the handshake.
    TcpConnected,
    /// One whole frame's payload (no length prefix).
    Frame(Bytes),
    /// The TCP connection ended (EOF, error, or the driver gave up on it).
    TcpClosed,
    /// Time passed: send a ping, or give up on a silent connection.
    Tick,
}

/// The core's verdict on the current connection after an input.
#[derive(Debug)]
pub enum Directive {
    Keep,
    /// Drop the socket. Pending requests have already been failed and `Disconnected` or
    /// `Expired` emitted.
    Close(ClientError),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// No connection. The session (if any) may still be alive on the servers.
    Idle,
    Handshaking { since: Millis },
    Connected,
    Expired,
}

#[derive(Clone, Debug)]
struct Pending {
    xid: i32,
    opcode: i32,
    tag: u64,
    /// The watch the request asks for, registered if the server's answer sets it.
    watch: Option<(WatchAsk, String)>,
    /// Sent by the core itself (setWatches on a resume): no `Event::Reply` for it.
    internal: bool,
}

/// What kind of watch a request asks for (`ZKWatchManager`'s registration rules).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum WatchAsk {
    /// getData: a data watch, if the node exists.
    Data,
    /// exists: a data watch if the node exists, an exist watch if not.
    Exists,
    /// getChildren / getChildren2: a child watch, if the node exists.
    Child,
    /// addWatch mode 0 / 1.
    Persistent,
    PersistentRecursive,
}

/// setWatches frames carry at most this many bytes of paths (`ClientCnxn`'s
/// SET_WATCHES_MAX_LENGTH), so a client with many watches stays under jute.maxbuffer.
const SET_WATCHES_MAX_BYTES: usize = 128 * 1024;

/// The watches the server holds for this session, by kind.
#[derive(Default, Debug)]
struct Watches {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    persistent_recursive: BTreeSet<String>,
}

impl Watches {
    /// A reply to a watching request arrived with `err`.
    fn registered(&mut self, ask: WatchAsk, path: String, err: i32) {
        let no_node = err == ErrorCode::NoNode.code();
        match ask {
            WatchAsk::Data if err == 0 => self.data.insert(path),
            WatchAsk::Exists if err == 0 => self.data.insert(path),
            WatchAsk::Exists if no_node => self.exist.insert(path),
            WatchAsk::Child if err == 0 => self.child.insert(path),
            WatchAsk::Persistent if err == 0 => self.persistent.insert(path),
            WatchAsk::PersistentRecursive if err == 0 => self.persistent_recursive.insert(path),
            _ => false,
        };
    }

    /// A notification fired: one-shot watches it consumed are gone from the server.
    fn fired(&mut self, ev: &WatcherEvent) {
        use crate::proto::EventType as E;
        let p = &ev.path;
        let code = |e: E| e.code();
        match ev.event_type {
            t if t == code(E::NodeCreated) || t == code(E::NodeDataChanged) => {
                self.data.remove(p);
                self.exist.remove(p);
            }
            t if t == code(E::NodeChildrenChanged) => {
                self.child.remove(p);
            }
            t if t == code(E::NodeDeleted) => {
                self.data.remove(p);
                self.exist.remove(p);
                self.child.remove(p);
            }
            _ => {}
        }
    }

    /// removeWatches succeeded for `path` and `watch_type` (1 children, 2 data, 3 any).
    fn removed(&mut self, path: &str, watch_type: i32) {
        if watch_type == 1 || watch_type == 3 {
            self.child.remove(path);
        }
        if watch_type == 2 || watch_type == 3 {
            self.data.remove(path);
            self.exist.remove(path);
        }
        if watch_type == 3 {
            self.persistent.remove(path);
            self.persistent_recursive.remove(path);
        }
    }

    /// The setWatches requests that re-arm every watch, each within `SET_WATCHES_MAX_BYTES`.
    fn set_watches(&self, relative_zxid: i64) -> Vec<Request> {
        let mut out = Vec::new();
        let mut lists: [Vec<String>; 5] = Default::default();
        let mut bytes = 0;
        let kinds = [&self.data, &self.exist, &self.child, &self.persistent, &self.persistent_recursive];
        for (k, set) in kinds.iter().enumerate() {
            for p in set.iter() {
                if bytes + p.len() > SET_WATCHES_MAX_BYTES && lists.iter().any(|l| !l.is_empty()) {
                    out.push(Self::request(relative_zxid, std::mem::take(&mut lists)));
                    bytes = 0;
                }
                bytes += p.len();
                lists[k].push(p.clone());
            }
        }
        if lists.iter().any(|l| !l.is_empty()) {
            out.push(Self::request(relative_zxid, lists));
        }
        out
    }

    fn request(relative_zxid: i64, lists: [Vec<String>; 5]) -> Request {
        let [data, exist, child, persistent, persistent_recursive] = lists;
        Request::SetWatches { relative_zxid, data, exist, child, persistent, persistent_recursive }
    }
}

pub struct Session {
    state: State,
    session_id: i64,
    passwd: Vec<u8>,
    requested_timeout_ms: i32,
    timeout_ms: i32,
    last_zxid: i64,
    next_xid: i32,
    pending: VecDeque<Pending>,
    watches: Watches,
    out: BytesMut,
    last_send_ms: Millis,
    last_recv_ms: Millis,
}

impl Session {
    /// A core for a new session that will ask for `requested_timeout_ms`.
    pub fn new(requested_timeout_ms: i32) -> Session {
        Session {
            state: State::Idle,
            session_id: 0,
            passwd: vec![0u8; 16],
            requested_timeout_ms,
            timeout_ms: requested_timeout_ms,
            last_zxid: 0,
            next_xid: 1,
            pending: VecDeque::new(),
            watches: Watches::default(),
            out: BytesMut::with_capacity(4096),
            last_send_ms: 0,
            last_recv_ms: 0,
        }
    }

    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    pub fn passwd(&self) -> &[u8] {
        &self.passwd
    }

    /// The negotiated session timeout (the requested one until the first handshake).
    pub fn timeout_ms(&self) -> i32 {
        self.timeout_ms
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    pub fn is_expired(&self) -> bool {
        self.state == State::Expired
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Forget an expired (or any) session so the next connection asks for a new one.
    pub fn renew(&mut self) {
        debug_assert!(self.pending.is_empty() || self.state != State::Expired);
        self.session_id = 0;
        self.passwd = vec![0u8; 16];
        self.timeout_ms = self.requested_timeout_ms;
        if self.state == State::Expired {
            self.state = State::Idle;
        }
    }

    /// Bytes waiting to be written to the socket.
    pub fn transmit(&self) -> &[u8] {
        &self.out
    }

    /// The driver wrote the first `n` bytes of `transmit()`.
    pub fn sent(&mut self, n: usize) {
        let _ = self.out.split_to(n.min(self.out.len()));
    }

    /// Queues a request. Only while connected: requests are not held across a reconnect,
    /// because the caller (a bench, a one-shot command) knows better what to retry.
    pub fn submit(&mut self, now: Millis, req: &Request, tag: u64) -> Result<i32, ClientError> {
        match self.state {
            State::Connected => {}
            State::Expired => return Err(ClientError::SessionExpired),
            _ => return Err(ClientError::ConnectionLoss("not connected".into())),
        }
        let opcode = req.opcode();
        let xid = match req {
            Request::Ping => xid::PING,
            Request::Auth { .. } => xid::AUTH,
            Request::SetWatches { .. } => xid::SET_WATCHES,
            _ => {
                let x = self.next_xid;
                // Wrap before i32::MAX so a long run never reaches the special negative xids.
                self.next_xid = if x >= i32::MAX - 1 { 1 } else { x + 1 };
                x
            }
        };
        let watch = match req {
            Request::GetData { path, watch: true } => Some((WatchAsk::Data, path.clone())),
            Request::Exists { path, watch: true } => Some((WatchAsk::Exists, path.clone())),
            Request::GetChildren { path, watch: true } | Request::GetChildren2 { path, watch: true } => {
                Some((WatchAsk::Child, path.clone()))
            }
            Request::AddWatch { path, mode: 0 } => Some((WatchAsk::Persistent, path.clone())),
            Request::AddWatch { path, mode: 1 } => Some((WatchAsk::PersistentRecursive, path.clone())),
            _ => None,
        };
        jute::encode_request(&mut self.out, RequestHeader { xid, op: opcode }, req);
        self.pending.push_back(Pending { xid, opcode, tag, watch, internal: false });
        self.last_send_ms = now;
        if let Request::RemoveWatches { path, watch_type } = req {
            // Forgotten when sent: whatever the answer, the caller no longer wants it, and
            // re-arming it on a reconnect would bring it back.
            self.watches.removed(path, *watch_type);
        }
        Ok(xid)
    }

    /// Watches this session holds at the server, as the core tracks them (for tests and
    /// tools): (data, exist, child, persistent, persistent recursive) counts.
    pub fn watch_counts(&self) -> [usize; 5] {
        let w = &self.watches;
        [w.data.len(), w.exist.len(), w.child.len(), w.persistent.len(), w.persistent_recursive.len()]
    }

    /// When the core next wants a `Tick`.
    pub fn next_deadline(&self) -> Option<Millis> {
        match self.state {
            State::Handshaking { since } => Some(since + self.handshake_limit_ms()),
            State::Connected => Some((self.last_send_ms + self.ping_interval_ms()).min(self.last_recv_ms + self.read_limit_ms())),
            State::Idle | State::Expired => None,
        }
    }

    fn ping_interval_ms(&self) -> Millis {
        (self.timeout_ms as Millis / 3).max(1)
    }

    /// `ClientCnxn`'s readTimeout: 2/3 of the session timeout without hearing anything.
    fn read_limit_ms(&self) -> Millis {
        (self.timeout_ms as Millis * 2 / 3).max(1)
    }

    fn handshake_limit_ms(&self) -> Millis {
        self.read_limit_ms()
    }

    pub fn step(&mut self, now: Millis, input: Input, events: &mut Vec<Event>) -> Directive {
        match input {
            Input::TcpConnected => {
                self.start_handshake(now);
                Directive::Keep
            }
            Input::Frame(frame) => {
                self.last_recv_ms = now;
                let r = match self.state {
                    State::Handshaking { .. } => self.on_connect_response(now, &frame, events),
                    State::Connected => self.on_reply(frame, events),
                    // A frame with no handshake under way cannot be ours.
                    State::Idle | State::Expired => Err(ClientError::ConnectionLoss("frame while not connected".into())),
                };
                match r {
                    Ok(()) => Directive::Keep,
                    Err(e) => self.close(e, events),
                }
            }
            Input::TcpClosed => {
                self.connection_ended(events);
                Directive::Keep
            }
            Input::Tick => self.on_tick(now, events),
        }
    }

    fn start_handshake(&mut self, now: Millis) {
        self.out.clear();
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: self.requested_timeout_ms,
            session_id: self.session_id,
            passwd: self.passwd.clone(),
            read_only: Some(false),
        };
        jute::encode_connect_request(&mut self.out, &req);
        self.state = State::Handshaking { since: now };
        self.last_send_ms = now;
        self.last_recv_ms = now;
    }

    fn on_connect_response(&mut self, now: Millis, frame: &[u8], events: &mut Vec<Event>) -> Result<(), ClientError> {
        let resp = jute::decode_connect_response(frame)?;
        if resp.timeout_ms <= 0 || resp.session_id == 0 {
            // `ZooKeeperServer.finishSessionInit`: a dead session or a wrong password.
            self.state = State::Expired;
            return Err(ClientError::SessionExpired);
        }
        let resumed = self.session_id != 0 && self.session_id == resp.session_id;
        self.session_id = resp.session_id;
        self.passwd = resp.passwd;
        self.timeout_ms = resp.timeout_ms;
        self.state = State::Connected;
        self.last_recv_ms = now;
        if !resumed {
            self.watches = Watches::default();
        }
        // Re-arm every watch before anything the caller sends next (ClientCnxn's
        // primeConnection): the server fires at once for what changed after last_zxid.
        for req in self.watches.set_watches(self.last_zxid) {
            jute::encode_request(&mut self.out, RequestHeader { xid: xid::SET_WATCHES, op: req.opcode() }, &req);
            self.pending.push_back(Pending { xid: xid::SET_WATCHES, opcode: req.opcode(), tag: 0, watch: None, internal: true });
            self.last_send_ms = now;
        }
        events.push(Event::Connected { session_id: self.session_id, timeout_ms: self.timeout_ms, resumed });
        Ok(())
    }

    fn on_reply(&mut self, frame: Bytes, events: &mut Vec<Event>) -> Result<(), ClientError> {
        let (header, body) = jute::decode_reply_header(&frame)?;
        if header.zxid > self.last_zxid {
            self.last_zxid = header.zxid;
        }
        let pending = match header.xid {
            xid::NOTIFICATION => {
                let ev = jute::decode_watcher_event(body)?;
                self.watches.fired(&ev);
                events.push(Event::Watch(ev));
                return Ok(());
            }
            xid::PING if !self.pending.iter().any(|p| p.xid == xid::PING) => return Ok(()),
            // Auth (and an explicit ping or setWatches) are answered out of band by the
            // server, so they may overtake ordinary requests.
            x @ (xid::AUTH | xid::PING | xid::SET_WATCHES) => {
                let i = self.pending.iter().position(|p| p.xid == x).ok_or_else(|| unexpected(x))?;
                self.pending.remove(i).ok_or_else(|| unexpected(x))?
            }
            x => {
                let front = self.pending.pop_front().ok_or_else(|| unexpected(x))?;
                if front.xid != x {
                    // Keep it pending so that it, too, is failed when the connection closes.
                    let next = front.xid;
                    self.pending.push_front(front);
                    return Err(ClientError::ConnectionLoss(format!("xid {x} answered while {next} was next")));
                }
                front
            }
        };
        if let Some((ask, path)) = pending.watch {
            self.watches.registered(ask, path, header.err);
        }
        if pending.internal {
            if header.err != 0 {
                return Err(ClientError::ConnectionLoss(format!("setWatches failed with {}", header.err)));
            }
            return Ok(());
        }
        let body = frame.slice_ref(body);
        events.push(Event::Reply(Reply {
            xid: pending.xid,
            tag: pending.tag,
            opcode: pending.opcode,
            zxid: header.zxid,
            err: header.err,
            body,
        }));
        if header.err == ErrorCode::AuthFailed.code() && pending.xid == xid::AUTH {
            // The server closes after a failed auth; say so before it does.
            return Err(ClientError::Server(header.err));
        }
        Ok(())
    }

    fn on_tick(&mut self, now: Millis, events: &mut Vec<Event>) -> Directive {
        match self.state {
            State::Handshaking { since } if now - since >= self.handshake_limit_ms() => {
                self.close(ClientError::ConnectionLoss("no handshake reply".into()), events)
            }
            State::Connected if now - self.last_recv_ms >= self.read_limit_ms() => {
                self.close(ClientError::ConnectionLoss(format!("server silent for {} ms", now - self.last_recv_ms)), events)
            }
            State::Connected if now - self.last_send_ms >= self.ping_interval_ms() => {
                jute::encode_request(&mut self.out, RequestHeader { xid: xid::PING, op: Request::Ping.opcode() }, &Request::Ping);
                self.last_send_ms = now;
                Directive::Keep
            }
            _ => Directive::Keep,
        }
    }

    fn close(&mut self, reason: ClientError, events: &mut Vec<Event>) -> Directive {
        self.connection_ended(events);
        Directive::Close(reason)
    }

    /// Fails every pending request and forgets unsent bytes. An expired session stays expired.
    fn connection_ended(&mut self, events: &mut Vec<Event>) {
        let err = if self.state == State::Expired { ErrorCode::SessionExpired } else { ErrorCode::ConnectionLoss };
        for p in self.pending.drain(..).filter(|p| !p.internal) {
            events.push(Event::Reply(Reply { xid: p.xid, tag: p.tag, opcode: p.opcode, zxid: -1, err: err.code(), body: Bytes::new() }));
        }
        self.out.clear();
        if self.state == State::Expired {
            events.push(Event::Expired);
        } else if self.state != State::Idle {
            self.state = State::Idle;
            events.push(Event::Disconnected);
        }
    }
}

fn unexpected(xid: i32) -> ClientError {
    ClientError::ConnectionLoss(format!("reply with xid {xid} matches no pending request"))
}

//! The mio driver of one session: a non-blocking socket to one of the endpoints, the framing,
//! and the session core. Several `Connection`s can share one `mio::Poll` (the bench runs
//! dozens per thread); `Client` (blocking.rs) wraps one for one-shot use.
//!
//! The driver makes no protocol decisions: it turns readiness into core inputs and writes
//! what the core queued. When a connection ends it dials the next endpoint in the list with
//! the same session (the core resumes it), after a short backoff once every endpoint has
//! failed in a row.
//!
//! Reads: readiness is edge-triggered, so a socket is read until `WouldBlock` — or until a
//! read returns less than the buffer had room for, which on Linux means the kernel buffer is
//! empty and new data will raise a new edge. That skips one `read` syscall per wakeup, a
//! measurable share of the bench's per-request cost.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::session::{Directive, Event, Input, Session};
use super::ClientError;
use crate::jute::{self, Request};
use crate::proto::Millis;

/// Bytes one `read` asks for.
const READ_CHUNK: usize = 16 * 1024;
/// Pause before redialing once every endpoint has failed in a row.
const REDIAL_BACKOFF_MS: Millis = 100;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Link {
    /// No socket; dial again at `retry_at`.
    Down { retry_at: Millis },
    /// Non-blocking connect under way (completion shows as writable).
    Dialing,
    Up,
    /// The session expired; nothing more happens until `renew`.
    Dead,
}

pub struct Connection {
    token: Token,
    endpoints: Vec<SocketAddr>,
    next_endpoint: usize,
    /// Dial failures since the last successful handshake.
    failures_in_row: usize,
    stream: Option<TcpStream>,
    link: Link,
    core: Session,
    rbuf: BytesMut,
    scratch: Box<[u8]>,
    max_frame: usize,
    /// WRITABLE is in the registered interest.
    want_writable: bool,
    /// Why the last connection ended, for error messages.
    pub last_error: Option<String>,
}

impl Connection {
    /// A connection that will first dial `endpoints[first % len]`. Call `tick` to dial.
    pub fn new(token: Token, endpoints: Vec<SocketAddr>, first: usize, core: Session) -> Connection {
        assert!(!endpoints.is_empty(), "a connection needs at least one endpoint");
        let next_endpoint = first % endpoints.len();
        Connection {
            token,
            endpoints,
            next_endpoint,
            failures_in_row: 0,
            stream: None,
            link: Link::Down { retry_at: 0 },
            core,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            max_frame: jute::DEFAULT_MAX_FRAME,
            want_writable: false,
            last_error: None,
        }
    }

    pub fn token(&self) -> Token {
        self.token
    }

    pub fn core(&self) -> &Session {
        &self.core
    }

    pub fn is_connected(&self) -> bool {
        self.link == Link::Up && self.core.is_connected()
    }

    pub fn is_dead(&self) -> bool {
        self.link == Link::Dead
    }

    /// The endpoint of the current (or last) connection.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoints[(self.next_endpoint + self.endpoints.len() - 1) % self.endpoints.len()]
    }

    /// Start over with a new session after expiry.
    pub fn renew(&mut self, now: Millis) {
        self.core.renew();
        if self.link == Link::Dead {
            self.link = Link::Down { retry_at: now };
        }
    }

    pub fn submit(&mut self, now: Millis, req: &Request, tag: u64) -> Result<i32, ClientError> {
        self.core.submit(now, req, tag)
    }

    /// When `tick` should next run.
    pub fn next_deadline(&self) -> Option<Millis> {
        match self.link {
            Link::Down { retry_at } => Some(retry_at),
            Link::Up => self.core.next_deadline(),
            Link::Dialing | Link::Dead => None,
        }
    }

    /// Timers: redial when due, pings and silence checks in the core. Call at least when
    /// `next_deadline` has passed; calling more often is harmless.
    pub fn tick(&mut self, registry: &Registry, now: Millis, events: &mut Vec<Event>) {
        match self.link {
            Link::Down { retry_at } if now >= retry_at => self.dial(registry, now),
            Link::Up => {
                if let Directive::Close(e) = self.core.step(now, Input::Tick, events) {
                    self.drop_socket(registry, now, e);
                } else {
                    self.flush(registry, now, events);
                }
            }
            _ => {}
        }
    }

    fn dial(&mut self, registry: &Registry, now: Millis) {
        let addr = self.endpoints[self.next_endpoint];
        self.next_endpoint = (self.next_endpoint + 1) % self.endpoints.len();
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.dial_failed(now, format!("connect {addr}: {e}")),
        };
        if let Err(e) = registry.register(&mut stream, self.token, Interest::READABLE | Interest::WRITABLE) {
            return self.dial_failed(now, format!("register {addr}: {e}"));
        }
        self.stream = Some(stream);
        self.want_writable = true;
        self.link = Link::Dialing;
    }

    fn dial_failed(&mut self, now: Millis, why: String) {
        self.failures_in_row += 1;
        let wait = if self.failures_in_row.is_multiple_of(self.endpoints.len()) { REDIAL_BACKOFF_MS } else { 0 };
        self.link = Link::Down { retry_at: now + wait };
        self.last_error = Some(why);
    }

    /// A readiness event for this connection's token.
    pub fn ready(&mut self, registry: &Registry, event: &mio::event::Event, now: Millis, events: &mut Vec<Event>) {
        if self.link == Link::Dialing && !self.finish_dial(registry, now, events) {
            return;
        }
        if self.link != Link::Up {
            return;
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(registry, now, events);
        }
        if self.link == Link::Up && !self.core.transmit().is_empty() {
            self.flush(registry, now, events);
        }
    }

    /// True once the socket is connected and the handshake queued.
    fn finish_dial(&mut self, registry: &Registry, now: Millis, events: &mut Vec<Event>) -> bool {
        let Some(stream) = self.stream.as_ref() else { return false };
        let addr = self.endpoints[(self.next_endpoint + self.endpoints.len() - 1) % self.endpoints.len()];
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.discard_socket(registry);
                self.dial_failed(now, format!("connect {addr}: {e}"));
                return false;
            }
            Ok(None) => {}
        }
        match stream.peer_addr() {
            Ok(_) => {}
            // Spurious wakeup: still connecting.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return false,
            Err(e) => {
                self.discard_socket(registry);
                self.dial_failed(now, format!("connect {addr}: {e}"));
                return false;
            }
        }
        let _ = stream.set_nodelay(true);
        // WRITABLE only while a write is blocked: with it always on, every ACK that frees
        // send-buffer space wakes the poll (an extra epoll wakeup per request).
        if let Some(s) = self.stream.as_mut() {
            if let Err(e) = registry.reregister(s, self.token, Interest::READABLE) {
                self.discard_socket(registry);
                self.dial_failed(now, format!("reregister: {e}"));
                return false;
            }
        }
        self.want_writable = false;
        self.link = Link::Up;
        self.rbuf.clear();
        let _ = self.core.step(now, Input::TcpConnected, events);
        self.flush(registry, now, events);
        self.link == Link::Up
    }

    fn read(&mut self, registry: &Registry, now: Millis, events: &mut Vec<Event>) {
        // Bounded: at most this many reads per wakeup, so one flooding server cannot starve
        // the other connections of the thread (edge-triggered: we come back via `Poll`
        // only if more arrives, so a read cut short by the bound re-checks at once below).
        for _ in 0..64 {
            let Some(stream) = self.stream.as_mut() else { return };
            let n = match stream.read(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.lost(registry, now, events, format!("read: {e}")),
            };
            // Copying out of a fixed scratch buffer costs n bytes; reading straight into
            // `rbuf` would need its spare room zeroed first, a 16 KiB memset per read.
            self.rbuf.extend_from_slice(&self.scratch[..n]);
            if n == 0 {
                self.drain_frames(registry, now, events);
                return self.lost(registry, now, events, "server closed the connection".into());
            }
            if !self.drain_frames(registry, now, events) {
                return;
            }
            if n < self.scratch.len() {
                return;
            }
        }
    }

    /// Hands every whole frame to the core. False if the connection was closed.
    fn drain_frames(&mut self, registry: &Registry, now: Millis, events: &mut Vec<Event>) -> bool {
        loop {
            match jute::next_frame(&mut self.rbuf, self.max_frame) {
                Ok(Some(frame)) => {
                    if let Directive::Close(e) = self.core.step(now, Input::Frame(frame), events) {
                        self.drop_socket(registry, now, e);
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(e) => {
                    self.lost(registry, now, events, format!("bad frame: {e}"));
                    return false;
                }
            }
        }
    }

    /// Writes what the core queued, until done or `WouldBlock` (then the writable edge
    /// brings us back).
    pub fn flush(&mut self, registry: &Registry, now: Millis, events: &mut Vec<Event>) {
        if self.link != Link::Up {
            return;
        }
        for _ in 0..1024 {
            let Some(stream) = self.stream.as_mut() else { return };
            let buf = self.core.transmit();
            if buf.is_empty() {
                return self.set_writable(registry, false);
            }
            match stream.write(buf) {
                Ok(0) => return self.lost(registry, now, events, "write returned 0".into()),
                Ok(n) => self.core.sent(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.set_writable(registry, true),
                Err(e) => return self.lost(registry, now, events, format!("write: {e}")),
            }
        }
    }

    fn set_writable(&mut self, registry: &Registry, on: bool) {
        if self.want_writable == on {
            return;
        }
        let Some(s) = self.stream.as_mut() else { return };
        let interest = if on { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        // A failed reregister leaves the old interest; the next read or write error ends it.
        if registry.reregister(s, self.token, interest).is_ok() {
            self.want_writable = on;
        }
    }

    /// The socket failed or closed: tell the core, then redial.
    fn lost(&mut self, registry: &Registry, now: Millis, events: &mut Vec<Event>, why: String) {
        let _ = self.core.step(now, Input::TcpClosed, events);
        self.drop_socket(registry, now, ClientError::ConnectionLoss(why));
    }

    /// The core already knows (it closed, or was told); drop the socket and plan the redial.
    fn drop_socket(&mut self, registry: &Registry, now: Millis, why: ClientError) {
        self.discard_socket(registry);
        self.last_error = Some(why.to_string());
        self.link = if self.core.is_expired() {
            Link::Dead
        } else {
            self.failures_in_row = 0;
            Link::Down { retry_at: now }
        };
    }

    fn discard_socket(&mut self, registry: &Registry) {
        if let Some(mut s) = self.stream.take() {
            let _ = registry.deregister(&mut s);
        }
    }

    /// Closes the socket without a closeSession (the server expires the session later).
    pub fn shutdown(&mut self, registry: &Registry) {
        self.discard_socket(registry);
        self.link = Link::Dead;
    }
}

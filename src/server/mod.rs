//! The event loop: the only place with sockets, clocks and file handles. It decides no
//! protocol question: it steps the replica core (`replica::Replica`) with what happened
//! and performs the outputs, in order.
//!
//! One `mio::Poll` per process, every connection in one `Slab`, the listener on a fixed
//! token. Each turn: wait for readiness (timeout = the nearest timer) → read every ready
//! connection until `WouldBlock`, cut frames, step the replica with them → run due timers →
//! hand this turn's appends to the sync thread (group commit) and step the replica with how
//! far the log is durable → flush write buffers. Standalone, client output made after an
//! append is held until the sync covering it completes, so a reply never overtakes its txn.
//!
//! Limits: a frame over `jute.maxbuffer` or a malformed request closes that one connection;
//! a connection whose unsent output passes `MAX_PENDING_OUT` is closed (a reader that never
//! reads); above `HIGH_WATER` the loop stops reading its requests until the output drains
//! (backpressure instead of an unbounded queue).
//!
//! TLS (`tls`): a connection may carry a `TlsConn`; then the read path feeds ciphertext
//! through it into the read buffer and the write path encrypts the write buffer through it.
//! Framing, limits and everything above see only plaintext.

pub mod admin;
pub mod fourlw;
mod oplog;
mod sync_progress;
pub mod peers;
pub mod tls;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::jute::{self, FrameError};
use crate::proto::Zxid;
use crate::replica::{Input, Now, Output, Replica};
use crate::service::{ClientId, Service};
pub use crate::storage::TxnSink;
pub use peers::Ensemble;
use peers::PeerLink;

const LISTENER: Token = Token(usize::MAX - 1);
const ELECTION_LISTENER: Token = Token(usize::MAX - 2);
const QUORUM_LISTENER: Token = Token(usize::MAX - 3);
/// The sync thread's wake-up (a sync completed).
const WAKER: Token = Token(usize::MAX - 4);
/// The admin HTTP listener.
const ADMIN_LISTENER: Token = Token(usize::MAX - 5);
/// SIGTERM / SIGINT arrived (see `stop_on_signals`).
const SIGNALS: Token = Token(usize::MAX - 6);
/// The TLS client listener (`secureClientPort`).
const SECURE_LISTENER: Token = Token(usize::MAX - 7);
/// Stop reading a connection's requests while this much output waits for it.
const HIGH_WATER: usize = 4 << 20;
/// A connection with this much unsent output is closed.
const MAX_PENDING_OUT: usize = 64 << 20;
const READ_CHUNK: usize = 64 << 10;
/// Bytes read from one client connection per loop turn (at least one maximal frame).
const READ_BUDGET: usize = 256 << 10;
/// Bytes read from one peer connection per loop turn (snapshot chunks are 1 MiB).
const PEER_READ_BUDGET: usize = 4 << 20;
/// Requests of one session in progress (a write in flight and what is pipelined behind
/// it) past which its connection is not read until some complete.
const SESSION_BACKLOG_MAX: usize = 1000;
/// A leader stops reading from its clients while this many proposals await their commit
/// (ZooKeeper has no such cap: its window is bounded only by its clients' limits). A few
/// thousand covers a quorum's fsync latency at full throughput many times over.
const PROPOSALS_IN_FLIGHT_MAX: u64 = 5000;
/// Inputs fed back by performing one step's outputs, stepped at once; more wait a turn.
const FEEDBACK_MAX: usize = 1000;

/// Static settings of the loop.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub client_addr: SocketAddr,
    pub max_frame: usize,
    /// Per client IP; 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `None` = every four-letter word allowed.
    pub four_lw_allowed: Option<Vec<String>>,
    pub mode: String,
    pub version: String,
    pub data_dir: String,
    pub data_log_dir: String,
    pub tick_ms: i32,
    pub server_id: u64,
    pub force_sync: bool,
    /// Requests in progress past which no client is read (`globalOutstandingLimit`).
    pub global_outstanding_limit: usize,
    /// Client connections in all; 0 = unlimited (`maxCnxns`).
    pub max_cnxns: u32,
    /// The admin HTTP server (`admin.*`), and what it reports beyond the loop's state.
    pub admin: admin::AdminSettings,
    /// An ensemble member's zoo.cfg: a committed reconfig is written next to it as
    /// `<file>.dynamic.<hex version>`, as ZooKeeper names its dynamic config files.
    pub dynamic_config_base: Option<std::path::PathBuf>,
}

struct Conn {
    stream: TcpStream,
    id: ClientId,
    peer: SocketAddr,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// No byte seen yet decides 4lw vs protocol until the first 4 bytes arrive.
    first_frame: bool,
    /// Close once the write buffer is flushed.
    closing: bool,
    /// Reading paused for backpressure.
    paused: bool,
    /// Reading paused because too many requests are in progress (its own or everyone's).
    throttled: bool,
    writable_registered: bool,
    role: ConnRole,
    /// Bytes of this connection's output written to the socket so far.
    flushed: u64,
    /// Standalone: output that may reveal txns not yet durable is held back. `gate` holds
    /// (end of such output, counted like `flushed`; the zxid that must be durable first),
    /// in order; output up to `released` may go.
    gate: VecDeque<(u64, Zxid)>,
    released: u64,
    /// TLS on this connection (secure client port, `sslQuorum` peers): the buffers above
    /// hold plaintext.
    tls: Option<Box<tls::TlsConn>>,
    /// A client connection that has delivered no complete frame yet (TLS handshake, or a
    /// ConnectRequest still to come) is closed at this time (`SILENT_CONN_MS`).
    silent_until: Option<i64>,
}

/// How long a new client connection may stay without one complete frame: one that never
/// finishes its TLS handshake or never sends its ConnectRequest would otherwise hold a
/// connection slot (and count against maxClientCnxns) for ever. ZooKeeper closes such
/// connections after `zookeeper.nio.sessionlessCnxnTimeout`, 10 s by default.
const SILENT_CONN_MS: i64 = 10_000;

/// What a connection in the slab is for.
enum ConnRole {
    Client,
    Peer(PeerLink),
    /// An HTTP request on the admin port (`admin`).
    Admin,
}

pub struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    conns: Slab<Conn>,
    per_ip: HashMap<std::net::IpAddr, u32>,
    generation: u64,
    /// The protocol: the service and, in an ensemble, replication.
    replica: Replica,
    /// What performing outputs told the loop (a dial failed, the state was rebuilt…): stepped
    /// right after the outputs of the step that caused it.
    feedback: VecDeque<Input<'static>>,
    /// Client connections with their silence deadline, in deadline order (`SILENT_CONN_MS`).
    /// At most one entry per accepted connection still open or closed since: bounded by
    /// maxCnxns and the accept rate over 10 s.
    silent: VecDeque<(i64, ClientId)>,
    /// Outputs of the current step (capacity reused).
    outputs: Vec<Output>,
    /// A log write failed in some step: the loop stops at its next check, before flushing
    /// anything (`stop_on_sink_error`). One field instead of a parameter threaded through
    /// every step, so no step's error can be dropped.
    sink_error: Option<io::Error>,
    sink: Box<dyn TxnSink>,
    cfg: LoopConfig,
    start: Instant,
    dirty: Vec<usize>,
    /// Connections un-paused by the last flush: their buffered requests run next turn.
    resumed: Vec<usize>,
    /// Connections that stopped reading at the per-turn budget with bytes possibly left
    /// in the kernel: read again next turn (edge-triggered readiness will not repeat).
    unread: Vec<usize>,
    /// The ensemble's sockets, when the config lists more than one server.
    ens: Option<Ensemble>,
    /// Wakes the loop when the sync thread finishes a sync.
    _waker: std::sync::Arc<mio::Waker>,
    /// Every txn up to this zxid is durable here.
    durable: Zxid,
    /// Standalone: connections with output held for durability.
    gated: Vec<usize>,
    /// Connections not read while requests in progress are over a limit.
    throttled: Vec<usize>,
    /// Where socket reads land before they are appended to a connection's buffer
    /// (allocated once: zeroing 64 KiB on every read showed in profiles).
    scratch: Vec<u8>,
    /// The admin HTTP server, metrics the loop records, recent replication events.
    admin: admin::AdminState,
    /// SIGTERM/SIGINT, when `stop_on_signals` installed the handler.
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// TLS settings (`enable_tls`); empty when TLS is off.
    tls: tls::TlsSetup,
    /// The secure client port, next to `listener`.
    secure_listener: Option<TcpListener>,
    /// `listener` itself is a secure port (only `secureClientPort` is configured).
    client_port_secure: bool,
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Raise the open-file limit to the hard limit: every client is a descriptor.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

fn fd_counts() -> (u64, u64) {
    let open = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    // SAFETY: as above.
    let max = unsafe {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur
        } else {
            0
        }
    };
    (open, max)
}

impl EventLoop {
    /// `listener`: the client port, bound by the caller before recovery (see `node`).
    pub fn new(
        cfg: LoopConfig,
        mut listener: TcpListener,
        replica: Replica,
        sink: Box<dyn TxnSink>,
        mut ens: Option<Ensemble>,
    ) -> io::Result<EventLoop> {
        raise_fd_limit();
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some(e) = ens.as_mut() {
            poll.registry().register(&mut e.election_listener, ELECTION_LISTENER, Interest::READABLE)?;
            poll.registry().register(&mut e.quorum_listener, QUORUM_LISTENER, Interest::READABLE)?;
        }
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let mut sink = sink;
        sink.attach_waker(waker.clone())?;
        let durable = sink.durable()?;
        let admin = admin::AdminState::new(cfg.admin.clone(), ens.is_some(), poll.registry());
        Ok(EventLoop {
            poll,
            listener,
            conns: Slab::new(),
            per_ip: HashMap::new(),
            generation: 0,
            replica,
            feedback: VecDeque::new(),
            silent: VecDeque::new(),
            outputs: Vec::new(),
            sink_error: None,
            sink,
            cfg,
            start: Instant::now(),
            dirty: Vec::new(),
            resumed: Vec::new(),
            unread: Vec::new(),
            ens,
            _waker: waker,
            durable,
            gated: Vec::new(),
            throttled: Vec::new(),
            scratch: vec![0; READ_CHUNK],
            admin,
            signals: None,
            tls: tls::TlsSetup::default(),
            secure_listener: None,
            client_port_secure: false,
        })
    }

    /// From now on SIGTERM and SIGINT stop the loop cleanly: `run` finishes the turn, makes
    /// everything appended durable (waiting for the fsync in flight), and returns `Ok`.
    pub fn stop_on_signals(&mut self) -> io::Result<()> {
        let mut signals = signal_hook_mio::v1_0::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])?;
        self.poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// The stop signal that arrived, if any.
    fn take_signal(&mut self) -> Option<&'static str> {
        let signals = self.signals.as_mut()?;
        let mut got = None;
        for sig in signals.pending() {
            got = Some(if sig == signal_hook::consts::SIGINT { "SIGINT" } else { "SIGTERM" });
        }
        got
    }

    /// After a stop signal: everything appended becomes durable (the fsync in flight is
    /// waited for, not abandoned), output that waited for it is flushed, then the loop ends.
    fn shut_down(&mut self, signal: &str) -> io::Result<()> {
        tracing::info!(signal = %signal, "shutting down: finishing the txn log sync");
        self.sink.sync()?;
        self.durable = self.sink.durable()?;
        if self.ens.is_none() {
            self.release_gates();
        }
        self.flush_dirty();
        tracing::info!(
            durable_zxid = %self.durable,
            clients = self.replica.service().client_count(),
            uptime_s = self.start.elapsed().as_secs(),
            "shut down cleanly"
        );
        Ok(())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn now(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    /// The service, for the loop's reports (4lw, admin).
    pub(super) fn service(&self) -> &Service {
        self.replica.service()
    }

    /// The nearest timer: the replica's, peer redials, silent connections.
    fn next_deadline(&self) -> i64 {
        let mut d = self.replica.next_deadline();
        if let Some(&(at, _)) = self.silent.front() {
            d = d.min(at);
        }
        match self.redial_deadline() {
            Some(e) => d.min(e),
            None => d,
        }
    }

    /// Step the replica with one input and perform its outputs, then whatever performing
    /// them fed back (bounded: feedback of feedback cannot go on without end).
    fn step(&mut self, input: Input<'_>) {
        self.step_one(input);
        for _ in 0..FEEDBACK_MAX {
            let Some(input) = self.feedback.pop_front() else { return };
            self.step_one(input);
        }
    }

    fn step_one(&mut self, input: Input<'_>) {
        let mono = self.start.elapsed();
        let now = Now { ms: mono.as_millis() as i64, us: mono.as_micros() as i64, wall_ms: wall_ms() };
        let mut outputs = std::mem::take(&mut self.outputs);
        self.replica.step(now, input, &mut outputs);
        for o in outputs.drain(..) {
            self.perform(o);
        }
        self.outputs = outputs;
    }

    /// Perform one output: client and log outputs here, peer ones in `peers`.
    fn perform(&mut self, output: Output) {
        self.admin.observer.on_output(&output);
        match output {
            Output::ToClient { client, bytes } => {
                if let Some(conn) = self.conns.get_mut(client.slot()) {
                    if conn.id == client {
                        conn.write_buf.extend_from_slice(&bytes);
                        self.dirty.push(client.slot());
                    }
                }
            }
            Output::CloseClient { client } => {
                if let Some(conn) = self.conns.get_mut(client.slot()) {
                    if conn.id == client {
                        conn.closing = true;
                        self.dirty.push(client.slot());
                    }
                }
            }
            Output::Append(txn) => {
                if let Err(e) = self.sink.append(&txn) {
                    self.sink_error.get_or_insert(e);
                }
            }
            Output::ServingChanged(_) | Output::Proposed { .. } | Output::Committed(_) => {}
            other => self.perform_peer(other),
        }
    }

    /// Run until an unrecoverable error, or a stop signal (`stop_on_signals`): `Ok` then.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut busy = false;
        let mut stop = None;
        loop {
            if let Some(signal) = stop {
                return self.shut_down(signal);
            }
            let now = self.now();
            let wait = if self.resumed.is_empty() && self.unread.is_empty() && !busy {
                let timers = (self.next_deadline() - now).clamp(0, 1000) as u64;
                let timers = self.sink.snapshot_wait_ms().map_or(timers, |w| w.min(timers));
                self.snapshot_wait_ms().map_or(timers, |w| w.min(timers))
            } else {
                0
            };
            match self.poll.poll(&mut events, Some(Duration::from_millis(wait))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // The turn's busy time, for `arbor_loop_turn_time_us` (a stall is its max).
            let turn_start = Instant::now();
            // Round robin: each connection left over from the last turn reads one budget.
            let mut again = std::mem::take(&mut self.resumed);
            again.append(&mut self.unread);
            again.sort_unstable();
            again.dedup();
            for slot in again {
                self.read_ready(slot, false);
            }
            for ev in events.iter() {
                match ev.token() {
                    // The turn below takes in whatever the sync thread finished.
                    WAKER => {}
                    SIGNALS => stop = stop.or(self.take_signal()),
                    LISTENER => self.accept(self.client_port_secure),
                    SECURE_LISTENER => self.accept(true),
                    ADMIN_LISTENER => self.admin_accept(),
                    ELECTION_LISTENER => self.accept_peer(peers::PeerKind::ElectionIn),
                    QUORUM_LISTENER => self.accept_peer(peers::PeerKind::QuorumIn),
                    Token(slot) => {
                        if ev.is_writable() {
                            self.peer_connect_done(slot);
                            self.dirty.push(slot);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            let open = !ev.is_read_closed() && !ev.is_error();
                            self.read_ready(slot, open);
                        }
                    }
                }
            }
            let now = self.now();
            self.close_silent(now);
            if self.ens.is_some() {
                self.dial_election_peers(now);
            }
            if now >= self.replica.next_deadline() {
                self.step(Input::Tick);
            }
            // Appends go to the file and a sync starts; the loop does not wait for it. What
            // a finished sync releases (acks, commits, replies) is written just below.
            self.sync_log();
            self.sync_log();
            self.stop_on_sink_error()?;
            self.pump_snapshots();
            if let Some(input) = self.feedback.pop_front() {
                self.step(input);
            }
            busy = self.replica.busy() || !self.feedback.is_empty();
            self.unthrottle();
            if self.ens.is_none() {
                self.gate_output();
            }
            // (The feedback step above may have appended too.)
            self.stop_on_sink_error()?;
            self.flush_dirty();
            let (tree, sessions) = self.replica.tree_for_snapshot();
            if let Some(refused) = self.sink.after_sync(tree, sessions) {
                self.step(Input::WritesRefused(refused));
            }
            self.admin_sweep(self.now());
            self.admin.observer.metrics.loop_turn.record_duration(turn_start.elapsed());
        }
    }

    /// A log write failed (in any step since the last check): nothing that depends on it may
    /// leave, so the loop stops before flushing.
    fn stop_on_sink_error(&mut self) -> io::Result<()> {
        match self.sink_error.take() {
            Some(e) => Err(io::Error::new(e.kind(), format!("txn log write failed: {e}"))),
            None => Ok(()),
        }
    }

    /// Write this turn's appends and start their sync; take in a finished one. Standalone,
    /// held output whose txns are now durable may go; in an ensemble the core hears how
    /// far the log is durable (a follower acks, the leader counts its own ack).
    fn sync_log(&mut self) {
        if self.sink_error.is_some() {
            return;
        }
        let durable = match self.sink.flush_log().and_then(|()| self.sink.durable()) {
            Ok(d) => d,
            Err(e) => {
                self.sink_error = Some(e);
                return;
            }
        };
        if durable == self.durable {
            return;
        }
        // (Lower only after a TRUNC or SNAP replaced the log.)
        self.durable = durable;
        self.step(Input::LogDurable { zxid: durable });
        if self.ens.is_none() {
            self.release_gates();
        }
    }

    /// Standalone, before the flush: output added this turn while some appended txn is not
    /// durable yet may reveal it (a write's reply, or a read that sees it), so it is held
    /// until the sync covering everything appended so far completes. Conservative: it
    /// costs at most one sync of latency, which the reply would have waited for anyway.
    fn gate_output(&mut self) {
        let appended = self.sink.last_appended();
        let open = appended <= self.durable;
        for &slot in &self.dirty {
            let Some(conn) = self.conns.get_mut(slot) else { continue };
            if !matches!(conn.role, ConnRole::Client) {
                continue;
            }
            let end = conn.flushed + conn.write_buf.len() as u64;
            if open {
                // Every earlier mark asked for less than what is durable now.
                conn.gate.clear();
                conn.released = end;
            } else if end > conn.released && conn.gate.back().is_none_or(|&(e, _)| e < end) {
                if conn.gate.is_empty() {
                    self.gated.push(slot);
                }
                conn.gate.push_back((end, appended));
            }
        }
    }

    /// The log is durable further: release held output that waited for it.
    fn release_gates(&mut self) {
        let durable = self.durable;
        let mut still = Vec::new();
        for slot in std::mem::take(&mut self.gated) {
            let Some(conn) = self.conns.get_mut(slot) else { continue };
            while let Some(&(end, need)) = conn.gate.front() {
                if need > durable {
                    break;
                }
                conn.released = end;
                conn.gate.pop_front();
            }
            if !conn.gate.is_empty() {
                still.push(slot);
            }
            self.dirty.push(slot);
        }
        still.sort_unstable();
        still.dedup();
        self.gated = still;
    }

    /// Past a limit that stops reading from every client: this server's outstanding
    /// requests (`globalOutstandingLimit`); on a leader, its proposals in flight
    /// (`PROPOSALS_IN_FLIGHT_MAX`); replication output backed up past `HIGH_WATER`
    /// (`Ensemble::replication_backed_up`). Writes forwarded by followers are not throttled here:
    /// each follower bounds its own by its `globalOutstandingLimit`, so the leader's window
    /// stays below the cap plus the followers' limits, and its acks keep flowing.
    fn overloaded(&self) -> bool {
        self.replica.outstanding() >= self.cfg.global_outstanding_limit
            || self.replica.proposals_in_flight() >= PROPOSALS_IN_FLIGHT_MAX
            || match (self.ens.as_ref(), self.replica.zab()) {
                (Some(e), Some(zab)) => e.replication_backed_up(&self.conns, HIGH_WATER, zab.role(), zab.quorum_size()),
                _ => false,
            }
    }

    /// Throttled connections whose limits allow it again are read next turn.
    fn unthrottle(&mut self) {
        if self.throttled.is_empty() || self.overloaded() {
            return;
        }
        let service = self.replica.service();
        let conns = &mut self.conns;
        let resumed = &mut self.resumed;
        self.throttled.retain(|&slot| {
            let Some(conn) = conns.get_mut(slot) else { return false };
            if service.backlog(conn.id) >= SESSION_BACKLOG_MAX {
                return true;
            }
            conn.throttled = false;
            resumed.push(slot);
            false
        });
    }

    /// `secure`: from the TLS client port.
    fn accept(&mut self, secure: bool) {
        loop {
            let accepted = match (secure, self.secure_listener.as_ref()) {
                (true, Some(l)) if !self.client_port_secure => l.accept(),
                _ => self.listener.accept(),
            };
            match accepted {
                Ok((mut stream, peer)) => {
                    let max = self.cfg.max_cnxns;
                    if max > 0 && self.replica.service().client_count() >= max as usize {
                        tracing::warn!(%peer, max_cnxns = max, "connection refused: maxCnxns client connections already");
                        continue;
                    }
                    let tls = match secure {
                        true => match self.client_tls() {
                            Some(t) => Some(t),
                            None => continue,
                        },
                        false => None,
                    };
                    let limit = self.cfg.max_client_cnxns;
                    let count = self.per_ip.entry(peer.ip()).or_insert(0);
                    if limit > 0 && *count >= limit {
                        tracing::warn!(%peer, max_client_cnxns = limit, "connection refused: too many connections from this IP (maxClientCnxns)");
                        continue;
                    }
                    *count += 1;
                    let _ = stream.set_nodelay(true);
                    let silent_until = self.now() + SILENT_CONN_MS;
                    let entry = self.conns.vacant_entry();
                    let slot = entry.key();
                    self.generation += 1;
                    let id = ClientId((self.generation << 32) | slot as u64);
                    if let Err(e) = self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE) {
                        tracing::warn!(%peer, error = %e, "cannot register a client connection");
                        if let Some(c) = self.per_ip.get_mut(&peer.ip()) {
                            *c = c.saturating_sub(1);
                        }
                        continue;
                    }
                    entry.insert(Conn {
                        stream,
                        id,
                        peer,
                        read_buf: BytesMut::with_capacity(1024),
                        write_buf: BytesMut::new(),
                        first_frame: true,
                        closing: false,
                        paused: false,
                        throttled: false,
                        writable_registered: false,
                        role: ConnRole::Client,
                        flushed: 0,
                        gate: VecDeque::new(),
                        released: 0,
                        tls,
                        silent_until: Some(silent_until),
                    });
                    // Deadlines are pushed in time order (a constant timeout): a queue.
                    self.silent.push_back((silent_until, id));
                    self.step(Input::ClientConnected { client: id, addr: peer.to_string() });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: leave the rest in the backlog; we retry on the
                    // next readiness event.
                    tracing::warn!(error = %e, "accept failed on the client port");
                    return;
                }
            }
        }
    }

    /// Read what the kernel holds for one connection (up to a per-turn budget), then
    /// process the complete frames.
    ///
    /// Readiness is edge-triggered: a connection is not reported again until new bytes
    /// arrive, so one that stops before `WouldBlock` must be read again by us. It goes on
    /// `unread` (served at the start of the next turn, which then polls without waiting),
    /// unless it stopped because it is paused for backpressure: the flush that un-pauses it
    /// puts it on `resumed`, which reads it the same way. The budget keeps one busy
    /// connection from starving the others within a turn.
    ///
    /// `open`: the readiness event said nothing of a hang-up or error. Then a read that
    /// fills less than the scratch buffer has emptied the socket, and the read that would
    /// only say `WouldBlock` is skipped (half of all reads under load): bytes that arrive
    /// later raise a new edge. Otherwise (or when reading on our own initiative) we read on
    /// until `WouldBlock` or end of stream, so a FIN behind the data is not missed.
    fn read_ready(&mut self, slot: usize, open: bool) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        if conn.closing {
            return;
        }
        let is_peer = matches!(conn.role, ConnRole::Peer(_));
        let is_admin = matches!(conn.role, ConnRole::Admin);
        let budget = if is_peer {
            PEER_READ_BUDGET
        } else if is_admin {
            admin::http::MAX_REQUEST_BYTES
        } else {
            READ_BUDGET.max(self.cfg.max_frame + 8)
        };
        let mut eof = false;
        let mut more = false;
        let mut taken = 0usize;
        let scratch = &mut self.scratch[..];
        // A paused or throttled client's requests stay in the kernel (backpressure).
        while !conn.paused && !conn.throttled {
            if taken >= budget {
                more = true;
                break;
            }
            match conn.stream.read(scratch) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    taken += n;
                    match conn.tls.as_mut() {
                        None => conn.read_buf.extend_from_slice(&scratch[..n]),
                        Some(tls) => match tls.feed(&scratch[..n], &mut conn.read_buf) {
                            Ok(false) => {}
                            Ok(true) => {
                                eof = true;
                                break;
                            }
                            Err(e) => {
                                // A plain-text client on the secure port ends here.
                                tracing::info!(addr = %conn.peer, error = %e, "TLS failed; closing the connection");
                                tls.close(&mut conn.stream, false);
                                conn.read_buf.clear();
                                eof = true;
                                break;
                            }
                        },
                    }
                    if open && n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if is_admin {
            // Past the budget the head is too large: answered with 431 (no more reads).
            self.admin_input(slot, eof);
            return;
        }
        self.tls_after_read(slot);
        if is_peer {
            self.process_peer_frames(slot);
        } else {
            self.process_frames(slot);
        }
        if eof {
            self.remove(slot);
        } else if more {
            self.unread.push(slot);
        }
    }

    fn process_frames(&mut self, slot: usize) {
        loop {
            let overloaded = self.overloaded();
            let Some(conn) = self.conns.get_mut(slot) else { return };
            if conn.closing {
                return;
            }
            if conn.write_buf.len() > HIGH_WATER {
                if !conn.paused {
                    conn.paused = true;
                    self.dirty.push(slot);
                }
                return;
            }
            // A connection's first frame (a four-letter word or a ConnectRequest) is read
            // even when overloaded: it adds no request to wait on, and a monitoring `mntr`
            // must not starve behind the clients that filled the limit.
            if (overloaded && !conn.first_frame) || self.replica.service().backlog(conn.id) >= SESSION_BACKLOG_MAX {
                // Its frames wait in `read_buf` (at most one read budget) and the kernel.
                if !conn.throttled {
                    conn.throttled = true;
                    self.throttled.push(slot);
                }
                return;
            }
            if conn.first_frame {
                if conn.read_buf.len() < 4 {
                    return;
                }
                if let Some(word) = fourlw::is_word(&conn.read_buf[..4]) {
                    let id = conn.id;
                    self.four_letter(id, word);
                    return;
                }
                conn.first_frame = false;
            }
            let frame = match jute::next_frame(&mut conn.read_buf, self.cfg.max_frame) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(FrameError::TooLarge { len, .. }) => {
                    tracing::warn!(client = %conn.peer, len, max = self.cfg.max_frame, "frame exceeds jute.maxbuffer; closing connection");
                    conn.closing = true;
                    conn.read_buf.clear();
                    self.dirty.push(slot);
                    return;
                }
            };
            conn.silent_until = None;
            let id = conn.id;
            self.step(Input::ClientFrame { client: id, frame: &frame });
        }
    }

    /// Close client connections that delivered no complete frame in `SILENT_CONN_MS`.
    fn close_silent(&mut self, now: i64) {
        while let Some(&(at, id)) = self.silent.front() {
            if at > now {
                return;
            }
            self.silent.pop_front();
            let Some(conn) = self.conns.get_mut(id.slot()) else { continue };
            if conn.id != id || conn.closing || conn.silent_until.is_none_or(|t| t > now) {
                continue;
            }
            let tls = if conn.tls.is_some() { "TLS " } else { "" };
            tracing::info!(client = %conn.peer, "closing a {tls}connection that sent no complete request in {} s", SILENT_CONN_MS / 1000);
            conn.closing = true;
            conn.read_buf.clear();
            self.dirty.push(id.slot());
        }
    }

    fn four_letter(&mut self, id: ClientId, word: &'static str) {
        let allowed = match &self.cfg.four_lw_allowed {
            None => true,
            Some(list) => list.iter().any(|w| w == word),
        };
        let (open_fds, max_fds) = fd_counts();
        let mode = self.mode_name();
        let facts = fourlw::NodeFacts {
            mode: &mode,
            version: &self.cfg.version,
            client_addr: self.cfg.client_addr.to_string(),
            data_dir: self.cfg.data_dir.clone(),
            data_log_dir: self.cfg.data_log_dir.clone(),
            tick_ms: self.cfg.tick_ms,
            max_client_cnxns: self.cfg.max_client_cnxns,
            server_id: self.cfg.server_id,
            force_sync: self.cfg.force_sync,
            log_dir_bytes: dir_size(&self.cfg.data_log_dir),
            snap_dir_bytes: dir_size(&self.cfg.data_dir),
            open_fds,
            max_fds,
            now_wall_ms: wall_ms(),
            ensemble: self.replica.zab().map(|z| z.status()),
            quorum_conf: self.quorum_conf(),
        };
        let text = if word == "mntr" && allowed {
            // The same list as `/commands/monitor` and `/metrics`.
            admin::metrics::mntr_text(self)
        } else {
            fourlw::answer(word, allowed, self.replica.service_mut(), &facts)
        };
        if let Some(conn) = self.conns.get_mut(id.slot()) {
            conn.write_buf.extend_from_slice(text.as_bytes());
            conn.read_buf.clear();
            conn.closing = true;
            self.dirty.push(id.slot());
        }
    }

    /// Write out every buffer touched this turn; close what asked to be closed.
    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut resume = Vec::new();
        for slot in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(slot) else { continue };
            if matches!(&conn.role, ConnRole::Peer(l) if l.connecting) {
                continue;
            }
            let mut dead = false;
            // Output held for durability stays (see `gate_output`).
            let mut allowed = if conn.gate.is_empty() {
                conn.write_buf.len()
            } else {
                (conn.released.saturating_sub(conn.flushed) as usize).min(conn.write_buf.len())
            };
            if let Some(tls) = conn.tls.as_mut() {
                let w = tls.write_out(&mut conn.stream, &conn.write_buf[..allowed]);
                conn.write_buf.advance(w.taken);
                conn.flushed += w.taken as u64;
                dead = w.dead;
                allowed = 0;
            }
            while allowed > 0 {
                match conn.stream.write(&conn.write_buf[..allowed]) {
                    Ok(0) => {
                        dead = true;
                        break;
                    }
                    Ok(n) => {
                        conn.write_buf.advance(n);
                        conn.flushed += n as u64;
                        allowed -= n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            if conn.write_buf.len() > MAX_PENDING_OUT {
                let who = match conn.role {
                    ConnRole::Peer(_) => "peer",
                    ConnRole::Admin => "admin",
                    ConnRole::Client => "client",
                };
                tracing::warn!(addr = %conn.peer, bytes = conn.write_buf.len(), "{who} has too much unread output; closing");
                dead = true;
            }
            let tls_pending = conn.tls.as_ref().is_some_and(|t| t.wants_write());
            if dead || (conn.closing && conn.write_buf.is_empty() && !tls_pending) {
                if let (false, Some(tls)) = (dead, conn.tls.as_mut()) {
                    tls.close(&mut conn.stream, true);
                }
                self.remove(slot);
                continue;
            }
            let want_write = !conn.write_buf.is_empty() || tls_pending;
            if want_write != conn.writable_registered || (conn.paused && conn.write_buf.len() <= HIGH_WATER / 2) {
                if conn.paused && conn.write_buf.len() <= HIGH_WATER / 2 {
                    conn.paused = false;
                    resume.push(slot);
                }
                let interest = if want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                let _ = self.poll.registry().reregister(&mut conn.stream, Token(slot), interest);
                conn.writable_registered = want_write;
            }
        }
        self.dirty = dirty;
        // Requests held back by backpressure run at the start of the next turn.
        self.resumed.extend(resume);
    }

    fn remove(&mut self, slot: usize) {
        if !self.conns.contains(slot) {
            return;
        }
        let mut conn = self.conns.remove(slot);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let ConnRole::Admin = conn.role {
            self.admin_removed(slot);
            return;
        }
        if let ConnRole::Peer(link) = conn.role {
            self.peer_removed(slot, link);
            return;
        }
        if let Some(c) = self.per_ip.get_mut(&conn.peer.ip()) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.per_ip.remove(&conn.peer.ip());
            }
        }
        self.step(Input::ClientGone { client: conn.id });
    }
}

fn dir_size(dir: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

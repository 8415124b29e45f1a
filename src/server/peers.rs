//! The event loop's ensemble side: election and quorum connections, and performing the
//! replica's peer outputs (`replica::Output`). It decides nothing: the replica does.
//!
//! Connections (all in the loop's one slab, next to the clients):
//! - election: we dial every other voter's election port and only *send* on the
//!   connections we dialled (first frame `Hello{from}`); we only *receive* on the ones we
//!   accepted. A lost or refused connection is redialled every `REDIAL_MS`. The last
//!   notification for each peer is kept and written as soon as a connection to it is up
//!   (ZooKeeper's `lastMessageSent`): one sent while the peer was unreachable is not lost. The
//!   core re-sends only while Looking, so a vote dropped that way used to be gone for good
//!   once its sender had decided (found by the restart test: the winner never heard its
//!   supporters' votes and waited initLimit).
//! - quorum: a follower dials the leader it elected (`Action::ConnectQuorum`); the leader
//!   learns who dialled from the first message, `FollowerInfo{from}`.
//!
//! What happens on these connections becomes a replica input (`EventLoop::step`); what the
//! loop learns while performing an output (a dial failed, a snapshot is unavailable, the
//! state was rebuilt) is queued in `EventLoop::feedback` and stepped right after.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use bytes::BytesMut;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::{Conn, ConnRole, EventLoop};
use crate::peer::{self, ElectionMsg, QuorumMsg};
use crate::proto::{Millis, ServerId, Zxid};
use crate::reconfig::Membership;
use crate::replica::{Input, Output};
use crate::service::ClientId;
use crate::zab::Role;

/// Wait between attempts to dial a peer's election port.
const REDIAL_MS: Millis = 500;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum PeerKind {
    ElectionIn,
    ElectionOut,
    QuorumIn,
    QuorumOut,
}

#[derive(Clone, Debug)]
pub(super) struct PeerLink {
    pub(super) kind: PeerKind,
    /// Known from the start for connections we dial; from the first message otherwise.
    pub(super) peer: Option<ServerId>,
    /// An outbound connect not yet completed: nothing may be written yet.
    pub(super) connecting: bool,
}

/// Addresses, listeners and connections of the ensemble.
pub struct Ensemble {
    pub(super) me: ServerId,
    pub(super) election_addrs: BTreeMap<ServerId, SocketAddr>,
    pub(super) quorum_addrs: BTreeMap<ServerId, SocketAddr>,
    pub(super) election_listener: TcpListener,
    pub(super) quorum_listener: TcpListener,
    /// Our dialled election connection to each peer.
    pub(super) election_out: BTreeMap<ServerId, usize>,
    /// The last notification addressed to each peer, written again on every new connection.
    pub(super) election_last: BTreeMap<ServerId, peer::Notification>,
    pub(super) redial_at: BTreeMap<ServerId, Millis>,
    /// The quorum connection with each peer (followers at the leader; the leader at a follower).
    pub(super) quorum: BTreeMap<ServerId, usize>,
    /// Leader: snapshots being streamed to followers (SNAP), by follower.
    pub(super) snap_out: BTreeMap<ServerId, SnapOut>,
    /// Election, role and sync log lines (see `oplog`).
    pub(super) oplog: super::oplog::OpLog,
}

/// Snapshot bytes queued on a follower's socket at once: enough to keep the socket busy
/// between loop turns, small enough that a ping queued behind them leaves well within a
/// tick and that memory per follower stays bounded whatever the state's size.
const SNAP_WINDOW: usize = 4 << 20;
/// Messages held for a follower while its snapshot streams (the proposals and commits made
/// meanwhile). Past this the follower cannot catch up: it is disconnected and starts over.
const SNAP_HELD_MAX: usize = 256 << 20;
/// How often the loop looks whether the snapshot job a SNAP waits for has ended.
const SNAP_JOB_POLL_MS: u64 = 10;

/// A snapshot file on its way to one follower, paced by its socket.
pub(super) struct SnapOut {
    zxid: Zxid,
    /// The quorum connection it goes out on (a reconnect is a new stream).
    slot: usize,
    stream: SnapStream,
    /// Encoded messages for the follower made while the snapshot streams; they follow it.
    held: BytesMut,
}

enum SnapStream {
    /// The snapshot job at `zxid` is still writing the file.
    Waiting,
    Sending { file: std::fs::File, left: u64, size: u64, started: std::time::Instant, reported: std::time::Instant },
}

/// How often a snapshot stream logs its progress.
const SNAP_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Ensemble {
    /// Whether replication output is so backed up that this server should stop reading
    /// its clients until it drains (client requests are bounded in count elsewhere; this
    /// bounds them in bytes). A follower: its forwards to the leader wait unsent past
    /// `limit` (a session's writes pipeline, so a burst of 1 MB writes would otherwise
    /// pile up here). A leader: fewer than a quorum of followers take its output within
    /// `limit`, so more proposals could not commit sooner; one slow follower alone does
    /// not stop it (its connection is closed at `MAX_PENDING_OUT` instead).
    pub(super) fn replication_backed_up(&self, conns: &slab::Slab<Conn>, limit: usize, role: Role, quorum_size: usize) -> bool {
        let backlog = |slot: &usize| conns.get(*slot).map_or(0, |c| c.write_buf.len());
        match role {
            Role::Following { leader, .. } => self.quorum.get(&leader).is_some_and(|s| backlog(s) > limit),
            Role::Leading { .. } => {
                let keeping_up = self.quorum.values().filter(|s| backlog(s) <= limit).count();
                keeping_up + 1 < quorum_size
            }
            _ => false,
        }
    }

    /// `listeners`: this server's election and quorum ports, bound before recovery (so a
    /// port in use is reported before anything touches the disk).
    pub fn new(
        me: ServerId,
        election_addrs: BTreeMap<ServerId, SocketAddr>,
        quorum_addrs: BTreeMap<ServerId, SocketAddr>,
        listeners: (TcpListener, TcpListener),
    ) -> io::Result<Ensemble> {
        let (election_listener, quorum_listener) = listeners;
        Ok(Ensemble {
            me,
            election_addrs,
            quorum_addrs,
            election_listener,
            quorum_listener,
            election_out: BTreeMap::new(),
            election_last: BTreeMap::new(),
            redial_at: BTreeMap::new(),
            quorum: BTreeMap::new(),
            snap_out: BTreeMap::new(),
            oplog: super::oplog::OpLog::new(),
        })
    }

}

impl EventLoop {
    /// The next redial of a peer we have no election connection to.
    pub(super) fn redial_deadline(&self) -> Option<Millis> {
        let ens = self.ens.as_ref()?;
        ens.redial_at.iter().filter(|(id, _)| !ens.election_out.contains_key(id)).map(|(_, t)| *t).min()
    }

    /// Accept every pending connection on an election or quorum listener.
    pub(super) fn accept_peer(&mut self, kind: PeerKind) {
        loop {
            let Some(ens) = self.ens.as_mut() else { return };
            let listener = if kind == PeerKind::ElectionIn { &ens.election_listener } else { &ens.quorum_listener };
            match listener.accept() {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    self.add_peer_conn(stream, addr, PeerLink { kind, peer: None, connecting: false }, Interest::READABLE);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(port = ?kind, error = %e, "accept failed on a peer port");
                    return;
                }
            }
        }
    }

    fn add_peer_conn(&mut self, mut stream: TcpStream, addr: SocketAddr, link: PeerLink, interest: Interest) -> Option<usize> {
        let tls = match self.peer_tls(&link) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "cannot start TLS on a peer connection");
                return None;
            }
        };
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        self.generation += 1;
        let id = ClientId((self.generation << 32) | slot as u64);
        if let Err(e) = self.poll.registry().register(&mut stream, Token(slot), interest) {
            tracing::warn!(%addr, error = %e, "cannot register a peer connection");
            return None;
        }
        let writable_registered = interest.is_writable();
        entry.insert(Conn {
            stream,
            id,
            peer: addr,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            first_frame: false,
            closing: false,
            paused: false,
            throttled: false,
            writable_registered,
            role: ConnRole::Peer(link),
            flushed: 0,
            gate: std::collections::VecDeque::new(),
            released: 0,
            silent_until: None,
            tls,
        });
        Some(slot)
    }

    fn dial(&mut self, addr: SocketAddr, link: PeerLink) -> Option<usize> {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                // WRITABLE tells us when the connect completed (or failed).
                self.add_peer_conn(stream, addr, link, Interest::READABLE | Interest::WRITABLE)
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "dial failed");
                None
            }
        }
    }

    /// Dial the election port of every peer we have no connection to (rate-limited).
    pub(super) fn dial_election_peers(&mut self, now: Millis) {
        let Some(ens) = self.ens.as_ref() else { return };
        let due: Vec<(ServerId, SocketAddr)> = ens
            .election_addrs
            .iter()
            .filter(|(id, _)| **id != ens.me && !ens.election_out.contains_key(id))
            .filter(|(id, _)| ens.redial_at.get(id).is_none_or(|t| now >= *t))
            .map(|(id, a)| (*id, *a))
            .collect();
        let me = ens.me;
        let election = ens.election_addrs.get(&me).copied();
        for (id, addr) in due {
            let slot = self.dial(addr, PeerLink { kind: PeerKind::ElectionOut, peer: Some(id), connecting: true });
            let Some(ens) = self.ens.as_mut() else { return };
            ens.redial_at.insert(id, now + REDIAL_MS);
            if let Some(slot) = slot {
                ens.election_out.insert(id, slot);
                if let Some(conn) = self.conns.get_mut(slot) {
                    peer::encode(&mut conn.write_buf, &ElectionMsg::Hello { from: me, election });
                }
            }
        }
    }

    /// A writable event on a peer connection still connecting: did the connect work?
    pub(super) fn peer_connect_done(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let ConnRole::Peer(link) = &mut conn.role else { return };
        if !link.connecting {
            return;
        }
        let failed = !matches!(conn.stream.take_error(), Ok(None)) || conn.stream.peer_addr().is_err();
        if failed {
            self.remove(slot);
            return;
        }
        link.connecting = false;
        let (kind, peer) = (link.kind, link.peer);
        if let (PeerKind::ElectionOut, Some(peer)) = (kind, peer) {
            if let Some(n) = self.ens.as_ref().and_then(|e| e.election_last.get(&peer)) {
                peer::encode(&mut conn.write_buf, &ElectionMsg::Notification(n.clone()));
            }
        }
        self.dirty.push(slot);
        if let (PeerKind::QuorumOut, Some(peer)) = (kind, peer) {
            self.feedback.push_back(Input::QuorumConnected { peer });
        }
    }

    /// Decode every complete peer frame of a connection and step the replica with it.
    pub(super) fn process_peer_frames(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(slot) else { return };
            let ConnRole::Peer(link) = &mut conn.role else { return };
            if conn.closing {
                return;
            }
            let kind = link.kind;
            let result = match kind {
                PeerKind::ElectionIn => peer::decode::<ElectionMsg>(&mut conn.read_buf).map(|m| m.map(Frame::Election)),
                PeerKind::ElectionOut => {
                    // We never read on our own election connections.
                    conn.read_buf.clear();
                    return;
                }
                PeerKind::QuorumIn | PeerKind::QuorumOut => {
                    peer::decode::<QuorumMsg>(&mut conn.read_buf).map(|m| m.map(Frame::Quorum))
                }
            };
            let frame = match result {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(peer = %conn.peer, error = %e, "bad peer frame; closing");
                    conn.closing = true;
                    self.dirty.push(slot);
                    return;
                }
            };
            let known = link.peer;
            match frame {
                Frame::Election(ElectionMsg::Hello { from, election }) => {
                    link.peer = Some(from);
                    // A server none of our configs lists (joining as a voter before the
                    // reconfig that adds it): dial it back at the address it gave, so the
                    // core's answers reach it. Addresses from a config are never replaced.
                    if let (Some(ens), Some(addr)) = (self.ens.as_mut(), election) {
                        if from != ens.me && !ens.election_addrs.contains_key(&from) {
                            tracing::info!(server = %from, %addr, "election: a server no config lists dialled in; answering it at its address");
                            ens.election_addrs.insert(from, addr);
                        }
                    }
                    // Its election port is up now: a dial of ours that was refused before
                    // (it started after us) must not wait out REDIAL_MS, or our votes stay
                    // unheard that long (found by the failover test: a 420 ms election
                    // right after start, when the survivor could not reach the other).
                    if let Some(ens) = self.ens.as_mut() {
                        if !ens.election_out.contains_key(&from) {
                            ens.redial_at.remove(&from);
                        }
                    }
                }
                Frame::Election(ElectionMsg::Notification(n)) => self.step(Input::Election(n)),
                Frame::Quorum(msg) => self.quorum_frame(slot, kind, known, msg),
            }
        }
    }

    fn quorum_frame(&mut self, slot: usize, kind: PeerKind, known: Option<ServerId>, msg: QuorumMsg) {
        let from = match (known, &msg) {
            (Some(p), _) => p,
            (None, QuorumMsg::FollowerInfo { from, .. }) if kind == PeerKind::QuorumIn => {
                let from = *from;
                if let Some(Conn { role: ConnRole::Peer(link), .. }) = self.conns.get_mut(slot) {
                    link.peer = Some(from);
                }
                let Some(ens) = self.ens.as_mut() else { return };
                if let Some(old) = ens.quorum.insert(from, slot) {
                    if old != slot {
                        // A follower reconnected: the old connection is dead.
                        if let Some(c) = self.conns.get_mut(old) {
                            c.closing = true;
                            self.dirty.push(old);
                        }
                    }
                }
                from
            }
            _ => {
                tracing::warn!(slot, "quorum connection: first message is not FollowerInfo; closing");
                if let Some(c) = self.conns.get_mut(slot) {
                    c.closing = true;
                    self.dirty.push(slot);
                }
                return;
            }
        };
        if let Some(ens) = self.ens.as_mut() {
            ens.oplog.received(from, &msg);
        }
        self.admin.observer.on_quorum_msg(&msg);
        self.step(Input::Quorum { from, msg });
    }

    /// A peer connection is gone.
    pub(super) fn peer_removed(&mut self, slot: usize, link: PeerLink) {
        let Some(ens) = self.ens.as_mut() else { return };
        let Some(peer) = link.peer else { return };
        match link.kind {
            PeerKind::ElectionOut => {
                if ens.election_out.get(&peer) == Some(&slot) {
                    ens.election_out.remove(&peer);
                }
            }
            PeerKind::ElectionIn => {}
            PeerKind::QuorumIn | PeerKind::QuorumOut => {
                if ens.snap_out.get(&peer).is_some_and(|o| o.slot == slot) {
                    tracing::warn!(follower = %peer, "sync: SNAP: the connection closed before the snapshot was out");
                    ens.snap_out.remove(&peer);
                }
                if link.kind == PeerKind::QuorumOut {
                    // A snapshot from that leader, half received, is of no use any more.
                    self.sink.receive_snapshot_abort();
                }
                if ens.quorum.get(&peer) == Some(&slot) {
                    ens.quorum.remove(&peer);
                    self.feedback.push_back(Input::QuorumDisconnected { peer });
                }
            }
        }
    }

    fn send_quorum(&mut self, to: ServerId, msg: &QuorumMsg) {
        let Some(ens) = self.ens.as_mut() else { return };
        let Some(&slot) = ens.quorum.get(&to) else { return };
        if let Some(out) = ens.snap_out.get_mut(&to).filter(|o| o.slot == slot) {
            // Everything but pings waits until the snapshot is out: it continues from it.
            if !matches!(msg, QuorumMsg::Ping { .. }) {
                peer::encode(&mut out.held, msg);
                if out.held.len() > SNAP_HELD_MAX {
                    tracing::warn!(
                        follower = %to,
                        held_bytes = out.held.len(),
                        "sync: SNAP: too many messages wait behind the snapshot; disconnecting the follower"
                    );
                    self.close_quorum_slot(slot);
                }
                return;
            }
        }
        if let Some(conn) = self.conns.get_mut(slot) {
            let before = conn.write_buf.len();
            peer::encode(&mut conn.write_buf, msg);
            if let QuorumMsg::Proposal(_) = msg {
                self.admin.observer.proposal_sent(conn.write_buf.len() - before);
            }
            self.dirty.push(slot);
        }
    }

    fn close_quorum_slot(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot) {
            c.closing = true;
            self.dirty.push(slot);
        }
    }

    /// Leader: `SendSnapshot`. The file is streamed by `pump_snapshots`, now if it is on
    /// disk, else once the job writing it ends (started here if none is, when `zxid` is
    /// the current state). A snapshot the loop cannot produce closes the connection: the
    /// follower starts over and the core offers another one.
    fn start_snapshot_stream(&mut self, to: ServerId, zxid: Zxid) {
        let Some(ens) = self.ens.as_mut() else { return };
        let Some(&slot) = ens.quorum.get(&to) else { return };
        let how = if self.sink.snapshot_file(zxid).is_some() {
            Some("on-disk")
        } else if self.sink.running_snapshot() == Some(zxid) {
            Some("being-written")
        } else if zxid == self.replica.service().tree().last_applied() && {
            let (tree, sessions) = self.replica.tree_for_snapshot();
            self.sink.snapshot_now(tree, sessions)
        } {
            Some("started-for-it")
        } else {
            None
        };
        let Some(how) = how else {
            tracing::warn!(follower = %to, %zxid, "sync: SNAP: no snapshot can be had; disconnecting the follower");
            self.feedback.push_back(Input::SnapshotUnavailable { zxid });
            self.close_quorum_slot(slot);
            return;
        };
        tracing::info!(follower = %to, %zxid, snapshot = %how, "sync: SNAP: server {to} gets the snapshot at {zxid}, then the txns after it");
        ens.snap_out.insert(to, SnapOut { zxid, slot, stream: SnapStream::Waiting, held: BytesMut::new() });
    }

    /// Leader, each turn before the flush: hand finished snapshot jobs to the core, start
    /// the streams that waited for them, and top up every stream's socket buffer to
    /// `SNAP_WINDOW`. When a stream's last chunk is queued, what was held for the follower
    /// follows it and the core hears `SnapshotSent`. A follower reads at its own pace; the
    /// loop never holds more than a window of it in memory.
    pub(super) fn pump_snapshots(&mut self) {
        let finished = self.sink.take_finished_snapshots();
        if self.ens.is_none() {
            return;
        }
        for (zxid, ok) in finished {
            self.feedback.push_back(if ok { Input::SnapshotWritten { zxid } } else { Input::SnapshotUnavailable { zxid } });
        }
        let Some(ens) = self.ens.as_mut() else { return };
        let ids: Vec<ServerId> = ens.snap_out.keys().copied().collect();
        for to in ids {
            if let Err(why) = self.pump_one(to) {
                let Some(ens) = self.ens.as_mut() else { return };
                if let Some(out) = ens.snap_out.remove(&to) {
                    tracing::warn!(follower = %to, zxid = %out.zxid, error = %why, "sync: SNAP: cannot send the snapshot; disconnecting the follower");
                    self.feedback.push_back(Input::SnapshotUnavailable { zxid: out.zxid });
                    self.close_quorum_slot(out.slot);
                }
            }
        }
    }

    fn pump_one(&mut self, to: ServerId) -> Result<(), String> {
        use std::io::Read;
        let Some(ens) = self.ens.as_mut() else { return Ok(()) };
        let Some(out) = ens.snap_out.get_mut(&to) else { return Ok(()) };
        let Some(conn) = self.conns.get_mut(out.slot) else { return Ok(()) };
        if conn.closing {
            return Ok(());
        }
        if let SnapStream::Waiting = out.stream {
            if self.sink.running_snapshot() == Some(out.zxid) {
                return Ok(());
            }
            let path = self.sink.snapshot_file(out.zxid).ok_or("the snapshot job did not write it")?;
            let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let size = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?.len();
            peer::encode(&mut conn.write_buf, &QuorumMsg::SnapBegin { zxid: out.zxid, size });
            let now = std::time::Instant::now();
            out.stream = SnapStream::Sending { file, left: size, size, started: now, reported: now };
        }
        let SnapStream::Sending { file, left, size, started, reported } = &mut out.stream else { return Ok(()) };
        while *left > 0 && conn.write_buf.len() < SNAP_WINDOW {
            let n = (*left).min(peer::SNAP_CHUNK as u64) as usize;
            let mut data = vec![0u8; n];
            file.read_exact(&mut data).map_err(|e| format!("reading the snapshot file: {e}"))?;
            *left -= n as u64;
            peer::encode(&mut conn.write_buf, &QuorumMsg::SnapChunk { data });
        }
        self.dirty.push(out.slot);
        if *left > 0 {
            if reported.elapsed() >= SNAP_PROGRESS_EVERY {
                *reported = std::time::Instant::now();
                tracing::info!(follower = %to, zxid = %out.zxid, sent_bytes = *size - *left, total_bytes = *size, "sync: SNAP: streaming");
            }
            return Ok(());
        }
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            follower = %to,
            zxid = %out.zxid,
            bytes = *size,
            took_ms = (secs * 1000.0) as u64,
            mb_per_s = (*size as f64 / 1e6 / secs.max(1e-3)) as u64,
            held_bytes = out.held.len(),
            "sync: SNAP: the snapshot is out to server {to}; the txns after it follow"
        );
        ens.oplog.snapshot_sent(to, *size);
        peer::encode(&mut conn.write_buf, &QuorumMsg::SnapEnd);
        conn.write_buf.extend_from_slice(&out.held);
        ens.snap_out.remove(&to);
        self.feedback.push_back(Input::SnapshotSent { to });
        Ok(())
    }

    /// How long the loop may sleep for the snapshot streams: not at all while one has room
    /// in its window (a writable event comes only for a non-empty buffer), a little while
    /// one waits for its job.
    pub(super) fn snapshot_wait_ms(&self) -> Option<u64> {
        let ens = self.ens.as_ref()?;
        ens.snap_out
            .values()
            .map(|o| match o.stream {
                SnapStream::Waiting => SNAP_JOB_POLL_MS,
                SnapStream::Sending { .. } => match self.conns.get(o.slot) {
                    Some(c) if !c.closing && c.write_buf.len() < SNAP_WINDOW / 2 => 0,
                    _ => SNAP_JOB_POLL_MS,
                },
            })
            .min()
    }

    /// Follower: the quorum connection to the leader, closed after a SNAP could not be
    /// received or installed; the core then starts over.
    fn close_leader_conn(&mut self) {
        let Some(ens) = self.ens.as_ref() else { return };
        let slots: Vec<usize> = ens.quorum.values().copied().collect();
        for slot in slots {
            self.close_quorum_slot(slot);
        }
    }

    /// Perform one of the replica's peer, log and snapshot outputs.
    pub(super) fn perform_peer(&mut self, output: Output) {
        match output {
            Output::SendElection { to, msg } => {
                let Some(ens) = self.ens.as_mut() else { return };
                ens.election_last.insert(to, msg.clone());
                let Some(&slot) = ens.election_out.get(&to) else { return };
                // A connection still connecting writes the last one when it is up.
                if let Some(conn) = self.conns.get_mut(slot) {
                    if matches!(&conn.role, ConnRole::Peer(l) if !l.connecting) {
                        peer::encode(&mut conn.write_buf, &ElectionMsg::Notification(msg));
                        self.dirty.push(slot);
                    }
                }
            }
            Output::SendQuorum { to, msg } => {
                if let Some(ens) = self.ens.as_mut() {
                    ens.oplog.sent(to, &msg);
                }
                self.send_quorum(to, &msg)
            }
            Output::ConnectQuorum { leader } => {
                let Some(ens) = self.ens.as_ref() else { return };
                let Some(&addr) = ens.quorum_addrs.get(&leader) else { return };
                if let Some(old) = ens.quorum.get(&leader).copied() {
                    self.remove(old);
                }
                match self.dial(addr, PeerLink { kind: PeerKind::QuorumOut, peer: Some(leader), connecting: true }) {
                    Some(slot) => {
                        if let Some(ens) = self.ens.as_mut() {
                            ens.quorum.insert(leader, slot);
                        }
                    }
                    None => self.feedback.push_back(Input::QuorumDisconnected { peer: leader }),
                }
            }
            Output::CloseQuorum { peer } => {
                let Some(ens) = self.ens.as_mut() else { return };
                if let Some(slot) = ens.quorum.remove(&peer) {
                    if let Some(c) = self.conns.get_mut(slot) {
                        c.closing = true;
                        self.dirty.push(slot);
                    }
                }
            }
            Output::PersistEpoch { accepted, current } => {
                if let Err(e) = self.sink.persist_epochs(accepted, current) {
                    self.sink_error.get_or_insert(e);
                }
            }
            Output::TruncateLog(zxid) => {
                tracing::info!(%zxid, "sync: TRUNC: dropping logged txns above the leader's zxid");
                let r = self.sink.truncate(zxid, self.cfg.server_id);
                self.restored(r);
            }
            Output::SendSnapshot { to, zxid } => self.start_snapshot_stream(to, zxid),
            Output::SnapshotBegin { zxid, size } => {
                if let Err(e) = self.sink.receive_snapshot_begin(zxid, size) {
                    tracing::error!(error = %e, "sync: SNAP: cannot store the leader's snapshot; disconnecting");
                    self.close_leader_conn();
                }
            }
            Output::SnapshotChunk(data) => {
                if let Err(e) = self.sink.receive_snapshot_chunk(&data) {
                    tracing::error!(error = %e, "sync: SNAP: cannot store the leader's snapshot; disconnecting");
                    self.sink.receive_snapshot_abort();
                    self.close_leader_conn();
                }
            }
            Output::LoadSnapshot { zxid } => match self.sink.install_received_snapshot(zxid, self.cfg.server_id) {
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    // Nothing local changed: start over with the leader.
                    tracing::error!(error = %e, "sync: SNAP: the leader's snapshot is not usable; disconnecting");
                    self.close_leader_conn();
                }
                r => self.restored(r),
            },
            Output::RoleChanged(role) => {
                if let (Some(ens), Some(zab)) = (self.ens.as_mut(), self.replica.zab()) {
                    ens.oplog.role_changed(role, zab, ens.me);
                }
            }
            Output::Membership { members, committed } => self.membership_changed(&members, committed),
            // Client, log and metrics outputs are the loop's (`EventLoop::perform`).
            Output::ToClient { .. }
            | Output::CloseClient { .. }
            | Output::Append(_)
            | Output::ServingChanged(_)
            | Output::Proposed { .. }
            | Output::Committed(_) => {}
        }
    }

    /// A membership to know: dial new members' election ports from now on (resolved here,
    /// once). If it `committed`, record it on disk and forget members that left, closing
    /// our election connection to them (their quorum connections are the replica's to
    /// close); one not known committed keeps every member of the committed one reachable.
    fn membership_changed(&mut self, m: &Membership, committed: bool) {
        if committed {
            self.write_dynamic_config(m);
        }
        let Some(ens) = self.ens.as_mut() else { return };
        let resolve = |host: &str, port: u16| (host, port).to_socket_addrs().ok().and_then(|mut a| a.next());
        for member in m.members.values().filter(|x| x.id != ens.me) {
            let (Some(e), Some(q)) = (resolve(&member.host, member.election_port), resolve(&member.host, member.quorum_port)) else {
                tracing::warn!(server = %member.id, host = %member.host, "reconfig: cannot resolve a new member's host; not dialling it");
                continue;
            };
            ens.election_addrs.insert(member.id, e);
            ens.quorum_addrs.insert(member.id, q);
        }
        if !committed {
            return;
        }
        let gone: Vec<ServerId> = ens.election_addrs.keys().copied().filter(|id| *id != ens.me && !m.members.contains_key(id)).collect();
        let mut close = Vec::new();
        for id in gone {
            ens.election_addrs.remove(&id);
            ens.quorum_addrs.remove(&id);
            ens.election_last.remove(&id);
            ens.redial_at.remove(&id);
            close.extend(ens.election_out.remove(&id));
        }
        for slot in close {
            if let Some(c) = self.conns.get_mut(slot) {
                c.closing = true;
                self.dirty.push(slot);
            }
        }
    }

    /// The committed membership on disk (`dynconfig`): the record a restart starts from,
    /// written durably here, on the loop (a reconfig is rare; nothing may reveal the commit
    /// to a restart's recovery out of order). A failure is logged: a restart then treats the
    /// change as proposed until a leader's commit covers it again, which is safe.
    fn write_dynamic_config(&self, m: &Membership) {
        let Some(base) = self.cfg.dynamic_config_base.as_ref().filter(|_| m.version != 0) else { return };
        match crate::dynconfig::write_committed(base, m, ServerId(self.cfg.server_id)) {
            Ok(path) => tracing::info!(file = %path.display(), "reconfig: committed membership written; the config file names it"),
            Err(e) => tracing::warn!(config = %base.display(), error = %e, "reconfig: cannot record the committed membership"),
        }
    }

    /// The state was rebuilt (TRUNC) or replaced (SNAP): the replica takes it next.
    fn restored(&mut self, r: io::Result<(crate::tree::DataTree, crate::session::SessionTable)>) {
        match r {
            Ok((tree, sessions)) => self.feedback.push_back(Input::Restored { tree, sessions }),
            Err(e) => {
                self.sink_error.get_or_insert(e);
            }
        }
    }
}

enum Frame {
    Election(ElectionMsg),
    Quorum(QuorumMsg),
}

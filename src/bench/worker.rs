//! One bench thread: its own `mio::Poll` with its share of the sessions, driven closed loop
//! (up to `pipeline` requests in flight per session) or open loop (each session sends on a
//! fixed schedule; latency counts from the scheduled time, so a stalled server shows up as
//! latency rather than as requests never sent — coordinated omission corrected, as wrk2).
//!
//! The loop ends at the run's end time (or on Ctrl-C), then sends closeSession on every
//! connected session and waits at most a second for the replies. Every loop is bounded.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::stats::{Interval, Stats};
use super::workload::{OpKind, Rng, Workload, WriteKind};
use super::{Plan, Times, STOP};
use crate::client::{create_request, Connection, Event, Reply, Session};
use crate::jute::{MultiOp, Request, Response};
use crate::proto::Millis;

/// Timers (pings, redials) are checked this often.
const TICK_NS: u64 = 50_000_000;

/// What a thread hands back.
pub struct WorkerResult {
    pub stats: Stats,
    /// Paths of creates the server acknowledged (only when `Plan::track_creates`).
    pub acked_creates: Vec<String>,
    /// When its load loop ended (ns since `Plan::base`).
    pub ended_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Normal,
    /// watch workload: re-arms a data watch on the watched znode after each notification.
    Watcher { armed: bool },
    /// watch workload: sets the watched znode once every watcher has re-armed.
    Writer,
}

struct Sess {
    conn: Connection,
    /// Global index (0..clients): picks the endpoint and this session's znode names.
    global: usize,
    inflight: usize,
    rng: Rng,
    /// Open loop: the scheduled time of the next request (ns since the run's base).
    next_due_ns: u64,
    /// Creates issued (names fresh znodes) / deletes issued (walks this session's share).
    seq: u64,
    role: Role,
    /// Requests this session has sent (for `--ops`).
    issued: u64,
    done: bool,
}

pub fn run(plan: Arc<Plan>, globals: Vec<usize>, tx: SyncSender<Interval>) -> WorkerResult {
    let mut w = match Worker::new(plan.clone(), globals, tx) {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!("arbor bench: {e}");
            None
        }
    };
    if let Some(w) = w.as_mut() {
        w.connect_all();
    }
    // Two waits: the main thread fixes the schedule between them.
    plan.barrier.wait();
    plan.barrier.wait();
    let Some(mut w) = w else { return WorkerResult { stats: Stats::default(), acked_creates: Vec::new(), ended_ns: 0 } };
    w.times = plan.times.get().copied().unwrap_or(Times { start_ns: 0, measure_from_ns: 0, end_ns: 0 });
    for s in &mut w.sessions {
        s.next_due_ns += w.times.start_ns;
    }
    w.main_loop();
    w.close_all();
    WorkerResult { stats: w.tally.stats, acked_creates: w.tally.acked_creates, ended_ns: w.ended_ns }
}

struct Worker {
    plan: Arc<Plan>,
    poll: Poll,
    events: Events,
    sessions: Vec<Sess>,
    evbuf: Vec<Event>,
    tally: Tally,
    tx: SyncSender<Interval>,
    rate_interval_ns: u64,
    times: Times,
    /// When the load loop ended (ns), for the measured time of a run that ended early.
    ended_ns: u64,
}

/// What the thread has measured so far.
struct Tally {
    stats: Stats,
    interval: Interval,
    acked_creates: Vec<String>,
    /// watch workload: when the writer sent its last write (ns), 0 before the first.
    last_write_ns: u64,
}

impl Worker {
    fn new(plan: Arc<Plan>, globals: Vec<usize>, tx: SyncSender<Interval>) -> std::io::Result<Worker> {
        let poll = Poll::new()?;
        let clients = plan.clients.max(1);
        let rate_interval_ns = match plan.rate {
            Some(r) if r > 0.0 => (1e9 * clients as f64 / r) as u64,
            _ => 0,
        };
        let mut sessions = Vec::with_capacity(globals.len());
        for (i, g) in globals.into_iter().enumerate() {
            let core = Session::new(plan.session_timeout_ms);
            let conn = Connection::new(Token(i), plan.endpoints.clone(), g, core);
            let role = match plan.workload {
                Workload::Watch { .. } if g == 0 => Role::Writer,
                Workload::Watch { .. } => Role::Watcher { armed: false },
                _ => Role::Normal,
            };
            // Stagger open-loop schedules so sessions do not fire in lockstep.
            let next_due_ns = rate_interval_ns * g as u64 / clients as u64;
            sessions.push(Sess { conn, global: g, inflight: 0, rng: Rng::new(g as u64 + 1), next_due_ns, seq: 0, role, issued: 0, done: false });
        }
        Ok(Worker {
            plan,
            poll,
            events: Events::with_capacity(1024),
            sessions,
            evbuf: Vec::with_capacity(256),
            tally: Tally { stats: Stats::default(), interval: Interval::new(0), acked_creates: Vec::new(), last_write_ns: 0 },
            tx,
            rate_interval_ns,
            ended_ns: 0,
            times: Times { start_ns: 0, measure_from_ns: 0, end_ns: 0 },
        })
    }

    fn now_ns(&self) -> u64 {
        self.plan.base.elapsed().as_nanos() as u64
    }

    fn ms(ns: u64) -> Millis {
        (ns / 1_000_000) as Millis
    }

    /// Dials every session and waits (at most 10 s) until all have a session.
    fn connect_all(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !STOP.load(Ordering::Relaxed) {
            let now = Self::ms(self.now_ns());
            for i in 0..self.sessions.len() {
                self.sessions[i].conn.tick(self.poll.registry(), now, &mut self.evbuf);
            }
            self.evbuf.clear();
            if self.sessions.iter().all(|s| s.conn.is_connected()) {
                return;
            }
            let _ = self.poll.poll(&mut self.events, Some(Duration::from_millis(20)));
            let now = Self::ms(self.now_ns());
            for ev in self.events.iter() {
                if let Some(s) = self.sessions.get_mut(ev.token().0) {
                    s.conn.ready(self.poll.registry(), ev, now, &mut self.evbuf);
                }
            }
            // Handshake events only; nothing is pending yet.
            self.evbuf.clear();
        }
    }

    fn main_loop(&mut self) {
        let mut next_tick_ns = 0u64;
        let mut i_events = Vec::new();
        loop {
            let now_ns = self.now_ns();
            if now_ns >= self.times.end_ns || STOP.load(Ordering::Relaxed) {
                break;
            }
            // `--ops` (or delete's pool) used up: every session done and answered.
            if self.sessions.iter().all(|s| s.done && s.inflight == 0) {
                break;
            }
            self.roll_interval(now_ns);
            if now_ns >= next_tick_ns {
                next_tick_ns = now_ns + TICK_NS;
                for i in 0..self.sessions.len() {
                    self.sessions[i].conn.tick(self.poll.registry(), Self::ms(now_ns), &mut i_events);
                    self.handle(i, &mut i_events, now_ns);
                }
            }
            self.issue_all(now_ns);
            let timeout = self.poll_timeout(now_ns, next_tick_ns);
            if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    eprintln!("arbor bench: poll: {e}");
                    break;
                }
            }
            let now_ns = self.now_ns();
            let now_ms = Self::ms(now_ns);
            for ev in self.events.iter() {
                let i = ev.token().0;
                if let Some(s) = self.sessions.get_mut(i) {
                    s.conn.ready(self.poll.registry(), ev, now_ms, &mut i_events);
                    // Handled inline so the next request goes out in this same turn.
                    self.tally.on_events(&self.plan, &self.times, s, &mut i_events, now_ns);
                }
            }
        }
        self.evbuf = i_events;
        let now_ns = self.now_ns();
        self.ended_ns = now_ns.min(self.times.end_ns);
        self.send_interval(now_ns);
    }

    fn poll_timeout(&self, now_ns: u64, next_tick_ns: u64) -> Duration {
        let mut until = next_tick_ns.min(self.times.end_ns).min(self.next_second_ns());
        if self.rate_interval_ns > 0 {
            for s in &self.sessions {
                if s.inflight < self.plan.pipeline && !s.done && s.conn.is_connected() {
                    until = until.min(s.next_due_ns);
                }
            }
        }
        Duration::from_nanos(until.saturating_sub(now_ns))
    }

    fn next_second_ns(&self) -> u64 {
        (self.tally.interval.second as u64 + 1) * 1_000_000_000 + self.times.start_ns
    }

    fn roll_interval(&mut self, now_ns: u64) {
        if now_ns >= self.next_second_ns() {
            self.send_interval(now_ns);
        }
    }

    fn send_interval(&mut self, now_ns: u64) {
        let second = (now_ns.saturating_sub(self.times.start_ns) / 1_000_000_000) as u32;
        let next = second.max(self.tally.interval.second + 1);
        let done = std::mem::replace(&mut self.tally.interval, Interval::new(next));
        // A full channel means the collector is behind; dropping a live-view interval is
        // better than blocking the measurement.
        let _ = self.tx.try_send(done);
    }

    fn handle(&mut self, i: usize, evs: &mut Vec<Event>, now_ns: u64) {
        self.tally.on_events(&self.plan, &self.times, &mut self.sessions[i], evs, now_ns);
    }

    /// Sends what each session may send now, then flushes every socket once.
    fn issue_all(&mut self, now_ns: u64) {
        let watch_ready = self.watch_writer_may_write(now_ns);
        let now_ms = Self::ms(now_ns);
        for i in 0..self.sessions.len() {
            let mut budget = self.plan.pipeline;
            loop {
                let s = &self.sessions[i];
                if budget == 0 || s.done || s.inflight >= self.plan.pipeline || !s.conn.is_connected() {
                    break;
                }
                let tag = if self.rate_interval_ns > 0 {
                    if s.next_due_ns > now_ns {
                        break;
                    }
                    s.next_due_ns
                } else {
                    now_ns
                };
                let Some(req) = self.next_request(i, watch_ready) else { break };
                let s = &mut self.sessions[i];
                if s.conn.submit(now_ms, &req, tag).is_err() {
                    break;
                }
                s.inflight += 1;
                s.issued += 1;
                if self.plan.ops_per_session.is_some_and(|cap| s.issued >= cap) {
                    s.done = true;
                }
                s.next_due_ns += self.rate_interval_ns;
                budget -= 1;
                if s.role == Role::Writer {
                    self.tally.last_write_ns = now_ns;
                }
            }
            let s = &mut self.sessions[i];
            if !s.conn.core().transmit().is_empty() {
                s.conn.flush(self.poll.registry(), now_ms, &mut self.evbuf);
                if !self.evbuf.is_empty() {
                    let mut evs = std::mem::take(&mut self.evbuf);
                    self.handle(i, &mut evs, now_ns);
                    self.evbuf = evs;
                }
            }
        }
    }

    /// watch workload: the writer writes once every watcher has re-armed (or after a second,
    /// so a lost notification cannot stall the run).
    fn watch_writer_may_write(&self, now_ns: u64) -> bool {
        if !matches!(self.plan.workload, Workload::Watch { .. }) {
            return false;
        }
        let all_armed = self.sessions.iter().all(|s| !matches!(s.role, Role::Watcher { armed: false }));
        all_armed || now_ns.saturating_sub(self.tally.last_write_ns) > 1_000_000_000
    }

    fn next_request(&mut self, i: usize, watch_ready: bool) -> Option<Request> {
        let plan = &*self.plan;
        let s = &mut self.sessions[i];
        let key = |s: &mut Sess| plan.keys[s.rng.below(plan.keys.len().max(1)).min(plan.keys.len().saturating_sub(1))].clone();
        let create = |s: &mut Sess| {
            s.seq += 1;
            let path = format!("{}/s{}-{}", plan.create_parent, s.global, s.seq);
            Request::Create(create_request(&path, &plan.value, 0))
        };
        let set = |s: &mut Sess| Request::SetData { path: key(s), data: Some(plan.value.clone()), version: -1 };
        Some(match (plan.workload, s.role) {
            (Workload::Watch { .. }, Role::Watcher { armed: false }) if s.inflight == 0 => {
                Request::GetData { path: plan.watch_path.clone(), watch: true }
            }
            (Workload::Watch { .. }, Role::Writer) if watch_ready && s.inflight == 0 => {
                Request::SetData { path: plan.watch_path.clone(), data: Some(plan.value.clone()), version: -1 }
            }
            (Workload::Watch { .. }, _) => return None,
            (Workload::Get, _) => Request::GetData { path: key(s), watch: false },
            (Workload::Set, _) => set(s),
            (Workload::Create, _) => create(s),
            (Workload::Mixed { read_pct, writes }, _) => {
                if s.rng.below(100) < read_pct as usize {
                    Request::GetData { path: key(s), watch: false }
                } else if writes == WriteKind::Create {
                    create(s)
                } else {
                    set(s)
                }
            }
            (Workload::Delete, _) => {
                let idx = s.global as u64 + s.seq * plan.clients as u64;
                if idx >= plan.delete_count as u64 {
                    s.done = true;
                    return None;
                }
                s.seq += 1;
                Request::Delete { path: format!("{}/{idx}", plan.delete_parent), version: -1 }
            }
            (Workload::Multi { ops }, _) => Request::Multi(
                (0..ops).map(|_| MultiOp::SetData { path: key(s), data: Some(plan.value.clone()), version: -1 }).collect(),
            ),
        })
    }

    fn close_all(&mut self) {
        let now_ms = Self::ms(self.now_ns());
        let mut open = 0;
        for s in &mut self.sessions {
            if s.conn.is_connected() && s.conn.submit(now_ms, &Request::CloseSession, 0).is_ok() {
                s.conn.flush(self.poll.registry(), now_ms, &mut self.evbuf);
                open += 1;
            }
        }
        self.evbuf.clear();
        let deadline = Instant::now() + Duration::from_secs(1);
        while open > 0 && Instant::now() < deadline {
            let _ = self.poll.poll(&mut self.events, Some(Duration::from_millis(50)));
            let now_ms = Self::ms(self.now_ns());
            for ev in self.events.iter() {
                if let Some(s) = self.sessions.get_mut(ev.token().0) {
                    s.conn.ready(self.poll.registry(), ev, now_ms, &mut self.evbuf);
                }
            }
            for ev in self.evbuf.drain(..) {
                if matches!(ev, Event::Reply(ref r) if r.opcode == Request::CloseSession.opcode()) {
                    open -= 1;
                }
            }
        }
        for s in &mut self.sessions {
            s.conn.shutdown(self.poll.registry());
        }
    }
}

impl Tally {
    /// Counts one session's events and updates its state (in flight, watch armed).
    fn on_events(&mut self, plan: &Plan, times: &Times, s: &mut Sess, evs: &mut Vec<Event>, now_ns: u64) {
        for ev in evs.drain(..) {
            match ev {
                Event::Reply(r) => {
                    s.inflight = s.inflight.saturating_sub(1);
                    self.on_reply(plan, times, &r, now_ns);
                    if let Role::Watcher { armed } = &mut s.role {
                        *armed = r.err == 0;
                    }
                }
                Event::Watch(w) => {
                    if let Role::Watcher { armed } = &mut s.role {
                        *armed = false;
                        if self.last_write_ns > 0 && w.event_type == 3 {
                            let lat_us = now_ns.saturating_sub(self.last_write_ns) / 1000;
                            self.record(times, OpKind::Watch, 0, lat_us, now_ns);
                        }
                    }
                }
                Event::Connected { .. } => {}
                Event::Disconnected => {
                    if let Role::Watcher { armed } = &mut s.role {
                        *armed = false;
                    }
                }
                Event::Expired => {
                    // The bench goes on with a new session; the failed requests were counted.
                    s.conn.renew(Worker::ms(now_ns));
                }
            }
        }
    }

    fn on_reply(&mut self, plan: &Plan, times: &Times, r: &Reply, now_ns: u64) {
        let kind = kind_of_opcode(r.opcode);
        self.stats.replies_total += 1;
        let lat_us = now_ns.saturating_sub(r.tag) / 1000;
        self.record(times, kind, r.err, lat_us, now_ns);
        if plan.track_creates && kind == OpKind::Create && r.err == 0 {
            if let Ok(Response::Create2 { path, .. } | Response::Create { path }) = r.result() {
                self.acked_creates.push(path);
            }
        }
    }

    /// Every completion goes to the live interval; only those after the warm-up to the totals.
    fn record(&mut self, times: &Times, kind: OpKind, err: i32, lat_us: u64, now_ns: u64) {
        if kind == OpKind::Other {
            return;
        }
        if err == 0 {
            self.interval.hist.saturating_record(lat_us.max(1));
        } else {
            self.interval.errors += 1;
        }
        if now_ns < times.measure_from_ns {
            return;
        }
        if err == 0 {
            self.stats.record_ok(kind, lat_us);
        } else {
            self.stats.record_err(err);
        }
    }
}

fn kind_of_opcode(op: i32) -> OpKind {
    use crate::proto::OpCode;
    // The client only sends these few.
    match OpCode::from_i32(op) {
        Some(OpCode::GetData | OpCode::Exists) => OpKind::Get,
        Some(OpCode::SetData) => OpKind::Set,
        Some(OpCode::Create | OpCode::Create2) => OpKind::Create,
        Some(OpCode::Delete) => OpKind::Delete,
        Some(OpCode::Multi) => OpKind::Multi,
        _ => OpKind::Other,
    }
}

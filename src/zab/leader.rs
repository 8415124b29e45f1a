//! The leader: discovery, sync and broadcast (ZooKeeper's `Leader` + `LearnerHandler`,
//! the Zab paper's phases 1–3 on the leader side).
//!
//! Phases: `Discovery` (gather FOLLOWERINFO from a quorum, pick epoch = max accepted + 1,
//! NEWEPOCH, gather ACKEPOCH from a quorum) → `Sync` (send each follower DIFF / TRUNC / SNAP
//! and NEWLEADER, gather NEWLEADER acks from a quorum) → `Serving` (broadcast).
//!
//! Invariants:
//! - An epoch is established only by a quorum of fresh promises: an ACKEPOCH counts only
//!   if that follower's FOLLOWERINFO reported an accepted epoch below ours (ZooKeeper's
//!   "-1" ack), so two leaders can never both establish the same epoch.
//! - A leader whose history is older than a follower's in the epoch quorum steps down
//!   (discovery must not lose txns the election overlooked).
//! - The initial history (everything logged when sync started) is committed only once a
//!   quorum, self included, has it durably (NEWLEADER acks); until then nothing is sent as
//!   committed. currentEpoch becomes the new epoch (here and at followers) only once that
//!   history is durable locally. Later txns commit strictly in zxid order once a quorum acked them, the
//!   leader's own ack being `LogSynced`.
//! - A serving leader steps down when a voter reports an accepted epoch above its
//!   own (that voter can never join this epoch), so the next epoch includes it: liveness.
//! - Observers are synced and sent every proposal and commit like followers, but no count
//!   above includes them: not the epoch quorum, not NEWLEADER acks, not commits, not the
//!   live quorum; one more up to date than the leader is truncated, not obeyed. So is a
//!   learner no configuration lists yet (a server joining as a voter: it follows with a
//!   config that lists itself, and counts once a proposed or committed config names it).
//! - Every count is a quorum of the committed voters and, while a voter change is proposed
//!   (`ZabConfig::proposed`), of the new voters as well (the joint quorum). Commits go in
//!   zxid order, so the reconfig commits only with both quorums and nothing after it
//!   commits before it; once it has, the new voters alone count (`may_commit`).
//! - Every follower in the forwarding set (sync sent) receives every proposal and commit
//!   after its sync data, on the same ordered connection.
//! - A `sync` is answered only after the proposals logged before it are committed and a
//!   quorum has confirmed this leader after it arrived (`syncs`).

use std::collections::{BTreeMap, BTreeSet};

use crate::peer::QuorumMsg;
use crate::proto::{Millis, ServerId, SessionId, Zxid};
use crate::txn::Txn;

use super::syncs::{Asker, Syncs};
use super::{Action, Core, Input, Next};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Discovery,
    Sync,
    Serving,
}

/// Per-follower progress (ZooKeeper's `LearnerHandler`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// FOLLOWERINFO received; waiting for the epoch to be chosen.
    Info,
    /// NEWEPOCH sent; waiting for ACKEPOCH.
    EpochSent,
    /// ACKEPOCH received; sync pending (Discovery phase only).
    EpochAcked,
    /// Sync data and NEWLEADER sent: in the forwarding set.
    Synced,
    /// NEWLEADER acked: counts for commits.
    Acked,
}

#[derive(Debug)]
struct Handler {
    stage: Stage,
    /// From FOLLOWERINFO.
    accepted_epoch: u32,
    /// From ACKEPOCH (or FOLLOWERINFO until then).
    last_zxid: Zxid,
    /// The ACKEPOCH was a fresh promise for our epoch.
    promised: bool,
    /// Everything up to here is durable at the follower.
    acked: Zxid,
    /// Our last logged zxid when NEWLEADER was sent: what its NEWLEADER ack covers.
    nl_upto: Zxid,
    /// initLimit counts from here: FOLLOWERINFO, or the end of a streamed snapshot.
    joined: Millis,
    last_heard: Millis,
    /// A snapshot is being streamed to it (sent by the loop at its pace): initLimit waits
    /// until it is out; liveness is still judged by syncLimit (it answers pings).
    snapshot: Option<Zxid>,
    /// The highest sync-confirmation round it has answered a ping of.
    round: u64,
}

#[derive(Debug)]
pub struct Leader {
    phase: Phase,
    epoch: Option<u32>,
    started: Millis,
    next_tick: Millis,
    handlers: BTreeMap<ServerId, Handler>,
    committed: Zxid,
    /// currentEpoch = epoch is durable here.
    current: bool,
    /// Syncs waiting for their commits and a confirmation round.
    syncs: Syncs,
}

impl Leader {
    pub(crate) fn new(core: &Core, now: Millis) -> Leader {
        Leader {
            phase: Phase::Discovery,
            epoch: None,
            started: now,
            next_tick: now + core.cfg.tick_ms,
            handlers: BTreeMap::new(),
            committed: core.hist.applied(),
            current: false,
            syncs: Syncs::default(),
        }
    }

    /// Right after the decision: alone, we may already have a quorum.
    pub(crate) fn after_start(&mut self, core: &mut Core, now: Millis, out: &mut Vec<Action>) -> Next {
        self.try_choose_epoch(core, now, out)
    }

    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }
    pub fn serving(&self) -> bool {
        self.phase == Phase::Serving
    }
    /// No epoch established yet: waiting for a quorum of FOLLOWERINFO / ACKEPOCH.
    pub fn discovering(&self) -> bool {
        self.phase == Phase::Discovery
    }
    /// `id` has connected and sent FOLLOWERINFO.
    pub fn has(&self, id: ServerId) -> bool {
        self.handlers.contains_key(&id)
    }
    pub fn deadline(&self) -> Millis {
        self.next_tick
    }
    /// Proposals logged here and not yet committed (the leader's window; the loop stops
    /// reading clients while it is full).
    pub(crate) fn in_flight(&self, core: &Core) -> u64 {
        let last = core.hist.last_logged();
        if last.epoch() != self.committed.epoch() {
            // The committed point is still in an earlier epoch: count this epoch's txns.
            return u64::from(last.counter());
        }
        u64::from(last.counter().saturating_sub(self.committed.counter()))
    }
    pub fn pending_syncs(&self) -> usize {
        self.syncs.len()
    }
    pub fn follower_status(&self) -> Vec<(ServerId, bool, Zxid)> {
        self.handlers.iter().map(|(id, h)| (*id, h.stage == Stage::Acked, h.acked)).collect()
    }

    /// Learners that acked NEWLEADER (synced, counted when they vote).
    pub(crate) fn synced_learners(&self) -> impl Iterator<Item = ServerId> + Clone + '_ {
        self.handlers.iter().filter(|(_, h)| h.stage == Stage::Acked).map(|(id, _)| *id)
    }

    /// After a reconfig was applied: close the connections of learners that were members
    /// (`before`) and are no longer (a learner no config listed yet, joining, stays).
    pub(crate) fn members_changed(&mut self, core: &Core, before: &BTreeSet<ServerId>, out: &mut Vec<Action>) {
        let gone: Vec<ServerId> =
            self.handlers.keys().copied().filter(|id| before.contains(id) && !core.cfg.is_member(*id)).collect();
        for peer in gone {
            tracing::info!(%peer, "learner left the ensemble by reconfig; closing its connection");
            self.remove(peer);
            out.push(Action::CloseQuorum { peer });
        }
    }

    pub(crate) fn close(self, out: &mut Vec<Action>) {
        out.extend(self.handlers.keys().map(|&peer| Action::CloseQuorum { peer }));
    }

    pub(crate) fn step(&mut self, core: &mut Core, now: Millis, input: Input, out: &mut Vec<Action>) -> Next {
        match input {
            Input::Tick if now >= self.next_tick => self.tick(core, now, out),
            Input::Quorum { from, msg } => self.on_message(core, now, from, msg, out),
            Input::QuorumDisconnected { peer } => {
                // Liveness is judged at the next tick. Its snapshot stays on offer: if it
                // reconnects, it gets the same one.
                self.remove(peer);
                Next::Stay
            }
            Input::SnapshotSent { to } => {
                if let Some(h) = self.handlers.get_mut(&to) {
                    h.snapshot = None;
                    h.joined = now;
                }
                Next::Stay
            }
            Input::LogSynced { .. } => self.on_progress(core, now, out),
            Input::Propose(txn) => {
                self.propose(core, txn, out);
                Next::Stay
            }
            Input::Forward(QuorumMsg::Sync { session, cxid, path }) if self.phase == Phase::Serving => {
                self.sync_arrived(core, Asker::Local, session, cxid, path, out);
                Next::Stay
            }
            other => {
                note!("leader: ignoring {other:?}");
                Next::Stay
            }
        }
    }

    fn tick(&mut self, core: &mut Core, now: Millis, out: &mut Vec<Action>) -> Next {
        self.next_tick = now + core.cfg.tick_ms;
        if self.phase != Phase::Serving && now - self.started >= core.ticks(core.cfg.init_limit) {
            note!("leader: no quorum synced within initLimit");
            return Next::Looking;
        }
        let (init, sync) = (core.ticks(core.cfg.init_limit), core.ticks(core.cfg.sync_limit));
        let dead: Vec<ServerId> = self
            .handlers
            .iter()
            .filter(|(_, h)| {
                now - h.last_heard >= sync || (h.stage < Stage::Acked && h.snapshot.is_none() && now - h.joined >= init)
            })
            .map(|(id, _)| *id)
            .collect();
        for peer in dead {
            self.remove(peer);
            out.push(Action::CloseQuorum { peer });
        }
        if self.phase == Phase::Serving {
            let me = core.cfg.me;
            if !core.cfg.is_quorum(|id| id == me || self.handlers.get(&id).is_some_and(|h| h.stage == Stage::Acked)) {
                note!("leader: lost the quorum; stepping down");
                return Next::Looking;
            }
        }
        let ping = QuorumMsg::Ping { zxid: self.committed, round: self.syncs.round() };
        out.extend(self.handlers.keys().map(|&to| Action::SendQuorum { to, msg: ping.clone() }));
        Next::Stay
    }

    fn on_message(&mut self, core: &mut Core, now: Millis, from: ServerId, msg: QuorumMsg, out: &mut Vec<Action>) -> Next {
        if let QuorumMsg::FollowerInfo { from: id, accepted_epoch, last_zxid } = msg {
            // A server no config lists is let in as a learner that does not count: one
            // joining as a voter syncs first (its own config lists it, or it would not
            // follow), and counts once a reconfig names it.
            if id != from || id == core.cfg.me {
                note!("leader: FOLLOWERINFO from {from} claiming {id}; closing");
                out.push(Action::CloseQuorum { peer: from });
                return Next::Stay;
            }
            return self.on_follower_info(core, now, from, accepted_epoch, last_zxid, out);
        }
        let Some(h) = self.handlers.get_mut(&from) else {
            note!("leader: {msg:?} from {from} without FOLLOWERINFO");
            return Next::Stay;
        };
        h.last_heard = now;
        match msg {
            QuorumMsg::AckEpoch { current_epoch, last_zxid } if h.stage == Stage::EpochSent => {
                self.on_ack_epoch(core, now, from, current_epoch, last_zxid, out)
            }
            QuorumMsg::Ack { zxid } => self.on_ack(core, now, from, zxid, out),
            QuorumMsg::PingReply { touched, round } => {
                h.round = h.round.max(round);
                if !touched.is_empty() {
                    out.push(Action::SessionsTouched(touched));
                }
                if self.phase == Phase::Serving {
                    self.try_confirm(core, out);
                }
                Next::Stay
            }
            QuorumMsg::Sync { session, cxid, path } if self.phase == Phase::Serving => {
                self.sync_arrived(core, Asker::Follower(from), session, cxid, path, out);
                Next::Stay
            }
            msg @ (QuorumMsg::Request { .. } | QuorumMsg::CreateSession { .. } | QuorumMsg::Sync { .. }) => {
                if self.phase == Phase::Serving {
                    out.push(Action::Forwarded { from, msg });
                } else {
                    note!("leader: not serving yet; dropping forwarded {msg:?}");
                }
                Next::Stay
            }
            other => {
                note!("leader: unexpected {other:?} from {from}");
                Next::Stay
            }
        }
    }

    fn on_follower_info(
        &mut self,
        core: &mut Core,
        now: Millis,
        from: ServerId,
        accepted_epoch: u32,
        last_zxid: Zxid,
        out: &mut Vec<Action>,
    ) -> Next {
        if self.phase == Phase::Serving && core.cfg.is_voter(from) && self.epoch.is_some_and(|e| accepted_epoch > e) {
            // It promised a later epoch (to a leader that never established it) and cannot
            // join ours without breaking that promise; ZooKeeper would leave it out until
            // the leader changes. Re-running discovery picks an epoch above every promise.
            note!("leader: {from} accepted epoch {accepted_epoch}; re-electing to include it");
            return Next::Looking;
        }
        // A reconnecting follower starts over (its old connection is gone).
        let h = Handler {
            stage: Stage::Info,
            accepted_epoch,
            last_zxid,
            promised: false,
            acked: Zxid::ZERO,
            nl_upto: Zxid::ZERO,
            joined: now,
            last_heard: now,
            snapshot: None,
            round: 0,
        };
        self.syncs.forget(from);
        self.handlers.insert(from, h);
        match self.epoch {
            None => self.try_choose_epoch(core, now, out),
            Some(epoch) => {
                self.send_new_epoch(from, epoch, out);
                Next::Stay
            }
        }
    }

    fn send_new_epoch(&mut self, to: ServerId, epoch: u32, out: &mut Vec<Action>) {
        if let Some(h) = self.handlers.get_mut(&to) {
            h.stage = Stage::EpochSent;
            out.push(Action::SendQuorum { to, msg: QuorumMsg::NewEpoch { epoch } });
        }
    }

    /// Discovery, step 1: a quorum (self included) told us their accepted epochs.
    fn try_choose_epoch(&mut self, core: &mut Core, now: Millis, out: &mut Vec<Action>) -> Next {
        let infos: Vec<ServerId> =
            self.handlers.iter().filter(|(_, h)| h.stage == Stage::Info).map(|(id, _)| *id).collect();
        let me = core.cfg.me;
        if self.epoch.is_some() || !core.cfg.is_quorum(|id| id == me || infos.contains(&id)) {
            return Next::Stay;
        }
        let max = infos.iter().map(|id| self.handlers[id].accepted_epoch).fold(core.durable.accepted_epoch, u32::max);
        let Some(epoch) = max.checked_add(1) else {
            note!("leader: epoch space exhausted");
            return Next::Looking;
        };
        core.persist_epoch(epoch, core.durable.current_epoch, out);
        self.epoch = Some(epoch);
        for id in infos {
            self.send_new_epoch(id, epoch, out);
        }
        self.try_establish(core, now, out)
    }

    fn on_ack_epoch(
        &mut self,
        core: &mut Core,
        now: Millis,
        from: ServerId,
        current_epoch: u32,
        last_zxid: Zxid,
        out: &mut Vec<Action>,
    ) -> Next {
        let epoch = self.epoch.expect("NEWEPOCH was sent, so the epoch is chosen");
        let h = self.handlers.get_mut(&from).expect("caller checked");
        if core.cfg.is_voter(from)
            && self.phase != Phase::Serving
            && (current_epoch, last_zxid) > (core.durable.current_epoch, core.hist.last_logged())
        {
            note!("leader: {from} is more up to date ({current_epoch}, {last_zxid}); stepping down");
            return Next::Looking;
        }
        h.last_zxid = last_zxid;
        h.promised = h.accepted_epoch < epoch;
        h.stage = Stage::EpochAcked;
        match self.phase {
            Phase::Discovery => self.try_establish(core, now, out),
            Phase::Sync | Phase::Serving => {
                self.sync_follower(core, from, out);
                Next::Stay
            }
        }
    }

    /// Discovery, step 2: a quorum promised our epoch → become current in it and sync.
    fn try_establish(&mut self, core: &mut Core, now: Millis, out: &mut Vec<Action>) -> Next {
        if self.epoch.is_none() {
            return Next::Stay;
        }
        let me = core.cfg.me;
        let promised = |id| id == me || self.handlers.get(&id).is_some_and(|h| h.stage == Stage::EpochAcked && h.promised);
        if self.phase != Phase::Discovery || !core.cfg.is_quorum(promised) {
            return Next::Stay;
        }
        self.phase = Phase::Sync;
        let ready: Vec<ServerId> =
            self.handlers.iter().filter(|(_, h)| h.stage == Stage::EpochAcked).map(|(id, _)| *id).collect();
        for id in ready {
            self.sync_follower(core, id, out);
        }
        self.on_progress(core, now, out)
    }

    /// DIFF, TRUNC or SNAP, then NEWLEADER; the follower joins the forwarding set.
    fn sync_follower(&mut self, core: &mut Core, to: ServerId, out: &mut Vec<Action>) {
        let epoch = self.epoch.expect("syncing happens in an epoch");
        let Some(h) = self.handlers.get_mut(&to) else { return };
        let hist = &core.hist;
        let (f, last) = (h.last_zxid, hist.last_logged());
        let send = |msg| Action::SendQuorum { to, msg };
        let base = if hist.contains(f) {
            // Its log is a prefix of mine: send what follows.
            out.push(send(QuorumMsg::Diff { last_zxid: f }));
            f
        } else if f > last || f > hist.floor() {
            // It has txns I don't (never committed): cut back to where we agree.
            let z = if f > last { last } else { hist.largest_at_or_below(f) };
            out.push(send(QuorumMsg::Trunc { zxid: z }));
            out.push(send(QuorumMsg::Diff { last_zxid: z }));
            z
        } else {
            // Older than my in-memory history: a snapshot, then the txns after it. A snapshot
            // the loop already has (or is making) is reused while my history still reaches
            // back to it; otherwise the loop snapshots my state as of `applied`.
            let z = match core.snapshot {
                Some(z) if z <= hist.applied() && hist.contains(z) => z,
                _ => hist.applied(),
            };
            core.snapshot = Some(z);
            h.snapshot = Some(z);
            out.push(Action::SendSnapshot { to, zxid: z });
            z
        };
        out.extend(hist.after(base).map(|t| send(QuorumMsg::Proposal(t.clone()))));
        // Only what is known committed is sent as such; the initial history gets its
        // COMMIT when the NEWLEADER quorum forms.
        if self.phase == Phase::Serving && self.committed > Zxid::ZERO {
            out.push(send(QuorumMsg::Commit { zxid: self.committed }));
        }
        out.push(send(QuorumMsg::NewLeader { epoch, zxid: Zxid::new(epoch, 0) }));
        h.stage = Stage::Synced;
        h.nl_upto = last;
    }

    fn on_ack(&mut self, core: &mut Core, now: Millis, from: ServerId, zxid: Zxid, out: &mut Vec<Action>) -> Next {
        let epoch = self.epoch.unwrap_or(0);
        let serving = self.phase == Phase::Serving;
        let committed = self.committed;
        let Some(h) = self.handlers.get_mut(&from) else { return Next::Stay };
        match h.stage {
            Stage::Synced if zxid == Zxid::new(epoch, 0) => {
                h.stage = Stage::Acked;
                h.acked = h.nl_upto;
                if serving {
                    // A late joiner: it has everything; tell it what is committed and go.
                    if committed > Zxid::ZERO {
                        out.push(Action::SendQuorum { to: from, msg: QuorumMsg::Commit { zxid: committed } });
                    }
                    out.push(Action::SendQuorum { to: from, msg: QuorumMsg::UpToDate });
                }
            }
            Stage::Acked if zxid > h.acked && zxid <= core.hist.last_logged() => h.acked = zxid,
            _ => {
                note!("leader: stray ack {zxid} from {from}");
                return Next::Stay;
            }
        }
        self.on_progress(core, now, out)
    }

    /// Something became durable somewhere: maybe the NEWLEADER quorum formed, maybe
    /// proposals committed.
    fn on_progress(&mut self, core: &mut Core, _now: Millis, out: &mut Vec<Action>) -> Next {
        match self.phase {
            Phase::Discovery => {}
            Phase::Sync => {
                // Become current in the epoch only with the initial history durable (a
                // crash must not leave currentEpoch = e over a shorter log), then count
                // as one NEWLEADER ack.
                if !self.current && core.hist.synced() == core.hist.last_logged() {
                    let epoch = self.epoch.expect("Sync phase has an epoch");
                    core.persist_epoch(epoch, epoch, out);
                    self.current = true;
                }
                let (me, current) = (core.cfg.me, self.current);
                let acked = |id| (id == me && current) || self.handlers.get(&id).is_some_and(|h| h.stage == Stage::Acked);
                if core.cfg.is_quorum(acked) {
                    self.start_serving(core, out);
                }
            }
            Phase::Serving => {
                self.try_commit(core, out);
                self.answer_syncs(out);
            }
        }
        Next::Stay
    }

    /// The initial history is committed: everything logged so far.
    fn start_serving(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        self.phase = Phase::Serving;
        self.committed = core.hist.last_logged();
        core.apply_upto(self.committed, out);
        let committed = self.committed;
        for (&to, _) in self.handlers.iter().filter(|(_, h)| h.stage == Stage::Acked) {
            if committed > Zxid::ZERO {
                out.push(Action::SendQuorum { to, msg: QuorumMsg::Commit { zxid: committed } });
            }
            out.push(Action::SendQuorum { to, msg: QuorumMsg::UpToDate });
        }
    }

    fn try_commit(&mut self, core: &mut Core, out: &mut Vec<Action>) {
        let me = core.cfg.me;
        let mut upto = self.committed;
        for t in core.hist.after(self.committed) {
            let z = t.header.zxid;
            let acked = |id| {
                if id == me {
                    core.ackable() >= z
                } else {
                    self.handlers.get(&id).is_some_and(|h| h.stage == Stage::Acked && h.acked >= z)
                }
            };
            if !self.may_commit(core, z, acked) {
                break;
            }
            upto = z;
        }
        if upto == self.committed {
            return;
        }
        self.committed = upto;
        for (&to, _) in self.handlers.iter().filter(|(_, h)| h.stage >= Stage::Synced) {
            out.push(Action::SendQuorum { to, msg: QuorumMsg::Commit { zxid: upto } });
        }
        core.apply_upto(upto, out);
    }

    /// Whether the servers that have `z` durable (`acked`) may commit it, everything before
    /// it being committed: a quorum of the committed voters; for a proposed voter change,
    /// of its new voters too; after it (so it has committed: commits go in order), of the
    /// new voters alone, as they will be once the service applies it.
    fn may_commit(&self, core: &Core, z: Zxid, acked: impl Fn(ServerId) -> bool) -> bool {
        let cfg = &core.cfg;
        if cfg.planted.commit_before_quorum {
            // PLANTED BUG (commit-before-quorum): the leader's own durable ack is enough, so
            // a commit (and its client's reply) can rest on one server's log alone.
            return acked(cfg.me);
        }
        match &cfg.proposed {
            Some(p) if z > p.zxid => super::majority(&p.voters, &acked),
            Some(p) if z == p.zxid => super::majority(&cfg.voters, &acked) && super::majority(&p.voters, &acked),
            _ => super::majority(&cfg.voters, &acked),
        }
    }

    fn remove(&mut self, peer: ServerId) {
        self.handlers.remove(&peer);
        self.syncs.forget(peer);
    }

    fn sync_arrived(&mut self, core: &Core, asker: Asker, session: SessionId, cxid: i32, path: String, out: &mut Vec<Action>) {
        if let Some(round) = self.syncs.arrive(asker, session, cxid, path, core.hist.last_logged()) {
            self.start_round(core, round, out);
        }
    }

    /// Ping every voter in the epoch with a new round, unless this leader alone is a quorum.
    fn start_round(&mut self, core: &Core, round: u64, out: &mut Vec<Action>) {
        let ping = QuorumMsg::Ping { zxid: self.committed, round };
        for (&to, _) in self.handlers.iter().filter(|(id, h)| h.stage == Stage::Acked && core.cfg.is_voter(**id)) {
            out.push(Action::SendQuorum { to, msg: ping.clone() });
        }
        self.try_confirm(core, out);
    }

    /// The round in flight is confirmed once a quorum (joint while a voter change is
    /// proposed), this leader included, answered it.
    fn try_confirm(&mut self, core: &Core, out: &mut Vec<Action>) {
        let Some(round) = self.syncs.in_flight() else { return };
        let me = core.cfg.me;
        let answered = |id| id == me || self.handlers.get(&id).is_some_and(|h| h.stage == Stage::Acked && h.round >= round);
        if !core.cfg.is_quorum(answered) {
            return;
        }
        let next = self.syncs.confirmed(round);
        self.answer_syncs(out);
        if let Some(next) = next {
            self.start_round(core, next, out);
        }
    }

    /// Answer the syncs whose round is confirmed and whose earlier proposals committed: a
    /// follower's on its connection, after the commits already queued there.
    fn answer_syncs(&mut self, out: &mut Vec<Action>) {
        for w in self.syncs.ready(self.committed) {
            let (session, cxid, path) = (w.session, w.cxid, w.path);
            match w.asker {
                Asker::Local => out.push(Action::SyncDone { session, cxid, path }),
                Asker::Follower(to) => out.push(Action::SendQuorum { to, msg: QuorumMsg::SyncDone { session, cxid, path } }),
            }
        }
    }

    fn propose(&mut self, core: &mut Core, txn: Txn, out: &mut Vec<Action>) {
        if self.phase != Phase::Serving {
            note!("leader: not serving; dropping proposal {}", txn.header.zxid);
            return;
        }
        let epoch = self.epoch.expect("serving implies an epoch");
        let z = txn.header.zxid;
        let last = core.hist.last_logged();
        let expected = if last.epoch() == epoch { last.next() } else { Zxid::new(epoch, 1) };
        // Programmer error: the service must take zxids from `next_zxid()`.
        assert_eq!(z, expected, "proposal out of order");
        core.append(txn.clone());
        out.push(Action::Persist(txn.clone()));
        for (&to, _) in self.handlers.iter().filter(|(_, h)| h.stage >= Stage::Synced) {
            out.push(Action::SendQuorum { to, msg: QuorumMsg::Proposal(txn.clone()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::peer::{Notification, PeerState, QuorumMsg, Vote};
    use crate::proto::{ServerId, SessionId, Zxid};
    use crate::txn::{Txn, TxnHeader, TxnOp};
    use crate::zab::{Action, DurableState, Input, Role, Zab, ZabConfig};

    fn leader_of_5() -> Zab {
        let cfg = ZabConfig::for_test(5, 5, 10);
        let mut z = Zab::new(cfg, DurableState::default(), vec![], 0);
        let mut out = vec![];
        let vote = Vote { leader: ServerId(5), zxid: Zxid::ZERO, epoch: 0 };
        for s in [1, 2] {
            z.step(1, Input::Election(Notification { sender: ServerId(s), state: PeerState::Looking, vote, round: 1, config: None }), &mut out);
        }
        z.step(30, Input::Tick, &mut out);
        assert!(matches!(z.role(), Role::Leading { .. }));
        z
    }

    fn msg(z: &mut Zab, from: u64, msg: QuorumMsg) -> Vec<Action> {
        let mut out = vec![];
        z.step(40, Input::Quorum { from: ServerId(from), msg }, &mut out);
        out
    }

    fn info(from: u64, accepted_epoch: u32) -> QuorumMsg {
        QuorumMsg::FollowerInfo { from: ServerId(from), accepted_epoch, last_zxid: Zxid::ZERO }
    }

    const ACK_EPOCH: QuorumMsg = QuorumMsg::AckEpoch { current_epoch: 0, last_zxid: Zxid::ZERO };

    fn sent_diff(out: &[Action]) -> bool {
        out.iter().any(|a| matches!(a, Action::SendQuorum { msg: QuorumMsg::Diff { .. }, .. }))
    }

    /// Zab phase 1 (ZooKeeper's ACKEPOCH "-1"): an ack from a server that had already
    /// accepted this epoch number (from another would-be leader) is not a fresh promise and
    /// does not count towards establishing the epoch.
    #[test]
    fn only_fresh_promises_establish_the_epoch() {
        let mut z = leader_of_5();
        assert!(msg(&mut z, 1, info(1, 0)).is_empty());
        let out = msg(&mut z, 2, info(2, 0));
        assert_eq!(out[0], Action::PersistEpoch { accepted: 1, current: 0 });
        assert_eq!(msg(&mut z, 4, info(4, 1)), vec![Action::SendQuorum { to: ServerId(4), msg: QuorumMsg::NewEpoch { epoch: 1 } }]);
        assert!(!sent_diff(&msg(&mut z, 4, ACK_EPOCH)), "4's ack is not a fresh promise");
        assert!(!sent_diff(&msg(&mut z, 1, ACK_EPOCH)), "self + 1 is not a quorum of 5");
        let out = msg(&mut z, 2, ACK_EPOCH);
        assert!(sent_diff(&out), "self + 1 + 2 establish epoch 1; 1, 2 and 4 are synced");
        assert!(!z.serving(), "serving waits for NEWLEADER acks");
    }

    /// Leader 5 of 5 serving epoch 1 with followers 1 and 2.
    fn serving_leader_of_5() -> Zab {
        let mut z = leader_of_5();
        for f in [1, 2] {
            msg(&mut z, f, info(f, 0));
        }
        for f in [1, 2] {
            msg(&mut z, f, ACK_EPOCH);
        }
        for f in [1, 2] {
            msg(&mut z, f, QuorumMsg::Ack { zxid: Zxid::new(1, 0) });
        }
        assert!(z.serving());
        z
    }

    fn sync_done(out: &[Action]) -> Vec<String> {
        out.iter()
            .filter_map(|a| match a {
                Action::SyncDone { path, .. } => Some(format!("local {path}")),
                Action::SendQuorum { to, msg: QuorumMsg::SyncDone { path, .. } } => Some(format!("{to} {path}")),
                _ => None,
            })
            .collect()
    }

    /// A sync is answered only once a quorum answered a ping sent after it arrived: a
    /// leader cut off from its followers must not answer from a state a new leader may
    /// already have passed (simulator seed 106199).
    #[test]
    fn a_sync_waits_for_a_quorum_to_confirm_the_leader_after_it_arrived() {
        let mut z = serving_leader_of_5();
        let mut out = vec![];
        z.step(50, Input::Forward(QuorumMsg::Sync { session: SessionId(9), cxid: 1, path: "/a".into() }), &mut out);
        let pinged: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::SendQuorum { to, msg: QuorumMsg::Ping { round: 1, .. } } => Some(to.0),
                _ => None,
            })
            .collect();
        assert_eq!(pinged, [1, 2], "a round of pings to the voters in the epoch");
        assert!(sync_done(&out).is_empty());
        let follower_sync = QuorumMsg::Sync { session: SessionId(8), cxid: 4, path: "/b".into() };
        assert!(sync_done(&msg(&mut z, 1, follower_sync)).is_empty(), "arrived during round 1: waits for round 2");
        let reply = |round| QuorumMsg::PingReply { touched: vec![], round };
        assert!(sync_done(&msg(&mut z, 1, reply(0))).is_empty(), "an answer to an older ping proves nothing");
        assert!(sync_done(&msg(&mut z, 1, reply(1))).is_empty(), "self and 1 are not a quorum of 5");
        let out = msg(&mut z, 2, reply(1));
        assert_eq!(sync_done(&out), ["local /a"]);
        assert!(out.iter().any(|a| matches!(a, Action::SendQuorum { msg: QuorumMsg::Ping { round: 2, .. }, .. })), "round 2 starts");
        msg(&mut z, 2, reply(2));
        assert_eq!(sync_done(&msg(&mut z, 1, reply(2))), ["1 /b"], "answered on follower 1's connection");
    }

    /// A Looking server that a quorum has dialled as its leader leads at once, answering
    /// with a vote for itself (simulator seeds 213172 and 376).
    #[test]
    fn a_looking_server_dialled_by_a_quorum_leads() {
        let cfg = ZabConfig::for_test(5, 5, 10);
        let mut z = Zab::new(cfg, DurableState::default(), vec![], 0);
        let mut out = vec![];
        z.step(1, Input::Quorum { from: ServerId(1), msg: info(1, 0) }, &mut out);
        assert_eq!(z.role(), Role::Looking, "self + 1 of 5 is no quorum");
        z.step(2, Input::Quorum { from: ServerId(2), msg: info(2, 0) }, &mut out);
        assert!(matches!(z.role(), Role::Leading { .. }), "{:?}", z.role());
    }

    /// Zab phase 1: a follower more up to date than the would-be leader makes it step down.
    #[test]
    fn steps_down_for_a_more_up_to_date_follower() {
        let mut z = leader_of_5();
        msg(&mut z, 1, info(1, 0));
        msg(&mut z, 2, info(2, 0));
        msg(&mut z, 1, QuorumMsg::AckEpoch { current_epoch: 0, last_zxid: Zxid::new(0, 3) });
        assert_eq!(z.role(), Role::Looking);
    }

    /// A leader (3) of voters 1..=3 serving with 1, 2 and the learners `extra` (servers no
    /// config lists yet, joining) synced at epoch 1.
    fn serving_leader_of_3(extra: &[u64]) -> Zab {
        let mut z = Zab::new(ZabConfig::for_test(3, 3, 100), DurableState::default(), vec![], 0);
        let mut out = vec![];
        let vote = Vote { leader: ServerId(3), zxid: Zxid::ZERO, epoch: 0 };
        z.step(1, Input::Election(Notification { sender: ServerId(1), state: PeerState::Looking, vote, round: 1, config: None }), &mut out);
        z.step(30, Input::Tick, &mut out);
        assert!(matches!(z.role(), Role::Leading { .. }));
        let learners: Vec<u64> = [1, 2].iter().chain(extra).copied().collect();
        for &id in &learners {
            msg(&mut z, id, info(id, 0));
        }
        for &id in &learners {
            msg(&mut z, id, ACK_EPOCH);
        }
        for &id in &learners {
            msg(&mut z, id, QuorumMsg::Ack { zxid: Zxid::new(1, 0) });
        }
        assert!(z.serving(), "serving with 1 and 2");
        let synced: Vec<u64> = z.synced_servers().map(|s| s.0).collect();
        let mut want: Vec<u64> = learners.iter().copied().chain([3]).collect();
        want.sort();
        assert_eq!(synced, want, "joining learners are synced too");
        z
    }

    fn txn(zxid: Zxid, op: TxnOp) -> Txn {
        Txn { header: TxnHeader { session: SessionId(0), cxid: 0, zxid, time_ms: 0 }, op }
    }

    fn voters_text(ids: &[u64]) -> Vec<u8> {
        let lines: Vec<String> = ids.iter().map(|i| format!("server.{i}=127.0.0.1:{}:{};{}", 100 + i, 200 + i, 300 + i)).collect();
        format!("{}\nversion=100000001", lines.join("\n")).into_bytes()
    }

    /// Propose a reconfig to `voters` and one write after it, both durable at the leader.
    fn propose_reconfig_and_a_write(z: &mut Zab, voters: &[u64]) -> (Zxid, Zxid) {
        let mut out = vec![];
        let r = z.next_zxid();
        z.step(50, Input::Propose(txn(r, TxnOp::Reconfig { data: voters_text(voters) })), &mut out);
        let p = z.next_zxid();
        z.step(51, Input::Propose(txn(p, TxnOp::Check { path: "/".into(), version: 0 })), &mut out);
        z.step(52, Input::LogSynced { zxid: p }, &mut out);
        (r, p)
    }

    fn ack(z: &mut Zab, from: u64, zxid: Zxid) {
        msg(z, from, QuorumMsg::Ack { zxid });
    }

    /// Joint quorum (ZooKeeper's Leader.tryToCommit with qvAcksetPairs): voters 1,2,3 are
    /// replaced by 3,4,5. A reconfig and the proposal after it do not commit on a quorum of
    /// the old voters alone.
    #[test]
    fn a_voter_change_does_not_commit_on_the_old_quorum_alone() {
        let mut z = serving_leader_of_3(&[4, 5]);
        let (r, p) = propose_reconfig_and_a_write(&mut z, &[3, 4, 5]);
        ack(&mut z, 1, p);
        ack(&mut z, 2, p);
        assert!(z.last_committed() < r, "all the old voters acked, none of the new but the leader");
        ack(&mut z, 4, p);
        assert_eq!(z.last_committed(), p, "3 and 4 are a quorum of the new voters too");
    }

    #[test]
    fn a_voter_change_does_not_commit_on_the_new_quorum_alone() {
        let mut z = serving_leader_of_3(&[4, 5]);
        let (r, p) = propose_reconfig_and_a_write(&mut z, &[3, 4, 5]);
        ack(&mut z, 4, p);
        ack(&mut z, 5, p);
        assert!(z.last_committed() < r, "all the new voters acked, none of the old but the leader");
        ack(&mut z, 1, r);
        assert_eq!(z.last_committed(), p, "the reconfig has both quorums now; the write after it needs the new one only");
    }

    /// Once the reconfig has committed the new voters alone count: for what was proposed
    /// after it (in flight meanwhile) and, once applied, for everything.
    #[test]
    fn after_the_change_the_new_voters_alone_count() {
        let mut z = serving_leader_of_3(&[4, 5]);
        let (r, p) = propose_reconfig_and_a_write(&mut z, &[3, 4, 5]);
        ack(&mut z, 1, r);
        ack(&mut z, 4, r);
        assert_eq!(z.last_committed(), r);
        ack(&mut z, 5, p);
        assert_eq!(z.last_committed(), p, "3 and 5 of the new voters; no old quorum is needed after the change");
        let mut out = vec![];
        z.step(55, Input::Membership { voters: [3, 4, 5].map(ServerId).into(), observers: Default::default(), version: r }, &mut out);
        assert_eq!(z.quorum_size(), 2);
        assert!(out.contains(&Action::CloseQuorum { peer: ServerId(2) }), "2 left: its connection is closed: {out:?}");
        assert!(z.synced_servers().eq([3, 4, 5].map(ServerId)));
        let later = z.next_zxid();
        z.step(56, Input::Propose(txn(later, TxnOp::Check { path: "/".into(), version: 0 })), &mut out);
        z.step(57, Input::LogSynced { zxid: later }, &mut out);
        ack(&mut z, 4, later);
        assert_eq!(z.last_committed(), later, "3 and 4 of 3, 4, 5");
    }

    /// A leader the change removes steps down once it is applied; the new voters elect.
    #[test]
    fn a_removed_leader_steps_down_and_never_decides_again() {
        let mut z = serving_leader_of_3(&[4]);
        let (r, p) = propose_reconfig_and_a_write(&mut z, &[1, 2, 4]);
        ack(&mut z, 1, p);
        assert!(z.last_committed() < r, "the new voters 1, 2, 4 need two of them: the leader is not one");
        ack(&mut z, 4, p);
        assert_eq!(z.last_committed(), p);
        let mut out = vec![];
        z.step(60, Input::Membership { voters: [1, 2, 4].map(ServerId).into(), observers: Default::default(), version: r }, &mut out);
        assert_eq!(z.role(), Role::Looking);
        assert!(out.contains(&Action::CloseQuorum { peer: ServerId(1) }));
        // However many answers back it, a non-member never leads nor follows.
        for (s, st) in [(1, PeerState::Looking), (2, PeerState::Looking), (4, PeerState::Looking)] {
            let vote = Vote { leader: ServerId(3), zxid: p, epoch: 1 };
            z.step(61, Input::Election(Notification { sender: ServerId(s), state: st, vote, round: 2, config: None }), &mut out);
        }
        z.step(1000, Input::Tick, &mut out);
        assert_eq!(z.role(), Role::Looking);
    }
}

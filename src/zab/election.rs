//! Fast leader election (ZooKeeper's `FastLeaderElection`), as a pure state machine.
//!
//! A Looking server proposes a vote (leader id, that leader's last zxid and currentEpoch) and
//! converges with the others on the greatest one in `Vote`'s order (epoch, zxid, id): the
//! most up-to-date log wins and the highest id breaks ties. Rounds (`logicalclock`) fence off
//! stale notifications: a higher round resets what we heard; a lower one is answered so the
//! sender catches up.
//!
//! Invariants:
//! - A decision needs a quorum (self included) backing exactly my vote in my round, stable
//!   for `finalize_wait_ms` (any better vote restarts the wait). Backers are Looking peers
//!   and also peers that already decided in this round and answer Following/Leading with
//!   that vote: a server whose supporters all decided before it heard them learns it won
//!   from their answers (ZooKeeper's `receivedFollowingNotification`: FOLLOWING/LEADING
//!   notifications of the same round count with the LOOKING ones). Such an answer decides at
//!   once, as in ZooKeeper, since the quorum has already waited out its finalize delay.
//! - Otherwise, a quorum of Following/Leading peers naming a leader that itself reports
//!   Leading (ZooKeeper's out-of-election check: a restarted server joins the incumbent
//!   instead of deposing it). Following someone else also needs that leader's own Leading
//!   answer in the same-round case (`checkLeader`).
//! - An observer takes part only to learn the leader: voters ignore its notifications while
//!   Looking and answer them once Following/Leading; it never counts itself and never
//!   decides to lead, so it follows what a quorum of voters settled on.
//! - Election never decides safety: two servers may believe different leaders for a while;
//!   discovery (epoch quorum) and sync make that harmless. It only needs to converge.

use std::collections::BTreeMap;

use crate::peer::{Notification, PeerState, Vote};
use crate::proto::{Millis, ServerId};

use super::{Action, ZabConfig};

/// What the election concluded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Lead,
    Follow(ServerId),
}

#[derive(Debug)]
pub struct Election {
    /// The logical clock; survives role changes (ZooKeeper keeps it for the process).
    round: u64,
    vote: Vote,
    /// The latest notification from each peer (any state, any round).
    heard: BTreeMap<ServerId, Notification>,
    /// Set when a quorum first agreed with my vote; decide when it passes.
    finalize_at: Option<Millis>,
    next_resend: Millis,
}

impl Election {
    pub fn new(me: ServerId) -> Election {
        Election {
            round: 0,
            vote: Vote { leader: me, zxid: Default::default(), epoch: 0 },
            heard: BTreeMap::new(),
            finalize_at: None,
            next_resend: 0,
        }
    }

    pub fn round(&self) -> u64 {
        self.round
    }
    pub fn vote(&self) -> Vote {
        self.vote
    }
    /// Servers (me included) whose last word in this election names my vote's leader: for
    /// the log line that reports the outcome.
    pub fn supporters(&self, cfg: &ZabConfig) -> usize {
        1 + self.heard.iter().filter(|(id, h)| **id != cfg.me && h.vote.leader == self.vote.leader).count()
    }

    /// Enter Looking: new round, vote for myself, tell everyone.
    pub fn start(&mut self, cfg: &ZabConfig, now: Millis, own: Vote, out: &mut Vec<Action>) {
        self.round += 1;
        self.vote = own;
        self.heard.clear();
        self.finalize_at = None;
        self.broadcast(cfg, now, out);
    }

    /// The vote a Following/Leading server reports: what it decided (or joined).
    pub fn settle(&mut self, vote: Vote) {
        self.vote = vote;
        self.finalize_at = None;
    }

    pub fn deadline(&self) -> Millis {
        self.finalize_at.map_or(self.next_resend, |f| f.min(self.next_resend))
    }

    pub fn notification(&self, cfg: &ZabConfig, state: PeerState) -> Notification {
        Notification { sender: cfg.me, state, vote: self.vote, round: self.round }
    }

    fn broadcast(&mut self, cfg: &ZabConfig, now: Millis, out: &mut Vec<Action>) {
        let msg = self.notification(cfg, PeerState::Looking);
        for to in cfg.all_voters().filter(|v| *v != cfg.me) {
            out.push(Action::SendElection { to, msg: msg.clone() });
        }
        // Resend often while Looking (ZooKeeper starts at 200 ms): a notification that
        // arrived while a peer was still Following is answered but not counted, and waiting a
        // whole tick (2 s by default) for the next one would stall the election.
        self.next_resend = now + cfg.tick_ms.min(cfg.finalize_wait_ms.max(1));
    }

    /// A Following/Leading server answers a Looking peer with its own vote and state, any
    /// peer (as ZooKeeper answers a non-voting one): a server joining as a voter learns the
    /// leader this way before any config of ours lists it.
    pub fn answer(&self, cfg: &ZabConfig, n: &Notification, state: PeerState, out: &mut Vec<Action>) {
        if n.state == PeerState::Looking && n.sender != cfg.me {
            out.push(Action::SendElection { to: n.sender, msg: self.notification(cfg, state) });
        }
    }

    /// Looking: resend (lost messages, late joiners) and finish a settled decision.
    pub fn tick(&mut self, cfg: &ZabConfig, now: Millis, out: &mut Vec<Action>) -> Option<Decision> {
        if now >= self.next_resend {
            self.broadcast(cfg, now, out);
        }
        // A single voter is its own quorum.
        if self.finalize_at.is_none() && self.backed(cfg, self.vote) {
            self.finalize_at = Some(now + cfg.finalize_wait_ms);
        }
        match self.finalize_at {
            Some(at) if now >= at => {
                self.finalize_at = None;
                // Still a quorum? A backer that moved to a better vote no longer counts; one
                // that decided meanwhile still does (its Following answer replaced its
                // Looking vote: counting only Looking peers here left the winner Looking
                // until its followers gave up at initLimit).
                if self.backed(cfg, self.vote) {
                    return self.decision_for(cfg, self.vote.leader);
                }
                None
            }
            _ => None,
        }
    }

    /// Looking: one notification from a peer.
    pub fn receive(&mut self, cfg: &ZabConfig, now: Millis, n: Notification, out: &mut Vec<Action>) -> Option<Decision> {
        if n.sender == cfg.me || !cfg.is_voter(n.sender) {
            note!("election: ignoring notification from non-voter {}", n.sender);
            return None;
        }
        let sender = n.sender;
        match n.state {
            PeerState::Looking => {
                if n.round > self.round {
                    self.round = n.round;
                    self.heard.retain(|_, h| h.state != PeerState::Looking);
                    self.finalize_at = None;
                    if better(cfg, n.vote, self.vote) {
                        self.vote = n.vote;
                    }
                    self.heard.insert(sender, n);
                    self.broadcast(cfg, now, out);
                } else if n.round < self.round {
                    // Help the straggler catch up; its stale vote does not count.
                    out.push(Action::SendElection { to: sender, msg: self.notification(cfg, PeerState::Looking) });
                    self.heard.insert(sender, n);
                    return None;
                } else {
                    if better(cfg, n.vote, self.vote) {
                        self.vote = n.vote;
                        self.finalize_at = None;
                        self.broadcast(cfg, now, out);
                    } else if better(cfg, self.vote, n.vote) {
                        // It has not seen my better vote (it may still have been Following
                        // when I broadcast it): tell it now, not at my next resend a whole
                        // resend interval later (found by the failover test: ~200 ms).
                        out.push(Action::SendElection { to: sender, msg: self.notification(cfg, PeerState::Looking) });
                    }
                    self.heard.insert(sender, n);
                }
                if self.finalize_at.is_none() && self.backed(cfg, self.vote) {
                    self.finalize_at = Some(now + cfg.finalize_wait_ms);
                }
                None
            }
            PeerState::Following | PeerState::Leading => {
                let (round, vote) = (n.round, n.vote);
                self.heard.insert(sender, n);
                if round == self.round {
                    if let Some(d) = self.same_round_decision(cfg, vote) {
                        return Some(d);
                    }
                }
                self.out_of_election(cfg)
            }
        }
    }

    /// Whether a quorum (of both configurations while a voter change is proposed), me
    /// included, backs `vote` in my round: Looking peers proposing it, and peers that
    /// decided on it in this round (Following/Leading answers).
    fn backed(&self, cfg: &ZabConfig, vote: Vote) -> bool {
        cfg.is_quorum(|id| {
            if id == cfg.me {
                self.vote == vote
            } else {
                self.heard.get(&id).is_some_and(|h| h.round == self.round && h.vote == vote)
            }
        })
    }

    /// A Following/Leading answer from my round names `vote`: with a quorum behind it, the
    /// election is over. I lead if it names me; I follow someone else only once that server
    /// itself answered Leading (ZooKeeper's `checkLeader`).
    fn same_round_decision(&mut self, cfg: &ZabConfig, vote: Vote) -> Option<Decision> {
        if !self.backed(cfg, vote) {
            return None;
        }
        let leader_confirmed = vote.leader == cfg.me
            || self
                .heard
                .get(&vote.leader)
                .is_some_and(|h| h.state == PeerState::Leading && h.round == self.round && h.vote == vote);
        if !leader_confirmed {
            return None;
        }
        let decision = self.decision_for(cfg, vote.leader)?;
        self.vote = vote;
        self.finalize_at = None;
        Some(decision)
    }

    /// A quorum (of either configuration: `ZabConfig::is_quorum_of_either`) of
    /// Following/Leading peers names L, and L itself says it is Leading.
    fn out_of_election(&mut self, cfg: &ZabConfig) -> Option<Decision> {
        // The leader's own Leading answer, or, for a leader no config of mine lists (a
        // reconfig I missed while down added it: I neither send to nor hear from it), the
        // answer of one of its followers: a quorum of my voters following it is all I
        // can know (ZooKeeper sends the config with the notification instead).
        let leading: Vec<(ServerId, Notification)> = self
            .heard
            .iter()
            .filter(|(id, h)| {
                h.state != PeerState::Looking
                    && (h.vote.leader == **id && h.state == PeerState::Leading || !cfg.is_voter(h.vote.leader))
            })
            .map(|(_, h)| (h.vote.leader, h.clone()))
            .collect();
        for (leader, ln) in leading {
            let backs = |id| self.heard.get(&id).is_some_and(|h| h.state != PeerState::Looking && h.vote.leader == leader);
            if cfg.is_quorum_of_either(backs) {
                let Some(decision) = self.decision_for(cfg, leader) else { continue };
                self.vote = ln.vote;
                self.round = self.round.max(ln.round);
                self.finalize_at = None;
                return Some(decision);
            }
        }
        None
    }

    /// What electing `leader` means for me; nothing if that is me and I am an observer, or
    /// if I am no member at all (a reconfig removed me: I neither lead nor follow).
    fn decision_for(&self, cfg: &ZabConfig, leader: ServerId) -> Option<Decision> {
        if !cfg.is_member(cfg.me) {
            None
        } else if leader != cfg.me {
            Some(Decision::Follow(leader))
        } else if cfg.is_voter(cfg.me) {
            Some(Decision::Lead)
        } else {
            None
        }
    }
}

/// Whether vote `a` beats vote `b`: `Vote`'s order, (epoch, zxid, id).
fn better(cfg: &ZabConfig, a: Vote, b: Vote) -> bool {
    if cfg.planted.election_ignores_zxid {
        // PLANTED BUG (election-ignores-zxid): the highest id wins even with an older log.
        return a.leader > b.leader;
    }
    a > b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Zxid;

    fn cfg(me: u64, n: u64) -> ZabConfig {
        ZabConfig::for_test(me, n, 100)
    }
    fn v(id: u64, z: i64, e: u32) -> Vote {
        Vote { leader: ServerId(id), zxid: Zxid(z), epoch: e }
    }
    fn looking(from: u64, vote: Vote, round: u64) -> Notification {
        Notification { sender: ServerId(from), state: PeerState::Looking, vote, round }
    }

    #[test]
    fn adopts_better_vote_and_decides_after_finalize_wait() {
        let c = cfg(1, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(1, 5, 1), &mut out);
        assert_eq!(out.len(), 2, "notification to each other voter");
        out.clear();
        assert_eq!(e.receive(&c, 1, looking(3, v(3, 5, 1), 1), &mut out), None);
        assert_eq!(e.vote(), v(3, 5, 1));
        assert_eq!(out.len(), 2, "a changed vote is re-sent");
        // Quorum {1,3} agrees: wait finalize_wait_ms before deciding.
        assert_eq!(e.tick(&c, 10, &mut out), None);
        assert_eq!(e.tick(&c, 21, &mut out), Some(Decision::Follow(ServerId(3))));
    }

    #[test]
    fn more_up_to_date_log_beats_higher_id() {
        let c = cfg(3, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(3, 4, 1), &mut out);
        e.receive(&c, 1, looking(1, v(1, 9, 1), 1), &mut out);
        assert_eq!(e.vote(), v(1, 9, 1));
    }

    #[test]
    fn higher_round_resets_and_lower_round_is_answered() {
        let c = cfg(1, 5);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(1, 0, 0), &mut out);
        e.receive(&c, 1, looking(2, v(2, 0, 0), 7), &mut out);
        assert_eq!(e.round(), 7);
        out.clear();
        e.receive(&c, 2, looking(3, v(3, 0, 0), 2), &mut out);
        assert_eq!(e.vote(), v(2, 0, 0), "a stale round's vote is not adopted");
        assert!(matches!(&out[..], [Action::SendElection { to: ServerId(3), .. }]));
    }

    fn answer(from: u64, state: PeerState, vote: Vote, round: u64) -> Notification {
        Notification { sender: ServerId(from), state, vote, round }
    }

    /// ZooKeeper's receivedFollowingNotification: a supporter that already decided in my
    /// round counts, so I learn I won from its Following answer, at once.
    #[test]
    fn following_answer_of_my_round_elects_me() {
        let c = cfg(2, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(2, 5, 1), &mut out);
        let f = answer(1, PeerState::Following, v(2, 5, 1), 1);
        assert_eq!(e.receive(&c, 1, f, &mut out), Some(Decision::Lead));
    }

    #[test]
    fn following_answer_of_another_round_or_vote_does_not_count() {
        let c = cfg(2, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(2, 5, 1), &mut out);
        e.start(&c, 0, v(2, 5, 1), &mut out); // round 2
        assert_eq!(e.receive(&c, 1, answer(1, PeerState::Following, v(2, 5, 1), 1), &mut out), None, "an old round");
        assert_eq!(e.receive(&c, 2, answer(3, PeerState::Following, v(2, 4, 1), 2), &mut out), None, "another vote");
        assert_eq!(e.tick(&c, 100, &mut out), None, "no finalize either");
    }

    /// Following someone else on same-round answers needs that server's own Leading answer
    /// (ZooKeeper's checkLeader); the finalize check counts a backer that decided meanwhile.
    #[test]
    fn finalize_counts_a_backer_that_decided_meanwhile() {
        let c = cfg(1, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(1, 5, 1), &mut out);
        e.receive(&c, 1, looking(2, v(3, 5, 1), 1), &mut out);
        assert_eq!(e.vote(), v(3, 5, 1));
        // 2 decided to follow 3 before my finalize wait ended; 3 has not answered yet.
        assert_eq!(e.receive(&c, 5, answer(2, PeerState::Following, v(3, 5, 1), 1), &mut out), None);
        assert_eq!(e.tick(&c, 21, &mut out), Some(Decision::Follow(ServerId(3))));
    }

    #[test]
    fn same_round_leading_answer_lets_me_follow_at_once() {
        let c = cfg(1, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(1, 5, 1), &mut out);
        assert_eq!(e.receive(&c, 1, answer(2, PeerState::Following, v(3, 5, 1), 1), &mut out), None, "3 not confirmed");
        assert_eq!(e.receive(&c, 2, answer(3, PeerState::Leading, v(3, 5, 1), 1), &mut out), Some(Decision::Follow(ServerId(3))));
        assert_eq!(e.vote(), v(3, 5, 1), "I report the vote I followed");
    }

    /// A peer of my round still proposing a worse vote missed my broadcast: it gets mine
    /// right away instead of at my next resend.
    #[test]
    fn worse_vote_of_my_round_is_answered_with_mine() {
        let c = cfg(3, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(3, 5, 1), &mut out);
        out.clear();
        e.receive(&c, 1, looking(1, v(1, 5, 1), 1), &mut out);
        assert_eq!(
            out,
            vec![Action::SendElection { to: ServerId(1), msg: answer(3, PeerState::Looking, v(3, 5, 1), 1) }]
        );
        out.clear();
        e.receive(&c, 2, looking(1, v(3, 5, 1), 1), &mut out);
        assert!(out.is_empty(), "an equal vote needs no answer");
    }

    #[test]
    fn joins_incumbent_backed_by_quorum_of_non_looking_peers() {
        let c = cfg(1, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(1, 100, 9), &mut out);
        let inc = v(3, 50, 2);
        let lead = Notification { sender: ServerId(3), state: PeerState::Leading, vote: inc, round: 4 };
        let fol = Notification { sender: ServerId(2), state: PeerState::Following, vote: inc, round: 4 };
        assert_eq!(e.receive(&c, 1, fol, &mut out), None, "the leader itself has not confirmed yet");
        // Even though my own vote is "better", the incumbent keeps its place.
        assert_eq!(e.receive(&c, 2, lead, &mut out), Some(Decision::Follow(ServerId(3))));
    }

    /// A server that missed the reconfig adding 4 (down meanwhile) never hears 4; a quorum
    /// of its voters following 4 is enough to follow it (and learn the change by sync).
    #[test]
    fn follows_a_leader_its_config_does_not_list_on_a_quorum_of_its_voters() {
        let c = cfg(3, 3);
        let mut e = Election::new(c.me);
        let mut out = vec![];
        e.start(&c, 0, v(3, 0, 0), &mut out);
        let new = v(4, 50, 2);
        assert_eq!(e.receive(&c, 1, answer(1, PeerState::Following, new, 4), &mut out), None, "one of three");
        assert_eq!(e.receive(&c, 2, answer(2, PeerState::Following, new, 4), &mut out), Some(Decision::Follow(ServerId(4))));
    }
}

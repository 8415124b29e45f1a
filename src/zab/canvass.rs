//! A would-be leader's canvass: while discovery waits for FOLLOWERINFOs, ask the voters that
//! have not joined what they are doing, and give up at once when too many of them are
//! committed to another leader for a quorum ever to join.
//!
//! Why: the election only promises that a quorum agreed on me at some moment. A supporter
//! may then join an established leader instead (the out-of-election rule, when a stale
//! answer of a server that used to follow it makes that leader look backed), and a server
//! elected on such support would wait out initLimit·tickTime for followers that never
//! come; ZooKeeper does just that. The simulator found it (seed 36915: server 3 won with
//! server 1's vote; server 1 then followed the incumbent 2; server 3 sat in discovery for
//! initLimit while the ensemble ran without it).
//!
//! The probe is an ordinary notification of my vote in my round, sent as Looking: a
//! Following or Leading server answers it with its own state and vote (as it answers any
//! Looking server), a Looking one treats it as the vote it has already seen.
//!
//! Invariants:
//! - Giving up discovery is always safe: nothing was proposed, no epoch established (once a
//!   quorum acked the epoch, the canvass stops).
//! - A voter counts as lost only on its newest word: per sender, a later round wins, and in
//!   one round a decision (Following/Leading) comes after the Looking vote it replaces, so
//!   a reordered stale notification cannot make a joining supporter look lost.

use std::collections::BTreeMap;

use crate::peer::{Notification, PeerState};
use crate::proto::{Millis, ServerId};

use super::{Action, ZabConfig};

#[derive(Debug)]
pub(super) struct Canvass {
    /// Per voter, its newest word: (round, decided), and whether it is committed to
    /// another leader.
    heard: BTreeMap<ServerId, ((u64, bool), bool)>,
    next_probe: Millis,
}

impl Canvass {
    /// Starts with a probe at once (the first tick).
    pub fn new(now: Millis) -> Canvass {
        Canvass { heard: BTreeMap::new(), next_probe: now }
    }

    pub fn deadline(&self) -> Millis {
        self.next_probe
    }

    /// When due: ask each voter that has not joined (`joined`) where it stands.
    pub fn probe(
        &mut self,
        cfg: &ZabConfig,
        now: Millis,
        mine: &Notification,
        joined: impl Fn(ServerId) -> bool,
        out: &mut Vec<Action>,
    ) {
        if now < self.next_probe {
            return;
        }
        // As often as a Looking server resends its vote.
        self.next_probe = now + cfg.tick_ms.min(cfg.finalize_wait_ms.max(1));
        let msg = Notification { state: PeerState::Looking, ..mine.clone() };
        for to in cfg.all_voters().filter(|v| *v != cfg.me && !joined(*v)) {
            out.push(Action::SendElection { to, msg: msg.clone() });
        }
    }

    /// A notification while in discovery. Returns whether a quorum can still join me.
    pub fn hear(&mut self, cfg: &ZabConfig, n: &Notification) -> bool {
        if n.sender != cfg.me && cfg.is_voter(n.sender) {
            let decided = n.state != PeerState::Looking;
            let key = (n.round, decided);
            let elsewhere = decided && n.vote.leader != cfg.me;
            match self.heard.get(&n.sender) {
                Some((seen, _)) if *seen > key => {}
                _ => {
                    self.heard.insert(n.sender, (key, elsewhere));
                }
            }
        }
        self.possible(cfg)
    }

    fn possible(&self, cfg: &ZabConfig) -> bool {
        cfg.is_quorum(|id| !self.heard.get(&id).is_some_and(|(_, elsewhere)| *elsewhere))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Vote;
    use crate::proto::Zxid;

    fn cfg(me: u64, n: u64) -> ZabConfig {
        ZabConfig::for_test(me, n, 10)
    }

    fn note(from: u64, state: PeerState, leader: u64, round: u64) -> Notification {
        Notification { sender: ServerId(from), state, vote: Vote { leader: ServerId(leader), zxid: Zxid::ZERO, epoch: 1 }, round, config: None }
    }

    /// Seed 36915's shape: my supporter now follows the incumbent, who leads.
    #[test]
    fn gives_up_when_a_quorum_is_committed_elsewhere() {
        let c = cfg(3, 3);
        let mut cv = Canvass::new(0);
        assert!(cv.hear(&c, &note(2, PeerState::Leading, 2, 1)), "one lost voter of three leaves a quorum");
        assert!(!cv.hear(&c, &note(1, PeerState::Following, 2, 2)), "two lost: no quorum can join");
    }

    #[test]
    fn a_stale_word_does_not_override_a_newer_one() {
        let c = cfg(3, 3);
        let mut cv = Canvass::new(0);
        cv.hear(&c, &note(2, PeerState::Leading, 2, 1));
        // Server 1 decided for me in round 3; its old Following of 2 (round 2) arrives late.
        assert!(cv.hear(&c, &note(1, PeerState::Following, 3, 3)));
        assert!(cv.hear(&c, &note(1, PeerState::Following, 2, 2)), "an older round is ignored");
        // In one round the decision outranks the Looking vote it replaced.
        assert!(cv.hear(&c, &note(1, PeerState::Looking, 3, 3)));
    }

    #[test]
    fn probes_only_voters_that_have_not_joined() {
        let c = cfg(1, 5);
        let mut cv = Canvass::new(0);
        let mine = note(1, PeerState::Leading, 1, 4);
        let mut out = vec![];
        cv.probe(&c, 0, &mine, |v| v == ServerId(2), &mut out);
        let to: Vec<u64> = out
            .iter()
            .map(|a| match a {
                Action::SendElection { to, msg } => {
                    assert_eq!(msg.state, PeerState::Looking);
                    to.0
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(to, vec![3, 4, 5]);
        out.clear();
        cv.probe(&c, 10, &mine, |_| false, &mut out);
        assert!(out.is_empty(), "not due before the resend interval");
    }
}

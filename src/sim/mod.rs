//! A deterministic simulator of whole arbor ensembles: N replica cores (`replica::Replica`,
//! the same code the server runs) and M ZooKeeper clients (`client::session::Session`, the
//! real wire protocol) over a simulated network, disk and clocks, all driven by one seeded
//! RNG, so a seed replays exactly: `arbor-sim --seed N` (add `--trace` for every event).
//!
//! What is simulated, and how it follows what the real transport and disk can do:
//! - election messages travel one by one: delayed, reordered, dropped or duplicated;
//! - quorum and client connections are FIFO streams that never lose one message; they break
//!   as a whole (crash, close, partition), loudly (both ends hear of it) or silently (a
//!   pulled cable, a SIGSTOP: only timers notice); connecting across a partition fails;
//! - the disk: appends are durable only after an fsync some ms later; a crash loses the
//!   unsynced tail except a random prefix of it (what the kernel happened to write); epochs
//!   are durable at once (the real storage writes them synchronously);
//! - clocks: each server's monotonic clock runs at its own rate (±2 %) from its own offset;
//!   wall clocks are skewed by up to seconds and jump;
//! - pauses: a paused server (SIGSTOP) handles nothing until it resumes, then everything;
//! - power losses: now and then a crash takes every server at once, each keeping its own
//!   random part of its unsynced tail (the one fault that can take a txn from a whole
//!   quorum's logs: it shows an ack or a commit that ran ahead of an fsync).
//!
//! The clients (`client`) run a random workload over a few znodes: create / setData with
//! versions / delete / getData on `/k*`; getData, exists and getChildren of `/` with a
//! watch; ephemeral creates on `/e*`; multi (a version check and one or two writes on
//! distinct paths, atomic); sync followed by a read of the synced path; and now and then
//! closing the session. They reconnect to other servers (resuming the session, re-arming
//! watches with setWatches), and a fault sends one away past its session timeout, so
//! sessions expire (and their ephemerals go) in many seeds.
//!
//! Checked during and after each run (`check`): at most one serving leader per epoch; every
//! server applies one common sequence of committed txns (no divergence, zxids increasing);
//! once the faults heal, a leader serves with every server following within a bound far
//! below initLimit·tickTime; every acknowledged write is in the committed history; every
//! server's tree ends equal, and equal to where the committed txns lead; no ephemeral
//! outlives its session, and none of an expired or closed session is left on any server.
//! The clients' history is checked twice. Against the committed order (`model_check`):
//! writes linearizable, reads sequentially consistent per session, a multi one atomic txn
//! (all or nothing; a failed one fails for a reason the state gives), ephemerals owned by
//! their session and deleted with it, a sync (and the read after it) seeing everything
//! committed before it was issued. By the black-box linearizability checker (`lincheck`,
//! the `/k*` paths, a multi as its writes). And the watches (`watch_check`, ZooKeeper's
//! guarantees): each registration fires at most once, for the first txn that changed the
//! path after it registered and with that txn's event type, and the session sees the
//! notification before any reply (a ping's included) that reflects that txn; after a
//! reconnect (setWatches may legitimately lose an exists watch or report a later change),
//! only "at most once" and "for some change after the registration". Since idle clients
//! ping at the end, a registered watch whose path changed does fire on a connection that
//! stayed up.

pub mod check;
mod client;
mod node;
mod world;

pub use world::{run, Failure, Outcome, SimConfig, STALE_CONFIG_GAP};

#[cfg(test)]
mod tests {
    use super::{run, SimConfig};
    use crate::planted::Planted;

    /// 500 seeds of 3-server histories with faults (crashes with a partly lost unsynced
    /// tail, partitions, one-way cuts, pauses, lossy elections, clock jumps, silent breaks).
    #[test]
    fn five_hundred_seeds_keep_every_invariant() {
        let cfg = SimConfig::default();
        let mut ops = 0;
        for seed in 0..500 {
            match run(seed, &cfg) {
                Ok(o) => ops += o.ops,
                Err(f) => panic!("{f}"),
            }
        }
        assert!(ops > 50_000, "the clients did too little: {ops} ops in 500 seeds");
    }

    /// Five servers, MB-sized values now and then (frames and SNAPs of realistic size).
    #[test]
    fn five_servers_with_large_values() {
        let cfg = SimConfig { servers: 5, clients: 6, big_value: Some(1 << 20), ..SimConfig::default() };
        for seed in 0..20 {
            if let Err(f) = run(seed, &cfg) {
                panic!("{f}");
            }
        }
    }

    /// Issue 10, "proof that it can fail": each known bug, planted in every server, fails a
    /// seed of the default range under the default configuration; a check that never fails
    /// proves nothing. (lost-watch is left to the watch workload of the clients.) The first
    /// catching seeds and checks are listed in the README's "Simulation" section.
    #[test]
    fn planted_bugs_are_caught() {
        for name in ["commit-before-quorum", "election-ignores-zxid", "apply-before-fsync", "reply-before-commit"] {
            let cfg = SimConfig { planted: Planted::one(name).expect("a known bug"), ..SimConfig::default() };
            match (0..500).find_map(|seed| run(seed, &cfg).err()) {
                Some(f) => eprintln!("{name}: caught by seed {}: {}", f.seed, f.reason),
                None => panic!("{name} planted, and 500 seeds passed every check"),
            }
        }
    }

    /// A server that drops every 5th watch notification (`Planted::lost_watch`) is caught:
    /// a session that stayed on one connection sees a reply reflecting the change with no
    /// notification before it.
    #[test]
    fn planted_lost_watch_is_caught() {
        let cfg = SimConfig { planted: crate::planted::Planted { lost_watch: true, ..Default::default() }, ..SimConfig::default() };
        let caught = (0..500).find_map(|seed| run(seed, &cfg).err());
        let f = caught.expect("no seed in 0..500 caught a lost watch notification");
        assert!(f.reason.contains("watch"), "seed {} failed for another reason: {}", f.seed, f.reason);
    }

    /// 300 seeds of reconfig runs (`SimConfig::reconfig`: two spare servers; a superuser
    /// client adds voters and observers, removes voters, the leader too, and observers,
    /// during crashes, power losses, partitions and pauses). Every check holds in every
    /// seed, liveness after healing included: one leader per epoch, one committed sequence,
    /// acknowledged writes and reconfigs committed, every server that applies a reconfig
    /// takes that config (or holds a newer one), no config version going down within a life,
    /// equal trees and histories of the final members, and every final member serving under
    /// one leader with the final config (before election messages carried the committed
    /// membership, members that missed a reconfig never learnt it: about 6 % of seeds).
    #[test]
    fn three_hundred_reconfig_seeds_keep_every_invariant() {
        let cfg = SimConfig { reconfig: true, ..SimConfig::default() };
        let (mut acked, mut configs) = (0, 0);
        for seed in 0..300 {
            match run(seed, &cfg) {
                Ok(o) => {
                    acked += o.model.reconfigs_acked;
                    configs += o.configs;
                }
                Err(f) => panic!("{f}"),
            }
        }
        assert!(acked > 500 && configs > 500, "the reconfig client did too little: {acked} acknowledged, {configs} committed");
    }

    /// Reconfig seeds that failed once and now pass every check: 125 was arbor's: a server
    /// readied to join (its config the current one plus itself) applied an older reconfig
    /// from its DIFF, became a non-member and left its leader for good (the service now
    /// keeps a config as new as a reconfig it applies, as ZooKeeper does). 115 was arbor's
    /// too: a restart took a logged, uncommitted reconfig as its config and kept it past
    /// the TRUNC that cut it away (fixed on main by the recovery change: replayed changes
    /// stay proposed). 4 was the simulator's: a core's close of a quorum connection dropped
    /// what it had sent before (a removed leader's COMMIT of its own removal); the real
    /// loop writes a closing connection's output out first. 12 (and 213, 229, 1583) were
    /// members that missed a reconfig and never learnt it (votes now carry the committed
    /// membership); 1583 and 177 then took a joiner's own config (the ensemble's plus
    /// itself, under the ensemble's version) from its votes (only a membership known from
    /// a commit is sent, and a joiner records the txn's membership, not the one it holds).
    #[test]
    fn reconfig_seeds_that_failed_once() {
        let cfg = SimConfig { reconfig: true, ..SimConfig::default() };
        for seed in [125, 115, 4, 12, 177, 213, 229, 1583] {
            if let Err(f) = run(seed, &cfg) {
                panic!("{f}");
            }
        }
    }

    /// Seeds that failed before their causes were fixed (kept as regression tests):
    /// 514, 919, 1476 (3 servers) and 22, 30 (5 servers, 1 MB values) were the simulator's
    /// own bug (a paused server's held messages could overtake each other); 1250 was
    /// arbor's: a follower that dialled a server which had meanwhile decided to follow
    /// another waited initLimit (the other server ignored its FollowerInfo; now it closes
    /// the connection and the follower looks again). Their seeds now play other histories,
    /// so they are run under the conditions that found them (power losses came later). 68
    /// and 1895 were arbor's, found by the ephemeral and session workload: a close in flight
    /// did not mark its ephemerals deleted for the requests prepared after it (a create of the
    /// path failed with NodeExists), and a server whose close of a session was lost with its
    /// epoch kept that session closing forever (never expired, ephemerals kept, resumes
    /// refused). 637 was arbor's too: a follower forwarded a create of an ephemeral just after
    /// the leader expired its session, and the leader proposed it (no session check), so the
    /// ephemeral outlived its session on every server. 106199 was arbor's (and is
    /// ZooKeeper's behaviour): a leader that had lost its only follower to a silent break
    /// answered a sync at once, within syncLimit, while a new leader had already committed
    /// more; a leader now confirms itself with a quorum round first (`zab::syncs`). 213172
    /// was arbor's (and ZooKeeper's) election stall: two servers dialled a third as their
    /// leader from its older votes while it kept looking in a later round, and they waited
    /// initLimit; a Looking server dialled by a quorum now leads. 376 caught the first
    /// version of that fix (the new leader kept answering with its old vote for another).
    #[test]
    fn seeds_that_failed_once() {
        let three = SimConfig { power_loss: 0.0, ..SimConfig::default() };
        let five = SimConfig { servers: 5, clients: 6, big_value: Some(1 << 20), power_loss: 0.0, ..SimConfig::default() };
        // 55978 was the simulator's own: its final check came before the last leader had
        // expired a session that a deposed leader had told its client was expired (found
        // with 1 crash in 10 a power loss).
        let with_power_losses = SimConfig { power_loss: 0.1, ..SimConfig::default() };
        let defaults = SimConfig { power_loss: 0.2, ..SimConfig::default() };
        let seeds = [
            (514, &three),
            (919, &three),
            (1250, &three),
            (1476, &three),
            (22, &five),
            (30, &five),
            (68, &three),
            (1895, &three),
            (637, &three),
            (55978, &with_power_losses),
            (106199, &defaults),
            (213172, &defaults),
            (376, &defaults),
        ];
        for (seed, cfg) in seeds {
            if let Err(f) = run(seed, cfg) {
                panic!("{f}");
            }
        }
    }
}

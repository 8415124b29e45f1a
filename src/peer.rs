//! Server-to-server messages and their framing.
//!
//! Two kinds of peer connection exist, as in ZooKeeper:
//! - the **election** port carries `ElectionMsg` between every pair of servers. Each server
//!   dials every other server's election port and uses the connection it dialled only to
//!   send and the ones it accepted only to receive: no tie-breaking between duplicate
//!   connections is needed, and a restarted server is reachable as soon as it listens.
//! - the **quorum** port carries `QuorumMsg` between the leader and each follower: the
//!   follower dials the leader it elected; both directions use that one connection.
//!
//! Frame = u32 big-endian length + rmp-serde payload. The first frame on any peer connection
//! is a `Hello` naming the dialling server, so the receiver knows who is talking before any
//! protocol message arrives. A frame over `MAX_PEER_FRAME` or that fails to decode closes
//! the connection (the peer reconnects); it never stops the server.

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use crate::proto::{ServerId, SessionId, Zxid};
use crate::txn::Txn;

/// Peer frames carry at most one txn (a client request: jute.maxbuffer) or one snapshot
/// chunk (`SNAP_CHUNK`).
pub const MAX_PEER_FRAME: usize = 64 << 20;
/// Bytes of snapshot file per `SnapChunk`.
pub const SNAP_CHUNK: usize = 1 << 20;

/// Where a server stands, as it tells others in election messages.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

/// A vote: who should lead, and how up to date that server's log is. Votes are ordered by
/// (epoch, zxid, leader id): the most up-to-date log wins, the highest id breaks ties.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    pub leader: ServerId,
    /// Last logged zxid of the proposed leader.
    pub zxid: Zxid,
    /// currentEpoch of the proposed leader.
    pub epoch: u32,
}

impl Vote {
    fn key(&self) -> (u32, Zxid, ServerId) {
        (self.epoch, self.zxid, self.leader)
    }
}

impl PartialOrd for Vote {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Vote {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// `FastLeaderElection.Notification`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub sender: ServerId,
    pub state: PeerState,
    pub vote: Vote,
    /// The sender's election round (logicalclock); meaningful while Looking.
    pub round: u64,
    /// The sender's last committed membership, when a reconfig made it (ZooKeeper's
    /// notification carries its config too): a Looking server that missed the reconfig
    /// adopts it, so it counts in the ensemble that exists (a joiner finds the leader
    /// without a quorum of its own config answering). Filled in by the replica; the core
    /// never looks at it.
    #[serde(default)]
    pub config: Option<ConfigGossip>,
}

/// A committed membership as election messages carry it (`/zookeeper/config`'s text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigGossip {
    pub version: i64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionMsg {
    /// The first frame on a dialled election connection. `election`: the dialler's own
    /// election address (ZooKeeper's initial message carries it too): a server that no
    /// config of the receiver lists yet, joining by reconfig, is answered there.
    Hello {
        from: ServerId,
        #[serde(default)]
        election: Option<std::net::SocketAddr>,
    },
    Notification(Notification),
}

/// Leader ↔ follower messages (`Leader.java`, `Learner.java`, `LearnerHandler.java`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QuorumMsg {
    /// Follower → leader, first frame: who I am, my acceptedEpoch and last logged zxid.
    FollowerInfo { from: ServerId, accepted_epoch: u32, last_zxid: Zxid },
    /// Leader → follower: the new epoch (ZooKeeper's LEADERINFO).
    NewEpoch { epoch: u32 },
    /// Follower → leader: accepted the epoch; my currentEpoch and last zxid.
    AckEpoch { current_epoch: u32, last_zxid: Zxid },
    /// Leader → follower, sync: the txns after your last zxid follow as `Proposal`+`Commit`.
    Diff { last_zxid: Zxid },
    /// Leader → follower, sync: drop every logged txn above `zxid`, then DIFF follows.
    Trunc { zxid: Zxid },
    /// Leader → follower, sync: replace your state with the snapshot at `zxid` (a snapshot
    /// file, `size` bytes), which follows as `SnapChunk`s and one `SnapEnd`. Streamed in
    /// bounded chunks so no frame (and no buffer on either side) holds the whole state.
    SnapBegin { zxid: Zxid, size: u64 },
    SnapChunk {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    SnapEnd,
    /// Leader → follower: a txn to log (during sync and broadcast).
    Proposal(Txn),
    /// Leader → follower: everything up to and including `zxid` is committed.
    Commit { zxid: Zxid },
    /// Leader → follower: end of sync; ACK it once everything sent so far is logged.
    NewLeader { epoch: u32, zxid: Zxid },
    /// Follower → leader: everything up to `zxid` is durable in my log
    /// (for NEWLEADER, `zxid` is the NEWLEADER zxid).
    Ack { zxid: Zxid },
    /// Leader → follower: a quorum is in sync; start serving clients.
    UpToDate,
    /// Leader → follower every tick, and at once to confirm its leadership for a `sync`
    /// (round = the latest confirmation round started); the follower answers with
    /// `PingReply`, echoing the round.
    Ping { zxid: Zxid, round: u64 },
    /// Follower → leader: liveness plus the sessions its clients touched since the last one.
    PingReply { touched: Vec<SessionId>, round: u64 },
    /// Follower → leader: a client request to prepare (raw jute request body, header
    /// included), with the session's authenticated ids. The leader turns it into a txn
    /// (possibly an error txn) and proposes it; the follower replies when it commits.
    Request {
        session: SessionId,
        cxid: i32,
        op: i32,
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        auth: Vec<crate::proto::Id>,
    },
    /// Follower → leader: a client opened a session here; propose CreateSession.
    CreateSession { session: SessionId, timeout_ms: i32 },
    /// Follower → leader: `sync` from a client; the leader answers `SyncDone` after every
    /// commit it sent before.
    Sync { session: SessionId, cxid: i32, path: String },
    SyncDone { session: SessionId, cxid: i32, path: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PeerFrameError {
    #[error("peer frame of {0} bytes exceeds the {MAX_PEER_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("undecodable peer frame: {0}")]
    Decode(String),
}

/// Append one framed message.
pub fn encode<T: Serialize>(out: &mut BytesMut, msg: &T) {
    let start = out.len();
    out.put_u32(0);
    // rmp-serde writing into a Vec-backed writer cannot fail for our types.
    let mut w = out.split_off(start + 4).writer();
    if let Err(e) = rmp_serde::encode::write(&mut w, msg) {
        // Programmer error: every message type is serializable.
        panic!("peer message does not serialize: {e}");
    }
    let body = w.into_inner();
    let len = body.len() as u32;
    out.unsplit(body);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Take one complete message off the front of `buf`, if there is one.
pub fn decode<T: for<'de> Deserialize<'de>>(buf: &mut BytesMut) -> Result<Option<T>, PeerFrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_PEER_FRAME {
        return Err(PeerFrameError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    let body = buf.split_to(len);
    rmp_serde::from_slice(&body).map(Some).map_err(|e| PeerFrameError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_order_is_epoch_then_zxid_then_id() {
        let v = |e, z, id| Vote { leader: ServerId(id), zxid: Zxid(z), epoch: e };
        assert!(v(2, 0, 1) > v(1, 100, 3));
        assert!(v(1, 5, 1) > v(1, 4, 3));
        assert!(v(1, 5, 3) > v(1, 5, 2));
    }

    #[test]
    fn frames_round_trip_and_split() {
        let mut buf = BytesMut::new();
        let a = QuorumMsg::Ack { zxid: Zxid(7) };
        let b = QuorumMsg::FollowerInfo { from: ServerId(2), accepted_epoch: 3, last_zxid: Zxid(9) };
        encode(&mut buf, &a);
        encode(&mut buf, &b);
        let mut partial = buf.split_to(3);
        assert!(decode::<QuorumMsg>(&mut partial).unwrap().is_none());
        partial.unsplit(buf);
        assert_eq!(decode::<QuorumMsg>(&mut partial).unwrap(), Some(a));
        assert_eq!(decode::<QuorumMsg>(&mut partial).unwrap(), Some(b));
        assert_eq!(decode::<QuorumMsg>(&mut partial).unwrap(), None);
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(decode::<QuorumMsg>(&mut buf), Err(PeerFrameError::TooLarge(_))));
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1][..]);
        assert!(matches!(decode::<QuorumMsg>(&mut buf), Err(PeerFrameError::Decode(_))));
    }
}

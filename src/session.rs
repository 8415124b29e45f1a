//! The session table: live sessions, their negotiated timeouts and expiry deadlines
//! (`SessionTrackerImpl.java`). Sans-IO: callers pass the monotonic time.
//!
//! Sessions enter the table when a `CreateSession` txn is applied and leave when a
//! `CloseSession` txn is applied, so every server (and every replay of the log) has the
//! same table. Deadlines are local: the server that owns expiry (standalone or leader)
//! touches a session on every request or ping and expires it after `timeout_ms` of silence.
//!
//! Invariant: `by_deadline` holds exactly one entry per session that is not `closing`.

use std::collections::{BTreeSet, HashMap};

use sha1::{Digest, Sha1};

use crate::proto::{Millis, ServerId, SessionId};

#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    pub timeout_ms: i32,
    /// Monotonic deadline; meaningless once `closing`.
    pub deadline_ms: Millis,
    /// Expiry or close is under way (its CloseSession txn is pending).
    pub closing: bool,
}

#[derive(Debug)]
pub struct SessionTable {
    sessions: HashMap<SessionId, Session>,
    by_deadline: BTreeSet<(Millis, SessionId)>,
    next_id: i64,
}

/// The session password: derived from the id so that any server (and a restarted one) can
/// check it without storing it (ZooKeeper seeds a PRNG with `id ^ superSecret` likewise).
pub fn password(id: SessionId) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(b"arbor session secret v1");
    h.update(id.0.to_be_bytes());
    let d = h.finalize();
    let mut p = [0u8; 16];
    p.copy_from_slice(&d[..16]);
    p
}

impl SessionTable {
    /// `now_wall_ms` seeds the id counter (`SessionTrackerImpl.initializeNextSessionId`):
    /// ids from one server never repeat across restarts, and the top byte names the server.
    pub fn new(server: ServerId, now_wall_ms: i64) -> SessionTable {
        let base = ((now_wall_ms << 24) as u64 >> 8) as i64;
        let next_id = base | ((server.0 as i64) << 56);
        SessionTable { sessions: HashMap::new(), by_deadline: BTreeSet::new(), next_id }
    }

    pub fn next_session_id(&mut self) -> SessionId {
        let id = SessionId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Make sure fresh ids stay above ids already seen (after a restart or a snapshot).
    pub fn observe_id(&mut self, id: SessionId) {
        if (id.0 >> 56) == (self.next_id >> 56) && id.0 >= self.next_id {
            self.next_id = id.0 + 1;
        }
    }

    pub fn add(&mut self, id: SessionId, timeout_ms: i32, now: Millis) {
        if let Some(old) = self.sessions.remove(&id) {
            self.by_deadline.remove(&(old.deadline_ms, id));
        }
        let deadline_ms = now + timeout_ms as Millis;
        self.sessions.insert(id, Session { id, timeout_ms, deadline_ms, closing: false });
        self.by_deadline.insert((deadline_ms, id));
        self.observe_id(id);
    }

    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        self.by_deadline.remove(&(s.deadline_ms, id));
        Some(s)
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Whether the session exists and is not being closed.
    pub fn is_live(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Push the deadline out by the session's timeout. False if unknown or closing.
    pub fn touch(&mut self, id: SessionId, now: Millis) -> bool {
        let Some(s) = self.sessions.get_mut(&id) else { return false };
        if s.closing {
            return false;
        }
        let new_deadline = now + s.timeout_ms as Millis;
        if new_deadline != s.deadline_ms {
            self.by_deadline.remove(&(s.deadline_ms, id));
            s.deadline_ms = new_deadline;
            self.by_deadline.insert((new_deadline, id));
        }
        true
    }

    /// Give every live session a full timeout from `now` (a new leader takes over expiry
    /// without knowing when clients of other servers were last heard from).
    pub fn touch_all(&mut self, now: Millis) {
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.touch(id, now);
        }
    }

    /// The CloseSession txns this server issued or forwarded are gone with its role (a
    /// new epoch drops what it had in flight; one that did commit removes its session when
    /// applied): sessions marked closing are live again, with a full timeout from `now`.
    /// Else a session whose close was lost stayed closing for good on this server: never
    /// expired once it led, its ephemerals kept forever, and every resume answered with
    /// "expired" (found by the simulator, seed 1895).
    pub fn reopen_closing(&mut self, now: Millis) {
        for s in self.sessions.values_mut().filter(|s| s.closing) {
            s.closing = false;
            s.deadline_ms = now + s.timeout_ms as Millis;
            self.by_deadline.insert((s.deadline_ms, s.id));
        }
    }

    /// Mark a session as closing (its CloseSession txn is being issued).
    pub fn set_closing(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if !s.closing {
                s.closing = true;
                self.by_deadline.remove(&(s.deadline_ms, id));
            }
        }
    }

    /// Sessions whose deadline has passed; they are marked closing.
    pub fn expired(&mut self, now: Millis) -> Vec<SessionId> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            if let Some(s) = self.sessions.get_mut(&id) {
                s.closing = true;
            }
            out.push(id);
        }
        out
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.by_deadline.first().map(|(d, _)| *d)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions in id order (deterministic, for snapshots and `dump`).
    pub fn iter_sorted(&self) -> Vec<&Session> {
        let mut v: Vec<&Session> = self.sessions.values().collect();
        v.sort_by_key(|s| s.id);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_server_id_and_increase() {
        let mut t = SessionTable::new(ServerId(3), 1_700_000_000_000);
        let a = t.next_session_id();
        let b = t.next_session_id();
        assert_eq!(a.0 >> 56, 3);
        assert!(b.0 > a.0);
        assert_ne!(password(a), password(b));
        assert_eq!(password(a), password(a));
    }

    #[test]
    fn expiry_and_touch() {
        let mut t = SessionTable::new(ServerId(1), 0);
        let id = t.next_session_id();
        t.add(id, 4000, 1000);
        assert_eq!(t.next_deadline(), Some(5000));
        assert!(t.expired(4999).is_empty());
        assert!(t.touch(id, 3000));
        assert!(t.expired(6999).is_empty());
        assert_eq!(t.expired(7000), vec![id]);
        assert!(!t.is_live(id));
        assert!(!t.touch(id, 8000));
        assert!(t.remove(id).is_some());
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn a_lost_close_leaves_the_session_live_again() {
        let mut t = SessionTable::new(ServerId(1), 0);
        let id = t.next_session_id();
        t.add(id, 4000, 1000);
        t.set_closing(id);
        assert!(!t.is_live(id));
        t.reopen_closing(2000);
        assert!(t.is_live(id));
        assert_eq!(t.next_deadline(), Some(6000));
        assert_eq!(t.expired(6000), vec![id]);
    }
}

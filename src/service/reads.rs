//! Reads and watch management, answered from the local tree at once
//! (`FinalRequestProcessor`'s read branches): exists, getData, getChildren(2), getACL,
//! getEphemerals, getAllChildrenNumber, whoAmI, multiRead, setWatches, addWatch,
//! removeWatches/checkWatches. A read of a session with writes in flight waits for them
//! (`writes`), so it sees them.

use crate::acl;
use crate::jute::{MultiReadOp, MultiResult, Request, Response};
use crate::prep;
use crate::proto::{perms, ErrorCode, Id, SessionId, WatchKind};
use crate::watch::{WatcherId, WatcherType};

use super::{ClientId, Outbox, Service};

/// Requests `readlatency` counts (they answer from the local tree).
pub(super) fn is_read(op: i32) -> bool {
    use crate::proto::OpCode::*;
    matches!(
        crate::proto::OpCode::from_i32(op),
        Some(Exists | GetData | GetAcl | GetChildren | GetChildren2 | MultiRead | GetEphemerals | GetAllChildrenNumber)
    )
}

impl Service {
    /// Reads and watch management: answered from the local tree.
    pub(super) fn read(&mut self, client: ClientId, session: SessionId, auth: &[Id], req: Request, out: &mut dyn Outbox) -> (ErrorCode, Response) {
        let watcher = WatcherId(client.0);
        let r: Result<Response, ErrorCode> = (|| match req {
            Request::Exists { path, watch } => {
                // ZooKeeper rejects only a NUL here; other malformed paths are just absent.
                if path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                match self.tree.lookup(&path) {
                    Some(id) => {
                        if watch {
                            self.watches.add(watcher, &path, WatchKind::Data);
                        }
                        Ok(Response::Stat(self.tree.stat(id)))
                    }
                    None => {
                        // An exists watch on a missing node waits for its creation.
                        if watch {
                            self.watches.add(watcher, &path, WatchKind::Data);
                        }
                        Err(ErrorCode::NoNode)
                    }
                }
            }
            Request::GetData { path, watch } => {
                let id = self.readable(&path, auth)?;
                if watch {
                    self.watches.add(watcher, &path, WatchKind::Data);
                }
                Ok(Response::GetData { data: self.tree.data_opt(id).map(<[u8]>::to_vec), stat: self.tree.stat(id) })
            }
            Request::GetChildren { path, watch } => {
                let id = self.readable(&path, auth)?;
                if watch {
                    self.watches.add(watcher, &path, WatchKind::Child);
                }
                Ok(Response::GetChildren { children: self.tree.children(id) })
            }
            Request::GetChildren2 { path, watch } => {
                let id = self.readable(&path, auth)?;
                if watch {
                    self.watches.add(watcher, &path, WatchKind::Child);
                }
                Ok(Response::GetChildren2 { children: self.tree.children(id), stat: self.tree.stat(id) })
            }
            Request::GetAcl { path } => {
                prep::validate_path(&path, false)?;
                let id = self.tree.lookup(&path).ok_or(ErrorCode::NoNode)?;
                let node_acl = self.tree.acl(id);
                if !acl::check(node_acl, perms::READ | perms::ADMIN, auth) {
                    return Err(ErrorCode::NoAuth);
                }
                let mut list = node_acl.to_vec();
                // Without ADMIN, digest hashes are masked (ZOOKEEPER-1392).
                if !acl::check(node_acl, perms::ADMIN, auth) {
                    for a in list.iter_mut().filter(|a| a.id.scheme == "digest") {
                        if let Some((user, _)) = a.id.id.split_once(':') {
                            a.id.id = format!("{user}:x");
                        }
                    }
                }
                Ok(Response::GetAcl { acl: list, stat: self.tree.stat(id) })
            }
            Request::Sync { path } => Ok(Response::Sync { path }),
            Request::GetEphemerals { prefix_path } => {
                let mut paths = self.tree.ephemerals(session);
                if !(prefix_path.is_empty() || prefix_path == "/") {
                    paths.retain(|p| p.starts_with(&prefix_path));
                }
                Ok(Response::GetEphemerals { paths })
            }
            Request::GetAllChildrenNumber { path } => {
                let id = self.readable(&path, auth)?;
                Ok(Response::AllChildrenNumber(self.tree.descendant_count(id) as i32))
            }
            Request::WhoAmI => {
                let mut v: Vec<(String, String)> = auth
                    .iter()
                    .filter(|i| i.scheme != "ip")
                    .chain(auth.iter().filter(|i| i.scheme == "ip"))
                    .map(|i| {
                        let user = if i.scheme == "digest" { i.id.split(':').next().unwrap_or("").to_string() } else { i.id.clone() };
                        (i.scheme.clone(), user)
                    })
                    .collect();
                v.dedup();
                Ok(Response::WhoAmI(v))
            }
            Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    let r = match op {
                        MultiReadOp::GetChildren { path } => self
                            .readable(&path, auth)
                            .map(|id| MultiResult::GetChildren { children: self.tree.children(id) }),
                        MultiReadOp::GetData { path } => self
                            .readable(&path, auth)
                            .map(|id| MultiResult::GetData { data: self.tree.data_opt(id).map(<[u8]>::to_vec), stat: self.tree.stat(id) }),
                    };
                    results.push(r.unwrap_or_else(|e| MultiResult::Error(e.code())));
                }
                Ok(Response::Multi(results))
            }
            Request::SetWatches { relative_zxid, data, exist, child, persistent, persistent_recursive } => {
                let mut fired = Vec::new();
                for p in data {
                    match self.tree.lookup(&p) {
                        None => fired.push((crate::proto::EventType::NodeDeleted, p)),
                        Some(id) if self.tree.stat(id).mzxid > relative_zxid => fired.push((crate::proto::EventType::NodeDataChanged, p)),
                        Some(_) => self.watches.add(watcher, &p, WatchKind::Data),
                    }
                }
                for p in exist {
                    match self.tree.lookup(&p) {
                        Some(_) => fired.push((crate::proto::EventType::NodeCreated, p)),
                        None => self.watches.add(watcher, &p, WatchKind::Data),
                    }
                }
                for p in child {
                    match self.tree.lookup(&p) {
                        None => fired.push((crate::proto::EventType::NodeDeleted, p)),
                        Some(id) if self.tree.stat(id).pzxid > relative_zxid => {
                            fired.push((crate::proto::EventType::NodeChildrenChanged, p))
                        }
                        Some(_) => self.watches.add(watcher, &p, WatchKind::Child),
                    }
                }
                for p in persistent {
                    self.watches.add(watcher, &p, WatchKind::Persistent);
                }
                for p in persistent_recursive {
                    self.watches.add(watcher, &p, WatchKind::PersistentRecursive);
                }
                for (event, path) in fired {
                    self.notify(client, event, &path, out);
                }
                Ok(Response::Empty)
            }
            // ZooKeeper 3.8 takes any path here (a watch on a malformed one never fires) and
            // answers an unknown mode (or watcher type below) with MarshallingError: the
            // IllegalArgumentException of its enum conversion lands in the catch-all.
            Request::AddWatch { path, mode } => {
                let kind = match mode {
                    0 => WatchKind::Persistent,
                    1 => WatchKind::PersistentRecursive,
                    _ => return Err(ErrorCode::MarshallingError),
                };
                self.watches.add(watcher, &path, kind);
                Ok(Response::AddWatch)
            }
            Request::RemoveWatches { path, watch_type } => {
                let t = WatcherType::from_i32(watch_type).ok_or(ErrorCode::MarshallingError)?;
                if self.watches.remove(watcher, &path, t) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::CheckWatches { path, watch_type } => {
                let t = WatcherType::from_i32(watch_type).ok_or(ErrorCode::MarshallingError)?;
                if self.watches.contains(watcher, &path, t) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::Unimplemented(_) => Err(ErrorCode::Unimplemented),
            // Writes, ping, auth and close are dispatched before reaching here.
            _ => Err(ErrorCode::Unimplemented),
        })();
        match r {
            Ok(resp) => (ErrorCode::Ok, resp),
            Err(e) => (e, Response::Empty),
        }
    }

    /// Look up a node the session may READ.
    /// Reads do not validate the path (ZooKeeper 3.8 answers NoNode for a malformed one:
    /// no node can have such a path).
    pub(super) fn readable(&self, path: &str, auth: &[Id]) -> Result<crate::tree::NodeId, ErrorCode> {
        let id = self.tree.lookup(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(self.tree.acl(id), perms::READ, auth) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use crate::jute::{Request, Response, WatcherEvent};
    use crate::proto::{perms, Acl, ErrorCode, EventType, Id, KeeperState};
    use crate::service::testkit::{create, get, set, Frame, Harness, MAX_TIMEOUT_MS};

    fn event(kind: EventType, path: &str) -> Frame {
        Frame::Event(WatcherEvent { event_type: kind.code(), state: KeeperState::SyncConnected.code(), path: path.into() })
    }

    #[test]
    fn get_data_answers_the_data_and_its_stat() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        let (made, _) = h.call(c, &create("/a", b"hello"));
        let (hdr, resp) = h.call(c, &get("/a", false));
        let Response::GetData { data, stat } = resp else { panic!("{resp:?}") };
        assert_eq!((hdr.err, data.as_deref()), (0, Some(&b"hello"[..])));
        assert_eq!((stat.czxid, stat.version, stat.data_length, stat.num_children), (made.zxid, 0, 5, 0));
        let (hdr, _) = h.call(c, &get("/missing", false));
        assert_eq!(hdr.err, ErrorCode::NoNode.code());
    }

    #[test]
    fn a_data_watch_fires_once_before_the_reply_to_the_write() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        h.call(c, &create("/a", b""));
        h.call(c, &get("/a", true));
        let xid = h.send(c, &set("/a", b"1", -1));
        let got = h.frames(c);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], event(EventType::NodeDataChanged, "/a"), "the notification comes first");
        assert!(matches!(&got[1], Frame::Reply(hdr, _) if hdr.xid == xid));
        h.send(c, &set("/a", b"2", -1));
        let got = h.frames(c);
        assert_eq!(got.len(), 1, "a one-shot watch fired already: {got:?}");
    }

    #[test]
    fn an_exists_watch_on_a_missing_node_fires_on_its_creation() {
        let mut h = Harness::standalone();
        let (watcher, _) = h.connect(MAX_TIMEOUT_MS);
        let (writer, _) = h.connect(MAX_TIMEOUT_MS);
        let (hdr, _) = h.call(watcher, &Request::Exists { path: "/x".into(), watch: true });
        assert_eq!(hdr.err, ErrorCode::NoNode.code());
        h.call(writer, &create("/x", b""));
        assert_eq!(h.frames(watcher), vec![event(EventType::NodeCreated, "/x")]);
        assert!(h.frames(writer).is_empty(), "only the watcher hears of it");
    }

    #[test]
    fn a_watch_dies_with_its_connection() {
        let mut h = Harness::standalone();
        let (watcher, _) = h.connect(MAX_TIMEOUT_MS);
        let (writer, _) = h.connect(MAX_TIMEOUT_MS);
        h.call(writer, &create("/a", b""));
        h.call(watcher, &get("/a", true));
        assert_eq!(h.svc.watches().watch_count(), 1);
        h.svc.client_disconnected(watcher);
        assert_eq!(h.svc.watches().watch_count(), 0);
    }

    #[test]
    fn reading_needs_the_read_permission() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        let Request::Create(mut r) = create("/secret", b"s") else { unreachable!() };
        r.acl = vec![Acl { perms: perms::WRITE, id: Id::new("world", "anyone") }];
        assert_eq!(h.call(c, &Request::Create(r)).0.err, 0);
        assert_eq!(h.call(c, &get("/secret", false)).0.err, ErrorCode::NoAuth.code());
        let (hdr, resp) = h.call(c, &Request::Exists { path: "/secret".into(), watch: false });
        assert!(hdr.err == 0 && matches!(resp, Response::Stat(_)), "exists needs no permission");
    }

    #[test]
    fn get_children_lists_the_children() {
        let mut h = Harness::standalone();
        let (c, _) = h.connect(MAX_TIMEOUT_MS);
        h.call(c, &create("/p", b""));
        h.call(c, &create("/p/b", b""));
        h.call(c, &create("/p/a", b""));
        let (_, resp) = h.call(c, &Request::GetChildren2 { path: "/p".into(), watch: false });
        let Response::GetChildren2 { mut children, stat } = resp else { panic!("{resp:?}") };
        children.sort();
        assert_eq!((children, stat.num_children, stat.cversion), (vec!["a".to_string(), "b".to_string()], 2, 2));
    }
}

//! Request preparation (`PrepRequestProcessor.java`): turns a client write into a `Txn`,
//! checking path syntax, existence, versions, ACLs and node types against the current state
//! and fixing every value that must be identical on every server (final path with its
//! sequential suffix, new versions, the parent's new cversion, ephemeral owner).
//!
//! A failing request becomes `TxnOp::Error` (ZooKeeper logs those too); a failing multi
//! becomes a `Multi` of `Error`s: 0 for the ops before the failure, the failure's code, then
//! RuntimeInconsistency for the rest.
//!
//! The checks read through an `Overlay`: the tree plus the effects of ops prepared but not
//! yet applied (within one multi today; the ensemble leader keeps one across proposals).

use std::collections::{HashMap, VecDeque};

use crate::acl;
use crate::jute::{CreateKind, CreateRequest, MultiOp};
use crate::proto::{perms, Acl, CreateMode, ErrorCode, Id, SessionId, Zxid, CONTAINER_OWNER, TTL_MASK, TTL_MAX_MS};
use crate::tree::DataTree;
use crate::txn::{Txn, TxnHeader, TxnOp};

/// What preparation needs to know about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub version: i32,
    pub aversion: i32,
    /// Stored cversion: the count of child creations (the sequential suffix source).
    pub cversion: i32,
    pub num_children: u32,
    pub ephemeral_owner: i64,
    pub acl: Vec<Acl>,
}

/// Changes of txns prepared but not yet applied to the tree (the ensemble leader's
/// proposals in flight; ZooKeeper's `outstandingChanges`). Each entry is tagged with the
/// zxid of the txn that made it, and dropped once the tree has applied that txn.
#[derive(Default, Debug)]
pub struct Pending {
    changes: HashMap<String, (Zxid, Option<NodeInfo>)>,
    /// The paths of `changes` in the order they were recorded (zxid order), so that
    /// dropping what the tree applied costs O(dropped), not a scan of every change.
    order: VecDeque<(Zxid, String)>,
}

impl Pending {
    /// The tree has applied everything up to `zxid`.
    pub fn applied(&mut self, zxid: Zxid) {
        while self.order.front().is_some_and(|(z, _)| *z <= zxid) {
            let Some((z, path)) = self.order.pop_front() else { break };
            // A later txn in flight may have changed the path again: its entry stays.
            if self.changes.get(&path).is_some_and(|(cz, _)| *cz == z) {
                self.changes.remove(&path);
            }
        }
    }
    /// The changes of a txn just proposed with `zxid`.
    pub fn record(&mut self, changes: Changes, zxid: Zxid) {
        for (path, info) in changes.0 {
            self.order.push_back((zxid, path.clone()));
            self.changes.insert(path, (zxid, info));
        }
    }
    /// Forget everything (the leader lost leadership: its proposals are gone).
    pub fn clear(&mut self) {
        self.changes.clear();
        self.order.clear();
    }
    pub fn len(&self) -> usize {
        self.changes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The effects of one prepared request, keyed by path (`None` = deleted).
pub struct Changes(HashMap<String, Option<NodeInfo>>);

/// The tree seen through not-yet-applied changes: those of earlier txns still in flight
/// (`Pending`) and those of the ops of the request being prepared.
pub struct Overlay<'a> {
    tree: &'a DataTree,
    pending: Option<&'a Pending>,
    changes: HashMap<String, Option<NodeInfo>>,
}

impl<'a> Overlay<'a> {
    pub fn new(tree: &'a DataTree) -> Overlay<'a> {
        Overlay { tree, pending: None, changes: HashMap::new() }
    }

    pub fn with_pending(tree: &'a DataTree, pending: &'a Pending) -> Overlay<'a> {
        Overlay { tree, pending: Some(pending), changes: HashMap::new() }
    }

    /// This request's changes, to record as in flight (`Pending::record`) when the prepared
    /// txn is really proposed.
    pub fn into_changes(self) -> Changes {
        Changes(self.changes)
    }

    pub fn get(&self, path: &str) -> Option<NodeInfo> {
        if let Some(c) = self.changes.get(path) {
            return c.clone();
        }
        if let Some((_, c)) = self.pending.and_then(|p| p.changes.get(path)) {
            return c.clone();
        }
        let id = self.tree.lookup(path)?;
        Some(NodeInfo {
            version: self.tree.version(id),
            aversion: self.tree.aversion(id),
            cversion: self.tree.stored_cversion(id),
            num_children: self.tree.num_children(id),
            ephemeral_owner: self.tree.raw_ephemeral_owner(id),
            acl: self.tree.acl(id).to_vec(),
        })
    }

    fn set(&mut self, path: &str, info: Option<NodeInfo>) {
        self.changes.insert(path.to_string(), info);
    }
}

/// Who is asking, and the zxid and time the txn will carry.
pub struct Context<'a> {
    pub session: SessionId,
    pub cxid: i32,
    pub auth: &'a [Id],
    pub zxid: Zxid,
    pub time_ms: i64,
}

impl Context<'_> {
    fn header(&self) -> TxnHeader {
        TxnHeader { session: self.session, cxid: self.cxid, zxid: self.zxid, time_ms: self.time_ms }
    }
    pub fn txn(&self, op: TxnOp) -> Txn {
        Txn { header: self.header(), op }
    }
}

/// ZooKeeper's `PathUtils.validatePath`; a sequential create is checked with a digit appended
/// (so "/a/" is a valid sequential prefix).
pub fn validate_path(path: &str, sequential: bool) -> Result<(), ErrorCode> {
    if sequential {
        return validate_path(&format!("{path}1"), false);
    }
    let bad = Err(ErrorCode::BadArguments);
    if !path.starts_with('/') {
        return bad;
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return bad;
    }
    for comp in path[1..].split('/') {
        if comp.is_empty() || comp == "." || comp == ".." {
            return bad;
        }
    }
    let invalid = |u: u32| {
        u == 0 || (0x01..=0x1f).contains(&u) || (0x7f..=0x9f).contains(&u) || (0xd800..=0xf8ff).contains(&u) || (0xfff0..=0xffff).contains(&u)
    };
    if path.chars().any(|c| invalid(c as u32)) {
        return bad;
    }
    Ok(())
}

/// The parent of a valid, non-root path.
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The znodes no client may delete (`ZKDatabase.isSpecialPath`).
fn is_special(path: &str) -> bool {
    matches!(path, "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config")
}

fn check_version(expected: i32, current: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn require_perm(info: &NodeInfo, perm: i32, auth: &[Id]) -> Result<(), ErrorCode> {
    if acl::check(&info.acl, perm, auth) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn is_normal_ephemeral(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_OWNER && (owner & TTL_MASK) != TTL_MASK
}

/// Prepare a create; on success the overlay reflects the new node.
pub fn create(ov: &mut Overlay, ctx: &Context, req: &CreateRequest) -> Result<TxnOp, ErrorCode> {
    let mode = CreateMode::from_flags(req.flags).ok_or(ErrorCode::BadArguments)?;
    // A TTL only comes with createTTL and a TTL mode, and must be in (0, max].
    let ttl_ok = if mode.is_ttl() {
        req.kind == CreateKind::CreateTtl && req.ttl_ms > 0 && req.ttl_ms <= TTL_MAX_MS
    } else {
        req.kind != CreateKind::CreateTtl || req.ttl_ms < 0
    };
    if !ttl_ok {
        return Err(ErrorCode::BadArguments);
    }
    if mode.is_container() != (req.kind == CreateKind::CreateContainer) {
        return Err(ErrorCode::BadArguments);
    }
    // As ZooKeeper (`validatePathForCreate`): only '/' and NUL here; a missing parent is
    // NoNode; the full path is validated below, once the sequential suffix is on.
    if !req.path.contains('/') || req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = parent_of(&req.path).to_string();
    let acl = acl::fixup(&req.acl, ctx.auth)?;
    let parent = ov.get(&parent_path).ok_or(ErrorCode::NoNode)?;
    require_perm(&parent, perms::CREATE, ctx.auth)?;
    let path = if mode.is_sequential() { format!("{}{:010}", req.path, parent.cversion) } else { req.path.clone() };
    validate_path(&path, false)?;
    if ov.get(&path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if is_normal_ephemeral(parent.ephemeral_owner) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let ephemeral_owner = match mode {
        _ if mode.is_ephemeral() => ctx.session.0,
        CreateMode::Container => CONTAINER_OWNER,
        _ if mode.is_ttl() => TTL_MASK | req.ttl_ms,
        _ => 0,
    };
    let parent_cversion = parent.cversion.wrapping_add(1);
    ov.set(&parent_path, Some(NodeInfo { cversion: parent_cversion, num_children: parent.num_children + 1, ..parent }));
    ov.set(
        &path,
        Some(NodeInfo { version: 0, aversion: 0, cversion: 0, num_children: 0, ephemeral_owner, acl: acl.clone() }),
    );
    Ok(TxnOp::Create { path, data: req.data.clone(), acl, ephemeral_owner, parent_cversion })
}

pub fn delete(ov: &mut Overlay, ctx: &Context, path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
    // As ZooKeeper (`getParentPathAndValidate`): any other malformed path is just not found.
    if !path.contains('/') || path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    if is_special(path) {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = parent_of(path).to_string();
    let parent = ov.get(&parent_path).ok_or(ErrorCode::NoNode)?;
    require_perm(&parent, perms::DELETE, ctx.auth)?;
    let node = ov.get(path).ok_or(ErrorCode::NoNode)?;
    check_version(version, node.version)?;
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    ov.set(&parent_path, Some(NodeInfo { num_children: parent.num_children.saturating_sub(1), ..parent }));
    ov.set(path, None);
    Ok(TxnOp::Delete { path: path.to_string() })
}

pub fn set_data(ov: &mut Overlay, ctx: &Context, path: &str, data: &Option<Vec<u8>>, version: i32) -> Result<TxnOp, ErrorCode> {
    validate_path(path, false)?;
    let node = ov.get(path).ok_or(ErrorCode::NoNode)?;
    require_perm(&node, perms::WRITE, ctx.auth)?;
    let new_version = check_version(version, node.version)?;
    ov.set(path, Some(NodeInfo { version: new_version, ..node }));
    Ok(TxnOp::SetData { path: path.to_string(), data: data.clone(), version: new_version })
}

pub fn set_acl(ov: &mut Overlay, ctx: &Context, path: &str, acl: &[Acl], version: i32) -> Result<TxnOp, ErrorCode> {
    validate_path(path, false)?;
    let acl = acl::fixup(acl, ctx.auth)?;
    let node = ov.get(path).ok_or(ErrorCode::NoNode)?;
    require_perm(&node, perms::ADMIN, ctx.auth)?;
    let new_version = check_version(version, node.aversion)?;
    ov.set(path, Some(NodeInfo { aversion: new_version, acl: acl.clone(), ..node }));
    Ok(TxnOp::SetAcl { path: path.to_string(), acl, version: new_version })
}

pub fn check(ov: &mut Overlay, ctx: &Context, path: &str, version: i32) -> Result<TxnOp, ErrorCode> {
    validate_path(path, false)?;
    let node = ov.get(path).ok_or(ErrorCode::NoNode)?;
    require_perm(&node, perms::READ, ctx.auth)?;
    check_version(version, node.version)?;
    Ok(TxnOp::Check { path: path.to_string(), version })
}

/// Prepare closing a session, by its client or by expiry (`PrepRequestProcessor`'s
/// closeSession): the txn deletes the session's ephemerals, those in the tree and those
/// created by txns still in flight, less those already deleted in flight. They are marked
/// deleted in the overlay, so that a request prepared while the close is in flight sees
/// them gone (else a create of the same path failed with NodeExists at a zxid where the
/// node no longer existed: found by the simulator, seed 68).
pub fn close_session(ov: &mut Overlay, session: SessionId) -> TxnOp {
    let mut paths: std::collections::BTreeSet<String> = ov.tree.ephemerals(session).into_iter().collect();
    if let Some(pending) = ov.pending {
        for (path, (_, info)) in &pending.changes {
            match info {
                Some(i) if i.ephemeral_owner == session.0 => paths.insert(path.clone()),
                _ => paths.remove(path),
            };
        }
    }
    for path in paths {
        ov.set(&path, None);
    }
    TxnOp::CloseSession
}

/// Prepare a multi: all ops or none. Returns the txn op to log (a `Multi` either way).
pub fn multi(ov: &mut Overlay, ctx: &Context, ops: &[MultiOp]) -> TxnOp {
    let mut out = Vec::with_capacity(ops.len());
    let mut failed = None;
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            MultiOp::Create(c) => create(ov, ctx, c),
            MultiOp::Delete { path, version } => delete(ov, ctx, path, *version),
            MultiOp::SetData { path, data, version } => set_data(ov, ctx, path, data, *version),
            MultiOp::Check { path, version } => check(ov, ctx, path, *version),
        };
        match r {
            Ok(t) => out.push(t),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    match failed {
        None => TxnOp::Multi(out),
        Some((at, err)) => TxnOp::Multi(
            (0..ops.len())
                .map(|i| TxnOp::Error {
                    err: match i.cmp(&at) {
                        std::cmp::Ordering::Less => ErrorCode::Ok,
                        std::cmp::Ordering::Equal => err,
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                    },
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: i32) -> Option<NodeInfo> {
        Some(NodeInfo { version, aversion: 0, cversion: 0, num_children: 0, ephemeral_owner: 0, acl: Vec::new() })
    }

    fn changes(items: &[(&str, i32)]) -> Changes {
        Changes(items.iter().map(|(p, v)| (p.to_string(), info(*v))).collect())
    }

    #[test]
    fn pending_drops_a_change_only_once_the_txn_that_made_it_is_applied() {
        let mut p = Pending::default();
        let z = |c| Zxid::new(1, c);
        p.record(changes(&[("/a", 1), ("/b", 1)]), z(1));
        p.record(changes(&[("/a", 2)]), z(2));
        p.record(changes(&[("/c", 1)]), z(3));
        p.applied(z(1));
        // /a was changed again by txn 2, still in flight: its newer change stays.
        assert_eq!(p.changes.get("/a").map(|(z, i)| (*z, i.as_ref().map(|i| i.version))), Some((z(2), Some(2))));
        assert!(!p.changes.contains_key("/b"));
        assert_eq!(p.len(), 2);
        p.applied(z(2));
        assert_eq!(p.len(), 1);
        p.applied(z(3));
        assert!(p.is_empty() && p.order.is_empty());
        p.record(changes(&[("/d", 1)]), z(4));
        p.clear();
        assert!(p.is_empty() && p.order.is_empty());
    }

    #[test]
    fn path_validation() {
        for p in ["/", "/a", "/a/b", "/a-b.c", "/zookeeper"] {
            assert_eq!(validate_path(p, false), Ok(()), "{p}");
        }
        for p in ["", "a", "/a/", "//", "/a//b", "/a/./b", "/a/..", "/a\u{0}b", "/\u{1}"] {
            assert_eq!(validate_path(p, false), Err(ErrorCode::BadArguments), "{p:?}");
        }
        assert_eq!(validate_path("/a/", true), Ok(()));
        assert_eq!(validate_path("/a/seq-", true), Ok(()));
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
    }
}

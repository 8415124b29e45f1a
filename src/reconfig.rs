//! Dynamic reconfiguration (`reconfig`, op 16), the pure part: parsing server specs as
//! ZooKeeper's `QuorumServer` does, computing the next membership from a request
//! (incremental `joining`/`leaving`, or bulk `newMembers`), and rendering it as
//! `/zookeeper/config` shows it (`QuorumMaj.toString`: one `server.N=` line per member in
//! id order, each `QuorumServer.toString`, then `version=<hex>`; the version is the zxid of
//! the reconfig txn that made it, 0 for the static config).
//!
//! The checks follow the reconfig case of ZooKeeper 3.8's `PrepRequestProcessor` in its
//! order: version, then the specs, then "at least 2 voters"; the caller does auth after
//! (ZooKeeper checks the ACL of `/zookeeper/config` last, so a bad spec from anybody is
//! BadArguments and a stale version is BadVersion).
//!
//! Nothing here does I/O or resolves names: a member's hosts are kept as written.

use std::collections::{BTreeMap, BTreeSet};

use crate::acl;
use crate::prep::{Context, Overlay};
use crate::proto::{perms, ErrorCode, ServerId};
use crate::tree::DataTree;
use crate::txn::TxnOp;

/// The znode that shows the membership (`ZooDefs.CONFIG_NODE`).
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// A member's role (`LearnerType`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Participant,
    Observer,
}

/// One `server.N` entry, hosts as written (`QuorumServer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: ServerId,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: Role,
    /// `(host, port)` of the client part; a bare port means the wildcard 0.0.0.0, as
    /// `new InetSocketAddress(port)` does in ZooKeeper.
    pub client: Option<(String, u16)>,
}

/// Why a reconfig request (or a config text) is refused; all are BadArguments on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{0:?}: expected server.N=host:port:port[:role][;[host:]port]")]
    Format(String),
    #[error("{0:?}: bad server id")]
    BadId(String),
    #[error("{0:?}: bad port")]
    BadPort(String),
    #[error("{0:?}: role must be participant or observer")]
    BadRole(String),
    #[error("server.{0}: a joining server needs quorum, election and client ports")]
    MissingClient(u64),
    #[error("server.{0} uses an address server.{1} already has")]
    DuplicateAddress(u64, u64),
    #[error("the new configuration must include at least 2 participants")]
    TooFewVoters,
    #[error("{0:?}: not a server.N line")]
    NotAServer(String),
}

/// The ensemble's members and the config version (`QuorumVerifier`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Membership {
    pub members: BTreeMap<ServerId, Member>,
    pub version: i64,
}

/// What a reconfig request asks for (`ReconfigRequest`; null strings are `None`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Change {
    pub joining: Option<String>,
    pub leaving: Option<String>,
    pub new_members: Option<String>,
}

/// Whether a computed change touches the voters (then a joint quorum of old and new must
/// commit it) or only observers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    ObserversOnly,
    Participants,
}

/// `host:port` with IPv6 in brackets, as `ConfigUtils.getHostAndPort` splits it; returns
/// the host without brackets and the rest after the host's `:`.
fn split_host(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let after = after.strip_prefix(':').unwrap_or(after);
        return Some((host, after));
    }
    s.split_once(':')
}

fn port(s: &str) -> Result<u16, SpecError> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(SpecError::BadPort(s.to_string())),
    }
}

/// `delimitedHostString`: IPv6 literals in brackets.
fn delimited(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl Member {
    /// `QuorumServer(sid, "host:port:port[:role][;[host:]port]")`.
    pub fn parse(id: ServerId, spec: &str) -> Result<Member, SpecError> {
        let bad = || SpecError::Format(spec.to_string());
        let (server, client) = match spec.split_once(';') {
            Some((s, c)) => (s.trim(), Some(c.trim())),
            None => (spec.trim(), None),
        };
        let (host, rest) = split_host(server).ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split(':').collect();
        if host.is_empty() || !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let role = match parts.get(2).map(|r| r.trim().to_ascii_lowercase()) {
            None => Role::Participant,
            Some(r) if r == "participant" => Role::Participant,
            Some(r) if r == "observer" => Role::Observer,
            Some(r) => return Err(SpecError::BadRole(r)),
        };
        let client = match client {
            None => None,
            Some(c) if !c.contains(':') => Some(("0.0.0.0".to_string(), port(c)?)),
            Some(c) => {
                let (h, p) = split_host(c).ok_or_else(bad)?;
                Some((h.to_string(), port(p)?))
            }
        };
        Ok(Member {
            id,
            host: host.to_string(),
            quorum_port: port(parts[0])?,
            election_port: port(parts[1])?,
            role,
            client,
        })
    }

    /// `server.N=spec` (the key's id is what follows its last `.`).
    pub fn parse_line(line: &str) -> Result<Member, SpecError> {
        let (key, spec) = line.split_once('=').ok_or_else(|| SpecError::Format(line.to_string()))?;
        let key = key.trim();
        if !key.starts_with("server.") {
            return Err(SpecError::NotAServer(line.to_string()));
        }
        let id = key.rsplit('.').next().and_then(|n| n.parse::<u64>().ok()).ok_or_else(|| SpecError::BadId(key.to_string()))?;
        Member::parse(ServerId(id), spec)
    }

    /// `QuorumServer.toString`, without the `server.N=` key.
    pub fn spec(&self) -> String {
        let role = match self.role {
            Role::Participant => "participant",
            Role::Observer => "observer",
        };
        let mut s = format!("{}:{}:{}:{role}", delimited(&self.host), self.quorum_port, self.election_port);
        if let Some((h, p)) = &self.client {
            s.push_str(&format!(";{}:{p}", delimited(h)));
        }
        s
    }

    /// ZooKeeper's `checkAddressDuplicate`: two members may not share a quorum or an
    /// election address.
    fn shares_address(&self, other: &Member) -> bool {
        let mine = [(&self.host, self.quorum_port), (&self.host, self.election_port)];
        let theirs = [(&other.host, other.quorum_port), (&other.host, other.election_port)];
        mine.iter().any(|a| theirs.contains(a))
    }
}

impl Membership {
    /// A `/zookeeper/config` text (or a dynamic config file): `server.N=` lines and an
    /// optional `version=<hex>`; blank lines are skipped.
    pub fn parse(text: &str) -> Result<Membership, SpecError> {
        let mut m = Membership::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("version=") {
                m.version = i64::from_str_radix(v.trim(), 16).map_err(|_| SpecError::Format(line.to_string()))?;
                continue;
            }
            let member = Member::parse_line(line)?;
            m.members.insert(member.id, member);
        }
        Ok(m)
    }

    /// `QuorumMaj.toString`: what `/zookeeper/config` holds.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for m in self.members.values() {
            out.push_str(&format!("server.{}={}\n", m.id, m.spec()));
        }
        out.push_str(&format!("version={:x}", self.version));
        out
    }

    /// A dynamic config file's text (`QuorumPeerConfig.writeDynamicConfig`): the
    /// `server.N=` lines sorted as strings, without the version (the file name carries it).
    pub fn dynamic_file_text(&self) -> String {
        let mut lines: Vec<String> = self.members.values().map(|m| format!("server.{}={}", m.id, m.spec())).collect();
        lines.sort();
        lines.join("\n")
    }

    pub fn voters(&self) -> BTreeSet<ServerId> {
        self.members.values().filter(|m| m.role == Role::Participant).map(|m| m.id).collect()
    }

    pub fn observers(&self) -> BTreeSet<ServerId> {
        self.members.values().filter(|m| m.role == Role::Observer).map(|m| m.id).collect()
    }

    /// The membership `change` asks for, at config version `version` (the reconfig txn's
    /// zxid). Checks the specs and that at least 2 participants remain (ZooKeeper's rule
    /// with `standaloneEnabled`, its default).
    pub fn next(&self, change: &Change, version: i64) -> Result<Membership, SpecError> {
        let members = match &change.new_members {
            Some(bulk) => bulk_members(bulk)?,
            None => self.incremental(change)?,
        };
        let next = Membership { members, version };
        if next.voters().len() < 2 {
            return Err(SpecError::TooFewVoters);
        }
        Ok(next)
    }

    fn incremental(&self, change: &Change) -> Result<BTreeMap<ServerId, Member>, SpecError> {
        let mut members = self.members.clone();
        for leaving in change.leaving.iter().flat_map(|l| l.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
            let id = leaving.parse::<u64>().map_err(|_| SpecError::BadId(leaving.to_string()))?;
            members.remove(&ServerId(id));
        }
        for joining in change.joining.iter().flat_map(|j| j.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
            let m = Member::parse_line(joining)?;
            if m.client.is_none() {
                return Err(SpecError::MissingClient(m.id.0));
            }
            if let Some(other) = members.values().find(|o| o.id != m.id && m.shares_address(o)) {
                return Err(SpecError::DuplicateAddress(m.id.0, other.id.0));
            }
            members.insert(m.id, m);
        }
        Ok(members)
    }

    /// Whether going from `self` to `next` changes the voters or how to reach one.
    pub fn scope(&self, next: &Membership) -> Scope {
        let voters = |m: &Membership| -> Vec<Member> {
            m.members.values().filter(|x| x.role == Role::Participant).cloned().collect()
        };
        if voters(self) == voters(next) {
            Scope::ObserversOnly
        } else {
            Scope::Participants
        }
    }
}

/// Why a reconfig request is answered with an error, in the order ZooKeeper checks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Standalone ZooKeeper 3.8 cannot reconfigure (Unimplemented).
    #[error("reconfig needs an ensemble")]
    Standalone,
    #[error("reconfigEnabled is false")]
    Disabled,
    #[error("a reconfig is already in flight")]
    InProgress,
    #[error("reconfig from version {asked:x}, but the current version is {current:x}")]
    BadVersion { asked: i64, current: i64 },
    #[error("bad reconfig: {0}")]
    Spec(#[from] SpecError),
    #[error("no WRITE permission on /zookeeper/config")]
    NoAuth,
    /// A voter change whose new voters do not have a quorum connected and synced with the
    /// leader (ZooKeeper's `isQuorumSynced` check): it could not commit.
    #[error("reconfig failed: there must be a connected and synced quorum in the new configuration")]
    NewConfigNoQuorum,
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::Standalone => ErrorCode::Unimplemented,
            Refusal::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Refusal::Disabled => ErrorCode::ReconfigDisabled,
            Refusal::InProgress => ErrorCode::ReconfigInProgress,
            Refusal::BadVersion { .. } => ErrorCode::BadVersion,
            Refusal::Spec(_) => ErrorCode::BadArguments,
            Refusal::NoAuth => ErrorCode::NoAuth,
        }
    }
}

/// Where the server stands, for `prepare`.
#[derive(Copy, Clone, Debug)]
pub struct Gate {
    /// An ensemble member (the leader prepares; a standalone server cannot reconfigure).
    pub ensemble: bool,
    /// `reconfigEnabled`.
    pub enabled: bool,
    /// A reconfig txn is proposed and not yet applied.
    pub in_flight: bool,
}

/// The leader's view for a voter change: who is connected and synced with it, itself
/// included (`Zab::synced_servers`).
pub type Synced = BTreeSet<ServerId>;

/// The leader's preparation of a reconfig (`PrepRequestProcessor`, case reconfig): the
/// next membership at `version` (the txn's zxid), or why not. `may_write`: whether the
/// requester has WRITE on `/zookeeper/config` (superuser included), asked only once the
/// request itself is sound, as ZooKeeper does. A change of the voters needs a quorum of the
/// new voters in `synced`, last (as `PrepRequestProcessor` checks it last).
pub fn prepare(
    gate: Gate,
    synced: &Synced,
    current: &Membership,
    change: &Change,
    cur_config_id: i64,
    version: i64,
    may_write: impl FnOnce() -> bool,
) -> Result<Membership, Refusal> {
    if !gate.ensemble {
        return Err(Refusal::Standalone);
    }
    if !gate.enabled {
        return Err(Refusal::Disabled);
    }
    if gate.in_flight {
        return Err(Refusal::InProgress);
    }
    if cur_config_id != -1 && cur_config_id != current.version {
        return Err(Refusal::BadVersion { asked: cur_config_id, current: current.version });
    }
    let next = current.next(change, version)?;
    if !may_write() {
        return Err(Refusal::NoAuth);
    }
    if current.scope(&next) == Scope::Participants {
        let voters = next.voters();
        if voters.iter().filter(|id| synced.contains(id)).count() <= voters.len() / 2 {
            return Err(Refusal::NewConfigNoQuorum);
        }
    }
    Ok(next)
}

/// The service's reconfig preparation: `prepare` against the membership the service shows
/// (`current`, None standalone) and the ACL of `/zookeeper/config` as the overlay sees it;
/// the txn that commits it, or the error to answer. Refusals are logged, the way ZooKeeper
/// logs them, since they are rare and an operator is behind each.
pub fn prepare_txn(
    gate: Gate,
    synced: &Synced,
    current: Option<&str>,
    ov: &Overlay<'_>,
    ctx: &Context<'_>,
    change: &Change,
    cur_config_id: i64,
) -> Result<TxnOp, ErrorCode> {
    let current = match current.map(Membership::parse) {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            tracing::error!(error = %e, "the current membership does not parse; reconfig refused");
            return Err(ErrorCode::SystemError);
        }
        None => Membership::default(),
    };
    let gate = Gate { ensemble: gate.ensemble && !current.members.is_empty(), ..gate };
    let may_write = || ov.get(CONFIG_NODE).is_some_and(|n| acl::check(&n.acl, perms::WRITE, ctx.auth));
    match prepare(gate, synced, &current, change, cur_config_id, ctx.zxid.0, may_write) {
        Ok(next) => {
            tracing::info!(session = %ctx.session, version = %format!("{:x}", next.version), ?change, "reconfig prepared");
            Ok(TxnOp::Reconfig { data: next.render().into_bytes() })
        }
        Err(r) => {
            tracing::warn!(session = %ctx.session, ?change, "reconfig refused: {r}");
            Err(r.code())
        }
    }
}

/// The membership to show after a restart or a snapshot: `given` (the static config, or
/// what this server showed), unless the tree holds one of a later version (a reconfig
/// replayed from the log or carried by a snapshot).
/// The membership the tree holds (`/zookeeper/config`), if it parses.
pub fn held(tree: &DataTree) -> Option<Membership> {
    let data = tree.lookup(CONFIG_NODE).and_then(|id| tree.data_opt(id))?;
    Membership::parse(std::str::from_utf8(data).ok()?).ok()
}

pub fn newer(given: String, tree: &DataTree) -> String {
    let version = |t: &str| Membership::parse(t).map(|m| m.version).unwrap_or(-1);
    let held = tree.lookup(CONFIG_NODE).and_then(|id| tree.data_opt(id)).map(|d| String::from_utf8_lossy(d).into_owned());
    match held {
        Some(h) if version(&h) > version(&given) => h,
        _ => given,
    }
}

/// The membership a restarting member starts from.
///
/// ZooKeeper keeps the last *committed* configuration in its config files (written when a
/// reconfig commits) apart from the last one *seen* (logged): a reconfig in the log may never
/// have committed, and counting quorums in it as if it had could elect a leader, or commit a
/// txn, with a majority of voters that never agreed to the change. arbor's recovery replays
/// the whole log into the tree, so the tree shows the newest logged membership; the config
/// files show the committed one. A newer logged one is `replayed`: a proposed change (joint
/// quorums) until a leader's commit covers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    pub committed: Membership,
    /// A membership the log holds, newer than `committed`, not known to have committed.
    pub replayed: Option<Membership>,
}

/// See [`Recovered`]. `committed`: from the config files; `logged`: the tree's, after the
/// log was replayed (or a state was restored).
pub fn recovered(committed: Membership, logged: Option<Membership>) -> Recovered {
    let replayed = logged.filter(|l| l.version > committed.version);
    Recovered { committed, replayed }
}

/// `newMembers`: lines separated by newlines or commas (ZooKeeper turns commas into
/// newlines and reads the result as properties).
fn bulk_members(text: &str) -> Result<BTreeMap<ServerId, Member>, SpecError> {
    let mut members = BTreeMap::new();
    for line in text.split([',', '\n']).map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line.starts_with("version=") {
            continue;
        }
        let m = Member::parse_line(line)?;
        members.insert(m.id, m);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                         server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                         server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\n\
                         version=0";

    fn three() -> Membership {
        Membership::parse(THREE).expect("static config parses")
    }

    fn join(s: &str) -> Change {
        Change { joining: Some(s.into()), ..Change::default() }
    }

    #[test]
    fn static_text_round_trips() {
        let m = three();
        assert_eq!(m.members.len(), 3);
        assert_eq!(m.version, 0);
        assert_eq!(m.render(), THREE);
    }

    #[test]
    fn spec_renders_as_quorum_server_to_string() {
        // kazoo's test_add_remove_observer looks for its own line in the returned data.
        let m = Member::parse_line("server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456").expect("parses");
        assert_eq!(format!("server.100={}", m.spec()), "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456");
        // A bare client port is the wildcard address; no role is participant.
        let m = Member::parse(ServerId(4), "zk4:1:2;3456").expect("parses");
        assert_eq!(m.spec(), "zk4:1:2:participant;0.0.0.0:3456");
        let m = Member::parse(ServerId(5), "[::1]:1:2:observer;[::1]:9").expect("parses");
        assert_eq!(m.host, "::1");
        assert_eq!(m.spec(), "[::1]:1:2:observer;[::1]:9");
    }

    #[test]
    fn dynamic_file_sorts_lines_as_strings_and_drops_the_version() {
        let m = three().next(&join("server.10=h:1:2:observer;3"), 0x100000003).expect("joins");
        let text = m.dynamic_file_text();
        // As strings, "server.10=" sorts before "server.1=" ('0' < '='), as in ZooKeeper.
        assert!(text.starts_with("server.10=h:1:2:observer;0.0.0.0:3\nserver.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n"), "{text}");
        assert!(!text.contains("version"));
        assert_eq!(Membership::parse(&text).expect("parses").members, m.members);
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in ["some thing", "server.x=h:1:2;3", "server.4=h:1;3", "server.4=h:1:2:voter;3", "server.4=h:0:2;3", "server.4=h:1:2;x"] {
            assert!(three().next(&join(bad), 0x100).is_err(), "{bad:?}");
        }
        assert_eq!(three().next(&join("server.4=h:1:2:observer"), 1), Err(SpecError::MissingClient(4)));
        assert_eq!(
            three().next(&Change { leaving: Some("x".into()), ..Change::default() }, 1),
            Err(SpecError::BadId("x".into()))
        );
    }

    #[test]
    fn adding_and_removing_an_observer() {
        let line = "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456";
        let added = three().next(&join(line), 0x100000003).expect("observer joins");
        assert!(added.render().contains(line));
        assert!(added.render().ends_with("\nversion=100000003"));
        assert_eq!(three().scope(&added), Scope::ObserversOnly);
        assert_eq!(added.observers(), [ServerId(100)].into());
        let removed = added.next(&Change { leaving: Some("100".into()), ..Change::default() }, 0x100000004).expect("leaves");
        assert!(!removed.render().contains(line));
        assert_eq!(removed.members, three().members);
        assert_eq!(Membership::parse(&removed.render()).expect("own output parses"), removed);
    }

    #[test]
    fn participant_changes_are_told_apart() {
        let m = three();
        let gone = m.next(&Change { leaving: Some("3".into()), ..Change::default() }, 1).expect("2 voters remain");
        assert_eq!(m.scope(&gone), Scope::Participants);
        let moved = m.next(&join("server.3=127.0.0.1:2890:3890:observer;2183"), 1).expect("demotion parses");
        assert_eq!(m.scope(&moved), Scope::Participants);
        assert_eq!(m.next(&Change { leaving: Some("2,3".into()), ..Change::default() }, 1), Err(SpecError::TooFewVoters));
    }

    #[test]
    fn duplicate_addresses_are_refused() {
        assert_eq!(three().next(&join("server.4=127.0.0.1:2888:4000:observer;2184"), 1), Err(SpecError::DuplicateAddress(4, 1)));
        // A member may keep its own addresses when it is re-specified.
        assert!(three().next(&join("server.3=127.0.0.1:2890:3890:participant;2199"), 1).is_ok());
    }

    const OPEN: Gate = Gate { ensemble: true, enabled: true, in_flight: false };

    #[test]
    fn prepare_checks_in_zookeepers_order() {
        let m = three();
        let obs = join("server.999=0.0.0.0:1234:2345:observer;3456");
        let all: Synced = m.voters();
        let code = |g: Gate, c: &Change, v: i64, w: bool| prepare(g, &all, &m, c, v, 0x100, || w).map_err(|r| r.code());
        assert_eq!(code(Gate { ensemble: false, ..OPEN }, &obs, -1, true), Err(ErrorCode::Unimplemented));
        assert_eq!(code(Gate { enabled: false, ..OPEN }, &obs, -1, true), Err(ErrorCode::ReconfigDisabled));
        assert_eq!(code(Gate { in_flight: true, ..OPEN }, &obs, -1, true), Err(ErrorCode::ReconfigInProgress));
        // kazoo: a stale version or a bad spec is refused before auth is looked at.
        assert_eq!(code(OPEN, &obs, 1, false), Err(ErrorCode::BadVersion));
        assert_eq!(code(OPEN, &join("some thing"), -1, false), Err(ErrorCode::BadArguments));
        assert_eq!(code(OPEN, &obs, -1, false), Err(ErrorCode::NoAuth));
        let leave = Change { leaving: Some("3".into()), ..Change::default() };
        assert_eq!(code(OPEN, &leave, -1, true).map(|n| n.voters()), Ok([ServerId(1), ServerId(2)].into()));
        let next = prepare(OPEN, &all, &m, &obs, 0, 0x100, || true).expect("observer joins");
        assert_eq!(next.version, 0x100);
        assert!(next.render().contains("server.999=0.0.0.0:1234:2345:observer;0.0.0.0:3456\n"));
    }

    /// ZooKeeper's NewConfigNoQuorum: the new voters must have a quorum synced with the
    /// leader (here 1 leads and 2 follows; 4 and 5 join).
    #[test]
    fn a_voter_change_needs_a_synced_quorum_of_the_new_voters() {
        let m = three();
        let synced: Synced = [ServerId(1), ServerId(2)].into();
        let add = |ids: &str| Change { joining: Some(ids.into()), ..Change::default() };
        let two = add("server.4=127.0.0.1:1:2;3,server.5=127.0.0.1:4:5;6");
        assert_eq!(prepare(OPEN, &synced, &m, &two, -1, 9, || true), Err(Refusal::NewConfigNoQuorum), "2 of 5 synced");
        assert!(prepare(OPEN, &synced, &m, &add("server.4=127.0.0.1:1:2;3"), -1, 9, || true).is_err(), "2 of 4 synced");
        let with4: Synced = [ServerId(1), ServerId(2), ServerId(4)].into();
        assert!(prepare(OPEN, &with4, &m, &add("server.4=127.0.0.1:1:2;3"), -1, 9, || true).is_ok(), "3 of 4 synced");
        let leave3 = Change { leaving: Some("3".into()), ..Change::default() };
        assert!(prepare(OPEN, &synced, &m, &leave3, -1, 9, || true).is_ok(), "1 and 2 are all the new voters");
        // Observers do not need it (the voters are unchanged).
        assert!(prepare(OPEN, &Synced::new(), &m, &add("server.9=h:1:2:observer;3"), -1, 9, || true).is_ok());
        assert_eq!(Refusal::NewConfigNoQuorum.code(), ErrorCode::NewConfigNoQuorum);
    }

    #[test]
    fn bulk_form_replaces_the_membership() {
        let bulk = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181,\
                    server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                    server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183,server.7=h:5:6:observer;7";
        let next = three().next(&Change { new_members: Some(bulk.into()), ..Change::default() }, 9).expect("bulk parses");
        assert_eq!(next.members.len(), 4);
        assert_eq!(three().scope(&next), Scope::ObserversOnly);
        assert!(three().next(&Change { new_members: Some("group.1=1:2".into()), ..Change::default() }, 9).is_err());
    }
}

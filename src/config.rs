//! Server configuration in Apache ZooKeeper's `zoo.cfg` format.
//!
//! # Format
//! A Java properties file, as ZooKeeper reads it (`java.util.Properties.load`, then each value
//! trimmed): `key=value`, `key: value` and `key value` are the same line; the key ends at the
//! first unescaped `=`, `:` or whitespace, so values may contain `=` and `:`
//! (`superDigest=super:…=`, `server.1=h:2888:3888`). Blank lines and lines whose first
//! non-blank character is `#` or `!` are skipped. A line ending in an odd number of `\`
//! continues on the next one (its leading whitespace dropped). Escapes `\t \n \r \f \uXXXX`
//! are decoded and `\x` stands for `x`. Messages name the line where a logical line starts.
//! When a key repeats, the last value wins (as in `Properties`) and a warning is returned.
//!
//! `dynamicConfigFile=PATH` (ZooKeeper 3.5+'s layout, e.g. `zoo.cfg.dynamic.100000000`) names
//! a second properties file holding the `server.N` lines (and `group.`/`weight.`/`version`);
//! `load` reads it (a relative PATH is taken from the config file's directory, then from the
//! working directory) and its lines count as if they were in the main file, with messages
//! naming that file. Any other key in it is an error, as in ZooKeeper.
//!
//! Keys arbor understands (ZooKeeper's names, ZooKeeper's defaults):
//!
//! | key | field | default |
//! |---|---|---|
//! | `tickTime` | `tick_time_ms` | 2000 |
//! | `dataDir` | `data_dir` | required |
//! | `dataLogDir` | `data_log_dir` | `dataDir` |
//! | `clientPort`, `clientPortAddress` | `client_port`, `client_port_address` | –, 0.0.0.0 |
//! | `initLimit`, `syncLimit` | `init_limit`, `sync_limit` (in ticks) | 10, 5 |
//! | `maxClientCnxns` | `max_client_cnxns` (per client IP; 0 = unlimited) | 0 |
//! | `jute.maxbuffer` | `jute_max_buffer` (bytes; decimal or `0x…`) | 0xfffff |
//! | `globalOutstandingLimit` | `global_outstanding_limit` (requests in progress; past it no client is read) | 1000 |
//! | `maxCnxns` | `max_cnxns` (client connections in all; 0 = unlimited) | 0 |
//! | `4lw.commands.whitelist` | `four_lw_whitelist` | only `srvr` |
//! | `superDigest` | `super_digest` (`super:<base64 sha1>`) | none |
//! | `reconfigEnabled` | `reconfig_enabled` (the reconfig op; ensemble only) | false |
//! | `snapCount` | `snap_count` | 100000 |
//! | `commitLogCount` | `commit_log_count` | 500 (committed txns the leader keeps in memory to DIFF a follower; ZooKeeper's `zookeeper.commitLogCount`) |
//! | `forceSync` | `force_sync` (`yes`/`no`) | yes |
//! | `autopurge.snapRetainCount` | `autopurge_snap_retain_count` (min 3) | 3 |
//! | `autopurge.purgeInterval` | `autopurge_purge_interval_h` (0 = off) | 0 |
//! | `preAllocSize` | `pre_alloc_size_kb` (txn log segment size, KiB, min 64) | 65536 |
//! | `minSessionTimeout`, `maxSessionTimeout` | `min_/max_session_timeout_ms` | 2·tick, 20·tick |
//! | `server.N` | `servers` | none (standalone) |
//!
//! `server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`
//! declares ensemble member N (1..=255: the id is the top byte of the session ids it makes).
//! A host may be a name or an IP (IPv6 in `[…]`); the client host, when given, must be an IP
//! literal (the parser does no DNS). A client part with only a port listens on 0.0.0.0, as in
//! ZooKeeper. A node's client address is the client part of its own `server.N` line when
//! present, otherwise `clientPortAddress:clientPort`.
//!
//! # TLS
//! ZooKeeper's keys (in ZooKeeper they are `zookeeper.ssl.*` system properties, which zoo.cfg
//! may also set as `ssl.*`): `secureClientPort` (and `secureClientPortAddress`, default
//! `clientPortAddress`) opens a TLS client listener next to `clientPort`, or instead of it when
//! `clientPort` is absent; arbor extension, like `admin.serverPort.N`: `secureClientPort.N=P`
//! gives server N its own secure port (one file for an ensemble on one machine).
//! `ssl.keyStore.location` holds the private key and the certificate chain,
//! `ssl.trustStore.location` the CA certificates that client certificates must chain to.
//! `ssl.keyStore.type` / `ssl.trustStore.type`: `PEM` (one PEM file; an unencrypted PKCS#8,
//! PKCS#1 or SEC1 key) or `PKCS12` (opened with `ssl.keyStore.password` /
//! `ssl.trustStore.password`); `JKS` is accepted for a file that is really PKCS#12 (what
//! keytool writes since Java 9, and what Java's own JKS type then reads) and refused for a
//! real JKS file, naming the keytool command that converts it. Without a type key the type
//! comes from the file name as in ZooKeeper (`.pem`, `.p12`/`.pfx`, `.jks`), else PEM.
//! `ssl.clientAuth` = `none` | `want` | `need`
//! (ZooKeeper's default: `need`). `sslQuorum=true` puts the election and quorum ports under
//! TLS with the same keys under `ssl.quorum.*` (both sides present and verify certificates);
//! `ssl.quorum.hostnameVerification` (default true) checks the server certificate of a peer we
//! dial against the host of its `server.N` line. A PEM key must be unencrypted (an encrypted
//! one is refused when the store is loaded, naming the line).
//! `X509AuthenticationProvider.superUser=DN` (ZooKeeper's
//! `zookeeper.X509AuthenticationProvider.superUser`): a client whose certificate subject is DN
//! is the superuser. Other
//! `ssl.*` keys (protocols, cipher suites, CRL/OCSP, …) are ignored with a warning.
//!
//! `4lw.commands.whitelist` follows ZooKeeper 3.8 exactly: a comma-separated list, `*` = every
//! word, and `srvr` is always allowed (zkServer.sh needs it). When the key is absent only
//! `srvr` is allowed, so configs meant for clients that use `ruok`/`mntr` must list them.
//!
//! The admin HTTP server (`server::admin`) takes ZooKeeper's keys: `admin.enableServer`
//! (default true), `admin.serverAddress` (default 0.0.0.0), `admin.serverPort` (default
//! 8080), `admin.idleTimeout` (ms, default 30000). arbor extension: `admin.serverPort.N=P`
//! gives server N its own admin port, so one file can describe an ensemble on one machine
//! (three nodes cannot all take 8080); ZooKeeper ignores such keys.
//!
//! ZooKeeper keys that arbor does not implement (`admin.commandURL`,
//! `standaloneEnabled`, `localSessionsEnabled`, …) are accepted and ignored
//! with a warning; unknown keys also only warn, naming the closest known key when one is
//! near (`tickTmie: unknown key; ignored (did you mean tickTime?)`). Warnings are returned,
//! never printed here.
//!
//! # The `{id}` extension
//! `{id}` in `dataDir` and `dataLogDir` is replaced by the server id given on the command line
//! (`dataDir=/var/lib/arbor/{id}`), so one file serves every node of an ensemble on one
//! machine. ZooKeeper's way works too: one zoo.cfg per server and the id in `dataDir/myid`
//! (`arbor node CONFIG` reads it; see `node::load`).
//!
//! # Errors
//! Every error names the file; errors about one line name the line too, e.g.
//! `config/local-3.cfg:7: server.2: bad port "38x8"`. The parser is pure: `parse` does no I/O
//! and `load` only reads the file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::proto::{Millis, ServerId};

/// Highest server id: a session id carries its creator's id in its top byte.
pub const MAX_SERVER_ID: u64 = 255;

/// ZooKeeper's default `jute.maxbuffer`: 1 MiB - 1.
pub const DEFAULT_JUTE_MAX_BUFFER: u32 = 0xfffff;

/// Every four-letter word ZooKeeper 3.8 knows; `*` in the whitelist expands to these.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst",
    "srvr", "stat", "stmk", "wchc", "wchp", "wchs",
];

/// ZooKeeper keys arbor accepts but does not implement (a warning each).
const IGNORED_KEYS: &[&str] = &[
    "admin.commandURL",
    "audit.enable",
    "clientPortListenBacklog",
    "cnxTimeout",
    "connectToLearnerMasterLimit",
    "electionAlg",
    "electionPortBindRetry",
    "leaderServes",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "metricsProvider.className",
    "metricsProvider.httpPort",
    "multiAddress.enabled",
    "peerType",
    "quorumListenOnAllIPs",
    "serverCnxnFactory",
    "skipACL",
    "snapSizeLimitInKb",
    "standaloneEnabled",
    "syncEnabled",
    "zookeeper.snapshot.trust.empty",
];

/// A configuration that could not be read or is invalid. `Display` names the file, and the
/// line when one line is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not `key=value`.
    #[error("{file}:{line}: {reason}")]
    BadLine {
        file: String,
        line: usize,
        reason: String,
    },
    /// A key whose value is invalid (or clashes with an earlier line).
    #[error("{file}:{line}: {key}: {reason}")]
    BadValue {
        file: String,
        line: usize,
        key: String,
        reason: String,
    },
    /// A required key is missing, or keys contradict each other.
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

/// Voting member or observer (`server.N=…:participant|:observer`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Participant,
    Observer,
}

/// One `server.N` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    /// Host name or IP literal (IPv6 without brackets) for quorum and election traffic.
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: Role,
    /// The `;[clientHost:]clientPort` part; a bare port means 0.0.0.0.
    pub client_addr: Option<SocketAddr>,
    /// Line of the config file it came from (for later error messages).
    pub line: usize,
}

/// `ssl.clientAuth` / `ssl.quorum.clientAuth` (ZooKeeper's `X509Util.ClientAuth`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// Asked for; a client without one is served (without an `x509` id).
    Want,
    /// Required: a client without a valid certificate fails the handshake.
    Need,
}

/// The format of a key or trust store (ZooKeeper's `KeyStoreFileType`, less BCFKS).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    /// Java's own format; read only when the file is really PKCS#12 (see the module doc).
    Jks,
}

impl StoreType {
    /// `ssl.*Store.type`'s value, case-insensitive as in ZooKeeper; `None` if unknown.
    pub fn from_name(v: &str) -> Option<StoreType> {
        match v.to_ascii_uppercase().as_str() {
            "PEM" => Some(StoreType::Pem),
            "PKCS12" => Some(StoreType::Pkcs12),
            "JKS" => Some(StoreType::Jks),
            _ => None,
        }
    }

    /// ZooKeeper's `KeyStoreFileType.fromFilename`: the type a file name's extension names.
    pub fn from_file_name(path: &Path) -> Option<StoreType> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pem" => Some(StoreType::Pem),
            "p12" | "pfx" => Some(StoreType::Pkcs12),
            "jks" => Some(StoreType::Jks),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StoreType::Pem => "PEM",
            StoreType::Pkcs12 => "PKCS12",
            StoreType::Jks => "JKS",
        }
    }
}

/// A password from the config: never printed (`Debug` shows only that one is set).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One set of `ssl.*` (client port) or `ssl.quorum.*` (election and quorum ports) keys.
/// Paths carry the line they were set on, for the messages of loading them later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsStores {
    /// `ssl` or `ssl.quorum`: how the keys were spelled, for messages.
    pub prefix: &'static str,
    /// The private key and the certificate chain.
    pub key_store: Option<(usize, PathBuf)>,
    /// `keyStore.type`, when set (else the type comes from the file name).
    pub key_store_type: Option<(usize, StoreType)>,
    /// `keyStore.password`: opens a PKCS#12 store; for PEM it only lets the loader say why
    /// an encrypted key is refused.
    pub key_store_password: Option<(usize, Secret)>,
    /// CA certificates the peer's certificate must chain to.
    pub trust_store: Option<(usize, PathBuf)>,
    pub trust_store_type: Option<(usize, StoreType)>,
    pub trust_store_password: Option<(usize, Secret)>,
    pub client_auth: ClientAuth,
    /// Dialing side: check the peer's certificate names the host we dialed.
    pub hostname_verification: bool,
}

impl TlsStores {
    /// The key store's type: `keyStore.type`, else its file name's extension, else PEM.
    pub fn key_store_kind(&self) -> StoreType {
        kind(&self.key_store_type, &self.key_store)
    }

    pub fn trust_store_kind(&self) -> StoreType {
        kind(&self.trust_store_type, &self.trust_store)
    }

    fn new(prefix: &'static str) -> Self {
        TlsStores {
            prefix,
            key_store: None,
            key_store_type: None,
            key_store_password: None,
            trust_store: None,
            trust_store_type: None,
            trust_store_password: None,
            // ZooKeeper 3.8 `ClientAuth.fromPropertyValue`: absent or empty = NEED.
            client_auth: ClientAuth::Need,
            hostname_verification: true,
        }
    }
}

fn kind(set: &Option<(usize, StoreType)>, location: &Option<(usize, PathBuf)>) -> StoreType {
    set.map(|(_, t)| t)
        .or_else(|| location.as_ref().and_then(|(_, p)| StoreType::from_file_name(p)))
        .unwrap_or(StoreType::Pem)
}

/// TLS settings: the secure client port and the quorum's TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    pub secure_client_port: Option<u16>,
    /// `secureClientPort.N` (arbor extension): server N's own secure port.
    pub secure_client_ports: BTreeMap<ServerId, u16>,
    pub secure_client_port_address: Option<IpAddr>,
    /// The `ssl.*` keys (used by the secure client port).
    pub client: TlsStores,
    /// `sslQuorum=true`: election and quorum connections use TLS with `ssl.quorum.*`.
    pub ssl_quorum: bool,
    /// `X509AuthenticationProvider.superUser`: the certificate subject (RFC 2253, as the
    /// `x509` id) that is the superuser.
    pub x509_super_user: Option<String>,
    pub quorum: TlsStores,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            secure_client_port: None,
            secure_client_ports: BTreeMap::new(),
            secure_client_port_address: None,
            client: TlsStores::new("ssl"),
            ssl_quorum: false,
            x509_super_user: None,
            quorum: TlsStores::new("ssl.quorum"),
        }
    }
}

/// `4lw.commands.whitelist`. `srvr` is always allowed, as in ZooKeeper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    words: BTreeSet<String>,
}

impl FourLetterWhitelist {
    /// ZooKeeper's default when the key is absent: only `srvr`.
    pub fn zookeeper_default() -> Self {
        Self::parse_list("")
    }

    /// Every known word (`*`).
    pub fn all() -> Self {
        Self::parse_list("*")
    }

    fn parse_list(list: &str) -> Self {
        let mut words = BTreeSet::new();
        for w in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if w == "*" {
                words.extend(FOUR_LETTER_WORDS.iter().map(|w| w.to_string()));
            } else {
                words.insert(w.to_string());
            }
        }
        words.insert("srvr".to_string());
        FourLetterWhitelist { words }
    }

    pub fn allows(&self, word: &str) -> bool {
        self.words.contains(word)
    }

    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }
}

/// `superDigest=super:<base64 sha1>`: logging in with digest auth as `user` whose
/// `user:password` hashes to `digest` grants every permission on every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperDigest {
    pub user: String,
    /// Base64 of the 20-byte SHA-1, exactly as written in the file.
    pub digest: String,
}

/// A parsed, validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Name of the file it came from, for messages.
    pub file_name: String,
    /// The id this process runs as, when one was given to `parse`/`load`.
    pub server_id: Option<ServerId>,
    pub tick_time_ms: Millis,
    /// With `{id}` replaced.
    pub data_dir: PathBuf,
    /// With `{id}` replaced; `dataDir` when absent.
    pub data_log_dir: PathBuf,
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// Concurrent connections per client IP; 0 = unlimited.
    pub max_client_cnxns: u32,
    /// Largest frame (request or reply payload) in bytes.
    pub jute_max_buffer: u32,
    /// Requests in progress (received, not answered) past which clients are not read.
    pub global_outstanding_limit: u32,
    /// Client connections in all; 0 = unlimited.
    pub max_cnxns: u32,
    /// `readonlymode.enabled` (ZooKeeper's system property, accepted here as a key): a
    /// server without a quorum serves reads to clients that allow a read-only server.
    pub read_only_mode: bool,
    /// `reconfigEnabled`: whether an ensemble answers the reconfig op (ZooKeeper 3.5.3+
    /// refuses it by default, with ReconfigDisabled).
    pub reconfig_enabled: bool,
    pub four_lw_whitelist: FourLetterWhitelist,
    pub super_digest: Option<SuperDigest>,
    pub snap_count: u64,
    /// Committed txns the leader keeps in memory for DIFF syncs; a follower further behind
    /// gets a snapshot.
    pub commit_log_count: u64,
    pub force_sync: bool,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval_h: u32,
    /// Size of each preallocated txn log segment, in KiB (ZooKeeper's `preAllocSize`).
    pub pre_alloc_size_kb: u64,
    pub min_session_timeout_ms: Millis,
    pub max_session_timeout_ms: Millis,
    pub servers: BTreeMap<ServerId, ServerSpec>,
    /// The membership's version (ZooKeeper's config version: the zxid of the reconfig that
    /// made it): a dynamic file's `version=` line, else the hex suffix of its name
    /// (`zoo.cfg.dynamic.100000003`); 0 for server lines in the static file.
    pub config_version: i64,
    pub admin: AdminConfig,
    pub tls: TlsConfig,
}

/// The admin HTTP server's settings (ZooKeeper's `admin.*` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    pub enabled: bool,
    pub address: IpAddr,
    /// `admin.serverPort`: every server's port unless it has its own.
    pub port: u16,
    /// `admin.serverPort.N` (arbor extension): server N's own port.
    pub server_ports: BTreeMap<ServerId, u16>,
    /// An admin connection idle this long is closed.
    pub idle_timeout_ms: Millis,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            server_ports: BTreeMap::new(),
            idle_timeout_ms: 30_000,
        }
    }
}

impl AdminConfig {
    /// Server `id`'s admin port.
    pub fn port_of(&self, id: ServerId) -> u16 {
        self.server_ports.get(&id).copied().unwrap_or(self.port)
    }
}

impl Config {
    /// Where server `id`'s admin HTTP listener binds, if it has one.
    pub fn admin_addr(&self, id: ServerId) -> Option<SocketAddr> {
        self.admin.enabled.then(|| SocketAddr::new(self.admin.address, self.admin.port_of(id)))
    }

    /// The address this node's client listener binds: the client part of its `server.N` line
    /// when present, else `clientPortAddress` (default 0.0.0.0) + `clientPort`.
    pub fn client_addr(&self, id: ServerId) -> Result<SocketAddr, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            file: self.file_name.clone(),
            reason,
        };
        let spec = self.servers.get(&id);
        if spec.is_none() && !self.servers.is_empty() {
            return Err(invalid(format!("no server.{id} line for server id {id}")));
        }
        if let Some(addr) = spec.and_then(|s| s.client_addr) {
            return Ok(addr);
        }
        match self.client_port {
            Some(port) => {
                let ip = self.client_port_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                Ok(SocketAddr::new(ip, port))
            }
            None if self.secure_client_addr(id).is_some() => Err(invalid(format!(
                "server {id} has only a secure client port (secureClientPort); see secure_client_addr"
            ))),
            None => Err(invalid(format!(
                "missing client port for server {id}: set clientPort or add ';[host:]port' to server.{id}"
            ))),
        }
    }

    /// Where server `id`'s TLS client listener binds (`secureClientPortAddress`, else
    /// `clientPortAddress`, else the client host of its `server.N` line, else 0.0.0.0), when
    /// it has a secure port (`secureClientPort.N`, else `secureClientPort`).
    pub fn secure_client_addr(&self, id: ServerId) -> Option<SocketAddr> {
        let port = self.tls.secure_client_ports.get(&id).copied().or(self.tls.secure_client_port)?;
        let line_host = self.servers.get(&id).and_then(|s| s.client_addr).map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
        let ip = self
            .tls
            .secure_client_port_address
            .or(self.client_port_address)
            .or(line_host)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Some(SocketAddr::new(ip, port))
    }

    /// The plain client address, or `None` when this node has only a secure client port.
    pub fn plain_client_addr(&self, id: ServerId) -> Result<Option<SocketAddr>, ConfigError> {
        let own = self.servers.get(&id).and_then(|s| s.client_addr);
        if own.is_none()
            && self.client_port.is_none()
            && self.secure_client_addr(id).is_some()
            && (self.servers.is_empty() || self.servers.contains_key(&id))
        {
            return Ok(None);
        }
        self.client_addr(id).map(Some)
    }

    /// Zero or one `server.N` lines: no quorum traffic at all.
    pub fn is_standalone(&self) -> bool {
        self.servers.len() <= 1
    }

    /// Votes needed for a quorum: a majority of the participants (observers do not vote).
    /// 1 when standalone.
    pub fn quorum_size(&self) -> usize {
        let voters = self.voters().count();
        if voters == 0 {
            1
        } else {
            voters / 2 + 1
        }
    }

    /// The voting members, in id order.
    pub fn voters(&self) -> impl Iterator<Item = (ServerId, &ServerSpec)> {
        self.servers
            .iter()
            .filter(|(_, s)| s.role == Role::Participant)
            .map(|(id, s)| (*id, s))
    }
}

/// Keys arbor reads (the closest one is suggested for an unknown key).
const KNOWN_KEYS: &[&str] = &[
    "tickTime",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "initLimit",
    "syncLimit",
    "maxClientCnxns",
    "globalOutstandingLimit",
    "maxCnxns",
    "jute.maxbuffer",
    "4lw.commands.whitelist",
    "superDigest",
    "snapCount",
    "commitLogCount",
    "forceSync",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "preAllocSize",
    "minSessionTimeout",
    "maxSessionTimeout",
    "dynamicConfigFile",
    "readonlymode.enabled",
    "reconfigEnabled",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.idleTimeout",
    "secureClientPort",
    "secureClientPortAddress",
    "sslQuorum",
    "ssl.keyStore.location",
    "ssl.trustStore.location",
    "ssl.clientAuth",
    "X509AuthenticationProvider.superUser",
];

/// The known key closest to `key` (optimal string alignment distance, case-insensitive), if
/// it is close enough to be a typo: at most 2 edits, and fewer than a third of the key.
fn closest_key(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    KNOWN_KEYS
        .iter()
        .chain(IGNORED_KEYS)
        .map(|known| (strsim::osa_distance(&k, &known.to_ascii_lowercase()), *known))
        .filter(|(d, known)| *d <= 2 && *d * 3 < known.len().max(k.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.display().to_string(),
        source,
    })
}

/// Read and parse `path`, and the `dynamicConfigFile` it names; see [`parse`].
pub fn load(path: &Path, id: Option<ServerId>) -> Result<(Config, Vec<String>), ConfigError> {
    let file = path.display().to_string();
    let text = read_file(path)?;
    // The last one wins, as for every repeated key.
    let dynamic = properties(&text).into_iter().rev().find_map(|(line, l)| {
        let (k, v) = split_property(&l);
        (k == "dynamicConfigFile").then_some((line, v))
    });
    let Some((line, dyn_path)) = dynamic else {
        return parse(&text, &file, id);
    };
    let dyn_path = resolve_dynamic(path, &dyn_path).map_err(|reason| ConfigError::BadValue {
        file: file.clone(),
        line,
        key: "dynamicConfigFile".into(),
        reason,
    })?;
    let dyn_text = read_file(&dyn_path)?;
    let (mut config, warnings) = parse_with_dynamic(&text, &file, Some((&dyn_text, &dyn_path.display().to_string())), id)?;
    if config.config_version == 0 {
        config.config_version = dyn_path.to_str().and_then(dynamic_file_version).unwrap_or(0);
    }
    Ok((config, warnings))
}

/// The config version a dynamic file's name carries (`<anything>.dynamic.<hex>`, ZooKeeper's
/// `getVersionFromFilename`).
pub fn dynamic_file_version(name: &str) -> Option<i64> {
    let (_, hex) = name.rsplit_once(".dynamic.")?;
    i64::from_str_radix(hex, 16).ok()
}

/// A relative `dynamicConfigFile` is looked for next to the config file, then in the
/// working directory (where ZooKeeper resolves it).
fn resolve_dynamic(config: &Path, value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("empty value".into());
    }
    let p = Path::new(value);
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let beside = config.parent().map(|d| d.join(p)).unwrap_or_else(|| p.to_path_buf());
    if beside.exists() || !p.exists() {
        Ok(beside)
    } else {
        Ok(p.to_path_buf())
    }
}

/// The logical lines of a properties file: (line number where it starts, text with
/// continuations joined), comments and blank lines dropped (`Properties.load`'s LineReader).
fn properties(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches([' ', '\t', '\x0c']);
        let (start, mut acc) = match cur.take() {
            Some(c) => c,
            None => {
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                (i + 1, String::new())
            }
        };
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            acc.push_str(&line[..line.len() - 1]);
            cur = Some((start, acc));
        } else {
            acc.push_str(line);
            out.push((start, acc));
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

/// Split a logical line into key and value as `Properties` does, decoding escapes; the value
/// is trimmed (ZooKeeper trims it).
fn split_property(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let is_ws = |c: char| c == ' ' || c == '\t' || c == '\x0c';
    let mut i = 0;
    let mut escaped = false;
    while i < chars.len() {
        let c = chars[i];
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_ws(c) {
            break;
        }
        i += 1;
    }
    let key: String = chars[..i].iter().collect();
    let mut j = i;
    while j < chars.len() && is_ws(chars[j]) {
        j += 1;
    }
    if j < chars.len() && (chars[j] == '=' || chars[j] == ':') {
        j += 1;
    }
    while j < chars.len() && is_ws(chars[j]) {
        j += 1;
    }
    let value: String = chars[j..].iter().collect();
    (unescape(&key), unescape(&value).trim().to_string())
}

/// `Properties`' escapes: `\t \n \r \f`, `\uXXXX`, and `\x` for any other `x`.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = it.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).filter(|_| hex.len() == 4) {
                    Some(ch) => {
                        out.push(ch);
                        for _ in 0..4 {
                            it.next();
                        }
                    }
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Parse zoo.cfg text. `file_name` is used in messages only. `id` is the server id this
/// process will run as: it replaces `{id}` and is checked against the `server.N` lines and
/// for a client port. Returns the config and the warnings (unknown or ignored keys, repeated
/// keys, clamped values), each prefixed with `file:line:`.
pub fn parse(
    text: &str,
    file_name: &str,
    id: Option<ServerId>,
) -> Result<(Config, Vec<String>), ConfigError> {
    parse_with_dynamic(text, file_name, None, id)
}

/// `parse`, plus the text and name of the `dynamicConfigFile` (server lines only).
pub fn parse_with_dynamic(
    text: &str,
    file_name: &str,
    dynamic: Option<(&str, &str)>,
    id: Option<ServerId>,
) -> Result<(Config, Vec<String>), ConfigError> {
    let mut p = Parser {
        file: file_name.to_string(),
        warnings: Vec::new(),
        seen: BTreeMap::new(),
        raw: Raw::default(),
    };
    for (n, line) in properties(text) {
        p.line(n, &line)?;
    }
    if let Some((dyn_text, dyn_name)) = dynamic {
        p.file = dyn_name.to_string();
        for (n, line) in properties(dyn_text) {
            p.dynamic_line(n, &line)?;
        }
        p.file = file_name.to_string();
    }
    let config = p.finish(id)?;
    Ok((config, p.warnings))
}

/// Values as read, before defaults and cross-key checks. `(line, value)` where the line
/// matters for later messages.
#[derive(Default)]
struct Raw {
    tick_time_ms: Option<Millis>,
    data_dir: Option<(usize, String)>,
    data_log_dir: Option<(usize, String)>,
    client_port: Option<(usize, u16)>,
    client_port_address: Option<IpAddr>,
    init_limit: Option<u32>,
    sync_limit: Option<u32>,
    max_client_cnxns: Option<u32>,
    jute_max_buffer: Option<u32>,
    global_outstanding_limit: Option<u32>,
    max_cnxns: Option<u32>,
    read_only_mode: Option<bool>,
    reconfig_enabled: Option<bool>,
    four_lw_whitelist: Option<FourLetterWhitelist>,
    super_digest: Option<SuperDigest>,
    snap_count: Option<u64>,
    commit_log_count: Option<u64>,
    force_sync: Option<bool>,
    autopurge_snap_retain_count: Option<u32>,
    autopurge_purge_interval_h: Option<u32>,
    pre_alloc_size_kb: Option<u64>,
    min_session_timeout_ms: Option<(usize, Millis)>,
    max_session_timeout_ms: Option<(usize, Millis)>,
    servers: BTreeMap<ServerId, ServerSpec>,
    config_version: Option<i64>,
    admin: AdminConfig,
    tls: TlsConfig,
    secure_client_port_line: Option<usize>,
}

struct Parser {
    file: String,
    warnings: Vec<String>,
    /// key -> first line it appeared on (repeat detection).
    seen: BTreeMap<String, usize>,
    raw: Raw,
}

impl Parser {
    fn bad(&self, line: usize, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn warn(&mut self, line: usize, msg: String) {
        self.warnings.push(format!("{}:{line}: {msg}", self.file));
    }

    /// A line of the dynamic config file: membership only.
    fn dynamic_line(&mut self, n: usize, line: &str) -> Result<(), ConfigError> {
        let (key, _) = split_property(line);
        let membership = key.starts_with("server.") || key.starts_with("group.") || key.starts_with("weight.");
        if key == "version" {
            let (_, value) = split_property(line);
            let v = i64::from_str_radix(value.trim(), 16).map_err(|_| ConfigError::BadLine {
                file: self.file.clone(),
                line: n,
                reason: format!("version: {value:?} is not a hexadecimal config version"),
            })?;
            self.raw.config_version = Some(v);
            return Ok(());
        }
        if !membership {
            return Err(ConfigError::BadLine {
                file: self.file.clone(),
                line: n,
                reason: format!("{key}: only server.N, group.N, weight.N and version lines belong in a dynamic config file"),
            });
        }
        self.line(n, line)
    }

    fn line(&mut self, n: usize, line: &str) -> Result<(), ConfigError> {
        let (key, value) = split_property(line);
        let (key, value) = (key.as_str(), value.as_str());
        if key.is_empty() {
            return Err(ConfigError::BadLine {
                file: self.file.clone(),
                line: n,
                reason: format!("empty key in {:?}", truncate(line, 60)),
            });
        }
        if let Some(first) = self.seen.get(key).copied() {
            if !key.starts_with("server.") {
                self.warn(
                    n,
                    format!("{key}: set again (first on line {first}); the last value wins"),
                );
            }
        } else {
            self.seen.insert(key.to_string(), n);
        }
        self.key(n, key, value)
    }

    fn key(&mut self, n: usize, key: &str, v: &str) -> Result<(), ConfigError> {
        match key {
            "tickTime" => self.raw.tick_time_ms = Some(self.millis(n, key, v)?),
            "dataDir" => self.raw.data_dir = Some((n, self.non_empty(n, key, v)?.to_string())),
            "dataLogDir" => {
                self.raw.data_log_dir = Some((n, self.non_empty(n, key, v)?.to_string()))
            }
            "clientPort" => self.raw.client_port = Some((n, self.port(n, key, v)?)),
            "clientPortAddress" => self.raw.client_port_address = Some(self.ip(n, key, v)?),
            "initLimit" => self.raw.init_limit = Some(self.positive(n, key, v)?),
            "syncLimit" => self.raw.sync_limit = Some(self.positive(n, key, v)?),
            "maxClientCnxns" => self.raw.max_client_cnxns = Some(self.number(n, key, v)?),
            "globalOutstandingLimit" => self.raw.global_outstanding_limit = Some(self.number(n, key, v)?),
            "maxCnxns" => self.raw.max_cnxns = Some(self.number(n, key, v)?),
            "readonlymode.enabled" => self.raw.read_only_mode = Some(self.yes_no(n, key, v)?),
            "reconfigEnabled" => self.raw.reconfig_enabled = Some(self.yes_no(n, key, v)?),
            "jute.maxbuffer" => self.raw.jute_max_buffer = Some(self.jute_max_buffer(n, key, v)?),
            "4lw.commands.whitelist" => self.raw.four_lw_whitelist = Some(self.whitelist(n, v)),
            "superDigest" => self.raw.super_digest = Some(self.super_digest(n, key, v)?),
            "snapCount" => self.raw.snap_count = Some(self.positive(n, key, v)?),
            "commitLogCount" => self.raw.commit_log_count = Some(self.positive(n, key, v)?),
            "forceSync" => self.raw.force_sync = Some(self.yes_no(n, key, v)?),
            "autopurge.snapRetainCount" => {
                let mut count: u32 = self.number(n, key, v)?;
                if count < 3 {
                    self.warn(n, format!("{key}: {count} is below the minimum 3; using 3"));
                    count = 3;
                }
                self.raw.autopurge_snap_retain_count = Some(count);
            }
            "autopurge.purgeInterval" => {
                self.raw.autopurge_purge_interval_h = Some(self.number(n, key, v)?)
            }
            "preAllocSize" => {
                let mut kb: u64 = self.positive(n, key, v)?;
                if kb < 64 {
                    self.warn(n, format!("{key}: {kb} KiB is below the minimum 64; using 64"));
                    kb = 64;
                }
                self.raw.pre_alloc_size_kb = Some(kb);
            }
            "minSessionTimeout" => {
                self.raw.min_session_timeout_ms = Some((n, self.millis(n, key, v)?))
            }
            "maxSessionTimeout" => {
                self.raw.max_session_timeout_ms = Some((n, self.millis(n, key, v)?))
            }
            "admin.enableServer" => self.raw.admin.enabled = self.yes_no(n, key, v)?,
            "admin.serverAddress" => self.raw.admin.address = self.ip(n, key, v)?,
            "admin.serverPort" => self.raw.admin.port = self.port(n, key, v)?,
            "admin.idleTimeout" => self.raw.admin.idle_timeout_ms = self.millis(n, key, v)?,
            "secureClientPort" => {
                self.raw.tls.secure_client_port = Some(self.port(n, key, v)?);
                self.raw.secure_client_port_line = Some(n);
            }
            "secureClientPortAddress" => self.raw.tls.secure_client_port_address = Some(self.ip(n, key, v)?),
            "sslQuorum" => self.raw.tls.ssl_quorum = self.yes_no(n, key, v)?,
            "X509AuthenticationProvider.superUser" => {
                self.raw.tls.x509_super_user = Some(self.non_empty(n, key, v)?.to_string())
            }
            _ if key.starts_with("secureClientPort.") => {
                let id = key["secureClientPort.".len()..]
                    .parse::<u64>()
                    .ok()
                    .filter(|id| (1..=MAX_SERVER_ID).contains(id))
                    .ok_or_else(|| self.bad(n, key, format!("expected secureClientPort.N with N in 1..={MAX_SERVER_ID}")))?;
                let port = self.port(n, key, v)?;
                self.raw.tls.secure_client_ports.insert(ServerId(id), port);
                self.raw.secure_client_port_line.get_or_insert(n);
            }
            _ if key.starts_with("ssl.quorum.") => self.ssl_key(n, key, true, v)?,
            _ if key.starts_with("ssl.") => self.ssl_key(n, key, false, v)?,
            _ if key.starts_with("admin.serverPort.") => {
                let id = key["admin.serverPort.".len()..]
                    .parse::<u64>()
                    .ok()
                    .filter(|id| (1..=MAX_SERVER_ID).contains(id))
                    .ok_or_else(|| self.bad(n, key, format!("expected admin.serverPort.N with N in 1..={MAX_SERVER_ID}")))?;
                let port = self.port(n, key, v)?;
                self.raw.admin.server_ports.insert(ServerId(id), port);
            }
            _ if key.starts_with("server.") => self.server(n, key, v)?,
            _ if key.starts_with("group.") || key.starts_with("weight.") => self.warn(
                n,
                format!("{key}: hierarchical quorums are not implemented by arbor; ignored"),
            ),
            _ if IGNORED_KEYS.contains(&key) || key.starts_with("sasl") =>
            {
                self.warn(n, format!("{key}: not implemented by arbor; ignored"))
            }
            // Read by `load` (the dynamic file's lines are fed separately).
            "dynamicConfigFile" => {}
            _ => match closest_key(key) {
                Some(k) => self.warn(n, format!("{key}: unknown key; ignored (did you mean {k}?)")),
                None => self.warn(n, format!("{key}: unknown key; ignored")),
            },
        }
        Ok(())
    }

    /// One `ssl.*` or `ssl.quorum.*` key.
    fn ssl_key(&mut self, n: usize, key: &str, quorum: bool, v: &str) -> Result<(), ConfigError> {
        let sub = if quorum { &key["ssl.quorum.".len()..] } else { &key["ssl.".len()..] };
        let stores = if quorum { &self.raw.tls.quorum } else { &self.raw.tls.client };
        let mut stores = stores.clone();
        match sub {
            "keyStore.location" => stores.key_store = Some((n, PathBuf::from(self.non_empty(n, key, v)?))),
            "trustStore.location" => stores.trust_store = Some((n, PathBuf::from(self.non_empty(n, key, v)?))),
            "keyStore.password" => stores.key_store_password = Some((n, Secret(v.to_string()))),
            // PEM trust stores are not encrypted; ZooKeeper ignores the password for them too.
            "trustStore.password" => stores.trust_store_password = Some((n, Secret(v.to_string()))),
            "keyStore.type" | "trustStore.type" => {
                // Empty: as if absent (ZooKeeper then goes by the file name).
                let t = match v {
                    "" => None,
                    _ => Some(StoreType::from_name(v).ok_or_else(|| {
                        self.bad(n, key, format!("{v:?} stores are not supported by arbor; PEM, PKCS12 or JKS"))
                    })?),
                };
                let slot = if sub == "keyStore.type" { &mut stores.key_store_type } else { &mut stores.trust_store_type };
                *slot = t.map(|t| (n, t));
            }
            "clientAuth" => {
                stores.client_auth = match v.to_ascii_lowercase().as_str() {
                    "" | "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Err(self.bad(n, key, format!("expected none, want or need, got {v:?}"))),
                }
            }
            "hostnameVerification" => stores.hostname_verification = self.yes_no(n, key, v)?,
            _ => self.warn(n, format!("{key}: not implemented by arbor; ignored")),
        }
        if let ("keyStore.location" | "trustStore.location", Some(ext)) =
            (sub, Path::new(v).extension().and_then(|e| e.to_str()))
        {
            // ZooKeeper infers the type from the extension when no type is set.
            if ext.eq_ignore_ascii_case("bcfks") {
                return Err(self.bad(n, key, format!("{v:?} looks like a BCFKS store; arbor reads PEM and PKCS#12 files")));
            }
        }
        if quorum {
            self.raw.tls.quorum = stores;
        } else {
            self.raw.tls.client = stores;
        }
        Ok(())
    }

    /// Cross-key checks of the TLS keys: a TLS listener needs a key store; verifying peers
    /// needs a trust store.
    fn check_tls(&self, tls: &TlsConfig, secure_line: Option<usize>) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { file: self.file.clone(), reason };
        let check = |s: &TlsStores, why: &str| -> Result<(), ConfigError> {
            let p = s.prefix;
            if s.key_store.is_none() {
                return Err(invalid(format!("{why} needs {p}.keyStore.location (a PEM or PKCS#12 file with the key and certificate)")));
            }
            if s.client_auth != ClientAuth::None && s.trust_store.is_none() {
                return Err(invalid(format!(
                    "{why} with {p}.clientAuth={} needs {p}.trustStore.location to verify client certificates (or set {p}.clientAuth=none)",
                    match s.client_auth {
                        ClientAuth::Need => "need (the default)",
                        _ => "want",
                    }
                )));
            }
            Ok(())
        };
        if let Some(line) = secure_line {
            check(&tls.client, &format!("secureClientPort (line {line})"))?;
        }
        if tls.ssl_quorum {
            check(&tls.quorum, "sslQuorum=true")?;
            if tls.quorum.trust_store.is_none() {
                return Err(invalid("sslQuorum=true needs ssl.quorum.trustStore.location to verify the servers we dial".into()));
            }
        }
        Ok(())
    }

    fn non_empty<'a>(&self, n: usize, key: &str, v: &'a str) -> Result<&'a str, ConfigError> {
        if v.is_empty() {
            Err(self.bad(n, key, "empty value"))
        } else {
            Ok(v)
        }
    }

    fn number<T: std::str::FromStr>(&self, n: usize, key: &str, v: &str) -> Result<T, ConfigError> {
        v.parse()
            .map_err(|_| self.bad(n, key, format!("bad number {v:?}")))
    }

    fn positive<T: std::str::FromStr + Default + PartialEq>(
        &self,
        n: usize,
        key: &str,
        v: &str,
    ) -> Result<T, ConfigError> {
        let x: T = self.number(n, key, v)?;
        if x == T::default() {
            return Err(self.bad(n, key, "must be greater than 0"));
        }
        Ok(x)
    }

    /// Milliseconds: positive and small enough for the protocol's int32 timeouts.
    fn millis(&self, n: usize, key: &str, v: &str) -> Result<Millis, ConfigError> {
        let x: u32 = self.positive(n, key, v)?;
        if x > i32::MAX as u32 {
            return Err(self.bad(n, key, format!("{x} ms is too large (max {})", i32::MAX)));
        }
        Ok(x as Millis)
    }

    fn port(&self, n: usize, key: &str, v: &str) -> Result<u16, ConfigError> {
        match v.parse::<u16>() {
            Ok(p) if p != 0 => Ok(p),
            _ => Err(self.bad(n, key, format!("bad port {v:?}"))),
        }
    }

    fn ip(&self, n: usize, key: &str, v: &str) -> Result<IpAddr, ConfigError> {
        let s = v
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(v);
        s.parse().map_err(|_| {
            self.bad(
                n,
                key,
                format!("bad IP address {v:?} (host names are not resolved)"),
            )
        })
    }

    /// Java's `Integer.decode`, as ZooKeeper reads the system property: decimal or `0x` hex.
    fn jute_max_buffer(&self, n: usize, key: &str, v: &str) -> Result<u32, ConfigError> {
        let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => v.parse::<u32>().ok(),
        };
        match parsed {
            Some(x) if x > 0 && x <= i32::MAX as u32 => Ok(x),
            _ => Err(self.bad(
                n,
                key,
                format!("bad size {v:?} (bytes, 1..=2147483647, decimal or 0x hex)"),
            )),
        }
    }

    fn yes_no(&self, n: usize, key: &str, v: &str) -> Result<bool, ConfigError> {
        match v.to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" => Ok(false),
            _ => Err(self.bad(n, key, format!("expected yes or no, got {v:?}"))),
        }
    }

    fn whitelist(&mut self, n: usize, v: &str) -> FourLetterWhitelist {
        for w in v
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty() && *w != "*")
        {
            if !FOUR_LETTER_WORDS.contains(&w) {
                self.warn(
                    n,
                    format!("4lw.commands.whitelist: unknown four-letter word {w:?}"),
                );
            }
        }
        FourLetterWhitelist::parse_list(v)
    }

    fn super_digest(&self, n: usize, key: &str, v: &str) -> Result<SuperDigest, ConfigError> {
        let Some((user, digest)) = v.split_once(':') else {
            return Err(self.bad(n, key, format!("expected user:<base64 sha1>, got {v:?}")));
        };
        if user.is_empty() {
            return Err(self.bad(n, key, "empty user name"));
        }
        match base64::engine::general_purpose::STANDARD.decode(digest) {
            Ok(bytes) if bytes.len() == 20 => Ok(SuperDigest {
                user: user.to_string(),
                digest: digest.to_string(),
            }),
            _ => Err(self.bad(
                n,
                key,
                format!("digest {digest:?} is not the base64 of a 20-byte SHA-1"),
            )),
        }
    }

    /// `server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`
    fn server(&mut self, n: usize, key: &str, v: &str) -> Result<(), ConfigError> {
        let id_text = &key["server.".len()..];
        let id = match id_text.parse::<u64>() {
            Ok(id) if (1..=MAX_SERVER_ID).contains(&id) => ServerId(id),
            _ => {
                return Err(self.bad(
                    n,
                    key,
                    format!("bad server id {id_text:?} (1..={MAX_SERVER_ID})"),
                ))
            }
        };
        if let Some(prev) = self.raw.servers.get(&id) {
            return Err(self.bad(
                n,
                key,
                format!("duplicate server id {id} (first on line {})", prev.line),
            ));
        }
        if v.contains('|') {
            return Err(self.bad(n, key, "multiple addresses ('|') are not supported"));
        }
        let (peer, client) = match v.split_once(';') {
            Some((p, c)) => (p.trim(), Some(c.trim())),
            None => (v, None),
        };
        let (host, rest) =
            split_host(peer).ok_or_else(|| self.bad(n, key, format!("bad host in {peer:?}")))?;
        let fields: Vec<&str> = rest.split(':').collect();
        if fields.len() < 2 || fields.len() > 3 {
            return Err(self.bad(
                n,
                key,
                format!(
                    "expected host:quorumPort:electionPort[:participant|:observer], got {peer:?}"
                ),
            ));
        }
        let quorum_port = self.port(n, key, fields[0])?;
        let election_port = self.port(n, key, fields[1])?;
        if quorum_port == election_port {
            return Err(self.bad(
                n,
                key,
                format!("quorum and election port are both {quorum_port}"),
            ));
        }
        let role = match fields.get(2).map(|r| r.to_ascii_lowercase()) {
            None => Role::Participant,
            Some(r) if r == "participant" => Role::Participant,
            Some(r) if r == "observer" => Role::Observer,
            Some(_) => {
                return Err(self.bad(
                    n,
                    key,
                    format!(
                        "bad role {:?} (expected participant or observer)",
                        fields[2]
                    ),
                ))
            }
        };
        let client_addr = match client {
            None => None,
            Some(c) => Some(self.client_part(n, key, c)?),
        };
        let spec = ServerSpec {
            host: host.to_string(),
            quorum_port,
            election_port,
            role,
            client_addr,
            line: n,
        };
        self.check_ports(id, &spec)?;
        self.raw.servers.insert(id, spec);
        Ok(())
    }

    /// `[clientHost:]clientPort`; a bare port binds 0.0.0.0 (ZooKeeper's rule).
    fn client_part(&self, n: usize, key: &str, c: &str) -> Result<SocketAddr, ConfigError> {
        match c.rsplit_once(':') {
            None => Ok(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                self.port(n, key, c)?,
            )),
            Some((h, p)) => {
                let ip = self.ip(n, key, h)?;
                Ok(SocketAddr::new(ip, self.port(n, key, p)?))
            }
        }
    }

    /// No two listeners on the same host and port. A client port on 0.0.0.0 listens on the
    /// server's own host.
    fn check_ports(&self, id: ServerId, spec: &ServerSpec) -> Result<(), ConfigError> {
        let endpoints = |s: &ServerSpec| {
            let mut v = vec![
                (s.host.clone(), s.quorum_port, "quorum"),
                (s.host.clone(), s.election_port, "election"),
            ];
            if let Some(a) = s.client_addr {
                let h = if a.ip().is_unspecified() {
                    s.host.clone()
                } else {
                    a.ip().to_string()
                };
                v.push((h, a.port(), "client"));
            }
            v
        };
        let mine = endpoints(spec);
        if let Some((_, p, _)) = mine.iter().find(|(_, p, what)| {
            *what == "client" && (*p == spec.quorum_port || *p == spec.election_port)
        }) {
            return Err(self.bad(
                spec.line,
                &format!("server.{id}"),
                format!("port {p} is used twice on this line"),
            ));
        }
        for (other_id, other) in &self.raw.servers {
            for (h, p, what) in &mine {
                if let Some((_, _, other_what)) = endpoints(other)
                    .into_iter()
                    .find(|(oh, op, _)| oh == h && op == p)
                {
                    return Err(self.bad(
                        spec.line,
                        &format!("server.{id}"),
                        format!("{what} port {p} on {h} is already the {other_what} port of server.{other_id} (line {})", other.line),
                    ));
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, id: Option<ServerId>) -> Result<Config, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            file: self.file.clone(),
            reason,
        };
        if let Some(id) = id {
            if !(1..=MAX_SERVER_ID).contains(&id.0) {
                return Err(invalid(format!(
                    "server id {id} is out of range (1..={MAX_SERVER_ID})"
                )));
            }
        }
        let raw = std::mem::take(&mut self.raw);
        let (dd_line, dd) = raw
            .data_dir
            .ok_or_else(|| invalid("missing required key dataDir".into()))?;
        let data_dir = self.expand_id(dd_line, "dataDir", &dd, id)?;
        let data_log_dir = match raw.data_log_dir {
            Some((line, d)) => self.expand_id(line, "dataLogDir", &d, id)?,
            None => data_dir.clone(),
        };
        let tick = raw.tick_time_ms.unwrap_or(2000);
        let min_session = raw
            .min_session_timeout_ms
            .map(|(_, t)| t)
            .unwrap_or(2 * tick);
        let max_session = raw
            .max_session_timeout_ms
            .map(|(_, t)| t)
            .unwrap_or(20 * tick);
        if min_session > max_session {
            let line = raw
                .max_session_timeout_ms
                .or(raw.min_session_timeout_ms)
                .map(|(l, _)| l)
                .unwrap_or(0);
            return Err(ConfigError::BadValue {
                file: self.file.clone(),
                line,
                key: "maxSessionTimeout".into(),
                reason: format!("minSessionTimeout {min_session} ms is larger than maxSessionTimeout {max_session} ms"),
            });
        }
        self.check_tls(&raw.tls, raw.secure_client_port_line)?;
        let config = Config {
            file_name: self.file.clone(),
            server_id: id,
            tick_time_ms: tick,
            data_dir,
            data_log_dir,
            client_port: raw.client_port.map(|(_, p)| p),
            client_port_address: raw.client_port_address,
            init_limit: raw.init_limit.unwrap_or(10),
            sync_limit: raw.sync_limit.unwrap_or(5),
            max_client_cnxns: raw.max_client_cnxns.unwrap_or(0),
            jute_max_buffer: raw.jute_max_buffer.unwrap_or(DEFAULT_JUTE_MAX_BUFFER),
            // ZooKeeper's default; at least 1 so that a session always progresses.
            global_outstanding_limit: raw.global_outstanding_limit.unwrap_or(1000).max(1),
            max_cnxns: raw.max_cnxns.unwrap_or(0),
            read_only_mode: raw.read_only_mode.unwrap_or(false),
            reconfig_enabled: raw.reconfig_enabled.unwrap_or(false),
            four_lw_whitelist: raw
                .four_lw_whitelist
                .unwrap_or_else(FourLetterWhitelist::zookeeper_default),
            super_digest: raw.super_digest,
            snap_count: raw.snap_count.unwrap_or(100_000),
            commit_log_count: raw.commit_log_count.unwrap_or(500),
            force_sync: raw.force_sync.unwrap_or(true),
            autopurge_snap_retain_count: raw.autopurge_snap_retain_count.unwrap_or(3),
            autopurge_purge_interval_h: raw.autopurge_purge_interval_h.unwrap_or(0),
            pre_alloc_size_kb: raw.pre_alloc_size_kb.unwrap_or(65536),
            min_session_timeout_ms: min_session,
            max_session_timeout_ms: max_session,
            servers: raw.servers,
            config_version: raw.config_version.unwrap_or(0),
            admin: raw.admin,
            tls: raw.tls,
        };
        self.check_client_ports(&config, id, raw.client_port)?;
        Ok(config)
    }

    /// Every node that may run from this file needs a client port; with an id, this node's
    /// `server.N` line (if any) must exist and agree with `clientPort`.
    fn check_client_ports(
        &self,
        c: &Config,
        id: Option<ServerId>,
        client_port: Option<(usize, u16)>,
    ) -> Result<(), ConfigError> {
        let Some(id) = id else {
            if c.client_port.is_some() || c.tls.secure_client_port.is_some() || !c.tls.secure_client_ports.is_empty() {
                return Ok(());
            }
            if c.servers.is_empty() {
                return Err(ConfigError::Invalid {
                    file: self.file.clone(),
                    reason: "missing required key clientPort".into(),
                });
            }
            if let Some((sid, _)) = c.servers.iter().find(|(_, s)| s.client_addr.is_none()) {
                return Err(ConfigError::Invalid {
                    file: self.file.clone(),
                    reason: format!("missing client port for server {sid}: set clientPort or add ';[host:]port' to server.{sid}"),
                });
            }
            return Ok(());
        };
        if let (Ok(Some(plain)), Some(secure)) = (c.plain_client_addr(id), c.secure_client_addr(id)) {
            if plain.port() == secure.port() && (plain.ip() == secure.ip() || plain.ip().is_unspecified() || secure.ip().is_unspecified()) {
                return Err(ConfigError::Invalid {
                    file: self.file.clone(),
                    reason: format!("server {id}: the secure client port {} is also its plain client port", secure.port()),
                });
            }
        }
        c.plain_client_addr(id)?;
        if let (Some((line, port)), Some(spec)) = (client_port, c.servers.get(&id)) {
            if let Some(addr) = spec.client_addr {
                if addr.port() != port {
                    return Err(self.bad(
                        line,
                        "clientPort",
                        format!(
                            "{port} differs from the client port {} on server.{id} (line {})",
                            addr.port(),
                            spec.line
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn expand_id(
        &self,
        line: usize,
        key: &str,
        dir: &str,
        id: Option<ServerId>,
    ) -> Result<PathBuf, ConfigError> {
        if !dir.contains("{id}") {
            return Ok(PathBuf::from(dir));
        }
        match id {
            Some(id) => Ok(PathBuf::from(dir.replace("{id}", &id.0.to_string()))),
            None => Err(self.bad(line, key, "contains {id} but no server id was given")),
        }
    }
}

/// Split `host:rest`, where host may be `[ipv6]`. Returns the host without brackets.
fn split_host(s: &str) -> Option<(&str, &str)> {
    if let Some(r) = s.strip_prefix('[') {
        let (h, rest) = r.split_once(']')?;
        let rest = rest.strip_prefix(':')?;
        return (!h.is_empty()).then_some((h, rest));
    }
    let (h, rest) = s.split_once(':')?;
    (!h.is_empty()).then_some((h, rest))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPER: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

    fn ok(text: &str, id: Option<u64>) -> (Config, Vec<String>) {
        match parse(text, "t.cfg", id.map(ServerId)) {
            Ok(r) => r,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn err(text: &str, id: Option<u64>) -> String {
        match parse(text, "t.cfg", id.map(ServerId)) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn tls_keys_are_read_with_zookeeper_defaults() {
        let (c, w) = ok(
            "dataDir=/d\nclientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location=/ca.pem\nssl.trustStore.type=pem\nssl.protocol=TLSv1.2\n",
            Some(1),
        );
        assert_eq!(c.tls.secure_client_port, Some(2281));
        assert_eq!(c.tls.client.key_store, Some((4, PathBuf::from("/k.pem"))));
        assert_eq!(c.tls.client.trust_store, Some((6, PathBuf::from("/ca.pem"))));
        // ZooKeeper's default clientAuth is need.
        assert_eq!(c.tls.client.client_auth, ClientAuth::Need);
        assert!(!c.tls.ssl_quorum);
        assert_eq!(c.secure_client_addr(ServerId(1)), Some(sa("0.0.0.0:2281")));
        assert_eq!(c.plain_client_addr(ServerId(1)).ok().flatten(), Some(sa("0.0.0.0:2181")));
        assert!(w.iter().any(|w| w.contains("t.cfg:8: ssl.protocol: not implemented")), "{w:?}");
    }

    #[test]
    fn secure_port_may_replace_the_client_port_and_be_per_server() {
        let (c, _) = ok("dataDir=/d\nclientPortAddress=127.0.0.1\nsecureClientPort=2281\nssl.keyStore.location=/k\nssl.clientAuth=none\n", Some(1));
        assert_eq!(c.plain_client_addr(ServerId(1)).ok().flatten(), None);
        assert_eq!(c.secure_client_addr(ServerId(1)), Some(sa("127.0.0.1:2281")));
        let (c, _) = ok(
            "dataDir=/d/{id}\nserver.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2182\n\
             secureClientPort.1=2281\nsecureClientPort.2=2282\nssl.keyStore.location=/k\nssl.clientAuth=want\nssl.trustStore.location=/t\n\
             sslQuorum=true\nssl.quorum.keyStore.location=/qk\nssl.quorum.trustStore.location=/qt\nssl.quorum.hostnameVerification=false\n",
            Some(2),
        );
        assert_eq!(c.secure_client_addr(ServerId(2)).map(|a| a.port()), Some(2282));
        assert_eq!(c.tls.client.client_auth, ClientAuth::Want);
        assert!(c.tls.ssl_quorum);
        assert_eq!(c.tls.quorum.key_store, Some((10, PathBuf::from("/qk"))));
        assert!(!c.tls.quorum.hostname_verification);
        assert!(c.tls.client.hostname_verification);
        let (c, _) = ok("dataDir=/d/{id}\nserver.1=h:1:2;127.0.0.1:3\nserver.2=h:4:5;6\nsecureClientPort=7\nssl.keyStore.location=/k\nssl.clientAuth=none\n", Some(1));
        assert_eq!(c.secure_client_addr(ServerId(1)), Some(sa("127.0.0.1:7")), "the server line's client host");
    }

    /// The store type: the type key (any case), else the file name's extension as in
    /// ZooKeeper's `KeyStoreFileType.fromFilename`, else PEM; passwords never shown by Debug.
    #[test]
    fn store_types_come_from_the_type_key_or_the_file_name() {
        let (c, w) = ok(
            "dataDir=/d\nclientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k.P12\nssl.keyStore.password=s3cret\n\
             ssl.trustStore.location=/t.pem\nssl.trustStore.type=pkcs12\nssl.trustStore.password=\n\
             sslQuorum=true\nssl.quorum.keyStore.location=/q.jks\nssl.quorum.trustStore.location=/q\n\
             ssl.quorum.keyStore.type=\nserver.1=h:1:2;2181\nserver.2=h:3:4;2182\n",
            Some(1),
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.tls.client.key_store_kind(), StoreType::Pkcs12);
        assert_eq!(c.tls.client.trust_store_kind(), StoreType::Pkcs12, "the type key wins over .pem");
        assert_eq!(c.tls.client.trust_store_type, Some((7, StoreType::Pkcs12)));
        assert_eq!(c.tls.client.key_store_password.as_ref().map(|(l, p)| (*l, p.expose())), Some((5, "s3cret")));
        assert_eq!(c.tls.client.trust_store_password.as_ref().map(|(l, p)| (*l, p.expose())), Some((8, "")));
        assert_eq!(c.tls.quorum.key_store_kind(), StoreType::Jks, "an empty type is absent");
        assert_eq!(c.tls.quorum.trust_store_kind(), StoreType::Pem, "no extension: PEM");
        assert!(!format!("{c:?}").contains("s3cret"), "a password in Debug output");
    }

    #[test]
    fn bad_tls_settings_name_the_line() {
        let e = err("dataDir=/d\nclientPort=2181\nssl.clientAuth=maybe\n", Some(1));
        assert!(e.contains("t.cfg:3: ssl.clientAuth: expected none, want or need"), "{e}");
        let e = err("dataDir=/d\nclientPort=2181\nssl.quorum.trustStore.type=BCFKS\n", Some(1));
        assert!(e.contains("t.cfg:3: ssl.quorum.trustStore.type") && e.contains("PEM, PKCS12 or JKS"), "{e}");
        let e = err("dataDir=/d\nclientPort=2181\nssl.keyStore.location=/x/keystore.bcfks\n", Some(1));
        assert!(e.contains("t.cfg:3: ssl.keyStore.location") && e.contains("BCFKS"), "{e}");
        let e = err("dataDir=/d\nclientPort=2181\nsecureClientPort=2281\n", Some(1));
        assert!(e.contains("secureClientPort (line 3) needs ssl.keyStore.location"), "{e}");
        let e = err("dataDir=/d\nclientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k\n", Some(1));
        assert!(e.contains("ssl.clientAuth=need (the default) needs ssl.trustStore.location"), "{e}");
        let e = err("dataDir=/d\nclientPort=2181\nsecureClientPort=2181\nssl.keyStore.location=/k\nssl.clientAuth=none\n", Some(1));
        assert!(e.contains("secure client port 2181 is also its plain client port"), "{e}");
        let e = err("dataDir=/d\nserver.1=h:1:2;3\nserver.2=h:4:5;6\nsslQuorum=true\nssl.quorum.keyStore.location=/k\n", Some(1));
        assert!(e.contains("sslQuorum=true") && e.contains("ssl.quorum.trustStore.location"), "{e}");
        let e = err("dataDir=/d\nclientPort=2181\nsecureClientPort.x=1\n", Some(1));
        assert!(e.contains("t.cfg:3: secureClientPort.x"), "{e}");
    }

    #[test]
    fn minimal_standalone_gets_zookeeper_defaults() {
        let (c, w) = ok("dataDir=/d\nclientPort=2181\n", Some(1));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.data_log_dir, PathBuf::from("/d"));
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.client_port_address, None);
        assert_eq!(c.init_limit, 10);
        assert_eq!(c.sync_limit, 5);
        assert_eq!(c.max_client_cnxns, 0);
        assert_eq!(c.jute_max_buffer, 0xfffff);
        assert_eq!(
            c.four_lw_whitelist,
            FourLetterWhitelist::zookeeper_default()
        );
        assert_eq!(c.super_digest, None);
        assert_eq!(c.snap_count, 100_000);
        assert!(c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.autopurge_purge_interval_h, 0);
        assert_eq!(c.min_session_timeout_ms, 4000);
        assert_eq!(c.max_session_timeout_ms, 40000);
        assert!(c.servers.is_empty());
        assert!(c.is_standalone());
        assert_eq!(c.quorum_size(), 1);
        assert_eq!(c.server_id, Some(ServerId(1)));
        assert_eq!(c.client_addr(ServerId(1)).unwrap(), sa("0.0.0.0:2181"));
    }

    #[test]
    fn every_key_is_read() {
        let text = format!(
            "tickTime=500\ndataDir=/data\ndataLogDir=/log\nclientPort=3000\nclientPortAddress=127.0.0.1\n\
             initLimit=7\nsyncLimit=3\nmaxClientCnxns=60\njute.maxbuffer=4194304\n\
             4lw.commands.whitelist=ruok, stat ,mntr\nsuperDigest={SUPER}\nsnapCount=5000\nforceSync=no\n\
             autopurge.snapRetainCount=5\nautopurge.purgeInterval=24\nminSessionTimeout=1000\nmaxSessionTimeout=9000\n"
        );
        let (c, w) = ok(&text, Some(1));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.tick_time_ms, 500);
        assert_eq!(c.data_dir, PathBuf::from("/data"));
        assert_eq!(c.data_log_dir, PathBuf::from("/log"));
        assert_eq!(c.client_port_address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((c.init_limit, c.sync_limit, c.max_client_cnxns), (7, 3, 60));
        assert_eq!(c.jute_max_buffer, 4 << 20);
        assert_eq!(
            c.super_digest,
            Some(SuperDigest {
                user: "super".into(),
                digest: "D/InIHSb7yEEbrWz8b9l71RjZJU=".into()
            })
        );
        assert_eq!(c.snap_count, 5000);
        assert!(!c.force_sync);
        assert_eq!(
            (c.autopurge_snap_retain_count, c.autopurge_purge_interval_h),
            (5, 24)
        );
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (1000, 9000)
        );
        assert_eq!(c.client_addr(ServerId(1)).unwrap(), sa("127.0.0.1:3000"));
        let words: Vec<&str> = c.four_lw_whitelist.words().collect();
        assert_eq!(words, ["mntr", "ruok", "srvr", "stat"]);
    }

    #[test]
    fn session_timeout_defaults_follow_tick_time() {
        let (c, _) = ok("tickTime=100\ndataDir=/d\nclientPort=1\n", None);
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (200, 2000)
        );
        let (c, _) = ok(
            "tickTime=100\ndataDir=/d\nclientPort=1\nminSessionTimeout=50\n",
            None,
        );
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (50, 2000)
        );
    }

    #[test]
    fn min_session_timeout_above_max_is_an_error() {
        let e = err(
            "dataDir=/d\nclientPort=1\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n",
            None,
        );
        assert_eq!(e, "t.cfg:4: maxSessionTimeout: minSessionTimeout 5000 ms is larger than maxSessionTimeout 4000 ms");
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let text = "# header\n\n   \n  dataDir = /d  \n\t# indented comment\nclientPort=\t2181\n";
        let (c, w) = ok(text, None);
        assert!(w.is_empty());
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.client_port, Some(2181));
    }

    #[test]
    fn value_may_contain_equals_sign() {
        let (c, _) = ok(
            &format!("dataDir=/d\nclientPort=1\nsuperDigest={SUPER}\n"),
            None,
        );
        assert_eq!(
            c.super_digest.unwrap().digest,
            "D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn id_placeholder_is_replaced_in_data_dirs() {
        let (c, _) = ok("dataDir=/tmp/arbor/{id}\nclientPort=1\n", Some(3));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/arbor/3"));
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/arbor/3"));
        let (c, _) = ok(
            "dataDir=/a/{id}\ndataLogDir=/b/{id}/log\nclientPort=1\n",
            Some(12),
        );
        assert_eq!(c.data_dir, PathBuf::from("/a/12"));
        assert_eq!(c.data_log_dir, PathBuf::from("/b/12/log"));
    }

    #[test]
    fn id_placeholder_without_an_id_is_an_error() {
        assert_eq!(
            err("clientPort=1\ndataDir=/a/{id}\n", None),
            "t.cfg:2: dataDir: contains {id} but no server id was given"
        );
        assert_eq!(
            err("dataDir=/a\ndataLogDir=/b/{id}\nclientPort=1\n", None),
            "t.cfg:2: dataLogDir: contains {id} but no server id was given"
        );
    }

    #[test]
    fn four_letter_whitelist_follows_zookeeper() {
        let (c, _) = ok("dataDir=/d\nclientPort=1\n", None);
        assert!(c.four_lw_whitelist.allows("srvr"));
        assert!(
            !c.four_lw_whitelist.allows("ruok"),
            "absent key allows only srvr"
        );
        let (c, _) = ok("dataDir=/d\nclientPort=1\n4lw.commands.whitelist=*\n", None);
        for w in FOUR_LETTER_WORDS {
            assert!(c.four_lw_whitelist.allows(w), "{w}");
        }
        let (c, _) = ok(
            "dataDir=/d\nclientPort=1\n4lw.commands.whitelist=ruok\n",
            None,
        );
        assert!(c.four_lw_whitelist.allows("ruok"));
        assert!(c.four_lw_whitelist.allows("srvr"), "srvr is always on");
        assert!(!c.four_lw_whitelist.allows("stat"));
        let (c, _) = ok("dataDir=/d\nclientPort=1\n4lw.commands.whitelist=\n", None);
        assert_eq!(
            c.four_lw_whitelist,
            FourLetterWhitelist::zookeeper_default()
        );
    }

    #[test]
    fn unknown_four_letter_word_warns() {
        let (_, w) = ok(
            "dataDir=/d\nclientPort=1\n4lw.commands.whitelist=ruok,xyzw\n",
            None,
        );
        assert_eq!(
            w,
            ["t.cfg:3: 4lw.commands.whitelist: unknown four-letter word \"xyzw\""]
        );
    }

    #[test]
    fn unknown_key_is_a_warning_not_an_error() {
        let (c, w) = ok("dataDir=/d\nfrobnicate=yes\nclientPort=1\n", None);
        assert_eq!(c.client_port, Some(1));
        assert_eq!(w, ["t.cfg:2: frobnicate: unknown key; ignored"]);
    }

    #[test]
    fn unimplemented_zookeeper_keys_warn() {
        let text = "dataDir=/d\nclientPort=1\nadmin.commandURL=/c\nreconfigEnabled=true\n\
                    standaloneEnabled=false\nlocalSessionsEnabled=false\nlocalSessionsUpgradingEnabled=false\n\
                    preAllocSize=1024\nglobalOutstandingLimit=17\nssl.ciphersuites=X\n";
        let (c, w) = ok(text, None);
        assert_eq!(c.pre_alloc_size_kb, 1024, "preAllocSize is implemented (txn log segment size)");
        assert_eq!(c.global_outstanding_limit, 17, "globalOutstandingLimit is implemented");
        assert!(c.reconfig_enabled, "reconfigEnabled is implemented");
        assert_eq!(w.len(), 5, "{w:?}");
        assert_eq!(
            w[0],
            "t.cfg:3: admin.commandURL: not implemented by arbor; ignored"
        );
        assert!(
            w.iter()
                .all(|m| m.ends_with("not implemented by arbor; ignored")),
            "{w:?}"
        );
    }

    #[test]
    fn repeated_key_warns_and_last_wins() {
        let (c, w) = ok("dataDir=/d\nclientPort=1\nclientPort=2\n", None);
        assert_eq!(c.client_port, Some(2));
        assert_eq!(
            w,
            ["t.cfg:3: clientPort: set again (first on line 2); the last value wins"]
        );
    }

    #[test]
    fn retain_count_below_three_is_raised_with_a_warning() {
        let (c, w) = ok(
            "dataDir=/d\nclientPort=1\nautopurge.snapRetainCount=1\n",
            None,
        );
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(
            w,
            ["t.cfg:3: autopurge.snapRetainCount: 1 is below the minimum 3; using 3"]
        );
    }

    #[test]
    fn jute_maxbuffer_accepts_hex() {
        let (c, _) = ok("dataDir=/d\nclientPort=1\njute.maxbuffer=0x100000\n", None);
        assert_eq!(c.jute_max_buffer, 0x100000);
    }

    #[test]
    fn force_sync_values() {
        for (v, want) in [
            ("yes", true),
            ("no", false),
            ("YES", true),
            ("No", false),
            ("true", true),
            ("false", false),
        ] {
            let (c, _) = ok(&format!("dataDir=/d\nclientPort=1\nforceSync={v}\n"), None);
            assert_eq!(c.force_sync, want, "{v}");
        }
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let cases: &[(&str, &str)] = &[
            ("tickTime=fast", "t.cfg:2: tickTime: bad number \"fast\""),
            ("tickTime=0", "t.cfg:2: tickTime: must be greater than 0"),
            ("tickTime=-5", "t.cfg:2: tickTime: bad number \"-5\""),
            ("clientPort=70000", "t.cfg:2: clientPort: bad port \"70000\""),
            ("clientPort=0", "t.cfg:2: clientPort: bad port \"0\""),
            ("clientPortAddress=localhost", "t.cfg:2: clientPortAddress: bad IP address \"localhost\" (host names are not resolved)"),
            ("initLimit=0", "t.cfg:2: initLimit: must be greater than 0"),
            ("syncLimit=x", "t.cfg:2: syncLimit: bad number \"x\""),
            ("maxClientCnxns=-1", "t.cfg:2: maxClientCnxns: bad number \"-1\""),
            ("jute.maxbuffer=0", "t.cfg:2: jute.maxbuffer: bad size \"0\" (bytes, 1..=2147483647, decimal or 0x hex)"),
            ("jute.maxbuffer=0xzz", "t.cfg:2: jute.maxbuffer: bad size \"0xzz\" (bytes, 1..=2147483647, decimal or 0x hex)"),
            ("superDigest=nocolon", "t.cfg:2: superDigest: expected user:<base64 sha1>, got \"nocolon\""),
            ("superDigest=:abc", "t.cfg:2: superDigest: empty user name"),
            ("superDigest=super:abc", "t.cfg:2: superDigest: digest \"abc\" is not the base64 of a 20-byte SHA-1"),
            ("snapCount=0", "t.cfg:2: snapCount: must be greater than 0"),
            ("forceSync=maybe", "t.cfg:2: forceSync: expected yes or no, got \"maybe\""),
            ("autopurge.purgeInterval=x", "t.cfg:2: autopurge.purgeInterval: bad number \"x\""),
            ("maxSessionTimeout=3000000000", "t.cfg:2: maxSessionTimeout: 3000000000 ms is too large (max 2147483647)"),
            ("dataLogDir=", "t.cfg:2: dataLogDir: empty value"),
        ];
        for (line, want) in cases {
            let text = format!("clientPort=1\n{line}\ndataDir=/d\n");
            assert_eq!(&err(&text, None), want, "line {line:?}");
        }
    }

    /// `java.util.Properties` rules, as ZooKeeper reads zoo.cfg.
    #[test]
    fn java_properties_separators_comments_and_continuations() {
        let text = "! a bang comment\ndataDir /d\nclientPort: 2181\ntickTime   =  3000\n\
                    4lw.commands.whitelist=ruok, \\\n    srvr,\\\n\tmntr\nsuperDigest\\u003dx=super:a\\=b\n";
        let (c, w) = ok(text, None);
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.tick_time_ms, 3000);
        assert!(c.four_lw_whitelist.allows("mntr") && c.four_lw_whitelist.allows("ruok"));
        // An escaped '=' belongs to the key: `superDigest=x` is not a known key.
        assert!(c.super_digest.is_none());
        assert_eq!(w, ["t.cfg:8: superDigest=x: unknown key; ignored (did you mean superDigest?)"]);
        // A continued line's errors name the line it starts on.
        assert_eq!(err("dataDir=/d\nclientPort=1\ntickTime=\\\n  20x0\n", None), "t.cfg:3: tickTime: bad number \"20x0\"");
        assert_eq!(err("=5\n", None), "t.cfg:1: empty key in \"=5\"");
        // A key alone has an empty value.
        assert_eq!(err("dataDir=/d\nclientPort\n", None), "t.cfg:2: clientPort: bad port \"\"");
    }

    #[test]
    fn unknown_key_names_the_closest_known_one() {
        let (_, w) = ok("dataDir=/d\nclientPort=1\ntickTmie=2000\nsnapcount=5\nmaxClientCnxn=3\nzzz=1\n", None);
        assert_eq!(
            w,
            [
                "t.cfg:3: tickTmie: unknown key; ignored (did you mean tickTime?)",
                "t.cfg:4: snapcount: unknown key; ignored (did you mean snapCount?)",
                "t.cfg:5: maxClientCnxn: unknown key; ignored (did you mean maxClientCnxns?)",
                "t.cfg:6: zzz: unknown key; ignored",
            ]
        );
    }

    #[test]
    fn dynamic_config_file_holds_the_server_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dynamic = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                       server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                       server.3=127.0.0.1:2890:3890:observer;127.0.0.1:2183\nversion=100000000\n";
        std::fs::write(dir.path().join("zoo.cfg.dynamic.100000000"), dynamic).expect("write");
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, "dataDir=/d\nclientPort=2182\ndynamicConfigFile=zoo.cfg.dynamic.100000000\n").expect("write");
        let (c, w) = load(&cfg, Some(ServerId(2))).expect("loads");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[&ServerId(3)].role, Role::Observer);
        assert_eq!(c.client_addr(ServerId(2)).unwrap(), sa("0.0.0.0:2182"));
        // Anything but membership in the dynamic file is an error naming it and the line.
        std::fs::write(dir.path().join("zoo.cfg.dynamic.100000000"), format!("{dynamic}tickTime=5\n")).expect("write");
        let e = load(&cfg, Some(ServerId(2))).unwrap_err().to_string();
        assert!(e.contains("zoo.cfg.dynamic.100000000:5: tickTime: only server.N"), "{e}");
        // A missing dynamic file names it.
        std::fs::write(&cfg, "dataDir=/d\nclientPort=2182\ndynamicConfigFile=/nonexistent/zoo.cfg.dynamic\n").expect("write");
        let e = load(&cfg, Some(ServerId(2))).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/zoo.cfg.dynamic: cannot read"), "{e}");
    }

    #[test]
    fn missing_data_dir_names_the_file() {
        assert_eq!(
            err("clientPort=2181\n", None),
            "t.cfg: missing required key dataDir"
        );
    }

    #[test]
    fn missing_client_port_names_the_file() {
        assert_eq!(
            err("dataDir=/d\n", None),
            "t.cfg: missing required key clientPort"
        );
        assert_eq!(
            err("dataDir=/d\n", Some(1)),
            "t.cfg: missing client port for server 1: set clientPort or add ';[host:]port' to server.1"
        );
        let three = "dataDir=/d\nserver.1=h1:2888:3888;2181\nserver.2=h2:2888:3888\nserver.3=h3:2888:3888;2181\n";
        assert_eq!(
            err(three, None),
            "t.cfg: missing client port for server 2: set clientPort or add ';[host:]port' to server.2"
        );
        assert!(
            parse(three, "t.cfg", Some(ServerId(1))).is_ok(),
            "node 1 has its own client port"
        );
        assert!(err(three, Some(2)).contains("missing client port for server 2"));
    }

    #[test]
    fn server_line_with_bare_client_port() {
        let (c, _) = ok("dataDir=/d\nserver.1=127.0.0.1:2888:3888;2181\n", Some(1));
        let s = &c.servers[&ServerId(1)];
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!((s.quorum_port, s.election_port), (2888, 3888));
        assert_eq!(s.role, Role::Participant);
        assert_eq!(s.client_addr, Some(sa("0.0.0.0:2181")));
        assert_eq!(s.line, 2);
        assert_eq!(c.client_addr(ServerId(1)).unwrap(), sa("0.0.0.0:2181"));
        assert!(c.is_standalone());
    }

    #[test]
    fn server_line_with_role_and_client_host() {
        let (c, _) = ok(
            "dataDir=/d\nserver.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n",
            Some(1),
        );
        let s = &c.servers[&ServerId(1)];
        assert_eq!(s.role, Role::Participant);
        assert_eq!(s.client_addr, Some(sa("127.0.0.1:2181")));
        let (c, _) = ok(
            "dataDir=/d\nclientPort=2181\nserver.7=zk7.example:2888:3888:observer\n",
            Some(7),
        );
        assert_eq!(c.servers[&ServerId(7)].role, Role::Observer);
        assert_eq!(c.servers[&ServerId(7)].host, "zk7.example");
    }

    #[test]
    fn server_line_without_client_part_uses_client_port() {
        let (c, _) = ok("dataDir=/d\nclientPort=2181\nclientPortAddress=10.0.0.1\nserver.1=127.0.0.1:2888:3888\n", Some(1));
        assert_eq!(c.servers[&ServerId(1)].client_addr, None);
        assert_eq!(c.client_addr(ServerId(1)).unwrap(), sa("10.0.0.1:2181"));
    }

    #[test]
    fn server_line_client_part_wins_over_client_port_address() {
        let (c, _) = ok("dataDir=/d\nclientPort=2181\nclientPortAddress=10.0.0.1\nserver.1=h:2888:3888;127.0.0.1:2181\n", Some(1));
        assert_eq!(c.client_addr(ServerId(1)).unwrap(), sa("127.0.0.1:2181"));
    }

    #[test]
    fn client_port_contradicting_own_server_line_is_an_error() {
        let e = err(
            "dataDir=/d\nclientPort=2182\nserver.1=h:2888:3888;2181\n",
            Some(1),
        );
        assert_eq!(
            e,
            "t.cfg:2: clientPort: 2182 differs from the client port 2181 on server.1 (line 3)"
        );
    }

    #[test]
    fn ipv6_hosts() {
        let (c, _) = ok("dataDir=/d\nserver.1=[::1]:2888:3888;[::1]:2181\n", Some(1));
        assert_eq!(c.servers[&ServerId(1)].host, "::1");
        assert_eq!(c.client_addr(ServerId(1)).unwrap(), sa("[::1]:2181"));
    }

    #[test]
    fn ensemble_quorum_size_and_observers() {
        let text = "dataDir=/d/{id}\n\
                    server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n\
                    server.2=127.0.0.1:2889:3889;127.0.0.1:2182\n\
                    server.3=127.0.0.1:2890:3890;127.0.0.1:2183\n\
                    server.4=127.0.0.1:2891:3891:observer;127.0.0.1:2184\n";
        let (c, _) = ok(text, Some(2));
        assert!(!c.is_standalone());
        assert_eq!(c.quorum_size(), 2, "3 voters; the observer does not count");
        assert_eq!(
            c.voters().map(|(id, _)| id.0).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(c.client_addr(ServerId(2)).unwrap(), sa("127.0.0.1:2182"));
        assert_eq!(c.client_addr(ServerId(4)).unwrap(), sa("127.0.0.1:2184"));
        assert_eq!(c.data_dir, PathBuf::from("/d/2"));
        let e = c.client_addr(ServerId(9)).unwrap_err().to_string();
        assert_eq!(e, "t.cfg: no server.9 line for server id 9");
    }

    #[test]
    fn id_not_in_server_lines_is_an_error() {
        let text = "dataDir=/d\nserver.1=a:1:2;3\nserver.2=b:1:2;3\n";
        assert_eq!(
            err(text, Some(3)),
            "t.cfg: no server.3 line for server id 3"
        );
    }

    #[test]
    fn server_id_out_of_range() {
        assert_eq!(
            err("dataDir=/d\nclientPort=1\n", Some(0)),
            "t.cfg: server id 0 is out of range (1..=255)"
        );
        assert_eq!(
            err("dataDir=/d\nclientPort=1\n", Some(256)),
            "t.cfg: server id 256 is out of range (1..=255)"
        );
    }

    #[test]
    fn bad_server_lines_name_file_and_line() {
        let cases: &[(&str, &str)] = &[
            ("server.2=127.0.0.1:2889:38x8", "t.cfg:3: server.2: bad port \"38x8\""),
            ("server.2=127.0.0.1:70000:3889", "t.cfg:3: server.2: bad port \"70000\""),
            ("server.2=127.0.0.1:2889", "t.cfg:3: server.2: expected host:quorumPort:electionPort[:participant|:observer], got \"127.0.0.1:2889\""),
            ("server.2=127.0.0.1:1:2:observer:x", "t.cfg:3: server.2: expected host:quorumPort:electionPort[:participant|:observer], got \"127.0.0.1:1:2:observer:x\""),
            ("server.2=127.0.0.1", "t.cfg:3: server.2: bad host in \"127.0.0.1\""),
            ("server.2=:2889:3889", "t.cfg:3: server.2: bad host in \":2889:3889\""),
            ("server.2=h:2889:3889:leader", "t.cfg:3: server.2: bad role \"leader\" (expected participant or observer)"),
            ("server.2=h:2889:3889;21x2", "t.cfg:3: server.2: bad port \"21x2\""),
            ("server.2=h:2889:3889;localhost:2182", "t.cfg:3: server.2: bad IP address \"localhost\" (host names are not resolved)"),
            ("server.2=h:2889:2889", "t.cfg:3: server.2: quorum and election port are both 2889"),
            ("server.2=h:2889:3889;h:2889", "t.cfg:3: server.2: bad IP address \"h\" (host names are not resolved)"),
            ("server.2=h:2889:3889;2889", "t.cfg:3: server.2: port 2889 is used twice on this line"),
            ("server.x=h:2889:3889", "t.cfg:3: server.x: bad server id \"x\" (1..=255)"),
            ("server.0=h:2889:3889", "t.cfg:3: server.0: bad server id \"0\" (1..=255)"),
            ("server.256=h:2889:3889", "t.cfg:3: server.256: bad server id \"256\" (1..=255)"),
            ("server.2=a:1:2|b:1:2", "t.cfg:3: server.2: multiple addresses ('|') are not supported"),
        ];
        for (line, want) in cases {
            let text = format!("dataDir=/d\nserver.1=127.0.0.1:2888:3888;2181\n{line}\n");
            assert_eq!(&err(&text, Some(1)), want, "line {line:?}");
        }
    }

    #[test]
    fn duplicate_server_id_is_an_error() {
        let text = "dataDir=/d\nclientPort=1\nserver.1=a:2888:3888\nserver.1=b:2888:3888\n";
        assert_eq!(
            err(text, None),
            "t.cfg:4: server.1: duplicate server id 1 (first on line 3)"
        );
    }

    #[test]
    fn duplicate_ports_are_errors() {
        let base = "dataDir=/d\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2181\n";
        let e = err(
            &format!("{base}server.2=127.0.0.1:2888:3889;127.0.0.1:2182\n"),
            Some(1),
        );
        assert_eq!(e, "t.cfg:3: server.2: quorum port 2888 on 127.0.0.1 is already the quorum port of server.1 (line 2)");
        let e = err(
            &format!("{base}server.2=127.0.0.1:2889:2888;127.0.0.1:2182\n"),
            Some(1),
        );
        assert_eq!(e, "t.cfg:3: server.2: election port 2888 on 127.0.0.1 is already the quorum port of server.1 (line 2)");
        let e = err(
            &format!("{base}server.2=127.0.0.1:2889:3889;127.0.0.1:2181\n"),
            Some(1),
        );
        assert_eq!(e, "t.cfg:3: server.2: client port 2181 on 127.0.0.1 is already the client port of server.1 (line 2)");
        let e = err(
            &format!("{base}server.2=127.0.0.1:2889:3889;2181\n"),
            Some(1),
        );
        assert_eq!(e, "t.cfg:3: server.2: client port 2181 on 127.0.0.1 is already the client port of server.1 (line 2)");
        // Same ports on different hosts are fine.
        ok(
            &format!("{base}server.2=127.0.0.2:2888:3888;127.0.0.2:2181\n"),
            Some(1),
        );
    }

    #[test]
    fn shipped_sample_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        for (name, id, servers, client) in [
            ("standalone.cfg", 1, 0, "127.0.0.1:2181"),
            ("kazoo.cfg", 1, 0, "127.0.0.1:22181"),
            ("local-3.cfg", 3, 3, "127.0.0.1:2183"),
            ("local-5.cfg", 5, 5, "127.0.0.1:2185"),
        ] {
            let (c, _) = match load(&dir.join(name), Some(ServerId(id))) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(c.servers.len(), servers, "{name}");
            assert_eq!(c.client_addr(ServerId(id)).unwrap(), sa(client), "{name}");
            assert!(c.four_lw_whitelist.allows("ruok"), "{name}");
        }
    }

    #[test]
    fn admin_keys_follow_zookeeper_with_per_server_ports() {
        let (c, w) = ok("dataDir=/d\nclientPort=1\n", Some(1));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.admin_addr(ServerId(1)), Some(sa("0.0.0.0:8080")));
        assert_eq!(c.admin.idle_timeout_ms, 30_000);
        let (c, w) = ok(
            "dataDir=/d\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=9000\nadmin.serverPort.2=9002\n\
             admin.idleTimeout=5000\nserver.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2182\n",
            Some(2),
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.admin_addr(ServerId(1)), Some(sa("127.0.0.1:9000")));
        assert_eq!(c.admin_addr(ServerId(2)), Some(sa("127.0.0.1:9002")));
        assert_eq!(c.admin.idle_timeout_ms, 5000);
        let (c, _) = ok("dataDir=/d\nclientPort=1\nadmin.enableServer=false\n", Some(1));
        assert_eq!(c.admin_addr(ServerId(1)), None);
        for (line, want) in [
            ("admin.serverPort=0", "admin.serverPort: bad port"),
            ("admin.serverPort.0=9000", "admin.serverPort.0: expected admin.serverPort.N"),
            ("admin.serverPort.x=9000", "admin.serverPort.x: expected admin.serverPort.N"),
            ("admin.enableServer=maybe", "admin.enableServer: expected yes or no"),
            ("admin.serverAddress=nowhere", "admin.serverAddress:"),
        ] {
            let e = err(&format!("dataDir=/d\nclientPort=1\n{line}\n"), Some(1));
            assert!(e.contains(":3: ") && e.contains(want), "{line}: {e}");
        }
    }

    #[test]
    fn load_names_the_missing_file() {
        let e = load(Path::new("/nonexistent/zoo.cfg"), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/zoo.cfg: cannot read: "), "{e}");
    }
}

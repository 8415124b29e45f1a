//! Domain types shared by every layer: identifiers, `Stat`, ACLs, error codes, opcodes,
//! create modes and watch event kinds, with the numeric values the ZooKeeper wire protocol
//! uses (`ZooDefs.java`, `KeeperException.java`, `Watcher.java`, `CreateMode.java`).
//!
//! Nothing here does I/O. Numbers appear only in the `from_i32`/`code` conversions; the rest
//! of the code speaks in these enums.

use serde::{Deserialize, Serialize};

/// A ZooKeeper transaction id: `(epoch << 32) | counter`. Strictly increasing in the log.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Zxid(pub i64);

impl Zxid {
    pub const ZERO: Zxid = Zxid(0);
    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    pub fn next(self) -> Zxid {
        Zxid(self.0 + 1)
    }
}

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A client session id. The top byte is the id of the server that created it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub i64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A server id (`server.N` in zoo.cfg, `myid`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServerId(pub u64);

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Wall-clock milliseconds since the Unix epoch (ctime/mtime) or a monotonic millisecond
/// clock (timers); which one is always said where it is used.
pub type Millis = i64;

/// The clocks a step of a protocol core reads (it reads none of its own): monotonic
/// milliseconds for timers and the same clock in microseconds for latency metrics, and
/// wall-clock milliseconds for what is stored (a txn's time, a session's creation time).
/// The event loop fills them from the OS at each step; a simulator from its virtual time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Now {
    pub ms: Millis,
    pub us: i64,
    pub wall_ms: i64,
}

/// `ephemeralOwner` of a container node inside the server (ZooKeeper's
/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`). Reported to clients as 0.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// TTL nodes encode their TTL in `ephemeralOwner` with this top byte (`EphemeralType.TTL`).
pub const TTL_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
pub const TTL_MAX_MS: i64 = 0x00ff_ffff_ffff;

/// The 68-byte znode Stat, in wire order.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

/// An identity: `scheme:id`, e.g. `world:anyone`, `digest:user:base64(sha1)`, `ip:10.0.0.0/8`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_string(), id: id.to_string() }
    }
}

/// One ACL entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: world:anyone with every permission.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: Id::new("world", "anyone") }]
    }
    /// `ZooDefs.Ids.READ_ACL_UNSAFE`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }]
    }
}

/// Error codes (`KeeperException.Code`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    Ok,
    SystemError,
    RuntimeInconsistency,
    DataInconsistency,
    ConnectionLoss,
    MarshallingError,
    Unimplemented,
    OperationTimeout,
    BadArguments,
    UnknownSession,
    NewConfigNoQuorum,
    ReconfigInProgress,
    NoNode,
    NoAuth,
    BadVersion,
    NoChildrenForEphemerals,
    NodeExists,
    NotEmpty,
    SessionExpired,
    InvalidCallback,
    InvalidAcl,
    AuthFailed,
    SessionMoved,
    NotReadOnly,
    EphemeralOnLocalSession,
    NoWatcher,
    RequestTimeout,
    ReconfigDisabled,
    SessionClosedRequireSaslAuth,
    QuotaExceeded,
    Throttled,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        use ErrorCode::*;
        match self {
            Ok => 0,
            SystemError => -1,
            RuntimeInconsistency => -2,
            DataInconsistency => -3,
            ConnectionLoss => -4,
            MarshallingError => -5,
            Unimplemented => -6,
            OperationTimeout => -7,
            BadArguments => -8,
            UnknownSession => -12,
            NewConfigNoQuorum => -13,
            ReconfigInProgress => -14,
            NoNode => -101,
            NoAuth => -102,
            BadVersion => -103,
            NoChildrenForEphemerals => -108,
            NodeExists => -110,
            NotEmpty => -111,
            SessionExpired => -112,
            InvalidCallback => -113,
            InvalidAcl => -114,
            AuthFailed => -115,
            SessionMoved => -118,
            NotReadOnly => -119,
            EphemeralOnLocalSession => -120,
            NoWatcher => -121,
            RequestTimeout => -122,
            ReconfigDisabled => -123,
            SessionClosedRequireSaslAuth => -124,
            QuotaExceeded => -125,
            Throttled => -127,
        }
    }

    pub fn from_i32(v: i32) -> Option<ErrorCode> {
        use ErrorCode::*;
        Some(match v {
            0 => Ok,
            -1 => SystemError,
            -2 => RuntimeInconsistency,
            -3 => DataInconsistency,
            -4 => ConnectionLoss,
            -5 => MarshallingError,
            -6 => Unimplemented,
            -7 => OperationTimeout,
            -8 => BadArguments,
            -12 => UnknownSession,
            -13 => NewConfigNoQuorum,
            -14 => ReconfigInProgress,
            -101 => NoNode,
            -102 => NoAuth,
            -103 => BadVersion,
            -108 => NoChildrenForEphemerals,
            -110 => NodeExists,
            -111 => NotEmpty,
            -112 => SessionExpired,
            -113 => InvalidCallback,
            -114 => InvalidAcl,
            -115 => AuthFailed,
            -118 => SessionMoved,
            -119 => NotReadOnly,
            -120 => EphemeralOnLocalSession,
            -121 => NoWatcher,
            -122 => RequestTimeout,
            -123 => ReconfigDisabled,
            -124 => SessionClosedRequireSaslAuth,
            -125 => QuotaExceeded,
            -127 => Throttled,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}({})", self, self.code())
    }
}

/// The one table of request opcodes (`ZooDefs.OpCode`): the wire number, and the name
/// `cons` shows as a connection's last operation (`lop`, ZooKeeper's
/// `FinalRequestProcessor` names; "UNKN" where it has none). The codec converts numbers
/// with `code`/`from_i32`; nothing else spells them.
macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $short:literal;)*) => {
        /// Request opcodes (`ZooDefs.OpCode`).
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum OpCode {
            $($(#[$doc])* $name,)*
        }

        impl OpCode {
            pub const fn code(self) -> i32 {
                match self {
                    $(OpCode::$name => $code,)*
                }
            }

            pub const fn from_i32(v: i32) -> Option<OpCode> {
                match v {
                    $($code => Some(OpCode::$name),)*
                    _ => None,
                }
            }

            /// The four-letter name of `cons`'s `lop` and of logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $(OpCode::$name => $short,)*
                }
            }
        }
    };
}

opcodes! {
    Notification = 0, "UNKN";
    Create = 1, "CREA";
    Delete = 2, "DELE";
    Exists = 3, "EXIS";
    GetData = 4, "GETD";
    SetData = 5, "SETD";
    GetAcl = 6, "GETA";
    SetAcl = 7, "SETA";
    GetChildren = 8, "GETC";
    Sync = 9, "SYNC";
    Ping = 11, "PING";
    GetChildren2 = 12, "GETC";
    Check = 13, "CHEC";
    Multi = 14, "MULT";
    Create2 = 15, "CREA";
    Reconfig = 16, "UNKN";
    CheckWatches = 17, "UNKN";
    RemoveWatches = 18, "UNKN";
    CreateContainer = 19, "CREA";
    DeleteContainer = 20, "UNKN";
    CreateTtl = 21, "CREA";
    MultiRead = 22, "MLTR";
    Auth = 100, "AUTH";
    SetWatches = 101, "SETW";
    Sasl = 102, "UNKN";
    GetEphemerals = 103, "UNKN";
    GetAllChildrenNumber = 104, "UNKN";
    SetWatches2 = 105, "SETW";
    AddWatch = 106, "ADDW";
    WhoAmI = 107, "UNKN";
    CreateSession = -10, "UNKN";
    CloseSession = -11, "CLOS";
    /// A multi's error result; a failed txn.
    Error = -1, "UNKN";
}

impl OpCode {
    /// The `lop` name of a raw wire opcode ("UNKN" for one we do not know).
    pub fn name_of(code: i32) -> &'static str {
        OpCode::from_i32(code).map_or("UNKN", OpCode::name)
    }
}

/// How a znode is created (`CreateMode.java`), decoded from the create flags.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    Container,
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        use CreateMode::*;
        Some(match flags {
            0 => Persistent,
            1 => Ephemeral,
            2 => PersistentSequential,
            3 => EphemeralSequential,
            4 => Container,
            5 => PersistentWithTtl,
            6 => PersistentSequentialWithTtl,
            _ => return None,
        })
    }
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

/// Watch event types (`Watcher.Event.EventType`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    None,
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
    DataWatchRemoved,
    ChildWatchRemoved,
    PersistentWatchRemoved,
}

impl EventType {
    pub fn code(self) -> i32 {
        match self {
            EventType::None => -1,
            EventType::NodeCreated => 1,
            EventType::NodeDeleted => 2,
            EventType::NodeDataChanged => 3,
            EventType::NodeChildrenChanged => 4,
            EventType::DataWatchRemoved => 5,
            EventType::ChildWatchRemoved => 6,
            EventType::PersistentWatchRemoved => 7,
        }
    }
}

/// Session states carried in watch events (`Watcher.Event.KeeperState`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeeperState {
    Disconnected,
    SyncConnected,
    AuthFailed,
    ConnectedReadOnly,
    Closed,
    Expired,
}

impl KeeperState {
    pub fn code(self) -> i32 {
        match self {
            KeeperState::Disconnected => 0,
            KeeperState::SyncConnected => 3,
            KeeperState::AuthFailed => 4,
            KeeperState::ConnectedReadOnly => 5,
            KeeperState::Closed => 7,
            KeeperState::Expired => -112,
        }
    }
}

/// Watch kinds a client can register (`AddWatchMode`, and the one-shot kinds).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WatchKind {
    /// getData / exists watch: NodeDataChanged, NodeCreated, NodeDeleted.
    Data,
    /// getChildren watch: NodeChildrenChanged, NodeDeleted.
    Child,
    /// addWatch mode 0: every event on the node, not removed on fire.
    Persistent,
    /// addWatch mode 1: every event on the node and its descendants (no child events).
    PersistentRecursive,
}

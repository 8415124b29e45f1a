//! The ZooKeeper client wire protocol ("jute"): framing and the records a server reads and
//! writes on the client port. See ../shared/zk-protocol.md and `zookeeper.jute`.
//!
//! Decoding never panics: any malformed input is a `DecodeError`, and the caller closes that
//! one connection. Encoding appends to a `BytesMut` and cannot fail.
//!
//! Layout: `frame` splits the byte stream into frames (length prefix, size limit); `codec`
//! turns frame payloads into the records below and back, for both the server and the
//! client side (load generator, tests).

mod codec;
mod frame;
#[cfg(test)]
mod interop;
#[cfg(test)]
mod tests;

pub use codec::{
    decode_connect, decode_connect_response, decode_reply_header, decode_request, decode_response,
    decode_watcher_event, encode_connect_request, encode_connect_response, encode_notification,
    encode_reply, encode_request, DecodeError, REPLY_HEADER_LEN, STAT_LEN,
};
pub use frame::{next_frame, FrameError, DEFAULT_MAX_FRAME, LEN_PREFIX};

use crate::proto::{Acl, Stat};

/// `ConnectRequest`. `read_only` is `None` when the client did not send the trailing byte
/// (then the response must not carry it either).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// Echoed only if the request carried it.
    pub read_only: Option<bool>,
}

/// `RequestHeader {xid, type}`. `op` is the raw opcode (unknown ones are answered -6).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    pub op: i32,
}

/// Which create opcode a create came in as: it decides the reply shape
/// (`Create` replies with the path only, the others with path + Stat) and what is allowed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CreateKind {
    Create,
    Create2,
    CreateContainer,
    CreateTtl,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    pub kind: CreateKind,
    pub path: String,
    /// `None` when the client sent a null buffer (length -1): ZooKeeper keeps the
    /// distinction, and `get` then returns null again.
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    /// Only for `CreateTtl`; -1 otherwise.
    pub ttl_ms: i64,
}

/// One op inside a `multi` (opcodes 1, 15, 19, 21, 2, 5, 13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Delete { path: String, version: i32 },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    Check { path: String, version: i32 },
}

/// One op inside a `multiRead` (opcodes 8 and 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultiReadOp {
    GetChildren { path: String },
    GetData { path: String },
}

/// A decoded client request body. Opcodes the server does not implement decode to
/// `Unimplemented(op)` so the connection can answer -6 and stay open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Ping,
    CloseSession,
    Create(CreateRequest),
    Delete { path: String, version: i32 },
    Exists { path: String, watch: bool },
    GetData { path: String, watch: bool },
    SetData { path: String, data: Option<Vec<u8>>, version: i32 },
    GetAcl { path: String },
    SetAcl { path: String, acl: Vec<Acl>, version: i32 },
    GetChildren { path: String, watch: bool },
    GetChildren2 { path: String, watch: bool },
    Sync { path: String },
    Check { path: String, version: i32 },
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiReadOp>),
    /// `AuthPacket {int type; ustring scheme; buffer auth}`.
    Auth { scheme: String, auth: Vec<u8> },
    /// setWatches (101) has data/exist/child; setWatches2 (105) adds the persistent lists.
    SetWatches {
        relative_zxid: i64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
        persistent: Vec<String>,
        persistent_recursive: Vec<String>,
    },
    /// mode 0 = persistent, 1 = persistent recursive.
    AddWatch { path: String, mode: i32 },
    /// `RemoveWatchesRequest {path; int type}` (type 1 children, 2 data, 3 any).
    RemoveWatches { path: String, watch_type: i32 },
    /// Same body as RemoveWatches.
    CheckWatches { path: String, watch_type: i32 },
    GetEphemerals { prefix_path: String },
    GetAllChildrenNumber { path: String },
    WhoAmI,
    /// `ReconfigRequest`: incremental (`joining`/`leaving`, comma-separated) or bulk
    /// (`new_members`); `cur_config_id` -1 means any version. The reply is a GetData
    /// response of `/zookeeper/config`.
    Reconfig { joining: Option<String>, leaving: Option<String>, new_members: Option<String>, cur_config_id: i64 },
    /// Decoded header with an opcode we answer with `Unimplemented` (sasl, ...).
    Unimplemented(i32),
}

/// One result inside a multi reply (`MultiResponse.java`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultiResult {
    Create { path: String },
    /// For create2/createContainer/createTTL sub-ops.
    Create2 { path: String, stat: Stat },
    Delete,
    SetData { stat: Stat },
    Check,
    GetChildren { children: Vec<String> },
    GetData { data: Option<Vec<u8>>, stat: Stat },
    /// Header type -1 with the error, then `ErrorResponse {int err}`.
    Error(i32),
}

/// A reply body (the `ReplyHeader` is written separately). `Empty` = header only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Empty,
    Create { path: String },
    Create2 { path: String, stat: Stat },
    /// exists, setData, setACL.
    Stat(Stat),
    GetData { data: Option<Vec<u8>>, stat: Stat },
    GetAcl { acl: Vec<Acl>, stat: Stat },
    GetChildren { children: Vec<String> },
    GetChildren2 { children: Vec<String>, stat: Stat },
    Sync { path: String },
    Multi(Vec<MultiResult>),
    GetEphemerals { paths: Vec<String> },
    AllChildrenNumber(i32),
    /// `WhoAmIResponse {vector<ClientInfo{authScheme; user}>}`.
    WhoAmI(Vec<(String, String)>),
    /// addWatch: ZooKeeper answers with an `ErrorResponse {int err}` body holding 0
    /// (`FinalRequestProcessor`: `rsp = new ErrorResponse(0)`). The Java client reads it and
    /// fails with EOFException (then reconnects in a loop) when it is missing.
    AddWatch,
}

/// `ReplyHeader {xid, zxid, err}`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

/// `WatcherEvent {type, state, path}`, sent with xid -1 and zxid -1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
}

/// Special xids (`ClientCnxn.java`).
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

//! Jute encoding and decoding of the client-port records (`BinaryInputArchive`,
//! `BinaryOutputArchive`, `zookeeper.jute`, `MultiOperationRecord`, `MultiResponse`).
//! Both directions live here: the server decodes requests and encodes replies; the load
//! generator and the tests use the client half (encode requests, decode replies).
//!
//! Invariants:
//! - Decoding never panics and never allocates more than the input could hold: every length
//!   and count is checked against the remaining bytes first (a count of 2^31 fails at once).
//! - A length or count of -1 (Java null; kazoo sends "" that way) decodes as empty; below -1 is
//!   `BadLength`. Strings are decoded lossily, as Java's `new String(bytes, UTF_8)` does.
//! - Trailing bytes after a known body are ignored, as the Java server does.
//! - Opcodes we do not serve decode to `Request::Unimplemented` without reading the body, so
//!   the connection can answer -6 and stay open (Curator and create2: see zk-protocol.md).
//! - Every `encode_*` appends exactly one whole frame, length prefix included, and cannot fail.

use bytes::{BufMut, BytesMut};

use super::{
    ConnectRequest, ConnectResponse, CreateKind, CreateRequest, MultiOp, MultiReadOp, MultiResult,
    ReplyHeader, Request, RequestHeader, Response, WatcherEvent,
};
use crate::proto::{Acl, Id, OpCode, Stat};

/// Bytes of a `ReplyHeader {int xid; long zxid; int err}`.
pub const REPLY_HEADER_LEN: usize = 16;
/// Bytes of a `Stat`.
pub const STAT_LEN: usize = 68;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated: need {need} more bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("invalid length or count {0}")]
    BadLength(i32),
    #[error("op type {0} is not allowed inside this multi")]
    BadMultiOp(i32),
}

type Result<T> = std::result::Result<T, DecodeError>;

// ---------------------------------------------------------------------------------------
// Primitive reader / writer
// ---------------------------------------------------------------------------------------

/// A cursor over one frame's payload. Every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated { need: n, have: self.buf.len() });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Java's `DataInput.readBoolean`: any non-zero byte is true.
    fn bool(&mut self) -> Result<bool> {
        Ok(self.array::<1>()?[0] != 0)
    }

    /// A buffer/string length or vector count: -1 (null) is 0, other negatives are invalid.
    fn len(&mut self) -> Result<usize> {
        match self.i32()? {
            -1 => Ok(0),
            n => usize::try_from(n).map_err(|_| DecodeError::BadLength(n)),
        }
    }

    fn buffer(&mut self) -> Result<Vec<u8>> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }

    /// A buffer that may be null (length -1), as znode data can be.
    fn opt_buffer(&mut self) -> Result<Option<Vec<u8>>> {
        match self.i32()? {
            -1 => Ok(None),
            n => {
                let n = usize::try_from(n).map_err(|_| DecodeError::BadLength(n))?;
                Ok(Some(self.take(n)?.to_vec()))
            }
        }
    }

    /// A string that may be null (length -1), as ReconfigRequest's are.
    fn opt_ustring(&mut self) -> Result<Option<String>> {
        Ok(self.opt_buffer()?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn ustring(&mut self) -> Result<String> {
        let n = self.len()?;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    /// Reads a vector whose elements take at least `min_elem` bytes each. The count is
    /// checked against the remaining input before anything is allocated.
    fn vec<T>(&mut self, min_elem: usize, mut elem: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let count = self.len()?;
        let need = count.saturating_mul(min_elem);
        if need > self.buf.len() {
            return Err(DecodeError::Truncated { need, have: self.buf.len() });
        }
        let mut v = Vec::with_capacity(count);
        for _ in 0..count {
            v.push(elem(self)?);
        }
        Ok(v)
    }

    fn strings(&mut self) -> Result<Vec<String>> {
        self.vec(4, Self::ustring)
    }

    fn acl(&mut self) -> Result<Acl> {
        let perms = self.i32()?;
        let scheme = self.ustring()?;
        let id = self.ustring()?;
        Ok(Acl { perms, id: Id { scheme, id } })
    }

    fn acls(&mut self) -> Result<Vec<Acl>> {
        self.vec(12, Self::acl)
    }

    fn stat(&mut self) -> Result<Stat> {
        Ok(Stat {
            czxid: self.i64()?,
            mzxid: self.i64()?,
            ctime: self.i64()?,
            mtime: self.i64()?,
            version: self.i32()?,
            cversion: self.i32()?,
            aversion: self.i32()?,
            ephemeral_owner: self.i64()?,
            data_length: self.i32()?,
            num_children: self.i32()?,
            pzxid: self.i64()?,
        })
    }

    /// `MultiHeader {int type; bool done; int err}`.
    fn multi_header(&mut self) -> Result<(i32, bool, i32)> {
        Ok((self.i32()?, self.bool()?, self.i32()?))
    }
}

/// Writes a jute length. Our own records never approach 2 GiB; if one did it would be a bug.
fn put_len(out: &mut BytesMut, n: usize) {
    let n = i32::try_from(n).expect("jute record field over 2 GiB");
    out.put_i32(n);
}

fn put_bool(out: &mut BytesMut, b: bool) {
    out.put_u8(u8::from(b));
}

fn put_buffer(out: &mut BytesMut, b: &[u8]) {
    put_len(out, b.len());
    out.put_slice(b);
}

fn put_opt_buffer(out: &mut BytesMut, b: &Option<Vec<u8>>) {
    match b {
        Some(b) => put_buffer(out, b),
        None => out.put_i32(-1),
    }
}

fn put_ustring(out: &mut BytesMut, s: &str) {
    put_buffer(out, s.as_bytes());
}

fn put_opt_ustring(out: &mut BytesMut, s: &Option<String>) {
    match s {
        Some(s) => put_ustring(out, s),
        None => out.put_i32(-1),
    }
}

fn put_strings(out: &mut BytesMut, v: &[String]) {
    put_len(out, v.len());
    for s in v {
        put_ustring(out, s);
    }
}

fn put_acls(out: &mut BytesMut, acls: &[Acl]) {
    put_len(out, acls.len());
    for a in acls {
        out.put_i32(a.perms);
        put_ustring(out, &a.id.scheme);
        put_ustring(out, &a.id.id);
    }
}

fn put_stat(out: &mut BytesMut, s: &Stat) {
    out.put_i64(s.czxid);
    out.put_i64(s.mzxid);
    out.put_i64(s.ctime);
    out.put_i64(s.mtime);
    out.put_i32(s.version);
    out.put_i32(s.cversion);
    out.put_i32(s.aversion);
    out.put_i64(s.ephemeral_owner);
    out.put_i32(s.data_length);
    out.put_i32(s.num_children);
    out.put_i64(s.pzxid);
}

fn put_multi_header(out: &mut BytesMut, ty: i32, done: bool, err: i32) {
    out.put_i32(ty);
    put_bool(out, done);
    out.put_i32(err);
}

/// Appends one frame: a length placeholder, the payload, then the real length.
fn framed(out: &mut BytesMut, payload: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_i32(0);
    payload(out);
    let len = i32::try_from(out.len() - start - 4).expect("jute frame over 2 GiB");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// Connect
// ---------------------------------------------------------------------------------------

/// Server side: the first frame of a connection. The trailing `readOnly` byte is optional.
pub fn decode_connect(payload: &[u8]) -> Result<ConnectRequest> {
    let mut r = Reader::new(payload);
    let protocol_version = r.i32()?;
    let last_zxid_seen = r.i64()?;
    let timeout_ms = r.i32()?;
    let session_id = r.i64()?;
    let passwd = r.buffer()?;
    let read_only = if r.is_empty() { None } else { Some(r.bool()?) };
    Ok(ConnectRequest { protocol_version, last_zxid_seen, timeout_ms, session_id, passwd, read_only })
}

/// Server side. `read_only` is written only when `Some` (echo what the client sent).
pub fn encode_connect_response(out: &mut BytesMut, resp: &ConnectResponse) {
    framed(out, |out| {
        out.put_i32(resp.protocol_version);
        out.put_i32(resp.timeout_ms);
        out.put_i64(resp.session_id);
        put_buffer(out, &resp.passwd);
        if let Some(ro) = resp.read_only {
            put_bool(out, ro);
        }
    });
}

/// Client side. `read_only` is written only when `Some`.
pub fn encode_connect_request(out: &mut BytesMut, req: &ConnectRequest) {
    framed(out, |out| {
        out.put_i32(req.protocol_version);
        out.put_i64(req.last_zxid_seen);
        out.put_i32(req.timeout_ms);
        out.put_i64(req.session_id);
        put_buffer(out, &req.passwd);
        if let Some(ro) = req.read_only {
            put_bool(out, ro);
        }
    });
}

/// Client side.
pub fn decode_connect_response(payload: &[u8]) -> Result<ConnectResponse> {
    let mut r = Reader::new(payload);
    let protocol_version = r.i32()?;
    let timeout_ms = r.i32()?;
    let session_id = r.i64()?;
    let passwd = r.buffer()?;
    let read_only = if r.is_empty() { None } else { Some(r.bool()?) };
    Ok(ConnectResponse { protocol_version, timeout_ms, session_id, passwd, read_only })
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

impl CreateKind {
    /// The opcode a create of this kind is sent as (also its type inside a multi).
    pub fn opcode(self) -> i32 {
        match self {
            CreateKind::Create => OpCode::Create.code(),
            CreateKind::Create2 => OpCode::Create2.code(),
            CreateKind::CreateContainer => OpCode::CreateContainer.code(),
            CreateKind::CreateTtl => OpCode::CreateTtl.code(),
        }
    }

    fn from_opcode(code: i32) -> Option<CreateKind> {
        match OpCode::from_i32(code) {
            Some(OpCode::Create) => Some(CreateKind::Create),
            Some(OpCode::Create2) => Some(CreateKind::Create2),
            Some(OpCode::CreateContainer) => Some(CreateKind::CreateContainer),
            Some(OpCode::CreateTtl) => Some(CreateKind::CreateTtl),
            _ => None,
        }
    }
}

impl Request {
    /// The opcode this request is sent with. `SetWatches` picks setWatches2 (105) only when
    /// it carries persistent watches, so old servers keep getting 101.
    pub fn opcode(&self) -> i32 {
        match self {
            Request::Ping => OpCode::Ping.code(),
            Request::CloseSession => OpCode::CloseSession.code(),
            Request::Create(c) => c.kind.opcode(),
            Request::Delete { .. } => OpCode::Delete.code(),
            Request::Exists { .. } => OpCode::Exists.code(),
            Request::GetData { .. } => OpCode::GetData.code(),
            Request::SetData { .. } => OpCode::SetData.code(),
            Request::GetAcl { .. } => OpCode::GetAcl.code(),
            Request::SetAcl { .. } => OpCode::SetAcl.code(),
            Request::GetChildren { .. } => OpCode::GetChildren.code(),
            Request::GetChildren2 { .. } => OpCode::GetChildren2.code(),
            Request::Sync { .. } => OpCode::Sync.code(),
            Request::Check { .. } => OpCode::Check.code(),
            Request::Multi(_) => OpCode::Multi.code(),
            Request::MultiRead(_) => OpCode::MultiRead.code(),
            Request::Auth { .. } => OpCode::Auth.code(),
            Request::SetWatches { persistent, persistent_recursive, .. } => {
                if persistent.is_empty() && persistent_recursive.is_empty() {
                    OpCode::SetWatches.code()
                } else {
                    OpCode::SetWatches2.code()
                }
            }
            Request::AddWatch { .. } => OpCode::AddWatch.code(),
            Request::RemoveWatches { .. } => OpCode::RemoveWatches.code(),
            Request::CheckWatches { .. } => OpCode::CheckWatches.code(),
            Request::GetEphemerals { .. } => OpCode::GetEphemerals.code(),
            Request::GetAllChildrenNumber { .. } => OpCode::GetAllChildrenNumber.code(),
            Request::WhoAmI => OpCode::WhoAmI.code(),
            Request::Reconfig { .. } => OpCode::Reconfig.code(),
            Request::Unimplemented(code) => *code,
        }
    }
}

/// Server side: a request frame after the connect. Unknown or unsupported opcodes give
/// `Request::Unimplemented(op)` and their body is not looked at.
pub fn decode_request(payload: &[u8]) -> Result<(RequestHeader, Request)> {
    let mut r = Reader::new(payload);
    let header = RequestHeader { xid: r.i32()?, op: r.i32()? };
    let request = decode_request_body(header.op, &mut r)?;
    Ok((header, request))
}

fn decode_request_body(code: i32, r: &mut Reader<'_>) -> Result<Request> {
    Ok(match OpCode::from_i32(code) {
        Some(OpCode::Ping) => Request::Ping,
        Some(OpCode::CloseSession) => Request::CloseSession,
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
            Request::Create(decode_create(code, r)?)
        }
        Some(OpCode::Delete) => Request::Delete { path: r.ustring()?, version: r.i32()? },
        Some(OpCode::Exists) => Request::Exists { path: r.ustring()?, watch: r.bool()? },
        Some(OpCode::GetData) => Request::GetData { path: r.ustring()?, watch: r.bool()? },
        Some(OpCode::SetData) => Request::SetData { path: r.ustring()?, data: r.opt_buffer()?, version: r.i32()? },
        Some(OpCode::GetAcl) => Request::GetAcl { path: r.ustring()? },
        Some(OpCode::SetAcl) => Request::SetAcl { path: r.ustring()?, acl: r.acls()?, version: r.i32()? },
        Some(OpCode::GetChildren) => Request::GetChildren { path: r.ustring()?, watch: r.bool()? },
        Some(OpCode::GetChildren2) => Request::GetChildren2 { path: r.ustring()?, watch: r.bool()? },
        Some(OpCode::Sync) => Request::Sync { path: r.ustring()? },
        Some(OpCode::Check) => Request::Check { path: r.ustring()?, version: r.i32()? },
        Some(OpCode::Multi) => Request::Multi(decode_multi_ops(r, decode_multi_op)?),
        Some(OpCode::MultiRead) => Request::MultiRead(decode_multi_ops(r, decode_multi_read_op)?),
        Some(OpCode::Auth) => {
            // AuthPacket.type is unused by ZooKeeper; skip it.
            r.i32()?;
            Request::Auth { scheme: r.ustring()?, auth: r.buffer()? }
        }
        Some(OpCode::SetWatches | OpCode::SetWatches2) => {
            let relative_zxid = r.i64()?;
            let data = r.strings()?;
            let exist = r.strings()?;
            let child = r.strings()?;
            let (persistent, persistent_recursive) = if code == OpCode::SetWatches2.code() {
                (r.strings()?, r.strings()?)
            } else {
                (Vec::new(), Vec::new())
            };
            Request::SetWatches { relative_zxid, data, exist, child, persistent, persistent_recursive }
        }
        Some(OpCode::AddWatch) => Request::AddWatch { path: r.ustring()?, mode: r.i32()? },
        Some(OpCode::RemoveWatches) => Request::RemoveWatches { path: r.ustring()?, watch_type: r.i32()? },
        Some(OpCode::CheckWatches) => Request::CheckWatches { path: r.ustring()?, watch_type: r.i32()? },
        Some(OpCode::GetEphemerals) => Request::GetEphemerals { prefix_path: r.ustring()? },
        Some(OpCode::GetAllChildrenNumber) => Request::GetAllChildrenNumber { path: r.ustring()? },
        Some(OpCode::WhoAmI) => Request::WhoAmI,
        // ReconfigRequest {ustring joiningServers; ustring leavingServers; ustring newMembers;
        // long curConfigId}, each string possibly null.
        Some(OpCode::Reconfig) => Request::Reconfig {
            joining: r.opt_ustring()?,
            leaving: r.opt_ustring()?,
            new_members: r.opt_ustring()?,
            cur_config_id: r.i64()?,
        },
        _ => Request::Unimplemented(code),
    })
}

/// `CreateRequest {path; data; vector<ACL>; int flags}`, plus `long ttl` for createTTL.
fn decode_create(code: i32, r: &mut Reader<'_>) -> Result<CreateRequest> {
    let kind = CreateKind::from_opcode(code).ok_or(DecodeError::BadMultiOp(code))?;
    let path = r.ustring()?;
    let data = r.opt_buffer()?;
    let acl = r.acls()?;
    let flags = r.i32()?;
    let ttl_ms = if kind == CreateKind::CreateTtl { r.i64()? } else { -1 };
    Ok(CreateRequest { kind, path, data, acl, flags, ttl_ms })
}

/// Reads `MultiHeader` + body pairs until a header with done=true. Each round consumes at
/// least the 9-byte header, so the loop is bounded by the frame size.
fn decode_multi_ops<T>(
    r: &mut Reader<'_>,
    mut decode_op: impl FnMut(i32, &mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut ops = Vec::new();
    loop {
        let (ty, done, _err) = r.multi_header()?;
        if done {
            return Ok(ops);
        }
        ops.push(decode_op(ty, r)?);
    }
}

fn decode_multi_op(ty: i32, r: &mut Reader<'_>) -> Result<MultiOp> {
    Ok(match OpCode::from_i32(ty) {
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
            MultiOp::Create(decode_create(ty, r)?)
        }
        Some(OpCode::Delete) => MultiOp::Delete { path: r.ustring()?, version: r.i32()? },
        Some(OpCode::SetData) => MultiOp::SetData { path: r.ustring()?, data: r.opt_buffer()?, version: r.i32()? },
        Some(OpCode::Check) => MultiOp::Check { path: r.ustring()?, version: r.i32()? },
        _ => return Err(DecodeError::BadMultiOp(ty)),
    })
}

/// multiRead sub-ops are `{path; bool watch}`; ZooKeeper ignores the watch flag there.
fn decode_multi_read_op(ty: i32, r: &mut Reader<'_>) -> Result<MultiReadOp> {
    let op = match OpCode::from_i32(ty) {
        Some(OpCode::GetChildren) => MultiReadOp::GetChildren { path: r.ustring()? },
        Some(OpCode::GetData) => MultiReadOp::GetData { path: r.ustring()? },
        _ => return Err(DecodeError::BadMultiOp(ty)),
    };
    r.bool()?;
    Ok(op)
}

/// Client side: the inverse of `decode_request`. The header is written as given and the
/// body follows the variant, except that `SetWatches` writes the five-list setWatches2 form
/// when `header.op` is 105. `Unimplemented` writes the header only.
pub fn encode_request(out: &mut BytesMut, header: RequestHeader, req: &Request) {
    framed(out, |out| {
        out.put_i32(header.xid);
        out.put_i32(header.op);
        encode_request_body(out, header.op, req);
    });
}

fn encode_request_body(out: &mut BytesMut, code: i32, req: &Request) {
    match req {
        Request::Ping | Request::CloseSession | Request::WhoAmI | Request::Unimplemented(_) => {}
        Request::Reconfig { joining, leaving, new_members, cur_config_id } => {
            put_opt_ustring(out, joining);
            put_opt_ustring(out, leaving);
            put_opt_ustring(out, new_members);
            out.put_i64(*cur_config_id);
        }
        Request::Create(c) => put_create(out, c),
        Request::Delete { path, version } | Request::Check { path, version } => {
            put_ustring(out, path);
            out.put_i32(*version);
        }
        Request::Exists { path, watch }
        | Request::GetData { path, watch }
        | Request::GetChildren { path, watch }
        | Request::GetChildren2 { path, watch } => {
            put_ustring(out, path);
            put_bool(out, *watch);
        }
        Request::SetData { path, data, version } => {
            put_ustring(out, path);
            put_opt_buffer(out, data);
            out.put_i32(*version);
        }
        Request::GetAcl { path } | Request::Sync { path } | Request::GetAllChildrenNumber { path } => {
            put_ustring(out, path)
        }
        Request::GetEphemerals { prefix_path } => put_ustring(out, prefix_path),
        Request::SetAcl { path, acl, version } => {
            put_ustring(out, path);
            put_acls(out, acl);
            out.put_i32(*version);
        }
        Request::Multi(ops) => {
            for o in ops {
                put_multi_op(out, o);
            }
            put_multi_header(out, OpCode::Error.code(), true, -1);
        }
        Request::MultiRead(ops) => {
            for o in ops {
                let (ty, path) = match o {
                    MultiReadOp::GetChildren { path } => (OpCode::GetChildren.code(), path),
                    MultiReadOp::GetData { path } => (OpCode::GetData.code(), path),
                };
                put_multi_header(out, ty, false, -1);
                put_ustring(out, path);
                put_bool(out, false);
            }
            put_multi_header(out, OpCode::Error.code(), true, -1);
        }
        Request::Auth { scheme, auth } => {
            out.put_i32(0);
            put_ustring(out, scheme);
            put_buffer(out, auth);
        }
        Request::SetWatches { relative_zxid, data, exist, child, persistent, persistent_recursive } => {
            out.put_i64(*relative_zxid);
            put_strings(out, data);
            put_strings(out, exist);
            put_strings(out, child);
            if code == OpCode::SetWatches2.code() {
                put_strings(out, persistent);
                put_strings(out, persistent_recursive);
            }
        }
        Request::AddWatch { path, mode } => {
            put_ustring(out, path);
            out.put_i32(*mode);
        }
        Request::RemoveWatches { path, watch_type } | Request::CheckWatches { path, watch_type } => {
            put_ustring(out, path);
            out.put_i32(*watch_type);
        }
    }
}

fn put_create(out: &mut BytesMut, c: &CreateRequest) {
    put_ustring(out, &c.path);
    put_opt_buffer(out, &c.data);
    put_acls(out, &c.acl);
    out.put_i32(c.flags);
    if c.kind == CreateKind::CreateTtl {
        out.put_i64(c.ttl_ms);
    }
}

/// Request-side multi headers carry err=-1, as the Java client writes them.
fn put_multi_op(out: &mut BytesMut, o: &MultiOp) {
    match o {
        MultiOp::Create(c) => {
            put_multi_header(out, c.kind.opcode(), false, -1);
            put_create(out, c);
        }
        MultiOp::Delete { path, version } => {
            put_multi_header(out, OpCode::Delete.code(), false, -1);
            put_ustring(out, path);
            out.put_i32(*version);
        }
        MultiOp::SetData { path, data, version } => {
            put_multi_header(out, OpCode::SetData.code(), false, -1);
            put_ustring(out, path);
            put_opt_buffer(out, data);
            out.put_i32(*version);
        }
        MultiOp::Check { path, version } => {
            put_multi_header(out, OpCode::Check.code(), false, -1);
            put_ustring(out, path);
            out.put_i32(*version);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Replies and notifications
// ---------------------------------------------------------------------------------------

/// Server side: one reply frame. The body is written only when `header.err == 0`, because
/// clients read no body after an error (`ClientCnxn.readResponse`).
pub fn encode_reply(out: &mut BytesMut, header: ReplyHeader, resp: &Response) {
    framed(out, |out| {
        put_reply_header(out, header);
        if header.err == 0 {
            put_response(out, resp);
        }
    });
}

/// Server side: a watch notification, sent as a reply with xid -1, zxid -1, err 0.
pub fn encode_notification(out: &mut BytesMut, event: &WatcherEvent) {
    framed(out, |out| {
        put_reply_header(out, ReplyHeader { xid: super::xid::NOTIFICATION, zxid: -1, err: 0 });
        out.put_i32(event.event_type);
        out.put_i32(event.state);
        put_ustring(out, &event.path);
    });
}

fn put_reply_header(out: &mut BytesMut, h: ReplyHeader) {
    out.put_i32(h.xid);
    out.put_i64(h.zxid);
    out.put_i32(h.err);
}

fn put_response(out: &mut BytesMut, resp: &Response) {
    match resp {
        Response::Empty => {}
        Response::Create { path } | Response::Sync { path } => put_ustring(out, path),
        Response::Create2 { path, stat } => {
            put_ustring(out, path);
            put_stat(out, stat);
        }
        Response::Stat(stat) => put_stat(out, stat),
        Response::GetData { data, stat } => {
            put_opt_buffer(out, data);
            put_stat(out, stat);
        }
        Response::GetAcl { acl, stat } => {
            put_acls(out, acl);
            put_stat(out, stat);
        }
        Response::GetChildren { children } => put_strings(out, children),
        Response::GetChildren2 { children, stat } => {
            put_strings(out, children);
            put_stat(out, stat);
        }
        Response::Multi(results) => {
            for res in results {
                put_multi_result(out, res);
            }
            put_multi_header(out, OpCode::Error.code(), true, -1);
        }
        Response::GetEphemerals { paths } => put_strings(out, paths),
        Response::AllChildrenNumber(n) => out.put_i32(*n),
        Response::AddWatch => out.put_i32(0),
        Response::WhoAmI(infos) => {
            put_len(out, infos.len());
            for (scheme, user) in infos {
                put_ustring(out, scheme);
                put_ustring(out, user);
            }
        }
    }
}

/// `MultiResponse.serialize`: header {type, done=false, err} then the op's response record.
fn put_multi_result(out: &mut BytesMut, res: &MultiResult) {
    match res {
        MultiResult::Create { path } => {
            put_multi_header(out, OpCode::Create.code(), false, 0);
            put_ustring(out, path);
        }
        MultiResult::Create2 { path, stat } => {
            put_multi_header(out, OpCode::Create2.code(), false, 0);
            put_ustring(out, path);
            put_stat(out, stat);
        }
        MultiResult::Delete => put_multi_header(out, OpCode::Delete.code(), false, 0),
        MultiResult::SetData { stat } => {
            put_multi_header(out, OpCode::SetData.code(), false, 0);
            put_stat(out, stat);
        }
        MultiResult::Check => put_multi_header(out, OpCode::Check.code(), false, 0),
        MultiResult::GetChildren { children } => {
            put_multi_header(out, OpCode::GetChildren.code(), false, 0);
            put_strings(out, children);
        }
        MultiResult::GetData { data, stat } => {
            put_multi_header(out, OpCode::GetData.code(), false, 0);
            put_opt_buffer(out, data);
            put_stat(out, stat);
        }
        MultiResult::Error(err) => {
            put_multi_header(out, OpCode::Error.code(), false, *err);
            out.put_i32(*err);
        }
    }
}

/// Client side: splits a reply frame into its header and the body that follows.
pub fn decode_reply_header(payload: &[u8]) -> Result<(ReplyHeader, &[u8])> {
    let mut r = Reader::new(payload);
    let header = ReplyHeader { xid: r.i32()?, zxid: r.i64()?, err: r.i32()? };
    Ok((header, r.buf))
}

/// Client side: the body of a successful (err == 0) reply to a request with opcode `code`.
/// Opcodes whose reply has no body (delete, ping, auth, ...) and unknown ones give `Empty`.
pub fn decode_response(code: i32, body: &[u8]) -> Result<Response> {
    let mut r = Reader::new(body);
    let r = &mut r;
    Ok(match OpCode::from_i32(code) {
        Some(OpCode::Create) => Response::Create { path: r.ustring()? },
        Some(OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
            Response::Create2 { path: r.ustring()?, stat: r.stat()? }
        }
        Some(OpCode::Exists | OpCode::SetData | OpCode::SetAcl) => Response::Stat(r.stat()?),
        Some(OpCode::GetData | OpCode::Reconfig) => Response::GetData { data: r.opt_buffer()?, stat: r.stat()? },
        Some(OpCode::GetAcl) => Response::GetAcl { acl: r.acls()?, stat: r.stat()? },
        Some(OpCode::GetChildren) => Response::GetChildren { children: r.strings()? },
        Some(OpCode::GetChildren2) => Response::GetChildren2 { children: r.strings()?, stat: r.stat()? },
        Some(OpCode::Sync) => Response::Sync { path: r.ustring()? },
        Some(OpCode::Multi | OpCode::MultiRead) => Response::Multi(decode_multi_results(r)?),
        Some(OpCode::GetEphemerals) => Response::GetEphemerals { paths: r.strings()? },
        Some(OpCode::GetAllChildrenNumber) => Response::AllChildrenNumber(r.i32()?),
        Some(OpCode::WhoAmI) => Response::WhoAmI(r.vec(8, |r| Ok((r.ustring()?, r.ustring()?)))?),
        // ErrorResponse {int err}; the server always writes 0 there.
        Some(OpCode::AddWatch) => {
            r.i32()?;
            Response::AddWatch
        }
        _ => Response::Empty,
    })
}

/// `MultiResponse.deserialize`. Create results typed 15, 19 or 21 all carry path + Stat.
fn decode_multi_results(r: &mut Reader<'_>) -> Result<Vec<MultiResult>> {
    decode_multi_ops(r, |ty, r| {
        Ok(match OpCode::from_i32(ty) {
            Some(OpCode::Create) => MultiResult::Create { path: r.ustring()? },
            Some(OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
                MultiResult::Create2 { path: r.ustring()?, stat: r.stat()? }
            }
            Some(OpCode::Delete) => MultiResult::Delete,
            Some(OpCode::SetData) => MultiResult::SetData { stat: r.stat()? },
            Some(OpCode::Check) => MultiResult::Check,
            Some(OpCode::GetChildren) => MultiResult::GetChildren { children: r.strings()? },
            Some(OpCode::GetData) => MultiResult::GetData { data: r.opt_buffer()?, stat: r.stat()? },
            Some(OpCode::Error) => MultiResult::Error(r.i32()?),
            _ => return Err(DecodeError::BadMultiOp(ty)),
        })
    })
}

/// Client side: the body of a reply with xid -1.
pub fn decode_watcher_event(body: &[u8]) -> Result<WatcherEvent> {
    let mut r = Reader::new(body);
    Ok(WatcherEvent { event_type: r.i32()?, state: r.i32()?, path: r.ustring()? })
}

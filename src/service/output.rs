//! Replies and watch notifications, encoded straight into a connection's write buffer
//! (dropped if the connection is gone); packet counters and `cons`'s last zxid follow them.

use crate::jute::{self, ReplyHeader, Response, WatcherEvent};
use crate::proto::{ErrorCode, KeeperState};

use super::{ClientId, Outbox, Service};

impl Service {
    pub(super) fn notify(&mut self, client: ClientId, event: crate::proto::EventType, path: &str, out: &mut dyn Outbox) {
        // PLANTED BUG (lost_watch, tests only): every 5th notification is dropped.
        if self.cfg.planted.lost_watch && self.watches.planted_drop() {
            return;
        }
        let Some(buf) = out.client_buf(client) else { return };
        let ev = WatcherEvent { event_type: event.code(), state: KeeperState::SyncConnected.code(), path: path.to_string() };
        jute::encode_notification(buf, &ev);
        self.stats.packets_sent += 1;
        if let Some(info) = self.clients.get_mut(&client) {
            info.sent += 1;
        }
    }

    pub(super) fn reply_err(&mut self, client: ClientId, xid: i32, err: ErrorCode, out: &mut dyn Outbox) {
        self.reply(client, xid, err, &Response::Empty, out);
    }

    pub(super) fn reply(&mut self, client: ClientId, xid: i32, err: ErrorCode, resp: &Response, out: &mut dyn Outbox) {
        let zxid = self.last_zxid.0;
        self.reply_zxid(client, xid, zxid, err, resp, out);
    }

    /// ZooKeeper answers auth outside the request pipeline with zxid 0 in the header
    /// (`ZooKeeperServer.processPacket`), and it does not count as the client's last zxid.
    pub(super) fn reply_auth(&mut self, client: ClientId, xid: i32, err: ErrorCode, out: &mut dyn Outbox) {
        let Some(buf) = out.client_buf(client) else { return };
        jute::encode_reply(buf, ReplyHeader { xid, zxid: 0, err: err.code() }, &Response::Empty);
        self.stats.packets_sent += 1;
        if let Some(info) = self.clients.get_mut(&client) {
            info.sent += 1;
        }
    }

    /// A reply encoded earlier (held behind a sync), sent now.
    pub(super) fn send_held(&mut self, client: ClientId, zxid: i64, frame: &[u8], out: &mut dyn Outbox) {
        let Some(buf) = out.client_buf(client) else { return };
        buf.extend_from_slice(frame);
        self.count_reply(client, zxid);
    }

    pub(super) fn reply_zxid(&mut self, client: ClientId, xid: i32, zxid: i64, err: ErrorCode, resp: &Response, out: &mut dyn Outbox) {
        let Some(buf) = out.client_buf(client) else { return };
        jute::encode_reply(buf, ReplyHeader { xid, zxid, err: err.code() }, resp);
        self.count_reply(client, zxid);
    }

    /// A reply carrying `zxid` went to `client`: the counters and the client's last zxid.
    fn count_reply(&mut self, client: ClientId, zxid: i64) {
        self.stats.packets_sent += 1;
        if let Some(info) = self.clients.get_mut(&client) {
            info.sent += 1;
            info.last_zxid = zxid;
        }
    }
}

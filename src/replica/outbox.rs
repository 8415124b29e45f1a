//! The service's `Outbox` inside a replica: its effects become `Output`s, or inputs for the
//! replication core made in the same step.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::Output;
use crate::peer::QuorumMsg;
use crate::proto::{ServerId, Zxid};
use crate::reconfig::Membership;
use crate::service::{ClientId, Outbox};
use crate::txn::Txn;
use crate::zab;

/// Collects one service call's effects. Client bytes are encoded into one reused buffer;
/// consecutive writes to the same client become one `Output::ToClient`, cut when another
/// output comes (so the order of everything is kept) or at `seal`.
pub(super) struct Collect<'a> {
    out: &'a mut Vec<Output>,
    scratch: &'a mut BytesMut,
    /// The client whose bytes `scratch` holds.
    open: Option<ClientId>,
    /// The replication core's queue (None standalone).
    zab: Option<&'a mut VecDeque<zab::Input>>,
}

impl<'a> Collect<'a> {
    pub(super) fn new(out: &'a mut Vec<Output>, scratch: &'a mut BytesMut, zab: Option<&'a mut VecDeque<zab::Input>>) -> Self {
        Collect { out, scratch, open: None, zab }
    }

    /// Cut the bytes encoded so far into an output. Must be called when the service call
    /// returns (dropping a `Collect` unsealed loses them).
    pub(super) fn seal(&mut self) {
        if let Some(client) = self.open.take() {
            if !self.scratch.is_empty() {
                self.out.push(Output::ToClient { client, bytes: self.scratch.split().freeze() });
            }
        }
    }

    fn push(&mut self, o: Output) {
        self.seal();
        self.out.push(o);
    }
}

impl Outbox for Collect<'_> {
    fn client_buf(&mut self, client: ClientId) -> Option<&mut BytesMut> {
        if self.open != Some(client) {
            self.seal();
            self.open = Some(client);
        }
        Some(self.scratch)
    }

    fn close_client(&mut self, client: ClientId) {
        self.push(Output::CloseClient { client });
    }

    fn persist(&mut self, txn: &Txn) {
        self.push(Output::Append(txn.clone()));
    }

    fn propose(&mut self, txn: Txn) {
        if let Some(q) = self.zab.as_mut() {
            q.push_back(zab::Input::Propose(txn));
        }
    }

    fn forward(&mut self, msg: QuorumMsg) {
        if let Some(q) = self.zab.as_mut() {
            q.push_back(zab::Input::Forward(msg));
        }
    }

    fn send_peer(&mut self, to: ServerId, msg: QuorumMsg) {
        self.push(Output::SendQuorum { to, msg });
    }

    fn membership_changed(&mut self, members: &Membership, committed: bool) {
        // The loop learns the new members' addresses before replication may use them.
        self.push(Output::Membership { members: members.clone(), committed });
        if let Some(q) = self.zab.as_mut() {
            q.push_back(zab::Input::Membership { voters: members.voters(), observers: members.observers(), version: Zxid(members.version) });
        }
    }
}

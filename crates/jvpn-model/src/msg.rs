//! Messages between the actors and the ownership record they carry.
//!
//! Message fields are the protocol fields the checks read (reattach counter, token sequence,
//! challenge, epoch, status); keys, ephemerals and MACs are abstracted into "only the client can
//! create a REATTACH_INIT or PATH_CONFIRM" (the attacker can only replay what it has seen).

use jvpn_session::{Reason, State};

/// A reattach counter value (`rc`); 0 is the first attach.
pub type Rc = u8;

/// A server node, by number (1 or 2), as stored in the ownership record.
pub type NodeNo = u8;

/// A committed binding as the ownership record names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BindingRef {
    /// The node that carries the binding.
    pub node: NodeNo,
    /// The reattach counter that created it (0: the first attach).
    pub rc: Rc,
    /// The binding epoch (1 for the first attach, + 1 per committed reattach).
    pub epoch: u8,
}

/// A claimed, not yet committed reattach as the ownership record names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingRef {
    /// The node that won the claim (CAS #1).
    pub node: NodeNo,
    /// The claimed reattach counter.
    pub rc: Rc,
}

/// The session's ownership record in the store (ATTACKS.md 3.4 h/j): the cluster's truth.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    /// The session state as the cluster sees it (`Birth` = no record yet).
    pub state: State,
    /// The epoch of the last committed binding.
    pub epoch: u8,
    /// The committed binding, present exactly while `state` is bound.
    pub binding: Option<BindingRef>,
    /// The claimed reattach waiting for its PATH_CONFIRM.
    pub pending: Option<PendingRef>,
    /// The highest reattach counter ever claimed (`record.last_rc`).
    pub last_rc: Rc,
    /// The highest token sequence ever used (single-use token floor).
    pub token_floor: u8,
    /// Rebinds committed so far (the switch budget spent).
    pub switches: u8,
}

impl Record {
    /// The empty record: no session yet.
    pub const ABSENT: Record = Record {
        state: State::Birth,
        epoch: 0,
        binding: None,
        pending: None,
        last_rc: 0,
        token_floor: 0,
        switches: 0,
    };
}

/// A record with the store version (etcd `ModRevision`) it was read at: the fencing token.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Snapshot {
    /// The store version; 0 while no record exists, + 1 per write.
    pub version: u8,
    /// The record at that version.
    pub record: Record,
}

/// The path challenge of a REATTACH_RESP. Real challenges are 16 random bytes; a node claims a
/// given `rc` at most once (the claim raises `last_rc`), so `(node, rc)` is as unique as they are,
/// and the attacker cannot forge one (it can only replay a PATH_CONFIRM the client sent).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Challenge {
    /// The node that issued it.
    pub node: NodeNo,
    /// The reattach it belongs to.
    pub rc: Rc,
}

/// The authenticated status of a REATTACH_RESP (protocol.md section 13).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Claimed: confirm the path with the challenge.
    Ok,
    /// A newer reattach claimed the session first.
    Superseded,
    /// The session's recovery window is over (the record is TERMINATED).
    Expired,
    /// The switch budget is spent.
    Policy,
}

/// Which request a store reply answers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CasTag {
    /// The first attach creating the record.
    Birth,
    /// CAS #1 (or the read before it) for this reattach counter.
    Claim(Rc),
    /// CAS #2 for this reattach counter.
    Commit(Rc),
}

/// Every message of the model.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    /// Client → node: the first-attach handshake (BIRTH).
    AttachInit,
    /// Node → client: the handshake answer; the session is ATTACHED at epoch 1, tokens granted.
    AttachResp,
    /// Client → node: REATTACH_INIT with its counter and one single-use token.
    ReattachInit {
        /// The reattach counter, strictly increasing per session.
        rc: Rc,
        /// The token's sequence number.
        token: u8,
    },
    /// Node → client: REATTACH_RESP.
    ReattachResp {
        /// The counter of the REATTACH_INIT it answers (the Noise ephemeral binds it).
        rc: Rc,
        /// The status.
        status: Status,
        /// The path challenge (meaningful when `status` is `Ok`).
        challenge: Challenge,
    },
    /// Client → node: PATH_CONFIRM echoing the challenge under the new keys.
    PathConfirm {
        /// The counter of the reattach it confirms.
        rc: Rc,
        /// The echoed challenge.
        challenge: Challenge,
    },
    /// Node → client: PATH_RESPONSE after the commit; the binding is live.
    PathResponse {
        /// The counter of the committed reattach.
        rc: Rc,
    },
    /// Node → store: compare-and-swap on the version (`write: None` is a plain read).
    Cas {
        /// The request this is.
        tag: CasTag,
        /// The version the node read the record at.
        expected: u8,
        /// The record to write and the reason of its state transition (`None`: same state).
        write: Option<(Record, Option<Reason>)>,
    },
    /// Store → node: the outcome, always with the current record.
    StoreReply {
        /// The request answered.
        tag: CasTag,
        /// Whether the write was applied.
        applied: bool,
        /// The record after the request.
        current: Snapshot,
    },
    /// Store → node: a watch event after a write the node did not make.
    Watch(Snapshot),
}

impl Msg {
    /// Whether only the client can create this message (so the attacker may only replay it).
    pub fn is_client_originated(&self) -> bool {
        matches!(
            self,
            Msg::AttachInit | Msg::ReattachInit { .. } | Msg::PathConfirm { .. }
        )
    }
}

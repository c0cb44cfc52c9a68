//! The nonce ledger (ATTACKS.md S28): every DATA / CONTROL frame the client and the server
//! nodes send is entered as `(key, counter)`, and no pair may appear twice, across restarts.
//!
//! The sim cannot see key material, so a key is named by the handshake that made it: the
//! server's reply (HANDSHAKE_RESP or REATTACH_RESP), which carries the server's new receiver
//! index and echoes the client's. Client -> server frames name the server's index, so their key
//! is the newest reply (from any node) that carried that index as its sender index;
//! server -> client frames name the client's index, so their key is the newest reply the
//! sending node itself sent to that index. A node that came back from a restart and sealed with
//! a key from before it (keys persisted) would repeat `(key, counter)` pairs, and is also caught
//! directly: a node may only seal under keys its current incarnation made.

use std::collections::{BTreeMap, BTreeSet};

use jvpn_wire::frame::{DataHeader, HandshakeRespPacket, ReattachRespPacket};
use jvpn_wire::{MessageType, peek_type};

use super::attacker::{FrameHash, hash};

/// Who made a key: the hash of the reply that made it and the node incarnation that sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Origin {
    reply: FrameHash,
    node: usize,
    incarnation: u32,
}

/// Direction of a frame, half of a key's name (each handshake makes one key per direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    Up,
    Down,
}

/// What the ledger saw in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NonceFigures {
    /// DATA / CONTROL frames entered.
    pub frames: u64,
    /// Distinct keys they were sealed under.
    pub keys: u64,
    /// Frames whose key the ledger could not name (no reply carried their receiver index).
    pub unnamed: u64,
    /// Stateless resets the nodes sent (they look like DATA frames but seal nothing: skipped).
    pub resets: u64,
}

/// The ledger: see the module doc.
#[derive(Debug, Default)]
pub(crate) struct NonceLedger {
    /// Server receiver index -> the reply that made it.
    up_keys: BTreeMap<u32, Origin>,
    /// (node, client receiver index) -> the reply that node sent to it.
    down_keys: BTreeMap<(usize, u32), Origin>,
    used: BTreeSet<(Direction, FrameHash, u64)>,
    /// Stateless resets a node incarnation queued and has not sent yet.
    pending_resets: BTreeMap<(usize, u32), u64>,
    keys: BTreeSet<(Direction, FrameHash)>,
    pub(crate) figures: NonceFigures,
}

impl NonceLedger {
    /// A frame node `node` (incarnation `incarnation`) sent. Returns a violation, if any.
    pub(crate) fn server_sent(
        &mut self,
        node: usize,
        incarnation: u32,
        frame: &[u8],
    ) -> Option<String> {
        let indices = match peek_type(frame) {
            Ok(MessageType::HandshakeResp) => HandshakeRespPacket::new_checked(frame)
                .ok()
                .map(|p| (p.sender_index(), p.receiver_index())),
            Ok(MessageType::ReattachResp) => ReattachRespPacket::new_checked(frame)
                .ok()
                .map(|p| (p.sender_index(), p.receiver_index())),
            Ok(MessageType::Data | MessageType::Control) => {
                let header = DataHeader::parse(frame).ok()?;
                let origin = self.down_keys.get(&(node, header.receiver_index)).copied();
                // A stateless reset is built to look like a DATA frame under a random index, but
                // nothing is sealed in it: one the node queued is counted, not entered.
                if origin.is_none()
                    && let Some(pending) = self.pending_resets.get_mut(&(node, incarnation))
                    && *pending > 0
                {
                    *pending -= 1;
                    self.figures.resets += 1;
                    return None;
                }
                if let Some(o) = origin
                    && o.incarnation != incarnation
                {
                    return Some(format!(
                        "node {node} (incarnation {incarnation}) sealed a frame under a key of \
                         its incarnation {} (counter {})",
                        o.incarnation, header.counter
                    ));
                }
                return self.enter(Direction::Down, origin, header, node);
            }
            _ => None,
        };
        if let Some((server_index, client_index)) = indices {
            let origin = Origin {
                reply: hash(frame),
                node,
                incarnation,
            };
            self.up_keys.insert(server_index, origin);
            self.down_keys.insert((node, client_index), origin);
        }
        None
    }

    /// Node `node` (incarnation `incarnation`) queued `count` stateless resets.
    pub(crate) fn resets_queued(&mut self, node: usize, incarnation: u32, count: u64) {
        if count > 0 {
            *self.pending_resets.entry((node, incarnation)).or_insert(0) += count;
        }
    }

    /// A frame the client sent. Returns a violation, if any.
    pub(crate) fn client_sent(&mut self, frame: &[u8]) -> Option<String> {
        if !matches!(
            peek_type(frame),
            Ok(MessageType::Data | MessageType::Control)
        ) {
            return None;
        }
        let header = DataHeader::parse(frame).ok()?;
        let origin = self.up_keys.get(&header.receiver_index).copied();
        self.enter(Direction::Up, origin, header, usize::MAX)
    }

    fn enter(
        &mut self,
        direction: Direction,
        origin: Option<Origin>,
        header: DataHeader,
        sender: usize,
    ) -> Option<String> {
        self.figures.frames += 1;
        let Some(origin) = origin else {
            self.figures.unnamed += 1;
            return None;
        };
        if self.keys.insert((direction, origin.reply)) {
            self.figures.keys += 1;
        }
        if self.used.insert((direction, origin.reply, header.counter)) {
            return None;
        }
        let who = if sender == usize::MAX {
            "the client".to_owned()
        } else {
            format!("node {sender}")
        };
        Some(format!(
            "nonce reuse: {who} sent {:?} counter {} twice under the {direction:?} key of a \
             reply by node {} (incarnation {})",
            header.ty, header.counter, origin.node, origin.incarnation
        ))
    }
}

#[cfg(test)]
mod tests {
    use jvpn_wire::frame::HandshakeRespRepr;

    use super::*;

    fn resp(server_index: u32, client_index: u32, noise: u8) -> Vec<u8> {
        let noise = [noise; 48];
        let repr = HandshakeRespRepr {
            sender_index: server_index,
            receiver_index: client_index,
            noise_message: &noise,
            mac1: [0; 16],
            mac2: [0; 16],
        };
        let mut out = vec![0; repr.buffer_len()];
        repr.emit(&mut out).expect("a valid reply");
        out
    }

    fn data(receiver_index: u32, counter: u64, fill: u8) -> Vec<u8> {
        let mut out = vec![fill; 64];
        DataHeader {
            ty: MessageType::Data,
            receiver_index,
            counter,
        }
        .emit(&mut out)
        .expect("a valid header");
        out
    }

    #[test]
    fn a_counter_repeated_under_one_key_is_a_violation_in_either_direction() {
        let mut ledger = NonceLedger::default();
        assert_eq!(ledger.server_sent(0, 0, &resp(10, 20, 1)), None);

        let up = [
            ledger.client_sent(&data(10, 0, 1)),
            ledger.client_sent(&data(10, 0, 2)),
        ];
        let down = [
            ledger.server_sent(0, 0, &data(20, 5, 1)),
            ledger.server_sent(0, 0, &data(20, 5, 1)),
        ];

        assert_eq!(up[0], None);
        assert!(up[1].as_deref().is_some_and(|v| v.contains("nonce reuse")));
        assert_eq!(down[0], None);
        assert!(down[1].is_some());
    }

    #[test]
    fn a_new_handshake_on_a_reused_index_names_a_new_key() {
        let mut ledger = NonceLedger::default();
        ledger.server_sent(0, 0, &resp(10, 20, 1));
        let first = ledger.client_sent(&data(10, 0, 1));

        ledger.server_sent(0, 1, &resp(10, 20, 2));
        let second = ledger.client_sent(&data(10, 0, 1));

        assert_eq!((first, second), (None, None));
        assert_eq!(ledger.figures.keys, 2);
    }

    #[test]
    fn a_restarted_node_sealing_under_a_key_from_before_its_restart_is_a_violation() {
        let mut ledger = NonceLedger::default();
        ledger.server_sent(1, 0, &resp(10, 20, 1));
        assert_eq!(ledger.server_sent(1, 0, &data(20, 0, 1)), None);

        let after_restart = ledger.server_sent(1, 1, &data(20, 1, 1));

        assert!(after_restart.is_some_and(|v| v.contains("incarnation 0")));
    }

    #[test]
    fn nodes_answering_one_client_index_have_separate_keys() {
        let mut ledger = NonceLedger::default();
        ledger.server_sent(0, 0, &resp(10, 20, 1));
        ledger.server_sent(1, 0, &resp(11, 20, 2));

        let from_0 = ledger.server_sent(0, 0, &data(20, 0, 1));
        let from_1 = ledger.server_sent(1, 0, &data(20, 0, 1));

        assert_eq!((from_0, from_1), (None, None));
    }
}

//! DATA and CONTROL frames: opening what arrives, sealing what leaves. The per-packet path:
//! no allocation once buffers are warm, no formatting.

use std::time::Instant;

use jvpn_wire::control::MAX_CONTROL_LEN;
use jvpn_wire::frame::{DATA_HEADER_LEN, DATA_TAG_LEN, DataPacket};
use jvpn_wire::{ControlMessage, MessageType, OpenError};

use super::keys::Slot;
use super::multipath::PROBER_SEQ_BIT;
use super::{DropReason, Event, Inbound, RoleState, Session, Transmit};
use crate::{PathId, Reason, TimerKind};

/// The Close reason code for an orderly close. Codes belong to this layer; receivers treat
/// every code as "the peer closed".
const CLOSE_NORMAL: u8 = 0;

impl Session {
    /// DATA / CONTROL. Order: parse, key by receiver index, binding and path (before any
    /// decryption: no implicit roaming), key age, then open (replay check before the AEAD,
    /// commit after).
    pub(super) fn handle_sealed(&mut self, path: PathId, buf: &mut [u8], now: Instant) -> Inbound {
        if self.sm.state().is_terminated() {
            return Inbound::Dropped(DropReason::Terminated);
        }
        let Ok(packet) = DataPacket::new_checked(&*buf) else {
            return Inbound::Dropped(DropReason::Malformed);
        };
        let index = packet.receiver_index();
        let message_type = packet.message_type();
        // Keys of a reattach waiting for its PATH_CONFIRM.
        if let Some(inbound) = self.try_pending_frame(path, buf, now) {
            return inbound;
        }
        let Some(slot) = self.keys.slot_for(index) else {
            return Inbound::Dropped(DropReason::UnknownReceiver);
        };
        if slot == Slot::Fenced {
            return Inbound::Dropped(DropReason::Fenced);
        }
        let off_path = match self.sm.binding() {
            None => Some(DropReason::NotAttached),
            Some(binding) if binding.path != Some(path) => Some(DropReason::WrongPath),
            Some(_) => None,
        };
        if let Some(reason) = off_path {
            // Only probes travel off the binding, and only CONTROL frames can be probes:
            // DATA is dropped before any decryption (no implicit roaming).
            if message_type != MessageType::Control || !self.probes_allowed_on(path) {
                return Inbound::Dropped(reason);
            }
            return self.handle_off_path(path, buf, slot, reason, now);
        }
        let reject_after = self.limits.reject_after;
        let Some((recv, created)) = self.keys.recv_mut(slot) else {
            return Inbound::Dropped(DropReason::UnknownReceiver);
        };
        if created.is_some_and(|c| now >= c + reject_after) {
            return Inbound::Dropped(DropReason::KeyExpired);
        }
        let (ty, range) = match recv.open(buf) {
            Ok(opened) => opened,
            Err(err) => return Inbound::Dropped(open_drop(err)),
        };
        self.timers
            .set(TimerKind::DeadPeer, now + self.policy.dead_after);
        self.mp_on_received(path, now);
        if slot == Slot::Next {
            self.confirm_next_keys(now);
        }
        if let RoleState::Server(server) = &mut self.role {
            server.keys_confirmed = true;
        }
        match ty {
            MessageType::Control => self.handle_control(path, &buf[range], now),
            _ => {
                self.stats.packets_in = self.stats.packets_in.saturating_add(1);
                self.stats.bytes_in = self.stats.bytes_in.saturating_add(range.len() as u64);
                Inbound::Inner(range)
            }
        }
    }

    /// Server: the client used the staged keys, so it has them: they become current.
    fn confirm_next_keys(&mut self, now: Instant) {
        self.keys.promote_next(now + self.policy.rekey_grace);
        if let RoleState::Server(server) = &mut self.role {
            server.rekey_requested = false;
        }
        self.arm_key_timers(now);
        self.stats.handshakes = self.stats.handshakes.saturating_add(1);
        self.stats.last_handshake_at = Some(now);
        if let Some(session_id) = self.session_id {
            self.events.push_back(Event::Rekeyed {
                session_id,
                epoch: self.sm.epoch(),
            });
        }
    }

    /// Whether a CONTROL frame off the binding may be opened: a server answers probes on any
    /// path; a client accepts probe answers on its candidate paths.
    fn probes_allowed_on(&self, path: PathId) -> bool {
        match self.role {
            RoleState::Server(_) => true,
            RoleState::Client(_) => self.mp_is_candidate(path),
        }
    }

    /// A CONTROL frame on a path that is not the binding (or with no binding): a PROBE is
    /// answered on its arrival path (server), a prober's PROBE_ACK is measured (client);
    /// anything else is dropped for `reason`. The binding never moves.
    fn handle_off_path(
        &mut self,
        path: PathId,
        buf: &mut [u8],
        slot: Slot,
        reason: DropReason,
        now: Instant,
    ) -> Inbound {
        let reject_after = self.limits.reject_after;
        let Some((recv, created)) = self.keys.recv_mut(slot) else {
            return Inbound::Dropped(DropReason::UnknownReceiver);
        };
        if created.is_some_and(|c| now >= c + reject_after) {
            return Inbound::Dropped(DropReason::KeyExpired);
        }
        let range = match recv.open(buf) {
            Ok((_, range)) => range,
            Err(err) => return Inbound::Dropped(open_drop(err)),
        };
        let Ok(msg) = ControlMessage::parse(&buf[range]) else {
            return Inbound::Dropped(DropReason::BadControl);
        };
        match (&self.role, msg) {
            (RoleState::Server(_), ControlMessage::Probe { seq, sent_micros }) => {
                // The answer is exactly as long as the probe: no amplification. Flagged as off
                // the binding: if the client thinks this is its bound path, we see it from
                // another address and it must revalidate (reattach) for the binding to move.
                self.queue_on_path(
                    path,
                    ControlMessage::ProbeAckOffBinding {
                        seq,
                        echo_micros: sent_micros,
                    },
                );
            }
            // A standby is off the binding by definition, so either answer is a plain one
            // here (and while RECOVERING nothing is bound: a flagged answer starts nothing).
            (
                RoleState::Client(_),
                ControlMessage::ProbeAck { seq, .. }
                | ControlMessage::ProbeAckOffBinding { seq, .. },
            ) if seq & PROBER_SEQ_BIT != 0 => {
                self.mp_on_received(path, now);
                self.mp_on_probe_ack(path, seq, now);
            }
            _ => return Inbound::Dropped(reason),
        }
        Inbound::Consumed
    }

    fn handle_control(&mut self, path: PathId, plaintext: &[u8], now: Instant) -> Inbound {
        let Ok(msg) = ControlMessage::parse(plaintext) else {
            return Inbound::Dropped(DropReason::BadControl);
        };
        match msg {
            ControlMessage::Keepalive => {}
            ControlMessage::ProbeAck { seq, .. } if seq & PROBER_SEQ_BIT != 0 => {
                self.mp_on_probe_ack(path, seq, now);
            }
            ControlMessage::ProbeAck { seq, .. } => self.handle_probe_ack(seq, now),
            ControlMessage::ProbeAckOffBinding { seq, .. }
                if matches!(self.role, RoleState::Client(_)) =>
            {
                // Our bound path, but the server answered as off its binding: it sees this
                // path from another address. The probe still counts as answered.
                if seq & PROBER_SEQ_BIT != 0 {
                    self.mp_on_probe_ack(path, seq, now);
                } else {
                    self.handle_probe_ack(seq, now);
                }
                self.revalidate_bound_path(path, Reason::TransportDead, now);
            }
            ControlMessage::Close { .. } => self.terminate(Reason::PeerClosed, now),
            ControlMessage::RekeyRequest => self.start_rekey(now),
            ControlMessage::PathResponse { response } => self.on_path_response(response),
            ControlMessage::PathConfirm {
                response,
                challenge,
            } => self.on_repeated_path_confirm(response, challenge),
            ControlMessage::Probe { seq, sent_micros } => {
                self.control_out.push_back(ControlMessage::ProbeAck {
                    seq,
                    echo_micros: sent_micros,
                });
            }
            _ => return Inbound::Dropped(DropReason::BadControl),
        }
        Inbound::Consumed
    }

    pub(super) fn next_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some((path, frame)) = self.handshake_out.pop_front() {
            buf.clear();
            buf.extend_from_slice(&frame);
            return Some(Transmit {
                path,
                len: frame.len(),
            });
        }
        if let Some(path) = self.close_pending.take() {
            let msg = ControlMessage::Close {
                reason: CLOSE_NORMAL,
            };
            let sent = self
                .seal_control(msg, now, buf)
                .map(|len| Transmit { path, len });
            self.keys.drop_all();
            return sent;
        }
        if self.sm.state().is_terminated() {
            return None;
        }
        while let Some((path, msg)) = self.path_out.pop_front() {
            if !self.key_usable(now) {
                continue;
            }
            // Probes on standby paths do not count as traffic on the binding: the keepalive
            // that keeps the bound path (and its NAT mapping) alive stays due.
            let keepalive = self.timers.get(TimerKind::Keepalive);
            let sealed = self.seal_control(msg, now, buf);
            if self.bound_path() != Some(path) {
                match keepalive {
                    Some(at) => self.timers.set(TimerKind::Keepalive, at),
                    None => self.timers.stop(TimerKind::Keepalive),
                }
            }
            if let Some(len) = sealed {
                return Some(Transmit { path, len });
            }
        }
        while let Some(msg) = self.control_out.pop_front() {
            // Control messages that cannot go out now (no binding, key at its limit) are
            // stale by the time they could: drop them.
            let Some(path) = self.sendable_path(now) else {
                continue;
            };
            if let Some(len) = self.seal_control(msg, now, buf) {
                if msg == ControlMessage::Keepalive {
                    self.stats.keepalives_sent = self.stats.keepalives_sent.saturating_add(1);
                }
                return Some(Transmit { path, len });
            }
        }
        let inner_len = self.data_out.front()?.len();
        let path = self.sendable_path(now)?;
        let frame_len = DATA_HEADER_LEN + inner_len + DATA_TAG_LEN;
        buf.clear();
        buf.resize(frame_len, 0);
        if let Some(inner) = self.data_out.front() {
            buf[DATA_HEADER_LEN..DATA_HEADER_LEN + inner_len].copy_from_slice(inner);
        }
        let len = self.seal(MessageType::Data, buf, inner_len, now)?;
        self.data_out.pop_recycle();
        self.mp_on_data_sent(now);
        self.stats.packets_out = self.stats.packets_out.saturating_add(1);
        self.stats.bytes_out = self.stats.bytes_out.saturating_add(inner_len as u64);
        Some(Transmit { path, len })
    }

    /// The bound path, if the current send key may seal one more frame now.
    fn sendable_path(&mut self, now: Instant) -> Option<PathId> {
        let path = self.sm.binding()?.path?;
        if let RoleState::Server(server) = &self.role
            && !server.keys_confirmed
        {
            // Queued data waits for the client's first frame under these keys.
            return None;
        }
        let limits = self.limits;
        let key = self.keys.current.as_ref()?;
        let too_old = now >= key.created + limits.reject_after;
        let exhausted = key.send.packets_sent() >= limits.reject_after_messages;
        if too_old || exhausted {
            // Never send on a key past its limits: wait for the rekey (queued packets stay).
            self.start_rekey(now);
            return None;
        }
        Some(path)
    }

    /// Whether the current send key may seal one more frame now (without starting a rekey).
    fn key_usable(&self, now: Instant) -> bool {
        let limits = self.limits;
        self.keys.current.as_ref().is_some_and(|key| {
            now < key.created + limits.reject_after
                && key.send.packets_sent() < limits.reject_after_messages
        })
    }

    /// Seals one control message into `buf`; returns the frame length.
    fn seal_control(
        &mut self,
        msg: ControlMessage,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<usize> {
        buf.clear();
        buf.resize(DATA_HEADER_LEN + MAX_CONTROL_LEN + DATA_TAG_LEN, 0);
        let len = msg.emit(&mut buf[DATA_HEADER_LEN..]).ok()?;
        self.seal(MessageType::Control, buf, len, now)
    }

    /// Seals `buf[DATA_HEADER_LEN..][..plaintext_len]` in place with the current send key.
    fn seal(
        &mut self,
        ty: MessageType,
        buf: &mut Vec<u8>,
        plaintext_len: usize,
        now: Instant,
    ) -> Option<usize> {
        let key = self.keys.current.as_mut()?;
        let len = key.send.seal(ty, buf, plaintext_len).ok()?;
        buf.truncate(len);
        let sent = key.send.packets_sent();
        if !self.sm.state().is_terminated() {
            self.timers
                .set(TimerKind::Keepalive, now + self.policy.keepalive_interval);
        }
        if sent >= self.limits.rekey_after_messages {
            if let RoleState::Server(server) = &mut self.role {
                if !server.rekey_requested {
                    server.rekey_requested = true;
                    self.control_out.push_back(ControlMessage::RekeyRequest);
                }
            } else {
                self.start_rekey(now);
            }
        }
        Some(len)
    }
}

fn open_drop(err: OpenError) -> DropReason {
    match err {
        OpenError::Replayed => DropReason::Replayed,
        OpenError::CounterLimit => DropReason::CounterLimit,
        OpenError::AuthenticationFailed => DropReason::AuthenticationFailed,
        OpenError::WrongReceiver => DropReason::UnknownReceiver,
        _ => DropReason::Malformed,
    }
}

//! The client role: handshake initiation, retries and rekey (reattach is in `reattach.rs`).

use std::fmt;
use std::time::Instant;

use jvpn_wire::frame::handshake_init_len;
use jvpn_wire::payload::{INIT_PAYLOAD_LEN, PADDED_INIT_PAYLOAD_LEN, emit_init_padding};
use jvpn_wire::{
    HandshakeError, InitPayload, InitiatorHandshake, MAX_HANDSHAKE_PAYLOAD, Psk, PublicKey,
    ResetToken, RespPayload, ResumptionGrant, StaticSecret,
};

use super::cookie::CookieJar;
use super::keys::ActiveKeys;
use super::reattach::ClientReattach;
use super::reset::ClientResetToken;
use super::{DropReason, Event, Inbound, RoleState, Session};
use crate::{ClientConfig, PathId, Reason, SessionRng, State, TimerKind};

/// Tries at drawing a fresh sender index before accepting a (harmless) collision.
const INDEX_TRIES: usize = 8;

/// What only a client session holds.
pub(crate) struct ClientRole {
    pub(super) local_key: StaticSecret,
    pub(super) server_key: PublicKey,
    psk: Psk,
    pub(super) prologue: Vec<u8>,
    pub(super) rng: Box<dyn SessionRng>,
    /// Grant, tokens, counter and the attempt in flight of the authenticated reattach.
    pub(super) reattach: ClientReattach,
    /// The cookie-defence cookie (MAC2 of the next initiations).
    pub(super) cookies: CookieJar,
    /// The stateless-reset token of the server index the current keys address.
    pub(super) reset_token: Option<ClientResetToken>,
    /// The initiation in flight, if any (BIRTH, rekey or resume).
    pending: Option<InitiatorHandshake>,
    /// Timestamps must strictly increase per client key (the server's replay guard), even if
    /// the anchor is coarse or two initiations share an instant.
    last_unix_nanos: u64,
}

impl fmt::Debug for ClientRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRole")
            .field("server_key", &self.server_key)
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientRole {
    pub(crate) fn new(cfg: ClientConfig, rng: Box<dyn SessionRng>) -> Self {
        ClientRole {
            prologue: jvpn_wire::prologue(&cfg.offered_transports),
            local_key: cfg.local_key,
            server_key: cfg.server_key,
            psk: cfg.psk,
            rng,
            pending: None,
            last_unix_nanos: 0,
            reattach: ClientReattach::default(),
            cookies: CookieJar::default(),
            reset_token: None,
        }
    }

    pub(crate) fn abandon_handshake(&mut self) {
        self.pending = None;
    }

    /// Builds a HANDSHAKE_INIT with a new ephemeral key and a new sender index.
    fn initiation(
        &mut self,
        unix_nanos: u64,
        resume: Option<jvpn_wire::SessionId>,
        avoid: impl Fn(u32) -> bool,
    ) -> Result<Vec<u8>, HandshakeError> {
        let mut index = 0;
        for _ in 0..INDEX_TRIES {
            index = self.rng.next_u32();
            if index != 0 && !avoid(index) {
                break;
            }
        }
        let unix_nanos = unix_nanos.max(self.last_unix_nanos.saturating_add(1));
        let payload = InitPayload { unix_nanos, resume };
        // Padded so that the response, which carries a resumption grant, is never larger than
        // this request (anti-amplification).
        let mut payload_buf = [0u8; PADDED_INIT_PAYLOAD_LEN];
        let fixed = payload.emit(&mut payload_buf)?;
        let payload_len =
            fixed + emit_init_padding(&mut payload_buf[fixed..], PADDED_INIT_PAYLOAD_LEN - fixed)?;
        debug_assert_eq!(fixed, INIT_PAYLOAD_LEN);
        let mut hs = InitiatorHandshake::new(
            &self.local_key,
            &self.server_key,
            &self.psk,
            &self.prologue,
            &mut self.rng,
        )?;
        let mut frame = vec![0u8; handshake_init_len(payload_len)];
        let len = hs.write_init(index, &payload_buf[..payload_len], &mut frame)?;
        frame.truncate(len);
        self.last_unix_nanos = unix_nanos;
        self.pending = Some(hs);
        Ok(frame)
    }
}

impl Session {
    /// Client: sends a new HANDSHAKE_INIT (first attach, rekey or resume) and arms the retry.
    pub(super) fn start_handshake(&mut self, now: Instant) -> Result<(), HandshakeError> {
        let unix_nanos = self.clock.unix_nanos_at(now);
        let resume = self.session_id;
        let retry_at = now + self.policy.handshake_retry;
        let RoleState::Client(client) = &mut self.role else {
            return Ok(());
        };
        let keys = &self.keys;
        // Keep the retry armed even if building fails: the next attempt may succeed.
        self.timers.set(TimerKind::HandshakeRetry, retry_at);
        let mut frame = client.initiation(unix_nanos, resume, |i| keys.slot_for(i).is_some())?;
        client.cookies.stamp(&mut frame, now);
        self.handshake_out.push_back((self.path, frame));
        self.stats.handshake_messages_sent = self.stats.handshake_messages_sent.saturating_add(1);
        Ok(())
    }

    /// Client: starts a handshake unless one is in flight (rekey triggers).
    pub(super) fn start_rekey(&mut self, now: Instant) {
        let in_flight = match &self.role {
            RoleState::Client(client) => client.pending.is_some(),
            RoleState::Server(_) => true,
        };
        if !in_flight && self.sm.state().is_bound() {
            // A failure leaves the retry timer armed; nothing else to do.
            let _ = self.start_handshake(now);
        }
    }

    /// Client: HANDSHAKE_RESP.
    pub(super) fn handle_resp(&mut self, path: PathId, buf: &[u8], now: Instant) -> Inbound {
        let RoleState::Client(client) = &mut self.role else {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        };
        let Some(pending) = client.pending.as_ref() else {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        };
        // Cheap checks first, without consuming the handshake: a spoofed or stale response
        // must not cost us the one in flight.
        if let Err(err) = pending.check_resp(buf) {
            return Inbound::Dropped(match err {
                HandshakeError::Mac1Invalid => DropReason::Mac1Invalid,
                HandshakeError::Malformed(_) | HandshakeError::Mac2Invalid => DropReason::Malformed,
                _ => DropReason::UnexpectedHandshake,
            });
        }
        let Some(pending) = client.pending.take() else {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        };
        let mut payload = [0u8; MAX_HANDSHAKE_PAYLOAD];
        // On failure the retry timer sends a fresh initiation.
        let Ok(done) = pending.read_resp(buf, &mut payload) else {
            return Inbound::Dropped(DropReason::HandshakeFailed);
        };
        let Ok(resp) = RespPayload::parse(&payload[..done.payload_len]) else {
            return Inbound::Dropped(DropReason::Malformed);
        };
        let grant = ResumptionGrant::find(&payload[..done.payload_len])
            .ok()
            .flatten();
        let reset_token = ResetToken::find_in_resp(&payload[..done.payload_len])
            .ok()
            .flatten();
        zeroize::Zeroize::zeroize(&mut payload[..]);
        if let (Some(grant), RoleState::Client(client)) = (grant, &mut self.role) {
            client.reattach.store_grant(grant);
        }
        let keys = ActiveKeys::new(done.keys, now);
        let inbound = self.complete_handshake(resp, keys, path, now);
        self.store_reset_token(done.peer_index, reset_token);
        inbound
    }

    fn complete_handshake(
        &mut self,
        resp: RespPayload,
        keys: ActiveKeys,
        path: PathId,
        now: Instant,
    ) -> Inbound {
        let state = self.sm.state();
        match state {
            State::Birth => {
                self.session_id = Some(resp.session_id);
                let peer = *self.peer_static.as_bytes();
                if self.sm.set_identity(&resp.session_id.0, peer).is_err() {
                    self.terminate(Reason::PolicyViolation, now);
                    return Inbound::Consumed;
                }
                self.keys.install(keys, None);
                self.timers.stop(TimerKind::HandshakeTimeout);
                self.finish_client_handshake(now);
                self.rebind(path, now);
            }
            State::Recovering => {
                if self.session_id != Some(resp.session_id) {
                    // The lost-session probe was answered: the server no longer has it.
                    self.terminate(Reason::SessionLost, now);
                    return Inbound::Consumed;
                }
                // Our own session answered a resume (a rekey the server staged): a binding
                // moves only by REATTACH, so these keys are dropped.
                self.timers
                    .set(TimerKind::HandshakeRetry, now + self.policy.handshake_retry);
                return Inbound::Dropped(DropReason::UnexpectedHandshake);
            }
            s if s.is_bound() => {
                if self.session_id != Some(resp.session_id) {
                    self.terminate(Reason::SessionLost, now);
                    return Inbound::Consumed;
                }
                // A rekey on the same binding: frames in flight under the old key still open
                // during the grace.
                self.keys.install(keys, Some(now + self.policy.rekey_grace));
                self.finish_client_handshake(now);
                self.events.push_back(Event::Rekeyed {
                    session_id: resp.session_id,
                    epoch: self.sm.epoch(),
                });
            }
            _ => return Inbound::Dropped(DropReason::Terminated),
        }
        Inbound::Consumed
    }

    fn finish_client_handshake(&mut self, now: Instant) {
        self.timers.stop(TimerKind::HandshakeRetry);
        self.after_handshake(now);
        // Confirm the new keys to the server at once (it sends under them only after it has
        // received something under them), unless data is about to do it anyway.
        if self.data_out.is_empty() {
            self.control_out
                .push_back(jvpn_wire::ControlMessage::Keepalive);
        }
    }
}

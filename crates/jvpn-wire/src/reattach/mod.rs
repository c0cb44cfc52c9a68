//! Authenticated REATTACH: Noise `IKpsk1_25519_AESGCM_BLAKE2s` keyed with a per-session
//! resumption PSK, behind an opaque token and a MAC1 gate.
//!
//! ```text
//! initiator                                         responder
//! ReattachInitiator::new
//! write_init ── REATTACH_INIT (token, e, es, s, ss, psk) ──> parse → verify_mac1 (no DH)
//!                                                            → open_token (one AEAD)
//!                                                            caller: exact-replay filter on
//!                                                              ephemeral(), look up the record
//!                                                              by claims().session_id
//!                                                            → read_init (2 DH: PoP proven)
//!                                                            caller: freshness, policy, CAS
//! read_resp  <── REATTACH_RESP (e, ee, se) ─────────────── IncomingReattach::write_resp
//! PATH_CONFIRM (CONTROL, new keys) ──────────────────────> caller commits the binding
//! ```
//!
//! The responder's steps are typed: [`ReattachInitView`] → [`Mac1Verified`] →
//! [`TokenVerified`] → [`IncomingReattach`], each only obtainable from the previous step, so
//! the cheapest-check-first order of ATTACKS.md §3.4 cannot be skipped by mistake.
//!
//! What this layer guarantees once `read_init` succeeds: the initiator holds the session's device
//! key (`ss`, checked equal to the record's key) and its resumption PSK (`psk1`), the token is
//! genuine, the token and the payload name the same session, and every cleartext byte before
//! Noise (header, sender index, token) is bound into the prologue. Data keys are fresh per attempt
//! (ephemeral-ephemeral DH): forward secret per attachment.
//!
//! What it leaves to the session layer: freshness (`rc > last_rc`, timestamp window, token
//! expiry and `token_seq` floor), the exact-replay filter on `e`, policy, the ownership CAS,
//! choosing which PSK epoch to try, and committing the binding only on PATH_CONFIRM. A replayed
//! REATTACH_INIT decrypts again, like a replayed HANDSHAKE_INIT: only those checks stop it.

mod responder;

pub use responder::{
    IncomingReattach, Mac1Verified, ReattachCounters, ReattachInitView, ReattachResponder,
    TokenVerified,
};

use snow::params::NoiseParams;
use zeroize::Zeroizing;

use crate::data::DataKeys;
use crate::error::ReattachError;
use crate::frame::{
    HEADER_LEN, MessageType, REATTACH_INIT_LEN, REATTACH_INIT_PLAINTEXT_LEN,
    REATTACH_INIT_PROLOGUE_LEN, REATTACH_RESP_MAX_LEN, ReattachRespPacket, write_header,
};
use crate::handshake::resolver::SeededResolver;
use crate::handshake::{mac1_matches, split_keys};
use crate::kdf::{self, MAC_LEN};
use crate::keys::{Psk, PublicKey, StaticSecret};
use crate::payload::{ReattachInitPayload, ReattachRespPayload};
use crate::token::TOKEN_LEN;

/// The Noise protocol name of a reattach. Part of the handshake hash.
pub const REATTACH_NOISE_PATTERN: &str = "Noise_IKpsk1_25519_AESGCM_BLAKE2s";
/// `psk1`: mixed right after `ss` in message 1, so message 1's payload already proves the PSK.
const PSK_LOCATION: u8 = 1;

/// The reattach prologue: the first-attach prologue (`prologue_base`, see
/// [`crate::handshake::prologue`]) followed by REATTACH_INIT's first 80 bytes (header, sender
/// index, token).
fn reattach_prologue(prologue_base: &[u8], cleartext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prologue_base.len() + cleartext.len());
    out.extend_from_slice(prologue_base);
    out.extend_from_slice(cleartext);
    out
}

fn noise_params() -> Result<NoiseParams, ReattachError> {
    REATTACH_NOISE_PATTERN
        .parse()
        .map_err(|_| ReattachError::Internal)
}

fn map_noise(err: snow::Error) -> ReattachError {
    match err {
        snow::Error::Decrypt => ReattachError::AuthenticationFailed,
        snow::Error::Dh => ReattachError::NonContributory,
        _ => ReattachError::Internal,
    }
}

/// A fresh Noise state. `remote` is set for the initiator only (IK: the responder learns `s`).
fn build_noise(
    resolver: SeededResolver,
    local: &StaticSecret,
    remote: Option<&PublicKey>,
    psk: &Psk,
    prologue: &[u8],
) -> Result<snow::HandshakeState, ReattachError> {
    let builder = snow::Builder::with_resolver(noise_params()?, Box::new(resolver))
        .local_private_key(local.as_bytes())
        .and_then(|b| b.psk(PSK_LOCATION, psk.as_bytes()))
        .and_then(|b| b.prologue(prologue))
        .map_err(|_| ReattachError::Internal)?;
    match remote {
        Some(remote) => builder
            .remote_public_key(remote.as_bytes())
            .and_then(|b| b.build_initiator()),
        None => builder.build_responder(),
    }
    .map_err(|_| ReattachError::Internal)
}

/// The client side of one reattach attempt. Use a new one (fresh ephemeral, fresh token, fresh
/// sender index) for every attempt.
pub struct ReattachInitiator {
    local: StaticSecret,
    remote: PublicKey,
    psk: Psk,
    prologue_base: Vec<u8>,
    /// Taken by `write_init`: the Noise state needs the token in its prologue, so it is built
    /// only then.
    resolver: Option<SeededResolver>,
    noise: Option<snow::HandshakeState>,
    mac1_out: [u8; 32],
    mac1_in: [u8; 32],
    sender_index: Option<u32>,
}

impl core::fmt::Debug for ReattachInitiator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReattachInitiator")
            .field("remote", &self.remote)
            .field("sender_index", &self.sender_index)
            .finish_non_exhaustive()
    }
}

/// A completed reattach on the initiator.
#[derive(Debug)]
pub struct ReattachCompleted {
    /// Fresh data keys: `send` addresses the responder's index, `recv` expects ours. Use them
    /// only if `payload.status` is [`crate::payload::ReattachStatus::Ok`]; on any other status
    /// drop them.
    pub keys: DataKeys,
    /// The responder's index.
    pub peer_index: u32,
    /// The authenticated response payload.
    pub payload: ReattachRespPayload,
}

impl ReattachInitiator {
    /// Prepares an attempt from the device key `local` to the server `remote`, keyed with
    /// `psk` = [`kdf::resumption_psk`]`(RS, session_id, psk_epoch)`. `prologue_base` must equal
    /// the responder's (the first-attach prologue). The ephemeral key's randomness is drawn from
    /// `rng` now.
    pub fn new(
        local: &StaticSecret,
        remote: &PublicKey,
        psk: &Psk,
        prologue_base: &[u8],
        rng: &mut impl rand_core::CryptoRng,
    ) -> Self {
        Self {
            local: local.clone(),
            remote: *remote,
            psk: psk.clone(),
            prologue_base: prologue_base.to_vec(),
            resolver: Some(SeededResolver::from_rng(rng)),
            noise: None,
            mac1_out: kdf::mac1_key(remote),
            mac1_in: kdf::mac1_key(&local.public_key()),
            sender_index: None,
        }
    }

    /// Our index, once [`write_init`](Self::write_init) ran (0 before).
    pub fn sender_index(&self) -> u32 {
        self.sender_index.unwrap_or(0)
    }

    /// Writes the complete REATTACH_INIT ([`REATTACH_INIT_LEN`] bytes: payload padded, MAC1 set,
    /// MAC2 zero) into `out` and returns its length. `token` is one unused token from the last
    /// REATTACH_RESP (or first-attach response); `sender_idx` must be fresh and random. Call once;
    /// after an error start a new attempt.
    pub fn write_init(
        &mut self,
        sender_idx: u32,
        token: &[u8; TOKEN_LEN],
        payload: &ReattachInitPayload,
        out: &mut [u8],
    ) -> Result<usize, ReattachError> {
        if self.sender_index.is_some() {
            return Err(ReattachError::WrongState);
        }
        let out = out
            .get_mut(..REATTACH_INIT_LEN)
            .ok_or(ReattachError::BufferTooSmall {
                needed: REATTACH_INIT_LEN,
            })?;
        let resolver = self.resolver.take().ok_or(ReattachError::WrongState)?;
        write_header(out, MessageType::ReattachInit);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&sender_idx.to_be_bytes());
        out[HEADER_LEN + 4..REATTACH_INIT_PROLOGUE_LEN].copy_from_slice(token);
        let mut plaintext = [0u8; REATTACH_INIT_PLAINTEXT_LEN];
        payload.emit(&mut plaintext)?;
        let prologue = reattach_prologue(&self.prologue_base, &out[..REATTACH_INIT_PROLOGUE_LEN]);
        let mut noise = build_noise(
            resolver,
            &self.local,
            Some(&self.remote),
            &self.psk,
            &prologue,
        )?;
        let mac1_at = REATTACH_INIT_LEN - 2 * MAC_LEN;
        let written = noise
            .write_message(&plaintext, &mut out[REATTACH_INIT_PROLOGUE_LEN..mac1_at])
            .map_err(map_noise)?;
        if written != mac1_at - REATTACH_INIT_PROLOGUE_LEN {
            return Err(ReattachError::Internal);
        }
        kdf::stamp_macs(&self.mac1_out, out, mac1_at);
        self.noise = Some(noise);
        self.sender_index = Some(sender_idx);
        Ok(REATTACH_INIT_LEN)
    }

    /// The cheap checks of a REATTACH_RESP without consuming the attempt: frame shape, MAC1
    /// (keyed with our own public key), MAC2 zero, and that it answers our REATTACH_INIT. Lets a
    /// caller drop a spoofed response and keep waiting.
    pub fn check_resp(&self, frame: &[u8]) -> Result<(), ReattachError> {
        self.checked_resp(frame).map(|_| ())
    }

    fn checked_resp<'f>(
        &self,
        frame: &'f [u8],
    ) -> Result<ReattachRespPacket<&'f [u8]>, ReattachError> {
        let sender_index = self.sender_index.ok_or(ReattachError::WrongState)?;
        let packet = ReattachRespPacket::new_checked(frame)?;
        if !mac1_matches(&self.mac1_in, packet.mac1_covered(), &packet.mac1()) {
            return Err(ReattachError::Mac1Invalid);
        }
        if packet.mac2() != [0; MAC_LEN] {
            return Err(ReattachError::Mac2Invalid);
        }
        if packet.receiver_index() != sender_index {
            return Err(ReattachError::UnexpectedReceiverIndex);
        }
        Ok(packet)
    }

    /// Verifies and decrypts REATTACH_RESP (cheap checks first, then Noise message 2: ee, se)
    /// and returns fresh keys and the authenticated payload. Consumes the attempt: on error start
    /// a new one (or call [`check_resp`](Self::check_resp) first).
    pub fn read_resp(mut self, frame: &[u8]) -> Result<ReattachCompleted, ReattachError> {
        let packet = self.checked_resp(frame)?;
        let mut noise = self.noise.take().ok_or(ReattachError::WrongState)?;
        // The payload carries RS': wipe the plaintext buffer whatever happens.
        let mut plaintext = Zeroizing::new([0u8; REATTACH_RESP_MAX_LEN]);
        let len = noise
            .read_message(packet.noise_message(), &mut plaintext[..])
            .map_err(map_noise)?;
        if !noise.is_handshake_finished() {
            return Err(ReattachError::Internal);
        }
        let payload = ReattachRespPayload::parse(&plaintext[..len])?;
        let peer_index = packet.sender_index();
        let keys = split_keys(&mut noise, true, packet.receiver_index(), peer_index);
        Ok(ReattachCompleted {
            keys,
            peer_index,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reattach_noise_pattern_parses() {
        assert!(noise_params().is_ok());
    }

    #[test]
    fn the_prologue_appends_the_cleartext_to_the_base() {
        let prologue = reattach_prologue(b"base", &[6, 1, 0, 0]);

        assert_eq!(prologue, b"base\x06\x01\x00\x00");
    }
}

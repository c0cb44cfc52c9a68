//! STATELESS_RESET: how a server that holds no keys for a receiver index tells the client so,
//! without keys, and without giving an off-path attacker a way to end a session
//! (docs/protocol.md §14; ATTACKS.md S27 and §3.3).
//!
//! - The token of a server receive index is `keyed_hash(K_reset, BE32(receiver_idx))[..16]`,
//!   with `K_reset = derive_key(kdf::RESET, TokenKey)`: every node of a cluster (they share the
//!   token key) and a restarted node compute the same token, with no state.
//! - The server gives the client the token of its own receive index inside the encrypted
//!   HANDSHAKE_RESP / REATTACH_RESP payload ([`RESET_TOKEN_EXTENSION`]), so only the client (and
//!   the cluster) knows it.
//! - A reset is shaped like a DATA frame: the DATA header bytes, a random receiver index and a
//!   plausible counter, random bytes, then the token in the last 16 bytes (where a DATA frame's
//!   tag sits). It is strictly shorter than the datagram that triggered it ([`reset_len`]).
//! - A receiver treats a DATA-typed datagram of at least [`RESET_MIN_LEN`] bytes that opened
//!   under no key as a *candidate* ([`candidate_token`]) and honours it only on an exact,
//!   constant-time match ([`ResetToken::matches`]). What honouring means (a reattach, never a
//!   termination) is the session layer's business.
//!
//! What this module does not do: rate limiting, deciding when to send, or acting on a reset.

use core::fmt;

use rand_core::RngCore;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::data::REJECT_AFTER_MESSAGES;
use crate::error::FrameError;
use crate::frame::{DATA_OVERHEAD, HEADER_LEN, MessageType, peek_type, write_header};
use crate::kdf;
use crate::keys::TokenKey;

/// Length of a reset token.
pub const RESET_TOKEN_LEN: usize = 16;
/// Smallest reset: as long as the smallest DATA frame (16-byte header, 16-byte tag), so a reset
/// can answer even a 33-byte keepalive.
pub const RESET_MIN_LEN: usize = DATA_OVERHEAD;
/// Largest reset jvpn sends. A reset carries nothing beyond its token; keeping it short keeps
/// what a spoofed trigger can make a server send small.
pub const RESET_MAX_LEN: usize = 64;
/// Extension type of the reset token in HANDSHAKE_RESP and REATTACH_RESP payloads
/// (non-critical; value: the 16-byte token of the responder's receive index).
pub const RESET_TOKEN_EXTENSION: u8 = 0x03;
/// Length of the whole reset-token extension (type, length, value): 19 bytes.
pub const RESET_TOKEN_EXTENSION_LEN: usize = 3 + RESET_TOKEN_LEN;

/// The key reset tokens are computed under, derived from the cluster's [`TokenKey`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ResetKey([u8; 32]);

impl ResetKey {
    /// `K_reset = derive_key(kdf::RESET, token_key)`.
    pub fn new(token_key: &TokenKey) -> Self {
        Self(blake3::derive_key(kdf::RESET, token_key.as_bytes()))
    }

    /// The token of the server receive index `receiver_idx`.
    pub fn token(&self, receiver_idx: u32) -> ResetToken {
        let hash = blake3::keyed_hash(&self.0, &receiver_idx.to_be_bytes());
        let mut token = [0u8; RESET_TOKEN_LEN];
        token.copy_from_slice(&hash.as_bytes()[..RESET_TOKEN_LEN]);
        ResetToken(token)
    }
}

impl fmt::Debug for ResetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetKey(<redacted>)")
    }
}

/// The 16-byte stateless-reset token of one server receive index. Whoever knows it can make the
/// client reattach, so it is wiped on drop, never printed, and compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ResetToken([u8; RESET_TOKEN_LEN]);

impl ResetToken {
    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; RESET_TOKEN_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; RESET_TOKEN_LEN] {
        &self.0
    }

    /// Whether `datagram` is a reset carrying this token: a reset candidate
    /// ([`candidate_token`]) whose last 16 bytes equal the token (constant time).
    pub fn matches(&self, datagram: &[u8]) -> bool {
        candidate_token(datagram).is_some_and(|token| bool::from(token.ct_eq(&self.0)))
    }

    /// Writes the token as one extension (type, length, value) at the start of `out` and
    /// returns [`RESET_TOKEN_EXTENSION_LEN`].
    pub fn emit_extension(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let out = out
            .get_mut(..RESET_TOKEN_EXTENSION_LEN)
            .ok_or(FrameError::BufferTooSmall {
                needed: RESET_TOKEN_EXTENSION_LEN,
            })?;
        out[0] = RESET_TOKEN_EXTENSION;
        // RESET_TOKEN_LEN (16) fits a u16.
        out[1..3].copy_from_slice(&(RESET_TOKEN_LEN as u16).to_be_bytes());
        out[3..].copy_from_slice(&self.0);
        Ok(RESET_TOKEN_EXTENSION_LEN)
    }

    /// Finds the token in the extension `value` of an entry already found by the caller.
    pub(crate) fn from_extension_value(value: &[u8]) -> Result<Self, FrameError> {
        let bytes: [u8; RESET_TOKEN_LEN] = value
            .try_into()
            .map_err(|_| FrameError::InvalidField("reset token length"))?;
        Ok(Self(bytes))
    }

    /// Finds the token in a whole HANDSHAKE_RESP payload (fixed part and extensions), if there
    /// is one. A token extension of the wrong length is rejected.
    pub fn find_in_resp(resp_payload: &[u8]) -> Result<Option<Self>, FrameError> {
        crate::payload::check_total_with(resp_payload, crate::payload::RESP_PAYLOAD_LEN, false)?;
        crate::payload::find_extension(
            &resp_payload[crate::payload::RESP_PAYLOAD_LEN..],
            RESET_TOKEN_EXTENSION,
            false,
        )
        .map(Self::from_extension_value)
        .transpose()
    }
}

impl PartialEq for ResetToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for ResetToken {}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken(<redacted>)")
    }
}

/// Why no reset could be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResetError {
    /// The triggering datagram is too short for a strictly shorter reset
    /// (it needs more than [`RESET_MIN_LEN`] bytes). Send nothing.
    #[error("a {trigger_len}-byte trigger is too short for a strictly shorter reset")]
    TriggerTooShort {
        /// The triggering datagram's length.
        trigger_len: usize,
    },
    /// The output buffer cannot hold the reset. Pass at least `needed` bytes.
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes the reset needs.
        needed: usize,
    },
}

/// The length of a reset answering a `trigger_len`-byte datagram: random in
/// `[RESET_MIN_LEN, min(trigger_len - 1, RESET_MAX_LEN)]` (random so that resets do not all
/// share one size), or `None` when even the smallest reset would not be strictly shorter.
pub fn reset_len(trigger_len: usize, rng: &mut impl RngCore) -> Option<usize> {
    let max = trigger_len.checked_sub(1)?.min(RESET_MAX_LEN);
    let span = max.checked_sub(RESET_MIN_LEN)?;
    // `span` ≤ 32: the modulo bias is irrelevant for a length.
    let extra = usize::try_from(rng.next_u32()).unwrap_or(0) % (span + 1);
    Some(RESET_MIN_LEN + extra)
}

/// Writes a reset for `token` answering a `trigger_len`-byte datagram into `out` and returns its
/// length, strictly less than `trigger_len`.
///
/// Layout: the DATA header bytes (`04 01 00 00`), a random non-zero receiver index, a random
/// counter below `REJECT_AFTER_MESSAGES` (as a real one would be), random filler, and the token
/// as the last 16 bytes.
pub fn write_reset(
    token: &ResetToken,
    trigger_len: usize,
    rng: &mut impl RngCore,
    out: &mut [u8],
) -> Result<usize, ResetError> {
    let len = reset_len(trigger_len, rng).ok_or(ResetError::TriggerTooShort { trigger_len })?;
    let out = out
        .get_mut(..len)
        .ok_or(ResetError::BufferTooSmall { needed: len })?;
    write_header(out, MessageType::Data);
    rng.fill_bytes(&mut out[HEADER_LEN..len - RESET_TOKEN_LEN]);
    let index = rng.next_u32().max(1);
    out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&index.to_be_bytes());
    let counter = rng.next_u64() % REJECT_AFTER_MESSAGES;
    out[HEADER_LEN + 4..HEADER_LEN + 12].copy_from_slice(&counter.to_be_bytes());
    out[len - RESET_TOKEN_LEN..].copy_from_slice(&token.0);
    Ok(len)
}

/// The token position of a reset candidate: a datagram with a valid DATA header and at least
/// [`RESET_MIN_LEN`] bytes yields its last 16 bytes; anything else `None`. A receiver calls this
/// only for a datagram that opened under none of its keys.
pub fn candidate_token(datagram: &[u8]) -> Option<&[u8; RESET_TOKEN_LEN]> {
    if datagram.len() < RESET_MIN_LEN || peek_type(datagram) != Ok(MessageType::Data) {
        return None;
    }
    datagram[datagram.len() - RESET_TOKEN_LEN..].try_into().ok()
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::frame::DataPacket;

    fn key() -> ResetKey {
        ResetKey::new(&TokenKey::from_bytes([7; 32]))
    }

    #[test]
    fn the_token_is_the_documented_keyed_hash_of_the_index() {
        let k_reset = blake3::derive_key("jvpn 2026-11-23 stateless reset v1", &[7; 32]);
        let hash = blake3::keyed_hash(&k_reset, &0x0102_0304u32.to_be_bytes());

        let token = key().token(0x0102_0304);

        assert_eq!(token.as_bytes(), &hash.as_bytes()[..16]);
    }

    #[test]
    fn every_node_with_the_same_token_key_computes_the_same_token() {
        let other_node = ResetKey::new(&TokenKey::from_bytes([7; 32]));
        let other_cluster = ResetKey::new(&TokenKey::from_bytes([8; 32]));

        assert_eq!(key().token(9), other_node.token(9));
        assert_ne!(key().token(9), other_cluster.token(9));
        assert_ne!(key().token(9), key().token(10));
    }

    #[test]
    fn a_reset_is_strictly_shorter_than_its_trigger_and_carries_the_token_last() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let token = key().token(5);
        for trigger_len in RESET_MIN_LEN + 1..200 {
            let mut out = [0u8; RESET_MAX_LEN];

            let len = write_reset(&token, trigger_len, &mut rng, &mut out).unwrap();

            assert!(len < trigger_len && (RESET_MIN_LEN..=RESET_MAX_LEN).contains(&len));
            assert!(token.matches(&out[..len]));
            assert!(DataPacket::new_checked(&out[..len]).is_ok());
        }
    }

    #[test]
    fn no_reset_answers_a_trigger_of_the_minimum_size_or_less() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut out = [0u8; RESET_MAX_LEN];

        for trigger_len in 0..=RESET_MIN_LEN {
            assert_eq!(
                write_reset(&key().token(1), trigger_len, &mut rng, &mut out),
                Err(ResetError::TriggerTooShort { trigger_len })
            );
        }
    }

    #[test]
    fn a_wrong_token_a_short_datagram_or_another_type_is_not_a_match() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let token = key().token(5);
        let mut reset = [0u8; RESET_MAX_LEN];
        let len = write_reset(&token, 100, &mut rng, &mut reset).unwrap();
        let mut control = reset;
        control[0] = MessageType::Control.as_u8();

        assert!(!key().token(6).matches(&reset[..len]));
        assert!(!token.matches(&reset[len - RESET_MIN_LEN + 1..len]));
        assert!(!token.matches(&control[..len]));
        assert!(candidate_token(&reset[..len]).is_some());
    }

    #[test]
    fn the_token_extension_round_trips_and_a_wrong_length_is_rejected() {
        let token = key().token(77);
        let mut ext = [0u8; RESET_TOKEN_EXTENSION_LEN];

        token.emit_extension(&mut ext).unwrap();

        assert_eq!(ResetToken::from_extension_value(&ext[3..]).unwrap(), token);
        assert!(ResetToken::from_extension_value(&ext[4..]).is_err());
    }

    #[test]
    fn tokens_and_keys_never_print() {
        let token = key().token(1);

        assert_eq!(format!("{token:?}"), "ResetToken(<redacted>)");
        assert_eq!(format!("{:?}", key()), "ResetKey(<redacted>)");
    }
}

//! Opaque reattach tokens: how any node finds a session's record without a cleartext session id.
//!
//! A token is `nonce (24) || XChaCha20-Poly1305(claims (32)) || tag (16)` = [`TOKEN_LEN`] = 72
//! bytes, sealed under a key derived from the caller's [`TokenKey`] with the `kdf::TOKEN` context.
//! The claims are `session_id (16) || token_seq u64 || expiry_unix_secs u64`.
//!
//! Why XChaCha20-Poly1305 rather than AES-256-GCM: tokens are sealed by many nodes under one
//! long-lived cluster key with random nonces. A 96-bit random nonce reaches the usual 2^-32
//! collision bound after 2^32 tokens (a busy cluster issuing four per reattach gets there), and
//! a GCM nonce collision leaks the authentication key. A 192-bit random nonce makes collisions
//! negligible for any realistic count, and needs no per-node counter state.
//!
//! Tokens are single-use and unlinkable: each is sealed with a fresh random nonce, so two tokens
//! of one session share no bytes an observer could match. Single use (a `token_seq` floor) and
//! expiry are enforced by the session layer, which owns the record and the clock.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand_core::CryptoRng;

use crate::error::TokenError;
use crate::kdf;
use crate::keys::{SessionId, TokenKey};

/// Nonce length (XChaCha20-Poly1305).
pub const TOKEN_NONCE_LEN: usize = 24;
/// Length of the sealed claims.
pub const TOKEN_CLAIMS_LEN: usize = 16 + 8 + 8;
/// Tag length.
pub const TOKEN_TAG_LEN: usize = 16;
/// Length of a token on the wire: nonce, encrypted claims, tag.
pub const TOKEN_LEN: usize = TOKEN_NONCE_LEN + TOKEN_CLAIMS_LEN + TOKEN_TAG_LEN;

/// Associated data: binds the ciphertext to its purpose and protocol version.
const TOKEN_AAD: &[u8] = b"jvpn/1 reattach token";

/// What a token says, readable only by holders of the token key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenClaims {
    /// The session whose record the token names.
    pub session_id: SessionId,
    /// Issue sequence number; the record keeps a floor so each token is accepted at most once.
    pub token_seq: u64,
    /// Wall-clock expiry, seconds since the Unix epoch.
    pub expiry_unix_secs: u64,
}

impl TokenClaims {
    /// Whether the token has expired at `now_unix_secs` (the caller's clock): expired at and
    /// after `expiry_unix_secs`.
    pub fn is_expired(&self, now_unix_secs: u64) -> bool {
        now_unix_secs >= self.expiry_unix_secs
    }

    fn encode(&self) -> [u8; TOKEN_CLAIMS_LEN] {
        let mut out = [0u8; TOKEN_CLAIMS_LEN];
        out[..16].copy_from_slice(&self.session_id.0);
        out[16..24].copy_from_slice(&self.token_seq.to_be_bytes());
        out[24..].copy_from_slice(&self.expiry_unix_secs.to_be_bytes());
        out
    }

    fn decode(buf: &[u8; TOKEN_CLAIMS_LEN]) -> Self {
        let mut id = [0u8; 16];
        id.copy_from_slice(&buf[..16]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&buf[16..24]);
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&buf[24..]);
        Self {
            session_id: SessionId(id),
            token_seq: u64::from_be_bytes(seq),
            expiry_unix_secs: u64::from_be_bytes(expiry),
        }
    }
}

fn cipher(key: &TokenKey) -> XChaCha20Poly1305 {
    let aead_key = kdf::token_aead_key(key);
    XChaCha20Poly1305::new((&*aead_key).into())
}

/// Seals `claims` into a fresh token under `key`, with a random nonce from `rng`.
pub fn seal_token(
    key: &TokenKey,
    claims: &TokenClaims,
    rng: &mut impl CryptoRng,
) -> [u8; TOKEN_LEN] {
    let mut token = [0u8; TOKEN_LEN];
    let (nonce, rest) = token.split_at_mut(TOKEN_NONCE_LEN);
    rng.fill_bytes(nonce);
    let (body, tag_out) = rest.split_at_mut(TOKEN_CLAIMS_LEN);
    body.copy_from_slice(&claims.encode());
    let tag = cipher(key)
        .encrypt_in_place_detached(XNonce::from_slice(nonce), TOKEN_AAD, body)
        .expect("a 32-byte plaintext is far below the XChaCha20-Poly1305 length limit");
    tag_out.copy_from_slice(&tag);
    token
}

/// Opens a token. Fails with [`TokenError::WrongLength`] unless `token` is exactly
/// [`TOKEN_LEN`] bytes, and with [`TokenError::Invalid`] when the tag does not verify (checked
/// in constant time before any claim is decoded). Never panics.
pub fn open_token(key: &TokenKey, token: &[u8]) -> Result<TokenClaims, TokenError> {
    let token: &[u8; TOKEN_LEN] = token.try_into().map_err(|_| TokenError::WrongLength)?;
    let (nonce, rest) = token.split_at(TOKEN_NONCE_LEN);
    let (body, tag) = rest.split_at(TOKEN_CLAIMS_LEN);
    let mut claims = [0u8; TOKEN_CLAIMS_LEN];
    claims.copy_from_slice(body);
    cipher(key)
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            TOKEN_AAD,
            &mut claims,
            Tag::from_slice(tag),
        )
        .map_err(|_| TokenError::Invalid)?;
    Ok(TokenClaims::decode(&claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn claims() -> TokenClaims {
        TokenClaims {
            session_id: SessionId([5; 16]),
            token_seq: 17,
            expiry_unix_secs: 1_800_000_000,
        }
    }

    #[test]
    fn a_sealed_token_opens_to_its_claims() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = TokenKey::generate(&mut rng);

        let token = seal_token(&key, &claims(), &mut rng);

        assert_eq!(open_token(&key, &token), Ok(claims()));
        assert_eq!(TOKEN_LEN, 72);
    }

    #[test]
    fn a_token_under_another_key_does_not_open() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let old_key = TokenKey::generate(&mut rng);
        let new_key = TokenKey::generate(&mut rng);

        let token = seal_token(&old_key, &claims(), &mut rng);

        assert_eq!(open_token(&new_key, &token), Err(TokenError::Invalid));
    }

    #[test]
    fn every_flipped_bit_makes_the_token_invalid() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let key = TokenKey::generate(&mut rng);
        let token = seal_token(&key, &claims(), &mut rng);

        for bit in 0..TOKEN_LEN * 8 {
            let mut forged = token;
            forged[bit / 8] ^= 1 << (bit % 8);

            assert_eq!(open_token(&key, &forged), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn tokens_of_the_wrong_length_are_rejected() {
        let key = TokenKey::from_bytes([1; 32]);

        assert_eq!(open_token(&key, &[]), Err(TokenError::WrongLength));
        assert_eq!(
            open_token(&key, &[0; TOKEN_LEN + 1]),
            Err(TokenError::WrongLength)
        );
    }

    #[test]
    fn two_tokens_with_the_same_claims_share_no_bytes_in_place() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let key = TokenKey::generate(&mut rng);

        let a = seal_token(&key, &claims(), &mut rng);
        let b = seal_token(&key, &claims(), &mut rng);

        assert_ne!(a, b);
        assert!(a.windows(8).all(|w| !b.windows(8).any(|v| v == w)));
    }

    #[test]
    fn expiry_is_inclusive_of_the_expiry_second() {
        let claims = claims();

        assert!(!claims.is_expired(claims.expiry_unix_secs - 1));
        assert!(claims.is_expired(claims.expiry_unix_secs));
    }
}

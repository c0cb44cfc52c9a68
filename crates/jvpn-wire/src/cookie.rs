//! The cookie defence (WireGuard style, docs/protocol.md §5 and §6): under load a responder
//! answers an initiation that lacks a valid MAC2 with a COOKIE_REPLY instead of spending a
//! Diffie-Hellman; the client puts MAC2 = MAC(cookie, frame up to MAC2) on its next attempts,
//! proving it receives datagrams at the source address it claims.
//!
//! ```text
//! secret   = 32 random bytes, replaced every COOKIE_ROTATION (by the caller's `now`)
//! cookie   = BLAKE3.keyed_hash(secret, source)[0..16]          (source: opaque address bytes)
//! mac2     = BLAKE3.keyed_hash(derive_key(COOKIE, cookie), frame[0 .. len-16])[0..16]
//! box key  = derive_key(COOKIE_BOX, server static public key)
//! reply    = XChaCha20-Poly1305(box key, random 24-byte nonce, cookie, AD = the request's MAC1)
//! ```
//!
//! It works on any frame whose last 32 bytes are `mac1 | mac2` and whose bytes 4..8 are the
//! sender index: HANDSHAKE_INIT and REATTACH_INIT. The reply (64 bytes) is smaller than either
//! request (≥ 136 bytes), so a spoofed initiation is never amplified.
//!
//! What it does not do: decide when the responder is under load, rate-limit sources, or keep
//! per-client state (the caller does all three).

use core::fmt;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::frame::{CookieReplyPacket, CookieReplyRepr, HEADER_LEN};
use crate::kdf::{self, MAC_LEN};
use crate::keys::PublicKey;

/// How long one cookie secret is used to make cookies; a cookie made under the previous secret
/// is still accepted until the next rotation (so for one more period at most).
pub const COOKIE_ROTATION: Duration = Duration::from_secs(120);

/// Cookie length on the wire (inside the box).
pub const COOKIE_LEN: usize = 16;

/// Smallest frame a cookie can answer: header, index, then at least `mac1 | mac2`.
const MIN_REQUEST_LEN: usize = HEADER_LEN + 4 + 2 * MAC_LEN;

/// What went wrong with a cookie operation.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// The request is too short to carry `mac1 | mac2` (not an initiation): send nothing.
    #[error("request too short for a cookie reply")]
    RequestTooShort,
    /// The output buffer cannot hold a COOKIE_REPLY; give one of `COOKIE_REPLY_LEN` bytes.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The COOKIE_REPLY is malformed, or its box does not open under this server's key with the
    /// MAC1 we last sent (forged, for another attempt, or for another server): drop it.
    #[error("cookie reply invalid")]
    Invalid,
}

/// A cookie as the client holds it. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Cookie([u8; COOKIE_LEN]);

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<redacted>)")
    }
}

impl Cookie {
    /// MAC2 of `frame` (an initiation whose last 16 bytes are MAC2) under this cookie.
    fn mac2(&self, covered: &[u8]) -> [u8; MAC_LEN] {
        let key = Zeroizing::new(blake3::derive_key(kdf::COOKIE, &self.0));
        kdf::mac1(&key, covered)
    }

    /// Writes MAC2 into the last 16 bytes of `frame` (a HANDSHAKE_INIT or REATTACH_INIT
    /// already stamped with MAC1). A frame shorter than 16 bytes is left alone.
    pub fn stamp_mac2(&self, frame: &mut [u8]) {
        let Some(at) = frame.len().checked_sub(MAC_LEN) else {
            return;
        };
        let mac = self.mac2(&frame[..at]);
        frame[at..].copy_from_slice(&mac);
    }
}

/// The MAC1 of an initiation (the 16 bytes before MAC2), what a COOKIE_REPLY is bound to.
/// `None` if the frame is too short to carry one.
pub fn request_mac1(frame: &[u8]) -> Option<[u8; MAC_LEN]> {
    if frame.len() < MIN_REQUEST_LEN {
        return None;
    }
    let at = frame.len() - 2 * MAC_LEN;
    let mut mac1 = [0u8; MAC_LEN];
    mac1.copy_from_slice(&frame[at..at + MAC_LEN]);
    Some(mac1)
}

fn box_cipher(server: &PublicKey) -> XChaCha20Poly1305 {
    let key = Zeroizing::new(blake3::derive_key(kdf::COOKIE_BOX, server.as_bytes()));
    XChaCha20Poly1305::new((&*key).into())
}

/// Client: opens a COOKIE_REPLY from `server` that answers the initiation whose MAC1 was
/// `sent_mac1`. The caller also checks the receiver index against its attempt.
pub fn open_cookie_reply(
    server: &PublicKey,
    reply: &[u8],
    sent_mac1: &[u8; MAC_LEN],
) -> Result<Cookie, CookieError> {
    let repr = CookieReplyRepr::parse(reply).map_err(|_| CookieError::Invalid)?;
    let mut cookie = Cookie([0; COOKIE_LEN]);
    cookie
        .0
        .copy_from_slice(&repr.encrypted_cookie[..COOKIE_LEN]);
    box_cipher(server)
        .decrypt_in_place_detached(
            XNonce::from_slice(&repr.nonce),
            sent_mac1,
            &mut cookie.0,
            Tag::from_slice(&repr.encrypted_cookie[COOKIE_LEN..]),
        )
        .map_err(|_| CookieError::Invalid)?;
    Ok(cookie)
}

/// The receiver index of a COOKIE_REPLY (the sender index of the attempt it answers), if the
/// frame has the right shape.
pub fn cookie_reply_receiver(reply: &[u8]) -> Option<u32> {
    CookieReplyPacket::new_checked(reply)
        .ok()
        .map(|p| p.receiver_index())
}

struct Secret {
    key: Zeroizing<[u8; 32]>,
    born: Instant,
}

/// Server: the rotating cookie secret, MAC2 verification and COOKIE_REPLY writing.
pub struct CookieChecker {
    server: PublicKey,
    current: Secret,
    previous: Option<Secret>,
}

impl fmt::Debug for CookieChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieChecker")
            .field("server", &self.server)
            .field("born", &self.current.born)
            .finish_non_exhaustive()
    }
}

impl CookieChecker {
    /// A checker for the server whose static public key is `server`, with a first secret drawn
    /// from `rng` at `now`.
    pub fn new(server: PublicKey, now: Instant, rng: &mut impl rand_core::CryptoRng) -> Self {
        CookieChecker {
            server,
            current: Self::fresh(now, rng),
            previous: None,
        }
    }

    fn fresh(now: Instant, rng: &mut impl rand_core::CryptoRng) -> Secret {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut key[..]);
        Secret { key, born: now }
    }

    /// Replaces the secret once it is `COOKIE_ROTATION` old. The old one stays valid for
    /// verification until the next rotation; after two periods without a call it is dropped.
    pub fn rotate(&mut self, now: Instant, rng: &mut impl rand_core::CryptoRng) {
        let age = now.saturating_duration_since(self.current.born);
        if age < COOKIE_ROTATION {
            return;
        }
        let fresh = Self::fresh(now, rng);
        let old = core::mem::replace(&mut self.current, fresh);
        self.previous = (age < 2 * COOKIE_ROTATION).then_some(old);
    }

    fn cookie_under(secret: &Secret, source: &[u8]) -> Cookie {
        let hash = blake3::keyed_hash(&secret.key, source);
        let mut cookie = Cookie([0; COOKIE_LEN]);
        cookie.0.copy_from_slice(&hash.as_bytes()[..COOKIE_LEN]);
        cookie
    }

    /// Whether the last 16 bytes of `frame` are a valid MAC2 for `source` under the current or
    /// the previous secret (constant-time compare). Rotates first.
    pub fn verify_mac2(
        &mut self,
        frame: &[u8],
        source: &[u8],
        now: Instant,
        rng: &mut impl rand_core::CryptoRng,
    ) -> bool {
        self.rotate(now, rng);
        let Some(at) = frame.len().checked_sub(MAC_LEN) else {
            return false;
        };
        if frame.len() < MIN_REQUEST_LEN {
            return false;
        }
        let (covered, mac2) = frame.split_at(at);
        let secrets = core::iter::once(&self.current).chain(self.previous.as_ref());
        let mut ok = false;
        for secret in secrets {
            let expected = Self::cookie_under(secret, source).mac2(covered);
            ok |= bool::from(expected.ct_eq(mac2));
        }
        ok
    }

    /// Writes a COOKIE_REPLY to the initiation `request` received from `source` into `out`;
    /// returns its length ([`COOKIE_REPLY_LEN`](crate::frame::COOKIE_REPLY_LEN), always smaller than the request). Rotates
    /// first; the nonce comes from `rng`.
    pub fn write_reply(
        &mut self,
        request: &[u8],
        source: &[u8],
        now: Instant,
        rng: &mut impl rand_core::CryptoRng,
        out: &mut [u8],
    ) -> Result<usize, CookieError> {
        self.rotate(now, rng);
        let mac1 = request_mac1(request).ok_or(CookieError::RequestTooShort)?;
        let mut index = [0u8; 4];
        index.copy_from_slice(&request[HEADER_LEN..HEADER_LEN + 4]);
        let cookie = Self::cookie_under(&self.current, source);
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        let mut sealed = [0u8; 2 * COOKIE_LEN];
        sealed[..COOKIE_LEN].copy_from_slice(&cookie.0);
        let tag = box_cipher(&self.server)
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &mac1, &mut sealed[..COOKIE_LEN])
            .map_err(|_| CookieError::BufferTooSmall)?;
        sealed[COOKIE_LEN..].copy_from_slice(&tag);
        let repr = CookieReplyRepr {
            receiver_index: u32::from_be_bytes(index),
            nonce,
            encrypted_cookie: sealed,
        };
        repr.emit(out).map_err(|_| CookieError::BufferTooSmall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{COOKIE_REPLY_LEN, HANDSHAKE_INIT_MIN_LEN, REATTACH_INIT_LEN};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[expect(
        clippy::disallowed_methods,
        reason = "tests need one arbitrary base instant"
    )]
    fn base() -> Instant {
        Instant::now()
    }

    const SERVER: PublicKey = PublicKey::from_bytes([9; 32]);

    fn request(len: usize) -> Vec<u8> {
        let mut frame = vec![7u8; len];
        frame[0] = 1;
        frame[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        frame
    }

    fn reply_for(
        checker: &mut CookieChecker,
        req: &[u8],
        source: &[u8],
        now: Instant,
        rng: &mut ChaCha20Rng,
    ) -> Cookie {
        let mut out = [0u8; COOKIE_REPLY_LEN];
        let len = checker
            .write_reply(req, source, now, rng, &mut out)
            .unwrap();
        open_cookie_reply(&SERVER, &out[..len], &request_mac1(req).unwrap()).unwrap()
    }

    #[test]
    fn a_cookie_reply_is_smaller_than_any_initiation_it_answers() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let now = base();
        let mut checker = CookieChecker::new(SERVER, now, &mut rng);
        let mut out = [0u8; 128];

        for len in [HANDSHAKE_INIT_MIN_LEN, REATTACH_INIT_LEN] {
            let written = checker
                .write_reply(&request(len), b"src", now, &mut rng, &mut out)
                .unwrap();

            assert!(written <= len);
            assert_eq!(cookie_reply_receiver(&out[..written]), Some(0xdead_beef));
        }
    }

    #[test]
    fn a_frame_stamped_with_the_received_cookie_passes_mac2_for_its_source_only() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let now = base();
        let mut checker = CookieChecker::new(SERVER, now, &mut rng);
        let mut req = request(REATTACH_INIT_LEN);
        let cookie = reply_for(&mut checker, &req, b"10.0.0.1:5", now, &mut rng);

        cookie.stamp_mac2(&mut req);

        assert!(checker.verify_mac2(&req, b"10.0.0.1:5", now, &mut rng));
        assert!(!checker.verify_mac2(&req, b"10.0.0.2:5", now, &mut rng));
        assert!(!checker.verify_mac2(&request(REATTACH_INIT_LEN), b"10.0.0.1:5", now, &mut rng));
    }

    #[test]
    fn a_cookie_reply_opens_only_with_the_mac1_it_answers_and_the_right_server() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let now = base();
        let mut checker = CookieChecker::new(SERVER, now, &mut rng);
        let req = request(HANDSHAKE_INIT_MIN_LEN);
        let mut out = [0u8; COOKIE_REPLY_LEN];
        checker
            .write_reply(&req, b"s", now, &mut rng, &mut out)
            .unwrap();

        let wrong_mac1 = open_cookie_reply(&SERVER, &out, &[0; MAC_LEN]);
        let wrong_server = open_cookie_reply(
            &PublicKey::from_bytes([8; 32]),
            &out,
            &request_mac1(&req).unwrap(),
        );

        assert_eq!(wrong_mac1.unwrap_err(), CookieError::Invalid);
        assert_eq!(wrong_server.unwrap_err(), CookieError::Invalid);
    }

    #[test]
    fn an_old_cookie_is_accepted_for_one_rotation_then_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let t0 = base();
        let mut checker = CookieChecker::new(SERVER, t0, &mut rng);
        let mut req = request(HANDSHAKE_INIT_MIN_LEN);
        let old = reply_for(&mut checker, &req, b"s", t0, &mut rng);
        old.stamp_mac2(&mut req);
        let t1 = t0 + COOKIE_ROTATION;
        let t2 = t1 + COOKIE_ROTATION;

        let fresh = reply_for(
            &mut checker,
            &request(HANDSHAKE_INIT_MIN_LEN),
            b"s",
            t1,
            &mut rng,
        );
        let mut fresh_req = request(HANDSHAKE_INIT_MIN_LEN);
        fresh.stamp_mac2(&mut fresh_req);

        assert_ne!(
            fresh_req[fresh_req.len() - MAC_LEN..],
            req[req.len() - MAC_LEN..]
        );
        assert!(checker.verify_mac2(&req, b"s", t1, &mut rng));
        assert!(!checker.verify_mac2(&req, b"s", t2, &mut rng));
    }

    #[test]
    fn malformed_replies_and_short_requests_are_refused_without_panic() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let now = base();
        let mut checker = CookieChecker::new(SERVER, now, &mut rng);
        let mut out = [0u8; COOKIE_REPLY_LEN];

        assert_eq!(
            checker.write_reply(&[1; 10], b"s", now, &mut rng, &mut out),
            Err(CookieError::RequestTooShort)
        );
        assert_eq!(
            open_cookie_reply(&SERVER, &[3, 1, 0, 0], &[0; MAC_LEN]).unwrap_err(),
            CookieError::Invalid
        );
        assert!(!checker.verify_mac2(&[0; 8], b"s", now, &mut rng));
    }
}

//! Key derivation outside Noise: BLAKE3 `derive_key`, one context string per purpose, so that no
//! key ever serves two purposes. The contexts are part of the protocol: changing one is a protocol
//! version change.

use zeroize::Zeroizing;

use crate::keys::{Psk, PublicKey, ResumptionSecret, SessionId, TokenKey};

/// MAC1 key: `derive_key(MAC1, receiver's static public key)`.
pub const MAC1: &str = "jvpn 2026-11-23 mac1 v1";
/// MAC2 key: `derive_key(COOKIE, cookie)` (the cookie is keyed by the server's rotating secret).
pub const COOKIE: &str = "jvpn 2026-11-23 cookie v1";
/// Key that encrypts the cookie inside COOKIE_REPLY: `derive_key(COOKIE_BOX, server static public key)`.
pub const COOKIE_BOX: &str = "jvpn 2026-11-23 cookie box v1";
/// Per-session resumption PSK for REATTACH_INIT: see [`resumption_psk`].
pub const RESUMPTION_PSK: &str = "jvpn 2026-11-23 resumption psk v1";
/// The XChaCha20-Poly1305 key that seals reattach tokens, derived from the caller's
/// [`TokenKey`] so the cluster secret itself never keys a cipher directly.
pub const TOKEN: &str = "jvpn 2026-11-23 reattach token v1";
/// Stateless-reset tokens: `K_reset = derive_key(RESET, TokenKey)`, see [`crate::reset`].
pub const RESET: &str = "jvpn 2026-11-23 stateless reset v1";
/// The XChaCha20-Poly1305 key that seals session snapshots in the ownership store ("encrypted at
/// rest": the store sees only bytes), derived from the cluster [`TokenKey`]: see
/// [`snapshot_aead_key`].
pub const SNAPSHOT: &str = "jvpn 2026-11-23 session snapshot v1";

/// Every context string, for the distinctness test and for documentation.
pub const ALL_CONTEXTS: [&str; 7] = [
    MAC1,
    COOKIE,
    COOKIE_BOX,
    RESUMPTION_PSK,
    TOKEN,
    RESET,
    SNAPSHOT,
];

/// Length of MAC1 and MAC2 on the wire.
pub const MAC_LEN: usize = 16;

/// The key under which frames addressed to `receiver` carry MAC1.
///
/// Derived from public data on purpose (as WireGuard does): MAC1 proves the sender knows the
/// receiver's public key, which is enough to drop junk before any Diffie-Hellman.
pub fn mac1_key(receiver: &PublicKey) -> [u8; 32] {
    blake3::derive_key(MAC1, receiver.as_bytes())
}

/// MAC1 over `covered`: the first 16 bytes of BLAKE3 keyed hash under `key`.
pub fn mac1(key: &[u8; 32], covered: &[u8]) -> [u8; MAC_LEN] {
    let hash = blake3::keyed_hash(key, covered);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&hash.as_bytes()[..MAC_LEN]);
    out
}

/// Writes the MAC trailer of a handshake frame in place: MAC1 over every byte before `mac1_at`,
/// then an all-zero MAC2 (the caller stamps a cookie MAC2 afterwards if it holds one) to the end of `frame`.
pub(crate) fn stamp_macs(key: &[u8; 32], frame: &mut [u8], mac1_at: usize) {
    let mac1 = mac1(key, &frame[..mac1_at]);
    frame[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac1);
    frame[mac1_at + MAC_LEN..].fill(0);
}

/// The Noise `psk1` of a REATTACH_INIT:
/// `derive_key(RESUMPTION_PSK, RS || session_id || BE64(psk_epoch))`.
///
/// `psk_epoch` numbers the resumption secrets of one session (it grows when a reattach commits a
/// new `RS'`), so a PSK is never reused across secrets even if a secret were repeated. The input
/// buffer is wiped after use.
pub fn resumption_psk(rs: &ResumptionSecret, session_id: &SessionId, psk_epoch: u64) -> Psk {
    let mut input = Zeroizing::new([0u8; 32 + 16 + 8]);
    input[..32].copy_from_slice(rs.as_bytes());
    input[32..48].copy_from_slice(&session_id.0);
    input[48..].copy_from_slice(&psk_epoch.to_be_bytes());
    let key = Zeroizing::new(blake3::derive_key(RESUMPTION_PSK, &input[..]));
    Psk::from_bytes(*key)
}

/// The AEAD key for reattach tokens.
pub(crate) fn token_aead_key(key: &TokenKey) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(TOKEN, key.as_bytes()))
}

/// The AEAD key for session snapshots in the ownership store:
/// `derive_key(SNAPSHOT, K_token)`. Every node holding the cluster token key can open a
/// snapshot another node wrote; the store itself cannot.
pub fn snapshot_aead_key(key: &TokenKey) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(SNAPSHOT, key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_string_is_distinct_and_versioned() {
        let mut contexts = ALL_CONTEXTS.to_vec();
        contexts.sort_unstable();
        contexts.dedup();

        assert_eq!(contexts.len(), ALL_CONTEXTS.len());
        assert!(
            ALL_CONTEXTS
                .iter()
                .all(|c| c.starts_with("jvpn 2026-11-23 ") && c.ends_with(" v1"))
        );
    }

    #[test]
    fn resumption_psk_depends_on_secret_session_and_epoch() {
        let rs = ResumptionSecret::from_bytes([1; 32]);
        let sid = SessionId([2; 16]);

        let base = resumption_psk(&rs, &sid, 0);

        assert_eq!(base.as_bytes(), resumption_psk(&rs, &sid, 0).as_bytes());
        assert_ne!(base.as_bytes(), resumption_psk(&rs, &sid, 1).as_bytes());
        assert_ne!(
            base.as_bytes(),
            resumption_psk(&rs, &SessionId([3; 16]), 0).as_bytes()
        );
        assert_ne!(
            base.as_bytes(),
            resumption_psk(&ResumptionSecret::from_bytes([4; 32]), &sid, 0).as_bytes()
        );
    }

    #[test]
    fn resumption_psk_matches_its_documented_derivation() {
        let rs = ResumptionSecret::from_bytes([0xaa; 32]);
        let sid = SessionId([0xbb; 16]);
        let mut input = Vec::new();
        input.extend_from_slice(&[0xaa; 32]);
        input.extend_from_slice(&[0xbb; 16]);
        input.extend_from_slice(&7u64.to_be_bytes());

        let psk = resumption_psk(&rs, &sid, 7);

        assert_eq!(
            psk.as_bytes(),
            &blake3::derive_key("jvpn 2026-11-23 resumption psk v1", &input)
        );
    }

    #[test]
    fn the_snapshot_key_differs_from_the_token_key_of_the_same_secret() {
        let key = TokenKey::from_bytes([5; 32]);

        let snapshot = snapshot_aead_key(&key);

        assert_ne!(*snapshot, *token_aead_key(&key));
        assert_eq!(
            *snapshot,
            blake3::derive_key("jvpn 2026-11-23 session snapshot v1", &[5; 32])
        );
    }

    #[test]
    fn mac1_keys_differ_per_receiver() {
        let a = mac1_key(&PublicKey::from_bytes([1; 32]));
        let b = mac1_key(&PublicKey::from_bytes([2; 32]));

        assert_ne!(a, b);
        assert_ne!(mac1(&a, b"frame"), mac1(&b, b"frame"));
    }
}

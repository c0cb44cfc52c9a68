//! Key derivation outside Noise: BLAKE3 `derive_key`, one context string per purpose, so that no
//! key ever serves two purposes. The contexts are part of the protocol: changing one is a protocol
//! version change.

use crate::keys::PublicKey;

/// MAC1 key: `derive_key(MAC1, receiver's static public key)`.
pub const MAC1: &str = "jvpn 2026-11-23 mac1 v1";
/// Reserved: key of the server's rotating cookie secret (MAC2 / cookie reply, hardening issue).
pub const COOKIE: &str = "jvpn 2026-11-23 cookie v1";
/// Reserved: key that encrypts the cookie inside COOKIE_REPLY (hardening issue).
pub const COOKIE_BOX: &str = "jvpn 2026-11-23 cookie box v1";
/// Reserved: per-session resumption PSK for REATTACH_INIT (reattach issue).
pub const RESUMPTION_PSK: &str = "jvpn 2026-11-23 resumption psk v1";
/// Reserved: stateless reset tokens (later issue).
pub const RESET: &str = "jvpn 2026-11-23 stateless reset v1";

/// Every context string, for the distinctness test and for documentation.
pub const ALL_CONTEXTS: [&str; 5] = [MAC1, COOKIE, COOKIE_BOX, RESUMPTION_PSK, RESET];

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
    fn mac1_keys_differ_per_receiver() {
        let a = mac1_key(&PublicKey::from_bytes([1; 32]));
        let b = mac1_key(&PublicKey::from_bytes([2; 32]));

        assert_ne!(a, b);
        assert_ne!(mac1(&a, b"frame"), mac1(&b, b"frame"));
    }
}

//! A `snow` crypto resolver that takes its randomness from the caller's RNG and refuses
//! non-contributory Diffie-Hellman results.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Delegates to snow's `DefaultResolver`, except:
/// - the RNG is a ChaCha20 stream seeded with 32 bytes drawn from the caller's RNG, so snow never
///   touches the OS RNG and a seeded simulation is reproducible;
/// - every X25519 result is checked, in constant time, for all zeros (a low-order or otherwise
///   non-contributory peer point), which fails the handshake with `snow::Error::Dh`.
///
/// snow resolves the RNG once per `HandshakeState`, so each handshake gets its own stream.
pub(crate) struct SeededResolver {
    seed: Zeroizing<[u8; 32]>,
}

impl SeededResolver {
    pub(crate) fn from_rng(rng: &mut impl CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *seed);
        Self { seed }
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(*self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver
            .resolve_dh(choice)
            .map(|inner| Box::new(ContributoryDh(inner)) as Box<dyn Dh>)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// Wraps a DH implementation and rejects an all-zero shared secret.
struct ContributoryDh(Box<dyn Dh>);

impl Dh for ContributoryDh {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn pub_len(&self) -> usize {
        self.0.pub_len()
    }

    fn priv_len(&self) -> usize {
        self.0.priv_len()
    }

    fn set(&mut self, privkey: &[u8]) {
        self.0.set(privkey);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        self.0.generate(rng)
    }

    fn pubkey(&self) -> &[u8] {
        self.0.pubkey()
    }

    fn privkey(&self) -> &[u8] {
        self.0.privkey()
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        self.0.dh(pubkey, out)?;
        let len = self.0.dh_len().min(out.len());
        let zeros = [0u8; 64];
        let shared = &out[..len];
        if bool::from(shared.ct_eq(&zeros[..len.min(zeros.len())])) {
            return Err(snow::Error::Dh);
        }
        Ok(())
    }

    fn dh_len(&self) -> usize {
        self.0.dh_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_order_point_gives_a_dh_error() {
        let mut dh = SeededResolver {
            seed: Zeroizing::new([1; 32]),
        }
        .resolve_dh(&DHChoice::Curve25519)
        .unwrap();
        dh.set(&[5; 32]);
        let mut out = [0u8; 32];

        // The identity and the order-2 point (0 and 1 as u-coordinates) give all-zero results.
        let identity = dh.dh(&[0; 32], &mut out);
        let mut one = [0u8; 32];
        one[0] = 1;
        let order_two = dh.dh(&one, &mut out);

        assert!(matches!(identity, Err(snow::Error::Dh)));
        assert!(matches!(order_two, Err(snow::Error::Dh)));
    }

    /// ATTACKS.md S11: all 518 Wycheproof X25519 vectors (twists, non-canonical and low-order
    /// points, edge-case multiplications). Every vector with a non-zero shared secret must give
    /// exactly that secret; every all-zero one (the 31 low-order points) must be refused.
    #[test]
    fn every_wycheproof_x25519_vector_gives_its_secret_or_is_refused_when_the_secret_is_zero() {
        use wycheproof::xdh::{TestFlag, TestName, TestSet};
        let set = TestSet::load(TestName::X25519).expect("the crate's vendored vectors load");
        let resolver = SeededResolver {
            seed: Zeroizing::new([3; 32]),
        };
        let (mut computed, mut refused) = (0, 0);

        for test in set.test_groups.iter().flat_map(|group| &group.tests) {
            let mut dh = resolver.resolve_dh(&DHChoice::Curve25519).unwrap();
            dh.set(&test.private_key);
            let mut out = [0u8; 32];
            let result = dh.dh(&test.public_key, &mut out);
            if test.shared_secret.iter().all(|&b| b == 0) {
                assert!(test.flags.contains(&TestFlag::ZeroSharedSecret));
                assert!(
                    matches!(result, Err(snow::Error::Dh)),
                    "tcId {}",
                    test.tc_id
                );
                refused += 1;
            } else {
                assert!(result.is_ok(), "tcId {}", test.tc_id);
                assert_eq!(&out[..], &test.shared_secret[..], "tcId {}", test.tc_id);
                computed += 1;
            }
        }

        assert_eq!((computed, refused), (487, 31));
    }

    #[test]
    fn the_rng_stream_is_a_function_of_the_seed() {
        let resolver = SeededResolver {
            seed: Zeroizing::new([2; 32]),
        };
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];

        resolver
            .resolve_rng()
            .unwrap()
            .try_fill_bytes(&mut a)
            .unwrap();
        resolver
            .resolve_rng()
            .unwrap()
            .try_fill_bytes(&mut b)
            .unwrap();

        assert_eq!(a, b);
        assert_ne!(a, [0; 16]);
    }
}

//! The one master seed a simulation run derives all of its randomness from.

use std::fmt;
use std::str::FromStr;

use rand::TryRngCore;
use rand::rngs::OsRng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};

/// The environment variable that pins the seed of a single run (`JVPN_SIM_SEED=<n>`).
pub const SEED_ENV: &str = "JVPN_SIM_SEED";

/// The seed used when neither the environment nor the OS can provide one (never in practice).
const FALLBACK_SEED: u64 = 0x6a76_706e_5f73_696d; // "jvpn_sim"

/// Context string for [`Seed::stream`]; one purpose, one context (BLAKE3 `derive_key`).
const STREAM_CONTEXT: &str = "jvpn-sim 2025-01 per-component rng stream v1";

/// The master seed of a simulation run.
///
/// Every random choice of a run (each impairment's dice, each node's RNG) comes from an
/// independent stream derived from this one value with [`Seed::stream`], so that adding an
/// impairment on one link does not shift the randomness of another, and the same seed always
/// replays the same run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seed(pub u64);

/// Why a seed could not be read from the environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The variable is set but is not a decimal or `0x`-prefixed hexadecimal `u64`; fix or unset it.
    #[error("{var}={value:?} is not a seed: use a decimal or 0x-prefixed hexadecimal u64")]
    Malformed {
        /// The environment variable that was read.
        var: String,
        /// What it contained.
        value: String,
    },
    /// The variable is set but is not valid Unicode; set it to a plain number.
    #[error("{var} is not valid unicode: set it to a decimal or 0x-prefixed hexadecimal u64")]
    NotUnicode {
        /// The environment variable that was read.
        var: String,
    },
}

impl Seed {
    /// Reads the seed from the environment variable `var` if it is set, otherwise draws a fresh
    /// one from the operating system; prints it either way (see [`Seed::announce`]).
    ///
    /// Random seeds by default make every test run explore a new schedule; the printed seed makes
    /// any failure replayable (`JVPN_SIM_SEED=<n> cargo test ...`).
    ///
    /// # Panics
    ///
    /// If the variable is set to something that is not a seed: silently ignoring a mistyped
    /// replay seed would "replay" a different run, which is worse than stopping. Use
    /// [`Seed::try_from_env_or_random`] to handle the error yourself.
    #[must_use]
    pub fn from_env_or_random(var: &str) -> Self {
        match Self::try_from_env_or_random(var) {
            Ok(seed) => seed,
            Err(err) => panic!("jvpn-sim: {err}"),
        }
    }

    /// Like [`Seed::from_env_or_random`] but returns a malformed variable as an error.
    ///
    /// # Errors
    ///
    /// [`SeedError`] when `var` is set but does not hold a `u64`.
    pub fn try_from_env_or_random(var: &str) -> Result<Self, SeedError> {
        let seed = match std::env::var(var) {
            Ok(value) => value.trim().parse().map_err(|_| SeedError::Malformed {
                var: var.to_owned(),
                value,
            })?,
            Err(std::env::VarError::NotPresent) => Self::random(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(SeedError::NotUnicode {
                    var: var.to_owned(),
                });
            }
        };
        seed.announce(var);
        Ok(seed)
    }

    /// A fresh seed from the operating system.
    ///
    /// This is the ONLY place in jvpn-sim that touches OS randomness: it picks which run to
    /// explore, never what happens inside a run (that comes from the printed seed alone). The
    /// crate is dev-only, so the ban on ambient RNGs in decision code does not apply here.
    #[must_use]
    pub fn random() -> Self {
        Self(OsRng.try_next_u64().unwrap_or(FALLBACK_SEED))
    }

    /// Prints the seed and how to replay it, to stderr (captured by the test harness and shown
    /// only when a test fails).
    #[expect(
        clippy::print_stderr,
        reason = "the seed must be visible in a failing test's output so the run can be replayed"
    )]
    pub fn announce(self, var: &str) {
        eprintln!("jvpn-sim: seed={self} (replay with {var}={self})");
    }

    /// 32 bytes of key material for one component, independent of every other
    /// `(label, index)` pair: BLAKE3 `derive_key` over the seed, the label and the index.
    #[must_use]
    pub fn stream(self, label: &str, index: u64) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(STREAM_CONTEXT);
        hasher.update(&self.0.to_le_bytes());
        hasher.update(&(label.len() as u64).to_le_bytes());
        hasher.update(label.as_bytes());
        hasher.update(&index.to_le_bytes());
        *hasher.finalize().as_bytes()
    }

    /// A cryptographically strong, deterministic RNG for a node (e.g. to pass to a session core
    /// as its `RngCore + CryptoRng`).
    #[must_use]
    pub fn rng(self, label: &str, index: u64) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.stream(label, index))
    }

    /// The fast RNG type impairments draw from.
    pub(crate) fn sim_rng(self, label: &str, index: u64) -> ChaCha8Rng {
        ChaCha8Rng::from_seed(self.stream(label, index))
    }

    /// The `n`th seed after this one, for runs over several seeds (`JVPN_SIM_SEEDS=N`).
    #[must_use]
    pub fn nth(self, n: u64) -> Self {
        Self(self.0.wrapping_add(n))
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Seed {
    type Err = std::num::ParseIntError;

    /// Accepts a decimal `u64` or a `0x`-prefixed hexadecimal one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).map(Self),
            None => s.parse().map(Self),
        }
    }
}

/// The environment variable asking a multi-seed test for `N` seeds (`JVPN_SIM_SEEDS=N`).
pub const SEEDS_ENV: &str = "JVPN_SIM_SEEDS";

/// The seeds a multi-seed test runs: `JVPN_SIM_SEED` (or a random seed) and the
/// `JVPN_SIM_SEEDS - 1` seeds after it. Nothing is printed here: announce each seed
/// ([`Seed::announce`]) as its run starts, so a failure names the one that failed.
///
/// # Panics
///
/// If `JVPN_SIM_SEED` is set to something that is not a seed (see [`Seed::from_env_or_random`]).
#[must_use]
pub fn seeds_from_env() -> Vec<Seed> {
    let base = match std::env::var(SEED_ENV) {
        Ok(value) => match value.trim().parse() {
            Ok(seed) => seed,
            Err(_) => panic!("jvpn-sim: {SEED_ENV}={value:?} is not a decimal or 0x-hex u64"),
        },
        Err(_) => Seed::random(),
    };
    (0..seed_count_from_env(SEEDS_ENV))
        .map(|i| base.nth(i))
        .collect()
}

/// How many seeds a multi-seed test should run: `JVPN_SIM_SEEDS=N` (default 1, at least 1).
///
/// Long bug hunts: `JVPN_SIM_SEEDS=500 cargo test -p jvpn-sim --release`. A failing seed is printed
/// and replays alone with `JVPN_SIM_SEED=<n>`.
#[must_use]
pub fn seed_count_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_from_decimal_and_hex() {
        assert_eq!("42".parse::<Seed>().unwrap(), Seed(42));
        assert_eq!("0x2a".parse::<Seed>().unwrap(), Seed(42));
        assert!("forty-two".parse::<Seed>().is_err());
    }

    #[test]
    fn streams_differ_by_label_and_index_and_repeat_for_equal_inputs() {
        let seed = Seed(7);
        assert_eq!(seed.stream("link", 0), seed.stream("link", 0));
        assert_ne!(seed.stream("link", 0), seed.stream("link", 1));
        assert_ne!(seed.stream("link", 0), seed.stream("node", 0));
        assert_ne!(seed.stream("link", 0), Seed(8).stream("link", 0));
    }
}

//! Long-term keys, pre-shared keys, resumption secrets, token keys and session ids.
//!
//! Text forms are standard padded base64 (44 characters), the WireGuard key-file format, so that
//! tooling people already know works. Secrets are zeroized on drop and never printed.

use core::fmt;
use core::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::KeyError;

/// Length of every key in bytes.
pub const KEY_LEN: usize = 32;

fn decode_32(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    // Decode into a zeroizing buffer: the text may be a secret key.
    let mut decoded = Zeroizing::new(Vec::with_capacity(48));
    STANDARD
        .decode_vec(text.trim(), &mut decoded)
        .map_err(|_| KeyError::InvalidBase64)?;
    if decoded.len() != KEY_LEN {
        return Err(KeyError::WrongLength { got: decoded.len() });
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(&decoded);
    Ok(out)
}

/// An X25519 static private key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StaticSecret([u8; KEY_LEN]);

impl StaticSecret {
    /// Generates a new key from `rng`, clamped as X25519 requires.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        let key = Self(bytes);
        bytes.zeroize();
        key
    }

    /// Wraps raw bytes (X25519 clamps them when used, so any 32 bytes are a valid key).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw secret bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The matching public key (X25519 base-point multiplication).
    pub fn public_key(&self) -> PublicKey {
        PublicKey(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }

    /// The base64 text form, in a buffer wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }

    /// Parses the base64 text form; surrounding whitespace (a trailing newline) is ignored.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_32(text).map(|bytes| Self(*bytes))
    }
}

impl fmt::Debug for StaticSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticSecret(<redacted>)")
    }
}

/// An X25519 public key. Displays as base64.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The base64 text form.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses the base64 text form; surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_32(text).map(|bytes| Self(*bytes))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

/// A 32-byte pre-shared key mixed into the handshake (Noise `psk2`). All zeros means "no PSK", as
/// in WireGuard.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Psk([u8; KEY_LEN]);

impl Psk {
    /// The all-zero PSK, used when none is configured.
    pub const fn zero() -> Self {
        Self([0u8; KEY_LEN])
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Generates a random PSK.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut psk = Self::zero();
        rng.fill_bytes(&mut psk.0);
        psk
    }

    /// The base64 text form, in a buffer wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }

    /// Parses the base64 text form; surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_32(text).map(|bytes| Self(*bytes))
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

/// A per-session resumption secret `RS`: 32 random bytes chosen by the server, delivered only
/// inside an encrypted handshake payload and kept in the session record. Never derived from Noise
/// state (the handshake hash `h` is public). The reattach PSK comes from it through
/// [`crate::kdf::resumption_psk`]. Compared in constant time; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ResumptionSecret([u8; KEY_LEN]);

impl ResumptionSecret {
    /// Draws a fresh secret from `rng` (the server does this at every attach and reattach).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut secret = Self([0u8; KEY_LEN]);
        rng.fill_bytes(&mut secret.0);
        secret
    }

    /// Wraps raw bytes (for example read back from the session record).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl PartialEq for ResumptionSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for ResumptionSecret {}

impl fmt::Debug for ResumptionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumptionSecret(<redacted>)")
    }
}

/// The node or cluster secret under which reattach tokens are sealed (`K_token`). Given by the
/// caller (from its key store); rotate it with an overlap: a node that holds the previous key too
/// tries both ([`crate::token::open_token`] fails cleanly under the wrong one).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TokenKey([u8; KEY_LEN]);

impl TokenKey {
    /// Draws a random key from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut key = Self([0u8; KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// A server-chosen 128-bit session identifier. Displays as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// Draws a random session id from `rng`.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn generated_secret_is_clamped_and_round_trips_through_base64() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let secret = StaticSecret::generate(&mut rng);

        let text = secret.to_base64();
        let back = StaticSecret::from_base64(&format!("  {}\n", text.as_str())).unwrap();

        assert_eq!(secret.as_bytes()[0] & 7, 0);
        assert_eq!(secret.as_bytes()[31] & 0xc0, 0x40);
        assert_eq!(back.as_bytes(), secret.as_bytes());
        assert_eq!(text.len(), 44);
    }

    #[test]
    fn public_key_matches_rfc7748_test_vector() {
        // RFC 7748 section 6.1, Alice's key pair.
        let secret_hex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
        let public_hex = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
        let decode = |h: &str| -> [u8; 32] {
            let mut out = [0u8; 32];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
            }
            out
        };

        let public = StaticSecret::from_bytes(decode(secret_hex)).public_key();

        assert_eq!(public.as_bytes(), &decode(public_hex));
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let secret = StaticSecret::from_bytes([7; 32]);
        let psk = Psk::from_bytes([7; 32]);

        assert_eq!(format!("{secret:?}"), "StaticSecret(<redacted>)");
        assert_eq!(format!("{psk:?}"), "Psk(<redacted>)");
        assert_eq!(
            format!("{:?}", ResumptionSecret::from_bytes([7; 32])),
            "ResumptionSecret(<redacted>)"
        );
        assert_eq!(
            format!("{:?}", TokenKey::from_bytes([7; 32])),
            "TokenKey(<redacted>)"
        );
    }

    #[test]
    fn public_key_displays_and_parses_as_base64() {
        let public = StaticSecret::from_bytes([9; 32]).public_key();

        let parsed: PublicKey = public.to_string().parse().unwrap();

        assert_eq!(parsed, public);
        assert_eq!(format!("{public:?}"), format!("PublicKey({public})"));
    }

    #[test]
    fn keys_of_the_wrong_length_or_alphabet_are_rejected() {
        assert_eq!(
            PublicKey::from_base64("AAAA"),
            Err(KeyError::WrongLength { got: 3 })
        );
        assert_eq!(
            PublicKey::from_base64("not base64 at all!!"),
            Err(KeyError::InvalidBase64)
        );
        assert!(Psk::from_base64("").is_err());
    }

    #[test]
    fn session_id_displays_as_32_hex_digits() {
        let id = SessionId([0xab; 16]);

        assert_eq!(id.to_string(), "ab".repeat(16));
    }
}

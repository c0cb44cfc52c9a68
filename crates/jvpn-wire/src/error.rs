//! Error types, one `thiserror` enum per operation.
//!
//! None of them carries secret material or attacker-controlled bytes beyond a single type or
//! version byte, so they are safe to log. On the receive path every error means "drop the datagram
//! silently" (WireGuard's rule: no answer to anything that failed a check).

use crate::frame::MessageType;

/// Parsing a key from its text form failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not standard padded base64 (the WireGuard key-file format). Check the key file
    /// for stray characters; regenerate it with `jvpn genkey` if in doubt.
    #[error("key is not valid base64: expected 44 characters of standard base64")]
    InvalidBase64,
    /// The text is valid base64 but does not decode to exactly 32 bytes. The file probably holds
    /// something other than a jvpn/WireGuard key.
    #[error("key decodes to {got} bytes, but a key is exactly 32 bytes (44 base64 characters)")]
    WrongLength {
        /// Number of bytes the text decoded to.
        got: usize,
    },
}

/// Parsing or emitting a frame, a control message or a handshake payload failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The buffer is shorter than the smallest valid encoding. Drop the datagram.
    #[error("frame is truncated")]
    Truncated,
    /// The buffer is longer than the largest valid encoding, or bytes follow the last field.
    /// Drop the datagram.
    #[error("frame is too long or has trailing bytes")]
    TooLong,
    /// The type byte names no known message type. Drop the datagram (a newer peer may speak a
    /// later protocol revision).
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// The version byte is not [`crate::frame::PROTOCOL_VERSION`]. Drop the datagram; the peer runs
    /// an incompatible protocol version.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The flags byte is not zero (no flag is defined yet). Drop the datagram.
    #[error("flags byte {0:#04x} is not zero")]
    InvalidFlags(u8),
    /// The reserved byte is not zero. Drop the datagram.
    #[error("reserved byte {0:#04x} is not zero")]
    InvalidReserved(u8),
    /// The frame is well formed but of another type than the parser expects; dispatch on
    /// [`crate::frame::peek_type`] first.
    #[error("unexpected message type {0:?}")]
    UnexpectedType(MessageType),
    /// The output buffer cannot hold the encoding. Pass a buffer of at least `needed` bytes.
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
    },
    /// The first byte of a control message names no known control type. Drop the frame.
    #[error("unknown control message type {0}")]
    UnknownControlType(u8),
    /// A field holds a value the format does not allow (named in the message). Drop the frame.
    #[error("invalid field: {0}")]
    InvalidField(&'static str),
    /// A handshake payload carries an extension marked critical (type >= 0x80) that this version
    /// does not understand. The handshake must fail: the peer requires a feature we lack.
    #[error("unknown critical extension {0:#04x}")]
    UnknownCriticalExtension(u8),
}

/// A handshake step failed. On the responder every variant means: drop the datagram, send nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The frame does not parse (wrong length, type, version, flags or reserved byte).
    #[error("malformed handshake frame: {0}")]
    Malformed(#[from] FrameError),
    /// MAC1 does not match: the sender does not know our public key, or the frame was modified.
    /// No Diffie-Hellman was spent on it.
    #[error("MAC1 check failed")]
    Mac1Invalid,
    /// MAC2 is not all zeros. Protocol version 1 has no cookie mechanism yet, so a sender never
    /// sets MAC2; the frame was modified. No Diffie-Hellman was spent on it.
    #[error("MAC2 is not zero")]
    Mac2Invalid,
    /// The response names a receiver index other than the one our initiation carried: it answers
    /// another handshake. Keep waiting for the right one (see [`crate::InitiatorHandshake::check_resp`]).
    #[error("response is addressed to another handshake")]
    UnexpectedReceiverIndex,
    /// Noise decryption failed: wrong static key, wrong pre-shared key, modified message or a
    /// prologue mismatch (different protocol version or offered transports).
    #[error("handshake authentication failed")]
    AuthenticationFailed,
    /// A Diffie-Hellman result was all zeros: the peer sent a low-order (non-contributory) X25519
    /// point. Treat as an attack; drop.
    #[error("peer sent a low-order X25519 point")]
    NonContributory,
    /// The payload to send exceeds [`crate::frame::MAX_HANDSHAKE_PAYLOAD`] bytes. Send less.
    #[error("handshake payload of {len} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge {
        /// Length of the payload passed in.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The output (frame or payload) buffer is too small. Pass one of at least `needed` bytes.
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The call is out of order (for example `write_init` twice, or `read_resp` before
    /// `write_init`). A programming error in the caller; start a new handshake.
    #[error("handshake step called out of order")]
    WrongState,
    /// The Noise library reported an internal problem that cannot happen with this crate's fixed
    /// parameters. Start a new handshake and report a bug.
    #[error("internal Noise error")]
    Internal,
}

/// Sealing a DATA or CONTROL frame failed. Nothing was sent and no counter value was consumed
/// unless stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The buffer cannot hold header, plaintext and tag. Pass a buffer of at least `needed` bytes.
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The frame would exceed [`crate::frame::MAX_FRAME_LEN`]. Send less per frame.
    #[error("plaintext of {len} bytes exceeds the {max}-byte limit")]
    PlaintextTooLarge {
        /// Plaintext length passed in.
        len: usize,
        /// The largest plaintext allowed.
        max: usize,
    },
    /// Only `Data` and `Control` frames are sealed with data keys.
    #[error("message type {0:?} cannot be sealed with data keys")]
    InvalidType(MessageType),
    /// The key has sent [`crate::data::REJECT_AFTER_MESSAGES`] frames and must never be used again
    /// (a nonce would repeat). Complete a rekey handshake.
    #[error("send key exhausted; rekey")]
    KeyExhausted,
}

/// Opening a DATA or CONTROL frame failed. The replay window is unchanged in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The frame does not parse as DATA or CONTROL. Drop it.
    #[error("malformed data frame: {0}")]
    Malformed(#[from] FrameError),
    /// The receiver index is not this key's. The caller demultiplexed wrongly; drop it.
    #[error("frame is addressed to another receiver index")]
    WrongReceiver,
    /// The counter is at or past [`crate::data::REJECT_AFTER_MESSAGES`]; no honest sender uses it.
    #[error("counter beyond the key's limit")]
    CounterLimit,
    /// The counter was already accepted or is older than the replay window. Drop it.
    #[error("replayed or too old")]
    Replayed,
    /// The AEAD tag does not verify: modified or forged frame, or another key. Drop it.
    #[error("authentication failed")]
    AuthenticationFailed,
}

/// Opening a reattach token failed. Either way: drop the REATTACH_INIT, send nothing, spend no
/// Diffie-Hellman. The two cases are told apart only for counters; neither reveals anything about
/// the key (the tag check is constant time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not exactly [`crate::token::TOKEN_LEN`] bytes.
    #[error("token has the wrong length")]
    WrongLength,
    /// The AEAD tag does not verify: a forged or modified token, or one sealed under another
    /// token key (a rotated-out key, another cluster). If the node holds the previous token key,
    /// try that one; otherwise drop.
    #[error("token does not open under this key")]
    Invalid,
}

/// A reattach step failed. On the responder every variant means: drop the datagram, send nothing.
/// On the initiator a failed `check_resp` means "keep waiting"; a failed `read_resp` ends this
/// attempt (start a new one with a fresh token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReattachError {
    /// The frame (or an authenticated payload inside it) does not parse. Drop it.
    #[error("malformed reattach frame: {0}")]
    Malformed(#[from] FrameError),
    /// MAC1 does not match: the sender does not know our public key, or the frame was modified.
    /// No Diffie-Hellman was spent on it.
    #[error("MAC1 check failed")]
    Mac1Invalid,
    /// MAC2 is not all zeros (no cookie mechanism yet, so no sender sets it). No Diffie-Hellman
    /// was spent on it.
    #[error("MAC2 is not zero")]
    Mac2Invalid,
    /// The reattach token did not open (see [`TokenError`]). No Diffie-Hellman was spent on it.
    #[error("reattach token rejected: {0}")]
    Token(#[from] TokenError),
    /// The response names a receiver index other than our REATTACH_INIT's sender index: it
    /// answers another attempt. Keep waiting for the right one.
    #[error("response is addressed to another reattach attempt")]
    UnexpectedReceiverIndex,
    /// Noise decryption failed: wrong resumption PSK (a stolen device key alone, S10), wrong
    /// responder key, a modified message, or a prologue mismatch (version, offered transports,
    /// header, sender index or token rewritten).
    #[error("reattach authentication failed")]
    AuthenticationFailed,
    /// A Diffie-Hellman result was all zeros: a low-order (non-contributory) X25519 point. Treat
    /// as an attack; drop.
    #[error("peer sent a low-order X25519 point")]
    NonContributory,
    /// Noise succeeded but the initiator's static key is not the session's device key: someone
    /// holding the resumption secret but not the device key (S9). Drop; audit.
    #[error("initiator static key is not the session's device key")]
    UnexpectedStatic,
    /// The payload's session id differs from the token's (a valid client presenting another
    /// session's token, S8). Drop; audit.
    #[error("payload session id does not match the token")]
    SessionMismatch,
    /// The response would be larger than the request it answers (anti-amplification). Send a
    /// smaller payload (fewer extensions).
    #[error("response of {len} bytes would exceed the {limit}-byte request")]
    ResponseTooLarge {
        /// Length the response would have.
        len: usize,
        /// Length of the request (the cap).
        limit: usize,
    },
    /// The output buffer is too small. Pass one of at least `needed` bytes.
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The call is out of order (for example `write_init` twice, or `read_resp` before
    /// `write_init`), or a previous step of this attempt failed. Start a new attempt.
    #[error("reattach step called out of order")]
    WrongState,
    /// The Noise library reported an internal problem that cannot happen with this crate's fixed
    /// parameters. Start a new attempt and report a bug.
    #[error("internal Noise error")]
    Internal,
}

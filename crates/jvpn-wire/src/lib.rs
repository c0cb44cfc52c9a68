//! jvpn-wire: the sans-IO wire layer of jvpn.
//!
//! What it does:
//! - parses and emits every frame with checked lengths ([`frame`]), never panicking on any input;
//! - runs the first-attach handshake, Noise `IKpsk2_25519_AESGCM_BLAKE2s` through `snow`, behind
//!   a MAC1 gate that drops junk before any Diffie-Hellman ([`handshake`]);
//! - seals and opens DATA / CONTROL frames with AES-256-GCM, counter nonces, the header as
//!   associated data and an RFC 6479 anti-replay window ([`data`], [`replay`]);
//! - derives every non-Noise key with BLAKE3 `derive_key`, one context per purpose ([`kdf`]);
//! - holds keys that zeroize on drop and never print ([`keys`]).
//!
//! What it does not do: IO, clocks, timers, OS randomness (an RNG is passed in), session state,
//! peer lookup, or replay rejection of handshake initiations (the session layer compares the
//! payload timestamp). `docs/protocol.md` specifies every byte.

pub mod control;
pub mod data;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod kdf;
pub mod keys;
pub mod payload;
pub mod replay;

pub use control::ControlMessage;
pub use data::{
    DataKeys, REJECT_AFTER, REJECT_AFTER_MESSAGES, REKEY_AFTER, REKEY_AFTER_MESSAGES, RecvKey,
    SendKey,
};
pub use error::{FrameError, HandshakeError, KeyError, OpenError, SealError};
pub use frame::{
    DATA_HEADER_LEN, DATA_OVERHEAD, MAX_HANDSHAKE_PAYLOAD, MessageType, PROTOCOL_VERSION, peek_type,
};
pub use handshake::{
    IncomingInit, InitiatorCompleted, InitiatorHandshake, NOISE_PATTERN, Responder,
    ResponderCounters, prologue,
};
pub use keys::{Psk, PublicKey, SessionId, StaticSecret};
pub use payload::{InitPayload, RespPayload};
pub use replay::{ReplayWindow, WINDOW_SIZE};

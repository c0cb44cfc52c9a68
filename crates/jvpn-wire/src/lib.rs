//! jvpn-wire: the sans-IO wire layer of jvpn.
//!
//! What it does:
//! - parses and emits every frame with checked lengths ([`frame`]), never panicking on any input;
//! - runs the first-attach handshake, Noise `IKpsk2_25519_AESGCM_BLAKE2s` through `snow`, behind
//!   a MAC1 gate that drops junk before any Diffie-Hellman ([`handshake`]);
//! - runs the authenticated reattach, Noise `IKpsk1_25519_AESGCM_BLAKE2s` keyed with a
//!   per-session resumption PSK, behind MAC1 and an opaque token, as typed cheapest-first steps
//!   ([`reattach`], [`token`]);
//! - seals and opens DATA / CONTROL frames with AES-256-GCM, counter nonces, the header as
//!   associated data and an RFC 6479 anti-replay window ([`data`], [`replay`]);
//! - the cookie defence: a rotating cookie secret, MAC2 checks and COOKIE_REPLY ([`cookie`]);
//! - STATELESS_RESET: tokens keyed by the cluster token key, resets shaped like DATA frames and
//!   strictly shorter than their trigger, constant-time matching ([`reset`]);
//! - derives every non-Noise key with BLAKE3 `derive_key`, one context per purpose ([`kdf`]);
//! - holds keys that zeroize on drop and never print ([`keys`]).
//!
//! What it does not do: IO, clocks, timers, OS randomness (an RNG is passed in), session state,
//! peer or record lookup, or replay rejection of handshake initiations and reattaches (the
//! session layer compares timestamps, reattach counters and token sequence numbers, and runs the
//! exact-replay filter on the reattach ephemeral). `docs/protocol.md` specifies every byte.

pub mod control;
pub mod cookie;
pub mod data;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod kdf;
pub mod keys;
pub mod payload;
pub mod reattach;
pub mod replay;
pub mod reset;
pub mod token;

pub use control::ControlMessage;
pub use cookie::{COOKIE_ROTATION, Cookie, CookieChecker, CookieError};
pub use data::{
    DataKeys, REJECT_AFTER, REJECT_AFTER_MESSAGES, REKEY_AFTER, REKEY_AFTER_MESSAGES, RecvKey,
    SendKey,
};
pub use error::{
    FrameError, HandshakeError, KeyError, OpenError, ReattachError, SealError, TokenError,
};
pub use frame::{
    DATA_HEADER_LEN, DATA_OVERHEAD, MAX_HANDSHAKE_PAYLOAD, MessageType, PROTOCOL_VERSION,
    REATTACH_INIT_LEN, peek_type,
};
pub use handshake::{
    IncomingInit, InitiatorCompleted, InitiatorHandshake, NOISE_PATTERN, Responder,
    ResponderCounters, prologue,
};
pub use kdf::resumption_psk;
pub use keys::{Psk, PublicKey, ResumptionSecret, SessionId, StaticSecret, TokenKey};
pub use payload::{
    InitPayload, ReattachInitPayload, ReattachRespPayload, ReattachStatus, RespPayload,
    ResumptionGrant,
};
pub use reattach::{
    IncomingReattach, Mac1Verified, REATTACH_NOISE_PATTERN, ReattachCompleted, ReattachCounters,
    ReattachInitView, ReattachInitiator, ReattachResponder, TokenVerified,
};
pub use replay::{ReplayWindow, WINDOW_SIZE};
pub use reset::{
    RESET_MAX_LEN, RESET_MIN_LEN, RESET_TOKEN_LEN, ResetError, ResetKey, ResetToken,
    candidate_token, write_reset,
};
pub use token::{TOKEN_LEN, TokenClaims, open_token, seal_token};

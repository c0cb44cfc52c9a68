//! What a session or endpoint is configured with, and the RNG it draws from.

use std::sync::Arc;

use jvpn_wire::keys::{Psk, PublicKey, StaticSecret, TokenKey};

use crate::{ClockAnchor, NodeId, OwnershipStore, Policy, PolicyError};

/// The randomness a session or endpoint draws from (ephemeral keys, sender indices, session
/// ids): a cryptographic RNG passed in, never the OS RNG. The runtime seeds a ChaCha20 RNG from
/// the OS once; the simulator seeds it from its seed. Blanket-implemented.
pub trait SessionRng: rand_core::RngCore + rand_core::CryptoRng + Send {}

impl<T: rand_core::RngCore + rand_core::CryptoRng + Send> SessionRng for T {}

/// A client session's configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The client's static private key.
    pub local_key: StaticSecret,
    /// The server's static public key (pinned; a different server fails the handshake).
    pub server_key: PublicKey,
    /// The pre-shared key for this client (all zeros for none).
    pub psk: Psk,
    /// The session policy.
    pub policy: Policy,
    /// Wall time for handshake timestamps and audit records.
    pub clock: ClockAnchor,
    /// The transport list mixed into the Noise prologue; it must equal the server's (the
    /// `jvpn` runtime uses one constant on both sides).
    pub offered_transports: Vec<u8>,
}

/// One client the server accepts.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// The client's static public key.
    pub public_key: PublicKey,
    /// The pre-shared key shared with that client (all zeros for none).
    pub psk: Psk,
}

/// A server endpoint's configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The server's static private key.
    pub local_key: StaticSecret,
    /// The clients it accepts.
    pub peers: Vec<PeerConfig>,
    /// The session policy applied to every session.
    pub policy: Policy,
    /// Wall time for handshake timestamps and audit records.
    pub clock: ClockAnchor,
    /// The transport list mixed into the Noise prologue; it must equal the clients'. It is
    /// also the reattach policy: a REATTACH_INIT naming a built-in transport kind absent from
    /// it is answered POLICY.
    pub offered_transports: Vec<u8>,
    /// Session ownership and reattach tokens (defaults: one node on its own).
    pub cluster: ClusterConfig,
}

/// How a server endpoint shares sessions with other nodes. The default is a node on its own:
/// a private in-memory ownership store and a token key drawn from the endpoint's RNG.
#[derive(Clone, Debug, Default)]
pub struct ClusterConfig {
    /// This node's id in the ownership store.
    pub node: NodeId,
    /// Where session ownership is claimed (compare-and-swap). `None`: a private
    /// [`MemoryOwnershipStore`](crate::MemoryOwnershipStore).
    pub ownership: Option<Arc<dyn OwnershipStore>>,
    /// The key that seals reattach tokens and (through its own derived key) the session
    /// snapshots in the ownership store; nodes that serve each other's sessions share it.
    /// `None`: a random key drawn from the endpoint's RNG (tokens die with the endpoint).
    pub token_key: Option<TokenKey>,
}

/// `Session::connect` refused its configuration. Nothing was sent.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The policy is inconsistent (the message names the field). Fix the policy.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// The first handshake message could not be built (for example the prologue is too long).
    /// Fix the configuration; this is not a network error.
    #[error("cannot build the handshake: {0}")]
    Handshake(#[from] jvpn_wire::error::HandshakeError),
}

/// `Endpoint::new` refused its configuration.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The policy is inconsistent (the message names the field). Fix the policy.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// The same client public key is listed twice. Remove the duplicate peer entry.
    #[error("peer {0} is listed more than once")]
    DuplicatePeer(PublicKey),
    /// A peer's public key equals the server's own. Each side needs its own key pair.
    #[error("peer {0} uses the server's own public key")]
    PeerIsSelf(PublicKey),
}

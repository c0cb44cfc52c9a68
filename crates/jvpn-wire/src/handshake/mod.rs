//! First-attach handshake: Noise `IKpsk2_25519_AESGCM_BLAKE2s` through `snow`, framed with a MAC1
//! gate so a responder spends no Diffie-Hellman on junk.
//!
//! ```text
//! initiator                                   responder
//! InitiatorHandshake::new
//! write_init ── HANDSHAKE_INIT (e, es, s, ss) ──> Responder::read_init   (MAC1, then Noise)
//!                                                  caller looks up peer_static → psk
//! read_resp  <── HANDSHAKE_RESP (e, ee, se, psk) ── IncomingInit::write_resp
//! ```
//!
//! What this layer guarantees: mutual authentication of the static keys (and the PSK), fresh
//! data keys per handshake, and that a tampered or foreign message fails. What it does not: a
//! replayed HANDSHAKE_INIT decrypts again with the same payload, so the session layer must reject
//! an [`InitPayload`](crate::payload::InitPayload) timestamp that is not newer than the last one
//! accepted for that peer (the replay cannot complete a session anyway: it never learns the keys).

pub(crate) mod resolver;

use snow::params::NoiseParams;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::data::{DataKeys, RecvKey, SendKey};
use crate::error::HandshakeError;
use crate::frame::{
    HEADER_LEN, HandshakeInitPacket, HandshakeRespPacket, MAX_HANDSHAKE_PAYLOAD, MessageType,
    PROTOCOL_VERSION, handshake_init_len, handshake_resp_len, write_header,
};
use crate::kdf::{self, MAC_LEN};
use crate::keys::{Psk, PublicKey, StaticSecret};
use resolver::SeededResolver;

/// The Noise protocol name. Part of the handshake hash: both sides must use exactly this.
pub const NOISE_PATTERN: &str = "Noise_IKpsk2_25519_AESGCM_BLAKE2s";
/// Prefix of every prologue.
pub const PROLOGUE_LABEL: &[u8] = b"jvpn/1";
/// Noise PSK position for IKpsk2 (mixed at the end of message 2).
const PSK_LOCATION: u8 = 2;

/// The Noise prologue: `b"jvpn/1" || PROTOCOL_VERSION || len u16 || offered_transports`.
///
/// Both sides hash it into the handshake, so an attacker who rewrites the version or the list of
/// offered transports (a downgrade) breaks the handshake. Lists longer than 65535 bytes are
/// truncated to 65535 (never happens with real transport lists).
pub fn prologue(offered_transports: &[u8]) -> Vec<u8> {
    let list = &offered_transports[..offered_transports.len().min(usize::from(u16::MAX))];
    let len = u16::try_from(list.len()).expect("list was truncated to u16::MAX");
    let mut out = Vec::with_capacity(PROLOGUE_LABEL.len() + 3 + list.len());
    out.extend_from_slice(PROLOGUE_LABEL);
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(list);
    out
}

fn noise_params() -> Result<NoiseParams, HandshakeError> {
    NOISE_PATTERN.parse().map_err(|_| HandshakeError::Internal)
}

fn map_noise(err: snow::Error) -> HandshakeError {
    match err {
        snow::Error::Decrypt => HandshakeError::AuthenticationFailed,
        snow::Error::Dh => HandshakeError::NonContributory,
        _ => HandshakeError::Internal,
    }
}

fn internal(_: snow::Error) -> HandshakeError {
    HandshakeError::Internal
}

pub(crate) fn mac1_matches(key: &[u8; 32], covered: &[u8], mac: &[u8; MAC_LEN]) -> bool {
    bool::from(kdf::mac1(key, covered).ct_eq(mac))
}

/// Builds the data keys from the Noise split and wipes the raw keys.
pub(crate) fn split_keys(
    noise: &mut snow::HandshakeState,
    initiator: bool,
    local_index: u32,
    remote_index: u32,
) -> DataKeys {
    // k1 encrypts initiator → responder, k2 responder → initiator (Noise Split()).
    let (mut k1, mut k2) = noise.dangerously_get_raw_split();
    let (send, recv) = if initiator { (&k1, &k2) } else { (&k2, &k1) };
    let keys = DataKeys {
        send: SendKey::new(send, remote_index),
        recv: RecvKey::new(recv, local_index),
    };
    k1.zeroize();
    k2.zeroize();
    keys
}

/// The client side of a first-attach handshake.
pub struct InitiatorHandshake {
    noise: snow::HandshakeState,
    /// MAC1 key for frames to the responder.
    mac1_out: [u8; 32],
    /// MAC1 key for frames to us.
    mac1_in: [u8; 32],
    sender_index: Option<u32>,
}

impl core::fmt::Debug for InitiatorHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InitiatorHandshake")
            .field("sender_index", &self.sender_index)
            .finish_non_exhaustive()
    }
}

/// A completed initiator handshake.
#[derive(Debug)]
pub struct InitiatorCompleted {
    /// Data keys: `send` addresses the responder's index, `recv` expects ours.
    pub keys: DataKeys,
    /// The responder's index.
    pub peer_index: u32,
    /// Bytes of the decrypted response payload written to `payload_out`.
    pub payload_len: usize,
}

impl InitiatorHandshake {
    /// Prepares a handshake from `local` to the responder `remote`. `prologue` must equal the
    /// responder's (see [`prologue`]). The ephemeral key is drawn from `rng`.
    pub fn new(
        local: &StaticSecret,
        remote: &PublicKey,
        psk: &Psk,
        prologue: &[u8],
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self, HandshakeError> {
        let noise =
            snow::Builder::with_resolver(noise_params()?, Box::new(SeededResolver::from_rng(rng)))
                .local_private_key(local.as_bytes())
                .and_then(|b| b.remote_public_key(remote.as_bytes()))
                .and_then(|b| b.psk(PSK_LOCATION, psk.as_bytes()))
                .and_then(|b| b.prologue(prologue))
                .and_then(|b| b.build_initiator())
                .map_err(internal)?;
        Ok(Self {
            noise,
            mac1_out: kdf::mac1_key(remote),
            mac1_in: kdf::mac1_key(&local.public_key()),
            sender_index: None,
        })
    }

    /// Our index, once [`write_init`](Self::write_init) ran (0 before).
    pub fn sender_index(&self) -> u32 {
        self.sender_index.unwrap_or(0)
    }

    /// Writes the complete HANDSHAKE_INIT frame (MAC1 set, MAC2 zero) into `out` and returns its
    /// length, [`handshake_init_len`]`(payload.len())`. Call once.
    pub fn write_init(
        &mut self,
        sender_idx: u32,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, HandshakeError> {
        if self.sender_index.is_some() {
            return Err(HandshakeError::WrongState);
        }
        if payload.len() > MAX_HANDSHAKE_PAYLOAD {
            return Err(HandshakeError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_HANDSHAKE_PAYLOAD,
            });
        }
        let len = handshake_init_len(payload.len());
        let out = out
            .get_mut(..len)
            .ok_or(HandshakeError::BufferTooSmall { needed: len })?;
        let noise_at = HEADER_LEN + 4;
        let mac1_at = len - 2 * MAC_LEN;
        write_header(out, MessageType::HandshakeInit);
        out[HEADER_LEN..noise_at].copy_from_slice(&sender_idx.to_be_bytes());
        let written = self
            .noise
            .write_message(payload, &mut out[noise_at..mac1_at])
            .map_err(map_noise)?;
        if written != mac1_at - noise_at {
            return Err(HandshakeError::Internal);
        }
        kdf::stamp_macs(&self.mac1_out, out, mac1_at);
        self.sender_index = Some(sender_idx);
        Ok(len)
    }

    /// The cheap checks of a HANDSHAKE_RESP without consuming the handshake: frame shape, MAC1
    /// (keyed with our own public key), MAC2 zero, and that it answers our initiation. Lets a caller drop a
    /// spoofed response and keep waiting for the real one.
    pub fn check_resp(&self, frame: &[u8]) -> Result<(), HandshakeError> {
        self.checked_resp(frame).map(|_| ())
    }

    fn checked_resp<'f>(
        &self,
        frame: &'f [u8],
    ) -> Result<HandshakeRespPacket<&'f [u8]>, HandshakeError> {
        let sender_index = self.sender_index.ok_or(HandshakeError::WrongState)?;
        let packet = HandshakeRespPacket::new_checked(frame)?;
        if !mac1_matches(&self.mac1_in, packet.mac1_covered(), &packet.mac1()) {
            return Err(HandshakeError::Mac1Invalid);
        }
        if packet.mac2() != [0; MAC_LEN] {
            return Err(HandshakeError::Mac2Invalid);
        }
        if packet.receiver_index() != sender_index {
            return Err(HandshakeError::UnexpectedReceiverIndex);
        }
        Ok(packet)
    }

    /// Verifies and decrypts HANDSHAKE_RESP: MAC1 before anything else, then the receiver index,
    /// then Noise message 2. The response payload is written to `payload_out`. Consumes the
    /// handshake: on error start a new one (or call [`check_resp`](Self::check_resp) first).
    pub fn read_resp(
        mut self,
        frame: &[u8],
        payload_out: &mut [u8],
    ) -> Result<InitiatorCompleted, HandshakeError> {
        let packet = self.checked_resp(frame)?;
        let local_index = packet.receiver_index();
        let peer_index = packet.sender_index();
        let needed = packet.payload_len();
        let payload_out = payload_out
            .get_mut(..needed)
            .ok_or(HandshakeError::BufferTooSmall { needed })?;
        let payload_len = self
            .noise
            .read_message(packet.noise_message(), payload_out)
            .map_err(map_noise)?;
        if !self.noise.is_handshake_finished() {
            return Err(HandshakeError::Internal);
        }
        let keys = split_keys(&mut self.noise, true, local_index, peer_index);
        Ok(InitiatorCompleted {
            keys,
            peer_index,
            payload_len,
        })
    }
}

/// What a responder has counted, by outcome. Junk that fails MAC1 never reaches `dh_started`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponderCounters {
    /// Initiations dropped because MAC1 did not match (no DH spent).
    pub mac1_rejected: u64,
    /// Datagrams that did not parse as HANDSHAKE_INIT (no DH spent).
    pub malformed: u64,
    /// Initiations that passed MAC1 and entered Noise (cost: Diffie-Hellman).
    pub dh_started: u64,
    /// Initiations that failed inside Noise (wrong key, tampering, low-order point).
    pub noise_failed: u64,
}

/// The server side: answers first-attach initiations addressed to its static key.
pub struct Responder {
    local: StaticSecret,
    public: PublicKey,
    mac1_in: [u8; 32],
    counters: ResponderCounters,
}

impl core::fmt::Debug for Responder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Responder")
            .field("public", &self.public)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder for the static key `local`.
    pub fn new(local: StaticSecret) -> Self {
        let public = local.public_key();
        Self {
            mac1_in: kdf::mac1_key(&public),
            public,
            local,
            counters: ResponderCounters::default(),
        }
    }

    /// Our static public key (what clients configure).
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Counters by outcome.
    pub fn counters(&self) -> ResponderCounters {
        self.counters
    }

    /// Frame shape and MAC1 of a HANDSHAKE_INIT, no Diffie-Hellman: what a caller runs before
    /// deciding (under load) whether the initiation deserves a DH or a cookie reply. Failures
    /// are counted (`malformed`, `mac1_rejected`); a frame that passes here passes the same
    /// steps of [`read_init`](Self::read_init), which are not counted twice.
    pub fn check_init(&mut self, frame: &[u8]) -> Result<(), HandshakeError> {
        self.checked_init(frame).map(drop)
    }

    /// Shape and MAC1, counted: the cheap steps shared by `check_init` and `read_init`.
    fn checked_init<'a>(
        &mut self,
        frame: &'a [u8],
    ) -> Result<HandshakeInitPacket<&'a [u8]>, HandshakeError> {
        let packet = match HandshakeInitPacket::new_checked(frame) {
            Ok(packet) => packet,
            Err(err) => {
                self.counters.malformed += 1;
                return Err(err.into());
            }
        };
        if !mac1_matches(&self.mac1_in, packet.mac1_covered(), &packet.mac1()) {
            self.counters.mac1_rejected += 1;
            return Err(HandshakeError::Mac1Invalid);
        }
        Ok(packet)
    }

    /// Processes a HANDSHAKE_INIT. Order: frame shape, MAC1 in constant time, and only then Noise
    /// (the only step that costs Diffie-Hellman). On success the initiator's static key is known
    /// and authenticated by `ss`; the caller looks up the peer (and its PSK) before answering with
    /// [`IncomingInit::write_resp`]. `rng` seeds the ephemeral key of the response.
    pub fn read_init(
        &mut self,
        frame: &[u8],
        prologue: &[u8],
        payload_out: &mut [u8],
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<IncomingInit, HandshakeError> {
        let packet = self.checked_init(frame)?;
        // MAC2 is the caller's business: it is checked (with `cookie::CookieChecker`) only
        // under load, before this call (docs/protocol.md §5).
        let needed = packet.payload_len();
        let payload_out = payload_out
            .get_mut(..needed)
            .ok_or(HandshakeError::BufferTooSmall { needed })?;

        self.counters.dh_started += 1;
        let mut noise =
            snow::Builder::with_resolver(noise_params()?, Box::new(SeededResolver::from_rng(rng)))
                .local_private_key(self.local.as_bytes())
                .and_then(|b| b.prologue(prologue))
                .and_then(|b| b.build_responder())
                .map_err(internal)?;
        let payload_len = match noise.read_message(packet.noise_message(), payload_out) {
            Ok(len) => len,
            Err(err) => {
                self.counters.noise_failed += 1;
                return Err(map_noise(err));
            }
        };
        let peer_static = noise
            .get_remote_static()
            .and_then(|rs| <[u8; 32]>::try_from(rs).ok())
            .map(PublicKey::from_bytes)
            .ok_or(HandshakeError::Internal)?;
        Ok(IncomingInit {
            peer_static,
            peer_index: packet.sender_index(),
            payload_len,
            noise,
        })
    }
}

/// An authenticated initiation, waiting for the caller's decision and the peer's PSK.
pub struct IncomingInit {
    /// The initiator's static public key (authenticated by Noise `ss`; check it is a known peer).
    pub peer_static: PublicKey,
    /// The initiator's index.
    pub peer_index: u32,
    /// Bytes of the decrypted initiation payload written to `payload_out`.
    pub payload_len: usize,
    noise: snow::HandshakeState,
}

impl core::fmt::Debug for IncomingInit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IncomingInit")
            .field("peer_static", &self.peer_static)
            .field("peer_index", &self.peer_index)
            .field("payload_len", &self.payload_len)
            .finish_non_exhaustive()
    }
}

impl IncomingInit {
    /// Writes HANDSHAKE_RESP into `out` (MAC1 keyed with the initiator's public key, MAC2 zero),
    /// mixing in `psk` (the PSK configured for [`peer_static`](Self::peer_static)), and returns
    /// the frame length and the data keys. `sender_idx` is our index for this session.
    pub fn write_resp(
        mut self,
        psk: &Psk,
        sender_idx: u32,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, DataKeys), HandshakeError> {
        if payload.len() > MAX_HANDSHAKE_PAYLOAD {
            return Err(HandshakeError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_HANDSHAKE_PAYLOAD,
            });
        }
        let len = handshake_resp_len(payload.len());
        let out = out
            .get_mut(..len)
            .ok_or(HandshakeError::BufferTooSmall { needed: len })?;
        self.noise
            .set_psk(usize::from(PSK_LOCATION), psk.as_bytes())
            .map_err(internal)?;
        let noise_at = HEADER_LEN + 8;
        let mac1_at = len - 2 * MAC_LEN;
        write_header(out, MessageType::HandshakeResp);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&sender_idx.to_be_bytes());
        out[HEADER_LEN + 4..noise_at].copy_from_slice(&self.peer_index.to_be_bytes());
        let written = self
            .noise
            .write_message(payload, &mut out[noise_at..mac1_at])
            .map_err(map_noise)?;
        if written != mac1_at - noise_at || !self.noise.is_handshake_finished() {
            return Err(HandshakeError::Internal);
        }
        kdf::stamp_macs(&kdf::mac1_key(&self.peer_static), out, mac1_at);
        let keys = split_keys(&mut self.noise, false, sender_idx, self.peer_index);
        Ok((len, keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologue_binds_label_version_and_transport_list() {
        let bytes = prologue(&[1, 2, 3]);

        assert_eq!(bytes, b"jvpn/1\x01\x00\x03\x01\x02\x03");
        assert_ne!(prologue(&[1, 2]), prologue(&[1, 2, 0]));
    }

    #[test]
    fn the_noise_pattern_parses() {
        assert!(noise_params().is_ok());
    }
}

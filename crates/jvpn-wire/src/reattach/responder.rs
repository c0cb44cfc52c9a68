//! The server side of a reattach, as typed steps in ATTACKS.md §3.4 order.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{build_noise, map_noise, reattach_prologue};
use crate::data::DataKeys;
use crate::error::ReattachError;
use crate::frame::{
    HEADER_LEN, MessageType, REATTACH_INIT_LEN, REATTACH_INIT_PLAINTEXT_LEN, ReattachInitPacket,
    reattach_resp_len, write_header,
};
use crate::handshake::resolver::SeededResolver;
use crate::handshake::{mac1_matches, split_keys};
use crate::kdf::{self, MAC_LEN};
use crate::keys::{Psk, PublicKey, StaticSecret, TokenKey};
use crate::payload::{REATTACH_RESP_PAYLOAD_MAX_LEN, ReattachInitPayload, ReattachRespPayload};
use crate::token::{TokenClaims, open_token};

/// What a reattach responder has counted, by outcome. Nothing that fails before `read_init`
/// reaches `dh_started`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReattachCounters {
    /// Datagrams that did not parse as REATTACH_INIT, or whose MAC2 was not zero (no DH spent).
    pub malformed: u64,
    /// Frames dropped because MAC1 did not match (no DH spent).
    pub mac1_rejected: u64,
    /// Tokens that did not open under the key tried (no DH spent; one per key tried).
    pub token_rejected: u64,
    /// Attempts that entered Noise (cost: two Diffie-Hellman operations).
    pub dh_started: u64,
    /// Attempts that failed inside Noise (wrong PSK or key, tampering, low-order point) or whose
    /// authenticated payload did not parse.
    pub noise_failed: u64,
    /// Attempts that proved a key and PSK but named the wrong device key or session (S8, S9).
    pub identity_mismatch: u64,
}

/// Step 1: a REATTACH_INIT of the right type, version and length. Nothing verified yet.
#[derive(Debug, Clone, Copy)]
pub struct ReattachInitView<'a> {
    packet: ReattachInitPacket<&'a [u8]>,
}

impl ReattachInitView<'_> {
    /// The initiator's ephemeral key (cleartext `e`): what an exact-replay filter remembers.
    pub fn ephemeral(&self) -> [u8; 32] {
        self.packet.ephemeral()
    }

    /// The initiator's index.
    pub fn sender_index(&self) -> u32 {
        self.packet.sender_index()
    }
}

/// Step 2: MAC1 matched (the sender knows our public key) and MAC2 is zero.
#[derive(Debug, Clone, Copy)]
pub struct Mac1Verified<'a> {
    view: ReattachInitView<'a>,
}

impl Mac1Verified<'_> {
    /// The initiator's ephemeral key (see [`ReattachInitView::ephemeral`]).
    pub fn ephemeral(&self) -> [u8; 32] {
        self.view.ephemeral()
    }
}

/// Step 3: the token opened under our token key: its claims name the record to look up.
#[derive(Debug, Clone, Copy)]
pub struct TokenVerified<'a> {
    view: ReattachInitView<'a>,
    claims: TokenClaims,
}

impl TokenVerified<'_> {
    /// The token's claims. Before [`ReattachResponder::read_init`] the caller checks
    /// `is_expired(now)` and the record's `token_seq` floor, runs the exact-replay filter on
    /// [`ephemeral`](Self::ephemeral), and looks the session up by `session_id`.
    pub fn claims(&self) -> &TokenClaims {
        &self.claims
    }

    /// The initiator's ephemeral key (see [`ReattachInitView::ephemeral`]).
    pub fn ephemeral(&self) -> [u8; 32] {
        self.view.ephemeral()
    }
}

/// The server side: answers REATTACH_INITs addressed to its static key.
pub struct ReattachResponder {
    local: StaticSecret,
    public: PublicKey,
    mac1_in: [u8; 32],
    counters: ReattachCounters,
}

impl core::fmt::Debug for ReattachResponder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReattachResponder")
            .field("public", &self.public)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl ReattachResponder {
    /// A responder for the static key `local`.
    pub fn new(local: StaticSecret) -> Self {
        let public = local.public_key();
        Self {
            mac1_in: kdf::mac1_key(&public),
            public,
            local,
            counters: ReattachCounters::default(),
        }
    }

    /// Our static public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Counters by outcome.
    pub fn counters(&self) -> ReattachCounters {
        self.counters
    }

    /// Step a: type, version, flags, reserved, exact length. Counts `malformed`.
    pub fn parse<'a>(&mut self, frame: &'a [u8]) -> Result<ReattachInitView<'a>, ReattachError> {
        match ReattachInitPacket::new_checked(frame) {
            Ok(packet) => Ok(ReattachInitView { packet }),
            Err(err) => {
                self.counters.malformed += 1;
                Err(err.into())
            }
        }
    }

    /// Step b: MAC1 in constant time (no DH). MAC2 is the caller's business (checked with
    /// `cookie::CookieChecker` under load only, docs/protocol.md §5).
    pub fn verify_mac1<'a>(
        &mut self,
        view: &ReattachInitView<'a>,
    ) -> Result<Mac1Verified<'a>, ReattachError> {
        let packet = &view.packet;
        if !mac1_matches(&self.mac1_in, packet.mac1_covered(), &packet.mac1()) {
            self.counters.mac1_rejected += 1;
            return Err(ReattachError::Mac1Invalid);
        }
        Ok(Mac1Verified { view: *view })
    }

    /// Step d: opens the token (one AEAD, no DH). On failure with the current key, a node in a
    /// key-rotation overlap calls this again with the previous key (each failure is counted).
    pub fn open_token<'a>(
        &mut self,
        key: &TokenKey,
        view: &Mac1Verified<'a>,
    ) -> Result<TokenVerified<'a>, ReattachError> {
        match open_token(key, view.view.packet.token()) {
            Ok(claims) => Ok(TokenVerified {
                view: view.view,
                claims,
            }),
            Err(err) => {
                self.counters.token_rejected += 1;
                Err(err.into())
            }
        }
    }

    /// Step f: Noise message 1 (es → s, ss, psk → payload), the only step that costs
    /// Diffie-Hellman. `client_static` and `psk` come from the session record the token named
    /// (`psk` = [`kdf::resumption_psk`] of the record's secret and the epoch to try). On success
    /// the initiator has proven possession of the device key and of the session's PSK, the
    /// decrypted static key equals `client_static`, and the payload's session id equals the
    /// token's. May be called again on the same view with another PSK (pending epoch).
    pub fn read_init(
        &mut self,
        view: &TokenVerified<'_>,
        client_static: &PublicKey,
        psk: &Psk,
        prologue_base: &[u8],
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<IncomingReattach, ReattachError> {
        let packet = &view.view.packet;
        self.counters.dh_started += 1;
        let prologue = reattach_prologue(prologue_base, packet.prologue_suffix());
        let mut noise = build_noise(
            SeededResolver::from_rng(rng),
            &self.local,
            None,
            psk,
            &prologue,
        )?;
        let mut plaintext = [0u8; REATTACH_INIT_PLAINTEXT_LEN];
        let len = match noise.read_message(packet.noise_message(), &mut plaintext) {
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
            .ok_or(ReattachError::Internal)?;
        if !bool::from(peer_static.as_bytes().ct_eq(client_static.as_bytes())) {
            self.counters.identity_mismatch += 1;
            return Err(ReattachError::UnexpectedStatic);
        }
        let payload = match ReattachInitPayload::parse(&plaintext[..len]) {
            Ok(payload) => payload,
            Err(err) => {
                self.counters.noise_failed += 1;
                return Err(err.into());
            }
        };
        if payload.session_id != view.claims.session_id {
            self.counters.identity_mismatch += 1;
            return Err(ReattachError::SessionMismatch);
        }
        Ok(IncomingReattach {
            peer_static,
            peer_index: packet.sender_index(),
            payload,
            claims: view.claims,
            noise,
        })
    }
}

/// A reattach whose proof of possession passed, waiting for the session layer's freshness,
/// policy and ownership decisions, then [`write_resp`](Self::write_resp).
pub struct IncomingReattach {
    /// The initiator's static key (equal to the record's device key).
    pub peer_static: PublicKey,
    /// The initiator's index.
    pub peer_index: u32,
    /// The authenticated payload.
    pub payload: ReattachInitPayload,
    /// The token's claims (same session id as the payload).
    pub claims: TokenClaims,
    noise: snow::HandshakeState,
}

impl core::fmt::Debug for IncomingReattach {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IncomingReattach")
            .field("peer_static", &self.peer_static)
            .field("peer_index", &self.peer_index)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

impl IncomingReattach {
    /// Whether `claims` name the session this payload reattaches. `read_init` already refuses a
    /// mismatch; this helper lets a caller re-check against claims it holds elsewhere.
    pub fn token_matches(&self, claims: &TokenClaims) -> bool {
        self.payload.session_id == claims.session_id
    }

    /// Writes REATTACH_RESP into `out` (Noise message 2: e, ee, se; MAC1 keyed with the
    /// initiator's public key; MAC2 zero) and returns its length and the fresh data keys.
    /// `sender_idx` is our fresh index for the new keys. Error statuses are sent the same way
    /// (authenticated); the caller then drops the keys. The response is never larger than the
    /// request.
    pub fn write_resp(
        mut self,
        sender_idx: u32,
        payload: &ReattachRespPayload,
        out: &mut [u8],
    ) -> Result<(usize, DataKeys), ReattachError> {
        let mut plaintext = Zeroizing::new([0u8; REATTACH_RESP_PAYLOAD_MAX_LEN]);
        let payload_len = payload.emit(&mut plaintext[..])?;
        let len = reattach_resp_len(payload_len);
        if len > REATTACH_INIT_LEN {
            return Err(ReattachError::ResponseTooLarge {
                len,
                limit: REATTACH_INIT_LEN,
            });
        }
        let out = out
            .get_mut(..len)
            .ok_or(ReattachError::BufferTooSmall { needed: len })?;
        let noise_at = HEADER_LEN + 8;
        let mac1_at = len - 2 * MAC_LEN;
        write_header(out, MessageType::ReattachResp);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&sender_idx.to_be_bytes());
        out[HEADER_LEN + 4..noise_at].copy_from_slice(&self.peer_index.to_be_bytes());
        let written = self
            .noise
            .write_message(&plaintext[..payload_len], &mut out[noise_at..mac1_at])
            .map_err(map_noise)?;
        if written != mac1_at - noise_at || !self.noise.is_handshake_finished() {
            return Err(ReattachError::Internal);
        }
        kdf::stamp_macs(&kdf::mac1_key(&self.peer_static), out, mac1_at);
        let keys = split_keys(&mut self.noise, false, sender_idx, self.peer_index);
        Ok((len, keys))
    }
}

//! Shared fixtures for jvpn's fuzz targets and for the seed-corpus generator (`gen-corpus`).
//!
//! Every key, index and message here is derived from fixed seeds, so the honest messages the
//! targets mutate are byte-identical in every process, and the committed seed corpus (built from
//! the same functions) replays them exactly. That determinism matters for the acceptance
//! oracles: the handshake and reattach targets assert that the only frame their responders may
//! accept is the one honest message built here.
//!
//! This crate is test tooling: it may panic (an assertion failure IS the finding).

pub mod session_world;

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use jvpn_wire::frame::DATA_HEADER_LEN;
use jvpn_wire::kdf::{MAC_LEN, mac1, mac1_key};
use jvpn_wire::{
    InitPayload, InitiatorHandshake, MessageType, Psk, PublicKey, ReattachInitPayload,
    ReattachInitiator, ReattachRespPayload, ReattachResponder, ReattachStatus, RespPayload,
    Responder, ResumptionSecret, SendKey, SessionId, StaticSecret, TOKEN_LEN, TokenClaims,
    TokenKey, prologue, resumption_psk, seal_token,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The offered-transports list both sides mix into the prologue.
pub const TRANSPORTS: &[u8] = b"udp";
/// The honest initiator's sender index in the seed HANDSHAKE_INIT.
pub const INIT_SENDER_INDEX: u32 = 0x1234_5678;
/// The honest client's sender index in the seed REATTACH_INIT.
pub const REATTACH_SENDER_INDEX: u32 = 0x0bad_cafe;
/// The client timestamp in the seed HANDSHAKE_INIT (2023-11-14T22:13:20Z).
pub const INIT_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;
/// Offset of the Noise ephemeral in HANDSHAKE_INIT.
pub const HANDSHAKE_INIT_EPHEMERAL_AT: usize = 8;
/// Offset of the token in REATTACH_INIT.
pub const REATTACH_TOKEN_AT: usize = 8;
/// Offset of the Noise ephemeral in REATTACH_INIT.
pub const REATTACH_EPHEMERAL_AT: usize = REATTACH_TOKEN_AT + TOKEN_LEN;
/// The data-plane key of the `open` target and its receiver index.
pub const DATA_KEY: [u8; 32] = [0x5a; 32];
/// The receiver index the `open` target's keys use.
pub const DATA_INDEX: u32 = 42;

/// Every long-lived secret of the fixtures.
#[derive(Debug)]
pub struct Keys {
    /// The client's device key.
    pub client: StaticSecret,
    /// The server's static key.
    pub server: StaticSecret,
    /// Another device key (a valid client of someone else's session).
    pub other_client: StaticSecret,
    /// The PSK of the first-attach handshake.
    pub psk: Psk,
    /// The cluster token key.
    pub token_key: TokenKey,
    /// The session's resumption secret.
    pub resumption: ResumptionSecret,
    /// The session being reattached.
    pub session_id: SessionId,
}

/// The fixture keys (drawn once from a fixed seed).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x6a76_706e_0001);
        Keys {
            client: StaticSecret::generate(&mut rng),
            server: StaticSecret::generate(&mut rng),
            other_client: StaticSecret::generate(&mut rng),
            psk: Psk::from_bytes([9; 32]),
            token_key: TokenKey::generate(&mut rng),
            resumption: ResumptionSecret::generate(&mut rng),
            session_id: SessionId::random(&mut rng),
        }
    })
}

/// A deterministic RNG for one use, named by `stream`.
pub fn rng(stream: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x6a76_706e_0000 ^ (stream << 20))
}

/// The prologue both sides use.
pub fn the_prologue() -> &'static [u8] {
    static PROLOGUE: OnceLock<Vec<u8>> = OnceLock::new();
    PROLOGUE.get_or_init(|| prologue(TRANSPORTS))
}

/// The honest HANDSHAKE_INIT (client → server, `InitPayload` with no resume) and the matching
/// HANDSHAKE_RESP.
pub struct HandshakeSeeds {
    /// HANDSHAKE_INIT.
    pub init: Vec<u8>,
    /// HANDSHAKE_RESP answering it.
    pub resp: Vec<u8>,
}

/// The honest first-attach messages.
pub fn handshake_seeds() -> &'static HandshakeSeeds {
    static SEEDS: OnceLock<HandshakeSeeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let k = keys();
        let mut rng = rng(1);
        let mut initiator = InitiatorHandshake::new(
            &k.client,
            &k.server.public_key(),
            &k.psk,
            the_prologue(),
            &mut rng,
        )
        .expect("fixture keys are valid");
        let payload = InitPayload {
            unix_nanos: INIT_UNIX_NANOS,
            resume: None,
        };
        let mut plain = [0u8; 64];
        let plain_len = payload
            .emit(&mut plain)
            .expect("64 bytes hold an InitPayload");
        let mut init = vec![0u8; 2048];
        let len = initiator
            .write_init(INIT_SENDER_INDEX, &plain[..plain_len], &mut init)
            .expect("seed init");
        init.truncate(len);

        let mut responder = Responder::new(k.server.clone());
        let incoming = responder
            .read_init(&init, the_prologue(), &mut [0u8; 64], &mut rng)
            .expect("the seed init is valid");
        let resp_payload = RespPayload {
            session_id: k.session_id,
            epoch: 1,
            server_unix_nanos: INIT_UNIX_NANOS + 1,
        };
        let plain_len = resp_payload
            .emit(&mut plain)
            .expect("64 bytes hold a RespPayload");
        let mut resp = vec![0u8; 2048];
        let (len, _keys) = incoming
            .write_resp(&k.psk, 0x0abc_def0, &plain[..plain_len], &mut resp)
            .expect("seed resp");
        resp.truncate(len);
        HandshakeSeeds { init, resp }
    })
}

/// The session's current reattach PSK (epoch 0).
pub fn reattach_psk() -> Psk {
    let k = keys();
    resumption_psk(&k.resumption, &k.session_id, 0)
}

/// The honest token's claims.
pub fn token_claims() -> TokenClaims {
    TokenClaims {
        session_id: keys().session_id,
        token_seq: 1,
        expiry_unix_secs: u64::MAX,
    }
}

/// The honest REATTACH_INIT payload.
pub fn reattach_payload() -> ReattachInitPayload {
    ReattachInitPayload {
        session_id: keys().session_id,
        rc: 1,
        client_unix_nanos: INIT_UNIX_NANOS,
        last_epoch_seen: 1,
        last_rx_counter: 7,
        transport_kind: 1,
        path_id: 3,
    }
}

/// The honest REATTACH_INIT and a REATTACH_RESP (status OK) answering it.
pub struct ReattachSeeds {
    /// REATTACH_INIT.
    pub init: Vec<u8>,
    /// REATTACH_RESP.
    pub resp: Vec<u8>,
}

/// The honest reattach messages.
pub fn reattach_seeds() -> &'static ReattachSeeds {
    static SEEDS: OnceLock<ReattachSeeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let k = keys();
        let mut rng = rng(2);
        let token = seal_token(&k.token_key, &token_claims(), &mut rng);
        let psk = reattach_psk();
        let mut initiator = ReattachInitiator::new(
            &k.client,
            &k.server.public_key(),
            &psk,
            the_prologue(),
            &mut rng,
        );
        let mut init = vec![0u8; 1024];
        let len = initiator
            .write_init(
                REATTACH_SENDER_INDEX,
                &token,
                &reattach_payload(),
                &mut init,
            )
            .expect("seed reattach init");
        init.truncate(len);

        let mut responder = ReattachResponder::new(k.server.clone());
        let incoming = {
            let view = responder.parse(&init).expect("seed parses");
            let mac = responder.verify_mac1(&view).expect("seed MAC1");
            let verified = responder
                .open_token(&k.token_key, &mac)
                .expect("seed token");
            responder
                .read_init(
                    &verified,
                    &k.client.public_key(),
                    &psk,
                    the_prologue(),
                    &mut rng,
                )
                .expect("seed reattach is valid")
        };
        let new_tokens = [
            seal_token(&k.token_key, &token_claims(), &mut rng),
            seal_token(&k.token_key, &token_claims(), &mut rng),
            seal_token(&k.token_key, &token_claims(), &mut rng),
            seal_token(&k.token_key, &token_claims(), &mut rng),
        ];
        let payload = ReattachRespPayload {
            status: ReattachStatus::Ok,
            epoch: 2,
            tokens: new_tokens,
            next_resumption_secret: ResumptionSecret::generate(&mut rng),
            path_challenge: [0x33; 16],
            server_unix_nanos: INIT_UNIX_NANOS + 2,
            recovery_deadline_unix_ms: 1_700_000_120_000,
            reset_token: None,
        };
        let mut resp = vec![0u8; 1024];
        let (len, _keys) = incoming
            .write_resp(0x0fed_cba9, &payload, &mut resp)
            .expect("seed reattach resp");
        resp.truncate(len);
        ReattachSeeds { init, resp }
    })
}

/// Seals `plaintext` as a frame of type `ty` with `key`.
pub fn seal(key: &mut SendKey, ty: MessageType, plaintext: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; plaintext.len() + jvpn_wire::DATA_OVERHEAD];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + plaintext.len()].copy_from_slice(plaintext);
    let len = key
        .seal(ty, &mut buf, plaintext.len())
        .expect("fixture plaintexts fit one frame");
    buf.truncate(len);
    buf
}

/// Rewrites MAC1 (the 16 bytes before the trailing MAC2) over everything before it, keyed for
/// `receiver`, as an attacker who knows the receiver's public key can. Frames shorter than two
/// MACs are left alone.
pub fn fix_mac1(frame: &mut [u8], receiver: &PublicKey) {
    let Some(mac_at) = frame.len().checked_sub(2 * MAC_LEN) else {
        return;
    };
    let mac = mac1(&mac1_key(receiver), &frame[..mac_at]);
    frame[mac_at..mac_at + MAC_LEN].copy_from_slice(&mac);
}

/// X25519 public keys of low order (and their non-canonical encodings): every DH with them is
/// all zeros, which the wire layer must refuse.
pub const LOW_ORDER_POINTS: [[u8; 32]; 7] = [
    [0; 32],
    {
        let mut p = [0; 32];
        p[0] = 1;
        p
    },
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    // p - 1, p, p + 1 (non-canonical encodings of low-order points).
    {
        let mut p = [0xff; 32];
        p[0] = 0xec;
        p[31] = 0x7f;
        p
    },
    {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        p
    },
    {
        let mut p = [0xff; 32];
        p[0] = 0xee;
        p[31] = 0x7f;
        p
    },
];

/// One structure-aware edit of an honest message. Positions wrap modulo the frame length, so
/// every edit lands somewhere; lengths are capped so frames stay near real sizes.
#[derive(Arbitrary, Debug, Clone)]
pub enum Mutation {
    /// XOR one byte with `mask` (a zero mask leaves the frame unchanged).
    Flip {
        /// Position (wraps).
        at: u16,
        /// XOR mask.
        mask: u8,
    },
    /// Overwrite one byte.
    Set {
        /// Position (wraps).
        at: u16,
        /// New value.
        value: u8,
    },
    /// Cut the frame to `len` bytes (wraps modulo the length + 1).
    Truncate {
        /// New length.
        len: u16,
    },
    /// Append bytes (at most 64).
    Append {
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Overwrite a range starting at `at` (at most 64 bytes, clipped at the end).
    Overwrite {
        /// Start (wraps).
        at: u16,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Insert bytes at `at` (at most 64).
    Insert {
        /// Position (wraps).
        at: u16,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Remove up to `len` bytes at `at`.
    Remove {
        /// Position (wraps).
        at: u16,
        /// How many.
        len: u8,
    },
    /// Replace the Noise ephemeral with a low-order point.
    LowOrderEphemeral {
        /// Which of [`LOW_ORDER_POINTS`] (wraps).
        which: u8,
    },
    /// Set the 4 header bytes (type, version, flags, reserved).
    Header {
        /// The new header.
        header: [u8; 4],
    },
}

fn capped(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(64)]
}

impl Mutation {
    /// Applies the edit; `ephemeral_at` is where this message type carries its Noise `e`.
    pub fn apply(&self, frame: &mut Vec<u8>, ephemeral_at: usize) {
        let wrap = |at: u16, len: usize| if len == 0 { 0 } else { usize::from(at) % len };
        match self {
            Mutation::Flip { at, mask } => {
                if !frame.is_empty() {
                    let i = wrap(*at, frame.len());
                    frame[i] ^= mask;
                }
            }
            Mutation::Set { at, value } => {
                if !frame.is_empty() {
                    let i = wrap(*at, frame.len());
                    frame[i] = *value;
                }
            }
            Mutation::Truncate { len } => {
                let keep = usize::from(*len) % (frame.len() + 1);
                frame.truncate(keep);
            }
            Mutation::Append { bytes } => frame.extend_from_slice(capped(bytes)),
            Mutation::Overwrite { at, bytes } => {
                if !frame.is_empty() {
                    let start = wrap(*at, frame.len());
                    let bytes = capped(bytes);
                    let end = (start + bytes.len()).min(frame.len());
                    frame[start..end].copy_from_slice(&bytes[..end - start]);
                }
            }
            Mutation::Insert { at, bytes } => {
                let at = usize::from(*at) % (frame.len() + 1);
                let tail = frame.split_off(at);
                frame.extend_from_slice(capped(bytes));
                frame.extend_from_slice(&tail);
            }
            Mutation::Remove { at, len } => {
                if !frame.is_empty() {
                    let start = wrap(*at, frame.len());
                    let end = (start + usize::from(*len)).min(frame.len());
                    frame.drain(start..end);
                }
            }
            Mutation::LowOrderEphemeral { which } => {
                let point = LOW_ORDER_POINTS[usize::from(*which) % LOW_ORDER_POINTS.len()];
                if frame.len() >= ephemeral_at + 32 {
                    frame[ephemeral_at..ephemeral_at + 32].copy_from_slice(&point);
                }
            }
            Mutation::Header { header } => {
                let n = frame.len().min(4);
                frame[..n].copy_from_slice(&header[..n]);
            }
        }
    }
}

/// Applies at most `limit` mutations.
pub fn apply_all(frame: &mut Vec<u8>, mutations: &[Mutation], ephemeral_at: usize, limit: usize) {
    for m in mutations.iter().take(limit) {
        m.apply(frame, ephemeral_at);
    }
}

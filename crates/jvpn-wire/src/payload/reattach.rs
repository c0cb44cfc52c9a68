//! Plaintext payloads of REATTACH_INIT and REATTACH_RESP (encrypted inside Noise IKpsk1).
//!
//! Same shape as the first-attach payloads (a fixed part, then `type | len u16 | value`
//! extensions), plus padding: a type byte of [`super::PADDING_EXTENSION`] (0) starts zero padding
//! that runs to the end. REATTACH_INIT pads its payload so the frame has one fixed size.

use core::fmt;

use super::{check_total_with, find_extension, read_id, read_u64};
use crate::error::FrameError;
use crate::keys::{ResumptionSecret, SessionId};
use crate::reset::{RESET_TOKEN_EXTENSION, RESET_TOKEN_EXTENSION_LEN, ResetToken};
use crate::token::TOKEN_LEN;

/// Length of [`ReattachInitPayload`]'s fixed part.
pub const REATTACH_INIT_PAYLOAD_LEN: usize = 16 + 8 + 8 + 8 + 8 + 1 + 4;
/// Number of fresh tokens a REATTACH_RESP carries.
pub const REATTACH_TOKENS: usize = 4;
/// Length of a path challenge (and of its echo).
pub const PATH_CHALLENGE_LEN: usize = 16;
/// Length of [`ReattachRespPayload`]'s fixed part.
pub const REATTACH_RESP_PAYLOAD_LEN: usize =
    1 + 8 + REATTACH_TOKENS * TOKEN_LEN + 32 + PATH_CHALLENGE_LEN + 8 + 8;
/// Longest [`ReattachRespPayload`] jvpn emits: the fixed part and a reset-token extension.
pub const REATTACH_RESP_PAYLOAD_MAX_LEN: usize =
    REATTACH_RESP_PAYLOAD_LEN + RESET_TOKEN_EXTENSION_LEN;

fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// The client's payload in REATTACH_INIT.
///
/// Layout: `session_id [16] | rc u64 | client_unix_nanos u64 | last_epoch_seen u64 |
/// last_rx_counter u64 | transport_kind u8 | path_id u32 | extensions | zero padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReattachInitPayload {
    /// The session being reattached. The responder refuses it unless it equals the token's.
    pub session_id: SessionId,
    /// Reattach counter, strictly increasing per session: the session layer accepts only
    /// `rc > record.last_rc` (newest wins; replays and stale attempts lose).
    pub rc: u64,
    /// Client wall clock (server-synchronised estimate), ns since the Unix epoch; checked against
    /// the freshness window by the session layer.
    pub client_unix_nanos: u64,
    /// The highest binding epoch the client has seen.
    pub last_epoch_seen: u64,
    /// The highest data counter the client received on the old binding (diagnostics, S-order).
    pub last_rx_counter: u64,
    /// Which transport kind carries this attempt (session-layer code).
    pub transport_kind: u8,
    /// The client's identifier for the path this attempt uses.
    pub path_id: u32,
}

impl ReattachInitPayload {
    /// Encoded length (no extensions, no padding).
    pub const fn encoded_len(&self) -> usize {
        REATTACH_INIT_PAYLOAD_LEN
    }

    /// Parses a payload; unknown non-critical extensions and zero padding are skipped.
    pub fn parse(buf: &[u8]) -> Result<Self, FrameError> {
        check_total_with(buf, REATTACH_INIT_PAYLOAD_LEN, true)?;
        Ok(Self {
            session_id: read_id(buf, 0),
            rc: read_u64(buf, 16),
            client_unix_nanos: read_u64(buf, 24),
            last_epoch_seen: read_u64(buf, 32),
            last_rx_counter: read_u64(buf, 40),
            transport_kind: buf[48],
            path_id: read_u32(buf, 49),
        })
    }

    /// Writes the payload (no padding) into `out` and returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let out = out
            .get_mut(..REATTACH_INIT_PAYLOAD_LEN)
            .ok_or(FrameError::BufferTooSmall {
                needed: REATTACH_INIT_PAYLOAD_LEN,
            })?;
        out[..16].copy_from_slice(&self.session_id.0);
        out[16..24].copy_from_slice(&self.rc.to_be_bytes());
        out[24..32].copy_from_slice(&self.client_unix_nanos.to_be_bytes());
        out[32..40].copy_from_slice(&self.last_epoch_seen.to_be_bytes());
        out[40..48].copy_from_slice(&self.last_rx_counter.to_be_bytes());
        out[48] = self.transport_kind;
        out[49..53].copy_from_slice(&self.path_id.to_be_bytes());
        Ok(REATTACH_INIT_PAYLOAD_LEN)
    }
}

/// The server's verdict in REATTACH_RESP. Authenticated (it rides inside Noise message 2), so a
/// client may act on every value; only [`ReattachStatus::Ok`] makes the new keys usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum ReattachStatus {
    /// Accepted: claim made, path challenge attached; answer with PATH_CONFIRM under the new keys.
    Ok = 0,
    /// A reattach with a higher counter won; this one is stale. Do not retry with this counter.
    Superseded = 1,
    /// The timestamp is outside the freshness window; resynchronise with `server_unix_nanos`
    /// and retry.
    Clock = 2,
    /// The recovery window is over; the session is gone. Start a new first attach.
    Expired = 3,
    /// Another node should serve this session (target in an extension, later issue).
    Redirect = 4,
    /// Policy refused the reattach (switch budget, transport not allowed). Retry later or stay.
    Policy = 5,
    /// The ownership store is unreachable; retry after a backoff.
    StoreUnavailable = 6,
}

impl ReattachStatus {
    /// The status for a wire byte, if any.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Ok),
            1 => Some(Self::Superseded),
            2 => Some(Self::Clock),
            3 => Some(Self::Expired),
            4 => Some(Self::Redirect),
            5 => Some(Self::Policy),
            6 => Some(Self::StoreUnavailable),
            _ => None,
        }
    }

    /// The wire byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The server's payload in REATTACH_RESP.
///
/// Layout: `status u8 | epoch u64 | tokens [4][72] | next_resumption_secret [32] |
/// path_challenge [16] | server_unix_nanos u64 | recovery_deadline_unix_ms u64 | extensions`.
/// On a status other than `Ok` the server may send zeros for tokens, secret and challenge. The
/// one extension jvpn writes is the stateless-reset token of the server's new receive index.
#[derive(Clone, PartialEq, Eq)]
pub struct ReattachRespPayload {
    /// The verdict.
    pub status: ReattachStatus,
    /// The binding epoch the claim produced (`E'`), or the current one on an error.
    pub epoch: u64,
    /// Fresh single-use tokens for later reattaches.
    pub tokens: [[u8; TOKEN_LEN]; REATTACH_TOKENS],
    /// The next resumption secret `RS'`, pending until PATH_CONFIRM commits it.
    pub next_resumption_secret: ResumptionSecret,
    /// The challenge PATH_CONFIRM must echo (return routability of the new path).
    pub path_challenge: [u8; PATH_CHALLENGE_LEN],
    /// Server wall clock, ns since the Unix epoch (lets the client resynchronise).
    pub server_unix_nanos: u64,
    /// Absolute end of the recovery window, ms since the Unix epoch.
    pub recovery_deadline_unix_ms: u64,
    /// The stateless-reset token of the server's receive index for the new keys (the
    /// [`RESET_TOKEN_EXTENSION`]), if the server sent one.
    pub reset_token: Option<ResetToken>,
}

impl fmt::Debug for ReattachRespPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens are not secret but are linkable, and RS' is a secret: print neither.
        f.debug_struct("ReattachRespPayload")
            .field("status", &self.status)
            .field("epoch", &self.epoch)
            .field("tokens", &"<redacted>")
            .field("next_resumption_secret", &self.next_resumption_secret)
            .field("server_unix_nanos", &self.server_unix_nanos)
            .field("recovery_deadline_unix_ms", &self.recovery_deadline_unix_ms)
            .field("reset_token", &self.reset_token)
            .finish_non_exhaustive()
    }
}

impl ReattachRespPayload {
    /// Encoded length: the fixed part, plus the reset-token extension if there is a token.
    pub const fn encoded_len(&self) -> usize {
        if self.reset_token.is_some() {
            REATTACH_RESP_PAYLOAD_MAX_LEN
        } else {
            REATTACH_RESP_PAYLOAD_LEN
        }
    }

    /// Parses a payload; unknown non-critical extensions and zero padding are skipped; an
    /// unknown status byte or a reset-token extension of the wrong length is rejected.
    pub fn parse(buf: &[u8]) -> Result<Self, FrameError> {
        check_total_with(buf, REATTACH_RESP_PAYLOAD_LEN, true)?;
        let status =
            ReattachStatus::from_u8(buf[0]).ok_or(FrameError::InvalidField("reattach status"))?;
        let mut tokens = [[0u8; TOKEN_LEN]; REATTACH_TOKENS];
        for (i, token) in tokens.iter_mut().enumerate() {
            let at = 9 + i * TOKEN_LEN;
            token.copy_from_slice(&buf[at..at + TOKEN_LEN]);
        }
        let at = 9 + REATTACH_TOKENS * TOKEN_LEN;
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&buf[at..at + 32]);
        let next_resumption_secret = ResumptionSecret::from_bytes(secret);
        zeroize::Zeroize::zeroize(&mut secret);
        let mut path_challenge = [0u8; PATH_CHALLENGE_LEN];
        path_challenge.copy_from_slice(&buf[at + 32..at + 48]);
        let reset_token = find_extension(
            &buf[REATTACH_RESP_PAYLOAD_LEN..],
            RESET_TOKEN_EXTENSION,
            true,
        )
        .map(ResetToken::from_extension_value)
        .transpose()?;
        Ok(Self {
            status,
            epoch: read_u64(buf, 1),
            tokens,
            next_resumption_secret,
            path_challenge,
            server_unix_nanos: read_u64(buf, at + 48),
            recovery_deadline_unix_ms: read_u64(buf, at + 56),
            reset_token,
        })
    }

    /// Writes the payload (and the reset-token extension, if any) into `out` and returns its
    /// length ([`Self::encoded_len`]). `out` then holds `RS'`: wipe it.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.encoded_len();
        let out = out
            .get_mut(..len)
            .ok_or(FrameError::BufferTooSmall { needed: len })?;
        out[0] = self.status.as_u8();
        out[1..9].copy_from_slice(&self.epoch.to_be_bytes());
        for (i, token) in self.tokens.iter().enumerate() {
            let at = 9 + i * TOKEN_LEN;
            out[at..at + TOKEN_LEN].copy_from_slice(token);
        }
        let at = 9 + REATTACH_TOKENS * TOKEN_LEN;
        out[at..at + 32].copy_from_slice(self.next_resumption_secret.as_bytes());
        out[at + 32..at + 48].copy_from_slice(&self.path_challenge);
        out[at + 48..at + 56].copy_from_slice(&self.server_unix_nanos.to_be_bytes());
        out[at + 56..at + 64].copy_from_slice(&self.recovery_deadline_unix_ms.to_be_bytes());
        if let Some(token) = &self.reset_token {
            token.emit_extension(&mut out[REATTACH_RESP_PAYLOAD_LEN..])?;
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp() -> ReattachRespPayload {
        ReattachRespPayload {
            status: ReattachStatus::Clock,
            epoch: 3,
            tokens: [
                [1; TOKEN_LEN],
                [2; TOKEN_LEN],
                [3; TOKEN_LEN],
                [4; TOKEN_LEN],
            ],
            next_resumption_secret: ResumptionSecret::from_bytes([5; 32]),
            path_challenge: [6; PATH_CHALLENGE_LEN],
            server_unix_nanos: 7,
            recovery_deadline_unix_ms: 8,
            reset_token: None,
        }
    }

    #[test]
    fn fixed_lengths_match_the_documented_layout() {
        assert_eq!(REATTACH_INIT_PAYLOAD_LEN, 53);
        assert_eq!(REATTACH_RESP_PAYLOAD_LEN, 361);
    }

    #[test]
    fn resp_payload_round_trips_and_places_the_tail_fields() {
        let mut buf = [0u8; REATTACH_RESP_PAYLOAD_LEN];

        resp().emit(&mut buf).unwrap();

        assert_eq!(ReattachRespPayload::parse(&buf).unwrap(), resp());
        assert_eq!(buf[0], 2);
        assert_eq!(&buf[353..], &8u64.to_be_bytes());
    }

    #[test]
    fn a_reset_token_round_trips_before_zero_padding() {
        let payload = ReattachRespPayload {
            reset_token: Some(ResetToken::from_bytes([0xab; 16])),
            ..resp()
        };
        let mut buf = [0u8; REATTACH_RESP_PAYLOAD_MAX_LEN + 10];

        let len = payload.emit(&mut buf).unwrap();

        assert_eq!(len, REATTACH_RESP_PAYLOAD_MAX_LEN);
        assert_eq!(ReattachRespPayload::parse(&buf).unwrap(), payload);
        assert_eq!(
            ReattachRespPayload::parse(&buf[..REATTACH_RESP_PAYLOAD_LEN]).unwrap(),
            resp()
        );
    }

    #[test]
    fn a_reset_token_extension_of_the_wrong_length_is_rejected() {
        let mut buf = vec![0u8; REATTACH_RESP_PAYLOAD_LEN];
        resp().emit(&mut buf).unwrap();
        buf.extend_from_slice(&[RESET_TOKEN_EXTENSION, 0, 15]);
        buf.extend_from_slice(&[1; 15]);

        assert_eq!(
            ReattachRespPayload::parse(&buf),
            Err(FrameError::InvalidField("reset token length"))
        );
    }

    #[test]
    fn zero_padding_after_a_payload_is_accepted_and_dirty_padding_is_not() {
        let init = ReattachInitPayload {
            session_id: SessionId([9; 16]),
            rc: 1,
            client_unix_nanos: 2,
            last_epoch_seen: 3,
            last_rx_counter: 4,
            transport_kind: 5,
            path_id: 6,
        };
        let mut padded = [0u8; 200];
        init.emit(&mut padded).unwrap();
        let mut dirty = padded;
        dirty[150] = 1;

        assert_eq!(ReattachInitPayload::parse(&padded).unwrap(), init);
        assert_eq!(
            ReattachInitPayload::parse(&dirty),
            Err(FrameError::InvalidField("non-zero padding"))
        );
    }

    #[test]
    fn an_unknown_status_byte_is_rejected() {
        let mut buf = [0u8; REATTACH_RESP_PAYLOAD_LEN];
        resp().emit(&mut buf).unwrap();
        buf[0] = 7;

        assert_eq!(
            ReattachRespPayload::parse(&buf),
            Err(FrameError::InvalidField("reattach status"))
        );
    }

    #[test]
    fn the_resumption_secret_and_tokens_never_print() {
        let text = format!("{:?}", resp());

        assert!(text.contains("<redacted>"));
        assert!(!text.contains("[1, 1"));
        assert!(!text.contains("5, 5"));
    }
}

//! The resumption grant: how the first `RS` and reattach tokens reach the client.
//!
//! A HANDSHAKE_RESP payload ([`super::RespPayload`]) carries one extension of type
//! [`GRANT_EXTENSION`]: `psk_epoch u64 | RS [32] | tokens [4][72]`. It rides inside Noise
//! message 2, so it is encrypted and authenticated, and it is delivered exactly as reliably as
//! the handshake itself (a lost response makes the client retry the handshake, which issues a
//! new grant). Because this makes HANDSHAKE_RESP larger, the client pads every HANDSHAKE_INIT
//! payload with a [`INIT_PADDING_EXTENSION`] to [`PADDED_INIT_PAYLOAD_LEN`] bytes, so a response
//! is never larger than the request it answers (anti-amplification).

use core::fmt;

use super::{REATTACH_TOKENS, RESP_PAYLOAD_LEN, check_total, read_u64};
use crate::error::FrameError;
use crate::frame::{HANDSHAKE_INIT_MIN_LEN, HANDSHAKE_RESP_MIN_LEN};
use crate::keys::ResumptionSecret;
use crate::reset::RESET_TOKEN_EXTENSION_LEN;
use crate::token::TOKEN_LEN;

/// Extension type of the resumption grant in a HANDSHAKE_RESP payload (non-critical).
pub const GRANT_EXTENSION: u8 = 0x01;
/// Extension type of HANDSHAKE_INIT padding (non-critical; value all zeros, ignored).
pub const INIT_PADDING_EXTENSION: u8 = 0x02;
/// Length of the grant's value.
pub const GRANT_VALUE_LEN: usize = 8 + 32 + REATTACH_TOKENS * TOKEN_LEN;
/// Length of the whole grant extension (type, length, value): 331 bytes.
pub const GRANT_EXTENSION_LEN: usize = 3 + GRANT_VALUE_LEN;
/// The HANDSHAKE_INIT payload length (fixed part plus padding) that makes the request exactly as
/// long as the largest HANDSHAKE_RESP the server sends (fixed part, a grant and a stateless-reset
/// token): 338 bytes.
pub const PADDED_INIT_PAYLOAD_LEN: usize =
    HANDSHAKE_RESP_MIN_LEN + RESP_PAYLOAD_LEN + GRANT_EXTENSION_LEN + RESET_TOKEN_EXTENSION_LEN
        - HANDSHAKE_INIT_MIN_LEN;

const _: () = assert!(PADDED_INIT_PAYLOAD_LEN >= super::INIT_PAYLOAD_LEN + 3);

/// What a server grants a client for later reattaches.
#[derive(Clone, PartialEq, Eq)]
pub struct ResumptionGrant {
    /// The epoch of `resumption_secret` (mixed into the reattach PSK).
    pub psk_epoch: u64,
    /// `RS`: the key material of the reattach PSK.
    pub resumption_secret: ResumptionSecret,
    /// Single-use reattach tokens, lowest `token_seq` first.
    pub tokens: [[u8; TOKEN_LEN]; REATTACH_TOKENS],
}

impl fmt::Debug for ResumptionGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumptionGrant")
            .field("psk_epoch", &self.psk_epoch)
            .field("resumption_secret", &self.resumption_secret)
            .field("tokens", &"<redacted>")
            .finish()
    }
}

impl ResumptionGrant {
    /// Writes the grant as one extension (type, length, value) at the start of `out` and
    /// returns [`GRANT_EXTENSION_LEN`]. `out` then holds `RS`: wipe it.
    pub fn emit_extension(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let out = out
            .get_mut(..GRANT_EXTENSION_LEN)
            .ok_or(FrameError::BufferTooSmall {
                needed: GRANT_EXTENSION_LEN,
            })?;
        out[0] = GRANT_EXTENSION;
        // GRANT_VALUE_LEN (328) fits a u16.
        out[1..3].copy_from_slice(&(GRANT_VALUE_LEN as u16).to_be_bytes());
        out[3..11].copy_from_slice(&self.psk_epoch.to_be_bytes());
        out[11..43].copy_from_slice(self.resumption_secret.as_bytes());
        for (i, token) in self.tokens.iter().enumerate() {
            let at = 43 + i * TOKEN_LEN;
            out[at..at + TOKEN_LEN].copy_from_slice(token);
        }
        Ok(GRANT_EXTENSION_LEN)
    }

    /// Finds the grant in a whole HANDSHAKE_RESP payload (fixed part and extensions), if there
    /// is one. A grant extension of the wrong length is rejected.
    pub fn find(resp_payload: &[u8]) -> Result<Option<Self>, FrameError> {
        check_total(resp_payload, RESP_PAYLOAD_LEN)?;
        let mut area = &resp_payload[RESP_PAYLOAD_LEN..];
        // `check_total` walked the area already: every entry below is complete.
        while let [ty, hi, lo, rest @ ..] = area {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            let value = rest.get(..len).ok_or(FrameError::Truncated)?;
            if *ty == GRANT_EXTENSION {
                if len != GRANT_VALUE_LEN {
                    return Err(FrameError::InvalidField("grant length"));
                }
                let mut secret = [0u8; 32];
                secret.copy_from_slice(&value[8..40]);
                let resumption_secret = ResumptionSecret::from_bytes(secret);
                zeroize::Zeroize::zeroize(&mut secret);
                let mut tokens = [[0u8; TOKEN_LEN]; REATTACH_TOKENS];
                for (i, token) in tokens.iter_mut().enumerate() {
                    let at = 40 + i * TOKEN_LEN;
                    token.copy_from_slice(&value[at..at + TOKEN_LEN]);
                }
                return Ok(Some(Self {
                    psk_epoch: read_u64(value, 0),
                    resumption_secret,
                    tokens,
                }));
            }
            area = &rest[len..];
        }
        Ok(None)
    }
}

/// Writes an [`INIT_PADDING_EXTENSION`] of exactly `len` bytes (at least 3) at the start of
/// `out`, so that a HANDSHAKE_INIT payload reaches [`PADDED_INIT_PAYLOAD_LEN`].
pub fn emit_init_padding(out: &mut [u8], len: usize) -> Result<usize, FrameError> {
    let value_len = len
        .checked_sub(3)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or(FrameError::InvalidField("padding length"))?;
    let out = out
        .get_mut(..len)
        .ok_or(FrameError::BufferTooSmall { needed: len })?;
    out.fill(0);
    out[0] = INIT_PADDING_EXTENSION;
    out[1..3].copy_from_slice(&value_len.to_be_bytes());
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SessionId;
    use crate::payload::{INIT_PAYLOAD_LEN, InitPayload, RespPayload};

    fn grant() -> ResumptionGrant {
        ResumptionGrant {
            psk_epoch: 3,
            resumption_secret: ResumptionSecret::from_bytes([7; 32]),
            tokens: [
                [1; TOKEN_LEN],
                [2; TOKEN_LEN],
                [3; TOKEN_LEN],
                [4; TOKEN_LEN],
            ],
        }
    }

    #[test]
    fn a_grant_round_trips_through_a_response_payload() {
        let resp = RespPayload {
            session_id: SessionId([9; 16]),
            epoch: 1,
            server_unix_nanos: 2,
        };
        let mut buf = vec![0u8; RESP_PAYLOAD_LEN + GRANT_EXTENSION_LEN];
        resp.emit(&mut buf).unwrap();

        grant()
            .emit_extension(&mut buf[RESP_PAYLOAD_LEN..])
            .unwrap();

        assert_eq!(RespPayload::parse(&buf).unwrap(), resp);
        assert_eq!(ResumptionGrant::find(&buf).unwrap(), Some(grant()));
        assert_eq!(
            ResumptionGrant::find(&buf[..RESP_PAYLOAD_LEN]).unwrap(),
            None
        );
    }

    #[test]
    fn a_padded_init_payload_parses_and_makes_the_request_as_long_as_the_largest_response() {
        let mut buf = [0u8; PADDED_INIT_PAYLOAD_LEN];
        let init = InitPayload {
            unix_nanos: 5,
            resume: None,
        };
        init.emit(&mut buf).unwrap();

        emit_init_padding(
            &mut buf[INIT_PAYLOAD_LEN..],
            PADDED_INIT_PAYLOAD_LEN - INIT_PAYLOAD_LEN,
        )
        .unwrap();

        assert_eq!(InitPayload::parse(&buf).unwrap(), init);
        assert_eq!(
            crate::frame::handshake_init_len(PADDED_INIT_PAYLOAD_LEN),
            crate::frame::handshake_resp_len(
                RESP_PAYLOAD_LEN + GRANT_EXTENSION_LEN + RESET_TOKEN_EXTENSION_LEN
            )
        );
        assert_eq!(
            crate::frame::handshake_init_len(PADDED_INIT_PAYLOAD_LEN),
            474
        );
    }

    #[test]
    fn the_grant_never_prints_its_secret_or_tokens() {
        let text = format!("{:?}", grant());

        assert!(!text.contains("7, 7"));
        assert!(text.contains("<redacted>"));
    }
}

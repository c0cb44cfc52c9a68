//! Plaintext payloads carried encrypted inside the two Noise handshake messages.
//!
//! Each payload is a fixed part followed by an extension area: zero or more
//! `type u8 | len u16 | value[len]` entries. A receiver skips extensions it does not know unless
//! the type has its high bit set (>= 0x80, "critical"), in which case the payload is rejected:
//! later issues add fields without a version bump, and can still make one mandatory. No extension
//! is defined in the fixed parts' `emit`; the resumption grant ([`ResumptionGrant`]), the
//! stateless-reset token ([`crate::reset::RESET_TOKEN_EXTENSION`]) and HANDSHAKE_INIT padding are
//! extensions written by their own helpers (REATTACH_RESP's reset token by its payload's `emit`). A payload is at most
//! [`crate::frame::MAX_HANDSHAKE_PAYLOAD`] bytes.

mod grant;
mod reattach;

pub use grant::{
    GRANT_EXTENSION, GRANT_EXTENSION_LEN, GRANT_VALUE_LEN, INIT_PADDING_EXTENSION,
    PADDED_INIT_PAYLOAD_LEN, ResumptionGrant, emit_init_padding,
};

pub use reattach::{
    PATH_CHALLENGE_LEN, REATTACH_INIT_PAYLOAD_LEN, REATTACH_RESP_PAYLOAD_LEN,
    REATTACH_RESP_PAYLOAD_MAX_LEN, REATTACH_TOKENS, ReattachInitPayload, ReattachRespPayload,
    ReattachStatus,
};

use crate::error::FrameError;
use crate::frame::MAX_HANDSHAKE_PAYLOAD;
use crate::keys::SessionId;

/// Extension types at or above this value must be understood by the receiver.
pub const CRITICAL_EXTENSION: u8 = 0x80;
/// In reattach payloads only: a type byte of 0 starts padding, which runs to the end of the
/// payload and must be all zeros (REATTACH_INIT pads its encrypted payload to a fixed size).
pub const PADDING_EXTENSION: u8 = 0x00;

/// Length of [`InitPayload`]'s fixed part.
pub const INIT_PAYLOAD_LEN: usize = 8 + 1 + 16;
/// Length of [`RespPayload`]'s fixed part.
pub const RESP_PAYLOAD_LEN: usize = 16 + 8 + 8;

fn check_total(buf: &[u8], fixed: usize) -> Result<(), FrameError> {
    check_total_with(buf, fixed, false)
}

/// Length bounds, then the extension area; `padded` enables [`PADDING_EXTENSION`].
pub(crate) fn check_total_with(buf: &[u8], fixed: usize, padded: bool) -> Result<(), FrameError> {
    if buf.len() > MAX_HANDSHAKE_PAYLOAD {
        return Err(FrameError::TooLong);
    }
    if buf.len() < fixed {
        return Err(FrameError::Truncated);
    }
    skip_extensions(&buf[fixed..], padded)
}

/// Walks the extension area, rejecting truncated entries and unknown critical ones.
fn skip_extensions(mut area: &[u8], padded: bool) -> Result<(), FrameError> {
    while let Some((&ty, rest)) = area.split_first() {
        if padded && ty == PADDING_EXTENSION {
            // All-zero padding leaves no room to smuggle bytes past the parser.
            return if rest.iter().all(|&b| b == 0) {
                Ok(())
            } else {
                Err(FrameError::InvalidField("non-zero padding"))
            };
        }
        let [hi, lo, ref value @ ..] = *rest else {
            return Err(FrameError::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if value.len() < len {
            return Err(FrameError::Truncated);
        }
        // No extension is defined yet: every critical one is unknown.
        if ty >= CRITICAL_EXTENSION {
            return Err(FrameError::UnknownCriticalExtension(ty));
        }
        area = &value[len..];
    }
    Ok(())
}

/// The value of the first extension of type `ty` in an extension area that
/// [`check_total_with`] accepted (so every entry is complete). Padding ends the search.
pub(crate) fn find_extension(mut area: &[u8], ty: u8, padded: bool) -> Option<&[u8]> {
    while let [t, hi, lo, rest @ ..] = area {
        if padded && *t == PADDING_EXTENSION {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let value = rest.get(..len)?;
        if *t == ty {
            return Some(value);
        }
        area = &rest[len..];
    }
    None
}

pub(crate) fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_be_bytes(bytes)
}

pub(crate) fn read_id(buf: &[u8], at: usize) -> SessionId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&buf[at..at + 16]);
    SessionId(id)
}

/// The client's payload in HANDSHAKE_INIT.
///
/// Layout: `unix_nanos u64 | has_resume u8 (0 or 1) | session_id [16] (zeros when has_resume = 0)
/// | extensions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitPayload {
    /// Client wall clock in nanoseconds since the Unix epoch, strictly increasing per client key:
    /// the session layer rejects an initiation whose timestamp is not newer than the last one
    /// accepted for that key (replay guard, as WireGuard's TAI64N).
    pub unix_nanos: u64,
    /// `Some` when re-handshaking an existing session (rekey or recovery).
    pub resume: Option<SessionId>,
}

impl InitPayload {
    /// Encoded length (no extensions).
    pub const fn encoded_len(&self) -> usize {
        INIT_PAYLOAD_LEN
    }

    /// Parses a payload; unknown non-critical extensions are skipped.
    pub fn parse(buf: &[u8]) -> Result<Self, FrameError> {
        check_total(buf, INIT_PAYLOAD_LEN)?;
        let id = read_id(buf, 9);
        let resume = match buf[8] {
            0 if id == SessionId::default() => None,
            0 => return Err(FrameError::InvalidField("session id without resume flag")),
            1 => Some(id),
            _ => return Err(FrameError::InvalidField("resume flag")),
        };
        Ok(Self {
            unix_nanos: read_u64(buf, 0),
            resume,
        })
    }

    /// Writes the payload into `out` and returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let out = out
            .get_mut(..INIT_PAYLOAD_LEN)
            .ok_or(FrameError::BufferTooSmall {
                needed: INIT_PAYLOAD_LEN,
            })?;
        out[..8].copy_from_slice(&self.unix_nanos.to_be_bytes());
        out[8] = u8::from(self.resume.is_some());
        out[9..].copy_from_slice(&self.resume.unwrap_or_default().0);
        Ok(INIT_PAYLOAD_LEN)
    }
}

/// The server's payload in HANDSHAKE_RESP.
///
/// Layout: `session_id [16] | epoch u64 | server_unix_nanos u64 | extensions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespPayload {
    /// The session this handshake created or resumed.
    pub session_id: SessionId,
    /// The binding epoch the server assigned.
    pub epoch: u64,
    /// Server wall clock in nanoseconds since the Unix epoch (lets the client learn its offset).
    pub server_unix_nanos: u64,
}

impl RespPayload {
    /// Encoded length (no extensions).
    pub const fn encoded_len(&self) -> usize {
        RESP_PAYLOAD_LEN
    }

    /// Parses a payload; unknown non-critical extensions are skipped.
    pub fn parse(buf: &[u8]) -> Result<Self, FrameError> {
        check_total(buf, RESP_PAYLOAD_LEN)?;
        Ok(Self {
            session_id: read_id(buf, 0),
            epoch: read_u64(buf, 16),
            server_unix_nanos: read_u64(buf, 24),
        })
    }

    /// Writes the payload into `out` and returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let out = out
            .get_mut(..RESP_PAYLOAD_LEN)
            .ok_or(FrameError::BufferTooSmall {
                needed: RESP_PAYLOAD_LEN,
            })?;
        out[..16].copy_from_slice(&self.session_id.0);
        out[16..24].copy_from_slice(&self.epoch.to_be_bytes());
        out[24..].copy_from_slice(&self.server_unix_nanos.to_be_bytes());
        Ok(RESP_PAYLOAD_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_payload_round_trips_with_and_without_resume() {
        for resume in [None, Some(SessionId([3; 16]))] {
            let payload = InitPayload {
                unix_nanos: 1_700_000_000_000_000_000,
                resume,
            };
            let mut buf = [0u8; INIT_PAYLOAD_LEN];

            let len = payload.emit(&mut buf).unwrap();

            assert_eq!(len, payload.encoded_len());
            assert_eq!(InitPayload::parse(&buf).unwrap(), payload);
        }
    }

    #[test]
    fn resp_payload_round_trips() {
        let payload = RespPayload {
            session_id: SessionId([9; 16]),
            epoch: 4,
            server_unix_nanos: 5,
        };
        let mut buf = [0u8; RESP_PAYLOAD_LEN];

        payload.emit(&mut buf).unwrap();

        assert_eq!(RespPayload::parse(&buf).unwrap(), payload);
        assert_eq!(&buf[16..24], &[0, 0, 0, 0, 0, 0, 0, 4]);
    }

    #[test]
    fn unknown_non_critical_extensions_are_skipped() {
        let payload = RespPayload {
            session_id: SessionId([1; 16]),
            epoch: 2,
            server_unix_nanos: 3,
        };
        let mut buf = vec![0u8; RESP_PAYLOAD_LEN];
        payload.emit(&mut buf).unwrap();
        buf.extend_from_slice(&[0x10, 0, 3, 1, 2, 3, 0x7f, 0, 0]);

        assert_eq!(RespPayload::parse(&buf).unwrap(), payload);
    }

    #[test]
    fn unknown_critical_extensions_are_rejected() {
        let mut buf = vec![0u8; INIT_PAYLOAD_LEN];
        buf.extend_from_slice(&[0x80, 0, 1, 0]);

        assert_eq!(
            InitPayload::parse(&buf),
            Err(FrameError::UnknownCriticalExtension(0x80))
        );
    }

    #[test]
    fn truncated_extensions_are_rejected() {
        let mut header_cut = vec![0u8; INIT_PAYLOAD_LEN];
        header_cut.extend_from_slice(&[0x01, 0]);
        let mut value_cut = vec![0u8; INIT_PAYLOAD_LEN];
        value_cut.extend_from_slice(&[0x01, 0, 4, 1, 2]);

        assert_eq!(InitPayload::parse(&header_cut), Err(FrameError::Truncated));
        assert_eq!(InitPayload::parse(&value_cut), Err(FrameError::Truncated));
    }

    #[test]
    fn a_resume_flag_other_than_0_or_1_or_a_stray_session_id_is_rejected() {
        let mut bad_flag = [0u8; INIT_PAYLOAD_LEN];
        bad_flag[8] = 2;
        let mut stray_id = [0u8; INIT_PAYLOAD_LEN];
        stray_id[20] = 1;

        assert!(matches!(
            InitPayload::parse(&bad_flag),
            Err(FrameError::InvalidField(_))
        ));
        assert!(matches!(
            InitPayload::parse(&stray_id),
            Err(FrameError::InvalidField(_))
        ));
    }

    #[test]
    fn payloads_longer_than_the_handshake_limit_are_rejected() {
        let buf = vec![0u8; MAX_HANDSHAKE_PAYLOAD + 1];

        assert_eq!(RespPayload::parse(&buf), Err(FrameError::TooLong));
    }
}

//! Frame codec: every jvpn datagram, parsed once with checked lengths.
//!
//! Style follows smoltcp: `XPacket::new_checked(buffer)` validates the common header and every
//! length once, after which the accessors cannot panic; small fixed frames also have a `Repr`
//! with `parse` / `emit` that round-trip byte-identically. All integers are big-endian.
//!
//! Every frame starts with the same 4-byte header: `type u8 | version u8 | flags u8 | reserved u8`.

mod data;
mod handshake;
mod reattach;

pub use data::{DataHeader, DataPacket};
pub use handshake::{
    COOKIE_REPLY_LEN, CookieReplyPacket, CookieReplyRepr, HANDSHAKE_INIT_MAX_LEN,
    HANDSHAKE_INIT_MIN_LEN, HANDSHAKE_RESP_MAX_LEN, HANDSHAKE_RESP_MIN_LEN, HandshakeInitPacket,
    HandshakeInitRepr, HandshakeRespPacket, HandshakeRespRepr, NOISE_INIT_OVERHEAD,
    NOISE_RESP_OVERHEAD, handshake_init_len, handshake_resp_len,
};
pub use reattach::{
    REATTACH_INIT_LEN, REATTACH_INIT_PLAINTEXT_LEN, REATTACH_INIT_PROLOGUE_LEN,
    REATTACH_RESP_MAX_LEN, REATTACH_RESP_MIN_LEN, ReattachInitPacket, ReattachRespPacket,
    reattach_resp_len,
};

use crate::error::FrameError;

/// The protocol version every frame carries in its second byte.
pub const PROTOCOL_VERSION: u8 = 1;
/// Length of the common header.
pub const HEADER_LEN: usize = 4;
/// Largest handshake payload (plaintext inside a Noise message) in bytes.
pub const MAX_HANDSHAKE_PAYLOAD: usize = 1024;
/// Largest frame of any type in bytes.
pub const MAX_FRAME_LEN: usize = 65_535;
/// Length of the DATA / CONTROL header (all of it is AEAD associated data).
pub const DATA_HEADER_LEN: usize = 16;
/// Length of the AES-GCM tag that ends every DATA / CONTROL frame.
pub const DATA_TAG_LEN: usize = 16;
/// Bytes a DATA / CONTROL frame adds to its plaintext: header plus tag.
pub const DATA_OVERHEAD: usize = DATA_HEADER_LEN + DATA_TAG_LEN;
/// Largest plaintext of one DATA / CONTROL frame.
pub const MAX_DATA_PLAINTEXT: usize = MAX_FRAME_LEN - DATA_OVERHEAD;

/// The first byte of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum MessageType {
    /// Noise IKpsk2 message 1 (client to server).
    HandshakeInit = 1,
    /// Noise IKpsk2 message 2 (server to client).
    HandshakeResp = 2,
    /// Reserved slot: cookie reply under load (no logic yet).
    CookieReply = 3,
    /// Encrypted inner packet.
    Data = 4,
    /// Encrypted control message ([`crate::control::ControlMessage`]).
    Control = 5,
    /// Noise IKpsk1 message 1 with a reattach token (client to server).
    ReattachInit = 6,
    /// Noise IKpsk1 message 2 (server to client).
    ReattachResp = 7,
}

impl MessageType {
    /// The type for a wire byte, if any.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::HandshakeInit),
            2 => Some(Self::HandshakeResp),
            3 => Some(Self::CookieReply),
            4 => Some(Self::Data),
            5 => Some(Self::Control),
            6 => Some(Self::ReattachInit),
            7 => Some(Self::ReattachResp),
            _ => None,
        }
    }

    /// The wire byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for MessageType {
    type Error = FrameError;

    fn try_from(byte: u8) -> Result<Self, FrameError> {
        Self::from_u8(byte).ok_or(FrameError::UnknownType(byte))
    }
}

/// Validates the common header and returns the message type, so a receiver can dispatch.
///
/// Checks, in order: at least 4 bytes, version, known type, flags zero, reserved zero.
pub fn peek_type(buf: &[u8]) -> Result<MessageType, FrameError> {
    let [ty, version, flags, reserved, ..] = *buf else {
        return Err(FrameError::Truncated);
    };
    if version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let ty = MessageType::try_from(ty)?;
    if flags != 0 {
        return Err(FrameError::InvalidFlags(flags));
    }
    if reserved != 0 {
        return Err(FrameError::InvalidReserved(reserved));
    }
    Ok(ty)
}

/// Checks the header is valid and of type `expected`.
pub(crate) fn expect_type(buf: &[u8], expected: MessageType) -> Result<(), FrameError> {
    let ty = peek_type(buf)?;
    if ty == expected {
        Ok(())
    } else {
        Err(FrameError::UnexpectedType(ty))
    }
}

/// Writes the common header. `out` must hold at least [`HEADER_LEN`] bytes (callers check).
pub(crate) fn write_header(out: &mut [u8], ty: MessageType) {
    out[..HEADER_LEN].copy_from_slice(&[ty.as_u8(), PROTOCOL_VERSION, 0, 0]);
}

/// Big-endian read of 4 bytes at `at`; callers guarantee the bounds.
pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Big-endian read of 8 bytes at `at`; callers guarantee the bounds.
fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_be_bytes(bytes)
}

/// Copies 16 bytes at `at`; callers guarantee the bounds.
pub(crate) fn read_16(buf: &[u8], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&buf[at..at + 16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_type_accepts_every_known_type_with_a_clean_header() {
        for byte in 1..=7u8 {
            let ty = peek_type(&[byte, PROTOCOL_VERSION, 0, 0]).unwrap();

            assert_eq!(ty.as_u8(), byte);
        }
    }

    #[test]
    fn peek_type_rejects_bad_headers_with_the_reason() {
        assert_eq!(peek_type(&[4, 1, 0]), Err(FrameError::Truncated));
        assert_eq!(
            peek_type(&[4, 2, 0, 0]),
            Err(FrameError::UnsupportedVersion(2))
        );
        assert_eq!(peek_type(&[0, 1, 0, 0]), Err(FrameError::UnknownType(0)));
        assert_eq!(peek_type(&[8, 1, 0, 0]), Err(FrameError::UnknownType(8)));
        assert_eq!(peek_type(&[4, 1, 1, 0]), Err(FrameError::InvalidFlags(1)));
        assert_eq!(
            peek_type(&[4, 1, 0, 9]),
            Err(FrameError::InvalidReserved(9))
        );
    }

    #[test]
    fn data_overhead_is_exactly_32_bytes() {
        assert_eq!(DATA_OVERHEAD, 32);
        assert_eq!(DATA_HEADER_LEN, 16);
    }
}

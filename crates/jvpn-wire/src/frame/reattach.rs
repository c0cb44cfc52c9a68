//! REATTACH_INIT (type 6) and REATTACH_RESP (type 7) frames.
//!
//! REATTACH_INIT has one fixed length, [`REATTACH_INIT_LEN`]: its encrypted payload is padded, so
//! every attempt looks the same size on the wire and the largest REATTACH_RESP (and any
//! COOKIE_REPLY) is never larger than the request it answers (anti-amplification).

use super::handshake::{NOISE_INIT_OVERHEAD, NOISE_RESP_OVERHEAD};
use super::{HEADER_LEN, MessageType, expect_type, read_16, read_u32};
use crate::error::FrameError;
use crate::kdf::MAC_LEN;
use crate::payload::{REATTACH_INIT_PAYLOAD_LEN, REATTACH_RESP_PAYLOAD_LEN};
use crate::token::TOKEN_LEN;

const TOKEN_AT: usize = HEADER_LEN + 4;
const INIT_NOISE_AT: usize = TOKEN_AT + TOKEN_LEN;
const RESP_NOISE_AT: usize = HEADER_LEN + 8;
const DH_LEN: usize = 32;

/// The one REATTACH_INIT length: 576 bytes.
pub const REATTACH_INIT_LEN: usize = 576;
/// Bytes before the Noise message (header, sender index, token): they go into the prologue.
pub const REATTACH_INIT_PROLOGUE_LEN: usize = INIT_NOISE_AT;
/// The plaintext inside REATTACH_INIT's Noise message: payload, extensions and zero padding
/// (368 bytes).
pub const REATTACH_INIT_PLAINTEXT_LEN: usize =
    REATTACH_INIT_LEN - INIT_NOISE_AT - NOISE_INIT_OVERHEAD - 2 * MAC_LEN;
/// Smallest REATTACH_RESP: a payload with no extension (453 bytes).
pub const REATTACH_RESP_MIN_LEN: usize = reattach_resp_len(REATTACH_RESP_PAYLOAD_LEN);
/// Largest REATTACH_RESP: never more than the request it answers.
pub const REATTACH_RESP_MAX_LEN: usize = REATTACH_INIT_LEN;

/// REATTACH_RESP length for a payload of `payload_len` bytes.
pub const fn reattach_resp_len(payload_len: usize) -> usize {
    RESP_NOISE_AT + NOISE_RESP_OVERHEAD + payload_len + 2 * MAC_LEN
}

// The padded plaintext must hold the fixed payload, and the request must cover every reply.
const _: () = assert!(REATTACH_INIT_PLAINTEXT_LEN >= REATTACH_INIT_PAYLOAD_LEN);
const _: () = assert!(REATTACH_RESP_MIN_LEN <= REATTACH_INIT_LEN);
const _: () = assert!(super::COOKIE_REPLY_LEN <= REATTACH_INIT_LEN);

/// Checked view of a REATTACH_INIT frame:
/// `hdr(4) | sender_idx u32 | token (72) | noise msg1 (464) | mac1 (16) | mac2 (16)`.
#[derive(Debug, Clone, Copy)]
pub struct ReattachInitPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ReattachInitPacket<T> {
    /// Validates header and the exact length; afterwards no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let buf = buffer.as_ref();
        expect_type(buf, MessageType::ReattachInit)?;
        match buf.len() {
            REATTACH_INIT_LEN => Ok(Self { buffer }),
            len if len < REATTACH_INIT_LEN => Err(FrameError::Truncated),
            _ => Err(FrameError::TooLong),
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The initiator's index: the receiver index of frames sent back to it.
    pub fn sender_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The opaque reattach token.
    pub fn token(&self) -> &[u8] {
        &self.buffer.as_ref()[TOKEN_AT..INIT_NOISE_AT]
    }

    /// The initiator's ephemeral public key (Noise `e`, cleartext): the key of the exact-replay
    /// filter, readable before any Diffie-Hellman.
    pub fn ephemeral(&self) -> [u8; DH_LEN] {
        let mut e = [0u8; DH_LEN];
        e.copy_from_slice(&self.buffer.as_ref()[INIT_NOISE_AT..INIT_NOISE_AT + DH_LEN]);
        e
    }

    /// Header, sender index and token: the cleartext bound into the Noise prologue.
    pub fn prologue_suffix(&self) -> &[u8] {
        &self.buffer.as_ref()[..INIT_NOISE_AT]
    }

    /// Noise message 1.
    pub fn noise_message(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[INIT_NOISE_AT..buf.len() - 2 * MAC_LEN]
    }

    /// The bytes MAC1 covers: everything before MAC1.
    pub fn mac1_covered(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[..buf.len() - 2 * MAC_LEN]
    }

    /// MAC1.
    pub fn mac1(&self) -> [u8; MAC_LEN] {
        let buf = self.buffer.as_ref();
        read_16(buf, buf.len() - 2 * MAC_LEN)
    }

    /// MAC2 (all zeros until the cookie mechanism exists).
    pub fn mac2(&self) -> [u8; MAC_LEN] {
        let buf = self.buffer.as_ref();
        read_16(buf, buf.len() - MAC_LEN)
    }
}

/// Checked view of a REATTACH_RESP frame:
/// `hdr(4) | sender_idx u32 | receiver_idx u32 | noise msg2 | mac1 (16) | mac2 (16)`.
#[derive(Debug, Clone, Copy)]
pub struct ReattachRespPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ReattachRespPacket<T> {
    /// Validates header and length bounds; afterwards no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let buf = buffer.as_ref();
        expect_type(buf, MessageType::ReattachResp)?;
        if buf.len() < REATTACH_RESP_MIN_LEN {
            Err(FrameError::Truncated)
        } else if buf.len() > REATTACH_RESP_MAX_LEN {
            Err(FrameError::TooLong)
        } else {
            Ok(Self { buffer })
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The responder's index: the receiver index of frames sent to the responder.
    pub fn sender_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The initiator's index, echoed from REATTACH_INIT.
    pub fn receiver_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), HEADER_LEN + 4)
    }

    /// Noise message 2.
    pub fn noise_message(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[RESP_NOISE_AT..buf.len() - 2 * MAC_LEN]
    }

    /// Length of the encrypted payload's plaintext.
    pub fn payload_len(&self) -> usize {
        self.noise_message().len() - NOISE_RESP_OVERHEAD
    }

    /// The bytes MAC1 covers: everything before MAC1.
    pub fn mac1_covered(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[..buf.len() - 2 * MAC_LEN]
    }

    /// MAC1.
    pub fn mac1(&self) -> [u8; MAC_LEN] {
        let buf = self.buffer.as_ref();
        read_16(buf, buf.len() - 2 * MAC_LEN)
    }

    /// MAC2 (all zeros until the cookie mechanism exists).
    pub fn mac2(&self) -> [u8; MAC_LEN] {
        let buf = self.buffer.as_ref();
        read_16(buf, buf.len() - MAC_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reattach_sizes_match_the_documented_layout() {
        assert_eq!(REATTACH_INIT_PROLOGUE_LEN, 80);
        assert_eq!(REATTACH_INIT_PLAINTEXT_LEN, 368);
        assert_eq!(REATTACH_RESP_MIN_LEN, 453);
        assert_eq!(reattach_resp_len(484), REATTACH_RESP_MAX_LEN);
    }

    #[test]
    fn a_reattach_init_of_any_other_length_is_rejected() {
        let mut frame = vec![0u8; REATTACH_INIT_LEN + 1];
        frame[..4].copy_from_slice(&[6, 1, 0, 0]);

        assert_eq!(
            ReattachInitPacket::new_checked(&frame[..]).err(),
            Some(FrameError::TooLong)
        );
        assert_eq!(
            ReattachInitPacket::new_checked(&frame[..REATTACH_INIT_LEN - 1]).err(),
            Some(FrameError::Truncated)
        );
        assert!(ReattachInitPacket::new_checked(&frame[..REATTACH_INIT_LEN]).is_ok());
    }

    #[test]
    fn reattach_init_accessors_read_their_fields() {
        let mut frame = vec![0u8; REATTACH_INIT_LEN];
        frame[..8].copy_from_slice(&[6, 1, 0, 0, 0, 0, 1, 2]);
        frame[8..80].fill(0x11);
        frame[80..112].fill(0x22);
        frame[544..560].fill(0x33);

        let packet = ReattachInitPacket::new_checked(&frame[..]).unwrap();

        assert_eq!(packet.sender_index(), 0x0102);
        assert_eq!(packet.token(), &[0x11; TOKEN_LEN][..]);
        assert_eq!(packet.ephemeral(), [0x22; 32]);
        assert_eq!(packet.prologue_suffix(), &frame[..80]);
        assert_eq!(packet.noise_message().len(), 464);
        assert_eq!(packet.mac1(), [0x33; 16]);
        assert_eq!(packet.mac2(), [0; 16]);
    }

    #[test]
    fn a_reattach_resp_outside_its_bounds_is_rejected() {
        let mut frame = vec![0u8; REATTACH_RESP_MAX_LEN + 1];
        frame[..4].copy_from_slice(&[7, 1, 0, 0]);

        assert_eq!(
            ReattachRespPacket::new_checked(&frame[..]).err(),
            Some(FrameError::TooLong)
        );
        assert_eq!(
            ReattachRespPacket::new_checked(&frame[..REATTACH_RESP_MIN_LEN - 1]).err(),
            Some(FrameError::Truncated)
        );
        let packet = ReattachRespPacket::new_checked(&frame[..REATTACH_RESP_MIN_LEN]).unwrap();
        assert_eq!(packet.payload_len(), REATTACH_RESP_PAYLOAD_LEN);
    }
}

//! HANDSHAKE_INIT, HANDSHAKE_RESP and COOKIE_REPLY frames.

use super::{
    HEADER_LEN, MAX_HANDSHAKE_PAYLOAD, MessageType, expect_type, read_16, read_u32, write_header,
};
use crate::error::FrameError;
use crate::kdf::MAC_LEN;

const DH_LEN: usize = 32;
const AEAD_TAG: usize = 16;

/// Noise message 1 bytes around its payload: `e` (32) + encrypted `s` (32 + 16) + payload tag (16).
pub const NOISE_INIT_OVERHEAD: usize = DH_LEN + DH_LEN + AEAD_TAG + AEAD_TAG;
/// Noise message 2 bytes around its payload: `e` (32) + payload tag (16).
pub const NOISE_RESP_OVERHEAD: usize = DH_LEN + AEAD_TAG;

const INIT_NOISE_AT: usize = HEADER_LEN + 4;
const RESP_NOISE_AT: usize = HEADER_LEN + 8;

/// Smallest HANDSHAKE_INIT (empty payload): 136 bytes.
pub const HANDSHAKE_INIT_MIN_LEN: usize = INIT_NOISE_AT + NOISE_INIT_OVERHEAD + 2 * MAC_LEN;
/// Largest HANDSHAKE_INIT (1024-byte payload).
pub const HANDSHAKE_INIT_MAX_LEN: usize = HANDSHAKE_INIT_MIN_LEN + MAX_HANDSHAKE_PAYLOAD;
/// Smallest HANDSHAKE_RESP (empty payload): 92 bytes.
pub const HANDSHAKE_RESP_MIN_LEN: usize = RESP_NOISE_AT + NOISE_RESP_OVERHEAD + 2 * MAC_LEN;
/// Largest HANDSHAKE_RESP (1024-byte payload).
pub const HANDSHAKE_RESP_MAX_LEN: usize = HANDSHAKE_RESP_MIN_LEN + MAX_HANDSHAKE_PAYLOAD;
/// COOKIE_REPLY length: header, receiver index, 24-byte nonce, 16-byte cookie + 16-byte tag.
pub const COOKIE_REPLY_LEN: usize = HEADER_LEN + 4 + 24 + 32;

/// HANDSHAKE_INIT length for a handshake payload of `payload_len` bytes.
pub const fn handshake_init_len(payload_len: usize) -> usize {
    HANDSHAKE_INIT_MIN_LEN + payload_len
}

/// HANDSHAKE_RESP length for a handshake payload of `payload_len` bytes.
pub const fn handshake_resp_len(payload_len: usize) -> usize {
    HANDSHAKE_RESP_MIN_LEN + payload_len
}

fn check_len(len: usize, min: usize, max: usize) -> Result<(), FrameError> {
    if len < min {
        Err(FrameError::Truncated)
    } else if len > max {
        Err(FrameError::TooLong)
    } else {
        Ok(())
    }
}

/// Checked view of a HANDSHAKE_INIT frame:
/// `hdr(4) | sender_idx u32 | noise msg1 | mac1 (16) | mac2 (16)`.
#[derive(Debug, Clone)]
pub struct HandshakeInitPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HandshakeInitPacket<T> {
    /// Validates header and length; afterwards no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let buf = buffer.as_ref();
        expect_type(buf, MessageType::HandshakeInit)?;
        check_len(buf.len(), HANDSHAKE_INIT_MIN_LEN, HANDSHAKE_INIT_MAX_LEN)?;
        Ok(Self { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The initiator's index: the receiver index of frames sent back to it.
    pub fn sender_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), HEADER_LEN)
    }

    /// Noise message 1.
    pub fn noise_message(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[INIT_NOISE_AT..buf.len() - 2 * MAC_LEN]
    }

    /// Length of the encrypted payload's plaintext.
    pub fn payload_len(&self) -> usize {
        self.noise_message().len() - NOISE_INIT_OVERHEAD
    }

    /// The bytes MAC1 covers: everything before MAC1.
    pub fn mac1_covered(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[..buf.len() - 2 * MAC_LEN]
    }

    /// The bytes MAC2 will cover (everything before MAC2).
    pub fn mac2_covered(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[..buf.len() - MAC_LEN]
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

/// Checked view of a HANDSHAKE_RESP frame:
/// `hdr(4) | sender_idx u32 | receiver_idx u32 | noise msg2 | mac1 (16) | mac2 (16)`.
#[derive(Debug, Clone)]
pub struct HandshakeRespPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HandshakeRespPacket<T> {
    /// Validates header and length; afterwards no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let buf = buffer.as_ref();
        expect_type(buf, MessageType::HandshakeResp)?;
        check_len(buf.len(), HANDSHAKE_RESP_MIN_LEN, HANDSHAKE_RESP_MAX_LEN)?;
        Ok(Self { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The responder's index: the receiver index of frames sent to the responder.
    pub fn sender_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The initiator's index, echoed from HANDSHAKE_INIT.
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

/// Parsed HANDSHAKE_INIT, borrowing the Noise message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeInitRepr<'a> {
    /// The initiator's index.
    pub sender_index: u32,
    /// Noise message 1 (96 to 1120 bytes).
    pub noise_message: &'a [u8],
    /// MAC1.
    pub mac1: [u8; MAC_LEN],
    /// MAC2.
    pub mac2: [u8; MAC_LEN],
}

impl<'a> HandshakeInitRepr<'a> {
    /// Parses a HANDSHAKE_INIT frame (no MAC check: that needs a key, see `handshake`).
    pub fn parse(buf: &'a [u8]) -> Result<Self, FrameError> {
        let packet = HandshakeInitPacket::new_checked(buf)?;
        Ok(Self {
            sender_index: packet.sender_index(),
            mac1: packet.mac1(),
            mac2: packet.mac2(),
            noise_message: &buf[INIT_NOISE_AT..buf.len() - 2 * MAC_LEN],
        })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        INIT_NOISE_AT + self.noise_message.len() + 2 * MAC_LEN
    }

    /// Writes the frame into `out` and returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.buffer_len();
        check_len(len, HANDSHAKE_INIT_MIN_LEN, HANDSHAKE_INIT_MAX_LEN)
            .map_err(|_| FrameError::InvalidField("noise message 1 length"))?;
        let out = out
            .get_mut(..len)
            .ok_or(FrameError::BufferTooSmall { needed: len })?;
        write_header(out, MessageType::HandshakeInit);
        out[HEADER_LEN..INIT_NOISE_AT].copy_from_slice(&self.sender_index.to_be_bytes());
        out[INIT_NOISE_AT..len - 2 * MAC_LEN].copy_from_slice(self.noise_message);
        out[len - 2 * MAC_LEN..len - MAC_LEN].copy_from_slice(&self.mac1);
        out[len - MAC_LEN..].copy_from_slice(&self.mac2);
        Ok(len)
    }
}

/// Parsed HANDSHAKE_RESP, borrowing the Noise message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeRespRepr<'a> {
    /// The responder's index.
    pub sender_index: u32,
    /// The initiator's index, echoed.
    pub receiver_index: u32,
    /// Noise message 2 (48 to 1072 bytes).
    pub noise_message: &'a [u8],
    /// MAC1.
    pub mac1: [u8; MAC_LEN],
    /// MAC2.
    pub mac2: [u8; MAC_LEN],
}

impl<'a> HandshakeRespRepr<'a> {
    /// Parses a HANDSHAKE_RESP frame (no MAC check).
    pub fn parse(buf: &'a [u8]) -> Result<Self, FrameError> {
        let packet = HandshakeRespPacket::new_checked(buf)?;
        Ok(Self {
            sender_index: packet.sender_index(),
            receiver_index: packet.receiver_index(),
            mac1: packet.mac1(),
            mac2: packet.mac2(),
            noise_message: &buf[RESP_NOISE_AT..buf.len() - 2 * MAC_LEN],
        })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        RESP_NOISE_AT + self.noise_message.len() + 2 * MAC_LEN
    }

    /// Writes the frame into `out` and returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.buffer_len();
        check_len(len, HANDSHAKE_RESP_MIN_LEN, HANDSHAKE_RESP_MAX_LEN)
            .map_err(|_| FrameError::InvalidField("noise message 2 length"))?;
        let out = out
            .get_mut(..len)
            .ok_or(FrameError::BufferTooSmall { needed: len })?;
        write_header(out, MessageType::HandshakeResp);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&self.sender_index.to_be_bytes());
        out[HEADER_LEN + 4..RESP_NOISE_AT].copy_from_slice(&self.receiver_index.to_be_bytes());
        out[RESP_NOISE_AT..len - 2 * MAC_LEN].copy_from_slice(self.noise_message);
        out[len - 2 * MAC_LEN..len - MAC_LEN].copy_from_slice(&self.mac1);
        out[len - MAC_LEN..].copy_from_slice(&self.mac2);
        Ok(len)
    }
}

/// Checked view of a COOKIE_REPLY frame (format slot only; no logic yet):
/// `hdr(4) | receiver_idx u32 | nonce (24) | encrypted cookie (16) + tag (16)`.
#[derive(Debug, Clone)]
pub struct CookieReplyPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> CookieReplyPacket<T> {
    /// Validates header and exact length.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let buf = buffer.as_ref();
        expect_type(buf, MessageType::CookieReply)?;
        check_len(buf.len(), COOKIE_REPLY_LEN, COOKIE_REPLY_LEN)?;
        Ok(Self { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Index of the handshake this cookie answers.
    pub fn receiver_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The 24-byte nonce.
    pub fn nonce(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN + 4..HEADER_LEN + 28]
    }

    /// The encrypted cookie and its tag (32 bytes).
    pub fn encrypted_cookie(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN + 28..COOKIE_REPLY_LEN]
    }
}

/// Parsed COOKIE_REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieReplyRepr {
    /// Index of the handshake this cookie answers.
    pub receiver_index: u32,
    /// The 24-byte nonce.
    pub nonce: [u8; 24],
    /// The encrypted cookie and its tag.
    pub encrypted_cookie: [u8; 32],
}

impl CookieReplyRepr {
    /// Parses a COOKIE_REPLY frame.
    pub fn parse(buf: &[u8]) -> Result<Self, FrameError> {
        let packet = CookieReplyPacket::new_checked(buf)?;
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(packet.nonce());
        let mut encrypted_cookie = [0u8; 32];
        encrypted_cookie.copy_from_slice(packet.encrypted_cookie());
        Ok(Self {
            receiver_index: packet.receiver_index(),
            nonce,
            encrypted_cookie,
        })
    }

    /// Writes the frame into `out` and returns its length ([`COOKIE_REPLY_LEN`]).
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let out = out
            .get_mut(..COOKIE_REPLY_LEN)
            .ok_or(FrameError::BufferTooSmall {
                needed: COOKIE_REPLY_LEN,
            })?;
        write_header(out, MessageType::CookieReply);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&self.receiver_index.to_be_bytes());
        out[HEADER_LEN + 4..HEADER_LEN + 28].copy_from_slice(&self.nonce);
        out[HEADER_LEN + 28..].copy_from_slice(&self.encrypted_cookie);
        Ok(COOKIE_REPLY_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_constants_match_the_documented_layout() {
        assert_eq!(HANDSHAKE_INIT_MIN_LEN, 136);
        assert_eq!(HANDSHAKE_RESP_MIN_LEN, 92);
        assert_eq!(COOKIE_REPLY_LEN, 64);
        assert_eq!(handshake_init_len(25), 161);
    }

    #[test]
    fn init_repr_round_trips_byte_identically() {
        let noise = [0x5a; NOISE_INIT_OVERHEAD + 3];
        let repr = HandshakeInitRepr {
            sender_index: 0x0102_0304,
            noise_message: &noise,
            mac1: [1; 16],
            mac2: [2; 16],
        };
        let mut buf = [0u8; 256];

        let len = repr.emit(&mut buf).unwrap();
        let parsed = HandshakeInitRepr::parse(&buf[..len]).unwrap();
        let mut again = [0u8; 256];
        let len_again = parsed.emit(&mut again).unwrap();

        assert_eq!(parsed, repr);
        assert_eq!(&buf[..len], &again[..len_again]);
        assert_eq!(&buf[..8], &[1, 1, 0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn resp_repr_round_trips_byte_identically() {
        let noise = [0xa5; NOISE_RESP_OVERHEAD];
        let repr = HandshakeRespRepr {
            sender_index: 7,
            receiver_index: 9,
            noise_message: &noise,
            mac1: [3; 16],
            mac2: [0; 16],
        };
        let mut buf = [0u8; HANDSHAKE_RESP_MIN_LEN];

        let len = repr.emit(&mut buf).unwrap();

        assert_eq!(HandshakeRespRepr::parse(&buf[..len]).unwrap(), repr);
        assert_eq!(&buf[..12], &[2, 1, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9]);
    }

    #[test]
    fn cookie_reply_repr_round_trips_byte_identically() {
        let repr = CookieReplyRepr {
            receiver_index: 42,
            nonce: [4; 24],
            encrypted_cookie: [5; 32],
        };
        let mut buf = [0u8; COOKIE_REPLY_LEN];

        repr.emit(&mut buf).unwrap();

        assert_eq!(CookieReplyRepr::parse(&buf).unwrap(), repr);
    }

    #[test]
    fn handshake_frames_outside_their_length_bounds_are_rejected() {
        let mut short = [0u8; HANDSHAKE_INIT_MIN_LEN - 1];
        short[..4].copy_from_slice(&[1, 1, 0, 0]);
        let mut long = vec![0u8; HANDSHAKE_INIT_MAX_LEN + 1];
        long[..4].copy_from_slice(&[1, 1, 0, 0]);

        assert_eq!(
            HandshakeInitPacket::new_checked(&short[..]).err(),
            Some(FrameError::Truncated)
        );
        assert_eq!(
            HandshakeInitPacket::new_checked(&long[..]).err(),
            Some(FrameError::TooLong)
        );
    }

    #[test]
    fn emit_rejects_a_noise_message_of_impossible_length() {
        let repr = HandshakeInitRepr {
            sender_index: 1,
            noise_message: &[0; 10],
            mac1: [0; 16],
            mac2: [0; 16],
        };

        assert!(matches!(
            repr.emit(&mut [0u8; 512]),
            Err(FrameError::InvalidField(_))
        ));
    }
}

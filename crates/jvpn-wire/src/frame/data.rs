//! DATA and CONTROL frames: `hdr(4) | receiver_idx u32 | counter u64 | ciphertext | tag (16)`.

use super::{
    DATA_HEADER_LEN, DATA_OVERHEAD, DATA_TAG_LEN, HEADER_LEN, MAX_FRAME_LEN, MessageType,
    peek_type, read_u32, read_u64, write_header,
};
use crate::error::FrameError;

/// Checked view of a DATA or CONTROL frame.
#[derive(Debug, Clone)]
pub struct DataPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DataPacket<T> {
    /// Validates the header (type DATA or CONTROL) and the length (32 to [`MAX_FRAME_LEN`] bytes).
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        DataHeader::parse(buffer.as_ref())?;
        let len = buffer.as_ref().len();
        if len < DATA_OVERHEAD {
            return Err(FrameError::Truncated);
        }
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong);
        }
        Ok(Self { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `Data` or `Control`.
    pub fn message_type(&self) -> MessageType {
        if self.buffer.as_ref()[0] == MessageType::Control.as_u8() {
            MessageType::Control
        } else {
            MessageType::Data
        }
    }

    /// The receiver's index (chosen by the receiver during the handshake).
    pub fn receiver_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The per-key packet counter (the nonce).
    pub fn counter(&self) -> u64 {
        read_u64(self.buffer.as_ref(), HEADER_LEN + 4)
    }

    /// The 16-byte header: the AEAD associated data.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..DATA_HEADER_LEN]
    }

    /// The ciphertext between header and tag.
    pub fn ciphertext(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[DATA_HEADER_LEN..buf.len() - DATA_TAG_LEN]
    }

    /// The AES-GCM tag.
    pub fn tag(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[buf.len() - DATA_TAG_LEN..]
    }
}

/// The DATA / CONTROL header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    /// `Data` or `Control`.
    pub ty: MessageType,
    /// The receiver's index.
    pub receiver_index: u32,
    /// The per-key packet counter.
    pub counter: u64,
}

impl DataHeader {
    /// Parses the first 16 bytes of `buf` (the rest is not examined).
    pub fn parse(buf: &[u8]) -> Result<Self, FrameError> {
        let ty = peek_type(buf)?;
        if !matches!(ty, MessageType::Data | MessageType::Control) {
            return Err(FrameError::UnexpectedType(ty));
        }
        if buf.len() < DATA_HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        Ok(Self {
            ty,
            receiver_index: read_u32(buf, HEADER_LEN),
            counter: read_u64(buf, HEADER_LEN + 4),
        })
    }

    /// Writes the 16-byte header into the start of `out`.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        if !matches!(self.ty, MessageType::Data | MessageType::Control) {
            return Err(FrameError::InvalidField("data header type"));
        }
        let out = out
            .get_mut(..DATA_HEADER_LEN)
            .ok_or(FrameError::BufferTooSmall {
                needed: DATA_HEADER_LEN,
            })?;
        write_header(out, self.ty);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&self.receiver_index.to_be_bytes());
        out[HEADER_LEN + 4..].copy_from_slice(&self.counter.to_be_bytes());
        Ok(DATA_HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_header_round_trips_byte_identically() {
        let header = DataHeader {
            ty: MessageType::Control,
            receiver_index: 0xdead_beef,
            counter: 0x0102_0304_0506_0708,
        };
        let mut buf = [0u8; DATA_HEADER_LEN];

        header.emit(&mut buf).unwrap();

        assert_eq!(
            buf,
            [5, 1, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(DataHeader::parse(&buf).unwrap(), header);
    }

    #[test]
    fn data_packet_exposes_its_fields() {
        let mut buf = [0u8; DATA_OVERHEAD + 3];
        DataHeader {
            ty: MessageType::Data,
            receiver_index: 3,
            counter: 9,
        }
        .emit(&mut buf)
        .unwrap();

        let packet = DataPacket::new_checked(&buf[..]).unwrap();

        assert_eq!(packet.message_type(), MessageType::Data);
        assert_eq!(packet.receiver_index(), 3);
        assert_eq!(packet.counter(), 9);
        assert_eq!(packet.ciphertext().len(), 3);
        assert_eq!(packet.tag().len(), DATA_TAG_LEN);
    }

    #[test]
    fn handshake_types_are_not_data_frames() {
        let buf = [1u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

        assert_eq!(
            DataHeader::parse(&buf),
            Err(FrameError::UnexpectedType(MessageType::HandshakeInit))
        );
    }
}

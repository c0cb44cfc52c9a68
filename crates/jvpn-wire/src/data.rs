//! The data plane: AES-256-GCM with the two keys of the Noise split, 64-bit counter nonces, the
//! 16-byte frame header as associated data, and an anti-replay window.
//!
//! Nonce (12 bytes) = 4 zero bytes || big-endian counter, the Noise AESGCM convention. A send key
//! never reuses a counter: the counter is advanced before encrypting and the key refuses to seal
//! once it reaches [`REJECT_AFTER_MESSAGES`]. Sealing and opening work in place and never
//! allocate. Time-based limits ([`REKEY_AFTER`], [`REJECT_AFTER`]) are enforced by the session
//! layer, which owns the clock.

use core::fmt;
use core::ops::Range;
use core::time::Duration;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};

use crate::error::{OpenError, SealError};
use crate::frame::{
    DATA_HEADER_LEN, DATA_OVERHEAD, DATA_TAG_LEN, DataHeader, DataPacket, MAX_DATA_PLAINTEXT,
    MessageType,
};
use crate::replay::ReplayWindow;

/// After this many packets under one key, start a rekey.
pub const REKEY_AFTER_MESSAGES: u64 = (1 << 22) - (1 << 16);
/// A key never seals more than this many packets; a receiver rejects counters at or above it.
pub const REJECT_AFTER_MESSAGES: u64 = 1 << 22;
/// After this age, a key's owner starts a rekey.
pub const REKEY_AFTER: Duration = Duration::from_secs(100);
/// After this age, a key is never used again (send or receive).
pub const REJECT_AFTER: Duration = Duration::from_secs(120);

fn nonce(counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    bytes.into()
}

/// Both directions' keys after a handshake.
#[derive(Debug)]
pub struct DataKeys {
    /// Key for frames we send.
    pub send: SendKey,
    /// Key for frames we receive.
    pub recv: RecvKey,
}

/// The sending half: cipher, the peer's receiver index and the next counter.
pub struct SendKey {
    cipher: Aes256Gcm,
    remote_index: u32,
    next_counter: u64,
}

impl fmt::Debug for SendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendKey")
            .field("key", &"<redacted>")
            .field("remote_index", &self.remote_index)
            .field("next_counter", &self.next_counter)
            .finish()
    }
}

impl SendKey {
    /// A send key for frames addressed to the peer's `remote_index`, counter starting at 0.
    pub fn new(key: &[u8; 32], remote_index: u32) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
            remote_index,
            next_counter: 0,
        }
    }

    /// Seals the plaintext at `buf[DATA_HEADER_LEN..DATA_HEADER_LEN + plaintext_len]` in place:
    /// writes the header in front, encrypts, appends the tag and returns the frame length
    /// (`plaintext_len + DATA_OVERHEAD`).
    pub fn seal(
        &mut self,
        ty: MessageType,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, SealError> {
        if !matches!(ty, MessageType::Data | MessageType::Control) {
            return Err(SealError::InvalidType(ty));
        }
        if plaintext_len > MAX_DATA_PLAINTEXT {
            return Err(SealError::PlaintextTooLarge {
                len: plaintext_len,
                max: MAX_DATA_PLAINTEXT,
            });
        }
        let frame_len = plaintext_len + DATA_OVERHEAD;
        let frame = buf
            .get_mut(..frame_len)
            .ok_or(SealError::BufferTooSmall { needed: frame_len })?;
        let counter = self.next_counter;
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(SealError::KeyExhausted);
        }
        // Advance first: whatever happens next, this counter is never handed out again.
        self.next_counter = counter + 1;

        let header = DataHeader {
            ty,
            receiver_index: self.remote_index,
            counter,
        };
        let (head, rest) = frame.split_at_mut(DATA_HEADER_LEN);
        header
            .emit(head)
            .expect("head is exactly DATA_HEADER_LEN bytes and ty was checked");
        let (plaintext, tag_out) = rest.split_at_mut(plaintext_len);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce(counter), head, plaintext)
            .expect("AES-GCM only fails above 2^36 bytes; plaintext is bounded by MAX_FRAME_LEN");
        tag_out.copy_from_slice(&tag);
        Ok(frame_len)
    }

    /// Frames sealed so far (= the next counter).
    pub fn packets_sent(&self) -> u64 {
        self.next_counter
    }

    /// The peer's receiver index that our frames carry.
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }

    /// Whether the packet count calls for a rekey ([`REKEY_AFTER_MESSAGES`]).
    pub fn needs_rekey(&self) -> bool {
        self.next_counter >= REKEY_AFTER_MESSAGES
    }

    /// Test hook: jump the counter (to test exhaustion without sealing 2^22 frames).
    #[cfg(test)]
    pub(crate) fn set_next_counter(&mut self, counter: u64) {
        self.next_counter = counter;
    }
}

/// The receiving half: cipher, our own index and the replay window.
pub struct RecvKey {
    cipher: Aes256Gcm,
    local_index: u32,
    window: ReplayWindow,
    received: u64,
}

impl fmt::Debug for RecvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvKey")
            .field("key", &"<redacted>")
            .field("local_index", &self.local_index)
            .field("received", &self.received)
            .finish()
    }
}

impl RecvKey {
    /// A receive key for frames addressed to our `local_index`.
    pub fn new(key: &[u8; 32], local_index: u32) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
            local_index,
            window: ReplayWindow::new(),
            received: 0,
        }
    }

    /// Opens a DATA or CONTROL frame in place and returns its type and the plaintext's range
    /// within `frame`.
    ///
    /// Order: parse, receiver index, counter limit, replay check (before any decryption),
    /// decrypt and verify, and only then commit the counter to the replay window, so a forged
    /// frame can neither burn a counter nor slide the window.
    pub fn open(&mut self, frame: &mut [u8]) -> Result<(MessageType, Range<usize>), OpenError> {
        let packet = DataPacket::new_checked(&*frame)?;
        let ty = packet.message_type();
        let counter = packet.counter();
        if packet.receiver_index() != self.local_index {
            return Err(OpenError::WrongReceiver);
        }
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(OpenError::CounterLimit);
        }
        if !self.window.check(counter) {
            return Err(OpenError::Replayed);
        }
        let end = frame.len() - DATA_TAG_LEN;
        let (head, rest) = frame.split_at_mut(DATA_HEADER_LEN);
        let (ciphertext, tag) = rest.split_at_mut(end - DATA_HEADER_LEN);
        let tag = Tag::clone_from_slice(tag);
        self.cipher
            .decrypt_in_place_detached(&nonce(counter), head, ciphertext, &tag)
            .map_err(|_| OpenError::AuthenticationFailed)?;
        if !self.window.commit(counter) {
            return Err(OpenError::Replayed);
        }
        self.received += 1;
        Ok((ty, DATA_HEADER_LEN..end))
    }

    /// Frames opened successfully so far.
    pub fn packets_received(&self) -> u64 {
        self.received
    }

    /// Our index, which frames for this key carry.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// The highest counter accepted so far.
    pub fn highest_counter(&self) -> u64 {
        self.window.highest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SendKey, RecvKey) {
        (SendKey::new(&[7; 32], 42), RecvKey::new(&[7; 32], 42))
    }

    #[test]
    fn sealing_refuses_at_the_reject_limit_instead_of_wrapping() {
        let (mut send, _) = pair();
        send.set_next_counter(REJECT_AFTER_MESSAGES - 1);
        let mut buf = [0u8; 64];

        let last = send.seal(MessageType::Data, &mut buf, 4);
        let refused = send.seal(MessageType::Data, &mut buf, 4);

        assert_eq!(last, Ok(4 + DATA_OVERHEAD));
        assert_eq!(refused, Err(SealError::KeyExhausted));
        assert_eq!(send.packets_sent(), REJECT_AFTER_MESSAGES);
    }

    #[test]
    fn a_key_at_u64_max_refuses_to_seal() {
        let (mut send, _) = pair();
        send.set_next_counter(u64::MAX);

        let result = send.seal(MessageType::Data, &mut [0u8; 64], 0);

        assert_eq!(result, Err(SealError::KeyExhausted));
        assert_eq!(send.packets_sent(), u64::MAX);
    }

    #[test]
    fn needs_rekey_turns_on_at_the_soft_limit() {
        let (mut send, _) = pair();
        send.set_next_counter(REKEY_AFTER_MESSAGES - 1);
        assert!(!send.needs_rekey());

        send.seal(MessageType::Data, &mut [0u8; 64], 0).unwrap();

        assert!(send.needs_rekey());
    }

    #[test]
    fn a_frame_with_a_counter_past_the_limit_is_rejected_before_decryption() {
        let (mut send, mut recv) = pair();
        send.set_next_counter(REJECT_AFTER_MESSAGES - 1);
        let mut buf = [0u8; 64];
        let len = send.seal(MessageType::Data, &mut buf, 0).unwrap();
        // Forge the counter to the limit; the tag no longer matters: the check comes first.
        buf[8..16].copy_from_slice(&REJECT_AFTER_MESSAGES.to_be_bytes());

        assert_eq!(recv.open(&mut buf[..len]), Err(OpenError::CounterLimit));
    }

    #[test]
    fn open_rejects_a_frame_for_another_receiver_index() {
        let mut send = SendKey::new(&[7; 32], 1);
        let mut recv = RecvKey::new(&[7; 32], 2);
        let mut buf = [0u8; 64];
        let len = send.seal(MessageType::Data, &mut buf, 1).unwrap();

        assert_eq!(recv.open(&mut buf[..len]), Err(OpenError::WrongReceiver));
    }

    #[test]
    fn seal_reports_the_size_it_needs_without_consuming_a_counter() {
        let (mut send, _) = pair();

        let result = send.seal(MessageType::Data, &mut [0u8; 40], 10);

        assert_eq!(result, Err(SealError::BufferTooSmall { needed: 42 }));
        assert_eq!(send.packets_sent(), 0);
    }

    #[test]
    fn handshake_types_cannot_be_sealed() {
        let (mut send, _) = pair();

        let result = send.seal(MessageType::HandshakeInit, &mut [0u8; 64], 0);

        assert_eq!(
            result,
            Err(SealError::InvalidType(MessageType::HandshakeInit))
        );
    }
}

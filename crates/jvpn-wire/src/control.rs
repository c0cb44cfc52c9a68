//! The plaintext of CONTROL frames. The first byte is the control type; fields are big-endian;
//! every message has one exact length (no trailing bytes), so parse and emit round-trip
//! byte-identically. New messages get new type bytes.

use crate::error::FrameError;

const KEEPALIVE: u8 = 1;
const CLOSE: u8 = 2;
const REKEY_REQUEST: u8 = 3;
const PROBE: u8 = 4;
const PROBE_ACK: u8 = 5;
const PATH_CONFIRM: u8 = 6;
const PATH_RESPONSE: u8 = 7;
const PROBE_ACK_OFF_BINDING: u8 = 8;

/// Length of a path challenge or its echo.
pub const PATH_TOKEN_LEN: usize = 16;
/// Longest control message encoding (PATH_CONFIRM).
pub const MAX_CONTROL_LEN: usize = 1 + 2 * PATH_TOKEN_LEN;
const PROBE_LEN: usize = 13;

/// A control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlMessage {
    /// Keeps the path and NAT bindings alive; carries nothing. `[1]`.
    Keepalive,
    /// The sender is closing the session. `[2, reason]`; reason codes belong to the session layer.
    Close {
        /// Why (session-layer reason code).
        reason: u8,
    },
    /// Asks the peer to start a rekey handshake. `[3]`.
    RekeyRequest,
    /// Path probe. `[4, seq u32, sent_micros u64]`.
    Probe {
        /// Probe sequence number.
        seq: u32,
        /// Sender's monotonic clock in microseconds, echoed back.
        sent_micros: u64,
    },
    /// Answer to a probe. `[5, seq u32, echo_micros u64]`.
    ProbeAck {
        /// The probe's sequence number.
        seq: u32,
        /// The probe's `sent_micros`, unchanged.
        echo_micros: u64,
    },
    /// Answer to a probe that arrived on a path other than the session's binding (or while it
    /// has none). Same fields and length as [`ControlMessage::ProbeAck`], so the answer is
    /// never larger than the probe. A client that gets it for its bound path learns that the
    /// server sees that path from another address (NAT rebinding) and revalidates it with a
    /// reattach. `[8, seq u32, echo_micros u64]`.
    ProbeAckOffBinding {
        /// The probe's sequence number.
        seq: u32,
        /// The probe's `sent_micros`, unchanged.
        echo_micros: u64,
    },
    /// The client's first frame under the keys of a REATTACH_RESP with status OK, sent on the
    /// new path: echoes the server's path challenge (return routability and key confirmation,
    /// which let the server commit the binding and `RS'`) and carries the client's own challenge.
    /// `[6, response [16], challenge [16]]`.
    PathConfirm {
        /// The `path_challenge` of the REATTACH_RESP, unchanged.
        response: [u8; PATH_TOKEN_LEN],
        /// A fresh random challenge the server must echo in [`ControlMessage::PathResponse`].
        challenge: [u8; PATH_TOKEN_LEN],
    },
    /// The server's answer to PATH_CONFIRM, proving it receives on the new path too.
    /// `[7, response [16]]`.
    PathResponse {
        /// The PATH_CONFIRM's `challenge`, unchanged.
        response: [u8; PATH_TOKEN_LEN],
    },
}

impl ControlMessage {
    /// Parses one control message; the buffer must hold exactly one.
    pub fn parse(buf: &[u8]) -> Result<Self, FrameError> {
        let (&ty, body) = buf.split_first().ok_or(FrameError::Truncated)?;
        let msg = match ty {
            KEEPALIVE => Self::Keepalive,
            CLOSE => Self::Close {
                reason: *body.first().ok_or(FrameError::Truncated)?,
            },
            REKEY_REQUEST => Self::RekeyRequest,
            PROBE | PROBE_ACK | PROBE_ACK_OFF_BINDING => {
                if body.len() < 12 {
                    return Err(FrameError::Truncated);
                }
                let seq = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let mut micros = [0u8; 8];
                micros.copy_from_slice(&body[4..12]);
                let micros = u64::from_be_bytes(micros);
                match ty {
                    PROBE => Self::Probe {
                        seq,
                        sent_micros: micros,
                    },
                    PROBE_ACK => Self::ProbeAck {
                        seq,
                        echo_micros: micros,
                    },
                    _ => Self::ProbeAckOffBinding {
                        seq,
                        echo_micros: micros,
                    },
                }
            }
            PATH_CONFIRM => {
                let (response, rest) = read_token(body)?;
                let (challenge, _) = read_token(rest)?;
                Self::PathConfirm {
                    response,
                    challenge,
                }
            }
            PATH_RESPONSE => Self::PathResponse {
                response: read_token(body)?.0,
            },
            other => return Err(FrameError::UnknownControlType(other)),
        };
        if buf.len() != msg.encoded_len() {
            return Err(FrameError::TooLong);
        }
        Ok(msg)
    }

    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Keepalive | Self::RekeyRequest => 1,
            Self::Close { .. } => 2,
            Self::Probe { .. } | Self::ProbeAck { .. } | Self::ProbeAckOffBinding { .. } => {
                PROBE_LEN
            }
            Self::PathConfirm { .. } => 1 + 2 * PATH_TOKEN_LEN,
            Self::PathResponse { .. } => 1 + PATH_TOKEN_LEN,
        }
    }

    /// Writes the message to the start of `out` and returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.encoded_len();
        let out = out
            .get_mut(..len)
            .ok_or(FrameError::BufferTooSmall { needed: len })?;
        match *self {
            Self::Keepalive => out[0] = KEEPALIVE,
            Self::RekeyRequest => out[0] = REKEY_REQUEST,
            Self::Close { reason } => out.copy_from_slice(&[CLOSE, reason]),
            Self::Probe {
                seq,
                sent_micros: micros,
            }
            | Self::ProbeAck {
                seq,
                echo_micros: micros,
            }
            | Self::ProbeAckOffBinding {
                seq,
                echo_micros: micros,
            } => {
                out[0] = match self {
                    Self::Probe { .. } => PROBE,
                    Self::ProbeAck { .. } => PROBE_ACK,
                    _ => PROBE_ACK_OFF_BINDING,
                };
                out[1..5].copy_from_slice(&seq.to_be_bytes());
                out[5..13].copy_from_slice(&micros.to_be_bytes());
            }
            Self::PathConfirm {
                response,
                challenge,
            } => {
                out[0] = PATH_CONFIRM;
                out[1..17].copy_from_slice(&response);
                out[17..33].copy_from_slice(&challenge);
            }
            Self::PathResponse { response } => {
                out[0] = PATH_RESPONSE;
                out[1..17].copy_from_slice(&response);
            }
        }
        Ok(len)
    }
}

/// Splits a 16-byte path token off the front of `buf`.
fn read_token(buf: &[u8]) -> Result<([u8; PATH_TOKEN_LEN], &[u8]), FrameError> {
    let (token, rest) = buf
        .split_first_chunk::<PATH_TOKEN_LEN>()
        .ok_or(FrameError::Truncated)?;
    Ok((*token, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_message_round_trips_byte_identically() {
        let messages = [
            ControlMessage::Keepalive,
            ControlMessage::Close { reason: 9 },
            ControlMessage::RekeyRequest,
            ControlMessage::Probe {
                seq: 1,
                sent_micros: 2,
            },
            ControlMessage::ProbeAck {
                seq: u32::MAX,
                echo_micros: u64::MAX,
            },
            ControlMessage::ProbeAckOffBinding {
                seq: 0x8000_0001,
                echo_micros: 3,
            },
            ControlMessage::PathConfirm {
                response: [1; PATH_TOKEN_LEN],
                challenge: [2; PATH_TOKEN_LEN],
            },
            ControlMessage::PathResponse {
                response: [3; PATH_TOKEN_LEN],
            },
        ];
        for msg in messages {
            let mut buf = [0u8; MAX_CONTROL_LEN];

            let len = msg.emit(&mut buf).unwrap();
            let parsed = ControlMessage::parse(&buf[..len]).unwrap();
            let mut again = [0u8; MAX_CONTROL_LEN];
            parsed.emit(&mut again).unwrap();

            assert_eq!(parsed, msg);
            assert_eq!(buf[..len], again[..len]);
        }
    }

    #[test]
    fn probe_encoding_matches_the_documented_layout() {
        let mut buf = [0u8; MAX_CONTROL_LEN];

        ControlMessage::Probe {
            seq: 0x0102_0304,
            sent_micros: 0x0506,
        }
        .emit(&mut buf)
        .unwrap();

        assert_eq!(buf[..13], [4, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 5, 6]);
    }

    #[test]
    fn off_binding_probe_ack_has_its_own_type_and_the_probe_length() {
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let probe = ControlMessage::Probe {
            seq: 0x0102_0304,
            sent_micros: 0x0506,
        };
        let ack = ControlMessage::ProbeAckOffBinding {
            seq: 0x0102_0304,
            echo_micros: 0x0506,
        };

        let len = ack.emit(&mut buf).unwrap();

        assert_eq!(len, probe.encoded_len());
        assert_eq!(buf[..13], [8, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 5, 6]);
        assert_eq!(ControlMessage::parse(&buf[..13]), Ok(ack));
    }

    #[test]
    fn truncated_or_padded_off_binding_probe_acks_are_rejected() {
        let mut ack = [0u8; 14];
        ack[0] = 8;

        assert_eq!(
            ControlMessage::parse(&ack[..12]),
            Err(FrameError::Truncated)
        );
        assert_eq!(ControlMessage::parse(&ack), Err(FrameError::TooLong));
        assert!(ControlMessage::parse(&ack[..13]).is_ok());
    }

    #[test]
    fn path_confirm_encoding_matches_the_documented_layout() {
        let mut buf = [0u8; MAX_CONTROL_LEN];

        let len = ControlMessage::PathConfirm {
            response: [0xaa; PATH_TOKEN_LEN],
            challenge: [0xbb; PATH_TOKEN_LEN],
        }
        .emit(&mut buf)
        .unwrap();

        assert_eq!(len, 33);
        assert_eq!(buf[0], 6);
        assert_eq!(buf[1..17], [0xaa; 16]);
        assert_eq!(buf[17..33], [0xbb; 16]);
    }

    #[test]
    fn truncated_or_padded_path_messages_are_rejected() {
        let mut confirm = [0u8; 34];
        confirm[0] = 6;
        let mut response = [0u8; 17];
        response[0] = 7;

        assert_eq!(
            ControlMessage::parse(&confirm[..32]),
            Err(FrameError::Truncated)
        );
        assert_eq!(ControlMessage::parse(&confirm), Err(FrameError::TooLong));
        assert_eq!(
            ControlMessage::parse(&response[..16]),
            Err(FrameError::Truncated)
        );
        assert!(ControlMessage::parse(&response).is_ok());
    }

    #[test]
    fn trailing_truncated_and_unknown_messages_are_rejected() {
        assert_eq!(ControlMessage::parse(&[]), Err(FrameError::Truncated));
        assert_eq!(ControlMessage::parse(&[1, 0]), Err(FrameError::TooLong));
        assert_eq!(ControlMessage::parse(&[2]), Err(FrameError::Truncated));
        assert_eq!(
            ControlMessage::parse(&[4, 0, 0]),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            ControlMessage::parse(&[0xff]),
            Err(FrameError::UnknownControlType(0xff))
        );
    }

    #[test]
    fn emit_into_a_short_buffer_reports_the_needed_size() {
        let msg = ControlMessage::Close { reason: 1 };

        assert_eq!(
            msg.emit(&mut [0u8; 1]),
            Err(FrameError::BufferTooSmall { needed: 2 })
        );
    }
}

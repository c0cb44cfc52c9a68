//! Sending and receiving one jvpn datagram as one QUIC DATAGRAM frame, shared by link and
//! listener.

use std::io;

use bytes::Bytes;
use quinn::{Connection, SendDatagramError};

use crate::error::{buffer_too_small, connection_lost, too_large};

/// Queues one datagram without waiting. Under congestion quinn discards the oldest datagrams
/// still queued (drop-head, like a router queue) rather than making the caller wait: a runtime
/// blocked in `send` could not notice that the path died, and jvpn copes with loss.
pub(crate) fn send(conn: &Connection, datagram: &[u8]) -> io::Result<()> {
    let max = max_size(conn)?;
    if datagram.len() > max {
        return Err(too_large(datagram.len(), max));
    }
    conn.send_datagram(Bytes::copy_from_slice(datagram))
        .map_err(|error| send_error(&error, datagram.len(), max))
}

/// Like [`send`], but [`io::ErrorKind::WouldBlock`] instead of discarding an older queued datagram.
pub(crate) fn try_send(conn: &Connection, datagram: &[u8]) -> io::Result<()> {
    let max = max_size(conn)?;
    if datagram.len() > max {
        return Err(too_large(datagram.len(), max));
    }
    if conn.datagram_send_buffer_space() < datagram.len() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    conn.send_datagram(Bytes::copy_from_slice(datagram))
        .map_err(|error| send_error(&error, datagram.len(), max))
}

/// Copies a received datagram into the caller's buffer, whole or not at all.
pub(crate) fn copy_out(datagram: &[u8], buf: &mut [u8]) -> io::Result<usize> {
    let Some(dest) = buf.get_mut(..datagram.len()) else {
        return Err(buffer_too_small(datagram.len(), buf.len()));
    };
    dest.copy_from_slice(datagram);
    Ok(datagram.len())
}

/// The connection's current limit: it follows the path MTU, so it may change at any time.
fn max_size(conn: &Connection) -> io::Result<usize> {
    if let Some(reason) = conn.close_reason() {
        return Err(connection_lost(&reason));
    }
    conn.max_datagram_size().ok_or_else(unsupported)
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the QUIC peer does not accept DATAGRAM frames (RFC 9221): use a jvpn server or another \
         transport",
    )
}

fn send_error(error: &SendDatagramError, len: usize, max: usize) -> io::Error {
    match error {
        SendDatagramError::ConnectionLost(reason) => connection_lost(reason),
        // The path MTU shrank between our check and quinn's.
        SendDatagramError::TooLarge => too_large(len, max),
        _ => unsupported(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_longer_than_the_buffer_is_refused_whole() {
        let mut buf = [0u8; 4];
        let err = copy_out(b"hello", &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(buf, [0; 4]);
    }

    #[test]
    fn a_datagram_that_fits_is_copied_whole() {
        let mut buf = [0u8; 8];
        assert_eq!(copy_out(b"hello", &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }
}

//! Receiving one whole datagram or an error, never a truncated one.
//!
//! A plain `recv(2)` into a buffer shorter than the datagram silently truncates it on Unix. On
//! Unix we receive with `recvmsg(2)` (through rustix's safe wrapper, since the workspace forbids
//! `unsafe`) and check the `MSG_TRUNC` flag the kernel returns; a truncated datagram has already
//! been consumed by then, so it is dropped and reported as [`io::ErrorKind::InvalidData`]. The
//! next call receives the next datagram normally. Elsewhere (Windows), the OS itself reports a
//! truncated datagram as an error (`WSAEMSGSIZE`), so tokio's plain calls suffice.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Receives one datagram on a connected socket.
pub(crate) async fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
    let (len, _) = recv_from(socket, buf).await?;
    Ok(len)
}

/// Receives one datagram and its source.
#[cfg(unix)]
pub(crate) async fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    use rustix::net::{RecvAncillaryBuffer, RecvFlags, ReturnFlags, recvmsg};

    // ERROR interest too, so that a pending ICMP error (connection refused) is reported.
    socket
        .async_io(Interest::READABLE | Interest::ERROR, || {
            let capacity = buf.len();
            let mut iov = [io::IoSliceMut::new(buf)];
            let msg = recvmsg(
                socket,
                &mut iov,
                &mut RecvAncillaryBuffer::default(),
                RecvFlags::empty(),
            )?;
            if msg.flags.contains(ReturnFlags::TRUNC) {
                return Err(too_big(capacity));
            }
            let from = msg
                .address
                .and_then(|addr| SocketAddr::try_from(addr).ok())
                .ok_or_else(|| io::Error::other("received a UDP datagram without an IP source"))?;
            Ok((msg.bytes, from))
        })
        .await
}

/// Receives one datagram and its source.
#[cfg(not(unix))]
pub(crate) async fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    socket.recv_from(buf).await
}

fn too_big(capacity: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("dropped a datagram larger than the {capacity}-byte receive buffer"),
    )
}

/// Refuses datagrams the path cannot carry whole (see [`crate::MAX_DATAGRAM_V4`]).
pub(crate) fn check_size(len: usize, max: usize) -> io::Result<()> {
    if len <= max {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a {len}-byte datagram exceeds the UDP link's maximum of {max} bytes"),
        ))
    }
}

/// UDP sends all or nothing; a short count would mean a broken OS contract.
pub(crate) fn check_sent(sent: usize, len: usize) -> io::Result<()> {
    if sent == len {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("the OS sent {sent} of {len} bytes of a datagram"),
        ))
    }
}

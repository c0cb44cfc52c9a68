//! A checksummed bulk TCP transfer that reports progress while it runs and its longest receive stall.
//!
//! The sender streams seeded pseudo-random bytes ([`SplitMix`]) and hashes them; the receiver
//! ([`TcpSink`]) hashes what it reads, publishes how many bytes it has so far (so a test can act "in
//! the middle of the transfer") and measures the longest time between two reads that returned data.
//! Both ends use short socket timeouts in a loop bounded by a [`Deadline`], so a long blackout
//! stalls the transfer without failing it, while a connection reset fails it at once.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::{SplitMix, hex};
use crate::Deadline;
use crate::time::now;

/// Bytes per read or write call.
const CHUNK: usize = 64 * 1024;
/// How long one blocking socket call may wait before the loop looks at its deadline.
const STEP: Duration = Duration::from_millis(200);

/// What the receiving end saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpReceived {
    /// Bytes read before the sender's FIN.
    pub bytes: u64,
    /// SHA-256 of those bytes, lowercase hex.
    pub sha256: String,
    /// The longest time between two reads that returned data (after the first one).
    pub max_stall: Duration,
    /// How many bytes had arrived when that stall began.
    pub max_stall_at_byte: u64,
    /// From the accepted connection to the FIN.
    pub elapsed: Duration,
}

/// What the sending end sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpSent {
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of those bytes, lowercase hex.
    pub sha256: String,
    /// From the first write until the receiver closed.
    pub elapsed: Duration,
}

/// The receiving end of a transfer, running on its own thread.
#[derive(Debug)]
pub struct TcpSink {
    progress: Arc<AtomicU64>,
    handle: JoinHandle<io::Result<TcpReceived>>,
}

impl TcpSink {
    /// Accepts one connection on `listener` (already bound, e.g. inside the receiving namespace) and
    /// reads it to the end on a new thread, giving up at `deadline`.
    pub fn start(listener: TcpListener, deadline: Deadline) -> io::Result<Self> {
        let progress = Arc::new(AtomicU64::new(0));
        let shared = Arc::clone(&progress);
        let handle = std::thread::Builder::new()
            .name("tcp-sink".into())
            .spawn(move || receive(&listener, deadline, &shared))?;
        Ok(Self { progress, handle })
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// Whether the receiving thread has finished (end of stream, error or deadline).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the end of the transfer (bounded by the sink's deadline).
    pub fn finish(self) -> io::Result<TcpReceived> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the receiving thread panicked")))
    }
}

fn receive(
    listener: &TcpListener,
    deadline: Deadline,
    progress: &AtomicU64,
) -> io::Result<TcpReceived> {
    listener.set_nonblocking(true)?;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !deadline.expired() => {
                deadline.sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(STEP))?;
    let start = now();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0_u64;
    let mut last_data = None;
    let (mut max_stall, mut max_stall_at_byte) = (Duration::ZERO, 0);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                if deadline.expired() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("transfer not finished by its deadline ({total} bytes received)"),
                    ));
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let at = now();
        if let Some(previous) = last_data {
            let stall = at.saturating_duration_since(previous);
            if stall > max_stall {
                (max_stall, max_stall_at_byte) = (stall, total);
            }
        }
        last_data = Some(at);
        hasher.update(&buf[..n]);
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
    }
    Ok(TcpReceived {
        bytes: total,
        sha256: hex(&hasher.finalize()),
        max_stall,
        max_stall_at_byte,
        elapsed: now().saturating_duration_since(start),
    })
}

/// Streams `bytes` bytes of the seeded data over `stream` (already connected), half-closes, and
/// waits for the receiver to close, so that "sent" means "received". Gives up at `deadline`.
pub fn send(
    mut stream: TcpStream,
    bytes: u64,
    seed: u64,
    deadline: Deadline,
) -> io::Result<TcpSent> {
    stream.set_write_timeout(Some(STEP))?;
    stream.set_read_timeout(Some(STEP))?;
    let start = now();
    let mut source = SplitMix(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        source.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        let mut off = 0;
        while off < n {
            match stream.write(&buf[off..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => off += written,
                Err(e) if is_timeout(&e) => check(deadline, bytes - left + off as u64)?,
                Err(e) => return Err(e),
            }
        }
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => check(deadline, bytes)?,
            Err(e) => return Err(e),
        }
    }
    Ok(TcpSent {
        bytes,
        sha256: hex(&hasher.finalize()),
        elapsed: now().saturating_duration_since(start),
    })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn check(deadline: Deadline, sent: u64) -> io::Result<()> {
    if deadline.expired() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("transfer not finished by its deadline ({sent} bytes written)"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_over_loopback_has_the_same_sha256_at_both_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let deadline = Deadline::after(Duration::from_secs(30));
        let sink = TcpSink::start(listener, deadline).unwrap();
        let stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();

        let sent = send(stream, 3 * 1024 * 1024 + 5, 42, deadline).unwrap();
        let received = sink.finish().unwrap();

        assert_eq!(received.bytes, sent.bytes);
        assert_eq!(received.sha256, sent.sha256);
    }
}

//! [`QuicListener`]: the server side, many QUIC connections merged into one datagram queue.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jvpn_transport::{Listener, Remote, TransportError, TransportKind};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, Endpoint, EndpointConfig, Incoming, ServerConfig, TokioRuntime, VarInt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use crate::error::QuicError;
use crate::tls::{self, ServerCert};
use crate::{GUARANTEED_DATAGRAM_SIZE, QuicConfig, dgram, socket};

/// Above this many handshakes in progress, a client must first prove its address with a
/// stateless Retry, so that spoofed Initial packets cannot fill the connection slots.
const RETRY_ABOVE_HANDSHAKES: usize = 32;

/// Application close codes the server sends.
const CLOSE_IDLE: u32 = 1;
const CLOSE_SHUTDOWN: u32 = 0;

/// A server-side QUIC endpoint: one UDP socket, many connections, one datagram queue.
///
/// - Each accepted connection is a [`Remote`] `{ addr, conn }`: `addr` is the client's address
///   when the connection was accepted (QUIC may later migrate it; `conn` stays), `conn` an id from
///   a counter starting at 1, never reused while the listener lives.
/// - Datagrams from every connection are merged into one bounded queue read by
///   [`recv_from`](Listener::recv_from), which is **cancel-safe**: it waits on a tokio mutex and
///   a tokio `mpsc` receiver, and both give nothing up when their future is dropped.
/// - [`send_to`](Listener::send_to) finds the connection by id; a closed or unknown one is an
///   [`io::ErrorKind::NotConnected`] error. It never waits (see [`QuicLink`](crate::QuicLink)).
/// - Bounded state: at most [`QuicConfig::max_connections`] connections (handshakes included;
///   more are refused), a stateless Retry when many handshakes are in progress, and a connection
///   that sends no datagram for [`QuicConfig::idle_timeout`] is closed.
///
/// Dropping the listener closes every connection and the socket.
#[derive(Debug)]
pub struct QuicListener {
    endpoint: Endpoint,
    local_addr: SocketAddr,
    cert_sha256: [u8; 32],
    shared: Arc<Shared>,
    queue: tokio::sync::Mutex<mpsc::Receiver<(Bytes, Remote)>>,
    accept_task: JoinHandle<()>,
}

/// State shared with the accept task and the per-connection tasks.
#[derive(Debug)]
struct Shared {
    conns: Mutex<HashMap<u64, Connection>>,
    next_id: AtomicU64,
    handshaking: AtomicUsize,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Connection>> {
        // The map stays consistent whatever panicked while holding it (single inserts/removes).
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: u64) -> Option<Connection> {
        self.conns().get(&id).cloned()
    }
}

impl QuicListener {
    /// Binds `addr` (port 0 for an ephemeral one; `[::]` accepts IPv4 too where the OS allows)
    /// and starts accepting connections in a background task. Without a configured
    /// [`QuicConfig::server_cert`], a self-signed certificate for `names` is generated.
    ///
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    /// [`TransportError::Bind`] naming the address and the fix; [`TransportError::Other`] with a
    /// [`QuicError`] for an unusable certificate or an invalid [`QuicConfig`].
    pub fn bind(
        addr: SocketAddr,
        names: Vec<String>,
        config: &QuicConfig,
    ) -> Result<Self, TransportError> {
        let other = |e: QuicError| TransportError::Other(Box::new(e));
        let transport = config.transport_config(false).map_err(other)?;
        let cert = match &config.server_cert {
            Some(cert) => cert.clone(),
            None => ServerCert::self_signed(names).map_err(other)?,
        };
        let cert_sha256 = cert.sha256();
        let rustls_config = tls::server_config(&cert, &config.alpn).map_err(other)?;
        let crypto = QuicServerConfig::try_from(Arc::new(rustls_config))
            .map_err(|e| TransportError::Other(Box::new(e)))?;
        let max_connections = config.max_connections.max(1);
        let mut server_config = ServerConfig::with_crypto(Arc::new(crypto));
        server_config
            .transport_config(transport)
            .max_incoming(max_connections);

        let endpoint = Endpoint::new(
            EndpointConfig::default(),
            Some(server_config),
            socket::bind(addr)?,
            Arc::new(TokioRuntime),
        )?;
        let local_addr = endpoint.local_addr()?;
        let shared = Arc::new(Shared {
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            handshaking: AtomicUsize::new(0),
        });
        let (tx, rx) = mpsc::channel(config.listener_queue.max(1));
        let limits = Limits {
            permits: Arc::new(Semaphore::new(max_connections)),
            idle: config.idle_timeout,
            handshake: config.handshake_timeout(),
        };
        let accept_task = tokio::spawn(accept_loop(endpoint.clone(), shared.clone(), tx, limits));
        debug!(%local_addr, sha256 = %crate::error::hex(&cert_sha256), "QUIC listener started");
        Ok(Self {
            endpoint,
            local_addr,
            cert_sha256,
            shared,
            queue: tokio::sync::Mutex::new(rx),
            accept_task,
        })
    }

    /// The SHA-256 of the certificate this listener presents: what clients put in
    /// [`QuicConfig::pin_sha256`]. A self-signed certificate changes at every start.
    #[must_use]
    pub fn cert_sha256(&self) -> [u8; 32] {
        self.cert_sha256
    }

    /// The number of established connections.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.shared.conns().len()
    }

    /// The current largest datagram towards `to`, or `None` if that connection is gone. It
    /// follows the path MTU; [`Listener::max_datagram_size`] is the floor every connection
    /// supports.
    #[must_use]
    pub fn max_datagram_size_to(&self, to: Remote) -> Option<usize> {
        self.shared.get(to.conn)?.max_datagram_size()
    }

    fn connection(&self, to: Remote) -> io::Result<Connection> {
        self.shared.get(to.conn).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "no QUIC connection {} from {}: it closed or timed out; the client must \
                     reconnect",
                    to.conn, to.addr
                ),
            )
        })
    }
}

#[derive(Debug, Clone)]
struct Limits {
    permits: Arc<Semaphore>,
    idle: Duration,
    handshake: Duration,
}

/// Accepts connections until the endpoint closes; reaps finished connection tasks as it goes,
/// so the task set stays as large as the live connections.
async fn accept_loop(
    endpoint: Endpoint,
    shared: Arc<Shared>,
    tx: mpsc::Sender<(Bytes, Remote)>,
    limits: Limits,
) {
    let mut tasks = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let Some(incoming) = incoming else { break };
        let Ok(permit) = limits.permits.clone().try_acquire_owned() else {
            debug!(from = %incoming.remote_address(), "QUIC connection limit reached: refused");
            incoming.refuse();
            continue;
        };
        if !incoming.remote_address_validated()
            && shared.handshaking.load(Ordering::Relaxed) >= RETRY_ABOVE_HANDSHAKES
        {
            if let Err(error) = incoming.retry() {
                error.into_incoming().ignore();
            }
            continue;
        }
        tasks.spawn(serve(
            incoming,
            permit,
            shared.clone(),
            tx.clone(),
            limits.clone(),
        ));
    }
}

/// Removes a connection from the table when its task ends or is aborted.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.conns().remove(&self.id);
    }
}

/// Counts a handshake in progress, also when the task is aborted mid-way.
struct Handshaking<'a>(&'a AtomicUsize);

impl Drop for Handshaking<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Completes one handshake, then pumps the connection's datagrams into the shared queue.
async fn serve(
    incoming: Incoming,
    _permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
    tx: mpsc::Sender<(Bytes, Remote)>,
    limits: Limits,
) {
    let from = incoming.remote_address();
    shared.handshaking.fetch_add(1, Ordering::Relaxed);
    let counted = Handshaking(&shared.handshaking);
    let conn = match tokio::time::timeout(limits.handshake, incoming).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => {
            debug!(%from, %error, "QUIC handshake failed");
            return;
        }
        Err(_) => {
            debug!(%from, "QUIC handshake timed out");
            return;
        }
    };
    drop(counted);
    if conn.max_datagram_size().is_none() {
        conn.close(
            VarInt::from_u32(CLOSE_SHUTDOWN),
            b"DATAGRAM frames required",
        );
        return;
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let remote = Remote {
        addr: conn.remote_address(),
        conn: id,
    };
    shared.conns().insert(id, conn.clone());
    let _registered = Registered {
        shared: &shared,
        id,
    };
    debug!(?remote, "QUIC connection accepted");
    loop {
        match tokio::time::timeout(limits.idle, conn.read_datagram()).await {
            Ok(Ok(datagram)) => {
                if tx.send((datagram, remote)).await.is_err() {
                    break; // the listener is gone
                }
            }
            Ok(Err(error)) => {
                debug!(?remote, %error, "QUIC connection ended");
                break;
            }
            Err(_) => {
                debug!(
                    ?remote,
                    "QUIC connection sent no datagram within the idle timeout"
                );
                conn.close(VarInt::from_u32(CLOSE_IDLE), b"idle");
                break;
            }
        }
    }
}

#[async_trait]
impl Listener for QuicListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Quic
    }

    /// The floor every connection supports ([`GUARANTEED_DATAGRAM_SIZE`]); a connection's own
    /// limit is often higher ([`QuicListener::max_datagram_size_to`]).
    fn max_datagram_size(&self) -> usize {
        GUARANTEED_DATAGRAM_SIZE
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Remote)> {
        let (datagram, remote) = {
            let mut queue = self.queue.lock().await;
            queue.recv().await.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the QUIC listener stopped accepting connections: listen again",
                )
            })?
        };
        Ok((dgram::copy_out(&datagram, buf)?, remote))
    }

    async fn send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()> {
        dgram::send(&self.connection(to)?, datagram)
    }

    fn try_send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()> {
        dgram::try_send(&self.connection(to)?, datagram)
    }
}

impl Drop for QuicListener {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.endpoint
            .close(VarInt::from_u32(CLOSE_SHUTDOWN), b"listener closed");
    }
}

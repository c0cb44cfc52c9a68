//! [`WssListener`]: the server side. One accept task; per connection, one task through the
//! bounded pre-authentication phase (TLS, HTTP), then the reader and writer of [`crate::pump`].
//!
//! After the upgrade two rules keep a connection from holding its slot without carrying jvpn
//! traffic: its first binary message must arrive within [`WssConfig::first_datagram_deadline`],
//! and each later one within [`WssConfig::idle_timeout`] of the previous one. Each source IP may
//! hold at most [`WssConfig::max_connections_per_ip`] upgraded connections.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::SinkExt;
use jvpn_transport::{
    DEFAULT_WSS_PATH, Listener, Remote, TransportError, TransportKind, TransportUrl,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracing::debug;

use crate::http::{self, Route};
use crate::link::{aborted, copy_datagram, ws_config};
use crate::pump::{self, Expired, Inbound, LISTENER_IN_QUEUE, OUT_QUEUE, Out, ReadDeadlines};
use crate::{ServerCert, WssConfig, WssError, tls};

/// How long the accept loop pauses after an accept error (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long a connection refused after its upgrade may take to be sent its close frame.
const REFUSE_GRACE: Duration = Duration::from_secs(1);

/// A server-side WSS listener: a TCP listener whose every upgraded WebSocket connection is one
/// [`Remote`] (`conn` is a fresh id per connection, never 0).
///
/// `recv_from` is cancel-safe (see the crate docs). Dropping the listener stops accepting and
/// closes every connection.
#[derive(Debug)]
pub struct WssListener {
    local_addr: SocketAddr,
    cert_sha256: [u8; 32],
    max_datagram_size: usize,
    inbound: Mutex<mpsc::Receiver<(Remote, Bytes)>>,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// Counters of a [`WssListener`], since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Connections that completed the WebSocket upgrade and were admitted (those refused by
    /// `max_connections_per_ip` are in `refused_upgraded_per_ip` instead).
    pub upgraded: u64,
    /// Requests answered with the web page (another path, or no upgrade).
    pub pages_served: u64,
    /// Connections closed at once because their IP had too many in the pre-auth phase.
    pub refused_per_ip: u64,
    /// Connections closed at once because the listener had `max_connections` already.
    pub refused_global: u64,
    /// Connections closed because they did not finish TLS and the upgrade within the deadline.
    pub preauth_timeouts: u64,
    /// Connections whose TLS handshake or HTTP request failed.
    pub preauth_failures: u64,
    /// Datagrams dropped by `send_to` because the connection's queue was full (a slow reader).
    pub dropped_queue_full: u64,
    /// Connections closed right after the upgrade (code 1008) because their IP already held
    /// `max_connections_per_ip` upgraded connections.
    pub refused_upgraded_per_ip: u64,
    /// Upgraded connections closed because no binary message came within
    /// `first_datagram_deadline`.
    pub first_datagram_timeouts: u64,
    /// Upgraded connections closed because no binary message came for `idle_timeout`.
    pub idle_timeouts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    upgraded: AtomicU64,
    pages_served: AtomicU64,
    refused_per_ip: AtomicU64,
    refused_global: AtomicU64,
    preauth_timeouts: AtomicU64,
    preauth_failures: AtomicU64,
    dropped_queue_full: AtomicU64,
    refused_upgraded_per_ip: AtomicU64,
    first_datagram_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the listener and its connection tasks share.
#[derive(Debug)]
struct Shared {
    /// Writer queues of the established connections, by connection id.
    conns: StdMutex<HashMap<u64, mpsc::Sender<Out>>>,
    /// Connections in the pre-auth phase, per source IP (entries at 0 are removed).
    preauth: StdMutex<HashMap<IpAddr, usize>>,
    /// Upgraded connections, per source IP (entries at 0 are removed).
    upgraded: StdMutex<HashMap<IpAddr, usize>>,
    /// One permit per connection, in any phase.
    slots: Arc<Semaphore>,
    next_conn: AtomicU64,
    counters: Counters,
    max_preauth_per_ip: usize,
    max_upgraded_per_ip: usize,
    pre_auth_deadline: Duration,
    read_deadlines: ReadDeadlines,
    path: String,
    ws_config: WebSocketConfig,
}

fn lock<T>(mutex: &StdMutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever panicked while holding them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WssListener {
    /// Binds `url`'s host and port (port 0 for an ephemeral one) and starts accepting.
    pub(crate) async fn bind(
        url: &TransportUrl,
        config: &WssConfig,
    ) -> Result<Self, TransportError> {
        let cert = match &config.server_cert {
            Some(cert) => cert.clone(),
            None => ServerCert::self_signed(&self_signed_names(&url.host))?,
        };
        let cert_sha256 = cert.sha256().ok_or_else(|| WssError::ServerCert {
            reason: "the certificate chain is empty".into(),
        })?;
        let acceptor = TlsAcceptor::from(tls::server_config(cert)?);

        let addr = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|source| TransportError::Resolve {
                host: url.host.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| TransportError::Resolve {
                host: url.host.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "the name has no addresses"),
            })?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| TransportError::Bind { addr, source })?;
        let local_addr = tcp.local_addr()?;

        let shared = Arc::new(Shared {
            conns: StdMutex::default(),
            preauth: StdMutex::default(),
            upgraded: StdMutex::default(),
            slots: Arc::new(Semaphore::new(
                config.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            next_conn: AtomicU64::new(1),
            counters: Counters::default(),
            max_preauth_per_ip: config.max_preauth_per_ip,
            max_upgraded_per_ip: config.max_connections_per_ip,
            pre_auth_deadline: config.pre_auth_deadline,
            read_deadlines: ReadDeadlines {
                first_datagram: config.first_datagram_deadline,
                idle: config.idle_timeout,
            },
            path: url
                .path
                .clone()
                .unwrap_or_else(|| DEFAULT_WSS_PATH.to_owned()),
            ws_config: ws_config(config),
        });
        let (in_tx, in_rx) = mpsc::channel(LISTENER_IN_QUEUE);
        let accept = tokio::spawn(accept_loop(tcp, acceptor, Arc::clone(&shared), in_tx));
        Ok(Self {
            local_addr,
            cert_sha256,
            max_datagram_size: config.max_datagram_size(),
            inbound: Mutex::new(in_rx),
            shared,
            accept,
        })
    }

    /// The SHA-256 of the server's certificate: give it to clients as
    /// [`WssConfig::pin_sha256`] to pin it.
    #[must_use]
    pub fn cert_sha256(&self) -> [u8; 32] {
        self.cert_sha256
    }

    /// The listener's counters.
    #[must_use]
    pub fn stats(&self) -> ListenerStats {
        let c = &self.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ListenerStats {
            upgraded: get(&c.upgraded),
            pages_served: get(&c.pages_served),
            refused_per_ip: get(&c.refused_per_ip),
            refused_global: get(&c.refused_global),
            preauth_timeouts: get(&c.preauth_timeouts),
            preauth_failures: get(&c.preauth_failures),
            dropped_queue_full: get(&c.dropped_queue_full),
            refused_upgraded_per_ip: get(&c.refused_upgraded_per_ip),
            first_datagram_timeouts: get(&c.first_datagram_timeouts),
            idle_timeouts: get(&c.idle_timeouts),
        }
    }

    /// How many upgraded connections are open now.
    #[must_use]
    pub fn connections(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    fn queue(&self, to: Remote) -> io::Result<mpsc::Sender<Out>> {
        lock(&self.shared.conns)
            .get(&to.conn)
            .cloned()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("no open WSS connection {} from {}", to.conn, to.addr),
                )
            })
    }
}

impl Drop for WssListener {
    fn drop(&mut self) {
        // Connections end by themselves once the inbound channel is gone.
        self.accept.abort();
    }
}

/// Names for the self-signed certificate: the listening host if it is a name, else a generic one.
fn self_signed_names(host: &str) -> Vec<String> {
    match host.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => vec!["localhost".into(), host.to_owned()],
        Ok(_) => vec!["localhost".into()],
        Err(_) => vec![host.to_owned()],
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<(Remote, Bytes)>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    debug!(%error, "WSS accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = inbound.closed() => return,
        };
        // Caps are checked here, before any task or buffer exists for the connection; a refused
        // connection is dropped, which closes it.
        let Ok(slot) = Arc::clone(&shared.slots).try_acquire_owned() else {
            bump(&shared.counters.refused_global);
            continue;
        };
        let Some(preauth) = IpSlot::take(&shared, peer.ip(), IpTable::Preauth) else {
            bump(&shared.counters.refused_per_ip);
            continue;
        };
        tokio::spawn(serve(
            stream,
            peer,
            acceptor.clone(),
            Arc::clone(&shared),
            inbound.clone(),
            (slot, preauth),
        ));
    }
}

/// Which per-IP count an [`IpSlot`] is part of.
#[derive(Debug, Clone, Copy)]
enum IpTable {
    /// Connections before the end of the upgrade (`max_preauth_per_ip`).
    Preauth,
    /// Upgraded connections (`max_connections_per_ip`).
    Upgraded,
}

impl IpTable {
    fn of(self, shared: &Shared) -> (&StdMutex<HashMap<IpAddr, usize>>, usize) {
        match self {
            Self::Preauth => (&shared.preauth, shared.max_preauth_per_ip),
            Self::Upgraded => (&shared.upgraded, shared.max_upgraded_per_ip),
        }
    }
}

/// One connection counted against its IP in one [`IpTable`] until dropped.
#[derive(Debug)]
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
    table: IpTable,
}

impl IpSlot {
    /// A slot, or `None` when `ip` already holds the table's cap.
    fn take(shared: &Arc<Shared>, ip: IpAddr, table: IpTable) -> Option<Self> {
        let (map, cap) = table.of(shared);
        let mut counts = lock(map);
        let count = counts.entry(ip).or_insert(0);
        if *count >= cap {
            if *count == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(Self {
            shared: Arc::clone(shared),
            ip,
            table,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let (map, _) = self.table.of(&self.shared);
        let mut counts = lock(map);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Removes an established connection from the listener when its reader ends.
#[derive(Debug)]
struct ConnGuard {
    shared: Arc<Shared>,
    conn: u64,
    _slot: OwnedSemaphorePermit,
    _per_ip: IpSlot,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.conn);
    }
}

type ServerTls = tokio_rustls::server::TlsStream<TcpStream>;

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<(Remote, Bytes)>,
    (slot, preauth): (OwnedSemaphorePermit, IpSlot),
) {
    // Pinned outside the timeout so that a timed-out connection is counted before it is closed.
    let mut phase = Box::pin(preauth_phase(stream, acceptor, &shared));
    let result = tokio::time::timeout(shared.pre_auth_deadline, &mut phase).await;
    match &result {
        Err(_) => bump(&shared.counters.preauth_timeouts),
        Ok(Err(_)) => bump(&shared.counters.preauth_failures),
        Ok(Ok(_)) => {}
    }
    drop(phase);
    drop(preauth);
    let mut ws = match result {
        Ok(Ok(Some(ws))) => ws,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            debug!(%peer, %error, "WSS connection failed before the upgrade");
            return;
        }
        Err(_) => {
            debug!(%peer, "WSS connection dropped at the pre-auth deadline");
            return;
        }
    };

    let Some(per_ip) = IpSlot::take(&shared, peer.ip(), IpTable::Upgraded) else {
        bump(&shared.counters.refused_upgraded_per_ip);
        debug!(%peer, "WSS connection refused: its IP holds too many upgraded connections");
        let refusal = Message::Close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "".into(),
        }));
        // Bounded: a peer that never reads must not keep the global slot held here.
        let _ = tokio::time::timeout(REFUSE_GRACE, ws.send(refusal)).await;
        return;
    };

    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let remote = Remote { addr: peer, conn };
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    lock(&shared.conns).insert(conn, out_tx);
    bump(&shared.counters.upgraded);
    let guard = ConnGuard {
        shared: Arc::clone(&shared),
        conn,
        _slot: slot,
        _per_ip: per_ip,
    };
    pump::run(
        ws,
        Inbound::Listener {
            tx: inbound,
            remote,
        },
        out_rx,
        guard,
        Some(shared.read_deadlines),
        move |expired| match expired {
            Expired::FirstDatagram => bump(&shared.counters.first_datagram_timeouts),
            Expired::Idle => bump(&shared.counters.idle_timeouts),
        },
    )
    .await;
}

/// TLS, then one HTTP request: the upgraded WebSocket, or `None` once the page was served.
async fn preauth_phase(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    shared: &Shared,
) -> io::Result<Option<WebSocketStream<ServerTls>>> {
    stream.set_nodelay(true)?;
    let mut tls = acceptor.accept(stream).await?;
    let mut buf = Vec::with_capacity(1024);
    let head_len = http::read_head(&mut tls, &mut buf).await?;
    let answer = match http::classify(&buf[..head_len], &shared.path) {
        Route::Upgrade { accept } => {
            tls.write_all(http::switching_protocols(&accept).as_bytes())
                .await?;
            tls.flush().await?;
            let early = buf.split_off(head_len);
            let ws = WebSocketStream::from_partially_read(
                tls,
                early,
                Role::Server,
                Some(shared.ws_config),
            )
            .await;
            return Ok(Some(ws));
        }
        Route::Page => {
            bump(&shared.counters.pages_served);
            http::page()
        }
        Route::NotHttp => http::BAD_REQUEST.to_owned(),
    };
    tls.write_all(answer.as_bytes()).await?;
    tls.shutdown().await?;
    Ok(None)
}

#[async_trait]
impl Listener for WssListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Wss
    }

    fn max_datagram_size(&self) -> usize {
        self.max_datagram_size
    }

    /// Cancel-safe: waits on the channel every connection's reader task fills.
    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Remote)> {
        let mut inbound = self.inbound.lock().await;
        match inbound.recv().await {
            Some((remote, datagram)) => Ok((copy_datagram(&datagram, buf)?, remote)),
            // The accept task holds a sender until the listener is dropped.
            None => Err(aborted()),
        }
    }

    /// Never waits: queues the datagram for `to`'s writer, or drops it (counted in
    /// [`ListenerStats::dropped_queue_full`]) when that connection's queue is full.
    async fn send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()> {
        self.try_send_to(datagram, to)
    }

    fn try_send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()> {
        if datagram.len() > self.max_datagram_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {}-byte datagram exceeds the WSS maximum of {} bytes",
                    datagram.len(),
                    self.max_datagram_size
                ),
            ));
        }
        let queue = self.queue(to)?;
        match queue.try_send(Out::Data(Bytes::copy_from_slice(datagram))) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.shared.counters.dropped_queue_full);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(aborted()),
        }
    }
}

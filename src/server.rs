//! The server endpoint: many sessions over one or more listeners.
//!
//! One reader task per listener hands datagrams (in recycled buffers) to a single driver task,
//! which owns the sans-IO [`Endpoint`]. The driver names each (listener, remote) pair with a
//! [`PathId`]; pairs that never get past the endpoint's checks, and pairs answered
//! statelessly (a cookie reply under load), are forgotten right after the next flush (which may
//! still carry the endpoint's cookie reply or stateless reset to them), so spoofed sources
//! cannot grow the table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use jvpn_session::{
    Endpoint, EndpointInbound, Event, PathId, PeerConfig, Policy, ServerConfig as CoreConfig,
    SessionHandle,
};
use jvpn_transport::{LinkInfo, Listener, Remote};
use jvpn_wire::keys::{PublicKey, StaticSecret};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock;
use crate::driver::{self, Command, InboundQueue, Status};
use crate::error::{SendError, ServerError};
use crate::tunnel::{
    EndpointStatus, Route, ServerTunSide, SessionStatus, StatusSource, TunnelStatus,
};

/// How many (listener, remote) pairs the server remembers at most; beyond it, new remotes are
/// dropped until sessions end. Every live session needs one.
const MAX_PATHS: usize = 1 << 16;

/// Buffers circulating between the reader tasks and the driver.
const RECV_BUFFERS: usize = 256;

/// What a server needs to serve its peers.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The server's static secret key.
    pub key: StaticSecret,
    /// The clients allowed to connect.
    pub peers: Vec<PeerConfig>,
    /// Timers, windows and budgets.
    pub policy: Policy,
    /// Inner packets buffered towards the application before new ones are dropped (and counted).
    pub inbound_queue: usize,
}

impl ServerOptions {
    /// Options with the default policy and a 4096-packet inbound queue.
    pub fn new(key: StaticSecret, peers: Vec<PeerConfig>) -> Self {
        Self {
            key,
            peers,
            policy: Policy::default(),
            inbound_queue: 4096,
        }
    }
}

/// An inner packet from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The session it arrived on.
    pub session: SessionHandle,
    /// The client's static public key.
    pub peer: PublicKey,
    /// The inner packet.
    pub packet: Vec<u8>,
}

/// A running server. Dropping it stops the drivers without CLOSE; call [`Server::shutdown`] to
/// end every session cleanly.
#[derive(Debug)]
pub struct Server {
    commands: mpsc::Sender<Command>,
    status: mpsc::Sender<oneshot::Sender<TunnelStatus>>,
    inbound: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    events: broadcast::Sender<(SessionHandle, Event)>,
    local_addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts serving on `listeners`; inner packets reach the application through
    /// [`Server::recv`].
    pub async fn start(
        options: ServerOptions,
        listeners: Vec<Box<dyn Listener>>,
    ) -> Result<Server, ServerError> {
        let (inbound_tx, inbound_rx) = mpsc::channel(options.inbound_queue.max(1));
        let mut server = Self::start_with(
            options,
            listeners,
            ServerLocal::Channel(InboundQueue::new(inbound_tx)),
        )
        .await?;
        server.inbound = tokio::sync::Mutex::new(inbound_rx);
        Ok(server)
    }

    /// Starts serving with `local` as the source and sink of inner packets.
    pub(crate) async fn start_with(
        options: ServerOptions,
        listeners: Vec<Box<dyn Listener>>,
        local: ServerLocal,
    ) -> Result<Server, ServerError> {
        if listeners.is_empty() {
            return Err(ServerError::NoListener);
        }
        options.policy.validate().map_err(ServerError::Policy)?;
        let config = CoreConfig {
            local_key: options.key.clone(),
            peers: options.peers.clone(),
            policy: options.policy.clone(),
            clock: clock::anchor(),
            offered_transports: driver::PROLOGUE_TRANSPORTS.to_vec(),
            cluster: Default::default(),
        };
        let endpoint = Endpoint::new(config, driver::rng()).map_err(ServerError::Config)?;
        let listeners: Vec<Arc<dyn Listener>> = listeners.into_iter().map(Arc::from).collect();
        let local_addrs = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();

        let (datagrams_tx, datagrams) = mpsc::channel(RECV_BUFFERS);
        let (recycle, recycle_rx) = driver::buffer_pool(RECV_BUFFERS);
        let mut tasks = Vec::new();
        for (index, listener) in listeners.iter().enumerate() {
            tasks.push(tokio::spawn(read_listener(
                index,
                Arc::clone(listener),
                datagrams_tx.clone(),
                recycle_rx.clone(),
            )));
        }
        drop(datagrams_tx);

        let (commands, command_rx) = mpsc::channel(1024);
        let (status, status_rx) = mpsc::channel(8);
        let (events, _) = broadcast::channel(4096);
        let state = ServerDriver {
            endpoint,
            listeners,
            datagrams,
            recycle,
            commands: command_rx,
            status: status_rx,
            local,
            events: events.clone(),
            paths: PathTable::default(),
            forget_after_flush: Vec::new(),
        };
        tasks.push(tokio::spawn(state.run()));
        // The application side of the datagram API; `start` replaces it with a live one.
        let (_, idle) = mpsc::channel(1);
        Ok(Server {
            commands,
            status,
            inbound: tokio::sync::Mutex::new(idle),
            events,
            local_addrs,
            tasks,
        })
    }

    /// The addresses the listeners are bound to (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The next inner packet from any client; `None` once the server has stopped.
    pub async fn recv(&self) -> Option<Incoming> {
        self.inbound.lock().await.recv().await
    }

    /// Queues one inner packet for the client of `session`.
    pub async fn send(&self, session: SessionHandle, inner: &[u8]) -> Result<(), SendError> {
        let (reply, result) = oneshot::channel();
        self.commands
            .send(Command::Send {
                session: Some(session),
                packet: inner.to_vec(),
                reply,
            })
            .await
            .map_err(|_| SendError::Stopped)?;
        result.await.map_err(|_| SendError::Stopped)?
    }

    /// Session events from every session, as they happen.
    pub fn events(&self) -> broadcast::Receiver<(SessionHandle, Event)> {
        self.events.subscribe()
    }

    /// A snapshot of one session, or `None` if it no longer exists.
    pub async fn status(&self, session: SessionHandle) -> Result<Option<Status>, ServerError> {
        let (reply, status) = oneshot::channel();
        self.commands
            .send(Command::Status {
                session: Some(session),
                reply,
            })
            .await
            .map_err(|_| ServerError::DriverStopped)?;
        status.await.map_err(|_| ServerError::DriverStopped)
    }

    /// A handle for status snapshots of every session (`jvpn status`).
    pub fn status_source(&self) -> StatusSource {
        StatusSource::driver(self.status.clone())
    }

    /// Sends CLOSE on every session, flushes, and stops.
    pub async fn shutdown(mut self) {
        driver::close_all(&self.commands).await;
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

type Datagram = (usize, Remote, Vec<u8>, usize);

async fn read_listener(
    index: usize,
    listener: Arc<dyn Listener>,
    out: mpsc::Sender<Datagram>,
    recycle: driver::BufferPool,
) {
    loop {
        let mut buf = driver::take_buffer(&recycle);
        match listener.recv_from(&mut buf).await {
            Ok((len, remote)) => {
                if out.send((index, remote, buf, len)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(%error, listener = index, "listener receive error");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Two-way map between (listener, remote) pairs and path ids.
#[derive(Debug, Default)]
struct PathTable {
    by_target: HashMap<(usize, Remote), PathId>,
    by_path: HashMap<PathId, (usize, Remote)>,
    next: u32,
}

impl PathTable {
    /// Returns the path id and whether it was created now.
    fn get_or_insert(&mut self, target: (usize, Remote)) -> Option<(PathId, bool)> {
        if let Some(path) = self.by_target.get(&target) {
            return Some((*path, false));
        }
        if self.by_target.len() >= MAX_PATHS {
            return None;
        }
        // After a wrap, never hand out an id a live pair still holds.
        while self.by_path.contains_key(&PathId(self.next)) {
            self.next = self.next.wrapping_add(1);
        }
        let path = PathId(self.next);
        self.next = self.next.wrapping_add(1);
        self.by_target.insert(target, path);
        self.by_path.insert(path, target);
        Some((path, true))
    }

    fn forget(&mut self, path: PathId) {
        if let Some(target) = self.by_path.remove(&path) {
            self.by_target.remove(&target);
        }
    }

    fn target(&self, path: PathId) -> Option<(usize, Remote)> {
        self.by_path.get(&path).copied()
    }
}

struct ServerDriver {
    endpoint: Endpoint,
    listeners: Vec<Arc<dyn Listener>>,
    datagrams: mpsc::Receiver<Datagram>,
    recycle: mpsc::Sender<Vec<u8>>,
    commands: mpsc::Receiver<Command>,
    status: mpsc::Receiver<oneshot::Sender<TunnelStatus>>,
    local: ServerLocal,
    events: broadcast::Sender<(SessionHandle, Event)>,
    paths: PathTable,
    /// Pairs created by a datagram the endpoint dropped or answered statelessly: forgotten
    /// after the next flush, which may carry a cookie reply or a stateless reset
    /// (docs/protocol.md §14) to them.
    forget_after_flush: Vec<PathId>,
}

/// Where the server's inner packets come from and go to.
#[derive(Debug)]
pub(crate) enum ServerLocal {
    /// The application, through [`Server::recv`] / [`Server::send`].
    Channel(InboundQueue<Incoming>),
    /// A TUN device, with routing by allowed IPs.
    Tun(Box<ServerTunSide>),
}

impl ServerLocal {
    async fn recv(&self, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        match self {
            ServerLocal::Channel(_) => std::future::pending().await,
            ServerLocal::Tun(tun) => Some(tun.recv(buf).await),
        }
    }

    fn dropped(&self) -> u64 {
        match self {
            ServerLocal::Channel(queue) => queue.dropped(),
            ServerLocal::Tun(tun) => {
                let (a, b) = tun.drops();
                a + b
            }
        }
    }
}

impl ServerDriver {
    async fn run(mut self) {
        let mut tx = Vec::with_capacity(driver::MAX_DATAGRAM);
        let mut alarm = driver::Alarm::new();
        let mut local_buf = vec![0u8; driver::MAX_DATAGRAM];
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        loop {
            self.flush(&mut tx).await;
            if shutdown.is_some() && self.endpoint.sessions().next().is_none() {
                break;
            }
            alarm.arm(self.endpoint.poll_timeout());
            tokio::select! {
                datagram = self.datagrams.recv() => match datagram {
                    Some((index, remote, mut buf, len)) => {
                        self.on_datagram(index, remote, &mut buf[..len]).await;
                        let _ = self.recycle.try_send(buf);
                    }
                    None => break,
                },
                read = self.local.recv(&mut local_buf) => match read {
                    Some(Ok(len)) => {
                        self.on_tun_packet(&local_buf[..len]);
                        // Drain the rest of a burst before flushing, one loop turn for all.
                        for _ in 1..driver::LOCAL_BURST {
                            let ServerLocal::Tun(tun) = &self.local else { break };
                            let Some(len) = tun.try_recv(&mut local_buf) else { break };
                            self.on_tun_packet(&local_buf[..len]);
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "TUN read failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    None => {}
                },
                Some(reply) = self.status.recv() => {
                    let _ = reply.send(self.tunnel_status());
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command, &mut shutdown),
                    None => self.close_all(),
                },
                () = alarm.fired() => {
                    self.endpoint.handle_timeout(clock::now());
                }
            }
        }
        self.flush(&mut tx).await;
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    async fn on_datagram(&mut self, index: usize, remote: Remote, buf: &mut [u8]) {
        let Some((path, created)) = self.paths.get_or_insert((index, remote)) else {
            tracing::debug!(?remote, "path table full; datagram dropped");
            return;
        };
        // The cookie defence binds cookies and per-source buckets to the remote address.
        let source = source_bytes(remote.addr);
        match self
            .endpoint
            .handle_datagram_from(path, &source, buf, clock::now())
        {
            EndpointInbound::Inner { session, range } => {
                let Some(peer) = self.endpoint.session(session).map(|s| *s.peer_static()) else {
                    return;
                };
                let packet = &buf[range];
                match &mut self.local {
                    ServerLocal::Channel(queue) => queue.push_item(Incoming {
                        session,
                        peer,
                        packet: packet.to_vec(),
                    }),
                    ServerLocal::Tun(tun) => match tun.route_from_peer(&peer, packet) {
                        Route::Tun => tun.write(packet).await,
                        Route::Session(to) => {
                            // A full queue drops the packet, as a full NIC ring would.
                            let _ = self.endpoint.send(to, packet, clock::now());
                        }
                        Route::Drop => {}
                    },
                }
            }
            EndpointInbound::Dropped(_) | EndpointInbound::AnsweredStatelessly if created => {
                self.forget_after_flush.push(path);
            }
            _ => {}
        }
    }

    fn on_tun_packet(&mut self, packet: &[u8]) {
        if let ServerLocal::Tun(tun) = &mut self.local
            && let Route::Session(to) = tun.route_from_tun(packet)
        {
            let _ = self.endpoint.send(to, packet, clock::now());
        }
    }

    fn tunnel_status(&self) -> TunnelStatus {
        let now = clock::now();
        let sessions = self
            .endpoint
            .sessions()
            .map(|(_, session)| {
                let link = session.bound_path().and_then(|p| self.link_info(p));
                let sid = session.session_id().map(|s| s.to_string());
                let history = match &self.local {
                    ServerLocal::Tun(tun) => tun.history(sid.as_deref()),
                    ServerLocal::Channel(_) => Vec::new(),
                };
                SessionStatus::of(session, link.as_ref(), None, history, now)
            })
            .collect();
        let (unknown_destination_drops, source_not_allowed_drops) = match &self.local {
            ServerLocal::Tun(tun) => tun.drops(),
            ServerLocal::Channel(_) => (0, 0),
        };
        TunnelStatus {
            schema_version: crate::tunnel::STATUS_SCHEMA_VERSION,
            role: "server".into(),
            tun: match &self.local {
                ServerLocal::Tun(tun) => Some(tun.status()),
                ServerLocal::Channel(_) => None,
            },
            sessions,
            unknown_destination_drops,
            source_not_allowed_drops,
            reconnects: 0,
            endpoint: Some(self.endpoint_status()),
        }
    }

    fn endpoint_status(&self) -> EndpointStatus {
        let c = self.endpoint.counters();
        EndpointStatus {
            sessions_created: c.sessions_created,
            dh_started: c.dh_started,
            reattach_dh_started: c.reattach.wire.dh_started,
            mac1_rejected: c.mac1_rejected,
            noise_failed: c.noise_failed,
            init_replays: c.dos.init_replays,
            cookie_replies: c.dos.cookie_replies,
            cookie_reply_bytes: c.dos.cookie_reply_bytes,
            cookie_request_bytes: c.dos.cookie_request_bytes,
            rate_limited: c.dos.rate_limited,
            pending_cap: c.dos.pending_cap,
            amplification_withheld: c.dos.amplification_withheld,
            paths: self.paths.by_path.len() as u64,
        }
    }

    fn link_info(&self, path: PathId) -> Option<LinkInfo> {
        let (index, remote) = self.paths.target(path)?;
        let listener = self.listeners.get(index)?;
        Some(LinkInfo {
            kind: listener.kind(),
            local_addr: listener.local_addr().ok(),
            remote_addr: Some(remote.addr),
            max_datagram_size: listener.max_datagram_size(),
            reliable: false,
        })
    }

    fn on_command(&mut self, command: Command, shutdown: &mut Option<oneshot::Sender<()>>) {
        let now = clock::now();
        match command {
            Command::Send {
                session: Some(session),
                packet,
                reply,
            } => {
                let result = if self.endpoint.session(session).is_some() {
                    self.endpoint
                        .send(session, &packet, now)
                        .map_err(SendError::from)
                } else {
                    Err(SendError::UnknownSession)
                };
                let _ = reply.send(result);
            }
            Command::Send { reply, .. } => {
                let _ = reply.send(Err(SendError::UnknownSession));
            }
            Command::Status {
                session: Some(session),
                reply,
            } => {
                let status = self
                    .endpoint
                    .session(session)
                    .map(|s| Status::of(s, self.local.dropped()));
                let _ = reply.send(status);
            }
            Command::Status { reply, .. } => {
                let _ = reply.send(None);
            }
            Command::Close {
                session: Some(session),
                reply,
            } => {
                self.endpoint.close(session, now);
                let _ = reply.send(());
            }
            Command::Close {
                session: None,
                reply,
            } => {
                self.close_all();
                *shutdown = Some(reply);
            }
        }
    }

    fn close_all(&mut self) {
        let now = clock::now();
        let handles: Vec<SessionHandle> = self.endpoint.sessions().map(|(h, _)| h).collect();
        for handle in handles {
            self.endpoint.close(handle, now);
        }
    }

    async fn flush(&mut self, tx: &mut Vec<u8>) {
        while let Some(transmit) = self.endpoint.poll_transmit(clock::now(), tx) {
            let Some((index, remote)) = self.paths.target(transmit.path) else {
                continue;
            };
            if let Some(listener) = self.listeners.get(index)
                && let Err(error) = listener.send_to(&tx[..transmit.len], remote).await
            {
                tracing::debug!(%error, ?remote, "listener send error");
            }
        }
        for path in self.forget_after_flush.drain(..) {
            self.paths.forget(path);
        }
        while let Some((handle, mut event)) = self.endpoint.poll_event() {
            let session = self.endpoint.session(handle);
            if let Event::Transition(record) = &mut event
                && record.transport.is_none()
            {
                // The core names paths, not transports; the audit line says which.
                record.transport = record
                    .path
                    .and_then(|p| self.link_info(p))
                    .map(|info| info.kind.to_string());
            }
            let peer = session.map(|s| *s.peer_static());
            if let Event::Transition(record) = &event {
                tracing::info!(
                    session = %handle, from = %record.from, to = %record.to,
                    reason = %record.reason, version = record.version, epoch = record.epoch,
                    "session transition"
                );
                if record.to == jvpn_session::State::Terminated
                    && let Some(path) = session.and_then(|s| s.bound_path())
                {
                    self.paths.forget(path);
                }
            }
            if let ServerLocal::Tun(tun) = &mut self.local {
                tun.on_event(handle, peer, &event);
            }
            let _ = self.events.send((handle, event));
        }
    }
}

/// The remote's address as opaque bytes for the endpoint's cookie defence: IP then port.
fn source_bytes(addr: std::net::SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

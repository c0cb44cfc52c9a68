//! The client endpoint: one session driven over one link.
//!
//! A driver task owns the sans-IO [`Session`] and the link. It waits on a datagram from the link,
//! an inner packet from the local side (the TUN device, for a tunnel), a command from the handle,
//! or the session's single timer; after each input it flushes transmits and events, then re-arms
//! the one sleep. The local side is either a channel to the application (the datagram API,
//! [`Client`]) or a TUN device ([`crate::tunnel::ClientTunnel`]).

use std::sync::Arc;
use std::time::Duration;

use jvpn_session::{ClientConfig as CoreConfig, Event, Inbound, PathId, Policy, Session, State};
use jvpn_transport::{Link, LinkInfo, Transport, TransportUrl};
use jvpn_wire::keys::{Psk, PublicKey, StaticSecret};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::clock;
use crate::driver::{self, Command, InboundQueue, Local, StateView, Status};
use crate::error::{ClientError, SendError};
use crate::tunnel::{SessionStatus, TunnelStatus};

/// What a client needs to reach a server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The client's static secret key (its device identity).
    pub key: StaticSecret,
    /// The server's static public key.
    pub server_key: PublicKey,
    /// Optional pre-shared key mixed into the handshake (all zeros when unused).
    pub psk: Psk,
    /// Timers, windows and budgets.
    pub policy: Policy,
    /// Where the server listens.
    pub server: TransportUrl,
    /// Inner packets buffered towards the application before new ones are dropped (and counted).
    pub inbound_queue: usize,
}

impl ClientOptions {
    /// Options with the default policy, no pre-shared key and a 1024-packet inbound queue.
    pub fn new(key: StaticSecret, server_key: PublicKey, server: TransportUrl) -> Self {
        Self {
            key,
            server_key,
            psk: Psk::zero(),
            policy: Policy::default(),
            server,
            inbound_queue: 1024,
        }
    }
}

/// A running client session. Dropping it stops the driver without a CLOSE; call
/// [`Client::close`] to end the session cleanly.
#[derive(Debug)]
pub struct Client {
    handle: DriverHandle,
    inbound: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
}

impl Client {
    /// Opens a link to `options.server` with `transport` and starts the handshake in the
    /// background. Use [`Client::wait_attached`] to wait until the session is up.
    pub async fn connect(
        options: ClientOptions,
        transport: Arc<dyn Transport>,
    ) -> Result<Client, ClientError> {
        let (inbound_tx, inbound_rx) = mpsc::channel(options.inbound_queue.max(1));
        let local = Local::Channel(InboundQueue::new(inbound_tx));
        let link = open_link(&options, transport.as_ref()).await?;
        let handle = spawn_driver(&options, link, local, false)?;
        Ok(Client {
            handle,
            inbound: tokio::sync::Mutex::new(inbound_rx),
        })
    }

    /// Waits until the session is ATTACHED, or fails if it terminates or `timeout` passes.
    pub async fn wait_attached(&self, timeout: Duration) -> Result<StateView, ClientError> {
        self.handle
            .wait_for(timeout, |v| v.state == State::Attached)
            .await
    }

    /// Queues one inner packet for the server.
    pub async fn send(&self, inner: &[u8]) -> Result<(), SendError> {
        let (reply, result) = oneshot::channel();
        self.handle
            .commands
            .send(Command::Send {
                session: None,
                packet: inner.to_vec(),
                reply,
            })
            .await
            .map_err(|_| SendError::Stopped)?;
        result.await.map_err(|_| SendError::Stopped)?
    }

    /// The next inner packet from the server; `None` once the session has ended.
    pub async fn recv(&self) -> Option<Vec<u8>> {
        self.inbound.lock().await.recv().await
    }

    /// Session events (state transitions with reasons, handshakes), as they happen.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.handle.events.subscribe()
    }

    /// The session's state, version, epoch and last reason, as of the last transition.
    pub fn state(&self) -> StateView {
        self.handle.view.borrow().clone()
    }

    /// A snapshot of the session's state and counters, taken by the driver.
    pub async fn status(&self) -> Result<Status, ClientError> {
        let (reply, status) = oneshot::channel();
        self.handle
            .commands
            .send(Command::Status {
                session: None,
                reply,
            })
            .await
            .map_err(|_| ClientError::DriverStopped)?;
        status
            .await
            .map_err(|_| ClientError::DriverStopped)?
            .ok_or(ClientError::DriverStopped)
    }

    /// Sends CLOSE, waits for TERMINATED (Closed) and stops the driver.
    pub async fn close(mut self) -> Result<StateView, ClientError> {
        self.handle.close().await
    }
}

/// The handle side of a client driver task: commands in, views and events out.
#[derive(Debug)]
pub(crate) struct DriverHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) status: mpsc::Sender<oneshot::Sender<TunnelStatus>>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) view: watch::Receiver<StateView>,
    driver: Option<JoinHandle<()>>,
}

impl DriverHandle {
    /// Waits until `ready(view)` holds, or fails when the session ends for good or `timeout`
    /// passes.
    pub(crate) async fn wait_for(
        &self,
        timeout: Duration,
        ready: impl Fn(&StateView) -> bool,
    ) -> Result<StateView, ClientError> {
        let mut view = self.view.clone();
        let wait = async {
            loop {
                let current = view.borrow_and_update().clone();
                if ready(&current) {
                    return Ok(current);
                }
                if current.state == State::Terminated && current.finished {
                    return Err(ClientError::Terminated {
                        reason: current.last_reason,
                    });
                }
                if view.changed().await.is_err() {
                    return Err(ClientError::DriverStopped);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ClientError::AttachTimeout { waited: timeout })?
    }

    /// Resolves once the session has ended for good.
    pub(crate) async fn wait_finished(&self) -> StateView {
        let mut view = self.view.clone();
        loop {
            let current = view.borrow_and_update().clone();
            if current.finished || view.changed().await.is_err() {
                return self.view.borrow().clone();
            }
        }
    }

    pub(crate) async fn close(&mut self) -> Result<StateView, ClientError> {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Close {
                session: None,
                reply,
            })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
        if let Some(driver) = self.driver.take() {
            driver.await.map_err(|_| ClientError::DriverStopped)?;
        }
        Ok(self.view.borrow().clone())
    }
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

/// Opens a link to the server named in `options`.
pub(crate) async fn open_link(
    options: &ClientOptions,
    transport: &dyn Transport,
) -> Result<Arc<dyn Link>, ClientError> {
    options.policy.validate().map_err(ClientError::Policy)?;
    let link =
        transport
            .connect(&options.server)
            .await
            .map_err(|source| ClientError::Transport {
                url: options.server.to_string(),
                source: Box::new(source),
            })?;
    Ok(Arc::from(link))
}

/// Starts the session on `link` and spawns its driver. With `reconnect`, a session the server
/// has lost (it answered with another session id, e.g. after a restart) is replaced by a new
/// one (a new BIRTH) instead of ending the driver.
pub(crate) fn spawn_driver(
    options: &ClientOptions,
    link: Arc<dyn Link>,
    local: Local,
    reconnect: bool,
) -> Result<DriverHandle, ClientError> {
    let info = link.info();
    let config = CoreConfig {
        local_key: options.key.clone(),
        server_key: options.server_key,
        psk: options.psk.clone(),
        policy: options.policy.clone(),
        clock: clock::anchor(),
        offered_transports: info.kind.to_string().into_bytes(),
    };
    let path = PathId(0);
    let session = Session::connect(config.clone(), path, clock::now(), driver::rng())
        .map_err(ClientError::Session)?;

    let (commands, command_rx) = mpsc::channel(256);
    let (status, status_rx) = mpsc::channel(8);
    let (events, _) = broadcast::channel(1024);
    let (view_tx, view) = watch::channel(StateView::of(&session));
    let state = ClientDriver {
        session,
        config: reconnect.then_some(config),
        link,
        info,
        path,
        commands: command_rx,
        status: status_rx,
        local,
        events: events.clone(),
        view: view_tx,
        probe_rtt: None,
        ready: false,
        reconnects: 0,
    };
    let driver = tokio::spawn(state.run());
    Ok(DriverHandle {
        commands,
        status,
        events,
        view,
        driver: Some(driver),
    })
}

struct ClientDriver {
    session: Session,
    /// Set when a lost session is to be replaced by a new BIRTH.
    config: Option<CoreConfig>,
    link: Arc<dyn Link>,
    info: LinkInfo,
    path: PathId,
    commands: mpsc::Receiver<Command>,
    status: mpsc::Receiver<oneshot::Sender<TunnelStatus>>,
    local: Local,
    events: broadcast::Sender<Event>,
    view: watch::Sender<StateView>,
    probe_rtt: Option<Duration>,
    /// An inner round trip (PROBE / PROBE_ACK) succeeded on the current binding.
    ready: bool,
    reconnects: u64,
}

impl ClientDriver {
    async fn run(mut self) {
        let mut rx = vec![0u8; driver::MAX_DATAGRAM];
        let mut local_buf = vec![0u8; driver::MAX_DATAGRAM];
        let mut tx = Vec::with_capacity(driver::MAX_DATAGRAM);
        let mut alarm = driver::Alarm::new();
        let mut close_waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut closing = false;
        loop {
            self.flush(&mut tx).await;
            if self.session.state() == State::Terminated {
                if !closing && self.restart() {
                    continue;
                }
                break;
            }
            alarm.arm(self.session.poll_timeout());
            tokio::select! {
                received = self.link.recv(&mut rx) => match received {
                    Ok(len) => {
                        let now = clock::now();
                        if let Inbound::Inner(range) =
                            self.session.handle_datagram(self.path, &mut rx[..len], now)
                        {
                            self.local.deliver(&rx[range]).await;
                        }
                    }
                    Err(error) => {
                        // The link may recover (e.g. ICMP-induced errors on UDP); the session's
                        // timers decide when the path is dead, never a socket error alone.
                        tracing::debug!(%error, "link receive error");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                read = self.local.recv(&mut local_buf) => match read {
                    Some(Ok(len)) => {
                        let now = clock::now();
                        self.take_local(&local_buf[..len], now);
                        // Drain the rest of a burst before flushing, one loop turn for all.
                        for _ in 1..driver::LOCAL_BURST {
                            let Some(len) = self.local.try_recv(&mut local_buf) else {
                                break;
                            };
                            self.take_local(&local_buf[..len], now);
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "TUN read failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    None => {}
                },
                command = self.commands.recv() => match command {
                    Some(Command::Send { packet, reply, .. }) => {
                        let result = self.session.send(&packet, clock::now()).map_err(SendError::from);
                        let _ = reply.send(result);
                    }
                    Some(Command::Status { reply, .. }) => {
                        let _ = reply.send(Some(Status::of(&self.session, self.local.dropped())));
                    }
                    Some(Command::Close { reply, .. }) => {
                        closing = true;
                        self.session.close(clock::now());
                        close_waiters.push(reply);
                    }
                    None => {
                        closing = true;
                        self.session.close(clock::now());
                    }
                },
                Some(reply) = self.status.recv() => {
                    let _ = reply.send(self.tunnel_status());
                }
                () = alarm.fired() => {
                    self.session.handle_timeout(clock::now());
                }
            }
        }
        self.flush(&mut tx).await;
        self.view.send_modify(|v| v.finished = true);
        for waiter in close_waiters {
            let _ = waiter.send(());
        }
    }

    /// One inner packet from the local side into the session; a full queue drops it, as a full
    /// NIC ring would.
    fn take_local(&mut self, packet: &[u8], now: std::time::Instant) {
        if self.local.outbound_allowed(packet) {
            let _ = self.session.send(packet, now);
        }
    }

    /// After a TERMINATED the server may simply have forgotten us (restart): start over with a
    /// new BIRTH if this driver reconnects and the reason allows it.
    fn restart(&mut self) -> bool {
        let Some(config) = &self.config else {
            return false;
        };
        if !self
            .session
            .last_reason()
            .is_some_and(driver::reason_allows_reconnect)
        {
            return false;
        }
        match Session::connect(config.clone(), self.path, clock::now(), driver::rng()) {
            Ok(session) => {
                tracing::info!(
                    reason = ?self.session.last_reason(),
                    "the server lost the session; starting a new one"
                );
                self.session = session;
                self.reconnects += 1;
                self.ready = false;
                self.view.send_replace(StateView::of(&self.session));
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start a new session");
                false
            }
        }
    }

    async fn flush(&mut self, tx: &mut Vec<u8>) {
        loop {
            while let Some(transmit) = self.session.poll_transmit(clock::now(), tx) {
                debug_assert_eq!(transmit.path, self.path);
                if let Err(error) = self.link.send(&tx[..transmit.len]).await {
                    // Loss is the session's business (retries, dead-path detection).
                    tracing::debug!(%error, "link send error");
                }
            }
            let mut probed = false;
            while let Some(mut event) = self.session.poll_event() {
                if let Event::Transition(record) = &mut event {
                    // The core names paths, not transports; the audit line says which.
                    record
                        .transport
                        .get_or_insert_with(|| self.info.kind.to_string());
                }
                match &event {
                    Event::Transition(record) => {
                        tracing::info!(
                            from = %record.from, to = %record.to, reason = %record.reason,
                            version = record.version, epoch = record.epoch, "session transition"
                        );
                        self.local.record(record);
                        if record.to == State::Attached {
                            // Readiness means an inner round trip on this binding.
                            self.ready = false;
                            probed |= self.session.probe(clock::now()).is_some();
                        }
                    }
                    Event::ProbeAcked { rtt, .. } => {
                        self.probe_rtt = Some(*rtt);
                        self.ready = true;
                    }
                    _ => {}
                }
                self.view.send_replace(StateView {
                    ready: self.ready,
                    rtt: self.probe_rtt,
                    ..StateView::of(&self.session)
                });
                let _ = self.events.send(event);
            }
            if !probed {
                break;
            }
        }
    }

    fn tunnel_status(&self) -> TunnelStatus {
        let now = clock::now();
        let history = self.local.history(None);
        TunnelStatus {
            schema_version: crate::tunnel::STATUS_SCHEMA_VERSION,
            role: "client".into(),
            tun: self.local.tun_status(),
            sessions: vec![SessionStatus::of(
                &self.session,
                Some(&self.info),
                self.probe_rtt,
                history,
                now,
            )],
            unknown_destination_drops: self.local.unknown_destination(),
            source_not_allowed_drops: self.local.source_not_allowed(),
            reconnects: self.reconnects,
        }
    }
}

//! The client endpoint: one session driven over one link.
//!
//! A driver task owns the sans-IO [`Session`] and the link. It waits on three things only — a
//! datagram from the link, a command from the handle, or the session's single timer — and after
//! each input flushes transmits, events and inner packets, then re-arms the one sleep.

use std::sync::Arc;
use std::time::Duration;

use jvpn_session::{ClientConfig as CoreConfig, Event, Inbound, PathId, Policy, Session, State};
use jvpn_transport::{Link, Transport, TransportUrl};
use jvpn_wire::keys::{Psk, PublicKey, StaticSecret};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::clock;
use crate::driver::{self, Command, InboundQueue, StateView, Status};
use crate::error::{ClientError, SendError};

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
    commands: mpsc::Sender<Command>,
    inbound: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
    events: broadcast::Sender<Event>,
    view: watch::Receiver<StateView>,
    driver: Option<JoinHandle<()>>,
}

impl Client {
    /// Opens a link to `options.server` with `transport` and starts the handshake in the
    /// background. Use [`Client::wait_attached`] to wait until the session is up.
    pub async fn connect(
        options: ClientOptions,
        transport: Arc<dyn Transport>,
    ) -> Result<Client, ClientError> {
        options.policy.validate().map_err(ClientError::Policy)?;
        let link: Arc<dyn Link> =
            Arc::from(transport.connect(&options.server).await.map_err(|source| {
                ClientError::Transport {
                    url: options.server.to_string(),
                    source,
                }
            })?);
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
        let session = Session::connect(config, path, clock::now(), driver::rng())
            .map_err(ClientError::Session)?;

        let (commands, command_rx) = mpsc::channel(256);
        let (inbound_tx, inbound_rx) = mpsc::channel(options.inbound_queue.max(1));
        let (events, _) = broadcast::channel(1024);
        let (view_tx, view) = watch::channel(StateView::of(&session));
        let state = ClientDriver {
            session,
            link,
            path,
            commands: command_rx,
            inbound: InboundQueue::new(inbound_tx),
            events: events.clone(),
            view: view_tx,
        };
        let driver = tokio::spawn(state.run());
        Ok(Client {
            commands,
            inbound: tokio::sync::Mutex::new(inbound_rx),
            events,
            view,
            driver: Some(driver),
        })
    }

    /// Waits until the session is ATTACHED, or fails if it terminates or `timeout` passes.
    pub async fn wait_attached(&self, timeout: Duration) -> Result<StateView, ClientError> {
        let mut view = self.view.clone();
        let wait = async {
            loop {
                let current = view.borrow_and_update().clone();
                match current.state {
                    State::Attached => return Ok(current),
                    State::Terminated => {
                        return Err(ClientError::Terminated {
                            reason: current.last_reason,
                        });
                    }
                    _ => {}
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

    /// Queues one inner packet for the server.
    pub async fn send(&self, inner: &[u8]) -> Result<(), SendError> {
        let (reply, result) = oneshot::channel();
        self.commands
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
        self.events.subscribe()
    }

    /// The session's state, version, epoch and last reason, as of the last transition.
    pub fn state(&self) -> StateView {
        self.view.borrow().clone()
    }

    /// A snapshot of the session's state and counters, taken by the driver.
    pub async fn status(&self) -> Result<Status, ClientError> {
        let (reply, status) = oneshot::channel();
        self.commands
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

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

struct ClientDriver {
    session: Session,
    link: Arc<dyn Link>,
    path: PathId,
    commands: mpsc::Receiver<Command>,
    inbound: InboundQueue,
    events: broadcast::Sender<Event>,
    view: watch::Sender<StateView>,
}

impl ClientDriver {
    async fn run(mut self) {
        let mut rx = vec![0u8; driver::MAX_DATAGRAM];
        let mut tx = Vec::with_capacity(driver::MAX_DATAGRAM);
        let mut close_waiters: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            self.flush(&mut tx).await;
            if self.session.state() == State::Terminated {
                break;
            }
            let deadline = self.session.poll_timeout();
            tokio::select! {
                received = self.link.recv(&mut rx) => match received {
                    Ok(len) => {
                        let now = clock::now();
                        if let Inbound::Inner(range) =
                            self.session.handle_datagram(self.path, &mut rx[..len], now)
                        {
                            self.inbound.push(&rx[range]);
                        }
                    }
                    Err(error) => {
                        // The link may recover (e.g. ICMP-induced errors on UDP); the session's
                        // timers decide when the path is dead, never a socket error alone.
                        tracing::debug!(%error, "link receive error");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                command = self.commands.recv() => match command {
                    Some(Command::Send { packet, reply, .. }) => {
                        let result = self.session.send(&packet, clock::now()).map_err(SendError::from);
                        let _ = reply.send(result);
                    }
                    Some(Command::Status { reply, .. }) => {
                        let _ = reply.send(Some(Status::of(&self.session, self.inbound.dropped())));
                    }
                    Some(Command::Close { reply, .. }) => {
                        self.session.close(clock::now());
                        close_waiters.push(reply);
                    }
                    None => {
                        self.session.close(clock::now());
                    }
                },
                () = driver::sleep_until(deadline) => {
                    self.session.handle_timeout(clock::now());
                }
            }
        }
        self.flush(&mut tx).await;
        for waiter in close_waiters {
            let _ = waiter.send(());
        }
    }

    async fn flush(&mut self, tx: &mut Vec<u8>) {
        while let Some(transmit) = self.session.poll_transmit(clock::now(), tx) {
            debug_assert_eq!(transmit.path, self.path);
            if let Err(error) = self.link.send(&tx[..transmit.len]).await {
                // Loss is the session's business (retries, dead-path detection); count and go on.
                tracing::debug!(%error, "link send error");
            }
        }
        while let Some(event) = self.session.poll_event() {
            if let Event::Transition(record) = &event {
                tracing::info!(
                    from = %record.from, to = %record.to, reason = ?record.reason,
                    version = record.version, epoch = record.epoch, "session transition"
                );
            }
            if matches!(event, Event::Transition(_)) {
                self.view.send_replace(StateView::of(&self.session));
            }
            let _ = self.events.send(event);
        }
    }
}

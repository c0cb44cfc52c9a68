//! The client endpoint: one session driven over one link per candidate server URL.
//!
//! A driver task owns the sans-IO [`Session`] and the [`Links`](crate::links) of every candidate
//! (one per transport, connected in the background). It waits on a datagram or link report from
//! any candidate, an inner packet from the local side (the TUN device, for a tunnel), a command
//! from the handle, or the session's single timer; after each input it flushes transmits (each on
//! the link of its path) and events, then re-arms the one sleep. The local side is either a
//! channel to the application (the datagram API, [`Client`]) or a TUN device
//! ([`crate::tunnel::ClientTunnel`]).

mod driver;

use std::sync::Arc;
use std::time::Duration;

use jvpn_session::{Event, Policy, State};
use jvpn_transport::{Transport, TransportUrl};
use jvpn_wire::keys::{Psk, PublicKey, StaticSecret};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub(crate) use self::driver::spawn_driver;
use crate::driver::{Command, InboundQueue, Local, StateView, Status};
use crate::error::{ClientError, SendError};
use crate::links::Candidate;
use crate::transports::Transports;
use crate::tunnel::{StatusSource, TunnelStatus};

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
    /// Where the server listens: the candidates, most preferred first (typically one per
    /// transport). The first handshake goes to the most preferred candidate whose link is up.
    pub servers: Vec<TransportUrl>,
    /// Inner packets buffered towards the application before new ones are dropped (and counted).
    pub inbound_queue: usize,
}

impl ClientOptions {
    /// Options for one server URL, with the default policy, no pre-shared key and a 1024-packet
    /// inbound queue.
    pub fn new(key: StaticSecret, server_key: PublicKey, server: TransportUrl) -> Self {
        Self::with_candidates(key, server_key, vec![server])
    }

    /// Like [`ClientOptions::new`], with several candidate URLs, most preferred first.
    pub fn with_candidates(
        key: StaticSecret,
        server_key: PublicKey,
        servers: Vec<TransportUrl>,
    ) -> Self {
        Self {
            key,
            server_key,
            psk: Psk::zero(),
            policy: Policy::default(),
            servers,
            inbound_queue: 1024,
        }
    }

    /// Checks the options and pairs every URL with the transport of its kind.
    pub(crate) fn candidates(
        &self,
        transports: &Transports,
    ) -> Result<Vec<Candidate>, ClientError> {
        self.policy.validate().map_err(ClientError::Policy)?;
        if self.servers.is_empty() {
            return Err(ClientError::NoServer);
        }
        self.servers
            .iter()
            .map(|url| {
                let transport =
                    transports
                        .get(&url.kind)
                        .ok_or_else(|| ClientError::NoTransport {
                            url: url.to_string(),
                        })?;
                Ok(Candidate {
                    url: url.clone(),
                    transport,
                })
            })
            .collect()
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
    /// Starts the session over `transport`, which must serve every URL of `options.servers`.
    /// Links connect and the handshake starts in the background; use
    /// [`Client::wait_attached`] to wait until the session is up.
    pub async fn connect(
        options: ClientOptions,
        transport: Arc<dyn Transport>,
    ) -> Result<Client, ClientError> {
        Self::connect_via(options, &Transports::empty().with(transport)).await
    }

    /// Starts the session with one link per URL of `options.servers`, each over the transport
    /// of its kind from `transports`. Links connect in the background (an unreachable candidate
    /// is retried with a bounded backoff and never delays the others); the handshake goes out on
    /// the most preferred link that is up.
    pub async fn connect_via(
        options: ClientOptions,
        transports: &Transports,
    ) -> Result<Client, ClientError> {
        let candidates = options.candidates(transports)?;
        let (inbound_tx, inbound_rx) = mpsc::channel(options.inbound_queue.max(1));
        let local = Local::Channel(InboundQueue::new(inbound_tx));
        let handle = spawn_driver(&options, candidates, local, false, None)?;
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

    /// Waits until the session is ATTACHED and an authenticated inner round trip (a PROBE and
    /// its answer) has succeeded; the view's `rtt` is that round trip.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<StateView, ClientError> {
        self.handle.wait_for(timeout, |v| v.ready).await
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

    /// A handle for full status snapshots: the session and every candidate link (as
    /// `jvpn status` shows them).
    pub fn status_source(&self) -> StatusSource {
        StatusSource::driver(self.handle.status.clone())
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
        crate::driver::close_all(&self.commands).await;
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

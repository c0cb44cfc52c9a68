//! The client VPN: a TUN device carried over one session to the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jvpn_session::Policy;
use jvpn_transport::TransportUrl;
use jvpn_tun::{AllowedIps, IpPrefix, Tun, TunConfig, packet_destination, packet_source};
use jvpn_wire::keys::{Psk, PublicKey, StaticSecret};

use super::{Journal, StatusSource, TunStatus, TunnelError};
use crate::client::{ClientOptions, DriverHandle, spawn_driver};
use crate::driver::{Local, StateView};
use crate::error::ClientError;
use crate::transports::Transports;

/// The inner MTU when no candidate's transport says what it carries (custom transports only):
/// WireGuard's default, which fits a 1500-byte path over IPv6.
const FALLBACK_MTU: u16 = 1420;

/// What `jvpn connect` needs.
#[derive(Debug, Clone)]
pub struct ClientTunnelConfig {
    /// The client's static secret key.
    pub key: StaticSecret,
    /// The server's static public key.
    pub server_key: PublicKey,
    /// Optional pre-shared key (all zeros when unused).
    pub psk: Psk,
    /// Where the server listens: the candidates, most preferred first (one link each).
    pub servers: Vec<TransportUrl>,
    /// The client's inner addresses.
    pub addresses: Vec<IpPrefix>,
    /// Prefixes routed into the tunnel; inner packets from the server must come from these.
    pub allowed_ips: Vec<IpPrefix>,
    /// TUN interface name; `None` lets the kernel pick `jvpn0`, `jvpn1`, …
    pub tun_name: Option<String>,
    /// Inner MTU; `None` pins it to the smallest any candidate carries ([`crate::mtu`]). A value
    /// larger than some candidate carries is refused.
    pub mtu: Option<u16>,
    /// Timers, windows and budgets.
    pub policy: Policy,
    /// Append every transition to this file as a JSON line.
    pub audit_log: Option<PathBuf>,
}

/// The client's TUN side: inner packets in and out, filtered by the allowed IPs.
#[derive(Debug)]
pub(crate) struct TunSide {
    tun: Arc<Tun>,
    allowed: AllowedIps<()>,
    pub(crate) journal: Journal,
    pub(crate) unknown_destination: u64,
    pub(crate) source_not_allowed: u64,
}

impl TunSide {
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tun.recv(buf).await
    }

    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tun.try_recv(buf)
    }

    /// Only packets for the allowed IPs enter the tunnel (the kernel may hand the device other
    /// traffic, such as IPv6 router solicitations).
    pub(crate) fn outbound_allowed(&mut self, packet: &[u8]) -> bool {
        let allowed = packet_destination(packet).is_some_and(|d| self.allowed.lookup(d).is_some());
        if !allowed {
            self.unknown_destination += 1;
        }
        allowed
    }

    /// Cryptokey routing: a packet from the server is written to the TUN only if its source is
    /// inside the allowed IPs.
    pub(crate) async fn deliver(&mut self, packet: &[u8]) {
        if packet_source(packet).is_none_or(|s| self.allowed.lookup(s).is_none()) {
            self.source_not_allowed += 1;
            return;
        }
        if let Err(error) = self.tun.send(packet).await {
            tracing::debug!(%error, "TUN write failed");
        }
    }

    pub(crate) fn status(&self) -> TunStatus {
        TunStatus {
            name: self.tun.name().to_owned(),
            mtu: self.tun.mtu(),
        }
    }
}

/// A running client VPN.
#[derive(Debug)]
pub struct ClientTunnel {
    handle: DriverHandle,
    tun: Arc<Tun>,
}

impl ClientTunnel {
    /// Creates the TUN device, starts one link per candidate (each over the transport of its
    /// kind from `transports`, connected in the background) and starts the handshake.
    pub async fn start(
        config: ClientTunnelConfig,
        transports: &Transports,
    ) -> Result<ClientTunnel, TunnelError> {
        config.policy.validate()?;
        if config.addresses.is_empty() {
            return Err(TunnelError::Config(
                "the client needs at least one inner address (--address 10.77.0.2/32)".into(),
            ));
        }
        let journal = Journal::open(config.audit_log.as_ref())?;
        jvpn_tun::capability_check()?;
        let options = ClientOptions {
            key: config.key,
            server_key: config.server_key,
            psk: config.psk,
            policy: config.policy,
            servers: config.servers,
            inbound_queue: 1,
        };
        let candidates = options.candidates(transports).map_err(client_error)?;
        // One MTU for the whole session, whichever candidate carries it (see `crate::mtu`).
        let mtu = crate::mtu::session_mtu(&options.servers, config.mtu, || FALLBACK_MTU)?;
        let tun = Arc::new(Tun::create(&TunConfig {
            name: config.tun_name.clone(),
            addresses: config.addresses.clone(),
            mtu,
            routes: config.allowed_ips.clone(),
        })?);
        let mut allowed = AllowedIps::new();
        for prefix in &config.allowed_ips {
            allowed.insert(prefix.network(), ());
        }
        let local = Local::Tun(TunSide {
            tun: Arc::clone(&tun),
            allowed,
            journal,
            unknown_destination: 0,
            source_not_allowed: 0,
        });
        let handle =
            spawn_driver(&options, candidates, local, true, Some(mtu)).map_err(client_error)?;
        Ok(ClientTunnel { handle, tun })
    }

    /// The TUN interface name.
    pub fn tun_name(&self) -> &str {
        self.tun.name()
    }

    /// Waits until the session is ATTACHED and an inner round trip (an authenticated PROBE and
    /// its answer) has succeeded.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<StateView, TunnelError> {
        self.handle
            .wait_for(timeout, |v| v.ready)
            .await
            .map_err(|e| match e {
                ClientError::AttachTimeout { waited } => TunnelError::NotReady { waited },
                other => client_error(other),
            })
    }

    /// The current state (updated on every transition).
    pub fn state(&self) -> StateView {
        self.handle.view.borrow().clone()
    }

    /// A handle for status snapshots (`jvpn status`).
    pub fn status_source(&self) -> StatusSource {
        StatusSource::driver(self.handle.status.clone())
    }

    /// Resolves when the session has ended for good (not after a reconnect).
    pub async fn wait_terminated(&self) -> StateView {
        self.handle.wait_finished().await
    }

    /// Sends CLOSE, ends TERMINATED (Closed) and removes the TUN device and its routes.
    pub async fn shutdown(mut self) -> Result<StateView, TunnelError> {
        self.handle.close().await.map_err(client_error)
    }
}

fn client_error(error: ClientError) -> TunnelError {
    match error {
        ClientError::Policy(e) => TunnelError::Policy(e),
        ClientError::Transport { url, source } => TunnelError::Transport { url, source },
        ClientError::Terminated { reason } => TunnelError::Terminated { reason },
        ClientError::AttachTimeout { waited } => TunnelError::NotReady { waited },
        ClientError::Session(e) => TunnelError::Config(e.to_string()),
        e @ (ClientError::NoServer | ClientError::NoTransport { .. }) => {
            TunnelError::Config(e.to_string())
        }
        _ => TunnelError::Stopped,
    }
}

//! The server VPN: many clients, one TUN device, routing by allowed IPs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jvpn_session::{AuditRecord, Event, PeerConfig, Policy, SessionHandle, State};
use jvpn_transport::TransportUrl;
use jvpn_tun::{AllowedIps, IpPrefix, Tun, TunConfig, packet_destination, packet_source};
use jvpn_wire::DATA_OVERHEAD;
use jvpn_wire::keys::{Psk, PublicKey, StaticSecret};

use super::{Journal, StatusSource, TunStatus, TunnelError};
use crate::server::{Server, ServerLocal, ServerOptions};
use crate::transports::Transports;

/// One client the server accepts.
#[derive(Debug, Clone)]
pub struct TunnelPeer {
    /// The client's static public key.
    pub public_key: PublicKey,
    /// Optional pre-shared key (all zeros when unused).
    pub psk: Psk,
    /// The inner addresses the client may use as sources, and that are routed to it.
    pub allowed_ips: Vec<IpPrefix>,
}

/// What `jvpn server` needs.
#[derive(Debug, Clone)]
pub struct ServerTunnelConfig {
    /// The server's static secret key.
    pub key: StaticSecret,
    /// Where to listen (one listener per URL).
    pub listen: Vec<TransportUrl>,
    /// The server's inner addresses (with the subnet routed into the TUN, e.g. `10.77.0.1/24`).
    pub addresses: Vec<IpPrefix>,
    /// The clients.
    pub peers: Vec<TunnelPeer>,
    /// TUN interface name; `None` lets the kernel pick.
    pub tun_name: Option<String>,
    /// Inner MTU; `None` derives it from the listeners' largest datagram minus jvpn's overhead.
    pub mtu: Option<u16>,
    /// Timers, windows and budgets.
    pub policy: Policy,
    /// Append every transition to this file as a JSON line.
    pub audit_log: Option<PathBuf>,
}

/// The server's TUN side: routes by destination to the peer whose allowed IPs contain it.
#[derive(Debug)]
pub(crate) struct ServerTunSide {
    tun: Arc<Tun>,
    /// Destination prefix → peer.
    routes: AllowedIps<PublicKey>,
    /// The peer's live session.
    sessions: BTreeMap<PublicKey, SessionHandle>,
    /// The server's own inner addresses (with their subnets).
    own: Vec<IpPrefix>,
    journal: Journal,
    unknown_destination: u64,
    source_not_allowed: u64,
}

/// Where an inner packet goes next.
pub(crate) enum Route {
    /// To this session (a client).
    Session(SessionHandle),
    /// To the TUN device (the server host).
    Tun,
    /// Nowhere: dropped and counted.
    Drop,
}

impl ServerTunSide {
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tun.recv(buf).await
    }

    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> Option<usize> {
        self.tun.try_recv(buf).ok()
    }

    pub(crate) async fn write(&self, packet: &[u8]) {
        if let Err(error) = self.tun.send(packet).await {
            tracing::debug!(%error, "TUN write failed");
        }
    }

    /// A packet read from the TUN goes to the session of the peer that owns its destination.
    pub(crate) fn route_from_tun(&mut self, packet: &[u8]) -> Route {
        match self.peer_session(packet_destination(packet)) {
            Some(handle) => Route::Session(handle),
            None => {
                self.unknown_destination += 1;
                Route::Drop
            }
        }
    }

    /// A packet from `peer`'s session: its source must be the peer's. It goes to another client
    /// when the destination is theirs (dropped and counted if that client has no session), is
    /// dropped and counted when it names an unused address of the tunnel's own subnet, and goes
    /// to the TUN otherwise (the server host itself, or beyond it).
    pub(crate) fn route_from_peer(&mut self, peer: &PublicKey, packet: &[u8]) -> Route {
        let owner = packet_source(packet).and_then(|s| self.routes.lookup(s));
        if owner != Some(peer) {
            self.source_not_allowed += 1;
            return Route::Drop;
        }
        let Some(destination) = packet_destination(packet) else {
            self.unknown_destination += 1;
            return Route::Drop;
        };
        if self.routes.lookup(destination).is_some() {
            return match self.peer_session(Some(destination)) {
                Some(handle) => Route::Session(handle),
                None => {
                    self.unknown_destination += 1;
                    Route::Drop
                }
            };
        }
        let ours = self.own.iter().any(|a| a.addr() == destination);
        let in_our_subnet = self.own.iter().any(|a| a.network().contains(destination));
        if in_our_subnet && !ours {
            self.unknown_destination += 1;
            return Route::Drop;
        }
        Route::Tun
    }

    fn peer_session(&self, destination: Option<std::net::IpAddr>) -> Option<SessionHandle> {
        let peer = self.routes.lookup(destination?)?;
        self.sessions.get(peer).copied()
    }

    /// Keeps the peer → session map current from the endpoint's events.
    pub(crate) fn on_event(
        &mut self,
        handle: SessionHandle,
        peer: Option<PublicKey>,
        event: &Event,
    ) {
        match event {
            Event::HandshakeCompleted { .. } => {
                if let Some(peer) = peer {
                    self.sessions.insert(peer, handle);
                }
            }
            Event::Transition(record) => {
                self.journal.record(record);
                if record.to == State::Terminated {
                    self.sessions.retain(|_, h| *h != handle);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn history(&self, session_id: Option<&str>) -> Vec<AuditRecord> {
        self.journal.history_for(session_id)
    }

    pub(crate) fn status(&self) -> TunStatus {
        TunStatus {
            name: self.tun.name().to_owned(),
            mtu: self.tun.mtu(),
        }
    }

    pub(crate) fn drops(&self) -> (u64, u64) {
        (self.unknown_destination, self.source_not_allowed)
    }
}

/// A running server VPN.
#[derive(Debug)]
pub struct ServerTunnel {
    server: Server,
    tun_name: String,
}

impl ServerTunnel {
    /// Binds the listeners, creates the TUN device and starts serving.
    pub async fn start(
        config: ServerTunnelConfig,
        transports: &Transports,
    ) -> Result<ServerTunnel, TunnelError> {
        config.policy.validate()?;
        if config.listen.is_empty() {
            return Err(TunnelError::Config(
                "the server needs at least one --listen address (udp://0.0.0.0:51820)".into(),
            ));
        }
        if config.addresses.is_empty() {
            return Err(TunnelError::Config(
                "the server needs at least one inner address (--address 10.77.0.1/24)".into(),
            ));
        }
        let mut routes = AllowedIps::new();
        let mut seen = BTreeSet::new();
        for peer in &config.peers {
            if !seen.insert(peer.public_key) {
                return Err(TunnelError::Config(format!(
                    "peer {} is listed twice; list each client once with all its allowed IPs",
                    peer.public_key
                )));
            }
            for prefix in &peer.allowed_ips {
                if let Some(other) = routes.insert(prefix.network(), peer.public_key) {
                    return Err(TunnelError::Config(format!(
                        "allowed IPs {prefix} are given to both {other} and {}; each prefix \
                         belongs to one peer",
                        peer.public_key
                    )));
                }
            }
        }
        let journal = Journal::open(config.audit_log.as_ref())?;
        jvpn_tun::capability_check()?;

        let mut listeners = Vec::new();
        for url in &config.listen {
            let transport = transports.get(&url.kind).ok_or_else(|| {
                TunnelError::Config(format!(
                    "{url}: the {} transport is not built into this jvpn (available: {})",
                    url.kind,
                    transports.kinds().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let listener =
                transport
                    .listen(url)
                    .await
                    .map_err(|source| TunnelError::Transport {
                        url: url.to_string(),
                        source: Box::new(source),
                    })?;
            listeners.push(listener);
        }
        let max_datagram = listeners
            .iter()
            .map(|l| l.max_datagram_size())
            .min()
            .unwrap_or(1452);
        let mtu = config
            .mtu
            .unwrap_or_else(|| jvpn_tun::mtu_for(max_datagram, DATA_OVERHEAD));
        let peer_routes: Vec<IpPrefix> = config
            .peers
            .iter()
            .flat_map(|p| p.allowed_ips.iter().map(|a| a.network()))
            .filter(|r| !config.addresses.iter().any(|a| a.network() == *r))
            .collect();
        let tun = Arc::new(Tun::create(&TunConfig {
            name: config.tun_name.clone(),
            addresses: config.addresses.clone(),
            mtu,
            routes: peer_routes,
        })?);
        let tun_name = tun.name().to_owned();
        let side = ServerTunSide {
            tun,
            routes,
            sessions: BTreeMap::new(),
            own: config.addresses.clone(),
            journal,
            unknown_destination: 0,
            source_not_allowed: 0,
        };
        let options = ServerOptions {
            key: config.key,
            peers: config
                .peers
                .iter()
                .map(|p| PeerConfig {
                    public_key: p.public_key,
                    psk: p.psk.clone(),
                })
                .collect(),
            policy: config.policy,
            inbound_queue: 1,
        };
        let server = Server::start_with(options, listeners, ServerLocal::Tun(Box::new(side)))
            .await
            .map_err(|e| TunnelError::Config(e.to_string()))?;
        Ok(ServerTunnel { server, tun_name })
    }

    /// The addresses the listeners are bound to.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.server.local_addrs().to_vec()
    }

    /// The TUN interface name.
    pub fn tun_name(&self) -> &str {
        &self.tun_name
    }

    /// A handle for status snapshots (`jvpn status`).
    pub fn status_source(&self) -> StatusSource {
        self.server.status_source()
    }

    /// Sends CLOSE on every session, removes the TUN device and stops.
    pub async fn shutdown(self) -> Result<(), TunnelError> {
        self.server.shutdown().await;
        Ok(())
    }
}

//! The client driver task: the session, its candidate links and the local side, in one loop.

use std::time::{Duration, Instant};

use jvpn_session::{ClientConfig as CoreConfig, Event, Inbound, PathId, PathKind, Session, State};
use jvpn_transport::{TransportKind, TransportUrl};
use jvpn_wire::{MessageType, peek_type};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{ClientOptions, DriverHandle};
use crate::clock;
use crate::driver::{self, Command, Local, StateView, Status};
use crate::error::{ClientError, SendError};
use crate::links::{Candidate, LinkEvent, Links};
use crate::tunnel::{PathStatus, SessionStatus, SwitchStatus, TunnelStatus, millis};

/// Starts the session and spawns its driver with one link per candidate (candidate `i` is
/// `PathId(i)`). With `reconnect`, a session the server has lost (it answered with another
/// session id, e.g. after a restart) is replaced by a new one (a new BIRTH) instead of ending
/// the driver. `mtu` is the tunnel's pinned inner MTU, if there is a tunnel.
pub(crate) fn spawn_driver(
    options: &ClientOptions,
    candidates: Vec<Candidate>,
    local: Local,
    reconnect: bool,
    mtu: Option<u16>,
) -> Result<DriverHandle, ClientError> {
    if candidates.is_empty() {
        return Err(ClientError::NoServer);
    }
    let config = CoreConfig {
        local_key: options.key.clone(),
        server_key: options.server_key,
        psk: options.psk.clone(),
        policy: options.policy.clone(),
        clock: clock::anchor(),
        offered_transports: driver::PROLOGUE_TRANSPORTS.to_vec(),
    };
    let first = PathId(0);
    let now = clock::now();
    let mut session = Session::connect(config.clone(), first, now, driver::rng())
        .map_err(ClientError::Session)?;
    let urls: Vec<TransportUrl> = candidates.iter().map(|c| c.url.clone()).collect();
    // No link is up yet: each candidate task reports its link when it connects.
    add_candidates(&mut session, &urls, |_| false, now);

    let (commands, command_rx) = mpsc::channel(256);
    let (status, status_rx) = mpsc::channel(8);
    let (events, _) = broadcast::channel(1024);
    let (view_tx, view) = watch::channel(StateView::of(&session));
    let state = ClientDriver {
        session,
        config: reconnect.then_some(config),
        links: Links::start(candidates),
        commands: command_rx,
        status: status_rx,
        local,
        events: events.clone(),
        view: view_tx,
        probe_rtt: None,
        ready: false,
        reconnects: 0,
        pending_init: None,
        mtu,
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

/// Makes every candidate a path of the session (multipath on), most preferred first, and tells
/// it which links are down.
fn add_candidates(
    session: &mut Session,
    urls: &[TransportUrl],
    up: impl Fn(PathId) -> bool,
    now: Instant,
) {
    for (i, url) in urls.iter().enumerate() {
        let path = PathId(u32::try_from(i).unwrap_or(u32::MAX));
        let rank = u8::try_from(i).unwrap_or(u8::MAX);
        session.add_path(path, path_kind(&url.kind), rank, now);
        if !up(path) {
            session.path_down(path, now);
        }
    }
}

fn path_kind(kind: &TransportKind) -> PathKind {
    match kind {
        TransportKind::Udp => PathKind::Udp,
        TransportKind::Quic => PathKind::Quic,
        TransportKind::Wss => PathKind::Wss,
        other => PathKind::Custom(other.to_string()),
    }
}

struct ClientDriver {
    session: Session,
    /// Set when a lost session is to be replaced by a new BIRTH.
    config: Option<CoreConfig>,
    links: Links,
    commands: mpsc::Receiver<Command>,
    status: mpsc::Receiver<oneshot::Sender<TunnelStatus>>,
    local: Local,
    events: broadcast::Sender<Event>,
    view: watch::Sender<StateView>,
    probe_rtt: Option<Duration>,
    /// An inner round trip (PROBE / PROBE_ACK) succeeded on the current binding.
    ready: bool,
    reconnects: u64,
    /// A handshake initiation that found no link up; it goes out on the first link that comes
    /// up, so a start before any link has connected costs no handshake retry.
    pending_init: Option<Vec<u8>>,
    /// The tunnel's pinned inner MTU, to warn when a link comes up that cannot carry it.
    mtu: Option<u16>,
}

impl ClientDriver {
    async fn run(mut self) {
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
                event = self.links.next() => match event {
                    Some(event) => self.on_link_event(event).await,
                    // Every candidate task is gone: nothing can arrive any more.
                    None => std::future::pending::<()>().await,
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

    async fn on_link_event(&mut self, event: LinkEvent) {
        self.links.apply(&event);
        match event {
            LinkEvent::Datagram { path, mut buf, len } => {
                let now = clock::now();
                if let Inbound::Inner(range) =
                    self.session.handle_datagram(path, &mut buf[..len], now)
                {
                    self.local.deliver(&buf[range]).await;
                }
                self.links.recycle(buf);
            }
            LinkEvent::Up { path, link } => {
                let info = link.info();
                tracing::info!(
                    url = ?self.links.url(path).map(ToString::to_string),
                    max_datagram = info.max_datagram_size,
                    "link up"
                );
                if let Some(mtu) = self.mtu
                    && info.max_datagram_size < usize::from(mtu) + jvpn_wire::DATA_OVERHEAD
                {
                    tracing::warn!(
                        mtu,
                        max_datagram = info.max_datagram_size,
                        "this link cannot carry the pinned inner MTU; larger inner packets on it \
                         are dropped"
                    );
                }
                self.session.path_up(path, clock::now());
                if self.session.state() == State::Birth
                    && let Some(init) = self.pending_init.take()
                {
                    self.links.send(path, &init).await;
                    self.session.set_path(path);
                }
            }
            LinkEvent::Down { path, error } => {
                tracing::info!(%error, path = path.0, "link down");
                self.session.path_down(path, clock::now());
            }
            LinkEvent::ConnectFailed {
                path,
                error,
                retry_in,
            } => {
                tracing::debug!(%error, path = path.0, ?retry_in, "cannot connect the link");
            }
        }
    }

    /// One inner packet from the local side into the session; a full queue drops it, as a full
    /// NIC ring would.
    fn take_local(&mut self, packet: &[u8], now: Instant) {
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
        let first = self.links.next_up_from(0).unwrap_or(PathId(0));
        let now = clock::now();
        match Session::connect(config.clone(), first, now, driver::rng()) {
            Ok(mut session) => {
                let urls: Vec<TransportUrl> = (0..self.links.len())
                    .filter_map(|i| self.links.url(PathId(u32::try_from(i).ok()?)).cloned())
                    .collect();
                add_candidates(&mut session, &urls, |p| self.links.is_up(p), now);
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

    /// Sends one datagram of the session on the link of its path.
    ///
    /// Once attached, the session picks every path (probes, rebinds). Before the first attach
    /// (BIRTH) it knows nothing of the paths yet, so the runtime spreads the first handshake:
    /// an initiation goes to the most preferred link that is up when its own is not, and each
    /// one moves the next attempt to the next link that is up, so an unreachable preferred
    /// server costs one handshake retry, not the session.
    async fn route(&mut self, path: PathId, datagram: &[u8]) {
        let is_init = matches!(peek_type(datagram), Ok(MessageType::HandshakeInit));
        if !is_init || self.session.state() != State::Birth {
            self.links.send(path, datagram).await;
            return;
        }
        let target = if self.links.is_up(path) {
            Some(path)
        } else {
            self.links.next_up_from(0)
        };
        let Some(target) = target else {
            self.pending_init = Some(datagram.to_vec());
            return;
        };
        self.pending_init = None;
        self.links.send(target, datagram).await;
        let after = usize::try_from(target.0).unwrap_or(0) + 1;
        if let Some(next) = self.links.next_up_from(after % self.links.len().max(1)) {
            self.session.set_path(next);
        }
    }

    async fn flush(&mut self, tx: &mut Vec<u8>) {
        loop {
            while let Some(transmit) = self.session.poll_transmit(clock::now(), tx) {
                self.route(transmit.path, &tx[..transmit.len]).await;
            }
            let mut probed = false;
            while let Some(mut event) = self.session.poll_event() {
                if let Event::Transition(record) = &mut event
                    && record.transport.is_none()
                {
                    // The core names paths, not transports; the audit line says which.
                    let path = record.path.or(self.session.bound_path());
                    record.transport = path
                        .and_then(|p| self.links.url(p))
                        .map(|u| u.kind.to_string());
                }
                match &event {
                    Event::Transition(record) => {
                        tracing::info!(
                            from = %record.from, to = %record.to, reason = %record.reason,
                            version = record.version, epoch = record.epoch,
                            transport = record.transport.as_deref(), "session transition"
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
                    Event::PathSwitched { from, to, reason } => {
                        let kind = |p: &PathId| self.links.url(*p).map(|u| u.kind.to_string());
                        tracing::info!(
                            from = from.as_ref().and_then(kind),
                            to = kind(to),
                            %reason,
                            "path switched"
                        );
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
        let bound = self.session.bound_path();
        let paths = self.session.paths();
        let candidates: Vec<PathStatus> = self
            .links
            .reports()
            .into_iter()
            .map(|link| {
                let report = paths.iter().find(|r| r.path == link.path);
                let active = bound == Some(link.path);
                let remote = link
                    .info
                    .as_ref()
                    .and_then(|i| i.remote_addr)
                    .map_or_else(|| link.url.authority(), |a| a.to_string());
                let state = match (active, link.up) {
                    (true, _) => "active",
                    (false, true) => "standby",
                    (false, false) => "down",
                };
                let rtt = report
                    .and_then(|r| r.rtt)
                    .or(active.then_some(self.probe_rtt).flatten());
                PathStatus {
                    kind: link.url.kind.to_string(),
                    remote,
                    state: state.into(),
                    rtt_ms: rtt.map(millis),
                    loss_percent: report.map(|r| f64::from(r.loss_percent)),
                    url: Some(link.url.to_string()),
                    link_up: link.up,
                    active,
                    prober: report.map(|r| r.state.as_str().to_owned()),
                    jitter_ms: report.and_then(|r| r.jitter).map(millis),
                    last_seen_secs: report
                        .and_then(|r| r.last_seen)
                        .map(|at| now.saturating_duration_since(at).as_secs_f64()),
                    error: (!link.up).then_some(link.last_error).flatten(),
                    send_drops: link.send_drops,
                }
            })
            .collect();
        let active = candidates
            .iter()
            .find(|c| c.active)
            .map(|c| (Some(c.kind.clone()), Some(c.remote.clone())))
            .unwrap_or_default();
        let mut session =
            SessionStatus::with_paths(&self.session, active, candidates, history, now);
        session.last_switch = self
            .session
            .last_switch()
            .map(|(reason, path)| SwitchStatus {
                reason: reason.to_string(),
                transport: self.links.url(path).map(|u| u.kind.to_string()),
                url: self.links.url(path).map(ToString::to_string),
            });
        TunnelStatus {
            schema_version: crate::tunnel::STATUS_SCHEMA_VERSION,
            role: "client".into(),
            tun: self.local.tun_status(),
            sessions: vec![session],
            unknown_destination_drops: self.local.unknown_destination(),
            source_not_allowed_drops: self.local.source_not_allowed(),
            reconnects: self.reconnects,
            endpoint: None,
        }
    }
}

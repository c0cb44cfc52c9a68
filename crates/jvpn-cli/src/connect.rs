//! `jvpn connect`: a TUN device carried over one session to the server, until SIGINT/SIGTERM
//! (or, with `--wait`, in the background once ready).

use std::io::Write as _;
use std::time::Duration;

use jvpn::StateView;
use jvpn::control::{self, Role};
use jvpn::tunnel::{ClientTunnel, ClientTunnelConfig, TunnelError};
use jvpn::wire::keys::Psk;

use crate::cli::ConnectArgs;
use crate::config::{self, ConnectFile};
use crate::failure::RunError;
use crate::settings;
use crate::signals::Signals;
use crate::wait::{self, READY_LINE};

/// Runs the client; returns once it has shut down cleanly after a signal (or, with `--wait`, once
/// the background tunnel is ready).
pub(crate) async fn run(args: ConnectArgs) -> Result<(), RunError> {
    let file = args
        .common
        .config
        .as_deref()
        .map(config::load::<ConnectFile>)
        .transpose()?;
    let settings = settings::client(&args, file.as_ref())?;
    let wait_timeout = Duration::from_secs(args.wait_timeout);
    if args.wait && !args.notify_ready {
        // Key problems are reported here, before anything runs in the background.
        drop(jvpn::keyfile::read_secret_key(&settings.key)?);
        return Ok(wait::run_in_background(wait_timeout).await?);
    }

    let mut signals = Signals::install().map_err(RunError::Signal)?;
    let key = jvpn::keyfile::read_secret_key(&settings.key)?;
    let server_key = settings.target.server_key.read()?;
    let shared = settings.shared;
    let socket = shared
        .control
        .clone()
        .unwrap_or_else(|| control::default_socket(Role::Client));
    let servers = settings
        .target
        .servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    // Settings already refused kinds that are not built in (`values::check_built`).
    let transports = jvpn::Transports::builtin_with_proxy(settings.target.proxy.as_deref());
    let config = ClientTunnelConfig {
        key,
        server_key,
        psk: Psk::zero(),
        servers: settings.target.servers,
        addresses: settings.addresses,
        allowed_ips: settings.allowed_ips,
        tun_name: shared.tun,
        mtu: shared.mtu,
        policy: shared.policy,
        audit_log: shared.audit_log,
    };

    // Fail before creating the TUN device if another jvpn holds the control socket.
    control::check_free(&socket).await?;
    let tunnel = ClientTunnel::start(config, &transports).await?;
    let control = match control::serve(&socket, tunnel.status_source()).await {
        Ok(control) => control,
        Err(error) => {
            stop(tunnel).await;
            return Err(error.into());
        }
    };
    tracing::info!(
        %servers,
        tun = tunnel.tun_name(),
        control = %socket.display(),
        "connecting; stop with Ctrl-C or SIGTERM"
    );

    if args.notify_ready {
        let ready = tokio::select! {
            ready = tunnel.wait_ready(wait_timeout) => Some(ready),
            signal = signals.recv() => {
                tracing::info!(signal, "stopping before the tunnel was ready");
                None
            }
        };
        match ready {
            Some(Ok(view)) => {
                log_ready(&view);
                notify_ready();
            }
            Some(Err(error)) => {
                drop(control);
                stop(tunnel).await;
                return Err(error.into());
            }
            None => {
                drop(control);
                return shutdown(tunnel).await;
            }
        }
    }

    let ended = tokio::select! {
        signal = signals.recv() => {
            tracing::info!(signal, "closing the session and removing the TUN device");
            None
        }
        view = tunnel.wait_terminated() => Some(view),
    };
    drop(control);
    match ended {
        None => shutdown(tunnel).await,
        Some(view) => {
            stop(tunnel).await;
            Err(RunError::Ended {
                reason: view
                    .last_reason
                    .map_or_else(|| "no reason recorded".to_owned(), |r| r.to_string()),
            })
        }
    }
}

fn log_ready(view: &StateView) {
    tracing::info!(
        state = %view.state,
        epoch = view.epoch,
        rtt_ms = view.rtt.map(|d| d.as_secs_f64() * 1e3),
        "tunnel ready"
    );
}

/// Tells a waiting `jvpn connect --wait` that the tunnel is ready.
fn notify_ready() {
    let mut out = std::io::stdout().lock();
    // If the waiting parent is gone there is nobody to tell; the tunnel runs on.
    let _ = writeln!(out, "{READY_LINE}").and_then(|()| out.flush());
}

/// Clean shutdown after a signal: CLOSE, TERMINATED (Closed), TUN device removed.
async fn shutdown(tunnel: ClientTunnel) -> Result<(), RunError> {
    let view = tunnel.shutdown().await?;
    tracing::info!(
        state = %view.state,
        reason = view.last_reason.map(|r| r.to_string()),
        "stopped"
    );
    Ok(())
}

/// Shutdown on an error path: the original error is what the user needs, so this one is logged.
async fn stop(tunnel: ClientTunnel) {
    if let Err(error) = tunnel.shutdown().await {
        log_stop_error(&error);
    }
}

fn log_stop_error(error: &TunnelError) {
    tracing::debug!(%error, "shutdown after an error");
}

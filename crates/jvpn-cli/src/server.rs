//! `jvpn server`: a TUN device and listeners serving the configured peers until SIGINT/SIGTERM.

use jvpn::control::{self, Role};
use jvpn::tunnel::{ServerTunnel, ServerTunnelConfig, TunnelPeer};
use jvpn::wire::keys::Psk;

use crate::cli::ServerArgs;
use crate::config::{self, ServerFile};
use crate::failure::RunError;
use crate::settings;
use crate::signals::Signals;

/// Runs the server in the foreground; returns once it has shut down cleanly after a signal.
pub(crate) async fn run(args: ServerArgs) -> Result<(), RunError> {
    let file = args
        .common
        .config
        .as_deref()
        .map(config::load::<ServerFile>)
        .transpose()?;
    let settings = settings::server(&args, file.as_ref())?;
    let mut signals = Signals::install().map_err(RunError::Signal)?;
    let key = jvpn::keyfile::read_secret_key(&settings.key)?;
    let peer_count = settings.peers.len();
    let shared = settings.shared;
    let socket = shared
        .control
        .clone()
        .unwrap_or_else(|| control::default_socket(Role::Server));
    let config = ServerTunnelConfig {
        key,
        listen: settings.listen,
        addresses: settings.addresses,
        peers: settings
            .peers
            .into_iter()
            .map(|p| TunnelPeer {
                public_key: p.public_key,
                psk: Psk::zero(),
                allowed_ips: p.allowed_ips,
            })
            .collect(),
        tun_name: shared.tun,
        mtu: shared.mtu,
        policy: shared.policy,
        audit_log: shared.audit_log,
    };

    // Fail before creating the TUN device if another jvpn holds the control socket.
    control::check_free(&socket).await?;
    let tunnel = ServerTunnel::start(config, &jvpn::Transports::builtin()).await?;
    let control = match control::serve(&socket, tunnel.status_source()).await {
        Ok(control) => control,
        Err(error) => {
            // Take the TUN device down again before reporting.
            if let Err(shutdown) = tunnel.shutdown().await {
                tracing::warn!(error = %shutdown, "shutdown after a failed start");
            }
            return Err(error.into());
        }
    };
    tracing::info!(
        tun = tunnel.tun_name(),
        listen = ?tunnel.local_addrs(),
        peers = peer_count,
        control = %socket.display(),
        "server running; stop it with Ctrl-C or SIGTERM"
    );

    let signal = signals.recv().await;
    tracing::info!(signal, "closing every session and removing the TUN device");
    drop(control);
    tunnel.shutdown().await?;
    tracing::info!("server stopped");
    Ok(())
}

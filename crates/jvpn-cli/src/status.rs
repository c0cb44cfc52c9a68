//! `jvpn status`: ask a running tunnel for its status over the control socket and print it.

mod render;

use std::io::Write as _;
use std::path::PathBuf;

use jvpn::control::{self, ControlError, Role};
use jvpn::tunnel::TunnelStatus;

use crate::cli::StatusArgs;
use crate::failure::RunError;

/// Prints the status of the running tunnel, as a table or (`--json`) as JSON.
pub(crate) async fn run(args: StatusArgs) -> Result<(), RunError> {
    let status = match &args.control {
        Some(path) => control::query_status(path).await?,
        None => query_default().await?,
    };
    let text = if args.json {
        // Plain strings and numbers: serializing cannot fail.
        serde_json::to_string_pretty(&status).unwrap_or_default() + "\n"
    } else {
        render::human(&status)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`jvpn status | head`) is not an error worth reporting.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

/// Tries the default sockets: the client's, then the server's; as a user, also root's.
async fn query_default() -> Result<TunnelStatus, RunError> {
    let mut candidates = vec![
        control::default_socket(Role::Client),
        control::default_socket(Role::Server),
    ];
    for role in ["client", "server"] {
        let system = PathBuf::from(format!("/run/jvpn/{role}.sock"));
        if !candidates.contains(&system) {
            candidates.push(system);
        }
    }
    for path in &candidates {
        match control::query_status(path).await {
            Ok(status) => return Ok(status),
            // Nothing there: try the next one.
            Err(ControlError::NotRunning { .. }) => {}
            // Something there that did not answer well: that is the one to report.
            Err(error) => return Err(error.into()),
        }
    }
    Err(RunError::NotRunning { tried: candidates })
}

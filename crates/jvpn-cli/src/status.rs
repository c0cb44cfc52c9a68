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
        serde_json::to_string_pretty(&status)
            .map_err(|e| RunError::Control(ControlError::Protocol {
                path: PathBuf::new(),
                why: e.to_string(),
            }))?
            + "\n"
    } else {
        render::human(&status)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`jvpn status | head`) is not an error worth reporting.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

/// Tries the default sockets: the client's, then the server's; as a user, also root's.
async fn query_default() -> Result<TunnelStatus, ControlError> {
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
    let mut first_error = None;
    for path in &candidates {
        match control::query_status(path).await {
            Ok(status) => return Ok(status),
            // Nothing there: try the next one.
            Err(ControlError::NotRunning { .. }) => {}
            // Something there that did not answer well: that is the one to report.
            Err(error) => return Err(error),
        }
        first_error.get_or_insert(ControlError::NotRunning { path: path.clone() });
    }
    Err(first_error.unwrap_or(ControlError::NotRunning {
        path: control::default_socket(Role::Client),
    }))
}

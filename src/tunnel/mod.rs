//! The VPN: sessions bridged to a TUN device, with routing by allowed IPs, an audit trail and a
//! status snapshot for `jvpn status`.
//!
//! [`ClientTunnel`] carries the client's TUN over one session to the server and starts a new
//! session (a new BIRTH, reason logged) when the server has lost the old one — after a server
//! restart, say. [`ServerTunnel`] carries many clients: an inner packet from the TUN goes to the
//! session of the peer whose allowed IPs contain its destination; a packet from a client is
//! accepted only if its source lies in that client's allowed IPs, and goes to another client
//! directly when the destination is theirs (no kernel forwarding needed), else to the TUN.

mod client;
mod error;
mod server;
mod status;

use std::path::PathBuf;

pub(crate) use client::TunSide;
pub use client::{ClientTunnel, ClientTunnelConfig};
pub use error::TunnelError;
pub use jvpn_tun::IpPrefix;
pub(crate) use server::{Route, ServerTunSide};
pub use server::{ServerTunnel, ServerTunnelConfig, TunnelPeer};
pub(crate) use status::millis;
pub use status::{
    EndpointStatus, PathStatus, STATUS_SCHEMA_VERSION, SessionStatus, StatusSource, SwitchStatus,
    TunStatus, TunnelStatus,
};

use jvpn_session::AuditRecord;

use crate::audit::AuditLog;

/// How many transitions a status snapshot carries per session.
const HISTORY: usize = 16;

/// Where transitions go: the audit file (when configured) and a short in-memory history for
/// status snapshots.
#[derive(Debug)]
pub(crate) struct Journal {
    audit: Option<AuditLog>,
    history: std::collections::VecDeque<AuditRecord>,
    audit_errors: u64,
}

impl Journal {
    fn open(path: Option<&PathBuf>) -> Result<Journal, TunnelError> {
        let audit = path
            .map(|p| {
                AuditLog::open(p).map_err(|source| TunnelError::AuditLog {
                    path: p.clone(),
                    source,
                })
            })
            .transpose()?;
        Ok(Journal {
            audit,
            history: std::collections::VecDeque::with_capacity(HISTORY),
            audit_errors: 0,
        })
    }

    pub(crate) fn record(&mut self, record: &AuditRecord) {
        if let Some(audit) = &mut self.audit
            && let Err(error) = audit.append(record)
        {
            // Losing audit lines must not take the tunnel down; it is counted and logged.
            self.audit_errors += 1;
            tracing::warn!(%error, path = %audit.path().display(), "cannot append to audit log");
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(record.clone());
    }

    pub(crate) fn history_for(&self, session_id: Option<&str>) -> Vec<AuditRecord> {
        self.history
            .iter()
            .filter(|r| session_id.is_none() || r.session_id.as_deref() == session_id)
            .cloned()
            .collect()
    }
}

/// The allowed IPs a client routes into its tunnel when none are given: the /24 (IPv4) or /64
/// (IPv6) network around each of its addresses.
pub fn default_allowed_ips(addresses: &[IpPrefix]) -> Vec<IpPrefix> {
    let mut out: Vec<IpPrefix> = addresses
        .iter()
        .filter_map(|a| {
            let widest = if a.is_ipv6() { 64 } else { 24 };
            IpPrefix::new(a.addr(), a.prefix_len().min(widest))
                .ok()
                .map(|p| p.network())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allowed_ips_cover_the_network_around_each_address() {
        let addresses: Vec<IpPrefix> = ["10.77.0.2/32", "10.9.0.5/16", "fd77::2/128"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let allowed: Vec<String> = default_allowed_ips(&addresses)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(allowed, ["10.9.0.0/16", "10.77.0.0/24", "fd77::/64"]);
    }
}

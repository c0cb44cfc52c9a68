//! The transports built into this binary, by kind. A library user adds their own with
//! [`Transports::with`]; the CLI picks the one that matches each `--listen` URL or the server URL.

use std::collections::BTreeMap;
use std::sync::Arc;

use jvpn_transport::{Transport, TransportKind};

/// A set of transports, at most one per kind.
#[derive(Clone, Debug, Default)]
pub struct Transports {
    by_kind: BTreeMap<String, Arc<dyn Transport>>,
}

impl Transports {
    /// No transports.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every transport compiled in (cargo features `udp`, `quic`, `wss`), with default settings;
    /// WSS goes through the HTTP CONNECT proxy named by `HTTPS_PROXY` / `ALL_PROXY` unless
    /// `NO_PROXY` exempts the host.
    pub fn builtin() -> Self {
        #[allow(
            unused_mut,
            reason = "which lines remain depends on the enabled features"
        )]
        let mut set = Self::empty();
        #[cfg(feature = "udp")]
        {
            set = set.with(crate::udp());
        }
        #[cfg(feature = "quic")]
        {
            set = set.with(Arc::new(jvpn_transport_quic::QuicTransport::default()));
        }
        #[cfg(feature = "wss")]
        {
            let config = jvpn_transport_wss::WssConfig {
                proxy: jvpn_transport_wss::ProxyConfig::from_env(),
                ..jvpn_transport_wss::WssConfig::default()
            };
            set = set.with(Arc::new(jvpn_transport_wss::WssTransport::new(config)));
        }
        set
    }

    /// Adds (or replaces) the transport for its kind.
    pub fn with(mut self, transport: Arc<dyn Transport>) -> Self {
        self.by_kind.insert(transport.kind().to_string(), transport);
        self
    }

    /// The transport for `kind`, if this set has one.
    pub fn get(&self, kind: &TransportKind) -> Option<Arc<dyn Transport>> {
        self.by_kind.get(&kind.to_string()).cloned()
    }

    /// The kinds available, in name order.
    pub fn kinds(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_kind.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_set_has_udp_and_finds_it_by_kind() {
        let set = Transports::builtin();
        assert!(set.get(&TransportKind::Udp).is_some());
        assert!(set.kinds().any(|k| k == "udp"));
        assert!(
            Transports::empty()
                .get(&TransportKind::custom("carrier-pigeon").expect("a valid name"))
                .is_none()
        );
    }
}

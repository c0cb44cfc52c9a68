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
        Self::builtin_with_proxy(None)
    }

    /// Like [`Transports::builtin`], but WSS goes through the HTTP CONNECT proxy `proxy`
    /// (`http://[user:pass@]host:port`) when one is given, whatever the environment says
    /// (`--proxy` wins over `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY`). Check the URL first with
    /// [`check_proxy`].
    pub fn builtin_with_proxy(proxy: Option<&str>) -> Self {
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
                proxy: jvpn_transport_wss::ProxyConfig::explicit_or_env(proxy.map(str::to_owned)),
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

/// A `--proxy` value that is not an HTTP proxy URL; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProxyError(String);

/// Checks an HTTP CONNECT proxy URL (`http://[user:pass@]host:port`) without connecting, so
/// that a bad `--proxy` is reported before anything starts.
///
/// # Errors
/// [`ProxyError`] saying what is wrong (never showing the password).
pub fn check_proxy(url: &str) -> Result<(), ProxyError> {
    #[cfg(feature = "wss")]
    {
        jvpn_transport_wss::ProxyConfig::Http {
            url: url.to_owned(),
        }
        .validate()
        .map_err(|e| ProxyError(e.to_string()))
    }
    #[cfg(not(feature = "wss"))]
    {
        let _ = url;
        Err(ProxyError(
            "a proxy only serves the wss transport, which this jvpn was built without".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_without_http_scheme_is_refused_and_a_good_one_accepted() {
        assert!(check_proxy("http://user:secret@127.0.0.1:3128").is_ok());
        let error = check_proxy("socks5://127.0.0.1:1080").unwrap_err();
        assert!(!error.to_string().is_empty());
    }

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

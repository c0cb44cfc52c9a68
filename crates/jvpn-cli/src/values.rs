//! Parsers for the values of flags, shared by the command line and config files so that a value
//! means the same in both places.

use std::net::Ipv6Addr;

use jvpn::keyfile::{self, KeyFileError};
use jvpn::transport::{TransportKind, TransportUrl, UrlError};
use jvpn::wire::keys::PublicKey;
use jvpn_tun::{IpPrefix, PrefixError};
use serde::Deserialize;

/// Why a flag or config value is not valid. Each message shows the expected form.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ValueError {
    /// Not an `ADDRESS/LENGTH` prefix.
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// A `--peer` value without `=`: write `PUBKEY=ALLOWED_IPS`.
    #[error(
        "`{input}` is not a peer: write PUBKEY=ALLOWED_IPS, e.g. \"$(cat client.pub)=10.77.0.2/32\" \
         (allowed IPs comma-separated)"
    )]
    PeerForm {
        /// The value as given.
        input: String,
    },
    /// A `--peer` value with nothing after `=`: list the inner addresses the peer may use.
    #[error(
        "peer `{input}` has no allowed IPs: write PUBKEY=ALLOWED_IPS, e.g. \
         \"$(cat client.pub)=10.77.0.2/32\""
    )]
    PeerNoAllowedIps {
        /// The value as given.
        input: String,
    },
    /// The public key part of `--peer` (or `--server-key`) is not a key.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// An allowed IP of a peer is not a prefix.
    #[error("peer allowed IP: {0}")]
    PeerPrefix(PrefixError),
    /// Not a transport URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The URL names a transport this build cannot use.
    #[error(
        "the {kind} transport is not built into this jvpn (it was compiled without the `{kind}` \
         feature): use another one, e.g. --transports udp"
    )]
    NotBuilt {
        /// The transport asked for.
        kind: TransportKind,
    },
    /// A URL for SERVER_HOST whose scheme is not among `--transports`.
    #[error(
        "{url} uses the {kind} transport, which --transports ({allowed}) does not list: drop \
         --transports or add {kind} to it"
    )]
    SchemeNotListed {
        /// The server URL.
        url: String,
        /// Its transport.
        kind: TransportKind,
        /// The `--transports` list as given.
        allowed: String,
    },
    /// A port (in SERVER_HOST or --port) with several transports: one port cannot serve them all.
    #[error(
        "a port ({host}) cannot apply to several transports ({transports}): leave the port out \
         to use each transport's default (udp 51820, quic 443, wss 443), or give one URL per \
         transport, e.g. udp://HOST:51820 quic://HOST:8443 wss://HOST:443/jvpn"
    )]
    PortAmbiguous {
        /// SERVER_HOST (and --port) as given.
        host: String,
        /// The `--transports` list.
        transports: String,
    },
    /// The same candidate URL is listed twice.
    #[error("{url} is listed twice: give each server URL once")]
    Duplicate {
        /// The URL.
        url: String,
    },
    /// Not an HTTP proxy URL.
    #[error("{0} (write http://[user:pass@]host:port)")]
    Proxy(#[from] jvpn::transports::ProxyError),
    /// The port is given twice with different values.
    #[error("the port is given twice ({host} and --port {port}): keep one of them")]
    PortTwice {
        /// SERVER_HOST as given.
        host: String,
        /// The `--port` value.
        port: u16,
    },
}

/// Checks a `--proxy` value: `http://[user:pass@]host:port`.
pub(crate) fn proxy(text: &str) -> Result<String, ValueError> {
    let text = text.trim();
    jvpn::transports::check_proxy(text)?;
    Ok(text.to_owned())
}

/// Parses `ADDRESS/LENGTH` (`10.77.0.1/24`, `fd77::1/64`).
pub(crate) fn prefix(text: &str) -> Result<IpPrefix, ValueError> {
    Ok(text.trim().parse::<IpPrefix>()?)
}

/// A `--peer` value: a client's public key and the inner prefixes it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerSpec {
    /// The client's public key.
    pub(crate) public_key: PublicKey,
    /// Inner prefixes the client may use as source and that route to it.
    pub(crate) allowed_ips: Vec<IpPrefix>,
}

/// Parses `PUBKEY=PREFIX[,PREFIX...]`.
///
/// A base64 key ends in `=` padding, so the split is at the last `=`: prefixes never hold one.
pub(crate) fn peer(text: &str) -> Result<PeerSpec, ValueError> {
    let text = text.trim();
    let Some((key, ips)) = text.rsplit_once('=') else {
        return Err(ValueError::PeerForm { input: text.into() });
    };
    if key.is_empty() {
        return Err(ValueError::PeerForm { input: text.into() });
    }
    if ips.trim().is_empty() {
        return Err(ValueError::PeerNoAllowedIps { input: text.into() });
    }
    let public_key = keyfile::parse_public_key(key)?;
    let allowed_ips = ips
        .split(',')
        .map(|ip| {
            ip.trim()
                .parse::<IpPrefix>()
                .map_err(ValueError::PeerPrefix)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PeerSpec {
        public_key,
        allowed_ips,
    })
}

/// A transport named in `--transports`. Unknown names are refused by the parser; a known name
/// whose transport is not compiled in parses (so configs can be written ahead) but is refused
/// when used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportName {
    /// UDP datagrams.
    Udp,
    /// QUIC datagrams.
    Quic,
    /// WebSocket over TLS.
    Wss,
}

impl TransportName {
    /// The transport kind this name stands for.
    pub(crate) fn kind(self) -> TransportKind {
        match self {
            TransportName::Udp => TransportKind::Udp,
            TransportName::Quic => TransportKind::Quic,
            TransportName::Wss => TransportKind::Wss,
        }
    }

    /// Parses one name as the command line does (case-insensitive).
    pub(crate) fn parse(text: &str) -> Result<TransportName, String> {
        <TransportName as clap::ValueEnum>::from_str(text.trim(), true)
            .map_err(|_| format!("unknown transport `{}`: use udp, quic or wss", text.trim()))
    }
}

/// Refuses a transport this build cannot run.
pub(crate) fn check_built(kind: &TransportKind) -> Result<(), ValueError> {
    if jvpn::Transports::builtin().get(kind).is_some() {
        Ok(())
    } else {
        Err(ValueError::NotBuilt { kind: kind.clone() })
    }
}

/// Parses a `--listen` value: a URL (`udp://0.0.0.0:51820`) or `ADDRESS:PORT` for UDP.
pub(crate) fn listen(text: &str) -> Result<TransportUrl, ValueError> {
    let text = text.trim();
    let url = if text.contains("://") {
        TransportUrl::parse(text)?
    } else {
        TransportUrl::parse(&format!("udp://{}", bracket_bare_ipv6(text)))?
    };
    check_built(&url.kind)?;
    Ok(url)
}

/// Builds the server URL from SERVER_HOST (`host`, `host:port`, `[v6]:port`, bare IPv6 or a
/// URL), the `--transports` list (its first entry is used; `None` when not given) and `--port`.
pub(crate) fn server_url(
    host: &str,
    transports: Option<&[TransportName]>,
    port: Option<u16>,
) -> Result<TransportUrl, ValueError> {
    let host = host.trim();
    if host.contains("://") {
        let url = TransportUrl::parse(host)?;
        if let Some(list) = transports
            && !list.iter().any(|t| t.kind() == url.kind)
        {
            return Err(ValueError::SchemeNotListed {
                url: host.into(),
                kind: url.kind,
                allowed: names(list),
            });
        }
        if let Some(port) = port
            && port != url.port
        {
            return Err(ValueError::PortTwice {
                host: host.into(),
                port,
            });
        }
        check_built(&url.kind)?;
        return Ok(url);
    }

    let kind = transports
        .and_then(|list| list.first())
        .map_or(TransportKind::Udp, |t| t.kind());
    if let Some(list) = transports {
        for name in list {
            check_built(&name.kind())?;
        }
    }
    let authority = bracket_bare_ipv6(host);
    let url = match port {
        Some(port) if !has_port(host) => {
            TransportUrl::parse(&format!("{kind}://{authority}:{port}"))?
        }
        _ => TransportUrl::parse(&format!("{kind}://{authority}"))?,
    };
    if let Some(port) = port
        && port != url.port
    {
        return Err(ValueError::PortTwice {
            host: host.into(),
            port,
        });
    }
    Ok(url)
}

/// The candidate server URLs of `jvpn connect` / `jvpn netcheck`, most preferred first, from the
/// SERVER_HOST values (each a URL — one candidate — or a host — one candidate per transport in
/// `transports`, default udp, on each transport's default port unless exactly one transport is
/// listed and a port is given in the host or with `--port`).
pub(crate) fn candidates(
    hosts: &[String],
    transports: Option<&[TransportName]>,
    port: Option<u16>,
) -> Result<Vec<TransportUrl>, ValueError> {
    let mut out: Vec<TransportUrl> = Vec::new();
    for host in hosts {
        let host = host.trim();
        let urls = match transports {
            Some(list) if list.len() > 1 && !host.contains("://") => {
                if port.is_some() || has_port(host) {
                    return Err(ValueError::PortAmbiguous {
                        host: match port {
                            Some(port) => format!("{host}, --port {port}"),
                            None => host.to_owned(),
                        },
                        transports: names(list),
                    });
                }
                list.iter()
                    .map(|t| server_url(host, Some(std::slice::from_ref(t)), None))
                    .collect::<Result<Vec<_>, _>>()?
            }
            _ => vec![server_url(host, transports, port)?],
        };
        for url in urls {
            if out.contains(&url) {
                return Err(ValueError::Duplicate {
                    url: url.to_string(),
                });
            }
            out.push(url);
        }
    }
    Ok(out)
}

fn names(list: &[TransportName]) -> String {
    list.iter()
        .map(|t| t.kind().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `host` (not a URL) names a port.
fn has_port(host: &str) -> bool {
    let authority = bracket_bare_ipv6(host);
    if authority.starts_with('[') {
        authority.contains("]:")
    } else {
        authority.contains(':')
    }
}

/// `fd77::1` → `[fd77::1]`, so that its colons are not mistaken for a port separator.
fn bracket_bare_ipv6(host: &str) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests;

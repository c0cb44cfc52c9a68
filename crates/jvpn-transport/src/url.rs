//! [`TransportUrl`]: where a transport connects or listens (`udp://host:port`, …).

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::kind::{TransportKind, shorten};

/// The path a `wss://` URL gets when it names none.
pub const DEFAULT_WSS_PATH: &str = "/jvpn";

/// The longest host name accepted (the DNS limit).
const MAX_HOST_LEN: usize = 253;

const EXPECTED: &str = "expected udp://host:port, quic://host:port or wss://host:port/path";

/// A transport endpoint: `udp://host:port`, `quic://host:port` or `wss://host:port/path`.
///
/// - The scheme names the [`TransportKind`] (case-insensitive).
/// - `host` is a DNS name, an IPv4 address or an IPv6 address; IPv6 is written in brackets in the
///   URL (`udp://[::1]:51820`) and stored **without** them (`"::1"`), ready for name resolution.
/// - The port may be left out: `udp://` defaults to 51820, `quic://` and `wss://` to 443.
///   Port 0 is accepted (a listener then binds an ephemeral port).
/// - Only `wss://` has a path; it defaults to [`DEFAULT_WSS_PATH`]. A lone trailing `/` on a
///   `udp://` or `quic://` URL is tolerated and dropped.
///
/// [`TransportUrl::parse`] and `FromStr` accept the built-in schemes only;
/// [`TransportUrl::parse_custom`] also accepts custom schemes (a valid [`TransportKind`] name),
/// which need an explicit port and may carry a path. `Display` always writes the port, so parsing
/// the display of a URL gives the URL back. Serde uses the string form and deserializes with
/// [`TransportUrl::parse_custom`], so every serialized URL reads back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TransportUrl {
    /// Which transport the URL is for (its scheme).
    pub kind: TransportKind,
    /// DNS name or IP address, IPv6 without brackets.
    pub host: String,
    /// UDP or TCP port.
    pub port: u16,
    /// The HTTP path for `wss://` (starts with `/`); `None` for `udp://` and `quic://`.
    pub path: Option<String>,
}

/// Why a string is not a [`TransportUrl`]. Every message shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// There is no `scheme://` in front. Write e.g. `udp://vpn.example.com:51820`.
    #[error("`{input}` has no scheme: {EXPECTED}")]
    MissingScheme {
        /// The input (shortened if very long).
        input: String,
    },
    /// The scheme is not `udp`, `quic` or `wss` (or not a valid transport name for custom URLs).
    #[error("unknown transport scheme `{scheme}://`: {EXPECTED}")]
    UnknownScheme {
        /// The scheme as written (shortened if very long).
        scheme: String,
    },
    /// Nothing between `://` and the port or path. Put a host name or address there.
    #[error("`{input}` has an empty host: {EXPECTED}")]
    EmptyHost {
        /// The input (shortened if very long).
        input: String,
    },
    /// The host contains characters that no DNS name or IP address has, or is too long.
    /// Use letters, digits, `-`, `.` and `_`, or an IP address (IPv6 in brackets).
    #[error(
        "invalid host `{host}`: use a DNS name (letters, digits, '-', '.', '_'), an IPv4 address, \
         or an IPv6 address in brackets like udp://[::1]:51820"
    )]
    InvalidHost {
        /// The host as written (shortened if very long).
        host: String,
    },
    /// An IPv6 address was written without brackets, so its colons clash with the port's.
    #[error(
        "IPv6 address `{host}` must be in brackets: write [{host}]:port, e.g. udp://[::1]:51820"
    )]
    UnbracketedIpv6 {
        /// The host as written (shortened if very long).
        host: String,
    },
    /// The URL ends in `:` with no port after it, or a custom scheme names no port. Write the port
    /// number (or drop the `:` to use the default port of udp/quic/wss).
    #[error(
        "`{input}` names no port: write host:port (udp defaults to 51820, quic and wss to 443 \
         when the ':' is left out)"
    )]
    MissingPort {
        /// The input (shortened if very long).
        input: String,
    },
    /// The port is not a decimal number.
    #[error("port `{port}` is not a number: write host:port with a port from 0 to 65535")]
    InvalidPort {
        /// The port as written (shortened if very long).
        port: String,
    },
    /// The port is a number above 65535.
    #[error("port {port} is out of range: ports go from 0 to 65535")]
    PortOutOfRange {
        /// The port as written (shortened if very long).
        port: String,
    },
    /// A path was given on a `udp://` or `quic://` URL, which have none. Remove it.
    #[error("{kind}:// URLs take no path (found `{path}`): write {kind}://host:port")]
    PathNotAllowed {
        /// The URL's transport kind.
        kind: TransportKind,
        /// The path as written (shortened if very long).
        path: String,
    },
    /// The path contains spaces, control or non-ASCII characters. Percent-encode them.
    #[error(
        "invalid path `{path}`: a wss path starts with '/' and holds only visible ASCII \
         (percent-encode anything else), like wss://host:443/jvpn"
    )]
    InvalidPath {
        /// The path as written (shortened if very long).
        path: String,
    },
}

impl TransportUrl {
    /// Parses a URL with one of the built-in schemes (`udp`, `quic`, `wss`).
    ///
    /// # Errors
    /// [`UrlError`] saying what is wrong, with the expected form.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        parse(input, false)
    }

    /// Like [`TransportUrl::parse`], but also accepts custom schemes (any valid
    /// [`TransportKind`] name). Custom URLs need an explicit port and may carry a path.
    ///
    /// # Errors
    /// [`UrlError`] saying what is wrong, with the expected form.
    pub fn parse_custom(input: &str) -> Result<Self, UrlError> {
        parse(input, true)
    }

    /// `host:port` as a string suitable for name resolution (IPv6 in brackets).
    #[must_use]
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn parse(input: &str, allow_custom: bool) -> Result<TransportUrl, UrlError> {
    let Some((scheme, rest)) = input.split_once("://") else {
        return Err(UrlError::MissingScheme {
            input: shorten(input),
        });
    };
    let kind = scheme_kind(scheme, allow_custom)?;

    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], Some(&rest[slash..])),
        None => (rest, None),
    };
    let (host, port) = split_authority(input, authority)?;
    let port = match port {
        Some(port) => port,
        None => kind.default_port().ok_or_else(|| UrlError::MissingPort {
            input: shorten(input),
        })?,
    };
    let path = check_path(&kind, path)?;
    Ok(TransportUrl {
        kind,
        host,
        port,
        path,
    })
}

fn scheme_kind(scheme: &str, allow_custom: bool) -> Result<TransportKind, UrlError> {
    let unknown = || UrlError::UnknownScheme {
        scheme: shorten(scheme),
    };
    match scheme.parse::<TransportKind>() {
        Ok(TransportKind::Custom(_)) if !allow_custom => Err(unknown()),
        Ok(kind) => Ok(kind),
        Err(_) => Err(unknown()),
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the port is `None` when left out.
fn split_authority(input: &str, authority: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((v6, after)) = bracketed.split_once(']') else {
            return Err(UrlError::InvalidHost {
                host: shorten(authority),
            });
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(UrlError::InvalidHost { host: shorten(v6) });
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => {
                return Err(UrlError::InvalidHost {
                    host: shorten(authority),
                });
            }
        };
        (v6, port)
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(UrlError::UnbracketedIpv6 {
                    host: shorten(guess_ipv6(authority)),
                });
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };

    if host.is_empty() {
        return Err(UrlError::EmptyHost {
            input: shorten(input),
        });
    }
    let is_v6 = host.contains(':');
    if !is_v6 && !valid_host_name(host) {
        return Err(UrlError::InvalidHost {
            host: shorten(host),
        });
    }
    let port = port.map(|p| parse_port(input, p)).transpose()?;
    Ok((host.to_owned(), port))
}

/// The IPv6 address someone most likely meant in an unbracketed `addr` or `addr:port`.
fn guess_ipv6(authority: &str) -> &str {
    if authority.parse::<Ipv6Addr>().is_ok() {
        return authority;
    }
    match authority.rsplit_once(':') {
        Some((addr, _)) if addr.parse::<Ipv6Addr>().is_ok() => addr,
        _ => authority,
    }
}

fn valid_host_name(host: &str) -> bool {
    host.len() <= MAX_HOST_LEN
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn parse_port(input: &str, port: &str) -> Result<u16, UrlError> {
    if port.is_empty() {
        return Err(UrlError::MissingPort {
            input: shorten(input),
        });
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidPort {
            port: shorten(port),
        });
    }
    // All digits: the only way to fail is overflow.
    port.parse::<u16>().map_err(|_| UrlError::PortOutOfRange {
        port: shorten(port),
    })
}

fn check_path(kind: &TransportKind, path: Option<&str>) -> Result<Option<String>, UrlError> {
    match kind {
        TransportKind::Udp | TransportKind::Quic => match path {
            None | Some("/") => Ok(None),
            Some(path) => Err(UrlError::PathNotAllowed {
                kind: kind.clone(),
                path: shorten(path),
            }),
        },
        _ => match path {
            None if *kind == TransportKind::Wss => Ok(Some(DEFAULT_WSS_PATH.to_owned())),
            None => Ok(None),
            Some(path) if path.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(path.to_owned())),
            Some(path) => Err(UrlError::InvalidPath {
                path: shorten(path),
            }),
        },
    }
}

impl fmt::Display for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.kind, self.host, self.port)?;
        } else {
            write!(f, "{}://{}:{}", self.kind, self.host, self.port)?;
        }
        if let Some(path) = &self.path {
            f.write_str(path)?;
        }
        Ok(())
    }
}

/// Same as [`TransportUrl::parse`]: built-in schemes only.
impl FromStr for TransportUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Same as [`TransportUrl::parse_custom`], so that every serialized URL deserializes.
impl TryFrom<String> for TransportUrl {
    type Error = UrlError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse_custom(&value)
    }
}

impl From<TransportUrl> for String {
    fn from(url: TransportUrl) -> Self {
        url.to_string()
    }
}

#[cfg(test)]
mod tests;

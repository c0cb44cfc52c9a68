//! [`ProxyConfig`]: direct, an explicit HTTP proxy, or the environment's (`HTTPS_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`); parsing of proxy URLs and of `NO_PROXY` lists.
//!
//! Everything here is pure: [`ProxyConfig::from_env`] is the only function that reads the
//! environment, and it hands the values to [`ProxyConfig::from_lookup`].

mod connect;

use std::fmt;

use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

use crate::WssError;

pub(crate) use connect::tunnel;

/// How the client reaches the server's TCP port.
///
/// `Debug` never shows proxy credentials; they are wiped from memory when the value is dropped.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxyConfig {
    /// Connect directly (the default: the library never reads the environment by itself).
    #[default]
    Direct,
    /// Every connection goes through this HTTP proxy, `http://[user:pass@]host:port` (port 80
    /// when left out; user and password may be percent-encoded). `NO_PROXY` is not consulted:
    /// an explicit proxy (e.g. `--proxy`) wins over the environment.
    Http {
        /// The proxy URL.
        url: String,
    },
    /// What the environment said ([`ProxyConfig::from_env`]): this proxy, if any, except for
    /// the hosts in `no_proxy`.
    Env {
        /// The proxy URL from `HTTPS_PROXY` / `ALL_PROXY`, or `None`.
        url: Option<String>,
        /// The hosts reached directly.
        no_proxy: NoProxy,
    },
}

impl ProxyConfig {
    /// The explicit proxy if one is given (e.g. `--proxy`), otherwise what the environment says.
    #[must_use]
    pub fn explicit_or_env(explicit: Option<String>) -> Self {
        match explicit {
            Some(url) => Self::Http { url },
            None => Self::from_env(),
        }
    }

    /// Reads `HTTPS_PROXY` / `https_proxy`, then `ALL_PROXY` / `all_proxy` (the first one set
    /// and not empty wins, upper case first), and `NO_PROXY` / `no_proxy`.
    /// [`ProxyConfig::Direct`] if no proxy is set.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`ProxyConfig::from_env`], reading variables through `var` (for tests and embedders).
    #[must_use]
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .filter_map(|name| var(name))
                .find(|value| !value.trim().is_empty())
        };
        let https = first(&["HTTPS_PROXY", "https_proxy"]);
        let all = first(&["ALL_PROXY", "all_proxy"]);
        let no_proxy = first(&["NO_PROXY", "no_proxy"]);
        Self::from_vars(https.as_deref(), all.as_deref(), no_proxy.as_deref())
    }

    /// The configuration for these variable values: `https_proxy` wins over `all_proxy`;
    /// [`ProxyConfig::Direct`] if neither is set (or both are blank).
    #[must_use]
    pub fn from_vars(
        https_proxy: Option<&str>,
        all_proxy: Option<&str>,
        no_proxy: Option<&str>,
    ) -> Self {
        let url = [https_proxy, all_proxy]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|value| !value.is_empty());
        match url {
            None => Self::Direct,
            Some(url) => Self::Env {
                url: Some(url.to_owned()),
                no_proxy: NoProxy::parse(no_proxy.unwrap_or("")),
            },
        }
    }

    /// Checks the proxy URL, if any, so that a bad `--proxy` is reported before connecting.
    ///
    /// # Errors
    /// [`WssError::InvalidProxyUrl`] saying what is wrong.
    pub fn validate(&self) -> Result<(), WssError> {
        match self {
            Self::Direct | Self::Env { url: None, .. } => Ok(()),
            Self::Http { url } | Self::Env { url: Some(url), .. } => ProxyUrl::parse(url).map(drop),
        }
    }

    /// The proxy to use for a connection to `host`, or `None` to connect directly.
    pub(crate) fn proxy_for(&self, host: &str) -> Result<Option<ProxyUrl>, WssError> {
        match self {
            Self::Direct | Self::Env { url: None, .. } => Ok(None),
            Self::Env { no_proxy, .. } if no_proxy.matches(host) => Ok(None),
            Self::Http { url } | Self::Env { url: Some(url), .. } => ProxyUrl::parse(url).map(Some),
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct => f.write_str("Direct"),
            Self::Http { url } => f
                .debug_struct("Http")
                .field("url", &redact_url(url))
                .finish(),
            Self::Env { url, no_proxy } => f
                .debug_struct("Env")
                .field("url", &url.as_deref().map(redact_url))
                .field("no_proxy", no_proxy)
                .finish(),
        }
    }
}

impl Drop for ProxyConfig {
    fn drop(&mut self) {
        match self {
            Self::Direct | Self::Env { url: None, .. } => {}
            Self::Http { url } | Self::Env { url: Some(url), .. } => url.zeroize(),
        }
    }
}

/// `url` with any `user:pass@` replaced by `***@`.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// A parsed HTTP proxy URL. The password is wiped from memory on drop and never shown.
pub(crate) struct ProxyUrl {
    /// Host name or IP (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `user:pass`, percent-decoded.
    credentials: Option<Zeroizing<String>>,
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ProxyUrl {
    /// Parses `[http://][user[:pass]@]host[:port][/]`.
    pub(crate) fn parse(url: &str) -> Result<Self, WssError> {
        let invalid = |reason| WssError::InvalidProxyUrl {
            url: redact_url(url),
            reason,
        };
        let url = url.trim();
        let rest = match url.find("://") {
            Some(i) if url[..i].eq_ignore_ascii_case("http") => &url[i + 3..],
            Some(_) => {
                return Err(invalid(
                    "only http:// proxies are supported (not https:// or socks)",
                ));
            }
            None => url,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(invalid("a proxy URL has no path"));
        }
        let (credentials, authority) = match rest.rfind('@') {
            Some(at) => {
                let decoded = percent_decode(&rest[..at])
                    .ok_or_else(|| invalid("the user or password is badly percent-encoded"))?;
                (Some(decoded), &rest[at + 1..])
            }
            None => (None, rest),
        };
        let (host, port) = split_host_port(authority).ok_or_else(|| invalid("bad host or port"))?;
        Ok(Self {
            host,
            port,
            credentials,
        })
    }

    /// `host:port` (IPv6 in brackets), as shown in messages.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The `Proxy-Authorization` header value, when credentials were given.
    pub(crate) fn authorization(&self) -> Option<Zeroizing<String>> {
        self.credentials.as_ref().map(|userpass| {
            let encoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(userpass.as_bytes()),
            );
            Zeroizing::new(format!("Basic {}", encoded.as_str()))
        })
    }
}

/// `host[:port]` or `[v6][:port]`; port 80 when left out.
fn split_host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (v6, None),
            _ => (v6, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !valid_host {
        return None;
    }
    let port = match port {
        None => 80,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            port.parse().ok()?
        }
        Some(_) => return None,
    };
    Some((host.to_owned(), port))
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(input: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(Vec::with_capacity(input.len()));
    let mut bytes = input.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            // Two hex digits always fit a byte.
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    let text = std::str::from_utf8(&out).ok()?;
    Some(Zeroizing::new(text.to_owned()))
}

/// The hosts that bypass the environment's proxy (`NO_PROXY`): a comma- or space-separated list
/// of host names, domains and IP addresses, case-insensitive.
///
/// - `*` alone means "no proxy for any host";
/// - `example.com`, `.example.com` and `*.example.com` all match `example.com` and every name
///   under it (`vpn.example.com`), but not `badexample.com`;
/// - an IP address matches itself (IPv6 with or without brackets); CIDR ranges are not
///   supported;
/// - a `:port` on an entry is ignored (the entry matches every port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    entries: Vec<String>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value. Never fails: empty entries are skipped.
    #[must_use]
    pub fn parse(list: &str) -> Self {
        let mut no_proxy = Self::default();
        for entry in list.split([',', ' ', '\t']).map(str::trim) {
            if entry == "*" {
                no_proxy.all = true;
                continue;
            }
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            let entry = normalize(strip_port(entry));
            if !entry.is_empty() {
                no_proxy.entries.push(entry);
            }
        }
        no_proxy
    }

    /// Whether connections to `host` (as written in the URL, IPv6 with or without brackets)
    /// bypass the proxy.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = normalize(host);
        self.entries.iter().any(|entry| {
            host == *entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|prefix| prefix.ends_with('.'))
        })
    }

    /// Whether the list is `*` (never a proxy).
    #[must_use]
    pub fn is_all(&self) -> bool {
        self.all
    }
}

/// Drops a `:port` from `host:port` or `[v6]:port`; an unbracketed IPv6 address is kept whole.
fn strip_port(entry: &str) -> &str {
    if let Some(bracketed) = entry.strip_prefix('[') {
        return bracketed.split_once(']').map_or(entry, |(v6, _)| v6);
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => entry,
    }
}

fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests;

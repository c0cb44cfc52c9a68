//! [`TransportKind`]: the name of a transport (`udp`, `quic`, `wss` or a custom one).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest custom transport name accepted, in bytes.
pub const MAX_KIND_LEN: usize = 32;

/// Which transport carries a link: one of the built-in ones or a custom, named one.
///
/// The textual form (used in URLs as the scheme, in config files, in audit records and on the
/// command line) is lowercase: `udp`, `quic`, `wss`, or a custom name made of `a-z`, `0-9` and `-`
/// (at most [`MAX_KIND_LEN`] bytes). Parsing is case-insensitive; serde uses the same string.
///
/// Build custom kinds with [`TransportKind::custom`] (or `parse`), which validates the name and
/// maps built-in names to their variants, so that `Custom("udp")` never arises from parsing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum TransportKind {
    /// Plain UDP datagrams.
    Udp,
    /// QUIC DATAGRAM frames.
    Quic,
    /// Binary WebSocket messages over TLS.
    Wss,
    /// A transport provided by an embedder, by name.
    Custom(String),
}

/// A transport name that cannot be a [`TransportKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KindError {
    /// The name was empty. Use `udp`, `quic`, `wss` or a custom name.
    #[error(
        "empty transport name: use udp, quic, wss, or a custom name of a-z, 0-9 and '-' \
         (at most {MAX_KIND_LEN} characters)"
    )]
    Empty,
    /// The name contains a character outside `a-z`, `0-9`, `-` (after lowercasing), or is too long.
    #[error(
        "invalid transport name `{name}`: use udp, quic, wss, or a custom name of a-z, 0-9 and '-' \
         (at most {MAX_KIND_LEN} characters)"
    )]
    Invalid {
        /// The rejected name (shortened if very long).
        name: String,
    },
}

impl TransportKind {
    /// Validates `name` and returns the matching kind (a built-in variant for `udp`, `quic`,
    /// `wss`, in any case; otherwise [`TransportKind::Custom`] with the lowercased name).
    ///
    /// # Errors
    /// [`KindError`] if the name is empty, too long or contains characters other than
    /// `a-z`, `0-9` and `-`.
    pub fn custom(name: &str) -> Result<Self, KindError> {
        name.parse()
    }

    /// The lowercase name of this kind, as used in URLs and config files.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Udp => "udp",
            Self::Quic => "quic",
            Self::Wss => "wss",
            Self::Custom(name) => name,
        }
    }

    /// The port used when a URL of this kind names none: 51820 for UDP (WireGuard's port),
    /// 443 for QUIC and WSS (to look like HTTPS/HTTP3 to middleboxes); `None` for custom kinds.
    #[must_use]
    pub fn default_port(&self) -> Option<u16> {
        match self {
            Self::Udp => Some(51820),
            Self::Quic | Self::Wss => Some(443),
            Self::Custom(_) => None,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransportKind {
    type Err = KindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(KindError::Empty);
        }
        let valid = s.len() <= MAX_KIND_LEN
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'
            });
        if !valid {
            return Err(KindError::Invalid { name: shorten(s) });
        }
        let lower = s.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "udp" => Self::Udp,
            "quic" => Self::Quic,
            "wss" => Self::Wss,
            _ => Self::Custom(lower),
        })
    }
}

impl TryFrom<String> for TransportKind {
    type Error = KindError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<TransportKind> for String {
    fn from(kind: TransportKind) -> Self {
        match kind {
            TransportKind::Custom(name) => name,
            other => other.as_str().to_owned(),
        }
    }
}

/// Keeps error messages readable when someone passes a huge string.
pub(crate) fn shorten(s: &str) -> String {
    const LIMIT: usize = 64;
    if s.len() <= LIMIT {
        return s.to_owned();
    }
    let mut end = LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_parse_to_their_variants_in_any_case() {
        assert_eq!("udp".parse::<TransportKind>().unwrap(), TransportKind::Udp);
        assert_eq!(
            "QUIC".parse::<TransportKind>().unwrap(),
            TransportKind::Quic
        );
        assert_eq!("Wss".parse::<TransportKind>().unwrap(), TransportKind::Wss);
    }

    #[test]
    fn other_valid_names_become_lowercase_custom_kinds() {
        let kind: TransportKind = "My-Tunnel2".parse().unwrap();
        assert_eq!(kind, TransportKind::Custom("my-tunnel2".into()));
        assert_eq!(kind.to_string(), "my-tunnel2");
    }

    #[test]
    fn empty_and_invalid_names_are_rejected_with_what_is_allowed() {
        assert_eq!("".parse::<TransportKind>(), Err(KindError::Empty));
        let err = "udp/1".parse::<TransportKind>().unwrap_err();
        assert!(err.to_string().contains("a-z, 0-9 and '-'"), "{err}");
        let long = "a".repeat(MAX_KIND_LEN + 1);
        assert!(long.parse::<TransportKind>().is_err());
    }

    #[test]
    fn display_and_parse_round_trip() {
        for kind in [
            TransportKind::Udp,
            TransportKind::Quic,
            TransportKind::Wss,
            TransportKind::Custom("ble-mesh".into()),
        ] {
            assert_eq!(kind.to_string().parse::<TransportKind>().unwrap(), kind);
        }
    }

    #[test]
    fn serde_uses_the_lowercase_name() {
        let json = serde_json::to_string(&TransportKind::Quic).unwrap();
        assert_eq!(json, "\"quic\"");
        let back: TransportKind = serde_json::from_str("\"wss\"").unwrap();
        assert_eq!(back, TransportKind::Wss);
        assert!(serde_json::from_str::<TransportKind>("\"no spaces\"").is_err());
    }

    #[test]
    fn huge_invalid_names_are_shortened_in_errors() {
        let name = "é".repeat(1000);
        let err = name.parse::<TransportKind>().unwrap_err();
        assert!(err.to_string().len() < 300);
    }
}

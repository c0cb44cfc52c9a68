//! Config files (`-c FILE`): TOML whose keys are the flags' names (kebab-case, as on the command
//! line), plus a `[policy]` table with the keys of [`Policy`].
//!
//! Unknown keys are refused (a typo must not silently fall back to a default). A repeatable flag
//! takes a list in the file, or a single string; a single string means what the flag's value
//! means (so `allowed-ips = "10.77.0.0/24,fd77::/64"` is two prefixes). Relative paths are
//! relative to the file's directory, so a config works from any working directory.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use jvpn::session::Policy;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// A config file larger than this is not a jvpn config.
const MAX_CONFIG_LEN: u64 = 1 << 20;

/// Why a config file, or the settings merged from it and the flags, cannot be used. All of these
/// are usage errors (exit code 2): fix the file or the flags and run again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The config file is far too large to be one.
    #[error("config file {} is larger than 1 MiB: is it the right file?", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type; the message
    /// shows the line.
    #[error("config file {}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML reader said, with the line and the key.
        message: String,
    },
    /// A value is of the right type but not valid (a bad address, key or URL).
    #[error("{}: {why}", origin.name(key))]
    Value {
        /// Where the value came from: the config file or the command line.
        origin: Origin,
        /// The key (in the file) or the flag's name.
        key: &'static str,
        /// What is wrong and the expected form.
        why: String,
    },
    /// A required setting is neither on the command line nor in the config file.
    #[error("missing {flag}: {hint}")]
    Missing {
        /// The flag (and config key) to set.
        flag: &'static str,
        /// An example of what to write.
        hint: &'static str,
    },
    /// The `[policy]` values do not fit together.
    #[error("{origin}: [policy]: {source}")]
    Policy {
        /// Where the policy came from.
        origin: Origin,
        /// Which value is wrong.
        #[source]
        source: jvpn::session::PolicyError,
    },
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The command line.
    Flags,
    /// A config file.
    File(PathBuf),
}

impl Origin {
    /// How to name a setting from this origin: `--key` on the command line, `` `key` `` in a
    /// file (with the file's name).
    pub(crate) fn name(&self, key: &str) -> String {
        match self {
            // The one setting that is a positional argument on the command line.
            Origin::Flags if key == "server" => "SERVER_HOST".to_owned(),
            Origin::Flags => format!("--{key}"),
            Origin::File(path) => format!("config file {}: `{key}`", path.display()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flags => f.write_str("command line"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
        }
    }
}

/// The keys of a `jvpn server` config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ServerFile {
    pub(crate) key: Option<PathBuf>,
    pub(crate) address: Option<StrList>,
    pub(crate) listen: Option<StrList>,
    pub(crate) peer: Option<StrList>,
    pub(crate) audit_log: Option<PathBuf>,
    pub(crate) control: Option<PathBuf>,
    pub(crate) tun: Option<String>,
    pub(crate) mtu: Option<u16>,
    pub(crate) policy: Option<Policy>,
}

/// The keys of a `jvpn connect` config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ConnectFile {
    pub(crate) key: Option<PathBuf>,
    pub(crate) server_key: Option<String>,
    /// SERVER_HOST: one string or a list of them.
    pub(crate) server: Option<StrList>,
    pub(crate) address: Option<StrList>,
    pub(crate) allowed_ips: Option<StrList>,
    pub(crate) transports: Option<StrList>,
    pub(crate) port: Option<u16>,
    pub(crate) proxy: Option<String>,
    pub(crate) audit_log: Option<PathBuf>,
    pub(crate) control: Option<PathBuf>,
    pub(crate) tun: Option<String>,
    pub(crate) mtu: Option<u16>,
    pub(crate) policy: Option<Policy>,
}

/// A list value: a TOML array of strings, or one string (split on commas where the flag is).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct StrList {
    /// The items as written.
    pub(crate) items: Vec<String>,
    /// True when written as a single string rather than an array.
    pub(crate) single: bool,
}

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;

        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StrList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrList, E> {
                Ok(StrList {
                    items: vec![v.to_owned()],
                    single: true,
                })
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(StrList {
                    items,
                    single: false,
                })
            }
        }

        deserializer.deserialize_any(ListVisitor)
    }
}

/// A parsed config file and where it lives.
#[derive(Debug)]
pub(crate) struct Loaded<T> {
    /// The file, as given.
    pub(crate) path: PathBuf,
    /// Its keys.
    pub(crate) file: T,
}

impl<T> Loaded<T> {
    /// Where values from this file come from, for error messages.
    pub(crate) fn origin(&self) -> Origin {
        Origin::File(self.path.clone())
    }

    /// A path from the file, made relative to the file's directory.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if path.is_relative() && !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_owned(),
        }
    }
}

/// Reads and parses a config file.
pub(crate) fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Loaded<T>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse(path, &text)
}

/// Parses the text of a config file (split from [`load`] for tests).
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    path: &Path,
    text: &str,
) -> Result<Loaded<T>, ConfigError> {
    let file = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    Ok(Loaded {
        path: path.to_owned(),
        file,
    })
}

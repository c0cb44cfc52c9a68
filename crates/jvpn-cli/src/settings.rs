//! Settings of `jvpn server` and `jvpn connect`: the flags merged over the config file (flags
//! win), checked, with defaults filled in. Pure: nothing here touches the network or reads keys.

use std::path::PathBuf;

use jvpn::session::Policy;
use jvpn::transport::TransportUrl;
use jvpn::wire::keys::PublicKey;
use jvpn_tun::IpPrefix;

use crate::cli::{CommonArgs, ConnectArgs, NetcheckArgs, ServerArgs, TargetArgs};
use crate::config::{ConfigError, ConnectFile, Loaded, Origin, ServerFile, StrList};
use crate::values::{self, PeerSpec, TransportName, ValueError};

/// The listener when neither `--listen` nor `listen` is given.
pub(crate) const DEFAULT_LISTEN: &str = "udp://0.0.0.0:51820";

/// What `jvpn server` runs with.
#[derive(Debug)]
pub(crate) struct ServerSettings {
    pub(crate) key: PathBuf,
    pub(crate) addresses: Vec<IpPrefix>,
    pub(crate) listen: Vec<TransportUrl>,
    pub(crate) peers: Vec<PeerSpec>,
    pub(crate) shared: Shared,
}

/// What `jvpn connect` runs with.
#[derive(Debug)]
pub(crate) struct ClientSettings {
    pub(crate) key: PathBuf,
    pub(crate) target: Target,
    pub(crate) addresses: Vec<IpPrefix>,
    pub(crate) allowed_ips: Vec<IpPrefix>,
    pub(crate) shared: Shared,
}

/// The server and how to reach it (`jvpn connect`, `jvpn netcheck`).
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) server_key: ServerKey,
    /// The candidates, most preferred first.
    pub(crate) servers: Vec<TransportUrl>,
    /// `--proxy`, checked.
    pub(crate) proxy: Option<String>,
}

/// What `jvpn netcheck` runs with.
#[derive(Debug)]
pub(crate) struct NetcheckSettings {
    pub(crate) key: PathBuf,
    pub(crate) target: Target,
    pub(crate) policy: Policy,
}

/// The server's public key: given inline, or a file to read when starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerKey {
    /// Base64 on the command line or in the config.
    Inline(PublicKey),
    /// A public key file (`jvpn pubkey > server.pub`).
    File(PathBuf),
}

impl ServerKey {
    /// The key, read from its file if it names one.
    pub(crate) fn read(&self) -> Result<PublicKey, jvpn::keyfile::KeyFileError> {
        match self {
            ServerKey::Inline(key) => Ok(*key),
            ServerKey::File(path) => jvpn::keyfile::read_public_key(path),
        }
    }
}

/// Settings both commands have.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) audit_log: Option<PathBuf>,
    pub(crate) control: Option<PathBuf>,
    pub(crate) tun: Option<String>,
    pub(crate) mtu: Option<u16>,
    pub(crate) policy: Policy,
}

/// Merges `jvpn server` flags over its config file.
pub(crate) fn server(
    args: &ServerArgs,
    file: Option<&Loaded<ServerFile>>,
) -> Result<ServerSettings, ConfigError> {
    let key = key_path(
        &args.common,
        file.and_then(|f| f.file.key.as_ref().map(|k| f.resolve(k))),
    )?;
    let addresses = addresses(&args.common, file.map(|f| (f, f.file.address.as_ref())))?;
    let listen = if !args.listen.is_empty() {
        args.listen.clone()
    } else if let Some((f, list)) = file.and_then(|f| f.file.listen.as_ref().map(|l| (f, l))) {
        parse_items(f, "listen", list, false, values::listen)?
    } else {
        vec![values::listen(DEFAULT_LISTEN).map_err(|e| value_error(Origin::Flags, "listen", &e))?]
    };
    let peers = if !args.peer.is_empty() {
        args.peer.clone()
    } else if let Some((f, list)) = file.and_then(|f| f.file.peer.as_ref().map(|l| (f, l))) {
        parse_items(f, "peer", list, false, values::peer)?
    } else {
        Vec::new()
    };
    if peers.is_empty() {
        return Err(ConfigError::Missing {
            flag: "--peer",
            hint: "list each client as --peer \"$(cat client.pub)=10.77.0.2/32\" (or `peer` in \
                   the config file)",
        });
    }
    let shared = shared(&args.common, file.map(SharedFile::of))?;
    Ok(ServerSettings {
        key,
        addresses,
        listen,
        peers,
        shared,
    })
}

/// Merges `jvpn connect` flags over its config file.
pub(crate) fn client(
    args: &ConnectArgs,
    file: Option<&Loaded<ConnectFile>>,
) -> Result<ClientSettings, ConfigError> {
    let key = key_path(
        &args.common,
        file.and_then(|f| f.file.key.as_ref().map(|k| f.resolve(k))),
    )?;
    let addresses = addresses(&args.common, file.map(|f| (f, f.file.address.as_ref())))?;

    let allowed_ips = if !args.allowed_ips.is_empty() {
        args.allowed_ips.clone()
    } else if let Some((f, list)) = file.and_then(|f| f.file.allowed_ips.as_ref().map(|l| (f, l))) {
        parse_items(f, "allowed-ips", list, true, values::prefix)?
    } else {
        jvpn::tunnel::default_allowed_ips(&addresses)
    };

    let target = target(&args.target, file, None)?;

    let shared = shared(&args.common, file.map(SharedFile::of))?;
    // One inner MTU for the whole session: refuse at once one that some candidate cannot carry.
    if let Err(error) = jvpn::mtu::session_mtu(&target.servers, shared.mtu, || 0) {
        let origin = if args.common.mtu.is_some() {
            Origin::Flags
        } else {
            file.map_or(Origin::Flags, Loaded::origin)
        };
        return Err(value_error(origin, "mtu", &error));
    }
    Ok(ClientSettings {
        key,
        target,
        addresses,
        allowed_ips,
        shared,
    })
}

/// Merges `jvpn netcheck` flags over a `jvpn connect` config file. Without --transports (flag or
/// file), a host is checked over every transport.
pub(crate) fn netcheck(
    args: &NetcheckArgs,
    file: Option<&Loaded<ConnectFile>>,
) -> Result<NetcheckSettings, ConfigError> {
    let key = args
        .key
        .clone()
        .or_else(|| file.and_then(|f| f.file.key.as_ref().map(|k| f.resolve(k))))
        .ok_or(ConfigError::Missing {
            flag: "--key",
            hint: "give the secret key file: --key FILE (create one with `jvpn genkey -o FILE`), \
                   or `key` in the config file",
        })?;
    let all = [TransportName::Udp, TransportName::Quic, TransportName::Wss];
    let target = target(&args.target, file, Some(&all))?;
    let policy = file.and_then(|f| f.file.policy.clone()).unwrap_or_default();
    policy.validate().map_err(|source| ConfigError::Policy {
        origin: file.map_or(Origin::Flags, Loaded::origin),
        source,
    })?;
    Ok(NetcheckSettings {
        key,
        target,
        policy,
    })
}

/// The server key, candidates and proxy from the flags over the file; `default_transports`
/// when neither names any (else udp).
fn target(
    args: &TargetArgs,
    file: Option<&Loaded<ConnectFile>>,
    default_transports: Option<&[TransportName]>,
) -> Result<Target, ConfigError> {
    let server_key = match (
        &args.server_key,
        file.and_then(|f| f.file.server_key.as_ref().map(|k| (f, k))),
    ) {
        (Some(text), _) => server_key(text, Origin::Flags, None)?,
        (None, Some((f, text))) => server_key(text, f.origin(), Some(f))?,
        (None, None) => {
            return Err(ConfigError::Missing {
                flag: "--server-key",
                hint: "give the server's public key: --server-key \"$(cat server.pub)\" (or \
                       `server-key` in the config file)",
            });
        }
    };

    let (transports, transports_origin) = if !args.transports.is_empty() {
        (Some(args.transports.clone()), Origin::Flags)
    } else if let Some((f, list)) = file.and_then(|f| f.file.transports.as_ref().map(|l| (f, l))) {
        let names = parse_items(f, "transports", list, true, TransportName::parse)?;
        (Some(names), f.origin())
    } else {
        (default_transports.map(<[_]>::to_vec), Origin::Flags)
    };
    let (port, port_origin) = match (args.port, file.and_then(|f| f.file.port.map(|p| (f, p)))) {
        (Some(port), _) => (Some(port), Origin::Flags),
        (None, Some((f, port))) => (Some(port), f.origin()),
        (None, None) => (None, Origin::Flags),
    };
    let (hosts, host_origin) = match (
        args.server.is_empty(),
        file.and_then(|f| f.file.server.as_ref().map(|s| (f, s))),
    ) {
        (false, _) => (args.server.clone(), Origin::Flags),
        (true, Some((f, list))) => (list.items.clone(), f.origin()),
        (true, None) => (Vec::new(), Origin::Flags),
    };
    if hosts.is_empty() {
        return Err(ConfigError::Missing {
            flag: "SERVER_HOST",
            hint: "name the server after the flags, e.g. `jvpn connect ... vpn.example.com` \
                   (or `server` in the config file)",
        });
    }
    let servers = values::candidates(&hosts, transports.as_deref(), port).map_err(|e| {
        // Blame the value the user most likely has to change.
        let (origin, key) = match &e {
            ValueError::NotBuilt { .. } if transports.is_some() => {
                (transports_origin, "transports")
            }
            ValueError::PortTwice { .. } => (port_origin, "port"),
            _ => (host_origin, "server"),
        };
        value_error(origin, key, &e)
    })?;

    let proxy = match (
        &args.proxy,
        file.and_then(|f| f.file.proxy.as_ref().map(|p| (f, p))),
    ) {
        (Some(proxy), _) => Some(proxy.clone()),
        (None, Some((f, text))) => {
            Some(values::proxy(text).map_err(|e| value_error(f.origin(), "proxy", &e))?)
        }
        (None, None) => None,
    };
    Ok(Target {
        server_key,
        servers,
        proxy,
    })
}

/// The shared keys of either file, already resolved against its directory.
struct SharedFile {
    origin: Origin,
    audit_log: Option<PathBuf>,
    control: Option<PathBuf>,
    tun: Option<String>,
    mtu: Option<u16>,
    policy: Option<Policy>,
}

impl SharedFile {
    /// The shared keys of `file`, its paths resolved against its directory.
    fn of<T: SharedKeys>(file: &Loaded<T>) -> SharedFile {
        let (audit_log, control, tun, mtu, policy) = file.file.shared_keys();
        SharedFile {
            origin: file.origin(),
            audit_log: audit_log.map(|p| file.resolve(p)),
            control: control.map(|p| file.resolve(p)),
            tun: tun.cloned(),
            mtu,
            policy: policy.cloned(),
        }
    }
}

/// The keys both config files have, as written: audit log, control socket, TUN name, MTU and
/// policy.
type SharedKeysRef<'a> = (
    Option<&'a PathBuf>,
    Option<&'a PathBuf>,
    Option<&'a String>,
    Option<u16>,
    Option<&'a Policy>,
);

/// A config file with the keys [`SharedFile`] gathers.
trait SharedKeys {
    fn shared_keys(&self) -> SharedKeysRef<'_>;
}

impl SharedKeys for ServerFile {
    fn shared_keys(&self) -> SharedKeysRef<'_> {
        let s = self;
        (
            s.audit_log.as_ref(),
            s.control.as_ref(),
            s.tun.as_ref(),
            s.mtu,
            s.policy.as_ref(),
        )
    }
}

impl SharedKeys for ConnectFile {
    fn shared_keys(&self) -> SharedKeysRef<'_> {
        let s = self;
        (
            s.audit_log.as_ref(),
            s.control.as_ref(),
            s.tun.as_ref(),
            s.mtu,
            s.policy.as_ref(),
        )
    }
}

fn shared(args: &CommonArgs, file: Option<SharedFile>) -> Result<Shared, ConfigError> {
    let (file_origin, audit_log, control, tun, mtu, policy) = match file {
        Some(f) => (
            Some(f.origin),
            f.audit_log,
            f.control,
            f.tun,
            f.mtu,
            f.policy,
        ),
        None => (None, None, None, None, None, None),
    };
    let policy_origin = file_origin.unwrap_or(Origin::Flags);
    let policy = policy.unwrap_or_default();
    policy.validate().map_err(|source| ConfigError::Policy {
        origin: policy_origin,
        source,
    })?;
    Ok(Shared {
        audit_log: args.audit_log.clone().or(audit_log),
        control: args.control.clone().or(control),
        tun: args.tun.clone().or(tun),
        mtu: args.mtu.or(mtu),
        policy,
    })
}

fn key_path(args: &CommonArgs, file_key: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    args.key.clone().or(file_key).ok_or(ConfigError::Missing {
        flag: "--key",
        hint: "give the secret key file: --key FILE (create one with `jvpn genkey -o FILE`), \
               or `key` in the config file",
    })
}

fn addresses<T>(
    args: &CommonArgs,
    file: Option<(&Loaded<T>, Option<&StrList>)>,
) -> Result<Vec<IpPrefix>, ConfigError> {
    let addresses = if !args.address.is_empty() {
        args.address.clone()
    } else if let Some((f, Some(list))) = file {
        parse_items(f, "address", list, false, values::prefix)?
    } else {
        Vec::new()
    };
    if addresses.is_empty() {
        return Err(ConfigError::Missing {
            flag: "--address",
            hint: "give this side's inner address with its prefix length, e.g. \
                   --address 10.77.0.2/32 (or `address` in the config file)",
        });
    }
    Ok(addresses)
}

fn server_key(
    text: &str,
    origin: Origin,
    file: Option<&Loaded<ConnectFile>>,
) -> Result<ServerKey, ConfigError> {
    match jvpn::keyfile::parse_public_key(text) {
        Ok(key) => Ok(ServerKey::Inline(key)),
        Err(error) => {
            // Not base64: maybe the name of a public key file.
            let path = PathBuf::from(text.trim());
            let path = file.map_or_else(|| path.clone(), |f| f.resolve(&path));
            if path.is_file() {
                Ok(ServerKey::File(path))
            } else {
                Err(ConfigError::Value {
                    origin,
                    key: "server-key",
                    why: format!(
                        "{error} (or the name of a file holding it, but no such file exists)"
                    ),
                })
            }
        }
    }
}

/// Parses every item of a list value from a file; a single string is split on commas when the
/// flag's value is.
fn parse_items<F, U, E>(
    file: &Loaded<F>,
    key: &'static str,
    list: &StrList,
    comma_separated: bool,
    parse: impl Fn(&str) -> Result<U, E>,
) -> Result<Vec<U>, ConfigError>
where
    E: std::fmt::Display,
{
    let mut out = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let parts: Vec<&str> = if comma_separated {
            item.split(',').collect()
        } else {
            vec![item.as_str()]
        };
        for part in parts {
            out.push(parse(part).map_err(|e| value_error(file.origin(), key, &e))?);
        }
    }
    Ok(out)
}

fn value_error(origin: Origin, key: &'static str, error: &impl std::fmt::Display) -> ConfigError {
    ConfigError::Value {
        origin,
        key,
        why: error.to_string(),
    }
}

#[cfg(test)]
mod tests;

//! The command line, as clap types: one struct of arguments per subcommand.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use jvpn_tun::IpPrefix;

use crate::demo::DemoArgs;
use crate::values::{self, PeerSpec, TransportName};

/// The `jvpn` command line.
#[derive(Debug, Parser)]
#[command(
    name = "jvpn",
    version,
    about = "jvpn — a VPN session that survives transport changes",
    long_about = "jvpn — a VPN session that survives transport changes.\n\n\
        A jvpn session (keys, session id, inner addresses) outlives the UDP, QUIC or WebSocket \
        transport under it: when the network changes, the session proves who it is on a new path \
        and carries on.\n\n\
        Start by creating a key pair for each side:\n\
        \x20 jvpn genkey -o client.key\n\
        \x20 jvpn pubkey < client.key > client.pub\n\n\
        Then run `jvpn server` on one machine and `jvpn connect` on the other (both need root or \
        CAP_NET_ADMIN to create the TUN device), and watch it with `jvpn status`.\n\n\
        Exit codes: 0 success, 1 runtime failure (permissions, network, key files), 2 usage error \
        (bad flags or config file).",
    propagate_version = true
)]
pub(crate) struct Cli {
    /// More log output on stderr (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count, global = true, display_order = 900)]
    pub(crate) verbose: u8,
    /// Less log output on stderr (-q warnings only, -qq errors only)
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "verbose", display_order = 901)]
    pub(crate) quiet: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate a new secret key (base64, WireGuard format)
    #[command(
        long_about = "Generate a new X25519 secret key, printed as one line of base64 \
        (the WireGuard key format).\n\n\
        With -o FILE the key is written atomically to a new file with mode 0600; an existing file \
        is kept unless --force is given. Without -o the key goes to stdout; if stdout is a file, \
        it is first restricted to mode 0600.\n\n\
        Examples:\n\
        \x20 jvpn genkey -o client.key\n\
        \x20 jvpn genkey -o client.key --force      # replace an existing key\n\
        \x20 jvpn genkey > client.key               # stdout file is set to 0600 first\n\
        \x20 jvpn genkey -o client.key && jvpn pubkey < client.key > client.pub"
    )]
    Genkey(GenkeyArgs),
    /// Print the public key of a secret key read on stdin
    #[command(
        long_about = "Read a secret key (one line of base64, as written by `jvpn genkey`) \
        on stdin and print its public key on stdout. Give the public key to the peer; keep the \
        secret key to yourself.\n\n\
        Examples:\n\
        \x20 jvpn pubkey < client.key\n\
        \x20 jvpn pubkey < server.key > server.pub"
    )]
    Pubkey(PubkeyArgs),
    /// Run a VPN server: a TUN device and a listener serving the listed peers
    #[command(long_about = SERVER_ABOUT)]
    Server(ServerArgs),
    /// Connect to a VPN server: a TUN device carried over one session
    #[command(long_about = CONNECT_ABOUT)]
    Connect(ConnectArgs),
    /// Show the state of a running `jvpn connect` or `jvpn server`
    #[command(long_about = STATUS_ABOUT)]
    Status(StatusArgs),
    /// Check which transports reach a server (a real handshake each) and in which order to use them
    #[command(long_about = NETCHECK_ABOUT)]
    Netcheck(NetcheckArgs),
    /// Run a server and a client in two network namespaces and show the tunnel live (needs root)
    Demo(DemoArgs),
}

const SERVER_ABOUT: &str = "Run a VPN server: create a TUN device with the server's inner \
    address, listen for clients, and route inner packets between the TUN device and the clients \
    by their allowed IPs. Runs in the foreground until SIGINT or SIGTERM, which close every \
    session and remove the TUN device. Needs root or CAP_NET_ADMIN.\n\n\
    Every flag except -c can also be set in a TOML config file given with -c FILE, under the same \
    name (`key`, `address`, `listen`, `peer`, `audit-log`, `control`, `tun`, `mtu`, and a \
    `[policy]` table); flags win over the file. Repeatable flags take a list in the file. Relative \
    paths in the file are relative to the file's directory.\n\n\
    Examples:\n\
    \x20 jvpn server --key server.key --address 10.77.0.1/24 --listen udp://0.0.0.0:51820 \\\n\
    \x20     --peer \"$(cat client.pub)=10.77.0.2/32\"\n\
    \x20 jvpn server -c /etc/jvpn/server.toml\n\n\
    A config file:\n\
    \x20 key = \"server.key\"\n\
    \x20 address = \"10.77.0.1/24\"\n\
    \x20 listen = \"udp://0.0.0.0:51820\"\n\
    \x20 peer = [\"CLIENT_PUBKEY=10.77.0.2/32\", \"OTHER_PUBKEY=10.77.0.3/32,fd77::3/128\"]\n\
    \x20 audit-log = \"/var/log/jvpn/server.audit\"\n\
    \x20 [policy]\n\
    \x20 keepalive_interval_ms = 10000";

const CONNECT_ABOUT: &str = "Connect to a VPN server: create a TUN device with this client's \
    inner address, route the allowed IPs into it, and carry its packets over one session to the \
    server. The session keeps one link per candidate transport and jumps between them when one \
    fails or a better one returns, and starts again by itself if the server restarts. Runs in the \
    foreground until SIGINT or SIGTERM (which send CLOSE and remove the TUN device); with --wait, \
    returns once the tunnel is ready and leaves it running in the background. Needs root or \
    CAP_NET_ADMIN.\n\n\
    Candidates, most preferred first:\n\
    \x20 SERVER_HOST is `host`, `host:port`, `[ipv6]:port` or a URL (`udp://host:port`, \
    `quic://host:port`, `wss://host:port/path`), and may be repeated.\n\
    \x20 A URL is one candidate. A host is one candidate per transport of --transports (default \
    udp), in that order, on each transport's default port: udp 51820, quic 443 (UDP), wss 443 \
    (TCP, path /jvpn). A port (host:port or --port) is allowed with one transport only; for \
    other ports, give one URL per transport.\n\
    \x20 The inner MTU is pinned for the whole session to the smallest any candidate carries \
    (udp 1440 over IPv4, 1420 over IPv6 or a host name; quic 1118; wss 65503), so a jump never \
    strands inner packets; --mtu may lower it, never raise it above a candidate's.\n\
    \x20 WSS goes through the HTTP CONNECT proxy of --proxy, else of HTTPS_PROXY / ALL_PROXY \
    (hosts in NO_PROXY excepted).\n\n\
    Every flag except -c, --wait and --wait-timeout can also be set in a TOML config file given \
    with -c FILE, under the same name (`key`, `server-key`, `address`, `allowed-ips`, \
    `transports`, `port`, `proxy`, `server` for SERVER_HOST (a string or a list), `audit-log`, \
    `control`, `tun`, `mtu`, and a `[policy]` table); flags win over the file. Relative paths in \
    the file are relative to the file's directory.\n\n\
    Examples:\n\
    \x20 jvpn connect --key client.key --server-key \"$(cat server.pub)\" \\\n\
    \x20     --address 10.77.0.2/32 --transports udp,quic,wss vpn.example.com\n\
    \x20 jvpn connect ... udp://vpn.example.com:51820 wss://vpn.example.com:8443/jvpn\n\
    \x20 jvpn connect ... --transports wss --proxy http://proxy.corp:3128 vpn.example.com\n\
    \x20 jvpn connect -c client.toml --wait && ping 10.77.0.1\n\n\
    A config file:\n\
    \x20 key = \"client.key\"\n\
    \x20 server-key = \"SERVER_PUBKEY\"\n\
    \x20 server = \"vpn.example.com\"\n\
    \x20 transports = \"udp,quic,wss\"\n\
    \x20 address = [\"10.77.0.2/32\", \"fd77::2/128\"]\n\
    \x20 allowed-ips = [\"10.77.0.0/24\", \"fd77::/64\"]";

const NETCHECK_ABOUT: &str = "Check which transports reach a jvpn server. For each candidate \
    (built from SERVER_HOST, --transports, --port and --proxy exactly as `jvpn connect` builds \
    them; default: udp, quic and wss), run a real authenticated session: connect the link, \
    handshake, one authenticated probe round trip through the tunnel, and a clean close. Prints \
    whether each is reachable (or why not), the time to attach and the probe's RTT, then the \
    order it recommends: reachable transports first, fastest first, your order breaking ties. \
    Needs this client's key and the server's public key (like connect), no root and no TUN \
    device.\n\n\
    Exit code 0 if at least one transport is reachable, 1 if none is.\n\n\
    Examples:\n\
    \x20 jvpn netcheck --key client.key --server-key \"$(cat server.pub)\" vpn.example.com\n\
    \x20 jvpn netcheck -c client.toml --transports wss --proxy http://proxy.corp:3128 --json";

const STATUS_ABOUT: &str = "Show the state of a running `jvpn connect` or `jvpn server`, asked \
    over its control socket: state, version and epoch, the transport that carries traffic and \
    why (the last switch's reason), every candidate (transport, URL, link up or down, prober \
    state, RTT, jitter, loss, last seen, active), bytes and packets each way, handshake age, and \
    the last transitions with their reasons.\n\n\
    Without --control, the client's default socket is tried first, then the server's \
    (/run/jvpn/<role>.sock as root, $XDG_RUNTIME_DIR/jvpn-<role>.sock otherwise).\n\n\
    Examples:\n\
    \x20 jvpn status\n\
    \x20 sudo jvpn status --json | jq .sessions[0].state";

/// Flags shared by `jvpn server` and `jvpn connect`.
#[derive(Debug, Args, Default)]
pub(crate) struct CommonArgs {
    /// Read settings from a TOML file (flags given on the command line win)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The secret key file (from `jvpn genkey`; must be mode 0600)
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// Inner address with its prefix length, e.g. 10.77.0.1/24 or fd77::1/64 (repeatable)
    #[arg(long, value_name = "ADDRESS/LEN", value_parser = values::prefix)]
    pub(crate) address: Vec<IpPrefix>,
    /// Append every state transition as a JSON line to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,
    /// Serve `jvpn status` on this Unix socket [default: /run/jvpn/<role>.sock as root,
    /// $XDG_RUNTIME_DIR/jvpn-<role>.sock otherwise]
    #[arg(long, value_name = "SOCKET")]
    pub(crate) control: Option<PathBuf>,
    /// Name of the TUN device [default: chosen by the kernel, jvpn0, jvpn1, ...]
    #[arg(long, value_name = "NAME")]
    pub(crate) tun: Option<String>,
    /// Inner MTU of the TUN device [default: the transport's datagram size minus jvpn's overhead]
    #[arg(long, value_name = "BYTES")]
    pub(crate) mtu: Option<u16>,
}

/// Arguments of `jvpn server`.
#[derive(Debug, Args, Default)]
pub(crate) struct ServerArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    /// Where to listen: udp://ADDRESS:PORT or ADDRESS:PORT (repeatable) [default: udp://0.0.0.0:51820]
    #[arg(long, value_name = "URL", value_parser = values::listen)]
    pub(crate) listen: Vec<jvpn::transport::TransportUrl>,
    /// A client: its public key and the inner addresses it may use, comma-separated
    /// (repeatable), e.g. --peer "$(cat client.pub)=10.77.0.2/32,fd77::2/128"
    #[arg(long, value_name = "PUBKEY=ALLOWED_IPS", value_parser = values::peer)]
    pub(crate) peer: Vec<PeerSpec>,
}

/// Where the server is and how to reach it: shared by `jvpn connect` and `jvpn netcheck`.
#[derive(Debug, Args, Default)]
pub(crate) struct TargetArgs {
    /// The server's public key (base64, from `jvpn pubkey`), or a file holding it
    #[arg(long, value_name = "PUBKEY")]
    pub(crate) server_key: Option<String>,
    /// Transports to use, in order of preference, comma-separated: one candidate per transport
    /// for a SERVER_HOST without a scheme [default: udp]
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_enum)]
    pub(crate) transports: Vec<TransportName>,
    /// Server port when SERVER_HOST has none (one transport only) [default: the transport's:
    /// udp 51820, quic 443, wss 443]
    #[arg(long, value_name = "PORT")]
    pub(crate) port: Option<u16>,
    /// HTTP CONNECT proxy for WSS, http://[user:pass@]host:port (wins over HTTPS_PROXY,
    /// ALL_PROXY and NO_PROXY)
    #[arg(long, value_name = "URL", value_parser = values::proxy)]
    pub(crate) proxy: Option<String>,
    /// The server: host, host:port, [ipv6]:port or a URL (udp://, quic://, wss://); repeat for
    /// several candidates, most preferred first
    #[arg(value_name = "SERVER_HOST")]
    pub(crate) server: Vec<String>,
}

/// Arguments of `jvpn connect`.
#[derive(Debug, Args, Default)]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Networks routed into the tunnel, comma-separated [default: the /24 (IPv4) or /64 (IPv6)
    /// network around each --address, or the address's own network if wider]
    #[arg(long, value_name = "PREFIXES", value_delimiter = ',', value_parser = values::prefix)]
    pub(crate) allowed_ips: Vec<IpPrefix>,
    /// Return once the tunnel is ready (an authenticated round trip succeeded), leaving it
    /// running in the background
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: give up after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "wait")]
    pub(crate) wait_timeout: u64,
    /// Internal (used by --wait): print READY on stdout once the tunnel is ready
    #[arg(long, hide = true)]
    pub(crate) notify_ready: bool,
}

/// Arguments of `jvpn netcheck`.
#[derive(Debug, Args, Default)]
pub(crate) struct NetcheckArgs {
    /// Read settings from a `jvpn connect` TOML file (flags given on the command line win)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The secret key file (from `jvpn genkey`; must be mode 0600)
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Print the results as JSON (with a schema_version) instead of a table
    #[arg(long)]
    pub(crate) json: bool,
    /// Give each transport this many seconds to attach and answer a probe
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub(crate) timeout: u64,
}

/// Arguments of `jvpn status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print the status as JSON (with a schema_version) instead of a table
    #[arg(long)]
    pub(crate) json: bool,
    /// The control socket of the running jvpn [default: the client's, then the server's]
    #[arg(long, value_name = "SOCKET")]
    pub(crate) control: Option<PathBuf>,
}

/// Arguments of `jvpn genkey`.
#[derive(Debug, Args)]
pub(crate) struct GenkeyArgs {
    /// Write the key to FILE (created with mode 0600) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Replace FILE if it exists (its old key is lost)
    #[arg(long, requires = "output")]
    pub(crate) force: bool,
}

/// Arguments of `jvpn pubkey` (none: stdin to stdout).
#[derive(Debug, Args)]
pub(crate) struct PubkeyArgs {}

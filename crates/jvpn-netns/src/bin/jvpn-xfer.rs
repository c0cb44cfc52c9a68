//! `jvpn-xfer`: bounded traffic with measurements, for tunnel tests, demos and benchmarks run by hand
//! inside network namespaces.
//!
//! ```text
//! # a checksummed TCP bulk transfer, with the receiver's longest stall
//! ip netns exec SERVER jvpn-xfer serve --listen 10.77.0.1:5001 --bytes 104857600
//! ip netns exec CLIENT jvpn-xfer send --to 10.77.0.1:5001 --bytes 104857600 --seed 7
//! # a UDP stream of one datagram every 5 ms, with every inter-arrival gap of 50 ms or more
//! ip netns exec SERVER jvpn-xfer udp-recv --listen 10.77.0.1:5002 --secs 20
//! ip netns exec CLIENT jvpn-xfer udp-send --to 10.77.0.1:5002 --secs 20 --interval-ms 5
//! ```
//!
//! TCP: the sender streams N bytes of pseudo-random data derived from the seed (splitmix64, so the
//! same seed always gives the same bytes); both ends print one JSON line
//! `{"role":"send","bytes":N,"sha256":"…","secs":…}` (the receiver adds `max_stall_ms`, the longest
//! time between two reads that returned data). The receiver exits 1 if it got a different number of
//! bytes than `--bytes`.
//!
//! UDP: the receiver prints one JSON line at the end: `received`, `lost`, `max_gap_ms` (the longest
//! inter-arrival time: the blackout when one event happened during the run), `gaps` (each gap of at
//! least `--gap-ms`, with `start_ms` since the receiver started), `silent_for_ms` (a silence still
//! going on at the end: the stream never came back) and `start_unix_ms` to line events up.
//!
//! Every run is bounded by `--timeout SECS` (default 120; for the UDP commands `--secs` + 10): past
//! it the process prints an error and exits 3.

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use jvpn_netns::Deadline;
use jvpn_netns::traffic::{millis, tcp, udp};

const USAGE: &str = "usage:\n  jvpn-xfer serve --listen ADDR:PORT --bytes N [--timeout SECS]\n  \
                     jvpn-xfer send --to ADDR:PORT --bytes N [--seed S] [--timeout SECS]\n  \
                     jvpn-xfer udp-recv --listen ADDR:PORT --secs N [--gap-ms MS]\n  \
                     jvpn-xfer udp-send --to ADDR:PORT --secs N [--interval-ms MS]";

#[derive(Debug)]
enum Role {
    Serve {
        listen: SocketAddr,
        bytes: u64,
    },
    Send {
        to: SocketAddr,
        bytes: u64,
        seed: u64,
    },
    UdpRecv {
        listen: SocketAddr,
        gap: Duration,
    },
    UdpSend {
        to: SocketAddr,
        interval: Duration,
    },
}

#[derive(Debug)]
struct Options {
    role: Role,
    /// How long a UDP command runs.
    secs: Option<u64>,
    timeout: Duration,
}

#[derive(Debug, Default)]
struct Flags {
    listen: Option<SocketAddr>,
    to: Option<SocketAddr>,
    bytes: Option<u64>,
    seed: Option<u64>,
    timeout: Option<u64>,
    secs: Option<u64>,
    gap_ms: Option<u64>,
    interval_ms: Option<u64>,
}

fn parse_flags(rest: &[String]) -> Result<Flags, String> {
    let mut flags = Flags::default();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        let addr = || value.parse::<SocketAddr>().map_err(|e| bad(&e));
        let number = || value.parse::<u64>().map_err(|e| bad(&e));
        match flag.as_str() {
            "--listen" => flags.listen = Some(addr()?),
            "--to" => flags.to = Some(addr()?),
            "--bytes" => flags.bytes = Some(number()?),
            "--seed" => flags.seed = Some(number()?),
            "--timeout" => flags.timeout = Some(number()?),
            "--secs" => flags.secs = Some(number()?),
            "--gap-ms" => flags.gap_ms = Some(number()?),
            "--interval-ms" => flags.interval_ms = Some(number()?.max(1)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(flags)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let (command, rest) = args.split_first().ok_or("missing command")?;
    let flags = parse_flags(rest)?;
    let listen = || flags.listen.ok_or("this command needs --listen ADDR:PORT");
    let to = || flags.to.ok_or("this command needs --to ADDR:PORT");
    let bytes = || flags.bytes.ok_or("--bytes is required");
    let role = match command.as_str() {
        "serve" => Role::Serve {
            listen: listen()?,
            bytes: bytes()?,
        },
        "send" => Role::Send {
            to: to()?,
            bytes: bytes()?,
            seed: flags.seed.unwrap_or(1),
        },
        "udp-recv" => Role::UdpRecv {
            listen: listen()?,
            gap: Duration::from_millis(flags.gap_ms.unwrap_or(50)),
        },
        "udp-send" => Role::UdpSend {
            to: to()?,
            interval: Duration::from_millis(flags.interval_ms.unwrap_or(5)),
        },
        other => return Err(format!("unknown command {other}")),
    };
    let udp = matches!(role, Role::UdpRecv { .. } | Role::UdpSend { .. });
    if udp && flags.secs.is_none() {
        return Err("udp-recv and udp-send need --secs N".into());
    }
    let timeout = flags
        .timeout
        .unwrap_or_else(|| flags.secs.map_or(120, |s| s + 10));
    Ok(Options {
        role,
        secs: flags.secs,
        timeout: Duration::from_secs(timeout),
    })
}

/// Wall time, only to line the receiver's relative times up with events logged elsewhere.
#[expect(
    clippy::disallowed_methods,
    reason = "a traffic tool reports when its measurement started"
)]
fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Runs one command; `Ok((json_line, success))`.
fn run(options: &Options) -> io::Result<(String, bool)> {
    let deadline = Deadline::after(options.timeout);
    let run_for = Duration::from_secs(options.secs.unwrap_or(0));
    match options.role {
        Role::Serve { listen, bytes } => {
            let sink = tcp::TcpSink::start(TcpListener::bind(listen)?, deadline)?;
            let got = sink.finish()?;
            let line = format!(
                "{{\"role\":\"serve\",\"bytes\":{},\"sha256\":\"{}\",\"secs\":{:.3},\"max_stall_ms\":{:.1}}}",
                got.bytes,
                got.sha256,
                got.elapsed.as_secs_f64(),
                millis(got.max_stall)
            );
            if got.bytes != bytes {
                let _ = writeln!(
                    io::stderr(),
                    "jvpn-xfer: got {} bytes, expected {bytes}",
                    got.bytes
                );
            }
            Ok((line, got.bytes == bytes))
        }
        Role::Send { to, bytes, seed } => {
            let stream = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
            let sent = tcp::send(stream, bytes, seed, deadline)?;
            let line = format!(
                "{{\"role\":\"send\",\"bytes\":{},\"sha256\":\"{}\",\"secs\":{:.3}}}",
                sent.bytes,
                sent.sha256,
                sent.elapsed.as_secs_f64()
            );
            Ok((line, true))
        }
        Role::UdpRecv { listen, gap } => {
            let start_unix_ms = unix_ms();
            let receiver = udp::UdpStreamReceiver::start(UdpSocket::bind(listen)?, gap, deadline)?;
            std::thread::sleep(run_for);
            let report = receiver.stop();
            let gaps: Vec<String> = report
                .gaps
                .iter()
                .map(|g| {
                    format!(
                        "{{\"start_ms\":{:.1},\"ms\":{:.1}}}",
                        millis(g.start),
                        millis(g.length)
                    )
                })
                .collect();
            let line = format!(
                "{{\"role\":\"udp-recv\",\"received\":{},\"lost\":{},\"max_gap_ms\":{:.1},\
                 \"silent_for_ms\":{:.1},\"start_unix_ms\":{start_unix_ms},\"gaps\":[{}]}}",
                report.received,
                report.lost,
                millis(report.max_gap),
                millis(report.silent_for),
                gaps.join(",")
            );
            Ok((line, true))
        }
        Role::UdpSend { to, interval } => {
            let unspecified: SocketAddr = if to.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let sender =
                udp::UdpStreamSender::start(UdpSocket::bind(unspecified)?, to, interval, deadline)?;
            std::thread::sleep(run_for);
            let report = sender.stop();
            let line = format!(
                "{{\"role\":\"udp-send\",\"sent\":{},\"send_errors\":{}}}",
                report.sent, report.send_errors
            );
            Ok((line, true))
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            let _ = writeln!(io::stderr(), "jvpn-xfer: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let timeout = options.timeout;
    // The watchdog bounds everything, including a peer that stops reading mid-stream.
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        let _ = writeln!(io::stderr(), "jvpn-xfer: timed out after {timeout:?}");
        std::process::exit(3);
    });
    match run(&options) {
        Ok((line, ok)) => {
            let _ = writeln!(io::stdout(), "{line}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "jvpn-xfer: {e}");
            ExitCode::FAILURE
        }
    }
}

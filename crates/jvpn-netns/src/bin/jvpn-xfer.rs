//! `jvpn-xfer`: a bounded TCP bulk transfer with a checksum at both ends, for tunnel tests, demos and
//! benchmarks run by hand inside network namespaces.
//!
//! ```text
//! ip netns exec SERVER jvpn-xfer serve --listen 10.77.0.1:5001 --bytes 104857600
//! ip netns exec CLIENT jvpn-xfer send --to 10.77.0.1:5001 --bytes 104857600 --seed 7
//! ```
//!
//! The sender streams N bytes of pseudo-random data derived from the seed (splitmix64, so the same
//! seed always gives the same bytes); both ends print one JSON line
//! `{"role":"send","bytes":N,"sha256":"…","secs":…}` and compare by eye or by script. The receiver
//! exits 1 if it got a different number of bytes than `--bytes`. The whole run is bounded by
//! `--timeout SECS` (default 120): past it the process prints an error and exits 3.
//!
//! Not here: rate limiting, UDP, several streams (use iperf3 for throughput figures).

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

const USAGE: &str = "usage:\n  jvpn-xfer serve --listen ADDR:PORT --bytes N [--timeout SECS]\n  \
                     jvpn-xfer send --to ADDR:PORT --bytes N [--seed S] [--timeout SECS]";
const CHUNK: usize = 64 * 1024;
/// How often a blocked accept is retried.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// The one clock read of this tool: it measures and bounds a real transfer.
#[expect(
    clippy::disallowed_methods,
    reason = "a traffic tool measures real elapsed time"
)]
fn now() -> Instant {
    Instant::now()
}

#[derive(Debug)]
enum Role {
    Serve { listen: SocketAddr },
    Send { to: SocketAddr, seed: u64 },
}

#[derive(Debug)]
struct Options {
    role: Role,
    bytes: u64,
    timeout: Duration,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let (command, rest) = args.split_first().ok_or("missing command")?;
    if !matches!(command.as_str(), "serve" | "send") {
        return Err(format!("unknown command {command}"));
    }
    let mut listen = None;
    let mut to = None;
    let mut bytes = None;
    let mut seed = 1_u64;
    let mut timeout = Duration::from_secs(120);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--listen" => listen = Some(value.parse::<SocketAddr>().map_err(|e| bad(&e))?),
            "--to" => to = Some(value.parse::<SocketAddr>().map_err(|e| bad(&e))?),
            "--bytes" => bytes = Some(value.parse::<u64>().map_err(|e| bad(&e))?),
            "--seed" => seed = value.parse::<u64>().map_err(|e| bad(&e))?,
            "--timeout" => {
                timeout = Duration::from_secs(value.parse::<u64>().map_err(|e| bad(&e))?);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let bytes = bytes.ok_or("--bytes is required")?;
    let role = match command.as_str() {
        "serve" => Role::Serve {
            listen: listen.ok_or("serve needs --listen ADDR:PORT")?,
        },
        "send" => Role::Send {
            to: to.ok_or("send needs --to ADDR:PORT")?,
            seed,
        },
        other => return Err(format!("unknown command {other}")),
    };
    Ok(Options {
        role,
        bytes,
        timeout,
    })
}

/// Deterministic bytes from a seed (splitmix64): fast, and identical on every machine.
struct Stream(u64);

impl Stream {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let bytes = z.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

struct Outcome {
    bytes: u64,
    sha256: String,
}

fn serve(listen: SocketAddr, deadline: Instant) -> io::Result<Outcome> {
    let listener = TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && now() < deadline => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0_u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok(Outcome {
        bytes: total,
        sha256: hex(&hasher.finalize()),
    })
}

fn send(to: SocketAddr, bytes: u64, seed: u64) -> io::Result<Outcome> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut source = Stream(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        source.fill(&mut buf[..n]);
        stream.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    // Wait for the receiver to close so that "done" means "received", not "queued locally".
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let _ = stream.read(&mut buf)?;
    Ok(Outcome {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    let start = now();
    let deadline = start + options.timeout;
    let timeout = options.timeout;
    // The watchdog bounds everything, including a peer that stops reading mid-stream.
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        let _ = writeln!(io::stderr(), "jvpn-xfer: timed out after {timeout:?}");
        std::process::exit(3);
    });
    let (role, result) = match options.role {
        Role::Serve { listen } => ("serve", serve(listen, deadline)),
        Role::Send { to, seed } => ("send", send(to, options.bytes, seed)),
    };
    match result {
        Ok(outcome) => {
            let secs = now().duration_since(start).as_secs_f64();
            let _ = writeln!(
                io::stdout(),
                "{{\"role\":\"{role}\",\"bytes\":{},\"sha256\":\"{}\",\"secs\":{secs:.3}}}",
                outcome.bytes,
                outcome.sha256
            );
            if outcome.bytes == options.bytes {
                ExitCode::SUCCESS
            } else {
                let _ = writeln!(
                    io::stderr(),
                    "jvpn-xfer: got {} bytes, expected {}",
                    outcome.bytes,
                    options.bytes
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "jvpn-xfer {role}: {e}");
            ExitCode::FAILURE
        }
    }
}

//! A spoofed-source handshake flood (ATTACKS.md S18) and a replay burst (S19), sent through a raw
//! IPv4 socket with hand-built IPv4 + UDP headers, so that each datagram can carry any source
//! address. Run it inside an attacker namespace (root, `CAP_NET_RAW`).
//!
//! - [`FloodMode::Spoofed`]: every datagram is a fresh HANDSHAKE_INIT of the smallest valid size
//!   (136 bytes) with a **valid MAC1** for the server's public key (an attacker knows it) and random
//!   bytes where the Noise message goes, from a random address of a spoofed prefix and a random
//!   port. Each one passes the server's MAC1 check and its exact-replay filter, so it would cost a
//!   Diffie-Hellman were it not for the cookie defence.
//! - [`FloodMode::Replay`]: one captured datagram (e.g. an honest client's HANDSHAKE_INIT) sent
//!   again and again from one source: the exact-replay filter must drop every copy before it counts
//!   toward "under load".
//!
//! The sender paces itself to `rate` datagrams per second (0: as fast as it can), sends in bursts
//! of at most a millisecond's worth, and stops at its deadline or when its stop flag is set.
//! UDP checksums are 0 ("none", valid over IPv4); the kernel fills in the IPv4 checksum anyway.
//!
//! Not here: IPv6, fragments, reading the replies (the server's replies to the spoofed prefix are
//! routed back to the attacker's namespace and dropped there; the test counts them on the server).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jvpn::session::{ClientConfig, PathId, Policy, Session};
use jvpn::wire::frame::{HANDSHAKE_INIT_MIN_LEN, PROTOCOL_VERSION};
use jvpn::wire::kdf::{self, MAC_LEN};
use jvpn::wire::{MessageType, Psk, PublicKey, StaticSecret};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::time::now;
use crate::traffic::SplitMix;

const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
/// The header of a HANDSHAKE_INIT: type, protocol version, flags 0, reserved 0.
const INIT_HEADER: [u8; 4] = [MessageType::HandshakeInit.as_u8(), PROTOCOL_VERSION, 0, 0];

/// What the flood sends.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FloodMode {
    /// Fresh HANDSHAKE_INITs with a valid MAC1 for `server_key`, each from a random address of
    /// `network/prefix_len` and a random port.
    Spoofed {
        /// The server's static public key (what MAC1 is keyed with).
        server_key: PublicKey,
        /// The spoofed network, e.g. `10.50.0.0`.
        network: Ipv4Addr,
        /// Its prefix length, e.g. 16.
        prefix_len: u8,
    },
    /// The same datagram again and again, from `source`.
    Replay {
        /// The captured datagram (the UDP payload).
        datagram: Vec<u8>,
        /// The source address and port it is sent from.
        source: SocketAddrV4,
    },
}

/// One flood: what, where to, how fast, for how long.
#[derive(Debug, Clone)]
pub struct FloodConfig {
    /// What to send.
    pub mode: FloodMode,
    /// The server's address and UDP port.
    pub target: SocketAddrV4,
    /// Datagrams per second to aim for; 0 sends as fast as the socket takes them.
    pub rate: u32,
    /// How long to send at most.
    pub duration: Duration,
    /// Seed of the random addresses, ports and bytes (the same seed gives the same datagrams).
    pub seed: u64,
}

/// What a flood did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct FloodReport {
    /// Datagrams handed to the kernel.
    pub packets: u64,
    /// Their bytes on the wire at the IP layer (IPv4 + UDP headers + payload).
    pub ip_bytes: u64,
    /// `sendto` calls that failed (e.g. `ENOBUFS` when the device queue is full).
    pub send_errors: u64,
    /// How long it sent, in seconds.
    pub secs: f64,
}

impl FloodReport {
    /// Datagrams per second achieved.
    pub fn packets_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.packets as f64 / self.secs
        } else {
            0.0
        }
    }

    /// One JSON object: `{"packets":…,"ip_bytes":…,"send_errors":…,"secs":…,"pps":…}`.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"packets\":{},\"ip_bytes\":{},\"send_errors\":{},\"secs\":{:.3},\"pps\":{:.0}}}",
            self.packets,
            self.ip_bytes,
            self.send_errors,
            self.secs,
            self.packets_per_sec()
        )
    }
}

/// The transports the `jvpn` runtime mixes into every Noise prologue (both sides use this one
/// constant; see docs/ARCHITECTURE.md).
const RUNTIME_PROLOGUE_TRANSPORTS: &[u8] = b"udp,quic,wss";

/// A HANDSHAKE_INIT exactly as a `jvpn` client with `key` sends it to the server `server_key` now
/// (what an attacker on the path would capture): a real Noise message with a fresh timestamp, so
/// the first copy that reaches the server is a valid initiation. `None` if the session cannot be
/// built (it always can with a valid key).
pub fn captured_init(key: &StaticSecret, server_key: PublicKey, seed: u64) -> Option<Vec<u8>> {
    let clock = jvpn::clock::anchor();
    let config = ClientConfig {
        local_key: key.clone(),
        server_key,
        psk: Psk::zero(),
        policy: Policy::default(),
        clock,
        offered_transports: RUNTIME_PROLOGUE_TRANSPORTS.to_vec(),
    };
    let rng = Box::new(ChaCha20Rng::seed_from_u64(seed));
    let mut session = Session::connect(config, PathId(0), clock.instant, rng).ok()?;
    let mut datagram = Vec::new();
    let transmit = session.poll_transmit(clock.instant, &mut datagram)?;
    datagram.truncate(transmit.len);
    Some(datagram)
}

/// Runs a flood on the calling thread until `config.duration` has passed or `stop` is set. Call it
/// inside the attacker's namespace ([`crate::Namespace::run_in`]): the raw socket is created there.
pub fn run(config: &FloodConfig, stop: &Arc<AtomicBool>) -> io::Result<FloodReport> {
    use rustix::net::{AddressFamily, SendFlags, SocketType, ipproto, sendto, socket};

    // IPPROTO_RAW implies IP_HDRINCL: we write the IPv4 header ourselves.
    let fd = socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::RAW))?;
    let mut maker = DatagramMaker::new(config);
    let mut packet = Vec::with_capacity(IPV4_HEADER_LEN + UDP_HEADER_LEN + 2048);
    let start = now();
    let mut report = FloodReport::default();
    // Sent in bursts of one millisecond's worth, then paced against the clock.
    let burst = (config.rate / 1000).max(1);
    let destination = SocketAddrV4::new(*config.target.ip(), 0);
    while !stop.load(Ordering::Relaxed) {
        let elapsed = now().saturating_duration_since(start);
        if elapsed >= config.duration {
            break;
        }
        if config.rate > 0 {
            let due = (elapsed.as_secs_f64() * f64::from(config.rate)) as u64;
            if report.packets >= due {
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
        }
        for _ in 0..burst {
            maker.next(&mut packet);
            match sendto(&fd, &packet, SendFlags::empty(), &destination) {
                Ok(_) => {
                    report.packets += 1;
                    report.ip_bytes += packet.len() as u64;
                }
                Err(_) => report.send_errors += 1,
            }
        }
    }
    report.secs = now().saturating_duration_since(start).as_secs_f64();
    Ok(report)
}

/// Builds the datagrams of one flood.
#[derive(Debug)]
struct DatagramMaker {
    mode: FloodMode,
    target: SocketAddrV4,
    mac1_key: Option<[u8; 32]>,
    random: SplitMix,
    init: Vec<u8>,
    id: u16,
}

impl DatagramMaker {
    fn new(config: &FloodConfig) -> Self {
        let mac1_key = match &config.mode {
            FloodMode::Spoofed { server_key, .. } => Some(kdf::mac1_key(server_key)),
            FloodMode::Replay { .. } => None,
        };
        let mut init = vec![0u8; HANDSHAKE_INIT_MIN_LEN];
        init[..4].copy_from_slice(&INIT_HEADER);
        Self {
            mode: config.mode.clone(),
            target: config.target,
            mac1_key,
            random: SplitMix(config.seed),
            init,
            id: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.random.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    /// Writes the next IPv4 packet into `out`.
    fn next(&mut self, out: &mut Vec<u8>) {
        self.id = self.id.wrapping_add(1);
        let (source, payload_len) = match self.mode {
            FloodMode::Spoofed {
                network,
                prefix_len,
                ..
            } => {
                let host_bits = 32u32.saturating_sub(u32::from(prefix_len)).min(32);
                let mask = if host_bits == 32 {
                    u32::MAX
                } else {
                    (1u32 << host_bits) - 1
                };
                let r = self.next_u64();
                let host = (r as u32) & mask;
                // Avoid the network and broadcast addresses of the prefix.
                let host = if host == 0 || host == mask { 1 } else { host };
                let ip = Ipv4Addr::from(u32::from(network) & !mask | host);
                let port = 1024 + ((r >> 32) as u16 % 64_000);
                // Random sender index and Noise bytes, then a valid MAC1 over them.
                let covered = HANDSHAKE_INIT_MIN_LEN - 2 * MAC_LEN;
                let mut noise = std::mem::take(&mut self.init);
                self.random.fill(&mut noise[4..covered]);
                if let Some(key) = &self.mac1_key {
                    let mac1 = kdf::mac1(key, &noise[..covered]);
                    noise[covered..covered + MAC_LEN].copy_from_slice(&mac1);
                }
                noise[covered + MAC_LEN..].fill(0);
                self.init = noise;
                (SocketAddrV4::new(ip, port), HANDSHAKE_INIT_MIN_LEN)
            }
            FloodMode::Replay {
                ref datagram,
                source,
            } => (source, datagram.len()),
        };
        out.clear();
        let total = IPV4_HEADER_LEN + UDP_HEADER_LEN + payload_len;
        write_ipv4_header(out, total, self.id, *source.ip(), *self.target.ip());
        let udp_len = u16::try_from(UDP_HEADER_LEN + payload_len).unwrap_or(u16::MAX);
        out.extend_from_slice(&source.port().to_be_bytes());
        out.extend_from_slice(&self.target.port().to_be_bytes());
        out.extend_from_slice(&udp_len.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        match &self.mode {
            FloodMode::Spoofed { .. } => out.extend_from_slice(&self.init),
            FloodMode::Replay { datagram, .. } => out.extend_from_slice(datagram),
        }
    }
}

/// Appends a 20-byte IPv4 header (no options, DF clear, TTL 64, protocol UDP) with its checksum.
fn write_ipv4_header(out: &mut Vec<u8>, total: usize, id: u16, src: Ipv4Addr, dst: Ipv4Addr) {
    let total = u16::try_from(total).unwrap_or(u16::MAX);
    let start = out.len();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 0, 64, 17, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    let sum = checksum(&out[start..start + IPV4_HEADER_LEN]);
    out[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
}

/// The Internet checksum (RFC 1071) of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jvpn::wire::frame::HandshakeInitPacket;

    fn spoofed(prefix_len: u8) -> FloodConfig {
        FloodConfig {
            mode: FloodMode::Spoofed {
                server_key: PublicKey::from_bytes([7; 32]),
                network: Ipv4Addr::new(10, 50, 0, 0),
                prefix_len,
            },
            target: SocketAddrV4::new(Ipv4Addr::new(10, 201, 2, 2), 51820),
            rate: 0,
            duration: Duration::from_secs(1),
            seed: 1,
        }
    }

    #[test]
    fn a_spoofed_datagram_is_a_minimal_initiation_with_a_valid_mac1_from_the_prefix() {
        let config = spoofed(16);
        let mut maker = DatagramMaker::new(&config);
        let mut packet = Vec::new();

        maker.next(&mut packet);

        assert_eq!(packet.len(), 20 + 8 + HANDSHAKE_INIT_MIN_LEN);
        assert_eq!(checksum(&packet[..20]), 0, "the header checksum verifies");
        assert_eq!(&packet[12..14], &[10, 50]);
        assert_eq!(&packet[16..20], &[10, 201, 2, 2]);
        assert_eq!(u16::from_be_bytes([packet[22], packet[23]]), 51820);
        let init = HandshakeInitPacket::new_checked(&packet[28..]).expect("a well-formed INIT");
        let key = kdf::mac1_key(&PublicKey::from_bytes([7; 32]));
        assert_eq!(init.mac1(), kdf::mac1(&key, init.mac1_covered()));
        assert_eq!(init.mac2(), [0; MAC_LEN]);
    }

    #[test]
    fn two_spoofed_datagrams_differ_in_source_and_mac1() {
        let mut maker = DatagramMaker::new(&spoofed(16));
        let (mut a, mut b) = (Vec::new(), Vec::new());

        maker.next(&mut a);
        maker.next(&mut b);

        assert_ne!(a[12..16], b[12..16]);
        let mac = |p: &[u8]| p[p.len() - 32..p.len() - 16].to_vec();
        assert_ne!(mac(&a), mac(&b));
    }

    #[test]
    fn a_replay_repeats_the_same_payload_from_the_same_source() {
        let source = SocketAddrV4::new(Ipv4Addr::new(10, 50, 9, 9), 40000);
        let config = FloodConfig {
            mode: FloodMode::Replay {
                datagram: vec![1, 2, 3],
                source,
            },
            ..spoofed(16)
        };
        let mut maker = DatagramMaker::new(&config);
        let (mut a, mut b) = (Vec::new(), Vec::new());

        maker.next(&mut a);
        maker.next(&mut b);

        assert_eq!(a[12..], b[12..]);
        assert_eq!(&a[28..], &[1, 2, 3]);
        assert_eq!(&a[12..16], &[10, 50, 9, 9]);
    }
}

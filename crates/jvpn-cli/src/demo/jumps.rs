//! The jumping part of `jvpn demo`: firewall changes that push the session from UDP to QUIC, from
//! QUIC to WSS and back to UDP, each move shown live with its blackout.
//!
//! The blackout is measured by two inner UDP streams through the tunnel (one datagram every 5 ms
//! each way, `jvpn_netns::traffic::udp`): the longest gap after the firewall change, i.e. the time
//! from the last inner packet before the move to the first one after it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jvpn_netns::traffic::millis;
use jvpn_netns::traffic::udp::{
    DEFAULT_GAP_THRESHOLD, DEFAULT_INTERVAL, Gap, UdpStreamReceiver, UdpStreamSender,
};
use jvpn_netns::{Block, Deadline, Namespace, Testbed};

use super::{CLIENT_INNER, DemoArgs, SERVER_INNER, Side, print_status, say, status};

/// The demo's `[policy]`: the defaults, except that a dead standby transport is probed at least
/// every 2 s (the default backs off to 20 s), so the return to UDP shows within seconds.
pub(super) const DEMO_POLICY: &str = "[policy]\n\
    standby_probe_factor = 2\n\
    standby_probe_max_interval_ms = 2000\n";
/// Inner UDP port of the blackout streams.
const METER_PORT: u16 = 6001;
/// Bound for one move (the firewall change until the session is on the expected transport).
const MOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// One step of the show.
struct Step {
    /// What the firewall does now, in words.
    what: &'static str,
    /// The rules applied everywhere (`None`: no rules).
    block: Option<Block>,
    /// The transport the session should end up on.
    expect: &'static str,
}

const STEPS: [Step; 3] = [
    Step {
        what: "drop all UDP except port 443 (QUIC)",
        block: Some(Block::UdpExceptPort(443)),
        expect: "quic",
    },
    Step {
        what: "drop everything except TCP port 443 (WSS)",
        block: Some(Block::AllExceptTcpPort(443)),
        expect: "wss",
    },
    Step {
        what: "lift every block",
        block: None,
        expect: "udp",
    },
];

/// Two inner UDP streams, client → server and server → client.
struct Meter {
    senders: Vec<UdpStreamSender>,
    up: UdpStreamReceiver,
    down: UdpStreamReceiver,
}

impl Meter {
    fn start(client: &Namespace, server: &Namespace, bound: Duration) -> Result<Self, String> {
        let deadline = Deadline::after(bound);
        let bind = |ns: &Namespace, addr: Ipv4Addr, port: u16| {
            ns.run_in(Duration::from_secs(5), move || {
                UdpSocket::bind(SocketAddr::from((addr, port)))
            })
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("bind {addr}:{port}: {e}"))
        };
        let io = |e: std::io::Error| format!("start an inner UDP stream: {e}");
        let up = UdpStreamReceiver::start(
            bind(server, SERVER_INNER, METER_PORT)?,
            DEFAULT_GAP_THRESHOLD,
            deadline,
        )
        .map_err(io)?;
        let down = UdpStreamReceiver::start(
            bind(client, CLIENT_INNER, METER_PORT)?,
            DEFAULT_GAP_THRESHOLD,
            deadline,
        )
        .map_err(io)?;
        let senders = vec![
            UdpStreamSender::start(
                bind(client, CLIENT_INNER, 0)?,
                SocketAddr::from((SERVER_INNER, METER_PORT)),
                DEFAULT_INTERVAL,
                deadline,
            )
            .map_err(io)?,
            UdpStreamSender::start(
                bind(server, SERVER_INNER, 0)?,
                SocketAddr::from((CLIENT_INNER, METER_PORT)),
                DEFAULT_INTERVAL,
                deadline,
            )
            .map_err(io)?,
        ];
        Ok(Self { senders, up, down })
    }

    fn mark(&self) -> (Duration, Duration) {
        (self.up.elapsed(), self.down.elapsed())
    }

    /// Whether both streams had a datagram in the last 100 ms.
    fn flowing(&self) -> bool {
        let recent = Duration::from_millis(100);
        self.up.snapshot().silent_for < recent && self.down.snapshot().silent_for < recent
    }

    fn blackout_after(&self, (up, down): (Duration, Duration)) -> (Option<Gap>, Option<Gap>) {
        (
            self.up.snapshot().largest_gap_after(up),
            self.down.snapshot().largest_gap_after(down),
        )
    }

    fn stop(self) {
        for sender in self.senders {
            sender.stop();
        }
        self.up.stop();
        self.down.stop();
    }
}

fn gap_text(gap: Option<Gap>) -> String {
    gap.map_or_else(
        || "< 50 ms".to_owned(),
        |g| format!("{:.0} ms", millis(g.length)),
    )
}

/// The transport of the client's session, if attached.
fn transport(exe: &str, client: &Side) -> Option<String> {
    let s = status(exe, client)?;
    let session = s["sessions"].get(0)?;
    matches!(
        session["state"].as_str(),
        Some("ATTACHED" | "VOLATILE" | "DEGRADED")
    )
    .then(|| session["transport"].as_str().map(str::to_owned))
    .flatten()
}

/// Shows `args.duration` seconds of live status, one line a second.
fn live(exe: &str, sides: (&Side, &Side), args: &DemoArgs, stop: &AtomicBool, t: &mut u64) {
    let mut last_out = None;
    for _ in 0..args.duration {
        let tick = Deadline::after(Duration::from_secs(1));
        while !tick.expired() && !stop.load(Ordering::Relaxed) {
            tick.sleep(Duration::from_millis(100));
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        *t += 1;
        print_status(exe, sides, args.json, *t, &mut last_out);
    }
}

/// UDP for `args.duration` seconds, then each step of [`STEPS`]: apply its firewall rules in both
/// namespaces, wait until the session is on the expected transport, print the blackout, and show
/// `args.duration` seconds of live status there.
pub(super) fn run(
    tb: &Testbed,
    exe: &str,
    (client, server): (&Side, &Side),
    args: &DemoArgs,
    stop: &AtomicBool,
) -> Result<(), String> {
    let sides = (client, server);
    let bound = Duration::from_secs(args.duration * 4 + 4 * MOVE_TIMEOUT.as_secs());
    let meter = Meter::start(&client.ns, &server.ns, bound)?;
    let mut t = 0;
    say(&format!(
        "on {}: inner UDP streams (one datagram every 5 ms each way) measure each blackout",
        transport(exe, client).unwrap_or_else(|| "?".into())
    ));
    live(exe, sides, args, stop, &mut t);
    for step in &STEPS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        say(&format!("--- firewall: {} ---", step.what));
        let mark = meter.mark();
        let moving = Deadline::after(MOVE_TIMEOUT);
        match step.block {
            Some(block) => tb.block_everywhere(block),
            None => tb.unblock_everywhere(),
        }
        .map_err(|e| e.to_string())?;
        let mut last_out = None;
        let mut next_line = Deadline::after(Duration::from_secs(1));
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if transport(exe, client).as_deref() == Some(step.expect) && meter.flowing() {
                let (up, down) = meter.blackout_after(mark);
                say(&format!(
                    ">>> now on {} ({:.1} s after the change); blackout: up {}, down {}",
                    step.expect.to_uppercase(),
                    moving.elapsed().as_secs_f64(),
                    gap_text(up),
                    gap_text(down)
                ));
                break;
            }
            if moving.expired() {
                say(&format!(
                    ">>> still not on {} after {} s: see the audit trail below",
                    step.expect,
                    MOVE_TIMEOUT.as_secs()
                ));
                break;
            }
            if next_line.expired() {
                t += 1;
                print_status(exe, sides, args.json, t, &mut last_out);
                next_line = Deadline::after(Duration::from_secs(1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        live(exe, sides, args, stop, &mut t);
    }
    meter.stop();
    Ok(())
}

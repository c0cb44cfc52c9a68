//! The human-readable form of a [`TunnelStatus`]: a header line, then one block per session
//! with its paths and last transitions as small aligned tables.

use std::fmt::Write as _;

use jvpn::session::AuditRecord;
use jvpn::tunnel::{PathStatus, SessionStatus, TunnelStatus};

/// Renders the whole status (ends with a newline).
pub(crate) fn human(status: &TunnelStatus) -> String {
    let mut out = String::new();
    let tun = status.tun.as_ref().map_or_else(
        || "no TUN device".to_owned(),
        |t| format!("TUN {} (MTU {})", t.name, t.mtu),
    );
    let _ = writeln!(
        out,
        "jvpn {role} · {tun} · {sessions} · reconnects {reconnects}",
        role = status.role,
        sessions = plural(status.sessions.len() as u64, "session"),
        reconnects = status.reconnects,
    );
    let _ = writeln!(
        out,
        "dropped inner packets: {} to no peer, {} from a source outside its allowed IPs",
        status.unknown_destination_drops, status.source_not_allowed_drops
    );
    if status.sessions.is_empty() {
        let waiting = if status.role == "server" {
            "no sessions yet: waiting for clients"
        } else {
            "no session yet: connecting"
        };
        let _ = writeln!(out, "\n{waiting}");
    }
    for session in &status.sessions {
        out.push('\n');
        session_block(&mut out, session);
    }
    out
}

fn session_block(out: &mut String, s: &SessionStatus) {
    let id = s.session_id.as_deref().unwrap_or("(not assigned yet)");
    let _ = writeln!(out, "session {id}");
    let mut rows: Vec<(&str, String)> = vec![
        ("peer", s.peer.clone()),
        (
            "state",
            format!("{} (version {}, epoch {})", s.state, s.version, s.epoch),
        ),
        (
            "transport",
            match (&s.transport, &s.remote) {
                (Some(kind), Some(remote)) => format!("{kind} to {remote}"),
                (Some(kind), None) => kind.clone(),
                (None, _) => "none (not bound to a path)".to_owned(),
            },
        ),
        (
            "why",
            s.last_switch.as_ref().map_or_else(
                || "-".to_owned(),
                |w| match &w.url {
                    Some(url) => format!("{} (to {url})", w.reason),
                    None => w.reason.clone(),
                },
            ),
        ),
        (
            "handshake",
            s.handshake_age_secs.map_or_else(
                || "none yet".to_owned(),
                |age| format!("{} ago", duration(age)),
            ),
        ),
        (
            "received",
            format!("{}, {}", bytes(s.bytes_in), plural(s.packets_in, "packet")),
        ),
        (
            "sent",
            format!(
                "{}, {}",
                bytes(s.bytes_out),
                plural(s.packets_out, "packet")
            ),
        ),
    ];
    let drops: Vec<String> = s
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    rows.push((
        "drops",
        if drops.is_empty() {
            "none".to_owned()
        } else {
            drops.join(", ")
        },
    ));
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<10} {value}");
    }

    let _ = writeln!(out, "  paths");
    if s.candidates.is_empty() {
        let _ = writeln!(out, "    none");
    } else {
        let mut table = vec![cells(&[
            "KIND", "URL", "REMOTE", "LINK", "STATE", "PROBER", "RTT", "JITTER", "LOSS", "SEEN",
        ])];
        table.extend(s.candidates.iter().map(path_row));
        write_table(out, &table);
    }

    let _ = writeln!(out, "  last transitions (oldest first, UTC)");
    if s.last_transitions.is_empty() {
        let _ = writeln!(out, "    none");
    } else {
        let mut table = vec![cells(&[
            "TIME",
            "VERSION",
            "FROM",
            "TO",
            "REASON",
            "EPOCH",
            "TRANSPORT",
        ])];
        table.extend(s.last_transitions.iter().map(transition_row));
        write_table(out, &table);
    }
}

fn path_row(p: &PathStatus) -> Vec<String> {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
    let state = match &p.error {
        Some(error) if !p.link_up => format!("{} ({error})", p.state),
        _ => p.state.clone(),
    };
    vec![
        p.kind.clone(),
        p.url.clone().unwrap_or_else(|| "-".to_owned()),
        p.remote.clone(),
        if p.link_up { "up" } else { "down" }.to_owned(),
        state,
        p.prober.clone().unwrap_or_else(|| "-".to_owned()),
        ms(p.rtt_ms),
        ms(p.jitter_ms),
        p.loss_percent
            .map_or_else(|| "-".to_owned(), |l| format!("{l:.1} %")),
        p.last_seen_secs
            .map_or_else(|| "-".to_owned(), |age| format!("{} ago", duration(age))),
    ]
}

fn transition_row(r: &AuditRecord) -> Vec<String> {
    vec![
        time_of_day(r.unix_ms),
        r.version.to_string(),
        r.from.to_string(),
        r.to.to_string(),
        r.reason.to_string(),
        r.epoch.to_string(),
        r.transport.clone().unwrap_or_else(|| "-".to_owned()),
    ]
}

fn cells(text: &[&str]) -> Vec<String> {
    text.iter().map(|s| (*s).to_owned()).collect()
}

/// Writes rows as left-aligned columns, indented under their heading.
fn write_table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from("    ");
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time in milliseconds.
fn time_of_day(unix_ms: u64) -> String {
    let ms_of_day = unix_ms % 86_400_000;
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// `1.5 KiB`, `12.0 MiB`, or plain bytes below 1 KiB.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return plural(n, "byte");
    }
    // Precision loss above 2^53 bytes does not matter for one decimal.
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `850 ms`, `12 s`, `3 min 5 s`, `2 h 10 min`.
fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".to_owned();
    }
    if secs < 1.0 {
        return format!("{:.0} ms", secs * 1000.0);
    }
    // Finite and non-negative (checked above): the cast only drops the fraction.
    let whole = secs as u64;
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{} min {} s", whole / 60, whole % 60),
        _ => format!("{} h {} min", whole / 3600, (whole % 3600) / 60),
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests;

//! `jvpn netcheck`: a real authenticated session over each candidate transport, then the order to
//! use them in, as a table or JSON.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use jvpn::netcheck::NetcheckReport;
use jvpn::wire::keys::Psk;
use jvpn::{ClientOptions, Transports};

use crate::cli::NetcheckArgs;
use crate::config::{self, ConnectFile};
use crate::failure::RunError;
use crate::settings;

/// Checks every candidate and prints the report; fails (exit 1) when none is reachable.
pub(crate) async fn run(args: NetcheckArgs) -> Result<(), RunError> {
    let file = args
        .config
        .as_deref()
        .map(config::load::<ConnectFile>)
        .transpose()?;
    let settings = settings::netcheck(&args, file.as_ref())?;
    let key = jvpn::keyfile::read_secret_key(&settings.key)?;
    let server_key = settings.target.server_key.read()?;
    let options = ClientOptions {
        psk: Psk::zero(),
        policy: settings.policy,
        ..ClientOptions::with_candidates(key, server_key, settings.target.servers)
    };
    let transports = Transports::builtin_with_proxy(settings.target.proxy.as_deref());
    let report = jvpn::netcheck::check(
        &options,
        &transports,
        Duration::from_secs(args.timeout.max(1)),
    )
    .await;

    let text = if args.json {
        // Plain strings and numbers: serializing cannot fail.
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        table(&report)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`jvpn netcheck | head`) is not an error worth reporting.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if report.recommended.is_empty() {
        return Err(RunError::Unreachable);
    }
    Ok(())
}

/// The human-readable report: one row per candidate, then the recommended order.
fn table(report: &NetcheckReport) -> String {
    let mut rows = vec![[
        "TRANSPORT".to_owned(),
        "URL".to_owned(),
        "RESULT".to_owned(),
        "ATTACH".to_owned(),
        "RTT".to_owned(),
    ]];
    for r in &report.results {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
        rows.push([
            r.transport.clone(),
            r.url.clone(),
            if r.reachable {
                "reachable".to_owned()
            } else {
                format!("unreachable: {}", r.error.as_deref().unwrap_or("no answer"))
            },
            ms(r.handshake_ms),
            ms(r.rtt_ms),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let order = if report.recommended.is_empty() {
        "none (nothing reachable)".to_owned()
    } else {
        report.recommended.join(" > ")
    };
    let _ = writeln!(out, "\nrecommended order: {order}");
    out
}

#[cfg(test)]
mod tests {
    use jvpn::netcheck::CheckResult;

    use super::*;

    #[test]
    fn the_table_shows_each_transport_its_result_and_the_recommended_order() {
        let report = NetcheckReport {
            schema_version: 1,
            results: vec![
                CheckResult {
                    transport: "udp".into(),
                    url: "udp://h:51820".into(),
                    reachable: false,
                    error: Some("no answer within 5s".into()),
                    handshake_ms: None,
                    rtt_ms: None,
                },
                CheckResult {
                    transport: "wss".into(),
                    url: "wss://h:443/jvpn".into(),
                    reachable: true,
                    error: None,
                    handshake_ms: Some(12.25),
                    rtt_ms: Some(0.5),
                },
            ],
            recommended: vec!["wss://h:443/jvpn".into()],
        };

        let text = table(&report);

        for needle in [
            "TRANSPORT",
            "unreachable: no answer within 5s",
            "reachable",
            "12.2 ms",
            "0.5 ms",
            "recommended order: wss://h:443/jvpn",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }
}

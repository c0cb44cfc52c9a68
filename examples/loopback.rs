//! A client and a server in one process on 127.0.0.1, exchanging datagrams over UDP and printing
//! every session state transition as it happens.
//!
//! ```sh
//! cargo run --release --example loopback [-- --count 1000]
//! ```

#![allow(
    clippy::print_stdout,
    reason = "an example talks to its user on stdout"
)]

use std::time::Duration;

use jvpn::session::{Event, PeerConfig};
use jvpn::transport::TransportUrl;
use jvpn::wire::keys::{Psk, StaticSecret};
use jvpn::{Client, ClientOptions, Server, ServerOptions};
use rand::SeedableRng;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .skip_while(|a| a != "--count")
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1000);

    let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
    let server_key = StaticSecret::generate(&mut rng);
    let client_key = StaticSecret::generate(&mut rng);
    println!("server public key {}", server_key.public_key());
    println!("client public key {}", client_key.public_key());

    let udp = jvpn::udp();
    let listen: TransportUrl = "udp://127.0.0.1:0".parse()?;
    let peers = vec![PeerConfig {
        public_key: client_key.public_key(),
        psk: Psk::zero(),
    }];
    let server = Server::start(
        ServerOptions::new(server_key.clone(), peers),
        vec![udp.listen(&listen).await?],
    )
    .await?;
    let addr = server.local_addrs()[0];
    println!("server listening on udp://{addr}");

    // Print the server's view of its sessions as it changes.
    let mut server_events = server.events();
    let server_log = tokio::spawn(async move {
        while let Ok((handle, event)) = server_events.recv().await {
            if let Event::Transition(r) = event {
                println!(
                    "  [server {handle:?}] {} -> {} ({}) version {} epoch {}",
                    r.from, r.to, r.reason, r.version, r.epoch
                );
            }
        }
    });

    let url: TransportUrl = format!("udp://{addr}").parse()?;
    let client = Client::connect(
        ClientOptions::new(client_key, server_key.public_key(), url),
        udp,
    )
    .await?;
    let mut client_events = client.events();
    let client_log = tokio::spawn(async move {
        while let Ok(event) = client_events.recv().await {
            if let Event::Transition(r) = event {
                println!(
                    "  [client] {} -> {} ({}) version {} epoch {}",
                    r.from, r.to, r.reason, r.version, r.epoch
                );
            }
        }
    });

    let view = client.wait_attached(Duration::from_secs(10)).await?;
    println!(
        "attached: session {} epoch {}",
        view.session_id.map(|s| s.to_string()).unwrap_or_default(),
        view.epoch
    );

    // Echo server: every inner packet goes back to its sender.
    let echo = tokio::spawn(async move {
        while let Some(incoming) = server.recv().await {
            if server
                .send(incoming.session, &incoming.packet)
                .await
                .is_err()
            {
                break;
            }
        }
        server
    });

    #[expect(clippy::disallowed_methods, reason = "the example times its own run")]
    let started = std::time::Instant::now();
    let mut echoed = 0usize;
    for i in 0..count {
        let packet = format!("datagram {i}").into_bytes();
        client.send(&packet).await?;
        match tokio::time::timeout(Duration::from_secs(2), client.recv()).await {
            Ok(Some(reply)) if reply == packet => echoed += 1,
            Ok(Some(_)) => println!("datagram {i}: echo differs"),
            Ok(None) => break,
            Err(_) => println!("datagram {i}: no echo within 2 s"),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{echoed}/{count} datagrams echoed intact in {:.1} ms ({:.0} round trips/s)",
        elapsed.as_secs_f64() * 1e3,
        echoed as f64 / elapsed.as_secs_f64()
    );

    let status = client.status().await?;
    println!(
        "client: {} packets out, {} in, {} dropped",
        status.stats.packets_out,
        status.stats.packets_in,
        status.stats.drops.total()
    );

    let end = client.close().await?;
    // The client's event stream ends with the driver; let it print the final transition first.
    let _ = tokio::time::timeout(Duration::from_secs(1), client_log).await;
    println!(
        "client closed: {} ({})",
        end.state,
        end.last_reason.map(|r| r.to_string()).unwrap_or_default()
    );
    // Give the server a moment to process CLOSE before stopping it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    echo.abort();
    server_log.abort();
    let _ = server_log.await;
    if echoed == count {
        Ok(())
    } else {
        Err(format!("only {echoed}/{count} datagrams echoed").into())
    }
}

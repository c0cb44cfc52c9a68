//! jvpn — a VPN session that survives transport changes.
//!
//! This crate is the runtime shell around the sans-IO cores: it reads the clock, owns sockets
//! (through [`jvpn_transport`] implementations) and tokio tasks, and drives
//! [`jvpn_session::Session`] (client side, [`Client`]) and [`jvpn_session::Endpoint`] (server side,
//! [`Server`]). Everything that decides — handshakes, state transitions, timers, replay checks —
//! lives in the cores and is deterministic; this crate only moves bytes and time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use jvpn::{Client, ClientOptions};
//! use jvpn::wire::keys::{PublicKey, StaticSecret};
//!
//! let key = jvpn::keyfile::read_secret_key("client.key".as_ref())?;
//! let server_key: PublicKey = "…base64…".parse()?;
//! let url = "udp://127.0.0.1:51820".parse()?;
//! let client = Client::connect(ClientOptions::new(key, server_key, url), jvpn::udp()).await?;
//! client.wait_attached(std::time::Duration::from_secs(10)).await?;
//! client.send(b"inner packet").await?;
//! let reply = client.recv().await;
//! client.close().await?;
//! # Ok(()) }
//! ```

pub mod audit;
mod client;
pub mod clock;
pub mod control;
mod driver;
mod error;
pub mod keyfile;
pub mod links;
pub mod mtu;
pub mod netcheck;
mod server;
pub mod transports;
pub mod tunnel;

pub use client::{Client, ClientOptions};
pub use driver::{StateView, Status};
pub use error::{ClientError, SendError, ServerError};
pub use links::LinkReport;
pub use server::{Incoming, Server, ServerOptions};
pub use transports::Transports;

pub use jvpn_session as session;
pub use jvpn_transport as transport;
pub use jvpn_wire as wire;

/// The UDP transport with its default configuration.
#[cfg(feature = "udp")]
pub fn udp() -> std::sync::Arc<dyn jvpn_transport::Transport> {
    std::sync::Arc::new(jvpn_transport_udp::UdpTransport::default())
}

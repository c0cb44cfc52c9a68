//! The jvpn transport vocabulary: the [`Transport`], [`Link`] and [`Listener`] traits, the
//! [`TransportKind`] of a transport, endpoint URLs ([`TransportUrl`]) and [`LinkInfo`].
//!
//! A jvpn session outlives the transports under it; this crate is the narrow waist between the
//! two. It holds no runtime, no sockets and no tokio: transports (`transports/udp`, QUIC, WSS, or
//! your own) implement the traits, and the jvpn runtime drives them.
//!
//! # The datagram contract
//!
//! Everything is datagrams, whatever the transport frames them as (a UDP datagram, a QUIC
//! DATAGRAM frame, one binary WebSocket message):
//!
//! - one `send` carries **one whole jvpn datagram** of at most
//!   [`LinkInfo::max_datagram_size`] bytes;
//! - one `recv` returns **one whole datagram**; a datagram longer than the caller's buffer is an
//!   [`std::io::ErrorKind::InvalidData`] error, never a silently truncated datagram;
//! - delivery may lose, duplicate and reorder datagrams unless [`LinkInfo::reliable`] says
//!   otherwise; jvpn's own protocol copes with all three and never trusts the transport for
//!   security (Noise runs inside);
//! - a [`Listener`] names its peers with a [`Remote`] and keeps no per-remote state beyond what
//!   its transport needs; sessions are demultiplexed above it, by receiver index.
//!
//! All traits are object-safe and `Send + Sync + Debug + 'static`, so the runtime holds them as
//! `Box<dyn Link>` or `Arc<dyn Transport>` and picks a transport by the URL's scheme.
//!
//! # Implementing a transport
//!
//! A toy transport whose links swallow every datagram (a real one would wrap a socket):
//!
//! ```no_run
//! use std::io;
//! use jvpn_transport::{
//!     async_trait, Link, LinkInfo, Listener, Transport, TransportError, TransportKind,
//!     TransportUrl,
//! };
//!
//! #[derive(Debug)]
//! struct Void;
//!
//! #[derive(Debug)]
//! struct VoidLink;
//!
//! #[async_trait]
//! impl Link for VoidLink {
//!     fn info(&self) -> LinkInfo {
//!         LinkInfo {
//!             kind: TransportKind::Custom("void".into()),
//!             local_addr: None,
//!             remote_addr: None,
//!             max_datagram_size: 1200,
//!             reliable: false,
//!         }
//!     }
//!     async fn send(&self, datagram: &[u8]) -> io::Result<()> {
//!         if datagram.len() > 1200 {
//!             return Err(io::Error::new(io::ErrorKind::InvalidInput, "datagram too large"));
//!         }
//!         Ok(()) // dropped, as a lossy network may do
//!     }
//!     async fn recv(&self, _buf: &mut [u8]) -> io::Result<usize> {
//!         std::future::pending().await // nothing ever arrives
//!     }
//! }
//!
//! #[async_trait]
//! impl Transport for Void {
//!     fn kind(&self) -> TransportKind {
//!         TransportKind::Custom("void".into())
//!     }
//!     async fn connect(&self, url: &TransportUrl) -> Result<Box<dyn Link>, TransportError> {
//!         if url.kind != self.kind() {
//!             return Err(TransportError::KindMismatch { transport: self.kind(), url: url.clone() });
//!         }
//!         Ok(Box::new(VoidLink))
//!     }
//!     async fn listen(&self, _url: &TransportUrl) -> Result<Box<dyn Listener>, TransportError> {
//!         Err(TransportError::Unsupported { what: "listening on void".into() })
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let transport: Box<dyn Transport> = Box::new(Void);
//! let link = transport.connect(&TransportUrl::parse_custom("void://nowhere:1")?).await?;
//! link.send(b"hello").await?;
//! # Ok(())
//! # }
//! ```
//!
//! What this crate does not do: resolve names, open sockets, retry, or pick between transports
//! (the runtime and the session's path logic do that).

mod error;
mod kind;
mod link;
mod url;

/// Re-exported so that transport crates implement the traits with the same macro version.
pub use async_trait::async_trait;
pub use error::TransportError;
pub use kind::{KindError, MAX_KIND_LEN, TransportKind};
pub use link::{Link, LinkInfo, Listener, Remote, Transport};
pub use url::{DEFAULT_WSS_PATH, TransportUrl, UrlError};

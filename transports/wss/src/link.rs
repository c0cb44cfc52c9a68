//! [`WssLink`]: the client side, and the connect sequence (TCP or proxy, TLS 1.3, WebSocket).

use std::io;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use jvpn_transport::{
    DEFAULT_WSS_PATH, Link, LinkInfo, TransportError, TransportKind, TransportUrl,
};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::HOST;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::pump::{self, Inbound, LINK_IN_QUEUE, OUT_QUEUE, Out};
use crate::{WssConfig, WssError, proxy, tls};

/// A client-side WSS link: one TCP connection (direct or through an HTTP proxy), TLS 1.3, and
/// a WebSocket whose binary messages are jvpn datagrams. Reliable and ordered (TCP).
///
/// `recv` is cancel-safe (see the crate docs); dropping the link closes the connection.
#[derive(Debug)]
pub struct WssLink {
    info: LinkInfo,
    out: mpsc::Sender<Out>,
    inbound: Mutex<mpsc::Receiver<Bytes>>,
}

/// Opens a link to `url` within the configured connect timeout.
pub(crate) async fn connect(
    url: &TransportUrl,
    config: &WssConfig,
) -> Result<WssLink, TransportError> {
    let timeout = config.connect_timeout;
    tokio::time::timeout(timeout, connect_inner(url, config))
        .await
        .map_err(|_| WssError::Timeout {
            stage: "connecting (TCP, proxy, TLS and WebSocket handshakes)",
            after: timeout,
        })?
}

async fn connect_inner(url: &TransportUrl, config: &WssConfig) -> Result<WssLink, TransportError> {
    let (tcp, remote_addr) = match config.proxy.proxy_for(&url.host)? {
        None => {
            let (tcp, addr) = tcp_connect(&url.host, url.port).await?;
            (tcp, Some(addr))
        }
        Some(proxy) => {
            let (mut tcp, _) = tcp_connect(&proxy.host, proxy.port).await?;
            proxy::tunnel(&mut tcp, &proxy, &url.authority()).await?;
            // The proxy hides the server's address.
            (tcp, None)
        }
    };
    tcp.set_nodelay(true)?;
    let local_addr = tcp.local_addr().ok();

    let server_name = server_name(url, config)?;
    let shown_name = config.sni.clone().unwrap_or_else(|| url.host.clone());
    let tls_config = tls::client_config(config.pin_sha256).map_err(|e| WssError::Tls {
        server: shown_name.clone(),
        source: io::Error::other(e),
    })?;
    let tls = TlsConnector::from(tls_config)
        .connect(server_name, tcp)
        .await
        .map_err(|source| {
            if tls::is_pin_mismatch(&source) {
                WssError::PinMismatch { server: shown_name }
            } else {
                WssError::Tls {
                    server: shown_name,
                    source,
                }
            }
        })?;

    let path = url.path.as_deref().unwrap_or(DEFAULT_WSS_PATH);
    let shown_url = format!("wss://{}{path}", url.authority());
    let ws_error = |reason: String| WssError::WebSocket {
        url: shown_url.clone(),
        reason,
    };
    let mut request = shown_url
        .as_str()
        .into_client_request()
        .map_err(|e| ws_error(e.to_string()))?;
    if let Some(host) = &config.host_header {
        let value = HeaderValue::from_str(host)
            .map_err(|_| WssError::InvalidName { name: host.clone() })?;
        request.headers_mut().insert(HOST, value);
    }
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, tls, Some(ws_config(config)))
            .await
            .map_err(|e| ws_error(e.to_string()))?;

    let info = LinkInfo {
        kind: TransportKind::Wss,
        local_addr,
        remote_addr,
        max_datagram_size: config.max_datagram_size(),
        reliable: true,
    };
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let (in_tx, in_rx) = mpsc::channel(LINK_IN_QUEUE);
    // The client side keeps no deadlines: jvpn above it decides when a link is dead.
    tokio::spawn(pump::run(
        ws,
        Inbound::Link(in_tx),
        out_rx,
        (),
        None,
        |_| {},
    ));
    Ok(WssLink {
        info,
        out: out_tx,
        inbound: Mutex::new(in_rx),
    })
}

/// Connects to the first address of `host` that accepts.
async fn tcp_connect(host: &str, port: u16) -> Result<(TcpStream, SocketAddr), TransportError> {
    let resolve_error = |source| TransportError::Resolve {
        host: host.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(resolve_error)?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok((tcp, addr)),
            Err(source) => last = Some(TransportError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| {
        resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no addresses",
        ))
    }))
}

/// SNI: the configured name, else the URL's host; an IP address sends no SNI (rustls never puts
/// an IP in SNI).
fn server_name(url: &TransportUrl, config: &WssConfig) -> Result<ServerName<'static>, WssError> {
    let name = config.sni.as_deref().unwrap_or(&url.host);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned()).map_err(|_| WssError::InvalidName {
        name: name.to_owned(),
    })
}

/// The WebSocket limits of S23: frames and messages bounded (checked from the length header,
/// before buffering), writes bounded.
pub(crate) fn ws_config(config: &WssConfig) -> WebSocketConfig {
    const CHUNK: usize = 64 * 1024;
    WebSocketConfig::default()
        .read_buffer_size(CHUNK)
        .write_buffer_size(CHUNK)
        .max_write_buffer_size(
            config
                .max_write_buffer
                .max(CHUNK + config.max_message_size + 1024),
        )
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size))
}

fn check_size(len: usize, max: usize) -> io::Result<()> {
    if len <= max {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a {len}-byte datagram exceeds the WSS maximum of {max} bytes"),
        ))
    }
}

pub(crate) fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the WSS connection is closed",
    )
}

/// Copies a whole datagram into `buf`, or refuses it (the datagram is dropped).
pub(crate) fn copy_datagram(datagram: &[u8], buf: &mut [u8]) -> io::Result<usize> {
    let Some(dst) = buf.get_mut(..datagram.len()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "dropped a {}-byte datagram larger than the {}-byte receive buffer",
                datagram.len(),
                buf.len()
            ),
        ));
    };
    dst.copy_from_slice(datagram);
    Ok(datagram.len())
}

#[async_trait]
impl Link for WssLink {
    fn info(&self) -> LinkInfo {
        self.info.clone()
    }

    /// Queues one datagram for the connection's writer, waiting for room (back-pressure from TCP).
    async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        check_size(datagram.len(), self.info.max_datagram_size)?;
        self.out
            .send(Out::Data(Bytes::copy_from_slice(datagram)))
            .await
            .map_err(|_| aborted())
    }

    /// Cancel-safe: waits on the channel the connection's reader task fills.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inbound = self.inbound.lock().await;
        match inbound.recv().await {
            Some(datagram) => copy_datagram(&datagram, buf),
            None => Err(aborted()),
        }
    }

    fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        check_size(datagram.len(), self.info.max_datagram_size)?;
        self.out
            .try_send(Out::Data(Bytes::copy_from_slice(datagram)))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => io::ErrorKind::WouldBlock.into(),
                mpsc::error::TrySendError::Closed(_) => aborted(),
            })
    }

    /// Sends a WebSocket close frame after the datagrams already queued.
    async fn close(&self) {
        let _ = self.out.send(Out::Close).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> TransportUrl {
        TransportUrl::parse(s).unwrap()
    }

    #[test]
    fn sni_is_the_url_host_unless_configured() {
        let config = WssConfig::default();
        let fronted = WssConfig {
            sni: Some("cdn.example".into()),
            ..WssConfig::default()
        };

        let plain = server_name(&url("wss://vpn.example:443"), &config).unwrap();
        let front = server_name(&url("wss://vpn.example:443"), &fronted).unwrap();

        assert_eq!(plain.to_str(), "vpn.example");
        assert_eq!(front.to_str(), "cdn.example");
    }

    #[test]
    fn ip_literals_get_no_sni_name() {
        let name = server_name(&url("wss://[::1]:443"), &WssConfig::default()).unwrap();

        assert!(matches!(name, ServerName::IpAddress(_)));
    }

    #[test]
    fn an_invalid_configured_sni_is_refused() {
        let config = WssConfig {
            sni: Some("not a name".into()),
            ..WssConfig::default()
        };

        let error = server_name(&url("wss://vpn.example:443"), &config).unwrap_err();

        assert!(matches!(error, WssError::InvalidName { .. }));
    }

    #[test]
    fn a_datagram_larger_than_the_buffer_is_refused_not_truncated() {
        let mut small = [0u8; 4];

        let error = copy_datagram(b"too long", &mut small).unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(copy_datagram(b"ok", &mut small).unwrap(), 2);
    }
}

//! WSS links through an HTTP CONNECT proxy: a tiny proxy written here, on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{connect, listen, within};
use jvpn_transport::{Link, Listener, TransportError};
use jvpn_transport_wss::{ProxyConfig, WssConfig, WssError, WssTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the test proxy behaves.
#[derive(Clone)]
struct ProxyRules {
    /// The `Proxy-Authorization` value it insists on (407 otherwise).
    auth: Option<String>,
    /// The CONNECT targets it was asked for.
    seen: Arc<Mutex<Vec<String>>>,
}

/// Starts a CONNECT proxy: reads the request head, checks the credentials, answers 200 and
/// copies bytes both ways.
async fn spawn_proxy(rules: ProxyRules) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = tcp.accept().await else {
                return;
            };
            tokio::spawn(serve(client, rules.clone()));
        }
    });
    addr
}

async fn serve(mut client: TcpStream, rules: ProxyRules) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read_exact(&mut byte).await.is_err() || head.len() > 8192 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap();
    let target = request_line
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
        .unwrap()
        .to_owned();
    rules.seen.lock().unwrap().push(target.clone());
    let authorization = lines
        .filter_map(|line| line.split_once(": "))
        .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.to_owned());
    if rules.auth.is_some() && authorization != rules.auth {
        let _ = client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(&target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

fn rules(auth: Option<&str>) -> ProxyRules {
    ProxyRules {
        auth: auth.map(str::to_owned),
        seen: Arc::default(),
    }
}

fn through(proxy: SocketAddr, userinfo: &str) -> WssConfig {
    WssConfig {
        proxy: ProxyConfig::Http {
            url: format!("http://{userinfo}{proxy}"),
        },
        ..WssConfig::default()
    }
}

#[tokio::test]
async fn a_link_works_through_a_connect_proxy_with_basic_credentials() {
    let (listener, url) = listen(WssConfig::default()).await;
    // "alice:s3cret" in base64.
    let rules = rules(Some("Basic YWxpY2U6czNjcmV0"));
    let proxy = spawn_proxy(rules.clone()).await;

    let link = connect(through(proxy, "alice:s3cret@"), &url).await;
    within(link.send(b"via proxy")).await.unwrap();
    let mut buf = [0u8; 64];
    let (len, remote) = within(listener.recv_from(&mut buf)).await.unwrap();
    listener.send_to(b"back via proxy", remote).await.unwrap();
    let back = within(link.recv(&mut buf)).await.unwrap();

    assert_eq!(&buf[..back], b"back via proxy");
    assert_eq!(len, b"via proxy".len());
    assert_eq!(*rules.seen.lock().unwrap(), vec![url.authority()]);
    assert_eq!(link.info().remote_addr, None, "the proxy hides the server");
}

#[tokio::test]
async fn a_407_from_the_proxy_gives_a_clear_error() {
    let (_listener, url) = listen(WssConfig::default()).await;
    let proxy = spawn_proxy(rules(Some("Basic YWxpY2U6czNjcmV0"))).await;

    let error = within(WssTransport::new(through(proxy, "")).connect_wss(&url))
        .await
        .unwrap_err();

    let TransportError::Other(inner) = &error else {
        panic!("unexpected error {error:?}");
    };
    assert!(matches!(
        inner.downcast_ref::<WssError>(),
        Some(WssError::ProxyRefused { .. })
    ));
    let message = error.to_string();
    assert!(
        message.contains("407 Proxy Authentication Required"),
        "{message}"
    );
    assert!(message.contains("needs credentials"), "{message}");
}

#[tokio::test]
async fn wrong_credentials_are_reported_without_showing_them() {
    let (_listener, url) = listen(WssConfig::default()).await;
    let proxy = spawn_proxy(rules(Some("Basic YWxpY2U6czNjcmV0"))).await;

    let error = within(WssTransport::new(through(proxy, "alice:hunter2@")).connect_wss(&url))
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("rejected the credentials"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn no_proxy_hosts_bypass_the_environment_proxy() {
    let (listener, url) = listen(WssConfig::default()).await;
    // A proxy that is never reachable: port 1 on loopback refuses connections.
    let config = WssConfig {
        proxy: ProxyConfig::from_vars(
            Some("http://127.0.0.1:1"),
            None,
            Some("localhost,127.0.0.1"),
        ),
        ..WssConfig::default()
    };

    let link = connect(config, &url).await;
    within(link.send(b"direct")).await.unwrap();
    let mut buf = [0u8; 16];
    let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();

    assert_eq!(&buf[..len], b"direct");
}

#[tokio::test]
async fn an_environment_proxy_is_used_for_hosts_not_in_no_proxy() {
    let (listener, url) = listen(WssConfig::default()).await;
    let rules = rules(None);
    let proxy = spawn_proxy(rules.clone()).await;
    let config = WssConfig {
        proxy: ProxyConfig::from_vars(None, Some(&format!("http://{proxy}")), Some("example.com")),
        ..WssConfig::default()
    };

    let link = connect(config, &url).await;
    within(link.send(b"proxied")).await.unwrap();
    let mut buf = [0u8; 16];
    within(listener.recv_from(&mut buf)).await.unwrap();

    assert_eq!(rules.seen.lock().unwrap().len(), 1);
}

//! The server's HTTP/1.1 side: read one request head (at most 8 KiB), decide between a WebSocket
//! upgrade on the configured path and the plain web page, and the answers for each.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The longest request head accepted.
pub(crate) const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The most headers parsed in a request.
const MAX_HEADERS: usize = 64;

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// A WebSocket upgrade on the configured path: answer 101 with this `Sec-WebSocket-Accept`.
    Upgrade { accept: String },
    /// Any other well-formed request: the web page.
    Page,
    /// Not HTTP/1.x at all: 400, then close.
    NotHttp,
}

/// The web page every non-jvpn request gets: what a freshly installed web server shows.
const PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><title>It works!</title></head>\n\
<body><h1>It works!</h1><p>This is the default web page for this server.</p></body>\n</html>\n";

/// Reads into `buf` until the end of a request head; returns the head's length (the bytes after
/// it, if the client already sent some, stay in `buf`).
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] beyond [`MAX_REQUEST_HEAD`] bytes,
/// [`io::ErrorKind::UnexpectedEof`] if the client closes first.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(end);
        }
        if buf.len() >= MAX_REQUEST_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head longer than 8 KiB",
            ));
        }
        let room = (MAX_REQUEST_HEAD - buf.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Classifies a request head against the WebSocket `path` the server serves.
pub(crate) fn classify(head: &[u8], path: &str) -> Route {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Route::NotHttp,
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|value| {
            value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let request_path = request
        .path
        .map(|p| p.split_once('?').map_or(p, |(p, _)| p));
    let is_upgrade = request.method == Some("GET")
        && request.version == Some(1)
        && request_path == Some(path)
        && has_token("upgrade", "websocket")
        && has_token("connection", "upgrade")
        && header("sec-websocket-version") == Some(b"13".as_slice());
    match header("sec-websocket-key") {
        Some(key) if is_upgrade && !key.is_empty() => Route::Upgrade {
            accept: derive_accept_key(key.trim_ascii()),
        },
        _ => Route::Page,
    }
}

/// The `101 Switching Protocols` answer.
pub(crate) fn switching_protocols(accept: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// The web page, as a whole `200 OK` response that closes the connection.
pub(crate) fn page() -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{PAGE}",
        PAGE.len()
    )
}

/// The answer to something that is not HTTP/1.x.
pub(crate) const BAD_REQUEST: &str =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    const UPGRADE: &str = "GET /jvpn HTTP/1.1\r\nHost: vpn.example\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn an_upgrade_on_the_path_gets_the_rfc_6455_accept_key() {
        let request = classify(UPGRADE.as_bytes(), "/jvpn");

        // RFC 6455 section 1.3's example.
        assert_eq!(
            request,
            Route::Upgrade {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
    }

    #[test]
    fn an_upgrade_on_another_path_gets_the_page() {
        let head = UPGRADE.replace("/jvpn", "/other");

        assert_eq!(classify(head.as_bytes(), "/jvpn"), Route::Page);
    }

    #[test]
    fn a_query_string_does_not_hide_the_path() {
        let head = UPGRADE.replace("/jvpn ", "/jvpn?x=1 ");

        assert!(matches!(
            classify(head.as_bytes(), "/jvpn"),
            Route::Upgrade { .. }
        ));
    }

    #[test]
    fn a_plain_get_on_the_path_gets_the_page() {
        let head = b"GET /jvpn HTTP/1.1\r\nHost: vpn.example\r\n\r\n";

        assert_eq!(classify(head, "/jvpn"), Route::Page);
    }

    #[test]
    fn an_upgrade_without_key_or_with_another_version_gets_the_page() {
        let no_key = UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        let old = UPGRADE.replace("Version: 13", "Version: 8");

        assert_eq!(classify(no_key.as_bytes(), "/jvpn"), Route::Page);
        assert_eq!(classify(old.as_bytes(), "/jvpn"), Route::Page);
    }

    #[test]
    fn garbage_is_not_http() {
        assert_eq!(
            classify(b"\x16\x03\x01garbage\r\n\r\n", "/jvpn"),
            Route::NotHttp
        );
    }

    #[test]
    fn the_page_has_a_correct_content_length() {
        let page = page();
        let (head, body) = page.split_once("\r\n\r\n").unwrap();

        assert!(head.starts_with("HTTP/1.1 200 OK"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("It works!"));
    }

    #[tokio::test]
    async fn a_head_and_what_follows_it_are_kept_apart() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nEXTRA")
            .await
            .unwrap();
        let mut buf = Vec::new();

        let end = read_head(&mut server, &mut buf).await.unwrap();

        assert_eq!(&buf[..end], b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(&buf[end..], b"EXTRA");
    }

    #[tokio::test]
    async fn an_endless_head_is_refused_at_8_kib() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(&[b'a'; 20_000]).await.unwrap();
        let mut buf = Vec::new();

        let error = read_head(&mut server, &mut buf).await.unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(buf.len() <= MAX_REQUEST_HEAD);
    }
}

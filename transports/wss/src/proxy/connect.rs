//! The HTTP `CONNECT` exchange with a proxy.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::ProxyUrl;
use crate::WssError;

/// The longest proxy answer head accepted.
pub(crate) const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Asks the proxy on `stream` for a tunnel to `target` (`host:port`) and reads its answer.
/// On success the stream carries the tunnel, positioned right after the answer's head.
///
/// The caller bounds the time (the whole connect runs under a timeout).
pub(crate) async fn tunnel<S>(
    stream: &mut S,
    proxy: &ProxyUrl,
    target: &str,
) -> Result<(), WssError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io_error = |e: std::io::Error| WssError::ProxyProtocol {
        proxy: proxy.authority(),
        what: format!("connection failed during CONNECT: {e}"),
    };
    let mut request = Zeroizing::new(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"));
    if let Some(authorization) = proxy.authorization() {
        request.push_str("Proxy-Authorization: ");
        request.push_str(&authorization);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;

    let head = read_head(stream)
        .await
        .map_err(|what| WssError::ProxyProtocol {
            proxy: proxy.authority(),
            what,
        })?;
    let status_line = first_line(&head);
    let status = parse_status(&status_line).ok_or_else(|| WssError::ProxyProtocol {
        proxy: proxy.authority(),
        what: format!("bad status line \"{status_line}\""),
    })?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(WssError::ProxyRefused {
        proxy: proxy.authority(),
        target: target.to_owned(),
        status_line,
        hint: hint(status, proxy.has_credentials()),
    })
}

/// Reads up to the end of the head (`\r\n\r\n`) and no further, one byte at a time: the bytes
/// after it belong to the tunnel (TLS), so they must stay in the stream.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_RESPONSE_HEAD {
            return Err(format!(
                "the answer's head is longer than {MAX_RESPONSE_HEAD} bytes"
            ));
        }
        match stream.read(&mut byte).await {
            Ok(0) => {
                return Err(if head.is_empty() {
                    "the proxy closed the connection without answering".to_owned()
                } else {
                    "the proxy closed the connection in the middle of its answer".to_owned()
                });
            }
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("reading the answer failed: {e}")),
        }
    }
    Ok(head)
}

/// The first line, printable ASCII only and shortened, fit for an error message.
fn first_line(head: &[u8]) -> String {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(&[]);
    line.iter()
        .take(120)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// The status code of `HTTP/1.x NNN reason`.
pub(crate) fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    code.parse().ok()
}

/// What usually fixes a refused `CONNECT`.
pub(crate) fn hint(status: u16, had_credentials: bool) -> &'static str {
    match status {
        407 if had_credentials => {
            "the proxy rejected the credentials: check the user and password in the proxy URL \
             (percent-encode special characters)"
        }
        407 => {
            "the proxy needs credentials: give them in the proxy URL as \
             http://user:password@host:port"
        }
        403 | 405 => {
            "the proxy forbids CONNECT to this host or port (many proxies allow only port 443): \
             run the jvpn WSS server on port 443 or ask the proxy's administrator"
        }
        502..=504 => {
            "the proxy could not reach the server: check the server address and that it listens"
        }
        _ => "check the proxy URL and the proxy's logs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_to_their_code() {
        assert_eq!(
            parse_status("HTTP/1.1 200 Connection established"),
            Some(200)
        );
        assert_eq!(
            parse_status("HTTP/1.0 407 Proxy Authentication Required"),
            Some(407)
        );
        assert_eq!(parse_status("HTTP/1.1 204"), Some(204));
    }

    #[test]
    fn garbage_status_lines_are_refused() {
        assert_eq!(parse_status("SSH-2.0-OpenSSH_9"), None);
        assert_eq!(parse_status("HTTP/1.1 2000 no"), None);
        assert_eq!(parse_status("HTTP/2 200 OK"), None);
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn a_407_hint_depends_on_whether_credentials_were_sent() {
        assert!(hint(407, false).contains("needs credentials"));
        assert!(hint(407, true).contains("rejected the credentials"));
    }

    #[tokio::test]
    async fn the_head_is_read_up_to_its_end_and_no_further() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        server
            .write_all(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nTLS-BYTES")
            .await
            .unwrap();

        let head = read_head(&mut client).await.unwrap();
        let mut rest = [0u8; 9];
        client.read_exact(&mut rest).await.unwrap();

        assert_eq!(head, b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n");
        assert_eq!(&rest, b"TLS-BYTES");
    }

    #[tokio::test]
    async fn an_endless_head_is_cut_at_8_kib() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(&[b'a'; 9000]).await.unwrap();

        let error = read_head(&mut client).await.unwrap_err();

        assert!(error.contains("8192"), "{error}");
    }
}

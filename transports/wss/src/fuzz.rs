//! Not API: the listener's pre-auth input path on bytes, for `fuzz/` and the proptest mirror.
//!
//! The same code the listener runs after TLS (`http::read_head`, `http::classify`, then a
//! server-side WebSocket built from the early bytes with the listener's `ws_config`, read
//! until it ends), over an in-memory stream instead of TLS, so that no input needs a socket.

use futures_util::{FutureExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::WssConfig;
use crate::http::{self, Route};
use crate::link::ws_config;

/// What the server made of one connection's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ServerInput {
    /// The head ended within 8 KiB and the input.
    pub head: bool,
    /// The head was an upgrade on `path`; the `Sec-WebSocket-Accept` value answered.
    pub accept: Option<String>,
    /// The lengths of the binary messages delivered upstream, in order.
    pub datagrams: Vec<usize>,
}

/// Feeds `input` to the listener's pre-auth and read path for the WebSocket `path`, with the
/// default [`WssConfig`] limits. Never blocks: an in-memory read is always ready.
pub fn server_input(input: &[u8], path: &str) -> ServerInput {
    let mut out = ServerInput::default();
    let mut reader = input;
    let mut buf = Vec::new();
    let Some(Ok(head_len)) = http::read_head(&mut reader, &mut buf).now_or_never() else {
        return out;
    };
    out.head = true;
    let Route::Upgrade { accept } = http::classify(&buf[..head_len], path) else {
        return out;
    };
    out.accept = Some(accept);
    let early = buf.split_off(head_len);
    let io = tokio::io::join(reader, tokio::io::sink());
    let config = ws_config(&WssConfig::default());
    let Some(mut ws) =
        WebSocketStream::from_partially_read(io, early, Role::Server, Some(config)).now_or_never()
    else {
        return out;
    };
    // Every message consumes input bytes, so this ends long before the bound.
    for _ in 0..=input.len() {
        match ws.next().now_or_never() {
            Some(Some(Ok(Message::Binary(datagram)))) => out.datagrams.push(datagram.len()),
            Some(Some(Ok(_))) => {}
            _ => break,
        }
    }
    out
}

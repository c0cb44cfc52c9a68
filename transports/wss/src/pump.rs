//! The two tasks behind every established WebSocket connection (link or listener side).
//!
//! - The **reader** reads messages and hands each binary one, as a datagram, to a bounded tokio
//!   `mpsc` channel. `recv` only ever waits on that channel, which is what makes `recv`
//!   cancel-safe: a datagram is either still in the channel or already returned.
//! - The **writer** takes [`Out`] commands from a bounded channel and writes them, so a peer that
//!   reads slowly only fills its own queue.
//!
//! When the reader stops (close, error, oversized frame, or its owner gone) it tells the writer,
//! which sends a close frame if there is one to send and stops; the connection is closed when
//! both halves are dropped.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jvpn_transport::Remote;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tracing::debug;

/// How many outgoing datagrams a connection may have queued (per connection).
pub(crate) const OUT_QUEUE: usize = 256;

/// How many datagrams a link may have received and not yet handed up.
pub(crate) const LINK_IN_QUEUE: usize = 256;

/// How many datagrams a listener may have received (from all connections) and not yet handed up.
pub(crate) const LISTENER_IN_QUEUE: usize = 1024;

/// How long a closing connection waits for its close frame to be written.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The most datagrams written before one flush.
const WRITE_BATCH: usize = 64;

/// A command for a connection's writer.
#[derive(Debug)]
pub(crate) enum Out {
    /// Send one datagram as a binary message.
    Data(Bytes),
    /// Close the connection gracefully (a close frame, code 1000).
    Close,
}

/// Where a connection's received datagrams go.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// To the one link that owns the connection.
    Link(mpsc::Sender<Bytes>),
    /// To a listener's merged channel, tagged with the connection's remote.
    Listener {
        tx: mpsc::Sender<(Remote, Bytes)>,
        remote: Remote,
    },
}

impl Inbound {
    /// Waits for room and hands the datagram up; `Err` when the owner is gone.
    async fn deliver(&self, datagram: Bytes) -> Result<(), ()> {
        match self {
            Self::Link(tx) => tx.send(datagram).await.map_err(drop),
            Self::Listener { tx, remote } => tx.send((*remote, datagram)).await.map_err(drop),
        }
    }

    /// Resolves when the owner (link or listener) is dropped.
    async fn closed(&self) {
        match self {
            Self::Link(tx) => tx.closed().await,
            Self::Listener { tx, .. } => tx.closed().await,
        }
    }
}

/// Runs a connection: spawns its writer and reads in the current task until the connection
/// ends. `guard` is held until then (it releases the connection's slot in its listener).
pub(crate) async fn run<S, G>(
    ws: WebSocketStream<S>,
    inbound: Inbound,
    out: mpsc::Receiver<Out>,
    guard: G,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    G: Send,
{
    let (sink, stream) = ws.split();
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(write_loop(sink, out, stop_rx));
    let close = read_loop(stream, &inbound).await;
    // The writer may already be gone (write error); then the connection is closing anyway.
    let _ = stop_tx.send(close);
    drop(guard);
}

/// Reads until the connection ends; returns the close frame the writer should send, if any.
async fn read_loop<S>(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    inbound: &Inbound,
) -> Option<CloseFrame>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = inbound.closed() => return Some(going_away()),
        };
        match next {
            Some(Ok(Message::Binary(datagram))) => {
                if inbound.deliver(datagram).await.is_err() {
                    return Some(going_away());
                }
            }
            // Text is not jvpn's; ping / pong are answered by tungstenite itself.
            Some(Ok(
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
            )) => {}
            Some(Ok(Message::Close(_))) | None => return None,
            Some(Err(WsError::Capacity(error))) => {
                debug!(%error, "closing a WebSocket connection whose peer sent an oversized message");
                return Some(CloseFrame {
                    code: CloseCode::Size,
                    reason: "message too big".into(),
                });
            }
            Some(Err(error)) => {
                debug!(%error, "WebSocket connection failed");
                return None;
            }
        }
    }
}

/// The close frame sent when the link or listener that owned the connection is dropped.
fn going_away() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Away,
        reason: "".into(),
    }
}

/// Writes queued datagrams until told to stop, the queue's senders are all gone, or a write fails.
async fn write_loop<S>(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    mut out: mpsc::Receiver<Out>,
    mut stop: oneshot::Receiver<Option<CloseFrame>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let result = tokio::select! {
            biased;
            close = &mut stop => {
                if let Ok(Some(frame)) = close {
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
                }
                return;
            }
            // Racing the write against `stop` too, so that a peer that never reads cannot keep
            // the writer (and the connection) alive after the reader has ended.
            result = write_batch(&mut sink, &mut out) => result,
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                return;
            }
            Err(error) => {
                debug!(%error, "WebSocket write failed");
                return;
            }
        }
    }
}

/// Waits for one command, writes it and whatever else is queued (up to a batch), flushes.
/// `Ok(false)` when the connection should close.
async fn write_batch<S>(
    sink: &mut futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    out: &mut mpsc::Receiver<Out>,
) -> Result<bool, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(Out::Data(first)) = out.recv().await else {
        return Ok(false);
    };
    sink.feed(Message::Binary(first)).await?;
    for _ in 1..WRITE_BATCH {
        match out.try_recv() {
            Ok(Out::Data(datagram)) => sink.feed(Message::Binary(datagram)).await?,
            Ok(Out::Close) => {
                sink.flush().await?;
                return Ok(false);
            }
            Err(_) => break,
        }
    }
    sink.flush().await?;
    Ok(true)
}

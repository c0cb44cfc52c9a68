//! The two tasks behind every established WebSocket connection (link or listener side).
//!
//! - The **reader** reads messages and hands each binary one, as a datagram, to a bounded tokio
//!   `mpsc` channel. `recv` only ever waits on that channel, which is what makes `recv`
//!   cancel-safe: a datagram is either still in the channel or already returned.
//! - The **writer** takes [`Out`] commands from a bounded channel and writes them, so a peer that
//!   reads slowly only fills its own queue.
//!
//! On the listener side the reader also enforces [`ReadDeadlines`]: the first binary message
//! must arrive within one time, and every later one within another of the previous one.
//!
//! When the reader stops (close, error, oversized frame, deadline, or its owner gone) it tells the writer,
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

/// How long a connection may go without receiving a binary message (a jvpn datagram). Other
/// frames (ping, pong, text) do not count: they are not jvpn traffic, and counting them would
/// let a peer hold a slot forever with pings alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadDeadlines {
    /// From the start of the connection to its first binary message.
    pub(crate) first_datagram: Duration,
    /// Between two binary messages.
    pub(crate) idle: Duration,
}

/// Which [`ReadDeadlines`] rule closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// No binary message at all within [`ReadDeadlines::first_datagram`].
    FirstDatagram,
    /// No binary message within [`ReadDeadlines::idle`] of the previous one.
    Idle,
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
///
/// With `deadlines`, a connection that misses one is closed (close code 1000) and `on_expiry`
/// is called first, so that whoever counts expiries has counted it before the peer can see it.
pub(crate) async fn run<S, G, F>(
    ws: WebSocketStream<S>,
    inbound: Inbound,
    out: mpsc::Receiver<Out>,
    guard: G,
    deadlines: Option<ReadDeadlines>,
    on_expiry: F,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    G: Send,
    F: FnOnce(Expired) + Send,
{
    let (sink, stream) = ws.split();
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(write_loop(sink, out, stop_rx));
    let close = match read_loop(stream, &inbound, deadlines).await {
        Ended::Closed(close) => close,
        Ended::Expired(expired) => {
            on_expiry(expired);
            Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })
        }
    };
    // The writer may already be gone (write error); then the connection is closing anyway.
    let _ = stop_tx.send(close);
    drop(guard);
}

/// Why a reader stopped.
#[derive(Debug)]
enum Ended {
    /// The connection ended or failed; the close frame the writer should send, if any.
    Closed(Option<CloseFrame>),
    /// A [`ReadDeadlines`] rule was missed.
    Expired(Expired),
}

/// Reads until the connection ends or misses one of its `deadlines`.
async fn read_loop<S>(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    inbound: &Inbound,
    deadlines: Option<ReadDeadlines>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Replaced in place (`Pin::set`) on every datagram: no allocation and no clock read here.
    // Without deadlines the branch is disabled and this sleep is never polled.
    let sleep = tokio::time::sleep(deadlines.map_or(Duration::ZERO, |d| d.first_datagram));
    tokio::pin!(sleep);
    let mut waiting_for = Expired::FirstDatagram;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = inbound.closed() => return Ended::Closed(Some(going_away())),
            () = &mut sleep, if deadlines.is_some() => {
                debug!(expired = ?waiting_for, "closing a WebSocket connection that sent no datagram in time");
                return Ended::Expired(waiting_for);
            }
        };
        let close = match next {
            Some(Ok(Message::Binary(datagram))) => {
                if inbound.deliver(datagram).await.is_err() {
                    return Ended::Closed(Some(going_away()));
                }
                // Armed after delivering: time spent waiting for room upstream is ours, not the
                // peer's, and must not close it.
                if let Some(d) = deadlines {
                    sleep.as_mut().set(tokio::time::sleep(d.idle));
                    waiting_for = Expired::Idle;
                }
                continue;
            }
            // Text is not jvpn's; ping / pong are answered by tungstenite itself.
            Some(Ok(
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
            )) => continue,
            Some(Ok(Message::Close(_))) | None => None,
            Some(Err(WsError::Capacity(error))) => {
                debug!(%error, "closing a WebSocket connection whose peer sent an oversized message");
                Some(CloseFrame {
                    code: CloseCode::Size,
                    reason: "message too big".into(),
                })
            }
            Some(Err(error)) => {
                debug!(%error, "WebSocket connection failed");
                None
            }
        };
        return Ended::Closed(close);
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

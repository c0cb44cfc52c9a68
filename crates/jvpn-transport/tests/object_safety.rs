//! The traits are object-safe and their trait objects can cross threads; an in-memory link
//! shows the datagram contract.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use jvpn_transport::{
    Link, LinkInfo, Listener, Remote, Transport, TransportError, TransportKind, TransportUrl,
    async_trait,
};

const fn assert_send_sync<T: Send + Sync + ?Sized>() {}
const _: () = {
    assert_send_sync::<Box<dyn Link>>();
    assert_send_sync::<Box<dyn Listener>>();
    assert_send_sync::<Box<dyn Transport>>();
    assert_send_sync::<Arc<dyn Transport>>();
    assert_send_sync::<TransportError>();
};

/// Polls a future that is ready at once (the mock never waits), without an async runtime.
fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the mock link never waits"),
    }
}

/// A link whose sends queue datagrams that its own `recv` returns (a loopback).
#[derive(Debug, Default)]
struct MemLink {
    queue: Mutex<VecDeque<Vec<u8>>>,
}

const MEM_MAX: usize = 64;

#[async_trait]
impl Link for MemLink {
    fn info(&self) -> LinkInfo {
        LinkInfo {
            kind: TransportKind::Custom("mem".into()),
            local_addr: None,
            remote_addr: None,
            max_datagram_size: MEM_MAX,
            reliable: true,
        }
    }

    async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        self.try_send(datagram)
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut queue = self.queue.lock().expect("not poisoned");
        let Some(front) = queue.front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        if front.len() > buf.len() {
            queue.pop_front();
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "datagram larger than buffer",
            ));
        }
        let datagram = queue.pop_front().expect("front exists");
        buf[..datagram.len()].copy_from_slice(&datagram);
        Ok(datagram.len())
    }

    fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        if datagram.len() > MEM_MAX {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        self.queue
            .lock()
            .expect("not poisoned")
            .push_back(datagram.to_vec());
        Ok(())
    }
}

#[derive(Debug)]
struct MemTransport;

#[async_trait]
impl Transport for MemTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Custom("mem".into())
    }

    async fn connect(&self, _url: &TransportUrl) -> Result<Box<dyn Link>, TransportError> {
        Ok(Box::new(MemLink::default()))
    }

    async fn listen(&self, _url: &TransportUrl) -> Result<Box<dyn Listener>, TransportError> {
        Err(TransportError::Unsupported {
            what: "listening on mem".into(),
        })
    }
}

#[test]
fn a_boxed_link_carries_whole_datagrams() {
    let transport: Arc<dyn Transport> = Arc::new(MemTransport);
    let url = TransportUrl::parse_custom("mem://here:1").unwrap();
    let link = now(transport.connect(&url)).unwrap();

    now(link.send(b"one")).unwrap();
    now(link.send(b"two!")).unwrap();
    let mut buf = [0u8; MEM_MAX];

    let first = now(link.recv(&mut buf)).unwrap();
    assert_eq!(&buf[..first], b"one");
    let second = now(link.recv(&mut buf)).unwrap();
    assert_eq!(&buf[..second], b"two!");
    now(link.close());
}

#[test]
fn a_datagram_bigger_than_the_buffer_is_an_error_not_a_partial_read() {
    let link: Box<dyn Link> = Box::new(MemLink::default());
    now(link.send(&[7u8; 10])).unwrap();
    let mut small = [0u8; 4];

    let err = now(link.recv(&mut small)).unwrap_err();

    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(small, [0u8; 4]);
}

#[test]
fn listener_default_try_send_to_would_block() {
    #[derive(Debug)]
    struct Deaf;
    #[async_trait]
    impl Listener for Deaf {
        fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
            Ok("127.0.0.1:1".parse().expect("valid"))
        }
        fn kind(&self) -> TransportKind {
            TransportKind::Udp
        }
        fn max_datagram_size(&self) -> usize {
            1
        }
        async fn recv_from(&self, _buf: &mut [u8]) -> io::Result<(usize, Remote)> {
            Err(io::ErrorKind::WouldBlock.into())
        }
        async fn send_to(&self, _datagram: &[u8], _to: Remote) -> io::Result<()> {
            Ok(())
        }
    }
    let listener: Box<dyn Listener> = Box::new(Deaf);
    let to = Remote::connectionless("127.0.0.1:2".parse().unwrap());

    let err = listener.try_send_to(b"x", to).unwrap_err();

    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(to.conn, 0);
}

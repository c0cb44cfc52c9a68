//! A tiny synchronous rtnetlink client: add an address, add a route, ask whether a link
//! exists. Every request carries `NLM_F_ACK` and waits for the kernel's answer, so failures are
//! reported (unlike fire-and-forget helpers). Used at setup only, never per packet.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::constants::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use crate::prefix::IpPrefix;

/// One connected `NETLINK_ROUTE` socket.
pub(super) struct Netlink {
    socket: Socket,
    sequence: u32,
}

/// What the kernel answered to a request.
enum Answer {
    /// Plain ACK.
    Ack,
    /// At least one reply message came before the ACK (e.g. `RTM_NEWLINK` for a GETLINK).
    Reply,
}

impl Netlink {
    pub(super) fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self {
            socket,
            sequence: 0,
        })
    }

    /// True if a network interface named `name` exists in this network namespace.
    pub(super) fn link_exists(&mut self, name: &str) -> io::Result<bool> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(message), 0) {
            Ok(Answer::Reply) => Ok(true),
            Ok(Answer::Ack) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `address` to interface `index` (`ip addr replace ADDRESS dev NAME`). IPv6 addresses
    /// get `IFA_F_NODAD`: the TUN link has no neighbours, and duplicate address detection would
    /// keep the address "tentative" (unusable as a source) for a second or more.
    pub(super) fn add_address(&mut self, index: u32, address: IpPrefix) -> io::Result<()> {
        let mut message = AddressMessage::default();
        message.header.index = index;
        message.header.prefix_len = address.prefix_len();
        let ip = address.addr();
        message.header.family = family(ip);
        message.attributes.push(AddressAttribute::Local(ip));
        message.attributes.push(AddressAttribute::Address(ip));
        if ip.is_ipv6() {
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Adds a direct route for `route` (network form) through interface `index` in the main
    /// table (`ip route add ROUTE dev NAME proto static`). `NLM_F_EXCL`: an existing route for
    /// the same prefix (possibly the host's own) is never replaced; the caller reports EEXIST.
    pub(super) fn add_route(&mut self, index: u32, route: IpPrefix) -> io::Result<()> {
        let mut message = RouteMessage::default();
        message.header.address_family = family(route.addr());
        message.header.destination_prefix_length = route.prefix_len();
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Static;
        message.header.scope = RouteScope::Link;
        message.header.kind = RouteType::Unicast;
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                route.addr(),
            )));
        message.attributes.push(RouteAttribute::Oif(index));
        self.request(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Sends one request and reads until its ACK or error. The kernel queues the answer before
    /// `send` returns (rtnetlink requests are processed synchronously), so `recv` does not wait.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Answer> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut request = NetlinkMessage::new(header, NetlinkPayload::from(message));
        request.finalize();
        let mut buf = vec![0; request.buffer_len()];
        request.serialize(&mut buf);
        self.socket.send(&buf, 0)?;

        let mut answer = Answer::Ack;
        loop {
            let (datagram, _) = self.socket.recv_from_full()?;
            let mut rest: &[u8] = &datagram;
            while !rest.is_empty() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = usize::try_from(reply.header.length).unwrap_or(usize::MAX);
                // Messages are 4-byte aligned; a zero length would loop forever.
                let advance = len.checked_add(3).map(|l| l & !3).unwrap_or(usize::MAX);
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink message of length 0",
                    ));
                }
                rest = rest.get(advance..).unwrap_or(&[]);
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(answer),
                            Some(_) => Err(error.to_io()),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(answer),
                    NetlinkPayload::InnerMessage(_) => answer = Answer::Reply,
                    _ => {}
                }
            }
        }
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

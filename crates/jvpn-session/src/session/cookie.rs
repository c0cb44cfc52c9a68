//! Client: the cookie of the cookie defence (docs/protocol.md §5, §6). A COOKIE_REPLY that opens
//! under the server's key with the MAC1 of our last initiation gives a cookie; every initiation
//! (HANDSHAKE_INIT or REATTACH_INIT) sent while it is fresh carries MAC2 under it, so the server
//! answers it under load. Nothing is sent in reply: the next retry carries the MAC2.

use std::time::Instant;

use jvpn_wire::cookie::{Cookie, cookie_reply_receiver, open_cookie_reply, request_mac1};
use jvpn_wire::kdf::MAC_LEN;
use jvpn_wire::{COOKIE_ROTATION, PublicKey};

use super::{DropReason, Inbound, RoleState, Session};

/// The client's cookie and what the last initiation was (to check a reply against).
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    cookie: Option<(Cookie, Instant)>,
    /// Sender index and MAC1 of the last initiation sent.
    last: Option<(u32, [u8; MAC_LEN])>,
}

impl CookieJar {
    /// Stamps MAC2 on `frame` (an initiation stamped with MAC1) if the cookie is fresh, and
    /// remembers the frame's index and MAC1.
    pub(crate) fn stamp(&mut self, frame: &mut [u8], now: Instant) {
        // The server accepts a cookie for at least one rotation after it made it.
        if self
            .cookie
            .as_ref()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= COOKIE_ROTATION)
        {
            self.cookie = None;
        }
        if let Some((cookie, _)) = &self.cookie {
            cookie.stamp_mac2(frame);
        }
        let index = frame
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes);
        self.last = index.zip(request_mac1(frame));
    }

    fn accept(&mut self, server: &PublicKey, reply: &[u8], now: Instant) -> bool {
        let Some((index, mac1)) = self.last else {
            return false;
        };
        if cookie_reply_receiver(reply) != Some(index) {
            return false;
        }
        match open_cookie_reply(server, reply, &mac1) {
            Ok(cookie) => {
                self.cookie = Some((cookie, now));
                true
            }
            Err(_) => false,
        }
    }
}

impl Session {
    /// Client: a COOKIE_REPLY. Stored if it answers our last initiation; never answered.
    pub(super) fn handle_cookie_reply(&mut self, buf: &[u8], now: Instant) -> Inbound {
        let RoleState::Client(client) = &mut self.role else {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        };
        let server = client.server_key;
        if client.cookies.accept(&server, buf, now) {
            Inbound::Consumed
        } else {
            Inbound::Dropped(DropReason::UnexpectedHandshake)
        }
    }
}

//! Client: STATELESS_RESET (docs/protocol.md §14). An unauthenticated signal never ends a
//! session: a reset that carries the exact token of the server index the client uses, on the
//! bound path, starts a reattach (bound → RECOVERING, `StatelessReset`); anything else is
//! dropped and counted.
//!
//! Why only on the bound path: the token proves that the server (or another node of its
//! cluster) computed it for that index, and a node answering on a standby path may simply not
//! be the one holding the session. Why only the current index: a reset for a retired index
//! (an old binding, a rekey long done) says nothing about the keys in use.

use std::time::Instant;

use jvpn_wire::{ResetToken, candidate_token};

use super::{Inbound, RoleState, Session};
use crate::{PathId, Reason};

/// The token of the server receive index the client's current keys address.
pub(crate) struct ClientResetToken {
    /// The server index (`SendKey::remote_index`) the token was issued for.
    server_index: u32,
    token: ResetToken,
}

impl Session {
    /// Client: remembers `token` for `server_index` if the current keys address that index
    /// (the keys of a handshake that installed nothing keep the previous token).
    pub(super) fn store_reset_token(&mut self, server_index: u32, token: Option<ResetToken>) {
        let current = self.keys.current.as_ref().map(|k| k.send.remote_index());
        if current != Some(server_index) {
            return;
        }
        if let RoleState::Client(client) = &mut self.role {
            client.reset_token = token.map(|token| ClientResetToken {
                server_index,
                token,
            });
        }
    }

    /// Client: a DATA-typed datagram that opened under none of our keys (`inbound` is its
    /// drop) may be a stateless reset. Honoured only on an exact token match for the current
    /// server index, on the bound path of a bound session: a reattach starts and the datagram
    /// is consumed. Otherwise `inbound` is returned unchanged and the candidate counted.
    pub(super) fn check_stateless_reset(
        &mut self,
        path: PathId,
        buf: &[u8],
        inbound: Inbound,
        now: Instant,
    ) -> Inbound {
        let RoleState::Client(client) = &self.role else {
            return inbound;
        };
        if !matches!(inbound, Inbound::Dropped(_)) || candidate_token(buf).is_none() {
            return inbound;
        }
        let current = self.keys.current.as_ref().map(|k| k.send.remote_index());
        let honoured = self.sm.state().is_bound()
            && self.bound_path() == Some(path)
            && client
                .reset_token
                .as_ref()
                .is_some_and(|t| Some(t.server_index) == current && t.token.matches(buf));
        if !honoured {
            self.stats.resets_rejected = self.stats.resets_rejected.saturating_add(1);
            return inbound;
        }
        self.stats.resets_honoured = self.stats.resets_honoured.saturating_add(1);
        // The index is dead at the server: its token must not start a second recovery.
        if let RoleState::Client(client) = &mut self.role {
            client.reset_token = None;
        }
        self.revalidate_bound_path(path, Reason::StatelessReset, now);
        Inbound::Consumed
    }
}

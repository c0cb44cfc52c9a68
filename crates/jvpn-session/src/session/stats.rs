//! Counters: traffic, handshakes and every dropped datagram by reason.

use std::fmt;
use std::time::Instant;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// Why an incoming datagram was dropped. Every drop is counted under exactly one reason.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// The frame does not parse (length, type, version, flags, payload).
    Malformed,
    /// MAC1 does not match: junk or a frame for another server. No Diffie-Hellman was spent.
    Mac1Invalid,
    /// The handshake names a static key that is not a configured peer.
    UnknownPeer,
    /// A handshake initiation whose timestamp is not newer than the last accepted one for
    /// that peer (a replayed or reordered first message).
    HandshakeReplay,
    /// Noise authentication of a handshake message failed (wrong key, PSK, prologue, or a
    /// modified message).
    HandshakeFailed,
    /// A handshake message this side does not expect now (a response to no pending
    /// initiation, an initiation sent to a client, a cookie reply).
    UnexpectedHandshake,
    /// A DATA / CONTROL frame for a receiver index no key or session owns.
    UnknownReceiver,
    /// A DATA / CONTROL frame whose counter was already seen or is older than the window.
    Replayed,
    /// A DATA / CONTROL frame whose counter is past the key's limit.
    CounterLimit,
    /// A DATA / CONTROL frame whose AEAD tag does not verify.
    AuthenticationFailed,
    /// A DATA / CONTROL frame that arrived on another path than the bound one. No implicit
    /// roaming: it never moves the binding.
    WrongPath,
    /// A DATA frame while the session has no binding (BIRTH, RECOVERING).
    NotAttached,
    /// The key it was sealed under is past its hard age limit.
    KeyExpired,
    /// A CONTROL frame whose message is unknown or malformed.
    BadControl,
    /// The session is TERMINATED (or a resume was refused and ended it).
    Terminated,
    /// A frame under the keys of a binding that a reattach replaced (fenced at the commit).
    Fenced,
    /// A REATTACH_INIT whose token does not open, has expired, was already used (at or below
    /// the session's floor) or belongs to no live grant.
    TokenRejected,
    /// A REATTACH_INIT already seen (same ephemeral key) or not newer than the last accepted
    /// one (reattach counter): a replay or a stale attempt.
    ReattachReplay,
    /// A REATTACH_INIT for a session this endpoint does not hold (ended, or never here).
    UnknownSession,
    /// A handshake whose session the ownership store gave to another node (or refused).
    NotOwner,
    /// Under load: a handshake or reattach with a valid MAC2 whose source used up its token
    /// bucket, or a reattach refused because the cap on pending reattaches was reached. No
    /// Diffie-Hellman was spent; the client retries later.
    RateLimited,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::Mac1Invalid,
        DropReason::UnknownPeer,
        DropReason::HandshakeReplay,
        DropReason::HandshakeFailed,
        DropReason::UnexpectedHandshake,
        DropReason::UnknownReceiver,
        DropReason::Replayed,
        DropReason::CounterLimit,
        DropReason::AuthenticationFailed,
        DropReason::WrongPath,
        DropReason::NotAttached,
        DropReason::KeyExpired,
        DropReason::BadControl,
        DropReason::Terminated,
        DropReason::Fenced,
        DropReason::TokenRejected,
        DropReason::ReattachReplay,
        DropReason::UnknownSession,
        DropReason::NotOwner,
        DropReason::RateLimited,
    ];

    /// Number of reasons.
    pub const COUNT: usize = 21;

    /// The metrics spelling (`snake_case`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Mac1Invalid => "mac1_invalid",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::HandshakeReplay => "handshake_replay",
            DropReason::HandshakeFailed => "handshake_failed",
            DropReason::UnexpectedHandshake => "unexpected_handshake",
            DropReason::UnknownReceiver => "unknown_receiver",
            DropReason::Replayed => "replayed",
            DropReason::CounterLimit => "counter_limit",
            DropReason::AuthenticationFailed => "authentication_failed",
            DropReason::WrongPath => "wrong_path",
            DropReason::NotAttached => "not_attached",
            DropReason::KeyExpired => "key_expired",
            DropReason::BadControl => "bad_control",
            DropReason::Terminated => "terminated",
            DropReason::Fenced => "fenced",
            DropReason::TokenRejected => "token_rejected",
            DropReason::ReattachReplay => "reattach_replay",
            DropReason::UnknownSession => "unknown_session",
            DropReason::NotOwner => "not_owner",
            DropReason::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drop counters, one per [`DropReason`] (an array: counting never allocates). Serializes
/// as a map of the non-zero counts, keyed by [`DropReason::as_str`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    counts: [u64; DropReason::COUNT],
}

impl DropCounts {
    /// Drops counted under `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// `(reason, count)` for every reason with a non-zero count, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|&(_, c)| c > 0)
    }

    pub(crate) fn count(&mut self, reason: DropReason) {
        let slot = &mut self.counts[reason as usize];
        *slot = slot.saturating_add(1);
    }
}

impl Serialize for DropCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (reason, count) in self.iter() {
            map.serialize_entry(reason.as_str(), &count)?;
        }
        map.end()
    }
}

/// Counters of one session. Serializes without `last_handshake_at` (a process-local instant).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SessionStats {
    /// Inner packets handed to the application.
    pub packets_in: u64,
    /// Inner bytes handed to the application.
    pub bytes_in: u64,
    /// Inner packets sealed and transmitted.
    pub packets_out: u64,
    /// Inner bytes sealed and transmitted.
    pub bytes_out: u64,
    /// Keepalives sent.
    pub keepalives_sent: u64,
    /// Handshakes completed (first attach, rekeys and rebinds).
    pub handshakes: u64,
    /// Handshake initiations sent (client) or answered (server).
    pub handshake_messages_sent: u64,
    /// When the last handshake completed.
    #[serde(skip)]
    pub last_handshake_at: Option<Instant>,
    /// Dropped incoming datagrams, by reason.
    pub drops: DropCounts,
    /// Client: stateless resets honoured (exact token of the server index in use, on the bound
    /// path): each started a reattach, none ended the session.
    pub resets_honoured: u64,
    /// Client: reset candidates (DATA-shaped datagrams that opened under no key) that were not
    /// honoured: wrong token, stale index, another path or no binding. Each is also counted
    /// in `drops` under the reason it failed to open.
    pub resets_rejected: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_at_its_index() {
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
        }
    }

    #[test]
    fn stats_serialize_drops_as_a_map_of_non_zero_counts() {
        let mut stats = SessionStats::default();
        stats.drops.count(DropReason::WrongPath);

        let json = serde_json::to_string(&stats).unwrap();

        assert!(json.contains(r#""drops":{"wrong_path":1}"#), "{json}");
        assert!(!json.contains("last_handshake_at"));
    }

    #[test]
    fn counts_are_kept_per_reason() {
        let mut drops = DropCounts::default();

        drops.count(DropReason::WrongPath);
        drops.count(DropReason::WrongPath);
        drops.count(DropReason::Replayed);

        assert_eq!(drops.get(DropReason::WrongPath), 2);
        assert_eq!(drops.total(), 3);
        assert_eq!(
            drops.iter().collect::<Vec<_>>(),
            [(DropReason::Replayed, 1), (DropReason::WrongPath, 2)]
        );
    }
}

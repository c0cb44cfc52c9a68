//! The data keys of one session: current, next (server, awaiting confirmation) and previous
//! (receive only, for a short grace after a rekey).

use std::time::{Duration, Instant};

use jvpn_wire::{
    DataKeys, REJECT_AFTER, REJECT_AFTER_MESSAGES, REKEY_AFTER_MESSAGES, RecvKey, SendKey,
};

/// Per-key limits. The defaults are the wire constants; tests lower them through
/// `pub(crate)` knobs so that a rekey happens after a few dozen packets.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyLimits {
    /// Packets after which the key's owner starts (client) or requests (server) a rekey.
    pub(crate) rekey_after_messages: u64,
    /// Packets after which a send key is never used again.
    pub(crate) reject_after_messages: u64,
    /// Age after which a key is never used again (send or receive).
    pub(crate) reject_after: Duration,
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits {
            rekey_after_messages: REKEY_AFTER_MESSAGES,
            reject_after_messages: REJECT_AFTER_MESSAGES,
            reject_after: REJECT_AFTER,
        }
    }
}

/// A send / receive key pair and when the handshake made it.
#[derive(Debug)]
pub(crate) struct ActiveKeys {
    pub(crate) send: SendKey,
    pub(crate) recv: RecvKey,
    pub(crate) created: Instant,
}

impl ActiveKeys {
    pub(crate) fn new(keys: DataKeys, now: Instant) -> Self {
        ActiveKeys {
            send: keys.send,
            recv: keys.recv,
            created: now,
        }
    }
}

/// Which key a frame's receiver index selects.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Current,
    Next,
    Previous,
    /// The keys of a binding a reattach replaced: recognised only to drop and count.
    Fenced,
}

/// All keys of a session. Retired receiver indices are collected so that an `Endpoint` can
/// forget them.
#[derive(Debug, Default)]
pub(crate) struct KeyState {
    pub(crate) current: Option<ActiveKeys>,
    /// Server only: keys of a rekey the client has not confirmed yet (promoted on the first
    /// frame that opens under them).
    pub(crate) next: Option<ActiveKeys>,
    /// The receive half of the replaced keys, and when its grace ends.
    pub(crate) previous: Option<(RecvKey, Instant)>,
    /// The receiver index of the keys a reattach replaced, and until when frames under it are
    /// recognised (dropped as `Fenced`) instead of unknown.
    pub(crate) fenced: Option<(u32, Instant)>,
    retired: Vec<u32>,
}

impl KeyState {
    pub(crate) fn slot_for(&self, index: u32) -> Option<Slot> {
        if self
            .current
            .as_ref()
            .is_some_and(|k| k.recv.local_index() == index)
        {
            Some(Slot::Current)
        } else if self
            .next
            .as_ref()
            .is_some_and(|k| k.recv.local_index() == index)
        {
            Some(Slot::Next)
        } else if self
            .previous
            .as_ref()
            .is_some_and(|(k, _)| k.local_index() == index)
        {
            Some(Slot::Previous)
        } else if self.fenced.is_some_and(|(i, _)| i == index) {
            Some(Slot::Fenced)
        } else {
            None
        }
    }

    /// The receive key of `slot` and its creation time (`None` for the previous key: its age
    /// was checked when it was current, and its grace bounds it).
    pub(crate) fn recv_mut(&mut self, slot: Slot) -> Option<(&mut RecvKey, Option<Instant>)> {
        match slot {
            Slot::Current => self
                .current
                .as_mut()
                .map(|k| (&mut k.recv, Some(k.created))),
            Slot::Next => self.next.as_mut().map(|k| (&mut k.recv, Some(k.created))),
            Slot::Previous => self.previous.as_mut().map(|(k, _)| (k, None)),
            Slot::Fenced => None,
        }
    }

    /// Installs fresh keys as current. With `grace_until`, the old receive key stays usable
    /// until then (a rekey); without, every old key is dropped (a new binding).
    pub(crate) fn install(&mut self, keys: ActiveKeys, grace_until: Option<Instant>) {
        let old = self.current.replace(keys);
        self.retire_next();
        self.drop_previous();
        if let Some(old) = old {
            match grace_until {
                Some(until) => self.previous = Some((old.recv, until)),
                None => self.retired.push(old.recv.local_index()),
            }
        }
    }

    /// Server rekey: stage keys that become current once the client uses them.
    pub(crate) fn stage_next(&mut self, keys: ActiveKeys) {
        self.retire_next();
        self.next = Some(keys);
    }

    /// Promotes the staged keys (the client proved it has them).
    pub(crate) fn promote_next(&mut self, grace_until: Instant) {
        if let Some(next) = self.next.take() {
            self.install(next, Some(grace_until));
        }
    }

    /// A reattach committed: `keys` become current, every old key stops opening anything, and
    /// the old current index is fenced until `fence_until`.
    pub(crate) fn install_fencing(&mut self, keys: ActiveKeys, fence_until: Instant) {
        let old = self.current.replace(keys);
        self.retire_next();
        self.drop_previous();
        self.drop_fenced();
        self.fenced = old.map(|k| (k.recv.local_index(), fence_until));
    }

    /// Ends the post-rekey grace and the fence whose deadlines are at or before `now`.
    pub(crate) fn expire_graces(&mut self, now: Instant) {
        if self
            .previous
            .as_ref()
            .is_some_and(|(_, until)| *until <= now)
        {
            self.drop_previous();
        }
        if self.fenced.is_some_and(|(_, until)| until <= now) {
            self.drop_fenced();
        }
    }

    /// The earliest grace or fence deadline.
    pub(crate) fn next_grace_end(&self) -> Option<Instant> {
        let previous = self.previous.as_ref().map(|(_, until)| *until);
        let fenced = self.fenced.map(|(_, until)| until);
        previous.into_iter().chain(fenced).min()
    }

    /// Forgets a receiver index held outside this table (a replaced pending reattach's).
    pub(crate) fn retire_index(&mut self, index: u32) {
        self.retired.push(index);
    }

    fn drop_fenced(&mut self) {
        if let Some((index, _)) = self.fenced.take() {
            self.retired.push(index);
        }
    }

    pub(crate) fn drop_previous(&mut self) {
        if let Some((old, _)) = self.previous.take() {
            self.retired.push(old.local_index());
        }
    }

    fn retire_next(&mut self) {
        if let Some(next) = self.next.take() {
            self.retired.push(next.recv.local_index());
        }
    }

    /// Drops every key (key expiry, termination).
    pub(crate) fn drop_all(&mut self) {
        if let Some(current) = self.current.take() {
            self.retired.push(current.recv.local_index());
        }
        self.retire_next();
        self.drop_previous();
        self.drop_fenced();
    }

    /// Receiver indices that no key owns any more, since the last call.
    pub(crate) fn take_retired(&mut self) -> std::vec::Drain<'_, u32> {
        self.retired.drain(..)
    }
}

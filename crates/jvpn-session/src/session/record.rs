//! Server: what one session keeps to verify and answer reattaches (its resumption record).
//!
//! Every token batch remembers the `RS` and `psk_epoch` it was issued with, so the token a
//! REATTACH_INIT carries names the exact PSK to try (one Noise attempt, never a guess). Tokens
//! are valid until a reattach commits (then every older batch dies: the `token_seq` floor moves
//! up) or until they expire; replays within that time are stopped by the exact-replay filter on
//! the ephemeral key and by the strictly increasing reattach counter.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use jvpn_wire::payload::{PATH_CHALLENGE_LEN, REATTACH_TOKENS};
use jvpn_wire::{
    Psk, ResumptionGrant, ResumptionSecret, SessionId, TOKEN_LEN, TokenClaims, TokenKey,
    resumption_psk, seal_token,
};

use super::keys::ActiveKeys;
use crate::{PathId, Version};

/// How long a token stays valid after it is issued. Every rekey (at most `rekey_after` apart
/// while bound) issues a fresh batch, so a bound session always holds young tokens; an hour
/// covers any recovery window.
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Token batches kept per session (older ones are forgotten: their tokens stop working).
const MAX_BATCHES: usize = 4;
/// Ephemeral keys remembered per session by the exact-replay filter.
const MAX_EPHEMERALS: usize = 64;
/// A record rebuilt from a snapshot skips this many token sequence numbers: the node that
/// wrote the snapshot may have issued more batches since (rekey grants write nothing to the
/// store), all keyed with the snapshot's current `RS` and `psk_epoch` (a new epoch is only
/// ever issued by a reattach, whose claim writes a new snapshot). Tokens in the skipped range
/// are accepted under that current secret until a commit moves the floor past them.
const INHERITED_SEQS: u64 = 1 << 32;

#[derive(Clone)]
struct Batch {
    first_seq: u64,
    psk_epoch: u64,
    rs: ResumptionSecret,
}

/// A reattach that passed every check and was answered OK, waiting for PATH_CONFIRM.
pub(crate) struct Pending {
    pub(crate) path: PathId,
    pub(crate) keys: ActiveKeys,
    pub(crate) challenge: [u8; PATH_CHALLENGE_LEN],
    pub(crate) batch_first_seq: u64,
    pub(crate) psk_epoch: u64,
    pub(crate) rs: ResumptionSecret,
}

/// Why a token names no usable PSK.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    /// At or below the floor: used by (or issued before) a committed reattach.
    Reused,
    /// From a batch this record no longer holds.
    Unknown,
}

/// What a record keeps of the resumption state, as the sealed snapshot in the ownership store
/// carries it (see `session/snapshot.rs`).
#[derive(Clone)]
pub(crate) struct RecordSnapshot {
    pub(crate) rs: ResumptionSecret,
    pub(crate) psk_epoch: u64,
    pub(crate) floor: u64,
    pub(crate) next_seq: u64,
    pub(crate) last_rc: u64,
    /// `(first_seq, psk_epoch, RS)` of every batch held, oldest first (at most `MAX_BATCHES`).
    pub(crate) batches: Vec<(u64, u64, ResumptionSecret)>,
    /// Sequence numbers accepted under the current `RS` / `psk_epoch` without a batch: the
    /// grants an earlier owner may have issued after the snapshot a rebuilt record came from.
    pub(crate) inherited: Option<std::ops::Range<u64>>,
}

impl RecordSnapshot {
    /// The largest number of batches a snapshot carries.
    pub(crate) const MAX_BATCHES: usize = MAX_BATCHES;

    /// The same state after a batch keyed `rs` / `psk_epoch` is issued (mirrors `issue`).
    pub(crate) fn issue(&mut self, rs: ResumptionSecret, psk_epoch: u64) -> u64 {
        let first = self.next_seq;
        self.batches.push((first, psk_epoch, rs));
        if self.batches.len() > MAX_BATCHES {
            self.batches.remove(0);
        }
        self.next_seq = first.saturating_add(REATTACH_TOKENS as u64);
        first
    }

    /// The same state after the batch at `first_seq` commits (mirrors `commit`).
    pub(crate) fn commit(&mut self, first_seq: u64, rs: ResumptionSecret, psk_epoch: u64) {
        self.rs = rs;
        self.psk_epoch = psk_epoch;
        self.floor = self.floor.max(first_seq.saturating_sub(1));
        let floor = self.floor;
        self.batches.retain(|b| b.0 > floor);
        self.inherited = None;
    }
}

/// The resumption record of one server session.
pub(crate) struct ResumptionRecord {
    rs: ResumptionSecret,
    psk_epoch: u64,
    batches: VecDeque<Batch>,
    next_seq: u64,
    floor: u64,
    /// Tokens an earlier owner may have issued after the snapshot this record was rebuilt
    /// from, all under the current `RS` / `psk_epoch` (a commit, the only change of those,
    /// ends the range: its batch lies above it).
    inherited: Option<std::ops::Range<u64>>,
    pub(crate) last_rc: u64,
    ephemerals: VecDeque<([u8; 32], Instant)>,
    /// The ownership version this node holds (the fencing token).
    pub(crate) ownership: Option<Version>,
    pub(crate) pending: Option<Pending>,
    /// The last committed reattach: its server challenge and the client's, so that a resent
    /// PATH_CONFIRM (its PATH_RESPONSE was lost) is answered again.
    pub(crate) confirmed: Option<([u8; PATH_CHALLENGE_LEN], [u8; PATH_CHALLENGE_LEN])>,
    /// Rebuilt from the ownership store for a reattach and not committed here yet: if its
    /// pending reattach expires the endpoint forgets it without touching the store (the node
    /// that holds the validated binding keeps it).
    pub(crate) adopted: bool,
    /// The last time the store confirmed this node's ownership (a claim or an ownership check).
    /// The session ends at this plus `Policy::ownership_lease` unless confirmed again.
    pub(crate) store_ok_at: Option<Instant>,
    /// A PATH_CONFIRM proved the pending reattach: the client's challenge, waiting for the
    /// endpoint's commit claim (CAS #2) before the binding moves.
    pub(crate) confirm_ready: Option<[u8; PATH_CHALLENGE_LEN]>,
}

impl fmt::Debug for ResumptionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumptionRecord")
            .field("psk_epoch", &self.psk_epoch)
            .field("floor", &self.floor)
            .field("last_rc", &self.last_rc)
            .field("ownership", &self.ownership)
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl ResumptionRecord {
    pub(crate) fn new(rs: ResumptionSecret, ownership: Option<Version>) -> Self {
        ResumptionRecord {
            rs,
            psk_epoch: 0,
            batches: VecDeque::new(),
            next_seq: 1,
            floor: 0,
            inherited: None,
            last_rc: 0,
            ephemerals: VecDeque::new(),
            ownership,
            pending: None,
            confirmed: None,
            adopted: false,
            store_ok_at: None,
            confirm_ready: None,
        }
    }

    /// The state a snapshot carries.
    pub(crate) fn snapshot(&self) -> RecordSnapshot {
        RecordSnapshot {
            rs: self.rs.clone(),
            psk_epoch: self.psk_epoch,
            floor: self.floor,
            next_seq: self.next_seq,
            last_rc: self.last_rc,
            batches: self
                .batches
                .iter()
                .map(|b| (b.first_seq, b.psk_epoch, b.rs.clone()))
                .collect(),
            inherited: self.inherited.clone(),
        }
    }

    /// The snapshot the commit of the pending reattach will leave (`None`: nothing pending).
    pub(crate) fn snapshot_after_commit(&self) -> Option<RecordSnapshot> {
        let pending = self.pending.as_ref()?;
        let mut snap = self.snapshot();
        snap.commit(
            pending.batch_first_seq,
            pending.rs.clone(),
            pending.psk_epoch,
        );
        Some(snap)
    }

    /// A record rebuilt from a snapshot read at `version` (another node's, or this node's
    /// before a restart). It is `adopted` until a reattach commits here.
    pub(crate) fn restore(snap: RecordSnapshot, version: Version) -> Self {
        let mut record = ResumptionRecord::new(snap.rs.clone(), Some(version));
        record.psk_epoch = snap.psk_epoch;
        record.floor = snap.floor;
        record.last_rc = snap.last_rc;
        record.batches = snap
            .batches
            .into_iter()
            .map(|(first_seq, psk_epoch, rs)| Batch {
                first_seq,
                psk_epoch,
                rs,
            })
            .collect();
        let start = snap
            .inherited
            .as_ref()
            .map_or(snap.next_seq, |r| r.start.min(snap.next_seq));
        let end = snap.next_seq.saturating_add(INHERITED_SEQS);
        record.inherited = Some(start..end);
        record.next_seq = end;
        record.adopted = true;
        record
    }

    /// Seals a new batch of tokens keyed with `rs` / `psk_epoch`; returns its first sequence
    /// number and the tokens.
    pub(crate) fn issue(
        &mut self,
        key: &TokenKey,
        session_id: SessionId,
        rs: ResumptionSecret,
        psk_epoch: u64,
        unix_secs: u64,
        rng: &mut impl rand_core::CryptoRng,
    ) -> (u64, [[u8; TOKEN_LEN]; REATTACH_TOKENS]) {
        let first_seq = self.next_seq;
        let expiry_unix_secs = unix_secs.saturating_add(TOKEN_LIFETIME.as_secs());
        let mut tokens = [[0u8; TOKEN_LEN]; REATTACH_TOKENS];
        for (i, token) in tokens.iter_mut().enumerate() {
            let claims = TokenClaims {
                session_id,
                token_seq: first_seq + i as u64,
                expiry_unix_secs,
            };
            *token = seal_token(key, &claims, rng);
        }
        self.next_seq = first_seq.saturating_add(REATTACH_TOKENS as u64);
        self.batches.push_back(Batch {
            first_seq,
            psk_epoch,
            rs,
        });
        while self.batches.len() > MAX_BATCHES {
            self.batches.pop_front();
        }
        (first_seq, tokens)
    }

    /// A grant of the current `RS` with a fresh batch (first attach and every rekey).
    pub(crate) fn grant(
        &mut self,
        key: &TokenKey,
        session_id: SessionId,
        unix_secs: u64,
        rng: &mut impl rand_core::CryptoRng,
    ) -> ResumptionGrant {
        let rs = self.rs.clone();
        let psk_epoch = self.psk_epoch;
        let (_, tokens) = self.issue(key, session_id, rs.clone(), psk_epoch, unix_secs, rng);
        ResumptionGrant {
            psk_epoch,
            resumption_secret: rs,
            tokens,
        }
    }

    /// The PSK a token's batch is keyed with, and that batch's `psk_epoch`.
    pub(crate) fn psk_for(&self, claims: &TokenClaims) -> Result<(Psk, u64), TokenRefusal> {
        if claims.token_seq <= self.floor {
            return Err(TokenRefusal::Reused);
        }
        let n = REATTACH_TOKENS as u64;
        let batch = self
            .batches
            .iter()
            .find(|b| (b.first_seq..b.first_seq.saturating_add(n)).contains(&claims.token_seq))
            .map(|b| (&b.rs, b.psk_epoch));
        let inherited = self
            .inherited
            .as_ref()
            .filter(|seqs| seqs.contains(&claims.token_seq))
            .map(|_| (&self.rs, self.psk_epoch));
        batch
            .or(inherited)
            .map(|(rs, psk_epoch)| (resumption_psk(rs, &claims.session_id, psk_epoch), psk_epoch))
            .ok_or(TokenRefusal::Unknown)
    }

    /// Whether this ephemeral key was already seen (within `window`).
    pub(crate) fn seen(&self, ephemeral: &[u8; 32], now: Instant, window: Duration) -> bool {
        self.ephemerals
            .iter()
            .any(|(e, at)| e == ephemeral && now.saturating_duration_since(*at) <= window)
    }

    /// Remembers an ephemeral key whose proof of possession passed (bounded memory: entries
    /// older than `window`, then the oldest, are forgotten; the counter rule covers them).
    pub(crate) fn remember(&mut self, ephemeral: [u8; 32], now: Instant, window: Duration) {
        while self
            .ephemerals
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) > window)
        {
            self.ephemerals.pop_front();
        }
        if self.ephemerals.len() >= MAX_EPHEMERALS {
            self.ephemerals.pop_front();
        }
        self.ephemerals.push_back((ephemeral, now));
    }

    /// PATH_CONFIRM arrived: `RS'` becomes current, every token issued before the committed
    /// batch dies. Returns the pending reattach.
    pub(crate) fn commit(&mut self) -> Option<Pending> {
        let pending = self.pending.take()?;
        self.rs = pending.rs.clone();
        self.psk_epoch = pending.psk_epoch;
        self.floor = self.floor.max(pending.batch_first_seq.saturating_sub(1));
        let floor = self.floor;
        self.batches.retain(|b| b.first_seq > floor);
        self.inherited = None;
        self.adopted = false;
        Some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const SID: SessionId = SessionId([3; 16]);

    fn claims(token_seq: u64) -> TokenClaims {
        TokenClaims {
            session_id: SID,
            token_seq,
            expiry_unix_secs: u64::MAX,
        }
    }

    #[test]
    fn tokens_of_a_batch_name_its_epoch_until_a_later_batch_commits() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = TokenKey::generate(&mut rng);
        let mut record = ResumptionRecord::new(ResumptionSecret::generate(&mut rng), None);
        record.grant(&key, SID, 0, &mut rng);
        let rs2 = ResumptionSecret::generate(&mut rng);
        let (first, _) = record.issue(&key, SID, rs2.clone(), 1, 0, &mut rng);

        let before = (
            record.psk_for(&claims(2)).map(|p| p.1),
            record.psk_for(&claims(first)).map(|p| p.1),
        );
        record.pending = Some(Pending {
            path: PathId(1),
            keys: test_keys(),
            challenge: [0; PATH_CHALLENGE_LEN],
            batch_first_seq: first,
            psk_epoch: 1,
            rs: rs2,
        });
        record.commit();

        assert_eq!(before, (Ok(0), Ok(1)));
        assert_eq!(
            record.psk_for(&claims(2)).map(|p| p.1),
            Err(TokenRefusal::Reused)
        );
        assert_eq!(record.psk_for(&claims(first + 1)).map(|p| p.1), Ok(1));
        assert_eq!(
            record.psk_for(&claims(first + 9)).map(|p| p.1),
            Err(TokenRefusal::Unknown)
        );
    }

    fn test_keys() -> ActiveKeys {
        use jvpn_wire::{DataKeys, RecvKey, SendKey};
        let keys = DataKeys {
            send: SendKey::new(&[1; 32], 1),
            recv: RecvKey::new(&[2; 32], 2),
        };
        #[expect(clippy::disallowed_methods, reason = "tests need one real instant")]
        let now = Instant::now();
        ActiveKeys::new(keys, now)
    }
}

//! Server: the session snapshot the ownership store carries, sealed ("encrypted at rest").
//!
//! A snapshot is everything another node (or this node after a restart) needs to verify a
//! reattach and rebuild the server side of a session: the client's static key, the session
//! id, the resumption state (current `RS` and `psk_epoch`, every token batch held with its
//! own `RS` and epoch, so a pending epoch's `RS'` too, the `token_seq` floor and the next
//! sequence number), the last accepted reattach counter, the binding epoch, the state
//! machine's version, whether the owner holds a validated binding, and the recovery deadline.
//! Inner addresses are not in it: the session core does not assign them (every node derives
//! them from its peer configuration, keyed by the client's static key).
//!
//! Sealed as `nonce (24) || XChaCha20-Poly1305(plaintext) || tag (16)` under
//! `derive_key(kdf::SNAPSHOT, K_token)`, with the session id in the associated data, so a
//! record copied under another session id does not open. The plaintext is wiped after use.

use std::time::Instant;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use jvpn_wire::kdf::snapshot_aead_key;
use jvpn_wire::{PublicKey, ResumptionSecret, SessionId, TokenKey};
use zeroize::Zeroizing;

use super::keys::KeyLimits;
use super::record::{RecordSnapshot, ResumptionRecord};
use super::server::ServerRole;
use super::{RoleState, Session};
use crate::{ClockAnchor, PathId, Policy, Reason, StateMachine, TimerKind, Version};

const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AAD_PREFIX: &[u8] = b"jvpn/1 session snapshot";
/// format, session id, client static, version, epoch, flags, deadline, last_rc, floor,
/// next_seq, inherited range (start, end), psk_epoch, RS, batch count.
const FIXED_LEN: usize = 1 + 16 + 32 + 8 + 8 + 1 + 8 + 8 + 8 + 8 + 16 + 8 + 32 + 1;
const BATCH_LEN: usize = 8 + 8 + 32;
const FLAG_BOUND: u8 = 1;

/// One session as the ownership store carries it (plaintext; never printed).
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub(crate) session_id: SessionId,
    pub(crate) client_static: PublicKey,
    pub(crate) sm_version: u64,
    pub(crate) epoch: u64,
    /// The owner holds a validated binding at this version (first attach, commit). `false`
    /// for a reattach claimed and not yet confirmed (CAS #1).
    pub(crate) bound: bool,
    /// Ms since the Unix epoch at which RECOVERING ends, if the owner is RECOVERING.
    pub(crate) recovery_deadline_unix_ms: Option<u64>,
    pub(crate) record: RecordSnapshot,
}

/// A sealed snapshot did not open.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SnapshotError {
    /// Wrong length or the tag did not verify (another key, corruption, another session's
    /// record). Treat the session as unknown.
    #[error("the snapshot does not open")]
    Sealed,
    /// The tag verified but the plaintext is not a snapshot this version understands. Treat
    /// the session as unknown.
    #[error("the snapshot is malformed")]
    Malformed,
}

impl Snapshot {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let r = &self.record;
        let mut out = Zeroizing::new(Vec::with_capacity(FIXED_LEN + BATCH_LEN * r.batches.len()));
        out.push(FORMAT);
        out.extend_from_slice(&self.session_id.0);
        out.extend_from_slice(self.client_static.as_bytes());
        out.extend_from_slice(&self.sm_version.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.push(if self.bound { FLAG_BOUND } else { 0 });
        out.extend_from_slice(&self.recovery_deadline_unix_ms.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&r.last_rc.to_be_bytes());
        out.extend_from_slice(&r.floor.to_be_bytes());
        out.extend_from_slice(&r.next_seq.to_be_bytes());
        let inherited = r.inherited.clone().unwrap_or(0..0);
        out.extend_from_slice(&inherited.start.to_be_bytes());
        out.extend_from_slice(&inherited.end.to_be_bytes());
        out.extend_from_slice(&r.psk_epoch.to_be_bytes());
        out.extend_from_slice(r.rs.as_bytes());
        let batches = &r.batches[r.batches.len().saturating_sub(RecordSnapshot::MAX_BATCHES)..];
        out.push(batches.len() as u8);
        for (first_seq, psk_epoch, rs) in batches {
            out.extend_from_slice(&first_seq.to_be_bytes());
            out.extend_from_slice(&psk_epoch.to_be_bytes());
            out.extend_from_slice(rs.as_bytes());
        }
        out
    }

    fn decode(buf: &[u8]) -> Result<Snapshot, SnapshotError> {
        let mut r = Reader(buf);
        if r.u8()? != FORMAT {
            return Err(SnapshotError::Malformed);
        }
        let session_id = SessionId(r.array()?);
        let client_static = PublicKey::from_bytes(r.array()?);
        let sm_version = r.u64()?;
        let epoch = r.u64()?;
        let flags = r.u8()?;
        if flags & !FLAG_BOUND != 0 {
            return Err(SnapshotError::Malformed);
        }
        let deadline = r.u64()?;
        let last_rc = r.u64()?;
        let floor = r.u64()?;
        let next_seq = r.u64()?;
        let inherited = r.u64()?..r.u64()?;
        let psk_epoch = r.u64()?;
        let rs = ResumptionSecret::from_bytes(*r.secret()?);
        let count = usize::from(r.u8()?);
        if count > RecordSnapshot::MAX_BATCHES {
            return Err(SnapshotError::Malformed);
        }
        let mut batches = Vec::with_capacity(count);
        for _ in 0..count {
            let first_seq = r.u64()?;
            let batch_epoch = r.u64()?;
            batches.push((
                first_seq,
                batch_epoch,
                ResumptionSecret::from_bytes(*r.secret()?),
            ));
        }
        if !r.0.is_empty() {
            return Err(SnapshotError::Malformed);
        }
        Ok(Snapshot {
            session_id,
            client_static,
            sm_version,
            epoch,
            bound: flags & FLAG_BOUND != 0,
            recovery_deadline_unix_ms: (deadline != 0).then_some(deadline),
            record: RecordSnapshot {
                rs,
                psk_epoch,
                floor,
                next_seq,
                last_rc,
                batches,
                inherited: (!inherited.is_empty()).then_some(inherited),
            },
        })
    }

    /// Seals the snapshot under the cluster token key with a fresh random nonce.
    pub(crate) fn seal(&self, key: &TokenKey, rng: &mut impl rand_core::CryptoRng) -> Vec<u8> {
        let plain = self.encode();
        let mut out = vec![0u8; NONCE_LEN + plain.len() + TAG_LEN];
        let (nonce, rest) = out.split_at_mut(NONCE_LEN);
        rng.fill_bytes(nonce);
        let (body, tag_out) = rest.split_at_mut(plain.len());
        body.copy_from_slice(&plain);
        let aad = aad(&self.session_id);
        let sealed = cipher(key).encrypt_in_place_detached(XNonce::from_slice(nonce), &aad, body);
        match sealed {
            Ok(tag) => tag_out.copy_from_slice(&tag),
            // Unreachable for a few hundred bytes; an empty record never opens (fail closed).
            Err(_) => out.clear(),
        }
        out
    }

    /// Opens a sealed snapshot of `session_id`. Fails on any other key, session or byte.
    pub(crate) fn open(
        key: &TokenKey,
        session_id: SessionId,
        sealed: &[u8],
    ) -> Result<Snapshot, SnapshotError> {
        if sealed.len() < NONCE_LEN + FIXED_LEN + TAG_LEN {
            return Err(SnapshotError::Sealed);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut plain = Zeroizing::new(body.to_vec());
        cipher(key)
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &aad(&session_id),
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| SnapshotError::Sealed)?;
        let snapshot = Snapshot::decode(&plain)?;
        if snapshot.session_id != session_id {
            return Err(SnapshotError::Malformed);
        }
        Ok(snapshot)
    }
}

fn cipher(key: &TokenKey) -> XChaCha20Poly1305 {
    let aead_key = snapshot_aead_key(key);
    XChaCha20Poly1305::new((&*aead_key).into())
}

fn aad(session_id: &SessionId) -> Vec<u8> {
    [AAD_PREFIX, &session_id.0[..]].concat()
}

/// A bounds-checked cursor over the plaintext.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], SnapshotError> {
        if self.0.len() < n {
            return Err(SnapshotError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn secret(&mut self) -> Result<Zeroizing<[u8; 32]>, SnapshotError> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

impl Session {
    /// Server: the snapshot of this session as it stands (`bound`: the owner holds a validated
    /// binding). `None` for a session without a record or an id.
    pub(crate) fn snapshot(&mut self, bound: bool) -> Option<Snapshot> {
        let session_id = self.session_id?;
        let client_static = self.peer_static;
        let sm_version = self.sm.version();
        let epoch = self.sm.epoch();
        let deadline = self
            .sm
            .recovery_deadline()
            .map(|at| self.clock.unix_ms_at(at));
        let record = self.record_mut()?.snapshot();
        Some(Snapshot {
            session_id,
            client_static,
            sm_version,
            epoch,
            bound,
            recovery_deadline_unix_ms: deadline,
            record,
        })
    }

    /// Server: a session rebuilt from a snapshot read at `version`, to answer a reattach that
    /// arrived on `path`. It continues the snapshot's version and epoch (they only increase)
    /// and starts RECOVERING without a binding or keys on this node: its recovery deadline is
    /// the snapshot's, or a full window from `now` if the owner was bound. Only a reattach
    /// that passes every check and commits makes it a bound session here.
    pub(crate) fn restore(
        policy: &Policy,
        clock: ClockAnchor,
        limits: KeyLimits,
        snapshot: Snapshot,
        version: Version,
        path: PathId,
        now: Instant,
    ) -> Session {
        let deadline = snapshot
            .recovery_deadline_unix_ms
            .and_then(|ms| clock.instant_at_unix_ms(ms))
            .unwrap_or(now + policy.recovery_window);
        let since = deadline
            .checked_sub(policy.recovery_window)
            .unwrap_or(deadline);
        let record = ResumptionRecord::restore(snapshot.record, version);
        let role = RoleState::Server(ServerRole {
            record: Some(Box::new(record)),
            ..ServerRole::default()
        });
        let mut session = Session::base(role, policy.clone(), clock, path, snapshot.client_static);
        session.limits = limits;
        session.session_id = Some(snapshot.session_id);
        session.sm = StateMachine::restore_recovering(
            policy,
            snapshot.sm_version,
            snapshot.epoch,
            &snapshot.session_id.0,
            *snapshot.client_static.as_bytes(),
            since,
        );
        match session.sm.recovery_deadline() {
            Some(at) if at > now => session.timers.set(TimerKind::RecoveryDeadline, at),
            _ => session.terminate(Reason::RecoveryWindowExceeded, deadline.min(now)),
        }
        session
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn snapshot() -> Snapshot {
        Snapshot {
            session_id: SessionId([7; 16]),
            client_static: PublicKey::from_bytes([8; 32]),
            sm_version: 5,
            epoch: 2,
            bound: true,
            recovery_deadline_unix_ms: Some(1_700_000_000_123),
            record: RecordSnapshot {
                rs: ResumptionSecret::from_bytes([1; 32]),
                psk_epoch: 1,
                floor: 4,
                next_seq: 13,
                last_rc: 9,
                batches: vec![
                    (5, 1, ResumptionSecret::from_bytes([1; 32])),
                    (9, 2, ResumptionSecret::from_bytes([2; 32])),
                ],
                inherited: Some(3..1 << 32),
            },
        }
    }

    type Fields = (Vec<u8>, u64, u64, bool, Option<u64>, u64, u64, u64, usize);

    fn fields(s: &Snapshot) -> (Fields, Option<std::ops::Range<u64>>) {
        let r = &s.record;
        let fixed = (
            s.encode().to_vec(),
            s.sm_version,
            s.epoch,
            s.bound,
            s.recovery_deadline_unix_ms,
            r.last_rc,
            r.floor,
            r.next_seq,
            r.batches.len(),
        );
        (fixed, r.inherited.clone())
    }

    #[test]
    fn a_sealed_snapshot_opens_to_the_same_snapshot_under_the_same_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = TokenKey::generate(&mut rng);
        let snap = snapshot();

        let sealed = snap.seal(&key, &mut rng);
        let opened = Snapshot::open(&key, snap.session_id, &sealed).unwrap();

        assert_eq!(fields(&opened), fields(&snap));
    }

    #[test]
    fn the_store_sees_no_secret_in_a_sealed_snapshot() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let key = TokenKey::generate(&mut rng);

        let sealed = snapshot().seal(&key, &mut rng);

        assert!(!sealed.windows(8).any(|w| w == [1; 8] || w == [2; 8]));
    }

    #[test]
    fn a_snapshot_does_not_open_under_another_key_session_or_with_any_bit_flipped() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let key = TokenKey::generate(&mut rng);
        let other = TokenKey::generate(&mut rng);
        let snap = snapshot();
        let sealed = snap.seal(&key, &mut rng);

        let wrong_key = Snapshot::open(&other, snap.session_id, &sealed).err();
        let wrong_session = Snapshot::open(&key, SessionId([0; 16]), &sealed).err();
        let flipped = (0..sealed.len() * 8).all(|bit| {
            let mut forged = sealed.clone();
            forged[bit / 8] ^= 1 << (bit % 8);
            Snapshot::open(&key, snap.session_id, &forged).is_err()
        });
        let truncated = Snapshot::open(&key, snap.session_id, &sealed[..sealed.len() - 1]).err();

        assert_eq!(wrong_key, Some(SnapshotError::Sealed));
        assert_eq!(wrong_session, Some(SnapshotError::Sealed));
        assert!(flipped);
        assert_eq!(truncated, Some(SnapshotError::Sealed));
        assert_eq!(
            Snapshot::open(&key, snap.session_id, &[]).err(),
            Some(SnapshotError::Sealed)
        );
    }

    #[test]
    fn a_decoded_plaintext_with_trailing_or_missing_bytes_is_malformed() {
        let plain = snapshot().encode();

        let short = Snapshot::decode(&plain[..plain.len() - 1]).err();
        let long = Snapshot::decode(&[&plain[..], &[0]].concat()).err();

        assert_eq!(short, Some(SnapshotError::Malformed));
        assert_eq!(long, Some(SnapshotError::Malformed));
    }
}

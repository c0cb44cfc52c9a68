//! The data plane's receive side, `RecvKey::open`, against an oracle (ATTACKS.md S24, S26:
//! fuzz target F4).
//!
//! A `SendKey` seals frames from the fuzzer's plaintexts (and can burn thousands of counters to
//! push the window); a sequence of operations delivers real frames (in any order, repeated),
//! mutated real frames, truncations and arbitrary bytes to the matching `RecvKey`, and also to
//! a `RecvKey` with another key and one with another index.
//!
//! Input: the first byte picks the mode. 0: the rest is `len u16 | frame` records opened in
//! order (the seed corpus holds real frames sealed under the fixture key, and their replays);
//! 1..: the rest decoded with `arbitrary` as the operations below.
//!
//! Contract ("never a false OK", s2n-quic style): `open` accepts a frame only if it is
//! byte-identical to a frame the matching `SendKey` sealed, at most once per counter, and then
//! returns exactly the sealed plaintext and type; a real, unmodified frame is accepted exactly
//! when the RFC 6479 rule says so (new counter above the highest, or inside the window and unseen);
//! keys that do not match never accept anything; nothing panics.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use jvpn_fuzz::{DATA_INDEX, DATA_KEY, seal};
use jvpn_wire::{MessageType, OpenError, RecvKey, SendKey, WINDOW_SIZE};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Seal a new frame (CONTROL when `control`).
    Seal { control: bool, plaintext: Vec<u8> },
    /// Seal `n` empty frames (moves the counter past the 8128-wide window; up to 9 000 in all).
    Burn { n: u16 },
    /// Deliver sealed frame `which` (wraps) unmodified.
    Deliver { which: u16 },
    /// Deliver sealed frame `which` with one byte flipped.
    Flip { which: u16, at: u16, mask: u8 },
    /// Deliver sealed frame `which` cut to `len` bytes.
    Truncate { which: u16, len: u16 },
    /// Deliver sealed frame `which` with bytes appended.
    Extend { which: u16, extra: Vec<u8> },
    /// Deliver sealed frame `which` with header bytes 4..16 (index, counter) replaced.
    Reheader {
        which: u16,
        index: u32,
        counter: u64,
    },
    /// Deliver arbitrary bytes.
    Raw { bytes: Vec<u8> },
}

struct Sealed {
    frame: Vec<u8>,
    ty: MessageType,
    plaintext: Vec<u8>,
    counter: u64,
}

/// Enough burned counters to slide the window (8128) past the first frames.
const BURN_LIMIT: usize = 9_000;

#[derive(Default)]
struct Oracle {
    accepted: BTreeSet<u64>,
    highest: Option<u64>,
}

impl Oracle {
    /// RFC 6479 as docs/protocol.md section 10 states it.
    fn acceptable(&self, counter: u64) -> bool {
        match self.highest {
            None => true,
            Some(h) => {
                counter > h || (h - counter <= WINDOW_SIZE && !self.accepted.contains(&counter))
            }
        }
    }

    fn record(&mut self, counter: u64) {
        self.accepted.insert(counter);
        self.highest = Some(self.highest.map_or(counter, |h| h.max(counter)));
    }
}

/// Highest counter of any frame the committed corpus (or `gen-corpus`) sealed under
/// [`DATA_KEY`], with margin: a raw frame accepted above it was not produced by the SendKey.
const RAW_MAX_COUNTER: u64 = 4096;

/// Mode 0: the rest is a sequence of `len u16 | frame` records opened in order by one RecvKey
/// (the corpus holds real frames sealed under [`DATA_KEY`], so replays and reorders of real
/// frames are in reach). An accepted frame must re-seal to exactly its own bytes.
fn raw_frames(mut rest: &[u8]) {
    let mut recv = RecvKey::new(&DATA_KEY, DATA_INDEX);
    let mut oracle = Oracle::default();
    for _ in 0..64 {
        let [hi, lo, tail @ ..] = rest else { return };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        let mut buf = frame.to_vec();
        match recv.open(&mut buf) {
            Ok((ty, range)) => {
                let counter = u64::from_be_bytes(frame[8..16].try_into().expect("16-byte header"));
                assert!(
                    counter < RAW_MAX_COUNTER,
                    "accepted a counter no sender of this key reached"
                );
                let mut send = SendKey::new(&DATA_KEY, DATA_INDEX);
                for _ in 0..counter {
                    let _ = seal(&mut send, MessageType::Data, &[]);
                }
                let again = seal(&mut send, ty, &buf[range]);
                assert_eq!(again, frame, "accepted a frame the SendKey never produced");
                assert!(
                    oracle.acceptable(counter),
                    "accepted a counter the window forbids"
                );
                oracle.record(counter);
            }
            Err(_) => assert_eq!(buf, frame, "a refused frame was modified in place"),
        }
        assert_eq!(recv.packets_received(), oracle.accepted.len() as u64);
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => raw_frames(rest),
        Some((_, rest)) => {
            if let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(rest)) {
                run_ops(ops);
            }
        }
        None => {}
    }
});

/// Modes 1..: operations on a fresh SendKey / RecvKey pair.
fn run_ops(ops: Vec<Op>) {
    let mut send = SendKey::new(&DATA_KEY, DATA_INDEX);
    let mut recv = RecvKey::new(&DATA_KEY, DATA_INDEX);
    let mut wrong_key = RecvKey::new(&[0xa5; 32], DATA_INDEX);
    let mut wrong_index = RecvKey::new(&DATA_KEY, DATA_INDEX + 1);
    let mut sealed: Vec<Sealed> = Vec::new();
    let mut burned = 0usize;
    let mut oracle = Oracle::default();

    for op in ops.into_iter().take(256) {
        let pick = |which: u16, sealed: &[Sealed]| -> Option<usize> {
            (!sealed.is_empty()).then(|| usize::from(which) % sealed.len())
        };
        let (frame, real): (Vec<u8>, Option<usize>) = match op {
            Op::Seal {
                control,
                mut plaintext,
            } => {
                plaintext.truncate(1500);
                let ty = if control {
                    MessageType::Control
                } else {
                    MessageType::Data
                };
                let counter = send.packets_sent();
                let frame = seal(&mut send, ty, &plaintext);
                sealed.push(Sealed {
                    frame,
                    ty,
                    plaintext,
                    counter,
                });
                continue;
            }
            Op::Burn { n } => {
                let n = usize::from(n).min(BURN_LIMIT - burned);
                burned += n;
                for _ in 0..n {
                    let counter = send.packets_sent();
                    let frame = seal(&mut send, MessageType::Data, &[]);
                    sealed.push(Sealed {
                        frame,
                        ty: MessageType::Data,
                        plaintext: Vec::new(),
                        counter,
                    });
                }
                continue;
            }
            Op::Deliver { which } => match pick(which, &sealed) {
                Some(i) => (sealed[i].frame.clone(), Some(i)),
                None => continue,
            },
            Op::Flip { which, at, mask } => match pick(which, &sealed) {
                Some(i) => {
                    let mut f = sealed[i].frame.clone();
                    let at = usize::from(at) % f.len();
                    f[at] ^= mask;
                    (f, None)
                }
                None => continue,
            },
            Op::Truncate { which, len } => match pick(which, &sealed) {
                Some(i) => {
                    let mut f = sealed[i].frame.clone();
                    f.truncate(usize::from(len) % f.len().max(1));
                    (f, None)
                }
                None => continue,
            },
            Op::Extend { which, mut extra } => match pick(which, &sealed) {
                Some(i) => {
                    extra.truncate(64);
                    let mut f = sealed[i].frame.clone();
                    f.extend_from_slice(&extra);
                    (f, None)
                }
                None => continue,
            },
            Op::Reheader {
                which,
                index,
                counter,
            } => match pick(which, &sealed) {
                Some(i) => {
                    let mut f = sealed[i].frame.clone();
                    f[4..8].copy_from_slice(&index.to_be_bytes());
                    f[8..16].copy_from_slice(&counter.to_be_bytes());
                    (f, None)
                }
                None => continue,
            },
            Op::Raw { mut bytes } => {
                bytes.truncate(2048);
                (bytes, None)
            }
        };

        // Which sealed frame (if any) these bytes are, whatever way the fuzzer built them.
        // Counters are sealed in order from 0, so `sealed[c]` is the frame with counter `c`.
        let identical = real.or_else(|| {
            let counter = u64::from_be_bytes(frame.get(8..16)?.try_into().ok()?);
            let i = usize::try_from(counter).ok()?;
            (sealed.get(i)?.frame == frame).then_some(i)
        });

        let mut buf = frame.clone();
        let result = recv.open(&mut buf);
        match (&result, identical) {
            (Ok((ty, range)), Some(i)) => {
                let s = &sealed[i];
                assert!(
                    oracle.acceptable(s.counter),
                    "accepted a counter the window forbids"
                );
                assert_eq!(*ty, s.ty);
                assert_eq!(&buf[range.clone()], &s.plaintext[..]);
                oracle.record(s.counter);
            }
            (Ok(_), None) => panic!("opened a frame the SendKey never sealed: {frame:02x?}"),
            (Err(e), Some(i)) => {
                let s = &sealed[i];
                assert_eq!(
                    *e,
                    OpenError::Replayed,
                    "a real frame failed otherwise than by replay"
                );
                assert!(
                    !oracle.acceptable(s.counter),
                    "a real, acceptable frame was refused"
                );
            }
            (Err(_), None) => {}
        }
        if result.is_err() {
            // A refused frame is left as it was: no unauthenticated plaintext is exposed
            // (RUSTSEC-2023-0096 was exactly that in aes-gcm < 0.10.3).
            assert_eq!(buf, frame, "a refused frame was modified in place");
        }
        assert_eq!(recv.packets_received(), oracle.accepted.len() as u64);
        assert_eq!(recv.highest_counter(), oracle.highest.unwrap_or(0));

        assert!(
            wrong_key.open(&mut frame.clone()).is_err(),
            "another key opened a frame"
        );
        assert!(
            wrong_index.open(&mut frame.clone()).is_err(),
            "another index opened a frame"
        );
    }
    assert_eq!(wrong_key.packets_received(), 0);
    assert_eq!(wrong_index.packets_received(), 0);
}

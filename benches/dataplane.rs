//! Data-plane cost per packet: AES-256-GCM seal and open of one 1400-byte inner packet, against a
//! baseline (a plain copy of the same bytes) measured in the same run. Compare the ratios, not the
//! absolute figures: the machine is shared and noisy.
//!
//! ```sh
//! cargo bench --bench dataplane
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use jvpn::wire::{
    DATA_HEADER_LEN, MessageType, REKEY_AFTER_MESSAGES, RecvKey, ReplayWindow, SendKey,
};
use std::hint::black_box;

const SIZES: [usize; 3] = [64, 1400, 8192];

fn dataplane(c: &mut Criterion) {
    let key = [7u8; 32];
    let mut group = c.benchmark_group("dataplane");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let plaintext = vec![0xa5u8; size];
        let mut buf = vec![0u8; DATA_HEADER_LEN + size + 16];

        group.bench_with_input(BenchmarkId::new("baseline_copy", size), &size, |b, _| {
            b.iter(|| {
                buf[DATA_HEADER_LEN..DATA_HEADER_LEN + size].copy_from_slice(black_box(&plaintext));
                black_box(&buf);
            });
        });

        let mut send = SendKey::new(&key, 1);
        group.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
            b.iter(|| {
                // A key carries 2^22 packets; the session rekeys, and so does the benchmark.
                if send.packets_sent() >= REKEY_AFTER_MESSAGES {
                    send = SendKey::new(&key, 1);
                }
                buf[DATA_HEADER_LEN..DATA_HEADER_LEN + size].copy_from_slice(&plaintext);
                black_box(send.seal(MessageType::Data, &mut buf, size).expect("seal"))
            });
        });

        // Open needs a fresh counter every time (the replay window rejects repeats), so each
        // iteration seals then opens; the seal-only figure above lets the reader subtract it.
        let mut send = SendKey::new(&key, 1);
        let mut recv = RecvKey::new(&key, 1);
        group.bench_with_input(BenchmarkId::new("seal_then_open", size), &size, |b, _| {
            b.iter(|| {
                if send.packets_sent() >= REKEY_AFTER_MESSAGES {
                    send = SendKey::new(&key, 1);
                    recv = RecvKey::new(&key, 1);
                }
                buf[DATA_HEADER_LEN..DATA_HEADER_LEN + size].copy_from_slice(&plaintext);
                let len = send.seal(MessageType::Data, &mut buf, size).expect("seal");
                black_box(recv.open(&mut buf[..len]).expect("open"))
            });
        });
    }
    group.finish();

    let mut window = ReplayWindow::new();
    let mut counter = 0u64;
    c.bench_function("replay_window_check_commit", |b| {
        b.iter(|| {
            counter += 1;
            black_box(window.check(counter) && window.commit(counter))
        });
    });
}

criterion_group!(benches, dataplane);
criterion_main!(benches);

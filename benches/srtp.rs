//! SRTP protect and unprotect throughput: one packet, and batches for packets per second.
//! Run with `cargo bench --bench srtp`.
//!
//! Unprotect takes a 172-byte packet on the wire, decrypts in place, so each iteration copies
//! the protected bytes into a reused buffer first, and the receiving context has its replay
//! check off so that the same packets can be fed again and again.
//!
//! Protect takes a 20 ms G.711 frame (12-byte header + 160-byte payload) and appends the
//! trailer; the buffer is cut back to 172 bytes each time, so nothing is allocated.

use divan::Bencher;
use divan::counter::ItemsCount;
use sipwright::srtp::{Context, MasterKey, Suite};

fn main() {
    divan::main();
}

/// Bytes on the wire for every suite's packet.
const WIRE: usize = 172;
const BATCH: usize = 1000;
const SUITES: [Suite; 4] = [
    Suite::AesCm128HmacSha1_80,
    Suite::AesCm128HmacSha1_32,
    Suite::AeadAes128Gcm,
    Suite::AeadAes256Gcm,
];

fn key(suite: Suite) -> MasterKey {
    let bytes: Vec<u8> = (0..suite.master_key_len() + suite.master_salt_len())
        .map(|i| i as u8 ^ 0x5c)
        .collect();
    MasterKey::from_key_salt(suite, &bytes).expect("key")
}

/// `count` protected packets of WIRE bytes with consecutive sequence numbers.
fn protected(suite: Suite, count: usize) -> Vec<Vec<u8>> {
    let mut tx = Context::new(&key(suite)).expect("context");
    let payload = WIRE - 12 - suite.rtp_tag_len();
    (0..count)
        .map(|i| {
            let seq = (1000 + i) as u16;
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend((0..payload).map(|b| b as u8));
            tx.protect_rtp(&mut p).expect("protect");
            assert_eq!(p.len(), WIRE);
            p
        })
        .collect()
}

fn receiver(suite: Suite) -> Context {
    let mut rx = Context::new(&key(suite)).expect("context");
    rx.set_replay_check(false);
    rx
}

#[divan::bench(args = SUITES)]
fn unprotect_172_bytes(bencher: Bencher, suite: Suite) {
    let packet = protected(suite, 1).remove(0);
    let mut rx = receiver(suite);
    let mut buf = [0u8; WIRE];
    bencher.bench_local(|| {
        buf.copy_from_slice(&packet);
        rx.unprotect_rtp(divan::black_box(&mut buf))
            .expect("authentic")
            .len
    });
}

#[divan::bench(args = SUITES)]
fn unprotect_batch_of_1000(bencher: Bencher, suite: Suite) {
    let packets = protected(suite, BATCH);
    let mut rx = receiver(suite);
    let mut buf = [0u8; WIRE];
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        let mut total = 0;
        for p in &packets {
            buf.copy_from_slice(p);
            total += rx
                .unprotect_rtp(divan::black_box(&mut buf))
                .expect("authentic")
                .len;
        }
        total
    });
}

/// What a packet from a stream with the wrong key costs once the SSRC is established (no
/// ROC search): the rejection path.
#[divan::bench(args = [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm])]
fn reject_forged_172_bytes(bencher: Bencher, suite: Suite) {
    let packets = protected(suite, 2);
    let mut rx = receiver(suite);
    let mut first = packets[0].clone();
    rx.unprotect_rtp(&mut first).expect("authentic");
    let mut forged = packets[1].clone();
    forged[WIRE - 1] ^= 1;
    let mut buf = [0u8; WIRE];
    bencher.bench_local(|| {
        buf.copy_from_slice(&forged);
        rx.unprotect_rtp(divan::black_box(&mut buf)).is_err()
    });
}

/// Plain RTP: 12-byte header and a 160-byte G.711 payload.
const PLAIN: usize = 12 + 160;

fn plain(seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(PLAIN + 16);
    p.extend_from_slice(&[0x80, 0]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend((0..160).map(|b| b as u8 | 0x80));
    p
}

#[divan::bench(args = SUITES)]
fn protect_160_byte_payload(bencher: Bencher, suite: Suite) {
    let mut tx = Context::new(&key(suite)).expect("context");
    let mut buf = plain(0);
    let mut seq = 0u16;
    bencher.bench_local(|| {
        // The next packet of the stream: the sender's index moves on as it would.
        buf.truncate(PLAIN);
        seq = seq.wrapping_add(1);
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        tx.protect_rtp(divan::black_box(&mut buf)).expect("protect");
        buf.len()
    });
}

#[divan::bench(args = SUITES)]
fn protect_batch_of_1000(bencher: Bencher, suite: Suite) {
    let packets: Vec<Vec<u8>> = (0..BATCH).map(|i| plain(i as u16)).collect();
    let mut tx = Context::new(&key(suite)).expect("context");
    let mut buf = Vec::with_capacity(PLAIN + 16);
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        let mut total = 0;
        for p in &packets {
            buf.clear();
            buf.extend_from_slice(p);
            tx.protect_rtp(divan::black_box(&mut buf)).expect("protect");
            total += buf.len();
        }
        total
    });
}

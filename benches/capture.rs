//! Throughput of the capture reader on the `srtp decrypt` hot path: a synthetic
//! 100,000-frame pcap (Ethernet + IPv4 + UDP, 172-byte RTP-sized payloads) read from
//! memory. Run with `cargo bench --bench capture`; divan prints items (frames) per second.

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use divan::counter::ItemsCount;
use sipwright::capture::{CaptureReader, CaptureWriter, L4, decode, replace_udp_payload};
use sipwright::report::pcap::{RECORD_HEADER_LEN, write_udp_record};

fn main() {
    divan::main();
}

const FRAMES: usize = 100_000;

fn synthetic_pcap() -> Vec<u8> {
    let src: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let dst: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let mut rec = Vec::new();
    write_udp_record(&mut rec, UNIX_EPOCH, src, dst, &[0x80; 172]);
    let ip = rec.split_off(RECORD_HEADER_LEN);
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    let mut out = Vec::with_capacity(24 + FRAMES * (16 + frame.len()));
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for i in 0..FRAMES {
        let t = (start + Duration::from_micros(20_000 * i as u64))
            .duration_since(UNIX_EPOCH)
            .unwrap();
        out.extend_from_slice(&(t.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&t.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

#[divan::bench]
fn read(bencher: divan::Bencher) {
    let file = synthetic_pcap();
    bencher.counter(ItemsCount::new(FRAMES)).bench(|| {
        let mut r = CaptureReader::new(divan::black_box(&file[..])).unwrap();
        let mut bytes = 0;
        while let Some(f) = r.next_frame().unwrap() {
            bytes += f.data.len();
        }
        bytes
    });
}

#[divan::bench]
fn read_decode(bencher: divan::Bencher) {
    let file = synthetic_pcap();
    bencher.counter(ItemsCount::new(FRAMES)).bench(|| {
        let mut r = CaptureReader::new(divan::black_box(&file[..])).unwrap();
        let mut bytes = 0;
        while let Some(f) = r.next_frame().unwrap() {
            if let Ok(p) = decode(f.linktype, f.data)
                && let L4::Udp { payload, .. } = p.l4
            {
                bytes += payload.len();
            }
        }
        bytes
    });
}

/// What `srtp decrypt -o` does per packet, minus the cryptography: decode, rebuild the
/// frame with a payload 10 bytes shorter, write it.
#[divan::bench]
fn read_decode_rewrite_write(bencher: divan::Bencher) {
    let file = synthetic_pcap();
    bencher.counter(ItemsCount::new(FRAMES)).bench(|| {
        let mut r = CaptureReader::new(divan::black_box(&file[..])).unwrap();
        let mut w = CaptureWriter::new(std::io::sink(), &r).unwrap();
        let mut buf = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            let p = decode(f.linktype, f.data).unwrap();
            if let L4::Udp { payload, .. } = p.l4 {
                let plain = &payload[..payload.len() - 10];
                replace_udp_payload(f.data, &p, plain, &mut buf).unwrap();
                w.write_frame(&f, &buf).unwrap();
            }
        }
        w.finish().unwrap();
    });
}

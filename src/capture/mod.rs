//! Reading and rewriting capture files (sans-IO apart from the `Read`/`Write` given).
//!
//! - [`CaptureReader`] streams pcap (µs and ns, either byte order) and pcapng (several
//!   sections, each with its byte order; several interfaces, each with its link type and
//!   `if_tsresol`/`if_tsoffset`; EPB, SPB and the obsolete PB; other blocks skipped).
//!   Memory is bounded by the largest record, whatever the file size.
//! - [`decode`] takes a frame down to UDP/TCP without copying: Ethernet (with stacked
//!   802.1Q/802.1ad/QinQ tags), Linux SLL and SLL2, raw IP, BSD and OpenBSD loopback;
//!   IPv4 with options, IPv6 with extension headers skipped.
//! - [`Defragmenter`] reassembles IPv4 and IPv6 fragments, bounded in bytes and age.
//! - [`TcpStreams`] rebuilds TCP byte streams and cuts them into SIP messages.
//! - [`CaptureWriter`] writes frames in the input's format; [`replace_udp_payload`]
//!   builds a frame whose UDP payload is replaced, with lengths and checksums fixed.
//!
//! ## A typical loop
//!
//! ```no_run
//! use sipwright::capture::{CaptureReader, CaptureWriter, L4, decode, replace_udp_payload};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut reader = CaptureReader::new(std::fs::File::open("in.pcapng")?)?;
//! let mut writer = CaptureWriter::new(std::fs::File::create("out.pcapng")?, &reader)?;
//! let mut rewritten = Vec::new();
//! while let Some(frame) = reader.next_frame()? {
//!     match decode(frame.linktype, frame.data) {
//!         Ok(packet @ sipwright::capture::Packet { l4: L4::Udp { payload, .. }, .. }) => {
//!             let new_payload = payload; // … transform it …
//!             replace_udp_payload(frame.data, &packet, new_payload, &mut rewritten)?;
//!             writer.write_frame(&frame, &rewritten)?;
//!         }
//!         _ => writer.write_frame(&frame, frame.data)?,
//!     }
//! }
//! writer.finish()?;
//! # Ok(()) }
//! ```
//!
//! ## How interfaces that appear mid-file reach the writer
//!
//! A pcapng file may describe a new interface (IDB) or start a new section (SHB) between
//! packets, and a packet refers to its interface by number within its section. The writer
//! mirrors the input's sections and interfaces, so the numbers in the frames stay valid.
//! It gets the header blocks from the reader it was created from, without the caller
//! doing anything:
//!
//! - the reader records every SHB and IDB it reads, with the number of the frame that
//!   follows it, in a log shared with its writer (an `Arc`; the reader and the writer
//!   stay separate objects, so a frame borrowed from the reader can be written while the
//!   reader is not borrowed by the writer);
//! - [`CaptureWriter::write_frame`] first copies every logged block that came before that
//!   frame (by frame number, so it stays right even if the caller reads ahead before
//!   writing), then writes the packet; blocks are dropped from the log once written;
//! - [`CaptureWriter::finish`] copies the blocks left (those after the last packet);
//! - a new frame costs one atomic load to learn that no block is pending: the lock is
//!   taken only when a block was added.
//!
//! The caller must therefore write frames in order (skipping some is fine). A writer
//! created after some frames were read starts at the current section. Without a writer,
//! the reader keeps only the current section's header blocks.
//!
//! ## Why the formats are decoded here rather than with `pcap-file` or `etherparse`
//!
//! Both are good crates; they were weighed and not taken because this reader is on the
//! hot path of `srtp decrypt` (≥ 1 M packets/s, one record buffer, no allocation per
//! frame) and because of fit:
//! - `pcap-file` 3.0.0-rc.3 (the newest; 2.0 mis-reads pcapng timestamps with a
//!   non-default `if_tsresol`) honours `if_tsresol` and reads from any `Read`, but it
//!   needs Rust 1.93 while this crate supports 1.89, is a pre-release, parses every
//!   block's options into a `Vec`, works in a fixed 8 MB buffer, rejects packets whose
//!   original length is below the captured length (some tools write that), and its
//!   errors carry neither byte offset nor frame number, which ours must. The formats are
//!   small: the reader is a few hundred lines.
//! - `etherparse` 0.21 (maintained) slices Ethernet/VLAN/SLL, IP and UDP/TCP without
//!   copying, but has no SLL2 or loopback link types, and we need offsets into the frame
//!   (for rewriting) rather than typed slices; what we need is one function per layer.
//!
//! Checksums reuse the Internet checksum of [`crate::report::pcap`].

pub mod defrag;
mod error;
mod link;
pub mod packet;
mod pcapng;
pub mod reader;
mod reassembly;
pub mod tcp_stream;
pub mod writer;

#[cfg(test)]
pub(crate) mod testutil;

pub use defrag::{Datagram, Defragmenter, TcpMeta};
pub use error::{CaptureError, DecodeError};
pub use link::{
    LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_RAW_14,
};
pub use packet::{L4, Packet, decode};
pub use reader::{CaptureFormat, CaptureReader, Frame, MAX_RECORD};
pub use reassembly::Reassembly;
pub use tcp_stream::{SipOverTcp, TcpStreams};
pub use writer::{CaptureWriter, replace_udp_payload};

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, RngCore, SeedableRng};

    use super::testutil::*;
    use super::*;

    /// Everything a caller would do with a capture; must never panic.
    fn pipeline(bytes: &[u8]) -> usize {
        let Ok(mut reader) = CaptureReader::new(bytes) else {
            return 0;
        };
        let mut writer = CaptureWriter::new(Vec::new(), &reader).unwrap();
        let mut reassembly = Reassembly::new(1 << 16, 1_000_000_000);
        let mut sip = Vec::new();
        let mut buf = Vec::new();
        let mut n = 0;
        while let Ok(Some(frame)) = reader.next_frame() {
            n += 1;
            match decode(frame.linktype, frame.data) {
                Ok(p) => match p.l4 {
                    L4::Udp { payload, .. } => {
                        let new = &payload[..payload.len() / 2];
                        replace_udp_payload(frame.data, &p, new, &mut buf).unwrap();
                        let again = decode(frame.linktype, &buf).unwrap();
                        assert!(matches!(again.l4, L4::Udp { payload, .. } if payload == new));
                        writer.write_frame(&frame, &buf).unwrap();
                        continue;
                    }
                    _ => {
                        let _ = reassembly.push(&frame, &p, &mut sip);
                    }
                },
                Err(e) => {
                    let _ = e.to_string();
                }
            }
            writer.write_frame(&frame, frame.data).unwrap();
        }
        let out = writer.finish().unwrap();
        // What the writer wrote reads back, with as many frames.
        let mut again = CaptureReader::new(&out[..]).unwrap();
        let mut m = 0;
        while again.next_frame().unwrap().is_some() {
            m += 1;
        }
        assert_eq!(m, n);
        n
    }

    fn samples() -> Vec<Vec<u8>> {
        let u4 = udp_packet(
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            b"OPTIONS sip:x SIP/2.0\r\n\r\n",
        );
        let u6 = udp_packet("[2001:db8::1]:1", "[2001:db8::2]:2", &[0x80; 60]);
        let t4 = tcp_packet(
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            1,
            ACK,
            b"INVITE sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        );
        let (s, d) = (sa("10.0.0.1:0").ip(), sa("10.0.0.2:0").ip());
        let f1 = ipv4(
            17,
            s,
            d,
            9,
            0x2000,
            &[],
            &udp(sa("10.0.0.1:1"), sa("10.0.0.2:2"), &[7; 16])[..16],
        );
        let f2 = ipv4(17, s, d, 9, 2, &[], &[7; 8]);
        let frames: Vec<(u64, &[u8])> = vec![(1, &u4), (2, &u6), (3, &t4), (4, &f2), (5, &f1)];
        let mut ng = Ng::new(false);
        ng.idb(1, None, None)
            .epb(0, 1, &ether(&[0x8100], 0x0800, &u4))
            .idb(101, Some(9), None)
            .epb(1, 2, &u6)
            .epb(1, 3, &t4)
            .spb(&ether(&[], 0x0800, &f1))
            .pb(1, 4, &f2)
            .shb(true)
            .idb(276, Some(0x80 | 16), None)
            .epb(0, 5, &sll2(&u4));
        vec![
            pcap(false, false, 101, &frames),
            pcap(true, true, 101, &frames),
            pcap(
                false,
                false,
                1,
                &[(1, &ether(&[0x88a8, 0x8100], 0x86dd, &u6))],
            ),
            pcap(false, true, 113, &[(1, &sll(&t4))]),
            pcap(
                false,
                false,
                0,
                &[(1, &null(2, false, &u4)), (2, &null(30, true, &u6))],
            ),
            ng.out,
        ]
    }

    #[test]
    fn samples_go_through_the_pipeline() {
        let counts: Vec<usize> = samples().iter().map(|s| pipeline(s)).collect();
        assert_eq!(counts, vec![5, 5, 1, 1, 2, 6]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = SmallRng::seed_from_u64(0x5eed);
        let samples = samples();
        for round in 0..3000 {
            let mut bytes = samples[round % samples.len()].clone();
            match round % 3 {
                // Random bytes, sometimes behind a valid magic.
                0 => {
                    let len = rng.random_range(0..600);
                    let mut junk = vec![0; len];
                    rng.fill_bytes(&mut junk);
                    let keep = rng.random_range(0..bytes.len().min(40));
                    bytes.truncate(keep);
                    bytes.extend(junk);
                }
                // A few bytes flipped.
                1 => {
                    for _ in 0..rng.random_range(1..8) {
                        let i = rng.random_range(0..bytes.len());
                        bytes[i] = rng.random();
                    }
                }
                // Cut anywhere.
                _ => {
                    let len = rng.random_range(0..bytes.len());
                    bytes.truncate(len);
                }
            }
            pipeline(&bytes);
            for linktype in [0, 1, 12, 101, 108, 113, 228, 229, 276] {
                let _ = decode(linktype, &bytes);
                let _ = decode(linktype, bytes.get(24..).unwrap_or(&[]));
            }
        }
    }

    /// Writes the samples as seeds for the `capture_reader` fuzz target:
    /// `cargo test --lib capture::tests::write_fuzz_seeds -- --ignored`.
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/capture_reader");
        std::fs::create_dir_all(&dir).unwrap();
        let names = [
            "raw_v4_v6_tcp_fragments.pcap",
            "raw_ns_big_endian.pcap",
            "ethernet_qinq_v6.pcap",
            "sll_tcp_big_endian.pcap",
            "loopback_both_orders.pcap",
            "two_sections.pcapng",
        ];
        for (name, bytes) in names.iter().zip(samples()) {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

//! Writing a capture in the input's format, and rebuilding a frame with a new UDP payload.
//!
//! pcap output: little-endian, with the input's link type field and timestamp resolution
//! (µs or ns). pcapng output mirrors the input's sections: each section header and
//! interface description is copied byte for byte (in its section's byte order, with the
//! section length set to "unknown" since the contents change), and packets are written as
//! Enhanced Packet Blocks in the interface's own timestamp unit. How header blocks that
//! appear mid-file reach the writer is described in the [`super`] module documentation.

use std::io::{Read, Write};

use super::error::{CaptureError, DecodeError};
use super::packet::{IPPROTO_UDP, L4, Packet};
use super::pcapng::{
    BLOCK_EPB, HeaderBlock, HeaderCursor, HeaderKind, Interface, TsUnit, pad4, parse_idb, put_u32,
};
use super::reader::{CaptureFormat, CaptureReader, Frame};
use crate::report::pcap::{fold, ones_sum};

/// Output is handed to `W` in chunks of about this size, so a plain `File` is fine.
const FLUSH_AT: usize = 64 << 10;
/// Snap length written to pcap headers at least: Wireshark's maximum for ordinary link
/// types, so no reader cuts a record that a rewrite made longer than the input's limit.
const MIN_SNAPLEN: u32 = 262_144;

enum Kind {
    Pcap {
        nanos: bool,
    },
    PcapNg {
        cursor: HeaderCursor,
        section: Option<Section>,
    },
}

/// The output section being written: byte order and interfaces so far.
struct Section {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

/// Writes a capture in the same format as the input it was created from.
pub struct CaptureWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    kind: Kind,
}

impl<W: Write> CaptureWriter<W> {
    /// Same format as the input: pcap with the input's linktype and resolution, or
    /// pcapng with the input's interfaces (IDBs copied as they appear in the input).
    pub fn new(w: W, like: &CaptureReader<impl Read>) -> Result<Self, CaptureError> {
        let mut buf = Vec::with_capacity(FLUSH_AT * 2);
        let kind = match like.format() {
            CaptureFormat::Pcap { nanos, .. } => {
                let (linktype_field, snaplen) = like.pcap_header();
                let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
                buf.extend_from_slice(&magic.to_le_bytes());
                buf.extend_from_slice(&2u16.to_le_bytes());
                buf.extend_from_slice(&4u16.to_le_bytes());
                buf.extend_from_slice(&0u32.to_le_bytes()); // thiszone
                buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
                buf.extend_from_slice(&snaplen.max(MIN_SNAPLEN).to_le_bytes());
                buf.extend_from_slice(&linktype_field.to_le_bytes());
                Kind::Pcap { nanos }
            }
            CaptureFormat::PcapNg => Kind::PcapNg {
                cursor: like.header_log().cursor(),
                section: None,
            },
        };
        Ok(CaptureWriter { out: w, buf, kind })
    }

    /// Write a frame with `data` as its bytes (the frame's own data, or a rewrite of
    /// it). `frame` gives the time, interface and frame number; the original length is
    /// adjusted by the difference in captured length.
    pub fn write_frame(&mut self, frame: &Frame<'_>, data: &[u8]) -> Result<(), CaptureError> {
        let unwritable = |why: String| CaptureError::Unwritable {
            frame: frame.index,
            why,
        };
        let caplen = u32::try_from(data.len())
            .ok()
            .filter(|&l| l as usize <= super::reader::MAX_RECORD)
            .ok_or_else(|| unwritable(format!("{} bytes is too long for a record", data.len())))?;
        let orig_len = if data.len() == frame.data.len() {
            frame.orig_len
        } else {
            let cut = frame.orig_len.saturating_sub(frame.data.len() as u32);
            cut.saturating_add(caplen)
        }
        .max(caplen);
        match &mut self.kind {
            Kind::Pcap { nanos } => {
                let secs = u32::try_from(frame.ts_nanos / 1_000_000_000).unwrap_or(u32::MAX);
                let sub = frame.ts_nanos % 1_000_000_000;
                let frac = if *nanos { sub } else { sub / 1000 } as u32;
                let b = &mut self.buf;
                b.extend_from_slice(&secs.to_le_bytes());
                b.extend_from_slice(&frac.to_le_bytes());
                b.extend_from_slice(&caplen.to_le_bytes());
                b.extend_from_slice(&orig_len.to_le_bytes());
                b.extend_from_slice(data);
            }
            Kind::PcapNg { cursor, section } => {
                sync_headers(cursor, section, &mut self.buf, frame.index)?;
                let Some(sec) = section.as_ref() else {
                    return Err(unwritable("no section header precedes it".into()));
                };
                let Some(iface) = sec.interfaces.get(frame.interface as usize) else {
                    return Err(unwritable(format!(
                        "its interface {} has no interface description",
                        frame.interface
                    )));
                };
                let units = iface.unit.units_of(frame.ts_nanos);
                let be = sec.big_endian;
                let pad = pad4(data.len());
                let total = (32 + data.len() + pad) as u32;
                let b = &mut self.buf;
                put_u32(b, BLOCK_EPB, be);
                put_u32(b, total, be);
                put_u32(b, frame.interface, be);
                put_u32(b, (units >> 32) as u32, be);
                put_u32(b, units as u32, be);
                put_u32(b, caplen, be);
                put_u32(b, orig_len, be);
                b.extend_from_slice(data);
                b.extend_from_slice(&[0u8; 3][..pad]);
                put_u32(b, total, be);
            }
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Write what is left (pcapng: header blocks after the last frame, so even a file
    /// without packets keeps its interfaces), flush, and give the output back.
    pub fn finish(mut self) -> Result<W, CaptureError> {
        if let Kind::PcapNg { cursor, section } = &mut self.kind {
            sync_headers(cursor, section, &mut self.buf, u64::MAX)?;
        }
        self.flush_buf()?;
        self.out.flush().map_err(CaptureError::Write)?;
        Ok(self.out)
    }

    fn flush_buf(&mut self) -> Result<(), CaptureError> {
        self.out.write_all(&self.buf).map_err(CaptureError::Write)?;
        self.buf.clear();
        Ok(())
    }
}

/// Copy the header blocks read before frame `upto` to the output, tracking the section.
fn sync_headers(
    cursor: &mut HeaderCursor,
    section: &mut Option<Section>,
    buf: &mut Vec<u8>,
    upto: u64,
) -> Result<(), CaptureError> {
    cursor.take_until(upto, |block: &HeaderBlock| {
        let be = block.big_endian;
        match block.kind {
            HeaderKind::Section => {
                let start = buf.len();
                buf.extend_from_slice(&block.bytes);
                // Section length (bytes 16..24): -1, "not given", as the contents change.
                if let Some(len) = buf.get_mut(start + 16..start + 24) {
                    len.fill(0xff);
                }
                *section = Some(Section {
                    big_endian: be,
                    interfaces: Vec::new(),
                });
            }
            HeaderKind::Interface => {
                buf.extend_from_slice(&block.bytes);
                // The reader parsed it already; a failure here cannot happen, but the
                // interface must still take its number.
                let iface = parse_idb(&block.bytes, be).unwrap_or(Interface {
                    linktype: 0,
                    snaplen: 0,
                    unit: TsUnit::MICROS,
                });
                if let Some(sec) = section.as_mut() {
                    sec.interfaces.push(iface);
                }
            }
        }
        Ok::<(), CaptureError>(())
    })
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

/// Build in `out` (cleared first) a copy of `frame_data` (as decoded into `packet`, which
/// must be UDP) whose UDP payload is replaced by `new_payload`: IPv4 total length + header
/// checksum, IPv6 payload length, UDP length and checksum recomputed; link header and
/// everything else kept (IPv4 options, IPv6 extension headers, a link-layer trailer after
/// the IP packet). The UDP checksum is always computed, also over IPv4 where the input
/// may have had none, so the output checks clean whatever offloading did to the input.
pub fn replace_udp_payload(
    frame_data: &[u8],
    packet: &Packet<'_>,
    new_payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let L4::Udp { payload_offset, .. } = packet.l4 else {
        return Err(DecodeError::NotUdp);
    };
    let ip_at = packet.ip_offset;
    let mismatch = DecodeError::Malformed {
        layer: "IP",
        offset: ip_at,
        why: "the frame does not match the decoded packet",
    };
    let udp_at = payload_offset.checked_sub(8).ok_or(mismatch.clone())?;
    let first = *frame_data.get(ip_at).ok_or(mismatch.clone())?;
    let v4 = first >> 4 == 4;
    // Where the IP packet ends in the frame (what follows is a link-layer trailer).
    let (fixed, ip_end) = if v4 {
        let total = be16(frame_data, ip_at + 2).ok_or(mismatch.clone())?;
        let end = if total == 0 {
            frame_data.len()
        } else {
            ip_at + total
        };
        (usize::from(first & 0x0f) * 4, end)
    } else {
        let plen = be16(frame_data, ip_at + 4).ok_or(mismatch.clone())?;
        let end = if plen == 0 {
            frame_data.len()
        } else {
            ip_at + 40 + plen
        };
        (40, end)
    };
    if ip_at + fixed > udp_at || udp_at + 8 > ip_end || ip_end > frame_data.len() {
        return Err(mismatch);
    }
    // IPv4 counts its header in the total length; IPv6 counts extension headers only.
    let counted_before_udp = if v4 {
        udp_at - ip_at
    } else {
        udp_at - ip_at - 40
    };
    let max = 65_535 - counted_before_udp - 8;
    if new_payload.len() > max {
        return Err(DecodeError::PayloadTooLarge {
            len: new_payload.len(),
            max,
        });
    }
    let udp_len = 8 + new_payload.len();
    let ip_len = (counted_before_udp + udp_len) as u16;

    out.clear();
    out.reserve(payload_offset + new_payload.len() + (frame_data.len() - ip_end));
    out.extend_from_slice(&frame_data[..payload_offset]);
    out.extend_from_slice(new_payload);
    out.extend_from_slice(&frame_data[ip_end..]);

    let pseudo = if v4 {
        out[ip_at + 2..ip_at + 4].copy_from_slice(&ip_len.to_be_bytes());
        out[ip_at + 10..ip_at + 12].fill(0);
        let sum = fold(ones_sum(0, &out[ip_at..ip_at + fixed]));
        out[ip_at + 10..ip_at + 12].copy_from_slice(&sum.to_be_bytes());
        let acc = ones_sum(0, &out[ip_at + 12..ip_at + 20]);
        ones_sum(acc, &[0, IPPROTO_UDP, (udp_len >> 8) as u8, udp_len as u8])
    } else {
        out[ip_at + 4..ip_at + 6].copy_from_slice(&ip_len.to_be_bytes());
        // RFC 8200 §8.1. (With a routing header the final destination would belong here;
        // SIP and RTP are not sent with one.)
        let acc = ones_sum(0, &out[ip_at + 8..ip_at + 40]);
        ones_sum(
            acc,
            &[
                0,
                0,
                (udp_len >> 8) as u8,
                udp_len as u8,
                0,
                0,
                0,
                IPPROTO_UDP,
            ],
        )
    };
    out[udp_at + 4..udp_at + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    out[udp_at + 6..udp_at + 8].fill(0);
    let acc = ones_sum(pseudo, &out[udp_at..udp_at + 8]);
    let mut sum = fold(ones_sum(acc, new_payload));
    // 0 means "no checksum" (and is invalid over IPv6): send its equivalent 0xffff.
    if sum == 0 {
        sum = 0xffff;
    }
    out[udp_at + 6..udp_at + 8].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::packet::decode;
    use crate::capture::pcapng::{BLOCK_IDB, BLOCK_SHB, u32_at};
    use crate::capture::testutil::*;
    use crate::report::pcap::checksum;

    use crate::capture::testutil::{owned, read_all};

    fn copy_through(bytes: &[u8]) -> Vec<u8> {
        let mut r = CaptureReader::new(bytes).unwrap();
        let mut w = CaptureWriter::new(Vec::new(), &r).unwrap();
        while let Some(f) = r.next_frame().unwrap() {
            w.write_frame(&f, f.data).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn pcap_round_trip() {
        let a = udp_packet("10.0.0.1:5060", "10.0.0.2:5060", b"hello");
        let b = ether(&[0x8100], 0x0800, &a);
        for nanos in [false, true] {
            for be in [false, true] {
                let input = pcap(nanos, be, 1, &[(1_700_000_000_123_456_789, &b), (5, &b)]);
                let output = copy_through(&input);
                let (fmt, frames) = read_all(&output);
                assert_eq!(
                    fmt,
                    CaptureFormat::Pcap {
                        nanos,
                        big_endian: false
                    }
                );
                assert_eq!(frames, read_all(&input).1);
                assert_eq!(output.len(), input.len());
            }
        }
    }

    /// A pcapng with two sections of different byte orders and interfaces described
    /// between packets.
    fn multi_section() -> Vec<u8> {
        let p4 = udp_packet("10.0.0.1:5060", "10.0.0.2:5060", b"v4");
        let p6 = udp_packet("[2001:db8::1]:1", "[2001:db8::2]:2", b"v6");
        let mut ng = Ng::new(false);
        ng.idb(1, None, None)
            .epb(0, 1_000_001, &ether(&[], 0x0800, &p4))
            .idb(101, Some(0x80 | 20), Some(7)) // described after a packet
            .epb(1, 123_456_789, &p6)
            .spb(&ether(&[], 0x0800, &p4))
            .pb(1, 99, &p4)
            .block(0x0BAD, b"skipped")
            .shb(true)
            .idb(113, Some(9), None)
            .epb(0, 1_700_000_000_000_000_001, &sll(&p6))
            .idb(276, Some(12), None)
            .epb(1, 5_000, &sll2(&p4));
        ng.out
    }

    #[test]
    fn pcapng_round_trip_with_interfaces_mid_file() {
        let input = multi_section();
        let output = copy_through(&input);
        let (fmt, frames) = read_all(&output);
        assert_eq!(fmt, CaptureFormat::PcapNg);
        assert_eq!(frames, read_all(&input).1);
        assert_eq!(frames.len(), 6);
        // Block order in the output: SHB, IDB, EPB, IDB, EPB×3, SHB(BE), IDB, EPB, IDB, EPB.
        let mut kinds = Vec::new();
        let (mut at, mut be) = (0, false);
        while at < output.len() {
            let ty = u32_at(&output, at, be).unwrap();
            if ty == BLOCK_SHB {
                be = output[at + 8] == 0x1a;
                // Section length rewritten to -1.
                assert_eq!(&output[at + 16..at + 24], &[0xff; 8]);
                // Options copied.
                assert!(output[at..at + 40].windows(4).any(|w| w == b"test"));
            }
            kinds.push(ty);
            at += u32_at(&output, at + 4, be).unwrap() as usize;
        }
        let (s, i, e) = (BLOCK_SHB, BLOCK_IDB, BLOCK_EPB);
        assert_eq!(kinds, vec![s, i, e, i, e, e, e, s, i, e, i, e]);
        // A second pass gives identical bytes.
        assert_eq!(copy_through(&output), output);
    }

    #[test]
    fn writing_after_reading_ahead() {
        // The caller reads every frame (copying) before writing any: header blocks still
        // land before the frames that follow them in the input.
        let input = multi_section();
        let mut r = CaptureReader::new(&input[..]).unwrap();
        let mut w = CaptureWriter::new(Vec::new(), &r).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            frames.push(owned(&f));
        }
        for (index, ts_nanos, interface, linktype, data, orig_len) in &frames {
            let f = Frame {
                index: *index,
                ts_nanos: *ts_nanos,
                interface: *interface,
                linktype: *linktype,
                data,
                orig_len: *orig_len,
            };
            w.write_frame(&f, data).unwrap();
        }
        let out = w.finish().unwrap();
        assert_eq!(read_all(&out).1, frames);
        assert_eq!(
            r.header_log().held_bytes(),
            0,
            "written blocks are released"
        );
    }

    #[test]
    fn header_blocks_after_the_last_packet_and_empty_files() {
        let mut ng = Ng::new(false);
        ng.idb(1, None, None);
        let out = copy_through(&ng.out);
        assert_eq!(out.len(), ng.out.len());
        assert!(read_all(&out).1.is_empty());
        let input = pcap(false, false, 228, &[]);
        let out = copy_through(&input);
        assert_eq!(out.len(), 24);
        assert_eq!(u32_at(&out, 20, false), Some(228));
    }

    #[test]
    fn no_writer_keeps_only_the_current_section() {
        let input = multi_section();
        let mut r = CaptureReader::new(&input[..]).unwrap();
        while r.next_frame().unwrap().is_some() {}
        // The second section's SHB and two IDBs.
        let held = r.header_log().held_bytes();
        assert!(held > 0 && held < 200, "{held}");
    }

    fn check_udp(frame: &[u8], linktype: u32, want: &[u8]) {
        let p = decode(linktype, frame).unwrap();
        let L4::Udp {
            payload,
            payload_offset,
            ..
        } = p.l4
        else {
            panic!("not UDP")
        };
        assert_eq!(payload, want);
        let ip = &frame[p.ip_offset..];
        let udp_at = payload_offset - 8;
        let seg = &frame[udp_at..payload_offset + payload.len()];
        let mut zeroed = seg.to_vec();
        zeroed[6..8].fill(0);
        let expect = udp_checksum(p.src, p.dst, &zeroed);
        assert_eq!(u16::from_be_bytes([seg[6], seg[7]]), expect, "UDP checksum");
        if ip[0] >> 4 == 4 {
            let ihl = usize::from(ip[0] & 15) * 4;
            assert_eq!(checksum(&ip[..ihl]), 0, "IPv4 header checksum");
            assert_eq!(
                usize::from(u16::from_be_bytes([ip[2], ip[3]])),
                udp_at - p.ip_offset + seg.len()
            );
        } else {
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            assert_eq!(plen, udp_at - p.ip_offset - 40 + seg.len());
        }
        assert_eq!(usize::from(u16::from_be_bytes([seg[4], seg[5]])), seg.len());
    }

    #[test]
    fn replace_udp_payload_fixes_lengths_and_checksums() {
        let (s, d) = (sa("10.0.0.1:4000"), sa("10.0.0.2:5000"));
        let v4opts = ipv4(
            17,
            s.ip(),
            d.ip(),
            3,
            0,
            &[0x94, 4, 0, 0],
            &udp(s, d, &[0xab; 180]),
        );
        let mut eth = ether(&[0x88a8, 0x8100], 0x0800, &v4opts);
        eth.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // FCS-like trailer, kept
        let (s6, d6) = (sa("[2001:db8::1]:4000"), sa("[2001:db8::2]:5000"));
        let mut rest = vec![17, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop
        rest.extend_from_slice(&udp(s6, d6, &[0xcd; 172]));
        let v6ext = ipv6(0, s6.ip(), d6.ip(), &rest);
        let cases = [
            (1, eth.clone()),
            (101, v4opts.clone()),
            (229, v6ext.clone()),
            (113, sll(&v6ext)),
            (0, null(30, false, &v6ext)),
        ];
        let mut out = Vec::new();
        for (linktype, frame) in cases {
            let p = decode(linktype, &frame).unwrap();
            for new in [&b""[..], b"odd", &[0x11; 160], &[0xff; 1000]] {
                replace_udp_payload(&frame, &p, new, &mut out).unwrap();
                check_udp(&out, linktype, new);
                let ip_at = p.ip_offset;
                assert_eq!(&out[..ip_at], &frame[..ip_at], "link header kept");
            }
            // Same payload: same bytes (checksums already right in the input).
            let L4::Udp { payload, .. } = p.l4 else {
                unreachable!()
            };
            replace_udp_payload(&frame, &p, payload, &mut out).unwrap();
            assert_eq!(out, frame);
        }
        assert!(out.ends_with(&[0xde, 0xad, 0xbe, 0xef]) || !eth.is_empty());
        let p = decode(1, &eth).unwrap();
        replace_udp_payload(&eth, &p, b"x", &mut out).unwrap();
        assert!(out.ends_with(&[0xde, 0xad, 0xbe, 0xef]), "trailer kept");

        // Errors.
        let tcp = tcp_packet("10.0.0.1:1", "10.0.0.2:2", 1, ACK, b"x");
        let p = decode(101, &tcp).unwrap();
        assert_eq!(
            replace_udp_payload(&tcp, &p, b"", &mut out),
            Err(DecodeError::NotUdp)
        );
        let p = decode(101, &v4opts).unwrap();
        let e = replace_udp_payload(&v4opts, &p, &vec![0; 70_000], &mut out).unwrap_err();
        assert_eq!(
            e,
            DecodeError::PayloadTooLarge {
                len: 70_000,
                max: 65_535 - 24 - 8
            }
        );
        assert!(replace_udp_payload(&v4opts[..30], &p, b"", &mut out).is_err());
        assert!(replace_udp_payload(&v6ext, &p, b"", &mut out).is_err());
    }

    #[test]
    fn rewritten_frames_round_trip_with_adjusted_lengths() {
        let a = udp_packet("10.0.0.1:5060", "10.0.0.2:5060", &[1; 100]);
        let input = pcap(false, false, 101, &[(1, &a), (2, &a)]);
        let mut r = CaptureReader::new(&input[..]).unwrap();
        let mut w = CaptureWriter::new(Vec::new(), &r).unwrap();
        let mut buf = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            let p = decode(f.linktype, f.data).unwrap();
            replace_udp_payload(f.data, &p, &[2; 90], &mut buf).unwrap();
            w.write_frame(&f, &buf).unwrap();
        }
        let out = w.finish().unwrap();
        let (_, frames) = read_all(&out);
        assert_eq!(frames.len(), 2);
        for f in frames {
            assert_eq!(f.4.len(), a.len() - 10);
            assert_eq!(f.5 as usize, a.len() - 10);
            check_udp(&f.4, 101, &[2; 90]);
        }
    }
}

//! RTCP (RFC 3550 §6): SR, RR, SDES (CNAME) and BYE, built into a compound packet and
//! parsed without allocating; round-trip time from LSR/DLSR (§6.4.1).

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RtcpError {
    #[error("RTCP packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("RTCP version {0}, expected 2")]
    Version(u8),
    #[error("RTCP length field runs past the datagram")]
    Truncated,
}

/// Packet types (§12.1).
pub const SR: u8 = 200;
pub const RR: u8 = 201;
pub const SDES: u8 = 202;
pub const BYE: u8 = 203;

/// SDES item type of the canonical name (§6.5.1).
const CNAME: u8 = 1;
const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;
/// The 5-bit count field of the common header.
const MAX_COUNT: usize = 31;

/// One reception report block (§6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire.
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from this source.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// Sender information of an SR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp.
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// One packet of a compound RTCP datagram, borrowing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rtcp<'a> {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: Reports<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Reports<'a>,
    },
    /// The first chunk's SSRC and CNAME (other items and chunks are skipped).
    Sdes {
        ssrc: u32,
        cname: Option<&'a [u8]>,
    },
    Bye {
        ssrcs: &'a [u8],
    },
    /// Any other packet type (APP, feedback, XR): skipped, counted by the caller.
    Other {
        packet_type: u8,
    },
}

/// The report blocks of an SR/RR, decoded on iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reports<'a> {
    raw: &'a [u8],
}

impl<'a> Iterator for Reports<'a> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.raw.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        self.raw = rest;
        let word =
            |i: usize| u32::from_be_bytes([block[i], block[i + 1], block[i + 2], block[i + 3]]);
        // Sign-extend the 24-bit count by shifting it to the top of an i32 and back.
        let cumulative_lost = ((word(4) << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: word(0),
            fraction_lost: block[4],
            cumulative_lost,
            highest_sequence: word(8),
            jitter: word(12),
            lsr: word(16),
            dlsr: word(20),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.raw.len() / REPORT_BLOCK_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Reports<'_> {}

/// The packets of a compound datagram; stops at the first malformed one (which it
/// yields as an error).
pub fn parse_compound(buf: &[u8]) -> impl Iterator<Item = Result<Rtcp<'_>, RtcpError>> {
    Compound { rest: buf }
}

struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<Rtcp<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = split_packet(self.rest).and_then(|(packet, rest)| {
            self.rest = rest;
            decode(packet)
        });
        if item.is_err() {
            // Nothing after a malformed packet can be trusted to start on a boundary.
            self.rest = &[];
        }
        Some(item)
    }
}

/// The first packet (header included, padding removed) and what follows it.
fn split_packet(buf: &[u8]) -> Result<(Packet<'_>, &[u8]), RtcpError> {
    let Some(header) = buf.first_chunk::<4>() else {
        return Err(RtcpError::TooShort(buf.len()));
    };
    let version = header[0] >> 6;
    if version != 2 {
        return Err(RtcpError::Version(version));
    }
    let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let (whole, rest) = buf
        .split_at_checked((words + 1) * 4)
        .ok_or(RtcpError::Truncated)?;
    let mut body = whole.get(4..).unwrap_or_default();
    if header[0] & 0x20 != 0 {
        // The last octet counts the padding, itself included (§6.4.1).
        let count = usize::from(body.last().copied().unwrap_or(0));
        let keep = body
            .len()
            .checked_sub(count)
            .filter(|_| count > 0)
            .ok_or(RtcpError::Truncated)?;
        body = body.get(..keep).unwrap_or_default();
    }
    let packet = Packet {
        count: usize::from(header[0] & 0x1f),
        packet_type: header[1],
        len: whole.len(),
        body,
    };
    Ok((packet, rest))
}

struct Packet<'a> {
    count: usize,
    packet_type: u8,
    /// On the wire, header and padding included (for error messages).
    len: usize,
    body: &'a [u8],
}

fn decode(p: Packet<'_>) -> Result<Rtcp<'_>, RtcpError> {
    let too_short = RtcpError::TooShort(p.len);
    match p.packet_type {
        SR => {
            let (ssrc, rest) = read_u32(p.body).ok_or(too_short.clone())?;
            let (info, rest) = rest
                .split_first_chunk::<SENDER_INFO_LEN>()
                .ok_or(too_short.clone())?;
            let word =
                |i: usize| u32::from_be_bytes([info[i], info[i + 1], info[i + 2], info[i + 3]]);
            let info = SenderInfo {
                ntp: u64::from(word(0)) << 32 | u64::from(word(4)),
                rtp_timestamp: word(8),
                packets: word(12),
                octets: word(16),
            };
            let raw = rest.get(..p.count * REPORT_BLOCK_LEN).ok_or(too_short)?;
            Ok(Rtcp::SenderReport {
                ssrc,
                info,
                reports: Reports { raw },
            })
        }
        RR => {
            let (ssrc, rest) = read_u32(p.body).ok_or(too_short.clone())?;
            let raw = rest.get(..p.count * REPORT_BLOCK_LEN).ok_or(too_short)?;
            Ok(Rtcp::ReceiverReport {
                ssrc,
                reports: Reports { raw },
            })
        }
        SDES => {
            if p.count == 0 {
                return Ok(Rtcp::Sdes {
                    ssrc: 0,
                    cname: None,
                });
            }
            let (ssrc, mut items) = read_u32(p.body).ok_or(too_short)?;
            let mut cname = None;
            // Items run until a null type octet; only the first chunk is read.
            while let Some((&kind, rest)) = items.split_first() {
                if kind == 0 {
                    break;
                }
                let (&len, rest) = rest.split_first().ok_or(RtcpError::Truncated)?;
                let (value, rest) = rest
                    .split_at_checked(usize::from(len))
                    .ok_or(RtcpError::Truncated)?;
                if kind == CNAME {
                    cname = Some(value);
                    break;
                }
                items = rest;
            }
            Ok(Rtcp::Sdes { ssrc, cname })
        }
        BYE => {
            let ssrcs = p.body.get(..p.count * 4).ok_or(too_short)?;
            Ok(Rtcp::Bye { ssrcs })
        }
        packet_type => Ok(Rtcp::Other { packet_type }),
    }
}

fn read_u32(buf: &[u8]) -> Option<(u32, &[u8])> {
    let (word, rest) = buf.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*word), rest))
}

/// The common header for a packet of `body_len` bytes after it (a multiple of 4).
fn write_header(out: &mut Vec<u8>, count: usize, packet_type: u8, body_len: usize) {
    debug_assert!(body_len.is_multiple_of(4) && count <= MAX_COUNT);
    out.push(0x80 | count as u8);
    out.push(packet_type);
    let words = u16::try_from(body_len / 4).unwrap_or(u16::MAX);
    out.extend_from_slice(&words.to_be_bytes());
}

fn write_blocks(out: &mut Vec<u8>, reports: &[ReportBlock]) {
    for r in reports {
        out.extend_from_slice(&r.ssrc.to_be_bytes());
        // §6.4.1: the 24-bit field saturates rather than wrapping.
        let lost = r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out.extend_from_slice(&(u32::from(r.fraction_lost) << 24 | lost).to_be_bytes());
        out.extend_from_slice(&r.highest_sequence.to_be_bytes());
        out.extend_from_slice(&r.jitter.to_be_bytes());
        out.extend_from_slice(&r.lsr.to_be_bytes());
        out.extend_from_slice(&r.dlsr.to_be_bytes());
    }
}

/// Append an SR (with up to 31 report blocks) to `out`.
pub fn write_sr(out: &mut Vec<u8>, ssrc: u32, info: &SenderInfo, reports: &[ReportBlock]) {
    let reports = reports.get(..MAX_COUNT).unwrap_or(reports);
    write_header(
        out,
        reports.len(),
        SR,
        4 + SENDER_INFO_LEN + reports.len() * REPORT_BLOCK_LEN,
    );
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&info.ntp.to_be_bytes());
    out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&info.packets.to_be_bytes());
    out.extend_from_slice(&info.octets.to_be_bytes());
    write_blocks(out, reports);
}

/// Append an RR to `out` (up to 31 report blocks; more are left out).
pub fn write_rr(out: &mut Vec<u8>, ssrc: u32, reports: &[ReportBlock]) {
    let reports = reports.get(..MAX_COUNT).unwrap_or(reports);
    write_header(out, reports.len(), RR, 4 + reports.len() * REPORT_BLOCK_LEN);
    out.extend_from_slice(&ssrc.to_be_bytes());
    write_blocks(out, reports);
}

/// Append an SDES with one chunk carrying a CNAME item (at most 255 bytes of it).
pub fn write_sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &[u8]) {
    let cname = cname.get(..255).unwrap_or(cname);
    // The item list ends with at least one null octet, then pads the chunk to a
    // 32-bit boundary (§6.5).
    let items = 2 + cname.len();
    let nulls = 4 - items % 4;
    write_header(out, 1, SDES, 4 + items + nulls);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(CNAME);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.extend(std::iter::repeat_n(0, nulls));
}

/// Append a BYE for one SSRC.
pub fn write_bye(out: &mut Vec<u8>, ssrc: u32) {
    write_header(out, 1, BYE, 4);
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// The middle 32 bits of a 64-bit NTP timestamp (the LSR format).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time (§6.4.1): `arrival` is the middle-32 NTP time the RR arrived;
/// None when LSR is 0 or the result would be negative.
pub fn round_trip(arrival: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    // The middle 32 bits wrap every 18 hours; a difference read as signed stays
    // right across the wrap and shows clock trouble as a negative value.
    let units = arrival.wrapping_sub(lsr).wrapping_sub(dlsr) as i32;
    let units = u64::try_from(units).ok()?;
    Some(Duration::from_nanos(units * 1_000_000_000 / 65_536))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32, cumulative_lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost,
            highest_sequence: 0x0001_0005,
            jitter: 42,
            lsr: 0x1234_5678,
            dlsr: 65_536,
        }
    }

    fn info() -> SenderInfo {
        SenderInfo {
            ntp: 0xe000_0001_8000_0000,
            rtp_timestamp: 160,
            packets: 7,
            octets: 1120,
        }
    }

    #[test]
    fn compound_round_trip() {
        let mut out = Vec::new();
        write_sr(&mut out, 1, &info(), &[block(2, 3), block(4, -5)]);
        assert_eq!(out.len(), 28 + 48);
        write_sdes_cname(&mut out, 1, b"user@host");
        write_rr(&mut out, 9, &[]);
        write_bye(&mut out, 1);
        assert_eq!(out.len() % 4, 0);
        let items: Vec<_> = parse_compound(&out).collect();
        assert_eq!(items.len(), 4);
        let Ok(Rtcp::SenderReport {
            ssrc: 1,
            info: i,
            reports,
        }) = items[0]
        else {
            panic!("{:?}", items[0]);
        };
        assert_eq!(i, info());
        assert_eq!(reports.len(), 2);
        assert_eq!(reports.collect::<Vec<_>>(), vec![block(2, 3), block(4, -5)]);
        assert_eq!(
            items[1],
            Ok(Rtcp::Sdes {
                ssrc: 1,
                cname: Some(&b"user@host"[..])
            })
        );
        let Ok(Rtcp::ReceiverReport { ssrc: 9, reports }) = items[2] else {
            panic!("{:?}", items[2]);
        };
        assert_eq!(reports.count(), 0);
        assert_eq!(
            items[3],
            Ok(Rtcp::Bye {
                ssrcs: &[0, 0, 0, 1][..]
            })
        );
        assert!(crate::media::rtp::is_rtcp(&out));
    }

    #[test]
    fn sdes_padding_per_cname_length() {
        for n in 0..=9 {
            let cname = vec![b'x'; n];
            let mut out = Vec::new();
            write_sdes_cname(&mut out, 7, &cname);
            assert_eq!(out.len() % 4, 0, "cname of {n}");
            assert_eq!(*out.last().unwrap(), 0);
            let items: Vec<_> = parse_compound(&out).collect();
            assert_eq!(
                items,
                vec![Ok(Rtcp::Sdes {
                    ssrc: 7,
                    cname: Some(&cname[..])
                })]
            );
        }
        let mut out = Vec::new();
        write_sdes_cname(&mut out, 7, &[b'y'; 300]);
        let Some(Ok(Rtcp::Sdes { cname: Some(c), .. })) = parse_compound(&out).next() else {
            panic!();
        };
        assert_eq!(c.len(), 255);
    }

    #[test]
    fn at_most_31_blocks() {
        let blocks = vec![block(1, 0); 40];
        let mut out = Vec::new();
        write_rr(&mut out, 1, &blocks);
        write_sr(&mut out, 1, &info(), &blocks);
        let counts: Vec<_> = parse_compound(&out)
            .map(|r| match r.unwrap() {
                Rtcp::ReceiverReport { reports, .. } | Rtcp::SenderReport { reports, .. } => {
                    reports.count()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(counts, vec![31, 31]);
    }

    #[test]
    fn cumulative_lost_is_24_bit_signed_and_saturates() {
        let mut out = Vec::new();
        write_rr(
            &mut out,
            1,
            &[
                block(1, -1),
                block(2, 0x7f_ffff),
                block(3, i32::MAX),
                block(4, i32::MIN),
            ],
        );
        assert_eq!(&out[12..16], &[25, 0xff, 0xff, 0xff]);
        let Some(Ok(Rtcp::ReceiverReport { reports, .. })) = parse_compound(&out).next() else {
            panic!();
        };
        let lost: Vec<_> = reports.map(|b| b.cumulative_lost).collect();
        assert_eq!(lost, vec![-1, 0x7f_ffff, 0x7f_ffff, -0x80_0000]);
    }

    #[test]
    fn other_types_padding_and_sdes_without_cname() {
        let mut out = vec![0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e'];
        // SDES with a NOTE item only, then padding of 4 on an RR.
        out.extend_from_slice(&[0x81, 202, 0, 2, 0, 0, 0, 5, 7, 1, b'z', 0]);
        out.extend_from_slice(&[0xa0, 201, 0, 2, 0, 0, 0, 6, 0, 0, 0, 4]);
        let items: Vec<_> = parse_compound(&out).collect();
        assert_eq!(
            items,
            vec![
                Ok(Rtcp::Other { packet_type: 204 }),
                Ok(Rtcp::Sdes {
                    ssrc: 5,
                    cname: None
                }),
                Ok(Rtcp::ReceiverReport {
                    ssrc: 6,
                    reports: Reports { raw: &[] }
                }),
            ]
        );
        // An SDES without chunks.
        let items: Vec<_> = parse_compound(&[0x80, 202, 0, 0]).collect();
        assert_eq!(
            items,
            vec![Ok(Rtcp::Sdes {
                ssrc: 0,
                cname: None
            })]
        );
    }

    #[test]
    fn malformed_stops_after_one_error() {
        let mut good = Vec::new();
        write_bye(&mut good, 3);
        let cases: &[(&[u8], RtcpError)] = &[
            (&[0x40, 201, 0, 0], RtcpError::Version(1)),
            (&[0x80, 201, 0, 9], RtcpError::Truncated),
            // RR announcing one block that is not there.
            (&[0x81, 201, 0, 1, 0, 0, 0, 1], RtcpError::TooShort(8)),
            // SR without its sender info.
            (&[0x80, 200, 0, 1, 0, 0, 0, 1], RtcpError::TooShort(8)),
            // BYE announcing two SSRCs, carrying one.
            (&[0x82, 203, 0, 1, 0, 0, 0, 1], RtcpError::TooShort(8)),
            // Padding count of zero and past the body.
            (&[0xa0, 201, 0, 1, 0, 0, 0, 0], RtcpError::Truncated),
            (&[0xa0, 201, 0, 1, 0, 0, 0, 9], RtcpError::Truncated),
            // SDES item running past the packet.
            (
                &[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'],
                RtcpError::Truncated,
            ),
            (&[0x81, 202, 0, 0], RtcpError::TooShort(4)),
        ];
        for (bad, err) in cases {
            let mut buf = good.clone();
            buf.extend_from_slice(bad);
            buf.extend_from_slice(&good);
            let items: Vec<_> = parse_compound(&buf).collect();
            assert_eq!(items.len(), 2, "{bad:?}");
            assert!(items[0].is_ok());
            assert_eq!(items[1].as_ref().unwrap_err(), err, "{bad:?}");
        }
        let mut buf = good.clone();
        buf.extend_from_slice(&[0x80, 201]);
        let items: Vec<_> = parse_compound(&buf).collect();
        assert_eq!(items[1], Err(RtcpError::TooShort(2)));
        assert_eq!(parse_compound(&[]).count(), 0);
    }

    #[test]
    fn rtt_from_lsr_and_dlsr() {
        // RFC 3550 §6.4.1's example: A = 0xb710_8000 (46864.500 s), LSR = 0xb705_2000
        // (46853.125 s), DLSR = 0x0005_4000 (5.250 s) → 6.125 s.
        assert_eq!(
            round_trip(0xb710_8000, 0xb705_2000, 0x0005_4000),
            Some(Duration::from_millis(6125))
        );
        assert_eq!(round_trip(0xb710_8000, 0, 0x0005_4000), None);
        assert_eq!(round_trip(0x1000, 0x1000, 1), None);
        assert_eq!(round_trip(0x1000, 0x1000, 0), Some(Duration::ZERO));
        // Across the wrap of the middle 32 bits.
        assert_eq!(
            round_trip(0x0000_8000, 0xffff_8000, 0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(ntp_middle(0x0001_0002_0003_0004), 0x0002_0003);
    }
}

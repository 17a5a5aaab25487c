//! Classic pcap encoding of SIP datagrams (`--trace FILE.pcap`). Pure encoding, no I/O:
//! the functions append to a caller-owned `Vec<u8>` so the load drivers can reuse one
//! buffer and leave the file writes to the trace writer thread ([`super::trace`]).
//!
//! The file uses the classic (not pcapng) format with microsecond timestamps, written
//! little-endian regardless of the host (readers detect the byte order from the magic).
//! Records are raw IP packets (`LINKTYPE_RAW`), so there is no fake link layer to get
//! wrong: each record is an IPv4 or IPv6 header, a UDP header and the SIP message. SIP
//! that went over a connection (TCP, and TLS or WebSocket, whose plaintext SIP is what
//! is recorded, as SIPp's text trace does) is written as one TCP segment per message
//! with sequence numbers that run on per connection and direction, so readers put the
//! stream together and decode it as SIP.
//! Wireshark, tshark and sngrep (libpcap) all read this combination.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// Link type "raw IP": the packet starts with an IPv4 or IPv6 header (told apart by the
/// version nibble).
pub const LINKTYPE_RAW: u32 = 101;

/// Largest record we ever write, which is also the value in the global header. Payloads
/// are truncated so that headers + payload fit, which keeps every IP length field valid
/// and keeps libpcap from truncating records longer than the declared snapshot length.
pub const SNAPLEN: u32 = 65535;

/// Microsecond-resolution magic (0xa1b23c4d would mean nanoseconds). Microseconds match
/// what SIPp's own traces show and every pcap reader, old libpcap included, accepts it.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;

/// Size of the file's global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Size of the per-record header (timestamp, captured length, original length).
pub const RECORD_HEADER_LEN: usize = 16;
const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;
const TCP_HEADER_LEN: usize = 20;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_TCP: u8 = 6;

/// The layer-4 header a record gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    Udp,
    /// A TCP segment with PSH|ACK: `seq` of its first byte, `ack` of the other
    /// direction's next byte.
    Tcp {
        seq: u32,
        ack: u32,
    },
}
const TTL: u8 = 64;

/// Append the 24-byte file header (pcap 2.4, no time zone offset, raw IP).
pub fn write_global_header(out: &mut Vec<u8>) {
    out.reserve(GLOBAL_HEADER_LEN);
    out.extend_from_slice(&MAGIC_MICROS.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes()); // version major
    out.extend_from_slice(&4u16.to_le_bytes()); // version minor
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone: timestamps are UTC
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs: always 0 in practice
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
}

/// Append one record holding a UDP datagram from `src` to `dst` carrying `payload`.
///
/// Both addresses IPv4 → an IPv4 packet; otherwise an IPv6 packet, with any IPv4 address
/// written as its v4-mapped form (`::ffff:a.b.c.d`) so one packet never mixes families.
/// Checksums (IPv4 header, UDP) are computed, so Wireshark shows no checksum errors even
/// with validation switched on. A payload that does not fit in one IP packet within
/// [`SNAPLEN`] is cut: the headers describe the cut datagram (so they stay consistent),
/// while the record's original length says how long the untruncated packet would have
/// been, which Wireshark shows as "bytes on wire" vs "bytes captured".
/// Times before 1970 are written as 0; never panics.
pub fn write_udp_record(
    out: &mut Vec<u8>,
    ts: SystemTime,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) {
    write_record(out, ts, src, dst, Segment::Udp, payload);
}

/// Like [`write_udp_record`], with the layer-4 header `seg` says.
pub fn write_record(
    out: &mut Vec<u8>,
    ts: SystemTime,
    src: SocketAddr,
    dst: SocketAddr,
    seg: Segment,
    payload: &[u8],
) {
    let (l4_len, proto) = match seg {
        Segment::Udp => (UDP_HEADER_LEN, IPPROTO_UDP),
        Segment::Tcp { .. } => (TCP_HEADER_LEN, IPPROTO_TCP),
    };
    let addrs = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Addrs::V4(s.octets(), d.octets()),
        (s, d) => Addrs::V6(as_v6(s).octets(), as_v6(d).octets()),
    };
    let ip_header_len = match addrs {
        Addrs::V4(..) => IPV4_HEADER_LEN,
        Addrs::V6(..) => IPV6_HEADER_LEN,
    };
    let max_payload = SNAPLEN as usize - ip_header_len - l4_len;
    let data = &payload[..payload.len().min(max_payload)];
    // Both fit in u16 thanks to the cut above.
    let udp_len = (l4_len + data.len()) as u16;
    let incl_len = (ip_header_len + usize::from(udp_len)) as u32;
    let orig_len =
        u32::try_from((ip_header_len + l4_len).saturating_add(payload.len())).unwrap_or(u32::MAX);

    let (secs, micros) = match ts.duration_since(UNIX_EPOCH) {
        // The classic format has 32-bit seconds: saturate past 2106 rather than wrap.
        Ok(d) => (
            u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
            d.subsec_micros(),
        ),
        Err(_) => (0, 0),
    };

    // One reservation for the whole record so the appends below never reallocate twice.
    out.reserve(RECORD_HEADER_LEN + incl_len as usize);
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&micros.to_le_bytes());
    out.extend_from_slice(&incl_len.to_le_bytes());
    out.extend_from_slice(&orig_len.to_le_bytes());

    // The UDP checksum covers a pseudo-header made of the IP addresses, the protocol and
    // the UDP length (RFC 768; RFC 8200 §8.1 for IPv6), then the UDP header and data.
    let pseudo_sum = match &addrs {
        Addrs::V4(s, d) => {
            let ip_total = (IPV4_HEADER_LEN as u16).saturating_add(udp_len);
            let mut ip = [0u8; IPV4_HEADER_LEN];
            ip[0] = 0x45; // version 4, header length 5 words (no options)
            ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
            // Identification 0 is fine for a datagram that may not be fragmented (RFC 6864).
            ip[6] = 0x40; // flags: DF
            ip[8] = TTL;
            ip[9] = proto;
            ip[12..16].copy_from_slice(s);
            ip[16..20].copy_from_slice(d);
            let header_checksum = checksum(&ip);
            ip[10..12].copy_from_slice(&header_checksum.to_be_bytes());
            out.extend_from_slice(&ip);
            let mut sum = ones_sum(0, s);
            sum = ones_sum(sum, d);
            ones_sum(sum, &[0, proto, (udp_len >> 8) as u8, udp_len as u8])
        }
        Addrs::V6(s, d) => {
            let mut ip = [0u8; IPV6_HEADER_LEN];
            ip[0] = 0x60; // version 6, traffic class 0, flow label 0
            ip[4..6].copy_from_slice(&udp_len.to_be_bytes()); // payload length
            ip[6] = proto; // next header
            ip[7] = TTL; // hop limit
            ip[8..24].copy_from_slice(s);
            ip[24..40].copy_from_slice(d);
            out.extend_from_slice(&ip);
            let mut sum = ones_sum(0, s);
            sum = ones_sum(sum, d);
            let len32 = u32::from(udp_len).to_be_bytes();
            ones_sum(
                sum,
                &[len32[0], len32[1], len32[2], len32[3], 0, 0, 0, proto],
            )
        }
    };

    if let Segment::Tcp { seq, ack } = seg {
        let mut tcp = [0u8; TCP_HEADER_LEN];
        tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
        tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4; // data offset: 5 words, no options
        tcp[13] = 0x18; // PSH | ACK
        tcp[14..16].copy_from_slice(&u16::MAX.to_be_bytes()); // window
        let mut sum = ones_sum(pseudo_sum, &tcp);
        sum = ones_sum(sum, data);
        let c = fold(sum);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        out.extend_from_slice(&tcp);
        out.extend_from_slice(data);
        return;
    }
    let mut udp = [0u8; UDP_HEADER_LEN];
    udp[0..2].copy_from_slice(&src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    let mut sum = ones_sum(pseudo_sum, &udp);
    sum = ones_sum(sum, data);
    let mut udp_checksum = fold(sum);
    // In UDP a transmitted 0 means "no checksum" (and is invalid over IPv6), so a
    // computed 0 is sent as its ones'-complement equivalent 0xffff.
    if udp_checksum == 0 {
        udp_checksum = 0xffff;
    }
    udp[6..8].copy_from_slice(&udp_checksum.to_be_bytes());
    out.extend_from_slice(&udp);
    out.extend_from_slice(data);
}

enum Addrs {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    fold(ones_sum(0, data))
}

/// Add `data`, read as big-endian 16-bit words, to a running sum. Only the last piece
/// of a checksummed area may have odd length (its last byte is padded with a zero).
/// The sum is kept unfolded in a u64: even 64 KB of 0xffffffff words cannot overflow it.
/// Whole 32-bit words are added at once (four times fewer steps than 16-bit words, and
/// the compiler vectorises it): since 2^16 ≡ 1 modulo 0xffff, a 32-bit word contributes
/// the same as its two 16-bit halves once the sum is folded.
pub(crate) fn ones_sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    match *words.remainder() {
        [a] => acc += u64::from(a) << 8,
        [a, b] => acc += u64::from(u16::from_be_bytes([a, b])),
        [a, b, c] => acc += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        _ => {}
    }
    acc
}

/// Fold the carries back in (end-around carry) and complement.
pub(crate) fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV6};
    use std::time::Duration;

    fn u16be(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    fn u32le(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn checksum_known_answers() {
        // The worked example of RFC 1071 §3: the sum is 0xddf2, the checksum its complement.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        // A commonly quoted IPv4 header (192.168.0.1 → 192.168.0.199, UDP, DF, TTL 64)
        // whose header checksum is 0xb861; computed with the checksum field zeroed.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        // With the checksum filled in, the header checks to zero (how receivers verify).
        hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
        // Odd length: the last byte is padded on the right.
        assert_eq!(checksum(&[0x12, 0x34, 0x56]), !(0x1234u16 + 0x5600));
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn global_header_fields() {
        let mut out = Vec::new();
        write_global_header(&mut out);
        assert_eq!(out.len(), GLOBAL_HEADER_LEN);
        assert_eq!(&out[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32le(&out, 16), 65535);
        assert_eq!(u32le(&out, 20), LINKTYPE_RAW);
    }

    #[test]
    fn ipv4_round_trip() {
        let src: SocketAddr = "10.1.2.3:5070".parse().unwrap();
        let dst: SocketAddr = "192.168.7.9:5060".parse().unwrap();
        let payload = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\nX"; // odd length
        let ts = UNIX_EPOCH + Duration::new(1_764_083_045, 123_456_789);
        let mut out = vec![0xee]; // existing content must be left alone
        write_udp_record(&mut out, ts, src, dst, payload);
        let r = &out[1..];
        assert_eq!(u32le(r, 0), 1_764_083_045);
        assert_eq!(u32le(r, 4), 123_456);
        let len = 20 + 8 + payload.len();
        assert_eq!(u32le(r, 8) as usize, len);
        assert_eq!(u32le(r, 12) as usize, len);
        assert_eq!(r.len(), RECORD_HEADER_LEN + len);
        let ip = &r[RECORD_HEADER_LEN..];
        assert_eq!(ip[0], 0x45);
        assert_eq!(u16be(ip, 2) as usize, len);
        assert_eq!(u16be(ip, 6), 0x4000);
        assert_eq!(ip[8], 64);
        assert_eq!(ip[9], 17);
        assert_eq!(checksum(&ip[..20]), 0, "IPv4 header checksum");
        assert_eq!(&ip[12..16], &[10, 1, 2, 3]);
        assert_eq!(&ip[16..20], &[192, 168, 7, 9]);
        let udp = &ip[20..];
        assert_eq!(u16be(udp, 0), 5070);
        assert_eq!(u16be(udp, 2), 5060);
        assert_eq!(u16be(udp, 4) as usize, 8 + payload.len());
        assert_eq!(&udp[8..], payload);
        // Verify the UDP checksum the way a receiver does: pseudo-header + segment sum to 0.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(udp);
        assert_eq!(checksum(&pseudo), 0, "UDP checksum");
        assert_ne!(u16be(udp, 6), 0);
    }

    #[test]
    fn ipv6_and_mixed_families() {
        let src: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let dst = SocketAddr::V4("127.0.0.1:5070".parse().unwrap());
        let payload = b"SIP/2.0 200 OK\r\n\r\n";
        let mut out = Vec::new();
        write_udp_record(&mut out, UNIX_EPOCH, src, dst, payload);
        let len = 40 + 8 + payload.len();
        assert_eq!(u32le(&out, 8) as usize, len);
        let ip = &out[RECORD_HEADER_LEN..];
        assert_eq!(ip.len(), len);
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16be(ip, 4) as usize, 8 + payload.len());
        assert_eq!(ip[6], 17);
        assert_eq!(ip[7], 64);
        let s = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
        let d = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
        assert_eq!(s, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(d.to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
        let udp = &ip[40..];
        assert_eq!(u16be(udp, 0), 5060);
        assert_eq!(u16be(udp, 2), 5070);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[8..40]);
        pseudo.extend_from_slice(&(udp.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        pseudo.extend_from_slice(udp);
        assert_eq!(
            checksum(&pseudo),
            0,
            "UDP checksum over the IPv6 pseudo-header"
        );

        // Both v6 (with scope id, which has no place in the header and is ignored).
        let a = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 3));
        let mut out = Vec::new();
        write_udp_record(&mut out, UNIX_EPOCH, a, a, b"");
        assert_eq!(out.len(), RECORD_HEADER_LEN + 48);
    }

    #[test]
    fn oversized_payload_is_cut_to_fit() {
        let big = vec![b'a'; 70_000];
        let v4: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let v6: SocketAddr = "[::1]:5".parse().unwrap();
        for (addr, ip_len) in [(v4, 20usize), (v6, 40)] {
            let mut out = Vec::new();
            write_udp_record(&mut out, UNIX_EPOCH, addr, addr, &big);
            assert_eq!(out.len(), RECORD_HEADER_LEN + 65535);
            assert_eq!(u32le(&out, 8), 65535);
            assert_eq!(u32le(&out, 12) as usize, ip_len + 8 + 70_000);
            let ip = &out[RECORD_HEADER_LEN..];
            assert_eq!(u16be(ip, ip_len + 4) as usize, 65535 - ip_len);
        }
        // Pre-1970 and far-future timestamps do not panic.
        let mut out = Vec::new();
        write_udp_record(&mut out, UNIX_EPOCH - Duration::from_secs(5), v4, v4, b"x");
        assert_eq!(u32le(&out, 0), 0);
        write_udp_record(
            &mut out,
            UNIX_EPOCH + Duration::from_secs(1 << 40),
            v4,
            v4,
            b"x",
        );
    }
}

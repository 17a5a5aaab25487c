//! Decoding a frame down to UDP or TCP without copying: link header (see [`super::link`]),
//! IPv4 (with options) or IPv6 (extension headers skipped), then the transport header.
//!
//! Lengths come from the IP header, so link-layer padding and trailers (Ethernet minimum
//! frame padding, FCS) are never taken for payload. A packet cut by the snap length is a
//! `Truncated` error rather than a partial payload, since nothing downstream (SIP
//! parsing, SRTP authentication) can use a partial one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::DecodeError;
use super::link::{IpHint, network_offset};

pub(crate) const IPPROTO_HOPOPTS: u8 = 0;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_ROUTING: u8 = 43;
pub(crate) const IPPROTO_FRAGMENT: u8 = 44;
pub(crate) const IPPROTO_AH: u8 = 51;
pub(crate) const IPPROTO_DSTOPTS: u8 = 60;
/// A chain of IPv6 extension headers longer than this is refused (real ones have 0–3).
const MAX_EXT_HEADERS: usize = 16;

/// A frame decoded down to its transport layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Offset of the IP header in the frame data (tunnels are not followed, so it is the
    /// only IP header decoded).
    pub ip_offset: usize,
    pub l4: L4<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4<'a> {
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
        /// Offset of the UDP payload in the frame data.
        payload_offset: usize,
    },
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &'a [u8],
    },
    /// An IP fragment: feed it to a [`super::Defragmenter`].
    Fragment,
    /// Another protocol (ICMP, SCTP, IP-in-IP, …).
    Other,
}

/// Fragment fields of an IP packet that is one piece of a larger datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frag {
    pub id: u32,
    /// Offset of this piece in the reassembled payload, in bytes.
    pub offset: usize,
    pub more: bool,
}

/// The IP layer of a frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpLayer<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ip_offset: usize,
    /// Upper-layer protocol: the IPv4 protocol, or the next header after the IPv6
    /// extension headers (for an IPv6 fragment: the fragment header's next header).
    pub proto: u8,
    /// Offset of the upper-layer data (for a fragment: of the fragment's data).
    pub payload_offset: usize,
    /// The upper-layer data, bounded by the IP length.
    pub payload: &'a [u8],
    pub frag: Option<Frag>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decode a frame of the given link type down to UDP/TCP.
pub fn decode(linktype: u32, data: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let ip = ip_layer(linktype, data)?;
    let l4 = if ip.frag.is_some() {
        L4::Fragment
    } else {
        transport(ip.proto, ip.payload, ip.payload_offset)?
    };
    Ok(Packet {
        src: ip.src,
        dst: ip.dst,
        ip_offset: ip.ip_offset,
        l4,
    })
}

/// Link and IP layers of a frame.
pub(crate) fn ip_layer(linktype: u32, data: &[u8]) -> Result<IpLayer<'_>, DecodeError> {
    let (at, hint) = network_offset(linktype, data)?;
    ip_at(data, at, hint)
}

fn ip_at(data: &[u8], at: usize, hint: IpHint) -> Result<IpLayer<'_>, DecodeError> {
    let first = *data.get(at).ok_or(DecodeError::Truncated {
        layer: "IP",
        offset: at,
    })?;
    let version = first >> 4;
    if hint.is_some_and(|h| h != version) || !(version == 4 || version == 6) {
        return Err(DecodeError::Malformed {
            layer: "IP",
            offset: at,
            why: "IP version does not match the link layer's protocol",
        });
    }
    if version == 4 {
        ipv4(data, at)
    } else {
        ipv6(data, at)
    }
}

fn ipv4(data: &[u8], at: usize) -> Result<IpLayer<'_>, DecodeError> {
    let h = data.get(at..).unwrap_or(&[]);
    let truncated = DecodeError::Truncated {
        layer: "IPv4",
        offset: at,
    };
    if h.len() < 20 {
        return Err(truncated);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(DecodeError::Malformed {
            layer: "IPv4",
            offset: at,
            why: "header length below 20 bytes",
        });
    }
    let total = usize::from(be16(h, 2).unwrap_or(0));
    // Total length 0 is what captures of TCP segmentation offload show: take the frame.
    let total = if total == 0 { h.len() } else { total };
    if total < ihl {
        return Err(DecodeError::Malformed {
            layer: "IPv4",
            offset: at,
            why: "total length shorter than the header",
        });
    }
    if h.len() < total {
        return Err(truncated);
    }
    let flags_frag = be16(h, 6).unwrap_or(0);
    let more = flags_frag & 0x2000 != 0;
    let offset = usize::from(flags_frag & 0x1fff) * 8;
    let frag = (more || offset != 0).then(|| Frag {
        id: u32::from(be16(h, 4).unwrap_or(0)),
        offset,
        more,
    });
    let src: [u8; 4] = h[12..16].try_into().unwrap_or_default();
    let dst: [u8; 4] = h[16..20].try_into().unwrap_or_default();
    Ok(IpLayer {
        src: IpAddr::V4(Ipv4Addr::from(src)),
        dst: IpAddr::V4(Ipv4Addr::from(dst)),
        ip_offset: at,
        proto: h[9],
        payload_offset: at + ihl,
        payload: &h[ihl..total],
        frag,
    })
}

fn ipv6(data: &[u8], at: usize) -> Result<IpLayer<'_>, DecodeError> {
    let h = data.get(at..).unwrap_or(&[]);
    if h.len() < 40 {
        return Err(DecodeError::Truncated {
            layer: "IPv6",
            offset: at,
        });
    }
    let payload_len = usize::from(be16(h, 4).unwrap_or(0));
    // 0: a jumbogram or a segmentation-offload capture; take the frame.
    let end = if payload_len == 0 {
        h.len()
    } else {
        40 + payload_len
    };
    if h.len() < end {
        return Err(DecodeError::Truncated {
            layer: "IPv6",
            offset: at,
        });
    }
    let src: [u8; 16] = h[8..24].try_into().unwrap_or_default();
    let dst: [u8; 16] = h[24..40].try_into().unwrap_or_default();
    let packet = &h[..end];
    let (proto, pos, frag) = ipv6_ext_headers(packet, h[6], 40, at)?;
    Ok(IpLayer {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        ip_offset: at,
        proto,
        payload_offset: at + pos,
        payload: &packet[pos..],
        frag,
    })
}

/// Walk IPv6 extension headers in `packet` from `pos`, starting with next header
/// `next`. Returns the upper-layer protocol, its offset and the fragment fields if a
/// fragment header says this is one piece of a datagram (an "atomic" fragment, offset 0
/// without more fragments, is not: RFC 6946). `base` is added to error offsets.
pub(crate) fn ipv6_ext_headers(
    packet: &[u8],
    mut next: u8,
    mut pos: usize,
    base: usize,
) -> Result<(u8, usize, Option<Frag>), DecodeError> {
    for _ in 0..MAX_EXT_HEADERS {
        let truncated = DecodeError::Truncated {
            layer: "IPv6 extension",
            offset: base + pos,
        };
        let len = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                (usize::from(*packet.get(pos + 1).ok_or(truncated.clone())?) + 1) * 8
            }
            IPPROTO_AH => (usize::from(*packet.get(pos + 1).ok_or(truncated.clone())?) + 2) * 4,
            IPPROTO_FRAGMENT => {
                let field = be16(packet, pos + 2).ok_or(truncated.clone())?;
                let id = be32(packet, pos + 4).ok_or(truncated.clone())?;
                let offset = usize::from(field >> 3) * 8;
                let more = field & 1 != 0;
                if offset != 0 || more {
                    let proto = packet[pos];
                    return Ok((proto, pos + 8, Some(Frag { id, offset, more })));
                }
                8
            }
            _ => return Ok((next, pos, None)),
        };
        if packet.len() < pos + len {
            return Err(truncated);
        }
        next = packet[pos];
        pos += len;
    }
    Err(DecodeError::Malformed {
        layer: "IPv6",
        offset: base + pos,
        why: "too many extension headers",
    })
}

/// The transport layer from the IP payload (`offset`: where it is in the frame).
pub(crate) fn transport(proto: u8, payload: &[u8], offset: usize) -> Result<L4<'_>, DecodeError> {
    match proto {
        IPPROTO_UDP => {
            let (src_port, dst_port, body) = udp(payload, offset)?;
            Ok(L4::Udp {
                src_port,
                dst_port,
                payload: body,
                payload_offset: offset + 8,
            })
        }
        IPPROTO_TCP => {
            let t = tcp(payload, offset)?;
            Ok(L4::Tcp {
                src_port: t.src_port,
                dst_port: t.dst_port,
                seq: t.seq,
                syn: t.syn,
                fin: t.fin,
                rst: t.rst,
                payload: t.payload,
            })
        }
        _ => Ok(L4::Other),
    }
}

/// Ports and payload of a UDP datagram (`offset` only for error messages).
pub(crate) fn udp(d: &[u8], offset: usize) -> Result<(u16, u16, &[u8]), DecodeError> {
    if d.len() < 8 {
        return Err(DecodeError::Truncated {
            layer: "UDP",
            offset,
        });
    }
    let len = usize::from(be16(d, 4).unwrap_or(0));
    // Length 0 only occurs in IPv6 jumbograms (RFC 2675): the IP length rules.
    let len = if len == 0 { d.len() } else { len };
    if len < 8 {
        return Err(DecodeError::Malformed {
            layer: "UDP",
            offset,
            why: "length below 8",
        });
    }
    let body = d.get(8..len).ok_or(DecodeError::Truncated {
        layer: "UDP",
        offset,
    })?;
    Ok((be16(d, 0).unwrap_or(0), be16(d, 2).unwrap_or(0), body))
}

pub(crate) struct TcpHeader<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

pub(crate) fn tcp(d: &[u8], offset: usize) -> Result<TcpHeader<'_>, DecodeError> {
    if d.len() < 20 {
        return Err(DecodeError::Truncated {
            layer: "TCP",
            offset,
        });
    }
    let header_len = usize::from(d[12] >> 4) * 4;
    if header_len < 20 {
        return Err(DecodeError::Malformed {
            layer: "TCP",
            offset,
            why: "data offset below 5 words",
        });
    }
    let payload = d.get(header_len..).ok_or(DecodeError::Truncated {
        layer: "TCP",
        offset,
    })?;
    let flags = d[13];
    Ok(TcpHeader {
        src_port: be16(d, 0).unwrap_or(0),
        dst_port: be16(d, 2).unwrap_or(0),
        seq: be32(d, 4).unwrap_or(0),
        fin: flags & 0x01 != 0,
        syn: flags & 0x02 != 0,
        rst: flags & 0x04 != 0,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::{DecodeError, IpAddr, L4, Packet, decode};
    use crate::capture::link::*;
    use crate::capture::testutil::*;

    fn udp_of(p: &Packet<'_>) -> (u16, u16, Vec<u8>, usize) {
        match p.l4 {
            L4::Udp {
                src_port,
                dst_port,
                payload,
                payload_offset,
            } => (src_port, dst_port, payload.to_vec(), payload_offset),
            other => panic!("not UDP: {other:?}"),
        }
    }

    #[test]
    fn every_link_type() {
        let v4 = udp_packet("10.0.0.1:5060", "10.0.0.2:5070", b"INVITE");
        let v6 = udp_packet("[2001:db8::1]:5060", "[2001:db8::2]:5070", b"INVITE");
        let mut cases: Vec<(u32, Vec<u8>, usize)> = Vec::new();
        for ip in [&v4, &v6] {
            let et = ethertype_of(ip);
            cases.push((LINKTYPE_ETHERNET, ether(&[], et, ip), 14));
            cases.push((LINKTYPE_ETHERNET, ether(&[0x8100], et, ip), 18));
            cases.push((LINKTYPE_ETHERNET, ether(&[0x88a8, 0x8100], et, ip), 22));
            cases.push((LINKTYPE_ETHERNET, ether(&[0x9100, 0x8100], et, ip), 22));
            cases.push((
                LINKTYPE_ETHERNET,
                ether(&[0x9100, 0x88a8, 0x8100], et, ip),
                26,
            ));
            cases.push((LINKTYPE_LINUX_SLL, sll(ip), 16));
            cases.push((LINKTYPE_LINUX_SLL2, sll2(ip), 20));
            for raw in [LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_RAW_14] {
                cases.push((raw, ip.to_vec(), 0));
            }
        }
        cases.push((LINKTYPE_IPV4, v4.clone(), 0));
        cases.push((LINKTYPE_IPV6, v6.clone(), 0));
        for be in [false, true] {
            cases.push((LINKTYPE_NULL, null(2, be, &v4), 4));
            for fam in [10, 24, 28, 30] {
                cases.push((LINKTYPE_NULL, null(fam, be, &v6), 4));
            }
        }
        cases.push((LINKTYPE_LOOP, null(2, true, &v4), 4));
        cases.push((LINKTYPE_LOOP, null(24, true, &v6), 4));
        for (linktype, frame, ip_at) in cases {
            let p = decode(linktype, &frame).unwrap_or_else(|e| panic!("{linktype}: {e}"));
            assert_eq!(p.ip_offset, ip_at, "link type {linktype}");
            let (s, d, payload, at) = udp_of(&p);
            assert_eq!((s, d), (5060, 5070));
            assert_eq!(payload, b"INVITE");
            assert_eq!(&frame[at..at + 6], b"INVITE");
            let want_v4 = frame.len() - ip_at == v4.len();
            assert_eq!(p.src.is_ipv4(), want_v4);
        }
        let p = decode(LINKTYPE_RAW, &v6).unwrap();
        assert_eq!(p.src, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(p.dst, "2001:db8::2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let ip = udp_packet("10.0.0.1:1", "10.0.0.2:2", b"a");
        let mut frame = ether(&[], 0x0800, &ip);
        frame.resize(64, 0xee); // minimum frame padding + FCS
        let (_, _, payload, _) = udp_of(&decode(LINKTYPE_ETHERNET, &frame).unwrap());
        assert_eq!(payload, b"a");
    }

    #[test]
    fn ipv4_options_and_ipv6_extension_headers() {
        let s = sa("10.1.1.1:1000");
        let d = sa("10.2.2.2:2000");
        let seg = udp(s, d, b"opts");
        // Router alert option (4 bytes) → IHL 6.
        let ip = ipv4(17, s.ip(), d.ip(), 7, 0, &[0x94, 4, 0, 0], &seg);
        let p = decode(LINKTYPE_RAW, &ip).unwrap();
        assert_eq!(udp_of(&p).3, 24 + 8);
        assert_eq!(udp_of(&p).2, b"opts");

        let s6 = sa("[fe80::1]:1000");
        let d6 = sa("[fe80::2]:2000");
        let seg6 = udp(s6, d6, b"ext");
        // hop-by-hop (8) → routing (24, type 0 with one address, segments left 0) →
        // destination options (16) → atomic fragment header (8) → UDP.
        let mut rest = vec![43, 0, 1, 4, 0, 0, 0, 0];
        rest.extend_from_slice(&[60, 2, 0, 0, 0, 0, 0, 0]);
        rest.extend_from_slice(&[0; 16]);
        rest.extend_from_slice(&[44, 1, 1, 12]);
        rest.extend_from_slice(&[0; 12]);
        rest.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 9]);
        let ext_len = rest.len();
        rest.extend_from_slice(&seg6);
        let ip6 = ipv6(0, s6.ip(), d6.ip(), &rest);
        let p = decode(LINKTYPE_RAW, &ip6).unwrap();
        let (sp, dp, payload, at) = udp_of(&p);
        assert_eq!((sp, dp, payload.as_slice()), (1000, 2000, &b"ext"[..]));
        assert_eq!(at, 40 + ext_len + 8);
    }

    #[test]
    fn fragments_are_flagged() {
        let (s, d) = (sa("10.0.0.1:1"), sa("10.0.0.2:2"));
        let first = ipv4(17, s.ip(), d.ip(), 9, 0x2000, &[], &[0; 16]);
        let later = ipv4(17, s.ip(), d.ip(), 9, 2, &[], &[0; 16]);
        for f in [first, later] {
            assert_eq!(decode(LINKTYPE_RAW, &f).unwrap().l4, L4::Fragment);
        }
        let (s6, d6) = (sa("[::1]:1"), sa("[::2]:2"));
        let mut rest = vec![17, 0, 0, 1, 0, 0, 0, 5]; // offset 0, more fragments
        rest.extend_from_slice(&[0; 16]);
        let f6 = ipv6(44, s6.ip(), d6.ip(), &rest);
        assert_eq!(decode(LINKTYPE_RAW, &f6).unwrap().l4, L4::Fragment);
    }

    #[test]
    fn tcp_fields() {
        let ip = tcp_packet(
            "10.0.0.1:5060",
            "10.0.0.2:40000",
            0xfffffff0,
            SYN | ACK | FIN,
            b"data",
        );
        let p = decode(LINKTYPE_RAW, &ip).unwrap();
        assert_eq!(
            p.l4,
            L4::Tcp {
                src_port: 5060,
                dst_port: 40000,
                seq: 0xfffffff0,
                syn: true,
                fin: true,
                rst: false,
                payload: b"data"
            }
        );
        let ip = tcp_packet("[::1]:1", "[::2]:2", 5, RST, b"");
        assert!(matches!(
            decode(LINKTYPE_RAW, &ip).unwrap().l4,
            L4::Tcp { rst: true, .. }
        ));
        let icmp = ipv4(
            1,
            sa("1.1.1.1:0").ip(),
            sa("2.2.2.2:0").ip(),
            1,
            0,
            &[],
            &[8, 0, 0, 0],
        );
        assert_eq!(decode(LINKTYPE_RAW, &icmp).unwrap().l4, L4::Other);
    }

    #[test]
    fn errors() {
        let ip = udp_packet("10.0.0.1:1", "10.0.0.2:2", b"abcdef");
        assert_eq!(
            decode(147, &ip).unwrap_err(),
            DecodeError::UnsupportedLinkType(147)
        );
        let arp = ether(&[], 0x0806, &[0; 28]);
        assert_eq!(
            decode(LINKTYPE_ETHERNET, &arp).unwrap_err().to_string(),
            "not an IP packet (ethertype 0x0806)"
        );
        // Cut by the snap length.
        let e = decode(LINKTYPE_RAW, &ip[..ip.len() - 2]).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Truncated {
                layer: "IPv4",
                offset: 0
            }
        );
        // Ethertype says IPv6 but the packet is IPv4.
        assert!(decode(LINKTYPE_ETHERNET, &ether(&[], 0x86dd, &ip)).is_err());
        // UDP length beyond the IP payload.
        let mut bad = ip.clone();
        bad[24..26].copy_from_slice(&100u16.to_be_bytes());
        assert!(matches!(
            decode(LINKTYPE_RAW, &bad),
            Err(DecodeError::Truncated { layer: "UDP", .. })
        ));
        // Too many VLAN tags.
        let tags = [0x8100; 9];
        assert!(decode(LINKTYPE_ETHERNET, &ether(&tags, 0x0800, &ip)).is_err());
        // Loopback family that is not IP.
        assert!(decode(LINKTYPE_NULL, &null(7, false, &ip)).is_err());
        for n in 0..ip.len() {
            let _ = decode(LINKTYPE_RAW, &ip[..n]);
            let _ = decode(LINKTYPE_ETHERNET, &ip[..n]);
        }
    }
}

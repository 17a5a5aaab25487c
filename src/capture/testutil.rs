//! Builders of tiny packets and captures for the tests: IP/UDP/TCP packets with valid
//! checksums, link headers of every supported type, and pcap/pcapng files in memory.

use std::net::{IpAddr, SocketAddr};

use crate::report::pcap::{checksum, fold, ones_sum};

pub(crate) fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An IPv4 header (with `options`, a multiple of 4 bytes) + `payload`, checksum set.
pub(crate) fn ipv4(
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    id: u16,
    frag_field: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 addresses expected")
    };
    let ihl = 20 + options.len();
    let total = (ihl + payload.len()) as u16;
    let mut p = vec![0x40 | (ihl / 4) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag_field.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(options);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 header with next header `next` followed by `rest` (extension headers and
/// upper layer).
pub(crate) fn ipv6(next: u8, src: IpAddr, dst: IpAddr, rest: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("IPv6 addresses expected")
    };
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(rest.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(rest);
    p
}

/// A UDP header + payload with its checksum over the pseudo-header of `src`/`dst`.
pub(crate) fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = Vec::new();
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = udp_checksum(src.ip(), dst.ip(), &u);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// The checksum a UDP segment (checksum field zeroed) should carry.
pub(crate) fn udp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    let mut acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let acc = ones_sum(ones_sum(0, &s.octets()), &d.octets());
            ones_sum(acc, &[0, 17])
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let acc = ones_sum(ones_sum(0, &s.octets()), &d.octets());
            ones_sum(acc, &[0, 0, 0, 17])
        }
        _ => panic!("mixed families"),
    };
    acc = ones_sum(acc, &(segment.len() as u32).to_be_bytes());
    match fold(ones_sum(acc, segment)) {
        0 => 0xffff,
        c => c,
    }
}

/// A whole IP packet carrying a UDP datagram.
pub(crate) fn udp_packet(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let (s, d) = (sa(src), sa(dst));
    let seg = udp(s, d, payload);
    match s.ip() {
        IpAddr::V4(_) => ipv4(17, s.ip(), d.ip(), 1, 0x4000, &[], &seg),
        IpAddr::V6(_) => ipv6(17, s.ip(), d.ip(), &seg),
    }
}

pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const ACK: u8 = 0x10;

/// A TCP header (no options, checksum not computed) + payload.
pub(crate) fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

pub(crate) fn tcp_packet(src: &str, dst: &str, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (s, d) = (sa(src), sa(dst));
    let seg = tcp(s.port(), d.port(), seq, flags, payload);
    match s.ip() {
        IpAddr::V4(_) => ipv4(6, s.ip(), d.ip(), 1, 0x4000, &[], &seg),
        IpAddr::V6(_) => ipv6(6, s.ip(), d.ip(), &seg),
    }
}

/// Ethernet frame: MACs, the given VLAN tag protocol ids (each with TCI 0x0064), then the
/// ethertype and payload.
pub(crate) fn ether(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for t in tags {
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(&0x0064u16.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Ethertype for an IP packet by its version nibble.
pub(crate) fn ethertype_of(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 4 { 0x0800 } else { 0x86dd }
}

pub(crate) fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&ethertype_of(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

pub(crate) fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = ethertype_of(ip).to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

/// Loopback header with `family` in the given byte order.
pub(crate) fn null(family: u32, big_endian: bool, ip: &[u8]) -> Vec<u8> {
    let mut f = if big_endian {
        family.to_be_bytes().to_vec()
    } else {
        family.to_le_bytes().to_vec()
    };
    f.extend_from_slice(ip);
    f
}

fn u32b(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn u16b(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// A classic pcap file.
pub(crate) fn pcap(nanos: bool, be: bool, linktype: u32, frames: &[(u64, &[u8])]) -> Vec<u8> {
    let mut f = Vec::new();
    u32b(&mut f, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be);
    u16b(&mut f, 2, be);
    u16b(&mut f, 4, be);
    u32b(&mut f, 0, be);
    u32b(&mut f, 0, be);
    u32b(&mut f, 65535, be);
    u32b(&mut f, linktype, be);
    for (ts, data) in frames {
        u32b(&mut f, (ts / 1_000_000_000) as u32, be);
        let sub = ts % 1_000_000_000;
        u32b(&mut f, if nanos { sub } else { sub / 1000 } as u32, be);
        u32b(&mut f, data.len() as u32, be);
        u32b(&mut f, data.len() as u32, be);
        f.extend_from_slice(data);
    }
    f
}

/// pcapng built block by block; each section in its own byte order.
#[derive(Default)]
pub(crate) struct Ng {
    pub out: Vec<u8>,
    be: bool,
}

impl Ng {
    pub(crate) fn new(be: bool) -> Ng {
        let mut ng = Ng::default();
        ng.shb(be);
        ng
    }

    /// Any block: type, length, body (padded), length.
    pub(crate) fn block(&mut self, ty: u32, body: &[u8]) -> &mut Self {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let be = self.be;
        u32b(&mut self.out, ty, be);
        u32b(&mut self.out, len, be);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(&[0; 3][..pad]);
        u32b(&mut self.out, len, be);
        self
    }

    pub(crate) fn shb(&mut self, be: bool) -> &mut Self {
        self.be = be;
        let mut body = Vec::new();
        u32b(&mut body, 0x1A2B_3C4D, be);
        u16b(&mut body, 1, be);
        u16b(&mut body, 0, be);
        // A section length that is not -1, which the writer must not copy.
        body.extend_from_slice(&[0x10, 0, 0, 0, 0, 0, 0, 0]);
        // shb_userappl option, to check that options are copied.
        u16b(&mut body, 4, be);
        u16b(&mut body, 4, be);
        body.extend_from_slice(b"test");
        u16b(&mut body, 0, be);
        u16b(&mut body, 0, be);
        self.block(0x0A0D_0D0A, &body)
    }

    /// IDB with optional `if_tsresol` and `if_tsoffset`.
    pub(crate) fn idb(
        &mut self,
        linktype: u16,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> &mut Self {
        let be = self.be;
        let mut body = Vec::new();
        u16b(&mut body, linktype, be);
        u16b(&mut body, 0, be);
        u32b(&mut body, 0, be); // snaplen 0: no limit
        if let Some(r) = tsresol {
            u16b(&mut body, 9, be);
            u16b(&mut body, 1, be);
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            u16b(&mut body, 14, be);
            u16b(&mut body, 8, be);
            body.extend_from_slice(&if be { o.to_be_bytes() } else { o.to_le_bytes() });
        }
        u16b(&mut body, 0, be);
        u16b(&mut body, 0, be);
        self.block(1, &body)
    }

    pub(crate) fn epb(&mut self, iface: u32, units: u64, data: &[u8]) -> &mut Self {
        let be = self.be;
        let mut body = Vec::new();
        u32b(&mut body, iface, be);
        u32b(&mut body, (units >> 32) as u32, be);
        u32b(&mut body, units as u32, be);
        u32b(&mut body, data.len() as u32, be);
        u32b(&mut body, data.len() as u32, be);
        body.extend_from_slice(data);
        body.extend_from_slice(&[0; 3][..(4 - data.len() % 4) % 4]);
        // An epb_flags option, which the reader skips.
        u16b(&mut body, 2, be);
        u16b(&mut body, 4, be);
        u32b(&mut body, 1, be);
        self.block(6, &body)
    }

    pub(crate) fn spb(&mut self, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        let be = self.be;
        u32b(&mut body, data.len() as u32, be);
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// Obsolete packet block.
    pub(crate) fn pb(&mut self, iface: u16, units: u64, data: &[u8]) -> &mut Self {
        let be = self.be;
        let mut body = Vec::new();
        u16b(&mut body, iface, be);
        u16b(&mut body, 0, be);
        u32b(&mut body, (units >> 32) as u32, be);
        u32b(&mut body, units as u32, be);
        u32b(&mut body, data.len() as u32, be);
        u32b(&mut body, data.len() as u32, be);
        body.extend_from_slice(data);
        self.block(2, &body)
    }
}

/// A frame as owned values: index, time, interface, link type, bytes, original length.
pub type OwnedFrame = (u64, u64, u32, u32, Vec<u8>, u32);

pub fn owned(f: &super::reader::Frame<'_>) -> OwnedFrame {
    (
        f.index,
        f.ts_nanos,
        f.interface,
        f.linktype,
        f.data.to_vec(),
        f.orig_len,
    )
}

/// Every frame of a capture held in memory, and its format.
pub fn read_all(bytes: &[u8]) -> (super::reader::CaptureFormat, Vec<OwnedFrame>) {
    let mut r = super::reader::CaptureReader::new(bytes).unwrap();
    let mut v = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        v.push(owned(&f));
    }
    (r.format(), v)
}

//! IPv4 and IPv6 fragment reassembly with bounded memory.
//!
//! Datagrams are keyed as the RFCs say (IPv4: addresses, protocol, identification —
//! RFC 791; IPv6: addresses, identification — RFC 8200 §4.5). Memory is bounded two
//! ways: the bytes held by all unfinished datagrams never exceed `max_pending_bytes`
//! (the oldest are dropped to make room), and a datagram still unfinished
//! `max_age_nanos` after its first fragment is dropped. Time is the capture's, taken from
//! the frames (never the clock), and only moves forward.
//!
//! Overlaps: for IPv6 a fragment that overlaps another (other than an exact repeat) makes
//! the whole datagram invalid (RFC 5722), so it is dropped. For IPv4 the later bytes win,
//! which is what most stacks did; a repeated fragment changes nothing either way.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use super::packet::{IPPROTO_TCP, IPPROTO_UDP, ip_layer, ipv6_ext_headers, tcp, udp};

/// An IP datagram can carry at most 65535 bytes after its fixed header.
const MAX_DATAGRAM: usize = 65_535;
/// What one unfinished datagram costs besides its bytes (map entry, queue entry, ranges).
const ENTRY_OVERHEAD: usize = 128;

/// A reassembled UDP datagram or TCP segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// 17 (UDP) or 6 (TCP).
    pub proto: u8,
    /// The UDP payload, or the TCP segment's payload.
    pub payload: Vec<u8>,
    /// For TCP: what [`super::TcpStreams::push`] needs besides the payload.
    pub tcp: Option<TcpMeta>,
}

/// Sequence number and flags of a reassembled TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpMeta {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    /// IPv4: the protocol (part of the key). IPv6: 0.
    proto: u8,
}

#[derive(Debug)]
struct Pending {
    /// Tells this entry from an older one with the same key in the age queue.
    generation: u64,
    first_ts: u64,
    data: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    ranges: Vec<(usize, usize)>,
    /// Length of the whole payload, once the last fragment has arrived.
    total: Option<usize>,
    /// Protocol after the fragmentable part starts (IPv6: from the first fragment).
    proto: Option<u8>,
    v6: bool,
    /// Bytes this entry counts against the cap.
    accounted: usize,
}

impl Pending {
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD + self.data.len() + self.ranges.len() * 16
    }

    fn overlaps(&self, start: usize, end: usize) -> bool {
        self.ranges.iter().any(|&(s, e)| s < end && start < e)
    }

    fn add_range(&mut self, start: usize, end: usize) {
        let mut merged = (start, end);
        self.ranges.retain(|&(s, e)| {
            if s <= merged.1 && merged.0 <= e {
                merged = (merged.0.min(s), merged.1.max(e));
                false
            } else {
                true
            }
        });
        let at = self.ranges.partition_point(|&(s, _)| s < merged.0);
        self.ranges.insert(at, merged);
    }
}

/// Reassembles IP fragments (see the module documentation for the bounds).
#[derive(Debug)]
pub struct Defragmenter {
    max_pending_bytes: usize,
    max_age_nanos: u64,
    pending: HashMap<Key, Pending>,
    /// Entries in arrival order of their first fragment, for ageing and eviction.
    order: VecDeque<(Key, u64)>,
    pending_bytes: usize,
    now: u64,
    next_generation: u64,
}

impl Defragmenter {
    pub fn new(max_pending_bytes: usize, max_age_nanos: u64) -> Self {
        Defragmenter {
            max_pending_bytes,
            max_age_nanos,
            pending: HashMap::new(),
            order: VecDeque::new(),
            pending_bytes: 0,
            now: 0,
            next_generation: 0,
        }
    }

    /// Bytes held by unfinished datagrams.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Feed a frame whose `decode` gave `L4::Fragment`; returns the reassembled UDP
    /// datagram or TCP segment when this fragment completes it. Anything else (not a
    /// fragment, malformed, another protocol, over the bounds) returns `None`.
    pub fn push(&mut self, ts_nanos: u64, linktype: u32, data: &[u8]) -> Option<Datagram> {
        self.now = self.now.max(ts_nanos);
        self.expire();
        let ip = ip_layer(linktype, data).ok()?;
        let frag = ip.frag?;
        let v6 = ip.src.is_ipv6();
        let key = Key {
            src: ip.src,
            dst: ip.dst,
            id: frag.id,
            proto: if v6 { 0 } else { ip.proto },
        };
        let (start, end) = (frag.offset, frag.offset + ip.payload.len());
        if end > MAX_DATAGRAM || (start == end && frag.more) {
            return None;
        }

        if !self.pending.contains_key(&key) {
            let generation = self.next_generation;
            self.next_generation += 1;
            self.order.push_back((key, generation));
            let entry = Pending {
                generation,
                first_ts: self.now,
                data: Vec::new(),
                ranges: Vec::new(),
                total: None,
                proto: None,
                v6,
                accounted: 0,
            };
            self.pending.insert(key, entry);
        }
        let entry = self.pending.get(&key)?;
        // A repeated fragment (capture on two ports, retransmission) changes nothing.
        let covered = entry.ranges.iter().any(|&(s, e)| s <= start && end <= e);
        if covered && entry.data.get(start..end) == Some(ip.payload) {
            return None;
        }
        let inconsistent = (entry.v6 && entry.overlaps(start, end))
            || entry
                .total
                .is_some_and(|t| end > t || (!frag.more && end != t))
            || (!frag.more && entry.ranges.last().is_some_and(|&(_, e)| e > end));
        if inconsistent {
            self.remove(&key);
            return None;
        }
        let growth = end.saturating_sub(entry.data.len()) + 16;
        if !self.make_room(growth, &key) {
            self.remove(&key);
            return None;
        }

        let entry = self.pending.get_mut(&key)?;
        if entry.data.len() < end {
            entry.data.resize(end, 0);
        }
        entry.data[start..end].copy_from_slice(ip.payload);
        entry.add_range(start, end);
        if !frag.more {
            entry.total = Some(end);
        }
        if start == 0 {
            entry.proto = Some(ip.proto);
        }
        let cost = entry.cost();
        self.pending_bytes = self.pending_bytes - entry.accounted + cost;
        entry.accounted = cost;

        let complete = entry.total.is_some_and(|t| entry.ranges == [(0, t)]);
        if !complete {
            return None;
        }
        let entry = self.remove(&key)?;
        finish(key, entry)
    }

    /// Drop entries older than the maximum age.
    fn expire(&mut self) {
        while let Some(&(key, generation)) = self.order.front() {
            match self.pending.get(&key) {
                Some(p) if p.generation == generation => {
                    if self.now.saturating_sub(p.first_ts) <= self.max_age_nanos {
                        return;
                    }
                    self.remove(&key);
                }
                // Finished or dropped already.
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Evict the oldest other entries until `extra` more bytes fit. False if they
    /// cannot fit even then.
    fn make_room(&mut self, extra: usize, keep: &Key) -> bool {
        loop {
            if self.pending_bytes + extra <= self.max_pending_bytes {
                return true;
            }
            let Some(&(key, generation)) = self.order.front() else {
                return false;
            };
            if key == *keep {
                // The oldest is the one being filled: nothing older to drop.
                return false;
            }
            if self
                .pending
                .get(&key)
                .is_some_and(|p| p.generation == generation)
            {
                self.remove(&key);
            }
            self.order.pop_front();
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Pending> {
        let entry = self.pending.remove(key)?;
        self.pending_bytes -= entry.accounted;
        if self.pending.is_empty() {
            // Everything in the queue is stale: let it go at once.
            self.order.clear();
        }
        Some(entry)
    }
}

/// Parse the transport header of a complete payload.
fn finish(key: Key, entry: Pending) -> Option<Datagram> {
    let mut data = entry.data;
    let mut proto = if entry.v6 { entry.proto? } else { key.proto };
    let mut at = 0;
    if entry.v6 {
        // The fragmentable part may start with more extension headers (RFC 8200 §4.5).
        let (p, pos, frag) = ipv6_ext_headers(&data, proto, 0, 0).ok()?;
        if frag.is_some() {
            return None;
        }
        (proto, at) = (p, pos);
    }
    let rest = data.get(at..)?;
    let (sport, dport, range, tcp_meta) = match proto {
        IPPROTO_UDP => {
            let (s, d, body) = udp(rest, 0).ok()?;
            (s, d, at + 8..at + 8 + body.len(), None)
        }
        IPPROTO_TCP => {
            let t = tcp(rest, 0).ok()?;
            let meta = TcpMeta {
                seq: t.seq,
                syn: t.syn,
                fin: t.fin,
                rst: t.rst,
            };
            let len = t.payload.len();
            (
                t.src_port,
                t.dst_port,
                data.len() - len..data.len(),
                Some(meta),
            )
        }
        _ => return None,
    };
    data.truncate(range.end);
    data.drain(..range.start);
    Some(Datagram {
        src: SocketAddr::new(key.src, sport),
        dst: SocketAddr::new(key.dst, dport),
        proto,
        payload: data,
        tcp: tcp_meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::link::LINKTYPE_RAW;
    use crate::capture::packet::{L4, decode};
    use crate::capture::testutil::{ether, ipv4, ipv6, sa, tcp, udp};

    const SEC: u64 = 1_000_000_000;

    /// IPv4 fragments of `l4` (already with its header) in pieces of `size` bytes.
    fn frags4(proto: u8, src: &str, dst: &str, id: u16, l4: &[u8], size: usize) -> Vec<Vec<u8>> {
        let (s, d) = (sa(src), sa(dst));
        l4.chunks(size)
            .enumerate()
            .map(|(i, piece)| {
                let off = i * size;
                let more = off + piece.len() < l4.len();
                let field = (off / 8) as u16 | if more { 0x2000 } else { 0 };
                ipv4(proto, s.ip(), d.ip(), id, field, &[], piece)
            })
            .collect()
    }

    /// IPv6 fragments; `unfragmentable` extension headers come before the fragment
    /// header, whose next header is `next`.
    fn frags6(src: &str, dst: &str, id: u32, next: u8, data: &[u8], size: usize) -> Vec<Vec<u8>> {
        let (s, d) = (sa(src), sa(dst));
        data.chunks(size)
            .enumerate()
            .map(|(i, piece)| {
                let off = i * size;
                let more = off + piece.len() < data.len();
                let field = off as u16 | u16::from(more);
                // Hop-by-hop options first (unfragmentable part), then the fragment header.
                let mut rest = vec![44, 0, 1, 4, 0, 0, 0, 0];
                rest.extend_from_slice(&[next, 0]);
                rest.extend_from_slice(&field.to_be_bytes());
                rest.extend_from_slice(&id.to_be_bytes());
                rest.extend_from_slice(piece);
                ipv6(0, s.ip(), d.ip(), &rest)
            })
            .collect()
    }

    #[test]
    fn ipv4_udp_out_of_order() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let seg = udp(sa("10.0.0.1:5060"), sa("10.0.0.2:5070"), &payload);
        let frags = frags4(17, "10.0.0.1:0", "10.0.0.2:0", 77, &seg, 1480);
        assert_eq!(frags.len(), 3);
        for f in &frags {
            assert_eq!(decode(LINKTYPE_RAW, f).unwrap().l4, L4::Fragment);
        }
        let mut d = Defragmenter::new(1 << 20, 10 * SEC);
        assert_eq!(d.push(1, LINKTYPE_RAW, &frags[2]), None);
        assert_eq!(d.push(2, LINKTYPE_RAW, &frags[0]), None);
        assert!(d.pending_bytes() > 3000);
        let dg = d.push(3, LINKTYPE_RAW, &frags[1]).unwrap();
        assert_eq!(dg.src, sa("10.0.0.1:5060"));
        assert_eq!(dg.dst, sa("10.0.0.2:5070"));
        assert_eq!(dg.proto, 17);
        assert_eq!(dg.payload, payload);
        assert_eq!(dg.tcp, None);
        assert_eq!(d.pending_bytes(), 0);
        // Behind a link layer too.
        let mut d = Defragmenter::new(1 << 20, 10 * SEC);
        let mut out = None;
        for f in frags.iter().rev() {
            out = d.push(0, 1, &ether(&[0x8100], 0x0800, f));
        }
        assert_eq!(out.unwrap().payload, payload);
    }

    #[test]
    fn ipv6_udp_out_of_order_with_extension_headers() {
        let payload = vec![0x5a; 2500];
        let (s, d) = (sa("[2001:db8::1]:4000"), sa("[2001:db8::2]:4002"));
        let seg = udp(s, d, &payload);
        // Destination options inside the fragmentable part, then UDP.
        let mut data = vec![17, 0, 1, 4, 0, 0, 0, 0];
        data.extend_from_slice(&seg);
        let frags = frags6(
            "[2001:db8::1]:0",
            "[2001:db8::2]:0",
            0xdead_beef,
            60,
            &data,
            1232,
        );
        assert_eq!(frags.len(), 3);
        let mut dfr = Defragmenter::new(1 << 20, 10 * SEC);
        assert_eq!(dfr.push(0, LINKTYPE_RAW, &frags[1]), None);
        assert_eq!(dfr.push(0, LINKTYPE_RAW, &frags[2]), None);
        let dg = dfr.push(0, LINKTYPE_RAW, &frags[0]).unwrap();
        assert_eq!((dg.src, dg.dst, dg.proto), (s, d, 17));
        assert_eq!(dg.payload, payload);
    }

    #[test]
    fn tcp_segment_reassembled() {
        let seg = tcp(5060, 40000, 1234, 0x18, &[b'x'; 2000]);
        let frags = frags4(6, "10.0.0.1:0", "10.0.0.2:0", 5, &seg, 1000);
        let mut d = Defragmenter::new(1 << 20, SEC);
        assert_eq!(d.push(0, LINKTYPE_RAW, &frags[1]), None);
        assert_eq!(d.push(0, LINKTYPE_RAW, &frags[2]), None);
        let dg = d.push(0, LINKTYPE_RAW, &frags[0]).unwrap();
        assert_eq!(dg.proto, 6);
        assert_eq!(dg.src, sa("10.0.0.1:5060"));
        assert_eq!(dg.payload, vec![b'x'; 2000]);
        assert_eq!(
            dg.tcp,
            Some(TcpMeta {
                seq: 1234,
                syn: false,
                fin: false,
                rst: false
            })
        );
    }

    #[test]
    fn overlaps_and_duplicates() {
        let seg = udp(sa("10.0.0.1:1"), sa("10.0.0.2:2"), &[1; 200]);
        let frags = frags4(17, "10.0.0.1:0", "10.0.0.2:0", 1, &seg, 64);
        // Duplicates are harmless.
        let mut d = Defragmenter::new(1 << 20, SEC);
        let mut got = None;
        for f in frags.iter().chain(frags.iter()) {
            got = got.or(d.push(0, LINKTYPE_RAW, f));
        }
        assert_eq!(got.unwrap().payload, vec![1; 200]);
        // An IPv4 fragment overlapping others: later bytes win, no panic.
        let (s, dst) = (sa("10.0.0.1:0").ip(), sa("10.0.0.2:0").ip());
        let mut d = Defragmenter::new(1 << 20, SEC);
        assert!(d.push(0, LINKTYPE_RAW, &frags[0]).is_none());
        let overlap = ipv4(17, s, dst, 1, 0x2000 | 4, &[], &[9; 64]); // bytes 32..96
        assert!(d.push(0, LINKTYPE_RAW, &overlap).is_none());
        let mut last = None;
        for f in &frags[1..] {
            last = last.or(d.push(0, LINKTYPE_RAW, f));
        }
        assert!(last.is_some());
        // IPv6: an overlap invalidates the datagram (RFC 5722).
        let data = udp(sa("[::1]:1"), sa("[::2]:2"), &[3; 100]);
        let frags = frags6("[::1]:0", "[::2]:0", 9, 17, &data, 56);
        let mut d = Defragmenter::new(1 << 20, SEC);
        assert!(d.push(0, LINKTYPE_RAW, &frags[0]).is_none());
        let overlapping = frags6("[::1]:0", "[::2]:0", 9, 17, &data[..64], 64);
        let mut first_64 = overlapping[0].clone();
        // Mark it "more fragments" so only the overlap is wrong.
        let at = 40 + 8 + 3;
        first_64[at] |= 1;
        assert!(d.push(0, LINKTYPE_RAW, &first_64).is_none());
        assert_eq!(d.pending_bytes(), 0, "dropped");
        assert!(
            d.push(0, LINKTYPE_RAW, &frags[1]).is_none(),
            "incomplete now"
        );
        // Inconsistent last fragments and oversize offsets: no panic, nothing out.
        let mut d = Defragmenter::new(1 << 20, SEC);
        let end1 = ipv4(17, s, dst, 2, 2, &[], &[0; 16]);
        let end2 = ipv4(17, s, dst, 2, 3, &[], &[0; 16]);
        let beyond = ipv4(17, s, dst, 2, 0x2000 | 0x1fff, &[], &[0; 16]);
        assert!(d.push(0, LINKTYPE_RAW, &end1).is_none());
        assert!(d.push(0, LINKTYPE_RAW, &end2).is_none());
        assert!(d.push(0, LINKTYPE_RAW, &beyond).is_none());
    }

    #[test]
    fn bounded_by_age_and_bytes() {
        let seg = udp(sa("10.0.0.1:1"), sa("10.0.0.2:2"), &[1; 200]);
        let frags = frags4(17, "10.0.0.1:0", "10.0.0.2:0", 1, &seg, 72);
        let mut d = Defragmenter::new(1 << 20, SEC);
        assert!(d.push(0, LINKTYPE_RAW, &frags[0]).is_none());
        // Too late: the first piece was dropped, the rest does not complete.
        assert!(d.push(2 * SEC, LINKTYPE_RAW, &frags[1]).is_none());
        assert!(d.push(2 * SEC, LINKTYPE_RAW, &frags[2]).is_none());
        assert!(d.pending_bytes() > 0);
        assert!(d.push(5 * SEC, LINKTYPE_RAW, &frags[0]).is_none());
        assert!(d.pending_bytes() < 500, "old entries expired");

        // Many unfinished datagrams never exceed the byte cap.
        let cap = 20_000;
        let mut d = Defragmenter::new(cap, 1000 * SEC);
        for id in 0..2000u16 {
            let f = ipv4(
                17,
                sa("10.0.0.1:0").ip(),
                sa("10.0.0.2:0").ip(),
                id,
                0x2000 | 100,
                &[],
                &[0; 256],
            );
            assert!(d.push(u64::from(id), LINKTYPE_RAW, &f).is_none());
            assert!(d.pending_bytes() <= cap);
        }
        // A new datagram still completes: older ones make room.
        let fresh = udp(sa("10.0.0.1:7"), sa("10.0.0.2:8"), &[4; 1992]);
        let mut got = None;
        for f in frags4(17, "10.0.0.1:0", "10.0.0.2:0", 4242, &fresh, 800) {
            got = got.or(d.push(3000, LINKTYPE_RAW, &f));
            assert!(d.pending_bytes() <= cap);
        }
        assert_eq!(got.unwrap().payload, vec![4; 1992]);
        let s = sa("10.0.0.1:0").ip();
        // A datagram larger than the cap is refused.
        let mut d = Defragmenter::new(1000, SEC);
        let big = ipv4(17, s, s, 1, 0x2000 | 200, &[], &[0; 1400]);
        assert!(d.push(0, LINKTYPE_RAW, &big).is_none());
        assert_eq!(d.pending_bytes(), 0);
        // Not a fragment at all.
        let whole = ipv4(17, s, s, 1, 0, &[], &seg);
        assert!(d.push(0, LINKTYPE_RAW, &whole).is_none());
        assert!(d.push(0, LINKTYPE_RAW, b"junk").is_none());
    }
}

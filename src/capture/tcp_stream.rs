//! SIP over TCP in a capture: per-direction reassembly in sequence order, then SIP
//! framing with [`crate::sip::message::stream_head`].
//!
//! Each direction of a connection is a byte stream rebuilt from segments:
//! - bytes already taken (retransmissions, overlapping segments) are dropped, so the
//!   first copy of a byte wins;
//! - segments ahead of the expected sequence number wait (at most `MAX_OUT_OF_ORDER`
//!   bytes per direction) until the gap fills;
//! - a gap that never fills — a segment the capture lost — is given up when the waiting
//!   bytes exceed that cap or the gap is older than `GAP_TIMEOUT_NANOS`: the stream
//!   resumes at the first waiting segment and the partial message before the gap is lost.
//!
//! Framing: Content-Length delimits each message, so a segment may hold several messages
//! and a message may span segments. A message without Content-Length (mandatory on TCP,
//! RFC 3261 §18.3, but some senders omit it when there is no body) ends with its headers.
//! Bytes that cannot start a message (a capture that starts mid-message, the bytes after
//! a lost segment) are skipped line by line until a message starts.
//!
//! Bounds: per direction `MAX_MESSAGE` in-order bytes and `MAX_OUT_OF_ORDER` waiting
//! bytes; at most `MAX_FLOWS` directions and `MAX_TOTAL_BYTES` buffered in all, the
//! least recently active directions being dropped first.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::sip::message::{leading_empty_lines, stream_head};

/// In-order bytes held for one direction while a message is incomplete.
const MAX_MESSAGE: usize = 256 << 10;
/// Out-of-order bytes held for one direction.
const MAX_OUT_OF_ORDER: usize = 256 << 10;
/// A segment further than this from the expected sequence number starts a new stream
/// (a connection reusing the ports whose SYN was not captured).
const MAX_SEQ_JUMP: i64 = 16 << 20;
/// A gap still open after this much capture time is given up.
const GAP_TIMEOUT_NANOS: u64 = 2_000_000_000;
const MAX_FLOWS: usize = 65_536;
const MAX_TOTAL_BYTES: usize = 64 << 20;

/// One complete SIP message from a TCP stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipOverTcp {
    /// Time of the segment that completed the message.
    pub ts_nanos: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub message: Vec<u8>,
}

#[derive(Debug, Default)]
struct Flow {
    next_seq: u32,
    /// In-order bytes not yet framed.
    buf: Vec<u8>,
    /// Segments ahead of `next_seq`: (sequence number, bytes).
    waiting: Vec<(u32, Vec<u8>)>,
    waiting_bytes: usize,
    gap_since: Option<u64>,
    last_ts: u64,
}

/// Signed distance from `b` to `a` in sequence space (RFC 793 arithmetic).
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Flow {
    fn bytes(&self) -> usize {
        self.buf.len() + self.waiting_bytes
    }

    /// Take a segment's bytes in sequence order.
    fn accept(&mut self, ts: u64, seq: u32, payload: &[u8]) {
        let rel = seq_diff(seq, self.next_seq);
        if !(-MAX_SEQ_JUMP..=MAX_SEQ_JUMP).contains(&rel) {
            self.restart(seq);
        }
        let rel = seq_diff(seq, self.next_seq);
        if rel <= 0 {
            let already = rel.unsigned_abs() as usize;
            if let Some(new) = payload.get(already..).filter(|n| !n.is_empty()) {
                self.append(new);
                self.take_waiting();
            }
        } else if self.waiting_bytes + payload.len() > MAX_OUT_OF_ORDER {
            // The gap is not going to fill within what we are willing to hold.
            self.waiting.push((seq, payload.to_vec()));
            self.waiting_bytes += payload.len();
            self.skip_gap();
        } else {
            self.waiting.push((seq, payload.to_vec()));
            self.waiting_bytes += payload.len();
            self.gap_since.get_or_insert(ts);
        }
        if self
            .gap_since
            .is_some_and(|t| ts.saturating_sub(t) > GAP_TIMEOUT_NANOS)
        {
            self.skip_gap();
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.next_seq = self.next_seq.wrapping_add(bytes.len() as u32);
    }

    /// Move waiting segments that now continue the stream into `buf`.
    fn take_waiting(&mut self) {
        while let Some(i) = self
            .waiting
            .iter()
            .position(|(s, _)| seq_diff(*s, self.next_seq) <= 0)
        {
            let (seq, bytes) = self.waiting.swap_remove(i);
            self.waiting_bytes -= bytes.len();
            let already = seq_diff(self.next_seq, seq) as usize;
            if let Some(new) = bytes.get(already..) {
                self.append(new);
            }
        }
        if self.waiting.is_empty() {
            self.gap_since = None;
        }
    }

    /// Give up on the gap: continue at the first waiting segment.
    fn skip_gap(&mut self) {
        let next = self.next_seq;
        let Some(first) = self
            .waiting
            .iter()
            .map(|(s, _)| *s)
            .min_by_key(|s| seq_diff(*s, next))
        else {
            return;
        };
        self.buf.clear();
        self.next_seq = first;
        self.gap_since = None;
        self.take_waiting();
        if !self.waiting.is_empty() {
            self.gap_since = Some(self.last_ts);
        }
    }

    fn restart(&mut self, seq: u32) {
        self.buf.clear();
        self.waiting.clear();
        self.waiting_bytes = 0;
        self.gap_since = None;
        self.next_seq = seq;
    }

    /// Cut complete messages off the front of `buf`.
    fn frame(&mut self, ts: u64, src: SocketAddr, dst: SocketAddr, out: &mut Vec<SipOverTcp>) {
        loop {
            let blank = leading_empty_lines(&self.buf);
            self.buf.drain(..blank);
            if self.buf.is_empty() {
                return;
            }
            let used = match stream_head(&self.buf) {
                // Without Content-Length the message ends with its headers.
                Ok(Some(head)) => match head.content_length.unwrap_or(0).checked_add(head.head_len)
                {
                    Some(end) if end <= self.buf.len() => {
                        out.push(SipOverTcp {
                            ts_nanos: ts,
                            src,
                            dst,
                            message: self.buf[..end].to_vec(),
                        });
                        end
                    }
                    Some(_) if self.buf.len() <= MAX_MESSAGE => return,
                    // A body too big to hold (or to count): skip a line.
                    _ => line_len(&self.buf),
                },
                Ok(None) if self.buf.len() <= MAX_MESSAGE => return,
                // Not a message start (or a head too big to hold): skip a line.
                _ => line_len(&self.buf),
            };
            self.buf.drain(..used.min(self.buf.len()));
        }
    }
}

/// Length of the first line including its LF (all of `buf` if there is none).
fn line_len(buf: &[u8]) -> usize {
    memchr::memchr(b'\n', buf).map_or(buf.len(), |i| i + 1)
}

/// Reassembles the TCP streams of a capture into SIP messages.
#[derive(Debug, Default)]
pub struct TcpStreams {
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    total_bytes: usize,
}

impl TcpStreams {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one TCP segment (from [`super::decode`] or a reassembled
    /// [`super::Datagram`]); complete SIP messages are appended to `out`.
    // The arguments are a segment's fields as the contract names them; a struct would
    // only be built and torn apart again at the one call site.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        ts_nanos: u64,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &[u8],
        out: &mut Vec<SipOverTcp>,
    ) {
        let key = (src, dst);
        if rst {
            self.remove(&key);
            return;
        }
        if !self.flows.contains_key(&key) {
            if payload.is_empty() && !syn {
                // A bare ACK of a stream we do not follow yet: nothing to keep.
                return;
            }
            if self.flows.len() >= MAX_FLOWS {
                self.evict(MAX_FLOWS / 2, usize::MAX);
            }
            let flow = Flow {
                // SYN takes one sequence number; without it (capture started
                // mid-connection) the stream starts here.
                next_seq: if syn { seq.wrapping_add(1) } else { seq },
                ..Flow::default()
            };
            self.flows.insert(key, flow);
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let before = flow.bytes();
        flow.last_ts = flow.last_ts.max(ts_nanos);
        let data_seq = if syn {
            // A new connection on these ports (or the SYN repeated): start afresh.
            flow.restart(seq.wrapping_add(1));
            seq.wrapping_add(1)
        } else {
            seq
        };
        if !payload.is_empty() {
            flow.accept(ts_nanos, data_seq, payload);
            flow.frame(ts_nanos, src, dst, out);
        }
        let after = flow.bytes();
        let done = fin && flow.waiting.is_empty();
        self.total_bytes = self.total_bytes - before + after;
        if done {
            // The stream is over; a message left incomplete cannot complete.
            self.remove(&key);
        }
        if self.total_bytes > MAX_TOTAL_BYTES {
            self.evict(self.flows.len(), MAX_TOTAL_BYTES / 2);
        }
    }

    /// Number of directions followed (for tests and statistics).
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    fn remove(&mut self, key: &(SocketAddr, SocketAddr)) {
        if let Some(flow) = self.flows.remove(key) {
            self.total_bytes -= flow.bytes();
        }
    }

    /// Drop the least recently active directions until at most `max_flows` remain and
    /// at most `max_bytes` are buffered. Rare (only at the bounds), so a sort is fine.
    fn evict(&mut self, max_flows: usize, max_bytes: usize) {
        let mut by_age: Vec<_> = self.flows.iter().map(|(k, f)| (f.last_ts, *k)).collect();
        by_age.sort_unstable_by_key(|(ts, _)| *ts);
        for (_, key) in by_age {
            if self.flows.len() <= max_flows && self.total_bytes <= max_bytes {
                break;
            }
            self.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::sa;

    const SEC: u64 = 1_000_000_000;

    fn msg(n: u32, body: &str) -> Vec<u8> {
        format!(
            "MESSAGE sip:b@example.com SIP/2.0\r\nCall-ID: {n}\r\nCSeq: {n} MESSAGE\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    struct Conn {
        streams: TcpStreams,
        out: Vec<SipOverTcp>,
    }

    impl Conn {
        fn new() -> Conn {
            Conn {
                streams: TcpStreams::new(),
                out: Vec::new(),
            }
        }
        fn seg(&mut self, ts: u64, seq: u32, payload: &[u8]) {
            let (a, b) = (sa("10.0.0.1:40000"), sa("10.0.0.2:5060"));
            self.streams
                .push(ts, a, b, seq, false, false, false, payload, &mut self.out);
        }
        fn messages(&self) -> Vec<Vec<u8>> {
            self.out.iter().map(|m| m.message.clone()).collect()
        }
    }

    #[test]
    fn several_messages_per_segment_and_keepalives() {
        let mut c = Conn::new();
        let mut data = b"\r\n\r\n".to_vec();
        data.extend(msg(1, "hello"));
        data.extend(b"\r\n");
        data.extend(msg(2, ""));
        data.extend(msg(3, "x"));
        c.seg(5, 1000, &data);
        assert_eq!(c.messages(), vec![msg(1, "hello"), msg(2, ""), msg(3, "x")]);
        assert_eq!(c.out[0].ts_nanos, 5);
        assert_eq!(c.out[0].src, sa("10.0.0.1:40000"));
        assert_eq!(c.out[0].dst, sa("10.0.0.2:5060"));
    }

    #[test]
    fn one_message_over_several_segments() {
        let m = msg(1, "a body of some length");
        let mut c = Conn::new();
        let (a, rest) = m.split_at(20); // inside the start line
        let (b, d) = rest.split_at(rest.len() - 5); // inside the body
        c.seg(1, 7, a);
        c.seg(2, 7 + a.len() as u32, b);
        assert!(c.out.is_empty());
        c.seg(3, 7 + (a.len() + b.len()) as u32, d);
        assert_eq!(c.messages(), vec![m]);
        assert_eq!(c.out[0].ts_nanos, 3);
    }

    #[test]
    fn out_of_order_retransmitted_and_overlapping_segments() {
        let m1 = msg(1, "first");
        let m2 = msg(2, "second");
        let all = [m1.clone(), m2.clone()].concat();
        let base = u32::MAX - 30; // sequence numbers wrap inside the stream
        let p = |from: usize, to: usize| (base.wrapping_add(from as u32), all[from..to].to_vec());
        let mut c = Conn::new();
        let segs = [p(0, 40), p(60, all.len()), p(40, 60), p(0, 40), p(30, 70)];
        // 1st in order; 2nd waits; 3rd fills the gap; 4th is a retransmission; 5th overlaps.
        for (seq, data) in &segs[..1] {
            c.seg(1, *seq, data);
        }
        c.seg(2, segs[1].0, &segs[1].1);
        assert!(c.out.is_empty());
        c.seg(3, segs[2].0, &segs[2].1);
        assert_eq!(c.messages(), vec![m1.clone(), m2.clone()]);
        c.seg(4, segs[3].0, &segs[3].1);
        c.seg(5, segs[4].0, &segs[4].1);
        assert_eq!(c.messages(), vec![m1, m2], "no duplicates");
    }

    #[test]
    fn message_without_content_length_ends_with_headers() {
        let mut c = Conn::new();
        let bare = b"OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n".to_vec();
        let mut data = bare.clone();
        data.extend(msg(2, "after"));
        c.seg(1, 1, &data);
        assert_eq!(c.messages(), vec![bare, msg(2, "after")]);
        // A bad Content-Length is skipped, not framed.
        let mut c = Conn::new();
        let mut data = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: x\r\n\r\n".to_vec();
        data.extend(msg(3, ""));
        c.seg(1, 1, &data);
        assert_eq!(c.messages(), vec![msg(3, "")]);
    }

    #[test]
    fn capture_starting_mid_message_resyncs() {
        let mut c = Conn::new();
        let mut data = b"=audio 4000 RTP/AVP 0\r\na=sendrecv\r\nVia: x\r\n".to_vec();
        data.extend(msg(1, "ok"));
        c.seg(1, 500, &data);
        assert_eq!(c.messages(), vec![msg(1, "ok")]);
    }

    #[test]
    fn gap_that_never_fills_resyncs() {
        let m1 = msg(1, "lost in the middle");
        let m2 = msg(2, "after the gap");
        let mut c = Conn::new();
        c.seg(0, 100, &m1[..30]);
        // m1[30..] is never captured; m2 follows it.
        let m2_seq = 100 + m1.len() as u32;
        c.seg(SEC / 2, m2_seq, &m2);
        assert!(c.out.is_empty(), "waiting for the gap");
        // Time passes on this stream: the gap is given up.
        c.seg(3 * SEC, m2_seq + m2.len() as u32, b"\r\n\r\n");
        assert_eq!(c.messages(), vec![m2.clone()]);

        // Waiting bytes over the cap also give up the gap, without waiting for time.
        let mut c = Conn::new();
        c.seg(0, 0, &m1[..30]);
        let mut seq = m1.len() as u32 + 1000;
        let big = msg(9, &"z".repeat(60_000));
        for _ in 0..5 {
            c.seg(1, seq, &big);
            seq += big.len() as u32;
        }
        assert!(!c.out.is_empty());
        assert!(c.out.iter().all(|m| m.message == big));
        assert!(c.streams.total_bytes <= MAX_OUT_OF_ORDER + MAX_MESSAGE);
    }

    #[test]
    fn syn_fin_rst_and_bounds() {
        let (a, b) = (sa("[2001:db8::1]:5061"), sa("[2001:db8::2]:5060"));
        let mut s = TcpStreams::new();
        let mut out = Vec::new();
        s.push(0, a, b, 41, true, false, false, b"", &mut out);
        assert_eq!(s.flows(), 1);
        let m = msg(1, "");
        s.push(1, a, b, 42, false, false, false, &m[..10], &mut out);
        s.push(2, a, b, 52, false, true, false, &m[10..], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(s.flows(), 0, "FIN ends the stream");
        s.push(3, a, b, 1, false, false, false, &m[..10], &mut out);
        assert_eq!(s.flows(), 1);
        s.push(4, a, b, 11, false, false, true, b"", &mut out);
        assert_eq!(s.flows(), 0, "RST ends the stream");
        assert_eq!(s.total_bytes, 0);
        // Bare ACKs of unknown streams create nothing.
        s.push(5, a, b, 11, false, false, false, b"", &mut out);
        assert_eq!(s.flows(), 0);

        // Endless garbage without line ends stays bounded.
        let mut c = Conn::new();
        let junk = vec![b'A'; 100_000];
        let mut seq = 0u32;
        for i in 0..10 {
            c.seg(i, seq, &junk);
            seq = seq.wrapping_add(junk.len() as u32);
            assert!(c.streams.total_bytes <= MAX_MESSAGE + junk.len());
        }
        // A jump far away in sequence space restarts the stream.
        c.seg(11, seq.wrapping_add(1 << 30), &msg(5, ""));
        assert_eq!(c.messages(), vec![msg(5, "")]);
    }

    #[test]
    fn many_flows_are_bounded() {
        let mut s = TcpStreams::new();
        let mut out = Vec::new();
        let dst = sa("10.0.0.2:5060");
        for i in 0..(MAX_FLOWS as u32 + 10) {
            let src = SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 5060);
            s.push(
                u64::from(i),
                src,
                dst,
                0,
                false,
                false,
                false,
                b"INVITE",
                &mut out,
            );
            assert!(s.flows() <= MAX_FLOWS);
        }
    }
}

//! One pass over a capture: every SIP message (UDP datagrams, IP fragments put back
//! together, TCP streams cut into messages), grouped by Call-ID, and the messages of
//! the one call wanted kept in capture order.
//!
//! Memory: the capture is streamed ([`CaptureReader`]); only the wanted call's
//! messages are kept (at most [`MAX_MESSAGES`] and [`MAX_BYTES`]), plus a short
//! summary per other Call-ID for the error listing them (at most [`MAX_CALLS`]
//! summaries, the rest counted).

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;

use crate::capture::{CaptureReader, L4, Reassembly, SipOverTcp, decode};
use crate::sip::header::HeaderName;

use super::error::{CallSummary, FromPcapError};
use super::head::{Head, Start};

/// Messages one call may have: a call is tens of messages, a long one hundreds.
pub const MAX_MESSAGES: usize = 10_000;
/// SIP bytes one call may have.
pub const MAX_BYTES: usize = 32 << 20;
/// Other calls remembered for the error message.
const MAX_CALLS: usize = 10_000;

/// How a message travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// One SIP message as captured.
#[derive(Clone, Debug)]
pub struct Captured {
    /// The frame that carried it (for TCP and fragments: the one that completed it).
    pub frame: u64,
    pub ts_nanos: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// The wanted call.
#[derive(Debug)]
pub struct Call {
    pub call_id: Vec<u8>,
    pub messages: Vec<Captured>,
    pub frames: u64,
}

/// The Call-ID of `bytes` when they are a SIP message: a request or status line and a
/// non-empty Call-ID header.
pub fn sip_call_id(bytes: &[u8]) -> Option<(Head, Vec<u8>)> {
    // RTP starts with 0x80–0xBF, STUN with 0/1, keep-alives with CR or LF: only a
    // letter can start SIP, and this keeps media-heavy captures cheap to walk.
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let head = Head::scan(bytes);
    head.start(bytes)?;
    let id = head.value_of(bytes, HeaderName::CallId)?;
    if id.is_empty() {
        return None;
    }
    let id = id.to_vec();
    Some((head, id))
}

struct Seen {
    summary: CallSummary,
    first_request: bool,
}

struct Walk<'w> {
    want: Option<&'w [u8]>,
    /// The Call-ID being kept when none is wanted: the first one seen.
    keep: Option<Vec<u8>>,
    kept: Vec<Captured>,
    kept_bytes: usize,
    too_large: bool,
    calls: HashMap<Vec<u8>, usize>,
    seen: Vec<Seen>,
    more: u64,
}

impl Walk<'_> {
    fn message(&mut self, m: Captured) {
        let Some((head, id)) = sip_call_id(&m.bytes) else {
            return;
        };
        let method = match head.start(&m.bytes) {
            Some(Start::Request { method, .. }) => {
                Some(String::from_utf8_lossy(method).into_owned())
            }
            _ => None,
        };
        match self.calls.get(&id) {
            Some(&i) => {
                let s = &mut self.seen[i];
                s.summary.messages += 1;
                if !s.first_request && method.is_some() {
                    s.first_request = true;
                    s.summary.first_request = method;
                    s.summary.frame = m.frame;
                }
            }
            None if self.seen.len() < MAX_CALLS => {
                self.calls.insert(id.clone(), self.seen.len());
                self.seen.push(Seen {
                    summary: CallSummary {
                        call_id: String::from_utf8_lossy(&id).into_owned(),
                        first_request: method.clone(),
                        frame: m.frame,
                        messages: 1,
                    },
                    first_request: method.is_some(),
                });
            }
            None => self.more += 1,
        }
        let wanted = match (self.want, &self.keep) {
            (Some(w), _) => w == id.as_slice(),
            (None, Some(k)) => *k == id,
            (None, None) => {
                self.keep = Some(id.clone());
                true
            }
        };
        if !wanted || self.too_large {
            return;
        }
        self.kept_bytes += m.bytes.len();
        if self.kept.len() >= MAX_MESSAGES || self.kept_bytes > MAX_BYTES {
            self.too_large = true;
            self.kept = Vec::new();
            return;
        }
        self.kept.push(m);
    }
}

/// Reads the capture and returns the call `want` names, or the only call when `want`
/// is None. Errors: an unreadable or damaged capture, no SIP, several calls without
/// `want`, no call named `want`, a call too large to be one.
pub fn extract<R: Read>(input: R, want: Option<&[u8]>) -> Result<Call, FromPcapError> {
    let mut reader = CaptureReader::new(input).map_err(FromPcapError::Capture)?;
    let mut reassembly = Reassembly::new(64 << 20, 30_000_000_000);
    let mut tcp: Vec<SipOverTcp> = Vec::new();
    let mut walk = Walk {
        want,
        keep: None,
        kept: Vec::new(),
        kept_bytes: 0,
        too_large: false,
        calls: HashMap::new(),
        seen: Vec::new(),
        more: 0,
    };
    let mut frames = 0;
    while let Some(frame) = reader.next_frame().map_err(FromPcapError::Damaged)? {
        frames = frame.index;
        let Ok(packet) = decode(frame.linktype, frame.data) else {
            continue;
        };
        if let L4::Udp {
            src_port,
            dst_port,
            payload,
            ..
        } = packet.l4
        {
            walk.message(Captured {
                frame: frame.index,
                ts_nanos: frame.ts_nanos,
                src: SocketAddr::new(packet.src, src_port),
                dst: SocketAddr::new(packet.dst, dst_port),
                transport: Transport::Udp,
                bytes: payload.to_vec(),
            });
            continue;
        }
        if let Some(d) = reassembly.push(&frame, &packet, &mut tcp) {
            walk.message(Captured {
                frame: frame.index,
                ts_nanos: frame.ts_nanos,
                src: d.src,
                dst: d.dst,
                transport: Transport::Udp,
                bytes: d.payload,
            });
        }
        for m in tcp.drain(..) {
            walk.message(Captured {
                frame: frame.index,
                ts_nanos: m.ts_nanos,
                src: m.src,
                dst: m.dst,
                transport: Transport::Tcp,
                bytes: m.message,
            });
        }
    }
    let calls: Vec<CallSummary> = walk.seen.into_iter().map(|s| s.summary).collect();
    if calls.is_empty() {
        return Err(FromPcapError::NoSip { frames });
    }
    let call_id = match (want, walk.keep) {
        (Some(w), _) => {
            if !walk.calls.contains_key(w) {
                return Err(FromPcapError::UnknownCallId {
                    id: String::from_utf8_lossy(w).into_owned(),
                    calls,
                    more: walk.more,
                });
            }
            w.to_vec()
        }
        (None, keep) => {
            if calls.len() > 1 || walk.more > 0 {
                return Err(FromPcapError::SeveralCalls {
                    calls,
                    more: walk.more,
                });
            }
            keep.unwrap_or_default()
        }
    };
    if walk.too_large {
        return Err(FromPcapError::TooLarge {
            call_id: String::from_utf8_lossy(&call_id).into_owned(),
            limit: MAX_MESSAGES,
            limit_bytes: MAX_BYTES,
        });
    }
    Ok(Call {
        call_id,
        messages: walk.kept,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::*;

    fn msg(call_id: &str, first: &str) -> Vec<u8> {
        format!("{first}\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
            .into_bytes()
    }

    #[test]
    fn udp_fragments_and_tcp_in_capture_order() {
        let (a, b) = ("10.0.0.1:5060", "10.0.0.2:5060");
        let invite = msg("c1", "INVITE sip:x SIP/2.0");
        // A response in two IP fragments.
        let mut big = msg("c1", "SIP/2.0 200 OK");
        big.truncate(big.len() - 4);
        big.extend_from_slice(b"X-Pad: ");
        big.extend(std::iter::repeat_n(b'p', 100));
        big.extend_from_slice(b"\r\n\r\n");
        let seg = udp(sa(b), sa(a), &big);
        let (sb, sa_) = (sa(b).ip(), sa(a).ip());
        let f1 = ipv4(17, sb, sa_, 7, 0x2000, &[], &seg[..64]);
        let f2 = ipv4(17, sb, sa_, 7, 8, &[], &seg[64..]);
        // The ACK over TCP, cut in two segments.
        let ack = msg("c1", "ACK sip:x SIP/2.0");
        let t1 = tcp_packet(a, b, 1000, ACK, &ack[..10]);
        let t2 = tcp_packet(a, b, 1010, ACK, &ack[10..]);
        let rtp = udp_packet(a, b, &[0x80; 40]);
        let file = pcap(
            false,
            false,
            101,
            &[
                (1_000, &udp_packet(a, b, &invite)),
                (2_000, &rtp),
                (3_000, &f1),
                (4_000, &f2),
                (5_000, &t1),
                (6_000, &t2),
            ],
        );
        let call = extract(&file[..], None).unwrap();
        assert_eq!(call.call_id, b"c1");
        assert_eq!(call.frames, 6);
        let got: Vec<(u64, Transport, &[u8])> = call
            .messages
            .iter()
            .map(|m| (m.frame, m.transport, &m.bytes[..]))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Transport::Udp, &invite[..]),
                (4, Transport::Udp, &big[..]),
                (6, Transport::Tcp, &ack[..]),
            ]
        );
    }

    #[test]
    fn calls_are_listed_or_picked() {
        let (a, b) = ("10.0.0.1:5060", "10.0.0.2:5060");
        let file = pcap(
            false,
            false,
            101,
            &[
                (1, &udp_packet(b, a, &msg("c1", "SIP/2.0 100 Trying"))),
                (2, &udp_packet(a, b, &msg("c2", "OPTIONS sip:x SIP/2.0"))),
                (3, &udp_packet(a, b, &msg("c1", "INVITE sip:x SIP/2.0"))),
            ],
        );
        match extract(&file[..], None) {
            Err(FromPcapError::SeveralCalls { calls, more: 0 }) => {
                assert_eq!(calls.len(), 2);
                assert_eq!(calls[0].call_id, "c1");
                assert_eq!(calls[0].first_request.as_deref(), Some("INVITE"));
                assert_eq!((calls[0].frame, calls[0].messages), (3, 2));
                assert_eq!(calls[1].first_request.as_deref(), Some("OPTIONS"));
                let text = FromPcapError::SeveralCalls { calls, more: 0 }.to_string();
                assert!(text.contains("pick one with --call-id"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let c2 = extract(&file[..], Some(b"c2")).unwrap();
        assert_eq!(c2.messages.len(), 1);
        assert!(matches!(
            extract(&file[..], Some(b"c3")),
            Err(FromPcapError::UnknownCallId { .. })
        ));
    }

    #[test]
    fn no_sip_and_damage_are_errors() {
        let rtp = udp_packet("10.0.0.1:4000", "10.0.0.2:4000", &[0x80; 40]);
        let file = pcap(false, false, 101, &[(1, &rtp)]);
        assert!(matches!(
            extract(&file[..], None),
            Err(FromPcapError::NoSip { frames: 1 })
        ));
        assert!(matches!(
            extract(&b"junk"[..], None),
            Err(FromPcapError::Capture(_))
        ));
        let ok = pcap(
            false,
            false,
            101,
            &[(
                1,
                &udp_packet("10.0.0.1:1", "10.0.0.2:2", &msg("c", "BYE sip:x SIP/2.0")),
            )],
        );
        assert!(matches!(
            extract(&ok[..ok.len() - 3], None),
            Err(FromPcapError::Damaged(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        use rand::{Rng, RngCore, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0xf00d);
        let base = pcap(
            false,
            false,
            101,
            &[
                (
                    1,
                    &udp_packet(
                        "10.0.0.1:1",
                        "10.0.0.2:2",
                        &msg("c", "INVITE sip:x SIP/2.0"),
                    ),
                ),
                (
                    2,
                    &tcp_packet(
                        "10.0.0.2:2",
                        "10.0.0.1:1",
                        5,
                        ACK,
                        &msg("c", "SIP/2.0 200 OK"),
                    ),
                ),
            ],
        );
        for _ in 0..2000 {
            let mut bytes = base.clone();
            for _ in 0..rng.random_range(1..10) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
            if rng.random_bool(0.2) {
                let mut tail = vec![0; rng.random_range(0..64)];
                rng.fill_bytes(&mut tail);
                bytes.extend(tail);
            }
            let _ = extract(&bytes[..], None).map(|c| c.messages.len());
        }
    }
}

//! IP defragmentation and SIP-over-TCP reassembly behind one call per frame: what a
//! reader of a capture does with every frame that is not a plain UDP datagram.

use std::net::SocketAddr;

use super::defrag::{Datagram, Defragmenter};
use super::packet::{L4, Packet};
use super::reader::Frame;
use super::tcp_stream::{SipOverTcp, TcpStreams};

pub struct Reassembly {
    defrag: Defragmenter,
    tcp: TcpStreams,
}

impl Reassembly {
    /// Fragments wait at most `max_pending_bytes` in all and `max_age_nanos` each.
    pub fn new(max_pending_bytes: usize, max_age_nanos: u64) -> Reassembly {
        Reassembly {
            defrag: Defragmenter::new(max_pending_bytes, max_age_nanos),
            tcp: TcpStreams::new(),
        }
    }

    /// Feed a decoded frame. TCP segments (whole, or rebuilt from IP fragments) go
    /// into their stream, and the SIP messages they complete are appended to `sip`.
    /// Returns the UDP datagram this frame's fragment completed, if any. Plain UDP
    /// frames are the caller's: nothing happens for them here.
    pub fn push(
        &mut self,
        frame: &Frame<'_>,
        packet: &Packet<'_>,
        sip: &mut Vec<SipOverTcp>,
    ) -> Option<Datagram> {
        let ts = frame.ts_nanos;
        match packet.l4 {
            L4::Tcp {
                src_port,
                dst_port,
                seq,
                syn,
                fin,
                rst,
                payload,
            } => {
                let src = SocketAddr::new(packet.src, src_port);
                let dst = SocketAddr::new(packet.dst, dst_port);
                self.tcp
                    .push(ts, src, dst, seq, syn, fin, rst, payload, sip);
                None
            }
            L4::Fragment => {
                let d = self.defrag.push(ts, frame.linktype, frame.data)?;
                match d.tcp {
                    Some(t) => {
                        self.tcp.push(
                            ts, d.src, d.dst, t.seq, t.syn, t.fin, t.rst, &d.payload, sip,
                        );
                        None
                    }
                    None => (d.proto == 17).then_some(d),
                }
            }
            L4::Udp { .. } | L4::Other => None,
        }
    }
}

//! RFC 3550 receive statistics for one RTP source: sequence tracking with wrap and
//! restart detection (A.1), expected/lost and the fraction lost per report interval
//! (A.3), interarrival jitter (A.8), plus duplicates, reordering and the longest gap
//! between arrivals.
//! CONTRACT STUB: implemented by the media-core work; signatures are fixed.

use std::time::{Duration, Instant};

use super::rtcp::ReportBlock;

#[derive(Clone, Debug)]
pub struct ReceiveStats {
    _private: (),
}

impl ReceiveStats {
    /// `clock_rate`: RTP timestamp units per second (8000 for G.711).
    pub fn new(_clock_rate: u32) -> ReceiveStats {
        todo!()
    }

    /// One packet from this source. `arrival` is the kernel receive time. `for_jitter`
    /// false leaves the jitter estimate alone (RFC 4733 events repeat one timestamp).
    pub fn on_packet(
        &mut self,
        _sequence: u16,
        _timestamp: u32,
        _arrival: Instant,
        _payload_len: usize,
        _for_jitter: bool,
    ) {
        todo!()
    }

    /// Packets received (duplicates included).
    pub fn packets(&self) -> u64 {
        todo!()
    }
    /// Payload bytes received.
    pub fn bytes(&self) -> u64 {
        todo!()
    }
    /// Extended highest sequence number − base + 1 (0 before the first packet).
    pub fn expected(&self) -> u64 {
        todo!()
    }
    /// expected − received (not counting duplicates); never negative.
    pub fn lost(&self) -> u64 {
        todo!()
    }
    pub fn duplicates(&self) -> u64 {
        todo!()
    }
    /// Packets that arrived with a sequence number below the highest seen (not
    /// duplicates).
    pub fn out_of_order(&self) -> u64 {
        todo!()
    }
    /// Current interarrival jitter in timestamp units.
    pub fn jitter_units(&self) -> u32 {
        todo!()
    }
    /// Current interarrival jitter as time.
    pub fn jitter(&self) -> Duration {
        todo!()
    }
    /// Longest time between two consecutive arrivals.
    pub fn max_gap(&self) -> Duration {
        todo!()
    }
    /// Arrival of the last packet.
    pub fn last_arrival(&self) -> Option<Instant> {
        todo!()
    }
    /// A reception report for this source; resets the fraction-lost interval.
    pub fn report_block(&mut self, _ssrc: u32, _lsr: u32, _dlsr: u32) -> ReportBlock {
        todo!()
    }
}

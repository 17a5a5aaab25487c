//! RFC 3550 receive statistics for one RTP source: sequence tracking with wrap and
//! restart detection (A.1), expected/lost and the fraction lost per report interval
//! (A.3), interarrival jitter (A.8), plus duplicates, reordering and the longest gap
//! between arrivals.
//!
//! Unlike A.1, the first packet is counted at once (no probation): the source is
//! known from the SDP, and a load test wants every packet of a short call.

use std::time::{Duration, Instant};

use super::rtcp::ReportBlock;

/// A.1: a jump forward of this many or more is not loss but a possible restart.
const MAX_DROPOUT: u16 = 3000;
/// A.1: packets up to this far behind the highest are late, not a restart.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: i64 = 1 << 16;
/// `bad_seq` value no sequence number can equal.
const NO_BAD_SEQ: u32 = 1 << 16;

#[derive(Clone, Debug)]
pub struct ReceiveStats {
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    /// Multiples of 2^16 added to `max_seq` by wraps (A.1's `cycles`).
    cycles: i64,
    /// Extended sequence number of the first packet since the last (re)start; lowered
    /// when a late packet from before it arrives.
    base: i64,
    /// After a big jump, the number that would confirm a restart.
    bad_seq: u32,
    /// Packets counted since the last (re)start, duplicates excluded.
    received: u64,
    /// Expected and received of the sequence spaces before restarts, so the totals
    /// never go backwards.
    carried_expected: u64,
    carried_received: u64,
    /// Totals at the last report block (A.3).
    expected_prior: u64,
    received_prior: u64,
    /// Bit i set: `highest − i` arrived. Covers more than MAX_MISORDER, so every
    /// accepted late packet is checked for duplication.
    window: u128,
    packets: u64,
    bytes: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Jitter × 16 in timestamp units (A.8's integer form keeps the fraction).
    jitter16: u64,
    /// Arrival and timestamp of the last packet that went into the jitter.
    jitter_ref: Option<(Instant, u32)>,
    max_gap: Duration,
    last_arrival: Option<Instant>,
}

/// How one sequence number relates to what came before.
enum Seq {
    /// Newest so far, or the first after a restart.
    Ahead,
    /// Behind the highest, first time seen.
    Late,
    Duplicate,
    /// A big jump not (yet) confirmed as a restart.
    Ignored,
}

impl ReceiveStats {
    /// `clock_rate`: RTP timestamp units per second (8000 for G.711).
    pub fn new(clock_rate: u32) -> ReceiveStats {
        ReceiveStats {
            clock_rate,
            started: false,
            max_seq: 0,
            cycles: 0,
            base: 0,
            bad_seq: NO_BAD_SEQ,
            received: 0,
            carried_expected: 0,
            carried_received: 0,
            expected_prior: 0,
            received_prior: 0,
            window: 0,
            packets: 0,
            bytes: 0,
            duplicates: 0,
            out_of_order: 0,
            jitter16: 0,
            jitter_ref: None,
            max_gap: Duration::ZERO,
            last_arrival: None,
        }
    }

    /// One packet from this source. `arrival` is the kernel receive time. `for_jitter`
    /// false leaves the jitter estimate alone (RFC 4733 events repeat one timestamp).
    pub fn on_packet(
        &mut self,
        sequence: u16,
        timestamp: u32,
        arrival: Instant,
        payload_len: usize,
        for_jitter: bool,
    ) {
        self.packets += 1;
        self.bytes = self.bytes.saturating_add(payload_len as u64);
        if let Some(gap) = self
            .last_arrival
            .and_then(|last| arrival.checked_duration_since(last))
        {
            self.max_gap = self.max_gap.max(gap);
        }
        self.last_arrival = Some(arrival);

        match self.update_seq(sequence) {
            Seq::Ahead | Seq::Late if for_jitter => self.update_jitter(timestamp, arrival),
            Seq::Ahead | Seq::Late => {}
            Seq::Duplicate => self.duplicates += 1,
            Seq::Ignored => {}
        }
    }

    /// RFC 3550 A.1 `update_seq`, with duplicate detection added.
    fn update_seq(&mut self, seq: u16) -> Seq {
        if !self.started {
            self.started = true;
            self.restart(seq);
            return Seq::Ahead;
        }
        let ahead = seq.wrapping_sub(self.max_seq);
        if ahead == 0 {
            Seq::Duplicate
        } else if ahead < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
            self.window = self.window.checked_shl(u32::from(ahead)).unwrap_or(0) | 1;
            self.received += 1;
            Seq::Ahead
        } else if ahead <= u16::MAX - MAX_MISORDER + 1 {
            // A.1 compares with RTP_SEQ_MOD − MAX_MISORDER, one more than u16::MAX −
            // MAX_MISORDER: a packet exactly 100 behind is a jump, not a late one.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after the jump: the sender restarted.
                self.carried_expected += self.current_expected();
                self.carried_received += self.received;
                self.restart(seq);
                Seq::Ahead
            } else {
                self.bad_seq = u32::from(seq.wrapping_add(1));
                Seq::Ignored
            }
        } else {
            let behind = self.max_seq.wrapping_sub(seq);
            let bit = 1u128 << behind;
            if self.window & bit != 0 {
                return Seq::Duplicate;
            }
            self.window |= bit;
            self.received += 1;
            self.out_of_order += 1;
            self.base = self.base.min(self.extended_max() - i64::from(behind));
            Seq::Late
        }
    }

    fn restart(&mut self, seq: u16) {
        self.max_seq = seq;
        self.cycles = 0;
        self.base = i64::from(seq);
        self.bad_seq = NO_BAD_SEQ;
        self.received = 1;
        self.window = 1;
        // The new sequence usually comes with a new timestamp origin: the first
        // difference across the restart would be noise, not jitter.
        self.jitter_ref = None;
    }

    /// RFC 3550 A.8: J += (|D| − J)/16, D the change in transit time, in timestamp
    /// units.
    fn update_jitter(&mut self, timestamp: u32, arrival: Instant) {
        if let Some((last_arrival, last_timestamp)) = self.jitter_ref {
            let elapsed = match arrival.checked_duration_since(last_arrival) {
                Some(d) => self.units(d),
                None => -self.units(last_arrival.duration_since(arrival)),
            };
            let advanced = i128::from(timestamp.wrapping_sub(last_timestamp) as i32);
            let d = (elapsed - advanced).unsigned_abs();
            let d = u64::try_from(d)
                .unwrap_or(u64::MAX)
                .min(u64::from(u32::MAX));
            self.jitter16 = (self.jitter16 + d).saturating_sub((self.jitter16 + 8) >> 4);
        }
        self.jitter_ref = Some((arrival, timestamp));
    }

    fn units(&self, d: Duration) -> i128 {
        (d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as i128
    }

    fn extended_max(&self) -> i64 {
        self.cycles + i64::from(self.max_seq)
    }

    fn current_expected(&self) -> u64 {
        if self.started {
            (self.extended_max() - self.base + 1) as u64
        } else {
            0
        }
    }

    fn received_total(&self) -> u64 {
        self.carried_received + self.received
    }

    /// Packets received (duplicates included).
    pub fn packets(&self) -> u64 {
        self.packets
    }
    /// Payload bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Extended highest sequence number − base + 1 (0 before the first packet).
    pub fn expected(&self) -> u64 {
        self.carried_expected + self.current_expected()
    }
    /// expected − received (not counting duplicates); never negative.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received_total())
    }
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
    /// Packets that arrived with a sequence number below the highest seen (not
    /// duplicates).
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }
    /// Current interarrival jitter in timestamp units.
    pub fn jitter_units(&self) -> u32 {
        u32::try_from(self.jitter16 >> 4).unwrap_or(u32::MAX)
    }
    /// Current interarrival jitter as time.
    pub fn jitter(&self) -> Duration {
        if self.clock_rate == 0 {
            return Duration::ZERO;
        }
        let nanos = u64::from(self.jitter_units()) * 1_000_000_000 / u64::from(self.clock_rate);
        Duration::from_nanos(nanos)
    }
    /// Longest time between two consecutive arrivals.
    pub fn max_gap(&self) -> Duration {
        self.max_gap
    }
    /// Arrival of the last packet.
    pub fn last_arrival(&self) -> Option<Instant> {
        self.last_arrival
    }
    /// A reception report for this source; resets the fraction-lost interval.
    pub fn report_block(&mut self, ssrc: u32, lsr: u32, dlsr: u32) -> ReportBlock {
        let expected = self.expected();
        let received = self.received_total();
        // A.3: the interval's loss, as a fixed-point fraction with the point at the
        // left; a negative loss (duplicates, late packets of an earlier interval)
        // reports 0.
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let cumulative_lost = (expected as i64 - received as i64).clamp(-0x80_0000, 0x7f_ffff);
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: cumulative_lost as i32,
            // The extended highest sequence number is 32 bits on the wire: the cycle
            // count in the top half.
            highest_sequence: if self.started {
                self.extended_max() as u32
            } else {
                0
            },
            jitter: self.jitter_units(),
            lsr,
            dlsr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A G.711 stream at 20 ms: packet k has sequence `first + k`, timestamp
    /// `160·k`, and arrives at `t0 + 20·k ms + delay`.
    struct Stream {
        t0: Instant,
        first: u16,
    }

    impl Stream {
        fn new(first: u16) -> Stream {
            Stream {
                t0: Instant::now(),
                first,
            }
        }
        fn send(&self, s: &mut ReceiveStats, k: u32, delay: Duration) {
            s.on_packet(
                self.first.wrapping_add(k as u16),
                160 * k,
                self.t0 + 20 * MS * k + delay,
                160,
                true,
            );
        }
    }

    #[test]
    fn empty() {
        let mut s = ReceiveStats::new(8000);
        assert_eq!((s.packets(), s.expected(), s.lost()), (0, 0, 0));
        assert_eq!(s.last_arrival(), None);
        assert_eq!(s.jitter(), Duration::ZERO);
        assert_eq!(
            s.report_block(5, 0, 0),
            ReportBlock {
                ssrc: 5,
                ..ReportBlock::default()
            }
        );
    }

    #[test]
    fn perfect_stream_across_the_wrap() {
        let st = Stream::new(65_530);
        let mut s = ReceiveStats::new(8000);
        for k in 0..20 {
            st.send(&mut s, k, Duration::ZERO);
        }
        assert_eq!(s.packets(), 20);
        assert_eq!(s.bytes(), 3200);
        assert_eq!(s.expected(), 20);
        assert_eq!(s.lost(), 0);
        assert_eq!(s.jitter_units(), 0);
        assert_eq!(s.max_gap(), 20 * MS);
        assert_eq!(s.last_arrival(), Some(st.t0 + 380 * MS));
        let r = s.report_block(1, 2, 3);
        // 65530 + 19 = 65549 = one cycle + 13.
        assert_eq!(r.highest_sequence, 0x0001_000d);
        assert_eq!((r.fraction_lost, r.cumulative_lost, r.jitter), (0, 0, 0));
        assert_eq!((r.ssrc, r.lsr, r.dlsr), (1, 2, 3));
    }

    #[test]
    fn loss_and_fraction_per_interval() {
        let st = Stream::new(100);
        let mut s = ReceiveStats::new(8000);
        // Interval 1: 0..10 with 3 and 7 lost.
        for k in (0..10).filter(|k| *k != 3 && *k != 7) {
            st.send(&mut s, k, Duration::ZERO);
        }
        assert_eq!((s.expected(), s.lost()), (10, 2));
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.fraction_lost, 51); // 2/10 in 1/256
        assert_eq!(r.cumulative_lost, 2);
        // Interval 2: nothing lost, so the fraction drops to 0 while the total stays.
        for k in 10..20 {
            st.send(&mut s, k, Duration::ZERO);
        }
        let r = s.report_block(1, 0, 0);
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 2));
        // Interval 3: nothing arrives.
        let r = s.report_block(1, 0, 0);
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 2));
        // Interval 4: a late packet of interval 1 fills a hole: received exceeds
        // expected in this interval, which reports 0 rather than a negative loss.
        st.send(&mut s, 3, Duration::ZERO);
        let r = s.report_block(1, 0, 0);
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 1));
        assert_eq!(s.out_of_order(), 1);
    }

    #[test]
    fn duplicates_and_reordering() {
        let st = Stream::new(0);
        let mut s = ReceiveStats::new(8000);
        for k in [0, 1, 3, 2, 2, 3, 4, 4, 1] {
            st.send(&mut s, k, Duration::ZERO);
        }
        assert_eq!(s.packets(), 9);
        assert_eq!(s.duplicates(), 4);
        assert_eq!(s.out_of_order(), 1);
        assert_eq!((s.expected(), s.lost()), (5, 0));
        // 99 behind is still checked against the window; 100 behind is a jump.
        for k in 5..=104 {
            st.send(&mut s, k, Duration::ZERO);
        }
        st.send(&mut s, 5, Duration::ZERO);
        assert_eq!(s.duplicates(), 5);
        st.send(&mut s, 4, Duration::ZERO);
        assert_eq!(s.duplicates(), 5);
        assert_eq!(s.packets(), 111);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn late_packet_before_the_first_counts() {
        let st = Stream::new(0);
        let mut s = ReceiveStats::new(8000);
        st.send(&mut s, 1, Duration::ZERO);
        st.send(&mut s, 0, Duration::ZERO);
        st.send(&mut s, 2, Duration::ZERO);
        assert_eq!((s.expected(), s.lost(), s.out_of_order()), (3, 0, 1));
        // The first packet's number 0 wraps below: 65535 is one before it.
        st.send(&mut s, 65_535, Duration::ZERO);
        assert_eq!((s.expected(), s.lost(), s.out_of_order()), (4, 0, 2));
    }

    #[test]
    fn small_jump_is_loss_big_jump_restarts_after_two() {
        let st = Stream::new(1000);
        let mut s = ReceiveStats::new(8000);
        for k in 0..5 {
            st.send(&mut s, k, Duration::ZERO);
        }
        // 2999 ahead: loss.
        st.send(&mut s, 4 + 2999, Duration::ZERO);
        assert_eq!((s.expected(), s.lost()), (3004, 2998));

        let mut s = ReceiveStats::new(8000);
        for k in 0..5 {
            st.send(&mut s, k, Duration::ZERO);
        }
        // A jump of 3000: ignored, then a non-sequential one: ignored too.
        let t = st.t0 + 200 * MS;
        s.on_packet(30_000, 0, t, 160, true);
        s.on_packet(30_005, 0, t, 160, true);
        assert_eq!((s.packets(), s.expected(), s.lost()), (7, 5, 0));
        // Two sequential: restart at 30_006; the numbers before it stay in the totals.
        s.on_packet(30_006, 0, t, 160, true);
        assert_eq!((s.expected(), s.lost()), (6, 0));
        s.on_packet(30_008, 0, t, 160, true);
        assert_eq!((s.expected(), s.lost()), (8, 1));
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.highest_sequence, 30_008);
        assert_eq!(r.cumulative_lost, 1);
        assert_eq!(s.packets(), 9);
    }

    #[test]
    fn jitter_follows_a8() {
        let st = Stream::new(0);
        let mut s = ReceiveStats::new(8000);
        st.send(&mut s, 0, Duration::ZERO);
        // 5 ms late = 40 units of |D|: J = 40/16 = 2.5.
        st.send(&mut s, 1, 5 * MS);
        assert_eq!(s.jitter16, 40);
        assert_eq!(s.jitter_units(), 2);
        // Back on time: |D| = 40 again; J = 2.5 + (40 − 2.5)/16 = 4.84.
        st.send(&mut s, 2, Duration::ZERO);
        assert_eq!(s.jitter_units(), 4);
        // A steady stream decays it towards 0.
        for k in 3..200 {
            st.send(&mut s, k, Duration::ZERO);
        }
        assert_eq!(s.jitter_units(), 0);

        // Alternating 0/10 ms delay: J tends to |D| = 80 units = 10 ms.
        let mut s = ReceiveStats::new(8000);
        for k in 0..400 {
            st.send(&mut s, k, if k % 2 == 0 { Duration::ZERO } else { 10 * MS });
        }
        assert!(
            (78..=80).contains(&s.jitter_units()),
            "{}",
            s.jitter_units()
        );
        assert!(s.jitter() >= 9 * MS && s.jitter() <= 10 * MS);
    }

    #[test]
    fn events_and_duplicates_stay_out_of_the_jitter() {
        let st = Stream::new(0);
        let mut s = ReceiveStats::new(8000);
        st.send(&mut s, 0, Duration::ZERO);
        st.send(&mut s, 1, Duration::ZERO);
        // Telephone-events repeat the timestamp of their start.
        for k in 2..7 {
            s.on_packet(k as u16, 320, st.t0 + 20 * MS * k, 4, false);
        }
        st.send(&mut s, 7, Duration::ZERO);
        assert_eq!(s.jitter_units(), 0);
        // A duplicate arriving 50 ms late says nothing about transit.
        s.on_packet(7, 160 * 7, st.t0 + 190 * MS, 160, true);
        st.send(&mut s, 8, Duration::ZERO);
        assert_eq!(s.jitter_units(), 0);
        assert_eq!(s.max_gap(), 50 * MS);
    }

    #[test]
    fn arrivals_going_backwards_do_not_panic() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut s = ReceiveStats::new(8000);
        s.on_packet(0, 0, t0, 0, true);
        s.on_packet(1, 160, t0 - Duration::from_secs(5), 0, true);
        s.on_packet(2, u32::MAX, t0, usize::MAX, true);
        s.on_packet(3, 7, t0 + Duration::from_secs(100_000), usize::MAX, true);
        assert_eq!(s.max_gap(), Duration::from_secs(100_000));
        assert_eq!(s.bytes(), u64::MAX);
        assert!(s.jitter_units() > 0);
        let _ = s.jitter();
        let mut s = ReceiveStats::new(0);
        s.on_packet(0, 0, t0, 0, true);
        s.on_packet(1, 160, t0 + MS, 0, true);
        assert_eq!(s.jitter(), Duration::ZERO);
    }

    #[test]
    fn long_stream_counts_cycles() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        let mut seq = 0u16;
        for k in 0..200_000u32 {
            if k % 1000 != 999 {
                s.on_packet(seq, k * 160, t0 + 20 * MS * k, 160, true);
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(s.expected(), 199_999);
        assert_eq!(s.lost(), 199);
        assert_eq!(s.report_block(0, 0, 0).highest_sequence, 199_998);
    }
}

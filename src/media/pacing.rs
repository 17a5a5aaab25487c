//! Absolute-deadline pacing: packet n is due at `start + n·interval`, never at
//! `last + interval`, so lateness in one wake-up never accumulates into drift.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Pacer {
    start: Instant,
    interval: Duration,
    n: u64,
}

impl Pacer {
    pub fn new(start: Instant, interval: Duration) -> Pacer {
        Pacer {
            start,
            interval,
            n: 0,
        }
    }
    /// When the next packet is due.
    pub fn due(&self) -> Instant {
        let offset = times(self.interval, self.n);
        // Only reachable after centuries of packets; stay put rather than panic.
        self.start.checked_add(offset).unwrap_or(self.start)
    }
    /// Packets sent so far (index of the next one).
    pub fn count(&self) -> u64 {
        self.n
    }
    pub fn interval(&self) -> Duration {
        self.interval
    }
    /// The next packet was sent.
    pub fn advance(&mut self) {
        self.n += 1;
    }
    /// When more than `max_late` behind at `now`, jump forward so that the next packet
    /// is the one due at or after `now - max_late`; returns how many were skipped.
    pub fn skip_late(&mut self, now: Instant, max_late: Duration) -> u64 {
        let Some(oldest) = now.checked_sub(max_late) else {
            return 0;
        };
        let interval = self.interval.as_nanos();
        if self.due() >= oldest || interval == 0 {
            return 0;
        }
        let behind = oldest.saturating_duration_since(self.start).as_nanos();
        let target = u64::try_from(behind.div_ceil(interval)).unwrap_or(u64::MAX);
        let skipped = target.saturating_sub(self.n);
        self.n = self.n.max(target);
        skipped
    }
}

/// `interval · n` without the u32 limit of `Duration`'s multiplication.
fn times(interval: Duration, n: u64) -> Duration {
    let nanos = interval.as_nanos().saturating_mul(u128::from(n));
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn deadlines_are_absolute() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 20 * MS);
        assert_eq!(p.due(), t0);
        assert_eq!(p.interval(), 20 * MS);
        // However late each packet goes out, the next deadline does not move.
        for n in 1..=100u32 {
            p.advance();
            assert_eq!(p.due(), t0 + 20 * MS * n);
        }
        assert_eq!(p.count(), 100);
    }

    #[test]
    fn large_counts_do_not_overflow() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 20 * MS);
        p.n = u64::from(u32::MAX) + 10;
        assert_eq!(p.due(), t0 + times(20 * MS, u64::from(u32::MAX) + 10));
        assert_eq!(times(20 * MS, 50), Duration::from_secs(1));
        assert_eq!(
            times(Duration::from_nanos(3), 1_000_000_000),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn skip_late_jumps_to_the_first_packet_within_reach() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 20 * MS);
        // Not more than max_late behind: nothing skipped.
        assert_eq!(p.skip_late(t0 + 50 * MS, 60 * MS), 0);
        assert_eq!(p.count(), 0);
        // At 205 ms with 50 ms allowed, the oldest acceptable deadline is 155 ms: the
        // packet due at 160 ms (n = 8) is next.
        assert_eq!(p.skip_late(t0 + 205 * MS, 50 * MS), 8);
        assert_eq!(p.count(), 8);
        assert_eq!(p.due(), t0 + 160 * MS);
        // On an exact deadline the packet due then is kept.
        assert_eq!(p.skip_late(t0 + 250 * MS, 50 * MS), 2);
        assert_eq!(p.due(), t0 + 200 * MS);
        assert_eq!(p.skip_late(t0 + 250 * MS, 50 * MS), 0);
    }

    #[test]
    fn skip_late_edge_cases() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::ZERO);
        assert_eq!(p.skip_late(t0 + 500 * MS, MS), 0);
        let mut p = Pacer::new(t0 + 100 * MS, 20 * MS);
        // Before the start, and with an allowance reaching before the clock's origin.
        assert_eq!(p.skip_late(t0, MS), 0);
        assert_eq!(p.skip_late(t0, Duration::MAX), 0);
        assert_eq!(p.count(), 0);
    }
}

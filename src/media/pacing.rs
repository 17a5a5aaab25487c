//! Absolute-deadline pacing: packet n is due at `start + n·interval`, never at
//! `last + interval`, so lateness in one wake-up never accumulates into drift.
//! CONTRACT STUB: implemented by the media-core work; signatures are fixed.

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
        todo!()
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
    pub fn skip_late(&mut self, _now: Instant, _max_late: Duration) -> u64 {
        todo!()
    }
}

//! Open-loop call schedule: when call k should start, from the rate plan, whatever
//! happened to earlier calls (no coordinated omission). Sans-IO: offsets from t0.
//! STUB: signatures are the contract.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum RatePlan {
    /// `--rate CPS`.
    Constant(f64),
    /// SIPp style: start at `start`, add `step` every `every`, up to `max` (if any).
    Increase { start: f64, step: f64, every: Duration, max: Option<f64> },
    /// `--ramp "100@30s,500@60s"`: (rate, at) points, rate linear between points; from
    /// t=0 to the first point the rate ramps from 0 (or starts at the first point's rate
    /// when it is at 0s); after the last point the schedule ends.
    Ramp(Vec<(f64, Duration)>),
}

impl RatePlan {
    /// Parse `--ramp` text: comma-separated `RATE@DURATION` points, times increasing.
    pub fn parse_ramp(text: &str) -> Result<RatePlan, String> {
        let _ = text;
        todo!()
    }
    /// Target rate (calls/s) at offset `t`.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let _ = t;
        todo!()
    }
    /// Where the plan itself ends (Ramp: the last point), if anywhere.
    pub fn end(&self) -> Option<Duration> {
        todo!()
    }
}

/// Start offsets of calls `first`, `first + stride`, `first + 2·stride`, ... (0-based call
/// indices), so `stride` workers each take every `stride`-th call of one global schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    _private: (),
}

impl Schedule {
    pub fn new(plan: RatePlan, first: u64, stride: u64) -> Schedule {
        let _ = (plan, first, stride);
        todo!()
    }
    /// Offset of the next call of this worker, and its global index; None when the plan
    /// has ended. Exact: the k-th call starts where the integral of the rate reaches k.
    pub fn next(&mut self) -> Option<(Duration, u64)> {
        todo!()
    }
    /// Offset of the next call without consuming it.
    pub fn peek(&self) -> Option<Duration> {
        todo!()
    }
}

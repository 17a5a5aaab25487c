//! Open-loop call schedule: when call k should start, from the rate plan, whatever
//! happened to earlier calls (no coordinated omission). Sans-IO: offsets from t0.
//!
//! The plan is a rate r(t) in calls/s. With N(t) = ∫₀ᵗ r, call k (0-based, global) starts
//! at the first instant where N passes k: T_k = inf { t : N(t) > k }. For a constant rate
//! that is k/rate (call 0 at t = 0); across a stretch where the rate is 0 the next call
//! waits for the rate to come back instead of starting while the rate is 0. A call exists
//! only if N passes k before the plan ends, so a ramp of 100 calls/s for 10 s makes
//! exactly 1000 calls.
//!
//! The rate is piecewise linear (constant or ramping segments), so N is piecewise
//! quadratic and T_k is solved exactly per segment. The schedule keeps its current
//! segment and the count at the segment's start, so each call costs O(1) amortised.

use std::time::Duration;

use crate::scenario::duration::parse_duration;

/// Highest rate the schedule honours (calls/s); larger (or infinite) rates are clamped to
/// it. Far beyond what one process can send, and it keeps every integral finite and
/// exact enough in f64 (a day at this rate is < 2^53 calls).
pub const MAX_RATE: f64 = 1e9;

#[derive(Clone, Debug, PartialEq)]
pub enum RatePlan {
    /// `--rate CPS`.
    Constant(f64),
    /// SIPp style: start at `start`, add `step` every `every`, up to `max` (if any).
    Increase {
        start: f64,
        step: f64,
        every: Duration,
        max: Option<f64>,
    },
    /// `--ramp "100@30s,500@60s"`: (rate, at) points, rate linear between points; from
    /// t=0 to the first point the rate ramps from 0 (or starts at the first point's rate
    /// when it is at 0s); after the last point the schedule ends.
    Ramp(Vec<(f64, Duration)>),
}

const RAMP_FORM: &str = "expected comma-separated RATE@TIME points with increasing times, e.g. `100@30s,500@60s,500@120s`";

impl RatePlan {
    /// Parse `--ramp` text: comma-separated `RATE@DURATION` points, times increasing.
    pub fn parse_ramp(text: &str) -> Result<RatePlan, String> {
        if text.trim().is_empty() {
            return Err(format!("empty ramp; {RAMP_FORM}"));
        }
        let mut points: Vec<(f64, Duration)> = Vec::new();
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(format!("empty point in `{text}`; {RAMP_FORM}"));
            }
            let Some((rate_s, at_s)) = item.split_once('@') else {
                return Err(format!("`{item}` is not a RATE@TIME point; {RAMP_FORM}"));
            };
            let rate_s = rate_s.trim();
            let rate: f64 = rate_s.parse().map_err(|_| {
                format!("`{item}`: `{rate_s}` is not a rate in calls/s; {RAMP_FORM}")
            })?;
            if !rate.is_finite() || rate < 0.0 {
                return Err(format!(
                    "`{item}`: the rate must be a finite number ≥ 0 calls/s; {RAMP_FORM}"
                ));
            }
            let at = parse_duration(at_s).map_err(|e| format!("`{item}`: {e}; {RAMP_FORM}"))?;
            if let Some(&(_, prev)) = points.last()
                && at <= prev
            {
                return Err(format!(
                    "`{item}`: times must increase, but {} is not after {}; {RAMP_FORM}",
                    at_s.trim(),
                    fmt_secs(prev)
                ));
            }
            points.push((rate, at));
        }
        if points.last().is_some_and(|&(_, at)| at.is_zero()) {
            return Err(format!(
                "the ramp ends at 0s, so it would make no calls; {RAMP_FORM}"
            ));
        }
        Ok(RatePlan::Ramp(points))
    }

    /// Target rate (calls/s) at offset `t`. Rates are clamped to `0..=MAX_RATE` (NaN → 0),
    /// exactly as the schedule uses them. A ramp is 0 from its last point on (the plan has
    /// ended there).
    pub fn rate_at(&self, t: Duration) -> f64 {
        match self {
            RatePlan::Constant(c) => sane_rate(*c),
            RatePlan::Increase { .. } => match Stairs::new(self) {
                Some(s) => s.rate_at(t.as_secs_f64()),
                None => 0.0,
            },
            RatePlan::Ramp(points) => {
                let t = t.as_secs_f64();
                let segs = ramp_segments(points);
                match segs.iter().find(|s| t < s.t0 + s.len) {
                    Some(s) => s.rate_at(t - s.t0),
                    None => 0.0,
                }
            }
        }
    }

    /// Where the plan itself ends (Ramp: the last point), if anywhere.
    pub fn end(&self) -> Option<Duration> {
        match self {
            RatePlan::Ramp(points) => Some(points.iter().map(|p| p.1).max().unwrap_or_default()),
            _ => None,
        }
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// Rates as the schedule honours them: finite, ≥ 0, ≤ MAX_RATE (NaN → 0, +∞ → MAX_RATE).
fn sane_rate(r: f64) -> f64 {
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, MAX_RATE)
    }
}

/// Tolerance when comparing a call index with a cumulative count: counts are sums of
/// f64 products (0.1 calls/s × 30 s = 3.0000000000000004), and a call that lands exactly
/// on a plan or segment end must not appear or vanish by rounding.
/// The relative part stays far below one call for any count f64 holds exactly.
fn eps(n: f64) -> f64 {
    (n.abs() * 1e-12).max(1e-9)
}

/// Does a cumulative count that reaches `n` pass call `k` (N > k, up to rounding)?
fn passes_before(k: f64, n: f64) -> bool {
    // An unbounded count passes every call (and ∞ − eps(∞) would be NaN).
    n == f64::INFINITY || k < n - eps(n)
}

/// One stretch of the plan where the rate is linear: r(τ) = r0 + slope·τ for τ in
/// [0, len) from `t0`. `n0` is N(t0), `n_end` is N(t0 + len).
#[derive(Clone, Copy, Debug)]
struct Seg {
    t0: f64,
    len: f64,
    r0: f64,
    slope: f64,
    n0: f64,
    n_end: f64,
}

impl Seg {
    fn new(t0: f64, len: f64, r0: f64, r1: f64, n0: f64) -> Seg {
        if len.is_infinite() {
            // Open-ended segments have a constant rate.
            let n_end = if r0 > 0.0 { f64::INFINITY } else { n0 };
            return Seg {
                t0,
                len,
                r0,
                slope: 0.0,
                n0,
                n_end,
            };
        }
        let slope = if len > 0.0 { (r1 - r0) / len } else { 0.0 };
        // Trapezoid: exact for a linear rate.
        let n_end = n0 + (r0 + r1) / 2.0 * len;
        Seg {
            t0,
            len,
            r0,
            slope,
            n0,
            n_end,
        }
    }

    fn rate_at(&self, tau: f64) -> f64 {
        (self.r0 + self.slope * tau).max(0.0)
    }

    /// Does call `k` start in this segment (N passes k before the segment's end)?
    fn holds(&self, k: f64) -> bool {
        passes_before(k, self.n_end)
    }

    /// Offset (s) from t0 where N reaches `k`: solves n0 + r0·τ + slope·τ²/2 = k.
    fn solve(&self, k: f64) -> f64 {
        let d = (k - self.n0).max(0.0);
        if d == 0.0 {
            return 0.0;
        }
        // τ = (−r0 + √(r0² + 2·slope·d)) / slope, rewritten as 2d / (r0 + √(…)) to avoid
        // cancellation when slope is small; it is also exactly d/r0 when slope is 0. The
        // discriminant is ≥ r(τ)² ≥ 0 in exact arithmetic; clamp rounding below 0.
        let disc = (self.r0 * self.r0 + 2.0 * self.slope * d).max(0.0);
        let den = self.r0 + disc.sqrt();
        let tau = if den > 0.0 { 2.0 * d / den } else { 0.0 };
        if tau.is_nan() {
            0.0
        } else {
            tau.clamp(0.0, self.len)
        }
    }
}

/// Segments of a ramp: from (0 s, 0 calls/s) to the first point (unless it is at 0 s),
/// then linear between points. Points out of time order are skipped (parse_ramp rejects
/// them; this keeps hand-built plans from panicking).
fn ramp_segments(points: &[(f64, Duration)]) -> Vec<Seg> {
    let mut segs = Vec::with_capacity(points.len());
    let (mut t, mut r, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for &(rate, at) in points {
        let at = at.as_secs_f64();
        let rate = sane_rate(rate);
        if at < t {
            continue;
        }
        if at > t {
            let s = Seg::new(t, at - t, r, rate, n);
            n = s.n_end;
            segs.push(s);
        }
        t = at;
        r = rate;
    }
    segs
}

/// The `Increase` plan: rate_j = clamp(start + step·j, 0, max) during step j, i.e. over
/// [j·every, (j+1)·every). Because start + step·j is monotone in j, the clamps split the
/// steps into three runs: j < ja at the constant `va` (only for a falling rate that
/// starts above `max`), ja ≤ j < jb linear, j ≥ jb at the constant `vc` forever (`max`
/// for a rising rate, 0 for a falling one). That gives N at every step boundary in
/// closed form, so the schedule can jump over many steps at once (a plan rising from 0
/// by a tiny step makes many steps without a call).
#[derive(Clone, Copy, Debug)]
struct Stairs {
    start: f64,
    step: f64,
    every: f64,
    ja: u64,
    va: f64,
    jb: u64,
    vc: f64,
}

impl Stairs {
    /// None unless the plan is an `Increase`. One that never steps (`every` or `step` 0)
    /// becomes a single open-ended run at its start rate.
    fn new(plan: &RatePlan) -> Option<Stairs> {
        let RatePlan::Increase {
            start,
            step,
            every,
            max,
        } = *plan
        else {
            return None;
        };
        let start = sane_rate(start);
        let max = sane_rate(max.unwrap_or(MAX_RATE));
        let every = every.as_secs_f64();
        // A step beyond ±MAX_RATE jumps straight to a clamp; bounding it keeps the sums finite.
        let step = if step.is_nan() {
            0.0
        } else {
            step.clamp(-MAX_RATE, MAX_RATE)
        };
        let (ja, va, jb, vc);
        if every <= 0.0 || step == 0.0 {
            // Never steps: one run at the clamped start rate.
            (ja, va, jb, vc) = (0, 0.0, 0, start.min(max));
        } else if step > 0.0 {
            // f64 → u64 `as` saturates, so absurd step counts stay representable.
            (ja, va) = (0, 0.0);
            jb = ((max - start) / step).ceil().max(0.0) as u64;
            vc = max;
        } else {
            ja = if start > max {
                ((start - max) / -step).ceil() as u64
            } else {
                0
            };
            va = max;
            jb = ((start / -step).ceil() as u64).max(ja);
            vc = 0.0;
        }
        Some(Stairs {
            start,
            step,
            every,
            ja,
            va,
            jb,
            vc,
        })
    }

    fn rate(&self, j: u64) -> f64 {
        if j < self.ja {
            self.va
        } else if j < self.jb {
            // Clamp only guards rounding at the run ends.
            (self.start + self.step * j as f64).clamp(0.0, MAX_RATE)
        } else {
            self.vc
        }
    }

    fn rate_at(&self, t: f64) -> f64 {
        if self.every <= 0.0 {
            return self.vc;
        }
        self.rate((t / self.every).floor() as u64)
    }

    /// N(i·every): calls due before step i.
    fn cum(&self, i: u64) -> f64 {
        let a = i.min(self.ja) as f64;
        let b_hi = i.min(self.jb);
        let b_lo = self.ja.min(b_hi);
        let nb = (b_hi - b_lo) as f64;
        // Σ_{j=b_lo}^{b_hi-1} (start + step·j)
        let sum_b = nb * self.start + self.step * (b_lo as f64 + b_hi as f64 - 1.0) * nb / 2.0;
        let c = i.saturating_sub(self.jb) as f64;
        self.every * (self.va * a + sum_b + self.vc * c)
    }

    /// Segment of step `j` (open-ended from `jb` on).
    fn seg(&self, j: u64) -> Seg {
        let t0 = j as f64 * self.every;
        let n0 = self.cum(j);
        if j >= self.jb {
            Seg::new(t0, f64::INFINITY, self.vc, self.vc, n0)
        } else {
            let r = self.rate(j);
            Seg::new(t0, self.every, r, r, n0)
        }
    }

    /// The first step ≥ `from` in which call `k` starts, if any. Binary search over the
    /// closed-form N: O(log) per jump, and the schedule jumps at most once per call.
    fn find(&self, from: u64, k: f64) -> Option<u64> {
        // `holds` is monotone in j because N is non-decreasing.
        let holds = |j: u64| self.seg(j).holds(k);
        if from >= self.jb {
            // The open-ended run is the last segment: nothing comes after it.
            return (from == self.jb && holds(from)).then_some(from);
        }
        if holds(from) {
            // Usual case: the step right after the current one.
            return Some(from);
        }
        if !passes_before(k, self.cum(self.jb)) {
            // Not before jb: the open-ended run, if it has a rate.
            let j = self.jb;
            return holds(j).then_some(j);
        }
        // Smallest j in (from, jb) whose segment holds k; j = jb − 1 surely does.
        let (mut lo, mut hi) = (from + 1, self.jb - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if holds(mid) { hi = mid } else { lo = mid + 1 }
        }
        Some(lo)
    }
}

#[derive(Clone, Debug)]
enum Shape {
    /// Constant rate and ramps: a short list of segments, walked forward.
    Segments(Vec<Seg>),
    /// `Increase`: segments computed on demand.
    Stairs(Stairs),
}

/// Start offsets of calls `first`, `first + stride`, `first + 2·stride`, ... (0-based call
/// indices), so `stride` workers each take every `stride`-th call of one global schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    shape: Shape,
    /// Index of `seg` in the shape (segment list index, or step number for stairs).
    seg_idx: u64,
    seg: Option<Seg>,
    stride: u64,
    /// The next call of this worker: computed ahead so `peek` needs no `&mut`.
    upcoming: Option<(Duration, u64)>,
}

impl Schedule {
    pub fn new(plan: RatePlan, first: u64, stride: u64) -> Schedule {
        let shape = match &plan {
            RatePlan::Constant(c) => {
                Shape::Segments(vec![Seg::new(0.0, f64::INFINITY, sane_rate(*c), 0.0, 0.0)])
            }
            RatePlan::Increase { .. } => match Stairs::new(&plan) {
                Some(s) => Shape::Stairs(s),
                None => Shape::Segments(Vec::new()), // not reached: the plan is an Increase
            },
            RatePlan::Ramp(points) => Shape::Segments(ramp_segments(points)),
        };
        let seg = match &shape {
            Shape::Segments(v) => v.first().copied(),
            Shape::Stairs(s) => Some(s.seg(0)),
        };
        let mut s = Schedule {
            shape,
            seg_idx: 0,
            seg,
            // A stride of 0 would repeat one call forever; treat it as a single worker.
            stride: stride.max(1),
            upcoming: None,
        };
        s.upcoming = s.locate(first);
        s
    }

    /// Offset of the next call of this worker, and its global index; None when the plan
    /// has ended. Exact: the k-th call starts where the integral of the rate reaches k.
    // The name is the contract; `Iterator` is implemented below too, by this method.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(Duration, u64)> {
        let cur = self.upcoming?;
        self.upcoming = cur.1.checked_add(self.stride).and_then(|k| self.locate(k));
        Some(cur)
    }

    /// Offset of the next call without consuming it.
    pub fn peek(&self) -> Option<Duration> {
        self.upcoming.map(|(d, _)| d)
    }

    /// Start offset of global call `k`, moving the current segment forward to the one
    /// holding it. Calls are asked for in increasing order, so segments only move forward.
    fn locate(&mut self, k: u64) -> Option<(Duration, u64)> {
        let kf = k as f64;
        loop {
            let seg = self.seg?;
            if seg.holds(kf) {
                let t = seg.t0 + seg.solve(kf);
                // Beyond Duration's range (~584 billion years) counts as never.
                let d = if t.is_finite() {
                    Duration::try_from_secs_f64(t).ok()
                } else {
                    None
                }?;
                return Some((d, k));
            }
            self.seg = match &self.shape {
                Shape::Segments(v) => {
                    self.seg_idx += 1;
                    usize::try_from(self.seg_idx)
                        .ok()
                        .and_then(|i| v.get(i))
                        .copied()
                }
                Shape::Stairs(s) => {
                    let j = s.find(self.seg_idx.saturating_add(1), kf)?;
                    self.seg_idx = j;
                    Some(s.seg(j))
                }
            };
            self.seg?;
        }
    }
}

/// Iterates the same calls as repeated `Schedule::next`.
impl Iterator for Schedule {
    type Item = (Duration, u64);
    fn next(&mut self) -> Option<(Duration, u64)> {
        Schedule::next(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn all(plan: &RatePlan, first: u64, stride: u64, limit: usize) -> Vec<(Duration, u64)> {
        let mut s = Schedule::new(plan.clone(), first, stride);
        let mut out = Vec::new();
        while out.len() < limit {
            let p = s.peek();
            match s.next() {
                Some(c) => {
                    assert_eq!(p, Some(c.0));
                    out.push(c);
                }
                None => {
                    assert_eq!(p, None);
                    break;
                }
            }
        }
        out
    }

    fn near(a: Duration, b: f64) -> bool {
        (a.as_secs_f64() - b).abs() < 1e-6
    }

    /// ∫ rate over [a, b), numerically (fine steps; the rates are piecewise linear).
    fn integral(plan: &RatePlan, a: f64, b: f64) -> f64 {
        let n = 20_000;
        let h = (b - a) / n as f64;
        (0..n)
            .map(|i| plan.rate_at(secs(a + (i as f64 + 0.5) * h)) * h)
            .sum()
    }

    #[test]
    fn parse_ramp_ok() {
        let p = RatePlan::parse_ramp("100@30s, 500@60s,500@2m").unwrap();
        assert_eq!(
            p,
            RatePlan::Ramp(vec![
                (100.0, secs(30.0)),
                (500.0, secs(60.0)),
                (500.0, secs(120.0))
            ])
        );
        assert_eq!(p.end(), Some(secs(120.0)));
        let p = RatePlan::parse_ramp("0.5@0s,2.25@1500ms").unwrap();
        assert_eq!(
            p,
            RatePlan::Ramp(vec![(0.5, Duration::ZERO), (2.25, secs(1.5))])
        );
    }

    #[test]
    fn parse_ramp_errors() {
        let err = |s: &str| RatePlan::parse_ramp(s).unwrap_err();
        for bad in [
            "", " ", "100", "100@", "@30s", "x@30s", "-1@30s", "inf@3s", "NaN@3s",
        ] {
            let e = err(bad);
            assert!(e.contains("RATE@TIME"), "{bad}: {e}");
        }
        assert!(err("100@30s,,200@40s").contains("empty point"));
        assert!(err("100@30s,200@30s").contains("times must increase"));
        assert!(err("100@30s,200@10s").contains("times must increase"));
        assert!(err("100@30x").contains("unit"));
        assert!(err("100@0s").contains("no calls"));
        // Every message shows the expected form or comes from the duration parser.
        assert!(err("abc").contains("100@30s,500@60s"));
    }

    #[test]
    fn rate_at_each_plan() {
        assert_eq!(RatePlan::Constant(7.5).rate_at(secs(1e6)), 7.5);
        let inc = RatePlan::Increase {
            start: 10.0,
            step: 10.0,
            every: secs(5.0),
            max: Some(30.0),
        };
        assert_eq!(inc.rate_at(secs(0.0)), 10.0);
        assert_eq!(inc.rate_at(secs(4.999)), 10.0);
        assert_eq!(inc.rate_at(secs(5.0)), 20.0);
        assert_eq!(inc.rate_at(secs(10.0)), 30.0);
        assert_eq!(inc.rate_at(secs(1000.0)), 30.0);
        assert_eq!(inc.end(), None);
        let unbounded = RatePlan::Increase {
            start: 1.0,
            step: 2.0,
            every: secs(1.0),
            max: None,
        };
        assert_eq!(unbounded.rate_at(secs(10.5)), 21.0);

        let ramp = RatePlan::parse_ramp("100@10s,500@20s,500@30s").unwrap();
        assert_eq!(ramp.rate_at(secs(0.0)), 0.0);
        assert!((ramp.rate_at(secs(5.0)) - 50.0).abs() < 1e-9);
        assert!((ramp.rate_at(secs(15.0)) - 300.0).abs() < 1e-9);
        assert!((ramp.rate_at(secs(25.0)) - 500.0).abs() < 1e-9);
        assert_eq!(ramp.rate_at(secs(30.0)), 0.0);
        assert_eq!(ramp.rate_at(secs(31.0)), 0.0);
        let from0 = RatePlan::parse_ramp("40@0s,20@10s").unwrap();
        assert_eq!(from0.rate_at(secs(0.0)), 40.0);
        assert!((from0.rate_at(secs(5.0)) - 30.0).abs() < 1e-9);
        assert_eq!(RatePlan::Constant(1.0).end(), None);
    }

    #[test]
    fn constant_rate_offsets() {
        let calls = all(&RatePlan::Constant(4.0), 0, 1, 1000);
        assert_eq!(calls.len(), 1000);
        for (i, (t, k)) in calls.iter().enumerate() {
            assert_eq!(*k, i as u64);
            assert!(near(*t, i as f64 / 4.0), "call {i} at {t:?}");
        }
        assert_eq!(calls[0].0, Duration::ZERO);
        // Fractional rate.
        let calls = all(&RatePlan::Constant(0.5), 0, 1, 3);
        let ts: Vec<f64> = calls.iter().map(|c| c.0.as_secs_f64()).collect();
        assert_eq!(ts, [0.0, 2.0, 4.0]);
        // The Iterator impl yields the same calls.
        let it: Vec<(Duration, u64)> = Schedule::new(RatePlan::Constant(4.0), 1, 2)
            .take(5)
            .collect();
        assert_eq!(it, all(&RatePlan::Constant(4.0), 1, 2, 5));
    }

    #[test]
    fn increase_plan_sipp_style() {
        // 10 calls/s, +10 every 5 s, at most 30.
        let plan = RatePlan::Increase {
            start: 10.0,
            step: 10.0,
            every: secs(5.0),
            max: Some(30.0),
        };
        let calls = all(&plan, 0, 1, 600);
        for (t, k) in &calls {
            let k = *k as f64;
            let want = if k < 50.0 {
                k / 10.0
            } else if k < 150.0 {
                5.0 + (k - 50.0) / 20.0
            } else {
                10.0 + (k - 150.0) / 30.0
            };
            assert!(near(*t, want), "call {k} at {t:?}, want {want}");
        }
        // Per second: 10, then 20, then 30.
        let in_sec = |s: u64| calls.iter().filter(|c| c.0.as_secs() == s).count();
        assert_eq!(in_sec(0), 10);
        assert_eq!(in_sec(4), 10);
        assert_eq!(in_sec(5), 20);
        assert_eq!(in_sec(9), 20);
        assert_eq!(in_sec(10), 30);
        assert_eq!(in_sec(20), 30);
    }

    #[test]
    fn increase_plan_jumps_over_empty_steps() {
        // Rising from 0 by a tiny step: the first ~10^6 steps hold less than one call
        // each. The schedule must find the calls without walking every step.
        let plan = RatePlan::Increase {
            start: 0.0,
            step: 1e-6,
            every: secs(0.001),
            max: None,
        };
        let calls = all(&plan, 0, 1, 5);
        assert_eq!(calls.len(), 5);
        // N(i steps) = every·step·i(i−1)/2 ⇒ call k near step √(2k/(every·step)).
        for (t, k) in &calls {
            let want = (2.0 * *k as f64 / (0.001 * 1e-6)).sqrt() * 0.001;
            assert!(
                (t.as_secs_f64() - want).abs() < 0.01,
                "call {k}: {t:?} vs {want}"
            );
        }
        // Falling to 0: ends.
        let plan = RatePlan::Increase {
            start: 10.0,
            step: -5.0,
            every: secs(1.0),
            max: None,
        };
        let calls = all(&plan, 0, 1, 100);
        assert_eq!(calls.len(), 15);
        assert!(near(calls[14].0, 1.8));
        // Falling from above max: max until start + step·j goes under it.
        let plan = RatePlan::Increase {
            start: 50.0,
            step: -10.0,
            every: secs(1.0),
            max: Some(20.0),
        };
        assert_eq!(plan.rate_at(secs(0.5)), 20.0);
        assert_eq!(plan.rate_at(secs(2.5)), 20.0);
        assert_eq!(plan.rate_at(secs(3.5)), 20.0);
        assert_eq!(plan.rate_at(secs(4.5)), 10.0);
        assert_eq!(plan.rate_at(secs(5.5)), 0.0);
        assert_eq!(all(&plan, 0, 1, 1000).len(), 4 * 20 + 10);
    }

    #[test]
    fn ramp_counts_per_second_match_integral() {
        let plan = RatePlan::parse_ramp("100@10s,500@20s,500@25s,50@30s").unwrap();
        let calls = all(&plan, 0, 1, 1_000_000);
        // Whole plan: 500 + 3000 + 2500 + 1375 = 7375.
        assert_eq!(calls.len(), 7375);
        for w in calls.windows(2) {
            assert!(w[0].0 <= w[1].0);
            assert_eq!(w[0].1 + 1, w[1].1);
        }
        for s in 0..30u64 {
            let got = calls.iter().filter(|c| c.0.as_secs() == s).count() as f64;
            let want = integral(&plan, s as f64, s as f64 + 1.0);
            assert!(
                (got - want).abs() <= 1.0,
                "second {s}: {got} calls, integral {want}"
            );
        }
        assert!(calls.last().unwrap().0 < secs(30.0));
        // Exact position inside the first (0 → 100 calls/s over 10 s) segment: N = 5t².
        for (t, k) in calls.iter().take(500) {
            assert!(near(*t, (*k as f64 / 5.0).sqrt()), "call {k} at {t:?}");
        }
    }

    #[test]
    fn ramp_starting_at_zero_seconds() {
        let plan = RatePlan::parse_ramp("20@0s,20@1s,0@2s").unwrap();
        let calls = all(&plan, 0, 1, 1000);
        // 20 in the first second, 10 in the second (20 → 0).
        assert_eq!(calls.len(), 30);
        assert_eq!(calls[0].0, Duration::ZERO);
        assert!(near(calls[1].0, 0.05));
        assert!(near(calls[19].0, 0.95));
        assert!(near(calls[20].0, 1.0));
        assert!(calls[29].0 < secs(2.0));
        // A constant ramp: exactly rate × length calls, the last one before the end.
        let plan = RatePlan::parse_ramp("0.1@0s,0.1@30s").unwrap();
        let calls = all(&plan, 0, 1, 1000);
        assert_eq!(calls.len(), 3);
        assert!(near(calls[2].0, 20.0));
    }

    #[test]
    fn zero_rate_gap_waits_for_the_rate() {
        // 10 calls in [0, 1), none in [1, 3), then ramping from 0 again.
        let plan = RatePlan::parse_ramp("10@0s,10@1s,0@1.000001s,0@3s,10@4s").unwrap();
        let calls = all(&plan, 0, 1, 1000);
        assert!(
            calls.iter().all(|c| c.0 < secs(1.001) || c.0 >= secs(3.0)),
            "{calls:?}"
        );
        assert!(calls.iter().any(|c| c.0 >= secs(3.0)));
    }

    #[test]
    fn workers_partition_the_global_schedule() {
        let plans = [
            RatePlan::Constant(33.3),
            RatePlan::Increase {
                start: 10.0,
                step: 10.0,
                every: secs(5.0),
                max: Some(30.0),
            },
            RatePlan::parse_ramp("100@3s,400@6s,0@9s").unwrap(),
        ];
        for plan in &plans {
            let single = all(plan, 0, 1, 2000);
            for w in [1u64, 2, 3, 7] {
                let mut union: Vec<(Duration, u64)> =
                    (0..w).flat_map(|f| all(plan, f, w, 2000)).collect();
                union.sort_by_key(|c| c.1);
                let n = union.len().min(single.len());
                assert!(n >= 1000);
                assert_eq!(&union[..n], &single[..n], "{plan:?} with {w} workers");
                for f in 0..w {
                    assert!(all(plan, f, w, 50).iter().all(|c| c.1 % w == f));
                }
            }
        }
        // Ending plans: the union is exactly the single schedule.
        let plan = RatePlan::parse_ramp("100@3s,400@6s,0@9s").unwrap();
        let single = all(&plan, 0, 1, usize::MAX);
        let mut union: Vec<(Duration, u64)> =
            (0..4).flat_map(|f| all(&plan, f, 4, usize::MAX)).collect();
        union.sort_by_key(|c| c.1);
        assert_eq!(union, single);
    }

    #[test]
    fn ends_and_zero_rates() {
        assert!(
            Schedule::new(RatePlan::Constant(0.0), 0, 1)
                .next()
                .is_none()
        );
        assert!(
            Schedule::new(RatePlan::Constant(f64::NAN), 0, 1)
                .peek()
                .is_none()
        );
        assert!(
            Schedule::new(RatePlan::Constant(-3.0), 0, 1)
                .next()
                .is_none()
        );
        assert!(Schedule::new(RatePlan::Ramp(vec![]), 0, 1).next().is_none());
        assert!(
            Schedule::new(RatePlan::parse_ramp("0@1s,0@5s").unwrap(), 0, 1)
                .next()
                .is_none()
        );
        let inc0 = RatePlan::Increase {
            start: 0.0,
            step: 0.0,
            every: secs(1.0),
            max: None,
        };
        assert!(Schedule::new(inc0, 0, 1).next().is_none());
        let mut s = Schedule::new(RatePlan::parse_ramp("10@1s").unwrap(), 0, 1);
        let mut n = 0;
        while s.next().is_some() {
            n += 1;
        }
        assert_eq!(n, 5);
        assert!(s.next().is_none() && s.peek().is_none());
    }

    #[test]
    fn weird_input_does_not_panic() {
        let huge = [
            RatePlan::Constant(f64::INFINITY),
            RatePlan::Constant(1e300),
            RatePlan::Constant(1e-300),
            RatePlan::Increase {
                start: 1e300,
                step: 1e300,
                every: secs(1.0),
                max: None,
            },
            RatePlan::Increase {
                start: 1.0,
                step: 1.0,
                every: Duration::ZERO,
                max: Some(5.0),
            },
            RatePlan::Increase {
                start: 1.0,
                step: f64::NAN,
                every: Duration::MAX,
                max: None,
            },
            RatePlan::Increase {
                start: 0.0,
                step: 1e-300,
                every: Duration::from_nanos(1),
                max: None,
            },
            RatePlan::Ramp(vec![
                (5.0, secs(2.0)),
                (5.0, secs(1.0)),
                (f64::INFINITY, secs(3.0)),
            ]),
            RatePlan::Ramp(vec![(1e300, Duration::MAX)]),
        ];
        for plan in huge {
            let _ = plan.rate_at(Duration::MAX);
            let _ = plan.rate_at(Duration::ZERO);
            let _ = plan.end();
            for (first, stride) in [(0, 1), (u64::MAX - 1, 5), (3, 0)] {
                let mut s = Schedule::new(plan.clone(), first, stride);
                for _ in 0..100 {
                    let _ = s.peek();
                    if s.next().is_none() {
                        break;
                    }
                }
            }
        }
        // Every = 0 never steps: the start rate.
        let plan = RatePlan::Increase {
            start: 2.0,
            step: 1.0,
            every: Duration::ZERO,
            max: None,
        };
        assert_eq!(plan.rate_at(secs(100.0)), 2.0);
        assert!(near(all(&plan, 0, 1, 3)[2].0, 1.0));
        // Stride 0 acts as 1.
        let calls = all(&RatePlan::Constant(1.0), 0, 0, 3);
        assert_eq!(calls.iter().map(|c| c.1).collect::<Vec<_>>(), [0, 1, 2]);
    }
}

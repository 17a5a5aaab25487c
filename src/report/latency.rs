//! Latency histograms (HdrHistogram) kept per driver and merged per interval.
//!
//! Values are recorded in microseconds with 3 significant digits, from 1 µs up to one
//! hour; longer values are clamped to one hour rather than rejected, so recording never
//! fails and never panics on the hot path.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// The fixed measurements every call can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Intended start → first provisional response to the INVITE.
    FirstProvisional,
    /// Intended start → final response to the INVITE (post-dial delay).
    FinalResponse,
    /// Intended start → end of the scenario (successful calls).
    CallLength,
    /// Intended start → actual start (how late the scheduler was).
    StartLag,
    /// RFC 3550 interarrival jitter of each received RTP stream, when it closed.
    RtpJitter,
    /// TCP connect started → TLS handshake finished, per connection.
    TlsHandshake,
    /// A request of ours challenged with 401/407 and answered with credentials:
    /// first send of the original request → final response (other than 401/407)
    /// to the retry.
    AuthRoundTrip,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::FirstProvisional,
        Metric::FinalResponse,
        Metric::CallLength,
        Metric::StartLag,
        Metric::RtpJitter,
        Metric::TlsHandshake,
        Metric::AuthRoundTrip,
    ];
    /// Name used in reports: `invite_to_1xx`, `invite_to_final`, `call_length`, `start_lag`, ….
    pub fn name(self) -> &'static str {
        match self {
            Metric::FirstProvisional => "invite_to_1xx",
            Metric::FinalResponse => "invite_to_final",
            Metric::CallLength => "call_length",
            Metric::StartLag => "start_lag",
            Metric::RtpJitter => "rtp_jitter",
            Metric::TlsHandshake => "tls_handshake",
            Metric::AuthRoundTrip => "auth_round_trip",
        }
    }
}

/// Quantiles of one histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Largest value kept, in microseconds (one hour). Anything longer is recorded as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Significant decimal digits kept by every histogram (0.1 % resolution).
const SIGFIG: u8 = 3;

#[derive(Clone, Debug)]
pub struct Latencies {
    /// Indexed by `Metric as usize` (same order as `Metric::ALL`).
    fixed: [Histogram<u64>; Metric::ALL.len()],
    /// Scenario-defined `rtd` intervals; a scenario has only a few names, so a linear
    /// search beats hashing and keeps the names owned once.
    rtd: Vec<(Box<str>, Histogram<u64>)>,
}

/// A new empty histogram. Auto-resizing rather than sized for one hour up front: an
/// empty histogram then costs ~16 KB instead of ~190 KB, and it only grows as far as
/// the values actually seen (values are clamped to one hour before recording, so the
/// size stays bounded).
fn new_histogram() -> Histogram<u64> {
    // `new` fails only for sigfig > 5; SIGFIG is a constant 3, so this cannot panic.
    Histogram::new(SIGFIG).expect("3 significant digits is a valid histogram precision")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .min(MAX_LATENCY_US)
}

fn record_into(h: &mut Histogram<u64>, value_us: u64) {
    // `record` grows the histogram as needed; the value is already clamped to one hour so
    // growth is bounded. `saturating_record` would not grow an auto-resizing histogram
    // (it clamps to the current size), so it is only the fallback if growing fails.
    if h.record(value_us).is_err() {
        h.saturating_record(value_us);
    }
}

fn merge_into(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if dst.add(src).is_err() {
        // `add` fails only if `dst` cannot grow to `src`'s range; fall back to copying
        // value by value, clamped to `dst`'s range, rather than losing the counts.
        for v in src.iter_recorded() {
            dst.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn summarize(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            fixed: std::array::from_fn(|_| new_histogram()),
            rtd: Vec::new(),
        }
    }
}

impl Latencies {
    /// Record one value (saturates at the histogram's maximum, 1 hour; never panics).
    pub fn record(&mut self, metric: Metric, d: Duration) {
        record_into(&mut self.fixed[metric as usize], micros(d));
    }
    /// Record a scenario-defined `rtd` interval; allocates only the first time a name is seen.
    pub fn record_rtd(&mut self, name: &str, d: Duration) {
        let us = micros(d);
        if let Some((_, h)) = self.rtd.iter_mut().find(|(n, _)| &**n == name) {
            record_into(h, us);
            return;
        }
        let mut h = new_histogram();
        record_into(&mut h, us);
        self.rtd.push((name.into(), h));
    }
    pub fn merge(&mut self, other: &Latencies) {
        for (dst, src) in self.fixed.iter_mut().zip(other.fixed.iter()) {
            merge_into(dst, src);
        }
        for (name, src) in &other.rtd {
            if src.is_empty() {
                // Nothing to add; don't allocate a histogram for a name that has no data.
                continue;
            }
            match self.rtd.iter_mut().find(|(n, _)| n == name) {
                Some((_, dst)) => merge_into(dst, src),
                None => self.rtd.push((name.clone(), src.clone())),
            }
        }
    }
    /// Empty every histogram (keeps the allocation).
    pub fn reset(&mut self) {
        for h in &mut self.fixed {
            h.reset();
        }
        // rtd names stay: the same scenario records the same names next interval.
        for (_, h) in &mut self.rtd {
            h.reset();
        }
    }
    pub fn summary(&self, metric: Metric) -> Summary {
        summarize(&self.fixed[metric as usize])
    }
    /// Summary of one `rtd` interval by its scenario name (without the `rtd_` prefix);
    /// zeros when nothing was recorded under that name.
    pub fn rtd_summary(&self, name: &str) -> Summary {
        self.rtd
            .iter()
            .find(|(n, _)| &**n == name)
            .map_or_else(Summary::default, |(_, h)| summarize(h))
    }
    /// Every histogram with data: fixed metrics first (by `Metric::ALL` order), then rtd
    /// names in sorted order. Names as in reports (`rtd` ones prefixed `rtd_`).
    pub fn summaries(&self) -> Vec<(String, Summary)> {
        let mut out: Vec<(String, Summary)> = Metric::ALL
            .iter()
            .filter(|m| !self.fixed[**m as usize].is_empty())
            .map(|m| (m.name().to_string(), self.summary(*m)))
            .collect();
        let mut rtd: Vec<&(Box<str>, Histogram<u64>)> =
            self.rtd.iter().filter(|(_, h)| !h.is_empty()).collect();
        rtd.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(
            rtd.into_iter()
                .map(|(n, h)| (format!("rtd_{n}"), summarize(h))),
        );
        out
    }
    /// `{ "<name>": {"count", "p50", "p90", "p99", "max"} }` for every histogram with data
    /// (names and order as in `summaries`), values in ms rounded to 3 decimals (1 µs).
    pub fn to_json(&self) -> Value {
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        let map: Map<String, Value> = self
            .summaries()
            .into_iter()
            .map(|(name, s)| {
                let v = json!({
                    "count": s.count,
                    "p50": round(s.p50),
                    "p90": round(s.p90),
                    "p99": round(s.p99),
                    "max": round(s.max),
                });
                (name, v)
            })
            .collect();
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_d(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Within the histogram's 3-significant-digit resolution.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 1e-3 + 1e-3
    }

    #[test]
    fn names() {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "invite_to_1xx",
                "invite_to_final",
                "call_length",
                "start_lag",
                "rtp_jitter",
                "tls_handshake",
                "auth_round_trip"
            ]
        );
    }

    #[test]
    fn empty_summary_is_zero() {
        let l = Latencies::default();
        assert_eq!(l.summary(Metric::CallLength), Summary::default());
        assert!(l.summaries().is_empty());
        assert_eq!(l.to_json(), json!({}));
        assert_eq!(l.rtd_summary("nope"), Summary::default());
    }

    #[test]
    fn quantiles_in_ms() {
        let mut l = Latencies::default();
        for i in 1..=100 {
            l.record(Metric::FinalResponse, ms_d(i));
        }
        let s = l.summary(Metric::FinalResponse);
        assert_eq!(s.count, 100);
        assert!(close(s.p50, 50.0), "{s:?}");
        assert!(close(s.p90, 90.0), "{s:?}");
        assert!(close(s.p99, 99.0), "{s:?}");
        assert!(close(s.max, 100.0), "{s:?}");
        // Other metrics untouched.
        assert_eq!(l.summary(Metric::FirstProvisional).count, 0);
    }

    #[test]
    fn sub_millisecond_and_zero() {
        let mut l = Latencies::default();
        l.record(Metric::StartLag, Duration::from_micros(250));
        l.record(Metric::StartLag, Duration::ZERO);
        l.record(Metric::StartLag, Duration::from_nanos(10));
        let s = l.summary(Metric::StartLag);
        assert_eq!(s.count, 3);
        assert!(close(s.max, 0.25), "{s:?}");
    }

    #[test]
    fn saturates_at_one_hour() {
        let mut l = Latencies::default();
        l.record(Metric::CallLength, Duration::from_secs(10 * 3600));
        l.record(Metric::CallLength, Duration::MAX);
        let s = l.summary(Metric::CallLength);
        assert_eq!(s.count, 2);
        assert!(close(s.max, 3_600_000.0), "{s:?}");
        l.record_rtd("x", Duration::MAX);
        assert!(close(l.rtd_summary("x").max, 3_600_000.0));
    }

    #[test]
    fn rtd_allocates_per_new_name_only() {
        let mut l = Latencies::default();
        l.record_rtd("b", ms_d(5));
        l.record_rtd("a", ms_d(7));
        l.record_rtd("b", ms_d(6));
        assert_eq!(l.rtd.len(), 2);
        assert_eq!(l.rtd_summary("b").count, 2);
        l.record(Metric::StartLag, ms_d(1));
        l.record(Metric::FirstProvisional, ms_d(1));
        let names: Vec<String> = l.summaries().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["invite_to_1xx", "start_lag", "rtd_a", "rtd_b"]);
    }

    #[test]
    fn merge_adds_and_reset_clears() {
        let mut a = Latencies::default();
        let mut b = Latencies::default();
        a.record(Metric::FinalResponse, ms_d(10));
        b.record(Metric::FinalResponse, ms_d(2000));
        b.record(Metric::FinalResponse, ms_d(3000));
        b.record_rtd("setup", ms_d(40));
        b.record_rtd("empty", ms_d(1));
        b.reset();
        b.record(Metric::FinalResponse, ms_d(2000));
        b.record(Metric::FinalResponse, ms_d(3000));
        b.record_rtd("setup", ms_d(40));
        a.merge(&b);
        let s = a.summary(Metric::FinalResponse);
        assert_eq!(s.count, 3);
        assert!(close(s.max, 3000.0), "{s:?}");
        assert!(close(s.p50, 2000.0), "{s:?}");
        assert_eq!(a.rtd_summary("setup").count, 1);
        // An rtd name that is empty in `b` is not carried over.
        assert!(a.rtd.iter().all(|(n, _)| &**n != "empty"));
        // Merging again into an existing rtd histogram adds.
        a.merge(&b);
        assert_eq!(a.rtd_summary("setup").count, 2);

        a.reset();
        assert!(a.summaries().is_empty());
        assert_eq!(a.summary(Metric::FinalResponse), Summary::default());
        // Usable after reset.
        a.record(Metric::FinalResponse, ms_d(1));
        assert_eq!(a.summary(Metric::FinalResponse).count, 1);
    }

    #[test]
    fn merge_into_empty_copies() {
        let mut a = Latencies::default();
        let mut b = Latencies::default();
        b.record(Metric::CallLength, Duration::from_secs(3000));
        a.merge(&b);
        assert_eq!(a.summary(Metric::CallLength), b.summary(Metric::CallLength));
    }

    #[test]
    fn json_shape() {
        let mut l = Latencies::default();
        l.record(Metric::FirstProvisional, Duration::from_micros(1234));
        l.record_rtd("reg", ms_d(20));
        let v = l.to_json();
        let o = v.as_object().unwrap();
        assert_eq!(o.keys().collect::<Vec<_>>(), ["invite_to_1xx", "rtd_reg"]);
        let first = &o["invite_to_1xx"];
        assert_eq!(first["count"], json!(1));
        assert_eq!(first["p50"], json!(1.234));
        assert_eq!(first["max"], json!(1.234));
        for k in ["count", "p50", "p90", "p99", "max"] {
            assert!(o["rtd_reg"].get(k).is_some(), "{k}");
        }
    }
}

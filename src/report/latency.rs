//! Latency histograms (HdrHistogram) kept per driver and merged per interval.
//! STUB: signatures are the contract.

use std::time::Duration;

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
}

impl Metric {
    pub const ALL: [Metric; 4] =
        [Metric::FirstProvisional, Metric::FinalResponse, Metric::CallLength, Metric::StartLag];
    /// Name used in reports: `invite_to_1xx`, `invite_to_final`, `call_length`, `start_lag`.
    pub fn name(self) -> &'static str {
        todo!()
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
}

#[derive(Clone, Debug)]
pub struct Latencies {
    _private: (),
}

impl Default for Latencies {
    fn default() -> Self {
        todo!()
    }
}

impl Latencies {
    /// Record one value (saturates at the histogram's maximum, 1 hour; never panics).
    pub fn record(&mut self, metric: Metric, d: Duration) {
        let _ = (metric, d);
        todo!()
    }
    /// Record a scenario-defined `rtd` interval; allocates only the first time a name is seen.
    pub fn record_rtd(&mut self, name: &str, d: Duration) {
        let _ = (name, d);
        todo!()
    }
    pub fn merge(&mut self, other: &Latencies) {
        let _ = other;
        todo!()
    }
    /// Empty every histogram (keeps the allocation).
    pub fn reset(&mut self) {
        todo!()
    }
    pub fn summary(&self, metric: Metric) -> Summary {
        let _ = metric;
        todo!()
    }
    /// Every histogram with data: fixed metrics first (by `Metric::ALL` order), then rtd
    /// names in sorted order. Names as in reports (`rtd` ones prefixed `rtd_`).
    pub fn summaries(&self) -> Vec<(String, Summary)> {
        todo!()
    }
}

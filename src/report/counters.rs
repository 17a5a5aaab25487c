//! Plain counters owned by one driver (no atomics, no locks on the hot path);
//! drivers merge them at the end of a run.

use std::collections::BTreeMap;

use super::latency::Latencies;

/// Why a call failed. The names are the keys of `failures` in the JSON report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// A `recv` step or a transaction timer (B, F, H, 2xx without ACK) ran out.
    Timeout,
    /// A message arrived that the current step (and the optional steps after it) does not expect.
    UnexpectedMessage,
    /// The socket refused to send (e.g. ICMP port unreachable surfaced as ECONNREFUSED).
    TransportError,
    /// An `assert` step or a required capture did not hold.
    AssertFailed,
    /// A message could not be built (bad template output, no dialog for `bye`, ...).
    ScenarioError,
    /// The run stopped (interrupt, end of run) while the call was still in progress.
    Aborted,
}

impl FailureReason {
    pub const ALL: [FailureReason; 6] = [
        FailureReason::Timeout,
        FailureReason::UnexpectedMessage,
        FailureReason::TransportError,
        FailureReason::AssertFailed,
        FailureReason::ScenarioError,
        FailureReason::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::UnexpectedMessage => "unexpected_message",
            FailureReason::TransportError => "transport_error",
            FailureReason::AssertFailed => "assert_failed",
            FailureReason::ScenarioError => "scenario_error",
            FailureReason::Aborted => "aborted",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub calls_started: u64,
    pub calls_succeeded: u64,
    pub calls_failed: u64,
    pub failures: [u64; FailureReason::ALL.len()],
    /// Final status codes of failed calls' last response, when there was one.
    pub failure_codes: BTreeMap<u16, u64>,
    pub messages_sent: u64,
    pub messages_received: u64,
    /// Our own retransmissions (timers A, E, G, 2xx) and re-sent ACKs/responses.
    pub messages_retransmitted: u64,
    /// Received duplicates and late messages absorbed without disturbing a call.
    pub messages_absorbed: u64,
    pub messages_unparseable: u64,
    /// Messages that matched no call or transaction (answered statelessly or dropped).
    pub messages_stray: u64,
    /// Calls started late because `--concurrency` was reached at their scheduled time.
    pub starts_delayed: u64,
    /// Offset from the run's start of the latest call start (for the achieved rate).
    pub last_start: Option<std::time::Duration>,
    pub latency: Latencies,
}

/// One failed call, kept for reports (the first few of a run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureSample {
    pub call_number: u64,
    pub call_id: String,
    pub reason: FailureReason,
    /// What happened, e.g. `builtin:uac:34: step 3: expected a 200 response, got `SIP/2.0 486 Busy Here``.
    pub detail: String,
}

impl Counters {
    pub fn fail(&mut self, reason: FailureReason) {
        self.calls_failed += 1;
        self.failures[reason as usize] += 1;
    }

    pub fn failures_of(&self, reason: FailureReason) -> u64 {
        self.failures[reason as usize]
    }

    /// Scalar counters accumulated since `earlier` (latency is left empty: histograms
    /// travel as per-interval data and are merged, not subtracted).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut d = Counters {
            calls_started: self.calls_started.saturating_sub(earlier.calls_started),
            calls_succeeded: self.calls_succeeded.saturating_sub(earlier.calls_succeeded),
            calls_failed: self.calls_failed.saturating_sub(earlier.calls_failed),
            messages_sent: self.messages_sent.saturating_sub(earlier.messages_sent),
            messages_received: self
                .messages_received
                .saturating_sub(earlier.messages_received),
            messages_retransmitted: self
                .messages_retransmitted
                .saturating_sub(earlier.messages_retransmitted),
            messages_absorbed: self
                .messages_absorbed
                .saturating_sub(earlier.messages_absorbed),
            messages_unparseable: self
                .messages_unparseable
                .saturating_sub(earlier.messages_unparseable),
            messages_stray: self.messages_stray.saturating_sub(earlier.messages_stray),
            starts_delayed: self.starts_delayed.saturating_sub(earlier.starts_delayed),
            last_start: self.last_start,
            ..Counters::default()
        };
        for (i, f) in d.failures.iter_mut().enumerate() {
            *f = self.failures[i].saturating_sub(earlier.failures[i]);
        }
        for (code, n) in &self.failure_codes {
            let before = earlier.failure_codes.get(code).copied().unwrap_or(0);
            if *n > before {
                d.failure_codes.insert(*code, n - before);
            }
        }
        d
    }

    pub fn merge(&mut self, other: &Counters) {
        self.merge_scalars(other);
        self.latency.merge(&other.latency);
    }

    /// Everything but latency (which the caller merges separately).
    pub fn merge_scalars(&mut self, other: &Counters) {
        self.calls_started += other.calls_started;
        self.calls_succeeded += other.calls_succeeded;
        self.calls_failed += other.calls_failed;
        for (a, b) in self.failures.iter_mut().zip(other.failures.iter()) {
            *a += b;
        }
        for (code, n) in &other.failure_codes {
            *self.failure_codes.entry(*code).or_default() += n;
        }
        self.messages_sent += other.messages_sent;
        self.messages_received += other.messages_received;
        self.messages_retransmitted += other.messages_retransmitted;
        self.messages_absorbed += other.messages_absorbed;
        self.messages_unparseable += other.messages_unparseable;
        self.messages_stray += other.messages_stray;
        self.starts_delayed += other.starts_delayed;
        self.last_start = self.last_start.max(other.last_start);
    }

    /// Calls started per second over the period in which calls were started (call k
    /// of n starts at (k-1)/rate, so n calls span (n-1)/rate).
    pub fn achieved_cps(&self) -> f64 {
        match self.last_start {
            Some(t) if self.calls_started > 1 && !t.is_zero() => {
                (self.calls_started - 1) as f64 / t.as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

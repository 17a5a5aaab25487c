//! Plain counters owned by one driver (no atomics, no locks on the hot path);
//! drivers merge them at the end of a run.

use std::collections::BTreeMap;

use super::latency::Latencies;
use crate::sip::validate::Malformed;

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
    /// Media failed: no common codec, no media ports, `expect_media` or
    /// `expect_dtmf` did not hold.
    Media,
    /// Digest authentication failed: a second challenge for a request we answered,
    /// a challenge we cannot answer (malformed, unsupported algorithm), or (as the
    /// challenging side) wrong credentials.
    Auth,
}

impl FailureReason {
    pub const ALL: [FailureReason; 8] = [
        FailureReason::Timeout,
        FailureReason::UnexpectedMessage,
        FailureReason::TransportError,
        FailureReason::AssertFailed,
        FailureReason::ScenarioError,
        FailureReason::Aborted,
        FailureReason::Media,
        FailureReason::Auth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::UnexpectedMessage => "unexpected_message",
            FailureReason::TransportError => "transport_error",
            FailureReason::AssertFailed => "assert_failed",
            FailureReason::ScenarioError => "scenario_error",
            FailureReason::Aborted => "aborted",
            FailureReason::Media => "media",
            FailureReason::Auth => "auth",
        }
    }
}

/// Methods whose client transactions are counted apart (`transactions` in the JSON
/// report); any other method counts as `other`. A fixed list so counting is an
/// array index, with no map or allocation per message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxMethod {
    Register,
    Invite,
    Bye,
    Options,
    Message,
    Other,
}

impl TxMethod {
    pub const ALL: [TxMethod; 6] = [
        TxMethod::Register,
        TxMethod::Invite,
        TxMethod::Bye,
        TxMethod::Options,
        TxMethod::Message,
        TxMethod::Other,
    ];

    /// The method of a CSeq (as the transaction layer matches methods: ignoring case).
    pub fn of(method: &str) -> TxMethod {
        TxMethod::ALL[..TxMethod::ALL.len() - 1]
            .iter()
            .copied()
            .find(|m| method.eq_ignore_ascii_case(m.as_str()))
            .unwrap_or(TxMethod::Other)
    }

    /// Name in reports: the method (`REGISTER`, …), or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            TxMethod::Register => "REGISTER",
            TxMethod::Invite => "INVITE",
            TxMethod::Bye => "BYE",
            TxMethod::Options => "OPTIONS",
            TxMethod::Message => "MESSAGE",
            TxMethod::Other => "other",
        }
    }
}

/// Why a message matched no call or transaction. The names are the keys of
/// `messages.stray_by_cause` in the JSON report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StrayCause {
    /// A response whose Call-ID belongs to no call (dropped).
    ResponseNoCall,
    /// A response for a call that matches none of its transactions (dropped).
    ResponseNoTransaction,
    /// A request for a call that has ended and is no retransmission (dropped).
    RequestAfterCall,
    /// An out-of-dialog OPTIONS no scenario takes (answered 200).
    Options,
    /// An in-dialog request (a To tag) or a CANCEL for no call (answered 481).
    UnknownDialog,
    /// An ACK for no call (dropped: ACK is never answered).
    Ack,
    /// A request whose method the scenario does not start calls with (answered 501).
    NotHandled,
    /// A request that would start a call when the run takes no more (answered 503).
    Busy,
}

impl StrayCause {
    pub const ALL: [StrayCause; 8] = [
        StrayCause::ResponseNoCall,
        StrayCause::ResponseNoTransaction,
        StrayCause::RequestAfterCall,
        StrayCause::Options,
        StrayCause::UnknownDialog,
        StrayCause::Ack,
        StrayCause::NotHandled,
        StrayCause::Busy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrayCause::ResponseNoCall => "response_no_call",
            StrayCause::ResponseNoTransaction => "response_no_transaction",
            StrayCause::RequestAfterCall => "request_after_call",
            StrayCause::Options => "options",
            StrayCause::UnknownDialog => "unknown_dialog",
            StrayCause::Ack => "ack",
            StrayCause::NotHandled => "not_handled",
            StrayCause::Busy => "busy",
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
    /// Messages that could not be used: they do not parse, or are requests that
    /// break a rule checked before any call sees them (`sip::validate`).
    pub messages_unparseable: u64,
    /// `messages_unparseable` by cause (`Malformed as usize`).
    pub unparseable_by_cause: [u64; Malformed::ALL.len()],
    /// Messages that matched no call or transaction (answered statelessly or dropped).
    pub messages_stray: u64,
    /// `messages_stray` by cause (`StrayCause as usize`).
    pub stray_by_cause: [u64; StrayCause::ALL.len()],
    /// Calls started late because `--concurrency` was reached at their scheduled time.
    pub starts_delayed: u64,
    /// Offset from the run's start of the latest call start (for the achieved rate).
    pub last_start: Option<std::time::Duration>,
    /// Our client transactions that got a final response (a challenged request
    /// and its retry are two), by `TxMethod as usize`.
    pub transactions: [u64; TxMethod::ALL.len()],
    pub latency: Latencies,
    pub media: MediaCounters,
    /// tcp/tls/ws/wss connections.
    pub connections: ConnectionCounters,
    /// Digest authentication.
    pub auth: AuthCounters,
}

/// Digest authentication figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthCounters {
    /// 401/407 challenges received for our requests (`challenges_401 + challenges_407`).
    pub challenges: u64,
    /// Of those, 401 (`WWW-Authenticate`, a registrar or UAS) and 407
    /// (`Proxy-Authenticate`, a proxy).
    pub challenges_401: u64,
    pub challenges_407: u64,
    /// Requests re-sent with credentials (a `stale=true` challenge included).
    pub retries: u64,
    /// Challenges that failed a call: a second one for an answered request, or one
    /// we could not answer; as the challenging side, wrong credentials.
    pub failures: u64,
    /// Challenges we sent (the `challenge:` step).
    pub sent: u64,
}

impl AuthCounters {
    pub fn merge(&mut self, o: &AuthCounters) {
        self.challenges += o.challenges;
        self.challenges_401 += o.challenges_401;
        self.challenges_407 += o.challenges_407;
        self.retries += o.retries;
        self.failures += o.failures;
        self.sent += o.sent;
    }

    pub fn since(&self, e: &AuthCounters) -> AuthCounters {
        AuthCounters {
            challenges: self.challenges.saturating_sub(e.challenges),
            challenges_401: self.challenges_401.saturating_sub(e.challenges_401),
            challenges_407: self.challenges_407.saturating_sub(e.challenges_407),
            retries: self.retries.saturating_sub(e.retries),
            failures: self.failures.saturating_sub(e.failures),
            sent: self.sent.saturating_sub(e.sent),
        }
    }
}

/// Connection figures of one driver (merged into the report).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounters {
    /// Connections we opened (connect started).
    pub opened: u64,
    /// Connections peers opened to our listener.
    pub accepted: u64,
    /// Open now.
    pub active: u64,
    /// Connects that failed, and connections that ended on an error before or after
    /// they were up (TLS, garbage, reset, stuck).
    pub failed: u64,
    pub closed_by_peer: u64,
    /// Per reason (CloseReason::as_str), errors only.
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// Keep-alive pings sent / answered, pings from peers answered.
    pub keepalives_sent: u64,
}

impl ConnectionCounters {
    pub fn merge(&mut self, o: &ConnectionCounters) {
        self.opened += o.opened;
        self.accepted += o.accepted;
        self.active += o.active;
        self.failed += o.failed;
        self.closed_by_peer += o.closed_by_peer;
        for (k, v) in &o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.keepalives_sent += o.keepalives_sent;
    }

    /// What happened since `earlier` (`active` is a level, not a count).
    pub fn since(&self, earlier: &ConnectionCounters) -> ConnectionCounters {
        let mut errors = self.errors.clone();
        for (k, v) in errors.iter_mut() {
            *v = v.saturating_sub(earlier.errors.get(k).copied().unwrap_or(0));
        }
        errors.retain(|_, v| *v > 0);
        ConnectionCounters {
            opened: self.opened.saturating_sub(earlier.opened),
            accepted: self.accepted.saturating_sub(earlier.accepted),
            active: self.active,
            failed: self.failed.saturating_sub(earlier.failed),
            closed_by_peer: self.closed_by_peer.saturating_sub(earlier.closed_by_peer),
            errors,
            keepalives_sent: self.keepalives_sent.saturating_sub(earlier.keepalives_sent),
        }
    }
}

/// RTP/RTCP and DTMF totals. Packet counts grow as packets go; the per-stream
/// estimates (loss, duplicates, reordering, gaps) are added when a stream closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaCounters {
    /// Streams opened (one per call with media).
    pub streams: u64,
    /// Streams open now.
    pub streams_active: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Longest time between two packets of one stream, µs.
    pub max_gap_us: u64,
    /// Largest jitter estimate any stream reached, µs.
    pub max_jitter_us: u64,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    /// Packets the socket refused (buffer full) and datagrams we could not parse.
    pub send_dropped: u64,
    pub invalid: u64,
    pub dtmf_digits_sent: u64,
    pub dtmf_digits_received: u64,
    /// `expect_dtmf` steps that got other digits (or too few).
    pub dtmf_mismatches: u64,
    /// Streams that agreed on SDES-SRTP.
    pub srtp_streams: u64,
    /// SRTP/SRTCP datagrams whose tag did not verify (wrong key, corrupted, forged).
    pub srtp_auth_failures: u64,
    /// SRTP/SRTCP datagrams already received or too old for the replay window.
    pub srtp_replay_failures: u64,
    /// Plain RTCP on an SRTP stream (sent before the peer's SRTP was keyed).
    pub plain_rtcp: u64,
}

impl MediaCounters {
    fn since(&self, e: &MediaCounters) -> MediaCounters {
        MediaCounters {
            streams: self.streams.saturating_sub(e.streams),
            streams_active: self.streams_active,
            packets_sent: self.packets_sent.saturating_sub(e.packets_sent),
            packets_received: self.packets_received.saturating_sub(e.packets_received),
            bytes_sent: self.bytes_sent.saturating_sub(e.bytes_sent),
            lost: self.lost.saturating_sub(e.lost),
            duplicates: self.duplicates.saturating_sub(e.duplicates),
            out_of_order: self.out_of_order.saturating_sub(e.out_of_order),
            max_gap_us: self.max_gap_us,
            max_jitter_us: self.max_jitter_us,
            rtcp_sent: self.rtcp_sent.saturating_sub(e.rtcp_sent),
            rtcp_received: self.rtcp_received.saturating_sub(e.rtcp_received),
            send_dropped: self.send_dropped.saturating_sub(e.send_dropped),
            invalid: self.invalid.saturating_sub(e.invalid),
            dtmf_digits_sent: self.dtmf_digits_sent.saturating_sub(e.dtmf_digits_sent),
            dtmf_digits_received: self
                .dtmf_digits_received
                .saturating_sub(e.dtmf_digits_received),
            dtmf_mismatches: self.dtmf_mismatches.saturating_sub(e.dtmf_mismatches),
            srtp_streams: self.srtp_streams.saturating_sub(e.srtp_streams),
            srtp_auth_failures: self.srtp_auth_failures.saturating_sub(e.srtp_auth_failures),
            srtp_replay_failures: self
                .srtp_replay_failures
                .saturating_sub(e.srtp_replay_failures),
            plain_rtcp: self.plain_rtcp.saturating_sub(e.plain_rtcp),
        }
    }

    pub fn merge(&mut self, o: &MediaCounters) {
        self.streams += o.streams;
        self.streams_active += o.streams_active;
        self.packets_sent += o.packets_sent;
        self.packets_received += o.packets_received;
        self.bytes_sent += o.bytes_sent;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.max_gap_us = self.max_gap_us.max(o.max_gap_us);
        self.max_jitter_us = self.max_jitter_us.max(o.max_jitter_us);
        self.rtcp_sent += o.rtcp_sent;
        self.rtcp_received += o.rtcp_received;
        self.send_dropped += o.send_dropped;
        self.invalid += o.invalid;
        self.dtmf_digits_sent += o.dtmf_digits_sent;
        self.dtmf_digits_received += o.dtmf_digits_received;
        self.dtmf_mismatches += o.dtmf_mismatches;
        self.srtp_streams += o.srtp_streams;
        self.srtp_auth_failures += o.srtp_auth_failures;
        self.srtp_replay_failures += o.srtp_replay_failures;
        self.plain_rtcp += o.plain_rtcp;
    }
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

    /// A message we could not use, and why.
    pub fn unparseable(&mut self, cause: Malformed) {
        self.messages_unparseable += 1;
        self.unparseable_by_cause[cause as usize] += 1;
    }

    /// A message that matched no call or transaction, and why.
    pub fn stray(&mut self, cause: StrayCause) {
        self.messages_stray += 1;
        self.stray_by_cause[cause as usize] += 1;
    }

    pub fn unparseable_of(&self, cause: Malformed) -> u64 {
        self.unparseable_by_cause[cause as usize]
    }

    pub fn stray_of(&self, cause: StrayCause) -> u64 {
        self.stray_by_cause[cause as usize]
    }

    /// A client transaction for `method` (its CSeq method) got its final response.
    pub fn transaction_completed(&mut self, method: &str) {
        self.transactions[TxMethod::of(method) as usize] += 1;
    }

    pub fn transactions_of(&self, method: TxMethod) -> u64 {
        self.transactions[method as usize]
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
            media: self.media.since(&earlier.media),
            connections: self.connections.since(&earlier.connections),
            auth: self.auth.since(&earlier.auth),
            ..Counters::default()
        };
        for (i, f) in d.failures.iter_mut().enumerate() {
            *f = self.failures[i].saturating_sub(earlier.failures[i]);
        }
        for (i, n) in d.transactions.iter_mut().enumerate() {
            *n = self.transactions[i].saturating_sub(earlier.transactions[i]);
        }
        for (i, n) in d.unparseable_by_cause.iter_mut().enumerate() {
            *n = self.unparseable_by_cause[i].saturating_sub(earlier.unparseable_by_cause[i]);
        }
        for (i, n) in d.stray_by_cause.iter_mut().enumerate() {
            *n = self.stray_by_cause[i].saturating_sub(earlier.stray_by_cause[i]);
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
        for (a, b) in self.transactions.iter_mut().zip(other.transactions.iter()) {
            *a += b;
        }
        self.messages_sent += other.messages_sent;
        self.messages_received += other.messages_received;
        self.messages_retransmitted += other.messages_retransmitted;
        self.messages_absorbed += other.messages_absorbed;
        self.messages_unparseable += other.messages_unparseable;
        self.messages_stray += other.messages_stray;
        for (a, b) in self
            .unparseable_by_cause
            .iter_mut()
            .zip(other.unparseable_by_cause.iter())
        {
            *a += b;
        }
        for (a, b) in self
            .stray_by_cause
            .iter_mut()
            .zip(other.stray_by_cause.iter())
        {
            *a += b;
        }
        self.starts_delayed += other.starts_delayed;
        self.last_start = self.last_start.max(other.last_start);
        self.media.merge(&other.media);
        self.connections.merge(&other.connections);
        self.auth.merge(&other.auth);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_methods() {
        assert_eq!(TxMethod::of("REGISTER"), TxMethod::Register);
        assert_eq!(TxMethod::of("invite"), TxMethod::Invite);
        assert_eq!(TxMethod::of("BYE"), TxMethod::Bye);
        assert_eq!(TxMethod::of("SUBSCRIBE"), TxMethod::Other);
        assert_eq!(TxMethod::of("other"), TxMethod::Other);
        assert_eq!(TxMethod::of(""), TxMethod::Other);
        for (i, m) in TxMethod::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i, "ALL is in index order");
        }
    }

    #[test]
    fn causes_add_to_their_totals_merge_and_subtract() {
        let mut a = Counters::default();
        a.unparseable(Malformed::Garbage);
        a.stray(StrayCause::Options);
        let earlier = a.clone();
        a.unparseable(Malformed::ContentLength);
        a.unparseable(Malformed::Garbage);
        a.stray(StrayCause::Ack);
        assert_eq!((a.messages_unparseable, a.messages_stray), (3, 2));
        assert_eq!(a.unparseable_of(Malformed::Garbage), 2);
        let d = a.since(&earlier);
        assert_eq!((d.messages_unparseable, d.messages_stray), (2, 1));
        assert_eq!(
            (
                d.unparseable_of(Malformed::Garbage),
                d.unparseable_of(Malformed::ContentLength),
                d.stray_of(StrayCause::Options),
                d.stray_of(StrayCause::Ack)
            ),
            (1, 1, 0, 1)
        );
        let mut total = Counters::default();
        total.merge_scalars(&a);
        total.merge_scalars(&d);
        assert_eq!(total.unparseable_of(Malformed::Garbage), 3);
        assert_eq!(total.stray_of(StrayCause::Ack), 2);
        for (i, c) in StrayCause::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "ALL is in index order");
        }
        for (i, c) in Malformed::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "ALL is in index order");
        }
    }

    #[test]
    fn transactions_and_auth_split_merge_and_subtract() {
        let mut a = Counters::default();
        a.transaction_completed("REGISTER");
        a.transaction_completed("REGISTER");
        a.transaction_completed("NOTIFY");
        a.auth.challenges = 3;
        a.auth.challenges_401 = 2;
        a.auth.challenges_407 = 1;
        let earlier = a.clone();
        a.transaction_completed("REGISTER");
        a.auth.challenges += 1;
        a.auth.challenges_407 += 1;
        let d = a.since(&earlier);
        assert_eq!(d.transactions_of(TxMethod::Register), 1);
        assert_eq!(d.transactions_of(TxMethod::Other), 0);
        assert_eq!(
            (
                d.auth.challenges,
                d.auth.challenges_401,
                d.auth.challenges_407
            ),
            (1, 0, 1)
        );
        let mut total = Counters::default();
        total.merge_scalars(&a);
        total.merge_scalars(&earlier);
        assert_eq!(total.transactions_of(TxMethod::Register), 5);
        assert_eq!(total.transactions_of(TxMethod::Other), 2);
        assert_eq!(total.transactions_of(TxMethod::Invite), 0);
        assert_eq!(
            (
                total.auth.challenges,
                total.auth.challenges_401,
                total.auth.challenges_407
            ),
            (7, 4, 3)
        );
    }
}

//! Human-readable run report (printed at the end of a run, or `--report FILE.txt`).

use std::fmt::Write as _;
use std::time::Duration;

use super::counters::{Counters, FailureReason, FailureSample, StrayCause, TxMethod};
use super::json::Side;
use super::latency::Metric;
use crate::sip::validate::Malformed;

/// The report for a run: the main side with its rates, latency table and failure
/// samples, then the loopback peer's counters (when there is one).
pub fn text_report(
    main: &Side<'_>,
    peer: Option<&Side<'_>>,
    elapsed: Duration,
    target_cps: f64,
    achieved_cps: f64,
    failures: &[FailureSample],
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "sipwright run: scenario `{}` ({})",
        main.scenario, main.role
    );
    let _ = writeln!(t, "elapsed: {:.3} s", elapsed.as_secs_f64());
    let _ = writeln!(
        t,
        "rate: target {:.2} calls/s, achieved {:.2} calls/s",
        target_cps, achieved_cps
    );
    side_section(&mut t, main.counters, elapsed, "");
    if !failures.is_empty() {
        let _ = writeln!(t, "failure samples:");
        for s in failures {
            // A detail may quote a multi-line message; keep its lines under the sample.
            let detail = s.detail.trim_end().replace('\n', "\n      ");
            let _ = writeln!(
                t,
                "  call {} ({}): {}: {}",
                s.call_number,
                s.call_id,
                s.reason.as_str(),
                detail
            );
        }
        let more = main
            .counters
            .calls_failed
            .saturating_sub(failures.len() as u64);
        if more > 0 {
            let _ = writeln!(t, "  ... and {more} more failed calls");
        }
    }
    if let Some(p) = peer {
        let _ = writeln!(t, "peer: scenario `{}` ({})", p.scenario, p.role);
        side_section(&mut t, p.counters, elapsed, "  ");
    }
    t
}

/// `unparseable: 2 content_length, 1 garbage; stray: 3 options` — the causes
/// seen, or None when every message was used.
pub fn causes_line(c: &Counters) -> Option<String> {
    let unparseable: Vec<String> = Malformed::ALL
        .iter()
        .filter(|m| c.unparseable_of(**m) > 0)
        .map(|m| format!("{} {}", c.unparseable_of(*m), m.as_str()))
        .collect();
    let stray: Vec<String> = StrayCause::ALL
        .iter()
        .filter(|m| c.stray_of(**m) > 0)
        .map(|m| format!("{} {}", c.stray_of(*m), m.as_str()))
        .collect();
    let mut parts = Vec::new();
    if !unparseable.is_empty() {
        parts.push(format!("unparseable: {}", unparseable.join(", ")));
    }
    if !stray.is_empty() {
        parts.push(format!("stray: {}", stray.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Calls, failures, messages and latencies of one side, each line prefixed by `ind`;
/// rates are over `elapsed`.
fn side_section(t: &mut String, c: &Counters, elapsed: Duration, ind: &str) {
    let _ = writeln!(
        t,
        "{ind}calls: {} started, {} succeeded, {} failed",
        c.calls_started, c.calls_succeeded, c.calls_failed
    );
    if c.starts_delayed > 0 {
        let _ = writeln!(
            t,
            "{ind}starts delayed by the concurrency limit: {}",
            c.starts_delayed
        );
    }
    if c.calls_failed > 0 {
        let reasons: Vec<String> = FailureReason::ALL
            .iter()
            .filter(|r| c.failures_of(**r) > 0)
            .map(|r| format!("{} {}", c.failures_of(*r), r.as_str()))
            .collect();
        let _ = writeln!(t, "{ind}failures: {}", reasons.join(", "));
        if !c.failure_codes.is_empty() {
            let codes: Vec<String> = c
                .failure_codes
                .iter()
                .map(|(code, n)| format!("{n} × {code}"))
                .collect();
            let _ = writeln!(t, "{ind}failure status codes: {}", codes.join(", "));
        }
    }
    let _ = writeln!(
        t,
        "{ind}messages: {} sent, {} received, {} retransmitted, {} absorbed, {} unparseable, {} stray",
        c.messages_sent,
        c.messages_received,
        c.messages_retransmitted,
        c.messages_absorbed,
        c.messages_unparseable,
        c.messages_stray
    );
    for line in [
        causes_line(c),
        transactions_line(c, elapsed),
        media_line(c),
        connections_line(c),
        auth_line(c),
    ]
    .into_iter()
    .flatten()
    {
        let _ = writeln!(t, "{ind}{line}");
    }
    let rows = c.latency.summaries();
    if rows.is_empty() {
        return;
    }
    // Name column as wide as the longest name (rtd names come from the scenario).
    let w = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("latency (ms)".len());
    let _ = writeln!(
        t,
        "{ind}{:<w$}  {:>9}  {:>10}  {:>10}  {:>10}  {:>10}",
        "latency (ms)", "count", "p50", "p90", "p99", "max"
    );
    for (name, s) in rows {
        let _ = writeln!(
            t,
            "{ind}{:<w$}  {:>9}  {:>10.3}  {:>10.3}  {:>10.3}  {:>10.3}",
            name, s.count, s.p50, s.p90, s.p99, s.max
        );
    }
}

/// `rtp: 40 streams, 9,800 sent, 9,790 received, 0 lost, jitter mean 0.12 ms (max 0.90), dtmf 80 sent, 80 received`;
/// None for a run without media.
pub fn media_line(c: &Counters) -> Option<String> {
    let m = &c.media;
    if m.streams == 0 && m.dtmf_digits_sent == 0 && m.dtmf_digits_received == 0 {
        return None;
    }
    let j = c.latency.summary(Metric::RtpJitter);
    let mut line = format!(
        "rtp: {} streams, {} sent, {} received, {} lost, {} duplicates, {} out of order, jitter mean {:.2} ms (max {:.2}), max gap {:.1} ms",
        m.streams,
        m.packets_sent,
        m.packets_received,
        m.lost,
        m.duplicates,
        m.out_of_order,
        j.mean,
        m.max_jitter_us as f64 / 1000.0,
        m.max_gap_us as f64 / 1000.0,
    );
    if m.send_dropped > 0 {
        line.push_str(&format!(
            ", {} not sent (socket buffer full)",
            m.send_dropped
        ));
    }
    if m.srtp_streams > 0 {
        line.push_str(&format!(
            "; srtp: {} streams, {} auth failures, {} replays, {} plain rtcp",
            m.srtp_streams, m.srtp_auth_failures, m.srtp_replay_failures, m.plain_rtcp
        ));
    }
    line.push_str(&format!(
        "; dtmf: {} sent, {} received, {} mismatched",
        m.dtmf_digits_sent, m.dtmf_digits_received, m.dtmf_mismatches
    ));
    Some(line)
}

/// `transactions: REGISTER 2000 (498.7/s), INVITE 1000 (249.4/s)`: our client
/// transactions completed with a final response and their rate over `elapsed`, the
/// methods that had any; None when there were none (a UAS that only answers).
pub fn transactions_line(c: &Counters, elapsed: Duration) -> Option<String> {
    let secs = elapsed.as_secs_f64();
    let parts: Vec<String> = TxMethod::ALL
        .iter()
        .filter(|m| c.transactions_of(**m) > 0)
        .map(|m| {
            let n = c.transactions_of(*m);
            let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
            format!("{} {n} ({rate:.1}/s)", m.as_str())
        })
        .collect();
    (!parts.is_empty()).then(|| format!("transactions: {}", parts.join(", ")))
}

/// `auth: 1000 challenges (401: 1000, 407: 0), 1000 retries, 0 failures; round trip
/// p50 1.20 ms p99 3.10 ms`; None when nothing was challenged.
pub fn auth_line(c: &Counters) -> Option<String> {
    let a = &c.auth;
    if a.challenges + a.sent == 0 {
        return None;
    }
    let mut line = format!(
        "auth: {} challenges (401: {}, 407: {}), {} retries, {} failures",
        a.challenges, a.challenges_401, a.challenges_407, a.retries, a.failures
    );
    if a.sent > 0 {
        line.push_str(&format!(", {} challenges sent", a.sent));
    }
    let rt = c.latency.summary(Metric::AuthRoundTrip);
    if rt.count > 0 {
        line.push_str(&format!(
            "; round trip p50 {:.2} ms p99 {:.2} ms",
            rt.p50, rt.p99
        ));
    }
    Some(line)
}

/// `connections: 1000 opened, 0 accepted, 0 failed, 0 closed by peer; tls handshake p50 1.20 ms p99 3.10 ms`;
/// None over UDP.
pub fn connections_line(c: &Counters) -> Option<String> {
    let k = &c.connections;
    if k.opened + k.accepted == 0 {
        return None;
    }
    let mut line = format!(
        "connections: {} opened, {} accepted, {} failed, {} closed by peer",
        k.opened, k.accepted, k.failed, k.closed_by_peer
    );
    if !k.errors.is_empty() {
        let why: Vec<String> = k.errors.iter().map(|(r, n)| format!("{n} {r}")).collect();
        line.push_str(&format!(" ({})", why.join(", ")));
    }
    let h = c.latency.summary(Metric::TlsHandshake);
    if h.count > 0 {
        line.push_str(&format!(
            "; tls handshake p50 {:.2} ms p99 {:.2} ms",
            h.p50, h.p99
        ));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_report() {
        let mut c = Counters {
            calls_started: 100,
            calls_succeeded: 97,
            messages_sent: 400,
            messages_received: 390,
            messages_retransmitted: 4,
            starts_delayed: 2,
            ..Default::default()
        };
        c.fail(FailureReason::Timeout);
        c.fail(FailureReason::Timeout);
        c.fail(FailureReason::UnexpectedMessage);
        c.failure_codes.insert(486, 1);
        c.latency
            .record(Metric::FinalResponse, Duration::from_micros(2000));
        c.latency
            .record_rtd("register", Duration::from_micros(1500));
        let peer_c = Counters {
            calls_started: 99,
            calls_succeeded: 99,
            ..Default::default()
        };
        let main = Side {
            scenario: "uac",
            role: "uac",
            counters: &c,
        };
        let peer = Side {
            scenario: "uas",
            role: "uas",
            counters: &peer_c,
        };
        let samples = [FailureSample {
            call_number: 7,
            call_id: "7-x@h".into(),
            reason: FailureReason::Timeout,
            detail: "step 3: no 200\nsecond line".into(),
        }];
        let r = text_report(
            &main,
            Some(&peer),
            Duration::from_secs(10),
            10.0,
            9.9,
            &samples,
        );
        let expect = [
            "sipwright run: scenario `uac` (uac)\n",
            "elapsed: 10.000 s\n",
            "rate: target 10.00 calls/s, achieved 9.90 calls/s\n",
            "calls: 100 started, 97 succeeded, 3 failed\n",
            "starts delayed by the concurrency limit: 2\n",
            "failures: 2 timeout, 1 unexpected_message\n",
            "failure status codes: 1 × 486\n",
            "messages: 400 sent, 390 received, 4 retransmitted, 0 absorbed, 0 unparseable, 0 stray\n",
            "latency (ms)         count         p50         p90         p99         max\n",
            "invite_to_final          1       2.000       2.000       2.000       2.000\n",
            "rtd_register             1       1.500       1.500       1.500       1.500\n",
            "failure samples:\n  call 7 (7-x@h): timeout: step 3: no 200\n      second line\n",
            "  ... and 2 more failed calls\n",
            "peer: scenario `uas` (uas)\n  calls: 99 started, 99 succeeded, 0 failed\n",
        ];
        for e in expect {
            assert!(r.contains(e), "missing {e:?} in\n{r}");
        }
        // Order: main counters, latency, samples, then the peer.
        let pos = |s: &str| r.find(s).unwrap();
        assert!(pos("calls: 100") < pos("latency (ms)"));
        assert!(pos("latency (ms)") < pos("failure samples"));
        assert!(pos("failure samples") < pos("peer:"));
    }

    #[test]
    fn quiet_run_has_no_empty_sections() {
        let c = Counters {
            calls_started: 1,
            calls_succeeded: 1,
            ..Default::default()
        };
        let main = Side {
            scenario: "s",
            role: "uac",
            counters: &c,
        };
        let r = text_report(&main, None, Duration::from_millis(5), 1.0, 1.0, &[]);
        for absent in [
            "failures",
            "latency",
            "samples",
            "peer",
            "delayed",
            "transactions",
            "auth",
        ] {
            assert!(!r.contains(absent), "{absent} in\n{r}");
        }
    }

    #[test]
    fn register_run_has_transaction_rates_and_auth_figures() {
        let mut c = Counters {
            calls_started: 1000,
            calls_succeeded: 1000,
            ..Default::default()
        };
        for _ in 0..2000 {
            c.transaction_completed("REGISTER");
        }
        c.transaction_completed("BYE");
        c.auth.challenges = 1000;
        c.auth.challenges_401 = 1000;
        c.auth.retries = 1000;
        c.latency
            .record(Metric::AuthRoundTrip, Duration::from_micros(1200));
        let main = Side {
            scenario: "reg",
            role: "uac",
            counters: &c,
        };
        let r = text_report(&main, None, Duration::from_secs(4), 250.0, 250.0, &[]);
        for e in [
            "transactions: REGISTER 2000 (500.0/s), BYE 1 (0.2/s)\n",
            "auth: 1000 challenges (401: 1000, 407: 0), 1000 retries, 0 failures; round trip p50 1.20 ms p99 1.20 ms\n",
            "auth_round_trip          1       1.200",
        ] {
            assert!(r.contains(e), "missing {e:?} in\n{r}");
        }
        // Methods without transactions are left out.
        assert!(!r.contains("INVITE"), "{r}");
        assert_eq!(
            transactions_line(&c, Duration::ZERO).unwrap(),
            "transactions: REGISTER 2000 (0.0/s), BYE 1 (0.0/s)"
        );
    }

    #[test]
    fn causes_line_lists_what_was_seen() {
        let mut c = Counters::default();
        assert_eq!(causes_line(&c), None);
        c.unparseable(Malformed::Garbage);
        c.unparseable(Malformed::ContentLength);
        c.unparseable(Malformed::ContentLength);
        assert_eq!(
            causes_line(&c).as_deref(),
            Some("unparseable: 1 garbage, 2 content_length")
        );
        c.stray(StrayCause::Options);
        assert_eq!(
            causes_line(&c).as_deref(),
            Some("unparseable: 1 garbage, 2 content_length; stray: 1 options")
        );
    }
}

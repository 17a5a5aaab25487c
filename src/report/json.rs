//! The JSON run report (`--report FILE.json`). Field names are a stable interface:
//! later versions add fields, they do not rename or remove them (see docs/report.md).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::counters::{Counters, FailureReason, StrayCause, TxMethod};
use super::latency::Metric;
use crate::sip::validate::Malformed;

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One side of a run (the scenario the user ran, or its loopback peer).
pub struct Side<'a> {
    pub scenario: &'a str,
    pub role: &'a str,
    pub counters: &'a Counters,
}

/// One side's fields; `elapsed` (the run's length) is what transaction rates are over.
pub fn side_json(side: &Side<'_>, elapsed: Duration) -> Value {
    let c = side.counters;
    let failures: Map<String, Value> = FailureReason::ALL
        .iter()
        .map(|r| (r.as_str().to_string(), json!(c.failures_of(*r))))
        .collect();
    let codes: Map<String, Value> = c
        .failure_codes
        .iter()
        .map(|(code, n)| (code.to_string(), json!(n)))
        .collect();
    json!({
        "scenario": side.scenario,
        "role": side.role,
        "calls": {
            "started": c.calls_started,
            "succeeded": c.calls_succeeded,
            "failed": c.calls_failed,
        },
        "failures": failures,
        "starts_delayed": c.starts_delayed,
        "failure_status_codes": codes,
        "messages": {
            "sent": c.messages_sent,
            "received": c.messages_received,
            "retransmitted": c.messages_retransmitted,
            "absorbed": c.messages_absorbed,
            "unparseable": c.messages_unparseable,
            "stray": c.messages_stray,
            "unparseable_by_cause": unparseable_json(c),
            "stray_by_cause": stray_json(c),
        },
        "rtp": rtp_json(c),
        "connections": connections_json(c),
        "transactions": transactions_json(c, elapsed),
        "auth": auth_json(c),
        "dtmf": {
            "digits_sent": c.media.dtmf_digits_sent,
            "digits_received": c.media.dtmf_digits_received,
            "mismatches": c.media.dtmf_mismatches,
        },
    })
}

/// `messages.unparseable` by cause, every cause present (zero when unseen).
fn unparseable_json(c: &Counters) -> Value {
    Malformed::ALL
        .iter()
        .map(|m| (m.as_str().to_string(), json!(c.unparseable_of(*m))))
        .collect::<Map<String, Value>>()
        .into()
}

/// `messages.stray` by cause, every cause present.
fn stray_json(c: &Counters) -> Value {
    StrayCause::ALL
        .iter()
        .map(|m| (m.as_str().to_string(), json!(c.stray_of(*m))))
        .collect::<Map<String, Value>>()
        .into()
}

/// Client transactions completed with a final response, per method, and their
/// rate over the whole run: `{"REGISTER": {"completed": N, "per_second": X}, …}`,
/// every method present (zero when unused) so the keys do not depend on the run.
fn transactions_json(c: &Counters, elapsed: Duration) -> Value {
    let secs = elapsed.as_secs_f64();
    let map: Map<String, Value> = TxMethod::ALL
        .iter()
        .map(|m| {
            let n = c.transactions_of(*m);
            // A zero-length run has no rate: 0 rather than inf/NaN (not JSON).
            let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
            (
                m.as_str().to_string(),
                json!({"completed": n, "per_second": round3(rate)}),
            )
        })
        .collect();
    Value::Object(map)
}

/// Digest authentication figures of a side (all zero without challenges).
fn auth_json(c: &Counters) -> Value {
    let a = &c.auth;
    let rt = c.latency.summary(Metric::AuthRoundTrip);
    json!({
        "challenges": a.challenges,
        "challenges_401": a.challenges_401,
        "challenges_407": a.challenges_407,
        "retries": a.retries,
        "failures": a.failures,
        "sent": a.sent,
        "round_trips": rt.count,
        "round_trip_ms": {"p50": round3(rt.p50), "p99": round3(rt.p99)},
    })
}

/// Connection figures of a side (all zero over UDP).
fn connections_json(c: &Counters) -> Value {
    let k = &c.connections;
    let h = c.latency.summary(super::latency::Metric::TlsHandshake);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "opened": k.opened,
        "accepted": k.accepted,
        "failed": k.failed,
        "closed_by_peer": k.closed_by_peer,
        "errors": k.errors,
        "keepalives_sent": k.keepalives_sent,
        "tls_handshakes": h.count,
        "tls_handshake_ms": {"p50": round(h.p50), "p99": round(h.p99)},
    })
}

/// RTP figures of a side (all zero for a signalling-only scenario).
fn rtp_json(c: &Counters) -> Value {
    let m = &c.media;
    let j = c.latency.summary(super::latency::Metric::RtpJitter);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "streams": m.streams,
        "packets_sent": m.packets_sent,
        "packets_received": m.packets_received,
        "bytes_sent": m.bytes_sent,
        "lost": m.lost,
        "duplicates": m.duplicates,
        "out_of_order": m.out_of_order,
        "jitter_ms": {
            "mean": round(j.mean),
            "p99": round(j.p99),
            "max": round(m.max_jitter_us as f64 / 1000.0),
        },
        "max_gap_ms": round(m.max_gap_us as f64 / 1000.0),
        "rtcp_sent": m.rtcp_sent,
        "rtcp_received": m.rtcp_received,
        "send_dropped": m.send_dropped,
        "invalid": m.invalid,
        "srtp_streams": m.srtp_streams,
        "srtp_auth_failures": m.srtp_auth_failures,
        "srtp_replay_failures": m.srtp_replay_failures,
        "plain_rtcp": m.plain_rtcp,
    })
}

/// The whole report: the main side's fields at the top level, the peer (when the
/// run used `--loopback`) under `peer`.
pub fn report_json(data: &super::ReportData<'_>) -> Value {
    let mut v = side_json(data.main, data.elapsed);
    if let Value::Object(m) = &mut v {
        m.insert("version".into(), json!(1));
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        m.insert("elapsed_s".into(), json!(round(data.elapsed.as_secs_f64())));
        m.insert(
            "rate".into(),
            json!({"target_cps": round(data.target_cps), "achieved_cps": round(data.achieved_cps)}),
        );
        m.insert("latency_ms".into(), data.main.counters.latency.to_json());
        let samples: Vec<Value> = data
            .failures
            .iter()
            .map(|f| {
                json!({"call_number": f.call_number, "call_id": f.call_id, "reason": f.reason.as_str(), "detail": f.detail})
            })
            .collect();
        m.insert("failure_samples".into(), Value::Array(samples));
        if let Some(p) = data.peer {
            m.insert("peer".into(), side_json(p, data.elapsed));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportData;

    fn report(main: &Counters, peer: &Counters, elapsed: Duration) -> Value {
        let main = Side {
            scenario: "reg",
            role: "uac",
            counters: main,
        };
        let peer = Side {
            scenario: "registrar",
            role: "uas",
            counters: peer,
        };
        report_json(&ReportData {
            main: &main,
            peer: Some(&peer),
            elapsed,
            target_cps: 500.0,
            achieved_cps: 500.0,
            failures: &[],
        })
    }

    #[test]
    fn transactions_per_method_with_rates_over_the_run() {
        let mut c = Counters::default();
        for _ in 0..2000 {
            c.transaction_completed("REGISTER");
        }
        c.transaction_completed("INVITE");
        c.transaction_completed("SUBSCRIBE");
        let v = report(&c, &Counters::default(), Duration::from_secs(4));
        let t = &v["transactions"];
        let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        // Every method, used or not (serde_json's map is sorted).
        assert_eq!(
            keys,
            ["BYE", "INVITE", "MESSAGE", "OPTIONS", "REGISTER", "other"]
        );
        assert_eq!(
            t["REGISTER"],
            json!({"completed": 2000, "per_second": 500.0})
        );
        assert_eq!(t["INVITE"], json!({"completed": 1, "per_second": 0.25}));
        assert_eq!(t["other"]["completed"], json!(1));
        assert_eq!(t["BYE"], json!({"completed": 0, "per_second": 0.0}));
        // The peer's over the same run length.
        assert_eq!(v["peer"]["transactions"]["REGISTER"]["completed"], json!(0));
        // A zero-length run: no inf/NaN.
        let v = report(&c, &Counters::default(), Duration::ZERO);
        assert_eq!(v["transactions"]["REGISTER"]["per_second"], json!(0.0));
    }

    #[test]
    fn messages_by_cause_list_every_cause() {
        let mut c = Counters::default();
        c.unparseable(Malformed::ContentLength);
        c.unparseable(Malformed::ContentLength);
        c.stray(StrayCause::Options);
        let v = report(&c, &Counters::default(), Duration::from_secs(1));
        let m = &v["messages"];
        assert_eq!(
            (m["unparseable"].clone(), m["stray"].clone()),
            (json!(2), json!(1))
        );
        let u = m["unparseable_by_cause"].as_object().unwrap();
        assert_eq!(u.len(), Malformed::ALL.len());
        assert_eq!(u["content_length"], json!(2));
        assert_eq!(u["garbage"], json!(0));
        let s = m["stray_by_cause"].as_object().unwrap();
        assert_eq!(s.len(), StrayCause::ALL.len());
        assert_eq!(s["options"], json!(1));
        assert_eq!(s["response_no_call"], json!(0));
    }

    #[test]
    fn auth_split_and_round_trip() {
        let mut c = Counters::default();
        c.auth.challenges = 3;
        c.auth.challenges_401 = 2;
        c.auth.challenges_407 = 1;
        c.auth.retries = 3;
        // Below 2048 µs the histogram keeps every microsecond: exact quantiles.
        c.latency
            .record(Metric::AuthRoundTrip, Duration::from_micros(1500));
        let v = report(&c, &Counters::default(), Duration::from_secs(1));
        assert_eq!(
            v["auth"],
            json!({
                "challenges": 3,
                "challenges_401": 2,
                "challenges_407": 1,
                "retries": 3,
                "failures": 0,
                "sent": 0,
                "round_trips": 1,
                "round_trip_ms": {"p50": 1.5, "p99": 1.5},
            })
        );
        // The histogram is in latency_ms like every other metric.
        assert_eq!(v["latency_ms"]["auth_round_trip"]["count"], json!(1));
        assert_eq!(v["peer"]["auth"]["challenges_407"], json!(0));
        assert_eq!(v["peer"]["auth"]["round_trips"], json!(0));
    }
}

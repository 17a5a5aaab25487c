//! The JSON run report (`--report FILE.json`). Field names are a stable interface:
//! later versions add fields, they do not rename or remove them (see docs/report.md).

use serde_json::{Map, Value, json};

use super::counters::{Counters, FailureReason};

/// One side of a run (the scenario the user ran, or its loopback peer).
pub struct Side<'a> {
    pub scenario: &'a str,
    pub role: &'a str,
    pub counters: &'a Counters,
}

pub fn side_json(side: &Side<'_>) -> Value {
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
        },
        "rtp": rtp_json(c),
        "connections": connections_json(c),
        "auth": {
            "challenges": c.auth.challenges,
            "retries": c.auth.retries,
            "failures": c.auth.failures,
            "sent": c.auth.sent,
        },
        "dtmf": {
            "digits_sent": c.media.dtmf_digits_sent,
            "digits_received": c.media.dtmf_digits_received,
            "mismatches": c.media.dtmf_mismatches,
        },
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
    let mut v = side_json(data.main);
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
            m.insert("peer".into(), side_json(p));
        }
    }
    v
}

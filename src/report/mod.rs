//! Counters collected by the drivers and the report files written from them.

pub mod counters;
pub mod json;
pub mod junit;
pub mod latency;
pub mod pcap;
pub mod progress;
pub mod stats_file;
pub mod text;
pub mod trace;

use std::path::Path;
use std::time::Duration;

pub use counters::{
    AuthCounters, ConnectionCounters, Counters, FailureReason, FailureSample, MediaCounters,
    StrayCause, TxMethod,
};
use json::Side;

/// Failure samples shown in the summary on stdout (reports list all kept samples).
const SUMMARY_FAILURES: usize = 5;

/// Everything a final report is made from.
pub struct ReportData<'a> {
    pub main: &'a Side<'a>,
    /// The in-process peer of a `--loopback` run.
    pub peer: Option<&'a Side<'a>>,
    pub elapsed: Duration,
    /// Mean target rate over the run (calls/s).
    pub target_cps: f64,
    pub achieved_cps: f64,
    pub failures: &'a [FailureSample],
}

/// Write the report in the format the file name asks for: `.xml` JUnit, `.txt` text,
/// anything else JSON.
pub fn write_report_file(path: &Path, data: &ReportData<'_>) -> std::io::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = match ext.as_str() {
        "xml" => junit::junit_xml(data.main, data.elapsed, data.failures),
        "txt" => text::text_report(
            data.main,
            data.peer,
            data.elapsed,
            data.target_cps,
            data.achieved_cps,
            data.failures,
        ),
        _ => {
            let mut t = serde_json::to_string_pretty(&json::report_json(data))
                .map_err(std::io::Error::other)?;
            t.push('\n');
            t
        }
    };
    std::fs::write(path, text)
}

/// The few lines printed on stdout at the end of a run.
pub fn summary_text(data: &ReportData<'_>) -> String {
    let mut out = String::new();
    for side in std::iter::once(data.main).chain(data.peer.filter(|p| p.counters.calls_failed > 0))
    {
        let c = side.counters;
        let secs = data.elapsed.as_secs_f64().max(1e-9);
        out.push_str(&format!(
            "{}: {} calls, {} succeeded, {} failed in {:.2} s ({:.1} calls/s); messages: {} sent, {} received, {} retransmitted, {} absorbed, {} unparseable\n",
            side.scenario,
            c.calls_started,
            c.calls_succeeded,
            c.calls_failed,
            secs,
            if std::ptr::eq(side, data.main) { data.achieved_cps } else { c.achieved_cps() },
            c.messages_sent,
            c.messages_received,
            c.messages_retransmitted,
            c.messages_absorbed,
            c.messages_unparseable,
        ));
        for r in FailureReason::ALL {
            let n = c.failures_of(r);
            if n > 0 {
                out.push_str(&format!("  failed: {} × {}\n", n, r.as_str()));
            }
        }
    }
    for line in [
        text::causes_line(data.main.counters),
        text::transactions_line(data.main.counters, data.elapsed),
        text::media_line(data.main.counters),
        text::connections_line(data.main.counters),
        text::auth_line(data.main.counters),
    ]
    .into_iter()
    .flatten()
    {
        out.push_str(&format!("  {line}\n"));
    }
    let setup = data
        .main
        .counters
        .latency
        .summary(latency::Metric::FinalResponse);
    if setup.count > 0 {
        out.push_str(&format!(
            "  INVITE → final response: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
            setup.p50, setup.p90, setup.p99, setup.max
        ));
    }
    for f in data.failures.iter().take(SUMMARY_FAILURES) {
        out.push_str(&format!(
            "  call {} ({}): {}: {}\n",
            f.call_number,
            f.call_id,
            f.reason.as_str(),
            f.detail
        ));
    }
    out
}

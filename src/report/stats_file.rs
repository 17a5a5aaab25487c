//! Periodic statistics file (`--stats-file FILE`): one row per reporting interval, CSV
//! (fixed columns, header first) or JSON lines when the name ends in `.jsonl`.
//!
//! Columns:
//! - `elapsed_s`, `target_cps`, `achieved_cps` (interval calls started / interval length)
//! - `calls_started`, `calls_succeeded`, `calls_failed`: this interval
//! - `total_calls_started`, `total_calls_succeeded`, `total_calls_failed`: since the start
//! - `failures_<reason>`: since the start, one per `FailureReason`
//! - `messages_sent`, `..._received`, `..._retransmitted`, `..._absorbed`,
//!   `..._unparseable`, `..._stray`, `starts_delayed`: this interval
//! - `rtp_streams_active` (now), `rtp_streams`, `rtp_packets_sent`, `..._received`,
//!   `rtp_bytes_sent`, `rtp_lost`, `rtp_duplicates`, `rtp_out_of_order` (loss and
//!   reordering counted when a stream closes), `rtcp_sent`, `rtcp_received`,
//!   `dtmf_digits_sent`, `dtmf_digits_received`: this interval
//! - `connections_active` (now), `connections_opened`, `..._accepted`, `..._failed`,
//!   `..._closed_by_peer`: this interval
//! - `auth_challenges`, `auth_challenges_401`, `auth_challenges_407`, `auth_retries`,
//!   `auth_failures`, `auth_sent`: this interval
//! - `transactions_<method>` (`register`, `invite`, `bye`, `options`, `message`,
//!   `other`): our client transactions completed with a final response, this interval
//! - `<metric>_p50_ms`, `<metric>_p99_ms` for each fixed latency metric: this interval;
//!   empty in CSV (null in JSON) when the interval has no value.
//!
//! JSON lines have the same keys, plus `failure_status_codes` (since the start) and
//! `latency_ms` (this interval, every histogram including `rtd_*` ones, as in
//! `Latencies::to_json`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::counters::{Counters, FailureReason, TxMethod};
use super::latency::Metric;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
}

pub struct StatsFile {
    out: BufWriter<File>,
    format: Format,
}

/// One cell: a named value, in column order.
enum Cell {
    Int(u64),
    Float(f64),
    /// A value that may be missing (latency of an interval without samples).
    Opt(Option<f64>),
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn columns(
    elapsed: Duration,
    interval_len: Duration,
    interval: &Counters,
    cumulative: &Counters,
    target_cps: f64,
) -> Vec<(String, Cell)> {
    let len = interval_len.as_secs_f64();
    // A zero-length interval has no meaningful rate; 0 rather than inf/NaN, which
    // neither CSV consumers nor JSON can take.
    let achieved = if len > 0.0 {
        interval.calls_started as f64 / len
    } else {
        0.0
    };
    let mut cols: Vec<(String, Cell)> = vec![
        ("elapsed_s".into(), Cell::Float(elapsed.as_secs_f64())),
        (
            "target_cps".into(),
            Cell::Float(if target_cps.is_finite() {
                target_cps
            } else {
                0.0
            }),
        ),
        ("achieved_cps".into(), Cell::Float(achieved)),
        ("calls_started".into(), Cell::Int(interval.calls_started)),
        (
            "calls_succeeded".into(),
            Cell::Int(interval.calls_succeeded),
        ),
        ("calls_failed".into(), Cell::Int(interval.calls_failed)),
        (
            "total_calls_started".into(),
            Cell::Int(cumulative.calls_started),
        ),
        (
            "total_calls_succeeded".into(),
            Cell::Int(cumulative.calls_succeeded),
        ),
        (
            "total_calls_failed".into(),
            Cell::Int(cumulative.calls_failed),
        ),
    ];
    for r in FailureReason::ALL {
        cols.push((
            format!("failures_{}", r.as_str()),
            Cell::Int(cumulative.failures_of(r)),
        ));
    }
    cols.extend([
        ("messages_sent".into(), Cell::Int(interval.messages_sent)),
        (
            "messages_received".into(),
            Cell::Int(interval.messages_received),
        ),
        (
            "messages_retransmitted".into(),
            Cell::Int(interval.messages_retransmitted),
        ),
        (
            "messages_absorbed".into(),
            Cell::Int(interval.messages_absorbed),
        ),
        (
            "messages_unparseable".into(),
            Cell::Int(interval.messages_unparseable),
        ),
        ("messages_stray".into(), Cell::Int(interval.messages_stray)),
        ("starts_delayed".into(), Cell::Int(interval.starts_delayed)),
    ]);
    let m = &interval.media;
    cols.extend([
        (
            "rtp_streams_active".into(),
            Cell::Int(cumulative.media.streams_active),
        ),
        ("rtp_streams".into(), Cell::Int(m.streams)),
        ("rtp_packets_sent".into(), Cell::Int(m.packets_sent)),
        ("rtp_packets_received".into(), Cell::Int(m.packets_received)),
        ("rtp_bytes_sent".into(), Cell::Int(m.bytes_sent)),
        ("rtp_lost".into(), Cell::Int(m.lost)),
        ("rtp_duplicates".into(), Cell::Int(m.duplicates)),
        ("rtp_out_of_order".into(), Cell::Int(m.out_of_order)),
        ("rtcp_sent".into(), Cell::Int(m.rtcp_sent)),
        ("rtcp_received".into(), Cell::Int(m.rtcp_received)),
        ("dtmf_digits_sent".into(), Cell::Int(m.dtmf_digits_sent)),
        (
            "dtmf_digits_received".into(),
            Cell::Int(m.dtmf_digits_received),
        ),
    ]);
    let k = &interval.connections;
    cols.extend([
        (
            "connections_active".into(),
            Cell::Int(cumulative.connections.active),
        ),
        ("connections_opened".into(), Cell::Int(k.opened)),
        ("connections_accepted".into(), Cell::Int(k.accepted)),
        ("connections_failed".into(), Cell::Int(k.failed)),
        (
            "connections_closed_by_peer".into(),
            Cell::Int(k.closed_by_peer),
        ),
    ]);
    let a = &interval.auth;
    cols.extend([
        ("auth_challenges".into(), Cell::Int(a.challenges)),
        ("auth_challenges_401".into(), Cell::Int(a.challenges_401)),
        ("auth_challenges_407".into(), Cell::Int(a.challenges_407)),
        ("auth_retries".into(), Cell::Int(a.retries)),
        ("auth_failures".into(), Cell::Int(a.failures)),
        ("auth_sent".into(), Cell::Int(a.sent)),
    ]);
    for m in TxMethod::ALL {
        cols.push((
            format!("transactions_{}", m.as_str().to_ascii_lowercase()),
            Cell::Int(interval.transactions_of(m)),
        ));
    }
    for m in Metric::ALL {
        let s = interval.latency.summary(m);
        let has = s.count > 0;
        cols.push((
            format!("{}_p50_ms", m.name()),
            Cell::Opt(has.then_some(s.p50)),
        ));
        cols.push((
            format!("{}_p99_ms", m.name()),
            Cell::Opt(has.then_some(s.p99)),
        ));
    }
    cols
}

fn csv_cell(c: &Cell) -> String {
    match c {
        Cell::Int(n) => n.to_string(),
        Cell::Float(v) | Cell::Opt(Some(v)) => format!("{:.3}", v),
        Cell::Opt(None) => String::new(),
    }
}

fn json_cell(c: &Cell) -> Value {
    match c {
        Cell::Int(n) => json!(n),
        Cell::Float(v) | Cell::Opt(Some(v)) => json!(round3(*v)),
        Cell::Opt(None) => Value::Null,
    }
}

impl StatsFile {
    /// Create (truncate) the file: JSON lines when the name ends in `.jsonl`, CSV
    /// otherwise, whose header is written right away.
    pub fn create(path: &Path) -> io::Result<StatsFile> {
        let jsonl = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
        let format = if jsonl {
            Format::JsonLines
        } else {
            Format::Csv
        };
        let mut out = BufWriter::new(File::create(path)?);
        if format == Format::Csv {
            let empty = Counters::default();
            let names: Vec<String> = columns(Duration::ZERO, Duration::ZERO, &empty, &empty, 0.0)
                .into_iter()
                .map(|c| c.0)
                .collect();
            writeln!(out, "{}", names.join(","))?;
        }
        Ok(StatsFile { out, format })
    }

    /// Append the row for one interval: `interval` holds what happened during the
    /// `interval_len` ending at `elapsed` (from the start of the run), `cumulative`
    /// everything since the start.
    pub fn write_row(
        &mut self,
        elapsed: Duration,
        interval_len: Duration,
        interval: &Counters,
        cumulative: &Counters,
        target_cps: f64,
    ) -> io::Result<()> {
        let cols = columns(elapsed, interval_len, interval, cumulative, target_cps);
        match self.format {
            Format::Csv => {
                let cells: Vec<String> = cols.iter().map(|(_, c)| csv_cell(c)).collect();
                writeln!(self.out, "{}", cells.join(","))
            }
            Format::JsonLines => {
                let mut m: Map<String, Value> = cols
                    .iter()
                    .map(|(n, c)| (n.clone(), json_cell(c)))
                    .collect();
                let codes: Map<String, Value> = cumulative
                    .failure_codes
                    .iter()
                    .map(|(code, n)| (code.to_string(), json!(n)))
                    .collect();
                m.insert("failure_status_codes".into(), Value::Object(codes));
                m.insert("latency_ms".into(), interval.latency.to_json());
                let line = serde_json::to_string(&Value::Object(m)).map_err(io::Error::other)?;
                writeln!(self.out, "{line}")
            }
        }
    }

    /// Push buffered rows to the file (so a run's progress can be followed live).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh path under the system temp dir, removed when dropped.
    struct TempPath(std::path::PathBuf);
    impl TempPath {
        fn new(name: &str) -> TempPath {
            let dir = std::env::temp_dir();
            TempPath(dir.join(format!("sipwright-stats-{}-{name}", std::process::id())))
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn counters() -> (Counters, Counters) {
        let mut interval = Counters {
            calls_started: 50,
            calls_succeeded: 48,
            messages_sent: 200,
            messages_received: 190,
            messages_retransmitted: 3,
            starts_delayed: 1,
            ..Default::default()
        };
        interval.fail(FailureReason::Timeout);
        interval.fail(FailureReason::Aborted);
        interval
            .latency
            .record(Metric::FinalResponse, Duration::from_micros(2000));
        interval.latency.record_rtd("reg", Duration::from_millis(4));
        interval.auth.challenges = 5;
        interval.auth.challenges_401 = 3;
        interval.auth.challenges_407 = 2;
        interval
            .latency
            .record(Metric::AuthRoundTrip, Duration::from_micros(1500));
        for _ in 0..7 {
            interval.transaction_completed("REGISTER");
        }
        let mut cumulative = interval.clone();
        cumulative.calls_started += 100;
        cumulative.calls_succeeded += 100;
        cumulative.failure_codes.insert(503, 4);
        (interval, cumulative)
    }

    #[test]
    fn csv_rows() {
        let p = TempPath::new("a.csv");
        let (interval, cumulative) = counters();
        let mut f = StatsFile::create(&p.0).unwrap();
        f.write_row(
            Duration::from_secs(5),
            Duration::from_secs(5),
            &interval,
            &cumulative,
            10.0,
        )
        .unwrap();
        f.write_row(
            Duration::from_secs(10),
            Duration::from_secs(5),
            &Counters::default(),
            &cumulative,
            10.0,
        )
        .unwrap();
        f.flush().unwrap();
        let text = std::fs::read_to_string(&p.0).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(
            &header[..9],
            [
                "elapsed_s",
                "target_cps",
                "achieved_cps",
                "calls_started",
                "calls_succeeded",
                "calls_failed",
                "total_calls_started",
                "total_calls_succeeded",
                "total_calls_failed"
            ]
        );
        assert!(header.contains(&"failures_unexpected_message"));
        assert!(header.contains(&"starts_delayed"));
        assert_eq!(header.last(), Some(&"auth_round_trip_p99_ms"));
        assert!(header.contains(&"rtp_packets_received"));
        let row = |i: usize| -> std::collections::HashMap<&str, &str> {
            let cells: Vec<&str> = lines[i].split(',').collect();
            assert_eq!(cells.len(), header.len());
            header.iter().copied().zip(cells).collect()
        };
        let r = row(1);
        assert_eq!(r["elapsed_s"], "5.000");
        assert_eq!(r["target_cps"], "10.000");
        assert_eq!(r["achieved_cps"], "10.000");
        assert_eq!(r["calls_started"], "50");
        assert_eq!(r["calls_failed"], "2");
        assert_eq!(r["total_calls_started"], "150");
        assert_eq!(r["failures_timeout"], "1");
        assert_eq!(r["failures_aborted"], "1");
        assert_eq!(r["messages_retransmitted"], "3");
        assert_eq!(r["starts_delayed"], "1");
        assert_eq!(r["invite_to_final_p50_ms"], "2.000");
        assert_eq!(r["invite_to_1xx_p50_ms"], "");
        assert_eq!(r["auth_challenges"], "5");
        assert_eq!(r["auth_challenges_401"], "3");
        assert_eq!(r["auth_challenges_407"], "2");
        assert_eq!(r["auth_failures"], "0");
        assert_eq!(r["transactions_register"], "7");
        assert_eq!(r["transactions_other"], "0");
        assert_eq!(r["auth_round_trip_p50_ms"], "1.500");
        let r = row(2);
        assert_eq!(r["achieved_cps"], "0.000");
        assert_eq!(r["calls_started"], "0");
        assert_eq!(r["total_calls_started"], "150");
        assert_eq!(r["invite_to_final_p99_ms"], "");
    }

    #[test]
    fn json_lines() {
        let p = TempPath::new("b.JSONL");
        let (interval, cumulative) = counters();
        let mut f = StatsFile::create(&p.0).unwrap();
        f.write_row(
            Duration::from_millis(2500),
            Duration::from_millis(2500),
            &interval,
            &cumulative,
            20.0,
        )
        .unwrap();
        // Zero-length interval: no inf/NaN.
        f.write_row(
            Duration::from_millis(2500),
            Duration::ZERO,
            &interval,
            &cumulative,
            f64::NAN,
        )
        .unwrap();
        drop(f); // BufWriter flushes on drop too.
        let text = std::fs::read_to_string(&p.0).unwrap();
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        let r = &rows[0];
        assert_eq!(r["elapsed_s"], json!(2.5));
        assert_eq!(r["achieved_cps"], json!(20.0));
        assert_eq!(r["total_calls_succeeded"], json!(148));
        assert_eq!(r["failure_status_codes"], json!({"503": 4}));
        assert_eq!(r["invite_to_final_p50_ms"], json!(2.0));
        assert_eq!(r["call_length_p50_ms"], Value::Null);
        assert_eq!(r["latency_ms"]["rtd_reg"]["count"], json!(1));
        assert_eq!(r["auth_challenges_407"], json!(2));
        assert_eq!(r["transactions_register"], json!(7));
        assert_eq!(r["transactions_invite"], json!(0));
        assert_eq!(r["auth_round_trip_p99_ms"], json!(1.5));
        assert_eq!(r["latency_ms"]["auth_round_trip"]["count"], json!(1));
        assert_eq!(rows[1]["achieved_cps"], json!(0.0));
        assert_eq!(rows[1]["target_cps"], json!(0.0));
    }

    #[test]
    fn create_fails_cleanly() {
        let p = Path::new("/nonexistent-dir-sipwright/x.csv");
        assert!(StatsFile::create(p).is_err());
    }
}

//! The load engine's options end to end: schedules, statistics files, reports in
//! every format, traces.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

#[test]
fn constant_rate_with_stats_and_reports() {
    let (r, s, x, t) = (
        scratch("rate.json"),
        scratch("rate.csv"),
        scratch("rate.xml"),
        scratch("rate.txt"),
    );
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--rate",
        "200",
        "--duration",
        "2s",
        "--workers",
        "2",
        "--stats",
        s.to_str().unwrap(),
        "--stats-interval",
        "500ms",
        "--report",
        r.to_str().unwrap(),
        "--report",
        x.to_str().unwrap(),
        "--report",
        t.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["calls"]["started"], 400, "{j}");
    assert_eq!(j["calls"]["failed"], 0);
    let achieved = j["rate"]["achieved_cps"].as_f64().unwrap();
    assert!((achieved - 200.0).abs() < 2.0, "{achieved}");
    assert_eq!(j["rate"]["target_cps"], 200.0);
    for name in [
        "invite_to_1xx",
        "invite_to_final",
        "call_length",
        "start_lag",
        "rtd_setup",
    ] {
        assert_eq!(j["latency_ms"][name]["count"], 400, "{name}: {j}");
    }
    let csv = std::fs::read_to_string(&s).unwrap();
    let rows = csv.lines().count() - 1;
    assert!(
        (4..=6).contains(&rows),
        "about 4 intervals of 500 ms: {csv}"
    );
    assert!(
        csv.starts_with("elapsed_s,target_cps,achieved_cps"),
        "{csv}"
    );
    let xml = std::fs::read_to_string(&x).unwrap();
    assert!(
        xml.contains("<testcase") && !xml.contains("<failure"),
        "{xml}"
    );
    let txt = std::fs::read_to_string(&t).unwrap();
    assert!(txt.contains("400"), "{txt}");
}

#[test]
fn stats_as_json_lines() {
    let s = scratch("stats.jsonl");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--rate",
        "100",
        "--duration",
        "1500ms",
        "--quiet",
        "--stats",
        s.to_str().unwrap(),
        "--stats-interval",
        "500ms",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let text = std::fs::read_to_string(&s).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(v["elapsed_s"].as_f64().is_some(), "{line}");
    }
    assert!(text.lines().count() >= 3, "{text}");
}

#[test]
fn ramp_and_rate_increase_plans() {
    let r = scratch("ramp.json");
    // 0→100 cps over 1 s, then 100 cps to 2 s: 50 + 100 calls.
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--ramp",
        "100@1s,100@2s",
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let started = report(&r)["calls"]["started"].as_u64().unwrap();
    assert!((148..=151).contains(&started), "{started}");
    let r = scratch("increase.json");
    // 50 cps, +50 every 500 ms, max 100, for 1.5 s: 25 + 50 + 50 calls.
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--rate",
        "50",
        "--rate-increase",
        "50",
        "--rate-interval",
        "500ms",
        "--rate-max",
        "100",
        "--duration",
        "1500ms",
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let started = report(&r)["calls"]["started"].as_u64().unwrap();
    assert!((123..=126).contains(&started), "{started}");
    let o = sipwright(&["run", "uac", "--loopback", "--ramp", "100@2s,50@1s"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn concurrency_cap_holds_starts_back() {
    let r = scratch("cap.json");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--rate",
        "200",
        "--calls",
        "40",
        "--concurrency",
        "2",
        "--workers",
        "1",
        "--call-duration",
        "100ms",
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["calls"]["succeeded"], 40);
    assert!(j["starts_delayed"].as_u64().unwrap() > 0, "{j}");
}

/// What a CI job attaches to a red run: JUnit naming the reason, and a pcap of the
/// failed calls that tshark reads.
#[test]
fn failed_calls_leave_junit_and_pcap() {
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let uas = Background::start(&[
        "run",
        &fixture("uas-busy.yaml"),
        "--bind",
        &bind,
        "--calls",
        "5",
        "--quiet",
    ]);
    let (x, p, all, msg) = (
        scratch("red.xml"),
        scratch("red.pcap"),
        scratch("all.pcap"),
        scratch("all.txt"),
    );
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &bind,
        "--calls",
        "5",
        "--rate",
        "50",
        "--quiet",
        "--report",
        x.to_str().unwrap(),
        "--trace-failed",
        p.to_str().unwrap(),
        "--trace",
        all.to_str().unwrap(),
        "--trace-msg",
        msg.to_str().unwrap(),
    ]);
    drop(uas);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let xml = std::fs::read_to_string(&x).unwrap();
    assert!(xml.contains("<failure"), "{xml}");
    assert!(xml.contains("unexpected_message"), "{xml}");
    assert!(xml.contains("486"), "{xml}");
    let log = std::fs::read_to_string(&msg).unwrap();
    assert!(log.contains("SIP/2.0 486 Busy Here"), "{log}");
    if require("tshark").is_none() {
        return;
    }
    let out = Command::new("tshark")
        .args([
            "-r",
            p.to_str().unwrap(),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.CSeq.method",
            "-e",
            "sip.Status-Code",
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    // INVITE, 486 and the transaction's ACK for each of the 5 failed calls.
    assert_eq!(
        listed.lines().filter(|l| l.contains("486")).count(),
        5,
        "{listed}"
    );
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("ACK")).count(),
        5,
        "{listed}"
    );
    let out = Command::new("tshark")
        .args(["-r", all.to_str().unwrap(), "-Y", "sip"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 15);
}

#[test]
fn successful_calls_leave_an_empty_failed_trace() {
    let p = scratch("green.pcap");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--calls",
        "5",
        "--rate",
        "100",
        "--quiet",
        "--trace-failed",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Only the pcap global header.
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
}

#[test]
fn second_interrupt_stops_at_once_and_still_writes_the_report() {
    let r = scratch("forced.json");
    let mut run = Command::new(bin())
        .args([
            "run",
            "uac",
            "--loopback",
            "--rate",
            "50",
            "--call-duration",
            "60s",
            "--quiet",
            "--report",
            r.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let pid = run.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    std::thread::sleep(Duration::from_millis(200));
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let t = std::time::Instant::now();
    let status = run.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stopped at once, not after the 5 s drain"
    );
    assert_eq!(status.code(), Some(1), "aborted calls are failures");
    let j = report(&r);
    assert!(j["failures"]["aborted"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(j["calls"]["failed"], j["calls"]["started"], "{j}");
}

#[test]
fn a_busy_port_is_refused_not_shared() {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let o = sipwright(&[
        "run",
        "uas",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--calls",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("binding"),
        "{}",
        text(&o)
    );
}

/// The tuning options are accepted and do what they say on a normal run.
#[test]
fn tuning_options() {
    let msg = scratch("tuning.txt");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--calls",
        "20",
        "--rate",
        "200",
        "--quiet",
        "--batch-window",
        "0",
        "--local-ip",
        "127.0.0.1",
        "--drain-timeout",
        "2s",
        "--t1",
        "200ms",
        "--t2",
        "2s",
        "--t4",
        "3s",
        "--workers",
        "1",
        "--trace-msg",
        msg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = std::fs::read_to_string(&msg).unwrap();
    assert_eq!(
        log.matches("INVITE sip:service@127.0.0.1:").count(),
        20,
        "{log}"
    );
    assert!(log.contains("Via: SIP/2.0/UDP 127.0.0.1:"), "{log}");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--calls",
        "1",
        "--local-ip",
        "not-an-ip",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

//! Interop with SIPp (Debian package `sip-tester`), both directions, over UDP on
//! 127.0.0.1. Skipped with a printed reason when `sipp` is missing, except under
//! CI=true where that is a failure.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::Duration;

const CALLS: &str = "1000";
const RATE: &str = "200";

fn sipp_uas(port: u16) -> std::process::Child {
    Command::new("sipp")
        .args([
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            CALLS,
            "-nostdin",
        ])
        .args(["-buff_size", "4194304", "-timeout", "60s", "-bg"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp")
}

#[test]
fn our_uac_against_sipp_uas() {
    if require("sipp").is_none() {
        return;
    }
    let port = free_udp_port();
    // `-bg` forks; the parent exits at once and the daemon serves CALLS calls.
    let mut parent = sipp_uas(port);
    let _ = parent.wait();
    std::thread::sleep(Duration::from_millis(300));
    let r = scratch("vs-sipp-uas.json");
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &format!("127.0.0.1:{port}"),
        "--calls",
        CALLS,
        "--rate",
        RATE,
        "--report",
        r.to_str().unwrap(),
    ]);
    // Stop the background SIPp whatever happened.
    let _ = Command::new("pkill")
        .args(["-f", &format!("sipp -sn uas -i 127.0.0.1 -p {port} ")])
        .status();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["calls"]["succeeded"], 1000);
    assert_eq!(j["calls"]["failed"], 0);
}

#[test]
fn sipp_uac_against_our_uas() {
    if require("sipp").is_none() {
        return;
    }
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let r = scratch("sipp-uac-vs-us.json");
    let mut uas = Command::new(bin())
        .args([
            "run",
            "uas",
            "--bind",
            &bind,
            "--calls",
            CALLS,
            "--quiet",
            "--report",
            r.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let sipp_port = free_udp_port();
    let out = Command::new("sipp")
        .args([
            "-sn",
            "uac",
            &bind,
            "-i",
            "127.0.0.1",
            "-p",
            &sipp_port.to_string(),
        ])
        .args([
            "-m",
            CALLS,
            "-r",
            RATE,
            "-nostdin",
            "-buff_size",
            "4194304",
            "-timeout",
            "60s",
        ])
        .args([
            "-trace_stat",
            "-stf",
            scratch("sipp-uac.csv").to_str().unwrap(),
        ])
        .output()
        .expect("run sipp");
    let status = uas.wait().unwrap();
    let sipp_text = format!(
        "sipp exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // SIPp exits 0 only when every call succeeded.
    assert_eq!(out.status.code(), Some(0), "{sipp_text}");
    assert_eq!(status.code(), Some(0), "our uas failed");
    let j = report(&r);
    assert_eq!(j["calls"]["succeeded"], 1000, "{j}");
    assert_eq!(j["calls"]["failed"], 0);
    let csv = std::fs::read_to_string(scratch("sipp-uac.csv")).unwrap_or_default();
    let last = csv.lines().last().unwrap_or("");
    assert!(!last.is_empty(), "SIPp wrote its statistics: {sipp_text}");
}

//! `sipwright torture` end to end over 127.0.0.1: the pack against our own
//! `run uas` (every reaction as expected, calls still served afterwards), against
//! Kamailio (tests/fixtures/kamailio/proxy.cfg in front of our uas: the table and
//! JUnit are written and Kamailio stays up), and against a target that never
//! answers (the run ends, everything `ignore`, nothing alive). Also the receive
//! side's counts by cause, over UDP and TCP.

mod common;
use common::*;

use common::kamailio::{answers_options, kamailio_fixture, spawn_kamailio};
use common::process::{stop_group, tail, wait_ready, wait_until_bound};

use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Messages in the built-in pack.
const PACK_SIZE: usize = 40;

/// `sipwright torture ARGS`, killed (and the test failed) if it is still running
/// after `limit`: a run must end by itself whatever the target does.
fn torture(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(bin())
        .arg("torture")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipwright torture");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for sipwright torture"),
        Err(_) => {
            common::process::signal(pid as i32, libc::SIGKILL);
            panic!("sipwright torture {args:?} still running after {limit:?}");
        }
    }
}

/// The JUnit file's test cases: (name, failed).
fn junit_cases(path: &Path) -> Vec<(String, bool)> {
    let x = std::fs::read_to_string(path).expect("JUnit written");
    assert!(x.starts_with("<?xml"), "{x}");
    let mut cases = Vec::new();
    for chunk in x.split("<testcase ").skip(1) {
        let name = chunk
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a name")
            .to_string();
        let body = chunk.split("</testcase>").next().unwrap_or("");
        cases.push((name, body.contains("<failure ")));
    }
    cases
}

/// Our `run uas` in the background on `port` (UDP unless `transport` says), with
/// a JSON report written when it is interrupted.
fn start_uas(port: u16, report: &Path, transport: Option<&str>) -> Background {
    let bind = format!("127.0.0.1:{port}");
    let mut args = vec![
        "run",
        "uas",
        "--bind",
        &bind,
        "--quiet",
        "--drain-timeout",
        "1s",
    ];
    if let Some(t) = transport {
        args.extend(["--transport", t]);
    }
    args.extend(["--report", report.to_str().unwrap()]);
    let uas = Background::start(&args);
    assert!(
        wait_until_bound(port, transport == Some("tcp"), Duration::from_secs(5)),
        "our uas did not bind {port}"
    );
    uas
}

#[test]
fn our_uas_reacts_as_expected_to_every_message_and_still_serves_calls() {
    let port = free_udp_port();
    let uas_report = scratch("torture-uas.json");
    let uas = start_uas(port, &uas_report, None);
    let target = format!("127.0.0.1:{port}");
    let (xml, json) = (scratch("torture-uas.xml"), scratch("torture-uas-run.json"));
    let o = torture(
        &[
            "--target",
            &target,
            "--timeout",
            "1s",
            "--report",
            xml.to_str().unwrap(),
            "--report",
            json.to_str().unwrap(),
        ],
        Duration::from_secs(180),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("message "), "{out}");
    assert!(
        stdout.contains("40 messages: 40 passed, 0 reacted otherwise than expected; the target answered the probe after every message"),
        "{out}"
    );
    let j = report(&json);
    let messages = j["messages"].as_array().unwrap();
    assert_eq!(messages.len(), PACK_SIZE);
    for m in messages {
        assert_eq!(m["as_expected"], true, "{m}");
        assert_eq!(m["alive"], true, "{m}");
    }
    // The 400s say why.
    let by_name = |n: &str| messages.iter().find(|m| m["name"] == n).unwrap().clone();
    let detail = by_name("missing-call-id")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("Warning: 399 sipwright \"missing Call-ID header\""),
        "{detail}"
    );
    let cases = junit_cases(&xml);
    assert_eq!(cases.len(), PACK_SIZE);
    assert!(cases.iter().all(|(_, failed)| !failed), "{cases:?}");

    // Still serving calls.
    let uac_report = scratch("torture-uac.json");
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &target,
        "--calls",
        "20",
        "--rate",
        "50",
        "--quiet",
        "--report",
        uac_report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_calls(&report(&uac_report), 20, 0);

    // The UAS counted what it refused, by cause; the pack's four INVITEs it
    // accepted and the uac's 20 calls all succeeded.
    assert!(uas.interrupt().success());
    let u = report(&uas_report);
    assert_calls(&u, 24, 0);
    let m = &u["messages"];
    let causes = &m["unparseable_by_cause"];
    let expected = [
        ("empty", 2),          // empty-datagram, crlf-keepalive
        ("garbage", 1),        // binary-garbage
        ("start_line", 4),     // 416, 505, request-line-garbage, http-request
        ("missing_header", 4), // Call-ID, From/To, CSeq, Via
        ("content_length", 3), // long, negative, twice
        ("truncated", 1),      // truncated-head
        ("oversize", 0),
        // NUL, UTF-8, negative CSeq, CSeq method, two Froms, two Call-IDs, a line
        // without colon, and our ACK for the 400 to the INVITE with the bad From
        // (which carries that From again).
        ("header", 8),
    ];
    for (cause, n) in expected {
        assert_eq!(causes[cause], n, "{cause}: {m}");
    }
    let total: u64 = expected.iter().map(|(_, n)| *n).sum();
    assert_eq!(m["unparseable"], total, "{m}");
    let stray = &m["stray_by_cause"];
    assert_eq!(stray["not_handled"], 1, "TORTURE: {m}");
    assert_eq!(stray["unknown_dialog"], 2, "BYE and CANCEL: {m}");
    assert_eq!(stray["response_no_call"], 1, "stray-response: {m}");
    // ack-without-invite and the ACK for content-length-long's 400.
    assert_eq!(stray["ack"], 2, "{m}");
}

/// proxy.cfg in front of our uas; dropping it stops both.
struct KamailioRig {
    port: u16,
    kamailio: Option<Child>,
    log: std::path::PathBuf,
    uas: Option<Background>,
}

impl Drop for KamailioRig {
    fn drop(&mut self) {
        self.uas.take();
        if let Some(k) = self.kamailio.take() {
            stop_group(k);
        }
    }
}

#[test]
fn kamailio_gets_the_pack_prints_the_table_and_stays_alive() {
    let Some(kamailio) = require("kamailio") else {
        return;
    };
    let uas_port = free_udp_port();
    let uas_report = scratch("torture-kam-uas.json");
    let uas = start_uas(uas_port, &uas_report, None);
    let port = free_udp_port();
    let (child, log) = spawn_kamailio(
        &kamailio,
        &kamailio_fixture("proxy.cfg"),
        "torture-kam",
        256,
        &[
            format!("LISTEN_PORT={port}"),
            format!("UAS_PORT={uas_port}"),
        ],
    );
    let mut rig = KamailioRig {
        port,
        kamailio: Some(child),
        log,
        uas: Some(uas),
    };
    let uri = format!("sip:127.0.0.1:{}", rig.port);
    let log = rig.log.clone();
    wait_ready(
        rig.kamailio.as_mut().unwrap(),
        "kamailio",
        Duration::from_secs(5),
        || answers_options(&uri),
        || format!("kamailio log:\n{}", tail(&log, 30)),
    );
    let target = format!("127.0.0.1:{}", rig.port);
    let (xml, json, md) = (
        scratch("torture-kam.xml"),
        scratch("torture-kam.json"),
        scratch("torture-kam.md"),
    );
    let o = torture(
        &[
            "--target",
            &target,
            "--timeout",
            "1s",
            "--report",
            xml.to_str().unwrap(),
            "--report",
            json.to_str().unwrap(),
            "--report",
            md.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    );
    let out = format!("{}\n{}", text(&o), tail(&rig.log, 30));
    // Kamailio's reactions may differ from the expectations (that is what the
    // table shows): 0 or 1, never a usage error.
    assert!(matches!(o.status.code(), Some(0 | 1)), "{out}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The table: a header and a row per message.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.ends_with("  pass") || l.ends_with("  FAIL"))
        .collect();
    assert_eq!(rows.len(), PACK_SIZE, "{out}");
    assert!(
        stdout.contains("expected      actual        alive  result"),
        "{out}"
    );
    let cases = junit_cases(&xml);
    assert_eq!(cases.len(), PACK_SIZE, "{out}");
    let j = report(&json);
    let messages = j["messages"].as_array().unwrap();
    assert_eq!(messages.len(), PACK_SIZE);
    for m in messages {
        assert_eq!(
            m["alive"], true,
            "Kamailio stopped answering after {m}\n{out}"
        );
    }
    assert_eq!(
        j["failed"].as_u64().unwrap() as usize,
        cases.iter().filter(|(_, f)| *f).count()
    );
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .starts_with("| message |")
    );
    // Still alive after the whole pack.
    answers_options(&uri).unwrap_or_else(|e| panic!("kamailio no longer answers: {e}\n{out}"));
    // For docs/torture.md (cargo test -- --nocapture shows it).
    println!("{stdout}");
    println!("{}", std::fs::read_to_string(&md).unwrap());
    // The calls Kamailio let through reached our uas and ended well.
    let uas = rig.uas.take().expect("uas running");
    assert!(uas.interrupt().success());
    let u = report(&uas_report);
    assert_eq!(u["calls"]["failed"], 0, "{u}");
}

#[test]
fn a_target_that_never_answers_ends_the_run_with_everything_ignored() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = socket.local_addr().unwrap().to_string();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swallowed = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if socket.recv_from(&mut buf).is_ok() {
                    n += 1;
                }
            }
            n
        })
    };
    let json = scratch("torture-silent.json");
    // 40 messages × (100 ms for a reaction + 100 ms for the probe): about 8 s;
    // the limit only catches a run that does not end.
    let o = torture(
        &[
            "--target",
            &target,
            "--timeout",
            "100ms",
            "--report",
            json.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    stop.store(true, Ordering::Relaxed);
    let received = swallowed.join().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = report(&json);
    let messages = j["messages"].as_array().unwrap();
    assert_eq!(messages.len(), PACK_SIZE);
    for m in messages {
        assert_eq!(m["actual"], "ignore", "{m}");
        assert_eq!(m["alive"], false, "{m}");
    }
    assert_eq!(j["alive"], false);
    assert_eq!(j["passed"], 0);
    // Every message and at least one probe after each reached it.
    assert!(received >= 2 * PACK_SIZE as u64, "{received}");
}

#[test]
fn usage_errors_and_the_list() {
    let o = sipwright(&["torture", "--list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let list = String::from_utf8_lossy(&o.stdout);
    assert_eq!(list.lines().count(), PACK_SIZE, "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("thousand-vias ") && l.contains("accept"))
    );
    let o = sipwright(&["torture", "--list", "--only", "http-request,escaped-uri"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
    for args in [
        &["torture"][..],
        &[
            "torture",
            "--target",
            "127.0.0.1:9",
            "--only",
            "no-such-message",
        ],
        &["torture", "--target", "127.0.0.1:9", "--timeout", "0s"],
        &["torture", "--target", "sip:127.0.0.1:9;transport=tcp"],
        &[
            "torture",
            "--target",
            "127.0.0.1:9",
            "--pack",
            "/nonexistent",
        ],
    ] {
        let o = sipwright(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

/// Over TCP the framing refuses what it cannot frame and closes the connection;
/// each is counted as an unparseable message by cause.
#[test]
fn stream_garbage_and_oversize_are_counted_by_cause() {
    let port = free_tcp_port();
    let uas_report = scratch("torture-tcp-uas.json");
    let uas = start_uas(port, &uas_report, Some("tcp"));
    let send = |bytes: &[u8]| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = s.write_all(bytes);
        // Wait until the UAS closes it (it refused the bytes), or give up.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = std::io::Read::read(&mut s, &mut [0u8; 64]);
    };
    send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 a TLS hello on a SIP port");
    let mut huge = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\n".to_vec();
    while huge.len() < 70_000 {
        huge.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    send(&huge);
    assert!(uas.interrupt().success());
    let u = report(&uas_report);
    let causes = &u["messages"]["unparseable_by_cause"];
    assert_eq!(causes["garbage"], 1, "{u}");
    assert_eq!(causes["oversize"], 1, "{u}");
    assert_eq!(u["messages"]["unparseable"], 2, "{u}");
    assert_eq!(u["connections"]["errors"]["garbage"], 2, "{u}");
}

//! End-to-end runs of the CLI over real UDP sockets on 127.0.0.1, both sides sipwright.

mod common;
use common::*;

#[test]
fn uac_loopback_burst_succeeds_and_reports() {
    let r = scratch("uac.json");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--calls",
        "200",
        "--rate",
        "400",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["calls"]["started"], 200);
    assert_eq!(j["calls"]["succeeded"], 200);
    assert_eq!(j["calls"]["failed"], 0);
    assert_eq!(j["scenario"], "uac");
    // INVITE, ACK, BYE per call at least.
    assert!(j["messages"]["sent"].as_u64().unwrap() >= 600);
    assert!(j["messages"]["received"].as_u64().unwrap() >= 600);
    assert_eq!(j["messages"]["unparseable"], 0);
    assert!(j["elapsed_s"].as_f64().unwrap() > 0.0);
    assert_eq!(j["peer"]["calls"]["succeeded"], 200);
    for key in [
        "timeout",
        "unexpected_message",
        "transport_error",
        "assert_failed",
    ] {
        assert_eq!(j["failures"][key], 0, "{key}");
    }
}

#[test]
fn uas_loopback_serves_the_peer_uac() {
    let o = sipwright(&[
        "run",
        "uas",
        "--loopback",
        "--calls",
        "50",
        "--rate",
        "200",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(o.stdout.is_empty(), "--quiet prints nothing: {}", text(&o));
}

#[test]
fn cancel_loopback() {
    let r = scratch("cancel.json");
    let o = sipwright(&[
        "run",
        "cancel",
        "--loopback",
        "--calls",
        "30",
        "--rate",
        "200",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["calls"]["succeeded"], 30);
    assert_eq!(j["peer"]["calls"]["succeeded"], 30);
}

#[test]
fn options_loopback() {
    let o = sipwright(&[
        "run",
        "options",
        "--loopback",
        "--calls",
        "5",
        "--rate",
        "100",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn call_duration_and_set_reach_the_scenario() {
    let r = scratch("dur.json");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--calls",
        "3",
        "--rate",
        "100",
        "--call-duration",
        "300ms",
        "--set",
        "service=alice",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(report(&r)["elapsed_s"].as_f64().unwrap() >= 0.3);
}

#[test]
fn rejected_calls_fail_with_exit_1_and_are_counted() {
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let uas = Background::start(&[
        "run",
        &fixture("uas-busy.yaml"),
        "--bind",
        &bind,
        "--calls",
        "10",
        "--quiet",
    ]);
    let r = scratch("busy.json");
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &bind,
        "--calls",
        "10",
        "--rate",
        "100",
        "--report",
        r.to_str().unwrap(),
    ]);
    drop(uas);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["calls"]["failed"], 10);
    assert_eq!(j["failures"]["unexpected_message"], 10);
    assert_eq!(j["failure_status_codes"]["486"], 10);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("486"),
        "{}",
        text(&o)
    );
}

#[test]
fn options_command_gets_an_answer_from_a_running_uas() {
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let uas = Background::start(&["run", "uas", "--bind", &bind, "--quiet"]);
    let o = sipwright(&["options", &format!("sip:{bind}")]);
    drop(uas);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("SIP/2.0 200 OK"), "{out}");
    assert!(out.contains("answered in"), "{out}");
}

#[test]
fn no_answer_is_a_timeout() {
    let port = free_udp_port();
    let r = scratch("timeout.json");
    // Nobody listens: the INVITE is retransmitted until Timer B (64·T1 = 640 ms here).
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &format!("127.0.0.1:{port}"),
        "--calls",
        "2",
        "--rate",
        "10",
        "--t1",
        "10ms",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["failures"]["timeout"], 2);
    assert!(j["messages"]["retransmitted"].as_u64().unwrap() >= 2);
}

#[test]
fn interrupted_uas_still_writes_its_report() {
    let port = free_udp_port();
    let r = scratch("interrupted.json");
    let uas = Background::start(&[
        "run",
        "uas",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &format!("127.0.0.1:{port}"),
        "--calls",
        "3",
        "--rate",
        "100",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let status = uas.interrupt();
    assert_eq!(status.code(), Some(0));
    let j = report(&r);
    assert_eq!(j["calls"]["succeeded"], 3);
}

/// Speak SIP by hand to a running `uas`: a BYE retransmitted after the call ended
/// (our 200 was "lost") gets the same 200 again, not a 481 (timer J, RFC 3261 §17.2.2).
#[test]
fn retransmitted_bye_after_the_call_gets_the_same_200() {
    use std::net::UdpSocket;
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let uas = Background::start(&["run", "uas", "--bind", &bind, "--quiet"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let recv = |want: &str| -> String {
        let mut buf = [0u8; 4096];
        loop {
            let (n, _) = sock.recv_from(&mut buf).expect("a response");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(want) {
                return text;
            }
        }
    };
    let common = format!("From: <sip:a@{me}>;tag=t1\r\nCall-ID: hand-1@test\r\n");
    let invite = format!(
        "INVITE sip:s@{bind} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-h1;rport\r\n{common}To: <sip:s@{bind}>\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(invite.as_bytes(), &bind).unwrap();
    let ok = recv("SIP/2.0 200");
    let to = ok
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .to_string();
    let ack = format!(
        "ACK sip:s@{bind} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-h2;rport\r\n{common}{to}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(ack.as_bytes(), &bind).unwrap();
    let bye = format!(
        "BYE sip:s@{bind} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-h3;rport\r\n{common}{to}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(bye.as_bytes(), &bind).unwrap();
    let first = recv("SIP/2.0 ");
    std::thread::sleep(std::time::Duration::from_millis(100));
    sock.send_to(bye.as_bytes(), &bind).unwrap();
    let again = recv("SIP/2.0 ");
    drop(uas);
    assert!(
        first.starts_with("SIP/2.0 200") && first.contains("CSeq: 2 BYE"),
        "{first}"
    );
    assert_eq!(again, first, "the same 200, resent");
}

#[test]
fn options_command_times_out_when_nobody_answers() {
    let port = free_udp_port();
    let local = free_udp_port();
    let o = sipwright(&[
        "options",
        &format!("sip:127.0.0.1:{port}"),
        "--timeout",
        "300ms",
        "--bind",
        &format!("127.0.0.1:{local}"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("timeout"),
        "{}",
        text(&o)
    );
}

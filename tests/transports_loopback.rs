//! Calls over TCP, TLS, WebSocket and IPv6 with both sides sipwright on loopback,
//! connection models, traces of connection calls read back by tshark, and what a
//! connection does with garbage: it closes, counted, and other calls go on.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn loopback(transport: &str, extra: &[&str], calls: u64) -> serde_json::Value {
    let r = scratch(&format!(
        "loop-{transport}-{}.json",
        extra.join("_").replace('/', "")
    ));
    let calls = calls.to_string();
    let mut args = vec![
        "run",
        "uac",
        "--loopback",
        "--transport",
        transport,
        "--calls",
        &calls,
        "--rate",
        "200",
        "--report",
        r.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = sipwright(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    report(&r)
}

fn assert_all_ok(j: &serde_json::Value, calls: u64) {
    assert_eq!(j["calls"]["succeeded"], calls, "{j:#}");
    assert_eq!(j["calls"]["failed"], 0, "{j:#}");
    assert_eq!(j["peer"]["calls"]["succeeded"], calls, "{j:#}");
    assert_eq!(
        j["messages"]["retransmitted"], 0,
        "reliable: no retransmissions"
    );
    assert_eq!(j["connections"]["failed"], 0, "{j:#}");
}

#[test]
fn tcp_per_call_connections() {
    let j = loopback("tcp", &[], 200);
    assert_all_ok(&j, 200);
    // Per call (the default): one connection opened per call, accepted by the peer.
    assert_eq!(j["connections"]["opened"], 200);
    assert_eq!(j["peer"]["connections"]["accepted"], 200);
}

#[test]
fn tcp_per_worker_and_pool() {
    let j = loopback(
        "tcp",
        &["--connections", "per-worker", "--workers", "2"],
        200,
    );
    assert_all_ok(&j, 200);
    assert_eq!(j["connections"]["opened"], 2);
    let j = loopback("tcp", &["--connections", "3"], 100);
    assert_all_ok(&j, 100);
    assert_eq!(j["connections"]["opened"], 3);
}

#[test]
fn tls_calls_with_handshake_figures() {
    let j = loopback("tls", &[], 100);
    assert_all_ok(&j, 100);
    assert_eq!(j["connections"]["opened"], 100);
    assert_eq!(j["connections"]["tls_handshakes"], 100);
    assert!(
        j["connections"]["tls_handshake_ms"]["p50"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn websocket_calls() {
    for t in ["ws", "wss"] {
        let j = loopback(t, &["--origin", "https://test.invalid"], 100);
        assert_all_ok(&j, 100);
    }
}

#[test]
fn ipv6_over_udp_and_tcp() {
    for t in ["udp", "tcp"] {
        let j = loopback(t, &["--bind", "[::1]:0"], 50);
        assert_all_ok(&j, 50);
    }
}

#[test]
fn tcp_keepalives_are_sent_and_answered() {
    let j = loopback(
        "tcp",
        &["--call-duration", "700ms", "--keepalive", "200ms"],
        5,
    );
    assert_all_ok(&j, 5);
    assert!(
        j["connections"]["keepalives_sent"].as_u64().unwrap() >= 5,
        "{j:#}"
    );
    // Only the side that opened a connection pings; the accepting side answers.
    assert_eq!(j["peer"]["connections"]["keepalives_sent"], 0, "{j:#}");
}

/// `--trace` of a TLS call holds the SIP itself, as TCP segments tshark decodes.
#[test]
fn tls_trace_shows_sip_to_tshark() {
    let Some(tshark) = require("tshark") else {
        return;
    };
    let pcap = scratch("tls-trace.pcap");
    loopback("tls", &["--trace", pcap.to_str().unwrap()], 3);
    let o = std::process::Command::new(tshark)
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("INVITE").count(), 3, "{out}");
    assert_eq!(out.matches("BYE").count(), 3, "{out}");
    assert!(out.contains("200"), "{out}");
}

/// A UAS on TCP that `nc`-style clients feed garbage: each bad connection is closed
/// and counted; a normal run against the same UAS at the same time succeeds.
#[test]
fn garbage_on_connections_closes_only_them() {
    let port = free_tcp_port();
    let uas_report = scratch("garbage-uas.json");
    let bind = format!("127.0.0.1:{port}");
    let uas = uas(
        &bind,
        "tcp",
        &uas_report,
        &["--max-message-size", "65535", "--calls", "50"],
    );
    let addr: SocketAddr = bind.parse().unwrap();
    let send = |bytes: &[u8]| {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(bytes);
        s
    };
    let mut junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    junk[0] = 0;
    let a = send(&junk);
    let mut endless = b"INVITE sip:x@y SIP/2.0\r\nX-Long: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 100_000));
    let b = send(&endless);
    let c =
        send(b"INVITE sip:x@y SIP/2.0\r\nCall-ID: big\r\nContent-Length: 10000000\r\n\r\nhello");
    let r = scratch("garbage-uac.json");
    let target = format!("sip:127.0.0.1:{port};transport=tcp");
    let o = uac(&target, &r, &["--calls", "50", "--rate", "100"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(&r)["calls"]["succeeded"], 50);
    let status = uas.wait().expect("uas finished");
    assert!(status.success());
    let j = report(&uas_report);
    assert_eq!(j["calls"]["succeeded"], 50, "{j:#}");
    assert_eq!(j["connections"]["errors"]["garbage"], 3, "{j:#}");
    drop((a, b, c));
}

/// A connection cut in the middle of a call fails that call only.
#[test]
fn connection_lost_mid_call_fails_that_call_only() {
    let uas_port = free_tcp_port();
    let uas_report = scratch("cut-uas.json");
    let bind = format!("127.0.0.1:{uas_port}");
    let _uas = uas(&bind, "tcp", &uas_report, &[]);
    // A relay between the UAC and the UAS that cuts its 5th connection 300 ms in
    // (the calls last a second).
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let cut_done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    {
        let cut_done = cut_done.clone();
        std::thread::spawn(move || {
            for client in relay.incoming() {
                let Ok(client) = client else { break };
                let n = count.fetch_add(1, Ordering::Relaxed);
                let server = TcpStream::connect(("127.0.0.1", uas_port)).unwrap();
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server.try_clone().unwrap(), client.try_clone().unwrap());
                if n == 4 {
                    let cut_done = cut_done.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(300));
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = server.shutdown(Shutdown::Both);
                        cut_done.store(true, Ordering::Relaxed);
                    });
                }
            }
        });
    }
    let r = scratch("cut-uac.json");
    let target = format!("sip:127.0.0.1:{relay_port};transport=tcp");
    let o = uac(
        &target,
        &r,
        &["--calls", "10", "--rate", "20", "--call-duration", "1s"],
    );
    assert!(cut_done.load(Ordering::Relaxed));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = report(&r);
    assert_eq!(j["calls"]["succeeded"], 9, "{j:#}");
    assert_eq!(j["calls"]["failed"], 1, "{j:#}");
    assert_eq!(j["failures"]["transport_error"], 1, "{j:#}");
    assert_eq!(j["connections"]["closed_by_peer"], 1, "{j:#}");
}

/// `run uac --target TARGET --report REPORT EXTRA…`.
fn uac(target: &str, report: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "uac",
        "--target",
        target,
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sipwright(&args)
}

/// A UAS in the background on `bind` over `transport`, writing `report`.
fn uas(bind: &str, transport: &str, report: &std::path::Path, extra: &[&str]) -> Background {
    let mut args = vec![
        "run",
        "uas",
        "--bind",
        bind,
        "--transport",
        transport,
        "--quiet",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Background::start(&args)
}

/// A throwaway self-signed certificate for 127.0.0.1 in `dir`: (cert, key).
fn self_signed(dir: &str) -> (String, String) {
    let dir = scratch(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, keyfile) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&keyfile, key.signing_key.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_string(),
        keyfile.to_str().unwrap().to_string(),
    )
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// A TLS alert instead of a ClientHello, and a WebSocket frame that is not SIP, each
/// close their connection with a counted reason; calls on the same UAS succeed.
#[test]
fn tls_alert_and_non_sip_websocket_frame_close_their_connection() {
    let (cert, keyfile) = self_signed("alert-certs");
    for (transport, bad) in [("tls", "tls"), ("ws", "garbage")] {
        let port = free_tcp_port();
        let uas_report = scratch(&format!("alert-{transport}.json"));
        let bind = format!("127.0.0.1:{port}");
        let uas = uas(
            &bind,
            transport,
            &uas_report,
            &["--cert", &cert, "--key", &keyfile, "--calls", "10"],
        );
        let mut s = TcpStream::connect(&bind).unwrap();
        if transport == "tls" {
            // A fatal handshake_failure alert record.
            s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
                .unwrap();
        } else {
            s.write_all(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                  Sec-WebSocket-Protocol: sip\r\n\r\n",
            )
            .unwrap();
            let mut answer = [0u8; 512];
            let n = s.read(&mut answer).unwrap();
            assert!(
                answer[..n].starts_with(b"HTTP/1.1 101"),
                "{}",
                String::from_utf8_lossy(&answer[..n])
            );
            // A masked text frame "hello" (not a SIP message).
            let mask = [1u8, 2, 3, 4];
            let mut frame = vec![0x81, 0x80 | 5];
            frame.extend_from_slice(&mask);
            frame.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            s.write_all(&frame).unwrap();
        }
        let r = scratch(&format!("alert-{transport}-uac.json"));
        let target = format!("sip:127.0.0.1:{port};transport={transport}");
        let o = uac(
            &target,
            &r,
            &["--insecure", "--calls", "10", "--rate", "50"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(uas.wait().expect("uas finished").success());
        let j = report(&uas_report);
        assert_eq!(j["calls"]["succeeded"], 10, "{j:#}");
        assert_eq!(j["connections"]["errors"][bad], 1, "{transport}: {j:#}");
        drop(s);
    }
}

/// Verification is on: a certificate from an unknown CA fails the calls with a
/// message that says what to do.
#[test]
fn unknown_ca_is_a_clear_error() {
    let (cert, keyfile) = self_signed("unknown-ca");
    let port = free_tcp_port();
    let bind = format!("127.0.0.1:{port}");
    let _uas = uas(
        &bind,
        "tls",
        &scratch("unknown-ca-uas.json"),
        &["--cert", &cert, "--key", &keyfile],
    );
    let target = format!("sips:127.0.0.1:{port}");
    let o = sipwright(&[
        "run", "uac", "--target", &target, "--calls", "2", "--rate", "10",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("not trusted") && out.contains("--ca") && out.contains("--insecure"),
        "{out}"
    );
    // The same with the certificate trusted: calls succeed.
    let o = sipwright(&[
        "run", "uac", "--target", &target, "--ca", &cert, "--calls", "2", "--rate", "10",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn family_and_transport_usage_errors() {
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        "127.0.0.1:5060",
        "--ipv6",
        "--calls",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no IPv6 address"), "{}", text(&o));
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        "sip:127.0.0.1;transport=tcp",
        "--transport",
        "udp",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = sipwright(&["run", "uac", "--loopback", "--connections", "zero"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = sipwright(&["run", "uas", "--transport", "tls", "--bind", "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--cert"), "{}", text(&o));
    // --ipv4 resolves a name to its IPv4 address.
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--ipv4",
        "--calls",
        "2",
        "--rate",
        "20",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

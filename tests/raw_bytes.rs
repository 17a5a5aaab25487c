//! Byte-exact sends end to end: a UAC run against a socket the test binds itself,
//! which reads what arrived and compares it byte for byte (docs/malformed.md).

mod common;
use common::*;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

/// A UDP socket for the test to read the run's datagrams from, and its address.
fn udp_sink() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Only so a broken run fails the test instead of hanging it.
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    (socket, addr)
}

/// A fresh folder for a scenario and the files it names.
fn folder(name: &str) -> PathBuf {
    let dir = scratch(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_scenario(dir: &Path, yaml: &str) -> String {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

/// One call of `scenario` to `target`, with `extra` arguments; exit code 0 expected.
fn run_one(scenario: &str, target: &str, extra: &[&str]) {
    let mut args = vec!["run", scenario, "--target", target, "--calls", "1"];
    args.extend_from_slice(extra);
    let o = sipwright(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// The next datagram on `socket`, whole.
fn datagram(socket: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let (n, _) = socket.recv_from(&mut buf).expect("a datagram");
    buf.truncate(n);
    buf
}

/// `{{ hex: 80 81 … ff }}`: every byte that can't start or be a UTF-8 character alone.
fn high_bytes() -> (String, Vec<u8>) {
    let bytes: Vec<u8> = (0x80..=0xff).collect();
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    (format!("{{{{ hex: {} }}}}", hex.join(" ")), bytes)
}

#[test]
fn raw_step_with_nul_lone_cr_high_bytes_and_wrong_length_goes_out_byte_identical() {
    let (socket, addr) = udp_sink();
    let dir = folder("raw-exact");
    let (high_slot, high) = high_bytes();
    // YAML's `\r` is a CR; `\x80` would be U+0080 (two bytes), hence the hex slot.
    let yaml = format!(
        "steps:\n  - send: \"OPTIONS sip:raw@{addr} SIP/2.0\\r\\nX-Nul: a{{{{ hex: 00 }}}}b\\r\\n\
         X-Cr: c\\rd\\r\\nX-High: {high_slot}\\r\\nX-Brace: {{{{ hex: 7b7b }}}}\\r\\n\
         Content-Length: 999\\r\\n\\r\\nbody\"\n    raw: true\n"
    );
    run_one(&write_scenario(&dir, &yaml), &addr, &[]);
    let mut expected =
        format!("OPTIONS sip:raw@{addr} SIP/2.0\r\nX-Nul: a\0b\r\nX-Cr: c\rd\r\nX-High: ")
            .into_bytes();
    expected.extend_from_slice(&high);
    expected.extend_from_slice(b"\r\nX-Brace: {{\r\nContent-Length: 999\r\n\r\nbody");
    assert_eq!(datagram(&socket), expected);
}

#[test]
fn bytes_base64_goes_out_untouched() {
    let (socket, addr) = udp_sink();
    let dir = folder("raw-base64");
    let mut bytes = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 7\r\n\r\n".to_vec();
    bytes.extend(0..=255u8);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let yaml = format!("steps:\n  - bytes_base64: {b64}\n");
    run_one(&write_scenario(&dir, &yaml), &addr, &[]);
    assert_eq!(datagram(&socket), bytes);
}

#[test]
fn send_file_without_template_goes_out_untouched() {
    let (socket, addr) = udp_sink();
    let dir = folder("raw-file");
    let mut bytes = b"INVITE sip:x SIP/2.0\r\nX: {{ not_a_slot }}\r\nY: \x00\rz\xff\xfe\n".to_vec();
    bytes.extend_from_slice(b"Content-Length: 3\r\n\r\n\x80\x81");
    std::fs::write(dir.join("invite.bin"), &bytes).unwrap();
    let yaml = "steps:\n  - send_file: invite.bin\n    template: false\n";
    run_one(&write_scenario(&dir, yaml), &addr, &[]);
    assert_eq!(datagram(&socket), bytes);
}

#[test]
fn send_file_as_a_template_fixes_line_ends_and_length() {
    let (socket, addr) = udp_sink();
    let dir = folder("raw-file-template");
    std::fs::write(
        dir.join("message.sip"),
        "MESSAGE sip:{{ service }}@{{ remote_ip }} SIP/2.0\nContent-Length: 1\n\nhi{{ hex: ff }}\n",
    )
    .unwrap();
    let yaml = "vars: {service: bob}\nsteps:\n  - send_file: message.sip\n";
    run_one(&write_scenario(&dir, yaml), &addr, &[]);
    assert_eq!(
        datagram(&socket),
        b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nContent-Length: 5\r\n\r\nhi\xff\r\n"
    );
}

#[test]
fn udp_message_of_60000_bytes_arrives_whole() {
    let (socket, addr) = udp_sink();
    let dir = folder("raw-60k");
    let head = "OPTIONS sip:big SIP/2.0\r\nX: ";
    let pad = "x".repeat(60_000 - head.len() - 4);
    let yaml = format!(
        "vars: {{pad: x}}\nsteps:\n  - send: \"{}{{{{ pad }}}}\\r\\n\\r\\n\"\n    raw: true\n",
        head.replace("\r\n", "\\r\\n")
    );
    run_one(
        &write_scenario(&dir, &yaml),
        &addr,
        &["--set", &format!("pad={pad}")],
    );
    let got = datagram(&socket);
    assert_eq!(got.len(), 60_000);
    assert_eq!(got, format!("{head}{pad}\r\n\r\n").into_bytes());
}

#[test]
fn udp_message_over_65507_bytes_is_a_scenario_error() {
    let (socket, addr) = udp_sink();
    let dir = folder("raw-70k");
    // Fixed size: refused before any call, naming the step and the limit.
    let b64 = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 70_000]);
    let fixed = write_scenario(&dir, &format!("steps:\n  - bytes_base64: {b64}\n"));
    let o = sipwright(&["run", &fixed, "--target", &addr, "--calls", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "scenario.yaml:2:19: step 1: the message is 70000 bytes, over the 65507 bytes one UDP datagram carries"
        ),
        "{err}"
    );
    // Sized per call: that call fails with `scenario_error`, nothing is sent.
    let dir = folder("raw-70k-var");
    let yaml = "vars: {pad: x}\nsteps:\n  - send: \"OPTIONS sip:big SIP/2.0\\r\\nX: {{ pad }}\\r\\n\\r\\n\"\n    raw: true\n";
    let r = dir.join("report.json");
    let pad = format!("pad={}", "x".repeat(70_000));
    let o = sipwright(&[
        "run",
        &write_scenario(&dir, yaml),
        "--target",
        &addr,
        "--calls",
        "1",
        "--set",
        &pad,
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = report(&r);
    assert_calls(&j, 0, 1);
    assert_eq!(j["failures"]["scenario_error"], 1, "{j:#}");
    let detail = j["failure_samples"][0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(
        detail
            .contains("the message is 70032 bytes, over the 65507 bytes one UDP datagram carries"),
        "{detail}"
    );
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert!(socket.recv_from(&mut buf).is_err(), "nothing was sent");
}

/// Run `yaml` as one UAC call over TCP to a listener of the test's own; returns
/// what each `read` of the accepted connection returned, until the run closed it.
fn tcp_reads(name: &str, yaml: &str) -> Vec<Vec<u8>> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("sip:{};transport=tcp", listener.local_addr().unwrap());
    let scenario = write_scenario(&folder(name), yaml);
    let run = std::thread::spawn(move || {
        sipwright(&["run", &scenario, "--target", &target, "--calls", "1"])
    });
    let (mut conn, _) = listener.accept().expect("the run connects");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reads = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reads.push(buf[..n].to_vec()),
            Err(e) => panic!("reading: {e} (so far: {reads:?})"),
        }
    }
    let o = run.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    reads
}

#[test]
fn chunks_arrive_as_separate_writes_over_tcp() {
    let msg = "OPTIONS sip:chunks SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    // The delays only keep the pieces apart: each `read` returns what one write put
    // on the wire (loopback, TCP_NODELAY), whenever it comes.
    let yaml = format!(
        "steps:\n  - send: \"{}\"\n    raw: true\n    chunks: [{{bytes: 10}}, {{bytes: 20, after: 300ms}}, {{rest: true, after: 300ms}}]\n",
        msg.replace("\r\n", "\\r\\n")
    );
    let reads = tcp_reads("chunks-tcp", &yaml);
    let m = msg.as_bytes();
    assert_eq!(
        reads,
        [m[..10].to_vec(), m[10..30].to_vec(), m[30..].to_vec()]
    );
}

#[test]
fn pipelined_messages_arrive_in_one_write_over_tcp() {
    let a = "OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    let b = "OPTIONS sip:b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    let c = "OPTIONS sip:c SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    let esc = |s: &str| s.replace("\r\n", "\\r\\n");
    let yaml = format!(
        "steps:\n  - send: \"{}\"\n    raw: true\n    pipeline: true\n  - send: \"{}\"\n    raw: true\n  - pause: 300ms\n  - send: \"{}\"\n    raw: true\n",
        esc(a),
        esc(b),
        esc(c)
    );
    let reads = tcp_reads("pipeline-tcp", &yaml);
    assert_eq!(
        reads,
        [format!("{a}{b}").into_bytes(), c.as_bytes().to_vec()]
    );
}

#[test]
fn a_call_that_ends_with_a_send_delivers_it_on_its_connection() {
    // Its only message: queued as the call ends, before its connection is even up.
    let msg = "OPTIONS sip:last SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    let yaml = format!(
        "steps:\n  - send: \"{}\"\n    raw: true\n",
        msg.replace("\r\n", "\\r\\n")
    );
    let reads = tcp_reads("last-send-tcp", &yaml);
    assert_eq!(reads.concat(), msg.as_bytes());
}

//! `sipwright scenario from-pcap`: a call captured on the wire → uac.yaml + uas.yaml →
//! played again on loopback with `--trace` → the messages on the wire are the
//! captured ones except for the values the templates substitute (addresses, ports,
//! tags, branches, Call-ID, CSeq numbers, Content-Length, the SDP's media port).
//!
//! Captures: SIPp's uac calling SIPp's uas, recorded by dumpcap on `lo` (or, where
//! dumpcap cannot capture, SIPp's uac calling our uas with `--trace`); a hand-made
//! capture full of malformations; our own call over TCP. Messages are read back
//! with tshark, so the comparison does not go through our capture reader. Needs
//! `sipp` and `tshark` (Debian `sip-tester`, `tshark`): skipped with a reason when
//! missing, a failure under CI=true.

mod common;
use common::process::{signal, wait_for, wait_until_bound};
use common::sipp::Sipp;
use common::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;

/// A SIP message as tshark shows it.
#[derive(Clone, Debug)]
struct Wire {
    ts: f64,
    src: SocketAddr,
    dst: SocketAddr,
    bytes: Vec<u8>,
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    let hex: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Every UDP or TCP payload of the capture that starts like SIP, in order.
fn wire(path: &Path) -> Vec<Wire> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "separator=/t"])
        .args(["-e", "frame.time_epoch", "-e", "ip.src", "-e", "ipv6.src"])
        .args(["-e", "udp.srcport", "-e", "tcp.srcport", "-e", "ip.dst"])
        .args(["-e", "ipv6.dst", "-e", "udp.dstport", "-e", "tcp.dstport"])
        .args(["-e", "udp.payload", "-e", "tcp.payload"])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark -r {}", path.display());
    let mut msgs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 11 {
            continue;
        }
        let pick = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else {
                a.to_string()
            }
        };
        let (src_ip, dst_ip) = (pick(f[1], f[2]), pick(f[5], f[6]));
        let (sport, dport) = (pick(f[3], f[4]), pick(f[7], f[8]));
        let bytes = hex_bytes(&pick(f[9], f[10]));
        if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let addr = |ip: &str, port: &str| -> SocketAddr {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            SocketAddr::new(ip, port.parse().unwrap())
        };
        msgs.push(Wire {
            ts: f[0].parse().unwrap_or(0.0),
            src: addr(&src_ip, &sport),
            dst: addr(&dst_ip, &dport),
            bytes,
        });
    }
    msgs
}

fn header<'t>(text: &'t str, names: &[&str]) -> Option<&'t str> {
    text.split("\r\n")
        .flat_map(|l| l.split('\n'))
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            names
                .iter()
                .any(|x| n.trim().eq_ignore_ascii_case(x))
                .then(|| v.trim())
        })
}

fn tag_in(value: &str) -> Option<String> {
    let re = Regex::new(r"(?i);\s*tag=([^;,\s>]+)").unwrap();
    re.captures(value).map(|c| c[1].to_string())
}

fn body_len(text: &str) -> usize {
    match (text.find("\r\n\r\n"), text.find("\n\n")) {
        (Some(a), Some(b)) if b + 2 < a + 4 => text.len() - b - 2,
        (Some(a), _) => text.len() - a - 4,
        (None, Some(b)) => text.len() - b - 2,
        (None, None) => 0,
    }
}

/// The call's messages with every value a template substitutes replaced by a
/// placeholder that keeps the relations: the n-th distinct branch (or CSeq number)
/// of the call is `<BRANCH-n>` (`<CSEQ-n>`) in both captures. Retransmissions (the
/// same bytes again in the same direction) are left out. A Content-Length is
/// `<LEN>` only when it is the body's length: a wrong one must come back as it was.
fn normalize(msgs: &[Wire]) -> Vec<String> {
    let first = msgs
        .iter()
        .find(|m| !m.bytes.starts_with(b"SIP/2.0"))
        .expect("a request");
    let (uac, uas) = (first.src, first.dst);
    let text0 = String::from_utf8_lossy(&first.bytes).into_owned();
    // Over TCP the UAC sends from a port of its own and writes its listening
    // address in Via: both are the UAC's address.
    let advertised: Option<SocketAddr> = header(&text0, &["via", "v"])
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.parse().ok());
    let call_id = header(&text0, &["call-id", "i"]).unwrap().to_string();
    let uac_tag = header(&text0, &["from", "f"]).and_then(tag_in);
    let uas_tag = msgs
        .iter()
        .filter(|m| m.src == uas)
        .find_map(|m| header(&String::from_utf8_lossy(&m.bytes), &["to", "t"]).and_then(tag_in));
    let branch = Regex::new(r"(?i)(branch=)([^;,\s>]+)").unwrap();
    let cseq = Regex::new(r"(?im)^(cseq[ \t]*:[ \t]*)(\d+)").unwrap();
    let clen = Regex::new(r"(?im)^((?:content-length|l)[ \t]*:[ \t]*)(\d+)").unwrap();
    let mport = Regex::new(r"(?m)^(m=\w+ )(\d+)").unwrap();
    let rport = Regex::new(r"(rport=)(\d+)").unwrap();
    let tag = Regex::new(r"(?i)(;\s*tag=)([^;,\s>]+)").unwrap();
    let mut branches: Vec<String> = Vec::new();
    // CSeq numbers are counted per direction of requests: each side has its own.
    let mut cseqs: Vec<(bool, String)> = Vec::new();
    let mut seen: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut out = Vec::new();
    for m in msgs {
        let dir = m.src == uac && m.dst == uas;
        if !(dir || (m.src == uas && m.dst == uac)) || seen.contains(&(dir, m.bytes.clone())) {
            continue;
        }
        seen.push((dir, m.bytes.clone()));
        let raw = String::from_utf8_lossy(&m.bytes).into_owned();
        let len = body_len(&raw);
        let mut t = raw.replace(&call_id, "<CALL-ID>");
        t = tag
            .replace_all(&t, |c: &regex::Captures| {
                let v = &c[2];
                let p = if Some(v) == uac_tag.as_deref() {
                    "<UAC-TAG>"
                } else if Some(v) == uas_tag.as_deref() {
                    "<UAS-TAG>"
                } else {
                    v
                };
                format!("{}{p}", &c[1])
            })
            .into_owned();
        t = branch
            .replace_all(&t, |c: &regex::Captures| {
                let v = c[2].to_string();
                let i = branches.iter().position(|b| *b == v).unwrap_or_else(|| {
                    branches.push(v);
                    branches.len() - 1
                });
                format!("{}<BRANCH-{i}>", &c[1])
            })
            .into_owned();
        // Whose numbering: the sender of a request, the receiver of a response.
        let space = dir != m.bytes.starts_with(b"SIP/2.0");
        t = cseq
            .replace_all(&t, |c: &regex::Captures| {
                let v = (space, c[2].to_string());
                let i = cseqs.iter().position(|b| *b == v).unwrap_or_else(|| {
                    cseqs.push(v);
                    cseqs.len() - 1
                });
                format!("{}<CSEQ-{i}>", &c[1])
            })
            .into_owned();
        t = clen
            .replace_all(&t, |c: &regex::Captures| {
                if c[2].parse::<usize>() == Ok(len) {
                    format!("{}<LEN>", &c[1])
                } else {
                    c[0].to_string()
                }
            })
            .into_owned();
        t = mport.replace_all(&t, "${1}<MPORT>").into_owned();
        for (addr, name) in [
            (Some(uac), "<UAC>"),
            (advertised, "<UAC>"),
            (Some(uas), "<UAS>"),
        ] {
            if let Some(addr) = addr {
                t = t.replace(&addr.to_string(), name);
            }
        }
        t = rport
            .replace_all(&t, |c: &regex::Captures| {
                let p: u16 = c[2].parse().unwrap_or(0);
                let name = if p == uac.port() {
                    "<UAC-PORT>".to_string()
                } else if p == uas.port() {
                    "<UAS-PORT>".to_string()
                } else {
                    c[2].to_string()
                };
                format!("{}{name}", &c[1])
            })
            .into_owned();
        for ip in [uac.ip(), uas.ip()] {
            t = t.replace(&ip.to_string(), "<IP>");
        }
        out.push(format!("{} {t}", if dir { "uac→uas" } else { "uas→uac" }));
    }
    out
}

/// Both captures hold the same call, message for message, once normalized.
fn assert_same_call(original: &[Wire], replay: &[Wire]) {
    assert_same_call_but(original, replay, &[]);
}

/// [`assert_same_call`] for the messages whose normalized text starts with none of
/// `but` (those the engine writes itself), which must be there in both.
fn assert_same_call_but(original: &[Wire], replay: &[Wire], but: &[&str]) {
    let keep = |v: Vec<String>| -> Vec<String> {
        let (left, kept): (Vec<String>, Vec<String>) = v
            .into_iter()
            .partition(|m| but.iter().any(|b| m.starts_with(b)));
        assert_eq!(left.len(), but.len(), "{left:?}");
        kept
    };
    let (a, b) = (keep(normalize(original)), keep(normalize(replay)));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "message {} differs (original, then replay)", i + 1);
    }
    assert_eq!(a.len(), b.len(), "original:\n{a:#?}\nreplay:\n{b:#?}");
}

/// A folder of its own under the test's scratch directory.
fn scratch_dir(name: &str) -> PathBuf {
    let d = scratch(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `scenario from-pcap CAPTURE -o DIR ARGS…`, which must succeed.
fn convert(capture: &Path, dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["scenario", "from-pcap", s(capture), "-o", s(dir)];
    all.extend_from_slice(args);
    let o = sipwright(&all);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = sipwright(&["check", s(&dir.join("uac.yaml")), s(&dir.join("uas.yaml"))]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    text(&o)
}

/// Runs the pair on loopback (`uac.yaml` naming `uas.yaml` as its peer) with
/// `--trace`; both sides must succeed. Returns the trace.
fn replay(dir: &Path, extra: &[&str]) -> Vec<Wire> {
    let trace = dir.join("replay.pcap");
    let report = dir.join("replay.json");
    let uac = dir.join("uac.yaml");
    let mut args = vec![
        "run",
        s(&uac),
        "--loopback",
        "--calls",
        "1",
        "--trace",
        s(&trace),
        "--report",
        s(&report),
    ];
    args.extend_from_slice(extra);
    let o = sipwright(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = report_json(&report);
    assert_eq!(j["calls"]["succeeded"], 1, "{j}");
    assert_eq!(j["peer"]["calls"]["succeeded"], 1, "{j}");
    wire(&trace)
}

fn report_json(p: &Path) -> serde_json::Value {
    common::report(p)
}

/// dumpcap recording `lo` with a capture filter; None (and why, printed) when it
/// cannot capture here.
struct Dumpcap(Child);

impl Dumpcap {
    fn start(filter: &str, file: &Path) -> Option<Dumpcap> {
        let mut child = Command::new("dumpcap")
            .args(["-i", "lo", "-q", "-f", filter, "-w"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // dumpcap writes the file's header once it captures.
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(file).map_or(0, |m| m.len()) == 0 {
            if std::time::Instant::now() > end || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("dumpcap cannot capture on lo here: falling back to our own --trace");
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        Some(Dumpcap(child))
    }

    fn stop(mut self) {
        std::thread::sleep(Duration::from_millis(200));
        signal(self.0.id() as i32, libc::SIGINT);
        if wait_for(&mut self.0, Duration::from_secs(5)).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One call of SIPp's built-in uac to SIPp's built-in uas, captured by dumpcap; or
/// to our uas writing the capture with `--trace` where dumpcap cannot capture.
fn sipp_call(dir: &Path) -> PathBuf {
    let port = free_udp_port();
    let target = format!("127.0.0.1:{port}");
    let file = dir.join("sipp.pcapng");
    if require("dumpcap").is_some()
        && let Some(dump) = Dumpcap::start(&format!("udp port {port}"), &file)
    {
        let uas = Sipp::uas("frompcap-uas", port, "u1", ["-sn", "uas"], 1);
        Sipp::uac("frompcap-uac", &target, "u1", 1, "1")
            .finish()
            .assert_all_succeeded(1, "");
        dump.stop();
        drop(uas);
        return file;
    }
    let file = dir.join("sipp.pcap");
    let mut ours = Command::new(bin())
        .args([
            "run", "uas", "--bind", &target, "--calls", "1", "-q", "--trace",
        ])
        .arg(&file)
        .spawn()
        .expect("start sipwright");
    assert!(wait_until_bound(port, false, Duration::from_secs(5)));
    Sipp::uac("frompcap-uac", &target, "u1", 1, "1")
        .finish()
        .assert_all_succeeded(1, "");
    let status = wait_for(&mut ours, Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    file
}

#[test]
fn sipp_call_round_trip() {
    if require("sipp").is_none() || require("tshark").is_none() {
        return;
    }
    let dir = scratch_dir("from-pcap-sipp");
    let capture = sipp_call(&dir);
    let original = wire(&capture);
    assert!(original.len() >= 5, "{original:?}");
    let pair = dir.join("pair");
    convert(&capture, &pair, &[]);
    let uas = std::fs::read_to_string(pair.join("uas.yaml")).unwrap();
    // The responses copy the request's lines, as SIPp's [last_Via:] does.
    assert!(uas.contains("{{ last.via }}"), "{uas}");
    assert!(uas.contains("{{ last.to }};tag={{ to_tag }}"), "{uas}");
    let replayed = replay(&pair, &[]);
    assert_same_call(&original, &replayed);

    // Each generated side also plays against SIPp itself.
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let mut ours = Command::new(bin())
        .args([
            "run",
            s(&pair.join("uas.yaml")),
            "--bind",
            &bind,
            "--calls",
            "1",
            "-q",
        ])
        .spawn()
        .expect("start sipwright");
    assert!(wait_until_bound(port, false, Duration::from_secs(5)));
    Sipp::uac("frompcap-uac2", &bind, "u1", 1, "1")
        .finish()
        .assert_all_succeeded(1, "generated uas.yaml answering SIPp's uac");
    let status = wait_for(&mut ours, Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "generated uas.yaml");

    let port = free_udp_port();
    let sipp_uas = Sipp::uas("frompcap-uas2", port, "u1", ["-sn", "uas"], 1);
    let o = sipwright(&[
        "run",
        s(&pair.join("uac.yaml")),
        "--target",
        &format!("127.0.0.1:{port}"),
        "--calls",
        "1",
        "-q",
    ]);
    drop(sipp_uas);
    assert_eq!(
        o.status.code(),
        Some(0),
        "generated uac.yaml calling SIPp's uas: {}",
        text(&o)
    );
}

/// A classic pcap (raw IP) of `(ms after the first, from, to, payload)` records.
fn pcap(records: &[(u64, &str, &str, &[u8])]) -> Vec<u8> {
    use sipwright::report::pcap::{write_global_header, write_udp_record};
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut out = Vec::new();
    write_global_header(&mut out);
    for (ms, src, dst, payload) in records {
        let ts: SystemTime = t0 + Duration::from_millis(*ms);
        write_udp_record(
            &mut out,
            ts,
            src.parse().unwrap(),
            dst.parse().unwrap(),
            payload,
        );
    }
    out
}

const A: &str = "10.0.0.1:5060";
const B: &str = "10.0.0.2:5080";

/// A call whose messages a well-behaved stack would never write: compact and
/// lower-case names, odd spacing, a space before a colon, duplicated and folded
/// headers, trailing blanks, LF-only line ends, a Content-Length shorter than the
/// body and one padded with spaces, and a retransmission.
fn odd_call() -> Vec<(u64, &'static str, &'static str, Vec<u8>)> {
    let sdp_a = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let sdp_b = "v=0\r\no=- 2 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:bob@10.0.0.2:5080 SIP/2.0\r\n\
         via:  SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-odd-1;rport\r\n\
         Max-Forwards:70\r\n\
         f: \"Alice\" <sip:alice@10.0.0.1:5060>;tag=alice-1\r\n\
         t: <sip:bob@10.0.0.2:5080>\r\n\
         call-id:odd-call-1@10.0.0.1\r\n\
         CSEQ:  101   INVITE\r\n\
         Contact: <sip:alice@10.0.0.1:5060>\r\n\
         Subject: first\r\n\
         Subject: second\r\n\
         X-Folded: one,\r\n\ttwo\r\n\
         X-Trailing: spaces   \r\n\
         X-Space : before colon\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 10\r\n\r\n{sdp_a}"
    );
    let trying = "SIP/2.0 100 Trying\n\
         via:  SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-odd-1;rport=5060;received=10.0.0.1\n\
         f: \"Alice\" <sip:alice@10.0.0.1:5060>;tag=alice-1\n\
         t: <sip:bob@10.0.0.2:5080>\n\
         call-id:odd-call-1@10.0.0.1\n\
         CSEQ:  101   INVITE\n\
         Content-Length: 0\n\n"
        .to_string();
    let copies = "via:  SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-odd-1;rport\r\n\
         f: \"Alice\" <sip:alice@10.0.0.1:5060>;tag=alice-1\r\n\
         t: <sip:bob@10.0.0.2:5080>;tag=bob-9\r\n\
         call-id:odd-call-1@10.0.0.1\r\n\
         CSEQ:  101   INVITE\r\n";
    let ringing = format!(
        "SIP/2.0 180 Ringing\r\n{copies}X-Case: MiXeD\r\nContact: <sip:bob@10.0.0.2:5080>\r\ncontent-length: 0\r\n\r\n"
    );
    let ok = format!(
        "SIP/2.0 200 OK\r\n{copies}Contact: <sip:bob@10.0.0.2:5080>\r\nX-Dup: 1\r\nX-Dup: 1\r\nContent-Type: application/sdp\r\nContent-Length:  {}\r\n\r\n{sdp_b}",
        sdp_b.len()
    );
    let dialog = "From: \"Alice\" <sip:alice@10.0.0.1:5060>;tag=alice-1\r\n\
         To: <sip:bob@10.0.0.2:5080>;tag=bob-9\r\n\
         Call-ID: odd-call-1@10.0.0.1\r\n";
    let ack = format!(
        "ACK sip:bob@10.0.0.2:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-odd-2\r\n{dialog}CSeq: 101 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    let bye = format!(
        "BYE sip:bob@10.0.0.2:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-odd-3\r\n{dialog}CSeq: 102 BYE\r\nUser-Agent: odd/1.0\r\nUser-Agent: odd/1.0\r\nl: 0\r\n\r\n"
    );
    let bye_ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-odd-3\r\n\
         From: \"Alice\" <sip:alice@10.0.0.1:5060>;tag=alice-1\r\n\
         To: <sip:bob@10.0.0.2:5080>;tag=bob-9\r\n\
         Call-ID: odd-call-1@10.0.0.1\r\n\
         CSeq: 102 BYE\r\nServer: odd\r\nContent-Length: 0\r\n\r\n"
        .to_string();
    vec![
        (0, A, B, invite.into_bytes()),
        (1, B, A, trying.clone().into_bytes()),
        // The 100 again: a retransmission, which the transaction layer sends.
        (2, B, A, trying.into_bytes()),
        (3, B, A, ringing.into_bytes()),
        (153, B, A, ok.into_bytes()),
        (154, A, B, ack.into_bytes()),
        (260, A, B, bye.into_bytes()),
        (261, B, A, bye_ok.into_bytes()),
    ]
}

fn write_odd_call(dir: &Path) -> PathBuf {
    let call = odd_call();
    let records: Vec<(u64, &str, &str, &[u8])> = call
        .iter()
        .map(|(t, a, b, p)| (*t, *a, *b, p.as_slice()))
        .collect();
    let file = dir.join("odd.pcap");
    std::fs::write(&file, pcap(&records)).unwrap();
    file
}

#[test]
fn malformed_headers_round_trip() {
    if require("tshark").is_none() {
        return;
    }
    let dir = scratch_dir("from-pcap-odd");
    let capture = write_odd_call(&dir);
    let original = wire(&capture);
    assert_eq!(original.len(), 8);
    let pair = dir.join("pair");
    convert(&capture, &pair, &[]);
    let uac = std::fs::read_to_string(pair.join("uac.yaml")).unwrap();
    let uas = std::fs::read_to_string(pair.join("uas.yaml")).unwrap();
    // The wrong Content-Length is kept; the timing is kept as pauses.
    assert!(uac.contains("Content-Length: 10\\r\\n"), "{uac}");
    assert!(uas.contains("- pause: 150ms"), "{uas}");
    assert!(uac.contains("- pause: 106ms"), "{uac}");
    // The 100's Via is not a copy (rport and received filled in): the branch is
    // captured from the INVITE.
    assert!(uas.contains("var: branch_1"), "{uas}");
    let replayed = replay(&pair, &[]);
    assert_same_call(&original, &replayed);
    // The 200 came about 150 ms after the 180, the BYE about 106 ms after the ACK.
    let at = |start: &str| {
        replayed
            .iter()
            .find(|m| m.bytes.starts_with(start.as_bytes()))
            .unwrap()
            .ts
    };
    assert!(at("SIP/2.0 200 OK") - at("SIP/2.0 180") >= 0.14);
    assert!(at("BYE ") - at("ACK ") >= 0.095);

    // --no-pauses: the same messages, no waiting.
    let fast = dir.join("fast");
    convert(&capture, &fast, &["--no-pauses"]);
    let uas = std::fs::read_to_string(fast.join("uas.yaml")).unwrap();
    assert!(!uas.contains("pause"), "{uas}");
    assert_same_call(&original, &replay(&fast, &[]));
}

/// A capture of `(ms, from, to, text)` records, line ends made CRLF, converted,
/// replayed on loopback and compared (less the messages `but` names).
fn round_trip(name: &str, records: &[(u64, &str, &str, String)], but: &[&str]) -> PathBuf {
    let dir = scratch_dir(name);
    let bytes: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.3.replace('\n', "\r\n").into_bytes())
        .collect();
    let recs: Vec<(u64, &str, &str, &[u8])> = records
        .iter()
        .zip(&bytes)
        .map(|(r, b)| (r.0, r.1, r.2, b.as_slice()))
        .collect();
    let capture = dir.join("call.pcap");
    std::fs::write(&capture, pcap(&recs)).unwrap();
    let pair = dir.join("pair");
    convert(&capture, &pair, &[]);
    assert_same_call_but(&wire(&capture), &replay(&pair, &[]), but);
    pair
}

fn invite(cseq: u32, extra: &str) -> String {
    format!(
        "INVITE sip:bob@10.0.0.2:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv\n\
         From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
         To: <sip:bob@10.0.0.2:5080>\n\
         Call-ID: flow@10.0.0.1\n\
         CSeq: {cseq} INVITE\n\
         Contact: <sip:alice@10.0.0.1:5060>\n\
         {extra}Content-Length: 0\n\n"
    )
}

/// A response from B to A's request (`via`: its branch, `cseq`: its CSeq line).
fn answer(status: &str, branch: &str, cseq: &str, tag: bool) -> String {
    let tag = if tag { ";tag=tb" } else { "" };
    format!(
        "SIP/2.0 {status}\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\n\
         From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
         To: <sip:bob@10.0.0.2:5080>{tag}\n\
         Call-ID: flow@10.0.0.1\n\
         CSeq: {cseq}\n\
         Contact: <sip:bob@10.0.0.2:5080>\n\
         Content-Length: 0\n\n"
    )
}

/// An in-dialog request from A.
fn from_a(method: &str, branch: &str, cseq: u32, extra: &str) -> String {
    format!(
        "{method} sip:bob@10.0.0.2:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\n\
         From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
         To: <sip:bob@10.0.0.2:5080>;tag=tb\n\
         Call-ID: flow@10.0.0.1\n\
         CSeq: {cseq} {method}\n\
         {extra}Content-Length: 0\n\n"
    )
}

/// CANCEL: its branch is the INVITE's (captured from the 180 at run time); the
/// ACK of the 487 is the INVITE transaction's own, so it is not compared.
#[test]
fn cancelled_call_round_trip() {
    if require("tshark").is_none() {
        return;
    }
    let cancel = "CANCEL sip:bob@10.0.0.2:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv\n\
         From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
         To: <sip:bob@10.0.0.2:5080>\n\
         Call-ID: flow@10.0.0.1\n\
         CSeq: 1 CANCEL\n\
         Content-Length: 0\n\n";
    let pair = round_trip(
        "from-pcap-cancel",
        &[
            (0, A, B, invite(1, "")),
            (
                1,
                B,
                A,
                answer("180 Ringing", "z9hG4bK-inv", "1 INVITE", true),
            ),
            (80, A, B, cancel.into()),
            (81, B, A, answer("200 OK", "z9hG4bK-inv", "1 CANCEL", true)),
            (
                82,
                B,
                A,
                answer("487 Request Terminated", "z9hG4bK-inv", "1 INVITE", true),
            ),
            (83, A, B, from_a("ACK", "z9hG4bK-inv", 1, "")),
        ],
        &["uac→uas ACK"],
    );
    let uac = std::fs::read_to_string(pair.join("uac.yaml")).unwrap();
    assert!(uac.contains("branch={{ branch_2 }}"), "{uac}");
}

/// The callee hangs up: its BYE has its own CSeq numbering, its tag in From and
/// goes to the caller's Contact.
#[test]
fn callee_hangs_up_round_trip() {
    if require("tshark").is_none() {
        return;
    }
    let bye = "BYE sip:alice@10.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bK-bye\n\
         From: <sip:bob@10.0.0.2:5080>;tag=tb\n\
         To: <sip:alice@10.0.0.1:5060>;tag=ta\n\
         Call-ID: flow@10.0.0.1\n\
         CSeq: 7000 BYE\n\
         Content-Length: 0\n\n";
    let bye_ok = "SIP/2.0 200 OK\n\
         Via: SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bK-bye\n\
         From: <sip:bob@10.0.0.2:5080>;tag=tb\n\
         To: <sip:alice@10.0.0.1:5060>;tag=ta\n\
         Call-ID: flow@10.0.0.1\n\
         CSeq: 7000 BYE\n\
         Content-Length: 0\n\n";
    round_trip(
        "from-pcap-callee-bye",
        &[
            (0, A, B, invite(314, "")),
            (1, B, A, answer("200 OK", "z9hG4bK-inv", "314 INVITE", true)),
            (2, A, B, from_a("ACK", "z9hG4bK-ack", 314, "")),
            (50, B, A, bye.into()),
            (51, A, B, bye_ok.into()),
        ],
        &[],
    );
}

/// A reliable 183 and its PRACK: the 200 to the INVITE answers a request received
/// before the PRACK, so its branch and CSeq number are captured from the INVITE.
#[test]
fn prack_call_round_trip() {
    if require("tshark").is_none() {
        return;
    }
    let progress = answer("183 Session Progress", "z9hG4bK-inv", "1 INVITE", true)
        .replace("Content-Length", "Require: 100rel\nRSeq: 1\nContent-Length");
    let prack_ok = "SIP/2.0 200 OK\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-prack\n\
         From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
         To: <sip:bob@10.0.0.2:5080>;tag=tb\n\
         Call-ID: flow@10.0.0.1\n\
         CSeq: 2 PRACK\n\
         Content-Length: 0\n\n";
    let bye_ok = prack_ok
        .replace("z9hG4bK-prack", "z9hG4bK-bye")
        .replace("2 PRACK", "3 BYE");
    let pair = round_trip(
        "from-pcap-prack",
        &[
            (0, A, B, invite(1, "Supported: 100rel\n")),
            (1, B, A, progress),
            (
                2,
                A,
                B,
                from_a("PRACK", "z9hG4bK-prack", 2, "RAck: 1 1 INVITE\n"),
            ),
            (3, B, A, prack_ok.into()),
            (4, B, A, answer("200 OK", "z9hG4bK-inv", "1 INVITE", true)),
            (5, A, B, from_a("ACK", "z9hG4bK-ack", 1, "")),
            (6, A, B, from_a("BYE", "z9hG4bK-bye", 3, "")),
            (7, B, A, bye_ok),
        ],
        &[],
    );
    let uas = std::fs::read_to_string(pair.join("uas.yaml")).unwrap();
    assert!(uas.contains("CSeq: {{ cseq_1 }} INVITE"), "{uas}");
}

/// Our own call over TCP: the messages come from the capture's TCP streams, and the
/// pair plays them over TCP again.
#[test]
fn tcp_call_round_trip() {
    if require("tshark").is_none() {
        return;
    }
    let dir = scratch_dir("from-pcap-tcp");
    let capture = dir.join("tcp.pcap");
    let o = sipwright(&[
        "run",
        "uac",
        "--loopback",
        "--transport",
        "tcp",
        "--calls",
        "1",
        "-q",
        "--trace",
        s(&capture),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let original = wire(&capture);
    let pair = dir.join("pair");
    let o = sipwright(&["scenario", "from-pcap", s(&capture), "-o", s(&pair)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("over TCP") && out.contains("--transport tcp"),
        "{out}"
    );
    let replayed = replay(&pair, &["--transport", "tcp"]);
    assert_same_call(&original, &replayed);
}

/// `--exact`: every message as captured; the pair replays where the capture was made
/// (the addresses are in the bytes): the UAS bound to the captured UAS address, the
/// UAC to the captured UAC address. What goes on the wire is the capture, byte for byte.
#[test]
fn exact_pair_sends_the_captured_bytes() {
    if require("tshark").is_none() {
        return;
    }
    let dir = scratch_dir("from-pcap-exact");
    let (a, b) = (free_udp_port(), free_udp_port());
    let (ua, ub) = (format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}"));
    // The odd call, moved to two free loopback ports.
    let call = odd_call();
    let moved: Vec<(u64, &str, &str, Vec<u8>)> = call
        .iter()
        .map(|(t, src, _, p)| {
            let text = String::from_utf8_lossy(p)
                .replace("10.0.0.1:5060", &ua)
                .replace("10.0.0.2:5080", &ub)
                .replace("10.0.0.1", "127.0.0.1")
                .replace("10.0.0.2", "127.0.0.1")
                .replace("rport=5060", &format!("rport={a}"));
            let (from, to) = if *src == A { (&ua, &ub) } else { (&ub, &ua) };
            (*t, from.as_str(), to.as_str(), text.into_bytes())
        })
        .collect();
    let records: Vec<(u64, &str, &str, &[u8])> = moved
        .iter()
        .map(|(t, a, b, p)| (*t, *a, *b, p.as_slice()))
        .collect();
    let capture = dir.join("exact.pcap");
    std::fs::write(&capture, pcap(&records)).unwrap();
    let pair = dir.join("pair");
    convert(&capture, &pair, &["--exact"]);
    let uac = std::fs::read_to_string(pair.join("uac.yaml")).unwrap();
    assert!(!uac.contains("{{"), "{uac}");

    let trace = dir.join("uas-trace.pcap");
    let mut uas = Command::new(bin())
        .args([
            "run",
            s(&pair.join("uas.yaml")),
            "--bind",
            &ub,
            "--calls",
            "1",
            "-q",
            "--trace",
        ])
        .arg(&trace)
        .spawn()
        .expect("start sipwright");
    assert!(wait_until_bound(b, false, Duration::from_secs(5)));
    let o = sipwright(&[
        "run",
        s(&pair.join("uac.yaml")),
        "--bind",
        &ua,
        "--target",
        &ub,
        "--calls",
        "1",
        "-q",
    ]);
    let status = wait_for(&mut uas, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let original: Vec<Vec<u8>> = wire(&capture).into_iter().map(|m| m.bytes).collect();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    for m in wire(&trace) {
        if !sent.contains(&m.bytes) {
            sent.push(m.bytes);
        }
    }
    let mut expected = original.clone();
    expected.dedup();
    assert_eq!(sent, expected);
}

fn fails_with(args: &[&str], what: &str) {
    let o = sipwright(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err.contains(what), "expected `{what}` in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = scratch_dir("from-pcap-errors");
    let out = dir.join("out");
    let o = s(&out);
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all, just text\n").unwrap();
    fails_with(
        &["scenario", "from-pcap", s(&garbage), "-o", o],
        "not a pcap or pcapng file",
    );

    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    fails_with(&["scenario", "from-pcap", s(&empty), "-o", o], "empty");

    let records = odd_call();
    let recs: Vec<(u64, &str, &str, &[u8])> = records
        .iter()
        .map(|(t, a, b, p)| (*t, *a, *b, p.as_slice()))
        .collect();
    let whole = pcap(&recs);
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 30]).unwrap();
    fails_with(
        &["scenario", "from-pcap", s(&cut), "-o", o],
        "truncated record",
    );

    let rtp = dir.join("rtp.pcap");
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    packet.extend_from_slice(&[0xff; 160]);
    std::fs::write(
        &rtp,
        pcap(&[(0, A, B, &packet), (20, A, B, b"hello, not SIP")]),
    )
    .unwrap();
    fails_with(
        &["scenario", "from-pcap", s(&rtp), "-o", o],
        "no SIP message",
    );

    let odd = dir.join("odd.pcap");
    std::fs::write(&odd, &whole).unwrap();
    fails_with(
        &[
            "scenario",
            "from-pcap",
            s(&odd),
            "-o",
            o,
            "--call-id",
            "nope@x",
        ],
        "no call with Call-ID `nope@x`",
    );

    // Two calls: without --call-id the error lists both, with --call-id one converts.
    let second = String::from_utf8(records[0].3.clone())
        .unwrap()
        .replace("odd-call-1", "odd-call-2");
    let two = dir.join("two.pcap");
    std::fs::write(
        &two,
        pcap(&[(0, A, B, recs[0].3), (5, A, B, second.as_bytes())]),
    )
    .unwrap();
    let o2 = sipwright(&["scenario", "from-pcap", s(&two), "-o", o]);
    let err = String::from_utf8_lossy(&o2.stderr);
    assert_eq!(o2.status.code(), Some(2), "{}", text(&o2));
    assert!(
        err.contains("odd-call-1@10.0.0.1  (INVITE at frame 1"),
        "{err}"
    );
    assert!(
        err.contains("odd-call-2@10.0.0.1  (INVITE at frame 2"),
        "{err}"
    );
    let ok = sipwright(&[
        "scenario",
        "from-pcap",
        s(&two),
        "-o",
        o,
        "--call-id",
        "odd-call-2@10.0.0.1",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    // Files are not overwritten without --force.
    fails_with(&["scenario", "from-pcap", s(&odd), "-o", o], "pass --force");
    let again = sipwright(&["scenarios", "from-pcap", s(&odd), "-o", o, "--force"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    fails_with(
        &[
            "scenario",
            "from-pcap",
            s(&dir.join("missing.pcap")),
            "-o",
            o,
        ],
        "missing.pcap",
    );
}

/// Bytes that are not text (invalid UTF-8, `{{`, NUL) go through `{{ hex: … }}`
/// slots, or `bytes_base64:` steps with `--exact`.
#[test]
fn bytes_that_are_not_text_round_trip() {
    if require("tshark").is_none() {
        return;
    }
    let dir = scratch_dir("from-pcap-bytes");
    let mut call = odd_call();
    let invite = String::from_utf8(call[0].3.clone()).unwrap();
    call[0].3 = invite
        .replace("X-Space : before colon", "X-Json: {{\"a\":1}}")
        .into_bytes();
    // In the BYE: a new INVITE with a NUL or invalid UTF-8 in a header is refused
    // with 400 by a validating UAS (ours), as RFC 3261 §16.3 asks; an in-dialog
    // request reaches its call.
    let bye = call.iter().position(|m| m.3.starts_with(b"BYE ")).unwrap();
    let bytes = &mut call[bye].3;
    let at = bytes.windows(10).position(|w| w == b"User-Agent").unwrap();
    bytes.splice(at..at, b"X-Bin: \xff\xfe\x00\x80\r\n".iter().copied());
    let records: Vec<(u64, &str, &str, &[u8])> = call
        .iter()
        .map(|(t, a, b, p)| (*t, *a, *b, p.as_slice()))
        .collect();
    let capture = dir.join("bytes.pcap");
    std::fs::write(&capture, pcap(&records)).unwrap();
    let original = wire(&capture);
    let pair = dir.join("pair");
    convert(&capture, &pair, &[]);
    let uac = std::fs::read_to_string(pair.join("uac.yaml")).unwrap();
    // Invalid UTF-8 as hex slots, the NUL between them escaped, the JSON's `{{` as hex.
    assert!(uac.contains("{{ hex: fffe }}\\x00{{ hex: 80 }}"), "{uac}");
    assert!(uac.contains("{{ hex: 7b7b }}"), "{uac}");
    assert_same_call(&original, &replay(&pair, &[]));
    let exact = dir.join("exact");
    convert(&capture, &exact, &["--exact"]);
    let uac = std::fs::read_to_string(exact.join("uac.yaml")).unwrap();
    assert!(uac.contains("bytes_base64:"), "{uac}");
}

/// `peer:` may name a scenario file beside the scenario, and `--peer` replaces it:
/// what `--loopback` needs to run a generated pair.
#[test]
fn peer_files_and_the_peer_option() {
    let dir = scratch_dir("from-pcap-peer");
    let show =
        |name: &str| String::from_utf8(sipwright(&["scenarios", "show", name]).stdout).unwrap();
    std::fs::write(dir.join("a.yaml"), show("uac") + "peer: b.yaml\n").unwrap();
    std::fs::write(dir.join("b.yaml"), show("uas") + "peer: a.yaml\n").unwrap();
    std::fs::write(dir.join("c.yaml"), show("uac") + "peer: nothing.yaml\n").unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    for args in [
        vec!["run", &path("a.yaml"), "--loopback", "--calls", "1", "-q"],
        vec!["run", &path("b.yaml"), "--loopback", "--calls", "1", "-q"],
        vec![
            "run",
            "uac",
            "--loopback",
            "--peer",
            &path("b.yaml"),
            "--calls",
            "1",
            "-q",
        ],
        // --peer wins over a `peer:` that names nothing.
        vec![
            "run",
            &path("c.yaml"),
            "--loopback",
            "--peer",
            "uas",
            "--calls",
            "1",
            "-q",
        ],
    ] {
        let o = sipwright(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
    fails_with(
        &["check", &path("c.yaml")],
        "`peer: nothing.yaml` is neither a built-in scenario",
    );
    fails_with(
        &["run", "uac", "--peer", "uas", "--calls", "1"],
        "add --loopback",
    );
    fails_with(
        &[
            "run",
            "uac",
            "--loopback",
            "--peer",
            &path("a.yaml"),
            "--calls",
            "1",
        ],
        "needs a UAC and a UAS",
    );
    fails_with(
        &["run", "uac", "--loopback", "--peer", "nope"],
        "--peer nope",
    );
}

//! Cross-check of `sipwright::srtp` against libsrtp 2 from C, every suite, with and without
//! an MKI: `tests/fixtures/srtp/libsrtp_tool.c` (compiled here with `cc … -lsrtp2`) drives
//! libsrtp over a line protocol, which reaches what python3-pylibsrtp cannot (AES-256-CM,
//! MKI).
//!
//! For each combination: RTP packets whose sequence numbers cross 65535 → 0 (ROC 0 → 1) and
//! SR+SDES compound RTCP packets of varied sizes go both ways (our protect → libsrtp
//! unprotect, libsrtp protect → our unprotect), and a packet with one flipped tag bit is
//! rejected by both sides.
//!
//! Also tests `tests/fixtures/srtp/libsrtp_decrypt_trace.py` on pcaps of an SDES call built
//! here (raw IP as `--trace` writes, Ethernet, Linux cooked; IPv4 and IPv6).
//!
//! Skips with a printed reason when cc, the libsrtp2 headers or /usr/bin/python3 are
//! missing; fails under CI=true.

mod common;
use common::{VARIED_SSRC, varied_rtp_packet};

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sipwright::report::pcap;
use sipwright::srtp::{Context, MasterKey, SrtpError, Suite};

const TOOL_SOURCE: &str = "tests/fixtures/srtp/libsrtp_tool.c";
const TRACE_SCRIPT: &str = "tests/fixtures/srtp/libsrtp_decrypt_trace.py";
const PYTHON: &str = "/usr/bin/python3";

/// srtp_err_status_auth_fail.
const AUTH_FAIL: &str = "err 7";

fn manifest(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Compile the tool once per test binary: Ok(path) or Err((why, how to install)).
fn build_tool() -> Result<PathBuf, (String, String)> {
    if Command::new("cc").arg("--version").output().is_err() {
        return Err(("`cc` is not installed".into(), "apt-get install gcc".into()));
    }
    let out = common::scratch("libsrtp_tool");
    let o = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(manifest(TOOL_SOURCE))
        .arg("-lsrtp2")
        .output()
        .expect("run cc");
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        if err.contains("srtp2/srtp.h") || err.contains("-lsrtp2") {
            return Err((
                "libsrtp2 headers or library are missing".into(),
                "apt-get install libsrtp2-dev".into(),
            ));
        }
        panic!("cc failed on {TOOL_SOURCE}:\n{err}");
    }
    Ok(out)
}

/// The compiled tool, or None after printing why the test is skipped.
fn tool() -> Option<&'static Path> {
    static TOOL: OnceLock<Result<PathBuf, (String, String)>> = OnceLock::new();
    match TOOL.get_or_init(build_tool) {
        Ok(path) => Some(path),
        Err((why, install)) => {
            common::unavailable(why, install);
            None
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// One running libsrtp_tool; killed when dropped.
struct Libsrtp {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Libsrtp {
    fn start(path: &Path) -> Libsrtp {
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start libsrtp_tool");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Libsrtp {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().expect("running");
        writeln!(stdin, "{line}").expect("write to libsrtp_tool");
        stdin.flush().expect("flush");
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).expect("read");
        assert!(!answer.is_empty(), "libsrtp_tool exited after {line:?}");
        answer.trim_end().to_string()
    }

    /// (major, minor, micro) of the libsrtp it is linked with.
    fn version(&mut self) -> (u32, u32, u32) {
        let answer = self.ask("version");
        let v: Vec<u32> = answer
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        assert_eq!(v.len(), 3, "version answer {answer:?}");
        (v[0], v[1], v[2])
    }

    fn key(&mut self, key: &MasterKey) {
        let mut key_salt = key.key.clone();
        key_salt.extend_from_slice(&key.salt);
        let mki = key.mki.as_deref().map(hex).unwrap_or_default();
        let answer = self.ask(&format!("key {} {} {mki}", key.suite, hex(&key_salt)));
        assert_eq!(answer, "ok", "libsrtp refused the {} key", key.suite);
    }

    /// ok → the packet, err → the whole answer ("err N").
    fn call(&mut self, op: &str, packet: &[u8]) -> Result<Vec<u8>, String> {
        let answer = self.ask(&format!("{op} {}", hex(packet)));
        match answer.strip_prefix("ok ") {
            Some(h) => Ok(unhex(h)),
            None => Err(answer),
        }
    }

    /// Close its stdin and wait for it to exit.
    fn finish(&mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("wait")
    }
}

impl Drop for Libsrtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SSRC: u32 = VARIED_SSRC;
const FIRST_SEQ: u32 = 65500;

fn rtp_packet(i: u32) -> Vec<u8> {
    varied_rtp_packet(i)
}

/// Plain SR + SDES (CNAME) compound packets: 0–3 report blocks, CNAMEs of varied length.
fn rtcp_packet(i: usize) -> Vec<u8> {
    let blocks = i % 4;
    let mut p = vec![0x80 | blocks as u8, 200];
    p.extend_from_slice(&((6 + 6 * blocks) as u16).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend((0..20 + 24 * blocks).map(|b| (b * 7 + i) as u8));
    let cname: Vec<u8> = format!("user{}@host-{}", "x".repeat(i * 3), i).into_bytes();
    // SSRC, CNAME item, end-of-list null, padded to a 32-bit boundary.
    let mut chunk = SSRC.to_be_bytes().to_vec();
    chunk.extend_from_slice(&[1, cname.len() as u8]);
    chunk.extend_from_slice(&cname);
    chunk.push(0);
    while !chunk.len().is_multiple_of(4) {
        chunk.push(0);
    }
    p.extend_from_slice(&[0x81, 202]);
    p.extend_from_slice(&((chunk.len() / 4) as u16).to_be_bytes());
    p.extend_from_slice(&chunk);
    p
}

fn master_key(suite: Suite, seed: u8, mki: Option<&[u8]>) -> MasterKey {
    let key_salt: Vec<u8> = (0..suite.master_key_len() + suite.master_salt_len())
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect();
    let mut key = MasterKey::from_key_salt(suite, &key_salt).expect("key");
    key.mki = mki.map(<[u8]>::to_vec);
    key
}

/// Index of a byte inside the authentication tag. HMAC suites end with the tag; GCM puts
/// the tag before the MKI, and for SRTCP also before E+index.
fn tag_byte(suite: Suite, rtcp: bool, len: usize, mki_len: usize) -> usize {
    match (suite.rtp_tag_len() == 16, rtcp) {
        (false, _) => len - 1,
        (true, false) => len - mki_len - 1,
        (true, true) => len - mki_len - 4 - 1,
    }
}

/// libsrtp before 2.7.0 finds the MKI of an SRTCP packet with the SRTP tag length, which
/// is wrong for the _32 suites (SRTCP keeps an 80-bit tag): it answers bad_mki. Fixed by
/// cisco/libsrtp#733 (commit 63a19f4, "Fix srtp_unprotect_rtcp_mki when RTP auth != RTCP").
fn libsrtp_misreads_srtcp_mki(version: (u32, u32, u32), suite: Suite, mki: bool) -> bool {
    mki && suite.rtp_tag_len() == 4 && version < (2, 7, 0)
}

const RTP_COUNT: u32 = 100;
const RTCP_COUNT: usize = 24;

fn cross_check(suite: Suite, seed: u8, mki: Option<&[u8]>) {
    let Some(tool) = tool() else { return };
    let what = format!(
        "{suite} {}",
        if mki.is_some() { "with MKI" } else { "no MKI" }
    );
    let key = master_key(suite, seed, mki);
    let mki_len = mki.map_or(0, <[u8]>::len);
    let mut lib = Libsrtp::start(tool);
    let version = lib.version();
    lib.key(&key);
    let mut ours_tx = Context::new(&key).expect("context");
    let mut ours_rx = Context::new(&key).expect("context");

    for i in 0..RTP_COUNT {
        let plain = rtp_packet(i);
        let mut ours = plain.clone();
        ours_tx.protect_rtp(&mut ours).expect("protect");
        let theirs = lib
            .call("protect_rtp", &plain)
            .unwrap_or_else(|e| panic!("{what}: libsrtp protect_rtp {i}: {e}"));
        // SRTP has no per-packet randomness: the same key, index and packet give one result.
        assert_eq!(hex(&theirs), hex(&ours), "{what}: SRTP packet {i}");
        assert_eq!(
            lib.call("unprotect_rtp", &ours),
            Ok(plain.clone()),
            "{what}: libsrtp unprotects our RTP packet {i}"
        );
        let mut p = theirs;
        let u = ours_rx
            .unprotect_rtp(&mut p)
            .unwrap_or_else(|e| panic!("{what}: libsrtp's RTP packet {i}: {e}"));
        assert_eq!(hex(&p[..u.len]), hex(&plain), "{what}: RTP packet {i}");
        assert_eq!(u.roc, u32::from(FIRST_SEQ + i > 65535), "{what}: ROC {i}");
    }
    assert_eq!(ours_rx.roc(SSRC), Some(1), "{what}");

    let rtcp_to_libsrtp = !libsrtp_misreads_srtcp_mki(version, suite, mki.is_some());
    if !rtcp_to_libsrtp {
        eprintln!(
            "{what}: libsrtp {version:?} cannot unprotect SRTCP with an MKI for this suite; only libsrtp → us checked"
        );
    }
    // Our SRTCP index starts at 0, libsrtp's at 1: both legal, so the bytes differ.
    for i in 0..RTCP_COUNT {
        let plain = rtcp_packet(i);
        let mut ours = plain.clone();
        ours_tx.protect_rtcp(&mut ours).expect("protect rtcp");
        if rtcp_to_libsrtp {
            assert_eq!(
                lib.call("unprotect_rtcp", &ours).map(|p| hex(&p)),
                Ok(hex(&plain)),
                "{what}: libsrtp unprotects our RTCP packet {i}"
            );
        }
        let mut p = lib
            .call("protect_rtcp", &plain)
            .unwrap_or_else(|e| panic!("{what}: libsrtp protect_rtcp {i}: {e}"));
        let u = ours_rx
            .unprotect_rtcp(&mut p)
            .unwrap_or_else(|e| panic!("{what}: libsrtp's RTCP packet {i}: {e}"));
        assert_eq!(hex(&p[..u.len]), hex(&plain), "{what}: RTCP packet {i}");
        assert_eq!(u.ssrc, SSRC);
    }

    // One flipped tag bit: both sides reject, and then accept the packet as sent.
    let plain = rtp_packet(RTP_COUNT);
    let mut ours = plain.clone();
    ours_tx.protect_rtp(&mut ours).expect("protect");
    let theirs = lib.call("protect_rtp", &plain).expect("libsrtp protect");
    let at = tag_byte(suite, false, ours.len(), mki_len);
    let (mut bad_ours, mut bad_theirs) = (ours.clone(), theirs.clone());
    bad_ours[at] ^= 0x04;
    bad_theirs[at] ^= 0x04;
    assert_eq!(
        lib.call("unprotect_rtp", &bad_ours),
        Err(AUTH_FAIL.into()),
        "{what}: libsrtp takes a forged RTP tag"
    );
    assert_eq!(
        ours_rx.unprotect_rtp(&mut bad_theirs),
        Err(SrtpError::AuthFailed),
        "{what}: we take a forged RTP tag"
    );
    assert_eq!(lib.call("unprotect_rtp", &ours), Ok(plain.clone()));
    let mut p = theirs;
    assert!(ours_rx.unprotect_rtp(&mut p).is_ok(), "{what}");

    let plain = rtcp_packet(RTCP_COUNT);
    let mut ours = plain.clone();
    ours_tx.protect_rtcp(&mut ours).expect("protect rtcp");
    let theirs = lib.call("protect_rtcp", &plain).expect("libsrtp protect");
    let mut bad_theirs = theirs.clone();
    bad_theirs[tag_byte(suite, true, theirs.len(), mki_len)] ^= 0x04;
    assert_eq!(
        ours_rx.unprotect_rtcp(&mut bad_theirs),
        Err(SrtpError::AuthFailed),
        "{what}: we take a forged RTCP tag"
    );
    let mut p = theirs;
    assert!(ours_rx.unprotect_rtcp(&mut p).is_ok(), "{what}");
    if rtcp_to_libsrtp {
        let mut bad_ours = ours.clone();
        bad_ours[tag_byte(suite, true, ours.len(), mki_len)] ^= 0x04;
        assert_eq!(
            lib.call("unprotect_rtcp", &bad_ours),
            Err(AUTH_FAIL.into()),
            "{what}: libsrtp takes a forged RTCP tag"
        );
        assert_eq!(lib.call("unprotect_rtcp", &ours), Ok(plain));
    }
}

/// Without and with a 4-byte MKI.
fn both_ways(suite: Suite, seed: u8) {
    cross_check(suite, seed, None);
    cross_check(suite, seed, Some(&[0xde, 0xad, 0x00, seed]));
}

#[test]
fn aes_cm_128_hmac_sha1_80_interoperates_with_libsrtp() {
    both_ways(Suite::AesCm128HmacSha1_80, 1);
}

#[test]
fn aes_cm_128_hmac_sha1_32_interoperates_with_libsrtp() {
    both_ways(Suite::AesCm128HmacSha1_32, 2);
}

#[test]
fn aes_256_cm_hmac_sha1_80_interoperates_with_libsrtp() {
    both_ways(Suite::Aes256CmHmacSha1_80, 3);
}

#[test]
fn aes_256_cm_hmac_sha1_32_interoperates_with_libsrtp() {
    both_ways(Suite::Aes256CmHmacSha1_32, 4);
}

#[test]
fn aead_aes_128_gcm_interoperates_with_libsrtp() {
    both_ways(Suite::AeadAes128Gcm, 5);
}

#[test]
fn aead_aes_256_gcm_interoperates_with_libsrtp() {
    both_ways(Suite::AeadAes256Gcm, 6);
}

/// Every line gets one answer, whatever it holds, and the tool exits cleanly at EOF.
#[test]
fn libsrtp_tool_survives_bad_input() {
    let Some(tool) = tool() else { return };
    let mut lib = Libsrtp::start(tool);
    let key_salt = hex(&[7; 30]);
    let cases: Vec<(String, &str)> = vec![
        ("unprotect_rtp 800000010000000012345678".into(), "err nokey"),
        ("".into(), "err parse"),
        ("bogus".into(), "err parse"),
        ("key".into(), "err parse"),
        ("key AES_CM_128_F8 00".into(), "err suite"),
        ("key AES_CM_128_HMAC_SHA1_80 0011".into(), "err parse"),
        (
            format!("key AES_CM_128_HMAC_SHA1_80 {key_salt} zz"),
            "err parse",
        ),
        (format!("key AES_CM_128_HMAC_SHA1_80 {key_salt}"), "ok"),
        ("protect_rtp 8".into(), "err parse"),
        ("protect_rtp 80xx".into(), "err parse"),
        ("protect_rtp 80 00".into(), "err parse"),
        ("protect_rtp".into(), "err parse"),
        ("protect_rtp 8000".into(), "err 2"),
        // 15 CSRCs announced, none there; an extension longer than the packet.
        ("protect_rtp 8f0000010000000012345678".into(), "err 2"),
        (
            "unprotect_rtp 900000010000000012345678beded00ff".into(),
            "err parse",
        ),
        (
            "unprotect_rtp 900000010000000012345678bede00ff00112233445566778899".into(),
            "err 2",
        ),
        ("unprotect_rtp 8000000100000000123456780011".into(), "err 2"),
        ("unprotect_rtcp 80c8000112345678".into(), "err 2"),
        ("protect_rtcp 80c800".into(), "err 2"),
        (
            "unprotect_rtp 800000010000000012345678000102030405060708090a0b".into(),
            AUTH_FAIL,
        ),
        ("use other".into(), "ok"),
        ("protect_rtcp 80c8000112345678".into(), "err nokey"),
        ("use 0".into(), "ok"),
    ];
    for (line, expected) in &cases {
        assert_eq!(&lib.ask(line), expected, "answer to {line:?}");
    }
    // A long packet, then still alive.
    let long = format!("80000001000000001234567{}", "8".repeat(200_000));
    assert_eq!(lib.ask(&format!("protect_rtp {long}")), "err parse");
    let long = format!("800000010000000012345678{}", "ab".repeat(100_000));
    assert!(lib.ask(&format!("protect_rtp {long}")).starts_with("ok "));
    assert!(lib.ask("version").starts_with("ok libsrtp"));
    let status = lib.finish();
    assert!(status.success(), "{status:?}");
}

// -----------------------------------------------------------------------------------------
// libsrtp_decrypt_trace.py
// -----------------------------------------------------------------------------------------

fn have_python() -> bool {
    if Path::new(PYTHON).is_file() {
        return true;
    }
    common::unavailable(
        &format!("{PYTHON} is not installed"),
        "apt-get install python3",
    );
    false
}

/// One SDES call as the test builds it.
struct CallSpec {
    suite: Suite,
    offerer_mki: Option<Vec<u8>>,
    answerer_mki: Option<Vec<u8>>,
    mux: bool,
    offerer: IpAddr,
    answerer: IpAddr,
}

const OFFER_PORT: u16 = 30000;
const ANSWER_PORT: u16 = 40000;

/// A datagram in the capture.
struct Datagram {
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
}

/// One side of the call: the plain RTP and RTCP it sends, and the key that protects them.
struct Leg {
    key: MasterKey,
    ssrc: u32,
    first_seq: u16,
    dtmf: bool,
}

impl Leg {
    fn rtp(&self, i: u16) -> Vec<u8> {
        let telephone_event = self.dtmf && i >= 18;
        let mut p = vec![0x80, if telephone_event { 101 } else { 0 }];
        p.extend_from_slice(&self.first_seq.wrapping_add(i).to_be_bytes());
        p.extend_from_slice(&(u32::from(i) * 160).to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        if telephone_event {
            p.extend_from_slice(&[5, 0x0a, 0, 160]);
        } else {
            p.extend((0..160).map(|b| (b as u16 ^ i) as u8 | 0x80));
        }
        p
    }

    fn rtcp(&self, i: usize) -> Vec<u8> {
        let mut p = rtcp_packet(i);
        p[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        p
    }
}

fn crypto_line(tag: u32, key: &MasterKey) -> String {
    let mut key_salt = key.key.clone();
    key_salt.extend_from_slice(&key.salt);
    let mki = key.mki.as_ref().map_or(String::new(), |m| {
        let value = m.iter().fold(0u64, |v, b| v << 8 | u64::from(*b));
        format!("|2^20|{value}:{}", m.len())
    });
    format!(
        "a=crypto:{tag} {} inline:{}{mki}\r\n",
        key.suite,
        base64(&key_salt)
    )
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sdp(ip: IpAddr, port: u16, cryptos: &str, mux: bool) -> String {
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=- 1 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n{cryptos}{}",
        if mux { "a=rtcp-mux\r\n" } else { "" }
    )
}

fn sip(start: &str, call_id: &str, cseq: &str, from: SocketAddr, body: &str) -> Vec<u8> {
    let host = |a: SocketAddr| match a.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{start}\r\nVia: SIP/2.0/UDP {}:{};branch=z9hG4bK-{cseq_n}\r\n\
         From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n{content_type}\
         Content-Length: {}\r\n\r\n{body}",
        host(from),
        from.port(),
        body.len(),
        cseq_n = cseq.split(' ').next().unwrap_or_default(),
    )
    .into_bytes()
}

/// INVITE with two a=crypto lines (tag 1 a decoy of another suite), 100, 180, 200 answering
/// tag 2, ACK; media both ways (the offerer's RTP crosses the sequence wrap and ends with
/// telephone-events); a plain RTP/AVP call next to it that must be left alone.
fn build_call(spec: &CallSpec) -> (Vec<Datagram>, Leg, Leg) {
    let offerer_sip = SocketAddr::new(spec.offerer, 5060);
    let answerer_sip = SocketAddr::new(spec.answerer, 5060);
    let offerer_key = master_key(spec.suite, 0x41, spec.offerer_mki.as_deref());
    let answerer_key = master_key(spec.suite, 0x73, spec.answerer_mki.as_deref());
    let decoy_suite = if spec.suite == Suite::AesCm128HmacSha1_80 {
        Suite::AeadAes128Gcm
    } else {
        Suite::AesCm128HmacSha1_80
    };
    let decoy = master_key(decoy_suite, 0x99, None);
    let offer = sdp(
        spec.offerer,
        OFFER_PORT,
        &(crypto_line(1, &decoy) + &crypto_line(2, &offerer_key)),
        spec.mux,
    );
    let answer = sdp(
        spec.answerer,
        ANSWER_PORT,
        &crypto_line(2, &answerer_key),
        spec.mux,
    );
    let call_id = "sdes-call-1@example.com";
    let mut out = Vec::new();
    let mut send = |src: SocketAddr, dst: SocketAddr, payload: Vec<u8>| {
        out.push(Datagram { src, dst, payload })
    };
    let (o, a) = (offerer_sip, answerer_sip);
    send(
        o,
        a,
        sip(
            "INVITE sip:bob@example.com SIP/2.0",
            call_id,
            "1 INVITE",
            o,
            &offer,
        ),
    );
    send(a, o, sip("SIP/2.0 100 Trying", call_id, "1 INVITE", o, ""));
    send(a, o, sip("SIP/2.0 180 Ringing", call_id, "1 INVITE", o, ""));
    send(a, o, sip("SIP/2.0 200 OK", call_id, "1 INVITE", o, &answer));
    send(
        o,
        a,
        sip("ACK sip:bob@example.com SIP/2.0", call_id, "1 ACK", o, ""),
    );
    // A plain call to other ports: not keyed, so not reported.
    let plain_offer = sdp(spec.offerer, 31000, "", false).replace("RTP/SAVP", "RTP/AVP");
    let plain_answer = sdp(spec.answerer, 41000, "", false).replace("RTP/SAVP", "RTP/AVP");
    send(
        o,
        a,
        sip(
            "INVITE sip:carol@example.com SIP/2.0",
            "plain@x",
            "7 INVITE",
            o,
            &plain_offer,
        ),
    );
    send(
        a,
        o,
        sip("SIP/2.0 200 OK", "plain@x", "7 INVITE", o, &plain_answer),
    );

    let offerer = Leg {
        key: offerer_key,
        ssrc: 0x0ffe_0001,
        first_seq: 65530,
        dtmf: true,
    };
    let answerer = Leg {
        key: answerer_key,
        ssrc: 0xa45e_0002,
        first_seq: 1000,
        dtmf: false,
    };
    let rtcp_port = |p: u16| if spec.mux { p } else { p + 1 };
    for (leg, from, to) in [
        (
            &offerer,
            spec.offerer,
            SocketAddr::new(spec.answerer, ANSWER_PORT),
        ),
        (
            &answerer,
            spec.answerer,
            SocketAddr::new(spec.offerer, OFFER_PORT),
        ),
    ] {
        let mut ctx = Context::new(&leg.key).expect("context");
        let src = SocketAddr::new(
            from,
            if to.port() == ANSWER_PORT {
                OFFER_PORT
            } else {
                ANSWER_PORT
            },
        );
        let rtcp_dst = SocketAddr::new(to.ip(), rtcp_port(to.port()));
        let rtcp_src = SocketAddr::new(src.ip(), rtcp_port(src.port()));
        for i in 0..20u16 {
            let mut p = leg.rtp(i);
            ctx.protect_rtp(&mut p).expect("protect");
            send(src, to, p);
            if i % 6 == 5 {
                let mut p = leg.rtcp(usize::from(i));
                ctx.protect_rtcp(&mut p).expect("protect rtcp");
                send(rtcp_src, rtcp_dst, p);
            }
        }
        let mut plain = leg.rtp(0);
        plain[8..12].copy_from_slice(&0x1234u32.to_be_bytes());
        send(src, SocketAddr::new(to.ip(), 41000), plain);
    }
    (out, offerer, answerer)
}

fn timestamp(i: usize) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(10 * i as u64)
}

/// Raw IP records, as `sipwright run --trace FILE.pcap` writes them.
fn raw_ip_pcap(datagrams: &[Datagram]) -> Vec<u8> {
    let mut out = Vec::new();
    pcap::write_global_header(&mut out);
    for (i, d) in datagrams.iter().enumerate() {
        pcap::write_udp_record(&mut out, timestamp(i), d.src, d.dst, &d.payload);
    }
    out
}

/// IPv4 or IPv6 + UDP by hand (checksums left 0: nothing here checks them).
fn ip_udp(d: &Datagram, fragment: bool) -> Vec<u8> {
    let udp_len = 8 + d.payload.len();
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&d.src.port().to_be_bytes());
    udp.extend_from_slice(&d.dst.port().to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&d.payload);
    let mut ip = match (d.src.ip(), d.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 1, if fragment { 0x20 } else { 0x40 }, 0, 64, 17, 0, 0]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&t.octets());
            h
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(udp_len as u16).to_be_bytes());
            h.extend_from_slice(&[17, 64]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&t.octets());
            h
        }
        _ => panic!("one family per datagram"),
    };
    ip.extend_from_slice(&udp);
    ip
}

fn classic_pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, linktype] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        let t = timestamp(i).duration_since(UNIX_EPOCH).expect("time");
        for v in [
            t.as_secs() as u32,
            t.subsec_micros(),
            f.len() as u32,
            f.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

/// Ethernet frames, with noise: ARP, a TCP segment and an IPv4 fragment to a keyed port
/// (all skipped), and the minimum-size padding a short frame gets on the wire.
fn ethernet_pcap(datagrams: &[Datagram]) -> Vec<u8> {
    let eth = |ethertype: u16, body: &[u8]| {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f.resize(f.len().max(60), 0);
        f
    };
    let mut frames = vec![eth(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1])];
    for (i, d) in datagrams.iter().enumerate() {
        let v6 = d.dst.is_ipv6();
        frames.push(eth(if v6 { 0x86dd } else { 0x0800 }, &ip_udp(d, false)));
        if i == 10 && !v6 {
            frames.push(eth(0x0800, &ip_udp(d, true)));
            let mut tcp = ip_udp(d, false);
            tcp[9] = 6;
            frames.push(eth(0x0800, &tcp));
        }
    }
    classic_pcap(1, &frames)
}

/// Linux cooked capture (v1) frames.
fn sll_pcap(datagrams: &[Datagram]) -> Vec<u8> {
    let frames: Vec<Vec<u8>> = datagrams
        .iter()
        .map(|d| {
            let mut f = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            f.extend_from_slice(&(if d.dst.is_ipv6() { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
            f.extend_from_slice(&ip_udp(d, false));
            f
        })
        .collect();
    classic_pcap(113, &frames)
}

fn run_trace_script(tool: &Path, name: &str, capture: &[u8]) -> (i32, Value) {
    let path = common::scratch(name);
    std::fs::write(&path, capture).expect("write capture");
    let o = Command::new(PYTHON)
        .arg(manifest(TRACE_SCRIPT))
        .arg(&path)
        .arg(tool)
        .output()
        .expect("run python");
    let json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: no JSON ({e}):\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), json)
}

fn addr_text(a: SocketAddr) -> String {
    a.to_string()
}

/// Every stream the call has, fully decrypted, and nothing else.
fn check_report(spec: &CallSpec, offerer: &Leg, answerer: &Leg, report: &Value) {
    assert_eq!(report["calls"], 1, "{report:#}");
    let streams = report["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 4, "{report:#}");
    let rtcp = |p: u16| if spec.mux { p } else { p + 1 };
    for (leg, src_ip, src_port, dst_ip, dst_port) in [
        (
            offerer,
            spec.offerer,
            OFFER_PORT,
            spec.answerer,
            ANSWER_PORT,
        ),
        (
            answerer,
            spec.answerer,
            ANSWER_PORT,
            spec.offerer,
            OFFER_PORT,
        ),
    ] {
        for (kind, count, first, types) in [
            (
                "rtp",
                20,
                hex(&leg.rtp(0)[12..]),
                if leg.dtmf { vec![0, 101] } else { vec![0] },
            ),
            ("rtcp", 3, hex(&leg.rtcp(5)[8..]), vec![200, 202]),
        ] {
            let (sp, dp) = if kind == "rtp" {
                (src_port, dst_port)
            } else {
                (rtcp(src_port), rtcp(dst_port))
            };
            let src = addr_text(SocketAddr::new(src_ip, sp));
            let dst = addr_text(SocketAddr::new(dst_ip, dp));
            let s = streams
                .iter()
                .find(|s| s["src"] == src && s["dst"] == dst && s["kind"] == kind)
                .unwrap_or_else(|| panic!("no {kind} stream {src} → {dst}: {report:#}"));
            assert_eq!(s["suite"], spec.suite.sdes_name(), "{s}");
            assert_eq!(
                (&s["packets"], &s["decrypted"], &s["failed"]),
                (&count.into(), &count.into(), &0.into()),
                "{s}"
            );
            assert_eq!(s["first_plain_payload_hex"], first.as_str(), "{s}");
            assert_eq!(s["payload_types"], serde_json::json!(types), "{s}");
        }
    }
}

#[test]
fn trace_script_decrypts_a_raw_ip_trace() {
    let (Some(tool), true) = (tool(), have_python()) else {
        return;
    };
    let spec = CallSpec {
        suite: Suite::Aes256CmHmacSha1_80,
        offerer_mki: Some(vec![0, 0, 0, 7]),
        answerer_mki: None,
        mux: false,
        offerer: "192.0.2.10".parse().unwrap(),
        answerer: "198.51.100.20".parse().unwrap(),
    };
    let (datagrams, offerer, answerer) = build_call(&spec);
    let (code, report) = run_trace_script(tool, "raw.pcap", &raw_ip_pcap(&datagrams));
    check_report(&spec, &offerer, &answerer, &report);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn trace_script_decrypts_an_ethernet_trace_with_rtcp_mux() {
    let (Some(tool), true) = (tool(), have_python()) else {
        return;
    };
    let spec = CallSpec {
        suite: Suite::AeadAes128Gcm,
        offerer_mki: None,
        answerer_mki: Some(vec![1, 2]),
        mux: true,
        offerer: "10.0.0.1".parse().unwrap(),
        answerer: "10.0.0.2".parse().unwrap(),
    };
    let (datagrams, offerer, answerer) = build_call(&spec);
    let (code, report) = run_trace_script(tool, "eth.pcap", &ethernet_pcap(&datagrams));
    check_report(&spec, &offerer, &answerer, &report);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn trace_script_decrypts_an_ipv6_cooked_trace() {
    let (Some(tool), true) = (tool(), have_python()) else {
        return;
    };
    let spec = CallSpec {
        suite: Suite::AesCm128HmacSha1_32,
        offerer_mki: None,
        answerer_mki: None,
        mux: false,
        offerer: "2001:db8::a".parse().unwrap(),
        answerer: "2001:db8::b".parse().unwrap(),
    };
    let (datagrams, offerer, answerer) = build_call(&spec);
    let (code, report) = run_trace_script(tool, "v6.pcap", &sll_pcap(&datagrams));
    check_report(&spec, &offerer, &answerer, &report);
    assert_eq!(code, 0, "{report:#}");
}

/// One forged packet: reported under its stream, exit status 1.
#[test]
fn trace_script_reports_a_packet_that_does_not_decrypt() {
    let (Some(tool), true) = (tool(), have_python()) else {
        return;
    };
    let spec = CallSpec {
        suite: Suite::AesCm128HmacSha1_80,
        offerer_mki: None,
        answerer_mki: None,
        mux: false,
        offerer: "192.0.2.10".parse().unwrap(),
        answerer: "192.0.2.20".parse().unwrap(),
    };
    let (mut datagrams, ..) = build_call(&spec);
    let dst = SocketAddr::new(spec.answerer, ANSWER_PORT);
    let victim = datagrams
        .iter_mut()
        .filter(|d| d.dst == dst)
        .nth(3)
        .expect("RTP to the answerer");
    let last = victim.payload.len() - 1;
    victim.payload[last] ^= 1;
    let (code, report) = run_trace_script(tool, "forged.pcap", &raw_ip_pcap(&datagrams));
    assert_eq!(code, 1, "{report:#}");
    let s = report["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["dst"] == addr_text(dst) && s["kind"] == "rtp")
        .expect("stream");
    assert_eq!(
        (&s["decrypted"], &s["failed"]),
        (&19.into(), &1.into()),
        "{s}"
    );
    assert_eq!(s["errors"]["7"], 1, "{s}");
}

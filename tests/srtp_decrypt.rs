//! `sipwright srtp decrypt` end to end, on captures that
//! tests/fixtures/srtp/make_captures.py builds (SIP with SDES keys, media protected by libsrtp
//! or by the script's RFC 3711 code that it checks against libsrtp). For each case the
//! script writes CASE.expected.json (streams, counts, exit code) and CASE.plain/N.hex (the
//! plain packets of stream N); the tests compare the JSON report with the former and, through
//! tshark, the rewritten capture with the latter.
//!
//! Needs Debian's /usr/bin/python3 with python3-pylibsrtp and python3-cryptography, and
//! tshark: without them the tests are skipped with a printed reason, except under CI=true
//! where that is a failure. The captures are generated once per run into the scratch dir.
//! To look at them: `/usr/bin/python3 tests/fixtures/srtp/make_captures.py DIR --reference`
//! (adds what `-o` should produce); `check_captures.py DIR` re-verifies them with tshark and
//! libsrtp.

mod common;
use common::*;

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Debian's interpreter: the one that has pylibsrtp (a python3 earlier on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (required under CI=true: .ci/run installs it)");
    }
    eprintln!("SKIPPED: {why}");
}

/// The directory holding the generated captures, or None (after saying why) when the
/// generator cannot run here. Generated once; every test shares it.
fn captures() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(generate).as_deref()
}

fn generate() -> Option<PathBuf> {
    let usable = Command::new(PYTHON)
        .args(["-c", "import pylibsrtp, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        skip_or_fail(&format!(
            "{PYTHON} with pylibsrtp and cryptography is not installed \
             (apt-get install python3-pylibsrtp python3-cryptography)"
        ));
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/srtp/make_captures.py");
    let dir = scratch("srtp-captures");
    let o = Command::new(PYTHON)
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("run make_captures.py");
    assert!(o.status.success(), "make_captures.py failed:\n{}", text(&o));
    Some(dir)
}

/// Everything a test needs, or None when it is skipped.
fn setup() -> Option<&'static Path> {
    let dir = captures()?;
    require("tshark")?;
    Some(dir)
}

fn expected(dir: &Path, case: &str) -> Value {
    let path = dir.join(format!("{case}.expected.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("expected.json written"))
        .expect("expected.json is JSON")
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// `sipwright srtp decrypt CAPTURE [extra] --json [case args]`; returns the process output
/// and the parsed report (after checking that stdout is one JSON object).
fn decrypt(dir: &Path, exp: &Value, extra: &[&str]) -> (Output, Value) {
    let input = dir.join(exp["file"].as_str().unwrap());
    let mut args = vec![
        "srtp".to_string(),
        "decrypt".to_string(),
        input.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--json".to_string());
    args.extend(strs(&exp["args"]));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = sipwright(&argv);
    let report: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", text(&o)));
    (o, report)
}

/// Output path in the scratch dir with the input's extension.
fn out_path(exp: &Value, tag: &str) -> PathBuf {
    let file = exp["file"].as_str().unwrap();
    let (case, ext) = file.rsplit_once('.').unwrap();
    scratch(&format!("{case}.{tag}.{ext}"))
}

type StreamId = (SocketAddr, SocketAddr, String, u64);

fn stream_id(s: &Value) -> StreamId {
    let addr = |k: &str| -> SocketAddr {
        s[k].as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("`{k}` is not a socket address in {s}"))
    };
    (
        addr("src"),
        addr("dst"),
        s["kind"].as_str().expect("kind").to_string(),
        s["ssrc"].as_u64().expect("ssrc"),
    )
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The plain packets of an expected stream, from CASE.plain/N.hex.
fn plain(dir: &Path, s: &Value) -> Vec<Vec<u8>> {
    let path = dir.join(s["plain"].as_str().unwrap());
    std::fs::read_to_string(path)
        .expect("plain packets written")
        .lines()
        .map(unhex)
        .collect()
}

fn tshark(args: &[&str]) -> String {
    let o = Command::new("tshark")
        .args(args)
        .output()
        .expect("run tshark");
    assert!(o.status.success(), "tshark {args:?}:\n{}", text(&o));
    String::from_utf8(o.stdout).expect("tshark prints UTF-8")
}

/// The UDP payloads of a capture as tshark reads them, grouped like the report's streams:
/// RTCP by RFC 5761 (second byte 192..=223, sender SSRC at 4..8), else RTP (SSRC at 8..12).
fn udp_streams(capture: &Path) -> BTreeMap<StreamId, Vec<Vec<u8>>> {
    let capture = capture.display().to_string();
    let rows = tshark(&[
        "-r",
        &capture,
        "-Y",
        "udp",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "udp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "ipv6.dst",
        "-e",
        "udp.dstport",
        "-e",
        "udp.payload",
    ]);
    let mut out: BTreeMap<StreamId, Vec<Vec<u8>>> = BTreeMap::new();
    for row in rows.lines() {
        let f: Vec<&str> = row.split('\t').collect();
        assert_eq!(f.len(), 7, "tshark row {row:?}");
        let sock = |v4: &str, v6: &str, port: &str| -> SocketAddr {
            let ip = if v4.is_empty() { v6 } else { v4 };
            SocketAddr::new(ip.parse().expect("ip"), port.parse().expect("port"))
        };
        let payload = unhex(f[6]);
        if payload.len() < 12 || payload[0] >> 6 != 2 {
            continue; // not RTP/RTCP (SIP, DNS)
        }
        let (kind, ssrc) = if (192..=223).contains(&payload[1]) {
            ("rtcp", &payload[4..8])
        } else {
            ("rtp", &payload[8..12])
        };
        let ssrc = u32::from_be_bytes(ssrc.try_into().unwrap());
        let id = (
            sock(f[0], f[1], f[2]),
            sock(f[3], f[4], f[5]),
            kind.to_string(),
            u64::from(ssrc),
        );
        out.entry(id).or_default().push(payload);
    }
    out
}

/// The report agrees with the expectations: exit code, truncation, counts, and per stream
/// (matched by src, dst, kind, ssrc) the suite, counts, first ROC and DTMF digits.
fn check_report(case: &str, o: &Output, report: &Value, exp: &Value) {
    let want = exp["exit_code"].as_i64().unwrap();
    let ctx = || format!("{case}: {}", text(o));
    assert_eq!(o.status.code().map(i64::from), Some(want), "{}", ctx());
    assert_eq!(report["exit_code"].as_i64(), Some(want), "{}", ctx());
    assert_eq!(
        report["truncated"],
        exp["truncated"],
        "truncated: {}",
        ctx()
    );
    assert_eq!(report["frames"], exp["frames"], "frames: {}", ctx());
    assert_eq!(
        report["sip_messages"],
        exp["sip_messages"],
        "sip_messages: {}",
        ctx()
    );

    let got = report["streams"].as_array().expect("streams array");
    let mut seen = HashSet::new();
    for s in exp["streams"].as_array().unwrap() {
        let id = stream_id(s);
        let r = got
            .iter()
            .find(|r| stream_id(r) == id)
            .unwrap_or_else(|| panic!("{case}: no stream {id:?} in the report:\n{report:#}"));
        seen.insert(id.clone());
        for field in [
            "suite",
            "packets",
            "decrypted",
            "auth_failures",
            "plain_rtcp",
        ] {
            assert_eq!(r[field], s[field], "{case}: {field} of {id:?}:\n{r:#}");
        }
        if !s["roc_start"].is_null() {
            assert_eq!(
                r["roc_start"], s["roc_start"],
                "{case}: roc_start of {id:?}:\n{r:#}"
            );
        }
        let dtmf = s["dtmf"].as_str().unwrap();
        if !dtmf.is_empty() {
            assert_eq!(
                r["dtmf"].as_str(),
                Some(dtmf),
                "{case}: dtmf of {id:?}:\n{r:#}"
            );
        } else {
            let listed = r["dtmf"].as_str().unwrap_or("");
            assert!(
                listed.is_empty(),
                "{case}: no DTMF in {id:?}, got {listed:?}"
            );
        }
    }
    // Flows the report lists without having decrypted or failed anything are harmless;
    // any other stream is one the capture does not have.
    for r in got {
        let touched =
            r["decrypted"].as_u64().unwrap_or(0) + r["auth_failures"].as_u64().unwrap_or(0);
        assert!(
            touched == 0 || seen.contains(&stream_id(r)),
            "{case}: unexpected stream in the report:\n{r:#}"
        );
    }
}

/// The rewritten capture holds, per stream, exactly the plain packets in capture order (and
/// nothing of the streams whose packets failed authentication).
fn check_output(case: &str, dir: &Path, exp: &Value, out: &Path) {
    let mut got = udp_streams(out);
    for s in exp["streams"].as_array().unwrap() {
        let id = stream_id(s);
        let want = plain(dir, s);
        let have = got.remove(&id).unwrap_or_default();
        assert_eq!(
            have.len(),
            want.len(),
            "{case}: packets of {id:?} in {}",
            out.display()
        );
        if let Some(i) = (0..want.len()).find(|&i| have[i] != want[i]) {
            panic!(
                "{case}: packet {i} of {id:?} differs\n got {:02x?}\nwant {:02x?}",
                have[i], want[i]
            );
        }
    }
    // What is left must not be media of ours: only flows the expectations do not know.
    for (id, packets) in got {
        assert!(
            !exp["streams"].as_array().unwrap().iter().any(|s| {
                let e = stream_id(s);
                e.0 == id.0 && e.1 == id.1
            }),
            "{case}: {} packets of {id:?} in the output match no expected stream",
            packets.len()
        );
    }
}

/// Decrypt CASE to a capture of the same format and check report and output.
fn run_case(case: &str) {
    let Some(dir) = setup() else { return };
    let exp = expected(dir, case);
    let out = out_path(&exp, "out");
    let _ = std::fs::remove_file(&out);
    let (o, report) = decrypt(dir, &exp, &["-o", &out.display().to_string()]);
    check_report(case, &o, &report, &exp);
    check_output(case, dir, &exp, &out);
}

#[test]
fn decrypt_aes_cm_128_hmac_sha1_80() {
    run_case("aes_cm_128_hmac_sha1_80");
}

#[test]
fn decrypt_aes_cm_128_hmac_sha1_32() {
    run_case("aes_cm_128_hmac_sha1_32");
}

#[test]
fn decrypt_aes_256_cm_hmac_sha1_80() {
    run_case("aes_256_cm_hmac_sha1_80");
}

#[test]
fn decrypt_aes_256_cm_hmac_sha1_32() {
    run_case("aes_256_cm_hmac_sha1_32");
}

#[test]
fn decrypt_aead_aes_128_gcm() {
    run_case("aead_aes_128_gcm");
}

#[test]
fn decrypt_aead_aes_256_gcm() {
    run_case("aead_aes_256_gcm");
}

#[test]
fn decrypt_roc1() {
    run_case("roc1");
}

#[test]
fn decrypt_pcapng_ns() {
    run_case("pcapng-ns");
}

#[test]
fn decrypt_vlan() {
    run_case("vlan");
}

#[test]
fn decrypt_sll() {
    run_case("sll");
}

#[test]
fn decrypt_sll2() {
    run_case("sll2");
}

#[test]
fn decrypt_ipv6() {
    run_case("ipv6");
}

#[test]
fn decrypt_sip_tcp() {
    run_case("sip-tcp");
}

#[test]
fn decrypt_fragmented_invite() {
    run_case("fragmented-invite");
}

#[test]
fn decrypt_reinvite_rekey() {
    run_case("reinvite-rekey");
}

#[test]
fn decrypt_wrong_key() {
    run_case("wrong-key");
}

#[test]
fn decrypt_mki() {
    run_case("mki");
}

#[test]
fn decrypt_early_media() {
    run_case("early-media");
}

#[test]
fn decrypt_cli_key() {
    run_case("cli-key");
}

#[test]
fn decrypt_truncated() {
    run_case("truncated");
}

/// baresip 1.0 sends one plain 16-byte RTCP APP per stream before its SRTP is keyed: each
/// RTCP stream counts it as `plain_rtcp` (not a failure), the output has it byte for byte
/// among the decrypted RTCP, and the exit code is 0; the table notes it.
#[test]
fn decrypt_baresip_plain_rtcp() {
    run_case("baresip-plain-rtcp");
    let Some(dir) = setup() else { return };
    let exp = expected(dir, "baresip-plain-rtcp");
    let out = out_path(&exp, "out");
    let (o, report) = decrypt(dir, &exp, &["-o", &out.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let output = udp_streams(&out);
    let mut rtcp_streams = 0;
    for r in report["streams"].as_array().unwrap() {
        assert_eq!(r["auth_failures"], 0, "{r}");
        if r["kind"] != "rtcp" {
            assert_eq!(r["plain_rtcp"], 0, "{r}");
            continue;
        }
        rtcp_streams += 1;
        assert_eq!(r["plain_rtcp"], 1, "{r}");
        assert!(r["decrypted"].as_u64().unwrap() > 0, "{r}");
        // APP "PING" with data "PONG" from this SSRC, as it was sent.
        let mut app = vec![0x80, 204, 0, 3];
        app.extend_from_slice(&(r["ssrc"].as_u64().unwrap() as u32).to_be_bytes());
        app.extend_from_slice(b"PINGPONG");
        let id = stream_id(r);
        assert_eq!(output[&id].first(), Some(&app), "{id:?}");
    }
    assert_eq!(rtcp_streams, 2, "{report}");

    let input = dir.join(exp["file"].as_str().unwrap());
    let o = sipwright(&["srtp", "decrypt", &input.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(table.matches("plain rtcp 1").count(), 2, "{table}");
}

/// A case the generator makes without a test here would silently go untested.
#[test]
fn decrypt_every_generated_case_has_a_test() {
    let Some(dir) = captures() else { return };
    let this = include_str!("srtp_decrypt.rs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(case) = name.strip_suffix(".expected.json") {
            let test = format!("fn decrypt_{}()", case.replace('-', "_"));
            assert!(
                this.contains(&test),
                "no `{test}` for the generated case {case}"
            );
        }
    }
}

/// tshark itself reads the output as RTP/RTCP: with the port decoded as RTP, every plain
/// packet of a stream is there with its header fields and 160-byte PCMU payload; on the RTCP
/// port every compound packet shows all its packet types (SDES is inside the encrypted part)
/// and no length complaint. SIP is turned off so that the SDP's RTP/SAVP does not make
/// tshark take the last bytes for an SRTP tag.
#[test]
fn decrypt_output_decodes_as_rtp() {
    let Some(dir) = setup() else { return };
    let case = "aes_cm_128_hmac_sha1_80";
    let exp = expected(dir, case);
    let out = out_path(&exp, "rtp");
    let (o, report) = decrypt(dir, &exp, &["-o", &out.display().to_string()]);
    check_report(case, &o, &report, &exp);
    let out = out.display().to_string();
    let streams = exp["streams"].as_array().unwrap();
    // B→A carries no DTMF: every packet is PCMU with its payload as a plain field.
    let rtp = streams
        .iter()
        .find(|s| s["kind"] == "rtp" && s["dtmf"] == "")
        .unwrap();
    let port = stream_id(rtp).1.port();
    let rows = tshark(&[
        "-r",
        &out,
        "--disable-protocol",
        "sip",
        "-d",
        &format!("udp.port=={port},rtp"),
        "-Y",
        &format!("rtp && udp.dstport=={port} && !_ws.malformed"),
        "-T",
        "fields",
        "-e",
        "rtp.ssrc",
        "-e",
        "rtp.seq",
        "-e",
        "rtp.p_type",
        "-e",
        "rtp.payload",
    ]);
    let want = plain(dir, rtp);
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows.len(),
        want.len(),
        "RTP packets tshark sees on port {port}"
    );
    for (row, p) in rows.iter().zip(&want) {
        let ssrc = u32::from_str_radix(row[0].trim_start_matches("0x"), 16).unwrap();
        assert_eq!(u64::from(ssrc), rtp["ssrc"].as_u64().unwrap());
        assert_eq!(
            row[1].parse::<u16>().unwrap(),
            u16::from_be_bytes([p[2], p[3]])
        );
        assert_eq!(row[2], "0");
        assert_eq!(unhex(row[3]), p[12..], "payload of seq {}", row[1]);
    }

    let rtcp = streams
        .iter()
        .find(|s| s["kind"] == "rtcp" && stream_id(s).1.port() == port + 1)
        .expect("RTCP on port + 1 in this case");
    let rtcp_port = port + 1;
    let rows = tshark(&[
        "-r",
        &out,
        "--disable-protocol",
        "sip",
        "-d",
        &format!("udp.port=={rtcp_port},rtcp"),
        "-Y",
        &format!("rtcp && udp.dstport=={rtcp_port}"),
        "-T",
        "fields",
        "-e",
        "rtcp.pt",
        "-e",
        "rtcp.length_check.bad",
        "-e",
        "_ws.malformed",
    ]);
    let want = plain(dir, rtcp);
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(
        rows.len(),
        want.len(),
        "RTCP packets tshark sees on port {rtcp_port}"
    );
    for (row, p) in rows.iter().zip(&want) {
        let f: Vec<&str> = row.split('\t').collect();
        assert_eq!(f[0], rtcp_types(p), "RTCP packet types");
        assert!(
            f[1].is_empty() && f[2].is_empty(),
            "tshark complains: {row}"
        );
    }
}

/// The packet types of a compound RTCP packet, as tshark lists them ("200,202").
fn rtcp_types(mut p: &[u8]) -> String {
    let mut types = Vec::new();
    while p.len() >= 4 {
        types.push(p[1].to_string());
        let len = 4 * (usize::from(u16::from_be_bytes([p[2], p[3]])) + 1);
        p = &p[len.min(p.len())..];
    }
    types.join(",")
}

/// G.711 µ-law to 16-bit linear (the ITU table every decoder shares).
fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let t = ((i32::from(u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// --wav-dir: one WAV per PCMU stream, 8 kHz mono 16-bit PCM, 160 samples per packet, the
/// samples being the decoded payloads; named after SSRC and addresses; none for RTCP.
#[test]
fn decrypt_wav_dir() {
    let Some(dir) = setup() else { return };
    let case = "aes_cm_128_hmac_sha1_32"; // no DTMF: every packet is 20 ms of PCMU
    let exp = expected(dir, case);
    let wav_dir = scratch("srtp-wav");
    let _ = std::fs::remove_dir_all(&wav_dir);
    std::fs::create_dir_all(&wav_dir).unwrap();
    let (o, report) = decrypt(dir, &exp, &["--wav-dir", &wav_dir.display().to_string()]);
    check_report(case, &o, &report, &exp);
    let mut rtp_streams = 0;
    for s in exp["streams"].as_array().unwrap() {
        let id = stream_id(s);
        let r = report["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| stream_id(r) == id)
            .unwrap();
        if id.2 == "rtcp" {
            assert!(r["wav"].is_null(), "RTCP stream with a WAV: {r}");
            continue;
        }
        rtp_streams += 1;
        let wav = PathBuf::from(r["wav"].as_str().unwrap_or_else(|| panic!("no wav in {r}")));
        assert_eq!(wav.parent(), Some(wav_dir.as_path()), "{}", wav.display());
        let name = wav.file_name().unwrap().to_string_lossy().into_owned();
        let (src, dst) = (id.0, id.1);
        let tail = format!(
            "-{}_{}-to-{}_{}.wav",
            src.ip(),
            src.port(),
            dst.ip(),
            dst.port()
        );
        let hex = name
            .strip_suffix(&tail)
            .unwrap_or_else(|| panic!("{name} does not end in {tail}"));
        assert_eq!(u64::from_str_radix(hex, 16).ok(), Some(id.3), "{name}");

        let (format, samples) = read_wav(&wav);
        assert_eq!(format, (1, 1, 8000, 16), "PCM, mono, 8 kHz, 16 bit");
        let packets = plain(dir, s);
        assert_eq!(samples.len(), 160 * packets.len(), "samples in {name}");
        let want: Vec<i16> = packets
            .iter()
            .flat_map(|p| p[12..].iter().map(|&u| ulaw_to_linear(u)))
            .collect();
        assert!(
            samples == want,
            "{name}: samples are not the decoded payloads"
        );
    }
    let wavs = std::fs::read_dir(&wav_dir).unwrap().count();
    assert_eq!(
        wavs,
        rtp_streams,
        "one WAV per RTP stream in {}",
        wav_dir.display()
    );
}

/// (format tag, channels, sample rate, bits per sample) and the samples of a WAV file.
fn read_wav(path: &Path) -> ((u16, u16, u32, u16), Vec<i16>) {
    let data = std::fs::read(path).unwrap();
    assert!(data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WAVE");
    let (mut format, mut samples) = (None, None);
    let mut p = &data[12..];
    while p.len() >= 8 {
        let len = u32::from_le_bytes(p[4..8].try_into().unwrap()) as usize;
        let body = &p[8..(8 + len).min(p.len())];
        match &p[..4] {
            b"fmt " => {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                format = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
            }
            b"data" => {
                samples = Some(
                    body.chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect(),
                );
            }
            _ => {}
        }
        p = &p[(8 + len + len % 2).min(p.len())..];
    }
    (format.expect("fmt chunk"), samples.expect("data chunk"))
}

/// --keep-failed: the packets that fail authentication stay in the output as they were
/// (still protected), the report counts them as before, the exit code is still 1.
#[test]
fn decrypt_keep_failed() {
    let Some(dir) = setup() else { return };
    let case = "wrong-key";
    let exp = expected(dir, case);
    let out = out_path(&exp, "keep");
    let (o, report) = decrypt(
        dir,
        &exp,
        &["-o", &out.display().to_string(), "--keep-failed"],
    );
    check_report(case, &o, &report, &exp);
    let input = udp_streams(&dir.join(exp["file"].as_str().unwrap()));
    let mut output = udp_streams(&out);
    let mut failed = 0;
    for s in exp["streams"].as_array().unwrap() {
        let id = stream_id(s);
        let have = output.remove(&id).unwrap_or_default();
        if s["auth_failures"].as_u64().unwrap() > 0 {
            failed += 1;
            assert_eq!(
                have.len() as u64,
                s["auth_failures"].as_u64().unwrap(),
                "{id:?}"
            );
            assert!(
                have == input[&id],
                "{id:?}: kept packets differ from the input's"
            );
        } else {
            assert!(have == plain(dir, s), "{id:?}: decrypted packets differ");
        }
    }
    assert!(failed > 0, "the case has failing streams");
}

/// `--roc-trials 0`: a stream first seen at ROC 1 can no longer be found (only the
/// estimated ROC, 0, is tried), so its packets fail authentication and the exit is 1.
#[test]
fn decrypt_roc_trials_limits_the_search() {
    let Some(dir) = setup() else { return };
    let exp = expected(dir, "roc1");
    let (o, report) = decrypt(dir, &exp, &["--roc-trials", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let streams = report["streams"].as_array().unwrap();
    let at_roc1: Vec<&Value> = exp["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["roc_start"] == 1)
        .collect();
    assert!(!at_roc1.is_empty(), "roc1 has a stream starting at ROC 1");
    for s in at_roc1 {
        let r = streams
            .iter()
            .find(|r| r["ssrc"] == s["ssrc"] && r["kind"] == s["kind"])
            .unwrap_or_else(|| panic!("stream {s} not reported: {report}"));
        assert_eq!(r["decrypted"], 0, "{r}");
        assert_eq!(r["auth_failures"], s["packets"], "{r}");
    }
}

/// Without --json: a table with one line per stream.
#[test]
fn decrypt_prints_a_table() {
    let Some(dir) = setup() else { return };
    let input = dir.join("aes_cm_128_hmac_sha1_80.pcap");
    let o = sipwright(&["srtp", "decrypt", &input.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(" frames, ") && out.contains(" SIP messages, "),
        "{out}"
    );
    assert!(out.contains("source") && out.contains("decrypted"), "{out}");
    let lines = out
        .lines()
        .filter(|l| l.contains("AES_CM_128_HMAC_SHA1_80"))
        .count();
    assert_eq!(lines, 4, "RTP and RTCP both ways:\n{out}");
    assert!(out.contains("dtmf 12#"), "{out}");
}

/// Unusable input and bad keys: exit 2 and a message that says what is wrong.
#[test]
fn decrypt_rejects_unusable_input() {
    let not_capture = scratch("not-a-capture.pcap");
    std::fs::write(&not_capture, b"INVITE sip:x SIP/2.0\r\n\r\n").unwrap();
    let path = not_capture.display().to_string();
    let o = sipwright(&["srtp", "decrypt", &path]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a pcap or pcapng file"),
        "{}",
        text(&o)
    );
    let missing = scratch("missing.pcap").display().to_string();
    let o = sipwright(&["srtp", "decrypt", &missing]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for (key, says) in [
        ("FOO_SUITE inline:AAAA", "unknown suite"),
        ("AES_CM_128_HMAC_SHA1_80 inline:AAAA", "no usable key"),
        ("AES_CM_128_HMAC_SHA1_80", "--key"),
    ] {
        let o = sipwright(&["srtp", "decrypt", &path, "--key", key]);
        assert_eq!(o.status.code(), Some(2), "{key}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{key}: {err}");
    }
    let o = sipwright(&["srtp", "decrypt", &path, "--stream", "127.0.0.1:4000"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a --key"));
}

/// The output's SIP describes plain RTP (RTP/AVP, no a=crypto), so tshark, which sets up
/// RTP conversations from the SDP, decodes the media as RTP with whole payloads and
/// without being told which ports carry RTP.
#[test]
fn decrypt_output_sdp_says_plain_rtp() {
    let Some(dir) = setup() else { return };
    let exp = expected(dir, "aes_cm_128_hmac_sha1_80");
    let out = out_path(&exp, "plain-sdp");
    let (o, _) = decrypt(dir, &exp, &["-o", &out.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let fields = |filter: &str, field: &str| -> Vec<String> {
        let o = Command::new("tshark")
            .args([
                "-r",
                &out.display().to_string(),
                "-Y",
                filter,
                "-T",
                "fields",
            ])
            .args(["-e", field])
            .output()
            .expect("run tshark");
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let media = fields("sdp", "sdp.media");
    assert!(
        !media.is_empty() && media.iter().all(|m| m.contains("RTP/AVP ")),
        "{media:?}"
    );
    let attrs = fields("sdp", "sdp.media_attr").join(",");
    assert!(!attrs.contains("crypto"), "{attrs}");
    let rtp_packets: u64 = exp["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "rtp")
        .map(|s| s["packets"].as_u64().unwrap())
        .sum();
    let payloads = fields("rtp && rtp.p_type == 0", "rtp.payload");
    let dtmf = fields("rtp && rtp.p_type == 101", "rtp.payload");
    assert_eq!(payloads.len() + dtmf.len(), rtp_packets as usize);
    assert!(
        payloads.iter().all(|p| p.len() == 320),
        "every PCMU payload whole (160 bytes)"
    );
    // With the SDP still saying RTP/SAVP, tshark would cut a 10-byte tag off each one.
}

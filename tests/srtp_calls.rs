//! SDES-SRTP calls end to end through the CLI on 127.0.0.1: the loopback
//! uac-srtp/uas-srtp pair, every suite (with and without MKI) traced and the trace
//! decrypted both by `sipwright srtp decrypt` (plain payloads compared with what was
//! played) and by libsrtp, and what a bad offer or answer must give: a 488 with the
//! reason, or a call failed with reason `media`, never a panic.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use sipwright::media::g711::Law;
use sipwright::media::source::AudioClip;
use sipwright::srtp::Suite;

/// A port range of `len` ports no other test of this file uses.
fn ports(base: u16, len: u16) -> String {
    format!("{base}-{}", base + len - 1)
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = scratch(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// scenarios/uac-srtp.yaml with its `srtp:` line (and whatever else) replaced.
fn uac_srtp_with(name: &str, srtp_lines: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo("scenarios/uac-srtp.yaml"))
        .unwrap()
        .replace(
            "  srtp: [AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM]\n",
            srtp_lines,
        );
    assert!(text.contains(srtp_lines), "srtp line not found");
    write(name, &text)
}

#[test]
fn loopback_srtp_calls_stream_encrypted_and_exchange_digits() {
    let r = scratch("srtp-loopback.json");
    let o = sipwright(&[
        "run",
        "uac-srtp",
        "--loopback",
        "--calls",
        "20",
        "--rate",
        "5",
        "--call-duration",
        "5s",
        "--rtp-ports",
        &ports(31_000, 200),
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = report(&r);
    let peer = &j["peer"];
    assert_eq!(j["calls"]["succeeded"], 20, "{j}");
    assert_eq!(peer["calls"]["succeeded"], 20, "{j}");
    for side in [&j, peer] {
        let rtp = &side["rtp"];
        assert_eq!(rtp["streams"], 20, "{side}");
        assert_eq!(rtp["srtp_streams"], 20, "{side}");
        assert_eq!(rtp["lost"], 0, "{side}");
        assert_eq!(rtp["srtp_auth_failures"], 0, "{side}");
        assert_eq!(rtp["srtp_replay_failures"], 0, "{side}");
        assert_eq!(rtp["plain_rtcp"], 0, "{side}");
        assert!(
            rtp["packets_received"].as_u64().unwrap() > 20 * 200,
            "{side}"
        );
    }
    assert_eq!(j["dtmf"]["digits_sent"], 80);
    assert_eq!(peer["dtmf"]["digits_received"], 80);
    assert_eq!(peer["dtmf"]["mismatches"], 0);
    // The summary says so too, and no key material is printed.
    let out = text(&o);
    assert!(out.contains("srtp: 20 streams, 0 auth failures"), "{out}");
    assert!(!out.contains("inline:"), "{out}");
}

/// Samples of the clip as it goes out in G.711 µ-law, decoded again.
fn played_samples() -> Vec<i16> {
    let clip = AudioClip::from_wav_file(&repo("media/sample.wav")).unwrap();
    let mut expected = Vec::new();
    Law::Ulaw.decode(clip.encoded(Law::Ulaw), &mut expected);
    expected
}

/// One call with `--trace`, then the trace decrypted by `srtp decrypt`: both
/// directions open without a failure, and the plain audio is what was played (the
/// UAS echoes it, so both directions carry the clip).
fn traced_call_decrypts(tag: &str, srtp_lines: &str, port_base: u16) -> PathBuf {
    let scenario = uac_srtp_with(&format!("srtp-{tag}.yaml"), srtp_lines);
    let trace = scratch(&format!("srtp-{tag}.pcap"));
    let r = scratch(&format!("srtp-{tag}.json"));
    let o = sipwright(&[
        "run",
        scenario.to_str().unwrap(),
        "--loopback",
        "--calls",
        "1",
        "--call-duration",
        "2s",
        "--rtp-ports",
        &ports(port_base, 20),
        "--trace",
        trace.to_str().unwrap(),
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{tag}: {}", text(&o));
    let j = report(&r);
    assert_eq!(j["rtp"]["srtp_streams"], 1, "{tag}: {j}");

    let wavs = scratch(&format!("srtp-{tag}-wav"));
    let _ = std::fs::remove_dir_all(&wavs);
    std::fs::create_dir_all(&wavs).unwrap();
    let o = sipwright(&[
        "srtp",
        "decrypt",
        trace.to_str().unwrap(),
        "--wav-dir",
        wavs.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{tag}: {}", text(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let streams = d["streams"].as_array().unwrap();
    let rtp: Vec<&serde_json::Value> = streams.iter().filter(|s| s["kind"] == "rtp").collect();
    assert_eq!(rtp.len(), 2, "{tag}: {d}");
    let expected = played_samples();
    // The digits go one way: the UAS echoes audio, not events.
    let digits: Vec<&str> = rtp.iter().filter_map(|s| s["dtmf"].as_str()).collect();
    assert!(
        digits.contains(&"1234") && digits.contains(&""),
        "{tag}: {d}"
    );
    for s in &rtp {
        assert_eq!(s["auth_failures"], 0, "{tag}: {s}");
        assert!(s["decrypted"].as_u64().unwrap() > 50, "{tag}: {s}");
        let wav = s["wav"].as_str().expect("a WAV per G.711 stream");
        let got: Vec<i16> = hound::WavReader::open(wav)
            .unwrap()
            .samples::<i16>()
            .map(|x| x.unwrap())
            .collect();
        // The digits interrupt the audio (events, not samples), so the clip runs on
        // where it left off: the plain audio is the clip, from its start.
        let n = got.len().min(expected.len());
        assert!(n > 8000, "{tag}: {n} samples");
        assert_eq!(&got[..n], &expected[..n], "{tag}: audio differs");
    }
    trace
}

#[test]
fn every_suite_traced_and_decrypted_by_sipwright_and_libsrtp() {
    let libsrtp = libsrtp_checker();
    let mut base = 31_300;
    for suite in Suite::ALL {
        for mki in [0u8, 4] {
            let name = suite.sdes_name();
            let tag = format!("{name}-mki{mki}");
            let mut lines = format!("  srtp: [{name}]\n");
            if mki > 0 {
                lines.push_str(&format!("  srtp_mki: {mki}\n"));
            }
            let trace = traced_call_decrypts(&tag, &lines, base);
            base += 20;
            // libsrtp 2.5 fails SRTCP that carries an MKI with the _32 suites (fixed
            // in 2.7.0): RTP only is checked there.
            if let Some(check) = &libsrtp {
                check.decrypts(&trace, &tag);
            }
        }
    }
}

/// libsrtp (independent of our code) decrypting a trace with the keys of its SDP:
/// tests/fixtures/srtp/libsrtp_decrypt_trace.py driving the C helper built against
/// Debian's libsrtp2.
struct Libsrtp {
    tool: PathBuf,
}

fn libsrtp_checker() -> Option<Libsrtp> {
    require("cc")?;
    let header = Path::new("/usr/include/srtp2/srtp.h");
    if !header.exists() {
        let why = "libsrtp2-dev is not installed (apt-get install libsrtp2-dev)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping the libsrtp half: {why}");
        return None;
    }
    let tool = scratch("libsrtp_tool_calls");
    let o = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&tool)
        .arg(repo("tests/fixtures/srtp/libsrtp_tool.c"))
        .arg("-lsrtp2")
        .output()
        .expect("run cc");
    assert!(o.status.success(), "cc: {}", text(&o));
    Some(Libsrtp { tool })
}

impl Libsrtp {
    fn decrypts(&self, trace: &Path, tag: &str) {
        let o = Command::new("/usr/bin/python3")
            .arg(repo("tests/fixtures/srtp/libsrtp_decrypt_trace.py"))
            .arg(trace)
            .arg(&self.tool)
            .output()
            .expect("run the libsrtp checker");
        let report: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{tag}: {e}: {}", text(&o)));
        let streams = report["streams"].as_array().unwrap();
        let rtp: Vec<&serde_json::Value> = streams.iter().filter(|s| s["kind"] == "rtp").collect();
        assert_eq!(rtp.len(), 2, "{tag}: {report}");
        for s in streams {
            let skip_rtcp_mki_32 = s["kind"] == "rtcp" && tag.contains("_32-mki4");
            if skip_rtcp_mki_32 {
                continue;
            }
            assert_eq!(s["failed"], 0, "{tag}: libsrtp could not open {s}");
            assert!(s["decrypted"].as_u64().unwrap() > 0, "{tag}: {s}");
        }
        if !tag.contains("_32-mki4") {
            assert_eq!(o.status.code(), Some(0), "{tag}: {report}");
        }
    }
}

/// The UAS side of the refusals: plain or unusable offers get a 488 whose Warning
/// says why, and the UAS counts a `media` failure.
#[test]
fn uas_srtp_refuses_what_it_cannot_decrypt_with_488() {
    let cases = [
        // A plain offer: uac-media against uas-srtp.
        ("plain", "uac-media".to_string(), "no usable SRTP crypto"),
        // A suite uas-srtp does not accept… with a key of the wrong length too.
        (
            "badline",
            uac_srtp_hand_written(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\\r\\na=crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw",
            ),
            "no usable SRTP crypto",
        ),
    ];
    for (i, (tag, uac, why)) in cases.into_iter().enumerate() {
        let port = free_udp_port();
        let r = scratch(&format!("srtp-488-{tag}-uas.json"));
        let trace = scratch(&format!("srtp-488-{tag}-uas.txt"));
        let uas = Background::start(&[
            "run",
            "uas-srtp",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--calls",
            "1",
            "--quiet",
            "--report",
            r.to_str().unwrap(),
            "--trace-msg",
            trace.to_str().unwrap(),
            "--rtp-ports",
            &ports(31_600 + 20 * i as u16, 20),
        ]);
        let o = sipwright(&[
            "run",
            &uac,
            "--target",
            &format!("127.0.0.1:{port}"),
            "--calls",
            "1",
            "--call-duration",
            "1s",
            "--rtp-ports",
            &ports(31_700 + 20 * i as u16, 20),
        ]);
        assert_eq!(o.status.code(), Some(1), "{tag}: {}", text(&o));
        assert!(text(&o).contains("488"), "{tag}: {}", text(&o));
        uas.wait();
        let j = report(&r);
        assert_eq!(j["failures"]["media"], 1, "{tag}: {j}");
        let t = std::fs::read_to_string(&trace).unwrap();
        let warning = t
            .lines()
            .find(|l| l.starts_with("Warning: 399 sipwright"))
            .unwrap_or_else(|| panic!("{tag}: no Warning in the 488:\n{t}"));
        assert!(warning.contains(why), "{tag}: {warning}");
        assert!(
            !warning.contains("inline:"),
            "{tag}: key material in {warning}"
        );
    }
}

/// uac-srtp whose offer carries hand-written crypto lines (`{{ sdp }}` replaced by
/// an SDP written out, to send what a broken phone would).
fn uac_srtp_hand_written(crypto: &str) -> String {
    let sdp = format!(
        "v=0\n      o=- 1 1 IN IP4 {{{{ media_ip }}}}\n      s=-\n      c=IN IP4 {{{{ media_ip }}}}\n      t=0 0\n      m=audio {{{{ media_port }}}} RTP/SAVP 0 101\n      a=rtpmap:0 PCMU/8000\n      a=rtpmap:101 telephone-event/8000\n      {}\n",
        crypto.replace("\\r\\n", "\n      ")
    );
    let text = std::fs::read_to_string(repo("scenarios/uac-srtp.yaml"))
        .unwrap()
        .replace("      {{ sdp }}\n", &format!("      {sdp}"));
    write("srtp-handwritten-uac.yaml", &text)
        .to_string_lossy()
        .into_owned()
}

/// The UAC side: an answer without usable crypto fails the call with reason
/// `media` and says why; a plain UAS (uas-media) refuses the RTP/SAVP offer.
#[test]
fn uac_srtp_fails_with_reason_media_on_an_unusable_answer() {
    let port = free_udp_port();
    let r = scratch("srtp-plain-uas.json");
    let uas = Background::start(&[
        "run",
        "uas-media",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--calls",
        "1",
        "--quiet",
        "--report",
        r.to_str().unwrap(),
        "--rtp-ports",
        &ports(31_800, 20),
    ]);
    let ur = scratch("srtp-plain-uac.json");
    let o = sipwright(&[
        "run",
        "uac-srtp",
        "--target",
        &format!("127.0.0.1:{port}"),
        "--calls",
        "1",
        "--call-duration",
        "1s",
        "--rtp-ports",
        &ports(31_820, 20),
        "--report",
        ur.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    uas.wait();
    // uas-media has no srtp: the RTP/SAVP offer is refused, saying what to add.
    let j = report(&r);
    assert_eq!(j["failures"]["media"], 1, "{j}");
    let detail = j["failure_samples"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("add `srtp:`"), "{detail}");
    let u = report(&ur);
    assert_eq!(u["calls"]["failed"], 1, "{u}");
}

/// `--trace-no-media` keeps the trace to SIP: nothing for `srtp decrypt` to open.
#[test]
fn trace_no_media_leaves_rtp_out() {
    let trace = scratch("srtp-no-media.pcap");
    let o = sipwright(&[
        "run",
        "uac-srtp",
        "--loopback",
        "--calls",
        "1",
        "--call-duration",
        "1s",
        "--rtp-ports",
        &ports(31_900, 20),
        "--trace",
        trace.to_str().unwrap(),
        "--trace-no-media",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = sipwright(&["srtp", "decrypt", trace.to_str().unwrap(), "--json"]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["streams"].as_array().unwrap().len(), 0, "{d}");
    assert_eq!(d["sip_messages"], 6, "{d}");
}

/// Bad SRTP settings are scenario errors at `check`, with FILE:LINE:COL and the fix.
#[test]
fn bad_srtp_settings_are_scenario_errors() {
    for (yaml, line, needle) in [
        (
            "media:\n  srtp: [AES_CM_128_HMAC_SHA1_80, F8_128_HMAC_SHA1_80]\nsteps:\n  - silence\n",
            2,
            "unknown SRTP suite `F8_128_HMAC_SHA1_80`; sipwright has AES_CM_128_HMAC_SHA1_80",
        ),
        (
            "media:\n  srtp: []\nsteps:\n  - silence\n",
            2,
            "empty suite list",
        ),
        (
            "media:\n  srtp: [AEAD_AES_128_GCM]\n  srtp_mki: 20\nsteps:\n  - silence\n",
            3,
            "MKI of 20 bytes",
        ),
        (
            "media:\n  srtp: [AEAD_AES_128_GCM]\n  srtp_kdr: 30\nsteps:\n  - silence\n",
            3,
            "KDR=30",
        ),
        (
            "media:\n  srtp_required: true\nsteps:\n  - silence\n",
            2,
            "needs `srtp:`",
        ),
        (
            "steps:\n  - expect_media: {max_auth_failures: lots}\n",
            2,
            "`lots` is not a number",
        ),
    ] {
        let s = write("bad-srtp.yaml", yaml);
        let o = sipwright(&["check", s.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{yaml}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{}:{line}:", s.display())),
            "{yaml}: {err}"
        );
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}

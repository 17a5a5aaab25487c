//! Interop with a real phone: baresip 1.0 (Debian baresip-core) on 127.0.0.1, one
//! call per baresip instance, in both directions. The SRTP tests have baresip
//! require SDES (`mediaenc=srtp-mand`) and check both ends: our report (streams
//! keyed, packets received, no authentication or replay failure) and baresip's log
//! (the DTMF it received, no srtp error) and recording (it decoded real audio).
//! The plain tests run the same calls without SRTP, so a failure there is the
//! harness or the call, not the encryption; the best-effort tests offer RTP/AVP
//! with crypto lines (`srtp_required: false`) to a plain and to an optional-SDES
//! baresip. Skipped with a printed reason when `baresip` is missing, except under
//! CI=true where that is a failure.

mod common;
use common::baresip::{Baresip, wav_level};
use common::rtpengine::{Traced, free_udp_range, read_trace};
use common::*;

use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Media {
    Plain,
    Srtp,
}

impl Media {
    /// baresip's account parameter: SDES required, or no encryption at all.
    fn account(self) -> &'static str {
        match self {
            Media::Plain => "",
            Media::Srtp => ";mediaenc=srtp-mand",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Media::Plain => "plain",
            Media::Srtp => "srtp",
        }
    }
}

/// RTP ports for us and for baresip, from one range nobody else was handed, so
/// neither picks a port the other (or another test) holds.
fn rtp_ports() -> (String, (u16, u16)) {
    let (low, high) = free_udp_range(40);
    (format!("{low}-{}", low + 19), (low + 20, high))
}

fn u(v: &serde_json::Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(|x| x.as_u64())
        .unwrap_or_else(|| panic!("report has no {path}: {v}"))
}

/// The first message of the trace with this direction, start line prefix and CSeq
/// method.
fn traced<'a>(trace: &'a [Traced], received: bool, start: &str, method: &str) -> &'a Traced {
    trace
        .iter()
        .find(|m| {
            m.received == received
                && m.start_line().starts_with(start)
                && m.header("CSeq")
                    .is_some_and(|c| c.ends_with(&format!(" {method}")))
        })
        .unwrap_or_else(|| panic!("no `{start}` ({method}) in the trace"))
}

/// What an SDP asks for: RTP/SAVP or RTP/AVP, with or without a=crypto lines.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sdp {
    savp: bool,
    crypto: bool,
}

impl Sdp {
    const PLAIN: Sdp = Sdp {
        savp: false,
        crypto: false,
    };
    const SAVP: Sdp = Sdp {
        savp: true,
        crypto: true,
    };
    /// srtp_required: false: RTP/AVP with the crypto lines.
    const BEST_EFFORT: Sdp = Sdp {
        savp: false,
        crypto: true,
    };
}

fn assert_sdp(m: &Traced, want: Sdp) {
    let got = Sdp {
        savp: m.text.contains(" RTP/SAVP "),
        crypto: m.text.contains("a=crypto:"),
    };
    assert_eq!(got, want, "SDP of:\n{}", m.text);
}

/// The suite of the first a=crypto line of a message's SDP.
fn crypto_suite(m: &Traced) -> &str {
    m.text
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=crypto:")?.split(' ').nth(1))
        .unwrap_or_else(|| panic!("no a=crypto in:\n{}", m.text))
}

fn sdp(media: Media) -> Sdp {
    match media {
        Media::Plain => Sdp::PLAIN,
        Media::Srtp => Sdp::SAVP,
    }
}

/// The report's SRTP figures for this kind of call: every stream keyed and nothing
/// rejected, or no SRTP at all. Prints what a reader of a green run wants to see.
fn assert_rtp(rep: &serde_json::Value, media: Media, context: &str) {
    let received = u(rep, "/rtp/packets_received");
    let srtp_streams = u(rep, "/rtp/srtp_streams");
    eprintln!(
        "rtp: {} streams ({srtp_streams} srtp), {} sent, {received} received, {} lost, \
         plain_rtcp {}, auth failures {}, replay failures {}",
        u(rep, "/rtp/streams"),
        u(rep, "/rtp/packets_sent"),
        u(rep, "/rtp/lost"),
        u(rep, "/rtp/plain_rtcp"),
        u(rep, "/rtp/srtp_auth_failures"),
        u(rep, "/rtp/srtp_replay_failures"),
    );
    // 20 ms packets for 4 s and more.
    assert!(received > 100, "{received} RTP packets received\n{context}");
    match media {
        Media::Srtp => assert!(srtp_streams >= 1, "no SRTP stream\n{context}"),
        Media::Plain => assert_eq!(srtp_streams, 0, "{context}"),
    }
    // baresip's one plain RTCP APP before SRTP is keyed counts as plain_rtcp,
    // never as an authentication failure.
    assert_eq!(u(rep, "/rtp/srtp_auth_failures"), 0, "{context}");
    assert_eq!(u(rep, "/rtp/srtp_replay_failures"), 0, "{context}");
}

/// baresip's side: no srtp error in its log, and its recording of what it decoded
/// is real audio (silence would mean it dropped or could not decrypt our packets).
fn assert_phone_heard(phone: &Baresip, media: Media) {
    let errors = phone.srtp_errors();
    assert!(
        errors.is_empty(),
        "baresip srtp errors:\n{}",
        errors.join("\n")
    );
    if media == Media::Srtp {
        assert!(
            phone.log().contains("SRTP is Enabled"),
            "baresip did not key SRTP:\n{}",
            phone.tail(40)
        );
    }
    let dec = phone
        .recording("dec")
        .unwrap_or_else(|| panic!("no -dec.wav in {}", phone.rec_dir.display()));
    let (rms, seconds) = wav_level(&dec);
    eprintln!("baresip decoded {seconds:.1} s of audio, RMS {rms:.0}");
    assert!(seconds > 2.0, "{}: {seconds} s", dec.display());
    // media/sample.wav and a full-scale sine are both far above this; silence
    // (or noise from undecryptable packets dropped) is not.
    assert!(rms > 1000.0, "{}: RMS {rms}", dec.display());
}

/// One call from our UAC to baresip (auto-answering with the sine).
struct UacCase<'a> {
    tag: &'a str,
    /// A built-in name or a scenario file.
    scenario: &'a str,
    /// baresip's `mediaenc` account parameter, if any.
    account: &'a str,
    offer: Sdp,
    answer: Sdp,
}

fn uac_calls_baresip(case: UacCase) {
    let (ours, theirs) = rtp_ports();
    let user = "alice";
    let tag = format!("uac-{}", case.tag);
    let scenario = case.scenario;
    let Some(mut phone) = Baresip::start(&tag, user, case.account, theirs, 40) else {
        return;
    };
    let r = scratch(&format!("baresip-{tag}.json"));
    let trace = scratch(&format!("baresip-{tag}.trace"));
    let started = Instant::now();
    let o = sipwright(&[
        "run",
        scenario,
        "--target",
        &phone.target(),
        // The Request-URI's user: baresip answers 404 to any but its account's.
        "--set",
        &format!("service={user}"),
        "--calls",
        "1",
        "--call-duration",
        "4s",
        "--rtp-ports",
        &ours,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
        "--trace-msg",
        trace.to_str().unwrap(),
    ]);
    let took = started.elapsed();
    // Quit before reading its log and recording: the WAV files are complete then.
    let quit = phone.quit();
    let context = format!("{}\nbaresip ({quit:?}):\n{}", text(&o), phone.tail(40));
    eprintln!("{} → baresip: {:.1} s", case.tag, took.as_secs_f64());
    assert_eq!(o.status.code(), Some(0), "{context}");
    let media = if case.answer.crypto {
        Media::Srtp
    } else {
        Media::Plain
    };
    let rep = report(&r);
    assert_eq!(u(&rep, "/calls/succeeded"), 1, "{context}");
    assert_rtp(&rep, media, &context);
    assert_eq!(u(&rep, "/dtmf/digits_sent"), 4, "{context}");

    let trace = read_trace(&trace);
    assert_sdp(traced(&trace, false, "INVITE", "INVITE"), case.offer);
    // baresip's answer: what it took of our offer.
    let ok = traced(&trace, true, "SIP/2.0 200", "INVITE");
    assert_sdp(ok, case.answer);
    if media == Media::Srtp {
        let suite = crypto_suite(ok);
        eprintln!("baresip answered {suite}");
        assert!(
            phone
                .log()
                .contains(&format!("SRTP is Enabled (cryptosuite={suite})")),
            "baresip did not key {suite}:\n{}",
            phone.tail(40)
        );
    }

    assert_eq!(phone.digits_received(), "1234", "{context}");
    assert_phone_heard(&phone, media);
}

/// baresip dials our built-in UAS (`scenario`, or a file), sends DTMF 1234 once the
/// call is up, and hangs up after 4 s. Our UAS echoes its sine back.
fn baresip_calls_uas(scenario: &str, media: Media) {
    let (ours, theirs) = rtp_ports();
    let tag = format!("uas-{}", media.name());
    let Some(mut phone) = Baresip::start(&tag, "bob", media.account(), theirs, 40) else {
        return;
    };
    let port = free_udp_port();
    let r = scratch(&format!("baresip-{tag}.json"));
    let trace = scratch(&format!("baresip-{tag}.trace"));
    let uas = Background::start(&[
        "run",
        scenario,
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--calls",
        "1",
        "--rtp-ports",
        &ours,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
        "--trace-msg",
        trace.to_str().unwrap(),
    ]);
    let started = Instant::now();
    phone.command(&format!("/dial sip:service@127.0.0.1:{port}"));
    assert!(
        phone.wait_for_log("Call established", Duration::from_secs(10)),
        "baresip's call did not come up:\n{}",
        phone.tail(40)
    );
    // Headless, baresip sends RFC 4733 digits on the menu's /sndcode.
    phone.command("/sndcode 1234");
    std::thread::sleep(Duration::from_secs(4));
    phone.command("/hangup");
    let status = uas.wait();
    let took = started.elapsed();
    let quit = phone.quit();
    let context = format!(
        "our uas: {status:?}\nbaresip ({quit:?}):\n{}",
        phone.tail(40)
    );
    eprintln!("baresip → {scenario}: {:.1} s", took.as_secs_f64());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{context}");
    let rep = report(&r);
    assert_eq!(u(&rep, "/calls/succeeded"), 1, "{context}\n{rep}");
    assert_rtp(&rep, media, &context);
    assert_eq!(u(&rep, "/dtmf/digits_received"), 4, "{context}");
    assert_eq!(u(&rep, "/dtmf/mismatches"), 0, "{context}");

    let trace = read_trace(&trace);
    // baresip offers only AES_CM_128_HMAC_SHA1_80; our answer takes it.
    let invite = traced(&trace, true, "INVITE", "INVITE");
    assert_sdp(invite, sdp(media));
    let ok = traced(&trace, false, "SIP/2.0 200", "INVITE");
    assert_sdp(ok, sdp(media));
    if media == Media::Srtp {
        assert!(
            ok.text
                .contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{}",
            ok.text
        );
    }
    assert!(
        phone.log().contains("incoming rtp for 'audio' established"),
        "baresip received no RTP:\n{}",
        phone.tail(40)
    );
    assert_phone_heard(&phone, media);
}

/// The harness without SRTP: uac-media against baresip auto-answering.
#[test]
fn uac_media_calls_baresip() {
    uac_calls_baresip(UacCase {
        tag: "plain",
        scenario: "uac-media",
        account: Media::Plain.account(),
        offer: Sdp::PLAIN,
        answer: Sdp::PLAIN,
    });
}

/// The harness without SRTP: baresip dialing uas-media.
#[test]
fn baresip_calls_uas_media() {
    baresip_calls_uas("uas-media", Media::Plain);
}

/// uac-srtp against baresip requiring SDES: it answers with one of our suites, and
/// both ends decrypt everything (audio both ways, DTMF 1234 to baresip).
#[test]
fn uac_srtp_calls_baresip() {
    uac_calls_baresip(UacCase {
        tag: "srtp",
        scenario: "uac-srtp",
        account: Media::Srtp.account(),
        offer: Sdp::SAVP,
        answer: Sdp::SAVP,
    });
}

/// baresip requiring SDES dials uas-srtp: we answer its AES_CM_128_HMAC_SHA1_80
/// offer, get its DTMF, and baresip decrypts our echo. baresip sends RFC 4733
/// digits headless (/sndcode), so this is the built-in uas-srtp, expect_dtmf
/// included.
#[test]
fn baresip_calls_uas_srtp() {
    baresip_calls_uas("uas-srtp", Media::Srtp);
}

/// scenarios/uac-srtp.yaml with `srtp_required: false`: RTP/AVP plus the crypto
/// lines (best effort).
fn uac_srtp_best_effort(name: &str) -> String {
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/uac-srtp.yaml");
    let text = std::fs::read_to_string(builtin).unwrap();
    assert!(text.contains("  srtp_required: true\n"));
    let path = scratch(name);
    std::fs::write(
        &path,
        text.replace("  srtp_required: true\n", "  srtp_required: false\n"),
    )
    .unwrap();
    path.display().to_string()
}

/// A best-effort offer to a baresip without encryption: it ignores the crypto
/// lines and answers plain RTP/AVP, and the call goes on plain (no SRTP stream,
/// expect_media still passes).
#[test]
fn uac_srtp_best_effort_to_plain_baresip_is_plain() {
    let scenario = uac_srtp_best_effort("baresip-best-effort-plain.yaml");
    uac_calls_baresip(UacCase {
        tag: "best-effort-plain",
        scenario: &scenario,
        account: "",
        offer: Sdp::BEST_EFFORT,
        answer: Sdp::PLAIN,
    });
}

/// A best-effort offer to baresip with optional SDES (`mediaenc=srtp`): it answers
/// RTP/AVP with an a=crypto line, and both ends encrypt.
#[test]
fn uac_srtp_best_effort_to_srtp_baresip_is_srtp() {
    let scenario = uac_srtp_best_effort("baresip-best-effort-srtp.yaml");
    uac_calls_baresip(UacCase {
        tag: "best-effort-srtp",
        scenario: &scenario,
        account: ";mediaenc=srtp",
        offer: Sdp::BEST_EFFORT,
        answer: Sdp::BEST_EFFORT,
    });
}

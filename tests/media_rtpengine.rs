//! Calls whose media is anchored in rtpengine by Kamailio
//! (tests/fixtures/kamailio-rtpengine.cfg): UAC → kamailio + rtpengine → our UAS,
//! over UDP on 127.0.0.1. The first two tests prove the deployment with signalling
//! only (the SDP each side receives must name rtpengine's ports, not the other
//! side's); the other two send RTP and DTMF through it, the last one with
//! SDES-SRTP on the caller's leg and plain RTP on the callee's. Skipped with a printed
//! reason when `rtpengine`, `kamailio` or `sipp` is missing, except under CI=true
//! where that is a failure.

mod common;
use common::process::wait_for;
use common::rtpengine::{MediaRelay, Traced, free_udp_range, read_trace};
use common::*;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CALLS: usize = 5;

/// Our UAS behind the relay, serving a fixed number of calls; killed on drop so a
/// failing test leaves nothing running.
struct Uas {
    child: Option<Child>,
    report: PathBuf,
    trace: PathBuf,
}

impl Uas {
    /// Starts `run SCENARIO` on 127.0.0.1:`port` (plus `extra` arguments) and waits
    /// until an OPTIONS sent through the relay reaches it.
    fn start(tag: &str, scenario: &str, port: u16, relay: &MediaRelay, extra: &[String]) -> Uas {
        let report = scratch(&format!("rtpe-{tag}-uas.json"));
        let trace = scratch(&format!("rtpe-{tag}-uas.trace"));
        let child = Command::new(bin())
            .args(["run", scenario, "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--calls", &CALLS.to_string(), "--quiet", "--report"])
            .arg(&report)
            .arg("--trace-msg")
            .arg(&trace)
            .args(extra)
            .spawn()
            .expect("start our uas");
        let mut uas = Uas {
            child: Some(child),
            report,
            trace,
        };
        // With a user part the proxy forwards the OPTIONS to the UAS (which
        // answers it statelessly): a 200 means the whole chain is up.
        let probe = format!("sip:probe@127.0.0.1:{}", relay.sip_port);
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let o = sipwright(&["options", &probe, "--timeout", "300ms"]);
            if o.status.success() {
                return uas;
            }
            // A UAS that refused its arguments will not come up: say so now.
            if let Ok(Some(status)) = uas.child.as_mut().unwrap().try_wait() {
                panic!("our uas ({scenario}) exited before taking calls: {status}");
            }
            assert!(
                Instant::now() < end,
                "our uas is not reachable through the proxy: {}\n{}",
                text(&o),
                relay.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the UAS to exit after its calls, and returns its report.
    fn finish(&mut self, relay: &MediaRelay) -> serde_json::Value {
        let mut child = self.child.take().expect("uas running");
        let status = wait_for(&mut child, Duration::from_secs(30));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "our uas did not finish its {CALLS} calls\n{}",
            relay.logs()
        );
        report(&self.report)
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The first copy of each message with this start-line prefix, CSeq method and
/// direction, one per Call-ID (retransmissions are left out).
fn per_call<'a>(
    trace: &'a [Traced],
    received: bool,
    start: &str,
    cseq_method: &str,
) -> Vec<&'a Traced> {
    let mut seen = HashSet::new();
    trace
        .iter()
        .filter(|m| m.received == received && m.start_line().starts_with(start))
        .filter(|m| {
            m.header("CSeq")
                .is_some_and(|c| c.ends_with(&format!(" {cseq_method}")))
        })
        .filter(|m| seen.insert(m.header("Call-ID").unwrap_or("").to_string()))
        .collect()
}

/// The audio port each call's sender put in its SDP, by Call-ID.
fn sent_ports(trace: &[Traced], start: &str) -> Vec<(String, u16)> {
    per_call(trace, false, start, "INVITE")
        .into_iter()
        .filter_map(|m| {
            let (_, port) = m.sdp_audio()?;
            Some((m.header("Call-ID")?.to_string(), port))
        })
        .collect()
}

/// Every call's `start` message received in `trace` carries SDP that points at
/// rtpengine (127.0.0.1, a port of its range) rather than at the port the other
/// side offered (`sender_ports`, by Call-ID).
fn assert_points_at_rtpengine(
    relay: &MediaRelay,
    trace_path: &Path,
    start: &str,
    sender_ports: &[(String, u16)],
) {
    let trace = read_trace(trace_path);
    let got = per_call(&trace, true, start, "INVITE");
    assert_eq!(
        got.len(),
        CALLS,
        "one `{start}` per call in {}",
        trace_path.display()
    );
    for m in got {
        let (address, port) = m
            .sdp_audio()
            .unwrap_or_else(|| panic!("SDP with c= and m=audio in:\n{}", m.text));
        assert_eq!(address, "127.0.0.1", "{}", m.text);
        assert!(
            relay.relays_port(port),
            "m=audio {port} is not in rtpengine's range {:?}:\n{}",
            relay.rtp_ports,
            m.text
        );
        let call_id = m.header("Call-ID").unwrap_or("");
        if let Some((_, offered)) = sender_ports.iter().find(|(c, _)| c == call_id) {
            assert_ne!(port, *offered, "the SDP was not rewritten:\n{}", m.text);
        }
    }
}

/// SIPp's built-in uac (plain SDP, no RTP) through Kamailio + rtpengine to our
/// built-in uas: the INVITE our uas receives and the 200 SIPp receives both name
/// rtpengine's ports, and rtpengine saw an offer, an answer and a delete per call.
#[test]
fn sipp_calls_are_anchored_in_rtpengine() {
    if require("sipp").is_none() {
        return;
    }
    let uas_port = free_udp_port();
    // One Kamailio worker: with two, our 180 and 200 (sent back to back) can leave
    // the proxy in the wrong order, and SIPp's built-in uac aborts a call on a 180
    // after the 200.
    let Some(relay) = MediaRelay::start_with("sipp", uas_port, &["CHILDREN=1"]) else {
        return;
    };
    let mut uas = Uas::start("sipp", "uas", uas_port, &relay, &[]);

    let sipp_trace = scratch("rtpe-sipp-uac.trace");
    let _ = std::fs::remove_file(&sipp_trace);
    // SIPp binds its media port (and the next ones) even without RTP to send:
    // give it ports nobody else is handed.
    let (media_port, _) = free_udp_range(4);
    let out = Command::new("sipp")
        .args(["-sn", "uac", &relay.target(), "-i", "127.0.0.1"])
        .args(["-p", &free_udp_port().to_string()])
        .args(["-mp", &media_port.to_string()])
        .args(["-m", &CALLS.to_string(), "-r", "5", "-nostdin"])
        .args(["-timeout", "30s", "-trace_msg", "-message_file"])
        .arg(&sipp_trace)
        .output()
        .expect("run sipp");
    let sipp_text = format!(
        "sipp exit {:?}\n{}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        relay.logs()
    );
    // SIPp exits 0 only when every call succeeded.
    assert_eq!(out.status.code(), Some(0), "{sipp_text}");
    let u = uas.finish(&relay);
    assert_eq!(u["calls"]["succeeded"], CALLS, "{u}");
    assert_eq!(u["calls"]["failed"], 0, "{u}");

    let sipp = read_trace(&sipp_trace);
    let ours = read_trace(&uas.trace);
    assert_points_at_rtpengine(&relay, &uas.trace, "INVITE ", &sent_ports(&sipp, "INVITE "));
    assert_points_at_rtpengine(
        &relay,
        &sipp_trace,
        "SIP/2.0 200",
        &sent_ports(&ours, "SIP/2.0 200"),
    );

    // A retransmitted 200 is answered again, so at least one of each per call.
    for command in ["offer", "answer", "delete"] {
        assert!(
            relay.commands(command) >= CALLS,
            "rtpengine got {} `{command}` commands for {CALLS} calls\n{}",
            relay.commands(command),
            relay.logs()
        );
    }
}

/// Our built-in uac (which follows Record-Route) through the same deployment: the
/// ACK and BYE take the loose-route path, and the SDP each side receives is
/// rtpengine's. Signalling only; needs no media support.
#[test]
fn our_calls_are_anchored_in_rtpengine() {
    let uas_port = free_udp_port();
    let Some(relay) = MediaRelay::start("ours", uas_port) else {
        return;
    };
    let mut uas = Uas::start("ours", "uas", uas_port, &relay, &[]);
    let r = scratch("rtpe-ours-uac.json");
    let uac_trace = scratch("rtpe-ours-uac.trace");
    let _ = std::fs::remove_file(&uac_trace);
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &relay.target(),
        "--calls",
        &CALLS.to_string(),
        "--rate",
        "5",
        // ACK well ahead of the BYE: two proxy workers could swap them.
        "--call-duration",
        "200ms",
        "--quiet",
        "--report",
        r.to_str().unwrap(),
        "--trace-msg",
        uac_trace.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), relay.logs());
    assert_eq!(report(&r)["calls"]["succeeded"], CALLS);
    let u = uas.finish(&relay);
    assert_eq!(u["calls"]["succeeded"], CALLS, "{u}");

    let uac = read_trace(&uac_trace);
    let ours = read_trace(&uas.trace);
    assert_points_at_rtpengine(&relay, &uas.trace, "INVITE ", &sent_ports(&uac, "INVITE "));
    assert_points_at_rtpengine(
        &relay,
        &uac_trace,
        "SIP/2.0 200",
        &sent_ports(&ours, "SIP/2.0 200"),
    );
    // The BYEs came back through the proxy (Route), which deleted the sessions.
    assert!(
        relay.commands("delete") >= CALLS,
        "{} deletes\n{}",
        relay.commands("delete"),
        relay.logs()
    );
}

/// The real goal: RTP and DTMF through rtpengine. 5 calls of 3 s, `uac-media`
/// sending 4 RFC 4733 digits per call to `uas-media`; nothing lost on the way.
#[test]
fn media_through_rtpengine() {
    let uas_port = free_udp_port();
    let Some(relay) = MediaRelay::start("media", uas_port) else {
        return;
    };
    calls_through_rtpengine(&relay, "media", uas_port, "uac-media");
}

/// What a media test through the relay leaves to look at.
struct Through {
    uac: serde_json::Value,
    uas: serde_json::Value,
    uac_trace: PathBuf,
    uas_trace: PathBuf,
}

/// `uac` → relay → `uas-media`: CALLS calls of 3 s with 4 RFC 4733 digits each,
/// each side on RTP ports of its own (apart from rtpengine's and from each other,
/// so a port in an SDP tells who wrote it). Checks what every such run must show:
/// all calls done on both sides, nothing lost, RTP received both ways, the digits
/// arrived, and each side's SDP names rtpengine, not the other side.
fn calls_through_rtpengine(relay: &MediaRelay, tag: &str, uas_port: u16, uac: &str) -> Through {
    let (uas_low, uas_high) = free_udp_range(100);
    let (uac_low, uac_high) = free_udp_range(100);
    let mut uas = Uas::start(
        tag,
        "uas-media",
        uas_port,
        relay,
        &["--rtp-ports".into(), format!("{uas_low}-{uas_high}")],
    );
    let r = scratch(&format!("rtpe-{tag}-uac.json"));
    let uac_trace = scratch(&format!("rtpe-{tag}-uac.trace"));
    let _ = std::fs::remove_file(&uac_trace);
    let o = sipwright(&[
        "run",
        uac,
        "--target",
        &relay.target(),
        "--calls",
        &CALLS.to_string(),
        "--rate",
        "5",
        "--call-duration",
        "3s",
        "--rtp-ports",
        &format!("{uac_low}-{uac_high}"),
        "--quiet",
        "--report",
        r.to_str().unwrap(),
        "--trace-msg",
        uac_trace.to_str().unwrap(),
    ]);
    // --quiet: why calls failed is only in the report.
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}\n{}",
        text(&o),
        std::fs::read_to_string(&r).unwrap_or_default(),
        relay.logs()
    );
    let j = report(&r);
    let u = uas.finish(relay);
    for (side, rep) in [("uac", &j), ("uas", &u)] {
        eprintln!("{tag} {side}: rtp {} dtmf {}", rep["rtp"], rep["dtmf"]);
        assert_eq!(rep["calls"]["succeeded"], CALLS, "{side}: {rep}");
        assert_eq!(rep["calls"]["failed"], 0, "{side}: {rep}");
        assert_eq!(rep["rtp"]["streams"], CALLS, "{side}: {rep}");
        assert_eq!(rep["rtp"]["lost"], 0, "{side}: {rep}");
        assert!(
            rep["rtp"]["packets_received"].as_u64().unwrap_or(0) > 0,
            "{side} received no RTP: {rep}"
        );
    }
    // 4 digits per call.
    assert_eq!(u["dtmf"]["digits_received"], 4 * CALLS, "{u}");
    assert_eq!(u["dtmf"]["mismatches"], 0, "{u}");

    let sent = read_trace(&uac_trace);
    let ours = read_trace(&uas.trace);
    assert_points_at_rtpengine(relay, &uas.trace, "INVITE ", &sent_ports(&sent, "INVITE "));
    assert_points_at_rtpengine(
        relay,
        &uac_trace,
        "SIP/2.0 200",
        &sent_ports(&ours, "SIP/2.0 200"),
    );
    Through {
        uac: j,
        uas: u,
        uac_trace,
        uas_trace: uas.trace.clone(),
    }
}

/// The `m=audio` protocol and the `a=crypto` lines of a message's SDP.
fn sdp_security(m: &Traced) -> (String, Vec<String>) {
    let lines: Vec<&str> = m.body().lines().map(str::trim_end).collect();
    let proto = lines
        .iter()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let crypto = lines
        .iter()
        .filter(|l| l.starts_with("a=crypto:"))
        .map(|l| l.to_string())
        .collect();
    (proto, crypto)
}

/// SRTP on one leg only: `uac-srtp` (SDES required) through Kamailio + rtpengine
/// started with `-A SRTP_TO_PLAIN` to `uas-media` (plain RTP). rtpengine offers
/// the callee RTP/AVP without keys and answers the caller RTP/SAVP with its own
/// key, decrypting and encrypting in between: audio and DTMF arrive intact both
/// ways, and nothing fails authentication.
#[test]
fn uac_srtp_through_rtpengine_to_plain_uas() {
    let uas_port = free_udp_port();
    let Some(relay) = MediaRelay::start_with("srtp", uas_port, &["SRTP_TO_PLAIN"]) else {
        return;
    };
    let t = calls_through_rtpengine(&relay, "srtp", uas_port, "uac-srtp");
    let (j, u) = (&t.uac, &t.uas);
    for (side, rep) in [("uac", j), ("uas", u)] {
        assert_eq!(rep["rtp"]["srtp_auth_failures"], 0, "{side}: {rep}");
        assert_eq!(rep["rtp"]["srtp_replay_failures"], 0, "{side}: {rep}");
    }
    // Encrypted on the caller's leg only.
    assert_eq!(j["rtp"]["srtp_streams"], CALLS, "{j}");
    assert_eq!(u["rtp"]["srtp_streams"], 0, "{u}");

    let uac = read_trace(&t.uac_trace);
    let ours = read_trace(&t.uas_trace);
    // The offer we sent was SRTP; the callee got it plain, without keys.
    for m in per_call(&uac, false, "INVITE ", "INVITE") {
        let (proto, crypto) = sdp_security(m);
        assert_eq!(proto, "RTP/SAVP", "{}", m.text);
        assert!(!crypto.is_empty(), "{}", m.text);
    }
    for m in per_call(&ours, true, "INVITE ", "INVITE") {
        let (proto, crypto) = sdp_security(m);
        assert_eq!(proto, "RTP/AVP", "{}", m.text);
        assert!(
            crypto.is_empty(),
            "keys reached the plain side:\n{}",
            m.text
        );
    }
    // The answer our UAC got is rtpengine's (its ports, checked above): SRTP, one
    // a=crypto line, with a key that is not the one our UAC offered.
    let offered: HashSet<String> = per_call(&uac, false, "INVITE ", "INVITE")
        .into_iter()
        .flat_map(|m| sdp_security(m).1)
        .collect();
    let answers = per_call(&uac, true, "SIP/2.0 200", "INVITE");
    assert_eq!(answers.len(), CALLS);
    for m in answers {
        let (proto, crypto) = sdp_security(m);
        assert_eq!(proto, "RTP/SAVP", "{}", m.text);
        assert_eq!(crypto.len(), 1, "{}", m.text);
        assert!(
            !offered.contains(&crypto[0]),
            "our own key came back:\n{}",
            m.text
        );
        eprintln!("uac got: {}", crypto[0]);
    }
}

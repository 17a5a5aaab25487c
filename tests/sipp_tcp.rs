//! Interop with SIPp (Debian package `sip-tester`) over TCP, both directions, on
//! 127.0.0.1: our uac → SIPp's built-in uas, SIPp's built-in uac → our uas, with
//! SIPp in both of its TCP modes (`-t t1`: one connection for all calls, `-t tn`:
//! one per call). And SIPp over TCP through Kamailio
//! (tests/fixtures/kamailio/transports.cfg) to SIPp over UDP and over TCP, which
//! checks the transport rig with no sipwright involved.
//!
//! Skipped with a printed reason when `sipp` (or kamailio) is missing, except under CI=true where that is a
//! failure.

mod common;
use common::kamailio::{KamailioRig, RigOptions};
use common::process::wait_until_bound;
use common::sipp::Sipp;
use common::*;

use std::time::Duration;

const CALLS: u64 = 20;
const RATE: &str = "20";
const BUILT_IN_UAS: [&str; 2] = ["-sn", "uas"];

/// Our uac over TCP (`--target HOST:PORT --transport tcp`, plus `extra`) against
/// SIPp's uas in `mode`.
fn our_uac_against_sipp_uas(mode: &str, extra: &[&str]) {
    if require("sipp").is_none() {
        return;
    }
    let tag = format!("uas-{mode}");
    let port = free_tcp_port();
    let sipp = Sipp::uas(&format!("tcp-{tag}"), port, mode, BUILT_IN_UAS, CALLS);
    let r = scratch(&format!("sipp-tcp-{tag}-ours.json"));
    let target = format!("127.0.0.1:{port}");
    let calls = CALLS.to_string();
    let mut args = vec![
        "run",
        "uac",
        "--target",
        &target,
        "--transport",
        "tcp",
        "--calls",
        &calls,
        "--rate",
        RATE,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = sipwright(&args);
    let s = if o.status.success() {
        sipp.finish()
    } else {
        sipp.kill()
    };
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), s.text);
    let j = report(&r);
    assert_calls(&j, CALLS, 0);
    assert!(
        j["connections"]["opened"].as_u64().is_some_and(|n| n >= 1),
        "{j}"
    );
    s.assert_all_succeeded(CALLS, "");
}

/// One connection for all calls (`--connections 1`) against SIPp's single-socket
/// mode.
#[test]
fn our_uac_over_tcp_against_sipp_uas_t1() {
    our_uac_against_sipp_uas("t1", &["--connections", "1"]);
}

/// The default for TCP, a connection per call, against SIPp's socket-per-call mode.
#[test]
fn our_uac_over_tcp_against_sipp_uas_tn() {
    // SIPp's uas pauses 4 s after the BYE and fails a call whose connection closes
    // meanwhile (its own uac -t tn does that to it): keep ours open 5 s.
    our_uac_against_sipp_uas("tn", &["--connection-linger", "5s"]);
}

/// SIPp's uac in `mode` against our uas listening on TCP.
fn sipp_uac_against_our_uas(mode: &str) {
    if require("sipp").is_none() {
        return;
    }
    let tag = format!("uac-{mode}");
    let port = free_tcp_port();
    let bind = format!("127.0.0.1:{port}");
    let r = scratch(&format!("sipp-tcp-{tag}-ours.json"));
    let calls = CALLS.to_string();
    let uas = Background::start(&[
        "run",
        "uas",
        "--bind",
        &bind,
        "--transport",
        "tcp",
        "--calls",
        &calls,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert!(
        wait_until_bound(port, true, Duration::from_secs(5)),
        "our uas does not listen on TCP {bind}"
    );
    let s = Sipp::uac(&format!("tcp-{tag}"), &bind, mode, CALLS, RATE).finish();
    let status = uas.wait();
    s.assert_all_succeeded(CALLS, "");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "our uas failed");
    let j = report(&r);
    assert_calls(&j, CALLS, 0);
}

#[test]
fn sipp_uac_t1_against_our_uas_over_tcp() {
    sipp_uac_against_our_uas("t1");
}

#[test]
fn sipp_uac_tn_against_our_uas_over_tcp() {
    sipp_uac_against_our_uas("tn");
}

/// SIPp's uac over TCP (`uac_mode`) → Kamailio's TCP listener → SIPp's uas over
/// `uas_transport` (UDP or TCP): every call succeeds on both SIPp sides. SIPp's
/// built-in uac ignores Record-Route and sends its ACK and BYE to the proxy's
/// address, which the fixture takes to the UAS like the INVITE.
fn sipp_through_kamailio(uac_mode: &str, uas_transport: &'static str) {
    if require("sipp").is_none() {
        return;
    }
    let tag = format!("kam-{uac_mode}-{uas_transport}");
    let (uas_port, uas_mode) = if uas_transport == "udp" {
        (free_udp_port(), "u1")
    } else {
        (free_tcp_port(), "t1")
    };
    let options = RigOptions {
        uas_transport,
        ..RigOptions::new(uas_port)
    };
    let Some(rig) = KamailioRig::start_with(&tag, options) else {
        return;
    };
    let uas = Sipp::uas(
        &format!("tcp-{tag}-uas"),
        uas_port,
        uas_mode,
        BUILT_IN_UAS,
        CALLS,
    );
    let target = format!("127.0.0.1:{}", rig.tcp_port);
    let uac = Sipp::uac(&format!("tcp-{tag}-uac"), &target, uac_mode, CALLS, RATE).finish();
    let uas = uas.finish();
    uac.assert_all_succeeded(CALLS, &rig.logs());
    uas.assert_all_succeeded(CALLS, &rig.logs());
}

#[test]
fn sipp_over_tcp_through_kamailio_to_sipp_over_udp() {
    sipp_through_kamailio("t1", "udp");
}

#[test]
fn sipp_over_tcp_through_kamailio_to_sipp_over_tcp() {
    sipp_through_kamailio("tn", "tcp");
}

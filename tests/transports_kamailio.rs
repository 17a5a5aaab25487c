//! SIP over UDP, TCP, TLS, WS and WSS against a real peer: Kamailio with
//! tests/fixtures/kamailio/transports.cfg (tests/common/kamailio.rs starts it with
//! a throwaway CA and certificates). Our `uac` over each transport → Kamailio → our
//! `uas` over UDP; our `uas` reached by Kamailio over TCP and TLS; TLS certificate
//! verification (unknown CA, --insecure, client certificates); and a `--trace` of a
//! TLS call that tshark decodes as SIP.
//! Some tests check the rig itself (every listener answers, client certificates
//! can be demanded, a callee's BYE finds a caller on a connection; no sipwright in
//! these).
//!
//! Skipped with a printed reason when kamailio, its tls/websocket modules, openssl,
//! sipp or tshark is missing, except under CI=true where that is a failure.

mod common;
use common::kamailio::{KamailioRig, RigOptions, TRANSPORTS, kamailio_fixture};
use common::sipp::Sipp;
use common::*;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const CALLS: u64 = 20;

/// Our built-in uas serving `CALLS` calls behind the rig (killed on drop, like
/// any `Background`).
struct OurUas {
    uas: Background,
    report: PathBuf,
}

impl OurUas {
    /// Starts `run uas` on 127.0.0.1:`port` speaking `rig.options.uas_transport`
    /// (with the test server certificate under TLS), and waits until an OPTIONS
    /// through the rig reaches it.
    fn start(tag: &str, port: u16, rig: &KamailioRig) -> OurUas {
        let transport = rig.options.uas_transport;
        let report = scratch(&format!("tk-{tag}-uas.json"));
        let (bind, calls) = (format!("127.0.0.1:{port}"), CALLS.to_string());
        let mut args = vec!["run", "uas", "--bind", &bind, "--calls", &calls, "--quiet"];
        args.extend(["--report", report.to_str().unwrap()]);
        if transport != "udp" {
            args.extend(["--transport", transport]);
        }
        if transport == "tls" {
            let c = rig.certs;
            args.extend(["--cert", c.server_cert.to_str().unwrap()]);
            args.extend(["--key", c.server_key.to_str().unwrap()]);
        }
        let mut uas = Background::start(&args);
        // A uas that refused its arguments (it printed why) has exited by now:
        // say so instead of waiting for the chain.
        if let Some(status) = uas.exited() {
            panic!("our uas ({transport}) exited at once: {status}");
        }
        if let Err(e) = rig.wait_for_uas(Duration::from_secs(10)) {
            panic!("{e}\nour uas exited: {:?}", uas.exited());
        }
        OurUas { uas, report }
    }

    /// Waits for the uas to exit after its calls (exit 0) and returns its report.
    fn finish(self, rig: &KamailioRig) -> serde_json::Value {
        let status = self.uas.wait();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "our uas did not finish its {CALLS} calls\n{}",
            rig.logs()
        );
        report(&self.report)
    }
}

/// `run uac` through the rig over `transport` with `extra` arguments; its output
/// and report path.
fn uac(
    rig: &KamailioRig,
    tag: &str,
    transport: &str,
    calls: u64,
    extra: &[&str],
) -> (Output, PathBuf) {
    let r = scratch(&format!("tk-{tag}-uac.json"));
    let target = rig.target(transport);
    let calls = calls.to_string();
    let mut args = vec![
        "run", "uac", "--target", &target, "--calls", &calls, "--rate", "20", "--quiet", "--report",
    ];
    args.push(r.to_str().unwrap());
    args.extend_from_slice(extra);
    (sipwright(&args), r)
}

/// `--ca` with the test CA: what a UAC over TLS or WSS needs to trust the rig.
fn trust(rig: &KamailioRig) -> [&str; 2] {
    ["--ca", rig.certs.ca.to_str().unwrap()]
}

/// The rig set up by `options` (whose `uas_port` is replaced by a fresh port of
/// the kind the UAS transport needs) with our uas behind it. None when the rig
/// cannot run here.
fn rig_with_uas(tag: &str, options: RigOptions) -> Option<(KamailioRig, OurUas)> {
    let uas_port = if options.uas_transport == "udp" {
        free_udp_port()
    } else {
        free_tcp_port()
    };
    let rig = KamailioRig::start_with(
        tag,
        RigOptions {
            uas_port,
            ..options
        },
    )?;
    let uas = OurUas::start(tag, uas_port, &rig);
    Some((rig, uas))
}

/// Our uac's `CALLS` calls over `transport` (plus `extra` arguments) through the
/// rig to `uas` all succeed, on both sides. Returns the uac's report.
fn calls_succeed(
    rig: &KamailioRig,
    uas: OurUas,
    tag: &str,
    transport: &str,
    extra: &[&str],
) -> serde_json::Value {
    let (o, r) = uac(rig, tag, transport, CALLS, extra);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), rig.logs());
    let j = report(&r);
    assert_calls(&j, CALLS, 0);
    assert_calls(&uas.finish(rig), CALLS, 0);
    j
}

/// All `CALLS` calls of our uac over `transport` succeed on both sides, through
/// Kamailio to our uas over UDP; over a connection transport the report counts
/// at least one connection opened and none failed.
fn calls_over(transport: &str) {
    let tag = format!("uac-{transport}");
    let Some((rig, uas)) = rig_with_uas(&tag, RigOptions::new(0)) else {
        return;
    };
    let extra: &[&str] = if transport == "tls" || transport == "wss" {
        &trust(&rig)
    } else {
        &[]
    };
    let j = calls_succeed(&rig, uas, &tag, transport, extra);
    if transport != "udp" {
        assert!(
            j["connections"]["opened"].as_u64().is_some_and(|n| n >= 1),
            "{j}"
        );
        assert_eq!(j["connections"]["failed"], 0, "{j}");
    }
}

#[test]
fn uac_over_udp_through_kamailio() {
    calls_over("udp");
}

#[test]
fn uac_over_tcp_through_kamailio() {
    calls_over("tcp");
}

#[test]
fn uac_over_tls_through_kamailio() {
    calls_over("tls");
}

#[test]
fn uac_over_ws_through_kamailio() {
    calls_over("ws");
}

#[test]
fn uac_over_wss_through_kamailio() {
    calls_over("wss");
}

/// Kamailio reaches our uas over `transport` (it opens the connection; under TLS
/// it verifies our server certificate against the test CA), our uac calls over
/// UDP: all calls succeed on both sides. The ACK and BYE come to the uas through
/// the proxy, so its Contact must carry `;transport=` for Kamailio to use the
/// connection rather than UDP.
fn uas_reached_over(transport: &'static str) {
    let tag = format!("uas-{transport}");
    let options = RigOptions {
        uas_transport: transport,
        ..RigOptions::new(0)
    };
    if let Some((rig, uas)) = rig_with_uas(&tag, options) {
        calls_succeed(&rig, uas, &tag, "udp", &[]);
    }
}

#[test]
fn uas_reached_over_tcp() {
    uas_reached_over("tcp");
}

#[test]
fn uas_reached_over_tls() {
    uas_reached_over("tls");
}

/// A TLS UAC that cannot verify the proxy's certificate: every call fails (no
/// UAS is needed: nothing gets past the handshake), the connection failure is
/// counted, and what the user reads names the certificate problem and the
/// options that fix it.
fn tls_calls_fail_to_verify(tag: &str, extra: &[&str]) {
    let Some(rig) = KamailioRig::start(tag, free_udp_port()) else {
        return;
    };
    let (o, r) = uac(&rig, tag, "tls", 3, extra);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = report(&r);
    assert_calls(&j, 0, 3);
    assert!(
        j["connections"]["failed"].as_u64().is_some_and(|n| n >= 1),
        "{j}"
    );
    let said = format!("{}\n{j}", String::from_utf8_lossy(&o.stderr)).to_lowercase();
    for word in ["certificate", "--ca"] {
        assert!(said.contains(word), "no `{word}` in:\n{said}");
    }
}

/// The test CA is not among the system roots: without `--ca` the proxy's
/// certificate is from an unknown issuer.
#[test]
fn tls_without_ca_fails_and_says_why() {
    tls_calls_fail_to_verify("tls-no-ca", &[]);
}

/// Trusting some other CA does not help.
#[test]
fn tls_with_the_wrong_ca_fails() {
    let Some(certs) = common::certs::certs() else {
        return;
    };
    tls_calls_fail_to_verify(
        "tls-wrong-ca",
        &["--ca", certs.unknown_ca.to_str().unwrap()],
    );
}

/// `--insecure` skips verification: the calls go through.
#[test]
fn tls_insecure_skips_verification() {
    let tag = "tls-insecure";
    if let Some((rig, uas)) = rig_with_uas(tag, RigOptions::new(0)) {
        calls_succeed(&rig, uas, tag, "tls", &["--insecure"]);
    }
}

/// Kamailio demanding a client certificate from the test CA: calls with
/// `--cert/--key` of the test client succeed; without a certificate, or with one
/// from an unknown CA, they fail.
#[test]
fn tls_client_certificate() {
    let options = RigOptions {
        require_client_cert: true,
        ..RigOptions::new(0)
    };
    let Some((rig, uas)) = rig_with_uas("tls-mutual", options) else {
        return;
    };
    let c = rig.certs;
    let (ca, cert, key) = (
        c.ca.to_str().unwrap(),
        c.client_cert.to_str().unwrap(),
        c.client_key.to_str().unwrap(),
    );
    let with_cert = ["--ca", ca, "--cert", cert, "--key", key];
    calls_succeed(&rig, uas, "tls-mutual", "tls", &with_cert);

    let (unknown_cert, unknown_key) = (
        c.unknown_cert.to_str().unwrap(),
        c.unknown_key.to_str().unwrap(),
    );
    for (tag, extra) in [
        ("tls-mutual-none", vec!["--ca", ca]),
        (
            "tls-mutual-unknown",
            vec!["--ca", ca, "--cert", unknown_cert, "--key", unknown_key],
        ),
    ] {
        let (o, r) = uac(&rig, tag, "tls", 2, &extra);
        assert_eq!(o.status.code(), Some(1), "{tag}: {}", text(&o));
        assert_calls(&report(&r), 0, 2);
    }
}

/// `--trace` of calls over TLS holds the SIP in clear, in TCP segments that
/// tshark reassembles and decodes: every call's INVITE, ACK and BYE, and 200s.
#[test]
fn tls_trace_is_sip_that_tshark_decodes() {
    let Some(tshark) = require("tshark") else {
        return;
    };
    let Some((rig, uas)) = rig_with_uas("tls-trace", RigOptions::new(0)) else {
        return;
    };
    let pcap = scratch("tk-tls-trace.pcap");
    let mut extra = trust(&rig).to_vec();
    extra.extend(["--trace", pcap.to_str().unwrap()]);
    calls_succeed(&rig, uas, "tls-trace", "tls", &extra);

    // SIP over TCP is found by tshark's heuristic on any port; decode-as on
    // the TLS port makes sure the TLS dissector does not claim the segments.
    let out = Command::new(tshark)
        .arg("-r")
        .arg(&pcap)
        .args(["-d", &format!("tcp.port=={},sip", rig.tls_port)])
        .args(["-Y", "sip", "-T", "fields", "-e", "sip.Method"])
        .args(["-e", "sip.Status-Code"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark: {}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    let count = |f: &dyn Fn(&str) -> bool| listed.lines().filter(|l| f(l)).count() as u64;
    for method in ["INVITE", "ACK", "BYE"] {
        assert!(
            count(&|l| l.split('\t').next() == Some(method)) >= CALLS,
            "fewer than {CALLS} {method} decoded:\n{listed}"
        );
    }
    assert!(
        count(&|l| l.ends_with("\t200")) >= 2 * CALLS,
        "fewer than 2 × {CALLS} 200s decoded:\n{listed}"
    );
}

/// The rig on its own: each listener answers an OPTIONS to the proxy (TLS and
/// WSS verified against the test CA for 127.0.0.1, WS and WSS upgraded with the
/// `sip` subprotocol).
#[test]
fn rig_answers_on_every_listener() {
    let Some(rig) = KamailioRig::start("probe", free_udp_port()) else {
        return;
    };
    for transport in TRANSPORTS {
        let answer = rig
            .probe(transport, None)
            .unwrap_or_else(|e| panic!("{transport}: {e}\n{}", rig.logs()));
        assert!(
            answer.starts_with("SIP/2.0 200"),
            "{transport}: {answer}\n{}",
            rig.logs()
        );
    }
}

/// `require_client_cert`: the TLS and WSS listeners refuse a client without a
/// certificate or with one from an unknown CA, and take the test client.
#[test]
fn rig_can_demand_client_certificates() {
    let options = RigOptions {
        require_client_cert: true,
        ..RigOptions::new(free_udp_port())
    };
    let Some(rig) = KamailioRig::start_with("probe-mutual", options) else {
        return;
    };
    let c = rig.certs;
    for transport in ["tls", "wss"] {
        let ok = rig.probe(
            transport,
            Some((c.client_cert.as_path(), c.client_key.as_path())),
        );
        assert!(
            ok.as_ref().is_ok_and(|a| a.starts_with("SIP/2.0 200")),
            "{transport} with the client certificate: {ok:?}\n{}",
            rig.logs()
        );
        let none = rig.probe(transport, None);
        assert!(none.is_err(), "{transport} without a certificate: {none:?}");
        let unknown = rig.probe(
            transport,
            Some((c.unknown_cert.as_path(), c.unknown_key.as_path())),
        );
        assert!(
            unknown.is_err(),
            "{transport} with an unknown CA's certificate: {unknown:?}"
        );
    }
}

/// The fixture's alias handling, checked with a hand-made caller and SIPp as a
/// callee that hangs up (tests/fixtures/kamailio/sipp-uas-bye.xml): over TCP,
/// TLS, WS and WSS the caller's Contact names `uac.invalid`, yet the callee's
/// BYE, sent over UDP along the route set, comes back on the caller's own
/// connection, with the alias taken out of its Request-URI again.
#[test]
fn callee_bye_reaches_a_caller_on_its_connection() {
    if require("sipp").is_none() {
        return;
    }
    let uas_port = free_udp_port();
    let Some(rig) = KamailioRig::start("alias", uas_port) else {
        return;
    };
    let scenario = kamailio_fixture("sipp-uas-bye.xml");
    let transports = ["tcp", "tls", "ws", "wss"];
    let sipp = Sipp::uas(
        "tk-alias",
        uas_port,
        "u1",
        ["-sf", scenario.to_str().unwrap()],
        transports.len() as u64,
    );
    for transport in transports {
        let bye = rig
            .call_hung_up_by_callee(transport)
            .unwrap_or_else(|e| panic!("{transport}: {e}\n{}", rig.logs()));
        let expected = format!("BYE sip:uac@uac.invalid;transport={transport} SIP/2.0");
        assert!(bye.starts_with(&expected), "{transport}: {bye}");
    }
    sipp.finish()
        .assert_all_succeeded(transports.len() as u64, &rig.logs());
}

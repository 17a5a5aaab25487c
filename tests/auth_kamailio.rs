//! Digest authentication against a real registrar: Kamailio with
//! tests/fixtures/kamailio/auth.cfg (`AuthRig`, tests/common/registrar.rs),
//! where user `u000001` has the password `pw-u000001`, REGISTER is challenged
//! with 401 and INVITE with 407.
//!
//! SIPp (Debian `sip-tester`) checks the rig with no sipwright involved:
//! tests/fixtures/sipp/register.xml (`-inf` users, `[authentication]`) and
//! invite-auth.xml. Then ours: a scenario's `auth:` block, `run register` for
//! 1,000 CSV users (`--inject`), right and wrong passwords, `register-then-call`
//! and a uac with `auth:` calling a registered user, both to our uas.
//!
//! Skipped with a printed reason when kamailio, kamcmd or sipp is missing,
//! except under CI=true where that is a failure.

mod common;
use common::process::wait_until_bound;
use common::registrar::{
    AuthOptions, AuthRig, Passwords, sipp_scenario, sipp_users, user, users_csv,
};
use common::sipp::Sipp;
use common::*;

use std::time::Duration;

/// SIPp registers `n` users (register.xml, `-inf` with `passwords`) at `rate`,
/// with Contacts on `contact_port` (its own port when None).
fn sipp_register(
    rig: &AuthRig,
    tag: &str,
    n: usize,
    passwords: Passwords,
    rate: &str,
    contact_port: Option<u16>,
) -> common::sipp::SippResult {
    let users = sipp_users(&format!("{tag}-users.csv"), n, passwords);
    let scenario = sipp_scenario("register.xml");
    // -key contact_port: register.xml's [contact_port]. SIPp's own port is
    // only known once `client` picked it, so without one given the Contact
    // port is chosen here and SIPp binds it.
    let port = contact_port.unwrap_or_else(free_udp_port).to_string();
    let mut extra = vec!["-inf", users.to_str().unwrap(), "-key", "contact_port"];
    extra.push(&port);
    let (sipp, _) = Sipp::client(tag, &rig.addr(), &scenario, &extra, n as u64, rate);
    sipp.finish()
}

#[test]
fn sipp_registers_100_users_through_kamailio_with_digest_auth() {
    if require("sipp").is_none() {
        return;
    }
    let Some(rig) = AuthRig::start("sipp-reg") else {
        return;
    };
    let s = sipp_register(&rig, "auth-sipp-reg", 100, Passwords::Right, "50", None);
    s.assert_all_succeeded(100, &rig.logs());
    assert_eq!(rig.registered_users(), 100, "{}", rig.logs());
    let contact = rig.contact(&user(100)).expect("u000100 registered");
    assert!(contact.starts_with("sip:u000100@127.0.0.1:"), "{contact}");
}

/// Wrong passwords: every REGISTER is challenged again after its retry (auth.cfg
/// re-challenges, as most registrars do), which register.xml does not expect;
/// nobody gets registered.
#[test]
fn sipp_with_wrong_passwords_is_rechallenged_and_not_registered() {
    if require("sipp").is_none() {
        return;
    }
    let Some(rig) = AuthRig::start("sipp-wrong") else {
        return;
    };
    let s = sipp_register(&rig, "auth-sipp-wrong", 50, Passwords::Wrong, "50", None);
    assert_ne!(s.code, Some(0), "{}", s.text);
    assert_eq!((s.succeeded, s.failed), (0, 50), "{}", s.text);
    assert!(
        s.text.contains("401 Unauthorized") && s.text.contains("CSeq: 2 REGISTER"),
        "the retried REGISTER should get a new 401:\n{}",
        s.text
    );
    assert_eq!(rig.registered_users(), 0, "{}", rig.logs());
}

/// The same with REJECT_403: the retried REGISTER gets 403.
#[test]
fn sipp_with_wrong_passwords_gets_403_when_configured() {
    if require("sipp").is_none() {
        return;
    }
    let options = AuthOptions {
        reject_403: true,
        ..AuthOptions::default()
    };
    let Some(rig) = AuthRig::start_with("sipp-403", options) else {
        return;
    };
    let s = sipp_register(&rig, "auth-sipp-403", 20, Passwords::Wrong, "20", None);
    assert_eq!((s.succeeded, s.failed), (0, 20), "{}", s.text);
    assert!(s.text.contains("403 Forbidden"), "{}", s.text);
    assert_eq!(rig.registered_users(), 0, "{}", rig.logs());
}

/// SIPp registers `n` users whose Contact is a SIPp uas, then calls them
/// through the proxy with invite-auth.xml (407, retry with credentials): the
/// proxy's lookup("location") takes every call to the uas.
#[test]
fn sipp_calls_registered_users_through_kamailio_with_407() {
    if require("sipp").is_none() {
        return;
    }
    let Some(rig) = AuthRig::start("sipp-invite") else {
        return;
    };
    const N: u64 = 30;
    let uas_port = free_udp_port();
    let reg = sipp_register(
        &rig,
        "auth-sipp-invite-reg",
        N as usize,
        Passwords::Right,
        "30",
        Some(uas_port),
    );
    reg.assert_all_succeeded(N, &rig.logs());
    assert_eq!(rig.registered_users(), N, "{}", rig.logs());

    let uas = Sipp::uas("auth-sipp-invite-uas", uas_port, "u1", ["-sn", "uas"], N);
    let users = sipp_users("auth-sipp-invite-users.csv", N as usize, Passwords::Right);
    let (uac, _) = Sipp::client(
        "auth-sipp-invite-uac",
        &rig.addr(),
        &sipp_scenario("invite-auth.xml"),
        &["-inf", users.to_str().unwrap()],
        N,
        "10",
    );
    let uac = uac.finish();
    let uas = uas.finish();
    uac.assert_all_succeeded(N, &rig.logs());
    uas.assert_all_succeeded(N, &rig.logs());
}

// ---------------------------------------------------------------------------
// sipwright against the rig: the CLI of the digest-auth work.
// ---------------------------------------------------------------------------

/// `sipwright run BUILTIN` (register, register-then-call) for the users of
/// `csv`, `calls` at `rate`: its output and report.
fn our_run(
    rig: &AuthRig,
    builtin: &str,
    tag: &str,
    csv: &std::path::Path,
    calls: u64,
    rate: u64,
) -> (std::process::Output, serde_json::Value) {
    let r = scratch(&format!("{tag}.json"));
    let target = rig.target();
    let (calls, rate) = (calls.to_string(), rate.to_string());
    let o = sipwright(&[
        "run",
        builtin,
        "--target",
        &target,
        "--inject",
        csv.to_str().unwrap(),
        "--rate",
        &rate,
        "--calls",
        &calls,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert!(
        r.exists(),
        "no report from `run {builtin}`\n{}\n{}",
        text(&o),
        rig.logs()
    );
    let j = report(&r);
    (o, j)
}

/// Each call registers its CSV row's user: challenged with 401, retried with
/// the right password, 200. Kamailio then holds all 1,000.
#[test]
fn our_register_of_1000_users_at_500_per_second() {
    let Some(rig) = AuthRig::start("ours-reg") else {
        return;
    };
    let csv = users_csv("auth-ours-reg.csv", 1000, Passwords::Right);
    let (_, j) = our_run(&rig, "register", "auth-ours-reg", &csv, 1000, 500);
    assert_calls(&j, 1000, 0);
    assert_eq!(j["auth"]["challenges"], 1000, "{j}");
    assert_eq!(j["auth"]["retries"], 1000, "{j}");
    assert_eq!(j["auth"]["failures"], 0, "{j}");
    assert_eq!(j["failures"]["auth"], 0, "{j}");
    assert_eq!(rig.registered_users(), 1000, "{}", rig.logs());
    assert!(rig.contact(&user(1000)).is_some(), "{}", rig.logs());
}

/// Wrong passwords: each REGISTER is retried once, challenged again, and the
/// call fails as an auth failure (not a timeout: no retry loop, no waiting).
#[test]
fn our_register_with_wrong_passwords_fails_on_auth() {
    let Some(rig) = AuthRig::start("ours-wrong") else {
        return;
    };
    let csv = users_csv("auth-ours-wrong.csv", 1000, Passwords::Wrong);
    let (_, j) = our_run(&rig, "register", "auth-ours-wrong", &csv, 1000, 500);
    assert_calls(&j, 0, 1000);
    assert_eq!(j["failures"]["auth"], 1000, "{j}");
    assert_eq!(j["failures"]["timeout"], 0, "{j}");
    assert_eq!(j["auth"]["failures"], 1000, "{j}");
    assert_eq!(rig.registered_users(), 0, "{}", rig.logs());
}

/// `run register-then-call`: each call registers its CSV user with the Contact
/// on our uas (`--set contact=`), then calls that user through the proxy,
/// which challenges the INVITE with 407 and relays it to the registered
/// Contact: our uas answers every call.
#[test]
fn our_register_then_call_through_kamailio() {
    let Some(rig) = AuthRig::start("ours-rtc") else {
        return;
    };
    const N: u64 = 100;
    let uas_port = free_udp_port();
    let n = N.to_string();
    let (uas, uas_report) = our_uas(uas_port, "auth-ours-rtc-uas", &n);
    let csv = users_csv("auth-ours-rtc.csv", N as usize, Passwords::Right);
    let r = scratch("auth-ours-rtc.json");
    let target = rig.target();
    let o = sipwright(&[
        "run",
        "register-then-call",
        "--target",
        &target,
        "--inject",
        csv.to_str().unwrap(),
        "--set",
        &format!("contact=127.0.0.1:{uas_port}"),
        "--rate",
        "50",
        "--calls",
        &n,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    let uas_status = uas.wait();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), rig.logs());
    let j = report(&r);
    assert_calls(&j, N, 0);
    // Each call: a 401 to its REGISTER and a 407 to its INVITE.
    assert_eq!(j["auth"]["challenges"], 2 * N, "{j}");
    assert_eq!(j["auth"]["failures"], 0, "{j}");
    assert_eq!(rig.registered_users(), N, "{}", rig.logs());
    assert!(uas_status.is_some_and(|s| s.success()), "{}", rig.logs());
    assert_calls(&report(&uas_report), N, 0);
}

/// A registrar that wants longer registrations (423 with Min-Expires 600) and
/// gives a Service-Route: `register-then-call` asks again for 600 s without
/// any scenario step for it, and its INVITEs follow the Service-Route.
#[test]
fn register_then_call_handles_423_and_service_route() {
    let options = AuthOptions {
        min_expires: Some(600),
        service_route: true,
        ..AuthOptions::default()
    };
    let Some(rig) = AuthRig::start_with("ours-423", options) else {
        return;
    };
    const N: u64 = 20;
    let uas_port = free_udp_port();
    let n = N.to_string();
    let (uas, _) = our_uas(uas_port, "auth-ours-423-uas", &n);
    let csv = users_csv("auth-ours-423.csv", N as usize, Passwords::Right);
    let r = scratch("auth-ours-423.json");
    let trace = scratch("auth-ours-423.txt");
    let target = rig.target();
    let o = sipwright(&[
        "run",
        "register-then-call",
        "--target",
        &target,
        "--inject",
        csv.to_str().unwrap(),
        "--set",
        &format!("contact=127.0.0.1:{uas_port}"),
        "--set",
        "expires=60",
        "--rate",
        "20",
        "--calls",
        &n,
        "--quiet",
        "--trace-msg",
        trace.to_str().unwrap(),
        "--report",
        r.to_str().unwrap(),
    ]);
    let uas_status = uas.wait();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), rig.logs());
    assert_calls(&report(&r), N, 0);
    assert!(uas_status.is_some_and(|s| s.success()), "{}", rig.logs());
    assert_eq!(rig.registered_users(), N, "{}", rig.logs());
    let msgs = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(msgs.matches("SIP/2.0 423 ").count(), N as usize);
    let lines = |text: &str| msgs.lines().filter(|l| l.trim_end() == text).count();
    assert_eq!(
        lines("Expires: 600"),
        N as usize,
        "asked again with Min-Expires"
    );
    // Each INVITE carries the Service-Route as its Route (the ACK and BYE then
    // follow the dialog's route set).
    let route = format!("Route: <sip:127.0.0.1:{};lr>", rig.port);
    assert!(lines(&route) >= N as usize, "no INVITE with {route}");
}

/// Our uac with a scenario `auth:` (tests/fixtures/kamailio/uac-auth.yaml),
/// each call from its CSV user, to one callee that SIPp registered
/// (register.xml with its Contact on our uas): the 407 is answered
/// automatically and every call reaches the uas. (Not a SIPp uas: it sends
/// its responses to where a call's first request came from, so without a
/// Record-Route in its 200 the 200 to our BYE — sent to its Contact, as RFC
/// 3261 asks — would go to the proxy instead of us.)
#[test]
fn our_uac_with_auth_through_kamailio_407() {
    if require("sipp").is_none() {
        return;
    }
    let Some(rig) = AuthRig::start("ours-uac") else {
        return;
    };
    const N: u64 = 50;
    let uas_port = free_udp_port();
    // The callee: u000001, registered with the uas as its Contact.
    let reg = sipp_register(
        &rig,
        "auth-ours-uac-reg",
        1,
        Passwords::Right,
        "10",
        Some(uas_port),
    );
    reg.assert_all_succeeded(1, &rig.logs());
    let n = N.to_string();
    let (uas, uas_report) = our_uas(uas_port, "auth-ours-uac-uas", &n);

    let csv = users_csv("auth-ours-uac.csv", N as usize, Passwords::Right);
    let scenario = common::kamailio::kamailio_fixture("uac-auth.yaml");
    let r = scratch("auth-ours-uac.json");
    let target = rig.target();
    let o = sipwright(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &target,
        "--inject",
        csv.to_str().unwrap(),
        "--set",
        &format!("callee={}", user(1)),
        "--rate",
        "20",
        "--calls",
        &n,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    let uas_status = uas.wait();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), rig.logs());
    let j = report(&r);
    assert_calls(&j, N, 0);
    assert_eq!(j["auth"]["challenges"], N, "{j}");
    assert_eq!(j["auth"]["failures"], 0, "{j}");
    assert!(uas_status.is_some_and(|s| s.success()), "{}", rig.logs());
    assert_calls(&report(&uas_report), N, 0);
}

/// Our built-in uas on 127.0.0.1:`port` for `calls` calls, in the background,
/// and where its report goes.
fn our_uas(port: u16, tag: &str, calls: &str) -> (Background, std::path::PathBuf) {
    let r = scratch(&format!("{tag}.json"));
    let bind = format!("127.0.0.1:{port}");
    let uas = Background::start(&[
        "run",
        "uas",
        "--bind",
        &bind,
        "--calls",
        calls,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert!(
        wait_until_bound(port, false, Duration::from_secs(5)),
        "our uas does not listen on {bind}"
    );
    (uas, r)
}

/// A scenario's `auth:` block answers the registrar's 401 with no retry steps; a
/// wrong password fails each call with reason `auth`, not a timeout.
#[test]
fn our_auth_block_answers_the_401_and_wrong_passwords_fail_on_auth() {
    let Some(rig) = AuthRig::start("our-auth-block") else {
        return;
    };
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kamailio/register-auth.yaml");
    let target = rig.target();
    for (password, ok) in [("pw-u000001", true), ("wrong", false)] {
        let r = scratch(&format!("our-auth-block-{password}.json"));
        let set = format!("password={password}");
        let o = sipwright(&[
            "run",
            scenario.to_str().unwrap(),
            "--target",
            &target,
            "--set",
            &set,
            "--calls",
            "10",
            "--rate",
            "20",
            "--quiet",
            "--report",
            r.to_str().unwrap(),
        ]);
        let j = report(&r);
        if ok {
            assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), rig.logs());
            assert_eq!(j["calls"]["succeeded"], 10, "{j:#}");
            assert_eq!(j["auth"]["challenges"], 10, "{j:#}");
            assert_eq!(j["auth"]["retries"], 10, "{j:#}");
            assert_eq!(rig.registered_users(), 1, "{}", rig.logs());
        } else {
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert_eq!(j["calls"]["failed"], 10, "{j:#}");
            assert_eq!(j["failures"]["auth"], 10, "{j:#}");
            assert_eq!(j["failures"]["timeout"], 0, "{j:#}");
            assert_eq!(j["auth"]["failures"], 10, "{j:#}");
        }
    }
}

//! Digest authentication interop with SIPp (Debian `sip-tester`) on 127.0.0.1,
//! with no proxy in between: SIPp as the client (its `[authentication]`
//! keyword, users from `-inf`) against our challenging UAS (`run uas-challenge
//! --inject users.csv`: 401, then checks the retried request against the
//! CSV's password).
//!
//! Only that direction exists. SIPp cannot challenge: `-au`/`-ap` and
//! `[authentication]` are client-side (they answer a 401/407), and SIPp has
//! no way to verify an Authorization header, so our uac's `auth:` is tested
//! against Kamailio instead (tests/auth_kamailio.rs).
//!
//! Skipped with a printed reason when `sipp` is missing, except under CI=true
//! where that is a failure.

mod common;
use common::process::wait_until_bound;
use common::registrar::{Passwords, sipp_scenario, sipp_users, users_csv};
use common::sipp::{Sipp, SippResult};
use common::*;

use std::time::Duration;

const USERS: u64 = 100;

/// Our challenging UAS for `USERS` calls, with the right passwords in its
/// CSV; SIPp registers the users (register.xml) with `passwords`. Both
/// results: SIPp's, our exit code and report.
fn sipp_registers_with_our_uas(
    tag: &str,
    passwords: Passwords,
) -> Option<(SippResult, Option<i32>, serde_json::Value)> {
    require("sipp")?;
    let port = free_udp_port();
    let bind = format!("127.0.0.1:{port}");
    let ours = users_csv(&format!("{tag}-ours.csv"), USERS as usize, Passwords::Right);
    reverse_rows(&ours);
    let r = scratch(&format!("{tag}.json"));
    let calls = USERS.to_string();
    let uas = Background::start(&[
        "run",
        "uas-challenge",
        "--bind",
        &bind,
        "--inject",
        ours.to_str().unwrap(),
        "--calls",
        &calls,
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert!(
        wait_until_bound(port, false, Duration::from_secs(5)),
        "our uas-challenge does not listen on {bind}"
    );
    let theirs = sipp_users(&format!("{tag}-sipp.csv"), USERS as usize, passwords);
    let contact_port = free_udp_port().to_string();
    let (sipp, _) = Sipp::client(
        tag,
        &bind,
        &sipp_scenario("register.xml"),
        &[
            "-inf",
            theirs.to_str().unwrap(),
            "-key",
            "contact_port",
            &contact_port,
        ],
        USERS,
        "50",
    );
    let s = sipp.finish();
    let status = uas.wait().and_then(|s| s.code());
    let j = if r.exists() {
        report(&r)
    } else {
        serde_json::Value::Null
    };
    Some((s, status, j))
}

/// Our CSV upside down: call k's row is no longer user k's, so every caller
/// is checked against its own line only through `lookup: user`.
fn reverse_rows(csv: &std::path::Path) {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(csv, lines.join("\n") + "\n").unwrap();
}

/// SIPp's `[authentication]` answers our 401 with the right passwords: every
/// REGISTER succeeds on both sides.
#[test]
fn sipp_registers_against_our_challenging_uas() {
    let Some((s, status, j)) = sipp_registers_with_our_uas("auth-sipp-ours", Passwords::Right)
    else {
        return;
    };
    s.assert_all_succeeded(USERS, "");
    assert_eq!(status, Some(0), "our uas-challenge failed\n{j}");
    assert_calls(&j, USERS, 0);
    // Challenges we sent (`challenges` counts those we receive, as a client).
    assert_eq!(j["auth"]["sent"], USERS, "{j}");
    assert_eq!(j["auth"]["failures"], 0, "{j}");
}

/// Wrong passwords: our UAS answers every retried REGISTER 403 (register.xml
/// waits for a 200, so SIPp fails each call) and counts an auth failure for each.
#[test]
fn sipp_with_wrong_passwords_is_refused_by_our_uas() {
    let Some((s, _, j)) = sipp_registers_with_our_uas("auth-sipp-ours-wrong", Passwords::Wrong)
    else {
        return;
    };
    assert_eq!((s.succeeded, s.failed), (0, USERS), "{}", s.text);
    assert_eq!(j["auth"]["failures"], USERS, "{j}");
}

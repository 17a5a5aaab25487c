//! Per-call data (`--inject`, `inject:`) and the REGISTER built-ins on loopback:
//! `register` against the built-in `uas-challenge`, both sides reading the same
//! file. No external programs.

mod common;
use common::registrar::{Passwords, users_csv};
use common::*;

fn run(args: &[&str], tag: &str) -> (std::process::Output, serde_json::Value) {
    let r = scratch(&format!("{tag}.json"));
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--quiet", "--report", r.to_str().unwrap()]);
    let o = sipwright(&all);
    let j = if r.exists() {
        report(&r)
    } else {
        serde_json::Value::Null
    };
    (o, j)
}

/// Each call registers its row's user; the challenging peer looks the user up in
/// the same file and checks the password.
#[test]
fn register_on_loopback_with_users_from_a_csv() {
    let csv = users_csv("inject-register.csv", 300, Passwords::Right);
    let (o, j) = run(
        &[
            "run",
            "register",
            "--loopback",
            "--inject",
            csv.to_str().unwrap(),
            "--inject-order",
            "random",
            "--calls",
            "300",
            "--rate",
            "300",
        ],
        "inject-register",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_calls(&j, 300, 0);
    assert_eq!(j["auth"]["challenges_401"], 300, "{j}");
    assert_eq!(j["auth"]["retries"], 300, "{j}");
    assert_eq!(j["transactions"]["REGISTER"]["completed"], 600, "{j}");
    assert_eq!(j["latency_ms"]["auth_round_trip"]["count"], 300, "{j}");
}

/// Refreshes at half the granted expiry and the removal at the end: each a new
/// transaction with the same Call-ID, which the peer takes as a new call.
#[test]
fn register_refreshes_and_unregisters() {
    let csv = users_csv("inject-refresh.csv", 10, Passwords::Right);
    let (o, j) = run(
        &[
            "run",
            "register",
            "--loopback",
            "--inject",
            csv.to_str().unwrap(),
            "--set",
            "expires=2",
            "--set",
            "refreshes=1",
            "--set",
            "unregister=yes",
            "--calls",
            "10",
            "--rate",
            "20",
        ],
        "inject-refresh",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_calls(&j, 10, 0);
    // Register, refresh, remove: three challenged REGISTERs per call.
    assert_eq!(j["auth"]["challenges"], 30, "{j}");
    assert_eq!(j["transactions"]["REGISTER"]["completed"], 60, "{j}");
}

/// A SIPp `-inf` file works unchanged once its fields are named; unnamed, the
/// run warns that nothing reads its columns.
#[test]
fn sipp_injection_files_with_named_fields() {
    let path = scratch("inject-sipp.csv");
    let mut lines = String::from("SEQUENTIAL\n# SIPp's format\n");
    for i in 1..=20 {
        lines.push_str(&format!("u{i:06};pw-u{i:06};\n"));
    }
    std::fs::write(&path, lines).unwrap();
    let file = path.to_str().unwrap();
    let (o, j) = run(
        &[
            "run",
            "register",
            "--loopback",
            "--inject",
            file,
            "--inject-columns",
            "user,password",
            "--calls",
            "20",
            "--rate",
            "100",
        ],
        "inject-sipp",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_calls(&j, 20, 0);

    let o = sipwright(&[
        "run",
        "register",
        "--loopback",
        "--inject",
        file,
        "--calls",
        "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no template of `register` reads its columns (field0, field1)"),
        "{}",
        text(&o)
    );
    assert_eq!(o.status.code(), Some(2), "the peer's lookup needs `user`");
}

/// Errors in the file name the file and line; a scenario's own `inject:` is read
/// beside the scenario and checked by `check`.
#[test]
fn injection_file_errors_name_the_line() {
    let bad = scratch("inject-bad.csv");
    std::fs::write(&bad, "user,password\nalice,a\nbob\n").unwrap();
    let o = sipwright(&[
        "run",
        "register",
        "--loopback",
        "--inject",
        bad.to_str().unwrap(),
        "--calls",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "{}:3: row has 1 field(s), expected 2",
            bad.display()
        )),
        "{err}"
    );

    let dir = scratch("inject-scenario");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("people.csv"), "who\nalice\nbob\n").unwrap();
    let scenario = dir.join("options.yaml");
    std::fs::write(
        &scenario,
        "inject: {file: people.csv, order: per-worker}\nsteps:\n  - send: |\n      OPTIONS sip:{{ who }}@{{ remote_ip }}:{{ remote_port }} SIP/2.0\n      Via: SIP/2.0/UDP {{ local_ip }}:{{ local_port }};branch={{ branch }}\n      From: <sip:a@b>;tag={{ from_tag }}\n      To: <sip:{{ who }}@b>\n      Call-ID: {{ call_id }}\n      CSeq: {{ cseq }} OPTIONS\n      Content-Length: 0\n  - recv: 200\n",
    )
    .unwrap();
    let o = sipwright(&["check", scenario.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(dir.join("people.csv"), "name\nalice\n").unwrap();
    let o = sipwright(&["check", scenario.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("undefined variable `who`") && err.contains("(its columns: name)"),
        "{err}"
    );
}

//! `check`, `scenarios`, usage errors and exit codes.

mod common;
use common::*;

fn fixture_path(name: &str) -> String {
    format!(
        "{}/tests/fixtures/scenarios/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn check_reports_file_line_col_and_exits_2() {
    for (file, want) in [
        ("unknown_step.yaml", ":5:5: unknown step `sned`"),
        ("bad_yaml.yaml", ":3:11:"),
        ("unknown_recv_field.yaml", ":4:5: unknown key `optinal`"),
        (
            "semantic_errors.yaml",
            ":10:14: undefined variable `servce`",
        ),
        ("semantic_errors.yaml", ":23:11: no label `nowhere`"),
    ] {
        let path = fixture_path(file);
        let o = sipwright(&["check", &path]);
        assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{path}{want}")),
            "{file}: want `{want}` in:\n{err}"
        );
    }
}

#[test]
fn run_with_a_broken_scenario_exits_2_before_sending() {
    let o = sipwright(&[
        "run",
        &fixture_path("semantic_errors.yaml"),
        "--loopback",
        "--calls",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("semantic_errors.yaml:10:14:"));
}

#[test]
fn check_accepts_valid_files_and_builtins() {
    let o = sipwright(&[
        "check",
        &fixture_path("uac_basic.yaml"),
        "uac",
        "uas",
        "options",
        "cancel",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn scenarios_lists_and_shows_builtins() {
    let o = sipwright(&["scenarios"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for name in ["uac", "uas", "options", "cancel"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name} in {out}");
    }
    let o = sipwright(&["scenarios", "show", "uas"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("{{ last.record_route }}"));
    let o = sipwright(&["scenarios", "show", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["run"],
        vec!["run", "uac"],
        vec!["run", "no-such-scenario", "--loopback"],
        vec!["run", "uac", "--loopback", "--rate", "0"],
        vec!["run", "uac", "--loopback", "--set", "novalue"],
        vec!["run", "uac", "--target", "127.0.0.1:notaport"],
        vec!["run", "uac", "--loopback", "--call-duration", "5"],
        vec!["frobnicate"],
    ] {
        let o = sipwright(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

//! Calls through a Kamailio stateful, record-routing proxy
//! (tests/fixtures/kamailio/proxy.cfg): our `uac` → kamailio → our `uas`, over
//! UDP on 127.0.0.1. Skipped with a printed reason when `kamailio` is missing,
//! except under CI=true where that is a failure.

mod common;
use common::*;

use common::kamailio::{answers_options, kamailio_fixture, spawn_kamailio};
use common::process::{interrupt, stop_group, tail, wait_ready};

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

/// A file of tests/fixtures/kamailio as a command-line argument.
fn fixture_path(name: &str) -> String {
    kamailio_fixture(name).display().to_string()
}

/// Our UAS behind kamailio. Dropping it stops both, whatever happened to the
/// test: kamailio runs in its own process group (main process plus workers),
/// which gets SIGTERM, then SIGKILL if it lingers.
struct Rig {
    proxy_port: u16,
    uas: Option<Child>,
    uas_report: PathBuf,
    kamailio: Option<Child>,
    kamailio_log: PathBuf,
}

impl Rig {
    /// Starts `run <uas_scenario>` and a kamailio routing to it, and waits until
    /// an OPTIONS through the proxy is answered. None when kamailio is missing.
    fn start(tag: &str, uas_scenario: &str) -> Option<Rig> {
        let kamailio = require("kamailio")?;
        let uas_port = free_udp_port();
        let proxy_port = free_udp_port();
        let uas_report = scratch(&format!("kam-{tag}-uas.json"));
        let mut rig = Rig {
            proxy_port,
            uas: None,
            uas_report,
            kamailio: None,
            kamailio_log: PathBuf::new(),
        };
        rig.uas = Some(
            Command::new(bin())
                .args(["run", uas_scenario, "--bind"])
                .arg(format!("127.0.0.1:{uas_port}"))
                .args(["--quiet", "--drain-timeout", "1s", "--report"])
                .arg(&rig.uas_report)
                .spawn()
                .expect("start our uas"),
        );
        let (child, log) = spawn_kamailio(
            &kamailio,
            &kamailio_fixture("proxy.cfg"),
            &format!("kam-{tag}"),
            1024,
            &[
                format!("LISTEN_PORT={proxy_port}"),
                format!("UAS_PORT={uas_port}"),
            ],
        );
        rig.kamailio = Some(child);
        rig.kamailio_log = log;

        // The OPTIONS goes through the proxy to our uas (which answers OPTIONS
        // statelessly), so a 200 means the whole chain is up.
        let target = format!("sip:127.0.0.1:{proxy_port}");
        let log = rig.kamailio_log.clone();
        wait_ready(
            rig.kamailio.as_mut().unwrap(),
            "kamailio",
            Duration::from_secs(5),
            || answers_options(&target),
            || format!("kamailio log:\n{}", tail(&log, 30)),
        );
        Some(rig)
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.proxy_port)
    }

    /// The last lines of kamailio's log, for failure messages.
    fn kamailio_log(&self) -> String {
        tail(&self.kamailio_log, 30)
    }

    /// Interrupts the uas (it drains and writes its report) and returns the report.
    fn stop_uas(&mut self) -> serde_json::Value {
        let uas = self.uas.take().expect("uas running");
        if interrupt(uas, Duration::from_secs(5)).is_none() {
            panic!("our uas did not exit within 5 s of SIGINT");
        }
        report(&self.uas_report)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut uas) = self.uas.take() {
            let _ = uas.kill();
            let _ = uas.wait();
        }
        if let Some(kam) = self.kamailio.take() {
            stop_group(kam);
        }
    }
}

/// The built-in `uac` and `uas`, 300 calls at 150 calls/s through the proxy.
#[test]
fn calls_through_kamailio() {
    let Some(mut rig) = Rig::start("calls", "uas") else {
        return;
    };
    let r = scratch("kam-calls-uac.json");
    // A 200 ms call: the built-in uac sends ACK and BYE back to back with the
    // default 0 s, kamailio's two UDP workers can swap them, and our uas fails
    // a call whose BYE overtakes the ACK (see `bye_right_after_ack` below).
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &rig.target(),
        "--calls",
        "300",
        "--rate",
        "150",
        "--call-duration",
        "200ms",
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\nkamailio log:\n{}",
        text(&o),
        rig.kamailio_log()
    );
    let j = report(&r);
    assert_eq!(j["calls"]["started"], 300, "{j}");
    assert_eq!(j["calls"]["succeeded"], 300, "{j}");
    assert_eq!(j["calls"]["failed"], 0, "{j}");

    let u = rig.stop_uas();
    assert_eq!(u["calls"]["succeeded"], 300, "{u}");
    assert_eq!(u["calls"]["failed"], 0, "{u}");
}

/// Record-routing is respected: the 200 carries the proxy's Record-Route, and
/// the ACK and BYE reach the uas through the proxy (two Vias, Max-Forwards 69,
/// Route consumed) — asserted by the two scenarios on each side.
#[test]
fn ack_and_bye_follow_the_record_route() {
    let Some(mut rig) = Rig::start("route", &fixture_path("uas-check-route.yaml")) else {
        return;
    };
    let r = scratch("kam-route-uac.json");
    let o = sipwright(&[
        "run",
        &fixture_path("uac-check-route.yaml"),
        "--target",
        &rig.target(),
        "--calls",
        "5",
        "--rate",
        "20",
        "--report",
        r.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(&r)["calls"]["succeeded"], 5);

    let u = rig.stop_uas();
    assert_eq!(u["calls"]["succeeded"], 5, "{u}");
    assert_eq!(u["failures"]["assert_failed"], 0, "{u}");
}

/// The built-in uac with its default 0 s call duration sends the BYE some
/// microseconds after the ACK; kamailio's two workers forward them in parallel
/// and the BYE often reaches the uas first. RFC 3261 allows that (ACK and BYE
/// are separate transactions over UDP): the built-in uas must still succeed.
#[test]
fn bye_right_after_ack() {
    let Some(mut rig) = Rig::start("race", "uas") else {
        return;
    };
    let r = scratch("kam-race-uac.json");
    let o = sipwright(&[
        "run",
        "uac",
        "--target",
        &rig.target(),
        "--calls",
        "300",
        "--rate",
        "150",
        "--quiet",
        "--report",
        r.to_str().unwrap(),
    ]);
    let u = rig.stop_uas();
    assert_eq!(o.status.code(), Some(0), "{}\nuas report: {u}", text(&o));
    assert_eq!(u["calls"]["succeeded"], 300, "{u}");
}

//! Calls through a Kamailio stateful, record-routing proxy
//! (tests/fixtures/kamailio/proxy.cfg): our `uac` → kamailio → our `uas`, over
//! UDP on 127.0.0.1. Skipped with a printed reason when `kamailio` is missing,
//! except under CI=true where that is a failure.

mod common;
use common::*;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn kamailio_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kamailio")
        .join(name)
        .display()
        .to_string()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Waits up to `limit` for `child` to exit.
fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
        let kamailio_log = scratch(&format!("kam-{tag}.log"));
        let run_dir = scratch(&format!("kam-{tag}-run"));
        std::fs::create_dir_all(&run_dir).unwrap();

        let mut rig = Rig {
            proxy_port,
            uas: None,
            uas_report,
            kamailio: None,
            kamailio_log,
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
        let log = File::create(&rig.kamailio_log).unwrap();
        rig.kamailio = Some(
            Command::new(kamailio)
                .args(["-f", &kamailio_fixture("proxy.cfg")])
                .args(["-DD", "-E", "-m", "1024", "-M", "32", "-Y"])
                .arg(&run_dir)
                .arg("-A")
                .arg(format!("LISTEN_PORT={proxy_port}"))
                .arg("-A")
                .arg(format!("UAS_PORT={uas_port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("start kamailio"),
        );

        // The OPTIONS goes through the proxy to our uas (which answers OPTIONS
        // statelessly), so a 200 means the whole chain is up.
        let target = format!("sip:127.0.0.1:{proxy_port}");
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let o = sipwright(&["options", &target, "--timeout", "300ms"]);
            if o.status.success() {
                break;
            }
            if let Some(status) = rig.kamailio.as_mut().unwrap().try_wait().unwrap() {
                panic!("kamailio exited ({status}):\n{}", rig.kamailio_log());
            }
            assert!(
                Instant::now() < end,
                "proxy not answering after 5 s: {}\nkamailio log:\n{}",
                text(&o),
                rig.kamailio_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(rig)
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.proxy_port)
    }

    /// The last lines of kamailio's log, for failure messages.
    fn kamailio_log(&self) -> String {
        let log = std::fs::read_to_string(&self.kamailio_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Interrupts the uas (it drains and writes its report) and returns the report.
    fn stop_uas(&mut self) -> serde_json::Value {
        let mut uas = self.uas.take().expect("uas running");
        signal(uas.id() as i32, libc::SIGINT);
        let status = wait_for(&mut uas, Duration::from_secs(5));
        if status.is_none() {
            let _ = uas.kill();
            let _ = uas.wait();
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
        if let Some(mut kam) = self.kamailio.take() {
            let pgid = kam.id() as i32;
            signal(-pgid, libc::SIGTERM);
            if wait_for(&mut kam, Duration::from_secs(3)).is_none() {
                let _ = kam.kill();
                let _ = kam.wait();
            }
            // Workers that outlived the main process.
            signal(-pgid, libc::SIGKILL);
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
    let Some(mut rig) = Rig::start("route", &kamailio_fixture("uas-check-route.yaml")) else {
        return;
    };
    let r = scratch("kam-route-uac.json");
    let o = sipwright(&[
        "run",
        &kamailio_fixture("uac-check-route.yaml"),
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

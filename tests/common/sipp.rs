//! SIPp (Debian `sip-tester`) in the foreground, so its exit code is ours to read
//! (unlike `-bg`), with its statistics and errors in scratch files and a process we
//! kill on drop. Callers check `require("sipp")` first.

use super::process::{wait_for, wait_until_bound};
use super::{free_tcp_port, free_udp_port, scratch};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Sipp {
    child: Option<Child>,
    stats: PathBuf,
    screen: PathBuf,
    errors: PathBuf,
}

/// What a finished SIPp run says: its exit code (0 only when every call
/// succeeded) and its cumulative call counts from `-trace_stat`.
#[derive(Debug)]
pub struct SippResult {
    pub code: Option<i32>,
    pub succeeded: u64,
    pub failed: u64,
    /// Exit status, the end of its screen and its first errors, for messages.
    pub text: String,
}

impl SippResult {
    /// SIPp exited 0 with all `calls` counted as successes; `context` (a
    /// proxy's log) goes into the failure message.
    pub fn assert_all_succeeded(&self, calls: u64, context: &str) {
        assert_eq!(self.code, Some(0), "{}\n{context}", self.text);
        assert_eq!(self.succeeded, calls, "{}\n{context}", self.text);
        assert_eq!(self.failed, 0, "{}\n{context}", self.text);
    }
}

impl Sipp {
    /// A uas on 127.0.0.1:`port` with transport `mode` (`u1`, `t1`, `tn`) running
    /// `scenario` (`-sn uas` or `-sf FILE`), ending after `calls` calls; returns
    /// once its socket is bound.
    pub fn uas(tag: &str, port: u16, mode: &str, scenario: [&str; 2], calls: u64) -> Sipp {
        let port_arg = port.to_string();
        let sipp = Sipp::spawn(
            tag,
            calls,
            &[scenario[0], scenario[1], "-p", &port_arg, "-t", mode],
        );
        assert!(
            wait_until_bound(port, mode != "u1", Duration::from_secs(5)),
            "SIPp ({tag}) did not bind {mode} port {port}"
        );
        sipp
    }

    /// The built-in uac calling `target` (host:port) with transport `mode`, `calls`
    /// calls at `rate` calls/s.
    pub fn uac(tag: &str, target: &str, mode: &str, calls: u64, rate: &str) -> Sipp {
        // -p: the local port of its first socket; a free one, so parallel tests
        // do not collide on SIPp's default 5060.
        let local = if mode == "u1" {
            free_udp_port()
        } else {
            free_tcp_port()
        };
        let local = local.to_string();
        Sipp::spawn(
            tag,
            calls,
            &["-sn", "uac", target, "-p", &local, "-t", mode, "-r", rate],
        )
    }

    /// SIPp as a client over UDP running the scenario file `scenario` against
    /// `target` (host:port), `calls` calls at `rate` calls/s, with `extra`
    /// arguments (`-inf FILE`, `-key NAME VALUE`). Its own port is a free one,
    /// returned with it.
    pub fn client(
        tag: &str,
        target: &str,
        scenario: &Path,
        extra: &[&str],
        calls: u64,
        rate: &str,
    ) -> (Sipp, u16) {
        let local = free_udp_port();
        let local_arg = local.to_string();
        let mut args = vec![
            target,
            "-sf",
            scenario.to_str().unwrap(),
            "-p",
            &local_arg,
            "-t",
            "u1",
            "-r",
            rate,
        ];
        args.extend_from_slice(extra);
        (Sipp::spawn(tag, calls, &args), local)
    }

    fn spawn(tag: &str, calls: u64, args: &[&str]) -> Sipp {
        let stats = scratch(&format!("sipp-{tag}.csv"));
        let screen = scratch(&format!("sipp-{tag}.screen"));
        let errors = scratch(&format!("sipp-{tag}.errors"));
        let child = Command::new("sipp")
            .args(args)
            .args(["-i", "127.0.0.1", "-m", &calls.to_string(), "-nostdin"])
            // -timeout: SIPp gives up by itself whatever happens.
            // -max_socket: SIPp's default (50,000) is above this machine's open
            // file limit, and SIPp refuses to start over TCP when it is.
            .args([
                "-buff_size",
                "4194304",
                "-timeout",
                "60s",
                "-max_socket",
                "1000",
            ])
            .arg("-trace_stat")
            .arg("-stf")
            .arg(&stats)
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&errors)
            .stdin(Stdio::null())
            .stdout(File::create(&screen).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        Sipp {
            child: Some(child),
            stats,
            screen,
            errors,
        }
    }

    /// Waits (up to 90 s) for SIPp to exit and reads its results.
    pub fn finish(self) -> SippResult {
        self.end(Duration::from_secs(90))
    }

    /// Stops SIPp now (the other side already failed: no need to wait for its
    /// timeout) and reads what it has.
    pub fn kill(self) -> SippResult {
        self.end(Duration::ZERO)
    }

    fn end(mut self, limit: Duration) -> SippResult {
        let mut child = self.child.take().expect("sipp running");
        let status = wait_for(&mut child, limit);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (succeeded, failed) = counts(&self.stats);
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        let screen = read(&self.screen);
        let screen_tail: Vec<&str> = screen.lines().rev().take(40).collect();
        let errors = read(&self.errors);
        let error_head: Vec<&str> = errors.lines().take(20).collect();
        SippResult {
            code: status.and_then(|s| s.code()),
            succeeded,
            failed,
            text: format!(
                "sipp exit {:?}\nscreen (last lines, newest first):\n{}\nerrors:\n{}",
                status,
                screen_tail.join("\n"),
                error_head.join("\n")
            ),
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// SuccessfulCall(C) and FailedCall(C) from the last row of a `-trace_stat` file
/// (`;`-separated, a header row first); 0 when missing.
fn counts(stats: &Path) -> (u64, u64) {
    let csv = std::fs::read_to_string(stats).unwrap_or_default();
    let mut rows = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = rows.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = rows.next_back().unwrap_or("").split(';').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| last.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (column("SuccessfulCall(C)"), column("FailedCall(C)"))
}

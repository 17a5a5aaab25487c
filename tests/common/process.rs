//! Starting and stopping the external peers (Kamailio, rtpengine, SIPp): each runs
//! in its own process group so that its workers go with it, and every wait has a
//! limit so a stuck peer fails the test instead of hanging it.

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Waits up to `limit` for `child` to exit.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
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

/// Calls `ready` every 50 ms until it says Ok: a peer that was just started
/// answers. Panics when `child` (the peer, `name`) exits first or `limit` passes,
/// with the last complaint of `ready` and the peer's `logs()`.
pub fn wait_ready(
    child: &mut Child,
    name: &str,
    limit: Duration,
    mut ready: impl FnMut() -> Result<(), String>,
    logs: impl Fn() -> String,
) {
    let end = Instant::now() + limit;
    loop {
        let why = match ready() {
            Ok(()) => return,
            Err(why) => why,
        };
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited ({status})\n{}", logs());
        }
        assert!(
            Instant::now() < end,
            "{name} not ready after {limit:?}: {why}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM to the child's process group (it was spawned with `process_group(0)`),
/// SIGKILL if it is still there after 3 s.
pub fn stop_group(mut child: Child) {
    let pgid = child.id() as i32;
    signal(-pgid, libc::SIGTERM);
    if wait_for(&mut child, Duration::from_secs(3)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // Workers that outlived the main process.
    signal(-pgid, libc::SIGKILL);
}

/// SIGINT (how a user stops a run: it drains and writes its report), then up to
/// `limit` for it to exit; killed after that. None when it had to be killed.
pub fn interrupt(mut child: Child, limit: Duration) -> Option<ExitStatus> {
    signal(child.id() as i32, libc::SIGINT);
    let status = wait_for(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Waits up to `limit` until a socket is bound to `port` on 127.0.0.1 (listening
/// TCP when `tcp`, else UDP), as /proc/net says: a peer is ready without being
/// sent anything it could count (SIPp counts every INVITE, OPTIONS or stray
/// connection), and without binding the port ourselves, which could make the
/// peer's own bind fail. False when nothing bound it in time.
pub fn wait_until_bound(port: u16, tcp: bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if bound(port, tcp) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// /proc/net/tcp and /proc/net/udp rows: `sl local_address rem_address st ...`,
/// the address as hex `0100007F:PORT` (127.0.0.1 in host byte order: the other
/// spelling is for big-endian machines); TCP state 0A is LISTEN.
fn bound(port: u16, tcp: bool) -> bool {
    let table = if tcp {
        "/proc/net/tcp"
    } else {
        "/proc/net/udp"
    };
    let local = [
        format!("0100007F:{port:04X}"),
        format!("7F000001:{port:04X}"),
    ];
    std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|row| row.split_whitespace().collect::<Vec<_>>())
        .any(|f| f.len() > 3 && local.iter().any(|l| f[1] == l) && (!tcp || f[3] == "0A"))
}

/// The last `lines` lines of a log file, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

//! Helpers shared by the end-to-end tests: run the CLI, find free ports, and skip
//! (or fail under CI=true) when an external peer program is missing.

#![allow(dead_code)]

pub mod baresip;
pub mod certs;
pub mod kamailio;
pub mod process;
pub mod registrar;
pub mod rtpengine;
pub mod sipp;
use std::collections::BTreeSet;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sipwright")
}

pub fn sipwright(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run sipwright")
}

pub fn text(o: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A UDP port that was free a moment ago on 127.0.0.1, and that this process has
/// not handed out before.
pub fn free_udp_port() -> u16 {
    unused_port(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        (socket, port)
    })
}

/// A TCP port that was free a moment ago on 127.0.0.1, and that this process has
/// not handed out before.
pub fn free_tcp_port() -> u16 {
    unused_port(|| {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        (socket, port)
    })
}

/// The port of a socket from `bind` (to port 0) that no earlier call returned.
/// The kernel may give the next bind(0) the port of a socket just closed (std's
/// TcpListener sets SO_REUSEADDR, and Linux then readily does): a test's UAS
/// port then came back as one of Kamailio's listeners, which forwarded to
/// itself. Sockets with a port already handed out stay bound until a new one
/// turns up, so the kernel cannot offer the same one again.
fn unused_port<S>(bind: impl Fn() -> (S, u16)) -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut held = Vec::new();
    loop {
        let (socket, port) = bind();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
        held.push(socket);
    }
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sipwright-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// Path of an external program, or None after printing why the test is skipped.
/// Under CI=true a missing program is a failure, not a skip.
pub fn require(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("`{program}` is required under CI=true (.ci/run installs it)");
        }
        eprintln!("SKIPPED: `{program}` is not installed (apt-get install it, or run .ci/run)");
    }
    found
}

/// For a peer that is missing in some other way than a program on PATH (a library, its
/// headers, a Python module): print why the test is skipped, or panic under CI=true.
pub fn unavailable(why: &str, install: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}: required under CI=true ({install}; .ci/run installs it)");
    }
    eprintln!("SKIPPED: {why} ({install})");
}

pub fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

/// A report's `calls` say `succeeded` calls succeeded and `failed` failed.
pub fn assert_calls(j: &serde_json::Value, succeeded: u64, failed: u64) {
    assert_eq!(j["calls"]["succeeded"], succeeded, "{j}");
    assert_eq!(j["calls"]["failed"], failed, "{j}");
}

/// A sipwright process in the background (a UAS for the test to call); killed when
/// dropped, so a failing assertion leaves nothing running.
pub struct Background(Option<std::process::Child>);

impl Background {
    /// Start `sipwright ARGS` and give it time to bind its socket.
    pub fn start(args: &[&str]) -> Background {
        let child = Command::new(bin())
            .args(args)
            .spawn()
            .expect("start sipwright");
        std::thread::sleep(std::time::Duration::from_millis(300));
        Background(Some(child))
    }

    /// Wait for it to exit by itself (a UAS with `--calls N` after its calls); killed
    /// after 30 s so a stuck run fails the test instead of hanging it.
    pub fn wait(mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.0.take().expect("running");
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Its exit status if it has exited already (a run that refused its arguments).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGINT (the way a user stops a run), then wait for it to finish.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("running");
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        child.wait().expect("wait")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// SSRC of the packets [`varied_rtp_packet`] builds.
pub const VARIED_SSRC: u32 = 0x5eed_cafe;

/// Plain RTP packet `i` of a test stream whose sequence numbers start at 65500 and so
/// cross the wrap (packet 36 has seq 0): some with CSRCs, a header extension, padding
/// or the marker bit; payloads from 0 to a few hundred bytes.
pub fn varied_rtp_packet(i: u32) -> Vec<u8> {
    let seq = (65500 + i) as u16;
    let csrcs = if i % 5 == 3 { 2 } else { 0 };
    let ext = i % 7 == 4;
    let padding = i % 11 == 6;
    let mut p = vec![
        0x80 | csrcs | if ext { 0x10 } else { 0 } | if padding { 0x20 } else { 0 },
        if i.is_multiple_of(13) { 0x80 } else { 0 },
    ];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(i * 160).to_be_bytes());
    p.extend_from_slice(&VARIED_SSRC.to_be_bytes());
    for c in 0..csrcs {
        p.extend_from_slice(&(0x1000 + u32::from(c)).to_be_bytes());
    }
    if ext {
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x10, 0xff, 0x21, 0xaa, 0xbb, 0, 0, 0]);
    }
    let size = (i as usize * 37) % 330;
    p.extend((0..size).map(|b| (b as u32 ^ i) as u8));
    if padding {
        p.extend_from_slice(&[0, 0, 3]);
    }
    p
}

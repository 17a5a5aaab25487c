//! Kamailio with rtpengine anchoring the media of every call
//! (tests/fixtures/kamailio-rtpengine.cfg), for tests that send calls with SDP
//! through a real media relay. Both run on 127.0.0.1 on ports chosen here, so
//! tests can run in parallel; both are stopped when the `MediaRelay` is dropped,
//! whatever happened to the test. Missing programs skip the test with a printed
//! reason (a failure under CI=true, see `require`).

use super::kamailio::{answers_options, spawn_kamailio};
use super::process::{stop_group, tail, wait_ready};
use super::{require, scratch};

use std::fs::File;
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// rtpengine (userspace) and a Kamailio that asks it to relay the media.
pub struct MediaRelay {
    /// Kamailio's SIP port (UDP, 127.0.0.1).
    pub sip_port: u16,
    /// rtpengine's ng control port (UDP, 127.0.0.1).
    pub ng_port: u16,
    /// The ports rtpengine may give calls (inclusive).
    pub rtp_ports: (u16, u16),
    rtpengine: Option<Child>,
    kamailio: Option<Child>,
    rtpengine_log: PathBuf,
    kamailio_log: PathBuf,
}

impl MediaRelay {
    /// Starts rtpengine, then Kamailio sending initial requests addressed to it
    /// to 127.0.0.1:`uas_port`, and waits until both answer. None (after printing
    /// why) when `rtpengine` or `kamailio` is not installed.
    pub fn start(tag: &str, uas_port: u16) -> Option<MediaRelay> {
        MediaRelay::start_with(tag, uas_port, &[])
    }

    /// `start`, with Kamailio given `-A DEFINE` for each of `defines` (switches of
    /// the fixture, e.g. `SRTP_TO_PLAIN`).
    pub fn start_with(tag: &str, uas_port: u16, defines: &[&str]) -> Option<MediaRelay> {
        // Both lookups run, so a machine missing both says so once for each.
        let rtpengine = require("rtpengine");
        let kamailio = require("kamailio");
        let (rtpengine, kamailio) = (rtpengine?, kamailio?);

        let ng_port = super::free_udp_port();
        let sip_port = super::free_udp_port();
        // 5 calls need 4 ports each (two legs, RTP + RTCP); the rest is slack for
        // calls whose ports are still held when the next ones start.
        let rtp_ports = free_udp_range(200);

        let mut relay = MediaRelay {
            sip_port,
            ng_port,
            rtp_ports,
            rtpengine: None,
            kamailio: None,
            rtpengine_log: scratch(&format!("rtpe-{tag}-rtpengine.log")),
            kamailio_log: scratch(&format!("rtpe-{tag}-kamailio.log")),
        };

        let log = File::create(&relay.rtpengine_log).unwrap();
        relay.rtpengine = Some(
            Command::new(rtpengine)
                .args(rtpengine_args(ng_port, rtp_ports))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("start rtpengine"),
        );
        // Kamailio's rtpengine module probes its rtpengine when the workers
        // start and disables one that does not answer, so rtpengine comes first.
        relay.wait_for_rtpengine();

        let mut all = vec![
            format!("LISTEN_PORT={sip_port}"),
            format!("UAS_PORT={uas_port}"),
            format!("RTPENGINE_SOCK=\"udp:127.0.0.1:{ng_port}\""),
        ];
        all.extend(defines.iter().map(|d| d.to_string()));
        let (child, log) = spawn_kamailio(
            &kamailio,
            Path::new(&fixture_cfg()),
            &format!("rtpe-{tag}-kamailio"),
            256,
            &all,
        );
        relay.kamailio = Some(child);
        relay.kamailio_log = log;
        relay.wait_for_kamailio();
        Some(relay)
    }

    /// Where a UAC sends its calls: the proxy, which forwards them to the UAS.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.sip_port)
    }

    /// Whether `port` is one rtpengine hands out.
    pub fn relays_port(&self, port: u16) -> bool {
        (self.rtp_ports.0..=self.rtp_ports.1).contains(&port)
    }

    /// How many times rtpengine logged receiving the ng command `command`
    /// (offer, answer, delete).
    pub fn commands(&self, command: &str) -> usize {
        let needle = format!("Received command '{command}'");
        std::fs::read_to_string(&self.rtpengine_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// The last lines of both logs, for failure messages.
    pub fn logs(&self) -> String {
        logs_of(&self.log_paths())
    }

    fn wait_for_rtpengine(&mut self) {
        let ng_port = self.ng_port;
        let logs = self.log_paths();
        wait_ready(
            self.rtpengine.as_mut().unwrap(),
            "rtpengine",
            Duration::from_secs(10),
            || {
                ng_ping(ng_port)
                    .then_some(())
                    .ok_or_else(|| format!("no answer to an ng ping on 127.0.0.1:{ng_port}"))
            },
            || logs_of(&logs),
        );
    }

    fn wait_for_kamailio(&mut self) {
        // The fixture answers an OPTIONS to itself without a user part, so this
        // needs no UAS yet.
        let probe = format!("sip:127.0.0.1:{}", self.sip_port);
        let logs = self.log_paths();
        wait_ready(
            self.kamailio.as_mut().unwrap(),
            "kamailio",
            Duration::from_secs(10),
            || answers_options(&probe),
            || logs_of(&logs),
        );
    }

    fn log_paths(&self) -> (PathBuf, PathBuf) {
        (self.rtpengine_log.clone(), self.kamailio_log.clone())
    }
}

/// The last lines of both logs, for failure messages.
fn logs_of((rtpengine, kamailio): &(PathBuf, PathBuf)) -> String {
    format!(
        "rtpengine log:\n{}\nkamailio log:\n{}",
        tail(rtpengine, 30),
        tail(kamailio, 30)
    )
}

impl Drop for MediaRelay {
    fn drop(&mut self) {
        // Kamailio first: nothing then sends commands to a stopped rtpengine.
        for child in [self.kamailio.take(), self.rtpengine.take()]
            .into_iter()
            .flatten()
        {
            stop_group(child);
        }
    }
}

/// rtpengine's command line: userspace forwarding only, everything on 127.0.0.1.
pub fn rtpengine_args(ng_port: u16, (low, high): (u16, u16)) -> Vec<String> {
    vec![
        // Ignore /etc/rtpengine/rtpengine.conf (the Debian package's, written
        // for a kernel-forwarding system service).
        "--config-file=none".into(),
        // -1: no kernel forwarding table; every packet goes through userspace.
        // (Not --no-fallback: that refuses to start without the kernel module.)
        "--table=-1".into(),
        "--interface=127.0.0.1".into(),
        format!("--listen-ng=127.0.0.1:{ng_port}"),
        format!("--port-min={low}"),
        format!("--port-max={high}"),
        // Free a deleted call's ports at once instead of 30 s later.
        "--delete-delay=0".into(),
        "--foreground".into(),
        "--log-stderr".into(),
        // Info level: one line per ng command received, which `commands` counts.
        "--log-level=6".into(),
    ]
}

fn fixture_cfg() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kamailio-rtpengine.cfg")
        .display()
        .to_string()
}

/// One ng `ping` (bencode `d7:command4:pinge` after a cookie); true when
/// rtpengine answers `pong` within 200 ms.
pub fn ng_ping(port: u16) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let cookie = format!("sw{}", std::process::id());
    let request = format!("{cookie} d7:command4:pinge");
    if socket
        .send_to(request.as_bytes(), ("127.0.0.1", port))
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 512];
    match socket.recv(&mut buf) {
        Ok(n) => buf[..n] == *format!("{cookie} d6:result4:ponge").as_bytes(),
        Err(_) => false,
    }
}

/// `len` consecutive UDP ports on 127.0.0.1, all free a moment ago, starting at an
/// even port. Taken below Linux's ephemeral range (32768 and up) so that ports
/// other tests get from the kernel do not land in it; a counter keeps two relays
/// of one test process apart, the process id spreads test processes out.
pub fn free_udp_range(len: u16) -> (u16, u16) {
    const LOW: u16 = 16_000;
    const HIGH: u16 = 32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slots = (HIGH - LOW) / len;
    let start = (std::process::id() % u32::from(slots)) as u16;
    for _ in 0..slots {
        let slot = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % slots;
        let low = LOW + slot * len;
        let high = low + len - 1;
        // Hold every port of the range at once: a range is usable only if all
        // of it is free.
        let held: Result<Vec<UdpSocket>, _> = (low..=high)
            .map(|p| UdpSocket::bind(("127.0.0.1", p)))
            .collect();
        if held.is_ok() {
            return (low, high);
        }
    }
    panic!("no free range of {len} UDP ports between {LOW} and {HIGH}");
}

/// One message of a `--trace-msg` file (sipwright's or SIPp's `-trace_msg`: both
/// put a line of dashes, then "UDP message sent|received ...", a blank line and
/// the message).
#[derive(Debug)]
pub struct Traced {
    pub received: bool,
    pub text: String,
}

impl Traced {
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("").trim_end()
    }

    /// First value of header `name` (full name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
    }

    /// The message body (empty when there is none).
    pub fn body(&self) -> &str {
        self.text
            .split_once("\r\n\r\n")
            .or_else(|| self.text.split_once("\n\n"))
            .map_or("", |(_, body)| body)
    }

    /// The SDP's connection address and first audio port: (c= address, m=audio port).
    pub fn sdp_audio(&self) -> Option<(String, u16)> {
        let mut address = None;
        let mut port = None;
        for line in self.body().lines().map(str::trim_end) {
            // Session- or media-level c=: the first one serves for this check,
            // since rtpengine rewrites both.
            if let Some(c) = line.strip_prefix("c=IN IP4 ") {
                address.get_or_insert_with(|| c.to_string());
            }
            if let Some(m) = line.strip_prefix("m=audio ") {
                port = port.or_else(|| m.split(' ').next()?.parse().ok());
            }
        }
        Some((address?, port?))
    }
}

/// The messages of a trace file, in order.
pub fn read_trace(path: &Path) -> Vec<Traced> {
    let all = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut chunk: Option<Vec<&str>> = None;
    for line in all.lines().chain(std::iter::once("-----")) {
        if line.starts_with("-----") {
            if let Some(lines) = chunk.take() {
                let received = lines.first().is_some_and(|l| l.contains("received"));
                // Skip the "UDP message ..." line and the blank line after it.
                let text = lines
                    .iter()
                    .skip(1)
                    .skip_while(|l| l.trim().is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n");
                out.push(Traced { received, text });
            }
            chunk = Some(Vec::new());
        } else if let Some(lines) = chunk.as_mut() {
            lines.push(line);
        }
    }
    out
}

//! baresip 1.0 (Debian baresip-core) as a real phone on 127.0.0.1, for the interop
//! tests: one instance per call (sndfile names its WAV files to the second), audio
//! from a 440 Hz sine, commands written to its stdin, stopped with its process group
//! when dropped. A missing `baresip` skips the test with a printed reason (a failure
//! under CI=true, see `require`).

use super::process::{signal, wait_for};
use super::{free_udp_port, require, scratch};

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Baresip {
    /// Where it listens for SIP (UDP and TCP, 127.0.0.1).
    pub sip_port: u16,
    /// Its account's user: a Request-URI with another user gets a 404.
    pub user: String,
    /// Where sndfile writes `dump-<time>-enc.wav` (sent) and `-dec.wav` (received).
    pub rec_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Baresip {
    /// Starts baresip with the account `<sip:USER@127.0.0.1>` plus `account_params`
    /// (e.g. `;mediaenc=srtp-mand`), auto-answering, PCMU, 20 ms, RTP on
    /// `rtp_ports`, and waits until it is ready. It quits by itself after
    /// `max_seconds` whatever happens. None (after printing why) when baresip is
    /// not installed.
    pub fn start(
        tag: &str,
        user: &str,
        account_params: &str,
        rtp_ports: (u16, u16),
        max_seconds: u32,
    ) -> Option<Baresip> {
        let program = require("baresip")?;
        let dir = scratch(&format!("baresip-{tag}"));
        let rec_dir = dir.join("rec");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&rec_dir).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMU;ptime=20\
                 {account_params}\n"
            ),
        )
        .unwrap();
        let template = std::fs::read_to_string(fixture("config")).unwrap();
        // The port was free a moment ago; if someone took it since (UDP or TCP),
        // baresip says so and exits: try another.
        for attempt in 1..=3 {
            let sip_port = free_udp_port();
            let config = template
                .replace("@SIP_PORT@", &sip_port.to_string())
                .replace("@RTP_PORTS@", &format!("{}-{}", rtp_ports.0, rtp_ports.1))
                .replace("@SND_PATH@", &rec_dir.display().to_string());
            std::fs::write(dir.join("config"), config).unwrap();
            let log = dir.join(format!("baresip-{attempt}.log"));
            let out = File::create(&log).unwrap();
            let mut child = Command::new(&program)
                .arg("-f")
                .arg(&dir)
                .args(["-t", &max_seconds.to_string()])
                .stdin(Stdio::piped())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .process_group(0)
                .spawn()
                .expect("start baresip");
            let stdin = child.stdin.take();
            let mut phone = Baresip {
                sip_port,
                user: user.to_string(),
                rec_dir: rec_dir.clone(),
                log,
                child: Some(child),
                stdin,
            };
            if phone.wait_for_log("baresip is ready.", Duration::from_secs(10)) {
                return Some(phone);
            }
            let log = phone.log();
            assert!(
                log.contains("Address already in use") && attempt < 3,
                "baresip did not come up:\n{}",
                phone.tail(40)
            );
        }
        unreachable!()
    }

    /// Its SIP address, for `--target`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.sip_port)
    }

    /// Its log so far: status lines end in \r (made line breaks here), and the
    /// file may hold NULs.
    pub fn log(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .replace('\0', "")
            .replace('\r', "\n")
    }

    /// The last `lines` lines of the log that are not status or echo lines, for
    /// failure messages.
    pub fn tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains("audio=") && !l.starts_with('/'))
            .collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until the log contains `needle`; false if it does not within `limit`
    /// or baresip exits.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() >= end {
                return self.log().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One menu command (`/dial sip:...`, `/sndcode 1234`, `/hangup`), as typed.
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("baresip's stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| stdin.flush())
            .expect("write to baresip");
    }

    /// Key `q` (quit), then wait for it to exit (closing its WAV files).
    pub fn quit(&mut self) -> Option<ExitStatus> {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(b"q").and_then(|_| stdin.flush());
        }
        wait_for(self.child.as_mut()?, Duration::from_secs(10))
    }

    /// The RFC 4733 digits it received, in order: one per `received event: 'D'
    /// (end=1)` line.
    pub fn digits_received(&self) -> String {
        self.log()
            .lines()
            .filter_map(|l| {
                let rest = l.split("received event: '").nth(1)?;
                let (digit, rest) = rest.split_once('\'')?;
                rest.contains("(end=1)").then(|| digit.to_string())
            })
            .collect()
    }

    /// Lines of its srtp module that say something went wrong: a packet it could
    /// not decrypt or encrypt, a missing or bad a=crypto, a key of the wrong size.
    pub fn srtp_errors(&self) -> Vec<String> {
        self.log()
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("srtp:") && !l.contains("SRTP is Enabled"))
            .map(str::to_string)
            .collect()
    }

    /// The WAV file sndfile wrote for the call's `kind` of audio: "dec" (what it
    /// received and decoded) or "enc" (what it sent).
    pub fn recording(&self, kind: &str) -> Option<PathBuf> {
        let suffix = format!("-{kind}.wav");
        std::fs::read_dir(&self.rec_dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(&suffix))
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stdin.take();
        if let Some(mut child) = self.child.take() {
            let pgid = child.id() as i32;
            signal(-pgid, libc::SIGTERM);
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            // It can hang in "stop all" waiting for a BYE transaction.
            signal(-pgid, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/baresip")
        .join(name)
}

/// A mono 16-bit WAV's RMS level and length in seconds.
pub fn wav_level(path: &Path) -> (f64, f64) {
    let mut reader = hound::WavReader::open(path).expect("a WAV file");
    let spec = reader.spec();
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("16-bit samples");
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len().max(1) as f64).sqrt();
    let seconds = samples.len() as f64 / f64::from(spec.sample_rate * u32::from(spec.channels));
    (rms, seconds)
}

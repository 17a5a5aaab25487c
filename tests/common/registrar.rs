//! Kamailio as an authenticating registrar and proxy: `AuthRig` runs
//! tests/fixtures/kamailio/auth.cfg on 127.0.0.1 UDP (a free port), where every
//! user exists with the password `pw-<user>`, REGISTER is challenged with 401
//! and INVITE with 407, and a call goes to the callee's registered Contact.
//! `registered_users`/`contact` ask the running Kamailio (kamcmd over its ctl
//! socket) what it holds. Stopped (its process group) on drop.
//!
//! Also the users files: `users_csv` in sipwright's `--inject` format (a
//! `user,password` header row) and `sipp_users` in SIPp's `-inf` format
//! (SEQUENTIAL, `user;password;callee`), right or wrong passwords; and
//! `sipp_scenario` for tests/fixtures/sipp/*.xml (register.xml,
//! invite-auth.xml).
//!
//! Missing kamailio or kamcmd skips the test with a printed reason (a failure
//! under CI=true, see `require`).

use super::kamailio::{kamailio_fixture, log_tail, spawn_kamailio, udp_options};
use super::process::{stop_group, wait_ready};
use super::{free_udp_port, require, scratch};

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// The password auth.cfg computes for `user`.
pub fn password(user: &str) -> String {
    format!("pw-{user}")
}

/// User `k` (from 1) of the users files: u000001, u000002, ...
pub fn user(k: usize) -> String {
    format!("u{k:06}")
}

/// Right passwords (`pw-<user>`), or wrong ones (`wrong-<user>`) that auth.cfg
/// rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passwords {
    Right,
    Wrong,
}

impl Passwords {
    fn of(self, user: &str) -> String {
        match self {
            Passwords::Right => password(user),
            Passwords::Wrong => format!("wrong-{user}"),
        }
    }
}

/// Scratch `name`: a `user,password` header row, then users u000001..=`n`
/// (call k of `--inject` takes row k).
pub fn users_csv(name: &str, n: usize, passwords: Passwords) -> PathBuf {
    let path = scratch(name);
    let mut csv = String::from("user,password\n");
    for k in 1..=n {
        let u = user(k);
        csv += &format!("{u},{}\n", passwords.of(&u));
    }
    std::fs::write(&path, csv).unwrap();
    path
}

/// Scratch `name` in SIPp's injection format: SEQUENTIAL, then
/// `user;password;callee` for users u000001..=`n` ([field0], [field1],
/// [field2]; the callee is the next user, the last calls the first).
pub fn sipp_users(name: &str, n: usize, passwords: Passwords) -> PathBuf {
    let path = scratch(name);
    let mut csv = String::from("SEQUENTIAL\n");
    for k in 1..=n {
        let u = user(k);
        csv += &format!("{u};{};{}\n", passwords.of(&u), user(k % n + 1));
    }
    std::fs::write(&path, csv).unwrap();
    path
}

/// `tests/fixtures/sipp/NAME`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sipp")
        .join(name)
}

/// How auth.cfg is started.
#[derive(Clone, Debug)]
pub struct AuthOptions {
    /// INVITEs are challenged with 407 (else relayed without: NO_INVITE_AUTH).
    pub invite_auth: bool,
    /// Wrong credentials get 403 (REJECT_403) instead of a fresh challenge.
    pub reject_403: bool,
    /// The challenge offers qop=auth (else none: RFC 2069 digest).
    pub qop: bool,
    /// UDP workers.
    pub children: u32,
    /// A REGISTER asking for less gets 423 with this Min-Expires (default 10).
    pub min_expires: Option<u32>,
    /// The 200 to a REGISTER carries a Service-Route to the proxy itself.
    pub service_route: bool,
}

impl Default for AuthOptions {
    fn default() -> AuthOptions {
        AuthOptions {
            invite_auth: true,
            reject_403: false,
            qop: true,
            children: 4,
            min_expires: None,
            service_route: false,
        }
    }
}

/// A running Kamailio with auth.cfg; stopped on drop.
pub struct AuthRig {
    pub port: u16,
    pub options: AuthOptions,
    child: Option<Child>,
    log: PathBuf,
    ctl: String,
    kamcmd: PathBuf,
    tag: String,
}

impl AuthRig {
    /// auth.cfg with its defaults (401 on REGISTER, 407 on INVITE, qop=auth,
    /// a new challenge for wrong credentials).
    pub fn start(tag: &str) -> Option<AuthRig> {
        AuthRig::start_with(tag, AuthOptions::default())
    }

    /// Starts Kamailio and waits until it answers an OPTIONS. None (after
    /// printing why) when kamailio or kamcmd is missing.
    pub fn start_with(tag: &str, options: AuthOptions) -> Option<AuthRig> {
        let program = require("kamailio")?;
        let kamcmd = require("kamcmd")?;
        let tag = format!("kamauth-{tag}");
        let port = free_udp_port();
        let mut defines = vec![
            format!("LISTEN_PORT={port}"),
            format!("CHILDREN={}", options.children),
        ];
        if !options.invite_auth {
            defines.push("NO_INVITE_AUTH".into());
        }
        if options.reject_403 {
            defines.push("REJECT_403".into());
        }
        if !options.qop {
            defines.push("CHALLENGE_FLAGS=\"0\"".into());
        }
        if let Some(min) = options.min_expires {
            defines.push(format!("MIN_EXPIRES={min}"));
        }
        if options.service_route {
            defines.push("SERVICE_ROUTE".into());
        }
        // 256 MB: 1,000s of registrations take little (usrloc), the
        // transactions of a 500/s run (two per REGISTER, kept 5 s after their
        // final reply) some 10s of MB.
        let (child, log) =
            spawn_kamailio(&program, &kamailio_fixture("auth.cfg"), &tag, 256, &defines);
        // spawn_kamailio's -Y directory, where the ctl module puts its socket.
        let ctl = format!(
            "unix:{}",
            scratch(&format!("{tag}-run"))
                .join("kamailio_ctl")
                .display()
        );
        let mut rig = AuthRig {
            port,
            options,
            child: Some(child),
            log,
            ctl,
            kamcmd,
            tag,
        };
        rig.wait_until_up();
        Some(rig)
    }

    /// `--target` for sipwright: sip:127.0.0.1:PORT.
    pub fn target(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    /// The remote host:port for SIPp.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kamcmd ARGS` against this Kamailio: its output, or why it failed.
    pub fn kamcmd(&self, args: &[&str]) -> Result<String, String> {
        let o = Command::new(&self.kamcmd)
            .args(["-s", &self.ctl])
            .args(args)
            .output()
            .map_err(|e| format!("kamcmd: {e}"))?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "kamcmd {args:?}: {:?}\n{out}{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stderr)
            ))
        }
    }

    /// How many users have a binding (usrloc's registered_users statistic).
    pub fn registered_users(&self) -> u64 {
        let out = self
            // By its bare name: `usrloc:registered_users` prints nothing
            // (a `group:` argument lists the whole group).
            .kamcmd(&["stats.get_statistics", "registered_users"])
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        // "usrloc:registered_users = 1000"
        out.lines()
            .find_map(|l| l.split_once('=').map(|(_, v)| v.trim().to_string()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no registered_users in {out:?}"))
    }

    /// The Contact address registered for `user`, if any.
    pub fn contact(&self, user: &str) -> Option<String> {
        let out = self.kamcmd(&["ul.lookup", "location", user]).ok()?;
        out.lines()
            .find_map(|l| l.trim().strip_prefix("Address:"))
            .map(|a| a.trim().to_string())
    }

    /// The end of Kamailio's log, for failure messages.
    pub fn logs(&self) -> String {
        log_tail(&self.tag, &self.log)
    }

    fn wait_until_up(&mut self) {
        let (port, log, tag) = (self.port, self.log.clone(), self.tag.clone());
        let probe = format!("sip:127.0.0.1:{port}");
        wait_ready(
            self.child.as_mut().unwrap(),
            "kamailio",
            Duration::from_secs(10),
            || {
                udp_options(port, &probe, Duration::from_millis(300))
                    .filter(|r| r.starts_with("SIP/2.0 200"))
                    .map(|_| ())
                    .ok_or_else(|| "no 200 to an OPTIONS".to_string())
            },
            || log_tail(&tag, &log),
        );
    }
}

impl Drop for AuthRig {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child);
        }
    }
}

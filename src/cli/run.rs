//! `sipwright run`: compile the scenario, bind sockets, start the driver(s), print a
//! summary and write the report.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::UsageError;
use super::args::RunArgs;
use crate::load::{Driver, DriverConfig, signal};
use crate::report::Counters;
use crate::report::json::{Side, report_json, write_report};
use crate::scenario::call::{CallEnv, Outcome};
use crate::scenario::plan::{Plan, Role};
use crate::scenario::{builtin, compile_file, compile_str};
use crate::sip::transaction::Timers;
use crate::sip::uri::SipUri;
use crate::transport::udp;

/// Failure details printed after a run (the report has the counts).
const SHOWN_FAILURES: usize = 5;

/// Where calls go, from `--target`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub uri: String,
    pub user: Option<String>,
}

/// `HOST:PORT`, `HOST` (port 5060) or a SIP URI.
pub fn parse_target(text: &str) -> Result<Target, UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "--target `{text}`: {why}; use HOST:PORT or sip:[user@]host[:port]"
        ))
    };
    let (host, port, user, uri) = if text.contains(':')
        && text
            .split(':')
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("sip") || s.eq_ignore_ascii_case("sips"))
    {
        let u = SipUri::parse(text).ok_or_else(|| bad("not a SIP URI"))?;
        let default = if u.scheme.eq_ignore_ascii_case("sips") {
            5061
        } else {
            5060
        };
        (
            u.host.to_string(),
            u.port.unwrap_or(default),
            u.user.map(str::to_string),
            text.to_string(),
        )
    } else {
        let (host, port) = split_host_port(text).ok_or_else(|| bad("bad host or port"))?;
        let uri = if host.contains(':') {
            format!("sip:[{host}]:{port}")
        } else {
            format!("sip:{host}:{port}")
        };
        (host, port, None, uri)
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| bad("resolves to no address"))?;
    Ok(Target { addr, uri, user })
}

fn split_host_port(text: &str) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 5060,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        _ if text.parse::<std::net::Ipv6Addr>().is_ok() => Some((text.to_string(), 5060)),
        _ if !text.is_empty() => Some((text.to_string(), 5060)),
        _ => None,
    }
}

fn parse_bind(text: &str) -> Result<SocketAddr, UsageError> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .map_err(|_| {
            UsageError(format!(
                "--bind `{text}`: expected IP:PORT (e.g. 127.0.0.1:5060) or IP"
            ))
        })
}

/// A scenario given by path or built-in name, and the name of its loopback peer.
pub fn load_scenario(
    name: &str,
    overrides: &[(String, String)],
) -> anyhow::Result<(Plan, &'static str)> {
    let path = std::path::Path::new(name);
    if path.exists() {
        let plan = compile_file(path, overrides)?;
        let peer = if plan.role == Role::Uac { "uas" } else { "uac" };
        return Ok((plan, peer));
    }
    let Some(b) = builtin::get(name) else {
        let names: Vec<&str> = builtin::BUILTINS.iter().map(|b| b.name).collect();
        return Err(UsageError(format!(
            "no scenario file `{name}` and no built-in scenario of that name (built-ins: {})",
            names.join(", ")
        ))
        .into());
    };
    let plan = compile_str(&format!("builtin:{}", b.name), b.text, overrides)?;
    Ok((plan, b.peer))
}

fn duration_text(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

struct Side_ {
    socket: UdpSocket,
    env: CallEnv,
}

fn make_side(
    plan: Plan,
    socket: UdpSocket,
    local_ip: IpAddr,
    remote: SocketAddr,
    target_uri: String,
    timers: Timers,
) -> anyhow::Result<Side_> {
    let local = socket.local_addr()?;
    let ip = local_ip.to_string();
    let env = CallEnv {
        plan: Arc::new(plan),
        local_ip: ip.clone(),
        local_port: local.port(),
        transport: "UDP",
        timers,
        remote,
        target_uri,
        run_id: rand::random(),
        media_ip: ip,
        media_port_base: 10_000,
    };
    Ok(Side_ { socket, env })
}

pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    signal::install();
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err(UsageError(format!(
            "--rate {}: must be a positive number of calls per second",
            a.rate
        ))
        .into());
    }
    if a.concurrency == Some(0) {
        return Err(UsageError("--concurrency 0: must be at least 1".into()).into());
    }
    let target = a.target.as_deref().map(parse_target).transpose()?;
    let mut overrides = a.set.clone();
    if let Some(d) = a.call_duration {
        overrides.push(("call_duration".into(), duration_text(d)));
    }
    if let Some(user) = target.as_ref().and_then(|t| t.user.clone())
        && !overrides.iter().any(|(k, _)| k == "service")
    {
        overrides.push(("service".into(), user));
    }
    let (plan, peer_name) = load_scenario(&a.scenario, &overrides)?;
    let role = plan.role;
    let timers = Timers {
        t1: a.t1,
        t2: a.t2,
        t4: a.t4,
    };
    let main_cfg = DriverConfig {
        max_calls: a.calls,
        rate: a.rate,
        concurrency: a.concurrency,
        duration: a.duration,
        drain_timeout: a.drain_timeout,
    };
    let loopback_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);

    let (main, peer) = if a.loopback {
        if target.is_some() {
            return Err(UsageError("--target and --loopback exclude each other".into()).into());
        }
        let main_bind = match &a.bind {
            Some(b) => parse_bind(b)?,
            None => SocketAddr::new(loopback_ip, 0),
        };
        let main_sock = udp::bind(main_bind).with_context(|| format!("binding {main_bind}"))?;
        let peer_sock =
            udp::bind(SocketAddr::new(loopback_ip, 0)).context("binding the loopback peer")?;
        let main_addr = main_sock.local_addr()?;
        let peer_addr = peer_sock.local_addr()?;
        let peer_overrides: Vec<(String, String)> = overrides
            .iter()
            .filter(|(k, _)| k == "call_duration")
            .cloned()
            .collect();
        let (peer_plan, _) = load_scenario(peer_name, &peer_overrides)?;
        let main_ip = a
            .local_ip
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("--local-ip")?
            .unwrap_or(if main_addr.ip().is_unspecified() {
                loopback_ip
            } else {
                main_addr.ip()
            });
        let uri = |addr: SocketAddr| format!("sip:{addr}");
        let main = make_side(plan, main_sock, main_ip, peer_addr, uri(peer_addr), timers)?;
        let peer = make_side(
            peer_plan,
            peer_sock,
            loopback_ip,
            main_addr,
            uri(main_addr),
            timers,
        )?;
        (main, Some(peer))
    } else {
        let bind = match &a.bind {
            Some(b) => parse_bind(b)?,
            None if role == Role::Uas => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060),
            None => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        };
        let (remote, uri) = match (&target, role) {
            (Some(t), _) => (t.addr, t.uri.clone()),
            (None, Role::Uas) => (
                SocketAddr::new(loopback_ip, 5060),
                "sip:127.0.0.1:5060".to_string(),
            ),
            (None, Role::Uac) => {
                return Err(UsageError(format!(
                    "scenario `{}` starts calls: give --target HOST:PORT (or --loopback to run against the built-in peer)",
                    a.scenario
                ))
                .into());
            }
        };
        let sock = udp::bind(bind).with_context(|| format!("binding {bind}"))?;
        let local = sock.local_addr()?;
        let local_ip = match a.local_ip.as_deref() {
            Some(ip) => ip
                .parse()
                .map_err(|_| UsageError(format!("--local-ip `{ip}`: not an IP address")))?,
            None if !local.ip().is_unspecified() => local.ip(),
            None if target.is_some() => udp::local_ip_towards(remote).unwrap_or(loopback_ip),
            None => loopback_ip,
        };
        (make_side(plan, sock, local_ip, remote, uri, timers)?, None)
    };

    if !a.quiet {
        let local = main.socket.local_addr()?;
        let what = match (&peer, role) {
            (Some(p), _) => format!(
                "loopback peer `{}` on {}",
                p.env.plan.name,
                p.socket.local_addr()?
            ),
            (None, Role::Uac) => format!("target {}", main.env.remote),
            (None, Role::Uas) => "waiting for calls".to_string(),
        };
        println!(
            "sipwright: running `{}` on {} ({}), {what}",
            main.env.plan.name, local, main.env.transport
        );
    }

    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let peer_stop = Arc::new(AtomicBool::new(false));
    let peer_thread = match peer {
        Some(p) => {
            let name = p.env.plan.name.clone();
            let role = p.env.plan.role;
            let stop = peer_stop.clone();
            // The peer of a UAS scenario is the UAC: it gets the call plan.
            let cfg = if role == Role::Uac {
                main_cfg.clone()
            } else {
                DriverConfig {
                    max_calls: None,
                    duration: None,
                    concurrency: None,
                    ..main_cfg.clone()
                }
            };
            let handle = std::thread::Builder::new().name("peer".into()).spawn(
                move || -> anyhow::Result<Counters> {
                    let mut d = Driver::new(p.socket, p.env, cfg, stop);
                    d.run()?;
                    Ok(d.counters().clone())
                },
            )?;
            Some((name, role, handle))
        }
        None => None,
    };
    let main_cfg = if role == Role::Uas && peer_thread.is_some() {
        // Served calls end when the peer's calls end.
        DriverConfig {
            duration: None,
            concurrency: None,
            ..main_cfg
        }
    } else {
        main_cfg
    };
    let plan_name = main.env.plan.name.clone();
    let mut driver = Driver::new(
        main.socket,
        main.env,
        main_cfg,
        Arc::new(AtomicBool::new(false)),
    );
    let f = failures.clone();
    driver.set_observer(Box::new(move |call, outcome, _| {
        if let Outcome::Failed(reason) = outcome {
            let mut list = f.lock().unwrap_or_else(|e| e.into_inner());
            if list.len() < SHOWN_FAILURES {
                let detail = call.failure_detail().unwrap_or("");
                list.push(format!(
                    "call {} ({}): {}: {detail}",
                    call.number(),
                    call.call_id(),
                    reason.as_str()
                ));
            }
        }
    }));
    let t0 = Instant::now();
    driver.run().context("driver")?;
    let elapsed = t0.elapsed();
    let counters = driver.counters().clone();
    peer_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peer_result = match peer_thread {
        Some((name, role, h)) => {
            let c = h
                .join()
                .map_err(|_| anyhow::anyhow!("loopback peer thread panicked"))??;
            Some((name, role, c))
        }
        None => None,
    };

    if !a.quiet {
        print_summary(&plan_name, &counters, elapsed);
        for line in failures.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            println!("  {line}");
        }
        if let Some((name, _, c)) = &peer_result
            && c.calls_failed > 0
        {
            print!("peer ");
            print_summary(name, c, elapsed);
        }
    }
    if let Some(path) = &a.report {
        let main_side = Side {
            scenario: &plan_name,
            role: role_name(role),
            counters: &counters,
        };
        let peer_side = peer_result.as_ref().map(|(n, r, c)| Side {
            scenario: n,
            role: role_name(*r),
            counters: c,
        });
        let json = report_json(&main_side, peer_side.as_ref(), elapsed);
        write_report(path, &json).with_context(|| format!("writing report {}", path.display()))?;
    }
    Ok(if counters.calls_failed > 0 { 1 } else { 0 })
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Uac => "uac",
        Role::Uas => "uas",
    }
}

fn print_summary(name: &str, c: &Counters, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{name}: {} calls, {} succeeded, {} failed in {:.2} s ({:.1} calls/s); messages: {} sent, {} received, {} retransmitted, {} absorbed, {} unparseable",
        c.calls_started,
        c.calls_succeeded,
        c.calls_failed,
        secs,
        c.calls_started as f64 / secs,
        c.messages_sent,
        c.messages_received,
        c.messages_retransmitted,
        c.messages_absorbed,
        c.messages_unparseable,
    );
    for r in crate::report::FailureReason::ALL {
        let n = c.failures_of(r);
        if n > 0 {
            println!("  failed: {} × {}", n, r.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("127.0.0.1:5070").unwrap();
        assert_eq!(t.addr, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(t.uri, "sip:127.0.0.1:5070");
        assert!(t.user.is_none());
        let t = parse_target("127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 5060);
        let t = parse_target("[::1]:5080").unwrap();
        assert_eq!(t.addr, "[::1]:5080".parse().unwrap());
        assert!(parse_target("127.0.0.1:notaport").is_err());
        assert!(parse_target("").is_err());
    }

    #[test]
    fn bind_forms() {
        assert_eq!(parse_bind("127.0.0.1:5060").unwrap().port(), 5060);
        assert_eq!(parse_bind("127.0.0.1").unwrap().port(), 0);
        assert!(parse_bind("nonsense").is_err());
    }
}

//! `sipwright run`: compile the scenario, bind sockets, start the driver(s), print a
//! summary and write the report.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::UsageError;
use super::args::RunArgs;
use super::target::{Family, parse_target_for};
use super::transport::{LoopbackCert, SideTransport, side_transport, transport_of};
use crate::load::run::{SideSpec, Tick, TraceSpec, bind_side, coordinate, spawn_side};
use crate::load::schedule::RatePlan;
use crate::load::{RunShared, signal};
use crate::report::json::Side;
use crate::report::progress::Progress;
use crate::report::stats_file::StatsFile;
use crate::report::trace::{TraceFormat, TraceWriter};
use crate::report::{ReportData, summary_text, write_report_file};
use crate::scenario::inject::{Injection, Order};
use crate::scenario::plan::{Plan, Role};
use crate::scenario::{CompileOptions, builtin, compile_file_with, compile_str_with};
use crate::sip::transaction::Timers;
use crate::transport::kind::TransportKind;
use crate::transport::ports::PortPool;
use crate::transport::tls::TlsSettings;
use crate::transport::{limits, udp};
use std::path::PathBuf;

fn parse_bind(text: &str) -> Result<SocketAddr, UsageError> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .map_err(|_| {
            UsageError(format!(
                "--bind `{text}`: expected IP:PORT (e.g. 127.0.0.1:5060) or IP"
            ))
        })
}

/// `--inject FILE` read once (shared by both sides of a loopback run), with
/// `--inject-order` applied; the order alone is returned for a scenario's `inject:`.
pub fn load_injection(
    a: &super::args::InjectArgs,
) -> anyhow::Result<(Option<Arc<Injection>>, Option<Order>)> {
    let order = a.inject_order.as_deref().and_then(Order::from_name);
    let Some(path) = &a.inject else {
        return Ok((None, order));
    };
    let mut injection = Injection::load(path)?;
    if let Some(order) = order {
        injection.set_order(order);
    }
    if !a.inject_columns.is_empty() {
        injection
            .rename_columns(&a.inject_columns)
            .map_err(|e| UsageError(format!("--inject-columns: {}: {e}", path.display())))?;
    }
    for note in injection.notes() {
        eprintln!("{}: {note}", path.display());
    }
    Ok((Some(Arc::new(injection)), order))
}

/// What `--loopback` runs on the other side: a built-in, or a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerSpec {
    Builtin(&'static str),
    File(PathBuf),
}

/// A scenario given by path or built-in name, and its loopback peer: the built-in's
/// own, or a file's `peer:` (a built-in name, or a scenario file relative to the
/// file's folder), else the built-in `uas` for a UAC and `uac` for a UAS.
pub fn load_scenario(name: &str, opts: &CompileOptions<'_>) -> anyhow::Result<(Plan, PeerSpec)> {
    let (plan, builtin) = load_plan(name, opts)?;
    if let Some(b) = builtin {
        return Ok((plan, PeerSpec::Builtin(b.peer)));
    }
    let peer = match plan.peer.as_deref() {
        Some(p) => match builtin::get(p) {
            Some(b) => PeerSpec::Builtin(b.name),
            None => {
                // Beside the scenario: a generated pair names each other this way.
                let dir = std::path::Path::new(name)
                    .parent()
                    .unwrap_or(std::path::Path::new(""));
                let file = dir.join(p);
                if !file.is_file() {
                    return Err(UsageError(format!(
                        "{name}: `peer: {p}` is neither a built-in scenario (see `sipwright scenarios`) nor a file ({} does not exist)",
                        file.display()
                    ))
                    .into());
                }
                PeerSpec::File(file)
            }
        },
        None if plan.role == Role::Uac => PeerSpec::Builtin("uas"),
        None => PeerSpec::Builtin("uac"),
    };
    Ok((plan, peer))
}

/// `--peer NAME`: a scenario file, or a built-in's name.
fn peer_arg(name: &str) -> Result<PeerSpec, UsageError> {
    if std::path::Path::new(name).is_file() {
        return Ok(PeerSpec::File(name.into()));
    }
    builtin::get(name).map(|b| PeerSpec::Builtin(b.name)).ok_or_else(|| {
        UsageError(format!(
            "--peer {name}: no scenario file `{name}` and no built-in scenario of that name (see `sipwright scenarios`)"
        ))
    })
}

/// The plan of a scenario file or built-in (a file wins over a built-in of the same
/// name), and the built-in when it is one. Its `peer:` is not looked at.
fn load_plan(
    name: &str,
    opts: &CompileOptions<'_>,
) -> anyhow::Result<(Plan, Option<&'static builtin::Builtin>)> {
    let path = std::path::Path::new(name);
    if path.exists() {
        return Ok((compile_file_with(path, opts)?, None));
    }
    let Some(b) = builtin::get(name) else {
        let names: Vec<&str> = builtin::BUILTINS.iter().map(|b| b.name).collect();
        return Err(UsageError(format!(
            "no scenario file `{name}` and no built-in scenario of that name (built-ins: {})",
            names.join(", ")
        ))
        .into());
    };
    let plan = compile_str_with(&format!("builtin:{}", b.name), b.text, opts)?;
    Ok((plan, Some(b)))
}

/// The loopback peer's plan.
fn load_peer(spec: &PeerSpec, opts: &CompileOptions<'_>) -> anyhow::Result<Plan> {
    Ok(match spec {
        PeerSpec::File(path) => compile_file_with(path, opts)?,
        PeerSpec::Builtin(name) => match builtin::get(name) {
            Some(b) => compile_str_with(&format!("builtin:{}", b.name), b.text, opts)?,
            None => return Err(UsageError(format!("no built-in scenario `{name}`")).into()),
        },
    })
}

fn duration_text(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

/// The rate plan from --rate / --rate-increase / --ramp.
fn rate_plan(a: &RunArgs) -> Result<RatePlan, UsageError> {
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err(UsageError(format!(
            "--rate {}: must be a positive number of calls per second",
            a.rate
        )));
    }
    if let Some(text) = &a.ramp {
        if a.rate_increase.is_some() {
            return Err(UsageError(
                "--ramp and --rate-increase exclude each other".into(),
            ));
        }
        return RatePlan::parse_ramp(text).map_err(|e| UsageError(format!("--ramp `{text}`: {e}")));
    }
    if let Some(step) = a.rate_increase {
        if !step.is_finite() || a.rate_interval.is_zero() {
            return Err(UsageError(
                "--rate-increase needs a finite step and a non-zero --rate-interval".into(),
            ));
        }
        return Ok(RatePlan::Increase {
            start: a.rate,
            step,
            every: a.rate_interval,
            max: a.rate_max,
        });
    }
    Ok(RatePlan::Constant(a.rate))
}

/// Calls per second one UAC driver handles comfortably; more workers than needed only
/// add wake-ups (CPU per call goes up, not down).
const CPS_PER_WORKER: f64 = 15_000.0;

/// Default `--workers`: a UAC gets one driver per CPS_PER_WORKER of its peak rate, up
/// to the number of cores; a UAS (which can't know the rate) one per core.
fn default_workers(role: Role, rate: &RatePlan) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if role == Role::Uas {
        return cores;
    }
    let peak = match rate {
        RatePlan::Constant(c) => *c,
        RatePlan::Increase { max, .. } => max.unwrap_or(f64::INFINITY),
        RatePlan::Ramp(points) => points.iter().map(|(r, _)| *r).fold(0.0, f64::max),
    };
    ((peak / CPS_PER_WORKER).ceil() as usize).clamp(1, cores)
}

/// Media needs a descriptor per RTP and RTCP socket: raise the open-file limit to
/// its hard maximum and refuse a `--concurrency` it cannot hold.
fn check_media_limits(a: &RunArgs, ports: &Arc<Mutex<PortPool>>) -> anyhow::Result<()> {
    let (soft, hard) = limits::raise_nofile().context("raising the open-file limit")?;
    let pairs = ports.lock().map(|p| p.capacity()).unwrap_or(0);
    // Two sockets per call (RTP, RTCP); a loopback run holds both sides' calls.
    let sides = if a.loopback { 2 } else { 1 };
    if let Some(c) = a.concurrency.filter(|_| !a.rtp_shared) {
        let need = (c as u64) * 2 * sides + 64;
        if need > soft {
            return Err(UsageError(format!(
                "--concurrency {c} needs about {need} open files for media sockets, but the limit is {soft} (hard limit {hard}); raise it (`ulimit -n`, or LimitNOFILE= for a service) or lower --concurrency"
            ))
            .into());
        }
        if c as u64 * sides > pairs as u64 {
            return Err(UsageError(format!(
                "--concurrency {c} needs {} RTP port pairs but --rtp-ports {}-{} has {pairs}; widen the range",
                c as u64 * sides,
                a.rtp_ports.0,
                a.rtp_ports.1
            ))
            .into());
        }
    }
    Ok(())
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Uac => "uac",
        Role::Uas => "uas",
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    signal::install();
    let rate = rate_plan(&a)?;
    if a.concurrency == Some(0) {
        return Err(UsageError("--concurrency 0: must be at least 1".into()).into());
    }
    if a.workers == Some(0) {
        return Err(UsageError("--workers 0: must be at least 1".into()).into());
    }
    if a.stats_interval.is_zero() {
        return Err(UsageError("--stats-interval must be more than 0".into()).into());
    }
    let workers = |role: Role| a.workers.unwrap_or_else(|| default_workers(role, &rate));
    let family = if a.ipv4 {
        Family::V4
    } else if a.ipv6 {
        Family::V6
    } else {
        Family::Any
    };
    let target = a
        .target
        .as_deref()
        .map(|t| parse_target_for(t, family))
        .transpose()?;
    let kind = transport_of(&a, target.as_ref())?;
    if a.workers == Some(0) {
        return Err(UsageError("--workers 0: must be at least 1".into()).into());
    }
    let mut overrides = a.set.clone();
    if let Some(d) = a.call_duration {
        overrides.push(("call_duration".into(), duration_text(d)));
    }
    if let Some(user) = target.as_ref().and_then(|t| t.user.clone())
        && !overrides.iter().any(|(k, _)| k == "service")
    {
        overrides.push(("service".into(), user));
    }
    let (injection, inject_order) = load_injection(&a.inject)?;
    let opts = CompileOptions {
        overrides: &overrides,
        inject: injection.as_ref(),
        inject_order,
        base_dir: None,
    };
    if a.peer.is_some() && !a.loopback {
        return Err(UsageError(
            "--peer names the scenario --loopback runs on the other side: add --loopback".into(),
        )
        .into());
    }
    // --peer replaces the scenario's own peer, which then need not resolve.
    let (plan, peer_spec) = match &a.peer {
        Some(p) => (load_plan(&a.scenario, &opts)?.0, peer_arg(p)?),
        None => load_scenario(&a.scenario, &opts)?,
    };
    // `chunks:` over UDP, a fixed message too large for a datagram: refused before
    // the first call rather than failing every call.
    plan.check_transport(kind)?;
    if let Some(inj) = &plan.inject
        && !plan.inject_used
    {
        eprintln!(
            "sipwright: warning: {}: no template of `{}` reads its columns ({}); name them with --inject-columns (the register built-ins read `user`, `password`)",
            inj.path(),
            plan.name,
            inj.columns().join(", ")
        );
    }
    let role = plan.role;
    let rtp_ports = Arc::new(Mutex::new(PortPool::new(a.rtp_ports.0, a.rtp_ports.1)));
    if plan.media.is_some() {
        check_media_limits(&a, &rtp_ports)?;
    }
    let timers = Timers {
        t1: a.t1,
        t2: a.t2,
        t4: a.t4,
    };
    let bind_arg = a.bind.as_deref().map(parse_bind).transpose()?;
    // A loopback run stays in the family of --bind ([::1]:0 runs both sides on ::1).
    let loopback_ip = match bind_arg {
        Some(b) if b.is_ipv6() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    // TLS: the run's settings; a loopback run without --cert makes its own
    // certificate, served by whichever side listens and trusted by the other.
    let mut tls = TlsSettings {
        ca: a.ca.clone(),
        cert: a.cert.clone(),
        key: a.key.clone(),
        insecure: a.insecure,
    };
    let loopback_cert = if a.loopback && kind.is_secure() && a.cert.is_none() {
        let c = LoopbackCert::generate()?;
        tls.cert = Some(c.cert.clone());
        tls.key = Some(c.key.clone());
        if tls.ca.is_none() {
            tls.ca = Some(c.cert.clone());
        }
        Some(c)
    } else {
        None
    };
    if kind.is_secure() && role == Role::Uas && !a.loopback && tls.cert.is_none() {
        return Err(UsageError(format!(
            "a UAS over {kind} serves a certificate: give --cert FILE --key FILE"
        ))
        .into());
    }
    // The UAC side's plan decides when the run ends: --duration, or the end of a ramp.
    let duration = a.duration.or_else(|| rate.end());
    let t0 = Instant::now() + Duration::from_millis(20);
    let mut writers: Vec<(Arc<TraceWriter>, PathBuf)> = Vec::new();
    let mut traces = Vec::new();
    for (path, format, failed_only) in [
        (&a.trace, TraceFormat::Pcap, false),
        (&a.trace_failed, TraceFormat::Pcap, true),
        (&a.trace_msg, TraceFormat::Text, false),
    ] {
        if let Some(p) = path {
            let w = Arc::new(
                TraceWriter::spawn(p, format)
                    .with_context(|| format!("creating {}", p.display()))?,
            );
            traces.push(TraceSpec {
                writer: w.clone(),
                format,
                failed_only,
                media: format == TraceFormat::Pcap && !failed_only && !a.trace_no_media,
            });
            writers.push((w, p.clone()));
        }
    }
    let mut main_traces = Some(traces);
    let via_host = |r: Role| {
        // RFC 7118 §5.2: a WebSocket client has no address a server could reach,
        // so it writes a random `.invalid` host in Via and Contact.
        (kind.is_websocket() && r == Role::Uac)
            .then(|| format!("{:08x}.invalid", rand::random::<u32>()))
    };
    let mut spec = |plan: Plan,
                    sockets,
                    local_ip,
                    remote,
                    target_uri: String,
                    calls_side: bool,
                    side: SideTransport| SideSpec {
        via_host: via_host(plan.role),
        plan: Arc::new(plan),
        sockets,
        transport: side.kind,
        connection_settings: side.settings,
        connection_model: side.model,
        connection_host: side.host,
        keepalive: side.keepalive,
        local_ip,
        remote,
        target_uri,
        timers,
        t0,
        rate: rate.clone(),
        // A loopback UAS serves until its UAC side is done (it is stopped then): a
        // call that sends several transactions as separate calls at the UAS (REGISTER
        // refreshes) must not run it out of calls early.
        max_calls: if calls_side || !a.loopback {
            a.calls
        } else {
            None
        },
        concurrency: if calls_side { a.concurrency } else { None },
        duration: if calls_side { duration } else { None },
        drain_timeout: a.drain_timeout,
        stats_interval: a.stats_interval,
        batch_window: a.batch_window,
        // The first side built is the main side: it writes the traces.
        traces: main_traces.take().unwrap_or_default(),
        rtp_ports: rtp_ports.clone(),
        rtp_shared: a.rtp_shared,
    };

    let (main, peer) = if a.loopback {
        if target.is_some() {
            return Err(UsageError("--target and --loopback exclude each other".into()).into());
        }
        let main_bind = bind_arg.unwrap_or(SocketAddr::new(loopback_ip, 0));
        // The peer gets the call length and the main side's data file (a
        // challenging UAS checks the passwords the registering UAC sends).
        let peer_overrides: Vec<(String, String)> = overrides
            .iter()
            .filter(|(k, _)| k == "call_duration")
            .cloned()
            .collect();
        let peer_plan = load_peer(
            &peer_spec,
            &CompileOptions {
                overrides: &peer_overrides,
                inject: plan.inject.as_ref(),
                ..opts
            },
        )?;
        peer_plan.check_transport(kind)?;
        if peer_plan.role == role {
            let what = if role == Role::Uac {
                "start calls (UAC)"
            } else {
                "wait for calls (UAS)"
            };
            return Err(UsageError(format!(
                "--loopback needs a UAC and a UAS, but `{}` and its peer `{}` both {what}",
                plan.name, peer_plan.name
            ))
            .into());
        }
        let main_socks = bind_side(role, main_bind, workers(role), listens(kind, role, &tls))
            .with_context(|| format!("binding {main_bind}"))?;
        let peer_socks = bind_side(
            peer_plan.role,
            SocketAddr::new(loopback_ip, 0),
            workers(peer_plan.role),
            listens(kind, peer_plan.role, &tls),
        )
        .context("binding the loopback peer")?;
        let main_addr = main_socks[0].udp.local_addr()?;
        let peer_addr = peer_socks[0].udp.local_addr()?;
        let main_ip = match a.local_ip.as_deref() {
            Some(ip) => ip
                .parse()
                .map_err(|_| UsageError(format!("--local-ip `{ip}`: not an IP address")))?,
            None if main_addr.ip().is_unspecified() => loopback_ip,
            None => main_addr.ip(),
        };
        let uri = |addr: SocketAddr| match kind {
            TransportKind::Udp => format!("sip:{addr}"),
            k => format!("sip:{addr};transport={}", k.uri_param()),
        };
        let host = loopback_ip.to_string();
        let main_side = side_transport(&a, kind, &tls, role == Role::Uas, &host, None)?;
        let peer_is_uac = peer_plan.role == Role::Uac;
        let peer_side = side_transport(&a, kind, &tls, !peer_is_uac, &host, None)?;
        let main = spec(
            plan,
            main_socks,
            main_ip,
            peer_addr,
            uri(peer_addr),
            role == Role::Uac,
            main_side,
        );
        let peer = spec(
            peer_plan,
            peer_socks,
            loopback_ip,
            main_addr,
            uri(main_addr),
            peer_is_uac,
            peer_side,
        );
        (main, Some(peer))
    } else {
        let bind = match bind_arg {
            Some(b) => b,
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
                    "scenario `{}` starts calls: give --target HOST:PORT (or --loopback to run against its peer)",
                    a.scenario
                ))
                .into());
            }
        };
        let socks = bind_side(role, bind, workers(role), listens(kind, role, &tls))
            .with_context(|| format!("binding {bind}"))?;
        let local = socks[0].udp.local_addr()?;
        let local_ip = match a.local_ip.as_deref() {
            Some(ip) => ip
                .parse()
                .map_err(|_| UsageError(format!("--local-ip `{ip}`: not an IP address")))?,
            None if !local.ip().is_unspecified() => local.ip(),
            None if target.is_some() => udp::local_ip_towards(remote).unwrap_or(loopback_ip),
            None => loopback_ip,
        };
        let host = target
            .as_ref()
            .map(|t| t.host.clone())
            .unwrap_or_else(|| remote.ip().to_string());
        let ws_path = target.as_ref().and_then(|t| t.ws_path.clone());
        let side = side_transport(
            &a,
            kind,
            &tls,
            role == Role::Uas || tls.cert.is_some(),
            &host,
            ws_path.as_deref(),
        )?;
        (
            spec(plan, socks, local_ip, remote, uri, role == Role::Uac, side),
            None,
        )
    };

    let mut stats = match &a.stats {
        Some(p) => Some(StatsFile::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => None,
    };
    if !a.quiet {
        let local = main.sockets[0].udp.local_addr()?;
        let what = match (&peer, role) {
            (Some(p), _) => format!(
                "loopback peer `{}` on {}",
                p.plan.name,
                p.sockets[0].udp.local_addr()?
            ),
            (None, Role::Uac) => format!("target {}", main.remote),
            (None, Role::Uas) => "waiting for calls".to_string(),
        };
        eprintln!(
            "sipwright: running `{}` on {local} ({}, {} workers), {what}",
            main.plan.name,
            kind.via_token(),
            main.sockets.len()
        );
    }

    let main_shared = Arc::new(RunShared::default());
    let peer_shared = Arc::new(RunShared::default());
    let main_workers = main.sockets.len();
    let plan_name = main.plan.name.clone();
    // With a UAS in front, the peer UAC decides when calls stop; the UAS stops after it.
    let peer_handle = match peer {
        Some(p) => Some(spawn_side(p, peer_shared.clone(), None)?),
        None => None,
    };
    let (tx, rx) = mpsc::channel();
    let main_handle = spawn_side(main, main_shared.clone(), Some(tx))?;
    let mut progress = Progress::new(a.quiet, duration);
    let mut target_weighted = 0.0;
    let mut stats_error = None;
    let mut on_tick = |t: &Tick<'_>| {
        progress.tick(t);
        target_weighted += t.target_cps * t.interval_len.as_secs_f64();
        if let Some(f) = stats.as_mut()
            && !(t.done && t.interval_len < a.stats_interval / 10)
            && let Err(e) = f.write_row(
                t.elapsed,
                t.interval_len,
                t.interval,
                t.cumulative,
                t.target_cps,
            )
        {
            stats_error.get_or_insert(e);
        }
    };
    let mut cumulative = if role == Role::Uas && peer_handle.is_some() {
        // Loopback UAS: the calls end when the peer's end; stop serving then.
        std::thread::scope(|scope| {
            let peer_ref = &peer_handle;
            let main_shared = main_shared.clone();
            scope.spawn(move || {
                if let Some(h) = peer_ref {
                    h.wait_finished();
                }
                main_shared.stop.store(true, Ordering::Relaxed);
            });
            coordinate(rx, main_workers, t0, a.stats_interval, &rate, &mut on_tick)
        })
    } else {
        coordinate(rx, main_workers, t0, a.stats_interval, &rate, &mut on_tick)
    };
    let elapsed = t0.elapsed();
    progress.finish();
    if let Some(f) = stats.as_mut() {
        f.flush().context("writing --stats")?;
    }
    if let Some(e) = stats_error {
        return Err(anyhow::Error::new(e).context("writing --stats"));
    }
    let main_failures = main_handle.failures.clone();
    let main_final = main_handle.join().context("worker")?;
    // Everything the workers counted reached `cumulative` through their final snapshots.
    cumulative.last_start = cumulative.last_start.max(main_final.last_start);
    peer_shared.stop.store(true, Ordering::Relaxed);
    let peer_result = match peer_handle {
        Some(h) => {
            let (name, role) = (h.name.clone(), h.role);
            Some((name, role, h.join().context("loopback peer")?))
        }
        None => None,
    };
    let failures = main_failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for (w, path) in writers {
        // Every sink was dropped with its driver, so the writer can finish the file.
        let w = Arc::try_unwrap(w)
            .map_err(|_| anyhow::anyhow!("trace {} still in use", path.display()))?;
        w.finish()
            .with_context(|| format!("writing trace {}", path.display()))?;
    }
    let target_cps = match &rate {
        RatePlan::Constant(c) => *c,
        _ if elapsed.as_secs_f64() > 0.0 => target_weighted / elapsed.as_secs_f64(),
        _ => 0.0,
    };
    let main_side = Side {
        scenario: &plan_name,
        role: role_name(role),
        counters: &cumulative,
    };
    let peer_side = peer_result.as_ref().map(|(n, r, c)| Side {
        scenario: n,
        role: role_name(*r),
        counters: c,
    });
    let data = ReportData {
        main: &main_side,
        peer: peer_side.as_ref(),
        elapsed,
        target_cps,
        achieved_cps: cumulative.achieved_cps(),
        failures: &failures,
    };
    if !a.quiet {
        print!("{}", summary_text(&data));
    }
    for path in &a.report {
        write_report_file(path, &data)
            .with_context(|| format!("writing report {}", path.display()))?;
    }
    drop(loopback_cert);
    Ok(if cumulative.calls_failed > 0 { 1 } else { 0 })
}

/// Does a side listen for connections? A UAS always (on a connection transport); a
/// UAC too (a proxy may connect towards its Contact), unless it would need a
/// certificate it does not have.
fn listens(kind: TransportKind, role: Role, tls: &TlsSettings) -> bool {
    kind.is_connection() && (role == Role::Uas || !kind.is_secure() || tls.cert.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        assert_eq!(parse_bind("127.0.0.1:5060").unwrap().port(), 5060);
        assert_eq!(parse_bind("127.0.0.1").unwrap().port(), 0);
        assert!(parse_bind("nonsense").is_err());
    }
}

//! One side of a run (a scenario on N worker drivers) and the coordinator that turns
//! their periodic snapshots into interval and cumulative statistics.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::report::{Counters, FailureSample};
use crate::scenario::call::{CallEnv, Outcome};
use crate::scenario::plan::{Plan, Role};
use crate::sip::transaction::Timers;
use crate::transport::kind::TransportKind;
use crate::transport::{tcp, udp};

use super::driver::{ConnectionModel, Driver, DriverConfig, RunShared, Snapshot};
use super::media::MediaEngine;
use super::schedule::RatePlan;
use super::tracing::TraceTarget;
use crate::report::trace::{TraceFormat, TraceWriter};
use crate::transport::connection::ConnectionSettings;
use crate::transport::connections::Connections;
use crate::transport::ports::PortPool;

/// Failed calls whose details are kept per side (counts are kept for all).
pub const FAILURE_SAMPLES: usize = 20;

/// Everything needed to start one side.
pub struct SideSpec {
    pub plan: Arc<Plan>,
    /// One socket set per worker (UAC: each its own port; UAS: one port via
    /// SO_REUSEPORT).
    pub sockets: Vec<WorkerSockets>,
    /// The SIP transport; connection transports take the settings below.
    pub transport: TransportKind,
    pub connection_settings: ConnectionSettings,
    pub connection_model: ConnectionModel,
    /// Server name for TLS (SNI, verification) and WebSocket `Host`.
    pub connection_host: String,
    /// Idle time before a keep-alive on connections we opened (None: none).
    pub keepalive: Option<Duration>,
    /// Written in Via/Contact instead of the IP (WebSocket clients: a random
    /// `.invalid` host, RFC 7118 §5.2).
    pub via_host: Option<String>,
    /// IP written in messages.
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
    pub target_uri: String,
    pub timers: Timers,
    pub t0: Instant,
    pub rate: RatePlan,
    pub max_calls: Option<u64>,
    /// Calls in progress at most, for the whole side (split across workers).
    pub concurrency: Option<usize>,
    pub duration: Option<Duration>,
    pub drain_timeout: Duration,
    pub stats_interval: Duration,
    /// See `DriverConfig::batch_window`.
    pub batch_window: Duration,
    /// Message traces this side writes (each worker gets its own sink).
    pub traces: Vec<TraceSpec>,
    /// RTP/RTCP ports for calls with media (shared by every side of the process).
    pub rtp_ports: Arc<Mutex<PortPool>>,
    /// `--rtp-shared`: one media socket pair per driver instead of per call.
    pub rtp_shared: bool,
}

pub struct TraceSpec {
    pub writer: Arc<TraceWriter>,
    pub format: TraceFormat,
    pub failed_only: bool,
    /// Also record the calls' RTP/RTCP (pcap traces of every call only).
    pub media: bool,
}

/// One worker's sockets: its SIP UDP socket and, for connection transports, the
/// TCP listener on the same port.
pub struct WorkerSockets {
    pub udp: UdpSocket,
    pub listener: Option<TcpListener>,
}

/// Bind the sockets for `workers` drivers at `bind`. A UAS shares one port among its
/// workers (SO_REUSEPORT: the kernel spreads peers by address); a UAC gives each worker
/// its own port (responses must come back to the worker that sent the request), `bind`'s
/// port + worker index when a port was given. Connection transports also listen on
/// TCP at each worker's port (a UAC too: a proxy may open a connection towards its
/// Contact).
pub fn bind_side(
    role: Role,
    bind: SocketAddr,
    workers: usize,
    listen: bool,
) -> io::Result<Vec<WorkerSockets>> {
    // A port chosen by the kernel for UDP may be taken in TCP: try a few.
    let attempts = if bind.port() == 0 && listen { 8 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        match bind_side_once(role, bind, workers, listen) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no sockets")))
}

fn bind_side_once(
    role: Role,
    bind: SocketAddr,
    workers: usize,
    listen: bool,
) -> io::Result<Vec<WorkerSockets>> {
    let workers = workers.max(1);
    let udp = match role {
        Role::Uas => udp::bind_shared(bind, workers)?,
        Role::Uac => (0..workers)
            .map(|w| {
                let port = if bind.port() == 0 {
                    0
                } else {
                    bind.port().saturating_add(w as u16)
                };
                udp::bind(SocketAddr::new(bind.ip(), port))
            })
            .collect::<io::Result<_>>()?,
    };
    udp.into_iter()
        .map(|udp| {
            let listener = if listen {
                let at = SocketAddr::new(bind.ip(), udp.local_addr()?.port());
                Some(tcp::listen(at, role == Role::Uas)?)
            } else {
                None
            };
            Ok(WorkerSockets { udp, listener })
        })
        .collect()
}

pub struct SideHandle {
    pub name: String,
    pub role: Role,
    pub local: SocketAddr,
    threads: Vec<JoinHandle<io::Result<Counters>>>,
    pub failures: Arc<Mutex<Vec<FailureSample>>>,
}

impl SideHandle {
    /// Block until every worker has returned (without collecting results).
    pub fn wait_finished(&self) {
        while !self.threads.iter().all(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait for every worker; their final counters merged.
    pub fn join(self) -> io::Result<Counters> {
        let mut total = Counters::default();
        let mut first_err = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(c)) => total.merge(&c),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(io::Error::other("a worker thread panicked"));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

/// Start one driver thread per socket.
pub fn spawn_side(
    spec: SideSpec,
    shared: Arc<RunShared>,
    snapshots: Option<Sender<Snapshot>>,
) -> io::Result<SideHandle> {
    let workers = spec.sockets.len();
    let failures: Arc<Mutex<Vec<FailureSample>>> = Arc::default();
    let local = spec
        .sockets
        .first()
        .map(|s| s.udp.local_addr())
        .transpose()?
        .unwrap_or(spec.remote);
    let mut threads = Vec::with_capacity(workers);
    let per_worker = spec.concurrency.map(|c| c.div_ceil(workers.max(1)).max(1));
    for (w, sockets) in spec.sockets.into_iter().enumerate() {
        let WorkerSockets {
            udp: socket,
            listener,
        } = sockets;
        let port = socket.local_addr()?.port();
        let env = CallEnv {
            plan: spec.plan.clone(),
            local_ip: spec
                .via_host
                .clone()
                .unwrap_or_else(|| spec.local_ip.to_string()),
            local_port: port,
            transport: spec.transport,
            timers: spec.timers,
            remote: spec.remote,
            remote_ip_text: crate::scenario::call::sip_ip_text(spec.remote.ip()),
            target_uri: spec.target_uri.clone(),
            run_id: rand::random(),
            media_ip: spec.local_ip.to_string(),
            media_port_base: 10_000,
            keep_last: false,
            worker: w,
            workers,
        };
        let cfg = DriverConfig {
            worker: w,
            workers,
            t0: spec.t0,
            rate: spec.rate.clone(),
            max_calls: spec.max_calls,
            concurrency: per_worker,
            duration: spec.duration,
            drain_timeout: spec.drain_timeout,
            stats_interval: spec.stats_interval,
            batch_window: spec.batch_window,
        };
        let mut driver = Driver::new(socket, env, cfg, shared.clone())?;
        if let Some(media) = &spec.plan.media {
            let mut engine = MediaEngine::new(
                media.clone(),
                spec.local_ip,
                spec.rtp_ports.clone(),
                rand::random(),
                spec.rtp_shared,
                driver.registrar()?,
            )?;
            if let Some(t) = spec.traces.iter().find(|t| t.media) {
                engine.set_trace(t.writer.sink());
            }
            driver.set_media(engine);
        }
        if spec.transport.is_connection() {
            let conns = Connections::new(
                spec.transport,
                spec.connection_settings.clone(),
                driver.registrar()?,
                listener,
                spec.keepalive,
            )?;
            let model = match spec.connection_model {
                // N connections for the side: each worker holds its share.
                ConnectionModel::Pool(n) => ConnectionModel::Pool(n.div_ceil(workers).max(1)),
                m => m,
            };
            driver.set_connections(conns, model, spec.connection_host.clone());
        }
        if let Some(tx) = &snapshots {
            driver.set_snapshots(tx.clone());
        }
        driver.set_traces(
            spec.traces
                .iter()
                .map(|t| TraceTarget {
                    sink: t.writer.sink(),
                    format: t.format,
                    failed_only: t.failed_only,
                })
                .collect(),
        );
        let samples = failures.clone();
        driver.set_observer(Box::new(move |call, outcome, _, media| {
            if let Outcome::Failed(reason) = outcome {
                let mut list = samples.lock().unwrap_or_else(|e| e.into_inner());
                if list.len() < FAILURE_SAMPLES {
                    let mut detail = call.failure_detail().unwrap_or("").to_string();
                    if let Some(f) = media {
                        detail.push_str(&format!(
                            " [rtp: {} sent, {} received, {} lost, jitter {:.2} ms, max gap {:.1} ms; dtmf {} sent, {} received]",
                            f.packets_sent,
                            f.packets_received,
                            f.lost,
                            f.jitter.as_secs_f64() * 1000.0,
                            f.max_gap.as_secs_f64() * 1000.0,
                            f.digits_sent,
                            f.digits_received
                        ));
                    }
                    list.push(FailureSample {
                        call_number: call.number(),
                        call_id: call.call_id().to_string(),
                        reason: *reason,
                        detail,
                    });
                }
            }
        }));
        let handle = std::thread::Builder::new()
            .name(format!("{}-{w}", spec.plan.name))
            .spawn(move || -> io::Result<Counters> {
                driver.run()?;
                Ok(driver.counters().clone())
            })?;
        threads.push(handle);
    }
    Ok(SideHandle {
        name: spec.plan.name.clone(),
        role: spec.plan.role,
        local,
        threads,
        failures,
    })
}

/// One statistics interval as the coordinator sees it.
pub struct Tick<'a> {
    pub elapsed: Duration,
    pub interval_len: Duration,
    /// Counters of this interval (latency: recorded during it).
    pub interval: &'a Counters,
    /// Counters since the start (latency: all of it).
    pub cumulative: &'a Counters,
    /// Calls in progress at the last snapshots.
    pub running: usize,
    pub target_cps: f64,
    /// The last tick: every worker has finished.
    pub done: bool,
}

/// Collect snapshots from `workers` drivers until all are done, calling `on_tick` once
/// per `interval` (and once at the end). Returns the cumulative counters.
pub fn coordinate(
    rx: Receiver<Snapshot>,
    workers: usize,
    t0: Instant,
    interval: Duration,
    rate: &RatePlan,
    on_tick: &mut dyn FnMut(&Tick<'_>),
) -> Counters {
    let mut latest: Vec<Counters> = vec![Counters::default(); workers];
    let mut running = vec![0usize; workers];
    let mut done = vec![false; workers];
    let mut cumulative = Counters::default();
    let mut interval_latency = Counters::default().latency;
    // Ticks trail the drivers' snapshot times a little so each interval is complete.
    let grace = Duration::from_millis(20).min(interval / 4);
    let mut next_tick = t0 + interval + grace;
    let mut last_tick = t0;
    loop {
        let now = Instant::now();
        let all_done = done.iter().all(|d| *d);
        if now >= next_tick || all_done {
            let mut total = Counters::default();
            for c in &latest {
                total.merge_scalars(c);
            }
            let mut delta = total.since(&cumulative);
            delta.latency = std::mem::take(&mut interval_latency);
            total.latency = std::mem::take(&mut cumulative.latency);
            total.latency.merge(&delta.latency);
            cumulative = total;
            let elapsed = now.saturating_duration_since(t0);
            let tick = Tick {
                elapsed,
                interval_len: now.saturating_duration_since(last_tick),
                interval: &delta,
                cumulative: &cumulative,
                running: running.iter().sum(),
                target_cps: rate.rate_at(elapsed),
                done: all_done,
            };
            on_tick(&tick);
            last_tick = now;
            while next_tick <= now {
                next_tick += interval;
            }
            if all_done {
                return cumulative;
            }
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(mut snap) => {
                let w = snap.worker.min(workers.saturating_sub(1));
                interval_latency.merge(&snap.counters.latency);
                snap.counters.latency.reset();
                latest[w] = snap.counters;
                running[w] = snap.running;
                done[w] |= snap.done;
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Every driver is gone (a worker failed to start or panicked).
            Err(RecvTimeoutError::Disconnected) => done.iter_mut().for_each(|d| *d = true),
        }
    }
}

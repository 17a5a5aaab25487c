//! A driver owns one socket and multiplexes every call on it: it starts calls on an
//! open-loop schedule, routes datagrams to calls by Call-ID, fires call timers from
//! one heap, and sends what calls produce. One thread, no task per call.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::media::control::{MediaControl, NoMedia};
use crate::media::stream::StreamFigures;
use crate::report::latency::Metric;
use crate::report::{Counters, FailureReason, StrayCause};
use crate::scenario::call::{Call, CallEnv, Effects, Outbox, Outcome, response_destination};
use crate::scenario::plan::{Role, StepKind};
use crate::sip::{message, validate};
use crate::transport::udp;

use super::call_index::CallIndex;
use super::linger::Linger;
use super::media::MediaEngine;
use super::schedule::{RatePlan, Schedule};
use super::stateless;
use super::tracing::{CallTraces, TraceTarget, Tracer};
use crate::report::trace::{Direction, Segment};
use crate::transport::connections::{CloseReason, ConnId, Connections};
use crate::transport::poller::{Poller, Registrar};

/// Datagrams one recvmmsg call may return.
const RECV_SLOTS: usize = 32;
/// recvmmsg calls per wake-up before timers and starts get a turn again.
const RECV_ROUNDS: usize = 8;
/// Queued packets that trigger a send before the end of the loop iteration.
const FLUSH_AT: usize = 64;
/// Shortest sleep while media flows: deadlines closer together than this run
/// together.
const MEDIA_MIN_SLEEP: Duration = Duration::from_micros(50);
/// Longest sleep: stop flags and the run duration are noticed at least this often.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// The driver's SIP UDP socket in its poller.
const SIP_TOKEN: u64 = 0;
/// Readiness events one wait returns at most.
const POLL_EVENTS: usize = 1024;

/// Which connection a call's messages take (tcp, tls, ws, wss).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionModel {
    /// Each call opens its own connection, closed when the call is done (SIPp's
    /// `-t tn`; phones and browsers each hold their own).
    PerCall,
    /// One connection per worker and destination, shared by its calls (`-t t1`).
    PerWorker,
    /// This many connections per worker and destination; call k takes k mod N.
    Pool(usize),
}

/// How a queued packet leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The owner call's connection, else one to the destination (opened if needed).
    Auto,
    /// This connection (a response goes back the way its request came).
    Conn(ConnId),
    /// The UDP socket (a request that came over UDP on a connection side).
    Udp,
}

#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// This driver's index among `workers` (they share one call schedule).
    pub worker: usize,
    pub workers: usize,
    /// Common origin of the schedule, `--duration` and statistics intervals.
    pub t0: Instant,
    /// Call starts (UAC).
    pub rate: RatePlan,
    /// UAC: calls to start in the whole run. UAS: calls to serve. None: until stopped.
    pub max_calls: Option<u64>,
    /// Calls in progress at most on this driver; a start that would exceed it waits.
    pub concurrency: Option<usize>,
    /// Stop starting calls after this long.
    pub duration: Option<Duration>,
    /// After stopping, how long calls in progress may take to finish.
    pub drain_timeout: Duration,
    /// How often a snapshot goes to the coordinator (when there is one).
    pub stats_interval: Duration,
    /// While busy, how long to sleep between passes so datagrams are read in batches;
    /// zero wakes on every datagram (lowest latency, most CPU).
    pub batch_window: Duration,
}

/// State all drivers of a run share; touched once per call, never per packet.
#[derive(Debug, Default)]
pub struct RunShared {
    /// Stop starting calls and drain (set by the coordinator or at the end of a run).
    pub stop: AtomicBool,
    /// Stop at once: abort calls in progress (a second interrupt).
    pub force: AtomicBool,
    /// Calls accepted by UAS drivers (numbering and the `--calls` limit across workers).
    pub accepted: AtomicU64,
}

/// What a driver reports to the coordinator every `stats_interval` and at the end.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub worker: usize,
    /// Counters since the start of the run, except `latency`, which holds only what was
    /// recorded since the previous snapshot (histograms are merged, not differenced).
    pub counters: Counters,
    /// Calls in progress now.
    pub running: usize,
    /// Last snapshot of this driver.
    pub done: bool,
}

/// Called once per finished call: the call, its outcome, its length, and its RTP
/// stream's figures when it had media.
pub type Observer = Box<dyn FnMut(&Call, &Outcome, Duration, Option<&StreamFigures>) + Send>;

struct Slot {
    call: Call,
    generation: u32,
    started: Instant,
    /// The earliest entry this call has in the timer heap (entries at other times are
    /// stale and skipped when popped). A deadline that moves later is not pushed: the
    /// earlier entry fires first and the call is rescheduled then. Most deadlines only
    /// move later (Timer A, then Timer B 32 s out, then nothing once the call ends),
    /// so the heap holds about one short-lived entry per call instead of several,
    /// some lasting 32 s.
    scheduled: Option<Instant>,
    counted: bool,
    traces: CallTraces,
    /// The connection this call's messages take (connection transports).
    conn: Option<ConnId>,
}

pub struct Driver {
    socket: UdpSocket,
    /// One readiness poller for everything this driver owns: the SIP socket, the
    /// listener and connections, media sockets.
    poller: Poller,
    /// Tokens of the last wait, handled on the next pass (edge-triggered: each
    /// event is seen once).
    ready: Vec<u64>,
    /// tcp/tls/ws/wss: the connection table, and how calls share connections.
    conns: Option<Connections>,
    model: ConnectionModel,
    /// Server name for TLS and WebSocket (`Host`) when this side opens connections.
    conn_host: String,
    /// `ConnectionModel::Pool`: the shared connections, by call number mod N.
    pool: Vec<Option<ConnId>>,
    /// The connection (or, None with `via_udp`, the UDP socket) of the message
    /// being handled: new calls adopt it and responses go back on it.
    arrival: Option<ConnId>,
    /// The message being handled came over UDP on a side that uses connections.
    arrival_udp: bool,
    /// How each packet in `out` leaves (parallel to `out_owner`).
    out_route: Vec<Route>,
    env: CallEnv,
    cfg: DriverConfig,
    role: Role,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    generation: u32,
    by_call_id: CallIndex,
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    counters: Counters,
    out: Outbox,
    /// Which call produced each packet in `out` (slot index, generation).
    out_owner: Vec<(usize, u32)>,
    /// Calls whose outcome is not yet known.
    running: usize,
    /// Calls created by this driver.
    created: u64,
    schedule: Schedule,
    shared: Arc<RunShared>,
    snapshots: Option<Sender<Snapshot>>,
    observer: Option<Observer>,
    tracer: Option<Tracer>,
    /// What finished calls answered, kept only to answer a retransmitted request
    /// (timer J); far smaller than keeping the calls.
    lingering: Linger,
    /// Header storage handed from one parsed datagram to the next (no allocation
    /// per message).
    headers: Vec<message::Header<'static>>,
    /// RTP/RTCP of this driver's calls, when the scenario has media.
    media: Option<MediaEngine>,
    no_media: NoMedia,
}

/// What a call's input may touch: the driver's outbox and counters, and the media
/// engine (acting for that call) or no media.
fn effects<'a>(
    out: &'a mut Outbox,
    ctr: &'a mut Counters,
    media: &'a mut Option<MediaEngine>,
    no_media: &'a mut NoMedia,
    idx: usize,
    generation: u32,
) -> Effects<'a> {
    let media: &'a mut dyn MediaControl = match media {
        Some(e) => {
            e.set_owner(idx, generation);
            e
        }
        None => no_media,
    };
    Effects { out, ctr, media }
}

impl Driver {
    pub fn new(
        socket: UdpSocket,
        env: CallEnv,
        cfg: DriverConfig,
        shared: Arc<RunShared>,
    ) -> io::Result<Driver> {
        use std::os::fd::AsRawFd;
        let role = env.plan.role;
        let poller = Poller::new(POLL_EVENTS)?;
        poller.register(socket.as_raw_fd(), SIP_TOKEN)?;
        let schedule = Schedule::new(
            cfg.rate.clone(),
            cfg.worker as u64,
            cfg.workers.max(1) as u64,
        );
        Ok(Driver {
            socket,
            poller,
            ready: Vec::new(),
            conns: None,
            model: ConnectionModel::PerCall,
            conn_host: String::new(),
            pool: Vec::new(),
            arrival: None,
            arrival_udp: false,
            out_route: Vec::new(),
            env,
            cfg,
            role,
            slots: Vec::new(),
            free: Vec::new(),
            generation: 0,
            by_call_id: CallIndex::default(),
            timers: BinaryHeap::new(),
            counters: Counters::default(),
            out: Outbox::default(),
            out_owner: Vec::new(),
            running: 0,
            created: 0,
            schedule,
            shared,
            snapshots: None,
            observer: None,
            tracer: None,
            lingering: Linger::default(),
            headers: Vec::new(),
            media: None,
            no_media: NoMedia,
        })
    }

    /// Registers sockets (media, connections) with this driver's poller.
    pub fn registrar(&self) -> io::Result<Registrar> {
        self.poller.registrar()
    }

    /// Give this driver a media engine (made with this driver's `registrar`).
    pub fn set_media(&mut self, engine: MediaEngine) {
        self.media = Some(engine);
    }

    /// Carry SIP over connections (made with this driver's `registrar`): `host`
    /// names the peer for TLS and WebSocket.
    pub fn set_connections(&mut self, conns: Connections, model: ConnectionModel, host: String) {
        self.pool = match model {
            ConnectionModel::Pool(n) => vec![None; n.max(1)],
            _ => Vec::new(),
        };
        self.conns = Some(conns);
        self.model = model;
        self.conn_host = host;
    }

    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// Record messages to these trace targets.
    pub fn set_traces(&mut self, targets: Vec<TraceTarget>) {
        if targets.is_empty() {
            return;
        }
        let ip = self
            .env
            .local_ip
            .parse()
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        self.tracer = Some(Tracer::new(
            targets,
            SocketAddr::new(ip, self.env.local_port),
        ));
    }

    /// Send a [`Snapshot`] every `stats_interval` (and a last one at the end) here.
    pub fn set_snapshots(&mut self, tx: Sender<Snapshot>) {
        self.snapshots = Some(tx);
    }

    pub fn counters(&mut self) -> &Counters {
        self.collect_media();
        self.collect_connections();
        &self.counters
    }

    /// Run until the configured calls are done or the run is stopped (then drain).
    pub fn run(&mut self) -> io::Result<()> {
        let t0 = self.cfg.t0;
        let mut batch = udp::RecvBatch::new(RECV_SLOTS);
        let mut draining_since: Option<Instant> = None;
        let mut next_snapshot = t0 + self.cfg.stats_interval;
        let mut last_activity = 0;
        let result = loop {
            let now = Instant::now();
            if self.shared.force.load(Ordering::Relaxed) || super::signal::forced() {
                self.abort_all("the run was stopped at once");
                break Ok(());
            }
            // An interrupt or the end of --duration drains with a time limit; reaching
            // --calls or the end of a ramp lets the last calls run their course.
            let interrupted = self.shared.stop.load(Ordering::Relaxed)
                || super::signal::interrupted()
                || self.cfg.duration.is_some_and(|d| now >= t0 + d);
            if interrupted && draining_since.is_none() {
                draining_since = Some(now);
            }
            let mut next_start = None;
            if self.role == Role::Uac && !interrupted {
                next_start = self.start_due_calls(now);
            }
            let starting = next_start.is_some();
            self.fire_timers(now);
            self.media_turn(now);
            self.connection_turn(now);
            self.ready.clear();
            self.lingering.expire(now);
            for _ in 0..RECV_ROUNDS {
                // ICMP errors surface here (e.g. port unreachable); the affected calls
                // time out on their own, so the run goes on.
                let n = batch.recv(&self.socket).unwrap_or_default();
                let now = Instant::now();
                self.arrival_udp = self.conns.is_some();
                for i in 0..n {
                    let (data, from) = batch.get(i);
                    self.on_datagram(data, from, now);
                }
                self.arrival_udp = false;
                self.flush();
                if n < RECV_SLOTS {
                    break;
                }
            }
            self.flush();
            if now >= next_snapshot {
                self.send_snapshot(false);
                next_snapshot += self.cfg.stats_interval;
                if next_snapshot < now {
                    next_snapshot = now + self.cfg.stats_interval;
                }
            }
            let can_start_more = match self.role {
                Role::Uac => starting,
                Role::Uas => {
                    !interrupted
                        && self
                            .cfg
                            .max_calls
                            .is_none_or(|m| self.shared.accepted.load(Ordering::Relaxed) < m)
                }
            };
            // Per-call connections still lingering after their calls close first (a
            // forced stop or the drain limit does not wait for them).
            let lingering = self.conns.as_ref().is_some_and(|c| c.closing() > 0);
            if !can_start_more && self.running == 0 && !lingering {
                break Ok(());
            }
            if let Some(since) = draining_since
                && now >= since + self.cfg.drain_timeout
                && self.running > 0
            {
                self.abort_all("the run ended while the call was in progress");
                break Ok(());
            }
            if let Some(m) = self.media.as_mut() {
                // Streams the calls touched in this pass (a play, a new peer address).
                m.reschedule();
            }
            let mut wake = self.timers.peek().map(|Reverse((t, _, _))| *t);
            let media_deadline = self.media.as_ref().and_then(|m| m.next_deadline());
            let media_active = self.media.as_ref().is_some_and(|m| m.active() > 0);
            for t in [
                media_deadline,
                next_start,
                Some(next_snapshot),
                draining_since.map(|s| s + self.cfg.drain_timeout),
            ]
            .into_iter()
            .flatten()
            {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
            // Wake at least every 50 ms to notice stop flags and the run duration.
            let now = Instant::now();
            let timeout = wake
                .map_or(MAX_SLEEP, |w| w.saturating_duration_since(now))
                .min(MAX_SLEEP);
            let activity = self.counters.messages_received + self.counters.calls_started;
            let busy = activity != last_activity;
            last_activity = activity;
            if timeout.is_zero() {
                continue;
            }
            if media_active && self.cfg.batch_window > Duration::ZERO {
                // Media paces on absolute deadlines; waking on a fixed grid (not
                // "a window after the last pass") keeps each stream's lateness the
                // same from one packet to the next, so the grid adds no jitter.
                // A deadline before the next grid tick is met on time (not more
                // often than every MEDIA_MIN_SLEEP): waiting for the tick instead
                // costs 6–10 % less CPU at 5,000 streams but lets each stream's
                // place in the tick's batch vary, mean jitter 0.37 ms instead of
                // 0.03–0.13 ms (docs/performance.md).
                let window = self.cfg.batch_window.min(MAX_SLEEP);
                let tick = grid_after(t0, now, window).min(now + timeout.max(MEDIA_MIN_SLEEP));
                std::thread::sleep(tick.saturating_duration_since(Instant::now()));
                if let Err(e) = self.wait(Some(Duration::ZERO)) {
                    break Err(e);
                }
            } else if busy && self.cfg.batch_window > Duration::ZERO {
                // Under load, sleep a fixed slice and take whatever arrived in it with
                // one recvmmsg, instead of waking (a context switch) per datagram; call
                // starts and timers due inside the slice run at its end, at most one
                // slice late (latencies still count from the intended start). Waking
                // for each of them instead (every 100 µs at 10,000 calls/s) costs more
                // CPU in sleeps and wake-ups than the calls themselves.
                std::thread::sleep(self.cfg.batch_window.min(MAX_SLEEP));
                if let Err(e) = self.wait(Some(Duration::ZERO)) {
                    break Err(e);
                }
            } else if let Err(e) = self.wait(Some(timeout)) {
                // Idle: the first datagram or connection event wakes us, so latency
                // stays low.
                break Err(e);
            }
        };
        if let Some(c) = self.conns.as_mut() {
            c.close_all();
            c.closed.clear();
        }
        self.send_snapshot(true);
        if let Some(t) = self.tracer.as_mut() {
            t.flush();
        }
        result
    }

    /// Wait for readiness (or `timeout`) and keep the tokens for the next pass.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.poller.wait(timeout)?;
        self.ready
            .extend(self.poller.ready().filter(|t| *t != SIP_TOKEN));
        Ok(())
    }

    /// Connections: accept, read, close; hand every message received to its call.
    fn connection_turn(&mut self, now: Instant) {
        let Some(conns) = self.conns.as_mut() else {
            return;
        };
        for &t in &self.ready {
            conns.on_ready(t, now);
        }
        conns.poll_pending(now);
        let received = std::mem::take(&mut conns.received);
        let messages = std::mem::take(&mut conns.messages);
        for (id, peer, range) in &messages {
            self.arrival = Some(*id);
            self.on_datagram(&received[range.clone()], *peer, now);
        }
        self.arrival = None;
        let Some(conns) = self.conns.as_mut() else {
            return;
        };
        for cause in conns.unframed.drain(..) {
            self.counters.unparseable(cause);
        }
        let (mut received, mut messages) = (received, messages);
        received.clear();
        messages.clear();
        conns.received = received;
        conns.messages = messages;
        let closed = std::mem::take(&mut conns.closed);
        for c in &closed {
            if c.reason == CloseReason::Local {
                continue;
            }
            let why = format!("connection {}: {}", c.reason.as_str(), c.detail);
            match c.owner {
                Some((idx, generation)) => self.fail_call(idx, generation, &why, now),
                None => {
                    // A shared connection: every call on it loses its path.
                    for idx in 0..self.slots.len() {
                        let on_it = self.slots[idx]
                            .as_ref()
                            .filter(|s| s.conn == Some(c.id))
                            .map(|s| s.generation);
                        if let Some(generation) = on_it {
                            self.fail_call(idx, generation, &why, now);
                        }
                    }
                }
            }
        }
        self.flush();
    }

    /// A transport failure for one call (if it is still running).
    fn fail_call(&mut self, idx: usize, generation: u32, why: &str, now: Instant) {
        if let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut())
            && slot.generation == generation
            && slot.call.is_running()
        {
            slot.call
                .fail_external(FailureReason::TransportError, why.to_string());
            self.account(idx, now);
        }
    }

    /// The connection table's figures into the driver's counters.
    fn collect_connections(&mut self) {
        let Some(conns) = self.conns.as_mut() else {
            return;
        };
        self.counters.connections = conns.counters.clone();
        for d in conns.handshakes.drain(..) {
            self.counters.latency.record(Metric::TlsHandshake, d);
        }
    }

    /// Hand the media engine's totals to the driver's counters.
    fn collect_media(&mut self) {
        let Some(engine) = self.media.as_mut() else {
            return;
        };
        let c = std::mem::take(&mut engine.counters);
        self.counters.media.merge(&c);
        self.counters.media.streams_active = engine.active() as u64;
        for j in engine.jitter_samples.drain(..) {
            self.counters.latency.record(Metric::RtpJitter, j);
        }
    }

    /// Media: send what is due, read what arrived, wake the calls it concerns.
    fn media_turn(&mut self, now: Instant) {
        let Some(engine) = self.media.as_mut() else {
            return;
        };
        engine.reschedule();
        engine.fire(now);
        engine.read_ready(&self.ready);
        engine.read_shared();
        engine.reschedule();
        let events = std::mem::take(&mut engine.events);
        for &(idx, generation) in &events {
            let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else {
                continue;
            };
            if slot.generation != generation {
                continue;
            }
            let mut fx = effects(
                &mut self.out,
                &mut self.counters,
                &mut self.media,
                &mut self.no_media,
                idx,
                generation,
            );
            slot.call.on_media_event(&self.env, now, &mut fx);
            self.after_event(idx, now);
        }
        if let Some(engine) = self.media.as_mut() {
            let mut events = events;
            events.clear();
            engine.events = events;
            engine.reschedule();
        }
    }

    fn send_snapshot(&mut self, done: bool) {
        self.collect_media();
        self.collect_connections();
        let Some(tx) = &self.snapshots else { return };
        let snap = Snapshot {
            worker: self.cfg.worker,
            counters: self.counters.clone(),
            running: self.running,
            done,
        };
        self.counters.latency.reset();
        let _ = tx.send(snap);
    }

    /// Start every call whose scheduled time has come (open loop: the schedule says when
    /// call k starts whatever happened to earlier calls). Returns the next start time,
    /// or None when this driver starts no more calls.
    fn start_due_calls(&mut self, now: Instant) -> Option<Instant> {
        loop {
            let offset = self.schedule.peek()?;
            let due = self.cfg.t0.checked_add(offset)?;
            if due > now {
                return Some(due);
            }
            if self.cfg.concurrency.is_some_and(|c| self.running >= c) {
                // Held back by the cap: it starts late (counted once) when a call ends.
                return Some(now + Duration::from_millis(1));
            }
            let (_, index) = self.schedule.next()?;
            if self.cfg.max_calls.is_some_and(|m| index >= m) {
                return None;
            }
            if now.saturating_duration_since(due) > Duration::from_millis(1)
                && self.cfg.concurrency.is_some()
            {
                self.counters.starts_delayed += 1;
            }
            self.created += 1;
            let call = Call::new_uac(&self.env, index + 1, due);
            let idx = self.insert(call, now);
            self.counters.calls_started += 1;
            self.counters.last_start = Some(due.saturating_duration_since(self.cfg.t0));
            self.counters
                .latency
                .record(Metric::StartLag, now.saturating_duration_since(due));
            self.running += 1;
            if let Some(slot) = self.slots[idx].as_mut() {
                let mut fx = effects(
                    &mut self.out,
                    &mut self.counters,
                    &mut self.media,
                    &mut self.no_media,
                    idx,
                    slot.generation,
                );
                slot.call.start(&self.env, now, &mut fx);
            }
            self.after_event(idx, now);
        }
    }

    fn insert(&mut self, call: Call, now: Instant) -> usize {
        self.generation = self.generation.wrapping_add(1);
        let slot = Slot {
            call,
            generation: self.generation,
            started: now,
            scheduled: None,
            counted: false,
            traces: self
                .tracer
                .as_ref()
                .map(|t| t.new_call())
                .unwrap_or_default(),
            conn: self.arrival,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        if let Some(s) = &self.slots[idx] {
            self.by_call_id.insert(s.call.call_id(), idx);
            if let (Some(id), Some(c)) = (s.conn, self.conns.as_mut()) {
                c.adopt(id, (idx, s.generation));
            }
        }
        idx
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, idx, generation))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else {
                continue;
            };
            if slot.generation != generation || slot.scheduled != Some(t) {
                continue;
            }
            slot.scheduled = None;
            if slot.call.deadline().is_some_and(|d| d <= now) {
                let mut fx = effects(
                    &mut self.out,
                    &mut self.counters,
                    &mut self.media,
                    &mut self.no_media,
                    idx,
                    generation,
                );
                slot.call.on_timeout(&self.env, now, &mut fx);
            }
            self.after_event(idx, now);
        }
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        self.counters.messages_received += 1;
        let headers = std::mem::take(&mut self.headers);
        let msg = match message::parse_reusing(data, headers) {
            Ok(msg) => msg,
            Err(e) => {
                self.on_unparseable(&e, data, from);
                return;
            }
        };
        self.on_parsed(&msg, data, from, now);
        self.headers = msg.into_headers();
    }

    /// A datagram that does not parse: counted by cause and traced; a request
    /// whose head is whole enough to be answered gets a 400 saying what was
    /// wrong (RFC 3261 §18.3 asks it for a body shorter than Content-Length),
    /// anything else is dropped.
    fn on_unparseable(&mut self, e: &message::ParseError, data: &[u8], from: SocketAddr) {
        let rejection = validate::Rejection::of_parse_error(e, data);
        self.counters.unparseable(rejection.cause);
        self.trace(None, Direction::Received, from, data);
        if let Some(req) = message::salvage_request(data) {
            self.send_rejection(&req, &rejection, from);
        }
    }

    /// A request refused before any call saw it: counted, traced, answered when
    /// a response can be formed.
    fn reject(
        &mut self,
        msg: &message::Message<'_>,
        rejection: &validate::Rejection,
        from: SocketAddr,
        data: &[u8],
    ) {
        self.counters.unparseable(rejection.cause);
        self.trace(None, Direction::Received, from, data);
        self.send_rejection(msg, rejection, from);
    }

    /// The response to a refused request, sent statelessly where its top Via
    /// says (RFC 3261 §18.2.2), or nothing (an ACK, no usable Via).
    fn send_rejection(
        &mut self,
        req: &message::Message<'_>,
        rejection: &validate::Rejection,
        from: SocketAddr,
    ) {
        let mut reply = Vec::new();
        let tag = format!("{:08x}", self.env.run_id);
        if validate::write_rejection(req, rejection, &tag, &mut reply) {
            let dest = response_destination(req.top_via().as_ref(), from);
            self.send_raw(dest, &reply);
        }
    }

    fn on_parsed(
        &mut self,
        msg: &message::Message<'_>,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) {
        let Some(call_id) = msg.call_id() else {
            // No call to route it to. A request is told why (a missing or
            // malformed Call-ID, or whatever else is wrong first).
            if msg.is_request() {
                let rejection = validate::check_request(msg)
                    .err()
                    .unwrap_or_else(validate::Rejection::of_missing_call_id);
                self.reject(msg, &rejection, from, data);
            } else {
                self.counters
                    .unparseable(validate::Malformed::MissingHeader);
                self.trace(None, Direction::Received, from, data);
            }
            return;
        };
        let slots = &self.slots;
        let id_of = |i: usize| Some(slots.get(i)?.as_ref()?.call.call_id());
        let idx = match self.by_call_id.find(call_id, id_of) {
            Some(idx) => idx,
            None if self.lingering.contains(call_id) && !self.restarts_call(msg, call_id) => {
                self.on_lingering(msg, call_id, from, data);
                return;
            }
            None => {
                let Some(method) = msg.method() else {
                    // A response for a call we never had or already forgot.
                    self.counters.stray(StrayCause::ResponseNoCall);
                    self.trace(None, Direction::Received, from, data);
                    return;
                };
                // Requests that reach no call are checked here, before a call or a
                // stateless reply acts on them; a call's own requests are matched
                // by its transactions (no per-message cost on the load path).
                if let Err(rejection) = validate::check_request(msg) {
                    self.reject(msg, &rejection, from, data);
                    return;
                }
                let (accept, busy) = self.accepts(method);
                if !accept {
                    self.trace(None, Direction::Received, from, data);
                    let mut reply = Vec::new();
                    let cause = stateless::reply(msg, &self.env, busy, &mut reply);
                    self.counters.stray(cause);
                    if !reply.is_empty() {
                        self.send_raw(from, &reply);
                    }
                    return;
                }
                let number = self.shared.accepted.fetch_add(1, Ordering::Relaxed) + 1;
                self.created += 1;
                self.counters.calls_started += 1;
                self.counters.last_start = Some(now.saturating_duration_since(self.cfg.t0));
                self.running += 1;
                let call = Call::new_uas(&self.env, number, call_id, from, now);
                self.insert(call, now)
            }
        };
        self.trace(Some(idx), Direction::Received, from, data);
        if let (Some(id), Some(slot)) = (self.arrival, self.slots[idx].as_mut())
            && slot
                .conn
                .is_none_or(|c| !self.conns.as_ref().is_some_and(|t| t.is_alive(c)))
        {
            // The call's path was lost or never set: answer where the peer is now.
            slot.conn = Some(id);
            if let Some(c) = self.conns.as_mut() {
                c.adopt(id, (idx, slot.generation));
            }
        }
        if let Some(slot) = self.slots[idx].as_mut() {
            let mut fx = effects(
                &mut self.out,
                &mut self.counters,
                &mut self.media,
                &mut self.no_media,
                idx,
                slot.generation,
            );
            slot.call.on_message(&self.env, msg, from, now, &mut fx);
        }
        self.after_event(idx, now);
    }

    /// A message for a finished call: a retransmitted request gets its response again;
    /// anything else (a late ACK or response) is absorbed.
    fn on_lingering(
        &mut self,
        msg: &message::Message<'_>,
        call_id: &str,
        from: SocketAddr,
        data: &[u8],
    ) {
        self.trace(None, Direction::Received, from, data);
        self.counters.messages_absorbed += 1;
        let (via, sent_by) = msg.top_via_sent_by();
        let (Some(method), Some(via)) = (msg.method(), via) else {
            return;
        };
        let branch = via.branch.unwrap_or("");
        if let Some((dest, resp)) = self.lingering.response_to(call_id, branch, sent_by, method)
            && !resp.is_empty()
        {
            let resp = resp.to_vec();
            self.counters.messages_retransmitted += 1;
            self.send_raw(dest, &resp);
        }
    }

    /// A request for a finished call that is not a retransmission of one it answered
    /// and is outside any dialog (no To tag), with a method that starts calls here:
    /// a new call with the same Call-ID — a REGISTER refresh, which RFC 3261 §10.2
    /// sends with the Call-ID of the registration before it.
    fn restarts_call(&self, msg: &message::Message<'_>, call_id: &str) -> bool {
        let Some(method) = msg.method() else {
            return false;
        };
        if method == "ACK" || msg.to().is_none_or(|t| t.tag().is_some()) {
            return false;
        }
        let (via, sent_by) = msg.top_via_sent_by();
        let branch = via.and_then(|v| v.branch).unwrap_or("");
        self.lingering
            .response_to(call_id, branch, sent_by, method)
            .is_none()
            && self.accepts(method).0
    }

    /// Does an out-of-dialog request with this method start a new call here? Returns
    /// (accept, busy): busy when it would, but the run takes no more calls.
    fn accepts(&self, method: &str) -> (bool, bool) {
        let starts_call = self.role == Role::Uas
            && match self.env.plan.steps.first().map(|s| &s.kind) {
                Some(StepKind::Recv(r)) => r.matcher.matches_request(method),
                _ => false,
            };
        if !starts_call {
            return (false, false);
        }
        let full = self.shared.stop.load(Ordering::Relaxed)
            || super::signal::interrupted()
            || self
                .cfg
                .max_calls
                .is_some_and(|m| self.shared.accepted.load(Ordering::Relaxed) >= m)
            || self.cfg.concurrency.is_some_and(|c| self.running >= c);
        (!full, full)
    }

    /// Account for what the call just did: note which packets it queued, count its
    /// outcome, reschedule or reap it. Packets go out in `flush`.
    fn after_event(&mut self, idx: usize, now: Instant) {
        let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else {
            return;
        };
        let owner = (idx, slot.generation);
        let first = self.out_owner.len();
        self.out_owner.resize(self.out.len(), owner);
        // Responses made while handling a message go back on its connection
        // (RFC 3261 §18.2.2); everything else takes the call's own path.
        let arrival = self.arrival;
        for i in first..self.out.len() {
            let is_response = self
                .out
                .get(i)
                .is_some_and(|(_, b)| b.starts_with(b"SIP/2.0 "));
            self.out_route.push(match arrival {
                Some(id) if is_response => Route::Conn(id),
                None if is_response && self.arrival_udp => Route::Udp,
                _ => Route::Auto,
            });
        }
        if let Some(tracer) = self.tracer.as_mut()
            && self.conns.is_none()
        {
            // Over connections, a message is traced once its connection is known
            // (`flush_connections`).
            for (to, bytes) in self.out.iter().skip(first) {
                tracer.packet(Some(&mut slot.traces), Direction::Sent, to, bytes);
            }
        }
        self.account(idx, now);
        if self.out.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn account(&mut self, idx: usize, now: Instant) {
        let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else {
            return;
        };
        if let Some(outcome) = slot.call.take_outcome()
            && !slot.counted
        {
            slot.counted = true;
            self.running = self.running.saturating_sub(1);
            if let Some(tracer) = self.tracer.as_mut() {
                tracer.call_ended(&mut slot.traces, outcome != Outcome::Success);
            }
            match outcome {
                Outcome::Success => self.counters.calls_succeeded += 1,
                Outcome::Failed(reason) => {
                    self.counters.fail(reason);
                    if let Some(code) = slot.call.last_status().filter(|c| *c >= 300) {
                        *self.counters.failure_codes.entry(code).or_default() += 1;
                    }
                }
            }
            if let Some(obs) = self.observer.as_mut() {
                let figures = slot
                    .call
                    .media_handle()
                    .zip(self.media.as_ref())
                    .and_then(|(h, e)| e.get(h))
                    .map(|s| s.stream.figures());
                obs(
                    &slot.call,
                    &outcome,
                    now.saturating_duration_since(slot.started),
                    figures.as_ref(),
                );
            }
            if let Some(h) = slot.call.take_media()
                && let Some(engine) = self.media.as_mut()
            {
                engine.close(h, now);
            }
            slot.call.shrink_for_linger();
        }
        if let Some(txs) = slot.call.take_lingering() {
            self.lingering.insert(slot.call.call_id(), &txs);
        }
        if slot.call.is_reapable() {
            let generation = slot.generation;
            // What the call queued in this pass (its last message) goes out after it
            // is reaped, when there is no call left to find its connection by: pin
            // those packets to it now (opening it, if that message is the first).
            self.pin_routes(idx, generation, now);
            let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else {
                return;
            };
            if let (Some(id), Some(conns)) = (slot.conn, self.conns.as_mut())
                && self.model == ConnectionModel::PerCall
                && conns.outgoing_owner(id) == Some((idx, slot.generation))
            {
                // Per-call: the connection this call opened ends with it.
                conns.close_later(id, now);
            }
            self.by_call_id.remove(slot.call.call_id(), idx);
            self.slots[idx] = None;
            self.free.push(idx);
            return;
        }
        if let Some(d) = slot.call.deadline()
            && slot.scheduled.is_none_or(|s| d < s)
        {
            slot.scheduled = Some(d);
            self.timers.push(Reverse((d, idx, slot.generation)));
        }
    }

    /// Packets of call (`idx`, `generation`) still queued with no fixed route take
    /// the call's connection (see `account`). Connection transports only.
    fn pin_routes(&mut self, idx: usize, generation: u32, now: Instant) {
        if self.conns.is_none() {
            return;
        }
        for i in 0..self.out.len() {
            if self.out_owner.get(i) != Some(&(idx, generation))
                || self.out_route.get(i) != Some(&Route::Auto)
            {
                continue;
            }
            let Some((to, _)) = self.out.get(i) else {
                continue;
            };
            // On failure the route stays Auto: the flush tries again and reports it.
            if let Ok(id) = self.connection_for(Route::Auto, idx, generation, to, now) {
                self.out_route[i] = Route::Conn(id);
            }
        }
    }

    /// Send every queued packet (batched: one sendmmsg per up to 64). A packet the
    /// socket refuses fails the call that produced it.
    fn flush(&mut self) {
        if self.conns.is_some() {
            // Even with nothing queued: connections whose call ended are closed
            // there, once what the call queued last has been handed to them.
            self.flush_connections();
            return;
        }
        if self.out.is_empty() {
            return;
        }
        let failed = udp::send_batch(&self.socket, self.out.iter());
        let now = Instant::now();
        for (i, err) in failed {
            let Some(&(idx, generation)) = self.out_owner.get(i) else {
                continue;
            };
            let to = self.out.iter().nth(i).map(|(a, _)| a);
            if let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut())
                && slot.generation == generation
            {
                let to = to.map(|a| a.to_string()).unwrap_or_default();
                slot.call.fail_external(
                    FailureReason::TransportError,
                    format!("sending to {to}: {err}"),
                );
                self.account(idx, now);
            }
        }
        self.out.clear();
        self.out_owner.clear();
        self.out_route.clear();
    }

    /// Connection transports: each queued message goes to its connection (opened
    /// when the call has none); the table writes them all at the end.
    fn flush_connections(&mut self) {
        let now = Instant::now();
        let mut failed = Vec::new();
        for i in 0..self.out.len() {
            let Some((to, _)) = self.out.get(i) else {
                continue;
            };
            let (idx, generation) = self.out_owner.get(i).copied().unwrap_or((usize::MAX, 0));
            let route = self.out_route.get(i).copied().unwrap_or(Route::Auto);
            let call = self
                .slots
                .get(idx)
                .and_then(|s| s.as_ref())
                .filter(|s| s.generation == generation)
                .map(|_| idx);
            if route == Route::Udp {
                let bytes = self.out.get(i).map(|(_, b)| b.to_vec()).unwrap_or_default();
                let _ = self.socket.send_to(&bytes, to);
                self.trace_on(call, None, Direction::Sent, to, &bytes);
                continue;
            }
            let sent = match self.connection_for(route, idx, generation, to, now) {
                Ok(id) => {
                    if self.tracer.is_some() {
                        let bytes = self.out.get(i).map(|(_, b)| b.to_vec()).unwrap_or_default();
                        self.trace_on(call, Some(id), Direction::Sent, to, &bytes);
                    }
                    let bytes = self.out.get(i).map(|(_, b)| b).unwrap_or_default();
                    let sent = self.conns.as_mut().is_some_and(|c| c.send(id, bytes, now));
                    if sent {
                        Ok(())
                    } else {
                        Err(format!("sending to {to}: the connection closed"))
                    }
                }
                Err(why) => Err(why),
            };
            if let Err(why) = sent {
                failed.push((idx, generation, why));
            }
        }
        if let Some(c) = self.conns.as_mut() {
            c.flush();
        }
        self.out.clear();
        self.out_owner.clear();
        self.out_route.clear();
        for (idx, generation, why) in failed {
            self.fail_call(idx, generation, &why, now);
        }
    }

    /// The connection a packet takes: the one its route names, else its call's,
    /// else one the connection model shares, else a new one.
    fn connection_for(
        &mut self,
        route: Route,
        idx: usize,
        generation: u32,
        to: SocketAddr,
        now: Instant,
    ) -> Result<ConnId, String> {
        let Some(conns) = self.conns.as_mut() else {
            return Err("no connections".into());
        };
        if let Route::Conn(id) = route
            && conns.is_alive(id)
        {
            return Ok(id);
        }
        let slot = self
            .slots
            .get_mut(idx)
            .and_then(|s| s.as_mut())
            .filter(|s| s.generation == generation);
        let Some(slot) = slot else {
            // Owned by no call (a stateless reply, a lingering answer).
            return match conns.find(to) {
                Some(id) => Ok(id),
                None => conns
                    .open(to, &self.conn_host, None, now)
                    .map_err(|(_, why)| why),
            };
        };
        if let Some(id) = slot.conn
            && conns.is_alive(id)
        {
            return Ok(id);
        }
        let id = match self.model {
            ConnectionModel::PerCall => conns
                .open(to, &self.conn_host, Some((idx, generation)), now)
                .map_err(|(_, why)| why)?,
            ConnectionModel::PerWorker => match conns.find(to) {
                Some(id) => id,
                None => conns
                    .open(to, &self.conn_host, None, now)
                    .map_err(|(_, why)| why)?,
            },
            ConnectionModel::Pool(_) => {
                let k = (slot.call.number() as usize) % self.pool.len().max(1);
                match self.pool.get(k).copied().flatten() {
                    Some(id) if conns.is_alive(id) => id,
                    _ => {
                        let id = conns
                            .open(to, &self.conn_host, None, now)
                            .map_err(|(_, why)| why)?;
                        if let Some(p) = self.pool.get_mut(k) {
                            *p = Some(id);
                        }
                        id
                    }
                }
            }
        };
        slot.conn = Some(id);
        conns.adopt(id, (idx, generation));
        Ok(id)
    }

    fn trace(&mut self, idx: Option<usize>, dir: Direction, remote: SocketAddr, bytes: &[u8]) {
        let conn = match dir {
            Direction::Received => self.arrival,
            Direction::Sent => None,
        };
        self.trace_on(idx, conn, dir, remote, bytes);
    }

    /// Trace a message; one that went over connection `conn` is written as a TCP
    /// segment of that connection.
    fn trace_on(
        &mut self,
        idx: Option<usize>,
        conn: Option<ConnId>,
        dir: Direction,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        let Some(tracer) = self.tracer.as_mut() else {
            return;
        };
        let call = idx
            .and_then(|i| self.slots.get_mut(i))
            .and_then(|s| s.as_mut())
            .map(|s| &mut s.traces);
        let seg = conn
            .zip(self.conns.as_mut())
            .and_then(|(id, c)| c.trace_segment(id, dir == Direction::Sent, bytes.len()));
        match seg {
            Some((local, peer, seq, ack)) => {
                tracer.segment(call, dir, local, peer, Segment::Tcp { seq, ack }, bytes)
            }
            None => tracer.packet(call, dir, remote, bytes),
        }
    }

    /// A stateless reply: queued like any packet, owned by no call.
    fn send_raw(&mut self, to: SocketAddr, bytes: &[u8]) {
        if self.conns.is_none() {
            self.trace(None, Direction::Sent, to, bytes);
        }
        self.out.push(to, bytes);
        self.out_owner.resize(self.out.len(), (usize::MAX, 0));
        self.out_route.push(match self.arrival {
            Some(id) => Route::Conn(id),
            None if self.arrival_udp => Route::Udp,
            None => Route::Auto,
        });
        self.counters.messages_sent += 1;
    }

    fn abort_all(&mut self, why: &str) {
        self.abort_calls(why);
    }

    fn abort_calls(&mut self, why: &str) {
        let now = Instant::now();
        for idx in 0..self.slots.len() {
            if let Some(slot) = self.slots[idx].as_mut()
                && slot.call.is_running()
            {
                slot.call.abort(why);
                self.after_event(idx, now);
            }
        }
    }
}

/// The first instant of the grid `t0 + k·window` after `now`.
fn grid_after(t0: Instant, now: Instant, window: Duration) -> Instant {
    let since = now.saturating_duration_since(t0).as_nanos();
    let w = window.as_nanos().max(1);
    let k = since / w + 1;
    t0 + Duration::from_nanos((k * w).min(u128::from(u64::MAX)) as u64)
}

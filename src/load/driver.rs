//! A driver owns one socket and multiplexes every call on it: it starts calls on an
//! open-loop schedule, routes datagrams to calls by Call-ID, fires call timers from
//! one heap, and sends what calls produce. One thread, no task per call.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::report::{Counters, FailureReason};
use crate::scenario::call::{Call, CallEnv, Outbox, Outcome};
use crate::scenario::plan::{Role, StepKind};
use crate::sip::message;
use crate::transport::udp;

use super::stateless;

/// Largest UDP payload we accept.
const RECV_BUF: usize = 65_535;
/// Datagrams read per wake-up before timers get a turn again.
const RECV_BATCH: usize = 256;

#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// UAC: calls to start. UAS: calls to serve before stopping. None: until stopped.
    pub max_calls: Option<u64>,
    /// New calls per second (UAC).
    pub rate: f64,
    /// Calls in progress at most; a start that would exceed it waits.
    pub concurrency: Option<usize>,
    /// Stop starting calls after this long.
    pub duration: Option<Duration>,
    /// After stopping, how long calls in progress may take to finish.
    pub drain_timeout: Duration,
}

/// Called once per finished call: the call, its outcome, and its length.
pub type Observer = Box<dyn FnMut(&Call, &Outcome, Duration) + Send>;

struct Slot {
    call: Call,
    generation: u32,
    started: Instant,
    /// Deadline currently in the heap for this call (lazy deletion of stale entries).
    scheduled: Option<Instant>,
    counted: bool,
}

pub struct Driver {
    socket: UdpSocket,
    env: CallEnv,
    cfg: DriverConfig,
    role: Role,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    generation: u32,
    by_call_id: HashMap<Box<str>, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    counters: Counters,
    out: Outbox,
    /// Calls whose outcome is not yet known.
    running: usize,
    /// Calls created (UAC: started; UAS: accepted).
    created: u64,
    stop: Arc<AtomicBool>,
    observer: Option<Observer>,
}

impl Driver {
    pub fn new(
        socket: UdpSocket,
        env: CallEnv,
        cfg: DriverConfig,
        stop: Arc<AtomicBool>,
    ) -> Driver {
        let role = env.plan.role;
        Driver {
            socket,
            env,
            cfg,
            role,
            slots: Vec::new(),
            free: Vec::new(),
            generation: 0,
            by_call_id: HashMap::new(),
            timers: BinaryHeap::new(),
            counters: Counters::default(),
            out: Outbox::default(),
            running: 0,
            created: 0,
            stop,
            observer: None,
        }
    }

    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Run until the configured calls are done or the stop flag is raised (then drain).
    pub fn run(&mut self) -> io::Result<()> {
        let t0 = Instant::now();
        let interval = if self.cfg.rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.cfg.rate)
        } else {
            Duration::MAX
        };
        let mut buf = vec![0u8; RECV_BUF];
        let mut draining_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            // An interrupt or the end of --duration drains with a time limit; reaching
            // --calls just lets the last calls run their course.
            let interrupted = self.stop.load(Ordering::Relaxed)
                || super::signal::interrupted()
                || self.cfg.duration.is_some_and(|d| now >= t0 + d);
            let stopping = interrupted || self.cfg.max_calls.is_some_and(|m| self.created >= m);
            if interrupted && draining_since.is_none() {
                draining_since = Some(now);
            }
            let mut next_start = None;
            if self.role == Role::Uac && !stopping {
                next_start = self.start_due_calls(t0, interval, now);
            }
            self.fire_timers(now);
            for _ in 0..RECV_BATCH {
                match udp::recv_nowait(&self.socket, &mut buf) {
                    Ok(Some((n, from))) => self.on_datagram(&buf[..n], from, Instant::now()),
                    Ok(None) => break,
                    // ICMP errors surface here (e.g. port unreachable); the affected
                    // calls time out on their own, so the run goes on.
                    Err(_) => break,
                }
            }
            if stopping && self.running == 0 {
                break;
            }
            if let Some(since) = draining_since
                && now >= since + self.cfg.drain_timeout
                && self.running > 0
            {
                self.abort_all("the run ended while the call was in progress");
                break;
            }
            let mut wake = self.timers.peek().map(|Reverse((t, _, _))| *t);
            if let Some(s) = next_start {
                wake = Some(wake.map_or(s, |w| w.min(s)));
            }
            if let Some(since) = draining_since {
                let end = since + self.cfg.drain_timeout;
                wake = Some(wake.map_or(end, |w| w.min(end)));
            }
            // Wake at least every 100 ms to notice the stop flag and the run duration.
            let now = Instant::now();
            let timeout = wake.map_or(Duration::from_millis(100), |w| {
                w.saturating_duration_since(now)
            });
            udp::wait_readable(&self.socket, Some(timeout.min(Duration::from_millis(100))))?;
        }
        Ok(())
    }

    /// Start every call whose scheduled time has come (open loop: call k starts at
    /// t0 + k/rate whatever happened to earlier calls). Returns the next start time.
    fn start_due_calls(
        &mut self,
        t0: Instant,
        interval: Duration,
        now: Instant,
    ) -> Option<Instant> {
        loop {
            if self.cfg.max_calls.is_some_and(|m| self.created >= m) {
                return None;
            }
            let offset = interval.saturating_mul(self.created.min(u32::MAX as u64) as u32);
            let due = t0.checked_add(offset)?;
            if due > now {
                return Some(due);
            }
            if self.cfg.concurrency.is_some_and(|c| self.running >= c) {
                // Held back by the cap: retry soon (a finishing call also wakes us).
                return Some(now + Duration::from_millis(1));
            }
            self.created += 1;
            let call = Call::new_uac(&self.env, self.created);
            let idx = self.insert(call, now);
            self.counters.calls_started += 1;
            self.running += 1;
            if let Some(slot) = self.slots[idx].as_mut() {
                slot.call
                    .start(&self.env, now, &mut self.out, &mut self.counters);
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
            self.by_call_id.insert(s.call.call_id().into(), idx);
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
            slot.call
                .on_timeout(&self.env, now, &mut self.out, &mut self.counters);
            self.after_event(idx, now);
        }
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        self.counters.messages_received += 1;
        let Ok(msg) = message::parse(data) else {
            self.counters.messages_unparseable += 1;
            return;
        };
        let Some(call_id) = msg.call_id() else {
            self.counters.messages_unparseable += 1;
            return;
        };
        let idx = match self.by_call_id.get(call_id) {
            Some(&idx) => idx,
            None => {
                let Some(method) = msg.method() else {
                    // A response for a call we never had or already forgot.
                    self.counters.messages_stray += 1;
                    return;
                };
                if !self.accepts(method) {
                    self.counters.messages_stray += 1;
                    let mut reply = Vec::new();
                    if stateless::reply(&msg, &self.env, &mut reply) {
                        self.send_raw(from, &reply);
                    }
                    return;
                }
                self.created += 1;
                self.counters.calls_started += 1;
                self.running += 1;
                let call = Call::new_uas(&self.env, self.created, call_id, from);
                self.insert(call, now)
            }
        };
        if let Some(slot) = self.slots[idx].as_mut() {
            slot.call.on_message(
                &self.env,
                &msg,
                from,
                now,
                &mut self.out,
                &mut self.counters,
            );
        }
        self.after_event(idx, now);
    }

    /// Does an out-of-dialog request with this method start a new call here?
    fn accepts(&self, method: &str) -> bool {
        if self.role != Role::Uas
            || self.stop.load(Ordering::Relaxed)
            || super::signal::interrupted()
        {
            return false;
        }
        if self.cfg.max_calls.is_some_and(|m| self.created >= m)
            || self.cfg.concurrency.is_some_and(|c| self.running >= c)
        {
            return false;
        }
        match self.env.plan.steps.first().map(|s| &s.kind) {
            Some(StepKind::Recv(r)) => r.matcher.matches_request(method),
            _ => false,
        }
    }

    /// Send what the call produced, account for its outcome, reschedule or reap it.
    fn after_event(&mut self, idx: usize, now: Instant) {
        let mut send_error = None;
        for (to, bytes) in self.out.iter() {
            if let Err(e) = self.socket.send_to(bytes, to) {
                send_error = Some(format!("sending to {to}: {e}"));
            }
        }
        self.out.clear();
        let Some(slot) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else {
            return;
        };
        if let Some(why) = send_error {
            slot.call.fail_external(FailureReason::TransportError, why);
        }
        if let Some(outcome) = slot.call.take_outcome()
            && !slot.counted
        {
            slot.counted = true;
            self.running = self.running.saturating_sub(1);
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
                obs(
                    &slot.call,
                    &outcome,
                    now.saturating_duration_since(slot.started),
                );
            }
        }
        if slot.call.is_reapable() {
            self.by_call_id.remove(slot.call.call_id());
            self.slots[idx] = None;
            self.free.push(idx);
            return;
        }
        let deadline = slot.call.deadline();
        if deadline != slot.scheduled {
            slot.scheduled = deadline;
            if let Some(d) = deadline {
                self.timers.push(Reverse((d, idx, slot.generation)));
            }
        }
    }

    fn send_raw(&mut self, to: SocketAddr, bytes: &[u8]) {
        if self.socket.send_to(bytes, to).is_ok() {
            self.counters.messages_sent += 1;
        }
    }

    fn abort_all(&mut self, why: &str) {
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

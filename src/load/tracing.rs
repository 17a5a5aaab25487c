//! A driver's message traces: sinks that see every message (`--trace`,
//! `--trace-msg`) and sinks that only get the messages of failed calls
//! (`--trace-failed`), buffered per call until the call's outcome is known.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::report::trace::{CallTrace, Direction, Segment, TraceFormat, TraceSink};

pub struct TraceTarget {
    pub sink: TraceSink,
    pub format: TraceFormat,
    /// Only the messages of failed calls.
    pub failed_only: bool,
}

/// Per call: one buffer per failed-only target (empty when there are none).
#[derive(Debug, Default)]
pub struct CallTraces(Vec<CallTrace>);

pub struct Tracer {
    targets: Vec<TraceTarget>,
    /// Our address as written in messages (the socket may be bound to 0.0.0.0).
    local: SocketAddr,
    failed_only: usize,
}

impl Tracer {
    pub fn new(targets: Vec<TraceTarget>, local: SocketAddr) -> Tracer {
        let failed_only = targets.iter().filter(|t| t.failed_only).count();
        Tracer {
            targets,
            local,
            failed_only,
        }
    }

    pub fn is_active(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Buffers for a new call.
    pub fn new_call(&self) -> CallTraces {
        CallTraces((0..self.failed_only).map(|_| CallTrace::new()).collect())
    }

    /// One message; `call` is None for messages that belong to no call.
    pub fn packet(
        &mut self,
        call: Option<&mut CallTraces>,
        dir: Direction,
        remote: SocketAddr,
        payload: &[u8],
    ) {
        let local = self.local;
        self.segment(call, dir, local, remote, Segment::Udp, payload);
    }

    /// One message that went over a connection (`local` is its real address; `seg`
    /// the synthesized TCP header).
    pub fn segment(
        &mut self,
        call: Option<&mut CallTraces>,
        dir: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        seg: Segment,
        payload: &[u8],
    ) {
        let ts = SystemTime::now();
        let mut per_call = call.map(|c| c.0.iter_mut());
        for t in &mut self.targets {
            if t.failed_only {
                if let Some(ct) = per_call.as_mut().and_then(|it| it.next()) {
                    ct.record(t.format, dir, ts, local, remote, seg, payload);
                }
            } else {
                t.sink.record_segment(dir, ts, local, remote, seg, payload);
            }
        }
    }

    /// The call ended: keep its messages if it failed, forget them otherwise.
    pub fn call_ended(&mut self, call: &mut CallTraces, failed: bool) {
        let mut it = call.0.iter_mut();
        for t in self.targets.iter_mut().filter(|t| t.failed_only) {
            if let Some(ct) = it.next() {
                if failed {
                    t.sink.append_call(ct);
                }
                ct.clear();
            }
        }
    }

    pub fn flush(&mut self) {
        for t in &mut self.targets {
            t.sink.flush();
        }
    }
}

//! Message traces: `--trace FILE.pcap`, `--trace-failed`, `--trace-msg FILE`.
//!
//! Tracing must not slow the load drivers noticeably, so the work is split in two:
//! - on a driver thread, a [`TraceSink`] encodes each message into a buffer it owns
//!   (no syscall, no lock, no allocation once warmed up);
//! - a single writer thread, owned by the [`TraceWriter`], receives full buffers over a
//!   channel, writes them to the file and sends the emptied buffers back to the sink they
//!   came from, so buffers are recycled instead of reallocated.
//!
//! For `--trace-failed` a call keeps its own records in a [`CallTrace`]; when the call
//! fails the driver copies them into its sink with [`TraceSink::append_call`], otherwise
//! it just clears them. Both paths use the same encoder ([`encode`]).
//!
//! If the disk cannot keep up, a sink never waits: once it has [`MAX_IN_FLIGHT`] buffers
//! queued it drops records instead, and [`TraceWriter::finish`] reports how many were
//! lost. Blocking would distort the load being measured, which matters more than a
//! complete trace; an unbounded queue would trade that for unbounded memory.

use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use super::pcap;
pub use super::pcap::Segment;

/// A sink hands its buffer to the writer once it holds this much. Large enough that the
/// writer does few, large writes and the channel traffic is negligible (at 5,000 calls/s
/// and ~10 messages of ~600 bytes per call, about 120 hand-overs per second).
const FLUSH_AT: usize = 256 * 1024;
/// Initial capacity of a buffer: the flush threshold plus room for one maximal pcap
/// record, so the record that crosses the threshold does not make the buffer grow.
const BUF_CAPACITY: usize = FLUSH_AT + pcap::RECORD_HEADER_LEN + pcap::SNAPLEN as usize;
/// Slots in the queue from the sinks to the writer, shared by all sinks. A bounded
/// (array) channel is preallocated, so handing a buffer over never allocates; when it
/// is full the writer is far behind and the sink drops the buffer's records.
const QUEUE_SLOTS: usize = 1024;
/// Buffers a sink may have queued at the writer (and not yet got back) before it starts
/// dropping records: bounds the memory per sink to about (1 + 128) × 320 KB ≈ 40 MB,
/// about a second of trace at 5,000 calls/s, enough to ride out a slow moment of the disk.
pub const MAX_IN_FLIGHT: usize = 128;

/// Which way a message went, seen from the traced side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// File format of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// Classic pcap, raw IPv4/IPv6 + UDP records (see [`pcap`]).
    Pcap,
    /// Readable text in the style of `sipp -trace_msg`.
    Text,
}

/// What the sinks send to the writer thread.
enum Msg {
    /// Bytes to append to the file; the emptied buffer goes back on `ret`.
    Batch {
        buf: Vec<u8>,
        ret: SyncSender<Vec<u8>>,
    },
    /// Write out everything received before this message, then stop.
    Stop,
}

/// Owns the trace file and the thread writing it.
///
/// Contract: every [`TraceSink`] must be flushed or dropped *before* [`finish`] is
/// called. `finish` does not wait for sinks that are still alive (a forgotten sink must
/// not hang the end of a run); whatever they hand over after `finish` is discarded.
///
/// [`finish`]: TraceWriter::finish
pub struct TraceWriter {
    format: TraceFormat,
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<io::Result<()>>>,
    /// Records the sinks had to throw away (writer too far behind, or gone).
    dropped: Arc<AtomicU64>,
}

impl TraceWriter {
    /// Create (truncate) `path`, write the pcap global header when `format` is
    /// [`TraceFormat::Pcap`], and start the writer thread. Errors opening the file are
    /// returned here, so a bad path is reported before the run starts.
    pub fn spawn(path: &Path, format: TraceFormat) -> io::Result<TraceWriter> {
        let mut file = File::create(path)?;
        if format == TraceFormat::Pcap {
            let mut header = Vec::with_capacity(pcap::GLOBAL_HEADER_LEN);
            pcap::write_global_header(&mut header);
            file.write_all(&header)?;
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE_SLOTS);
        let thread = std::thread::Builder::new()
            .name("trace-writer".into())
            .spawn(move || write_loop(file, rx))?;
        Ok(TraceWriter {
            format,
            tx,
            thread: Some(thread),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A handle for one driver thread. Each sink has its own buffer, so drivers never
    /// contend; any number of sinks may exist at once.
    pub fn sink(&self) -> TraceSink {
        // Room for every buffer the sink can have out, so the writer never finds it full.
        let (ret_tx, ret_rx) = mpsc::sync_channel(MAX_IN_FLIGHT + 1);
        TraceSink {
            format: self.format,
            buf: Vec::with_capacity(BUF_CAPACITY),
            records: 0,
            tx: self.tx.clone(),
            ret_tx,
            ret_rx,
            in_flight: 0,
            dead: false,
            dropped: Arc::clone(&self.dropped),
        }
    }

    /// Write out everything the sinks handed over, flush the file and join the thread
    /// (see the contract on [`TraceWriter`]). Returns the first write error, or an error
    /// saying how many records were dropped when the trace is incomplete.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // May wait for a free slot while the writer drains the queue. Fails only if the
        // thread is gone already; the join below reports why.
        let _ = self.tx.send(Msg::Stop);
        let result = match thread.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the trace writer thread panicked")),
        };
        result?;
        match self.dropped.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(io::Error::other(format!(
                "trace incomplete: {n} messages were dropped because the trace file \
                 could not be written fast enough"
            ))),
        }
    }
}

impl Drop for TraceWriter {
    /// Not calling `finish` still leaves a complete file; errors are lost then.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn write_loop(mut file: File, rx: Receiver<Msg>) -> io::Result<()> {
    let mut error: Option<io::Error> = None;
    // Ends on Stop, or when the writer and every sink are gone.
    for msg in rx.iter() {
        match msg {
            Msg::Batch { mut buf, ret } => {
                // After the first error keep draining (and returning buffers) so the
                // sinks keep running normally; the error is reported by `finish`.
                if error.is_none()
                    && let Err(e) = file.write_all(&buf)
                {
                    error = Some(e);
                }
                buf.clear();
                // A call's worth of records appended at once can make a buffer grow;
                // do not keep such an outlier around for the rest of the run.
                if buf.capacity() > 4 * BUF_CAPACITY {
                    buf.shrink_to(BUF_CAPACITY);
                }
                // Never full (see `sink`); if the sink is gone the buffer is just freed.
                let _ = ret.try_send(buf);
            }
            Msg::Stop => break,
        }
    }
    match error {
        Some(e) => Err(e),
        None => file.flush(),
    }
}

/// A driver's handle for recording messages. `Send`, not shared: one per driver thread.
/// Dropping it flushes it.
pub struct TraceSink {
    format: TraceFormat,
    buf: Vec<u8>,
    /// Records in `buf`, to count them if they have to be dropped.
    records: u64,
    tx: SyncSender<Msg>,
    /// Cloned into every batch so the writer can return the buffer to this sink.
    ret_tx: SyncSender<Vec<u8>>,
    ret_rx: Receiver<Vec<u8>>,
    /// Buffers handed to the writer and not taken back from `ret_rx` yet.
    in_flight: usize,
    /// The writer thread has stopped: recording is pointless, just count.
    dead: bool,
    dropped: Arc<AtomicU64>,
}

impl TraceSink {
    /// Record one message. `local` is the traced side's address: for a sent message it
    /// is the source, for a received one the destination.
    pub fn record(
        &mut self,
        dir: Direction,
        ts: SystemTime,
        local: SocketAddr,
        remote: SocketAddr,
        payload: &[u8],
    ) {
        self.record_segment(dir, ts, local, remote, Segment::Udp, payload);
    }

    /// Record one message with the layer-4 header `seg` (TCP for connections).
    pub fn record_segment(
        &mut self,
        dir: Direction,
        ts: SystemTime,
        local: SocketAddr,
        remote: SocketAddr,
        seg: Segment,
        payload: &[u8],
    ) {
        if self.dead {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        encode(
            &mut self.buf,
            self.format,
            dir,
            ts,
            local,
            remote,
            seg,
            payload,
        );
        self.records += 1;
        if self.buf.len() >= FLUSH_AT {
            self.hand_over();
        }
    }

    /// Copy the records of a finished (failed) call into the trace. The call must have
    /// been recorded in this sink's format; a mismatch is a bug and drops the records
    /// rather than corrupt the file.
    pub fn append_call(&mut self, call: &CallTrace) {
        if call.records == 0 {
            return;
        }
        if self.dead || call.format != Some(self.format) {
            debug_assert!(
                self.dead,
                "CallTrace recorded in another format than the sink"
            );
            self.dropped.fetch_add(call.records, Ordering::Relaxed);
            return;
        }
        self.buf.extend_from_slice(&call.buf);
        self.records += call.records;
        if self.buf.len() >= FLUSH_AT {
            self.hand_over();
        }
    }

    /// Hand whatever is buffered to the writer thread (it is written soon after, not
    /// necessarily by the time this returns; [`TraceWriter::finish`] waits for that).
    pub fn flush(&mut self) {
        self.hand_over();
    }

    fn hand_over(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        // Find the buffer to continue in: one the writer gave back if any, a new one
        // while few are queued, otherwise none (writer too far behind).
        let next = match self.ret_rx.try_recv() {
            Ok(b) => {
                self.in_flight -= 1;
                Some(b)
            }
            Err(_) if self.in_flight < MAX_IN_FLIGHT => Some(Vec::with_capacity(BUF_CAPACITY)),
            Err(_) => None,
        };
        let Some(next) = next else {
            self.drop_buffered();
            return;
        };
        let full = std::mem::replace(&mut self.buf, next);
        let batch = Msg::Batch {
            buf: full,
            ret: self.ret_tx.clone(),
        };
        match self.tx.try_send(batch) {
            Ok(()) => {
                self.in_flight += 1;
                self.records = 0;
            }
            Err(e) => {
                // Full: the writer is far behind (with many sinks). Disconnected: it has
                // stopped (finish was called, or it panicked). Either way the records
                // are lost; keep both buffers for reuse.
                self.dead = matches!(e, TrySendError::Disconnected(_));
                let (TrySendError::Full(msg) | TrySendError::Disconnected(msg)) = e;
                if let Msg::Batch { buf, .. } = msg {
                    let spare = std::mem::replace(&mut self.buf, buf);
                    if self.ret_tx.try_send(spare).is_ok() {
                        self.in_flight += 1;
                    }
                }
                self.drop_buffered();
            }
        }
    }

    fn drop_buffered(&mut self) {
        self.dropped.fetch_add(self.records, Ordering::Relaxed);
        self.records = 0;
        self.buf.clear();
    }
}

impl Drop for TraceSink {
    fn drop(&mut self) {
        self.hand_over();
    }
}

/// The records of one call, kept until the call ends (for `--trace-failed`).
#[derive(Debug, Default)]
pub struct CallTrace {
    buf: Vec<u8>,
    records: u64,
    /// Format of the records in `buf` (set by the first one).
    format: Option<TraceFormat>,
}

impl CallTrace {
    pub fn new() -> CallTrace {
        CallTrace::default()
    }

    /// Record one message, encoded exactly as [`TraceSink::record`] would.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        format: TraceFormat,
        dir: Direction,
        ts: SystemTime,
        local: SocketAddr,
        remote: SocketAddr,
        seg: Segment,
        payload: &[u8],
    ) {
        debug_assert!(
            self.format.is_none_or(|f| f == format),
            "one format per call"
        );
        self.format = Some(format);
        encode(&mut self.buf, format, dir, ts, local, remote, seg, payload);
        self.records += 1;
    }

    /// Forget the records but keep the allocation, so a reused slot does not allocate.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.records = 0;
        self.format = None;
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

/// Append one message in `format`. The single encoder behind [`TraceSink::record`] and
/// [`CallTrace::record`], so the two paths cannot drift apart.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    out: &mut Vec<u8>,
    format: TraceFormat,
    dir: Direction,
    ts: SystemTime,
    local: SocketAddr,
    remote: SocketAddr,
    seg: Segment,
    payload: &[u8],
) {
    match format {
        TraceFormat::Pcap => {
            let (src, dst) = match dir {
                Direction::Sent => (local, remote),
                Direction::Received => (remote, local),
            };
            pcap::write_record(out, ts, src, dst, seg, payload);
        }
        TraceFormat::Text => {
            let proto: &[u8] = match seg {
                Segment::Udp => b"UDP",
                Segment::Tcp { .. } => b"TCP",
            };
            write_text_record(out, proto, dir, ts, local, remote, payload)
        }
    }
}

/// One `--trace-msg` block, laid out like SIPp's `-trace_msg` (a dashed separator line
/// with the time, a line saying what happened, a blank line, the message, a blank line),
/// plus the addresses, which SIPp leaves out but which matter once several calls or
/// peers are interleaved. The time is UTC. Writing into a `Vec` cannot fail, and the
/// formatting does not allocate.
fn write_text_record(
    out: &mut Vec<u8>,
    proto: &[u8],
    dir: Direction,
    ts: SystemTime,
    local: SocketAddr,
    remote: SocketAddr,
    payload: &[u8],
) {
    // Numbers and addresses are formatted by hand: `write!` made this about twice as
    // expensive, and it runs for every message on a driver thread.
    out.reserve(160 + payload.len());
    out.extend_from_slice(b"----------------------------------------------- ");
    write_utc(out, ts);
    out.push(b'\n');
    out.extend_from_slice(proto);
    let (what, first, second) = match dir {
        Direction::Sent => (&b" message sent ("[..], &b" bytes) to "[..], &b" from "[..]),
        Direction::Received => (
            &b" message received ("[..],
            &b" bytes) from "[..],
            &b" to "[..],
        ),
    };
    out.extend_from_slice(what);
    push_decimal(out, payload.len() as u64, 1);
    out.extend_from_slice(first);
    push_addr(out, remote);
    out.extend_from_slice(second);
    push_addr(out, local);
    out.extend_from_slice(b":\n\n");
    // Lossy UTF-8 without the allocation `String::from_utf8_lossy` makes on bad input;
    // `from_utf8` first because its ASCII fast path is quicker on the usual message.
    match std::str::from_utf8(payload) {
        Ok(text) => out.extend_from_slice(text.as_bytes()),
        Err(_) => {
            for chunk in payload.utf8_chunks() {
                out.extend_from_slice(chunk.valid().as_bytes());
                if !chunk.invalid().is_empty() {
                    out.extend_from_slice("\u{fffd}".as_bytes());
                }
            }
        }
    }
    out.extend_from_slice(b"\n\n");
}

/// `YYYY-MM-DD HH:MM:SS.uuuuuu` in UTC; times before 1970 print as the epoch.
fn write_utc(out: &mut Vec<u8>, ts: SystemTime) {
    let d = ts.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    push_decimal(out, year.max(0) as u64, 4);
    out.push(b'-');
    push_decimal(out, u64::from(month), 2);
    out.push(b'-');
    push_decimal(out, u64::from(day), 2);
    out.push(b' ');
    push_decimal(out, s / 3600, 2);
    out.push(b':');
    push_decimal(out, s / 60 % 60, 2);
    out.push(b':');
    push_decimal(out, s % 60, 2);
    out.push(b'.');
    push_decimal(out, u64::from(d.subsec_micros()), 6);
}

/// `v` in decimal, zero-padded to at least `width` digits (at most 20).
fn push_decimal(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while v > 0 {
        start -= 1;
        digits[start] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = start.min(digits.len() - width.clamp(1, digits.len()));
    out.extend_from_slice(&digits[start..]);
}

/// `a.b.c.d:port` by hand; IPv6 (`[addr]:port`, rarer) through `Display`.
fn push_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            for (i, octet) in [a, b, c, d].into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, u64::from(octet), 1);
            }
            out.push(b':');
            push_decimal(out, u64::from(v4.port()), 1);
        }
        SocketAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Proleptic Gregorian date of a day number counted from 1970-01-01.
///
/// Works in "shifted years" that start on March 1st, so the leap day is the last day of
/// the year and month lengths repeat in a 5-month pattern (31,30,31,30,31 — twice, then
/// 31,28/29), and in 400-year eras of exactly 146,097 days in which the calendar repeats.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Day 0 of era 0 is 0000-03-01, which is 719,468 days before 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // 0..=146096
    // Remove the leap days accumulated so far (one per 4 years, minus one per century,
    // plus one for the 400th year) to get the year within the era.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Month counted from March = 0; 153 days per 5-month group.
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("sipwright-{}-{name}", std::process::id()))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
        From: <sip:alice@127.0.0.1:5070>;tag=a\r\n\
        To: <sip:bob@127.0.0.1:5060>\r\n\
        Call-ID: 1@127.0.0.1\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:alice@127.0.0.1:5070>\r\n\
        Max-Forwards: 70\r\n\
        Content-Length: 0\r\n\r\n";

    fn response(code: u16, reason: &str) -> String {
        format!(
            "SIP/2.0 {code} {reason}\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
             From: <sip:alice@127.0.0.1:5070>;tag=a\r\n\
             To: <sip:bob@127.0.0.1:5060>;tag=b\r\n\
             Call-ID: 1@127.0.0.1\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn sinks_move_to_driver_threads() {
        fn is_send<T: Send>() {}
        is_send::<TraceSink>();
        is_send::<CallTrace>();
    }

    #[test]
    fn utc_civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(civil_from_days(951_868_800 / 86_400), (2000, 3, 1));
        assert_eq!(civil_from_days(4_107_456_000 / 86_400), (2100, 2, 28));
        assert_eq!(civil_from_days(4_107_542_400 / 86_400), (2100, 3, 1));
        // Every day for 1,000 years follows its predecessor.
        let mut prev = civil_from_days(-1);
        for d in 0..365_250 {
            let cur = civil_from_days(d);
            let (y, m, day) = prev;
            let next_day = (y, m, day + 1);
            let next_month = (y, m + 1, 1);
            let next_year = (y + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} {cur:?}"
            );
            if cur == next_month || cur == next_year {
                let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
                let len = [
                    31,
                    if leap { 29 } else { 28 },
                    31,
                    30,
                    31,
                    30,
                    31,
                    31,
                    30,
                    31,
                    30,
                    31,
                ];
                assert_eq!(day, len[m as usize - 1], "{prev:?}");
            }
            prev = cur;
        }
        let mut out = Vec::new();
        write_utc(
            &mut out,
            UNIX_EPOCH + Duration::new(1_764_083_045, 123_456_789),
        );
        assert_eq!(out, b"2025-11-25 15:04:05.123456");
    }

    #[test]
    fn text_trace_content() {
        let path = temp_path("trace.log");
        let w = TraceWriter::spawn(&path, TraceFormat::Text).unwrap();
        let mut sink = w.sink();
        let local = addr("127.0.0.1:5070");
        let remote = addr("127.0.0.1:5060");
        let t0 = UNIX_EPOCH + Duration::new(1_764_083_045, 123_456_000);
        sink.record(Direction::Sent, t0, local, remote, INVITE.as_bytes());
        let ok = response(200, "OK");
        sink.record(
            Direction::Received,
            t0 + Duration::from_millis(5),
            local,
            remote,
            ok.as_bytes(),
        );
        sink.record(
            Direction::Received,
            t0,
            local,
            remote,
            b"bad \xff\xfe bytes",
        );
        drop(sink);
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let expected = format!(
            "----------------------------------------------- 2025-11-25 15:04:05.123456\n\
             UDP message sent ({} bytes) to 127.0.0.1:5060 from 127.0.0.1:5070:\n\n\
             {INVITE}\n\n\
             ----------------------------------------------- 2025-11-25 15:04:05.128456\n\
             UDP message received ({} bytes) from 127.0.0.1:5060 to 127.0.0.1:5070:\n\n\
             {ok}\n\n\
             ----------------------------------------------- 2025-11-25 15:04:05.123456\n\
             UDP message received (12 bytes) from 127.0.0.1:5060 to 127.0.0.1:5070:\n\n\
             bad \u{fffd}\u{fffd} bytes\n\n",
            INVITE.len(),
            ok.len()
        );
        assert_eq!(text, expected);
    }

    /// Parse a pcap file written by us back into (incl_len, packet bytes) records.
    fn pcap_records(bytes: &[u8]) -> Vec<&[u8]> {
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        let mut at = pcap::GLOBAL_HEADER_LEN;
        let mut out = Vec::new();
        while at < bytes.len() {
            let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            at += pcap::RECORD_HEADER_LEN;
            out.push(&bytes[at..at + incl]);
            at += incl;
        }
        assert_eq!(at, bytes.len());
        out
    }

    #[test]
    fn pcap_trace_and_failed_calls_read_by_tshark() {
        let path = temp_path("trace.pcap");
        let w = TraceWriter::spawn(&path, TraceFormat::Pcap).unwrap();
        let local = addr("127.0.0.1:5070");
        let remote = addr("127.0.0.1:5060");
        let t0 = SystemTime::now();
        let ms = Duration::from_millis(1);
        let trying = response(100, "Trying");
        let ok = response(200, "OK");
        let busy = response(486, "Busy Here");
        // Two drivers with a sink each, one of them over IPv6.
        let mut a = w.sink();
        let mut b = w.sink();
        std::thread::scope(|s| {
            s.spawn(|| {
                a.record(Direction::Sent, t0, local, remote, INVITE.as_bytes());
                a.record(
                    Direction::Received,
                    t0 + ms,
                    local,
                    remote,
                    trying.as_bytes(),
                );
                a.record(
                    Direction::Received,
                    t0 + 2 * ms,
                    local,
                    remote,
                    ok.as_bytes(),
                );
                a.flush();
            });
            s.spawn(|| {
                let (l6, r6) = (addr("[::1]:5070"), addr("[::1]:5060"));
                b.record(Direction::Sent, t0, l6, r6, INVITE.as_bytes());
                // --trace-failed: a successful call is cleared, a failed one appended.
                let mut call = CallTrace::new();
                call.record(
                    TraceFormat::Pcap,
                    Direction::Sent,
                    t0,
                    local,
                    remote,
                    Segment::Udp,
                    b"x",
                );
                let capacity = call.buf.capacity();
                call.clear();
                assert!(call.is_empty());
                assert_eq!(call.buf.capacity(), capacity);
                b.append_call(&call);
                call.record(
                    TraceFormat::Pcap,
                    Direction::Received,
                    t0,
                    local,
                    remote,
                    Segment::Udp,
                    busy.as_bytes(),
                );
                b.append_call(&call);
            });
        });
        drop(b); // `a` was only flushed: that is enough before finish.
        w.finish().unwrap();
        drop(a);

        let bytes = std::fs::read(&path).unwrap();
        let records = pcap_records(&bytes);
        assert_eq!(records.len(), 5);
        assert_eq!(records.iter().filter(|r| r[0] >> 4 == 6).count(), 1);

        let tshark = Path::new("/usr/bin/tshark");
        if !tshark.exists() {
            std::fs::remove_file(&path).ok();
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tshark is required under CI"
            );
            eprintln!("skipping the tshark check: /usr/bin/tshark is not installed");
            return;
        }
        let run = |args: &[&str]| {
            let out = Command::new(tshark)
                .arg("-r")
                .arg(&path)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "tshark failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let fields = run(&[
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ]);
        let mut lines: Vec<&str> = fields.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            ["\t100", "\t200", "\t486", "INVITE\t", "INVITE\t"],
            "{fields}"
        );
        // With validation switched on, no checksum is bad and nothing is malformed.
        let bad = run(&[
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "ip.checksum.status != 1 || udp.checksum.status != 1 || _ws.malformed \
             || _ws.expert.severity >= warning",
        ]);
        assert_eq!(bad, "", "tshark found problems");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn buffers_are_recycled() {
        let path = temp_path("recycle.pcap");
        let w = TraceWriter::spawn(&path, TraceFormat::Pcap).unwrap();
        let mut sink = w.sink();
        let (l, r) = (addr("127.0.0.1:1"), addr("127.0.0.1:2"));
        let msg = [b'x'; 600];
        let mut ptrs = std::collections::HashSet::new();
        for _ in 0..50 {
            ptrs.insert(sink.buf.as_ptr());
            // Fill until the sink hands its buffer over (it continues in an empty one).
            loop {
                sink.record(Direction::Sent, UNIX_EPOCH, l, r, &msg);
                if sink.buf.is_empty() {
                    break;
                }
            }
            // Wait for the writer to give the buffer back, as it does when it keeps up,
            // then leave it queued for the sink's next hand-over to pick up.
            let b = sink.ret_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(b.capacity(), BUF_CAPACITY);
            ptrs.insert(b.as_ptr());
            sink.ret_tx.send(b).unwrap();
            assert_eq!(sink.in_flight, 1);
        }
        drop(sink);
        w.finish().unwrap();
        // Only two buffers ever existed: the one being filled and the one being written.
        assert!(ptrs.len() <= 2, "{} distinct buffers", ptrs.len());
        let n = pcap_records(&std::fs::read(&path).unwrap()).len();
        assert!(n > 50 * (FLUSH_AT / 700));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn write_errors_and_stopped_writer() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        if Path::new("/dev/full").exists() {
            let w = TraceWriter::spawn(Path::new("/dev/full"), TraceFormat::Text).unwrap();
            let mut sink = w.sink();
            sink.record(
                Direction::Sent,
                UNIX_EPOCH,
                addr("127.0.0.1:1"),
                addr("127.0.0.1:2"),
                b"x",
            );
            drop(sink);
            let err = w.finish().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        }
        // A directory cannot be created as a file: reported by spawn.
        assert!(TraceWriter::spawn(&std::env::temp_dir(), TraceFormat::Pcap).is_err());
        // A sink used after finish drops its records without panicking or blocking.
        let path = temp_path("late.pcap");
        let w = TraceWriter::spawn(&path, TraceFormat::Pcap).unwrap();
        let mut sink = w.sink();
        w.finish().unwrap();
        for _ in 0..2000 {
            sink.record(
                Direction::Sent,
                UNIX_EPOCH,
                addr("127.0.0.1:1"),
                addr("127.0.0.1:2"),
                &[0; 600],
            );
        }
        sink.flush();
        assert!(sink.dead);
        assert_eq!(std::fs::read(&path).unwrap().len(), pcap::GLOBAL_HEADER_LEN);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn slow_disk_drops_records_instead_of_blocking() {
        use std::io::Read;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO nobody reads stands in for a disk that stopped: the writer thread blocks
        // in write() once the pipe buffer is full.
        let path = temp_path("stalled.fifo");
        let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `cpath` is a valid NUL-terminated string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let w = TraceWriter::spawn(&path, TraceFormat::Pcap).unwrap();
        let mut sink = w.sink();
        let (l, r) = (addr("127.0.0.1:1"), addr("127.0.0.1:2"));
        let n = 60_000; // ~39 MB: more than MAX_IN_FLIGHT (128) buffers of 256 KB
        let start = Instant::now();
        for _ in 0..n {
            sink.record(Direction::Sent, UNIX_EPOCH, l, r, &[b'x'; 600]);
        }
        sink.flush();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the sink waited for the writer"
        );
        assert_eq!(sink.in_flight, MAX_IN_FLIGHT);
        drop(sink);
        // Now let the "disk" move again so that finish can complete.
        let drain = std::thread::spawn(move || {
            let mut total = 0usize;
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) => return total,
                    Ok(k) => total += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let err = w.finish().unwrap_err();
        let written = drain.join().unwrap();
        std::fs::remove_file(&path).ok();
        assert!(err.to_string().contains("dropped"), "{err}");
        let dropped: u64 = err.to_string().split(' ').nth(2).unwrap().parse().unwrap();
        let kept = ((written - pcap::GLOBAL_HEADER_LEN) / (pcap::RECORD_HEADER_LEN + 628)) as u64;
        assert_eq!(dropped + kept, n);
        assert!(kept >= (MAX_IN_FLIGHT * FLUSH_AT / 644) as u64);
    }

    /// Block until the writer has given back every buffer the sink handed over, and
    /// leave them queued for the sink to reuse (test-only pacing).
    fn wait_for_writer(sink: &mut TraceSink) {
        let back: Vec<Vec<u8>> = (0..sink.in_flight)
            .map(|_| sink.ret_rx.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        for b in back {
            sink.ret_tx.send(b).unwrap();
        }
    }

    /// Per-record cost of `TraceSink::record` on the driver thread, 600-byte message,
    /// including the hand-overs. Bursts of 10,000 records (~6.5 MB, well within the
    /// in-flight budget) are timed; the pauses that let the writer drain them are not,
    /// since a real run produces far less than the disk can take.
    /// Run with `cargo test --release --lib -- --ignored --nocapture trace_record_cost`.
    #[test]
    #[ignore]
    fn trace_record_cost() {
        let msg: Vec<u8> = INVITE.bytes().cycle().take(600).collect();
        let (l, r) = (addr("10.0.0.1:5070"), addr("10.0.0.2:5060"));
        for format in [TraceFormat::Pcap, TraceFormat::Text] {
            let path = temp_path("bench.trace");
            let w = TraceWriter::spawn(&path, format).unwrap();
            let mut sink = w.sink();
            let (bursts, per_burst) = (200u32, 10_000u32);
            let mut busy = Duration::ZERO;
            for _ in 0..bursts {
                let ts = SystemTime::now();
                let start = Instant::now();
                for _ in 0..per_burst {
                    sink.record(Direction::Sent, ts, l, r, std::hint::black_box(&msg));
                }
                busy += start.elapsed();
                wait_for_writer(&mut sink);
            }
            drop(sink);
            w.finish().unwrap();
            std::fs::remove_file(&path).ok();
            // The encoder alone, into one buffer that stays in cache.
            let mut buf = Vec::with_capacity(BUF_CAPACITY);
            let n = 1_000_000u32;
            let ts = SystemTime::now();
            let start = Instant::now();
            for _ in 0..n {
                encode(
                    &mut buf,
                    format,
                    Direction::Sent,
                    ts,
                    l,
                    r,
                    Segment::Udp,
                    std::hint::black_box(&msg),
                );
                if buf.len() >= FLUSH_AT {
                    buf.clear();
                }
            }
            let encode_only = start.elapsed() / n;
            let per = busy / (bursts * per_burst);
            eprintln!(
                "{format:?}: record {per:?}, encoder alone {encode_only:?} (600-byte message)"
            );
        }
    }
}

//! A driver's media engine: the RTP/RTCP sockets of its calls, one readiness poller
//! for all of them (and the driver's SIP socket), one timer heap of stream deadlines.
//! Streams are sans-IO ([`MediaStream`]); this is where their datagrams meet sockets.
//! Calls reach their session through [`MediaControl`] with a handle; the engine
//! tells the driver which calls have news (a digit arrived) through `events`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::media::config::MediaConfig;
use crate::media::control::{MediaControl, MediaHandle};
use crate::media::protection::Rejected;
use crate::media::rtp;
use crate::media::session::{MediaError, MediaSession};
use crate::media::stream::{Channel, MediaStream, ntp_from_unix};
use crate::report::MediaCounters;
use crate::report::trace::{Direction as TraceDir, TraceSink};
use crate::transport::connections::CONN_TOKEN;
use crate::transport::media_socket::{MediaSocket, TimestampedBatch, send_batch_nowait};
use crate::transport::poller::Registrar;
use crate::transport::ports::PortPool;

/// Media tokens in the driver's poller: `MEDIA_TOKEN_BASE + 2·stream + (1 for RTCP)`,
/// below [`crate::transport::connections::CONN_TOKEN`]. 0 is the driver's SIP socket,
/// 1 its listener.
const MEDIA_TOKEN_BASE: u64 = 2;
/// Datagrams read per recvmmsg on a media socket.
const RECV_SLOTS: usize = 16;

struct Entry {
    generation: u32,
    /// The call's driver slot and generation.
    owner: (usize, u32),
    session: MediaSession,
    /// The call's own RTP (and RTCP) socket; None with `--rtp-shared`.
    own: Option<(MediaSocket, Option<MediaSocket>)>,
    /// With `--rtp-shared`: the peer addresses and SSRC this stream is found by.
    mapped: Option<(SocketAddr, SocketAddr)>,
    mapped_ssrc: Option<u32>,
    /// Earliest heap entry for this stream (others are stale).
    scheduled: Option<Instant>,
}

/// `--rtp-shared`: one RTP and one RTCP socket for all of a driver's calls (every
/// SDP advertises them), streams told apart by the peer's source address. Sends
/// are queued and leave with one `sendmmsg` per 64; the sockets are read every
/// driver pass instead of through the poller: a socket in an epoll set pays a
/// wake-up callback for every datagram it sends, which at 250,000 packets/s costs
/// more than reading two sockets a thousand times a second.
struct Shared {
    rtp: MediaSocket,
    rtcp: MediaSocket,
    by_source: HashMap<SocketAddr, u32>,
    /// Peers that announced their SSRC (`a=ssrc`): what tells streams apart when
    /// many come from one address (another shared socket, a media relay).
    by_ssrc: HashMap<u32, u32>,
    /// Sources and SSRCs of the streams closed last: their packets still in flight
    /// (sent before the BYE reached the peer) are dropped uncounted, as a closed
    /// per-call port would drop them, instead of counting as invalid.
    closed: RecentlyClosed,
    queue_rtp: Queue,
    queue_rtcp: Queue,
}

/// A bounded FIFO set of what closed streams were known by.
#[derive(Default)]
struct RecentlyClosed {
    set: std::collections::HashSet<Known>,
    order: std::collections::VecDeque<Known>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Known {
    Source(SocketAddr),
    Ssrc(u32),
}

impl RecentlyClosed {
    /// Enough for the streams that close within a packet's flight time at any
    /// rate this engine carries.
    const CAPACITY: usize = 8192;

    fn insert(&mut self, k: Known) {
        if self.set.insert(k) {
            self.order.push_back(k);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, k: Known) -> bool {
        self.set.contains(&k)
    }
}

/// Datagrams waiting for `sendmmsg`, in one reused buffer.
#[derive(Default)]
struct Queue {
    buf: Vec<u8>,
    packets: Vec<(SocketAddr, Range<usize>)>,
}

impl Queue {
    fn push(&mut self, to: SocketAddr, data: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        self.packets.push((to, start..self.buf.len()));
    }

    /// Send everything; returns (sent, dropped).
    fn flush(&mut self, socket: &MediaSocket) -> (usize, usize) {
        if self.packets.is_empty() {
            return (0, 0);
        }
        let buf = &self.buf;
        let r = send_batch_nowait(
            socket,
            self.packets
                .iter()
                .map(|(to, range)| (*to, &buf[range.clone()])),
        );
        self.buf.clear();
        self.packets.clear();
        r
    }
}

pub struct MediaEngine {
    config: Arc<MediaConfig>,
    /// Where media sockets bind and what SDP advertises.
    ip: IpAddr,
    ports: Arc<Mutex<PortPool>>,
    /// The driver's poller, where per-call media sockets are registered.
    registrar: Registrar,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    generation: u32,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    batch: TimestampedBatch,
    buf: Vec<u8>,
    /// Streams whose deadline may have moved since it was last scheduled.
    touched: Vec<u32>,
    /// Calls (slot, generation) with something new on their media.
    pub events: Vec<(usize, u32)>,
    /// Totals not yet handed to the driver's counters.
    pub counters: MediaCounters,
    /// Jitter of each stream that closed, for the run's histogram.
    pub jitter_samples: Vec<Duration>,
    ntp_origin: (Instant, u64),
    /// Distinguishes this engine's streams from another engine's (SSRC seeds).
    seed: u64,
    /// Call currently handed this engine as its `MediaControl`.
    owner: (usize, u32),
    active: usize,
    shared: Option<Shared>,
    /// `--trace` in pcap: every RTP/RTCP datagram as on the wire (SRTP encrypted).
    trace: Option<TraceSink>,
}

impl MediaEngine {
    /// `shared`: one socket pair for all calls (`--rtp-shared`), bound here.
    pub fn new(
        config: Arc<MediaConfig>,
        ip: IpAddr,
        ports: Arc<Mutex<PortPool>>,
        seed: u64,
        shared: bool,
        registrar: Registrar,
    ) -> io::Result<MediaEngine> {
        let shared = if shared {
            let mut pool = ports
                .lock()
                .map_err(|_| io::Error::other("port pool poisoned"))?;
            let (rtp, rtcp) = pool.bind_pair(ip, true)?;
            let rtcp = rtcp.ok_or_else(|| io::Error::other("no RTCP socket"))?;
            Some(Shared {
                rtp,
                rtcp,
                by_source: HashMap::new(),
                by_ssrc: HashMap::new(),
                closed: RecentlyClosed::default(),
                queue_rtp: Queue::default(),
                queue_rtcp: Queue::default(),
            })
        } else {
            None
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(MediaEngine {
            config,
            ip,
            ports,
            registrar,
            entries: Vec::new(),
            free: Vec::new(),
            generation: 0,
            timers: BinaryHeap::new(),
            batch: TimestampedBatch::new(RECV_SLOTS),
            buf: Vec::with_capacity(1500),
            touched: Vec::new(),
            events: Vec::new(),
            counters: MediaCounters::default(),
            jitter_samples: Vec::new(),
            ntp_origin: (Instant::now(), ntp_from_unix(unix)),
            seed,
            owner: (usize::MAX, 0),
            active: 0,
            shared,
            trace: None,
        })
    }

    /// Record every media datagram sent and received into this trace (pcap).
    pub fn set_trace(&mut self, sink: TraceSink) {
        self.trace = Some(sink);
    }

    /// Streams open now.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The call the next `MediaControl` calls act for.
    pub fn set_owner(&mut self, slot: usize, generation: u32) {
        self.owner = (slot, generation);
    }

    /// When the next stream has something to send.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Put the streams touched by calls back on the timer heap.
    pub fn reschedule(&mut self) {
        while let Some(i) = self.touched.pop() {
            self.schedule(i);
        }
    }

    fn schedule(&mut self, index: u32) {
        let Some(e) = self
            .entries
            .get_mut(index as usize)
            .and_then(|e| e.as_mut())
        else {
            return;
        };
        if let Some(shared) = self.shared.as_mut() {
            map_peer(shared, e, index);
        }
        if let Some(d) = e.session.stream.deadline()
            && e.scheduled.is_none_or(|s| d < s)
        {
            e.scheduled = Some(d);
            self.timers.push(Reverse((d, index, e.generation)));
        }
    }

    /// Send what every due stream has to send.
    pub fn fire(&mut self, now: Instant) {
        while let Some(&Reverse((t, index, generation))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self
                .entries
                .get_mut(index as usize)
                .and_then(|e| e.as_mut())
            else {
                continue;
            };
            if e.generation != generation || e.scheduled != Some(t) {
                continue;
            }
            e.scheduled = None;
            let mut out = Out {
                buf: &mut self.buf,
                ctr: &mut self.counters,
                shared: self.shared.as_mut(),
                trace: self.trace.as_mut(),
            };
            flush_stream(e, now, &mut out);
            self.schedule(index);
        }
        self.flush_shared();
    }

    /// With `--rtp-shared`: send what the streams queued.
    fn flush_shared(&mut self) {
        let Some(sh) = self.shared.as_mut() else {
            return;
        };
        let (_, dropped_rtp) = sh.queue_rtp.flush(&sh.rtp);
        let (_, dropped_rtcp) = sh.queue_rtcp.flush(&sh.rtcp);
        self.counters.send_dropped += (dropped_rtp + dropped_rtcp) as u64;
    }

    /// With `--rtp-shared`: read both shared sockets dry and hand each datagram to
    /// the stream whose peer sent it.
    pub fn read_shared(&mut self) {
        for rtcp_socket in [false, true] {
            loop {
                let Some(sh) = self.shared.as_ref() else {
                    return;
                };
                let sock = if rtcp_socket { &sh.rtcp } else { &sh.rtp };
                let n = self.batch.recv(sock).unwrap_or_default();
                if n == 0 {
                    break;
                }
                for i in 0..n {
                    let (data, from, _) = self.batch.get(i);
                    let arrival = self.batch.arrival(i);
                    // The sender's SSRC: bytes 8–11 of RTP, 4–7 of RTCP.
                    let at = if rtcp_socket || rtp::is_rtcp(data) {
                        4
                    } else {
                        8
                    };
                    let ssrc = data
                        .get(at..at + 4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    let index = self.shared.as_ref().and_then(|sh| {
                        ssrc.and_then(|x| sh.by_ssrc.get(&x))
                            .or_else(|| sh.by_source.get(&from))
                            .copied()
                    });
                    let Some(index) = index else {
                        let late = self.shared.as_ref().is_some_and(|sh| {
                            ssrc.is_some_and(|x| sh.closed.contains(Known::Ssrc(x)))
                                || sh.closed.contains(Known::Source(from))
                        });
                        // Nobody we talk to: count it, as a per-call port would
                        // have refused it (late packets of a closed stream: not).
                        if !late {
                            self.counters.invalid += 1;
                        }
                        continue;
                    };
                    let data = self.batch.data_mut(i);
                    let mut out = Out {
                        buf: &mut self.buf,
                        ctr: &mut self.counters,
                        shared: self.shared.as_mut(),
                        trace: self.trace.as_mut(),
                    };
                    if let Some(e) = self
                        .entries
                        .get_mut(index as usize)
                        .and_then(|e| e.as_mut())
                        && deliver(e, data, Some(from), arrival, rtcp_socket, &mut out)
                    {
                        self.events.push(e.owner);
                    }
                    self.touched.push(index);
                }
                if n < RECV_SLOTS {
                    break;
                }
            }
        }
        self.flush_shared();
    }

    /// Read every media socket the last wait found readable.
    pub fn read_ready(&mut self, tokens: &[u64]) {
        for &token in tokens {
            if (MEDIA_TOKEN_BASE..CONN_TOKEN).contains(&token) {
                self.on_ready(token);
            }
        }
    }

    /// A media socket is readable: read it dry (edge-triggered).
    fn on_ready(&mut self, token: u64) {
        let index = ((token - MEDIA_TOKEN_BASE) / 2) as u32;
        let rtcp_socket = token % 2 == 1;
        let Some(e) = self
            .entries
            .get_mut(index as usize)
            .and_then(|e| e.as_mut())
        else {
            return;
        };
        let mut digit = false;
        loop {
            let Some((rtp, rtcp)) = &e.own else { return };
            let sock = match (rtcp_socket, rtcp) {
                (true, Some(s)) => s,
                (true, None) => return,
                (false, _) => rtp,
            };
            // An error (ICMP from an earlier send) ends this read; the stream goes on.
            let n = self.batch.recv(sock).unwrap_or_default();
            if n == 0 {
                break;
            }
            for i in 0..n {
                let arrival = self.batch.arrival(i);
                // The source address only matters to the trace: not converted otherwise.
                let from = self.trace.is_some().then(|| self.batch.get(i).1);
                let data = self.batch.data_mut(i);
                let mut out = Out {
                    buf: &mut self.buf,
                    ctr: &mut self.counters,
                    shared: None,
                    trace: self.trace.as_mut(),
                };
                digit |= deliver(e, data, from, arrival, rtcp_socket, &mut out);
            }
            if n < RECV_SLOTS {
                break;
            }
        }
        if digit {
            self.events.push(e.owner);
        }
        self.touched.push(index);
    }

    fn entry_mut(&mut self, h: MediaHandle) -> Option<&mut Entry> {
        self.entries
            .get_mut(h.index as usize)?
            .as_mut()
            .filter(|e| e.generation == h.generation)
    }
}

/// What receiving and sending need besides the stream: the scratch buffer datagrams
/// are written into, the counters, the shared sockets' send queues and the trace.
struct Out<'a> {
    buf: &'a mut Vec<u8>,
    ctr: &'a mut MediaCounters,
    shared: Option<&'a mut Shared>,
    trace: Option<&'a mut TraceSink>,
}

/// `--rtp-shared`: note the addresses (and the SSRC, when its SDP said) a stream's
/// peer sends from, so the shared sockets find the stream.
fn map_peer(shared: &mut Shared, e: &mut Entry, index: u32) {
    if let Some(setup) = e.session.stream.setup()
        && e.mapped != Some((setup.remote_rtp, setup.remote_rtcp))
    {
        if let Some((rtp, rtcp)) = e.mapped.take() {
            shared.by_source.remove(&rtp);
            shared.by_source.remove(&rtcp);
        }
        shared.by_source.insert(setup.remote_rtp, index);
        shared.by_source.insert(setup.remote_rtcp, index);
        e.mapped = Some((setup.remote_rtp, setup.remote_rtcp));
    }
    if let Some(ssrc) = e.session.agreed().and_then(|a| a.remote_ssrc)
        && e.mapped_ssrc != Some(ssrc)
    {
        if let Some(old) = e.mapped_ssrc.replace(ssrc) {
            shared.by_ssrc.remove(&old);
        }
        shared.by_ssrc.insert(ssrc, index);
    }
}

/// One received datagram to its stream; an echo goes straight back. Returns true
/// when a digit completed.
fn deliver(
    e: &mut Entry,
    data: &mut [u8],
    from: Option<SocketAddr>,
    arrival: Instant,
    rtcp_socket: bool,
    out: &mut Out<'_>,
) -> bool {
    let rtcp = rtcp_socket || rtp::is_rtcp(data);
    if let (Some(t), Some(from)) = (out.trace.as_deref_mut(), from) {
        // As it arrived (still encrypted): the trace shows the wire.
        let local = local_addr(e, rtcp_socket);
        t.record(TraceDir::Received, SystemTime::now(), local, from, data);
    }
    let ctr = &mut *out.ctr;
    let got = if rtcp {
        e.session.stream.on_rtcp(data, arrival)
    } else {
        e.session.stream.on_rtp(data, arrival, out.buf)
    };
    match got.rejected {
        Some(Rejected::Auth) => ctr.srtp_auth_failures += 1,
        Some(Rejected::Replay) => ctr.srtp_replay_failures += 1,
        Some(Rejected::PlainRtcp) => ctr.plain_rtcp += 1,
        None if rtcp => ctr.rtcp_received += 1,
        None => ctr.packets_received += 1,
    }
    if rtcp {
        return false;
    }
    if got.invalid {
        ctr.invalid += 1;
    }
    if got.digit {
        ctr.dtmf_digits_received += 1;
    }
    if let Some(to) = got.echo {
        send(e, Channel::Rtp, to, out);
    }
    got.digit
}

/// Where a stream's datagrams leave from and arrive at, as its SDP says (the shared
/// sockets' ports with `--rtp-shared`).
fn local_addr(e: &Entry, rtcp_socket: bool) -> SocketAddr {
    let l = e.session.local();
    let port = match l.rtcp_port {
        Some(p) if rtcp_socket => p,
        _ => l.rtp_port,
    };
    SocketAddr::new(l.ip, port)
}

/// Send everything the stream has due.
fn flush_stream(e: &mut Entry, now: Instant, out: &mut Out<'_>) {
    while let Some(t) = e.session.stream.poll_transmit(now, out.buf) {
        send(e, t.channel, t.to, out);
    }
}

/// The datagram in `out.buf` to `to`.
fn send(e: &mut Entry, channel: Channel, to: SocketAddr, out: &mut Out<'_>) {
    let data = &out.buf[..];
    let ctr = &mut *out.ctr;
    let is_rtcp = channel == Channel::Rtcp || rtp::is_rtcp(data);
    if let Some(t) = out.trace.as_deref_mut() {
        let local = local_addr(e, channel == Channel::Rtcp);
        t.record(TraceDir::Sent, SystemTime::now(), local, to, data);
    }
    let sent = match (&e.own, out.shared.as_deref_mut()) {
        (Some((rtp, rtcp)), _) => {
            let sock = match (channel, rtcp) {
                (Channel::Rtcp, Some(s)) => s,
                _ => rtp,
            };
            sock.send_to(data, to)
        }
        // Counted as sent now; what `sendmmsg` refuses is counted as dropped then.
        (None, Some(sh)) => {
            let q = if channel == Channel::Rtcp {
                &mut sh.queue_rtcp
            } else {
                &mut sh.queue_rtp
            };
            q.push(to, data);
            Ok(true)
        }
        (None, None) => Ok(false),
    };
    match sent {
        Ok(true) => {
            if is_rtcp {
                ctr.rtcp_sent += 1;
            } else {
                ctr.packets_sent += 1;
                ctr.bytes_sent += data.len().saturating_sub(rtp::HEADER_LEN) as u64;
            }
        }
        // A full socket buffer or an ICMP error from an earlier packet: this packet
        // is lost; the stream goes on.
        Ok(false) | Err(_) => {
            ctr.send_dropped += 1;
            e.session.stream.count_send_drop();
        }
    }
}

impl MediaControl for MediaEngine {
    fn open(&mut self, call: u64, now: Instant) -> Result<MediaHandle, MediaError> {
        let ports_err = |e: io::Error| MediaError::Ports(e.to_string());
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(None);
                (self.entries.len() - 1) as u32
            }
        };
        let (own, rtp_addr, rtcp_addr) = match &self.shared {
            Some(sh) => {
                let rtp = sh.rtp.local_addr().map_err(ports_err);
                let rtcp = sh.rtcp.local_addr().map_err(ports_err);
                match (rtp, rtcp) {
                    (Ok(rtp), Ok(rtcp)) => (None, rtp, Some(rtcp)),
                    (Err(e), _) | (_, Err(e)) => {
                        self.free.push(index);
                        return Err(e);
                    }
                }
            }
            None => match self.bind_own(index) {
                Ok((rtp, rtcp)) => {
                    let rtp_addr = rtp.local_addr().map_err(ports_err)?;
                    let rtcp_addr = rtcp.as_ref().and_then(|s| s.local_addr().ok());
                    (Some((rtp, rtcp)), rtp_addr, rtcp_addr)
                }
                Err(e) => {
                    self.free.push(index);
                    return Err(e);
                }
            },
        };
        self.generation = self.generation.wrapping_add(1);
        let stream = MediaStream::new(
            self.seed ^ call.rotate_left(17) ^ u64::from(self.generation),
            self.config.echo,
            self.ntp_origin,
        );
        let session = MediaSession::new(
            &self.config,
            self.ip,
            rtp_addr,
            rtcp_addr,
            call,
            stream,
            &mut rand::rng(),
        );
        let mut entry = Entry {
            generation: self.generation,
            owner: self.owner,
            session,
            own,
            mapped: None,
            mapped_ssrc: None,
            scheduled: None,
        };
        if let Some(dir) = self.config.record.clone()
            && let Err(e) = entry.session.record_to(&dir, call)
        {
            self.forget(index, entry);
            return Err(MediaError::Other(format!("record: {}: {e}", dir.display())));
        }
        let _ = now;
        self.entries[index as usize] = Some(entry);
        self.active += 1;
        self.counters.streams += 1;
        Ok(MediaHandle {
            index,
            generation: self.generation,
        })
    }

    fn get(&self, h: MediaHandle) -> Option<&MediaSession> {
        self.entries
            .get(h.index as usize)?
            .as_ref()
            .filter(|e| e.generation == h.generation)
            .map(|e| &e.session)
    }

    fn get_mut(&mut self, h: MediaHandle) -> Option<&mut MediaSession> {
        self.touched.push(h.index);
        self.entry_mut(h).map(|e| &mut e.session)
    }

    fn close(&mut self, h: MediaHandle, now: Instant) {
        if self.entry_mut(h).is_none() {
            return;
        }
        let Some(mut e) = self.entries[h.index as usize].take() else {
            return;
        };
        e.session.stream.close();
        let mut out = Out {
            buf: &mut self.buf,
            ctr: &mut self.counters,
            shared: self.shared.as_mut(),
            trace: self.trace.as_mut(),
        };
        flush_stream(&mut e, now, &mut out);
        self.flush_shared();
        let _ = e.session.stream.finish_recordings();
        let f = e.session.stream.figures();
        self.counters.lost += f.lost;
        self.counters.duplicates += f.duplicates;
        self.counters.out_of_order += f.out_of_order;
        self.counters.max_gap_us = self.counters.max_gap_us.max(f.max_gap.as_micros() as u64);
        self.counters.max_jitter_us = self
            .counters
            .max_jitter_us
            .max(f.max_jitter.as_micros() as u64);
        self.counters.dtmf_digits_sent += f.digits_sent;
        self.counters.srtp_streams += u64::from(f.srtp);
        if f.packets_received > 0 {
            self.jitter_samples.push(f.jitter);
        }
        self.forget(h.index, e);
        self.active = self.active.saturating_sub(1);
    }
}

impl MediaEngine {
    /// A call's own RTP/RTCP pair, registered with the poller under `index`.
    fn bind_own(&mut self, index: u32) -> Result<(MediaSocket, Option<MediaSocket>), MediaError> {
        let (rtp, rtcp) = {
            let mut pool = self
                .ports
                .lock()
                .map_err(|_| MediaError::Ports("port pool poisoned".into()))?;
            pool.bind_pair(self.ip, !self.config.rtcp_mux)
                .map_err(|e| MediaError::Ports(e.to_string()))?
        };
        let token = MEDIA_TOKEN_BASE + u64::from(index) * 2;
        let registered =
            self.registrar
                .register(rtp.as_raw_fd(), token)
                .and_then(|_| match &rtcp {
                    Some(s) => self.registrar.register(s.as_raw_fd(), token + 1),
                    None => Ok(()),
                });
        if let Err(e) = registered {
            let _ = self.registrar.deregister(rtp.as_raw_fd());
            self.release_port(&rtp);
            return Err(MediaError::Ports(format!(
                "registering a media socket: {e}"
            )));
        }
        Ok((rtp, rtcp))
    }

    /// Drop an entry's sockets (its ports go back to the pool) or its shared-mode
    /// addresses, and free its slot.
    fn forget(&mut self, index: u32, e: Entry) {
        if let Some((rtp, rtcp)) = &e.own {
            let _ = self.registrar.deregister(rtp.as_raw_fd());
            if let Some(s) = rtcp {
                let _ = self.registrar.deregister(s.as_raw_fd());
            }
            self.release_port(rtp);
        }
        if let Some(sh) = self.shared.as_mut() {
            if let Some((rtp, rtcp)) = e.mapped {
                for a in [rtp, rtcp] {
                    if sh.by_source.get(&a) == Some(&index) {
                        sh.by_source.remove(&a);
                        sh.closed.insert(Known::Source(a));
                    }
                }
            }
            if let Some(x) = e.mapped_ssrc
                && sh.by_ssrc.get(&x) == Some(&index)
            {
                sh.by_ssrc.remove(&x);
                sh.closed.insert(Known::Ssrc(x));
            }
        }
        drop(e);
        self.free.push(index);
    }

    fn release_port(&self, rtp: &MediaSocket) {
        if let Ok(a) = rtp.local_addr()
            && let Ok(mut pool) = self.ports.lock()
        {
            pool.release(a.port());
        }
    }
}

//! A driver's media engine: the RTP/RTCP sockets of its calls, one readiness poller
//! for all of them (and the driver's SIP socket), one timer heap of stream deadlines.
//! Streams are sans-IO ([`MediaStream`]); this is where their datagrams meet sockets.
//! Calls reach their session through [`MediaControl`] with a handle; the engine
//! tells the driver which calls have news (a digit arrived) through `events`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::media::config::MediaConfig;
use crate::media::control::{MediaControl, MediaHandle};
use crate::media::rtp;
use crate::media::session::{MediaError, MediaSession};
use crate::media::stream::{Channel, MediaStream, ntp_from_unix};
use crate::report::MediaCounters;
use crate::transport::media_socket::{MediaSocket, TimestampedBatch, realtime_now};
use crate::transport::poller::Poller;
use crate::transport::ports::PortPool;

/// The driver's own SIP socket in the poller.
pub const SIP_TOKEN: u64 = 0;
/// Datagrams read per recvmmsg on a media socket.
const RECV_SLOTS: usize = 16;
/// Events one poller wait returns at most.
const POLL_EVENTS: usize = 1024;

struct Entry {
    generation: u32,
    /// The call's driver slot and generation.
    owner: (usize, u32),
    session: MediaSession,
    rtp: MediaSocket,
    rtcp: Option<MediaSocket>,
    /// Earliest heap entry for this stream (others are stale).
    scheduled: Option<Instant>,
}

pub struct MediaEngine {
    config: Arc<MediaConfig>,
    /// Where media sockets bind and what SDP advertises.
    ip: IpAddr,
    ports: Arc<Mutex<PortPool>>,
    poller: Poller,
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
    /// Tokens of the last wait, copied out of the poller (reused: no allocation).
    ready: Vec<u64>,
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
}

impl MediaEngine {
    pub fn new(
        config: Arc<MediaConfig>,
        ip: IpAddr,
        ports: Arc<Mutex<PortPool>>,
        seed: u64,
    ) -> io::Result<MediaEngine> {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(MediaEngine {
            config,
            ip,
            ports,
            poller: Poller::new(POLL_EVENTS)?,
            entries: Vec::new(),
            free: Vec::new(),
            generation: 0,
            timers: BinaryHeap::new(),
            batch: TimestampedBatch::new(RECV_SLOTS),
            buf: Vec::with_capacity(1500),
            touched: Vec::new(),
            events: Vec::new(),
            ready: Vec::new(),
            counters: MediaCounters::default(),
            jitter_samples: Vec::new(),
            ntp_origin: (Instant::now(), ntp_from_unix(unix)),
            seed,
            owner: (usize::MAX, 0),
            active: 0,
        })
    }

    pub fn poller(&mut self) -> &mut Poller {
        &mut self.poller
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
            flush_stream(e, now, &mut self.buf, &mut self.counters);
            self.schedule(index);
        }
    }

    /// Read every media socket the last wait found readable.
    pub fn read_ready(&mut self) {
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.poller.ready().filter(|t| *t != SIP_TOKEN));
        for &token in &ready {
            self.on_ready(token);
        }
        self.ready = ready;
    }

    /// A media socket is readable: read it dry (edge-triggered).
    fn on_ready(&mut self, token: u64) {
        if token < 2 {
            return;
        }
        let index = ((token - 2) / 2) as u32;
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
            let sock = match (rtcp_socket, &e.rtcp) {
                (true, Some(s)) => s,
                (true, None) => return,
                (false, _) => &e.rtp,
            };
            // An error (ICMP from an earlier send) ends this read; the stream goes on.
            let n = self.batch.recv(sock).unwrap_or_default();
            if n == 0 {
                break;
            }
            // Kernel receive times map onto Instants through one pair of clock
            // reads per batch: jitter is measured at arrival, not at this wake-up.
            let now = Instant::now();
            let now_rt = realtime_now();
            for i in 0..n {
                let (data, _from, ts) = self.batch.get(i);
                let arrival = match ts {
                    Some(ts) => now.checked_sub(now_rt.saturating_sub(ts)).unwrap_or(now),
                    None => now,
                };
                if rtcp_socket {
                    self.counters.rtcp_received += 1;
                    e.session.stream.on_rtcp(data, arrival);
                    continue;
                }
                if rtp::is_rtcp(data) {
                    self.counters.rtcp_received += 1;
                } else {
                    self.counters.packets_received += 1;
                }
                let got = e.session.stream.on_rtp(data, arrival, &mut self.buf);
                if got.invalid {
                    self.counters.invalid += 1;
                }
                if got.digit {
                    self.counters.dtmf_digits_received += 1;
                    digit = true;
                }
                if let Some(to) = got.echo {
                    send(e, Channel::Rtp, to, &self.buf, &mut self.counters);
                }
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

/// Send everything the stream has due.
fn flush_stream(e: &mut Entry, now: Instant, buf: &mut Vec<u8>, ctr: &mut MediaCounters) {
    while let Some(t) = e.session.stream.poll_transmit(now, buf) {
        send(e, t.channel, t.to, buf, ctr);
    }
}

fn send(
    e: &mut Entry,
    channel: Channel,
    to: std::net::SocketAddr,
    data: &[u8],
    ctr: &mut MediaCounters,
) {
    let sock = match (channel, &e.rtcp) {
        (Channel::Rtcp, Some(s)) => s,
        _ => &e.rtp,
    };
    match sock.send_to(data, to) {
        Ok(true) => {
            if channel == Channel::Rtcp || rtp::is_rtcp(data) {
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
        let want_rtcp_socket = !self.config.rtcp_mux;
        let (rtp_sock, rtcp_sock) = {
            let mut pool = self
                .ports
                .lock()
                .map_err(|_| MediaError::Ports("port pool poisoned".into()))?;
            pool.bind_pair(self.ip, want_rtcp_socket)
                .map_err(|e| MediaError::Ports(e.to_string()))?
        };
        let rtp_addr = rtp_sock
            .local_addr()
            .map_err(|e| MediaError::Ports(e.to_string()))?;
        let rtcp_addr = rtcp_sock.as_ref().and_then(|s| s.local_addr().ok());
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(None);
                (self.entries.len() - 1) as u32
            }
        };
        let token = 2 + u64::from(index) * 2;
        let registered = self
            .poller
            .register(rtp_sock.as_raw_fd(), token)
            .and_then(|_| match &rtcp_sock {
                Some(s) => self.poller.register(s.as_raw_fd(), token + 1),
                None => Ok(()),
            });
        if let Err(e) = registered {
            self.release(index, rtp_addr.port());
            return Err(MediaError::Ports(format!(
                "registering a media socket: {e}"
            )));
        }
        self.generation = self.generation.wrapping_add(1);
        let stream = MediaStream::new(
            self.seed ^ call.rotate_left(17) ^ u64::from(self.generation),
            self.config.echo,
            self.ntp_origin,
        );
        let mut session =
            MediaSession::new(&self.config, self.ip, rtp_addr, rtcp_addr, call, stream);
        if let Some(dir) = self.config.record.clone()
            && let Err(e) = session.record_to(&dir, call)
        {
            let _ = self.poller.deregister(rtp_sock.as_raw_fd());
            if let Some(s) = &rtcp_sock {
                let _ = self.poller.deregister(s.as_raw_fd());
            }
            self.release(index, rtp_addr.port());
            return Err(MediaError::Other(format!("record: {}: {e}", dir.display())));
        }
        let _ = now;
        self.entries[index as usize] = Some(Entry {
            generation: self.generation,
            owner: self.owner,
            session,
            rtp: rtp_sock,
            rtcp: rtcp_sock,
            scheduled: None,
        });
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
        flush_stream(&mut e, now, &mut self.buf, &mut self.counters);
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
        if f.packets_received > 0 {
            self.jitter_samples.push(f.jitter);
        }
        let _ = self.poller.deregister(e.rtp.as_raw_fd());
        if let Some(s) = &e.rtcp {
            let _ = self.poller.deregister(s.as_raw_fd());
        }
        let port = e.rtp.local_addr().map(|a| a.port()).unwrap_or(0);
        drop(e);
        self.release(h.index, port);
        self.active = self.active.saturating_sub(1);
    }
}

impl MediaEngine {
    fn release(&mut self, index: u32, port: u16) {
        self.free.push(index);
        if port != 0
            && let Ok(mut pool) = self.ports.lock()
        {
            pool.release(port);
        }
    }
}

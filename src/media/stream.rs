//! One call's RTP stream, sans-IO: what to send when (audio slots on absolute
//! deadlines, RFC 4733 events in the same sequence space, RTCP reports), what arrived
//! (RFC 3550 statistics, digits), and echo. Input is datagrams with their arrival time
//! and `now`; output is one datagram at a time through [`MediaStream::poll_transmit`]
//! into the caller's buffer, plus [`MediaStream::deadline`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{PlaySource, PlaySpec, Until};
use super::dtmf::{DigitCollector, DtmfSender, DtmfTiming, EventPacket};
use super::g711::Law;
use super::pacing::Pacer;
use super::protection::{Protection, Rejected};
use super::recorder::Recorder;
use super::rtcp::{self, Rtcp, SenderInfo};
use super::rtp::{self, Header, Packet};
use super::source::PcapClip;
use super::stats::ReceiveStats;
use crate::sdp::sdes::SrtpAgreed;
use crate::srtp::SrtpError;

/// RTP clock of every codec we send (G.711, telephone-event/8000).
pub const CLOCK_RATE: u32 = 8000;
/// RFC 3550 §6.2 minimum interval; randomised ×[0.5, 1.5] per report so streams
/// started together do not report in step.
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// A driver that fell further behind than this skips the missed slots (they show up
/// as a timestamp jump, not a burst that would hit the peer's jitter buffer at once).
const MAX_CATCH_UP: Duration = Duration::from_millis(100);
/// µ-law/A-law silence.
const SILENCE: [u8; 2] = [0xFF, 0xD5];

/// What both sides agreed on (from SDP), in the stream's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSetup {
    pub payload_type: u8,
    /// None: a codec we cannot encode (we may still receive it and play pcaps).
    pub law: Option<Law>,
    pub telephone_event: Option<u8>,
    pub ptime: Duration,
    pub send: bool,
    pub receive: bool,
    pub remote_rtp: SocketAddr,
    /// Equal to `remote_rtp` with rtcp-mux.
    pub remote_rtcp: SocketAddr,
    pub rtcp_mux: bool,
}

/// Which socket a datagram leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Rtp,
    Rtcp,
}

/// One datagram written into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub channel: Channel,
    pub to: SocketAddr,
}

/// What a received datagram did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// An echo was written into the buffer: send it on the RTP socket.
    pub echo: Option<SocketAddr>,
    /// A new RFC 4733 digit completed.
    pub digit: bool,
    /// Not RTP or RTCP we could parse.
    pub invalid: bool,
    /// An SRTP stream's datagram that did not open (counted in the stream's figures).
    pub rejected: Option<Rejected>,
}

/// Figures of one stream, added to the run's totals when it closes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StreamFigures {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub jitter: Duration,
    pub max_jitter: Duration,
    pub max_gap: Duration,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    pub rtt: Option<Duration>,
    pub digits_sent: u64,
    pub digits_received: u64,
    pub send_dropped: u64,
    /// The stream was SRTP-protected.
    pub srtp: bool,
    pub srtp_auth_failures: u64,
    pub srtp_replay_failures: u64,
    /// Plain RTCP that arrived on the SRTP stream (sent before the peer was keyed).
    pub plain_rtcp: u64,
}

enum Playing {
    Nothing,
    Silence,
    Audio {
        clip: Arc<super::source::AudioClip>,
        pos: usize,
        looped: bool,
    },
    Pcap {
        clip: Arc<PcapClip>,
        next: usize,
        looped: bool,
        /// When the clip's packet 0 is (was) due in this round.
        origin: Instant,
        /// Our timestamp for the clip's timestamp 0 in this round.
        ts_origin: u32,
    },
}

/// Receive side: one source, its statistics and digits.
struct Rx {
    ssrc: u32,
    stats: ReceiveStats,
    digits: DigitCollector,
    /// Our timestamp minus theirs, fixed at the first packet (echo keeps their timing).
    echo_ts_offset: u32,
    /// Last SR from the peer: its middle NTP bits and when it arrived (for LSR/DLSR).
    last_sr: Option<(u32, Instant)>,
}

pub struct MediaStream {
    setup: Option<StreamSetup>,
    ssrc: u32,
    seq: u16,
    /// RTP timestamp of slot 0 of `pacer`.
    ts_base: u32,
    pacer: Option<Pacer>,
    playing: Playing,
    play_until: Option<Instant>,
    /// Marker on the next audio packet (start of a talkspurt).
    talkspurt: bool,
    dtmf: DtmfSender,
    /// Final event packet still to be repeated, and how many more copies.
    repeat: Option<(EventPacket, u8)>,
    /// When the digits queued so far will have been sent.
    dtmf_done: Option<Instant>,
    echo: bool,
    rx: Option<Rx>,
    /// Our own statistics.
    figures: StreamFigures,
    next_rtcp: Option<Instant>,
    /// For SR timestamps: an instant and the NTP time it stands for.
    ntp_origin: (Instant, u64),
    rng: u32,
    cname: [u8; 16],
    record_sent: Option<Box<Recorder>>,
    record_received: Option<Box<Recorder>>,
    /// BYE to send once (stop or close).
    bye_pending: bool,
    closed: bool,
    /// SDES-SRTP, once the offer/answer agreed on it.
    srtp: Option<Box<Protection>>,
}

/// NTP time (seconds since 1900 in 32.32 fixed point) for a duration since 1970.
pub fn ntp_from_unix(since_epoch: Duration) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let secs = since_epoch.as_secs() + UNIX_TO_NTP;
    let frac = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

impl MediaStream {
    /// `seed` makes SSRC, initial sequence and timestamp (and the RTCP interval
    /// jitter) unique per stream; `ntp_origin` pairs an instant with its NTP time.
    pub fn new(seed: u64, echo: bool, ntp_origin: (Instant, u64)) -> MediaStream {
        // Never zero: xorshift would stay at zero.
        let mut rng = ((seed as u32) ^ ((seed >> 32) as u32) ^ 0x9e37_79b9) | 1;
        let mut next = || xorshift(&mut rng);
        let ssrc = next();
        let seq = next() as u16 & 0x7fff;
        let ts_base = next();
        let mut cname = *b"sipwright-000000";
        let mut x = ssrc;
        for b in cname[10..].iter_mut() {
            *b = b"0123456789abcdef"[(x & 0xf) as usize];
            x >>= 4;
        }
        MediaStream {
            setup: None,
            ssrc,
            seq,
            ts_base,
            pacer: None,
            playing: Playing::Nothing,
            play_until: None,
            talkspurt: true,
            dtmf: DtmfSender::default(),
            repeat: None,
            dtmf_done: None,
            echo,
            rx: None,
            figures: StreamFigures::default(),
            next_rtcp: None,
            ntp_origin,
            rng: next(),
            cname,
            record_sent: None,
            record_received: None,
            bye_pending: false,
            closed: false,
            srtp: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn setup(&self) -> Option<&StreamSetup> {
        self.setup.as_ref()
    }

    /// Record what is sent and what arrives to these recorders (G.711 only).
    pub fn record(&mut self, sent: Option<Recorder>, received: Option<Recorder>) {
        self.record_sent = sent.map(Box::new);
        self.record_received = received.map(Box::new);
    }

    /// Where and how to send, from the SDP exchange (again on a re-INVITE). Pacing
    /// starts now; timestamps stay continuous across changes.
    pub fn configure(&mut self, setup: StreamSetup, now: Instant) {
        let first = self.setup.is_none();
        if let Some(p) = &self.pacer
            && p.interval() != setup.ptime
        {
            self.ts_base = self.slot_timestamp(p.count());
            self.pacer = None;
        }
        if self.pacer.is_none() && !setup.ptime.is_zero() {
            self.pacer = Some(Pacer::new(now, setup.ptime));
        }
        self.setup = Some(setup);
        if first {
            self.next_rtcp = Some(now + self.rtcp_interval());
        }
    }

    fn samples_per_slot(&self) -> u32 {
        self.pacer.as_ref().map_or(160, |p| {
            (p.interval().as_micros() as u64 * u64::from(CLOCK_RATE) / 1_000_000) as u32
        })
    }

    fn slot_timestamp(&self, n: u64) -> u32 {
        self.ts_base
            .wrapping_add((n as u32).wrapping_mul(self.samples_per_slot()))
    }

    fn rtcp_interval(&mut self) -> Duration {
        // ×[0.5, 1.5)
        let f = 0.5 + f64::from(xorshift(&mut self.rng) % 1000) / 1000.0;
        RTCP_INTERVAL.mul_f64(f)
    }

    fn sending(&self) -> bool {
        !self.closed && self.setup.is_some_and(|s| s.send)
    }

    /// Is there anything to send on the slot clock?
    fn slot_work(&self) -> bool {
        self.repeat.is_some()
            || !self.dtmf.is_idle()
            || matches!(self.playing, Playing::Silence | Playing::Audio { .. })
    }

    /// Start sending `spec` (replacing what plays).
    pub fn play(&mut self, spec: &PlaySpec, now: Instant) {
        self.resync(now);
        self.play_until = match spec.until {
            Until::Bye => None,
            Until::After(d) => Some(now + d),
        };
        self.talkspurt = true;
        self.playing = match &spec.source {
            PlaySource::Audio(clip) => Playing::Audio {
                clip: clip.clone(),
                pos: 0,
                looped: spec.looped,
            },
            PlaySource::Pcap(clip) => Playing::Pcap {
                clip: clip.clone(),
                next: 0,
                looped: spec.looped,
                origin: now,
                ts_origin: self.slot_timestamp(self.pacer.as_ref().map_or(0, |p| p.count())),
            },
        };
    }

    /// Send silence frames (a phone on mute that keeps its stream alive).
    pub fn silence(&mut self, now: Instant) {
        self.resync(now);
        self.playing = Playing::Silence;
        self.play_until = None;
        self.talkspurt = true;
    }

    /// Stop sending audio (digits queued still go).
    pub fn stop_audio(&mut self) {
        self.playing = Playing::Nothing;
        self.play_until = None;
    }

    /// Queue RFC 4733 digits; returns when the last one will have been sent.
    pub fn dtmf(&mut self, digits: &str, timing: DtmfTiming, now: Instant) -> Instant {
        if self.dtmf.is_idle() && !self.slot_work() {
            self.resync(now);
        }
        self.dtmf.queue(digits, timing);
        let slot = self
            .pacer
            .as_ref()
            .map_or(Duration::from_millis(20), |p| p.interval());
        let per_digit = round_up(timing.duration, slot) + round_up(timing.gap, slot);
        // After the digits queued before these; a slot of slack for the end repeats.
        let start = self.dtmf_done.filter(|t| *t > now).unwrap_or(now);
        let done = start + per_digit * digits.chars().count() as u32 + slot;
        self.dtmf_done = Some(done);
        done
    }

    /// After a pause in sending, move the slot clock to now so timestamps follow
    /// the wall clock (as a phone's would) instead of bursting the missed slots.
    fn resync(&mut self, now: Instant) {
        if let Some(p) = self.pacer.as_mut() {
            p.skip_late(now, Duration::ZERO);
        }
    }

    /// Stop sending for good (RTCP BYE goes out once); receiving still counts.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.bye_pending = self.setup.is_some();
            self.playing = Playing::Nothing;
        }
    }

    /// Finish recordings (their WAV headers get their lengths).
    pub fn finish_recordings(&mut self) -> std::io::Result<()> {
        let mut result = Ok(());
        for r in [self.record_sent.take(), self.record_received.take()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = r.finish() {
                result = Err(e);
            }
        }
        result
    }

    /// SRTP as the latest offer/answer agreed (None: plain RTP from now on). Called
    /// again after a re-INVITE: the peer's new key is tried first, its old one still
    /// opens packets in flight.
    pub fn set_srtp(&mut self, agreed: Option<&SrtpAgreed>) -> Result<(), SrtpError> {
        match (agreed, self.srtp.as_mut()) {
            (None, _) => self.srtp = None,
            (Some(a), Some(p)) => p.update(a)?,
            (Some(a), None) => self.srtp = Some(Box::new(Protection::new(a)?)),
        }
        Ok(())
    }

    pub fn is_srtp(&self) -> bool {
        self.srtp.is_some()
    }

    /// When `poll_transmit` next has something to send.
    pub fn deadline(&self) -> Option<Instant> {
        if self.bye_pending || self.repeat.is_some() {
            // Due at once: any instant already past will do, and this one is.
            return Some(self.ntp_origin.0);
        }
        let mut d = self.next_rtcp.filter(|_| !self.closed);
        if self.sending() {
            if self.slot_work() {
                d = min_opt(d, self.pacer.as_ref().map(|p| p.due()));
            }
            if let Playing::Pcap {
                clip, next, origin, ..
            } = &self.playing
                && let Some(p) = clip.packets().get(*next)
            {
                d = min_opt(d, Some(*origin + p.offset));
            }
            d = min_opt(d, self.play_until);
        }
        d
    }

    /// Write the next due datagram into `buf` (cleared first), SRTP-protected when the
    /// call agreed on it; None when nothing is due at `now`. Call until None.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        loop {
            let t = self.next_plain(now, buf)?;
            if self.seal(buf) {
                return Some(t);
            }
            // Cannot happen with packets we wrote; if it does, that packet is lost.
            self.figures.send_dropped += 1;
        }
    }

    /// Protect the plain datagram in `buf` in place (a no-op for plain RTP streams).
    fn seal(&mut self, buf: &mut Vec<u8>) -> bool {
        match self.srtp.as_mut() {
            Some(p) => p.seal(buf, rtp::is_rtcp(buf)),
            None => true,
        }
    }

    fn next_plain(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        let setup = self.setup?;
        if let Some((ev, left)) = self.repeat.take() {
            if left > 1 {
                self.repeat = Some((ev, left - 1));
            }
            self.write_event(&setup, &ev, buf);
            return Some(self.rtp_to(&setup));
        }
        if self.bye_pending {
            self.bye_pending = false;
            self.write_rtcp(now, buf, true);
            return Some(self.rtcp_to(&setup));
        }
        if self.sending() {
            if self.play_until.is_some_and(|u| u <= now) {
                self.stop_audio();
            }
            if let Some(t) = self.poll_slots(&setup, now, buf) {
                return Some(t);
            }
            if let Some(t) = self.poll_pcap(&setup, now, buf) {
                return Some(t);
            }
        }
        if !self.closed && self.next_rtcp.is_some_and(|t| t <= now) {
            self.next_rtcp = Some(now + self.rtcp_interval());
            self.write_rtcp(now, buf, false);
            return Some(self.rtcp_to(&setup));
        }
        None
    }

    fn rtp_to(&self, setup: &StreamSetup) -> Transmit {
        Transmit {
            channel: Channel::Rtp,
            to: setup.remote_rtp,
        }
    }

    fn rtcp_to(&self, setup: &StreamSetup) -> Transmit {
        Transmit {
            channel: if setup.rtcp_mux {
                Channel::Rtp
            } else {
                Channel::Rtcp
            },
            to: setup.remote_rtcp,
        }
    }

    /// The slot clock: DTMF events and WAV/silence audio.
    fn poll_slots(
        &mut self,
        setup: &StreamSetup,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        if !self.slot_work() {
            return None;
        }
        loop {
            let pacer = self.pacer.as_mut()?;
            pacer.skip_late(now, MAX_CATCH_UP);
            if pacer.due() > now {
                return None;
            }
            let n = pacer.count();
            pacer.advance();
            let ts = self.slot_timestamp(n);
            let samples = self.samples_per_slot();
            if setup.telephone_event.is_some()
                && let Some(ev) = self.dtmf.on_slot(ts, samples, CLOCK_RATE)
            {
                if ev.copies > 1 {
                    self.repeat = Some((ev, ev.copies - 1));
                }
                self.write_event(setup, &ev, buf);
                self.talkspurt = true;
                return Some(self.rtp_to(setup));
            }
            if self.write_audio(setup, ts, samples as usize, buf) {
                return Some(self.rtp_to(setup));
            }
            if !self.slot_work() {
                return None;
            }
        }
    }

    /// Audio for one slot from the WAV clip or silence; false when there is none.
    fn write_audio(
        &mut self,
        setup: &StreamSetup,
        ts: u32,
        samples: usize,
        buf: &mut Vec<u8>,
    ) -> bool {
        let Some(law) = setup.law else { return false };
        let header = Header {
            marker: self.talkspurt,
            payload_type: setup.payload_type,
            sequence: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
        };
        match &mut self.playing {
            Playing::Silence => {
                header.write(buf);
                let fill = if law == Law::Ulaw {
                    SILENCE[0]
                } else {
                    SILENCE[1]
                };
                buf.resize(buf.len() + samples, fill);
            }
            Playing::Audio { clip, pos, looped } => {
                let data = clip.encoded(law);
                if data.is_empty() || (*pos >= data.len() && !*looped) {
                    self.playing = Playing::Nothing;
                    return false;
                }
                header.write(buf);
                let mut left = samples;
                while left > 0 {
                    if *pos >= data.len() {
                        if !*looped {
                            // The clip's last partial frame is padded with silence.
                            let fill = if law == Law::Ulaw {
                                SILENCE[0]
                            } else {
                                SILENCE[1]
                            };
                            buf.resize(buf.len() + left, fill);
                            break;
                        }
                        *pos = 0;
                    }
                    let take = left.min(data.len() - *pos);
                    buf.extend_from_slice(&data[*pos..*pos + take]);
                    *pos += take;
                    left -= take;
                }
            }
            _ => return false,
        }
        self.talkspurt = false;
        self.seq = self.seq.wrapping_add(1);
        let payload = &buf[rtp::HEADER_LEN..];
        self.figures.packets_sent += 1;
        self.figures.bytes_sent += payload.len() as u64;
        if let Some(r) = self.record_sent.as_mut() {
            let _ = r.write(law, ts, payload);
        }
        true
    }

    /// Packets of a pcap clip at their original spacing (no slot clock). During a
    /// DTMF event the clip's packets are skipped: audio pauses as on a phone.
    fn poll_pcap(
        &mut self,
        setup: &StreamSetup,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        let busy_dtmf = !self.dtmf.is_idle() || self.repeat.is_some();
        let Playing::Pcap {
            clip,
            next,
            looped,
            origin,
            ts_origin,
        } = &mut self.playing
        else {
            return None;
        };
        loop {
            let Some(p) = clip.packets().get(*next) else {
                if !*looped || clip.packets().is_empty() {
                    self.playing = Playing::Nothing;
                    return None;
                }
                // Next round: after the last packet, one more packet interval.
                let pk = clip.packets();
                let step = match pk {
                    [.., a, b] => (
                        b.offset.saturating_sub(a.offset),
                        b.timestamp.wrapping_sub(a.timestamp),
                    ),
                    _ => (setup.ptime, 160),
                };
                let last = &pk[pk.len() - 1];
                *origin += last.offset + step.0;
                *ts_origin = ts_origin.wrapping_add(last.timestamp.wrapping_add(step.1));
                *next = 0;
                continue;
            };
            if *origin + p.offset > now {
                return None;
            }
            *next += 1;
            if busy_dtmf {
                continue;
            }
            let header = Header {
                marker: p.marker,
                payload_type: p.payload_type,
                sequence: self.seq,
                timestamp: ts_origin.wrapping_add(p.timestamp),
                ssrc: self.ssrc,
            };
            let payload = clip.payload(p);
            rtp::write_packet(buf, &header, payload);
            self.seq = self.seq.wrapping_add(1);
            self.figures.packets_sent += 1;
            self.figures.bytes_sent += payload.len() as u64;
            return Some(Transmit {
                channel: Channel::Rtp,
                to: setup.remote_rtp,
            });
        }
    }

    fn write_event(&mut self, setup: &StreamSetup, ev: &EventPacket, buf: &mut Vec<u8>) {
        let header = Header {
            marker: ev.marker,
            payload_type: setup.telephone_event.unwrap_or(101),
            sequence: self.seq,
            timestamp: ev.timestamp,
            ssrc: self.ssrc,
        };
        rtp::write_packet(buf, &header, &ev.payload);
        self.seq = self.seq.wrapping_add(1);
        self.figures.packets_sent += 1;
        self.figures.bytes_sent += ev.payload.len() as u64;
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        let (at, ntp) = self.ntp_origin;
        let d = now.saturating_duration_since(at);
        let units = (d.as_secs() << 32) + ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000);
        ntp.wrapping_add(units)
    }

    /// SR when we have sent since the last report, else RR; SDES CNAME; BYE at the end.
    fn write_rtcp(&mut self, now: Instant, buf: &mut Vec<u8>, bye: bool) {
        let mut block = None;
        if let Some(rx) = self.rx.as_mut() {
            let (lsr, dlsr) = match rx.last_sr {
                Some((lsr, at)) => {
                    let d = now.saturating_duration_since(at);
                    (lsr, ((d.as_micros() as u64 * 65_536) / 1_000_000) as u32)
                }
                None => (0, 0),
            };
            block = Some(rx.stats.report_block(rx.ssrc, lsr, dlsr));
        }
        let blocks: &[rtcp::ReportBlock] = match &block {
            Some(b) => std::slice::from_ref(b),
            None => &[],
        };
        if self.figures.packets_sent > 0 {
            let elapsed_slots = self.pacer.as_ref().map_or(0, |p| p.count());
            let info = SenderInfo {
                ntp: self.ntp_at(now),
                rtp_timestamp: self.slot_timestamp(elapsed_slots),
                packets: self.figures.packets_sent as u32,
                octets: self.figures.bytes_sent as u32,
            };
            rtcp::write_sr(buf, self.ssrc, &info, blocks);
        } else {
            rtcp::write_rr(buf, self.ssrc, blocks);
        }
        rtcp::write_sdes_cname(buf, self.ssrc, &self.cname);
        if bye {
            rtcp::write_bye(buf, self.ssrc);
        }
        self.figures.rtcp_sent += 1;
    }

    /// A datagram on the RTP socket (RTP, or RTCP with rtcp-mux) that arrived at
    /// `arrival`. An echo, when configured, is written into `buf`. SRTP opens in place
    /// in `data`.
    pub fn on_rtp(&mut self, data: &mut [u8], arrival: Instant, buf: &mut Vec<u8>) -> Received {
        let mut out = Received::default();
        if rtp::is_rtcp(data) {
            return self.on_rtcp(data, arrival);
        }
        let data = match self.open(data, false) {
            Ok(d) => d,
            Err(why) => {
                out.rejected = Some(why);
                return out;
            }
        };
        let Ok(pkt) = Packet::parse(data) else {
            out.invalid = true;
            return out;
        };
        let Some(setup) = self.setup else {
            // Media before the answer (early media to a port we offered): count it.
            self.figures.packets_received += 1;
            return out;
        };
        let h = pkt.header;
        let is_event = setup.telephone_event == Some(h.payload_type);
        let rx = self.rx.get_or_insert_with(|| Rx {
            ssrc: h.ssrc,
            stats: ReceiveStats::new(CLOCK_RATE),
            digits: DigitCollector::default(),
            echo_ts_offset: self.ts_base.wrapping_sub(h.timestamp),
            last_sr: None,
        });
        if rx.ssrc != h.ssrc {
            // A new source (the peer restarted its stream): start its figures afresh
            // but keep what the old one lost.
            let old = std::mem::replace(&mut rx.stats, ReceiveStats::new(CLOCK_RATE));
            self.figures.lost += old.lost();
            self.figures.duplicates += old.duplicates();
            self.figures.out_of_order += old.out_of_order();
            self.figures.max_gap = self.figures.max_gap.max(old.max_gap());
            rx.ssrc = h.ssrc;
            rx.echo_ts_offset = self.ts_base.wrapping_sub(h.timestamp);
        }
        rx.stats.on_packet(
            h.sequence,
            h.timestamp,
            arrival,
            pkt.payload.len(),
            !is_event,
        );
        self.figures.packets_received += 1;
        self.figures.bytes_received += pkt.payload.len() as u64;
        self.figures.max_jitter = self.figures.max_jitter.max(rx.stats.jitter());
        if is_event {
            let before = rx.digits.digits().len();
            rx.digits.push(h.timestamp, pkt.payload);
            out.digit = rx.digits.digits().len() > before;
            return out;
        }
        if let (Some(law), Some(r)) = (
            Law::of_payload_type(h.payload_type),
            self.record_received.as_mut(),
        ) {
            let _ = r.write(law, h.timestamp, pkt.payload);
        }
        if self.echo && setup.send && !self.closed {
            let echo = Header {
                marker: h.marker,
                payload_type: h.payload_type,
                sequence: self.seq,
                timestamp: h.timestamp.wrapping_add(rx.echo_ts_offset),
                ssrc: self.ssrc,
            };
            buf.clear();
            rtp::write_packet(buf, &echo, pkt.payload);
            self.seq = self.seq.wrapping_add(1);
            self.figures.packets_sent += 1;
            self.figures.bytes_sent += pkt.payload.len() as u64;
            if self.seal(buf) {
                out.echo = Some(setup.remote_rtp);
            }
        }
        out
    }

    /// The plain packet in a received datagram: SRTP opened in place, or the datagram
    /// itself on a plain stream.
    fn open<'d>(&mut self, data: &'d mut [u8], rtcp: bool) -> Result<&'d [u8], Rejected> {
        match self.srtp.as_mut() {
            Some(p) => p.open(data, rtcp).map(|len| &data[..len]),
            None => Ok(data),
        }
    }

    /// A datagram on the RTCP socket (or RTCP on the RTP socket with rtcp-mux).
    pub fn on_rtcp(&mut self, data: &mut [u8], arrival: Instant) -> Received {
        let mut out = Received::default();
        let data = match self.open(data, true) {
            Ok(d) => d,
            Err(why) => {
                out.rejected = Some(why);
                return out;
            }
        };
        self.figures.rtcp_received += 1;
        let now_mid = rtcp::ntp_middle(self.ntp_at(arrival));
        for item in rtcp::parse_compound(data) {
            let Ok(item) = item else { break };
            let reports = match item {
                Rtcp::SenderReport { info, reports, .. } => {
                    if let Some(rx) = self.rx.as_mut() {
                        rx.last_sr = Some((rtcp::ntp_middle(info.ntp), arrival));
                    }
                    reports
                }
                Rtcp::ReceiverReport { reports, .. } => reports,
                _ => continue,
            };
            for b in reports.filter(|b| b.ssrc == self.ssrc) {
                if let Some(rtt) = rtcp::round_trip(now_mid, b.lsr, b.dlsr) {
                    self.figures.rtt = Some(rtt);
                }
            }
        }
        out
    }

    /// Digits received so far (RFC 4733).
    pub fn digits_received(&self) -> &str {
        self.rx.as_ref().map_or("", |r| r.digits.digits())
    }

    /// A packet the socket refused (buffer full).
    pub fn count_send_drop(&mut self) {
        self.figures.send_dropped += 1;
    }

    /// The stream's figures so far.
    pub fn figures(&self) -> StreamFigures {
        let mut f = self.figures;
        f.digits_sent = self.dtmf.sent();
        if let Some(rx) = &self.rx {
            f.lost += rx.stats.lost();
            f.duplicates += rx.stats.duplicates();
            f.out_of_order += rx.stats.out_of_order();
            f.jitter = rx.stats.jitter();
            f.max_gap = f.max_gap.max(rx.stats.max_gap());
            f.digits_received = rx.digits.digits().chars().count() as u64;
        }
        if let Some(p) = &self.srtp {
            let s = p.figures();
            f.srtp = true;
            f.srtp_auth_failures = s.auth_failures;
            f.srtp_replay_failures = s.replay_failures;
            f.plain_rtcp = s.plain_rtcp;
        }
        f
    }
}

/// Xorshift32: identifiers and report spacing need to differ between streams, not
/// to be unpredictable.
fn xorshift(x: &mut u32) -> u32 {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    *x
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// `d` rounded up to whole `slot`s.
fn round_up(d: Duration, slot: Duration) -> Duration {
    if slot.is_zero() {
        return d;
    }
    let n = d.as_nanos().div_ceil(slot.as_nanos());
    slot * n as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::source::AudioClip;

    fn setup(te: Option<u8>) -> StreamSetup {
        StreamSetup {
            payload_type: 0,
            law: Some(Law::Ulaw),
            telephone_event: te,
            ptime: Duration::from_millis(20),
            send: true,
            receive: true,
            remote_rtp: "127.0.0.1:4000".parse().unwrap(),
            remote_rtcp: "127.0.0.1:4001".parse().unwrap(),
            rtcp_mux: false,
        }
    }

    fn clip() -> PlaySpec {
        let samples: Vec<i16> = (0..800).map(|i| ((i % 50) * 100) as i16).collect();
        PlaySpec {
            source: PlaySource::Audio(Arc::new(AudioClip::from_samples(samples))),
            looped: true,
            until: Until::Bye,
        }
    }

    /// Every RTP packet due up to `until`, polled every `step`, with the time it left.
    fn run(
        s: &mut MediaStream,
        t0: Instant,
        until: Duration,
        step: Duration,
    ) -> Vec<(Duration, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut t = Duration::ZERO;
        while t <= until {
            while let Some(tx) = s.poll_transmit(t0 + t, &mut buf) {
                if tx.channel == Channel::Rtp && !rtp::is_rtcp(&buf) {
                    out.push((t, buf.clone()));
                }
            }
            t += step;
        }
        out
    }

    #[test]
    fn audio_is_paced_on_absolute_deadlines() {
        let t0 = Instant::now();
        let mut s = MediaStream::new(7, false, (t0, 0));
        s.configure(setup(Some(101)), t0);
        s.play(&clip(), t0);
        // Polled every 3 ms: each packet leaves at the first poll at or after its
        // deadline, and lateness never accumulates.
        let sent = run(
            &mut s,
            t0,
            Duration::from_millis(1000),
            Duration::from_millis(3),
        );
        assert_eq!(sent.len(), 50);
        let first = Packet::parse(&sent[0].1).unwrap().header;
        assert!(first.marker);
        for (n, (at, bytes)) in sent.iter().enumerate() {
            let p = Packet::parse(bytes).unwrap();
            assert_eq!(p.header.sequence, first.sequence.wrapping_add(n as u16));
            assert_eq!(
                p.header.timestamp,
                first.timestamp.wrapping_add(160 * n as u32)
            );
            assert_eq!(p.payload.len(), 160);
            assert_eq!(p.header.marker, n == 0);
            let due = Duration::from_millis(20 * n as u64);
            assert!(
                *at >= due && *at < due + Duration::from_millis(3),
                "packet {n} at {at:?}"
            );
        }
    }

    #[test]
    fn digits_replace_audio_in_the_same_sequence_space() {
        let t0 = Instant::now();
        let mut s = MediaStream::new(9, false, (t0, 0));
        s.configure(setup(Some(101)), t0);
        s.play(&clip(), t0);
        let timing = DtmfTiming {
            duration: Duration::from_millis(100),
            gap: Duration::from_millis(100),
            volume: 10,
        };
        let done = s.dtmf("12", timing, t0);
        assert!(done >= t0 + Duration::from_millis(400));
        let sent = run(
            &mut s,
            t0,
            Duration::from_millis(600),
            Duration::from_millis(20),
        );
        let mut seq = None;
        let mut events = Vec::new();
        for (_, b) in &sent {
            let p = Packet::parse(b).unwrap();
            if let Some(prev) = seq {
                assert_eq!(p.header.sequence, u16::wrapping_add(prev, 1));
            }
            seq = Some(p.header.sequence);
            if p.header.payload_type == 101 {
                events.push((p.header.timestamp, p.header.marker, p.payload.to_vec()));
            }
        }
        // '1': 5 packets, the last (E bit) three times; then '2' likewise.
        assert_eq!(events.len(), 14, "{events:?}");
        assert!(events[0].1 && !events[1].1);
        assert_eq!(events[0].2[0], 1);
        assert!(
            events[4..7]
                .iter()
                .all(|e| e.2[1] & 0x80 != 0 && e.0 == events[0].0)
        );
        assert_eq!(events[7].2[0], 2);
        assert!(events[7].1);
        assert_ne!(events[7].0, events[0].0);
        assert_eq!(s.figures().digits_sent, 2);
    }

    #[test]
    fn echo_sends_back_with_our_ssrc_and_receive_figures_count() {
        let t0 = Instant::now();
        let mut tx = MediaStream::new(1, false, (t0, 0));
        let mut rx = MediaStream::new(2, true, (t0, 0));
        tx.configure(setup(Some(101)), t0);
        rx.configure(setup(Some(101)), t0);
        tx.play(&clip(), t0);
        let sent = run(
            &mut tx,
            t0,
            Duration::from_millis(200),
            Duration::from_millis(20),
        );
        let mut echo = Vec::new();
        for (i, (at, b)) in sent.iter().enumerate() {
            if i == 3 {
                continue; // lost
            }
            let got = rx.on_rtp(&mut b.clone(), t0 + *at, &mut echo);
            let to = got.echo.unwrap();
            assert_eq!(to, setup(None).remote_rtp);
            let p = Packet::parse(&echo).unwrap();
            assert_eq!(p.header.ssrc, rx.ssrc());
            assert_eq!(p.payload, Packet::parse(b).unwrap().payload);
        }
        let f = rx.figures();
        assert_eq!(f.packets_received, sent.len() as u64 - 1);
        assert_eq!(f.lost, 1);
        assert_eq!(f.jitter, Duration::ZERO);
    }

    #[test]
    fn rtcp_reports_and_a_bye_at_close() {
        let t0 = Instant::now();
        let mut s = MediaStream::new(3, false, (t0, 1 << 32));
        s.configure(setup(None), t0);
        s.silence(t0);
        let mut buf = Vec::new();
        let mut rtcp = 0;
        let mut t = t0;
        while t < t0 + Duration::from_secs(20) {
            while let Some(tx) = s.poll_transmit(t, &mut buf) {
                if tx.channel == Channel::Rtcp {
                    rtcp += 1;
                    assert_eq!(tx.to, setup(None).remote_rtcp);
                    let kinds: Vec<_> = rtcp::parse_compound(&buf).collect();
                    assert!(
                        matches!(kinds[0], Ok(Rtcp::SenderReport { .. })),
                        "{kinds:?}"
                    );
                }
            }
            t += Duration::from_millis(20);
        }
        // One report every 2.5–7.5 s.
        assert!((2..=8).contains(&rtcp), "{rtcp}");
        s.close();
        let tx = s.poll_transmit(t, &mut buf).unwrap();
        assert_eq!(tx.channel, Channel::Rtcp);
        assert!(rtcp::parse_compound(&buf).any(|p| matches!(p, Ok(Rtcp::Bye { .. }))));
        assert!(
            s.poll_transmit(t + Duration::from_secs(10), &mut buf)
                .is_none()
        );
    }
}

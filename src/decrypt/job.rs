//! The decrypt run: one pass over a capture, SIP feeding the key tracker, SRTP/SRTCP
//! packets decrypted with the key bound to their destination, everything written to
//! the output capture in order.
//!
//! Streaming: memory is bounded by the largest record, the fragment and TCP
//! reassembly caps and the number of flows, never by the file size. Keys take effect
//! from the frame of the SIP message that completed the offer/answer; media seen before
//! that (or with no key at all) is copied through unchanged.
//!
//! SIP over UDP is rewritten so that its SDP describes plain RTP (`plain_sdp`); SIP
//! over TCP or in IP fragments is copied as it was.
//!
//! When a destination has had several keys (a re-INVITE re-keyed it), the newest is
//! tried first and older ones after it, so packets still in flight under the old key
//! decrypt too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::capture::{
    CaptureError, CaptureReader, CaptureWriter, L4, Reassembly, SipOverTcp, decode,
    replace_udp_payload,
};
use crate::sip::message;
use crate::srtp::{Context, MasterKey, SrtpError, Suite, looks_like_rtcp};

use super::keys::{Binding, KeyTracker};
use super::plain_sdp::plain_sdp;
use super::streams::{KeySource, Keying, Kind, StreamKey, StreamReport, Streams};

/// A key given on the command line, for one destination or (without) for every flow
/// that has no key from the capture's SIP.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub key: MasterKey,
    pub stream: Option<SocketAddr>,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub keys: Vec<KeySpec>,
    /// Write packets that fail authentication as they were instead of dropping them.
    pub keep_failed: bool,
    /// ROC values tried on a stream's first packet (capture starting mid-call).
    pub roc_trials: Option<u32>,
    pub wav_dir: Option<PathBuf>,
}

/// The run's result: what the summary table and `--json` show.
#[derive(Debug, Serialize)]
pub struct Report {
    pub frames: u64,
    pub sip_messages: u64,
    /// The capture ended inside a record (or was corrupt from some point on).
    pub truncated: bool,
    pub streams: Vec<StreamReport>,
    /// Problems that did not stop the run (unusable keys in SDP, capture damage, …).
    pub warnings: Vec<String>,
}

impl Report {
    /// 0 when every stream with a key decrypted with no authentication failure; 1 when
    /// some packets failed authentication or a keyed stream decrypted nothing.
    pub fn exit_code(&self) -> i32 {
        let bad = self
            .streams
            .iter()
            .any(|s| s.auth_failures > 0 || s.decrypted == 0);
        i32::from(bad)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input is not a capture we can read at all.
    #[error("{0}")]
    Input(CaptureError),
    #[error("writing the output capture: {0}")]
    Output(CaptureError),
    #[error("key for {suite}: {source}")]
    Key {
        suite: &'static str,
        source: SrtpError,
    },
}

/// One cryptographic context for packets sent to one destination with one key.
struct Flow {
    ctx: Context,
    call_id: Option<String>,
    source: KeySource,
    telephone_event: Option<u8>,
    /// RTP and RTCP share the destination (rtcp-mux): tell them apart by payload type.
    mux: bool,
    /// Which kind of packet this destination receives when not muxed.
    kind: Kind,
}

impl Flow {
    fn keying(&self) -> Keying<'_> {
        Keying {
            suite: self.ctx.suite(),
            call_id: self.call_id.as_deref(),
            source: self.source,
        }
    }
}

/// What to do with a UDP frame.
enum Action {
    Copy,
    /// The plain packet is in `Job::plain[..len]`.
    Replace(usize),
    Drop,
}

struct Job {
    opts: Options,
    tracker: KeyTracker,
    flows: Vec<Flow>,
    /// Destination → flows, newest last.
    by_dst: HashMap<SocketAddr, Vec<usize>>,
    /// `--key` without `--stream`: its flow per destination, created on first use.
    any_key: Option<MasterKey>,
    streams: Streams,
    plain: Vec<u8>,
    frames: u64,
    sip_messages: u64,
    warnings: Vec<String>,
}

/// Decrypt `input` into `output` (when given). `Err` only for an unusable input, an
/// output that cannot be written or a bad key; damage inside the capture ends the run
/// early with `truncated` set and what was done so far.
pub fn run<R: Read, W: Write>(
    input: R,
    output: Option<W>,
    opts: Options,
) -> Result<Report, JobError> {
    let mut reader = CaptureReader::new(input).map_err(JobError::Input)?;
    let mut writer = match output {
        Some(w) => Some(CaptureWriter::new(w, &reader).map_err(JobError::Output)?),
        None => None,
    };
    let mut job = Job::new(opts)?;
    let mut reassembly = Reassembly::new(64 << 20, 30_000_000_000);
    let mut sip_out: Vec<SipOverTcp> = Vec::new();
    let mut rewritten = Vec::with_capacity(2048);
    let mut truncated = false;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                truncated = true;
                job.warnings.push(e.to_string());
                break;
            }
        };
        job.frames += 1;
        let mut action = Action::Copy;
        if let Ok(packet) = decode(frame.linktype, frame.data) {
            match packet.l4 {
                L4::Udp {
                    src_port,
                    dst_port,
                    payload,
                    ..
                } => {
                    let src = SocketAddr::new(packet.src, src_port);
                    let dst = SocketAddr::new(packet.dst, dst_port);
                    action = job.on_udp(frame.index, src, dst, payload);
                    if let Action::Replace(len) = action
                        && replace_udp_payload(
                            frame.data,
                            &packet,
                            &job.plain[..len],
                            &mut rewritten,
                        )
                        .is_err()
                    {
                        action = Action::Copy;
                    }
                }
                _ => {
                    if let Some(d) = reassembly.push(&frame, &packet, &mut sip_out) {
                        // The datagram's pieces are already written: a reassembled
                        // SRTP packet is decrypted for the figures but its fragments
                        // go out as they were.
                        let _ = job.on_udp(frame.index, d.src, d.dst, &d.payload);
                    }
                }
            }
        }
        for m in sip_out.drain(..) {
            if let Ok(msg) = message::parse(&m.message) {
                job.on_sip(frame.index, &msg);
            }
        }
        if let Some(w) = writer.as_mut() {
            let written = match action {
                Action::Copy => w.write_frame(&frame, frame.data),
                Action::Replace(_) => w.write_frame(&frame, &rewritten),
                Action::Drop => Ok(()),
            };
            written.map_err(JobError::Output)?;
        }
    }
    if let Some(w) = writer {
        w.finish().map_err(JobError::Output)?;
    }
    Ok(job.finish(truncated))
}

impl Job {
    fn new(opts: Options) -> Result<Job, JobError> {
        let mut job = Job {
            tracker: KeyTracker::new(),
            flows: Vec::new(),
            by_dst: HashMap::new(),
            any_key: None,
            streams: Streams::default(),
            plain: Vec::with_capacity(2048),
            frames: 0,
            sip_messages: 0,
            warnings: Vec::new(),
            opts: Options::default(),
        };
        for spec in &opts.keys {
            match spec.stream {
                Some(dst) => {
                    // RTP and RTCP to the same address: rtcp-mux, told apart per packet.
                    job.add_flow(dst, &spec.key, None, KeySource::Cli, None, true, Kind::Rtp)?;
                }
                None => {
                    Context::new(&spec.key).map_err(|source| JobError::Key {
                        suite: spec.key.suite.sdes_name(),
                        source,
                    })?;
                    job.any_key = Some(spec.key.clone());
                }
            }
        }
        job.opts = opts;
        Ok(job)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_flow(
        &mut self,
        dst: SocketAddr,
        key: &MasterKey,
        call_id: Option<&str>,
        source: KeySource,
        telephone_event: Option<u8>,
        mux: bool,
        kind: Kind,
    ) -> Result<usize, JobError> {
        let mut ctx = Context::new(key).map_err(|source| JobError::Key {
            suite: key.suite.sdes_name(),
            source,
        })?;
        if let Some(n) = self.opts.roc_trials {
            ctx.set_roc_trials(n);
        }
        let i = self.flows.len();
        self.flows.push(Flow {
            ctx,
            call_id: call_id.map(str::to_owned),
            source,
            telephone_event,
            mux,
            kind,
        });
        self.by_dst.entry(dst).or_default().push(i);
        Ok(i)
    }

    fn on_binding(&mut self, b: &Binding) {
        let mux = b.rtp_dst == b.rtcp_dst;
        let added = self
            .add_flow(
                b.rtp_dst,
                &b.key,
                Some(&b.call_id),
                KeySource::Sdp,
                b.telephone_event,
                mux,
                Kind::Rtp,
            )
            .and_then(|_| {
                if mux {
                    return Ok(0);
                }
                self.add_flow(
                    b.rtcp_dst,
                    &b.key,
                    Some(&b.call_id),
                    KeySource::Sdp,
                    None,
                    false,
                    Kind::Rtcp,
                )
            });
        if let Err(e) = added {
            self.warnings
                .push(format!("Call-ID {}: unusable key: {e}", b.call_id));
        }
    }

    fn on_sip(&mut self, frame: u64, msg: &message::Message<'_>) {
        self.sip_messages += 1;
        for b in self.tracker.on_sip(frame, msg) {
            self.on_binding(&b);
        }
        self.warnings.extend(self.tracker.take_warnings());
    }

    fn on_udp(&mut self, frame: u64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Action {
        let Some(&first) = payload.first() else {
            return Action::Copy;
        };
        if first.is_ascii_alphabetic() {
            // SIP over UDP (RTP's first byte is 0x80–0xBF, STUN's 0x00/0x01).
            match message::parse(payload) {
                Ok(msg) if msg.call_id().is_some() => self.on_sip(frame, &msg),
                _ => return Action::Copy,
            }
            // The output's SDP must describe what the output carries: plain RTP.
            return match plain_sdp(payload) {
                Some(plain) => {
                    self.plain = plain;
                    Action::Replace(self.plain.len())
                }
                None => Action::Copy,
            };
        }
        if first >> 6 != 2 || payload.len() < 12 {
            return Action::Copy;
        }
        if !self.by_dst.contains_key(&dst) {
            let Some(key) = self.any_key.clone() else {
                return Action::Copy;
            };
            if self
                .add_flow(dst, &key, None, KeySource::Cli, None, true, Kind::Rtp)
                .is_err()
            {
                return Action::Copy;
            }
        }
        self.decrypt(src, dst, payload)
    }

    /// Try each candidate flow (newest first) until one authenticates the packet.
    fn decrypt(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Action {
        // The flows for `dst`, newest first (no copy of the list: this runs per packet).
        let flow_count = self.by_dst.get(&dst).map_or(0, Vec::len);
        let nth_newest = |by_dst: &HashMap<SocketAddr, Vec<usize>>, n: usize| {
            by_dst
                .get(&dst)
                .and_then(|l| l.get(l.len().checked_sub(n + 1)?))
                .copied()
        };
        let Some(newest_index) = nth_newest(&self.by_dst, 0) else {
            return Action::Copy;
        };
        let newest = &self.flows[newest_index];
        let kind = if newest.mux {
            if looks_like_rtcp(payload) {
                Kind::Rtcp
            } else {
                Kind::Rtp
            }
        } else {
            newest.kind
        };
        let ssrc_at = if kind == Kind::Rtp { 8 } else { 4 };
        let Some(ssrc) = payload
            .get(ssrc_at..ssrc_at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return Action::Copy;
        };
        let mut replayed = false;
        let mut outcome = None;
        for n in 0..flow_count {
            let Some(fi) = nth_newest(&self.by_dst, n) else {
                break;
            };
            let flow = &mut self.flows[fi];
            self.plain.clear();
            self.plain.extend_from_slice(payload);
            let result = match kind {
                Kind::Rtp => flow.ctx.unprotect_rtp(&mut self.plain),
                Kind::Rtcp => flow.ctx.unprotect_rtcp(&mut self.plain),
            };
            match result {
                Ok(u) => {
                    outcome = Some((fi, u));
                    break;
                }
                Err(SrtpError::Replay) => replayed = true,
                Err(_) => {}
            }
        }
        let key = StreamKey {
            src,
            dst,
            kind,
            ssrc,
        };
        match outcome {
            Some((fi, u)) => {
                let flow = &self.flows[fi];
                let telephone_event = flow.telephone_event;
                let stream = self.streams.get(key, flow.keying());
                self.streams.report_mut(stream).packets += 1;
                self.streams.decrypted(
                    stream,
                    u.roc,
                    &self.plain[..u.len],
                    telephone_event,
                    self.opts.wav_dir.as_deref(),
                );
                Action::Replace(u.len)
            }
            None => {
                let stream = self.streams.get(key, self.flows[newest_index].keying());
                let r = self.streams.report_mut(stream);
                r.packets += 1;
                if replayed {
                    r.replayed += 1;
                } else {
                    r.auth_failures += 1;
                }
                if self.opts.keep_failed {
                    Action::Copy
                } else {
                    Action::Drop
                }
            }
        }
    }

    fn finish(self, truncated: bool) -> Report {
        let (streams, mut warnings) = self.streams.finish();
        let mut all = self.warnings;
        all.append(&mut warnings);
        Report {
            frames: self.frames,
            sip_messages: self.sip_messages,
            truncated,
            streams,
            warnings: all,
        }
    }
}

/// Suites named in help texts and errors.
pub fn suite_names() -> String {
    Suite::ALL
        .iter()
        .map(|s| s.sdes_name())
        .collect::<Vec<_>>()
        .join(", ")
}

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
//! decrypt too: one `srtp::KeyRing` per destination, which keeps them all.
//!
//! RTCP that no key opens but that is plain RTCP (its lengths cover the datagram) is
//! counted apart and copied through: endpoints such as baresip send one before their SRTP
//! is keyed, and it is neither authentic nor forged.

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
use crate::srtp::{Context, KeyRing, MasterKey, SrtpError, Suite, is_plain_rtcp, looks_like_rtcp};

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
    /// some packets failed authentication or a keyed stream decrypted nothing. Plain RTCP
    /// is neither: a stream of nothing else had nothing to decrypt.
    pub fn exit_code(&self) -> i32 {
        let bad = self
            .streams
            .iter()
            .any(|s| s.auth_failures > 0 || (s.decrypted == 0 && s.packets > s.plain_rtcp));
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

/// What the signalling said about one key of a destination (the tag of its ring entry).
struct Flow {
    suite: Suite,
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
            suite: self.suite,
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
    /// Indexed by the tags of the rings.
    flows: Vec<Flow>,
    /// Destination → its keys, newest last, each tagged with its flow.
    by_dst: HashMap<SocketAddr, KeyRing<usize>>,
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
            opts,
        };
        // Set first: `add_flow` applies its ROC trials to these keys too.
        for spec in job.opts.keys.clone() {
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
                    job.any_key = Some(spec.key);
                }
            }
        }
        Ok(job)
    }

    /// Make `key` the newest of `dst`. The same key as the newest again keeps its context
    /// (ROC and replay state go on) and takes the new flow details.
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
    ) -> Result<(), JobError> {
        let flow = Flow {
            suite: key.suite,
            call_id: call_id.map(str::to_owned),
            source,
            telephone_event,
            mux,
            kind,
        };
        let ring = self
            .by_dst
            .entry(dst)
            .or_insert_with(|| KeyRing::new(usize::MAX));
        let i = self.flows.len();
        let added = ring.push(key, i).map_err(|source| JobError::Key {
            suite: key.suite.sdes_name(),
            source,
        });
        match added {
            Ok(true) => {
                if let (Some(n), Some(ctx)) = (self.opts.roc_trials, ring.contexts_mut().next()) {
                    ctx.set_roc_trials(n);
                }
                self.flows.push(flow);
            }
            Ok(false) => {
                if let Some((_, &j)) = ring.newest() {
                    self.flows[j] = flow;
                }
            }
            Err(e) => {
                // No empty ring left behind: the destination stays unkeyed.
                if ring.is_empty() {
                    self.by_dst.remove(&dst);
                }
                return Err(e);
            }
        }
        Ok(())
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
            .and_then(|()| {
                if mux {
                    return Ok(());
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

    /// Open the packet with the keys of `dst`, newest first.
    fn decrypt(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Action {
        let Some(ring) = self.by_dst.get_mut(&dst) else {
            return Action::Copy;
        };
        let Some((_, &newest)) = ring.newest() else {
            return Action::Copy;
        };
        let flow = &self.flows[newest];
        let kind = if flow.mux {
            if looks_like_rtcp(payload) {
                Kind::Rtcp
            } else {
                Kind::Rtp
            }
        } else {
            flow.kind
        };
        let ssrc_at = if kind == Kind::Rtp { 8 } else { 4 };
        let Some(ssrc) = payload
            .get(ssrc_at..ssrc_at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return Action::Copy;
        };
        let key = StreamKey {
            src,
            dst,
            kind,
            ssrc,
        };
        // One copy for all the keys: a key that fails leaves the bytes as they were.
        self.plain.clear();
        self.plain.extend_from_slice(payload);
        let opened = match kind {
            Kind::Rtp => ring.unprotect_rtp(&mut self.plain),
            Kind::Rtcp => ring.unprotect_rtcp(&mut self.plain),
        }
        .map(|o| (*o.meta, o.unprotected));
        match opened {
            Ok((fi, u)) => {
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
            Err(e) => {
                let stream = self.streams.get(key, self.flows[newest].keying());
                let r = self.streams.report_mut(stream);
                r.packets += 1;
                // Checked only after every key failed, so SRTCP is never taken for it.
                if kind == Kind::Rtcp && is_plain_rtcp(payload) {
                    r.plain_rtcp += 1;
                    return Action::Copy;
                }
                if e == SrtpError::Replay {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::{ether, ethertype_of, pcap, read_all, sa, udp_packet};
    use crate::capture::{LINKTYPE_ETHERNET, decode};

    // key||salt (30 bytes) for AES_CM_128_HMAC_SHA1_80.
    const K_A: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    const K_B: &str = "QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5";
    const K_C: &str = "MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm";

    const A_RTP: &str = "10.0.0.1:4000";
    const A_RTCP: &str = "10.0.0.1:4001";
    const B_RTP: &str = "10.0.0.2:5000";
    const B_RTCP: &str = "10.0.0.2:5001";
    const SSRC_A: u32 = 0xaaaa_0001;
    const SSRC_B: u32 = 0xbbbb_0002;

    fn key(b64: &str) -> MasterKey {
        let raw = crate::sdp::crypto::decode_base64(b64).unwrap();
        MasterKey::from_key_salt(Suite::AesCm128HmacSha1_80, &raw).unwrap()
    }

    fn tx(b64: &str) -> Context {
        Context::new(&key(b64)).unwrap()
    }

    fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
        p
    }

    /// RR without report blocks + SDES CNAME "a@x".
    fn rtcp(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 201, 0, 1];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0x81, 202, 0, 3]);
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[1, 3, b'a', b'@', b'x', 0, 0, 0]);
        p
    }

    /// What baresip sends in clear when a stream starts: APP "PING" with data "PONG".
    fn baresip_app(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 204, 0, 3];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(b"PINGPONG");
        p
    }

    fn protect_rtp(ctx: &mut Context, plain: &[u8]) -> Vec<u8> {
        let mut p = plain.to_vec();
        ctx.protect_rtp(&mut p).unwrap();
        p
    }

    fn protect_rtcp(ctx: &mut Context, plain: &[u8]) -> Vec<u8> {
        let mut p = plain.to_vec();
        ctx.protect_rtcp(&mut p).unwrap();
        p
    }

    fn sdp(ip: &str, port: u16, k: &str, mux: bool) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n{}",
            if mux { "a=rtcp-mux\r\n" } else { "" }
        )
    }

    fn sip(start: &str, cseq: &str, body: &str) -> Vec<u8> {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{cseq_n}\r\n\
             From: <sip:a@x>;tag=a1\r\nTo: <sip:b@y>;tag=b1\r\nCall-ID: job-test@x\r\n\
             CSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len(),
            cseq_n = cseq.split(' ').next().unwrap_or("0"),
        )
        .into_bytes()
    }

    /// A capture being written: UDP datagrams over Ethernet, 1 ms apart.
    #[derive(Default)]
    struct Cap {
        frames: Vec<Vec<u8>>,
    }

    impl Cap {
        fn udp(&mut self, src: &str, dst: &str, payload: &[u8]) {
            let ip = udp_packet(src, dst, payload);
            self.frames.push(ether(&[], ethertype_of(&ip), &ip));
        }

        /// Offer from A (key `ka`) in INVITE `seq`, answer from B (key `kb`) in its 200.
        fn offer_answer(&mut self, seq: u32, ka: &str, kb: &str, mux: bool) {
            let (sa_, sb) = ("10.0.0.1:5060", "10.0.0.2:5060");
            let invite = sip(
                "INVITE sip:b@y SIP/2.0",
                &format!("{seq} INVITE"),
                &sdp("10.0.0.1", 4000, ka, mux),
            );
            self.udp(sa_, sb, &invite);
            let ok = sip(
                "SIP/2.0 200 OK",
                &format!("{seq} INVITE"),
                &sdp("10.0.0.2", 5000, kb, mux),
            );
            self.udp(sb, sa_, &ok);
        }

        /// Decrypt; the report and every UDP datagram of the output (src, dst, payload).
        fn run(&self, opts: Options) -> (Report, Vec<(SocketAddr, SocketAddr, Vec<u8>)>) {
            let frames: Vec<(u64, &[u8])> = self
                .frames
                .iter()
                .enumerate()
                .map(|(i, f)| (1_700_000_000_000_000_000 + i as u64 * 1_000_000, &f[..]))
                .collect();
            let input = pcap(false, false, LINKTYPE_ETHERNET, &frames);
            let mut out = Vec::new();
            let report = run(&input[..], Some(&mut out), opts).unwrap();
            let datagrams = read_all(&out)
                .1
                .iter()
                .filter_map(|f| {
                    let p = decode(f.3, &f.4).ok()?;
                    let L4::Udp {
                        src_port,
                        dst_port,
                        payload,
                        ..
                    } = p.l4
                    else {
                        return None;
                    };
                    Some((
                        SocketAddr::new(p.src, src_port),
                        SocketAddr::new(p.dst, dst_port),
                        payload.to_vec(),
                    ))
                })
                .collect();
            (report, datagrams)
        }
    }

    fn stream<'a>(r: &'a Report, src: &str, kind: Kind, ssrc: u32) -> &'a StreamReport {
        r.streams
            .iter()
            .find(|s| s.src == src && s.kind == kind && s.ssrc == ssrc)
            .unwrap_or_else(|| panic!("no {kind:?} stream {ssrc:08x} from {src}: {r:#?}"))
    }

    fn sent(out: &[(SocketAddr, SocketAddr, Vec<u8>)], src: &str, dst: &str) -> Vec<Vec<u8>> {
        out.iter()
            .filter(|(s, d, _)| *s == sa(src) && *d == sa(dst))
            .map(|(_, _, p)| p.clone())
            .collect()
    }

    /// A baresip-like call: each side sends its plain APP before its SRTP, then RTP and
    /// (A only) SRTCP. The APP packets are counted as plain RTCP and copied; nothing fails.
    fn baresip_call(
        mux: bool,
        forged_srtcp: bool,
    ) -> (Report, Vec<(SocketAddr, SocketAddr, Vec<u8>)>) {
        let (a_rtcp, b_rtcp) = if mux {
            (A_RTP, B_RTP)
        } else {
            (A_RTCP, B_RTCP)
        };
        let mut cap = Cap::default();
        cap.offer_answer(1, K_A, K_B, mux);
        let (mut ta, mut tb) = (tx(K_A), tx(K_B));
        cap.udp(a_rtcp, b_rtcp, &baresip_app(SSRC_A));
        cap.udp(b_rtcp, a_rtcp, &baresip_app(SSRC_B));
        for seq in 1..=5 {
            cap.udp(A_RTP, B_RTP, &protect_rtp(&mut ta, &rtp(SSRC_A, seq)));
            cap.udp(B_RTP, A_RTP, &protect_rtp(&mut tb, &rtp(SSRC_B, seq)));
        }
        cap.udp(a_rtcp, b_rtcp, &protect_rtcp(&mut ta, &rtcp(SSRC_A)));
        if forged_srtcp {
            let mut forged = protect_rtcp(&mut ta, &rtcp(SSRC_A));
            *forged.last_mut().unwrap() ^= 1;
            cap.udp(a_rtcp, b_rtcp, &forged);
        }
        cap.run(Options::default())
    }

    #[test]
    fn plain_rtcp_before_srtp_is_counted_and_copied_not_failed() {
        for mux in [false, true] {
            let (r, out) = baresip_call(mux, false);
            let (a_rtcp, b_rtcp) = if mux {
                (A_RTP, B_RTP)
            } else {
                (A_RTCP, B_RTCP)
            };
            assert_eq!(r.exit_code(), 0, "mux {mux}: {r:#?}");
            for s in &r.streams {
                assert_eq!((s.auth_failures, s.replayed), (0, 0), "mux {mux}: {s:#?}");
            }
            let a = stream(&r, a_rtcp, Kind::Rtcp, SSRC_A);
            assert_eq!((a.packets, a.decrypted, a.plain_rtcp), (2, 1, 1), "{a:#?}");
            // B sent no SRTCP: its RTCP stream had nothing to decrypt, which is no failure.
            let b = stream(&r, b_rtcp, Kind::Rtcp, SSRC_B);
            assert_eq!((b.packets, b.decrypted, b.plain_rtcp), (1, 0, 1), "{b:#?}");
            let rtp_a = stream(&r, A_RTP, Kind::Rtp, SSRC_A);
            assert_eq!((rtp_a.decrypted, rtp_a.plain_rtcp), (5, 0));

            // Output: the APP packets as they were, then the plain RTP and RTCP.
            let mut want = vec![baresip_app(SSRC_A)];
            if mux {
                want.extend((1..=5).map(|seq| rtp(SSRC_A, seq)));
            }
            want.push(rtcp(SSRC_A));
            assert_eq!(sent(&out, a_rtcp, b_rtcp), want, "mux {mux}");
            let want_b = if mux {
                let mut w = vec![baresip_app(SSRC_B)];
                w.extend((1..=5).map(|seq| rtp(SSRC_B, seq)));
                w
            } else {
                vec![baresip_app(SSRC_B)]
            };
            assert_eq!(sent(&out, b_rtcp, a_rtcp), want_b, "mux {mux}");
        }
    }

    #[test]
    fn forged_srtcp_is_still_an_auth_failure() {
        for mux in [false, true] {
            let (r, out) = baresip_call(mux, true);
            let a_rtcp = if mux { A_RTP } else { A_RTCP };
            let b_rtcp = if mux { B_RTP } else { B_RTCP };
            let a = stream(&r, a_rtcp, Kind::Rtcp, SSRC_A);
            assert_eq!(
                (a.packets, a.decrypted, a.plain_rtcp, a.auth_failures),
                (3, 1, 1, 1),
                "mux {mux}: {a:#?}"
            );
            assert_eq!(r.exit_code(), 1);
            // Dropped, not copied as if it were plain.
            let rtcp_out: Vec<_> = sent(&out, a_rtcp, b_rtcp)
                .into_iter()
                .filter(|p| looks_like_rtcp(p))
                .collect();
            assert_eq!(rtcp_out, vec![baresip_app(SSRC_A), rtcp(SSRC_A)]);
        }
    }

    /// SRTCP is tried with the keys before the plain check, and no SRTCP packet passes
    /// that check: its trailer is outside the RTCP lengths.
    #[test]
    fn srtcp_is_never_plain() {
        for suite in Suite::ALL {
            let n = suite.master_key_len() + suite.master_salt_len();
            let k = MasterKey::from_key_salt(suite, &vec![7; n]).unwrap();
            let mut ctx = Context::new(&k).unwrap();
            for plain in [rtcp(SSRC_A), baresip_app(SSRC_A)] {
                assert!(is_plain_rtcp(&plain));
                assert!(!is_plain_rtcp(&protect_rtcp(&mut ctx, &plain)), "{suite}");
            }
        }
    }

    /// After a re-INVITE re-keys B's address, A's packets still in flight under the old
    /// key decrypt (with the old key, tried after the new one), interleaved with new ones;
    /// a copy of an old-key packet is a replay, not a failure.
    #[test]
    fn old_key_packets_after_a_reinvite_still_decrypt() {
        let mut cap = Cap::default();
        cap.offer_answer(1, K_A, K_B, false);
        let (mut old, mut new) = (tx(K_A), tx(K_C));
        let mut sent_plain = Vec::new();
        let mut send = |cap: &mut Cap, ctx: &mut Context, seq: u16| {
            let p = protect_rtp(ctx, &rtp(SSRC_A, seq));
            cap.udp(A_RTP, B_RTP, &p);
            sent_plain.push(rtp(SSRC_A, seq));
            p
        };
        for seq in 1..=3 {
            send(&mut cap, &mut old, seq);
        }
        cap.udp(A_RTCP, B_RTCP, &protect_rtcp(&mut old, &rtcp(SSRC_A)));
        cap.offer_answer(2, K_C, K_B, false);
        let late = send(&mut cap, &mut old, 4);
        send(&mut cap, &mut new, 5);
        send(&mut cap, &mut old, 6);
        send(&mut cap, &mut new, 7);
        cap.udp(A_RTCP, B_RTCP, &protect_rtcp(&mut old, &rtcp(SSRC_A)));
        cap.udp(A_RTCP, B_RTCP, &protect_rtcp(&mut new, &rtcp(SSRC_A)));
        cap.udp(A_RTP, B_RTP, &late);
        let (r, out) = cap.run(Options::default());

        let s = stream(&r, A_RTP, Kind::Rtp, SSRC_A);
        assert_eq!(
            (s.packets, s.decrypted, s.replayed, s.auth_failures),
            (8, 7, 1, 0),
            "{s:#?}"
        );
        let c = stream(&r, A_RTCP, Kind::Rtcp, SSRC_A);
        assert_eq!((c.packets, c.decrypted, c.auth_failures), (3, 3, 0));
        assert_eq!(r.exit_code(), 0);
        assert_eq!(sent(&out, A_RTP, B_RTP), sent_plain);
    }

    /// A re-INVITE that keeps the key but turns rtcp-mux on: the key's state goes on and
    /// RTCP to the RTP port is now told apart from RTP.
    #[test]
    fn same_key_again_takes_the_new_flow_details() {
        let mut cap = Cap::default();
        cap.offer_answer(1, K_A, K_B, false);
        let mut ta = tx(K_A);
        for seq in 1..=2 {
            cap.udp(A_RTP, B_RTP, &protect_rtp(&mut ta, &rtp(SSRC_A, seq)));
        }
        cap.offer_answer(2, K_A, K_B, true);
        let replay = protect_rtp(&mut ta, &rtp(SSRC_A, 3));
        cap.udp(A_RTP, B_RTP, &replay);
        cap.udp(A_RTP, B_RTP, &protect_rtcp(&mut ta, &rtcp(SSRC_A)));
        cap.udp(A_RTP, B_RTP, &replay);
        let (r, _) = cap.run(Options::default());
        let s = stream(&r, A_RTP, Kind::Rtp, SSRC_A);
        // The replay is caught: the context that saw seq 3 was kept, not started afresh.
        assert_eq!((s.decrypted, s.replayed, s.auth_failures), (3, 1, 0));
        let c = stream(&r, A_RTP, Kind::Rtcp, SSRC_A);
        assert_eq!((c.decrypted, c.auth_failures), (1, 0));
        assert_eq!(r.exit_code(), 0);
    }

    /// `--roc-trials` reaches keys given with `--stream` too: a stream first seen at ROC 1
    /// is found with the default, not with 0 trials.
    #[test]
    fn roc_trials_apply_to_command_line_keys() {
        let mut ta = tx(K_A);
        ta.set_roc(SSRC_A, 1);
        let mut cap = Cap::default();
        for seq in 100..103 {
            cap.udp(A_RTP, B_RTP, &protect_rtp(&mut ta, &rtp(SSRC_A, seq)));
        }
        for (trials, decrypted) in [(None, 3), (Some(0), 0)] {
            let opts = Options {
                keys: vec![KeySpec {
                    key: key(K_A),
                    stream: Some(sa(B_RTP)),
                }],
                roc_trials: trials,
                ..Options::default()
            };
            let (r, _) = cap.run(opts);
            let s = stream(&r, A_RTP, Kind::Rtp, SSRC_A);
            assert_eq!(s.decrypted, decrypted, "{trials:?}: {s:#?}");
        }
    }
}

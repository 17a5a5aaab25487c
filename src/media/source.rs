//! What a stream plays: a WAV file decoded once to 8 kHz mono and pre-encoded per
//! G.711 law (shared by every call through an `Arc`), or the RTP payloads of one
//! stream in a pcap with their original timing.
//!
//! ## WAV
//!
//! The RIFF chunks are walked here first (bounded by the bytes, no panics), so that
//! every refusal names what the file is and what would be accepted, and so that G.711
//! WAV files (format tags 6 and 7, which `hound` does not read) are decoded at all.
//! Integer PCM and IEEE float go through `hound`. Everything is then mixed down to
//! mono, resampled to 8 kHz and rounded to 16 bits once, at load: calls only copy.
//!
//! Resampling is a windowed sinc (Kaiser window, 16 zero crossings each side, cutoff
//! at 90 % of the lower Nyquist frequency) evaluated from an interpolated table. When
//! downsampling the kernel is stretched, which makes it the low-pass filter that keeps
//! content above 4 kHz from folding back into the telephone band.
//!
//! ## pcap
//!
//! The capture is read twice through [`crate::capture`]: the first pass finds the RTP
//! flows (SSRC + destination) and picks one, the second keeps that flow's payloads.
//! Two passes keep memory to one stream's payloads whatever else the capture holds.

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::g711::Law;
use crate::capture::{CaptureError, CaptureReader, L4, decode};

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a WAV file we can play (format, bits, corrupt); `why` says what to do.
    #[error("{path}: {why}")]
    Wav { path: PathBuf, why: String },
    #[error("{path}: {why}")]
    Pcap { path: PathBuf, why: String },
}

/// The sample rate everything is converted to (G.711's).
const RATE: u32 = 8000;
/// Input rates accepted. Below 4 kHz there is no speech band left, and bounding the
/// ratio bounds the output's size by a small multiple of the file's.
const MIN_RATE: u32 = 4000;
const MAX_RATE: u32 = 768_000;
/// What the error messages say is accepted.
const ACCEPTED: &str = "accepted: PCM WAV with 8-, 16-, 24- or 32-bit integer or 32-bit float \
     samples, or G.711 µ-law/A-law WAV, mono or more channels, 4 kHz to 768 kHz \
     (convert with e.g. `sox IN -r 8000 -c 1 -b 16 OUT.wav`)";

const TAG_PCM: u16 = 1;
const TAG_FLOAT: u16 = 3;
const TAG_ALAW: u16 = 6;
const TAG_ULAW: u16 = 7;
const TAG_EXTENSIBLE: u16 = 0xfffe;

/// Audio at 8 kHz mono, with both G.711 encodings ready.
#[derive(Debug)]
pub struct AudioClip {
    samples: Vec<i16>,
    ulaw: Vec<u8>,
    alaw: Vec<u8>,
}

impl AudioClip {
    /// 16-bit PCM (any rate, any channel count: mixed down and resampled to 8 kHz),
    /// 8-bit PCM, IEEE float, or G.711 µ-law/A-law WAV.
    pub fn from_wav_file(path: &Path) -> Result<AudioClip, SourceError> {
        let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        AudioClip::from_wav_bytes(&bytes, path)
    }

    /// The same from bytes in memory (`name` for messages).
    pub fn from_wav_bytes(bytes: &[u8], name: &Path) -> Result<AudioClip, SourceError> {
        let mono = read_wav(bytes).map_err(|why| SourceError::Wav {
            path: name.to_path_buf(),
            why,
        })?;
        Ok(AudioClip::from_samples(mono))
    }

    /// Samples already at 8 kHz mono.
    pub fn from_samples(samples: Vec<i16>) -> AudioClip {
        let mut ulaw = Vec::with_capacity(samples.len());
        let mut alaw = Vec::with_capacity(samples.len());
        Law::Ulaw.encode(&samples, &mut ulaw);
        Law::Alaw.encode(&samples, &mut alaw);
        AudioClip {
            samples,
            ulaw,
            alaw,
        }
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// The clip encoded with `law`, one byte per sample.
    pub fn encoded(&self, law: Law) -> &[u8] {
        match law {
            Law::Ulaw => &self.ulaw,
            Law::Alaw => &self.alaw,
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.samples.len() as u64 * 1_000_000_000 / u64::from(RATE))
    }
}

// ---------------------------------------------------------------------------------
// WAV reading.

/// What the `fmt ` chunk says (the real format tag when the file is EXTENSIBLE).
#[derive(Clone, Copy, Debug)]
struct Format {
    tag: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn tag_name(tag: u16) -> String {
    let name = match tag {
        2 => "Microsoft ADPCM",
        0x11 => "IMA ADPCM",
        0x22 => "TrueSpeech",
        0x31 => "GSM 6.10",
        0x40 | 0x64 => "G.721 ADPCM",
        0x50 => "MPEG",
        0x55 => "MP3",
        0xff => "AAC",
        _ => return format!("format tag {tag}"),
    };
    format!("format tag {tag} ({name})")
}

/// Walk the RIFF chunks: the format and where the sample bytes are.
fn scan(bytes: &[u8]) -> Result<(Format, &[u8]), String> {
    if bytes.is_empty() {
        return Err(format!("the file is empty; {ACCEPTED}"));
    }
    match bytes.get(0..4) {
        Some(b"RIFF") if bytes.get(8..12) == Some(b"WAVE") => {}
        Some(b"RF64") => return Err(format!("RF64 (WAV over 4 GB) is not supported; {ACCEPTED}")),
        Some(b"RIFX") => return Err(format!("big-endian RIFX is not supported; {ACCEPTED}")),
        _ => return Err(format!("not a WAV file (no RIFF/WAVE header); {ACCEPTED}")),
    }
    let mut format = None;
    let mut pos = 12usize;
    loop {
        // `pos` may be past the end (a chunk size running off the file): `get` is
        // then `None`, and the additions cannot overflow since `pos` saturates below.
        let header = pos.checked_add(8).and_then(|end| bytes.get(pos..end));
        let (Some(id), Some(size)) = (
            header.and_then(|h| h.get(..4)),
            header.and_then(|h| le32(h, 4)),
        ) else {
            return Err(format!(
                "no data chunk: the file is cut short or holds no audio; {ACCEPTED}"
            ));
        };
        let body_start = pos + 8;
        let body_end = body_start.saturating_add(size as usize);
        match id {
            b"fmt " => {
                let body = bytes.get(body_start..body_end).ok_or_else(|| {
                    format!("the fmt chunk is cut short: the file is truncated; {ACCEPTED}")
                })?;
                format = Some(parse_fmt(body)?);
            }
            b"data" => {
                let Some(format) = format else {
                    return Err(format!(
                        "the data chunk comes before any fmt chunk: corrupt file; {ACCEPTED}"
                    ));
                };
                let Some(data) = bytes.get(body_start..body_end) else {
                    return Err(format!(
                        "truncated: the data chunk announces {size} bytes but {} follow",
                        bytes.len().saturating_sub(body_start)
                    ));
                };
                return Ok((format, data));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body_end.saturating_add(usize::from(size % 2 == 1));
    }
}

fn parse_fmt(body: &[u8]) -> Result<Format, String> {
    let field = |v: Option<u16>| v.ok_or_else(|| format!("the fmt chunk is too short; {ACCEPTED}"));
    let mut tag = field(le16(body, 0))?;
    let channels = field(le16(body, 2))?;
    let rate = le32(body, 4).ok_or_else(|| format!("the fmt chunk is too short; {ACCEPTED}"))?;
    let block_align = field(le16(body, 12))?;
    let bits = field(le16(body, 14))?;
    if tag == TAG_EXTENSIBLE {
        // WAVEFORMATEXTENSIBLE: the sub-format GUID's first two bytes are the tag.
        tag = le16(body, 24).ok_or_else(|| {
            format!("the extensible fmt chunk is too short (corrupt file); {ACCEPTED}")
        })?;
    }
    Ok(Format {
        tag,
        channels,
        rate,
        block_align,
        bits,
    })
}

/// The file as mono 8 kHz samples, or why not.
fn read_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let (f, data) = scan(bytes)?;
    if !matches!(f.tag, TAG_PCM | TAG_FLOAT | TAG_ULAW | TAG_ALAW) {
        return Err(format!("{} is not supported; {ACCEPTED}", tag_name(f.tag)));
    }
    if f.channels == 0 {
        return Err(format!(
            "the file declares 0 channels (corrupt); {ACCEPTED}"
        ));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&f.rate) {
        return Err(format!(
            "sample rate {} Hz is not supported; {ACCEPTED}",
            f.rate
        ));
    }
    let mono = match f.tag {
        TAG_PCM | TAG_FLOAT => mono_from_hound(data, f)?,
        _ => mono_from_g711(data, f)?,
    };
    if mono.is_empty() {
        return Err(format!(
            "the file holds no audio (empty data chunk); {ACCEPTED}"
        ));
    }
    Ok(to_i16(&resample(&mono, f.rate)))
}

fn mono_from_g711(data: &[u8], f: Format) -> Result<Vec<f32>, String> {
    if f.bits != 8 || f.block_align != f.channels {
        return Err(format!(
            "G.711 WAV with {} bits per sample and block align {} for {} channels: \
             expected 8 bits, one byte per channel (corrupt file); {ACCEPTED}",
            f.bits, f.block_align, f.channels
        ));
    }
    let table: fn(u8) -> i16 = if f.tag == TAG_ULAW {
        super::g711::ulaw_to_linear
    } else {
        super::g711::alaw_to_linear
    };
    let channels = usize::from(f.channels);
    // A partial frame at the end (a cut file) is left out.
    Ok(data
        .chunks_exact(channels)
        .map(|frame| {
            let sum: f32 = frame.iter().map(|&c| f32::from(table(c))).sum();
            sum / (32768.0 * channels as f32)
        })
        .collect())
}

fn hound_why(e: hound::Error) -> String {
    match e {
        hound::Error::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("truncated: the audio data ends early; {ACCEPTED}")
        }
        hound::Error::Unsupported | hound::Error::TooWide => {
            format!("this sample format is not supported; {ACCEPTED}")
        }
        e => format!("corrupt WAV ({e}); {ACCEPTED}"),
    }
}

/// Integer PCM or float through `hound`. `hound` is given a canonical header built
/// from the checked format, followed by the data chunk's bytes (chained, not copied):
/// it then never sees what it reads differently from other tools (odd-length chunks
/// without their pad byte, EXTENSIBLE variants, a wrong byte rate), and the bits it
/// decodes are the container's, which is right for left-justified samples (20 bits in
/// 24, 24 in 32).
fn mono_from_hound(data: &[u8], f: Format) -> Result<Vec<f32>, String> {
    let channels = usize::from(f.channels);
    let container = usize::from(f.block_align) / channels;
    let float = f.tag == TAG_FLOAT;
    let supported = if float {
        container == 4
    } else {
        (1..=4).contains(&container)
    };
    let fits = usize::from(f.bits) <= container * 8;
    if !supported || !fits || container * channels != usize::from(f.block_align) {
        return Err(format!(
            "{} {}-bit samples in {}-byte frames for {} channels are not supported; {ACCEPTED}",
            if float { "float" } else { "integer" },
            f.bits,
            f.block_align,
            f.channels
        ));
    }
    // A partial frame at the end is left out (hound refuses it).
    let len = data.len() / usize::from(f.block_align) * usize::from(f.block_align);
    let data = data.get(..len).unwrap_or(&[]);
    let bits = (container * 8) as u16;
    let mut header = Vec::with_capacity(44);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(36u32.saturating_add(len as u32)).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt \x10\0\0\0");
    header.extend_from_slice(&(if float { TAG_FLOAT } else { TAG_PCM }).to_le_bytes());
    header.extend_from_slice(&f.channels.to_le_bytes());
    header.extend_from_slice(&f.rate.to_le_bytes());
    header.extend_from_slice(&(f.rate.saturating_mul(u32::from(f.block_align))).to_le_bytes());
    header.extend_from_slice(&f.block_align.to_le_bytes());
    header.extend_from_slice(&bits.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&(len as u32).to_le_bytes());
    let mut reader =
        hound::WavReader::new(std::io::Read::chain(&header[..], data)).map_err(hound_why)?;
    // One mono sample per frame: bounded by the data, not by a header field.
    let mut mono = Vec::with_capacity(len / usize::from(f.block_align));
    let scale = 1.0 / channels as f32;
    let mut acc = 0f32;
    let mut n = 0usize;
    let mut push = |v: f32| {
        acc += v;
        n += 1;
        if n == channels {
            mono.push(acc * scale);
            acc = 0.0;
            n = 0;
        }
    };
    if float {
        for s in reader.samples::<f32>() {
            let s = s.map_err(hound_why)?;
            // NaN and out-of-range values are clipped rather than refused.
            push(if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) });
        }
    } else {
        let full = (1u64 << (bits - 1)) as f32;
        for s in reader.samples::<i32>() {
            push(s.map_err(hound_why)? as f32 / full);
        }
    }
    Ok(mono)
}

/// Samples in [-1, 1] → 16 bits, rounded and clipped.
fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

// ---------------------------------------------------------------------------------
// Resampling: windowed sinc.

/// Zero crossings of the sinc kept on each side of the centre.
const ZERO_CROSSINGS: usize = 16;
/// Table points per zero crossing; values between them are interpolated linearly.
const TABLE_RES: usize = 512;
/// Kaiser window shape: side lobes near -80 dB, well below 16-bit G.711's noise floor.
const KAISER_BETA: f64 = 8.0;
/// Cutoff as a fraction of the lower Nyquist frequency: the transition band ends at
/// Nyquist instead of starting there, so little aliases into the telephone band.
const CUTOFF: f64 = 0.9;

/// Modified Bessel function of the first kind, order 0 (series; converges fast for
/// the arguments of a Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= half / k as f64;
        sum += term * term;
        if term * term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// sinc(u)·kaiser(u / ZERO_CROSSINGS) for u = i / TABLE_RES, u in [0, ZERO_CROSSINGS],
/// plus a trailing zero so interpolation never reads past the end.
fn kernel_table() -> Vec<f32> {
    let n = ZERO_CROSSINGS * TABLE_RES;
    let norm = bessel_i0(KAISER_BETA);
    let mut t = Vec::with_capacity(n + 2);
    for i in 0..=n {
        let u = i as f64 / TABLE_RES as f64;
        let sinc = if i == 0 {
            1.0
        } else {
            (std::f64::consts::PI * u).sin() / (std::f64::consts::PI * u)
        };
        let r = u / ZERO_CROSSINGS as f64;
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
        t.push((sinc * window) as f32);
    }
    t.push(0.0);
    t
}

/// `input` at `rate` Hz → 8 kHz. Output sample n sits at input position
/// n·rate/8000 (computed in integers so long files do not drift).
fn resample(input: &[f32], rate: u32) -> Vec<f32> {
    if rate == RATE || input.is_empty() {
        return input.to_vec();
    }
    let table = kernel_table();
    let last = table.len() - 2;
    // Kernel in input samples: stretched by the ratio when downsampling (low-pass at
    // the output's Nyquist), the input's own Nyquist when upsampling.
    let c = CUTOFF * (f64::from(RATE) / f64::from(rate)).min(1.0);
    let half_width = ZERO_CROSSINGS as f64 / c;
    let n_in = input.len();
    let n_out = (n_in as u64 * u64::from(RATE)).div_ceil(u64::from(rate)) as usize;
    let mut out = Vec::with_capacity(n_out);
    for n in 0..n_out as u64 {
        let num = n * u64::from(rate);
        let t = (num / u64::from(RATE)) as f64 + (num % u64::from(RATE)) as f64 / f64::from(RATE);
        let lo = (t - half_width).ceil().max(0.0) as usize;
        let hi = ((t + half_width).floor() as usize).min(n_in - 1);
        let (mut acc, mut weights) = (0f64, 0f64);
        let window = input.get(lo..=hi).unwrap_or(&[]);
        for (k, &x) in window.iter().enumerate() {
            let pos = (t - (lo + k) as f64).abs() * c * TABLE_RES as f64;
            let i = pos as usize;
            if i >= last {
                continue;
            }
            let (a, b) = (table[i], table[i + 1]);
            let w = f64::from(a) + f64::from(b - a) * (pos - i as f64);
            acc += f64::from(x) * w;
            weights += w;
        }
        // Dividing by the weights' sum gives unity gain at DC, also near the clip's
        // edges where part of the kernel falls outside.
        out.push(if weights.abs() > 1e-9 {
            (acc / weights) as f32
        } else {
            0.0
        });
    }
    out
}

// ---------------------------------------------------------------------------------
// pcap.

/// Which RTP stream of a capture to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSelector {
    Ssrc(u32),
    /// Packets sent to this address.
    Destination(SocketAddr),
}

/// One RTP packet of a capture, relative to the stream's first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapPacket {
    /// Capture time since the first packet.
    pub offset: Duration,
    /// RTP timestamp minus the first packet's (wrapping).
    pub timestamp: u32,
    /// Sequence number minus the first packet's (wrapping), so gaps stay gaps.
    pub sequence: u16,
    pub marker: bool,
    pub payload_type: u8,
    payload: Range<u32>,
}

/// The RTP payloads of one stream of a pcap/pcapng file.
#[derive(Debug)]
pub struct PcapClip {
    packets: Vec<PcapPacket>,
    /// Every packet's payload, one after the other (one allocation, not one per packet).
    payloads: Vec<u8>,
}

/// The fields of an RTP packet this module needs.
struct Rtp<'a> {
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &'a [u8],
}

/// An RTP packet (RFC 3550 §5.1) that is not RTCP: the shared parser, and a payload
/// type outside 72–95 (RTCP 200–204 with the marker bit read as part of the type).
/// Anything else is `None`: most UDP is not RTP and is skipped silently.
fn parse_rtp(buf: &[u8]) -> Option<Rtp<'_>> {
    let p = super::rtp::Packet::parse(buf).ok()?;
    let h = p.header;
    if (72..=95).contains(&h.payload_type) {
        return None;
    }
    Some(Rtp {
        marker: h.marker,
        payload_type: h.payload_type,
        sequence: h.sequence,
        timestamp: h.timestamp,
        ssrc: h.ssrc,
        payload: p.payload,
    })
}

/// One (SSRC, destination) flow seen in the first pass.
struct Flow {
    ssrc: u32,
    dst: SocketAddr,
    packets: u64,
    last_sequence: u16,
    /// Two packets in a row had consecutive sequence numbers: a real stream, not UDP
    /// that happens to start with 0x80.
    consecutive: bool,
}

/// Calls `f(capture time, destination, RTP)` for every RTP packet of the capture.
/// A capture damaged part-way is read up to the damage (its message is returned so an
/// error can mention it); one that cannot be read at all is an error.
fn for_each_rtp(
    path: &Path,
    mut f: impl FnMut(u64, SocketAddr, &Rtp<'_>) -> Result<(), SourceError>,
) -> Result<Option<String>, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = CaptureReader::new(file).map_err(|e| match e {
        CaptureError::Read { source, .. } => SourceError::Io {
            path: path.to_path_buf(),
            source,
        },
        e => SourceError::Pcap {
            path: path.to_path_buf(),
            why: e.to_string(),
        },
    })?;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) => return Ok(Some(e.to_string())),
        };
        // IP fragments are not reassembled: RTP datagrams fit in one packet.
        let Ok(packet) = decode(frame.linktype, frame.data) else {
            continue;
        };
        let L4::Udp {
            dst_port, payload, ..
        } = packet.l4
        else {
            continue;
        };
        if let Some(rtp) = parse_rtp(payload) {
            let dst = SocketAddr::new(packet.dst.to_canonical(), dst_port);
            f(frame.ts_nanos, dst, &rtp)?;
        }
    }
}

impl PcapClip {
    /// The first RTP stream of the capture (or the selected one). Errors when the file
    /// is missing, is no capture, or holds no RTP (or not the selected stream).
    pub fn from_file(path: &Path, stream: Option<StreamSelector>) -> Result<PcapClip, SourceError> {
        let pcap_error = |why: String| SourceError::Pcap {
            path: path.to_path_buf(),
            why,
        };
        // Pass 1: the flows, in order of their first packet.
        let mut flows: Vec<Flow> = Vec::new();
        let mut index: HashMap<(u32, SocketAddr), usize> = HashMap::new();
        let damage = for_each_rtp(path, |_, dst, rtp| {
            let i = *index.entry((rtp.ssrc, dst)).or_insert_with(|| {
                flows.push(Flow {
                    ssrc: rtp.ssrc,
                    dst,
                    packets: 0,
                    last_sequence: rtp.sequence,
                    consecutive: false,
                });
                flows.len() - 1
            });
            if let Some(flow) = flows.get_mut(i) {
                if flow.packets > 0 && rtp.sequence == flow.last_sequence.wrapping_add(1) {
                    flow.consecutive = true;
                }
                flow.packets += 1;
                flow.last_sequence = rtp.sequence;
            }
            Ok(())
        })?;
        let damage_note = damage
            .map(|d| format!(" (reading stopped early: {d})"))
            .unwrap_or_default();
        if flows.is_empty() || (stream.is_none() && !flows.iter().any(|f| f.consecutive)) {
            return Err(pcap_error(format!(
                "holds no RTP stream (no UDP flow with consecutive RTP sequence numbers){damage_note}"
            )));
        }
        let matches = |f: &Flow| match stream {
            None => true,
            Some(StreamSelector::Ssrc(ssrc)) => f.ssrc == ssrc,
            Some(StreamSelector::Destination(dst)) => {
                f.dst == SocketAddr::new(dst.ip().to_canonical(), dst.port())
            }
        };
        // A real stream first; with an explicit selector, any flow it names.
        let chosen = flows
            .iter()
            .find(|f| f.consecutive && matches(f))
            .or_else(|| flows.iter().find(|f| stream.is_some() && matches(f)));
        let Some(chosen) = chosen else {
            return Err(pcap_error(format!(
                "{} is not in the capture{damage_note}; {}",
                describe_selector(stream),
                list_streams(&flows)
            )));
        };
        let key = (chosen.ssrc, chosen.dst);

        // Pass 2: that flow's packets. The capacity is a hint from pass 1, bounded so
        // a file changed between the passes cannot make it large.
        let count = usize::try_from(chosen.packets)
            .unwrap_or(usize::MAX)
            .min(1 << 20);
        let mut packets = Vec::with_capacity(count);
        let mut payloads = Vec::new();
        let mut first: Option<(u64, u32, u16)> = None;
        for_each_rtp(path, |ts, dst, rtp| {
            if (rtp.ssrc, dst) != key {
                return Ok(());
            }
            let (ts0, rtp_ts0, seq0) = *first.get_or_insert((ts, rtp.timestamp, rtp.sequence));
            let start = payloads.len();
            let end = start + rtp.payload.len();
            let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end)) else {
                return Err(pcap_error(
                    "the stream's payloads exceed 4 GB: cut the capture".to_string(),
                ));
            };
            payloads.extend_from_slice(rtp.payload);
            packets.push(PcapPacket {
                // Captures are not always in time order: an early packet counts as 0.
                offset: Duration::from_nanos(ts.saturating_sub(ts0)),
                timestamp: rtp.timestamp.wrapping_sub(rtp_ts0),
                sequence: rtp.sequence.wrapping_sub(seq0),
                marker: rtp.marker,
                payload_type: rtp.payload_type,
                payload: start..end,
            });
            Ok(())
        })?;
        if packets.is_empty() {
            return Err(pcap_error(
                "the capture changed while it was read (the stream is gone)".to_string(),
            ));
        }
        Ok(PcapClip { packets, payloads })
    }

    pub fn packets(&self) -> &[PcapPacket] {
        &self.packets
    }

    pub fn payload(&self, packet: &PcapPacket) -> &[u8] {
        // A packet from another clip could hold any range: empty rather than panic.
        self.payloads
            .get(packet.payload.start as usize..packet.payload.end as usize)
            .unwrap_or(&[])
    }

    /// Offset of the last packet (0 for one packet).
    pub fn duration(&self) -> Duration {
        self.packets.last().map_or(Duration::ZERO, |p| p.offset)
    }
}

fn describe_selector(stream: Option<StreamSelector>) -> String {
    match stream {
        Some(StreamSelector::Ssrc(ssrc)) => format!("the RTP stream with SSRC {ssrc:#010x}"),
        Some(StreamSelector::Destination(dst)) => format!("an RTP stream sent to {dst}"),
        None => "an RTP stream".to_string(),
    }
}

/// "streams found: SSRC 0x… to a:p (n packets), …", the five largest.
fn list_streams(flows: &[Flow]) -> String {
    if flows.is_empty() {
        return "the capture holds no RTP stream".to_string();
    }
    let mut order: Vec<&Flow> = flows.iter().collect();
    order.sort_by_key(|f| std::cmp::Reverse(f.packets));
    let mut s = String::from("streams found:");
    for (i, f) in order.iter().take(5).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            " SSRC {:#010x} to {} ({} packets)",
            f.ssrc, f.dst, f.packets
        ));
    }
    if order.len() > 5 {
        s.push_str(&format!(" and {} more", order.len() - 5));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_to_linear, ulaw_to_linear};
    use crate::report::pcap::{write_global_header, write_udp_record};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn temp(name: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "sipwright-source-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn manifest(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    /// A WAV written by hound: `frames` frames of `f(frame, channel)` in [-1, 1].
    fn hound_wav(
        rate: u32,
        channels: u16,
        bits: u16,
        float: bool,
        frames: usize,
        f: impl Fn(usize, u16) -> f64,
    ) -> PathBuf {
        let path = temp(&format!("{rate}-{channels}-{bits}.wav"));
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        let full = (1i64 << (bits - 1)) as f64;
        for n in 0..frames {
            for c in 0..channels {
                let v = f(n, c);
                if float {
                    w.write_sample(v as f32).unwrap();
                } else {
                    let s = (v * full).round().clamp(-full, full - 1.0) as i32;
                    w.write_sample(s).unwrap();
                }
            }
        }
        w.finalize().unwrap();
        path
    }

    fn tone(freq: f64, rate: u32, amplitude: f64) -> impl Fn(usize, u16) -> f64 {
        move |n, _| amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / rate as f64).sin()
    }

    fn load(path: &Path) -> AudioClip {
        let clip = AudioClip::from_wav_file(path).unwrap();
        std::fs::remove_file(path).unwrap();
        clip
    }

    fn load_err(path: &Path) -> String {
        let e = AudioClip::from_wav_file(path).unwrap_err();
        std::fs::remove_file(path).unwrap();
        assert!(matches!(e, SourceError::Wav { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        msg
    }

    /// Sign changes, counted between samples `range`.
    fn zero_crossings(s: &[i16]) -> usize {
        s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn rates_and_channels_give_8khz_of_the_right_length() {
        for rate in [8000, 16000, 44100, 48000, 11025, 22050] {
            for channels in [1u16, 2] {
                // 0.5 s plus one odd frame, so the length rounding is exercised.
                let frames = rate as usize / 2 + 1;
                let path = hound_wav(rate, channels, 16, false, frames, tone(440.0, rate, 0.5));
                let clip = load(&path);
                let expected = (frames as u64 * 8000).div_ceil(u64::from(rate)) as usize;
                assert_eq!(clip.samples().len(), expected, "{rate} Hz × {channels}");
                assert_eq!(clip.encoded(Law::Ulaw).len(), expected);
                assert_eq!(clip.encoded(Law::Alaw).len(), expected);
                // Amplitude kept: a 0.5 sine has an RMS of 0.354 full scale.
                let r = rms(&clip.samples()[200..expected - 200]) / 32768.0;
                assert!((r - 0.3536).abs() < 0.01, "{rate} Hz × {channels}: rms {r}");
            }
        }
    }

    #[test]
    fn eight_khz_mono_16_bit_is_taken_as_is() {
        let path = hound_wav(8000, 1, 16, false, 800, |n, _| (n as f64 / 400.0) - 1.0);
        let expected: Vec<i16> = (0..800)
            .map(|n| {
                (((n as f64 / 400.0) - 1.0) * 32768.0)
                    .round()
                    .clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        let clip = load(&path);
        assert_eq!(clip.samples(), &expected[..]);
        assert_eq!(clip.duration(), Duration::from_millis(100));
    }

    #[test]
    fn a_1khz_tone_keeps_its_frequency() {
        for rate in [11025, 16000, 22050, 44100, 48000, 96000, 6000] {
            let path = hound_wav(rate, 1, 16, false, rate as usize, tone(1000.0, rate, 0.8));
            let clip = load(&path);
            assert_eq!(clip.samples().len(), 8000);
            // 1000 cycles in a second: 2 crossings each; 7200 samples = 0.9 s.
            let z = zero_crossings(&clip.samples()[400..7600]);
            assert!((1798..=1802).contains(&z), "{rate} Hz: {z} crossings");
        }
    }

    #[test]
    fn content_above_4khz_is_filtered_not_aliased() {
        // 6 kHz would alias to 2 kHz without the low-pass.
        for rate in [16000, 44100, 48000] {
            let path = hound_wav(
                rate,
                1,
                16,
                false,
                rate as usize / 2,
                tone(6000.0, rate, 0.8),
            );
            let clip = load(&path);
            let r = rms(&clip.samples()[100..3900]) / 32768.0;
            assert!(r < 0.002, "{rate} Hz: 6 kHz left at rms {r}");
        }
    }

    #[test]
    fn channels_are_averaged() {
        // Left a tone, right its opposite: the mix is silence; a third channel at 0.3
        // makes it 0.1.
        let path = hound_wav(16000, 3, 16, false, 1600, |n, c| match c {
            0 => 0.5 * (n as f64 / 10.0).sin(),
            1 => -0.5 * (n as f64 / 10.0).sin(),
            _ => 0.3,
        });
        let clip = load(&path);
        assert_eq!(clip.samples().len(), 800);
        for &s in &clip.samples()[50..750] {
            assert!((i32::from(s) - 3277).abs() <= 3, "{s}");
        }
    }

    #[test]
    fn other_sample_widths_and_float() {
        for (bits, float) in [(8, false), (24, false), (32, false), (32, true)] {
            let path = hound_wav(8000, 1, bits, float, 400, tone(500.0, 8000, 0.5));
            let clip = load(&path);
            assert_eq!(clip.samples().len(), 400);
            let r = rms(clip.samples()) / 32768.0;
            assert!((r - 0.3536).abs() < 0.01, "{bits} bits float {float}: {r}");
            let z = zero_crossings(clip.samples());
            // 400 samples of 500 Hz: 25 cycles.
            assert!((49..=51).contains(&z), "{bits} bits: {z}");
        }
    }

    /// A WAV written by hand: `fmt ` with the given fields, then `data`.
    fn raw_wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block_align = channels * bits.div_ceil(8);
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        fmt.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        fmt.extend_from_slice(&block_align.to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        fmt.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&((4 + 8 + fmt.len() + 8 + data.len()) as u32).to_le_bytes());
        w.extend_from_slice(b"WAVE");
        // An unknown chunk of odd length first: it must be skipped with its pad byte.
        w.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00");
        w.extend_from_slice(b"fmt ");
        w.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        w.extend_from_slice(&fmt);
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.extend_from_slice(data);
        w
    }

    #[test]
    fn g711_wav_is_decoded() {
        let codes: Vec<u8> = (0..=255).collect();
        let name = Path::new("x.wav");
        let u = AudioClip::from_wav_bytes(&raw_wav(TAG_ULAW, 1, 8000, 8, &codes), name).unwrap();
        let a = AudioClip::from_wav_bytes(&raw_wav(TAG_ALAW, 1, 8000, 8, &codes), name).unwrap();
        let du: Vec<i16> = codes.iter().map(|&c| ulaw_to_linear(c)).collect();
        let da: Vec<i16> = codes.iter().map(|&c| alaw_to_linear(c)).collect();
        assert_eq!(u.samples(), &du[..]);
        assert_eq!(a.samples(), &da[..]);
        // Re-encoding gives the codes back (µ-law 0x7F is "-0", which encodes as 0xFF).
        for (i, (&c, &e)) in codes.iter().zip(u.encoded(Law::Ulaw)).enumerate() {
            assert_eq!(e, if c == 0x7f { 0xff } else { c }, "µ-law code {i}");
        }
        assert_eq!(a.encoded(Law::Alaw), &codes[..]);
        // Stereo µ-law at 16 kHz: mixed down and resampled like PCM.
        let stereo: Vec<u8> = std::iter::repeat_n([0x80u8, 0x80], 1600)
            .flatten()
            .collect();
        let s = AudioClip::from_wav_bytes(&raw_wav(TAG_ULAW, 2, 16000, 8, &stereo), name).unwrap();
        assert_eq!(s.samples().len(), 800);
        assert!(s.samples().iter().all(|&x| x == 32124));
    }

    #[test]
    fn extensible_and_odd_chunks() {
        // WAVE_FORMAT_EXTENSIBLE, PCM sub-format, 24 valid bits in 32-bit containers
        // (left-justified), stereo, after an odd-length chunk with its pad byte.
        let samples: [i32; 4] = [0x40_0000, 0x40_0000, -0x20_0000, 0];
        let mut data = Vec::new();
        for s in samples {
            data.extend_from_slice(&(s << 8).to_le_bytes());
        }
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&TAG_EXTENSIBLE.to_le_bytes());
        fmt.extend_from_slice(&2u16.to_le_bytes());
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&64000u32.to_le_bytes());
        fmt.extend_from_slice(&8u16.to_le_bytes());
        fmt.extend_from_slice(&32u16.to_le_bytes());
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&24u16.to_le_bytes()); // valid bits
        fmt.extend_from_slice(&3u32.to_le_bytes()); // channel mask
        fmt.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ]);
        let mut w = b"RIFF\0\0\0\0WAVEJUNK\x01\0\0\0x\0fmt ".to_vec();
        w.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        w.extend_from_slice(&fmt);
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.extend_from_slice(&data);
        let clip = AudioClip::from_wav_bytes(&w, Path::new("ext.wav")).unwrap();
        // (0.5 + 0.5) / 2 and (-0.25 + 0) / 2.
        assert_eq!(clip.samples(), &[16384, -4096]);
        // The same samples as plain 16-bit PCM behind an odd chunk (`raw_wav` puts one
        // first): hound alone would not skip its pad byte.
        let pcm: Vec<u8> = [1000i16, -2000, 3000]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let clip =
            AudioClip::from_wav_bytes(&raw_wav(TAG_PCM, 1, 8000, 16, &pcm), Path::new("p.wav"))
                .unwrap();
        assert_eq!(clip.samples(), &[1000, -2000, 3000]);
    }

    #[test]
    fn refusals_name_the_file_and_what_is_accepted() {
        // 16 bits per sample in 1-byte frames: the block align field is at 12 + 12
        // (LIST chunk) + 8 + 12.
        let mut bits_over_block = raw_wav(TAG_PCM, 1, 8000, 16, &[0; 10]);
        bits_over_block[44..46].copy_from_slice(&1u16.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("adpcm", raw_wav(2, 1, 8000, 4, &[0; 100]), "ADPCM"),
            ("gsm", raw_wav(0x31, 1, 8000, 0, &[0; 65]), "GSM"),
            ("empty", Vec::new(), "empty"),
            ("no-audio", raw_wav(TAG_PCM, 1, 8000, 16, &[]), "no audio"),
            (
                "zero-channels",
                raw_wav(TAG_ULAW, 0, 8000, 8, &[0; 10]),
                "0 channels",
            ),
            ("rate", raw_wav(TAG_PCM, 1, 100, 16, &[0; 10]), "100 Hz"),
            (
                "text",
                b"hello, this is not a WAV file".to_vec(),
                "not a WAV",
            ),
            (
                "float64",
                raw_wav(TAG_FLOAT, 1, 8000, 64, &[0; 16]),
                "64-bit",
            ),
            ("int40", raw_wav(TAG_PCM, 1, 8000, 40, &[0; 10]), "40-bit"),
            ("bits>block", bits_over_block, "16-bit samples in 1-byte"),
            (
                "g711-16",
                raw_wav(TAG_ULAW, 1, 8000, 16, &[0; 10]),
                "8 bits",
            ),
        ];
        for (name, bytes, needle) in cases {
            let path = temp(&format!("{name}.wav"));
            std::fs::write(&path, &bytes).unwrap();
            let msg = load_err(&path);
            assert!(msg.contains(needle), "{name}: {msg}");
            assert!(msg.contains("accepted: PCM WAV"), "{name}: {msg}");
        }
    }

    #[test]
    fn truncated_files_are_refused() {
        let good =
            std::fs::read(hound_wav(8000, 1, 16, false, 100, tone(300.0, 8000, 0.3))).unwrap();
        assert!(AudioClip::from_wav_bytes(&good, Path::new("g.wav")).is_ok());
        // Cut in the data, in the fmt chunk, in the RIFF header.
        for cut in [good.len() - 1, good.len() - 50, 30, 20, 10, 3] {
            let e = AudioClip::from_wav_bytes(&good[..cut], Path::new("cut.wav")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("cut.wav: "), "{msg}");
            assert!(
                msg.contains("truncated") || msg.contains("cut short") || msg.contains("not a WAV"),
                "cut at {cut}: {msg}"
            );
        }
    }

    #[test]
    fn missing_file_is_io() {
        let path = temp("missing.wav");
        let e = AudioClip::from_wav_file(&path).unwrap_err();
        assert!(
            matches!(e, SourceError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn damaged_wavs_never_panic() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let seeds = [
            std::fs::read(hound_wav(44100, 2, 16, false, 300, tone(300.0, 44100, 0.3))).unwrap(),
            raw_wav(TAG_ULAW, 2, 8000, 8, &[0x55; 64]),
            std::fs::read(hound_wav(8000, 1, 32, true, 50, tone(300.0, 8000, 0.3))).unwrap(),
        ];
        let mut rng = SmallRng::seed_from_u64(0x3a7);
        for round in 0..2000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
            if round % 4 == 0 {
                let keep = rng.random_range(0..bytes.len());
                bytes.truncate(keep);
            }
            let _ = AudioClip::from_wav_bytes(&bytes, Path::new("fuzz.wav"));
        }
    }

    #[test]
    fn shipped_sample_wav() {
        let clip = AudioClip::from_wav_file(&manifest("media/sample.wav")).unwrap();
        let reader = hound::WavReader::open(manifest("media/sample.wav")).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(clip.samples().len(), reader.len() as usize);
        let d = clip.duration();
        assert!(
            d >= Duration::from_secs(2) && d <= Duration::from_secs(3),
            "{d:?}"
        );
        // Speech, not silence.
        assert!(rms(clip.samples()) > 500.0);
    }

    // --- pcap ---

    fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Writes a raw-IP pcap of `(ms since start, src, dst, UDP payload)`.
    fn pcap_file(name: &str, packets: &[(u64, &str, &str, Vec<u8>)]) -> PathBuf {
        let mut out = Vec::new();
        write_global_header(&mut out);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for (ms, src, dst, payload) in packets {
            let ts: SystemTime = t0 + Duration::from_millis(*ms);
            write_udp_record(&mut out, ts, addr(src), addr(dst), payload);
        }
        let path = temp(name);
        std::fs::write(&path, out).unwrap();
        path
    }

    const A: &str = "10.0.0.1:4000";
    const B: &str = "10.0.0.2:5000";
    const SIP_A: &str = "10.0.0.1:5060";
    const SIP_B: &str = "10.0.0.2:5060";

    /// SIP, a stray UDP packet that looks like RTP, then two interleaved streams:
    /// A→B SSRC 0xaaaa (PT 0, sequence wrapping) and B→A SSRC 0xbbbb (PT 8, one lost).
    fn two_streams() -> PathBuf {
        let mut p: Vec<(u64, &str, &str, Vec<u8>)> = vec![
            (
                0,
                SIP_A,
                SIP_B,
                b"INVITE sip:b@10.0.0.2 SIP/2.0\r\n\r\n".to_vec(),
            ),
            (1, "10.0.0.9:9", B, rtp(0, false, 7, 7, 0x1234, &[1; 10])),
        ];
        for k in 0..5u16 {
            let ms = 100 + 20 * u64::from(k);
            let payload_a = vec![k as u8; 160];
            let seq_a = 65534u16.wrapping_add(k);
            p.push((
                ms,
                A,
                B,
                rtp(
                    0,
                    k == 0,
                    seq_a,
                    1000 + 160 * u32::from(k),
                    0xaaaa,
                    &payload_a,
                ),
            ));
            if k != 2 {
                let payload_b = vec![0x80 | k as u8; 80];
                p.push((
                    ms + 5,
                    B,
                    A,
                    rtp(8, false, 10 + k, 80 * u32::from(k), 0xbbbb, &payload_b),
                ));
            }
        }
        pcap_file("two.pcap", &p)
    }

    #[test]
    fn first_stream_skips_stray_udp() {
        let path = two_streams();
        let clip = PcapClip::from_file(&path, None).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(clip.packets().len(), 5);
        for (k, p) in clip.packets().iter().enumerate() {
            assert_eq!(p.offset, Duration::from_millis(20 * k as u64));
            assert_eq!(p.timestamp, 160 * k as u32);
            assert_eq!(p.sequence, k as u16, "wrapping relative sequence");
            assert_eq!(p.payload_type, 0);
            assert_eq!(p.marker, k == 0);
            assert_eq!(clip.payload(p), &vec![k as u8; 160][..]);
        }
        assert_eq!(clip.duration(), Duration::from_millis(80));
    }

    #[test]
    fn selectors_pick_the_stream() {
        let path = two_streams();
        let by_ssrc = PcapClip::from_file(&path, Some(StreamSelector::Ssrc(0xbbbb))).unwrap();
        let by_dst =
            PcapClip::from_file(&path, Some(StreamSelector::Destination(addr(A)))).unwrap();
        assert_eq!(by_ssrc.packets(), by_dst.packets());
        let seqs: Vec<u16> = by_ssrc.packets().iter().map(|p| p.sequence).collect();
        assert_eq!(seqs, vec![0, 1, 3, 4], "the loss stays a gap");
        let p3 = &by_ssrc.packets()[2];
        assert_eq!(p3.offset, Duration::from_millis(60));
        assert_eq!(p3.timestamp, 240);
        assert_eq!(p3.payload_type, 8);
        assert_eq!(by_ssrc.payload(p3), &[0x83; 80][..]);
        // An explicit selector may name a flow that is not a "stream" (one packet).
        let stray = PcapClip::from_file(&path, Some(StreamSelector::Ssrc(0x1234))).unwrap();
        assert_eq!(stray.packets().len(), 1);
        assert_eq!(stray.duration(), Duration::ZERO);

        let e = PcapClip::from_file(&path, Some(StreamSelector::Ssrc(0xcccc))).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SourceError::Pcap { .. }));
        assert!(
            msg.contains(
                "the RTP stream with SSRC 0x0000cccc is not in the capture; streams found:"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("SSRC 0x0000aaaa to 10.0.0.2:5000 (5 packets)"),
            "{msg}"
        );
        assert!(
            msg.contains("SSRC 0x0000bbbb to 10.0.0.1:4000 (4 packets)"),
            "{msg}"
        );
        let e = PcapClip::from_file(&path, Some(StreamSelector::Destination(addr("10.0.0.3:1"))))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("an RTP stream sent to 10.0.0.3:1 is not in the capture"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn captures_without_rtp_are_refused() {
        let sip = pcap_file(
            "sip.pcap",
            &[
                (
                    0,
                    SIP_A,
                    SIP_B,
                    b"INVITE sip:b@10.0.0.2 SIP/2.0\r\n\r\n".to_vec(),
                ),
                (5, SIP_B, SIP_A, b"SIP/2.0 100 Trying\r\n\r\n".to_vec()),
                // RTCP (SR, PT 200) and a lone RTP-looking packet are no stream either.
                (
                    6,
                    A,
                    B,
                    vec![0x80, 200, 0, 6, 0, 0, 0xaa, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0],
                ),
                (7, A, B, rtp(0, false, 1, 0, 1, &[0; 20])),
            ],
        );
        let e = PcapClip::from_file(&sip, None).unwrap_err();
        std::fs::remove_file(&sip).unwrap();
        assert!(e.to_string().contains("holds no RTP stream"), "{e}");

        let text = temp("text.pcap");
        std::fs::write(&text, b"not a capture at all").unwrap();
        let e = PcapClip::from_file(&text, None).unwrap_err();
        std::fs::remove_file(&text).unwrap();
        assert!(matches!(e, SourceError::Pcap { .. }), "{e:?}");
        assert!(e.to_string().contains("not a pcap"), "{e}");

        let missing = temp("missing.pcap");
        let e = PcapClip::from_file(&missing, None).unwrap_err();
        assert!(matches!(e, SourceError::Io { .. }), "{e:?}");
    }

    #[test]
    fn rtp_parsing_is_bounded() {
        // CSRC, extension and padding inside the datagram.
        let mut p = vec![0xb1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, one word
        p.extend_from_slice(&[7, 7, 7]);
        p.extend_from_slice(&[0, 0, 3]); // padding of 3
        let r = parse_rtp(&p).unwrap();
        assert_eq!(r.payload, &[7, 7, 7]);
        assert_eq!((r.sequence, r.timestamp, r.ssrc), (1, 2, 3));
        // Every cut of it is refused or shorter, never a panic.
        for cut in 0..p.len() {
            let _ = parse_rtp(&p[..cut]);
        }
        assert!(
            parse_rtp(&[0x80, 201, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(),
            "RTCP RR"
        );
        assert!(parse_rtp(&[0x40; 20]).is_none(), "version 1");
        assert!(
            parse_rtp(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(),
            "padding 0"
        );
    }

    #[test]
    fn shipped_sample_pcap_is_the_wav_in_ulaw() {
        let wav = AudioClip::from_wav_file(&manifest("media/sample.wav")).unwrap();
        let clip = PcapClip::from_file(&manifest("media/sample.pcap"), None).unwrap();
        let encoded = wav.encoded(Law::Ulaw);
        let expected_packets = encoded.len().div_ceil(160);
        assert_eq!(clip.packets().len(), expected_packets);
        let mut all = Vec::new();
        for (k, p) in clip.packets().iter().enumerate() {
            assert_eq!(p.offset, Duration::from_millis(20 * k as u64));
            assert_eq!(p.timestamp, 160 * k as u32);
            assert_eq!(p.sequence, k as u16);
            assert_eq!(p.payload_type, 0);
            assert_eq!(p.marker, k == 0);
            assert_eq!(clip.payload(p).len(), 160);
            all.extend_from_slice(clip.payload(p));
        }
        // The script pads the last packet with µ-law silence.
        assert_eq!(&all[..encoded.len()], encoded);
        assert!(all[encoded.len()..].iter().all(|&c| c == 0xff));
        assert_eq!(
            clip.duration(),
            Duration::from_millis(20 * (expected_packets as u64 - 1))
        );
    }
}

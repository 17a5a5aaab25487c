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
use std::io::Cursor;
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
        encode(Law::Ulaw, &samples, &mut ulaw);
        encode(Law::Alaw, &samples, &mut alaw);
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
// G.711 encoding. `Law::encode` is being written on another branch; until it lands
// these private encoders (ITU-T G.711, the classic segment search) stand in for it.
// At merge, `encode` becomes `law.encode(samples, out)`.

fn encode(law: Law, samples: &[i16], out: &mut Vec<u8>) {
    match law {
        Law::Ulaw => out.extend(samples.iter().map(|&s| linear_to_ulaw(s))),
        Law::Alaw => out.extend(samples.iter().map(|&s| linear_to_alaw(s))),
    }
}

/// µ-law: bias 0x84 so every segment starts on a power of two, clip at 32635 so the
/// biased value fits 15 bits, all bits inverted on the wire.
fn linear_to_ulaw(sample: i16) -> u8 {
    let mut x = i32::from(sample);
    let sign = if x < 0 {
        x = -x;
        0x80
    } else {
        0
    };
    x = x.min(32635) + 0x84;
    // x >> 7 is 1..=255: the segment is the position of its highest bit.
    let exponent = 7 - ((x >> 7) as u8).leading_zeros() as i32;
    let mantissa = (x >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// A-law on the 13-bit magnitude: segment 0 and 1 share a step, even bits inverted on
/// the wire (XOR 0x55), sign bit set for positive samples.
fn linear_to_alaw(sample: i16) -> u8 {
    let v = i32::from(sample) >> 3;
    let (mask, m) = if v >= 0 {
        (0xd5u8, v)
    } else {
        (0x55u8, -v - 1)
    };
    // m is 0..=4095 (12 bits): segment = bit length above 5, at most 7.
    let bits = 32 - m.leading_zeros() as i32;
    let segment = (bits - 5).max(0);
    let mantissa = if segment < 2 {
        (m >> 1) & 0x0f
    } else {
        (m >> segment) & 0x0f
    };
    ((segment << 4) as u8 | mantissa as u8) ^ mask
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
        let (Some(id), Some(size)) = (bytes.get(pos..pos + 4), le32(bytes, pos + 4)) else {
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
        TAG_PCM | TAG_FLOAT => mono_from_hound(bytes, f)?,
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

fn mono_from_hound(bytes: &[u8], f: Format) -> Result<Vec<f32>, String> {
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(hound_why)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    // hound's length comes from the header; the scan checked the data is there, and
    // the capacity is bounded by the file anyway (never trust a header for memory).
    let frames = (reader.len() as usize / channels).min(bytes.len());
    let mut mono = Vec::with_capacity(frames);
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
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            for s in reader.samples::<f32>() {
                let s = s.map_err(hound_why)?;
                // NaN and out-of-range values are clipped rather than refused.
                push(if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) });
            }
        }
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let full = (1u64 << (bits - 1)) as f32;
            for s in reader.samples::<i32>() {
                push(s.map_err(hound_why)? as f32 / full);
            }
        }
        (format, bits) => {
            return Err(format!(
                "{bits}-bit {} samples are not supported; {ACCEPTED}",
                if format == hound::SampleFormat::Float {
                    "float"
                } else {
                    "integer"
                }
            ));
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

/// An RTP packet (RFC 3550 §5.1) that is not RTCP: version 2, payload type outside
/// 72–95 (RTCP 200–204 with the marker bit read as part of the type), CSRC list,
/// extension and padding inside the datagram. Anything else is `None`: most UDP is
/// not RTP and is skipped silently.
fn parse_rtp(buf: &[u8]) -> Option<Rtp<'_>> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    if b0 >> 6 != 2 || buf.len() < 12 {
        return None;
    }
    let payload_type = b1 & 0x7f;
    if (72..=95).contains(&payload_type) {
        return None;
    }
    let mut start = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = usize::from(u16::from_be_bytes(
            buf.get(start + 2..start + 4)?.try_into().ok()?,
        ));
        start += 4 + 4 * words;
    }
    let mut end = buf.len();
    if b0 & 0x20 != 0 {
        let padding = usize::from(*buf.last()?);
        if padding == 0 {
            return None;
        }
        end = end.checked_sub(padding)?;
    }
    Some(Rtp {
        marker: b1 & 0x80 != 0,
        payload_type,
        sequence: u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?),
        timestamp: u32::from_be_bytes(buf.get(4..8)?.try_into().ok()?),
        ssrc: u32::from_be_bytes(buf.get(8..12)?.try_into().ok()?),
        payload: buf.get(start..end)?,
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
        if !flows.iter().any(|f| f.consecutive) && stream.is_none() {
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
                "{} not found{damage_note}; {}",
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
        Some(StreamSelector::Ssrc(ssrc)) => format!("no RTP stream with SSRC {ssrc:#010x}"),
        Some(StreamSelector::Destination(dst)) => format!("no RTP stream sent to {dst}"),
        None => "no RTP stream".to_string(),
    }
}

/// "streams found: SSRC 0x… to a:p (n packets), …", the five largest.
fn list_streams(flows: &[Flow]) -> String {
    if flows.is_empty() {
        return "the capture holds no RTP stream".to_string();
    }
    let mut order: Vec<&Flow> = flows.iter().collect();
    order.sort_by(|a, b| b.packets.cmp(&a.packets));
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

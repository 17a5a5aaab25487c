//! Per-stream bookkeeping of a decrypt run: counts, ROC at the start, payload type,
//! DTMF digits, and the WAV file of a G.711 stream. A stream is one direction of RTP
//! or RTCP between two addresses with one SSRC, which is how Wireshark lists them.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::media::dtmf::DigitCollector;
use crate::media::g711::Law;
use crate::srtp::Suite;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Rtp,
    Rtcp,
}

impl Kind {
    /// As in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rtp => "rtp",
            Kind::Rtcp => "rtcp",
        }
    }
}

/// Where a stream's key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// An `a=crypto` line in the capture's SIP.
    Sdp,
    /// `--key` on the command line.
    Cli,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub kind: Kind,
    pub ssrc: u32,
}

/// One line of the summary (and one object of the JSON `streams` array).
#[derive(Debug, Serialize)]
pub struct StreamReport {
    pub src: String,
    pub dst: String,
    pub kind: Kind,
    pub ssrc: u32,
    pub suite: &'static str,
    pub call_id: Option<String>,
    pub key_source: KeySource,
    /// Packets seen for this stream (decrypted, failed, replayed or plain RTCP).
    pub packets: u64,
    pub decrypted: u64,
    pub auth_failures: u64,
    /// Copies of packets already decrypted (replay window).
    pub replayed: u64,
    /// RTCP that no key opened and that has no SRTCP trailer: sent in clear before the
    /// sender's SRTP was keyed (baresip sends one APP packet per stream). Copied as it is;
    /// not a failure.
    pub plain_rtcp: u64,
    /// ROC of the first packet decrypted (null when none was).
    pub roc_start: Option<u32>,
    /// Payload type of the first RTP packet decrypted that is not telephone-event.
    pub payload_type: Option<u8>,
    pub wav: Option<String>,
    /// RFC 4733 digits, in order (filled in when the run finishes).
    pub dtmf: String,
}

struct Stream {
    report: StreamReport,
    digits: DigitCollector,
    wav: Option<WavOut>,
    /// Creating the WAV file was tried (once per stream, whatever came of it).
    wav_tried: bool,
}

struct WavOut {
    writer: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
}

/// All streams of a run, in the order they were first seen.
#[derive(Default)]
pub struct Streams {
    index: HashMap<StreamKey, usize>,
    streams: Vec<Stream>,
    samples: Vec<i16>,
    /// Problems writing WAV files (reported once per stream, the run goes on).
    pub warnings: Vec<String>,
}

/// What the caller knows about the key of a packet's flow.
#[derive(Clone, Copy)]
pub struct Keying<'a> {
    pub suite: Suite,
    pub call_id: Option<&'a str>,
    pub source: KeySource,
}

impl Streams {
    /// The stream of `key`, created on first sight with `keying`.
    pub fn get(&mut self, key: StreamKey, keying: Keying<'_>) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.streams.len();
        self.index.insert(key, i);
        self.streams.push(Stream {
            report: StreamReport {
                src: key.src.to_string(),
                dst: key.dst.to_string(),
                kind: key.kind,
                ssrc: key.ssrc,
                suite: keying.suite.sdes_name(),
                call_id: keying.call_id.map(str::to_owned),
                key_source: keying.source,
                packets: 0,
                decrypted: 0,
                auth_failures: 0,
                replayed: 0,
                plain_rtcp: 0,
                roc_start: None,
                payload_type: None,
                wav: None,
                dtmf: String::new(),
            },
            digits: DigitCollector::default(),
            wav: None,
            wav_tried: false,
        });
        i
    }

    pub fn report_mut(&mut self, i: usize) -> &mut StreamReport {
        &mut self.streams[i].report
    }

    /// A packet of stream `i` was decrypted: count it and look at its media.
    /// `plain` is the whole plain RTP packet for RTP streams.
    pub fn decrypted(
        &mut self,
        i: usize,
        roc: u32,
        plain: &[u8],
        telephone_event: Option<u8>,
        wav_dir: Option<&Path>,
    ) {
        let stream = &mut self.streams[i];
        let r = &mut stream.report;
        r.decrypted += 1;
        // RTCP has no ROC: the transform reports 0 for it.
        r.roc_start.get_or_insert(roc);
        if r.kind != Kind::Rtp {
            return;
        }
        let Some(rtp) = RtpView::parse(plain) else {
            return;
        };
        if Some(rtp.payload_type) == telephone_event {
            stream.digits.push(rtp.timestamp, rtp.payload);
            return;
        }
        r.payload_type.get_or_insert(rtp.payload_type);
        let (Some(dir), Some(law)) = (wav_dir, Law::of_payload_type(rtp.payload_type)) else {
            return;
        };
        if !stream.wav_tried {
            stream.wav_tried = true;
            let name = format!(
                "{:08x}-{}-to-{}.wav",
                r.ssrc,
                file_part(&r.src),
                file_part(&r.dst)
            );
            let path = dir.join(name);
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            match hound::WavWriter::create(&path, spec) {
                Ok(writer) => {
                    r.wav = Some(path.display().to_string());
                    stream.wav = Some(WavOut { writer, path });
                }
                Err(e) => {
                    self.warnings
                        .push(format!("cannot write {}: {e}", path.display()));
                }
            }
        }
        let Some(wav) = stream.wav.as_mut() else {
            return;
        };
        self.samples.clear();
        law.decode(rtp.payload, &mut self.samples);
        for &s in &self.samples {
            if let Err(e) = wav.writer.write_sample(s) {
                self.warnings
                    .push(format!("cannot write {}: {e}", wav.path.display()));
                stream.wav = None;
                break;
            }
        }
    }

    /// Close the WAV files and hand back the reports, in order of first sight.
    pub fn finish(mut self) -> (Vec<StreamReport>, Vec<String>) {
        let mut reports = Vec::with_capacity(self.streams.len());
        for mut s in self.streams {
            if let Some(wav) = s.wav.take()
                && let Err(e) = wav.writer.finalize()
            {
                self.warnings
                    .push(format!("cannot finish {}: {e}", wav.path.display()));
            }
            s.report.dtmf = s.digits.digits().to_owned();
            reports.push(s.report);
        }
        (reports, self.warnings)
    }
}

/// `10.0.0.1:4000` → `10.0.0.1_4000`; `[::1]:4000` → `__1_4000` (no `:` in file names).
fn file_part(addr: &str) -> String {
    let mut out = String::with_capacity(addr.len());
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
    for c in host.chars() {
        match c {
            '[' | ']' => {}
            ':' => out.push('_'),
            c => out.push(c),
        }
    }
    out.push('_');
    out.push_str(port);
    out
}

/// The parts of a plain RTP packet a decrypt run looks at.
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub timestamp: u32,
    pub payload: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// RFC 3550 §5.1: skips CSRCs and a header extension, drops padding.
    pub fn parse(p: &'a [u8]) -> Option<RtpView<'a>> {
        let first = *p.first()?;
        if first >> 6 != 2 || p.len() < 12 {
            return None;
        }
        let mut at = 12 + 4 * usize::from(first & 0x0f);
        if first & 0x10 != 0 {
            let words = u16::from_be_bytes([*p.get(at + 2)?, *p.get(at + 3)?]);
            at += 4 + 4 * usize::from(words);
        }
        let mut end = p.len();
        if first & 0x20 != 0 {
            end = end.checked_sub(usize::from(*p.last()?))?;
        }
        Some(RtpView {
            payload_type: p[1] & 0x7f,
            timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            payload: p.get(at..end)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_view_skips_csrc_extension_and_padding() {
        let mut p = vec![0x80 | 0x20 | 0x10 | 1, 0x00, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(&[9, 9, 9, 9]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 7, 7, 7, 7]); // one-word extension
        p.extend_from_slice(&[0xff, 0xfe]); // payload
        p.extend_from_slice(&[0, 0, 3]); // padding, count 3
        let v = RtpView::parse(&p).unwrap();
        assert_eq!(v.payload_type, 0);
        assert_eq!(v.timestamp, 160);
        assert_eq!(v.payload, &[0xff, 0xfe]);
        assert!(RtpView::parse(&p[..14]).is_none());
        assert!(RtpView::parse(&[0x40; 20]).is_none());
        let mut bad_pad = p.clone();
        *bad_pad.last_mut().unwrap() = 200;
        assert!(RtpView::parse(&bad_pad).is_none());
    }

    #[test]
    fn file_names_have_no_colons() {
        assert_eq!(file_part("10.0.0.1:4000"), "10.0.0.1_4000");
        assert_eq!(file_part("[2001:db8::1]:5000"), "2001_db8__1_5000");
    }
}

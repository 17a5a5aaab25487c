//! `record:` — one WAV file per call and direction, written as packets go by:
//! G.711 payloads decoded to 16-bit 8 kHz mono with `hound`; a gap in RTP timestamps
//! (loss, a DTMF event) becomes silence so the file keeps the call's timeline.
//!
//! The timeline is the RTP clock (8 kHz for G.711, one sample per payload byte):
//! - the first payload sets the origin;
//! - a payload that starts where the previous one ended is appended;
//! - one that starts up to [`MAX_GAP`] samples later gets silence first (lost packets,
//!   a DTMF event sent in place of audio);
//! - one that starts earlier is late or a duplicate: what was already written is
//!   dropped (a payload straddling the end keeps only its new tail);
//! - a jump of more than [`MAX_GAP`] either way is the sender restarting its clock (a
//!   new SSRC, a re-INVITE, a hold): the origin moves without filling, so a bogus
//!   timestamp cannot write minutes of silence.
//!
//! No allocation per packet: payloads are decoded into one buffer kept for the
//! recorder's life, and `hound` writes through a `BufWriter`.

use std::io;
use std::path::Path;

use super::g711::Law;

/// The longest gap filled with silence: one second at 8 kHz.
pub const MAX_GAP: u32 = 8000;

type Writer = hound::WavWriter<io::BufWriter<std::fs::File>>;

pub struct Recorder {
    writer: Writer,
    /// RTP timestamp of the next sample expected; `None` before the first payload.
    next: Option<u32>,
    samples: u64,
    /// Decoded samples of the current payload (reused).
    decoded: Vec<i16>,
}

fn io_error(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        e => io::Error::other(e),
    }
}

impl Recorder {
    pub fn create(path: &Path) -> io::Result<Recorder> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        // `create` wraps the file in a BufWriter.
        let writer = hound::WavWriter::create(path, spec).map_err(io_error)?;
        Ok(Recorder {
            writer,
            next: None,
            samples: 0,
            // 20 ms at 8 kHz; grows once if the packets are larger.
            decoded: Vec::with_capacity(160),
        })
    }

    /// An audio payload with its RTP timestamp. A timestamp behind what was written is
    /// dropped (late or duplicate); a gap up to one second is filled with silence.
    pub fn write(&mut self, law: Law, timestamp: u32, payload: &[u8]) -> io::Result<()> {
        let next = *self.next.get_or_insert(timestamp);
        // The distance in the wrapping 32-bit RTP clock, signed.
        let ahead = timestamp.wrapping_sub(next) as i32;
        // Where this payload's first new sample goes, and how many of its samples are
        // already in the file.
        let (start, skip) = if ahead.unsigned_abs() > MAX_GAP {
            // A restarted clock: this payload is the new origin.
            (timestamp, 0)
        } else if ahead > 0 {
            for _ in 0..ahead {
                self.writer.write_sample(0i16).map_err(io_error)?;
            }
            self.samples += ahead as u64;
            (timestamp, 0)
        } else {
            // Late or duplicate: up to `next` these samples are already written.
            (next, ahead.unsigned_abs() as usize)
        };
        let fresh = payload.get(skip..).unwrap_or(&[]);
        self.decoded.clear();
        law.decode(fresh, &mut self.decoded);
        for &s in &self.decoded {
            self.writer.write_sample(s).map_err(io_error)?;
        }
        self.samples += fresh.len() as u64;
        self.next = Some(start.wrapping_add(fresh.len() as u32));
        Ok(())
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Fix the WAV header's lengths and close the file.
    pub fn finish(self) -> io::Result<()> {
        self.writer.finalize().map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_to_linear, ulaw_to_linear};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn temp(name: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "sipwright-recorder-{}-{}-{name}.wav",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn read_back(path: &Path) -> Vec<i16> {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 8000, 16)
        );
        let s = r.samples::<i16>().map(Result::unwrap).collect();
        std::fs::remove_file(path).unwrap();
        s
    }

    fn ulaw(codes: &[u8]) -> Vec<i16> {
        codes.iter().map(|&c| ulaw_to_linear(c)).collect()
    }

    #[test]
    fn contiguous_payloads_are_the_decoding() {
        let path = temp("contiguous");
        let mut rec = Recorder::create(&path).unwrap();
        let a: Vec<u8> = (0..160).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..160).map(|i| (i + 96) as u8).collect();
        rec.write(Law::Ulaw, 1000, &a).unwrap();
        rec.write(Law::Ulaw, 1160, &b).unwrap();
        assert_eq!(rec.samples(), 320);
        rec.finish().unwrap();
        let mut expected = ulaw(&a);
        expected.extend(ulaw(&b));
        assert_eq!(read_back(&path), expected);
    }

    #[test]
    fn gaps_are_filled_and_late_packets_dropped() {
        let path = temp("gaps");
        let mut rec = Recorder::create(&path).unwrap();
        let p1 = [0x10u8; 160];
        let p3 = [0x90u8; 160];
        let p2 = [0x20u8; 160];
        // Starting near the wrap: the timeline crosses u32::MAX.
        let t0 = u32::MAX - 200;
        rec.write(Law::Alaw, t0, &p1).unwrap();
        // One packet lost: 160 samples of silence.
        rec.write(Law::Alaw, t0.wrapping_add(320), &p3).unwrap();
        // The lost one arrives late, then a duplicate: both dropped.
        rec.write(Law::Alaw, t0.wrapping_add(160), &p2).unwrap();
        rec.write(Law::Alaw, t0.wrapping_add(320), &p3).unwrap();
        assert_eq!(rec.samples(), 480);
        // Straddling the end: only the 80 new samples are written.
        rec.write(Law::Alaw, t0.wrapping_add(400), &p2).unwrap();
        assert_eq!(rec.samples(), 560);
        rec.finish().unwrap();
        let got = read_back(&path);
        let mut expected = vec![alaw_to_linear(0x10); 160];
        expected.extend(vec![0; 160]);
        expected.extend(vec![alaw_to_linear(0x90); 160]);
        expected.extend(vec![alaw_to_linear(0x20); 80]);
        assert_eq!(got, expected);
    }

    #[test]
    fn a_jump_over_one_second_restarts_without_filling() {
        let path = temp("jump");
        let mut rec = Recorder::create(&path).unwrap();
        rec.write(Law::Ulaw, 0, &[0x80; 160]).unwrap();
        // Exactly one second ahead: filled.
        rec.write(Law::Ulaw, 160 + MAX_GAP, &[0x81; 160]).unwrap();
        assert_eq!(rec.samples(), 320 + u64::from(MAX_GAP));
        // Far ahead, then far behind: each restarts the origin.
        rec.write(Law::Ulaw, 1_000_000, &[0x82; 160]).unwrap();
        rec.write(Law::Ulaw, 5, &[0x83; 160]).unwrap();
        // And the new origin holds: contiguous after it.
        rec.write(Law::Ulaw, 165, &[0x84; 160]).unwrap();
        let total = 320 + u64::from(MAX_GAP) + 480;
        assert_eq!(rec.samples(), total);
        rec.finish().unwrap();
        let got = read_back(&path);
        assert_eq!(got.len() as u64, total);
        let tail = &got[got.len() - 480..];
        assert_eq!(&tail[..160], &ulaw(&[0x82; 160])[..]);
        assert_eq!(&tail[160..320], &ulaw(&[0x83; 160])[..]);
        assert_eq!(&tail[320..], &ulaw(&[0x84; 160])[..]);
    }

    #[test]
    fn empty_recording_is_a_valid_wav() {
        let path = temp("empty");
        let mut rec = Recorder::create(&path).unwrap();
        rec.write(Law::Ulaw, 10, &[]).unwrap();
        assert_eq!(rec.samples(), 0);
        rec.finish().unwrap();
        assert!(read_back(&path).is_empty());
    }

    #[test]
    fn create_in_a_missing_directory_fails() {
        let path = std::env::temp_dir().join("sipwright-no-such-dir-xyz/a.wav");
        let e = Recorder::create(&path).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}

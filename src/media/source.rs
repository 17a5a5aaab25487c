//! What a stream plays: a WAV file decoded once to 8 kHz mono and pre-encoded per
//! G.711 law (shared by every call through an `Arc`), or the RTP payloads of one
//! stream in a pcap with their original timing.
//! CONTRACT STUB: implemented by the media-sources work; signatures are fixed.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::g711::Law;

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

/// Audio at 8 kHz mono, with both G.711 encodings ready.
#[derive(Debug)]
pub struct AudioClip {
    _private: (),
}

impl AudioClip {
    /// 16-bit PCM (any rate, any channel count: mixed down and resampled to 8 kHz),
    /// 8-bit PCM, IEEE float, or G.711 µ-law/A-law WAV.
    pub fn from_wav_file(_path: &Path) -> Result<AudioClip, SourceError> {
        todo!()
    }
    /// The same from bytes in memory (`name` for messages).
    pub fn from_wav_bytes(_bytes: &[u8], _name: &Path) -> Result<AudioClip, SourceError> {
        todo!()
    }
    /// Samples already at 8 kHz mono.
    pub fn from_samples(_samples: Vec<i16>) -> AudioClip {
        todo!()
    }
    pub fn samples(&self) -> &[i16] {
        todo!()
    }
    /// The clip encoded with `law`, one byte per sample.
    pub fn encoded(&self, _law: Law) -> &[u8] {
        todo!()
    }
    pub fn duration(&self) -> Duration {
        todo!()
    }
}

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
    _private: (),
}

impl PcapClip {
    /// The first RTP stream of the capture (or the selected one). Errors when the file
    /// is missing, is no capture, or holds no RTP (or not the selected stream).
    pub fn from_file(
        _path: &Path,
        _stream: Option<StreamSelector>,
    ) -> Result<PcapClip, SourceError> {
        todo!()
    }
    pub fn packets(&self) -> &[PcapPacket] {
        todo!()
    }
    pub fn payload(&self, _packet: &PcapPacket) -> &[u8] {
        let _ = &_packet.payload;
        todo!()
    }
    /// Offset of the last packet (0 for one packet).
    pub fn duration(&self) -> Duration {
        todo!()
    }
}

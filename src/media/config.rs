//! What a scenario asks of media: the `media:` block (codecs, telephone-event, ptime,
//! direction, recording, echo, SRTP) and the operands of the media steps, resolved at
//! compile time (files are loaded once and shared by every call).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::sdp::Direction;
use crate::sdp::negotiate::Codec;
use crate::srtp::Suite;

use super::dtmf::DtmfTiming;
use super::g711::Law;
use super::source::{AudioClip, PcapClip};

/// Codecs we can encode (and so offer and play WAV files with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
}

impl AudioCodec {
    pub fn parse(name: &str) -> Option<AudioCodec> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" | "G711U" | "ULAW" => Some(AudioCodec::Pcmu),
            "PCMA" | "G711A" | "ALAW" => Some(AudioCodec::Pcma),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
        }
    }
    pub fn payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
        }
    }
    pub fn law(self) -> Law {
        match self {
            AudioCodec::Pcmu => Law::Ulaw,
            AudioCodec::Pcma => Law::Alaw,
        }
    }
    pub fn sdp_codec(self) -> Codec {
        Codec {
            name: self.name().to_string(),
            payload_type: self.payload_type(),
            clock_rate: 8000,
        }
    }
    /// The codec an SDP name and clock rate stand for.
    pub fn of_sdp(codec: &Codec) -> Option<AudioCodec> {
        AudioCodec::parse(&codec.name).filter(|_| codec.clock_rate == 8000)
    }
}

/// The scenario's `media:` block, with defaults.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// In preference order.
    pub codecs: Vec<AudioCodec>,
    pub telephone_event: Option<u8>,
    pub ptime: Duration,
    pub direction: Direction,
    /// Write one WAV per call and direction here.
    pub record: Option<PathBuf>,
    /// Send back what arrives.
    pub echo: bool,
    /// Offer (and accept) RTCP multiplexed on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// SDES-SRTP (RFC 4568); None: plain RTP (an RTP/SAVP offer is refused with 488).
    pub srtp: Option<SrtpConfig>,
}

/// The `srtp*` keys of the `media:` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpConfig {
    /// Suites in preference order: one `a=crypto` line (with its own key) each.
    pub suites: Vec<Suite>,
    /// `RTP/SAVP` and no call without SRTP; false: `RTP/AVP` with crypto lines, plain
    /// RTP if the peer takes none.
    pub required: bool,
    /// MKI length in bytes carried in every packet (0: none).
    pub mki_len: u8,
    /// Key derivation rate exponent: session keys derive every 2^n packets (`KDR=n`).
    pub kdr_exp: Option<u8>,
}

impl SrtpConfig {
    /// What `uac-srtp`/`uas-srtp` offer: the three suites phones have in common.
    pub fn default_suites() -> Vec<Suite> {
        vec![
            Suite::AesCm128HmacSha1_80,
            Suite::AesCm128HmacSha1_32,
            Suite::AeadAes128Gcm,
        ]
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            codecs: vec![AudioCodec::Pcmu, AudioCodec::Pcma],
            telephone_event: Some(101),
            ptime: Duration::from_millis(20),
            direction: Direction::SendRecv,
            record: None,
            echo: false,
            rtcp_mux: false,
            srtp: None,
        }
    }
}

/// What `play` / `play_pcap` send.
#[derive(Clone, Debug)]
pub enum PlaySource {
    Audio(Arc<AudioClip>),
    Pcap(Arc<PcapClip>),
}

/// When a `play` stops by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Until `stop_media`, another `play`, or the end of the call.
    Bye,
    After(Duration),
}

#[derive(Clone, Debug)]
pub struct PlaySpec {
    pub source: PlaySource,
    pub looped: bool,
    pub until: Until,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfMode {
    /// RFC 4733 events in the RTP stream.
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay`, one per digit.
    Info,
}

#[derive(Clone, Debug)]
pub struct DtmfSpec {
    pub digits: String,
    pub timing: DtmfTiming,
    pub mode: DtmfMode,
}

/// `expect_media`: thresholds checked when the step runs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MediaExpectation {
    pub min_packets: Option<u64>,
    pub max_loss_pct: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    /// SRTP packets that failed authentication (or were replays) allowed; default 0
    /// on an SRTP stream.
    pub max_auth_failures: Option<u64>,
}

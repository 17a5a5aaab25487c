//! Media: RTP/RTCP packets, pacing, receive statistics, G.711, RFC 4733 DTMF, audio
//! sources and recording, SRTP protection of a call's stream, and the per-call stream
//! state machine. Sans-IO: input is
//! bytes and `now`, output is packets and the next deadline.

pub mod config;
pub mod control;
pub mod dtmf;
pub mod g711;
pub mod pacing;
pub mod protection;
pub mod recorder;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod source;
pub mod stats;
pub mod stream;

/// The sample the built-in media scenarios play (`media/sample.wav`), inside the
/// binary so they work from any directory.
pub const SAMPLE_WAV: &[u8] = include_bytes!("../../media/sample.wav");

//! `sipwright srtp decrypt`: recovering SRTP keys from the signalling in a capture and
//! applying them to the media flows.
//!
//! - `keys`: sans-IO tracker of SDP offer/answer in SIP that turns SDES keys into
//!   bindings (destination address → master key);
//! - `job`: the one-pass run over a capture (read, track keys, decrypt, write);
//! - `streams`: per-stream counts, DTMF digits and WAV files;
//! - `plain_sdp`: the output's SIP says RTP/AVP and carries no keys.

pub mod job;
pub mod keys;
pub mod plain_sdp;
pub mod streams;

pub use keys::{Binding, KeyTracker};

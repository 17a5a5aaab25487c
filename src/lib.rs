//! sipwright: SIP/RTP functional and load testing from YAML scenarios.
//!
//! The crate is split by layer (see ARCHITECTURE.md):
//! - [`sip`]: sans-IO message parsing/printing, transactions and dialogs;
//! - [`scenario`]: YAML → compiled plan → per-call interpreter;
//! - [`load`]: drivers that multiplex many calls over one socket, and run control;
//! - [`transport`]: socket set-up;
//! - [`srtp`]: SRTP/SRTCP protect and unprotect (sans-IO, per-SSRC state);
//! - [`report`]: counters and report files;
//! - [`sdp`]: lenient SDP parsing and the SDES `a=crypto` attribute;
//! - [`media`]: media payload codecs (G.711, RFC 4733 DTMF);
//! - [`capture`]: streaming pcap/pcapng reading, packet decoding, reassembly, rewriting;
//! - [`decrypt`]: SRTP decryption of captures (keys bound to media flows from SIP/SDP);
//! - [`torture`]: the torture pack and its runner (`sipwright torture`);
//! - [`from_pcap`]: one call of a capture → a UAC and a UAS scenario that replay it;
//! - [`cli`]: argument parsing and commands (the only place that uses `anyhow`).

pub mod capture;
pub mod cli;
pub mod decrypt;
pub mod from_pcap;
pub mod load;
pub mod media;
pub mod report;
pub mod scenario;
pub mod sdp;
pub mod sip;
pub mod srtp;
pub mod torture;
pub mod transport;

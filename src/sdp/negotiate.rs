//! SDP offer/answer (RFC 3264) for one audio stream: write our offer or answer,
//! read the peer's, and agree on codec, telephone-event, ptime, direction and where
//! to send RTP and RTCP.
//! CONTRACT STUB: implemented by the SDP offer/answer work; signatures are fixed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;

use super::session::Direction;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NegotiateError {
    #[error("SDP: {0}")]
    Parse(String),
    #[error("SDP has no audio stream (m=audio with a non-zero port)")]
    NoAudio,
    #[error("no common codec: we offer {ours}, the peer {theirs}")]
    NoCommonCodec { ours: String, theirs: String },
}

/// An audio codec as it appears in SDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name as in a=rtpmap (`PCMU`, `PCMA`, ...).
    pub name: String,
    pub payload_type: u8,
    pub clock_rate: u32,
}

/// What we put in our SDP.
#[derive(Clone, Debug)]
pub struct LocalMedia {
    pub ip: IpAddr,
    pub rtp_port: u16,
    /// Written as `a=rtcp:` when not rtp_port + 1 (RFC 3605); None: rtcp-mux only.
    pub rtcp_port: Option<u16>,
    /// Offer `a=rtcp-mux` (RFC 5761).
    pub rtcp_mux: bool,
    /// In preference order.
    pub codecs: Vec<Codec>,
    /// Payload type for telephone-event/8000 (`a=fmtp:PT 0-15`).
    pub telephone_event: Option<u8>,
    pub ptime: Duration,
    pub direction: Direction,
    /// o= session id and version.
    pub session_id: u64,
    pub session_version: u64,
}

/// The peer's audio stream as its SDP describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteMedia {
    pub rtp: SocketAddr,
    /// From a=rtcp, else port + 1 (same as `rtp` with rtcp-mux).
    pub rtcp: SocketAddr,
    pub rtcp_mux: bool,
    /// In the peer's order; static payload types without a=rtpmap get their RFC 3551 names.
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<u8>,
    pub ptime: Option<Duration>,
    /// As the peer wrote it (its point of view).
    pub direction: Direction,
}

/// What both sides agreed on, from our point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Audio codec with the payload type to send (the answerer uses the offer's).
    pub codec: Codec,
    pub telephone_event: Option<u8>,
    pub ptime: Duration,
    /// Our sending/receiving allowed by both directions.
    pub send: bool,
    pub receive: bool,
    /// Both sides said rtcp-mux.
    pub rtcp_mux: bool,
    pub remote_rtp: SocketAddr,
    pub remote_rtcp: SocketAddr,
}

/// Write our offer (a whole SDP body, CRLF lines) to `out`.
pub fn write_offer(_local: &LocalMedia, _out: &mut Vec<u8>) {
    todo!()
}

/// Write our answer to an offer we negotiated as `agreed` (the chosen codec and
/// telephone-event with the offer's payload types, the answering direction, rtcp-mux
/// only if offered).
pub fn write_answer(_local: &LocalMedia, _agreed: &Negotiated, _out: &mut Vec<u8>) {
    todo!()
}

/// The first audio stream with a non-zero port in `sdp`.
pub fn remote_media(_sdp: &str) -> Result<RemoteMedia, NegotiateError> {
    todo!()
}

/// Agree with the peer. As answerer (`we_offered` false): the first codec of the
/// offer we support. As offerer: the first codec of the answer that we offered.
pub fn negotiate(
    _local: &LocalMedia,
    _remote: &RemoteMedia,
    _we_offered: bool,
) -> Result<Negotiated, NegotiateError> {
    todo!()
}

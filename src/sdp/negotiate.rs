//! SDP offer/answer (RFC 3264) for one audio stream: write our offer or answer,
//! read the peer's, and agree on codec, telephone-event, ptime, direction and where
//! to send RTP and RTCP.
//!
//! Decisions worth knowing:
//! - Codecs match by encoding name (case-insensitive) and clock rate, never by payload
//!   type number: a PT is only a label that each side's SDP defines. We always send with
//!   the peer's PT (RFC 3264 §6.1 / §7).
//! - Hold: `a=sendonly`/`a=inactive` are read as written. The older RFC 2543 hold,
//!   `c=0.0.0.0` (or `::`), is accepted as a valid address and folded into the direction
//!   as "the peer does not want to receive" (RFC 3264 §8.4), so we never send to it.
//! - ptime: ours is used for what we send. The peer's `a=ptime` only says what it would
//!   like to receive (RFC 8866 §6.4) and is reported in [`RemoteMedia::ptime`] for the
//!   caller to log or honour.
//! - RTCP: [`RemoteMedia::rtcp`] is where RTCP goes *without* multiplexing (`a=rtcp`, else
//!   port + 1); only when both sides said `a=rtcp-mux` does [`Negotiated::remote_rtcp`]
//!   become the RTP address (RFC 5761 §5.1.1).
//! - SRTP (SDES, see [`super::sdes`]): decided after the codec, so a codec mismatch is
//!   reported first. Our offer is `RTP/SAVP` only when SRTP is required; the answer keeps
//!   the offer's profile. No usable `a=crypto` line means plain RTP, except when we
//!   require SRTP or the peer's m= line is RTP/SAVP(F): then the call fails, since one
//!   side would send what the other cannot read.

use std::fmt::Arguments;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;

use super::sdes::{SrtpPolicy, accept_answer, accept_offer, write_crypto};
use super::session::{Direction, Media, Sdp};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NegotiateError {
    #[error("SDP: {0}")]
    Parse(String),
    #[error("SDP has no audio stream (m=audio with a non-zero port)")]
    NoAudio,
    #[error("no common codec: we offer {ours}, the peer {theirs}")]
    NoCommonCodec { ours: String, theirs: String },
    /// SRTP is required (by us, or by the offer's RTP/SAVP profile) and no `a=crypto`
    /// line is usable; the text says what was there and what we wanted.
    #[error("no usable SRTP crypto: {0}")]
    NoUsableCrypto(String),
    /// The offer is RTP/SAVP but this side's media has no `srtp:` setting.
    #[error("the peer offers SRTP only ({0}); add `srtp:` to the scenario's media block")]
    SrtpNotConfigured(String),
}

/// An audio codec as it appears in SDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name as in a=rtpmap (`PCMU`, `PCMA`, ...).
    pub name: String,
    pub payload_type: u8,
    pub clock_rate: u32,
}

impl Codec {
    /// Same codec regardless of payload type number and name case.
    fn same_as(&self, other: &Codec) -> bool {
        self.clock_rate == other.clock_rate && self.name.eq_ignore_ascii_case(&other.name)
    }
}

/// What we put in our SDP.
#[derive(Clone, Debug)]
pub struct LocalMedia {
    pub ip: IpAddr,
    pub rtp_port: u16,
    /// Written as `a=rtcp:` when not rtp_port + 1 (RFC 3605); None: rtcp-mux only
    /// (written as `a=rtcp:<rtp_port>`, so a peer that ignores rtcp-mux still sends its
    /// RTCP to the one port we have).
    pub rtcp_port: Option<u16>,
    /// Offer `a=rtcp-mux` (RFC 5761).
    pub rtcp_mux: bool,
    /// In preference order.
    pub codecs: Vec<Codec>,
    /// Payload type for telephone-event/8000 (`a=fmtp:PT 0-16`).
    pub telephone_event: Option<u8>,
    pub ptime: Duration,
    pub direction: Direction,
    /// Our RTP SSRC, announced as `a=ssrc:N cname:sipwright` (RFC 5576) so a peer
    /// that receives many streams on one port can tell them apart.
    pub ssrc: Option<u32>,
    /// SDES: our crypto lines and whether SRTP is required (None: plain RTP only).
    pub srtp: Option<super::sdes::LocalSrtp>,
    /// o= session id and version.
    pub session_id: u64,
    pub session_version: u64,
}

/// The peer's audio stream as its SDP describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteMedia {
    pub rtp: SocketAddr,
    /// From a=rtcp, else port + 1: where RTCP goes when rtcp-mux is not agreed
    /// ([`Negotiated::remote_rtcp`] is `rtp` when it is).
    pub rtcp: SocketAddr,
    pub rtcp_mux: bool,
    /// In the peer's order; static payload types without a=rtpmap get their RFC 3551 names.
    /// telephone-event is not listed here but in `telephone_event`.
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<u8>,
    /// The peer's `a=ptime` (what it prefers to receive); a hint only.
    pub ptime: Option<Duration>,
    /// As the peer wrote it (its point of view), except that `c=0.0.0.0` hold removes
    /// the peer's receiving.
    pub direction: Direction,
    /// The first `a=ssrc` of the stream (RFC 5576), when given.
    pub ssrc: Option<u32>,
    /// The m= line's profile is RTP/SAVP or RTP/SAVPF (SRTP required by the peer).
    pub savp: bool,
    /// The stream's `a=crypto` lines, in the peer's order.
    pub crypto: Vec<super::Crypto>,
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
    /// The peer's SSRC from its SDP, when it said.
    pub remote_ssrc: Option<u32>,
    /// SDES-SRTP, when both sides agreed on a crypto line.
    pub srtp: Option<super::sdes::SrtpAgreed>,
}

/// RFC 3551 table 4: audio payload types with a fixed meaning, used when the peer lists
/// one without `a=rtpmap` (SDP allows that, and SIPp-style UAs do it).
const STATIC_AUDIO: &[(u8, &str, u32)] = &[
    (0, "PCMU", 8000),
    (3, "GSM", 8000),
    (4, "G723", 8000),
    (5, "DVI4", 8000),
    (6, "DVI4", 16000),
    (7, "LPC", 8000),
    (8, "PCMA", 8000),
    (9, "G722", 8000),
    (10, "L16", 44100),
    (11, "L16", 44100),
    (12, "QCELP", 8000),
    (13, "CN", 8000),
    (14, "MPA", 90000),
    (15, "G728", 8000),
    (16, "DVI4", 11025),
    (17, "DVI4", 22050),
    (18, "G729", 8000),
];

/// RTP has 7 bits of payload type; anything larger in SDP cannot be sent.
const MAX_PT: u8 = 127;

/// Write our offer (a whole SDP body, CRLF lines) to `out`.
pub fn write_offer(local: &LocalMedia, out: &mut Vec<u8>) {
    let mut pts: Vec<u8> = local.codecs.iter().map(|c| c.payload_type).collect();
    pts.extend(local.telephone_event);
    write_session(local, out);
    // Best effort offers RTP/AVP with crypto lines: a peer without SRTP still answers.
    let savp = local
        .srtp
        .as_ref()
        .is_some_and(|s| s.policy == SrtpPolicy::Required);
    write_m_line(local.rtp_port, savp, &pts, out);
    for c in &local.codecs {
        write_rtpmap(c, out);
    }
    if let Some(te) = local.telephone_event {
        write_telephone_event(te, out);
    }
    for k in local.srtp.iter().flat_map(|s| &s.keys) {
        write_crypto(k.tag, &k.key, out);
    }
    write_media_tail(local, local.ptime, local.rtcp_mux, local.direction, out);
}

/// Write our answer to an offer we negotiated as `agreed` (the chosen codec and
/// telephone-event with the offer's payload types, the answering direction, rtcp-mux
/// only if offered).
///
/// The answer has a single `m=audio` line. When the offer had other streams (video,
/// a rejected audio line before the one we took), use [`write_answer_to_offer`] so the
/// answer keeps the offer's m= line positions (RFC 3264 §6).
pub fn write_answer(local: &LocalMedia, agreed: &Negotiated, out: &mut Vec<u8>) {
    write_session(local, out);
    write_answer_audio(local, agreed, out);
}

/// [`write_answer`] for an offer with any number of streams: every m= line of `offer`
/// other than the audio stream [`remote_media`] picks is rejected (port 0, its first
/// format kept, as RFC 3264 §6 asks), so offer and answer pair up by position.
/// An offer that does not parse gets the single-stream answer.
pub fn write_answer_to_offer(
    local: &LocalMedia,
    agreed: &Negotiated,
    offer: &str,
    out: &mut Vec<u8>,
) {
    let Ok(sdp) = super::session::parse(offer) else {
        return write_answer(local, agreed, out);
    };
    let chosen = audio_index(&sdp);
    write_session(local, out);
    for (i, m) in sdp.media.iter().enumerate() {
        if Some(i) == chosen {
            write_answer_audio(local, agreed, out);
        } else {
            // Kind, proto and format come from the peer; keep them to one clean token
            // each so a hostile offer cannot inject lines into our answer.
            let kind = token(&m.kind, "audio");
            let proto = token(&m.proto, "RTP/AVP");
            let fmt = m.formats.first().map_or("0", |f| token(f, "0"));
            line(out, format_args!("m={kind} 0 {proto} {fmt}"));
        }
    }
    if chosen.is_none() {
        // The offer had no usable audio; still answer with ours rather than nothing.
        write_answer_audio(local, agreed, out);
    }
}

/// The first audio stream with a non-zero port in `sdp`.
pub fn remote_media(sdp: &str) -> Result<RemoteMedia, NegotiateError> {
    let parsed = super::session::parse(sdp).map_err(|e| NegotiateError::Parse(e.to_string()))?;
    let index = audio_index(&parsed).ok_or(NegotiateError::NoAudio)?;
    let m = &parsed.media[index];
    let ip = m.connection.ok_or_else(|| {
        NegotiateError::Parse(
            "audio stream has no usable c= address (missing or a host name)".into(),
        )
    })?;
    let rtp = SocketAddr::new(ip, m.port);
    // RFC 3605: without a=rtcp, RTCP is on the next port. 65535 has none; keep the port
    // rather than wrap to 0.
    let rtcp = match m.rtcp {
        Some((port, addr)) => SocketAddr::new(addr.unwrap_or(ip), port),
        None => SocketAddr::new(ip, m.port.saturating_add(1)),
    };

    let mut codecs = Vec::new();
    let mut telephone_event = None;
    for pt in m.formats.iter().filter_map(|f| f.parse::<u8>().ok()) {
        if pt > MAX_PT || codecs.iter().any(|c: &Codec| c.payload_type == pt) {
            continue;
        }
        if let Some(map) = m.rtpmap.iter().find(|r| r.payload_type == pt) {
            if map.encoding.eq_ignore_ascii_case("telephone-event") {
                // We only generate 8 kHz events; a 48 kHz one (opus calls) is of no use.
                if map.clock_rate == 8000 && telephone_event.is_none() {
                    telephone_event = Some(pt);
                }
                continue;
            }
            codecs.push(Codec {
                name: map.encoding.clone(),
                payload_type: pt,
                clock_rate: map.clock_rate,
            });
        } else if let Some(&(_, name, rate)) = STATIC_AUDIO.iter().find(|s| s.0 == pt) {
            codecs.push(Codec {
                name: name.to_owned(),
                payload_type: pt,
                clock_rate: rate,
            });
        }
        // A dynamic PT without a=rtpmap names nothing we could match: skipped.
    }

    let mut direction = m.direction;
    if ip.is_unspecified() {
        // RFC 2543 hold: "do not send to me". Keep the peer's sending, drop its receiving.
        direction = from_flags(sends(direction), false);
    }
    Ok(RemoteMedia {
        rtp,
        rtcp,
        rtcp_mux: m.rtcp_mux,
        codecs,
        telephone_event,
        ptime: media_ptime(sdp, index),
        direction,
        ssrc: media_ssrc(sdp, index),
        savp: ["RTP/SAVP", "RTP/SAVPF"]
            .iter()
            .any(|p| m.proto.eq_ignore_ascii_case(p)),
        crypto: m.crypto.clone(),
    })
}

/// Agree with the peer. As answerer (`we_offered` false): the first codec of the
/// offer we support. As offerer: the first codec of the answer that we offered.
///
/// Both codec roles reduce to "the peer's first codec that we also have, with the
/// peer's payload type": the offerer's preference order is the offer's, and a
/// conforming answer keeps it (RFC 3264 §6.1). SRTP differs by role: the answerer picks
/// an offer line, the offerer finds the line the answer echoed (see [`super::sdes`]).
pub fn negotiate(
    local: &LocalMedia,
    remote: &RemoteMedia,
    we_offered: bool,
) -> Result<Negotiated, NegotiateError> {
    let codec = remote
        .codecs
        .iter()
        .find(|theirs| {
            theirs.payload_type <= MAX_PT && local.codecs.iter().any(|ours| ours.same_as(theirs))
        })
        .cloned()
        .ok_or_else(|| {
            let names = |cs: &[Codec]| {
                if cs.is_empty() {
                    "none".to_owned()
                } else {
                    cs.iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            NegotiateError::NoCommonCodec {
                ours: names(&local.codecs),
                theirs: names(&remote.codecs),
            }
        })?;
    let telephone_event = match (local.telephone_event, remote.telephone_event) {
        (Some(_), Some(pt)) if pt <= MAX_PT => Some(pt),
        _ => None,
    };
    // The peer's direction is its own view: its sending is our receiving.
    let send =
        sends(local.direction) && receives(remote.direction) && !remote.rtp.ip().is_unspecified();
    let receive = receives(local.direction) && sends(remote.direction);
    let rtcp_mux = local.rtcp_mux && remote.rtcp_mux;
    let srtp = if we_offered {
        accept_answer(local.srtp.as_ref(), remote.savp, &remote.crypto)?
    } else {
        accept_offer(local.srtp.as_ref(), remote.savp, &remote.crypto)?
    };
    Ok(Negotiated {
        codec,
        telephone_event,
        ptime: local.ptime,
        send,
        receive,
        rtcp_mux,
        remote_rtp: remote.rtp,
        remote_rtcp: if rtcp_mux { remote.rtp } else { remote.rtcp },
        remote_ssrc: remote.ssrc,
        srtp,
    })
}

/// Index of the first `m=audio` with a non-zero port: the stream this module handles.
fn audio_index(sdp: &Sdp) -> Option<usize> {
    sdp.media
        .iter()
        .position(|m: &Media| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
}

/// The first `a=ssrc:N ...` of the `index`-th media section.
fn media_ssrc(text: &str, index: usize) -> Option<u32> {
    let mut section: Option<usize> = None;
    for raw in text.split('\n') {
        let Some((kind, value)) = raw.trim().split_once('=') else {
            continue;
        };
        match kind {
            "m" => section = Some(section.map_or(0, |s| s + 1)),
            "a" if section == Some(index) => {
                if let Some(rest) = value.strip_prefix("ssrc:") {
                    let id = rest.split_whitespace().next()?;
                    return id.parse().ok();
                }
            }
            _ => {}
        }
    }
    None
}

/// `a=ptime` of the `index`-th media section, else a session-level one (not allowed
/// by RFC 8866, but written by some UAs). The session parser does not keep ptime, so
/// walk the lines the same way it does to find the same section.
fn media_ptime(text: &str, index: usize) -> Option<Duration> {
    let mut section: Option<usize> = None;
    let mut session_level = None;
    let mut media_level = None;
    for raw in text.split('\n') {
        let Some((kind, value)) = raw.trim().split_once('=') else {
            continue;
        };
        match kind {
            "m" => section = Some(section.map_or(0, |s| s + 1)),
            "a" => {
                let Some((name, arg)) = value.split_once(':') else {
                    continue;
                };
                if !name.trim().eq_ignore_ascii_case("ptime") {
                    continue;
                }
                match section {
                    None if session_level.is_none() => session_level = parse_ptime(arg),
                    Some(s) if s == index && media_level.is_none() => {
                        media_level = parse_ptime(arg)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    media_level.or(session_level)
}

/// Milliseconds, possibly fractional (`20`, `22.5`). Zero, negative, absurd (> 10 s) or
/// junk values are ignored rather than trusted.
fn parse_ptime(arg: &str) -> Option<Duration> {
    let ms: f64 = arg.trim().parse().ok()?;
    (ms.is_finite() && ms > 0.0 && ms <= 10_000.0)
        .then(|| Duration::from_micros((ms * 1000.0).round() as u64))
}

fn sends(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::SendOnly)
}

fn receives(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::RecvOnly)
}

fn from_flags(send: bool, receive: bool) -> Direction {
    match (send, receive) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::SendRecv => "sendrecv",
        Direction::SendOnly => "sendonly",
        Direction::RecvOnly => "recvonly",
        Direction::Inactive => "inactive",
    }
}

/// One CRLF-terminated line.
fn line(out: &mut Vec<u8>, args: Arguments<'_>) {
    // Writing into a Vec cannot fail.
    let _ = out.write_fmt(args);
    out.extend_from_slice(b"\r\n");
}

/// `word` if it is one printable token, else `fallback`.
fn token<'a>(word: &'a str, fallback: &'a str) -> &'a str {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_graphic()) {
        word
    } else {
        fallback
    }
}

/// v=, o=, s=, c=, t=. A v4-mapped v6 address (dual-stack sockets report those) is
/// written as the IPv4 address it is; IPv6 goes unbracketed, as SDP wants.
fn write_session(local: &LocalMedia, out: &mut Vec<u8>) {
    let ip = local.ip.to_canonical();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    line(out, format_args!("v=0"));
    line(
        out,
        format_args!(
            "o=sipwright {} {} IN {family} {ip}",
            local.session_id, local.session_version
        ),
    );
    line(out, format_args!("s=-"));
    line(out, format_args!("c=IN {family} {ip}"));
    line(out, format_args!("t=0 0"));
}

fn write_m_line(port: u16, savp: bool, pts: &[u8], out: &mut Vec<u8>) {
    let proto = if savp { "RTP/SAVP" } else { "RTP/AVP" };
    let _ = write!(out, "m=audio {port} {proto}");
    for pt in pts {
        let _ = write!(out, " {pt}");
    }
    out.extend_from_slice(b"\r\n");
}

fn write_rtpmap(c: &Codec, out: &mut Vec<u8>) {
    let name = token(&c.name, "unknown");
    // RFC 7587: opus is always declared with two channels.
    let channels = if name.eq_ignore_ascii_case("opus") {
        "/2"
    } else {
        ""
    };
    line(
        out,
        format_args!(
            "a=rtpmap:{} {name}/{}{channels}",
            c.payload_type, c.clock_rate
        ),
    );
}

fn write_telephone_event(pt: u8, out: &mut Vec<u8>) {
    line(out, format_args!("a=rtpmap:{pt} telephone-event/8000"));
    // 0-15 are the DTMF digits, 16 flash (RFC 4733).
    line(out, format_args!("a=fmtp:{pt} 0-16"));
}

/// ptime, a=rtcp, a=rtcp-mux and the direction: the part offer and answer share.
fn write_media_tail(
    local: &LocalMedia,
    ptime: Duration,
    mux: bool,
    direction: Direction,
    out: &mut Vec<u8>,
) {
    let ms = ptime.as_millis();
    if ms > 0 {
        line(out, format_args!("a=ptime:{ms}"));
    }
    match local.rtcp_port {
        // RFC 3605: only worth saying when it is not the default.
        Some(p) if Some(p) == local.rtp_port.checked_add(1) => {}
        Some(p) => line(out, format_args!("a=rtcp:{p}")),
        None => line(out, format_args!("a=rtcp:{}", local.rtp_port)),
    }
    if mux {
        line(out, format_args!("a=rtcp-mux"));
    }
    if let Some(ssrc) = local.ssrc {
        line(out, format_args!("a=ssrc:{ssrc} cname:sipwright"));
    }
    line(out, format_args!("a={}", direction_name(direction)));
}

fn write_answer_audio(local: &LocalMedia, agreed: &Negotiated, out: &mut Vec<u8>) {
    let mut pts = vec![agreed.codec.payload_type];
    pts.extend(agreed.telephone_event);
    let savp = agreed.srtp.as_ref().is_some_and(|s| s.savp);
    write_m_line(local.rtp_port, savp, &pts, out);
    write_rtpmap(&agreed.codec, out);
    if let Some(te) = agreed.telephone_event {
        write_telephone_event(te, out);
    }
    // One line: the offer's tag with the key we send with (RFC 4568 §5.1.2).
    if let Some(s) = &agreed.srtp {
        write_crypto(s.tag, &s.local, out);
    }
    // send/receive already are ours intersected with the offer's mirror: exactly the
    // answer's direction (offer sendonly → recvonly, recvonly → sendonly, ...).
    let direction = from_flags(agreed.send, agreed.receive);
    write_media_tail(local, agreed.ptime, agreed.rtcp_mux, direction, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::sdes::{LocalSrtp, SdesKey};
    use crate::srtp::{MasterKey, Suite};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn codec(name: &str, pt: u8) -> Codec {
        Codec {
            name: name.into(),
            payload_type: pt,
            clock_rate: 8000,
        }
    }

    fn local() -> LocalMedia {
        LocalMedia {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            rtp_port: 20000,
            rtcp_port: Some(20001),
            rtcp_mux: false,
            codecs: vec![codec("PCMU", 0), codec("PCMA", 8)],
            telephone_event: Some(101),
            ptime: Duration::from_millis(20),
            direction: Direction::SendRecv,
            ssrc: None,
            srtp: None,
            session_id: 42,
            session_version: 7,
        }
    }

    #[test]
    fn ssrc_is_announced_and_read_back() {
        let mut out = Vec::new();
        write_offer(
            &LocalMedia {
                ssrc: Some(0xdead_beef),
                ..local()
            },
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("a=ssrc:3735928559 cname:sipwright\r\n"),
            "{text}"
        );
        let r = remote_media(&text).unwrap();
        assert_eq!(r.ssrc, Some(0xdead_beef));
        assert_eq!(
            negotiate(&local(), &r, false).unwrap().remote_ssrc,
            Some(0xdead_beef)
        );
        assert_eq!(
            remote_media("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 1 RTP/AVP 0\r\n")
                .unwrap()
                .ssrc,
            None
        );
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A minimal peer SDP around the given media section.
    fn peer(media: &str) -> String {
        format!(
            "v=0\r\no=peer 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\n{media}"
        )
    }

    #[test]
    fn offer_exact_text() {
        let offer = text(|o| write_offer(&local(), o));
        assert_eq!(
            offer,
            "v=0\r\no=sipwright 42 7 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
             m=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn offer_round_trips_through_remote_media() {
        let mut l = local();
        l.rtcp_port = Some(20011);
        l.rtcp_mux = true;
        l.direction = Direction::SendOnly;
        l.ptime = Duration::from_millis(30);
        l.codecs.push(Codec {
            name: "opus".into(),
            payload_type: 111,
            clock_rate: 48000,
        });
        let offer = text(|o| write_offer(&l, o));
        assert!(offer.contains("a=rtcp:20011\r\n"));
        assert!(offer.contains("a=rtpmap:111 opus/48000/2\r\n"));
        let r = remote_media(&offer).unwrap();
        assert_eq!(r.rtp, addr("192.0.2.10:20000"));
        assert_eq!(r.rtcp, addr("192.0.2.10:20011"));
        assert!(r.rtcp_mux);
        assert_eq!(r.codecs, l.codecs);
        assert_eq!(r.telephone_event, Some(101));
        assert_eq!(r.ptime, Some(Duration::from_millis(30)));
        assert_eq!(r.direction, Direction::SendOnly);
    }

    #[test]
    fn offer_rtcp_mux_only_names_the_rtp_port() {
        let mut l = local();
        l.rtcp_port = None;
        l.rtcp_mux = true;
        let offer = text(|o| write_offer(&l, o));
        assert!(offer.contains("a=rtcp:20000\r\na=rtcp-mux\r\n"), "{offer}");
    }

    #[test]
    fn offer_ipv6_unbracketed_and_mapped_v4_written_as_v4() {
        let mut l = local();
        l.ip = "2001:db8::10".parse().unwrap();
        let offer = text(|o| write_offer(&l, o));
        assert!(offer.contains("o=sipwright 42 7 IN IP6 2001:db8::10\r\n"));
        assert!(offer.contains("c=IN IP6 2001:db8::10\r\n"));
        let r = remote_media(&offer).unwrap();
        assert_eq!(r.rtp, addr("[2001:db8::10]:20000"));
        assert_eq!(r.rtcp, addr("[2001:db8::10]:20001"));

        l.ip = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        let offer = text(|o| write_offer(&l, o));
        assert!(offer.contains("c=IN IP4 192.0.2.1\r\n"), "{offer}");
    }

    #[test]
    fn answer_picks_offers_first_supported_codec_with_its_pt() {
        // The offer prefers PCMA and numbers things its own way.
        let offer = peer(
            "m=audio 30000 RTP/AVP 8 0 96\r\na=rtpmap:8 pcma/8000\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:96 Telephone-Event/8000\r\na=fmtp:96 0-15\r\n",
        );
        let r = remote_media(&offer).unwrap();
        let n = negotiate(&local(), &r, false).unwrap();
        assert_eq!(n.codec, codec("pcma", 8));
        assert_eq!(
            n.telephone_event,
            Some(96),
            "we send events with the peer's PT"
        );
        assert!(n.send && n.receive && !n.rtcp_mux);
        assert_eq!(n.remote_rtp, addr("198.51.100.5:30000"));
        assert_eq!(n.remote_rtcp, addr("198.51.100.5:30001"));

        let answer = text(|o| write_answer(&local(), &n, o));
        assert_eq!(
            answer,
            "v=0\r\no=sipwright 42 7 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
             m=audio 20000 RTP/AVP 8 96\r\na=rtpmap:8 pcma/8000\r\n\
             a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        // And the offerer, reading our answer, agrees on the same PTs.
        let back = remote_media(&answer).unwrap();
        let mut offerer = local();
        offerer.codecs = vec![codec("PCMA", 8), codec("PCMU", 0)];
        offerer.telephone_event = Some(96);
        let n2 = negotiate(&offerer, &back, true).unwrap();
        assert_eq!((n2.codec.payload_type, n2.telephone_event), (8, Some(96)));
    }

    #[test]
    fn matching_is_by_name_and_rate_not_pt() {
        // Same PT number, different codec; and our codec under another dynamic PT.
        let mut l = local();
        l.codecs = vec![Codec {
            name: "opus".into(),
            payload_type: 111,
            clock_rate: 48000,
        }];
        let offer = peer(
            "m=audio 30000 RTP/AVP 111 107 0\r\na=rtpmap:111 G722/16000\r\n\
             a=rtpmap:107 OPUS/48000/2\r\n",
        );
        let n = negotiate(&l, &remote_media(&offer).unwrap(), false).unwrap();
        assert_eq!(n.codec.payload_type, 107);
        // Same name, other clock rate: not the same codec.
        let offer = peer("m=audio 30000 RTP/AVP 111\r\na=rtpmap:111 opus/16000\r\n");
        assert!(matches!(
            negotiate(&l, &remote_media(&offer).unwrap(), false),
            Err(NegotiateError::NoCommonCodec { .. })
        ));
    }

    #[test]
    fn offerer_takes_answers_first_codec_we_offered() {
        // A sloppy answer lists a codec we never offered first, then two of ours.
        let answer = peer("m=audio 30000 RTP/AVP 18 8 0\r\na=rtpmap:18 G729/8000\r\n");
        let n = negotiate(&local(), &remote_media(&answer).unwrap(), true).unwrap();
        assert_eq!(n.codec, codec("PCMA", 8));
        assert_eq!(n.telephone_event, None, "the answer had none");
    }

    #[test]
    fn no_common_codec_lists_both_sides() {
        let offer = peer("m=audio 30000 RTP/AVP 18\r\n");
        let e = negotiate(&local(), &remote_media(&offer).unwrap(), false).unwrap_err();
        assert_eq!(
            e,
            NegotiateError::NoCommonCodec {
                ours: "PCMU, PCMA".into(),
                theirs: "G729".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "no common codec: we offer PCMU, PCMA, the peer G729"
        );
        // Only telephone-event and an unmapped dynamic PT: nothing to name.
        let offer = peer("m=audio 30000 RTP/AVP 96 97\r\na=rtpmap:96 telephone-event/8000\r\n");
        let e = negotiate(&local(), &remote_media(&offer).unwrap(), false).unwrap_err();
        assert!(matches!(e, NegotiateError::NoCommonCodec { theirs, .. } if theirs == "none"));
    }

    #[test]
    fn telephone_event_only_when_both_have_it() {
        let offer = peer("m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        let r = remote_media(&offer).unwrap();
        let mut l = local();
        l.telephone_event = None;
        let n = negotiate(&l, &r, false).unwrap();
        assert_eq!(n.telephone_event, None);
        let answer = text(|o| write_answer(&l, &n, o));
        assert!(answer.contains("m=audio 20000 RTP/AVP 0\r\n"));
        assert!(!answer.contains("telephone-event"));
        // A 48 kHz telephone-event (opus calls) is not one we can send.
        let offer = peer(
            "m=audio 30000 RTP/AVP 0 110 101\r\na=rtpmap:110 telephone-event/48000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n",
        );
        assert_eq!(remote_media(&offer).unwrap().telephone_event, Some(101));
    }

    #[test]
    fn sipp_default_uac_sdp() {
        // SIPp's uac scenario body (its [media_ip]/[media_port] filled in).
        let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
                   c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n\
                   a=rtpmap:0 PCMU/8000\r\n";
        let r = remote_media(sdp).unwrap();
        assert_eq!(r.rtp, addr("127.0.0.1:6000"));
        assert_eq!(r.rtcp, addr("127.0.0.1:6001"));
        assert_eq!(r.codecs, vec![codec("PCMU", 0)]);
        assert_eq!((r.telephone_event, r.ptime), (None, None));
        assert_eq!(r.direction, Direction::SendRecv);
        let n = negotiate(&local(), &r, false).unwrap();
        assert_eq!(n.codec, codec("PCMU", 0));
        assert_eq!(n.ptime, Duration::from_millis(20));
        // Without the rtpmap the static PT still names PCMU.
        let bare = sdp.replace("a=rtpmap:0 PCMU/8000\r\n", "");
        assert_eq!(remote_media(&bare).unwrap().codecs, vec![codec("PCMU", 0)]);
    }

    #[test]
    fn static_payload_types_named_per_rfc3551() {
        let r = remote_media(&peer("m=audio 30000 RTP/AVP 3 4 9 18 8 0 13\r\n")).unwrap();
        let names: Vec<_> = r
            .codecs
            .iter()
            .map(|c| (c.payload_type, c.name.as_str(), c.clock_rate))
            .collect();
        assert_eq!(
            names,
            [
                (3, "GSM", 8000),
                (4, "G723", 8000),
                (9, "G722", 8000),
                (18, "G729", 8000),
                (8, "PCMA", 8000),
                (0, "PCMU", 8000),
                (13, "CN", 8000)
            ]
        );
    }

    #[test]
    fn rtpengine_rewritten_sdp() {
        // What an rtpengine-fronted proxy typically hands on: own o=, a=rtcp, mux offered.
        let sdp = "v=0\r\no=- 1545997027 1 IN IP4 203.0.113.7\r\ns=tester\r\nt=0 0\r\n\
                   m=audio 35012 RTP/AVP 8 0 101\r\nc=IN IP4 203.0.113.7\r\n\
                   a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
                   a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
                   a=sendrecv\r\na=rtcp:35013\r\na=rtcp-mux\r\na=ptime:20\r\n";
        let r = remote_media(sdp).unwrap();
        assert_eq!(r.rtp, addr("203.0.113.7:35012"));
        assert_eq!(r.rtcp, addr("203.0.113.7:35013"));
        assert!(r.rtcp_mux);
        assert_eq!(r.ptime, Some(Duration::from_millis(20)));
        assert_eq!(r.telephone_event, Some(101));

        // We do not want mux: RTCP goes to the a=rtcp port.
        let n = negotiate(&local(), &r, false).unwrap();
        assert_eq!(n.codec, codec("PCMA", 8));
        assert!(!n.rtcp_mux);
        assert_eq!(n.remote_rtcp, addr("203.0.113.7:35013"));
        let answer = text(|o| write_answer(&local(), &n, o));
        assert!(!answer.contains("rtcp-mux"));

        // We do: RTCP goes to the RTP address and the answer says so.
        let mut l = local();
        l.rtcp_mux = true;
        let n = negotiate(&l, &r, false).unwrap();
        assert!(n.rtcp_mux);
        assert_eq!(n.remote_rtcp, n.remote_rtp);
        let answer = text(|o| write_answer(&l, &n, o));
        assert!(answer.contains("a=rtcp-mux\r\n"));
    }

    #[test]
    fn rtcp_mux_only_on_our_side() {
        let mut l = local();
        l.rtcp_mux = true;
        let r = remote_media(&peer("m=audio 30000 RTP/AVP 0\r\n")).unwrap();
        let n = negotiate(&l, &r, false).unwrap();
        assert!(!n.rtcp_mux);
        assert_eq!(n.remote_rtcp, addr("198.51.100.5:30001"));
        assert!(!text(|o| write_answer(&l, &n, o)).contains("rtcp-mux"));
    }

    #[test]
    fn a_rtcp_with_other_port_and_address() {
        let r = remote_media(&peer(
            "m=audio 30000 RTP/AVP 0\r\na=rtcp:40001 IN IP4 198.51.100.99\r\n",
        ))
        .unwrap();
        assert_eq!(r.rtcp, addr("198.51.100.99:40001"));
        let r = remote_media(&peer("m=audio 30000 RTP/AVP 0\r\na=rtcp:31111\r\n")).unwrap();
        assert_eq!(r.rtcp, addr("198.51.100.5:31111"));
        // Answer with our own non-default RTCP port.
        let mut l = local();
        l.rtcp_port = Some(20101);
        let n = negotiate(&l, &r, false).unwrap();
        assert!(text(|o| write_answer(&l, &n, o)).contains("a=rtcp:20101\r\n"));
    }

    #[test]
    fn directions_combine() {
        use Direction::*;
        // (ours, theirs) → (we send, we receive, our answer's direction)
        let cases = [
            (SendRecv, SendRecv, true, true, SendRecv),
            (SendRecv, SendOnly, false, true, RecvOnly),
            (SendRecv, RecvOnly, true, false, SendOnly),
            (SendRecv, Inactive, false, false, Inactive),
            (SendOnly, SendRecv, true, false, SendOnly),
            (SendOnly, SendOnly, false, false, Inactive),
            (RecvOnly, SendOnly, false, true, RecvOnly),
            (RecvOnly, RecvOnly, false, false, Inactive),
            (Inactive, SendRecv, false, false, Inactive),
        ];
        for (ours, theirs, send, receive, answer_dir) in cases {
            let mut l = local();
            l.direction = ours;
            let offer = peer(&format!(
                "m=audio 30000 RTP/AVP 0\r\na={}\r\n",
                direction_name(theirs)
            ));
            let r = remote_media(&offer).unwrap();
            assert_eq!(r.direction, theirs);
            let n = negotiate(&l, &r, false).unwrap();
            assert_eq!(
                (n.send, n.receive),
                (send, receive),
                "{ours:?} vs {theirs:?}"
            );
            let answer = text(|o| write_answer(&l, &n, o));
            let want = format!("a={}\r\n", direction_name(answer_dir));
            assert!(answer.ends_with(&want), "{ours:?} vs {theirs:?}: {answer}");
        }
    }

    #[test]
    fn session_level_direction_applies() {
        let sdp = "v=0\r\nc=IN IP4 198.51.100.5\r\na=sendonly\r\nm=audio 30000 RTP/AVP 0\r\n";
        assert_eq!(remote_media(sdp).unwrap().direction, Direction::SendOnly);
    }

    #[test]
    fn old_style_hold_zero_address() {
        // c=0.0.0.0: the peer does not want media; it may still send (RFC 3264 §8.4).
        let sdp = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 30000 RTP/AVP 0\r\n";
        let r = remote_media(sdp).unwrap();
        assert_eq!(r.rtp, addr("0.0.0.0:30000"));
        assert_eq!(r.direction, Direction::SendOnly);
        let n = negotiate(&local(), &r, false).unwrap();
        assert!(!n.send && n.receive);
        assert!(text(|o| write_answer(&local(), &n, o)).contains("a=recvonly\r\n"));
        // Together with a=inactive, or as IPv6 ::.
        let sdp = "v=0\r\nc=IN IP6 ::\r\nm=audio 30000 RTP/AVP 0\r\na=inactive\r\n";
        let r = remote_media(sdp).unwrap();
        assert_eq!(r.direction, Direction::Inactive);
        let n = negotiate(&local(), &r, false).unwrap();
        assert!(!n.send && !n.receive);
        // A hand-built RemoteMedia to 0.0.0.0 still gets nothing sent to it.
        let r = RemoteMedia {
            direction: Direction::SendRecv,
            ..remote_media("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\n").unwrap()
        };
        assert!(!negotiate(&local(), &r, false).unwrap().send);
    }

    #[test]
    fn ipv6_peer_with_media_level_c_and_bracketed_rtcp_address() {
        let sdp = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
                   m=audio 5004 RTP/AVP 0\r\nc=IN IP6 2001:db8::2\r\n\
                   a=rtcp:5009 IN IP6 2001:db8::3\r\n";
        let r = remote_media(sdp).unwrap();
        let v6 = |s: &str, p| SocketAddr::new(IpAddr::V6(s.parse::<Ipv6Addr>().unwrap()), p);
        assert_eq!(r.rtp, v6("2001:db8::2", 5004));
        assert_eq!(r.rtcp, v6("2001:db8::3", 5009));
    }

    #[test]
    fn first_audio_with_nonzero_port_and_its_own_ptime() {
        let sdp = "v=0\r\nc=IN IP4 198.51.100.5\r\na=ptime:40\r\n\
                   m=audio 0 RTP/AVP 0\r\na=ptime:10\r\n\
                   m=video 4000 RTP/AVP 96\r\na=ptime:60\r\n\
                   m=audio 5000 RTP/AVP 8\r\na=ptime:30\r\n\
                   m=audio 6000 RTP/AVP 0\r\na=ptime:50\r\n";
        let r = remote_media(sdp).unwrap();
        assert_eq!(r.rtp.port(), 5000);
        assert_eq!(r.ptime, Some(Duration::from_millis(30)));
        // No media-level ptime: the (non-standard) session-level one.
        let sdp = "v=0\r\nc=IN IP4 198.51.100.5\r\na=ptime:40\r\nm=audio 5000 RTP/AVP 8\r\n";
        assert_eq!(
            remote_media(sdp).unwrap().ptime,
            Some(Duration::from_millis(40))
        );
    }

    #[test]
    fn ptime_values() {
        assert_eq!(parse_ptime(" 20 "), Some(Duration::from_millis(20)));
        assert_eq!(parse_ptime("22.5"), Some(Duration::from_micros(22_500)));
        for bad in ["0", "-20", "abc", "", "NaN", "inf", "1e300", "20ms"] {
            assert_eq!(parse_ptime(bad), None, "{bad}");
        }
        // Our ptime, not the peer's hint, is what we send with.
        let r = remote_media(&peer("m=audio 30000 RTP/AVP 0\r\na=ptime:30\r\n")).unwrap();
        assert_eq!(
            negotiate(&local(), &r, false).unwrap().ptime,
            Duration::from_millis(20)
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(remote_media(""), Err(NegotiateError::Parse(_))));
        assert!(matches!(
            remote_media("hello"),
            Err(NegotiateError::Parse(_))
        ));
        assert_eq!(remote_media("v=0\r\n"), Err(NegotiateError::NoAudio));
        assert_eq!(
            remote_media(&peer("m=audio 0 RTP/AVP 0\r\nm=video 4000 RTP/AVP 96\r\n")),
            Err(NegotiateError::NoAudio)
        );
        // c= missing, or a host name.
        for sdp in [
            "v=0\r\nm=audio 4000 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 media.example.com\r\nm=audio 4000 RTP/AVP 0\r\n",
        ] {
            let e = remote_media(sdp).unwrap_err();
            assert!(
                matches!(&e, NegotiateError::Parse(m) if m.contains("c=")),
                "{e}"
            );
        }
    }

    #[test]
    fn odd_payload_types_are_skipped() {
        // > 127 cannot go in an RTP header; duplicates and junk are ignored.
        let r = remote_media(&peer(
            "m=audio 30000 RTP/AVP 200 x 96 8 8 300\r\na=rtpmap:200 PCMU/8000\r\n",
        ))
        .unwrap();
        assert_eq!(r.codecs, vec![codec("PCMA", 8)]);
    }

    #[test]
    fn answer_keeps_offer_stream_positions() {
        let offer = peer(
            "m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             m=audio 30000 RTP/AVP 0\r\nm=application 5000 UDP/BFCP *\r\n",
        );
        let n = negotiate(&local(), &remote_media(&offer).unwrap(), false).unwrap();
        let answer = text(|o| write_answer_to_offer(&local(), &n, &offer, o));
        let m_lines: Vec<_> = answer.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m_lines,
            [
                "m=video 0 RTP/AVP 96",
                "m=audio 20000 RTP/AVP 0",
                "m=application 0 UDP/BFCP *"
            ]
        );
        let back = crate::sdp::parse(&answer).unwrap();
        assert_eq!(back.media[1].direction, Direction::SendRecv);
        // Unparseable offer: the single-stream answer.
        let single = text(|o| write_answer(&local(), &n, o));
        assert_eq!(
            text(|o| write_answer_to_offer(&local(), &n, "junk", o)),
            single
        );
    }

    /// Deterministic xorshift so a failure reproduces.
    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    #[test]
    fn byte_flips_never_panic() {
        let base = "v=0\r\no=- 1 1 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\n\
                    m=audio 35012 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\n\
                    a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendonly\r\n\
                    a=rtcp:35013 IN IP4 203.0.113.8\r\na=rtcp-mux\r\na=ptime:20\r\n\
                    a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
                    a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2:1\r\n";
        let interesting = b"0123456789 :=/\r\n.-amcv|SAVP";
        let mut s = 0x2545_f491_4f6c_dd1d;
        let mut l = local();
        l.rtcp_mux = true;
        let key = |suite: Suite| {
            let n = suite.master_key_len() + suite.master_salt_len();
            MasterKey::from_key_salt(suite, &vec![7; n]).unwrap()
        };
        let keys = vec![
            SdesKey {
                tag: 1,
                key: key(Suite::AesCm128HmacSha1_80),
            },
            SdesKey {
                tag: 2,
                key: key(Suite::AesCm128HmacSha1_32),
            },
        ];
        for round in 0..4000 {
            l.srtp = match round % 3 {
                0 => None,
                1 => Some(LocalSrtp {
                    policy: SrtpPolicy::BestEffort,
                    keys: keys.clone(),
                }),
                _ => Some(LocalSrtp {
                    policy: SrtpPolicy::Required,
                    keys: keys.clone(),
                }),
            };
            let mut bytes = base.as_bytes().to_vec();
            for _ in 0..1 + round % 6 {
                let r = xorshift(&mut s);
                let at = (r % bytes.len() as u64) as usize;
                let b = if r & 0x100 == 0 {
                    interesting[((r >> 16) % interesting.len() as u64) as usize]
                } else {
                    (r >> 24) as u8
                };
                match (r >> 40) % 3 {
                    0 => bytes[at] = b,
                    1 => bytes.insert(at, b),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            let text_in = String::from_utf8_lossy(&bytes);
            let Ok(r) = remote_media(&text_in) else {
                continue;
            };
            for we_offered in [false, true] {
                if let Ok(n) = negotiate(&l, &r, we_offered) {
                    let answer = text(|o| write_answer_to_offer(&l, &n, &text_in, o));
                    // Whatever we write must read back with what we agreed.
                    let back = remote_media(&answer).unwrap();
                    assert_eq!(back.codecs[0].payload_type, n.codec.payload_type);
                    assert_eq!(back.telephone_event, n.telephone_event);
                    match &n.srtp {
                        Some(agreed) => {
                            assert_eq!(back.savp, agreed.savp);
                            assert_eq!(back.crypto.len(), 1);
                            assert_eq!(back.crypto[0].tag, agreed.tag);
                            assert_eq!(back.crypto[0].keys, std::slice::from_ref(&agreed.local));
                        }
                        None => assert!(!back.savp && back.crypto.is_empty()),
                    }
                }
            }
        }
    }
}

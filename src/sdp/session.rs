//! Lenient SDP (RFC 8866) parser: the subset that locates media and its keys.
//!
//! CRLF or bare LF, lines in any order the real world produces, unknown or malformed lines
//! skipped. A malformed `m=` line is still kept (as a rejected stream, port 0) because offer
//! and answer pair their media by position: dropping one would shift every later stream.

use std::net::IpAddr;

use super::SdpError;
use super::crypto::{Crypto, clip};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level `c=` address; `None` when absent or a host name.
    pub connection: Option<IpAddr>,
    pub media: Vec<Media>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub kind: String,
    /// 0 = stream rejected or disabled.
    pub port: u16,
    /// `m=<kind> <port>/<count>`: number of consecutive ports (1 when not written).
    pub port_count: u16,
    pub proto: String,
    pub formats: Vec<String>,
    /// Media-level `c=` address, or the session's when the media has no `c=` line.
    pub connection: Option<IpAddr>,
    /// `a=rtcp:PORT [IN IP4 addr]`.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    pub rtcp_mux: bool,
    pub crypto: Vec<Crypto>,
    pub rtpmap: Vec<RtpMap>,
    /// `a=sendrecv|sendonly|recvonly|inactive` (media level, else session level).
    pub direction: Direction,
    /// `a=crypto` lines that could not be parsed at all, and other dropped lines worth
    /// telling the user about. Per-key problems are in each [`Crypto::warnings`].
    pub warnings: Vec<String>,
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(name: &str) -> Option<Direction> {
        [
            ("sendrecv", Direction::SendRecv),
            ("sendonly", Direction::SendOnly),
            ("recvonly", Direction::RecvOnly),
            ("inactive", Direction::Inactive),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, d)| d)
    }
}

/// Parses an SDP body. Errors only when the text has neither a `v=` nor an `m=` line.
pub fn parse(text: &str) -> Result<Sdp, SdpError> {
    let mut sdp = Sdp {
        connection: None,
        media: Vec::new(),
    };
    let mut looks_like_sdp = false;
    let mut session_direction = None;
    // Per media: its own c= seen (even a host name, which must not fall back to the
    // session's address) and its own direction attribute.
    let mut media_extra: Vec<(bool, Option<Direction>)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim();
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "v" => looks_like_sdp = true,
            "m" => {
                looks_like_sdp = true;
                sdp.media.push(media_line(value));
                media_extra.push((false, None));
            }
            "c" => match (sdp.media.last_mut(), media_extra.last_mut()) {
                (Some(m), Some(extra)) => {
                    // Several c= lines (layered multicast): the first one counts.
                    if !extra.0 {
                        m.connection = connection_addr(value);
                        extra.0 = true;
                    }
                }
                _ => sdp.connection = connection_addr(value),
            },
            "a" => {
                let (name, arg) = match value.split_once(':') {
                    Some((n, a)) => (n.trim(), a.trim()),
                    None => (value.trim(), ""),
                };
                match (sdp.media.last_mut(), media_extra.last_mut()) {
                    (Some(m), Some(extra)) => media_attribute(m, &mut extra.1, name, arg),
                    _ => {
                        if let Some(d) = Direction::parse(name) {
                            session_direction = Some(d);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !looks_like_sdp {
        return Err(SdpError::NotSdp);
    }
    for (m, (own_c, own_dir)) in sdp.media.iter_mut().zip(media_extra) {
        if !own_c {
            m.connection = sdp.connection;
        }
        m.direction = own_dir.or(session_direction).unwrap_or_default();
    }
    Ok(sdp)
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`. A bad port makes the stream count as
/// rejected (port 0) but keeps its place.
fn media_line(value: &str) -> Media {
    let mut words = value.split_ascii_whitespace();
    let kind = words.next().unwrap_or("").to_owned();
    let mut warnings = Vec::new();
    let (port, port_count) = match words.next().map(|p| p.split_once('/').unwrap_or((p, "1"))) {
        Some((p, n)) => match (p.parse::<u16>(), n.parse::<u16>()) {
            (Ok(p), Ok(n)) => (p, n),
            _ => {
                warnings.push(format!("bad port in m={}, stream ignored", clip(value)));
                (0, 1)
            }
        },
        None => {
            warnings.push(format!("m={} has no port, stream ignored", clip(value)));
            (0, 1)
        }
    };
    let proto = words.next().unwrap_or("").to_owned();
    Media {
        kind,
        port,
        port_count,
        proto,
        formats: words.map(str::to_owned).collect(),
        connection: None,
        rtcp: None,
        rtcp_mux: false,
        crypto: Vec::new(),
        rtpmap: Vec::new(),
        direction: Direction::default(),
        warnings,
    }
}

fn media_attribute(m: &mut Media, direction: &mut Option<Direction>, name: &str, arg: &str) {
    if name.eq_ignore_ascii_case("crypto") {
        match Crypto::parse(arg) {
            Ok(c) => m.crypto.push(c),
            Err(e) => m.warnings.push(format!("a=crypto line ignored: {e}")),
        }
    } else if name.eq_ignore_ascii_case("rtcp-mux") {
        m.rtcp_mux = true;
    } else if name.eq_ignore_ascii_case("rtcp") {
        m.rtcp = rtcp_attribute(arg);
    } else if name.eq_ignore_ascii_case("rtpmap") {
        m.rtpmap.extend(rtpmap_attribute(arg));
    } else if let Some(d) = Direction::parse(name) {
        *direction = Some(d);
    }
}

/// `c=IN IP4 <addr>[/ttl[/count]]`; a host name (legal but rare) gives `None`.
fn connection_addr(value: &str) -> Option<IpAddr> {
    let mut words = value.split_ascii_whitespace();
    let _nettype = words.next()?;
    let _addrtype = words.next()?;
    address(words.next()?)
}

fn address(word: &str) -> Option<IpAddr> {
    let addr = word.split('/').next()?;
    // Some endpoints bracket IPv6 literals as in URIs.
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    addr.parse().ok()
}

/// `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605).
fn rtcp_attribute(arg: &str) -> Option<(u16, Option<IpAddr>)> {
    let mut words = arg.split_ascii_whitespace();
    let port = words.next()?.parse().ok()?;
    let _nettype = words.next();
    let _addrtype = words.next();
    Some((port, words.next().and_then(address)))
}

fn rtpmap_attribute(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.split_once(char::is_whitespace)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.to_owned();
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = parts.next().and_then(|c| c.trim().parse().ok());
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding,
        clock_rate,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::Suite;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const KEY1: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    const KEY2: &str = "QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5";

    #[test]
    fn ipv4_offer_with_two_crypto_lines_crlf() {
        let text = format!(
            "v=0\r\no=alice 2890844526 2890844526 IN IP4 10.0.0.1\r\ns=-\r\n\
             c=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendrecv\r\n\
             m=audio 49170 RTP/SAVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY1}|2^20|1:4\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY2}\r\n"
        );
        let sdp = parse(&text).unwrap();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(sdp.connection, Some(ip));
        assert_eq!(sdp.media.len(), 1);
        let m = &sdp.media[0];
        assert_eq!(
            (m.kind.as_str(), m.port, m.proto.as_str()),
            ("audio", 49170, "RTP/SAVP")
        );
        assert_eq!(m.formats, ["0", "8", "101"]);
        assert_eq!(m.connection, Some(ip), "falls back to the session's c=");
        assert_eq!(m.rtcp, None);
        assert!(!m.rtcp_mux);
        assert_eq!(m.direction, Direction::SendRecv);
        assert_eq!(m.crypto.len(), 2);
        assert_eq!(m.crypto[0].tag, 1);
        assert_eq!(m.crypto[0].keys[0].mki.as_deref(), Some(&[0, 0, 0, 1][..]));
        assert_eq!(m.crypto[1].suite, Some(Suite::AesCm128HmacSha1_32));
        assert_eq!(m.rtpmap.len(), 3);
        assert_eq!(
            m.rtpmap[2],
            RtpMap {
                payload_type: 101,
                encoding: "telephone-event".into(),
                clock_rate: 8000,
                channels: None
            }
        );
    }

    #[test]
    fn ipv6_rtcp_mux_lf_only_media_level_c() {
        let text = format!(
            "v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\n\
             m=audio 5004 RTP/SAVPF 111\nc=IN IP6 2001:db8::2\na=rtcp-mux\na=recvonly\n\
             a=rtpmap:111 opus/48000/2\na=crypto:1 AEAD_AES_256_GCM inline:\
             AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis=\n\
             m=video 5006 RTP/SAVPF 96\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY1}\n"
        );
        let sdp = parse(&text).unwrap();
        let v6 = |s: &str| Some(IpAddr::V6(s.parse::<Ipv6Addr>().unwrap()));
        assert_eq!(sdp.media[0].connection, v6("2001:db8::2"));
        assert_eq!(sdp.media[1].connection, v6("2001:db8::1"));
        assert!(sdp.media[0].rtcp_mux && !sdp.media[1].rtcp_mux);
        assert_eq!(sdp.media[0].direction, Direction::RecvOnly);
        assert_eq!(sdp.media[0].rtpmap[0].channels, Some(2));
        assert_eq!(sdp.media[0].crypto[0].keys[0].key.len(), 32);
        assert_eq!(sdp.media[1].kind, "video");
    }

    #[test]
    fn rtcp_attribute_with_and_without_address() {
        let sdp = parse(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005 IN IP4 192.0.2.9\r\n\
             m=audio 6000 RTP/AVP 0\r\na=rtcp:6009\r\nm=audio 7000 RTP/AVP 0\r\n\
             a=rtcp:7001 IN IP6 2001:db8::7\r\n",
        )
        .unwrap();
        assert_eq!(
            sdp.media[0].rtcp,
            Some((4005, Some("192.0.2.9".parse().unwrap())))
        );
        assert_eq!(sdp.media[1].rtcp, Some((6009, None)));
        assert_eq!(
            sdp.media[2].rtcp,
            Some((7001, Some("2001:db8::7".parse().unwrap())))
        );
    }

    #[test]
    fn hostname_multicast_and_port_count() {
        let sdp = parse(
            "v=0\nc=IN IP4 media.example.com\nm=audio 49170/2 RTP/AVP 0\n\
             m=video 51372 RTP/AVP 31\nc=IN IP4 224.2.1.1/127/3\n\
             m=audio 3000 RTP/AVP 0\nc=IN IP4 host.example.com\n",
        )
        .unwrap();
        assert_eq!(sdp.connection, None);
        assert_eq!((sdp.media[0].port, sdp.media[0].port_count), (49170, 2));
        assert_eq!(sdp.media[0].connection, None);
        assert_eq!(sdp.media[1].connection, Some("224.2.1.1".parse().unwrap()));
        assert_eq!(sdp.media[2].connection, None);
    }

    #[test]
    fn junk_lines_and_bad_m_line_keep_positions() {
        let sdp = parse(
            "garbage\r\n\r\nv=0\r\nthis is not sdp\r\n=\r\nx\r\nc=IN\r\n\
             m=audio notaport RTP/AVP 0\r\na=crypto:zz\r\na=rtcp:\r\na=rtpmap:x\r\n\
             m=audio 8000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n",
        )
        .unwrap();
        assert_eq!(sdp.connection, None);
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.media[0].port, 0);
        assert_eq!(
            sdp.media[0].warnings.len(),
            2,
            "{:?}",
            sdp.media[0].warnings
        );
        assert!(sdp.media[0].crypto.is_empty());
        assert_eq!(sdp.media[1].port, 8000);
        // The line parses but its key is too short: kept with a warning, no key.
        assert_eq!(sdp.media[1].crypto.len(), 1);
        assert!(sdp.media[1].crypto[0].keys.is_empty());
        assert_eq!(sdp.media[1].crypto[0].warnings.len(), 1);
    }

    #[test]
    fn not_sdp() {
        assert_eq!(parse(""), Err(SdpError::NotSdp));
        assert_eq!(parse("hello=world\r\n"), Err(SdpError::NotSdp));
        assert!(parse("v=0").unwrap().media.is_empty());
    }

    #[test]
    fn random_bytes_never_panic() {
        // Deterministic xorshift so failures reproduce.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet =
            b"vmcaV=:/ \r\n0123456789.IPN4 6 AES_CM_128_HMAC_SHA1_80inline|^;:crypto rtcp-mux";
        for round in 0..3000 {
            let len = (round % 200) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let b = if round % 2 == 0 {
                    alphabet[(s % alphabet.len() as u64) as usize]
                } else {
                    s as u8
                };
                buf.push(b);
            }
            let text = String::from_utf8_lossy(&buf);
            let _ = parse(&text);
            let _ = Crypto::parse(&text);
            let _ = parse(&format!("v=0\nm=audio 1 RTP/SAVP 0\na=crypto:{text}"));
        }
    }
}

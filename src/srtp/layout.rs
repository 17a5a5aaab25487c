//! Where the parts of an SRTP/SRTCP packet are.
//!
//! RFC 3711 §3.1 / §3.4 and RFC 7714 §8/§9 place the trailer differently per transform:
//!
//! ```text
//! SRTP,  AES-CM + HMAC: header | encrypted payload | MKI | tag
//! SRTP,  AES-GCM:       header | encrypted payload | tag | MKI
//! SRTCP, AES-CM + HMAC: header | encrypted part | E+index | MKI | tag
//! SRTCP, AES-GCM:       header | encrypted part | tag | E+index | MKI
//! ```
//!
//! The positions computed here are checked against the packet length, so the transforms
//! can slice with them; they still use `get` so that a bug cannot become a panic.

use super::{SrtpError, Suite};

/// RTP fixed header length (RFC 3550 §5.1).
pub(crate) const RTP_HEADER: usize = 12;
/// The RTCP header part that SRTCP leaves in clear: V/P/RC, PT, length, sender SSRC.
pub(crate) const RTCP_HEADER: usize = 8;
/// The E flag and 31-bit SRTCP index word.
pub(crate) const SRTCP_INDEX_LEN: usize = 4;

/// A received SRTP packet cut into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SrtpLayout {
    pub ssrc: u32,
    pub seq: u16,
    /// RTP header with CSRCs and header extension: the part left in clear.
    pub header_len: usize,
    /// End of the encrypted payload = length of the plain RTP packet.
    pub body_end: usize,
    pub mki_at: usize,
    pub tag_at: usize,
    pub tag_len: usize,
}

/// A received SRTCP packet cut into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SrtcpLayout {
    pub ssrc: u32,
    /// The 31-bit SRTCP index.
    pub index: u32,
    /// The E flag: the part after the first 8 bytes is encrypted.
    pub encrypted: bool,
    /// End of the (possibly) encrypted part = length of the plain RTCP compound packet.
    pub body_end: usize,
    pub index_at: usize,
    pub mki_at: usize,
    pub tag_at: usize,
    pub tag_len: usize,
}

/// The clear RTP header of a plain or protected packet whose payload ends at `body_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    pub ssrc: u32,
    pub seq: u16,
    pub len: usize,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parse the RTP header (fixed part, CSRC list, header extension) of `packet`, whose header
/// must end at or before `body_end`. The caller has checked that `body_end >= 12`.
pub(crate) fn rtp_header(packet: &[u8], body_end: usize) -> Result<RtpHeader, SrtpError> {
    let first = *packet.first().ok_or(SrtpError::Truncated)?;
    if first >> 6 != 2 {
        return Err(SrtpError::NotRtp);
    }
    let seq = be16(packet, 2).ok_or(SrtpError::Truncated)?;
    let ssrc = be32(packet, 8).ok_or(SrtpError::Truncated)?;
    let csrc_count = usize::from(first & 0x0f);
    let mut len = RTP_HEADER + 4 * csrc_count;
    if first & 0x10 != 0 {
        // RFC 3550 §5.3.1: 16-bit profile field, 16-bit length in 32-bit words.
        let words = be16(packet, len + 2).ok_or(SrtpError::NotRtp)?;
        len += 4 + 4 * usize::from(words);
    }
    if len > body_end {
        return Err(SrtpError::NotRtp);
    }
    Ok(RtpHeader { ssrc, seq, len })
}

/// Cut a received SRTP packet for `suite` with an MKI of `mki_len` bytes.
pub(crate) fn srtp(suite: Suite, packet: &[u8], mki_len: usize) -> Result<SrtpLayout, SrtpError> {
    let tag_len = suite.rtp_tag_len();
    let body_end = packet
        .len()
        .checked_sub(tag_len + mki_len)
        .filter(|&end| end >= RTP_HEADER)
        .ok_or(SrtpError::Truncated)?;
    let header = rtp_header(packet, body_end)?;
    let (mki_at, tag_at) = if suite.is_aead() {
        (body_end + tag_len, body_end)
    } else {
        (body_end, body_end + mki_len)
    };
    Ok(SrtpLayout {
        ssrc: header.ssrc,
        seq: header.seq,
        header_len: header.len,
        body_end,
        mki_at,
        tag_at,
        tag_len,
    })
}

/// Cut a received SRTCP packet for `suite` with an MKI of `mki_len` bytes.
pub(crate) fn srtcp(suite: Suite, packet: &[u8], mki_len: usize) -> Result<SrtcpLayout, SrtpError> {
    let tag_len = suite.rtcp_tag_len();
    let body_end = packet
        .len()
        .checked_sub(tag_len + mki_len + SRTCP_INDEX_LEN)
        .filter(|&end| end >= RTCP_HEADER)
        .ok_or(SrtpError::Truncated)?;
    let first = *packet.first().ok_or(SrtpError::Truncated)?;
    if first >> 6 != 2 {
        return Err(SrtpError::NotRtp);
    }
    let ssrc = be32(packet, 4).ok_or(SrtpError::Truncated)?;
    let (tag_at, index_at, mki_at) = if suite.is_aead() {
        let index_at = body_end + tag_len;
        (body_end, index_at, index_at + SRTCP_INDEX_LEN)
    } else {
        let mki_at = body_end + SRTCP_INDEX_LEN;
        (mki_at + mki_len, body_end, mki_at)
    };
    let word = be32(packet, index_at).ok_or(SrtpError::Truncated)?;
    Ok(SrtcpLayout {
        ssrc,
        index: word & 0x7fff_ffff,
        encrypted: word & 0x8000_0000 != 0,
        body_end,
        index_at,
        mki_at,
        tag_at,
        tag_len,
    })
}

/// Is this UDP payload RTCP rather than RTP (RFC 5761 §4: payload type 64..=95 after masking
/// the marker, i.e. second byte in 192..=223)?  Used for rtcp-mux demultiplexing.
///
/// Also requires version 2 in the first byte: anything else is neither.
pub fn looks_like_rtcp(payload: &[u8]) -> bool {
    match payload {
        [first, second, ..] => first >> 6 == 2 && (192..=223).contains(second),
        _ => false,
    }
}

/// Is this datagram plain RTCP, with no SRTCP trailer? The length fields of a plain
/// compound packet add up to the whole datagram; SRTCP always has 4 index bytes and a tag
/// after the last RTCP packet (and encrypts everything past the first header), so its
/// lengths never cover it exactly. Endpoints send such packets before their SRTP is keyed
/// (baresip sends one RTCP APP per stream): they are neither authentic nor forged.
pub fn is_plain_rtcp(datagram: &[u8]) -> bool {
    let mut at = 0;
    while at < datagram.len() {
        let Some(h) = datagram.get(at..at + RTCP_HEADER.min(4)) else {
            return false;
        };
        if h[0] >> 6 != 2 || !(192..=223).contains(&h[1]) {
            return false;
        }
        at += 4 * (usize::from(u16::from_be_bytes([h[2], h[3]])) + 1);
    }
    at == datagram.len() && at > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(first: u8, extra: &[u8], payload: usize) -> Vec<u8> {
        let mut p = vec![first, 0, 0x12, 0x34, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe];
        p.extend_from_slice(extra);
        p.resize(p.len() + payload, 0xab);
        p
    }

    #[test]
    fn plain_rtcp_is_told_from_srtcp() {
        // RR (no blocks) + SDES: lengths 1 and 2 words after the first.
        let mut plain = vec![0x80, 201, 0, 1, 1, 2, 3, 4];
        plain.extend_from_slice(&[0x81, 202, 0, 2, 1, 2, 3, 4, 1, 2, b'a', b'b']);
        assert!(is_plain_rtcp(&plain));
        // baresip's lone APP packet: 16 bytes, length 3.
        assert!(is_plain_rtcp(&[
            0x80, 204, 0, 3, 0, 0, 0, 1, b'n', b'a', b'm', b'e', 0, 0, 0, 0
        ]));
        let mut srtcp = plain.clone();
        srtcp.extend_from_slice(&[0x80, 0, 0, 1]);
        srtcp.extend_from_slice(&[0xaa; 10]);
        assert!(!is_plain_rtcp(&srtcp));
        assert!(!is_plain_rtcp(&plain[..plain.len() - 1]));
        assert!(!is_plain_rtcp(&[]));
        assert!(!is_plain_rtcp(&[0x80, 0, 0, 1, 0, 0, 0, 0])); // RTP-looking PT
    }

    #[test]
    fn plain_header_with_csrcs_and_extension() {
        let p = rtp(0x80, &[], 20);
        assert_eq!(
            rtp_header(&p, p.len()),
            Ok(RtpHeader {
                ssrc: 0xcafe_babe,
                seq: 0x1234,
                len: 12
            })
        );
        // Two CSRCs, then a one-word extension.
        let p = rtp(
            0x92,
            &[0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 1, 2, 3, 4],
            5,
        );
        assert_eq!(rtp_header(&p, p.len()).unwrap().len, 12 + 8 + 8);
        // The extension claims more words than there are bytes.
        let p = rtp(0x90, &[0xbe, 0xde, 0, 9], 8);
        assert_eq!(rtp_header(&p, p.len()), Err(SrtpError::NotRtp));
        // Extension header itself cut off.
        let p = rtp(0x90, &[0xbe], 0);
        assert_eq!(rtp_header(&p, p.len()), Err(SrtpError::NotRtp));
        // Version 1.
        let p = rtp(0x40, &[], 4);
        assert_eq!(rtp_header(&p, p.len()), Err(SrtpError::NotRtp));
    }

    #[test]
    fn srtp_trailer_order_depends_on_the_transform() {
        let p = rtp(0x80, &[], 20 + 4 + 10);
        let l = srtp(Suite::AesCm128HmacSha1_80, &p, 4).unwrap();
        assert_eq!((l.body_end, l.mki_at, l.tag_at), (32, 32, 36));
        let p = rtp(0x80, &[], 20 + 4 + 16);
        let l = srtp(Suite::AeadAes128Gcm, &p, 4).unwrap();
        assert_eq!((l.body_end, l.tag_at, l.mki_at), (32, 32, 48));
        assert_eq!(
            srtp(Suite::AesCm128HmacSha1_80, &p[..21], 0),
            Err(SrtpError::Truncated)
        );
    }

    #[test]
    fn srtcp_trailer_order_depends_on_the_transform() {
        let mut p = vec![0x81, 0xc8, 0, 1, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4];
        p.extend_from_slice(&[0x80, 0, 0, 7]);
        p.extend_from_slice(&[9; 10]);
        let l = srtcp(Suite::AesCm128HmacSha1_32, &p, 0).unwrap();
        assert_eq!((l.ssrc, l.index, l.encrypted), (0xcafe_babe, 7, true));
        assert_eq!(
            (l.body_end, l.index_at, l.tag_at, l.tag_len),
            (12, 12, 16, 10)
        );

        let mut p = vec![0x81, 0xc8, 0, 1, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4];
        p.extend_from_slice(&[7; 16]);
        p.extend_from_slice(&[0x00, 0, 1, 0]);
        p.extend_from_slice(&[0xee, 0xff]);
        let l = srtcp(Suite::AeadAes256Gcm, &p, 2).unwrap();
        assert_eq!((l.index, l.encrypted), (256, false));
        assert_eq!(
            (l.body_end, l.tag_at, l.index_at, l.mki_at),
            (12, 12, 28, 32)
        );
        assert_eq!(
            srtcp(Suite::AeadAes256Gcm, &p[..27], 0),
            Err(SrtpError::Truncated)
        );
    }

    #[test]
    fn rtcp_demultiplexing() {
        assert!(looks_like_rtcp(&[0x80, 200, 0, 6]));
        assert!(looks_like_rtcp(&[0x81, 201]));
        assert!(looks_like_rtcp(&[0x80, 223]));
        assert!(!looks_like_rtcp(&[0x80, 0]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 8])); // PCMA with marker
        assert!(!looks_like_rtcp(&[0x80, 224]));
        assert!(!looks_like_rtcp(&[0x80]));
        assert!(!looks_like_rtcp(&[]));
        assert!(!looks_like_rtcp(&[0x00, 200]));
    }
}

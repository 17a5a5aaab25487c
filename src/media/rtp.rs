//! RTP packets (RFC 3550 §5.1): parse without copying, write without allocating.

use thiserror::Error;

/// Fixed part of every RTP header.
pub const HEADER_LEN: usize = 12;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RtpError {
    #[error("RTP packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    #[error("RTP header longer than the packet")]
    Truncated,
    #[error("RTP padding longer than the payload")]
    BadPadding,
}

/// The fields of the fixed header that senders set per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Header {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// A parsed packet borrowing the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: Header,
    /// CSRC list as raw bytes (4 per CSRC).
    pub csrc: &'a [u8],
    /// Header extension: profile-defined 16 bits and its data (without the 4-byte
    /// extension header).
    pub extension: Option<(u16, &'a [u8])>,
    /// Payload without padding.
    pub payload: &'a [u8],
    /// Padding bytes removed (0 when the P bit is clear).
    pub padding: u8,
}

impl<'a> Packet<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, RtpError> {
        let Some((fixed, rest)) = buf.split_first_chunk::<HEADER_LEN>() else {
            return Err(RtpError::TooShort(buf.len()));
        };
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = fixed[0] & 0x20 != 0;
        let has_extension = fixed[0] & 0x10 != 0;
        let csrc_count = usize::from(fixed[0] & 0x0f);
        let header = Header {
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7f,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        };

        let (csrc, rest) = rest
            .split_at_checked(csrc_count * 4)
            .ok_or(RtpError::Truncated)?;

        let (extension, mut payload) = if has_extension {
            let (ext_header, rest) = rest.split_first_chunk::<4>().ok_or(RtpError::Truncated)?;
            let profile = u16::from_be_bytes([ext_header[0], ext_header[1]]);
            let words = usize::from(u16::from_be_bytes([ext_header[2], ext_header[3]]));
            let (data, rest) = rest
                .split_at_checked(words * 4)
                .ok_or(RtpError::Truncated)?;
            (Some((profile, data)), rest)
        } else {
            (None, rest)
        };

        let mut padding = 0;
        if has_padding {
            // The count includes itself, so 0 is as malformed as a count past the
            // payload (RFC 3550 §5.1).
            let count = payload.last().copied().ok_or(RtpError::BadPadding)?;
            let keep = payload
                .len()
                .checked_sub(usize::from(count))
                .filter(|_| count > 0)
                .ok_or(RtpError::BadPadding)?;
            payload = payload.get(..keep).ok_or(RtpError::BadPadding)?;
            padding = count;
        }

        Ok(Packet {
            header,
            csrc,
            extension,
            payload,
            padding,
        })
    }

    /// The CSRC identifiers.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

impl Header {
    /// Append the 12-byte header (version 2, no padding, extension or CSRC) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
    }
}

/// Append a whole packet (12-byte header + payload) to `out`.
pub fn write_packet(out: &mut Vec<u8>, header: &Header, payload: &[u8]) {
    out.reserve(HEADER_LEN + payload.len());
    header.write(out);
    out.extend_from_slice(payload);
}

/// RFC 5761 §4 demultiplexing on one port: the second byte (marker + PT) of an RTCP
/// packet is 192–223 (SR 200, RR 201, ...). True when `buf` looks like RTCP.
pub fn is_rtcp(buf: &[u8]) -> bool {
    matches!(buf.get(1), Some(192..=223))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            marker: true,
            payload_type: 8,
            sequence: 0xfffe,
            timestamp: 0x1234_5678,
            ssrc: 0xdead_beef,
        }
    }

    #[test]
    fn write_then_parse() {
        let mut out = vec![0xaa];
        write_packet(&mut out, &header(), b"abc");
        assert_eq!(&out[..3], &[0xaa, 0x80, 0x88]);
        let p = Packet::parse(&out[1..]).unwrap();
        assert_eq!(p.header, header());
        assert_eq!(p.payload, b"abc");
        assert_eq!(p.csrc, b"");
        assert_eq!(p.extension, None);
        assert_eq!(p.padding, 0);
    }

    #[test]
    fn payload_type_keeps_seven_bits() {
        let mut out = Vec::new();
        Header {
            payload_type: 0xff,
            ..Header::default()
        }
        .write(&mut out);
        assert_eq!(out[1], 0x7f);
        assert_eq!(out.len(), HEADER_LEN);
    }

    #[test]
    fn csrc_extension_and_padding() {
        let mut p = vec![0x80 | 0x20 | 0x10 | 2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 11]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        p.extend_from_slice(b"payload");
        p.extend_from_slice(&[0, 0, 3]);
        let r = Packet::parse(&p).unwrap();
        assert_eq!(r.csrcs().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(r.extension, Some((0xbede, &[1u8, 2, 3, 4][..])));
        assert_eq!(r.payload, b"payload");
        assert_eq!(r.padding, 3);
        assert_eq!(r.header.sequence, 1);
        assert_eq!(r.header.timestamp, 2);
        assert_eq!(r.header.ssrc, 3);
        assert!(!r.header.marker);
    }

    #[test]
    fn malformed() {
        assert_eq!(Packet::parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        let mut p = vec![0u8; 12];
        p[0] = 0x40;
        assert_eq!(Packet::parse(&p), Err(RtpError::Version(1)));
        // One CSRC announced, none present.
        p[0] = 0x81;
        assert_eq!(Packet::parse(&p), Err(RtpError::Truncated));
        // Extension header missing, then extension data running past the end.
        p[0] = 0x90;
        assert_eq!(Packet::parse(&p), Err(RtpError::Truncated));
        p.extend_from_slice(&[0, 0, 0, 2, 1, 2, 3, 4]);
        assert_eq!(Packet::parse(&p), Err(RtpError::Truncated));
        // Padding: no byte at all, a zero count, a count past the payload.
        let mut p = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(Packet::parse(&p), Err(RtpError::BadPadding));
        p.push(0);
        assert_eq!(Packet::parse(&p), Err(RtpError::BadPadding));
        *p.last_mut().unwrap() = 2;
        assert_eq!(Packet::parse(&p), Err(RtpError::BadPadding));
        // A count of exactly the payload leaves it empty.
        *p.last_mut().unwrap() = 1;
        let r = Packet::parse(&p).unwrap();
        assert_eq!((r.payload, r.padding), (&[][..], 1));
    }

    #[test]
    fn rtcp_demultiplexing() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201]));
        assert!(is_rtcp(&[0x80, 192]));
        assert!(is_rtcp(&[0x80, 223]));
        // PCMU with and without the marker, telephone-event 101 with the marker (229).
        assert!(!is_rtcp(&[0x80, 0]));
        assert!(!is_rtcp(&[0x80, 0x80]));
        assert!(!is_rtcp(&[0x80, 0x80 | 101]));
        assert!(!is_rtcp(&[0x80, 191]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }
}

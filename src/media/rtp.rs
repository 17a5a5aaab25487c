//! RTP packets (RFC 3550 §5.1): parse without copying, write without allocating.
//! CONTRACT STUB: implemented by the media-core work; signatures are fixed.

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
    pub fn parse(_buf: &'a [u8]) -> Result<Packet<'a>, RtpError> {
        todo!()
    }
}

impl Header {
    /// Append the 12-byte header (version 2, no padding, extension or CSRC) to `out`.
    pub fn write(&self, _out: &mut Vec<u8>) {
        todo!()
    }
}

/// Append a whole packet (12-byte header + payload) to `out`.
pub fn write_packet(_out: &mut Vec<u8>, _header: &Header, _payload: &[u8]) {
    todo!()
}

/// RFC 5761 §4 demultiplexing on one port: the second byte (marker + PT) of an RTCP
/// packet is 192–223 (SR 200, RR 201, ...). True when `buf` looks like RTCP.
pub fn is_rtcp(_buf: &[u8]) -> bool {
    todo!()
}

//! RTCP (RFC 3550 §6): SR, RR, SDES (CNAME) and BYE, built into a compound packet and
//! parsed without allocating; round-trip time from LSR/DLSR (§6.4.1).
//! CONTRACT STUB: implemented by the media-core work; signatures are fixed.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RtcpError {
    #[error("RTCP packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("RTCP version {0}, expected 2")]
    Version(u8),
    #[error("RTCP length field runs past the datagram")]
    Truncated,
}

/// One reception report block (§6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire.
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from this source.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// Sender information of an SR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp.
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// One packet of a compound RTCP datagram, borrowing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rtcp<'a> {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: Reports<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Reports<'a>,
    },
    /// The first chunk's SSRC and CNAME (other items and chunks are skipped).
    Sdes {
        ssrc: u32,
        cname: Option<&'a [u8]>,
    },
    Bye {
        ssrcs: &'a [u8],
    },
    /// Any other packet type (APP, feedback, XR): skipped, counted by the caller.
    Other {
        packet_type: u8,
    },
}

/// The report blocks of an SR/RR, decoded on iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reports<'a> {
    raw: &'a [u8],
}

impl<'a> Iterator for Reports<'a> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let _ = self.raw;
        todo!()
    }
}

/// The packets of a compound datagram; stops at the first malformed one (which it
/// yields as an error).
pub fn parse_compound(_buf: &[u8]) -> impl Iterator<Item = Result<Rtcp<'_>, RtcpError>> {
    std::iter::empty()
}

/// Append an SR (with up to 31 report blocks) to `out`.
pub fn write_sr(_out: &mut Vec<u8>, _ssrc: u32, _info: &SenderInfo, _reports: &[ReportBlock]) {
    todo!()
}
/// Append an RR to `out`.
pub fn write_rr(_out: &mut Vec<u8>, _ssrc: u32, _reports: &[ReportBlock]) {
    todo!()
}
/// Append an SDES with one chunk carrying a CNAME item.
pub fn write_sdes_cname(_out: &mut Vec<u8>, _ssrc: u32, _cname: &[u8]) {
    todo!()
}
/// Append a BYE for one SSRC.
pub fn write_bye(_out: &mut Vec<u8>, _ssrc: u32) {
    todo!()
}

/// The middle 32 bits of a 64-bit NTP timestamp (the LSR format).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time (§6.4.1): `arrival` is the middle-32 NTP time the RR arrived;
/// None when LSR is 0 or the result would be negative.
pub fn round_trip(_arrival: u32, _lsr: u32, _dlsr: u32) -> Option<Duration> {
    todo!()
}

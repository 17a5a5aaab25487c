//! Streaming reader of pcap and pcapng files.
//!
//! Memory is bounded by the largest record, not the file: bytes are read in large chunks
//! into one buffer that is reused, and each [`Frame`] borrows its data from that buffer
//! (no copy, no allocation per frame). Blocks that are not packets or interfaces are
//! skipped without being buffered, whatever their size.

use std::io::{self, Read};
use std::ops::Range;

use super::error::{CaptureError, hex_start};
use super::pcapng::{
    BLOCK_EPB, BLOCK_IDB, BLOCK_PB, BLOCK_SHB, BLOCK_SPB, BYTE_ORDER_MAGIC, HeaderBlock,
    HeaderKind, HeaderLog, Interface, parse_idb, u16_at, u32_at,
};

/// Largest pcap record or pcapng packet/interface block accepted. Real captures stay
/// under 256 KiB (Wireshark's limit for ordinary link types); a larger length is almost
/// always a corrupt length field, and refusing it keeps memory bounded.
pub const MAX_RECORD: usize = 16 << 20;
/// Bytes of section/interface header blocks kept for one section (each interface block
/// is kept until a writer has copied it).
const MAX_HEADER_BYTES: usize = 64 << 20;
/// The read buffer's size: big enough that a 1 GB file takes a few thousand reads.
const CHUNK: usize = 256 << 10;

const PCAP_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_NANOS: u32 = 0xa1b2_3c4d;
const PCAP_MODIFIED: u32 = 0xa1b2_cd34;
const PCAP_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;

/// The file format, as detected from the first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanos: bool, big_endian: bool },
    PcapNg,
}

/// One packet record. `data` borrows the reader's buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1-based frame number as Wireshark shows it.
    pub index: u64,
    /// Nanoseconds since the Unix epoch (`if_tsresol` and `if_tsoffset` applied). A
    /// Simple Packet Block has no time and gets the previous packet's.
    pub ts_nanos: u64,
    /// pcapng interface id within its section, as in the packet block (0 for pcap).
    pub interface: u32,
    pub linktype: u32,
    pub data: &'a [u8],
    /// Length of the packet on the wire (≥ `data.len()` unless the file says otherwise).
    pub orig_len: u32,
}

/// A buffered input: `buf[start..end]` holds bytes not yet consumed; `offset` is the
/// file offset of `buf[start]`.
struct Input<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    offset: u64,
}

impl<R: Read> Input<R> {
    /// Make `n` bytes available if the file has them; returns how many are available
    /// (less than `n` only at the end of the file).
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n {
            return Ok(n);
        }
        if self.buf.len() - self.start < n {
            // Move the unread tail to the front; grow only for a record larger than the
            // buffer (bounded by the callers' limits).
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
        }
        while self.end - self.start < n {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((self.end - self.start).min(n))
    }

    /// The next `n` bytes (the caller has `fill`ed them).
    fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.start..self.start + n]
    }

    fn consume(&mut self, n: usize) -> Range<usize> {
        let range = self.start..self.start + n;
        self.start += n;
        self.offset += n as u64;
        range
    }

    /// Skip `n` bytes without buffering them. Returns false if the file ends first.
    fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            let want = usize::try_from(n).unwrap_or(usize::MAX).min(CHUNK);
            let have = self.fill(want)?;
            if have == 0 {
                return Ok(false);
            }
            self.consume(have);
            n -= have as u64;
        }
        Ok(true)
    }
}

/// Streaming reader of a pcap or pcapng capture.
pub struct CaptureReader<R: Read> {
    input: Input<R>,
    format: CaptureFormat,
    /// Frames returned so far.
    frames: u64,
    /// pcap: the link type field of the file header (low 16 bits are the link type).
    pcap_linktype_field: u32,
    pcap_snaplen: u32,
    /// pcapng: byte order and interfaces of the current section.
    big_endian: bool,
    interfaces: Vec<Interface>,
    section_header_bytes: usize,
    /// Timestamp of the previous packet: roughly what a Simple Packet Block (which has
    /// none) gets.
    last_ts: u64,
    headers: HeaderLog,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("frames", &self.frames)
            .field("offset", &self.input.offset)
            .finish_non_exhaustive()
    }
}

impl<R: Read> CaptureReader<R> {
    /// Detect the format and read the file header (pcap) or first section header
    /// (pcapng). Reads are done in large chunks, so `r` needs no `BufReader`.
    pub fn new(r: R) -> Result<Self, CaptureError> {
        let mut reader = CaptureReader {
            input: Input {
                r,
                buf: vec![0; CHUNK],
                start: 0,
                end: 0,
                offset: 0,
            },
            format: CaptureFormat::PcapNg,
            frames: 0,
            pcap_linktype_field: 0,
            pcap_snaplen: 0,
            big_endian: false,
            interfaces: Vec::new(),
            section_header_bytes: 0,
            last_ts: 0,
            headers: HeaderLog::default(),
        };
        let have = reader.fill(PCAP_HEADER_LEN)?;
        let start = reader.input.peek(have);
        if have == 0 {
            return Err(CaptureError::Empty);
        }
        let magic = u32_at(start, 0, false).unwrap_or(0);
        let (nanos, big_endian) = match magic {
            PCAP_MICROS => (false, false),
            PCAP_NANOS => (true, false),
            m if m == PCAP_MICROS.swap_bytes() => (false, true),
            m if m == PCAP_NANOS.swap_bytes() => (true, true),
            BLOCK_SHB => {
                if !reader.next_header_block()? {
                    return Err(CaptureError::Truncated {
                        offset: 0,
                        frame: 1,
                    });
                }
                return Ok(reader);
            }
            m => {
                let hint = if start.starts_with(&[0x1f, 0x8b]) {
                    ": it is gzip-compressed, gunzip it first"
                } else if m == PCAP_MODIFIED || m == PCAP_MODIFIED.swap_bytes() {
                    ": it is the old \"modified pcap\" format, convert it with \
                     `editcap -F pcap IN OUT`"
                } else {
                    ""
                };
                return Err(CaptureError::NotCapture {
                    start: hex_start(start),
                    hint,
                });
            }
        };
        if have < PCAP_HEADER_LEN {
            return Err(CaptureError::Truncated {
                offset: 0,
                frame: 1,
            });
        }
        reader.format = CaptureFormat::Pcap { nanos, big_endian };
        reader.pcap_snaplen = u32_at(start, 16, big_endian).unwrap_or(0);
        reader.pcap_linktype_field = u32_at(start, 20, big_endian).unwrap_or(0);
        reader.input.consume(PCAP_HEADER_LEN);
        Ok(reader)
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Frames returned so far (the index of the last one).
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// File offset of the next unread byte.
    pub fn byte_offset(&self) -> u64 {
        self.input.offset
    }

    /// Next packet record; `Ok(None)` at a clean end; `Err` for corruption or truncation
    /// (the caller reports it and stops, keeping what was already done).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.format {
            CaptureFormat::Pcap { nanos, big_endian } => self.next_pcap(nanos, big_endian),
            CaptureFormat::PcapNg => self.next_pcapng(),
        }
    }

    /// pcap: the whole link type field of the file header, and the snap length.
    pub(crate) fn pcap_header(&self) -> (u32, u32) {
        (self.pcap_linktype_field, self.pcap_snaplen)
    }

    pub(crate) fn header_log(&self) -> &HeaderLog {
        &self.headers
    }

    fn fill(&mut self, n: usize) -> Result<usize, CaptureError> {
        let offset = self.input.offset;
        self.input
            .fill(n)
            .map_err(|source| CaptureError::Read { offset, source })
    }

    /// Fill `n` bytes or fail as truncated (`n` > 0 bytes are due here).
    fn fill_exact(&mut self, n: usize) -> Result<(), CaptureError> {
        if self.fill(n)? < n {
            return Err(self.truncated());
        }
        Ok(())
    }

    fn truncated(&self) -> CaptureError {
        CaptureError::Truncated {
            offset: self.input.offset,
            frame: self.frames + 1,
        }
    }

    fn corrupt(&self, what: &'static str, why: String) -> CaptureError {
        CaptureError::Corrupt {
            what,
            why,
            offset: self.input.offset,
            frame: self.frames + 1,
        }
    }

    fn frame(
        &mut self,
        ts_nanos: u64,
        interface: u32,
        linktype: u32,
        data: Range<usize>,
        orig_len: u32,
    ) -> Frame<'_> {
        self.frames += 1;
        self.last_ts = ts_nanos;
        Frame {
            index: self.frames,
            ts_nanos,
            interface,
            linktype,
            data: &self.input.buf[data],
            orig_len,
        }
    }

    fn next_pcap(&mut self, nanos: bool, be: bool) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.fill(PCAP_RECORD_HEADER_LEN)? {
            0 => return Ok(None),
            PCAP_RECORD_HEADER_LEN => {}
            _ => return Err(self.truncated()),
        }
        let h = self.input.peek(PCAP_RECORD_HEADER_LEN);
        let field = |at| u32_at(h, at, be).unwrap_or(0);
        let (secs, frac, incl, orig) = (field(0), field(4), field(8), field(12));
        if incl as usize > MAX_RECORD {
            return Err(CaptureError::Oversize {
                what: "pcap record",
                len: u64::from(incl),
                limit: MAX_RECORD as u64,
                offset: self.input.offset,
                frame: self.frames + 1,
            });
        }
        let total = PCAP_RECORD_HEADER_LEN + incl as usize;
        self.fill_exact(total)?;
        let frac_nanos = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        let ts = u64::from(secs) * 1_000_000_000 + frac_nanos;
        let range = self.input.consume(total);
        let data = range.start + PCAP_RECORD_HEADER_LEN..range.end;
        let linktype = self.pcap_linktype_field & 0xffff;
        Ok(Some(self.frame(ts, 0, linktype, data, orig)))
    }

    /// Read the next block's type and length (the byte order of a section header comes
    /// from its own byte-order magic). `None` at a clean end of file.
    fn block_head(&mut self) -> Result<Option<(u32, u64, bool)>, CaptureError> {
        match self.fill(8)? {
            0 => return Ok(None),
            8 => {}
            _ => return Err(self.truncated()),
        }
        let ty = u32_at(self.input.peek(8), 0, self.big_endian).unwrap_or(0);
        let mut be = self.big_endian;
        if ty == BLOCK_SHB {
            self.fill_exact(12)?;
            let bom = self.input.peek(12).get(8..12).unwrap_or(&[]);
            be = if u32_at(bom, 0, false) == Some(BYTE_ORDER_MAGIC) {
                false
            } else if u32_at(bom, 0, true) == Some(BYTE_ORDER_MAGIC) {
                true
            } else {
                let why = format!("byte-order magic is {}, not 1a2b3c4d", hex_start(bom));
                return Err(self.corrupt("section header block", why));
            };
        }
        let len = u64::from(u32_at(self.input.peek(8), 4, be).unwrap_or(0));
        let min = if ty == BLOCK_SHB { 28 } else { 12 };
        if len < min || len % 4 != 0 {
            let why = format!("block length {len} (it must be a multiple of 4, at least {min})");
            return Err(self.corrupt("pcapng block", why));
        }
        Ok(Some((ty, len, be)))
    }

    /// Buffer a whole block of `len` bytes and check its trailing length copy.
    fn fill_block(
        &mut self,
        what: &'static str,
        len: u64,
        be: bool,
    ) -> Result<usize, CaptureError> {
        if len > MAX_RECORD as u64 {
            return Err(CaptureError::Oversize {
                what,
                len,
                limit: MAX_RECORD as u64,
                offset: self.input.offset,
                frame: self.frames + 1,
            });
        }
        let len = len as usize;
        self.fill_exact(len)?;
        let trailer = u32_at(self.input.peek(len), len - 4, be).unwrap_or(0);
        if trailer as usize != len {
            let why =
                format!("its trailing length {trailer} differs from its leading length {len}");
            return Err(self.corrupt(what, why));
        }
        Ok(len)
    }

    /// Handle blocks up to and including the next header block (SHB/IDB). Used once by
    /// `new` for the first section header. Returns false at the end of the file.
    fn next_header_block(&mut self) -> Result<bool, CaptureError> {
        let Some((ty, len, be)) = self.block_head()? else {
            return Ok(false);
        };
        debug_assert_eq!(ty, BLOCK_SHB);
        self.header_block(ty, len, be)?;
        Ok(true)
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        loop {
            let Some((ty, len, be)) = self.block_head()? else {
                return Ok(None);
            };
            match ty {
                BLOCK_SHB | BLOCK_IDB => self.header_block(ty, len, be)?,
                BLOCK_EPB | BLOCK_SPB | BLOCK_PB => return self.packet_block(ty, len).map(Some),
                _ => {
                    let offset = self.input.offset;
                    let ok = self
                        .input
                        .skip(len)
                        .map_err(|source| CaptureError::Read { offset, source })?;
                    if !ok {
                        return Err(CaptureError::Truncated {
                            offset,
                            frame: self.frames + 1,
                        });
                    }
                }
            }
        }
    }

    /// A section header or interface description: update the state and log the block
    /// for the writer.
    fn header_block(&mut self, ty: u32, len: u64, be: bool) -> Result<(), CaptureError> {
        let (what, kind) = if ty == BLOCK_SHB {
            ("section header block", HeaderKind::Section)
        } else {
            ("interface description block", HeaderKind::Interface)
        };
        let len = self.fill_block(what, len, be)?;
        let block = self.input.peek(len);
        if kind == HeaderKind::Section {
            let major = u16_at(block, 12, be).unwrap_or(0);
            if major != 1 {
                let minor = u16_at(block, 14, be).unwrap_or(0);
                return Err(self.corrupt(
                    what,
                    format!("pcapng version {major}.{minor} is not supported (only 1.x)"),
                ));
            }
            self.big_endian = be;
            self.interfaces.clear();
            self.section_header_bytes = 0;
        } else {
            let iface = parse_idb(block, be).map_err(|why| self.corrupt(what, why))?;
            self.interfaces.push(iface);
        }
        self.section_header_bytes += len;
        if self.section_header_bytes > MAX_HEADER_BYTES {
            return Err(CaptureError::Oversize {
                what: "the interface descriptions of one section",
                len: self.section_header_bytes as u64,
                limit: MAX_HEADER_BYTES as u64,
                offset: self.input.offset,
                frame: self.frames + 1,
            });
        }
        let bytes = self.input.peek(len).to_vec();
        self.headers.push(HeaderBlock {
            before_frame: self.frames + 1,
            kind,
            big_endian: be,
            bytes,
        });
        self.input.consume(len);
        Ok(())
    }

    /// EPB, SPB or obsolete PB → a frame.
    fn packet_block(&mut self, ty: u32, len: u64) -> Result<Frame<'_>, CaptureError> {
        let be = self.big_endian;
        let what = match ty {
            BLOCK_EPB => "enhanced packet block",
            BLOCK_SPB => "simple packet block",
            _ => "packet block",
        };
        let len = self.fill_block(what, len, be)?;
        let b = self.input.peek(len);
        let field = |at| u32_at(b, at, be).unwrap_or(0);
        // Data starts at 28 (EPB, PB) or 12 (SPB) and must end before the trailer.
        let (iface, ts_units, data_at, caplen, orig) = match ty {
            BLOCK_SPB => {
                let orig = field(8);
                let room = len.saturating_sub(16) as u32;
                let snap = match self.interfaces.first() {
                    Some(i) if i.snaplen != 0 => i.snaplen,
                    Some(_) => u32::MAX,
                    None => {
                        let why = "it comes before any interface description".to_string();
                        return Err(self.corrupt(what, why));
                    }
                };
                (0, None, 12, orig.min(room).min(snap), orig)
            }
            _ => {
                if len < 32 {
                    return Err(self.corrupt(what, format!("block length {len} is too short")));
                }
                let iface = if ty == BLOCK_EPB {
                    field(8)
                } else {
                    u32::from(u16_at(b, 8, be).unwrap_or(0))
                };
                let ts = (u64::from(field(12)) << 32) | u64::from(field(16));
                (iface, Some(ts), 28, field(20), field(24))
            }
        };
        if data_at + caplen as usize > len - 4 {
            let why = format!("captured length {caplen} does not fit in the block of {len} bytes");
            return Err(self.corrupt(what, why));
        }
        let Some(interface) = self.interfaces.get(iface as usize).copied() else {
            let why = format!(
                "it refers to interface {iface}, but the section describes {}",
                self.interfaces.len()
            );
            return Err(self.corrupt(what, why));
        };
        let ts = match ts_units {
            Some(units) => interface.unit.to_nanos(units),
            // An SPB has no time: the previous packet's, in the interface's unit (so a
            // writer can store it exactly).
            None => interface
                .unit
                .to_nanos(interface.unit.units_of(self.last_ts)),
        };
        let range = self.input.consume(len);
        let data = range.start + data_at..range.start + data_at + caplen as usize;
        Ok(self.frame(ts, iface, interface.linktype, data, orig))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::{Ng, pcap, udp_packet};

    fn frames_of(bytes: &[u8]) -> Vec<crate::capture::testutil::OwnedFrame> {
        crate::capture::testutil::read_all(bytes).1
    }

    #[test]
    fn pcap_all_magics_and_byte_orders() {
        let a = udp_packet("10.0.0.1:5060", "10.0.0.2:5060", b"hello");
        let b = udp_packet("[2001:db8::1]:4000", "[2001:db8::2]:4002", b"x");
        for nanos in [false, true] {
            for be in [false, true] {
                let ts1 = 1_700_000_000_123_456_789u64;
                let bytes = pcap(nanos, be, 101, &[(ts1, &a), (ts1 + 1_000, &b)]);
                let mut r = CaptureReader::new(&bytes[..]).unwrap();
                assert_eq!(
                    r.format(),
                    CaptureFormat::Pcap {
                        nanos,
                        big_endian: be
                    }
                );
                let f = r.next_frame().unwrap().unwrap();
                assert_eq!((f.index, f.interface, f.linktype), (1, 0, 101));
                let want = if nanos { ts1 } else { ts1 / 1000 * 1000 };
                assert_eq!(f.ts_nanos, want);
                assert_eq!(f.data, &a[..]);
                assert_eq!(f.orig_len as usize, a.len());
                let f = r.next_frame().unwrap().unwrap();
                assert_eq!(f.index, 2);
                assert_eq!(f.data, &b[..]);
                assert!(r.next_frame().unwrap().is_none());
                assert!(r.next_frame().unwrap().is_none(), "stays at the end");
                assert_eq!(r.frames_read(), 2);
                assert_eq!(r.byte_offset(), bytes.len() as u64);
            }
        }
    }

    #[test]
    fn pcapng_sections_interfaces_and_resolutions() {
        let p = udp_packet("10.0.0.1:1", "10.0.0.2:2", b"abc");
        let mut ng = Ng::new(false);
        ng.idb(101, None, None) // µs
            .idb(228, Some(9), None) // ns
            .idb(101, Some(0x80 | 20), Some(100)) // 2^-20 s, +100 s
            .epb(0, 1_500_000, &p)
            .epb(1, 1_500_000_123, &p)
            .epb(2, 3 << 19, &p)
            .block(0x0BAD, b"unknown block, skipped")
            .spb(&p)
            .pb(1, 42, &p)
            // A second section, big-endian, whose interface 0 is Linux SLL2.
            .shb(true)
            .block(0x0BAD_0000, &[1, 2, 3, 4])
            .idb(276, Some(3), None) // ms
            .epb(0, 2500, &p);
        let frames = frames_of(&ng.out);
        let summary: Vec<_> = frames.iter().map(|f| (f.0, f.1, f.2, f.3)).collect();
        assert_eq!(
            summary,
            vec![
                (1, 1_500_000_000, 0, 101),
                (2, 1_500_000_123, 1, 228),
                (3, 101_500_000_000, 2, 101),
                (4, 101_500_000_000, 0, 101), // SPB: previous packet's time
                (5, 42, 1, 228),
                (6, 2_500_000_000, 0, 276),
            ]
        );
        assert!(frames.iter().all(|f| f.4 == p && f.5 as usize == p.len()));
    }

    /// A `Read` that hands out at most `n` bytes per call.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_and_bounded_buffer() {
        let p = udp_packet("10.0.0.1:1", "10.0.0.2:2", &[7; 300]);
        let records: Vec<(u64, &[u8])> = (0..5000).map(|i| (i * 1000, &p[..])).collect();
        let bytes = pcap(false, false, 101, &records);
        for chunk in [1, 7, 4096] {
            let mut r = CaptureReader::new(Trickle(&bytes, chunk)).unwrap();
            let mut n = 0;
            while let Some(f) = r.next_frame().unwrap() {
                assert_eq!(f.data, &p[..]);
                n += 1;
            }
            assert_eq!(n, 5000);
            assert_eq!(r.input.buf.len(), CHUNK, "the buffer never grew");
        }
        let mut ng = Ng::new(true);
        ng.idb(101, None, None);
        for i in 0..3000 {
            ng.epb(0, i, &p);
        }
        let mut r = CaptureReader::new(Trickle(&ng.out, 5)).unwrap();
        let mut n = 0;
        while r.next_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3000);
    }

    #[test]
    fn big_unknown_block_is_skipped_without_buffering() {
        let p = udp_packet("10.0.0.1:1", "10.0.0.2:2", b"after");
        let mut ng = Ng::new(false);
        ng.idb(101, None, None)
            .block(0x4000_0001, &vec![0; MAX_RECORD + 1024])
            .epb(0, 1, &p);
        let mut r = CaptureReader::new(&ng.out[..]).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().data, &p[..]);
        assert!(r.input.buf.len() <= CHUNK);
    }

    #[test]
    fn truncated_file_keeps_earlier_frames() {
        let p = udp_packet("10.0.0.1:1", "10.0.0.2:2", b"payload");
        let bytes = pcap(true, false, 101, &[(1, &p), (2, &p), (3, &p)]);
        let third_at = (24 + 2 * (16 + p.len())) as u64;
        for cut in [
            bytes.len() - 1,
            third_at as usize + 3,
            third_at as usize + 16,
        ] {
            let mut r = CaptureReader::new(&bytes[..cut]).unwrap();
            assert!(r.next_frame().unwrap().is_some());
            assert!(r.next_frame().unwrap().is_some());
            let err = r.next_frame().unwrap_err();
            assert!(
                matches!(err, CaptureError::Truncated { offset, frame: 3 } if offset == third_at),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "truncated record at byte {third_at} (frame 3): the capture was cut; \
                     frames before it were processed"
                )
            );
        }
        let mut ng = Ng::new(false);
        ng.idb(1, None, None).epb(0, 1, &p).epb(0, 2, &p);
        let cut = ng.out.len() - 6;
        let mut r = CaptureReader::new(&ng.out[..cut]).unwrap();
        assert!(r.next_frame().unwrap().is_some());
        assert!(matches!(
            r.next_frame(),
            Err(CaptureError::Truncated { frame: 2, .. })
        ));
        // A pcap header cut short, and an SHB cut short.
        assert!(matches!(
            CaptureReader::new(&bytes[..10]),
            Err(CaptureError::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            CaptureReader::new(&ng.out[..20]),
            Err(CaptureError::Truncated { .. })
        ));
    }

    #[test]
    fn not_a_capture() {
        let msg = |b: &[u8]| match CaptureReader::new(b) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted {b:?}"),
        };
        let m = msg(b"hello world, this is text");
        assert!(
            m.starts_with("not a pcap or pcapng file: starts with 68 65 6c 6c 6f 20 77 6f"),
            "{m}"
        );
        assert!(msg(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).contains("gunzip"));
        assert!(msg(&[0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0]).contains("editcap"));
        assert_eq!(msg(b""), "the capture file is empty");
        assert!(msg(b"ab").starts_with("not a pcap or pcapng file: starts with 61 62"));
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        let p = udp_packet("10.0.0.1:1", "10.0.0.2:2", b"x");
        // Packet for an interface the section does not describe.
        let mut ng = Ng::new(false);
        ng.idb(1, None, None).epb(3, 1, &p);
        let mut r = CaptureReader::new(&ng.out[..]).unwrap();
        let e = r.next_frame().unwrap_err().to_string();
        assert!(e.contains("interface 3") && e.contains("frame 1"), "{e}");
        // SPB before any IDB.
        let mut ng = Ng::new(false);
        ng.spb(&p);
        assert!(
            CaptureReader::new(&ng.out[..])
                .unwrap()
                .next_frame()
                .is_err()
        );
        // Oversized pcap record length.
        let mut bytes = pcap(false, false, 1, &[(0, &p)]);
        bytes[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = CaptureReader::new(&bytes[..])
            .unwrap()
            .next_frame()
            .unwrap_err();
        assert!(
            matches!(
                e,
                CaptureError::Oversize {
                    offset: 24,
                    frame: 1,
                    ..
                }
            ),
            "{e}"
        );
        // Block length not a multiple of 4, and trailer mismatch.
        let mut ng = Ng::new(false);
        ng.idb(1, None, None);
        let at = ng.out.len();
        ng.epb(0, 1, &p);
        let mut bad = ng.out.clone();
        bad[at + 4] += 1;
        assert!(CaptureReader::new(&bad[..]).unwrap().next_frame().is_err());
        let mut bad = ng.out.clone();
        let last = bad.len() - 4;
        bad[last] ^= 4;
        let e = CaptureReader::new(&bad[..])
            .unwrap()
            .next_frame()
            .unwrap_err();
        assert!(e.to_string().contains("trailing length"), "{e}");
        // Bad byte-order magic, unsupported version.
        let mut bad = Ng::new(false).out;
        bad[8] = 0;
        assert!(CaptureReader::new(&bad[..]).is_err());
        let mut bad = Ng::new(false).out;
        bad[12] = 2;
        assert!(
            CaptureReader::new(&bad[..])
                .unwrap_err()
                .to_string()
                .contains("version 2.0")
        );
    }
}

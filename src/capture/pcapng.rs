//! pcapng pieces shared by the reader and the writer: block type numbers, byte order
//! helpers, interface descriptions (link type, timestamp unit) and the log of header
//! blocks (SHB, IDB) through which the writer learns about interfaces that appear in the
//! middle of the input (see the module documentation of [`super`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) const BLOCK_SHB: u32 = 0x0A0D_0D0A;
pub(crate) const BLOCK_IDB: u32 = 1;
/// Obsolete Packet Block (pcapng drafts before EPB existed; still written by old tools).
pub(crate) const BLOCK_PB: u32 = 2;
pub(crate) const BLOCK_SPB: u32 = 3;
pub(crate) const BLOCK_EPB: u32 = 6;
pub(crate) const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

pub(crate) fn u16_at(b: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(s)
    } else {
        u16::from_le_bytes(s)
    })
}

pub(crate) fn u32_at(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32, big_endian: bool) {
    out.extend_from_slice(&if big_endian {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

/// Padding that brings `len` to a multiple of 4.
pub(crate) fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// The timestamp unit of an interface: `if_tsresol` (units per second) and `if_tsoffset`
/// (seconds added to every timestamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TsUnit {
    per_second: u128,
    offset_secs: i64,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

impl TsUnit {
    pub(crate) const MICROS: TsUnit = TsUnit {
        per_second: 1_000_000,
        offset_secs: 0,
    };

    /// `if_tsresol`: high bit clear → 10^-n seconds, set → 2^-n seconds. Resolutions
    /// whose unit count per second does not fit in a u128 are refused (corrupt file).
    pub(crate) fn from_tsresol(b: u8) -> Option<TsUnit> {
        let n = u32::from(b & 0x7f);
        let per_second = if b & 0x80 == 0 {
            10u128.checked_pow(n)?
        } else {
            1u128.checked_shl(n)?
        };
        Some(TsUnit {
            per_second,
            offset_secs: 0,
        })
    }

    /// Nanoseconds since the epoch for a raw timestamp (saturating; before 1970 → 0).
    /// u128 arithmetic: 2^64 units × 10^9 cannot overflow it.
    pub(crate) fn to_nanos(self, units: u64) -> u64 {
        let rel = u128::from(units) * NANOS_PER_SEC / self.per_second;
        let abs = i128::try_from(rel).unwrap_or(i128::MAX)
            + i128::from(self.offset_secs) * NANOS_PER_SEC as i128;
        u64::try_from(abs.max(0)).unwrap_or(u64::MAX)
    }

    /// Inverse of [`to_nanos`](Self::to_nanos), exact on its results: the smallest unit
    /// count that reads back as `nanos`, so reader → writer → reader keeps `ts_nanos`
    /// even for 2^-n units or units finer than a nanosecond.
    pub(crate) fn units_of(self, nanos: u64) -> u64 {
        let rel = i128::from(nanos) - i128::from(self.offset_secs) * NANOS_PER_SEC as i128;
        let rel = u128::try_from(rel.max(0)).unwrap_or(0);
        match rel.checked_mul(self.per_second) {
            Some(scaled) => u64::try_from(scaled.div_ceil(NANOS_PER_SEC)).unwrap_or(u64::MAX),
            None => u64::MAX,
        }
    }
}

/// What the reader and writer need from an Interface Description Block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interface {
    pub linktype: u32,
    pub snaplen: u32,
    pub unit: TsUnit,
}

/// Parse an IDB block (whole block bytes: type, length, body, length). `Err` names the
/// problem. Options with an impossible length end the option list quietly: they carry
/// nothing we need, and Wireshark is lenient there too.
pub(crate) fn parse_idb(block: &[u8], big_endian: bool) -> Result<Interface, String> {
    let linktype = u16_at(block, 8, big_endian).ok_or("block too short")?;
    let snaplen = u32_at(block, 12, big_endian).ok_or("block too short")?;
    let mut unit = TsUnit::MICROS;
    let end = block.len().saturating_sub(4);
    let mut pos = 16;
    while pos + 4 <= end {
        let (Some(code), Some(len)) = (
            u16_at(block, pos, big_endian),
            u16_at(block, pos + 2, big_endian),
        ) else {
            break;
        };
        let len = usize::from(len);
        let Some(value) = block.get(pos + 4..(pos + 4 + len).min(end)) else {
            break;
        };
        if value.len() < len || code == OPT_END {
            break;
        }
        match (code, value) {
            (OPT_IF_TSRESOL, [b, ..]) => {
                let offset = unit.offset_secs;
                unit = TsUnit::from_tsresol(*b)
                    .ok_or_else(|| format!("unsupported if_tsresol 0x{b:02x}"))?;
                unit.offset_secs = offset;
            }
            (OPT_IF_TSOFFSET, v) if v.len() == 8 => {
                let arr: [u8; 8] = v.try_into().unwrap_or_default();
                unit.offset_secs = if big_endian {
                    i64::from_be_bytes(arr)
                } else {
                    i64::from_le_bytes(arr)
                };
            }
            _ => {}
        }
        pos += 4 + len + pad4(len);
    }
    Ok(Interface {
        linktype: u32::from(linktype),
        snaplen,
        unit,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    Section,
    Interface,
}

/// One SHB or IDB as read, with its position relative to the frames: it came before
/// the frame numbered `before_frame` (and after all lower-numbered ones).
#[derive(Clone, Debug)]
pub(crate) struct HeaderBlock {
    pub before_frame: u64,
    pub kind: HeaderKind,
    pub big_endian: bool,
    pub bytes: Vec<u8>,
}

/// Header blocks shared between a reader and its writer. The reader appends; the writer
/// takes those that precede the frame it writes. `published` lets the writer see without
/// locking that nothing new arrived, which is the case for nearly every frame.
#[derive(Debug, Default)]
struct Shared {
    published: AtomicU64,
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    /// Sequence number of `blocks[0]`; sequence numbers count every block ever pushed.
    first_seq: u64,
    blocks: VecDeque<HeaderBlock>,
}

/// The reader's end.
#[derive(Debug, Default)]
pub(crate) struct HeaderLog {
    shared: Arc<Shared>,
}

/// The writer's end: its position in the log.
#[derive(Debug)]
pub(crate) struct HeaderCursor {
    shared: Arc<Shared>,
    next_seq: u64,
}

fn lock(m: &Mutex<Log>) -> MutexGuard<'_, Log> {
    // A panic elsewhere while holding the lock leaves the log consistent (every change is
    // one push or pop), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HeaderLog {
    /// Record a header block. With no writer attached, a new section starts the log
    /// afresh: a writer created later starts its output at the current section, and
    /// memory stays bounded by one section's header blocks.
    pub(crate) fn push(&self, block: HeaderBlock) {
        let mut log = lock(&self.shared.log);
        let attached = Arc::strong_count(&self.shared) > 1;
        if !attached && block.kind == HeaderKind::Section {
            log.first_seq += log.blocks.len() as u64;
            log.blocks.clear();
        }
        log.blocks.push_back(block);
        let published = log.first_seq + log.blocks.len() as u64;
        self.shared.published.store(published, Ordering::Release);
    }

    /// Bytes held by the log.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        lock(&self.shared.log)
            .blocks
            .iter()
            .map(|b| b.bytes.len())
            .sum()
    }

    /// A writer's cursor, starting at the oldest block still held.
    pub(crate) fn cursor(&self) -> HeaderCursor {
        let log = lock(&self.shared.log);
        HeaderCursor {
            shared: Arc::clone(&self.shared),
            next_seq: log.first_seq,
        }
    }
}

impl HeaderCursor {
    /// Hand `f` every unseen block that came before frame `upto` (all unseen blocks when
    /// `upto` is `u64::MAX`), in order. Blocks are dropped from the log once passed on,
    /// unless another writer still needs them.
    pub(crate) fn take_until<E>(
        &mut self,
        upto: u64,
        mut f: impl FnMut(&HeaderBlock) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.shared.published.load(Ordering::Acquire) == self.next_seq {
            return Ok(());
        }
        let mut log = lock(&self.shared.log);
        // Several writers on one reader: keep blocks for the others (unusual; the log
        // then grows with the header blocks of the file, which the reader caps).
        let sole = Arc::strong_count(&self.shared) == 2;
        loop {
            let Some(i) = self.next_seq.checked_sub(log.first_seq) else {
                // Blocks dropped before this writer got them (cannot happen with one
                // writer); skip ahead.
                self.next_seq = log.first_seq;
                continue;
            };
            let Some(block) = log.blocks.get(i as usize) else {
                return Ok(());
            };
            if block.before_frame > upto {
                return Ok(());
            }
            f(block)?;
            self.next_seq += 1;
            if sole {
                log.blocks.pop_front();
                log.first_seq += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_units_round_trip() {
        let units = [
            TsUnit::MICROS,
            TsUnit::from_tsresol(9).unwrap(),
            TsUnit::from_tsresol(3).unwrap(),
            TsUnit::from_tsresol(0).unwrap(),
            TsUnit::from_tsresol(12).unwrap(),
            TsUnit::from_tsresol(0x80 | 20).unwrap(),
            TsUnit::from_tsresol(0x80 | 40).unwrap(),
            TsUnit::from_tsresol(0x80 | 10).unwrap(),
        ];
        for unit in units {
            for raw in [
                0u64,
                1,
                999,
                1_700_000_000_123_456,
                u64::MAX / 1_000_000_000_000,
            ] {
                let ns = unit.to_nanos(raw);
                let back = unit.units_of(ns);
                assert_eq!(unit.to_nanos(back), ns, "{unit:?} {raw}");
            }
        }
        // 2^-20 s: 2^20 units are one second.
        let u = TsUnit::from_tsresol(0x80 | 20).unwrap();
        assert_eq!(u.to_nanos(1 << 20), 1_000_000_000);
        assert_eq!(u.to_nanos(3 << 19), 1_500_000_000);
        // Milliseconds and picoseconds.
        assert_eq!(
            TsUnit::from_tsresol(3).unwrap().to_nanos(1500),
            1_500_000_000
        );
        assert_eq!(TsUnit::from_tsresol(12).unwrap().to_nanos(1_234_567), 1_234);
        // Nonsense resolutions are refused, not overflowed.
        assert!(TsUnit::from_tsresol(60).is_none());
        let finest = TsUnit::from_tsresol(0xff).unwrap(); // 2^-127 s
        assert_eq!(finest.to_nanos(u64::MAX), 0);
        assert_eq!(finest.units_of(1_000_000_000), u64::MAX, "saturates");
    }

    #[test]
    fn ts_offset_applies_both_ways() {
        let mut u = TsUnit::MICROS;
        u.offset_secs = 1_000;
        assert_eq!(u.to_nanos(1), 1_000_000_001_000);
        assert_eq!(u.units_of(1_000_000_001_000), 1);
        u.offset_secs = -5;
        assert_eq!(u.to_nanos(1_000_000), 0, "before the epoch clamps to 0");
    }
}

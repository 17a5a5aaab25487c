//! Packet index estimation (RFC 3711 §3.3.1, Appendix A) and the replay list (§3.3.2).

use super::SrtpError;

/// How far behind the highest index a packet may arrive and still be accepted.
pub(crate) const WINDOW: u64 = 64;

/// The highest authenticated index of a stream and a bitmap of the 64 indices up to it.
///
/// For SRTP the index is the 48-bit ROC<<16 | SEQ, so the highest index also holds the
/// receiver's ROC and s_l; for SRTCP it is the 31-bit SRTCP index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: u64,
    /// Bit i set: index `highest - i` was seen.
    seen: u64,
}

impl ReplayWindow {
    /// A window whose only seen index is `index`.
    pub(crate) fn starting_at(index: u64) -> Self {
        ReplayWindow {
            highest: index,
            seen: 1,
        }
    }

    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Would `index` be accepted? Does not change the window.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= WINDOW || self.seen & (1 << behind) != 0 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    /// Record `index` as seen (after it authenticated).
    pub(crate) fn commit(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            let behind = self.highest - index;
            if behind < WINDOW {
                self.seen |= 1 << behind;
            }
        }
    }
}

/// The 48-bit index of a packet with sequence number `seq`, given the highest index seen so
/// far (RFC 3711 §3.3.1): the ROC guess v is ROC-1, ROC or ROC+1, whichever puts the packet
/// closest to s_l.
pub(crate) fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest & 0xffff;
    let seq = u64::from(seq);
    let v = if s_l < 0x8000 {
        if seq > s_l + 0x8000 {
            // From before the last wrap. At ROC 0 there is no earlier cycle: take ROC 0 and
            // let authentication decide.
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if seq + 0x8000 < s_l {
        (roc + 1) & 0xffff_ffff
    } else {
        roc
    };
    (v << 16) | seq
}

/// ROC<<16 | SEQ.
pub(crate) fn index_of(roc: u32, seq: u16) -> u64 {
    (u64::from(roc) << 16) | u64::from(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimation_around_the_wrap() {
        // s_l low: a high SEQ belongs to the previous cycle.
        assert_eq!(estimate_index(index_of(1, 10), 65530), index_of(0, 65530));
        assert_eq!(estimate_index(index_of(1, 10), 11), index_of(1, 11));
        assert_eq!(estimate_index(index_of(1, 10), 32778), index_of(1, 32778));
        // s_l high: a low SEQ is the next cycle.
        assert_eq!(estimate_index(index_of(0, 65530), 3), index_of(1, 3));
        assert_eq!(
            estimate_index(index_of(0, 65530), 65000),
            index_of(0, 65000)
        );
        assert_eq!(estimate_index(index_of(0, 40000), 7232), index_of(0, 7232));
        assert_eq!(estimate_index(index_of(0, 40000), 7231), index_of(1, 7231));
        // No cycle before ROC 0.
        assert_eq!(estimate_index(index_of(0, 5), 65533), index_of(0, 65533));
    }

    #[test]
    fn window_accepts_new_and_late_rejects_seen_and_old() {
        let mut w = ReplayWindow::starting_at(100);
        assert_eq!(w.check(100), Err(SrtpError::Replay));
        assert_eq!(w.check(101), Ok(()));
        assert_eq!(w.check(99), Ok(()));
        w.commit(99);
        assert_eq!(w.check(99), Err(SrtpError::Replay));
        w.commit(150);
        assert_eq!(w.highest(), 150);
        assert_eq!(w.check(100), Err(SrtpError::Replay));
        assert_eq!(w.check(99), Err(SrtpError::Replay)); // 51 behind, seen
        assert_eq!(w.check(98), Ok(()));
        assert_eq!(w.check(87), Ok(())); // 63 behind: last slot
        assert_eq!(w.check(86), Err(SrtpError::Replay)); // 64 behind: too old
        w.commit(1000);
        assert_eq!(w.check(150), Err(SrtpError::Replay));
        assert_eq!(w.check(999), Ok(()));
        w.commit(10); // far behind: ignored
        assert_eq!(w.highest(), 1000);
    }
}

//! SRTP for one call's stream: the context we protect with (our key), the keys we accept
//! from the peer (its current key first, then the previous ones, so packets in flight
//! across a re-key still open) and what failed. The stream writes plain RTP/RTCP into its
//! send buffer and this seals it there, in place; received datagrams are opened in the
//! receive buffer they arrived in.

use crate::sdp::sdes::SrtpAgreed;
use crate::srtp::{Context, KeyRing, MasterKey, SrtpError, Suite, is_plain_rtcp};

/// Keys of the peer kept after a re-key: the new one and the one before cover what is
/// in flight during an exchange; a third covers a re-key following closely.
const PEER_KEYS: usize = 3;

/// Why a received datagram did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Tag did not verify (wrong key, corrupted, forged) or the packet was malformed.
    Auth,
    /// A copy of a packet already taken, or too old for the replay window.
    Replay,
    /// Plain RTCP before the peer's SRTP was keyed (no SRTCP trailer): neither authentic
    /// nor an attack, so counted apart.
    PlainRtcp,
}

/// Counts kept per stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrtpFigures {
    pub auth_failures: u64,
    pub replay_failures: u64,
    pub plain_rtcp: u64,
}

pub struct Protection {
    suite: Suite,
    tx: Context,
    tx_key: MasterKey,
    rx: KeyRing,
    figures: SrtpFigures,
}

impl std::fmt::Debug for Protection {
    /// No key material in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protection")
            .field("suite", &self.suite)
            .field("figures", &self.figures)
            .finish_non_exhaustive()
    }
}

impl Protection {
    pub fn new(agreed: &SrtpAgreed) -> Result<Protection, SrtpError> {
        let mut rx = KeyRing::new(PEER_KEYS);
        rx.push(&agreed.remote, ())?;
        Ok(Protection {
            suite: agreed.suite,
            tx: Context::new(&agreed.local)?,
            tx_key: agreed.local.clone(),
            rx,
            figures: SrtpFigures::default(),
        })
    }

    /// A later offer/answer (re-INVITE, UPDATE). The peer's new key goes first in the
    /// ring; ours changes only if the key itself changed, so a re-INVITE that keeps the
    /// keys keeps the ROC and replay state too.
    pub fn update(&mut self, agreed: &SrtpAgreed) -> Result<(), SrtpError> {
        self.rx.push(&agreed.remote, ())?;
        if agreed.local != self.tx_key {
            self.tx = Context::new(&agreed.local)?;
            self.tx_key = agreed.local.clone();
        }
        self.suite = agreed.suite;
        Ok(())
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    pub fn figures(&self) -> SrtpFigures {
        self.figures
    }

    /// Seal the plain RTP or RTCP datagram in `buf` (it grows by the tag and, for
    /// RTCP, the index word; the buffer's capacity is reused, nothing is allocated once
    /// it has grown to a packet and a trailer). False if it could not be protected.
    pub fn seal(&mut self, buf: &mut Vec<u8>, rtcp: bool) -> bool {
        let sealed = if rtcp {
            self.tx.protect_rtcp(buf)
        } else {
            self.tx.protect_rtp(buf)
        };
        sealed.is_ok()
    }

    /// Open a received datagram in place; the plain packet is `data[..len]`.
    pub fn open(&mut self, data: &mut [u8], rtcp: bool) -> Result<usize, Rejected> {
        let opened = if rtcp {
            self.rx.unprotect_rtcp(data)
        } else {
            self.rx.unprotect_rtp(data)
        };
        match opened {
            Ok(o) => Ok(o.unprotected.len),
            // Keys first: an SRTCP packet must never pass for plain.
            Err(_) if rtcp && is_plain_rtcp(data) => {
                self.figures.plain_rtcp += 1;
                Err(Rejected::PlainRtcp)
            }
            Err(SrtpError::Replay) => {
                self.figures.replay_failures += 1;
                Err(Rejected::Replay)
            }
            Err(_) => {
                self.figures.auth_failures += 1;
                Err(Rejected::Auth)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(suite: Suite, ours: u8, theirs: u8) -> SrtpAgreed {
        let n = suite.master_key_len() + suite.master_salt_len();
        SrtpAgreed {
            tag: 1,
            suite,
            local: MasterKey::from_key_salt(suite, &vec![ours; n]).unwrap(),
            remote: MasterKey::from_key_salt(suite, &vec![theirs; n]).unwrap(),
            savp: true,
        }
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0, (seq >> 8) as u8, seq as u8, 0, 0, 0, 0, 1, 2, 3, 4];
        p.extend_from_slice(&[0xd5; 160]);
        p
    }

    #[test]
    fn both_ends_open_what_the_other_sealed() {
        for suite in Suite::ALL {
            let mut a = Protection::new(&agreed(suite, 1, 2)).unwrap();
            let mut b = Protection::new(&agreed(suite, 2, 1)).unwrap();
            let mut buf = Vec::with_capacity(256);
            for seq in [65534u16, 65535, 0, 1] {
                buf.clear();
                buf.extend_from_slice(&rtp(seq));
                assert!(a.seal(&mut buf, false));
                assert_ne!(&buf[12..172], &rtp(seq)[12..]);
                let len = b.open(&mut buf, false).unwrap();
                assert_eq!(&buf[..len], &rtp(seq)[..], "{suite}");
            }
            let plain_rtcp = [0x80, 201, 0, 1, 9, 9, 9, 9];
            buf.clear();
            buf.extend_from_slice(&plain_rtcp);
            assert!(b.seal(&mut buf, true));
            let len = a.open(&mut buf, true).unwrap();
            assert_eq!(&buf[..len], &plain_rtcp);
            assert_eq!(a.figures(), SrtpFigures::default());
        }
    }

    #[test]
    fn failures_are_counted_by_kind() {
        let suite = Suite::AesCm128HmacSha1_80;
        let mut a = Protection::new(&agreed(suite, 1, 2)).unwrap();
        let mut b = Protection::new(&agreed(suite, 2, 1)).unwrap();
        let mut sealed = rtp(10);
        a.seal(&mut sealed, false);
        let mut copy = sealed.clone();
        b.open(&mut copy, false).unwrap();
        let mut copy = sealed.clone();
        assert_eq!(b.open(&mut copy, false), Err(Rejected::Replay));
        let mut bad = rtp(11);
        a.seal(&mut bad, false);
        bad[20] ^= 0x40;
        assert_eq!(b.open(&mut bad, false), Err(Rejected::Auth));
        // baresip's APP packet before keying.
        let mut app = [
            0x80, 204, 0, 3, 0, 0, 0, 1, b'n', b'a', b'm', b'e', 0, 0, 0, 0,
        ];
        assert_eq!(b.open(&mut app, true), Err(Rejected::PlainRtcp));
        let mut junk = [0x80, 200, 0, 9, 1, 2];
        assert_eq!(b.open(&mut junk, true), Err(Rejected::Auth));
        assert_eq!(
            b.figures(),
            SrtpFigures {
                auth_failures: 2,
                replay_failures: 1,
                plain_rtcp: 1
            }
        );
    }

    #[test]
    fn rekey_keeps_old_packets_and_our_context_when_our_key_stays() {
        let suite = Suite::AeadAes128Gcm;
        let mut a = Protection::new(&agreed(suite, 1, 2)).unwrap();
        let mut b = Protection::new(&agreed(suite, 2, 1)).unwrap();
        let mut late = rtp(5);
        a.seal(&mut late, false);
        // a re-keys (new key 3); b learns it. b's own key stays.
        let mut a2 = Protection::new(&agreed(suite, 3, 2)).unwrap();
        b.update(&agreed(suite, 2, 3)).unwrap();
        let mut fresh = rtp(6);
        a2.seal(&mut fresh, false);
        assert!(b.open(&mut fresh, false).is_ok());
        assert!(b.open(&mut late, false).is_ok(), "old-key packet in flight");
        // b's sender went on with the same context: a (old key 2 as remote) still opens.
        let mut from_b = rtp(100);
        b.seal(&mut from_b, false);
        assert!(a2.open(&mut from_b, false).is_ok());
    }
}

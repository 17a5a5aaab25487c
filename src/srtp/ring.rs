//! The keys one receiver accepts: after a re-key (a re-INVITE or UPDATE with a new
//! `a=crypto` key) the new key is tried first and the older ones after it, so packets
//! still in flight under the old key decrypt too. The capture decryptor keeps every key a
//! destination ever had; a call keeps the last few.
//!
//! A failed attempt leaves the packet as it was (both transforms authenticate before they
//! decrypt), so the next key sees the original bytes without a copy.

use super::{Context, MasterKey, SrtpError, Unprotected};

/// Receive contexts, newest last, each with the caller's tag `T` (which flow, which call).
pub struct KeyRing<T = ()> {
    entries: Vec<Entry<T>>,
    limit: usize,
}

struct Entry<T> {
    key: MasterKey,
    ctx: Context,
    meta: T,
}

impl<T> std::fmt::Debug for KeyRing<T> {
    /// No key material in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.entries.len())
            .field("limit", &self.limit)
            .finish()
    }
}

/// Which key of the ring took a packet, and what it found.
#[derive(Debug)]
pub struct Opened<'a, T> {
    /// 0 = the newest key, 1 the one before, …
    pub age: usize,
    pub meta: &'a T,
    pub unprotected: Unprotected,
}

impl<T> KeyRing<T> {
    /// A ring that keeps at most `limit` keys (at least one); the oldest goes first.
    pub fn new(limit: usize) -> KeyRing<T> {
        KeyRing {
            entries: Vec::new(),
            limit: limit.max(1),
        }
    }

    /// Add `key` as the newest. The same key as the newest again (a re-INVITE that kept
    /// its keys) changes nothing, so its ROC and replay state go on. Returns whether a
    /// new context was made.
    pub fn push(&mut self, key: &MasterKey, meta: T) -> Result<bool, SrtpError> {
        if self.entries.last().is_some_and(|e| e.key == *key) {
            return Ok(false);
        }
        let ctx = Context::new(key)?;
        self.push_context(key.clone(), ctx, meta);
        Ok(true)
    }

    /// Add a context already set up (ROC trials, replay check) for `key`.
    pub fn push_context(&mut self, key: MasterKey, ctx: Context, meta: T) {
        if self.entries.len() == self.limit {
            self.entries.remove(0);
        }
        self.entries.push(Entry { key, ctx, meta });
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The newest key's context and tag.
    pub fn newest(&self) -> Option<(&Context, &T)> {
        self.entries.last().map(|e| (&e.ctx, &e.meta))
    }

    /// Mutable access to every context, newest first (to set ROC trials and the like).
    pub fn contexts_mut(&mut self) -> impl Iterator<Item = &mut Context> {
        self.entries.iter_mut().rev().map(|e| &mut e.ctx)
    }

    /// Verify and decrypt SRTP in place with the newest key that authenticates it.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<Opened<'_, T>, SrtpError> {
        self.open(packet, Context::unprotect_rtp)
    }

    /// Verify and decrypt SRTCP in place with the newest key that authenticates it.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<Opened<'_, T>, SrtpError> {
        self.open(packet, Context::unprotect_rtcp)
    }

    /// Newest first. The error, when no key takes the packet: `Replay` when some key
    /// recognised it as a copy of one it already took, else the newest key's error.
    fn open(
        &mut self,
        packet: &mut [u8],
        f: fn(&mut Context, &mut [u8]) -> Result<Unprotected, SrtpError>,
    ) -> Result<Opened<'_, T>, SrtpError> {
        let mut first_err = None;
        let mut replay = false;
        let mut found = None;
        for (age, e) in self.entries.iter_mut().rev().enumerate() {
            match f(&mut e.ctx, packet) {
                Ok(u) => {
                    found = Some((age, u));
                    break;
                }
                Err(err) => {
                    replay |= err == SrtpError::Replay;
                    first_err.get_or_insert(err);
                }
            }
        }
        match found {
            Some((age, unprotected)) => {
                let e = &self.entries[self.entries.len() - 1 - age];
                Ok(Opened {
                    age,
                    meta: &e.meta,
                    unprotected,
                })
            }
            None if replay => Err(SrtpError::Replay),
            None => Err(first_err.unwrap_or(SrtpError::AuthFailed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::Suite;

    fn key(suite: Suite, fill: u8) -> MasterKey {
        let n = suite.master_key_len() + suite.master_salt_len();
        MasterKey::from_key_salt(suite, &vec![fill; n]).unwrap()
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe]);
        p.extend((0..160).map(|i| i as u8));
        p
    }

    fn protect(k: &MasterKey, tx: &mut Option<Context>, seq: u16) -> Vec<u8> {
        let ctx = tx.get_or_insert_with(|| Context::new(k).unwrap());
        let mut p = rtp(seq);
        ctx.protect_rtp(&mut p).unwrap();
        p
    }

    #[test]
    fn old_key_packets_still_open_after_a_rekey() {
        for suite in Suite::ALL {
            let (old, new) = (key(suite, 1), key(suite, 2));
            let (mut tx_old, mut tx_new) = (None, None);
            let mut ring = KeyRing::new(3);
            assert!(ring.push(&old, "old").unwrap());
            let mut a = protect(&old, &mut tx_old, 10);
            assert_eq!(ring.unprotect_rtp(&mut a).unwrap().meta, &"old");
            assert!(ring.push(&new, "new").unwrap());
            // Same key again: no new context.
            assert!(!ring.push(&new, "again").unwrap());
            assert_eq!(ring.len(), 2);
            let mut b = protect(&new, &mut tx_new, 500);
            let got = ring.unprotect_rtp(&mut b).unwrap();
            assert_eq!((got.age, *got.meta), (0, "new"));
            assert_eq!(&b[..got.unprotected.len], &rtp(500)[..]);
            // Late packet under the old key.
            let mut c = protect(&old, &mut tx_old, 11);
            let got = ring.unprotect_rtp(&mut c).unwrap();
            assert_eq!((got.age, *got.meta), (1, "old"));
            assert_eq!(&c[..got.unprotected.len], &rtp(11)[..]);
        }
    }

    #[test]
    fn failure_leaves_the_packet_intact_and_replay_wins_over_auth() {
        for suite in Suite::ALL {
            let (a, b) = (key(suite, 1), key(suite, 2));
            let mut tx = None;
            let mut ring = KeyRing::new(2);
            ring.push(&a, ()).unwrap();
            ring.push(&b, ()).unwrap();
            let sealed = protect(&a, &mut tx, 7);
            let mut p = sealed.clone();
            ring.unprotect_rtp(&mut p).unwrap();
            let mut again = sealed.clone();
            assert_eq!(
                ring.unprotect_rtp(&mut again).err(),
                Some(SrtpError::Replay)
            );
            assert_eq!(again, sealed, "{suite}: bytes changed by failed attempts");
            let mut forged = protect(&a, &mut tx, 8);
            *forged.last_mut().unwrap() ^= 1;
            let before = forged.clone();
            assert_eq!(
                ring.unprotect_rtp(&mut forged).err(),
                Some(SrtpError::AuthFailed)
            );
            assert_eq!(forged, before);
        }
    }

    #[test]
    fn limit_drops_the_oldest() {
        let suite = Suite::AesCm128HmacSha1_80;
        let mut ring = KeyRing::new(2);
        let mut tx = None;
        let first = key(suite, 1);
        ring.push(&first, 1).unwrap();
        ring.push(&key(suite, 2), 2).unwrap();
        ring.push(&key(suite, 3), 3).unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.newest().map(|(_, m)| *m), Some(3));
        let mut p = protect(&first, &mut tx, 1);
        assert_eq!(
            ring.unprotect_rtp(&mut p).err(),
            Some(SrtpError::AuthFailed)
        );
        let empty: &mut KeyRing<()> = &mut KeyRing::new(0);
        assert!(empty.is_empty());
        assert_eq!(
            empty.unprotect_rtcp(&mut p).err(),
            Some(SrtpError::AuthFailed)
        );
    }
}

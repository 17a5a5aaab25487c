//! Behaviour of `Context` through the public API: known-answer packets, round trips for
//! every suite, ROC handling, replay, and robustness against arbitrary input.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::aes_cm::tests::hex;
use super::*;

fn key(suite: Suite, seed: u8) -> MasterKey {
    let bytes: Vec<u8> = (0..suite.master_key_len() + suite.master_salt_len())
        .map(|i| {
            seed.wrapping_mul(31)
                .wrapping_add((i as u8).wrapping_mul(7))
        })
        .collect();
    MasterKey::from_key_salt(suite, &bytes).unwrap()
}

fn pair(key: &MasterKey) -> (Context, Context) {
    (Context::new(key).unwrap(), Context::new(key).unwrap())
}

/// A plain RTP packet: V=2, PT 0, the given CSRCs and optional one-byte-header extension.
fn rtp(seq: u16, ssrc: u32, csrcs: &[u32], ext: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80 | csrcs.len() as u8, 0];
    if ext.is_some() {
        p[0] |= 0x10;
    }
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in csrcs {
        p.extend_from_slice(&c.to_be_bytes());
    }
    if let Some(ext) = ext {
        assert_eq!(ext.len() % 4, 0);
        p.extend_from_slice(&[0xbe, 0xde]);
        p.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
        p.extend_from_slice(ext);
    }
    p.extend_from_slice(payload);
    p
}

/// A plain RTCP receiver report from `ssrc` with `extra` bytes of report blocks.
fn rtcp(ssrc: u32, extra: usize) -> Vec<u8> {
    let words = 1 + extra / 4;
    let mut p = vec![0x80, 201];
    p.extend_from_slice(&(words as u16).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..extra).map(|i| i as u8));
    p
}

fn protect(ctx: &mut Context, plain: &[u8]) -> Vec<u8> {
    let mut p = plain.to_vec();
    ctx.protect_rtp(&mut p).unwrap();
    p
}

/// Unprotect and check the plaintext comes back.
fn roundtrip(rx: &mut Context, protected: &[u8], plain: &[u8]) -> Unprotected {
    let mut p = protected.to_vec();
    let u = rx.unprotect_rtp(&mut p).unwrap();
    assert_eq!(&p[..u.len], plain);
    u
}

// ---- Known answers -------------------------------------------------------------------

/// libsrtp's test key: RFC 3711 B.3's master key and salt.
const LIBSRTP_KEY: &str = "e1f97a0d3e018be0d64fa32c06de4139 0ec675ad498afeebb6960b3aabe6";
const RTP_PLAIN: &str = "800f1234 decafbad cafebabe abababab abababab abababab abababab";
const RTCP_PLAIN: &str = "81c8000b cafebabe abababab abababab abababab abababab";

fn known_answer(suite: Suite, key_salt: &str, rtp_protected: &str, rtcp_protected: Option<&str>) {
    let key = MasterKey::from_key_salt(suite, &hex(key_salt)).unwrap();
    let (mut tx, mut rx) = pair(&key);
    let plain = hex(RTP_PLAIN);
    assert_eq!(protect(&mut tx, &plain), hex(rtp_protected));
    let u = roundtrip(&mut rx, &hex(rtp_protected), &plain);
    assert_eq!((u.ssrc, u.index, u.roc), (0xcafe_babe, 0x1234, 0));

    if let Some(rtcp_protected) = rtcp_protected {
        // libsrtp numbers its first SRTCP packet 1; RFC 3711 §3.4 starts at 0.
        let plain = hex(RTCP_PLAIN);
        let mut first = plain.clone();
        tx.protect_rtcp(&mut first).unwrap();
        let mut second = plain.clone();
        tx.protect_rtcp(&mut second).unwrap();
        assert_eq!(second, hex(rtcp_protected));
        let mut p = hex(rtcp_protected);
        let u = rx.unprotect_rtcp(&mut p).unwrap();
        assert_eq!((u.len, u.ssrc, u.index, u.roc), (24, 0xcafe_babe, 1, 0));
        assert_eq!(&p[..u.len], &plain[..]);
    }
}

/// libsrtp test/srtp_driver.c `srtp_validate`.
#[test]
fn libsrtp_reference_aes_cm_128_hmac_sha1_80() {
    known_answer(
        Suite::AesCm128HmacSha1_80,
        LIBSRTP_KEY,
        "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb",
        Some(
            "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123
             0798",
        ),
    );
}

/// libsrtp test/srtp_driver.c `srtp_validate_aes_256` (RFC 6188 §7.2's master key).
#[test]
fn libsrtp_reference_aes_256_cm_hmac_sha1_80() {
    known_answer(
        Suite::Aes256CmHmacSha1_80,
        "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6
         3b04803de51ee7c96423ab5b78d2",
        "800f1234 decafbad cafebabe f1d9de17 ff251ff1 aa007774 b0b4b40d a08d9d9a 5b3a55d8 873b",
        None,
    );
}

/// libsrtp test/srtp_driver.c `srtp_validate_gcm`: covers the KDF with a 96-bit salt.
#[test]
fn libsrtp_reference_aead_aes_128_gcm() {
    known_answer(
        Suite::AeadAes128Gcm,
        "000102030405060708090a0b0c0d0e0f a0a1a2a3a4a5a6a7a8a9aaab",
        "800f1234 decafbad cafebabe c5002ede 04cfdd2e b91159e0 880aa06e d2976826 f796b201
         df3131a1 27e8a392",
        Some(
            "81c8000b cafebabe c98b8b5d f0392a55 852b6c21 ac8e7025 c52c6fbe a2b3b446 ea31123b
             a88ce61e 80000001",
        ),
    );
}

// ---- Round trips ---------------------------------------------------------------------

#[test]
fn every_suite_round_trips_rtp_and_rtcp_with_and_without_mki() {
    for suite in Suite::ALL {
        for mki in [None, Some(vec![0xde, 0xad, 0xbe, 0xef]), Some(vec![7])] {
            let mut key = key(suite, 3);
            key.mki = mki.clone();
            let (mut tx, mut rx) = pair(&key);
            let mki_len = mki.as_ref().map_or(0, Vec::len);
            for (i, size) in [0usize, 1, 15, 16, 17, 160, 1200].into_iter().enumerate() {
                let payload: Vec<u8> = (0..size).map(|b| b as u8 ^ 0x5a).collect();
                let csrcs: &[u32] = if i % 2 == 1 { &[1, 2, 3] } else { &[] };
                let ext: Option<&[u8]> = (i % 3 == 2).then_some(&[0x10, 0xaa, 0x21, 0xbb][..]);
                let plain = rtp(100 + i as u16, 0x1234_5678, csrcs, ext, &payload);
                let protected = protect(&mut tx, &plain);
                assert_eq!(protected.len(), plain.len() + suite.rtp_tag_len() + mki_len);
                // The header (with CSRCs and extension) stays in clear.
                let header = plain.len() - size;
                assert_eq!(protected[..header], plain[..header]);
                if size >= 16 {
                    assert_ne!(protected[header..plain.len()], plain[header..], "{suite}");
                }
                let u = roundtrip(&mut rx, &protected, &plain);
                assert_eq!(u.index, 100 + i as u64);

                let plain = rtcp(0x1234_5678, size / 4 * 4);
                let mut p = plain.clone();
                tx.protect_rtcp(&mut p).unwrap();
                assert_eq!(p.len(), plain.len() + 4 + suite.rtcp_tag_len() + mki_len);
                let u = rx.unprotect_rtcp(&mut p).unwrap();
                assert_eq!(&p[..u.len], &plain[..], "{suite} rtcp");
                assert_eq!(u.index, i as u64);
            }
        }
    }
}

#[test]
fn key_derivation_rate_rekeys_and_round_trips() {
    for suite in Suite::ALL {
        let mut key = key(suite, 9);
        key.kdr = 16;
        let (mut tx, mut rx) = pair(&key);
        let mut once = Context::new(&MasterKey {
            kdr: 0,
            ..key.clone()
        })
        .unwrap();
        for seq in 0..40u16 {
            let plain = rtp(seq, 77, &[], None, b"payload bytes here");
            let protected = protect(&mut tx, &plain);
            roundtrip(&mut rx, &protected, &plain);
            // Up to index 15 the keys are those of r = 0, the same as without a KDR.
            let mut p = protected.clone();
            let same = once.unprotect_rtp(&mut p).is_ok();
            assert_eq!(same, seq < 16, "{suite} seq {seq}");
        }
        for i in 0..20u64 {
            let plain = rtcp(77, 8);
            let mut p = plain.clone();
            tx.protect_rtcp(&mut p).unwrap();
            let u = rx.unprotect_rtcp(&mut p).unwrap();
            assert_eq!((u.index, &p[..u.len]), (i, &plain[..]));
        }
    }
}

// ---- ROC -----------------------------------------------------------------------------

#[test]
fn sequence_wrap_increments_the_roc() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(&key(suite, 1));
        let seqs: Vec<u16> = (65530..=65535).chain(0..6).collect();
        let mut late = None;
        for &seq in &seqs {
            let plain = rtp(seq, 5, &[], None, &[seq as u8; 40]);
            let protected = protect(&mut tx, &plain);
            if seq == 65534 {
                late = Some((protected, plain)); // delivered after the wrap
                continue;
            }
            let u = roundtrip(&mut rx, &protected, &plain);
            let roc = u32::from(seq < 100);
            assert_eq!(
                (u.roc, u.index),
                (roc, (u64::from(roc) << 16) | u64::from(seq))
            );
        }
        assert_eq!(rx.roc(5), Some(1));
        let (protected, plain) = late.unwrap();
        let u = roundtrip(&mut rx, &protected, &plain);
        assert_eq!((u.roc, u.index), (0, 65534));
        assert_eq!(
            rx.roc(5),
            Some(1),
            "a late packet does not move the ROC back"
        );
    }
}

#[test]
fn first_packet_at_an_unknown_roc_is_found_by_trial() {
    for suite in Suite::ALL {
        for kdr in [0, 1 << 10] {
            let mut key = key(suite, 4);
            key.kdr = kdr;
            let (mut tx, mut rx) = pair(&key);
            tx.set_roc(0xabcd, 3);
            for (n, seq) in [40000u16, 40001, 40003].into_iter().enumerate() {
                let plain = rtp(seq, 0xabcd, &[], None, b"mid-call capture");
                let protected = protect(&mut tx, &plain);
                let u = roundtrip(&mut rx, &protected, &plain);
                assert_eq!(u.roc, 3, "{suite} kdr {kdr} packet {n}");
            }
            assert_eq!(rx.roc(0xabcd), Some(3));
        }
    }
}

#[test]
fn roc_trials_are_bounded_and_only_for_the_first_packet() {
    let key = key(Suite::AesCm128HmacSha1_80, 5);
    let (mut tx, _) = pair(&key);
    tx.set_roc(9, 70);
    let plain = rtp(10, 9, &[], None, b"x");
    let protected = protect(&mut tx, &plain);

    let mut rx = Context::new(&key).unwrap();
    let mut p = protected.clone();
    assert_eq!(rx.unprotect_rtp(&mut p), Err(SrtpError::AuthFailed));
    assert_eq!(p, protected, "a failed packet is left as it was");
    rx.set_roc_trials(70);
    assert_eq!(roundtrip(&mut rx, &protected, &plain).roc, 70);

    // Once the stream is established a wrong ROC is an authentication failure, not a search.
    let mut other = Context::new(&key).unwrap();
    let first = protect(
        &mut Context::new(&key).unwrap(),
        &rtp(9, 9, &[], None, b"y"),
    );
    roundtrip(&mut other, &first, &rtp(9, 9, &[], None, b"y"));
    other.set_roc_trials(100);
    let mut p = protected.clone();
    assert_eq!(other.unprotect_rtp(&mut p), Err(SrtpError::AuthFailed));
}

#[test]
fn a_known_roc_is_used_directly() {
    let key = key(Suite::AeadAes256Gcm, 6);
    let (mut tx, mut rx) = pair(&key);
    tx.set_roc(1, 1000);
    rx.set_roc(1, 1000);
    rx.set_roc_trials(0);
    assert_eq!(rx.roc(1), Some(1000));
    let plain = rtp(2, 1, &[], None, b"abc");
    let u = roundtrip(&mut rx, &protect(&mut tx, &plain), &plain);
    assert_eq!(u.index, (1000 << 16) | 2);
}

// ---- Replay and commit-on-success ----------------------------------------------------

#[test]
fn replayed_and_too_old_packets_are_rejected() {
    for suite in [Suite::AesCm128HmacSha1_32, Suite::AeadAes128Gcm] {
        let (mut tx, mut rx) = pair(&key(suite, 2));
        let packets: Vec<(Vec<u8>, Vec<u8>)> = (0..100u16)
            .map(|seq| {
                let plain = rtp(seq, 3, &[], None, b"0123456789");
                (protect(&mut tx, &plain), plain)
            })
            .collect();
        roundtrip(&mut rx, &packets[0].0, &packets[0].1);
        let mut again = packets[0].0.clone();
        assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replay));
        assert_eq!(again, packets[0].0, "rejected before any decryption");
        roundtrip(&mut rx, &packets[99].0, &packets[99].1);
        roundtrip(&mut rx, &packets[36].0, &packets[36].1); // 63 behind
        let mut old = packets[35].0.clone(); // 64 behind
        assert_eq!(rx.unprotect_rtp(&mut old), Err(SrtpError::Replay));
        let mut again = packets[36].0.clone();
        assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replay));

        rx.set_replay_check(false);
        roundtrip(&mut rx, &packets[99].0, &packets[99].1);

        // SRTCP: same rules on the SRTCP index.
        let mut rx = Context::new(&key(suite, 2)).unwrap();
        let mut p = rtcp(3, 4);
        tx.protect_rtcp(&mut p).unwrap();
        let copy = p.clone();
        rx.unprotect_rtcp(&mut p).unwrap();
        let mut p = copy;
        assert_eq!(rx.unprotect_rtcp(&mut p), Err(SrtpError::Replay));
    }
}

#[test]
fn a_failed_tag_commits_nothing() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(&key(suite, 8));
        let plain = rtp(10, 42, &[], None, b"hello");
        roundtrip(&mut rx, &protect(&mut tx, &plain), &plain);

        // A forged packet far ahead (its SEQ would make the ROC estimate 1 after commit).
        let mut forged = protect(&mut tx.clone(), &rtp(40000, 42, &[], None, b"forged"));
        let n = forged.len();
        forged[n - 1] ^= 0x80;
        forged[13] ^= 1;
        let copy = forged.clone();
        assert_eq!(rx.unprotect_rtp(&mut forged), Err(SrtpError::AuthFailed));
        assert_eq!(forged, copy, "payload not decrypted");
        assert_eq!(rx.roc(42), Some(0));
        // The genuine packet 40000 was never seen, and the window did not move.
        let plain = rtp(11, 42, &[], None, b"next");
        roundtrip(&mut rx, &protect(&mut tx, &plain), &plain);

        // Garbage from an unknown SSRC leaves no state behind.
        let mut stranger = protect(
            &mut Context::new(&key(suite, 99)).unwrap(),
            &rtp(1, 7, &[], None, b"?"),
        );
        assert_eq!(rx.unprotect_rtp(&mut stranger), Err(SrtpError::AuthFailed));
        assert_eq!(rx.roc(7), None);
        let mut rtcp_stranger = rtcp(7, 8);
        Context::new(&key(suite, 99))
            .unwrap()
            .protect_rtcp(&mut rtcp_stranger)
            .unwrap();
        assert_eq!(
            rx.unprotect_rtcp(&mut rtcp_stranger),
            Err(SrtpError::AuthFailed)
        );
    }
}

// ---- Errors and robustness -----------------------------------------------------------

#[test]
fn mki_must_match() {
    let mut k = key(Suite::AesCm128HmacSha1_80, 1);
    k.mki = Some(vec![0, 0, 0, 1]);
    let mut tx = Context::new(&k).unwrap();
    k.mki = Some(vec![0, 0, 0, 2]);
    let mut rx = Context::new(&k).unwrap();
    let mut p = protect(&mut tx, &rtp(1, 1, &[], None, b"data"));
    assert_eq!(rx.unprotect_rtp(&mut p), Err(SrtpError::MkiMismatch));
    let mut p = rtcp(1, 0);
    tx.protect_rtcp(&mut p).unwrap();
    assert_eq!(rx.unprotect_rtcp(&mut p), Err(SrtpError::MkiMismatch));
}

#[test]
fn malformed_packets_are_typed_errors() {
    let k = key(Suite::AesCm128HmacSha1_80, 1);
    let mut rx = Context::new(&k).unwrap();
    assert_eq!(rx.unprotect_rtp(&mut []), Err(SrtpError::Truncated));
    assert_eq!(rx.unprotect_rtp(&mut [0x80; 21]), Err(SrtpError::Truncated));
    assert_eq!(rx.unprotect_rtp(&mut [0x40; 40]), Err(SrtpError::NotRtp));
    // Fifteen CSRCs do not fit in 30 bytes.
    assert_eq!(rx.unprotect_rtp(&mut [0x8f; 30]), Err(SrtpError::NotRtp));
    assert_eq!(
        rx.unprotect_rtp(&mut [0x80; 30]),
        Err(SrtpError::AuthFailed)
    );
    assert_eq!(
        rx.unprotect_rtcp(&mut [0x80; 21]),
        Err(SrtpError::Truncated)
    );
    assert_eq!(rx.unprotect_rtcp(&mut [0xc0; 22]), Err(SrtpError::NotRtp));
    let mut tx = Context::new(&k).unwrap();
    assert_eq!(
        tx.protect_rtp(&mut vec![0x80; 11]),
        Err(SrtpError::Truncated)
    );
    assert_eq!(tx.protect_rtp(&mut vec![0x90; 12]), Err(SrtpError::NotRtp));
    assert_eq!(
        tx.protect_rtcp(&mut vec![0x80; 7]),
        Err(SrtpError::Truncated)
    );
    assert_eq!(tx.protect_rtcp(&mut vec![0x00; 8]), Err(SrtpError::NotRtp));

    let mut bad = k.clone();
    bad.salt.pop();
    assert_eq!(
        Context::new(&bad).err(),
        Some(SrtpError::BadKeyLength {
            suite: Suite::AesCm128HmacSha1_80,
            expected: 14,
            got: 13
        })
    );
}

/// Random bytes, and damaged real packets, through every suite: errors, never a panic,
/// and never an "authentic" damaged packet.
#[test]
fn arbitrary_input_never_panics() {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    for suite in Suite::ALL {
        for mki in [None, Some(vec![1, 2])] {
            let mut k = key(suite, 12);
            k.mki = mki;
            let (mut tx, mut rx) = pair(&k);
            rx.set_roc_trials(4);
            for _ in 0..400 {
                let len = rng.random_range(0..80);
                let mut junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if rng.random_bool(0.7) && !junk.is_empty() {
                    junk[0] = 0x80 | (junk[0] & 0x3f); // version 2 more often
                }
                let mut a = junk.clone();
                assert!(rx.unprotect_rtp(&mut a).is_err());
                let mut b = junk.clone();
                assert!(rx.unprotect_rtcp(&mut b).is_err());
                let mut c = junk.clone();
                let _ = tx.protect_rtp(&mut c);
                let mut d = junk;
                let _ = tx.protect_rtcp(&mut d);
            }
            let plain = rtp(500, 0x77, &[9], Some(&[0x10, 1, 0, 0]), b"some audio");
            let good = protect(&mut tx, &plain);
            for _ in 0..300 {
                let mut bad = good.clone();
                if rng.random_bool(0.5) {
                    let at = rng.random_range(0..bad.len());
                    bad[at] ^= 1 << rng.random_range(0..8);
                } else {
                    bad.truncate(rng.random_range(0..bad.len()));
                }
                assert!(rx.unprotect_rtp(&mut bad).is_err(), "{suite}");
            }
            roundtrip(&mut rx, &good, &plain);
        }
    }
}

#[test]
fn context_debug_shows_no_keys() {
    let ctx = Context::new(&key(Suite::AeadAes128Gcm, 1)).unwrap();
    let text = format!("{ctx:?}");
    assert!(text.contains("AeadAes128Gcm"), "{text}");
    assert!(!text.contains("key:"), "{text}");
}

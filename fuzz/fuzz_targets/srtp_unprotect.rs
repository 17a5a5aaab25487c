//! Arbitrary bytes through the SRTP layer with fixed keys: unprotected as SRTP and as SRTCP
//! (errors, never a panic), and protected as plain RTP/RTCP, which must then unprotect back
//! to the same bytes. The first byte picks the suite (low bits), an MKI (0x40) and a
//! non-zero key derivation rate (0x80).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::srtp::{Context, MasterKey, Suite, looks_like_rtcp};

fn key(select: u8) -> MasterKey {
    let suite = Suite::ALL[usize::from(select & 0x3f) % Suite::ALL.len()];
    MasterKey {
        suite,
        key: (0..suite.master_key_len()).map(|i| 0x10 + i as u8).collect(),
        salt: (0..suite.master_salt_len()).map(|i| 0xa0 + i as u8).collect(),
        kdr: if select & 0x80 != 0 { 4 } else { 0 },
        mki: (select & 0x40 != 0).then(|| vec![0xaa, 0xbb, 0xcc]),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&select, packet)) = data.split_first() else {
        return;
    };
    let key = key(select);
    let mut rx = Context::new(&key).expect("fixed key");
    rx.set_roc_trials(3);
    let _ = looks_like_rtcp(packet);

    let mut p = packet.to_vec();
    if let Ok(u) = rx.unprotect_rtp(&mut p) {
        assert!(u.len <= packet.len());
    }
    let mut p = packet.to_vec();
    if let Ok(u) = rx.unprotect_rtcp(&mut p) {
        assert!(u.len <= packet.len());
    }

    // What we protect, we must be able to unprotect.
    let mut tx = Context::new(&key).expect("fixed key");
    let mut rx = Context::new(&key).expect("fixed key");
    let mut p = packet.to_vec();
    if tx.protect_rtp(&mut p).is_ok() {
        let u = rx.unprotect_rtp(&mut p).expect("own SRTP packet");
        assert_eq!(&p[..u.len], packet);
    }
    let mut p = packet.to_vec();
    if tx.protect_rtcp(&mut p).is_ok() {
        let u = rx.unprotect_rtcp(&mut p).expect("own SRTCP packet");
        assert_eq!(&p[..u.len], packet);
    }
});

//! Cross-check of `sipwright::srtp` against libsrtp, through Debian's python3-pylibsrtp
//! (run with the system interpreter, /usr/bin/python3).
//!
//! For each profile libsrtp reaches (AES128_CM_SHA1_80/32, AEAD_AES_128/256_GCM): libsrtp
//! protects RTP (across a sequence-number wrap, so the ROC becomes 1) and RTCP packets of
//! varied sizes that our `Context` must unprotect to the original plaintext, and libsrtp
//! must unprotect what our `Context` protects. Packets travel as hex in one JSON document
//! each way over the script's stdin/stdout.
//!
//! AES-256-CM and MKI, which this wrapper cannot reach, are checked from C in
//! `tests/srtp_libsrtp_c.rs`.
//!
//! Skips with a printed reason when python3-pylibsrtp is missing; fails under CI=true.

mod common;
use common::{VARIED_SSRC, varied_rtp_packet};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sipwright::srtp::{Context, MasterKey, Suite};

const PYTHON: &str = "/usr/bin/python3";

/// libsrtp on the other side: one outbound session that protects, one inbound session that
/// unprotects; a failure comes back as "error: ..." in place of the packet.
const SCRIPT: &str = r#"
import json, sys
import pylibsrtp
P = pylibsrtp.Policy
req = json.load(sys.stdin)
key = bytes.fromhex(req["key"])
tx = pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_OUTBOUND, srtp_profile=req["profile"]))
rx = pylibsrtp.Session(P(key=key, ssrc_type=P.SSRC_ANY_INBOUND, srtp_profile=req["profile"]))
def run(f, packets):
    out = []
    for h in packets:
        try:
            out.append(f(bytes.fromhex(h)).hex())
        except Exception as e:
            out.append("error: %s" % e)
    return out
json.dump({
    "protect_rtp": run(tx.protect, req["protect_rtp"]),
    "protect_rtcp": run(tx.protect_rtcp, req["protect_rtcp"]),
    "unprotect_rtp": run(rx.unprotect, req["unprotect_rtp"]),
    "unprotect_rtcp": run(rx.unprotect_rtcp, req["unprotect_rtcp"]),
}, sys.stdout)
"#;

/// True when the system Python has pylibsrtp. Otherwise prints why the test is skipped, or
/// panics under CI=true (same rule as `tests/common::require`).
fn have_pylibsrtp() -> bool {
    let why = if !Path::new(PYTHON).is_file() {
        Some(format!("{PYTHON} is not installed"))
    } else {
        let ok = Command::new(PYTHON)
            .args(["-c", "import pylibsrtp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (!ok).then(|| format!("{PYTHON} cannot import pylibsrtp"))
    };
    match why {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{why}: python3-pylibsrtp is required under CI=true (.ci/run installs it)")
        }
        Some(why) => {
            eprintln!("SKIPPED: {why} (apt-get install python3-pylibsrtp)");
            false
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(!s.starts_with("error"), "libsrtp: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn libsrtp(request: &Value) -> Value {
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

fn list(v: &Value, name: &str) -> Vec<Vec<u8>> {
    v[name]
        .as_array()
        .unwrap_or_else(|| panic!("{name} missing"))
        .iter()
        .map(|h| unhex(h.as_str().expect("string")))
        .collect()
}

const SSRC: u32 = VARIED_SSRC;

/// Plain RTP across the sequence-number wrap (tests/common).
fn rtp_packets() -> Vec<Vec<u8>> {
    (0..90u32).map(varied_rtp_packet).collect()
}

/// Plain RTCP receiver reports of growing size.
fn rtcp_packets() -> Vec<Vec<u8>> {
    (0..20usize)
        .map(|i| {
            let blocks = i % 4;
            let words = 1 + 6 * blocks;
            let mut p = vec![0x80 | blocks as u8, 201];
            p.extend_from_slice(&(words as u16).to_be_bytes());
            p.extend_from_slice(&SSRC.to_be_bytes());
            p.extend((0..24 * blocks).map(|b| (b + i) as u8));
            p
        })
        .collect()
}

fn cross_check(suite: Suite, profile: u32) {
    let key_salt: Vec<u8> = (0..suite.master_key_len() + suite.master_salt_len())
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(profile as u8))
        .collect();
    let key = MasterKey::from_key_salt(suite, &key_salt).expect("key");
    let rtp = rtp_packets();
    let rtcp = rtcp_packets();

    let mut ours_tx = Context::new(&key).expect("context");
    let our_rtp: Vec<Vec<u8>> = rtp
        .iter()
        .map(|p| {
            let mut p = p.clone();
            ours_tx.protect_rtp(&mut p).expect("protect");
            p
        })
        .collect();
    let our_rtcp: Vec<Vec<u8>> = rtcp
        .iter()
        .map(|p| {
            let mut p = p.clone();
            ours_tx.protect_rtcp(&mut p).expect("protect rtcp");
            p
        })
        .collect();

    let hexes = |v: &[Vec<u8>]| v.iter().map(|p| hex(p)).collect::<Vec<_>>();
    let reply = libsrtp(&json!({
        "profile": profile,
        "key": hex(&key_salt),
        "protect_rtp": hexes(&rtp),
        "protect_rtcp": hexes(&rtcp),
        "unprotect_rtp": hexes(&our_rtp),
        "unprotect_rtcp": hexes(&our_rtcp),
    }));

    // libsrtp → us.
    let mut ours_rx = Context::new(&key).expect("context");
    for (i, (protected, plain)) in list(&reply, "protect_rtp").iter().zip(&rtp).enumerate() {
        // SRTP is deterministic: both sides must produce the same bytes.
        assert_eq!(
            protected, &our_rtp[i],
            "{suite} RTP packet {i} differs from libsrtp's"
        );
        let mut p = protected.clone();
        let u = ours_rx
            .unprotect_rtp(&mut p)
            .unwrap_or_else(|e| panic!("{suite} RTP packet {i}: {e}"));
        assert_eq!(&p[..u.len], &plain[..], "{suite} RTP packet {i}");
        assert_eq!(u.roc, u32::from(i >= 36), "{suite} ROC of packet {i}");
    }
    assert_eq!(ours_rx.roc(SSRC), Some(1));
    for (i, (protected, plain)) in list(&reply, "protect_rtcp").iter().zip(&rtcp).enumerate() {
        let mut p = protected.clone();
        let u = ours_rx
            .unprotect_rtcp(&mut p)
            .unwrap_or_else(|e| panic!("{suite} RTCP packet {i}: {e}"));
        assert_eq!(&p[..u.len], &plain[..], "{suite} RTCP packet {i}");
        assert_eq!(u.ssrc, SSRC);
    }

    // Us → libsrtp.
    assert_eq!(
        list(&reply, "unprotect_rtp"),
        rtp,
        "{suite}: libsrtp unprotect"
    );
    assert_eq!(
        list(&reply, "unprotect_rtcp"),
        rtcp,
        "{suite}: libsrtp unprotect_rtcp"
    );
}

#[test]
fn aes128_cm_sha1_80_matches_libsrtp() {
    if have_pylibsrtp() {
        cross_check(Suite::AesCm128HmacSha1_80, 1);
    }
}

#[test]
fn aes128_cm_sha1_32_matches_libsrtp() {
    if have_pylibsrtp() {
        cross_check(Suite::AesCm128HmacSha1_32, 2);
    }
}

#[test]
fn aead_aes_128_gcm_matches_libsrtp() {
    if have_pylibsrtp() {
        cross_check(Suite::AeadAes128Gcm, 7);
    }
}

#[test]
fn aead_aes_256_gcm_matches_libsrtp() {
    if have_pylibsrtp() {
        cross_check(Suite::AeadAes256Gcm, 8);
    }
}

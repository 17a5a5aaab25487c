//! SDES key exchange (RFC 4568) in offer/answer: which `a=crypto` lines we write, and
//! which of the peer's we accept.
//!
//! - Each side's line carries the key *it* sends with; the answer echoes the tag of the
//!   offer line it accepts, with its own key for that suite (§6.1).
//! - Offerer: one line per suite we are willing to use, in our preference order.
//!   Answerer: the first line of the offer (its preference) whose suite we offer too.
//! - Profiles: `RTP/SAVP` when SRTP is required; `RTP/AVP` with `a=crypto` lines when it
//!   is only wanted (best effort, as some SBCs do); answers keep the offer's profile.

use std::io::Write as _;

use super::crypto::{Crypto, clip, encode_base64};
use super::negotiate::NegotiateError;
use crate::srtp::{MasterKey, Suite};

/// At most this many of the peer's lines are described in an error: a hostile SDP may
/// carry thousands.
const MAX_LINES_IN_ERROR: usize = 8;

/// Whether a call insists on SRTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpPolicy {
    /// Offer `RTP/AVP` with crypto lines; a plain answer means a plain call.
    BestEffort,
    /// Offer `RTP/SAVP`; a plain answer (or offer) fails the call (or is answered 488).
    Required,
}

/// One of our `a=crypto` lines: the tag and the key we send with for that suite
/// (`key.suite`; `key.mki` written as `|VALUE:LEN`, `key.kdr` as `KDR=n`).
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey {
    pub tag: u32,
    pub key: MasterKey,
}

impl std::fmt::Debug for SdesKey {
    /// No key material in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SdesKey({} {})", self.tag, self.key.suite)
    }
}

/// Our side of SDES: the policy and one key per suite, in preference order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSrtp {
    pub policy: SrtpPolicy,
    pub keys: Vec<SdesKey>,
}

/// The crypto both sides agreed on.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpAgreed {
    /// Tag of the accepted line (the offer's).
    pub tag: u32,
    pub suite: Suite,
    /// What we protect with (our key for `suite`).
    pub local: MasterKey,
    /// What the peer protects with (from its line).
    pub remote: MasterKey,
    /// The profile the answer carries (`RTP/SAVP` true, `RTP/AVP` false): the offer's.
    pub savp: bool,
}

impl std::fmt::Debug for SrtpAgreed {
    /// No key material in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpAgreed")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("savp", &self.savp)
            .finish_non_exhaustive()
    }
}

/// Append `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<mki>:<len>][ KDR=<n>]\r\n`.
///
/// No lifetime: we never re-key on our own, so there is no limit to announce. `tag` must
/// be at most 9 digits for the peer to accept it (RFC 4568 §9.1). A zero-length MKI is
/// no MKI; any longer one is written exactly (we only generate up to 4 bytes, and
/// [`Crypto::parse`] reads values up to 128 bits). `key.kdr` is written as its base-2
/// logarithm; it is always a power of two when it came from SDES or configuration.
pub fn write_crypto(tag: u32, key: &MasterKey, out: &mut Vec<u8>) {
    let mut key_salt = Vec::with_capacity(key.key.len() + key.salt.len());
    key_salt.extend_from_slice(&key.key);
    key_salt.extend_from_slice(&key.salt);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "a=crypto:{tag} {} inline:{}",
        key.suite.sdes_name(),
        encode_base64(&key_salt)
    );
    if let Some(mki) = key.mki.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(out, "|{}:{}", decimal(mki), mki.len());
    }
    if key.kdr != 0 {
        let _ = write!(out, " KDR={}", key.kdr.ilog2());
    }
    out.extend_from_slice(b"\r\n");
}

/// A big-endian unsigned integer of any length in decimal (MKI values are written so).
fn decimal(be: &[u8]) -> String {
    let mut n: Vec<u8> = be.iter().copied().skip_while(|&b| b == 0).collect();
    let mut digits = Vec::new();
    // Long division by 10, one decimal digit per pass; at most 128 bytes here.
    while !n.is_empty() {
        let mut rem = 0u16;
        for b in &mut n {
            let cur = rem << 8 | u16::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(char::from(b'0' + rem as u8));
        let zeros = n.iter().take_while(|&&b| b == 0).count();
        n.drain(..zeros);
    }
    if digits.is_empty() {
        digits.push('0');
    }
    digits.iter().rev().collect()
}

/// Answerer: the first line of the offer (offer order, RFC 4568 §5.1.2) whose suite we
/// have a key for, with a usable key and no session parameter we cannot honour.
/// `Ok(None)`: a plain call (best effort, or no SRTP on either side).
pub(crate) fn accept_offer(
    local: Option<&LocalSrtp>,
    savp: bool,
    offer: &[Crypto],
) -> Result<Option<SrtpAgreed>, NegotiateError> {
    let Some(local) = local else {
        if savp {
            let suites = if offer.is_empty() {
                "no a=crypto line".to_owned()
            } else {
                listed(offer.iter().map(suite_name))
            };
            return Err(NegotiateError::SrtpNotConfigured(format!(
                "RTP/SAVP with {suites}"
            )));
        }
        // A best-effort RTP/AVP offer may carry crypto lines; answering plain is allowed.
        return Ok(None);
    };
    let mut rejected = Vec::new();
    for c in offer {
        let line = format!("a=crypto:{} {}", c.tag, suite_name(c));
        let Some(suite) = c.suite else {
            rejected.push(format!("{line} (unsupported suite)"));
            continue;
        };
        let Some(ours) = local.keys.iter().find(|k| k.key.suite == suite) else {
            rejected.push(format!("{line} (not one we accept)"));
            continue;
        };
        match usable_key(c) {
            Ok(theirs) => {
                return Ok(Some(SrtpAgreed {
                    tag: c.tag,
                    suite,
                    local: ours.key.clone(),
                    remote: theirs.clone(),
                    savp,
                }));
            }
            Err(why) => rejected.push(format!("{line} ({why})")),
        }
    }
    if local.policy == SrtpPolicy::BestEffort && !savp {
        return Ok(None);
    }
    let profile = if savp { "RTP/SAVP" } else { "RTP/AVP" };
    let offered = if offer.is_empty() {
        format!("the {profile} offer has no a=crypto line")
    } else {
        format!("the {profile} offer has {}", listed(rejected.into_iter()))
    };
    let ours = listed(
        local
            .keys
            .iter()
            .map(|k| k.key.suite.sdes_name().to_owned()),
    );
    Err(NegotiateError::NoUsableCrypto(format!(
        "{offered}; we accept {ours}"
    )))
}

/// Offerer: the answer's line that echoes one of our tags with that line's suite
/// (RFC 4568 §5.1.3), with a usable key and no session parameter we cannot honour.
/// `Ok(None)`: a plain call (best effort, or we offered no SRTP).
pub(crate) fn accept_answer(
    local: Option<&LocalSrtp>,
    savp: bool,
    answer: &[Crypto],
) -> Result<Option<SrtpAgreed>, NegotiateError> {
    // We offered plain RTP: whatever the answer says, nobody has our key.
    let Some(local) = local else { return Ok(None) };
    let mut rejected = Vec::new();
    for c in answer {
        let Some(first) = local.keys.iter().find(|k| k.tag == c.tag) else {
            rejected.push(format!(
                "the answer's a=crypto:{} names a tag we did not offer",
                c.tag
            ));
            continue;
        };
        // Tags should be unique in our offer; if not, any line with the suite will do.
        let Some(ours) = local
            .keys
            .iter()
            .find(|k| k.tag == c.tag && Some(k.key.suite) == c.suite)
        else {
            rejected.push(format!(
                "tag {} is {} in our offer but {} in the answer",
                c.tag,
                first.key.suite,
                suite_name(c)
            ));
            continue;
        };
        match usable_key(c) {
            Ok(theirs) => {
                return Ok(Some(SrtpAgreed {
                    tag: c.tag,
                    suite: ours.key.suite,
                    local: ours.key.clone(),
                    remote: theirs.clone(),
                    savp,
                }));
            }
            Err(why) => rejected.push(format!(
                "the answer's a=crypto:{} {} has {why}",
                c.tag,
                suite_name(c)
            )),
        }
    }
    if local.policy == SrtpPolicy::BestEffort && !savp {
        return Ok(None);
    }
    let found = if answer.is_empty() {
        "the answer has no a=crypto line".to_owned()
    } else {
        listed_with(rejected.into_iter(), "; ")
    };
    let offered = listed(
        local
            .keys
            .iter()
            .map(|k| format!("{} {}", k.tag, k.key.suite)),
    );
    Err(NegotiateError::NoUsableCrypto(format!(
        "{found}; we offered {offered}"
    )))
}

/// The line's first key, or why there is none we may use. The UNENCRYPTED_*/
/// UNAUTHENTICATED_* parameters switch parts of SRTP off; our transforms always encrypt
/// and authenticate, so such a line would not interoperate.
fn usable_key(c: &Crypto) -> Result<&MasterKey, String> {
    let unsupported = [
        (c.unencrypted_srtp, "UNENCRYPTED_SRTP"),
        (c.unencrypted_srtcp, "UNENCRYPTED_SRTCP"),
        (c.unauthenticated_srtp, "UNAUTHENTICATED_SRTP"),
    ];
    if let Some((_, name)) = unsupported.iter().find(|(set, _)| *set) {
        return Err(format!("{name}, which we do not support"));
    }
    c.keys.first().ok_or_else(|| {
        if c.warnings.is_empty() {
            "no usable key".to_owned()
        } else {
            format!("no usable key: {}", c.warnings.join("; "))
        }
    })
}

/// The suite as the RFC names it, or as the peer wrote it when we do not know it.
fn suite_name(c: &Crypto) -> String {
    c.suite
        .map_or_else(|| clip(&c.suite_name), |s| s.sdes_name().to_owned())
}

/// `a, b, c` (at most [`MAX_LINES_IN_ERROR`] items, then how many more), or `none`.
fn listed(items: impl Iterator<Item = String>) -> String {
    listed_with(items, ", ")
}

fn listed_with(items: impl Iterator<Item = String>, sep: &str) -> String {
    let mut shown = Vec::new();
    let mut more = 0usize;
    for item in items {
        if shown.len() < MAX_LINES_IN_ERROR {
            shown.push(item);
        } else {
            more += 1;
        }
    }
    if shown.is_empty() {
        return "none".to_owned();
    }
    let mut text = shown.join(sep);
    if more > 0 {
        text.push_str(&format!("{sep}and {more} more"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::sdp::Direction;
    use crate::sdp::negotiate::{
        Codec, LocalMedia, Negotiated, negotiate, remote_media, write_answer,
        write_answer_to_offer, write_offer,
    };

    const KEY80: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

    /// key||salt = 0, 1, 2, … (easy to check against base64 by hand).
    fn counting(suite: Suite) -> MasterKey {
        let n = suite.master_key_len() + suite.master_salt_len();
        MasterKey::from_key_salt(suite, &(0..n as u8).collect::<Vec<_>>()).unwrap()
    }

    /// A key that differs per `seed`, so crossed-over keys are told apart.
    fn key(suite: Suite, seed: u8) -> MasterKey {
        let n = suite.master_key_len() + suite.master_salt_len();
        let bytes: Vec<u8> = (0..n as u8)
            .map(|i| i.wrapping_mul(31).wrapping_add(seed).rotate_left(3))
            .collect();
        MasterKey::from_key_salt(suite, &bytes).unwrap()
    }

    /// Tags 1, 2, … in the given order; keys seeded from `seed`.
    fn srtp(policy: SrtpPolicy, suites: &[Suite], seed: u8) -> LocalSrtp {
        LocalSrtp {
            policy,
            keys: suites
                .iter()
                .zip(1u32..)
                .map(|(&s, tag)| SdesKey {
                    tag,
                    key: key(s, seed.wrapping_add(tag as u8)),
                })
                .collect(),
        }
    }

    fn media(srtp: Option<LocalSrtp>) -> LocalMedia {
        LocalMedia {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            rtp_port: 20000,
            rtcp_port: Some(20001),
            rtcp_mux: false,
            codecs: vec![Codec {
                name: "PCMU".into(),
                payload_type: 0,
                clock_rate: 8000,
            }],
            telephone_event: Some(101),
            ptime: Duration::from_millis(20),
            direction: Direction::SendRecv,
            ssrc: None,
            srtp,
            session_id: 42,
            session_version: 7,
        }
    }

    fn crypto_line(tag: u32, key: &MasterKey) -> String {
        let mut out = Vec::new();
        write_crypto(tag, key, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// A peer SDP with one PCMU stream of profile `proto` and the given extra lines.
    fn peer(proto: &str, lines: &str) -> String {
        format!(
            "v=0\r\no=peer 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\n\
             t=0 0\r\nm=audio 30000 {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{lines}"
        )
    }

    fn run(local: &LocalMedia, sdp: &str, we_offered: bool) -> Result<Negotiated, NegotiateError> {
        negotiate(local, &remote_media(sdp).unwrap(), we_offered)
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn no_usable(e: NegotiateError) -> String {
        match e {
            NegotiateError::NoUsableCrypto(m) => m,
            other => panic!("expected NoUsableCrypto, got {other:?}"),
        }
    }

    #[test]
    fn write_crypto_golden_lines() {
        let mut k = counting(Suite::AesCm128HmacSha1_80);
        k.mki = Some(vec![0, 0, 0, 1]);
        k.kdr = 1 << 10;
        assert_eq!(
            crypto_line(1, &k),
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|1:4 KDR=10\r\n")
        );
        let k = counting(Suite::AesCm128HmacSha1_32);
        assert_eq!(
            crypto_line(2, &k),
            format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY80}\r\n")
        );
        let mut k = counting(Suite::AeadAes128Gcm);
        k.mki = Some(vec![1, 2]);
        k.kdr = 1;
        assert_eq!(
            crypto_line(3, &k),
            "a=crypto:3 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==\
             |258:2 KDR=0\r\n"
        );
        let mut k = counting(Suite::Aes256CmHmacSha1_80);
        k.mki = Some(vec![0xff; 16]);
        k.kdr = 1 << 24;
        assert_eq!(
            crypto_line(999_999_999, &k),
            "a=crypto:999999999 AES_256_CM_HMAC_SHA1_80 \
             inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ==\
             |340282366920938463463374607431768211455:16 KDR=24\r\n"
        );
        let mut k = counting(Suite::AeadAes256Gcm);
        assert!(crypto_line(4, &k).contains(
            " AEAD_AES_256_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis=\r\n"
        ));
        // A zero-length MKI is no MKI; one wider than 128 bits is still written exactly.
        k.mki = Some(Vec::new());
        assert!(!crypto_line(4, &k).contains('|'));
        let mut wide = vec![0u8; 17];
        wide[0] = 1;
        k.mki = Some(wide);
        assert!(crypto_line(4, &k).contains("|340282366920938463463374607431768211456:17\r\n"));
    }

    #[test]
    fn decimal_of_big_endian_bytes() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0, 0]), "0");
        assert_eq!(decimal(&[255]), "255");
        assert_eq!(decimal(&[1, 0]), "256");
        assert_eq!(decimal(&[0, 0, 0x12, 0x34, 0x56, 0x78]), "305419896");
        assert_eq!(decimal(&u64::MAX.to_be_bytes()), u64::MAX.to_string());
    }

    #[test]
    fn write_crypto_round_trips_through_parse() {
        let mkis: [Option<Vec<u8>>; 5] = [
            None,
            Some(vec![7]),
            Some(vec![0, 0, 1, 2]),
            Some(vec![0xff; 16]),
            Some(vec![0; 20]),
        ];
        for suite in Suite::ALL {
            for mki in &mkis {
                for kdr in [0, 1, 1 << 16, 1 << 24] {
                    let mut k = key(suite, 9);
                    k.mki = mki.clone();
                    k.kdr = kdr;
                    let line = crypto_line(12345, &k);
                    let value = line
                        .strip_prefix("a=crypto:")
                        .and_then(|v| v.strip_suffix("\r\n"))
                        .unwrap();
                    let c = Crypto::parse(value).unwrap();
                    assert!(c.warnings.is_empty(), "{line}: {:?}", c.warnings);
                    assert_eq!((c.tag, c.suite), (12345, Some(suite)));
                    assert_eq!(c.keys, [k], "{line}");
                }
            }
        }
    }

    #[test]
    fn required_offer_is_savp_with_lines_in_order() {
        use Suite::*;
        let local = srtp(
            SrtpPolicy::Required,
            &[AeadAes128Gcm, AesCm128HmacSha1_80, AesCm128HmacSha1_32],
            1,
        );
        let lines: String = local
            .keys
            .iter()
            .map(|k| crypto_line(k.tag, &k.key))
            .collect();
        let offer = text(|o| write_offer(&media(Some(local.clone())), o));
        assert!(
            offer.contains("m=audio 20000 RTP/SAVP 0 101\r\n"),
            "{offer}"
        );
        assert!(
            offer.contains(&format!("a=fmtp:101 0-16\r\n{lines}a=ptime:20\r\n")),
            "{offer}"
        );
        let r = remote_media(&offer).unwrap();
        assert!(r.savp);
        let read: Vec<_> = r.crypto.iter().map(|c| (c.tag, c.suite)).collect();
        assert_eq!(
            read,
            [
                (1, Some(AeadAes128Gcm)),
                (2, Some(AesCm128HmacSha1_80)),
                (3, Some(AesCm128HmacSha1_32))
            ]
        );
        assert_eq!(r.crypto[1].keys, [local.keys[1].key.clone()]);
    }

    #[test]
    fn best_effort_offer_is_avp_with_lines() {
        let local = srtp(SrtpPolicy::BestEffort, &[Suite::AesCm128HmacSha1_80], 1);
        let offer = text(|o| write_offer(&media(Some(local.clone())), o));
        assert!(offer.contains("m=audio 20000 RTP/AVP 0 101\r\n"), "{offer}");
        assert!(offer.contains(&crypto_line(1, &local.keys[0].key)));
        let r = remote_media(&offer).unwrap();
        assert!(!r.savp);
        assert_eq!(r.crypto.len(), 1);
        // Without srtp: no crypto line at all.
        assert!(!text(|o| write_offer(&media(None), o)).contains("crypto"));
    }

    #[test]
    fn profile_is_read_case_insensitively() {
        for (proto, savp) in [
            ("RTP/SAVP", true),
            ("rtp/savpf", true),
            ("RTP/AVP", false),
            ("RTP/AVPF", false),
            ("UDP/TLS/RTP/SAVPF", false),
        ] {
            assert_eq!(
                remote_media(&peer(proto, "")).unwrap().savp,
                savp,
                "{proto}"
            );
        }
    }

    #[test]
    fn answerer_takes_offers_first_acceptable_line_with_our_key() {
        use Suite::*;
        // We prefer _80; the offer prefers _32 after a suite we do not have.
        let local = srtp(
            SrtpPolicy::Required,
            &[AesCm128HmacSha1_80, AesCm128HmacSha1_32],
            1,
        );
        let theirs = key(AesCm128HmacSha1_32, 100);
        let offer = peer(
            "RTP/SAVP",
            &format!(
                "{}{}{}",
                crypto_line(5, &key(AeadAes256Gcm, 99)),
                crypto_line(7, &theirs),
                crypto_line(8, &key(AesCm128HmacSha1_80, 101))
            ),
        );
        let l = media(Some(local.clone()));
        let n = run(&l, &offer, false).unwrap();
        let s = n.srtp.as_ref().unwrap();
        assert_eq!((s.tag, s.suite, s.savp), (7, AesCm128HmacSha1_32, true));
        assert_eq!(s.local, local.keys[1].key);
        assert_eq!(s.remote, theirs);

        let answer = text(|o| write_answer(&l, &n, o));
        assert!(answer.contains("m=audio 20000 RTP/SAVP 0\r\n"), "{answer}");
        assert_eq!(answer.matches("a=crypto:").count(), 1, "{answer}");
        assert!(answer.contains(&format!(
            "a=rtpmap:0 PCMU/8000\r\n{}a=ptime:20\r\n",
            crypto_line(7, &local.keys[1].key)
        )));
        // The positional answer too; rejected streams keep their profile.
        let offer_video = format!("{offer}m=video 4000 RTP/SAVP 96\r\n");
        let answer = text(|o| write_answer_to_offer(&l, &n, &offer_video, o));
        assert!(answer.contains("m=audio 20000 RTP/SAVP 0\r\n"));
        assert!(answer.contains("m=video 0 RTP/SAVP 96\r\n"));
        assert_eq!(answer.matches("a=crypto:").count(), 1);
    }

    #[test]
    fn answerer_skips_unusable_lines() {
        let local = srtp(SrtpPolicy::Required, &[Suite::AesCm128HmacSha1_80], 1);
        let good = key(Suite::AesCm128HmacSha1_80, 50);
        let good_b64 = encode_base64(&[good.key.clone(), good.salt.clone()].concat());
        let bad_lines = format!(
            "a=crypto:1 F8_128_HMAC_SHA1_80 inline:{KEY80}\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMU\r\n\
             a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY80} UNENCRYPTED_SRTP\r\n\
             a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{KEY80} UNENCRYPTED_SRTCP\r\n\
             a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY80} UNAUTHENTICATED_SRTP\r\n\
             a=crypto:6 AES_CM_128_HMAC_SHA1_32 inline:{KEY80}\r\n"
        );
        let good_line = format!("a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{good_b64}\r\n");
        let l = media(Some(local.clone()));
        let n = run(
            &l,
            &peer("RTP/SAVP", &(bad_lines.clone() + &good_line)),
            false,
        )
        .unwrap();
        let s = n.srtp.unwrap();
        assert_eq!(s.tag, 9);
        assert_eq!(s.remote, good);

        // Only the bad ones: each is explained, then what we accept.
        let e = run(&l, &peer("RTP/SAVP", &bad_lines), false).unwrap_err();
        assert_eq!(
            no_usable(e),
            "the RTP/SAVP offer has a=crypto:1 F8_128_HMAC_SHA1_80 (unsupported suite), \
             a=crypto:2 AES_CM_128_HMAC_SHA1_80 (no usable key: AES_CM_128_HMAC_SHA1_80 \
             needs 30 bytes of key||salt, inline key has 21: key ignored), \
             a=crypto:3 AES_CM_128_HMAC_SHA1_80 (UNENCRYPTED_SRTP, which we do not support), \
             a=crypto:4 AES_CM_128_HMAC_SHA1_80 (UNENCRYPTED_SRTCP, which we do not support), \
             a=crypto:5 AES_CM_128_HMAC_SHA1_80 (UNAUTHENTICATED_SRTP, which we do not \
             support), a=crypto:6 AES_CM_128_HMAC_SHA1_32 (not one we accept); \
             we accept AES_CM_128_HMAC_SHA1_80"
        );
        // Best effort, but the offer is RTP/SAVP: still an error.
        let mut be = local.clone();
        be.policy = SrtpPolicy::BestEffort;
        assert!(
            run(
                &media(Some(be.clone())),
                &peer("RTP/SAVP", &bad_lines),
                false
            )
            .is_err()
        );
        // Best effort with an RTP/AVP offer: plain.
        let n = run(&media(Some(be)), &peer("RTP/AVP", &bad_lines), false).unwrap();
        assert_eq!(n.srtp, None);
    }

    #[test]
    fn savp_offer_without_our_srtp_setting() {
        let lines = format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}\r\n\
             a=crypto:2 aead_aes_128_gcm inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw\r\n\
             a=crypto:3 F8_128_HMAC_SHA1_80 inline:{KEY80}\r\n"
        );
        let e = run(&media(None), &peer("RTP/SAVP", &lines), false).unwrap_err();
        assert_eq!(
            e,
            NegotiateError::SrtpNotConfigured(
                "RTP/SAVP with AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM, F8_128_HMAC_SHA1_80"
                    .into()
            )
        );
        assert_eq!(
            e.to_string(),
            "the peer offers SRTP only (RTP/SAVP with AES_CM_128_HMAC_SHA1_80, \
             AEAD_AES_128_GCM, F8_128_HMAC_SHA1_80); add `srtp:` to the scenario's media block"
        );
        let e = run(&media(None), &peer("RTP/SAVPF", ""), false).unwrap_err();
        assert_eq!(
            e,
            NegotiateError::SrtpNotConfigured("RTP/SAVP with no a=crypto line".into())
        );
        // A best-effort RTP/AVP offer: answered plain, crypto lines ignored.
        let l = media(None);
        let n = run(&l, &peer("RTP/AVP", &lines), false).unwrap();
        assert_eq!(n.srtp, None);
        let answer = text(|o| write_answer(&l, &n, o));
        assert!(answer.contains("m=audio 20000 RTP/AVP 0\r\n") && !answer.contains("crypto"));
        // Codec errors come first.
        let offer = peer("RTP/SAVP", "").replace(" 0\r\na=rtpmap:0 PCMU/8000", " 18");
        assert!(matches!(
            run(&l, &offer, false),
            Err(NegotiateError::NoCommonCodec { .. })
        ));
    }

    #[test]
    fn required_against_plain_offer_and_best_effort_falls_back() {
        use Suite::*;
        let req = srtp(
            SrtpPolicy::Required,
            &[AesCm128HmacSha1_80, AeadAes128Gcm],
            1,
        );
        let e = run(&media(Some(req)), &peer("RTP/AVP", ""), false).unwrap_err();
        assert_eq!(
            no_usable(e),
            "the RTP/AVP offer has no a=crypto line; \
             we accept AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM"
        );
        let be = srtp(SrtpPolicy::BestEffort, &[AesCm128HmacSha1_80], 1);
        let l = media(Some(be));
        let n = run(&l, &peer("RTP/AVP", ""), false).unwrap();
        assert_eq!(n.srtp, None);
        let answer = text(|o| write_answer(&l, &n, o));
        assert!(answer.contains("m=audio 20000 RTP/AVP 0\r\n") && !answer.contains("crypto"));
        // A best-effort RTP/AVP offer with a line we take: SRTP, answered in RTP/AVP.
        let n = run(
            &l,
            &peer("RTP/AVP", &crypto_line(4, &key(AesCm128HmacSha1_80, 3))),
            false,
        )
        .unwrap();
        assert!(!n.srtp.as_ref().unwrap().savp);
        let answer = text(|o| write_answer(&l, &n, o));
        assert!(answer.contains("m=audio 20000 RTP/AVP 0\r\n"));
        assert!(answer.contains("a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:"));
    }

    #[test]
    fn error_lists_only_the_first_lines() {
        let lines: String = (1..=20)
            .map(|t| format!("a=crypto:{t} F8_128_HMAC_SHA1_80 inline:{KEY80}\r\n"))
            .collect();
        let local = srtp(SrtpPolicy::Required, &[Suite::AesCm128HmacSha1_80], 1);
        let m = no_usable(run(&media(Some(local)), &peer("RTP/SAVP", &lines), false).unwrap_err());
        assert!(
            m.contains("a=crypto:8 F8") && !m.contains("a=crypto:9 F8"),
            "{m}"
        );
        assert!(m.contains(", and 12 more; we accept"), "{m}");
    }

    #[test]
    fn offerer_takes_the_echoed_tag() {
        use Suite::*;
        let local = srtp(
            SrtpPolicy::Required,
            &[AesCm128HmacSha1_80, AesCm128HmacSha1_32],
            1,
        );
        let theirs = key(AesCm128HmacSha1_32, 77);
        let answer = peer("RTP/SAVP", &crypto_line(2, &theirs));
        let n = run(&media(Some(local.clone())), &answer, true).unwrap();
        let s = n.srtp.unwrap();
        assert_eq!((s.tag, s.suite, s.savp), (2, AesCm128HmacSha1_32, true));
        assert_eq!(s.local, local.keys[1].key);
        assert_eq!(s.remote, theirs);
    }

    #[test]
    fn offerer_rejects_answers_that_do_not_match() {
        use Suite::*;
        let req = srtp(
            SrtpPolicy::Required,
            &[AesCm128HmacSha1_80, AesCm128HmacSha1_32],
            1,
        );
        let offered = "we offered 1 AES_CM_128_HMAC_SHA1_80, 2 AES_CM_128_HMAC_SHA1_32";
        let cases = [
            (
                crypto_line(3, &key(AesCm128HmacSha1_80, 5)),
                "the answer's a=crypto:3 names a tag we did not offer".to_owned(),
            ),
            (
                crypto_line(1, &key(AesCm128HmacSha1_32, 5)),
                "tag 1 is AES_CM_128_HMAC_SHA1_80 in our offer but AES_CM_128_HMAC_SHA1_32 \
                 in the answer"
                    .to_owned(),
            ),
            (
                format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80} UNENCRYPTED_SRTP\r\n"),
                "the answer's a=crypto:1 AES_CM_128_HMAC_SHA1_80 has UNENCRYPTED_SRTP, \
                 which we do not support"
                    .to_owned(),
            ),
            (String::new(), "the answer has no a=crypto line".to_owned()),
        ];
        for (lines, want) in &cases {
            for proto in ["RTP/SAVP", "RTP/AVP"] {
                let answer = peer(proto, lines);
                let e = run(&media(Some(req.clone())), &answer, true).unwrap_err();
                assert_eq!(no_usable(e), format!("{want}; {offered}"));
            }
            // Best effort: a plain RTP/AVP answer is a plain call; RTP/SAVP still fails.
            let mut be = req.clone();
            be.policy = SrtpPolicy::BestEffort;
            let n = run(&media(Some(be.clone())), &peer("RTP/AVP", lines), true).unwrap();
            assert_eq!(n.srtp, None);
            assert!(run(&media(Some(be)), &peer("RTP/SAVP", lines), true).is_err());
        }
        // Both a wrong and a right line: the right one wins.
        let theirs = key(AesCm128HmacSha1_80, 8);
        let lines = format!("{}{}", cases[0].0, crypto_line(1, &theirs));
        let n = run(&media(Some(req)), &peer("RTP/SAVP", &lines), true).unwrap();
        assert_eq!(n.srtp.unwrap().remote, theirs);
        // We offered plain: crypto in the answer is ignored.
        let n = run(&media(None), &peer("RTP/SAVP", &cases[0].0), true).unwrap();
        assert_eq!(n.srtp, None);
    }

    #[test]
    fn full_round_trip_keys_cross_over() {
        for suite in Suite::ALL {
            for with_mki in [false, true] {
                for policy in [SrtpPolicy::Required, SrtpPolicy::BestEffort] {
                    // Offerer: the suite under test first, then another one.
                    let other = if suite == Suite::AesCm128HmacSha1_80 {
                        Suite::AeadAes256Gcm
                    } else {
                        Suite::AesCm128HmacSha1_80
                    };
                    let mut ours = srtp(policy, &[suite, other], 10);
                    // Answerer: every suite, in reverse order (the offer's order wins).
                    let all: Vec<Suite> = Suite::ALL.iter().rev().copied().collect();
                    let mut theirs = srtp(SrtpPolicy::BestEffort, &all, 60);
                    if with_mki {
                        for (i, k) in ours.keys.iter_mut().enumerate() {
                            k.key.mki = Some(vec![i as u8 + 1]);
                            k.key.kdr = 1 << 20;
                        }
                        for k in &mut theirs.keys {
                            k.key.mki = Some(vec![0, 0, 0, k.tag as u8]);
                        }
                    }
                    let offerer = media(Some(ours.clone()));
                    let answerer = media(Some(theirs.clone()));
                    let offer = text(|o| write_offer(&offerer, o));
                    let a = negotiate(&answerer, &remote_media(&offer).unwrap(), false).unwrap();
                    let answer = text(|o| write_answer(&answerer, &a, o));
                    let o = negotiate(&offerer, &remote_media(&answer).unwrap(), true).unwrap();
                    let (a, o) = (a.srtp.unwrap(), o.srtp.unwrap());
                    let ctx = format!("{suite} mki={with_mki} {policy:?}");
                    assert_eq!((a.tag, a.suite), (1, suite), "{ctx}");
                    assert_eq!((o.tag, o.suite), (1, suite), "{ctx}");
                    assert_eq!(o.local, ours.keys[0].key, "{ctx}");
                    let their_key = &theirs.keys.iter().find(|k| k.key.suite == suite).unwrap();
                    assert_eq!(a.local, their_key.key, "{ctx}");
                    assert_eq!(a.remote, o.local, "{ctx}");
                    assert_eq!(o.remote, a.local, "{ctx}");
                    let savp = policy == SrtpPolicy::Required;
                    assert_eq!((a.savp, o.savp), (savp, savp), "{ctx}");
                }
            }
        }
    }

    #[test]
    fn vendor_spellings_are_accepted() {
        use Suite::*;
        // Misspelt AES-256 suite name, unpadded base64, lower case.
        let k46 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ";
        let local = srtp(SrtpPolicy::Required, &[Aes256CmHmacSha1_80], 1);
        let l = media(Some(local.clone()));
        let offer = peer(
            "RTP/SAVP",
            &format!("a=crypto:1 aes_cm_256_hmac_sha1_80 inline:{k46}\r\n"),
        );
        let n = run(&l, &offer, false).unwrap();
        let s = n.srtp.as_ref().unwrap();
        assert_eq!(s.suite, Aes256CmHmacSha1_80);
        assert_eq!(s.remote, counting(Aes256CmHmacSha1_80));
        // Our answer uses the RFC name; an offerer reads it as the same suite.
        let answer = text(|o| write_answer(&l, &n, o));
        assert!(answer.contains("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:"));
        // Two keys with "; inline:" spacing and lifetimes: the first key is used.
        let offer = peer(
            "RTP/SAVP",
            &format!(
                "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^31|1:1; \
                 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|2:1\r\n"
            ),
        );
        let local = srtp(SrtpPolicy::Required, &[AesCm128HmacSha1_80], 1);
        let n = run(&media(Some(local)), &offer, false).unwrap();
        let s = n.srtp.unwrap();
        assert_eq!(s.tag, 3);
        let mut want = counting(AesCm128HmacSha1_80);
        want.mki = Some(vec![1]);
        assert_eq!(s.remote, want);
    }
}

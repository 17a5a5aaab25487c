//! One set of session keys applied to packets: AES-CM + HMAC-SHA1 (RFC 3711 §4.1.1, §4.2.1)
//! or AES-GCM (RFC 7714 §8–§9). Key schedules and the keyed HMAC state are computed once
//! when the keys are derived; a packet only clones the HMAC state (two SHA-1 states).
//!
//! `open_*` verify first and decrypt only when the tag matches, leaving the packet untouched
//! otherwise, so the caller can retry with another ROC.

use aes::cipher::{BlockCipherEncrypt, BlockSizeUser, KeyInit};
use aes::{Aes128Enc, Aes256Enc};
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::{AeadInOut, AesGcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::Suite;
use super::aes_cm::{AesCm, packet_iv};
use super::kdf::{Kdf, label};
use super::layout::{RTCP_HEADER, SrtcpLayout, SrtpLayout};

type HmacSha1 = Hmac<Sha1>;

/// SRTP or SRTCP: they have separate session keys (different KDF labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Rtp,
    Rtcp,
}

/// Session keys ready for use.
#[derive(Clone)]
pub(crate) enum Transform {
    CmHmac(CmHmac),
    Gcm128(Gcm<Aes128Enc>),
    Gcm256(Gcm<Aes256Enc>),
}

#[derive(Clone)]
pub(crate) struct CmHmac {
    aes: AesCm,
    salt: [u8; 14],
    mac: HmacSha1,
    tag_len: usize,
}

#[derive(Clone)]
pub(crate) struct Gcm<A: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>> {
    aead: AesGcm<A, U12>,
    salt: [u8; 12],
}

fn derived<const N: usize>(kdf: &Kdf, label: u8, r: u64) -> [u8; N] {
    let mut out = [0u8; N];
    kdf.derive(label, r, &mut out);
    out
}

/// HMAC-SHA1 keyed with a 160-bit session key. RFC 2104 pads short keys with zeros to the
/// block size, so the padded 64-byte key is the same key (and needs no fallible call).
fn hmac_sha1(auth_key: &[u8; 20]) -> HmacSha1 {
    let mut block = [0u8; 64];
    block[..20].copy_from_slice(auth_key);
    HmacSha1::new(&block.into())
}

fn xor_into<const N: usize>(mut a: [u8; N], b: &[u8; N]) -> [u8; N] {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
    a
}

impl Transform {
    /// The session keys for `kind` at r = index DIV KDR.
    pub(crate) fn derive(suite: Suite, kdf: &Kdf, kind: Kind, r: u64) -> Transform {
        let (l_enc, l_auth, l_salt) = match kind {
            Kind::Rtp => (label::RTP_ENCRYPTION, label::RTP_AUTH, label::RTP_SALT),
            Kind::Rtcp => (label::RTCP_ENCRYPTION, label::RTCP_AUTH, label::RTCP_SALT),
        };
        let tag_len = match kind {
            Kind::Rtp => suite.rtp_tag_len(),
            Kind::Rtcp => suite.rtcp_tag_len(),
        };
        let cm = |aes: AesCm| {
            Transform::CmHmac(CmHmac {
                aes,
                salt: derived(kdf, l_salt, r),
                mac: hmac_sha1(&derived(kdf, l_auth, r)),
                tag_len,
            })
        };
        match suite {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => cm(AesCm::Aes128(
                Aes128Enc::new(&derived::<16>(kdf, l_enc, r).into()),
            )),
            Suite::Aes256CmHmacSha1_80 | Suite::Aes256CmHmacSha1_32 => cm(AesCm::Aes256(
                Aes256Enc::new(&derived::<32>(kdf, l_enc, r).into()),
            )),
            Suite::AeadAes128Gcm => Transform::Gcm128(Gcm {
                aead: Aes128Enc::new(&derived::<16>(kdf, l_enc, r).into()).into(),
                salt: derived(kdf, l_salt, r),
            }),
            Suite::AeadAes256Gcm => Transform::Gcm256(Gcm {
                aead: Aes256Enc::new(&derived::<32>(kdf, l_enc, r).into()).into(),
                salt: derived(kdf, l_salt, r),
            }),
        }
    }

    /// Verify and decrypt an SRTP packet in place (payload only; trailer left as is).
    pub(crate) fn open_rtp(&self, packet: &mut [u8], lay: &SrtpLayout, index: u64) -> bool {
        match self {
            Transform::CmHmac(t) => t.open_rtp(packet, lay, index),
            Transform::Gcm128(t) => t.open_rtp(packet, lay, index).is_some(),
            Transform::Gcm256(t) => t.open_rtp(packet, lay, index).is_some(),
        }
    }

    /// Encrypt the payload after `header_len` and append the trailer (tag and MKI in the
    /// transform's order). False only if `header_len` is past the end.
    pub(crate) fn seal_rtp(
        &self,
        packet: &mut Vec<u8>,
        header_len: usize,
        ssrc: u32,
        index: u64,
        mki: &[u8],
    ) -> bool {
        match self {
            Transform::CmHmac(t) => t.seal_rtp(packet, header_len, ssrc, index, mki),
            Transform::Gcm128(t) => t.seal_rtp(packet, header_len, ssrc, index, mki),
            Transform::Gcm256(t) => t.seal_rtp(packet, header_len, ssrc, index, mki),
        }
        .is_some()
    }

    /// Verify and (when the E flag is set) decrypt an SRTCP packet in place.
    pub(crate) fn open_rtcp(&self, packet: &mut [u8], lay: &SrtcpLayout) -> bool {
        match self {
            Transform::CmHmac(t) => t.open_rtcp(packet, lay),
            Transform::Gcm128(t) => t.open_rtcp(packet, lay),
            Transform::Gcm256(t) => t.open_rtcp(packet, lay),
        }
        .is_some()
    }

    /// Encrypt an RTCP compound packet (E = 1) and append E+index, MKI and tag.
    pub(crate) fn seal_rtcp(
        &self,
        packet: &mut Vec<u8>,
        ssrc: u32,
        index: u32,
        mki: &[u8],
    ) -> bool {
        match self {
            Transform::CmHmac(t) => t.seal_rtcp(packet, ssrc, index, mki),
            Transform::Gcm128(t) => t.seal_rtcp(packet, ssrc, index, mki),
            Transform::Gcm256(t) => t.seal_rtcp(packet, ssrc, index, mki),
        }
        .is_some()
    }

    /// The counter-mode transform, for the ROC search that reuses one HMAC over the body.
    pub(crate) fn as_cm_hmac(&self) -> Option<&CmHmac> {
        match self {
            Transform::CmHmac(t) => Some(t),
            _ => None,
        }
    }
}

impl CmHmac {
    /// HMAC over `parts`, compared in constant time with the (truncated) `tag`.
    fn verify(&self, parts: [&[u8]; 2], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(parts[0]);
        mac.update(parts[1]);
        mac.verify_truncated_left(tag).is_ok()
    }

    fn append_tag(
        &self,
        packet: &mut Vec<u8>,
        authenticated_len: usize,
        roc: Option<u32>,
        mki: &[u8],
    ) {
        let mut mac = self.mac.clone();
        mac.update(packet.get(..authenticated_len).unwrap_or_default());
        if let Some(roc) = roc {
            mac.update(&roc.to_be_bytes());
        }
        let full = mac.finalize().into_bytes();
        packet.extend_from_slice(mki);
        packet.extend_from_slice(full.get(..self.tag_len).unwrap_or_default());
    }

    fn open_rtp(&self, packet: &mut [u8], lay: &SrtpLayout, index: u64) -> bool {
        let roc = (index >> 16) as u32;
        let (Some(auth), Some(tag)) = (
            packet.get(..lay.body_end),
            packet.get(lay.tag_at..lay.tag_at + lay.tag_len),
        ) else {
            return false;
        };
        if !self.verify([auth, &roc.to_be_bytes()], tag) {
            return false;
        }
        self.decrypt_rtp(packet, lay, index);
        true
    }

    /// The first ROC in `rocs` whose tag matches, computing the HMAC over the packet body
    /// only once (RFC 3711 puts the ROC last in the authenticated data).
    pub(crate) fn find_roc(
        &self,
        packet: &[u8],
        lay: &SrtpLayout,
        mut rocs: impl Iterator<Item = u32>,
    ) -> Option<u32> {
        let auth = packet.get(..lay.body_end)?;
        let tag = packet.get(lay.tag_at..lay.tag_at + lay.tag_len)?;
        let mut body = self.mac.clone();
        body.update(auth);
        rocs.find(|roc| {
            let mut mac = body.clone();
            mac.update(&roc.to_be_bytes());
            mac.verify_truncated_left(tag).is_ok()
        })
    }

    /// Decrypt the payload of an already authenticated packet.
    pub(crate) fn decrypt_rtp(&self, packet: &mut [u8], lay: &SrtpLayout, index: u64) {
        let iv = packet_iv(&self.salt, lay.ssrc, index);
        if let Some(payload) = packet.get_mut(lay.header_len..lay.body_end) {
            self.aes.apply_keystream(&iv, payload);
        }
    }

    fn seal_rtp(
        &self,
        packet: &mut Vec<u8>,
        header_len: usize,
        ssrc: u32,
        index: u64,
        mki: &[u8],
    ) -> Option<()> {
        let iv = packet_iv(&self.salt, ssrc, index);
        self.aes.apply_keystream(&iv, packet.get_mut(header_len..)?);
        packet.reserve(mki.len() + self.tag_len);
        let len = packet.len();
        self.append_tag(packet, len, Some((index >> 16) as u32), mki);
        Some(())
    }

    fn open_rtcp(&self, packet: &mut [u8], lay: &SrtcpLayout) -> Option<()> {
        let auth = packet.get(..lay.index_at + 4)?;
        let tag = packet.get(lay.tag_at..lay.tag_at + lay.tag_len)?;
        if !self.verify([auth, &[]], tag) {
            return None;
        }
        if lay.encrypted {
            let iv = packet_iv(&self.salt, lay.ssrc, u64::from(lay.index));
            self.aes
                .apply_keystream(&iv, packet.get_mut(RTCP_HEADER..lay.body_end)?);
        }
        Some(())
    }

    fn seal_rtcp(&self, packet: &mut Vec<u8>, ssrc: u32, index: u32, mki: &[u8]) -> Option<()> {
        let iv = packet_iv(&self.salt, ssrc, u64::from(index));
        self.aes
            .apply_keystream(&iv, packet.get_mut(RTCP_HEADER..)?);
        packet.reserve(4 + mki.len() + self.tag_len);
        packet.extend_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let len = packet.len();
        self.append_tag(packet, len, None, mki);
        Some(())
    }
}

impl<A> Gcm<A>
where
    A: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    /// RFC 7714 §8.1: 00 00 || SSRC || ROC || SEQ, XOR the 96-bit salt.
    fn rtp_nonce(&self, ssrc: u32, index: u64) -> Nonce<U12> {
        let mut n = [0u8; 12];
        n[2..6].copy_from_slice(&ssrc.to_be_bytes());
        n[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
        xor_into(n, &self.salt).into()
    }

    /// RFC 7714 §9.1: 00 00 || SSRC || 00 00 || 0 || SRTCP index, XOR the salt.
    fn rtcp_nonce(&self, ssrc: u32, index: u32) -> Nonce<U12> {
        let mut n = [0u8; 12];
        n[2..6].copy_from_slice(&ssrc.to_be_bytes());
        n[8..12].copy_from_slice(&(index & 0x7fff_ffff).to_be_bytes());
        xor_into(n, &self.salt).into()
    }

    /// AAD is the RTP header (with CSRCs and extension), §8.2; the tag follows the payload.
    fn open_rtp(&self, packet: &mut [u8], lay: &SrtpLayout, index: u64) -> Option<()> {
        let tag = Tag::<U16>::try_from(packet.get(lay.tag_at..lay.tag_at + 16)?).ok()?;
        let (header, payload) = packet
            .get_mut(..lay.body_end)?
            .split_at_mut_checked(lay.header_len)?;
        let nonce = self.rtp_nonce(lay.ssrc, index);
        self.aead
            .decrypt_inout_detached(&nonce, header, payload.into(), &tag)
            .ok()
    }

    fn seal_rtp(
        &self,
        packet: &mut Vec<u8>,
        header_len: usize,
        ssrc: u32,
        index: u64,
        mki: &[u8],
    ) -> Option<()> {
        let nonce = self.rtp_nonce(ssrc, index);
        let (header, payload) = packet.split_at_mut_checked(header_len)?;
        let tag = self
            .aead
            .encrypt_inout_detached(&nonce, header, payload.into())
            .ok()?;
        packet.reserve(tag.len() + mki.len());
        packet.extend_from_slice(&tag);
        packet.extend_from_slice(mki);
        Some(())
    }

    /// §9.2: with E = 1 the AAD is the 8-byte header then E+index and the rest is encrypted;
    /// with E = 0 everything before the tag, then E+index, is AAD and nothing is encrypted.
    fn open_rtcp(&self, packet: &mut [u8], lay: &SrtcpLayout) -> Option<()> {
        let tag = Tag::<U16>::try_from(packet.get(lay.tag_at..lay.tag_at + 16)?).ok()?;
        let word: [u8; 4] = packet
            .get(lay.index_at..lay.index_at + 4)?
            .try_into()
            .ok()?;
        let nonce = self.rtcp_nonce(lay.ssrc, lay.index);
        if lay.encrypted {
            let mut aad = [0u8; RTCP_HEADER + 4];
            aad[..RTCP_HEADER].copy_from_slice(packet.get(..RTCP_HEADER)?);
            aad[RTCP_HEADER..].copy_from_slice(&word);
            let body = packet.get_mut(RTCP_HEADER..lay.body_end)?;
            return self
                .aead
                .decrypt_inout_detached(&nonce, &aad, body.into(), &tag)
                .ok();
        }
        // Make the AAD contiguous without copying the packet: the index word goes where the
        // tag starts (the tag is already saved), and comes back out if the check fails.
        packet
            .get_mut(lay.body_end..lay.body_end + 4)?
            .copy_from_slice(&word);
        let aad = packet.get(..lay.body_end + 4)?;
        let ok = self
            .aead
            .decrypt_inout_detached(&nonce, aad, (&mut [][..]).into(), &tag)
            .is_ok();
        if !ok {
            packet
                .get_mut(lay.body_end..lay.body_end + 4)?
                .copy_from_slice(&tag[..4]);
        }
        ok.then_some(())
    }

    fn seal_rtcp(&self, packet: &mut Vec<u8>, ssrc: u32, index: u32, mki: &[u8]) -> Option<()> {
        let word = (0x8000_0000 | index).to_be_bytes();
        let mut aad = [0u8; RTCP_HEADER + 4];
        aad[..RTCP_HEADER].copy_from_slice(packet.get(..RTCP_HEADER)?);
        aad[RTCP_HEADER..].copy_from_slice(&word);
        let nonce = self.rtcp_nonce(ssrc, index);
        let tag = self
            .aead
            .encrypt_inout_detached(&nonce, &aad, packet.get_mut(RTCP_HEADER..)?.into())
            .ok()?;
        packet.reserve(tag.len() + 4 + mki.len());
        packet.extend_from_slice(&tag);
        packet.extend_from_slice(&word);
        packet.extend_from_slice(mki);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::aes_cm::tests::hex;
    use super::super::layout;
    use super::*;

    /// RFC 7714 gives session keys, not master keys.
    fn gcm(key: &str) -> Transform {
        let key = hex(key);
        let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
        match key.len() {
            16 => Transform::Gcm128(Gcm {
                aead: Aes128Enc::new_from_slice(&key).unwrap().into(),
                salt,
            }),
            _ => Transform::Gcm256(Gcm {
                aead: Aes256Enc::new_from_slice(&key).unwrap().into(),
                salt,
            }),
        }
    }

    const KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
    const KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                       20646976 69736120 696e2070 61727465 73207472 6573";
    const RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                        4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";

    fn rtp_case(suite: Suite, key: &str, protected: &str) {
        let t = gcm(key);
        let plain = hex(RTP);
        let mut p = plain.clone();
        assert!(t.seal_rtp(&mut p, 12, 0x5501_a0b2, 0xf17b, &[]));
        assert_eq!(p, hex(protected));
        let lay = layout::srtp(suite, &p, 0).unwrap();
        assert!(t.open_rtp(&mut p, &lay, 0xf17b));
        assert_eq!(p[..lay.body_end], plain[..]);
        // Any flipped bit, header or payload or tag, fails and leaves the packet as it was.
        for at in [1, 13, p.len() - 1] {
            let mut bad = hex(protected);
            bad[at] ^= 0x20;
            let copy = bad.clone();
            assert!(!t.open_rtp(&mut bad, &lay, 0xf17b));
            assert_eq!(bad, copy);
        }
        // Another ROC is another nonce.
        let mut p = hex(protected);
        assert!(!t.open_rtp(&mut p, &lay, 0x1_f17b));
    }

    /// RFC 7714 §16.1.1 / §16.1.2.
    #[test]
    fn rfc7714_16_1_aead_aes_128_gcm_srtp() {
        rtp_case(
            Suite::AeadAes128Gcm,
            KEY_128,
            "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
             0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
        );
    }

    /// RFC 7714 §16.2.1 / §16.2.2.
    #[test]
    fn rfc7714_16_2_aead_aes_256_gcm_srtp() {
        rtp_case(
            Suite::AeadAes256Gcm,
            KEY_256,
            "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
             9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13",
        );
    }

    fn rtcp_case(suite: Suite, key: &str, protected: &str) {
        let t = gcm(key);
        let plain = hex(RTCP);
        let mut p = plain.clone();
        assert!(t.seal_rtcp(&mut p, 0x4d61_7273, 0x5d4, &[]));
        assert_eq!(p, hex(protected));
        let lay = layout::srtcp(suite, &p, 0).unwrap();
        assert_eq!((lay.index, lay.encrypted), (0x5d4, true));
        assert!(t.open_rtcp(&mut p, &lay));
        assert_eq!(p[..lay.body_end], plain[..]);
        let mut bad = hex(protected);
        let last = bad.len() - 1;
        bad[last] ^= 1; // the index word is AAD
        let lay = layout::srtcp(suite, &bad, 0).unwrap();
        assert!(!t.open_rtcp(&mut bad, &lay));
    }

    /// RFC 7714 §17.1.1 / §17.1.2.
    #[test]
    fn rfc7714_17_1_aead_aes_128_gcm_srtcp() {
        rtcp_case(
            Suite::AeadAes128Gcm,
            KEY_128,
            "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
             c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872
             45d9eade 800005d4",
        );
    }

    /// RFC 7714 §17.2.1 / §17.2.2.
    #[test]
    fn rfc7714_17_2_aead_aes_256_gcm_srtcp() {
        rtcp_case(
            Suite::AeadAes256Gcm,
            KEY_256,
            "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50
             a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c
             b26ac3be 800005d4",
        );
    }

    /// E = 0: the whole packet is AAD; a failed check restores the bytes it borrowed.
    #[test]
    fn gcm_srtcp_without_encryption() {
        let t = gcm(KEY_128);
        let Transform::Gcm128(g) = &t else { panic!() };
        let plain = hex(RTCP);
        // Build the E = 0 packet by hand: tag over AAD = packet || index word.
        let word = 0x5d4u32.to_be_bytes();
        let mut aad = plain.clone();
        aad.extend_from_slice(&word);
        let nonce = g.rtcp_nonce(0x4d61_7273, 0x5d4);
        let tag = g
            .aead
            .encrypt_inout_detached(&nonce, &aad, (&mut [][..]).into())
            .unwrap();
        let mut p = plain.clone();
        p.extend_from_slice(&tag);
        p.extend_from_slice(&word);
        let lay = layout::srtcp(Suite::AeadAes128Gcm, &p, 0).unwrap();
        assert!(!lay.encrypted);
        let mut bad = p.clone();
        bad[9] ^= 1;
        let copy = bad.clone();
        assert!(!t.open_rtcp(&mut bad, &lay));
        assert_eq!(bad, copy);
        assert!(t.open_rtcp(&mut p, &lay));
        assert_eq!(p[..lay.body_end], plain[..]);
    }

    /// E = 0 with HMAC: authenticated, left in clear.
    #[test]
    fn cm_srtcp_without_encryption() {
        let kdf = Kdf::new(&[1; 16], &[2; 14]).unwrap();
        let t = Transform::derive(Suite::AesCm128HmacSha1_32, &kdf, Kind::Rtcp, 0);
        let Transform::CmHmac(cm) = &t else { panic!() };
        let plain = hex(RTCP);
        let mut p = plain.clone();
        p.extend_from_slice(&7u32.to_be_bytes());
        let len = p.len();
        cm.append_tag(&mut p, len, None, &[]);
        assert_eq!(
            p.len(),
            plain.len() + 4 + 10,
            "SRTCP tag is 80 bits for _32 too"
        );
        let lay = layout::srtcp(Suite::AesCm128HmacSha1_32, &p, 0).unwrap();
        assert_eq!((lay.encrypted, lay.index), (false, 7));
        let mut bad = p.clone();
        bad[20] ^= 4;
        assert!(!t.open_rtcp(&mut bad, &lay));
        assert!(t.open_rtcp(&mut p, &lay));
        assert_eq!(p[..lay.body_end], plain[..]);
    }
}

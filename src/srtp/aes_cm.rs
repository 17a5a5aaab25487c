//! AES in counter mode as SRTP uses it (RFC 3711 §4.1.1, RFC 6188 §2): the keystream for a
//! packet starts at IV = (k_s·2^16) XOR (SSRC·2^64) XOR (i·2^16) and counts up by one per
//! 16-byte block.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipherCore};
use aes::{Aes128Enc, Aes256Enc};
use ctr::CtrCore;
use ctr::flavors::Ctr128BE;

/// An expanded AES key (schedule computed once), 128 or 256 bits.
#[derive(Clone)]
pub(crate) enum AesCm {
    Aes128(Aes128Enc),
    Aes256(Aes256Enc),
}

impl AesCm {
    /// None unless `key` is 16 or 32 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<AesCm> {
        match key.len() {
            16 => Aes128Enc::new_from_slice(key).ok().map(AesCm::Aes128),
            32 => Aes256Enc::new_from_slice(key).ok().map(AesCm::Aes256),
            _ => None,
        }
    }

    /// XOR `data` with the keystream that starts at counter block `iv`. The key schedule is
    /// borrowed, not copied, so this costs nothing beyond the AES blocks themselves.
    pub(crate) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        let iv = (*iv).into();
        match self {
            AesCm::Aes128(aes) => CtrCore::<&Aes128Enc, Ctr128BE>::inner_iv_init(aes, &iv)
                .apply_keystream_partial(data.into()),
            AesCm::Aes256(aes) => CtrCore::<&Aes256Enc, Ctr128BE>::inner_iv_init(aes, &iv)
                .apply_keystream_partial(data.into()),
        }
    }
}

/// The counter block for the packet with `index` (48-bit SRTP index or 31-bit SRTCP index)
/// from SSRC `ssrc`, with the 112-bit session salt.
pub(crate) fn packet_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// First three and last three blocks of the keystream for a 2^16-block segment.
    fn keystream_ends(key: &str) -> (Vec<u8>, Vec<u8>) {
        let aes = AesCm::new(&hex(key)).unwrap();
        let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
        let iv = packet_iv(&salt, 0, 0);
        assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
        let mut ks = vec![0u8; 0xff02 * 16];
        aes.apply_keystream(&iv, &mut ks);
        (ks[..48].to_vec(), ks[ks.len() - 48..].to_vec())
    }

    /// RFC 3711 Appendix B.2.
    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let (first, last) = keystream_ends("2B7E151628AED2A6ABF7158809CF4F3C");
        assert_eq!(
            first,
            hex(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
        assert_eq!(
            last,
            hex(
                "EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE
                 6A2CC3787889374FBEB4C81B17BA6C44"
            )
        );
    }

    /// RFC 6188 §7.1.
    #[test]
    fn rfc6188_aes_256_cm_keystream() {
        let (first, last) =
            keystream_ends("57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98");
        assert_eq!(
            first,
            hex(
                "92bdd28a93c3f52511c677d08b5515a4 9da71b2378a854f67050756ded165bac
                 63c4868b7096d88421b563b8c94c9a31"
            )
        );
        assert_eq!(
            last,
            hex(
                "cea518c90fd91ced9cbb18c078a54711 3dbc4814f4da5f00a08772b63c6a046d
                 6eb246913062a16891433e97dd01a57f"
            )
        );
    }

    #[test]
    fn iv_places_ssrc_and_index() {
        let iv = packet_iv(&[0; 14], 0x1122_3344, 0xaabb_ccdd_eeff);
        assert_eq!(iv.to_vec(), hex("00000000 11223344 aabbccddeeff 0000"));
    }
}

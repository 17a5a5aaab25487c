//! Session key derivation (RFC 3711 §4.3, AES-CM PRF; RFC 6188 §2.2 for 256-bit keys;
//! RFC 7714 §11 for the 96-bit GCM master salt, used zero-padded to 112 bits).

use super::aes_cm::AesCm;

/// The labels of RFC 3711 §4.3.2.
pub(crate) mod label {
    pub const RTP_ENCRYPTION: u8 = 0x00;
    pub const RTP_AUTH: u8 = 0x01;
    pub const RTP_SALT: u8 = 0x02;
    pub const RTCP_ENCRYPTION: u8 = 0x03;
    pub const RTCP_AUTH: u8 = 0x04;
    pub const RTCP_SALT: u8 = 0x05;
}

/// The master key (schedule kept, for re-derivation when KDR ≠ 0) and master salt.
#[derive(Clone)]
pub(crate) struct Kdf {
    prf: AesCm,
    salt: [u8; 14],
}

impl Kdf {
    /// None unless the key is 16 or 32 bytes and the salt at most 14.
    pub(crate) fn new(key: &[u8], salt: &[u8]) -> Option<Kdf> {
        let mut padded = [0u8; 14];
        padded.get_mut(..salt.len())?.copy_from_slice(salt);
        Some(Kdf {
            prf: AesCm::new(key)?,
            salt: padded,
        })
    }

    /// Fill `out` with the key for `label` at r = index DIV KDR: the AES-CM keystream from
    /// IV = (key_id XOR master_salt)·2^16, key_id = label || r (48 bits).
    pub(crate) fn derive(&self, label: u8, r: u64, out: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        iv[7] ^= label;
        for (b, r) in iv[8..14].iter_mut().zip(&r.to_be_bytes()[2..]) {
            *b ^= r;
        }
        out.fill(0);
        self.prf.apply_keystream(&iv, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::aes_cm::tests::hex;
    use super::*;

    fn derive(kdf: &Kdf, label: u8, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        kdf.derive(label, 0, &mut out);
        out
    }

    /// RFC 3711 Appendix B.3 (and the SRTCP keys for the same master key).
    #[test]
    fn rfc3711_b3_key_derivation() {
        let kdf = Kdf::new(
            &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &hex("0EC675AD498AFEEBB6960B3AABE6"),
        )
        .unwrap();
        assert_eq!(
            derive(&kdf, label::RTP_ENCRYPTION, 16),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(
            derive(&kdf, label::RTP_SALT, 14),
            hex("30CBBC08863D8C85D49DB34A9AE1")
        );
        // The RFC lists 94 bytes of auth key; the first 64 cover several counter blocks.
        assert_eq!(
            derive(&kdf, label::RTP_AUTH, 64),
            hex(
                "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25"
            )
        );
        assert_eq!(
            derive(&kdf, label::RTCP_ENCRYPTION, 16),
            hex("4C1AA45A81F73D61C800BBB00FBB1EAA")
        );
        assert_eq!(
            derive(&kdf, label::RTCP_SALT, 14),
            hex("9581C7AD87B3E530BF3E4454A8B3")
        );
    }

    /// RFC 6188 §7.2: AES_256_CM_PRF.
    #[test]
    fn rfc6188_aes_256_key_derivation() {
        let kdf = Kdf::new(
            &hex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
            &hex("3b04803de51ee7c96423ab5b78d2"),
        )
        .unwrap();
        assert_eq!(
            derive(&kdf, label::RTP_ENCRYPTION, 32),
            hex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")
        );
        assert_eq!(
            derive(&kdf, label::RTP_SALT, 14),
            hex("fa31791685ca444a9e07c6c64e93")
        );
        assert_eq!(
            derive(&kdf, label::RTP_AUTH, 20),
            hex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")
        );
    }

    /// r enters the IV next to the label: with r = 0 the KDR makes no difference, and a
    /// non-zero r gives other keys.
    #[test]
    fn derivation_rate_changes_the_keys() {
        let kdf = Kdf::new(&[7; 16], &[9; 14]).unwrap();
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        kdf.derive(label::RTP_ENCRYPTION, 0, &mut a);
        kdf.derive(label::RTP_ENCRYPTION, 1, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(Kdf::new(&[0; 24], &[0; 14]).is_none());
        assert!(Kdf::new(&[0; 16], &[0; 15]).is_none());
        assert!(Kdf::new(&[0; 16], &[0; 12]).is_some());
    }
}

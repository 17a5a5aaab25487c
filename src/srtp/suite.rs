//! The SRTP crypto suites we support and their parameters (RFC 4568 §6.2, RFC 6188 §3,
//! RFC 7714 §14).

/// One SRTP crypto suite: cipher, key sizes and tag lengths for SRTP and SRTCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    Aes256CmHmacSha1_80,
    Aes256CmHmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl Suite {
    /// Every suite, in the order SDES offers usually list them.
    pub const ALL: [Suite; 6] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::Aes256CmHmacSha1_80,
        Suite::Aes256CmHmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ];

    /// SDES names (RFC 4568/6188/7714), case-insensitive; also accepts the common misspelling
    /// AES_CM_256_HMAC_SHA1_80/_32 and AES_256_CM_SHA1_80/_32.
    pub fn from_sdes_name(name: &str) -> Option<Suite> {
        let name = name.trim();
        let known: [(&str, Suite); 10] = [
            ("AES_CM_128_HMAC_SHA1_80", Suite::AesCm128HmacSha1_80),
            ("AES_CM_128_HMAC_SHA1_32", Suite::AesCm128HmacSha1_32),
            ("AES_256_CM_HMAC_SHA1_80", Suite::Aes256CmHmacSha1_80),
            ("AES_256_CM_HMAC_SHA1_32", Suite::Aes256CmHmacSha1_32),
            ("AEAD_AES_128_GCM", Suite::AeadAes128Gcm),
            ("AEAD_AES_256_GCM", Suite::AeadAes256Gcm),
            // Spellings seen in deployed equipment for the RFC 6188 suites.
            ("AES_CM_256_HMAC_SHA1_80", Suite::Aes256CmHmacSha1_80),
            ("AES_CM_256_HMAC_SHA1_32", Suite::Aes256CmHmacSha1_32),
            ("AES_256_CM_SHA1_80", Suite::Aes256CmHmacSha1_80),
            ("AES_256_CM_SHA1_32", Suite::Aes256CmHmacSha1_32),
        ];
        known
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, s)| s)
    }

    /// The canonical RFC name.
    pub fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Master (and session) encryption key length in bytes.
    pub fn master_key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            Suite::Aes256CmHmacSha1_80 | Suite::Aes256CmHmacSha1_32 | Suite::AeadAes256Gcm => 32,
        }
    }

    /// Master (and session) salt length in bytes: 112 bits for counter mode, 96 for GCM.
    pub fn master_salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// Authentication tag length of an SRTP packet.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::Aes256CmHmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 | Suite::Aes256CmHmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// Authentication tag length of an SRTCP packet: the _32 suites still use 80 bits there
    /// (RFC 4568 §6.2.1, RFC 6188 §3).
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_aead() { 16 } else { 10 }
    }

    /// GCM suites authenticate and encrypt in one AEAD operation (RFC 7714); the others
    /// encrypt with AES counter mode and authenticate with HMAC-SHA1 (RFC 3711).
    pub(crate) fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sdes_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_sdes_name(s.sdes_name()), Some(s));
            assert_eq!(
                Suite::from_sdes_name(&s.sdes_name().to_ascii_lowercase()),
                Some(s)
            );
        }
        assert_eq!(Suite::from_sdes_name("F8_128_HMAC_SHA1_80"), None);
        assert_eq!(Suite::from_sdes_name(""), None);
    }

    #[test]
    fn misspellings_of_the_aes_256_suites() {
        assert_eq!(
            Suite::from_sdes_name("AES_CM_256_HMAC_SHA1_80"),
            Some(Suite::Aes256CmHmacSha1_80)
        );
        assert_eq!(
            Suite::from_sdes_name("aes_cm_256_hmac_sha1_32"),
            Some(Suite::Aes256CmHmacSha1_32)
        );
        assert_eq!(
            Suite::from_sdes_name("AES_256_CM_SHA1_80"),
            Some(Suite::Aes256CmHmacSha1_80)
        );
        assert_eq!(
            Suite::from_sdes_name("AES_256_CM_SHA1_32"),
            Some(Suite::Aes256CmHmacSha1_32)
        );
    }

    #[test]
    fn parameters() {
        use Suite::*;
        let table = [
            (AesCm128HmacSha1_80, 16, 14, 10, 10),
            (AesCm128HmacSha1_32, 16, 14, 4, 10),
            (Aes256CmHmacSha1_80, 32, 14, 10, 10),
            (Aes256CmHmacSha1_32, 32, 14, 4, 10),
            (AeadAes128Gcm, 16, 12, 16, 16),
            (AeadAes256Gcm, 32, 12, 16, 16),
        ];
        for (s, key, salt, rtp, rtcp) in table {
            assert_eq!(
                (
                    s.master_key_len(),
                    s.master_salt_len(),
                    s.rtp_tag_len(),
                    s.rtcp_tag_len()
                ),
                (key, salt, rtp, rtcp),
                "{s}"
            );
        }
    }
}

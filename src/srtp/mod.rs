//! STUB of the SRTP module: only the names the SDP/keys code needs (suite table, master key,
//! error). The real module replaces this file at merge time.

/// SRTP protection profiles that SDES can negotiate.
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
    pub const ALL: [Suite; 6] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::Aes256CmHmacSha1_80,
        Suite::Aes256CmHmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ];

    /// SDES names (RFC 4568/6188/7714), case-insensitive, plus common misspellings.
    pub fn from_sdes_name(name: &str) -> Option<Suite> {
        if let Some(s) = Suite::ALL
            .iter()
            .find(|s| s.sdes_name().eq_ignore_ascii_case(name))
        {
            return Some(*s);
        }
        const ALIASES: [(&str, Suite); 4] = [
            ("AES_CM_256_HMAC_SHA1_80", Suite::Aes256CmHmacSha1_80),
            ("AES_CM_256_HMAC_SHA1_32", Suite::Aes256CmHmacSha1_32),
            ("AES_256_CM_SHA1_80", Suite::Aes256CmHmacSha1_80),
            ("AES_256_CM_SHA1_32", Suite::Aes256CmHmacSha1_32),
        ];
        ALIASES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, s)| *s)
    }

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

    pub fn master_key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            Suite::Aes256CmHmacSha1_80 | Suite::Aes256CmHmacSha1_32 | Suite::AeadAes256Gcm => 32,
        }
    }

    pub fn master_salt_len(self) -> usize {
        match self {
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 12,
            _ => 14,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKey {
    pub suite: Suite,
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
    /// Key derivation rate as a packet count (0 = derive once).
    pub kdr: u64,
    /// MKI value carried in each packet, if any.
    pub mki: Option<Vec<u8>>,
}

impl MasterKey {
    /// From the concatenated key||salt.
    pub fn from_key_salt(suite: Suite, key_salt: &[u8]) -> Result<MasterKey, SrtpError> {
        let (kl, sl) = (suite.master_key_len(), suite.master_salt_len());
        if key_salt.len() != kl + sl {
            return Err(SrtpError::BadKeyLength {
                suite,
                expected: kl + sl,
                got: key_salt.len(),
            });
        }
        let (key, salt) = key_salt.split_at(kl);
        Ok(MasterKey {
            suite,
            key: key.to_vec(),
            salt: salt.to_vec(),
            kdr: 0,
            mki: None,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SrtpError {
    #[error("packet truncated")]
    Truncated,
    #[error("not an RTP/RTCP packet")]
    NotRtp,
    #[error("authentication failed")]
    AuthFailed,
    #[error("replayed packet")]
    Replay,
    #[error("MKI mismatch")]
    MkiMismatch,
    #[error("{suite:?} needs {expected} bytes of key||salt, got {got}")]
    BadKeyLength {
        suite: Suite,
        expected: usize,
        got: usize,
    },
}

//! Master key material as signalled (SDES `inline:` or configuration).

use super::{SrtpError, Suite};

/// One master key with its salt, key derivation rate and MKI.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub suite: Suite,
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
    /// Key derivation rate as a packet count (0 = derive once). SDES carries `KDR=n` meaning 2^n.
    pub kdr: u64,
    /// MKI value carried in each packet (already at its on-the-wire length), if any.
    pub mki: Option<Vec<u8>>,
}

impl std::fmt::Debug for MasterKey {
    /// Suite, sizes and MKI length only: key material stays out of logs and reports.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .field("key_len", &self.key.len())
            .field("salt_len", &self.salt.len())
            .field("kdr", &self.kdr)
            .field("mki_len", &self.mki.as_ref().map(Vec::len))
            .finish()
    }
}

impl MasterKey {
    /// From the concatenated key||salt (what SDES `inline:` base64-decodes to).
    pub fn from_key_salt(suite: Suite, key_salt: &[u8]) -> Result<MasterKey, SrtpError> {
        let key_len = suite.master_key_len();
        let expected = key_len + suite.master_salt_len();
        if key_salt.len() != expected {
            return Err(SrtpError::BadKeyLength {
                suite,
                expected,
                got: key_salt.len(),
            });
        }
        let (key, salt) = key_salt.split_at(key_len);
        Ok(MasterKey {
            suite,
            key: key.to_vec(),
            salt: salt.to_vec(),
            kdr: 0,
            mki: None,
        })
    }

    /// The key and salt have the sizes the suite needs.
    pub(crate) fn check_lengths(&self) -> Result<(), SrtpError> {
        let bad = |expected: usize, got: usize| SrtpError::BadKeyLength {
            suite: self.suite,
            expected,
            got,
        };
        if self.key.len() != self.suite.master_key_len() {
            return Err(bad(self.suite.master_key_len(), self.key.len()));
        }
        if self.salt.len() != self.suite.master_salt_len() {
            return Err(bad(self.suite.master_salt_len(), self.salt.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_key_and_salt() {
        let bytes: Vec<u8> = (0..30).collect();
        let k = MasterKey::from_key_salt(Suite::AesCm128HmacSha1_80, &bytes).unwrap();
        assert_eq!(k.key, (0..16).collect::<Vec<u8>>());
        assert_eq!(k.salt, (16..30).collect::<Vec<u8>>());
        assert_eq!((k.kdr, k.mki), (0, None));

        let bytes: Vec<u8> = (0..44).collect();
        let k = MasterKey::from_key_salt(Suite::AeadAes256Gcm, &bytes).unwrap();
        assert_eq!((k.key.len(), k.salt.len()), (32, 12));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = MasterKey::from_key_salt(Suite::AesCm128HmacSha1_80, &[0xab; 30]).unwrap();
        let text = format!("{k:?}");
        assert!(text.contains("key_len: 16"), "{text}");
        assert!(!text.contains("171") && !text.contains("ab"), "{text}");
    }

    #[test]
    fn wrong_length_is_an_error() {
        assert_eq!(
            MasterKey::from_key_salt(Suite::Aes256CmHmacSha1_80, &[0; 30]),
            Err(SrtpError::BadKeyLength {
                suite: Suite::Aes256CmHmacSha1_80,
                expected: 46,
                got: 30
            })
        );
        assert!(MasterKey::from_key_salt(Suite::AeadAes128Gcm, &[]).is_err());
    }
}

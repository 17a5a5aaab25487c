//! Why a packet could not be protected or unprotected.

use super::Suite;

/// The ways SRTP processing fails. None of them leaves the context changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SrtpError {
    /// Shorter than the header plus the tag (plus the MKI and, for SRTCP, the index word).
    #[error("packet too short for SRTP")]
    Truncated,
    /// RTP version is not 2, or the CSRC list / header extension runs past the payload.
    #[error("not an RTP/RTCP packet (bad version or header length)")]
    NotRtp,
    /// The authentication tag does not match (after the ROC trials, if any).
    #[error("authentication failed")]
    AuthFailed,
    /// The packet index was already seen or is too old for the replay window.
    #[error("replayed or too old packet")]
    Replay,
    /// The packet's MKI is not the one of this context's master key.
    #[error("MKI does not match the master key")]
    MkiMismatch,
    /// A master key or salt of the wrong size for the suite.
    #[error("{suite}: expected {expected} bytes of key material, got {got}")]
    BadKeyLength {
        suite: Suite,
        expected: usize,
        got: usize,
    },
}

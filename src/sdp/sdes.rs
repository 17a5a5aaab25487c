//! SDES key exchange (RFC 4568) in offer/answer: which `a=crypto` lines we write, and
//! which of the peer's we accept.
//!
//! - Each side's line carries the key *it* sends with; the answer echoes the tag of the
//!   offer line it accepts, with its own key for that suite (§6.1).
//! - Offerer: one line per suite we are willing to use, in our preference order.
//!   Answerer: the first line of the offer (its preference) whose suite we offer too.
//! - Profiles: `RTP/SAVP` when SRTP is required; `RTP/AVP` with `a=crypto` lines when it
//!   is only wanted (best effort, as some SBCs do); answers keep the offer's profile.

use crate::srtp::{MasterKey, Suite};

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
pub fn write_crypto(tag: u32, key: &MasterKey, out: &mut Vec<u8>) {
    let _ = (tag, key, out);
}

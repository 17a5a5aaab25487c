//! Process limits a media run depends on.
//! CONTRACT STUB: implemented by the transport work; signatures are fixed.

use std::io;

/// Raise RLIMIT_NOFILE's soft limit to the hard limit; returns (soft, hard) after.
pub fn raise_nofile() -> io::Result<(u64, u64)> {
    todo!()
}

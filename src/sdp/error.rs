//! Errors of the SDP layer. Most defects are tolerated (a junk line is skipped, a bad key is
//! dropped with a warning); only input that cannot be SDP at all, or an `a=crypto` value
//! without its mandatory parts, is an error.

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// No `v=` and no `m=` line: the text is not a session description.
    #[error("not SDP: no v= or m= line")]
    NotSdp,
    /// An `a=crypto` value lacking a tag, a suite or key parameters.
    #[error("bad a=crypto: {0}")]
    Crypto(&'static str),
}

//! SDP (RFC 8866) as far as SRTP key exchange needs it: media addresses and ports, RTCP
//! placement (RFC 3605 `a=rtcp`, RFC 5761 `a=rtcp-mux`), payload type maps and the RFC 4568
//! `a=crypto` attribute, plus finding the SDP inside a (possibly multipart) SIP body.
//! Lenient and panic-free on any input (fuzzed by `fuzz/fuzz_targets/sdp_parse.rs`).

pub mod body;
pub mod crypto;
pub mod error;
pub mod negotiate;
pub mod sdes;
pub mod session;

pub use body::find_sdp;
pub use crypto::Crypto;
pub use error::SdpError;
pub use session::{Direction, Media, RtpMap, Sdp, parse};

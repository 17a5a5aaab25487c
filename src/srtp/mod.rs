//! SRTP and SRTCP (RFC 3711, RFC 6188, RFC 7714): verify and decrypt captured packets in
//! place, or protect plain ones.
//!
//! Sans-IO: a [`Context`] is a state machine fed with packet bytes; it keeps per-SSRC
//! rollover counters and replay windows and never reads a clock.
//!
//! - [`suite`]: the crypto suites and their sizes;
//! - [`key`]: master key material as signalled;
//! - [`context`]: per-direction state and the protect/unprotect entry points;
//! - `layout`: where header, payload, MKI, index and tag sit in a packet;
//! - `transform`: AES-CM + HMAC-SHA1 and AES-GCM with one set of session keys;
//! - `kdf`, `aes_cm`: session key derivation and the counter-mode keystream;
//! - `replay`: index estimation and the replay window;
//! - [`ring`]: the keys a receiver accepts across a re-key, newest first.

mod aes_cm;
pub mod context;
pub mod error;
mod kdf;
pub mod key;
mod layout;
mod replay;
pub mod ring;
pub mod suite;
#[cfg(test)]
mod tests;
mod transform;

pub use context::{Context, Unprotected};
pub use error::SrtpError;
pub use key::MasterKey;
pub use layout::{is_plain_rtcp, looks_like_rtcp};
pub use ring::KeyRing;
pub use suite::Suite;

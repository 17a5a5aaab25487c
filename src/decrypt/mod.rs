//! `sipwright srtp decrypt`: recovering SRTP keys from the signalling in a capture and
//! applying them to the media flows.
//!
//! - `keys`: sans-IO tracker of SDP offer/answer in SIP that turns SDES keys into
//!   bindings (destination address → master key).

pub mod keys;

pub use keys::{Binding, KeyTracker};

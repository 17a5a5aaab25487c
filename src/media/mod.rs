//! Media payloads: G.711 decoding and RFC 4733 telephone-events. Sans-IO, shared by
//! capture decryption (WAV output, DTMF listing) and, later, media streaming in calls.

pub mod dtmf;
pub mod g711;

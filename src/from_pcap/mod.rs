//! `sipwright scenario from-pcap`: one call of a capture → a UAC and a UAS scenario
//! that play it again.
//!
//! - [`extract`] walks the capture (pcap/pcapng, SIP over UDP and TCP, IP fragments:
//!   the [`crate::capture`] module) and keeps the messages of one Call-ID;
//! - [`generate`] writes each side's steps: `send` for what it sent, `recv` for what
//!   it received, `pause` where it waited;
//! - `subst` decides which bytes of a message become template slots (addresses,
//!   ports, tags, branches, Call-ID, CSeq numbers, Content-Length) and `emit` writes
//!   the template so that, rendered with the capture's values, it gives the captured
//!   bytes back exactly — checked for every message, by the engine's own template
//!   code, before anything is written.
//!
//! Nothing here panics or loops on its input: the capture reader is bounded and
//! fuzzed, the message scanner (`head`) takes any bytes, and every search is linear
//! in the message (`fuzz/fuzz_targets/from_pcap.rs`).

mod emit;
pub mod error;
pub mod extract;
pub mod generate;
mod head;
mod subst;
mod yaml;

use std::io::Read;

pub use error::{CallSummary, FromPcapError};
pub use generate::{Options, Pair, Summary};

/// Reads `input` and writes the scenario pair of the call `call_id` names (the only
/// call of the capture when None).
pub fn convert<R: Read>(
    input: R,
    call_id: Option<&str>,
    opts: &Options,
) -> Result<Pair, FromPcapError> {
    let call = extract::extract(input, call_id.map(str::as_bytes))?;
    generate::generate(&call, opts)
}

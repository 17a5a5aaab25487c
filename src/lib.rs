//! sipwright: SIP/RTP functional and load testing from YAML scenarios.
//!
//! The crate is split by layer (see ARCHITECTURE.md):
//! - [`sip`]: sans-IO message parsing/printing, transactions and dialogs;
//! - [`scenario`]: YAML → compiled plan → per-call interpreter;
//! - [`load`]: drivers that multiplex many calls over one socket, and run control;
//! - [`transport`]: socket set-up;
//! - [`report`]: counters and report files;
//! - [`capture`]: streaming pcap/pcapng reading, packet decoding, reassembly, rewriting;
//! - [`cli`]: argument parsing and commands (the only place that uses `anyhow`).

pub mod capture;
pub mod cli;
pub mod load;
pub mod report;
pub mod scenario;
pub mod sip;
pub mod transport;

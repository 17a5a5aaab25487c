//! `sipwright torture`: send a pack of odd, invalid and field-born SIP messages
//! to a server one by one, see how it reacts to each (accept, reject with a
//! status, ignore), and check after each that it still answers an OPTIONS.
//!
//! - [`pack`]: the messages (built in from `scenarios/torture/`, or a directory)
//!   and what a well-behaved server does with each;
//! - [`runner`]: the run as a sans-IO state machine;
//! - [`driver`]: its UDP socket;
//! - [`report`]: the table, JSON and JUnit.

pub mod driver;
pub mod pack;
pub mod report;
pub mod runner;

pub use pack::{Case, Expectation, PackError, Reaction};
pub use runner::{CaseResult, Runner, Settings, substitute};

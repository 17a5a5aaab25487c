//! Running calls: drivers that multiplex calls over a socket, and stateless replies.

mod call_index;
pub mod driver;
pub mod run;
pub mod schedule;
pub mod signal;
pub mod stateless;
pub mod tracing;

pub use driver::{Driver, DriverConfig, RunShared, Snapshot};

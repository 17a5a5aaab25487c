//! Running calls: drivers that multiplex calls over a socket, and stateless replies.

mod call_index;
pub mod driver;
mod linger;
pub mod media;
pub mod run;
pub mod schedule;
pub mod signal;
pub mod stateless;
pub mod tracing;

pub use driver::{Driver, DriverConfig, RunShared, Snapshot};

//! Counters collected by the drivers and the report files written from them.

pub mod counters;
pub mod json;
pub mod latency;

pub use counters::{Counters, FailureReason, FailureSample};

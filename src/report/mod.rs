//! Counters collected by the drivers and the report files written from them.

pub mod counters;
pub mod json;
pub mod junit;
pub mod latency;
pub mod stats_file;
pub mod text;

pub use counters::{Counters, FailureReason, FailureSample};

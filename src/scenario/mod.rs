//! Scenarios: YAML file → typed model → validated, compiled [`Plan`] → per-call
//! interpreter ([`call::Call`]). Compilation happens once per run; the interpreter
//! only walks the plan.

pub mod builtin;
pub mod call;
pub mod compile;
mod compile_media;
pub mod duration;
pub mod inject;
pub mod model;
pub mod plan;
pub mod template;

pub use compile::{CompileError, Diagnostic, compile_file, compile_str};
pub use plan::Plan;

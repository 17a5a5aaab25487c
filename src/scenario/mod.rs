//! Scenarios: YAML file → typed model → validated, compiled [`Plan`] → per-call
//! interpreter ([`call::Call`]). Compilation happens once per run; the interpreter
//! only walks the plan.

pub mod builtin;
pub mod call;
pub mod compile;
mod compile_challenge;
mod compile_media;
mod compile_send;
pub mod duration;
pub mod inject;
pub mod model;
pub mod plan;
pub mod template;

pub use compile::{
    CompileError, CompileOptions, Diagnostic, compile_file, compile_file_with, compile_str,
    compile_str_with,
};
pub use plan::Plan;

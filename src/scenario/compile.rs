//! YAML scenario → validated [`Plan`]. Every problem is reported as a
//! [`Diagnostic`] with file, line, column and key path.
//! STUB: signatures are the contract.

use std::path::Path;

use super::plan::Plan;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u64,
    /// 1-based; 0 when unknown.
    pub column: u64,
    /// Key path such as `steps[3].recv` (may be empty).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}", .diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct CompileError {
    pub diagnostics: Vec<Diagnostic>,
}

/// Compile scenario text. `source` names it in diagnostics. `overrides` are
/// `--set NAME=VALUE` pairs: they replace a declared variable's initial value or
/// declare a new one.
pub fn compile_str(
    source: &str,
    text: &str,
    overrides: &[(String, String)],
) -> Result<Plan, CompileError> {
    let _ = (source, text, overrides);
    todo!()
}

/// Read and compile a file (I/O errors become a diagnostic at 0:0).
pub fn compile_file(path: &Path, overrides: &[(String, String)]) -> Result<Plan, CompileError> {
    let _ = (path, overrides);
    todo!()
}

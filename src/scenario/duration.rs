//! Duration text used in scenarios and on the command line: `500ms`, `1s`, `1.5s`,
//! `2m`, `1h`, `0`. STUB: signature is the contract.

use std::time::Duration;

/// Parse a duration; the error says what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let _ = text;
    todo!()
}

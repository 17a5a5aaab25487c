//! Command line: raw args → validated config → commands. The only place using anyhow.

pub fn main() -> i32 {
    0
}

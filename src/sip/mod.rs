//! SIP message layer (our own, zero-copy and lenient), transactions and dialogs.
//! Everything here is sans-IO: bytes and `now` in, bytes and deadlines out.

pub mod build;
pub mod dialog;
pub mod digest;
pub mod header;
pub mod message;
pub mod registration;
pub mod transaction;
pub mod uri;
pub mod validate;

pub use header::HeaderName;

/// Decimal digits of `n` (what `write!(out, "{n}")` gives, a few times faster: message
/// building writes several numbers per message on the load path).
pub fn write_dec(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}
pub use message::{Message, ParseError, StartLine};

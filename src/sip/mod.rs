//! SIP message layer (our own, zero-copy and lenient), transactions and dialogs.
//! Everything here is sans-IO: bytes and `now` in, bytes and deadlines out.

pub mod build;
pub mod dialog;
pub mod header;
pub mod message;
pub mod transaction;
pub mod uri;

pub use header::HeaderName;
pub use message::{Message, ParseError, StartLine};

//! SIP over a byte stream (TCP, TLS; RFC 3261 §18.3): messages delimited by their
//! Content-Length, arriving split across reads or several per read, with RFC 5626
//! §3.5.1 keep-alives (CRLFCRLF ping, CRLF pong) between them. Sans-IO: bytes in,
//! whole messages out. Limits bound memory per connection: a header that never ends
//! or a body larger than the limit is an error and the connection is closed.
//!
//! CONTRACT (filled in by the framing work; the driver codes against this):
//!
//! ```ignore
//! let mut f = StreamFramer::new(FramerLimits { max_message: 65_535 });
//! f.push(bytes_from_socket)?;            // Err(FramingError) => close connection, count
//! while let Some(item) = f.next_item()? {
//!     match item {
//!         Framed::Message(range) => handle(&f.buffer()[range]),
//!         Framed::Ping => send(b"\r\n"),   // CRLFCRLF received: answer with CRLF
//!         Framed::Pong => {}                // a lone CRLF after our ping
//!     }
//! }
//! f.consume();  // drop the bytes of the items returned (call after handling them)
//! ```

use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramerLimits {
    /// Largest message (headers + body) accepted, in bytes.
    pub max_message: usize,
}

impl Default for FramerLimits {
    fn default() -> Self {
        FramerLimits {
            max_message: 65_535,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framed {
    /// A whole message: this range of `StreamFramer::buffer()`.
    Message(Range<usize>),
    /// A keep-alive ping (CRLFCRLF): answer with CRLF.
    Ping,
    /// A keep-alive pong (CRLF) answering our ping.
    Pong,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("message larger than {limit} bytes (Content-Length {length})")]
    TooLarge { length: usize, limit: usize },
    #[error("no end of headers within {limit} bytes")]
    HeaderTooLong { limit: usize },
    #[error("message without a usable Content-Length on a stream")]
    NoContentLength,
    #[error("not SIP: {0}")]
    Garbage(String),
}

#[derive(Debug, Default)]
pub struct StreamFramer {
    limits: FramerLimits,
    buf: Vec<u8>,
}

impl StreamFramer {
    pub fn new(limits: FramerLimits) -> StreamFramer {
        StreamFramer {
            limits,
            buf: Vec::new(),
        }
    }

    pub fn push(&mut self, data: &[u8]) -> Result<(), FramingError> {
        let _ = self.limits;
        self.buf.extend_from_slice(data);
        Ok(())
    }

    pub fn next_item(&mut self) -> Result<Option<Framed>, FramingError> {
        todo!("framing")
    }

    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    pub fn consume(&mut self) {
        todo!("framing")
    }

    /// Bytes held (for memory figures).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

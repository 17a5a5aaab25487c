//! Zero-copy SIP message parser (lenient: CRLF or bare LF, folding, compact names,
//! space before colon). Any input yields a `Message` or a `ParseError`, never a panic.
//! STUB: signatures are the contract.

use super::header::{CSeq, HeaderName, NameAddr, Via};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("bad start line: {0}")]
    StartLine(&'static str),
    #[error("bad header at byte {offset}: {why}")]
    Header { offset: usize, why: &'static str },
    #[error("headers not terminated by an empty line")]
    Unterminated,
    #[error("bad Content-Length")]
    ContentLength,
    #[error("body shorter than Content-Length ({have} < {want})")]
    Truncated { have: usize, want: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request {
        method: &'a str,
        uri: &'a str,
        version: &'a str,
    },
    Response {
        version: &'a str,
        code: u16,
        reason: &'a str,
    },
}

/// One header line (or several physical lines when folded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Name as written (trimmed), e.g. "v" or "Via".
    pub name: &'a str,
    pub kind: HeaderName,
    /// Raw value bytes after the colon, leading/trailing whitespace trimmed; may
    /// contain folding (line end + whitespace) — use [`Header::value`] to unfold.
    pub raw_value: &'a [u8],
    /// The whole header as received, from the first byte of the name to the last
    /// byte before the final line end (folding included).
    pub raw: &'a [u8],
}

impl<'a> Header<'a> {
    /// Value with folding replaced by single spaces; lossy UTF-8.
    pub fn value(&self) -> std::borrow::Cow<'a, str> {
        todo!()
    }
    /// True when `name` (case-insensitive, compact forms understood) names this header.
    pub fn is(&self, name: &str) -> bool {
        let _ = name;
        todo!()
    }
}

#[derive(Clone, Debug)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    pub headers: Vec<Header<'a>>,
    pub body: &'a [u8],
    /// Bytes that made up this message (start line to end of body).
    pub raw: &'a [u8],
}

/// Parse one message from a datagram. Content-Length, when present, bounds the
/// body (extra bytes are ignored); when absent the body runs to the end.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, ParseError> {
    let _ = buf;
    todo!()
}

/// Parse one message from the front of a stream buffer (TCP/TLS framing by
/// Content-Length, which is then mandatory). `Ok(None)` means "need more bytes".
/// On success returns the message and the number of bytes consumed.
pub fn parse_stream(buf: &[u8]) -> Result<Option<(Message<'_>, usize)>, ParseError> {
    let _ = buf;
    todo!()
}

impl<'a> Message<'a> {
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    pub fn method(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            _ => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            _ => None,
        }
    }
    pub fn request_uri(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            _ => None,
        }
    }
    /// First header of this kind.
    pub fn header(&self, kind: HeaderName) -> Option<&Header<'a>> {
        self.headers.iter().find(|h| h.kind == kind)
    }
    /// All headers of this kind, in order.
    pub fn headers_of(&self, kind: HeaderName) -> impl Iterator<Item = &Header<'a>> {
        self.headers.iter().filter(move |h| h.kind == kind)
    }
    /// All headers whose name matches `name` (case-insensitive, compact forms understood,
    /// works for unknown names too).
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Header<'a>> {
        self.headers.iter().filter(move |h| h.is(name))
    }
    /// Every comma-separated value of every header of this kind, in order.
    /// Values are borrowed when unfolded UTF-8; otherwise owned.
    pub fn values_of(&self, kind: HeaderName) -> Vec<std::borrow::Cow<'a, str>> {
        let _ = kind;
        todo!()
    }
    pub fn call_id(&self) -> Option<&'a str> {
        todo!()
    }
    pub fn cseq(&self) -> Option<CSeq<'a>> {
        todo!()
    }
    /// Topmost Via value (first value of the first Via header).
    pub fn top_via(&self) -> Option<Via<'a>> {
        todo!()
    }
    pub fn from(&self) -> Option<NameAddr<'a>> {
        todo!()
    }
    pub fn to(&self) -> Option<NameAddr<'a>> {
        todo!()
    }
    /// First Contact value.
    pub fn contact(&self) -> Option<NameAddr<'a>> {
        todo!()
    }
    /// Record-Route values in message order (each a name-addr string).
    pub fn record_route(&self) -> Vec<std::borrow::Cow<'a, str>> {
        self.values_of(HeaderName::RecordRoute)
    }
    pub fn route(&self) -> Vec<std::borrow::Cow<'a, str>> {
        self.values_of(HeaderName::Route)
    }
    pub fn content_type(&self) -> Option<&'a str> {
        todo!()
    }
    pub fn content_length(&self) -> Option<usize> {
        todo!()
    }
}

//! SIP over a byte stream (TCP, TLS; RFC 3261 §18.3): messages delimited by their
//! Content-Length, arriving split across reads or several per read, with RFC 5626
//! §3.5.1 keep-alives (CRLFCRLF ping, CRLF pong) between them. Sans-IO: bytes in,
//! whole messages out. Limits bound memory per connection: a header that never ends
//! or a body larger than the limit is an error and the connection is closed.
//!
//! ```
//! use sipwright::transport::framing::{Framed, FramerLimits, StreamFramer};
//!
//! let mut f = StreamFramer::new(FramerLimits { max_message: 65_535 });
//! let mut answers = Vec::new();
//! let mut messages = Vec::new();
//! for read in [&b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nl: 2\r\n"[..], b"\r\nhi\r\n"] {
//!     f.push(read)?; // Err(FramingError) => close the connection, count it
//!     while let Some(item) = f.next_item()? {
//!         match item {
//!             Framed::Message(range) => messages.push(f.buffer()[range].to_vec()),
//!             Framed::Ping => answers.push(b"\r\n"), // CRLFCRLF received: answer CRLF
//!             Framed::Pong => {}                     // a lone CRLF after our ping
//!         }
//!     }
//!     f.consume(); // drop the bytes of the items returned, once handled
//! }
//! assert_eq!(answers.len(), 1);
//! assert_eq!(messages, [b"OPTIONS sip:a SIP/2.0\r\nl: 2\r\n\r\nhi".to_vec()]);
//! // The trailing CRLF waits: a second CRLF would make it a ping.
//! assert_eq!(f.next_item()?, None);
//! # Ok::<(), sipwright::transport::framing::FramingError>(())
//! ```
//!
//! Choices where the RFCs leave room:
//! - Keep-alives. Between messages CRLFCRLF is a ping (even while a ping of ours
//!   is out) and a CRLF followed by anything but CR (a message's first byte,
//!   typically) is a pong. A lone CRLF at
//!   the end of what has arrived is ambiguous (a pong, or half a ping split across
//!   reads) and waits for the next byte, unless [`StreamFramer::expect_pong`] says
//!   our own ping is outstanding: then it is that pong at once, since a client
//!   waiting on a pong timeout (RFC 5626 §4.4.1) cannot wait for a next message
//!   that may never come. A bare LF between messages is skipped silently (the
//!   message parser takes LF line ends too; RFC 3261 §7.5 ignores blank lines
//!   before a start line).
//! - Content-Length is mandatory on streams (RFC 3261 §18.3), but a message
//!   without one is taken as having no body (as Kamailio's `tcp_accept_no_cl`
//!   does): such senders omit it when there is no body, and closing the connection
//!   would only lose the message. A Content-Length that is not a number, or two
//!   different ones, cannot be framed safely: [`FramingError::NoContentLength`].
//! - Garbage. The start line is checked as it arrives, byte by byte: a control
//!   byte, or a first word (method or SIP version) holding a byte no token has, is
//!   refused before any line end comes, so binary data (a TLS handshake on a
//!   plain port, say) fails on its first bytes. A complete start line must parse
//!   as a request or status line (so an HTTP request line is refused too), and the
//!   complete head is checked as the message parser checks it (a malformed header
//!   line is [`FramingError::BadHeader`]), with which it then agrees on the
//!   Content-Length.
//!
//! Memory: the bytes stay in one buffer that messages are handed out of as ranges;
//! nothing is allocated per message once the buffer has grown to the traffic.

use std::ops::Range;

use memchr::memchr;

use crate::sip::header::is_token_byte;
use crate::sip::message::{ParseError, parse_start_line, stream_head};

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
    /// A whole message: this range of `StreamFramer::buffer()`, valid until the
    /// next `consume`.
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
    #[error("Content-Length on a stream is not a number, or two differ")]
    NoContentLength,
    #[error("bad header at byte {offset} of the message: {why}")]
    BadHeader { offset: usize, why: &'static str },
    #[error("not SIP: {0}")]
    Garbage(String),
}

impl From<ParseError> for FramingError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::ContentLength => FramingError::NoContentLength,
            ParseError::Header { offset, why } => FramingError::BadHeader { offset, why },
            other => FramingError::Garbage(other.to_string()),
        }
    }
}

/// How far the first word of the start line (the method, or the version of a
/// status line) has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Word {
    Before,
    In,
    After,
}

/// Where the framer is in the stream. Offsets count from the start of the
/// current message (`StreamFramer::next`), so compacting the buffer leaves them
/// alone; they let each call resume where the last one stopped, so a message
/// trickling in a byte per read costs linear time, not quadratic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Between messages: keep-alives or a message's first byte come next.
    #[default]
    Boundary,
    /// In the start line; `seen` bytes of it checked.
    StartLine { seen: usize, word: Word },
    /// In the headers: the current line starts at `line`; the search for its
    /// LF has got to `seen`.
    Headers { line: usize, seen: usize },
    /// The head is read: the whole message is `len` bytes.
    Body { len: usize },
}

/// What the bytes at a message boundary are.
enum Boundary {
    /// Too few bytes to tell.
    Wait,
    /// Blank bytes that are no keep-alive.
    Skip(usize),
    Ping,
    Pong,
    Message,
}

fn boundary(rest: &[u8], pong_expected: bool) -> Boundary {
    match rest {
        [] | [b'\r'] => Boundary::Wait,
        [b'\n', ..] => Boundary::Skip(1),
        [b'\r', b'\n', b'\r', b'\n', ..] => Boundary::Ping,
        [b'\r', b'\n'] if pong_expected => Boundary::Pong,
        // Half a ping, or a pong whose next byte has not come.
        [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => Boundary::Wait,
        [b'\r', b'\n', ..] => Boundary::Pong,
        _ => Boundary::Message,
    }
}

/// A start line ends at the LF at this offset.
struct LineEnd(usize);

/// Checks the start line from `seen` on, up to its LF or the end of `bytes`.
/// `Ok(Err(..))`: not complete yet, with the state to resume from.
fn scan_start_line(
    bytes: &[u8],
    mut seen: usize,
    mut word: Word,
) -> Result<Result<LineEnd, (usize, Word)>, FramingError> {
    while let Some(&b) = bytes.get(seen) {
        match b {
            b'\n' => return Ok(Ok(LineEnd(seen))),
            b'\r' => match bytes.get(seen + 1) {
                Some(b'\n') => return Ok(Ok(LineEnd(seen + 1))),
                Some(_) => return Err(garbage("CR inside the start line", b)),
                // Its LF may be in the next read: look at it again then.
                None => break,
            },
            b' ' | b'\t' if word == Word::In => word = Word::After,
            b' ' | b'\t' => {}
            0..=0x1f | 0x7f => return Err(garbage("control byte in the start line", b)),
            // Methods are tokens; "SIP/2.0" adds the slash.
            _ if word != Word::After => {
                if !(is_token_byte(b) || b == b'/') {
                    return Err(garbage("not a method or SIP version", b));
                }
                word = Word::In;
            }
            // Request-URIs and reason phrases may hold UTF-8.
            _ => {}
        }
        seen += 1;
    }
    Ok(Err((seen, word)))
}

fn garbage(why: &str, b: u8) -> FramingError {
    FramingError::Garbage(format!("{why} (byte {b:#04x})"))
}

/// Frames SIP messages and keep-alives out of the bytes of one connection.
#[derive(Debug, Default)]
pub struct StreamFramer {
    limits: FramerLimits,
    buf: Vec<u8>,
    /// Bytes at the front already consumed, kept until compacting pays
    /// (see [`StreamFramer::consume`]).
    dead: usize,
    /// Start of the first byte not yet returned in an item.
    next: usize,
    state: State,
    pong_expected: bool,
    /// The first error, returned again by every later call.
    failed: Option<FramingError>,
}

impl StreamFramer {
    pub fn new(limits: FramerLimits) -> StreamFramer {
        StreamFramer {
            limits,
            ..StreamFramer::default()
        }
    }

    /// Appends bytes read from the connection. Fails only when the framer has
    /// already failed.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // Consumed bytes are dropped rather than grown into, unless ranges
        // handed out since the last consume still index the buffer.
        if self.dead > 0
            && self.next == self.dead
            && self.buf.capacity() - self.buf.len() < data.len()
        {
            self.compact();
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next message or keep-alive, in stream order; `Ok(None)` until more
    /// bytes arrive. After an error the framer is done: every later call
    /// returns the same error (the connection is to be closed).
    pub fn next_item(&mut self) -> Result<Option<Framed>, FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.step().inspect_err(|e| self.failed = Some(e.clone()))
    }

    fn step(&mut self) -> Result<Option<Framed>, FramingError> {
        let max = self.limits.max_message;
        loop {
            let rest = self.buf.get(self.next..).unwrap_or(&[]);
            // The head is searched for within the limit only, so a peer
            // sending a huge read cannot make us scan it.
            let window = &rest[..rest.len().min(max)];
            let more = || {
                if rest.len() >= max {
                    Err(FramingError::HeaderTooLong { limit: max })
                } else {
                    Ok(None)
                }
            };
            match self.state {
                State::Boundary => match boundary(rest, self.pong_expected) {
                    Boundary::Wait => return Ok(None),
                    Boundary::Skip(n) => self.next += n,
                    Boundary::Ping => {
                        self.next += 4;
                        return Ok(Some(Framed::Ping));
                    }
                    Boundary::Pong => {
                        self.next += 2;
                        self.pong_expected = false;
                        return Ok(Some(Framed::Pong));
                    }
                    Boundary::Message => {
                        self.state = State::StartLine {
                            seen: 0,
                            word: Word::Before,
                        };
                    }
                },
                State::StartLine { seen, word } => match scan_start_line(window, seen, word)? {
                    Ok(LineEnd(lf)) => {
                        let line = &window[..lf];
                        parse_start_line(line.strip_suffix(b"\r").unwrap_or(line))?;
                        self.state = State::Headers {
                            line: lf + 1,
                            seen: lf + 1,
                        };
                    }
                    Err((seen, word)) => {
                        self.state = State::StartLine { seen, word };
                        return more();
                    }
                },
                State::Headers { mut line, mut seen } => {
                    let head_len = loop {
                        let Some(rel) = window.get(seen..).and_then(|w| memchr(b'\n', w)) else {
                            self.state = State::Headers {
                                line,
                                seen: window.len(),
                            };
                            return more();
                        };
                        let lf = seen + rel;
                        if matches!(&window[line..lf], b"" | b"\r") {
                            break lf + 1;
                        }
                        line = lf + 1;
                        seen = lf + 1;
                    };
                    let head = stream_head(&window[..head_len])?.ok_or_else(|| {
                        // The parser ends a head at the same empty line.
                        FramingError::Garbage("head not terminated".to_owned())
                    })?;
                    let length = head.content_length.unwrap_or(0);
                    // Refused on the head alone: no waiting for a body we would
                    // not keep.
                    let len = head_len
                        .checked_add(length)
                        .filter(|&len| len <= max)
                        .ok_or(FramingError::TooLarge { length, limit: max })?;
                    self.state = State::Body { len };
                }
                State::Body { len } => {
                    if rest.len() < len {
                        return Ok(None);
                    }
                    let range = self.next..self.next + len;
                    self.next += len;
                    self.state = State::Boundary;
                    return Ok(Some(Framed::Message(range)));
                }
            }
        }
    }

    /// Says a CRLFCRLF ping went out on this connection: until its pong is
    /// returned, a lone CRLF between messages is that pong at once rather than
    /// waiting for the byte after it.
    pub fn expect_pong(&mut self) {
        self.pong_expected = true;
    }

    /// The bytes the ranges of [`Framed::Message`] index.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Drops the bytes of the items returned so far; their ranges are invalid
    /// afterwards. The front of the buffer is given back when that copies no
    /// more than it frees (at once when everything was returned), so consuming
    /// after each of many small messages in one big read stays linear.
    pub fn consume(&mut self) {
        self.dead = self.next;
        let live = self.buf.len() - self.dead;
        if live == 0 {
            self.buf.clear();
            self.dead = 0;
            self.next = 0;
        } else if self.dead >= live {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.buf.drain(..self.dead);
        self.next -= self.dead;
        self.dead = 0;
    }

    /// Forgets the connection (bytes, state, error) but keeps the limits and
    /// the buffer's allocation, for a new connection.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.dead = 0;
        self.next = 0;
        self.state = State::Boundary;
        self.pong_expected = false;
        self.failed = None;
    }

    /// Bytes held (for memory figures), consumed ones not yet given back
    /// included.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{BAD_CONTENT_LENGTHS, parse};

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK1\r\n\
Call-ID: 1@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 111\r\n\
\r\n\
v=0\r\n\
o=- 1 1 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    const OK: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: 1@192.0.2.10\r\nl: 0\r\n\r\n";

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Item {
        Msg(Vec<u8>),
        Ping,
        Pong,
    }
    use Item::{Msg, Ping, Pong};

    fn msg(b: &[u8]) -> Item {
        Msg(b.to_vec())
    }

    /// Pushes `data`, collects every item as the driver would, consumes.
    fn feed(f: &mut StreamFramer, data: &[u8], out: &mut Vec<Item>) -> Result<(), FramingError> {
        f.push(data)?;
        while let Some(item) = f.next_item()? {
            out.push(match item {
                Framed::Message(r) => Msg(f.buffer()[r].to_vec()),
                Framed::Ping => Ping,
                Framed::Pong => Pong,
            });
        }
        f.consume();
        Ok(())
    }

    /// Items from `data` pushed in the given pieces.
    fn frame_pieces(pieces: &[&[u8]]) -> Result<Vec<Item>, FramingError> {
        let mut f = StreamFramer::new(FramerLimits::default());
        let mut out = Vec::new();
        for p in pieces {
            feed(&mut f, p, &mut out)?;
        }
        Ok(out)
    }

    fn frame(data: &[u8]) -> Result<Vec<Item>, FramingError> {
        frame_pieces(&[data])
    }

    fn framer(max_message: usize) -> StreamFramer {
        StreamFramer::new(FramerLimits { max_message })
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn one_message_with_a_body_of_exact_length() {
        let mut f = framer(65_535);
        f.push(INVITE).unwrap();
        let Some(Framed::Message(r)) = f.next_item().unwrap() else {
            panic!("no message");
        };
        assert_eq!(&f.buffer()[r.clone()], INVITE);
        assert_eq!(parse(&f.buffer()[r]).unwrap().body.len(), 111);
        assert_eq!(f.next_item().unwrap(), None);
        f.consume();
        assert_eq!(f.buffered(), 0);
        // One body byte short: wait for it.
        let mut f = framer(65_535);
        f.push(&INVITE[..INVITE.len() - 1]).unwrap();
        assert_eq!(f.next_item().unwrap(), None);
        f.push(&INVITE[INVITE.len() - 1..]).unwrap();
        assert!(matches!(f.next_item().unwrap(), Some(Framed::Message(_))));
    }

    #[test]
    fn two_messages_split_at_every_point() {
        let stream = cat(&[INVITE, OK]);
        let want = vec![msg(INVITE), msg(OK)];
        for i in 0..=stream.len() {
            let got = frame_pieces(&[&stream[..i], &stream[i..]]).unwrap();
            assert_eq!(got, want, "split at {i}");
        }
    }

    #[test]
    fn two_messages_and_keepalives_split_at_every_pair_of_points() {
        let stream = cat(&[b"\r\n\r\n", OK, b"\r\n", OK, b"\r\n\r\n"]);
        let want = vec![Ping, msg(OK), Pong, msg(OK), Ping];
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let got = frame_pieces(&[&stream[..i], &stream[i..j], &stream[j..]]).unwrap();
                assert_eq!(got, want, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let stream = cat(&[INVITE, b"\r\n\r\n", OK, INVITE]);
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(
            frame_pieces(&pieces).unwrap(),
            [msg(INVITE), Ping, msg(OK), msg(INVITE)]
        );
    }

    #[test]
    fn several_messages_and_keepalives_in_one_read() {
        let stream = cat(&[b"\r\n\r\n", INVITE, OK, b"\r\n", INVITE, b"\r\n\r\n", OK]);
        assert_eq!(
            frame(&stream).unwrap(),
            [Ping, msg(INVITE), msg(OK), Pong, msg(INVITE), Ping, msg(OK)]
        );
        // The ranges index the buffer until consume.
        let mut f = framer(65_535);
        f.push(&stream).unwrap();
        let mut ranges = Vec::new();
        while let Some(item) = f.next_item().unwrap() {
            if let Framed::Message(r) = item {
                ranges.push(r);
            }
        }
        assert_eq!(ranges[0], 4..4 + INVITE.len());
        assert_eq!(&f.buffer()[ranges[3].clone()], OK);
        f.consume();
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn content_length_forms() {
        for head in [
            &b"MESSAGE sip:a SIP/2.0\r\nl: 3\r\n\r\n"[..],
            b"MESSAGE sip:a SIP/2.0\r\nL:3\r\n\r\n",
            b"MESSAGE sip:a SIP/2.0\r\ncontent-length : 3\r\n\r\n",
            b"MESSAGE sip:a SIP/2.0\r\nCONTENT-LENGTH:\t3 \r\n\r\n",
            b"MESSAGE sip:a SIP/2.0\r\nContent-Length:\r\n 3\r\n\r\n",
            b"MESSAGE sip:a SIP/2.0\r\nl: 3\r\nContent-Length: 3\r\n\r\n",
            b"MESSAGE sip:a SIP/2.0\nl: 3\n\n",
            b" \tMESSAGE sip:a SIP/2.0\r\nl: 3\r\n\r\n",
        ] {
            let m = cat(&[head, b"abc"]);
            let stream = cat(&[&m, OK]);
            assert_eq!(
                frame(&stream).unwrap(),
                [msg(&m), msg(OK)],
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn missing_content_length_means_no_body() {
        let bare = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: 2\r\n\r\n";
        let stream = cat(&[bare, OK]);
        assert_eq!(frame(&stream).unwrap(), [msg(bare), msg(OK)]);
        // Framed as soon as its head ends.
        assert_eq!(frame(bare).unwrap(), [msg(bare)]);
    }

    #[test]
    fn unusable_content_length() {
        for head in BAD_CONTENT_LENGTHS {
            assert_eq!(
                frame(head),
                Err(FramingError::NoContentLength),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn too_large_is_refused_on_the_head() {
        let mut f = framer(65_535);
        f.push(b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 10000000\r\n\r\n")
            .unwrap();
        assert_eq!(
            f.next_item(),
            Err(FramingError::TooLarge {
                length: 10_000_000,
                limit: 65_535
            })
        );
        // usize::MAX does not overflow the arithmetic.
        let head = format!("MESSAGE sip:a SIP/2.0\r\nl: {}\r\n\r\n", usize::MAX);
        assert!(matches!(
            frame(head.as_bytes()),
            Err(FramingError::TooLarge { .. })
        ));

        // Exactly the limit is accepted, one byte more is not.
        let head = b"MESSAGE sip:a SIP/2.0\r\nl: 10\r\n\r\n";
        let m = cat(&[head, b"0123456789"]);
        let mut f = framer(m.len());
        let mut out = Vec::new();
        feed(&mut f, &m, &mut out).unwrap();
        assert_eq!(out, [msg(&m)]);
        let mut f = framer(m.len() - 1);
        assert_eq!(
            feed(&mut f, head, &mut out),
            Err(FramingError::TooLarge {
                length: 10,
                limit: m.len() - 1
            })
        );
    }

    #[test]
    fn header_that_never_ends() {
        let limit = 200;
        // Trickled in: the error comes when the limit is reached, not later.
        let mut f = framer(limit);
        f.push(b"OPTIONS sip:a SIP/2.0\r\n").unwrap();
        let mut pushed = 23;
        let err = loop {
            f.push(b"X-Pad: aaaaaaaa\r\n").unwrap();
            pushed += 17;
            match f.next_item() {
                Ok(None) => assert!(pushed < limit),
                Ok(Some(item)) => panic!("{item:?}"),
                Err(e) => break e,
            }
        };
        assert!(pushed >= limit && pushed < limit + 17);
        assert_eq!(err, FramingError::HeaderTooLong { limit });

        // A start line that never ends, in one big read.
        let mut big = b"OPTIONS sip:".to_vec();
        big.resize(1 << 20, b'a');
        assert_eq!(
            frame_in(limit, &big),
            Err(FramingError::HeaderTooLong { limit })
        );

        // A head of exactly the limit is fine; the same a byte longer is not.
        let head = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\n\r\n";
        assert_eq!(frame_in(head.len(), head), Ok(vec![msg(head)]));
        assert_eq!(
            frame_in(head.len() - 1, head),
            Err(FramingError::HeaderTooLong {
                limit: head.len() - 1
            })
        );
        // Keep-alives do not count against it.
        let stream = cat(&[&b"\r\n\r\n".repeat(10), head]);
        assert_eq!(frame_in(head.len(), &stream).unwrap().len(), 11);
    }

    fn frame_in(max_message: usize, data: &[u8]) -> Result<Vec<Item>, FramingError> {
        let mut out = Vec::new();
        feed(&mut framer(max_message), data, &mut out)?;
        Ok(out)
    }

    #[test]
    fn binary_garbage_is_refused_before_any_line_end() {
        for junk in [
            // A TLS ClientHello on a plain TCP port.
            &[0x16, 0x03, 0x01, 0x02, 0x00][..],
            b"\0\0\0\0",
            b"\xff\xfe\xfd",
            b"INV\0",
            b"INVITE\x01",
            b"INVITE sip:a\x7f",
            b"INVITE sip:a\rb SIP/2.0",
            b"\rINVITE",
            b"<?xml",
        ] {
            let mut f = framer(65_535);
            f.push(junk).unwrap();
            assert!(
                matches!(f.next_item(), Err(FramingError::Garbage(_))),
                "{junk:?}"
            );
        }
        // UTF-8 in the Request-URI or the reason phrase is not garbage.
        let m = "MESSAGE sip:çà@example.com SIP/2.0\r\nl: 0\r\n\r\n".as_bytes();
        assert_eq!(frame(m).unwrap(), [msg(m)]);
        let m = "SIP/2.0 200 Très bien\r\nl: 0\r\n\r\n".as_bytes();
        assert_eq!(frame(m).unwrap(), [msg(m)]);
    }

    #[test]
    fn text_that_is_not_sip_is_refused_at_its_line_end() {
        for line in [
            &b"GET / HTTP/1.1"[..],
            b"HELLO WORLD",
            b"INVITE sip:a SIP/2.0 extra",
            b"SIP/2.0 999 Nine",
            b" ",
        ] {
            let mut f = framer(65_535);
            f.push(line).unwrap();
            assert_eq!(f.next_item(), Ok(None), "{line:?}");
            f.push(b"\r\n").unwrap();
            assert!(
                matches!(f.next_item(), Err(FramingError::Garbage(_))),
                "{line:?}"
            );
        }
        // Garbage after a good message: the message is returned first.
        let stream = cat(&[OK, b"\x16\x03\x01"]);
        let mut f = framer(65_535);
        f.push(&stream).unwrap();
        assert!(matches!(f.next_item(), Ok(Some(Framed::Message(_)))));
        assert!(matches!(f.next_item(), Err(FramingError::Garbage(_))));
    }

    #[test]
    fn malformed_header_line() {
        assert_eq!(
            frame(b"OPTIONS sip:a SIP/2.0\r\nbroken\r\n\r\n"),
            Err(FramingError::BadHeader {
                offset: 23,
                why: "missing colon"
            })
        );
        assert!(matches!(
            frame(b"OPTIONS sip:a SIP/2.0\r\n folded\r\n\r\n"),
            Err(FramingError::BadHeader { .. })
        ));
    }

    #[test]
    fn errors_are_final_until_reset() {
        let mut f = framer(65_535);
        f.push(b"\0").unwrap();
        let err = f.next_item().unwrap_err();
        assert_eq!(f.next_item(), Err(err.clone()));
        assert_eq!(f.push(OK), Err(err));
        f.reset();
        let mut out = Vec::new();
        feed(&mut f, OK, &mut out).unwrap();
        assert_eq!(out, [msg(OK)]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn ping_and_pong() {
        assert_eq!(frame(b"\r\n\r\n").unwrap(), [Ping]);
        assert_eq!(frame(b"\r\n\r\n\r\n\r\n").unwrap(), [Ping, Ping]);
        assert_eq!(frame(&cat(&[b"\r\n", OK])).unwrap(), [Pong, msg(OK)]);
        // CRLF CRLF CRLF: a ping, then a pong once the next byte shows it is
        // not half of a second ping.
        assert_eq!(
            frame(&cat(&[b"\r\n\r\n\r\n", OK])).unwrap(),
            [Ping, Pong, msg(OK)]
        );
        assert_eq!(frame(b"\r\n\r\n\r\n").unwrap(), [Ping]);
    }

    #[test]
    fn lone_crlf_waits_for_the_next_byte() {
        let mut f = framer(65_535);
        f.push(b"\r\n").unwrap();
        assert_eq!(f.next_item(), Ok(None));
        f.push(b"\r").unwrap();
        assert_eq!(f.next_item(), Ok(None));
        f.push(b"\n").unwrap();
        assert_eq!(f.next_item(), Ok(Some(Framed::Ping)));

        let mut f = framer(65_535);
        f.push(b"\r\n").unwrap();
        assert_eq!(f.next_item(), Ok(None));
        f.push(b"S").unwrap();
        assert_eq!(f.next_item(), Ok(Some(Framed::Pong)));
        assert_eq!(f.next_item(), Ok(None));
    }

    #[test]
    fn pong_to_our_ping_is_reported_at_once() {
        let mut f = framer(65_535);
        let mut out = Vec::new();
        f.expect_pong();
        feed(&mut f, b"\r\n", &mut out).unwrap();
        assert_eq!(out, [Pong]);
        // Only one pong answers a ping: the next lone CRLF waits again.
        feed(&mut f, b"\r\n", &mut out).unwrap();
        assert_eq!(out, [Pong]);
        feed(&mut f, b"\r\n", &mut out).unwrap();
        assert_eq!(out, [Pong, Ping]);
        // A ping from the peer is still a ping while ours is out.
        f.expect_pong();
        feed(&mut f, b"\r\n\r\n", &mut out).unwrap();
        assert_eq!(out, [Pong, Ping, Ping]);
    }

    #[test]
    fn bare_lf_between_messages_is_skipped() {
        assert_eq!(
            frame(&cat(&[b"\n\n", OK, b"\n", OK])).unwrap(),
            [msg(OK), msg(OK)]
        );
        assert_eq!(frame(b"\n\r\n\r\n").unwrap(), [Ping]);
    }

    #[test]
    fn consuming_item_by_item_stays_linear_and_compact() {
        let n = 2000;
        let stream = OK.repeat(n);
        let mut f = framer(65_535);
        f.push(&stream).unwrap();
        let mut count = 0;
        while let Some(Framed::Message(r)) = f.next_item().unwrap() {
            assert_eq!(&f.buffer()[r], OK);
            f.consume();
            count += 1;
            // Never more than half the buffer is dead weight.
            assert!(f.dead <= f.buf.len() - f.dead || f.buf.is_empty());
        }
        assert_eq!(count, n);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn push_keeps_ranges_handed_out_before_consume() {
        let m = |n: u32| format!("SIP/2.0 200 OK\r\nCall-ID: {n}\r\nl: 0\r\n\r\n").into_bytes();
        let mut f = framer(65_535);
        f.push(&cat(&[&m(1), &m(2), &m(3), b"SIP/2.0"])).unwrap();
        assert!(matches!(f.next_item(), Ok(Some(Framed::Message(_)))));
        f.consume();
        let Ok(Some(Framed::Message(r))) = f.next_item() else {
            panic!("no second message");
        };
        // A push that grows the buffer must not move the bytes under `r`.
        f.push(&[b' '; 4096]).unwrap();
        assert_eq!(f.buffer()[r], m(2));
    }

    #[test]
    fn steady_state_does_not_grow_the_buffer() {
        let n = 1000;
        let stream = INVITE.repeat(n);
        // Reads that split messages, and reads that hold several.
        for read in [100, 1000] {
            let mut f = framer(65_535);
            let mut out = Vec::new();
            let mut cap = 0;
            for (i, chunk) in stream.chunks(read).enumerate() {
                feed(&mut f, chunk, &mut out).unwrap();
                match i {
                    ..50 => cap = f.buf.capacity(),
                    _ => assert_eq!(f.buf.capacity(), cap, "read {i} of {read}"),
                }
            }
            assert_eq!(out.len(), n);
            assert!(cap <= 2 * (INVITE.len() + read));
        }
    }

    /// xorshift64: deterministic bytes for the robustness test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics_and_ranges_stay_in_the_buffer() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let good = cat(&[b"\r\n\r\n", INVITE, b"\r\n", OK, b"\n", INVITE]);
        let (mut messages, mut errors) = (0, 0);
        for round in 0..3000 {
            let mut data = if round % 2 == 0 {
                // Random bytes, biased towards the ones framing cares about.
                (0..rng.below(400))
                    .map(|_| match rng.below(4) {
                        0 => b"\r\n :l0S"[rng.below(7)],
                        _ => rng.next() as u8,
                    })
                    .collect::<Vec<u8>>()
            } else {
                good.clone()
            };
            // Mutations of good streams reach deep into the state machine.
            for _ in 0..rng.below(4) {
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] = b"\r\n:0 9l"[rng.below(7)];
                }
            }
            let limit = 64 + rng.below(600);
            let mut f = framer(limit);
            let mut got = Vec::new();
            let mut result = Ok(());
            let mut rest = &data[..];
            'stream: while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(1 + rng.below(rest.len().min(64)));
                rest = tail;
                if let Err(e) = f.push(chunk) {
                    result = Err(e);
                    break;
                }
                loop {
                    let item = match f.next_item() {
                        Ok(Some(Framed::Message(r))) => {
                            assert!(r.start < r.end && r.end <= f.buffer().len());
                            assert!(parse(&f.buffer()[r.clone()]).is_ok());
                            messages += 1;
                            Msg(f.buffer()[r].to_vec())
                        }
                        Ok(Some(Framed::Ping)) => Ping,
                        Ok(Some(Framed::Pong)) => Pong,
                        Ok(None) => break,
                        Err(e) => {
                            errors += 1;
                            result = Err(e);
                            break 'stream;
                        }
                    };
                    got.push(item);
                    if rng.below(3) == 0 {
                        f.consume();
                    }
                }
                f.consume();
            }
            // Chunking and consuming change nothing: the same bytes in one read
            // give the same items and the same error.
            let mut once = Vec::new();
            let once_result = feed(&mut framer(limit), &data, &mut once);
            assert_eq!((once, once_result), (got, result), "{data:?}");
        }
        // Both the happy path and the errors were reached.
        assert!(messages > 1000 && errors > 1000, "{messages} {errors}");
    }
}

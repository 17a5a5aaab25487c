//! Zero-copy SIP message parser (lenient: CRLF or bare LF, folding, compact names,
//! space before colon). Any input yields a `Message` or a `ParseError`, never a panic.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

use super::header::{
    CSeq, CommaRanges, HeaderName, NameAddr, Via, expand_other_compact, is_token, is_token_byte,
    split_comma, trim_lws_bytes,
};

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
    /// The message's head (start line and headers) is all ASCII, so the value
    /// needs no UTF-8 check (one check of the head instead of one per read).
    ascii: bool,
}

/// Appends `raw` with every fold (optional trailing whitespace, line end,
/// leading whitespace of the continuation) replaced by one space. Works on
/// bytes so non-UTF-8 values survive when copied into built messages.
pub fn unfold_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut pending_space = false;
    loop {
        let rest = raw.get(i..).unwrap_or(&[]);
        let (seg_end, next) = match memchr(b'\n', rest) {
            Some(rel) => (i + rel, Some(i + rel + 1)),
            None => (raw.len(), None),
        };
        let mut end = seg_end;
        if next.is_some() {
            while end > i && matches!(raw[end - 1], b' ' | b'\t' | b'\r') {
                end -= 1;
            }
        }
        if end > i {
            if pending_space {
                out.push(b' ');
            }
            out.extend_from_slice(&raw[i..end]);
        }
        let Some(mut j) = next else { break };
        while j < raw.len() && matches!(raw[j], b' ' | b'\t') {
            j += 1;
        }
        // Set per fold, consumed by the next non-empty segment, so that a
        // whitespace-only continuation line does not add a second space.
        pending_space = true;
        i = j;
    }
}

fn is_folded(raw: &[u8]) -> bool {
    memchr2(b'\r', b'\n', raw).is_some()
}

impl<'a> Header<'a> {
    /// Value with folding replaced by single spaces; lossy UTF-8.
    pub fn value(&self) -> Cow<'a, str> {
        if !is_folded(self.raw_value) {
            return match self.utf8() {
                Some(v) => Cow::Borrowed(v),
                None => String::from_utf8_lossy(self.raw_value),
            };
        }
        let mut v = Vec::with_capacity(self.raw_value.len());
        unfold_into(self.raw_value, &mut v);
        Cow::Owned(match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
    /// True when `name` (case-insensitive, compact forms understood) names this header.
    pub fn is(&self, name: &str) -> bool {
        self.is_parsed(HeaderName::parse(name), name)
    }
    /// `is` with the name's kind already looked up, for loops over headers.
    fn is_parsed(&self, kind: HeaderName, name: &str) -> bool {
        if kind != HeaderName::Other {
            return self.kind == kind;
        }
        self.kind == HeaderName::Other
            && expand_other_compact(self.name).eq_ignore_ascii_case(expand_other_compact(name))
    }
    /// The value borrowed as `str` when it is valid UTF-8 and not folded.
    pub fn value_str(&self) -> Option<&'a str> {
        if is_folded(self.raw_value) {
            return None;
        }
        self.utf8()
    }
    /// The value borrowed as `str` when valid UTF-8, folding left in place (the
    /// typed parsers treat line ends as whitespace).
    fn utf8(&self) -> Option<&'a str> {
        if self.ascii {
            // SAFETY: `ascii` is set only when every byte of the message's head
            // (which holds this value) is ASCII, which is valid UTF-8.
            return Some(unsafe { std::str::from_utf8_unchecked(self.raw_value) });
        }
        std::str::from_utf8(self.raw_value).ok()
    }
    /// First comma-separated value, borrowed.
    fn first_value(&self) -> Option<&'a str> {
        split_comma(self.utf8()?).next()
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

/// Where a head ends: its start line, where the body starts and the
/// Content-Length (`None` when absent).
struct HeadEnd<'a> {
    start: StartLine<'a>,
    body_start: usize,
    content_length: Option<usize>,
}

/// The part of a message before the body.
struct Head<'a> {
    start: StartLine<'a>,
    headers: Vec<Header<'a>>,
    msg_start: usize,
    body_start: usize,
    content_length: Option<usize>,
}

/// `(content_end, next_line_start)` for the line starting at `pos`; the
/// content excludes the LF and one CR before it. `None` when no LF follows.
#[inline]
fn next_line(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let nl = pos + memchr(b'\n', buf.get(pos..)?)?;
    let end = if nl > pos && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

/// Length of the run of empty lines (CRLF or LF) at the front of `buf`:
/// RFC 3261 §7.5 leading blank lines and RFC 5626 keep-alives.
pub fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf.get(i..) {
            Some([b'\n', ..]) => i += 1,
            Some([b'\r', b'\n', ..]) => i += 2,
            _ => return i,
        }
    }
}

fn is_sp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Next run of non-blank bytes starting at or after `*pos`.
fn word<'b>(line: &'b [u8], pos: &mut usize) -> Option<&'b [u8]> {
    while *pos < line.len() && is_sp(line[*pos]) {
        *pos += 1;
    }
    let start = *pos;
    while *pos < line.len() && !is_sp(line[*pos]) {
        *pos += 1;
    }
    (*pos > start).then(|| &line[start..*pos])
}

fn is_sip_version(v: &[u8]) -> bool {
    v.len() > 4 && v[..4].eq_ignore_ascii_case(b"SIP/") && is_token(&v[4..])
}

/// `std::str::from_utf8` with the common all-ASCII case checked a word at a
/// time and without the call.
fn utf8(b: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(b) });
    }
    std::str::from_utf8(b)
}

pub(crate) fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, ParseError> {
    let mut pos = 0;
    let first = word(line, &mut pos).ok_or(ParseError::StartLine("empty"))?;
    if first.len() >= 4 && first[..4].eq_ignore_ascii_case(b"SIP/") {
        if !is_sip_version(first) {
            return Err(ParseError::StartLine("bad version"));
        }
        let code = word(line, &mut pos).ok_or(ParseError::StartLine("missing status code"))?;
        let code = match code {
            [a @ b'1'..=b'6', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(ParseError::StartLine("bad status code")),
        };
        let reason = trim_lws_bytes(line.get(pos..).unwrap_or(&[]));
        // A reason phrase in a legacy charset should not cost us the status
        // code, which is all the engine acts on: keep the valid UTF-8 prefix.
        let reason = match utf8(reason) {
            Ok(r) => r,
            Err(e) => std::str::from_utf8(&reason[..e.valid_up_to()]).unwrap_or(""),
        };
        return Ok(StartLine::Response {
            // "SIP/" and a token: ASCII.
            version: token_str(first),
            code,
            reason: reason.trim_end(),
        });
    }
    if !is_token(first) {
        return Err(ParseError::StartLine("method is not a token"));
    }
    let uri = word(line, &mut pos).ok_or(ParseError::StartLine("missing Request-URI"))?;
    let version = word(line, &mut pos).ok_or(ParseError::StartLine("missing version"))?;
    if !is_sip_version(version) {
        return Err(ParseError::StartLine("bad version"));
    }
    if word(line, &mut pos).is_some() {
        return Err(ParseError::StartLine("extra text after version"));
    }
    Ok(StartLine::Request {
        method: token_str(first),
        uri: utf8(uri).map_err(|_| ParseError::StartLine("Request-URI not UTF-8"))?,
        version: token_str(version),
    })
}

/// Strict Content-Length value: digits only, no overflow.
fn parse_content_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0usize, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}

/// Length of the header name at the front of `line` and the position of the
/// colon after it (blanks allowed between). One pass over the name both finds
/// its end and checks it is a token; the common case never searches further.
fn header_name(line: &[u8]) -> Result<(usize, usize), &'static str> {
    let name_len = line
        .iter()
        .position(|&b| !is_token_byte(b))
        .unwrap_or(line.len());
    let mut i = name_len;
    while i < line.len() && is_sp(line[i]) {
        i += 1;
    }
    if name_len > 0 && line.get(i) == Some(&b':') {
        return Ok((name_len, i));
    }
    // Say what is wrong the way a reader would see it: no colon at all, or
    // something other than a token before it.
    Err(if memchr(b':', line).is_none() {
        "missing colon"
    } else {
        "header name is not a token"
    })
}

/// `b`, already checked by [`is_token`], as `str` without a second pass.
fn token_str(b: &[u8]) -> &str {
    debug_assert!(b.is_ascii());
    // SAFETY: token characters are ASCII (the TOKEN table admits no byte ≥ 0x80),
    // and ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(b) }
}

/// A header whose lines are still being collected (folding).
struct Pending {
    name_start: usize,
    name_end: usize,
    value_start: usize,
    end: usize,
}

fn finish_header<'b>(
    buf: &'b [u8],
    p: Pending,
    each: &mut impl FnMut(Header<'b>),
    content_length: &mut Option<usize>,
) -> Result<(), ParseError> {
    let name_bytes = &buf[p.name_start..p.name_end];
    let kind = HeaderName::parse_in(buf, p.name_start, name_bytes.len());
    let raw_value = trim_lws_bytes(buf.get(p.value_start..p.end).unwrap_or(&[]));
    if kind == HeaderName::ContentLength {
        let n = parse_content_length(raw_value).ok_or(ParseError::ContentLength)?;
        // Two different lengths make the framing ambiguous (a classic
        // request-smuggling vector); identical repeats are harmless.
        if content_length.is_some_and(|old| old != n) {
            return Err(ParseError::ContentLength);
        }
        *content_length = Some(n);
    }
    each(Header {
        name: token_str(name_bytes),
        kind,
        raw_value,
        raw: &buf[p.name_start..p.end],
        ascii: false,
    });
    Ok(())
}

/// Walks the start line and headers of `buf[from..]`, handing each header to
/// `each` (the message parser collects them; stream framing only needs where
/// the head ends and its Content-Length, and keeps none). `Ok(None)`: no
/// complete head yet (more bytes could complete it). Errors in complete lines
/// are reported at once so a stream does not buffer garbage forever.
fn scan_head<'b>(
    buf: &'b [u8],
    from: usize,
    mut each: impl FnMut(Header<'b>),
) -> Result<Option<HeadEnd<'b>>, ParseError> {
    let Some((sl_end, mut pos)) = next_line(buf, from) else {
        return Ok(None);
    };
    let start = parse_start_line(&buf[from..sl_end])?;
    let mut content_length = None;
    let mut pending: Option<Pending> = None;

    loop {
        let Some((end, next)) = next_line(buf, pos) else {
            return Ok(None);
        };
        let line = &buf[pos..end];
        match line.first() {
            None => {
                if let Some(p) = pending.take() {
                    finish_header(buf, p, &mut each, &mut content_length)?;
                }
                return Ok(Some(HeadEnd {
                    start,
                    body_start: next,
                    content_length,
                }));
            }
            Some(&b) if is_sp(b) => match pending.as_mut() {
                Some(p) => p.end = end,
                None => {
                    return Err(ParseError::Header {
                        offset: pos,
                        why: "continuation line before the first header",
                    });
                }
            },
            Some(_) => {
                if let Some(p) = pending.take() {
                    finish_header(buf, p, &mut each, &mut content_length)?;
                }
                let (name_len, colon) =
                    header_name(line).map_err(|why| ParseError::Header { offset: pos, why })?;
                pending = Some(Pending {
                    name_start: pos,
                    name_end: pos + name_len,
                    value_start: pos + colon + 1,
                    end,
                });
            }
        }
        pos = next;
    }
}

/// Parses start line and headers from `buf[from..]` into `headers` (emptied
/// first). `Ok(None)`: no complete head yet.
fn parse_head<'b>(
    buf: &'b [u8],
    from: usize,
    mut headers: Vec<Header<'b>>,
) -> Result<Option<Head<'b>>, ParseError> {
    headers.clear();
    headers.reserve(16);
    let Some(end) = scan_head(buf, from, |h| headers.push(h))? else {
        return Ok(None);
    };
    // One check of the head, a word at a time, spares each header read its
    // own UTF-8 validation.
    if buf[from..end.body_start].is_ascii() {
        for h in &mut headers {
            h.ascii = true;
        }
    }
    Ok(Some(Head {
        start: end.start,
        headers,
        msg_start: from,
        body_start: end.body_start,
        content_length: end.content_length,
    }))
}

/// Where a message's head ends, read without parsing the body: what stream
/// framing needs (RFC 3261 §18.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHead {
    /// Bytes from the start line through the empty line that ends the head.
    pub head_len: usize,
    /// The Content-Length value; `None` when the header is absent.
    pub content_length: Option<usize>,
}

/// Reads the head at the front of a stream buffer, which must start at the
/// start line (drain keep-alives first, see [`leading_empty_lines`]): its
/// length and Content-Length. Headers are checked as [`parse`] checks them
/// (so framing and parsing agree on the Content-Length, including a repeated
/// one that differs) but not collected: nothing is allocated. Unlike
/// [`parse_stream`], a missing Content-Length is not an error here; the
/// caller decides what it means. `Ok(None)`: the head is not complete yet.
pub fn stream_head(buf: &[u8]) -> Result<Option<StreamHead>, ParseError> {
    Ok(scan_head(buf, 0, |_| {})?.map(|end| StreamHead {
        head_len: end.body_start,
        content_length: end.content_length,
    }))
}

/// Parse one message from a datagram. Content-Length, when present, bounds the
/// body (extra bytes are ignored); when absent the body runs to the end.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, ParseError> {
    parse_reusing(buf, Vec::new())
}

/// [`parse`], keeping the headers in `headers` (emptied first): a loop that
/// parses message after message hands back each one's vector with
/// [`Message::into_headers`], and allocates none.
pub fn parse_reusing<'a>(
    buf: &'a [u8],
    headers: Vec<Header<'a>>,
) -> Result<Message<'a>, ParseError> {
    let from = leading_empty_lines(buf);
    let rest = &buf[from..];
    if rest.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let Some(head) = parse_head(buf, from, headers)? else {
        // Without a line end at all, a bad start line is the more useful error.
        if memchr(b'\n', rest).is_none() {
            let line = rest.strip_suffix(b"\r").unwrap_or(rest);
            parse_start_line(line)?;
        }
        return Err(ParseError::Unterminated);
    };
    let body_end = match head.content_length {
        Some(n) => {
            let have = buf.len() - head.body_start;
            if n > have {
                return Err(ParseError::Truncated { have, want: n });
            }
            head.body_start + n
        }
        None => buf.len(),
    };
    Ok(Message {
        start: head.start,
        headers: head.headers,
        body: &buf[head.body_start..body_end],
        raw: &buf[head.msg_start..body_end],
    })
}

/// Parse one message from the front of a stream buffer (TCP/TLS framing by
/// Content-Length, which is then mandatory). `Ok(None)` means "need more bytes".
/// On success returns the message and the number of bytes consumed.
///
/// Leading CRLF keep-alives are skipped and counted in the consumed length. A
/// buffer holding only keep-alives yields `Ok(None)`; use
/// [`leading_empty_lines`] to drain them without waiting for a message. A
/// missing Content-Length is `Err(ContentLength)` (RFC 3261 §18.3). There is
/// no size cap here: the caller bounds its buffer.
pub fn parse_stream(buf: &[u8]) -> Result<Option<(Message<'_>, usize)>, ParseError> {
    let from = leading_empty_lines(buf);
    let Some(head) = parse_head(buf, from, Vec::new())? else {
        return Ok(None);
    };
    let n = head.content_length.ok_or(ParseError::ContentLength)?;
    let body_end = head
        .body_start
        .checked_add(n)
        .ok_or(ParseError::ContentLength)?;
    if body_end > buf.len() {
        return Ok(None);
    }
    Ok(Some((
        Message {
            start: head.start,
            headers: head.headers,
            body: &buf[head.body_start..body_end],
            raw: &buf[head.msg_start..body_end],
        },
        body_end,
    )))
}

/// What is left of a request that [`parse`] refused, read as leniently as can
/// be: the request line and every header line that has a name and a colon,
/// malformed lines skipped, Content-Length not checked (the body is whatever
/// follows the head). Enough to answer it 400 (RFC 3261 §21.4.1) with the Via,
/// From, To, Call-ID and CSeq it carries. `None` when there is no request line
/// or no complete head: the datagram could be a response, which is never
/// answered, or a message cut short, whose lines cannot be trusted to route
/// an answer.
pub fn salvage_request(buf: &[u8]) -> Option<Message<'_>> {
    let from = leading_empty_lines(buf);
    let (sl_end, mut pos) = next_line(buf, from)?;
    let start = parse_start_line(&buf[from..sl_end]).ok()?;
    if !matches!(start, StartLine::Request { .. }) {
        return None;
    }
    let mut headers = Vec::new();
    // The header being collected, when its line was well formed (continuation
    // lines of a skipped line are skipped with it).
    let mut pending: Option<Pending> = None;
    let mut skipping = false;
    let body_start = loop {
        let (end, next) = next_line(buf, pos)?;
        let line = &buf[pos..end];
        match line.first() {
            None => break next,
            Some(&b) if is_sp(b) => {
                if let Some(p) = pending.as_mut().filter(|_| !skipping) {
                    p.end = end;
                }
            }
            Some(_) => {
                if let Some(p) = pending.take() {
                    headers.push(lenient_header(buf, p));
                }
                skipping = false;
                match header_name(line) {
                    Ok((name_len, colon)) => {
                        pending = Some(Pending {
                            name_start: pos,
                            name_end: pos + name_len,
                            value_start: pos + colon + 1,
                            end,
                        })
                    }
                    Err(_) => skipping = true,
                }
            }
        }
        pos = next;
    };
    if let Some(p) = pending.take() {
        headers.push(lenient_header(buf, p));
    }
    if buf[from..body_start].is_ascii() {
        for h in &mut headers {
            h.ascii = true;
        }
    }
    Some(Message {
        start,
        headers,
        body: &buf[body_start..],
        raw: &buf[from..],
    })
}

/// [`finish_header`] without the Content-Length check.
fn lenient_header(buf: &[u8], p: Pending) -> Header<'_> {
    let name_bytes = &buf[p.name_start..p.name_end];
    Header {
        name: token_str(name_bytes),
        kind: HeaderName::parse_in(buf, p.name_start, name_bytes.len()),
        raw_value: trim_lws_bytes(buf.get(p.value_start..p.end).unwrap_or(&[])),
        raw: &buf[p.name_start..p.end],
        ascii: false,
    }
}

/// An emptied header vector, ready to hold headers borrowed from another buffer;
/// its allocation is kept.
#[expect(
    clippy::unnecessary_filter_map,
    reason = "the point is the element type's new lifetime, which `filter` cannot change"
)]
fn recycle_headers<'b>(mut headers: Vec<Header<'_>>) -> Vec<Header<'b>> {
    headers.clear();
    // Collecting an empty vector's iterator into a vector of the same layout
    // reuses the allocation (the standard library collects in place); no
    // element passes through, so nothing outlives the old buffer.
    headers.into_iter().filter_map(|_| None).collect()
}

impl<'a> Message<'a> {
    /// The header vector, emptied (so it no longer borrows this message's
    /// buffer), for the next [`parse_reusing`].
    pub fn into_headers(self) -> Vec<Header<'static>> {
        recycle_headers(self.headers)
    }
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
        let kind = HeaderName::parse(name);
        self.headers.iter().filter(move |h| h.is_parsed(kind, name))
    }
    /// Every comma-separated value of every header of this kind, in order.
    /// Values are borrowed when unfolded UTF-8; otherwise owned.
    pub fn values_of(&self, kind: HeaderName) -> Vec<Cow<'a, str>> {
        let mut out = Vec::new();
        for h in self.headers_of(kind) {
            match h.utf8() {
                Some(s) => out.extend(split_comma(s).map(|v| {
                    if is_folded(v.as_bytes()) {
                        let mut o = Vec::with_capacity(v.len());
                        unfold_into(v.as_bytes(), &mut o);
                        Cow::Owned(String::from_utf8_lossy(&o).into_owned())
                    } else {
                        Cow::Borrowed(v)
                    }
                })),
                None => {
                    let v = h.value();
                    out.extend(
                        CommaRanges::new(v.as_bytes())
                            .filter_map(|(a, z)| v.get(a..z))
                            .map(|s| Cow::Owned(s.to_owned())),
                    );
                }
            }
        }
        out
    }
    pub fn call_id(&self) -> Option<&'a str> {
        self.header(HeaderName::CallId)?.value_str()
    }
    pub fn cseq(&self) -> Option<CSeq<'a>> {
        CSeq::parse(self.header(HeaderName::CSeq)?.utf8()?)
    }
    /// Topmost Via value (first value of the first Via header).
    pub fn top_via(&self) -> Option<Via<'a>> {
        Via::parse(self.top_via_str()?)
    }
    /// Text of the topmost Via value (what [`Message::top_via`] parses); pass it
    /// to [`Via::sent_by`].
    pub fn top_via_str(&self) -> Option<&'a str> {
        self.header(HeaderName::Via)?.first_value()
    }
    /// The `branch` parameter of the topmost Via, found without parsing the
    /// rest of the Via (what response matching needs, RFC 3261 §17.1.3).
    pub fn top_via_branch(&self) -> Option<&'a str> {
        Via::branch_of(self.top_via_str()?)
    }
    /// [`Message::top_via`], and its sent-by as written (what server transactions
    /// match on, RFC 3261 §17.2.3; "" when there is none), from one parse.
    pub fn top_via_sent_by(&self) -> (Option<Via<'a>>, &'a str) {
        let Some(v) = self.top_via_str() else {
            return (None, "");
        };
        let via = Via::parse(v);
        let sent_by = via.as_ref().and_then(|p| p.sent_by(v)).unwrap_or("");
        (via, sent_by)
    }
    pub fn from(&self) -> Option<NameAddr<'a>> {
        NameAddr::parse(self.header(HeaderName::From)?.utf8()?)
    }
    pub fn to(&self) -> Option<NameAddr<'a>> {
        NameAddr::parse(self.header(HeaderName::To)?.utf8()?)
    }
    /// First Contact value.
    pub fn contact(&self) -> Option<NameAddr<'a>> {
        let v = self.header(HeaderName::Contact)?.first_value()?;
        if v == "*" {
            return None;
        }
        NameAddr::parse(v)
    }
    /// Record-Route values in message order (each a name-addr string).
    pub fn record_route(&self) -> Vec<Cow<'a, str>> {
        self.values_of(HeaderName::RecordRoute)
    }
    pub fn route(&self) -> Vec<Cow<'a, str>> {
        self.values_of(HeaderName::Route)
    }
    pub fn content_type(&self) -> Option<&'a str> {
        self.header(HeaderName::ContentType)?.value_str()
    }
    pub fn content_length(&self) -> Option<usize> {
        parse_content_length(self.header(HeaderName::ContentLength)?.raw_value)
    }
}

/// Messages whose Content-Length cannot delimit them (not a number, out of
/// range, or two that differ): the parser and the stream framer both refuse them.
#[cfg(test)]
pub(crate) const BAD_CONTENT_LENGTHS: [&[u8]; 8] = [
    b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: five\r\n\r\nhello",
    b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
    b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: +5\r\n\r\nhello",
    b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length:\r\n\r\n",
    b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5 5\r\n\r\nhello",
    b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"MESSAGE sip:a@b SIP/2.0\r\nl: 18446744073709551616\r\n\r\n",
    b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5\r\nl: 4\r\n\r\nhello",
];

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"Alice A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 134\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    fn ok(s: &[u8]) -> Message<'_> {
        match parse(s) {
            Ok(m) => m,
            Err(e) => panic!("{e} for {:?}", String::from_utf8_lossy(s)),
        }
    }

    #[test]
    fn invite_with_sdp() {
        let m = ok(INVITE.as_bytes());
        assert!(m.is_request());
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.request_uri(), Some("sip:bob@biloxi.example.com"));
        assert_eq!(m.status(), None);
        assert_eq!(m.headers.len(), 9);
        assert_eq!(m.call_id(), Some("a84b4c76e66710@pc33.atlanta.example.com"));
        assert_eq!(
            m.cseq(),
            Some(CSeq {
                seq: 314159,
                method: "INVITE"
            })
        );
        let via = m.top_via().unwrap();
        assert_eq!(via.host, "pc33.atlanta.example.com");
        assert_eq!(via.port, Some(5060));
        assert_eq!(via.branch, Some("z9hG4bK776asdhds"));
        assert_eq!(via.rport, Some(None));
        let from = m.from().unwrap();
        assert_eq!(from.display, Some("Alice A."));
        assert_eq!(from.tag(), Some("1928301774"));
        let to = m.to().unwrap();
        assert_eq!(
            (to.display, to.uri, to.tag()),
            (Some("Bob"), "sip:bob@biloxi.example.com", None)
        );
        assert_eq!(
            m.contact().unwrap().uri,
            "sip:alice@pc33.atlanta.example.com"
        );
        assert_eq!(m.content_type(), Some("application/sdp"));
        assert_eq!(m.content_length(), Some(134));
        assert_eq!(m.body.len(), 134);
        assert!(m.body.starts_with(b"v=0\r\n"));
        assert!(m.body.ends_with(b"PCMU/8000\r\n"));
        assert_eq!(m.raw, INVITE.as_bytes());
        assert!(m.record_route().is_empty());
        let h = m.header(HeaderName::MaxForwards).unwrap();
        assert_eq!(
            (h.name, h.raw_value, h.raw),
            ("Max-Forwards", &b"70"[..], &b"Max-Forwards: 70"[..])
        );
        assert_eq!(h.value(), Cow::Borrowed("70"));
        assert!(matches!(h.value(), Cow::Borrowed(_)));
    }

    #[test]
    fn parse_reusing_keeps_the_header_allocation() {
        let first =
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: one\r\n\r\n";
        let v = parse(first).unwrap().into_headers();
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
        assert!(cap >= 16);
        let second = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: two\r\n\r\n".to_vec();
        let m = parse_reusing(&second, v).unwrap();
        assert_eq!((m.call_id(), m.headers.len()), (Some("two"), 1));
        let v = m.into_headers();
        assert_eq!((v.as_ptr() as usize, v.capacity()), (ptr, cap));
        // A failed parse just loses the vector.
        assert!(parse_reusing(b"garbage", v).is_err());
    }

    #[test]
    fn line_ends_crlf_lf_mixed_agree() {
        let crlf = INVITE.to_string();
        let head_end = crlf.find("\r\n\r\n").unwrap() + 4;
        let (h, body) = crlf.split_at(head_end);
        let lf = format!("{}{body}", h.replace("\r\n", "\n"));
        // Alternate line ends header by header.
        let mut mixed = String::new();
        for (i, line) in h.split_inclusive("\r\n").enumerate() {
            if i % 2 == 1 {
                mixed.push_str(&line.replace("\r\n", "\n"));
            } else {
                mixed.push_str(line);
            }
        }
        mixed.push_str(body);
        let a = ok(crlf.as_bytes());
        for other in [lf.as_bytes(), mixed.as_bytes()] {
            let b = ok(other);
            assert_eq!(a.start, b.start);
            assert_eq!(a.body, b.body);
            assert_eq!(a.headers.len(), b.headers.len());
            for (x, y) in a.headers.iter().zip(&b.headers) {
                assert_eq!((x.name, x.kind, x.raw_value), (y.name, y.kind, y.raw_value));
                assert_eq!(x.raw, y.raw);
            }
            assert_eq!(b.call_id(), a.call_id());
        }
    }

    #[test]
    fn folding() {
        let msg = b"OPTIONS sip:x@example.net SIP/2.0\r\n\
Subject: I know you're there,\r\n   pick up the phone \r\n\t and talk to me!\r\n\
Via: SIP/2.0/UDP\r\n 192.0.2.1;branch=z9hG4bKf1,\n SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKf2\r\n\
From:\r\n <sip:a@example.net>;tag=1\r\n\
Call-ID: fold\r\n  ed\r\n\
To: <sip:x@example.net>\n\
\n";
        let m = ok(msg);
        let subj = m.header(HeaderName::Subject).unwrap();
        assert_eq!(
            subj.raw,
            &b"Subject: I know you're there,\r\n   pick up the phone \r\n\t and talk to me!"[..]
        );
        assert_eq!(
            subj.value(),
            "I know you're there, pick up the phone and talk to me!"
        );
        assert!(matches!(subj.value(), Cow::Owned(_)));
        assert_eq!(subj.value_str(), None);
        // Typed accessors see through folding.
        let via = m.top_via().unwrap();
        assert_eq!((via.host, via.branch), ("192.0.2.1", Some("z9hG4bKf1")));
        assert_eq!(m.values_of(HeaderName::Via).len(), 2);
        assert_eq!(m.from().unwrap().tag(), Some("1"));
        assert_eq!(
            m.header(HeaderName::From).unwrap().value_str(),
            Some("<sip:a@example.net>;tag=1")
        );
        // Whole-value `&str` accessors cannot borrow a folded value.
        assert_eq!(m.call_id(), None);
        assert_eq!(m.header(HeaderName::CallId).unwrap().value(), "fold ed");
        // Whitespace-only continuation lines collapse into one space.
        let m = ok(b"OPTIONS sip:x SIP/2.0\nSubject: a\n \n  \n b\n\n");
        assert_eq!(m.header(HeaderName::Subject).unwrap().value(), "a b");
    }

    #[test]
    fn compact_forms_and_spacing() {
        let msg = b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n\
v : SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc\r\n\
f\t:<sip:alice@example.com>;tag=a\r\n\
t:<sip:bob@example.com>;tag=b\r\n\
i:compact@example.com\r\n\
CSEQ  :   2   BYE\r\n\
m: <sip:alice@192.0.2.1>\r\n\
l:0\r\n\
k: timer, 100rel\r\n\
X-Extension :  some value  \r\n\
\r\n";
        let m = ok(msg);
        assert_eq!(m.call_id(), Some("compact@example.com"));
        assert_eq!(
            m.cseq(),
            Some(CSeq {
                seq: 2,
                method: "BYE"
            })
        );
        assert_eq!(m.top_via().unwrap().host, "192.0.2.1");
        assert_eq!(m.from().unwrap().tag(), Some("a"));
        assert_eq!(m.to().unwrap().tag(), Some("b"));
        assert_eq!(m.content_length(), Some(0));
        assert_eq!(m.values_of(HeaderName::Supported), ["timer", "100rel"]);
        assert_eq!(m.header(HeaderName::Via).unwrap().name, "v");
        let x = m.headers_named("x-EXTENSION").next().unwrap();
        assert_eq!((x.name, x.value_str()), ("X-Extension", Some("some value")));
        assert_eq!(x.raw, &b"X-Extension :  some value  "[..]);
        assert_eq!(m.headers_named("Call-ID").count(), 1);
        assert_eq!(m.headers_named("I").count(), 1);
        assert_eq!(m.headers_named("content-length").count(), 1);
        assert!(m.headers[0].is("via") && m.headers[0].is("V") && !m.headers[0].is("x"));
        assert!(m.body.is_empty());
    }

    #[test]
    fn unknown_compact_forms_match_full_names() {
        let m = ok(b"INVITE sip:a SIP/2.0\r\na: *;audio\r\nAccept-Contact: *;video\r\n\r\n");
        assert_eq!(m.headers_named("accept-contact").count(), 2);
        assert_eq!(m.headers_named("a").count(), 2);
        assert_eq!(m.headers_named("Reject-Contact").count(), 0);
    }

    #[test]
    fn multiple_and_comma_joined_vias() {
        let msg = b"SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, SIP/2.0/UDP p2.example.com;branch=z9hG4bK2\r\n\
Via: SIP/2.0/TCP [2001:db8::3]:5061;branch=z9hG4bK3;received=2001:db8::99\r\n\
v: SIP/2.0/UDP p4.example.com;branch=z9hG4bK4\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Record-Route: <sip:[2001:db8::3];lr>\r\n\
Content-Length: 0\r\n\
\r\n";
        let m = ok(msg);
        assert_eq!(m.status(), Some(180));
        let top = m.top_via().unwrap();
        assert_eq!((top.host, top.branch), ("p1.example.com", Some("z9hG4bK1")));
        let vias = m.values_of(HeaderName::Via);
        assert_eq!(vias.len(), 4);
        let third = Via::parse(&vias[2]).unwrap();
        assert_eq!(
            (third.transport, third.host, third.port),
            ("TCP", "2001:db8::3", Some(5061))
        );
        assert_eq!(third.received, Some("2001:db8::99"));
        assert!(vias.iter().all(|v| matches!(v, Cow::Borrowed(_))));
        assert_eq!(
            m.record_route(),
            [
                "<sip:p1.example.com;lr>",
                "<sip:p2.example.com;lr>",
                "<sip:[2001:db8::3];lr>"
            ]
        );
        assert_eq!(m.headers_of(HeaderName::Via).count(), 3);
        let text = m.top_via_str().unwrap();
        assert_eq!(top.sent_by(text), Some("p1.example.com"));
    }

    #[test]
    fn quoted_display_with_comma_and_angle() {
        let msg = b"REGISTER sip:registrar.example SIP/2.0\r\n\
To: \"Lastname, First <x>\" <sip:u@example.com>\r\n\
From: \"Lastname, First <x>\" <sip:u@example.com>;tag=f\r\n\
Contact: \"Quote \\\" and, comma\" <sip:u@192.0.2.5;transport=tcp>;expires=300, <sip:u@[2001:db8::5]>;q=0.5\r\n\
Contact: sip:u@other.example;expires=10\r\n\
\r\n";
        let m = ok(msg);
        let to = m.to().unwrap();
        assert_eq!(to.display, Some("Lastname, First <x>"));
        assert_eq!(to.uri, "sip:u@example.com");
        let c = m.contact().unwrap();
        assert_eq!(c.display, Some("Quote \\\" and, comma"));
        assert_eq!(c.uri, "sip:u@192.0.2.5;transport=tcp");
        assert_eq!(c.param("expires"), Some("300"));
        let all = m.values_of(HeaderName::Contact);
        assert_eq!(all.len(), 3);
        assert_eq!(NameAddr::parse(&all[1]).unwrap().uri, "sip:u@[2001:db8::5]");
        let third = NameAddr::parse(&all[2]).unwrap();
        assert_eq!(
            (third.uri, third.param("expires")),
            ("sip:u@other.example", Some("10"))
        );
    }

    #[test]
    fn star_contact() {
        let m = ok(b"REGISTER sip:r SIP/2.0\r\nContact: *\r\nExpires: 0\r\n\r\n");
        assert_eq!(m.contact(), None);
        assert_eq!(m.values_of(HeaderName::Contact), ["*"]);
    }

    #[test]
    fn ipv6_everywhere() {
        let m = ok(b"OPTIONS sip:[2001:db8::1]:5070;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::2]:5060;branch=z9hG4bK6;rport=5060\r\n\
From: <sip:a@[2001:db8::2]>;tag=6\r\n\r\n");
        assert_eq!(
            m.request_uri(),
            Some("sip:[2001:db8::1]:5070;transport=udp")
        );
        let v = m.top_via().unwrap();
        assert_eq!(
            (v.host, v.port, v.rport),
            ("2001:db8::2", Some(5060), Some(Some(5060)))
        );
        let u = crate::sip::uri::SipUri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!((u.host, u.port), ("2001:db8::1", Some(5070)));
        assert_eq!(m.from().unwrap().uri, "sip:a@[2001:db8::2]");
    }

    const SHORT: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\n";

    #[test]
    fn content_length_framing() {
        let mut m = SHORT.to_vec();
        m.extend_from_slice(b"hello");
        assert_eq!(ok(&m).body, b"hello");

        // Bigger than the body.
        let mut t = SHORT.to_vec();
        t.extend_from_slice(b"hel");
        assert_eq!(
            parse(&t).unwrap_err(),
            ParseError::Truncated { have: 3, want: 5 }
        );

        // Smaller: extra bytes are ignored and are not part of `raw`.
        let mut e = SHORT.to_vec();
        e.extend_from_slice(b"hello world");
        let msg = ok(&e);
        assert_eq!(msg.body, b"hello");
        assert_eq!(msg.raw.len(), SHORT.len() + 5);

        // Missing: body runs to the end.
        let msg = ok(b"MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\n\r\nall of this");
        assert_eq!(msg.body, b"all of this");
        assert_eq!(msg.content_length(), None);

        for bad in BAD_CONTENT_LENGTHS {
            assert_eq!(
                parse(bad).unwrap_err(),
                ParseError::ContentLength,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Largest usize is a valid number, just never satisfiable.
        let huge = format!(
            "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: {}\r\n\r\n",
            usize::MAX
        );
        assert!(matches!(
            parse(huge.as_bytes()),
            Err(ParseError::Truncated { .. })
        ));
        // A stream cannot wait for more than the address space.
        assert_eq!(
            parse_stream(huge.as_bytes()).map(|o| o.is_some()),
            Err(ParseError::ContentLength)
        );
        // Repeated identical Content-Length is fine.
        assert_eq!(
            ok(b"M sip:a SIP/2.0\r\nl: 2\r\nContent-Length: 2\r\n\r\nab").body,
            b"ab"
        );
    }

    #[test]
    fn responses() {
        let m = ok(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            m.start,
            StartLine::Response {
                version: "SIP/2.0",
                code: 200,
                reason: "OK"
            }
        );
        let m = ok(b"SIP/2.0 486\r\n\r\n");
        assert_eq!(
            m.start,
            StartLine::Response {
                version: "SIP/2.0",
                code: 486,
                reason: ""
            }
        );
        let m = ok(b"SIP/2.0 183 \r\n\r\n");
        assert_eq!(m.status(), Some(183));
        let m = ok(b"sip/2.0   404   Not   Found  \r\n\r\n");
        assert_eq!(
            m.start,
            StartLine::Response {
                version: "sip/2.0",
                code: 404,
                reason: "Not   Found"
            }
        );
        let m = ok(b"SIP/2.0 500 Caf\xe9 ferm\xe9\r\n\r\n");
        assert_eq!(
            m.start,
            StartLine::Response {
                version: "SIP/2.0",
                code: 500,
                reason: "Caf"
            }
        );
        let m = ok("SIP/2.0 699 Ça va\r\n\r\n".as_bytes());
        assert_eq!(m.status(), Some(699));
        for bad in [
            &b"SIP/2.0 999 Nope\r\n\r\n"[..],
            b"SIP/2.0 099 Nope\r\n\r\n",
            b"SIP/2.0 700 Nope\r\n\r\n",
            b"SIP/2.0 20 Short\r\n\r\n",
            b"SIP/2.0 2000 Long\r\n\r\n",
            b"SIP/2.0 2x0 Hex\r\n\r\n",
            b"SIP/2.0\r\n\r\n",
            b"SIP/ 200 OK\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::StartLine(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn request_start_lines() {
        let m = ok(b"\r\n\n\r\nINVITE    sip:a@b    SIP/2.0   \r\n\r\n");
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.request_uri(), Some("sip:a@b"));
        assert!(m.raw.starts_with(b"INVITE"));
        let m = ok(b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n\r\n");
        assert_eq!(
            m.method(),
            Some("!interesting-Method0123456789_*+`.%indeed'~")
        );
        let m = ok(b" \tINVITE sip:a@b SIP/2.0\r\n\r\n");
        assert_eq!(m.method(), Some("INVITE"));
        let m = ok(b"OPTIONS urn:service:sos SIP/2.0\r\n\r\n");
        assert_eq!(m.request_uri(), Some("urn:service:sos"));
        for bad in [
            &b"INVITE sip:a@b SIP/2.0 extra\r\n\r\n"[..],
            b"INVITE sip:a b@c SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b\r\n\r\n",
            b"INVITE\r\n\r\n",
            b"INVITE sip:a@b HTTP/1.1\r\n\r\n",
            b"INV(ITE sip:a@b SIP/2.0\r\n\r\n",
            b"INVITE sip:\xff@b SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b SIP/\xff\r\n\r\n",
            b"garbage",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::StartLine(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn empty_and_unterminated() {
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"\r\n\r\n").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"\n \t").unwrap_err(), ParseError::Empty);
        assert_eq!(
            parse(b"OPTIONS sip:a SIP/2.0").unwrap_err(),
            ParseError::Unterminated
        );
        assert_eq!(
            parse(b"OPTIONS sip:a SIP/2.0\r\nTo: x\r\n").unwrap_err(),
            ParseError::Unterminated
        );
        assert_eq!(
            parse(b"OPTIONS sip:a SIP/2.0\r\nTo: x").unwrap_err(),
            ParseError::Unterminated
        );
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            parse(b"OPTIONS sip:a SIP/2.0\r\nNo colon here\r\n\r\n").unwrap_err(),
            ParseError::Header {
                offset: 23,
                why: "missing colon"
            }
        );
        assert!(matches!(
            parse(b"OPTIONS sip:a SIP/2.0\r\nBad Name: x\r\n\r\n"),
            Err(ParseError::Header { offset: 23, .. })
        ));
        assert!(matches!(
            parse(b"OPTIONS sip:a SIP/2.0\r\n: x\r\n\r\n"),
            Err(ParseError::Header { .. })
        ));
        assert!(matches!(
            parse(b"OPTIONS sip:a SIP/2.0\r\nN\xe4me: x\r\n\r\n"),
            Err(ParseError::Header { .. })
        ));
        assert!(matches!(
            parse(b"OPTIONS sip:a SIP/2.0\r\n folded-start: x\r\n\r\n"),
            Err(ParseError::Header { .. })
        ));
    }

    #[test]
    fn lenient_invalid_messages() {
        // No mandatory headers at all: parses, accessors say None.
        let m = ok(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n");
        assert!(m.headers.is_empty());
        assert_eq!(
            (m.call_id(), m.cseq(), m.top_via(), m.from(), m.to()),
            (None, None, None, None, None)
        );
        assert_eq!(
            (m.contact(), m.content_type(), m.content_length()),
            (None, None, None)
        );
        assert!(m.route().is_empty());

        // Broken values: message parses, typed accessors decline.
        let m = ok(b"INVITE sip:a@b SIP/2.0\r\n\
Via: SIP/2.0/UDP\r\n\
From: \"Unterminated <sip:a@b>;tag=1\r\n\
To: <sip:b@c\r\n\
CSeq: INVITE 1\r\n\
Call-ID: \xffnot-utf8\xfe\r\n\
Subject: caf\xe9\r\n\
Route: <sip:p\xe9@x;lr>, <sip:q;lr>\r\n\
\r\n");
        assert_eq!(
            (m.top_via(), m.from(), m.to(), m.cseq(), m.call_id()),
            (None, None, None, None, None)
        );
        let subj = m.header(HeaderName::Subject).unwrap();
        assert_eq!(subj.raw_value, b"caf\xe9");
        assert_eq!(subj.value(), "caf\u{fffd}");
        assert_eq!(subj.value_str(), None);
        let routes = m.route();
        assert_eq!(routes, ["<sip:p\u{fffd}@x;lr>", "<sip:q;lr>"]);
        assert!(routes.iter().all(|r| matches!(r, Cow::Owned(_))));

        // Non-ASCII but valid UTF-8 (the per-header check, not the ASCII shortcut).
        let m = ok("OPTIONS sip:a@b SIP/2.0\r\nSubject: café\r\nCall-ID: x@y\r\n\r\n".as_bytes());
        let subj = m.header(HeaderName::Subject).unwrap();
        assert_eq!(subj.value_str(), Some("café"));
        assert_eq!(m.call_id(), Some("x@y"));
    }

    #[test]
    fn unusual_but_valid() {
        let long = "x".repeat(5000);
        let msg = format!(
            "OPTIONS sip:%75ser%40@example.com;Transport=UDP SIP/2.0\r\n\
Via     :     SIP  /  2.0  /  UDP    host.example.com  ;  branch  =  z9hG4bKsp  \r\n\
TO: \"\" <tel:+1-555-0100;phone-context=example.com>\r\n\
fROM: sip:caller@example.com;tag=tt\r\n\
Call-Id: {long}\r\n\
cseq: 8 OPTIONS\r\n\
X-Empty:\r\n\
X-Long: {long}\r\n\
Accept: application/sdp, application/pidf+xml,text/plain\r\n\
l: 0\r\n\r\n"
        );
        let m = ok(msg.as_bytes());
        let v = m.top_via().unwrap();
        assert_eq!(
            (v.transport, v.host, v.branch),
            ("UDP", "host.example.com", Some("z9hG4bKsp"))
        );
        let to = m.to().unwrap();
        assert_eq!(to.display, Some(""));
        let u = crate::sip::uri::SipUri::parse(to.uri).unwrap();
        assert_eq!((u.scheme, u.host), ("tel", "+1-555-0100"));
        assert_eq!(m.from().unwrap().tag(), Some("tt"));
        assert_eq!(m.call_id().map(str::len), Some(5000));
        assert_eq!(m.cseq().unwrap().seq, 8);
        assert_eq!(m.headers_named("x-empty").next().unwrap().raw_value, b"");
        assert_eq!(
            m.headers_named("accept")
                .next()
                .unwrap()
                .value_str()
                .map(|v| split_comma(v).count()),
            Some(3)
        );
    }

    #[test]
    fn salvage_reads_what_parse_refuses() {
        // A line without a colon (and its continuation) is skipped; Content-Length is
        // not checked; the body is what follows the head.
        let data = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
no colon here\r\n  continued\r\nCall-ID: c\r\n folded\r\nContent-Length: 99\r\n\r\nbody";
        assert!(parse(data).is_err());
        let m = salvage_request(data).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        let names: Vec<&str> = m.headers.iter().map(|h| h.name).collect();
        assert_eq!(names, ["Via", "Call-ID", "Content-Length"]);
        assert_eq!(m.header(HeaderName::CallId).unwrap().value(), "c folded");
        assert_eq!(m.top_via_branch(), Some("z9hG4bK1"));
        assert_eq!(m.body, b"body");
        // Not a request, no request line, no end of head: nothing to answer.
        assert!(salvage_request(b"SIP/2.0 200 OK\r\nCall-ID: c\r\n\r\n").is_none());
        assert!(salvage_request(b"\x00\x01garbage\r\nCall-ID: c\r\n\r\n").is_none());
        assert!(salvage_request(b"OPTIONS sip:a SIP/2.0\r\nCall-ID: c\r\n").is_none());
        // Non-ASCII heads keep their bytes.
        let m = salvage_request(b"OPTIONS sip:a SIP/2.0\r\nSubject: caf\xe9\r\n\r\n").unwrap();
        assert_eq!(m.headers[0].value_str(), None);
    }

    #[test]
    fn many_headers() {
        let mut msg = b"OPTIONS sip:a SIP/2.0\r\n".to_vec();
        for i in 0..200 {
            msg.extend_from_slice(format!("Record-Route: <sip:p{i}.example;lr>\r\n").as_bytes());
        }
        msg.extend_from_slice(b"\r\n");
        let m = ok(&msg);
        let rr = m.record_route();
        assert_eq!(rr.len(), 200);
        assert_eq!(rr[199], "<sip:p199.example;lr>");
    }

    #[test]
    fn stream_back_to_back() {
        let one = b"SIP/2.0 100 Trying\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n";
        let two = b"MESSAGE sip:a SIP/2.0\r\ni: 2\r\nl: 3\r\n\r\nabc";
        let mut buf = one.to_vec();
        buf.extend_from_slice(two);
        let (m1, n1) = parse_stream(&buf).unwrap().unwrap();
        assert_eq!((m1.call_id(), n1), (Some("1"), one.len()));
        let (m2, n2) = parse_stream(&buf[n1..]).unwrap().unwrap();
        assert_eq!(
            (m2.call_id(), m2.body, n2),
            (Some("2"), &b"abc"[..], two.len())
        );
        assert!(matches!(parse_stream(&buf[n1 + n2..]), Ok(None)));
    }

    #[test]
    fn stream_partial_and_keepalives() {
        let msg = b"MESSAGE sip:a SIP/2.0\r\nCall-ID: p\r\nContent-Length: 4\r\n\r\nbody";
        // Every strict prefix needs more bytes.
        for cut in 0..msg.len() {
            assert!(parse_stream(&msg[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (m, n) = parse_stream(msg).unwrap().unwrap();
        assert_eq!((m.body, n), (&b"body"[..], msg.len()));

        let mut ka = b"\r\n\r\n\n".to_vec();
        assert!(parse_stream(&ka).unwrap().is_none());
        assert_eq!(leading_empty_lines(&ka), 5);
        ka.extend_from_slice(msg);
        let (m, n) = parse_stream(&ka).unwrap().unwrap();
        assert_eq!(n, 5 + msg.len());
        assert!(m.raw.starts_with(b"MESSAGE"));
        assert_eq!(m.raw.len(), msg.len());

        // A lone CR could become a keep-alive CRLF: wait.
        assert!(parse_stream(b"\r\n\r").unwrap().is_none());
    }

    #[test]
    fn stream_errors() {
        assert_eq!(
            parse_stream(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n").unwrap_err(),
            ParseError::ContentLength
        );
        // A bad start line is reported before the head is complete.
        assert!(matches!(
            parse_stream(b"HELLO WORLD\r\nVia"),
            Err(ParseError::StartLine(_))
        ));
        assert!(matches!(
            parse_stream(b"OPTIONS sip:a SIP/2.0\r\nbroken\r\n"),
            Err(ParseError::Header { .. })
        ));
        assert_eq!(
            parse_stream(b"OPTIONS sip:a SIP/2.0\r\nl: x\r\n\r\n").unwrap_err(),
            ParseError::ContentLength
        );
    }

    #[test]
    fn stream_head_frames_without_collecting() {
        let head = b"MESSAGE sip:a SIP/2.0\r\nl: 3\r\nContent-Length:\r\n 3\r\n\r\n";
        let mut buf = head.to_vec();
        buf.extend_from_slice(b"abc and more");
        assert_eq!(
            stream_head(&buf),
            Ok(Some(StreamHead {
                head_len: head.len(),
                content_length: Some(3)
            }))
        );
        // Absent is not an error here; the caller decides.
        assert_eq!(
            stream_head(b"SIP/2.0 200 OK\nCall-ID: x\n\n"),
            Ok(Some(StreamHead {
                head_len: 27,
                content_length: None
            }))
        );
        for cut in 0..head.len() {
            assert_eq!(stream_head(&head[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            stream_head(b"MESSAGE sip:a SIP/2.0\r\nl: 3\r\nl: 4\r\n\r\n"),
            Err(ParseError::ContentLength)
        );
        assert!(matches!(
            stream_head(b"HELLO\r\n"),
            Err(ParseError::StartLine(_))
        ));
    }

    #[test]
    fn unfold_bytes_keeps_non_utf8() {
        let mut out = Vec::new();
        unfold_into(b"a\xff \r\n\t b\n c", &mut out);
        assert_eq!(out, b"a\xff b c");
        out.clear();
        unfold_into(b"", &mut out);
        assert!(out.is_empty());
    }

    /// Tiny xorshift64 so the property test is reproducible without a dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Touches everything a caller might touch; only absence of panics matters.
    fn exercise(m: &Message<'_>) {
        use crate::sip::uri::SipUri;
        let _ = (
            m.call_id(),
            m.cseq(),
            m.top_via(),
            m.from(),
            m.to(),
            m.contact(),
        );
        let _ = (
            m.record_route(),
            m.route(),
            m.content_type(),
            m.content_length(),
        );
        let _ = (m.method(), m.status(), m.request_uri(), m.top_via_str());
        for h in &m.headers {
            let v = h.value();
            let _ = (h.value_str(), h.is("via"), h.is("x-foo"), h.is("a"));
            for part in split_comma(&v) {
                let _ = Via::parse(part).map(|via| via.sent_by(part));
                let _ = CSeq::parse(part);
                if let Some(na) = NameAddr::parse(part) {
                    let _ = (na.tag(), na.param("expires"));
                    let _ = SipUri::parse(na.uri).map(|u| (u.param("lr"), u.is_loose_route()));
                }
                let _ = SipUri::parse(part);
            }
        }
        if m.is_request() {
            let mut out = Vec::new();
            crate::sip::build::cancel(m, &mut out);
            crate::sip::build::non2xx_ack(m, m, &mut out);
            // Whatever we build from a parseable request must parse again.
            let mut ack = Vec::new();
            crate::sip::build::non2xx_ack(m, m, &mut ack);
            assert!(parse(&ack).is_ok(), "{:?}", String::from_utf8_lossy(&ack));
        }
    }

    fn check(input: &[u8]) {
        use crate::sip::validate::{Malformed, Rejection, check_request, write_rejection};
        let rejection = match parse(input) {
            Ok(m) => {
                exercise(&m);
                check_request(&m).err()
            }
            Err(e) => {
                let _ = Malformed::of(&e, input);
                Some(Rejection::of_parse_error(&e, input))
            }
        };
        // The answer to whatever we refuse must itself parse.
        if let (Some(rej), Some(req)) = (rejection, salvage_request(input)) {
            exercise(&req);
            let mut out = Vec::new();
            if write_rejection(&req, &rej, "t", &mut out) {
                assert!(parse(&out).is_ok(), "{:?}", String::from_utf8_lossy(&out));
            }
        }
        let mut rest = input;
        while let Ok(Some((m, n))) = parse_stream(rest) {
            exercise(&m);
            assert!(n > 0 && n <= rest.len());
            rest = &rest[n..];
        }
    }

    #[test]
    fn no_panic_on_prefixes_and_mutations() {
        let seeds: [&[u8]; 4] = [
            INVITE.as_bytes(),
            b"SIP/2.0 407 Proxy Auth\nv: SIP/2.0/UDP [::1]:5;branch=z;rport=1, SIP/2.0/TCP h\n\
f: \"a\\\"b, <c>\" <sip:a@[::1]>;tag=x\nt: sip:b@h;tag=y\ni: c\nCSeq: 1 INVITE\n\
Record-Route: <sip:p;lr>,<sip:q;lr>\nl: 2\n\nok",
            b"\r\n\r\nBYE sip:+1;x=y@h:1;lr?a=b SIP/2.0\r\nSubject: a\r\n b\r\n\tc\r\nm: *\r\n\
Route: <sip:r1;lr>\r\nRoute: \"q\" <sips:r2>\r\nContent-Length: 0\r\n\r\n",
            b"OPTIONS tel:+1 SIP/2.0\r\nVia: SIP/2.0/UDP h;received=\"x\";branch=\"\r\nTo: <>\r\n\r\n",
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let interesting = b"\r\n :;,<>\"\\@[]?=/0123456789\xff\t";
        for seed in seeds {
            for cut in 0..=seed.len() {
                check(&seed[..cut]);
            }
            for _ in 0..3000 {
                let mut m = seed.to_vec();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(m.len() + 1);
                    match rng.below(4) {
                        0 if i < m.len() => m[i] = rng.next() as u8,
                        1 if i < m.len() => m[i] = interesting[rng.below(interesting.len())],
                        2 => m.insert(i, interesting[rng.below(interesting.len())]),
                        _ if i < m.len() => {
                            m.remove(i);
                        }
                        _ => {}
                    }
                }
                check(&m);
            }
        }
    }
}

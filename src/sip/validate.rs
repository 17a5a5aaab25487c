//! What is wrong with a message we cannot use, and the answer RFC 3261 asks for.
//!
//! Two kinds of trouble reach a server: bytes that do not parse (classified by
//! [`Malformed::of`]) and requests that parse but break a rule a server must
//! check before acting on them ([`check_request`]: version, Request-URI scheme,
//! mandatory and single-value headers, CSeq, control bytes, UTF-8). A request
//! is answered with a [`Rejection`] — 400 with a `Warning:` saying what was
//! wrong (§21.4.1 asks that the problem be named), 505 for another SIP version
//! (§21.5.6), 416 for a Request-URI scheme we do not serve (§8.2.2.1) — when a
//! response can be formed: it has a usable top
//! Via to route the response by (§18.2.2) and is not an ACK, which is never
//! answered (§17.2.1). Anything else is dropped (§16.3 and §18.3: a response
//! that cannot be parsed is discarded, and so is what is not a message at all).
//!
//! Sans-IO: a message in, a cause and response bytes out.

use super::header::{CSeq, HeaderName, NameAddr};
use super::message::{Message, ParseError, StartLine};

/// Why a message was counted as unparseable. The names are the keys of
/// `messages.unparseable_by_cause` in the JSON report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Malformed {
    /// Nothing but blank lines (a lone CRLF keep-alive, an empty datagram).
    Empty,
    /// Not text at all: control bytes or bytes no method has where the start
    /// line should be (a TLS handshake or a random payload on the SIP port).
    Garbage,
    /// A start line that is no request or status line, another SIP version, or
    /// a Request-URI we cannot serve.
    StartLine,
    /// A header line without a name and colon, or a header value that breaks
    /// the rules (control bytes, invalid UTF-8, a malformed From/To/CSeq/Via,
    /// a single-value header twice).
    Header,
    /// A request without one of Via, From, To, Call-ID, CSeq (or a message
    /// without a Call-ID).
    MissingHeader,
    /// Content-Length not a number, two different ones, or more than the body
    /// (RFC 3261 §18.3).
    ContentLength,
    /// The head ends before its empty line.
    Truncated,
    /// Larger than we take (a stream message over `--max-message-size`).
    Oversize,
}

impl Malformed {
    pub const ALL: [Malformed; 8] = [
        Malformed::Empty,
        Malformed::Garbage,
        Malformed::StartLine,
        Malformed::Header,
        Malformed::MissingHeader,
        Malformed::ContentLength,
        Malformed::Truncated,
        Malformed::Oversize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Empty => "empty",
            Malformed::Garbage => "garbage",
            Malformed::StartLine => "start_line",
            Malformed::Header => "header",
            Malformed::MissingHeader => "missing_header",
            Malformed::ContentLength => "content_length",
            Malformed::Truncated => "truncated",
            Malformed::Oversize => "oversize",
        }
    }

    /// The cause of a parse error of `data`.
    pub fn of(e: &ParseError, data: &[u8]) -> Malformed {
        match e {
            ParseError::Empty => Malformed::Empty,
            ParseError::StartLine(_) if looks_binary(data) => Malformed::Garbage,
            ParseError::StartLine(_) => Malformed::StartLine,
            ParseError::Header { .. } => Malformed::Header,
            ParseError::Unterminated => Malformed::Truncated,
            ParseError::ContentLength | ParseError::Truncated { .. } => Malformed::ContentLength,
        }
    }
}

/// Does the start line hold bytes no text start line has: a control byte, or a
/// byte above ASCII in its first word (a method or `SIP/2.0`)? Only the first
/// 256 bytes are looked at.
fn looks_binary(data: &[u8]) -> bool {
    let from = super::message::leading_empty_lines(data);
    let head = &data[from..data.len().min(from + 256)];
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let first_word_end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    line.iter().any(|&b| is_control(b)) || line[..first_word_end].iter().any(|&b| b >= 0x80)
}

/// Control bytes no SIP head may hold (tab, CR and LF are line structure).
fn is_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f
}

/// A request refused, and how: what the response says and what is counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub cause: Malformed,
    pub code: u16,
    pub reason: &'static str,
    /// What was wrong, for the `Warning:` header.
    pub warning: String,
}

impl Rejection {
    fn bad(cause: Malformed, warning: impl Into<String>) -> Rejection {
        Rejection {
            cause,
            code: 400,
            reason: "Bad Request",
            warning: warning.into(),
        }
    }

    /// A request without a Call-ID (or one [`check_request`] passed that still
    /// has no readable Call-ID, e.g. folded).
    pub fn of_missing_call_id() -> Rejection {
        Rejection::bad(Malformed::MissingHeader, "missing Call-ID header")
    }

    /// The 400 for a request [`super::message::salvage_request`] read after
    /// `parse` refused it with `e`.
    pub fn of_parse_error(e: &ParseError, data: &[u8]) -> Rejection {
        Rejection::bad(Malformed::of(e, data), e.to_string())
    }
}

/// Headers a request must carry (RFC 3261 §8.1.1; Max-Forwards, also listed
/// there, is tolerated missing as proxies do, §16.3).
const MANDATORY: [HeaderName; 5] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
];

/// Headers that may appear once only (RFC 3261 §7.3.1: only headers defined as
/// comma lists may repeat). Content-Length is the parser's: two different ones
/// already fail the parse.
const SINGLE: [HeaderName; 6] = [
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentType,
];

/// The checks a server makes on a request before acting on it (one pass over
/// the headers; cheap enough for every new call). The first problem found is
/// returned.
pub fn check_request(msg: &Message<'_>) -> Result<(), Rejection> {
    let StartLine::Request {
        method,
        uri,
        version,
    } = msg.start
    else {
        return Ok(());
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Rejection {
            cause: Malformed::StartLine,
            code: 505,
            reason: "Version Not Supported",
            warning: format!("SIP version {version} is not supported"),
        });
    }
    check_request_uri(uri)?;
    if let Some(b) = uri.bytes().find(|&b| is_control(b)) {
        return Err(Rejection::bad(
            Malformed::StartLine,
            format!("control byte {b:#04x} in the Request-URI"),
        ));
    }
    // One check of the head spares each header its own UTF-8 check.
    let head = &msg.raw[..msg.raw.len() - msg.body.len()];
    let ascii = head.is_ascii();
    let mut once = [false; SINGLE.len()];
    let mut present = [false; MANDATORY.len()];
    for h in &msg.headers {
        let what = || display_name(h.kind, h.name);
        if let Some(b) = h.raw.iter().copied().find(|&b| is_control(b)) {
            return Err(Rejection::bad(
                Malformed::Header,
                format!("control byte {b:#04x} in the {} header", what()),
            ));
        }
        if !ascii && std::str::from_utf8(h.raw).is_err() {
            return Err(Rejection::bad(
                Malformed::Header,
                format!("the {} header is not valid UTF-8", what()),
            ));
        }
        if let Some(i) = SINGLE.iter().position(|k| *k == h.kind) {
            if once[i] {
                return Err(Rejection::bad(
                    Malformed::Header,
                    format!("more than one {} header", what()),
                ));
            }
            once[i] = true;
        }
        if let Some(i) = MANDATORY.iter().position(|k| *k == h.kind) {
            present[i] = true;
        }
    }
    if let Some(i) = present.iter().position(|p| !p) {
        return Err(Rejection::bad(
            Malformed::MissingHeader,
            format!("missing {} header", MANDATORY[i].as_str()),
        ));
    }
    if msg.top_via().is_none() {
        return Err(Rejection::bad(
            Malformed::Header,
            "the top Via is malformed",
        ));
    }
    for (kind, value) in [
        (HeaderName::From, msg.header(HeaderName::From)),
        (HeaderName::To, msg.header(HeaderName::To)),
    ] {
        let ok = value
            .and_then(|h| std::str::from_utf8(h.raw_value).ok())
            .and_then(NameAddr::parse)
            .is_some();
        if !ok {
            return Err(Rejection::bad(
                Malformed::Header,
                format!("the {} header is malformed", kind.as_str()),
            ));
        }
    }
    let call_id = msg.call_id().unwrap_or("");
    if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Rejection::bad(
            Malformed::Header,
            "the Call-ID is malformed",
        ));
    }
    check_cseq(msg, method)?;
    if let Some(mf) = msg.header(HeaderName::MaxForwards) {
        let digits = !mf.raw_value.is_empty() && mf.raw_value.iter().all(u8::is_ascii_digit);
        if !digits {
            return Err(Rejection::bad(
                Malformed::Header,
                "Max-Forwards is not a number",
            ));
        }
    }
    Ok(())
}

/// The Request-URI's scheme must be one we serve (sip, sips, tel; RFC 3261
/// §8.2.2.1: 416 otherwise) and a SIP URI must parse.
fn check_request_uri(uri: &str) -> Result<(), Rejection> {
    let Some((scheme, _)) = uri.split_once(':') else {
        return Err(Rejection::bad(
            Malformed::StartLine,
            "the Request-URI has no scheme",
        ));
    };
    let sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
    if !sip && !scheme.eq_ignore_ascii_case("tel") {
        return Err(Rejection {
            cause: Malformed::StartLine,
            code: 416,
            reason: "Unsupported URI Scheme",
            warning: format!(
                "Request-URI scheme `{}` is not supported",
                printable(scheme)
            ),
        });
    }
    if sip && super::uri::SipUri::parse(uri).is_none() {
        return Err(Rejection::bad(
            Malformed::StartLine,
            "the Request-URI is malformed",
        ));
    }
    Ok(())
}

/// CSeq: a number below 2**31 and the request's own method (§8.1.1.5).
fn check_cseq(msg: &Message<'_>, method: &str) -> Result<(), Rejection> {
    let raw = msg
        .header(HeaderName::CSeq)
        .and_then(|h| std::str::from_utf8(h.raw_value).ok())
        .unwrap_or("");
    let Some(cseq) = CSeq::parse(raw) else {
        return Err(Rejection::bad(
            Malformed::Header,
            "the CSeq is not a number and a method",
        ));
    };
    if cseq.seq >= 1 << 31 {
        return Err(Rejection::bad(
            Malformed::Header,
            "the CSeq number is not below 2**31",
        ));
    }
    if cseq.method != method {
        return Err(Rejection::bad(
            Malformed::Header,
            format!(
                "the CSeq method {} is not the request's {method}",
                cseq.method
            ),
        ));
    }
    Ok(())
}

/// A header's canonical name, or its name as written for headers we do not know.
fn display_name(kind: HeaderName, written: &str) -> &str {
    match kind {
        HeaderName::Other => written,
        k => k.as_str(),
    }
}

/// `s` with anything but printable ASCII replaced by `?` (for warning text).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Writes the response for `req` refused with `rej` into `out`: the status
/// line, the request's Via headers, From, To (with `to_tag` added when it has
/// none), Call-ID and CSeq as received (whichever it has, the first of each),
/// a `Warning: 399 sipwright "…"` and no body. False, with nothing written,
/// when no response may be sent: an ACK, a response, or no usable top Via.
pub fn write_rejection(
    req: &Message<'_>,
    rej: &Rejection,
    to_tag: &str,
    out: &mut Vec<u8>,
) -> bool {
    let Some(method) = req.method() else {
        return false;
    };
    if method == "ACK" || req.top_via().is_none() {
        return false;
    }
    out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", rej.code, rej.reason).as_bytes());
    for h in req.headers_of(HeaderName::Via) {
        out.extend_from_slice(h.raw);
        out.extend_from_slice(b"\r\n");
    }
    for kind in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        let Some(h) = req.header(kind) else { continue };
        out.extend_from_slice(h.raw);
        if kind == HeaderName::To
            && let Some(to) = req.to()
            && to.tag().is_none()
        {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(to_tag.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Warning: 399 sipwright \"");
    // A quoted-string: quotes and backslashes escaped, nothing unprintable.
    for c in printable(&rej.warning).chars() {
        if c == '"' || c == '\\' {
            out.push(b'\\');
        }
        out.push(c as u8);
    }
    out.extend_from_slice(b"\"\r\nServer: sipwright\r\nContent-Length: 0\r\n\r\n");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, salvage_request};

    const GOOD: &str = "INVITE sip:bob@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@192.0.2.2>;tag=a1\r\n\
To: <sip:bob@192.0.2.1>\r\n\
Call-ID: c1@192.0.2.2\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

    fn with(from: &str, to: &str) -> Vec<u8> {
        GOOD.replacen(from, to, 1).into_bytes()
    }

    fn rejected(data: &[u8]) -> Rejection {
        let m = parse(data).unwrap_or_else(|e| panic!("{e}"));
        check_request(&m).expect_err(&String::from_utf8_lossy(data))
    }

    #[test]
    fn a_good_request_and_any_response_pass() {
        assert_eq!(check_request(&parse(GOOD.as_bytes()).unwrap()), Ok(()));
        // Compact forms, tel: URIs, an escaped user, odd spacing.
        let odd = "OPTIONS tel:+1-555-0100 SIP/2.0\r\nv : SIP / 2.0 / UDP h;branch=z9hG4bK2\r\n\
f: sip:%61@h;tag=1\r\nt: <urn:x-odd:thing>\r\ni: x\r\nCSeq:   2147483647   OPTIONS\r\n\r\n";
        assert_eq!(check_request(&parse(odd.as_bytes()).unwrap()), Ok(()));
        let resp = b"SIP/2.0 200 OK\r\n\r\n";
        assert_eq!(check_request(&parse(resp).unwrap()), Ok(()));
    }

    #[test]
    fn each_rule() {
        let cases: [(&str, &str, u16, Malformed, &str); 16] = [
            (
                "SIP/2.0\r\n",
                "SIP/3.0\r\n",
                505,
                Malformed::StartLine,
                "SIP/3.0",
            ),
            (
                "sip:bob@192.0.2.1",
                "nope:bob",
                416,
                Malformed::StartLine,
                "`nope`",
            ),
            (
                "sip:bob@192.0.2.1",
                "sip:",
                400,
                Malformed::StartLine,
                "malformed",
            ),
            (
                "sip:bob@192.0.2.1",
                "bob",
                400,
                Malformed::StartLine,
                "no scheme",
            ),
            (
                "Call-ID: c1@192.0.2.2\r\n",
                "",
                400,
                Malformed::MissingHeader,
                "missing Call-ID",
            ),
            (
                "CSeq: 1 INVITE\r\n",
                "",
                400,
                Malformed::MissingHeader,
                "missing CSeq",
            ),
            (
                "To: <sip:bob@192.0.2.1>\r\n",
                "",
                400,
                Malformed::MissingHeader,
                "missing To",
            ),
            (
                "CSeq: 1 INVITE",
                "CSeq: -1 INVITE",
                400,
                Malformed::Header,
                "CSeq",
            ),
            (
                "CSeq: 1 INVITE",
                "CSeq: 2147483648 INVITE",
                400,
                Malformed::Header,
                "2**31",
            ),
            (
                "CSeq: 1 INVITE",
                "CSeq: 1 BYE",
                400,
                Malformed::Header,
                "BYE is not",
            ),
            (
                "Max-Forwards: 70",
                "Max-Forwards: many",
                400,
                Malformed::Header,
                "Max-Forwards",
            ),
            (
                "Max-Forwards: 70\r\n",
                "Max-Forwards: 70\r\nMax-Forwards: 69\r\n",
                400,
                Malformed::Header,
                "more than one Max-Forwards",
            ),
            (
                "Call-ID: c1",
                "i: c2\r\nCall-ID: c1",
                400,
                Malformed::Header,
                "more than one Call-ID",
            ),
            (
                "From: \"Alice\" <sip:alice@192.0.2.2>",
                "From: \"Alice <sip:alice@192.0.2.2>",
                400,
                Malformed::Header,
                "From header is malformed",
            ),
            (
                "Call-ID: c1@192.0.2.2",
                "Call-ID: c1 @192.0.2.2",
                400,
                Malformed::Header,
                "Call-ID",
            ),
            (
                "Via: SIP/2.0/UDP 192.0.2.2:5060",
                "Via: SIP/2.0/UDP",
                400,
                Malformed::Header,
                "top Via",
            ),
        ];
        for (from, to, code, cause, says) in cases {
            let r = rejected(&with(from, to));
            assert_eq!((r.code, r.cause), (code, cause), "{to}: {r:?}");
            assert!(r.warning.contains(says), "{to}: {}", r.warning);
        }
    }

    #[test]
    fn control_bytes_and_invalid_utf8() {
        let r = rejected(&with(
            "Max-Forwards: 70",
            "Subject: a\0b\r\nMax-Forwards: 70",
        ));
        assert_eq!(r.warning, "control byte 0x00 in the Subject header");
        let mut bad = GOOD.as_bytes().to_vec();
        let at = GOOD.find("Alice").unwrap();
        bad[at] = 0xff;
        let r = rejected(&bad);
        assert_eq!(r.warning, "the From header is not valid UTF-8");
        // Valid UTF-8 is fine.
        let m = with("\"Alice\"", "\"Zoë\"");
        assert_eq!(check_request(&parse(&m).unwrap()), Ok(()));
    }

    #[test]
    fn causes_of_parse_errors() {
        let of = |d: &[u8]| Malformed::of(&parse(d).unwrap_err(), d);
        assert_eq!(of(b""), Malformed::Empty);
        assert_eq!(of(b"\r\n"), Malformed::Empty);
        assert_eq!(
            of(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            Malformed::Garbage
        );
        assert_eq!(
            of(b"\xc3\x9cNVITE sip:a SIP/2.0\r\n\r\n"),
            Malformed::Garbage
        );
        assert_eq!(
            of(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Malformed::StartLine
        );
        assert_eq!(
            of(b"OPTIONS sip:a SIP/2.0\r\nNo colon\r\n\r\n"),
            Malformed::Header
        );
        assert_eq!(
            of(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n"),
            Malformed::Truncated
        );
        assert_eq!(
            of(b"OPTIONS sip:a SIP/2.0\r\nl: 9\r\n\r\nab"),
            Malformed::ContentLength
        );
        assert_eq!(
            of(b"OPTIONS sip:a SIP/2.0\r\nl: -9\r\n\r\nab"),
            Malformed::ContentLength
        );
    }

    #[test]
    fn the_400_copies_what_identifies_the_transaction() {
        let data = with("Content-Length: 0", "Content-Length: 40");
        let e = parse(&data).unwrap_err();
        let req = salvage_request(&data).expect("a complete head");
        let rej = Rejection::of_parse_error(&e, &data);
        assert_eq!(rej.cause, Malformed::ContentLength);
        let mut out = Vec::new();
        assert!(write_rejection(&req, &rej, "t9", &mut out));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "SIP/2.0 400 Bad Request\r\n\
Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK-1;rport\r\n\
From: \"Alice\" <sip:alice@192.0.2.2>;tag=a1\r\n\
To: <sip:bob@192.0.2.1>;tag=t9\r\n\
Call-ID: c1@192.0.2.2\r\n\
CSeq: 1 INVITE\r\n\
Warning: 399 sipwright \"body shorter than Content-Length (0 < 40)\"\r\n\
Server: sipwright\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn no_answer_without_via_or_to_an_ack() {
        let rej = Rejection::bad(Malformed::Header, "x");
        let mut out = Vec::new();
        let no_via = with(
            "Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK-1;rport\r\n",
            "",
        );
        assert!(!write_rejection(
            &parse(&no_via).unwrap(),
            &rej,
            "t",
            &mut out
        ));
        let ack = with("INVITE sip", "ACK sip");
        assert!(!write_rejection(&parse(&ack).unwrap(), &rej, "t", &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn warning_text_is_a_safe_quoted_string() {
        let req = parse(GOOD.as_bytes()).unwrap();
        let rej = Rejection::bad(Malformed::Header, "a \"quoted\" \\ é\r\n");
        let mut out = Vec::new();
        assert!(write_rejection(&req, &rej, "t", &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Warning: 399 sipwright \"a \\\"quoted\\\" \\\\ ???\"\r\n"),
            "{text}"
        );
    }
}

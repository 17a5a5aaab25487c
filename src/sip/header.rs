//! Header names (case-insensitive, compact forms) and typed header values.
//!
//! The typed parsers take values exactly as they appear in a [`Header`]'s
//! `raw_value`, which may still contain folding. Because a continuation line
//! always starts with SP/HT, any CR or LF inside a value is part of linear
//! whitespace, so every parser here treats CR and LF like SP. That lets the
//! accessors on `Message` borrow even from folded headers.
//!
//! [`Header`]: super::message::Header

/// Header names the engine cares about; everything else is `Other`.
/// Parsing is case-insensitive and maps compact forms (RFC 3261 §7.3.3 and
/// extensions: i f t v m l c k s e o u r b x) to the full name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    RecordRoute,
    Route,
    MaxForwards,
    Supported,
    Subject,
    Event,
    AllowEvents,
    ReferTo,
    ReferredBy,
    SessionExpires,
    Other,
}

impl HeaderName {
    /// Case-insensitive; accepts compact forms.
    pub fn parse(name: &str) -> HeaderName {
        Self::parse_bytes(name.as_bytes())
    }

    /// Same as [`HeaderName::parse`] on raw bytes (the parser's hot path, which
    /// has not converted the name to `str` yet).
    pub fn parse_bytes(name: &[u8]) -> HeaderName {
        use HeaderName::*;
        if let [c] = name {
            return match c.to_ascii_lowercase() {
                b'i' => CallId,
                b'f' => From,
                b't' => To,
                b'v' => Via,
                b'm' => Contact,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'k' => Supported,
                b's' => Subject,
                b'e' => ContentEncoding,
                b'o' => Event,
                b'u' => AllowEvents,
                b'r' => ReferTo,
                b'b' => ReferredBy,
                b'x' => SessionExpires,
                _ => Other,
            };
        }
        // A byte loop, not `copy_from_slice`: a variable-length copy is a call
        // to memcpy, which costs more than the compare.
        let v = name
            .iter()
            .take(16)
            .rev()
            .fold(0u128, |v, &b| (v << 8) | u128::from(b));
        Self::lookup(name.len(), v)
    }

    /// [`HeaderName::parse_bytes`] of `buf[start..start + len]`, reading the name
    /// with one 16-byte load when `buf` extends that far (a header line almost
    /// always does).
    pub(crate) fn parse_in(buf: &[u8], start: usize, len: usize) -> HeaderName {
        match buf.get(start..start + 16) {
            Some(sixteen) if len > 1 && len <= 16 => {
                let mut word = [0u8; 16];
                word.copy_from_slice(sixteen);
                let v = u128::from_le_bytes(word) & (u128::MAX >> (128 - 8 * len));
                Self::lookup(len, v)
            }
            _ => Self::parse_bytes(buf.get(start..start + len).unwrap_or(&[])),
        }
    }

    /// The variant whose full name has `len` bytes and packs to `v`, case folded.
    /// Dispatching on length first leaves one to four candidates; each is one
    /// 128-bit compare with ASCII case folded at the candidate's letter positions
    /// (several hundred thousand headers a second go through here).
    fn lookup(len: usize, v: u128) -> HeaderName {
        KNOWN_BY_LEN
            .get(len)
            .and_then(|candidates| candidates.iter().find(|k| v | k.case_bits == k.lower))
            .map_or(HeaderName::Other, |k| k.kind)
    }

    /// Canonical full name, e.g. "Call-ID". `Other` returns "".
    pub const fn as_str(self) -> &'static str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            ContentEncoding => "Content-Encoding",
            RecordRoute => "Record-Route",
            Route => "Route",
            MaxForwards => "Max-Forwards",
            Supported => "Supported",
            Subject => "Subject",
            Event => "Event",
            AllowEvents => "Allow-Events",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            SessionExpires => "Session-Expires",
            Other => "",
        }
    }
}

/// A full header name prepared for [`HeaderName::parse_bytes`]: the lower-case
/// name packed little-endian, and 0x20 at its letter positions. OR-ing 0x20
/// folds only `A`–`Z` onto `a`–`z` there; other positions compare exactly.
struct KnownName {
    kind: HeaderName,
    lower: u128,
    case_bits: u128,
}

const fn known(kind: HeaderName) -> KnownName {
    let name = kind.as_str().as_bytes();
    let mut lower = 0u128;
    let mut case_bits = 0u128;
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        lower |= (b.to_ascii_lowercase() as u128) << (8 * i);
        if b.is_ascii_alphabetic() {
            case_bits |= 0x20 << (8 * i);
        }
        i += 1;
    }
    KnownName {
        kind,
        lower,
        case_bits,
    }
}

/// Full names of the `HeaderName` variants by length (all fit in 16 bytes).
static KNOWN_BY_LEN: [&[KnownName]; 17] = {
    use HeaderName::*;
    [
        &[],
        &[],
        &[known(To)],
        &[known(Via)],
        &[known(From), known(CSeq)],
        &[known(Route), known(Event)],
        &[],
        &[known(CallId), known(Contact), known(Subject)],
        &[known(ReferTo)],
        &[known(Supported)],
        &[],
        &[known(ReferredBy)],
        &[
            known(RecordRoute),
            known(ContentType),
            known(MaxForwards),
            known(AllowEvents),
        ],
        &[],
        &[known(ContentLength)],
        &[known(SessionExpires)],
        &[known(ContentEncoding)],
    ]
};

/// Full name for registered compact forms whose header has no `HeaderName`
/// variant, so that `Header::is("a")` still finds `Accept-Contact`.
pub(crate) fn expand_other_compact(name: &str) -> &str {
    match name.as_bytes() {
        [c] => match c.to_ascii_lowercase() {
            b'a' => "Accept-Contact",
            b'd' => "Request-Disposition",
            b'j' => "Reject-Contact",
            b'n' => "Identity-Info",
            b'y' => "Identity",
            _ => name,
        },
        _ => name,
    }
}

/// RFC 3261 `token` characters, as a table: every header name and method
/// goes through this, and the branchy form showed up in profiles.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_byte(b))
}

/// Linear whitespace as it can appear inside a (possibly folded) value.
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Position of the ASCII byte `b` in `s`. For the short strings of header
/// values a plain loop beats `str::find`'s general searcher by a wide margin.
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

pub(crate) fn trim_lws(s: &str) -> &str {
    let t = trim_lws_bytes(s.as_bytes());
    // Only ASCII bytes were trimmed, so both ends sit on character boundaries.
    let start = t.as_ptr() as usize - s.as_ptr() as usize;
    s.get(start..start + t.len()).unwrap_or("")
}

pub(crate) fn trim_lws_bytes(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_lws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_lws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Index of the closing quote of a quoted string whose opening quote is at
/// `open`, honouring backslash escapes. `None` when unterminated.
fn closing_quote(s: &[u8], open: usize) -> Option<usize> {
    let mut i = open.checked_add(1)?;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Iterates over `;`-separated parameters as (name, value) pairs; a flag has
/// value `""`. Quoted values keep their content without the quotes (escapes
/// are left as written since we never allocate). With `quotes == false` (URI
/// parameters, where `"` has no meaning) a `"` is an ordinary character.
pub(crate) struct Params<'a> {
    s: &'a str,
    pos: usize,
    quotes: bool,
}

impl<'a> Params<'a> {
    pub(crate) fn new(s: &'a str, quotes: bool) -> Self {
        Params { s, pos: 0, quotes }
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.s.as_bytes();
        loop {
            if self.pos >= b.len() {
                return None;
            }
            let start = self.pos;
            let end = if self.quotes {
                let mut i = start;
                while i < b.len() && b[i] != b';' {
                    if b[i] == b'"' {
                        // An unterminated quote swallows the rest: there is no
                        // sensible place to resume.
                        i = closing_quote(b, i).map_or(b.len(), |q| q + 1);
                    } else {
                        i += 1;
                    }
                }
                i.min(b.len())
            } else {
                b[start..]
                    .iter()
                    .position(|&c| c == b';')
                    .map_or(b.len(), |k| start + k)
            };
            self.pos = end + 1;
            // Bytes throughout (every header parameter of every message goes
            // through here); back to `str` once at the end.
            let piece = trim_lws_bytes(&b[start..end]);
            if piece.is_empty() {
                continue;
            }
            let (name, value) = match piece.iter().position(|&c| c == b'=') {
                Some(eq) => (
                    trim_lws_bytes(&piece[..eq]),
                    trim_lws_bytes(&piece[eq + 1..]),
                ),
                None => (piece, &piece[piece.len()..]),
            };
            let value = match value {
                [b'"', inner @ .., b'"'] if self.quotes => inner,
                v => v,
            };
            return Some((ascii_bounded(name), ascii_bounded(value)));
        }
    }
}

/// A piece of a `str` cut only next to ASCII bytes (separators, blanks,
/// quotes) or at its ends, back as `str`.
fn ascii_bounded(piece: &[u8]) -> &str {
    // SAFETY: the callers cut a valid `str` only before or after ASCII bytes,
    // which are never inside a multi-byte character, so the piece is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(piece) }
}

pub(crate) fn find_param<'a>(params: &'a str, name: &str, quotes: bool) -> Option<&'a str> {
    Params::new(params, quotes)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Parses a port number; rejects empty, signs, junk and values above 65535.
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() {
        return None;
    }
    // Digits only (no sign, unlike `str::parse`), at most 65535; leading zeros
    // are allowed, as `parse` allowed them.
    let mut n: u32 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
        if n > u32::from(u16::MAX) {
            return None;
        }
    }
    Some(n as u16)
}

/// `Via: SIP/2.0/UDP host:port;branch=..;rport;received=..` (one value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// "UDP", "TCP", "WS", ... as written.
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    pub branch: Option<&'a str>,
    /// `None`: no rport param; `Some(None)`: bare `rport`; `Some(Some(p))`: `rport=p`.
    pub rport: Option<Option<u16>>,
    pub received: Option<&'a str>,
    /// Raw parameter text after the sent-by (starting at the first ';', may be empty).
    pub params: &'a str,
}

/// Byte cursor over a `str` that only ever stops on ASCII bytes, so every
/// slice it hands out is on a char boundary.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn skip_lws(&mut self) {
        while self.peek().is_some_and(is_lws) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // Only ASCII bytes satisfy the predicates used with this cursor.
        self.s.get(start..self.pos).unwrap_or("")
    }
    fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token_byte);
        (!t.is_empty()).then_some(t)
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }
}

impl<'a> Via<'a> {
    /// Parse one Via value (not a comma list).
    pub fn parse(value: &'a str) -> Option<Via<'a>> {
        let mut c = Cursor::new(trim_lws(value));
        // sent-protocol: name SLASH version SLASH transport, SLASH allowing LWS.
        c.token()?;
        c.skip_lws();
        if !c.eat(b'/') {
            return None;
        }
        c.skip_lws();
        c.token()?;
        c.skip_lws();
        if !c.eat(b'/') {
            return None;
        }
        c.skip_lws();
        let transport = c.token()?;
        c.skip_lws();
        let (host, port) = host_port(&mut c)?;
        c.skip_lws();
        let params = c.rest();
        if !params.is_empty() && !params.starts_with(';') {
            return None;
        }
        let mut via = Via {
            transport,
            host,
            port,
            branch: None,
            rport: None,
            received: None,
            params,
        };
        // One pass over the params; the first occurrence of each wins.
        for (name, v) in Params::new(params, true) {
            if name.eq_ignore_ascii_case("branch") {
                via.branch.get_or_insert(v);
            } else if name.eq_ignore_ascii_case("rport") {
                via.rport.get_or_insert(parse_port(v));
            } else if name.eq_ignore_ascii_case("received") {
                via.received.get_or_insert(v);
            }
        }
        Some(via)
    }

    /// The `branch` parameter of one Via value, as [`Via::parse`] would find
    /// it: the first `branch` among the parameters after the sent-by (which
    /// cannot contain `;`).
    pub fn branch_of(value: &'a str) -> Option<&'a str> {
        find_param(&value[find_byte(value, b';')?..], "branch", true)
    }

    /// The sent-by as written ("host", "host:port", "[v6]:port"), for
    /// transaction matching which compares it verbatim. `value` must be the
    /// string this `Via` was parsed from (otherwise the result is `None` or
    /// meaningless, never a panic).
    pub fn sent_by(&self, value: &'a str) -> Option<&'a str> {
        // Both fields borrow from `value`, so their offsets delimit the sent-by.
        let base = value.as_ptr() as usize;
        let h = (self.host.as_ptr() as usize).checked_sub(base)?;
        let p = (self.params.as_ptr() as usize).checked_sub(base)?;
        if h > p || p > value.len() {
            return None;
        }
        let start = if h > 0 && value.as_bytes()[h - 1] == b'[' {
            h - 1
        } else {
            h
        };
        Some(trim_lws(value.get(start..p)?))
    }
}

/// `host [":" port]` where host may be a bracketed IPv6 reference (returned
/// without the brackets). LWS is tolerated around the colon.
fn host_port<'a>(c: &mut Cursor<'a>) -> Option<(&'a str, Option<u16>)> {
    let host = if c.eat(b'[') {
        let h = c.take_while(|b| b.is_ascii_graphic() && b != b']');
        if !c.eat(b']') || h.is_empty() {
            return None;
        }
        h
    } else {
        let h = c.take_while(is_token_byte);
        if h.is_empty() {
            return None;
        }
        h
    };
    let save = c.pos;
    c.skip_lws();
    let port = if c.eat(b':') {
        c.skip_lws();
        Some(parse_port(c.take_while(|b| b.is_ascii_digit()))?)
    } else {
        c.pos = save;
        None
    };
    Some((host, port))
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route, Record-Route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name without quotes, if any.
    pub display: Option<&'a str>,
    /// The URI (inside `<>` when present).
    pub uri: &'a str,
    /// Header parameters after the URI (starting at ';', may be empty).
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    /// Quoted display names are returned without the quotes but with escapes
    /// (`\"`) as written, since unescaping would need an allocation.
    pub fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        let value = trim_lws(value);
        let b = value.as_bytes();
        let (display, after_display) = if b.first() == Some(&b'"') {
            let close = closing_quote(b, 0)?;
            (Some(value.get(1..close)?), close + 1)
        } else {
            (None, 0)
        };
        let rest = value.get(after_display..)?;
        let lt = if display.is_some() {
            // After a quoted display name only a `<uri>` may follow.
            let r = rest.trim_start_matches([' ', '\t', '\r', '\n']);
            if !r.starts_with('<') {
                return None;
            }
            Some(value.len() - r.len())
        } else {
            find_byte(value, b'<')
        };
        match lt {
            Some(lt) => {
                let display = match display {
                    Some(d) => Some(d),
                    None => {
                        let d = trim_lws(value.get(..lt)?);
                        (!d.is_empty()).then_some(d)
                    }
                };
                let after_lt = value.get(lt + 1..)?;
                let gt = find_byte(after_lt, b'>')?;
                let uri = trim_lws(after_lt.get(..gt)?);
                let params = trim_lws(after_lt.get(gt + 1..)?);
                if uri.is_empty() || (!params.is_empty() && !params.starts_with(';')) {
                    return None;
                }
                Some(NameAddr {
                    display,
                    uri,
                    params,
                })
            }
            None => {
                // addr-spec form: RFC 3261 §20.10 says any ';' here starts header
                // parameters, not URI parameters.
                let semi = find_byte(value, b';').unwrap_or(value.len());
                let uri = trim_lws(value.get(..semi)?);
                let params = value.get(semi..)?;
                if uri.is_empty() || uri.bytes().any(|c| is_lws(c) || c == b'>') {
                    return None;
                }
                Some(NameAddr {
                    display: None,
                    uri,
                    params,
                })
            }
        }
    }
    /// Value of header parameter `name` (case-insensitive); `Some("")` for a flag.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        find_param(self.params, name, true)
    }
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag")
    }
}

/// `CSeq: 1 INVITE`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    pub fn parse(value: &'a str) -> Option<CSeq<'a>> {
        let mut c = Cursor::new(trim_lws(value));
        let digits = c.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return None;
        }
        // u32 parse rejects overflow; RFC 3261 caps the value at 2**31 - 1 but
        // accepting the full u32 range costs nothing and is more lenient.
        let seq: u32 = digits.parse().ok()?;
        let before_ws = c.pos;
        c.skip_lws();
        if c.pos == before_ws {
            return None;
        }
        let method = c.token()?;
        if !c.rest().is_empty() {
            return None;
        }
        Some(CSeq { seq, method })
    }
}

/// Splits on top-level commas, yielding trimmed byte ranges. Commas inside a
/// quoted string (with backslash escapes) or inside `<...>` do not split.
/// Empty elements are skipped (RFC 3261 `#rule` allows null elements).
pub(crate) struct CommaRanges<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> CommaRanges<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        CommaRanges { s, pos: 0 }
    }
}

impl Iterator for CommaRanges<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let s = self.s;
        while self.pos < s.len() {
            let start = self.pos;
            let mut i = start;
            // Jump between the only bytes that matter (a Via or Contact value
            // is mostly plain text; most have no comma at all).
            while i < s.len() {
                let Some(k) = memchr::memchr3(b',', b'"', b'<', &s[i..]) else {
                    i = s.len();
                    break;
                };
                i += k;
                match s[i] {
                    b'"' => i = closing_quote(s, i).map_or(s.len(), |q| q + 1),
                    // Inside `<>` only the closing `>` matters.
                    b'<' => i = memchr::memchr(b'>', &s[i..]).map_or(s.len(), |g| i + g + 1),
                    _ => break,
                }
            }
            let end = i.min(s.len());
            self.pos = end + 1;
            let mut a = start;
            let mut z = end;
            while a < z && is_lws(s[a]) {
                a += 1;
            }
            while z > a && is_lws(s[z - 1]) {
                z -= 1;
            }
            if a < z {
                return Some((a, z));
            }
        }
        None
    }
}

/// Byte version of [`split_comma`], for values that are not valid UTF-8.
pub fn split_comma_bytes(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    CommaRanges::new(value).map(move |(a, z)| &value[a..z])
}

/// Split a header value on top-level commas (not inside quotes or `<>`), trimming whitespace.
pub fn split_comma(value: &str) -> impl Iterator<Item = &str> {
    // Ranges start and end next to ASCII bytes, so `get` never fails.
    CommaRanges::new(value.as_bytes()).filter_map(move |(a, z)| value.get(a..z))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_full_compact_and_case() {
        let cases = [
            ("Via", HeaderName::Via),
            ("v", HeaderName::Via),
            ("V", HeaderName::Via),
            ("VIA", HeaderName::Via),
            ("call-id", HeaderName::CallId),
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("e", HeaderName::ContentEncoding),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("f", HeaderName::From),
            ("s", HeaderName::Subject),
            ("k", HeaderName::Supported),
            ("t", HeaderName::To),
            ("o", HeaderName::Event),
            ("u", HeaderName::AllowEvents),
            ("r", HeaderName::ReferTo),
            ("b", HeaderName::ReferredBy),
            ("x", HeaderName::SessionExpires),
            ("cseq", HeaderName::CSeq),
            ("record-ROUTE", HeaderName::RecordRoute),
            ("Route", HeaderName::Route),
            ("max-forwards", HeaderName::MaxForwards),
            ("Content-Length", HeaderName::ContentLength),
            ("X-Custom", HeaderName::Other),
            ("z", HeaderName::Other),
            ("", HeaderName::Other),
            ("Vía", HeaderName::Other),
        ];
        for (s, k) in cases {
            assert_eq!(HeaderName::parse(s), k, "{s}");
        }
        use HeaderName::*;
        for k in [
            Via,
            From,
            To,
            CallId,
            CSeq,
            Contact,
            ContentLength,
            ContentType,
            ContentEncoding,
            RecordRoute,
            Route,
            MaxForwards,
            Supported,
            Subject,
            Event,
            AllowEvents,
            ReferTo,
            ReferredBy,
            SessionExpires,
        ] {
            assert_eq!(HeaderName::parse(k.as_str()), k);
            assert_eq!(HeaderName::parse(&k.as_str().to_ascii_uppercase()), k);
            // Every byte changed to anything but its other case misses (the
            // case folding must not confuse '-' with CR, '@' with '`', …).
            let name = k.as_str().as_bytes();
            for i in 0..name.len() {
                for b in 0..=255u8 {
                    let mut m = name.to_vec();
                    m[i] = b;
                    let expect = if b.eq_ignore_ascii_case(&name[i]) {
                        k
                    } else {
                        Other
                    };
                    assert_eq!(HeaderName::parse_bytes(&m), expect, "{m:?}");
                }
            }
        }
        assert_eq!(Other.as_str(), "");
    }

    #[test]
    fn ports() {
        for (s, want) in [
            ("5060", Some(5060)),
            ("0", Some(0)),
            ("00080", Some(80)),
            ("65535", Some(65535)),
            ("65536", None),
            ("99999999999999999999", None),
            ("", None),
            ("+5", None),
            ("50 60", None),
        ] {
            assert_eq!(parse_port(s), want, "{s:?}");
        }
    }

    #[test]
    fn parse_in_agrees_with_parse_bytes() {
        let line = b"Content-Encoding: gzip, with a long enough tail to load 16 bytes";
        for start in 0..8 {
            for len in 0..=17 {
                let name = &line[start..(start + len).min(line.len())];
                assert_eq!(
                    HeaderName::parse_in(line, start, len),
                    HeaderName::parse_bytes(name),
                    "{start} {len}"
                );
            }
        }
        let short = b"Via:x";
        assert_eq!(HeaderName::parse_in(short, 0, 3), HeaderName::Via);
        assert_eq!(
            HeaderName::parse_in(b"cseQ: 1 INVITE padding", 0, 4),
            HeaderName::CSeq
        );
        assert_eq!(
            HeaderName::parse_in(b"v: SIP/2.0/UDP host;p", 0, 1),
            HeaderName::Via
        );
    }

    #[test]
    fn branch_of_agrees_with_via_parse() {
        for v in [
            "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK77;rport;received=198.51.100.1",
            "SIP/2.0/UDP [2001:db8::1]:5060 ; received=x ; BRANCH = z9hG4bKa ; branch=second",
            "SIP / 2.0 / TCP host\r\n ;branch=\"z9hG4bK;q\"",
            "SIP/2.0/UDP host;rport",
            "SIP/2.0/UDP host",
            "SIP/2.0/UDP host;branch=",
            "SIP/2.0/UDP host;rport;;Branch=z9hG4bKb;branch=c",
            "SIP/2.0/UDP host;branch",
            "SIP/2.0/UDP host;x=\"a;branch=q\";branch=r",
        ] {
            assert_eq!(Via::branch_of(v), Via::parse(v).unwrap().branch, "{v}");
        }
    }

    #[test]
    fn via_basic() {
        let v =
            Via::parse("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK77;rport;received=198.51.100.1")
                .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.4");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch, Some("z9hG4bK77"));
        assert_eq!(v.rport, Some(None));
        assert_eq!(v.received, Some("198.51.100.1"));
        assert_eq!(v.params, ";branch=z9hG4bK77;rport;received=198.51.100.1");
    }

    #[test]
    fn via_spacing_ipv6_and_rport_value() {
        let v =
            Via::parse("SIP / 2.0 / TCP   [2001:db8::9]  :  5070 ; rport = 6000 ;BRANCH= z9hG4bKx")
                .unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "2001:db8::9");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport, Some(Some(6000)));
        assert_eq!(v.branch, Some("z9hG4bKx"));

        let v = Via::parse("SIP/2.0/WSS [::1];branch=a").unwrap();
        assert_eq!((v.host, v.port), ("::1", None));

        let v = Via::parse("SIP/2.0/UDP\r\n host.example.com;branch=b").unwrap();
        assert_eq!(v.host, "host.example.com");
        assert_eq!(v.params, ";branch=b");
        assert_eq!(v.rport, None);
    }

    #[test]
    fn via_rejects_garbage() {
        for bad in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "SIP/2.0 UDP host",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP host:",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP []:5060",
            "SIP/2.0/UDP host junk",
        ] {
            assert_eq!(Via::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn via_sent_by() {
        let s = "SIP/2.0/UDP [2001:db8::1]:5060;branch=x";
        let v = Via::parse(s).unwrap();
        assert_eq!(v.sent_by(s), Some("[2001:db8::1]:5060"));
        let s = "SIP/2.0/UDP host.example;branch=x";
        assert_eq!(Via::parse(s).unwrap().sent_by(s), Some("host.example"));
    }

    #[test]
    fn name_addr_forms() {
        let n =
            NameAddr::parse(r#""Doe, \"J\" <boss>" <sip:j@example.com;transport=tcp>;tag=abc;lr"#)
                .unwrap();
        assert_eq!(n.display, Some(r#"Doe, \"J\" <boss>"#));
        assert_eq!(n.uri, "sip:j@example.com;transport=tcp");
        assert_eq!(n.params, ";tag=abc;lr");
        assert_eq!(n.tag(), Some("abc"));
        assert_eq!(n.param("LR"), Some(""));
        assert_eq!(n.param("transport"), None);

        let n = NameAddr::parse("Bob  Smith<sip:bob@h>").unwrap();
        assert_eq!(n.display, Some("Bob  Smith"));
        assert_eq!(n.uri, "sip:bob@h");
        assert_eq!(n.params, "");

        let n = NameAddr::parse("sip:alice@atlanta.example;tag=9fxced76sl").unwrap();
        assert_eq!(n.display, None);
        assert_eq!(n.uri, "sip:alice@atlanta.example");
        assert_eq!(n.tag(), Some("9fxced76sl"));

        let n = NameAddr::parse("< sip:[2001:db8::1]:5062 > ; expires = 60").unwrap();
        assert_eq!(n.uri, "sip:[2001:db8::1]:5062");
        assert_eq!(n.param("Expires"), Some("60"));

        let n = NameAddr::parse(r#"<sip:x@y>;q="a;b";tag=t"#).unwrap();
        assert_eq!(n.param("q"), Some("a;b"));
        assert_eq!(n.tag(), Some("t"));

        let n = NameAddr::parse("\"\" <sip:x@y>").unwrap();
        assert_eq!(n.display, Some(""));
    }

    #[test]
    fn name_addr_rejects_garbage() {
        for bad in [
            "",
            "\"unterminated <sip:a@b>",
            "\"x\" sip:a@b",
            "<sip:a@b",
            "<>",
            "<sip:a@b> junk",
            "sip:a b@c",
            ";tag=1",
        ] {
            assert_eq!(NameAddr::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cseq_parse() {
        assert_eq!(
            CSeq::parse(" 4711   INVITE "),
            Some(CSeq {
                seq: 4711,
                method: "INVITE"
            })
        );
        assert_eq!(CSeq::parse("0 ACK").unwrap().seq, 0);
        assert_eq!(CSeq::parse("4294967295 X").unwrap().seq, u32::MAX);
        for bad in [
            "",
            "INVITE",
            "1",
            "1INVITE",
            "4294967296 INVITE",
            "-1 INVITE",
            "1 INVITE extra",
            "1 INV@TE",
        ] {
            assert_eq!(CSeq::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn split_comma_respects_quotes_and_angles() {
        let v = r#""A, \"B\" <x>" <sip:a@b;p=1,2>;tag=1 , <sip:c@d>,,  sip:e@f ,"#;
        let parts: Vec<_> = split_comma(v).collect();
        assert_eq!(
            parts,
            [
                r#""A, \"B\" <x>" <sip:a@b;p=1,2>;tag=1"#,
                "<sip:c@d>",
                "sip:e@f"
            ]
        );
        assert_eq!(split_comma("").count(), 0);
        assert_eq!(split_comma(" , ,").count(), 0);
        assert_eq!(
            split_comma("\"open, never closed").collect::<Vec<_>>(),
            ["\"open, never closed"]
        );
        // Backslash escapes only exist inside quoted strings; outside, `"` opens one.
        assert_eq!(split_comma("a\\\"b,c").collect::<Vec<_>>(), ["a\\\"b,c"]);
        assert_eq!(
            split_comma(r#""x\\",y"#).collect::<Vec<_>>(),
            [r#""x\\""#, "y"]
        );
        let bytes: Vec<_> = split_comma_bytes(b"\xff\xfe, x").collect();
        assert_eq!(bytes, [&b"\xff\xfe"[..], b"x"]);
        // A trailing backslash inside an open quote must not step past the end.
        assert_eq!(split_comma("\"a\\").count(), 1);
    }

    #[test]
    fn params_iteration() {
        let p: Vec<_> = Params::new(" ; a = 1;;b; c=\"x;y\" ;", true).collect();
        assert_eq!(p, [("a", "1"), ("b", ""), ("c", "x;y")]);
        let p: Vec<_> = Params::new(";a=\"x;y", false).collect();
        assert_eq!(p, [("a", "\"x"), ("y", "")]);
        assert_eq!(find_param(";\"", "x", true), None);
    }
}

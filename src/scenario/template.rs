//! Message templates compiled once into literal/slot segments, rendered per message
//! without a template engine. Syntax: `{{ name }}` where name is a built-in, a
//! scenario variable or `last.<header>`; `{{ hex: 00ff0d0a }}` is bytes written in
//! hex, which is how a template says what YAML text can't (bytes that are not
//! UTF-8, a literal `{{`).
//!
//! Rendering runs for every message at load (tens of thousands of calls per second),
//! so everything that depends only on the template text — line splitting, CRLF
//! normalization, finding the `Content-Length` line — happens in
//! [`Template::compile`]; [`Template::render`] only appends bytes to `out`.

use std::collections::HashMap;
use std::fmt;

/// Values the interpreter supplies per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    CallId,
    /// A fresh branch for the message being rendered (`z9hG4bK` prefix).
    Branch,
    LocalIp,
    LocalPort,
    RemoteIp,
    RemotePort,
    /// "UDP", "TCP", ...
    Transport,
    /// `;transport=tcp` (tls, ws, wss) for URIs in Contact; empty over UDP.
    TransportParam,
    /// `IP4` or `IP6`: the address type of `media_ip` for SDP `c=`/`o=` lines.
    MediaIpType,
    /// Tag in the From header of the dialog-creating request (UAC: ours, UAS: theirs).
    FromTag,
    /// Tag in the To header (UAC: theirs once known, UAS: ours).
    ToTag,
    /// CSeq number for the message being rendered.
    Cseq,
    /// `Route:` header lines from the dialog route set (empty when none).
    Route,
    /// Remote target URI (Contact of the peer; before a dialog exists, the target URI).
    RemoteTarget,
    /// `Route:` lines from the `Service-Route` of the last REGISTER's 2xx (RFC 3608);
    /// empty when none.
    ServiceRoute,
    /// Half the expiry the registrar granted our binding in the last REGISTER's 2xx,
    /// as a duration (`1800s`): when to refresh. `0s` before any.
    RefreshAfter,
    /// `HOST:PORT` for a Contact: the `contact` column of `--inject` or variable
    /// `contact` when set, else our own address (`local_ip:local_port`).
    ContactAddress,
    /// 1-based call number in this run.
    CallNumber,
    MediaIp,
    MediaPort,
    /// This call's SDP offer or answer (opens the call's media ports).
    Sdp,
    /// Our `a=crypto` line(s): every suite offered, or the one answered with.
    Crypto,
    /// The peer's `a=crypto` line(s) from its last SDP.
    RemoteCrypto,
    /// Length of the rendered body (what `Content-Length` is computed from).
    /// Rendered by the template itself: [`RenderContext::builtin`] never sees it.
    Len,
}

impl Builtin {
    pub const ALL: [(&'static str, Builtin); 24] = [
        ("call_id", Builtin::CallId),
        ("branch", Builtin::Branch),
        ("local_ip", Builtin::LocalIp),
        ("local_port", Builtin::LocalPort),
        ("remote_ip", Builtin::RemoteIp),
        ("remote_port", Builtin::RemotePort),
        ("transport", Builtin::Transport),
        ("transport_param", Builtin::TransportParam),
        ("media_ip_type", Builtin::MediaIpType),
        ("from_tag", Builtin::FromTag),
        ("to_tag", Builtin::ToTag),
        ("cseq", Builtin::Cseq),
        ("route", Builtin::Route),
        ("remote_target", Builtin::RemoteTarget),
        ("service_route", Builtin::ServiceRoute),
        ("refresh_after", Builtin::RefreshAfter),
        ("contact_address", Builtin::ContactAddress),
        ("call_number", Builtin::CallNumber),
        ("media_ip", Builtin::MediaIp),
        ("media_port", Builtin::MediaPort),
        ("sdp", Builtin::Sdp),
        ("crypto", Builtin::Crypto),
        ("remote_crypto", Builtin::RemoteCrypto),
        ("len", Builtin::Len),
    ];

    pub fn from_name(name: &str) -> Option<Builtin> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map(|(n, _)| *n)
            .unwrap_or("")
    }
}

/// The interpreter's side of rendering.
pub trait RenderContext {
    fn builtin(&mut self, b: Builtin, out: &mut Vec<u8>);
    fn var(&self, slot: usize, out: &mut Vec<u8>);
    /// Every header line named `name` (lowercase full name; compact forms resolved)
    /// from the last received message, exactly as received, joined by CRLF (no final
    /// CRLF). Nothing when absent.
    fn last_header(&self, name: &str, out: &mut Vec<u8>);
    /// Column `col` of this call's row of the injection file (`--inject`): the
    /// interpreter appends `Injection::field(row, col)`, straight from the file buffer.
    /// Templates only hold such segments when compiled with a column lookup
    /// ([`Template::compile_with`]); the default renders nothing.
    fn inject(&self, col: usize, out: &mut Vec<u8>) {
        let _ = (col, out);
    }
}

/// A [`RenderContext`] backed by maps, for tests and tooling (not the load path).
#[derive(Clone, Debug, Default)]
pub struct SimpleContext {
    pub builtins: HashMap<Builtin, String>,
    /// Indexed by variable slot; missing slots render as nothing.
    pub vars: Vec<String>,
    /// Keyed by the normalized header name passed to `last_header` (e.g. "via").
    pub last: HashMap<String, String>,
    /// The call's injected row, indexed by column; missing columns render as nothing.
    pub inject: Vec<String>,
}

impl SimpleContext {
    pub fn with_builtin(mut self, b: Builtin, value: &str) -> Self {
        self.builtins.insert(b, value.to_string());
        self
    }
}

impl RenderContext for SimpleContext {
    fn builtin(&mut self, b: Builtin, out: &mut Vec<u8>) {
        if let Some(v) = self.builtins.get(&b) {
            out.extend_from_slice(v.as_bytes());
        }
    }
    fn var(&self, slot: usize, out: &mut Vec<u8>) {
        if let Some(v) = self.vars.get(slot) {
            out.extend_from_slice(v.as_bytes());
        }
    }
    fn last_header(&self, name: &str, out: &mut Vec<u8>) {
        if let Some(v) = self.last.get(name) {
            out.extend_from_slice(v.as_bytes());
        }
    }
    fn inject(&self, col: usize, out: &mut Vec<u8>) {
        if let Some(v) = self.inject.get(col) {
            out.extend_from_slice(v.as_bytes());
        }
    }
}

/// A problem in a template's text, at byte `offset` of the text given to
/// [`Template::compile`] (always the position of a `{{`, except for `Empty`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub kind: TemplateErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// Not a built-in, not `last.<header>`, and unknown to the variable lookup.
    Undefined(String),
    /// `{{` without `}}` on the same line.
    Unterminated,
    /// Something between `{{` and `}}` that is not a name (the text found, trimmed).
    InvalidName(String),
    /// `{{ len }}` inside the body it measures.
    LenInBody,
    /// A `{{ hex: … }}` slot that is not hex digit pairs (what is wrong, in words).
    BadHex(String),
    /// The template has no text at all.
    Empty,
}

impl fmt::Display for TemplateErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateErrorKind::Undefined(name) => write!(f, "undefined variable `{name}`"),
            TemplateErrorKind::Unterminated => {
                write!(
                    f,
                    "unterminated `{{{{`; close it with `}}}}` on the same line"
                )
            }
            TemplateErrorKind::InvalidName(text) if text.is_empty() => {
                write!(
                    f,
                    "empty `{{{{ }}}}`; put a variable or built-in name inside"
                )
            }
            TemplateErrorKind::InvalidName(text) => write!(
                f,
                "`{text}` is not a name; names use letters, digits, `_`, `-` and `.` \
                 (a literal `{{{{` is written `{{{{ hex: 7b7b }}}}`)"
            ),
            TemplateErrorKind::BadHex(why) => write!(
                f,
                "bad `{{{{ hex: … }}}}`: {why}; write bytes as hex digit pairs, e.g. \
                 `{{{{ hex: 00ff0d0a }}}}` or `{{{{ hex: 00 ff 0d 0a }}}}`"
            ),
            TemplateErrorKind::LenInBody => write!(
                f,
                "`{{{{ len }}}}` is the body length and can't be used inside the body"
            ),
            TemplateErrorKind::Empty => write!(f, "empty message template"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    /// Byte range of `Template::lit`.
    Lit(u32, u32),
    Builtin(Builtin),
    Var(usize),
    /// Normalized full header name.
    Last(Box<str>),
    /// Column of the injection file.
    Inject(usize),
}

/// Range of `Template::segs`.
#[derive(Clone, Copy, Debug, Default)]
struct SegRange(u32, u32);

#[derive(Debug)]
enum LineKind {
    Plain {
        has_slot: bool,
    },
    /// Replaced by `Content-Length: N` at render time.
    ContentLength,
}

#[derive(Debug)]
struct HeadLine {
    segs: SegRange,
    kind: LineKind,
}

#[derive(Debug)]
enum Layout {
    /// Head lines without their line ends; CRLF is added at render time.
    Sip {
        lines: Vec<HeadLine>,
        has_content_length: bool,
    },
    /// Everything before the body, byte-exact (line ends and the blank line included).
    Raw { head: SegRange },
}

#[derive(Debug)]
pub struct Template {
    /// Literal bytes of all segments, already normalized (bytes, not text: hex slots
    /// and untouched files put anything here).
    lit: Vec<u8>,
    segs: Vec<Seg>,
    layout: Layout,
    /// Rendered first so its length is known when the head is rendered.
    body: SegRange,
    method: Option<Box<str>>,
    is_response: bool,
}

impl Template {
    /// Compile template text. `var` maps a variable name to its slot (None: undefined).
    /// With `raw`, the text is rendered byte-exact (no CRLF or Content-Length handling).
    /// All problems are returned, in text order.
    pub fn compile(
        text: &str,
        raw: bool,
        var: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Template, Vec<TemplateError>> {
        Self::compile_with(text, raw, var, &|_| None)
    }

    /// [`Template::compile`] with `inject` mapping a name to a column of the run's
    /// injection file (`Injection::column`). A column wins over a variable of the same
    /// name: the file overrides the scenario's defaults, as `--set` does.
    pub fn compile_with(
        text: &str,
        raw: bool,
        var: &dyn Fn(&str) -> Option<usize>,
        inject: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Template, Vec<TemplateError>> {
        if text.trim().is_empty() {
            return Err(vec![TemplateError {
                offset: 0,
                kind: TemplateErrorKind::Empty,
            }]);
        }
        let mut errors = Vec::new();
        let slots = scan_slots(text, var, inject, &mut errors);

        // Leading blank lines can't be a start line; skipping them keeps `send: |` with
        // a stray empty first line from turning the whole message into a body.
        let start = if raw { 0 } else { skip_blank_lines(text) };
        let (head_end, body_start) = match find_blank_line(text, start) {
            Some((line_start, next)) => (line_start, next),
            None => (text.len(), text.len()),
        };
        let mut body_end = text.len();
        if !raw && text[body_start..].bytes().all(|b| b == b'\n' || b == b'\r') {
            body_end = body_start;
        }
        for s in &slots {
            if s.start >= body_start
                && s.start < body_end
                && s.value == SlotValue::Seg(Seg::Builtin(Builtin::Len))
            {
                errors.push(TemplateError {
                    offset: s.start,
                    kind: TemplateErrorKind::LenInBody,
                });
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.offset);
            return Err(errors);
        }

        let mut b = Builder {
            text,
            slots: &slots,
            lit: Vec::with_capacity(text.len() + 64),
            segs: Vec::new(),
        };
        let start_line = first_line(&text[start..]);
        let layout = if raw {
            let head = b.push_range(start, body_start, false);
            Layout::Raw { head }
        } else {
            let mut lines = Vec::new();
            let mut has_content_length = false;
            let mut pos = start;
            while pos < head_end {
                let nl = text[pos..head_end].find('\n').map_or(head_end, |i| pos + i);
                let line = text[pos..nl].strip_suffix('\r').unwrap_or(&text[pos..nl]);
                let line_end = pos + line.len();
                if is_content_length_line(line) {
                    has_content_length = true;
                    lines.push(HeadLine {
                        segs: SegRange::default(),
                        kind: LineKind::ContentLength,
                    });
                } else {
                    // Hex bytes are literal text: a line of `{{ hex: 20 }}` stays.
                    let has_slot = slots.iter().any(|s| {
                        s.start >= pos && s.start < line_end && matches!(s.value, SlotValue::Seg(_))
                    });
                    let segs = b.push_range(pos, line_end, false);
                    lines.push(HeadLine {
                        segs,
                        kind: LineKind::Plain { has_slot },
                    });
                }
                pos = nl + 1;
            }
            Layout::Sip {
                lines,
                has_content_length,
            }
        };
        let body = b.push_range(body_start, body_end, !raw);

        let is_response = start_line.starts_with("SIP/");
        let token = start_line.split([' ', '\t']).next().unwrap_or("");
        let method =
            (!is_response && !token.is_empty() && !token.contains("{{")).then(|| token.into());
        Ok(Template {
            lit: b.lit,
            segs: b.segs,
            layout,
            body,
            method,
            is_response,
        })
    }

    /// A template of fixed bytes, sent untouched (`send_file` with `template: false`,
    /// `bytes_base64`): no slots, no line-end or `Content-Length` handling. What the
    /// call needs to know (request method, response) is read from the first line
    /// when it looks like SIP.
    pub fn from_bytes(bytes: &[u8]) -> Template {
        let end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
        let line = bytes[..end].strip_suffix(b"\r").unwrap_or(&bytes[..end]);
        let is_response = line.starts_with(b"SIP/");
        let token = line
            .split(|&b| b == b' ' || b == b'\t')
            .next()
            .unwrap_or(b"");
        let method = std::str::from_utf8(token)
            .ok()
            .filter(|t| !is_response && !t.is_empty())
            .map(Into::into);
        let segs = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![Seg::Lit(0, bytes.len() as u32)]
        };
        Template {
            lit: bytes.to_vec(),
            layout: Layout::Raw {
                head: SegRange(0, segs.len() as u32),
            },
            segs,
            // Empty: in a raw layout the body is only what `len` measures.
            body: SegRange(0, 0),
            method,
            is_response,
        }
    }

    /// The rendered length when it is the same for every message (no slot but
    /// `len` and hex bytes), for checks before the run (UDP's datagram limit).
    pub fn fixed_len(&self) -> Option<usize> {
        let fixed = self
            .segs
            .iter()
            .all(|s| matches!(s, Seg::Lit(..) | Seg::Builtin(Builtin::Len)));
        fixed.then(|| {
            let mut out = Vec::with_capacity(self.lit.len() + 64);
            self.render(&mut SimpleContext::default(), &mut out);
            out.len()
        })
    }

    /// Request method when the start line is a request with a literal method, e.g. "INVITE".
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// True when the start line is a response (`SIP/2.0 ...`).
    pub fn is_response(&self) -> bool {
        self.is_response
    }

    /// True when rendering reads the last received message (`last.*`).
    pub fn uses_last(&self) -> bool {
        self.segs.iter().any(|s| matches!(s, Seg::Last(_)))
    }

    /// True when rendering reads the call's injected row.
    pub fn uses_inject(&self) -> bool {
        self.segs.iter().any(|s| matches!(s, Seg::Inject(_)))
    }

    /// True when rendering writes this built-in.
    pub fn uses_builtin(&self, b: Builtin) -> bool {
        self.segs.contains(&Seg::Builtin(b))
    }

    /// True for `raw: true` templates (sent byte-exact, no Content-Length handling).
    pub fn is_raw(&self) -> bool {
        matches!(self.layout, Layout::Raw { .. })
    }

    /// The value of the head's `name` header (compact forms understood) when its line
    /// holds no slot: e.g. the Call-ID a message sent byte-exact carries.
    pub fn literal_header(&self, name: &str) -> Option<String> {
        let want = normalize_header_name(name);
        fn value_of<'t>(line: &'t str, want: &str) -> Option<&'t str> {
            let (n, value) = line.split_once(':')?;
            (normalize_header_name(n.trim()) == want).then(|| value.trim())
        }

        let lit = |seg: &Seg| match seg {
            Seg::Lit(s, e) => self.lit.get(*s as usize..*e as usize),
            _ => None,
        };
        match &self.layout {
            Layout::Sip { lines, .. } => lines.iter().find_map(|l| {
                let segs = self.segs.get(l.segs.0 as usize..l.segs.1 as usize)?;
                match (segs, &l.kind) {
                    ([one], LineKind::Plain { has_slot: false }) => {
                        value_of(std::str::from_utf8(lit(one)?).ok()?, &want).map(str::to_string)
                    }
                    _ => None,
                }
            }),
            Layout::Raw { head } => {
                // The head with each slot as a NUL, which no header value written
                // literally holds: a line with one is not literal.
                let segs = self.segs.get(head.0 as usize..head.1 as usize)?;
                let text: Vec<u8> = segs
                    .iter()
                    .flat_map(|s| lit(s).unwrap_or(b"\0").iter().copied())
                    .collect();
                let text = String::from_utf8_lossy(&text);
                let (line, value) = text
                    .split('\n')
                    .map(|l| l.strip_suffix('\r').unwrap_or(l))
                    .find_map(|l| value_of(l, &want).map(|v| (l, v)))?;
                (!line.contains('\0')).then(|| value.to_string())
            }
        }
    }

    /// Render into `out` (appended). Head lines are joined with CRLF; a line that
    /// contains a slot and renders to nothing but whitespace is dropped; the head ends
    /// with an empty line; `Content-Length` is set to the body length (added if
    /// missing). With `raw`, the rendered text is sent exactly as written.
    pub fn render(&self, ctx: &mut dyn RenderContext, out: &mut Vec<u8>) {
        let start = out.len();
        // `len` is rejected in the body at compile time, so 0 is never rendered.
        self.render_segs(self.body, 0, ctx, out);
        let body_len = out.len() - start;
        match &self.layout {
            Layout::Raw { head } => self.render_segs(*head, body_len, ctx, out),
            Layout::Sip {
                lines,
                has_content_length,
            } => {
                for line in lines {
                    match line.kind {
                        LineKind::ContentLength => {
                            out.extend_from_slice(b"Content-Length: ");
                            push_decimal(out, body_len);
                        }
                        LineKind::Plain { has_slot } => {
                            let line_start = out.len();
                            self.render_segs(line.segs, body_len, ctx, out);
                            if has_slot && out[line_start..].iter().all(u8::is_ascii_whitespace) {
                                out.truncate(line_start);
                                continue;
                            }
                        }
                    }
                    out.extend_from_slice(b"\r\n");
                }
                if !has_content_length {
                    out.extend_from_slice(b"Content-Length: ");
                    push_decimal(out, body_len);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        // The body was rendered first to learn its length; move it behind the head.
        out[start..].rotate_left(body_len);
    }

    fn render_segs(
        &self,
        range: SegRange,
        body_len: usize,
        ctx: &mut dyn RenderContext,
        out: &mut Vec<u8>,
    ) {
        for seg in &self.segs[range.0 as usize..range.1 as usize] {
            match seg {
                Seg::Lit(s, e) => out.extend_from_slice(&self.lit[*s as usize..*e as usize]),
                Seg::Builtin(Builtin::Len) => push_decimal(out, body_len),
                Seg::Builtin(b) => ctx.builtin(*b, out),
                Seg::Var(slot) => ctx.var(*slot, out),
                Seg::Last(name) => ctx.last_header(name, out),
                Seg::Inject(col) => ctx.inject(*col, out),
            }
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, n: usize) {
    crate::sip::write_dec(out, n as u64);
}

/// A `{{ ... }}` found in the text, resolved.
struct Slot {
    start: usize,
    end: usize,
    value: SlotValue,
}

#[derive(Debug, PartialEq, Eq)]
enum SlotValue {
    /// Rendered per message.
    Seg(Seg),
    /// `{{ hex: … }}`: these bytes, as if they were literal text.
    Bytes(Vec<u8>),
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// Find and resolve every `{{ name }}`. Scanning resumes right after a bad `{{`, so
/// the n-th error offset is the n-th non-overlapping `{{` of the text — the scenario
/// compiler relies on that to find the same `{{` in the YAML source.
fn scan_slots(
    text: &str,
    var: &dyn Fn(&str) -> Option<usize>,
    inject: &dyn Fn(&str) -> Option<usize>,
    errors: &mut Vec<TemplateError>,
) -> Vec<Slot> {
    let bytes = text.as_bytes();
    let mut slots = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find("{{") {
        let open = pos + found;
        let mut j = open + 2;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        let name_start = j;
        while j < bytes.len() && is_name_byte(bytes[j]) {
            j += 1;
        }
        let name = &text[name_start..j];
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        let mut fail = |kind| {
            errors.push(TemplateError { offset: open, kind });
        };
        let line_end = text[open..].find('\n').map_or(text.len(), |i| open + i);
        if name.eq_ignore_ascii_case("hex") && bytes.get(j) == Some(&b':') {
            let Some(close) = text[j..line_end].find("}}").map(|i| j + i) else {
                fail(TemplateErrorKind::Unterminated);
                pos = open + 2;
                continue;
            };
            match parse_hex(&text[j + 1..close]) {
                Ok(b) => slots.push(Slot {
                    start: open,
                    end: close + 2,
                    value: SlotValue::Bytes(b),
                }),
                Err(why) => fail(TemplateErrorKind::BadHex(why)),
            }
            pos = close + 2;
            continue;
        }
        if bytes[j..].starts_with(b"}}") && !name.is_empty() {
            match resolve(name, var, inject) {
                Ok(seg) => slots.push(Slot {
                    start: open,
                    end: j + 2,
                    value: SlotValue::Seg(seg),
                }),
                Err(kind) => fail(kind),
            }
            pos = j + 2;
            continue;
        }
        match text[open + 2..line_end].find("}}") {
            Some(close) => {
                let inner = text[open + 2..open + 2 + close].trim();
                fail(TemplateErrorKind::InvalidName(inner.to_string()));
            }
            None => fail(TemplateErrorKind::Unterminated),
        }
        pos = open + 2;
    }
    slots
}

/// The bytes of a hex slot's inside (after `hex:`): digit pairs, either case, with
/// spaces or tabs allowed between pairs but not inside one (`0 0` is a mistake, not
/// the byte 00).
fn parse_hex(inner: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(inner.len() / 2);
    for group in inner.split([' ', '\t']).filter(|g| !g.is_empty()) {
        if let Some(bad) = group.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(format!("`{bad}` is not a hex digit"));
        }
        if group.len() % 2 != 0 {
            return Err(format!(
                "`{group}` has an odd number of digits (a byte is two digits)"
            ));
        }
        // Every char is an ASCII hex digit (checked above), so `to_digit` has a value.
        let nibble = |c: u8| char::from(c).to_digit(16).unwrap_or(0) as u8;
        for pair in group.as_bytes().chunks_exact(2) {
            out.push(nibble(pair[0]) << 4 | nibble(pair[1]));
        }
    }
    if out.is_empty() {
        return Err("no bytes".to_string());
    }
    Ok(out)
}

fn resolve(
    name: &str,
    var: &dyn Fn(&str) -> Option<usize>,
    inject: &dyn Fn(&str) -> Option<usize>,
) -> Result<Seg, TemplateErrorKind> {
    if let Some(header) = name.strip_prefix("last.") {
        if header.is_empty() || header.contains('.') {
            return Err(TemplateErrorKind::InvalidName(name.to_string()));
        }
        return Ok(Seg::Last(normalize_header_name(header).into()));
    }
    if let Some(b) = Builtin::from_name(name) {
        return Ok(Seg::Builtin(b));
    }
    if let Some(col) = inject(name) {
        return Ok(Seg::Inject(col));
    }
    match var(name) {
        Some(slot) => Ok(Seg::Var(slot)),
        None => Err(TemplateErrorKind::Undefined(name.to_string())),
    }
}

/// `Record_Route` → "record-route", `v` → "via": the form `RenderContext::last_header`
/// expects, so the interpreter compares names without per-message normalization.
pub fn normalize_header_name(name: &str) -> String {
    let lower: String = name
        .chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    match expand_compact(&lower) {
        Some(full) => full.to_string(),
        None => lower,
    }
}

/// RFC 3261 §7.3.3 compact forms plus the common extensions, the same set the
/// message layer understands.
fn expand_compact(name: &str) -> Option<&'static str> {
    Some(match name {
        "i" => "call-id",
        "f" => "from",
        "t" => "to",
        "v" => "via",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        "o" => "event",
        "u" => "allow-events",
        "r" => "refer-to",
        "b" => "referred-by",
        "x" => "session-expires",
        _ => return None,
    })
}

fn is_content_length_line(line: &str) -> bool {
    match line.split_once(':') {
        Some((name, _)) => {
            let name = name.trim_end();
            name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")
        }
        None => false,
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t' || b == b'\r')
}

fn skip_blank_lines(text: &str) -> usize {
    let mut pos = 0;
    while let Some(i) = text[pos..].find('\n') {
        if !is_blank(&text[pos..pos + i]) {
            break;
        }
        pos += i + 1;
    }
    pos
}

/// First blank line at or after `from`: (its start, the start of the line after it).
fn find_blank_line(text: &str, from: usize) -> Option<(usize, usize)> {
    let mut pos = from;
    while pos < text.len() {
        let nl = text[pos..].find('\n').map(|i| pos + i);
        let end = nl.unwrap_or(text.len());
        if is_blank(&text[pos..end]) {
            return Some((pos, nl.map_or(text.len(), |n| n + 1)));
        }
        pos = end + 1;
    }
    None
}

fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or("");
    line.strip_suffix('\r').unwrap_or(line)
}

struct Builder<'a> {
    text: &'a str,
    slots: &'a [Slot],
    lit: Vec<u8>,
    segs: Vec<Seg>,
}

impl Builder<'_> {
    /// Segments for `text[from..to]`; `crlf` turns bare LF line ends into CRLF.
    fn push_range(&mut self, from: usize, to: usize, crlf: bool) -> SegRange {
        let first = self.segs.len() as u32;
        let mut pos = from;
        for slot in self
            .slots
            .iter()
            .filter(|s| s.start >= from && s.start < to)
        {
            self.push_lit(first, pos, slot.start, crlf);
            match &slot.value {
                SlotValue::Seg(seg) => self.segs.push(seg.clone()),
                // Exactly these bytes: no CRLF conversion, whatever they are.
                SlotValue::Bytes(b) => self.push_bytes(first, b),
            }
            pos = slot.end;
        }
        self.push_lit(first, pos, to, crlf);
        SegRange(first, self.segs.len() as u32)
    }

    /// `first` is where the current range's segments begin: literals merge only
    /// within a range, never into the previous line.
    fn push_lit(&mut self, first: u32, from: usize, to: usize, crlf: bool) {
        if from >= to {
            return;
        }
        let start = self.lit.len();
        let piece = &self.text.as_bytes()[from..to];
        if crlf {
            let mut prev = 0;
            for &c in piece {
                if c == b'\n' && prev != b'\r' {
                    self.lit.push(b'\r');
                }
                self.lit.push(c);
                prev = c;
            }
        } else {
            self.lit.extend_from_slice(piece);
        }
        self.close_lit(first, start);
    }

    /// Literal bytes from a hex slot (or a file sent untouched).
    fn push_bytes(&mut self, first: u32, bytes: &[u8]) {
        let start = self.lit.len();
        self.lit.extend_from_slice(bytes);
        self.close_lit(first, start);
    }

    /// The literal `lit[start..]` just written becomes a segment.
    fn close_lit(&mut self, first: u32, start: usize) {
        let end = self.lit.len() as u32;
        // Merge with a directly preceding literal so rendering does one copy per run.
        if self.segs.len() > first as usize
            && let Some(Seg::Lit(_, e)) = self.segs.last_mut()
            && *e as usize == start
        {
            *e = end;
            return;
        }
        self.segs.push(Seg::Lit(start as u32, end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<usize> {
        ["service", "user", "body_text", "empty"]
            .iter()
            .position(|v| *v == name)
    }

    fn compile(text: &str) -> Template {
        Template::compile(text, false, &vars).unwrap()
    }

    fn compile_raw(text: &str) -> Template {
        Template::compile(text, true, &vars).unwrap()
    }

    fn errors(text: &str) -> Vec<TemplateError> {
        Template::compile(text, false, &vars).unwrap_err()
    }

    fn ctx() -> SimpleContext {
        SimpleContext {
            vars: vec!["svc".into(), "alice".into(), "hello".into(), String::new()],
            ..SimpleContext::default()
        }
        .with_builtin(Builtin::CallId, "abc@h")
        .with_builtin(Builtin::Branch, "z9hG4bK-1")
        .with_builtin(Builtin::RemoteIp, "10.0.0.2")
        .with_builtin(Builtin::RemotePort, "5060")
        .with_builtin(Builtin::Cseq, "1")
    }

    fn render(t: &Template, ctx: &mut SimpleContext) -> String {
        let mut out = b"prefix|".to_vec();
        t.render(ctx, &mut out);
        let s = String::from_utf8(out).unwrap();
        s.strip_prefix("prefix|").unwrap().to_string()
    }

    #[test]
    fn builtin_names_round_trip() {
        for (name, b) in Builtin::ALL {
            assert_eq!(Builtin::from_name(name), Some(b));
            assert_eq!(b.name(), name);
        }
        assert_eq!(Builtin::from_name("nope"), None);
    }

    #[test]
    fn head_lines_get_crlf_and_content_length_is_appended() {
        let t = compile(
            "OPTIONS sip:{{service}}@{{ remote_ip }}:{{  remote_port  }} SIP/2.0\n\
             Call-ID: {{ call_id }}\r\n\
             CSeq: {{ cseq }} OPTIONS\n",
        );
        assert_eq!(t.method(), Some("OPTIONS"));
        assert!(!t.is_response());
        assert!(!t.is_raw());
        assert_eq!(
            render(&t, &mut ctx()),
            "OPTIONS sip:svc@10.0.0.2:5060 SIP/2.0\r\n\
             Call-ID: abc@h\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn content_length_line_is_replaced_in_place() {
        for cl in [
            "Content-Length: 999",
            "content-length:0",
            "l: 5",
            "L : {{ len }}",
        ] {
            let t = compile(&format!(
                "MESSAGE sip:x SIP/2.0\n{cl}\nContent-Type: text/plain\n\nhi {{{{ user }}}}\n"
            ));
            assert_eq!(
                render(&t, &mut ctx()),
                "MESSAGE sip:x SIP/2.0\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nhi alice\r\n",
                "{cl}"
            );
        }
    }

    #[test]
    fn len_builtin_renders_body_length() {
        let t = compile("INFO sip:x SIP/2.0\nX-Len: {{ len }}\nContent-Length: {{len}}\n\nabc");
        assert_eq!(
            render(&t, &mut ctx()),
            "INFO sip:x SIP/2.0\r\nX-Len: 3\r\nContent-Length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn sdp_body_with_blank_line_inside() {
        let t = compile(
            "INVITE sip:x SIP/2.0\nContent-Type: application/sdp\n\nv=0\no=- 1 1 IN IP4 h\n\na=x\n",
        );
        let body = "v=0\r\no=- 1 1 IN IP4 h\r\n\r\na=x\r\n";
        assert_eq!(
            render(&t, &mut ctx()),
            format!(
                "INVITE sip:x SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        );
    }

    #[test]
    fn empty_body_gives_zero_length() {
        for text in [
            "BYE sip:x SIP/2.0\nCSeq: 2 BYE\n",
            "BYE sip:x SIP/2.0\nCSeq: 2 BYE\n\n",
            "BYE sip:x SIP/2.0\nCSeq: 2 BYE\n\n\n\n",
            "BYE sip:x SIP/2.0\r\nCSeq: 2 BYE\r\n\r\n",
            "BYE sip:x SIP/2.0\nCSeq: 2 BYE",
        ] {
            assert_eq!(
                render(&compile(text), &mut ctx()),
                "BYE sip:x SIP/2.0\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
                "{text:?}"
            );
        }
    }

    #[test]
    fn whitespace_only_slot_lines_are_dropped() {
        let t = compile(
            "BYE sip:x SIP/2.0\n{{ route }}\n{{ last.record_route }}\n  {{ empty }}  \nX: {{ empty }}\nCSeq: 2 BYE\n",
        );
        assert_eq!(
            render(&t, &mut ctx()),
            "BYE sip:x SIP/2.0\r\nX: \r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn multiline_slots_are_inserted_as_is() {
        let t =
            compile("ACK sip:x SIP/2.0\n{{ route }}\n{{ last.record_route }}\nMax-Forwards: 70\n");
        let mut c = ctx().with_builtin(Builtin::Route, "Route: <sip:p1;lr>\r\nRoute: <sip:p2;lr>");
        c.last.insert(
            "record-route".into(),
            "Record-Route: <sip:a;lr>\r\nRecord-Route: <sip:b;lr>".into(),
        );
        assert_eq!(
            render(&t, &mut c),
            "ACK sip:x SIP/2.0\r\n\
             Route: <sip:p1;lr>\r\nRoute: <sip:p2;lr>\r\n\
             Record-Route: <sip:a;lr>\r\nRecord-Route: <sip:b;lr>\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn last_header_names_are_normalized() {
        let t = compile(
            "SIP/2.0 200 OK\n{{ last.v }}\n{{ last.Call-ID }}\n{{last.i}}\n{{ last.record_route }}\n{{ last.X_Custom }}\n",
        );
        assert!(t.is_response());
        assert_eq!(t.method(), None);
        let mut c = ctx();
        for (k, v) in [
            ("via", "Via: SIP/2.0/UDP h;branch=z9hG4bK1"),
            ("call-id", "Call-ID: c"),
            ("record-route", "Record-Route: <sip:r;lr>"),
            ("x-custom", "X-Custom: 1"),
        ] {
            c.last.insert(k.into(), v.into());
        }
        assert_eq!(
            render(&t, &mut c),
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCall-ID: c\r\n\
             Record-Route: <sip:r;lr>\r\nX-Custom: 1\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(normalize_header_name("v"), "via");
        assert_eq!(normalize_header_name("I"), "call-id");
        assert_eq!(normalize_header_name("Record_Route"), "record-route");
    }

    #[test]
    fn raw_mode_is_byte_exact() {
        let text = "OPTIONS sip:{{ service }} SIP/2.0\nVia: x\r\nContent-Length: 99\r\n\r\nbody\n";
        let t = compile_raw(text);
        assert!(t.is_raw());
        assert_eq!(t.method(), Some("OPTIONS"));
        assert_eq!(
            render(&t, &mut ctx()),
            "OPTIONS sip:svc SIP/2.0\nVia: x\r\nContent-Length: 99\r\n\r\nbody\n"
        );
        let t = compile_raw("X\r\nContent-Length: {{ len }}\r\n\r\n{{ body_text }}");
        assert_eq!(
            render(&t, &mut ctx()),
            "X\r\nContent-Length: 5\r\n\r\nhello"
        );
        let t = compile_raw("junk {{ user }}");
        assert_eq!(render(&t, &mut ctx()), "junk alice");
    }

    #[test]
    fn method_needs_a_literal_token() {
        assert_eq!(compile("{{ service }} sip:x SIP/2.0\n").method(), None);
        assert_eq!(
            compile("\n\nREGISTER sip:x SIP/2.0\n").method(),
            Some("REGISTER")
        );
        assert_eq!(
            render(&compile("\n\nREGISTER sip:x SIP/2.0\n"), &mut ctx()),
            "REGISTER sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn errors_are_reported_at_their_braces() {
        let text = "INVITE sip:{{ nope }} SIP/2.0\nX: {{ user }} {{ also_nope}}\nY: {{ bad name }}\nZ: {{ open\n\n{{ len }}";
        let errs = errors(text);
        let got: Vec<(usize, TemplateErrorKind)> =
            errs.into_iter().map(|e| (e.offset, e.kind)).collect();
        let at = |s: &str| text.find(s).unwrap();
        assert_eq!(
            got,
            vec![
                (at("{{ nope"), TemplateErrorKind::Undefined("nope".into())),
                (
                    at("{{ also"),
                    TemplateErrorKind::Undefined("also_nope".into())
                ),
                (
                    at("{{ bad"),
                    TemplateErrorKind::InvalidName("bad name".into())
                ),
                (at("{{ open"), TemplateErrorKind::Unterminated),
                (at("{{ len"), TemplateErrorKind::LenInBody),
            ]
        );
        assert_eq!(
            errors("{{}}")[0].kind,
            TemplateErrorKind::InvalidName(String::new())
        );
        assert_eq!(
            errors("X {{ last. }}")[0].kind,
            TemplateErrorKind::InvalidName("last.".into())
        );
        assert_eq!(errors(" \n ")[0].kind, TemplateErrorKind::Empty);
        assert_eq!(errors("A {{")[0].kind, TemplateErrorKind::Unterminated);
    }

    #[test]
    fn injected_columns_resolve_before_variables() {
        let columns = |name: &str| ["user", "domain"].iter().position(|c| *c == name);
        let text = "REGISTER sip:{{ domain }} SIP/2.0\nFrom: <sip:{{ user }}@{{domain}}>\nX: {{ service }} {{ call_id }}\n";
        let t = Template::compile_with(text, false, &vars, &columns).unwrap();
        assert!(t.uses_inject());
        assert!(
            !compile(
                text.replace("{{ domain }}", "x")
                    .replace("{{domain}}", "x")
                    .as_str()
            )
            .uses_inject()
        );
        let mut c = ctx();
        c.inject = vec!["bob".into(), "b.org".into()];
        assert_eq!(
            render(&t, &mut c),
            "REGISTER sip:b.org SIP/2.0\r\nFrom: <sip:bob@b.org>\r\nX: svc abc@h\r\nContent-Length: 0\r\n\r\n"
        );
        // Without a column lookup, an unknown name is still an error.
        assert_eq!(
            errors("X {{ domain }}")[0].kind,
            TemplateErrorKind::Undefined("domain".into())
        );
    }

    fn render_bytes(t: &Template) -> Vec<u8> {
        let mut out = Vec::new();
        t.render(&mut ctx(), &mut out);
        out
    }

    #[test]
    fn hex_slots_render_exact_bytes() {
        // Raw: NUL, a lone CR, bytes that are not UTF-8, spaces between pairs, either
        // case, `HEX` in capitals, no spaces at all.
        let t = compile_raw(
            "OPTIONS sip:{{ service }} SIP/2.0\r\nX: a{{ hex: 00 }}b{{ hex: 0d }}c\r\n\
             Y: {{ hex: 80ff FE c3 }}{{HEX:28}}\r\nContent-Length: 99\r\n\r\n{{hex:0a0A}}",
        );
        assert_eq!(
            render_bytes(&t),
            b"OPTIONS sip:svc SIP/2.0\r\nX: a\x00b\rc\r\nY: \x80\xff\xfe\xc3(\r\n\
              Content-Length: 99\r\n\r\n\n\n"
        );
        // A literal `{{`, which is otherwise always a slot.
        let t = compile_raw("X: {{ hex: 7b7b }} user }}");
        assert_eq!(render_bytes(&t), b"X: {{ user }}");
    }

    #[test]
    fn hex_slots_in_sip_templates_are_literal_bytes() {
        // Not a line break, not CRLF-converted, counted in Content-Length, and a line
        // holding only hex whitespace is not dropped like an empty slot line.
        let t = compile(
            "MESSAGE sip:x SIP/2.0\nX: a{{ hex: 0a }}b\n{{ hex: 20 }}\n\nv{{ hex: 0a ff }}\n",
        );
        assert_eq!(
            render_bytes(&t),
            b"MESSAGE sip:x SIP/2.0\r\nX: a\nb\r\n \r\nContent-Length: 5\r\n\r\nv\n\xff\r\n"
        );
        assert_eq!(t.fixed_len(), Some(render_bytes(&t).len()));
        assert_eq!(
            compile("MESSAGE sip:{{ service }} SIP/2.0\n").fixed_len(),
            None
        );
        // `{{ hex }}` without a colon is still a name.
        assert_eq!(
            errors("X: {{ hex }}")[0].kind,
            TemplateErrorKind::Undefined("hex".into())
        );
    }

    #[test]
    fn malformed_hex_slots_are_errors_at_their_braces() {
        let text = "A {{ hex: 0g }}\nB {{ hex: 123 }}\nC {{ hex: }}\nD {{ hex: 0 0 }}\nE {{ hex:zz}} {{ user }}\nF {{ hex: 00";
        let at = |s: &str| text.find(s).unwrap();
        let got: Vec<(usize, String)> = Template::compile(text, true, &vars)
            .unwrap_err()
            .into_iter()
            .map(|e| {
                let TemplateErrorKind::BadHex(why) = &e.kind else {
                    assert_eq!(e.kind, TemplateErrorKind::Unterminated);
                    return (e.offset, "unterminated".to_string());
                };
                assert!(
                    e.kind.to_string().contains("{{ hex: 00ff0d0a }}"),
                    "{}",
                    e.kind
                );
                (e.offset, why.clone())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (at("{{ hex: 0g"), "`g` is not a hex digit".to_string()),
                (
                    at("{{ hex: 123"),
                    "`123` has an odd number of digits (a byte is two digits)".to_string()
                ),
                (at("{{ hex: }}"), "no bytes".to_string()),
                (
                    at("{{ hex: 0 0"),
                    "`0` has an odd number of digits (a byte is two digits)".to_string()
                ),
                (at("{{ hex:zz"), "`z` is not a hex digit".to_string()),
                (at("{{ hex: 00"), "unterminated".to_string()),
            ]
        );
    }

    #[test]
    fn odd_hex_slots_are_errors_not_panics() {
        for text in [
            "{{hex:",
            "{{ hex:}}",
            "{{ hex:\n}}",
            "{{ hex: é }}",
            "{{ hexé: 00 }}",
            "{{ hex::00 }}",
            "{{ hex: 00}}}}",
            "{{ hex: 00 }",
            "X{{ hex: 0",
            "{{ hex: 00 \t 11 }}{{",
            "{{ hex : 00 }}",
        ] {
            for raw in [false, true] {
                match Template::compile(text, raw, &vars) {
                    Ok(t) => {
                        let mut out = Vec::new();
                        t.render(&mut ctx(), &mut out);
                    }
                    Err(errs) => assert!(
                        errs.iter().all(|e| text[e.offset..].starts_with("{{")),
                        "{text:?}: {errs:?}"
                    ),
                }
            }
        }
        // Spaces around the colon are fine.
        assert_eq!(render_bytes(&compile_raw("{{ hex : 00 }}")), b"\x00");
    }

    #[test]
    fn byte_templates_are_sent_untouched() {
        let bytes = b"INVITE sip:x SIP/2.0\r\nX: \xff\x00{{ nope }}\nContent-Length: 7\r\n\r\n\r";
        let t = Template::from_bytes(bytes);
        assert!(t.is_raw());
        assert_eq!(t.method(), Some("INVITE"));
        assert!(!t.is_response());
        assert_eq!(render_bytes(&t), bytes);
        assert_eq!(t.fixed_len(), Some(bytes.len()));
        let t = Template::from_bytes(b"SIP/2.0 200 OK\r\n\r\n");
        assert!(t.is_response());
        assert_eq!(t.method(), None);
        let t = Template::from_bytes(b"\xff\xfe garbage");
        assert_eq!(t.method(), None);
        assert_eq!(render_bytes(&t), b"\xff\xfe garbage");
        assert_eq!(render_bytes(&Template::from_bytes(b"")), b"");
    }

    #[test]
    fn literal_header_values() {
        let t = compile("INVITE sip:x SIP/2.0\nCall-ID: {{ call_id }}\nX: y\n");
        assert_eq!(t.literal_header("call-id"), None);
        assert_eq!(t.literal_header("x").as_deref(), Some("y"));
        let t = compile("INVITE sip:x SIP/2.0\ni:  fixed@h \n");
        assert_eq!(t.literal_header("Call-ID").as_deref(), Some("fixed@h"));
        let t = compile_raw(
            "INVITE sip:{{ service }} SIP/2.0\r\nCall-ID: c@h\r\nVia: {{ branch }}\r\n\r\n",
        );
        assert_eq!(t.literal_header("call-id").as_deref(), Some("c@h"));
        assert_eq!(t.literal_header("via"), None);
        let t = compile_raw("INVITE x SIP/2.0\r\nCall-ID: a{{ service }}\r\n\r\n");
        assert_eq!(t.literal_header("call-id"), None);
        let t = compile_raw("X\r\nCall-ID: whole\r\n\r\nCall-ID: body\r\n");
        assert_eq!(t.literal_header("call-id").as_deref(), Some("whole"));
        // `bytes_base64:` and `send_file` with `template: false`: bytes, not UTF-8.
        let t = Template::from_bytes(b"INVITE x SIP/2.0\r\nX: \xff\r\ni: b@h\r\n\r\n");
        assert_eq!(t.method(), Some("INVITE"));
        assert_eq!(t.literal_header("call-id").as_deref(), Some("b@h"));
    }

    #[test]
    fn render_appends_without_reallocating_when_capacity_suffices() {
        let t = compile(
            "INVITE sip:{{ service }}@{{ remote_ip }} SIP/2.0\nVia: SIP/2.0/UDP h;branch={{ branch }}\n{{ route }}\nCall-ID: {{ call_id }}\n\nv=0\n",
        );
        let mut c = ctx();
        let mut out = Vec::with_capacity(4096);
        let ptr = out.as_ptr();
        for _ in 0..3 {
            out.clear();
            t.render(&mut c, &mut out);
        }
        assert_eq!(out.as_ptr(), ptr);
        assert!(out.ends_with(b"Content-Length: 5\r\n\r\nv=0\r\n"));
    }
}

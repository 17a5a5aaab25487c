//! Header names (case-insensitive, compact forms) and typed header values.
//! STUB: signatures are the contract; bodies are filled in by the message-layer work.

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
        let _ = name;
        todo!()
    }
    /// Canonical full name, e.g. "Call-ID". `Other` returns "".
    pub fn as_str(self) -> &'static str {
        todo!()
    }
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

impl<'a> Via<'a> {
    /// Parse one Via value (not a comma list).
    pub fn parse(value: &'a str) -> Option<Via<'a>> {
        let _ = value;
        todo!()
    }
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
    pub fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        let _ = value;
        todo!()
    }
    /// Value of header parameter `name` (case-insensitive); `Some("")` for a flag.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        let _ = name;
        todo!()
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
        let _ = value;
        todo!()
    }
}

/// Split a header value on top-level commas (not inside quotes or `<>`), trimming whitespace.
pub fn split_comma(value: &str) -> impl Iterator<Item = &str> {
    let _ = value;
    std::iter::empty::<&str>()
}

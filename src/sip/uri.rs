//! SIP/SIPS URIs (lenient): enough for routing decisions (host, port, `lr`, `transport`).
//! STUB: signatures are the contract.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// "sip", "sips", "tel", ... lowercased comparison is the caller's job.
    pub scheme: &'a str,
    pub user: Option<&'a str>,
    /// Host without brackets for IPv6.
    pub host: &'a str,
    pub port: Option<u16>,
    /// URI parameters text starting at the first ';' (may be empty); excludes `?headers`.
    pub params: &'a str,
}

impl<'a> SipUri<'a> {
    /// Parses `sip:user@host:port;params?headers`; angle brackets are not accepted here.
    pub fn parse(s: &'a str) -> Option<SipUri<'a>> {
        let _ = s;
        todo!()
    }
    /// URI parameter value (case-insensitive name); `Some("")` for flags like `lr`.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        let _ = name;
        todo!()
    }
    /// True when the URI carries `;lr` (loose routing, RFC 3261 §19.1.1).
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }
}

//! Dialog state (RFC 3261 §12): tags, route set, remote target, CSeq, and the
//! in-dialog requests built from it (BYE, ACK for 2xx, ...). Works on already
//! extracted header values so it has no dependency on the parser.
//!
//! Header values arrive as written on the wire; the helpers below do just
//! enough string work (tags, angle brackets, `;lr`) without the parser.

use std::io::Write;

use super::header::{find_byte, find_param};
use super::write_dec;

/// Local transport facts needed for Via and Contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local<'a> {
    /// "UDP", "TCP", ...
    pub transport: &'a str,
    pub host: &'a str,
    pub port: u16,
}

/// Where an in-dialog request goes (§12.2.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTarget {
    pub request_uri: String,
    /// Route header values, in order.
    pub routes: Vec<String>,
    /// URI of the next hop: the first Route (loose or strict) or the remote target.
    pub next_hop: String,
}

/// A dialog's state. The strings live in one buffer (`text`): an established call
/// holds a dialog for its whole length, often tens of thousands of them at once in a
/// load run, and one allocation instead of seven keeps an idle call small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID, local party, remote party, remote target, then the route set with one
    /// route per line (in the order Route headers are written).
    text: Box<str>,
    /// Where each of the first four parts of `text` ends.
    ends: [u32; 4],
    /// Tags, as ranges of `text` inside the parties they belong to.
    local_tag: (u32, u32),
    remote_tag: (u32, u32),
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
}

impl Dialog {
    /// UAC side, from the request we sent and a 2xx/1xx-with-tag response:
    /// route set = Record-Route of the response reversed (§12.1.2).
    pub fn new_uac(
        call_id: &str,
        from_value: &str,
        to_value: &str,
        record_route: &[&str],
        contact_uri: &str,
        cseq: u32,
    ) -> Dialog {
        let mut route_set = route_values(record_route);
        route_set.reverse();
        Dialog::assemble(
            call_id,
            from_value,
            to_value,
            uri_of(contact_uri),
            &route_set,
            cseq,
            None,
        )
    }

    /// True when a response that would (re)build this UAC dialog with
    /// [`Dialog::new_uac`] would build the same one: same remote tag, remote
    /// target and route set. The common 180-then-200 call checks this instead
    /// of building the dialog twice.
    pub fn same_uac_dialog(
        &self,
        remote_tag: &str,
        record_route: &[&str],
        contact_uri: &str,
    ) -> bool {
        if self.remote_tag() != remote_tag || self.remote_target() != uri_of(contact_uri) {
            return false;
        }
        // The route set is the Record-Route reversed (as `new_uac` builds it).
        self.route_set()
            .eq(route_values(record_route).into_iter().rev())
    }

    /// UAS side, from the received request; `to_value` already carries our tag.
    /// Route set = Record-Route of the request in order (§12.1.1).
    ///
    /// `local_cseq` starts at 0 (§12.1.1 leaves it empty), so our first
    /// in-dialog request goes out with CSeq 1.
    pub fn new_uas(
        call_id: &str,
        from_value: &str,
        to_value: &str,
        record_route: &[&str],
        contact_uri: &str,
        remote_cseq: u32,
    ) -> Dialog {
        Dialog::assemble(
            call_id,
            to_value,
            from_value,
            uri_of(contact_uri),
            &route_values(record_route),
            0,
            Some(remote_cseq),
        )
    }

    fn assemble(
        call_id: &str,
        local_party: &str,
        remote_party: &str,
        remote_target: &str,
        routes: &[&str],
        local_cseq: u32,
        remote_cseq: Option<u32>,
    ) -> Dialog {
        let (call_id, local_party, remote_party) =
            (call_id.trim(), local_party.trim(), remote_party.trim());
        let parts = [call_id, local_party, remote_party, remote_target];
        let len = parts.iter().map(|p| p.len()).sum::<usize>()
            + routes.iter().map(|r| r.len() + 1).sum::<usize>();
        let mut text = String::with_capacity(len);
        let mut ends = [0u32; 4];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            *end = offset(text.len());
        }
        for route in routes {
            // A line break inside a (malformed) route would split it in two.
            text.extend(route.chars().map(|c| if c == '\n' { ' ' } else { c }));
            text.push('\n');
        }
        let tag_range = |party: &str, party_start: u32| {
            let tag = tag_of(party);
            // `tag_of` returns a slice of `party` (or a literal "" when there is no tag):
            // its position is the pointer difference.
            let start = (tag.as_ptr() as usize).wrapping_sub(party.as_ptr() as usize);
            if tag.is_empty() || start + tag.len() > party.len() {
                return (party_start, party_start);
            }
            (
                party_start + offset(start),
                party_start + offset(start + tag.len()),
            )
        };
        Dialog {
            local_tag: tag_range(local_party, ends[0]),
            remote_tag: tag_range(remote_party, ends[1]),
            text: text.into_boxed_str(),
            ends,
            local_cseq,
            remote_cseq,
        }
    }

    fn part(&self, range: (u32, u32)) -> &str {
        self.text
            .get(range.0 as usize..range.1 as usize)
            .unwrap_or("")
    }
    pub fn call_id(&self) -> &str {
        self.part((0, self.ends[0]))
    }
    /// Our From/To header value (with our tag), e.g. `<sip:a@h>;tag=x`.
    pub fn local_party(&self) -> &str {
        self.part((self.ends[0], self.ends[1]))
    }
    /// Their From/To header value (with their tag).
    pub fn remote_party(&self) -> &str {
        self.part((self.ends[1], self.ends[2]))
    }
    /// Remote target URI (from Contact), without angle brackets.
    pub fn remote_target(&self) -> &str {
        self.part((self.ends[2], self.ends[3]))
    }
    pub fn local_tag(&self) -> &str {
        self.part(self.local_tag)
    }
    pub fn remote_tag(&self) -> &str {
        self.part(self.remote_tag)
    }
    /// Route set, in the order Route headers are written.
    pub fn route_set(&self) -> impl Iterator<Item = &str> {
        let routes = self.text.get(self.ends[3] as usize..).unwrap_or("");
        routes.split_terminator('\n')
    }

    /// Target refresh (Contact of a re-INVITE/2xx/UPDATE).
    pub fn refresh_target(&mut self, contact_uri: &str) {
        let routes: Vec<&str> = self.route_set().collect();
        let refreshed = Dialog::assemble(
            self.call_id(),
            self.local_party(),
            self.remote_party(),
            uri_of(contact_uri),
            &routes,
            self.local_cseq,
            self.remote_cseq,
        );
        *self = refreshed;
    }

    /// The first route, when the route set is not empty, and whether it routes loosely.
    fn first_route(&self) -> Option<(&str, bool)> {
        let first = uri_of(self.route_set().next()?);
        Some((first, has_lr(first)))
    }

    /// URI of the next hop: the first Route (loose or strict) or the remote target.
    pub fn next_hop(&self) -> &str {
        self.first_route()
            .map_or(self.remote_target(), |(first, _)| first)
    }

    /// Loose routing when the first route has `;lr`, strict routing otherwise.
    pub fn request_target(&self) -> RequestTarget {
        let mut routes = Vec::new();
        self.for_each_route(|r| routes.push(r.to_string()));
        RequestTarget {
            request_uri: self.request_uri().into_owned(),
            routes,
            next_hop: self.next_hop().to_owned(),
        }
    }

    fn request_uri(&self) -> std::borrow::Cow<'_, str> {
        match self.first_route() {
            // §12.2.1.1 strict routing: the pre-RFC 3261 proxy expects to find
            // itself in the Request-URI, and the real target travels as the last Route.
            Some((first, false)) => strict_request_uri(first).into(),
            _ => self.remote_target().into(),
        }
    }

    /// Calls `f` with each Route header value to write, in order.
    fn for_each_route(&self, mut f: impl FnMut(RouteValue<'_>)) {
        match self.first_route() {
            None => {}
            Some((_, true)) => self.route_set().for_each(|r| f(RouteValue::of(r))),
            Some((_, false)) => {
                self.route_set().skip(1).for_each(|r| f(RouteValue::of(r)));
                f(RouteValue::Bracketed(self.remote_target()));
            }
        }
    }

    /// Append `Route: <value>\r\n` for each route to `out` (nothing when the set is empty).
    pub fn write_route_headers(&self, out: &mut Vec<u8>) {
        self.for_each_route(|r| {
            out.extend_from_slice(b"Route: ");
            r.write(out);
            out.extend_from_slice(b"\r\n");
        });
    }

    /// Build an in-dialog request (not ACK/CANCEL): increments and uses `local_cseq`.
    /// Writes start line, Via (with `branch` and `;rport`), Route, Max-Forwards: 70,
    /// From (local_party), To (remote_party), Call-ID, CSeq, Contact (when given),
    /// `extra_headers` (each line CRLF-terminated, may be empty), Content-Length, body.
    /// Returns the CSeq number used.
    // The argument list is the published contract other modules build against.
    #[allow(clippy::too_many_arguments)]
    pub fn build_request(
        &mut self,
        method: &str,
        local: &Local<'_>,
        branch: &str,
        contact: Option<&str>,
        extra_headers: &str,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> u32 {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        let cseq = self.local_cseq;
        self.write_head(method, cseq, local, branch, out);
        if let Some(contact) = contact {
            let contact = contact.trim();
            if contact.contains('<') {
                let _ = write!(out, "Contact: {contact}\r\n");
            } else {
                let _ = write!(out, "Contact: <{contact}>\r\n");
            }
        }
        out.extend_from_slice(extra_headers.as_bytes());
        // A caller that forgot the final CRLF would otherwise glue its last
        // header to Content-Length.
        if !extra_headers.is_empty() && !extra_headers.ends_with('\n') {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        write_dec(out, body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        cseq
    }

    /// ACK for a 2xx (its own transaction, new branch), CSeq number = the INVITE's.
    pub fn build_ack(&self, invite_cseq: u32, local: &Local<'_>, branch: &str, out: &mut Vec<u8>) {
        self.write_head("ACK", invite_cseq, local, branch, out);
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    }

    /// Start line through CSeq, shared by requests and ACKs.
    fn write_head(
        &self,
        method: &str,
        cseq: u32,
        local: &Local<'_>,
        branch: &str,
        out: &mut Vec<u8>,
    ) {
        // Written piece by piece rather than with `write!`: every ACK and BYE of a
        // load run goes through here.
        let put = |out: &mut Vec<u8>, parts: &[&str]| {
            for p in parts {
                out.extend_from_slice(p.as_bytes());
            }
        };
        put(
            out,
            &[
                method,
                " ",
                &self.request_uri(),
                " SIP/2.0\r\nVia: SIP/2.0/",
            ],
        );
        let transport = local.transport.trim();
        out.extend(transport.bytes().map(|b| b.to_ascii_uppercase()));
        let host = local.host.trim();
        // An IPv6 literal must be bracketed in sent-by, or its colons read as a port.
        let (open, close) = if host.contains(':') && !host.starts_with('[') {
            ("[", "]")
        } else {
            ("", "")
        };
        put(out, &[" ", open, host, close, ":"]);
        write_dec(out, u64::from(local.port));
        put(out, &[";branch=", branch, ";rport\r\n"]);
        self.write_route_headers(out);
        put(
            out,
            &[
                "Max-Forwards: 70\r\nFrom: ",
                self.local_party(),
                "\r\nTo: ",
                self.remote_party(),
                "\r\nCall-ID: ",
                self.call_id(),
                "\r\nCSeq: ",
            ],
        );
        write_dec(out, u64::from(cseq));
        put(out, &[" ", method, "\r\n"]);
    }
}

/// A Route header value for a stored route: Record-Route values are always
/// name-addrs, but a bare URI from a sloppy proxy must be bracketed or its
/// `;lr` would turn into a header parameter.
#[derive(Clone, Copy)]
enum RouteValue<'a> {
    AsIs(&'a str),
    Bracketed(&'a str),
}

impl<'a> RouteValue<'a> {
    fn of(route: &'a str) -> RouteValue<'a> {
        if open_angle(route).is_some() {
            RouteValue::AsIs(route)
        } else {
            RouteValue::Bracketed(route)
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            RouteValue::AsIs(v) => out.extend_from_slice(v.as_bytes()),
            RouteValue::Bracketed(v) => {
                out.push(b'<');
                out.extend_from_slice(v.as_bytes());
                out.push(b'>');
            }
        }
    }
}

impl std::fmt::Display for RouteValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteValue::AsIs(v) => f.write_str(v),
            RouteValue::Bracketed(v) => write!(f, "<{v}>"),
        }
    }
}

/// Offsets inside a dialog's text: header values never come near 4 GB, and a
/// longer text would only make accessors return "" rather than panic.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Byte offset of the `<` that opens a name-addr, skipping a quoted display
/// name (which may itself contain `<`, `;` or `,`).
fn open_angle(value: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in value.bytes().enumerate() {
        if quoted {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == b'<' {
            return Some(i);
        }
    }
    None
}

/// The URI of a name-addr or addr-spec value, without angle brackets. A bare
/// value is taken whole: the callers hand us URIs (Contact URI, Route), whose
/// `;` parameters belong to the URI.
fn uri_of(value: &str) -> &str {
    let value = value.trim();
    match open_angle(value) {
        Some(open) => {
            let inner = &value[open + 1..];
            find_byte(inner, b'>')
                .map_or(inner, |close| &inner[..close])
                .trim()
        }
        None => value,
    }
}

/// The header parameters of a From/To value: after `>` for a name-addr; for an
/// addr-spec every `;` parameter is a header parameter (§20.10). A name-addr
/// missing its `>` is read leniently, as if it closed before the first `;`.
fn header_params(value: &str) -> &str {
    let (open, rest) = match open_angle(value) {
        Some(open) => (true, &value[open + 1..]),
        None => (false, value),
    };
    if open && let Some(close) = find_byte(rest, b'>') {
        return &rest[close + 1..];
    }
    find_byte(rest, b';').map_or("", |i| &rest[i..])
}

/// The `tag` parameter of a From/To value, or "" when it has none.
fn tag_of(value: &str) -> &str {
    // A comma at this level starts another header value; its tag is not ours.
    let params = header_params(value);
    let params = &params[..find_byte(params, b',').unwrap_or(params.len())];
    let tag = find_param(params, "tag", false).unwrap_or("");
    &tag[..tag
        .bytes()
        .position(|c| c.is_ascii_whitespace())
        .unwrap_or(tag.len())]
}

/// URI parameters (`name` or `name=value`), skipping a user part that may carry
/// its own `;` (telephone-subscriber) and any `?headers`.
fn uri_params(uri: &str) -> std::str::Split<'_, char> {
    let no_headers = uri.split('?').next().unwrap_or("");
    let host_part = no_headers.split_once('@').map_or(no_headers, |(_, h)| h);
    let mut params = host_part.split(';');
    params.next();
    params
}

fn param_name(param: &str) -> &str {
    param.split('=').next().unwrap_or("").trim()
}

fn has_lr(uri: &str) -> bool {
    uri_params(uri).any(|p| param_name(p).eq_ignore_ascii_case("lr"))
}

/// A route URI made fit for the Request-URI (§19.1.1 Table 1): `method` and
/// `?headers` are not allowed there.
fn strict_request_uri(uri: &str) -> String {
    let no_headers = uri.split('?').next().unwrap_or("");
    let host_start = no_headers.find('@').map_or(0, |i| i + 1);
    let (user, host) = no_headers.split_at(host_start);
    let mut out = String::with_capacity(no_headers.len());
    out.push_str(user);
    for (i, seg) in host.split(';').enumerate() {
        if i > 0 {
            if param_name(seg).eq_ignore_ascii_case("method") {
                continue;
            }
            out.push(';');
        }
        out.push_str(seg);
    }
    out
}

/// Record-Route values, one per hop: each given value may itself hold several
/// comma-separated entries (one header line listing several proxies).
fn route_values<'a>(record_route: &[&'a str]) -> Vec<&'a str> {
    let mut routes = Vec::with_capacity(record_route.len());
    for value in record_route {
        split_top_level_commas(value, |v| routes.push(v));
    }
    routes
}

/// Calls `f` with each trimmed, non-empty comma-separated element of `value`,
/// ignoring commas inside quotes and angle brackets.
fn split_top_level_commas<'a>(value: &'a str, mut f: impl FnMut(&'a str)) {
    let mut quoted = false;
    let mut escaped = false;
    let mut in_angle = false;
    let mut start = 0;
    let mut emit = |piece: &'a str| {
        let piece = piece.trim();
        if !piece.is_empty() {
            f(piece);
        }
    };
    for (i, b) in value.bytes().enumerate() {
        if quoted {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b',' if !in_angle => {
                emit(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    emit(&value[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "\"Alice\" <sip:alice@a.example.com>;tag=1928301774";
    const TO: &str = "<sip:bob@b.example.com>;tag=a6c85cf";
    const UDP: Local<'static> = Local {
        transport: "UDP",
        host: "192.0.2.10",
        port: 5060,
    };

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    fn uac(record_route: &[&str]) -> Dialog {
        Dialog::new_uac(
            "a84b4c76e66710",
            FROM,
            TO,
            record_route,
            "<sip:bob@192.0.2.4:5070;transport=udp>",
            314159,
        )
    }

    #[test]
    fn uac_dialog_from_response() {
        // Double record-routing: one proxy bridging two networks inserts two
        // values, outermost (closest to us) last in the response.
        let d = uac(&["<sip:p1-b.example.com;lr>", "<sip:p1-a.example.com;lr>"]);
        assert_eq!(d.call_id(), "a84b4c76e66710");
        assert_eq!(d.local_tag(), "1928301774");
        assert_eq!(d.remote_tag(), "a6c85cf");
        assert_eq!(d.local_party(), FROM);
        assert_eq!(d.remote_party(), TO);
        assert_eq!(d.local_cseq, 314159);
        assert_eq!(d.remote_cseq, None);
        assert_eq!(
            d.route_set().collect::<Vec<_>>(),
            vec!["<sip:p1-a.example.com;lr>", "<sip:p1-b.example.com;lr>"]
        );
        assert_eq!(d.remote_target(), "sip:bob@192.0.2.4:5070;transport=udp");
    }

    #[test]
    fn uac_route_set_reversal_across_and_within_values() {
        let d = uac(&[
            " \"p3\" <sip:p3.example.com;lr>;x=1 ",
            "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
        ]);
        assert_eq!(
            d.route_set().collect::<Vec<_>>(),
            vec![
                "<sip:p1.example.com;lr>",
                "<sip:p2.example.com;lr>",
                "\"p3\" <sip:p3.example.com;lr>;x=1",
            ]
        );
    }

    #[test]
    fn same_uac_dialog_compares_tag_target_and_routes() {
        let rr = [
            " \"p3\" <sip:p3.example.com;lr>;x=1 ",
            "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
        ];
        let d = uac(&rr);
        let contact = "<sip:bob@192.0.2.4:5070;transport=udp>";
        assert!(d.same_uac_dialog("a6c85cf", &rr, contact));
        // The same routes split differently over header values.
        let regrouped = [
            "\"p3\" <sip:p3.example.com;lr>;x=1, <sip:p2.example.com;lr>",
            "<sip:p1.example.com;lr>",
        ];
        assert!(d.same_uac_dialog("a6c85cf", &regrouped, contact));
        assert!(!d.same_uac_dialog("other", &rr, contact));
        assert!(!d.same_uac_dialog("a6c85cf", &rr, "<sip:bob@192.0.2.5>"));
        assert!(!d.same_uac_dialog("a6c85cf", &rr[..1], contact));
        assert!(!d.same_uac_dialog("a6c85cf", &[rr[1], rr[0]], contact));
        assert!(!d.same_uac_dialog("a6c85cf", &[], contact));
        let plain = uac(&[]);
        assert!(plain.same_uac_dialog("a6c85cf", &[], contact));
        assert!(!plain.same_uac_dialog("a6c85cf", &["<sip:p.example.com;lr>"], contact));
    }

    #[test]
    fn uac_without_to_tag() {
        let d = Dialog::new_uac("c", "<sip:a@h>;tag=x", "<sip:b@h>", &[], "sip:b@h", 1);
        assert_eq!(d.local_tag(), "x");
        assert_eq!(d.remote_tag(), "");
        assert!(d.route_set().next().is_none());
        assert_eq!(d.remote_target(), "sip:b@h");
    }

    #[test]
    fn uas_dialog_from_request() {
        let d = Dialog::new_uas(
            "cid",
            FROM,
            TO,
            &["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"],
            "<sip:alice@pc33.example.com>",
            101,
        );
        assert_eq!(d.local_tag(), "a6c85cf");
        assert_eq!(d.remote_tag(), "1928301774");
        assert_eq!(d.local_party(), TO);
        assert_eq!(d.remote_party(), FROM);
        assert_eq!(d.local_cseq, 0);
        assert_eq!(d.remote_cseq, Some(101));
        assert_eq!(
            d.route_set().collect::<Vec<_>>(),
            vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(d.remote_target(), "sip:alice@pc33.example.com");
    }

    #[test]
    fn tag_extraction() {
        assert_eq!(tag_of("<sip:a@h>;tag=abc"), "abc");
        assert_eq!(tag_of("<sip:a@h>;TAG=abc;x=y"), "abc");
        assert_eq!(tag_of("<sip:a@h> ; Tag = abc ;x"), "abc");
        assert_eq!(tag_of("<sip:a@h>;tag=abc, <sip:b@h>;tag=def"), "abc");
        assert_eq!(tag_of("<sip:a@h>;tag=abc x"), "abc");
        // A tag-looking URI parameter is not the header's tag.
        assert_eq!(tag_of("<sip:a@h;tag=uri>"), "");
        assert_eq!(tag_of("<sip:a@h;tag=uri>;tag=hdr"), "hdr");
        // Display names may contain anything.
        assert_eq!(tag_of("\"x;tag=no <y>\" <sip:a@h>;tag=yes"), "yes");
        assert_eq!(tag_of("\"x\\\"<\" <sip:a@h>;tag=yes"), "yes");
        // addr-spec form: every parameter is a header parameter.
        assert_eq!(tag_of("sip:a@h;tag=bare"), "bare");
        // Missing '>': read leniently.
        assert_eq!(tag_of("<sip:a@h;tag=open"), "open");
        assert_eq!(tag_of("<sip:a@h>;tagx=1;xtag=2"), "");
        assert_eq!(tag_of("<sip:a@h>;tag"), "");
        assert_eq!(tag_of(""), "");
        assert_eq!(tag_of("<"), "");
        assert_eq!(tag_of(">;tag=1"), "1");
    }

    #[test]
    fn uri_extraction() {
        assert_eq!(uri_of("<sip:b@h:5070>"), "sip:b@h:5070");
        assert_eq!(uri_of(" sip:b@h;transport=tcp "), "sip:b@h;transport=tcp");
        assert_eq!(uri_of("\"B <x>\" <sip:b@h>;expires=60"), "sip:b@h");
        assert_eq!(uri_of("<sip:b@h"), "sip:b@h");
        assert_eq!(uri_of("<>"), "");
        assert_eq!(uri_of(""), "");
    }

    #[test]
    fn refresh_target_strips_brackets() {
        let mut d = uac(&[]);
        d.refresh_target("<sip:bob@198.51.100.7:5080>");
        assert_eq!(d.remote_target(), "sip:bob@198.51.100.7:5080");
        d.refresh_target("sip:bob@new");
        assert_eq!(d.remote_target(), "sip:bob@new");
    }

    #[test]
    fn target_without_routes() {
        let d = uac(&[]);
        let t = d.request_target();
        assert_eq!(t.request_uri, "sip:bob@192.0.2.4:5070;transport=udp");
        assert!(t.routes.is_empty());
        assert_eq!(t.next_hop, t.request_uri);
        let mut out = Vec::new();
        d.write_route_headers(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn loose_routing() {
        let d = uac(&[
            "<sip:p2.example.com;lr>",
            "\"P1\" <sip:p1.example.com:5061;LR;transport=tcp>;x",
        ]);
        let t = d.request_target();
        assert_eq!(t.request_uri, "sip:bob@192.0.2.4:5070;transport=udp");
        assert_eq!(t.routes, d.route_set().collect::<Vec<_>>());
        assert_eq!(t.next_hop, "sip:p1.example.com:5061;LR;transport=tcp");
        let mut out = Vec::new();
        d.write_route_headers(&mut out);
        assert_eq!(
            text(&out),
            "Route: \"P1\" <sip:p1.example.com:5061;LR;transport=tcp>;x\r\n\
             Route: <sip:p2.example.com;lr>\r\n"
        );
    }

    #[test]
    fn lr_detection() {
        assert!(has_lr("sip:p;lr"));
        assert!(has_lr("sip:p;lr=on"));
        assert!(has_lr("sip:p;transport=udp;Lr"));
        assert!(!has_lr("sip:p"));
        assert!(!has_lr("sip:p;lrx"));
        assert!(!has_lr("sip:p?lr"));
        assert!(!has_lr("sip:lr;x@p"));
        assert!(!has_lr(""));
    }

    #[test]
    fn strict_routing() {
        let d = uac(&[
            "<sip:p2.example.com;lr>",
            "<sip:p1.example.com;transport=udp;method=INVITE?Subject=x>",
        ]);
        let t = d.request_target();
        assert_eq!(t.request_uri, "sip:p1.example.com;transport=udp");
        assert_eq!(
            t.routes,
            vec![
                "<sip:p2.example.com;lr>",
                "<sip:bob@192.0.2.4:5070;transport=udp>",
            ]
        );
        assert_eq!(
            t.next_hop,
            "sip:p1.example.com;transport=udp;method=INVITE?Subject=x"
        );
        let mut out = Vec::new();
        d.write_route_headers(&mut out);
        assert_eq!(
            text(&out),
            "Route: <sip:p2.example.com;lr>\r\n\
             Route: <sip:bob@192.0.2.4:5070;transport=udp>\r\n"
        );
    }

    #[test]
    fn strict_routing_single_route() {
        let d = uac(&["<sip:old.example.com>"]);
        let t = d.request_target();
        assert_eq!(t.request_uri, "sip:old.example.com");
        assert_eq!(t.routes, vec!["<sip:bob@192.0.2.4:5070;transport=udp>"]);
        assert_eq!(t.next_hop, "sip:old.example.com");
    }

    #[test]
    fn bare_route_is_bracketed_when_written() {
        let d = uac(&["sip:p1;lr"]);
        let t = d.request_target();
        assert_eq!(t.routes, vec!["<sip:p1;lr>"]);
        assert_eq!(t.next_hop, "sip:p1;lr");
    }

    #[test]
    fn build_request_golden() {
        let mut d = uac(&["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]);
        let mut out = Vec::new();
        let n = d.build_request(
            "INFO",
            &UDP,
            "z9hG4bK776asdhds",
            Some("sip:alice@192.0.2.10:5060"),
            "Content-Type: application/dtmf-relay\r\n",
            b"Signal=5\r\nDuration=160\r\n",
            &mut out,
        );
        assert_eq!(n, 314160);
        assert_eq!(d.local_cseq, 314160);
        assert_eq!(
            text(&out),
            "INFO sip:bob@192.0.2.4:5070;transport=udp SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
             Route: <sip:p1.example.com;lr>\r\n\
             Route: <sip:p2.example.com;lr>\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@a.example.com>;tag=1928301774\r\n\
             To: <sip:bob@b.example.com>;tag=a6c85cf\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314160 INFO\r\n\
             Contact: <sip:alice@192.0.2.10:5060>\r\n\
             Content-Type: application/dtmf-relay\r\n\
             Content-Length: 24\r\n\
             \r\n\
             Signal=5\r\nDuration=160\r\n"
        );
    }

    #[test]
    fn build_request_minimal_and_cseq_increments() {
        let mut d = uac(&[]);
        let mut out = Vec::new();
        assert_eq!(
            d.build_request("BYE", &UDP, "z9hG4bK1", None, "", b"", &mut out),
            314160
        );
        assert_eq!(
            text(&out),
            "BYE sip:bob@192.0.2.4:5070;transport=udp SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1;rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@a.example.com>;tag=1928301774\r\n\
             To: <sip:bob@b.example.com>;tag=a6c85cf\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314160 BYE\r\n\
             Content-Length: 0\r\n\
             \r\n"
        );
        let mut out2 = Vec::new();
        assert_eq!(
            d.build_request("BYE", &UDP, "z9hG4bK2", None, "", b"", &mut out2),
            314161
        );
        assert!(text(&out2).contains("\r\nCSeq: 314161 BYE\r\n"));
        assert_eq!(d.local_cseq, 314161);
        // `out` is appended to, not replaced.
        d.build_request("BYE", &UDP, "z9hG4bK3", None, "", b"", &mut out);
        assert_eq!(text(&out).matches("BYE sip:").count(), 2);
    }

    #[test]
    fn uas_first_request_uses_cseq_1_and_its_own_parties() {
        let mut d = Dialog::new_uas("cid", FROM, TO, &["<sip:p1;lr>"], "<sip:alice@pc33>", 101);
        let mut out = Vec::new();
        assert_eq!(
            d.build_request("BYE", &UDP, "b", None, "", b"", &mut out),
            1
        );
        let s = text(&out);
        assert!(s.starts_with("BYE sip:alice@pc33 SIP/2.0\r\n"));
        assert!(s.contains("\r\nRoute: <sip:p1;lr>\r\n"));
        assert!(s.contains("\r\nFrom: <sip:bob@b.example.com>;tag=a6c85cf\r\n"));
        assert!(s.contains("\r\nTo: \"Alice\" <sip:alice@a.example.com>;tag=1928301774\r\n"));
        assert!(s.contains("\r\nCSeq: 1 BYE\r\n"));
    }

    #[test]
    fn build_request_contact_forms_and_loose_extra_headers() {
        let mut d = uac(&[]);
        let mut out = Vec::new();
        d.build_request(
            "UPDATE",
            &UDP,
            "b",
            Some("<sip:alice@h>;expires=60"),
            "Subject: x",
            b"",
            &mut out,
        );
        let s = text(&out);
        assert!(s.contains(
            "\r\nContact: <sip:alice@h>;expires=60\r\nSubject: x\r\nContent-Length: 0\r\n\r\n"
        ));
        let mut out = Vec::new();
        d.build_request(
            "UPDATE",
            &UDP,
            "b",
            Some("\"A\" <sip:alice@h>"),
            "",
            b"",
            &mut out,
        );
        assert!(text(&out).contains("\r\nContact: \"A\" <sip:alice@h>\r\n"));
    }

    #[test]
    fn build_request_strict_routing() {
        let mut d = uac(&["<sip:p2.example.com;lr>", "<sip:p1.example.com>"]);
        let mut out = Vec::new();
        d.build_request("BYE", &UDP, "b", None, "", b"", &mut out);
        let s = text(&out);
        assert!(s.starts_with(
            "BYE sip:p1.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=b;rport\r\n\
             Route: <sip:p2.example.com;lr>\r\n\
             Route: <sip:bob@192.0.2.4:5070;transport=udp>\r\n\
             Max-Forwards: 70\r\n"
        ));
    }

    #[test]
    fn ipv6_via_is_bracketed() {
        let mut d = uac(&[]);
        for (host, want) in [
            ("::1", "Via: SIP/2.0/TCP [::1]:5062;"),
            ("[2001:db8::5]", "Via: SIP/2.0/TCP [2001:db8::5]:5062;"),
            ("host.example", "Via: SIP/2.0/TCP host.example:5062;"),
        ] {
            let local = Local {
                transport: "tcp",
                host,
                port: 5062,
            };
            let mut out = Vec::new();
            d.build_request("OPTIONS", &local, "b", None, "", b"", &mut out);
            assert!(text(&out).contains(want), "{host}: {}", text(&out));
            let mut out = Vec::new();
            d.build_ack(1, &local, "b", &mut out);
            assert!(text(&out).contains(want), "{host}: {}", text(&out));
        }
    }

    #[test]
    fn build_ack_golden() {
        let d = uac(&["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]);
        let mut out = Vec::new();
        d.build_ack(314159, &UDP, "z9hG4bKack", &mut out);
        assert_eq!(
            text(&out),
            "ACK sip:bob@192.0.2.4:5070;transport=udp SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKack;rport\r\n\
             Route: <sip:p1.example.com;lr>\r\n\
             Route: <sip:p2.example.com;lr>\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@a.example.com>;tag=1928301774\r\n\
             To: <sip:bob@b.example.com>;tag=a6c85cf\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314159 ACK\r\n\
             Content-Length: 0\r\n\
             \r\n"
        );
        // The ACK reuses the INVITE's number and leaves ours alone.
        assert_eq!(d.local_cseq, 314159);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let mut d = Dialog::new_uac("", "", "", &["", " , ", "<", ">", "\""], "", 0);
        assert_eq!(d.local_tag(), "");
        assert_eq!(d.remote_target(), "");
        assert_eq!(d.route_set().collect::<Vec<_>>(), vec!["\"", ">", "<"]);
        let local = Local {
            transport: "",
            host: "",
            port: 0,
        };
        let mut out = Vec::new();
        d.build_request("", &local, "", Some(""), "", b"", &mut out);
        d.build_ack(0, &local, "", &mut out);
        d.write_route_headers(&mut out);
        let _ = d.request_target();
        let mut d = Dialog::new_uas("x", "<", "\"", &["<sip:é;lr", "\"ü"], "<", 0);
        d.local_cseq = u32::MAX;
        assert_eq!(
            d.build_request("BYE", &local, "b", None, "x", b"", &mut out),
            0
        );
        let _ = d.request_target();
        assert_eq!(strict_request_uri("sip:a@b;method=X;lr?h=1"), "sip:a@b;lr");
        assert_eq!(strict_request_uri(""), "");
    }
}

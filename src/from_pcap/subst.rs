//! Which bytes of a captured message become template slots, and which slot.
//!
//! Only values that change from call to call or from network to network are
//! replaced, and only where a SIP element puts them: the Call-ID header, `tag=` of
//! From/To, `branch=` of Via, CSeq numbers, Content-Length, the two endpoints'
//! addresses and ports (Request-URI, Via, Contact, From, To and any other header),
//! and the SDP's `c=`/`o=` address and first `m=` port. Everything else — names,
//! spacing, case, order, duplicates, junk — stays literal, so it is sent again as it
//! was captured.
//!
//! Values the peer chose (its tag, its branch, its CSeq number) are found by the
//! caller ([`Resolve`]), which knows what the scenario has seen by then. Header lines
//! of a response that repeat the request's lines byte for byte become
//! `{{ last.<name> }}`: whoever sends the request at run time, the response copies it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use crate::sip::header::HeaderName;
use crate::sip::message;

use super::head::{Field, Head, Start, trimmed};

/// A byte range of the message replaced by a slot, and the value it stands for in
/// the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sub {
    pub range: Range<usize>,
    /// What goes between `{{` and `}}`: a built-in, a variable or `last.<header>`.
    pub slot: String,
    pub value: Vec<u8>,
}

/// The caller's knowledge of values the scenario cannot write by itself.
pub trait Resolve {
    /// Slot for a `tag=` value, or None to keep it literal.
    fn tag(&mut self, value: &[u8]) -> Option<String>;
    /// Slot for a `branch=` value; `top_of_request`: the top Via of a request this
    /// side sends.
    fn branch(&mut self, value: &[u8], top_of_request: bool) -> Option<String>;
    /// Slot for the CSeq number of the message being written.
    fn cseq(&mut self, number: u32) -> Option<String>;
}

/// The side that sends the message.
pub struct View<'a> {
    pub own: SocketAddr,
    pub peer: SocketAddr,
    pub call_id: &'a [u8],
    /// `UDP`/`TCP`: a Via's transport written so becomes `{{ transport }}`.
    pub transport: &'static str,
    /// The last message this side received, when the engine parses it: what
    /// `last.*` copies at run time.
    pub last: Option<&'a [u8]>,
}

/// Where an address was found, for the one case its value cannot tell: both
/// endpoints on the same IP (a loopback capture) and no port written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    RequestUri,
    Via,
    From,
    To,
    Other,
}

struct Subs<'m> {
    msg: &'m [u8],
    /// By start: a message may hold thousands of addresses, and each claim checks
    /// its neighbours only.
    subs: BTreeMap<usize, Sub>,
    /// The value each slot stands for in this message.
    values: HashMap<String, Vec<u8>>,
}

impl Subs<'_> {
    fn free(&self, r: &Range<usize>) -> bool {
        let before = self.subs.range(..r.end).next_back();
        before.is_none_or(|(_, s)| s.range.end <= r.start)
    }

    /// Replace `r` by `slot`, unless it overlaps a replacement already made, the same
    /// slot stands for another value in this message, or a literal `{` comes right
    /// before it (`{{{` cannot be written without the `hex:` slot).
    fn claim(&mut self, r: Range<usize>, slot: String) -> bool {
        let Some(value) = self.msg.get(r.clone()) else {
            return false;
        };
        if r.is_empty() || !self.free(&r) {
            return false;
        }
        if r.start > 0 && self.msg.get(r.start - 1) == Some(&b'{') {
            return false;
        }
        match self.values.get(&slot) {
            Some(v) if v != value => return false,
            Some(_) => {}
            None => {
                self.values.insert(slot.clone(), value.to_vec());
            }
        }
        self.subs.insert(
            r.start,
            Sub {
                range: r,
                slot,
                value: value.to_vec(),
            },
        );
        true
    }
}

/// The slots of `msg` (sent by the side `view` describes), sorted by position.
pub fn substitutions(msg: &[u8], head: &Head, view: &View<'_>, r: &mut dyn Resolve) -> Vec<Sub> {
    let mut s = Subs {
        msg,
        subs: BTreeMap::new(),
        values: HashMap::new(),
    };
    let start = head.start(msg);
    let is_request = matches!(start, Some(Start::Request { .. }));
    let mut done = vec![false; head.fields.len()];
    if !is_request && let Some(last) = view.last {
        copied_from_last(&mut s, head, last, &mut done, r);
    }
    let mut first_via = true;
    for (i, f) in head.fields.iter().enumerate() {
        if done[i] {
            continue;
        }
        match f.kind {
            HeaderName::CallId => {
                let v = trimmed(msg, f.value.clone());
                if msg.get(v.clone()) == Some(view.call_id) {
                    s.claim(v, "call_id".into());
                }
            }
            HeaderName::CSeq => {
                let v = trimmed(msg, f.value.clone());
                let digits = leading_digits(msg, v.start, v.end);
                if let Some(n) = parse_u32(&msg[digits.clone()])
                    && let Some(slot) = r.cseq(n)
                {
                    s.claim(digits, slot);
                }
            }
            HeaderName::ContentLength => {
                let v = trimmed(msg, f.value.clone());
                let body = head.body(msg).len();
                if head.body_start.is_some() && msg[v.clone()] == *body.to_string().as_bytes() {
                    s.claim(v, "len".into());
                }
            }
            HeaderName::Via => {
                via(&mut s, f, first_via && is_request, view, r);
                first_via = false;
            }
            HeaderName::From | HeaderName::To => {
                for p in params(msg, f.value.clone()) {
                    if msg[p.name.clone()].eq_ignore_ascii_case(b"tag")
                        && let Some(slot) = r.tag(&msg[p.value.clone()])
                    {
                        s.claim(p.value, slot);
                    }
                }
            }
            _ => {}
        }
    }
    // Addresses last: a value claimed above (a Call-ID holding an IP) stays whole.
    if let Some(Start::Request { uri, .. }) = start {
        addresses(&mut s, uri, Place::RequestUri, is_request, view);
    }
    for (i, f) in head.fields.iter().enumerate() {
        if done[i] || matches!(f.kind, HeaderName::CallId | HeaderName::CSeq) {
            continue;
        }
        let place = match f.kind {
            HeaderName::Via => Place::Via,
            HeaderName::From => Place::From,
            HeaderName::To => Place::To,
            _ => Place::Other,
        };
        addresses(&mut s, f.value.clone(), place, is_request, view);
    }
    if let Some(b) = head.body_start {
        sdp(&mut s, b, is_request, view);
    }
    s.subs.into_values().collect()
}

/// Response lines that repeat the last received message's lines of the same name
/// (all of them, in order, next to each other) become `{{ last.<name> }}`; a To line
/// that is the request's plus our tag becomes `{{ last.to }};tag=…`.
fn copied_from_last(
    s: &mut Subs<'_>,
    head: &Head,
    last: &[u8],
    done: &mut [bool],
    r: &mut dyn Resolve,
) {
    let Ok(l) = message::parse(last) else {
        return;
    };
    let msg = s.msg;
    for (kind, slot) in [
        (HeaderName::Via, "last.via"),
        (HeaderName::From, "last.from"),
        (HeaderName::To, "last.to"),
        (HeaderName::CSeq, "last.cseq"),
        (HeaderName::RecordRoute, "last.record-route"),
    ] {
        let ours: Vec<usize> = (0..head.fields.len())
            .filter(|&i| head.fields[i].kind == kind)
            .collect();
        let theirs: Vec<&[u8]> = l.headers_of(kind).map(|h| h.raw).collect();
        let (Some(&first), Some(&end)) = (ours.first(), ours.last()) else {
            continue;
        };
        if theirs.is_empty() || end - first + 1 != ours.len() {
            continue;
        }
        let block = head.fields[first].line.start..head.fields[end].line.end;
        if msg[block.clone()] == *theirs.join(&b"\r\n"[..]) {
            if s.claim(block, slot.into()) {
                for d in &mut done[first..=end] {
                    *d = true;
                }
            }
            continue;
        }
        // To with the tag this side adds to the request's To.
        if kind == HeaderName::To && ours.len() == 1 && theirs.len() == 1 {
            let f = &head.fields[first];
            let line = &msg[f.line.clone()];
            let Some(rest) = line.strip_prefix(theirs[0]) else {
                continue;
            };
            let Some(tag) = rest.strip_prefix(b";tag=") else {
                continue;
            };
            let tag_at = f.line.start + theirs[0].len() + 5;
            if tag.is_empty() || tag.iter().any(|b| matches!(b, b';' | b',' | b' ' | b'\t')) {
                continue;
            }
            let Some(tag_slot) = r.tag(tag) else {
                continue;
            };
            let copied = f.line.start..f.line.start + theirs[0].len();
            if s.claim(copied.clone(), slot.into()) {
                s.claim(tag_at..f.line.end, tag_slot);
                done[first] = true;
            }
        }
    }
}

fn via(s: &mut Subs<'_>, f: &Field, top_of_request: bool, view: &View<'_>, r: &mut dyn Resolve) {
    let msg = s.msg;
    // `SIP/2.0/UDP`: the transport, when written as the run writes it.
    let v = f.value.clone();
    let mut i = v.start;
    while let Some(at) = find_ci(msg, i, v.end, b"SIP/2.0/") {
        let t = at + 8;
        let mut e = t;
        while e < v.end && msg[e].is_ascii_alphanumeric() {
            e += 1;
        }
        if msg[t..e] == *view.transport.as_bytes() {
            s.claim(t..e, "transport".into());
        }
        i = e.max(at + 1);
    }
    let mut top = top_of_request;
    for p in params(msg, v) {
        let name = &msg[p.name.clone()];
        if name.eq_ignore_ascii_case(b"branch") {
            if let Some(slot) = r.branch(&msg[p.value.clone()], top) {
                s.claim(p.value.clone(), slot);
            }
            top = false;
        } else if name.eq_ignore_ascii_case(b"rport")
            && let Some(port) = parse_u32(&msg[p.value.clone()])
        {
            let (own, peer) = (view.own.port(), view.peer.port());
            let slot = match (port == u32::from(own), port == u32::from(peer)) {
                (true, false) => Some("local_port"),
                (false, true) => Some("remote_port"),
                (true, true) if top_of_request => Some("local_port"),
                (true, true) => Some("remote_port"),
                _ => None,
            };
            if let Some(slot) = slot {
                s.claim(p.value, slot.into());
            }
        }
    }
}

/// A `;name=value` parameter of a header value.
struct Param {
    name: Range<usize>,
    value: Range<usize>,
}

/// `;name=value` parameters anywhere in `r` (inside a URI too: `tag=` and `branch=`
/// are only looked for by name, which is how every parser finds them).
fn params(msg: &[u8], r: Range<usize>) -> Vec<Param> {
    let mut out = Vec::new();
    let mut i = r.start;
    while i < r.end {
        if msg[i] != b';' {
            i += 1;
            continue;
        }
        let mut n = i + 1;
        while n < r.end && matches!(msg[n], b' ' | b'\t') {
            n += 1;
        }
        let name_start = n;
        while n < r.end && crate::sip::header::is_token_byte(msg[n]) {
            n += 1;
        }
        let name = name_start..n;
        while n < r.end && matches!(msg[n], b' ' | b'\t') {
            n += 1;
        }
        if n < r.end && msg[n] == b'=' && !name.is_empty() {
            n += 1;
            while n < r.end && matches!(msg[n], b' ' | b'\t') {
                n += 1;
            }
            let value_start = n;
            while n < r.end && !matches!(msg[n], b';' | b',' | b' ' | b'\t' | b'\r' | b'\n' | b'>')
            {
                n += 1;
            }
            out.push(Param {
                name,
                value: value_start..n,
            });
        }
        i = n.max(i + 1);
    }
    out
}

/// The value of the first `;name=value` parameter called `name` (any case) in `r`.
pub fn param(msg: &[u8], r: Range<usize>, name: &str) -> Option<Range<usize>> {
    params(msg, r)
        .into_iter()
        .find(|p| msg[p.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
        .map(|p| p.value)
}

fn find_ci(msg: &[u8], from: usize, to: usize, needle: &[u8]) -> Option<usize> {
    let hay = msg.get(from..to)?;
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|p| from + p)
}

fn leading_digits(msg: &[u8], from: usize, to: usize) -> Range<usize> {
    let mut e = from;
    while e < to && msg[e].is_ascii_digit() {
        e += 1;
    }
    from..e
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

/// An IP literal in `msg` at `i`: its range (brackets included for IPv6), the
/// address, and the range of a `:port` after it.
fn ip_at(msg: &[u8], i: usize, end: usize) -> Option<(Range<usize>, IpAddr, Option<Range<usize>>)> {
    let (ip_range, ip) = if msg[i] == b'[' {
        // An IPv6 literal is at most 45 characters: a longer search would make a
        // header full of `[` quadratic.
        let window = msg.get(i + 1..end.min(i + 48))?;
        let close = i + 1 + memchr::memchr(b']', window)?;
        let text = std::str::from_utf8(&msg[i + 1..close]).ok()?;
        let ip: std::net::Ipv6Addr = text.parse().ok()?;
        (i..close + 1, IpAddr::V6(ip))
    } else {
        if !msg[i].is_ascii_digit() || (i > 0 && is_host_byte(msg[i - 1])) {
            return None;
        }
        let mut e = i;
        while e < end && (msg[e].is_ascii_digit() || msg[e] == b'.') {
            e += 1;
        }
        if e < end && is_host_byte(msg[e]) {
            return None;
        }
        let text = std::str::from_utf8(&msg[i..e]).ok()?;
        let ip: std::net::Ipv4Addr = text.parse().ok()?;
        (i..e, IpAddr::V4(ip))
    };
    let mut port = None;
    let p = ip_range.end;
    if p + 1 < end && msg[p] == b':' && msg[p + 1].is_ascii_digit() {
        let digits = leading_digits(msg, p + 1, end);
        if digits.len() <= 5 && !(digits.end < end && is_host_byte(msg[digits.end])) {
            port = Some(digits);
        }
    }
    Some((ip_range, ip, port))
}

/// The two endpoints' addresses in `r`.
fn addresses(s: &mut Subs<'_>, r: Range<usize>, place: Place, is_request: bool, view: &View<'_>) {
    let msg = s.msg;
    let mut i = r.start;
    while i < r.end {
        let Some((ip_range, ip, port)) = ip_at(msg, i, r.end) else {
            i += 1;
            continue;
        };
        i = port.as_ref().map_or(ip_range.end, |p| p.end);
        let port_value = port.as_ref().and_then(|p| parse_u32(&msg[p.clone()]));
        let own = ip == view.own.ip();
        let peer = ip == view.peer.ip();
        let side = match port_value {
            Some(p) if own && p == u32::from(view.own.port()) => Some(true),
            Some(p) if peer && p == u32::from(view.peer.port()) => Some(false),
            _ => None,
        };
        if let (Some(local), Some(port)) = (side, port.clone()) {
            let (ip_slot, port_slot) = if local {
                ("local_ip", "local_port")
            } else {
                ("remote_ip", "remote_port")
            };
            let whole = ip_range.start..port.end;
            if s.free(&whole) && s.claim(ip_range.clone(), ip_slot.into()) {
                s.claim(port, port_slot.into());
            }
            continue;
        }
        let local = match (own, peer) {
            (true, false) => true,
            (false, true) => false,
            (false, false) => continue,
            // Same IP on both sides: where it is written says whose it is.
            (true, true) => match place {
                Place::RequestUri => false,
                Place::Via | Place::From => is_request,
                Place::To => !is_request,
                Place::Other => true,
            },
        };
        s.claim(
            ip_range,
            if local { "local_ip" } else { "remote_ip" }.into(),
        );
    }
}

/// SDP written by this side: the `c=` address (and an `o=` address equal to it) is
/// `{{ media_ip }}`, the address type before it `{{ media_ip_type }}`, the first
/// non-zero `m=` port `{{ media_port }}`. Other addresses of the endpoints are
/// treated as in headers.
fn sdp(s: &mut Subs<'_>, body_start: usize, is_request: bool, view: &View<'_>) {
    let msg = s.msg;
    let body = &msg[body_start..];
    if !(body.starts_with(b"v=0\r\n") || body.starts_with(b"v=0\n")) {
        return;
    }
    let mut lines = Vec::new();
    let mut pos = body_start;
    while pos < msg.len() {
        let nl = memchr::memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i);
        let end = if nl > pos && msg[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        lines.push(pos..end);
        pos = nl + 1;
    }
    let words = |r: &Range<usize>| -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut i = r.start + 2;
        while i < r.end {
            while i < r.end && msg[i] == b' ' {
                i += 1;
            }
            let st = i;
            while i < r.end && msg[i] != b' ' {
                i += 1;
            }
            if st < i {
                out.push(st..i);
            }
        }
        out
    };
    // The media address: the first `c=` line's, when it is an IP literal.
    let media = lines
        .iter()
        .filter(|l| msg[(*l).clone()].starts_with(b"c="))
        .find_map(|l| {
            let w = words(l);
            let addr = w.get(2)?.clone();
            let addr = addr.start
                ..memchr::memchr(b'/', &msg[addr.clone()]).map_or(addr.end, |i| addr.start + i);
            let ip: IpAddr = std::str::from_utf8(&msg[addr.clone()]).ok()?.parse().ok()?;
            Some((msg[addr].to_vec(), ip))
        });
    let mut first_m = true;
    for l in &lines {
        let line = &msg[l.clone()];
        let w = words(l);
        let (typ, addr) = if line.starts_with(b"c=") {
            (w.get(1).cloned(), w.get(2).cloned())
        } else if line.starts_with(b"o=") {
            (w.get(4).cloned(), w.get(5).cloned())
        } else {
            (None, None)
        };
        if let (Some(typ), Some(addr), Some((media_text, media_ip))) = (typ, addr, &media) {
            let addr = addr.start
                ..memchr::memchr(b'/', &msg[addr.clone()]).map_or(addr.end, |i| addr.start + i);
            if msg[addr.clone()] == **media_text && s.claim(addr.clone(), "media_ip".into()) {
                let want: &[u8] = if media_ip.is_ipv4() { b"IP4" } else { b"IP6" };
                if msg[typ.clone()] == *want {
                    s.claim(typ, "media_ip_type".into());
                }
                continue;
            }
        }
        if line.starts_with(b"m=") && first_m {
            if let Some(port) = w.get(1) {
                let digits = leading_digits(msg, port.start, port.end);
                if parse_u32(&msg[digits.clone()]).is_some_and(|p| p != 0) {
                    first_m = !s.claim(digits, "media_port".into());
                }
            }
            continue;
        }
        if line.starts_with(b"c=") || line.starts_with(b"o=") {
            addresses(s, l.clone(), Place::Other, is_request, view);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tags, branches and CSeq numbers resolved from fixed lists.
    struct Fixed;
    impl Resolve for Fixed {
        fn tag(&mut self, value: &[u8]) -> Option<String> {
            match value {
                b"uac-tag" => Some("from_tag".into()),
                b"uas-tag" => Some("to_tag".into()),
                _ => None,
            }
        }
        fn branch(&mut self, _: &[u8], top: bool) -> Option<String> {
            top.then(|| "branch".into())
        }
        fn cseq(&mut self, _: u32) -> Option<String> {
            Some("cseq".into())
        }
    }

    fn render(msg: &[u8], subs: &[Sub]) -> String {
        let mut out = Vec::new();
        let mut pos = 0;
        for s in subs {
            out.extend_from_slice(&msg[pos..s.range.start]);
            out.extend_from_slice(format!("{{{{ {} }}}}", s.slot).as_bytes());
            pos = s.range.end;
        }
        out.extend_from_slice(&msg[pos..]);
        String::from_utf8(out).unwrap()
    }

    /// The substitutions in `m` seen from `own` talking to `peer`.
    fn subs_of(m: &[u8], own: &str, peer: &str, last: Option<&[u8]>) -> Vec<Sub> {
        substitutions(m, &Head::scan(m), &view(own, peer, last), &mut Fixed)
    }

    fn view<'a>(own: &str, peer: &str, last: Option<&'a [u8]>) -> View<'a> {
        View {
            own: own.parse().unwrap(),
            peer: peer.parse().unwrap(),
            call_id: b"abc@10.0.0.1",
            transport: "UDP",
            last,
        }
    }

    const INVITE: &str = "INVITE sip:bob@10.0.0.2:5070 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
        From: \"A\" <sip:alice@10.0.0.1:5060>;tag=uac-tag\r\n\
        To: <sip:bob@10.0.0.2:5070>\r\n\
        Call-ID: abc@10.0.0.1\r\n\
        CSeq: 7 INVITE\r\n\
        Contact: <sip:alice@10.0.0.1:5060>\r\n\
        X-Other: 10.0.0.1 10.0.0.9:5060 [::1]:5060 110.0.0.1\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 71\r\n\r\n\
        v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn request_from_the_uac() {
        let m = INVITE.as_bytes();
        let subs = subs_of(m, "10.0.0.1:5060", "10.0.0.2:5070", None);
        assert_eq!(
            render(m, &subs),
            "INVITE sip:bob@{{ remote_ip }}:{{ remote_port }} SIP/2.0\r\n\
            Via: SIP/2.0/{{ transport }} {{ local_ip }}:{{ local_port }};branch={{ branch }};rport\r\n\
            From: \"A\" <sip:alice@{{ local_ip }}:{{ local_port }}>;tag={{ from_tag }}\r\n\
            To: <sip:bob@{{ remote_ip }}:{{ remote_port }}>\r\n\
            Call-ID: {{ call_id }}\r\n\
            CSeq: {{ cseq }} INVITE\r\n\
            Contact: <sip:alice@{{ local_ip }}:{{ local_port }}>\r\n\
            X-Other: {{ local_ip }} 10.0.0.9:5060 [::1]:5060 110.0.0.1\r\n\
            Content-Type: application/sdp\r\n\
            Content-Length: 71\r\n\r\n\
            v=0\r\no=- 1 1 IN {{ media_ip_type }} {{ media_ip }}\r\ns=-\r\nc=IN {{ media_ip_type }} {{ media_ip }}\r\nt=0 0\r\nm=audio {{ media_port }} RTP/AVP 0\r\n"
        );
    }

    #[test]
    fn wrong_content_length_stays() {
        let m = b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 3\r\nl: 2\r\n\r\nab";
        let subs = subs_of(m, "10.0.0.1:5060", "10.0.0.2:5070", None);
        assert_eq!(
            render(m, &subs),
            "MESSAGE sip:x SIP/2.0\r\nContent-Length: 3\r\nl: {{ len }}\r\n\r\nab"
        );
    }

    #[test]
    fn response_copies_the_request() {
        let req = INVITE.as_bytes();
        let resp = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5060;received=10.0.0.1\r\n\
            From: \"A\" <sip:alice@10.0.0.1:5060>;tag=uac-tag\r\n\
            To: <sip:bob@10.0.0.2:5070>;tag=uas-tag\r\n\
            Call-ID: abc@10.0.0.1\r\n\
            CSeq: 7 INVITE\r\n\
            Contact: <sip:10.0.0.2:5070;transport=UDP>\r\n\
            Content-Length: 0\r\n\r\n";
        let m = resp.as_bytes();
        let subs = subs_of(m, "10.0.0.2:5070", "10.0.0.1:5060", Some(req));
        assert_eq!(
            render(m, &subs),
            "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/{{ transport }} {{ remote_ip }}:{{ remote_port }};branch=z9hG4bK1;rport={{ remote_port }};received={{ remote_ip }}\r\n\
            {{ last.from }}\r\n\
            {{ last.to }};tag={{ to_tag }}\r\n\
            Call-ID: {{ call_id }}\r\n\
            {{ last.cseq }}\r\n\
            Contact: <sip:{{ local_ip }}:{{ local_port }};transport=UDP>\r\n\
            Content-Length: {{ len }}\r\n\r\n"
        );
    }

    #[test]
    fn loopback_addresses_by_place() {
        let m = b"BYE sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nFrom: <sip:127.0.0.1>\r\nTo: <sip:127.0.0.1>\r\nContact: <sip:127.0.0.1:5061>\r\n\r\n";
        let subs = subs_of(m, "127.0.0.1:5061", "127.0.0.1:5060", None);
        assert_eq!(
            render(m, &subs),
            "BYE sip:{{ remote_ip }} SIP/2.0\r\nVia: SIP/2.0/{{ transport }} {{ local_ip }}\r\nFrom: <sip:{{ local_ip }}>\r\nTo: <sip:{{ remote_ip }}>\r\nContact: <sip:{{ local_ip }}:{{ local_port }}>\r\n\r\n"
        );
    }

    #[test]
    fn ipv6_in_brackets_and_in_sdp() {
        let m = b"INVITE sip:bob@[2001:db8::2]:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;received=2001:db8::1\r\n\
            Contact: <sip:alice@[2001:db8::1]>\r\n\r\n\
            v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\nc=IN IP6 2001:db8::1\r\nm=audio 4000 RTP/AVP 0\r\n";
        let v = view("[2001:db8::1]:5060", "[2001:db8::2]:5070", None);
        let subs = substitutions(m, &Head::scan(m), &v, &mut Fixed);
        assert_eq!(
            render(m, &subs),
            "INVITE sip:bob@{{ remote_ip }}:{{ remote_port }} SIP/2.0\r\n\
            Via: SIP/2.0/{{ transport }} {{ local_ip }}:{{ local_port }};branch={{ branch }};received=2001:db8::1\r\n\
            Contact: <sip:alice@{{ local_ip }}>\r\n\r\n\
            v=0\r\no=- 1 1 IN {{ media_ip_type }} {{ media_ip }}\r\nc=IN {{ media_ip_type }} {{ media_ip }}\r\nm=audio {{ media_port }} RTP/AVP 0\r\n"
        );
    }

    #[test]
    fn a_brace_before_a_value_keeps_it() {
        let m = b"MESSAGE sip:x SIP/2.0\r\nX: {10.0.0.1}\r\nCall-ID: {abc@10.0.0.1\r\n\r\n";
        let subs = subs_of(m, "10.0.0.1:5060", "10.0.0.2:5070", None);
        assert!(subs.is_empty(), "{subs:?}");
    }
}

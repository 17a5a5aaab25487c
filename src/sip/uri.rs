//! SIP/SIPS URIs (lenient): enough for routing decisions (host, port, `lr`, `transport`).

use super::header::{find_byte, find_param, parse_port, trim_lws};

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

fn is_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Characters never allowed unescaped in a host (or in a URI at all); catching
/// them lets `parse` reject `<sip:..>` and `a b` style mistakes.
fn bad_host_byte(b: u8) -> bool {
    b.is_ascii_whitespace()
        || b.is_ascii_control()
        || matches!(b, b'<' | b'>' | b'"' | b'@' | b'[' | b']' | b',' | b'/')
}

/// Position of the `@` that ends the userinfo, if any.
fn userinfo_end(rest: &str) -> Option<usize> {
    // The user part may legally contain ';' and '?' (user-unreserved) but not
    // an unescaped '@'; headers after '?' must not contain '@' either, yet
    // `?Replaces=id@host` is common in the wild. So: the last '@' before the
    // first '?' wins; failing that, a later '@' counts only when the text
    // after that '?' does not look like `name=value` headers.
    let q = find_byte(rest, b'?').unwrap_or(rest.len());
    if let Some(at) = rest.as_bytes()[..q].iter().rposition(|&c| c == b'@') {
        return Some(at);
    }
    let at = q + find_byte(rest.get(q..)?, b'@')?;
    if rest[q..at].contains('=') {
        None
    } else {
        Some(at)
    }
}

impl<'a> SipUri<'a> {
    /// Parses `sip:user@host:port;params?headers`; angle brackets are not accepted here.
    ///
    /// `user` excludes a `:password`. For schemes other than sip/sips whose
    /// remainder is not `user@host:port`-shaped (`tel:+1-555;ext=1`,
    /// `urn:service:sos`), `host` is the opaque part before the first ';'.
    pub fn parse(s: &'a str) -> Option<SipUri<'a>> {
        let s = trim_lws(s);
        let colon = find_byte(s, b':')?;
        let scheme = &s[..colon];
        if !is_scheme(scheme) {
            return None;
        }
        let rest = &s[colon + 1..];
        if rest.is_empty()
            || rest
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b'<' || b == b'>')
        {
            return None;
        }
        let is_sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
        match Self::parse_server(scheme, rest) {
            Some(u) => Some(u),
            None if !is_sip => {
                let q = rest.find('?').unwrap_or(rest.len());
                let semi = rest[..q].find(';').unwrap_or(q);
                let host = &rest[..semi];
                if host.is_empty() {
                    return None;
                }
                Some(SipUri {
                    scheme,
                    user: None,
                    host,
                    port: None,
                    params: &rest[semi..q],
                })
            }
            None => None,
        }
    }

    fn parse_server(scheme: &'a str, rest: &'a str) -> Option<SipUri<'a>> {
        let (user, hostpart) = match userinfo_end(rest) {
            Some(at) => {
                let info = &rest[..at];
                let user = find_byte(info, b':').map_or(info, |c| &info[..c]);
                ((!user.is_empty()).then_some(user), &rest[at + 1..])
            }
            None => (None, rest),
        };
        let b = hostpart.as_bytes();
        let (host, after_host) = if b.first() == Some(&b'[') {
            let close = find_byte(hostpart, b']')?;
            (&hostpart[1..close], close + 1)
        } else {
            let end = hostpart
                .bytes()
                .position(|c| matches!(c, b':' | b';' | b'?'))
                .unwrap_or(hostpart.len());
            (&hostpart[..end], end)
        };
        if host.is_empty() || host.bytes().any(bad_host_byte) {
            return None;
        }
        let tail = &hostpart[after_host..];
        let (port, tail) = match tail.strip_prefix(':') {
            Some(p) => {
                let end = p
                    .bytes()
                    .position(|c| matches!(c, b';' | b'?'))
                    .unwrap_or(p.len());
                (Some(parse_port(&p[..end])?), &p[end..])
            }
            None => (None, tail),
        };
        if !(tail.is_empty() || tail.starts_with(';') || tail.starts_with('?')) {
            return None;
        }
        let q = find_byte(tail, b'?').unwrap_or(tail.len());
        Some(SipUri {
            scheme,
            user,
            host,
            port,
            params: &tail[..q],
        })
    }

    /// URI parameter value (case-insensitive name); `Some("")` for flags like `lr`.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        find_param(self.params, name, false)
    }
    /// True when the URI carries `;lr` (loose routing, RFC 3261 §19.1.1).
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> SipUri<'_> {
        SipUri::parse(s).unwrap_or_else(|| panic!("{s:?} should parse"))
    }

    #[test]
    fn plain_forms() {
        let u = p("sip:alice@atlanta.example.com:5070;transport=TCP;lr?subject=x");
        assert_eq!(u.scheme, "sip");
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.host, "atlanta.example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params, ";transport=TCP;lr");
        assert_eq!(u.param("Transport"), Some("TCP"));
        assert_eq!(u.param("LR"), Some(""));
        assert!(u.is_loose_route());
        assert_eq!(u.param("subject"), None);

        let u = p("sips:192.0.2.1");
        assert_eq!(
            (u.scheme, u.user, u.host, u.port, u.params),
            ("sips", None, "192.0.2.1", None, "")
        );

        let u = p("SIP:proxy.example;lr");
        assert_eq!(u.scheme, "SIP");
        assert!(u.is_loose_route());
    }

    #[test]
    fn ipv6_hosts() {
        let u = p("sip:bob@[2001:db8::10]:5061;maddr=[2001:db8::1]");
        assert_eq!(u.host, "2001:db8::10");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("maddr"), Some("[2001:db8::1]"));
        let u = p("sip:[::1]");
        assert_eq!((u.host, u.port), ("::1", None));
        assert_eq!(SipUri::parse("sip:[::1"), None);
    }

    #[test]
    fn unusual_user_parts() {
        // user params with ';' before the '@', escapes, and a password.
        let u = p("sip:+1-212-555-1212;phone-context=example.com@gw.example;user=phone");
        assert_eq!(u.user, Some("+1-212-555-1212;phone-context=example.com"));
        assert_eq!(u.host, "gw.example");
        assert_eq!(u.param("user"), Some("phone"));

        let u = p("sip:%61lice%40x:secret@h.example:5060");
        assert_eq!(u.user, Some("%61lice%40x"));
        assert_eq!(u.host, "h.example");

        let u = p("sip:a?b@h.example");
        assert_eq!(u.user, Some("a?b"));
        assert_eq!(u.host, "h.example");

        let u = p("sip:bob@h.example?Replaces=call%40x;to-tag=1");
        assert_eq!((u.user, u.host, u.params), (Some("bob"), "h.example", ""));

        // Unescaped '@' in headers (seen in the wild) must not move the host.
        let u = p("sip:h.example?Replaces=id@elsewhere");
        assert_eq!((u.user, u.host), (None, "h.example"));
    }

    #[test]
    fn other_schemes() {
        let u = p("tel:+1-201-555-0123;ext=44");
        assert_eq!(u.scheme, "tel");
        assert_eq!(u.host, "+1-201-555-0123");
        assert_eq!(u.param("ext"), Some("44"));
        let u = p("urn:service:sos");
        assert_eq!(u.host, "service:sos");
        let u = p("mailto:x@example.org");
        assert_eq!((u.user, u.host), (Some("x"), "example.org"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "sip:",
            "sip",
            "<sip:a@b>",
            "sip:a@",
            "sip:a@b:99999",
            "sip:a@b:x",
            "sip:a@b c",
            "sip:a@b:1:2",
            "1sip:a@b",
            "sip:a@b junk",
            "sip:@",
        ] {
            assert_eq!(SipUri::parse(bad), None, "{bad:?}");
        }
    }
}

//! REGISTER from the client's side (RFC 3261 §10.2): what a UAC reads from a
//! registrar's answers. Plain functions over parsed messages; the interpreter
//! (`scenario/call/register.rs`) keeps the little state a call needs.
//!
//! - A 2xx lists every current binding of the address-of-record, ours among them
//!   (§10.3 step 8): [`granted_expiry`] finds our Contact(s) there and the expiry
//!   the registrar granted (it may shorten what we asked for), which sets when a
//!   refresh is due. Our Contact missing from the list means the registration did
//!   not take, however the status reads.
//! - 423 Interval Too Brief carries `Min-Expires` (§10.2.8): [`min_expires`], and
//!   [`write_with_expiry`] builds the request again asking for that.
//! - `Service-Route` (RFC 3608) in the 2xx is the route the registrar wants this
//!   UA's later requests to take: [`write_service_route`] turns it into `Route:`
//!   lines for them.

use std::borrow::Cow;

use super::build;
use super::header::{HeaderName, NameAddr};
use super::message::Message;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("the 2xx does not list our Contact {ours} among the bindings ({listed})")]
    ContactMissing { ours: String, listed: String },
}

/// The expiry (seconds) the registrar granted to our binding, from its 2xx to
/// `request`: the smallest over the request's Contacts, each read from its own
/// `expires=` in the response's list, else the response's `Expires`, else what we
/// asked for. `None` when the request did not add a binding (a query without
/// Contact, `Contact: *`, or `Expires: 0`: a removal leaves nothing to find).
/// Contacts are matched by URI, case-insensitively (registrars echo the URI we sent;
/// they add parameters after it such as `expires` or `received`).
pub fn granted_expiry(
    request: &Message<'_>,
    response: &Message<'_>,
) -> Result<Option<u32>, RegistrationError> {
    let asked_default = header_u32(request, "Expires");
    if asked_default == Some(0) {
        return Ok(None);
    }
    let ours = request.values_of(HeaderName::Contact);
    if ours.is_empty() || ours.iter().any(|c| c.trim() == "*") {
        return Ok(None);
    }
    let listed = response.values_of(HeaderName::Contact);
    let response_default = header_u32(response, "Expires");
    let mut granted: Option<u32> = None;
    for our in &ours {
        let Some(our) = NameAddr::parse(our) else {
            continue;
        };
        let asked = param_u32(&our, "expires").or(asked_default);
        if asked == Some(0) {
            continue;
        }
        let found = listed
            .iter()
            .filter_map(|c| NameAddr::parse(c))
            .find(|c| c.uri.eq_ignore_ascii_case(our.uri));
        let Some(binding) = found else {
            return Err(RegistrationError::ContactMissing {
                ours: our.uri.to_string(),
                listed: list_text(&listed),
            });
        };
        let expiry = param_u32(&binding, "expires")
            .or(response_default)
            .or(asked)
            .unwrap_or(3600);
        granted = Some(granted.map_or(expiry, |g| g.min(expiry)));
    }
    Ok(granted)
}

/// `Min-Expires` of a 423 Interval Too Brief.
pub fn min_expires(response: &Message<'_>) -> Option<u32> {
    response
        .headers_named("Min-Expires")
        .next()
        .and_then(|h| h.value().trim().parse().ok())
}

/// `Route:` lines (CRLF-separated, no final CRLF) for the `Service-Route` values of
/// a REGISTER's 2xx, in order; nothing when there are none.
pub fn write_service_route(response: &Message<'_>, out: &mut Vec<u8>) {
    for h in response.headers_named("Service-Route") {
        for value in super::header::split_comma(&h.value()) {
            if !out.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"Route: ");
            out.extend_from_slice(value.trim().as_bytes());
        }
    }
}

/// `request` again after a 423: a new branch, CSeq `cseq`, and the expiry
/// `expires` wherever the request asked for one (the `Expires` header and each
/// Contact's `expires=`); an `Expires` header is added when neither was there.
pub fn write_with_expiry(
    request: &Message<'_>,
    branch: &str,
    cseq: u32,
    expires: u32,
    out: &mut Vec<u8>,
) {
    let had_expires = request.headers_named("Expires").next().is_some()
        || request
            .values_of(HeaderName::Contact)
            .iter()
            .filter_map(|c| NameAddr::parse(c))
            .any(|c| c.param("expires").is_some());
    let added = if had_expires {
        Vec::new()
    } else {
        format!("Expires: {expires}\r\n").into_bytes()
    };
    build::resend(
        request,
        branch,
        cseq,
        |h, value, out| {
            if h.is("Expires") {
                out.extend_from_slice(format!("Expires: {expires}\r\n").as_bytes());
                return true;
            }
            if h.kind != HeaderName::Contact {
                return false;
            }
            let text = String::from_utf8_lossy(value);
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            for (i, c) in super::header::split_comma(&text).enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(set_expires_param(c.trim(), expires).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            true
        },
        &added,
        out,
    );
}

/// A Contact value with its `expires=` header parameter (when it has one) set.
fn set_expires_param(contact: &str, expires: u32) -> Cow<'_, str> {
    let Some(na) = NameAddr::parse(contact) else {
        return Cow::Borrowed(contact);
    };
    if na.param("expires").is_none() {
        return Cow::Borrowed(contact);
    }
    let params_at = contact.len() - na.params.len();
    let params: Vec<String> = na
        .params
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let name = p.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("expires") {
                format!("expires={expires}")
            } else {
                p.trim().to_string()
            }
        })
        .collect();
    Cow::Owned(format!("{};{}", &contact[..params_at], params.join(";")))
}

fn header_u32(m: &Message<'_>, name: &str) -> Option<u32> {
    m.headers_named(name).next()?.value().trim().parse().ok()
}

fn param_u32(na: &NameAddr<'_>, name: &str) -> Option<u32> {
    na.param(name)?.trim().parse().ok()
}

fn list_text(listed: &[Cow<'_, str>]) -> String {
    if listed.is_empty() {
        return "none".into();
    }
    let mut text = listed
        .iter()
        .take(3)
        .map(|c| c.trim().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if listed.len() > 3 {
        text.push_str(&format!(" and {} more", listed.len() - 3));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse;

    const REQ: &str = "REGISTER sip:reg.test SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport\r\n\
        From: <sip:alice@reg.test>;tag=a\r\n\
        To: <sip:alice@reg.test>\r\n\
        Call-ID: c1\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:alice@10.0.0.1:5070>\r\n\
        Expires: 60\r\n\
        Content-Length: 0\r\n\r\n";

    fn ok(extra: &str) -> String {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    fn granted(req: &str, resp: &str) -> Result<Option<u32>, RegistrationError> {
        granted_expiry(
            &parse(req.as_bytes()).unwrap(),
            &parse(resp.as_bytes()).unwrap(),
        )
    }

    #[test]
    fn our_binding_among_several_gives_its_own_expiry() {
        let resp = ok(
            "Contact: <sip:alice@192.0.2.9:5060>;expires=3000, <SIP:alice@10.0.0.1:5070>;expires=30;received=\"sip:1.2.3.4\"\r\nContact: <sip:alice@192.0.2.10>;expires=10\r\n",
        );
        assert_eq!(granted(REQ, &resp), Ok(Some(30)));
        // No expires= on the binding: the response's Expires, else what we asked.
        let resp = ok("Contact: <sip:alice@10.0.0.1:5070>\r\nExpires: 45\r\n");
        assert_eq!(granted(REQ, &resp), Ok(Some(45)));
        let resp = ok("Contact: <sip:alice@10.0.0.1:5070>\r\n");
        assert_eq!(granted(REQ, &resp), Ok(Some(60)));
    }

    #[test]
    fn a_2xx_without_our_contact_is_an_error_naming_what_it_listed() {
        let resp = ok("Contact: <sip:bob@10.0.0.2>;expires=60\r\n");
        let err = granted(REQ, &resp).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the 2xx does not list our Contact sip:alice@10.0.0.1:5070 among the bindings (<sip:bob@10.0.0.2>;expires=60)"
        );
        let err = granted(REQ, &ok("")).unwrap_err();
        assert!(err.to_string().ends_with("(none)"), "{err}");
    }

    #[test]
    fn removals_and_queries_expect_no_binding() {
        let remove = REQ.replace("Expires: 60", "Expires: 0");
        assert_eq!(granted(&remove, &ok("")), Ok(None));
        let star = REQ
            .replace("<sip:alice@10.0.0.1:5070>", "*")
            .replace("Expires: 60", "Expires: 0");
        assert_eq!(granted(&star, &ok("")), Ok(None));
        let query = REQ.replace("Contact: <sip:alice@10.0.0.1:5070>\r\n", "");
        assert_eq!(granted(&query, &ok("")), Ok(None));
    }

    #[test]
    fn interval_too_brief_is_asked_again_with_min_expires() {
        let resp = parse(
            b"SIP/2.0 423 Interval Too Brief\r\nMin-Expires: 600\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(min_expires(&resp), Some(600));
        let req = REQ.replace(
            "Contact: <sip:alice@10.0.0.1:5070>",
            "Contact: <sip:alice@10.0.0.1:5070>;expires=60;q=0.5",
        );
        let mut out = Vec::new();
        write_with_expiry(
            &parse(req.as_bytes()).unwrap(),
            "z9hG4bK2",
            2,
            600,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("branch=z9hG4bK2;rport\r\n"), "{text}");
        assert!(text.contains("CSeq: 2 REGISTER\r\n"), "{text}");
        assert!(text.contains("Expires: 600\r\n"), "{text}");
        assert!(
            text.contains("Contact: <sip:alice@10.0.0.1:5070>;expires=600;q=0.5\r\n"),
            "{text}"
        );
        // Nothing asked before: an Expires header is added.
        let bare = REQ.replace("Expires: 60\r\n", "");
        let mut out = Vec::new();
        write_with_expiry(
            &parse(bare.as_bytes()).unwrap(),
            "z9hG4bK3",
            3,
            600,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Expires: 600\r\n\r\n"), "{text}");
        assert!(parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn service_route_becomes_route_lines() {
        let resp = ok(
            "Service-Route: <sip:p1.test;lr>, <sip:p2.test;lr>\r\nService-Route: <sip:p3.test;lr>\r\n",
        );
        let mut out = Vec::new();
        write_service_route(&parse(resp.as_bytes()).unwrap(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Route: <sip:p1.test;lr>\r\nRoute: <sip:p2.test;lr>\r\nRoute: <sip:p3.test;lr>"
        );
        let mut out = Vec::new();
        write_service_route(&parse(ok("").as_bytes()).unwrap(), &mut out);
        assert!(out.is_empty());
    }
}

//! Messages built from other messages (RFC 3261): the ACK for a non-2xx final
//! response (§17.1.1.3), CANCEL (§9.1), and a request re-sent with credentials
//! after a 401/407 (§22.2). Output uses CRLF line ends.
//!
//! Header values are copied as bytes (unfolded), not re-rendered from the
//! typed views: the RFC requires From/To/Call-ID/Via to equal the INVITE's,
//! and byte copies keep tags, parameters and even odd encodings intact.
//! Both builders are infallible by contract; given a message that is not a
//! request they append nothing, and a header missing from the source is left
//! out rather than invented.

use super::header::{HeaderName, split_comma_bytes};
use super::message::{Header, Message, unfold_into};

fn line(out: &mut Vec<u8>, name: &str, raw_value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    unfold_into(raw_value, out);
    out.extend_from_slice(b"\r\n");
}

fn copy(out: &mut Vec<u8>, msg: &Message<'_>, kind: HeaderName) {
    if let Some(h) = msg.header(kind) {
        line(out, kind.as_str(), h.raw_value);
    }
}

/// CSeq number of the INVITE; falls back to an unfolded, lossy view so a
/// folded or oddly encoded CSeq still yields its number.
fn cseq_number(invite: &Message<'_>) -> Option<u32> {
    invite.cseq().map(|c| c.seq).or_else(|| {
        let v = invite.header(HeaderName::CSeq)?.value();
        super::header::CSeq::parse(&v).map(|c| c.seq)
    })
}

/// Everything shared by ACK and CANCEL; `to` is the header whose value goes
/// into To.
fn build(method: &str, invite: &Message<'_>, to: Option<&Header<'_>>, out: &mut Vec<u8>) {
    let Some(uri) = invite.request_uri() else {
        return;
    };
    out.reserve(512);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(uri.as_bytes());
    out.extend_from_slice(b" SIP/2.0\r\n");
    // Only the topmost Via value: the response is matched to the same
    // transaction, and a CANCEL/ACK travels hop-by-hop with one Via only.
    if let Some(top) = invite
        .header(HeaderName::Via)
        .and_then(|h| split_comma_bytes(h.raw_value).next())
    {
        line(out, "Via", top);
    }
    for route in invite.headers_of(HeaderName::Route) {
        line(out, "Route", route.raw_value);
    }
    out.extend_from_slice(b"Max-Forwards: 70\r\n");
    copy(out, invite, HeaderName::From);
    if let Some(to) = to {
        line(out, "To", to.raw_value);
    }
    copy(out, invite, HeaderName::CallId);
    if let Some(seq) = cseq_number(invite) {
        out.extend_from_slice(format!("CSeq: {seq} {method}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// ACK for a non-2xx final response, sent inside the INVITE client transaction:
/// Request-URI, Call-ID, From, CSeq number and the single top Via (same branch) of
/// the INVITE; To from the response (it carries the tag); Route headers of the INVITE;
/// `Max-Forwards: 70`, `Content-Length: 0`. Appends to `out`.
pub fn non2xx_ack(invite: &Message<'_>, response: &Message<'_>, out: &mut Vec<u8>) {
    // A response without To is broken, but the INVITE's To still lets the
    // server transaction match the ACK (it matches on the Via branch).
    let to = response
        .header(HeaderName::To)
        .or_else(|| invite.header(HeaderName::To));
    build("ACK", invite, to, out);
}

/// CANCEL for a pending INVITE: same Request-URI, Call-ID, From, To (as in the INVITE,
/// no tag added), CSeq number with method CANCEL, exactly one Via equal to the INVITE's
/// top Via, the INVITE's Route headers, `Max-Forwards: 70`, `Content-Length: 0`.
pub fn cancel(invite: &Message<'_>, out: &mut Vec<u8>) {
    build("CANCEL", invite, invite.header(HeaderName::To), out);
}

/// A response to an in-dialog request answered by the call core itself (an INFO
/// carrying a DTMF digit): every Via, From, To, Call-ID and CSeq copied as received,
/// `Content-Length: 0`. Appends nothing when `req` is not a request.
pub fn response(req: &Message<'_>, code: u16, reason: &str, out: &mut Vec<u8>) {
    response_with_warning(req, code, reason, None, out);
}

/// [`response`] with a `Warning: 399 sipwright "<text>"` header (RFC 3261 §20.43)
/// saying why: the text is kept to one line of printable characters without quotes.
pub fn response_with_warning(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    warning: Option<&str>,
    out: &mut Vec<u8>,
) {
    if req.method().is_none() {
        return;
    }
    out.extend_from_slice(b"SIP/2.0 ");
    super::write_dec(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for via in req.headers_of(HeaderName::Via) {
        line(out, "Via", via.raw_value);
    }
    copy(out, req, HeaderName::From);
    copy(out, req, HeaderName::To);
    copy(out, req, HeaderName::CallId);
    copy(out, req, HeaderName::CSeq);
    if let Some(text) = warning {
        out.extend_from_slice(b"Warning: 399 sipwright \"");
        let clean = text
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '\''
                } else {
                    c
                }
            })
            .take(300);
        for c in clean {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        out.extend_from_slice(b"\"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8;rport, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKold\r\n\
Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKolder\r\n\
Max-Forwards: 69\r\n\
Route: <sip:p1.example.com;lr>,\r\n <sip:p2.example.com;lr>\r\n\
r: <sip:not-a-route@example.com>\r\n\
Route: <sip:p3.example.com;lr>\r\n\
f: \"Alice, A.\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
t: Bob <sip:bob@biloxi.example.com>\r\n\
i: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:alice@192.0.2.10>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    const RESPONSE: &[u8] = b"SIP/2.0 486 Busy Here\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8;rport=5060;received=192.0.2.10\r\n\
From: \"Alice, A.\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Content-Length: 0\r\n\
\r\n";

    #[test]
    fn ack_golden() {
        let invite = parse(INVITE).unwrap();
        let resp = parse(RESPONSE).unwrap();
        let mut out = b"prefix|".to_vec();
        non2xx_ack(&invite, &resp, &mut out);
        let expected = "prefix|ACK sip:bob@biloxi.example.com;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8;rport\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Route: <sip:p3.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
From: \"Alice, A.\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 ACK\r\n\
Content-Length: 0\r\n\
\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn warning_says_why_in_one_clean_line() {
        let invite = parse(INVITE).unwrap();
        let mut out = Vec::new();
        let why = "no usable SRTP crypto: \"AES\"\r\nX: injected";
        response_with_warning(&invite, 488, "Not Acceptable Here", Some(why), &mut out);
        let r = parse(&out).unwrap();
        assert_eq!(r.status(), Some(488));
        let w: Vec<String> = r
            .headers_named("Warning")
            .map(|h| h.value().to_string())
            .collect();
        assert_eq!(
            w,
            ["399 sipwright \"no usable SRTP crypto: 'AES'''X: injected\""]
        );
        assert_eq!(r.headers_named("X").count(), 0);
    }

    #[test]
    fn cancel_golden() {
        let invite = parse(INVITE).unwrap();
        let mut out = Vec::new();
        cancel(&invite, &mut out);
        let expected = "CANCEL sip:bob@biloxi.example.com;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8;rport\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Route: <sip:p3.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
From: \"Alice, A.\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 CANCEL\r\n\
Content-Length: 0\r\n\
\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // The output is itself a well-formed message.
        let mut out = Vec::new();
        cancel(&invite, &mut out);
        let c = parse(&out).unwrap();
        assert_eq!(c.method(), Some("CANCEL"));
        assert_eq!(c.top_via().unwrap().branch, Some("z9hG4bKnashds8"));
        assert_eq!(c.values_of(HeaderName::Via).len(), 1);
        assert_eq!(c.route().len(), 3);
        assert_eq!(c.body, b"");
    }

    #[test]
    fn minimal_invite_without_routes() {
        let invite = parse(
            b"INVITE sip:b@h SIP/2.0\nv: SIP/2.0/TCP [2001:db8::1]:5062;branch=z9hG4bK1\n\
f: <sip:a@h>;tag=1\nt: <sip:b@h>\ni: x\nCSeq:\n 7 INVITE\n\n",
        )
        .unwrap();
        let resp = parse(b"SIP/2.0 404 Not Found\nt: <sip:b@h>;tag=2\n\n").unwrap();
        let mut out = Vec::new();
        non2xx_ack(&invite, &resp, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ACK sip:b@h SIP/2.0\r\n\
Via: SIP/2.0/TCP [2001:db8::1]:5062;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\n\
From: <sip:a@h>;tag=1\r\n\
To: <sip:b@h>;tag=2\r\n\
Call-ID: x\r\n\
CSeq: 7 ACK\r\n\
Content-Length: 0\r\n\
\r\n"
        );
    }

    #[test]
    fn non_request_builds_nothing() {
        let resp = parse(RESPONSE).unwrap();
        let mut out = Vec::new();
        cancel(&resp, &mut out);
        non2xx_ack(&resp, &resp, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn non_utf8_values_copied_verbatim() {
        let invite = parse(
            b"INVITE sip:b@h SIP/2.0\r\nFrom: \"\xe9\" <sip:a@h>;tag=1\r\nCSeq: 1 INVITE\r\n\r\n",
        )
        .unwrap();
        let mut out = Vec::new();
        cancel(&invite, &mut out);
        assert!(out.windows(5).any(|w| w == b"\"\xe9\" <"));
        assert!(out.ends_with(b"CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"));
    }

    #[test]
    fn response_copies_the_transaction_headers() {
        let req = parse(INVITE).unwrap();
        let mut out = Vec::new();
        response(&req, 200, "OK", &mut out);
        let r = parse(&out).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.headers_of(HeaderName::Via).count(), 2);
        assert_eq!(r.cseq().map(|c| c.seq), Some(2));
        assert_eq!(r.call_id(), Some("3848276298220188511@atlanta.example.com"));
        assert!(r.body.is_empty());
        let mut none = Vec::new();
        response(&r, 200, "OK", &mut none);
        assert!(none.is_empty());
    }
}

/// The request `request` again with credentials, for a 401/407 challenge (RFC 3261
/// §22.2, §8.1.3.5): a new branch in the top Via, the CSeq number `cseq`, and the
/// header `auth_name: auth_value` added (an earlier header of that name for the same
/// `realm` is replaced: a stale nonce answered again). Everything else — the
/// Request-URI, the other headers, the body — is kept; headers are re-emitted one
/// per line (folding undone). Appends nothing when `request` is not a request.
pub fn with_credentials(
    request: &Message<'_>,
    branch: &str,
    cseq: u32,
    auth_name: &str,
    realm: &str,
    auth_value: &[u8],
    out: &mut Vec<u8>,
) {
    let realm_param = format!("realm=\"{realm}\"");
    let mut added = Vec::with_capacity(auth_name.len() + auth_value.len() + 4);
    added.extend_from_slice(auth_name.as_bytes());
    added.extend_from_slice(b": ");
    added.extend_from_slice(auth_value);
    added.extend_from_slice(b"\r\n");
    resend(
        request,
        branch,
        cseq,
        |h, value, _| h.is(auth_name) && contains_ignore_case(value, realm_param.as_bytes()),
        &added,
        out,
    );
}

/// The request `request` sent again as a new transaction: a new branch in the top
/// Via and the CSeq number `cseq`; every other header goes through `edit` (given the
/// header, its unfolded value and `out`), which returns true when it wrote the
/// header itself (or dropped it), false to have it copied. `added` (whole header
/// lines) goes after the last header; the body is kept. Appends nothing when
/// `request` is not a request.
pub fn resend(
    request: &Message<'_>,
    branch: &str,
    cseq: u32,
    mut edit: impl FnMut(&Header<'_>, &[u8], &mut Vec<u8>) -> bool,
    added: &[u8],
    out: &mut Vec<u8>,
) {
    let (Some(method), Some(uri)) = (request.method(), request.request_uri()) else {
        return;
    };
    out.reserve(request.raw.len() + added.len() + 64);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(uri.as_bytes());
    out.extend_from_slice(b" SIP/2.0\r\n");
    let mut first_via = true;
    let mut value = Vec::new();
    for h in &request.headers {
        value.clear();
        unfold_into(h.raw_value, &mut value);
        if h.kind == HeaderName::Via && first_via {
            first_via = false;
            out.extend_from_slice(b"Via: ");
            replace_branch(&value, branch, out);
            out.extend_from_slice(b"\r\n");
            continue;
        }
        if h.kind == HeaderName::CSeq {
            let m = h
                .value()
                .split_whitespace()
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| method.to_string());
            out.extend_from_slice(format!("CSeq: {cseq} {m}\r\n").as_bytes());
            continue;
        }
        if edit(h, &value, out) {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(added);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(request.body);
}

/// The first Via value with its `branch` parameter set to `branch` (added when
/// missing); later comma-separated values are copied as they are.
fn replace_branch(via: &[u8], branch: &str, out: &mut Vec<u8>) {
    let first_end = split_comma_bytes(via)
        .next()
        .map(|v| v.as_ptr() as usize - via.as_ptr() as usize + v.len())
        .unwrap_or(via.len());
    let (first, rest) = via.split_at(first_end.min(via.len()));
    match find_ignore_case(first, b";branch=") {
        Some(at) => {
            let start = at + b";branch=".len();
            let end = first[start..]
                .iter()
                .position(|c| matches!(c, b';' | b',' | b' ' | b'\t'))
                .map_or(first.len(), |p| start + p);
            out.extend_from_slice(&first[..start]);
            out.extend_from_slice(branch.as_bytes());
            out.extend_from_slice(&first[end..]);
        }
        None => {
            out.extend_from_slice(first);
            out.extend_from_slice(b";branch=");
            out.extend_from_slice(branch.as_bytes());
        }
    }
    out.extend_from_slice(rest);
}

fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    find_ignore_case(hay, needle).is_some()
}

#[cfg(test)]
mod credential_tests {
    use super::*;
    use crate::sip::message::parse;

    const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKold;rport, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: c1\r\n\
CSeq: 7 REGISTER\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"old\"\r\n\
Contact: <sip:alice@10.0.0.1:5060>\r\n\
Content-Length: 4\r\n\
\r\n\
body";

    #[test]
    fn retried_request_has_new_branch_cseq_and_credentials() {
        let req = parse(REGISTER).unwrap();
        let mut out = Vec::new();
        with_credentials(
            &req,
            "z9hG4bKnew",
            8,
            "Authorization",
            "example.com",
            b"Digest username=\"alice\", realm=\"example.com\", nonce=\"new\"",
            &mut out,
        );
        let text = String::from_utf8(out.clone()).unwrap();
        let m = parse(&out).unwrap();
        assert_eq!(m.top_via_branch(), Some("z9hG4bKnew"), "{text}");
        assert!(
            text.contains(";rport, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx"),
            "{text}"
        );
        assert_eq!(m.cseq().unwrap().seq, 8);
        assert_eq!(m.cseq().unwrap().method, "REGISTER");
        assert_eq!(m.headers_named("Authorization").count(), 1, "{text}");
        assert!(text.contains("nonce=\"new\""));
        assert_eq!(m.body, b"body");
        assert_eq!(m.call_id(), Some("c1"));
    }

    #[test]
    fn a_via_without_branch_gets_one_and_non_requests_give_nothing() {
        let mut out = Vec::new();
        replace_branch(b"SIP/2.0/UDP h", "z9hG4bK1", &mut out);
        assert_eq!(out, b"SIP/2.0/UDP h;branch=z9hG4bK1");
        let resp = parse(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut out = Vec::new();
        with_credentials(&resp, "b", 1, "Authorization", "r", b"x", &mut out);
        assert!(out.is_empty());
    }
}

//! Replies a driver sends for requests that belong to no call, like a UA core would:
//! OPTIONS gets 200 (so `sipwright options` and keep-alive probes work against any
//! scenario), an in-dialog request for an unknown dialog gets 481 and so does a
//! CANCEL that matches no transaction (RFC 3261 §9.2), a new call the run no
//! longer takes 503, anything else 501.
//! ACK never gets a reply.

use crate::report::StrayCause;
use crate::scenario::call::CallEnv;
use crate::sip::header::HeaderName;
use crate::sip::message::Message;

/// Build the reply for `req` into `out` (left as it is when nothing is to be
/// sent) and say why the request was stray. `busy`: the request would start a
/// call but the run takes no more (limit reached, stopping) — 503 instead of 501.
pub fn reply(req: &Message<'_>, env: &CallEnv, busy: bool, out: &mut Vec<u8>) -> StrayCause {
    let Some(method) = req.method() else {
        return StrayCause::ResponseNoCall;
    };
    if method == "ACK" {
        return StrayCause::Ack;
    }
    let has_to_tag = req.to().and_then(|t| t.tag()).is_some();
    const GONE: &str = "Call/Transaction Does Not Exist";
    let (code, reason, cause) = match method {
        "OPTIONS" if !has_to_tag => (200, "OK", StrayCause::Options),
        "CANCEL" => (481, GONE, StrayCause::UnknownDialog),
        _ if has_to_tag => (481, GONE, StrayCause::UnknownDialog),
        _ if busy => (503, "Service Unavailable", StrayCause::Busy),
        _ => (501, "Not Implemented", StrayCause::NotHandled),
    };
    out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
    for kind in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        for h in req.headers_of(kind) {
            out.extend_from_slice(h.raw);
            if kind == HeaderName::To && !has_to_tag {
                out.extend_from_slice(format!(";tag={:08x}", env.run_id).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    if code == 200 {
        let host = if env.local_ip.contains(':') {
            format!("[{}]", env.local_ip)
        } else {
            env.local_ip.clone()
        };
        out.extend_from_slice(
            format!(
                "Contact: <sip:{host}:{}>\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nAccept: application/sdp\r\n",
                env.local_port
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"Server: sipwright\r\nContent-Length: 0\r\n\r\n");
    cause
}

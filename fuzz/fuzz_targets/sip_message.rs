//! Feeds arbitrary bytes through every entry point of the SIP message layer:
//! the datagram and stream parsers, all typed accessors, the typed value
//! parsers on every header value, the ACK/CANCEL builders, and the checks and
//! 400 responses for what we refuse (`sip::validate`, `salvage_request`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::sip::build;
use sipwright::sip::header::{CSeq, NameAddr, Via, split_comma};
use sipwright::sip::message::{self, Message};
use sipwright::sip::uri::SipUri;
use sipwright::sip::validate;

fn exercise(m: &Message<'_>) {
    let _ = (m.method(), m.status(), m.request_uri(), m.is_request());
    let _ = (m.call_id(), m.cseq(), m.from(), m.to(), m.contact());
    let _ = (
        m.record_route(),
        m.route(),
        m.content_type(),
        m.content_length(),
    );
    if let (Some(text), Some(via)) = (m.top_via_str(), m.top_via()) {
        let _ = via.sent_by(text);
    }
    for h in &m.headers {
        let _ = (h.value_str(), h.is(h.name), m.headers_named(h.name).count());
        let _ = m.values_of(h.kind);
        let value = h.value();
        for part in split_comma(&value) {
            if let Some(via) = Via::parse(part) {
                let _ = via.sent_by(part);
            }
            let _ = CSeq::parse(part);
            if let Some(na) = NameAddr::parse(part) {
                let _ = (na.tag(), na.param("expires"), na.param(""));
                if let Some(u) = SipUri::parse(na.uri) {
                    let _ = (u.param("transport"), u.is_loose_route());
                }
            }
            if let Some(u) = SipUri::parse(part) {
                let _ = u.param("lr");
            }
        }
    }
    if m.is_request() {
        let mut out = Vec::new();
        build::cancel(m, &mut out);
        build::non2xx_ack(m, m, &mut out);
        // What we build from any parseable request must parse again.
        let mut ack = Vec::new();
        build::non2xx_ack(m, m, &mut ack);
        assert!(message::parse(&ack).is_ok(), "built ACK does not parse");
    }
}

fuzz_target!(|data: &[u8]| {
    let rejection = match message::parse(data) {
        Ok(m) => {
            exercise(&m);
            validate::check_request(&m).err()
        }
        Err(e) => Some(validate::Rejection::of_parse_error(&e, data)),
    };
    // The answer to whatever we refuse must itself parse.
    if let (Some(rej), Some(req)) = (rejection, message::salvage_request(data)) {
        exercise(&req);
        let mut out = Vec::new();
        if validate::write_rejection(&req, &rej, "t", &mut out) {
            assert!(message::parse(&out).is_ok(), "built 400 does not parse");
        }
    }
    let mut rest = data;
    while let Ok(Some((m, used))) = message::parse_stream(rest) {
        assert!(used > 0 && used <= rest.len());
        exercise(&m);
        rest = &rest[used..];
    }
});

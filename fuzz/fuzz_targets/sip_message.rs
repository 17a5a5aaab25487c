//! Feeds arbitrary bytes through every entry point of the SIP message layer:
//! the datagram and stream parsers, all typed accessors, the typed value
//! parsers on every header value, and the ACK/CANCEL builders.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::sip::build;
use sipwright::sip::header::{CSeq, NameAddr, Via, split_comma};
use sipwright::sip::message::{self, Message};
use sipwright::sip::uri::SipUri;

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
    if let Ok(m) = message::parse(data) {
        exercise(&m);
    }
    let mut rest = data;
    while let Ok(Some((m, used))) = message::parse_stream(rest) {
        assert!(used > 0 && used <= rest.len());
        exercise(&m);
        rest = &rest[used..];
    }
});

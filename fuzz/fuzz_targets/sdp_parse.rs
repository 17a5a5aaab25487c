//! Feeds arbitrary bytes through the SDP layer: the session parser, the `a=crypto`
//! parsers (tagged and the hand-typed key form), the multipart body search, and the key
//! tracker when the bytes happen to form a SIP message. Any panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::decrypt::KeyTracker;
use sipwright::sdp::{self, Crypto};
use sipwright::sip::message;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = sdp::parse(&text) {
        for m in &s.media {
            for c in &m.crypto {
                for k in &c.keys {
                    assert_eq!(k.key.len(), k.suite.master_key_len());
                    assert_eq!(k.salt.len(), k.suite.master_salt_len());
                }
            }
        }
    }
    let _ = Crypto::parse(&text);
    let _ = Crypto::parse_key_spec(&text);
    // The first line, if any, as a Content-Type for the rest.
    if let Some((ct, body)) = text.split_once('\n') {
        if let Some(found) = sdp::find_sdp(Some(ct.trim()), body.as_bytes()) {
            let _ = sdp::parse(&String::from_utf8_lossy(found));
        }
    }
    if let Ok(m) = message::parse(data) {
        let mut t = KeyTracker::new();
        let _ = t.on_sip(1, &m);
        let _ = t.on_sip(2, &m);
        let _ = t.take_warnings();
    }
});

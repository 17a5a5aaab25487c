//! Feeds arbitrary bytes (as text when UTF-8, lossily converted otherwise) to the
//! Digest challenge and credentials parsers. Every challenge that parses is
//! answered, and the answer must parse and verify with the same password (and fail
//! with another); credentials that parse are verified. Any panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::sip::digest::{self, Credentials, Expected, Request, VerifyError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let creds = Credentials {
        username: "alice",
        password: "secret",
    };
    let req = Request {
        method: "INVITE",
        uri: "sip:bob@example.com",
        body: data,
    };
    let mut out = Vec::new();
    for ch in digest::challenges(&text).flatten() {
        out.clear();
        digest::write_authorization(&mut out, &ch, &creds, &req, "0a4f113b", 1);
        let header = std::str::from_utf8(&out).expect("answers are UTF-8");
        let auth = digest::parse_authorization(header).expect("our answer parses");
        // Control characters are dropped when writing (they cannot be quoted), so
        // only a clean realm and nonce (the hashed echoes) must round-trip exactly.
        let clean = |v: &str| !v.bytes().any(|b| b.is_ascii_control() && b != b'\t');
        if clean(&ch.realm) && clean(&ch.nonce) {
            let e = Expected {
                realm: &ch.realm,
                username: creds.username,
                password: creds.password,
                method: req.method,
                body: req.body,
            };
            assert_eq!(auth.verify(&e), Ok(()), "{header}");
            let wrong = Expected { password: "Secret", ..e };
            assert_eq!(auth.verify(&wrong), Err(VerifyError::WrongResponse));
        }
        let mut state = digest::ClientAuth::new(&ch);
        out.clear();
        state.write_authorization(&mut out, &creds, &req, "c");
        let _ = state.on_challenge(&ch);
    }
    let _ = digest::strongest([&*text, &*text]);
    if let Ok(auth) = digest::parse_authorization(&text) {
        let _ = auth.nonce_count();
        let _ = auth.verify(&Expected {
            realm: &auth.realm,
            username: "alice",
            password: "secret",
            method: "REGISTER",
            body: data,
        });
    }
});

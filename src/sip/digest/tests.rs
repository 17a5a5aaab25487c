use super::*;

/// The value of `name=` in a written header, quotes removed.
fn param<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .trim_start_matches("Digest ")
        .split(", ")
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
}

fn answer(ch: &Challenge<'_>, creds: &Credentials<'_>, req: &Request<'_>, cnonce: &str) -> String {
    let mut out = Vec::new();
    write_authorization(&mut out, ch, creds, req, cnonce, 1);
    String::from_utf8(out).unwrap()
}

// RFC 7616 §3.9.1. The responses were checked against the RFC text and recomputed
// with Python's hashlib.
const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const MUFASA: Credentials<'static> = Credentials {
    username: "Mufasa",
    password: "Circle of Life",
};
const GET_INDEX: Request<'static> = Request {
    method: "GET",
    uri: "/dir/index.html",
    body: b"",
};

fn rfc7616_challenge(algorithm: &str) -> String {
    format!(
        "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    \
         algorithm={algorithm},\r\n    nonce=\"{RFC_NONCE}\",\r\n    opaque=\"{RFC_OPAQUE}\""
    )
}

#[test]
fn rfc7616_md5_and_sha256_examples() {
    // The 401 of §3.9.1 carries both challenges, SHA-256 first.
    let sha = rfc7616_challenge("SHA-256");
    let md5 = rfc7616_challenge("MD5");
    for (alg, want) in [
        (&md5, "8ca523f5e9506fed4657c9700eebdbec"),
        (
            &sha,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let ch = parse_challenge(alg).unwrap();
        assert_eq!(
            ch.chosen_qop(),
            Some(Qop::Auth),
            "auth preferred over auth-int"
        );
        let h = answer(&ch, &MUFASA, &GET_INDEX, RFC_CNONCE);
        assert_eq!(param(&h, "response"), Some(want), "{h}");
        assert_eq!(param(&h, "nc"), Some("00000001"));
        assert_eq!(param(&h, "qop"), Some("auth"));
        assert_eq!(param(&h, "opaque"), Some(RFC_OPAQUE));
        assert_eq!(param(&h, "cnonce"), Some(RFC_CNONCE));
    }
    let best = strongest([md5.as_str(), sha.as_str()]).unwrap();
    assert_eq!(best.algorithm, Algorithm::Sha256);
}

#[test]
fn rfc7616_sha256_header_is_written_exactly() {
    let value = rfc7616_challenge("SHA-256");
    let ch = parse_challenge(&value).unwrap();
    let h = answer(&ch, &MUFASA, &GET_INDEX, RFC_CNONCE);
    assert_eq!(
        h,
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", nonce=\"{RFC_NONCE}\", \
             uri=\"/dir/index.html\", \
             response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
             algorithm=SHA-256, cnonce=\"{RFC_CNONCE}\", opaque=\"{RFC_OPAQUE}\", qop=auth, \
             nc=00000001"
        )
    );
}

/// RFC 7616 §3.9.2 (SHA-512-256, userhash). The RFC prints username 488869477b…
/// and response ae66e67d…, which are not SHA-512/256 as FIPS 180-4 defines it;
/// erratum 4897 gives the values below, and Python's
/// `hashlib.new('sha512_256')` agrees with the erratum.
#[test]
fn rfc7616_userhash_example_with_erratum_4897() {
    let value = "Digest realm=\"api@example.org\", qop=\"auth\", algorithm=SHA-512-256, \
                 nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\", \
                 opaque=\"HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS\", charset=UTF-8, userhash=true";
    let ch = parse_challenge(value).unwrap();
    assert!(ch.userhash);
    assert_eq!(ch.algorithm, Algorithm::Sha512_256);
    let creds = Credentials {
        username: "J\u{e4}s\u{f8}n Doe",
        password: "Secret, or not?",
    };
    let req = Request {
        method: "GET",
        uri: "/doe.json",
        body: b"",
    };
    let h = answer(
        &ch,
        &creds,
        &req,
        "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
    );
    assert_eq!(
        param(&h, "username"),
        Some("793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b")
    );
    assert_eq!(
        param(&h, "response"),
        Some("3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5")
    );
    assert!(h.ends_with(", userhash=true"), "{h}");
    // The server side, given the plain name, accepts it.
    let e = Expected {
        realm: "api@example.org",
        username: creds.username,
        password: creds.password,
        method: "GET",
        body: b"",
    };
    assert_eq!(verify_authorization(&h, &e), Ok(()));
    let other = Expected {
        username: "Jason Doe",
        ..e
    };
    assert_eq!(
        verify_authorization(&h, &other),
        Err(VerifyError::WrongUsername)
    );
}

/// RFC 8760 gives no test vectors. These SIP-style values were computed
/// independently with Python's hashlib (md5, sha256, sha512_256):
/// HA1 = H("alice:sip.example.com:secret"), HA2 = H("REGISTER:sip:sip.example.com"),
/// response = H(HA1:"abc123":"00000001":"0a4f113b":"auth":HA2); for -sess,
/// HA1 = H(H("alice:sip.example.com:secret"):"abc123":"0a4f113b").
#[test]
fn sip_register_vectors() {
    let creds = Credentials {
        username: "alice",
        password: "secret",
    };
    let req = Request {
        method: "REGISTER",
        uri: "sip:sip.example.com",
        body: b"",
    };
    for (alg, want) in [
        ("MD5", "11c9668ed2c1aa352c2a758f5d7c5cc1"),
        (
            "SHA-256",
            "8a7154ff8c7697b6a64fa53f171fe76fb2cfae16e70625e00615e92b3633f9b8",
        ),
        (
            "SHA-512-256",
            "287fdeb17bf9c6d9a62ca091c7721c80a159d12e4772418c6c7f00dfc4f98d6a",
        ),
        ("MD5-sess", "dc061a79b1125677c4421c75f7d9aeeb"),
        (
            "SHA-512-256-sess",
            "d6a37673b04739113de2a5d63b2b27ed0a7a809f56a2339c8626dad97975c189",
        ),
    ] {
        let v = format!(
            "Digest realm=\"sip.example.com\", nonce=\"abc123\", qop=\"auth\", algorithm={alg}"
        );
        let ch = parse_challenge(&v).unwrap();
        let h = answer(&ch, &creds, &req, "0a4f113b");
        assert_eq!(param(&h, "response"), Some(want), "{alg}");
    }
}

const ALICE: Credentials<'static> = Credentials {
    username: "alice",
    password: "secret",
};
const INVITE_BOB: Request<'static> = Request {
    method: "INVITE",
    uri: "sip:bob@example.com",
    body: b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n",
};

/// What the server expects from ALICE sending INVITE_BOB.
const ALICE_INVITES_BOB: Expected<'static> = Expected {
    realm: "sip.example.com",
    username: "alice",
    password: "secret",
    method: "INVITE",
    body: INVITE_BOB.body,
};

/// The server side of the hand-written credentials (user u, password p, realm r).
const U_BYE: Expected<'static> = Expected {
    realm: "r",
    username: "u",
    password: "p",
    method: "BYE",
    body: b"",
};

/// RFC 2069 compatibility (no qop): response = H(HA1:nonce:HA2), no cnonce or nc
/// written. Value from Python's hashlib.
#[test]
fn no_qop_is_rfc2069() {
    let ch = parse_challenge("digest REALM=\"sip.example.com\" , NONCE=\"abc123\"").unwrap();
    assert_eq!(ch.algorithm, Algorithm::Md5);
    assert_eq!(ch.qop, None);
    let h = answer(&ch, &ALICE, &INVITE_BOB, "unused");
    assert_eq!(
        param(&h, "response"),
        Some("7035372a55eb762eafd3f543ef71ab73")
    );
    assert_eq!(param(&h, "cnonce"), None);
    assert_eq!(param(&h, "nc"), None);
    assert_eq!(param(&h, "qop"), None);
}

/// auth-int hashes the body into HA2. Value from Python's hashlib.
#[test]
fn auth_int_covers_the_body() {
    let ch = parse_challenge(
        "Digest realm=\"sip.example.com\", nonce=\"abc123\", qop=\"auth-int\", algorithm=SHA-256",
    )
    .unwrap();
    assert_eq!(
        ch.chosen_qop(),
        Some(Qop::AuthInt),
        "auth-int when it is all that is offered"
    );
    let h = answer(&ch, &ALICE, &INVITE_BOB, "0a4f113b");
    assert_eq!(
        param(&h, "response"),
        Some("c25596b4de8da2e994b0246e27c7bab7e064893694387e9f65504896c03e8fca")
    );
    assert_eq!(param(&h, "qop"), Some("auth-int"));
    let e = ALICE_INVITES_BOB;
    assert_eq!(verify_authorization(&h, &e), Ok(()));
    let tampered = Expected {
        body: b"v=0\r\n",
        ..e
    };
    assert_eq!(
        verify_authorization(&h, &tampered),
        Err(VerifyError::WrongResponse)
    );
}

#[test]
fn strongest_of_several_challenges() {
    // One header with three challenges (and a Basic one), plus a second header.
    let one = "Basic realm=\"x\", Digest realm=\"r\", nonce=\"1\", algorithm=MD5, \
               Digest realm=\"r\", nonce=\"2\", algorithm=SHA-256-sess,Digest realm=\"r\",nonce=\"3\",algorithm=SHA-256";
    let two = "Digest realm=\"r\", nonce=\"4\", algorithm=SHA-1";
    let all: Vec<_> = challenges(one).collect();
    assert_eq!(all.len(), 3);
    let best = strongest([one, two]).unwrap();
    assert_eq!((best.algorithm, &*best.nonce), (Algorithm::Sha256Sess, "2"));

    let three = "Digest realm=\"r\", nonce=\"5\", algorithm=sha-512-256";
    let best = strongest([one, two, three]).unwrap();
    assert_eq!((best.algorithm, &*best.nonce), (Algorithm::Sha512_256, "5"));

    // A tie keeps the first (the server's preferred one).
    let best = strongest([
        "Digest realm=\"r\", nonce=\"a\"",
        "Digest realm=\"r\", nonce=\"b\"",
    ])
    .unwrap();
    assert_eq!(&*best.nonce, "a");

    // Only unknown algorithms: a typed error naming the first.
    assert_eq!(
        strongest([two, "Digest realm=\"r\", nonce=\"6\", algorithm=AKAv1-MD5"]),
        Err(DigestError::UnsupportedAlgorithm("SHA-1".into()))
    );
    assert_eq!(
        strongest(["Basic realm=\"x\""]),
        Err(DigestError::NotDigest)
    );
    assert_eq!(strongest([]), Err(DigestError::NotDigest));
}

#[test]
fn lenient_parsing() {
    // A bare qop token, quoted tokens, case, folding whitespace, unknown
    // parameters, a missing comma.
    let ch = parse_challenge(
        "DIGEST Realm=\"sip.example.com\",NONCE=\"Xy/9+abc==\"  ,\r\n\tAlgorithm=\"md5\" qop=auth, \
         foo=\"bar, baz\", stale=TRUE, opaque=\"a\\\"b\", domain=\"sip:a sip:b\"",
    )
    .unwrap();
    assert_eq!(&*ch.realm, "sip.example.com");
    assert_eq!(&*ch.nonce, "Xy/9+abc==");
    assert!(
        matches!(ch.realm, Cow::Borrowed(_)),
        "borrowed when no escapes"
    );
    assert_eq!(ch.algorithm, Algorithm::Md5);
    assert_eq!(ch.chosen_qop(), Some(Qop::Auth));
    assert!(ch.stale);
    assert_eq!(ch.opaque.as_deref(), Some("a\"b"));
    assert_eq!(ch.domain.as_deref(), Some("sip:a sip:b"));
    // The escaped opaque is escaped again in the answer.
    let h = answer(&ch, &ALICE, &INVITE_BOB, "c");
    assert!(h.contains(r#"opaque="a\"b""#), "{h}");
}

#[test]
fn malformed_challenges() {
    use DigestError::*;
    let cases: &[(&str, DigestError)] = &[
        ("Digest realm=\"r\"", Missing("nonce")),
        ("Digest realm=r, nonce=\"n\"", Unquoted("realm")),
        ("Digest realm=\"r\", nonce=n", Unquoted("nonce")),
        (
            "Digest realm=\"r\", nonce=\"n\", opaque=o",
            Unquoted("opaque"),
        ),
        ("Digest nonce=\"n\"", Missing("realm")),
        ("Digest", Missing("realm")),
        (
            "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1",
            UnsupportedAlgorithm("SHA-1".into()),
        ),
        (
            "Digest realm=\"r\", nonce=\"n",
            UnterminatedQuote("nonce".into()),
        ),
        (
            "Digest realm=\"r\\\", nonce=n",
            UnterminatedQuote("realm".into()),
        ),
        (
            "Digest realm=\"r\", nonce=\"a\", nonce=\"b\"",
            Duplicate("nonce"),
        ),
        (
            "Digest realm=\"r\", NONCE=\"a\", Nonce=\"a\"",
            Duplicate("nonce"),
        ),
        (
            "Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\"",
            UnsupportedQop("auth-conf".into()),
        ),
        (
            "Digest realm=\"r\", nonce=",
            Syntax {
                at: 24,
                what: "parameter without a value",
            },
        ),
        (
            "Digest realm=\"r\", =x",
            Syntax {
                at: 18,
                what: "expected a scheme or parameter name",
            },
        ),
        (
            "realm=\"r\", nonce=\"n\"",
            Syntax {
                at: 0,
                what: "expected an auth scheme",
            },
        ),
        ("Basic realm=\"r\"", NotDigest),
        ("", NotDigest),
    ];
    for (value, want) in cases {
        assert_eq!(parse_challenge(value).as_ref(), Err(want), "{value:?}");
        // Every error has a message.
        assert!(!want.to_string().is_empty());
    }
    // A semantic error in one challenge does not hide the next one.
    let two = "Digest realm=\"r\", nonce=\"a\", nonce=\"b\", Digest realm=\"r\", nonce=\"c\"";
    assert_eq!(&*strongest([two]).unwrap().nonce, "c");
}

#[test]
fn every_algorithm_and_qop_round_trips_and_wrong_password_fails() {
    for alg in Algorithm::ALL {
        for qop in [None, Some("auth"), Some("auth-int"), Some("auth,auth-int")] {
            let ch = Challenge {
                realm: "sip.example.com".into(),
                nonce: "n0nce/+=".into(),
                opaque: Some("op".into()),
                algorithm: alg,
                qop: qop.map(|q| QopOptions {
                    auth: q.split(',').any(|t| t == "auth"),
                    auth_int: q.contains("auth-int"),
                }),
                stale: false,
                userhash: alg.is_sess(),
                domain: None,
            };
            // Server writes, client parses: the same challenge.
            let mut w = Vec::new();
            ch.write(&mut w);
            let w = String::from_utf8(w).unwrap();
            assert_eq!(parse_challenge(&w).as_ref(), Ok(&ch), "{w}");
            // Client answers, server verifies.
            let h = answer(&ch, &ALICE, &INVITE_BOB, "cn");
            let auth = parse_authorization(&h).unwrap();
            assert_eq!(auth.algorithm, alg);
            assert_eq!(auth.qop, ch.chosen_qop());
            assert_eq!(auth.response.len(), alg.hex_len());
            let e = ALICE_INVITES_BOB;
            assert_eq!(auth.verify(&e), Ok(()), "{h}");
            let wrong = Expected {
                password: "Secret",
                ..e
            };
            assert_eq!(auth.verify(&wrong), Err(VerifyError::WrongResponse), "{h}");
            let method = Expected { method: "BYE", ..e };
            assert_eq!(auth.verify(&method), Err(VerifyError::WrongResponse));
            let realm = Expected {
                realm: "other",
                ..e
            };
            assert_eq!(auth.verify(&realm), Err(VerifyError::WrongRealm));
        }
    }
}

#[test]
fn server_rejects_malformed_credentials() {
    use DigestError::*;
    let e = U_BYE;
    let ok = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\"";
    assert_eq!(
        verify_authorization(ok, &e),
        Err(VerifyError::WrongResponse)
    );
    for (value, want) in [
        (
            "Digest realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\"",
            Missing("username"),
        ),
        (
            "Digest username=u, realm=r, nonce=n, response=0",
            Missing("uri"),
        ),
        (
            "Digest username=u, realm=r, nonce=n, uri=x",
            Missing("response"),
        ),
        (
            "Digest username=u, realm=r, nonce=n, uri=x, response=0, qop=auth, nc=00000001",
            Missing("cnonce"),
        ),
        (
            "Digest username=u, realm=r, nonce=n, uri=x, response=0, qop=auth, cnonce=c",
            Missing("nc"),
        ),
        (
            "Digest username=u, realm=r, nonce=n, uri=x, response=0, algorithm=MD5-sess",
            Missing("cnonce"),
        ),
        (
            "Digest username=u, realm=r, nonce=n, uri=x, response=0, nc=123456789, qop=auth, cnonce=c",
            BadNonceCount("123456789".into()),
        ),
        (
            "Digest username=u, realm=r, nonce=n, uri=x, response=0, algorithm=SHA-1",
            UnsupportedAlgorithm("SHA-1".into()),
        ),
        (
            "Digest username=u, username=v, realm=r, nonce=n, uri=x, response=0",
            Duplicate("username"),
        ),
        ("Basic dXNlcjpwYXNz", NotDigest),
    ] {
        assert_eq!(
            verify_authorization(value, &e),
            Err(VerifyError::Malformed(want)),
            "{value}"
        );
    }
}

#[test]
fn nonce_count_is_hashed_as_sent() {
    // A client that writes nc=1 instead of 00000001 is verified against "1".
    let ch = parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=auth").unwrap();
    let resp = compute_response(&ResponseInput {
        algorithm: Algorithm::Md5,
        username: "u",
        realm: "r",
        password: "p",
        nonce: "n",
        cnonce: "c",
        nc: "1",
        qop: ch.chosen_qop(),
        method: "BYE",
        uri: "sip:x",
        body: b"",
    });
    let h = format!(
        "Digest username=u, realm=r, nonce=n, uri=sip:x, response={}, qop=auth, nc=1, cnonce=c",
        resp.as_str().to_ascii_uppercase()
    );
    let auth = parse_authorization(&h).unwrap();
    assert_eq!(auth.nonce_count(), Some(1));
    let e = U_BYE;
    assert_eq!(auth.verify(&e), Ok(()), "upper-case hex accepted");
}

#[test]
fn client_state_answers_later_requests_and_handles_stale() {
    let first =
        parse_challenge("Digest realm=\"r\", nonce=\"n1\", qop=\"auth\", opaque=\"o\"").unwrap();
    let mut st = ClientAuth::new(&first);
    assert_eq!(
        (st.realm(), st.nonce(), st.opaque()),
        ("r", "n1", Some("o"))
    );
    let mut out = Vec::new();
    st.write_authorization(&mut out, &ALICE, &INVITE_BOB, "c1");
    assert!(String::from_utf8_lossy(&out).contains("nc=00000001"));
    st.on_final_response();

    // BYE pre-emptively reuses the nonce: nc counts on.
    let bye = Request {
        method: "BYE",
        uri: "sip:bob@example.com",
        body: b"",
    };
    out.clear();
    st.write_authorization(&mut out, &ALICE, &bye, "c2");
    let h = String::from_utf8(out.clone()).unwrap();
    assert_eq!(param(&h, "nc"), Some("00000002"));
    assert_eq!(param(&h, "nonce"), Some("n1"));
    // The server does not reuse nonces and challenges afresh: answered, nc restarts.
    let again = parse_challenge("Digest realm=\"r\", nonce=\"n2\", qop=\"auth\"").unwrap();
    assert_eq!(st.on_challenge(&again), Verdict::Answer);
    out.clear();
    st.write_authorization(&mut out, &ALICE, &bye, "c3");
    let h = String::from_utf8(out.clone()).unwrap();
    assert_eq!(
        (param(&h, "nonce"), param(&h, "nc")),
        (Some("n2"), Some("00000001"))
    );
    assert_eq!(param(&h, "opaque"), None, "the new challenge had no opaque");

    // Our answer is challenged as stale: one retry, no failure.
    let stale =
        parse_challenge("Digest realm=\"r\", nonce=\"n3\", qop=\"auth\", stale=true").unwrap();
    assert_eq!(st.on_challenge(&stale), Verdict::StaleRetry);
    assert_eq!(st.nonce(), "n3");
    out.clear();
    st.write_authorization(&mut out, &ALICE, &bye, "c4");
    // Stale again after the retry: refused.
    let stale2 = parse_challenge("Digest realm=\"r\", nonce=\"n4\", stale=true").unwrap();
    assert_eq!(st.on_challenge(&stale2), Verdict::Rejected);

    // A new request whose answer is challenged without stale: refused.
    st.on_final_response();
    let c = parse_challenge("Digest realm=\"r\", nonce=\"n5\"").unwrap();
    assert_eq!(st.on_challenge(&c), Verdict::Answer);
    out.clear();
    st.write_authorization(&mut out, &ALICE, &bye, "c5");
    let c2 = parse_challenge("Digest realm=\"r\", nonce=\"n6\"").unwrap();
    assert_eq!(st.on_challenge(&c2), Verdict::Rejected);
    assert_eq!(st.nonce(), "n5", "a refusal does not take the nonce");
}

#[test]
fn client_state_is_small() {
    assert_eq!(std::mem::size_of::<ClientAuth>(), 40);
}

#[test]
fn cnonce_and_nc_formatting() {
    assert_eq!(
        cnonce_from_random([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff]).as_str(),
        "deadbeef000102ff"
    );
    assert_eq!(&hex8(1), b"00000001");
    assert_eq!(&hex8(0xabcdef12), b"abcdef12");
    assert_eq!(&hex8(u32::MAX), b"ffffffff");
}

#[test]
fn hostile_values_cannot_break_the_header() {
    let ch = parse_challenge("Digest realm=\"a\r\nVia: x\", nonce=\"n\\\\\"").unwrap();
    let h = answer(&ch, &ALICE, &INVITE_BOB, "c");
    assert!(!h.contains('\r') && !h.contains('\n'), "{h}");
    assert_eq!(param(&h, "nonce"), Some(r"n\\"));
}

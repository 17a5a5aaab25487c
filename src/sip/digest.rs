//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760), sans-IO.
//!
//! No clock, no sockets, no random numbers: the caller supplies the nonce (server
//! side) and the cnonce (client side). Nothing here panics on any input; the
//! parsers are fuzzed (`fuzz/fuzz_targets/digest_challenge.rs`).
//!
//! Client side: [`challenges`] / [`parse_challenge`] read a `WWW-Authenticate` or
//! `Proxy-Authenticate` value, [`strongest`] picks among the challenges of a
//! response, [`write_authorization`] answers one, and [`ClientAuth`] keeps what a
//! call needs between requests (nonce, nonce count, the stale-retry decision).
//!
//! Server side: [`Challenge::write`] writes a challenge, [`parse_authorization`]
//! reads the answer and [`Authorization::verify`] checks it against a password.
//! Whether the nonce is one the server issued, and whether the nonce count
//! replays, is the caller's business: only the caller knows its nonces.
//!
//! Parsing is lenient where real servers are sloppy and strict where guessing
//! would compute a wrong response:
//! - scheme and parameter names are case-insensitive, whitespace (including the
//!   CR/LF of folded headers) may appear around `=` and `,`, and unknown
//!   parameters are ignored;
//! - a value that should be quoted may come unquoted (`nonce=abc`, seen from
//!   Kamailio and others): it then runs to the next comma or whitespace. A value
//!   that should be a token may come quoted (`algorithm="MD5"`);
//! - a missing comma between two parameters is tolerated;
//! - but a missing realm or nonce, an unterminated quoted string, a parameter
//!   given twice, an algorithm we do not support, or a `qop` that names neither
//!   `auth` nor `auth-int` are [`DigestError`]s: answering anyway could only fail
//!   later and less clearly.

use std::borrow::Cow;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// Why a challenge or an authorization could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("no Digest challenge or credentials in the header value")]
    NotDigest,
    #[error("missing {0} parameter")]
    Missing(&'static str),
    #[error("{0} parameter given twice")]
    Duplicate(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("qop {0:?} offers neither auth nor auth-int")]
    UnsupportedQop(String),
    #[error("unterminated quoted string in parameter {0:?}")]
    UnterminatedQuote(String),
    #[error("{0} parameter is not a quoted string (RFC 7616 §3.3)")]
    Unquoted(&'static str),
    #[error("nonce count {0:?} is not 1 to 8 hex digits")]
    BadNonceCount(String),
    #[error("malformed header at byte {at}: {what}")]
    Syntax { at: usize, what: &'static str },
}

/// Why a server rejects an `Authorization` / `Proxy-Authorization`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed credentials: {0}")]
    Malformed(#[from] DigestError),
    #[error("credentials for another realm")]
    WrongRealm,
    #[error("credentials for another user")]
    WrongUsername,
    #[error("wrong response (wrong password, method, uri or body)")]
    WrongResponse,
}

/// Digest algorithms we can compute, weakest first (the derived order is the
/// preference order of [`strongest`]: SHA-512-256 > SHA-256 > MD5, and within
/// one hash the `-sess` variant after the plain one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// Case-insensitive, as the IANA registry spells them.
    pub fn parse(token: &str) -> Option<Algorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(token))
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// `-sess`: H(A1) is rehashed with the nonce and cnonce.
    pub fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Hex digits of a hash (32 for MD5, 64 for the SHA-2 ones).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 32,
            _ => 64,
        }
    }

    /// H(p0 ":" p1 ":" …) in lower-case hex, on the stack.
    fn hash(self, parts: &[&[u8]]) -> Hex {
        fn run<D: Digest>(parts: &[&[u8]]) -> Hex {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            Hex::encode(&d.finalize())
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512_256>(parts),
        }
    }
}

/// The quality of protection an answer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    Auth,
    /// Also covers the message body: H(A2) includes H(entity-body).
    AuthInt,
}

impl Qop {
    pub fn name(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// The qop values a challenge offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QopOptions {
    pub auth: bool,
    pub auth_int: bool,
}

impl QopOptions {
    /// `auth` when offered (cheaper, and what every server accepts), `auth-int` only
    /// when it is all that is offered.
    pub fn choose(self) -> Option<Qop> {
        if self.auth {
            Some(Qop::Auth)
        } else if self.auth_int {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// A hash in lower-case hex, on the stack (64 digits at most).
#[derive(Clone, Copy)]
pub struct Hex {
    buf: [u8; 64],
    len: u8,
}

impl Hex {
    /// Hex of up to 32 bytes (longer input is cut: no hash here is longer).
    pub fn encode(bytes: &[u8]) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut h = Hex {
            buf: [0; 64],
            len: 0,
        };
        for (pair, b) in h.buf.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 15)];
            h.len += 2;
        }
        h
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cnonce from caller-supplied random bytes (16 hex digits). There is no RNG in
/// this module so that it stays deterministic and testable; any string without
/// `"` works as a cnonce too.
pub fn cnonce_from_random(random: [u8; 8]) -> Hex {
    Hex::encode(&random)
}

/// Everything the response hash depends on (RFC 7616 §3.4.1–3.4.3).
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    /// The plain user name (also with userhash: A1 uses the real name).
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    /// Used when `qop` is set or the algorithm is `-sess`.
    pub cnonce: &'a str,
    /// Exactly as written in `nc=` (8 hex digits from us; the server hashes what
    /// the client sent).
    pub nc: &'a str,
    /// `None`: RFC 2069 compatibility, response = H(HA1:nonce:HA2).
    pub qop: Option<Qop>,
    pub method: &'a str,
    pub uri: &'a str,
    /// The message body, hashed only for `auth-int`.
    pub body: &'a [u8],
}

/// The `response=` value.
pub fn compute_response(i: &ResponseInput<'_>) -> Hex {
    let alg = i.algorithm;
    let mut ha1 = alg.hash(&[
        i.username.as_bytes(),
        i.realm.as_bytes(),
        i.password.as_bytes(),
    ]);
    if alg.is_sess() {
        ha1 = alg.hash(&[ha1.as_bytes(), i.nonce.as_bytes(), i.cnonce.as_bytes()]);
    }
    let ha2 = match i.qop {
        Some(Qop::AuthInt) => {
            let body = alg.hash(&[i.body]);
            alg.hash(&[i.method.as_bytes(), i.uri.as_bytes(), body.as_bytes()])
        }
        _ => alg.hash(&[i.method.as_bytes(), i.uri.as_bytes()]),
    };
    match i.qop {
        Some(q) => alg.hash(&[
            ha1.as_bytes(),
            i.nonce.as_bytes(),
            i.nc.as_bytes(),
            i.cnonce.as_bytes(),
            q.name().as_bytes(),
            ha2.as_bytes(),
        ]),
        None => alg.hash(&[ha1.as_bytes(), i.nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// H(username ":" realm), the `username=` value when `userhash=true` (RFC 7616 §3.4.4).
pub fn user_hash(algorithm: Algorithm, username: &str, realm: &str) -> Hex {
    algorithm.hash(&[username.as_bytes(), realm.as_bytes()])
}

// ---------------------------------------------------------------------------
// Lexing: auth-scheme, auth-param = token BWS "=" BWS ( token / quoted-string ).

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Folded header values keep their CR/LF; they are whitespace here.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

enum Item<'a> {
    Scheme(&'a str),
    /// Name, value, and whether the value was a quoted string.
    Param(&'a str, Cow<'a, str>, bool),
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // Stops only before or after ASCII bytes, so on char boundaries.
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// The next scheme or parameter, `None` at the end. An error leaves the lexer
    /// unusable (the caller stops): there is no reliable place to resume.
    fn next(&mut self) -> Option<Result<Item<'a>, DigestError>> {
        self.skip_while(|b| is_ws(b) || b == b',');
        self.peek()?;
        let at = self.pos;
        let name = self.skip_while(is_tchar);
        if name.is_empty() {
            return Some(Err(DigestError::Syntax {
                at,
                what: "expected a scheme or parameter name",
            }));
        }
        self.skip_while(is_ws);
        if self.peek() != Some(b'=') {
            return Some(Ok(Item::Scheme(name)));
        }
        self.pos += 1;
        self.skip_while(is_ws);
        let quoted = self.peek() == Some(b'"');
        Some(self.value(name).map(|v| Item::Param(name, v, quoted)))
    }

    fn value(&mut self, name: &str) -> Result<Cow<'a, str>, DigestError> {
        if self.peek() != Some(b'"') {
            // Lenient: an unquoted value runs to the next comma or whitespace.
            let at = self.pos;
            let v = self.skip_while(|b| b != b',' && !is_ws(b));
            if v.is_empty() {
                return Err(DigestError::Syntax {
                    at,
                    what: "parameter without a value",
                });
            }
            return Ok(Cow::Borrowed(v));
        }
        self.pos += 1;
        let start = self.pos;
        let bytes = self.s.as_bytes();
        let mut escaped = false;
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    let raw = self.s.get(start..self.pos).unwrap_or_default();
                    self.pos += 1;
                    return Ok(if escaped {
                        Cow::Owned(unescape(raw))
                    } else {
                        Cow::Borrowed(raw)
                    });
                }
                b'\\' => {
                    escaped = true;
                    // A quoted-pair: skip the backslash and the (ASCII or not) byte
                    // after it; a multi-byte char's continuation bytes are never '"'.
                    self.pos += 2;
                }
                _ => self.pos += 1,
            }
        }
        Err(DigestError::UnterminatedQuote(name.to_owned()))
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads the parameters of one scheme up to the next scheme (left unread) or the
/// end. The outer error is lexical (stop reading the header); the inner one is the
/// first error `f` returned, reported once the whole challenge is consumed so that
/// the next challenge can still be read.
fn read_params<'a>(
    lx: &mut Lexer<'a>,
    mut f: impl FnMut(&'a str, Cow<'a, str>, bool) -> Result<(), DigestError>,
) -> Result<Result<(), DigestError>, DigestError> {
    let mut first_err = Ok(());
    loop {
        let before = lx.pos;
        match lx.next() {
            None => return Ok(first_err),
            Some(Err(e)) => return Err(e),
            Some(Ok(Item::Scheme(_))) => {
                lx.pos = before;
                return Ok(first_err);
            }
            Some(Ok(Item::Param(name, value, quoted))) => {
                if let Err(e) = f(name, value, quoted) {
                    first_err = first_err.and(Err(e));
                }
            }
        }
    }
}

/// The known parameters, so that their names are spelt once for matching,
/// duplicate detection and error messages.
const PARAMS: [&str; 14] = [
    "realm",
    "nonce",
    "opaque",
    "algorithm",
    "qop",
    "stale",
    "userhash",
    "domain",
    "username",
    "uri",
    "response",
    "cnonce",
    "nc",
    "charset",
];

/// The canonical name of a known parameter (`None` for unknown ones, which are
/// ignored), recording it in `seen`: a second sighting is an error, since two
/// nonces (or two of anything) leave no right answer.
fn known_param(seen: &mut u16, name: &str) -> Result<Option<&'static str>, DigestError> {
    let Some(i) = PARAMS.iter().position(|p| p.eq_ignore_ascii_case(name)) else {
        return Ok(None);
    };
    let bit = 1 << i;
    if *seen & bit != 0 {
        return Err(DigestError::Duplicate(PARAMS[i]));
    }
    *seen |= bit;
    Ok(Some(PARAMS[i]))
}

fn parse_algorithm(v: &str) -> Result<Algorithm, DigestError> {
    Algorithm::parse(v).ok_or_else(|| DigestError::UnsupportedAlgorithm(v.to_owned()))
}

fn parse_bool(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

// ---------------------------------------------------------------------------
// Challenges.

/// One `Digest` challenge. Values borrow from the header unless they contained
/// quoted-pairs (`\"`), which are unescaped into an owned string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub opaque: Option<Cow<'a, str>>,
    /// MD5 when the challenge names none (RFC 7616 §3.3).
    pub algorithm: Algorithm,
    /// `None`: no `qop` parameter, answered the RFC 2069 way.
    pub qop: Option<QopOptions>,
    pub stale: bool,
    pub userhash: bool,
    pub domain: Option<Cow<'a, str>>,
}

impl<'a> Challenge<'a> {
    /// The qop an answer uses: `auth` when offered, else `auth-int`, else none.
    pub fn chosen_qop(&self) -> Option<Qop> {
        self.qop.and_then(QopOptions::choose)
    }

    /// Writes the header value (server side): `Digest realm="…", nonce="…",
    /// opaque="…", algorithm=…, qop="…", stale=true, userhash=true, domain="…"`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Digest ");
        write_quoted(out, "realm", &self.realm);
        out.extend_from_slice(b", ");
        write_quoted(out, "nonce", &self.nonce);
        if let Some(o) = &self.opaque {
            out.extend_from_slice(b", ");
            write_quoted(out, "opaque", o);
        }
        out.extend_from_slice(b", algorithm=");
        out.extend_from_slice(self.algorithm.name().as_bytes());
        if let Some(q) = self.qop {
            out.extend_from_slice(match (q.auth, q.auth_int) {
                (true, true) => b", qop=\"auth,auth-int\"".as_slice(),
                (true, false) => b", qop=\"auth\"",
                (false, true) => b", qop=\"auth-int\"",
                (false, false) => b"",
            });
        }
        if self.stale {
            out.extend_from_slice(b", stale=true");
        }
        if self.userhash {
            out.extend_from_slice(b", userhash=true");
        }
        if let Some(d) = &self.domain {
            out.extend_from_slice(b", ");
            write_quoted(out, "domain", d);
        }
    }

    fn from_params(lx: &mut Lexer<'a>) -> Result<Result<Challenge<'a>, DigestError>, DigestError> {
        let mut realm = None;
        let mut nonce = None;
        let mut ch = Challenge {
            realm: Cow::Borrowed(""),
            nonce: Cow::Borrowed(""),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop: None,
            stale: false,
            userhash: false,
            domain: None,
        };
        let mut seen = 0u16;
        let params = read_params(lx, |name, v, quoted| {
            let Some(known) = known_param(&mut seen, name)? else {
                return Ok(());
            };
            // Lenient elsewhere (a bare `qop=auth`, credentials), but a challenge's
            // realm, nonce and opaque are arbitrary strings that must be quoted: a
            // server that does not is worth a clear failure rather than a guess at
            // where its value ends (the realm and nonce are hashed as sent).
            if !quoted && matches!(known, "realm" | "nonce" | "opaque") {
                return Err(DigestError::Unquoted(known));
            }
            match known {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => ch.opaque = Some(v),
                "algorithm" => ch.algorithm = parse_algorithm(&v)?,
                "qop" => {
                    let mut q = QopOptions::default();
                    for t in v
                        .split(',')
                        .map(|t| t.trim_matches(|c: char| is_ws(c as u8)))
                    {
                        q.auth |= t.eq_ignore_ascii_case("auth");
                        q.auth_int |= t.eq_ignore_ascii_case("auth-int");
                    }
                    if q.choose().is_none() {
                        return Err(DigestError::UnsupportedQop(v.into_owned()));
                    }
                    ch.qop = Some(q);
                }
                "stale" => ch.stale = parse_bool(&v),
                "userhash" => ch.userhash = parse_bool(&v),
                "domain" => ch.domain = Some(v),
                // Parameters of credentials, or charset (always UTF-8 in SIP).
                _ => {}
            }
            Ok(())
        })?;
        Ok(params.and_then(|()| {
            ch.realm = realm.ok_or(DigestError::Missing("realm"))?;
            ch.nonce = nonce.ok_or(DigestError::Missing("nonce"))?;
            Ok(ch)
        }))
    }
}

/// The `Digest` challenges of one header value, in order; other schemes (Basic,
/// Bearer…) are skipped. A challenge with a semantic error (missing nonce,
/// unsupported algorithm…) yields its error and reading goes on; a lexical error
/// (unterminated quote…) yields its error and ends the iteration.
pub fn challenges(value: &str) -> Challenges<'_> {
    Challenges {
        lx: Lexer { s: value, pos: 0 },
        done: false,
    }
}

/// See [`challenges`].
pub struct Challenges<'a> {
    lx: Lexer<'a>,
    done: bool,
}

impl<'a> Iterator for Challenges<'a> {
    type Item = Result<Challenge<'a>, DigestError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let at = self.lx.pos;
            let scheme = match self.lx.next() {
                None => break,
                Some(Ok(Item::Scheme(s))) => s,
                Some(Ok(Item::Param(..))) => {
                    self.done = true;
                    return Some(Err(DigestError::Syntax {
                        at,
                        what: "expected an auth scheme",
                    }));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if scheme.eq_ignore_ascii_case("Digest") {
                match Challenge::from_params(&mut self.lx) {
                    Ok(r) => return Some(r),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
            if let Err(e) = read_params(&mut self.lx, |_, _, _| Ok(())) {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.done = true;
        None
    }
}

/// The first `Digest` challenge of a header value.
pub fn parse_challenge(value: &str) -> Result<Challenge<'_>, DigestError> {
    challenges(value)
        .next()
        .unwrap_or(Err(DigestError::NotDigest))
}

/// Among all the challenges of a response (several header values, each with one or
/// more challenges), the one with the strongest algorithm we support:
/// SHA-512-256(-sess) > SHA-256(-sess) > MD5(-sess); the first one on a tie, since
/// RFC 8760 §2.4 has servers list their preferred challenge first.
///
/// Malformed challenges are skipped when a usable one exists; otherwise the first
/// error is returned (so a response offering only unknown algorithms gives
/// [`DigestError::UnsupportedAlgorithm`]), or [`DigestError::NotDigest`].
///
/// All realms compete: a response challenging for several realms (several proxies)
/// needs one answer per realm, which the caller gets by filtering [`challenges`].
pub fn strongest<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge<'a>, DigestError> {
    let mut best: Option<Challenge<'a>> = None;
    let mut first_err = None;
    for r in header_values.into_iter().flat_map(challenges) {
        match r {
            Ok(c) => {
                if best.as_ref().is_none_or(|b| c.algorithm > b.algorithm) {
                    best = Some(c);
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    best.ok_or(first_err.unwrap_or(DigestError::NotDigest))
}

// ---------------------------------------------------------------------------
// Answers.

/// Who answers.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// What is answered: for SIP, the method and the Request-URI of the request that
/// carries the credentials, and its body (hashed for `auth-int` only).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
}

/// What an answer needs from a challenge (borrowed from a [`Challenge`] or from a
/// [`ClientAuth`]).
struct Answering<'a> {
    realm: &'a str,
    nonce: &'a str,
    opaque: Option<&'a str>,
    algorithm: Algorithm,
    qop: Option<Qop>,
    userhash: bool,
}

/// The `Authorization` / `Proxy-Authorization` value answering `ch`, appended to
/// `out` (no other allocation). `cnonce` is the caller's fresh random string (see
/// [`cnonce_from_random`]); `nc` the count of requests answered with this nonce,
/// starting at 1.
pub fn write_authorization(
    out: &mut Vec<u8>,
    ch: &Challenge<'_>,
    creds: &Credentials<'_>,
    req: &Request<'_>,
    cnonce: &str,
    nc: u32,
) {
    let a = Answering {
        realm: &ch.realm,
        nonce: &ch.nonce,
        opaque: ch.opaque.as_deref(),
        algorithm: ch.algorithm,
        qop: ch.chosen_qop(),
        userhash: ch.userhash,
    };
    write_answer(out, &a, creds, req, cnonce, nc);
}

fn write_answer(
    out: &mut Vec<u8>,
    a: &Answering<'_>,
    creds: &Credentials<'_>,
    req: &Request<'_>,
    cnonce: &str,
    nc: u32,
) {
    let nc_hex = hex8(nc);
    let nc_str = std::str::from_utf8(&nc_hex).unwrap_or_default();
    let response = compute_response(&ResponseInput {
        algorithm: a.algorithm,
        username: creds.username,
        realm: a.realm,
        password: creds.password,
        nonce: a.nonce,
        cnonce,
        nc: nc_str,
        qop: a.qop,
        method: req.method,
        uri: req.uri,
        body: req.body,
    });
    let uses_cnonce = a.qop.is_some() || a.algorithm.is_sess();
    out.extend_from_slice(b"Digest ");
    if a.userhash {
        let uh = user_hash(a.algorithm, creds.username, a.realm);
        write_quoted(out, "username", uh.as_str());
    } else {
        write_quoted(out, "username", creds.username);
    }
    out.extend_from_slice(b", ");
    write_quoted(out, "realm", a.realm);
    out.extend_from_slice(b", ");
    write_quoted(out, "nonce", a.nonce);
    out.extend_from_slice(b", ");
    write_quoted(out, "uri", req.uri);
    out.extend_from_slice(b", ");
    write_quoted(out, "response", response.as_str());
    out.extend_from_slice(b", algorithm=");
    out.extend_from_slice(a.algorithm.name().as_bytes());
    if uses_cnonce {
        out.extend_from_slice(b", ");
        write_quoted(out, "cnonce", cnonce);
    }
    if let Some(o) = a.opaque {
        out.extend_from_slice(b", ");
        write_quoted(out, "opaque", o);
    }
    if let Some(q) = a.qop {
        out.extend_from_slice(b", qop=");
        out.extend_from_slice(q.name().as_bytes());
        out.extend_from_slice(b", nc=");
        out.extend_from_slice(&nc_hex);
    }
    if a.userhash {
        out.extend_from_slice(b", userhash=true");
    }
}

/// `name="value"` with `"` and `\` escaped. Control characters other than tab are
/// dropped: they cannot appear in a quoted-string, and a CR/LF from a hostile
/// challenge must not start a new header line.
fn write_quoted(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    for &b in value.as_bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\t' => out.push(b),
            0..=31 | 127 => {}
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The nonce count as 8 lower-case hex digits.
fn hex8(n: u32) -> [u8; 8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, d) in out.iter_mut().enumerate() {
        *d = DIGITS[((n >> (28 - 4 * i)) & 15) as usize];
    }
    out
}

// ---------------------------------------------------------------------------
// Per-call client state.

/// Where the request currently being authenticated stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request pending with this realm.
    Idle,
    /// Challenged; the next credentials answer that challenge.
    Challenged,
    /// Challenged with `stale=true` after answering; the next credentials are the retry.
    StaleChallenged,
    /// Sent credentials from the cached nonce on a new request (pre-emptively).
    SentPreemptive,
    /// Sent credentials answering a challenge of this very request.
    SentAnswer,
    /// Sent the one retry a stale nonce allows.
    SentStaleRetry,
}

/// What to do with a challenge, from [`ClientAuth::on_challenge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A first challenge for this request: answer it.
    Answer,
    /// Our nonce expired (`stale=true`): answer again with the new nonce, once,
    /// without counting a failure.
    StaleRetry,
    /// Our credentials were refused: fail the call (reason: auth).
    Rejected,
}

/// What a call remembers of one realm's last challenge (per dialog and realm), so
/// that later requests (re-INVITE, BYE) can be answered and a refused answer told
/// apart from an expired nonce.
///
/// 40 bytes on 64-bit targets, plus one heap block holding realm, nonce and
/// opaque back to back (allocated when a challenge is taken, never on the answer
/// path).
#[derive(Debug, Clone)]
pub struct ClientAuth {
    text: Box<str>,
    realm_end: u32,
    nonce_end: u32,
    nc: u32,
    algorithm: Algorithm,
    qop: Option<Qop>,
    userhash: bool,
    has_opaque: bool,
    phase: Phase,
}

impl ClientAuth {
    /// State after the first challenge of a realm; the next
    /// [`ClientAuth::write_authorization`] answers it.
    pub fn new(ch: &Challenge<'_>) -> ClientAuth {
        let mut s = ClientAuth {
            text: Box::from(""),
            realm_end: 0,
            nonce_end: 0,
            nc: 0,
            algorithm: ch.algorithm,
            qop: None,
            userhash: false,
            has_opaque: false,
            phase: Phase::Challenged,
        };
        s.take(ch);
        s
    }

    fn take(&mut self, ch: &Challenge<'_>) {
        let opaque = ch.opaque.as_deref().unwrap_or_default();
        let mut text = String::with_capacity(ch.realm.len() + ch.nonce.len() + opaque.len());
        text.push_str(&ch.realm);
        text.push_str(&ch.nonce);
        text.push_str(opaque);
        // Lengths past u32 cannot come from a SIP message; saturating keeps the
        // accessors' `get` from panicking if one ever did (they return "").
        self.realm_end = u32::try_from(ch.realm.len()).unwrap_or(u32::MAX);
        self.nonce_end = u32::try_from(ch.realm.len() + ch.nonce.len()).unwrap_or(u32::MAX);
        self.text = text.into_boxed_str();
        self.has_opaque = ch.opaque.is_some();
        self.algorithm = ch.algorithm;
        self.qop = ch.chosen_qop();
        self.userhash = ch.userhash;
        self.nc = 0;
    }

    pub fn realm(&self) -> &str {
        self.text.get(..self.realm_end as usize).unwrap_or_default()
    }

    pub fn nonce(&self) -> &str {
        self.text
            .get(self.realm_end as usize..self.nonce_end as usize)
            .unwrap_or_default()
    }

    pub fn opaque(&self) -> Option<&str> {
        self.has_opaque
            .then(|| self.text.get(self.nonce_end as usize..).unwrap_or_default())
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn qop(&self) -> Option<Qop> {
        self.qop
    }

    /// The nonce count of the last answer (0 before the first).
    pub fn nonce_count(&self) -> u32 {
        self.nc
    }

    /// A 401/407 with a challenge of this realm arrived for the request in
    /// progress. Takes the new nonce unless the answer is [`Verdict::Rejected`].
    ///
    /// A challenge to a request that carried no credentials, or only pre-emptive
    /// ones from the cached nonce (the server may not reuse nonces), is answered. A
    /// challenge to our answer is a refusal, unless it says `stale=true`: then one
    /// retry with the new nonce is allowed.
    pub fn on_challenge(&mut self, ch: &Challenge<'_>) -> Verdict {
        if *ch.realm != *self.realm() {
            self.take(ch);
            self.phase = Phase::Challenged;
            return Verdict::Answer;
        }
        let (verdict, phase) = match self.phase {
            Phase::Idle | Phase::Challenged | Phase::StaleChallenged => {
                (Verdict::Answer, Phase::Challenged)
            }
            Phase::SentPreemptive | Phase::SentAnswer if ch.stale => {
                (Verdict::StaleRetry, Phase::StaleChallenged)
            }
            Phase::SentPreemptive => (Verdict::Answer, Phase::Challenged),
            Phase::SentAnswer | Phase::SentStaleRetry => (Verdict::Rejected, Phase::Idle),
        };
        self.phase = phase;
        if verdict != Verdict::Rejected {
            self.take(ch);
        }
        verdict
    }

    /// The request got a final response other than 401/407: the next request
    /// starts afresh.
    pub fn on_final_response(&mut self) {
        self.phase = Phase::Idle;
    }

    /// Appends the credentials for `req` (answering the last challenge, or
    /// pre-emptively on a new request) and counts the nonce use.
    pub fn write_authorization(
        &mut self,
        out: &mut Vec<u8>,
        creds: &Credentials<'_>,
        req: &Request<'_>,
        cnonce: &str,
    ) {
        self.nc = self.nc.wrapping_add(1);
        self.phase = match self.phase {
            Phase::Idle => Phase::SentPreemptive,
            Phase::Challenged => Phase::SentAnswer,
            Phase::StaleChallenged => Phase::SentStaleRetry,
            sent => sent,
        };
        let a = Answering {
            realm: self.realm(),
            nonce: self.nonce(),
            opaque: self.opaque(),
            algorithm: self.algorithm,
            qop: self.qop,
            userhash: self.userhash,
        };
        write_answer(out, &a, creds, req, cnonce, self.nc);
    }
}

// ---------------------------------------------------------------------------
// Server side: reading and checking credentials.

/// Parsed `Authorization` / `Proxy-Authorization` credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The user name, or H(username:realm) when `userhash` is set.
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub uri: Cow<'a, str>,
    pub response: Cow<'a, str>,
    pub algorithm: Algorithm,
    pub cnonce: Option<Cow<'a, str>>,
    pub opaque: Option<Cow<'a, str>>,
    pub qop: Option<Qop>,
    /// As sent (1 to 8 hex digits): the response hashes this text.
    pub nc: Option<Cow<'a, str>>,
    pub userhash: bool,
}

/// Reads credentials (same leniency and errors as the challenge parser). `qop`
/// requires `cnonce` and `nc`; a `-sess` algorithm requires `cnonce`. `username*`
/// (RFC 7616's encoded form) is not read: SIP user names are ASCII, and SIP
/// clients hash non-ASCII ones with userhash instead.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, DigestError> {
    let mut lx = Lexer { s: value, pos: 0 };
    match lx.next() {
        Some(Ok(Item::Scheme(s))) if s.eq_ignore_ascii_case("Digest") => {}
        Some(Err(e)) => return Err(e),
        _ => return Err(DigestError::NotDigest),
    }
    let mut username = None;
    let mut realm = None;
    let mut nonce = None;
    let mut uri = None;
    let mut response = None;
    let mut a = Authorization {
        username: Cow::Borrowed(""),
        realm: Cow::Borrowed(""),
        nonce: Cow::Borrowed(""),
        uri: Cow::Borrowed(""),
        response: Cow::Borrowed(""),
        algorithm: Algorithm::Md5,
        cnonce: None,
        opaque: None,
        qop: None,
        nc: None,
        userhash: false,
    };
    let mut seen = 0u16;
    read_params(&mut lx, |name, v, _| {
        let Some(known) = known_param(&mut seen, name)? else {
            return Ok(());
        };
        match known {
            "username" => username = Some(v),
            "realm" => realm = Some(v),
            "nonce" => nonce = Some(v),
            "uri" => uri = Some(v),
            "response" => response = Some(v),
            "algorithm" => a.algorithm = parse_algorithm(&v)?,
            "cnonce" => a.cnonce = Some(v),
            "opaque" => a.opaque = Some(v),
            "qop" => {
                a.qop = Some(if v.eq_ignore_ascii_case("auth") {
                    Qop::Auth
                } else if v.eq_ignore_ascii_case("auth-int") {
                    Qop::AuthInt
                } else {
                    return Err(DigestError::UnsupportedQop(v.into_owned()));
                })
            }
            "nc" => {
                if v.is_empty() || v.len() > 8 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(DigestError::BadNonceCount(v.into_owned()));
                }
                a.nc = Some(v);
            }
            "userhash" => a.userhash = parse_bool(&v),
            _ => {}
        }
        Ok(())
    })??;
    a.username = username.ok_or(DigestError::Missing("username"))?;
    a.realm = realm.ok_or(DigestError::Missing("realm"))?;
    a.nonce = nonce.ok_or(DigestError::Missing("nonce"))?;
    a.uri = uri.ok_or(DigestError::Missing("uri"))?;
    a.response = response.ok_or(DigestError::Missing("response"))?;
    if (a.qop.is_some() || a.algorithm.is_sess()) && a.cnonce.is_none() {
        return Err(DigestError::Missing("cnonce"));
    }
    if a.qop.is_some() && a.nc.is_none() {
        return Err(DigestError::Missing("nc"));
    }
    Ok(a)
}

/// What the server knows: the realm it challenged for, the plain user name and
/// password, and the request the credentials came with.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub realm: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    /// Hashed for `auth-int` only.
    pub body: &'a [u8],
}

impl Authorization<'_> {
    /// The nonce count as a number, for the caller's replay check.
    pub fn nonce_count(&self) -> Option<u32> {
        u32::from_str_radix(self.nc.as_deref()?, 16).ok()
    }

    /// Checks realm, user (hashed when `userhash`) and response. The response is
    /// computed over the `uri` the client sent; that it names the request's target,
    /// that the nonce is one we issued and that `nc` grows are the caller's checks.
    pub fn verify(&self, e: &Expected<'_>) -> Result<(), VerifyError> {
        if *self.realm != *e.realm {
            return Err(VerifyError::WrongRealm);
        }
        let user_ok = if self.userhash {
            eq_hex(
                &self.username,
                user_hash(self.algorithm, e.username, e.realm).as_str(),
            )
        } else {
            *self.username == *e.username
        };
        if !user_ok {
            return Err(VerifyError::WrongUsername);
        }
        let expected = compute_response(&ResponseInput {
            algorithm: self.algorithm,
            username: e.username,
            realm: e.realm,
            password: e.password,
            nonce: &self.nonce,
            cnonce: self.cnonce.as_deref().unwrap_or_default(),
            nc: self.nc.as_deref().unwrap_or_default(),
            qop: self.qop,
            method: e.method,
            uri: &self.uri,
            body: e.body,
        });
        if eq_hex(&self.response, expected.as_str()) {
            Ok(())
        } else {
            Err(VerifyError::WrongResponse)
        }
    }
}

/// [`parse_authorization`] then [`Authorization::verify`].
pub fn verify_authorization(value: &str, e: &Expected<'_>) -> Result<(), VerifyError> {
    parse_authorization(value)?.verify(e)
}

/// Hex digests compared without case (some clients upper-case them) and without
/// an early exit on the first differing digit.
fn eq_hex(got: &str, want: &str) -> bool {
    got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (g, w)| acc | (g.to_ascii_lowercase() ^ w))
            == 0
}

#[cfg(test)]
mod tests;

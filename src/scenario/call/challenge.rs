//! The `challenge:` step: a digest server for testing clients (RFC 3261 §22.1,
//! RFC 7616, RFC 8760). The request received last is answered with 401 +
//! `WWW-Authenticate` (or 407 + `Proxy-Authenticate`); the step then waits, like a
//! `recv`, for the same method again in the same call (a new server transaction,
//! CSeq + 1), checks its credentials and becomes the last received message, so the
//! next `send:` answers it.
//!
//! Refusals (wrong password, unknown user, a nonce we did not issue, malformed
//! credentials…) are answered 403 and fail the call with reason `auth`; a request
//! that comes without credentials is challenged once more first. Nothing a peer
//! sends can panic the call: every header is parsed by the lenient, fuzzed digest
//! parser and every problem is a [`Refusal`].
//!
//! Nonces are computed from the run id, the call number and a per-call counter
//! (32 hex digits), not stored: the call keeps a counter and the time the latest
//! one went out. They are unique per run and call, not secret (this is a test
//! server). A nonce is good for one accepted answer: the next challenge in the call
//! issues the next one, so a replay of accepted credentials names an old nonce.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Instant;

use super::{Call, CallEnv, Ctx, Effects, LastMessage, Wait, first_line};
use crate::report::FailureReason;
use crate::scenario::plan::ChallengeStep;
use crate::scenario::template::Template;
use crate::sip::digest::{
    self, Authorization, Challenge, DigestError, Expected, Qop, QopOptions, VerifyError,
};
use crate::sip::header::HeaderName;
use crate::sip::message::{self, Message, unfold_into};

/// What a call remembers while it challenges (boxed in the call: only calls that
/// reach a `challenge:` step carry it). Kept to the end of the call, so that a
/// second challenge step issues fresh nonces.
#[derive(Debug)]
pub(super) struct ServerAuth {
    /// Challenges sent in this call; the latest nonce is [`Nonce::new`]`(…, issued)`.
    issued: u32,
    /// When the latest nonce went out (`stale_after`).
    issued_at: Instant,
    /// The request of this step came once without credentials and was challenged
    /// again; the next one without is refused.
    rechallenged: bool,
    /// `stale=true` went out (once per call, so `stale_after: 0s` cannot loop).
    stale_sent: bool,
}

/// Why credentials were refused: the call's failure detail, and (short) the 403's
/// reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    #[error("{method} came again without {header} after two challenges")]
    NoCredentials {
        method: String,
        header: &'static str,
    },
    #[error("malformed {header}: {error}")]
    Malformed {
        header: &'static str,
        error: DigestError,
    },
    #[error("credentials for realm `{got}`, challenged for `{want}`")]
    WrongRealm { got: String, want: String },
    #[error("credentials use algorithm {got}, challenged with {want}")]
    WrongAlgorithm {
        got: &'static str,
        want: &'static str,
    },
    #[error("credentials use qop {got}, challenged with qop={want}")]
    WrongQop {
        got: &'static str,
        want: &'static str,
    },
    #[error("nonce count 0 (counts start at 1)")]
    ZeroNonceCount,
    #[error("nonce `{0}` was never issued to this call")]
    UnknownNonce(String),
    #[error("stale nonce reused: the answer to stale=true still carries the old nonce")]
    StaleNonceReused,
    #[error("nonce of an earlier challenge of this call (already used or replaced)")]
    OldNonce,
    #[error("opaque not returned unchanged (got {got:?}, sent `{want}`)")]
    WrongOpaque { got: Option<String>, want: String },
    #[error("uri `{got}` in the credentials is not the Request-URI `{want}`")]
    WrongUri { got: String, want: String },
    #[error("unknown user `{user}`: no row of {file} has it in column `{column}`")]
    UnknownUser {
        user: String,
        file: String,
        column: String,
    },
    #[error("userhash credentials cannot be checked without `username:` (and not with `lookup:`)")]
    Userhash,
    #[error("credentials for user `{got}`, expected `{want}`")]
    WrongUsername { got: String, want: String },
    #[error(
        "wrong response from user `{user}` (wrong password, or a wrong method, uri or body hashed)"
    )]
    WrongResponse { user: String },
}

impl Refusal {
    /// The 403's reason phrase: a few words, no CR/LF whatever the peer sent.
    fn reason(&self) -> &'static str {
        match self {
            Refusal::NoCredentials { .. } => "Forbidden (no credentials)",
            Refusal::Malformed { .. } => "Forbidden (malformed credentials)",
            Refusal::WrongRealm { .. } => "Forbidden (wrong realm)",
            Refusal::WrongAlgorithm { .. } => "Forbidden (wrong algorithm)",
            Refusal::WrongQop { .. } => "Forbidden (wrong qop)",
            Refusal::ZeroNonceCount => "Forbidden (bad nonce count)",
            Refusal::UnknownNonce(_) => "Forbidden (unknown nonce)",
            Refusal::StaleNonceReused => "Forbidden (stale nonce reused)",
            Refusal::OldNonce => "Forbidden (old nonce)",
            Refusal::WrongOpaque { .. } => "Forbidden (wrong opaque)",
            Refusal::WrongUri { .. } => "Forbidden (wrong uri)",
            Refusal::UnknownUser { .. } => "Forbidden (unknown user)",
            Refusal::Userhash => "Forbidden (userhash not supported)",
            Refusal::WrongUsername { .. } => "Forbidden (wrong user)",
            Refusal::WrongResponse { .. } => "Forbidden (wrong password)",
        }
    }
}

/// What became of a request at a challenge step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Took {
    /// Credentials accepted: the call moved past the step (the request is `last`).
    Accepted,
    /// Challenged again (no credentials yet, or `stale=true`): still waiting.
    Waiting,
    /// Refused, or not the request expected: the call failed.
    Failed,
}

/// 32 hex digits: run id, call number, challenge counter. On the stack.
struct Nonce([u8; 32]);

impl Nonce {
    fn new(run_id: u32, number: u64, k: u32) -> Nonce {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bits = (u128::from(run_id) << 96) | (u128::from(number) << 32) | u128::from(k);
        let mut n = [0u8; 32];
        for (i, d) in n.iter_mut().enumerate() {
            *d = HEX[((bits >> (124 - 4 * i)) & 15) as usize];
        }
        Nonce(n)
    }

    fn as_str(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The step's templated values for this call, rendered into one buffer.
struct Values {
    buf: Vec<u8>,
    realm: Range<usize>,
    opaque: Option<Range<usize>>,
}

impl Values {
    fn text(&self, r: &Range<usize>) -> Cow<'_, str> {
        String::from_utf8_lossy(self.buf.get(r.clone()).unwrap_or_default())
    }
    fn realm(&self) -> Cow<'_, str> {
        self.text(&self.realm)
    }
    fn opaque(&self) -> Option<Cow<'_, str>> {
        self.opaque.as_ref().map(|r| self.text(r))
    }
}

/// Header names of a challenge: (response code, reason, challenge header,
/// credentials header).
fn names(step: &ChallengeStep) -> (u16, &'static str, &'static str, &'static str) {
    if step.proxy {
        (
            407,
            "Proxy Authentication Required",
            "Proxy-Authenticate",
            "Proxy-Authorization",
        )
    } else {
        (401, "Unauthorized", "WWW-Authenticate", "Authorization")
    }
}

impl Call {
    /// The step at `pc` is a challenge, reached by `run`: challenge the request
    /// received last (first time), then take queued requests. True when the call
    /// moved past the step (the caller goes on with the next one).
    pub(super) fn challenge_step(
        &mut self,
        env: &CallEnv,
        step: &ChallengeStep,
        now: Instant,
        fx: &mut Effects<'_>,
        current: Option<&Message<'_>>,
    ) -> bool {
        if self.wait.is_none_or(|w| w.pc != self.pc) {
            let last = std::mem::take(&mut self.last);
            let sent = match current {
                Some(req) => self.first_challenge(env, step, req, now, fx),
                None => match message::parse(&last) {
                    Ok(req) => self.first_challenge(env, step, &req, now, fx),
                    Err(_) => Err("no request received yet".to_string()),
                },
            };
            self.last = last;
            if let Err(why) = sent {
                let at = self.position(env);
                self.fail(
                    FailureReason::ScenarioError,
                    format!("{at}: challenge: {why}"),
                );
                return false;
            }
        }
        while let Some(raw) = self.inbox.pop_front() {
            let Ok(msg) = message::parse(&raw) else {
                continue;
            };
            match self.take_credentials(env, step, &msg, now, fx) {
                Took::Accepted => return true,
                Took::Waiting => {}
                Took::Failed => return false,
            }
        }
        false
    }

    fn first_challenge(
        &mut self,
        env: &CallEnv,
        step: &ChallengeStep,
        req: &Message<'_>,
        now: Instant,
        fx: &mut Effects<'_>,
    ) -> Result<(), String> {
        // ACK and CANCEL get no response of their own to carry a challenge.
        if !req.is_request() || matches!(req.method(), Some("ACK" | "CANCEL")) {
            return Err(format!(
                "the last message received is not a request to challenge (`{}`)",
                first_line(req.raw)
            ));
        }
        let extras = self.extras();
        match extras.server_auth.as_mut() {
            // A second challenge step in the call: nonces go on counting.
            Some(s) => s.rechallenged = false,
            None => {
                extras.server_auth = Some(ServerAuth {
                    issued: 0,
                    issued_at: now,
                    rechallenged: false,
                    stale_sent: false,
                });
            }
        }
        self.send_challenge(env, step, req, now, fx, false);
        Ok(())
    }

    /// A request (or anything else) delivered while the call waits at challenge
    /// step `step`.
    pub(super) fn take_credentials(
        &mut self,
        env: &CallEnv,
        step: &ChallengeStep,
        msg: &Message<'_>,
        now: Instant,
        fx: &mut Effects<'_>,
    ) -> Took {
        // The challenged request is still `last` (the plan keeps it for this step).
        let want = self
            .last
            .trim_ascii_start()
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default();
        let same = msg
            .method()
            .is_some_and(|m| want.is_empty() || m.as_bytes().eq_ignore_ascii_case(want));
        if !same {
            let at = self.position(env);
            let got = first_line(msg.raw);
            let want = String::from_utf8_lossy(want).into_owned();
            self.fail(
                FailureReason::UnexpectedMessage,
                format!("{at}: expected the {want} again with credentials, got `{got}`"),
            );
            return Took::Failed;
        }
        let (_, _, _, header) = names(step);
        let values = self.challenge_values(env, step, Some(msg), fx);
        let mut result = None;
        let mut first_problem = None;
        for h in msg.headers_named(header) {
            let value = h.value();
            let creds = match digest::parse_authorization(&value) {
                Ok(c) => c,
                Err(error) => {
                    first_problem.get_or_insert(Refusal::Malformed { header, error });
                    continue;
                }
            };
            // Credentials for other realms (other proxies) are not ours to check.
            if *creds.realm != *values.realm() {
                first_problem.get_or_insert(Refusal::WrongRealm {
                    got: creds.realm.to_string(),
                    want: values.realm().into_owned(),
                });
                continue;
            }
            result = Some(self.check(env, step, msg, &creds, &values, now, fx));
            break;
        }
        let result = match (result, first_problem) {
            (Some(r), _) => r,
            (None, Some(problem)) => Err(problem),
            (None, None) => {
                let auth = self.extras.as_mut().and_then(|e| e.server_auth.as_mut());
                if let Some(s) = auth.filter(|s| !s.rechallenged) {
                    s.rechallenged = true;
                    self.send_challenge(env, step, msg, now, fx, false);
                    return Took::Waiting;
                }
                Err(Refusal::NoCredentials {
                    method: msg.method().unwrap_or_default().to_string(),
                    header,
                })
            }
        };
        match result {
            Ok(false) => {
                if env.keep_last || env.plan.needs_last_after(self.pc) {
                    self.last.clear();
                    self.last.extend_from_slice(msg.raw);
                } else {
                    self.last = Vec::new();
                }
                self.wait = None;
                self.pc += 1;
                Took::Accepted
            }
            Ok(true) => {
                if let Some(s) = self.extras.as_mut().and_then(|e| e.server_auth.as_mut()) {
                    s.stale_sent = true;
                }
                self.send_challenge(env, step, msg, now, fx, true);
                Took::Waiting
            }
            Err(refusal) => {
                let reason = refusal.reason();
                let resp = fx
                    .out
                    .build(|b| write_response(msg, 403, reason, env.run_id, self.number, None, b));
                self.send_response(msg, 403, resp, now, fx);
                fx.ctr.auth.failures += 1;
                let at = self.position(env);
                self.fail(FailureReason::Auth, format!("{at}: {refusal}"));
                Took::Failed
            }
        }
    }

    /// Checks credentials of our realm. `Ok(true)`: right, but on a nonce older
    /// than `stale_after` (answer `stale=true`); `Ok(false)`: accepted.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        env: &CallEnv,
        step: &ChallengeStep,
        msg: &Message<'_>,
        creds: &Authorization<'_>,
        values: &Values,
        now: Instant,
        fx: &mut Effects<'_>,
    ) -> Result<bool, Refusal> {
        let Some((issued, issued_at, stale_sent)) = self
            .extras
            .as_ref()
            .and_then(|e| e.server_auth.as_ref())
            .map(|s| (s.issued, s.issued_at, s.stale_sent))
        else {
            return Err(Refusal::UnknownNonce(creds.nonce.to_string()));
        };
        if creds.algorithm != step.algorithm {
            return Err(Refusal::WrongAlgorithm {
                got: creds.algorithm.name(),
                want: step.algorithm.name(),
            });
        }
        let current = Nonce::new(env.run_id, self.number, issued);
        if *creds.nonce != *current.as_str() {
            let earlier = (1..issued)
                .any(|k| *creds.nonce == *Nonce::new(env.run_id, self.number, k).as_str());
            return Err(match (earlier, stale_sent) {
                (true, true) => Refusal::StaleNonceReused,
                (true, false) => Refusal::OldNonce,
                (false, _) => Refusal::UnknownNonce(creds.nonce.to_string()),
            });
        }
        if let Some(want) = values.opaque()
            && creds.opaque.as_deref() != Some(&*want)
        {
            return Err(Refusal::WrongOpaque {
                got: creds.opaque.as_ref().map(|o| o.to_string()),
                want: want.into_owned(),
            });
        }
        if let Some(want) = step.qop
            && creds.qop != Some(want)
        {
            return Err(Refusal::WrongQop {
                got: creds.qop.map_or("none", Qop::name),
                want: want.name(),
            });
        }
        if creds.qop.is_some() && creds.nonce_count() == Some(0) {
            return Err(Refusal::ZeroNonceCount);
        }
        let uri = msg.request_uri().unwrap_or_default();
        if *creds.uri != *uri {
            return Err(Refusal::WrongUri {
                got: creds.uri.to_string(),
                want: uri.to_string(),
            });
        }
        if let Some(lookup) = &step.lookup
            && let Some(inj) = &env.plan.inject
        {
            if creds.userhash {
                return Err(Refusal::Userhash);
            }
            let Some(row) = lookup.index.find(inj, creds.username.as_bytes()) else {
                return Err(Refusal::UnknownUser {
                    user: creds.username.to_string(),
                    file: inj.path().to_string(),
                    column: lookup.column.clone(),
                });
            };
            // From here on the call renders the caller's own row (password, and
            // whatever the next steps send).
            self.row = u32::try_from(row).unwrap_or(self.row);
        }
        let mut buf = Vec::new();
        let password = self.render_value(env, &step.password, msg, fx, &mut buf);
        let username = step
            .username
            .as_ref()
            .map(|t| self.render_value(env, t, msg, fx, &mut buf));
        let text =
            |r: &Range<usize>| String::from_utf8_lossy(buf.get(r.clone()).unwrap_or_default());
        let username = match &username {
            Some(r) => text(r),
            None if creds.userhash => return Err(Refusal::Userhash),
            None => Cow::Borrowed(&*creds.username),
        };
        let password = text(&password);
        let realm = values.realm();
        let verdict = creds.verify(&Expected {
            realm: &realm,
            username: &username,
            password: &password,
            method: msg.method().unwrap_or_default(),
            body: msg.body,
        });
        match verdict {
            Ok(()) => {}
            Err(VerifyError::WrongUsername) => {
                return Err(Refusal::WrongUsername {
                    got: creds.username.to_string(),
                    want: username.into_owned(),
                });
            }
            Err(VerifyError::WrongRealm) => {
                return Err(Refusal::WrongRealm {
                    got: creds.realm.to_string(),
                    want: realm.into_owned(),
                });
            }
            Err(VerifyError::Malformed(error)) => {
                return Err(Refusal::Malformed {
                    header: names(step).3,
                    error,
                });
            }
            Err(VerifyError::WrongResponse) => {
                return Err(Refusal::WrongResponse {
                    user: username.into_owned(),
                });
            }
        }
        let stale = step
            .stale_after
            .is_some_and(|limit| !stale_sent && now.saturating_duration_since(issued_at) > limit);
        Ok(stale)
    }

    /// Sends a 401/407 with a fresh nonce as the response to `req`, and waits for
    /// the request again.
    fn send_challenge(
        &mut self,
        env: &CallEnv,
        step: &ChallengeStep,
        req: &Message<'_>,
        now: Instant,
        fx: &mut Effects<'_>,
        stale: bool,
    ) {
        let Some(state) = self.extras.as_mut().and_then(|e| e.server_auth.as_mut()) else {
            return;
        };
        state.issued = state.issued.wrapping_add(1);
        state.issued_at = now;
        let nonce = Nonce::new(env.run_id, self.number, state.issued);
        let values = self.challenge_values(env, step, Some(req), fx);
        let realm = values.realm();
        let opaque = values.opaque();
        let challenge = Challenge {
            realm: Cow::Borrowed(&realm),
            nonce: Cow::Borrowed(nonce.as_str()),
            opaque: opaque.as_deref().map(Cow::Borrowed),
            algorithm: step.algorithm,
            qop: step.qop.map(|q| QopOptions {
                auth: q == Qop::Auth,
                auth_int: q == Qop::AuthInt,
            }),
            stale,
            userhash: false,
            domain: None,
        };
        let (code, reason, header, _) = names(step);
        let resp = fx.out.build(|b| {
            write_response(
                req,
                code,
                reason,
                env.run_id,
                self.number,
                Some((header, &challenge)),
                b,
            )
        });
        self.send_response(req, code, resp, now, fx);
        fx.ctr.auth.sent += 1;
        // Like a recv of a response: a client answers a challenge at once or not at
        // all, so without a timeout the wait is bounded by 64·T1.
        let timeout = step
            .timeout
            .or(env.plan.recv_timeout)
            .unwrap_or(env.timers.t1 * 64);
        self.wait = Some(Wait {
            pc: self.pc,
            until: Some(now + timeout),
        });
    }

    /// Queue `resp` to `req`'s server transaction (which resends it to
    /// retransmissions of `req`).
    fn send_response(
        &mut self,
        req: &Message<'_>,
        code: u16,
        resp: Vec<u8>,
        now: Instant,
        fx: &mut Effects<'_>,
    ) {
        let branch = req.top_via_branch().unwrap_or_default();
        let method = req.cseq().map(|c| c.method).unwrap_or_default();
        match self
            .servers
            .iter_mut()
            .find(|tx| tx.answered_by(branch, method))
        {
            Some(tx) => {
                fx.out.push(tx.dest(), &resp);
                tx.on_send_response(code, resp, now);
            }
            None => fx.out.push(self.peer, &resp),
        }
        fx.ctr.messages_sent += 1;
    }

    /// Realm (the local IP when not set or empty) and opaque, rendered for this call.
    fn challenge_values(
        &self,
        env: &CallEnv,
        step: &ChallengeStep,
        msg: Option<&Message<'_>>,
        fx: &mut Effects<'_>,
    ) -> Values {
        let mut buf = Vec::new();
        let mut realm = match (&step.realm, msg) {
            (Some(t), Some(m)) => self.render_value(env, t, m, fx, &mut buf),
            _ => 0..0,
        };
        if realm.is_empty() {
            buf.extend_from_slice(env.local_ip.as_bytes());
            realm = 0..buf.len();
        }
        let opaque = match (&step.opaque, msg) {
            (Some(t), Some(m)) => Some(self.render_value(env, t, m, fx, &mut buf)),
            _ => None,
        };
        Values { buf, realm, opaque }
    }

    /// Render one of the step's templates (`last.*` reads `msg`) onto `buf`.
    fn render_value(
        &self,
        env: &CallEnv,
        t: &Template,
        msg: &Message<'_>,
        fx: &mut Effects<'_>,
        buf: &mut Vec<u8>,
    ) -> Range<usize> {
        let start = buf.len();
        let mut ctx = Ctx {
            env,
            call: self,
            media: self.media.and_then(|h| fx.media.get(h)),
            next_cseq: self.remote_cseq,
            branch_in_render: None,
            last: LastMessage::Current(msg),
        };
        t.render(&mut ctx, buf);
        start..buf.len()
    }
}

/// What the retried request is waited for as, for timeouts.
pub(super) fn describe_wait(last: &[u8]) -> String {
    let method = last
        .trim_ascii_start()
        .split(|&b| b == b' ')
        .next()
        .unwrap_or_default();
    if method.is_empty() {
        "the request again with credentials".to_string()
    } else {
        format!(
            "the {} again with credentials",
            String::from_utf8_lossy(method)
        )
    }
}

/// A response to `req` written by the call core: every Via, From, To (with our tag
/// added when it has none), Call-ID and CSeq copied (unfolded), then the challenge
/// header when there is one. Nothing when `req` is not a request.
fn write_response(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    run_id: u32,
    number: u64,
    challenge: Option<(&str, &Challenge<'_>)>,
    out: &mut Vec<u8>,
) {
    if !req.is_request() {
        return;
    }
    out.extend_from_slice(b"SIP/2.0 ");
    crate::sip::write_dec(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let line = |out: &mut Vec<u8>, name: &str, raw: &[u8], tag: bool| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        unfold_into(raw, out);
        if tag {
            out.extend_from_slice(b";tag=");
            super::write_local_tag(out, run_id, number);
        }
        out.extend_from_slice(b"\r\n");
    };
    for via in req.headers_of(HeaderName::Via) {
        line(out, "Via", via.raw_value, false);
    }
    if let Some(h) = req.header(HeaderName::From) {
        line(out, "From", h.raw_value, false);
    }
    if let Some(h) = req.header(HeaderName::To) {
        let tagged = req.to().is_some_and(|t| t.tag().is_some());
        line(out, "To", h.raw_value, !tagged);
    }
    for kind in [HeaderName::CallId, HeaderName::CSeq] {
        if let Some(h) = req.header(kind) {
            line(out, kind.as_str(), h.raw_value, false);
        }
    }
    if let Some((name, ch)) = challenge {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        ch.write(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    //! Our `auth:` UAC against the `challenge:` UAS, both interpreters in virtual
    //! time, and hand-made requests for what our UAC never sends.

    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::media::control::NoMedia;
    use crate::report::Counters;
    use crate::scenario::builtin;
    use crate::scenario::call::tests::env_of;
    use crate::scenario::call::{Outbox, Outcome};
    use crate::scenario::inject::Injection;
    use crate::scenario::plan::Role;
    use crate::scenario::{CompileOptions, compile_str_with};

    /// REGISTER with `auth:`: user and password from variables (`--set`).
    const REG_UAC: &str = "name: reg
vars: {user: bob, password: pw-bob}
auth:
  username: \"{{ user }}\"
  password: \"{{ password }}\"
steps:
  - send: |
      REGISTER sip:{{ remote_ip }}:{{ remote_port }} SIP/2.0
      Via: SIP/2.0/{{ transport }} {{ local_ip }}:{{ local_port }};branch={{ branch }};rport
      Max-Forwards: 70
      From: <sip:{{ user }}@{{ remote_ip }}>;tag={{ from_tag }}
      To: <sip:{{ user }}@{{ remote_ip }}>
      Call-ID: {{ call_id }}
      CSeq: {{ cseq }} REGISTER
      Contact: <sip:{{ user }}@{{ local_ip }}:{{ local_port }}>
      Path: <sip:edge.example;lr>
      Expires: 60
      Content-Length: 0
  - recv: 200
";

    /// MESSAGE with a body (what `auth-int` hashes).
    const MESSAGE_UAC: &str = "name: msg
vars: {user: bob, password: pw-bob}
auth: {username: \"{{ user }}\", password: \"{{ password }}\"}
steps:
  - send: |
      MESSAGE sip:svc@{{ remote_ip }}:{{ remote_port }} SIP/2.0
      Via: SIP/2.0/{{ transport }} {{ local_ip }}:{{ local_port }};branch={{ branch }};rport
      From: <sip:{{ user }}@{{ local_ip }}>;tag={{ from_tag }}
      To: <sip:svc@{{ remote_ip }}>
      Call-ID: {{ call_id }}
      CSeq: {{ cseq }} MESSAGE
      Content-Type: text/plain

      hello, integrity
  - recv: 200
";

    /// A UAS for `method` whose challenge step is `challenge` (YAML lines).
    fn uas_text(method: &str, challenge: &str) -> String {
        format!(
            "name: uas-test
role: uas
vars: {{user: bob, password: pw-bob}}
steps:
  - recv: {method}
  - challenge:
{challenge}  - send: |
      SIP/2.0 200 OK
      {{{{ last.via }}}}
      {{{{ last.from }}}}
      {{{{ last.to }}}};tag={{{{ to_tag }}}}
      {{{{ last.call_id }}}}
      {{{{ last.cseq }}}}
      {{{{ last.contact }}}}
      Content-Length: 0
"
        )
    }

    const USERS: &str = "user,password\nalice,pw-alice\nbob,pw-bob\n";

    struct Side {
        env: CallEnv,
        call: Option<Call>,
        out: Outbox,
        ctr: Counters,
        media: NoMedia,
    }

    impl Side {
        fn new(name: &str, text: &str, csv: Option<&str>, overrides: &[(&str, &str)]) -> Side {
            let mut env = env_of(name, text, overrides);
            if let Some(csv) = csv {
                let inj = Arc::new(Injection::parse(csv.as_bytes().to_vec(), "users.csv").unwrap());
                let ov: Vec<(String, String)> = overrides
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let opts = CompileOptions {
                    overrides: &ov,
                    inject: Some(&inj),
                    ..Default::default()
                };
                env.plan = Arc::new(compile_str_with(name, text, &opts).unwrap());
            }
            Side {
                env,
                call: None,
                out: Outbox::default(),
                ctr: Counters::default(),
                media: NoMedia,
            }
        }

        fn addr(&self) -> SocketAddr {
            SocketAddr::new(self.env.local_ip.parse().unwrap(), self.env.local_port)
        }

        fn call(&mut self) -> &mut Call {
            self.call.as_mut().expect("a call")
        }

        /// A message for this side; a UAS takes its call from the first one.
        fn on(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
            let msg = message::parse(bytes).unwrap();
            if self.call.is_none() {
                let id = msg.call_id().unwrap_or("none");
                self.call = Some(Call::new_uas(&self.env, 1, id, from, now));
            }
            let Some(call) = self.call.as_mut() else {
                return;
            };
            let mut fx = Effects {
                out: &mut self.out,
                ctr: &mut self.ctr,
                media: &mut self.media,
            };
            call.on_message(&self.env, &msg, from, now, &mut fx);
        }

        fn tick(&mut self, now: Instant) {
            let mut fx = Effects {
                out: &mut self.out,
                ctr: &mut self.ctr,
                media: &mut self.media,
            };
            if let Some(call) = self.call.as_mut() {
                call.on_timeout(&self.env, now, &mut fx);
            }
        }

        fn take(&mut self) -> Vec<Vec<u8>> {
            let v = self.out.iter().map(|(_, b)| b.to_vec()).collect();
            self.out.clear();
            v
        }

        fn outcome(&mut self) -> Option<Outcome> {
            self.call().take_outcome()
        }

        fn detail(&mut self) -> String {
            self.call().failure_detail().unwrap_or_default().to_string()
        }
    }

    struct Pair {
        uac: Side,
        uas: Side,
        t0: Instant,
    }

    impl Pair {
        fn new(uac: Side, uas: Side) -> Pair {
            assert_eq!(uac.env.plan.role, Role::Uac);
            assert_eq!(uas.env.plan.role, Role::Uas);
            let mut p = Pair {
                uac,
                uas,
                t0: Instant::now(),
            };
            let t0 = p.t0;
            let mut call = Call::new_uac(&p.uac.env, 1, t0);
            let mut fx = Effects {
                out: &mut p.uac.out,
                ctr: &mut p.uac.ctr,
                media: &mut p.uac.media,
            };
            call.start(&p.uac.env, t0, &mut fx);
            p.uac.call = Some(call);
            p
        }

        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }

        /// What the UAC queued, delivered to the UAS at `ms`; returned as text.
        fn deliver_to_uas(&mut self, ms: u64) -> Vec<String> {
            let (now, from) = (self.at(ms), self.uac.addr());
            let msgs = self.uac.take();
            for m in &msgs {
                self.uas.on(m, from, now);
            }
            text(msgs)
        }

        fn deliver_to_uac(&mut self, ms: u64) -> Vec<String> {
            let (now, from) = (self.at(ms), self.uas.addr());
            let msgs = self.uas.take();
            for m in &msgs {
                self.uac.on(m, from, now);
            }
            text(msgs)
        }

        /// Messages both ways at `ms` until neither side sends: everything moved,
        /// in order.
        fn settle(&mut self, ms: u64) -> Vec<String> {
            let mut all = Vec::new();
            for _ in 0..20 {
                let a = self.deliver_to_uas(ms);
                let b = self.deliver_to_uac(ms);
                if a.is_empty() && b.is_empty() {
                    break;
                }
                all.extend(a);
                all.extend(b);
            }
            all
        }
    }

    fn text(msgs: Vec<Vec<u8>>) -> Vec<String> {
        msgs.into_iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .collect()
    }

    fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
        msg.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }

    fn start_lines(msgs: &[String]) -> Vec<&str> {
        msgs.iter()
            .map(|m| m.lines().next().unwrap_or(""))
            .collect()
    }

    fn register_pair(uac: &[(&str, &str)], csv: Option<&str>) -> Pair {
        let uas_challenge = builtin::get("uas-challenge").unwrap().text;
        Pair::new(
            Side::new("reg", REG_UAC, None, uac),
            Side::new("uas-challenge", uas_challenge, csv, &[]),
        )
    }

    #[test]
    fn our_uac_registers_against_uas_challenge_with_md5() {
        // The UAS call takes row 0 (alice) when it starts; bob's credentials move
        // it to bob's row.
        let mut p = register_pair(&[], Some(USERS));
        let msgs = p.settle(0);
        assert_eq!(
            start_lines(&msgs),
            [
                "REGISTER sip:127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 401 Unauthorized",
                "REGISTER sip:127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 200 OK",
            ],
            "{msgs:#?}"
        );
        let challenge = &msgs[1];
        let www = header(challenge, "WWW-Authenticate").expect("WWW-Authenticate");
        let ch = digest::parse_challenge(www).unwrap();
        assert_eq!(ch.realm, "sipwright.test");
        assert_eq!(ch.algorithm, digest::Algorithm::Md5);
        assert_eq!(ch.chosen_qop(), Some(Qop::Auth));
        assert_eq!(ch.nonce.len(), 32);
        assert!(!ch.stale && ch.opaque.is_none());
        // Copied from the REGISTER, our tag added.
        assert!(challenge.contains("CSeq: 1 REGISTER\r\n"), "{challenge}");
        assert!(challenge.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch="));
        let to = header(challenge, "To").unwrap();
        assert!(to.starts_with("<sip:bob@127.0.0.1>;tag="), "{to}");
        let retry = &msgs[2];
        assert!(retry.contains("CSeq: 2 REGISTER\r\n"), "{retry}");
        let creds = digest::parse_authorization(header(retry, "Authorization").unwrap()).unwrap();
        assert_eq!((&*creds.username, &*creds.nonce), ("bob", &*ch.nonce));
        let ok = &msgs[3];
        for line in [
            "CSeq: 2 REGISTER",
            "Contact: <sip:bob@127.0.0.1:5070>",
            "Path: <sip:edge.example;lr>",
            "Expires: 60",
        ] {
            assert!(ok.contains(&format!("{line}\r\n")), "{line}: {ok}");
        }
        assert_eq!(p.uas.outcome(), Some(Outcome::Success));
        assert_eq!(p.uac.outcome(), Some(Outcome::Success));
        assert_eq!(p.uas.call().row, 1, "bob's row");
        let (uas, uac) = (p.uas.ctr.auth, p.uac.ctr.auth);
        assert_eq!((uas.sent, uas.failures, uas.challenges), (1, 0, 0));
        assert_eq!((uac.challenges, uac.retries, uac.failures), (1, 1, 0));
    }

    #[test]
    fn sha256_with_qop_auth() {
        let uas = uas_text(
            "REGISTER",
            "      realm: \"{{ user }}.example\"\n      algorithm: SHA-256\n      password: \"{{ password }}\"\n      username: \"{{ user }}\"\n      opaque: op-{{ user }}\n",
        );
        let mut p = Pair::new(
            Side::new("reg", REG_UAC, None, &[]),
            Side::new("uas-test", &uas, None, &[]),
        );
        let msgs = p.settle(0);
        assert_eq!(
            start_lines(&msgs).last(),
            Some(&"SIP/2.0 200 OK"),
            "{msgs:#?}"
        );
        let www = header(&msgs[1], "WWW-Authenticate").unwrap();
        assert!(
            www.starts_with("Digest realm=\"bob.example\", nonce=\"")
                && www.ends_with("\", opaque=\"op-bob\", algorithm=SHA-256, qop=\"auth\""),
            "{www}"
        );
        let creds = header(&msgs[2], "Authorization").unwrap();
        assert!(creds.contains("algorithm=SHA-256") && creds.contains("qop=auth, nc=00000001"));
        assert!(creds.contains("opaque=\"op-bob\""), "{creds}");
        assert_eq!(p.uas.outcome(), Some(Outcome::Success));
        assert_eq!(p.uac.outcome(), Some(Outcome::Success));
    }

    #[test]
    fn sha512_256_sess_with_auth_int_through_a_407() {
        let uas = uas_text(
            "MESSAGE",
            "      algorithm: SHA-512-256-sess\n      qop: auth-int\n      proxy: true\n      password: \"{{ password }}\"\n",
        );
        let mut p = Pair::new(
            Side::new("msg", MESSAGE_UAC, None, &[]),
            Side::new("uas-test", &uas, None, &[]),
        );
        let msgs = p.settle(0);
        assert_eq!(
            start_lines(&msgs),
            [
                "MESSAGE sip:svc@127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 407 Proxy Authentication Required",
                "MESSAGE sip:svc@127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 200 OK",
            ],
            "{msgs:#?}"
        );
        let ch = header(&msgs[1], "Proxy-Authenticate").unwrap();
        assert!(
            ch.ends_with("algorithm=SHA-512-256-sess, qop=\"auth-int\""),
            "{ch}"
        );
        assert!(header(&msgs[1], "WWW-Authenticate").is_none());
        let creds = header(&msgs[2], "Proxy-Authorization").unwrap();
        assert!(creds.contains("qop=auth-int"), "{creds}");
        assert_eq!(p.uas.outcome(), Some(Outcome::Success));
        assert_eq!(p.uac.outcome(), Some(Outcome::Success));

        // auth-int covers the body: the same credentials over another body fail.
        let mut p = Pair::new(
            Side::new("msg", MESSAGE_UAC, None, &[]),
            Side::new("uas-test", &uas, None, &[]),
        );
        p.deliver_to_uas(0);
        p.deliver_to_uac(0);
        let retried = text(p.uac.take()).remove(0);
        let tampered = retried.replace("hello, integrity", "hello, integrate");
        let (now, from) = (p.at(1), p.uac.addr());
        p.uas.on(tampered.as_bytes(), from, now);
        let answer = text(p.uas.take());
        assert!(
            answer[0].starts_with("SIP/2.0 403 Forbidden (wrong password)\r\n"),
            "{answer:?}"
        );
        assert_eq!(p.uas.outcome(), Some(Outcome::Failed(FailureReason::Auth)));
        assert!(p.uas.detail().contains("wrong response from user `bob`"));
    }

    #[test]
    fn an_invite_is_challenged_with_407_and_its_ack_absorbed() {
        let uac = format!(
            "auth: {{username: bob, password: pw-bob}}\n{}",
            builtin::get("uac").unwrap().text
        );
        let uas = builtin::get("uas").unwrap().text.replace(
            "  - recv: INVITE\n",
            "  - recv: INVITE\n  - challenge: {password: pw-bob, username: bob, proxy: true}\n",
        );
        let mut p = Pair::new(
            Side::new("uac", &uac, None, &[]),
            Side::new("uas", &uas, None, &[]),
        );
        let msgs = p.settle(0);
        assert_eq!(
            start_lines(&msgs),
            [
                "INVITE sip:service@127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 407 Proxy Authentication Required",
                "ACK sip:service@127.0.0.1:5080 SIP/2.0",
                "INVITE sip:service@127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 180 Ringing",
                "SIP/2.0 200 OK",
                "ACK sip:sipwright@127.0.0.1:5080 SIP/2.0",
                "BYE sip:sipwright@127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 200 OK",
            ],
            "{msgs:#?}"
        );
        assert_eq!(p.uas.outcome(), Some(Outcome::Success));
        assert_eq!(p.uac.outcome(), Some(Outcome::Success));
        assert_eq!(p.uas.ctr.messages_absorbed, 1, "the ACK for the 407");
    }

    #[test]
    fn stale_after_sends_stale_true_once() {
        let uas = uas_text(
            "REGISTER",
            "      password: \"{{ password }}\"\n      stale_after: 1s\n",
        );
        let mut p = Pair::new(
            Side::new("reg", REG_UAC, None, &[]),
            Side::new("uas-test", &uas, None, &[]),
        );
        p.deliver_to_uas(0);
        let first = p.deliver_to_uac(0);
        // The answer reaches the UAS two seconds after its nonce went out.
        let retry = p.deliver_to_uas(2000);
        let stale = p.deliver_to_uac(2000);
        assert!(stale[0].starts_with("SIP/2.0 401 "), "{stale:?}");
        let ch = digest::parse_challenge(header(&stale[0], "WWW-Authenticate").unwrap()).unwrap();
        assert!(ch.stale);
        let old = digest::parse_challenge(header(&first[0], "WWW-Authenticate").unwrap()).unwrap();
        assert_ne!(ch.nonce, old.nonce);
        assert!(retry[0].contains(&*old.nonce));
        // The UAC retries with the new nonce; late again, but stale=true went out
        // once already, so it is accepted.
        let again = p.settle(4000);
        assert!(again[0].contains(&*ch.nonce), "{again:?}");
        assert_eq!(start_lines(&again)[1], "SIP/2.0 200 OK");
        assert_eq!(p.uas.outcome(), Some(Outcome::Success));
        assert_eq!(p.uac.outcome(), Some(Outcome::Success));
        assert_eq!((p.uas.ctr.auth.sent, p.uas.ctr.auth.failures), (2, 0));
        let uac = p.uac.ctr.auth;
        assert_eq!((uac.challenges, uac.retries, uac.failures), (2, 2, 0));
    }

    #[test]
    fn a_stale_nonce_reused_is_refused() {
        let uas = uas_text(
            "REGISTER",
            "      password: \"{{ password }}\"\n      stale_after: 1s\n",
        );
        let mut p = Pair::new(
            Side::new("reg", REG_UAC, None, &[]),
            Side::new("uas-test", &uas, None, &[]),
        );
        p.deliver_to_uas(0);
        p.deliver_to_uac(0);
        let retry = p.deliver_to_uas(2000);
        assert!(p.uas.take()[0].starts_with(b"SIP/2.0 401 "));
        // A client that ignores stale=true: the same credentials in a new request.
        let replay = retry[0]
            .replace("CSeq: 2 REGISTER", "CSeq: 3 REGISTER")
            .replace(";branch=z9hG4bK", ";branch=z9hG4bKreplay");
        let (now, from) = (p.at(2001), p.uac.addr());
        p.uas.on(replay.as_bytes(), from, now);
        let answer = text(p.uas.take());
        assert!(
            answer[0].starts_with("SIP/2.0 403 Forbidden (stale nonce reused)\r\n"),
            "{answer:?}"
        );
        assert!(answer[0].contains("CSeq: 3 REGISTER\r\n"));
        assert_eq!(p.uas.outcome(), Some(Outcome::Failed(FailureReason::Auth)));
        let detail = p.uas.detail();
        assert!(
            detail.starts_with("uas-test:6: step 2: stale nonce reused"),
            "{detail}"
        );
        assert_eq!(p.uas.ctr.auth.failures, 1);
    }

    #[test]
    fn a_wrong_password_gets_403_and_fails_both_sides() {
        let mut p = register_pair(&[("password", "guess")], Some(USERS));
        let msgs = p.settle(0);
        assert_eq!(
            start_lines(&msgs),
            [
                "REGISTER sip:127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 401 Unauthorized",
                "REGISTER sip:127.0.0.1:5080 SIP/2.0",
                "SIP/2.0 403 Forbidden (wrong password)",
            ]
        );
        let forbidden = &msgs[3];
        assert!(forbidden.contains("CSeq: 2 REGISTER\r\n"));
        assert!(header(forbidden, "To").unwrap().contains(";tag="));
        assert_eq!(p.uas.outcome(), Some(Outcome::Failed(FailureReason::Auth)));
        let detail = p.uas.detail();
        assert!(
            detail.starts_with("uas-challenge:24: step 2: wrong response from user `bob`"),
            "{detail}"
        );
        assert_eq!((p.uas.ctr.auth.sent, p.uas.ctr.auth.failures), (1, 1));
        // Our UAC waited for a 200.
        assert_eq!(
            p.uac.outcome(),
            Some(Outcome::Failed(FailureReason::UnexpectedMessage))
        );
        assert_eq!(p.uac.call().last_status(), Some(403));
    }

    #[test]
    fn an_unknown_user_is_refused_by_lookup() {
        let mut p = register_pair(&[("user", "carol"), ("password", "pw-carol")], Some(USERS));
        let msgs = p.settle(0);
        assert_eq!(
            start_lines(&msgs)[3],
            "SIP/2.0 403 Forbidden (unknown user)"
        );
        assert_eq!(p.uas.outcome(), Some(Outcome::Failed(FailureReason::Auth)));
        let detail = p.uas.detail();
        assert!(
            detail.ends_with("unknown user `carol`: no row of users.csv has it in column `user`"),
            "{detail}"
        );
    }

    #[test]
    fn without_inject_every_caller_is_checked_against_the_variables() {
        let ok = [("user", "alice"), ("password", "secret")];
        let mut p = register_pair(&ok, None);
        p.settle(0);
        assert_eq!(p.uas.outcome(), Some(Outcome::Success));
        let mut p = register_pair(&[("password", "secret")], None);
        p.settle(0);
        assert_eq!(p.uas.outcome(), Some(Outcome::Failed(FailureReason::Auth)));
        let detail = p.uas.detail();
        assert!(
            detail.ends_with("credentials for user `bob`, expected `alice`"),
            "{detail}"
        );
    }

    /// A request as a client that does not use our `auth:` would send it.
    fn register(seq: u32, authorization: Option<&str>) -> String {
        let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        format!(
            "REGISTER sip:127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{seq}\r\n\
             From: <sip:bob@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: hand@test\r\n\
             CSeq: {seq} REGISTER\r\nContact: <sip:bob@127.0.0.1:5070>\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    }

    fn uas_alone() -> (Side, SocketAddr, Instant) {
        let uas = uas_text(
            "REGISTER",
            "      realm: sipwright.test\n      password: \"{{ password }}\"\n",
        );
        let side = Side::new("uas-test", &uas, None, &[]);
        (side, "127.0.0.1:5070".parse().unwrap(), Instant::now())
    }

    #[test]
    fn no_credentials_are_challenged_once_more_then_refused() {
        let (mut uas, peer, t0) = uas_alone();
        uas.on(register(1, None).as_bytes(), peer, t0);
        let first = text(uas.take());
        uas.on(register(2, None).as_bytes(), peer, t0);
        let second = text(uas.take());
        assert!(
            second[0].starts_with("SIP/2.0 401 Unauthorized\r\n"),
            "{second:?}"
        );
        assert!(second[0].contains("CSeq: 2 REGISTER\r\n"));
        assert_ne!(
            header(&first[0], "WWW-Authenticate"),
            header(&second[0], "WWW-Authenticate"),
            "a fresh nonce per challenge"
        );
        // The first REGISTER again: its transaction sends the first 401 again.
        uas.on(register(1, None).as_bytes(), peer, t0);
        assert_eq!(text(uas.take()), first);
        assert_eq!(uas.ctr.messages_absorbed, 1);
        uas.on(register(3, None).as_bytes(), peer, t0);
        let third = text(uas.take());
        assert!(third[0].starts_with("SIP/2.0 403 Forbidden (no credentials)\r\n"));
        assert_eq!(uas.outcome(), Some(Outcome::Failed(FailureReason::Auth)));
        assert!(
            uas.detail()
                .ends_with("REGISTER came again without Authorization after two challenges")
        );
        assert_eq!((uas.ctr.auth.sent, uas.ctr.auth.failures), (2, 1));
    }

    #[test]
    fn waiting_for_the_retry_times_out_or_fails_on_another_request() {
        let (mut uas, peer, t0) = uas_alone();
        uas.on(register(1, None).as_bytes(), peer, t0);
        uas.take();
        // No timeout anywhere: 64·T1.
        assert_eq!(
            uas.call().wait.and_then(|w| w.until),
            Some(t0 + Duration::from_secs(32))
        );
        uas.tick(t0 + Duration::from_millis(31_999));
        assert!(uas.call().is_running());
        uas.tick(t0 + Duration::from_secs(32));
        assert_eq!(uas.outcome(), Some(Outcome::Failed(FailureReason::Timeout)));
        assert!(
            uas.detail()
                .ends_with("timed out waiting for the REGISTER again with credentials"),
            "{}",
            uas.detail()
        );

        let (mut uas, peer, t0) = uas_alone();
        uas.on(register(1, None).as_bytes(), peer, t0);
        let options = register(2, None).replace("REGISTER", "OPTIONS");
        uas.on(options.as_bytes(), peer, t0);
        assert_eq!(
            uas.outcome(),
            Some(Outcome::Failed(FailureReason::UnexpectedMessage))
        );
        assert!(
            uas.detail()
                .contains("expected the REGISTER again with credentials, got `OPTIONS")
        );
    }

    #[test]
    fn challenging_a_response_is_a_scenario_error() {
        let text = "steps:\n  - send: |\n      OPTIONS sip:x@{{ remote_ip }} SIP/2.0\n      Via: SIP/2.0/UDP {{ local_ip }}:{{ local_port }};branch={{ branch }}\n      From: <sip:a@b>;tag=1\n      To: <sip:x@b>\n      Call-ID: {{ call_id }}\n      CSeq: 1 OPTIONS\n  - recv: 200\n  - challenge: {password: x}\n";
        let mut uac = Side::new("odd", text, None, &[]);
        let t0 = Instant::now();
        let mut call = Call::new_uac(&uac.env, 1, t0);
        let mut fx = Effects {
            out: &mut uac.out,
            ctr: &mut uac.ctr,
            media: &mut uac.media,
        };
        call.start(&uac.env, t0, &mut fx);
        uac.call = Some(call);
        let options = uac.take().remove(0);
        let m = message::parse(&options).unwrap();
        let mut ok = Vec::new();
        write_response(&m, 200, "OK", 1, 1, None, &mut ok);
        let from = uac.env.remote;
        uac.on(&ok, from, t0);
        assert_eq!(
            uac.outcome(),
            Some(Outcome::Failed(FailureReason::ScenarioError))
        );
        let detail = uac.detail();
        assert!(
            detail.ends_with("challenge: the last message received is not a request to challenge (`SIP/2.0 200 OK`)"),
            "{detail}"
        );
    }

    /// The credentials `bob`/`pw-bob` would send for the nonce of `challenge`.
    fn answer(challenge: &str, edit: impl Fn(String) -> String) -> String {
        let ch = digest::parse_challenge(header(challenge, "WWW-Authenticate").unwrap()).unwrap();
        let mut v = Vec::new();
        digest::write_authorization(
            &mut v,
            &ch,
            &digest::Credentials {
                username: "bob",
                password: "pw-bob",
            },
            &digest::Request {
                method: "REGISTER",
                uri: "sip:127.0.0.1:5080",
                body: b"",
            },
            "c0ffee",
            1,
        );
        edit(String::from_utf8(v).unwrap())
    }

    #[test]
    fn each_check_refuses_with_its_own_reason() {
        type Edit = fn(String) -> String;
        let cases: &[(&str, Edit, &str)] = &[
            ("right", |a| a, ""),
            (
                "other realm",
                |a| a.replace("sipwright.test", "elsewhere"),
                "credentials for realm `elsewhere`, challenged for `sipwright.test`",
            ),
            (
                "algorithm",
                |a| a.replace("algorithm=MD5", "algorithm=SHA-256"),
                "credentials use algorithm SHA-256, challenged with MD5",
            ),
            (
                "no qop",
                |a| a.replace(", qop=auth, nc=00000001", ""),
                "credentials use qop none, challenged with qop=auth",
            ),
            (
                "nc 0",
                |a| a.replace("nc=00000001", "nc=00000000"),
                "nonce count 0",
            ),
            (
                "nonce",
                |a| a.replacen("nonce=\"0", "nonce=\"f", 1),
                "was never issued to this call",
            ),
            (
                "uri",
                |a| a.replace("uri=\"sip:127.0.0.1:5080\"", "uri=\"sip:127.0.0.1\""),
                "uri `sip:127.0.0.1` in the credentials is not the Request-URI `sip:127.0.0.1:5080`",
            ),
            (
                "userhash",
                |a| a + ", userhash=true",
                "userhash credentials cannot be checked",
            ),
            (
                "malformed",
                |a| a.replace("response=", "respon="),
                "malformed Authorization: missing response parameter",
            ),
            (
                "unterminated",
                |a| a + ", opaque=\"x",
                "malformed Authorization: unterminated quoted string",
            ),
            (
                "not digest",
                |_| "Basic Ym9iOnB3LWJvYg==".into(),
                "malformed Authorization: no Digest challenge or credentials",
            ),
        ];
        for (name, edit, want) in cases {
            let (mut uas, peer, t0) = uas_alone();
            uas.on(register(1, None).as_bytes(), peer, t0);
            let challenge = text(uas.take()).remove(0);
            let creds = answer(&challenge, edit);
            uas.on(register(2, Some(&creds)).as_bytes(), peer, t0);
            let reply = text(uas.take()).remove(0);
            if want.is_empty() {
                assert!(reply.starts_with("SIP/2.0 200 OK"), "{name}: {reply}");
                assert_eq!(uas.outcome(), Some(Outcome::Success));
                continue;
            }
            assert!(
                reply.starts_with("SIP/2.0 403 Forbidden ("),
                "{name}: {reply}"
            );
            assert_eq!(
                uas.outcome(),
                Some(Outcome::Failed(FailureReason::Auth)),
                "{name}"
            );
            let detail = uas.detail();
            assert!(detail.contains(want), "{name}: {detail}");
        }
    }

    /// Mangled retried requests may fail the call, never panic it.
    #[test]
    fn mangled_credentials_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..1500 {
            let (mut uas, peer, t0) = uas_alone();
            uas.on(register(1, None).as_bytes(), peer, t0);
            let challenge = text(uas.take()).remove(0);
            let mut m = register(2, Some(&answer(&challenge, |a| a))).into_bytes();
            let creds_at = m.windows(14).position(|w| w == b"Authorization:").unwrap();
            for _ in 0..(1 + rnd() % 4) {
                let i = creds_at + (rnd() as usize) % (m.len() - creds_at);
                m[i] = match rnd() % 4 {
                    0 => b'"',
                    1 => b',',
                    2 => b'=',
                    _ => rnd() as u8,
                };
            }
            if round % 5 == 0 {
                let cut = creds_at + (rnd() as usize) % (m.len() - creds_at);
                m.truncate(cut);
            }
            let Ok(msg) = message::parse(&m) else {
                continue;
            };
            let from_peer = msg.call_id() == Some("hand@test");
            uas.on(&m, peer, t0);
            uas.tick(t0 + Duration::from_secs(40));
            if from_peer {
                assert!(!uas.call().is_running(), "round {round}");
            }
        }
    }
}

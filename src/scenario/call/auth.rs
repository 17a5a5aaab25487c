//! Answering digest challenges (RFC 3261 §22.2): a 401/407 to one of our requests,
//! when the scenario has `auth:`, is answered here instead of reaching the scenario.
//! The request goes again with credentials, a new branch and the next CSeq; the
//! digest state (`sip::digest::ClientAuth`, 40 bytes and one small block) stays
//! with the call so later requests of the dialog challenged by the same realm are
//! answered too. A second challenge for a request we answered fails the call with
//! reason `auth`; `stale=true` is retried once without counting a failure.

use std::borrow::Cow;
use std::time::Instant;

use super::{Call, CallEnv, Ctx, Effects, LastMessage};
use crate::report::latency::Metric;
use crate::report::{Counters, FailureReason};
use crate::scenario::template::Template;
use crate::sip::build;
use crate::sip::digest::{self, ClientAuth, Credentials, Request, Verdict};
use crate::sip::message::{self, Message};

impl Call {
    /// A 401/407 to the request of client transaction `tx`. Returns true when it
    /// was handled here (answered, or the call failed on it); false: the scenario
    /// sees it (no `auth:`).
    pub(super) fn on_challenge(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        code: u16,
        tx: usize,
        now: Instant,
        fx: &mut Effects<'_>,
    ) -> bool {
        let Some(auth) = env.plan.auth.as_ref() else {
            return false;
        };
        let Some((request, dest, origin)) = self
            .clients
            .get(tx)
            .map(|t| (t.request().to_vec(), t.dest(), t.origin()))
        else {
            return false;
        };
        let request: &[u8] = &request;
        fx.ctr.auth.challenges += 1;
        if code == 401 {
            fx.ctr.auth.challenges_401 += 1;
        } else {
            fx.ctr.auth.challenges_407 += 1;
        }
        let (challenge_header, answer_header) = if code == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let values: Vec<Cow<'_, str>> = msg
            .headers_named(challenge_header)
            .map(|h| h.value())
            .collect();
        let Ok(req) = message::parse(request) else {
            return false;
        };
        let method = req.method().unwrap_or("");
        let challenge = match digest::strongest(values.iter().map(|v| v.as_ref())) {
            Ok(c) => c,
            Err(_) if values.is_empty() => {
                fx.ctr.auth.failures += 1;
                let at = self.position(env);
                self.fail(
                    FailureReason::Auth,
                    format!("{at}: {code} to {method} cannot be answered: it has no {challenge_header} header"),
                );
                return true;
            }
            Err(e) => {
                fx.ctr.auth.failures += 1;
                let at = self.position(env);
                self.fail(
                    FailureReason::Auth,
                    format!("{at}: {code} to {method} cannot be answered: {e}"),
                );
                return true;
            }
        };
        if let Some(realm) = &auth.realm
            && *realm != challenge.realm
        {
            fx.ctr.auth.failures += 1;
            let at = self.position(env);
            self.fail(
                FailureReason::Auth,
                format!(
                    "{at}: {code} to {method} for realm `{}`, but `auth:` answers realm `{realm}` only",
                    challenge.realm
                ),
            );
            return true;
        }
        let verdict = match self.extras.as_mut().and_then(|e| e.client_auth.as_mut()) {
            Some(state) if state.realm() == challenge.realm => state.on_challenge(&challenge),
            _ => {
                self.extras().client_auth = Some(ClientAuth::new(&challenge));
                Verdict::Answer
            }
        };
        if verdict == Verdict::Rejected {
            fx.ctr.auth.failures += 1;
            let at = self.position(env);
            self.fail(
                FailureReason::Auth,
                format!(
                    "{at}: {code} again to {method} after our credentials: realm `{}` refused them (wrong username or password?)",
                    challenge.realm
                ),
            );
            return true;
        }
        let username = self.render_auth(env, &auth.username, fx);
        let password = self.render_auth(env, &auth.password, fx);
        let mut cnonce_seed = [0u8; 8];
        cnonce_seed[..4].copy_from_slice(&env.run_id.to_be_bytes());
        cnonce_seed[4..].copy_from_slice(
            &((self.number as u32) ^ self.branch_seq.rotate_left(16)).to_be_bytes(),
        );
        let cnonce = digest::cnonce_from_random(cnonce_seed);
        let mut value = Vec::with_capacity(256);
        let realm = challenge.realm.to_string();
        if let Some(state) = self.extras.as_mut().and_then(|e| e.client_auth.as_mut()) {
            state.write_authorization(
                &mut value,
                &Credentials {
                    username: &String::from_utf8_lossy(&username),
                    password: &String::from_utf8_lossy(&password),
                },
                &Request {
                    method,
                    uri: req.request_uri().unwrap_or(""),
                    body: req.body,
                },
                cnonce.as_str(),
            );
        }
        let branch = self.next_branch(env);
        let cseq = self.cseq.max(req.cseq().map_or(0, |c| c.seq)) + 1;
        self.cseq = cseq;
        if let Some(d) = self.dialog.as_mut() {
            d.local_cseq = d.local_cseq.max(cseq);
        }
        let bytes = fx.out.build(|b| {
            build::with_credentials(&req, &branch, cseq, answer_header, &realm, &value, b)
        });
        fx.ctr.auth.retries += 1;
        let method = method.to_string();
        self.send_request_tx(env, &method, &branch, bytes, dest, now, fx.out, fx.ctr);
        // The retry carries the original's start (the original's own, or that of
        // the request before it after a stale retry), so `on_auth_final` can time
        // the whole exchange without any state kept in the call.
        if let Some(retry) = self.clients.last_mut() {
            retry.continues(origin);
        }
        true
    }

    /// A final response other than a challenge to client transaction `tx`: the
    /// digest state's request is done and, when `tx` was a retry with
    /// credentials, the challenged exchange is timed (`auth_round_trip`).
    pub(super) fn on_auth_final(&mut self, tx: usize, now: Instant, ctr: &mut Counters) {
        if let Some(state) = self.extras.as_mut().and_then(|e| e.client_auth.as_mut()) {
            state.on_final_response();
        }
        if let Some(t) = self.clients.get(tx)
            && t.is_continuation()
        {
            let since = now.saturating_duration_since(t.origin());
            ctr.latency.record(Metric::AuthRoundTrip, since);
        }
    }

    /// Username or password of `auth:` for this call.
    fn render_auth(&self, env: &CallEnv, t: &Template, fx: &mut Effects<'_>) -> Vec<u8> {
        let session = self.media.and_then(|h| fx.media.get(h));
        let mut out = Vec::new();
        let mut ctx = Ctx {
            env,
            call: self,
            media: session,
            next_cseq: self.cseq,
            branch_in_render: None,
            last: LastMessage::Lazy(std::cell::OnceCell::new()),
        };
        t.render(&mut ctx, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    //! Challenges answered by the interpreter, driven with virtual time: the
    //! registrar's side is written by hand.

    use super::super::tests::{Harness, env_of};
    use super::*;
    use crate::report::TxMethod;
    use crate::scenario::call::Outcome;

    /// One REGISTER with `auth:`, expecting 200.
    const REGISTER: &str = r#"
name: reg-auth
role: uac
auth:
  username: alice
  password: secret
steps:
  - send: |
      REGISTER {{ remote_target }} SIP/2.0
      Via: SIP/2.0/{{ transport }} {{ local_ip }}:{{ local_port }};branch={{ branch }}
      Max-Forwards: 70
      From: <sip:alice@{{ remote_ip }}>;tag={{ from_tag }}
      To: <sip:alice@{{ remote_ip }}>
      Call-ID: {{ call_id }}
      CSeq: {{ cseq }} REGISTER
      Contact: <sip:alice@{{ local_ip }}:{{ local_port }}>
      Expires: 60
      Content-Length: 0
  - recv: 200
"#;

    const WWW: &str =
        "WWW-Authenticate: Digest realm=\"sipwright.test\", nonce=\"n1\", qop=\"auth\"\r\n";

    /// A registrar's 2xx lists the binding (the interpreter checks it).
    const BINDING: &str = "Contact: <sip:alice@127.0.0.1:5070>;expires=60\r\n";

    struct Reg(Harness);

    impl std::ops::Deref for Reg {
        type Target = Harness;
        fn deref(&self) -> &Harness {
            &self.0
        }
    }

    impl std::ops::DerefMut for Reg {
        fn deref_mut(&mut self) -> &mut Harness {
            &mut self.0
        }
    }

    impl Reg {
        /// The call is meant to start at 0 but starts (sends its REGISTER) at
        /// `late_ms`: the round trip counts from the send, not the intended start.
        fn start(late_ms: u64) -> Reg {
            Reg(Harness::start(env_of("reg-auth", REGISTER, &[]), late_ms))
        }
        /// The one request sent since the last call.
        fn sent(&mut self) -> String {
            self.0.one()
        }
        /// The registrar answers `req` with `code` (and `extra` headers) at `ms`.
        fn answer(&mut self, req: &str, code: u16, extra: &str, ms: u64) {
            let extra = if (200..300).contains(&code) {
                format!("{BINDING}{extra}")
            } else {
                extra.to_string()
            };
            self.0.answer(req, code, &extra, ms);
        }
        fn round_trip(&self) -> crate::report::latency::Summary {
            self.ctr.latency.summary(Metric::AuthRoundTrip)
        }
    }

    /// Within the histogram's resolution (3 significant digits).
    fn close(ms: f64, expected: f64) -> bool {
        (ms - expected).abs() <= expected * 1e-3
    }

    #[test]
    fn a_401_answered_times_the_exchange_from_the_first_send() {
        let mut r = Reg::start(5);
        let first = r.sent();
        assert!(first.starts_with("REGISTER "), "{first}");
        r.answer(&first, 401, WWW, 25);
        let retry = r.sent();
        assert!(retry.contains("Authorization: Digest "), "{retry}");
        assert_eq!(r.round_trip().count, 0, "not final yet");
        r.answer(&retry, 200, "", 40);
        assert_eq!(r.call.take_outcome(), Some(Outcome::Success));
        let s = r.round_trip();
        assert_eq!(s.count, 1);
        // 5 ms (REGISTER sent) → 40 ms (200 to the retry).
        assert!(close(s.max, 35.0), "{s:?}");
        let a = r.ctr.auth;
        assert_eq!(
            (a.challenges, a.challenges_401, a.challenges_407, a.retries),
            (1, 1, 0, 1)
        );
        // The challenged REGISTER and its retry are two transactions.
        assert_eq!(r.ctr.transactions_of(TxMethod::Register), 2);
        assert_eq!(r.ctr.transactions.iter().sum::<u64>(), 2);
    }

    #[test]
    fn a_stale_407_retry_still_counts_from_the_original_request() {
        let mut r = Reg::start(0);
        let first = r.sent();
        let proxy = WWW.replace("WWW-", "Proxy-");
        r.answer(&first, 407, &proxy, 10);
        let retry = r.sent();
        assert!(retry.contains("Proxy-Authorization: Digest "), "{retry}");
        let stale = proxy.replace("nonce=\"n1\"", "nonce=\"n2\", stale=true");
        r.answer(&retry, 407, &stale, 20);
        let again = r.sent();
        assert!(again.contains("nonce=\"n2\""), "{again}");
        r.answer(&again, 200, "", 30);
        assert_eq!(r.call.take_outcome(), Some(Outcome::Success));
        let s = r.round_trip();
        assert_eq!(s.count, 1, "one exchange, however many challenges");
        assert!(close(s.max, 30.0), "{s:?}");
        let a = r.ctr.auth;
        assert_eq!(
            (a.challenges, a.challenges_401, a.challenges_407, a.retries),
            (2, 0, 2, 2)
        );
        assert_eq!(r.ctr.transactions_of(TxMethod::Register), 3);
    }

    #[test]
    fn unchallenged_and_refused_requests_are_not_timed() {
        let mut r = Reg::start(0);
        let first = r.sent();
        r.answer(&first, 200, "", 10);
        assert_eq!(r.call.take_outcome(), Some(Outcome::Success));
        assert_eq!(r.round_trip().count, 0);
        assert_eq!(r.ctr.transactions_of(TxMethod::Register), 1);

        // Wrong credentials: a second 401 ends the call, no round trip.
        let mut r = Reg::start(0);
        let first = r.sent();
        r.answer(&first, 401, WWW, 10);
        let retry = r.sent();
        r.answer(&retry, 401, WWW, 20);
        assert_eq!(
            r.call.take_outcome(),
            Some(Outcome::Failed(FailureReason::Auth))
        );
        assert_eq!(r.round_trip().count, 0);
        assert_eq!((r.ctr.auth.challenges_401, r.ctr.auth.failures), (2, 1));
    }

    /// Challenges we cannot answer fail the call at once with reason `auth` and a
    /// detail naming the problem — never a panic, never a wait for a timeout.
    #[test]
    fn malformed_challenges_fail_with_a_clear_reason() {
        let cases = [
            (
                "WWW-Authenticate: Digest realm=\"r\", qop=\"auth\"\r\n",
                "nonce",
            ),
            (
                "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1\r\n",
                "SHA-1",
            ),
            (
                "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1\r\nWWW-Authenticate: Basic realm=\"r\"\r\n",
                "SHA-1",
            ),
            ("WWW-Authenticate: Digest realm=\"r, nonce=n\r\n", "quote"),
            (
                "WWW-Authenticate: Digest realm=\"r\", nonce=\"a\", nonce=\"b\"\r\n",
                "nonce",
            ),
            (
                "WWW-Authenticate: Digest realm=r nonce=n\r\n",
                "realm parameter is not a quoted string",
            ),
            ("", "it has no WWW-Authenticate header"),
            ("WWW-Authenticate: \u{0}\u{1}\u{ff}\r\n", ""),
        ];
        for (header, says) in cases {
            let mut r = Reg::start(0);
            let first = r.sent();
            r.answer(&first, 401, header, 10);
            let outcome = r.call.take_outcome();
            assert_eq!(
                outcome,
                Some(Outcome::Failed(FailureReason::Auth)),
                "{header:?}"
            );
            let detail = r.call.failure_detail().unwrap_or("").to_string();
            assert!(
                detail.contains("401 to REGISTER cannot be answered") && detail.contains(says),
                "{header:?}: {detail}"
            );
            assert!(r.out.iter().next().is_none(), "{header:?}: nothing re-sent");
            assert_eq!(r.ctr.auth.failures, 1);
        }
    }
}

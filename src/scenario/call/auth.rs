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
use crate::report::FailureReason;
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
        let Some((request, dest)) = self
            .clients
            .get(tx)
            .map(|t| (t.request().to_vec(), t.dest()))
        else {
            return false;
        };
        let request: &[u8] = &request;
        fx.ctr.auth.challenges += 1;
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
        let verdict = match self.auth.as_mut() {
            Some(state) if state.realm() == challenge.realm => state.on_challenge(&challenge),
            _ => {
                self.auth = Some(Box::new(ClientAuth::new(&challenge)));
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
        if let Some(state) = self.auth.as_mut() {
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
        true
    }

    /// A final response other than a challenge: the digest state's request is done.
    pub(super) fn on_auth_final(&mut self) {
        if let Some(state) = self.auth.as_mut() {
            state.on_final_response();
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

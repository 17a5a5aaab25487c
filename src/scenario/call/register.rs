//! REGISTER responses the interpreter handles itself (RFC 3261 §10.2), so that a
//! registering scenario needs no branches for them:
//!
//! - 423 Interval Too Brief with a `Min-Expires` larger than what we asked: the
//!   REGISTER goes again asking for that (new branch, next CSeq), once per request.
//! - A 2xx: our Contact must be among the bindings it lists (else the call fails
//!   with reason `assert`: the registrar answered 200 but did not bind us); the
//!   expiry it granted gives `{{ refresh_after }}` (half of it, when to refresh) and
//!   its `Service-Route` gives `{{ service_route }}` (`Route:` lines for the
//!   requests that follow, RFC 3608).
//!
//! The state is kept boxed and only in calls that registered.

use std::time::{Duration, Instant};

use super::{Call, CallEnv, Effects};
use crate::report::FailureReason;
use crate::sip::message::{self, Message};
use crate::sip::registration;

/// What the last REGISTER's 2xx told this call.
#[derive(Debug, Default)]
pub(super) struct Registration {
    /// Seconds granted to our binding (0: none yet, or a removal).
    granted: u32,
    /// `Route:` lines from `Service-Route` (no final CRLF).
    service_route: Vec<u8>,
    /// A 423 was answered for the request now in flight (once per request).
    retried_423: bool,
}

impl Call {
    /// A 423 to our REGISTER in client transaction `tx`: true when it was answered
    /// here with a REGISTER asking for `Min-Expires`.
    pub(super) fn on_interval_too_brief(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        tx: usize,
        now: Instant,
        fx: &mut Effects<'_>,
    ) -> bool {
        let Some(min) = registration::min_expires(msg) else {
            return false;
        };
        let state = self
            .extras()
            .registration
            .get_or_insert_with(Default::default);
        if std::mem::replace(&mut state.retried_423, true) {
            // Still too brief after asking for Min-Expires: let the scenario see it.
            return false;
        }
        let Some((request, dest)) = self
            .clients
            .get(tx)
            .map(|t| (t.request().to_vec(), t.dest()))
        else {
            return false;
        };
        let Ok(req) = message::parse(&request) else {
            return false;
        };
        let branch = self.next_branch(env);
        let cseq = self.cseq.max(req.cseq().map_or(0, |c| c.seq)) + 1;
        self.cseq = cseq;
        let bytes = fx
            .out
            .build(|b| registration::write_with_expiry(&req, &branch, cseq, min, b));
        self.send_request_tx(env, "REGISTER", &branch, bytes, dest, now, fx.out, fx.ctr);
        true
    }

    /// A 2xx to our REGISTER in client transaction `tx`. False when the call failed
    /// on it (our Contact is not bound).
    pub(super) fn on_registered(&mut self, env: &CallEnv, msg: &Message<'_>, tx: usize) -> bool {
        let Some(request) = self.clients.get(tx).map(|t| t.request().to_vec()) else {
            return true;
        };
        let Ok(req) = message::parse(&request) else {
            return true;
        };
        let state = self
            .extras()
            .registration
            .get_or_insert_with(Default::default);
        state.retried_423 = false;
        match registration::granted_expiry(&req, msg) {
            Ok(granted) => {
                state.granted = granted.unwrap_or(0);
                state.service_route.clear();
                registration::write_service_route(msg, &mut state.service_route);
                true
            }
            Err(e) => {
                let at = self.position(env);
                self.fail(FailureReason::AssertFailed, format!("{at}: REGISTER: {e}"));
                false
            }
        }
    }

    /// `{{ refresh_after }}`: half the granted expiry (zero before any binding).
    pub(super) fn refresh_after(&self) -> Duration {
        let granted = self
            .extras
            .as_ref()
            .and_then(|e| e.registration.as_ref())
            .map_or(0, |r| r.granted);
        Duration::from_millis(u64::from(granted) * 500)
    }

    /// `{{ refresh_after }}` in a message: seconds with an `s` (`1800s`, `0.5s`).
    pub(super) fn write_refresh_after(&self, out: &mut Vec<u8>) {
        let ms = self.refresh_after().as_millis() as u64;
        super::write_dec(out, ms / 1000);
        if !ms.is_multiple_of(1000) {
            out.extend_from_slice(b".5");
        }
        out.push(b's');
    }

    /// `{{ service_route }}`: the `Route:` lines of the last REGISTER's 2xx.
    pub(super) fn write_service_route(&self, out: &mut Vec<u8>) {
        if let Some(r) = self.extras.as_ref().and_then(|e| e.registration.as_ref()) {
            out.extend_from_slice(&r.service_route);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The `register` and `register-then-call` built-ins against a registrar
    //! written by hand, in virtual time.

    use super::super::tests::{Harness, env_of};
    use super::*;
    use crate::scenario::builtin;
    use crate::scenario::call::Outcome;

    fn start(name: &str, overrides: &[(&str, &str)]) -> Harness {
        Harness::start(env_of(name, builtin::get(name).unwrap().text, overrides), 0)
    }

    const BINDING: &str = "Contact: <sip:alice@127.0.0.1:5070>;expires=";

    fn header<'a>(msg: &'a str, name: &str) -> &'a str {
        msg.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or("")
    }

    #[test]
    fn refreshes_at_half_the_granted_expiry_then_unregisters() {
        let mut ua = start(
            "register",
            &[
                ("user", "alice"),
                ("expires", "600"),
                ("refreshes", "2"),
                ("unregister", "yes"),
            ],
        );
        let first = ua.one();
        assert_eq!(header(&first, "Expires"), "600");
        assert_eq!(header(&first, "Contact"), "<sip:alice@127.0.0.1:5070>");
        // The registrar grants 100 s of the 600 asked: refresh after 50 s.
        ua.answer(&first, 200, &format!("{BINDING}100\r\n"), 10);
        assert!(ua.sent().is_empty());
        ua.tick(50_009);
        assert!(ua.sent().is_empty(), "not before half the granted expiry");
        ua.tick(50_010);
        let refresh = ua.one();
        assert!(refresh.starts_with("REGISTER "), "{refresh}");
        assert_eq!(header(&refresh, "CSeq"), "2 REGISTER");
        ua.answer(&refresh, 200, &format!("{BINDING}40\r\n"), 50_020);
        ua.tick(70_020);
        let second = ua.one();
        assert_eq!(header(&second, "CSeq"), "3 REGISTER");
        ua.answer(&second, 200, &format!("{BINDING}40\r\n"), 70_030);
        // Two refreshes done: the binding is removed at once.
        let remove = ua.one();
        assert_eq!(header(&remove, "Expires"), "0");
        assert_eq!(header(&remove, "CSeq"), "4 REGISTER");
        ua.answer(&remove, 200, "", 70_040);
        assert_eq!(ua.call.take_outcome(), Some(Outcome::Success));
    }

    #[test]
    fn interval_too_brief_is_retried_with_min_expires_once() {
        let mut ua = start("register", &[("user", "alice"), ("expires", "60")]);
        let first = ua.one();
        ua.answer(&first, 423, "Min-Expires: 3600\r\n", 5);
        let again = ua.one();
        assert_eq!(header(&again, "Expires"), "3600");
        assert_eq!(header(&again, "CSeq"), "2 REGISTER");
        assert_ne!(header(&again, "Via"), header(&first, "Via"), "new branch");
        ua.answer(&again, 200, &format!("{BINDING}3600\r\n"), 10);
        assert_eq!(ua.call.take_outcome(), Some(Outcome::Success));

        // Still too brief: the scenario sees the 423 (an unexpected response).
        let mut ua = start("register", &[("user", "alice"), ("expires", "60")]);
        let first = ua.one();
        ua.answer(&first, 423, "Min-Expires: 3600\r\n", 5);
        let again = ua.one();
        ua.answer(&again, 423, "Min-Expires: 7200\r\n", 10);
        assert_eq!(
            ua.call.take_outcome(),
            Some(Outcome::Failed(FailureReason::UnexpectedMessage))
        );
    }

    #[test]
    fn a_200_that_does_not_bind_our_contact_fails_the_call() {
        let mut ua = start("register", &[("user", "alice")]);
        let first = ua.one();
        ua.answer(
            &first,
            200,
            "Contact: <sip:bob@192.0.2.1>;expires=60\r\n",
            5,
        );
        assert_eq!(
            ua.call.take_outcome(),
            Some(Outcome::Failed(FailureReason::AssertFailed))
        );
        let detail = ua.call.detail.clone().unwrap_or_default();
        assert!(
            detail.contains("does not list our Contact sip:alice@127.0.0.1:5070"),
            "{detail}"
        );
    }

    #[test]
    fn register_then_call_follows_the_service_route_to_the_contact_given() {
        let mut ua = start(
            "register-then-call",
            &[("user", "alice"), ("contact", "127.0.0.1:5090")],
        );
        let reg = ua.one();
        assert_eq!(header(&reg, "Contact"), "<sip:alice@127.0.0.1:5090>");
        ua.answer(
            &reg,
            200,
            "Contact: <sip:alice@127.0.0.1:5090>;expires=3600\r\nService-Route: <sip:orig@10.0.0.9;lr>\r\n",
            5,
        );
        let invite = ua.one();
        assert!(invite.starts_with("INVITE sip:alice@"), "{invite}");
        assert_eq!(header(&invite, "Route"), "<sip:orig@10.0.0.9;lr>");
    }
}

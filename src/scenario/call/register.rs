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
        let state = self.registration.get_or_insert_with(Default::default);
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
        let state = self.registration.get_or_insert_with(Default::default);
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
        let granted = self.registration.as_ref().map_or(0, |r| r.granted);
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
        if let Some(r) = &self.registration {
            out.extend_from_slice(&r.service_route);
        }
    }
}

//! The interpreter's media steps. The call only holds a [`MediaHandle`]; what the
//! steps do to the stream lives in `media/` and is reached through [`MediaControl`].

use std::time::{Duration, Instant};

use super::{Call, CallEnv, Outbox, Wait};
use crate::media::config::{DtmfMode, DtmfSpec, MediaExpectation};
use crate::media::control::MediaControl;
use crate::media::stream::StreamFigures;
use crate::report::Counters;
use crate::scenario::plan::MediaStep;
use crate::sip::build;
use crate::sip::message::Message;

/// How long `expect_dtmf` waits without `timeout:` or a scenario `timeout`.
const EXPECT_DTMF_TIMEOUT: Duration = Duration::from_secs(30);

/// What a media step did: go on, wait (the call's `wait` is set), or fail.
pub(super) enum Progress {
    Next,
    Wait,
    Fail(String),
}

impl Call {
    pub(super) fn media_step(
        &mut self,
        env: &CallEnv,
        step: &MediaStep,
        now: Instant,
        out: &mut Outbox,
        ctr: &mut Counters,
        media: &mut dyn MediaControl,
    ) -> Progress {
        let waited = self.wait.filter(|w| w.pc == self.pc);
        let h = match self.media_session(env, now, media) {
            Ok(h) => h,
            Err(why) => return Progress::Fail(why),
        };
        if let MediaStep::Dtmf(spec) = step
            && spec.mode == DtmfMode::Info
        {
            return self.send_info_digit(env, spec, now, out, ctr);
        }
        let Some(session) = media.get_mut(h) else {
            return Progress::Fail("the call's media session is gone".into());
        };
        match step {
            MediaStep::Play(spec) => session.stream.play(spec, now),
            MediaStep::Silence => session.stream.silence(now),
            MediaStep::Stop => session.stream.stop_audio(),
            MediaStep::Dtmf(spec) => {
                if let Some(w) = waited {
                    if w.until.is_some_and(|u| u > now) {
                        return Progress::Wait;
                    }
                    self.wait = None;
                    return Progress::Next;
                }
                let Some(agreed) = session.agreed() else {
                    return Progress::Fail(
                        "dtmf: no media agreed yet (the peer's SDP has not arrived)".into(),
                    );
                };
                if agreed.telephone_event.is_none() {
                    return Progress::Fail(
                        "dtmf: the peer's SDP has no telephone-event; send digits with `mode: info`"
                            .into(),
                    );
                }
                let done = session.stream.dtmf(&spec.digits, spec.timing, now);
                self.wait = Some(Wait {
                    pc: self.pc,
                    until: Some(done),
                });
                return Progress::Wait;
            }
            MediaStep::Expect(exp) => {
                if let Err(why) = check_figures(&session.stream.figures(), exp) {
                    return Progress::Fail(format!("expect_media: {why}"));
                }
            }
            MediaStep::ExpectDtmf { digits, timeout } => {
                let mut got = session.stream.digits_received().to_string();
                got.push_str(&session.info_digits);
                if got.len() >= digits.len() {
                    if got.starts_with(digits.as_str()) {
                        self.wait = None;
                        return Progress::Next;
                    }
                    ctr.media.dtmf_mismatches += 1;
                    return Progress::Fail(format!(
                        "expect_dtmf: expected `{digits}`, received `{got}`"
                    ));
                }
                match waited {
                    Some(w) if w.until.is_some_and(|u| u <= now) => {
                        ctr.media.dtmf_mismatches += 1;
                        return Progress::Fail(format!(
                            "expect_dtmf: expected `{digits}`, received `{got}` before the timeout"
                        ));
                    }
                    Some(_) => return Progress::Wait,
                    None => {
                        let t = timeout
                            .or(env.plan.recv_timeout)
                            .unwrap_or(EXPECT_DTMF_TIMEOUT);
                        self.wait = Some(Wait {
                            pc: self.pc,
                            until: Some(now + t),
                        });
                        return Progress::Wait;
                    }
                }
            }
        }
        Progress::Next
    }

    /// `dtmf` with `mode: info`: one INFO per digit, each sent when the previous one
    /// has been answered (the answers are taken by `on_info_answer`, not the scenario).
    fn send_info_digit(
        &mut self,
        env: &CallEnv,
        spec: &DtmfSpec,
        now: Instant,
        out: &mut Outbox,
        ctr: &mut Counters,
    ) -> Progress {
        if self.wait.is_some_and(|w| w.pc == self.pc) {
            return Progress::Wait;
        }
        let Some(key) = spec.digits.chars().nth(self.info_sent as usize) else {
            self.info_sent = 0;
            return Progress::Next;
        };
        let branch = self.next_branch(env);
        let Some(dialog) = self.dialog.as_mut() else {
            return Progress::Fail("dtmf (info): no dialog yet".into());
        };
        let ms = spec.timing.duration.as_millis();
        let body = format!("Signal={key}\r\nDuration={ms}\r\n");
        let local = env.local();
        let req = out.build(|b| {
            dialog.build_request(
                "INFO",
                &local,
                &branch,
                None,
                "Content-Type: application/dtmf-relay\r\n",
                body.as_bytes(),
                b,
            );
        });
        self.cseq = dialog.local_cseq;
        let dest = self.dialog_hop;
        self.send_request_tx(env, "INFO", &branch, req, dest, now, out, ctr);
        ctr.media.dtmf_digits_sent += 1;
        // Bounded by the INFO's own transaction timeout.
        self.wait = Some(Wait {
            pc: self.pc,
            until: None,
        });
        Progress::Wait
    }

    /// A final response to one of our INFO digits while the `dtmf` step waits.
    /// Returns an error text when the peer refused it.
    pub(super) fn on_info_answer(&mut self, code: u16) -> Result<(), String> {
        self.wait = None;
        if code >= 300 {
            return Err(format!("dtmf (info): the peer answered {code}"));
        }
        self.info_sent += 1;
        Ok(())
    }
}

impl Call {
    /// An INFO carrying a digit (`application/dtmf-relay` or `application/dtmf`) that
    /// no `recv: INFO` step waits for: answered 200 here and the digit noted for
    /// `expect_dtmf`. Returns false when the message is not such an INFO.
    pub(super) fn take_info_digit(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        out: &mut Outbox,
        ctr: &mut Counters,
        media: &mut dyn MediaControl,
        now: Instant,
    ) -> bool {
        let ctype = msg
            .header(crate::sip::HeaderName::ContentType)
            .map(|h| h.value())
            .unwrap_or_default();
        let Some(key) = crate::media::dtmf::key_from_info(&ctype, msg.body) else {
            return false;
        };
        let Ok(h) = self.media_session(env, now, media) else {
            return false;
        };
        if let Some(session) = media.get_mut(h) {
            session.info_digits.push(key);
        }
        ctr.media.dtmf_digits_received += 1;
        let resp = out.build(|b| build::response(msg, 200, "OK", b));
        if let Some(tx) = self.servers.last_mut() {
            out.push(tx.dest(), &resp);
            tx.on_send_response(200, resp, now);
        }
        ctr.messages_sent += 1;
        true
    }
}

/// `expect_media` against a stream's figures.
fn check_figures(f: &StreamFigures, exp: &MediaExpectation) -> Result<(), String> {
    if let Some(min) = exp.min_packets
        && f.packets_received < min
    {
        return Err(format!(
            "{} packets received, at least {min} expected",
            f.packets_received
        ));
    }
    if let Some(max) = exp.max_loss_pct {
        let expected = f.packets_received + f.lost;
        let pct = if expected == 0 {
            0.0
        } else {
            f.lost as f64 * 100.0 / expected as f64
        };
        if pct > max {
            return Err(format!(
                "{pct:.2} % lost ({} of {expected}), at most {max} % allowed",
                f.lost
            ));
        }
    }
    if let Some(max) = exp.max_jitter_ms {
        let j = f.jitter.as_secs_f64() * 1000.0;
        if j > max {
            return Err(format!("jitter {j:.2} ms, at most {max} ms allowed"));
        }
    }
    Ok(())
}

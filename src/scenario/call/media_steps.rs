//! The interpreter's media steps. The call only holds a [`MediaHandle`]; what the
//! steps do to the stream lives in `media/` and is reached through [`MediaControl`].

use std::time::{Duration, Instant};

use super::{Call, CallEnv, Effects, Outbox, Wait};
use crate::media::config::{DtmfMode, DtmfSpec, MediaExpectation};
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
        fx: &mut Effects<'_>,
    ) -> Progress {
        let waited = self.wait.filter(|w| w.pc == self.pc);
        let h = match self.media_session(env, now, fx.media) {
            Ok(h) => h,
            Err(why) => return Progress::Fail(why),
        };
        if let MediaStep::Dtmf(spec) = step
            && spec.mode == DtmfMode::Info
        {
            return self.send_info_digit(env, spec, now, fx.out, fx.ctr);
        }
        let Some(session) = fx.media.get_mut(h) else {
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
                    fx.ctr.media.dtmf_mismatches += 1;
                    return Progress::Fail(format!(
                        "expect_dtmf: expected `{digits}`, received `{got}`"
                    ));
                }
                if self.inbox.iter().any(|m| m.starts_with(b"BYE ")) {
                    self.wait = None;
                    fx.ctr.media.dtmf_mismatches += 1;
                    return Progress::Fail(format!(
                        "expect_dtmf: expected `{digits}`, received `{got}` before the peer hung up"
                    ));
                }
                match waited {
                    Some(w) if w.until.is_some_and(|u| u <= now) => {
                        fx.ctr.media.dtmf_mismatches += 1;
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
        fx: &mut Effects<'_>,
        now: Instant,
    ) -> bool {
        let ctype = msg
            .header(crate::sip::HeaderName::ContentType)
            .map(|h| h.value())
            .unwrap_or_default();
        let Some(key) = crate::media::dtmf::key_from_info(&ctype, msg.body) else {
            return false;
        };
        let Ok(h) = self.media_session(env, now, fx.media) else {
            return false;
        };
        if let Some(session) = fx.media.get_mut(h) {
            session.info_digits.push(key);
        }
        fx.ctr.media.dtmf_digits_received += 1;
        let resp = fx.out.build(|b| build::response(msg, 200, "OK", b));
        if let Some(tx) = self.servers.last_mut() {
            fx.out.push(tx.dest(), &resp);
            tx.on_send_response(200, resp, now);
        }
        fx.ctr.messages_sent += 1;
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
    // On an SRTP stream a packet that does not authenticate is never silently fine.
    let failed = f.srtp_auth_failures + f.srtp_replay_failures;
    let allowed = exp.max_auth_failures.unwrap_or(0);
    if f.srtp && failed > allowed {
        return Err(format!(
            "{} SRTP packets failed authentication and {} were replays, at most {allowed} \
             allowed (max_auth_failures)",
            f.srtp_auth_failures, f.srtp_replay_failures
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! uac-media against uas-media, both interpreters and both streams driven in
    //! virtual time: SIP and RTP handed from one side to the other by hand.

    use std::net::SocketAddr;

    use super::*;
    use crate::media::control::SessionTable;
    use crate::media::session::MediaSession;
    use crate::scenario::builtin;
    use crate::scenario::call::Outcome;
    use crate::scenario::plan::Role;
    use crate::sip::message;

    struct Side {
        env: CallEnv,
        call: Call,
        out: Outbox,
        ctr: Counters,
        media: SessionTable,
        /// Flip a bit in the tag of every Nth RTP packet this side sends (0: none).
        corrupt_every: usize,
        sent: usize,
    }

    fn side(name: &str, overrides: &[(&str, &str)], base_port: u16) -> Side {
        side_of(name, builtin::get(name).unwrap().text, overrides, base_port)
    }

    fn side_of(name: &str, text: &str, overrides: &[(&str, &str)], base_port: u16) -> Side {
        let env = crate::scenario::call::tests::env_of(name, text, overrides);
        let config = (**env.plan.media.as_ref().unwrap()).clone();
        let call = if env.plan.role == Role::Uac {
            Call::new_uac(&env, 1, Instant::now())
        } else {
            Call::new_uas(&env, 1, "pending", env.remote, Instant::now())
        };
        Side {
            env,
            call,
            out: Outbox::default(),
            ctr: Counters::default(),
            media: SessionTable::new(config, base_port),
            corrupt_every: 0,
            sent: 0,
        }
    }

    fn session(s: &Side) -> Option<&MediaSession> {
        s.media.sessions.first().and_then(|x| x.as_ref())
    }

    /// Deliver every datagram `from` queued to `to`.
    fn shuttle_sip(from: &mut Side, to: &mut Side, now: Instant) {
        let msgs: Vec<Vec<u8>> = from.out.iter().map(|(_, b)| b.to_vec()).collect();
        from.out.clear();
        let src: SocketAddr = from
            .env
            .local_ip
            .parse::<std::net::IpAddr>()
            .map(|ip| SocketAddr::new(ip, from.env.local_port))
            .unwrap();
        for m in msgs {
            let msg = message::parse(&m).unwrap();
            to.call.on_message(
                &to.env,
                &msg,
                src,
                now,
                &mut Effects {
                    out: &mut to.out,
                    ctr: &mut to.ctr,
                    media: &mut to.media,
                },
            );
        }
    }

    /// Hand what one side's stream has due to the other's; returns the packets moved.
    fn shuttle_rtp(from: &mut Side, to: &mut Side, now: Instant) -> usize {
        let mut buf = Vec::new();
        let mut packets = Vec::new();
        if let Some(Some(s)) = from.media.sessions.first_mut() {
            while let Some(t) = s.stream.poll_transmit(now, &mut buf) {
                from.sent += 1;
                if from.corrupt_every > 0
                    && from.sent.is_multiple_of(from.corrupt_every)
                    && t.channel == crate::media::stream::Channel::Rtp
                    && let Some(last) = buf.last_mut()
                {
                    *last ^= 1;
                }
                packets.push((t, buf.clone()));
            }
        }
        let n = packets.len();
        let mut echo = Vec::new();
        let mut echoes = Vec::new();
        let mut digit = false;
        if let Some(Some(s)) = to.media.sessions.first_mut() {
            for (t, p) in packets {
                if t.channel == crate::media::stream::Channel::Rtcp {
                    s.stream.on_rtcp(&mut p.clone(), now);
                    continue;
                }
                let got = s.stream.on_rtp(&mut p.clone(), now, &mut echo);
                digit |= got.digit;
                if got.echo.is_some() {
                    echoes.push(echo.clone());
                }
            }
        }
        if let Some(Some(s)) = from.media.sessions.first_mut() {
            for e in echoes {
                s.stream.on_rtp(&mut e.clone(), now, &mut echo);
            }
        }
        if digit {
            to.call.on_media_event(
                &to.env,
                now,
                &mut Effects {
                    out: &mut to.out,
                    ctr: &mut to.ctr,
                    media: &mut to.media,
                },
            );
        }
        n
    }

    /// Both calls ended as a success (else the failure detail, after `what`).
    fn assert_both_succeeded(uac: &mut Side, uas: &mut Side, what: &str) {
        for s in [uac, uas] {
            assert_eq!(
                s.call.take_outcome(),
                Some(Outcome::Success),
                "{what} {}: {:?}",
                s.env.plan.name,
                s.call.failure_detail()
            );
        }
    }

    /// Run both calls in virtual time (4 s in 10 ms steps); returns RTP packets moved.
    fn run_pair(uac: &mut Side, uas: &mut Side) -> usize {
        let t0 = Instant::now();
        uac.call.start(
            &uac.env,
            t0,
            &mut Effects {
                out: &mut uac.out,
                ctr: &mut uac.ctr,
                media: &mut uac.media,
            },
        );
        let mut moved = 0;
        let mut now = t0;
        for _ in 0..400 {
            shuttle_sip(uac, uas, now);
            shuttle_sip(uas, uac, now);
            moved += shuttle_rtp(uac, uas, now);
            moved += shuttle_rtp(uas, uac, now);
            for s in [&mut *uac, &mut *uas] {
                if s.call.deadline().is_some_and(|d| d <= now) {
                    s.call.on_timeout(
                        &s.env,
                        now,
                        &mut Effects {
                            out: &mut s.out,
                            ctr: &mut s.ctr,
                            media: &mut s.media,
                        },
                    );
                }
            }
            now += Duration::from_millis(10);
        }
        moved
    }

    /// `mode: info`: one INFO per digit, each after the previous one's 200; the
    /// peer answers them itself and its expect_dtmf counts them.
    #[test]
    fn digits_by_info_are_answered_and_expected() {
        let text = builtin::get("uac-media").unwrap().text.replace(
            "  - dtmf: \"1234\"\n",
            "  - dtmf: \"1234\"\n    mode: info\n",
        );
        let mut uac = side_of("uac-info", &text, &[("call_duration", "1s")], 40_000);
        let mut uas = side("uas-media", &[], 42_000);
        run_pair(&mut uac, &mut uas);
        assert_both_succeeded(&mut uac, &mut uas, "");
        assert_eq!(session(&uas).unwrap().info_digits, "1234");
        assert_eq!(session(&uas).unwrap().stream.digits_received(), "");
        assert_eq!(uac.ctr.media.dtmf_digits_sent, 4);
        assert_eq!(uas.ctr.media.dtmf_digits_received, 4);
    }

    #[test]
    fn uac_srtp_and_uas_srtp_encrypt_both_ways_and_exchange_digits() {
        let mut uac = side("uac-srtp", &[("call_duration", "1s")], 40_000);
        let mut uas = side("uas-srtp", &[], 42_000);
        run_pair(&mut uac, &mut uas);
        assert_both_succeeded(&mut uac, &mut uas, "");
        let theirs = session(&uas).unwrap();
        assert_eq!(theirs.stream.digits_received(), "1234");
        let srtp = theirs.agreed().unwrap().srtp.as_ref().unwrap();
        assert_eq!(srtp.suite.sdes_name(), "AES_CM_128_HMAC_SHA1_80");
        let ours = session(&uac).unwrap();
        let mine = ours.agreed().unwrap().srtp.as_ref().unwrap();
        // Each side protects with its own key and opens with the other's.
        assert_eq!(mine.local, srtp.remote);
        assert_eq!(mine.remote, srtp.local);
        assert_ne!(mine.local, mine.remote);
        for f in [ours.stream.figures(), theirs.stream.figures()] {
            assert!(f.srtp, "{f:?}");
            assert!(f.packets_received > 100, "{f:?}");
            assert_eq!(
                (f.lost, f.srtp_auth_failures, f.srtp_replay_failures),
                (0, 0, 0)
            );
        }
    }

    /// MKI in every packet and keys derived every 16 packets (KDR=4) on the UAC's
    /// side, in three suites (a 32-bit tag, GCM, a 256-bit key).
    #[test]
    fn srtp_with_mki_and_kdr_in_every_suite() {
        for suite in [
            "AES_CM_128_HMAC_SHA1_32",
            "AEAD_AES_128_GCM",
            "AES_256_CM_HMAC_SHA1_80",
        ] {
            let text = builtin::get("uac-srtp").unwrap().text.replace(
                "  srtp: [AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM]\n",
                &format!("  srtp: [{suite}]\n  srtp_mki: 2\n  srtp_kdr: 4\n"),
            );
            let mut uac = side_of("uac-kdr", &text, &[("call_duration", "1s")], 40_000);
            let mut uas = side("uas-srtp", &[], 42_000);
            run_pair(&mut uac, &mut uas);
            assert_both_succeeded(&mut uac, &mut uas, suite);
            let theirs = session(&uas).unwrap();
            let agreed = theirs.agreed().unwrap().srtp.as_ref().unwrap();
            assert_eq!(agreed.suite.sdes_name(), suite);
            assert_eq!(agreed.remote.kdr, 16);
            assert_eq!(agreed.remote.mki.as_deref(), Some(&[0, 1][..]));
            let f = theirs.stream.figures();
            assert!(f.packets_received > 100, "{suite}: {f:?}");
            assert_eq!(f.srtp_auth_failures, 0, "{suite}: {f:?}");
            assert_eq!(theirs.stream.digits_received(), "1234");
        }
    }

    /// Packets whose tag was damaged on the way are counted, never taken as audio,
    /// and `expect_media` fails the call over them (max_auth_failures: 0).
    #[test]
    fn damaged_srtp_packets_are_counted_and_fail_expect_media() {
        let mut uac = side("uac-srtp", &[("call_duration", "1s")], 40_000);
        uac.corrupt_every = 25;
        let mut uas = side("uas-srtp", &[], 42_000);
        run_pair(&mut uac, &mut uas);
        let f = session(&uas).unwrap().stream.figures();
        assert!(f.srtp_auth_failures > 3, "{f:?}");
        assert!(f.packets_received > 100, "{f:?}");
        assert_eq!(
            uas.call.take_outcome(),
            Some(Outcome::Failed(crate::report::FailureReason::Media))
        );
        let detail = uas.call.failure_detail().unwrap_or_default();
        assert!(detail.contains("failed authentication"), "{detail}");
    }

    /// A BYE while `expect_dtmf` waits ends the wait at once (not at its 30 s
    /// timeout): the digits are not coming.
    #[test]
    fn hang_up_during_expect_dtmf_fails_at_once() {
        let text = builtin::get("uac-media")
            .unwrap()
            .text
            .replace("  - dtmf: \"1234\"\n", "");
        let mut uac = side_of("uac-no-digits", &text, &[("call_duration", "1s")], 40_000);
        let mut uas = side("uas-media", &[], 42_000);
        run_pair(&mut uac, &mut uas);
        assert_eq!(
            uas.call.take_outcome(),
            Some(Outcome::Failed(crate::report::FailureReason::Media))
        );
        let detail = uas.call.failure_detail().unwrap_or_default();
        assert!(detail.contains("before the peer hung up"), "{detail}");
    }

    #[test]
    fn uac_media_and_uas_media_agree_play_and_exchange_digits() {
        let mut uac = side("uac-media", &[("call_duration", "1s")], 40_000);
        let mut uas = side("uas-media", &[], 42_000);
        let moved = run_pair(&mut uac, &mut uas);
        assert_both_succeeded(&mut uac, &mut uas, "");
        let theirs = session(&uas).unwrap();
        assert_eq!(theirs.stream.digits_received(), "1234");
        let agreed = theirs.agreed().unwrap();
        assert_eq!(agreed.codec.name, "PCMU");
        assert_eq!(agreed.telephone_event, Some(101));
        assert_eq!(agreed.remote_rtp.port(), 40_000);
        let ours = session(&uac).unwrap();
        assert_eq!(ours.agreed().unwrap().remote_rtp.port(), 42_000);
        // About 2.8 s of audio each way (1 s, the digits, 1 s), echoed back.
        let f = ours.stream.figures();
        assert!(f.packets_sent > 100, "{f:?}");
        assert!(f.packets_received > 100, "{f:?}");
        assert_eq!(f.lost, 0, "{f:?}");
        assert!(moved > 200);
    }

    #[test]
    fn expect_media_thresholds() {
        let f = StreamFigures {
            packets_received: 90,
            lost: 10,
            jitter: Duration::from_millis(3),
            ..StreamFigures::default()
        };
        let exp = |min, loss, jitter| MediaExpectation {
            min_packets: min,
            max_loss_pct: loss,
            max_jitter_ms: jitter,
            max_auth_failures: None,
        };
        assert!(check_figures(&f, &exp(Some(90), None, None)).is_ok());
        assert!(
            check_figures(&f, &exp(Some(91), None, None))
                .unwrap_err()
                .contains("90 packets received")
        );
        assert!(check_figures(&f, &exp(None, Some(10.0), None)).is_ok());
        assert!(
            check_figures(&f, &exp(None, Some(5.0), None))
                .unwrap_err()
                .contains("10.00 % lost")
        );
        assert!(check_figures(&f, &exp(None, None, Some(2.0))).is_err());
    }
}

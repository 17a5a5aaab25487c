//! The torture run as a state machine (sans-IO): for each message, send it, wait
//! up to the timeout for its final response, finish what an INVITE started
//! (ACK; after a 2xx also BYE), then send an OPTIONS probe and wait up to the
//! timeout for any answer to it. Datagrams in, datagrams and deadlines out; the
//! caller owns the socket and the clock.
//!
//! Every phase ends at a deadline fixed when it began, so a target that never
//! answers, or one that floods us, cannot make the run last longer than about
//! three timeouts per message.

use std::time::{Duration, Instant};

use super::pack::{Case, Expectation, Reaction};
use crate::sip::HeaderName;
use crate::sip::message::{self, Message, StartLine};

/// What a run needs to know besides the messages.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The target as `$TARGET` writes it: `HOST:PORT`.
    pub target: String,
    /// Our address as `$LOCAL` writes it: `HOST:PORT`.
    pub local: String,
    /// How long to wait for a message's final response, for the end of an
    /// accepted INVITE's dialog, and for the probe's answer.
    pub timeout: Duration,
    /// Makes this run's Call-IDs and branches its own.
    pub nonce: u64,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub bytes: Vec<u8>,
    /// The torture message itself (not an ACK, BYE or probe): a send error
    /// is its reaction.
    pub is_case: bool,
}

/// What happened to one message.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub category: String,
    pub description: String,
    pub expect: Expectation,
    pub reaction: Reaction,
    /// The final response's status line and Warning, or what else happened.
    pub detail: String,
    /// The target answered the probe sent after this message.
    pub alive: bool,
    /// From sending the message to its final response (or to the timeout).
    pub elapsed: Duration,
}

impl CaseResult {
    pub fn as_expected(&self) -> bool {
        self.expect.matches(&self.reaction)
    }

    /// As expected, and the target still alive.
    pub fn passed(&self) -> bool {
        self.as_expected() && self.alive
    }
}

/// The message in progress.
struct Current {
    index: usize,
    /// What its responses carry: its top Via branch and Call-ID (each only when
    /// the message has one of ours).
    branch: Option<String>,
    call_id: Option<String>,
    /// Request-URI and method of what was sent, when it has a request line.
    ruri: Option<String>,
    method: Option<String>,
    sent_at: Instant,
    provisional: Option<u16>,
    reaction: Reaction,
    detail: String,
    elapsed: Duration,
}

enum Phase {
    /// Start the next message, or finish.
    Next,
    /// Waiting for the message's final response.
    Awaiting {
        deadline: Instant,
    },
    /// An INVITE was accepted: ACK and BYE sent, waiting for the BYE's answer.
    Closing {
        deadline: Instant,
        bye_branch: String,
    },
    /// Waiting for the probe's answer; re-sent every `resend` like a client
    /// transaction would (a datagram can be lost).
    Probing {
        deadline: Instant,
        next_send: Instant,
        branch: String,
        request: Vec<u8>,
    },
    Done,
}

/// ACKs for 2xx responses of recent INVITEs, re-sent when the 2xx is (our ACK
/// was lost, or a proxy forwarded a retransmission). A few are enough: each
/// message's dialog ends before the next message starts.
const KEPT_ACKS: usize = 8;

pub struct Runner {
    cases: Vec<Case>,
    settings: Settings,
    /// Start of every Call-ID of this run (messages and probes).
    prefix: String,
    next: usize,
    phase: Phase,
    current: Option<Current>,
    results: Vec<CaseResult>,
    acks: Vec<(String, Vec<u8>)>,
}

impl Runner {
    pub fn new(cases: Vec<Case>, settings: Settings) -> Runner {
        let prefix = format!("torture-{:016x}", settings.nonce);
        Runner {
            cases,
            settings,
            prefix,
            next: 0,
            phase: Phase::Next,
            current: None,
            results: Vec::new(),
            acks: Vec::new(),
        }
    }

    pub fn results(&self) -> &[CaseResult] {
        &self.results
    }

    pub fn into_results(self) -> Vec<CaseResult> {
        self.results
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Moves on as far as `now` allows, queueing datagrams in `out`; the next
    /// deadline, or None when every message has been tried.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Option<Instant> {
        loop {
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Next => {
                    if self.next >= self.cases.len() {
                        self.phase = Phase::Done;
                        return None;
                    }
                    self.start_case(now, out);
                }
                Phase::Awaiting { deadline } => {
                    if now < *deadline {
                        return Some(*deadline);
                    }
                    if let Some(cur) = self.current.as_mut() {
                        cur.elapsed = now.saturating_duration_since(cur.sent_at);
                        match cur.provisional {
                            Some(code) => {
                                cur.reaction = Reaction::Provisional(code);
                                cur.detail = format!("no final response, only {code}");
                            }
                            None => {
                                cur.reaction = Reaction::Ignore;
                                cur.detail = "no response".into();
                            }
                        }
                    }
                    self.start_probe(now, out);
                }
                Phase::Closing { deadline, .. } => {
                    if now < *deadline {
                        return Some(*deadline);
                    }
                    self.start_probe(now, out);
                }
                Phase::Probing {
                    deadline,
                    next_send,
                    request,
                    ..
                } => {
                    if now >= *deadline {
                        self.finish(false);
                        continue;
                    }
                    if now >= *next_send {
                        out.push(Outgoing {
                            bytes: request.clone(),
                            is_case: false,
                        });
                        *next_send = now + resend_interval(self.settings.timeout);
                    }
                    return Some((*deadline).min(*next_send));
                }
            }
        }
    }

    /// A datagram from the target.
    pub fn on_datagram(&mut self, data: &[u8], now: Instant, out: &mut Vec<Outgoing>) {
        // Anything that is not a SIP response is no reaction (a target that
        // answers garbage with garbage shows as ignoring it).
        let Ok(msg) = message::parse(data) else {
            return;
        };
        let Some(status) = msg.status() else {
            return;
        };
        let branch = msg.top_via_branch();
        let call_id = msg.call_id();
        match &self.phase {
            Phase::Awaiting { .. } if self.is_current(branch, call_id) => {
                self.on_reaction(&msg, status, now, out);
            }
            Phase::Closing { bye_branch, .. } if branch == Some(bye_branch.as_str()) => {
                if status >= 200 {
                    self.start_probe(now, out);
                }
            }
            Phase::Probing { branch: probe, .. } if branch == Some(probe.as_str()) => {
                self.finish(true);
            }
            _ => {
                let invite_2xx = (200..300).contains(&status)
                    && msg.cseq().is_some_and(|c| c.method == "INVITE");
                if invite_2xx
                    && let Some((_, ack)) = self
                        .acks
                        .iter()
                        .find(|(id, _)| Some(id.as_str()) == call_id)
                {
                    out.push(Outgoing {
                        bytes: ack.clone(),
                        is_case: false,
                    });
                }
            }
        }
    }

    /// The socket refused a datagram; when it was the message itself, that is
    /// its reaction (the probe still tells whether the target is there).
    pub fn on_send_error(
        &mut self,
        is_case: bool,
        error: String,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        if !is_case || !matches!(self.phase, Phase::Awaiting { .. }) {
            return;
        }
        if let Some(cur) = self.current.as_mut() {
            cur.detail = format!("not sent: {error}");
            cur.reaction = Reaction::NotSent(error);
        }
        self.start_probe(now, out);
    }

    /// Does a response with this branch and Call-ID answer the current message?
    /// A message with neither of ours takes any response that is not for
    /// another of this run's requests.
    fn is_current(&self, branch: Option<&str>, call_id: Option<&str>) -> bool {
        let Some(cur) = &self.current else {
            return false;
        };
        let by_branch = cur.branch.is_some() && cur.branch.as_deref() == branch;
        let by_call_id = cur.call_id.is_some() && cur.call_id.as_deref() == call_id;
        let anonymous = cur.branch.is_none()
            && cur.call_id.is_none()
            && !call_id.is_some_and(|c| c.starts_with(&self.prefix));
        by_branch || by_call_id || anonymous
    }

    fn start_case(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        let index = self.next;
        self.next += 1;
        let Some(case) = self.cases.get(index) else {
            return;
        };
        let call_id = format!("{}-{index}@sipwright.invalid", self.prefix);
        let branch = format!("z9hG4bK-{}-{index}", self.prefix);
        let tag = format!("t{:08x}{index}", self.settings.nonce as u32);
        let head = head_of(&case.template);
        let uses = |name: &[u8]| head.windows(name.len()).any(|w| w == name);
        let (has_call_id, has_branch) = (uses(b"$CALLID"), uses(b"$BRANCH"));
        let bytes = substitute(
            &case.template,
            &[
                ("TARGET", &self.settings.target),
                ("LOCAL", &self.settings.local),
                ("CALLID", &call_id),
                ("BRANCH", &branch),
                ("TAG", &tag),
            ],
        );
        let (method, ruri) = request_line(&bytes);
        self.current = Some(Current {
            index,
            branch: has_branch.then_some(branch),
            call_id: has_call_id.then_some(call_id),
            ruri,
            method,
            sent_at: now,
            provisional: None,
            reaction: Reaction::Ignore,
            detail: String::new(),
            elapsed: Duration::ZERO,
        });
        out.push(Outgoing {
            bytes,
            is_case: true,
        });
        self.phase = Phase::Awaiting {
            deadline: now + self.settings.timeout,
        };
    }

    fn on_reaction(
        &mut self,
        msg: &Message<'_>,
        status: u16,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if status < 200 {
            cur.provisional = Some(status);
            return;
        }
        cur.elapsed = now.saturating_duration_since(cur.sent_at);
        cur.reaction = if status < 300 {
            Reaction::Accept(status)
        } else {
            Reaction::Reject(status)
        };
        cur.detail = describe(msg);
        let is_invite = cur.method.as_deref() == Some("INVITE")
            && msg.cseq().is_some_and(|c| c.method == "INVITE");
        let Some(ruri) = cur.ruri.clone().filter(|_| is_invite) else {
            self.start_probe(now, out);
            return;
        };
        let base = format!("z9hG4bK-{}-{}", self.prefix, cur.index);
        if status >= 300 {
            // The ACK of a non-2xx belongs to the INVITE's transaction (§17.1.1.3):
            // it stops the server's retransmissions.
            if let Some(ack) = non2xx_ack(&ruri, msg) {
                out.push(Outgoing {
                    bytes: ack,
                    is_case: false,
                });
            }
            self.start_probe(now, out);
            return;
        }
        // Accepted: end the dialog so the target is left as it was (§13.2.2.4, §15).
        let local = &self.settings.local;
        let ack = in_dialog(&ruri, msg, "ACK", 0, &format!("{base}-ack"), local);
        let bye_branch = format!("{base}-bye");
        let bye = in_dialog(&ruri, msg, "BYE", 1, &bye_branch, local);
        match (ack, bye) {
            (Some(ack), Some(bye)) => {
                if let Some(id) = msg.call_id() {
                    if self.acks.len() >= KEPT_ACKS {
                        self.acks.remove(0);
                    }
                    self.acks.push((id.to_string(), ack.clone()));
                }
                out.push(Outgoing {
                    bytes: ack,
                    is_case: false,
                });
                out.push(Outgoing {
                    bytes: bye,
                    is_case: false,
                });
                self.phase = Phase::Closing {
                    deadline: now + self.settings.timeout,
                    bye_branch,
                };
            }
            _ => self.start_probe(now, out),
        }
    }

    fn start_probe(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        let index = self.current.as_ref().map_or(self.next, |c| c.index);
        let branch = format!("z9hG4bK-{}-probe{index}", self.prefix);
        let (target, local) = (&self.settings.target, &self.settings.local);
        let request = format!(
            "OPTIONS sip:{target} SIP/2.0\r\n\
Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:torture-probe@{local}>;tag=p{:08x}{index}\r\n\
To: <sip:{target}>\r\n\
Call-ID: {}-probe{index}@sipwright.invalid\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n",
            self.settings.nonce as u32, self.prefix
        )
        .into_bytes();
        out.push(Outgoing {
            bytes: request.clone(),
            is_case: false,
        });
        self.phase = Phase::Probing {
            deadline: now + self.settings.timeout,
            next_send: now + resend_interval(self.settings.timeout),
            branch,
            request,
        };
    }

    /// Records the current message's result and moves to the next.
    fn finish(&mut self, alive: bool) {
        if let Some(cur) = self.current.take()
            && let Some(case) = self.cases.get(cur.index)
        {
            self.results.push(CaseResult {
                name: case.name.clone(),
                category: case.category.clone(),
                description: case.description.clone(),
                expect: case.expect,
                reaction: cur.reaction,
                detail: cur.detail,
                alive,
                elapsed: cur.elapsed,
            });
        }
        self.phase = Phase::Next;
    }
}

/// How often the probe is re-sent while unanswered: a quarter of the timeout,
/// between 20 ms and T1 (500 ms).
fn resend_interval(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(20), Duration::from_millis(500))
}

/// The head of a message: up to and including its first empty line (all of
/// it when there is none).
fn head_of(m: &[u8]) -> &[u8] {
    let crlf = m.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = m.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(m.len()),
    };
    &m[..end]
}

/// `template` with `$NAME` replaced by its value for each `(NAME, value)` in
/// `vars`, in the head only: a body is sent as written (its Content-Length was
/// counted for it). Unknown `$` words are left alone.
pub fn substitute(template: &[u8], vars: &[(&str, &str)]) -> Vec<u8> {
    let head = head_of(template);
    let mut out = Vec::with_capacity(template.len() + 64);
    let mut i = 0;
    while i < head.len() {
        if head[i] == b'$'
            && let Some((name, value)) = vars
                .iter()
                .filter(|(n, _)| head[i + 1..].starts_with(n.as_bytes()))
                .max_by_key(|(n, _)| n.len())
        {
            out.extend_from_slice(value.as_bytes());
            i += 1 + name.len();
            continue;
        }
        out.push(head[i]);
        i += 1;
    }
    out.extend_from_slice(&template[head.len()..]);
    out
}

/// Method and Request-URI of a message that starts with a request line.
fn request_line(m: &[u8]) -> (Option<String>, Option<String>) {
    let from = message::leading_empty_lines(m);
    let line = m[from..].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match message::parse_start_line(line) {
        Ok(StartLine::Request { method, uri, .. }) => {
            (Some(method.to_string()), Some(uri.to_string()))
        }
        _ => (None, None),
    }
}

/// `400 Bad Request; Warning: 399 sipwright "…"` — what a response says.
fn describe(msg: &Message<'_>) -> String {
    let mut d = match msg.start {
        StartLine::Response { code, reason, .. } => format!("{code} {reason}"),
        StartLine::Request { method, .. } => method.to_string(),
    };
    if let Some(w) = msg.headers_named("Warning").next() {
        d.push_str("; Warning: ");
        d.push_str(&w.value());
    }
    d
}

/// Appends `Name: value` with the value's bytes as received.
fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The ACK for a non-2xx final response to an INVITE (§17.1.1.3): the INVITE's
/// Request-URI and top Via, From, Call-ID and CSeq number, the response's To.
/// None when the response lacks what it needs.
fn non2xx_ack(ruri: &str, resp: &Message<'_>) -> Option<Vec<u8>> {
    let via = resp.top_via_str()?;
    let raw = |k: HeaderName| resp.header(k).map(|h| h.raw_value);
    let (from, to, call_id) = (
        raw(HeaderName::From)?,
        raw(HeaderName::To)?,
        raw(HeaderName::CallId)?,
    );
    let seq = resp.cseq()?.seq;
    let mut m = format!("ACK {ruri} SIP/2.0\r\n").into_bytes();
    header(&mut m, "Via", via.as_bytes());
    header(&mut m, "Max-Forwards", b"70");
    header(&mut m, "From", from);
    header(&mut m, "To", to);
    header(&mut m, "Call-ID", call_id);
    header(&mut m, "CSeq", format!("{seq} ACK").as_bytes());
    m.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(m)
}

/// An ACK (`cseq_step` 0) or BYE (1) in the dialog a 2xx to our INVITE made:
/// to the 2xx's Contact (else the INVITE's Request-URI) along its
/// Record-Route reversed (§12.1.2), sent to the target, which is where the
/// route starts anyway.
fn in_dialog(
    ruri: &str,
    resp: &Message<'_>,
    method: &str,
    cseq_step: u32,
    branch: &str,
    local: &str,
) -> Option<Vec<u8>> {
    let raw = |k: HeaderName| resp.header(k).map(|h| h.raw_value);
    let (from, to, call_id) = (
        raw(HeaderName::From)?,
        raw(HeaderName::To)?,
        raw(HeaderName::CallId)?,
    );
    let seq = resp.cseq()?.seq.checked_add(cseq_step)?;
    let target = resp.contact().map_or(ruri, |c| c.uri);
    let mut m = format!("{method} {target} SIP/2.0\r\n").into_bytes();
    header(
        &mut m,
        "Via",
        format!("SIP/2.0/UDP {local};branch={branch};rport").as_bytes(),
    );
    for route in resp.record_route().iter().rev() {
        header(&mut m, "Route", route.as_bytes());
    }
    header(&mut m, "Max-Forwards", b"70");
    header(&mut m, "From", from);
    header(&mut m, "To", to);
    header(&mut m, "Call-ID", call_id);
    header(&mut m, "CSeq", format!("{seq} {method}").as_bytes());
    m.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::validate::{Malformed, Rejection, write_rejection};
    use crate::torture::pack::Case;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn case(name: &str, expect: &str, template: &str) -> Case {
        Case {
            name: name.into(),
            category: "valid".into(),
            expect: Expectation::parse(expect).unwrap(),
            description: String::new(),
            template: template.as_bytes().to_vec(),
        }
    }

    const OPTIONS: &str = "OPTIONS sip:s@$TARGET SIP/2.0\r\nVia: SIP/2.0/UDP $LOCAL;branch=$BRANCH\r\n\
From: <sip:t@x>;tag=$TAG\r\nTo: <sip:s@$TARGET>\r\nCall-ID: $CALLID\r\nCSeq: 1 OPTIONS\r\n\r\n";
    const INVITE: &str = "INVITE sip:s@$TARGET SIP/2.0\r\nVia: SIP/2.0/UDP $LOCAL;branch=$BRANCH\r\n\
From: <sip:t@x>;tag=$TAG\r\nTo: <sip:s@$TARGET>\r\nCall-ID: $CALLID\r\nCSeq: 7 INVITE\r\nl: 4\r\n\r\n$TAG";

    fn runner(cases: Vec<Case>) -> Runner {
        Runner::new(
            cases,
            Settings {
                target: "192.0.2.1:5060".into(),
                local: "192.0.2.9:4000".into(),
                timeout: TIMEOUT,
                nonce: 0xabc,
            },
        )
    }

    /// A response to `req` with this status (and `extra` headers before the end).
    fn answer(req: &[u8], code: u16, extra: &str) -> Vec<u8> {
        let m = message::parse(req)
            .or_else(|_| message::salvage_request(req).ok_or(()))
            .unwrap();
        let rej = Rejection {
            cause: Malformed::Header,
            code,
            reason: "Whatever",
            warning: "test".into(),
        };
        let mut out = Vec::new();
        assert!(write_rejection(&m, &rej, "srv", &mut out));
        let text = String::from_utf8(out).unwrap();
        text.replacen("Server: sipwright\r\n", extra, 1)
            .into_bytes()
    }

    fn texts(out: &[Outgoing]) -> Vec<String> {
        out.iter()
            .map(|o| String::from_utf8_lossy(&o.bytes).into_owned())
            .collect()
    }

    #[test]
    fn substitution_is_for_the_head_only() {
        let t = b"A $TARGET $TAG$TARGET $UNKNOWN $\r\n\r\nbody $TARGET";
        let s = substitute(t, &[("TARGET", "h:1"), ("TAG", "x")]);
        assert_eq!(s, b"A h:1 xh:1 $UNKNOWN $\r\n\r\nbody $TARGET");
        // Bare LF heads too; no head end at all: everything is head.
        assert_eq!(substitute(b"$TAG\n\n$TAG", &[("TAG", "x")]), b"x\n\n$TAG");
        assert_eq!(substitute(b"cut $TAG", &[("TAG", "x")]), b"cut x");
        assert_eq!(substitute(b"", &[("TAG", "x")]), b"");
    }

    #[test]
    fn a_served_message_then_a_probe() {
        let mut r = runner(vec![case("opt", "reject 4xx", OPTIONS)]);
        let t0 = Instant::now();
        let mut out = Vec::new();
        assert_eq!(r.poll(t0, &mut out), Some(t0 + TIMEOUT));
        assert_eq!(out.len(), 1);
        assert!(out[0].is_case);
        let sent = texts(&out).remove(0);
        assert!(
            sent.starts_with("OPTIONS sip:s@192.0.2.1:5060 SIP/2.0\r\n"),
            "{sent}"
        );
        assert!(sent.contains(
            "Via: SIP/2.0/UDP 192.0.2.9:4000;branch=z9hG4bK-torture-0000000000000abc-0\r\n"
        ));
        assert!(sent.contains("Call-ID: torture-0000000000000abc-0@sipwright.invalid\r\n"));
        let req = out.remove(0).bytes;
        // A late answer to something else is not the reaction; a 100 is not final.
        r.on_datagram(b"SIP/2.0 486 Busy\r\nCall-ID: other\r\n\r\n", t0, &mut out);
        r.on_datagram(&answer(&req, 100, ""), t0, &mut out);
        assert!(out.is_empty());
        let t1 = t0 + Duration::from_millis(5);
        r.on_datagram(&answer(&req, 403, ""), t1, &mut out);
        let probe = texts(&out).remove(0);
        assert!(
            probe.starts_with("OPTIONS sip:192.0.2.1:5060 SIP/2.0\r\n"),
            "{probe}"
        );
        assert!(!out[0].is_case);
        let probe = out.remove(0).bytes;
        // Unanswered, the probe is re-sent every quarter of the timeout.
        assert_eq!(r.poll(t1, &mut out), Some(t1 + TIMEOUT / 4));
        assert!(out.is_empty());
        assert_eq!(r.poll(t1 + TIMEOUT / 4, &mut out), Some(t1 + TIMEOUT / 2));
        assert_eq!(out.len(), 1);
        out.clear();
        r.on_datagram(&answer(&probe, 200, ""), t1, &mut out);
        assert_eq!(r.poll(t1, &mut out), None);
        let res = r.into_results();
        assert_eq!(res.len(), 1);
        assert_eq!(res[0].reaction, Reaction::Reject(403));
        assert_eq!(
            res[0].detail,
            "403 Whatever; Warning: 399 sipwright \"test\""
        );
        assert_eq!(res[0].elapsed, Duration::from_millis(5));
        assert!(res[0].alive && res[0].passed());
    }

    #[test]
    fn a_silent_target_ends_after_two_timeouts_per_message() {
        let cases = (0..5)
            .map(|i| case(&format!("m{i}"), "ignore", OPTIONS))
            .collect();
        let mut r = runner(cases);
        let t0 = Instant::now();
        let mut now = t0;
        let mut out = Vec::new();
        let mut polls = 0;
        while let Some(next) = r.poll(now, &mut out) {
            assert!(next > now);
            now = next;
            polls += 1;
            assert!(polls < 1000);
        }
        assert_eq!(now, t0 + 10 * TIMEOUT);
        let sent = out.iter().filter(|o| o.is_case).count();
        assert_eq!(sent, 5);
        let res = r.into_results();
        assert!(
            res.iter()
                .all(|c| c.reaction == Reaction::Ignore && !c.alive)
        );
        assert!(res.iter().all(|c| c.as_expected() && !c.passed()));
    }

    #[test]
    fn an_accepted_invite_is_acked_and_hung_up_along_the_record_route() {
        let mut r = runner(vec![case("inv", "accept", INVITE)]);
        let t0 = Instant::now();
        let mut out = Vec::new();
        r.poll(t0, &mut out);
        let req = out.remove(0).bytes;
        // The body keeps its `$TAG`: only the head is substituted.
        assert!(req.ends_with(b"\r\n\r\n$TAG"));
        let ok = answer(
            &req,
            200,
            "Contact: <sip:uas@192.0.2.7:5070>\r\nRecord-Route: <sip:p2;lr>, <sip:p1;lr>\r\n",
        );
        r.on_datagram(&ok, t0, &mut out);
        let sent = texts(&out);
        assert_eq!(sent.len(), 2, "{sent:?}");
        let (ack, bye) = (&sent[0], &sent[1]);
        assert!(
            ack.starts_with("ACK sip:uas@192.0.2.7:5070 SIP/2.0\r\n"),
            "{ack}"
        );
        assert!(
            ack.contains("Route: <sip:p1;lr>\r\nRoute: <sip:p2;lr>\r\n"),
            "{ack}"
        );
        assert!(ack.contains("To: <sip:s@192.0.2.1:5060>;tag=srv\r\n"));
        assert!(ack.contains("CSeq: 7 ACK\r\n"));
        assert!(bye.starts_with("BYE sip:uas@192.0.2.7:5070 SIP/2.0\r\n"));
        assert!(bye.contains("CSeq: 8 BYE\r\n"));
        assert!(message::parse(ack.as_bytes()).is_ok() && message::parse(bye.as_bytes()).is_ok());
        let bye_bytes = out[1].bytes.clone();
        out.clear();
        // A retransmitted 2xx is ACKed again, whatever the phase.
        r.on_datagram(&ok, t0, &mut out);
        assert!(texts(&out)[0].starts_with("ACK "));
        out.clear();
        r.on_datagram(&answer(&bye_bytes, 200, ""), t0, &mut out);
        assert!(texts(&out)[0].starts_with("OPTIONS "), "the probe follows");
        let probe = out.remove(0).bytes;
        r.on_datagram(&answer(&probe, 200, ""), t0, &mut out);
        assert_eq!(r.poll(t0, &mut out), None);
        assert!(r.results()[0].passed());
    }

    #[test]
    fn a_rejected_invite_gets_the_transaction_ack() {
        let mut r = runner(vec![case("inv", "reject 400", INVITE)]);
        let t0 = Instant::now();
        let mut out = Vec::new();
        r.poll(t0, &mut out);
        let req = out.remove(0).bytes;
        r.on_datagram(&answer(&req, 400, ""), t0, &mut out);
        let sent = texts(&out);
        assert!(
            sent[0].starts_with("ACK sip:s@192.0.2.1:5060 SIP/2.0\r\n"),
            "{}",
            sent[0]
        );
        let branch = "branch=z9hG4bK-torture-0000000000000abc-0";
        assert!(
            sent[0].contains(branch),
            "same branch as the INVITE: {}",
            sent[0]
        );
        assert!(sent[0].contains("CSeq: 7 ACK\r\n"));
        assert!(sent[1].starts_with("OPTIONS "));
    }

    #[test]
    fn provisional_only_refused_sends_and_anonymous_messages() {
        let cases = vec![
            case("ringing", "accept", OPTIONS),
            case("huge", "reject 513", OPTIONS),
            case("garbage", "ignore", "\x00\x01 not sip"),
        ];
        let mut r = runner(cases);
        let t0 = Instant::now();
        let mut out = Vec::new();
        r.poll(t0, &mut out);
        let req = out.remove(0).bytes;
        r.on_datagram(&answer(&req, 180, ""), t0, &mut out);
        let t1 = t0 + TIMEOUT;
        r.poll(t1, &mut out);
        let probe = out.remove(0).bytes;
        r.on_datagram(&answer(&probe, 200, ""), t1, &mut out);
        r.poll(t1, &mut out);
        assert!(out[0].is_case);
        out.clear();
        r.on_send_error(true, "Message too long".into(), t1, &mut out);
        let probe = out.remove(0).bytes;
        r.on_datagram(&answer(&probe, 200, ""), t1, &mut out);
        r.poll(t1, &mut out);
        assert_eq!(out.remove(0).bytes, b"\x00\x01 not sip");
        // Not ours (another run's Call-ID prefix would be refused): the reaction.
        r.on_datagram(b"SIP/2.0 400 No\r\nCall-ID: whatever\r\n\r\n", t1, &mut out);
        let probe = out.remove(0).bytes;
        r.on_datagram(&answer(&probe, 200, ""), t1, &mut out);
        assert_eq!(r.poll(t1, &mut out), None);
        let res = r.results();
        assert_eq!(res[0].reaction, Reaction::Provisional(180));
        assert_eq!(res[0].detail, "no final response, only 180");
        assert_eq!(
            res[1].reaction,
            Reaction::NotSent("Message too long".into())
        );
        assert!(!res[1].as_expected() && res[1].alive);
        assert_eq!(res[2].reaction, Reaction::Reject(400));
    }
}

//! Per-call scenario interpreter (sans-IO).
//!
//! A [`Call`] walks the compiled [`Plan`]: it renders and sends messages, waits for
//! matching ones, pauses, jumps. It owns the call's transactions and dialog. Input is
//! a parsed message or a timer expiry plus `now`; output goes to an [`Outbox`], and
//! [`Call::deadline`] says when it next needs a timer call. Nothing here reads the
//! clock or touches a socket, so tests drive it with virtual time.

use std::cell::OnceCell;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::config::DtmfMode;
use crate::media::control::{MediaControl, MediaHandle};
use crate::report::latency::Metric;
use crate::report::{Counters, FailureReason, StrayCause};
use crate::sip::build;
use crate::sip::dialog::{Dialog, Local};
use crate::sip::header::HeaderName;
use crate::sip::message::{self, Header, Message};
use crate::sip::transaction::{
    ClientTransaction, RequestAction, ResponseAction, ServerTransaction, TimerAction, Timers,
};
use crate::sip::uri::SipUri;
use crate::sip::write_dec;
use crate::transport::kind::TransportKind;

use super::duration::parse_duration;
use super::plan::{
    Capture, Condition, MediaStep, PauseSpec, Plan, RecvMatch, RecvStep, Role, SendStep, StepKind,
    Subject, Test,
};
use super::template::{Builtin, RenderContext, Template};

mod auth;
mod challenge;
mod media_steps;
mod register;
mod wire;

/// Steps a call may execute without waiting before it is considered stuck in a loop.
const STEP_BUDGET: u32 = 10_000;

/// What every call of one driver shares: the plan and the local/remote addressing.
#[derive(Debug)]
pub struct CallEnv {
    pub plan: Arc<Plan>,
    /// Local IP as written in messages (no brackets).
    pub local_ip: String,
    pub local_port: u16,
    /// Written as `{{ transport }}` (Via) and `{{ transport_param }}` (URIs); over a
    /// reliable transport, transactions do not retransmit.
    pub transport: TransportKind,
    pub timers: Timers,
    /// Where new calls are sent (UAC) when no route says otherwise.
    pub remote: SocketAddr,
    /// `remote`'s IP as written in messages (IPv6 in brackets); empty: format per use.
    pub remote_ip_text: String,
    /// Request-URI target before a dialog exists (`remote_target` built-in).
    pub target_uri: String,
    /// Random per run: makes Call-IDs, tags and branches unique across runs.
    pub run_id: u32,
    pub media_ip: String,
    pub media_port_base: u16,
    /// Keep a copy of the last received message in each call even when the plan no
    /// longer reads it (`Plan::needs_last_after`): for a caller that wants to show it.
    pub keep_last: bool,
    /// This driver's index and the number of drivers on this side (`per-worker`
    /// injection rows).
    pub worker: usize,
    pub workers: usize,
}

/// The injection row call `number` takes (0 without a file). Random order draws
/// from a generator seeded by the run and the call, so no shared state is touched.
fn inject_row(env: &CallEnv, number: u64) -> u32 {
    use rand::SeedableRng;
    let Some(inj) = &env.plan.inject else {
        return 0;
    };
    let mut rng = rand::rngs::SmallRng::seed_from_u64(u64::from(env.run_id) << 32 ^ number);
    inj.row_for(number, env.worker, env.workers, &mut rng) as u32
}

/// An IP as written in SIP (IPv6 in brackets).
pub fn sip_ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

impl CallEnv {
    fn local(&self) -> Local<'_> {
        Local {
            transport: self.transport.via_token(),
            host: &self.local_ip,
            port: self.local_port,
        }
    }
}

/// Datagrams produced by calls, in one reused buffer (no allocation per packet once warm).
#[derive(Debug, Default)]
pub struct Outbox {
    buf: Vec<u8>,
    packets: Vec<(SocketAddr, Range<usize>)>,
    /// `pipeline: true`: the next message to the same destination is appended to
    /// the last packet instead of starting one (one write, one datagram).
    join: bool,
    /// Reused buffer messages are built in before they are copied, at their exact
    /// size, into the transaction that keeps them (lingering calls stay small).
    scratch: Vec<u8>,
    /// Header storage for parsing what we send (see `message::parse_reusing`).
    headers: Vec<Header<'static>>,
}

impl Outbox {
    /// Build a message in the reused scratch buffer; returns an exactly sized copy.
    pub fn build(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        f(&mut b);
        let exact = b.as_slice().to_vec();
        self.scratch = b;
        exact
    }

    pub fn push(&mut self, to: SocketAddr, bytes: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        self.record(to, start);
    }
    /// Queue a datagram written in place by `f` (no intermediate buffer).
    pub fn push_with(&mut self, to: SocketAddr, f: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        f(&mut self.buf);
        self.record(to, start);
    }

    /// `buf[start..]` is a new packet to `to`, or the end of the last one when a
    /// join is pending for that destination.
    fn record(&mut self, to: SocketAddr, start: usize) {
        let end = self.buf.len();
        if std::mem::take(&mut self.join)
            && let Some((last_to, range)) = self.packets.last_mut()
            && *last_to == to
            && range.end == start
        {
            range.end = end;
            return;
        }
        self.packets.push((to, start..end));
    }

    /// The next packet pushed to the same destination joins the last one
    /// (`pipeline: true`). Until [`Outbox::end_join`] or that push.
    pub fn join_next(&mut self) {
        self.join = true;
    }

    /// No join pending: the call that asked for it stopped sending (it waits, or
    /// its next step sent nothing), and another call's packet must not join.
    pub fn end_join(&mut self) {
        self.join = false;
    }

    /// Bytes queued (all packets): tells whether something was pushed.
    pub fn queued_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Take the last packet back out (a message to write in pieces, or one that
    /// can't go). Allocates: not on the per-packet path.
    pub fn pop_last(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        let (to, range) = self.packets.pop()?;
        let bytes = self.buf[range.clone()].to_vec();
        self.buf.truncate(range.start);
        Some((to, bytes))
    }

    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.packets.iter().map(|(a, r)| (*a, &self.buf[r.clone()]))
    }
    /// Packet `i`: destination and bytes.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let (to, r) = self.packets.get(i)?;
        Some((*to, &self.buf[r.clone()]))
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
    pub fn clear(&mut self) {
        self.buf.clear();
        self.packets.clear();
        self.join = false;
    }
}

/// What handling one input may do besides changing the call: queue datagrams,
/// count, and reach the call's media.
pub struct Effects<'a> {
    pub out: &'a mut Outbox,
    pub ctr: &'a mut Counters,
    pub media: &'a mut dyn MediaControl,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed(FailureReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    Done,
}

/// What the call is blocked on at step `pc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wait {
    pc: usize,
    until: Option<Instant>,
}

#[derive(Debug)]
pub struct Call {
    number: u64,
    /// When the call was meant to start: the origin of its latency measurements.
    intended: Instant,
    /// A provisional response to our INVITE has been measured.
    got_1xx: bool,
    role: Role,
    /// The Call-ID until the dialog holds it (then empty: see `call_id()`).
    call_id: Box<str>,
    /// The peer's tag until the dialog holds it. Our own tag is not stored: it is
    /// derived from the call number (`write_local_tag`).
    remote_tag: Option<Box<str>>,
    /// Where the peer is (UAC: the target; UAS: the source of the first request).
    peer: SocketAddr,
    pc: usize,
    /// Variable values; `None` means "still the plan's initial value".
    vars: Vec<Option<Box<str>>>,
    dialog: Option<Dialog>,
    /// Where in-dialog requests go: the dialog's next hop, resolved once when the
    /// dialog is set (ACK and BYE would otherwise parse the URI again each).
    dialog_hop: SocketAddr,
    clients: Vec<ClientTransaction>,
    servers: Vec<ServerTransaction>,
    /// Last message delivered to the scenario (what `last.*`, captures and asserts see).
    last: Vec<u8>,
    /// Messages delivered while the scenario was not at a `recv` step.
    inbox: VecDeque<Vec<u8>>,
    wait: Option<Wait>,
    /// CSeq number of the last request we sent (ACK/CANCEL reuse the INVITE's).
    cseq: u32,
    /// CSeq number of the last request we received.
    remote_cseq: u32,
    invite_cseq: u32,
    /// Final status of the last INVITE we sent.
    invite_final: Option<u16>,
    /// ACK sent for a 2xx: re-sent when the 2xx is retransmitted.
    ack_2xx: Option<SentAck>,
    /// Branch of the INVITE once a 2xx ended its transaction. UAC: late responses to
    /// it are absorbed, a retransmitted 2xx is ACKed again. UAS: set when the 2xx's
    /// ACK arrives; a late INVITE retransmission is absorbed (what the transaction's
    /// Timer L would do, without keeping ~300 bytes of transaction per idle call).
    accepted_invite: Option<Box<str>>,
    /// UAS: the ACK for our 2xx arrived (further ACKs are retransmissions).
    got_2xx_ack: bool,
    /// UAS: what the dialog needs from the initial INVITE until our tagged response.
    /// Boxed: needed only between a UAS's INVITE and its tagged response.
    uas_pending: Option<Box<UasPending>>,
    branch_seq: u32,
    state: State,
    outcome: Option<Outcome>,
    detail: Option<String>,
    last_status: Option<u16>,
    /// This call's media session in the driver's engine, once opened.
    media: Option<MediaHandle>,
    /// Digest client and server state and REGISTER bindings, once needed.
    extras: Option<Box<Extras>>,
    /// `dtmf` with `mode: info`: digits of the current step already answered.
    info_sent: u16,
    /// This call's row of the injection file (`Plan::inject`), chosen at the start
    /// (a `challenge:` with `lookup:` moves it to the caller's row).
    row: u32,
}

/// Per-call protocol state that few calls need, in one box so that a call needing
/// none pays one pointer (the call's size is kept under 512 bytes).
#[derive(Debug, Default)]
struct Extras {
    /// Digest client once a challenge was answered (scenarios with `auth:`).
    client_auth: Option<crate::sip::digest::ClientAuth>,
    /// Digest server once a `challenge:` step ran (nonce counter).
    server_auth: Option<challenge::ServerAuth>,
    /// What the last REGISTER's 2xx said (calls that registered).
    registration: Option<register::Registration>,
    /// A message being written in pieces (`chunks:`).
    chunking: Option<wire::Chunking>,
}

/// The ACK sent for a 2xx, to send again when the 2xx is retransmitted.
#[derive(Debug)]
enum SentAck {
    /// Built by `send: ack` from the dialog: rebuilt identically from the branch
    /// number instead of keeping its bytes for the whole call.
    Built { dest: SocketAddr, branch_seq: u32 },
    /// Written by the scenario itself.
    Bytes { dest: SocketAddr, bytes: Vec<u8> },
}

#[derive(Debug)]
struct UasPending {
    record_route: Vec<String>,
    contact: String,
    cseq: u32,
}

impl Call {
    /// A UAC call: call `start` next.
    /// A UAC call meant to start at `intended` (latencies count from there, so a late
    /// start shows up in them): call `start` next.
    pub fn new_uac(env: &CallEnv, number: u64, intended: Instant) -> Call {
        if let Some(id) = &env.plan.call_id {
            // The scenario writes the Call-ID itself: answers carry that one.
            return Call::new(
                env,
                number,
                Role::Uac,
                id.as_str().into(),
                env.remote,
                intended,
            );
        }
        // `{number}-{run id, 8 hex}@{local ip}`, written without the formatting machinery.
        let mut id = Vec::with_capacity(32 + env.local_ip.len());
        write_dec(&mut id, number);
        id.push(b'-');
        write_hex8(&mut id, env.run_id);
        id.push(b'@');
        id.extend_from_slice(env.local_ip.as_bytes());
        let call_id = String::from_utf8(id).unwrap_or_default();
        Call::new(env, number, Role::Uac, call_id.into(), env.remote, intended)
    }

    /// A UAS call created by an incoming request: call `on_message` with it next.
    pub fn new_uas(
        env: &CallEnv,
        number: u64,
        call_id: &str,
        from: SocketAddr,
        now: Instant,
    ) -> Call {
        Call::new(env, number, Role::Uas, call_id.into(), from, now)
    }

    fn new(
        env: &CallEnv,
        number: u64,
        role: Role,
        call_id: Box<str>,
        peer: SocketAddr,
        intended: Instant,
    ) -> Call {
        Call {
            intended,
            got_1xx: false,
            number,
            role,
            call_id,
            remote_tag: None,
            peer,
            pc: 0,
            vars: vec![None; env.plan.vars.len()],
            dialog: None,
            dialog_hop: peer,
            clients: Vec::new(),
            servers: Vec::new(),
            last: Vec::new(),
            inbox: VecDeque::new(),
            wait: None,
            cseq: 0,
            remote_cseq: 0,
            invite_cseq: 0,
            invite_final: None,
            ack_2xx: None,
            got_2xx_ack: false,
            accepted_invite: None,
            uas_pending: None,
            branch_seq: 0,
            state: State::Running,
            outcome: None,
            detail: None,
            last_status: None,
            media: None,
            extras: None,
            info_sent: 0,
            row: inject_row(env, number),
        }
    }

    /// The call's [`Extras`], made on first use.
    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }

    pub fn call_id(&self) -> &str {
        match &self.dialog {
            Some(d) if self.call_id.is_empty() => d.call_id(),
            _ => &self.call_id,
        }
    }

    /// The peer's tag, once known.
    fn remote_tag(&self) -> Option<&str> {
        match (&self.remote_tag, &self.dialog) {
            (Some(tag), _) => Some(tag),
            (None, Some(d)) => Some(d.remote_tag()),
            (None, None) => None,
        }
    }

    /// An established call keeps its identifiers in the dialog only.
    fn set_dialog(&mut self, dialog: Dialog) {
        self.dialog_hop = resolve_hop(dialog.next_hop(), self.peer);
        self.dialog = Some(dialog);
        self.call_id = Box::default();
        self.remote_tag = None;
    }
    pub fn number(&self) -> u64 {
        self.number
    }
    pub fn is_running(&self) -> bool {
        self.state == State::Running
    }
    /// The outcome, once, when the scenario has ended.
    pub fn take_outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }
    /// Why the call failed, in words (step, line, what happened).
    pub fn failure_detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
    /// Final status code of the last final response received, if any.
    pub fn last_status(&self) -> Option<u16> {
        self.last_status
    }
    /// The last message delivered to the scenario.
    pub fn last_message(&self) -> &[u8] {
        &self.last
    }
    /// True when the call has ended and no transaction still absorbs retransmissions.
    pub fn is_reapable(&self) -> bool {
        self.state == State::Done && self.clients.is_empty() && self.servers.is_empty()
    }

    /// After a successful end, when all that is left are non-INVITE server
    /// transactions that already sent their final response (they only answer a
    /// retransmitted request until timer J), hand them over: the driver keeps them in
    /// a compact table and the call itself can go.
    pub fn take_lingering(&mut self) -> Option<Vec<ServerTransaction>> {
        let only_answered = self
            .servers
            .iter()
            .all(|t| t.method() != "INVITE" && t.is_completed());
        if self.state != State::Done
            || !self.clients.is_empty()
            || self.servers.is_empty()
            || !only_answered
        {
            return None;
        }
        Some(std::mem::take(&mut self.servers))
    }

    /// The call's media session, if it opened one.
    pub fn media_handle(&self) -> Option<MediaHandle> {
        self.media
    }

    /// The media session, handed to the driver to close once the call has ended.
    pub fn take_media(&mut self) -> Option<MediaHandle> {
        self.media.take()
    }

    /// Something happened on this call's media (a digit arrived): a step waiting for
    /// it looks again.
    pub fn on_media_event(&mut self, env: &CallEnv, now: Instant, fx: &mut Effects<'_>) {
        let waiting = self.wait.is_some_and(|w| {
            matches!(
                env.plan.steps.get(w.pc).map(|s| &s.kind),
                Some(StepKind::Media(MediaStep::ExpectDtmf { .. }))
            )
        });
        if self.state == State::Running && waiting {
            self.run(env, now, fx, None);
        }
    }

    /// This call's media session, opened on first use (ports bound, stream created).
    fn media_session(
        &mut self,
        env: &CallEnv,
        now: Instant,
        media: &mut dyn MediaControl,
    ) -> Result<MediaHandle, String> {
        if let Some(h) = self.media {
            return Ok(h);
        }
        if env.plan.media.is_none() {
            return Err("this scenario has no media (add a `media:` block)".into());
        }
        let h = media.open(self.number, now).map_err(|e| e.to_string())?;
        self.media = Some(h);
        Ok(h)
    }

    /// SDP in a message from the peer: negotiate and (re)start the stream.
    fn on_peer_sdp(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        now: Instant,
        media: &mut dyn MediaControl,
    ) -> Result<(), String> {
        let ctype = msg.header(HeaderName::ContentType).map(|h| h.value());
        let Some(sdp) = crate::sdp::find_sdp(ctype.as_deref(), msg.body) else {
            return Ok(());
        };
        let h = self.media_session(env, now, media)?;
        let Some(session) = media.get_mut(h) else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(sdp);
        session
            .on_remote_sdp(&text, now)
            .map_err(|e| format!("SDP from the peer: {e}"))
    }

    /// Earliest time `on_timeout` must be called.
    pub fn deadline(&self) -> Option<Instant> {
        let txs = self
            .clients
            .iter()
            .filter_map(|t| t.deadline())
            .chain(self.servers.iter().filter_map(|t| t.deadline()));
        let wait = self.wait.and_then(|w| w.until);
        txs.chain(wait).min()
    }

    /// Run the scenario from its first step until it waits.
    pub fn start(&mut self, env: &CallEnv, now: Instant, fx: &mut Effects<'_>) {
        self.run(env, now, fx, None);
    }

    /// End a running call from outside (run stopped): counted as aborted.
    pub fn abort(&mut self, why: &str) {
        if self.state == State::Running {
            self.fail(FailureReason::Aborted, why.to_string());
        }
    }

    /// Fail a running call for a reason found outside the interpreter (e.g. a send error).
    pub fn fail_external(&mut self, reason: FailureReason, detail: String) {
        if self.state == State::Running {
            self.fail(reason, detail);
        }
    }

    pub fn on_timeout(&mut self, env: &CallEnv, now: Instant, fx: &mut Effects<'_>) {
        let mut timed_out: Option<String> = None;
        self.clients.retain_mut(|tx| {
            if tx.deadline().is_some_and(|d| d <= now) {
                match tx.on_timer(now) {
                    TimerAction::Retransmit => {
                        fx.out.push(tx.dest(), tx.request());
                        fx.ctr.messages_sent += 1;
                        fx.ctr.messages_retransmitted += 1;
                    }
                    TimerAction::Timeout => {
                        timed_out.get_or_insert_with(|| {
                            format!("no final response to {} (transaction timeout)", tx.method())
                        });
                    }
                    TimerAction::Terminated | TimerAction::None => {}
                }
            }
            !tx.is_terminated()
        });
        self.servers.retain_mut(|tx| {
            if tx.deadline().is_some_and(|d| d <= now) {
                match tx.on_timer(now) {
                    TimerAction::Retransmit => {
                        if let Some(resp) = tx.last_response() {
                            fx.out.push(tx.dest(), resp);
                            fx.ctr.messages_sent += 1;
                            fx.ctr.messages_retransmitted += 1;
                        }
                    }
                    TimerAction::Timeout => {
                        timed_out.get_or_insert_with(|| {
                            format!(
                                "no ACK for the final response to {} (transaction timeout)",
                                tx.method()
                            )
                        });
                    }
                    TimerAction::Terminated | TimerAction::None => {}
                }
            }
            !tx.is_terminated()
        });
        release_if_empty(&mut self.clients);
        release_if_empty(&mut self.servers);
        if let Some(why) = timed_out {
            if self.state == State::Running {
                let at = self.position(env);
                self.fail(FailureReason::Timeout, format!("{at}: {why}"));
            }
            return;
        }
        let Some(wait) = self.wait else { return };
        if self.state != State::Running || wait.until.is_none_or(|u| u > now) {
            return;
        }
        match env.plan.steps.get(wait.pc).map(|s| &s.kind) {
            Some(StepKind::Pause(_)) => {
                self.wait = None;
                self.pc = wait.pc + 1;
                self.run(env, now, fx, None);
            }
            // A chunked send's next piece, like a media step's next event.
            Some(StepKind::Media(_) | StepKind::Send(_)) => self.run(env, now, fx, None),
            Some(StepKind::Recv(_)) => {
                let at = self.position(env);
                let what = describe_expected(env, wait.pc);
                self.fail(
                    FailureReason::Timeout,
                    format!("{at}: timed out waiting for {what}"),
                );
            }
            Some(StepKind::Challenge(_)) => {
                let at = self.position(env);
                let what = challenge::describe_wait(&self.last);
                self.fail(
                    FailureReason::Timeout,
                    format!("{at}: timed out waiting for {what}"),
                );
            }
            _ => self.wait = None,
        }
    }

    /// A message for this call (the driver routed it here by Call-ID).
    pub fn on_message(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        from: SocketAddr,
        now: Instant,
        fx: &mut Effects<'_>,
    ) {
        if msg.is_request() {
            self.on_request(env, msg, from, now, fx);
        } else {
            self.on_response(env, msg, now, fx);
        }
    }

    fn on_response(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        now: Instant,
        fx: &mut Effects<'_>,
    ) {
        let code = msg.status().unwrap_or(0);
        let branch = msg.top_via_branch().unwrap_or("");
        let Some(cseq) = msg.cseq() else {
            fx.ctr.stray(StrayCause::ResponseNoTransaction);
            return;
        };
        let Some(idx) = self
            .clients
            .iter()
            .position(|t| t.matches(branch, cseq.method))
        else {
            if cseq.method == "INVITE" && self.accepted_invite.as_deref() == Some(branch) {
                // The INVITE transaction ended with its 2xx (RFC 3261 §17.1.1.2): the
                // core absorbs what follows and ACKs a retransmitted 2xx (§13.2.2.4).
                fx.ctr.messages_absorbed += 1;
                if (200..300).contains(&code) {
                    self.resend_ack(env, fx.out, fx.ctr);
                }
                return;
            }
            // Responses to transactions we no longer (or never) had: nothing to do.
            fx.ctr.stray(StrayCause::ResponseNoTransaction);
            return;
        };
        let tx = &mut self.clients[idx];
        let is_invite = tx.method() == "INVITE";
        let is_register = tx.method() == "REGISTER";
        match tx.on_response(code, now) {
            ResponseAction::Deliver { need_ack } => {
                if need_ack && let Ok(invite) = message::parse(tx.request()) {
                    let ack = fx.out.build(|b| build::non2xx_ack(&invite, msg, b));
                    fx.out.push(tx.dest(), &ack);
                    fx.ctr.messages_sent += 1;
                    tx.set_ack(ack);
                }
                if code >= 200 {
                    // `Deliver` with a final response comes once per transaction.
                    fx.ctr.transaction_completed(tx.method());
                }
                if (code == 401 || code == 407) && env.plan.auth.is_some() {
                    if self.on_challenge(env, msg, code, idx, now, fx) {
                        return;
                    }
                } else if code >= 200 {
                    self.on_auth_final(idx, now, fx.ctr);
                }
                if is_register {
                    if code == 423 && self.on_interval_too_brief(env, msg, idx, now, fx) {
                        return;
                    }
                    if (200..300).contains(&code) && !self.on_registered(env, msg, idx) {
                        return;
                    }
                }
                if code >= 200 {
                    self.last_status = Some(code);
                }
                if is_invite && (200..300).contains(&code) {
                    // Nothing more for this transaction to do that the call core cannot:
                    // drop it (and the INVITE bytes it holds) for the rest of the call.
                    let tx = self.clients.remove(idx);
                    release_if_empty(&mut self.clients);
                    self.accepted_invite = Some(tx.branch().into());
                }
                if is_invite {
                    let since = now.saturating_duration_since(self.intended);
                    if code < 200 && !self.got_1xx {
                        self.got_1xx = true;
                        fx.ctr.latency.record(Metric::FirstProvisional, since);
                    } else if code >= 200 {
                        fx.ctr.latency.record(Metric::FinalResponse, since);
                    }
                    self.on_invite_response(env, msg, code);
                }
                self.deliver(env, msg, now, fx);
            }
            ResponseAction::DuplicateProvisional | ResponseAction::LateProvisional => {
                fx.ctr.messages_absorbed += 1;
            }
            ResponseAction::RetransmittedFinal { resend_ack } => {
                fx.ctr.messages_absorbed += 1;
                if resend_ack && let Some(ack) = tx.ack() {
                    fx.out.push(tx.dest(), ack);
                    fx.ctr.messages_sent += 1;
                    fx.ctr.messages_retransmitted += 1;
                }
            }
            ResponseAction::Retransmitted2xx => {
                fx.ctr.messages_absorbed += 1;
                // The 2xx was retransmitted because our ACK was lost: ACK again (§13.2.2.4).
                self.resend_ack(env, fx.out, fx.ctr);
            }
        }
    }

    /// Dialog bookkeeping for a response to our INVITE.
    fn on_invite_response(&mut self, env: &CallEnv, msg: &Message<'_>, code: u16) {
        if code >= 200 {
            self.invite_final = Some(code);
        }
        let to_tag = msg.to().and_then(|t| t.tag());
        let confirmed = (200..300).contains(&code);
        let early = code > 100
            && code < 200
            && self.dialog.is_none()
            && (to_tag.is_some() || self.remote_tag.is_some());
        if !(confirmed || early) {
            if let Some(tag) = to_tag {
                self.remote_tag = Some(tag.into());
            }
            return;
        }
        let rr = msg.record_route();
        let rr: Vec<&str> = rr.iter().map(|c| c.as_ref()).collect();
        let contact = msg.contact().map(|c| c.uri).unwrap_or(&env.target_uri);
        // A 2xx confirming the early dialog of a 1xx with the same tag, target
        // and route: nothing to rebuild.
        if let (Some(d), Some(tag)) = (&self.dialog, to_tag)
            && d.same_uac_dialog(tag, &rr, contact)
        {
            return;
        }
        let from = msg
            .header(HeaderName::From)
            .map(|h| h.value())
            .unwrap_or_default();
        let to = msg
            .header(HeaderName::To)
            .map(|h| h.value())
            .unwrap_or_default();
        let dialog = Dialog::new_uac(
            self.call_id(),
            &from,
            &to,
            &rr,
            contact,
            self.invite_cseq.max(self.cseq),
        );
        self.set_dialog(dialog);
    }

    fn on_request(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        from: SocketAddr,
        now: Instant,
        fx: &mut Effects<'_>,
    ) {
        let method = msg.method().unwrap_or("");
        let (via, sent_by) = msg.top_via_sent_by();
        let branch = via.as_ref().and_then(|v| v.branch).unwrap_or("");
        if let Some(tx) = self
            .servers
            .iter_mut()
            .find(|t| t.matches(branch, sent_by, method))
        {
            match tx.on_request(method, now) {
                RequestAction::Retransmission { resend } => {
                    fx.ctr.messages_absorbed += 1;
                    if resend && let Some(resp) = tx.last_response() {
                        fx.out.push(tx.dest(), resp);
                        fx.ctr.messages_sent += 1;
                        fx.ctr.messages_retransmitted += 1;
                    }
                }
                RequestAction::AckAbsorbed => {
                    // The ACK of a non-2xx belongs to the transaction; a scenario that
                    // waits for it still gets to see it.
                    if self.state == State::Running && self.find_recv(env, msg).is_some() {
                        self.deliver(env, msg, now, fx);
                    } else {
                        fx.ctr.messages_absorbed += 1;
                    }
                }
            }
            return;
        }
        if method == "ACK" {
            // ACK for a 2xx: its own transaction; stops the 2xx retransmissions.
            for tx in self.servers.iter_mut().filter(|t| t.method() == "INVITE") {
                tx.on_2xx_ack(now);
            }
            if let Some(i) = self.servers.iter().position(|t| t.is_accepted_and_acked()) {
                let tx = self.servers.remove(i);
                release_if_empty(&mut self.servers);
                self.accepted_invite = Some(tx.branch().into());
            }
            if self.got_2xx_ack {
                fx.ctr.messages_absorbed += 1;
                return;
            }
            self.got_2xx_ack = true;
            self.deliver(env, msg, now, fx);
            return;
        }
        if method == "INVITE" && self.accepted_invite.as_deref() == Some(branch) {
            fx.ctr.messages_absorbed += 1;
            return;
        }
        if self.state != State::Running {
            fx.ctr.stray(StrayCause::RequestAfterCall);
            return;
        }
        let dest = response_destination(via.as_ref(), from);
        push_one(
            &mut self.servers,
            ServerTransaction::new(
                method,
                branch,
                sent_by,
                dest,
                env.transport.is_reliable(),
                now,
                env.timers,
            ),
        );
        let seq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        self.remote_cseq = seq;
        if let Some(d) = self.dialog.as_mut() {
            d.remote_cseq = Some(seq);
        }
        if method == "INVITE" && msg.to().and_then(|t| t.tag()).is_none() {
            if let Some(tag) = msg.from().and_then(|f| f.tag()) {
                self.remote_tag = Some(tag.into());
            }
            self.got_2xx_ack = false;
            self.uas_pending = Some(Box::new(UasPending {
                record_route: msg
                    .record_route()
                    .into_iter()
                    .map(|c| c.into_owned())
                    .collect(),
                contact: msg.contact().map(|c| c.uri.to_string()).unwrap_or_default(),
                cseq: seq,
            }));
        }
        self.deliver(env, msg, now, fx);
    }

    /// Hand a message to the scenario: matched against the current `recv` step (and the
    /// optional ones after it), or queued when the scenario is busy elsewhere.
    fn deliver(&mut self, env: &CallEnv, msg: &Message<'_>, now: Instant, fx: &mut Effects<'_>) {
        if self.state != State::Running {
            fx.ctr.messages_absorbed += 1;
            return;
        }
        if env.plan.media.is_some() {
            if !msg.body.is_empty()
                && let Err(why) = self.on_peer_sdp(env, msg, now, fx.media)
            {
                if msg.method() == Some("INVITE") {
                    // RFC 3261 §13.3.1.1: an offer we cannot take is refused with 488.
                    let resp = fx.out.build(|b| {
                        build::response_with_warning(msg, 488, "Not Acceptable Here", Some(&why), b)
                    });
                    if let Some(tx) = self.servers.last_mut() {
                        fx.out.push(tx.dest(), &resp);
                        tx.on_send_response(488, resp, now);
                        fx.ctr.messages_sent += 1;
                    }
                }
                let at = self.position(env);
                self.fail(FailureReason::Media, format!("{at}: {why}"));
                return;
            }
            if self.media_message(env, msg, now, fx) {
                return;
            }
        }
        // A challenge step waits for its request again like a recv.
        let at_recv = matches!(
            env.plan.steps.get(self.pc).map(|s| &s.kind),
            Some(StepKind::Recv(_) | StepKind::Challenge(_))
        );
        if !at_recv || !self.inbox.is_empty() {
            self.inbox.push_back(msg.raw.to_vec());
            // A hang-up ends a wait for digits now rather than at its timeout.
            let awaits_digits = matches!(
                env.plan.steps.get(self.pc).map(|s| &s.kind),
                Some(StepKind::Media(MediaStep::ExpectDtmf { .. }))
            );
            if at_recv || (awaits_digits && msg.method() == Some("BYE")) {
                self.run(env, now, fx, None);
            }
            return;
        }
        if let Some(StepKind::Challenge(c)) = env.plan.steps.get(self.pc).map(|s| &s.kind) {
            if self.take_credentials(env, c, msg, now, fx) == challenge::Took::Accepted {
                self.run(env, now, fx, Some(msg));
            }
            return;
        }
        if self.accept(env, msg, now, fx.ctr) {
            self.run(env, now, fx, Some(msg));
        }
    }

    /// Messages the call core answers for media on its own: the answer to an INFO
    /// digit we sent, and an INFO digit from the peer that no `recv` step waits for.
    /// Returns true when the message was taken.
    fn media_message(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        now: Instant,
        fx: &mut Effects<'_>,
    ) -> bool {
        let step = env.plan.steps.get(self.pc).map(|s| &s.kind);
        if let Some(code) = msg.status() {
            let info_step = matches!(
                step,
                Some(StepKind::Media(MediaStep::Dtmf(d))) if d.mode == DtmfMode::Info
            );
            let to_info = msg.cseq().is_some_and(|c| c.method == "INFO");
            if !(info_step && to_info) {
                return false;
            }
            if code >= 200 {
                if let Err(why) = self.on_info_answer(code) {
                    let at = self.position(env);
                    self.fail(FailureReason::Media, format!("{at}: {why}"));
                } else {
                    self.run(env, now, fx, None);
                }
            }
            return true;
        }
        if msg.method() != Some("INFO") || self.find_recv(env, msg).is_some() {
            return false;
        }
        if !self.take_info_digit(env, msg, fx, now) {
            return false;
        }
        self.on_media_event(env, now, fx);
        true
    }

    /// Index of the recv step (current or after skipped optional ones) that matches `msg`.
    fn find_recv(&self, env: &CallEnv, msg: &Message<'_>) -> Option<usize> {
        let mut i = self.pc;
        while let Some(StepKind::Recv(r)) = env.plan.steps.get(i).map(|s| &s.kind) {
            if recv_matches(r, msg) {
                return Some(i);
            }
            if !r.optional {
                return None;
            }
            i += 1;
        }
        None
    }

    /// Match `msg` at the current recv step; on success the call moves past it, otherwise
    /// it fails with `unexpected_message`. Returns whether the call goes on.
    fn accept(
        &mut self,
        env: &CallEnv,
        msg: &Message<'_>,
        now: Instant,
        ctr: &mut Counters,
    ) -> bool {
        let Some(i) = self.find_recv(env, msg) else {
            // Kept so reports and `options` can show what actually arrived.
            self.last.clear();
            self.last.extend_from_slice(msg.raw);
            let at = self.position(env);
            let got = first_line(msg.raw);
            let expected = describe_expected(env, self.pc);
            self.fail(
                FailureReason::UnexpectedMessage,
                format!("{at}: expected {expected}, got `{got}`"),
            );
            return false;
        };
        if env.keep_last || env.plan.needs_last_after(i) {
            self.last.clear();
            self.last.extend_from_slice(msg.raw);
        } else {
            self.last = Vec::new();
        }
        self.wait = None;
        self.pc = i + 1;
        if let Some(StepKind::Recv(r)) = env.plan.steps.get(i).map(|s| &s.kind)
            && let Some(name) = &r.rtd
        {
            ctr.latency
                .record_rtd(name, now.saturating_duration_since(self.intended));
        }
        if let Some(StepKind::Recv(r)) = env.plan.steps.get(i).map(|s| &s.kind)
            && let Err(why) = self.apply_captures(env, &r.captures, msg)
        {
            let at = step_position(env, i);
            self.fail(FailureReason::AssertFailed, format!("{at}: {why}"));
            return false;
        }
        true
    }

    /// Runs steps until the call waits or ends. `current` is the message just
    /// accepted (the call's `last`), already parsed, for templates that copy from it.
    fn run(
        &mut self,
        env: &CallEnv,
        now: Instant,
        fx: &mut Effects<'_>,
        current: Option<&Message<'_>>,
    ) {
        self.run_steps(env, now, fx, current);
        // A `pipeline: true` send whose next send did not come (the call waits or
        // ended) leaves its message alone: the next call's must not join it.
        fx.out.end_join();
    }

    fn run_steps(
        &mut self,
        env: &CallEnv,
        now: Instant,
        fx: &mut Effects<'_>,
        current: Option<&Message<'_>>,
    ) {
        let mut current = current;
        let plan = &*env.plan;
        let mut budget = STEP_BUDGET;
        while self.state == State::Running {
            budget -= 1;
            if budget == 0 {
                let at = self.position(env);
                self.fail(
                    FailureReason::ScenarioError,
                    format!("{at}: {STEP_BUDGET} steps without waiting (a goto loop?)"),
                );
                return;
            }
            let Some(step) = plan.steps.get(self.pc) else {
                self.finish(now, fx.ctr);
                return;
            };
            match &step.kind {
                StepKind::Send(send) => match self.send_step(env, send, now, fx, current) {
                    Ok(true) => self.pc += 1,
                    // The next piece of a chunked message is due later.
                    Ok(false) => return,
                    Err(why) => {
                        let at = self.position(env);
                        self.fail(FailureReason::ScenarioError, format!("{at}: {why}"));
                        return;
                    }
                },
                StepKind::Recv(r) => {
                    if let Some(raw) = self.inbox.pop_front() {
                        // A queued message replaces `last`: templates parse it themselves.
                        current = None;
                        let Ok(msg) = message::parse(&raw) else {
                            continue;
                        };
                        if !self.accept(env, &msg, now, fx.ctr) {
                            return;
                        }
                        continue;
                    }
                    if self.wait.is_none_or(|w| w.pc != self.pc) {
                        let timeout = r.timeout.or(plan.recv_timeout).or_else(|| {
                            // Waiting for a response is bounded like Timer B/F even after a
                            // provisional (which stops B); a request may take as long as the
                            // peer likes (the call length is the peer's choice).
                            (!matches!(r.matcher, RecvMatch::Method(_))).then(|| env.timers.t1 * 64)
                        });
                        self.wait = Some(Wait {
                            pc: self.pc,
                            until: timeout.map(|t| now + t),
                        });
                    }
                    return;
                }
                StepKind::Pause(spec) => {
                    if let Some(w) = self.wait.filter(|w| w.pc == self.pc) {
                        if w.until.is_some_and(|u| u > now) {
                            return;
                        }
                        self.wait = None;
                        self.pc += 1;
                        continue;
                    }
                    let d = match self.pause_length(env, spec) {
                        Ok(d) => d,
                        Err(why) => {
                            let at = self.position(env);
                            self.fail(FailureReason::ScenarioError, format!("{at}: {why}"));
                            return;
                        }
                    };
                    if d.is_zero() {
                        self.pc += 1;
                        continue;
                    }
                    self.wait = Some(Wait {
                        pc: self.pc,
                        until: Some(now + d),
                    });
                    return;
                }
                StepKind::Goto {
                    target,
                    when,
                    times,
                } => {
                    let mut jump = match when {
                        None => true,
                        Some(c) => self.eval(env, c),
                    };
                    if jump && let Some(limit) = times {
                        let taken: u32 = self.var_value(env, limit.slot).parse().unwrap_or(0);
                        jump = taken < limit.max;
                        if jump && let Some(v) = self.vars.get_mut(limit.slot) {
                            *v = Some((taken + 1).to_string().into());
                        }
                    }
                    self.pc = if jump { *target } else { self.pc + 1 };
                }
                StepKind::Capture(caps) => {
                    let last = std::mem::take(&mut self.last);
                    let res = match message::parse(&last) {
                        Ok(msg) => self.apply_captures(env, caps, &msg),
                        Err(_) => Err("capture: no message received yet".to_string()),
                    };
                    self.last = last;
                    if let Err(why) = res {
                        let at = self.position(env);
                        self.fail(FailureReason::AssertFailed, format!("{at}: {why}"));
                        return;
                    }
                    self.pc += 1;
                }
                StepKind::Media(m) => match self.media_step(env, m, now, fx) {
                    media_steps::Progress::Next => self.pc += 1,
                    media_steps::Progress::Wait => return,
                    media_steps::Progress::Fail(why) => {
                        let at = self.position(env);
                        self.fail(FailureReason::Media, format!("{at}: {why}"));
                        return;
                    }
                },
                StepKind::Challenge(c) => {
                    if !self.challenge_step(env, c, now, fx, current) {
                        return;
                    }
                    // The retried request replaced `last`.
                    current = None;
                }
                StepKind::Assert(c) => {
                    if !self.eval(env, c) {
                        let at = self.position(env);
                        self.fail(
                            FailureReason::AssertFailed,
                            format!("{at}: assertion does not hold"),
                        );
                        return;
                    }
                    self.pc += 1;
                }
            }
        }
    }

    fn pause_length(&self, env: &CallEnv, spec: &PauseSpec) -> Result<Duration, String> {
        match spec {
            PauseSpec::Fixed(d) => Ok(*d),
            PauseSpec::RefreshAfter => Ok(self.refresh_after()),
            PauseSpec::Var(slot) => {
                let text = self.var_value(env, *slot);
                parse_duration(text.trim()).map_err(|e| {
                    format!(
                        "pause: variable `{}` = `{text}`: {e}",
                        env.plan.vars[*slot].name
                    )
                })
            }
        }
    }

    fn var_value<'a>(&'a self, env: &'a CallEnv, slot: usize) -> &'a str {
        match self.vars.get(slot) {
            Some(Some(v)) => v,
            _ => env
                .plan
                .vars
                .get(slot)
                .map(|v| v.initial.as_str())
                .unwrap_or(""),
        }
    }

    fn apply_captures(
        &mut self,
        env: &CallEnv,
        caps: &[Capture],
        msg: &Message<'_>,
    ) -> Result<(), String> {
        for cap in caps {
            let text = self.subject_text_in(env, &cap.from, msg);
            let found = text.as_deref().and_then(|t| {
                cap.regex.captures(t).map(|c| {
                    c.get(1)
                        .or_else(|| c.get(0))
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default()
                })
            });
            match found {
                Some(v) => {
                    if let Some(slot) = self.vars.get_mut(cap.var) {
                        *slot = Some(v.into());
                    }
                }
                None if cap.required => {
                    return Err(format!(
                        "required capture /{}/ did not match",
                        cap.regex.as_str()
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The text a capture or condition looks at, in `msg`; None when absent.
    fn subject_text_in(
        &self,
        env: &CallEnv,
        subject: &Subject,
        msg: &Message<'_>,
    ) -> Option<String> {
        match subject {
            Subject::Header(name) => {
                let mut it = msg.headers_named(name).peekable();
                it.peek()?;
                Some(it.map(|h| h.value()).collect::<Vec<_>>().join("\r\n"))
            }
            Subject::Body => Some(String::from_utf8_lossy(msg.body).into_owned()),
            Subject::StartLine => Some(first_line(msg.raw).into_owned()),
            Subject::Var(slot) => Some(self.var_value(env, *slot).to_string()),
        }
    }

    fn eval(&self, env: &CallEnv, cond: &Condition) -> bool {
        let text = match &cond.subject {
            // The initial value counts; an empty value does not "exist".
            Subject::Var(slot) => {
                Some(self.var_value(env, *slot).to_string()).filter(|s| !s.is_empty())
            }
            other => match message::parse(&self.last) {
                Ok(msg) => self.subject_text_in(env, other, &msg),
                Err(_) => None,
            },
        };
        eval_test(&cond.test, text.as_deref())
    }

    fn send(
        &mut self,
        env: &CallEnv,
        send: &SendStep,
        now: Instant,
        fx: &mut Effects<'_>,
        current: Option<&Message<'_>>,
    ) -> Result<(), String> {
        match send {
            SendStep::Message(t) => self.send_template(env, t, now, fx, current),
            SendStep::Ack => self.send_ack(env, fx.out, fx.ctr),
            SendStep::Bye => {
                let branch = self.next_branch(env);
                let dialog = self
                    .dialog
                    .as_mut()
                    .ok_or("send: bye needs an established dialog")?;
                let local = env.local();
                let req = fx.out.build(|b| {
                    dialog.build_request("BYE", &local, &branch, None, "", b"", b);
                });
                self.cseq = dialog.local_cseq;
                let dest = self.dialog_hop;
                self.send_request_tx(env, "BYE", &branch, req, dest, now, fx.out, fx.ctr);
                Ok(())
            }
            SendStep::Cancel => {
                let tx = self
                    .clients
                    .iter()
                    .rev()
                    .find(|t| t.method() == "INVITE")
                    .ok_or("send: cancel needs an INVITE in progress")?;
                let invite = message::parse(tx.request()).map_err(|e| e.to_string())?;
                let req = fx.out.build(|b| build::cancel(&invite, b));
                let branch = tx.branch().to_string();
                let dest = tx.dest();
                self.send_request_tx(env, "CANCEL", &branch, req, dest, now, fx.out, fx.ctr);
                Ok(())
            }
        }
    }

    /// Send the 2xx's ACK again (identical bytes).
    fn resend_ack(&self, env: &CallEnv, out: &mut Outbox, ctr: &mut Counters) {
        match &self.ack_2xx {
            Some(SentAck::Bytes { dest, bytes }) => out.push(*dest, bytes),
            Some(SentAck::Built { dest, branch_seq }) => {
                let Some(dialog) = &self.dialog else { return };
                let branch = branch_text(env.run_id, self.number, *branch_seq);
                out.push_with(*dest, |b| {
                    dialog.build_ack(self.invite_cseq, &env.local(), &branch, b)
                });
            }
            None => return,
        }
        ctr.messages_sent += 1;
        ctr.messages_retransmitted += 1;
    }

    fn send_ack(
        &mut self,
        env: &CallEnv,
        out: &mut Outbox,
        ctr: &mut Counters,
    ) -> Result<(), String> {
        match self.invite_final {
            // The INVITE transaction already acknowledged a non-2xx final response.
            Some(code) if code >= 300 => Ok(()),
            Some(_) => {
                let branch = self.next_branch(env);
                let dialog = self.dialog.as_ref().ok_or("send: ack without a dialog")?;
                let dest = self.dialog_hop;
                out.push_with(dest, |b| {
                    dialog.build_ack(self.invite_cseq, &env.local(), &branch, b)
                });
                ctr.messages_sent += 1;
                self.ack_2xx = Some(SentAck::Built {
                    dest,
                    branch_seq: self.branch_seq,
                });
                Ok(())
            }
            None => Err("send: ack before a final response to INVITE".to_string()),
        }
    }

    fn send_template(
        &mut self,
        env: &CallEnv,
        t: &Template,
        now: Instant,
        fx: &mut Effects<'_>,
        current: Option<&Message<'_>>,
    ) -> Result<(), String> {
        let next_cseq = match t.method() {
            Some("ACK") | Some("CANCEL") => self.cseq,
            _ if t.is_response() => self.remote_cseq,
            _ => self.cseq + 1,
        };
        let uses_sdp = t.uses_builtin(Builtin::Sdp);
        if env.plan.media.is_some()
            && (uses_sdp
                || t.uses_builtin(Builtin::MediaPort)
                || t.uses_builtin(Builtin::MediaIp)
                || t.uses_builtin(Builtin::Crypto))
        {
            match self.media_session(env, now, fx.media) {
                Ok(h) => {
                    if uses_sdp && let Some(s) = fx.media.get_mut(h) {
                        s.on_sending_sdp(t.is_response());
                    }
                }
                Err(why) => {
                    let at = self.position(env);
                    self.fail(FailureReason::Media, format!("{at}: {why}"));
                    return Ok(());
                }
            }
        }
        let session = self.media.and_then(|h| fx.media.get(h));
        let mut branch_taken = None;
        let bytes = fx.out.build(|b| {
            let mut ctx = Ctx {
                env,
                call: self,
                media: session,
                next_cseq,
                branch_in_render: None,
                last: match current {
                    Some(m) => LastMessage::Current(m),
                    None => LastMessage::Lazy(OnceCell::new()),
                },
            };
            t.render(&mut ctx, b);
            branch_taken = ctx.branch_in_render;
        });
        if let Some(seq) = branch_taken {
            self.branch_seq = seq;
        }
        let parsed = match message::parse_reusing(&bytes, std::mem::take(&mut fx.out.headers)) {
            Ok(m) => m,
            Err(_) => {
                // Byte-exact malformed messages are a feature: send them as they are.
                fx.out.push(self.peer, &bytes);
                fx.ctr.messages_sent += 1;
                return Ok(());
            }
        };
        if !uses_sdp
            && !parsed.body.is_empty()
            && let Some(h) = self.media
            && let Some(session) = fx.media.get_mut(h)
        {
            // SDP written by hand: what it says is what we negotiate with.
            let ctype = parsed.header(HeaderName::ContentType).map(|h| h.value());
            if let Some(sdp) = crate::sdp::find_sdp(ctype.as_deref(), parsed.body) {
                session.on_local_sdp(&String::from_utf8_lossy(sdp), parsed.status().is_some());
            }
        }
        if let Some(method) = parsed.method() {
            let method = method.to_string();
            let branch = parsed.top_via_branch().unwrap_or("").to_string();
            let in_dialog = parsed.to().and_then(|t| t.tag()).is_some();
            let dest = match (&self.dialog, in_dialog) {
                (Some(_), true) => self.dialog_hop,
                _ => self.peer,
            };
            let seq = parsed.cseq().map(|c| c.seq);
            fx.out.headers = parsed.into_headers();
            if method == "ACK" {
                fx.out.push(dest, &bytes);
                fx.ctr.messages_sent += 1;
                if self.invite_final.is_some_and(|c| c < 300) {
                    self.ack_2xx = Some(SentAck::Bytes { dest, bytes });
                }
                return Ok(());
            }
            if let Some(seq) = seq
                && method != "CANCEL"
            {
                self.cseq = seq;
                if let Some(d) = self.dialog.as_mut() {
                    d.local_cseq = d.local_cseq.max(seq);
                }
            }
            self.send_request_tx(env, &method, &branch, bytes, dest, now, fx.out, fx.ctr);
            return Ok(());
        }
        // A response: belongs to the server transaction it answers.
        let code = parsed.status().unwrap_or(0);
        let branch = parsed.top_via_branch().unwrap_or("");
        let cseq_method = parsed.cseq().map(|c| c.method).unwrap_or("");
        let to_tag = parsed.to().and_then(|t| t.tag()).is_some();
        let idx = self
            .servers
            .iter()
            .position(|tx| tx.answered_by(branch, cseq_method));
        if cseq_method == "INVITE" && to_tag && code > 100 && code < 300 && self.dialog.is_none() {
            self.make_uas_dialog(&parsed);
        }
        fx.out.headers = parsed.into_headers();
        match idx {
            Some(i) => {
                let tx = &mut self.servers[i];
                fx.out.push(tx.dest(), &bytes);
                tx.on_send_response(code, bytes, now);
            }
            None => fx.out.push(self.peer, &bytes),
        }
        fx.ctr.messages_sent += 1;
        Ok(())
    }

    fn make_uas_dialog(&mut self, resp: &Message<'_>) {
        let Some(p) = self.uas_pending.take() else {
            return;
        };
        let from = resp
            .header(HeaderName::From)
            .map(|h| h.value())
            .unwrap_or_default();
        let to = resp
            .header(HeaderName::To)
            .map(|h| h.value())
            .unwrap_or_default();
        let rr: Vec<&str> = p.record_route.iter().map(|s| s.as_str()).collect();
        let dialog = Dialog::new_uas(self.call_id(), &from, &to, &rr, &p.contact, p.cseq);
        self.set_dialog(dialog);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_request_tx(
        &mut self,
        env: &CallEnv,
        method: &str,
        branch: &str,
        bytes: Vec<u8>,
        dest: SocketAddr,
        now: Instant,
        out: &mut Outbox,
        ctr: &mut Counters,
    ) {
        out.push(dest, &bytes);
        ctr.messages_sent += 1;
        if method == "INVITE" {
            self.invite_cseq = self.cseq;
            self.invite_final = None;
            self.ack_2xx = None;
        }
        push_one(
            &mut self.clients,
            ClientTransaction::new(
                method,
                branch,
                bytes,
                dest,
                env.transport.is_reliable(),
                now,
                env.timers,
            ),
        );
    }

    fn next_branch(&mut self, env: &CallEnv) -> String {
        self.branch_seq += 1;
        branch_text(env.run_id, self.number, self.branch_seq)
    }

    fn finish(&mut self, now: Instant, ctr: &mut Counters) {
        ctr.latency.record(
            Metric::CallLength,
            now.saturating_duration_since(self.intended),
        );
        self.state = State::Done;
        self.wait = None;
        self.outcome = Some(Outcome::Success);
    }

    /// After a successful scenario only server transactions that may still have to
    /// resend a final response (a retransmitted BYE, or INVITE before its ACK) are
    /// kept, for their timer J/L; everything else goes, so lingering calls stay small
    /// at high call rates. Client transactions would only absorb duplicates of
    /// responses already handled: a late one is then counted as stray instead.
    /// The driver calls this once it has looked at the finished call.
    pub fn shrink_for_linger(&mut self) {
        if self.state != State::Done || self.outcome.is_some() {
            return;
        }
        let acked = self.got_2xx_ack;
        self.clients = Vec::new();
        self.servers.retain(|t| !(acked && t.method() == "INVITE"));
        release_if_empty(&mut self.servers);
        self.last = Vec::new();
        self.inbox = VecDeque::new();
        self.vars = Vec::new();
        self.extras = None;
        if let Some(d) = self.dialog.take()
            && self.call_id.is_empty()
        {
            // Lingering transactions are found by Call-ID.
            self.call_id = d.call_id().into();
        }
        self.ack_2xx = None;
        self.uas_pending = None;
    }

    fn fail(&mut self, reason: FailureReason, detail: String) {
        self.state = State::Done;
        self.wait = None;
        self.inbox.clear();
        // A failed call stops retransmitting; nothing it sends matters any more.
        self.clients.clear();
        self.servers.clear();
        self.outcome = Some(Outcome::Failed(reason));
        self.detail = Some(detail);
    }

    fn position(&self, env: &CallEnv) -> String {
        step_position(env, self.pc)
    }
}

fn step_position(env: &CallEnv, pc: usize) -> String {
    match env.plan.steps.get(pc) {
        Some(s) => format!("{}:{}: step {}", env.plan.source, s.line, pc + 1),
        None => format!("{}: end of scenario", env.plan.source),
    }
}

/// Push a transaction growing the vector by one slot only. A call rarely has more than
/// one or two transactions at once, and `Vec`'s first growth would reserve four
/// (over 800 bytes of transactions) that an idle established call would then keep.
fn push_one<T>(v: &mut Vec<T>, tx: T) {
    v.reserve_exact(1);
    v.push(tx);
}

/// Hand back the storage of an emptied transaction list: idle calls hold none.
fn release_if_empty<T>(v: &mut Vec<T>) {
    if v.is_empty() && v.capacity() > 0 {
        *v = Vec::new();
    }
}

fn branch_text(run_id: u32, number: u64, seq: u32) -> String {
    let mut b = Vec::with_capacity(40);
    write_branch(&mut b, run_id, number, seq);
    String::from_utf8(b).unwrap_or_default()
}

/// `z9hG4bK<run id, 8 hex>.<call number, hex>.<seq>`: unique per run, call and
/// message; written without the formatting machinery (it is on every request).
fn write_branch(out: &mut Vec<u8>, run_id: u32, number: u64, seq: u32) {
    out.extend_from_slice(b"z9hG4bK");
    write_hex8(out, run_id);
    out.push(b'.');
    write_hex(out, number);
    out.push(b'.');
    write_dec(out, u64::from(seq));
}

/// Our tag, `<call number, hex>.<run id, 8 hex>`: unique per run and call, so it is
/// written again whenever needed rather than kept by every call.
fn write_local_tag(out: &mut Vec<u8>, run_id: u32, number: u64) {
    write_hex(out, number);
    out.push(b'.');
    write_hex8(out, run_id);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Exactly eight hex digits (the run id, so every tag and branch has the same shape).
fn write_hex8(out: &mut Vec<u8>, n: u32) {
    for shift in (0..8).rev() {
        out.push(HEX[((n >> (shift * 4)) & 0xf) as usize]);
    }
}

fn write_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn describe_match(r: &RecvStep) -> String {
    let base = match &r.matcher {
        RecvMatch::Status(c) => format!("a {c} response"),
        RecvMatch::Class(k) => format!("a {k}xx response"),
        RecvMatch::Method(m) => format!("a {m} request"),
    };
    match &r.in_reply_to {
        Some(m) => format!("{base} to {m}"),
        None => base,
    }
}

/// What the recv step at `pc` accepts, including the optional steps it may skip to.
fn describe_expected(env: &CallEnv, pc: usize) -> String {
    let mut what = Vec::new();
    let mut i = pc;
    while let Some(StepKind::Recv(r)) = env.plan.steps.get(i).map(|s| &s.kind) {
        what.push(describe_match(r));
        if !r.optional {
            break;
        }
        i += 1;
    }
    match what.len() {
        0 => "nothing".to_string(),
        1 => what.remove(0),
        n => format!("{} or {}", what[..n - 1].join(", "), what[n - 1]),
    }
}

fn recv_matches(r: &RecvStep, msg: &Message<'_>) -> bool {
    if let Some(method) = msg.method() {
        return r.matcher.matches_request(method);
    }
    let code = msg.status().unwrap_or(0);
    if !r.matcher.matches_response(code) {
        return false;
    }
    match &r.in_reply_to {
        Some(m) => msg.cseq().is_some_and(|c| c.method.eq_ignore_ascii_case(m)),
        None => true,
    }
}

fn eval_test(test: &Test, text: Option<&str>) -> bool {
    match test {
        Test::Equals(v) => text == Some(v.as_str()),
        Test::Matches(re) => text.is_some_and(|t| re.is_match(t)),
        Test::Exists => text.is_some(),
        Test::Not(inner) => !eval_test(inner, text),
    }
}

fn first_line(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = memchr::memchr(b'\n', raw).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end])
        .trim_end()
        .to_string()
        .into()
}

/// Where responses to a request go (RFC 3261 §18.2.2 with RFC 3581): the source
/// address when the client asked for `rport`, else the source IP and the Via port.
pub(crate) fn response_destination(
    via: Option<&crate::sip::header::Via<'_>>,
    from: SocketAddr,
) -> SocketAddr {
    match via {
        Some(v) if v.rport.is_none() => SocketAddr::new(from.ip(), v.port.unwrap_or(5060)),
        _ => from,
    }
}

/// Socket address of a route hop or remote target URI. Only IP literals are
/// resolved here (no DNS in the core); anything else goes to `fallback` (the peer
/// the call talks to, which acts as outbound proxy).
pub fn resolve_hop(uri: &str, fallback: SocketAddr) -> SocketAddr {
    let uri = uri.trim().trim_start_matches('<');
    let uri = uri.split('>').next().unwrap_or(uri);
    let Some(u) = SipUri::parse(uri) else {
        return fallback;
    };
    let Ok(ip) = u.host.parse::<IpAddr>() else {
        return fallback;
    };
    let default_port = if u.scheme.eq_ignore_ascii_case("sips") {
        5061
    } else {
        5060
    };
    SocketAddr::new(ip, u.port.unwrap_or(default_port))
}

/// The interpreter's view for template rendering.
struct Ctx<'c> {
    env: &'c CallEnv,
    call: &'c Call,
    /// The call's media session, when it has one.
    media: Option<&'c crate::media::session::MediaSession>,
    next_cseq: u32,
    /// Branch sequence number taken during this render (one branch per message).
    branch_in_render: Option<u32>,
    last: LastMessage<'c>,
}

/// The message `last.*` slots copy from: the one being handled, already parsed,
/// or else the call's stored copy, parsed on first use.
enum LastMessage<'c> {
    Current(&'c Message<'c>),
    Lazy(OnceCell<Option<Message<'c>>>),
}

impl RenderContext for Ctx<'_> {
    fn builtin(&mut self, b: Builtin, out: &mut Vec<u8>) {
        use std::io::Write;
        let call = self.call;
        let env = self.env;
        let _ = match b {
            Builtin::CallId => out.write_all(call.call_id().as_bytes()),
            Builtin::Branch => {
                let seq = *self.branch_in_render.get_or_insert(call.branch_seq + 1);
                write_branch(out, env.run_id, call.number, seq);
                Ok(())
            }
            Builtin::LocalIp => write_host(out, &env.local_ip),
            Builtin::LocalPort => {
                write_dec(out, u64::from(env.local_port));
                Ok(())
            }
            // A UAC's peer is the target: its text is computed once per run.
            Builtin::RemoteIp if call.peer == env.remote && !env.remote_ip_text.is_empty() => {
                out.extend_from_slice(env.remote_ip_text.as_bytes());
                Ok(())
            }
            Builtin::RemoteIp => match call.peer.ip() {
                IpAddr::V4(ip) => write!(out, "{ip}"),
                IpAddr::V6(ip) => write!(out, "[{ip}]"),
            },
            Builtin::RemotePort => {
                write_dec(out, u64::from(call.peer.port()));
                Ok(())
            }
            Builtin::Transport => out.write_all(env.transport.via_token().as_bytes()),
            Builtin::TransportParam => {
                if env.transport != TransportKind::Udp {
                    out.extend_from_slice(b";transport=");
                    out.extend_from_slice(env.transport.uri_param().as_bytes());
                }
                Ok(())
            }
            Builtin::MediaIpType => out.write_all(if env.media_ip.contains(':') {
                b"IP6"
            } else {
                b"IP4"
            }),
            Builtin::FromTag | Builtin::ToTag => {
                let ours = (b == Builtin::FromTag) == (call.role == Role::Uac);
                if ours {
                    write_local_tag(out, env.run_id, call.number);
                    Ok(())
                } else {
                    out.write_all(call.remote_tag().unwrap_or("").as_bytes())
                }
            }
            Builtin::Cseq => {
                write_dec(out, u64::from(self.next_cseq));
                Ok(())
            }
            Builtin::Route => {
                if let Some(d) = &call.dialog {
                    d.write_route_headers(out);
                    while out.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                        out.pop();
                    }
                }
                Ok(())
            }
            Builtin::ServiceRoute => {
                call.write_service_route(out);
                Ok(())
            }
            Builtin::RefreshAfter => {
                call.write_refresh_after(out);
                Ok(())
            }
            Builtin::ContactAddress => {
                let plan = &env.plan;
                let column = plan.inject.as_ref().and_then(|i| i.column("contact"));
                match (column, plan.var_slot("contact")) {
                    (Some(col), _) => self.inject(col, out),
                    (None, Some(slot)) if !call.var_value(env, slot).is_empty() => {
                        out.extend_from_slice(call.var_value(env, slot).as_bytes());
                    }
                    _ => {
                        let _ = write_host(out, &env.local_ip);
                        out.push(b':');
                        write_dec(out, u64::from(env.local_port));
                    }
                }
                Ok(())
            }
            Builtin::RemoteTarget => match &call.dialog {
                Some(d) => out.write_all(d.remote_target().as_bytes()),
                None => out.write_all(env.target_uri.as_bytes()),
            },
            Builtin::CallNumber => {
                write_dec(out, call.number);
                Ok(())
            }
            Builtin::Sdp => {
                if let Some(m) = self.media {
                    m.write_sdp(out);
                    // The template ends the body's last line itself.
                    if out.ends_with(b"\r\n") {
                        out.truncate(out.len() - 2);
                    }
                }
                Ok(())
            }
            Builtin::Crypto => {
                if let Some(m) = self.media {
                    m.write_crypto(out);
                }
                Ok(())
            }
            Builtin::RemoteCrypto => match self.media {
                Some(m) => out.write_all(m.remote_crypto().as_bytes()),
                None => Ok(()),
            },
            Builtin::MediaIp => match self.media {
                Some(m) => write!(out, "{}", m.local().ip),
                None => out.write_all(env.media_ip.as_bytes()),
            },
            Builtin::MediaPort if self.media.is_some() => {
                let port = self.media.map_or(0, |m| m.local().rtp_port);
                write_dec(out, u64::from(port));
                Ok(())
            }
            Builtin::MediaPort => {
                let port = u64::from(env.media_port_base) + 2 * (call.number % 16384);
                write_dec(out, port.min(65534));
                Ok(())
            }
            // The template computes the body length itself.
            Builtin::Len => Ok(()),
        };
    }

    fn var(&self, slot: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(self.call.var_value(self.env, slot).as_bytes());
    }

    fn inject(&self, col: usize, out: &mut Vec<u8>) {
        if let Some(inj) = &self.env.plan.inject {
            out.extend_from_slice(inj.field(self.call.row as usize, col));
        }
    }

    fn last_header(&self, name: &str, out: &mut Vec<u8>) {
        let last = match &self.last {
            LastMessage::Current(m) => Some(*m),
            LastMessage::Lazy(cell) => cell
                .get_or_init(|| message::parse(&self.call.last).ok())
                .as_ref(),
        };
        let Some(msg) = last else { return };
        let mut first = true;
        for h in msg.headers_named(name) {
            if !first {
                out.extend_from_slice(b"\r\n");
            }
            first = false;
            out.extend_from_slice(h.raw);
        }
    }
}

fn write_host(out: &mut Vec<u8>, host: &str) -> std::io::Result<()> {
    if host.contains(':') && !host.starts_with('[') {
        out.push(b'[');
        out.extend_from_slice(host.as_bytes());
        out.push(b']');
    } else {
        out.extend_from_slice(host.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The interpreter driven with virtual time and hand-made peer messages.

    use super::*;
    use crate::media::control::NoMedia;
    use crate::scenario::builtin;
    use crate::scenario::compile_str;

    /// Effects for a call without media.
    pub(super) fn fx<'a>(out: &'a mut Outbox, ctr: &'a mut Counters) -> Effects<'a> {
        // NoMedia is zero-sized: leaking a box of it allocates nothing.
        Effects {
            out,
            ctr,
            media: Box::leak(Box::new(NoMedia)),
        }
    }

    const UAC_ADDR: &str = "127.0.0.1:5070";
    const UAS_ADDR: &str = "127.0.0.1:5080";

    fn env(name: &str, overrides: &[(&str, &str)]) -> CallEnv {
        env_of(name, builtin::get(name).unwrap().text, overrides)
    }

    pub(super) fn env_of(name: &str, text: &str, overrides: &[(&str, &str)]) -> CallEnv {
        let ov: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let plan = compile_str(name, text, &ov).unwrap();
        let (local, remote) = if plan.role == Role::Uac {
            (UAC_ADDR, UAS_ADDR)
        } else {
            (UAS_ADDR, UAC_ADDR)
        };
        let local: SocketAddr = local.parse().unwrap();
        CallEnv {
            plan: Arc::new(plan),
            local_ip: local.ip().to_string(),
            local_port: local.port(),
            transport: TransportKind::Udp,
            timers: Timers::default(),
            remote: remote.parse().unwrap(),
            remote_ip_text: "127.0.0.1".into(),
            target_uri: format!("sip:{remote}"),
            run_id: 0xabcd,
            media_ip: local.ip().to_string(),
            media_port_base: 10_000,
            keep_last: true,
            worker: 0,
            workers: 1,
        }
    }

    /// A response to `req` (as a peer UAS would build it).
    pub(super) fn response(req: &[u8], code: u16, to_tag: Option<&str>, extra: &str) -> Vec<u8> {
        let m = message::parse(req).unwrap();
        let mut out = format!("SIP/2.0 {code} Whatever\r\n");
        for kind in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            for h in m.headers_of(kind) {
                out.push_str(&String::from_utf8_lossy(h.raw));
                if kind == HeaderName::To
                    && let Some(t) = to_tag
                {
                    out.push_str(&format!(";tag={t}"));
                }
                out.push_str("\r\n");
            }
        }
        out.push_str(extra);
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }

    /// One UAC call driven by hand in virtual time (milliseconds from `t0`); the
    /// peer's messages are written by the test.
    pub(super) struct Harness {
        pub(super) env: CallEnv,
        pub(super) call: Call,
        pub(super) out: Outbox,
        pub(super) ctr: Counters,
        t0: Instant,
    }

    impl Harness {
        fn uac(overrides: &[(&str, &str)]) -> Harness {
            Harness::start(env("uac", overrides), 0)
        }
        /// Call 1 of `env`, meant to start at 0 and started at `late_ms`.
        pub(super) fn start(env: CallEnv, late_ms: u64) -> Harness {
            let t0 = Instant::now();
            let call = Call::new_uac(&env, 1, t0);
            let mut h = Harness {
                env,
                call,
                out: Outbox::default(),
                ctr: Counters::default(),
                t0,
            };
            let now = h.at(late_ms);
            h.call.start(&h.env, now, &mut fx(&mut h.out, &mut h.ctr));
            h
        }
        pub(super) fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }
        /// The one message sent since the last call, as text.
        pub(super) fn one(&mut self) -> String {
            let v = self.sent();
            assert_eq!(v.len(), 1, "{v:?}");
            v.into_iter().next().map(|(_, m)| m).unwrap_or_default()
        }
        /// The peer answers `req` with `code` (To tag `peer`, `extra` headers) at `ms`.
        pub(super) fn answer(&mut self, req: &str, code: u16, extra: &str, ms: u64) {
            self.feed(&response(req.as_bytes(), code, Some("peer"), extra), ms);
        }
        /// Sent datagrams since the last call, as text, and clear them.
        pub(super) fn sent(&mut self) -> Vec<(SocketAddr, String)> {
            let v = self
                .out
                .iter()
                .map(|(a, b)| (a, String::from_utf8_lossy(b).into_owned()))
                .collect();
            self.out.clear();
            v
        }
        pub(super) fn feed(&mut self, bytes: &[u8], ms: u64) {
            let now = self.at(ms);
            let msg = message::parse(bytes).unwrap();
            let from = self.env.remote;
            self.call.on_message(
                &self.env,
                &msg,
                from,
                now,
                &mut fx(&mut self.out, &mut self.ctr),
            );
        }
        pub(super) fn tick(&mut self, ms: u64) {
            let now = self.at(ms);
            self.call
                .on_timeout(&self.env, now, &mut fx(&mut self.out, &mut self.ctr));
        }
    }

    fn starts(text: &str, prefix: &str) -> bool {
        text.starts_with(prefix)
    }

    #[test]
    fn number_writers_match_the_formatter() {
        for n in [0u64, 1, 9, 10, 99, 12345, u64::from(u32::MAX), u64::MAX] {
            let (mut d, mut h) = (Vec::new(), Vec::new());
            write_dec(&mut d, n);
            write_hex(&mut h, n);
            assert_eq!(d, n.to_string().into_bytes());
            assert_eq!(h, format!("{n:x}").into_bytes());
        }
        assert_eq!(branch_text(0xab, 255, 7), "z9hG4bK000000ab.ff.7");
        let h = Harness::uac(&[]);
        let expected = format!("{}-{:08x}@{}", h.call.number, h.env.run_id, h.env.local_ip);
        assert_eq!(h.call.call_id(), expected);
        let mut tag = Vec::new();
        write_local_tag(&mut tag, 0xab, 255);
        assert_eq!(tag, b"ff.000000ab");
    }

    #[test]
    fn calls_render_their_row_of_the_injection_file() {
        use crate::scenario::inject::Injection;
        use crate::scenario::{CompileOptions, compile_str_with};
        let inj = Arc::new(
            Injection::parse(b"user,password\nalice,a1\nbob,b2\n".to_vec(), "u.csv").unwrap(),
        );
        let text = "vars: {user: nobody}\nsteps:\n  - send: |\n      OPTIONS sip:{{ user }}@x SIP/2.0\n      X-Pw: {{ password }}\n      Content-Length: 0\n  - recv: 200\n";
        let plan = compile_str_with(
            "t",
            text,
            &CompileOptions {
                inject: Some(&inj),
                ..Default::default()
            },
        )
        .unwrap();
        let mut env = env("uac", &[]);
        env.plan = Arc::new(plan);
        let mut sent = Vec::new();
        for number in 1..=3 {
            let mut call = Call::new_uac(&env, number, Instant::now());
            let (mut out, mut ctr) = (Outbox::default(), Counters::default());
            call.start(&env, Instant::now(), &mut fx(&mut out, &mut ctr));
            let (_, bytes) = out.iter().next().unwrap();
            let text = String::from_utf8_lossy(bytes).into_owned();
            sent.push(text.lines().take(2).collect::<Vec<_>>().join("|"));
        }
        // The column wins over the variable; call k takes row k (mod rows).
        assert_eq!(
            sent,
            [
                "OPTIONS sip:alice@x SIP/2.0|X-Pw: a1",
                "OPTIONS sip:bob@x SIP/2.0|X-Pw: b2",
                "OPTIONS sip:alice@x SIP/2.0|X-Pw: a1",
            ]
        );
    }

    #[test]
    fn uac_happy_path() {
        let mut h = Harness::uac(&[]);
        let sent = h.sent();
        assert_eq!(sent.len(), 1);
        let invite = sent[0].1.clone();
        assert_eq!(sent[0].0, h.env.remote);
        assert!(
            starts(&invite, "INVITE sip:service@127.0.0.1:5080 SIP/2.0\r\n"),
            "{invite}"
        );
        assert!(invite.contains("CSeq: 1 INVITE\r\n"));
        let body_len = invite.split("\r\n\r\n").nth(1).unwrap().len();
        assert!(
            invite.contains(&format!("Content-Length: {body_len}\r\n")),
            "{invite}"
        );

        h.feed(&response(invite.as_bytes(), 100, None, ""), 5);
        h.feed(&response(invite.as_bytes(), 180, Some("peer"), ""), 10);
        let contact = "Contact: <sip:uas@127.0.0.1:5080>\r\n";
        h.feed(&response(invite.as_bytes(), 200, Some("peer"), contact), 20);
        let sent = h.sent();
        assert_eq!(sent.len(), 2, "ACK then BYE (no call_duration): {sent:?}");
        assert!(
            starts(&sent[0].1, "ACK sip:uas@127.0.0.1:5080 SIP/2.0\r\n"),
            "{}",
            sent[0].1
        );
        assert!(sent[0].1.contains("CSeq: 1 ACK\r\n"));
        assert!(sent[0].1.contains(";tag=peer"));
        assert!(
            starts(&sent[1].1, "BYE sip:uas@127.0.0.1:5080 SIP/2.0\r\n"),
            "{}",
            sent[1].1
        );
        assert!(sent[1].1.contains("CSeq: 2 BYE\r\n"));
        assert!(h.call.take_outcome().is_none());
        h.feed(&response(sent[1].1.as_bytes(), 200, None, ""), 30);
        assert_eq!(h.call.take_outcome(), Some(Outcome::Success));
        assert_eq!(h.ctr.messages_absorbed, 0);
    }

    /// What an established call waiting out its pause still holds: a dialog and
    /// nothing else on the heap (load runs keep 100,000 of them; see
    /// benches/idle-calls.sh). Guards against lists that keep spare capacity and
    /// identifiers stored twice.
    #[test]
    fn an_established_idle_uac_call_holds_only_its_dialog() {
        let mut h = Harness::uac(&[("call_duration", "10s")]);
        // As in a load run: no caller that wants to show the last message.
        h.env.keep_last = false;
        let invite = h.sent()[0].1.clone();
        let call_id = h.call.call_id().to_string();
        h.feed(&response(invite.as_bytes(), 180, Some("peer"), ""), 10);
        h.feed(&response(invite.as_bytes(), 200, Some("peer"), ""), 20);
        assert!(starts(&h.sent()[0].1, "ACK "));
        let c = &h.call;
        assert!(c.is_running());
        assert_eq!(c.clients.capacity(), 0, "no transaction storage kept");
        assert_eq!(c.servers.capacity(), 0);
        assert_eq!(c.last.capacity(), 0, "the uac never reads the last message");
        assert_eq!(c.inbox.capacity(), 0);
        assert!(
            c.call_id.is_empty() && c.remote_tag.is_none(),
            "held by the dialog"
        );
        assert_eq!(c.call_id(), call_id);
        assert_eq!(c.remote_tag(), Some("peer"));
        assert!(
            std::mem::size_of::<Call>() <= 512,
            "{}",
            std::mem::size_of::<Call>()
        );
    }

    #[test]
    fn late_180_and_retransmitted_200_are_absorbed_and_reacked() {
        let mut h = Harness::uac(&[("call_duration", "1s")]);
        let invite = h.sent()[0].1.clone();
        h.feed(&response(invite.as_bytes(), 200, Some("p"), ""), 10);
        let ack = h.sent();
        assert_eq!(ack.len(), 1);
        // 180 overtaken by the 200 through a multi-process proxy.
        h.feed(&response(invite.as_bytes(), 180, Some("p"), ""), 12);
        // 200 retransmitted: our ACK was lost.
        h.feed(&response(invite.as_bytes(), 200, Some("p"), ""), 510);
        let again = h.sent();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1, ack[0].1, "the same ACK is sent again");
        assert_eq!(h.ctr.messages_absorbed, 2);
        assert_eq!(h.ctr.messages_retransmitted, 1);
        h.tick(1010);
        let bye = h.sent();
        assert!(starts(&bye[0].1, "BYE "), "{bye:?}");
        h.feed(&response(bye[0].1.as_bytes(), 200, None, ""), 1020);
        assert_eq!(h.call.take_outcome(), Some(Outcome::Success));
    }

    #[test]
    fn invite_retransmitted_then_timer_b() {
        let mut h = Harness::uac(&[]);
        let invite = h.sent()[0].1.clone();
        h.tick(500);
        let r = h.sent();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, invite, "Timer A resends the same bytes");
        h.tick(1500);
        assert_eq!(h.sent().len(), 1);
        let mut t = 1500;
        while h.call.take_outcome().is_none() {
            t = h
                .call
                .deadline()
                .map(|d| d.duration_since(h.t0).as_millis() as u64)
                .unwrap();
            h.tick(t);
            assert!(t <= 32_000, "Timer B fires at 64·T1");
        }
        assert_eq!(t, 32_000);
        assert_eq!(
            h.ctr.failures_of(FailureReason::Timeout),
            0,
            "the driver counts outcomes"
        );
        assert!(h.call.failure_detail().unwrap().contains("INVITE"));
        assert!(h.call.is_reapable());
    }

    #[test]
    fn non_2xx_is_acked_by_the_transaction_and_fails_the_call() {
        let mut h = Harness::uac(&[]);
        let invite = h.sent()[0].1.clone();
        h.feed(&response(invite.as_bytes(), 486, Some("busy"), ""), 10);
        let sent = h.sent();
        assert_eq!(sent.len(), 1);
        let ack = &sent[0].1;
        assert!(
            starts(ack, "ACK sip:service@127.0.0.1:5080 SIP/2.0\r\n"),
            "{ack}"
        );
        let inv = message::parse(invite.as_bytes()).unwrap();
        let ackm = message::parse(ack.as_bytes()).unwrap();
        assert_eq!(
            inv.top_via().unwrap().branch,
            ackm.top_via().unwrap().branch
        );
        assert_eq!(
            h.call.take_outcome(),
            Some(Outcome::Failed(FailureReason::UnexpectedMessage))
        );
        assert_eq!(h.call.last_status(), Some(486));
    }

    #[test]
    fn record_route_sets_route_and_next_hop() {
        let mut h = Harness::uac(&[]);
        let invite = h.sent()[0].1.clone();
        let extra = "Record-Route: <sip:127.0.0.9:5060;lr>\r\nRecord-Route: <sip:127.0.0.8:5090;lr>\r\nContact: <sip:uas@127.0.0.1:5080>\r\n";
        h.feed(&response(invite.as_bytes(), 200, Some("p"), extra), 10);
        let sent = h.sent();
        // Reversed route set: the proxy nearest to us is the last Record-Route.
        for (addr, text) in &sent {
            assert_eq!(
                *addr,
                "127.0.0.8:5090".parse::<SocketAddr>().unwrap(),
                "{text}"
            );
            let route_pos = text.find("Route: <sip:127.0.0.8:5090;lr>").unwrap();
            let second = text.find("Route: <sip:127.0.0.9:5060;lr>").unwrap();
            assert!(route_pos < second, "{text}");
            assert!(
                text.contains(" sip:uas@127.0.0.1:5080 SIP/2.0\r\n"),
                "loose routing keeps the target: {text}"
            );
        }
    }

    /// `last.*` in a template reads the message the call took last: the one just
    /// handed in (whose parse is reused), or one queued while the call paused.
    #[test]
    fn last_is_the_message_taken_whether_just_received_or_queued() {
        let env = env_of(
            "queued",
            "name: queued\nrole: uas\nsteps:\n  - recv: MESSAGE\n  - send: |\n      \
             SIP/2.0 202 First\n      {{ last.via }}\n      {{ last.cseq }}\n  - pause: 100ms\n  \
             - recv: MESSAGE\n  - send: |\n      SIP/2.0 200 Second\n      {{ last.via }}\n      \
             {{ last.cseq }}\n",
            &[],
        );
        let peer: SocketAddr = UAC_ADDR.parse().unwrap();
        let request = |n: u32| {
            format!(
                "MESSAGE sip:s@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{n}\r\n\
                 From: <sip:a@h>;tag=a\r\nTo: <sip:s@h>\r\nCall-ID: q@test\r\nCSeq: {n} MESSAGE\r\n\
                 Content-Length: 0\r\n\r\n"
            )
        };
        let (mut out, mut ctr, t0) = (Outbox::default(), Counters::default(), Instant::now());
        let mut call = Call::new_uas(&env, 1, "q@test", peer, t0);
        let first = request(1);
        call.on_message(
            &env,
            &message::parse(first.as_bytes()).unwrap(),
            peer,
            t0,
            &mut fx(&mut out, &mut ctr),
        );
        let second = request(2);
        let later = t0 + Duration::from_millis(10);
        call.on_message(
            &env,
            &message::parse(second.as_bytes()).unwrap(),
            peer,
            later,
            &mut fx(&mut out, &mut ctr),
        );
        call.on_timeout(
            &env,
            t0 + Duration::from_millis(150),
            &mut fx(&mut out, &mut ctr),
        );
        let sent: Vec<String> = out
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(
            sent[0].contains("branch=z9hG4bK-1\r\nCSeq: 1 MESSAGE"),
            "{}",
            sent[0]
        );
        assert!(
            sent[1].contains("branch=z9hG4bK-2\r\nCSeq: 2 MESSAGE"),
            "{}",
            sent[1]
        );
    }

    #[test]
    fn uas_answers_retransmits_2xx_until_ack_and_serves_bye() {
        let env = env("uas", &[]);
        let mut out = Outbox::default();
        let mut ctr = Counters::default();
        let t0 = Instant::now();
        let peer: SocketAddr = UAC_ADDR.parse().unwrap();
        let invite = b"INVITE sip:service@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
Record-Route: <sip:127.0.0.9;lr>\r\n\
From: <sip:a@127.0.0.1>;tag=caller\r\n\
To: <sip:service@127.0.0.1>\r\n\
Call-ID: c1@test\r\nCSeq: 7 INVITE\r\n\
Contact: <sip:a@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
        let mut call = Call::new_uas(&env, 1, "c1@test", peer, Instant::now());
        let msg = message::parse(invite).unwrap();
        call.on_message(&env, &msg, peer, t0, &mut fx(&mut out, &mut ctr));
        let sent: Vec<String> = out
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        out.clear();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(starts(
            &sent[0],
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
        ));
        assert!(starts(&sent[1], "SIP/2.0 200 OK\r\n"));
        assert!(
            sent[1].contains("Record-Route: <sip:127.0.0.9;lr>\r\n"),
            "{}",
            sent[1]
        );
        assert!(sent[1].contains("CSeq: 7 INVITE\r\n"));
        assert!(sent[1].contains("To: <sip:service@127.0.0.1>;tag="));
        // Retransmitted INVITE: the 200 again.
        call.on_message(
            &env,
            &msg,
            peer,
            t0 + Duration::from_millis(100),
            &mut fx(&mut out, &mut ctr),
        );
        assert_eq!(
            out.iter().next().map(|(_, b)| b.to_vec()),
            Some(sent[1].clone().into_bytes())
        );
        out.clear();
        // No ACK yet: the 2xx is retransmitted at T1.
        call.on_timeout(
            &env,
            t0 + Duration::from_millis(500),
            &mut fx(&mut out, &mut ctr),
        );
        assert_eq!(out.len(), 1);
        out.clear();
        let to = sent[1]
            .lines()
            .find(|l| l.starts_with("To:"))
            .unwrap()
            .to_string();
        let ack = format!(
            "ACK sip:service@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2\r\n\
From: <sip:a@127.0.0.1>;tag=caller\r\n{to}\r\nCall-ID: c1@test\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        let ackm = message::parse(ack.as_bytes()).unwrap();
        call.on_message(
            &env,
            &ackm,
            peer,
            t0 + Duration::from_millis(600),
            &mut fx(&mut out, &mut ctr),
        );
        // A second copy of the ACK is absorbed.
        call.on_message(
            &env,
            &ackm,
            peer,
            t0 + Duration::from_millis(601),
            &mut fx(&mut out, &mut ctr),
        );
        assert_eq!(ctr.messages_absorbed, 2, "retransmitted INVITE and ACK");
        call.on_timeout(
            &env,
            t0 + Duration::from_millis(1500),
            &mut fx(&mut out, &mut ctr),
        );
        assert!(out.is_empty(), "ACK stopped the 2xx retransmissions");
        // A late copy of the INVITE after the ACK is absorbed quietly: the ended
        // transaction is remembered by its branch only.
        call.on_message(
            &env,
            &msg,
            peer,
            t0 + Duration::from_millis(1600),
            &mut fx(&mut out, &mut ctr),
        );
        assert!(out.is_empty(), "no reply to a late INVITE copy");
        assert_eq!(ctr.messages_absorbed, 3);
        assert!(call.is_running());
        let bye = ack
            .replace("ACK sip", "BYE sip")
            .replace("CSeq: 7 ACK", "CSeq: 8 BYE")
            .replace("z9hG4bK-2", "z9hG4bK-3");
        let byem = message::parse(bye.as_bytes()).unwrap();
        call.on_message(
            &env,
            &byem,
            peer,
            t0 + Duration::from_millis(2000),
            &mut fx(&mut out, &mut ctr),
        );
        let reply: Vec<String> = out
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(
            starts(
                &reply[0],
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-3\r\n"
            ),
            "{reply:?}"
        );
        assert!(reply[0].contains("CSeq: 8 BYE"));
        assert_eq!(call.take_outcome(), Some(Outcome::Success));
    }

    #[test]
    fn cancel_uses_the_invite_branch_and_cseq() {
        let env = env("cancel", &[]);
        let mut out = Outbox::default();
        let mut ctr = Counters::default();
        let t0 = Instant::now();
        let mut call = Call::new_uac(&env, 1, Instant::now());
        call.start(&env, t0, &mut fx(&mut out, &mut ctr));
        let invite = String::from_utf8_lossy(out.iter().next().unwrap().1).into_owned();
        out.clear();
        let ringing = response(invite.as_bytes(), 180, Some("r"), "");
        call.on_message(
            &env,
            &message::parse(&ringing).unwrap(),
            env.remote,
            t0,
            &mut fx(&mut out, &mut ctr),
        );
        let cancel = String::from_utf8_lossy(out.iter().next().unwrap().1).into_owned();
        out.clear();
        let inv = message::parse(invite.as_bytes()).unwrap();
        let can = message::parse(cancel.as_bytes()).unwrap();
        assert_eq!(can.method(), Some("CANCEL"));
        assert_eq!(can.request_uri(), inv.request_uri());
        assert_eq!(can.top_via().unwrap().branch, inv.top_via().unwrap().branch);
        assert_eq!(can.cseq().unwrap().seq, inv.cseq().unwrap().seq);
        assert_eq!(can.to().unwrap().tag(), None, "CANCEL has the INVITE's To");
        let ok = response(cancel.as_bytes(), 200, Some("r"), "");
        call.on_message(
            &env,
            &message::parse(&ok).unwrap(),
            env.remote,
            t0,
            &mut fx(&mut out, &mut ctr),
        );
        let terminated = response(invite.as_bytes(), 487, Some("r"), "");
        call.on_message(
            &env,
            &message::parse(&terminated).unwrap(),
            env.remote,
            t0,
            &mut fx(&mut out, &mut ctr),
        );
        assert_eq!(out.len(), 1, "the transaction ACKs the 487");
        assert_eq!(call.take_outcome(), Some(Outcome::Success));
    }

    #[test]
    fn recv_timeout_fails_with_timeout() {
        let mut h = Harness::uac(&[]);
        let invite = h.sent()[0].1.clone();
        h.feed(&response(invite.as_bytes(), 100, None, ""), 5);
        // A provisional stops Timer B; the recv step's own bound (64·T1) still applies.
        h.tick(32_005);
        assert_eq!(
            h.call.take_outcome(),
            Some(Outcome::Failed(FailureReason::Timeout))
        );
        assert!(
            h.call
                .failure_detail()
                .unwrap()
                .contains("timed out waiting for a 180 response, a 183 response or a 200 response"),
            "{:?}",
            h.call.failure_detail()
        );
    }

    /// Mutated and truncated peer messages must never panic a call (they may fail it).
    #[test]
    fn garbage_never_panics_a_call() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..400 {
            let mut h = Harness::uac(&[]);
            let invite = h.sent()[0].1.clone();
            let extra = "Record-Route: <sip:127.0.0.9;lr>\r\nContact: <sip:x@127.0.0.1:5080>\r\n";
            let mut msgs = [
                response(invite.as_bytes(), 180, Some("t"), ""),
                response(invite.as_bytes(), 200, Some("t"), extra),
            ];
            for m in msgs.iter_mut() {
                for _ in 0..(rnd() % 6) {
                    let i = (rnd() as usize) % m.len();
                    m[i] = rnd() as u8;
                }
                if round % 3 == 0 {
                    let cut = (rnd() as usize) % m.len();
                    m.truncate(cut.max(1));
                }
            }
            for (i, m) in msgs.iter().enumerate() {
                if let Ok(msg) = message::parse(m) {
                    let now = h.at(10 * (i as u64 + 1));
                    let from = h.env.remote;
                    h.call
                        .on_message(&h.env, &msg, from, now, &mut fx(&mut h.out, &mut h.ctr));
                }
            }
            let mut t = 100;
            while let Some(d) = h.call.deadline() {
                t = t.max(d.duration_since(h.t0).as_millis() as u64);
                h.tick(t);
                t += 1;
                if t > 200_000 {
                    break;
                }
            }
        }
    }

    #[test]
    fn garbage_never_panics_a_uas_call() {
        let env = env("uas", &[]);
        let peer: SocketAddr = UAC_ADDR.parse().unwrap();
        let invite = b"INVITE sip:s@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
Record-Route: <sip:127.0.0.9;lr>\r\nFrom: <sip:a@h>;tag=c\r\nTo: <sip:s@h>\r\nCall-ID: g@t\r\n\
CSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut m = invite.to_vec();
            for k in 0..(seed % 5) {
                let i = ((seed >> (8 * k)) as usize) % m.len();
                m[i] = (seed >> (3 * k)) as u8;
            }
            let Ok(msg) = message::parse(&m) else {
                continue;
            };
            let (mut out, mut ctr, t0) = (Outbox::default(), Counters::default(), Instant::now());
            let mut call = Call::new_uas(&env, 1, msg.call_id().unwrap_or(""), peer, t0);
            call.on_message(&env, &msg, peer, t0, &mut fx(&mut out, &mut ctr));
            call.on_message(&env, &msg, peer, t0, &mut fx(&mut out, &mut ctr));
            let mut t = t0;
            for _ in 0..64 {
                let Some(d) = call.deadline() else { break };
                t = t.max(d);
                call.on_timeout(&env, t, &mut fx(&mut out, &mut ctr));
            }
        }
    }
}

//! The compiled scenario: labels resolved to step indices, variables resolved to
//! slots, regexes and templates compiled. Shared read-only by all calls (`Arc`).

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::media::config::{DtmfSpec, MediaConfig, MediaExpectation, PlaySpec};

use super::compile::{CompileError, Diagnostic};
use super::template::Template;
use crate::transport::kind::{MAX_UDP_MESSAGE, TransportKind};

/// Which side of a call the scenario plays; its natural loopback peer is the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Starts calls (first step is a `send`).
    Uac,
    /// Answers calls (first step is a `recv` of a request).
    Uas,
}

#[derive(Debug)]
pub struct Plan {
    pub name: String,
    /// File name (or `builtin:NAME`) used in diagnostics.
    pub source: String,
    pub role: Role,
    pub steps: Vec<Step>,
    /// Variable slots: name and initial value (scenario `vars`, overridden by `--set`).
    /// Captures write into slots too. Unset captured variables start empty.
    pub vars: Vec<VarSlot>,
    /// Default timeout for `recv` steps without their own (None: see `RecvStep::timeout`).
    pub recv_timeout: Option<Duration>,
    /// Per step: for a `recv`, whether a later step may read the message it received
    /// before another `recv` replaces it (see [`last_liveness`]). An established call
    /// waiting for its BYE then holds no copy of the ACK.
    pub last_needed_after: Vec<bool>,
    /// Media settings when the scenario has media (a `media:` block, a media step or
    /// `{{ sdp }}`); None: signalling only, no ports are opened.
    pub media: Option<Arc<MediaConfig>>,
    /// The scenario `--loopback` runs against this one (`peer:`): a built-in's name,
    /// or a scenario file relative to this one's folder.
    pub peer: Option<String>,
    /// A UAC whose first request writes its Call-ID literally (a message sent
    /// byte-exact, as `scenario from-pcap --exact` writes them): its calls use that
    /// Call-ID, so that the answers, which carry it, find the call.
    pub call_id: Option<String>,
    /// Digest credentials (`auth:`), rendered per call when a challenge comes.
    pub auth: Option<AuthPlan>,
    /// Per-call data (`--inject` / `inject:`): each call takes a row when it starts
    /// and templates read its columns straight from the file buffer.
    pub inject: Option<Arc<super::inject::Injection>>,
    /// Some template reads a column of `inject` (else the file changes nothing).
    pub inject_used: bool,
}

/// Compiled `auth:` block.
#[derive(Debug)]
pub struct AuthPlan {
    pub username: Template,
    pub password: Template,
    pub realm: Option<String>,
}

#[derive(Clone, Debug)]
pub struct VarSlot {
    pub name: String,
    pub initial: String,
}

impl Plan {
    /// Does any step read the last received message after receiving it (templates with
    /// `last.*`, `capture` steps, conditions on headers, body or start line)? When not,
    /// calls need not keep a copy of it.
    pub fn uses_last_message(&self) -> bool {
        self.steps.iter().any(|s| reads_last(&s.kind))
    }

    /// Must a call keep the message it received at step `recv` (see `last_needed_after`)?
    pub fn needs_last_after(&self, recv: usize) -> bool {
        self.last_needed_after.get(recv).copied().unwrap_or(true)
    }

    pub fn var_slot(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v.name == name)
    }

    /// What only the run's transport reveals, checked before the first call:
    /// `chunks:` needs a byte stream (tcp, tls), and over UDP a message of a fixed
    /// size (no slots) must fit in one datagram. Messages whose size depends on the
    /// call are checked when they are sent (the call fails with `scenario_error`).
    pub fn check_transport(&self, kind: TransportKind) -> Result<(), CompileError> {
        let mut diagnostics = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let StepKind::Send(send) = &step.kind else {
                continue;
            };
            let mut problem = |at: (u32, u32), message: String| {
                diagnostics.push(Diagnostic {
                    file: self.source.clone(),
                    line: u64::from(at.0),
                    column: u64::from(at.1),
                    path: String::new(),
                    message: format!("step {}: {message}", i + 1),
                });
            };
            if send.chunks.is_some()
                && let Some(why) = chunks_unsupported(kind)
            {
                problem(send.chunks_at, why);
            }
            if kind == TransportKind::Udp
                && let SendStep::Message(t) = &send.what
                && let Some(len) = t.fixed_len().filter(|&n| n > MAX_UDP_MESSAGE)
            {
                problem(send.at, udp_too_large(len));
            }
        }
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(CompileError { diagnostics })
        }
    }
}

/// Why `chunks:` can't be used over `kind` (None: it can).
pub fn chunks_unsupported(kind: TransportKind) -> Option<String> {
    if kind.is_stream() {
        return None;
    }
    let why = if kind.is_websocket() {
        "a WebSocket frame carries one whole message (RFC 7118)"
    } else {
        "a UDP datagram is one whole message"
    };
    Some(format!(
        "`chunks:` splits a message over a byte stream (tcp or tls), but this run is over {kind}: {why}"
    ))
}

/// A message that does not fit in one UDP datagram.
pub fn udp_too_large(len: usize) -> String {
    format!(
        "the message is {len} bytes, over the {MAX_UDP_MESSAGE} bytes one UDP datagram carries; \
         send it over tcp or tls (`--transport tcp`)"
    )
}

/// Does this step read the last received message?
fn reads_last(kind: &StepKind) -> bool {
    let reads = |c: &Condition| !matches!(c.subject, Subject::Var(_));
    match kind {
        StepKind::Send(SendSpec {
            what: SendStep::Message(t),
            ..
        }) => t.uses_last(),
        StepKind::Capture(_) => true,
        StepKind::Assert(c) => reads(c),
        StepKind::Goto { when: Some(c), .. } => reads(c),
        // The challenge answers the request received last.
        StepKind::Challenge(_) => true,
        _ => false,
    }
}

/// For each step: when it is a `recv`, whether some path from the next step reads the
/// last message before a mandatory `recv` replaces it (an optional one may be skipped,
/// a conditional goto may go either way). `false` for every other step.
pub fn last_liveness(steps: &[Step]) -> Vec<bool> {
    let read_on_some_path = |start: usize| {
        let mut seen = vec![false; steps.len()];
        let mut todo = vec![start];
        while let Some(mut i) = todo.pop() {
            while let Some(step) = steps.get(i) {
                if std::mem::replace(&mut seen[i], true) {
                    break;
                }
                if reads_last(&step.kind) {
                    return true;
                }
                match &step.kind {
                    StepKind::Recv(r) if !r.optional => break,
                    StepKind::Goto {
                        target,
                        when: None,
                        times: None,
                    } => i = *target,
                    StepKind::Goto { target, .. } => {
                        todo.push(*target);
                        i += 1;
                    }
                    _ => i += 1,
                }
            }
        }
        false
    };
    (0..steps.len())
        .map(|i| {
            // A challenge step ends by taking the retried request, like a recv.
            matches!(steps[i].kind, StepKind::Recv(_) | StepKind::Challenge(_))
                && read_on_some_path(i + 1)
        })
        .collect()
}

#[derive(Debug)]
pub struct Step {
    /// 1-based line of the step in the source, for messages about a call's progress.
    pub line: u32,
    pub kind: StepKind,
}

#[derive(Debug)]
pub enum StepKind {
    Send(SendSpec),
    Recv(RecvStep),
    Pause(PauseSpec),
    /// Jump to step index `target` (labels are resolved at compile time; a label at the
    /// end of the steps resolves to `steps.len()`, i.e. the end of the scenario).
    Goto {
        target: usize,
        when: Option<Condition>,
        /// `times: N`: jump at most N times per call, then fall through. The count
        /// lives in a hidden variable slot (`#goto…`), so calls need no extra field.
        times: Option<GotoLimit>,
    },
    /// Capture from the last received message.
    Capture(Vec<Capture>),
    Assert(Condition),
    Media(MediaStep),
    /// UAS digest server (boxed: rare, and larger than the other steps).
    Challenge(Box<ChallengeStep>),
}

/// Compiled `challenge:` step: answer the last received request with 401/407, wait
/// for it again with credentials, check them (see `call/challenge.rs`).
#[derive(Debug)]
pub struct ChallengeStep {
    /// None: the local IP.
    pub realm: Option<Template>,
    pub algorithm: crate::sip::digest::Algorithm,
    /// None: no `qop` (RFC 2069 answers).
    pub qop: Option<crate::sip::digest::Qop>,
    /// 407 + Proxy-Authenticate / Proxy-Authorization instead of 401.
    pub proxy: bool,
    pub password: Template,
    /// The user name the credentials must carry; None: any (or the looked-up row's).
    pub username: Option<Template>,
    /// `lookup:` when the run has an injection with that column; None otherwise.
    pub lookup: Option<LookupPlan>,
    /// Credentials on an older nonce get one `stale=true` challenge per call.
    pub stale_after: Option<Duration>,
    pub opaque: Option<Template>,
    /// How long to wait for the retried request (falls back to `Plan::recv_timeout`,
    /// then 64·T1: a client answers a challenge at once or not at all).
    pub timeout: Option<Duration>,
}

/// `lookup: COLUMN`: the index of that column of `Plan::inject`, built once.
#[derive(Debug)]
pub struct LookupPlan {
    pub column: String,
    pub index: super::inject::ColumnIndex,
}

/// A bounded `goto` (`times:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GotoLimit {
    pub max: u32,
    /// Variable slot counting the jumps taken.
    pub slot: usize,
}

#[derive(Debug)]
pub enum MediaStep {
    Play(PlaySpec),
    Silence,
    Stop,
    /// Send digits; the step lasts until the last one has gone.
    Dtmf(DtmfSpec),
    /// Check the figures received so far.
    Expect(MediaExpectation),
    /// Wait until these digits have arrived (RFC 4733 or INFO), at most `timeout`.
    ExpectDtmf {
        digits: String,
        timeout: Option<Duration>,
    },
}

/// A `send`, `send_file` or `bytes_base64` step: what goes, and how it is written.
#[derive(Debug)]
pub struct SendSpec {
    pub what: SendStep,
    /// tcp/tls: the message is written in these pieces, each after a delay (None:
    /// in one write). The step lasts until the last piece is out, so nothing the
    /// call sends next lands in the middle of the message.
    pub chunks: Option<Box<[Chunk]>>,
    /// The next send's message joins this one: one write on a connection, one
    /// datagram over UDP.
    pub pipeline: bool,
    /// (line, column) of the step's action value and of `chunks:`, for
    /// [`Plan::check_transport`]'s diagnostics.
    pub at: (u32, u32),
    pub chunks_at: (u32, u32),
}

/// One piece of a chunked send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// After the previous piece was due (the first: after the step started).
    pub after: Duration,
    /// None: whatever is left of the message.
    pub bytes: Option<usize>,
}

#[derive(Debug)]
pub enum SendStep {
    /// A message template.
    Message(Template),
    /// ACK for the last 2xx to INVITE, built from dialog state (no-op after a non-2xx,
    /// which the INVITE transaction has already acknowledged).
    Ack,
    /// BYE built from dialog state.
    Bye,
    /// CANCEL built from the pending INVITE.
    Cancel,
}

#[derive(Debug)]
pub struct RecvStep {
    pub matcher: RecvMatch,
    /// For responses: only match responses whose CSeq method is this (e.g. "CANCEL").
    pub in_reply_to: Option<String>,
    pub optional: bool,
    /// Step timeout (falls back to `Plan::recv_timeout`; when both are None a wait for a
    /// response is bounded by 64·T1 and a wait for a request is unbounded).
    pub timeout: Option<Duration>,
    pub captures: Vec<Capture>,
    /// Name of an `rtd` measurement this step ends (reserved for the load engine).
    pub rtd: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvMatch {
    Status(u16),
    /// Status class: 1 for `1xx` ... 6 for `6xx`.
    Class(u8),
    /// Request method, upper case.
    Method(String),
}

impl RecvMatch {
    pub fn matches_response(&self, code: u16) -> bool {
        match self {
            RecvMatch::Status(c) => *c == code,
            RecvMatch::Class(k) => (code / 100) as u8 == *k,
            RecvMatch::Method(_) => false,
        }
    }
    pub fn matches_request(&self, method: &str) -> bool {
        matches!(self, RecvMatch::Method(m) if m.eq_ignore_ascii_case(method))
    }
}

#[derive(Debug)]
pub enum PauseSpec {
    Fixed(Duration),
    /// Duration text read from a variable slot at run time (e.g. `{{ call_duration }}`).
    Var(usize),
    /// `{{ refresh_after }}`: half the expiry the registrar granted last.
    RefreshAfter,
}

#[derive(Debug)]
pub struct Capture {
    pub from: Subject,
    pub regex: Regex,
    /// Variable slot receiving the first capture group (or the whole match when the
    /// regex has no group).
    pub var: usize,
    /// When true a non-match fails the call with `assert_failed`.
    pub required: bool,
}

/// What a capture or condition looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Every header of this name in the last received message (case-insensitive,
    /// compact forms understood), joined with CRLF as `Name: value` lines' values.
    Header(String),
    Body,
    /// The start line of the last received message.
    StartLine,
    /// A variable slot.
    Var(usize),
}

#[derive(Debug)]
pub struct Condition {
    pub subject: Subject,
    pub test: Test,
}

#[derive(Debug)]
pub enum Test {
    Equals(String),
    Matches(Regex),
    /// True when the subject exists (header present / variable non-empty).
    Exists,
    /// Negation of the inner test.
    Not(Box<Test>),
}

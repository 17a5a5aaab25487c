//! A call's messages → the UAC's and the UAS's scenario.
//!
//! Each side gets a `send` step for every message it sent and a `recv` step for
//! every message it received, in capture order, with `pause` steps where it waited
//! before sending. To write a slot for a value the *peer* chose (its tag, its branch,
//! the CSeq number of its request), the generator plays the side forward the way the
//! scenario engine will run it: what `{{ to_tag }}`, `{{ from_tag }}` and
//! `{{ cseq }}` will hold at that step, and which message `last.*` will read. A value
//! no built-in holds is captured into a variable from the received message that
//! carried it (a `capture:` on that `recv`), checked by running the capture's regex on
//! the captured message; a value nothing yields stays literal.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::LazyLock;

use regex::bytes::Regex;

use crate::scenario::plan::{SendSpec, SendStep, StepKind};
use crate::sip::header::HeaderName;
use crate::sip::message;

use super::emit::{self, Emitted};
use super::error::FromPcapError;
use super::extract::{Call, Captured};
use super::head::{Head, Start, trimmed};
use super::subst::{self, Resolve, View};
use super::yaml;

/// A message sent this much later than the message before it gets a `pause` first.
pub const MIN_PAUSE_NANOS: u64 = 20_000_000;

/// Indentation of a step's keys (`  - send:`) and of a scalar's continuation lines.
const SCALAR_INDENT: usize = 6;

#[derive(Clone, Debug)]
pub struct Options {
    /// Every message as captured (`raw: true` or `bytes_base64:`), no slots.
    pub exact: bool,
    /// Keep the capture's timing as `pause` steps.
    pub pauses: bool,
    /// The capture's name, for the header comment.
    pub source: String,
    /// The files' names: each scenario names the other as its `peer:`.
    pub uac_file: String,
    pub uas_file: String,
}

/// What was converted, for the command's summary line.
#[derive(Clone, Debug)]
pub struct Summary {
    pub call_id: String,
    /// Messages of the call between its two endpoints (retransmissions left out).
    pub messages: usize,
    /// Messages of the call left out: retransmissions, other hops, before the first request.
    pub left_out: usize,
    pub uac: SocketAddr,
    pub uas: SocketAddr,
    pub transport: &'static str,
    pub frames: (u64, u64),
    pub uac_steps: usize,
    pub uas_steps: usize,
}

/// The two scenarios.
#[derive(Clone, Debug)]
pub struct Pair {
    pub uac: String,
    pub uas: String,
    pub summary: Summary,
    /// Things the user should know (a value kept literal, a message sent as captured…).
    pub notes: Vec<String>,
    /// The files use `{{ hex: … }}` slots or `bytes_base64:` steps.
    pub needs_bytes: bool,
}

/// What the start line says.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Request(String),
    Response(u16),
}

struct Msg<'c> {
    /// 1-based position in the call, as the files' comments number messages.
    n: usize,
    cap: &'c Captured,
    head: Head,
    from_uac: bool,
    kind: Kind,
    cseq: Option<(u32, String)>,
    top_branch: Option<Vec<u8>>,
    from_tag: Option<Vec<u8>>,
    to_tag: Option<Vec<u8>>,
    /// The engine parses it (else a receiver drops it, and `last.*` cannot read it).
    parses: bool,
}

impl Msg<'_> {
    fn bytes(&self) -> &[u8] {
        &self.cap.bytes
    }
    fn method_is(&self, m: &str) -> bool {
        matches!(&self.kind, Kind::Request(x) if x.eq_ignore_ascii_case(m))
    }
    fn label(&self) -> String {
        match &self.kind {
            Kind::Request(m) => m.clone(),
            Kind::Response(c) => c.to_string(),
        }
    }
}

fn tag_of(msg: &[u8], head: &Head, kind: HeaderName) -> Option<Vec<u8>> {
    let f = head.fields_of(kind).next()?;
    let r = subst::param(msg, f.value.clone(), "tag")?;
    (!r.is_empty()).then(|| msg[r].to_vec())
}

fn prepare(n: usize, cap: &Captured, from_uac: bool) -> Option<Msg<'_>> {
    let b = &cap.bytes;
    let head = Head::scan(b);
    let kind = match head.start(b)? {
        Start::Request { method, .. } => Kind::Request(String::from_utf8_lossy(method).into()),
        Start::Response { code } => Kind::Response(code),
    };
    let cseq = head.fields_of(HeaderName::CSeq).next().and_then(|f| {
        let v = &b[trimmed(b, f.value.clone())];
        let digits = v.iter().take_while(|c| c.is_ascii_digit()).count();
        let n: u32 = std::str::from_utf8(&v[..digits]).ok()?.parse().ok()?;
        let method = v[digits..].trim_ascii();
        Some((n, String::from_utf8_lossy(method).into_owned()))
    });
    let top_branch = head.fields_of(HeaderName::Via).next().and_then(|f| {
        let first = f.value.start
            ..memchr::memchr(b',', &b[f.value.clone()]).map_or(f.value.end, |i| f.value.start + i);
        subst::param(b, first, "branch").map(|r| b[r].to_vec())
    });
    Some(Msg {
        n,
        cap,
        from_tag: tag_of(b, &head, HeaderName::From),
        to_tag: tag_of(b, &head, HeaderName::To),
        head,
        from_uac,
        kind,
        cseq,
        top_branch,
        parses: message::parse(b).is_ok(),
    })
}

/// The `host:port` of the top Via when it is an IP address with a port.
fn sent_by(msg: &[u8]) -> Option<SocketAddr> {
    let head = Head::scan(msg);
    let f = head.fields_of(HeaderName::Via).next()?;
    let v = std::str::from_utf8(&msg[f.value.clone()]).ok()?;
    let host = v.split_whitespace().nth(1)?;
    let host = host.split([';', ',']).next()?;
    host.parse().ok()
}

/// A value the peer chose, captured from a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Peer {
    Branch,
    FromTag,
    ToTag,
    CSeq,
}

impl Peer {
    fn header(self) -> &'static str {
        match self {
            Peer::Branch => "Via",
            Peer::FromTag => "From",
            Peer::ToTag => "To",
            Peer::CSeq => "CSeq",
        }
    }
    fn regex_text(self) -> &'static str {
        match self {
            Peer::Branch => r"(?i)branch=([^;,\s>]+)",
            Peer::FromTag | Peer::ToTag => r"(?i);\s*tag=([^;,\s>]+)",
            Peer::CSeq => r"^\s*(\d+)",
        }
    }
    fn regex(self) -> &'static Regex {
        static RES: LazyLock<[Regex; 4]> = LazyLock::new(|| {
            [Peer::Branch, Peer::FromTag, Peer::ToTag, Peer::CSeq]
                .map(|p| Regex::new(p.regex_text()).unwrap_or_else(|_| Regex::new("$^").unwrap()))
        });
        &RES[self as usize]
    }
    fn prefix(self) -> &'static str {
        match self {
            Peer::Branch => "branch",
            Peer::FromTag => "from_tag",
            Peer::ToTag => "to_tag",
            Peer::CSeq => "cseq",
        }
    }

    const ALL: [Peer; 4] = [Peer::Branch, Peer::FromTag, Peer::ToTag, Peer::CSeq];

    /// What a `capture:` of each kind takes from `bytes` at run time: the regex's
    /// group on the header's values joined by CRLF (`Call::subject_text_in`).
    fn values_in(bytes: &[u8]) -> Vec<(Peer, Vec<u8>)> {
        let Ok(m) = message::parse(bytes) else {
            return Vec::new();
        };
        Peer::ALL
            .into_iter()
            .filter_map(|kind| {
                let values: Vec<String> = m
                    .headers_named(kind.header())
                    .map(|h| h.value().into_owned())
                    .collect();
                if values.is_empty() {
                    return None;
                }
                let text = values.join("\r\n");
                let caps = kind.regex().captures(text.as_bytes())?;
                Some((kind, caps.get(1)?.as_bytes().to_vec()))
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct CaptureSpec {
    peer: Peer,
    var: String,
}

#[derive(Clone, Debug)]
enum Step {
    Send {
        e: Emitted,
        /// For the whole-file check: what it must render to.
        want: Vec<u8>,
    },
    /// `bytes_base64:` (the text), and the bytes it stands for.
    Bytes(String, Vec<u8>),
    Cancel,
    Recv {
        what: String,
        optional: bool,
        in_reply_to: Option<String>,
        captures: Vec<CaptureSpec>,
    },
    Pause(u64),
}

/// A step and the comment line above it.
struct Entry {
    comment: Option<String>,
    step: Option<Step>,
}

/// One side being written.
struct Gen<'a> {
    msgs: &'a [Msg<'a>],
    call_id: &'a [u8],
    opts: &'a Options,
    uac: bool,
    own: SocketAddr,
    peer: SocketAddr,
    transport: &'static str,
    own_tag: Option<Vec<u8>>,
    /// What the peer's-tag built-in holds at this point (`to_tag` on a UAC,
    /// `from_tag` on a UAS).
    peer_tag: Option<Vec<u8>>,
    /// The engine's CSeq counter of this side and capture − engine.
    cseq_rt: i64,
    cseq_offset: Option<i64>,
    /// CSeq number of the last request received (what `{{ cseq }}` is in a response).
    remote_cseq: Option<u32>,
    /// The last received message the engine parsed: what `last.*` reads.
    last: Option<usize>,
    /// Received messages and their step (index into `entries`).
    received: Vec<(usize, usize)>,
    /// What each kind of capture would take from received messages: value →
    /// positions in `received`, oldest first (a lookup per value, not a scan).
    peer_values: HashMap<(Peer, Vec<u8>), Vec<usize>>,
    /// Top branches and methods of the requests this side sent.
    sent: Vec<(Vec<u8>, String)>,
    last_sent_method: Option<String>,
    entries: Vec<Entry>,
    notes: Vec<String>,
    needs_bytes: bool,
}

struct Resolver<'g, 'a> {
    g: &'g mut Gen<'a>,
    is_request: bool,
    ack_or_cancel: bool,
    /// Whether the CSeq number became `{{ cseq }}` (for the counter's update).
    cseq_slot: Option<bool>,
}

impl Resolve for Resolver<'_, '_> {
    fn tag(&mut self, value: &[u8]) -> Option<String> {
        let (own, theirs) = if self.g.uac {
            ("from_tag", "to_tag")
        } else {
            ("to_tag", "from_tag")
        };
        if self.g.own_tag.as_deref() == Some(value) {
            return Some(own.into());
        }
        if self.g.peer_tag.as_deref() == Some(value) {
            return Some(theirs.into());
        }
        self.g.capture_var(&[Peer::ToTag, Peer::FromTag], value)
    }

    fn branch(&mut self, value: &[u8], top_of_request: bool) -> Option<String> {
        let reused = self.g.sent.iter().any(|(b, _)| b == value);
        if top_of_request && !reused {
            return Some("branch".into());
        }
        self.g.capture_var(&[Peer::Branch], value)
    }

    fn cseq(&mut self, number: u32) -> Option<String> {
        if !self.is_request {
            if self.g.remote_cseq == Some(number) {
                return Some("cseq".into());
            }
            return self
                .g
                .capture_var(&[Peer::CSeq], number.to_string().as_bytes());
        }
        let expected = if self.ack_or_cancel {
            self.g.cseq_rt
        } else {
            self.g.cseq_rt + 1
        };
        let offset = *self
            .g
            .cseq_offset
            .get_or_insert(i64::from(number) - expected);
        let slot = i64::from(number) == expected + offset;
        self.cseq_slot = Some(slot);
        slot.then(|| "cseq".into())
    }
}

/// Comment text on one line: control characters escaped, at most 100 characters.
fn comment_text(bytes: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let mut s = String::new();
    for (i, c) in lossy.chars().enumerate() {
        if i == 100 {
            s.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    s
}

fn duration_text(nanos: u64) -> String {
    let ms = (nanos + 500_000) / 1_000_000;
    format!("{ms}ms")
}

impl<'a> Gen<'a> {
    fn step_optional(&self, entry: usize) -> bool {
        matches!(
            self.entries.get(entry).and_then(|e| e.step.as_ref()),
            Some(Step::Recv { optional: true, .. })
        )
    }

    /// A variable holding `value` at run time, captured from a received message
    /// (mandatory `recv` steps first, the latest first); None when none carries it.
    fn capture_var(&mut self, kinds: &[Peer], value: &[u8]) -> Option<String> {
        let msgs = self.msgs;
        for optional in [false, true] {
            let mut best: Option<(usize, Peer)> = None;
            for &kind in kinds {
                let Some(list) = self.peer_values.get(&(kind, value.to_vec())) else {
                    continue;
                };
                let found = list
                    .iter()
                    .rev()
                    .find(|&&r| self.step_optional(self.received[r].1) == optional);
                if let Some(&r) = found
                    && best.is_none_or(|(b, _)| r > b)
                {
                    best = Some((r, kind));
                }
            }
            let Some((r, kind)) = best else { continue };
            let (mi, entry) = self.received[r];
            let var = format!("{}_{}", kind.prefix(), msgs[mi].n);
            if let Some(Step::Recv { captures, .. }) = &mut self.entries[entry].step {
                let spec = CaptureSpec {
                    peer: kind,
                    var: var.clone(),
                };
                if !captures.contains(&spec) {
                    captures.push(spec);
                }
            }
            return Some(var);
        }
        None
    }

    fn header_comment(&self, m: &Msg<'_>, prev_ts: Option<u64>) -> String {
        let line = &m.bytes()[m.head.start_line.clone()];
        let when = match prev_ts {
            Some(t) => format!("+{:.1} ms", m.cap.ts_nanos.saturating_sub(t) as f64 / 1e6),
            None => "first".into(),
        };
        let dir = if m.from_uac == self.uac {
            "sent"
        } else {
            "received"
        };
        format!(
            "{}: frame {}, {when}, {dir}: {}",
            m.n,
            m.cap.frame,
            comment_text(line)
        )
    }

    fn run(&mut self) {
        let msgs = self.msgs;
        for (i, m) in msgs.iter().enumerate() {
            let prev_ts = i.checked_sub(1).map(|p| msgs[p].cap.ts_nanos);
            let comment = self.header_comment(m, prev_ts);
            if m.from_uac == self.uac {
                let gap = prev_ts.map_or(0, |p| m.cap.ts_nanos.saturating_sub(p));
                if self.opts.pauses && gap > MIN_PAUSE_NANOS {
                    // The message's comment goes above the wait before it.
                    self.entries.push(Entry {
                        comment: Some(comment),
                        step: Some(Step::Pause(gap)),
                    });
                    self.send(i, None);
                } else {
                    self.send(i, Some(comment));
                }
            } else {
                self.recv(i, comment);
            }
        }
    }

    fn send(&mut self, i: usize, comment: Option<String>) {
        let msgs = self.msgs;
        let m = &msgs[i];
        let invite_branch = |g: &Gen<'_>| {
            m.top_branch.as_ref().is_some_and(|b| {
                g.sent
                    .iter()
                    .any(|(s, meth)| s == b && meth.eq_ignore_ascii_case("INVITE"))
            })
        };
        if m.method_is("ACK") && invite_branch(self) {
            let why =
                "(the ACK of a non-2xx final response is sent by the INVITE transaction itself)";
            self.entries.push(Entry {
                comment: Some(comment.map_or(why.into(), |c| format!("{c}\n{why}"))),
                step: None,
            });
            self.after_send(m, None);
            return;
        }
        if self.opts.exact {
            let step = match std::str::from_utf8(m.bytes()) {
                Ok(text) if !text.contains("{{") => Step::Send {
                    e: Emitted {
                        scalar: yaml::quoted(text, SCALAR_INDENT),
                        raw: true,
                        hex: false,
                        kept: Vec::new(),
                        note: None,
                    },
                    want: m.bytes().to_vec(),
                },
                _ => {
                    self.needs_bytes = true;
                    Step::Bytes(yaml::base64(m.bytes()), m.bytes().to_vec())
                }
            };
            self.entries.push(Entry {
                comment,
                step: Some(step),
            });
            self.after_send(m, None);
            return;
        }
        if m.method_is("CANCEL")
            && invite_branch(self)
            && let Some(b) = &m.top_branch
            && self.capture_var(&[Peer::Branch], b).is_none()
        {
            self.notes.push(format!(
                "message {}: CANCEL written as `send: cancel` (no response before it carries the INVITE's branch)",
                m.n
            ));
            self.entries.push(Entry {
                comment,
                step: Some(Step::Cancel),
            });
            self.after_send(m, None);
            return;
        }
        let last = self
            .last
            .map(|l| self.msgs[l].cap.bytes.as_slice())
            .filter(|_| self.last.is_some_and(|l| self.msgs[l].parses));
        let view = View {
            own: self.own,
            peer: self.peer,
            call_id: self.call_id,
            transport: self.transport,
            last,
        };
        let is_request = matches!(m.kind, Kind::Request(_));
        let mut r = Resolver {
            is_request,
            ack_or_cancel: m.method_is("ACK") || m.method_is("CANCEL"),
            cseq_slot: None,
            g: self,
        };
        let subs = subst::substitutions(m.bytes(), &m.head, &view, &mut r);
        let cseq_slot = r.cseq_slot;
        let e = emit::emit(m.bytes(), &subs, SCALAR_INDENT);
        if let Some(note) = &e.note {
            self.notes
                .push(format!("message {} ({}): {note}", m.n, m.label()));
        }
        self.needs_bytes |= e.hex;
        // Whether the CSeq slot survived the emitting (all slots, or all but `len`).
        let cseq_kept = cseq_slot.map(|s| s && e.kept.iter().any(|k| k.slot == "cseq"));
        self.entries.push(Entry {
            comment,
            step: Some(Step::Send {
                e,
                want: m.bytes().to_vec(),
            }),
        });
        self.after_send(m, cseq_kept);
    }

    /// What sending `m` does to the engine's state; `cseq_slot`: whether its CSeq
    /// number was written `{{ cseq }}` (None: not written by us, or no CSeq).
    fn after_send(&mut self, m: &Msg<'_>, cseq_slot: Option<bool>) {
        let Kind::Request(method) = &m.kind else {
            return;
        };
        if !m.parses {
            // Sent as it is: the engine learns nothing from it.
            return;
        }
        let ack_or_cancel = m.method_is("ACK") || m.method_is("CANCEL");
        if !ack_or_cancel && let Some((n, _)) = &m.cseq {
            match cseq_slot {
                Some(true) => self.cseq_rt += 1,
                _ => {
                    self.cseq_rt = i64::from(*n);
                    self.cseq_offset = Some(0);
                }
            }
        }
        if let Some(b) = &m.top_branch {
            self.sent.push((b.clone(), method.clone()));
        }
        if !m.method_is("ACK") {
            self.last_sent_method = Some(method.clone());
        }
    }

    fn recv(&mut self, i: usize, comment: String) {
        let msgs = self.msgs;
        let m = &msgs[i];
        let (what, optional, in_reply_to) = match &m.kind {
            // `recv:` reads digits as a status code and `2xx` as a class.
            Kind::Request(method)
                if method.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    || (method.len() == 3 && method[1..].eq_ignore_ascii_case("xx")) =>
            {
                self.notes.push(format!(
                    "message {}: method `{method}` cannot be waited for (it reads as a status): left out",
                    m.n
                ));
                self.entries.push(Entry {
                    comment: Some(format!(
                        "{comment}\n(left out: the method reads as a status)"
                    )),
                    step: None,
                });
                return;
            }
            Kind::Request(method) => (method.to_ascii_uppercase(), false, None),
            Kind::Response(code) if (100..=699).contains(code) => {
                let method = m.cseq.as_ref().map(|(_, meth)| meth.to_ascii_uppercase());
                let reply_to = method.filter(|meth| {
                    crate::sip::header::is_token(meth.as_bytes())
                        && !self
                            .last_sent_method
                            .as_deref()
                            .is_some_and(|l| l.eq_ignore_ascii_case(meth))
                });
                (code.to_string(), *code < 200, reply_to)
            }
            Kind::Response(code) => {
                self.notes.push(format!(
                    "message {}: status {code} cannot be waited for (not 100-699): left out",
                    m.n
                ));
                self.entries.push(Entry {
                    comment: Some(format!("{comment}\n(left out: status out of range)")),
                    step: None,
                });
                return;
            }
        };
        if !m.parses {
            self.notes.push(format!(
                "message {} ({}): sipwright's parser refuses it, so a sipwright peer drops it and its `recv` waits in vain",
                m.n,
                m.label()
            ));
        }
        for key in Peer::values_in(m.bytes()) {
            self.peer_values
                .entry(key)
                .or_default()
                .push(self.received.len());
        }
        self.received.push((i, self.entries.len()));
        self.entries.push(Entry {
            comment: Some(comment),
            step: Some(Step::Recv {
                what,
                optional,
                in_reply_to,
                captures: Vec::new(),
            }),
        });
        if !m.parses {
            return;
        }
        self.last = Some(i);
        match &m.kind {
            Kind::Request(method) => {
                if !method.eq_ignore_ascii_case("ACK")
                    && let Some((n, _)) = &m.cseq
                {
                    self.remote_cseq = Some(*n);
                }
                if !self.uac && method.eq_ignore_ascii_case("INVITE") && m.to_tag.is_none() {
                    self.peer_tag = m.from_tag.clone();
                }
            }
            Kind::Response(_) => {
                let to_invite = m
                    .cseq
                    .as_ref()
                    .is_some_and(|(_, meth)| meth.eq_ignore_ascii_case("INVITE"));
                if self.uac && to_invite && m.to_tag.is_some() {
                    self.peer_tag = m.to_tag.clone();
                }
            }
        }
    }

    /// The scenario file.
    fn file(&self, summary: &Summary) -> String {
        let opts = self.opts;
        let (role, this, other, other_file) = if self.uac {
            ("uac", summary.uac, summary.uas, &opts.uas_file)
        } else {
            ("uas", summary.uas, summary.uac, &opts.uac_file)
        };
        let this_file = if self.uac {
            &opts.uac_file
        } else {
            &opts.uas_file
        };
        let mut out = String::new();
        let side = if self.uac { "UAC" } else { "UAS" };
        out.push_str(&format!(
            "# The {side} side of call {} in {}\n",
            comment_text(summary.call_id.as_bytes()),
            comment_text(opts.source.as_bytes())
        ));
        out.push_str(&format!(
            "# (frames {}-{}, {} messages over {}: this side {this}, its peer {other}),\n",
            summary.frames.0, summary.frames.1, summary.messages, summary.transport
        ));
        out.push_str("# written by `sipwright scenario from-pcap`.\n");
        if opts.exact {
            out.push_str("# --exact: every message is sent as captured, addresses and identifiers included.\n");
        } else {
            out.push_str(
                "# Addresses, ports, tags, branches, Call-ID, CSeq numbers and Content-Length are\n\
                 # template slots; every other byte is sent as captured.\n",
            );
        }
        if self.needs_bytes {
            out.push_str("# Some messages hold bytes that are not text: they use `{{ hex: … }}` or `bytes_base64:`.\n");
        }
        let transport = if summary.transport == "UDP" {
            String::new()
        } else {
            format!(" --transport {}", summary.transport.to_ascii_lowercase())
        };
        out.push_str(&format!(
            "# Run the pair: sipwright run {} --loopback{transport} --calls 1\n",
            comment_text(this_file.as_bytes())
        ));
        let labels: Vec<String> = self.msgs.iter().take(40).map(Msg::label).collect();
        let more = if self.msgs.len() > 40 { ", …" } else { "" };
        out.push_str(&format!(
            "description: {}\n",
            yaml::inline(&format!(
                "{side} side of a captured call: {}{more}",
                labels.join(", ")
            ))
        ));
        out.push_str(&format!("role: {role}\n"));
        out.push_str(&format!("peer: {}\n", yaml::inline(other_file)));
        if self.entries.iter().all(|e| e.step.is_none()) {
            out.push_str("steps: []\n");
        } else {
            out.push_str("steps:\n");
        }
        for e in &self.entries {
            if let Some(c) = &e.comment {
                for line in c.lines() {
                    out.push_str(&format!("  # {line}\n"));
                }
            }
            let Some(step) = &e.step else { continue };
            match step {
                Step::Send { e, .. } => {
                    out.push_str(&yaml::send_item(&e.scalar));
                    if e.raw {
                        out.push_str("    raw: true\n");
                    }
                }
                Step::Bytes(b64, _) => out.push_str(&format!("  - bytes_base64: \"{b64}\"\n")),
                Step::Cancel => out.push_str("  - send: cancel\n"),
                Step::Pause(nanos) => {
                    out.push_str(&format!("  - pause: {}\n", duration_text(*nanos)))
                }
                Step::Recv {
                    what,
                    optional,
                    in_reply_to,
                    captures,
                } => {
                    out.push_str(&format!("  - recv: {}\n", yaml::inline(what)));
                    if *optional {
                        out.push_str("    optional: true\n");
                    }
                    if let Some(m) = in_reply_to {
                        out.push_str(&format!("    in_reply_to: {}\n", yaml::inline(m)));
                    }
                    if !captures.is_empty() {
                        out.push_str("    capture:\n");
                        for c in captures {
                            out.push_str(&format!(
                                "      - header: {}\n        regex: {}\n        var: {}\n",
                                c.peer.header(),
                                yaml::quoted(c.peer.regex_text(), 0),
                                c.var
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    fn step_count(&self) -> usize {
        self.entries.iter().filter(|e| e.step.is_some()).count()
    }

    /// Compiles the file and renders every `send` template with the capture's
    /// values: the file must give back the captured bytes. A failure is a bug of
    /// the converter, reported rather than written.
    fn check(&self, name: &str, text: &str) -> Result<(), FromPcapError> {
        let plan = crate::scenario::compile_str(name, text, &[])
            .map_err(|e| FromPcapError::Internal(format!("{name} does not compile: {e}")))?;
        let mut sends = self.entries.iter().filter_map(|e| match &e.step {
            Some(Step::Send { e, want }) => Some((e.kept.as_slice(), want)),
            Some(Step::Bytes(_, want)) => Some((&[][..], want)),
            _ => None,
        });
        for step in &plan.steps {
            let StepKind::Send(SendSpec {
                what: SendStep::Message(t),
                ..
            }) = &step.kind
            else {
                continue;
            };
            let Some((kept, want)) = sends.next() else {
                return Err(FromPcapError::Internal(format!(
                    "{name}: more send steps than messages"
                )));
            };
            if !emit::renders_compiled(t, kept, &plan.vars, want) {
                return Err(FromPcapError::Internal(format!(
                    "{name}:{}: the step does not render the captured message",
                    step.line
                )));
            }
        }
        Ok(())
    }
}

/// The scenario pair of `call`.
pub fn generate(call: &Call, opts: &Options) -> Result<Pair, FromPcapError> {
    let call_id_text = String::from_utf8_lossy(&call.call_id).into_owned();
    let first = call
        .messages
        .iter()
        .position(|m| {
            matches!(
                Head::scan(&m.bytes).start(&m.bytes),
                Some(Start::Request { .. })
            )
        })
        .ok_or_else(|| FromPcapError::NoRequest {
            call_id: call_id_text.clone(),
            frame: call.messages.first().map_or(0, |m| m.frame),
        })?;
    let (a, b) = (call.messages[first].src, call.messages[first].dst);
    // The UAC's own address for its slots: where its Via says it listens, when that
    // is on the address it sent from (over TCP it sends from a port of its own).
    let a_own = sent_by(&call.messages[first].bytes)
        .filter(|v| v.ip() == a.ip())
        .unwrap_or(a);
    let mut msgs: Vec<Msg<'_>> = Vec::new();
    let mut left_out = first;
    let mut seen: HashSet<(bool, &[u8])> = HashSet::new();
    for cap in &call.messages[first..] {
        let from_uac = match (cap.src, cap.dst) {
            (s, d) if s == a && d == b => true,
            (s, d) if s == b && d == a => false,
            _ => {
                left_out += 1;
                continue;
            }
        };
        // A retransmission: the transaction layer sends those.
        if !seen.insert((from_uac, &cap.bytes)) {
            left_out += 1;
            continue;
        }
        match prepare(msgs.len() + 1, cap, from_uac) {
            Some(m) => msgs.push(m),
            None => left_out += 1,
        }
    }
    let uac_tag = msgs.first().and_then(|m| m.from_tag.clone());
    let uas_tag = msgs
        .iter()
        .filter(|m| !m.from_uac)
        .find_map(|m| match m.kind {
            Kind::Response(_) => m.to_tag.clone(),
            Kind::Request(_) => m.from_tag.clone(),
        });
    let transport = call.messages[first].transport.name();
    let side = |uac: bool| Gen {
        msgs: &msgs,
        call_id: &call.call_id,
        opts,
        uac,
        own: if uac { a_own } else { b },
        peer: if uac { b } else { a },
        transport,
        own_tag: if uac {
            uac_tag.clone()
        } else {
            uas_tag.clone()
        },
        peer_tag: None,
        cseq_rt: 0,
        cseq_offset: None,
        remote_cseq: None,
        last: None,
        received: Vec::new(),
        peer_values: HashMap::new(),
        sent: Vec::new(),
        last_sent_method: None,
        entries: Vec::new(),
        notes: Vec::new(),
        needs_bytes: false,
    };
    let mut uac = side(true);
    uac.run();
    let mut uas = side(false);
    uas.run();
    let summary = Summary {
        call_id: call_id_text,
        messages: msgs.len(),
        left_out,
        uac: a,
        uas: b,
        transport,
        frames: (
            msgs.first().map_or(0, |m| m.cap.frame),
            msgs.last().map_or(0, |m| m.cap.frame),
        ),
        uac_steps: uac.step_count(),
        uas_steps: uas.step_count(),
    };
    let uac_text = uac.file(&summary);
    let uas_text = uas.file(&summary);
    uac.check(&opts.uac_file, &uac_text)?;
    uas.check(&opts.uas_file, &uas_text)?;
    let mut notes: Vec<String> = Vec::new();
    for n in uac.notes.into_iter().chain(uas.notes) {
        if !notes.contains(&n) {
            notes.push(n);
        }
    }
    if left_out > 0 {
        notes.push(format!(
            "{left_out} message(s) of the call left out: retransmissions, messages between other addresses, or before the first request"
        ));
    }
    Ok(Pair {
        uac: uac_text,
        uas: uas_text,
        summary,
        notes,
        needs_bytes: uac.needs_bytes || uas.needs_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_pcap::extract::Transport;

    const A: &str = "10.0.0.1:5060";
    const B: &str = "10.0.0.2:5070";

    fn call(msgs: &[(u64, &str, &str, &str)]) -> Call {
        Call {
            call_id: b"c1@10.0.0.1".to_vec(),
            frames: msgs.len() as u64,
            messages: msgs
                .iter()
                .enumerate()
                .map(|(i, (ms, src, dst, text))| Captured {
                    frame: i as u64 + 1,
                    ts_nanos: 1_000_000_000 + ms * 1_000_000,
                    src: src.parse().unwrap(),
                    dst: dst.parse().unwrap(),
                    transport: Transport::Udp,
                    bytes: text.replace('\n', "\r\n").into_bytes(),
                })
                .collect(),
        }
    }

    fn opts(exact: bool, pauses: bool) -> Options {
        Options {
            exact,
            pauses,
            source: "test.pcap".into(),
            uac_file: "uac.yaml".into(),
            uas_file: "uas.yaml".into(),
        }
    }

    fn pair(msgs: &[(u64, &str, &str, &str)]) -> Pair {
        generate(&call(msgs), &opts(false, true)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn invite(cseq: u32) -> String {
        format!(
            "INVITE sip:bob@10.0.0.2:5070 SIP/2.0\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv\n\
             From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             To: <sip:bob@10.0.0.2:5070>\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: {cseq} INVITE\n\
             Contact: <sip:alice@10.0.0.1:5060>\n\
             Content-Length: 0\n\n"
        )
    }

    /// A response from B copying the INVITE's lines, with B's tag when `tag`.
    fn answer(status: &str, cseq: &str, branch: &str, tag: bool) -> String {
        let tag = if tag { ";tag=tb" } else { "" };
        format!(
            "SIP/2.0 {status}\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\n\
             From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             To: <sip:bob@10.0.0.2:5070>{tag}\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: {cseq}\n\
             Contact: <sip:bob@10.0.0.2:5070>\n\
             Content-Length: 0\n\n"
        )
    }

    #[test]
    fn cancel_reuses_the_invite_branch_and_the_transaction_acks() {
        let cancel = "CANCEL sip:bob@10.0.0.2:5070 SIP/2.0\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv\n\
             From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             To: <sip:bob@10.0.0.2:5070>\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: 1 CANCEL\n\
             Content-Length: 0\n\n";
        let ack = "ACK sip:bob@10.0.0.2:5070 SIP/2.0\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv\n\
             From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             To: <sip:bob@10.0.0.2:5070>;tag=tb\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: 1 ACK\n\
             Content-Length: 0\n\n";
        let ok_cancel = answer("200 OK", "1 CANCEL", "z9hG4bK-inv", true);
        let p = pair(&[
            (0, A, B, &invite(1)),
            (
                1,
                B,
                A,
                &answer("180 Ringing", "1 INVITE", "z9hG4bK-inv", true),
            ),
            (500, A, B, cancel),
            (501, B, A, &ok_cancel),
            (
                502,
                B,
                A,
                &answer("487 Request Terminated", "1 INVITE", "z9hG4bK-inv", true),
            ),
            (503, A, B, ack),
        ]);
        // The CANCEL's branch is the INVITE's, taken from the 180's Via.
        assert!(p.uac.contains("var: branch_2"), "{}", p.uac);
        assert!(p.uac.contains("branch={{ branch_2 }}"), "{}", p.uac);
        assert!(p.uac.contains("in_reply_to: INVITE"), "{}", p.uac);
        assert!(
            p.uac.contains("sent by the INVITE transaction itself"),
            "{}",
            p.uac
        );
        assert_eq!(p.uac.matches("- send:").count(), 2, "{}", p.uac);
        // The UAS answers the CANCEL and then the INVITE from the CANCEL's copies.
        assert!(p.uas.contains("- recv: CANCEL"), "{}", p.uas);
        assert!(p.uas.contains("- recv: ACK"), "{}", p.uas);
        assert!(p.uas.contains("CSeq: {{ cseq }} INVITE"), "{}", p.uas);
        assert_eq!(p.uas.matches("{{ last.via }}").count(), 3, "{}", p.uas);
        assert!(p.uac.contains("- pause: 499ms"), "{}", p.uac);
    }

    #[test]
    fn callee_hangs_up_with_its_own_cseq_and_tags_by_direction() {
        let ack = "ACK sip:bob@10.0.0.2:5070 SIP/2.0\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-ack\n\
             From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             To: <sip:bob@10.0.0.2:5070>;tag=tb\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: 314 ACK\n\
             Content-Length: 0\n\n";
        let bye = "BYE sip:alice@10.0.0.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-bye\n\
             From: <sip:bob@10.0.0.2:5070>;tag=tb\n\
             To: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: 7000 BYE\n\
             Content-Length: 0\n\n";
        let bye_ok = "SIP/2.0 200 OK\n\
             Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-bye\n\
             From: <sip:bob@10.0.0.2:5070>;tag=tb\n\
             To: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: 7000 BYE\n\
             Content-Length: 0\n\n";
        let p = pair(&[
            (0, A, B, &invite(314)),
            (
                1,
                B,
                A,
                &answer("200 OK", "314 INVITE", "z9hG4bK-inv", true),
            ),
            (2, A, B, ack),
            (3, B, A, bye),
            (4, A, B, bye_ok),
        ]);
        assert!(p.uac.contains("CSeq: {{ cseq }} INVITE"), "{}", p.uac);
        assert!(p.uac.contains("CSeq: {{ cseq }} ACK"), "{}", p.uac);
        assert!(
            p.uac
                .contains("To: <sip:bob@{{ remote_ip }}:{{ remote_port }}>;tag={{ to_tag }}"),
            "{}",
            p.uac
        );
        assert!(
            p.uas
                .contains("BYE sip:alice@{{ remote_ip }}:{{ remote_port }} SIP/2.0"),
            "{}",
            p.uas
        );
        assert!(
            p.uas
                .contains("From: <sip:bob@{{ local_ip }}:{{ local_port }}>;tag={{ to_tag }}"),
            "{}",
            p.uas
        );
        assert!(
            p.uas
                .contains("To: <sip:alice@{{ remote_ip }}:{{ remote_port }}>;tag={{ from_tag }}"),
            "{}",
            p.uas
        );
        assert!(p.uas.contains("CSeq: {{ cseq }} BYE"), "{}", p.uas);
        assert!(p.uac.contains("- recv: BYE"), "{}", p.uac);
        // No pause: every message came within 20 ms of the one before.
        assert!(!p.uac.contains("pause") && !p.uas.contains("pause"));
    }

    #[test]
    fn a_response_to_an_older_request_captures_what_it_copies() {
        let prack = "PRACK sip:bob@10.0.0.2:5070 SIP/2.0\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-prack\n\
             From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             To: <sip:bob@10.0.0.2:5070>;tag=tb\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: 2 PRACK\n\
             RAck: 1 1 INVITE\n\
             Content-Length: 0\n\n";
        let prack_ok = "SIP/2.0 200 OK\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-prack\n\
             From: <sip:alice@10.0.0.1:5060>;tag=ta\n\
             To: <sip:bob@10.0.0.2:5070>;tag=tb\n\
             Call-ID: c1@10.0.0.1\n\
             CSeq: 2 PRACK\n\
             Content-Length: 0\n\n";
        let p = pair(&[
            (0, A, B, &invite(1)),
            (
                1,
                B,
                A,
                &answer("183 Session Progress", "1 INVITE", "z9hG4bK-inv", true),
            ),
            (2, A, B, prack),
            (3, B, A, prack_ok),
            (4, B, A, &answer("200 OK", "1 INVITE", "z9hG4bK-inv", true)),
        ]);
        // The 200 answers the INVITE while the PRACK was received last.
        assert!(p.uas.contains("branch={{ branch_1 }}"), "{}", p.uas);
        assert!(p.uas.contains("CSeq: {{ cseq_1 }} INVITE"), "{}", p.uas);
        assert!(p.uas.contains("regex: \"^\\\\s*(\\\\d+)\""), "{}", p.uas);
        assert!(p.uac.contains("CSeq: {{ cseq }} PRACK"), "{}", p.uac);
        assert!(p.uac.contains("in_reply_to: INVITE"), "{}", p.uac);
    }

    #[test]
    fn exact_sends_the_bytes_and_no_pauses_drops_the_waits() {
        let msgs = [
            (0, A, B, invite(1)),
            (
                900,
                B,
                A,
                answer("486 Busy Here", "1 INVITE", "z9hG4bK-inv", true),
            ),
        ];
        let refs: Vec<(u64, &str, &str, &str)> = msgs
            .iter()
            .map(|(t, a, b, m)| (*t, *a, *b, m.as_str()))
            .collect();
        let p = generate(&call(&refs), &opts(true, false)).unwrap();
        assert!(p.uac.contains("Call-ID: c1@10.0.0.1\\r\\n"), "{}", p.uac);
        assert!(!p.uac.contains("{{") && !p.uas.contains("{{"), "{}", p.uas);
        assert!(!p.uas.contains("pause"), "{}", p.uas);
        assert_eq!(p.uac.matches("raw: true").count(), 1);
        let p = generate(&call(&refs), &opts(false, true)).unwrap();
        assert!(p.uas.contains("- pause: 900ms"), "{}", p.uas);
    }

    #[test]
    fn messages_elsewhere_and_retransmissions_are_left_out() {
        let proxy = "10.0.0.9:5060";
        let inv = invite(1);
        let trying = answer("100 Trying", "1 INVITE", "z9hG4bK-inv", false);
        let p = pair(&[
            (0, B, A, &trying),
            (1, A, B, &inv),
            (2, A, B, &inv),
            (3, B, proxy, &inv),
            (4, B, A, &trying),
        ]);
        assert_eq!(p.summary.messages, 2);
        assert_eq!(p.summary.left_out, 3);
        assert!(
            p.notes.iter().any(|n| n.contains("3 message(s)")),
            "{:?}",
            p.notes
        );
        assert_eq!(p.summary.uac, A.parse().unwrap());
    }

    #[test]
    fn methods_that_read_as_statuses_are_left_out_of_recv() {
        for method in ["1.5", "200", "2xx", "true", "x~!%*"] {
            let req = invite(1).replace("INVITE sip", &format!("{method} sip"));
            let p = pair(&[(0, A, B, &req)]);
            let waits = p.uas.contains("- recv:");
            assert_eq!(waits, method.len() > 3, "{method}: {}", p.uas);
        }
    }

    #[test]
    fn a_call_with_no_request_is_an_error() {
        let e = generate(
            &call(&[(0, B, A, &answer("200 OK", "1 INVITE", "x", true))]),
            &opts(false, true),
        )
        .unwrap_err();
        assert!(
            matches!(e, FromPcapError::NoRequest { frame: 1, .. }),
            "{e}"
        );
    }

    /// Inputs built to make the generator slow (thousands of addresses and `[` in a
    /// header, thousands of messages whose values must be looked up): every step is
    /// near-linear, so these finish in well under a second (the bound is loose for
    /// a loaded machine).
    #[test]
    fn big_inputs_stay_fast() {
        let start = std::time::Instant::now();
        let many = "10.0.0.1:5060 [ ".repeat(3000);
        let head = invite(1).replace("Content-Length", &format!("X-Many: {many}\nContent-Length"));
        let mut msgs: Vec<(u64, &str, &str, String)> = vec![(0, A, B, head)];
        for i in 0..1500u32 {
            let req = invite(i + 2)
                .replace("INVITE sip", "INFO sip")
                .replace(" INVITE", " INFO")
                .replace("z9hG4bK-inv", &format!("z9hG4bK-{i}"));
            msgs.push((1, A, B, req));
            // Responses that copy nothing byte for byte: each looks its values up.
            let resp = answer(
                "200 OK",
                &format!("{} INFO", i + 2),
                &format!("z9hG4bK-{i}"),
                true,
            )
            .replace("Via: ", "Via:  ");
            msgs.push((1, B, A, resp));
        }
        let refs: Vec<(u64, &str, &str, &str)> = msgs
            .iter()
            .map(|(t, a, b, m)| (*t, *a, *b, m.as_str()))
            .collect();
        let p = pair(&refs);
        assert_eq!(p.summary.messages, 3001);
        assert!(p.uas.contains("branch={{ branch_3000 }}"));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            start.elapsed()
        );
    }

    /// Random damage to a call's messages: the generator never panics, and what it
    /// writes always compiles and renders the captured bytes (checked in `generate`).
    #[test]
    fn damaged_calls_still_give_checked_scenarios() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0xdead);
        let base = [
            invite(1),
            answer("180 Ringing", "1 INVITE", "z9hG4bK-inv", true),
            answer("200 OK", "1 INVITE", "z9hG4bK-inv", true),
        ];
        let junk: [&[u8]; 10] = [
            b"\r",
            b"\n",
            b"\0",
            b"{{",
            b"\xff",
            b" ",
            b":",
            b";tag=",
            b"10.0.0.1:5060",
            b"\t",
        ];
        for _ in 0..300 {
            let mut c = call(&[
                (0, A, B, &base[0]),
                (30, B, A, &base[1]),
                (60, B, A, &base[2]),
            ]);
            for m in &mut c.messages {
                for _ in 0..rng.random_range(0..4) {
                    let at = rng.random_range(0..=m.bytes.len());
                    let j = junk[rng.random_range(0..junk.len())];
                    m.bytes.splice(at..at, j.iter().copied());
                }
                if rng.random_bool(0.1) {
                    let cut = rng.random_range(0..m.bytes.len());
                    m.bytes.truncate(cut);
                }
            }
            match generate(&c, &opts(rng.random_bool(0.2), true)) {
                Ok(_) | Err(FromPcapError::NoRequest { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

//! Typed mirror of the YAML scenario file (`deny_unknown_fields`, spans kept for
//! diagnostics). Shapes only: what a value means is decided in `compile.rs`, so that
//! a wrong value becomes a precise diagnostic there instead of a generic serde error.
//!
//! Scalars that have a meaning beyond "text" (statuses, durations, variable values)
//! are read as `String`: serde-saphyr hands numbers to a `String` target with their
//! original spelling, so `recv: 200` and `timeout: 5` reach the compiler intact.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDef {
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub role: Option<Spanned<String>>,
    pub vars: Option<VarsDef>,
    pub timeout: Option<Spanned<String>>,
    /// Built-in scenario `--loopback` runs against this one.
    pub peer: Option<Spanned<String>>,
    pub media: Option<Spanned<MediaDef>>,
    /// Digest credentials: 401/407 challenges to our requests are answered with them.
    pub auth: Option<Spanned<AuthDef>>,
    /// Per-call data file (`--inject` on the command line replaces it).
    pub inject: Option<Spanned<InjectDef>>,
    /// Optional here so a missing list is reported by the compiler with a hint.
    pub steps: Option<Vec<Spanned<StepEntry>>>,
}

/// The `media:` block: codecs, telephone-event, ptime, direction, recording, echo.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaDef {
    pub codecs: Option<Spanned<Vec<Spanned<String>>>>,
    pub telephone_event: Option<Spanned<String>>,
    pub ptime: Option<Spanned<String>>,
    pub direction: Option<Spanned<String>>,
    pub record: Option<Spanned<String>>,
    pub echo: Option<Spanned<bool>>,
    pub rtcp_mux: Option<Spanned<bool>>,
    /// SDES-SRTP suites in preference order.
    pub srtp: Option<Spanned<Vec<Spanned<String>>>>,
    pub srtp_required: Option<Spanned<bool>>,
    pub srtp_mki: Option<Spanned<String>>,
    pub srtp_kdr: Option<Spanned<String>>,
}

/// The `inject:` block: a CSV (or SIPp `-inf`) file whose columns templates name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectDef {
    /// Relative to the scenario file's folder.
    pub file: Spanned<String>,
    /// `sequential`, `random` or `per-worker` (default: the file's own, else sequential).
    pub order: Option<Spanned<String>>,
}

/// The `auth:` block: credentials for digest challenges (templated).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthDef {
    pub username: Spanned<String>,
    pub password: Spanned<String>,
    /// Answer only challenges of this realm (default: any).
    pub realm: Option<Spanned<String>>,
}

/// The `challenge:` step (UAS digest server): what the 401/407 offers and what the
/// retried request's credentials are checked against. Templated values are
/// compiled in `compile_challenge.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeDef {
    /// Default: the local IP.
    pub realm: Option<Spanned<String>>,
    /// MD5 (default), MD5-sess, SHA-256(-sess), SHA-512-256(-sess).
    pub algorithm: Option<Spanned<String>>,
    /// `auth` (default), `auth-int` or `none`.
    pub qop: Option<Spanned<String>>,
    /// 407 + Proxy-Authenticate instead of 401 + WWW-Authenticate.
    pub proxy: Option<Spanned<bool>>,
    /// Optional here so a missing password gets a diagnostic at the step.
    pub password: Option<Spanned<String>>,
    /// The user name the credentials must carry (default: any).
    pub username: Option<Spanned<String>>,
    /// An injection column: the call takes the row holding the credentials' user.
    pub lookup: Option<Spanned<String>>,
    /// Credentials on a nonce older than this get one `stale=true` challenge.
    pub stale_after: Option<Spanned<String>>,
    /// Sent in the challenge; the credentials must return it unchanged.
    pub opaque: Option<Spanned<String>>,
}

/// `expect_media:` thresholds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectMediaDef {
    pub min_packets: Option<Spanned<String>>,
    pub max_loss_pct: Option<Spanned<String>>,
    pub max_jitter_ms: Option<Spanned<String>>,
    /// SRTP packets allowed to fail authentication (default 0 on SRTP streams).
    pub max_auth_failures: Option<Spanned<String>>,
}

/// A step as written: a map of keys, or a bare word (`- silence`, `- stop_media`).
#[derive(Debug)]
pub struct StepEntry(pub StepDef);

impl std::ops::Deref for StepEntry {
    type Target = StepDef;
    fn deref(&self) -> &StepDef {
        &self.0
    }
}

impl<'de> Deserialize<'de> for StepEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StepEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step (a map such as `send: ...`, or `silence` / `stop_media`)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StepEntry, E> {
                Ok(StepEntry(StepDef {
                    bare: Some(v.trim().to_string()),
                    ..StepDef::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StepEntry, A::Error> {
                StepDef::deserialize(de::value::MapAccessDeserializer::new(map)).map(StepEntry)
            }
        }
        d.deserialize_any(V)
    }
}

/// `vars:` in file order (slot numbers follow it, which keeps plans reproducible).
#[derive(Debug, Default)]
pub struct VarsDef(pub Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for VarsDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VarsDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of variable names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VarsDef, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(VarsDef(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One step: exactly one action key plus the modifiers that action accepts. All keys
/// live in one struct because the action is only known once the whole map is read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// A bare-word step (`- silence`); not a YAML key.
    #[serde(skip)]
    pub bare: Option<String>,
    pub send: Option<Spanned<String>>,
    /// A file's bytes as the message (relative to the scenario's folder).
    pub send_file: Option<Spanned<String>>,
    /// The message as base64, sent untouched.
    pub bytes_base64: Option<Spanned<String>>,
    pub recv: Option<Spanned<String>>,
    pub pause: Option<Spanned<String>>,
    pub label: Option<Spanned<String>>,
    pub goto: Option<Spanned<String>>,
    /// `goto`: jump at most this many times per call (an integer or `{{ var }}`).
    pub times: Option<Spanned<String>>,
    /// An action on its own, a modifier of `recv`.
    pub capture: Option<Spanned<Vec<Spanned<CaptureDef>>>>,
    pub assert: Option<Spanned<ConditionDef>>,

    pub raw: Option<Spanned<bool>>,
    /// `send_file`: `false` sends the file's bytes untouched (default: a template).
    pub template: Option<Spanned<bool>>,
    /// Sends over tcp/tls: the message written in these pieces, with delays.
    pub chunks: Option<Spanned<Vec<Spanned<ChunkDef>>>>,
    /// Sends: the next send's message goes in the same write.
    pub pipeline: Option<Spanned<bool>>,
    pub optional: Option<Spanned<bool>>,
    pub timeout: Option<Spanned<String>>,
    pub in_reply_to: Option<Spanned<String>>,
    pub rtd: Option<Spanned<String>>,
    #[serde(rename = "if")]
    pub when: Option<Spanned<ConditionDef>>,

    pub play: Option<Spanned<String>>,
    pub play_pcap: Option<Spanned<String>>,
    pub silence: Option<Spanned<String>>,
    pub stop_media: Option<Spanned<String>>,
    pub dtmf: Option<Spanned<String>>,
    pub expect_media: Option<Spanned<ExpectMediaDef>>,
    pub expect_dtmf: Option<Spanned<String>>,
    /// UAS digest server: 401/407, then the retried request's credentials checked.
    pub challenge: Option<Spanned<ChallengeDef>>,
    /// `play`: repeat the file.
    #[serde(rename = "loop")]
    pub looped: Option<Spanned<bool>>,
    /// `play`: `bye` or a duration.
    pub until: Option<Spanned<String>>,
    /// `play_pcap`: `SSRC` (decimal or 0x hex) or `IP:PORT`.
    pub stream: Option<Spanned<String>>,
    /// `dtmf`: tone length, pause between tones, volume (−dBm0), `rfc4733` or `info`.
    pub duration: Option<Spanned<String>>,
    pub gap: Option<Spanned<String>>,
    pub volume: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
}

/// One piece of `chunks:`: `bytes: N` (or `rest: true`, the remainder) written
/// `after` the previous piece (the first: after the step starts).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkDef {
    pub bytes: Option<Spanned<String>>,
    pub rest: Option<Spanned<bool>>,
    pub after: Option<Spanned<String>>,
}

/// Action keys, in the order error messages list them.
pub const STEP_ACTIONS: &[&str] = &[
    "send",
    "send_file",
    "bytes_base64",
    "recv",
    "pause",
    "label",
    "goto",
    "capture",
    "assert",
    "play",
    "play_pcap",
    "silence",
    "stop_media",
    "dtmf",
    "expect_media",
    "expect_dtmf",
    "challenge",
];

/// Modifiers each action accepts.
pub fn step_modifiers(action: &str) -> &'static [&'static str] {
    match action {
        "send" => &["raw", "chunks", "pipeline"],
        "send_file" => &["raw", "template", "chunks", "pipeline"],
        "bytes_base64" => &["chunks", "pipeline"],
        "recv" => &["optional", "timeout", "in_reply_to", "rtd", "capture"],
        "goto" => &["if", "times"],
        "play" => &["loop", "until"],
        "play_pcap" => &["loop", "until", "stream"],
        "dtmf" => &["duration", "gap", "volume", "mode"],
        "expect_dtmf" | "challenge" => &["timeout"],
        _ => &[],
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureDef {
    pub header: Option<Spanned<String>>,
    pub body: Option<Spanned<bool>>,
    pub start_line: Option<Spanned<bool>>,
    pub regex: Option<Spanned<String>>,
    pub var: Option<Spanned<String>>,
    pub required: Option<Spanned<bool>>,
}

/// `if:` / `assert:` — one subject (var, header, body, start_line) and one test
/// (equals, matches, exists), optionally negated.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    pub var: Option<Spanned<String>>,
    pub header: Option<Spanned<String>>,
    pub body: Option<Spanned<bool>>,
    pub start_line: Option<Spanned<bool>>,
    pub equals: Option<Spanned<String>>,
    pub matches: Option<Spanned<String>>,
    pub exists: Option<Spanned<bool>>,
    pub not: Option<Spanned<bool>>,
}

/// Schema-less view of a YAML document with positions, parsed only after a serde
/// error, to tell which key path the error's line and column belong to.
#[derive(Debug)]
pub struct Node {
    pub line: u64,
    pub column: u64,
    pub kind: NodeKind,
}

#[derive(Debug)]
pub enum NodeKind {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn pos(&self) -> (u64, u64) {
        (self.line, self.column)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<NodeKind>::deserialize(d)?;
        Ok(Node {
            line: s.referenced.line(),
            column: s.referenced.column(),
            kind: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeKind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(v.to_string()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
                Ok(NodeKind::Scalar(String::new()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
                NodeKind::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(NodeKind::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(NodeKind::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

//! The torture pack: an index (`pack.yaml`) naming messages kept as files (or
//! made by a generator), each with its category and the reaction expected from
//! a well-behaved server. The pack under `scenarios/torture/` is built into the
//! binary; `--pack DIR` reads another one from disk.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// The built-in pack's index and files, as shipped under `scenarios/torture/`.
const INDEX: &str = include_str!("../../scenarios/torture/pack.yaml");

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../../scenarios/torture/", $name)))),*]
    };
}

/// Every message file of the built-in pack (a test checks that this list and the
/// directory agree).
pub(crate) const FILES: &[(&str, &[u8])] = embedded![
    "ack-without-invite.sip",
    "bad-header-line.sip",
    "binary-body.sip",
    "binary-garbage.sip",
    "bye-unknown-dialog.sip",
    "cancel-unknown.sip",
    "content-length-long.sip",
    "content-length-negative.sip",
    "content-length-short.sip",
    "content-length-twice.sip",
    "crlf-keepalive.sip",
    "cseq-method-mismatch.sip",
    "duplicate-call-id.sip",
    "duplicate-from.sip",
    "empty-datagram.sip",
    "escaped-uri.sip",
    "folded-headers.sip",
    "http-request.sip",
    "invalid-utf8-display-name.sip",
    "missing-call-id.sip",
    "missing-cseq.sip",
    "missing-from-to.sip",
    "missing-via.sip",
    "multipart-body.sip",
    "negative-cseq.sip",
    "nul-in-header.sip",
    "odd-whitespace.sip",
    "quoted-display-names.sip",
    "request-line-garbage.sip",
    "rfc2543-via.sip",
    "stray-response.sip",
    "truncated-head.sip",
    "unknown-method.sip",
    "unknown-scheme-request-uri.sip",
    "unknown-schemes.sip",
    "version-unsupported.sip",
];

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Index { file: String, message: String },
    #[error("{file}: message `{name}`: {why}")]
    Message {
        file: String,
        name: String,
        why: String,
    },
    #[error("no message named {names} in the pack (it has: {known})")]
    Unknown { names: String, known: String },
}

/// What a server did with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// A 2xx.
    Accept(u16),
    /// A final response of 300 or more.
    Reject(u16),
    /// Provisional responses only, no final one in time.
    Provisional(u16),
    /// No response at all.
    Ignore,
    /// We could not send it (the socket refused: too large, no route).
    NotSent(String),
}

impl fmt::Display for Reaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reaction::Accept(c) => write!(f, "accept {c}"),
            Reaction::Reject(c) => write!(f, "reject {c}"),
            Reaction::Provisional(c) => write!(f, "only {c}"),
            Reaction::Ignore => f.write_str("ignore"),
            Reaction::NotSent(_) => f.write_str("not sent"),
        }
    }
}

/// The reaction a well-behaved server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expectation {
    Accept,
    /// This status exactly.
    Reject(u16),
    /// Any status of this class (`reject 4xx`: 4).
    RejectClass(u16),
    Ignore,
}

impl Expectation {
    pub fn parse(s: &str) -> Result<Expectation, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let bad = || {
            format!("expect `{s}`: use accept, ignore, reject NNN (e.g. reject 400) or reject Nxx")
        };
        match words.as_slice() {
            ["accept"] => Ok(Expectation::Accept),
            ["ignore"] => Ok(Expectation::Ignore),
            ["reject", code] => match code.as_bytes() {
                [c @ b'3'..=b'6', b'x', b'x'] => Ok(Expectation::RejectClass(u16::from(c - b'0'))),
                _ => match code.parse::<u16>() {
                    Ok(n) if (300..700).contains(&n) => Ok(Expectation::Reject(n)),
                    _ => Err(bad()),
                },
            },
            _ => Err(bad()),
        }
    }

    pub fn matches(self, r: &Reaction) -> bool {
        match (self, r) {
            (Expectation::Accept, Reaction::Accept(_)) => true,
            (Expectation::Ignore, Reaction::Ignore) => true,
            (Expectation::Reject(want), Reaction::Reject(got)) => want == *got,
            (Expectation::RejectClass(class), Reaction::Reject(got)) => got / 100 == class,
            _ => false,
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Accept => f.write_str("accept"),
            Expectation::Reject(c) => write!(f, "reject {c}"),
            Expectation::RejectClass(c) => write!(f, "reject {c}xx"),
            Expectation::Ignore => f.write_str("ignore"),
        }
    }
}

/// One message of the pack.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub category: String,
    pub expect: Expectation,
    pub description: String,
    /// The message with its placeholders (see [`super::substitute`]).
    pub template: Vec<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexDef {
    messages: Vec<EntryDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDef {
    name: String,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    generate: Option<String>,
    category: String,
    expect: String,
    description: String,
}

/// The pack built into the binary.
pub fn builtin() -> Result<Vec<Case>, PackError> {
    load_index("builtin:torture/pack.yaml", INDEX, |file| {
        FILES
            .iter()
            .find(|(n, _)| *n == file)
            .map(|(_, b)| b.to_vec())
            .ok_or_else(|| format!("no file `{file}` in the built-in pack"))
    })
}

/// A pack on disk: `dir/pack.yaml` and the files it names (relative to `dir`).
pub fn from_dir(dir: &Path) -> Result<Vec<Case>, PackError> {
    let index = dir.join("pack.yaml");
    let text = std::fs::read_to_string(&index).map_err(|source| PackError::Read {
        path: index.display().to_string(),
        source,
    })?;
    load_index(&index.display().to_string(), &text, |file| {
        let path = dir.join(file);
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    })
}

fn load_index(
    index_name: &str,
    text: &str,
    mut read: impl FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<Vec<Case>, PackError> {
    let def: IndexDef = serde_saphyr::from_str(text).map_err(|e| PackError::Index {
        file: index_name.to_string(),
        message: e.to_string(),
    })?;
    let mut cases: Vec<Case> = Vec::with_capacity(def.messages.len());
    for e in def.messages {
        let fail = |why: String| PackError::Message {
            file: index_name.to_string(),
            name: e.name.clone(),
            why,
        };
        if e.name.is_empty() || e.name.contains(char::is_whitespace) {
            return Err(fail("a name is one word".into()));
        }
        if cases.iter().any(|c| c.name == e.name) {
            return Err(fail("named twice".into()));
        }
        let expect = Expectation::parse(&e.expect).map_err(&fail)?;
        let template = match (&e.file, &e.generate) {
            (Some(f), None) => read(f).map_err(&fail)?,
            (None, Some(g)) => generate(g).map_err(&fail)?,
            _ => return Err(fail("needs either `file` or `generate`".into())),
        };
        cases.push(Case {
            name: e.name,
            category: e.category,
            expect,
            description: e.description,
            template,
        });
    }
    Ok(cases)
}

/// Keeps the cases named in `only` (all when it is empty), in pack order.
pub fn select(cases: Vec<Case>, only: &[String]) -> Result<Vec<Case>, PackError> {
    if only.is_empty() {
        return Ok(cases);
    }
    let unknown: Vec<&str> = only
        .iter()
        .filter(|n| !cases.iter().any(|c| &c.name == *n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(PackError::Unknown {
            names: unknown.join(", "),
            known: cases
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(cases
        .into_iter()
        .filter(|c| only.contains(&c.name))
        .collect())
}

/// The request line and headers every generated message starts with.
const GENERATED_HEAD: &str = "OPTIONS sip:service@$TARGET SIP/2.0\r\n\
Via: SIP/2.0/UDP $LOCAL;branch=$BRANCH;rport\r\n";
const GENERATED_TAIL: &str = "Max-Forwards: 70\r\n\
From: <sip:torture@sipwright.invalid>;tag=$TAG\r\n\
To: <sip:service@$TARGET>\r\n\
Call-ID: $CALLID\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

/// Largest message a generator makes: what fits in a UDP datagram over IPv4.
const GENERATED_MAX: usize = 65_000;

/// A message too large to keep as a file: `vias:N`, `header:N`, `headers:N`.
fn generate(spec: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("generate `{spec}`: use vias:N, header:BYTES or headers:BYTES");
    let (kind, n) = spec.split_once(':').ok_or_else(bad)?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    let mut m = GENERATED_HEAD.to_string();
    match kind.trim() {
        "vias" => {
            // Hops below ours, from the documentation ranges (RFC 5737).
            for i in 1..n.max(1) {
                m.push_str(&format!(
                    "Via: SIP/2.0/UDP 192.0.2.{}:{};branch=z9hG4bK-hop{i:04}\r\n",
                    i % 250 + 1,
                    5060 + i % 1000
                ));
            }
        }
        "header" => {
            m.push_str("X-Torture-Long: ");
            m.extend((0..n).map(|i| char::from(b'a' + (i % 26) as u8)));
            m.push_str("\r\n");
        }
        "headers" => {
            let mut i = 0;
            while m.len() + GENERATED_TAIL.len() < n {
                let line = format!("X-Torture-Filler-{i:04}: {}\r\n", "f".repeat(80));
                m.push_str(&line);
                i += 1;
            }
        }
        _ => return Err(bad()),
    }
    m.push_str(GENERATED_TAIL);
    if m.len() > GENERATED_MAX {
        return Err(format!(
            "generate `{spec}`: {} bytes, more than a UDP datagram holds ({GENERATED_MAX})",
            m.len()
        ));
    }
    Ok(m.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_pack_loads_and_ships_every_file() {
        let cases = builtin().unwrap();
        assert!(cases.len() >= 40, "{}", cases.len());
        for c in &cases {
            assert!(
                ["valid", "invalid", "field"].contains(&c.category.as_str()),
                "{}",
                c.name
            );
            assert!(!c.description.is_empty(), "{}", c.name);
        }
        // Every file in the directory is embedded and named by the index.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/torture");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sip"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
        let from_disk = from_dir(&dir).unwrap();
        assert_eq!(from_disk.len(), cases.len());
        for (a, b) in cases.iter().zip(&from_disk) {
            assert_eq!((&a.name, &a.template), (&b.name, &b.template));
        }
        for (file, _) in FILES {
            assert!(
                INDEX.contains(&format!("file: {file}")),
                "{file} not in pack.yaml"
            );
        }
    }

    #[test]
    fn every_placeholder_in_the_pack_is_one_we_replace() {
        let vars = [
            ("TARGET", "t"),
            ("LOCAL", "l"),
            ("CALLID", "c"),
            ("BRANCH", "b"),
            ("TAG", "g"),
        ];
        for c in builtin().unwrap() {
            let sent = crate::torture::substitute(&c.template, &vars);
            let head_len = sent.len() - (c.template.len() - head_len(&c.template));
            let left = sent[..head_len]
                .windows(2)
                .any(|w| w[0] == b'$' && w[1].is_ascii_uppercase());
            assert!(!left, "{}: a `$NAME` is left in the head", c.name);
        }
    }

    /// Bytes of `m`'s head (what `substitute` works on).
    fn head_len(m: &[u8]) -> usize {
        let crlf = m.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        let lf = m.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
        match (crlf, lf) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(m.len()),
        }
    }

    #[test]
    fn the_pack_has_every_kind_the_issue_lists() {
        let cases = builtin().unwrap();
        let has = |n: &str| cases.iter().any(|c| c.name == n);
        for n in [
            "escaped-uri",
            "folded-headers",
            "odd-whitespace",
            "long-header",
            "many-vias",
            "unknown-schemes",
            "multipart-body",
            "content-length-long",
            "content-length-short",
            "missing-call-id",
            "nul-in-header",
            "invalid-utf8-display-name",
            "negative-cseq",
            "duplicate-from",
            "request-line-garbage",
            "truncated-head",
            "thousand-vias",
            "empty-datagram",
            "crlf-keepalive",
            "headers-64k",
        ] {
            assert!(has(n), "{n}");
        }
    }

    #[test]
    fn expectations() {
        let r400 = Reaction::Reject(400);
        let cases = [
            ("accept", Reaction::Accept(202), true),
            ("accept", r400.clone(), false),
            ("reject 400", r400.clone(), true),
            ("reject 400", Reaction::Reject(403), false),
            ("reject 4xx", Reaction::Reject(481), true),
            ("reject 4xx", Reaction::Reject(501), false),
            ("ignore", Reaction::Ignore, true),
            ("ignore", Reaction::Provisional(100), false),
            ("reject 4xx", Reaction::NotSent("x".into()), false),
        ];
        for (e, r, ok) in cases {
            let x = Expectation::parse(e).unwrap();
            assert_eq!(x.matches(&r), ok, "{e} vs {r}");
            assert_eq!(x.to_string(), e);
        }
        for bad in [
            "",
            "reject",
            "reject 200",
            "reject 4yy",
            "accept 200",
            "drop",
        ] {
            assert!(Expectation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generators() {
        let v = generate("vias:1000").unwrap();
        let text = String::from_utf8(v).unwrap();
        assert_eq!(text.matches("\r\nVia: ").count(), 1000);
        assert!(text.len() > 50_000 && text.len() <= GENERATED_MAX);
        let h = generate("headers:64000").unwrap();
        assert!((63_000..=64_200).contains(&h.len()), "{}", h.len());
        let one = generate("header:16000").unwrap();
        let line = String::from_utf8(one)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("X-Torture-Long"))
            .map(str::len);
        assert_eq!(line, Some(16_000 + "X-Torture-Long: ".len()));
        for bad in ["vias", "vias:x", "big:10", "header:70000"] {
            assert!(generate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selection_and_index_errors() {
        let cases = builtin().unwrap();
        let some = select(
            cases.clone(),
            &["http-request".into(), "escaped-uri".into()],
        )
        .unwrap();
        let names: Vec<&str> = some.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["escaped-uri", "http-request"]);
        let e = select(cases, &["nope".into()]).unwrap_err().to_string();
        assert!(
            e.contains("no message named nope") && e.contains("escaped-uri"),
            "{e}"
        );
        let read = |_: &str| Ok(b"x".to_vec());
        let err = |yaml: &str| load_index("p.yaml", yaml, read).unwrap_err().to_string();
        assert!(
            err("messages: [{name: a, category: c, expect: accept, description: d}]")
                .contains("needs either")
        );
        assert!(
            err("messages: [{name: a, file: f, category: c, expect: maybe, description: d}]")
                .contains("expect `maybe`")
        );
        assert!(err("messages: [{name: a, file: f, category: c, expect: ignore, description: d}, {name: a, file: f, category: c, expect: ignore, description: d}]")
            .contains("named twice"));
        assert!(err("messages: [{name: a, fil: f}]").starts_with("p.yaml:"));
    }
}

//! A captured message and its slots → the `send:` value of a step, checked.
//!
//! Each candidate is rendered by the scenario engine's own template code with the
//! values the slots had in the capture, and kept only when that gives the captured
//! bytes back exactly:
//!
//! 1. a plain template (head lines joined with CRLF, `Content-Length` computed) in a
//!    literal block: what a person would write, and what well-formed messages get;
//! 2. `raw: true` in a double-quoted scalar with escapes: odd line ends, a wrong or
//!    odd `Content-Length`, trailing blanks, control characters;
//! 3. the same with the `Content-Length` value literal, when `{{ len }}` would not
//!    measure the body the way the capture did;
//! 4. the message's bytes with no slot at all (a note says so).
//!
//! Bytes a template cannot hold as text — invalid UTF-8 and a literal `{{` — are
//! written as `{{ hex: … }}` slots (the scenario engine's byte slot). Checking a
//! template that holds them does not need the engine to know that slot: here each
//! one is checked as a variable whose value is its bytes.

use std::collections::HashMap;

use crate::scenario::template::{Builtin, RenderContext, Template, normalize_header_name};

use super::subst::Sub;
use super::yaml;

/// What a `send:` step gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// The YAML value after `send: ` (a block or a quoted scalar).
    pub scalar: String,
    pub raw: bool,
    /// The text holds `{{ hex: … }}` slots.
    pub hex: bool,
    /// The slots that made it into the template (all, or all but `len`, or none).
    pub kept: Vec<Sub>,
    /// Why fewer slots than found were kept.
    pub note: Option<String>,
}

/// Values of slots in the capture, for rendering a candidate.
#[derive(Default)]
struct Check {
    values: HashMap<String, Vec<u8>>,
    vars: Vec<String>,
    slots: HashMap<String, usize>,
}

impl Check {
    fn new(subs: &[Sub], hex: &[Vec<u8>]) -> Check {
        let mut c = Check::default();
        for s in subs {
            let key = match s.slot.strip_prefix("last.") {
                Some(h) => format!("last.{}", normalize_header_name(h)),
                None => s.slot.clone(),
            };
            let var = Builtin::from_name(&key).is_none() && !key.starts_with("last.");
            if var && !c.values.contains_key(&key) {
                c.vars.push(key.clone());
            }
            c.values.insert(key, s.value.clone());
        }
        for (i, bytes) in hex.iter().enumerate() {
            let name = format!("__hex{i}");
            c.vars.push(name.clone());
            c.values.insert(name, bytes.clone());
        }
        c.index();
        c
    }

    fn index(&mut self) {
        self.slots = self
            .vars
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i))
            .collect();
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.slots.get(name).copied()
    }
}

impl RenderContext for Check {
    fn builtin(&mut self, b: Builtin, out: &mut Vec<u8>) {
        if let Some(v) = self.values.get(b.name()) {
            out.extend_from_slice(v);
        }
    }
    fn var(&self, slot: usize, out: &mut Vec<u8>) {
        if let Some(v) = self.vars.get(slot).and_then(|n| self.values.get(n)) {
            out.extend_from_slice(v);
        }
    }
    fn last_header(&self, name: &str, out: &mut Vec<u8>) {
        if let Some(v) = self.values.get(&format!("last.{name}")) {
            out.extend_from_slice(v);
        }
    }
}

/// Does the compiled template `t` of a scenario (whose variables are `vars`, by
/// slot) render to `want` with the capture's values of `subs`? The whole-file check
/// of a generated scenario: what the YAML gives is what was captured.
pub fn renders_compiled(
    t: &Template,
    subs: &[Sub],
    vars: &[crate::scenario::plan::VarSlot],
    want: &[u8],
) -> bool {
    let mut check = Check::new(subs, &[]);
    check.vars = vars.iter().map(|v| v.name.clone()).collect();
    check.index();
    let mut out = Vec::with_capacity(want.len() + 64);
    t.render(&mut check, &mut out);
    out == want
}

/// Does `text` (as the engine compiles it, `raw` or not) render to `want` with the
/// capture's values?
fn renders(text: &str, raw: bool, check: &mut Check, want: &[u8]) -> bool {
    let lookup = |name: &str| check.slot(name);
    let Ok(t) = Template::compile(text, raw, &lookup) else {
        return false;
    };
    let mut out = Vec::with_capacity(want.len() + 64);
    t.render(check, &mut out);
    out == want
}

/// The template texts of `msg` with `subs`: what goes in the file, and the same with
/// each `{{ hex: … }}` as a variable (for checking), plus those variables' bytes.
struct Texts {
    file: String,
    check: String,
    hex: Vec<Vec<u8>>,
    /// Where the last hex slot starts in `file` and `check`, while nothing follows
    /// it: bytes right after it join it (one slot per run of odd bytes).
    open_hex: Option<(usize, usize)>,
}

impl Texts {
    /// Literal text (no `{{` in it).
    fn text(&mut self, s: &str) {
        if !s.is_empty() {
            self.open_hex = None;
        }
        self.file.push_str(s);
        self.check.push_str(s);
    }

    /// The `{` at the end of the text so far, taken off: before a slot they would
    /// read as part of its `{{`.
    fn take_braces(&mut self) -> usize {
        let n = self.file.len() - self.file.trim_end_matches('{').len();
        self.file.truncate(self.file.len() - n);
        self.check.truncate(self.check.len() - n);
        n
    }

    fn slot(&mut self, name: &str) {
        let n = self.take_braces();
        if n > 0 {
            self.push_hex(&vec![b'{'; n]);
        }
        self.open_hex = None;
        let slot = format!("{{{{ {name} }}}}");
        self.file.push_str(&slot);
        self.check.push_str(&slot);
    }

    /// Bytes as one `{{ hex: … }}` slot (braces before it included).
    fn hex(&mut self, bytes: &[u8]) {
        let n = self.take_braces();
        let mut all = vec![b'{'; n];
        all.extend_from_slice(bytes);
        self.push_hex(&all);
    }

    fn push_hex(&mut self, bytes: &[u8]) {
        let mut bytes = bytes.to_vec();
        if let Some((f, c)) = self.open_hex.take() {
            self.file.truncate(f);
            self.check.truncate(c);
            let mut joined = self.hex.pop().unwrap_or_default();
            joined.append(&mut bytes);
            bytes = joined;
        }
        self.open_hex = Some((self.file.len(), self.check.len()));
        let mut h = String::with_capacity(bytes.len() * 2);
        for b in &bytes {
            h.push_str(&format!("{b:02x}"));
        }
        self.file.push_str(&format!("{{{{ hex: {h} }}}}"));
        self.check
            .push_str(&format!("{{{{ __hex{} }}}}", self.hex.len()));
        self.hex.push(bytes);
    }

    /// Literal bytes: invalid UTF-8 and runs of `{` that hold a `{{` become hex slots.
    fn literal(&mut self, lit: &[u8]) {
        for chunk in lit.utf8_chunks() {
            let mut text = chunk.valid();
            while let Some(at) = text.find("{{") {
                self.text(&text[..at]);
                let run = text[at..].bytes().take_while(|&b| b == b'{').count();
                self.hex(&text.as_bytes()[at..at + run]);
                text = &text[at + run..];
            }
            self.text(text);
            if !chunk.invalid().is_empty() {
                self.hex(chunk.invalid());
            }
        }
    }
}

fn texts(msg: &[u8], subs: &[Sub]) -> Texts {
    let mut t = Texts {
        file: String::with_capacity(msg.len() + 128),
        check: String::with_capacity(msg.len() + 128),
        hex: Vec::new(),
        open_hex: None,
    };
    let mut pos = 0;
    for s in subs {
        t.literal(&msg[pos..s.range.start]);
        t.slot(&s.slot);
        pos = s.range.end;
    }
    t.literal(&msg[pos..]);
    t
}

/// The `send:` value for `msg` with the slots `subs` (sorted, not overlapping);
/// continuation lines of the scalar are indented by `indent`.
pub fn emit(msg: &[u8], subs: &[Sub], indent: usize) -> Emitted {
    let without_len: Vec<Sub> = subs.iter().filter(|s| s.slot != "len").cloned().collect();
    let attempts: [(&[Sub], Option<&str>); 3] = [
        (subs, None),
        (
            &without_len,
            Some("Content-Length kept as written ({{ len }} would measure another body)"),
        ),
        (
            &[],
            Some("sent exactly as captured: no template of it renders these bytes"),
        ),
    ];
    for (subs, note) in attempts {
        let t = texts(msg, subs);
        let mut check = Check::new(subs, &t.hex);
        let hex = !t.hex.is_empty();
        // A plain template: head lines get CRLF, Content-Length is computed.
        // Without the blank line that ends a message with no body first (the engine
        // writes it): a block then ends with the last header, not an empty line.
        let full = t.file.replace("\r\n", "\n");
        let short = format!("{}\n", full.trim_end_matches('\n'));
        for plain in [short, full] {
            if hex {
                break;
            }
            if renders(&plain, false, &mut check, msg) {
                let scalar = yaml::block(&plain, indent)
                    .filter(|b| yaml::reparses_to(b, &plain))
                    .unwrap_or_else(|| yaml::quoted(&plain, indent));
                if yaml::reparses_to(&scalar, &plain) {
                    return Emitted {
                        scalar,
                        raw: false,
                        hex,
                        kept: subs.to_vec(),
                        note: note.map(str::to_string),
                    };
                }
            }
        }
        if renders(&t.check, true, &mut check, msg) {
            let scalar = yaml::quoted(&t.file, indent);
            if yaml::reparses_to(&scalar, &t.file) {
                return Emitted {
                    scalar,
                    raw: true,
                    hex,
                    kept: subs.to_vec(),
                    note: note.map(str::to_string),
                };
            }
        }
    }
    // Reached only by text that is no template at all (nothing but blanks), which a
    // captured message never is (it has a start line); kept so that no input can make
    // this function fail.
    let t = texts(msg, &[]);
    Emitted {
        scalar: yaml::quoted(&t.file, indent),
        raw: true,
        hex: !t.hex.is_empty(),
        kept: Vec::new(),
        note: Some("sent exactly as captured".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sub(msg: &[u8], what: &str, slot: &str) -> Sub {
        let at = msg
            .windows(what.len())
            .position(|w| w == what.as_bytes())
            .unwrap();
        Sub {
            range: at..at + what.len(),
            slot: slot.into(),
            value: what.as_bytes().to_vec(),
        }
    }

    #[test]
    fn well_formed_messages_get_a_plain_block() {
        let m = b"OPTIONS sip:x@10.0.0.2 SIP/2.0\r\nCall-ID: abc\r\nContent-Length: 4\r\n\r\nbody";
        let subs = vec![
            sub(m, "10.0.0.2", "remote_ip"),
            sub(m, "abc", "call_id"),
            sub(m, "4", "len"),
        ];
        let e = emit(m, &subs, 6);
        assert!(!e.raw && !e.hex && e.note.is_none(), "{e:?}");
        assert_eq!(
            e.scalar,
            "|-\n      OPTIONS sip:x@{{ remote_ip }} SIP/2.0\n      Call-ID: {{ call_id }}\n      Content-Length: {{ len }}\n\n      body\n"
        );
    }

    #[test]
    fn odd_messages_go_raw_and_stay_exact() {
        for (m, slots) in [
            (
                &b"OPTIONS sip:x SIP/2.0\nCall-ID: abc\n\n"[..],
                vec![("abc", "call_id")],
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\nl: 0\r\nX: trailing \r\n\r\n",
                vec![("0", "len")],
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 9\r\n\r\nab",
                vec![],
            ),
            (b"A {{ b }} {abc\r\n\r\n", vec![("abc", "call_id")]),
            (b"A \xff\xfe abc {\r\n\r\n", vec![("abc", "call_id")]),
            (b"\r\nA\0B\rC abc\r\n \r\n\r\n", vec![("abc", "call_id")]),
        ] {
            let subs: Vec<Sub> = slots.iter().map(|(w, s)| sub(m, w, s)).collect();
            let e = emit(m, &subs, 6);
            assert!(e.raw, "{:?}: {e:?}", String::from_utf8_lossy(m));
            assert_eq!(e.kept.len(), subs.len(), "{e:?}");
        }
    }

    #[test]
    fn odd_bytes_become_one_hex_slot_per_run() {
        let t = texts(b"a\xff\xfe\x00\x80{{b{", &[]);
        assert_eq!(t.file, "a{{ hex: fffe }}\0{{ hex: 807b7b }}b{");
        assert_eq!(t.check, "a{{ __hex0 }}\0{{ __hex1 }}b{");
        assert_eq!(t.hex, vec![vec![0xff, 0xfe], vec![0x80, b'{', b'{']]);
        // A `{` before a slot joins the slot's hex run before it.
        let m = b"x{abc";
        let subs = vec![sub(m, "abc", "call_id")];
        assert_eq!(texts(m, &subs).file, "x{{ hex: 7b }}{{ call_id }}");
    }

    #[test]
    fn a_wrong_place_for_len_falls_back_to_the_literal() {
        // A blank-looking header line: raw `{{ len }}` would measure from it.
        let m = b"MESSAGE sip:x SIP/2.0\r\n \r\nContent-Length: 2\r\n\r\nab";
        let subs = vec![sub(m, "2", "len")];
        let e = emit(m, &subs, 6);
        assert!(e.raw && e.kept.is_empty() && e.note.is_some(), "{e:?}");
    }

    /// Messages built from random pieces, with random slots over some of their words:
    /// whatever is emitted renders back to the message (checked inside `emit`, and
    /// here again through the YAML text).
    #[test]
    fn random_messages_round_trip() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5ca1e);
        let pieces: [&[u8]; 22] = [
            b"\r\n",
            b"\n",
            b"\r",
            b" ",
            b"\t",
            b"\0",
            b"{",
            b"{{",
            b"}}",
            b"\xff",
            b"\xc3\xa9",
            b"Content-Length: ",
            b"l:",
            b"Via: ",
            b"SIP/2.0",
            b"INVITE",
            b"10.0.0.1",
            b"5060",
            b"\"",
            b"\\",
            b"abc",
            b"\r\n\r\n",
        ];
        for _ in 0..2000 {
            let n = rng.random_range(1..30);
            let mut m = Vec::new();
            for _ in 0..n {
                m.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
            let mut subs = Vec::new();
            let mut pos = 0;
            for (w, slot) in [
                ("10.0.0.1", "local_ip"),
                ("5060", "local_port"),
                ("abc", "call_id"),
            ] {
                if let Some(at) = m[pos..].windows(w.len()).position(|x| x == w.as_bytes()) {
                    let at = pos + at;
                    if rng.random_bool(0.7) {
                        subs.push(Sub {
                            range: at..at + w.len(),
                            slot: slot.into(),
                            value: w.as_bytes().to_vec(),
                        });
                        pos = at + w.len();
                    }
                }
            }
            if m.iter().all(u8::is_ascii_whitespace) {
                // Not a template at all (the engine refuses empty ones), and never
                // a captured message: those start with a start line.
                continue;
            }
            let e = emit(&m, &subs, 6);
            // The scalar reads back (YAML), and its text renders the message.
            let doc = format!("steps:\n{}", yaml::send_item(&e.scalar));
            #[derive(serde::Deserialize)]
            struct Doc {
                steps: Vec<std::collections::HashMap<String, String>>,
            }
            let d: Doc = serde_saphyr::from_str(&doc).unwrap_or_else(|err| panic!("{err}\n{doc}"));
            let text = &d.steps[0]["send"];
            // What the YAML gives compiles and renders the message, `{{ hex: … }}`
            // slots included.
            let mut check = Check::new(&e.kept, &[]);
            assert!(renders(text, e.raw, &mut check, &m), "{m:?}\n{doc}");
        }
    }
}

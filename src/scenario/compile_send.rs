//! The send steps compiled: `send` (a template or `ack`/`bye`/`cancel`),
//! `send_file` (a file read once here, templated or untouched), `bytes_base64`, and
//! how their message is written: `chunks:` (pieces with delays over tcp/tls) and
//! `pipeline:` (joined with the next send's message in one write).

use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::compile::{Compiler, Diagnostic, Pos, line_col, pos_of};
use super::model::{ChunkDef, StepDef, StepEntry};
use super::plan::{Chunk, SendSpec, SendStep, StepKind};
use super::template::{Template, TemplateErrorKind};

/// Largest `send_file` (templates address their bytes with 32-bit offsets; a
/// message this size is far past what any SIP peer reads anyway).
const MAX_SEND_FILE: u64 = 64 << 20;

/// Longest wait before a piece of a chunked message: far beyond any peer's patience,
/// and it keeps deadline arithmetic far from overflowing.
const MAX_CHUNK_DELAY: Duration = Duration::from_secs(3600);

impl Compiler<'_> {
    /// `send`, `send_file` or `bytes_base64`, with `chunks:` and `pipeline:`.
    pub(super) fn send_step(&mut self, path: &str, st: &StepDef, action: &str) -> Option<StepKind> {
        let (what, at) = match action {
            "send_file" => {
                let file = st.send_file.as_ref()?;
                (self.send_file(path, file, st), pos_of(file))
            }
            "bytes_base64" => {
                let b64 = st.bytes_base64.as_ref()?;
                let path = format!("{path}.bytes_base64");
                (self.bytes_base64(&path, b64), pos_of(b64))
            }
            _ => {
                let send = st.send.as_ref()?;
                (self.send_what(path, send, st), pos_of(send))
            }
        };
        let chunks = st.chunks.as_ref().map(|c| {
            let pieces = self.chunks(&format!("{path}.chunks"), c);
            (pieces, pos_of(c))
        });
        let (chunks, chunks_at) = match chunks {
            Some((pieces, at)) => (Some(pieces?), at),
            None => (None, (0, 0)),
        };
        let narrow = |p: Pos| (p.0 as u32, p.1 as u32);
        Some(StepKind::Send(SendSpec {
            what: what?,
            chunks,
            pipeline: st.pipeline.as_ref().is_some_and(|p| p.value),
            at: narrow(at),
            chunks_at: narrow(chunks_at),
        }))
    }

    /// A `send:` value: `ack`, `bye`, `cancel` or a message template.
    fn send_what(&mut self, path: &str, send: &Spanned<String>, st: &StepDef) -> Option<SendStep> {
        let path = format!("{path}.send");
        let text = send.value.trim();
        let raw = st.raw.as_ref().is_some_and(|r| r.value);
        let one_word = !text.is_empty() && !text.contains(char::is_whitespace);
        let keyword = matches!(text.to_ascii_lowercase().as_str(), "ack" | "bye" | "cancel");
        // With `raw: true` any other word is the message itself (garbage is the point).
        if one_word && !text.contains("{{") && (keyword || !raw) {
            let kind = match text.to_ascii_lowercase().as_str() {
                "ack" => SendStep::Ack,
                "bye" => SendStep::Bye,
                "cancel" => SendStep::Cancel,
                _ => {
                    self.error(
                        pos_of(send),
                        path,
                        format!(
                            "`send: {text}` is neither `ack`, `bye` nor `cancel`; anything else needs a full message template"
                        ),
                    );
                    return None;
                }
            };
            if let Some(raw) = &st.raw {
                self.error(
                    pos_of(raw),
                    path.replace(".send", ".raw"),
                    format!("`raw` applies only to message templates, not to `send: {text}`"),
                );
            }
            return Some(kind);
        }
        self.template(send, raw, &path).map(SendStep::Message)
    }

    /// `send_file: PATH`: the file's bytes, read once here. Templated like a `send:`
    /// text (so it must be UTF-8), or with `template: false` sent untouched.
    fn send_file(&mut self, path: &str, file: &Spanned<String>, st: &StepDef) -> Option<SendStep> {
        let key_path = format!("{path}.send_file");
        let templated = st.template.as_ref().is_none_or(|t| t.value);
        if let (false, Some(raw)) = (templated, &st.raw) {
            self.error(
                pos_of(raw),
                format!("{path}.raw"),
                "`raw` has no effect with `template: false`: the file is sent untouched",
            );
        }
        let name = file.value.trim();
        if name.is_empty() {
            self.error(
                pos_of(file),
                key_path,
                "empty `send_file`; give a file's path",
            );
            return None;
        }
        let full = match self.base_dir {
            Some(dir) if Path::new(name).is_relative() => dir.join(name),
            _ => Path::new(name).to_path_buf(),
        };
        let shown = full.display().to_string();
        let read = std::fs::File::open(&full).and_then(|f| {
            use std::io::Read;
            // Bounded read: a huge file (or /dev/zero) is an error, not a hang.
            let mut bytes = Vec::new();
            f.take(MAX_SEND_FILE + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        let bytes = match read {
            Ok(b) if b.len() as u64 > MAX_SEND_FILE => {
                let message = format!(
                    "`{shown}` is larger than {} MiB, the most `send_file` sends",
                    MAX_SEND_FILE >> 20
                );
                self.error(pos_of(file), key_path, message);
                return None;
            }
            Ok(b) => b,
            Err(e) => {
                self.error(pos_of(file), key_path, format!("can't read `{shown}`: {e}"));
                return None;
            }
        };
        if !templated {
            return Some(SendStep::Message(Template::from_bytes(&bytes)));
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let (line, column) = line_col(&String::from_utf8_lossy(&bytes[..at]), at);
                let message = format!(
                    "`{shown}` is not UTF-8 text (byte 0x{:02x} at line {line}, column {column}), \
                     so it can't be a template; send it untouched with `template: false`, or \
                     write such bytes as `{{{{ hex: {:02x} }}}}`",
                    bytes[at], bytes[at]
                );
                self.error(pos_of(file), key_path, message);
                return None;
            }
        };
        let raw = st.raw.as_ref().is_some_and(|r| r.value);
        match self.compile_template(&text, raw) {
            Ok(t) => Some(SendStep::Message(t)),
            Err(errors) => {
                // Positions in the file itself: that is where the `{{` to fix is.
                for e in errors {
                    let pos = match e.kind {
                        TemplateErrorKind::Empty => (1, 1),
                        _ => line_col(&text, e.offset),
                    };
                    let message = self.template_error_message(&e.kind);
                    let d = Diagnostic {
                        file: shown.clone(),
                        line: pos.0,
                        column: pos.1,
                        path: key_path.clone(),
                        message,
                    };
                    self.elsewhere.push((pos_of(file), d));
                }
                None
            }
        }
    }

    /// `bytes_base64:`: standard base64 (padding optional; whitespace and line
    /// breaks ignored, so a long one can be a YAML block), sent untouched.
    fn bytes_base64(&mut self, path: &str, b64: &Spanned<String>) -> Option<SendStep> {
        use base64::Engine;
        let compact: Vec<u8> = b64
            .value
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if compact.is_empty() {
            self.error(
                pos_of(b64),
                path,
                "empty `bytes_base64`; give the message's bytes in base64",
            );
            return None;
        }
        match base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT.decode(&compact) {
            Ok(bytes) => Some(SendStep::Message(Template::from_bytes(&bytes))),
            Err(e) => {
                let why = match e {
                    base64::DecodeError::InvalidByte(at, b) => format!(
                        "`{}` at offset {at} (not counting whitespace) is not a base64 character",
                        char::from(b).escape_default()
                    ),
                    base64::DecodeError::InvalidLength(n) => format!(
                        "{n} base64 characters is not a whole number of bytes (a truncated value?)"
                    ),
                    base64::DecodeError::InvalidLastSymbol { offset: at, .. } => format!(
                        "the last character (offset {at}) has bits that don't belong to any byte (a truncated value?)"
                    ),
                    base64::DecodeError::InvalidPadding => "misplaced `=` padding".to_string(),
                };
                self.error(pos_of(b64), path, format!("bad base64: {why}"));
                None
            }
        }
    }

    /// `chunks:`: a non-empty list of `{bytes: N, after: D}`, the last one possibly
    /// `{rest: true, after: D}`.
    fn chunks(
        &mut self,
        path: &str,
        list: &Spanned<Vec<Spanned<ChunkDef>>>,
    ) -> Option<Box<[Chunk]>> {
        if list.value.is_empty() {
            self.error(
                pos_of(list),
                path,
                "empty `chunks:`; list the pieces, e.g. [{bytes: 10, after: 0ms}, {rest: true, after: 50ms}]",
            );
            return None;
        }
        let mut out = Vec::with_capacity(list.value.len());
        let mut ok = true;
        let last = list.value.len() - 1;
        for (j, c) in list.value.iter().enumerate() {
            match self.chunk(&format!("{path}[{j}]"), c, j == last) {
                Some(chunk) => out.push(chunk),
                None => ok = false,
            }
        }
        ok.then(|| out.into_boxed_slice())
    }

    fn chunk(&mut self, path: &str, c: &Spanned<ChunkDef>, last: bool) -> Option<Chunk> {
        let def = &c.value;
        let after = match &def.after {
            Some(a) => {
                let d = self.duration(a, &format!("{path}.after"))?;
                if d > MAX_CHUNK_DELAY {
                    let message = format!(
                        "`after: {}` is longer than a piece may wait (1h)",
                        a.value.trim()
                    );
                    self.error(pos_of(a), format!("{path}.after"), message);
                    return None;
                }
                Some(d)
            }
            None => None,
        };
        let bytes = match (&def.bytes, &def.rest) {
            (Some(b), None) => match b.value.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    let message = format!(
                        "`bytes: {}` is not a number of bytes (a whole number, at least 1)",
                        b.value.trim()
                    );
                    self.error(pos_of(b), format!("{path}.bytes"), message);
                    return None;
                }
            },
            (None, Some(r)) if !r.value => {
                self.error(
                    pos_of(r),
                    format!("{path}.rest"),
                    "`rest: false` selects nothing; write `rest: true` or `bytes: N`",
                );
                return None;
            }
            (None, Some(r)) if !last => {
                self.error(
                    pos_of(r),
                    format!("{path}.rest"),
                    "`rest: true` takes the rest of the message, so it must be the last piece",
                );
                return None;
            }
            (None, Some(_)) => None,
            (Some(_), Some(r)) => {
                self.error(
                    pos_of(r),
                    path,
                    "a piece has `bytes: N` or `rest: true`, not both",
                );
                return None;
            }
            (None, None) => {
                self.error(
                    pos_of(c),
                    path,
                    "a piece needs its size: `bytes: N`, or `rest: true` for the rest of the message",
                );
                return None;
            }
        };
        Some(Chunk {
            after: after.unwrap_or_default(),
            bytes,
        })
    }

    /// `pipeline: true` joins the next send into the same write: that step must be
    /// a send (labels in between are fine) without `chunks:` (a message written in
    /// pieces can't also be part of another one's write).
    pub(super) fn check_pipelines(&mut self, steps: &[Spanned<StepEntry>]) {
        let is_send =
            |st: &StepDef| st.send.is_some() || st.send_file.is_some() || st.bytes_base64.is_some();
        for (i, step) in steps.iter().enumerate() {
            let st = &step.value;
            let Some(p) = st.pipeline.as_ref().filter(|p| p.value) else {
                continue;
            };
            let path = format!("steps[{i}].pipeline");
            if st.chunks.is_some() {
                self.error(
                    pos_of(p),
                    path,
                    "`pipeline` and `chunks` exclude each other: a message is either written in pieces or joined with the next one",
                );
                continue;
            }
            let next = steps[i + 1..].iter().find(|s| s.value.label.is_none());
            match next.map(|s| &s.value) {
                Some(n) if is_send(n) && n.chunks.is_none() => {}
                Some(n) if is_send(n) => self.error(
                    pos_of(p),
                    path,
                    "the next send has `chunks:`; a message written in pieces can't share a write with the one before it",
                ),
                _ => self.error(
                    pos_of(p),
                    path,
                    "`pipeline: true` joins the next step's message into this write, but the next step is not a send",
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use base64::Engine;

    use crate::scenario::compile::{CompileOptions, compile_file_with, compile_str};
    use crate::scenario::plan::{Chunk, Plan, Role, SendSpec, SendStep, StepKind};
    use crate::scenario::template::SimpleContext;
    use crate::transport::kind::TransportKind;

    fn ok(text: &str) -> Plan {
        compile_str("test.yaml", text, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every diagnostic as `LINE:COL: message (at path)` without the file name.
    fn errs(text: &str) -> Vec<String> {
        match compile_str("test.yaml", text, &[]) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e
                .diagnostics
                .iter()
                .map(|d| format!("{}:{}: {} (at {})", d.line, d.column, d.message, d.path))
                .collect(),
        }
    }

    fn send(plan: &Plan, i: usize) -> &SendSpec {
        match &plan.steps[i].kind {
            StepKind::Send(s) => s,
            other => panic!("not a send: {other:?}"),
        }
    }

    /// What step `i` sends, rendered without a call (fixed text only).
    fn rendered(plan: &Plan, i: usize) -> Vec<u8> {
        let SendStep::Message(t) = &send(plan, i).what else {
            panic!("not a message");
        };
        let mut out = Vec::new();
        t.render(&mut SimpleContext::default(), &mut out);
        out
    }

    /// A fresh folder for a scenario and the files it names.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sipwright-compile-send-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Compile `scenario` written as `dir/s.yaml` (so relative paths are from `dir`).
    fn compile_in(dir: &std::path::Path, scenario: &str) -> Result<Plan, Vec<String>> {
        let path = dir.join("s.yaml");
        std::fs::write(&path, scenario).unwrap();
        compile_file_with(&path, &CompileOptions::default()).map_err(|e| {
            e.diagnostics
                .iter()
                .map(|d| {
                    let file = std::path::Path::new(&d.file)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    format!(
                        "{file}:{}:{}: {} (at {})",
                        d.line, d.column, d.message, d.path
                    )
                })
                .collect()
        })
    }

    #[test]
    fn send_file_is_a_template_or_untouched_bytes() {
        let dir = folder("files");
        std::fs::write(
            dir.join("options.sip"),
            "OPTIONS sip:x SIP/2.0\nX: {{ who }}\n",
        )
        .unwrap();
        std::fs::write(dir.join("raw.sip"), "A {{ who }}\nB\r\n").unwrap();
        let junk = b"INVITE sip:x SIP/2.0\r\nX: \xff\x00{{ nope }}\rContent-Length: 99\r\n\r\n\x80";
        std::fs::write(dir.join("junk.bin"), junk).unwrap();
        let plan = compile_in(
            &dir,
            "vars: {who: me}\nsteps:\n  - send_file: options.sip\n  - send_file: raw.sip\n    raw: true\n  - send_file: junk.bin\n    template: false\n",
        )
        .unwrap();
        assert_eq!(plan.role, Role::Uac);
        // Templated like `send:`: CRLF, Content-Length; the variable is a slot.
        let mut ctx = SimpleContext {
            vars: vec!["me".into()],
            ..SimpleContext::default()
        };
        let render = |i: usize, ctx: &mut SimpleContext| {
            let SendStep::Message(t) = &send(&plan, i).what else {
                panic!()
            };
            let mut out = Vec::new();
            t.render(ctx, &mut out);
            out
        };
        assert_eq!(
            render(0, &mut ctx),
            b"OPTIONS sip:x SIP/2.0\r\nX: me\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(render(1, &mut ctx), b"A me\nB\r\n");
        // Untouched: `{{` is just bytes, the wrong Content-Length stays.
        assert_eq!(rendered(&plan, 2), junk);
        let SendStep::Message(t) = &send(&plan, 2).what else {
            panic!()
        };
        assert_eq!(t.method(), Some("INVITE"));
    }

    #[test]
    fn send_file_problems_are_diagnostics() {
        let dir = folder("problems");
        std::fs::write(
            dir.join("binary.sip"),
            b"OPTIONS sip:x SIP/2.0\nX: ab\xffc\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("bad.sip"),
            "OPTIONS sip:x SIP/2.0\nX: {{ nope }} {{ hex: 0 }}\n",
        )
        .unwrap();
        let e = compile_in(
            &dir,
            "steps:\n  - send_file: missing.sip\n  - send_file: binary.sip\n  - send_file: bad.sip\n  - send_file: binary.sip\n    template: false\n    raw: true\n  - send_file: \" \"\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 6, "{e:#?}");
        assert!(
            e[0].starts_with("s.yaml:2:16: can't read `")
                && e[0].contains("missing.sip`: No such file")
                && e[0].ends_with("(at steps[0].send_file)"),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with("s.yaml:3:16: `")
                && e[1].contains(
                    "binary.sip` is not UTF-8 text (byte 0xff at line 2, column 6), so it can't \
                     be a template; send it untouched with `template: false`, or write such \
                     bytes as `{{ hex: ff }}`"
                ),
            "{}",
            e[1]
        );
        // Template problems point into the file itself.
        assert!(
            e[2].starts_with("bad.sip:2:4: undefined variable `nope`")
                && e[2].ends_with("(at steps[2].send_file)"),
            "{}",
            e[2]
        );
        assert!(
            e[3].starts_with("bad.sip:2:15: bad `{{ hex: … }}`: `0` has an odd number of digits"),
            "{}",
            e[3]
        );
        assert_eq!(
            e[4],
            "s.yaml:7:10: `raw` has no effect with `template: false`: the file is sent untouched (at steps[3].raw)"
        );
        assert_eq!(
            e[5],
            "s.yaml:8:16: empty `send_file`; give a file's path (at steps[4].send_file)"
        );
    }

    #[test]
    fn bytes_base64_is_sent_untouched() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let (a, b) = b64.split_at(100);
        // Whitespace and line breaks are ignored; padding is optional.
        let plan = ok(&format!(
            "steps:\n  - bytes_base64: |\n      {a}\n      {b}\n  - bytes_base64: \"AAH/\"\n  - bytes_base64: AA\n"
        ));
        assert_eq!(rendered(&plan, 0), bytes);
        assert_eq!(rendered(&plan, 1), [0, 1, 255]);
        assert_eq!(rendered(&plan, 2), [0]);
        assert_eq!(
            errs(
                "steps:\n  - bytes_base64: \"AA*A\"\n  - bytes_base64: \"AAAAA\"\n  - bytes_base64: \"AB==\"\n  - bytes_base64: \"A=A=\"\n  - bytes_base64: \" \"\n  - bytes_base64: AA\n    raw: true\n"
            ),
            [
                "2:19: bad base64: `*` at offset 2 (not counting whitespace) is not a base64 character (at steps[0].bytes_base64)",
                "3:19: bad base64: 5 base64 characters is not a whole number of bytes (a truncated value?) (at steps[1].bytes_base64)",
                "4:19: bad base64: the last character (offset 1) has bits that don't belong to any byte (a truncated value?) (at steps[2].bytes_base64)",
                "5:19: bad base64: `=` at offset 1 (not counting whitespace) is not a base64 character (at steps[3].bytes_base64)",
                "6:19: empty `bytes_base64`; give the message's bytes in base64 (at steps[4].bytes_base64)",
                "8:10: `raw` doesn't apply to a `bytes_base64` step; it takes: chunks, pipeline (at steps[5].raw)",
            ]
        );
    }

    #[test]
    fn hex_slots_in_send_are_checked_at_their_braces() {
        let plan = ok("steps:\n  - send: \"X{{ hex: 00 ff }}\\r\"\n    raw: true\n");
        assert_eq!(rendered(&plan, 0), b"X\x00\xff\r");
        assert_eq!(
            errs("steps:\n  - send: |\n      OPTIONS sip:x SIP/2.0\n      X: {{ hex: 0g }}\n"),
            [
                "4:10: bad `{{ hex: … }}`: `g` is not a hex digit; write bytes as hex digit pairs, e.g. `{{ hex: 00ff0d0a }}` or `{{ hex: 00 ff 0d 0a }}` (at steps[0].send)"
            ]
        );
    }

    #[test]
    fn a_raw_word_is_a_message() {
        // With `raw: true` a word other than ack/bye/cancel is the message itself.
        let plan = ok("steps:\n  - send: \"GARBAGE\\r\\n\"\n    raw: true\n");
        assert_eq!(rendered(&plan, 0), b"GARBAGE\r\n");
        assert_eq!(
            errs("steps:\n  - send: GARBAGE\n  - send: ack\n    raw: true\n"),
            [
                "2:11: `send: GARBAGE` is neither `ack`, `bye` nor `cancel`; anything else needs a full message template (at steps[0].send)",
                "4:10: `raw` applies only to message templates, not to `send: ack` (at steps[1].raw)",
            ]
        );
    }

    #[test]
    fn chunks_and_pipelines_compile() {
        let plan = ok(
            "steps:\n  - send: bye\n    chunks: [{bytes: 10}, {bytes: 200, after: 50ms}, {rest: true, after: 1s}]\n  - send: ack\n    pipeline: true\n  - label: next\n  - bytes_base64: AA\n    pipeline: true\n  - send_file: /dev/null\n    template: false\n",
        );
        assert_eq!(
            send(&plan, 0).chunks.as_deref(),
            Some(
                &[
                    Chunk {
                        after: Duration::ZERO,
                        bytes: Some(10)
                    },
                    Chunk {
                        after: Duration::from_millis(50),
                        bytes: Some(200)
                    },
                    Chunk {
                        after: Duration::from_secs(1),
                        bytes: None
                    },
                ][..]
            )
        );
        assert_eq!(send(&plan, 0).chunks_at, (3, 13));
        assert!(!send(&plan, 0).pipeline && send(&plan, 1).pipeline && send(&plan, 2).pipeline);
        assert!(send(&plan, 1).chunks.is_none());
    }

    #[test]
    fn chunk_and_pipeline_mistakes_are_diagnostics() {
        assert_eq!(
            errs(
                "steps:\n  - send: bye\n    chunks: []\n  - send: bye\n    chunks: [{rest: true}, {bytes: 0}, {bytes: x}, {}, {bytes: 1, rest: true}, {rest: false}, {bytes: 1, after: 2h}, {bytes: 1, after: 5}]\n"
            ),
            [
                "3:13: empty `chunks:`; list the pieces, e.g. [{bytes: 10, after: 0ms}, {rest: true, after: 50ms}] (at steps[0].chunks)",
                "5:21: `rest: true` takes the rest of the message, so it must be the last piece (at steps[1].chunks[0].rest)",
                "5:36: `bytes: 0` is not a number of bytes (a whole number, at least 1) (at steps[1].chunks[1].bytes)",
                "5:48: `bytes: x` is not a number of bytes (a whole number, at least 1) (at steps[1].chunks[2].bytes)",
                "5:52: a piece needs its size: `bytes: N`, or `rest: true` for the rest of the message (at steps[1].chunks[3])",
                "5:73: a piece has `bytes: N` or `rest: true`, not both (at steps[1].chunks[4])",
                "5:87: `rest: false` selects nothing; write `rest: true` or `bytes: N` (at steps[1].chunks[5].rest)",
                "5:113: `after: 2h` is longer than a piece may wait (1h) (at steps[1].chunks[6].after)",
                "5:136: `5` has no unit; add a unit: ms, s, m or h (e.g. `5s`) (at steps[1].chunks[7].after)",
            ]
        );
        assert_eq!(
            errs(
                "steps:\n  - send: bye\n    pipeline: true\n  - recv: 200\n  - send: bye\n    pipeline: true\n    chunks: [{rest: true}]\n  - send: bye\n    pipeline: true\n  - send: bye\n    chunks: [{rest: true}]\n  - send: ack\n    pipeline: true\n"
            ),
            [
                "3:15: `pipeline: true` joins the next step's message into this write, but the next step is not a send (at steps[0].pipeline)",
                "6:15: `pipeline` and `chunks` exclude each other: a message is either written in pieces or joined with the next one (at steps[2].pipeline)",
                "9:15: the next send has `chunks:`; a message written in pieces can't share a write with the one before it (at steps[3].pipeline)",
                "13:15: `pipeline: true` joins the next step's message into this write, but the next step is not a send (at steps[5].pipeline)",
            ]
        );
        assert_eq!(
            errs(
                "steps:\n  - recv: 200\n    chunks: [{rest: true}]\n  - send: ack\n    template: false\n"
            ),
            [
                "3:13: `chunks` doesn't apply to a `recv` step; it takes: optional, timeout, in_reply_to, rtd, capture (at steps[0].chunks)",
                "5:15: `template` doesn't apply to a `send` step; it takes: raw, chunks, pipeline (at steps[1].template)",
            ]
        );
    }

    #[test]
    fn the_transport_decides_chunks_and_udp_sizes() {
        let big = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 70_000]);
        let fits = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 65_507]);
        let plan = ok(&format!(
            "steps:\n  - send: bye\n    chunks: [{{bytes: 1}}, {{rest: true, after: 1ms}}]\n  - bytes_base64: {big}\n  - bytes_base64: {fits}\n  - send: \"OPTIONS {{{{ call_id }}}} SIP/2.0\\r\\n\\r\\n\"\n    raw: true\n"
        ));
        let problems = |kind| match plan.check_transport(kind) {
            Ok(()) => Vec::new(),
            Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
        };
        assert_eq!(problems(TransportKind::Tcp), Vec::<String>::new());
        assert_eq!(problems(TransportKind::Tls), Vec::<String>::new());
        assert_eq!(
            problems(TransportKind::Udp),
            [
                "test.yaml:3:13: step 1: `chunks:` splits a message over a byte stream (tcp or tls), but this run is over udp: a UDP datagram is one whole message",
                "test.yaml:4:19: step 2: the message is 70000 bytes, over the 65507 bytes one UDP datagram carries; send it over tcp or tls (`--transport tcp`)",
            ]
        );
        assert_eq!(
            problems(TransportKind::Wss),
            [
                "test.yaml:3:13: step 1: `chunks:` splits a message over a byte stream (tcp or tls), but this run is over wss: a WebSocket frame carries one whole message (RFC 7118)"
            ]
        );
    }
}

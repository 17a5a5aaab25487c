//! A lenient look at a captured SIP message: where its start line, header fields,
//! blank line and body are, as byte ranges of the message.
//!
//! The engine's parser (`sip::message`) refuses what a capture may well hold — a
//! Content-Length longer than the body, a head that never ends — and gives values
//! rather than positions. The converter needs positions in exactly the bytes that
//! were on the wire, whatever they are, so it reads lines itself: any bytes give a
//! [`Head`], and every range lies inside the message.

use std::ops::Range;

use crate::sip::header::HeaderName;

/// One header field: its name as written and its value, which runs to the end of
/// its last continuation line (folding included, line end excluded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The name, trimmed of the whitespace some senders put before the colon.
    pub name: Range<usize>,
    pub kind: HeaderName,
    /// After the colon to the end of the field (whitespace kept: it is the sender's).
    pub value: Range<usize>,
    /// The whole field, from the name's first byte to the end of its last line.
    pub line: Range<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The first line, line end excluded.
    pub start_line: Range<usize>,
    pub fields: Vec<Field>,
    /// Where the body starts (after the blank line); None when the head never ends.
    pub body_start: Option<usize>,
}

/// What the start line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start<'a> {
    Request { method: &'a [u8], uri: Range<usize> },
    Response { code: u16 },
}

/// Range of the line at `pos` without its line end (LF, or CR LF), and where the next
/// line starts; None at the end of `buf`.
fn line_at(buf: &[u8], pos: usize) -> Option<(Range<usize>, usize)> {
    let rest = buf.get(pos..).filter(|r| !r.is_empty())?;
    Some(match memchr::memchr(b'\n', rest) {
        Some(i) => {
            let nl = pos + i;
            let end = if nl > pos && buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            (pos..end, nl + 1)
        }
        None => (pos..buf.len(), buf.len()),
    })
}

fn trim_range(buf: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && matches!(buf[r.start], b' ' | b'\t') {
        r.start += 1;
    }
    while r.end > r.start && matches!(buf[r.end - 1], b' ' | b'\t') {
        r.end -= 1;
    }
    r
}

impl Head {
    /// Reads the head of `msg`. Never fails: a message without a blank line has no
    /// body, a line without a colon is a field with an empty value.
    pub fn scan(msg: &[u8]) -> Head {
        let Some((start_line, mut pos)) = line_at(msg, 0) else {
            return Head {
                start_line: 0..0,
                fields: Vec::new(),
                body_start: None,
            };
        };
        let mut fields: Vec<Field> = Vec::new();
        let mut body_start = None;
        while let Some((line, next)) = line_at(msg, pos) {
            if line.is_empty() {
                body_start = Some(next);
                break;
            }
            let first = msg[line.start];
            match fields.last_mut() {
                // A continuation line belongs to the field above it.
                Some(f) if first == b' ' || first == b'\t' => {
                    f.value.end = line.end;
                    f.line.end = line.end;
                }
                _ => {
                    let colon = memchr::memchr(b':', &msg[line.clone()]).map(|i| line.start + i);
                    let (name, value) = match colon {
                        Some(c) => (trim_range(msg, line.start..c), c + 1..line.end),
                        None => (line.clone(), line.end..line.end),
                    };
                    fields.push(Field {
                        kind: HeaderName::parse_bytes(&msg[name.clone()]),
                        name,
                        value,
                        line: line.clone(),
                    });
                }
            }
            pos = next;
        }
        Head {
            start_line,
            fields,
            body_start,
        }
    }

    /// The start line read as a request or a response; None when it is neither.
    pub fn start<'a>(&self, msg: &'a [u8]) -> Option<Start<'a>> {
        let line = msg.get(self.start_line.clone())?;
        if line.len() >= 11 && line[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
            let digits = &line[8..11];
            let after = line.get(11).copied();
            if digits.iter().all(u8::is_ascii_digit) && matches!(after, None | Some(b' ' | b'\t')) {
                let code = digits
                    .iter()
                    .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
                return Some(Start::Response { code });
            }
            return None;
        }
        let sp1 = memchr::memchr(b' ', line)?;
        let method = &line[..sp1];
        let sp2 = sp1 + 1 + memchr::memrchr(b' ', &line[sp1 + 1..])?;
        let version = &line[sp2 + 1..];
        let token = !method.is_empty() && crate::sip::header::is_token(method);
        if !token || !version.eq_ignore_ascii_case(b"SIP/2.0") || sp2 <= sp1 + 1 {
            return None;
        }
        let base = self.start_line.start;
        Some(Start::Request {
            method,
            uri: base + sp1 + 1..base + sp2,
        })
    }

    /// Fields of this kind (`Other` fields are matched by their name, case-insensitive).
    pub fn fields_of(&self, kind: HeaderName) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(move |f| f.kind == kind)
    }

    /// The first field of this kind, its value trimmed.
    pub fn value_of<'m>(&self, msg: &'m [u8], kind: HeaderName) -> Option<&'m [u8]> {
        let f = self.fields_of(kind).next()?;
        msg.get(trim_range(msg, f.value.clone()))
    }

    /// The body: after the blank line to the end of the message (whatever
    /// Content-Length says).
    pub fn body<'m>(&self, msg: &'m [u8]) -> &'m [u8] {
        self.body_start
            .and_then(|b| msg.get(b..))
            .unwrap_or_default()
    }
}

/// The trimmed value range of a field.
pub fn trimmed(msg: &[u8], r: Range<usize>) -> Range<usize> {
    trim_range(msg, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_folding_and_body() {
        let m = b"INVITE sip:a@h SIP/2.0\r\nVia : SIP/2.0/UDP h\r\n  ;branch=z\r\nbroken line\r\ni:x\n\r\nbody";
        let h = Head::scan(m);
        assert_eq!(&m[h.start_line.clone()], b"INVITE sip:a@h SIP/2.0");
        assert_eq!(h.fields.len(), 3);
        assert_eq!(&m[h.fields[0].name.clone()], b"Via");
        assert_eq!(h.fields[0].kind, HeaderName::Via);
        assert_eq!(
            &m[h.fields[0].value.clone()],
            b" SIP/2.0/UDP h\r\n  ;branch=z"
        );
        assert_eq!(&m[h.fields[1].name.clone()], b"broken line");
        assert!(h.fields[1].value.is_empty());
        assert_eq!(h.value_of(m, HeaderName::CallId), Some(&b"x"[..]));
        assert_eq!(h.body(m), b"body");
        match h.start(m) {
            Some(Start::Request { method, uri }) => {
                assert_eq!(method, b"INVITE");
                assert_eq!(&m[uri], b"sip:a@h");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_lines() {
        fn start(m: &[u8]) -> Option<Start<'_>> {
            Head::scan(m).start(m)
        }
        assert_eq!(
            start(b"SIP/2.0 180 Ringing\r\n\r\n"),
            Some(Start::Response { code: 180 })
        );
        assert_eq!(
            start(b"sip/2.0 200\r\n"),
            Some(Start::Response { code: 200 })
        );
        assert_eq!(start(b"SIP/2.0 20x OK\r\n"), None);
        assert_eq!(start(b"INVITE sip:x\r\n"), None);
        assert_eq!(start(b"INVITE  SIP/2.0\r\n"), None);
        assert_eq!(start(b"\x80\x01 a SIP/2.0"), None);
        assert_eq!(start(b""), None);
        assert!(matches!(
            start(b"OPTIONS sip:x SIP/2.0"),
            Some(Start::Request { .. })
        ));
    }

    #[test]
    fn any_bytes_give_ranges_inside_the_message() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let alphabet = b"ab :\r\n\t;=SIP/2.0 1";
        for _ in 0..5000 {
            let len = rng.random_range(0..60);
            let m: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let h = Head::scan(&m);
            let _ = h.start(&m);
            for f in &h.fields {
                assert!(f.name.end <= m.len() && f.value.end <= m.len() && f.line.end <= m.len());
                assert!(f.line.start <= f.value.start || f.value.is_empty());
            }
            let _ = h.body(&m);
        }
    }
}

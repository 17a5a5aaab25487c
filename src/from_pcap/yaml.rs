//! YAML scalars that carry a template's text exactly.
//!
//! Two forms: a literal block (`|`), readable, for text made of printable lines
//! without trailing blanks; and a double-quoted scalar with escapes, which carries any
//! Unicode text (control characters, a lone CR, trailing spaces, NUL) and is what
//! `raw: true` templates get. A double-quoted scalar is broken after each `\n` escape
//! with an escaped line break, so a message still reads one line per line; the first
//! blank of a continuation line is escaped, since YAML drops the leading blanks there.
//!
//! Whatever form is chosen, the caller checks it by parsing it back
//! ([`reparses_to`]): the generated file must give the template text back, byte for
//! byte, or the message is written another way.

use std::fmt::Write as _;

/// Characters a block scalar can hold as they are: tab and printable ASCII, and
/// non-ASCII text except what YAML parsers treat as line breaks, byte-order marks or
/// non-printable (NEL, LS, PS, BOM, C1 controls, DEL).
fn block_safe(c: char) -> bool {
    match c {
        '\t' | ' '..='~' => true,
        '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => false,
        c => !c.is_control() && !is_noncharacter(c),
    }
}

fn is_noncharacter(c: char) -> bool {
    let n = c as u32;
    (0xfdd0..=0xfdef).contains(&n) || n & 0xfffe == 0xfffe
}

/// `text` as a literal block scalar whose lines are indented by `indent` spaces (the
/// indicator line included, without the leading `key: `); None when a block cannot
/// carry it.
pub fn block(text: &str, indent: usize) -> Option<String> {
    let body = text.trim_end_matches('\n');
    if body.is_empty() || !text.chars().all(|c| c == '\n' || block_safe(c)) {
        return None;
    }
    let trailing = text.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}\n");
    for (i, line) in body.split('\n').enumerate() {
        // A first line starting with a blank would need an indentation indicator, and
        // trailing blanks are invisible in an editor (and often stripped by one).
        if line.ends_with([' ', '\t']) || (i == 0 && line.starts_with([' ', '\t'])) {
            return None;
        }
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        // A content line must not start with a tab at the indentation column in
        // some parsers' eyes; an indentation made of spaces keeps it content.
        let _ = writeln!(out, "{:indent$}{line}", "");
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

/// `text` as a double-quoted scalar; continuation lines are indented by `indent`.
pub fn quoted(text: &str, indent: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    out.push('"');
    let mut line_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => {
                out.push_str("\\n");
                // Break the source line after a line feed (not at the very end).
                if chars.peek().is_some() {
                    let _ = write!(out, "\\\n{:indent$}", "");
                    line_start = true;
                    continue;
                }
            }
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' if line_start => out.push_str("\\x20"),
            c if c == ' ' || (c.is_ascii_graphic()) => out.push(c),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if block_safe(c) => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
        line_start = false;
    }
    out.push('"');
    out
}

/// `text` on one line, double-quoted when a plain scalar could be read as something
/// else (a number, a boolean, a mapping, a comment) or could not hold it.
pub fn inline(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        && text.as_bytes()[0].is_ascii_alphabetic()
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        text.to_string()
    } else {
        quoted(text, 0).replace("\\\n", "")
    }
}

/// A step list item `  - send: SCALAR`, ending with a line end (a block scalar
/// already has one: another would be an empty line, part of a `|+` block).
pub fn send_item(scalar: &str) -> String {
    let mut item = format!("  - send: {scalar}");
    if !item.ends_with('\n') {
        item.push('\n');
    }
    item
}

/// Does `scalar` (what follows `send: ` in a step list item, continuation lines
/// already indented) read back as `text`?
pub fn reparses_to(scalar: &str, text: &str) -> bool {
    let doc = format!("steps:\n{}    raw: true\n", send_item(scalar));
    #[derive(serde::Deserialize)]
    struct Doc {
        steps: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        send: String,
        #[allow(dead_code)]
        raw: bool,
    }
    match serde_saphyr::from_str::<Doc>(&doc) {
        Ok(d) => d.steps.len() == 1 && d.steps[0].send == text,
        Err(_) => false,
    }
}

/// Standard base64 with padding (RFC 4648 §4), for `bytes_base64:` steps.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The indentation of continuation lines in a step's `send:` (see `reparses_to`).
    const INDENT: usize = 6;

    #[test]
    fn blocks_for_plain_lines() {
        for text in [
            "INVITE sip:x SIP/2.0\nVia: a\n\nv=0\n",
            "INVITE sip:x SIP/2.0\nVia: a",
            "BYE sip:x SIP/2.0\n\n\n",
            "X\n\ttab-started continuation\n",
            "Subject: héllo wörld\n",
            "# not a comment\n---\n...\n- x: y\n",
        ] {
            let b = block(text, INDENT).unwrap_or_else(|| panic!("{text:?}"));
            assert!(reparses_to(&b, text), "{text:?} as\n{b}");
        }
        for text in [
            "",
            " leading blank\n",
            "trailing blank \n",
            "lone\rCR\n",
            "nul\0\n",
            "line sep\u{2028}\n",
            "del\u{7f}\n",
        ] {
            assert_eq!(block(text, INDENT), None, "{text:?}");
        }
    }

    #[test]
    fn quoted_carries_anything() {
        for text in [
            "INVITE sip:x SIP/2.0\r\nVia: a\r\n\r\n",
            " leading\r\n  folded\r\n\ttab\r\n",
            "trailing  \r\nnul\0 bell\x07 del\x7f esc\x1b\r\n",
            "quote \" backslash \\ {{ call_id }}\n",
            "\n\n",
            "lone\rCR and \u{85} NEL \u{2028} \u{feff} \u{10ffff} \u{fffe} é",
            "",
            " ",
            "\r\n ",
            "a\\\nb",
        ] {
            let q = quoted(text, INDENT);
            assert!(reparses_to(&q, text), "{text:?} as\n{q}");
        }
    }

    #[test]
    fn random_text_round_trips() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x9a3);
        let pieces = [
            "\r\n", "\n", "\r", " ", "  ", "\t", "\0", "\x01", "\x7f", "\"", "\\", "é", "\u{85}",
            "\u{2028}", "\u{feff}", "#", ": ", "- ", "{{ x }}", "'", "%", "@", "SIP/2.0", "a", "Z",
            "0", "---", "...", "&a", "*a", "!t", "|", ">",
        ];
        for _ in 0..3000 {
            let n = rng.random_range(0..24);
            let text: String = (0..n)
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            let q = quoted(&text, INDENT);
            assert!(reparses_to(&q, &text), "{text:?} as\n{q}");
            if let Some(b) = block(&text, INDENT) {
                assert!(reparses_to(&b, &text), "{text:?} as\n{b}");
            }
        }
    }

    #[test]
    fn inline_values() {
        assert_eq!(inline("INVITE"), "INVITE");
        assert_eq!(inline("200"), "\"200\"");
        assert_eq!(inline("yes"), "\"yes\"");
        assert_eq!(inline("a: b"), "\"a: b\"");
        assert_eq!(inline("x\ny"), "\"x\\ny\"");
    }

    #[test]
    fn base64_vectors() {
        for (plain, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), b64);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}

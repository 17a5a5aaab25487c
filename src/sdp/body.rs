//! Finding the SDP inside a SIP message body: `application/sdp` directly, or one part of a
//! `multipart/mixed` (or `/alternative`, `/related`) body — SIP-I/SIP-T carry ISUP beside
//! the SDP, and some endpoints add XML parts. Content-Type parameters are tolerated.

use memchr::memmem;

/// Multipart bodies nest in theory; three levels cover anything seen in practice and bound
/// the work on hostile input.
const MAX_DEPTH: usize = 3;

/// The SDP bytes of a body whose Content-Type is `content_type`. A body without a
/// Content-Type that starts like SDP (`v=`) is accepted too: some captures strip headers
/// and some endpoints forget it.
pub fn find_sdp<'a>(content_type: Option<&str>, body: &'a [u8]) -> Option<&'a [u8]> {
    find(content_type, body, 0)
}

fn find<'a>(content_type: Option<&str>, body: &'a [u8], depth: usize) -> Option<&'a [u8]> {
    let Some(ct) = content_type else {
        return starts_like_sdp(body).then_some(body);
    };
    let (media_type, params) = ct.split_once(';').unwrap_or((ct, ""));
    let media_type = media_type.trim();
    if media_type.eq_ignore_ascii_case("application/sdp") {
        return Some(body);
    }
    if depth >= MAX_DEPTH || !starts_with_ignore_case(media_type, "multipart/") {
        return None;
    }
    let boundary = boundary_param(params)?;
    parts(body, boundary.as_bytes()).find_map(|part| {
        let (part_ct, part_body) = part_headers(part);
        find(part_ct.as_deref(), part_body, depth + 1)
    })
}

fn starts_like_sdp(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body.get(start..).is_some_and(|b| b.starts_with(b"v="))
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// `boundary=xyz` or `boundary="x y z"` among `;`-separated parameters.
fn boundary_param(params: &str) -> Option<String> {
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// The body parts between `--boundary` delimiter lines (RFC 2046 §5.1.1). The line end
/// before a delimiter belongs to the delimiter, so it is not part of the preceding part.
fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    // Delimiters only count at the start of a line.
    let starts: Vec<usize> = memmem::find_iter(body, &delim)
        .filter(|&i| i == 0 || body.get(i - 1) == Some(&b'\n'))
        .collect();
    let dlen = delim.len();
    (0..starts.len()).filter_map(move |k| {
        let at = *starts.get(k)?;
        let after = body.get(at + dlen..)?;
        if after.starts_with(b"--") {
            return None; // close delimiter
        }
        // The part starts after the rest of the delimiter line.
        let line_end = after.iter().position(|&b| b == b'\n')?;
        let begin = at + dlen + line_end + 1;
        let mut end = starts.get(k + 1).copied().unwrap_or(body.len());
        if starts.get(k + 1).is_some() {
            if end > begin && body.get(end - 1) == Some(&b'\n') {
                end -= 1;
            }
            if end > begin && body.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        body.get(begin..end.max(begin))
    })
}

/// Splits a body part into its Content-Type (if any) and its content.
fn part_headers(part: &[u8]) -> (Option<String>, &[u8]) {
    let mut pos = 0;
    let mut content_type = None;
    loop {
        let rest = part.get(pos..).unwrap_or(&[]);
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            // Headers never ended: treat the whole part as content with no type.
            return (None, part);
        };
        let line = rest.get(..nl).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            return (content_type, part.get(pos..).unwrap_or(&[]));
        }
        let line = String::from_utf8_lossy(line);
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-type") || name.eq_ignore_ascii_case("c") {
                content_type = Some(value.trim().to_owned());
            }
        } else if pos == nl + 1 && line.starts_with("v=") {
            // No header block at all: the part is bare content.
            return (None, part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn plain_and_parameters() {
        assert_eq!(
            find_sdp(Some("application/sdp"), SDP.as_bytes()),
            Some(SDP.as_bytes())
        );
        assert_eq!(
            find_sdp(Some("Application/SDP ; charset=utf-8"), SDP.as_bytes()),
            Some(SDP.as_bytes())
        );
        assert_eq!(find_sdp(None, SDP.as_bytes()), Some(SDP.as_bytes()));
        assert_eq!(find_sdp(None, b"hello"), None);
        assert_eq!(find_sdp(Some("text/plain"), SDP.as_bytes()), None);
    }

    #[test]
    fn multipart_mixed_with_isup() {
        let body = format!(
            "--unique-boundary-1\r\nContent-Type: application/isup; version=itu-t92+\r\n\
             Content-Disposition: signal; handling=optional\r\n\r\n\x01\x00\x49\x00\r\n\
             --unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n\
             --unique-boundary-1--\r\n"
        );
        let got = find_sdp(
            Some("multipart/mixed;boundary=\"unique-boundary-1\""),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(got, SDP.as_bytes());
    }

    #[test]
    fn multipart_lf_only_nested_and_preamble() {
        let inner = format!("--in\nc: application/sdp\n\n{SDP}--in--\n");
        let body = format!(
            "preamble\n--out\nContent-Type: text/plain\n\nhi\n--out\n\
             Content-Type: multipart/alternative; boundary=in\n\n{inner}\n--out--\n"
        );
        let got = find_sdp(Some("multipart/mixed; boundary=out"), body.as_bytes()).unwrap();
        // The line end before a delimiter belongs to the delimiter.
        assert_eq!(got, SDP.trim_end().as_bytes());
    }

    #[test]
    fn multipart_garbage() {
        for body in [
            &b""[..],
            b"--b",
            b"--b\r\n",
            b"--b--",
            b"--b\r\nContent-Type: application/sdp",
            b"--b\r\n\r\n--b\r\n--b--",
            b"\n--b\n--b\n--b",
        ] {
            let _ = find_sdp(Some("multipart/mixed; boundary=b"), body);
        }
        assert_eq!(find_sdp(Some("multipart/mixed"), b"--b\r\n\r\nv=0"), None);
        assert_eq!(
            find_sdp(Some("multipart/mixed; boundary="), b"--\r\n"),
            None
        );
        // Part with SDP but no part headers.
        let got = find_sdp(
            Some("multipart/mixed; boundary=b"),
            b"--b\r\n\r\nv=0\r\n--b--",
        );
        assert_eq!(got, Some(&b"v=0"[..]));
    }
}

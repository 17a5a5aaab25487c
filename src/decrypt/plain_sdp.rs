//! Make the SIP in a decrypted capture describe plain RTP: `RTP/SAVP(F)` becomes
//! `RTP/AVP(F)` and `a=crypto` lines go, with Content-Length fixed.
//!
//! Wireshark and tshark set up RTP conversations from the SDP they see; with the
//! SRTP profile still there they decode the (now plain) packets as SRTP and take the
//! last bytes of every payload for an authentication tag. Keys are also better not
//! copied into a capture meant to be shared.

/// The message rewritten, or `None` when it carries nothing to change (or is not a
/// message this can safely edit).
pub fn plain_sdp(message: &[u8]) -> Option<Vec<u8>> {
    let (head_len, sep_len) = find_body(message)?;
    let head = std::str::from_utf8(&message[..head_len]).ok()?;
    let body = message.get(head_len + sep_len..)?;
    let body_text = std::str::from_utf8(body).ok()?;
    if !body_text.contains("RTP/SAVP") && !body_text.contains("a=crypto:") {
        return None;
    }
    let mut new_body = String::with_capacity(body.len());
    for line in body_text.split_inclusive('\n') {
        if line.starts_with("a=crypto:") {
            continue;
        }
        if line.starts_with("m=") {
            new_body.push_str(&line.replacen(" RTP/SAVP", " RTP/AVP", 1));
        } else {
            new_body.push_str(line);
        }
    }
    let mut out = Vec::with_capacity(message.len());
    for line in head.split_inclusive('\n') {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let eol = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
            let eol = if line.ends_with('\n') { eol } else { "" };
            out.extend_from_slice(format!("{name}: {}{eol}", new_body.len()).as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
        }
    }
    out.extend_from_slice(&message[head_len..head_len + sep_len]);
    out.extend_from_slice(new_body.as_bytes());
    Some(out)
}

/// Length of the head (start line + headers, up to but not including the blank line)
/// and of the separator before the body.
fn find_body(m: &[u8]) -> Option<(usize, usize)> {
    let crlf = memchr::memmem::find(m, b"\r\n\r\n").map(|i| (i + 2, 2));
    let lf = memchr::memmem::find(m, b"\n\n").map(|i| (i + 1, 1));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:b@h SIP/2.0\r\nCall-ID: x\r\nContent-Type: application/sdp\r\n\
Content-Length: 130\r\n\r\nv=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";

    #[test]
    fn profile_and_keys_go_length_follows() {
        let out = String::from_utf8(plain_sdp(INVITE.as_bytes()).unwrap()).unwrap();
        assert!(out.contains("m=audio 4000 RTP/AVP 0\r\n"), "{out}");
        assert!(!out.contains("a=crypto"), "{out}");
        let msg = crate::sip::message::parse(out.as_bytes()).unwrap();
        let body_len = out.len() - out.find("\r\n\r\n").unwrap() - 4;
        assert_eq!(msg.content_length(), Some(body_len));
    }

    #[test]
    fn savpf_compact_length_and_bare_lf() {
        let m = "SIP/2.0 200 OK\nl: 99\n\nv=0\nm=video 5000 RTP/SAVPF 96\na=crypto:2 X inline:Y\n";
        let out = String::from_utf8(plain_sdp(m.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            "SIP/2.0 200 OK\nl: 29\n\nv=0\nm=video 5000 RTP/AVPF 96\n"
        );
    }

    #[test]
    fn nothing_to_change() {
        assert!(plain_sdp(b"BYE sip:b@h SIP/2.0\r\nContent-Length: 0\r\n\r\n").is_none());
        assert!(plain_sdp(b"no body at all").is_none());
        assert!(plain_sdp(b"X\r\n\r\nm=audio 1 RTP/AVP 0\r\n").is_none());
        assert!(plain_sdp(b"X\r\n\r\n\xff\xfe RTP/SAVP").is_none());
    }
}

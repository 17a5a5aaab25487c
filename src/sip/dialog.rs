//! Dialog state (RFC 3261 §12): tags, route set, remote target, CSeq, and the
//! in-dialog requests built from it (BYE, ACK for 2xx, ...). Works on already
//! extracted header values so it has no dependency on the parser.
//! STUB: signatures are the contract.

/// Local transport facts needed for Via and Contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local<'a> {
    /// "UDP", "TCP", ...
    pub transport: &'a str,
    pub host: &'a str,
    pub port: u16,
}

/// Where an in-dialog request goes (§12.2.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTarget {
    pub request_uri: String,
    /// Route header values, in order.
    pub routes: Vec<String>,
    /// URI of the next hop: the first Route (loose or strict) or the remote target.
    pub next_hop: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From/To header value (with our tag), e.g. `<sip:a@h>;tag=x`.
    pub local_party: String,
    /// Their From/To header value (with their tag).
    pub remote_party: String,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    /// Route set, already in the order Route headers are written.
    pub route_set: Vec<String>,
    /// Remote target URI (from Contact), without angle brackets.
    pub remote_target: String,
}

impl Dialog {
    /// UAC side, from the request we sent and a 2xx/1xx-with-tag response:
    /// route set = Record-Route of the response reversed (§12.1.2).
    pub fn new_uac(
        call_id: &str,
        from_value: &str,
        to_value: &str,
        record_route: &[&str],
        contact_uri: &str,
        cseq: u32,
    ) -> Dialog {
        let _ = (
            call_id,
            from_value,
            to_value,
            record_route,
            contact_uri,
            cseq,
        );
        todo!()
    }
    /// UAS side, from the received request; `to_value` already carries our tag.
    /// Route set = Record-Route of the request in order (§12.1.1).
    pub fn new_uas(
        call_id: &str,
        from_value: &str,
        to_value: &str,
        record_route: &[&str],
        contact_uri: &str,
        remote_cseq: u32,
    ) -> Dialog {
        let _ = (
            call_id,
            from_value,
            to_value,
            record_route,
            contact_uri,
            remote_cseq,
        );
        todo!()
    }
    /// Target refresh (Contact of a re-INVITE/2xx/UPDATE).
    pub fn refresh_target(&mut self, contact_uri: &str) {
        let _ = contact_uri;
        todo!()
    }
    /// Loose routing when the first route has `;lr`, strict routing otherwise.
    pub fn request_target(&self) -> RequestTarget {
        todo!()
    }
    /// Append `Route: <value>\r\n` for each route to `out` (nothing when the set is empty).
    pub fn write_route_headers(&self, out: &mut Vec<u8>) {
        let _ = out;
        todo!()
    }
    /// Build an in-dialog request (not ACK/CANCEL): increments and uses `local_cseq`.
    /// Writes start line, Via (with `branch` and `;rport`), Route, Max-Forwards: 70,
    /// From (local_party), To (remote_party), Call-ID, CSeq, Contact (when given),
    /// `extra_headers` (each line CRLF-terminated, may be empty), Content-Length, body.
    /// Returns the CSeq number used.
    pub fn build_request(
        &mut self,
        method: &str,
        local: &Local<'_>,
        branch: &str,
        contact: Option<&str>,
        extra_headers: &str,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> u32 {
        let _ = (method, local, branch, contact, extra_headers, body, out);
        todo!()
    }
    /// ACK for a 2xx (its own transaction, new branch), CSeq number = the INVITE's.
    pub fn build_ack(&self, invite_cseq: u32, local: &Local<'_>, branch: &str, out: &mut Vec<u8>) {
        let _ = (invite_cseq, local, branch, out);
        todo!()
    }
}

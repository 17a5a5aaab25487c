//! Message templates compiled once into literal/slot segments, rendered per message
//! without a template engine. Syntax: `{{ name }}` where name is a built-in, a
//! scenario variable or `last.<header>`.
//! STUB: signatures are the contract.

/// Values the interpreter supplies per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    CallId,
    /// A fresh branch for the message being rendered (`z9hG4bK` prefix).
    Branch,
    LocalIp,
    LocalPort,
    RemoteIp,
    RemotePort,
    /// "UDP", "TCP", ...
    Transport,
    /// Tag in the From header of the dialog-creating request (UAC: ours, UAS: theirs).
    FromTag,
    /// Tag in the To header (UAC: theirs once known, UAS: ours).
    ToTag,
    /// CSeq number for the message being rendered.
    Cseq,
    /// `Route:` header lines from the dialog route set (empty when none).
    Route,
    /// Remote target URI (Contact of the peer; before a dialog exists, the target URI).
    RemoteTarget,
    /// 1-based call number in this run.
    CallNumber,
    MediaIp,
    MediaPort,
    /// Length of the rendered body (what `Content-Length` is computed from).
    Len,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        let _ = name;
        todo!()
    }
}

/// The interpreter's side of rendering.
pub trait RenderContext {
    fn builtin(&mut self, b: Builtin, out: &mut Vec<u8>);
    fn var(&self, slot: usize, out: &mut Vec<u8>);
    /// Every header line named `name` (lowercase full name; compact forms resolved)
    /// from the last received message, exactly as received, joined by CRLF (no final
    /// CRLF). Nothing when absent.
    fn last_header(&self, name: &str, out: &mut Vec<u8>);
}

#[derive(Debug)]
pub struct Template {
    _private: (),
}

impl Template {
    /// Request method when the start line is a request with a literal method, e.g. "INVITE".
    pub fn method(&self) -> Option<&str> {
        todo!()
    }
    /// True when the start line is a response (`SIP/2.0 ...`).
    pub fn is_response(&self) -> bool {
        todo!()
    }
    /// Render into `out` (appended). Head lines are joined with CRLF; a line that
    /// contains a slot and renders to nothing but whitespace is dropped; the head ends
    /// with an empty line; `Content-Length` is set to the body length (added if
    /// missing). With `raw`, the rendered text is sent exactly as written.
    pub fn render(&self, ctx: &mut dyn RenderContext, out: &mut Vec<u8>) {
        let _ = (ctx, out);
        todo!()
    }
}

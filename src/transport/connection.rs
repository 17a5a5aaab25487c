//! One SIP connection's protocol state, sans-IO: socket bytes in, SIP messages out;
//! SIP messages in, socket bytes out. The layers stack as the transport says:
//!
//! ```text
//! tcp:  socket ↔                          framer (Content-Length) ↔ SIP
//! tls:  socket ↔ TLS ↔                    framer                  ↔ SIP
//! ws:   socket ↔       WebSocket (1 message per frame)            ↔ SIP
//! wss:  socket ↔ TLS ↔ WebSocket                                  ↔ SIP
//! ```
//!
//! The driver owns the socket and only moves bytes: it hands what it read to
//! [`Connection::receive`], writes [`Connection::output`] and reports how much went
//! with [`Connection::wrote`]. Messages queued before the handshakes end wait in the
//! layer that is not ready (rustls and the WebSocket session queue them).

use std::ops::Range;
use std::sync::Arc;

use super::framing::{Framed, FramerLimits, FramingError, StreamFramer};
use super::kind::TransportKind;
use super::tls::{TlsError, TlsSession};
use super::websocket::{WsClientSettings, WsError, WsSession};
use crate::sip::validate::Malformed;

/// What a side's connections share: built once per run.
#[derive(Clone, Default)]
pub struct ConnectionSettings {
    pub limits: FramerLimits,
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
    /// WebSocket client: request path and Origin (the Host comes from the target).
    pub ws_path: String,
    pub ws_origin: Option<String>,
    /// Output bytes a connection may hold unsent before it is closed as stuck
    /// (back-pressure: the driver never blocks on one slow peer).
    pub max_output: usize,
    /// How long a per-call connection stays open after its call ended (a peer may
    /// still be in its final wait: SIPp's uas pauses 4 s and fails the call if the
    /// connection goes first).
    pub linger: std::time::Duration,
}

/// Why a connection ended; counted per reason.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Framing(#[from] FramingError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    WebSocket(#[from] WsError),
    #[error("more than {0} bytes waiting to be sent: the peer does not read")]
    OutputFull(usize),
    #[error("a message over WebSocket is not SIP")]
    NotSip,
}

impl ConnectionError {
    /// The peer's bytes were no usable SIP message: why, as counted with the
    /// messages that do not parse.
    pub fn malformed(&self) -> Option<Malformed> {
        match self {
            ConnectionError::Framing(f) => Some(match f {
                FramingError::TooLarge { .. } | FramingError::HeaderTooLong { .. } => {
                    Malformed::Oversize
                }
                FramingError::NoContentLength => Malformed::ContentLength,
                FramingError::BadHeader { .. } => Malformed::Header,
                FramingError::Garbage(_) => Malformed::Garbage,
            }),
            ConnectionError::NotSip => Some(Malformed::Garbage),
            _ => None,
        }
    }
}

/// What [`Connection::receive`] found, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A SIP message: this range of the caller's inbox.
    Message(Range<usize>),
    /// The peer answered our keep-alive.
    Pong,
}

pub struct Connection {
    tls: Option<Box<TlsSession>>,
    ws: Option<Box<WsSession>>,
    framer: StreamFramer,
    /// Decrypted bytes between TLS and the layer above (reused).
    plain: Vec<u8>,
    /// WebSocket replies (pongs, close) on their way down to TLS (reused).
    ws_out: Vec<u8>,
    /// Bytes for the socket; `written` of them already went.
    out: Vec<u8>,
    written: usize,
    max_output: usize,
    /// The TCP connect completed (always true for accepted connections).
    connected: bool,
}

impl Connection {
    /// A connection we open towards `host` (SNI and WebSocket `Host`; `authority` is
    /// host[:port] as the target gave it).
    pub fn client(
        kind: TransportKind,
        settings: &ConnectionSettings,
        host: &str,
        authority: &str,
    ) -> Result<Connection, ConnectionError> {
        let mut c = Connection::new(settings);
        c.connected = false;
        if kind.is_secure() {
            let cfg = settings.tls_client.as_ref().ok_or_else(|| {
                TlsError::Config("TLS transport without a TLS client configuration".into())
            })?;
            c.tls = Some(Box::new(TlsSession::client(cfg, host)?));
        }
        if kind.is_websocket() {
            c.ws = Some(Box::new(WsSession::client(&WsClientSettings {
                host: authority.to_string(),
                path: if settings.ws_path.is_empty() {
                    "/".into()
                } else {
                    settings.ws_path.clone()
                },
                origin: settings.ws_origin.clone(),
            })?));
        }
        Ok(c)
    }

    /// A connection a peer opened to our listener.
    pub fn server(
        kind: TransportKind,
        settings: &ConnectionSettings,
    ) -> Result<Connection, ConnectionError> {
        let mut c = Connection::new(settings);
        if kind.is_secure() {
            let cfg = settings
                .tls_server
                .as_ref()
                .ok_or_else(|| TlsError::Config("a TLS listener needs --cert and --key".into()))?;
            c.tls = Some(Box::new(TlsSession::server(cfg)?));
        }
        if kind.is_websocket() {
            c.ws = Some(Box::new(WsSession::server()));
        }
        Ok(c)
    }

    fn new(settings: &ConnectionSettings) -> Connection {
        Connection {
            tls: None,
            ws: None,
            framer: StreamFramer::new(settings.limits),
            plain: Vec::new(),
            ws_out: Vec::new(),
            out: Vec::new(),
            written: 0,
            max_output: settings.max_output.max(64 * 1024),
            connected: true,
        }
    }

    /// The TCP connect finished: the client's TLS hello or WebSocket upgrade goes out
    /// (TLS first; the upgrade is sent through it once the handshake ends).
    pub fn on_connected(&mut self) -> Result<(), ConnectionError> {
        self.connected = true;
        if let Some(tls) = self.tls.as_mut() {
            tls.start(&mut self.out);
        }
        if let Some(ws) = self.ws.as_mut() {
            let mut upgrade = Vec::new();
            ws.start(&mut upgrade);
            self.send_below_ws(&upgrade)?;
        }
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Handshakes (TLS, WebSocket upgrade) are over: messages flow.
    pub fn is_open(&self) -> bool {
        self.connected
            && self.tls.as_ref().is_none_or(|t| !t.is_handshaking())
            && self.ws.as_ref().is_none_or(|w| w.is_open())
    }

    /// The TLS handshake is still running.
    pub fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// The peer closed cleanly at the TLS or WebSocket level (close_notify, close
    /// frame): anything after it is not expected.
    pub fn peer_closed(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.peer_closed())
            || self.ws.as_ref().is_some_and(|w| w.peer_closed())
    }

    /// Bytes read from the socket. Whole messages found (WebSocket frames or framed
    /// stream messages) are appended to `inbox`, the caller's buffer shared by all
    /// connections (one copy per message, none kept per connection), and listed in
    /// `events`; replies the layers owe (TLS handshake, pongs, keep-alive answers)
    /// are queued in the output. An error means: send what is queued (a TLS
    /// alert), then close.
    pub fn receive(
        &mut self,
        data: &[u8],
        inbox: &mut Vec<u8>,
        events: &mut Vec<Inbound>,
    ) -> Result<(), ConnectionError> {
        let plain = match self.tls.as_mut() {
            Some(tls) => {
                self.plain.clear();
                tls.receive(data, &mut self.plain, &mut self.out)?;
                &self.plain[..]
            }
            None => data,
        };
        if plain.is_empty() {
            return Ok(());
        }
        if let Some(ws) = self.ws.as_mut() {
            let mut frames = std::mem::take(&mut self.ws_out);
            frames.clear();
            let mut not_sip = false;
            let r = ws.receive(plain, &mut frames, |msg| {
                // RFC 7118: every frame is one whole message; a keep-alive is
                // just an empty frame.
                if msg.iter().all(|b| b.is_ascii_whitespace()) {
                    return;
                }
                if !looks_like_sip(msg) {
                    not_sip = true;
                    return;
                }
                let start = inbox.len();
                inbox.extend_from_slice(msg);
                events.push(Inbound::Message(start..inbox.len()));
            });
            // WebSocket's own replies (pong, close) go down through TLS.
            let flushed = self.send_below_ws(&frames);
            self.ws_out = frames;
            r?;
            flushed?;
            if not_sip {
                return Err(ConnectionError::NotSip);
            }
            return Ok(());
        }
        let framer = &mut self.framer;
        framer.push(plain)?;
        let mut pings = 0;
        while let Some(item) = framer.next_item()? {
            match item {
                Framed::Message(range) => {
                    let start = inbox.len();
                    inbox.extend_from_slice(&framer.buffer()[range]);
                    events.push(Inbound::Message(start..inbox.len()));
                }
                Framed::Ping => pings += 1,
                Framed::Pong => {
                    events.push(Inbound::Pong);
                }
            }
        }
        framer.consume();
        for _ in 0..pings {
            // RFC 5626 §3.5.1: a CRLFCRLF ping is answered with one CRLF.
            self.send_stream(b"\r\n")?;
        }
        Ok(())
    }

    /// Queue one SIP message.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), ConnectionError> {
        if let Some(ws) = self.ws.as_mut() {
            let mut frame = Vec::with_capacity(msg.len() + 14);
            ws.send(msg, &mut frame)?;
            return self.send_below_ws(&frame);
        }
        self.send_stream(msg)
    }

    /// Queue a keep-alive: CRLFCRLF on a stream (RFC 5626 §3.5.1), a ping frame over
    /// WebSocket. Not sent before the handshakes end.
    pub fn send_keepalive(&mut self) -> Result<(), ConnectionError> {
        if !self.is_open() {
            return Ok(());
        }
        if let Some(ws) = self.ws.as_mut() {
            let mut frame = Vec::new();
            ws.ping(&mut frame);
            return self.send_below_ws(&frame);
        }
        // A lone CRLF is a pong only while our ping is out.
        self.framer.expect_pong();
        self.send_stream(b"\r\n\r\n")
    }

    /// Close cleanly: TLS close_notify / WebSocket close frame queued (the caller
    /// writes what it can, then shuts the socket).
    pub fn close(&mut self) {
        if let Some(ws) = self.ws.as_mut() {
            let mut frame = Vec::new();
            ws.close(&mut frame);
            let _ = self.send_below_ws(&frame);
        }
        if let Some(tls) = self.tls.as_mut() {
            tls.close(&mut self.out);
        }
    }

    /// Stream bytes (SIP or keep-alives) through TLS when there is TLS.
    fn send_stream(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        match self.tls.as_mut() {
            Some(tls) => tls.send(bytes, &mut self.out)?,
            None => self.out.extend_from_slice(bytes),
        }
        self.check_output()
    }

    /// WebSocket bytes (upgrade, frames) go through TLS when there is TLS.
    fn send_below_ws(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.send_stream(bytes)
    }

    fn check_output(&self) -> Result<(), ConnectionError> {
        if self.out.len() - self.written > self.max_output {
            return Err(ConnectionError::OutputFull(self.max_output));
        }
        Ok(())
    }

    /// Bytes waiting for the socket.
    pub fn output(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// The socket took `n` bytes of `output()`.
    pub fn wrote(&mut self, n: usize) {
        self.written = (self.written + n).min(self.out.len());
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
            // A burst (a 10,000-call start) may have grown the buffer: give it back
            // so thousands of idle connections stay small.
            if self.out.capacity() > 16 * 1024 {
                self.out.shrink_to(4096);
            }
        }
    }

    /// Heap bytes this connection holds in its buffers (for memory figures).
    pub fn buffered(&self) -> usize {
        self.out.capacity() + self.plain.capacity() + self.framer.buffered()
    }
}

/// A SIP start line: a response, or METHOD SP URI SP SIP/2.0.
fn looks_like_sip(msg: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', msg).unwrap_or(msg.len());
    let line = msg[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&msg[..line_end]);
    line.starts_with(b"SIP/2.0 ") || line.ends_with(b" SIP/2.0")
}

/// Settings for unit tests: defaults, 1 MB of output.
#[cfg(test)]
pub(crate) fn test_settings() -> ConnectionSettings {
    ConnectionSettings {
        max_output: 1 << 20,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        test_settings()
    }

    const INVITE: &[u8] = b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 4\r\n\r\nabcd";

    /// Two plain TCP connection states pumped into each other.
    #[test]
    fn tcp_messages_and_keepalives() {
        let mut a = Connection::client(TransportKind::Tcp, &settings(), "b", "b:5060").unwrap();
        let mut b = Connection::server(TransportKind::Tcp, &settings()).unwrap();
        a.on_connected().unwrap();
        assert!(a.is_open() && b.is_open());
        a.send(INVITE).unwrap();
        a.send(INVITE).unwrap();
        let wire = a.output().to_vec();
        a.wrote(wire.len());
        // Split anywhere: the framer puts messages back together.
        let (mut inbox, mut events) = (Vec::new(), Vec::new());
        b.receive(&wire[..10], &mut inbox, &mut events).unwrap();
        assert!(events.is_empty());
        b.receive(&wire[10..], &mut inbox, &mut events).unwrap();
        let msgs: Vec<&[u8]> = events
            .iter()
            .map(|e| match e {
                Inbound::Message(r) => &inbox[r.clone()],
                Inbound::Pong => panic!(),
            })
            .collect();
        assert_eq!(msgs, vec![INVITE, INVITE]);
        a.send_keepalive().unwrap();
        let ping = a.output().to_vec();
        a.wrote(ping.len());
        assert_eq!(ping, b"\r\n\r\n");
        let (mut inbox, mut events) = (Vec::new(), Vec::new());
        b.receive(&ping, &mut inbox, &mut events).unwrap();
        assert!(events.is_empty());
        assert_eq!(b.output(), b"\r\n");
        let pong = b.output().to_vec();
        b.wrote(pong.len());
        a.receive(&pong, &mut inbox, &mut events).unwrap();
        assert_eq!(events, vec![Inbound::Pong]);
    }

    #[test]
    fn output_bound_closes_a_stuck_connection() {
        let s = ConnectionSettings {
            max_output: 64 * 1024,
            ..Default::default()
        };
        let mut a = Connection::server(TransportKind::Tcp, &s).unwrap();
        let big = vec![b'x'; 40 * 1024];
        a.send(&big).unwrap();
        assert!(matches!(a.send(&big), Err(ConnectionError::OutputFull(_))));
    }

    #[test]
    fn sip_start_lines() {
        assert!(looks_like_sip(INVITE));
        assert!(looks_like_sip(b"SIP/2.0 200 OK\r\n\r\n"));
        assert!(!looks_like_sip(b"hello world"));
        assert!(!looks_like_sip(b""));
    }
}

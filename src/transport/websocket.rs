//! SIP over WebSocket (RFC 6455, RFC 7118) with tungstenite's protocol state over
//! borrowed buffers: sans-IO, bytes in and out, one SIP message per frame. Client side
//! sends the upgrade (`Sec-WebSocket-Protocol: sip`, optional `Origin`) and checks the
//! answer; server side accepts upgrades that offer `sip`, answers with it and refuses
//! the others with a 400. Pings are answered; a close frame is answered and reported.
//!
//! ```ignore
//! let mut ws = WsSession::client(&WsClientSettings { host: "proxy:8080".into(),
//!                                  path: "/".into(), origin: None })?;
//! let mut ws = WsSession::server();
//! ws.start(&mut wire);                    // client: the upgrade request into `wire`
//! ws.receive(bytes, &mut wire, |msg| handle(msg))?;  // one call per data frame payload;
//!                                                    // 101/pongs/close replies into `wire`
//! ws.send(sip_bytes, &mut wire)?;         // one text frame (queued until upgraded)
//! ws.ping(&mut wire);  ws.is_open();  ws.peer_closed();  ws.close(&mut wire)
//! ```
//!
//! After an `Err` the session is dead; `wire` may still hold a last word for the peer
//! (the server's 400, or a close frame naming the violation): write it, then close
//! the connection.
//!
//! The upgrade is done here with tungstenite's public pieces (request generation,
//! HTTP parsing, accept key, response building) rather than its handshake machines:
//! those own the stream and would need an owned pipe per connection, the server one
//! hides the request (path, Origin) inside a callback, and both count every read as
//! a packet and refuse a head that arrives in small pieces. After the upgrade a
//! `WebSocketContext` reads frames and answers pings and closes; it takes the stream
//! per call, so the stream is a borrowed view of this call's input and the caller's
//! `wire`, with no pipe buffers in between. What stays allocated per open connection
//! is tungstenite's receive buffer (`READ_BUFFER_SIZE`), renewed when a large frame
//! made it grow; our data frames are written straight into `wire`.

use std::io::{self, Read, Write};
use std::mem;

use tungstenite::handshake::client::{Response, generate_key, generate_request};
use tungstenite::handshake::derive_accept_key;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{Request, create_response, write_response};
use tungstenite::http::{self, HeaderMap, HeaderValue, StatusCode};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Message};

/// Largest frame and message accepted from the peer. RFC 7118 puts one SIP message
/// in one message; SIP over a stream is bounded the same way (`FramerLimits`).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// tungstenite's receive buffer, allocated per open connection. The default
/// (128 KiB) is sized for throughput; SIP messages are mostly under 4 KiB, a larger
/// frame makes the buffer grow to fit it until the next renewal (`RENEW_AFTER`).
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Longest upgrade request or response head. Browsers and SIP proxies send well
/// under 1 KiB; a peer that sends more without ending the head is not talking to us.
const MAX_UPGRADE_HEAD: usize = 8 * 1024;

/// Bytes received after which the receive context is renewed at the next frame
/// boundary: below that its buffer cannot have grown much past `READ_BUFFER_SIZE`,
/// and renewing costs an allocation.
const RENEW_AFTER: usize = READ_BUFFER_SIZE / 2;

/// Bytes of messages that may wait for the upgrade to complete.
const MAX_PENDING: usize = MAX_MESSAGE_SIZE;

/// The subprotocol RFC 7118 registers for SIP.
const SUBPROTOCOL: &str = "sip";

const PROTOCOL_HEADER: &str = "Sec-WebSocket-Protocol";

/// What the server answers an upgrade it refuses; the reason goes to the caller's
/// error, not to a peer that sent something we do not accept.
const REFUSAL: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

#[derive(Clone, Debug, Default)]
pub struct WsClientSettings {
    /// `Host:` of the upgrade request (host[:port] of the target).
    pub host: String,
    /// Request path (from `ws://host:port/path`; `/` when none).
    pub path: String,
    /// `Origin:` header, when set (`--origin`).
    pub origin: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The upgrade failed (status, missing `sip` subprotocol, bad request).
    #[error("WebSocket handshake: {0}")]
    Handshake(String),
    /// A protocol violation or an over-long frame.
    #[error("WebSocket: {0}")]
    Protocol(String),
    /// Sending on a session that is closed (by either side) or failed.
    #[error("WebSocket: the session is closed")]
    Closed,
    /// More than `MAX_PENDING` bytes sent before the upgrade completed.
    #[error("WebSocket: more than {MAX_PENDING} bytes queued before the upgrade completed")]
    Backlog,
}

/// One connection's WebSocket state.
pub struct WsSession {
    phase: Phase,
    upgraded: bool,
    /// The peer sent a close frame (first, or answering ours).
    peer_closed: bool,
    /// Server side: the request target and `Origin` of the upgrade request.
    path: Option<Box<str>>,
    origin: Option<Box<str>>,
}

enum Phase {
    Client {
        /// The upgrade request until `start` hands it out.
        request: Vec<u8>,
        /// The `Sec-WebSocket-Accept` the server must answer with.
        accept: String,
        wait: Upgrade,
    },
    Server(Upgrade),
    Open {
        ws: WebSocketContext,
        role: Role,
        edge: FrameEdge,
    },
    /// Failed, or closed before the upgrade: nothing more to send or read.
    Dead,
}

/// What waits for the upgrade: the peer's head as it arrives, and our messages.
#[derive(Default)]
struct Upgrade {
    head: Vec<u8>,
    pending: Vec<Box<[u8]>>,
    pending_bytes: usize,
}

impl Upgrade {
    fn queue(&mut self, msg: &[u8]) -> Result<(), WsError> {
        if self.pending_bytes + msg.len() > MAX_PENDING {
            return Err(WsError::Backlog);
        }
        self.pending_bytes += msg.len();
        self.pending.push(msg.into());
        Ok(())
    }
}

/// Follows the frame boundaries in the peer's bytes, with tungstenite's own header
/// parser, so the session knows when tungstenite holds no part of a frame.
#[derive(Default)]
struct FrameEdge {
    /// The start of a header split across reads (a header is at most 14 bytes).
    header: [u8; 14],
    header_len: u8,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// Inside a fragmented message: a data frame without FIN came, its final
    /// continuation has not.
    fragmented: bool,
    /// Bytes received since the receive context was last renewed.
    since_renewal: usize,
}

impl FrameEdge {
    fn advance(&mut self, mut data: &[u8]) {
        self.since_renewal = self.since_renewal.saturating_add(data.len());
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = usize::try_from(self.payload_left)
                    .map_or(data.len(), |left| left.min(data.len()));
                self.payload_left -= n as u64;
                data = &data[n..];
                continue;
            }
            let have = usize::from(self.header_len);
            let take = data.len().min(self.header.len() - have);
            self.header[have..have + take].copy_from_slice(&data[..take]);
            let mut cursor = io::Cursor::new(&self.header[..have + take]);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some((header, len))) => {
                    let used = (cursor.position() as usize).saturating_sub(have);
                    data = &data[used.min(data.len())..];
                    self.header_len = 0;
                    self.payload_left = len;
                    match header.opcode {
                        OpCode::Data(Data::Continue) => self.fragmented &= !header.is_final,
                        OpCode::Data(_) => self.fragmented = !header.is_final,
                        OpCode::Control(_) => {}
                    }
                }
                // 14 bytes always hold a whole header, so all of `data` went in.
                Ok(None) => {
                    self.header_len = (have + take) as u8;
                    return;
                }
                // Never at an edge again: tungstenite fails the connection anyway, and
                // renewing on a wrong guess would lose bytes.
                Err(_) => {
                    self.payload_left = u64::MAX;
                    return;
                }
            }
        }
    }

    fn at_edge(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0 && !self.fragmented
    }
}

/// The stream tungstenite reads and writes during one call: this call's input and
/// the caller's output buffer. An exhausted input is `WouldBlock`, never EOF (`Ok(0)`
/// is a closed connection to tungstenite); writes always take everything, so nothing
/// is ever left half-written inside tungstenite.
struct Io<'a> {
    input: &'a [u8],
    out: &'a mut Vec<u8>,
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.input.read(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        // Writes go straight into `wire`; buffering them in tungstenite would only
        // hold bytes back from the caller.
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_MESSAGE_SIZE))
}

impl WsSession {
    /// A client session; `start` writes its upgrade request.
    pub fn client(s: &WsClientSettings) -> Result<WsSession, WsError> {
        let path = if s.path.is_empty() { "/" } else { &s.path };
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(path)
            .header("Host", &s.host)
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", generate_key())
            .header(PROTOCOL_HEADER, SUBPROTOCOL);
        if let Some(origin) = &s.origin {
            request = request.header("Origin", origin);
        }
        let bad = |e: &dyn std::fmt::Display| {
            WsError::Handshake(format!("cannot build the upgrade request: {e}"))
        };
        let request = request.body(()).map_err(|e| bad(&e))?;
        let (request, key) = generate_request(request).map_err(|e| bad(&e))?;
        Ok(WsSession::new(Phase::Client {
            request,
            accept: derive_accept_key(key.as_bytes()),
            wait: Upgrade::default(),
        }))
    }

    /// A server session waiting for the client's upgrade request.
    pub fn server() -> WsSession {
        WsSession::new(Phase::Server(Upgrade::default()))
    }

    fn new(phase: Phase) -> WsSession {
        WsSession {
            phase,
            upgraded: false,
            peer_closed: false,
            path: None,
            origin: None,
        }
    }

    /// Client: the upgrade request into `wire` (once). Server: nothing to say first.
    pub fn start(&mut self, wire: &mut Vec<u8>) {
        if let Phase::Client { request, .. } = &mut self.phase {
            wire.extend_from_slice(&mem::take(request));
        }
    }

    /// Feeds bytes from the peer: each message's payload goes to `on_message` (text
    /// and binary alike: RFC 7118 allows both; a fragmented message once whole); the
    /// upgrade response, pongs and close replies are appended to `wire`.
    pub fn receive(
        &mut self,
        data: &[u8],
        wire: &mut Vec<u8>,
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<(), WsError> {
        match &mut self.phase {
            Phase::Open { .. } => self.read_frames(data, wire, &mut on_message),
            Phase::Dead => Err(WsError::Closed),
            Phase::Client { wait, .. } | Phase::Server(wait) => {
                wait.head.extend_from_slice(data);
                match self.upgrade(wire) {
                    // Frames may follow the head in the same read (a server that sends
                    // right after its 101, a client that does not wait for it).
                    Ok(Some((head, used))) => {
                        self.read_frames(&head[used..], wire, &mut on_message)
                    }
                    Ok(None) => Ok(()),
                    Err(e) => {
                        self.phase = Phase::Dead;
                        Err(e)
                    }
                }
            }
        }
    }

    /// Tries to complete the upgrade with the head received so far. On success the
    /// session is open, pending messages are in `wire`, and the returned buffer holds
    /// what followed the head from its offset on.
    fn upgrade(&mut self, wire: &mut Vec<u8>) -> Result<Option<(Vec<u8>, usize)>, WsError> {
        let (role, used) = match &self.phase {
            Phase::Client { accept, wait, .. } => {
                let Some((used, response)) = parse_head::<Response>(&wait.head, "response")? else {
                    return Ok(None);
                };
                check_response(&response, accept)?;
                (Role::Client, used)
            }
            Phase::Server(wait) => {
                let (used, request) = match answer_upgrade(&wait.head, wire) {
                    Ok(Some(done)) => done,
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        wire.extend_from_slice(REFUSAL);
                        return Err(e);
                    }
                };
                self.path = request.uri().path_and_query().map(|p| p.as_str().into());
                self.origin = text_header(request.headers(), "Origin").map(Into::into);
                (Role::Server, used)
            }
            Phase::Open { .. } | Phase::Dead => return Ok(None),
        };
        let wait = match &mut self.phase {
            Phase::Client { wait, .. } | Phase::Server(wait) => mem::take(wait),
            Phase::Open { .. } | Phase::Dead => return Ok(None),
        };
        self.phase = Phase::Open {
            ws: WebSocketContext::new(role, Some(config())),
            role,
            edge: FrameEdge::default(),
        };
        self.upgraded = true;
        for msg in &wait.pending {
            self.send(msg, wire)?;
        }
        Ok(Some((wait.head, used)))
    }

    fn read_frames(
        &mut self,
        data: &[u8],
        wire: &mut Vec<u8>,
        on_message: &mut dyn FnMut(&[u8]),
    ) -> Result<(), WsError> {
        let Phase::Open { ws, role, edge } = &mut self.phase else {
            return Ok(());
        };
        // After the peer's close frame it may send nothing more; whatever comes is
        // dropped rather than reported, the session has ended cleanly.
        if self.peer_closed {
            return Ok(());
        }
        edge.advance(data);
        let mut io = Io {
            input: data,
            out: wire,
        };
        loop {
            // Each read first flushes what the previous frame queued (a pong, the
            // reply to a close) into `wire`, so nothing stays queued when the input
            // runs out.
            match ws.read(&mut io) {
                Ok(Message::Text(text)) => on_message(text.as_bytes()),
                Ok(Message::Binary(payload)) => on_message(&payload),
                Ok(Message::Close(_)) => {
                    self.peer_closed = true;
                    // Writes our reply to `wire`. A server hears "connection closed"
                    // back: its side of the close handshake is complete.
                    let _ = ws.flush(&mut io);
                    return Ok(());
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // tungstenite's receive buffer grows to fit the largest frame (and
                    // then some) and never shrinks. When it holds nothing — the input
                    // ended on a frame boundary, outside a fragmented message, and the
                    // session is still active, so the context has no other state —
                    // a fresh context is the same session with a small buffer again.
                    if edge.at_edge() && edge.since_renewal >= RENEW_AFTER && ws.can_write() {
                        *ws = WebSocketContext::new(*role, Some(config()));
                        edge.since_renewal = 0;
                    }
                    return Ok(());
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(());
                }
                Err(e) => {
                    // RFC 6455 §7.1.7: tell the peer why before the connection goes.
                    let code = match e {
                        tungstenite::Error::Capacity(_) => CloseCode::Size,
                        tungstenite::Error::Utf8(_) => CloseCode::Invalid,
                        _ => CloseCode::Protocol,
                    };
                    let reason = "".into();
                    let _ = ws.close(&mut io, Some(CloseFrame { code, reason }));
                    self.phase = Phase::Dead;
                    return Err(WsError::Protocol(e.to_string()));
                }
            }
        }
    }

    /// One text frame, or a binary frame when `msg` is not UTF-8 (a text frame must
    /// be valid UTF-8 and the peer would fail the connection). Before the upgrade the
    /// message waits and goes out right after it.
    pub fn send(&mut self, msg: &[u8], wire: &mut Vec<u8>) -> Result<(), WsError> {
        match &mut self.phase {
            Phase::Open { ws, role, .. } if ws.can_write() => {
                write_data_frame(*role, msg, wire);
                Ok(())
            }
            Phase::Client { wait, .. } | Phase::Server(wait) => wait.queue(msg),
            Phase::Open { .. } | Phase::Dead => Err(WsError::Closed),
        }
    }

    /// A ping (empty payload) when open; the peer's pong is consumed by `receive`.
    pub fn ping(&mut self, wire: &mut Vec<u8>) {
        if let Phase::Open { ws, .. } = &mut self.phase
            && ws.can_write()
        {
            let mut io = Io {
                input: &[],
                out: wire,
            };
            // Cannot fail: the session can write and `Io` takes every byte.
            let _ = ws.write(&mut io, Message::Ping(Bytes::new()));
            let _ = ws.flush(&mut io);
        }
    }

    /// Upgraded and not closed (by either side) or failed.
    pub fn is_open(&self) -> bool {
        matches!(&self.phase, Phase::Open { ws, .. } if ws.can_write())
    }

    /// The upgrade completed (the session may have been closed since).
    pub fn is_upgraded(&self) -> bool {
        self.upgraded
    }

    /// The peer sent a close frame: it started the close or answered ours. Either way
    /// the connection can go once `wire` is written.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Server side: the request target of the upgrade (path and query), once upgraded.
    pub fn request_path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Server side: the `Origin` of the upgrade request, when it had one.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Starts the close handshake (a close frame into `wire`); `peer_closed` turns
    /// true when the peer answers. Before the upgrade there is nobody to tell: the
    /// session just ends.
    pub fn close(&mut self, wire: &mut Vec<u8>) {
        match &mut self.phase {
            Phase::Open { ws, .. } => {
                let mut io = Io {
                    input: &[],
                    out: wire,
                };
                // Only "already closed" can come back, which is what we want.
                let _ = ws.close(&mut io, None);
            }
            _ => self.phase = Phase::Dead,
        }
    }
}

/// Formats a data frame straight into `wire`. tungstenite's write path would copy
/// the message into a `Bytes`, format it into an output buffer that keeps the
/// capacity of the largest frame ever sent for the life of the connection, and copy
/// it again into `wire`; here there is one copy and nothing kept. Control frames
/// (ping, pong, close; at most 131 bytes) go through tungstenite, which owns that
/// state.
fn write_data_frame(role: Role, msg: &[u8], wire: &mut Vec<u8>) {
    let opcode = match std::str::from_utf8(msg) {
        Ok(_) => OpCode::Data(Data::Text),
        Err(_) => OpCode::Data(Data::Binary),
    };
    // RFC 6455 §5.3: client frames are masked with an unpredictable key.
    let mask = (role == Role::Client).then(rand::random::<[u8; 4]>);
    let header = FrameHeader {
        opcode,
        mask,
        ..FrameHeader::default()
    };
    // Cannot fail: formatting into a Vec.
    let _ = header.format(msg.len() as u64, wire);
    let start = wire.len();
    wire.extend_from_slice(msg);
    if let Some(mask) = mask {
        for (byte, key) in wire[start..].iter_mut().zip(mask.iter().cycle()) {
            *byte ^= key;
        }
    }
}

/// Parses an upgrade head once it is complete; `None` while more is needed.
fn parse_head<T: TryParse>(head: &[u8], what: &str) -> Result<Option<(usize, T)>, WsError> {
    match T::try_parse(head) {
        Ok(None) if head.len() > MAX_UPGRADE_HEAD => Err(WsError::Handshake(format!(
            "no end of the upgrade {what} within {MAX_UPGRADE_HEAD} bytes"
        ))),
        Ok(parsed) => Ok(parsed),
        Err(e) => Err(WsError::Handshake(format!("bad upgrade {what}: {e}"))),
    }
}

/// Server: once the request is complete, checks it (tungstenite's RFC 6455 checks,
/// then `sip` offered) and writes the 101 into `wire`.
fn answer_upgrade(head: &[u8], wire: &mut Vec<u8>) -> Result<Option<(usize, Request)>, WsError> {
    let Some((used, request)) = parse_head::<Request>(head, "request")? else {
        return Ok(None);
    };
    let refused = |why: String| WsError::Handshake(format!("upgrade request refused: {why}"));
    let mut response = create_response(&request).map_err(|e| refused(e.to_string()))?;
    // RFC 7118 §4.1: the server answers with `sip` when offered; a client that does
    // not offer it would not speak SIP on the connection.
    let offered = request
        .headers()
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offered {
        return Err(refused(format!(
            "the {SUBPROTOCOL} subprotocol is not offered"
        )));
    }
    response
        .headers_mut()
        .insert(PROTOCOL_HEADER, HeaderValue::from_static(SUBPROTOCOL));
    // Into a buffer of its own so a failure cannot leave half a 101 before the 400.
    let mut answer = Vec::new();
    write_response(&mut answer, &response).map_err(|e| refused(e.to_string()))?;
    wire.extend_from_slice(&answer);
    Ok(Some((used, request)))
}

/// Client: RFC 6455 §4.1 checks of the server's answer, plus RFC 7118's `sip`.
fn check_response(response: &Response, accept: &str) -> Result<(), WsError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(WsError::Handshake(format!(
            "the server answered {}",
            response.status()
        )));
    }
    let headers = response.headers();
    if !text_header(headers, "Upgrade").is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err(WsError::Handshake(
            "the answer lacks Upgrade: websocket".into(),
        ));
    }
    let connection_upgrade = text_header(headers, "Connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err(WsError::Handshake(
            "the answer lacks Connection: Upgrade".into(),
        ));
    }
    if text_header(headers, "Sec-WebSocket-Accept").map(str::trim) != Some(accept) {
        return Err(WsError::Handshake(
            "wrong or missing Sec-WebSocket-Accept".into(),
        ));
    }
    if text_header(headers, PROTOCOL_HEADER).map(str::trim) != Some(SUBPROTOCOL) {
        return Err(WsError::Handshake(format!(
            "the server did not accept the {SUBPROTOCOL} subprotocol"
        )));
    }
    Ok(())
}

fn text_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\nContent-Length: 0\r\n\r\n";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";

    /// A request as Kamailio's and browsers' SIP stacks send it (RFC 7118 §A.1, with
    /// RFC 6455's sample key).
    const BROWSER_REQUEST: &[u8] = b"GET /sip/ws?user=alice HTTP/1.1\r\n\
        Host: proxy.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: https://www.example.com\r\n\
        Sec-WebSocket-Protocol: sip\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    /// RFC 6455 §5.7: "Hello" in one masked and one unmasked text frame.
    const MASKED_HELLO: &[u8] = &[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    const HELLO: &[u8] = &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];

    /// What one `receive` call produced.
    struct Fed {
        result: Result<(), WsError>,
        messages: Vec<Vec<u8>>,
        wire: Vec<u8>,
    }

    fn feed(ws: &mut WsSession, data: &[u8]) -> Fed {
        let mut messages = Vec::new();
        let mut wire = Vec::new();
        let result = ws.receive(data, &mut wire, |m| messages.push(m.to_vec()));
        Fed {
            result,
            messages,
            wire,
        }
    }

    /// `feed` that must succeed: the messages and what the session said back.
    fn feed_ok(ws: &mut WsSession, data: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let fed = feed(ws, data);
        if let Err(e) = fed.result {
            panic!("receive failed: {e}");
        }
        (fed.messages, fed.wire)
    }

    fn settings(origin: Option<&str>) -> WsClientSettings {
        WsClientSettings {
            host: "proxy.example.com:8080".into(),
            path: "/sip/ws".into(),
            origin: origin.map(Into::into),
        }
    }

    fn started_client(origin: Option<&str>) -> (WsSession, Vec<u8>) {
        let mut client = WsSession::client(&settings(origin)).unwrap();
        let mut request = Vec::new();
        client.start(&mut request);
        (client, request)
    }

    /// A client and a server that completed the upgrade through each other.
    fn pair() -> (WsSession, WsSession) {
        let (mut client, request) = started_client(None);
        let mut server = WsSession::server();
        let (none, response) = feed_ok(&mut server, &request);
        assert!(none.is_empty());
        let (none, reply) = feed_ok(&mut client, &response);
        assert!(none.is_empty() && reply.is_empty());
        assert!(client.is_open() && server.is_open());
        (client, server)
    }

    fn sent(ws: &mut WsSession, msg: &[u8]) -> Vec<u8> {
        written(|wire| ws.send(msg, wire).unwrap())
    }

    /// What `write` appended to an empty `wire`.
    fn written(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut wire = Vec::new();
        write(&mut wire);
        wire
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// The `Sec-WebSocket-Key` of a request `start` wrote.
    fn key_of(request: &[u8]) -> String {
        let text = text(request);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        line.trim().to_owned()
    }

    fn handwritten_101(key: &str, extra: &str) -> Vec<u8> {
        let accept = derive_accept_key(key.as_bytes());
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn is_masked(frame: &[u8]) -> bool {
        frame[1] & 0x80 != 0
    }

    /// The status code of a close frame, masked (client's) or not.
    fn close_code(frame: &[u8]) -> u16 {
        assert_eq!(frame[0], 0x88, "not a close frame: {frame:02x?}");
        if is_masked(frame) {
            let mask = &frame[2..6];
            u16::from_be_bytes([frame[6] ^ mask[0], frame[7] ^ mask[1]])
        } else {
            u16::from_be_bytes([frame[2], frame[3]])
        }
    }

    #[test]
    fn upgrade_offers_and_answers_sip_and_messages_flow_both_ways() {
        let (mut client, request) = started_client(None);
        let request_text = text(&request);
        assert!(request_text.starts_with("GET /sip/ws HTTP/1.1\r\n"));
        assert!(request_text.contains("Host: proxy.example.com:8080\r\n"));
        assert!(request_text.contains("Sec-WebSocket-Protocol: sip\r\n"));
        assert!(!request_text.contains("Origin"));

        let mut server = WsSession::server();
        let (_, response) = feed_ok(&mut server, &request);
        let response_text = text(&response).to_ascii_lowercase();
        assert!(response_text.starts_with("http/1.1 101"));
        assert!(response_text.contains("sec-websocket-protocol: sip\r\n"));
        assert!(server.is_upgraded() && server.is_open());
        assert!(!client.is_upgraded());
        feed_ok(&mut client, &response);
        assert!(client.is_upgraded() && client.is_open());

        let invite = sent(&mut client, INVITE);
        assert_eq!(invite[0], 0x81, "one final text frame");
        assert!(is_masked(&invite), "client frames are masked");
        assert_eq!(feed_ok(&mut server, &invite).0, vec![INVITE.to_vec()]);

        let ok = sent(&mut server, OK);
        assert_eq!(ok[0], 0x81);
        assert!(!is_masked(&ok), "server frames are not masked");
        assert_eq!(feed_ok(&mut client, &ok).0, vec![OK.to_vec()]);
    }

    #[test]
    fn several_messages_in_one_receive_call() {
        let (mut client, mut server) = pair();
        let mut wire = sent(&mut client, INVITE);
        wire.extend(sent(&mut client, OK));
        wire.extend(sent(&mut client, b"third"));
        let (messages, _) = feed_ok(&mut server, &wire);
        assert_eq!(
            messages,
            vec![INVITE.to_vec(), OK.to_vec(), b"third".to_vec()]
        );
    }

    #[test]
    fn upgrade_and_message_split_byte_by_byte() {
        let (mut client, request) = started_client(None);
        let mut server = WsSession::server();
        let mut response = Vec::new();
        for b in &request {
            let (none, wire) = feed_ok(&mut server, std::slice::from_ref(b));
            assert!(none.is_empty());
            response.extend(wire);
        }
        assert!(server.is_open());
        for b in &response {
            feed_ok(&mut client, std::slice::from_ref(b));
        }
        assert!(client.is_open());

        let invite = sent(&mut client, INVITE);
        let mut messages = Vec::new();
        for b in &invite {
            messages.extend(feed_ok(&mut server, std::slice::from_ref(b)).0);
        }
        assert_eq!(messages, vec![INVITE.to_vec()]);
    }

    #[test]
    fn frames_right_after_the_101_in_the_same_chunk() {
        let (mut client, request) = started_client(None);
        let mut server = WsSession::server();
        let (_, mut response) = feed_ok(&mut server, &request);
        response.extend(sent(&mut server, OK));
        response.extend(sent(&mut server, INVITE));
        let (messages, _) = feed_ok(&mut client, &response);
        assert_eq!(messages, vec![OK.to_vec(), INVITE.to_vec()]);
    }

    #[test]
    fn messages_sent_before_the_upgrade_follow_it() {
        let (mut client, request) = started_client(None);
        assert_eq!(sent(&mut client, INVITE), b"", "queued, not sent");
        let mut server = WsSession::server();
        assert_eq!(sent(&mut server, OK), b"");
        let (_, response) = feed_ok(&mut server, &request);
        let (messages, to_server) = feed_ok(&mut client, &response);
        assert_eq!(
            messages,
            vec![OK.to_vec()],
            "server's queued message after its 101"
        );
        assert_eq!(feed_ok(&mut server, &to_server).0, vec![INVITE.to_vec()]);
    }

    #[test]
    fn pending_messages_are_bounded() {
        let mut server = WsSession::server();
        let mut wire = Vec::new();
        server.send(&vec![b'x'; MAX_PENDING], &mut wire).unwrap();
        assert!(matches!(
            server.send(b"x", &mut wire),
            Err(WsError::Backlog)
        ));
    }

    #[test]
    fn ping_is_answered_with_a_pong() {
        let (mut client, mut server) = pair();
        let ping = written(|wire| client.ping(wire));
        assert_eq!(ping[0], 0x89);
        let (messages, pong) = feed_ok(&mut server, &ping);
        assert!(messages.is_empty());
        assert_eq!(pong, [0x8a, 0x00], "an unmasked empty pong");
        let (messages, nothing) = feed_ok(&mut client, &pong);
        assert!(messages.is_empty() && nothing.is_empty());
        assert!(client.is_open() && server.is_open());

        // A ping from the server, answered by a masked pong, in the same read as a
        // message.
        let mut wire = written(|wire| server.ping(wire));
        wire.extend(sent(&mut server, OK));
        let (messages, pong) = feed_ok(&mut client, &wire);
        assert_eq!(messages, vec![OK.to_vec()]);
        assert_eq!(pong[0], 0x8a);
        assert!(is_masked(&pong));
        assert!(feed_ok(&mut server, &pong).0.is_empty());
    }

    #[test]
    fn close_started_by_the_client() {
        let (mut client, mut server) = pair();
        let close = written(|wire| client.close(wire));
        assert_eq!(close[0], 0x88);
        assert!(!client.is_open() && !client.peer_closed());
        assert!(matches!(
            client.send(INVITE, &mut Vec::new()),
            Err(WsError::Closed)
        ));

        let (_, reply) = feed_ok(&mut server, &close);
        assert!(server.peer_closed() && !server.is_open());
        assert_eq!(reply[0], 0x88, "the server answers the close");
        assert!(matches!(
            server.send(OK, &mut Vec::new()),
            Err(WsError::Closed)
        ));

        feed_ok(&mut client, &reply);
        assert!(client.peer_closed() && !client.is_open() && client.is_upgraded());
        // Whatever comes after the close is dropped.
        assert!(feed_ok(&mut client, HELLO).0.is_empty());
    }

    #[test]
    fn close_started_by_the_server_with_messages_before_it() {
        let (mut client, mut server) = pair();
        let mut wire = sent(&mut server, OK);
        server.close(&mut wire);
        let (messages, reply) = feed_ok(&mut client, &wire);
        assert_eq!(messages, vec![OK.to_vec()]);
        assert!(client.peer_closed() && !client.is_open());
        assert_eq!(reply[0], 0x88);
        assert!(is_masked(&reply));
        feed_ok(&mut server, &reply);
        assert!(server.peer_closed() && !server.is_open());
    }

    #[test]
    fn server_refuses_a_client_that_does_not_offer_sip() {
        let request = b"GET / HTTP/1.1\r\nHost: proxy\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut server = WsSession::server();
        let fed = feed(&mut server, request);
        assert!(matches!(&fed.result, Err(WsError::Handshake(m)) if m.contains("sip")));
        assert!(text(&fed.wire).starts_with("HTTP/1.1 400 "));
        assert!(!server.is_open() && !server.is_upgraded());
        assert!(matches!(
            feed(&mut server, HELLO).result,
            Err(WsError::Closed)
        ));
    }

    /// The handshake error of a started client answered with `response(its key)`.
    fn client_refusal(response: impl FnOnce(&str) -> Vec<u8>) -> String {
        let (mut client, request) = started_client(None);
        let fed = feed(&mut client, &response(&key_of(&request)));
        assert!(!client.is_open() && !client.is_upgraded());
        match fed.result {
            Err(WsError::Handshake(m)) => m,
            other => panic!("not a handshake error: {other:?}"),
        }
    }

    #[test]
    fn client_fails_when_the_answer_lacks_sip() {
        assert!(client_refusal(|key| handwritten_101(key, "")).contains("sip"));
        let chat = "Sec-WebSocket-Protocol: chat\r\n";
        assert!(client_refusal(|key| handwritten_101(key, chat)).contains("sip"));
    }

    #[test]
    fn client_fails_on_a_refusal_a_wrong_accept_key_or_garbage() {
        let forbidden = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert!(client_refusal(|_| forbidden.to_vec()).contains("403"));
        let sip = "Sec-WebSocket-Protocol: sip\r\n";
        let wrong_key = client_refusal(|_| handwritten_101("AAAAAAAAAAAAAAAAAAAAAA==", sip));
        assert!(wrong_key.contains("Accept"));
        client_refusal(|_| b"SIP/2.0 200 OK\r\n\r\n".to_vec());
    }

    #[test]
    fn client_takes_a_handwritten_101_and_the_frame_after_it() {
        let (mut client, request) = started_client(None);
        // Header names in any case, Connection with several tokens.
        let mut response = handwritten_101(&key_of(&request), "sec-websocket-protocol: sip\r\n");
        let response_text =
            text(&response).replace("Connection: Upgrade", "connection: keep-alive, upgrade");
        response = response_text.into_bytes();
        response.extend_from_slice(HELLO);
        let (messages, _) = feed_ok(&mut client, &response);
        assert_eq!(messages, vec![b"Hello".to_vec()]);
        assert!(client.is_open());
    }

    #[test]
    fn server_answers_a_browser_or_kamailio_request() {
        let mut server = WsSession::server();
        let (_, response) = feed_ok(&mut server, BROWSER_REQUEST);
        let response = text(&response).to_ascii_lowercase();
        assert!(response.starts_with("http/1.1 101 switching protocols\r\n"));
        assert!(response.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"));
        assert!(response.contains("sec-websocket-protocol: sip\r\n"));
        assert!(response.contains("upgrade: websocket\r\n"));
        assert_eq!(server.request_path(), Some("/sip/ws?user=alice"));
        assert_eq!(server.origin(), Some("https://www.example.com"));
        assert_eq!(
            feed_ok(&mut server, MASKED_HELLO).0,
            vec![b"Hello".to_vec()]
        );
    }

    #[test]
    fn origin_and_path_reach_the_server() {
        let (_, request) = started_client(Some("https://app.example.com"));
        assert!(text(&request).contains("\r\nOrigin: https://app.example.com\r\n"));
        let mut server = WsSession::server();
        feed_ok(&mut server, &request);
        assert_eq!(server.origin(), Some("https://app.example.com"));
        assert_eq!(server.request_path(), Some("/sip/ws"));

        let mut client = WsSession::client(&WsClientSettings {
            host: "proxy".into(),
            path: String::new(),
            origin: None,
        })
        .unwrap();
        let mut request = Vec::new();
        client.start(&mut request);
        assert!(text(&request).starts_with("GET / HTTP/1.1\r\n"));
        let mut again = Vec::new();
        client.start(&mut again);
        assert!(again.is_empty(), "the request goes out once");
    }

    #[test]
    fn client_settings_that_cannot_make_a_request_are_an_error() {
        let bad = WsClientSettings {
            host: "proxy\r\nX-Injected: 1".into(),
            path: "/".into(),
            origin: None,
        };
        assert!(matches!(
            WsSession::client(&bad),
            Err(WsError::Handshake(_))
        ));
    }

    #[test]
    fn over_long_frame_is_a_protocol_error() {
        let (_, mut server) = pair();
        let len = (MAX_MESSAGE_SIZE as u64 + 1).to_be_bytes();
        let mut frame = vec![0x81, 0xff];
        frame.extend_from_slice(&len);
        frame.extend_from_slice(&[1, 2, 3, 4]);
        let fed = feed(&mut server, &frame);
        assert!(matches!(fed.result, Err(WsError::Protocol(_))));
        assert_eq!(close_code(&fed.wire), 1009, "message too big");
        assert!(!server.is_open() && server.is_upgraded());

        // The largest message allowed still goes through.
        let (mut client, mut server) = pair();
        let big = vec![b'a'; MAX_MESSAGE_SIZE];
        assert_eq!(feed_ok(&mut server, &sent(&mut client, &big)).0, vec![big]);
    }

    /// A server's (unmasked) frame.
    fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = FrameHeader {
            is_final: first_byte & 0x80 != 0,
            opcode: OpCode::from(first_byte & 0x0f),
            ..FrameHeader::default()
        };
        header.format(payload.len() as u64, &mut out).unwrap();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn messages_survive_any_split_across_buffer_renewals() {
        // Sizes around and above the read buffer, so tungstenite's buffer grows and
        // is renewed between reads; chunk sizes that end reads inside headers,
        // inside payloads, inside a fragmented message and on frame boundaries.
        let big = |n: usize, fill: u8| vec![fill; n];
        let messages = [
            big(3000, b'a'),
            big(9000, b'b'),
            big(100, b'c'),
            big(5000, b'd'),
        ];
        let mut stream = Vec::new();
        for m in &messages {
            stream.extend(frame(0x81, m));
        }
        // "ef" + ping + "gh…" as one fragmented message.
        stream.extend(frame(0x01, &big(4000, b'e')));
        stream.extend(frame(0x89, b"ping"));
        stream.extend(frame(0x80, &big(4000, b'g')));
        let mut expected: Vec<Vec<u8>> = messages.to_vec();
        expected.push([big(4000, b'e'), big(4000, b'g')].concat());

        for chunk in [1, 2, 7, 100, 1000, 3006, 4096, 5000, stream.len()] {
            let (mut client, _) = pair();
            let mut got = Vec::new();
            let mut pongs = Vec::new();
            for piece in stream.chunks(chunk) {
                let (messages, wire) = feed_ok(&mut client, piece);
                got.extend(messages);
                pongs.extend(wire);
            }
            assert!(got == expected, "chunks of {chunk}");
            assert_eq!(pongs[0], 0x8a, "chunks of {chunk}: the ping is answered");
            assert!(client.is_open());
        }
    }

    #[test]
    fn fragmented_message_is_delivered_once_whole() {
        let (mut client, _) = pair();
        let frames = [0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02, b'l', b'o'];
        assert_eq!(feed_ok(&mut client, &frames).0, vec![b"Hello".to_vec()]);
    }

    #[test]
    fn truncated_frame_waits_for_the_rest() {
        let (_, mut server) = pair();
        let (head, tail) = MASKED_HELLO.split_at(4);
        assert!(feed_ok(&mut server, head).0.is_empty());
        assert_eq!(feed_ok(&mut server, tail).0, vec![b"Hello".to_vec()]);
    }

    #[test]
    fn non_utf8_goes_as_binary_and_binary_frames_are_delivered() {
        let (mut client, mut server) = pair();
        let bytes = b"SIP/2.0 200 OK\r\nX: \xff\xfe\r\n\r\n";
        let wire = sent(&mut client, bytes);
        assert_eq!(wire[0], 0x82, "a binary frame");
        assert_eq!(feed_ok(&mut server, &wire).0, vec![bytes.to_vec()]);

        let binary = [0x82, 0x03, b'a', b'b', b'c'];
        assert_eq!(feed_ok(&mut client, &binary).0, vec![b"abc".to_vec()]);
    }

    #[test]
    fn non_sip_text_is_delivered_as_is() {
        let (mut client, _) = pair();
        assert_eq!(feed_ok(&mut client, HELLO).0, vec![b"Hello".to_vec()]);
    }

    #[test]
    fn garbage_instead_of_http_is_a_handshake_error() {
        let mut server = WsSession::server();
        let fed = feed(
            &mut server,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello",
        );
        assert!(matches!(fed.result, Err(WsError::Handshake(_))));
        assert!(text(&fed.wire).starts_with("HTTP/1.1 400 "));

        // A head that never ends.
        let mut server = WsSession::server();
        let mut endless = b"GET / HTTP/1.1\r\n".to_vec();
        while endless.len() <= MAX_UPGRADE_HEAD {
            endless.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(
            feed(&mut server, &endless).result,
            Err(WsError::Handshake(_))
        ));
    }

    #[test]
    fn garbage_frames_are_protocol_errors() {
        // An unmasked frame from a client.
        let (_, mut server) = pair();
        let fed = feed(&mut server, HELLO);
        assert!(matches!(fed.result, Err(WsError::Protocol(_))));
        assert_eq!(close_code(&fed.wire), 1002);
        assert!(matches!(
            feed(&mut server, MASKED_HELLO).result,
            Err(WsError::Closed)
        ));

        // A reserved opcode, a continuation out of nowhere, reserved bits, a ping
        // longer than control frames may be.
        let mut long_ping = vec![0x89, 0x7e, 0, 126];
        long_ping.resize(4 + 126, 0);
        for frame in [&[0x83, 0x00][..], &[0x80, 0x00], &[0xc1, 0x00], &long_ping] {
            let (mut client, _) = pair();
            let fed = feed(&mut client, frame);
            assert!(
                matches!(fed.result, Err(WsError::Protocol(_))),
                "{frame:02x?}"
            );
        }

        // A text frame that is not UTF-8.
        let (mut client, _) = pair();
        let fed = feed(&mut client, &[0x81, 0x02, 0xff, 0xfe]);
        assert!(matches!(fed.result, Err(WsError::Protocol(_))));
        assert_eq!(close_code(&fed.wire), 1007);
    }

    #[test]
    fn session_stays_small() {
        // Held per connection: thousands of them.
        let size = std::mem::size_of::<WsSession>();
        assert!(size <= 384, "WsSession is {size} bytes");
    }
}

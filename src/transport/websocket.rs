//! SIP over WebSocket (RFC 6455, RFC 7118) with tungstenite's protocol state over an
//! in-memory pipe: sans-IO, bytes in and out, one SIP message per frame. Client side
//! sends the upgrade (`Sec-WebSocket-Protocol: sip`, optional `Origin`), server side
//! accepts upgrades that offer `sip` and answers with it. Pings are answered; a close
//! frame is answered and reported.
//!
//! CONTRACT (filled in by the WebSocket work; the connection layer codes against this):
//!
//! ```ignore
//! let mut ws = WsSession::client(&WsClientSettings { host: "proxy:8080".into(),
//!                                  path: "/".into(), origin: None })?;
//! let mut ws = WsSession::server();
//! ws.start(&mut wire);                    // client: the upgrade request into `wire`
//! ws.receive(bytes, &mut wire, |msg| handle(msg))?;  // one call per data frame payload;
//!                                                    // pongs/close replies into `wire`
//! ws.send(sip_bytes, &mut wire)?;         // one text frame (queued until upgraded)
//! ws.ping(&mut wire);  ws.is_open();  ws.peer_closed();  ws.close(&mut wire)
//! ```

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
}

pub struct WsSession {
    _private: (),
}

impl WsSession {
    pub fn client(_s: &WsClientSettings) -> Result<WsSession, WsError> {
        todo!("ws")
    }
    pub fn server() -> WsSession {
        todo!("ws")
    }
    pub fn start(&mut self, _wire: &mut Vec<u8>) {
        todo!("ws")
    }
    pub fn receive(
        &mut self,
        _data: &[u8],
        _wire: &mut Vec<u8>,
        _on_message: impl FnMut(&[u8]),
    ) -> Result<(), WsError> {
        todo!("ws")
    }
    pub fn send(&mut self, _msg: &[u8], _wire: &mut Vec<u8>) -> Result<(), WsError> {
        todo!("ws")
    }
    pub fn ping(&mut self, _wire: &mut Vec<u8>) {
        todo!("ws")
    }
    /// Upgraded and not closed.
    pub fn is_open(&self) -> bool {
        todo!("ws")
    }
    pub fn peer_closed(&self) -> bool {
        todo!("ws")
    }
    pub fn close(&mut self, _wire: &mut Vec<u8>) {
        todo!("ws")
    }
}

//! TLS for SIP connections (tls, wss) with rustls: the settings from the command
//! line turned into client and server configurations once per run, and one sans-IO
//! TLS session per connection — ciphertext in, plaintext out, bytes to send
//! appended to a buffer the driver writes. No sockets here.
//!
//! CONTRACT (filled in by the TLS work; the connection layer codes against this):
//!
//! ```ignore
//! let settings = TlsSettings { ca: Some(path), cert: None, key: None, insecure: false };
//! let client_cfg = client_config(&settings)?;  // Arc<rustls::ClientConfig>, built once
//! let server_cfg = server_config(&settings)?;  // needs cert+key
//! let mut tls = TlsSession::client(&client_cfg, "proxy.example.com")?; // SNI; IP → no SNI
//! let mut tls = TlsSession::server(&server_cfg)?;
//! tls.start(&mut wire);                         // client: ClientHello into `wire`
//! tls.receive(cipher, &mut plain, &mut wire)?;  // plaintext appended to `plain`,
//!                                               // handshake/alert bytes to `wire`
//! tls.send(sip_bytes, &mut wire)?;              // queued by rustls until the handshake ends
//! tls.is_handshaking();  tls.peer_closed();  tls.close(&mut wire) // close_notify
//! ```
//! `SSLKEYLOGFILE` in the environment: both configurations log session keys there
//! (Wireshark's format) so a capture of the signalling can be decrypted.

use std::path::PathBuf;
use std::sync::Arc;

/// `--ca`, `--cert`, `--key`, `--insecure`.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// Trust anchors (PEM) added to the system roots.
    pub ca: Option<PathBuf>,
    /// Our certificate chain (PEM): the UAS serves it, a UAC presents it when asked.
    pub cert: Option<PathBuf>,
    /// The key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Do not verify the server's certificate (a UAC against a self-signed test proxy).
    pub insecure: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A settings problem: names the file and says what to do.
    #[error("{0}")]
    Config(String),
    /// The peer or our verification refused the handshake, or a record was bad.
    #[error("TLS: {0}")]
    Protocol(String),
    /// The peer sent a fatal alert.
    #[error("TLS alert from peer: {0}")]
    Alert(String),
}

pub fn client_config(_s: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    todo!("tls")
}

pub fn server_config(_s: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    todo!("tls")
}

/// One connection's TLS state.
pub struct TlsSession {
    conn: rustls::Connection,
}

impl TlsSession {
    pub fn client(_cfg: &Arc<rustls::ClientConfig>, _host: &str) -> Result<TlsSession, TlsError> {
        todo!("tls")
    }
    pub fn server(_cfg: &Arc<rustls::ServerConfig>) -> Result<TlsSession, TlsError> {
        todo!("tls")
    }
    /// Bytes the session wants to send before any input (the client's hello).
    pub fn start(&mut self, _wire: &mut Vec<u8>) {
        todo!("tls")
    }
    pub fn receive(
        &mut self,
        _cipher: &[u8],
        _plain: &mut Vec<u8>,
        _wire: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        todo!("tls")
    }
    pub fn send(&mut self, _plain: &[u8], _wire: &mut Vec<u8>) -> Result<(), TlsError> {
        todo!("tls")
    }
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
    /// The peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        todo!("tls")
    }
    pub fn close(&mut self, _wire: &mut Vec<u8>) {
        todo!("tls")
    }
}

//! Sockets and the byte-level transports above them: creation, buffer sizing,
//! readiness waits; stream framing, TLS and WebSocket sessions (sans-IO). No SIP
//! transaction or call logic here.

pub mod connection;
pub mod connections;
pub mod framing;
pub mod kind;
pub mod limits;
pub mod media_socket;
pub mod poller;
pub mod ports;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod uring;
pub mod websocket;

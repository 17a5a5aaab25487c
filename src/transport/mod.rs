//! Sockets: creation, buffer sizing, readiness waits. No protocol logic here.

pub mod limits;
pub mod media_socket;
pub mod poller;
pub mod ports;
pub mod udp;
pub mod uring;

//! Sockets: creation, buffer sizing, readiness waits. No protocol logic here.

pub mod udp;

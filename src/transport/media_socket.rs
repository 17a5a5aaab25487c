//! UDP sockets for RTP/RTCP: non-blocking (a full buffer drops the packet and counts
//! it instead of stalling every other stream of the driver), and with kernel receive
//! timestamps (SO_TIMESTAMPNS) so jitter is measured at arrival, not at the batch.
//! CONTRACT STUB: implemented by the transport work; signatures are fixed.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

pub struct MediaSocket {
    _private: (),
}

impl MediaSocket {
    /// Bind non-blocking with SO_TIMESTAMPNS on.
    pub fn bind(_addr: SocketAddr) -> io::Result<MediaSocket> {
        todo!()
    }
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        todo!()
    }
    /// Send one datagram without blocking: Ok(false) when the socket buffer is full
    /// (the packet is dropped; the caller counts it).
    pub fn send_to(&self, _buf: &[u8], _to: SocketAddr) -> io::Result<bool> {
        todo!()
    }
}

impl AsRawFd for MediaSocket {
    fn as_raw_fd(&self) -> RawFd {
        todo!()
    }
}

/// Receive buffers with room for each datagram's kernel timestamp.
pub struct TimestampedBatch {
    _private: (),
}

impl TimestampedBatch {
    pub fn new(_slots: usize) -> TimestampedBatch {
        todo!()
    }
    /// Receive queued datagrams without blocking (recvmmsg); returns how many.
    pub fn recv(&mut self, _socket: &MediaSocket) -> io::Result<usize> {
        todo!()
    }
    /// Datagram `i`, its source, and its kernel receive time (CLOCK_REALTIME since the
    /// epoch; None when the kernel gave none).
    pub fn get(&self, _i: usize) -> (&[u8], SocketAddr, Option<Duration>) {
        todo!()
    }
}

/// CLOCK_REALTIME now, for mapping kernel timestamps onto `Instant`s.
pub fn realtime_now() -> Duration {
    todo!()
}

//! One readiness poller per driver (mio over epoll, edge-triggered) for every socket
//! the driver owns: SIP, media ports, later connections. Waits with nanosecond
//! resolution (ppoll on the epoll descriptor) because mio rounds timeouts up to whole
//! milliseconds and 20 ms media pacing cannot afford that.
//! CONTRACT STUB: implemented by the transport work; signatures are fixed.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

pub struct Poller {
    _private: (),
}

impl Poller {
    /// `capacity`: events returned per wait at most.
    pub fn new(_capacity: usize) -> io::Result<Poller> {
        todo!()
    }
    /// Watch `fd` for readability (edge-triggered: read until WouldBlock).
    pub fn register(&self, _fd: RawFd, _token: u64) -> io::Result<()> {
        todo!()
    }
    pub fn deregister(&self, _fd: RawFd) -> io::Result<()> {
        todo!()
    }
    /// Wait until a registered descriptor is ready or `timeout` passes (None: no
    /// limit; zero: just collect); a signal ends the wait early with no events.
    pub fn wait(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        todo!()
    }
    /// Tokens made ready by the last `wait`.
    pub fn ready(&self) -> impl Iterator<Item = u64> + '_ {
        std::iter::empty()
    }
}

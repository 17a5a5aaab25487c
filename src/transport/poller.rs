//! One readiness poller per driver (mio over epoll, edge-triggered) for every socket
//! the driver owns: SIP, media ports, later connections. Waits with nanosecond
//! resolution (ppoll on the epoll descriptor) because mio rounds timeouts up to whole
//! milliseconds and 20 ms media pacing cannot afford that.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

pub struct Poller {
    poll: Poll,
    events: Events,
}

impl Poller {
    /// `capacity`: events returned per wait at most.
    pub fn new(capacity: usize) -> io::Result<Poller> {
        Ok(Poller {
            poll: Poll::new()?,
            // mio hands epoll_wait a zero-length array otherwise, which it rejects.
            events: Events::with_capacity(capacity.max(1)),
        })
    }

    /// Watch `fd` for readability (edge-triggered: read until WouldBlock).
    pub fn register(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), to_token(token)?, Interest::READABLE)
    }

    pub fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.poll.registry().deregister(&mut SourceFd(&fd))
    }

    /// A handle that registers sockets with this poller from elsewhere in the driver
    /// (the media engine, the connection table): one poller, one wait, many owners.
    pub fn registrar(&self) -> io::Result<Registrar> {
        Ok(Registrar {
            registry: self.poll.registry().try_clone()?,
        })
    }

    /// Wait until a registered descriptor is ready or `timeout` passes (None: no
    /// limit; zero: just collect); a signal ends the wait early with no events.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let collect = match timeout {
            // mio is exact for these: no limit, zero, and whole milliseconds (its
            // rounding up to the next millisecond changes nothing). One syscall.
            None => None,
            Some(t) if t.subsec_nanos() % 1_000_000 == 0 => Some(t),
            Some(t) => {
                // Sleep in ppoll on the epoll descriptor, which becomes readable when
                // any registered source has an event; then collect without waiting.
                if !self.sleep_precisely(t)? {
                    self.events.clear();
                    return Ok(());
                }
                Some(Duration::ZERO)
            }
        };
        match self.poll.poll(&mut self.events, collect) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Tokens made ready by the last `wait`.
    pub fn ready(&self) -> impl Iterator<Item = u64> + '_ {
        self.events.iter().map(|e| e.token().0 as u64)
    }

    /// ppoll the epoll descriptor for up to `timeout`: true when something is ready,
    /// false on timeout or a signal.
    fn sleep_precisely(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.poll.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd and a live timespec; no signal mask is changed.
        let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(n > 0)
    }
}

/// Registers descriptors with a driver's [`Poller`].
pub struct Registrar {
    registry: mio::Registry,
}

impl Registrar {
    /// Watch `fd` for readability (edge-triggered: read until WouldBlock).
    pub fn register(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.registry
            .register(&mut SourceFd(&fd), to_token(token)?, Interest::READABLE)
    }

    /// Watch `fd` for readability and writability, once for its whole life: with
    /// edge triggering a writable edge comes after a write hit WouldBlock, so no
    /// re-registration per write is needed.
    pub fn register_rw(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.registry.register(
            &mut SourceFd(&fd),
            to_token(token)?,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    pub fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.registry.deregister(&mut SourceFd(&fd))
    }
}

/// Tokens are `usize` in mio; on 64-bit targets every u64 fits.
fn to_token(token: u64) -> io::Result<Token> {
    usize::try_from(token).map(Token).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "poll token does not fit in usize on this target",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Instant;

    fn socket() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    /// Only the socket that received a datagram is reported, with its token, and
    /// (edge-triggered) it is not reported again until something new arrives.
    #[test]
    fn reports_exactly_the_ready_socket() {
        let a = socket();
        let b = socket();
        let tx = socket();
        let mut poller = Poller::new(8).unwrap();
        poller.register(a.as_raw_fd(), 7).unwrap();
        poller.register(b.as_raw_fd(), 1 << 40).unwrap();

        poller.wait(Some(Duration::ZERO)).unwrap();
        assert_eq!(poller.ready().count(), 0);

        tx.send_to(b"x", b.local_addr().unwrap()).unwrap();
        poller.wait(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(poller.ready().collect::<Vec<_>>(), vec![1 << 40]);

        tx.send_to(b"y", a.local_addr().unwrap()).unwrap();
        // A timeout that is not whole milliseconds takes the ppoll path.
        poller.wait(Some(Duration::from_micros(1_500_500))).unwrap();
        assert_eq!(poller.ready().collect::<Vec<_>>(), vec![7]);

        poller.deregister(a.as_raw_fd()).unwrap();
        tx.send_to(b"z", a.local_addr().unwrap()).unwrap();
        poller.wait(Some(Duration::from_micros(20_500))).unwrap();
        assert_eq!(poller.ready().count(), 0);
    }

    /// A sub-millisecond wait is not rounded up to a millisecond.
    #[test]
    fn sub_millisecond_timeout() {
        let a = socket();
        let mut poller = Poller::new(8).unwrap();
        poller.register(a.as_raw_fd(), 1).unwrap();
        let want = Duration::from_micros(300);
        let mut took = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            poller.wait(Some(want)).unwrap();
            let elapsed = t.elapsed();
            assert!(elapsed >= want, "{elapsed:?}");
            assert_eq!(poller.ready().count(), 0);
            took.push(elapsed);
        }
        took.sort();
        eprintln!(
            "300 µs waits: min {:?}, median {:?}, max {:?}",
            took[0],
            took[took.len() / 2],
            took[took.len() - 1]
        );
    }

    #[test]
    fn zero_capacity_still_works() {
        let a = socket();
        let tx = socket();
        let mut poller = Poller::new(0).unwrap();
        poller.register(a.as_raw_fd(), 3).unwrap();
        tx.send_to(b"x", a.local_addr().unwrap()).unwrap();
        poller.wait(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(poller.ready().collect::<Vec<_>>(), vec![3]);
    }
}

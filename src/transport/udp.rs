//! UDP sockets sized for load: large kernel buffers so bursts are queued, not
//! dropped (the single most common cause of false failures in SIP load tests).

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Requested socket buffer size; the kernel clamps it to `net.core.[rw]mem_max`
/// unless we may force it (root), which we try first.
pub const BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// A bound UDP socket with large buffers. Sends block when the buffer is full
/// (back-pressure instead of loss); receives use [`recv_nowait`].
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    grow_buffers(&socket);
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket.into())
}

fn grow_buffers(socket: &Socket) {
    let fd = socket.as_raw_fd();
    for (force, normal) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        let size = BUFFER_BYTES as libc::c_int;
        // SAFETY: setsockopt with a valid fd and a pointer to a c_int of the given size.
        let forced = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                force,
                &size as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            // Not privileged: ask for it and take what the system maximum allows.
            // SAFETY: as above.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    normal,
                    &size as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

/// Receive one datagram without blocking; `Ok(None)` when none is queued.
pub fn recv_nowait(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    let sock = socket2::SockRef::from(socket);
    // SAFETY: MaybeUninit<u8> has the layout of u8, and recv only writes initialised bytes.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    match sock.recv_from_with_flags(uninit, libc::MSG_DONTWAIT) {
        Ok((n, addr)) => Ok(addr.as_socket().map(|a| (n.min(buf.len()), a))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}

/// Wait until the socket is readable or `timeout` passes (None: wait forever).
/// Nanosecond resolution (ppoll), so call pacing is not rounded to milliseconds.
/// A signal ends the wait early (the caller re-checks its stop flag).
pub fn wait_readable(socket: &UdpSocket, timeout: Option<Duration>) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: one valid pollfd; ts_ptr is null or points to a live timespec.
    let n = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(n > 0)
}

/// The local IP the system would use to reach `remote` (no packet is sent:
/// connecting a UDP socket only consults the routing table).
pub fn local_ip_towards(remote: SocketAddr) -> Option<std::net::IpAddr> {
    let any: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .ok()?;
    let s = UdpSocket::bind(any).ok()?;
    s.connect(remote).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

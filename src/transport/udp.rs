//! UDP sockets sized for load: large kernel buffers so bursts are queued, not
//! dropped (the single most common cause of false failures in SIP load tests).

use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
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

/// `count` sockets on one address with SO_REUSEPORT: the kernel spreads incoming
/// datagrams over them by source address, so each peer stays on one socket.
pub fn bind_shared(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let mut addr = addr;
    if addr.port() != 0 {
        // SO_REUSEPORT would also let us join another process's sockets on this port
        // and silently split its traffic: make sure the port is free first.
        drop(UdpSocket::bind(addr)?);
    }
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_port(true)?;
        grow_buffers(&socket);
        socket.bind(&SockAddr::from(addr))?;
        let udp: UdpSocket = socket.into();
        // Port 0 picks a port once; the others join it.
        addr = udp.local_addr()?;
        sockets.push(udp);
    }
    Ok(sockets)
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

/// Buffers for receiving many datagrams with one `recvmmsg` call. The message
/// headers are set up once, pointing into the buffers (which never move: they
/// are allocated here and never resized), so a receive writes nothing but the
/// name lengths before the system call.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    /// Only held for `msgs`, whose headers point at these.
    _iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

/// Largest datagram we accept.
const DATAGRAM_MAX: usize = 65_535;
/// Most datagrams one recvmmsg/sendmmsg call handles.
pub(crate) const MAX_BATCH: usize = 64;

impl RecvBatch {
    pub fn new(slots: usize) -> RecvBatch {
        let n = slots.clamp(1, MAX_BATCH);
        let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; DATAGRAM_MAX]).collect();
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for
        // which all-zero is a valid value.
        let mut addrs: Vec<libc::sockaddr_storage> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut iovs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        let msgs = recv_headers(&mut addrs, &mut iovs);
        RecvBatch {
            bufs,
            addrs,
            lens: vec![0; n],
            _iovs: iovs,
            msgs,
        }
    }

    /// Receive up to `slots` queued datagrams without blocking; returns how many.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        for m in &mut self.msgs {
            // The kernel overwrites the length with the source's actual size.
            m.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: every header points into `self.addrs`, `self._iovs` and
        // `self.bufs`, allocated in `new` and never resized, so the pointers are valid.
        let got = unsafe { recvmmsg_nowait(socket.as_raw_fd(), &mut self.msgs)? };
        for (len, m) in self.lens.iter_mut().zip(&self.msgs).take(got) {
            *len = (m.msg_len as usize).min(DATAGRAM_MAX);
        }
        Ok(got)
    }

    /// Datagram `i` of the last `recv` and its source.
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        let from =
            sockaddr_to_std(&self.addrs[i]).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        (&self.bufs[i][..self.lens[i]], from)
    }
}

/// One recvmmsg header per slot, pointing at that slot's address and iovec. The
/// pointers stay valid as long as neither vector is resized or dropped: callers
/// keep both beside the headers for the batch's whole life.
pub(crate) fn recv_headers(
    addrs: &mut [libc::sockaddr_storage],
    iovs: &mut [libc::iovec],
) -> Vec<libc::mmsghdr> {
    addrs
        .iter_mut()
        .zip(iovs.iter_mut())
        .map(|(addr, iov)| {
            // SAFETY: mmsghdr is a plain C struct; all-zero is a valid value.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect()
}

/// recvmmsg without blocking: how many datagrams arrived (0 when none was queued or
/// a signal came first).
///
/// # Safety
/// Every header in `msgs` must point at buffers (name, iovecs, control) that are
/// valid for writes of the lengths the header gives.
pub(crate) unsafe fn recvmmsg_nowait(
    fd: libc::c_int,
    msgs: &mut [libc::mmsghdr],
) -> io::Result<usize> {
    // SAFETY: the caller vouches for the headers; `msgs` is a live slice of them.
    let got = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(e),
        };
    }
    Ok(got as usize)
}

pub(crate) fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    // SAFETY: the kernel filled `ss` with a sockaddr of family ss_family; the casts
    // read the matching struct which fits inside sockaddr_storage.
    unsafe {
        match ss.ss_family as libc::c_int {
            libc::AF_INET => {
                let a = &*(ss as *const libc::sockaddr_storage as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
            }
            libc::AF_INET6 => {
                let a = &*(ss as *const libc::sockaddr_storage as *const libc::sockaddr_in6);
                let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::from((ip, u16::from_be(a.sin6_port))))
            }
            _ => None,
        }
    }
}

/// Writes `addr` as a C socket address into `out`; returns its length.
pub(crate) fn write_sockaddr(
    addr: SocketAddr,
    out: &mut MaybeUninit<libc::sockaddr_storage>,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in fits in (and is less aligned than) a sockaddr_storage.
            unsafe { out.as_mut_ptr().cast::<libc::sockaddr_in>().write(sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { out.as_mut_ptr().cast::<libc::sockaddr_in6>().write(sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Headers for one `sendmmsg` call, on the caller's stack: only the entries used
/// are written, so preparing a chunk costs what its packets need and nothing is
/// allocated.
/// The iovecs point at the packets' bytes: `'a` keeps those borrowed for as long
/// as the chunk lives.
pub(crate) struct SendChunk<'a> {
    names: [MaybeUninit<libc::sockaddr_storage>; MAX_BATCH],
    iovs: [MaybeUninit<libc::iovec>; MAX_BATCH],
    msgs: [MaybeUninit<libc::mmsghdr>; MAX_BATCH],
    len: usize,
    _bytes: PhantomData<&'a [u8]>,
}

impl<'a> SendChunk<'a> {
    pub(crate) fn new() -> SendChunk<'a> {
        SendChunk {
            names: [const { MaybeUninit::uninit() }; MAX_BATCH],
            iovs: [const { MaybeUninit::uninit() }; MAX_BATCH],
            msgs: [const { MaybeUninit::uninit() }; MAX_BATCH],
            len: 0,
            _bytes: PhantomData,
        }
    }

    /// Take up to [`MAX_BATCH`] packets from `packets` (0 when it is empty).
    pub(crate) fn fill(
        &mut self,
        packets: &mut impl Iterator<Item = (SocketAddr, &'a [u8])>,
    ) -> usize {
        let mut n = 0;
        for (to, data) in packets.take(MAX_BATCH) {
            let namelen = write_sockaddr(to, &mut self.names[n]);
            self.iovs[n].write(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
            // SAFETY: mmsghdr is a plain C struct; all-zero is valid (no control data).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            // The pointers into `self` are set by `send_from`, just before the call,
            // in case the chunk moved in between.
            m.msg_hdr.msg_namelen = namelen;
            m.msg_hdr.msg_iovlen = 1;
            self.msgs[n].write(m);
            n += 1;
        }
        self.len = n;
        n
    }

    /// `sendmmsg` of the filled entries from `from` on: the count sent, or the error
    /// of the first unsent one (entry `from`).
    pub(crate) fn send_from(
        &mut self,
        fd: RawFd,
        from: usize,
        flags: libc::c_int,
    ) -> io::Result<usize> {
        if from >= self.len {
            return Ok(0);
        }
        for i in from..self.len {
            let name = self.names[i].as_mut_ptr().cast();
            let iov = self.iovs[i].as_mut_ptr();
            // SAFETY: entries below `len` were written by `fill`.
            let m = unsafe { self.msgs[i].assume_init_mut() };
            m.msg_hdr.msg_name = name;
            m.msg_hdr.msg_iov = iov;
        }
        // SAFETY: msgs[from..len] were written by `fill` and point (as set just
        // above) into `self.names` and `self.iovs`, which point at the packets'
        // bytes, borrowed for `'a` and so alive for the call.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                self.msgs[from..self.len]
                    .as_mut_ptr()
                    .cast::<libc::mmsghdr>(),
                (self.len - from) as libc::c_uint,
                flags,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// Send datagrams with as few `sendmmsg` calls as possible (blocking when the socket
/// buffer is full: back-pressure, not loss). Returns the packets that failed. The
/// headers live on the stack and only the entries used are written: nothing is
/// allocated unless a send fails.
pub fn send_batch<'a>(
    socket: &UdpSocket,
    packets: impl Iterator<Item = (SocketAddr, &'a [u8])>,
) -> Vec<(usize, io::Error)> {
    let mut failed = Vec::new();
    let mut packets = packets;
    let mut base = 0;
    let mut chunk = SendChunk::new();
    loop {
        let n = chunk.fill(&mut packets);
        if n == 0 {
            break;
        }
        let mut done = 0;
        while done < n {
            match chunk.send_from(socket.as_raw_fd(), done, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The first unsent packet failed: record it and go on with the rest.
                Err(e) => {
                    failed.push((base + done, e));
                    done += 1;
                }
                Ok(0) => {
                    failed.push((base + done, io::Error::other("sendmmsg sent nothing")));
                    done += 1;
                }
                Ok(sent) => done += sent,
            }
        }
        base += n;
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams sent in one batch arrive whole, in order, with the sender's
    /// address, for IPv4 and (where the host has it) IPv6; more than one
    /// `sendmmsg`/`recvmmsg` worth exercises the chunking.
    #[test]
    fn batches_round_trip() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(rx) = bind(local.parse().unwrap()) else {
                eprintln!("skipping {local}: cannot bind");
                continue;
            };
            let tx = bind(local.parse().unwrap()).unwrap();
            let to = rx.local_addr().unwrap();
            let payloads: Vec<Vec<u8>> = (0..MAX_BATCH + 7)
                .map(|i| format!("datagram {i} {}", "x".repeat(i)).into_bytes())
                .collect();
            let failed = send_batch(&tx, payloads.iter().map(|p| (to, p.as_slice())));
            assert!(failed.is_empty(), "{failed:?}");
            let mut batch = RecvBatch::new(MAX_BATCH);
            let mut got = Vec::new();
            while got.len() < payloads.len() {
                assert!(wait_readable(&rx, Some(Duration::from_secs(2))).unwrap());
                let n = batch.recv(&rx).unwrap();
                for i in 0..n {
                    let (bytes, from) = batch.get(i);
                    assert_eq!(from, tx.local_addr().unwrap());
                    got.push(bytes.to_vec());
                }
            }
            assert_eq!(got, payloads);
        }
    }
}

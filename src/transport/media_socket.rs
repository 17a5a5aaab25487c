//! UDP sockets for RTP/RTCP: non-blocking (a full buffer drops the packet and counts
//! it instead of stalling every other stream of the driver), and with kernel receive
//! timestamps (SO_TIMESTAMPNS) so jitter is measured at arrival, not at the batch.
//!
//! Buffers stay at the kernel defaults: a run holds thousands of these sockets, and
//! 8 MB each (the SIP sockets' size) would pin gigabytes under load.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::udp::{MAX_BATCH, SendChunk, sockaddr_to_std};

#[derive(Debug)]
pub struct MediaSocket {
    socket: Socket,
}

impl MediaSocket {
    /// Bind non-blocking with SO_TIMESTAMPNS on.
    ///
    /// No SO_REUSEADDR/SO_REUSEPORT: a port held by anyone else must fail with
    /// EADDRINUSE so the port pool skips it. No IP_RECVERR either: without it Linux
    /// keeps ICMP errors (port unreachable from a peer that hung up) away from
    /// unconnected sockets, which is what a media stream wants.
    pub fn bind(addr: SocketAddr) -> io::Result<MediaSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        if addr.is_ipv6() {
            // Only the family asked for: an IPv6 socket must not also take the IPv4
            // port, which another process (or the IPv4 pool) may want.
            socket.set_only_v6(true)?;
        }
        enable_timestamps(&socket)?;
        socket.bind(&SockAddr::from(addr))?;
        Ok(MediaSocket { socket })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("media socket has a non-IP local address"))
    }

    /// Send one datagram without blocking: Ok(false) when the socket buffer is full
    /// (the packet is dropped; the caller counts it).
    ///
    /// ECONNREFUSED reports an ICMP error for an *earlier* datagram (only seen if the
    /// socket was connected or has IP_RECVERR): reporting it cleared it, but Linux
    /// gave up on this datagram when it found the error pending, so it is sent once
    /// more and the stream carries on (Ok(true) when that goes out). Other errors
    /// (no route, wrong address family, too large) are about this destination and are
    /// returned: the caller decides whether the stream goes on.
    pub fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<bool> {
        let to = SockAddr::from(to);
        // One retry for a consumed ICMP error, a few for signals.
        let mut refused_once = false;
        for _ in 0..4 {
            match self.socket.send_to_with_flags(buf, &to, libc::MSG_DONTWAIT) {
                Ok(_) => return Ok(true),
                Err(e) => match classify_send_error(&e) {
                    SendError::Full => return Ok(false),
                    SendError::Interrupted => continue,
                    SendError::StaleRefusal if !refused_once => refused_once = true,
                    SendError::StaleRefusal => return Ok(false),
                    SendError::Other => return Err(e),
                },
            }
        }
        Ok(false)
    }
}

impl AsRawFd for MediaSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fn enable_timestamps(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a valid fd and a pointer to a c_int of the given size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What a failed non-blocking send means for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendError {
    /// Socket buffer or device queue full: drop the packet and count it.
    Full,
    Interrupted,
    /// A pending ICMP error from an earlier datagram, consumed by this send.
    StaleRefusal,
    Other,
}

fn classify_send_error(e: &io::Error) -> SendError {
    match e.raw_os_error() {
        Some(libc::ENOBUFS) => SendError::Full,
        Some(libc::ECONNREFUSED) => SendError::StaleRefusal,
        _ => match e.kind() {
            io::ErrorKind::WouldBlock => SendError::Full,
            io::ErrorKind::Interrupted => SendError::Interrupted,
            _ => SendError::Other,
        },
    }
}

/// Send datagrams through one socket (the shared-socket mode: one socket serves all
/// calls of a driver) with as few `sendmmsg` calls as possible, never blocking.
/// Returns (sent, dropped). A full buffer drops the rest of the current batch of 64
/// (it will not drain within the microseconds the next calls would take) and the
/// next batch tries again; a packet failing for another reason (e.g. an address of
/// the wrong family) is dropped alone. Nothing is allocated.
pub fn send_batch_nowait<'a>(
    socket: &MediaSocket,
    packets: impl Iterator<Item = (SocketAddr, &'a [u8])>,
) -> (usize, usize) {
    let fd = socket.as_raw_fd();
    let mut packets = packets;
    let (mut sent, mut dropped) = (0, 0);
    let mut chunk = SendChunk::new();
    loop {
        let n = chunk.fill(&mut packets);
        if n == 0 {
            break;
        }
        let mut done = 0;
        let mut retries = 0;
        while done < n {
            match chunk.send_from(fd, done, libc::MSG_DONTWAIT) {
                Ok(0) => {
                    dropped += 1;
                    done += 1;
                }
                Ok(k) => {
                    sent += k;
                    done += k;
                }
                Err(e) => match classify_send_error(&e) {
                    SendError::Full => {
                        dropped += n - done;
                        done = n;
                    }
                    // Bounded: a stream of signals or ICMP errors cannot spin here.
                    SendError::Interrupted | SendError::StaleRefusal if retries < 4 => {
                        retries += 1;
                    }
                    _ => {
                        dropped += 1;
                        done += 1;
                    }
                },
            }
        }
        debug_assert!(n <= MAX_BATCH);
    }
    (sent, dropped)
}

/// Receive buffers with room for each datagram's kernel timestamp.
///
/// Like `udp::RecvBatch`, the headers are set up once and point into storage that
/// is allocated here and never resized, so a receive only resets two lengths per
/// slot. Each slot takes a datagram of up to 64 KiB: the pages are only touched (and
/// so only resident) as far as datagrams actually reach.
pub struct TimestampedBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    /// Control buffers, as u64 words so each slot is aligned for a `cmsghdr`; only
    /// held for `msgs`, whose headers point at these.
    _control: Vec<u64>,
    control_words: usize,
    /// Only held for `msgs`, whose headers point at these.
    _iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    lens: Vec<usize>,
    stamps: Vec<Option<Duration>>,
    got: usize,
    /// `Instant::now()` and CLOCK_REALTIME read together after the last receive:
    /// how kernel timestamps become `Instant`s.
    clocks: (Instant, Duration),
}

/// Largest datagram a slot takes.
const SLOT_BYTES: usize = 65_535;

/// Control bytes per slot: one SCM_TIMESTAMPNS message.
fn control_bytes() -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::timespec>() as libc::c_uint) as usize }
}

impl TimestampedBatch {
    pub fn new(slots: usize) -> TimestampedBatch {
        let n = slots.clamp(1, MAX_BATCH);
        let control_words = control_bytes().div_ceil(8);
        let mut bufs = vec![0u8; n * SLOT_BYTES];
        // SAFETY: sockaddr_storage is a plain C struct; all-zero is a valid value.
        let mut addrs: Vec<libc::sockaddr_storage> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut control = vec![0u64; n * control_words];
        let mut iovs: Vec<libc::iovec> = bufs
            .chunks_exact_mut(SLOT_BYTES)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        let mut msgs = super::udp::recv_headers(&mut addrs, &mut iovs);
        for (m, words) in msgs.iter_mut().zip(control.chunks_exact_mut(control_words)) {
            m.msg_hdr.msg_control = words.as_mut_ptr().cast();
        }
        TimestampedBatch {
            bufs,
            addrs,
            _control: control,
            control_words,
            _iovs: iovs,
            msgs,
            lens: vec![0; n],
            stamps: vec![None; n],
            got: 0,
            clocks: (Instant::now(), Duration::ZERO),
        }
    }

    /// Receive queued datagrams without blocking (recvmmsg); returns how many.
    pub fn recv(&mut self, socket: &MediaSocket) -> io::Result<usize> {
        self.got = 0;
        self.clocks = (Instant::now(), realtime_now());
        let control_len = self.control_words * 8;
        for m in &mut self.msgs {
            // The kernel overwrites both with what it actually wrote.
            m.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_controllen = control_len as _;
        }
        // SAFETY: every header points into `self.addrs`, `self._iovs` (→ `self.bufs`)
        // and `self.control`, allocated in `new` and never resized, with the lengths
        // set above within those allocations.
        let got = unsafe { super::udp::recvmmsg_nowait(socket.as_raw_fd(), &mut self.msgs)? };
        let got = got.min(self.msgs.len());
        for i in 0..got {
            self.lens[i] = (self.msgs[i].msg_len as usize).min(SLOT_BYTES);
            self.stamps[i] = self.timestamp_of(i);
        }
        self.got = got;
        Ok(got)
    }

    /// Datagram `i`, its source, and its kernel receive time (CLOCK_REALTIME since the
    /// epoch; None when the kernel gave none). Past the last `recv`'s count: an empty
    /// datagram from 0.0.0.0:0 with no time.
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr, Option<Duration>) {
        if i >= self.got {
            return (&[], SocketAddr::from(([0, 0, 0, 0], 0)), None);
        }
        let from =
            sockaddr_to_std(&self.addrs[i]).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let start = i * SLOT_BYTES;
        (
            &self.bufs[start..start + self.lens[i]],
            from,
            self.stamps[i],
        )
    }

    /// Datagram `i`'s bytes, writable: SRTP opens in place in the receive buffer.
    pub fn data_mut(&mut self, i: usize) -> &mut [u8] {
        if i >= self.got {
            return &mut [];
        }
        let start = i * SLOT_BYTES;
        &mut self.bufs[start..start + self.lens[i]]
    }

    /// When datagram `i` arrived, as an `Instant` (the kernel's receive time mapped
    /// through one pair of clock reads per batch; the receive call's time when the
    /// kernel gave none): jitter is measured at arrival, not at the wake-up.
    pub fn arrival(&self, i: usize) -> Instant {
        let (now, now_rt) = self.clocks;
        match self.stamps.get(i).copied().flatten() {
            Some(ts) => now.checked_sub(now_rt.saturating_sub(ts)).unwrap_or(now),
            None => now,
        }
    }

    /// The SCM_TIMESTAMPNS of slot `i`, walking its control messages with the libc
    /// helpers (which stay within `msg_controllen` as the kernel set it).
    fn timestamp_of(&self, i: usize) -> Option<Duration> {
        let hdr = &self.msgs[i].msg_hdr;
        let capacity = self.control_words * 8;
        // msg_controllen is a u32 on some libcs (musl), usize on glibc.
        #[allow(clippy::unnecessary_cast)]
        let written = hdr.msg_controllen as usize;
        if hdr.msg_control.is_null() || written > capacity {
            return None;
        }
        let want = std::mem::size_of::<libc::timespec>();
        // SAFETY: `hdr` describes slot i's control buffer (pointer set in `new`,
        // length written by the kernel and checked above to be within the buffer);
        // CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header wholly inside that range,
        // and the timespec is read (unaligned) only when cmsg_len says it is there.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
            while !cmsg.is_null() {
                let c = &*cmsg;
                if c.cmsg_level == libc::SOL_SOCKET
                    && c.cmsg_type == libc::SCM_TIMESTAMPNS
                    && c.cmsg_len as usize >= libc::CMSG_LEN(want as libc::c_uint) as usize
                {
                    let ts =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                    return timespec_to_duration(&ts);
                }
                cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
            }
        }
        None
    }
}

// SAFETY: the raw pointers in the headers point only into the batch's own heap
// storage, which moves with it; nothing is shared with another thread.
unsafe impl Send for TimestampedBatch {}

fn timespec_to_duration(ts: &libc::timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// CLOCK_REALTIME now, for mapping kernel timestamps onto `Instant`s.
pub fn realtime_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`; CLOCK_REALTIME always exists.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    timespec_to_duration(&ts).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(socket: &MediaSocket) {
        let mut pfd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 2_000) };
        assert_eq!(n, 1, "nothing arrived within 2 s");
    }

    fn round_trip(local: &str) -> Option<()> {
        let Ok(rx) = MediaSocket::bind(local.parse().unwrap()) else {
            eprintln!("skipping {local}: cannot bind (no such address on this host)");
            return None;
        };
        let tx = MediaSocket::bind(local.parse().unwrap()).unwrap();
        let to = rx.local_addr().unwrap();
        let before = realtime_now();
        let payloads: Vec<Vec<u8>> = (0..10).map(|i| vec![i as u8; 100 + i]).collect();
        for p in &payloads {
            assert!(tx.send_to(p, to).unwrap());
        }
        let mut batch = TimestampedBatch::new(4);
        let mut got = Vec::new();
        while got.len() < payloads.len() {
            wait(&rx);
            let n = batch.recv(&rx).unwrap();
            for i in 0..n {
                let (data, from, at) = batch.get(i);
                assert_eq!(from, tx.local_addr().unwrap());
                let at = at.expect("kernel timestamp");
                assert!(
                    at + Duration::from_millis(1) >= before,
                    "{at:?} < {before:?}"
                );
                let after = realtime_now();
                assert!(at <= after + Duration::from_millis(1), "{at:?} > {after:?}");
                assert!(after - at < Duration::from_secs(1));
                got.push(data.to_vec());
            }
            // Past the count: empty, never a panic.
            assert_eq!(batch.get(n).0, b"");
            assert_eq!(batch.get(usize::MAX).2, None);
        }
        assert_eq!(got, payloads);
        Some(())
    }

    #[test]
    fn round_trip_ipv4_with_timestamps() {
        assert!(round_trip("127.0.0.1:0").is_some());
    }

    #[test]
    fn round_trip_ipv6_with_timestamps() {
        let _ = round_trip("[::1]:0");
    }

    #[test]
    fn nothing_queued_is_zero() {
        let rx = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut batch = TimestampedBatch::new(0);
        assert_eq!(batch.recv(&rx).unwrap(), 0);
    }

    #[test]
    fn send_errors_are_classified() {
        let full = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(classify_send_error(&full), SendError::Full);
        let nobufs = io::Error::from_raw_os_error(libc::ENOBUFS);
        assert_eq!(classify_send_error(&nobufs), SendError::Full);
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(classify_send_error(&refused), SendError::StaleRefusal);
        let family = io::Error::from_raw_os_error(libc::EAFNOSUPPORT);
        assert_eq!(classify_send_error(&family), SendError::Other);
    }

    /// The socket is non-blocking and a receiver that never reads does not stall the
    /// sender: thousands of sends return at once. (Loopback hands each datagram to
    /// the receiver inside the send and drops it there when the receiver is full, so
    /// a sender's own buffer never fills on 127.0.0.1: the Ok(false) mapping of
    /// EAGAIN/ENOBUFS is covered by `send_errors_are_classified`.)
    #[test]
    fn full_receiver_does_not_block() {
        let rx = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // SAFETY: fcntl F_GETFL on a valid fd reads its flags.
        let flags = unsafe { libc::fcntl(tx.as_raw_fd(), libc::F_GETFL) };
        assert!(flags & libc::O_NONBLOCK != 0);
        let to = rx.local_addr().unwrap();
        let packet = [0u8; 1200];
        for _ in 0..5_000 {
            tx.send_to(&packet, to).unwrap();
        }
    }

    /// An ICMP port unreachable for an earlier datagram does not fail the stream.
    #[test]
    fn earlier_refusal_is_not_an_error() {
        let tx = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let rx = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a valid fd and a c_int option value. IP_RECVERR makes
        // the unconnected socket see the ICMP error, which is otherwise kept away.
        let r = unsafe {
            libc::setsockopt(
                tx.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVERR,
                &on as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        // Without the retry, the send after the refused one fails (and is not sent).
        assert!(tx.send_to(b"to nobody", closed).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        let raw = tx
            .socket
            .send_to_with_flags(b"x", &SockAddr::from(closed), 0);
        assert_eq!(raw.unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
        // Loopback delivers the ICMP error synchronously; give it a moment anyway.
        assert!(tx.send_to(b"to nobody", closed).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        assert!(tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap());
        wait(&rx);
        let mut batch = TimestampedBatch::new(4);
        assert_eq!(batch.recv(&rx).unwrap(), 1);
        assert_eq!(batch.get(0).0, b"hello");
    }

    #[test]
    fn shared_socket_batches() {
        let tx = MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let sinks: Vec<MediaSocket> = (0..3)
            .map(|_| MediaSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap())
            .collect();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let payloads: Vec<Vec<u8>> = (0..150).map(|i| vec![i as u8; 172]).collect();
        let dests: Vec<SocketAddr> = (0..150)
            .map(|i| {
                if i == 70 {
                    // Wrong family for this socket: dropped alone, the rest go out.
                    v6
                } else {
                    sinks[i % 3].local_addr().unwrap()
                }
            })
            .collect();
        let (sent, dropped) = send_batch_nowait(
            &tx,
            dests.iter().zip(&payloads).map(|(d, p)| (*d, p.as_slice())),
        );
        assert_eq!((sent, dropped), (149, 1));
        let mut batch = TimestampedBatch::new(64);
        // Packet 70 (for sink 70 % 3 = 1) was the one dropped.
        for (s, want) in sinks.iter().zip([50, 49, 50]) {
            let mut got = 0;
            while got < want {
                wait(s);
                let n = batch.recv(s).unwrap();
                for i in 0..n {
                    assert_eq!(batch.get(i).0.len(), 172);
                }
                got += n;
            }
            assert_eq!(got, want);
            assert_eq!(batch.recv(s).unwrap(), 0);
        }
    }
}

//! Sending many datagrams through many sockets with one system call: io_uring
//! SENDMSG entries, one per packet, submitted together.
//!
//! With one UDP socket per call, `sendmmsg` cannot batch (it takes one socket), so
//! each RTP packet would cost a `sendto`. Here the packets of a pacing round for all
//! streams, each on its own socket, go in one `io_uring_enter`.
//!
//! Packets are copied into per-slot buffers when queued (a 172-byte copy is noise
//! next to a send) so the caller's buffers are free at once and no lifetime ties
//! them to the submission; the slots, their headers and the result list are
//! allocated up front and reused, so nothing is allocated per packet once each slot
//! has seen its largest packet.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use io_uring::{IoUring, Probe, opcode, types};

use super::udp::write_sockaddr;

/// `queue` was called with every slot taken: `submit` first.
#[derive(Debug, thiserror::Error)]
#[error("io_uring send queue is full ({capacity} packets); submit it first")]
pub struct QueueFull {
    pub capacity: usize,
}

/// One queued packet and the headers the kernel reads for it.
struct Slot {
    fd: RawFd,
    addr: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
    buf: Vec<u8>,
}

/// A buffer starts this large so RTCP, RTP and DTMF packets (which share slots)
/// rarely make it grow again.
const SLOT_START_BYTES: usize = 512;
/// Submission queue size at most; a larger batch is submitted in chunks.
const RING_ENTRIES_MAX: usize = 4096;

/// How the ring is set up and which operation sends; [`UringSender::new`] takes the
/// defaults. Variants exist so the bench can compare them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UringOptions {
    /// IORING_OP_SENDMSG (a msghdr per packet, which the kernel copies and checks)
    /// instead of IORING_OP_SEND with a destination address (Linux 6.0+; older
    /// kernels fall back to SENDMSG on their own).
    pub sendmsg: bool,
    /// IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (6.1+): less locking, but the
    /// ring may then only be submitted to from the thread that created it (submits
    /// from another fail with EEXIST), so create the sender on the driver's thread.
    pub single_issuer: bool,
}

pub struct UringSender {
    // Declared first so it is dropped (closing the ring) before the slots it read
    // from. Nothing is in flight between calls anyway: `submit` waits for all.
    ring: IoUring,
    slots: Box<[Slot]>,
    queued: usize,
    results: Vec<io::Result<usize>>,
    /// A failed `io_uring_enter` may leave entries in the ring whose completions we
    /// never saw; the sender is not used again after that.
    broken: bool,
    sendmsg: bool,
}

impl UringSender {
    /// A sender for up to `capacity` packets per `submit`. Err when io_uring is not
    /// available (old kernel, seccomp, `kernel.io_uring_disabled`) or lacks SENDMSG:
    /// the caller falls back to one `sendto` per packet.
    pub fn new(capacity: usize) -> io::Result<UringSender> {
        UringSender::with_options(capacity, UringOptions::default())
    }

    pub fn with_options(capacity: usize, options: UringOptions) -> io::Result<UringSender> {
        let capacity = capacity.max(1);
        let entries = capacity.min(RING_ENTRIES_MAX) as u32;
        // SUBMIT_ALL: an entry failing at submission (a closed fd) must not stop the
        // ones after it. COOP_TASKRUN: no interrupting IPIs, we are the only user.
        // Both are 5.18/5.19 features: without them, plain setup (still correct, see
        // `submit`'s loop).
        let mut builder = IoUring::builder();
        builder.setup_submit_all();
        if options.single_issuer {
            builder.setup_single_issuer().setup_defer_taskrun();
        } else {
            builder.setup_coop_taskrun();
        }
        let ring = builder.build(entries).or_else(|_| IoUring::new(entries))?;
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::SendMsg::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_OP_SENDMSG",
            ));
        }
        // SEND takes a destination address since 6.0, the release that added
        // SEND_ZC: the probe cannot see the former, so it asks about the latter.
        let sendmsg = options.sendmsg || !probe.is_supported(opcode::SendZc::CODE);
        let slots = (0..capacity)
            .map(|_| Slot {
                fd: -1,
                // SAFETY: sockaddr_storage, iovec and msghdr are plain C structs for
                // which all-zero is a valid value.
                addr: unsafe { std::mem::zeroed() },
                iov: libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
                // SAFETY: as above.
                msg: unsafe { std::mem::zeroed() },
                buf: Vec::new(),
            })
            .collect();
        Ok(UringSender {
            ring,
            slots,
            queued: 0,
            results: Vec::with_capacity(capacity),
            broken: false,
            sendmsg,
        })
    }

    /// Packets one `submit` can take.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Packets queued since the last `submit`.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Queue `bytes` for `dest` on socket `fd` (copied: the caller's buffer is free
    /// at once). Nothing is sent until `submit`. The fd must stay open until then;
    /// if it is closed, that packet's result is EBADF.
    pub fn queue(&mut self, fd: RawFd, dest: SocketAddr, bytes: &[u8]) -> Result<(), QueueFull> {
        let capacity = self.slots.len();
        let Some(slot) = self.slots.get_mut(self.queued) else {
            return Err(QueueFull { capacity });
        };
        slot.fd = fd;
        let mut name = std::mem::MaybeUninit::new(slot.addr);
        let namelen = write_sockaddr(dest, &mut name);
        // SAFETY: `name` was initialised from `slot.addr` and then (partly) rewritten.
        slot.addr = unsafe { name.assume_init() };
        slot.msg.msg_namelen = namelen;
        slot.buf.clear();
        if slot.buf.capacity() < bytes.len() {
            slot.buf.reserve(bytes.len().max(SLOT_START_BYTES));
        }
        slot.buf.extend_from_slice(bytes);
        self.queued += 1;
        Ok(())
    }

    /// Send everything queued with as few `io_uring_enter` calls as the ring size
    /// allows (one when `capacity` ≤ 4096), wait until all are done, and return the
    /// result of each packet in queue order: the bytes sent, or the error `sendmsg`
    /// would have given (WouldBlock: socket buffer full, the packet is dropped; the
    /// sends never wait for room). Err only when the ring itself fails; the sender
    /// then refuses further submits (fall back to `sendto`).
    pub fn submit(&mut self) -> io::Result<&[io::Result<usize>]> {
        let queued = std::mem::take(&mut self.queued);
        self.results.clear();
        if self.broken {
            return Err(io::Error::other("io_uring sender failed earlier"));
        }
        self.results.resize_with(queued, || Ok(0));
        let chunk_max = self.ring.params().sq_entries() as usize;
        let mut base = 0;
        while base < queued {
            let n = (queued - base).min(chunk_max);
            if let Err(e) = self.submit_chunk(base, n) {
                self.broken = true;
                return Err(e);
            }
            base += n;
        }
        Ok(&self.results)
    }

    fn submit_chunk(&mut self, base: usize, n: usize) -> io::Result<()> {
        {
            let mut sq = self.ring.submission();
            for (i, slot) in self.slots[base..base + n].iter_mut().enumerate() {
                // Pointers are set here, not in `queue`, as the slot's buffer may have
                // grown since; the slots themselves never move (boxed slice).
                slot.iov.iov_base = slot.buf.as_mut_ptr().cast();
                slot.iov.iov_len = slot.buf.len();
                slot.msg.msg_name = (&mut slot.addr as *mut libc::sockaddr_storage).cast();
                slot.msg.msg_iov = &mut slot.iov;
                slot.msg.msg_iovlen = 1;
                // MSG_DONTWAIT makes a full socket buffer complete with EAGAIN
                // instead of parking the send until the socket is writable.
                let entry = if self.sendmsg {
                    opcode::SendMsg::new(types::Fd(slot.fd), &slot.msg)
                        .flags(libc::MSG_DONTWAIT as u32)
                        .build()
                } else {
                    // Lengths beyond u32 fail in the kernel anyway (EMSGSIZE).
                    let len = u32::try_from(slot.buf.len()).unwrap_or(u32::MAX);
                    opcode::Send::new(types::Fd(slot.fd), slot.buf.as_ptr(), len)
                        .dest_addr(slot.msg.msg_name.cast_const().cast())
                        .dest_addr_len(slot.msg.msg_namelen)
                        .flags(libc::MSG_DONTWAIT)
                        .build()
                }
                .user_data((base + i) as u64);
                // SAFETY: the entry points at `slot.msg` (or directly at the buffer
                // and address), which points at the slot's address, iovec and buffer; the slots are neither moved, freed nor
                // changed until every completion of this chunk has been reaped below.
                if unsafe { sq.push(&entry) }.is_err() {
                    // Cannot happen: n ≤ the queue size and the queue is drained
                    // before each chunk.
                    return Err(io::Error::other("io_uring submission queue full"));
                }
            }
        }
        let mut done = 0;
        while done < n {
            match self.ring.submit_and_wait(n - done) {
                Ok(_) => {}
                // Entries already submitted stay submitted; the next call waits again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for cqe in self.ring.completion() {
                let Some(result) = usize::try_from(cqe.user_data())
                    .ok()
                    .and_then(|i| self.results.get_mut(i))
                else {
                    continue;
                };
                let r = cqe.result();
                *result = if r >= 0 {
                    Ok(r as usize)
                } else {
                    Err(io::Error::from_raw_os_error(-r))
                };
                done += 1;
            }
        }
        Ok(())
    }
}

// SAFETY: the raw pointers in the slots point only into the slots themselves and
// their buffers, owned by the sender and moved with it; the ring may be used from
// any thread (one at a time: every method takes `&mut self`).
unsafe impl Send for UringSender {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn sender(capacity: usize) -> Option<UringSender> {
        sender_with(capacity, UringOptions::default())
    }

    fn sender_with(capacity: usize, options: UringOptions) -> Option<UringSender> {
        match UringSender::with_options(capacity, options) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("skipping: io_uring unavailable here ({e})");
                None
            }
        }
    }

    /// Packets from several sockets in one submit arrive with the right source; a
    /// closed descriptor fails its own packet only.
    #[test]
    fn sends_from_many_sockets_at_once() {
        for sendmsg in [false, true] {
            for single_issuer in [false, true] {
                let options = UringOptions {
                    sendmsg,
                    single_issuer,
                };
                if let Some(uring) = sender_with(8, options) {
                    many_sockets_at_once(uring);
                }
            }
        }
    }

    fn many_sockets_at_once(mut uring: UringSender) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = rx.local_addr().unwrap();
        let txs: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for round in 0..3u8 {
            for (i, tx) in txs.iter().enumerate() {
                let packet = [round, i as u8, 0xAA];
                uring.queue(tx.as_raw_fd(), to, &packet).unwrap();
            }
            uring.queue(-1, to, b"nowhere").unwrap();
            assert_eq!(uring.queued(), 4);
            let results = uring.submit().unwrap();
            assert_eq!(results.len(), 4);
            for r in &results[..3] {
                assert_eq!(*r.as_ref().unwrap(), 3);
            }
            let bad = results[3].as_ref().unwrap_err();
            assert_eq!(bad.raw_os_error(), Some(libc::EBADF));
            assert_eq!(uring.queued(), 0);
            let mut buf = [0u8; 16];
            for _ in 0..3 {
                let (n, from) = rx.recv_from(&mut buf).unwrap();
                assert_eq!(n, 3);
                let i = usize::from(buf[1]);
                assert_eq!((buf[0], buf[2]), (round, 0xAA));
                assert_eq!(from, txs[i].local_addr().unwrap());
            }
        }
        // An empty submit is fine.
        assert!(uring.submit().unwrap().is_empty());
    }

    #[test]
    fn queue_full_is_an_error() {
        let Some(mut uring) = sender(2) else { return };
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = tx.local_addr().unwrap();
        uring.queue(tx.as_raw_fd(), to, b"a").unwrap();
        uring.queue(tx.as_raw_fd(), to, b"b").unwrap();
        let err = uring.queue(tx.as_raw_fd(), to, b"c").unwrap_err();
        assert_eq!(err.capacity, 2);
        assert_eq!(uring.submit().unwrap().len(), 2);
        uring.queue(tx.as_raw_fd(), to, b"c").unwrap();
    }

    /// More packets than the ring holds go in several chunks, results in order,
    /// and IPv6 destinations work too when the host has ::1.
    #[test]
    fn larger_than_the_ring() {
        let Some(mut uring) = sender(RING_ENTRIES_MAX + 100) else {
            return;
        };
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        for i in 0..RING_ENTRIES_MAX + 100 {
            // Lengths vary so each result can be matched to its packet.
            let len = 1 + i % 200;
            uring.queue(tx.as_raw_fd(), to, &[0u8; 200][..len]).unwrap();
        }
        let results = uring.submit().unwrap();
        for (i, r) in results.iter().enumerate() {
            // The receiver is not reading: loopback drops at its end, never here.
            assert_eq!(*r.as_ref().unwrap(), 1 + i % 200);
        }
        if let Ok(rx6) = UdpSocket::bind("[::1]:0") {
            let tx6 = UdpSocket::bind("[::1]:0").unwrap();
            rx6.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            uring
                .queue(tx6.as_raw_fd(), rx6.local_addr().unwrap(), b"six")
                .unwrap();
            assert_eq!(*uring.submit().unwrap()[0].as_ref().unwrap(), 3);
            let mut buf = [0u8; 8];
            assert_eq!(
                rx6.recv_from(&mut buf).unwrap(),
                (3, tx6.local_addr().unwrap())
            );
        } else {
            eprintln!("skipping the IPv6 part: cannot bind ::1");
        }
    }
}

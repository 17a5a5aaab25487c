//! `--rtp-ports LOW-HIGH`: RTP/RTCP port pairs for calls. A released pair goes to the
//! back of the queue, so a port is reused as late as possible (a stray packet for the
//! old call does not land in a new one). Ports another process holds are skipped.
//!
//! One pool serves all driver threads of a process behind a `Mutex`, locked once per
//! call start and end (never per packet), so the queue is a plain `VecDeque`.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};

use super::media_socket::MediaSocket;

/// Every pair of the range was tried and none could be bound.
#[derive(Debug, thiserror::Error)]
#[error(
    "no free RTP port pair in {low}-{high} ({pairs} pairs, all in use by calls or \
     taken by other processes); widen the range with --rtp-ports LOW-HIGH"
)]
pub struct PortsExhausted {
    pub low: u16,
    pub high: u16,
    pub pairs: usize,
}

#[derive(Debug)]
pub struct PortPool {
    low: u16,
    high: u16,
    /// First even port of the range: pair `i` is `first + 2 i`.
    first: u32,
    /// Free pairs by index, oldest release first.
    free: VecDeque<u16>,
    /// Pairs handed out and not yet released, so a double or stray release cannot
    /// put a pair in the queue twice.
    in_use: Vec<bool>,
}

impl PortPool {
    /// Even RTP ports in `low..=high` (RTCP on the odd port above, also in the range).
    /// Port 0 is never used (it means "any port" to bind); an empty or inverted range
    /// gives an empty pool, whose `bind_pair` reports the range as exhausted.
    pub fn new(low: u16, high: u16) -> PortPool {
        let first = (u32::from(low.max(1)) + 1) & !1;
        // Pairs p, p+1 with p >= first and p+1 <= high.
        let pairs = if u32::from(high) > first {
            ((u32::from(high) - first - 1) / 2 + 1) as usize
        } else {
            0
        };
        PortPool {
            low,
            high,
            first,
            // At most 32,767 pairs: the index fits a u16.
            free: (0..pairs as u16).collect(),
            in_use: vec![false; pairs],
        }
    }

    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }

    /// Bind the next free pair on `ip` (only RTP when `rtcp` is false: rtcp-mux).
    /// Err when every port of the range is taken.
    ///
    /// A pair with a port in use by anyone else (EADDRINUSE, or EACCES for a
    /// privileged port) goes to the back of the queue and the next is tried; every
    /// pair is tried once at most. Any other error (e.g. `ip` is not an address of
    /// this host) would fail for every pair alike and is returned at once.
    pub fn bind_pair(
        &mut self,
        ip: IpAddr,
        rtcp: bool,
    ) -> io::Result<(MediaSocket, Option<MediaSocket>)> {
        for _ in 0..self.free.len() {
            let Some(index) = self.free.pop_front() else {
                break;
            };
            let port = self.port_of(index);
            match Self::try_bind(ip, port, rtcp) {
                Ok(sockets) => {
                    self.in_use[usize::from(index)] = true;
                    return Ok(sockets);
                }
                Err(e) if taken(&e) => self.free.push_back(index),
                Err(e) => {
                    self.free.push_front(index);
                    return Err(e);
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            PortsExhausted {
                low: self.low,
                high: self.high,
                pairs: self.capacity(),
            },
        ))
    }

    /// The call using this RTP port ended. A port that is not the RTP port of a pair
    /// handed out (and not yet released) is ignored.
    pub fn release(&mut self, rtp_port: u16) {
        let port = u32::from(rtp_port);
        if port < self.first || !(port - self.first).is_multiple_of(2) {
            return;
        }
        let index = ((port - self.first) / 2) as usize;
        if let Some(used) = self.in_use.get_mut(index)
            && *used
        {
            *used = false;
            self.free.push_back(index as u16);
        }
    }

    fn port_of(&self, index: u16) -> u16 {
        // Indices come from `new`, where first + 2 * index + 1 <= high.
        (self.first + 2 * u32::from(index)) as u16
    }

    fn try_bind(
        ip: IpAddr,
        port: u16,
        rtcp: bool,
    ) -> io::Result<(MediaSocket, Option<MediaSocket>)> {
        let rtp = MediaSocket::bind(SocketAddr::new(ip, port))?;
        let rtcp = if rtcp {
            // On failure `rtp` is dropped here, freeing its port again.
            Some(MediaSocket::bind(SocketAddr::new(ip, port + 1))?)
        } else {
            None
        };
        Ok((rtp, rtcp))
    }
}

fn taken(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::os::fd::AsRawFd;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn rtp_port(pair: &(MediaSocket, Option<MediaSocket>)) -> u16 {
        pair.0.local_addr().unwrap().port()
    }

    #[test]
    fn pairs_in_the_range() {
        assert_eq!(PortPool::new(10_000, 10_009).capacity(), 5);
        // Odd bounds: 10,002..=10,007 are the whole pairs.
        assert_eq!(PortPool::new(10_001, 10_008).capacity(), 3);
        assert_eq!(PortPool::new(10_000, 10_000).capacity(), 0);
        assert_eq!(PortPool::new(10_000, 9_000).capacity(), 0);
        // Port 0 is skipped; 65,534/65,535 is the last pair.
        assert_eq!(PortPool::new(0, 5).capacity(), 2);
        assert_eq!(PortPool::new(65_530, 65_535).capacity(), 3);
        assert_eq!(PortPool::new(0, 65_535).capacity(), 32_767);
    }

    /// Pairs go out in order; a released pair is used only after all others.
    #[test]
    fn allocation_order_and_reuse_last() {
        let mut pool = PortPool::new(23_400, 23_409);
        let a = pool.bind_pair(LOCAL, true).unwrap();
        let b = pool.bind_pair(LOCAL, true).unwrap();
        let c = pool.bind_pair(LOCAL, false).unwrap();
        assert_eq!(
            [rtp_port(&a), rtp_port(&b), rtp_port(&c)],
            [23_400, 23_402, 23_404]
        );
        assert_eq!(a.1.as_ref().unwrap().local_addr().unwrap().port(), 23_401);
        assert!(c.1.is_none());
        drop(a);
        pool.release(23_400);
        // Stray releases change nothing: not handed out, odd, out of range, twice.
        pool.release(23_406);
        pool.release(23_401);
        pool.release(1);
        pool.release(23_400);
        let d = pool.bind_pair(LOCAL, true).unwrap();
        let e = pool.bind_pair(LOCAL, true).unwrap();
        let f = pool.bind_pair(LOCAL, true).unwrap();
        assert_eq!(
            [rtp_port(&d), rtp_port(&e), rtp_port(&f)],
            [23_406, 23_408, 23_400]
        );
        drop((b, c));
    }

    /// A port held by someone else is skipped, whether it is the RTP or the RTCP one,
    /// and its pair is tried again later.
    #[test]
    fn skips_ports_held_elsewhere() {
        let held_rtcp = UdpSocket::bind("127.0.0.1:23421").unwrap();
        let held_rtp = UdpSocket::bind("127.0.0.1:23422").unwrap();
        let mut pool = PortPool::new(23_420, 23_427);
        let a = pool.bind_pair(LOCAL, true).unwrap();
        assert_eq!(rtp_port(&a), 23_424);
        // Without RTCP the first pair is usable; it went to the back when skipped.
        let b = pool.bind_pair(LOCAL, false).unwrap();
        assert_eq!(rtp_port(&b), 23_426);
        let c = pool.bind_pair(LOCAL, false).unwrap();
        assert_eq!(rtp_port(&c), 23_420);
        drop(held_rtp);
        let d = pool.bind_pair(LOCAL, true).unwrap();
        assert_eq!(rtp_port(&d), 23_422);
        assert!(held_rtcp.as_raw_fd() >= 0);
    }

    #[test]
    fn exhaustion_is_an_error_naming_the_option() {
        let mut pool = PortPool::new(23_430, 23_433);
        let _a = pool.bind_pair(LOCAL, true).unwrap();
        let _b = pool.bind_pair(LOCAL, true).unwrap();
        let err = pool.bind_pair(LOCAL, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let text = err.to_string();
        assert!(
            text.contains("23430-23433") && text.contains("--rtp-ports"),
            "{text}"
        );
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<PortsExhausted>());
        assert_eq!(inner.map(|e| e.pairs), Some(2));
        // Nothing was lost: a release makes a pair available again.
        drop(_a);
        pool.release(23_430);
        assert_eq!(rtp_port(&pool.bind_pair(LOCAL, true).unwrap()), 23_430);

        let mut empty = PortPool::new(5_000, 4_000);
        assert!(
            empty
                .bind_pair(LOCAL, false)
                .unwrap_err()
                .to_string()
                .contains("--rtp-ports")
        );
    }
}

//! TCP listeners for the connection transports (tcp, tls, ws, wss). A UAS's workers
//! share one port (SO_REUSEPORT: the kernel spreads connections across them); a
//! UAC worker listens on its own SIP port so requests a proxy sends towards its
//! Contact reach the worker that owns the call.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Pending connections the kernel queues per listener: a load test's burst of
/// new connections (thousands per second) must not be refused at the door.
const BACKLOG: i32 = 4096;

/// Listen on `addr`; `shared`: other listeners may join the same port.
pub fn listen(addr: SocketAddr, shared: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if shared {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // `[::]` means IPv6 only here; IPv4 peers use an IPv4 bind.
        socket.set_only_v6(true)?;
    }
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_listeners_join_one_port() {
        let a = listen("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let port = a.local_addr().unwrap();
        let b = listen(port, true).unwrap();
        assert_eq!(b.local_addr().unwrap(), port);
        let c = listen("127.0.0.1:0".parse().unwrap(), false).unwrap();
        assert!(listen(c.local_addr().unwrap(), false).is_err());
    }
}

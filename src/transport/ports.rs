//! `--rtp-ports LOW-HIGH`: RTP/RTCP port pairs for calls. A released pair goes to the
//! back of the queue, so a port is reused as late as possible (a stray packet for the
//! old call does not land in a new one). Ports another process holds are skipped.
//! CONTRACT STUB: implemented by the transport work; signatures are fixed.

use std::io;
use std::net::IpAddr;

use super::media_socket::MediaSocket;

pub struct PortPool {
    _private: (),
}

impl PortPool {
    /// Even RTP ports in `low..=high` (RTCP on the odd port above).
    pub fn new(_low: u16, _high: u16) -> PortPool {
        todo!()
    }
    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        todo!()
    }
    /// Bind the next free pair on `ip` (only RTP when `rtcp` is false: rtcp-mux).
    /// Err when every port of the range is taken.
    pub fn bind_pair(
        &mut self,
        _ip: IpAddr,
        _rtcp: bool,
    ) -> io::Result<(MediaSocket, Option<MediaSocket>)> {
        todo!()
    }
    /// The call using this RTP port ended.
    pub fn release(&mut self, _rtp_port: u16) {
        todo!()
    }
}

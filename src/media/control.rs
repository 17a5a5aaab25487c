//! How a call reaches its media without owning sockets: the driver's media engine
//! implements [`MediaControl`]; a call keeps only a [`MediaHandle`] (8 bytes), so
//! calls without media stay small and the interpreter stays sans-IO (unit tests use
//! [`SessionTable`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::config::MediaConfig;
use super::session::{MediaError, MediaSession};
use super::stream::MediaStream;

/// A call's media session in the engine: slot and generation (a reused slot does not
/// answer to an old handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaHandle {
    pub index: u32,
    pub generation: u32,
}

pub trait MediaControl {
    /// Bind ports and create the session for call number `call`.
    fn open(&mut self, call: u64, now: Instant) -> Result<MediaHandle, MediaError>;
    fn get(&self, h: MediaHandle) -> Option<&MediaSession>;
    /// Mutable access; the engine re-reads the stream's deadline afterwards.
    fn get_mut(&mut self, h: MediaHandle) -> Option<&mut MediaSession>;
    /// The call ended: stop sending (RTCP BYE), finish recordings, free the ports.
    fn close(&mut self, h: MediaHandle, now: Instant);
}

/// For drivers whose scenario has no media.
pub struct NoMedia;

impl MediaControl for NoMedia {
    fn open(&mut self, _call: u64, _now: Instant) -> Result<MediaHandle, MediaError> {
        Err(MediaError::Other(
            "this scenario has no media (add a `media:` block)".into(),
        ))
    }
    fn get(&self, _h: MediaHandle) -> Option<&MediaSession> {
        None
    }
    fn get_mut(&mut self, _h: MediaHandle) -> Option<&mut MediaSession> {
        None
    }
    fn close(&mut self, _h: MediaHandle, _now: Instant) {}
}

/// Sessions without sockets: what the interpreter's unit tests drive. Ports are
/// numbered from `base_port` on 127.0.0.1.
pub struct SessionTable {
    pub config: MediaConfig,
    pub base_port: u16,
    pub sessions: Vec<Option<MediaSession>>,
    pub closed: Vec<MediaHandle>,
}

impl SessionTable {
    pub fn new(config: MediaConfig, base_port: u16) -> SessionTable {
        SessionTable {
            config,
            base_port,
            sessions: Vec::new(),
            closed: Vec::new(),
        }
    }
}

impl MediaControl for SessionTable {
    fn open(&mut self, call: u64, now: Instant) -> Result<MediaHandle, MediaError> {
        let index = self.sessions.len() as u32;
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let port = self.base_port + 2 * index as u16;
        let rtp = SocketAddr::new(ip, port);
        let rtcp = SocketAddr::new(ip, port + 1);
        let stream = MediaStream::new(call, self.config.echo, (now, 0));
        self.sessions.push(Some(MediaSession::new(
            &self.config,
            ip,
            rtp,
            Some(rtcp),
            call,
            stream,
            // Seeded, so tests repeat; by port too, so two tables never share keys.
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(
                u64::from(port) << 32 | call,
            ),
        )));
        Ok(MediaHandle {
            index,
            generation: 0,
        })
    }
    fn get(&self, h: MediaHandle) -> Option<&MediaSession> {
        self.sessions.get(h.index as usize)?.as_ref()
    }
    fn get_mut(&mut self, h: MediaHandle) -> Option<&mut MediaSession> {
        self.sessions.get_mut(h.index as usize)?.as_mut()
    }
    fn close(&mut self, h: MediaHandle, _now: Instant) {
        if let Some(s) = self.get_mut(h) {
            s.stream.close();
        }
        self.closed.push(h);
    }
}

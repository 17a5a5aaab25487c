//! A driver's connections (tcp, tls, ws, wss): the sockets, their listener, and the
//! sans-IO [`Connection`] state of each, in a slab addressed by (index, generation).
//! Sockets are non-blocking and registered once with the driver's poller for
//! reading and writing (edge-triggered): an event means "read until WouldBlock and
//! write what is queued". Writes never block the driver: what the kernel does not
//! take stays queued (bounded per connection) until the writable edge.
//!
//! The table knows nothing about calls beyond an optional owner handle per
//! connection; the driver routes messages by Call-ID and decides which connection a
//! message takes.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};

use super::connection::{Connection, ConnectionError, ConnectionSettings, Inbound};
use super::kind::TransportKind;
use super::poller::Registrar;
use crate::report::ConnectionCounters;
use crate::sip::validate::Malformed;

/// Connection tokens in the driver's poller: this bit, the generation in bits 32–61
/// and the slot index below. Tokens under it belong to the SIP socket (0), the
/// listener (1) and media sockets.
pub const CONN_TOKEN: u64 = 1 << 62;
/// The listener's token.
pub const LISTENER_TOKEN: u64 = 1;
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// Connections accepted per listener event before other work gets a turn.
const ACCEPT_BUDGET: usize = 256;
/// How long a connection whose call ended may take to send what that call queued
/// last (a connect still under way, a peer slow to read) before it is closed anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// A connection's handle: stale handles (a closed connection whose slot was
/// reused) find nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub index: u32,
    pub generation: u32,
}

impl ConnId {
    fn token(self) -> u64 {
        CONN_TOKEN | (u64::from(self.generation & 0x3fff_ffff) << 32) | u64::from(self.index)
    }

    fn from_token(token: u64) -> Option<ConnId> {
        (token & CONN_TOKEN != 0).then_some(ConnId {
            index: token as u32,
            generation: ((token >> 32) & 0x3fff_ffff) as u32,
        })
    }
}

/// Why a connection ended, as counted in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// We closed it (its call ended, the run ended).
    Local,
    /// The peer closed it (FIN, TLS close_notify, WebSocket close).
    ClosedByPeer,
    /// Reset or another socket error.
    Reset,
    /// The TCP connect failed (refused, unreachable).
    ConnectFailed,
    /// The peer sent something we could not frame (garbage, no end of headers, a
    /// message over the size limit, a non-SIP WebSocket frame).
    Garbage,
    /// TLS failed (handshake, verification, alert, bad record).
    Tls,
    /// The WebSocket upgrade or a frame failed.
    WebSocket,
    /// The peer did not read what we sent (output bound reached).
    Stuck,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Local => "local",
            CloseReason::ClosedByPeer => "closed_by_peer",
            CloseReason::Reset => "reset",
            CloseReason::ConnectFailed => "connect_failed",
            CloseReason::Garbage => "garbage",
            CloseReason::Tls => "tls",
            CloseReason::WebSocket => "websocket",
            CloseReason::Stuck => "stuck",
        }
    }

    fn of(e: &ConnectionError) -> CloseReason {
        match e {
            ConnectionError::Framing(_) | ConnectionError::NotSip => CloseReason::Garbage,
            ConnectionError::Tls(_) => CloseReason::Tls,
            ConnectionError::WebSocket(_) => CloseReason::WebSocket,
            ConnectionError::OutputFull(_) => CloseReason::Stuck,
        }
    }
}

/// A connection that ended since the driver last looked.
#[derive(Debug)]
pub struct Closed {
    pub id: ConnId,
    pub owner: Option<(usize, u32)>,
    pub reason: CloseReason,
    pub detail: String,
}

struct Entry {
    generation: u32,
    socket: TcpStream,
    conn: Connection,
    peer: SocketAddr,
    /// The call this connection belongs to (per-call model); None when shared.
    owner: Option<(usize, u32)>,
    /// More than one call used it: a failure concerns them all.
    shared: bool,
    /// We opened it (we close it when its call or the run ends; the peer closes
    /// the ones it opened).
    outgoing: bool,
    started: Instant,
    /// Our end of it (for traces).
    local: SocketAddr,
    /// Bytes traced so far per direction (sent, received): the synthesized TCP
    /// sequence numbers of `--trace`.
    traced: [u32; 2],
    /// When the TLS handshake ended (for its duration), once.
    handshake_noted: bool,
    last_activity: Instant,
}

pub struct Connections {
    kind: TransportKind,
    settings: ConnectionSettings,
    registrar: Registrar,
    listener: Option<TcpListener>,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    generation: u32,
    /// The newest connection to or from each peer address (reuse, stateless replies).
    by_peer: HashMap<SocketAddr, ConnId>,
    read_buf: Vec<u8>,
    /// Connections with output queued since the last `flush`.
    dirty: Vec<ConnId>,
    /// Messages received since the driver last drained them: bytes and (connection,
    /// peer, range).
    pub received: Vec<u8>,
    pub messages: Vec<(ConnId, SocketAddr, Range<usize>)>,
    pub closed: Vec<Closed>,
    /// Messages the framing refused since the driver last drained them, by
    /// cause (each closed its connection; counted as unparseable messages too).
    pub unframed: Vec<Malformed>,
    pub counters: ConnectionCounters,
    /// TLS handshake durations since the driver last drained them.
    pub handshakes: Vec<Duration>,
    /// Idle time after which a keep-alive is sent (None: never).
    keepalive: Option<Duration>,
    next_keepalive_scan: Option<Instant>,
    /// The accept budget ran out with connections still waiting.
    listener_pending: bool,
    /// What the last `Connection::receive` found (reused).
    events: Vec<Inbound>,
    /// Connections to close when their time comes (`ConnectionSettings::linger`
    /// after their call ended); in time order, since the linger is one constant.
    closing: std::collections::VecDeque<(Instant, ConnId)>,
    /// Connections to close once what they hold is written (or by the deadline):
    /// a call's last message may still be in the output, or wait for the connect.
    draining: Vec<Drain>,
}

impl Connections {
    pub fn new(
        kind: TransportKind,
        settings: ConnectionSettings,
        registrar: Registrar,
        listener: Option<std::net::TcpListener>,
        keepalive: Option<Duration>,
    ) -> io::Result<Connections> {
        let listener = match listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                let l = TcpListener::from_std(l);
                registrar.register(l.as_raw_fd(), LISTENER_TOKEN)?;
                Some(l)
            }
            None => None,
        };
        Ok(Connections {
            kind,
            settings,
            registrar,
            listener,
            entries: Vec::new(),
            free: Vec::new(),
            generation: 0,
            by_peer: HashMap::new(),
            read_buf: vec![0; READ_CHUNK],
            dirty: Vec::new(),
            received: Vec::new(),
            messages: Vec::new(),
            closed: Vec::new(),
            unframed: Vec::new(),
            counters: ConnectionCounters::default(),
            handshakes: Vec::new(),
            keepalive,
            next_keepalive_scan: None,
            listener_pending: false,
            events: Vec::new(),
            closing: std::collections::VecDeque::new(),
            draining: Vec::new(),
        })
    }

    /// Open a connection to `to` (non-blocking connect; messages sent before it is
    /// up wait in its output). `host` names the server for TLS (SNI, verification)
    /// and WebSocket (`Host`).
    pub fn open(
        &mut self,
        to: SocketAddr,
        host: &str,
        owner: Option<(usize, u32)>,
        now: Instant,
    ) -> Result<ConnId, (CloseReason, String)> {
        let authority = if to.port() == self.kind.default_port() {
            host.to_string()
        } else if host.contains(':') {
            format!("[{host}]:{}", to.port())
        } else {
            format!("{host}:{}", to.port())
        };
        let conn = Connection::client(self.kind, &self.settings, host, &authority)
            .map_err(|e| (CloseReason::of(&e), e.to_string()))?;
        self.counters.opened += 1;
        let socket = TcpStream::connect(to).map_err(|e| {
            self.note_error(CloseReason::ConnectFailed);
            (
                CloseReason::ConnectFailed,
                format!("connecting to {to}: {e}"),
            )
        })?;
        let _ = socket.set_nodelay(true);
        self.insert(socket, conn, to, owner, true, now)
            .map_err(|e| {
                self.note_error(CloseReason::ConnectFailed);
                (CloseReason::ConnectFailed, format!("registering: {e}"))
            })
    }

    fn insert(
        &mut self,
        socket: TcpStream,
        conn: Connection,
        peer: SocketAddr,
        owner: Option<(usize, u32)>,
        outgoing: bool,
        now: Instant,
    ) -> io::Result<ConnId> {
        self.generation = self.generation.wrapping_add(1) & 0x3fff_ffff;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(None);
                (self.entries.len() - 1) as u32
            }
        };
        let id = ConnId {
            index,
            generation: self.generation,
        };
        let local = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        if let Err(e) = self.registrar.register_rw(socket.as_raw_fd(), id.token()) {
            self.free.push(index);
            return Err(e);
        }
        self.entries[index as usize] = Some(Entry {
            generation: self.generation,
            socket,
            conn,
            peer,
            owner,
            shared: false,
            outgoing,
            started: now,
            local,
            traced: [1, 1],
            handshake_noted: false,
            last_activity: now,
        });
        self.by_peer.insert(peer, id);
        self.counters.active += 1;
        if let Some(k) = self.keepalive {
            self.next_keepalive_scan.get_or_insert(now + k);
        }
        Ok(id)
    }

    fn entry(&mut self, id: ConnId) -> Option<&mut Entry> {
        self.entries
            .get_mut(id.index as usize)?
            .as_mut()
            .filter(|e| e.generation == id.generation)
    }

    pub fn is_alive(&self, id: ConnId) -> bool {
        self.entries
            .get(id.index as usize)
            .and_then(|e| e.as_ref())
            .is_some_and(|e| e.generation == id.generation)
    }

    /// The newest live connection with this peer.
    pub fn find(&self, peer: SocketAddr) -> Option<ConnId> {
        self.by_peer
            .get(&peer)
            .copied()
            .filter(|id| self.is_alive(*id))
    }

    /// For a trace of `len` bytes in one direction (`sent`): our address, the
    /// peer's, and the TCP sequence and acknowledgement numbers of the segment.
    pub fn trace_segment(
        &mut self,
        id: ConnId,
        sent: bool,
        len: usize,
    ) -> Option<(SocketAddr, SocketAddr, u32, u32)> {
        let e = self.entry(id)?;
        let (mine, theirs) = if sent { (0, 1) } else { (1, 0) };
        let seq = e.traced[mine];
        e.traced[mine] = seq.wrapping_add(len as u32);
        Some((e.local, e.peer, seq, e.traced[theirs]))
    }

    /// The call a connection we opened belongs to (None: shared or accepted).
    pub fn outgoing_owner(&self, id: ConnId) -> Option<(usize, u32)> {
        self.entries
            .get(id.index as usize)?
            .as_ref()
            .filter(|e| e.generation == id.generation && e.outgoing && !e.shared)?
            .owner
    }

    /// A call uses this connection: the first one owns it (a failure is its alone),
    /// a second makes it shared (a failure concerns every call on it).
    pub fn adopt(&mut self, id: ConnId, call: (usize, u32)) {
        if let Some(e) = self.entry(id)
            && !e.shared
            && e.owner != Some(call)
        {
            if e.owner.is_none() && !e.outgoing {
                e.owner = Some(call);
            } else {
                e.owner = None;
                e.shared = true;
            }
        }
    }

    /// Open now.
    pub fn active(&self) -> usize {
        self.counters.active as usize
    }

    /// Queue one SIP message; it leaves on the next `flush`. An error closes the
    /// connection (reported through `closed`).
    pub fn send(&mut self, id: ConnId, msg: &[u8], now: Instant) -> bool {
        let Some(e) = self.entry(id) else {
            return false;
        };
        e.last_activity = now;
        match e.conn.send(msg) {
            Ok(()) => {
                self.dirty.push(id);
                true
            }
            Err(err) => {
                let reason = CloseReason::of(&err);
                self.fail(id, reason, err.to_string());
                false
            }
        }
    }

    /// Write what every connection with new output holds (as much as the kernel
    /// takes; the rest waits for the writable edge), then close the connections
    /// whose call ended and whose output is gone.
    pub fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for id in dirty.drain(..) {
            self.write(id);
        }
        self.dirty = dirty;
        if !self.draining.is_empty() {
            for d in &mut self.draining {
                d.handed = true;
            }
            self.close_drained(Instant::now());
        }
    }

    /// Close `id` once what it holds is written.
    fn drain_later(&mut self, id: ConnId, now: Instant) {
        self.draining.push(Drain {
            id,
            deadline: now + DRAIN_LIMIT,
            handed: false,
        });
    }

    /// Close the draining connections that are done: open (handshakes over, so
    /// nothing waits inside TLS or WebSocket), handed their call's last messages,
    /// nothing left to write; or past their deadline.
    fn close_drained(&mut self, now: Instant) {
        if self.draining.is_empty() {
            return;
        }
        let mut draining = std::mem::take(&mut self.draining);
        draining.retain(|d| {
            let Some(e) = self.entry(d.id) else {
                return false;
            };
            let drained = d.handed && e.conn.is_open() && e.conn.output().is_empty();
            if drained || d.deadline <= now {
                self.close(d.id);
                return false;
            }
            true
        });
        self.draining = draining;
    }

    fn write(&mut self, id: ConnId) {
        let Some(e) = self.entry(id) else { return };
        if !e.conn.is_connected() {
            return;
        }
        let mut result = Ok(());
        while !e.conn.output().is_empty() {
            match e.socket.write(e.conn.output()) {
                Ok(0) => break,
                Ok(n) => e.conn.wrote(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        if let Err(err) = result {
            self.fail(id, CloseReason::Reset, format!("writing: {err}"));
        }
    }

    /// Handle one poller token if it is ours (listener or connection).
    pub fn on_ready(&mut self, token: u64, now: Instant) {
        if token == LISTENER_TOKEN {
            self.accept(now);
        } else if let Some(id) = ConnId::from_token(token) {
            self.on_conn_ready(id, now);
        }
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPT_BUDGET {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    self.counters.accepted += 1;
                    match Connection::server(self.kind, &self.settings) {
                        Ok(conn) => {
                            if self.insert(socket, conn, peer, None, false, now).is_err() {
                                self.note_error(CloseReason::Reset);
                            }
                        }
                        Err(_) => self.note_error(CloseReason::Tls),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors (EMFILE) or a connection reset before accept:
                // counted; the next event tries again.
                Err(_) => {
                    self.note_error(CloseReason::Reset);
                    return;
                }
            }
        }
        // Budget used up with more pending: edge-triggered, so no new event comes
        // for those. Poll the listener again on the next pass.
        self.listener_pending = true;
    }

    /// Work left over from the last events: connections still to accept after the
    /// budget ran out, keep-alives due.
    pub fn poll_pending(&mut self, now: Instant) {
        if std::mem::take(&mut self.listener_pending) {
            self.accept(now);
        }
        while let Some(&(at, id)) = self.closing.front()
            && at <= now
        {
            self.closing.pop_front();
            self.drain_later(id, now);
        }
        self.close_drained(now);
        if let (Some(k), Some(at)) = (self.keepalive, self.next_keepalive_scan)
            && now >= at
        {
            self.next_keepalive_scan = Some(now + k / 2);
            for index in 0..self.entries.len() {
                let Some(e) = self.entries[index].as_mut() else {
                    continue;
                };
                // RFC 5626 §3.5.1: the side that opened the connection pings; the
                // accepting side only answers. Both pinging made each side's ping
                // reset the other's idle clock, so one side never sent any.
                if !e.outgoing
                    || now.saturating_duration_since(e.last_activity) < k
                    || !e.conn.is_open()
                {
                    continue;
                }
                e.last_activity = now;
                let id = ConnId {
                    index: index as u32,
                    generation: e.generation,
                };
                match e.conn.send_keepalive() {
                    Ok(()) => {
                        self.counters.keepalives_sent += 1;
                        self.dirty.push(id);
                    }
                    Err(err) => self.fail(id, CloseReason::of(&err), err.to_string()),
                }
            }
        }
    }

    /// Readable and/or writable: finish a connect, read until WouldBlock, write
    /// what is queued.
    fn on_conn_ready(&mut self, id: ConnId, now: Instant) {
        let Some(e) = self.entry(id) else { return };
        if !e.conn.is_connected() {
            // Non-blocking connect: done when writable; the outcome is in SO_ERROR.
            match e.socket.take_error() {
                Ok(None) => {}
                Ok(Some(err)) | Err(err) => {
                    let detail = format!("connecting to {}: {err}", e.peer);
                    self.fail(id, CloseReason::ConnectFailed, detail);
                    return;
                }
            }
            match e.socket.peer_addr() {
                Ok(_) => {
                    if let Err(err) = e.conn.on_connected() {
                        self.fail(id, CloseReason::of(&err), err.to_string());
                        return;
                    }
                }
                // Not connected yet (a spurious event).
                Err(err) if err.kind() == io::ErrorKind::NotConnected => return,
                Err(err) => {
                    let detail = format!("connecting to {}: {err}", e.peer);
                    self.fail(id, CloseReason::ConnectFailed, detail);
                    return;
                }
            }
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let outcome = self.read_all(id, &mut buf, now);
        self.read_buf = buf;
        match outcome {
            ReadOutcome::Open => self.write(id),
            ReadOutcome::Eof => {
                // Send what the peer's last messages produced, then close.
                self.write(id);
                self.remove(id, CloseReason::ClosedByPeer, "closed by peer".into());
            }
            ReadOutcome::Failed(reason, detail) => {
                // A TLS alert or a close frame may be queued: one attempt to send it.
                self.write(id);
                self.fail(id, reason, detail);
            }
        }
    }

    fn read_all(&mut self, id: ConnId, buf: &mut [u8], now: Instant) -> ReadOutcome {
        let Some(e) = self
            .entries
            .get_mut(id.index as usize)
            .and_then(|e| e.as_mut())
            .filter(|e| e.generation == id.generation)
        else {
            return ReadOutcome::Open;
        };
        loop {
            let n = match e.socket.read(buf) {
                Ok(0) => return ReadOutcome::Eof,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Open,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return ReadOutcome::Failed(CloseReason::Reset, format!("reading: {err}"));
                }
            };
            e.last_activity = now;
            let was_handshaking = e.conn.tls_handshaking();
            let events = &mut self.events;
            events.clear();
            let result = e.conn.receive(&buf[..n], &mut self.received, events);
            if was_handshaking && !e.conn.tls_handshaking() && !e.handshake_noted {
                e.handshake_noted = true;
                self.handshakes
                    .push(now.saturating_duration_since(e.started));
            }
            for ev in self.events.iter() {
                if let Inbound::Message(r) = ev {
                    self.messages.push((id, e.peer, r.clone()));
                }
            }
            if let Err(err) = result {
                if let Some(cause) = err.malformed() {
                    self.unframed.push(cause);
                }
                return ReadOutcome::Failed(CloseReason::of(&err), err.to_string());
            }
            if e.conn.peer_closed() {
                return ReadOutcome::Eof;
            }
            if !e.conn.output().is_empty() {
                // Handshake replies, pongs: out now so the peer is not kept waiting.
                let _ = e.socket.write(e.conn.output()).map(|w| e.conn.wrote(w));
            }
        }
    }

    fn note_error(&mut self, reason: CloseReason) {
        self.counters.failed += 1;
        *self.counters.errors.entry(reason.as_str()).or_default() += 1;
    }

    /// Close on an error: counted as failed with its reason.
    fn fail(&mut self, id: ConnId, reason: CloseReason, detail: String) {
        if self.is_alive(id) {
            self.remove(id, reason, detail);
        }
    }

    /// Close cleanly (close_notify / close frame, then FIN): our side is done.
    pub fn close(&mut self, id: ConnId) {
        if let Some(e) = self.entry(id) {
            e.conn.close();
            let _ = e.socket.write(e.conn.output());
            self.remove(id, CloseReason::Local, String::new());
        }
    }

    /// Close after the configured linger, and once what was queued on it is
    /// written: never at once, since the call that ends may have queued its last
    /// message in the same pass, and that reaches the connection in the driver's
    /// next flush, after this.
    pub fn close_later(&mut self, id: ConnId, now: Instant) {
        if self.settings.linger.is_zero() {
            self.drain_later(id, now);
        } else {
            self.closing.push_back((now + self.settings.linger, id));
        }
    }

    /// Connections waiting for their linger to end or their output to go.
    pub fn closing(&self) -> usize {
        self.closing.len() + self.draining.len()
    }

    /// Close every connection (end of run).
    pub fn close_all(&mut self) {
        for index in 0..self.entries.len() {
            if let Some(e) = &self.entries[index] {
                let id = ConnId {
                    index: index as u32,
                    generation: e.generation,
                };
                self.close(id);
            }
        }
    }

    fn remove(&mut self, id: ConnId, reason: CloseReason, detail: String) {
        let Some(slot) = self.entries.get_mut(id.index as usize) else {
            return;
        };
        let Some(e) = slot.take_if(|e| e.generation == id.generation) else {
            return;
        };
        let _ = self.registrar.deregister(e.socket.as_raw_fd());
        let _ = e.socket.shutdown(Shutdown::Both);
        if self.by_peer.get(&e.peer) == Some(&id) {
            self.by_peer.remove(&e.peer);
        }
        self.free.push(id.index);
        self.counters.active = self.counters.active.saturating_sub(1);
        match reason {
            CloseReason::Local => {}
            CloseReason::ClosedByPeer => self.counters.closed_by_peer += 1,
            r => self.note_error(r),
        }
        self.closed.push(Closed {
            id,
            owner: e.owner,
            reason,
            detail,
        });
    }
}

/// A connection to close once its output is written.
struct Drain {
    id: ConnId,
    /// Closed by then whatever it still holds.
    deadline: Instant,
    /// A `flush` ran since it was queued: whatever its call queued last (in the
    /// driver's outbox when the call ended) has reached its output.
    handed: bool,
}

enum ReadOutcome {
    Open,
    Eof,
    Failed(CloseReason, String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::connection::test_settings as settings;
    use crate::transport::poller::Poller;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n";

    /// One table with its own poller (tokens are per driver).
    struct Side {
        poller: Poller,
        table: Connections,
    }

    fn side(listener: Option<std::net::TcpListener>) -> Side {
        let poller = Poller::new(64).unwrap();
        let table = Connections::new(
            TransportKind::Tcp,
            settings(),
            poller.registrar().unwrap(),
            listener,
            None,
        )
        .unwrap();
        Side { poller, table }
    }

    /// Drive the sides' events until `done` or 2 s.
    fn pump(sides: &mut [&mut Side], mut done: impl FnMut(&[&mut Side]) -> bool) {
        let end = Instant::now() + Duration::from_secs(2);
        while !done(sides) {
            assert!(Instant::now() < end, "timed out");
            std::thread::sleep(Duration::from_millis(1));
            for s in sides.iter_mut() {
                s.poller.wait(Some(Duration::ZERO)).unwrap();
                let tokens: Vec<u64> = s.poller.ready().collect();
                let now = Instant::now();
                for t in tokens {
                    s.table.on_ready(t, now);
                }
                s.table.poll_pending(now);
                s.table.flush();
            }
        }
    }

    #[test]
    fn tcp_connect_send_receive_and_peer_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = side(Some(listener));
        let mut client = side(None);
        let now = Instant::now();
        let id = client
            .table
            .open(addr, "127.0.0.1", Some((7, 1)), now)
            .unwrap();
        assert!(client.table.send(id, OPTIONS, now));
        client.table.flush();
        pump(&mut [&mut server, &mut client], |s| {
            !s[0].table.messages.is_empty()
        });
        let (sid, peer, range) = server.table.messages[0].clone();
        assert_eq!(&server.table.received[range], OPTIONS);
        assert_eq!(server.table.counters.accepted, 1);
        assert_eq!(server.table.find(peer), Some(sid));
        // The answer goes back on the same connection.
        assert!(server.table.send(sid, OPTIONS, Instant::now()));
        server.table.flush();
        pump(&mut [&mut server, &mut client], |s| {
            !s[1].table.messages.is_empty()
        });
        // The client closes: the server sees its peer go.
        client.table.close(id);
        assert_eq!(client.table.closed[0].owner, Some((7, 1)));
        pump(&mut [&mut server, &mut client], |s| {
            !s[0].table.closed.is_empty()
        });
        assert_eq!(server.table.closed[0].reason, CloseReason::ClosedByPeer);
        assert_eq!(server.table.counters.closed_by_peer, 1);
        assert_eq!(server.table.active(), 0);
    }

    /// A call that ends in the pass it queued its last message closes its
    /// connection only after that message was handed over and written, even when
    /// the connect is still under way.
    #[test]
    fn close_later_waits_for_the_last_message() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = side(Some(listener));
        let mut client = side(None);
        let now = Instant::now();
        let id = client
            .table
            .open(addr, "127.0.0.1", Some((7, 1)), now)
            .unwrap();
        // The call ends (close_later), then the driver hands over what it queued.
        client.table.close_later(id, now);
        client.table.poll_pending(now);
        assert!(client.table.is_alive(id), "closed before its last message");
        assert_eq!(client.table.closing(), 1);
        assert!(client.table.send(id, OPTIONS, now));
        client.table.flush();
        pump(&mut [&mut server, &mut client], |s| {
            !s[0].table.messages.is_empty() && s[1].table.closing() == 0
        });
        let (_, _, range) = server.table.messages[0].clone();
        assert_eq!(&server.table.received[range], OPTIONS);
        assert!(!client.table.is_alive(id));
        assert_eq!(client.table.closed[0].reason, CloseReason::Local);
    }

    #[test]
    fn refused_connect_is_counted() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut client = side(None);
        let to = SocketAddr::from(([127, 0, 0, 1], port));
        match client.table.open(to, "127.0.0.1", None, Instant::now()) {
            Err((reason, _)) => assert_eq!(reason, CloseReason::ConnectFailed),
            Ok(_) => pump(&mut [&mut client], |s| !s[0].table.closed.is_empty()),
        }
        assert_eq!(client.table.counters.failed, 1);
    }

    #[test]
    fn garbage_closes_only_that_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = side(Some(listener));
        let mut good = std::net::TcpStream::connect(addr).unwrap();
        let mut bad = std::net::TcpStream::connect(addr).unwrap();
        bad.write_all(&[0u8, 0xff, 0x13, 0x37, b'\n', 7, 7, 7])
            .unwrap();
        good.write_all(OPTIONS).unwrap();
        pump(&mut [&mut server], |s| {
            !s[0].table.closed.is_empty() && !s[0].table.messages.is_empty()
        });
        assert_eq!(server.table.closed.len(), 1);
        assert_eq!(server.table.closed[0].reason, CloseReason::Garbage);
        assert_eq!(server.table.counters.errors.get("garbage"), Some(&1));
        assert_eq!(server.table.active(), 1);
    }
}

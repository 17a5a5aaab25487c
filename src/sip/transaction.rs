//! RFC 3261 §17 transactions over unreliable (UDP) and reliable transports, as
//! sans-IO state machines: feed responses/requests/timer expiries with `now`,
//! read back what to (re)send and the next deadline.
//! STUB: signatures are the contract.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// T1/T2/T4 (RFC 3261 §17.1.1.1, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// What the owner must do after a response reached a client transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseAction {
    /// New response: pass it to the scenario. `need_ack`: a non-2xx final to an
    /// INVITE — build the ACK (`build::non2xx_ack`), hand it to `set_ack`, send it.
    Deliver { need_ack: bool },
    /// Same provisional code again: absorb (count as duplicate).
    DuplicateProvisional,
    /// Provisional after a final response (reordering through proxies): absorb.
    LateProvisional,
    /// Final response retransmitted: absorb; `resend_ack` → resend `ack()` bytes.
    RetransmittedFinal { resend_ack: bool },
    /// 2xx to INVITE again (RFC 6026 Accepted state): absorb, the dialog re-sends its ACK.
    Retransmitted2xx,
}

/// What the owner must do when a transaction deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// Nothing due yet.
    None,
    /// Resend the stored message (`request()` for clients, `last_response()` for servers).
    Retransmit,
    /// Timer B/F (client) or H / 2xx-without-ACK (server) fired: the transaction failed.
    Timeout,
    /// Quietly ended (Timer D/K/I/J/M): drop it.
    Terminated,
}

#[derive(Debug)]
pub struct ClientTransaction {
    _private: (),
}

impl ClientTransaction {
    /// Create after the caller sent `request` for the first time. `method` is the
    /// CSeq method; INVITE selects the INVITE state machine.
    pub fn new(
        method: &str,
        branch: &str,
        request: Vec<u8>,
        dest: SocketAddr,
        reliable: bool,
        now: Instant,
        timers: Timers,
    ) -> Self {
        let _ = (method, branch, request, dest, reliable, now, timers);
        todo!()
    }
    /// Response matching rule (§17.1.3): same top-Via branch and same CSeq method.
    pub fn matches(&self, branch: &str, cseq_method: &str) -> bool {
        let _ = (branch, cseq_method);
        todo!()
    }
    pub fn on_response(&mut self, code: u16, now: Instant) -> ResponseAction {
        let _ = (code, now);
        todo!()
    }
    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        let _ = now;
        todo!()
    }
    pub fn deadline(&self) -> Option<Instant> {
        todo!()
    }
    pub fn set_ack(&mut self, ack: Vec<u8>) {
        let _ = ack;
        todo!()
    }
    pub fn ack(&self) -> Option<&[u8]> {
        todo!()
    }
    pub fn request(&self) -> &[u8] {
        todo!()
    }
    pub fn dest(&self) -> SocketAddr {
        todo!()
    }
    pub fn branch(&self) -> &str {
        todo!()
    }
    pub fn method(&self) -> &str {
        todo!()
    }
    /// Has a final response arrived?
    pub fn is_completed(&self) -> bool {
        todo!()
    }
    pub fn is_terminated(&self) -> bool {
        todo!()
    }
}

#[derive(Debug)]
pub struct ServerTransaction {
    _private: (),
}

/// What the owner must do after a request matched an existing server transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestAction {
    /// Retransmitted request: absorb; `resend` → send `last_response()` again.
    Retransmission { resend: bool },
    /// ACK for a non-2xx final response (Completed → Confirmed): absorb.
    AckAbsorbed,
}

impl ServerTransaction {
    /// Create when a new request arrives. `sent_by` is the top Via sent-by ("host:port"
    /// as written); `dest` is where responses go.
    pub fn new(
        method: &str,
        branch: &str,
        sent_by: &str,
        dest: SocketAddr,
        reliable: bool,
        now: Instant,
        timers: Timers,
    ) -> Self {
        let _ = (method, branch, sent_by, dest, reliable, now, timers);
        todo!()
    }
    /// Request matching rule (§17.2.3): branch + sent-by + method, where ACK matches
    /// the INVITE transaction.
    pub fn matches(&self, branch: &str, sent_by: &str, method: &str) -> bool {
        let _ = (branch, sent_by, method);
        todo!()
    }
    /// A request that matched this transaction arrived again (or an ACK).
    pub fn on_request(&mut self, method: &str, now: Instant) -> RequestAction {
        let _ = (method, now);
        todo!()
    }
    /// The caller sent `response` (status `code`). A 2xx to INVITE is retransmitted
    /// (T1 doubling to T2) until `on_2xx_ack` or 64·T1 (then `Timeout`); a non-2xx
    /// final to INVITE is retransmitted (Timer G) until ACK or Timer H.
    pub fn on_send_response(&mut self, code: u16, response: Vec<u8>, now: Instant) {
        let _ = (code, response, now);
        todo!()
    }
    /// The dialog's ACK for our 2xx arrived: stop retransmitting.
    pub fn on_2xx_ack(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }
    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        let _ = now;
        todo!()
    }
    pub fn deadline(&self) -> Option<Instant> {
        todo!()
    }
    pub fn last_response(&self) -> Option<&[u8]> {
        todo!()
    }
    pub fn dest(&self) -> SocketAddr {
        todo!()
    }
    pub fn branch(&self) -> &str {
        todo!()
    }
    pub fn method(&self) -> &str {
        todo!()
    }
    /// Has a final response been sent?
    pub fn is_completed(&self) -> bool {
        todo!()
    }
    pub fn is_terminated(&self) -> bool {
        todo!()
    }
}

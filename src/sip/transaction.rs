//! RFC 3261 §17 transactions over unreliable (UDP) and reliable transports, as
//! sans-IO state machines: feed responses/requests/timer expiries with `now`,
//! read back what to (re)send and the next deadline.
//!
//! Each machine keeps at most two timers: a retransmission timer (A, E, G or
//! the UAS 2xx retransmission) and an end timer (B, D, F, H, I, J, K, L, M).
//! What the end timer means (failure or quiet end) follows from the state it
//! fires in, so one `Option<Instant>` is enough for all of them.
//!
//! A load run may hold thousands of these at once, so they carry a single
//! byte buffer, boxed strings and a handful of scalars.

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

impl Timers {
    /// 64·T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Timer D on unreliable transports. RFC 3261 gives it as "> 32 s" rather than
/// a multiple of T1: it must outlast the server's Timer G/H retransmissions of
/// the final response at default timers, whatever the local T1 is.
const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

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

/// Timer arithmetic that cannot panic: an absurd timer value that would
/// overflow `Instant` simply never fires.
fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

fn due(at: Option<Instant>, now: Instant) -> bool {
    at.is_some_and(|at| now >= at)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

// Methods are case-sensitive per RFC 3261 §7.1, but peers that get the case
// wrong still mean the same transaction; being lenient costs nothing here.
fn is_method(method: &str, name: &str) -> bool {
    method.eq_ignore_ascii_case(name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    /// INVITE, before any response.
    Calling,
    /// Non-INVITE, before any response.
    Trying,
    Proceeding,
    /// Non-2xx final (INVITE) or any final (non-INVITE) received.
    Completed,
    /// 2xx to INVITE received (RFC 6026).
    Accepted,
    Terminated,
}

/// Which final response, if any, ended the exchange. Kept apart from the
/// state because after termination we still need it to classify stragglers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Pending,
    Success,
    Failure,
    TimedOut,
}

#[derive(Debug)]
pub struct ClientTransaction {
    /// The request, followed by the ACK once `set_ack` was called: one
    /// allocation instead of two per INVITE.
    buf: Vec<u8>,
    request_len: usize,
    branch: Box<str>,
    method: Box<str>,
    dest: SocketAddr,
    timers: Timers,
    retransmit_at: Option<Instant>,
    interval: Duration,
    end_at: Option<Instant>,
    /// When the exchange this request belongs to began: its first transmission,
    /// or that of the earlier request it re-sends (`continues`). Kept so a caller
    /// can time a digest retry from the original request without state of its own.
    origin: Instant,
    /// Bit per provisional code 100..=199, to tell a new provisional from a
    /// duplicate even when codes interleave (180, 183, 180).
    provisionals_seen: [u64; 2],
    state: ClientState,
    outcome: Outcome,
    invite: bool,
    reliable: bool,
    has_ack: bool,
    /// `continues` was called: this request re-sends an earlier one.
    continued: bool,
}

fn provisional_bit(code: u16) -> (usize, u64) {
    // Codes below 100 are malformed; folding them onto 100 keeps us panic-free.
    let idx = usize::from(code.saturating_sub(100)).min(127);
    (idx / 64, 1u64 << (idx % 64))
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
        let invite = is_method(method, "INVITE");
        let (retransmit_at, interval) = if reliable {
            (None, Duration::ZERO)
        } else {
            (after(now, timers.t1), timers.t1)
        };
        ClientTransaction {
            request_len: request.len(),
            buf: request,
            branch: branch.into(),
            method: method.into(),
            dest,
            timers,
            retransmit_at,
            interval,
            end_at: after(now, timers.t1x64()),
            origin: now,
            provisionals_seen: [0; 2],
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            outcome: Outcome::Pending,
            invite,
            reliable,
            has_ack: false,
            continued: false,
        }
    }

    /// This transaction re-sends the request of an earlier one that began at
    /// `origin` (e.g. with digest credentials after a 401/407): `origin()` then
    /// says when the whole exchange began. Timers are unaffected.
    pub fn continues(&mut self, origin: Instant) {
        self.origin = origin;
        self.continued = true;
    }

    /// When the exchange began: the first transmission of this request, or of
    /// the one it continues.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Does this transaction re-send an earlier transaction's request?
    pub fn is_continuation(&self) -> bool {
        self.continued
    }

    /// Response matching rule (§17.1.3): same top-Via branch and same CSeq method.
    pub fn matches(&self, branch: &str, cseq_method: &str) -> bool {
        *self.branch == *branch && is_method(&self.method, cseq_method)
    }

    pub fn on_response(&mut self, code: u16, now: Instant) -> ResponseAction {
        if code < 200 {
            return self.on_provisional(code);
        }
        let success = code < 300;
        match self.outcome {
            Outcome::Pending => {
                self.retransmit_at = None;
                if self.invite && success {
                    // RFC 6026 Timer M: stay around to absorb 2xx retransmissions
                    // (the dialog ACKs them) instead of handing them to the core as new.
                    self.state = ClientState::Accepted;
                    self.outcome = Outcome::Success;
                    self.end_at = after(now, self.timers.t1x64());
                    return ResponseAction::Deliver { need_ack: false };
                }
                self.state = ClientState::Completed;
                self.outcome = if success {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                // Timers D/K only exist to absorb retransmitted finals, which a
                // reliable transport never produces.
                let linger = match (self.reliable, self.invite) {
                    (true, _) => Duration::ZERO,
                    (false, true) => TIMER_D_UNRELIABLE,
                    (false, false) => self.timers.t4,
                };
                self.end_at = after(now, linger);
                ResponseAction::Deliver {
                    need_ack: self.invite,
                }
            }
            Outcome::Success if self.invite && success => ResponseAction::Retransmitted2xx,
            Outcome::Failure if !success => ResponseAction::RetransmittedFinal {
                resend_ack: self.invite && self.has_ack,
            },
            // A final of the other class than the one delivered, a second final
            // to a non-INVITE, or anything after Timer B/F already failed the
            // transaction: nothing sensible to do but swallow it.
            _ => ResponseAction::RetransmittedFinal { resend_ack: false },
        }
    }

    fn on_provisional(&mut self, code: u16) -> ResponseAction {
        if self.outcome != Outcome::Pending {
            return ResponseAction::LateProvisional;
        }
        match self.state {
            ClientState::Calling => {
                // §17.1.1.2: a provisional means the server has the INVITE, so
                // stop retransmitting it; Timer B no longer applies either (the
                // final may legitimately take minutes, e.g. ringing).
                self.state = ClientState::Proceeding;
                self.retransmit_at = None;
                self.end_at = None;
            }
            // Timer E keeps running (at T2 from its next expiry) and Timer F
            // still bounds the whole exchange.
            ClientState::Trying => self.state = ClientState::Proceeding,
            _ => {}
        }
        let (word, bit) = provisional_bit(code);
        if self.provisionals_seen[word] & bit != 0 {
            ResponseAction::DuplicateProvisional
        } else {
            self.provisionals_seen[word] |= bit;
            ResponseAction::Deliver { need_ack: false }
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if self.state == ClientState::Terminated {
            return TimerAction::None;
        }
        // The end timer wins a tie: a retransmission at the moment the
        // transaction gives up would be wasted.
        if due(self.end_at, now) {
            let action = match self.state {
                ClientState::Calling | ClientState::Trying | ClientState::Proceeding => {
                    self.outcome = Outcome::TimedOut;
                    TimerAction::Timeout
                }
                _ => TimerAction::Terminated,
            };
            self.state = ClientState::Terminated;
            self.end_at = None;
            self.retransmit_at = None;
            return action;
        }
        if due(self.retransmit_at, now) {
            self.interval = if self.invite {
                // Timer A is not capped by T2 (§17.1.1.2); Timer B ends it anyway.
                self.interval.saturating_mul(2)
            } else if self.state == ClientState::Proceeding {
                self.timers.t2
            } else {
                self.interval.saturating_mul(2).min(self.timers.t2)
            };
            // Rescheduled from the actual firing time, so an owner that runs
            // late does not get a burst of catch-up retransmissions.
            self.retransmit_at = after(now, self.interval);
            return TimerAction::Retransmit;
        }
        TimerAction::None
    }

    pub fn deadline(&self) -> Option<Instant> {
        if self.state == ClientState::Terminated {
            return None;
        }
        earliest(self.retransmit_at, self.end_at)
    }

    pub fn set_ack(&mut self, ack: Vec<u8>) {
        self.buf.truncate(self.request_len);
        self.buf.extend_from_slice(&ack);
        self.has_ack = true;
    }

    pub fn ack(&self) -> Option<&[u8]> {
        self.has_ack.then(|| &self.buf[self.request_len..])
    }

    pub fn request(&self) -> &[u8] {
        &self.buf[..self.request_len]
    }

    pub fn dest(&self) -> SocketAddr {
        self.dest
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// Has a final response arrived?
    pub fn is_completed(&self) -> bool {
        matches!(self.outcome, Outcome::Success | Outcome::Failure)
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    /// Non-INVITE, nothing sent yet.
    Trying,
    /// INVITE starts here (§17.2.1); non-INVITE after a provisional.
    Proceeding,
    /// Final sent (non-2xx for INVITE).
    Completed,
    /// ACK for our non-2xx received (Timer I).
    Confirmed,
    /// 2xx to INVITE sent, its ACK not yet seen.
    Accepted,
    /// 2xx ACKed; lingering to absorb INVITE retransmissions (RFC 6026 Timer L).
    AcceptedAcked,
    Terminated,
}

#[derive(Debug)]
pub struct ServerTransaction {
    last_response: Vec<u8>,
    branch: Box<str>,
    method: Box<str>,
    sent_by: Box<str>,
    dest: SocketAddr,
    timers: Timers,
    retransmit_at: Option<Instant>,
    interval: Duration,
    end_at: Option<Instant>,
    state: ServerState,
    invite: bool,
    reliable: bool,
    has_response: bool,
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
        // No timer runs until we respond: the TU owns the pace in Trying/Proceeding.
        let _ = now;
        let invite = is_method(method, "INVITE");
        ServerTransaction {
            last_response: Vec::new(),
            branch: branch.into(),
            method: method.into(),
            sent_by: sent_by.trim().into(),
            dest,
            timers,
            retransmit_at: None,
            interval: Duration::ZERO,
            end_at: None,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            invite,
            reliable,
            has_response: false,
        }
    }

    /// Request matching rule (§17.2.3): branch + sent-by + method, where ACK matches
    /// the INVITE transaction.
    pub fn matches(&self, branch: &str, sent_by: &str, method: &str) -> bool {
        let method_ok =
            is_method(&self.method, method) || (self.invite && is_method(method, "ACK"));
        method_ok && *self.branch == *branch && self.sent_by.eq_ignore_ascii_case(sent_by.trim())
    }

    /// Whether a response we are sending (top Via `branch`, CSeq `method`)
    /// answers this transaction's request. The sent-by that `matches` also
    /// compares only tells apart clients that chose the same branch; a call's
    /// own transactions never share one, so the response's Via is not parsed
    /// for it.
    pub fn answered_by(&self, branch: &str, cseq_method: &str) -> bool {
        *self.branch == *branch && is_method(&self.method, cseq_method)
    }

    /// A request that matched this transaction arrived again (or an ACK).
    pub fn on_request(&mut self, method: &str, now: Instant) -> RequestAction {
        if !is_method(method, "ACK") {
            return RequestAction::Retransmission {
                resend: self.has_response,
            };
        }
        if self.invite {
            match self.state {
                ServerState::Completed => {
                    // Timer I only absorbs ACK retransmissions, which a reliable
                    // transport does not produce.
                    self.state = ServerState::Confirmed;
                    self.retransmit_at = None;
                    let linger = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t4
                    };
                    self.end_at = after(now, linger);
                }
                // An ACK for a 2xx normally has its own branch and never matches;
                // one that does (a peer reusing the INVITE branch) still proves
                // the 2xx arrived, so retransmitting it further would be noise.
                ServerState::Accepted => self.on_2xx_ack(now),
                _ => {}
            }
        }
        RequestAction::AckAbsorbed
    }

    /// The caller sent `response` (status `code`). A 2xx to INVITE is retransmitted
    /// (T1 doubling to T2) until `on_2xx_ack` or 64·T1 (then `Timeout`); a non-2xx
    /// final to INVITE is retransmitted (Timer G) until ACK or Timer H.
    pub fn on_send_response(&mut self, code: u16, response: Vec<u8>, now: Instant) {
        match self.state {
            ServerState::Trying | ServerState::Proceeding => {}
            // RFC 6026: further 2xx from the TU in Accepted go out as sent; keep
            // the newest so our retransmissions match what the peer last saw.
            ServerState::Accepted | ServerState::AcceptedAcked if (200..300).contains(&code) => {
                self.store(response);
                return;
            }
            // The first final response is the transaction's answer; anything
            // after it is not ours to retransmit.
            _ => return,
        }
        self.store(response);
        if code < 200 {
            self.state = ServerState::Proceeding;
            return;
        }
        let t1x64 = self.timers.t1x64();
        if !self.invite {
            self.state = ServerState::Completed;
            // Timer J absorbs request retransmissions; none arrive over a
            // reliable transport.
            let linger = if self.reliable { Duration::ZERO } else { t1x64 };
            self.end_at = after(now, linger);
            return;
        }
        self.state = if code < 300 {
            ServerState::Accepted
        } else {
            ServerState::Completed
        };
        if !self.reliable {
            self.interval = self.timers.t1;
            self.retransmit_at = after(now, self.timers.t1);
        }
        // Timer H (non-2xx) and the 2xx ACK wait (§13.3.1.4) apply on every
        // transport: a lost ACK is a failure either way. For 2xx it doubles as
        // RFC 6026 Timer L once the ACK is in.
        self.end_at = after(now, t1x64);
    }

    fn store(&mut self, response: Vec<u8>) {
        self.last_response = response;
        self.has_response = true;
    }

    /// The dialog's ACK for our 2xx arrived: stop retransmitting.
    pub fn on_2xx_ack(&mut self, now: Instant) {
        let _ = now;
        if self.state == ServerState::Accepted {
            // Keep the 64·T1 end timer: it now ends the Timer L linger quietly.
            self.state = ServerState::AcceptedAcked;
            self.retransmit_at = None;
            // The ACK proves the 2xx arrived: a late INVITE retransmission is only
            // absorbed from now on, so the response bytes (often the largest thing an
            // established UAS call holds) can go.
            self.last_response = Vec::new();
            self.has_response = false;
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if self.state == ServerState::Terminated {
            return TimerAction::None;
        }
        if due(self.end_at, now) {
            let action = match self.state {
                ServerState::Completed if self.invite => TimerAction::Timeout,
                ServerState::Accepted => TimerAction::Timeout,
                _ => TimerAction::Terminated,
            };
            self.state = ServerState::Terminated;
            self.end_at = None;
            self.retransmit_at = None;
            return action;
        }
        if due(self.retransmit_at, now) {
            self.interval = self.interval.saturating_mul(2).min(self.timers.t2);
            self.retransmit_at = after(now, self.interval);
            return TimerAction::Retransmit;
        }
        TimerAction::None
    }

    pub fn deadline(&self) -> Option<Instant> {
        if self.state == ServerState::Terminated {
            return None;
        }
        earliest(self.retransmit_at, self.end_at)
    }

    pub fn last_response(&self) -> Option<&[u8]> {
        self.has_response.then_some(&self.last_response[..])
    }

    pub fn dest(&self) -> SocketAddr {
        self.dest
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request's top Via sent-by, as `matches` compares it.
    pub fn sent_by(&self) -> &str {
        &self.sent_by
    }

    /// Has a final response been sent?
    pub fn is_completed(&self) -> bool {
        !matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// An INVITE transaction whose 2xx was acknowledged: all that is left for it is
    /// absorbing late INVITE retransmissions (RFC 6026 Timer L), which the owner can
    /// do by branch alone.
    pub fn is_accepted_and_acked(&self) -> bool {
        self.state == ServerState::AcceptedAcked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "192.0.2.1:5060".parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn client(method: &str, reliable: bool, t0: Instant) -> ClientTransaction {
        ClientTransaction::new(
            method,
            "z9hG4bK-1",
            b"REQUEST".to_vec(),
            addr(),
            reliable,
            t0,
            Timers::default(),
        )
    }

    fn server(method: &str, reliable: bool, t0: Instant) -> ServerTransaction {
        ServerTransaction::new(
            method,
            "z9hG4bK-s",
            "Client.Example.com:5060",
            addr(),
            reliable,
            t0,
            Timers::default(),
        )
    }

    /// Drive a machine the way the owner does: wake at each deadline, up to
    /// `limit` after t0, and record (ms since t0, action).
    fn run(
        t0: Instant,
        limit: Duration,
        mut deadline: impl FnMut() -> Option<Instant>,
        mut fire: impl FnMut(Instant) -> TimerAction,
    ) -> Vec<(u128, TimerAction)> {
        let mut log = Vec::new();
        while let Some(d) = deadline() {
            if d > t0 + limit || log.len() > 100 {
                break;
            }
            log.push(((d - t0).as_millis(), fire(d)));
        }
        log
    }

    fn run_client(
        tx: &mut ClientTransaction,
        t0: Instant,
        limit: Duration,
    ) -> Vec<(u128, TimerAction)> {
        let tx = std::cell::RefCell::new(tx);
        run(
            t0,
            limit,
            || tx.borrow().deadline(),
            |now| tx.borrow_mut().on_timer(now),
        )
    }

    fn run_server(
        tx: &mut ServerTransaction,
        t0: Instant,
        limit: Duration,
    ) -> Vec<(u128, TimerAction)> {
        let tx = std::cell::RefCell::new(tx);
        run(
            t0,
            limit,
            || tx.borrow().deadline(),
            |now| tx.borrow_mut().on_timer(now),
        )
    }

    use TimerAction::{Retransmit as R, Terminated as T, Timeout as X};

    #[test]
    fn timer_defaults() {
        let t = Timers::default();
        assert_eq!((t.t1, t.t2, t.t4), (ms(500), ms(4000), ms(5000)));
        assert_eq!(t.t1x64(), ms(32_000));
    }

    #[test]
    fn structs_stay_small() {
        assert!(std::mem::size_of::<ClientTransaction>() <= 256);
        assert!(std::mem::size_of::<ServerTransaction>() <= 256);
    }

    #[test]
    fn origin_is_the_first_send_unless_continued() {
        let t0 = Instant::now();
        let first = client("REGISTER", false, t0);
        assert_eq!(first.origin(), t0);
        assert!(!first.is_continuation());
        let mut retry = client("REGISTER", false, t0 + ms(30));
        retry.continues(first.origin());
        assert_eq!(retry.origin(), t0);
        assert!(retry.is_continuation());
        // Its timers still run from its own first send: Timer E at +T1.
        assert_eq!(retry.deadline(), Some(t0 + ms(30) + ms(500)));
    }

    // ---- client INVITE ----

    #[test]
    fn invite_client_udp_timer_a_doubles_uncapped_then_timer_b() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(tx.deadline(), Some(t0 + ms(500)));
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(
            log,
            vec![
                (500, R),
                (1500, R),
                (3500, R),
                (7500, R),
                (15_500, R),
                (31_500, R),
                (32_000, X),
            ]
        );
        assert!(tx.is_terminated());
        assert!(!tx.is_completed());
        assert_eq!(tx.deadline(), None);
        assert_eq!(
            tx.on_timer(t0 + Duration::from_secs(200)),
            TimerAction::None
        );
    }

    #[test]
    fn on_timer_before_deadline_does_nothing() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(tx.on_timer(t0), TimerAction::None);
        assert_eq!(tx.on_timer(t0 + ms(499)), TimerAction::None);
        assert_eq!(tx.deadline(), Some(t0 + ms(500)));
        assert_eq!(tx.on_timer(t0 + ms(500)), R);
        assert_eq!(tx.on_timer(t0 + ms(501)), TimerAction::None);
        assert_eq!(tx.deadline(), Some(t0 + ms(1500)));
    }

    #[test]
    fn late_owner_reschedules_from_firing_time() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(tx.on_timer(t0 + ms(700)), R);
        assert_eq!(tx.deadline(), Some(t0 + ms(1700)));
    }

    #[test]
    fn invite_client_provisional_stops_a_and_b() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(tx.on_timer(t0 + ms(500)), R);
        assert_eq!(
            tx.on_response(100, t0 + ms(600)),
            ResponseAction::Deliver { need_ack: false }
        );
        assert_eq!(tx.deadline(), None);
        assert_eq!(tx.on_timer(t0 + Duration::from_secs(60)), TimerAction::None);
        assert!(!tx.is_terminated());
        assert!(!tx.is_completed());
    }

    #[test]
    fn invite_client_provisionals_and_2xx_absorption() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        let deliver = ResponseAction::Deliver { need_ack: false };
        assert_eq!(tx.on_response(180, t0 + ms(100)), deliver);
        assert_eq!(
            tx.on_response(180, t0 + ms(200)),
            ResponseAction::DuplicateProvisional
        );
        assert_eq!(tx.on_response(183, t0 + ms(300)), deliver);
        // Interleaved: 180 was already seen, so still a duplicate.
        assert_eq!(
            tx.on_response(180, t0 + ms(400)),
            ResponseAction::DuplicateProvisional
        );
        assert_eq!(tx.on_response(200, t0 + ms(1000)), deliver);
        assert!(tx.is_completed());
        assert!(!tx.is_terminated());
        // Timer M = 64·T1 from the 2xx.
        assert_eq!(tx.deadline(), Some(t0 + ms(33_000)));
        assert_eq!(
            tx.on_response(180, t0 + ms(1100)),
            ResponseAction::LateProvisional
        );
        assert_eq!(
            tx.on_response(200, t0 + ms(1500)),
            ResponseAction::Retransmitted2xx
        );
        // A different 2xx (e.g. another fork) is also absorbed by the transaction.
        assert_eq!(
            tx.on_response(202, t0 + ms(1600)),
            ResponseAction::Retransmitted2xx
        );
        assert_eq!(tx.on_timer(t0 + ms(32_999)), TimerAction::None);
        assert_eq!(tx.on_timer(t0 + ms(33_000)), T);
        assert!(tx.is_terminated());
        assert!(tx.is_completed());
        // Stragglers after termination are still absorbed.
        assert_eq!(
            tx.on_response(200, t0 + ms(40_000)),
            ResponseAction::Retransmitted2xx
        );
        assert_eq!(
            tx.on_response(180, t0 + ms(40_000)),
            ResponseAction::LateProvisional
        );
    }

    #[test]
    fn invite_client_2xx_stops_timer_a() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(tx.on_timer(t0 + ms(500)), R);
        tx.on_response(200, t0 + ms(800));
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(32_800, T)]);
    }

    #[test]
    fn invite_client_non2xx_ack_and_timer_d() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(
            tx.on_response(180, t0 + ms(100)),
            ResponseAction::Deliver { need_ack: false }
        );
        assert_eq!(
            tx.on_response(486, t0 + ms(2000)),
            ResponseAction::Deliver { need_ack: true }
        );
        assert!(tx.is_completed());
        // Retransmitted before the owner stored an ACK: nothing to resend.
        assert_eq!(
            tx.on_response(486, t0 + ms(2100)),
            ResponseAction::RetransmittedFinal { resend_ack: false }
        );
        assert_eq!(tx.ack(), None);
        tx.set_ack(b"ACK".to_vec());
        assert_eq!(tx.ack(), Some(&b"ACK"[..]));
        assert_eq!(tx.request(), b"REQUEST");
        assert_eq!(
            tx.on_response(486, t0 + ms(2500)),
            ResponseAction::RetransmittedFinal { resend_ack: true }
        );
        // Another non-2xx code from the same transaction is the same answer.
        assert_eq!(
            tx.on_response(500, t0 + ms(2600)),
            ResponseAction::RetransmittedFinal { resend_ack: true }
        );
        assert_eq!(
            tx.on_response(180, t0 + ms(2700)),
            ResponseAction::LateProvisional
        );
        // A 2xx after a non-2xx final: weird, absorb without ACK.
        assert_eq!(
            tx.on_response(200, t0 + ms(2800)),
            ResponseAction::RetransmittedFinal { resend_ack: false }
        );
        // Timer D = 32 s on UDP.
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(34_000, T)]);
        assert_eq!(
            tx.on_response(486, t0 + ms(40_000)),
            ResponseAction::RetransmittedFinal { resend_ack: true }
        );
    }

    #[test]
    fn set_ack_replaces_previous_ack() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        tx.on_response(404, t0);
        tx.set_ack(b"ACK-1-LONGER".to_vec());
        tx.set_ack(b"ACK-2".to_vec());
        assert_eq!(tx.ack(), Some(&b"ACK-2"[..]));
        assert_eq!(tx.request(), b"REQUEST");
    }

    #[test]
    fn invite_client_final_in_calling_stops_timer_a() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(
            tx.on_response(503, t0 + ms(200)),
            ResponseAction::Deliver { need_ack: true }
        );
        assert_eq!(tx.deadline(), Some(t0 + ms(32_200)));
    }

    #[test]
    fn invite_client_reliable_no_retransmits() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", true, t0);
        assert_eq!(tx.deadline(), Some(t0 + ms(32_000)));
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(32_000, X)]);
    }

    #[test]
    fn invite_client_reliable_timer_d_zero_and_timer_m() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", true, t0);
        assert_eq!(
            tx.on_response(486, t0 + ms(300)),
            ResponseAction::Deliver { need_ack: true }
        );
        assert_eq!(tx.deadline(), Some(t0 + ms(300)));
        assert_eq!(tx.on_timer(t0 + ms(300)), T);
        assert!(tx.is_terminated());

        let mut tx = client("INVITE", true, t0);
        assert_eq!(
            tx.on_response(200, t0 + ms(300)),
            ResponseAction::Deliver { need_ack: false }
        );
        // Timer M applies on reliable transports too: 2xx retransmissions come
        // from the remote UAS core, not its transport.
        assert_eq!(tx.deadline(), Some(t0 + ms(32_300)));
    }

    #[test]
    fn invite_client_after_timeout_absorbs() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", true, t0);
        assert_eq!(tx.on_timer(t0 + ms(32_000)), X);
        assert_eq!(
            tx.on_response(180, t0 + ms(33_000)),
            ResponseAction::LateProvisional
        );
        assert_eq!(
            tx.on_response(200, t0 + ms(33_000)),
            ResponseAction::RetransmittedFinal { resend_ack: false }
        );
        assert!(tx.is_terminated());
        assert!(!tx.is_completed());
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn client_accessors_and_matching() {
        let t0 = Instant::now();
        let tx = client("INVITE", false, t0);
        assert_eq!(tx.branch(), "z9hG4bK-1");
        assert_eq!(tx.method(), "INVITE");
        assert_eq!(tx.dest(), addr());
        assert_eq!(tx.request(), b"REQUEST");
        assert!(tx.matches("z9hG4bK-1", "INVITE"));
        assert!(tx.matches("z9hG4bK-1", "invite"));
        assert!(!tx.matches("z9hG4bK-1", "CANCEL"));
        assert!(!tx.matches("z9hg4bk-1", "INVITE"));
        assert!(!tx.matches("z9hG4bK-2", "INVITE"));
        assert!(!tx.matches("", ""));
    }

    #[test]
    fn odd_codes_do_not_panic() {
        let t0 = Instant::now();
        let mut tx = client("INVITE", false, t0);
        assert_eq!(
            tx.on_response(0, t0),
            ResponseAction::Deliver { need_ack: false }
        );
        assert_eq!(
            tx.on_response(199, t0),
            ResponseAction::Deliver { need_ack: false }
        );
        assert_eq!(
            tx.on_response(u16::MAX, t0),
            ResponseAction::Deliver { need_ack: true }
        );
    }

    // ---- client non-INVITE ----

    #[test]
    fn non_invite_client_udp_timer_e_capped_then_timer_f() {
        let t0 = Instant::now();
        let mut tx = client("OPTIONS", false, t0);
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        let mut want = vec![(500, R), (1500, R), (3500, R)];
        // Capped at T2 = 4 s from here on.
        want.extend((0..7).map(|i| (7500 + 4000 * i, R)));
        want.push((32_000, X));
        assert_eq!(log, want);
        assert!(tx.is_terminated());
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn non_invite_client_proceeding_retransmits_at_t2() {
        let t0 = Instant::now();
        let mut tx = client("BYE", false, t0);
        assert_eq!(
            tx.on_response(100, t0 + ms(200)),
            ResponseAction::Deliver { need_ack: false }
        );
        assert_eq!(
            tx.on_response(100, t0 + ms(300)),
            ResponseAction::DuplicateProvisional
        );
        // Timer E keeps its pending expiry, then runs at T2.
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        let mut want = vec![(500, R)];
        want.extend((0..7).map(|i| (4500 + 4000 * i, R)));
        want.push((32_000, X));
        assert_eq!(log, want);
    }

    #[test]
    fn non_invite_client_final_then_timer_k() {
        let t0 = Instant::now();
        let mut tx = client("BYE", false, t0);
        assert_eq!(tx.on_timer(t0 + ms(500)), R);
        assert_eq!(
            tx.on_response(200, t0 + ms(700)),
            ResponseAction::Deliver { need_ack: false }
        );
        assert!(tx.is_completed());
        assert_eq!(
            tx.on_response(200, t0 + ms(800)),
            ResponseAction::RetransmittedFinal { resend_ack: false }
        );
        assert_eq!(
            tx.on_response(481, t0 + ms(900)),
            ResponseAction::RetransmittedFinal { resend_ack: false }
        );
        assert_eq!(
            tx.on_response(100, t0 + ms(900)),
            ResponseAction::LateProvisional
        );
        // Timer K = T4, no more Timer E.
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(5700, T)]);
    }

    #[test]
    fn non_invite_client_non2xx_needs_no_ack() {
        let t0 = Instant::now();
        let mut tx = client("REGISTER", false, t0);
        assert_eq!(
            tx.on_response(401, t0),
            ResponseAction::Deliver { need_ack: false }
        );
        assert_eq!(
            tx.on_response(401, t0),
            ResponseAction::RetransmittedFinal { resend_ack: false }
        );
    }

    #[test]
    fn non_invite_client_reliable() {
        let t0 = Instant::now();
        let mut tx = client("BYE", true, t0);
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(32_000, X)]);

        let mut tx = client("BYE", true, t0);
        tx.on_response(200, t0 + ms(100));
        // Timer K = 0.
        assert_eq!(tx.deadline(), Some(t0 + ms(100)));
        assert_eq!(tx.on_timer(t0 + ms(100)), T);
    }

    #[test]
    fn custom_timers_scale() {
        let t0 = Instant::now();
        let timers = Timers {
            t1: ms(100),
            t2: ms(400),
            t4: ms(1000),
        };
        let mut tx = ClientTransaction::new("MESSAGE", "b", Vec::new(), addr(), false, t0, timers);
        let log = run_client(&mut tx, t0, Duration::from_secs(100));
        let mut want = vec![(100, R), (300, R), (700, R)];
        want.extend((0..14).map(|i| (1100 + 400 * i, R)));
        want.push((6400, X));
        assert_eq!(log, want);
    }

    // ---- server INVITE ----

    #[test]
    fn invite_server_proceeding_has_no_timer_and_resends_latest_provisional() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        assert_eq!(tx.deadline(), None);
        assert_eq!(tx.last_response(), None);
        assert_eq!(
            tx.on_request("INVITE", t0),
            RequestAction::Retransmission { resend: false }
        );
        tx.on_send_response(100, b"100".to_vec(), t0);
        tx.on_send_response(180, b"180".to_vec(), t0 + ms(10));
        assert_eq!(tx.deadline(), None);
        assert!(!tx.is_completed());
        assert_eq!(
            tx.on_request("INVITE", t0 + ms(500)),
            RequestAction::Retransmission { resend: true }
        );
        assert_eq!(tx.last_response(), Some(&b"180"[..]));
    }

    #[test]
    fn invite_server_non2xx_timer_g_then_h() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        tx.on_send_response(486, b"486".to_vec(), t0);
        assert!(tx.is_completed());
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        let mut want = vec![(500, R), (1500, R), (3500, R)];
        want.extend((0..7).map(|i| (7500 + 4000 * i, R)));
        want.push((32_000, X));
        assert_eq!(log, want);
        assert!(tx.is_terminated());
        assert_eq!(tx.last_response(), Some(&b"486"[..]));
        assert_eq!(
            tx.on_request("INVITE", t0 + ms(40_000)),
            RequestAction::Retransmission { resend: true }
        );
        assert_eq!(
            tx.on_request("ACK", t0 + ms(40_000)),
            RequestAction::AckAbsorbed
        );
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn invite_server_ack_confirms_then_timer_i() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        tx.on_send_response(180, b"180".to_vec(), t0);
        tx.on_send_response(603, b"603".to_vec(), t0 + ms(1000));
        assert_eq!(tx.on_timer(t0 + ms(1500)), R);
        assert_eq!(
            tx.on_request("INVITE", t0 + ms(1600)),
            RequestAction::Retransmission { resend: true }
        );
        assert_eq!(tx.last_response(), Some(&b"603"[..]));
        assert_eq!(
            tx.on_request("ACK", t0 + ms(2000)),
            RequestAction::AckAbsorbed
        );
        // Timer G and H are gone; Timer I = T4.
        assert_eq!(tx.deadline(), Some(t0 + ms(7000)));
        assert_eq!(
            tx.on_request("ACK", t0 + ms(2500)),
            RequestAction::AckAbsorbed
        );
        assert_eq!(tx.deadline(), Some(t0 + ms(7000)));
        assert_eq!(
            tx.on_request("INVITE", t0 + ms(3000)),
            RequestAction::Retransmission { resend: true }
        );
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(7000, T)]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_final_is_not_replaced() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        tx.on_send_response(486, b"486".to_vec(), t0);
        tx.on_send_response(180, b"180".to_vec(), t0);
        tx.on_send_response(200, b"200".to_vec(), t0);
        assert_eq!(tx.last_response(), Some(&b"486"[..]));
        assert_eq!(tx.deadline(), Some(t0 + ms(500)));
    }

    #[test]
    fn invite_server_reliable_non2xx() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", true, t0);
        tx.on_send_response(486, b"486".to_vec(), t0);
        // No Timer G; Timer H still guards the ACK.
        assert_eq!(tx.deadline(), Some(t0 + ms(32_000)));
        assert_eq!(
            tx.on_request("ACK", t0 + ms(100)),
            RequestAction::AckAbsorbed
        );
        // Timer I = 0.
        assert_eq!(tx.deadline(), Some(t0 + ms(100)));
        assert_eq!(tx.on_timer(t0 + ms(100)), T);

        let mut tx = server("INVITE", true, t0);
        tx.on_send_response(486, b"486".to_vec(), t0);
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(32_000, X)]);
    }

    #[test]
    fn invite_server_2xx_retransmits_until_ack_then_lingers() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        tx.on_send_response(180, b"180".to_vec(), t0);
        tx.on_send_response(200, b"200".to_vec(), t0 + ms(1000));
        assert!(tx.is_completed());
        let log = run_server(&mut tx, t0, ms(9000));
        assert_eq!(log, vec![(1500, R), (2500, R), (4500, R), (8500, R)]);
        tx.on_2xx_ack(t0 + ms(9000));
        // Retransmission stopped; Timer L = 64·T1 from the 2xx.
        assert_eq!(tx.deadline(), Some(t0 + ms(33_000)));
        // A late INVITE retransmission is absorbed; the 2xx is not kept after its ACK.
        assert_eq!(
            tx.on_request("INVITE", t0 + ms(10_000)),
            RequestAction::Retransmission { resend: false }
        );
        assert_eq!(tx.last_response(), None);
        // A second on_2xx_ack is harmless.
        tx.on_2xx_ack(t0 + ms(11_000));
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(33_000, T)]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_2xx_without_ack_times_out() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        tx.on_send_response(200, b"200".to_vec(), t0);
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        let mut want = vec![(500, R), (1500, R), (3500, R)];
        want.extend((0..7).map(|i| (7500 + 4000 * i, R)));
        want.push((32_000, X));
        assert_eq!(log, want);
        assert!(tx.is_terminated());
        // A late on_2xx_ack does not resurrect it.
        tx.on_2xx_ack(t0 + ms(40_000));
        assert!(tx.is_terminated());
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn invite_server_newer_2xx_replaces_retransmitted_bytes() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        tx.on_send_response(200, b"200-a".to_vec(), t0);
        tx.on_send_response(200, b"200-b".to_vec(), t0 + ms(100));
        assert_eq!(tx.last_response(), Some(&b"200-b"[..]));
        assert_eq!(tx.deadline(), Some(t0 + ms(500)));
    }

    #[test]
    fn invite_server_reliable_2xx() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", true, t0);
        tx.on_send_response(200, b"200".to_vec(), t0);
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(32_000, X)]);

        let mut tx = server("INVITE", true, t0);
        tx.on_send_response(200, b"200".to_vec(), t0);
        tx.on_2xx_ack(t0 + ms(50));
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(32_000, T)]);
    }

    #[test]
    fn invite_server_matching_ack_with_invite_branch_stops_2xx_retransmits() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        tx.on_send_response(200, b"200".to_vec(), t0);
        assert_eq!(
            tx.on_request("ACK", t0 + ms(100)),
            RequestAction::AckAbsorbed
        );
        assert_eq!(tx.deadline(), Some(t0 + ms(32_000)));
        assert_eq!(tx.on_timer(t0 + ms(32_000)), T);
    }

    #[test]
    fn ack_before_final_is_absorbed_without_state_change() {
        let t0 = Instant::now();
        let mut tx = server("INVITE", false, t0);
        assert_eq!(tx.on_request("ACK", t0), RequestAction::AckAbsorbed);
        assert!(!tx.is_completed());
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn server_matching() {
        let t0 = Instant::now();
        let tx = server("INVITE", false, t0);
        assert!(tx.matches("z9hG4bK-s", "Client.Example.com:5060", "INVITE"));
        assert!(tx.matches("z9hG4bK-s", "client.example.COM:5060", "INVITE"));
        assert!(tx.matches("z9hG4bK-s", "client.example.com:5060", "ACK"));
        assert!(!tx.matches("z9hG4bK-s", "client.example.com:5060", "CANCEL"));
        assert!(!tx.matches("z9hG4bK-s", "client.example.com:5060", "BYE"));
        assert!(!tx.matches("z9hg4bk-s", "client.example.com:5060", "INVITE"));
        assert!(!tx.matches("z9hG4bK-s", "client.example.com:5061", "INVITE"));
        assert!(!tx.matches("z9hG4bK-s", "other.example.com:5060", "INVITE"));
        assert!(!tx.matches("", "", ""));
        assert_eq!(tx.branch(), "z9hG4bK-s");
        assert_eq!(tx.method(), "INVITE");
        assert_eq!(tx.dest(), addr());

        let tx = server("OPTIONS", false, t0);
        assert!(tx.matches("z9hG4bK-s", "client.example.com:5060", "OPTIONS"));
        // ACK only ever belongs to an INVITE transaction.
        assert!(!tx.matches("z9hG4bK-s", "client.example.com:5060", "ACK"));
    }

    // ---- server non-INVITE ----

    #[test]
    fn non_invite_server_udp() {
        let t0 = Instant::now();
        let mut tx = server("BYE", false, t0);
        assert_eq!(tx.deadline(), None);
        assert_eq!(
            tx.on_request("BYE", t0),
            RequestAction::Retransmission { resend: false }
        );
        tx.on_send_response(100, b"100".to_vec(), t0 + ms(10));
        assert!(!tx.is_completed());
        assert_eq!(
            tx.on_request("BYE", t0 + ms(20)),
            RequestAction::Retransmission { resend: true }
        );
        assert_eq!(tx.last_response(), Some(&b"100"[..]));
        tx.on_send_response(200, b"200".to_vec(), t0 + ms(1000));
        assert!(tx.is_completed());
        tx.on_send_response(100, b"late".to_vec(), t0 + ms(1100));
        assert_eq!(
            tx.on_request("BYE", t0 + ms(1500)),
            RequestAction::Retransmission { resend: true }
        );
        assert_eq!(tx.last_response(), Some(&b"200"[..]));
        // No retransmission timer on the server side; Timer J = 64·T1.
        let log = run_server(&mut tx, t0, Duration::from_secs(100));
        assert_eq!(log, vec![(33_000, T)]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_server_final_straight_from_trying() {
        let t0 = Instant::now();
        let mut tx = server("OPTIONS", false, t0);
        tx.on_send_response(404, b"404".to_vec(), t0);
        assert!(tx.is_completed());
        assert_eq!(tx.deadline(), Some(t0 + ms(32_000)));
    }

    #[test]
    fn non_invite_server_reliable_timer_j_zero() {
        let t0 = Instant::now();
        let mut tx = server("BYE", true, t0);
        tx.on_send_response(200, b"200".to_vec(), t0 + ms(40));
        assert_eq!(tx.deadline(), Some(t0 + ms(40)));
        assert_eq!(tx.on_timer(t0 + ms(39)), TimerAction::None);
        assert_eq!(tx.on_timer(t0 + ms(40)), T);
        assert!(tx.is_terminated());
        assert_eq!(tx.on_timer(t0 + ms(41)), TimerAction::None);
    }

    #[test]
    fn huge_timers_do_not_panic() {
        let t0 = Instant::now();
        let timers = Timers {
            t1: Duration::MAX,
            t2: Duration::MAX,
            t4: Duration::MAX,
        };
        let mut c = ClientTransaction::new("INVITE", "b", Vec::new(), addr(), false, t0, timers);
        assert_eq!(c.deadline(), None);
        assert_eq!(c.on_timer(t0), TimerAction::None);
        c.on_response(486, t0);
        let mut s = ServerTransaction::new("INVITE", "b", "h", addr(), false, t0, timers);
        s.on_send_response(200, Vec::new(), t0);
        assert_eq!(s.on_timer(t0), TimerAction::None);
    }
}

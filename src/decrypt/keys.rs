//! Which SRTP key protects which media flow, learnt from the SIP signalling of a capture.
//!
//! Sans-IO: feed every SIP message in capture order to [`KeyTracker::on_sip`]; it follows
//! the SDP offer/answer exchanges (RFC 3264) as SIP carries them and, each time an exchange
//! completes, returns the flows whose key is new or changed.
//!
//! Where offers and answers travel (RFC 3261 §13.2.1, RFC 3262, RFC 3311, RFC 6337):
//! - offer in INVITE (initial or re-INVITE) → answer in a 18x with SDP (reliable or not)
//!   and/or the 2xx;
//! - INVITE without SDP → offer in the first 18x/2xx with SDP → answer in PRACK or ACK;
//! - offer in UPDATE or PRACK → answer in its 2xx.
//!
//! Direction (RFC 4568 §6.1): each side's `a=crypto` carries the key *it* sends with. The
//! offerer's packets go to the answer's `c=`/`m=` address, so the offerer's key is bound to
//! the answer's address, and the answerer's key to the offer's address. Media lines pair by
//! position; a port of 0 on either side is a rejected stream and binds nothing.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use crate::sdp::{self, Crypto, Media, Sdp};
use crate::sip::HeaderName;
use crate::sip::message::Message;
use crate::srtp::MasterKey;

/// Warnings kept before further ones are only counted (a broken endpoint repeats itself).
const MAX_WARNINGS: usize = 1000;

/// One direction of one media stream and the key that protects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub call_id: String,
    /// Where the protected packets go: RTP to `rtp_dst`, RTCP to `rtcp_dst` (== rtp_dst with
    /// rtcp-mux; else a=rtcp or port+1). Packets are matched by destination address.
    pub rtp_dst: SocketAddr,
    pub rtcp_dst: SocketAddr,
    /// The sender's advertised media address (may be used to also match by source).
    pub sender: Option<SocketAddr>,
    pub key: MasterKey,
    pub crypto_tag: u32,
    /// Frame index of the message that completed the offer/answer.
    pub valid_from_frame: u64,
    /// RFC 4568 session parameters of the negotiated crypto (offer's or answer's).
    pub unencrypted_srtp: bool,
    pub unencrypted_srtcp: bool,
    pub unauthenticated_srtp: bool,
    /// RTP payload type of RFC 4733 telephone-event in this flow (the receiver's
    /// `a=rtpmap`, else the sender's), to list DTMF digits.
    pub telephone_event: Option<u8>,
}

impl Binding {
    /// Same flow: a later binding for it replaces the earlier one from its frame on.
    fn same_flow(&self, other: &Binding) -> bool {
        self.rtp_dst == other.rtp_dst
            && self.sender == other.sender
            && self.key.mki == other.key.mki
    }
    /// Same keying for the same flow (the frame does not matter).
    fn same_keying(&self, other: &Binding) -> bool {
        self.same_flow(other)
            && self.rtcp_dst == other.rtcp_dst
            && self.key == other.key
            && self.crypto_tag == other.crypto_tag
            && self.unencrypted_srtp == other.unencrypted_srtp
            && self.unencrypted_srtcp == other.unencrypted_srtcp
            && self.unauthenticated_srtp == other.unauthenticated_srtp
    }
}

/// Follows offer/answer per Call-ID.
#[derive(Debug, Default)]
pub struct KeyTracker {
    calls: HashMap<String, CallState>,
    warnings: Vec<String>,
    warnings_dropped: u64,
}

#[derive(Debug, Default)]
struct CallState {
    /// The offer waiting for its answer. One slot: SIP allows one offer/answer exchange
    /// in progress per dialog (RFC 3261 §13.2.1, a second one is refused with 491).
    pending: Option<Offer>,
    /// CSeq of an INVITE sent without SDP, whose response will carry the offer.
    offerless_invite: Option<u32>,
    /// The latest binding of every flow seen, to return only what changed.
    current: Vec<Binding>,
    /// Warning texts already reported for this call.
    warned: HashSet<String>,
}

#[derive(Debug)]
struct Offer {
    sdp: Sdp,
    /// Transaction that carried the offer (CSeq number and method).
    cseq: u32,
    method: Method,
    /// Offer in a request (answer in its response) or in a response to an offerless
    /// INVITE (answer in PRACK or ACK).
    in_request: bool,
}

/// What a message body contributes to offer/answer.
enum Body {
    /// No SDP: the message neither offers nor answers.
    None,
    Sdp(Sdp),
    /// An SDP body that could not be parsed: it did offer or answer, but nothing can be
    /// learnt from it, so whatever was pending is abandoned.
    Unusable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Invite,
    Update,
    Prack,
    Ack,
    Bye,
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        // Methods are case-sensitive (RFC 3261 §7.1); upper case is all that occurs.
        Some(match s {
            "INVITE" => Method::Invite,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            _ => return None,
        })
    }
}

impl KeyTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed a SIP message (request or response) seen at `frame`. Returns the bindings that
    /// the message makes effective (answer received → both directions of every accepted
    /// stream), omitting those identical to what an earlier exchange already bound (a 200
    /// repeating the answer of a 183, a session-refresh re-INVITE).
    pub fn on_sip(&mut self, frame: u64, msg: &Message<'_>) -> Vec<Binding> {
        let Some(call_id) = msg.call_id() else {
            return Vec::new();
        };
        if let Some(method) = msg.method() {
            let Some(method) = Method::parse(method) else {
                return Vec::new();
            };
            let seq = msg.cseq().map(|c| c.seq);
            self.on_request(frame, call_id, method, seq, msg)
        } else {
            let (Some(status), Some(cseq)) = (msg.status(), msg.cseq()) else {
                return Vec::new();
            };
            let Some(method) = Method::parse(cseq.method) else {
                return Vec::new();
            };
            self.on_response(frame, call_id, status, method, cseq.seq, msg)
        }
    }

    /// Problems met so far (bad SDP, unusable keys), each once per call, with the frame
    /// where it was first seen. Drains the list.
    pub fn take_warnings(&mut self) -> Vec<String> {
        let mut out = std::mem::take(&mut self.warnings);
        if self.warnings_dropped > 0 {
            out.push(format!(
                "{} more warnings not shown",
                std::mem::take(&mut self.warnings_dropped)
            ));
        }
        out
    }

    fn on_request(
        &mut self,
        frame: u64,
        call_id: &str,
        method: Method,
        seq: Option<u32>,
        msg: &Message<'_>,
    ) -> Vec<Binding> {
        let seq = seq.unwrap_or(0);
        match method {
            Method::Bye => {
                // The dialog ends: nothing later in it can change keys, and dropping it
                // keeps memory flat on long captures.
                self.calls.remove(call_id);
                Vec::new()
            }
            Method::Invite | Method::Update => {
                let sdp = self.sdp_of(frame, call_id, msg);
                let state = self.calls.entry(call_id.to_owned()).or_default();
                match sdp {
                    Body::Sdp(sdp) => {
                        state.pending = Some(Offer {
                            sdp,
                            cseq: seq,
                            method,
                            in_request: true,
                        });
                        if method == Method::Invite {
                            state.offerless_invite = None;
                        }
                    }
                    Body::Unusable => {
                        state.pending = None;
                        if method == Method::Invite {
                            state.offerless_invite = None;
                        }
                    }
                    Body::None if method == Method::Invite => {
                        // A retransmission of the INVITE must not drop the offer its own
                        // response already carried.
                        let keep = state.pending.as_ref().is_some_and(|p| {
                            !p.in_request && p.method == Method::Invite && p.cseq == seq
                        });
                        if !keep {
                            state.pending = None;
                        }
                        state.offerless_invite = Some(seq);
                    }
                    Body::None => {}
                }
                Vec::new()
            }
            Method::Ack | Method::Prack => {
                if !self.calls.contains_key(call_id) {
                    return Vec::new();
                }
                let sdp = self.sdp_of(frame, call_id, msg);
                let Some(state) = self.calls.get_mut(call_id) else {
                    return Vec::new();
                };
                // Does this request answer an offer made in a response to our INVITE?
                let answers = state.pending.as_ref().is_some_and(|p| {
                    !p.in_request
                        && p.method == Method::Invite
                        && (method == Method::Prack || p.cseq == seq)
                });
                if method == Method::Ack {
                    state.offerless_invite = None;
                }
                match sdp {
                    Body::Sdp(answer) if answers => match state.pending.take() {
                        Some(offer) => state.complete(call_id, frame, &offer.sdp, &answer),
                        None => Vec::new(),
                    },
                    Body::Sdp(offer) if method == Method::Prack => {
                        state.pending = Some(Offer {
                            sdp: offer,
                            cseq: seq,
                            method,
                            in_request: true,
                        });
                        Vec::new()
                    }
                    Body::Unusable => {
                        state.pending = None;
                        Vec::new()
                    }
                    Body::None if method == Method::Ack && answers => {
                        // The ACK had to carry the answer; without it the offer lapses.
                        state.pending = None;
                        Vec::new()
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    fn on_response(
        &mut self,
        frame: u64,
        call_id: &str,
        status: u16,
        method: Method,
        seq: u32,
        msg: &Message<'_>,
    ) -> Vec<Binding> {
        if !matches!(method, Method::Invite | Method::Update | Method::Prack) || status < 101 {
            return Vec::new();
        }
        if !self.calls.contains_key(call_id) {
            return Vec::new();
        }
        let sdp = if status < 300 {
            self.sdp_of(frame, call_id, msg)
        } else {
            Body::None
        };
        let Some(state) = self.calls.get_mut(call_id) else {
            return Vec::new();
        };
        let answers = state
            .pending
            .as_ref()
            .is_some_and(|p| p.in_request && p.method == method && p.cseq == seq);
        if status >= 300 {
            // Offer refused (or the transaction failed): the previous session stays.
            if answers {
                state.pending = None;
            }
            if method == Method::Invite && state.offerless_invite == Some(seq) {
                state.offerless_invite = None;
                if state.pending.as_ref().is_some_and(|p| !p.in_request) {
                    state.pending = None;
                }
            }
            if method == Method::Invite && state.current.is_empty() && state.pending.is_none() {
                // An initial INVITE that failed leaves nothing to remember.
                self.calls.remove(call_id);
            }
            return Vec::new();
        }
        match sdp {
            Body::Sdp(answer) if answers => {
                // A provisional answer may be repeated (or, from broken endpoints,
                // changed) by the 2xx, so the offer stays pending until the 2xx.
                let Some(offer) = state.pending.take() else {
                    return Vec::new();
                };
                let changed = state.complete(call_id, frame, &offer.sdp, &answer);
                if status < 200 {
                    state.pending = Some(offer);
                }
                changed
            }
            Body::Sdp(offer) if method == Method::Invite && state.offerless_invite == Some(seq) => {
                // The INVITE had no SDP: this response makes the offer (a later 2xx with
                // SDP replaces an unanswered one from a 18x).
                state.pending = Some(Offer {
                    sdp: offer,
                    cseq: seq,
                    method,
                    in_request: false,
                });
                Vec::new()
            }
            Body::None if status >= 200 && answers => {
                // The answer came in a 18x (or never): the exchange is over.
                state.pending = None;
                Vec::new()
            }
            Body::Unusable if status >= 200 => {
                state.pending = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The parsed SDP of a message body, if it has one; problems become warnings.
    fn sdp_of(&mut self, frame: u64, call_id: &str, msg: &Message<'_>) -> Body {
        if msg.body.is_empty() {
            return Body::None;
        }
        let content_type = msg.header(HeaderName::ContentType).map(|h| h.value());
        let Some(bytes) = sdp::find_sdp(content_type.as_deref(), msg.body) else {
            return Body::None;
        };
        let text = String::from_utf8_lossy(bytes);
        let mut found = Vec::new();
        let parsed = match sdp::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                found.push(format!("SDP body ignored: {e}"));
                None
            }
        };
        for (i, m) in parsed.iter().flat_map(|s| s.media.iter()).enumerate() {
            for w in &m.warnings {
                found.push(format!("m-line {i}: {w}"));
            }
            for c in &m.crypto {
                for w in &c.warnings {
                    found.push(format!("m-line {i} a=crypto:{}: {w}", c.tag));
                }
            }
        }
        for w in found {
            self.warn(frame, call_id, w);
        }
        parsed.map_or(Body::Unusable, Body::Sdp)
    }

    fn warn(&mut self, frame: u64, call_id: &str, text: String) {
        let state = self.calls.entry(call_id.to_owned()).or_default();
        if !state.warned.insert(text.clone()) {
            return;
        }
        if self.warnings.len() >= MAX_WARNINGS {
            self.warnings_dropped += 1;
            return;
        }
        self.warnings
            .push(format!("frame {frame}, Call-ID {call_id}: {text}"));
    }
}

impl CallState {
    /// An offer/answer exchange completed at `frame`: record and return what changed.
    fn complete(&mut self, call_id: &str, frame: u64, offer: &Sdp, answer: &Sdp) -> Vec<Binding> {
        let mut changed = Vec::new();
        for b in exchange_bindings(call_id, frame, offer, answer) {
            match self.current.iter_mut().find(|c| c.same_flow(&b)) {
                Some(c) if c.same_keying(&b) => {}
                Some(c) => {
                    *c = b.clone();
                    changed.push(b);
                }
                None => {
                    self.current.push(b.clone());
                    changed.push(b);
                }
            }
        }
        changed
    }
}

/// Both directions of every stream the answer accepted.
fn exchange_bindings(call_id: &str, frame: u64, offer: &Sdp, answer: &Sdp) -> Vec<Binding> {
    let mut out = Vec::new();
    for (om, am) in offer.media.iter().zip(&answer.media) {
        if om.port == 0 || am.port == 0 {
            continue;
        }
        let Some((oc, ac)) = chosen_crypto(om, am) else {
            continue; // plain RTP, or no usable crypto in common
        };
        // RFC 5761: RTCP is multiplexed only when the answer accepts the offer's rtcp-mux.
        let mux = om.rtcp_mux && am.rtcp_mux;
        let ends = Ends {
            call_id,
            frame,
            mux,
        };
        ends.push(&mut out, am, om, oc, ac);
        ends.push(&mut out, om, am, ac, oc);
    }
    out
}

/// The offer's and the answer's crypto the answer agreed on. The answer echoes the tag of
/// the offered crypto it accepts (RFC 4568 §5.1.2); an answer whose tag matches nothing
/// offered falls back to the first offered crypto of the same suite.
fn chosen_crypto<'a>(om: &'a Media, am: &'a Media) -> Option<(&'a Crypto, &'a Crypto)> {
    let answered = || am.crypto.iter().filter(|c| c.suite.is_some());
    answered()
        .find_map(|ac| {
            om.crypto
                .iter()
                .find(|oc| oc.tag == ac.tag && oc.suite == ac.suite)
                .map(|oc| (oc, ac))
        })
        .or_else(|| {
            answered().find_map(|ac| {
                om.crypto
                    .iter()
                    .find(|oc| oc.suite == ac.suite)
                    .map(|oc| (oc, ac))
            })
        })
}

struct Ends<'a> {
    call_id: &'a str,
    frame: u64,
    mux: bool,
}

impl Ends<'_> {
    /// Bindings for the packets that `sender_media`'s side sends with `key_crypto` to the
    /// address advertised in `dst_media`.
    fn push(
        &self,
        out: &mut Vec<Binding>,
        dst_media: &Media,
        sender_media: &Media,
        key_crypto: &Crypto,
        other: &Crypto,
    ) {
        // An unspecified address (0.0.0.0 hold, RFC 2543 style) receives nothing.
        let Some(rtp_dst) = media_addr(dst_media) else {
            return;
        };
        let rtcp_dst = if self.mux {
            rtp_dst
        } else if let Some((port, ip)) = dst_media.rtcp {
            SocketAddr::new(ip.unwrap_or(rtp_dst.ip()), port)
        } else {
            SocketAddr::new(rtp_dst.ip(), rtp_dst.port().saturating_add(1))
        };
        for key in &key_crypto.keys {
            out.push(Binding {
                call_id: self.call_id.to_owned(),
                rtp_dst,
                rtcp_dst,
                sender: media_addr(sender_media),
                key: key.clone(),
                crypto_tag: key_crypto.tag,
                valid_from_frame: self.frame,
                unencrypted_srtp: key_crypto.unencrypted_srtp || other.unencrypted_srtp,
                unencrypted_srtcp: key_crypto.unencrypted_srtcp || other.unencrypted_srtcp,
                unauthenticated_srtp: key_crypto.unauthenticated_srtp || other.unauthenticated_srtp,
                telephone_event: telephone_event(dst_media).or(telephone_event(sender_media)),
            });
        }
    }
}

fn telephone_event(m: &Media) -> Option<u8> {
    m.rtpmap
        .iter()
        .find(|r| r.encoding.eq_ignore_ascii_case("telephone-event"))
        .map(|r| r.payload_type)
}

fn media_addr(m: &Media) -> Option<SocketAddr> {
    let ip = m.connection?;
    (!ip.is_unspecified() && m.port != 0).then(|| SocketAddr::new(ip, m.port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;
    use crate::srtp::Suite;

    // key||salt values (30 bytes each) for AES_CM_128 suites.
    const K_A: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    const K_B: &str = "QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5";
    const K_C: &str = "MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm";
    const K_D: &str = "ZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJj";

    fn key(b64: &str) -> MasterKey {
        let raw = crate::sdp::crypto::decode_base64(b64).unwrap();
        MasterKey::from_key_salt(Suite::AesCm128HmacSha1_80, &raw).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// One audio m-line at `ip:port` with AES_CM_128_HMAC_SHA1_80 keys `(tag, key)`.
    fn sdp(ip: &str, port: u16, cryptos: &[(u32, &str)], extra: &str) -> String {
        let mut s = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/SAVP 0\r\n"
        );
        for (tag, k) in cryptos {
            s += &format!("a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n");
        }
        s + extra
    }

    struct Call {
        id: &'static str,
    }

    impl Call {
        fn msg(&self, start: &str, cseq: &str, body: Option<&str>, ctype: &str) -> String {
            let body = body.unwrap_or("");
            let ct = if body.is_empty() {
                String::new()
            } else {
                format!("Content-Type: {ctype}\r\n")
            };
            format!(
                "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
                 From: <sip:a@x>;tag=a1\r\nTo: <sip:b@y>;tag=b1\r\nCall-ID: {}\r\n\
                 CSeq: {cseq}\r\n{ct}Content-Length: {}\r\n\r\n{body}",
                self.id,
                body.len()
            )
        }
        fn req(&self, method: &str, seq: u32, body: Option<&str>) -> String {
            self.msg(
                &format!("{method} sip:b@y SIP/2.0"),
                &format!("{seq} {method}"),
                body,
                "application/sdp",
            )
        }
        fn resp(&self, code: u16, seq: u32, method: &str, body: Option<&str>) -> String {
            self.msg(
                &format!("SIP/2.0 {code} X"),
                &format!("{seq} {method}"),
                body,
                "application/sdp",
            )
        }
    }

    fn feed(t: &mut KeyTracker, frame: u64, text: &str) -> Vec<Binding> {
        let m = message::parse(text.as_bytes()).expect("test message parses");
        t.on_sip(frame, &m)
    }

    const CALL: Call = Call { id: "call-1@x" };

    #[test]
    fn invite_offer_200_answer() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        assert!(feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer))).is_empty());
        assert!(feed(&mut t, 2, &CALL.resp(100, 1, "INVITE", None)).is_empty());
        assert!(feed(&mut t, 3, &CALL.resp(180, 1, "INVITE", None)).is_empty());
        let b = feed(&mut t, 4, &CALL.resp(200, 1, "INVITE", Some(&answer)));
        assert_eq!(b.len(), 2);
        // The offerer's key protects what it sends to the answer's address.
        assert_eq!(b[0].rtp_dst, addr("10.0.0.2:5000"));
        assert_eq!(b[0].rtcp_dst, addr("10.0.0.2:5001"));
        assert_eq!(b[0].sender, Some(addr("10.0.0.1:4000")));
        assert_eq!(b[0].key, key(K_A));
        assert_eq!(b[0].call_id, "call-1@x");
        assert_eq!(b[0].crypto_tag, 1);
        assert_eq!(b[0].valid_from_frame, 4);
        // The answerer's key protects what goes to the offer's address.
        assert_eq!(b[1].rtp_dst, addr("10.0.0.1:4000"));
        assert_eq!(b[1].rtcp_dst, addr("10.0.0.1:4001"));
        assert_eq!(b[1].sender, Some(addr("10.0.0.2:5000")));
        assert_eq!(b[1].key, key(K_B));
        // ACK and a retransmitted 200 change nothing.
        assert!(feed(&mut t, 5, &CALL.req("ACK", 1, None)).is_empty());
        assert!(feed(&mut t, 6, &CALL.resp(200, 1, "INVITE", Some(&answer))).is_empty());
        assert!(t.take_warnings().is_empty());
    }

    #[test]
    fn answer_picks_the_offered_tag() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A), (2, K_C)], "");
        let answer = sdp("10.0.0.2", 5000, &[(2, K_B)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        let b = feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer)));
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].crypto_tag, &b[0].key), (2, &key(K_C)));
    }

    #[test]
    fn offer_in_200_answer_in_ack() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        let answer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 7, None));
        assert!(feed(&mut t, 2, &CALL.resp(200, 7, "INVITE", Some(&offer))).is_empty());
        let b = feed(&mut t, 3, &CALL.req("ACK", 7, Some(&answer)));
        assert_eq!(b.len(), 2);
        // The callee offered: its key goes to the caller's (answer) address.
        assert_eq!(
            (b[0].rtp_dst, &b[0].key),
            (addr("10.0.0.1:4000"), &key(K_B))
        );
        assert_eq!(
            (b[1].rtp_dst, &b[1].key),
            (addr("10.0.0.2:5000"), &key(K_A))
        );
        assert_eq!(b[0].valid_from_frame, 3);
    }

    #[test]
    fn reliable_183_offer_answered_in_prack() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        let answer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, None));
        assert!(feed(&mut t, 2, &CALL.resp(183, 1, "INVITE", Some(&offer))).is_empty());
        let b = feed(&mut t, 3, &CALL.req("PRACK", 2, Some(&answer)));
        assert_eq!(b.len(), 2);
        assert!(feed(&mut t, 4, &CALL.resp(200, 2, "PRACK", None)).is_empty());
        assert!(feed(&mut t, 5, &CALL.resp(200, 1, "INVITE", None)).is_empty());
        assert!(feed(&mut t, 6, &CALL.req("ACK", 1, None)).is_empty());
    }

    #[test]
    fn early_media_183_then_same_200_no_duplicates() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        let early = feed(&mut t, 2, &CALL.resp(183, 1, "INVITE", Some(&answer)));
        assert_eq!(early.len(), 2);
        assert_eq!(early[0].valid_from_frame, 2);
        assert!(feed(&mut t, 3, &CALL.resp(183, 1, "INVITE", Some(&answer))).is_empty());
        assert!(feed(&mut t, 4, &CALL.resp(200, 1, "INVITE", Some(&answer))).is_empty());
    }

    #[test]
    fn early_media_then_200_with_other_key_rebinds_that_direction() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        let a1 = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        assert_eq!(
            feed(&mut t, 2, &CALL.resp(183, 1, "INVITE", Some(&a1))).len(),
            2
        );
        let a2 = sdp("10.0.0.2", 5000, &[(1, K_C)], "");
        let b = feed(&mut t, 3, &CALL.resp(200, 1, "INVITE", Some(&a2)));
        assert_eq!(b.len(), 1, "only the answerer's key changed");
        assert_eq!(
            (b[0].rtp_dst, &b[0].key),
            (addr("10.0.0.1:4000"), &key(K_C))
        );
    }

    #[test]
    fn reinvite_rekeying_and_port_change() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        assert_eq!(
            feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer))).len(),
            2
        );
        feed(&mut t, 3, &CALL.req("ACK", 1, None));
        // Session refresh with identical SDP: nothing new.
        feed(&mut t, 10, &CALL.req("INVITE", 2, Some(&offer)));
        assert!(feed(&mut t, 11, &CALL.resp(200, 2, "INVITE", Some(&answer))).is_empty());
        // Re-keying (the callee re-INVITEs this time, so it is the offerer).
        let offer3 = sdp("10.0.0.2", 5000, &[(1, K_C)], "");
        let answer3 = sdp("10.0.0.1", 4000, &[(1, K_D)], "");
        feed(&mut t, 20, &CALL.req("INVITE", 3, Some(&offer3)));
        let b = feed(&mut t, 21, &CALL.resp(200, 3, "INVITE", Some(&answer3)));
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].rtp_dst, &b[0].key),
            (addr("10.0.0.1:4000"), &key(K_C))
        );
        assert_eq!(
            (b[1].rtp_dst, &b[1].key),
            (addr("10.0.0.2:5000"), &key(K_D))
        );
        assert!(b.iter().all(|b| b.valid_from_frame == 21));
        // Port change with the same keys: new flows.
        let offer4 = sdp("10.0.0.2", 5002, &[(1, K_C)], "");
        feed(&mut t, 30, &CALL.req("INVITE", 4, Some(&offer4)));
        let b = feed(&mut t, 31, &CALL.resp(200, 4, "INVITE", Some(&answer3)));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].sender, Some(addr("10.0.0.2:5002")));
        assert_eq!(b[1].rtp_dst, addr("10.0.0.2:5002"));
    }

    #[test]
    fn refused_reinvite_keeps_nothing_pending() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer)));
        let offer2 = sdp("10.0.0.1", 4000, &[(1, K_C)], "");
        feed(&mut t, 3, &CALL.req("INVITE", 2, Some(&offer2)));
        assert!(feed(&mut t, 4, &CALL.resp(488, 2, "INVITE", None)).is_empty());
        // A stray 200 for the refused transaction does not complete it.
        assert!(feed(&mut t, 5, &CALL.resp(200, 2, "INVITE", Some(&answer))).is_empty());
    }

    #[test]
    fn initial_invite_refused_then_retried() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        feed(&mut t, 2, &CALL.resp(407, 1, "INVITE", None));
        assert!(t.calls.is_empty(), "a failed initial INVITE is forgotten");
        feed(&mut t, 3, &CALL.req("INVITE", 2, Some(&offer)));
        assert_eq!(
            feed(&mut t, 4, &CALL.resp(200, 2, "INVITE", Some(&answer))).len(),
            2
        );
    }

    #[test]
    fn update_offer_answer() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer)));
        let offer2 = sdp("10.0.0.1", 4000, &[(3, K_C)], "");
        let answer2 = sdp("10.0.0.2", 5000, &[(3, K_D)], "");
        assert!(feed(&mut t, 3, &CALL.req("UPDATE", 2, Some(&offer2))).is_empty());
        // A 200 of another transaction does not answer the UPDATE.
        assert!(feed(&mut t, 4, &CALL.resp(200, 1, "INVITE", Some(&answer2))).is_empty());
        let b = feed(&mut t, 5, &CALL.resp(200, 2, "UPDATE", Some(&answer2)));
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].crypto_tag, &b[0].key), (3, &key(K_C)));
        assert_eq!(b[1].key, key(K_D));
    }

    #[test]
    fn rejected_m_line_and_audio_video() {
        let mut t = KeyTracker::new();
        let video = |ip: &str, port: u16, k: &str| {
            format!(
                "m=video {port} RTP/SAVP 96\r\nc=IN IP4 {ip}\r\n\
                 a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n"
            )
        };
        let offer = sdp(
            "10.0.0.1",
            4000,
            &[(1, K_A)],
            &video("10.0.0.11", 4002, K_C),
        );
        let answer = sdp(
            "10.0.0.2",
            5000,
            &[(1, K_B)],
            &video("10.0.0.12", 5002, K_D),
        );
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        let b = feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer)));
        assert_eq!(b.len(), 4);
        assert_eq!(
            (b[2].rtp_dst, &b[2].key),
            (addr("10.0.0.12:5002"), &key(K_C))
        );
        assert_eq!(
            (b[3].rtp_dst, &b[3].key),
            (addr("10.0.0.11:4002"), &key(K_D))
        );

        // Same exchange in another call, video refused with port 0.
        let call2 = Call { id: "call-2@x" };
        let refused = sdp("10.0.0.2", 5000, &[(1, K_B)], "m=video 0 RTP/SAVP 96\r\n");
        feed(&mut t, 3, &call2.req("INVITE", 1, Some(&offer)));
        let b = feed(&mut t, 4, &call2.resp(200, 1, "INVITE", Some(&refused)));
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|b| b.call_id == "call-2@x"));
        assert!(
            b.iter()
                .all(|b| b.rtp_dst.port() == 4000 || b.rtp_dst.port() == 5000)
        );
    }

    #[test]
    fn two_interleaved_calls_are_independent() {
        let mut t = KeyTracker::new();
        let c1 = Call { id: "one" };
        let c2 = Call { id: "two" };
        let o1 = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let o2 = sdp("10.0.0.3", 6000, &[(1, K_C)], "");
        let a1 = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        let a2 = sdp("10.0.0.4", 7000, &[(1, K_D)], "");
        feed(&mut t, 1, &c1.req("INVITE", 1, Some(&o1)));
        feed(&mut t, 2, &c2.req("INVITE", 1, Some(&o2)));
        let b2 = feed(&mut t, 3, &c2.resp(200, 1, "INVITE", Some(&a2)));
        let b1 = feed(&mut t, 4, &c1.resp(200, 1, "INVITE", Some(&a1)));
        assert_eq!((b1.len(), b2.len()), (2, 2));
        assert_eq!((b1[0].call_id.as_str(), &b1[0].key), ("one", &key(K_A)));
        assert_eq!((b2[0].call_id.as_str(), &b2[0].key), ("two", &key(K_C)));
        // BYE on one call does not disturb the other.
        feed(&mut t, 5, &c1.req("BYE", 2, None));
        let o2b = sdp("10.0.0.3", 6000, &[(1, K_A)], "");
        feed(&mut t, 6, &c2.req("INVITE", 2, Some(&o2b)));
        assert_eq!(
            feed(&mut t, 7, &c2.resp(200, 2, "INVITE", Some(&a2))).len(),
            1
        );
        assert!(!t.calls.contains_key("one"));
    }

    #[test]
    fn rtcp_placement() {
        let mut t = KeyTracker::new();
        // Offer muxes and names an RTCP address; the answer declines mux.
        let offer = sdp(
            "10.0.0.1",
            4000,
            &[(1, K_A)],
            "a=rtcp-mux\r\na=rtcp:4100 IN IP4 10.0.0.9\r\n",
        );
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        let b = feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer)));
        assert_eq!(b[0].rtcp_dst, addr("10.0.0.2:5001"));
        assert_eq!(b[1].rtcp_dst, addr("10.0.0.9:4100"));
        // Both mux now.
        let answer2 = sdp("10.0.0.2", 5000, &[(1, K_B)], "a=rtcp-mux\r\n");
        feed(&mut t, 3, &CALL.req("INVITE", 2, Some(&offer)));
        let b = feed(&mut t, 4, &CALL.resp(200, 2, "INVITE", Some(&answer2)));
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|b| b.rtcp_dst == b.rtp_dst));
    }

    #[test]
    fn ipv6_and_multipart_body() {
        let mut t = KeyTracker::new();
        let v6 = |ip: &str, port: u16, k: &str| {
            format!(
                "v=0\r\nc=IN IP6 {ip}\r\nm=audio {port} RTP/SAVP 0\r\n\
                 a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n"
            )
        };
        let offer = v6("2001:db8::1", 4000, K_A);
        let body = format!(
            "--b1\r\nContent-Type: application/isup\r\n\r\nxx\r\n--b1\r\n\
             Content-Type: application/sdp\r\n\r\n{offer}\r\n--b1--\r\n"
        );
        let invite = CALL.msg(
            "INVITE sip:b@y SIP/2.0",
            "1 INVITE",
            Some(&body),
            "multipart/mixed;boundary=b1",
        );
        feed(&mut t, 1, &invite);
        let answer = v6("2001:db8::2", 5000, K_B);
        let ok = CALL.msg(
            "SIP/2.0 200 OK",
            "1 INVITE",
            Some(&answer),
            "application/sdp; charset=UTF-8",
        );
        let b = feed(&mut t, 2, &ok);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].rtp_dst, addr("[2001:db8::2]:5000"));
        assert_eq!(b[1].rtp_dst, addr("[2001:db8::1]:4000"));
        // Compact header form (c:, i:) via the message layer.
        let mut t = KeyTracker::new();
        let compact = |start: &str, cseq: &str, body: &str| {
            format!(
                "{start}\r\nv: SIP/2.0/UDP h;branch=z9hG4bK2\r\ni: cpt\r\nCSeq: {cseq}\r\n\
                 c: application/sdp\r\nl: {}\r\n\r\n{body}",
                body.len()
            )
        };
        feed(
            &mut t,
            1,
            &compact("INVITE sip:b@y SIP/2.0", "1 INVITE", &offer),
        );
        assert_eq!(
            feed(&mut t, 2, &compact("SIP/2.0 200 OK", "1 INVITE", &answer)).len(),
            2
        );
    }

    #[test]
    fn forked_early_answers_each_bind() {
        let mut t = KeyTracker::new();
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let fork_a = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        let fork_b = sdp("10.0.0.3", 5000, &[(1, K_C)], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        assert_eq!(
            feed(&mut t, 2, &CALL.resp(183, 1, "INVITE", Some(&fork_a))).len(),
            2
        );
        assert_eq!(
            feed(&mut t, 3, &CALL.resp(183, 1, "INVITE", Some(&fork_b))).len(),
            2
        );
        // Fork A's 200 repeats its early answer: both of its flows are known already.
        assert!(feed(&mut t, 4, &CALL.resp(200, 1, "INVITE", Some(&fork_a))).is_empty());
    }

    #[test]
    fn unusable_keys_and_plain_rtp() {
        let mut t = KeyTracker::new();
        // Answer's key is too short: only the offerer's direction binds, with a warning.
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        let answer = sdp("10.0.0.2", 5000, &[(1, "AAAA")], "");
        feed(&mut t, 1, &CALL.req("INVITE", 1, Some(&offer)));
        let b = feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer)));
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].rtp_dst, addr("10.0.0.2:5000"));
        let w = t.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("frame 2") && w[0].contains("call-1@x"),
            "{}",
            w[0]
        );
        assert!(t.take_warnings().is_empty());
        // Plain RTP answer (no crypto): nothing to bind.
        let c2 = Call { id: "plain" };
        let plain = sdp("10.0.0.2", 5000, &[], "");
        feed(&mut t, 3, &c2.req("INVITE", 1, Some(&offer)));
        assert!(feed(&mut t, 4, &c2.resp(200, 1, "INVITE", Some(&plain))).is_empty());
        // Hold with 0.0.0.0: no binding toward the unspecified address.
        let c3 = Call { id: "hold" };
        let held = sdp("0.0.0.0", 5000, &[(1, K_B)], "");
        feed(&mut t, 5, &c3.req("INVITE", 1, Some(&offer)));
        let b = feed(&mut t, 6, &c3.resp(200, 1, "INVITE", Some(&held)));
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].rtp_dst, addr("10.0.0.1:4000"));
        assert_eq!(b[0].sender, None);
    }

    #[test]
    fn garbage_bodies() {
        let mut t = KeyTracker::new();
        feed(
            &mut t,
            1,
            &CALL.req("INVITE", 1, Some("not sdp at all\r\n\x01\x02")),
        );
        let answer = sdp("10.0.0.2", 5000, &[(1, K_B)], "");
        assert!(feed(&mut t, 2, &CALL.resp(200, 1, "INVITE", Some(&answer))).is_empty());
        assert_eq!(t.take_warnings().len(), 1);
        // A response to an INVITE never seen, and messages without Call-ID or CSeq.
        let other = Call { id: "unseen" };
        assert!(feed(&mut t, 3, &other.resp(200, 1, "INVITE", Some(&answer))).is_empty());
        assert!(!t.calls.contains_key("unseen"));
        // An unusable answer abandons the offer: nothing binds, even if a good 2xx follows.
        let c4 = Call { id: "bad-answer" };
        let offer = sdp("10.0.0.1", 4000, &[(1, K_A)], "");
        feed(&mut t, 6, &c4.req("INVITE", 1, Some(&offer)));
        assert!(feed(&mut t, 7, &c4.resp(200, 1, "INVITE", Some("junk"))).is_empty());
        assert!(feed(&mut t, 8, &c4.resp(200, 1, "INVITE", Some(&answer))).is_empty());
        let no_cseq = "SIP/2.0 200 OK\r\nCall-ID: z\r\nContent-Length: 0\r\n\r\n";
        assert!(feed(&mut t, 4, no_cseq).is_empty());
        let no_callid = "INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        assert!(feed(&mut t, 5, no_callid).is_empty());
    }

    #[test]
    fn random_messages_never_panic() {
        let mut s: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let pieces = [
            "INVITE sip:b SIP/2.0\r\n",
            "SIP/2.0 200 OK\r\n",
            "SIP/2.0 183 P\r\n",
            "ACK sip:b SIP/2.0\r\n",
            "PRACK sip:b SIP/2.0\r\n",
            "Call-ID: r\r\n",
            "CSeq: 1 INVITE\r\n",
            "CSeq: 1 PRACK\r\n",
            "Content-Type: application/sdp\r\n",
            "Content-Type: multipart/mixed;boundary=x\r\n",
            "\r\n",
            "v=0\r\n",
            "c=IN IP4 10.0.0.1\r\n",
            "c=IN IP6 ::1\r\n",
            "m=audio 4000 RTP/SAVP 0\r\n",
            "m=audio 0 RTP/SAVP 0\r\n",
            "a=rtcp-mux\r\n",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:9999\r\n",
            "--x\r\n",
            "\u{1}\u{ff}garbage",
        ];
        let mut t = KeyTracker::new();
        for frame in 0..3000u64 {
            let mut text = String::new();
            for _ in 0..(next() % 14) {
                text += pieces[(next() % pieces.len() as u64) as usize];
            }
            if let Ok(m) = message::parse(text.as_bytes()) {
                let _ = t.on_sip(frame, &m);
            }
            let mut bytes: Vec<u8> = text.into_bytes();
            if !bytes.is_empty() {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            if let Ok(m) = message::parse(&bytes) {
                let _ = t.on_sip(frame, &m);
            }
        }
        let _ = t.take_warnings();
    }
}

//! One call's media: the SDP offer/answer state and the RTP stream it configures.
//! The scenario talks to this through a [`super::control::MediaControl`]; the driver
//! owns the sockets it sends through.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::sdp::Direction;
use crate::sdp::negotiate::{self, LocalMedia, NegotiateError, Negotiated, RemoteMedia};
use crate::sdp::sdes::{self, LocalSrtp, SdesKey, SrtpPolicy};
use crate::srtp::{MasterKey, SrtpError};

use super::config::{AudioCodec, MediaConfig, SrtpConfig};
use super::recorder::Recorder;
use super::stream::{MediaStream, StreamSetup};

#[derive(Debug, Error)]
pub enum MediaError {
    #[error("{0}")]
    Negotiate(#[from] NegotiateError),
    #[error("no media ports: {0}")]
    Ports(String),
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    #[error("{0}")]
    Other(String),
}

/// Where the offer/answer exchange stands (RFC 3264: one exchange at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exchange {
    Idle,
    /// Our offer is out: the peer's next SDP is the answer.
    OfferSent,
    /// The peer's offer came: our next SDP is the answer.
    OfferReceived,
}

pub struct MediaSession {
    local: LocalMedia,
    exchange: Exchange,
    /// The SDP being sent is (or the last one sent was) an answer: sent again in a
    /// response (183 then 200), it repeats that answer.
    answering: bool,
    sent_any: bool,
    /// Hash of the peer's last SDP as it came: the same text again (an answer in a
    /// 183 and its 200) is no new exchange. A hash, not the text: per call, it adds up.
    last_remote: Option<u64>,
    remote: Option<RemoteMedia>,
    agreed: Option<Negotiated>,
    /// The peer's offer, when we answer it: the answer repeats its other streams
    /// as rejected, in their places (RFC 3264 §6).
    offer: Option<Box<str>>,
    pub stream: MediaStream,
    /// Digits that arrived as SIP INFO (`application/dtmf-relay`).
    pub info_digits: String,
    /// The peer's `a=crypto` lines as it wrote them (for `{{ remote_crypto }}`).
    remote_crypto: String,
}

impl MediaSession {
    /// `rtp`/`rtcp`: our bound addresses (rtcp None: rtcp-mux only). `keys` draws the
    /// SRTP master keys: an OS-seeded CSPRNG in a run, a seeded one in tests.
    pub fn new(
        cfg: &MediaConfig,
        ip_for_sdp: std::net::IpAddr,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
        session_id: u64,
        stream: MediaStream,
        keys: &mut dyn rand::RngCore,
    ) -> MediaSession {
        let local = LocalMedia {
            ip: ip_for_sdp,
            rtp_port: rtp.port(),
            rtcp_port: rtcp.map(|a| a.port()),
            rtcp_mux: cfg.rtcp_mux || rtcp.is_none(),
            codecs: cfg.codecs.iter().map(|c| c.sdp_codec()).collect(),
            telephone_event: cfg.telephone_event,
            ptime: cfg.ptime,
            direction: cfg.direction,
            ssrc: Some(stream.ssrc()),
            srtp: cfg.srtp.as_ref().map(|c| local_srtp(c, keys)),
            session_id,
            session_version: 1,
        };
        MediaSession {
            local,
            exchange: Exchange::Idle,
            answering: false,
            sent_any: false,
            last_remote: None,
            remote: None,
            agreed: None,
            offer: None,
            stream,
            info_digits: String::new(),
            remote_crypto: String::new(),
        }
    }

    /// Open WAV recordings for this call in `dir` (`<call>-sent.wav`, `<call>-received.wav`).
    pub fn record_to(&mut self, dir: &Path, call: u64) -> std::io::Result<()> {
        let sent = Recorder::create(&dir.join(format!("call-{call}-sent.wav")))?;
        let received = Recorder::create(&dir.join(format!("call-{call}-received.wav")))?;
        self.stream.record(Some(sent), Some(received));
        Ok(())
    }

    /// Our SDP for the message being built (after [`Self::on_sending_sdp`]): the
    /// answer to the peer's offer, or an offer (a re-offer gets a new o= version).
    pub fn write_sdp(&self, out: &mut Vec<u8>) {
        match (&self.agreed, self.answering, &self.offer) {
            (Some(agreed), true, Some(offer)) => {
                negotiate::write_answer_to_offer(&self.local, agreed, offer, out)
            }
            (Some(agreed), true, None) => negotiate::write_answer(&self.local, agreed, out),
            _ => negotiate::write_offer(&self.local, out),
        }
    }

    /// We are about to send our SDP (rendered by `write_sdp` or written by hand) in a
    /// response (`in_response`) or a request: decides whether it is an answer, the
    /// same answer again, or a new offer.
    pub fn on_sending_sdp(&mut self, in_response: bool) {
        match self.exchange {
            Exchange::OfferReceived => {
                self.answering = true;
                self.exchange = Exchange::Idle;
            }
            Exchange::Idle if self.answering && in_response => {}
            Exchange::Idle | Exchange::OfferSent => {
                if self.sent_any && !(self.exchange == Exchange::OfferSent) {
                    self.local.session_version += 1;
                }
                self.answering = false;
                self.exchange = Exchange::OfferSent;
            }
        }
        self.sent_any = true;
    }

    /// Our `a=crypto` line(s) for the SDP being built (`{{ crypto }}`): the one we
    /// answer with once agreed, else every line we offer. No trailing line end.
    pub fn write_crypto(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let answer = self.exchange == Exchange::OfferReceived || self.answering;
        match (&self.agreed, answer) {
            (Some(Negotiated { srtp: Some(a), .. }), true) => {
                sdes::write_crypto(a.tag, &a.local, out)
            }
            _ => {
                for k in self.local.srtp.iter().flat_map(|s| &s.keys) {
                    sdes::write_crypto(k.tag, &k.key, out);
                }
            }
        }
        if out.len() > start && out.ends_with(b"\r\n") {
            out.truncate(out.len() - 2);
        }
    }

    /// The peer's `a=crypto` line(s) from its last SDP (`{{ remote_crypto }}`).
    pub fn remote_crypto(&self) -> &str {
        &self.remote_crypto
    }

    /// SDP written by hand in a template: what it offers is what we negotiate with.
    pub fn on_local_sdp(&mut self, sdp: &str, in_response: bool) {
        if let Ok(ours) = negotiate::remote_media(sdp) {
            // Keys written by hand (fixed test keys) replace the generated ones.
            let keys: Vec<SdesKey> = ours
                .crypto
                .iter()
                .filter_map(|c| {
                    Some(SdesKey {
                        tag: c.tag,
                        key: c.keys.first()?.clone(),
                    })
                })
                .collect();
            if !keys.is_empty() {
                let policy = if ours.savp {
                    SrtpPolicy::Required
                } else {
                    SrtpPolicy::BestEffort
                };
                self.local.srtp = Some(LocalSrtp { policy, keys });
            }
            self.local.codecs = ours.codecs;
            self.local.telephone_event = ours.telephone_event;
            if let Some(p) = ours.ptime {
                self.local.ptime = p;
            }
            self.local.direction = ours.direction;
            self.local.rtcp_mux = ours.rtcp_mux;
        }
        self.on_sending_sdp(in_response);
    }

    /// The peer's SDP (offer or answer): negotiate and (re)configure the stream.
    pub fn on_remote_sdp(&mut self, sdp: &str, now: Instant) -> Result<(), MediaError> {
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            sdp.hash(&mut h);
            h.finish()
        };
        if self.last_remote == Some(digest) {
            return Ok(());
        }
        let remote = negotiate::remote_media(sdp)?;
        let we_offered = self.exchange == Exchange::OfferSent;
        let agreed = negotiate::negotiate(&self.local, &remote, we_offered)?;
        let law = AudioCodec::of_sdp(&agreed.codec).map(|c| c.law());
        let setup = StreamSetup {
            payload_type: agreed.codec.payload_type,
            law,
            telephone_event: agreed.telephone_event,
            ptime: if agreed.ptime.is_zero() {
                Duration::from_millis(20)
            } else {
                agreed.ptime
            },
            send: agreed.send,
            receive: agreed.receive,
            remote_rtp: agreed.remote_rtp,
            remote_rtcp: if agreed.rtcp_mux {
                agreed.remote_rtp
            } else {
                agreed.remote_rtcp
            },
            rtcp_mux: agreed.rtcp_mux,
        };
        self.stream.set_srtp(agreed.srtp.as_ref())?;
        self.stream.configure(setup, now);
        self.remote_crypto = crypto_lines(sdp);
        self.remote = Some(remote);
        self.agreed = Some(agreed);
        self.last_remote = Some(digest);
        if we_offered {
            self.exchange = Exchange::Idle;
        } else {
            self.offer = Some(sdp.into());
            self.exchange = Exchange::OfferReceived;
        }
        Ok(())
    }

    pub fn agreed(&self) -> Option<&Negotiated> {
        self.agreed.as_ref()
    }

    pub fn local(&self) -> &LocalMedia {
        &self.local
    }

    pub fn direction(&self) -> Direction {
        self.local.direction
    }
}

/// Our SDES lines: a fresh random key per suite (RFC 4568 §6.1 wants keys unique per
/// direction and session), tags from 1.
fn local_srtp(cfg: &SrtpConfig, rng: &mut dyn rand::RngCore) -> LocalSrtp {
    let keys = cfg
        .suites
        .iter()
        .zip(1..)
        .filter_map(|(&suite, tag)| {
            let mut bytes = [0u8; 64];
            let n = suite.master_key_len() + suite.master_salt_len();
            rng.fill_bytes(&mut bytes[..n]);
            let mut key = MasterKey::from_key_salt(suite, &bytes[..n]).ok()?;
            if cfg.mki_len > 0 {
                // MKI value 1 in mki_len bytes: one key per direction, so any value will do.
                let mut mki = vec![0u8; usize::from(cfg.mki_len)];
                if let Some(last) = mki.last_mut() {
                    *last = 1;
                }
                key.mki = Some(mki);
            }
            if let Some(n) = cfg.kdr_exp {
                key.kdr = 1u64 << n;
            }
            Some(SdesKey { tag, key })
        })
        .collect();
    let policy = if cfg.required {
        SrtpPolicy::Required
    } else {
        SrtpPolicy::BestEffort
    };
    LocalSrtp { policy, keys }
}

/// The `a=crypto` lines of an SDP body, CRLF-joined, without a final line end.
fn crypto_lines(sdp: &str) -> String {
    let mut out = String::new();
    for line in sdp
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("a=crypto:"))
    {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn session(port: u16, seed: u64, now: Instant) -> MediaSession {
        let cfg = MediaConfig {
            srtp: Some(SrtpConfig {
                suites: SrtpConfig::default_suites(),
                required: true,
                mki_len: 0,
                kdr_exp: None,
            }),
            ..MediaConfig::default()
        };
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        MediaSession::new(
            &cfg,
            ip,
            SocketAddr::new(ip, port),
            Some(SocketAddr::new(ip, port + 1)),
            seed,
            MediaStream::new(seed, false, (now, 0)),
            &mut rng,
        )
    }

    fn sdp_of(s: &mut MediaSession) -> String {
        let mut out = Vec::new();
        s.on_sending_sdp(s.agreed().is_some());
        s.write_sdp(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// The next audio packet the stream sends (silence), sealed.
    fn packet(s: &mut MediaSession, now: Instant) -> Vec<u8> {
        s.stream.silence(now);
        let mut buf = Vec::new();
        loop {
            let t = s.stream.poll_transmit(now, &mut buf).expect("a packet due");
            if t.channel == super::super::stream::Channel::Rtp {
                return buf;
            }
        }
    }

    #[test]
    fn a_reinvite_with_new_keys_rekeys_and_packets_in_flight_still_open() {
        let now = Instant::now();
        let mut a = session(20_000, 1, now);
        let mut b = session(30_000, 2, now);
        let offer = sdp_of(&mut a);
        assert!(offer.contains("m=audio 20000 RTP/SAVP"), "{offer}");
        assert_eq!(offer.matches("a=crypto:").count(), 3, "{offer}");
        b.on_remote_sdp(&offer, now).unwrap();
        let answer = sdp_of(&mut b);
        assert_eq!(answer.matches("a=crypto:1 ").count(), 1, "{answer}");
        a.on_remote_sdp(&answer, now).unwrap();
        let mut crypto = Vec::new();
        b.write_crypto(&mut crypto);
        assert!(crypto.starts_with(b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(
            a.remote_crypto()
                .starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80")
        );

        let late = packet(&mut a, now);
        // A re-INVITE from a new instance of A: same address, new keys.
        let mut a2 = session(20_000, 3, now);
        let reoffer = sdp_of(&mut a2);
        assert_ne!(reoffer, offer);
        b.on_remote_sdp(&reoffer, now).unwrap();
        let reanswer = sdp_of(&mut b);
        a2.on_remote_sdp(&reanswer, now).unwrap();
        let fresh = packet(&mut a2, now + Duration::from_millis(20));
        let mut echo = Vec::new();
        for mut p in [fresh, late] {
            let got = b.stream.on_rtp(&mut p, now, &mut echo);
            assert_eq!(got.rejected, None);
        }
        let f = b.stream.figures();
        assert_eq!((f.packets_received, f.srtp_auth_failures), (2, 0), "{f:?}");
    }

    /// The peer re-offers to the side that offered first: that side answers (one
    /// crypto line, the peer's tag), and an answer repeated in a 183 and its 200 is
    /// one exchange, not a new offer.
    #[test]
    fn roles_follow_each_exchange_not_who_offered_first() {
        let now = Instant::now();
        let mut a = session(20_000, 1, now);
        let mut b = session(30_000, 2, now);
        let offer = sdp_of(&mut a);
        b.on_remote_sdp(&offer, now).unwrap();
        let answer = sdp_of(&mut b);
        // The same answer in a 183 and then the 200.
        a.on_remote_sdp(&answer, now).unwrap();
        a.on_remote_sdp(&answer, now).unwrap();
        let again = sdp_of(&mut b);
        assert_eq!(again, answer, "a repeated answer keeps its version");
        // b re-offers (a re-INVITE from the side that answered).
        b.on_sending_sdp(false);
        let mut reoffer = Vec::new();
        b.write_sdp(&mut reoffer);
        let reoffer = String::from_utf8(reoffer).unwrap();
        assert!(reoffer.contains("o=sipwright 2 2 "), "{reoffer}");
        assert_eq!(reoffer.matches("a=crypto:").count(), 3, "{reoffer}");
        a.on_remote_sdp(&reoffer, now).unwrap();
        let reanswer = sdp_of(&mut a);
        assert_eq!(reanswer.matches("a=crypto:").count(), 1, "{reanswer}");
        assert!(
            reanswer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"),
            "{reanswer}"
        );
        b.on_remote_sdp(&reanswer, now).unwrap();
        assert!(b.agreed().unwrap().srtp.is_some());
    }

    #[test]
    fn a_plain_offer_to_a_required_side_is_refused_with_the_reason() {
        let now = Instant::now();
        let mut b = session(30_000, 2, now);
        let plain = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                     m=audio 4000 RTP/AVP 0\r\n";
        let e = b.on_remote_sdp(plain, now).unwrap_err().to_string();
        assert!(e.contains("no usable SRTP crypto"), "{e}");
    }
}

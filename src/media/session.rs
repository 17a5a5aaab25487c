//! One call's media: the SDP offer/answer state and the RTP stream it configures.
//! The scenario talks to this through a [`super::control::MediaControl`]; the driver
//! owns the sockets it sends through.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::sdp::Direction;
use crate::sdp::negotiate::{self, LocalMedia, NegotiateError, Negotiated, RemoteMedia};

use super::config::{AudioCodec, MediaConfig};
use super::recorder::Recorder;
use super::stream::{MediaStream, StreamSetup};

#[derive(Debug, Error)]
pub enum MediaError {
    #[error("{0}")]
    Negotiate(#[from] NegotiateError),
    #[error("no media ports: {0}")]
    Ports(String),
    #[error("{0}")]
    Other(String),
}

pub struct MediaSession {
    local: LocalMedia,
    /// We sent our SDP before seeing theirs: theirs is the answer.
    sent_first: bool,
    sent_any: bool,
    remote: Option<RemoteMedia>,
    agreed: Option<Negotiated>,
    /// The peer's offer, when we answer it: the answer repeats its other streams
    /// as rejected, in their places (RFC 3264 §6).
    offer: Option<Box<str>>,
    pub stream: MediaStream,
    /// Digits that arrived as SIP INFO (`application/dtmf-relay`).
    pub info_digits: String,
}

impl MediaSession {
    /// `rtp`/`rtcp`: our bound addresses (rtcp None: rtcp-mux only).
    pub fn new(
        cfg: &MediaConfig,
        ip_for_sdp: std::net::IpAddr,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
        session_id: u64,
        stream: MediaStream,
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
            srtp: None,
            session_id,
            session_version: 1,
        };
        MediaSession {
            local,
            sent_first: false,
            sent_any: false,
            remote: None,
            agreed: None,
            offer: None,
            stream,
            info_digits: String::new(),
        }
    }

    /// Open WAV recordings for this call in `dir` (`<call>-sent.wav`, `<call>-received.wav`).
    pub fn record_to(&mut self, dir: &Path, call: u64) -> std::io::Result<()> {
        let sent = Recorder::create(&dir.join(format!("call-{call}-sent.wav")))?;
        let received = Recorder::create(&dir.join(format!("call-{call}-received.wav")))?;
        self.stream.record(Some(sent), Some(received));
        Ok(())
    }

    /// Our SDP for the message being built: the answer when the peer's offer came
    /// first, otherwise an offer (again for a re-INVITE, with a new version).
    pub fn write_sdp(&self, out: &mut Vec<u8>) {
        match (&self.agreed, self.sent_first, &self.offer) {
            (Some(agreed), false, Some(offer)) => {
                negotiate::write_answer_to_offer(&self.local, agreed, offer, out)
            }
            (Some(agreed), false, None) => negotiate::write_answer(&self.local, agreed, out),
            _ => negotiate::write_offer(&self.local, out),
        }
    }

    /// We are about to send our SDP (rendered by `write_sdp` or written by hand).
    pub fn on_sending_sdp(&mut self) {
        if !self.sent_any && self.remote.is_none() {
            self.sent_first = true;
        }
        self.sent_any = true;
    }

    /// SDP written by hand in a template: what it offers is what we negotiate with.
    pub fn on_local_sdp(&mut self, sdp: &str) {
        if let Ok(ours) = negotiate::remote_media(sdp) {
            self.local.codecs = ours.codecs;
            self.local.telephone_event = ours.telephone_event;
            if let Some(p) = ours.ptime {
                self.local.ptime = p;
            }
            self.local.direction = ours.direction;
            self.local.rtcp_mux = ours.rtcp_mux;
        }
        self.on_sending_sdp();
    }

    /// The peer's SDP (offer or answer): negotiate and (re)configure the stream.
    pub fn on_remote_sdp(&mut self, sdp: &str, now: Instant) -> Result<(), MediaError> {
        let remote = negotiate::remote_media(sdp)?;
        let agreed = negotiate::negotiate(&self.local, &remote, self.sent_first)?;
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
        self.stream.configure(setup, now);
        self.remote = Some(remote);
        self.agreed = Some(agreed);
        if !self.sent_first {
            self.offer = Some(sdp.into());
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

//! The media part of compilation: the `media:` block and the media steps. Files named
//! by `play`/`play_pcap` are loaded here, once per run, so a bad file is a scenario
//! error at `check` (FILE:LINE:COL), not a failure of every call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::media::config::{
    AudioCodec, DtmfMode, DtmfSpec, MediaConfig, MediaExpectation, PlaySource, PlaySpec,
    SrtpConfig, Until,
};
use crate::media::dtmf::{DtmfTiming, event_code};
use crate::media::source::{AudioClip, PcapClip, StreamSelector};
use crate::sdp::Direction;
use crate::srtp::Suite;

use super::compile::{Compiler, Pos, pos_of};
use super::model::{MediaDef, StepDef};
use super::plan::{MediaStep, StepKind};

/// The file the built-ins play when `play` is not set; shipped inside the binary so
/// the built-ins work from any directory.
pub const SAMPLE_WAV_PATH: &str = "media/sample.wav";

impl Compiler<'_> {
    pub(super) fn media_config(&mut self, def: &Spanned<MediaDef>) -> MediaConfig {
        let d = &def.value;
        let mut cfg = MediaConfig::default();
        if let Some(list) = &d.codecs {
            let mut codecs = Vec::new();
            for c in &list.value {
                match AudioCodec::parse(c.value.trim()) {
                    Some(codec) if !codecs.contains(&codec) => codecs.push(codec),
                    Some(_) => {}
                    None => self.error(
                        pos_of(c),
                        "media.codecs",
                        format!(
                            "unknown codec `{}`; sipwright sends PCMU and PCMA (G.711)",
                            c.value.trim()
                        ),
                    ),
                }
            }
            if codecs.is_empty() && !list.value.is_empty() {
                return cfg;
            }
            if codecs.is_empty() {
                self.error(
                    pos_of(list),
                    "media.codecs",
                    "empty codec list; use e.g. `[PCMU, PCMA]`",
                );
            } else {
                cfg.codecs = codecs;
            }
        }
        if let Some(te) = &d.telephone_event {
            let t = te.value.trim();
            cfg.telephone_event = match t.to_ascii_lowercase().as_str() {
                "off" | "none" | "false" | "no" => None,
                _ => match t.parse::<u8>() {
                    Ok(pt) if (96..=127).contains(&pt) => Some(pt),
                    _ => {
                        self.error(
                            pos_of(te),
                            "media.telephone_event",
                            format!("`{t}`: expected a dynamic payload type 96–127, or `off`"),
                        );
                        None
                    }
                },
            };
        }
        if let Some(p) = &d.ptime
            && let Some(ptime) = self.duration(p, "media.ptime")
        {
            let ms = ptime.as_micros();
            if ptime.subsec_nanos() % 1_000_000 != 0 || !(10_000..=200_000).contains(&ms) {
                self.error(
                    pos_of(p),
                    "media.ptime",
                    "ptime must be whole milliseconds from 10ms to 200ms (e.g. `20ms`)",
                );
            } else {
                cfg.ptime = ptime;
            }
        }
        if let Some(dir) = &d.direction {
            cfg.direction = match dir.value.trim().to_ascii_lowercase().as_str() {
                "sendrecv" => Direction::SendRecv,
                "sendonly" => Direction::SendOnly,
                "recvonly" => Direction::RecvOnly,
                "inactive" => Direction::Inactive,
                other => {
                    self.error(
                        pos_of(dir),
                        "media.direction",
                        format!("`{other}`: expected sendrecv, sendonly, recvonly or inactive"),
                    );
                    Direction::SendRecv
                }
            };
        }
        if let Some(r) = &d.record
            && let Some(path) = self.whole_value(r, "media.record")
        {
            cfg.record = Some(PathBuf::from(path));
        }
        cfg.echo = d.echo.as_ref().is_some_and(|e| e.value);
        cfg.rtcp_mux = d.rtcp_mux.as_ref().is_some_and(|e| e.value);
        cfg.srtp = self.srtp_config(d);
        cfg
    }

    /// `srtp`, `srtp_required`, `srtp_mki`, `srtp_kdr`.
    fn srtp_config(&mut self, d: &MediaDef) -> Option<SrtpConfig> {
        let Some(list) = &d.srtp else {
            for (key, set) in [
                ("srtp_required", d.srtp_required.as_ref().map(pos_of)),
                ("srtp_mki", d.srtp_mki.as_ref().map(pos_of)),
                ("srtp_kdr", d.srtp_kdr.as_ref().map(pos_of)),
            ] {
                if let Some(pos) = set {
                    self.error(
                        pos,
                        format!("media.{key}"),
                        format!("`{key}` needs `srtp:` (the suites to offer), e.g. `srtp: [AES_CM_128_HMAC_SHA1_80]`"),
                    );
                }
            }
            return None;
        };
        let mut suites = Vec::new();
        for s in &list.value {
            match Suite::from_sdes_name(s.value.trim()) {
                Some(suite) if !suites.contains(&suite) => suites.push(suite),
                Some(_) => {}
                None => self.error(
                    pos_of(s),
                    "media.srtp",
                    format!(
                        "unknown SRTP suite `{}`; sipwright has {}",
                        s.value.trim(),
                        Suite::ALL.map(|s| s.sdes_name()).join(", ")
                    ),
                ),
            }
        }
        if list.value.is_empty() {
            self.error(
                pos_of(list),
                "media.srtp",
                "empty suite list; use e.g. `[AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM]`",
            );
        }
        let mki_len = match &d.srtp_mki {
            Some(v) => match self.number::<u8>(v, "media.srtp_mki")? {
                n @ 0..=16 => n,
                n => {
                    self.error(
                        pos_of(v),
                        "media.srtp_mki",
                        format!("MKI of {n} bytes: use 1 to 16 (or 0 for none)"),
                    );
                    0
                }
            },
            None => 0,
        };
        let kdr_exp = match &d.srtp_kdr {
            Some(v) => match self.number::<u8>(v, "media.srtp_kdr")? {
                n @ 0..=24 => Some(n),
                n => {
                    self.error(
                        pos_of(v),
                        "media.srtp_kdr",
                        format!(
                            "KDR={n}: RFC 4568 allows 0 to 24 (keys derived every 2^n packets)"
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        Some(SrtpConfig {
            suites,
            required: d.srtp_required.as_ref().is_none_or(|r| r.value),
            mki_len,
            kdr_exp,
        })
    }

    /// A literal or a whole `{{ variable }}` (its value at compile time: vars and --set).
    fn whole_value(&mut self, value: &Spanned<String>, path: &str) -> Option<String> {
        let text = value.value.trim();
        let Some(inner) = text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) else {
            if text.contains("{{") {
                self.error(
                    pos_of(value),
                    path,
                    "a file name is a literal or one whole `{{ variable }}`",
                );
                return None;
            }
            return Some(text.to_string());
        };
        let name = inner.trim();
        match self.vars.iter().find(|v| v.name == name) {
            Some(v) => Some(v.initial.trim().to_string()),
            None => {
                let message = self.undefined_var_message(name);
                self.error(pos_of(value), path, message);
                None
            }
        }
    }

    /// A file a step reads: as given, else beside the scenario file.
    fn media_file(&self, name: &str) -> PathBuf {
        let p = PathBuf::from(name);
        if p.is_absolute() || p.exists() {
            return p;
        }
        if let Some(dir) = Path::new(self.file).parent()
            && !self.file.starts_with("builtin:")
        {
            let beside = dir.join(&p);
            if beside.exists() {
                return beside;
            }
        }
        p
    }

    pub(super) fn media_step(
        &mut self,
        action: &str,
        path: &str,
        st: &StepDef,
        step_pos: Pos,
    ) -> Option<StepKind> {
        let path = format!("{path}.{action}");
        let step = match action {
            "play" | "play_pcap" => {
                let value = if action == "play" {
                    st.play.as_ref()?
                } else {
                    st.play_pcap.as_ref()?
                };
                let name = self.whole_value(value, &path)?;
                let file = self.media_file(&name);
                let source = if action == "play" {
                    let clip = if !file.exists() && name == SAMPLE_WAV_PATH {
                        AudioClip::from_wav_bytes(crate::media::SAMPLE_WAV, &file)
                    } else {
                        AudioClip::from_wav_file(&file)
                    };
                    clip.map(|c| PlaySource::Audio(Arc::new(c)))
                } else {
                    let selector = match &st.stream {
                        Some(s) => Some(self.stream_selector(s, &path)?),
                        None => None,
                    };
                    PcapClip::from_file(&file, selector).map(|c| PlaySource::Pcap(Arc::new(c)))
                };
                let source = match source {
                    Ok(s) => s,
                    Err(e) => {
                        self.error(pos_of(value), path, e.to_string());
                        return None;
                    }
                };
                let until = match &st.until {
                    None => Until::Bye,
                    Some(u) if u.value.trim().eq_ignore_ascii_case("bye") => Until::Bye,
                    Some(u) => Until::After(self.duration(u, &format!("{path}.until"))?),
                };
                MediaStep::Play(PlaySpec {
                    source,
                    looped: st.looped.as_ref().is_some_and(|l| l.value),
                    until,
                })
            }
            "silence" => MediaStep::Silence,
            "stop_media" => MediaStep::Stop,
            "dtmf" => {
                let value = st.dtmf.as_ref()?;
                let digits = self.digits(value, &path)?;
                let duration = match &st.duration {
                    Some(d) => self.duration(d, &format!("{path}.duration"))?,
                    None => Duration::from_millis(100),
                };
                if duration < Duration::from_millis(10) {
                    self.error(
                        step_pos,
                        format!("{path}.duration"),
                        "a tone shorter than 10ms is not a digit any detector hears",
                    );
                }
                let gap = match &st.gap {
                    Some(d) => self.duration(d, &format!("{path}.gap"))?,
                    None => Duration::from_millis(100),
                };
                let volume = match &st.volume {
                    Some(v) => match v.value.trim().parse::<u8>() {
                        Ok(n) if n <= 63 => n,
                        _ => {
                            self.error(
                                pos_of(v),
                                format!("{path}.volume"),
                                "volume is 0–63 (−dBm0; 10 is typical)",
                            );
                            return None;
                        }
                    },
                    None => 10,
                };
                let mode = match &st.mode {
                    None => DtmfMode::Rfc4733,
                    Some(m) => match m.value.trim().to_ascii_lowercase().as_str() {
                        "rfc4733" | "rfc2833" | "rtp" => DtmfMode::Rfc4733,
                        "info" => DtmfMode::Info,
                        other => {
                            self.error(
                                pos_of(m),
                                format!("{path}.mode"),
                                format!("`{other}`: expected `rfc4733` or `info`"),
                            );
                            return None;
                        }
                    },
                };
                MediaStep::Dtmf(DtmfSpec {
                    digits,
                    timing: DtmfTiming {
                        duration,
                        gap,
                        volume,
                    },
                    mode,
                })
            }
            "expect_dtmf" => {
                let value = st.expect_dtmf.as_ref()?;
                let digits = self.digits(value, &path)?;
                let timeout = match &st.timeout {
                    Some(t) => Some(self.duration(t, &format!("{path}.timeout"))?),
                    None => None,
                };
                MediaStep::ExpectDtmf { digits, timeout }
            }
            "expect_media" => {
                let def = &st.expect_media.as_ref()?.value;
                let mut exp = MediaExpectation::default();
                if let Some(v) = &def.min_packets {
                    exp.min_packets = Some(self.number(v, &format!("{path}.min_packets"))?);
                }
                if let Some(v) = &def.max_loss_pct {
                    exp.max_loss_pct = Some(self.number(v, &format!("{path}.max_loss_pct"))?);
                }
                if let Some(v) = &def.max_jitter_ms {
                    exp.max_jitter_ms = Some(self.number(v, &format!("{path}.max_jitter_ms"))?);
                }
                if let Some(v) = &def.max_auth_failures {
                    exp.max_auth_failures =
                        Some(self.number(v, &format!("{path}.max_auth_failures"))?);
                }
                if exp == MediaExpectation::default() {
                    self.error(
                        step_pos,
                        path,
                        "expect_media needs at least one of min_packets, max_loss_pct, \
                         max_jitter_ms, max_auth_failures",
                    );
                    return None;
                }
                MediaStep::Expect(exp)
            }
            _ => return None,
        };
        Some(StepKind::Media(step))
    }

    fn digits(&mut self, value: &Spanned<String>, path: &str) -> Option<String> {
        let digits: String = value.value.trim().to_string();
        if digits.is_empty() {
            self.error(pos_of(value), path, "no digits; use 0-9, *, #, A-D");
            return None;
        }
        if let Some(bad) = digits.chars().find(|c| event_code(*c).is_none()) {
            self.error(
                pos_of(value),
                path,
                format!("`{bad}` is not a DTMF key; use 0-9, *, #, A-D"),
            );
            return None;
        }
        Some(digits.to_ascii_uppercase())
    }

    fn number<T: std::str::FromStr>(&mut self, value: &Spanned<String>, path: &str) -> Option<T> {
        match value.value.trim().parse::<T>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    pos_of(value),
                    path,
                    format!("`{}` is not a number", value.value.trim()),
                );
                None
            }
        }
    }

    fn stream_selector(&mut self, value: &Spanned<String>, path: &str) -> Option<StreamSelector> {
        let t = value.value.trim();
        let ssrc = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => t.parse::<u32>().ok(),
        };
        if let Some(s) = ssrc {
            return Some(StreamSelector::Ssrc(s));
        }
        if let Ok(addr) = t.parse() {
            return Some(StreamSelector::Destination(addr));
        }
        self.error(
            pos_of(value),
            format!("{path}.stream"),
            format!("`{t}`: expected an SSRC (decimal or 0x hex) or the destination IP:PORT"),
        );
        None
    }
}

/// Does a step key belong to the media steps?
pub fn is_media_action(action: &str) -> bool {
    matches!(
        action,
        "play" | "play_pcap" | "silence" | "stop_media" | "dtmf" | "expect_media" | "expect_dtmf"
    )
}

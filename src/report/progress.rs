//! Live figures during a run: an in-place status line on a terminal (indicatif,
//! redrawn a few times a second), one plain line per statistics interval otherwise
//! (logs, CI). Both go to stderr so stdout keeps the final summary only.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::load::run::Tick;
use crate::report::TxMethod;
use crate::report::latency::Metric;

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    /// Planned length of the run, when known (for "remaining").
    planned: Option<Duration>,
}

impl Progress {
    pub fn new(quiet: bool, planned: Option<Duration>) -> Progress {
        if quiet {
            return Progress {
                bar: None,
                plain: false,
                planned,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            return Progress {
                bar: Some(bar),
                plain: false,
                planned,
            };
        }
        Progress {
            bar: None,
            plain: true,
            planned,
        }
    }

    pub fn tick(&mut self, t: &Tick<'_>) {
        if self.bar.is_none() && !self.plain {
            return;
        }
        let line = status_line(t, self.planned);
        if let Some(bar) = &self.bar {
            bar.set_message(line);
        } else {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `[12.0s] 1000.0/1000.0 cps | 35 in progress | 11990 ok, 0 failed | setup p50 0.4 ms p99 1.9 ms | 48.0s left`;
/// a REGISTER run adds `| reg 998/s` (REGISTER transactions completed, this
/// interval) and, when challenged, `, auth p50 3.1 ms` (the auth round trip).
/// Figures that do not apply to the run are left out, to keep the line short.
pub fn status_line(t: &Tick<'_>, planned: Option<Duration>) -> String {
    let secs = t.interval_len.as_secs_f64().max(1e-9);
    let achieved = t.interval.calls_started as f64 / secs;
    let setup = t.interval.latency.summary(Metric::FinalResponse);
    let mut line = format!(
        "[{:>6.1}s] {:.1}/{:.1} cps | {} in progress | {} ok, {} failed",
        t.elapsed.as_secs_f64(),
        achieved,
        t.target_cps,
        t.running,
        t.cumulative.calls_succeeded,
        t.cumulative.calls_failed,
    );
    if setup.count > 0 {
        line.push_str(&format!(
            " | setup p50 {:.1} ms p99 {:.1} ms",
            setup.p50, setup.p99
        ));
    }
    let mut sep = " | ";
    if t.cumulative.transactions_of(TxMethod::Register) > 0 {
        let reg = t.interval.transactions_of(TxMethod::Register) as f64 / secs;
        line.push_str(&format!("{sep}reg {reg:.0}/s"));
        sep = ", ";
    }
    if t.cumulative.auth.challenges > 0 {
        let rt = t.interval.latency.summary(Metric::AuthRoundTrip);
        if rt.count > 0 {
            line.push_str(&format!("{sep}auth p50 {:.1} ms", rt.p50));
        }
    }
    let media = &t.cumulative.media;
    if media.streams > 0 {
        // Loss is known per stream when it closes: this is the closed streams' total.
        let expected = media.packets_received + media.lost;
        let loss = if expected > 0 {
            media.lost as f64 * 100.0 / expected as f64
        } else {
            0.0
        };
        line.push_str(&format!(
            " | rtp {} streams, {} pkt/s in, loss {:.2} %",
            media.streams_active,
            (t.interval.media.packets_received as f64 / secs).round(),
            loss
        ));
        let rejected = media.srtp_auth_failures + media.srtp_replay_failures;
        if rejected > 0 {
            line.push_str(&format!(" | {rejected} srtp packets rejected"));
        }
    }
    let conns = &t.cumulative.connections;
    if conns.opened + conns.accepted > 0 {
        line.push_str(&format!(" | {} conns", conns.active));
        if conns.failed > 0 {
            line.push_str(&format!(", {} failed", conns.failed));
        }
        let tls = t.interval.latency.summary(Metric::TlsHandshake);
        if tls.count > 0 {
            line.push_str(&format!(", tls p50 {:.1} ms", tls.p50));
        }
    }
    if t.interval.messages_retransmitted > 0 {
        line.push_str(&format!(
            " | {} retransmitted",
            t.interval.messages_retransmitted
        ));
    }
    if let Some(p) = planned {
        let left = p.saturating_sub(t.elapsed);
        line.push_str(&format!(" | {:.1}s left", left.as_secs_f64()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Counters;

    fn line(interval: &Counters, cumulative: &Counters) -> String {
        let t = Tick {
            elapsed: Duration::from_secs(12),
            interval_len: Duration::from_secs(2),
            interval,
            cumulative,
            running: 3,
            target_cps: 500.0,
            done: false,
        };
        status_line(&t, None)
    }

    #[test]
    fn plain_call_run() {
        let mut interval = Counters {
            calls_started: 1000,
            ..Default::default()
        };
        interval.transaction_completed("INVITE");
        interval
            .latency
            .record(Metric::FinalResponse, Duration::from_millis(2));
        let l = line(&interval, &interval.clone());
        assert_eq!(
            l,
            "[  12.0s] 500.0/500.0 cps | 3 in progress | 0 ok, 0 failed | setup p50 2.0 ms p99 2.0 ms"
        );
    }

    #[test]
    fn register_rate_and_auth_round_trip() {
        let mut interval = Counters {
            calls_started: 1000,
            ..Default::default()
        };
        for _ in 0..1996 {
            interval.transaction_completed("REGISTER");
        }
        interval.auth.challenges = 998;
        interval
            .latency
            .record(Metric::AuthRoundTrip, Duration::from_micros(3100));
        let cumulative = interval.clone();
        let l = line(&interval, &cumulative);
        assert!(
            l.ends_with("| 0 ok, 0 failed | reg 998/s, auth p50 3.1 ms"),
            "{l}"
        );

        // An interval without REGISTERs in a REGISTER run says 0/s; no round trip
        // measured this interval, no auth figure.
        let l = line(&Counters::default(), &cumulative);
        assert!(l.ends_with("| reg 0/s"), "{l}");

        // Challenged INVITEs, no REGISTER: the auth figure alone.
        let mut invites = interval.clone();
        invites.transactions = Default::default();
        invites.transaction_completed("INVITE");
        let l = line(&invites, &invites.clone());
        assert!(l.ends_with("| 0 ok, 0 failed | auth p50 3.1 ms"), "{l}");
    }
}

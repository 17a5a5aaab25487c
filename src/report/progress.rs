//! Live figures during a run: an in-place status line on a terminal (indicatif,
//! redrawn a few times a second), one plain line per statistics interval otherwise
//! (logs, CI). Both go to stderr so stdout keeps the final summary only.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::load::run::Tick;
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

/// `[12.0s] 1000.0/1000.0 cps | 35 in progress | 11990 ok, 0 failed | setup p50 0.4 ms p99 1.9 ms | 48.0s left`
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

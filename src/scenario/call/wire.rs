//! How a send step's message is written: whole, joined with the next send's in one
//! write (`pipeline`), or in pieces with delays (`chunks`, tcp/tls), and over UDP
//! whether it fits in one datagram. The call stays sans-IO: pieces go to the
//! [`Outbox`] when due and the call's deadline says when the next one is.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Call, CallEnv, Effects, Outbox, State, Wait};
use crate::scenario::plan::{Chunk, SendSpec, chunks_unsupported, udp_too_large};
use crate::sip::message::Message;
use crate::transport::kind::MAX_UDP_MESSAGE;

/// The message of a `chunks:` send and how far it got.
#[derive(Debug)]
pub(super) struct Chunking {
    dest: SocketAddr,
    bytes: Vec<u8>,
    /// Bytes written so far.
    sent: usize,
    /// Index of the next piece in the step's `chunks`.
    piece: usize,
    /// When that piece is due: the previous one's due time plus its `after` (not
    /// when the previous one actually went), so a late wake-up adds no drift.
    due: Instant,
}

impl Call {
    /// A send step: its message goes whole, joined with the next send's
    /// (`pipeline`), or in pieces (`chunks`). Ok(false): the step waits for its next
    /// piece (then `run` comes back here at its deadline).
    pub(super) fn send_step(
        &mut self,
        env: &CallEnv,
        spec: &SendSpec,
        now: Instant,
        fx: &mut Effects<'_>,
        current: Option<&Message<'_>>,
    ) -> Result<bool, String> {
        if let Some(chunks) = &spec.chunks {
            let writing = self.extras.as_ref().is_some_and(|e| e.chunking.is_some());
            if writing && self.wait.is_some_and(|w| w.pc == self.pc) {
                return Ok(self.write_chunks(chunks, now, fx.out));
            }
            if let Some(why) = chunks_unsupported(env.transport) {
                return Err(why);
            }
        }
        let before = fx.out.queued_bytes();
        self.send(env, &spec.what, now, fx, current)?;
        if self.state != State::Running || fx.out.queued_bytes() == before {
            // Failed (media), or nothing to send (`send: ack` after a non-2xx).
            return Ok(true);
        }
        // The message is the last packet (or its end, when it joined the one before).
        let len = fx
            .out
            .len()
            .checked_sub(1)
            .and_then(|i| fx.out.get(i))
            .map_or(0, |(_, b)| b.len());
        if !env.transport.is_connection() && len > MAX_UDP_MESSAGE {
            fx.out.pop_last();
            fx.ctr.messages_sent = fx.ctr.messages_sent.saturating_sub(1);
            return Err(udp_too_large(len));
        }
        if let Some(chunks) = &spec.chunks
            && let Some((dest, bytes)) = fx.out.pop_last()
        {
            let due = now + chunks.first().map_or(Duration::ZERO, |c| c.after);
            self.extras().chunking = Some(Chunking {
                dest,
                bytes,
                sent: 0,
                piece: 0,
                due,
            });
            return Ok(self.write_chunks(chunks, now, fx.out));
        }
        if spec.pipeline {
            fx.out.join_next();
        }
        Ok(true)
    }

    /// Write the pieces of the chunked message that are due. True once all of it
    /// went (a message shorter than the pieces ends early; one longer sends what is
    /// left right after the last piece); otherwise the call waits for the next.
    fn write_chunks(&mut self, chunks: &[Chunk], now: Instant, out: &mut Outbox) -> bool {
        let Some(extras) = self.extras.as_mut() else {
            return true;
        };
        let Some(c) = extras.chunking.as_mut() else {
            return true;
        };
        while c.due <= now && c.sent < c.bytes.len() {
            let left = c.bytes.len() - c.sent;
            let n = match chunks.get(c.piece) {
                Some(Chunk { bytes: Some(n), .. }) => (*n).min(left),
                _ => left,
            };
            // Each piece is its own packet: the driver writes it to the connection
            // when it is queued, so pieces due at different times are separate writes.
            out.push(c.dest, &c.bytes[c.sent..c.sent + n]);
            c.sent += n;
            c.piece += 1;
            if let Some(next) = chunks.get(c.piece) {
                // `after` is at most an hour (checked when compiled): no overflow.
                c.due += next.after;
            }
        }
        if c.sent >= c.bytes.len() {
            extras.chunking = None;
            self.wait = None;
            return true;
        }
        self.wait = Some(Wait {
            pc: self.pc,
            until: Some(c.due),
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::tests::{env_of, fx};
    use super::super::{Call, CallEnv, Outbox, Outcome};
    use crate::report::{Counters, FailureReason};
    use crate::transport::kind::TransportKind;

    struct Run {
        env: CallEnv,
        call: Call,
        out: Outbox,
        ctr: Counters,
        t0: Instant,
    }

    impl Run {
        /// A UAC call of `text` over `transport`, started at t0.
        fn start(text: &str, transport: TransportKind, overrides: &[(&str, &str)]) -> Run {
            let mut env = env_of("wire", text, overrides);
            env.transport = transport;
            let t0 = Instant::now();
            let mut r = Run {
                call: Call::new_uac(&env, 1, t0),
                env,
                out: Outbox::default(),
                ctr: Counters::default(),
                t0,
            };
            r.call.start(&r.env, t0, &mut fx(&mut r.out, &mut r.ctr));
            r
        }

        /// Timers due at t0 + `ms`.
        fn tick(&mut self, ms: u64) {
            let now = self.t0 + Duration::from_millis(ms);
            self.call
                .on_timeout(&self.env, now, &mut fx(&mut self.out, &mut self.ctr));
        }

        /// Packets queued since the last call, and clear them.
        fn packets(&mut self) -> Vec<Vec<u8>> {
            let v = self.out.iter().map(|(_, b)| b.to_vec()).collect();
            self.out.clear();
            v
        }

        fn next_due_ms(&self) -> Option<u128> {
            self.call.deadline().map(|d| (d - self.t0).as_millis())
        }
    }

    const MSG: &str = "OPTIONS sip:x SIP/2.0\r\nContent-Length: 1\r\n\r\n";

    fn chunked(chunks: &str) -> String {
        format!(
            "steps:\n  - send: \"{}\"\n    raw: true\n    chunks: {chunks}\n  - pause: 1s\n",
            MSG.replace('\r', "\\r").replace('\n', "\\n")
        )
    }

    #[test]
    fn chunks_go_out_as_separate_packets_when_due() {
        let text = chunked("[{bytes: 5}, {bytes: 3, after: 10ms}, {rest: true, after: 20ms}]");
        let mut r = Run::start(&text, TransportKind::Tcp, &[]);
        assert_eq!(r.packets(), [b"OPTIO".to_vec()]);
        assert_eq!(r.next_due_ms(), Some(10));
        r.tick(9);
        assert!(r.packets().is_empty());
        r.tick(10);
        assert_eq!(r.packets(), [b"NS ".to_vec()]);
        // Due 20 ms after the previous piece was due, however late that one went.
        assert_eq!(r.next_due_ms(), Some(30));
        r.tick(31);
        assert_eq!(r.packets(), [MSG.as_bytes()[8..].to_vec()]);
        // The step is over: the pause runs from when the last piece went.
        assert_eq!(r.next_due_ms(), Some(1031));
        assert_eq!(r.ctr.messages_sent, 1);
        r.tick(1031);
        assert_eq!(r.call.take_outcome(), Some(Outcome::Success));
    }

    #[test]
    fn pieces_due_together_and_leftovers() {
        // Pieces due at once are queued at once (the driver may write them together);
        // what the pieces don't cover goes right after the last one.
        let mut r = Run::start(
            &chunked("[{bytes: 2}, {bytes: 2}]"),
            TransportKind::Tls,
            &[],
        );
        assert_eq!(
            r.packets(),
            [b"OP".to_vec(), b"TI".to_vec(), MSG.as_bytes()[4..].to_vec()]
        );
        // A message shorter than its pieces ends early.
        let mut r = Run::start(
            &chunked("[{bytes: 40}, {bytes: 100, after: 5ms}, {rest: true, after: 5ms}]"),
            TransportKind::Tcp,
            &[],
        );
        assert_eq!(r.packets(), [MSG.as_bytes()[..40].to_vec()]);
        r.tick(5);
        assert_eq!(r.packets(), [MSG.as_bytes()[40..].to_vec()]);
        assert_eq!(r.next_due_ms(), Some(1005));
    }

    #[test]
    fn chunks_over_a_message_transport_fail_the_call() {
        for (kind, name) in [(TransportKind::Udp, "udp"), (TransportKind::Ws, "ws")] {
            let mut r = Run::start(&chunked("[{bytes: 5}, {rest: true}]"), kind, &[]);
            assert!(r.packets().is_empty());
            assert_eq!(
                r.call.take_outcome(),
                Some(Outcome::Failed(FailureReason::ScenarioError))
            );
            let detail = r.call.failure_detail().unwrap_or_default().to_string();
            assert!(
                detail.starts_with("wire:2: step 1: `chunks:` splits a message over a byte stream")
                    && detail.contains(&format!("this run is over {name}")),
                "{detail}"
            );
        }
    }

    #[test]
    fn pipelined_messages_are_one_packet() {
        let text = "steps:\n  - send: \"A\\r\\n\"\n    raw: true\n    pipeline: true\n  - send: \"B\\r\\n\"\n    raw: true\n    pipeline: true\n  - send: \"C\\r\\n\"\n    raw: true\n  - send: \"D\\r\\n\"\n    raw: true\n  - pause: 1s\n";
        for kind in [TransportKind::Tcp, TransportKind::Udp] {
            let mut r = Run::start(text, kind, &[]);
            assert_eq!(
                r.packets(),
                [b"A\r\nB\r\nC\r\n".to_vec(), b"D\r\n".to_vec()],
                "{kind}"
            );
            assert_eq!(r.ctr.messages_sent, 4);
        }
    }

    #[test]
    fn a_pending_join_ends_with_the_call_that_asked() {
        let to = "127.0.0.1:5060".parse().unwrap();
        let mut out = Outbox::default();
        out.push(to, b"a");
        out.join_next();
        out.push("127.0.0.1:5061".parse().unwrap(), b"b");
        // Another destination: not joined, and the join is used up.
        out.push("127.0.0.1:5061".parse().unwrap(), b"c");
        out.join_next();
        out.push("127.0.0.1:5061".parse().unwrap(), b"d");
        out.join_next();
        out.end_join();
        out.push("127.0.0.1:5061".parse().unwrap(), b"e");
        let got: Vec<&[u8]> = out.iter().map(|(_, b)| b).collect();
        assert_eq!(got, [&b"a"[..], b"b", b"cd", b"e"]);
        assert_eq!(out.pop_last().map(|(_, b)| b), Some(b"e".to_vec()));
        assert_eq!(out.queued_bytes(), 4);
    }

    #[test]
    fn udp_messages_up_to_the_datagram_limit() {
        // The size depends on a variable, so only the send can tell.
        let text = "vars: {pad: x}\nsteps:\n  - send: \"OPTIONS sip:{{ call_id }} SIP/2.0\\r\\nX: {{ pad }}\\r\\n\\r\\n\"\n    raw: true\n";
        let head = "OPTIONS sip:1-0000abcd@127.0.0.1 SIP/2.0\r\nX: \r\n\r\n".len();
        let fits = "x".repeat(super::MAX_UDP_MESSAGE - head);
        let mut r = Run::start(text, TransportKind::Udp, &[("pad", &fits)]);
        let sent = r.packets();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].len(), 65_507);
        assert_eq!(r.call.take_outcome(), Some(Outcome::Success));

        let over = "x".repeat(70_000);
        let mut r = Run::start(text, TransportKind::Udp, &[("pad", &over)]);
        assert!(r.packets().is_empty());
        assert_eq!(r.ctr.messages_sent, 0);
        assert_eq!(
            r.call.take_outcome(),
            Some(Outcome::Failed(FailureReason::ScenarioError))
        );
        assert_eq!(
            r.call.failure_detail(),
            Some(
                "wire:3: step 1: the message is 70049 bytes, over the 65507 bytes one UDP \
                 datagram carries; send it over tcp or tls (`--transport tcp`)"
            )
        );
        // Over TCP the same message goes whole.
        let mut r = Run::start(text, TransportKind::Tcp, &[("pad", &over)]);
        assert_eq!(r.packets()[0].len(), 70_049);
    }
}

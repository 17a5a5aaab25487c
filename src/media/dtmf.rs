//! RFC 4733 telephone-event payloads (DTMF): decoding, turning a packet stream into
//! the digits it carried, sending queued digits in the audio stream's packet slots,
//! and the keys of SIP INFO bodies.
//!
//! All packets of one event carry the event's start timestamp; the final ones have
//! the E bit set and are usually sent three times. An event is therefore counted once
//! per RTP timestamp, whichever of its packets arrive.

use std::collections::VecDeque;

/// One telephone-event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// 0–9, 10 = `*`, 11 = `#`, 12–15 = A–D, others are tones/flash.
    pub code: u8,
    pub end: bool,
    /// −dBm0, 0–63.
    pub volume: u8,
    /// In timestamp units.
    pub duration: u16,
}

impl Event {
    pub fn parse(payload: &[u8]) -> Option<Event> {
        let [code, flags, d0, d1, ..] = *payload else {
            return None;
        };
        Some(Event {
            code,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The key for DTMF events 0–15, `None` for other events.
    pub fn digit(self) -> Option<char> {
        b"0123456789*#ABCD"
            .get(self.code as usize)
            .map(|&b| char::from(b))
    }
}

/// Collects the digits of one RTP stream.
#[derive(Debug, Default)]
pub struct DigitCollector {
    digits: String,
    last_timestamp: Option<u32>,
}

impl DigitCollector {
    /// Feed a telephone-event packet's RTP timestamp and payload.
    pub fn push(&mut self, timestamp: u32, payload: &[u8]) {
        let Some(event) = Event::parse(payload) else {
            return;
        };
        if self.last_timestamp == Some(timestamp) {
            return;
        }
        self.last_timestamp = Some(timestamp);
        if let Some(d) = event.digit() {
            self.digits.push(d);
        }
    }

    pub fn digits(&self) -> &str {
        &self.digits
    }
}

/// The keys of events 0–15, in event-code order.
const KEYS: &[u8; 16] = b"0123456789*#ABCD";

/// Event code for a DTMF key (`0-9*#A-D`, case-insensitive), None for anything else.
pub fn event_code(key: char) -> Option<u8> {
    let key = u8::try_from(key.to_ascii_uppercase()).ok()?;
    KEYS.iter().position(|&k| k == key).map(|i| i as u8)
}

/// One RFC 4733 packet to send in the audio stream's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// RTP timestamp: the event's start (the same for all its packets; for an event
    /// longer than the 16-bit duration field, the start of its segment).
    pub timestamp: u32,
    pub marker: bool,
    /// `event | E R volume | duration` (RFC 4733 §2.3).
    pub payload: [u8; 4],
    /// How many copies to send (3 for the final packet, else 1); each copy takes its
    /// own sequence number.
    pub copies: u8,
}

/// Sends queued digits as RFC 4733 events, one packet per audio packet slot. Between
/// events (`gap`) and when idle the stream sends audio; during an event it sends the
/// event instead (audio paused, as real phones do).
#[derive(Clone, Debug, Default)]
pub struct DtmfSender {
    queue: VecDeque<(u8, DtmfTiming)>,
    state: State,
    sent: u64,
}

#[derive(Clone, Copy, Debug, Default)]
enum State {
    #[default]
    Idle,
    Tone(Tone),
    /// Audio slots left before the next digit may start.
    Gap(u64),
}

#[derive(Clone, Copy, Debug)]
struct Tone {
    code: u8,
    volume: u8,
    /// Packets still to send, this slot's included.
    slots_left: u64,
    gap_slots: u64,
    /// Start of the current segment (RFC 4733 §2.5.1.3) and its duration so far.
    segment_timestamp: u32,
    segment_duration: u32,
    first: bool,
}

/// How to send digits: `duration` of each tone, `gap` between tones, `volume` in −dBm0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfTiming {
    pub duration: std::time::Duration,
    pub gap: std::time::Duration,
    pub volume: u8,
}

/// Largest value of the 16-bit duration field.
const MAX_DURATION: u32 = 0xffff;
/// Copies of the final packet (RFC 4733 §2.5.1.4: sent three times in all).
const END_COPIES: u8 = 3;

impl DtmfSender {
    /// Queue digits (already validated with [`event_code`]) after any still queued.
    pub fn queue(&mut self, digits: &str, timing: DtmfTiming) {
        self.queue
            .extend(digits.chars().filter_map(event_code).map(|c| (c, timing)));
    }
    /// True when nothing is queued or being sent.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && !matches!(self.state, State::Tone(_))
    }
    /// The packet for the slot whose audio RTP timestamp is `timestamp`, with
    /// `samples` timestamp units per slot (ptime × clock rate) and `clock_rate` units
    /// per second; None: send audio in this slot.
    pub fn on_slot(
        &mut self,
        timestamp: u32,
        samples: u32,
        clock_rate: u32,
    ) -> Option<EventPacket> {
        let mut tone = match self.state {
            State::Tone(tone) => tone,
            State::Gap(left) if left > 0 => {
                self.state = State::Gap(left - 1);
                return None;
            }
            State::Gap(_) | State::Idle => {
                let Some((code, timing)) = self.queue.pop_front() else {
                    self.state = State::Idle;
                    return None;
                };
                Tone {
                    code,
                    volume: timing.volume & 0x3f,
                    slots_left: slots(timing.duration, samples, clock_rate, false).max(1),
                    gap_slots: slots(timing.gap, samples, clock_rate, true),
                    segment_timestamp: timestamp,
                    segment_duration: 0,
                    first: true,
                }
            }
        };

        // A duration that would overflow the 16-bit field starts a new segment here,
        // where the previous one ended: new timestamp, no marker (RFC 4733 §2.5.1.3).
        if tone.segment_duration > 0
            && tone.segment_duration + samples.min(MAX_DURATION) > MAX_DURATION
        {
            tone.segment_timestamp = timestamp;
            tone.segment_duration = 0;
        }
        tone.segment_duration = tone
            .segment_duration
            .saturating_add(samples)
            .min(MAX_DURATION);
        tone.slots_left -= 1;
        let end = tone.slots_left == 0;
        let marker = tone.first;
        tone.first = false;

        let [d0, d1] = (tone.segment_duration as u16).to_be_bytes();
        let packet = EventPacket {
            timestamp: tone.segment_timestamp,
            marker,
            payload: [tone.code, u8::from(end) << 7 | tone.volume, d0, d1],
            copies: if end { END_COPIES } else { 1 },
        };
        self.state = if end {
            self.sent += 1;
            State::Gap(tone.gap_slots)
        } else {
            State::Tone(tone)
        };
        Some(packet)
    }
    /// Digits whose final packet has been produced.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

/// How many slots of `samples` units `span` lasts: rounded to the nearest, or up.
fn slots(span: std::time::Duration, samples: u32, clock_rate: u32, up: bool) -> u64 {
    let units = span.as_nanos() * u128::from(clock_rate);
    let per_slot = 1_000_000_000 * u128::from(samples.max(1));
    let n = if up {
        units.div_ceil(per_slot)
    } else {
        (units + per_slot / 2) / per_slot
    };
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The key in an INFO body of type `application/dtmf-relay` (`Signal=5`), or
/// `application/dtmf` (just the key).
pub fn key_from_info(content_type: &str, body: &[u8]) -> Option<char> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        body.split(|&b| b == b'\n').find_map(|line| {
            let (name, value) = split_once(line, |b| b == b'=' || b == b':')?;
            name.trim_ascii()
                .eq_ignore_ascii_case(b"signal")
                .then(|| parse_key(value.trim_ascii()))
                .flatten()
        })
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        parse_key(body.trim_ascii())
    } else {
        None
    }
}

fn split_once(line: &[u8], at: impl Fn(u8) -> bool) -> Option<(&[u8], &[u8])> {
    let i = line.iter().position(|&b| at(b))?;
    Some((line.get(..i)?, line.get(i + 1..)?))
}

/// A key as written (`5`, `*`, `a`) or as its event code (`10` for `*`, `11` for `#`).
fn parse_key(value: &[u8]) -> Option<char> {
    if let [key] = value
        && let Some(code) = event_code(char::from(*key))
    {
        return KEYS.get(usize::from(code)).map(|&k| char::from(k));
    }
    if value.is_empty() || value.len() > 3 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = value
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    KEYS.get(code).map(|&k| char::from(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_payload() {
        let e = Event::parse(&[11, 0x80 | 10, 0x03, 0x20]).unwrap();
        assert_eq!(
            e,
            Event {
                code: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(e.digit(), Some('#'));
        assert_eq!(Event::parse(&[1, 2, 3]), None);
        assert_eq!(Event::parse(&[16, 0, 0, 0]).unwrap().digit(), None);
    }

    #[test]
    fn one_digit_per_event_whatever_the_repeats() {
        let mut c = DigitCollector::default();
        for (ts, code, end) in [
            (100, 1, false),
            (100, 1, false),
            (100, 1, true),
            (100, 1, true),
            (100, 1, true),
            (900, 2, false),
            (900, 2, true),
            (1700, 11, true),
        ] {
            c.push(ts, &[code, if end { 0x80 } else { 0 }, 0, 160]);
        }
        c.push(2000, &[]);
        assert_eq!(c.digits(), "12#");
    }

    const MS: std::time::Duration = std::time::Duration::from_millis(1);

    fn timing(duration_ms: u32, gap_ms: u32) -> DtmfTiming {
        DtmfTiming {
            duration: MS * duration_ms,
            gap: MS * gap_ms,
            volume: 10,
        }
    }

    /// Drive `slots` slots of 160 units at 8000 Hz from timestamp `ts0`.
    fn run(sender: &mut DtmfSender, ts0: u32, slots: u32) -> Vec<(u32, Option<EventPacket>)> {
        (0..slots)
            .map(|k| {
                let ts = ts0.wrapping_add(160 * k);
                (ts, sender.on_slot(ts, 160, 8000))
            })
            .collect()
    }

    fn duration(p: &EventPacket) -> u16 {
        u16::from_be_bytes([p.payload[2], p.payload[3]])
    }

    #[test]
    fn key_codes() {
        let keys: String = (0..16).map(|c| char::from(KEYS[c])).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        for (i, k) in keys.chars().enumerate() {
            assert_eq!(event_code(k), Some(i as u8));
            assert_eq!(event_code(k.to_ascii_lowercase()), Some(i as u8));
        }
        for k in ['e', 'E', ' ', 'é', '\u{0}', '+'] {
            assert_eq!(event_code(k), None, "{k:?}");
        }
    }

    #[test]
    fn two_digits_100ms_tone_100ms_gap() {
        let mut s = DtmfSender::default();
        assert!(s.is_idle());
        assert_eq!(s.on_slot(0, 160, 8000), None);
        s.queue("12", timing(100, 100));
        assert!(!s.is_idle());
        let out = run(&mut s, 1000, 20);

        // '1': five packets at the first slot's timestamp, durations 160..800.
        for (k, (_, p)) in out[..5].iter().enumerate() {
            let p = p.expect("event packet");
            assert_eq!(p.timestamp, 1000);
            assert_eq!(p.marker, k == 0);
            let end = k == 4;
            assert_eq!(p.payload, {
                let [d0, d1] = (160 * (k as u16 + 1)).to_be_bytes();
                [1, if end { 0x80 } else { 0 } | 10, d0, d1]
            });
            assert_eq!(p.copies, if end { 3 } else { 1 });
        }
        // 100 ms of audio.
        assert!(out[5..10].iter().all(|(_, p)| p.is_none()));
        // '2' at its own slot's timestamp.
        let (ts, p) = out[10];
        let p = p.unwrap();
        assert_eq!(
            (p.timestamp, ts, p.marker, p.payload[0]),
            (ts, 1000 + 1600, true, 2)
        );
        assert!(out[11..15].iter().all(|(_, p)| p.unwrap().timestamp == ts));
        assert_eq!(out[14].1.unwrap().payload[1], 0x80 | 10);
        assert_eq!(duration(&out[14].1.unwrap()), 800);
        assert!(out[15..].iter().all(|(_, p)| p.is_none()));
        assert_eq!(s.sent(), 2);
        assert!(s.is_idle());
    }

    #[test]
    fn sent_counts_only_finished_digits() {
        let mut s = DtmfSender::default();
        s.queue("9", timing(60, 0));
        run(&mut s, 0, 2);
        assert_eq!(s.sent(), 0);
        assert!(!s.is_idle());
        run(&mut s, 320, 1);
        assert_eq!(s.sent(), 1);
        assert!(s.is_idle());
    }

    #[test]
    fn rounding_and_zero_gap() {
        // 50 ms at 20 ms slots rounds to 3 slots (2.5 → 3); 30 ms rounds to 2 (1.5 →
        // 2); 1 ms still sends one packet; a 0 gap starts the next digit at once.
        let mut s = DtmfSender::default();
        s.queue("#", timing(50, 0));
        s.queue("*", timing(30, 0));
        s.queue("d", timing(1, 0));
        let out = run(&mut s, 0, 7);
        let codes: Vec<_> = out.iter().map(|(_, p)| p.map(|p| p.payload[0])).collect();
        assert_eq!(
            codes,
            vec![
                Some(11),
                Some(11),
                Some(11),
                Some(10),
                Some(10),
                Some(15),
                None
            ]
        );
        assert_eq!(out[3].1.unwrap().timestamp, 480);
        assert!(out[3].1.unwrap().marker);
        assert_eq!(duration(&out[5].1.unwrap()), 160);
        assert_eq!(out[5].1.unwrap().copies, 3);
        // A gap of 1 ms still takes a whole slot of audio.
        let mut s = DtmfSender::default();
        s.queue("12", timing(20, 1));
        let out = run(&mut s, 0, 3);
        assert!(out[0].1.is_some() && out[1].1.is_none() && out[2].1.is_some());
    }

    #[test]
    fn volume_keeps_six_bits_and_invalid_digits_are_skipped() {
        let mut s = DtmfSender::default();
        s.queue(
            "x5",
            DtmfTiming {
                volume: 0xff,
                ..timing(20, 0)
            },
        );
        let p = s.on_slot(0, 160, 8000).unwrap();
        assert_eq!(p.payload, [5, 0x80 | 0x3f, 0, 160]);
        assert!(s.is_idle());
    }

    #[test]
    fn digits_queued_during_a_gap_wait_for_it() {
        let mut s = DtmfSender::default();
        s.queue("1", timing(20, 60));
        assert!(s.on_slot(0, 160, 8000).is_some());
        assert!(s.is_idle());
        s.queue("2", timing(20, 60));
        let out = run(&mut s, 160, 4);
        assert!(out[..3].iter().all(|(_, p)| p.is_none()));
        assert_eq!(out[3].1.unwrap().timestamp, 640);
    }

    #[test]
    fn long_events_are_segmented() {
        // 10 s at 8000 Hz is 80,000 units: more than the 16-bit duration field holds.
        let mut s = DtmfSender::default();
        s.queue("0", timing(10_000, 0));
        let out = run(&mut s, u32::MAX - 1000, 500);
        let packets: Vec<_> = out.iter().map(|(_, p)| p.unwrap()).collect();
        // 65535 / 160 = 409.6: the first segment holds 409 slots (65,440 units).
        let first = &packets[..409];
        assert!(first.iter().all(|p| p.timestamp == u32::MAX - 1000));
        assert_eq!(duration(&first[408]), 65_440);
        assert_eq!(first[408].payload[1] & 0x80, 0);
        assert_eq!(first[408].copies, 1);
        // The second starts where the first ended, without a marker, counting again.
        let second = &packets[409..];
        let ts = (u32::MAX - 1000).wrapping_add(65_440);
        assert_eq!(out[409].0, ts);
        assert!(second.iter().all(|p| p.timestamp == ts && !p.marker));
        assert_eq!(duration(&second[0]), 160);
        let last = second.last().unwrap();
        assert_eq!(duration(last), 91 * 160);
        assert_eq!((last.payload[1] & 0x80, last.copies), (0x80, 3));
        assert_eq!(s.sent(), 1);
        assert_eq!(packets.iter().filter(|p| p.marker).count(), 1);
    }

    #[test]
    fn odd_slot_sizes_do_not_panic() {
        let mut s = DtmfSender::default();
        s.queue("123", timing(100, 100));
        for ts in 0..20 {
            let _ = s.on_slot(ts, 0, 0);
            let _ = s.on_slot(ts, u32::MAX, u32::MAX);
        }
        s.queue(
            "4",
            DtmfTiming {
                duration: std::time::Duration::MAX,
                gap: std::time::Duration::MAX,
                volume: 0,
            },
        );
        for ts in 0..5 {
            let _ = s.on_slot(ts, 1, u32::MAX);
        }
    }

    #[test]
    fn info_bodies() {
        let relay = "application/dtmf-relay";
        assert_eq!(
            key_from_info(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(key_from_info(relay, b"Signal=*\r\nDuration=160"), Some('*'));
        assert_eq!(key_from_info(relay, b"Signal=#"), Some('#'));
        assert_eq!(key_from_info(relay, b"Signal=10\r\n"), Some('*'));
        assert_eq!(key_from_info(relay, b"Signal=11\r\n"), Some('#'));
        assert_eq!(key_from_info(relay, b"Signal=12"), Some('A'));
        assert_eq!(key_from_info(relay, b"Signal=d"), Some('D'));
        assert_eq!(
            key_from_info(
                "Application/DTMF-Relay ; charset=utf-8",
                b"duration = 250\n  SIGNAL =  7 \n"
            ),
            Some('7')
        );
        assert_eq!(key_from_info(relay, b"Signal=16"), None);
        assert_eq!(key_from_info(relay, b"Signal=E"), None);
        assert_eq!(key_from_info(relay, b"Signal="), None);
        assert_eq!(key_from_info(relay, b"Duration=160"), None);
        assert_eq!(key_from_info(relay, b"Signal=99999999999999999999"), None);
        assert_eq!(key_from_info(relay, b"\xff\xfe=\xff"), None);
        assert_eq!(key_from_info("application/dtmf", b"9"), Some('9'));
        assert_eq!(key_from_info("APPLICATION/DTMF", b" b\r\n"), Some('B'));
        assert_eq!(key_from_info("application/dtmf", b"11"), Some('#'));
        assert_eq!(key_from_info("application/dtmf", b"Signal=1"), None);
        assert_eq!(key_from_info("text/plain", b"Signal=1"), None);
        assert_eq!(key_from_info("", b""), None);
    }
}

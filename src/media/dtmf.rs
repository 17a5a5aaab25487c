//! RFC 4733 telephone-event payloads (DTMF): decoding, and turning a packet stream
//! into the digits it carried.
//!
//! All packets of one event carry the event's start timestamp; the final ones have
//! the E bit set and are usually sent three times. An event is therefore counted once
//! per RTP timestamp, whichever of its packets arrive.

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

/// Event code for a DTMF key (`0-9*#A-D`, case-insensitive), None for anything else.
pub fn event_code(_key: char) -> Option<u8> {
    todo!()
}

/// One RFC 4733 packet to send in the audio stream's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// RTP timestamp: the event's start (the same for all its packets).
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
/// CONTRACT STUB: implemented by the media-core work; signatures are fixed.
#[derive(Clone, Debug, Default)]
pub struct DtmfSender {
    _private: (),
}

/// How to send digits: `duration` of each tone, `gap` between tones, `volume` in −dBm0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfTiming {
    pub duration: std::time::Duration,
    pub gap: std::time::Duration,
    pub volume: u8,
}

impl DtmfSender {
    /// Queue digits (already validated with [`event_code`]) after any still queued.
    pub fn queue(&mut self, _digits: &str, _timing: DtmfTiming) {
        todo!()
    }
    /// True when nothing is queued or being sent.
    pub fn is_idle(&self) -> bool {
        todo!()
    }
    /// The packet for the slot whose audio RTP timestamp is `timestamp`, with
    /// `samples` timestamp units per slot (ptime × clock rate) and `clock_rate` units
    /// per second; None: send audio in this slot.
    pub fn on_slot(
        &mut self,
        _timestamp: u32,
        _samples: u32,
        _clock_rate: u32,
    ) -> Option<EventPacket> {
        todo!()
    }
    /// Digits whose final packet has been produced.
    pub fn sent(&self) -> u64 {
        todo!()
    }
}

/// The key in an INFO body of type `application/dtmf-relay` (`Signal=5`), or
/// `application/dtmf` (just the key).
pub fn key_from_info(_content_type: &str, _body: &[u8]) -> Option<char> {
    todo!()
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
}

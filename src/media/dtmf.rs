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

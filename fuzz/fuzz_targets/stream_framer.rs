//! Arbitrary bytes through the SIP stream framer (TCP/TLS), pushed in chunks whose
//! sizes come from the input, with a limit from the input. Checks: no panic; every
//! message range lies in the buffer, within the limit, and parses as a message; an
//! error is final; and the items do not depend on how the bytes were chunked or when
//! `consume` was called (compared with the same bytes pushed in one piece).
//!
//! Input layout: byte 0 sets the limit, byte 1 the number `n` (0..16) of the chunk
//! size bytes that follow (each 1..=256, used in turn), then a flags byte (bit 0:
//! consume after every item rather than after every chunk; bit 1: tell the framer a
//! ping of ours is out before the first chunk), then the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::sip::message;
use sipwright::transport::framing::{Framed, FramerLimits, FramingError, StreamFramer};

#[derive(Debug, PartialEq, Eq)]
enum Item {
    Message(Vec<u8>),
    Ping,
    Pong,
}

/// Items until the framer waits or fails; `Err` is final.
fn drain(
    f: &mut StreamFramer,
    limit: usize,
    consume_each: bool,
    out: &mut Vec<Item>,
) -> Result<(), FramingError> {
    loop {
        let item = match f.next_item()? {
            None => return Ok(()),
            Some(Framed::Message(r)) => {
                assert!(r.start < r.end && r.end <= f.buffer().len(), "{r:?}");
                assert!(r.len() <= limit, "{} > {limit}", r.len());
                let bytes = &f.buffer()[r];
                let m = message::parse(bytes).expect("a framed message parses");
                assert_eq!(m.raw.len(), bytes.len(), "framer and parser disagree");
                Item::Message(bytes.to_vec())
            }
            Some(Framed::Ping) => Item::Ping,
            Some(Framed::Pong) => Item::Pong,
        };
        out.push(item);
        if consume_each {
            f.consume();
        }
    }
}

fn sticky(f: &mut StreamFramer, e: &FramingError) {
    assert_eq!(f.next_item().as_ref(), Err(e));
    assert_eq!(f.push(b"OPTIONS").as_ref(), Err(e));
}

fuzz_target!(|data: &[u8]| {
    let [limit, n, rest @ ..] = data else {
        return;
    };
    let limit = 16 + usize::from(*limit) * 16;
    let n = usize::from(*n % 16);
    let Some((sizes, [flags, stream @ ..])) = rest.split_at_checked(n) else {
        return;
    };
    let consume_each = flags & 1 != 0;
    let pong_expected = flags & 2 != 0;
    let limits = FramerLimits { max_message: limit };

    let mut f = StreamFramer::new(limits);
    if pong_expected {
        f.expect_pong();
    }
    let mut chunked = Vec::new();
    let mut result = Ok(());
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() && result.is_ok() {
        let size = sizes
            .get(i % n.max(1))
            .map_or(stream.len(), |&s| usize::from(s) + 1);
        i += 1;
        let chunk = &stream[at..stream.len().min(at + size)];
        at += chunk.len();
        result = f
            .push(chunk)
            .and_then(|()| drain(&mut f, limit, consume_each, &mut chunked));
        f.consume();
    }
    if let Err(e) = &result {
        sticky(&mut f, e);
    }

    // A lone CRLF at the end of a chunk is a pong only when one is expected, so
    // chunking matters then; otherwise it must not.
    if !pong_expected {
        let mut whole = StreamFramer::new(limits);
        let mut once = Vec::new();
        let whole_result = whole
            .push(stream)
            .and_then(|()| drain(&mut whole, limit, false, &mut once));
        assert_eq!(once, chunked);
        assert_eq!(whole_result, result);
    }
    f.reset();
    assert_eq!(f.buffered(), 0);
});

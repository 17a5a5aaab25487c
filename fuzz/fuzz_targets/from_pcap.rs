//! Feeds arbitrary bytes to `scenario from-pcap`'s converter. The first byte picks
//! the options (bit 0: `--exact`, bit 1: pauses, bit 2: how the rest is read) and a
//! Call-ID to ask for (bit 3); the rest is either a capture file as it is, or SIP
//! messages (split at `|||`) put into a capture as UDP datagrams going back and forth
//! between two endpoints, 30 ms apart — so that the fuzzer reaches the templating
//! with message bytes it chose rather than with pcap framing. Any panic is a bug; so
//! is an `Internal` error: a scenario written that does not give the captured bytes
//! back.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use sipwright::from_pcap::{FromPcapError, Options, convert};
use sipwright::report::pcap::{write_global_header, write_udp_record};

fn capture_of(messages: &[u8]) -> Vec<u8> {
    let (a, b) = (
        "10.0.0.1:5060".parse().unwrap(),
        "10.0.0.2:5070".parse().unwrap(),
    );
    let mut out = Vec::new();
    write_global_header(&mut out);
    let mut rest = messages;
    let mut i = 0u64;
    loop {
        let (msg, next) = match rest.windows(3).position(|w| w == b"|||") {
            Some(at) => (&rest[..at], Some(&rest[at + 3..])),
            None => (rest, None),
        };
        let (src, dst) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let ts = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + 30 * i);
        write_udp_record(&mut out, ts, src, dst, msg);
        i += 1;
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let opts = Options {
        exact: flags & 1 != 0,
        pauses: flags & 2 != 0,
        source: "fuzz.pcap".into(),
        uac_file: "uac.yaml".into(),
        uas_file: "uas.yaml".into(),
    };
    let built;
    let capture = if flags & 4 != 0 {
        built = capture_of(rest);
        &built[..]
    } else {
        rest
    };
    let call_id = (flags & 8 != 0).then_some("c1@10.0.0.1");
    match convert(capture, call_id, &opts) {
        Err(e @ FromPcapError::Internal(_)) => panic!("{e}"),
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(pair) => {
            assert!(!pair.uac.is_empty() && !pair.uas.is_empty());
        }
    }
});

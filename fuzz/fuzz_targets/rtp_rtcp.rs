//! Arbitrary bytes through the media packet layer: RTP parsing (and writing back what
//! parsed), RTCP compound parsing with every report block decoded, receive statistics
//! fed with packets whose fields come from the bytes (arrival times going back and
//! forth), the DTMF sender on slots sized from the bytes, and INFO bodies. Any panic
//! is a bug.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sipwright::media::dtmf::{self, DtmfSender, DtmfTiming};
use sipwright::media::rtcp::{self, ReportBlock, Rtcp};
use sipwright::media::rtp::{self, Packet};
use sipwright::media::stats::ReceiveStats;

const CONTENT_TYPES: [&str; 4] = [
    "application/dtmf-relay",
    "Application/DTMF",
    " application/dtmf-relay;charset=x ",
    "text/plain",
];

fn rtp(data: &[u8]) {
    let _ = rtp::is_rtcp(data);
    let Ok(p) = Packet::parse(data) else {
        return;
    };
    let ext = p.extension.map_or(0, |(_, d)| 4 + d.len());
    assert_eq!(
        rtp::HEADER_LEN + p.csrc.len() + ext + p.payload.len() + usize::from(p.padding),
        data.len()
    );
    assert_eq!(p.csrcs().count() * 4, p.csrc.len());
    let mut out = Vec::new();
    rtp::write_packet(&mut out, &p.header, p.payload);
    let again = Packet::parse(&out).expect("own RTP packet");
    assert_eq!((again.header, again.payload), (p.header, p.payload));
}

fn rtcp(data: &[u8]) {
    let mut items = rtcp::parse_compound(data);
    let mut failed = false;
    for item in items.by_ref() {
        assert!(!failed, "an item after an error");
        match item {
            Ok(Rtcp::SenderReport { reports, .. } | Rtcp::ReceiverReport { reports, .. }) => {
                let n = reports.len();
                assert_eq!(reports.count(), n);
                for b in reports {
                    assert!((-0x80_0000..=0x7f_ffff).contains(&b.cumulative_lost));
                    let _ = rtcp::round_trip(b.highest_sequence, b.lsr, b.dlsr);
                }
            }
            Ok(_) => {}
            Err(_) => failed = true,
        }
    }
    assert!(items.next().is_none());

    // Fields from the bytes written as a compound packet must parse back the same.
    let word = |i: usize| {
        let b = |j: usize| data.get(i * 4 + j).copied().unwrap_or(0);
        u32::from_be_bytes([b(0), b(1), b(2), b(3)])
    };
    let block = ReportBlock {
        ssrc: word(0),
        fraction_lost: word(1) as u8,
        cumulative_lost: (word(2) as i32) >> 8,
        highest_sequence: word(3),
        jitter: word(4),
        lsr: word(5),
        dlsr: word(6),
    };
    let cname = data.get(..data.len().min(300)).unwrap_or_default();
    let mut out = Vec::new();
    rtcp::write_rr(&mut out, word(7), &[block]);
    rtcp::write_sdes_cname(&mut out, word(8), cname);
    rtcp::write_bye(&mut out, word(9));
    let items: Vec<_> = rtcp::parse_compound(&out).collect();
    let [
        Ok(Rtcp::ReceiverReport { ssrc, reports }),
        Ok(Rtcp::Sdes { cname: Some(c), .. }),
        Ok(Rtcp::Bye { .. }),
    ] = items[..]
    else {
        panic!("own compound packet: {items:?}");
    };
    assert_eq!(ssrc, word(7));
    assert_eq!(reports.collect::<Vec<_>>(), vec![block]);
    assert_eq!(c, &cname[..cname.len().min(255)]);
}

fn stats(data: &[u8]) {
    let Some((&rate, records)) = data.split_first() else {
        return;
    };
    let clock_rate = [0, 8000, 16_000, 48_000, 90_000, u32::MAX][usize::from(rate) % 6];
    let mut s = ReceiveStats::new(clock_rate);
    let base = Instant::now();
    let mut offset_ms: i64 = 0;
    for r in records.chunks_exact(9) {
        let sequence = u16::from_be_bytes([r[0], r[1]]);
        let timestamp = u32::from_be_bytes([r[2], r[3], r[4], r[5]]);
        offset_ms += i64::from(i16::from_be_bytes([r[6], r[7]]));
        let delta = Duration::from_millis(offset_ms.unsigned_abs());
        let arrival = if offset_ms >= 0 {
            base.checked_add(delta)
        } else {
            base.checked_sub(delta)
        };
        let Some(arrival) = arrival else {
            continue;
        };
        s.on_packet(
            sequence,
            timestamp,
            arrival,
            usize::from(r[8]),
            r[8] & 1 == 0,
        );
        if r[8] & 0x80 != 0 {
            let b = s.report_block(1, timestamp, 0);
            assert!((-0x80_0000..=0x7f_ffff).contains(&b.cumulative_lost));
        }
        assert!(s.lost() <= s.expected());
        assert!(s.duplicates() + s.out_of_order() <= s.packets());
        let _ = (
            s.jitter(),
            s.jitter_units(),
            s.max_gap(),
            s.last_arrival(),
            s.bytes(),
        );
    }
}

fn dtmf(data: &[u8]) {
    let Some((&select, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(select) % CONTENT_TYPES.len()];
    if let Some(key) = dtmf::key_from_info(content_type, body) {
        assert!(dtmf::event_code(key).is_some());
    }

    let [a, b, c, d, rest @ ..] = data else {
        return;
    };
    let timing = DtmfTiming {
        duration: Duration::from_millis(u64::from(*a) * 8),
        gap: Duration::from_millis(u64::from(*b) * 4),
        volume: *c,
    };
    let samples = [0, 1, 80, 160, 320, 65_535, u32::MAX][usize::from(*d) % 7];
    let clock_rate = [0, 8000, 48_000, u32::MAX][usize::from(*d >> 4) % 4];
    let mut sender = DtmfSender::default();
    sender.queue(&String::from_utf8_lossy(rest), timing);
    let mut timestamp = u32::from(*a) << 24;
    for _ in 0..256 {
        if let Some(p) = sender.on_slot(timestamp, samples, clock_rate) {
            assert!(p.copies == 1 || p.copies == 3);
            assert_eq!(p.payload[1] & 0x40, 0);
        }
        timestamp = timestamp.wrapping_add(samples);
    }
    let _ = (sender.sent(), sender.is_idle());
}

fuzz_target!(|data: &[u8]| {
    rtp(data);
    rtcp(data);
    stats(data);
    dtmf(data);
});

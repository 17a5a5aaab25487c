//! Feeds arbitrary bytes through the capture module the way `srtp decrypt` uses it:
//! the reader, `decode` of every frame, the defragmenter, TCP stream reassembly into SIP
//! messages, `replace_udp_payload` and the writer; then reads the writer's output back.
//! The same bytes are also decoded as one bare frame of every link type. Any panic, or
//! a writer output that does not read back with as many frames, is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::capture::{
    CaptureReader, CaptureWriter, Defragmenter, L4, Reassembly, decode, replace_udp_payload,
};

const LINKTYPES: [u32; 11] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147];

fuzz_target!(|data: &[u8]| {
    let mut defrag = Defragmenter::new(1 << 16, 1_000_000_000);
    let mut reassembly = Reassembly::new(1 << 16, 1_000_000_000);
    let mut sip = Vec::new();
    let mut buf = Vec::new();

    for (i, linktype) in LINKTYPES.into_iter().enumerate() {
        match decode(linktype, data) {
            Ok(p) if p.l4 == L4::Fragment => {
                let _ = defrag.push(i as u64, linktype, data);
            }
            Ok(p) => {
                if let L4::Udp { payload, .. } = p.l4 {
                    replace_udp_payload(data, &p, &payload[..payload.len() / 2], &mut buf)
                        .expect("a decoded UDP frame can be rewritten");
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    let Ok(mut reader) = CaptureReader::new(data) else {
        return;
    };
    let mut writer = CaptureWriter::new(Vec::new(), &reader).expect("writer for a valid reader");
    let mut frames = 0u64;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        };
        frames += 1;
        assert_eq!(frame.index, frames);
        let mut data_out: &[u8] = frame.data;
        if let Ok(p) = decode(frame.linktype, frame.data) {
            match p.l4 {
                L4::Udp { payload, .. } => {
                    let new = &payload[..payload.len() / 2];
                    replace_udp_payload(frame.data, &p, new, &mut buf)
                        .expect("a decoded UDP frame can be rewritten");
                    let again = decode(frame.linktype, &buf).expect("rewritten frame decodes");
                    assert!(matches!(again.l4, L4::Udp { payload, .. } if payload == new));
                    data_out = &buf;
                }
                _ => {
                    let _ = reassembly.push(&frame, &p, &mut sip);
                }
            }
        }
        writer
            .write_frame(&frame, data_out)
            .expect("frames the reader gave can be written");
    }
    let out = writer.finish().expect("finish into a Vec");
    let mut again = CaptureReader::new(&out[..]).expect("the writer's output is a capture");
    let mut n = 0;
    while again
        .next_frame()
        .expect("the writer's output reads cleanly")
        .is_some()
    {
        n += 1;
    }
    assert_eq!(n, frames);
});

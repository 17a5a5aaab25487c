//! Feeds arbitrary bytes through SDP offer/answer: `remote_media`, `negotiate` (as
//! answerer and as offerer) against a fixed local configuration, then `write_answer`
//! and `write_answer_to_offer`, whose output must read back with what was agreed.
//! Any panic is a bug.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sipwright::sdp::Direction;
use sipwright::sdp::negotiate::{
    Codec, LocalMedia, negotiate, remote_media, write_answer, write_answer_to_offer,
};

fn local() -> LocalMedia {
    let codec = |name: &str, payload_type, clock_rate| Codec {
        name: name.into(),
        payload_type,
        clock_rate,
    };
    LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        rtp_port: 20000,
        rtcp_port: Some(20001),
        rtcp_mux: true,
        codecs: vec![
            codec("PCMU", 0, 8000),
            codec("PCMA", 8, 8000),
            codec("opus", 111, 48000),
        ],
        telephone_event: Some(101),
        ptime: Duration::from_millis(20),
        direction: Direction::SendRecv,
        ssrc: Some(1),
        srtp: None,
        session_id: 1,
        session_version: 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(remote) = remote_media(&text) else {
        return;
    };
    let local = local();
    for we_offered in [false, true] {
        let Ok(agreed) = negotiate(&local, &remote, we_offered) else {
            continue;
        };
        assert!(agreed.codec.payload_type <= 127);
        let mut out = Vec::new();
        write_answer(&local, &agreed, &mut out);
        let answer = String::from_utf8(out).expect("answer is ASCII");
        let back = remote_media(&answer).expect("our answer reads back");
        assert_eq!(back.codecs[0].payload_type, agreed.codec.payload_type);
        assert_eq!(back.telephone_event, agreed.telephone_event);

        let mut out = Vec::new();
        write_answer_to_offer(&local, &agreed, &text, &mut out);
        let answer = String::from_utf8(out).expect("answer is ASCII");
        let back = remote_media(&answer).expect("our positional answer reads back");
        assert_eq!(back.codecs[0].payload_type, agreed.codec.payload_type);
    }
});

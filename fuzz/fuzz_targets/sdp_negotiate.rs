//! Feeds arbitrary bytes through SDP offer/answer: `remote_media`, `negotiate` (as
//! answerer and as offerer) against fixed local configurations (plain, and SDES-SRTP
//! best effort and required), then `write_answer` and `write_answer_to_offer`, whose
//! output must read back with what was agreed, crypto line included. Any panic is a bug.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sipwright::sdp::Direction;
use sipwright::sdp::negotiate::{
    Codec, LocalMedia, negotiate, remote_media, write_answer, write_answer_to_offer,
};
use sipwright::sdp::sdes::{LocalSrtp, SdesKey, SrtpPolicy};
use sipwright::srtp::{MasterKey, Suite};

/// One key per suite, tags 1.., some with an MKI and a KDR.
fn srtp(policy: SrtpPolicy) -> LocalSrtp {
    let keys = Suite::ALL
        .iter()
        .zip(1u32..)
        .map(|(&suite, tag)| {
            let n = suite.master_key_len() + suite.master_salt_len();
            let mut key = MasterKey::from_key_salt(suite, &vec![tag as u8; n]).unwrap();
            if tag % 2 == 0 {
                key.mki = Some(vec![0, tag as u8]);
                key.kdr = 1 << 16;
            }
            SdesKey { tag, key }
        })
        .collect();
    LocalSrtp { policy, keys }
}

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
    let locals = [
        local(),
        LocalMedia {
            srtp: Some(srtp(SrtpPolicy::BestEffort)),
            ..local()
        },
        LocalMedia {
            srtp: Some(srtp(SrtpPolicy::Required)),
            ..local()
        },
    ];
    for (local, we_offered) in locals.iter().flat_map(|l| [(l, false), (l, true)]) {
        let Ok(agreed) = negotiate(local, &remote, we_offered) else {
            continue;
        };
        assert!(agreed.codec.payload_type <= 127);
        let mut out = Vec::new();
        write_answer(local, &agreed, &mut out);
        let answer = String::from_utf8(out).expect("answer is ASCII");
        let back = remote_media(&answer).expect("our answer reads back");
        assert_eq!(back.codecs[0].payload_type, agreed.codec.payload_type);
        assert_eq!(back.telephone_event, agreed.telephone_event);
        match &agreed.srtp {
            Some(s) => {
                assert!(local.srtp.is_some(), "SRTP agreed without our srtp setting");
                assert_eq!(back.savp, s.savp);
                assert_eq!(back.crypto.len(), 1);
                assert_eq!(back.crypto[0].tag, s.tag);
                assert_eq!(back.crypto[0].keys, std::slice::from_ref(&s.local));
                assert_eq!(s.remote.suite, s.suite);
            }
            None => assert!(!back.savp && back.crypto.is_empty()),
        }

        let mut out = Vec::new();
        write_answer_to_offer(local, &agreed, &text, &mut out);
        let answer = String::from_utf8(out).expect("answer is ASCII");
        let back = remote_media(&answer).expect("our positional answer reads back");
        assert_eq!(back.codecs[0].payload_type, agreed.codec.payload_type);
    }
});

//! Microbenchmarks of the per-message hot path: parsing, template rendering and
//! building an ACK. Run with `cargo bench --bench micro`.

use sipwright::scenario::builtin;
use sipwright::scenario::compile_str;
use sipwright::scenario::plan::{SendSpec, SendStep, StepKind};
use sipwright::scenario::template::{Builtin, SimpleContext};
use sipwright::sip::{build, message};

fn main() {
    divan::main();
}

const INVITE: &[u8] = b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1a2b3c4d.1.1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"sipwright\" <sip:sipwright@127.0.0.1:5070>;tag=1.1a2b3c4d\r\n\
To: <sip:service@127.0.0.1:5060>\r\n\
Call-ID: 1-1a2b3c4d@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipwright@127.0.0.1:5070>\r\n\
Subject: sipwright call 1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 161\r\n\r\n\
v=0\r\no=sipwright 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 10002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

const RESPONSE: &[u8] = b"SIP/2.0 486 Busy Here\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1a2b3c4d.1.1;rport=5070;received=127.0.0.1\r\n\
From: \"sipwright\" <sip:sipwright@127.0.0.1:5070>;tag=1.1a2b3c4d\r\n\
To: <sip:service@127.0.0.1:5060>;tag=busy\r\n\
Call-ID: 1-1a2b3c4d@127.0.0.1\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

#[divan::bench]
fn parse_invite() -> usize {
    message::parse(divan::black_box(INVITE))
        .map(|m| m.headers.len())
        .unwrap_or(0)
}

#[divan::bench]
fn parse_invite_and_read_routing_headers() -> Option<u32> {
    let m = message::parse(divan::black_box(INVITE)).ok()?;
    let _ = m.top_via()?.branch?;
    let _ = m.call_id()?;
    let _ = m.to()?.tag();
    Some(m.cseq()?.seq)
}

#[divan::bench]
fn build_ack_for_486(bencher: divan::Bencher) {
    let invite = message::parse(INVITE).unwrap();
    let resp = message::parse(RESPONSE).unwrap();
    let mut out = Vec::with_capacity(512);
    bencher.bench_local(|| {
        out.clear();
        build::non2xx_ack(&invite, &resp, &mut out);
        out.len()
    });
}

#[divan::bench]
fn render_uac_invite(bencher: divan::Bencher) {
    let b = builtin::get("uac").unwrap();
    let plan = compile_str("uac", b.text, &[]).unwrap();
    let Some(StepKind::Send(SendSpec {
        what: SendStep::Message(t),
        ..
    })) = plan.steps.first().map(|s| &s.kind)
    else {
        panic!("uac starts with a message")
    };
    let mut ctx = SimpleContext::default()
        .with_builtin(Builtin::CallId, "1-1a2b3c4d@127.0.0.1")
        .with_builtin(Builtin::Branch, "z9hG4bK1a2b3c4d.1.1")
        .with_builtin(Builtin::LocalIp, "127.0.0.1")
        .with_builtin(Builtin::LocalPort, "5070")
        .with_builtin(Builtin::RemoteIp, "127.0.0.1")
        .with_builtin(Builtin::RemotePort, "5060")
        .with_builtin(Builtin::Transport, "UDP")
        .with_builtin(Builtin::FromTag, "1.1a2b3c4d")
        .with_builtin(Builtin::Cseq, "1")
        .with_builtin(Builtin::CallNumber, "1")
        .with_builtin(Builtin::MediaIp, "127.0.0.1")
        .with_builtin(Builtin::MediaPort, "10002");
    ctx.vars = plan.vars.iter().map(|v| v.initial.clone()).collect();
    let mut out = Vec::with_capacity(1024);
    bencher.bench_local(|| {
        out.clear();
        t.render(&mut ctx, &mut out);
        out.len()
    });
}

/// One Digest response with qop=auth and its Authorization header (target: ≤ 2 µs
/// for MD5), as answering a 401/407 costs per call.
#[divan::bench(args = ["MD5", "SHA-256"])]
fn digest_response(bencher: divan::Bencher, algorithm: &str) {
    use sipwright::sip::digest::{self, Credentials, Request};
    let value = format!(
        "Digest realm=\"sip.example.com\", nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         qop=\"auth\", algorithm={algorithm}, opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    );
    let ch = digest::parse_challenge(&value).unwrap();
    let creds = Credentials {
        username: "alice",
        password: "secret",
    };
    let req = Request {
        method: "INVITE",
        uri: "sip:service@127.0.0.1:5060",
        body: b"",
    };
    let mut out = Vec::with_capacity(512);
    bencher.bench_local(|| {
        out.clear();
        digest::write_authorization(
            &mut out,
            divan::black_box(&ch),
            &creds,
            &req,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        out.len()
    });
}

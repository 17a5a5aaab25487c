//! Arbitrary bytes through SIP-over-WebSocket sessions: as frames to a server session
//! upgraded with a fixed request and to a client session upgraded through a server,
//! split into reads whose size comes from the first byte; and raw, as the upgrade
//! request a server parses and the upgrade response a client parses. After each read
//! the session must still be usable (send, ping, close). Any panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::transport::websocket::{MAX_MESSAGE_SIZE, WsClientSettings, WsError, WsSession};

const REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: proxy.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: https://www.example.com\r\nSec-WebSocket-Protocol: sip\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

const SIP: &[u8] = b"OPTIONS sip:proxy.example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n";

fn new_client() -> WsSession {
    let settings = WsClientSettings {
        host: "proxy.example.com".into(),
        path: "/ws".into(),
        origin: None,
    };
    WsSession::client(&settings).expect("fixed settings make a request")
}

/// Feeds `data` in reads of `chunk` bytes, then uses the session.
fn feed(ws: &mut WsSession, data: &[u8], chunk: usize) {
    let mut wire = Vec::new();
    for piece in data.chunks(chunk) {
        let result = ws.receive(piece, &mut wire, |msg| {
            assert!(msg.len() <= MAX_MESSAGE_SIZE, "message over the limit");
        });
        match result {
            Ok(()) => assert!(!(ws.peer_closed() && ws.is_open())),
            Err(_) => {
                assert!(!ws.is_open(), "open after an error");
                assert!(matches!(
                    ws.receive(b"x", &mut wire, |_| {}),
                    Err(WsError::Closed)
                ));
                break;
            }
        }
    }
    let _ = ws.send(SIP, &mut wire);
    let _ = ws.send(&data[..data.len().min(200)], &mut wire);
    ws.ping(&mut wire);
    ws.close(&mut wire);
    assert!(!ws.is_open());
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // 0: the whole input in one read.
    let chunk = if first == 0 {
        rest.len().max(1)
    } else {
        usize::from(first)
    };

    let mut server = WsSession::server();
    let mut wire = Vec::new();
    server
        .receive(REQUEST, &mut wire, |_| {})
        .expect("the fixed request upgrades");
    assert!(server.is_open());
    feed(&mut server, rest, chunk);

    let mut client = new_client();
    let mut request = Vec::new();
    client.start(&mut request);
    let mut server = WsSession::server();
    let mut response = Vec::new();
    server
        .receive(&request, &mut response, |_| {})
        .expect("our request upgrades");
    client
        .receive(&response, &mut Vec::new(), |_| {})
        .expect("our answer upgrades");
    feed(&mut client, rest, chunk);

    feed(&mut WsSession::server(), rest, chunk);
    let mut client = new_client();
    client.start(&mut Vec::new());
    feed(&mut client, rest, chunk);
});

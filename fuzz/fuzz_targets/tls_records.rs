//! Arbitrary bytes as TLS records into a server session (what a UAS hears from anyone)
//! and into a client session after its ClientHello (what a UAC hears from a hostile
//! server), whole or cut into pieces: an error at most, never a panic. Then the calls a
//! driver makes on a failed session (send, close) must not panic either. The first byte
//! picks the side (low bit) and the piece size (the rest; 0 = all at once).

#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use sipwright::transport::tls::{self, TlsSession, TlsSettings};

/// A self-signed P-256 test certificate for localhost (valid until 2126) and its key;
/// for this fuzz target only.
const CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUDKADO6yRpWD2KfC+9mrZ/NqTKaowCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMzE1MTMxOVoYDzIxMjYxMTA5
MTUxMzE5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATqsNjqJ6+f+qn7v5BurSMMQOZzYycrJHeOcnDLx+j6H2dGswasCeGp
4xkVK49CZeQwDfl7oFoWPYFDiZ+XNqpMo2kwZzAdBgNVHQ4EFgQUacyarNMdUPsr
VDUcocRImAOIPqUwHwYDVR0jBBgwFoAUacyarNMdUPsrVDUcocRImAOIPqUwDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
SAAwRQIgYQ5mojbErXGpKHPhXyoS76VDkpYwO7tUbBIDuozcy8gCIQCp17eiu+H2
/yyDF9WTHprgr8G1yTrZbYTTYiuQllbG2g==
-----END CERTIFICATE-----
";
const KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgX41ahbJV8Cy0QsfO
SSycf+VnAttHDZuwRHCTZHzo5L2hRANCAATqsNjqJ6+f+qn7v5BurSMMQOZzYycr
JHeOcnDLx+j6H2dGswasCeGp4xkVK49CZeQwDfl7oFoWPYFDiZ+XNqpM
-----END PRIVATE KEY-----
";

struct Configs {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

static CONFIGS: LazyLock<Configs> = LazyLock::new(|| {
    // The settings take files, as the command line gives them.
    let dir = std::env::temp_dir().join(format!("sipwright-fuzz-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = |name: &str, pem: &str| -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path
    };
    let settings = TlsSettings {
        ca: None,
        cert: Some(file("cert.pem", CERT)),
        key: Some(file("key.pem", KEY)),
        insecure: true,
    };
    let server = tls::server_config(&settings).expect("server config");
    // Insecure: the client gets as far into a handshake as any certificate lets it, and
    // loads no system roots.
    let client = tls::client_config(&TlsSettings {
        cert: None,
        key: None,
        ..settings
    })
    .expect("client config");
    let _ = std::fs::remove_dir_all(&dir);
    Configs { server, client }
});

fuzz_target!(|data: &[u8]| {
    let Some((&select, input)) = data.split_first() else {
        return;
    };
    let configs = &*CONFIGS;
    let (mut plain, mut wire) = (Vec::new(), Vec::new());
    let mut session = if select & 1 == 0 {
        TlsSession::server(&configs.server).expect("server session")
    } else {
        let mut s = TlsSession::client(&configs.client, "localhost").expect("client session");
        s.start(&mut wire);
        s
    };
    let piece = match usize::from(select >> 1) {
        0 => input.len().max(1),
        n => n,
    };
    for chunk in input.chunks(piece) {
        if session.receive(chunk, &mut plain, &mut wire).is_err() {
            break;
        }
    }
    // No application data without a handshake, which needs the peer's key: even the
    // insecure client checks the server's signature.
    assert!(plain.is_empty());
    let _ = session.send(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", &mut wire);
    session.close(&mut wire);
    let _ = (
        session.is_handshaking(),
        session.peer_closed(),
        session.negotiated_version(),
    );
});

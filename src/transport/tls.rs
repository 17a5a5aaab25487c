//! TLS for SIP connections (tls, wss) with rustls: the settings from the command
//! line turned into client and server configurations once per run, and one sans-IO
//! TLS session per connection — ciphertext in, plaintext out, bytes to send
//! appended to a buffer the driver writes. No sockets here.
//!
//! ```ignore
//! let settings = TlsSettings { ca: Some(path), cert: None, key: None, insecure: false };
//! let client_cfg = client_config(&settings)?;  // Arc<rustls::ClientConfig>, built once
//! let server_cfg = server_config(&settings)?;  // needs cert+key
//! let mut tls = TlsSession::client(&client_cfg, "proxy.example.com")?; // SNI; IP → no SNI
//! let mut tls = TlsSession::server(&server_cfg)?;
//! tls.start(&mut wire);                         // client: ClientHello into `wire`
//! tls.receive(cipher, &mut plain, &mut wire)?;  // plaintext appended to `plain`,
//!                                               // handshake/alert bytes to `wire`
//! tls.send(sip_bytes, &mut wire)?;              // queued by rustls until the handshake ends
//! tls.is_handshaking();  tls.peer_closed();  tls.close(&mut wire) // close_notify
//! ```
//! Every call leaves all the bytes rustls wants to send in `wire`, so the driver
//! writes `wire` after each call and never asks rustls whether it wants to write.
//! When `receive` fails, `wire` holds the alert telling the peer why: send it, then
//! close the connection.
//!
//! `SSLKEYLOGFILE` in the environment: both configurations log session keys there
//! (Wireshark's format) so a capture of the signalling can be decrypted.
//!
//! Resumption: the client keeps rustls' in-memory session cache (TLS 1.2 session ids
//! and tickets, TLS 1.3 tickets) in its configuration, so every connection made with
//! one `client_config` can resume; the server keeps a session-id cache and a ring
//! ticketer, so clients resume against our own UAS as well.
//!
//! Why the ring provider and not aws-lc-rs (rustls' default): ring is Rust plus a
//! little C and assembly its build script compiles itself; measured here (debug, two
//! shared cores, `cargo build --timings`) ring takes 13 s: 1 s for the build script,
//! 4 s running it (the C and assembly), 8 s of Rust. aws-lc-rs instead builds the whole
//! AWS-LC C library through aws-lc-sys: it needs a C/C++ compiler (CMake and Go only
//! for FIPS or targets without prebuilt bindings, in current versions; older ones
//! always needed CMake) and takes minutes on a machine like this. A load tester spends
//! its TLS time in handshakes and AES-GCM, which ring does well enough (the ignored
//! `tls_throughput` test prints its figures); nothing here needs FIPS or post-quantum
//! key exchange, the reasons to pay for aws-lc.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, HandshakeKind, ProtocolVersion, SignatureScheme,
    SupportedProtocolVersion,
};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// `--ca`, `--cert`, `--key`, `--insecure`.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// Trust anchors (PEM) added to the system roots.
    pub ca: Option<PathBuf>,
    /// Our certificate chain (PEM): the UAS serves it, a UAC presents it when asked.
    pub cert: Option<PathBuf>,
    /// The key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Do not verify the server's certificate (a UAC against a self-signed test proxy).
    pub insecure: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A settings problem: names the file and says what to do.
    #[error("{0}")]
    Config(String),
    /// The peer or our verification refused the handshake, or a record was bad.
    #[error("TLS: {0}")]
    Protocol(String),
    /// The peer sent a fatal alert (its description, as rustls names it: "BadCertificate",
    /// "UnknownCA", "HandshakeFailure", ...).
    #[error("TLS alert from peer: {0}")]
    Alert(String),
}

/// Both versions: SIP proxies and phones still speak TLS 1.2 only often enough.
const VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Servers the client's session cache remembers. rustls keys the cache by server name;
/// each entry holds one TLS 1.2 session and up to 8 TLS 1.3 tickets (a fixed rustls
/// limit; a TLS 1.3 ticket is used once and every handshake brings new ones). So this
/// bounds distinct targets, not connections: a load test against one proxy needs one
/// entry however many connections it opens, and rustls' own default of 256 fits. The
/// ticket limit is what a load test feels: of many TLS 1.3 connections opened at once,
/// 8 resume and the others do full handshakes until finished ones bring new tickets.
const CLIENT_CACHE_SERVERS: usize = 256;

/// TLS 1.2 sessions our server remembers by session id, for clients that do not take
/// tickets (with tickets, and in TLS 1.3, the state travels in the ticket and costs the
/// server nothing). A load test's thousands of connections are what fills it.
const SERVER_CACHE_SESSIONS: usize = 16 * 1024;

/// The configuration every client connection of a run shares (its session cache too).
pub fn client_config(s: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    build_client_config(s, VERSIONS)
}

/// The configuration of our TLS server (a UAS): needs `--cert` and `--key`; asks no
/// client certificate.
pub fn server_config(s: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    build_server_config(s, VERSIONS, WebPkiClientVerifier::no_client_auth())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_client_config(
    s: &TlsSettings,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("TLS versions: {e}")))?;
    let builder = if s.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { algorithms }))
    } else {
        builder.with_root_certificates(trust_anchors(s.ca.as_deref())?)
    };
    let mut config = match (&s.cert, &s.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs("--cert", cert)?, load_key(key)?)
            .map_err(|e| key_mismatch(cert, key, e))?,
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(TlsError::Config(
                "--cert needs --key FILE (the private key of the client certificate, PEM)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(TlsError::Config(
                "--key needs --cert FILE (the client certificate chain, PEM)".into(),
            ));
        }
    };
    config.resumption = rustls::client::Resumption::in_memory_sessions(CLIENT_CACHE_SERVERS);
    config.key_log = Arc::new(rustls::KeyLogFile::new());
    Ok(Arc::new(config))
}

/// `client_auth` is a parameter so that tests can run a server that asks for client
/// certificates; ours asks none.
fn build_server_config(
    s: &TlsSettings,
    versions: &[&'static SupportedProtocolVersion],
    client_auth: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert = s.cert.as_deref().ok_or_else(|| {
        TlsError::Config(
            "a TLS server needs --cert FILE (its certificate chain, PEM) and --key FILE".into(),
        )
    })?;
    let key = s.key.as_deref().ok_or_else(|| {
        TlsError::Config("a TLS server needs --key FILE (the private key of --cert, PEM)".into())
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(client_auth)
        .with_single_cert(load_certs("--cert", cert)?, load_key(key)?)
        .map_err(|e| key_mismatch(cert, key, e))?;
    config.session_storage = ServerSessionMemoryCache::new(SERVER_CACHE_SESSIONS);
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| TlsError::Config(format!("TLS session tickets: {e}")))?;
    config.key_log = Arc::new(rustls::KeyLogFile::new());
    Ok(Arc::new(config))
}

/// The system's roots plus `--ca`. A machine without system roots (a container) is
/// fine when `--ca` names the test CA, so load errors are only worth a word when
/// nothing at all is left to trust.
fn trust_anchors(ca: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    // Some system bundles carry certificates webpki cannot parse; skip those.
    roots.add_parsable_certificates(native.certs);
    match ca {
        Some(path) => {
            for cert in load_certs("--ca", path)? {
                roots.add(cert).map_err(|e| {
                    TlsError::Config(format!(
                        "--ca {}: unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        None if roots.is_empty() => {
            let why = native
                .errors
                .first()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            eprintln!(
                "warning: no system TLS roots{why}: servers can only be verified with --ca FILE"
            );
        }
        None => {}
    }
    Ok(roots)
}

fn load_certs(option: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(option, path, "certificates", e))?;
    if certs.is_empty() {
        return Err(pem_error(
            option,
            path,
            "certificates",
            pem::Error::NoItemsFound,
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error("--key", path, "private key", e))
}

fn pem_error(option: &str, path: &Path, what: &str, e: pem::Error) -> TlsError {
    let path = path.display();
    TlsError::Config(match e {
        pem::Error::Io(e) => format!("{option} {path}: {e}"),
        pem::Error::NoItemsFound => format!(
            "{option} {path}: no {what} found (expected PEM: \"-----BEGIN ...-----\" blocks)"
        ),
        e => format!("{option} {path}: not valid PEM: {e}"),
    })
}

fn key_mismatch(cert: &Path, key: &Path, e: rustls::Error) -> TlsError {
    TlsError::Config(format!(
        "--cert {} with --key {}: {e} (is the key the one of the certificate?)",
        cert.display(),
        key.display()
    ))
}

/// `--insecure`: accepts any server certificate, expired, self-signed or naming another
/// host. DANGER: anyone on the path can then impersonate the server and read or change
/// the signalling (and the SDES keys in it); for test proxies with throwaway
/// certificates only. The handshake signatures are still verified with the provider's
/// algorithms, so the session is at least bound to the key of the certificate the
/// server showed and the handshake itself is sound.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// One connection's TLS state.
pub struct TlsSession {
    conn: rustls::Connection,
    /// The host we connect to (client side), for error messages.
    peer: Option<String>,
    peer_closed: bool,
}

impl TlsSession {
    /// `host` is a DNS name (sent as SNI and checked against the certificate) or an IP
    /// address, bare or in brackets (no SNI: TLS has none for addresses; the
    /// certificate must carry it as an IP subjectAltName).
    pub fn client(cfg: &Arc<rustls::ClientConfig>, host: &str) -> Result<TlsSession, TlsError> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let name = match bare.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(bare.to_owned()).map_err(|_| {
                TlsError::Config(format!(
                    "{host:?} is not a host name or IP address TLS can verify"
                ))
            })?,
        };
        let conn = rustls::ClientConnection::new(Arc::clone(cfg), name)
            .map_err(|e| TlsError::Protocol(e.to_string()))?;
        Ok(TlsSession::new(conn.into(), Some(host.to_owned())))
    }

    pub fn server(cfg: &Arc<rustls::ServerConfig>) -> Result<TlsSession, TlsError> {
        let conn = rustls::ServerConnection::new(Arc::clone(cfg))
            .map_err(|e| TlsError::Protocol(e.to_string()))?;
        Ok(TlsSession::new(conn.into(), None))
    }

    fn new(mut conn: rustls::Connection, peer: Option<String>) -> TlsSession {
        // rustls' 64 KiB default would make `send` fail on a burst queued before the
        // handshake ends; the driver's `wire` buffer is where backpressure belongs.
        conn.set_buffer_limit(None);
        TlsSession {
            conn,
            peer,
            peer_closed: false,
        }
    }

    /// Bytes the session wants to send before any input (the client's hello).
    pub fn start(&mut self, wire: &mut Vec<u8>) {
        self.flush(wire);
    }

    /// Feeds ciphertext from the peer: the plaintext it carries is appended to `plain`,
    /// and whatever rustls answers (handshake, alerts) to `wire`. On an error `wire` holds
    /// the alert to send before closing. Bytes after the peer's close_notify are ignored.
    pub fn receive(
        &mut self,
        cipher: &[u8],
        plain: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        let mut rest = cipher;
        // Never call `read_tls` with nothing left: an empty read means EOF to rustls.
        while !rest.is_empty() {
            match self.conn.read_tls(&mut rest) {
                // After close_notify rustls reads nothing more.
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    self.flush(wire);
                    return Err(TlsError::Protocol(format!("reading records: {e}")));
                }
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // The alert telling the peer why.
                    self.flush(wire);
                    return Err(self.error(e));
                }
            };
            // Drained after every chunk: rustls refuses more input while its plaintext
            // buffer is full.
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                if let Err(e) = self.conn.reader().read_exact(&mut plain[start..]) {
                    plain.truncate(start);
                    self.flush(wire);
                    return Err(TlsError::Protocol(format!("reading plaintext: {e}")));
                }
            }
            self.peer_closed |= state.peer_has_closed();
        }
        self.flush(wire);
        Ok(())
    }

    /// Encrypts `plain` into `wire` (records of at most 16 KiB each); before the
    /// handshake ends rustls keeps it and sends it with the first flight it can.
    pub fn send(&mut self, plain: &[u8], wire: &mut Vec<u8>) -> Result<(), TlsError> {
        let written = self.conn.writer().write_all(plain);
        self.flush(wire);
        written.map_err(|e| TlsError::Protocol(format!("sending: {e}")))
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Queues close_notify into `wire`; the peer ignores anything sent after it.
    pub fn close(&mut self, wire: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.flush(wire);
    }

    /// TLS 1.2 or 1.3, once the hellos are through.
    pub fn negotiated_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Full or resumed, once the handshake is over: what a load report counts to show
    /// that resumption works.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.conn.handshake_kind()
    }

    fn flush(&mut self, wire: &mut Vec<u8>) {
        // Writing into a Vec cannot fail; the check on progress only guards the loop.
        while self.conn.wants_write() {
            match self.conn.write_tls(wire) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    fn error(&self, e: rustls::Error) -> TlsError {
        let who = self.peer.as_deref().unwrap_or("the peer");
        match e {
            rustls::Error::AlertReceived(alert) => TlsError::Alert(format!("{alert:?}")),
            rustls::Error::InvalidCertificate(e) => TlsError::Protocol(untrusted(who, &e)),
            rustls::Error::InvalidMessage(_) | rustls::Error::PeerSentOversizedRecord => {
                TlsError::Protocol(format!("{e} (is {who} speaking TLS on this port?)"))
            }
            e => TlsError::Protocol(e.to_string()),
        }
    }
}

/// `localhost` for rustls' `DnsName("localhost")`, `127.0.0.1` for `IpAddress(127.0.0.1)`.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|p| p.strip_suffix("\")"))
        .or_else(|| presented.strip_prefix("IpAddress(")?.strip_suffix(')'))
        .unwrap_or(presented)
}

/// What to do about a certificate we refused, for the message the user reads.
fn untrusted(who: &str, e: &CertificateError) -> String {
    const SKIP: &str = "or --insecure to skip verification";
    match e {
        CertificateError::UnknownIssuer => format!(
            "certificate of {who} not trusted (unknown issuer): pass --ca FILE with the CA \
             that signed it, {SKIP}"
        ),
        CertificateError::NotValidForName => format!(
            "certificate of {who} is not valid for that name: connect by a name or address \
             it lists, {SKIP}"
        ),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "certificate of {who} is not valid for that name (it lists {}): connect by one \
             of those, {SKIP}",
            presented
                .iter()
                .map(|p| plain_name(p))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("certificate of {who} has expired: renew it, {SKIP}")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("certificate of {who} is not valid yet (check the clocks), {SKIP}")
        }
        e => format!("certificate of {who} refused ({e}); {SKIP}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use rustls::version::TLS12;

    const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:uac.test
authorityKeyIdentifier = keyid
";

    /// The folder of the test certificates, made once per test process by the `openssl`
    /// CLI: `ca.pem`, `server.pem`/`server.key` (signed by the CA, for 127.0.0.1 and
    /// localhost), `client.pem`/`client.key` and the same key in SEC1 form
    /// (`client-sec1.key`), all EC P-256 because those are the quickest to make. None
    /// after printing why the test is skipped; under CI=true a missing openssl fails.
    fn pki() -> Option<&'static Path> {
        static PKI: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        match PKI.get_or_init(make_pki) {
            Ok(dir) => Some(dir),
            Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("{why}: required under CI=true")
            }
            Err(why) => {
                eprintln!("SKIPPED: {why}");
                None
            }
        }
    }

    fn make_pki() -> Result<PathBuf, String> {
        let on_path = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|p| p.join("openssl").is_file())
        });
        if !on_path {
            return Err("`openssl` is not installed (apt-get install openssl)".into());
        }
        // A test process cannot tell when its last test is done with the folder, so each
        // run sweeps away those that earlier runs left.
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(3600)));
            if stale
                && entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("sipwright-tls-")
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tmp.join(format!("sipwright-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).expect("openssl.cnf");
        let openssl = |args: &str| {
            let out = Command::new("openssl")
                .args(args.split(' '))
                .current_dir(&dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -config openssl.cnf";
        openssl(&format!(
            "req -x509 {new_key} -extensions ca -keyout ca.key -out ca.pem -days 3650 -subj /CN=test-ca"
        ));
        for (name, serial) in [("server", 2), ("client", 3)] {
            openssl(&format!(
                "req -new {new_key} -keyout {name}.key -out {name}.csr -subj /CN={name}"
            ));
            openssl(&format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -set_serial {serial} \
                 -days 3650 -extfile openssl.cnf -extensions {name} -out {name}.pem"
            ));
        }
        openssl("ec -in client.key -out client-sec1.key");
        Ok(dir)
    }

    fn settings(dir: &Path, ca: bool, cert: Option<&str>) -> TlsSettings {
        TlsSettings {
            ca: ca.then(|| dir.join("ca.pem")),
            cert: cert.map(|c| dir.join(format!("{c}.pem"))),
            key: cert.map(|c| dir.join(format!("{c}.key"))),
            insecure: false,
        }
    }

    fn trusting_client(dir: &Path) -> Arc<rustls::ClientConfig> {
        client_config(&settings(dir, true, None)).expect("client config")
    }

    fn server(dir: &Path) -> Arc<rustls::ServerConfig> {
        server_config(&settings(dir, false, Some("server"))).expect("server config")
    }

    /// A client and a server session joined by two in-memory pipes.
    struct Pair {
        client: TlsSession,
        server: TlsSession,
        to_server: Vec<u8>,
        to_client: Vec<u8>,
        at_server: Vec<u8>,
        at_client: Vec<u8>,
    }

    #[derive(Debug, PartialEq)]
    enum Side {
        Client,
        Server,
    }

    impl Pair {
        fn new(
            client: &Arc<rustls::ClientConfig>,
            host: &str,
            server: &Arc<rustls::ServerConfig>,
        ) -> Pair {
            let mut pair = Pair {
                client: TlsSession::client(client, host).expect("client session"),
                server: TlsSession::server(server).expect("server session"),
                to_server: Vec::new(),
                to_client: Vec::new(),
                at_server: Vec::new(),
                at_client: Vec::new(),
            };
            pair.client.start(&mut pair.to_server);
            assert!(!pair.to_server.is_empty(), "a ClientHello");
            pair
        }

        /// Moves bytes both ways, `chunk` bytes per `receive`, until neither side has
        /// anything to send. On an error the failing side's alert stays in its pipe.
        fn run_chunked(&mut self, chunk: usize) -> Result<(), (Side, TlsError)> {
            while !self.to_server.is_empty() || !self.to_client.is_empty() {
                for part in std::mem::take(&mut self.to_server).chunks(chunk) {
                    self.server
                        .receive(part, &mut self.at_server, &mut self.to_client)
                        .map_err(|e| (Side::Server, e))?;
                }
                for part in std::mem::take(&mut self.to_client).chunks(chunk) {
                    self.client
                        .receive(part, &mut self.at_client, &mut self.to_server)
                        .map_err(|e| (Side::Client, e))?;
                }
            }
            Ok(())
        }

        fn run(&mut self) -> Result<(), (Side, TlsError)> {
            self.run_chunked(usize::MAX)
        }

        fn handshake(&mut self) {
            self.run().expect("handshake");
            assert!(!self.client.is_handshaking() && !self.server.is_handshaking());
        }

        /// A request one way and a response the other.
        fn exchange(&mut self, request: &[u8], response: &[u8]) {
            self.client
                .send(request, &mut self.to_server)
                .expect("send");
            self.server
                .send(response, &mut self.to_client)
                .expect("send");
            self.run().expect("data");
            assert_eq!(std::mem::take(&mut self.at_server), request);
            assert_eq!(std::mem::take(&mut self.at_client), response);
        }
    }

    const INVITE: &[u8] = b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn tls13_handshake_and_data_both_ways() {
        let Some(dir) = pki() else { return };
        let mut pair = Pair::new(&trusting_client(dir), "127.0.0.1", &server(dir));
        // Queued before the handshake is over: rustls sends it with its Finished.
        pair.client.send(INVITE, &mut pair.to_server).expect("send");
        pair.handshake();
        assert_eq!(pair.at_server, INVITE);
        pair.at_server.clear();
        for s in [&pair.client, &pair.server] {
            assert_eq!(s.negotiated_version(), Some(ProtocolVersion::TLSv1_3));
            assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
        }
        pair.exchange(INVITE, OK);
    }

    #[test]
    fn tls12_handshake_and_data_both_ways_with_either_side_limited() {
        let Some(dir) = pki() else { return };
        let tls12_client = build_client_config(&settings(dir, true, None), &[&TLS12]).unwrap();
        let tls12_server = build_server_config(
            &settings(dir, false, Some("server")),
            &[&TLS12],
            WebPkiClientVerifier::no_client_auth(),
        )
        .unwrap();
        for (client, server) in [
            (tls12_client, server(dir)),
            (trusting_client(dir), tls12_server),
        ] {
            let mut pair = Pair::new(&client, "localhost", &server);
            pair.handshake();
            assert_eq!(
                pair.client.negotiated_version(),
                Some(ProtocolVersion::TLSv1_2)
            );
            assert_eq!(
                pair.server.negotiated_version(),
                Some(ProtocolVersion::TLSv1_2)
            );
            pair.exchange(INVITE, OK);
        }
    }

    #[test]
    fn message_larger_than_a_record_arrives_whole_even_in_small_pieces() {
        let Some(dir) = pki() else { return };
        let mut pair = Pair::new(&trusting_client(dir), "127.0.0.1", &server(dir));
        // Records and handshake messages cut anywhere, down to single bytes.
        pair.run_chunked(1).expect("handshake");
        let mut big =
            b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nContent-Length: 40000\r\n\r\n".to_vec();
        big.extend((0..40_000).map(|i| b'a' + (i % 26) as u8));
        pair.client.send(&big, &mut pair.to_server).expect("send");
        assert!(
            pair.to_server.len() > big.len() + 2 * 5,
            "more than one record"
        );
        pair.run_chunked(1000).expect("data");
        assert_eq!(pair.at_server, big);
        pair.server.send(&big, &mut pair.to_client).expect("send");
        pair.run().expect("data");
        assert_eq!(pair.at_client, big);
    }

    #[test]
    fn unknown_ca_fails_with_advice_and_the_server_gets_the_alert() {
        let Some(dir) = pki() else { return };
        let untrusting = client_config(&TlsSettings::default()).expect("client config");
        let mut pair = Pair::new(&untrusting, "127.0.0.1", &server(dir));
        let (side, e) = pair.run().expect_err("unknown CA");
        assert_eq!(side, Side::Client);
        let TlsError::Protocol(message) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            message,
            "certificate of 127.0.0.1 not trusted (unknown issuer): pass --ca FILE with the CA \
             that signed it, or --insecure to skip verification"
        );
        // The client's alert, which the driver sends before closing.
        assert!(!pair.to_server.is_empty(), "an alert to send");
        let e = pair
            .server
            .receive(&pair.to_server, &mut pair.at_server, &mut pair.to_client)
            .expect_err("alert");
        assert!(
            matches!(&e, TlsError::Alert(a) if a == "UnknownCA"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "TLS alert from peer: UnknownCA");
    }

    #[test]
    fn insecure_accepts_a_certificate_it_cannot_verify() {
        let Some(dir) = pki() else { return };
        let insecure = TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        };
        let client = client_config(&insecure).expect("client config");
        // Neither the issuer nor the name would pass verification.
        let mut pair = Pair::new(&client, "sip.example.com", &server(dir));
        pair.handshake();
        pair.exchange(INVITE, OK);
    }

    #[test]
    fn sni_is_the_host_name_and_absent_for_addresses() {
        let Some(dir) = pki() else { return };
        let (client, server) = (trusting_client(dir), server(dir));
        for (host, sni) in [
            ("localhost", Some("localhost")),
            ("127.0.0.1", None),
            ("[127.0.0.1]", None),
        ] {
            let mut pair = Pair::new(&client, host, &server);
            pair.handshake();
            let rustls::Connection::Server(conn) = &pair.server.conn else {
                unreachable!()
            };
            assert_eq!(conn.server_name(), Some(sni).flatten(), "{host}");
        }
        // Names and addresses the certificate does not list.
        for host in ["sip.example.com", "::1"] {
            let mut pair = Pair::new(&client, host, &server);
            let (_, e) = pair.run().expect_err(host);
            let message = e.to_string();
            assert!(
                message.starts_with(&format!(
                    "TLS: certificate of {host} is not valid for that name (it lists \
                     127.0.0.1, localhost): connect by one of those, or --insecure"
                )),
                "{message}"
            );
        }
        let Err(e) = TlsSession::client(&client, "not a host!") else {
            panic!("a bad host name")
        };
        assert!(matches!(e, TlsError::Config(_)), "{e:?}");
    }

    #[test]
    fn second_connection_with_the_same_client_config_resumes() {
        let Some(dir) = pki() else { return };
        let tls12 = build_client_config(&settings(dir, true, None), &[&TLS12]).unwrap();
        // A TLS 1.2 client that takes no tickets: the server's session-id cache.
        let mut ids_only = (*tls12).clone();
        ids_only.resumption = rustls::client::Resumption::in_memory_sessions(8)
            .tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
        let server = server(dir);
        for (case, client) in [
            ("TLS 1.3 ticket", trusting_client(dir)),
            ("TLS 1.2 ticket", tls12),
            ("TLS 1.2 session id", Arc::new(ids_only)),
        ] {
            for expected in [HandshakeKind::Full, HandshakeKind::Resumed] {
                let mut pair = Pair::new(&client, "127.0.0.1", &server);
                pair.handshake();
                pair.exchange(INVITE, OK);
                assert_eq!(pair.client.handshake_kind(), Some(expected), "{case}");
                assert_eq!(pair.server.handshake_kind(), Some(expected), "{case}");
            }
        }
    }

    /// Our server asks no client certificate; this one does, for the client side.
    fn server_requiring_client_certs(dir: &Path) -> Arc<rustls::ServerConfig> {
        let roots = trust_anchors(Some(&dir.join("ca.pem"))).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        build_server_config(&settings(dir, false, Some("server")), VERSIONS, verifier).unwrap()
    }

    #[test]
    fn client_certificate_is_presented_when_asked() {
        let Some(dir) = pki() else { return };
        let with_cert = TlsSettings {
            // The SEC1 form of the key, to cover that format too.
            key: Some(dir.join("client-sec1.key")),
            ..settings(dir, true, Some("client"))
        };
        let client = client_config(&with_cert).expect("client config");
        let mut pair = Pair::new(&client, "localhost", &server_requiring_client_certs(dir));
        pair.handshake();
        let presented = pair.server.conn.peer_certificates().expect("client cert");
        let expected = load_certs("--cert", &dir.join("client.pem")).unwrap();
        assert_eq!(presented, &expected[..]);
        pair.exchange(INVITE, OK);
    }

    #[test]
    fn fatal_alert_from_the_peer_is_reported_as_such() {
        let Some(dir) = pki() else { return };
        let mut pair = Pair::new(
            &trusting_client(dir),
            "localhost",
            &server_requiring_client_certs(dir),
        );
        let (side, e) = pair.run().expect_err("no client certificate");
        assert_eq!(side, Side::Server);
        assert!(matches!(e, TlsError::Protocol(_)), "{e:?}");
        let e = pair
            .client
            .receive(&pair.to_client, &mut pair.at_client, &mut pair.to_server)
            .expect_err("alert");
        assert!(
            matches!(&e, TlsError::Alert(a) if a == "CertificateRequired"),
            "{e:?}"
        );
    }

    #[test]
    fn close_notify_is_seen_and_what_follows_ignored() {
        let Some(dir) = pki() else { return };
        let mut pair = Pair::new(&trusting_client(dir), "127.0.0.1", &server(dir));
        pair.handshake();
        pair.client.send(INVITE, &mut pair.to_server).expect("send");
        pair.client.close(&mut pair.to_server);
        pair.to_server.extend_from_slice(b"garbage after the close");
        assert!(!pair.server.peer_closed());
        pair.run().expect("close");
        assert!(pair.server.peer_closed() && !pair.client.peer_closed());
        assert_eq!(pair.at_server, INVITE);
        pair.server.close(&mut pair.to_client);
        pair.run().expect("close");
        assert!(pair.client.peer_closed());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let Some(dir) = pki() else { return };
        let (client, server) = (trusting_client(dir), server(dir));
        let mut s = TlsSession::server(&server).unwrap();
        let (mut plain, mut wire) = (Vec::new(), Vec::new());
        let e = s
            .receive(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", &mut plain, &mut wire)
            .expect_err("not TLS");
        assert!(e.to_string().contains("speaking TLS"), "{e}");

        let mut hello = Vec::new();
        TlsSession::client(&client, "localhost")
            .unwrap()
            .start(&mut hello);
        // xorshift: the same inputs every run.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..300 {
            let input: Vec<u8> = if round % 2 == 0 {
                // A ClientHello with a few bytes changed, for the server.
                let mut h = hello.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % h.len() as u64) as usize;
                    h[i] = next() as u8;
                }
                h.truncate(1 + (next() % h.len() as u64) as usize);
                h
            } else {
                (0..next() % 600).map(|_| next() as u8).collect()
            };
            let mut s = TlsSession::server(&server).unwrap();
            let _ = s.receive(&input, &mut plain, &mut wire);
            let mut c = TlsSession::client(&client, "localhost").unwrap();
            c.start(&mut wire);
            let _ = c.receive(&input, &mut plain, &mut wire);
            let _ = c.receive(&input, &mut plain, &mut wire);
            assert!(plain.is_empty(), "no plaintext from garbage");
        }
    }

    #[test]
    fn settings_errors_name_the_option_and_the_file() {
        let Some(dir) = pki() else { return };
        let message = |r: Result<(), TlsError>| r.expect_err("an error").to_string();
        let server = |s: TlsSettings| server_config(&s).map(drop);
        let client = |s: TlsSettings| client_config(&s).map(drop);

        assert_eq!(
            message(server(TlsSettings::default())),
            "a TLS server needs --cert FILE (its certificate chain, PEM) and --key FILE"
        );
        let missing = dir.join("missing.pem");
        let m = message(server(TlsSettings {
            cert: Some(missing.clone()),
            ..settings(dir, false, Some("server"))
        }));
        assert!(
            m.starts_with(&format!("--cert {}: ", missing.display())) && m.contains("No such file"),
            "{m}"
        );
        let m = message(server(TlsSettings {
            key: Some(dir.join("server.pem")),
            ..settings(dir, false, Some("server"))
        }));
        assert!(m.contains("server.pem: no private key found"), "{m}");
        let m = message(server(TlsSettings {
            key: Some(dir.join("client.key")),
            ..settings(dir, false, Some("server"))
        }));
        assert!(m.contains("is the key the one of the certificate?"), "{m}");

        let m = message(client(TlsSettings {
            ca: Some(dir.join("ca.key")),
            ..TlsSettings::default()
        }));
        assert_eq!(
            m,
            format!(
                "--ca {}: no certificates found (expected PEM: \"-----BEGIN ...-----\" blocks)",
                dir.join("ca.key").display()
            )
        );
        let only_cert = TlsSettings {
            key: None,
            ..settings(dir, true, Some("client"))
        };
        assert!(message(client(only_cert)).starts_with("--cert needs --key"));
    }

    /// Figures for ring: `cargo test --release --lib transport::tls -- --ignored
    /// --nocapture tls_throughput`.
    #[test]
    #[ignore]
    fn tls_throughput() {
        let Some(dir) = pki() else { return };
        let server = server(dir);
        let resuming = trusting_client(dir);
        let mut full = (*resuming).clone();
        full.resumption = rustls::client::Resumption::disabled();
        let full = Arc::new(full);
        for (kind, client) in [("full", &full), ("resumed", &resuming)] {
            let n = 500;
            let t = Instant::now();
            for _ in 0..n {
                Pair::new(client, "127.0.0.1", &server).handshake();
            }
            let per_s = n as f64 / t.elapsed().as_secs_f64();
            println!("TLS 1.3 {kind} handshakes (both sides): {per_s:.0}/s");
        }
        let mut pair = Pair::new(&resuming, "127.0.0.1", &server);
        pair.handshake();
        let chunk = vec![0x5a; 16 * 1024];
        let total = 64 * 1024 * 1024;
        let t = Instant::now();
        for _ in 0..total / chunk.len() {
            pair.client.send(&chunk, &mut pair.to_server).unwrap();
            pair.run().unwrap();
            pair.at_server.clear();
        }
        let mb_s = total as f64 / 1e6 / t.elapsed().as_secs_f64();
        println!("AES-GCM encrypt + decrypt: {mb_s:.0} MB/s");
    }
}

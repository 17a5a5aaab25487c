//! Throwaway certificates for the TLS and WSS tests, made with the `openssl` CLI
//! once per test process into its scratch directory: a test CA, a server
//! certificate for 127.0.0.1/localhost and a client certificate signed by it, and
//! a second, "unknown" CA with a certificate of its own that nobody trusts (the
//! verification-failure tests). All keys are EC P-256 in PKCS#8 PEM, which
//! rustls, OpenSSL (Kamailio) and Python's ssl all read.

use super::{require, scratch};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug)]
pub struct Certs {
    pub dir: PathBuf,
    /// The test CA (PEM): what `--ca` and Kamailio's `ca_list` trust.
    pub ca: PathBuf,
    /// Server certificate signed by `ca`: SAN IP:127.0.0.1 and DNS:localhost,
    /// extendedKeyUsage serverAuth (rustls refuses a leaf without the usage).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Client certificate signed by `ca` (clientAuth), for mutual TLS.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing the tests trust.
    pub unknown_ca: PathBuf,
    /// Signed by `unknown_ca`, SAN 127.0.0.1, usable as server or client
    /// certificate: verification must fail against `ca`.
    pub unknown_cert: PathBuf,
    pub unknown_key: PathBuf,
}

/// The process's certificates, made on first use. None (after printing why) when
/// `openssl` is not installed; a failing `openssl` command panics with its output.
pub fn certs() -> Option<&'static Certs> {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    require("openssl")?;
    Some(CERTS.get_or_init(|| make(&scratch("certs"))))
}

fn make(dir: &Path) -> Certs {
    std::fs::create_dir_all(dir).unwrap();
    let p = |name: &str| dir.join(name);
    ca(dir, "ca", "sipwright test CA");
    leaf(
        dir,
        "server",
        "ca",
        "localhost",
        "serverAuth",
        "IP:127.0.0.1,DNS:localhost",
        1,
    );
    leaf(
        dir,
        "client",
        "ca",
        "sipwright test client",
        "clientAuth",
        "DNS:client.invalid",
        2,
    );
    ca(dir, "unknown-ca", "sipwright unknown CA");
    leaf(
        dir,
        "unknown",
        "unknown-ca",
        "localhost",
        "serverAuth,clientAuth",
        "IP:127.0.0.1,DNS:localhost",
        3,
    );
    Certs {
        dir: dir.to_path_buf(),
        ca: p("ca.pem"),
        server_cert: p("server.pem"),
        server_key: p("server.key"),
        client_cert: p("client.pem"),
        client_key: p("client.key"),
        unknown_ca: p("unknown-ca.pem"),
        unknown_cert: p("unknown.pem"),
        unknown_key: p("unknown.key"),
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn key(dir: &Path, name: &str) {
    let out = format!("{name}.key");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &out,
        ],
    );
}

/// A self-signed CA `NAME.pem` / `NAME.key`, with the basicConstraints CA:TRUE and
/// keyUsage keyCertSign that webpki (rustls) wants of an issuer.
fn ca(dir: &Path, name: &str, cn: &str) {
    key(dir, name);
    let (k, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &k,
            "-sha256",
            "-days",
            "30",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &pem,
        ],
    );
}

/// `NAME.pem` / `NAME.key` signed by the CA `ISSUER`, X.509 v3 (an extension file
/// makes it v3; rustls refuses v1) with the given usages and SANs.
fn leaf(dir: &Path, name: &str, issuer: &str, cn: &str, eku: &str, san: &str, serial: u32) {
    key(dir, name);
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage={eku}\nsubjectAltName={san}\n"
        ),
    )
    .unwrap();
    let (k, csr, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &["req", "-new", "-key", &k, "-subj", &subj, "-out", &csr],
    );
    let (ca_pem, ca_key, serial) = (
        format!("{issuer}.pem"),
        format!("{issuer}.key"),
        serial.to_string(),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial,
            "-days",
            "30",
            "-sha256",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            &pem,
        ],
    );
}

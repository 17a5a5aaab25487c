//! From `--transport`, `--connections`, the TLS and WebSocket options to what each
//! side's drivers need: the transport, connection settings (TLS configurations are
//! built once per run), the connection model and the server name.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::UsageError;
use super::args::RunArgs;
use super::target::Target;
use crate::load::driver::ConnectionModel;
use crate::transport::connection::ConnectionSettings;
use crate::transport::framing::FramerLimits;
use crate::transport::kind::TransportKind;
use crate::transport::tls::{TlsSettings, client_config, server_config};

/// Unsent bytes one connection may hold before it counts as stuck and closes.
const MAX_OUTPUT: usize = 4 << 20;

/// What one side's drivers get.
pub struct SideTransport {
    pub kind: TransportKind,
    pub settings: ConnectionSettings,
    pub model: ConnectionModel,
    pub host: String,
    pub keepalive: Option<Duration>,
}

/// The transport of the run: `--transport`, else the target's, else UDP.
pub fn transport_of(a: &RunArgs, target: Option<&Target>) -> Result<TransportKind, UsageError> {
    let given = a
        .transport
        .as_deref()
        .map(|t| {
            t.parse::<TransportKind>()
                .map_err(|e| UsageError(format!("--transport: {e}")))
        })
        .transpose()?;
    let named = target.and_then(|t| t.transport);
    match (given, named) {
        (Some(g), Some(n)) if g != n => Err(UsageError(format!(
            "--transport {g} but the target says {n}; drop one of them"
        ))),
        (Some(g), _) => Ok(g),
        (None, Some(n)) => Ok(n),
        (None, None) => Ok(TransportKind::Udp),
    }
}

pub fn connection_model(text: &str) -> Result<ConnectionModel, UsageError> {
    match text {
        "per-call" => Ok(ConnectionModel::PerCall),
        "per-worker" => Ok(ConnectionModel::PerWorker),
        n => match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(ConnectionModel::Pool(n)),
            _ => Err(UsageError(format!(
                "--connections `{text}`: expected per-call, per-worker or a number of connections (at least 1)"
            ))),
        },
    }
}

/// TLS material for a loopback run without --cert: a throwaway self-signed
/// certificate for 127.0.0.1, ::1 and localhost, which the other side trusts.
pub struct LoopbackCert {
    dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl LoopbackCert {
    pub fn generate() -> anyhow::Result<LoopbackCert> {
        let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let key = rcgen::generate_simple_self_signed(names)
            .context("generating a certificate for the loopback run")?;
        let dir = std::env::temp_dir().join(format!("sipwright-loopback-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cert = dir.join("cert.pem");
        let keyfile = dir.join("key.pem");
        std::fs::write(&cert, key.cert.pem())?;
        std::fs::write(&keyfile, key.signing_key.serialize_pem())?;
        Ok(LoopbackCert {
            dir,
            cert,
            key: keyfile,
        })
    }
}

impl Drop for LoopbackCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One side's transport. `tls` are the settings this side uses (the run's, or the
/// loopback's own certificate); `host` names the peer (SNI, WebSocket Host).
pub fn side_transport(
    a: &RunArgs,
    kind: TransportKind,
    tls: &TlsSettings,
    serves_tls: bool,
    host: &str,
    ws_path: Option<&str>,
) -> anyhow::Result<SideTransport> {
    let mut settings = ConnectionSettings {
        limits: FramerLimits {
            max_message: a.max_message_size,
        },
        max_output: MAX_OUTPUT,
        ws_path: ws_path.unwrap_or("/").to_string(),
        ws_origin: a.origin.clone(),
        linger: a.connection_linger,
        ..Default::default()
    };
    if kind.is_secure() {
        settings.tls_client = Some(client_config(tls)?);
        if serves_tls {
            settings.tls_server = Some(server_config(tls)?);
        }
    }
    Ok(SideTransport {
        kind,
        settings,
        model: connection_model(&a.connections)?,
        host: host.to_string(),
        keepalive: (!a.keepalive.is_zero()).then_some(a.keepalive),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models() {
        assert_eq!(
            connection_model("per-call").unwrap(),
            ConnectionModel::PerCall
        );
        assert_eq!(
            connection_model("per-worker").unwrap(),
            ConnectionModel::PerWorker
        );
        assert_eq!(connection_model("8").unwrap(), ConnectionModel::Pool(8));
        assert!(connection_model("0").is_err());
        assert!(connection_model("lots").is_err());
    }
}

//! `--target`: where calls go and over what. `HOST[:PORT]`, a SIP URI
//! (`sip:user@host:port;transport=tcp`, `sips:host` for TLS), or a WebSocket URL
//! (`ws://host:port/path`, `wss://…`). Host names resolve to A and AAAA records;
//! `--ipv4`/`--ipv6` pick one family.

use std::net::{SocketAddr, ToSocketAddrs};

use super::UsageError;
use crate::sip::uri::SipUri;
use crate::transport::kind::TransportKind;

/// Where calls go, from `--target`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Request-URI of new calls.
    pub uri: String,
    pub user: Option<String>,
    /// The host as written (no brackets): TLS server name, WebSocket `Host`.
    pub host: String,
    /// The transport the target names, if it does.
    pub transport: Option<TransportKind>,
    /// WebSocket request path (`ws://host/path`).
    pub ws_path: Option<String>,
}

/// Which address family a host name may resolve to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

pub fn parse_target(text: &str) -> Result<Target, UsageError> {
    parse_target_for(text, Family::Any)
}

pub fn parse_target_for(text: &str, family: Family) -> Result<Target, UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "--target `{text}`: {why}; use HOST:PORT, sip:[user@]host[:port][;transport=tcp|tls|ws|wss], sips:host or ws[s]://host[:port]/path"
        ))
    };
    let scheme = text.split(':').next().unwrap_or("").to_ascii_lowercase();
    let (host, port, user, transport, ws_path, uri) = match scheme.as_str() {
        "ws" | "wss" if text.contains("://") => {
            let kind = if scheme == "ws" {
                TransportKind::Ws
            } else {
                TransportKind::Wss
            };
            let rest = &text[scheme.len() + 3..];
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], rest[i..].to_string()),
                None => (rest, "/".to_string()),
            };
            let (host, port) = split_host_port(authority, kind.default_port())
                .ok_or_else(|| bad("bad host or port"))?;
            let uri = format!(
                "sip:{}:{port};transport={}",
                bracket(&host),
                kind.uri_param()
            );
            (host, port, None, Some(kind), Some(path), uri)
        }
        "sip" | "sips" => {
            let u = SipUri::parse(text).ok_or_else(|| bad("not a SIP URI"))?;
            let mut transport = uri_transport(u.params).map_err(|e| bad(&e))?;
            if scheme == "sips" {
                // RFC 3261 §26.2.2: sips means TLS on every hop (or WSS).
                if transport.is_some_and(|t| !t.is_secure()) {
                    return Err(bad("a sips: URI needs a TLS transport"));
                }
                transport.get_or_insert(TransportKind::Tls);
            }
            let default = transport.unwrap_or(TransportKind::Udp).default_port();
            (
                u.host.to_string(),
                u.port.unwrap_or(default),
                u.user.map(str::to_string),
                transport,
                None,
                text.to_string(),
            )
        }
        _ => {
            let (host, port) =
                split_host_port(text, 5060).ok_or_else(|| bad("bad host or port"))?;
            let uri = format!("sip:{}:{port}", bracket(&host));
            (host, port, None, None, None, uri)
        }
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve: {e}")))?
        .find(|a| match family {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        })
        .ok_or_else(|| {
            bad(match family {
                Family::Any => "resolves to no address",
                Family::V4 => "has no IPv4 address (--ipv4)",
                Family::V6 => "has no IPv6 address (--ipv6)",
            })
        })?;
    Ok(Target {
        addr,
        uri,
        user,
        host,
        transport,
        ws_path,
    })
}

pub(crate) fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `;transport=` among URI parameters.
fn uri_transport(params: &str) -> Result<Option<TransportKind>, String> {
    for p in params.split(';') {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("transport")
        {
            return v.trim().parse().map(Some);
        }
    }
    Ok(None)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        _ if text.parse::<std::net::Ipv6Addr>().is_ok() => Some((text.to_string(), default_port)),
        _ if !text.is_empty() => Some((text.to_string(), default_port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let t = parse_target("127.0.0.1:5070").unwrap();
        assert_eq!(t.addr, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(t.uri, "sip:127.0.0.1:5070");
        assert!(t.user.is_none() && t.transport.is_none());
        let t = parse_target("127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 5060);
        let t = parse_target("[::1]:5080").unwrap();
        assert_eq!(t.addr, "[::1]:5080".parse().unwrap());
        assert_eq!(t.uri, "sip:[::1]:5080");
        assert!(parse_target("127.0.0.1:notaport").is_err());
        assert!(parse_target("").is_err());
    }

    #[test]
    fn transports_from_the_target() {
        let t = parse_target("sip:alice@127.0.0.1:5070;transport=TCP").unwrap();
        assert_eq!(t.transport, Some(TransportKind::Tcp));
        assert_eq!(t.user.as_deref(), Some("alice"));
        let t = parse_target("sips:127.0.0.1").unwrap();
        assert_eq!(t.transport, Some(TransportKind::Tls));
        assert_eq!(t.addr.port(), 5061);
        assert!(parse_target("sips:127.0.0.1;transport=udp").is_err());
        assert!(parse_target("sip:127.0.0.1;transport=sctp").is_err());
        let t = parse_target("ws://127.0.0.1:8080/sip").unwrap();
        assert_eq!(t.transport, Some(TransportKind::Ws));
        assert_eq!(t.ws_path.as_deref(), Some("/sip"));
        assert_eq!(t.uri, "sip:127.0.0.1:8080;transport=ws");
        let t = parse_target("wss://[::1]").unwrap();
        assert_eq!(t.addr, "[::1]:443".parse().unwrap());
        assert_eq!(t.host, "::1");
        assert_eq!(t.ws_path.as_deref(), Some("/"));
    }

    #[test]
    fn family_preference() {
        let t = parse_target_for("localhost:5060", Family::V4).unwrap();
        assert!(t.addr.is_ipv4());
        assert!(parse_target_for("127.0.0.1", Family::V6).is_err());
    }
}

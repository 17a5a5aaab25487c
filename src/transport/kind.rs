//! Which SIP transport a side speaks, and what follows from it: the Via token, the
//! default port, whether a connection carries it, whether retransmissions run
//! (RFC 3261 §17: not over reliable transports) and whether TLS is underneath.

use std::fmt;
use std::str::FromStr;

/// The largest message one UDP datagram carries: 65,535 bytes of IPv4 packet less
/// its 20-byte header and UDP's 8. Larger than a link's MTU, the kernel fragments
/// it. (IPv6 would take 65,527; one limit for both keeps a scenario's verdict the
/// same whichever family the run uses.)
pub const MAX_UDP_MESSAGE: usize = 65_507;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
    /// SIP over WebSocket (RFC 7118), plain.
    Ws,
    /// SIP over WebSocket over TLS.
    Wss,
}

impl TransportKind {
    /// The token in `Via: SIP/2.0/<token>`.
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }

    /// The `;transport=` URI parameter value.
    pub fn uri_param(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
        }
    }

    /// Port used when a target names none (RFC 3261 §19.1.2; WebSocket: RFC 6455).
    pub fn default_port(self) -> u16 {
        match self {
            TransportKind::Udp | TransportKind::Tcp => 5060,
            TransportKind::Tls => 5061,
            TransportKind::Ws => 80,
            TransportKind::Wss => 443,
        }
    }

    /// Carried over a connection (everything but UDP).
    pub fn is_connection(self) -> bool {
        self != TransportKind::Udp
    }

    /// Reliable: transactions do not retransmit and their wait timers are zero.
    pub fn is_reliable(self) -> bool {
        self.is_connection()
    }

    /// TLS underneath (tls, wss).
    pub fn is_secure(self) -> bool {
        matches!(self, TransportKind::Tls | TransportKind::Wss)
    }

    /// WebSocket framing (ws, wss).
    pub fn is_websocket(self) -> bool {
        matches!(self, TransportKind::Ws | TransportKind::Wss)
    }

    /// Messages go as a plain byte stream (tcp, tls) that the peer reassembles, so
    /// one message may be written in pieces. Not UDP (a datagram is a message) nor
    /// WebSocket (a frame is one whole message, RFC 7118).
    pub fn is_stream(self) -> bool {
        matches!(self, TransportKind::Tcp | TransportKind::Tls)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri_param())
    }
}

impl FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "udp" => TransportKind::Udp,
            "tcp" => TransportKind::Tcp,
            "tls" => TransportKind::Tls,
            "ws" => TransportKind::Ws,
            "wss" => TransportKind::Wss,
            _ => return Err(format!("unknown transport `{s}` (udp, tcp, tls, ws, wss)")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_properties() {
        for k in [
            TransportKind::Udp,
            TransportKind::Tcp,
            TransportKind::Tls,
            TransportKind::Ws,
            TransportKind::Wss,
        ] {
            assert_eq!(k.to_string().parse::<TransportKind>(), Ok(k));
            assert_eq!(k.via_token().parse::<TransportKind>(), Ok(k));
        }
        assert!(!TransportKind::Udp.is_reliable());
        assert!(TransportKind::Wss.is_secure() && TransportKind::Wss.is_websocket());
        assert_eq!(TransportKind::Tls.default_port(), 5061);
        assert!("sctp".parse::<TransportKind>().is_err());
        assert!(TransportKind::Tls.is_stream() && !TransportKind::Ws.is_stream());
        assert!(!TransportKind::Udp.is_stream());
    }
}

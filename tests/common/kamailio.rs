//! Kamailio as the real peer of the transport tests: `KamailioRig` runs
//! tests/fixtures/kamailio/transports.cfg on 127.0.0.1 with UDP, TCP, TLS, WS and
//! WSS listeners on ports chosen here (so tests run in parallel), routing initial
//! INVITEs and OPTIONS to one UAS over UDP, TCP or TLS. It makes its certificates
//! (`certs`), writes the tls module's configuration next to them, waits until
//! every listener is up, and stops Kamailio's whole process group when dropped.
//!
//! `probe` sends one OPTIONS to the proxy itself over any of the five transports
//! with no sipwright involved (raw sockets; `openssl s_client` under TLS), so the
//! rig can be checked on its own. Missing programs or modules skip the test with
//! a printed reason (a failure under CI=true, see `require`/`unavailable`).
//!
//! Also here: starting any Kamailio configuration in its own process group
//! (`spawn_kamailio`), shared with tests/kamailio.rs and the rtpengine relay.

use super::certs::{Certs, certs};
use super::process::{stop_group, tail, wait_for, wait_ready};
use super::{free_tcp_port, require, scratch, sipwright, text, unavailable};

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the rig's Kamailio listens on, in the order the tests go through them.
pub const TRANSPORTS: [&str; 5] = ["udp", "tcp", "tls", "ws", "wss"];

/// `tests/fixtures/kamailio/NAME`.
pub fn kamailio_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kamailio")
        .join(name)
}

/// Starts `program -f cfg` in the foreground (-DD -E: logs to stderr) with `shm_mb`
/// MB of shared memory and `-A DEFINE` for each of `defines`, in its own process
/// group so `stop_group` stops its workers too. Its output goes to
/// scratch `TAG.log` (returned), its pid file and sockets to scratch `TAG-run`.
pub fn spawn_kamailio(
    program: &Path,
    cfg: &Path,
    tag: &str,
    shm_mb: u32,
    defines: &[String],
) -> (Child, PathBuf) {
    let log_path = scratch(&format!("{tag}.log"));
    let run_dir = scratch(&format!("{tag}-run"));
    std::fs::create_dir_all(&run_dir).unwrap();
    let log = File::create(&log_path).unwrap();
    let child = Command::new(program)
        .arg("-f")
        .arg(cfg)
        .args(["-DD", "-E", "-m", &shm_mb.to_string(), "-M", "32", "-Y"])
        .arg(&run_dir)
        .args(defines.iter().flat_map(|d| ["-A", d]))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start kamailio");
    (child, log_path)
}

/// Whether `sipwright options URI` gets a 200 (within 300 ms); what it printed
/// otherwise. A readiness check for a proxy started by a test.
pub fn answers_options(uri: &str) -> Result<(), String> {
    let o = sipwright(&["options", uri, "--timeout", "300ms"]);
    o.status.success().then_some(()).ok_or_else(|| text(&o))
}

/// How the rig's Kamailio is set up.
#[derive(Clone, Debug)]
pub struct RigOptions {
    /// Where the UAS listens (127.0.0.1).
    pub uas_port: u16,
    /// How Kamailio reaches it: "udp", "tcp" or "tls" (not ws/wss: Kamailio
    /// cannot open WebSocket connections, see transports.cfg).
    pub uas_transport: &'static str,
    /// UDP workers (CHILDREN).
    pub children: u32,
    /// Workers for all stream sockets (TCP_CHILDREN).
    pub tcp_children: u32,
    /// The TLS and WSS listeners demand a client certificate signed by the test
    /// CA (Kamailio's tls `require_certificate`).
    pub require_client_cert: bool,
}

impl RigOptions {
    /// A UAS on `uas_port` reached over UDP, two workers of each kind, no client
    /// certificates.
    pub fn new(uas_port: u16) -> RigOptions {
        RigOptions {
            uas_port,
            uas_transport: "udp",
            children: 2,
            tcp_children: 2,
            require_client_cert: false,
        }
    }
}

/// A running Kamailio with transports.cfg; stopped (its process group) on drop.
pub struct KamailioRig {
    pub udp_port: u16,
    /// TCP, TLS, WS and WSS each have their own port (Kamailio tells WS from
    /// TCP by port only).
    pub tcp_port: u16,
    pub tls_port: u16,
    pub ws_port: u16,
    pub wss_port: u16,
    pub options: RigOptions,
    pub certs: &'static Certs,
    child: Option<Child>,
    log: PathBuf,
    tag: String,
}

impl KamailioRig {
    /// Kamailio routing to our UAS on `uas_port` over UDP. See `start_with`.
    pub fn start(tag: &str, uas_port: u16) -> Option<KamailioRig> {
        KamailioRig::start_with(tag, RigOptions::new(uas_port))
    }

    /// Starts Kamailio and waits until its UDP listener answers an OPTIONS and
    /// every stream listener accepts a connection. None (after printing why)
    /// when kamailio, its tls/websocket modules or openssl are missing.
    pub fn start_with(tag: &str, options: RigOptions) -> Option<KamailioRig> {
        let program = require("kamailio")?;
        if let Some(missing) = missing_modules() {
            unavailable(
                &format!("kamailio modules {missing:?} are not installed"),
                "apt-get install kamailio-tls-modules kamailio-websocket-modules",
            );
            return None;
        }
        let certs = certs()?;
        let tag = format!("kamt-{tag}");
        let tls_cfg = scratch(&format!("{tag}-tls.cfg"));
        std::fs::write(&tls_cfg, tls_config(certs, options.require_client_cert)).unwrap();

        let udp_port = super::free_udp_port();
        let [tcp_port, tls_port, ws_port, wss_port] = [(); 4].map(|()| free_tcp_port());
        let defines = vec![
            format!("UDP_PORT={udp_port}"),
            format!("TCP_PORT={tcp_port}"),
            format!("TLS_PORT={tls_port}"),
            format!("WS_PORT={ws_port}"),
            format!("WSS_PORT={wss_port}"),
            format!("UAS_PORT={}", options.uas_port),
            format!("UAS_TRANSPORT={}", options.uas_transport),
            format!("CHILDREN={}", options.children),
            format!("TCP_CHILDREN={}", options.tcp_children),
            format!("TLS_CFG=\"{}\"", tls_cfg.display()),
        ];
        let (child, log) = spawn_kamailio(
            &program,
            &kamailio_fixture("transports.cfg"),
            &tag,
            256,
            &defines,
        );
        let mut rig = KamailioRig {
            udp_port,
            tcp_port,
            tls_port,
            ws_port,
            wss_port,
            options,
            certs,
            child: Some(child),
            log,
            tag,
        };
        rig.wait_until_up();
        Some(rig)
    }

    /// The listener port of `transport` (udp, tcp, tls, ws, wss).
    pub fn port(&self, transport: &str) -> u16 {
        match transport {
            "udp" => self.udp_port,
            "tcp" => self.tcp_port,
            "tls" => self.tls_port,
            "ws" => self.ws_port,
            "wss" => self.wss_port,
            _ => panic!("no such transport: {transport}"),
        }
    }

    /// `--target` for a UAC over `transport`, in the form the CLI documents for
    /// it: host:port for UDP, a SIP URI with ;transport=tcp, a sips: URI for
    /// TLS, ws:// and wss:// URLs.
    pub fn target(&self, transport: &str) -> String {
        let port = self.port(transport);
        match transport {
            "udp" => format!("127.0.0.1:{port}"),
            "tcp" => format!("sip:127.0.0.1:{port};transport=tcp"),
            "tls" => format!("sips:127.0.0.1:{port}"),
            "ws" => format!("ws://127.0.0.1:{port}/"),
            "wss" => format!("wss://127.0.0.1:{port}/"),
            _ => panic!("no such transport: {transport}"),
        }
    }

    /// The last lines of Kamailio's log, for failure messages.
    pub fn logs(&self) -> String {
        log_tail(&self.tag, &self.log)
    }

    /// Waits until an OPTIONS sent to the proxy with a user part, which it
    /// forwards to the UAS over the UAS transport, comes back 200: the whole
    /// chain is up. Only for a UAS that answers OPTIONS outside calls
    /// (sipwright's uas does; SIPp's built-in uas would count it as a call).
    pub fn wait_for_uas(&self, limit: Duration) -> Result<(), String> {
        let ruri = format!("sip:uas@127.0.0.1:{}", self.udp_port);
        let end = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < end {
            match udp_options(self.udp_port, &ruri, Duration::from_millis(300)) {
                Some(r) if r.starts_with("SIP/2.0 200") => return Ok(()),
                Some(r) => last = r,
                None => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the UAS on {}:{} is not reachable through kamailio after {limit:?}; last answer:\n{last}\n{}",
            self.options.uas_transport,
            self.options.uas_port,
            self.logs()
        ))
    }

    /// One OPTIONS to the proxy itself (answered by its script, no UAS needed)
    /// over `transport`, with a raw socket, a hand-made WebSocket upgrade and
    /// frame for ws/wss, and `openssl s_client` (verifying against the test CA
    /// and 127.0.0.1) under tls/wss, presenting `client` (certificate, key) when
    /// given. Returns the response, or what went wrong.
    pub fn probe(&self, transport: &str, client: Option<(&Path, &Path)>) -> Result<String, String> {
        let port = self.port(transport);
        let ruri = format!("sip:127.0.0.1:{port}");
        if transport == "udp" {
            return udp_options(port, &ruri, Duration::from_secs(2))
                .ok_or_else(|| "no answer over UDP".to_string());
        }
        let mut conn = self.connect(transport, client)?;
        conn.send(&options_request(&ruri, conn.via, "probe.invalid"))?;
        conn.receive()
    }

    /// A call over `transport` (tcp, tls, ws, wss) that the callee hangs up, made
    /// by hand like `probe`: INVITE, ACK along the Record-Route set, then the
    /// callee's BYE must arrive on our connection, and gets a 200. The Contact we
    /// give names an unreachable host (`uac.invalid`, as a WebSocket client's
    /// does), so the BYE can only find us through the alias Kamailio put in it.
    /// Needs a UAS that hangs up (tests/fixtures/kamailio/sipp-uas-bye.xml).
    /// Returns the BYE as received.
    pub fn call_hung_up_by_callee(&self, transport: &str) -> Result<String, String> {
        let mut conn = self.connect(transport, None)?;
        let port = self.port(transport);
        let ruri = format!("sip:service@127.0.0.1:{port}");
        let id: u64 = rand::random();
        let (call_id, from) = (
            format!("bye-{id:x}@uac.invalid"),
            format!("<sip:uac@uac.invalid>;tag=f{id:x}"),
        );
        let via = conn.via;
        let request = |method: &str, uri: &str, to: &str, routes: &[String]| {
            let route: String = routes.iter().map(|r| format!("Route: {r}\r\n")).collect();
            let branch: u64 = rand::random();
            format!(
                "{method} {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/{} uac.invalid;branch=z9hG4bK-{branch:x};rport\r\n\
                 {route}Max-Forwards: 70\r\n\
                 From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n\
                 Contact: <sip:uac@uac.invalid;transport={transport}>\r\n\
                 Content-Length: 0\r\n\r\n",
                via
            )
        };
        conn.send(&request("INVITE", &ruri, &format!("<{ruri}>"), &[]))?;
        let answer = loop {
            let r = conn.receive()?;
            if !r.starts_with("SIP/2.0 1") {
                break r;
            }
        };
        if !answer.starts_with("SIP/2.0 200") {
            return Err(format!("INVITE answered:\n{answer}"));
        }
        // The route set is the Record-Route in reverse; the target the Contact.
        let mut routes: Vec<String> = headers(&answer, "record-route")
            .iter()
            .flat_map(|h| h.split(',').map(|r| r.trim().to_string()))
            .collect();
        routes.reverse();
        let to = headers(&answer, "to").first().cloned().unwrap_or_default();
        let contact = headers(&answer, "contact")
            .first()
            .cloned()
            .unwrap_or_default();
        let target = contact
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or("");
        conn.send(&request("ACK", target, &to, &routes))?;

        let bye = conn.receive()?;
        if !bye.starts_with("BYE ") {
            return Err(format!("expected the callee's BYE, got:\n{bye}"));
        }
        let copied: String = ["via", "from", "to", "call-id", "cseq"]
            .iter()
            .flat_map(|name| headers(&bye, name).into_iter().map(move |v| (name, v)))
            .map(|(name, v)| format!("{name}: {v}\r\n"))
            .collect();
        conn.send(&format!(
            "SIP/2.0 200 OK\r\n{copied}Content-Length: 0\r\n\r\n"
        ))?;
        Ok(bye)
    }

    /// A connection to the `transport` listener (tcp, tls, ws, wss), upgraded to
    /// WebSocket with the `sip` subprotocol for ws/wss.
    fn connect(
        &self,
        transport: &str,
        client: Option<(&Path, &Path)>,
    ) -> Result<SipConnection, String> {
        let port = self.port(transport);
        let mut pipe = match transport {
            "tcp" | "ws" => Pipe::tcp(port)?,
            _ => Pipe::tls(
                port,
                &self.certs.ca,
                client,
                &scratch(&format!("{}-s_client.err", self.tag)),
            )?,
        };
        let websocket = transport == "ws" || transport == "wss";
        if websocket {
            pipe.send(ws_upgrade(&format!("127.0.0.1:{port}")).as_bytes())?;
            let head = pipe.until(b"\r\n\r\n", Instant::now() + Duration::from_secs(5))?;
            let status = head.lines().next().unwrap_or("");
            if !status.contains(" 101 ") {
                return Err(format!("the upgrade was refused:\n{head}"));
            }
            if !head
                .to_ascii_lowercase()
                .contains("sec-websocket-protocol: sip")
            {
                return Err(format!("101 without the sip subprotocol:\n{head}"));
            }
        }
        let via = match transport {
            "tcp" => "TCP",
            "tls" => "TLS",
            "ws" => "WS",
            _ => "WSS",
        };
        Ok(SipConnection {
            pipe,
            websocket,
            via,
        })
    }

    fn wait_until_up(&mut self) {
        let probe = format!("sip:127.0.0.1:{}", self.udp_port);
        let (udp, streams) = (
            self.udp_port,
            [self.tcp_port, self.tls_port, self.ws_port, self.wss_port],
        );
        let (log, tag) = (self.log.clone(), self.tag.clone());
        wait_ready(
            self.child.as_mut().unwrap(),
            "kamailio",
            Duration::from_secs(10),
            || {
                // Kamailio opens every listener before it forks its workers,
                // and a worker answers the OPTIONS: after that the stream
                // listeners only need to accept.
                udp_options(udp, &probe, Duration::from_millis(300))
                    .filter(|r| r.starts_with("SIP/2.0 200"))
                    .ok_or("no 200 to an OPTIONS over UDP")?;
                match streams
                    .iter()
                    .find(|&&p| TcpStream::connect(("127.0.0.1", p)).is_err())
                {
                    Some(p) => Err(format!("TCP port {p} does not accept")),
                    None => Ok(()),
                }
            },
            || log_tail(&tag, &log),
        );
    }
}

impl Drop for KamailioRig {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child);
        }
    }
}

/// SIP messages over a `Pipe`: whole WebSocket text frames, or header block plus
/// Content-Length bytes on a plain stream. Each receive waits at most 5 s.
struct SipConnection {
    pipe: Pipe,
    websocket: bool,
    /// The Via transport token.
    via: &'static str,
}

impl SipConnection {
    fn send(&mut self, message: &str) -> Result<(), String> {
        if self.websocket {
            self.pipe.send(&ws_frame(message.as_bytes()))
        } else {
            self.pipe.send(message.as_bytes())
        }
    }

    fn receive(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        if !self.websocket {
            let head = self.pipe.until(b"\r\n\r\n", deadline)?;
            let length = headers(&head, "content-length")
                .iter()
                .chain(&headers(&head, "l"))
                .find_map(|v| v.parse().ok())
                .unwrap_or(0);
            let body = self.pipe.take(length, deadline)?;
            return Ok(head + &String::from_utf8_lossy(&body));
        }
        loop {
            // Server frames are not masked; control frames (a keepalive ping)
            // are skipped.
            let start = self.pipe.take(2, deadline)?;
            let length =
                match start[1] & 0x7f {
                    126 => u16::from_be_bytes(self.pipe.take(2, deadline)?.try_into().unwrap())
                        as usize,
                    127 => u64::from_be_bytes(self.pipe.take(8, deadline)?.try_into().unwrap())
                        as usize,
                    n => n as usize,
                };
            let payload = self.pipe.take(length, deadline)?;
            if start[0] & 0x0f == 1 {
                return Ok(String::from_utf8_lossy(&payload).into_owned());
            }
        }
    }
}

/// The values of header `name` (full name, case-insensitive) in a message's
/// header block.
fn headers(message: &str, name: &str) -> Vec<String> {
    message
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// The end of a Kamailio log, headed with its tag, for failure messages.
pub fn log_tail(tag: &str, log: &Path) -> String {
    format!("kamailio log ({tag}):\n{}", tail(log, 40))
}

/// The tls module's configuration: the server side presents the test server
/// certificate (and, when asked, demands a client certificate from the test CA);
/// the client side (Kamailio connecting to a TLS UAS) verifies the UAS against
/// the test CA.
fn tls_config(certs: &Certs, require_client_cert: bool) -> String {
    let demand = if require_client_cert { "yes" } else { "no" };
    format!(
        "[server:default]\n\
         method = TLSv1.2+\n\
         verify_certificate = {demand}\n\
         require_certificate = {demand}\n\
         certificate = {}\n\
         private_key = {}\n\
         ca_list = {}\n\
         \n\
         [client:default]\n\
         method = TLSv1.2+\n\
         verify_certificate = yes\n\
         require_certificate = yes\n\
         ca_list = {}\n",
        certs.server_cert.display(),
        certs.server_key.display(),
        certs.ca.display(),
        certs.ca.display(),
    )
}

/// The modules transports.cfg needs beyond the base package, when some are
/// missing (Debian ships them in kamailio-tls-modules and
/// kamailio-websocket-modules). Looked for in the module directories of the
/// usual layouts, multiarch included.
fn missing_modules() -> Option<Vec<&'static str>> {
    const NEEDED: [&str; 4] = ["tls.so", "websocket.so", "xhttp.so", "nathelper.so"];
    let mut dirs: Vec<PathBuf> = [
        "/usr/lib/kamailio/modules",
        "/usr/lib64/kamailio/modules",
        "/usr/local/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path().join("kamailio/modules")));
    }
    let missing: Vec<&str> = NEEDED
        .into_iter()
        .filter(|m| !dirs.iter().any(|d| d.join(m).is_file()))
        .collect();
    (!missing.is_empty()).then_some(missing)
}

/// An OPTIONS request; `sent_by` goes in the Via (Kamailio adds received/rport).
pub fn options_request(ruri: &str, via_transport: &str, sent_by: &str) -> String {
    let id: u64 = rand::random();
    format!(
        "OPTIONS {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/{via_transport} {sent_by};branch=z9hG4bK-probe{id:x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=p{id:x}\r\n\
         To: <{ruri}>\r\n\
         Call-ID: probe-{id:x}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// One OPTIONS over UDP to 127.0.0.1:`port`; the first datagram back, if any
/// within `timeout`.
pub fn udp_options(port: u16, ruri: &str, timeout: Duration) -> Option<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    let sent_by = socket.local_addr().unwrap().to_string();
    let request = options_request(ruri, "UDP", &sent_by);
    socket
        .send_to(request.as_bytes(), ("127.0.0.1", port))
        .ok()?;
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// An RFC 6455 client upgrade offering the `sip` subprotocol (RFC 7118).
fn ws_upgrade(host: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: sip\r\n\r\n"
    )
}

/// `payload` as one masked text frame (a client must mask; a fixed mask is
/// enough for a probe).
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x81];
    let mut frame = vec![0x81];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// A byte stream to a listener: a TCP socket, or `openssl s_client` speaking TLS
/// for us through its stdin/stdout. A thread reads whatever comes back, so waits
/// have deadlines.
struct Pipe {
    /// None once closed (on drop).
    writer: Option<Box<dyn Write>>,
    received: mpsc::Receiver<Vec<u8>>,
    got: Vec<u8>,
    /// What `until` has handed out already.
    seen: usize,
    socket: Option<TcpStream>,
    s_client: Option<(Child, PathBuf)>,
}

impl Pipe {
    fn tcp(port: u16) -> Result<Pipe, String> {
        let socket =
            TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {port}: {e}"))?;
        let reader = socket.try_clone().unwrap();
        let writer = Box::new(socket.try_clone().unwrap());
        Ok(Pipe::new(writer, reader, Some(socket), None))
    }

    /// `openssl s_client` to 127.0.0.1:`port`, trusting `ca` only and checking
    /// that the certificate is for 127.0.0.1. -quiet keeps it from printing the
    /// session but also makes it ignore the end of its input; -no_ign_eof undoes
    /// that, so closing its stdin flushes what we wrote, closes the TLS session
    /// and ends it (killing it could lose the last message). Its stderr (verify
    /// results, alerts) goes to `stderr_log`, quoted in errors.
    fn tls(
        port: u16,
        ca: &Path,
        client: Option<(&Path, &Path)>,
        stderr_log: &Path,
    ) -> Result<Pipe, String> {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .arg("-CAfile")
            .arg(ca)
            .args(["-verify_return_error", "-verify_ip", "127.0.0.1"])
            .args(["-quiet", "-no_ign_eof"]);
        if let Some((cert, key)) = client {
            cmd.arg("-cert").arg(cert).arg("-key").arg(key);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(stderr_log).unwrap())
            .spawn()
            .map_err(|e| format!("start openssl s_client: {e}"))?;
        let writer = Box::new(child.stdin.take().unwrap());
        let reader = child.stdout.take().unwrap();
        Ok(Pipe::new(
            writer,
            reader,
            None,
            Some((child, stderr_log.to_path_buf())),
        ))
    }

    fn new(
        writer: Box<dyn Write>,
        mut reader: impl Read + Send + 'static,
        socket: Option<TcpStream>,
        s_client: Option<(Child, PathBuf)>,
    ) -> Pipe {
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pipe {
            writer: Some(writer),
            received,
            got: Vec::new(),
            seen: 0,
            socket,
            s_client,
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let writer = self.writer.as_mut().expect("open");
        writer
            .write_all(bytes)
            .and_then(|()| writer.flush())
            .map_err(|e| format!("send: {e}\n{}", self.stderr()))
    }

    /// Waits until `needle` arrives after what earlier calls returned; returns
    /// the text from there up to and including it.
    fn until(&mut self, needle: &[u8], deadline: Instant) -> Result<String, String> {
        loop {
            if let Some(at) = self.got[self.seen..]
                .windows(needle.len())
                .position(|w| w == needle)
            {
                let end = self.seen + at + needle.len();
                let text = String::from_utf8_lossy(&self.got[self.seen..end]).into_owned();
                self.seen = end;
                return Ok(text);
            }
            self.more(deadline, &format!("{:?}", String::from_utf8_lossy(needle)))?;
        }
    }

    /// The next `n` bytes after what earlier calls returned.
    fn take(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, String> {
        while self.got.len() < self.seen + n {
            self.more(deadline, "more bytes")?;
        }
        let bytes = self.got[self.seen..self.seen + n].to_vec();
        self.seen += n;
        Ok(bytes)
    }

    /// Waits for the next chunk from the reader thread.
    fn more(&mut self, deadline: Instant, waiting_for: &str) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.received.recv_timeout(left) {
            Ok(chunk) => {
                self.got.extend_from_slice(&chunk);
                Ok(())
            }
            Err(e) => {
                let why = if e == mpsc::RecvTimeoutError::Timeout {
                    "timed out"
                } else {
                    "connection closed"
                };
                Err(format!(
                    "{why} waiting for {waiting_for}; received:\n{}\n{}",
                    String::from_utf8_lossy(&self.got),
                    self.stderr()
                ))
            }
        }
    }

    fn stderr(&self) -> String {
        match &self.s_client {
            Some((_, log)) => format!(
                "openssl s_client stderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
            None => String::new(),
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // Either ends the reader thread: EOF on the socket (whose unsent bytes
        // still go out before the FIN) or on s_client's stdout.
        self.writer.take();
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
        if let Some((mut child, _)) = self.s_client.take()
            && wait_for(&mut child, Duration::from_secs(2)).is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

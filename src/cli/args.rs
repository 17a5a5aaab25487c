//! The raw command-line surface (clap). Validation and defaults that depend on
//! the scenario happen in the command modules.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::scenario::duration::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "sipwright",
    version,
    about = "SIP/RTP functional and load testing from YAML scenarios"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (a file or a built-in name) against a target, or against its
    /// peer with --loopback.
    Run(Box<RunArgs>),
    /// Check scenario files; every problem is printed as FILE:LINE:COL: message.
    Check(CheckArgs),
    /// List the built-in scenarios, print one (`scenarios show NAME`), or write a
    /// scenario pair from a call in a capture (`scenario from-pcap CAPTURE`).
    #[command(visible_alias = "scenario")]
    Scenarios(ScenariosArgs),
    /// Send one OPTIONS request and print the response and round-trip time.
    Options(OptionsArgs),
    /// SRTP tools: `srtp decrypt CAPTURE` decrypts SDES-SRTP media in a capture.
    Srtp(SrtpArgs),
    /// Send the torture pack (odd, invalid and field-born SIP messages) to a server
    /// one by one over UDP, check that it still answers an OPTIONS after each, and
    /// print a table: message, expected reaction, actual reaction, still alive.
    /// Exit 0 when every reaction was the expected one and the server stayed
    /// alive, 1 otherwise, 2 on usage errors.
    Torture(TortureArgs),
}

#[derive(Debug, Args)]
pub struct TortureArgs {
    /// The server under test: HOST:PORT or sip:HOST[:PORT] (UDP).
    #[arg(long, short = 't', required_unless_present = "list")]
    pub target: Option<String>,
    /// Send only these messages (names as `--list` prints them; repeatable or
    /// comma-separated).
    #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write the results: JUnit XML (.xml, one test case per message), Markdown
    /// (.md), the text table (.txt) or JSON (anything else). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub report: Vec<PathBuf>,
    /// How long to wait for a message's final response, and for the OPTIONS probe's
    /// answer after it.
    #[arg(long, default_value = "2s", value_parser = duration_arg)]
    pub timeout: Duration,
    /// Local address to send from (default: 0.0.0.0:0, or [::]:0 for an IPv6 target).
    #[arg(long, short = 'b')]
    pub bind: Option<String>,
    /// Use the pack in DIR (DIR/pack.yaml and the files it names) instead of the
    /// built-in one.
    #[arg(long, value_name = "DIR")]
    pub pack: Option<PathBuf>,
    /// Print the pack (name, category, expected reaction, description) and exit.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct SrtpArgs {
    #[command(subcommand)]
    pub command: SrtpCommand,
}

#[derive(Debug, Subcommand)]
pub enum SrtpCommand {
    /// Decrypt the SRTP/SRTCP in a pcap or pcapng capture with the SDES keys found in
    /// the same capture's SIP (a=crypto), or given with --key. Prints one line per
    /// stream; exit 0 when every keyed stream decrypted, 1 when packets failed
    /// authentication, 2 on unusable input.
    Decrypt(DecryptArgs),
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The capture (pcap or pcapng; Ethernet, VLAN, Linux cooked, raw IP, loopback).
    pub capture: PathBuf,
    /// Write the capture with every SRTP/SRTCP packet replaced by the plain RTP/RTCP
    /// (same format, timestamps and addresses; MKI and tag removed, lengths and
    /// checksums fixed). Packets that fail authentication are left out.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Write one WAV file (8 kHz, 16-bit, mono) per G.711 stream into DIR.
    #[arg(long, value_name = "DIR")]
    pub wav_dir: Option<PathBuf>,
    /// A key by hand, as in an a=crypto line without its tag: 'SUITE inline:KEY||SALT'
    /// (base64, optionally |LIFETIME|MKI:LEN and KDR=n). Applies to the --stream that
    /// follows it, or without one to every flow the capture's SIP gives no key for.
    /// Repeatable.
    #[arg(long, value_name = "'SUITE inline:KEY'")]
    pub key: Vec<String>,
    /// Destination IP:PORT of the packets the preceding --key protects (RTP and, with
    /// rtcp-mux, RTCP to the same address).
    #[arg(long, value_name = "IP:PORT")]
    pub stream: Vec<String>,
    /// Keep packets that fail authentication, unchanged, instead of dropping them.
    #[arg(long)]
    pub keep_failed: bool,
    /// Rollover counter values tried on a stream's first packet when it does not
    /// authenticate at 0 (a capture that starts more than 65,536 packets into a call).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub roc_trials: u32,
    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file, or the name of a built-in scenario (uac, uas, options, cancel, ...).
    pub scenario: String,
    /// Where calls go: HOST:PORT or a SIP URI (sip:user@host:port). Required for a UAC
    /// scenario unless --loopback.
    #[arg(long, short = 't')]
    pub target: Option<String>,
    /// Local address to bind (default: 127.0.0.1:0 with --loopback, otherwise
    /// 0.0.0.0:5060 for a UAS and 0.0.0.0:0 for a UAC). IPv6: [::]:5060, [::1]:0.
    #[arg(long, short = 'b')]
    pub bind: Option<String>,
    /// SIP transport: udp, tcp, tls, ws or wss (default: what the target says —
    /// `;transport=tcp`, `sips:`, `ws://`, `wss://` — else udp). A UAS listens on it.
    #[arg(long, value_name = "udp|tcp|tls|ws|wss")]
    pub transport: Option<String>,
    /// How calls share connections (tcp, tls, ws, wss): `per-call` (each call its own,
    /// as phones and browsers do; SIPp's -t tn), `per-worker` (one per worker thread,
    /// SIPp's -t t1) or a number N (N connections shared by all calls).
    #[arg(long, value_name = "per-call|per-worker|N", default_value = "per-call")]
    pub connections: String,
    /// TLS: trust the CA certificate(s) in this PEM file besides the system roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS: our certificate chain (PEM). A UAS serves it; a UAC presents it when
    /// the server asks for a client certificate.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS: the private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// TLS: do not verify the server's certificate (self-signed test proxies).
    #[arg(long)]
    pub insecure: bool,
    /// WebSocket: the Origin header of the upgrade request (browsers always send one).
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// Connections we opened and that were idle this long get a keep-alive (CRLFCRLF,
    /// RFC 5626; a ping frame over WebSocket). 0 turns keep-alives off.
    #[arg(long, default_value = "30s", value_parser = duration_arg)]
    pub keepalive: Duration,
    /// With --connections per-call: keep a call's connection open this long after
    /// the call ended (0: close at once, as SIPp's -t tn does). A peer still in its
    /// final wait (SIPp's uas pauses 4 s) may count a connection closed under it as
    /// a failed call.
    #[arg(long, default_value = "0s", value_parser = duration_arg)]
    pub connection_linger: Duration,
    /// Largest SIP message accepted on a connection; a larger one (or a header that
    /// never ends) closes that connection, counted.
    #[arg(long, value_name = "BYTES", default_value_t = 65_535)]
    pub max_message_size: usize,
    /// Resolve a target host name to IPv4 addresses only.
    #[arg(long, conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Resolve a target host name to IPv6 addresses only.
    #[arg(long)]
    pub ipv6: bool,
    /// IP written in Via/Contact/SDP (default: the bound IP, or the one routing to the target).
    #[arg(long)]
    pub local_ip: Option<String>,
    /// Number of calls: a UAC starts this many; a UAS serves this many and exits.
    /// Without --calls or --duration the run lasts until interrupted (Ctrl-C).
    #[arg(long, short = 'n')]
    pub calls: Option<u64>,
    /// New calls per second (fractions allowed). Calls start on an open-loop schedule:
    /// call k at k/rate whatever happened to earlier calls.
    #[arg(long, short = 'r', default_value_t = 10.0)]
    pub rate: f64,
    /// Add this many calls per second every --rate-interval (SIPp's -rate_increase).
    #[arg(long)]
    pub rate_increase: Option<f64>,
    /// How often --rate-increase applies.
    #[arg(long, default_value = "1s", value_parser = duration_arg)]
    pub rate_interval: Duration,
    /// Upper bound for --rate-increase.
    #[arg(long)]
    pub rate_max: Option<f64>,
    /// Piecewise-linear rate plan, e.g. "100@30s,500@60s,500@120s": rate 100 at 30 s,
    /// 500 at 60 s, held to 120 s, then the run stops starting calls. Replaces --rate.
    #[arg(long, value_name = "RATE@TIME,...")]
    pub ramp: Option<String>,
    /// Worker threads per side, each with its own socket (default: a UAC takes one per
    /// 15,000 calls/s of its peak rate, a UAS one per core; at most the number of cores).
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,
    /// Append one row per statistics interval: CSV, or JSON lines if FILE ends in .jsonl.
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Under load, wake every this long and handle in one batch the datagrams that
    /// arrived, the calls due to start and the timers due, instead of waking for each:
    /// less CPU per call, up to this much added latency and start lag (SIPp's timer
    /// resolution is 10 ms by default). 0 turns it off.
    #[arg(long, default_value = "1ms", value_parser = duration_arg)]
    pub batch_window: Duration,
    /// Statistics interval for --stats and the live display.
    #[arg(long, default_value = "1s", value_parser = duration_arg)]
    pub stats_interval: Duration,
    /// Most calls in progress at once; starts beyond it wait.
    #[arg(long, short = 'l')]
    pub concurrency: Option<usize>,
    /// Stop starting calls after this long (e.g. 30s, 5m).
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// Call length: sets the scenario variable `call_duration` (the built-in uac pauses
    /// that long between ACK and BYE).
    #[arg(long, short = 'd', value_parser = duration_arg)]
    pub call_duration: Option<Duration>,
    /// Set a scenario variable (repeatable): --set service=alice
    #[arg(long = "set", short = 's', value_name = "NAME=VALUE", value_parser = set_arg)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub inject: InjectArgs,
    /// Write the final report: JSON (.json), JUnit XML (.xml) or text (.txt). Repeatable.
    #[arg(long)]
    pub report: Vec<PathBuf>,
    /// Run the scenario's natural peer (its `peer:`, else the built-in uas for a UAC
    /// scenario and uac for a UAS one) in the same process on 127.0.0.1: no server
    /// needed.
    #[arg(long)]
    pub loopback: bool,
    /// With --loopback: run this scenario (a file or a built-in name) as the peer,
    /// instead of the one the scenario's `peer:` names.
    #[arg(long, value_name = "SCENARIO")]
    pub peer: Option<String>,
    /// Write every SIP message sent and received to this pcap file (Wireshark, tshark
    /// and sngrep read it), with the calls' RTP/RTCP as on the wire (SRTP stays
    /// encrypted; `sipwright srtp decrypt` opens it with the keys in the SIP).
    #[arg(long, value_name = "FILE.pcap")]
    pub trace: Option<PathBuf>,
    /// Leave RTP/RTCP out of `--trace` (SIP only), for long runs with many streams.
    #[arg(long, requires = "trace")]
    pub trace_no_media: bool,
    /// Write only the messages of failed calls to this pcap file (attach it to a red CI run).
    #[arg(long, value_name = "FILE.pcap")]
    pub trace_failed: Option<PathBuf>,
    /// Write every message as readable text, like `sipp -trace_msg`.
    #[arg(long, value_name = "FILE")]
    pub trace_msg: Option<PathBuf>,
    /// Print nothing but errors (no live figures, no summary).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// After an interrupt or the end of --duration, how long calls in progress may
    /// take to finish before they are counted as aborted.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub drain_timeout: Duration,
    /// SIP timer T1 (RTT estimate; retransmission base; 64·T1 bounds transactions).
    #[arg(long, default_value = "500ms", value_parser = duration_arg)]
    pub t1: Duration,
    /// SIP timer T2 (retransmission interval cap).
    #[arg(long, default_value = "4s", value_parser = duration_arg)]
    pub t2: Duration,
    /// SIP timer T4 (how long the network may hold a message).
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub t4: Duration,
    /// Local UDP ports for RTP/RTCP of calls with media: each call takes an even RTP
    /// port and the odd one above for RTCP; a port is reused only after its call ended.
    #[arg(long, value_name = "LOW-HIGH", default_value = "10000-49999", value_parser = port_range_arg)]
    pub rtp_ports: (u16, u16),
    /// One RTP/RTCP socket pair per worker for all its calls (every SDP advertises
    /// it; streams are told apart by the peer's address) instead of a pair per call:
    /// batched sends, fewer descriptors. For peers that send from the address they
    /// advertise; SBCs that expect a port per call need the default.
    #[arg(long)]
    pub rtp_shared: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files (or built-in names) to check.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Variables the run would get with --set, so they count as defined.
    #[arg(long = "set", short = 's', value_name = "NAME=VALUE", value_parser = set_arg)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub inject: InjectArgs,
}

/// Per-call data from a file.
#[derive(Debug, Args, Default)]
pub struct InjectArgs {
    /// Per-call data: a CSV whose header row names the columns ({{ user }}), or a
    /// SIPp -inf file (first line SEQUENTIAL/RANDOM/USER, fields {{ field0 }}…).
    /// Replaces the scenario's `inject:`; with --loopback both sides read it.
    #[arg(long, value_name = "FILE")]
    pub inject: Option<PathBuf>,
    /// Which row a call takes: sequential (call k takes row k), random, or per-worker
    /// (each worker owns a share of the rows). Default: the file's own (SIPp's first
    /// line), else sequential.
    #[arg(long, value_name = "ORDER", value_parser = ["sequential", "random", "per-worker"])]
    pub inject_order: Option<String>,
    /// Name the file's columns in order (e.g. `user,password` for a SIPp file, whose
    /// fields are otherwise {{ field0 }}, {{ field1 }}…; the built-in register
    /// scenarios read `user` and `password`).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub inject_columns: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScenariosArgs {
    #[command(subcommand)]
    pub action: Option<ScenariosAction>,
}

#[derive(Debug, Subcommand)]
pub enum ScenariosAction {
    /// Print a built-in scenario's YAML (a starting point for your own).
    Show { name: String },
    /// Turn one call in a capture into a scenario pair, uac.yaml and uas.yaml, that
    /// replays it: addresses, ports, tags, branches, Call-ID, CSeq numbers and
    /// Content-Length become template slots, every other byte is kept. Run the pair
    /// with `sipwright run DIR/uac.yaml --loopback`. Exit 0 when written, 2 on
    /// unusable input.
    FromPcap(FromPcapArgs),
}

#[derive(Debug, Args)]
pub struct FromPcapArgs {
    /// The capture (pcap or pcapng; SIP over UDP or TCP, IPv4 or IPv6, fragments).
    pub capture: PathBuf,
    /// The call to convert (default: the capture's only call; with several, the
    /// error lists them).
    #[arg(long, value_name = "ID")]
    pub call_id: Option<String>,
    /// Folder to write uac.yaml and uas.yaml into (created if missing).
    #[arg(long, short = 'o', value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Send every message exactly as captured (`raw: true`, or `bytes_base64:` for
    /// bytes that are not text): no slots, the capture's addresses and identifiers.
    #[arg(long)]
    pub exact: bool,
    /// Leave out the `pause` steps that keep the capture's timing.
    #[arg(long)]
    pub no_pauses: bool,
    /// Overwrite uac.yaml and uas.yaml when they exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct OptionsArgs {
    /// sip:HOST[:PORT] (or HOST[:PORT]).
    pub target: String,
    /// Local address to bind.
    #[arg(long, short = 'b')]
    pub bind: Option<String>,
    /// How long to wait for the final response.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub timeout: Duration,
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

fn port_range_arg(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("expected LOW-HIGH (e.g. 10000-49999), got `{s}`");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || hi <= lo {
        return Err(format!("`{s}`: LOW must be at least 1 and below HIGH"));
    }
    Ok((lo, hi))
}

fn set_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

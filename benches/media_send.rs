//! CPU per RTP packet for three ways of sending one packet on each of N streams:
//!
//! (a) one socket per stream, one `sendto` per packet (today's per-call sockets);
//! (b) one socket per stream, all packets of a round in one io_uring submission;
//! (c) one shared socket, `sendmmsg` in batches of 64 to N destination ports.
//!
//! Each of N sockets sends a 172-byte packet (G.711 20 ms + RTP header) per round
//! to its own sink socket on 127.0.0.1 (many sinks, like one peer port per call,
//! rather than one sink whose single receive queue would be the bottleneck). The
//! sinks are not read while a method runs, so no receiver thread competes for the
//! CPU; instead a repetition sends only as many rounds as a sink's default receive
//! buffer holds, and the sinks are drained (untimed) and counted afterwards, so a
//! loss would show. On loopback the receive path runs inside the sender's system
//! call, so the figures include delivery; that is the same for all three methods.
//!
//! CPU is getrusage user+sys of the sending thread (RUSAGE_THREAD) and of the
//! process (RUSAGE_SELF: would include io_uring worker threads, if any were used).
//! Methods are interleaved per repetition and medians reported, as the machine is
//! shared.
//!
//! On the 2-vCPU development VM (kernel 6.18, 2,000 streams, medians of 3 runs of
//! 7 repetitions): (a) 1.44 µs CPU per packet, (b) 1.60 (1.10x: io_uring's
//! per-entry work outweighs the syscalls it saves), (c) 1.22 (0.85x). The syscall
//! itself is a small part of a UDP send; most is the IP/UDP path (and, on
//! loopback, delivery into the sink).
//!
//! Usage: cargo bench --bench media_send -- [SOCKETS [ROUNDS [REPS]]]
//! or MEDIA_SEND_SOCKETS / MEDIA_SEND_ROUNDS / MEDIA_SEND_REPS (defaults 2000, 100, 7).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use sipwright::transport::limits::raise_nofile;
use sipwright::transport::media_socket::{MediaSocket, TimestampedBatch, send_batch_nowait};
use sipwright::transport::uring::{UringOptions, UringSender};

const PACKET_BYTES: usize = 172;

#[derive(Clone, Copy)]
enum Method {
    SendTo,
    /// Index into the io_uring variants.
    Uring(usize),
    SharedSendmmsg,
}

/// (b) and its variants: the default first.
const URING_VARIANTS: [(&str, UringOptions); 3] = [
    (
        "(b) io_uring SEND+addr, 1 submit/round",
        UringOptions {
            sendmsg: false,
            single_issuer: false,
        },
    ),
    (
        "(b2) io_uring SENDMSG",
        UringOptions {
            sendmsg: true,
            single_issuer: false,
        },
    ),
    (
        "(b3) io_uring SEND+addr, single issuer",
        UringOptions {
            sendmsg: false,
            single_issuer: true,
        },
    ),
];

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::SendTo => "(a) sendto, socket per stream",
            Method::Uring(i) => URING_VARIANTS[i].0,
            Method::SharedSendmmsg => "(c) shared socket, sendmmsg x64",
        }
    }
}

struct Sample {
    thread_cpu_us: f64,
    process_cpu_us: f64,
    wall_us: f64,
    sent: usize,
    failed: usize,
    delivered: usize,
}

fn main() {
    let positional: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let setting = |i: usize, env: &str, default: usize| {
        positional
            .get(i)
            .copied()
            .or_else(|| std::env::var(env).ok().and_then(|v| v.parse().ok()))
            .unwrap_or(default)
            .max(1)
    };
    let sockets = setting(0, "MEDIA_SEND_SOCKETS", 2000);
    let rounds = setting(1, "MEDIA_SEND_ROUNDS", 100);
    let reps = setting(2, "MEDIA_SEND_REPS", 7);

    match raise_nofile() {
        Ok((soft, _)) if (soft as usize) < 2 * sockets + 64 => {
            eprintln!("RLIMIT_NOFILE {soft} is too low for {sockets} streams (2 sockets each)");
            std::process::exit(1);
        }
        Err(e) => eprintln!("could not raise RLIMIT_NOFILE: {e}"),
        Ok(_) => {}
    }

    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let bind = || MediaSocket::bind(local).expect("bind 127.0.0.1");
    let senders: Vec<MediaSocket> = (0..sockets).map(|_| bind()).collect();
    let sinks: Vec<MediaSocket> = (0..sockets).map(|_| bind()).collect();
    let dests: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().unwrap()).collect();
    let shared = bind();
    let packet = [0x80u8; PACKET_BYTES];
    let mut urings: Vec<Option<UringSender>> = URING_VARIANTS
        .iter()
        .map(
            |(label, options)| match UringSender::with_options(sockets, *options) {
                Ok(u) => Some(u),
                Err(e) => {
                    eprintln!("io_uring unavailable ({e}): {label} skipped");
                    None
                }
            },
        )
        .collect();
    let mut batch = TimestampedBatch::new(64);

    println!(
        "{sockets} streams, {rounds} rounds per repetition, {reps} repetitions, \
         {PACKET_BYTES}-byte packets, one sink socket per stream on 127.0.0.1"
    );
    let methods = [
        Method::SendTo,
        Method::Uring(0),
        Method::Uring(1),
        Method::Uring(2),
        Method::SharedSendmmsg,
    ];
    let mut samples: Vec<Vec<Sample>> = methods.iter().map(|_| Vec::new()).collect();
    // One untimed warm-up repetition: page faults, slot buffers, socket hash tables.
    for rep in 0..=reps {
        for (m, method) in methods.iter().enumerate() {
            let send_round = |urings: &mut [Option<UringSender>]| -> (usize, usize) {
                match method {
                    Method::SendTo => {
                        let (mut sent, mut failed) = (0, 0);
                        for (s, d) in senders.iter().zip(&dests) {
                            match s.send_to(&packet, *d) {
                                Ok(true) => sent += 1,
                                _ => failed += 1,
                            }
                        }
                        (sent, failed)
                    }
                    Method::Uring(i) => {
                        let Some(u) = urings[*i].as_mut() else {
                            return (0, 0);
                        };
                        for (s, d) in senders.iter().zip(&dests) {
                            if u.queue(s.as_raw_fd(), *d, &packet).is_err() {
                                break;
                            }
                        }
                        match u.submit() {
                            Ok(results) => {
                                let ok = results.iter().filter(|r| r.is_ok()).count();
                                (ok, results.len() - ok)
                            }
                            Err(_) => (0, sockets),
                        }
                    }
                    Method::SharedSendmmsg => {
                        send_batch_nowait(&shared, dests.iter().map(|d| (*d, &packet[..])))
                    }
                }
            };
            if let Method::Uring(i) = method
                && urings[*i].is_none()
            {
                continue;
            }
            let t0 = Instant::now();
            let thread0 = cpu(libc::RUSAGE_THREAD);
            let self0 = cpu(libc::RUSAGE_SELF);
            let (mut sent, mut failed) = (0, 0);
            for _ in 0..rounds {
                let (s, f) = send_round(&mut urings);
                sent += s;
                failed += f;
            }
            let thread_cpu = cpu(libc::RUSAGE_THREAD) - thread0;
            let self_cpu = cpu(libc::RUSAGE_SELF) - self0;
            let wall = t0.elapsed();
            let delivered = drain(&sinks, &mut batch);
            if rep == 0 {
                continue;
            }
            let packets = (sockets * rounds) as f64;
            samples[m].push(Sample {
                thread_cpu_us: thread_cpu.as_secs_f64() * 1e6 / packets,
                process_cpu_us: self_cpu.as_secs_f64() * 1e6 / packets,
                wall_us: wall.as_secs_f64() * 1e6 / packets,
                sent,
                failed,
                delivered,
            });
        }
    }

    println!(
        "{:<40} {:>14} {:>15} {:>12} {:>9} {:>9} {:>7}",
        "method (median of reps)",
        "µs CPU/pkt thr",
        "µs CPU/pkt proc",
        "µs wall/pkt",
        "vs (a)",
        "not sent",
        "lost"
    );
    let base = median(samples[0].iter().map(|s| s.thread_cpu_us));
    for (method, samples) in methods.iter().zip(&samples) {
        if samples.is_empty() {
            continue;
        }
        let thread = median(samples.iter().map(|s| s.thread_cpu_us));
        let process = median(samples.iter().map(|s| s.process_cpu_us));
        let wall = median(samples.iter().map(|s| s.wall_us));
        let failed: usize = samples.iter().map(|s| s.failed).sum();
        let lost: usize = samples
            .iter()
            .map(|s| s.sent.saturating_sub(s.delivered))
            .sum();
        let spread = {
            let mut v: Vec<f64> = samples.iter().map(|s| s.thread_cpu_us).collect();
            v.sort_by(f64::total_cmp);
            format!("[{:.3}-{:.3}]", v[0], v[v.len() - 1])
        };
        println!(
            "{:<40} {:>14.3} {:>15.3} {:>12.3} {:>8.2}x {:>9} {:>7}   thread CPU range {spread}",
            method.label(),
            thread,
            process,
            wall,
            thread / base,
            failed,
            lost
        );
    }
}

/// Read every sink until it is empty; returns the datagrams received.
fn drain(sinks: &[MediaSocket], batch: &mut TimestampedBatch) -> usize {
    // Loopback delivery finishes inside the send calls (softirq on the way out), but
    // give stragglers a moment before counting.
    std::thread::sleep(Duration::from_millis(5));
    let mut total = 0;
    for s in sinks {
        loop {
            match batch.recv(s) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    }
    total
}

fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: rusage is a plain C struct (all-zero valid); getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

//! The torture run's I/O: one UDP socket, the [`Runner`]'s datagrams out, the
//! target's in, reads bounded by the runner's next deadline.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::runner::{CaseResult, Outgoing, Runner};

/// Runs `runner` to its end over `socket`, sending to `target`; `each` sees
/// every result as soon as it is known. Errors are the socket's own (not a
/// datagram it refused: that is a message's reaction).
pub fn run(
    runner: &mut Runner,
    socket: &UdpSocket,
    target: SocketAddr,
    mut each: impl FnMut(&CaseResult),
) -> io::Result<()> {
    // Room for the largest datagram (a response to a 64 KB request may be as big).
    let mut buf = vec![0u8; 65_535];
    let mut out: Vec<Outgoing> = Vec::new();
    let mut reported = 0;
    loop {
        let now = Instant::now();
        let next = runner.poll(now, &mut out);
        send_all(runner, socket, target, &mut out);
        for r in runner.results().get(reported..).unwrap_or(&[]) {
            each(r);
        }
        reported = runner.results().len();
        let Some(deadline) = next else {
            return Ok(());
        };
        if !out.is_empty() {
            continue;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            continue;
        }
        // A zero read timeout would mean "block forever".
        socket.set_read_timeout(Some(wait.max(Duration::from_micros(100))))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                // Only the target's answers count; anything else is noise.
                if from == target {
                    runner.on_datagram(&buf[..n], Instant::now(), &mut out);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        // ICMP port unreachable from an earlier send: the target
                        // is not listening, which the probe will show.
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends what the runner queued; a datagram the socket refuses is reported to
/// the runner (which may queue more: the probe).
fn send_all(runner: &mut Runner, socket: &UdpSocket, target: SocketAddr, out: &mut Vec<Outgoing>) {
    while !out.is_empty() {
        let batch = std::mem::take(out);
        for d in batch {
            if let Err(e) = socket.send_to(&d.bytes, target) {
                runner.on_send_error(d.is_case, e.to_string(), Instant::now(), out);
            }
        }
    }
}

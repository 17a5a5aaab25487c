//! `sipwright torture --target HOST:PORT`: the torture pack against a server,
//! one message at a time, a table row printed as each is done.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context;

use super::UsageError;
use super::args::TortureArgs;
use super::target::{bracket, parse_target};
use crate::torture::{self, Runner, Settings, report};
use crate::transport::udp;

pub fn torture(a: TortureArgs) -> anyhow::Result<i32> {
    let cases = match &a.pack {
        Some(dir) => torture::pack::from_dir(dir),
        None => torture::pack::builtin(),
    }
    .and_then(|c| torture::pack::select(c, &a.only))
    .map_err(|e| UsageError(e.to_string()))?;
    if a.list {
        let w = report::name_width(cases.iter().map(|c| c.name.as_str()));
        for c in &cases {
            println!(
                "{:<w$}  {:<8}  {:<12}  {}",
                c.name,
                c.category,
                c.expect.to_string(),
                c.description
            );
        }
        return Ok(0);
    }
    let Some(target_text) = a.target.as_deref() else {
        return Err(UsageError("--target is required".into()).into());
    };
    let target = parse_target(target_text)?;
    if target
        .transport
        .is_some_and(|t| t != crate::transport::kind::TransportKind::Udp)
    {
        return Err(UsageError(format!(
            "--target `{target_text}`: the torture pack is sent over UDP only"
        ))
        .into());
    }
    if a.timeout.is_zero() {
        return Err(UsageError("--timeout must be more than 0".into()).into());
    }
    let bind: SocketAddr = match &a.bind {
        Some(b) => b
            .parse()
            .map_err(|_| UsageError(format!("--bind `{b}`: expected IP:PORT")))?,
        None if target.addr.is_ipv6() => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
    };
    let socket = udp::bind(bind).with_context(|| format!("binding {bind}"))?;
    let local = socket.local_addr()?;
    let local_ip = if local.ip().is_unspecified() {
        udp::local_ip_towards(target.addr).unwrap_or(local.ip())
    } else {
        local.ip()
    };
    let target_field = format!("{}:{}", bracket(&target.host), target.addr.port());
    let settings = Settings {
        target: target_field.clone(),
        local: format!("{}:{}", bracket(&local_ip.to_string()), local.port()),
        timeout: a.timeout,
        nonce: rand::random(),
    };
    let width = report::name_width(cases.iter().map(|c| c.name.as_str()));
    println!(
        "torture: {} messages to {target_field} over UDP (timeout {} ms)",
        cases.len(),
        a.timeout.as_millis()
    );
    println!("{}", report::table_header(width));
    let mut runner = Runner::new(cases, settings);
    let mut stdout = std::io::stdout();
    torture::driver::run(&mut runner, &socket, target.addr, |r| {
        let _ = writeln!(stdout, "{}", report::table_row(r, width));
        let _ = stdout.flush();
    })?;
    let results = runner.into_results();
    println!("{}", report::summary_line(&results));
    for path in &a.report {
        report::write_report(path, &target_field, a.timeout, &results)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if results.iter().all(|r| r.passed()) {
        0
    } else {
        1
    })
}

//! `sipwright options sip:HOST[:PORT]`: one OPTIONS through the same driver as `run`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::args::OptionsArgs;
use super::run::load_scenario;
use super::target::parse_target;
use crate::load::schedule::RatePlan;
use crate::load::{Driver, DriverConfig, RunShared};
use crate::scenario::call::{CallEnv, Outcome};
use crate::sip::transaction::Timers;
use crate::transport::udp;

/// What the observer hands back: outcome, round-trip time, last message, failure detail.
type Answer = (Outcome, Duration, Vec<u8>, String);

pub fn options(a: OptionsArgs) -> anyhow::Result<i32> {
    let target = parse_target(&a.target)?;
    let (mut plan, _) = load_scenario("options", &Default::default())?;
    plan.recv_timeout = Some(a.timeout);
    let bind = match &a.bind {
        Some(b) => b
            .parse()
            .map_err(|_| super::UsageError(format!("--bind `{b}`: expected IP:PORT")))?,
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
    };
    let socket = udp::bind(bind).with_context(|| format!("binding {bind}"))?;
    let local = socket.local_addr()?;
    let local_ip = if local.ip().is_unspecified() {
        udp::local_ip_towards(target.addr).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    } else {
        local.ip()
    };
    let env = CallEnv {
        plan: Arc::new(plan),
        local_ip: local_ip.to_string(),
        local_port: local.port(),
        transport: crate::transport::kind::TransportKind::Udp,
        timers: Timers::default(),
        remote: target.addr,
        remote_ip_text: crate::scenario::call::sip_ip_text(target.addr.ip()),
        target_uri: target.uri.clone(),
        run_id: rand::random(),
        media_ip: local_ip.to_string(),
        media_port_base: 10_000,
        keep_last: true,
        worker: 0,
        workers: 1,
    };
    let cfg = DriverConfig {
        worker: 0,
        workers: 1,
        t0: Instant::now(),
        rate: RatePlan::Constant(1.0),
        max_calls: Some(1),
        concurrency: None,
        duration: None,
        drain_timeout: Duration::from_secs(1),
        stats_interval: Duration::from_secs(3600),
        batch_window: Duration::ZERO,
    };
    let result: Arc<Mutex<Option<Answer>>> = Arc::default();
    let mut driver = Driver::new(socket, env, cfg, Arc::new(RunShared::default()))?;
    let r = result.clone();
    driver.set_observer(Box::new(move |call, outcome, rtt, _| {
        let detail = call.failure_detail().unwrap_or("").to_string();
        *r.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((outcome.clone(), rtt, call.last_message().to_vec(), detail));
    }));
    driver.run()?;
    let Some((outcome, rtt, last, detail)) =
        result.lock().unwrap_or_else(|e| e.into_inner()).take()
    else {
        anyhow::bail!("no result");
    };
    if !last.is_empty() {
        print!("{}", String::from_utf8_lossy(&last));
    }
    match outcome {
        Outcome::Success => {
            println!(
                "{}: answered in {:.3} ms",
                target.uri,
                rtt.as_secs_f64() * 1000.0
            );
            Ok(0)
        }
        Outcome::Failed(reason) => {
            println!(
                "{}: {} after {:.3} ms: {detail}",
                target.uri,
                reason.as_str(),
                rtt.as_secs_f64() * 1000.0
            );
            Ok(1)
        }
    }
}

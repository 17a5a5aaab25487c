//! `sipwright srtp decrypt CAPTURE`: argument checks, files, and the summary (table or
//! JSON). The work itself is `decrypt::job`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::net::SocketAddr;

use anyhow::Context;
use clap::CommandFactory;

use super::UsageError;
use super::args::{Cli, DecryptArgs};
use crate::decrypt::job::{self, JobError, KeySpec, Options, Report};
use crate::sdp::Crypto;

pub fn decrypt(a: DecryptArgs) -> anyhow::Result<i32> {
    let keys = key_specs(&a)?;
    let input =
        File::open(&a.capture).map_err(|e| UsageError(format!("{}: {e}", a.capture.display())))?;
    if let Some(dir) = &a.wav_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let output = match &a.output {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let opts = Options {
        keys,
        keep_failed: a.keep_failed,
        roc_trials: Some(a.roc_trials),
        wav_dir: a.wav_dir.clone(),
    };
    let report = match job::run(BufReader::with_capacity(1 << 20, input), output, opts) {
        Ok(r) => r,
        Err(JobError::Input(e)) => {
            return Err(UsageError(format!("{}: {e}", a.capture.display())).into());
        }
        Err(e) => return Err(e.into()),
    };
    let code = report.exit_code();
    let mut stdout = std::io::stdout().lock();
    if a.json {
        let json = Json {
            capture: a.capture.display().to_string(),
            report: &report,
            exit_code: code,
        };
        serde_json::to_writer(&mut stdout, &json)?;
        writeln!(stdout)?;
    } else {
        write_table(&mut stdout, &report)?;
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if report.truncated {
        eprintln!(
            "warning: {}: the capture ends inside a record or is damaged from there on; \
             the frames before it were processed",
            a.capture.display()
        );
    }
    Ok(code)
}

#[derive(serde::Serialize)]
struct Json<'a> {
    capture: String,
    #[serde(flatten)]
    report: &'a Report,
    exit_code: i32,
}

/// `--key` values with the `--stream` that follows each (clap keeps them in separate
/// lists, so their positions on the command line pair them).
fn key_specs(a: &DecryptArgs) -> anyhow::Result<Vec<KeySpec>> {
    if a.key.is_empty() {
        if !a.stream.is_empty() {
            return Err(UsageError("--stream needs a --key before it".into()).into());
        }
        return Ok(Vec::new());
    }
    let positions = arg_positions();
    let mut specs = Vec::new();
    for text in &a.key {
        let crypto =
            Crypto::parse_key_spec(text).map_err(|e| UsageError(format!("--key `{text}`: {e}")))?;
        if crypto.suite.is_none() {
            return Err(UsageError(format!(
                "--key `{text}`: unknown suite `{}` (known: {})",
                crypto.suite_name,
                job::suite_names()
            ))
            .into());
        }
        let Some(key) = crypto.keys.into_iter().next() else {
            let why = crypto.warnings.join("; ");
            return Err(UsageError(format!(
                "--key `{text}`: no usable key ({why}); expected 'SUITE inline:BASE64KEYSALT'"
            ))
            .into());
        };
        specs.push(KeySpec { key, stream: None });
    }
    // Pair each --stream with the closest --key before it on the command line.
    for (si, stream) in a.stream.iter().enumerate() {
        let addr: SocketAddr = stream
            .parse()
            .map_err(|_| UsageError(format!("--stream `{stream}`: expected IP:PORT")))?;
        let at = positions.streams.get(si).copied().unwrap_or(usize::MAX);
        let owner = positions
            .keys
            .iter()
            .rposition(|&k| k < at)
            .ok_or_else(|| UsageError(format!("--stream {stream} needs a --key before it")))?;
        match specs.get_mut(owner) {
            Some(spec) if spec.stream.is_none() => spec.stream = Some(addr),
            Some(spec) => {
                // One key for several destinations: a copy per destination.
                let mut copy = spec.clone();
                copy.stream = Some(addr);
                specs.push(copy);
            }
            None => {}
        }
    }
    Ok(specs)
}

struct Positions {
    keys: Vec<usize>,
    streams: Vec<usize>,
}

/// Where each --key and --stream sits on the command line.
fn arg_positions() -> Positions {
    let matches = Cli::command()
        .try_get_matches_from(std::env::args_os())
        .ok();
    let decrypt = matches
        .as_ref()
        .and_then(|m| m.subcommand_matches("srtp"))
        .and_then(|m| m.subcommand_matches("decrypt"));
    let of = |name: &str| -> Vec<usize> {
        decrypt
            .and_then(|m| m.indices_of(name))
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    Positions {
        keys: of("key"),
        streams: of("stream"),
    }
}

fn write_table(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "{} frames, {} SIP messages, {} streams{}",
        r.frames,
        r.sip_messages,
        r.streams.len(),
        if r.truncated {
            " (capture truncated)"
        } else {
            ""
        }
    )?;
    if r.streams.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:<22} {:<22} {:<4} {:<10} {:<24} {:>8} {:>9} {:>6} {:>4} {:>3}  extra",
        "source",
        "destination",
        "kind",
        "ssrc",
        "suite",
        "packets",
        "decrypted",
        "failed",
        "roc",
        "pt"
    )?;
    for s in &r.streams {
        let mut extra = Vec::new();
        if s.replayed > 0 {
            extra.push(format!("replayed {}", s.replayed));
        }
        if s.plain_rtcp > 0 {
            extra.push(format!("plain rtcp {}", s.plain_rtcp));
        }
        if !s.dtmf.is_empty() {
            extra.push(format!("dtmf {}", s.dtmf));
        }
        if let Some(w) = &s.wav {
            extra.push(format!("wav {w}"));
        }
        writeln!(
            out,
            "{:<22} {:<22} {:<4} 0x{:08x} {:<24} {:>8} {:>9} {:>6} {:>4} {:>3}  {}",
            s.src,
            s.dst,
            s.kind.as_str(),
            s.ssrc,
            s.suite,
            s.packets,
            s.decrypted,
            s.auth_failures,
            s.roc_start.map_or("-".to_string(), |r| r.to_string()),
            s.payload_type.map_or("-".to_string(), |p| p.to_string()),
            extra.join(", ")
        )?;
    }
    Ok(())
}

//! `sipwright check`, `sipwright scenarios [show NAME | from-pcap CAPTURE]`.

use std::path::Path;

use anyhow::Context;

use super::args::{CheckArgs, FromPcapArgs, ScenariosAction, ScenariosArgs};
use super::run::load_scenario;
use super::{EXIT_USAGE, UsageError};
use crate::scenario::builtin::{self, BUILTINS};

pub fn check(a: CheckArgs) -> anyhow::Result<i32> {
    let mut failed = false;
    let (injection, inject_order) = super::run::load_injection(&a.inject)?;
    let opts = crate::scenario::CompileOptions {
        overrides: &a.set,
        inject: injection.as_ref(),
        inject_order,
        base_dir: None,
    };
    for f in &a.files {
        match load_scenario(f, &opts) {
            Ok((plan, _)) => println!("{f}: ok ({} steps, {:?})", plan.steps.len(), plan.role),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    Ok(if failed { EXIT_USAGE } else { 0 })
}

pub fn scenarios(a: ScenariosArgs) -> anyhow::Result<i32> {
    match a.action {
        None => {
            for b in BUILTINS {
                println!("{:<12} {} (loopback peer: {})", b.name, b.summary, b.peer);
            }
            Ok(0)
        }
        Some(ScenariosAction::Show { name }) => match builtin::get(&name) {
            Some(b) => {
                print!("{}", b.text);
                Ok(0)
            }
            None => Err(UsageError(format!(
                "no built-in scenario `{name}`; `sipwright scenarios` lists them"
            ))
            .into()),
        },
        Some(ScenariosAction::FromPcap(f)) => from_pcap(f),
    }
}

/// The files a pair is written to, in the output folder.
const UAC_FILE: &str = "uac.yaml";
const UAS_FILE: &str = "uas.yaml";

fn from_pcap(a: FromPcapArgs) -> anyhow::Result<i32> {
    use crate::from_pcap::{self, Options};
    let dir = &a.output;
    let (uac_path, uas_path) = (dir.join(UAC_FILE), dir.join(UAS_FILE));
    let file = std::fs::File::open(&a.capture)
        .map_err(|e| UsageError(format!("{}: {e}", a.capture.display())))?;
    if !a.force {
        for p in [&uac_path, &uas_path] {
            if p.exists() {
                return Err(UsageError(format!(
                    "{} exists; pass --force to overwrite it, or -o DIR to write elsewhere",
                    p.display()
                ))
                .into());
            }
        }
    }
    let opts = Options {
        exact: a.exact,
        pauses: !a.no_pauses,
        source: file_name(&a.capture),
        uac_file: UAC_FILE.into(),
        uas_file: UAS_FILE.into(),
    };
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    let pair = match from_pcap::convert(input, a.call_id.as_deref(), &opts) {
        Ok(p) => p,
        Err(e) if e.is_input() => {
            return Err(UsageError(format!("{}: {e}", a.capture.display())).into());
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (path, text) in [(&uac_path, &pair.uac), (&uas_path, &pair.uas)] {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let s = &pair.summary;
    println!(
        "{}: call {} ({} messages over {}, frames {}-{}): UAC {} → UAS {}",
        a.capture.display(),
        s.call_id,
        s.messages,
        s.transport,
        s.frames.0,
        s.frames.1,
        s.uac,
        s.uas
    );
    println!("wrote {} ({} steps)", uac_path.display(), s.uac_steps);
    println!("wrote {} ({} steps)", uas_path.display(), s.uas_steps);
    for n in &pair.notes {
        eprintln!("note: {n}");
    }
    if pair.needs_bytes {
        eprintln!(
            "note: some messages are not text: they are written with `{{{{ hex: … }}}}` slots or `bytes_base64:` steps"
        );
    }
    let transport = if s.transport == "UDP" {
        String::new()
    } else {
        format!(" --transport {}", s.transport.to_ascii_lowercase())
    };
    println!(
        "run the pair: sipwright run {} --loopback{transport} --calls 1",
        uac_path.display()
    );
    Ok(0)
}

/// The capture's file name, for the scenarios' header comment.
fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

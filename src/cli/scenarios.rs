//! `sipwright check`, `sipwright scenarios [show NAME]`.

use super::args::{CheckArgs, ScenariosAction, ScenariosArgs};
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
    }
}

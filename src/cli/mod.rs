//! Command line: raw args → validated config → commands. The only place using anyhow.
//! Exit codes: 0 all calls succeeded, 1 at least one failed, 2 usage or scenario error.

mod args;
mod options;
mod run;
mod scenarios;
mod srtp;
mod target;
mod torture;
mod transport;

use clap::Parser;

pub use args::{Cli, Command};

/// Exit code for usage and scenario errors.
pub const EXIT_USAGE: i32 = 2;

/// A usage/scenario problem found after clap: printed as is, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Run(a) => run::run(*a),
        Command::Check(a) => scenarios::check(a),
        Command::Scenarios(a) => scenarios::scenarios(a),
        Command::Options(a) => options::options(a),
        Command::Srtp(a) => match a.command {
            args::SrtpCommand::Decrypt(d) => srtp::decrypt(d),
        },
        Command::Torture(a) => torture::torture(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(u) = e.downcast_ref::<UsageError>() {
                eprintln!("{u}");
            } else if let Some(c) = e.downcast_ref::<crate::scenario::CompileError>() {
                eprintln!("{c}");
            } else {
                eprintln!("error: {e:#}");
            }
            EXIT_USAGE
        }
    }
}

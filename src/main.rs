#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use vmcp_normalizer::cli::{Cli, Command, run_audit, run_normalize};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Normalize(args) => ExitCode::from(run_normalize(
            &args,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )),
        Command::Audit(args) => ExitCode::from(run_audit(
            &args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
            std::io::stderr().is_terminal(),
        )),
        Command::Serve(args) => vmcp_normalizer::server::run_serve(*args),
    }
}

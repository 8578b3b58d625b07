#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use vmcp_normalizer::cli::{Cli, Command, run_normalize, run_rules};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Normalize(args) => ExitCode::from(run_normalize(
            &args,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )),
        Command::Serve(args) => vmcp_normalizer::server::run_serve(*args),
        Command::Rules(command) => ExitCode::from(run_rules(
            &command,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )),
    }
}

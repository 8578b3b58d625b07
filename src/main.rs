#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use vmcp_normalizer::cli::{
    Cli, Command, run_audit, run_completions, run_dev_certificates, run_normalize, run_rules,
    run_selftest,
};

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
        Command::Selftest(args) => ExitCode::from(run_selftest(
            &args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )),
        Command::DevCertificates(args) => ExitCode::from(run_dev_certificates(
            &args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )),
        Command::Completions(args) => match run_completions(&args, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            // The reader stopped early (`| head`): nothing to say.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("error: cannot write the completions: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Rules(command) => ExitCode::from(run_rules(
            &command,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )),
    }
}

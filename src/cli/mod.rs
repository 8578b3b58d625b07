//! The command line: `normalize` (offline), `audit` (a live cluster, read
//! only), `serve` (the webhook), `selftest` (the installed webhook, end to
//! end), `rules` (check and explain a rules file), `dev-certificates` (for
//! serving locally) and `completions`.

mod audit;
mod in_place;
mod normalize;
mod rules;
mod selftest;
mod set_order;

use std::io::Write;
use std::path::PathBuf;

pub use audit::{AuditArgs, OutputFormat, run as run_audit};

pub use normalize::{
    EXIT_BAD_INPUT, EXIT_NOT_NORMALIZED, EXIT_OK, EXIT_WOULD_CHANGE, NormalizeArgs,
    run as run_normalize,
};
pub use selftest::{SelftestArgs, run as run_selftest};

use crate::certificates::dev::{DEV_NAMES, write_dev_certificates};
pub use rules::{
    EXIT_RULES_INVALID, EXIT_RULES_OK, EXIT_RULES_UNREADABLE, RulesCommand, run as run_rules,
};

/// vmcp-normalizer keeps ToolHive vMCP backend sets in canonical order, so a
/// producer that writes the same set in a different order rolls out nothing.
#[derive(Debug, clap::Parser)]
#[command(name = "vmcp-normalizer", version = crate::version::VERSION_LINE, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Normalize manifests from files or stdin and write them to stdout.
    Normalize(NormalizeArgs),
    /// List the vMCP objects of a live cluster that are not in canonical
    /// form, and why (reads only).
    Audit(AuditArgs),
    /// Serve the mutating admission webhook over HTTPS.
    Serve(Box<crate::server::ServeArgs>),
    /// Check a rules file of declared sets, or explain what it does to objects.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Prove the installed webhook works end to end through the API server.
    Selftest(SelftestArgs),
    /// Write a throw-away CA and a certificate for localhost, for `serve` on
    /// this machine (ca.crt, tls.crt, tls.key; the CA key is never written).
    DevCertificates(DevCertificatesArgs),
    /// Print a shell completion script, e.g.
    /// `vmcp-normalizer completions bash > /etc/bash_completion.d/vmcp-normalizer`.
    Completions(CompletionsArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct DevCertificatesArgs {
    /// Directory to write into (created if needed; existing files are replaced).
    #[arg(default_value = "certs/out")]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `dev-certificates`: a line naming the files on `out`, or the error on
/// `err`; the exit status.
pub fn run_dev_certificates(
    args: &DevCertificatesArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match write_dev_certificates(&args.dir, time::OffsetDateTime::now_utc()) {
        Ok(files) => {
            let _ = writeln!(
                out,
                "wrote {}, {} and {} ({})",
                files.ca_cert.display(),
                files.tls_cert.display(),
                files.tls_key.display(),
                DEV_NAMES.join(", ")
            );
            0
        }
        Err(error) => {
            let _ = writeln!(err, "error: {error}");
            1
        }
    }
}

/// `completions SHELL`: the script on `out`. Generated into memory first:
/// clap_complete panics when its writer fails (a closed pipe, a full disk).
pub fn run_completions(args: &CompletionsArgs, out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "vmcp-normalizer", &mut script);
    out.write_all(&script)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn version_names_the_revision() {
        let error = Cli::try_parse_from(["vmcp-normalizer", "--version"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
        let text = error.to_string();
        assert_eq!(
            text.trim_end(),
            format!("vmcp-normalizer {}", crate::version::VERSION_LINE)
        );
        assert!(text.starts_with(&format!("vmcp-normalizer {} (", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn completions_name_every_subcommand() {
        for shell in ["bash", "zsh", "fish"] {
            let cli = Cli::try_parse_from(["vmcp-normalizer", "completions", shell]).unwrap();
            let Command::Completions(args) = cli.command else {
                panic!("{shell}: not the completions command");
            };
            let mut script = Vec::new();
            run_completions(&args, &mut script).unwrap();
            let script = String::from_utf8(script).unwrap();
            for word in [
                "normalize",
                "audit",
                "rules",
                "serve",
                "selftest",
                "dev-certificates",
                "completions",
                "--tls-cert",
            ] {
                assert!(script.contains(word), "{shell}: no {word} in\n{script}");
            }
        }
        assert!(Cli::try_parse_from(["vmcp-normalizer", "completions", "tcsh"]).is_err());
    }

    /// A reader that went away (`| head`) is an error to return, not a panic.
    #[test]
    fn completions_report_a_failed_write() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let args = CompletionsArgs {
            shell: clap_complete::Shell::Bash,
        };
        let error = run_completions(&args, &mut Closed).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    }
}

//! The command line: `normalize` (offline), `audit` (a live cluster, read
//! only) and `serve` (the webhook).

mod audit;
mod in_place;
mod normalize;

pub use audit::{AuditArgs, OutputFormat, run as run_audit};

pub use normalize::{
    EXIT_BAD_INPUT, EXIT_NOT_NORMALIZED, EXIT_OK, EXIT_WOULD_CHANGE, NormalizeArgs,
    run as run_normalize,
};

/// vmcp-normalizer keeps ToolHive vMCP backend sets in canonical order, so a
/// producer that writes the same set in a different order rolls out nothing.
#[derive(Debug, clap::Parser)]
#[command(name = "vmcp-normalizer", version, about, long_about = None)]
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
}

//! The command line: `normalize` (offline), `serve` (the webhook) and
//! `selftest` (the installed webhook, end to end).

mod in_place;
mod normalize;
mod selftest;

pub use normalize::{
    EXIT_BAD_INPUT, EXIT_NOT_NORMALIZED, EXIT_OK, EXIT_WOULD_CHANGE, NormalizeArgs,
    run as run_normalize,
};
pub use selftest::{SelftestArgs, run as run_selftest};

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
    /// Serve the mutating admission webhook over HTTPS.
    Serve(Box<crate::server::ServeArgs>),
    /// Prove the installed webhook works end to end through the API server.
    Selftest(SelftestArgs),
}

//! The command line: `normalize` (offline) and `serve` (the webhook).

mod in_place;
mod normalize;
mod rules;

pub use normalize::{
    EXIT_BAD_INPUT, EXIT_NOT_NORMALIZED, EXIT_OK, EXIT_WOULD_CHANGE, NormalizeArgs,
    run as run_normalize,
};
pub use rules::{
    EXIT_RULES_INVALID, EXIT_RULES_OK, EXIT_RULES_UNREADABLE, RulesCommand, run as run_rules,
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
    /// Serve the mutating admission webhook over HTTPS.
    Serve(Box<crate::server::ServeArgs>),
    /// Check a rules file of declared sets, or explain what it does to objects.
    #[command(subcommand)]
    Rules(RulesCommand),
}

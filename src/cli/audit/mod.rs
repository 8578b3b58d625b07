//! `vmcp-normalizer audit`: which objects of a live cluster are out of
//! canonical form, and why, as the webhook's rules (the built-in preset
//! without `--rules`) judge them. It only reads (RBAC: `list` on each
//! rule's kind and its workload's, and on replicasets.apps and
//! controllerrevisions.apps for the rollout history; see [`declared`],
//! which does the work).
//!
//! The report is written only when every page was read.

mod declared;
mod findings;
mod history;
mod kinds;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use findings::Effect;
use report::Report;

use crate::cluster::{ClusterError, Lister, Scope, load_config};
use crate::rules::RuleSet;

use super::normalize::{EXIT_BAD_INPUT, EXIT_NOT_NORMALIZED, EXIT_OK, EXIT_WOULD_CHANGE};

const EXIT_CODES: &str = "\
Exit status:
  0  every vMCP object is canonical (notes may be listed)
  1  some vMCP object would change on its next write through the webhook
  2  the cluster could not be read (no kubeconfig, forbidden, timeout, a
     failed page, a rule's kind unknown to it, ...), or the rules file
     cannot be used: the error is on stderr and no report is written
  3  some vMCP object cannot be normalized (the reason is listed); takes
     precedence over 1";

/// `-o`: how to print the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct AuditArgs {
    /// Kubeconfig file; else KUBECONFIG, ~/.kube/config, or the in-cluster
    /// ServiceAccount.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// The namespace to audit (default: the context's namespace).
    #[arg(short = 'n', long, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Audit every namespace (needs cluster-wide `list`).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// How to print the report: a table, or one JSON document.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Objects per list request (`limit`); the next page is asked for with
    /// the `continue` token.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_size: u32,
    /// The most one request to the API server may take (e.g. 30s, 1m).
    #[arg(long, default_value = "30s", value_parser = crate::server::duration::parse_go_duration)]
    pub request_timeout: Duration,
    /// Rules file of declared sets (see `rules check`), or `preset` for the
    /// built-in toolhive-vmcp (the default): each rule's objects are listed
    /// and judged, with the lists that differ only in order. A file that
    /// fails its checks exits 2.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Skip the rollout history (one ReplicaSet or ControllerRevision list
    /// per workload: on clusters with thousands of Deployments, most of the
    /// audit's time).
    #[arg(long)]
    pub no_history: bool,
}

/// Why the audit wrote no report.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(
        "rule {rule}: kind {kind} needs match.apiVersion (or workload.apiVersion), for audit to find its resource"
    )]
    NoApiVersion { rule: String, kind: String },
    #[error("rule {rule}: the API server serves no kind {kind} in {api_version}")]
    UnknownKind {
        rule: String,
        api_version: String,
        kind: String,
    },
}

/// Run the command; `progress` when stderr is a terminal (a line redrawn
/// in place while the scan runs).
pub fn run(args: &AuditArgs, stdout: &mut dyn Write, stderr: &mut dyn Write, progress: bool) -> u8 {
    // A bad rules file stops the audit before any request.
    let rules = match &args.rules {
        None => None,
        Some(path) => match super::rules::load(path) {
            Ok(rules) => Some(rules),
            Err(message) => {
                let _ = writeln!(stderr, "error: {message}");
                return EXIT_BAD_INPUT;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(stderr, "error: cannot start the runtime: {error}");
            return EXIT_BAD_INPUT;
        }
    };
    let mut progress = Progress::new(progress.then_some(&mut *stderr));
    let scanned = runtime.block_on(scan(args, rules.as_ref(), &mut progress));
    progress.clear();
    let report = match scanned {
        Ok(report) => report,
        Err(error) => {
            let _ = writeln!(
                stderr,
                "error: {error}\nerror: the audit is incomplete; no report was written"
            );
            return EXIT_BAD_INPUT;
        }
    };
    for note in &report.notes {
        let _ = writeln!(stderr, "note: {note}");
    }
    let written = match args.output {
        OutputFormat::Table => report::write_table(&report, stdout),
        OutputFormat::Json => report::write_json(&report, stdout),
    };
    if let Err(error) = written {
        let _ = writeln!(stderr, "error: cannot write the report: {error}");
        return EXIT_BAD_INPUT;
    }
    match report.worst() {
        Some(Effect::CannotNormalize) => EXIT_NOT_NORMALIZED,
        Some(Effect::WouldChange) => EXIT_WOULD_CHANGE,
        Some(Effect::Note) | None => EXIT_OK,
    }
}

/// Read the cluster and judge every vMCP object in scope, or with `rules`
/// every object they match.
async fn scan(
    args: &AuditArgs,
    rules: Option<&RuleSet>,
    progress: &mut Progress<'_>,
) -> Result<Report, AuditError> {
    let config = load_config(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let scope = match (&args.namespace, args.all_namespaces) {
        (_, true) => Scope::AllNamespaces,
        (Some(namespace), false) => Scope::Namespace(namespace.clone()),
        (None, false) => Scope::Namespace(config.default_namespace.clone()),
    };
    let lister = Lister::new(config, args.request_timeout, args.chunk_size)?;
    // Without a rules file, the built-in preset: what the webhook runs.
    let preset;
    let rules = match rules {
        Some(rules) => rules,
        None => {
            preset = RuleSet::preset();
            &preset
        }
    };
    declared::scan(rules, &lister, scope, !args.no_history, progress).await
}

/// The progress line on a terminal's stderr, redrawn in place.
struct Progress<'w> {
    out: Option<&'w mut dyn Write>,
}

impl<'w> Progress<'w> {
    fn new(out: Option<&'w mut dyn Write>) -> Self {
        Self { out }
    }

    fn show(&mut self, report: &Report, listing: &str, page: usize) {
        if let Some(out) = self.out.as_mut() {
            let others = match report.others {
                None => String::new(),
                Some(others) => format!(", {others} other objects"),
            };
            let _ = write!(
                out,
                "\r\x1b[Kaudit {}: {listing} page {page}; {} ConfigMaps, {} Deployments{others}, {} findings",
                report.scope,
                report.configmaps,
                report.deployments,
                report.findings.len()
            );
            let _ = out.flush();
        }
    }

    /// Erase the line, so the report or the error starts clean.
    fn clear(&mut self) {
        if let Some(out) = self.out.as_mut() {
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_is_redrawn_in_place_and_erased() {
        let report = Report {
            scope: Scope::AllNamespaces,
            configmaps: 3,
            deployments: 0,
            others: None,
            findings: Vec::new(),
            notes: Vec::new(),
        };
        let mut terminal = Vec::new();
        let mut progress = Progress::new(Some(&mut terminal));
        progress.show(&report, "configmaps", 1);
        progress.show(&report, "configmaps", 2);
        progress.clear();
        assert_eq!(
            String::from_utf8(terminal).unwrap(),
            "\r\x1b[Kaudit in all namespaces: configmaps page 1; 3 ConfigMaps, 0 Deployments, 0 findings\
             \r\x1b[Kaudit in all namespaces: configmaps page 2; 3 ConfigMaps, 0 Deployments, 0 findings\
             \r\x1b[K"
        );
        // Not a terminal: nothing at all.
        let mut quiet = Progress::new(None);
        quiet.show(&report, "configmaps", 1);
        quiet.clear();
    }
}

//! `vmcp-normalizer selftest`: the command line around [`crate::selftest`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::lookup::{ClientConfig, client_config};
use crate::selftest::api::Api;
use crate::selftest::{self, EXIT_OK, EXIT_USAGE, Failure, Options};
use crate::server::duration::parse_go_duration;

const EXIT_CODES: &str = "\
Exit status:
  0  both checks passed (a check the webhook configuration switches off is skipped)
  1  the answer came back unnormalized although the webhook is configured for it:
     the API server could not reach the webhook and failed open
  2  bad arguments, or no API access (no in-cluster ServiceAccount, no kubeconfig)
  3  the webhook's caBundle is empty: the API server cannot call it yet
  4  the webhook's namespaceSelector or objectSelector excludes the test
  5  RBAC denied a request (401/403): the dry-run create, a read or the cleanup
  6  the API server did not answer (connection refused, timeout, 5xx)
  7  the MutatingWebhookConfiguration does not exist
  8  the webhook answered, but not as it should (wrong result, or its own warning)";

/// Prove the installed webhook works: server-side dry-run creates of a vMCP
/// ConfigMap (backends out of order) and a vMCP Deployment (stale
/// runconfig-checksum) must come back normalized, with the checksums this
/// binary computes. The Deployment check stores ConfigMap
/// vmcp-normalizer-selftest-vmcp-config for the webhook to read, and deletes
/// it again.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct SelftestArgs {
    /// Namespace to test in: one the webhook watches. Default: the pod's
    /// namespace in a cluster, else the kubeconfig context's namespace.
    #[arg(long, short = 'n', env = "VMCP_NORMALIZER_SELFTEST_NAMESPACE")]
    pub namespace: Option<String>,
    /// The chart's MutatingWebhookConfiguration (the release's full name).
    /// Read to tell why a check failed (caBundle, selectors); without it a
    /// failure is only reported, not explained.
    #[arg(long, env = "VMCP_NORMALIZER_WEBHOOK_CONFIGURATION")]
    pub webhook_configuration: Option<String>,
    /// Deadline of each API request.
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    pub timeout: Duration,
    /// Kubeconfig to use instead of the in-cluster ServiceAccount.
    #[arg(long, env = "VMCP_NORMALIZER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// Run the self-test: progress on `stdout`, the failure on `stderr`; the
/// exit status.
pub fn run(args: &SelftestArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(stderr, "FAIL: cannot start the runtime: {error}");
            return EXIT_USAGE;
        }
    };
    match runtime.block_on(run_async(args, stdout)) {
        Ok(()) => EXIT_OK,
        Err(failure) => {
            let _ = writeln!(stderr, "FAIL: {failure}");
            failure.exit_code()
        }
    }
}

async fn run_async(args: &SelftestArgs, stdout: &mut dyn Write) -> Result<(), Failure> {
    let no_access = |error: &dyn std::fmt::Display| Failure::NoApiAccess(error.to_string());
    let (config, access) = match client_config(args.kubeconfig.as_deref())
        .await
        .map_err(|e| no_access(&e))?
    {
        ClientConfig::Found { config, access } => (*config, access),
        ClientConfig::Absent { why } => return Err(Failure::NoApiAccess(why)),
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let _ = writeln!(
        stdout,
        "vmcp-normalizer selftest: API server {} ({access}), namespace {namespace}",
        config.cluster_url
    );
    let api = Api::new(config, args.timeout).map_err(|e| no_access(&e))?;
    let options = Options {
        namespace,
        webhook_configuration: args.webhook_configuration.clone(),
    };
    selftest::run(&api, &options, stdout).await
}

//! `vmcp-normalizer serve`: flags (each also an environment variable), logging
//! set-up, signals, and the process entry point.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use super::duration::parse_go_duration;
use super::reload::ReloadOptions;
use super::tls::TlsFiles;
use super::{ServeError, Server, ServerOptions};
use crate::admission::Admission;
use crate::checksum_sync::RunconfigChecksumSync;
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Serve the mutating admission webhook over HTTPS.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address of the HTTPS admission endpoint (POST /mutate).
    #[arg(long, env = "VMCP_NORMALIZER_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// PEM certificate chain to serve, leaf first (e.g. a Secret's tls.crt).
    #[arg(long, env = "VMCP_NORMALIZER_TLS_CERT")]
    pub tls_cert: PathBuf,

    /// PEM private key of the certificate (e.g. a Secret's tls.key).
    #[arg(long, env = "VMCP_NORMALIZER_TLS_KEY")]
    pub tls_key: PathBuf,

    /// Address of the plain-HTTP admin endpoints: /livez, /readyz, /metrics.
    #[arg(
        long,
        env = "VMCP_NORMALIZER_ADMIN_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub admin_listen: SocketAddr,

    /// Log line format.
    #[arg(long, env = "VMCP_NORMALIZER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// After SIGTERM, how long in-flight requests may take to finish
    /// (keep it below the pod's terminationGracePeriodSeconds).
    #[arg(long, env = "VMCP_NORMALIZER_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_go_duration)]
    pub drain_timeout: Duration,

    /// How often to re-read the certificate files even without a file event.
    #[arg(long, env = "VMCP_NORMALIZER_TLS_POLL_INTERVAL", default_value = "30s", value_parser = parse_go_duration)]
    pub tls_poll_interval: Duration,

    /// Kubeconfig for the live ConfigMap reads of Deployment reviews, when
    /// running outside a cluster. Without it: the KUBECONFIG files, else the
    /// pod's ServiceAccount, else ~/.kube/config, else no lookups.
    #[arg(long, env = "VMCP_NORMALIZER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

impl ServeArgs {
    pub fn server_options(&self) -> ServerOptions {
        ServerOptions {
            reload: ReloadOptions {
                poll_interval: self.tls_poll_interval.max(Duration::from_millis(100)),
                watch: true,
            },
            drain_timeout: self.drain_timeout,
            ..ServerOptions::new(TlsFiles {
                cert: self.tls_cert.clone(),
                key: self.tls_key.clone(),
            })
        }
    }
}

/// The `serve` subcommand: runs until SIGTERM or SIGINT and the drain are
/// done (exit 0); a startup problem is printed and exits 1.
pub fn run_serve(args: ServeArgs) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "vmcp-normalizer cannot serve");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), ServeError> {
    init_logging(args.log_format)?;
    // The process-wide default for any other rustls user (the Kubernetes
    // client); the server itself names ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let metrics = Arc::new(Metrics::new());
        let deployments =
            RunconfigChecksumSync::connect(args.kubeconfig.as_deref(), metrics.clone()).await?;
        let admission = Admission::new(metrics).with_deployment_mutator(Arc::new(deployments));
        // Certificate first: a bad pair must fail before anything binds.
        let server = Server::new(args.server_options(), admission)?;
        let listener = bind("webhook", args.listen).await?;
        let admin_listener = bind("admin", args.admin_listen).await?;
        let shutdown = shutdown_signal().map_err(ServeError::Runtime)?;
        server.run(listener, admin_listener, shutdown).await
    })
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { what, addr, source })
}

fn init_logging(format: LogFormat) -> Result<(), ServeError> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stdout);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|error| ServeError::Logging(error.to_string()))
}

/// Resolves on the first SIGTERM or SIGINT. A second one exits at once,
/// without waiting for the drain.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested");
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(130);
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn defaults_and_durations() {
        let cli = Cli::try_parse_from([
            "x",
            "--tls-cert=/certs/tls.crt",
            "--tls-key=/certs/tls.key",
            "--drain-timeout=5s",
        ])
        .unwrap();
        assert_eq!(cli.serve.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(cli.serve.admin_listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(cli.serve.log_format, LogFormat::Text);
        assert_eq!(cli.serve.drain_timeout, Duration::from_secs(5));
        assert_eq!(cli.serve.tls_poll_interval, Duration::from_secs(30));
        assert_eq!(cli.serve.kubeconfig, None);
        assert!(Cli::try_parse_from(["x", "--tls-cert=a"]).is_err());
    }
}

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
use tokio::sync::watch;

use super::duration::parse_go_duration;
use super::reload::ReloadOptions;
use super::tls::TlsFiles;
use super::{ServeError, Server, ServerOptions};
use crate::admission::Admission;
use crate::certificates::authority::Policy;
use crate::certificates::self_managed::{SelfManagedError, SelfManagedTls, Settings};
use crate::checksum_sync::WorkloadChecksumSync;
use crate::metrics::Metrics;

/// How long `serve --self-managed-tls` tries to get its first certificate
/// before it gives up (and the kubelet restarts it).
const FIRST_CERTIFICATE_BUDGET: Duration = Duration::from_secs(60);

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
    /// With --self-managed-tls: where to write it, `<dir>/tls.crt` of a
    /// writable directory.
    #[arg(long, env = "VMCP_NORMALIZER_TLS_CERT")]
    pub tls_cert: PathBuf,

    /// PEM private key of the certificate (e.g. a Secret's tls.key).
    /// With --self-managed-tls: `<dir>/tls.key`, beside --tls-cert.
    #[arg(long, env = "VMCP_NORMALIZER_TLS_KEY")]
    pub tls_key: PathBuf,

    /// Keep the serving certificate in a Secret of its own: create a CA and a
    /// certificate for the Service when missing, renew them ahead of expiry,
    /// write the CA into the webhook configuration's caBundle, and serve the
    /// certificate from the --tls-cert/--tls-key directory.
    #[arg(
        long,
        env = "VMCP_NORMALIZER_SELF_MANAGED_TLS",
        requires_all = ["tls_secret", "webhook_configuration", "service_name", "namespace"]
    )]
    pub self_managed_tls: bool,

    /// With --self-managed-tls: the Secret that holds the CA and certificate.
    #[arg(long, env = "VMCP_NORMALIZER_TLS_SECRET")]
    pub tls_secret: Option<String>,

    /// With --self-managed-tls: the MutatingWebhookConfiguration whose
    /// webhooks get the CA as their caBundle.
    #[arg(long, env = "VMCP_NORMALIZER_WEBHOOK_CONFIGURATION")]
    pub webhook_configuration: Option<String>,

    /// With --self-managed-tls: the Service the API server calls; the
    /// certificate is for <service>.<namespace>.svc(.cluster.local).
    #[arg(long, env = "VMCP_NORMALIZER_SERVICE_NAME")]
    pub service_name: Option<String>,

    /// With --self-managed-tls: the namespace of the Secret and the Service.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,

    /// With --self-managed-tls: how often to re-check the stored certificate
    /// (renew, adopt another replica's, repair the caBundle).
    #[arg(long, env = "VMCP_NORMALIZER_CERT_CHECK_INTERVAL", default_value = "10m", value_parser = parse_go_duration)]
    pub cert_check_interval: Duration,

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

    /// The longest a review may take from its headers to its answer, body
    /// included; the apiserver's `?timeout=` shortens it (90% of the shorter
    /// is used). Set it to the webhook's timeoutSeconds.
    #[arg(long, env = "VMCP_NORMALIZER_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_go_duration)]
    pub request_timeout: Duration,

    /// An HTTP/1 client must send a request's headers within this time
    /// (both ports).
    #[arg(long, env = "VMCP_NORMALIZER_HEADER_READ_TIMEOUT", default_value = "5s", value_parser = parse_go_duration)]
    pub header_read_timeout: Duration,

    /// Close a connection (either port) with no request in flight for this long.
    #[arg(long, env = "VMCP_NORMALIZER_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_go_duration)]
    pub idle_timeout: Duration,

    /// Connections open at once on each port; more are closed on accept.
    #[arg(long, env = "VMCP_NORMALIZER_MAX_CONNECTIONS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Reviews handled at once; more are answered 503 at once (the apiserver
    /// then applies the webhook's failurePolicy).
    #[arg(long, env = "VMCP_NORMALIZER_MAX_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Bytes of review bodies over 64 KiB buffered at once (e.g. 16Mi); a
    /// review that would go over is answered 503 at once. Bodies declare their
    /// size up front; one that does not counts as the largest allowed, 8Mi.
    #[arg(long, env = "VMCP_NORMALIZER_MAX_BODY_BUFFER", default_value = "16Mi", value_parser = parse_bytes)]
    pub max_body_buffer: usize,

    /// Streams one HTTP/2 client may have open at once on a connection.
    #[arg(long, env = "VMCP_NORMALIZER_HTTP2_MAX_STREAMS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_streams: u32,

    /// How often to re-read the certificate files even without a file event.
    #[arg(long, env = "VMCP_NORMALIZER_TLS_POLL_INTERVAL", default_value = "30s", value_parser = parse_go_duration)]
    pub tls_poll_interval: Duration,

    /// Kubeconfig for the live ConfigMap reads of Deployment reviews, when
    /// running outside a cluster. Without it: the KUBECONFIG files, else the
    /// pod's ServiceAccount, else ~/.kube/config, else no lookups.
    #[arg(long, env = "VMCP_NORMALIZER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Rules file of declared sets (`rules check` validates one); reloaded
    /// when it changes, the last good rules staying in force when a new
    /// version fails its checks. Without it the built-in preset
    /// toolhive-vmcp runs.
    #[arg(long, env = "VMCP_NORMALIZER_RULES")]
    pub rules: Option<PathBuf>,
}

impl ServeArgs {
    pub fn server_options(&self) -> ServerOptions {
        ServerOptions {
            reload: ReloadOptions {
                poll_interval: self.tls_poll_interval.max(Duration::from_millis(100)),
                watch: true,
            },
            drain_timeout: self.drain_timeout,
            request_timeout: self.request_timeout,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections as usize,
            max_in_flight: self.max_in_flight as usize,
            max_body_buffer: self.max_body_buffer,
            http2_max_streams: self.http2_max_streams,
            ..ServerOptions::new(TlsFiles {
                cert: self.tls_cert.clone(),
                key: self.tls_key.clone(),
            })
        }
    }

    /// The self-managed certificate settings, when --self-managed-tls is on.
    pub fn self_managed_settings(&self) -> Result<Option<Settings>, SelfManagedError> {
        if !self.self_managed_tls {
            return Ok(None);
        }
        let layout_error = || SelfManagedError::FileLayout {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        };
        // The files are published by swapping a `..data` symlink in their
        // directory, so both must be the standard names in the same one.
        let dir = match (self.tls_cert.parent(), self.tls_key.parent()) {
            (Some(cert_dir), Some(key_dir))
                if cert_dir == key_dir
                    && self.tls_cert.file_name() == Some("tls.crt".as_ref())
                    && self.tls_key.file_name() == Some("tls.key".as_ref()) =>
            {
                cert_dir.to_owned()
            }
            _ => return Err(layout_error()),
        };
        // clap's `requires_all` makes these present; empty is still possible.
        let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        match (
            given(&self.namespace),
            given(&self.tls_secret),
            given(&self.webhook_configuration),
            given(&self.service_name),
        ) {
            (
                Some(namespace),
                Some(secret_name),
                Some(webhook_configuration),
                Some(service_name),
            ) => Ok(Some(Settings {
                namespace,
                secret_name,
                webhook_configuration,
                service_name,
                dir,
                policy: Policy::default(),
            })),
            _ => Err(SelfManagedError::MissingSetting),
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
    tracing::info!(
        version = crate::version::VERSION,
        revision = crate::version::REVISION,
        "vmcp-normalizer starting"
    );
    // The process-wide default for any other rustls user (the Kubernetes
    // client); the server itself names ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    // A rules file that cannot be used stops the start, before anything
    // binds or calls the API.
    let rules = match &args.rules {
        Some(path) => {
            let (rules, served) = super::rules_reload::load_rules(path)?;
            tracing::info!(path = %path.display(), rules = rules.rules().len(), "rules file loaded");
            Some((rules, path.clone(), served))
        }
        None => None,
    };
    runtime.block_on(async move {
        let metrics = Arc::new(Metrics::new());
        let mut deployments =
            WorkloadChecksumSync::connect(args.kubeconfig.as_deref(), metrics.clone()).await?;
        let rules = rules.map(|(rules, path, served)| {
            let cell = Arc::new(arc_swap::ArcSwap::from_pointee(rules));
            (cell, path, served)
        });
        if let Some((cell, ..)) = &rules {
            deployments = deployments.with_rules(cell.clone());
        }
        let self_managed = match args.self_managed_settings()? {
            Some(settings) => {
                let tls =
                    SelfManagedTls::connect(args.kubeconfig.as_deref(), settings, metrics.clone())
                        .await?;
                tls.first_certificate(FIRST_CERTIFICATE_BUDGET).await?;
                Some(tls)
            }
            None => None,
        };
        let mut admission = Admission::new(metrics).with_workload_mutator(Arc::new(deployments));
        let mut options = args.server_options();
        if let Some((cell, path, served)) = rules {
            admission = admission.with_rules(cell);
            options.rules = Some((path, served));
        }
        // Certificate first: a bad pair must fail before anything binds.
        let server = Server::new(options, admission)?;
        let listener = bind("webhook", args.listen).await?;
        let admin_listener = bind("admin", args.admin_listen).await?;
        let shutdown = shutdown_signal().map_err(ServeError::Runtime)?;
        let Some(self_managed) = self_managed else {
            return server.run(listener, admin_listener, shutdown).await;
        };
        // Certificate rounds run until shutdown begins, not through the drain.
        let (stopping_tx, mut stopping) = watch::channel(false);
        let interval = args.cert_check_interval.max(Duration::from_millis(100));
        let maintenance = tokio::spawn(self_managed.maintain(
            interval,
            time::OffsetDateTime::now_utc,
            async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            },
        ));
        let shutdown = async move {
            shutdown.await;
            let _ = stopping_tx.send(true);
        };
        let result = server.run(listener, admin_listener, shutdown).await;
        let _ = maintenance.await;
        result
    })
}

/// A byte count: a whole number, optionally with a binary suffix (`Ki`,
/// `Mi`, `Gi`), as in Kubernetes quantities.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let invalid = || format!("invalid size {text:?} (expected e.g. 16Mi, 512Ki, 1048576)");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        _ => return Err(invalid()),
    };
    let value: usize = number.parse().map_err(|_| invalid())?;
    value.checked_mul(1 << shift).ok_or_else(invalid)
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
        assert!(!cli.serve.self_managed_tls);
        assert_eq!(cli.serve.cert_check_interval, Duration::from_secs(600));
        assert_eq!(cli.serve.self_managed_settings().unwrap(), None);
        assert!(Cli::try_parse_from(["x", "--tls-cert=a"]).is_err());
    }

    #[test]
    fn limit_flags_default_to_the_library_defaults() {
        let cli = Cli::try_parse_from(["x", "--tls-cert=c", "--tls-key=k"]).unwrap();
        let options = cli.serve.server_options();
        let library = ServerOptions::new(options.tls.clone());
        assert_eq!(options.request_timeout, library.request_timeout);
        assert_eq!(options.header_read_timeout, library.header_read_timeout);
        assert_eq!(options.idle_timeout, library.idle_timeout);
        assert_eq!(options.max_connections, library.max_connections);
        assert_eq!(options.max_in_flight, library.max_in_flight);
        assert_eq!(options.max_body_buffer, library.max_body_buffer);
        assert_eq!(options.http2_max_streams, library.http2_max_streams);
        assert_eq!(options.drain_timeout, library.drain_timeout);

        let cli = Cli::try_parse_from([
            "x",
            "--tls-cert=c",
            "--tls-key=k",
            "--request-timeout=3s",
            "--max-in-flight=8",
            "--max-body-buffer=512Ki",
            "--http2-max-streams=4",
            "--idle-timeout=1m",
            "--max-connections=10",
        ])
        .unwrap();
        let options = cli.serve.server_options();
        assert_eq!(options.request_timeout, Duration::from_secs(3));
        assert_eq!(options.max_in_flight, 8);
        assert_eq!(options.max_body_buffer, 512 * 1024);
        assert_eq!(options.http2_max_streams, 4);
        assert_eq!(options.idle_timeout, Duration::from_secs(60));
        assert_eq!(options.max_connections, 10);
        for bad in [
            "--max-in-flight=0",
            "--http2-max-streams=0",
            "--max-body-buffer=16M",
        ] {
            assert!(
                Cli::try_parse_from(["x", "--tls-cert=c", "--tls-key=k", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("16Mi"), Ok(16 << 20));
        assert_eq!(parse_bytes("512Ki"), Ok(512 << 10));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        for bad in [
            "",
            "Mi",
            "16M",
            "1.5Mi",
            "-1",
            "16 Mi",
            "99999999999999999999Gi",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    const SELF_MANAGED: [&str; 7] = [
        "x",
        "--tls-cert=/run/tls/tls.crt",
        "--tls-key=/run/tls/tls.key",
        "--self-managed-tls",
        "--tls-secret=wh-tls",
        "--webhook-configuration=wh",
        "--service-name=wh-svc",
    ];

    #[test]
    fn self_managed_settings() {
        let cli = Cli::try_parse_from(SELF_MANAGED.iter().chain(&["--namespace=ns"])).unwrap();
        let settings = cli.serve.self_managed_settings().unwrap().unwrap();
        assert_eq!(settings.dir, PathBuf::from("/run/tls"));
        assert_eq!(settings.secret_ref(), "ns/wh-tls");
        assert_eq!(settings.webhook_configuration, "wh");
        assert_eq!(
            settings.dns_names(),
            ["wh-svc.ns.svc", "wh-svc.ns.svc.cluster.local"]
        );
    }

    #[test]
    fn self_managed_needs_every_setting_and_one_directory() {
        // Without the namespace (POD_NAMESPACE is not set under cargo test).
        assert!(Cli::try_parse_from(SELF_MANAGED).is_err());
        for missing in 4..7 {
            let mut args = SELF_MANAGED.to_vec();
            args.remove(missing);
            args.push("--namespace=ns");
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
        for (cert, key) in [
            ("--tls-cert=/a/tls.crt", "--tls-key=/b/tls.key"),
            ("--tls-cert=/a/cert.pem", "--tls-key=/a/tls.key"),
            ("--tls-cert=/a/tls.crt", "--tls-key=/a/key.pem"),
        ] {
            let mut args = SELF_MANAGED.to_vec();
            args[1] = cert;
            args[2] = key;
            args.push("--namespace=ns");
            let cli = Cli::try_parse_from(&args).unwrap();
            let error = cli.serve.self_managed_settings().unwrap_err();
            assert!(
                error.to_string().contains("one writable directory"),
                "{error}"
            );
        }
        let cli = Cli::try_parse_from(SELF_MANAGED.iter().chain(&["--namespace="])).unwrap();
        assert!(matches!(
            cli.serve.self_managed_settings(),
            Err(SelfManagedError::MissingSetting)
        ));
    }
}

//! `serve --self-managed-tls`: get a serving certificate from the store before
//! the server starts, then keep it current in the background.
//!
//! Each round runs [`CertificateStore::ensure`] and hands the stored set to
//! the server through local files ([`publish_files`]), which the server's
//! reloader picks up like a kubelet Secret volume. A replica that did not
//! issue a new set itself still serves it from its next round on.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::{Instant, MissedTickBehavior};

use super::authority::{CertificateSet, IssueReason, Policy};
use super::files::publish_files;
use super::store::{CertificateStore, Ensured, Publish, StoreError};
use crate::lookup::{ApiAccessError, ClientConfig};
use crate::metrics::Metrics;

/// Backstop timeouts of the certificate store's API client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// First pause between failed attempts at the first certificate; doubles up
/// to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// No attempt is started with less time than this left of the budget: it
/// would only end in a timeout that hides the error worth reporting.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

/// Where one installation keeps its certificate, and where this process
/// writes the files it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The namespace of the pod, the Secret and the Service.
    pub namespace: String,
    pub secret_name: String,
    pub webhook_configuration: String,
    pub service_name: String,
    /// A writable directory; the server serves `tls.crt` and `tls.key` in it.
    pub dir: PathBuf,
    pub policy: Policy,
}

impl Settings {
    /// The names the API server may use to reach the Service.
    pub fn dns_names(&self) -> Vec<String> {
        service_dns_names(&self.service_name, &self.namespace)
    }

    /// `namespace/name` of the Secret, for messages.
    pub fn secret_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.secret_name)
    }
}

/// `<service>.<namespace>.svc` (what the API server dials for a webhook
/// `service` reference) and the fully qualified `.cluster.local` form.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelfManagedError {
    #[error(
        "--self-managed-tls needs access to the Kubernetes API, and none is configured: {0} \
         (run in a cluster, or set --kubeconfig)"
    )]
    NoApiAccess(String),
    #[error(transparent)]
    ApiAccess(#[from] ApiAccessError),
    #[error(
        "--self-managed-tls needs non-empty --tls-secret, --webhook-configuration, \
         --service-name and --namespace (POD_NAMESPACE)"
    )]
    MissingSetting,
    #[error(
        "with --self-managed-tls, --tls-cert and --tls-key must name tls.crt and tls.key \
         in one writable directory (got {cert} and {key})"
    )]
    FileLayout { cert: PathBuf, key: PathBuf },
    #[error("cannot write the certificate files in {dir}: {source}")]
    Files {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no answer from the Kubernetes API within {0:?}")]
    Timeout(Duration),
    #[error(
        "no serving certificate from Secret {secret} after {attempts} attempts in {waited:?}; \
         last error: {last}"
    )]
    NoCertificate {
        secret: String,
        attempts: u32,
        waited: Duration,
        #[source]
        last: Box<SelfManagedError>,
    },
}

impl SelfManagedError {
    /// Every outcome of a round: `ok`, and each [`SelfManagedError::metric_label`].
    pub fn round_outcomes() -> impl Iterator<Item = &'static str> {
        ["ok", "files", "timeout", "setup"]
            .into_iter()
            .chain(StoreError::METRIC_LABELS)
    }

    /// A stable label for the round metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SelfManagedError::Store(error) => error.metric_label(),
            SelfManagedError::Files { .. } => "files",
            SelfManagedError::Timeout(_) => "timeout",
            SelfManagedError::NoApiAccess(_)
            | SelfManagedError::ApiAccess(_)
            | SelfManagedError::MissingSetting
            | SelfManagedError::FileLayout { .. }
            | SelfManagedError::NoCertificate { .. } => "setup",
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub ensured: Ensured,
    /// Whether the served files changed (a new set, ours or another replica's).
    pub files_changed: bool,
}

/// The certificate store of this installation and the directory served from.
pub struct SelfManagedTls {
    store: CertificateStore,
    settings: Settings,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for SelfManagedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfManagedTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SelfManagedTls {
    pub fn new(client: kube::Client, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let store = CertificateStore::new(
            client,
            &settings.namespace,
            settings.secret_name.clone(),
            settings.webhook_configuration.clone(),
            settings.dns_names(),
            settings.policy,
        );
        Self {
            store,
            settings,
            metrics,
        }
    }

    /// Build the API client the way the ConfigMap lookups do (`--kubeconfig`,
    /// `KUBECONFIG`, in-cluster, `~/.kube/config`); no configuration at all
    /// is an error here, since there is no certificate without the API.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SelfManagedError> {
        let (mut config, access) = match crate::lookup::client_config(kubeconfig).await? {
            ClientConfig::Found { config, access } => (*config, access),
            ClientConfig::Absent { why } => return Err(SelfManagedError::NoApiAccess(why)),
        };
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(REQUEST_TIMEOUT);
        config.write_timeout = Some(REQUEST_TIMEOUT);
        tracing::info!(
            api_server = %config.cluster_url,
            %access,
            secret = %settings.secret_ref(),
            webhook_configuration = %settings.webhook_configuration,
            "self-managed TLS configured"
        );
        let client = kube::Client::try_from(config).map_err(ApiAccessError::Client)?;
        Ok(Self::new(client, settings, metrics))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Rounds until one succeeds, with growing pauses, for at most `budget`:
    /// the server must not start without a certificate, and a process that
    /// gives up is restarted by the kubelet with a visible reason.
    pub async fn first_certificate(&self, budget: Duration) -> Result<Round, SelfManagedError> {
        let started = Instant::now();
        let deadline = started + budget;
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let error =
                match tokio::time::timeout(left, self.round(OffsetDateTime::now_utc())).await {
                    Ok(Ok(round)) => return Ok(round),
                    Ok(Err(error)) => error,
                    Err(_) => {
                        let error = SelfManagedError::Timeout(left);
                        self.metrics.certificate_store_round(error.metric_label());
                        error
                    }
                };
            let left = deadline.saturating_duration_since(Instant::now());
            if left < backoff + MIN_ATTEMPT {
                return Err(SelfManagedError::NoCertificate {
                    secret: self.settings.secret_ref(),
                    attempts,
                    waited: started.elapsed(),
                    last: Box::new(error),
                });
            }
            tracing::warn!(%error, attempt = attempts, retry_in = ?backoff, "no serving certificate yet");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Re-run a round every `interval` (times from `clock`) until `stop`
    /// resolves. A failed round is logged and counted, and the next one
    /// tries again; the files keep the last good set meanwhile.
    pub async fn maintain(
        self,
        interval: Duration,
        clock: impl Fn() -> OffsetDateTime,
        stop: impl Future<Output = ()>,
    ) {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            // Stopping abandons a round in flight: each of its writes is a
            // single request, and the next start repairs a partial round.
            tokio::select! {
                () = &mut stop => break,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                () = &mut stop => break,
                result = self.round(clock()) => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "certificate round failed; will retry");
                    }
                }
            }
        }
        tracing::debug!("certificate maintenance stopped");
    }

    /// One round: make sure a valid set is stored and published, and serve
    /// it. Logs and counts what happened.
    pub async fn round(&self, now: OffsetDateTime) -> Result<Round, SelfManagedError> {
        let result = self.ensure_and_publish(now).await;
        match &result {
            Ok(round) => {
                self.metrics.certificate_store_round("ok");
                self.log(round);
            }
            Err(error) => self.metrics.certificate_store_round(error.metric_label()),
        }
        result
    }

    async fn ensure_and_publish(&self, now: OffsetDateTime) -> Result<Round, SelfManagedError> {
        let ensured = self.store.ensure(now).await?;
        let files_changed = self.write_files(&ensured.set).await?;
        Ok(Round {
            ensured,
            files_changed,
        })
    }

    async fn write_files(&self, set: &CertificateSet) -> Result<bool, SelfManagedError> {
        let dir = self.settings.dir.clone();
        let set = set.clone();
        let files_error = |dir: &Path, source| SelfManagedError::Files {
            dir: dir.to_owned(),
            source,
        };
        // Small files, but fsync'd: keep them off the runtime's workers.
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            publish_files(&dir, &set)
        })
        .await
        .map_err(|join| files_error(&self.settings.dir, std::io::Error::other(join)))?;
        written.map_err(|source| files_error(&self.settings.dir, source))
    }

    fn log(&self, round: &Round) {
        let secret = self.settings.secret_ref();
        let ensured = &round.ensured;
        if let Some(reason) = &ensured.issued {
            self.metrics.certificate_issued(reason.as_str());
            match reason {
                IssueReason::Unreadable(why) => tracing::warn!(
                    %secret, reason = reason.as_str(), %why,
                    "stored certificate unusable; issued a new CA and serving certificate"
                ),
                _ => tracing::info!(
                    %secret, reason = reason.as_str(),
                    "issued a new serving certificate"
                ),
            }
        }
        match ensured.published {
            Publish::Written => tracing::info!(
                webhook_configuration = %self.settings.webhook_configuration,
                "wrote the CA bundle into the webhook configuration"
            ),
            Publish::NoWebhookConfiguration => tracing::warn!(
                webhook_configuration = %self.settings.webhook_configuration,
                "webhook configuration not found: no caBundle to write (the API server cannot call this webhook until it exists)"
            ),
            Publish::AlreadyCurrent => {}
        }
        if round.files_changed && ensured.issued.is_none() {
            tracing::info!(%secret, "serving the certificate stored in the Secret");
        }
    }
}

//! The Deployment side of the webhook: keep a vMCP Deployment's pod-template
//! `runconfig-checksum` equal to the checksum of its canonical ConfigMap, so a
//! rollout happens only when the configuration really changed.
//!
//! Reads the ConfigMap live ([`ConfigMapLookup`]) and decides with the pure
//! [`crate::normalize::sync_runconfig_checksum`]. Nothing here can fail or
//! hang a write: a lookup that fails or runs out of time leaves the Deployment
//! as received, with a warning, a log line and a metric saying why.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::admission::{BoxFuture, Decision, DeploymentMutator, DeploymentReview, Verdict};
use crate::log_field::capped;
use crate::lookup::{ApiAccessError, ClientConfig, ConfigMapLookup, MAX_LOOKUP_TIME};
use crate::metrics::Metrics;
use crate::normalize::{
    ChecksumSource, ChecksumSync, Unsynced, is_dns_subdomain, sync_runconfig_checksum,
};

/// Time kept back from the admission deadline for normalizing the ConfigMap
/// and encoding the answer once the lookup returns.
const ANSWER_MARGIN: Duration = Duration::from_millis(50);

/// ConfigMaps larger than this are normalized on the blocking pool, so a big
/// document does not stall a runtime worker (as for ConfigMap reviews).
const INLINE_CONFIGMAP_BYTES: usize = 64 * 1024;

/// The [`DeploymentMutator`] of the server.
pub struct RunconfigChecksumSync {
    /// `None` when no API access is configured: Deployments pass through.
    lookup: Option<ConfigMapLookup>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RunconfigChecksumSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunconfigChecksumSync")
            .field("lookups", &self.lookup.is_some())
            .finish_non_exhaustive()
    }
}

impl RunconfigChecksumSync {
    pub fn new(lookup: ConfigMapLookup, metrics: Arc<Metrics>) -> Self {
        Self {
            lookup: Some(lookup),
            metrics,
        }
    }

    /// Without API access: every vMCP Deployment that would need a lookup is
    /// allowed unchanged, with a warning saying lookups are not configured.
    pub fn without_lookups(metrics: Arc<Metrics>) -> Self {
        Self {
            lookup: None,
            metrics,
        }
    }

    /// Build the mutator for `serve`: the API client from `kubeconfig`, the
    /// in-cluster ServiceAccount or `~/.kube/config` (see
    /// [`crate::lookup::client_config`]). With no configuration at all the
    /// server still starts, without lookups, and says so in a log line.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ApiAccessError> {
        match crate::lookup::client_config(kubeconfig).await? {
            ClientConfig::Found { config, access } => {
                tracing::info!(api_server = %config.cluster_url, %access, "ConfigMap lookups configured");
                Ok(Self::new(ConfigMapLookup::from_config(*config)?, metrics))
            }
            ClientConfig::Absent { why } => {
                tracing::warn!(
                    %why,
                    "no Kubernetes API access: Deployments pass through unchanged (set --kubeconfig)"
                );
                Ok(Self::without_lookups(metrics))
            }
        }
    }

    async fn decide(&self, review: DeploymentReview<'_>) -> Verdict {
        let configmap = match crate::normalize::checksum_source(review.object) {
            ChecksumSource::NotVmcp => return Verdict::allow(Decision::NotVmcp),
            ChecksumSource::NoRunconfigChecksum => return Verdict::allow(Decision::Unchanged),
            ChecksumSource::Unusable(unsynced) => return unsynced_verdict(&review, &unsynced),
            ChecksumSource::ConfigMap { name, .. } => name,
        };
        let Some(lookup) = &self.lookup else {
            return not_synced(
                &review,
                configmap,
                "lookup_not_configured",
                "no Kubernetes API access",
                "no Kubernetes API access is configured",
            );
        };
        let namespace = deployment_namespace(&review);
        if !is_dns_subdomain(namespace) {
            return not_synced(
                &review,
                configmap,
                "malformed_deployment",
                "no namespace",
                &format!("namespace {namespace:?} is not a namespace name"),
            );
        }

        let deadline = lookup_deadline(review.deadline, Instant::now());
        let started = Instant::now();
        let fetched = lookup.get(namespace, configmap, deadline).await;
        let outcome = fetched.as_ref().map_or_else(|e| e.metric_label(), |_| "ok");
        self.metrics.configmap_lookup(outcome, started.elapsed());
        let stored = match fetched {
            Ok(stored) => stored,
            Err(error) => {
                return not_synced(
                    &review,
                    configmap,
                    error.refusal_reason(),
                    error.describe(),
                    &error.to_string(),
                );
            }
        };

        match run_sync(review.object, stored).await {
            None => Verdict::allow(Decision::Error)
                .with_warning("vmcp-normalizer: internal error; Deployment left unchanged"),
            Some(ChecksumSync::NotVmcp) => Verdict::allow(Decision::NotVmcp),
            Some(ChecksumSync::NoRunconfigChecksum | ChecksumSync::InStep) => {
                Verdict::allow(Decision::Unchanged)
            }
            Some(ChecksumSync::Replace { from, to, patch }) => Verdict::patched(patch)
                .with_warning(format!(
                    "vmcp-normalizer: runconfig-checksum {} -> {} (canonical ConfigMap {configmap})",
                    short(&from),
                    short(&to)
                ))
                .with_audit_annotation("normalized", "runconfig-checksum"),
            Some(ChecksumSync::Unsynced(unsynced)) => unsynced_verdict(&review, &unsynced),
        }
    }
}

impl DeploymentMutator for RunconfigChecksumSync {
    fn mutate<'a>(&'a self, review: DeploymentReview<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(self.decide(review))
    }
}

/// The lookup's deadline: at most [`MAX_LOOKUP_TIME`], and early enough to
/// answer within the admission's own deadline.
fn lookup_deadline(admission_deadline: Instant, now: Instant) -> Instant {
    let answer_by = admission_deadline
        .checked_sub(ANSWER_MARGIN)
        .unwrap_or(now)
        .max(now);
    answer_by.min(now + MAX_LOOKUP_TIME)
}

/// The review's namespace; the object's own when the review has none (the
/// apiserver always sends it for namespaced objects).
fn deployment_namespace<'a>(review: &DeploymentReview<'a>) -> &'a str {
    if review.namespace.is_empty() {
        review
            .object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
    } else {
        review.namespace
    }
}

/// Decide with the pure core; `None` if it panicked (a bug), so that costs
/// one Deployment left unchanged rather than the connection.
async fn run_sync(deployment: &Value, stored: Value) -> Option<ChecksumSync> {
    let large = stored
        .pointer("/data")
        .and_then(Value::as_object)
        .is_some_and(|data| {
            let bytes: usize = data.values().filter_map(Value::as_str).map(str::len).sum();
            bytes > INLINE_CONFIGMAP_BYTES
        });
    if large {
        let deployment = deployment.clone();
        tokio::task::spawn_blocking(move || sync_runconfig_checksum(&deployment, &stored))
            .await
            .ok()
    } else {
        catch_unwind(AssertUnwindSafe(|| {
            sync_runconfig_checksum(deployment, &stored)
        }))
        .ok()
    }
}

fn unsynced_verdict(review: &DeploymentReview<'_>, unsynced: &Unsynced) -> Verdict {
    let configmap = crate::recognize::vmcp_deployment_configmap(review.object).unwrap_or("");
    not_synced(
        review,
        configmap,
        unsynced.reason.as_str(),
        unsynced.reason.describe(),
        &unsynced.detail,
    )
}

/// Allowed unchanged: a warning (`why`, then the ConfigMap name, which is the
/// part cut if the line is too long), an audit annotation and a log line.
fn not_synced(
    review: &DeploymentReview<'_>,
    configmap: &str,
    reason: &'static str,
    why: &str,
    detail: &str,
) -> Verdict {
    tracing::warn!(
        namespace = %capped(review.namespace),
        deployment = %capped(review.name),
        configmap = %capped(configmap),
        reason,
        detail = %capped(detail),
        "runconfig-checksum left as received"
    );
    Verdict::allow(Decision::Refused { reason })
        .with_warning(format!(
            "vmcp-normalizer: runconfig-checksum not synced, {why}: {configmap}"
        ))
        .with_audit_annotation("refused-reason", reason)
}

/// The first 12 characters of a checksum: enough to tell them apart in a
/// warning that must stay under 120 characters.
fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookup_deadline_fits_the_admission_budget() {
        let now = Instant::now();
        let cases = [
            (Duration::from_secs(9), MAX_LOOKUP_TIME),
            (Duration::from_secs(1), Duration::from_millis(950)),
            (Duration::from_millis(30), Duration::ZERO),
            (Duration::ZERO, Duration::ZERO),
        ];
        for (budget, expected) in cases {
            assert_eq!(
                lookup_deadline(now + budget, now) - now,
                expected,
                "{budget:?}"
            );
        }
    }

    #[test]
    fn warnings_fit_even_for_long_names() {
        let object = serde_json::json!({});
        let review = DeploymentReview {
            namespace: "ns",
            name: "d",
            object: &object,
            dry_run: false,
            deadline: Instant::now(),
        };
        let verdict = not_synced(
            &review,
            &"c".repeat(253),
            "lookup_timeout",
            "ConfigMap lookup timed out",
            "",
        );
        assert!(verdict.warnings[0].len() < 120);
        assert!(
            verdict.warnings[0].starts_with(
                "vmcp-normalizer: runconfig-checksum not synced, ConfigMap lookup timed out: ccc"
            ),
            "{:?}",
            verdict.warnings
        );
        assert_eq!(
            verdict.decision,
            Decision::Refused {
                reason: "lookup_timeout"
            }
        );
    }
}

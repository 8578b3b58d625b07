//! The workload side of the webhook: keep a vMCP Deployment's pod-template
//! `runconfig-checksum` (and the annotation of every workload a rule links:
//! a Deployment, StatefulSet or DaemonSet) equal to the checksum of its
//! canonical ConfigMap, so a rollout happens only when the configuration
//! really changed.
//!
//! Reads the ConfigMap live ([`ConfigMapLookup`]) and decides with the pure
//! [`crate::normalize::sync_runconfig_checksum`] (or
//! [`crate::normalize::sync_checksum_of`] for a rule's link). Nothing here
//! can fail or hang a write: a lookup that fails or runs out of time leaves
//! the workload as received, with a warning, a log line and a metric saying
//! why.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio::time::Instant;

use crate::admission::{BoxFuture, Decision, Verdict, WorkloadMutator, WorkloadReview};
use crate::log_field::capped;
use crate::lookup::{ApiAccessError, ClientConfig, ConfigMapLookup, MAX_LOOKUP_TIME};
use crate::metrics::Metrics;
use crate::normalize::{
    ChecksumSource, ChecksumSync, Follow, Unsynced, UnsyncedReason, checksum_source_of,
    is_dns_subdomain, sync_checksum_of, sync_runconfig_checksum,
};
use crate::rules::{ObjectKind, Rule, RuleSet};
use crate::workload::WorkloadKind;

/// Time kept back from the admission deadline for normalizing the ConfigMap
/// and encoding the answer once the lookup returns.
const ANSWER_MARGIN: Duration = Duration::from_millis(50);

/// ConfigMaps larger than this are normalized on the blocking pool, so a big
/// document does not stall a runtime worker (as for ConfigMap reviews).
const INLINE_CONFIGMAP_BYTES: usize = 64 * 1024;

/// The refusal reason when the server has no Kubernetes API access.
pub const NOT_CONFIGURED: &str = "lookup_not_configured";

/// The [`WorkloadMutator`] of the server.
pub struct WorkloadChecksumSync {
    /// `None` when no API access is configured: workloads pass through.
    lookup: Option<ConfigMapLookup>,
    metrics: Arc<Metrics>,
    /// The rules in force (`serve --rules`); `None`: the preset's link only.
    rules: Option<Arc<ArcSwap<RuleSet>>>,
}

/// Which checksum link a workload follows.
#[derive(Clone)]
enum Link {
    /// The preset's: the vMCP Deployment's `runconfig-checksum`.
    Preset,
    /// A rule's from a rules file.
    Rule {
        rule: Box<Rule>,
        follow: Arc<Follow>,
    },
}

impl Link {
    /// The pod-template annotation, as warnings name it.
    fn annotation(&self) -> &str {
        match self {
            Link::Preset => "runconfig-checksum",
            Link::Rule { follow, .. } => &follow.annotation,
        }
    }
}

impl std::fmt::Debug for WorkloadChecksumSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadChecksumSync")
            .field("lookups", &self.lookup.is_some())
            .finish_non_exhaustive()
    }
}

impl WorkloadChecksumSync {
    pub fn new(lookup: ConfigMapLookup, metrics: Arc<Metrics>) -> Self {
        Self {
            lookup: Some(lookup),
            metrics,
            rules: None,
        }
    }

    /// Follow the workload links of these rules (the cell a reload stores
    /// into) instead of the preset's alone.
    pub fn with_rules(mut self, rules: Arc<ArcSwap<RuleSet>>) -> Self {
        self.rules = Some(rules);
        self
    }

    /// The link a workload of `kind` follows, if any. The preset links
    /// Deployments only.
    fn link(&self, kind: WorkloadKind, workload: &Value) -> Option<Link> {
        let preset = (kind == WorkloadKind::Deployment).then_some(Link::Preset);
        let Some(cell) = &self.rules else {
            return preset;
        };
        let rules = cell.load();
        match rules.workload_rule_for(kind.object_kind(), workload) {
            Some(rule) if !rule.builtin => Some(Link::Rule {
                follow: Arc::new(rule.follow()?),
                rule: Box::new(rule.clone()),
            }),
            // The preset's own checks say whether it is a vMCP Deployment.
            _ if rules.includes_preset() => preset,
            _ => None,
        }
    }

    /// Without API access: every workload that would need a lookup is
    /// allowed unchanged, with a warning saying lookups are not configured.
    pub fn without_lookups(metrics: Arc<Metrics>) -> Self {
        Self {
            lookup: None,
            metrics,
            rules: None,
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
                    "no Kubernetes API access: workloads (Deployments, StatefulSets, DaemonSets) pass through unchanged (set --kubeconfig)"
                );
                Ok(Self::without_lookups(metrics))
            }
        }
    }

    async fn decide(&self, review: WorkloadReview<'_>) -> Verdict {
        let Some(link) = self.link(review.kind, review.object) else {
            return Verdict::allow(Decision::NotVmcp);
        };
        let subject = Subject {
            review: &review,
            annotation: link.annotation(),
        };
        let source = match &link {
            Link::Preset => match crate::normalize::checksum_source(review.object) {
                ChecksumSource::NotVmcp => ChecksumSource::NotVmcp,
                ChecksumSource::NoRunconfigChecksum => ChecksumSource::NoRunconfigChecksum,
                ChecksumSource::Unusable(unsynced) => ChecksumSource::Unusable(unsynced),
                ChecksumSource::ConfigMap { name, current } => ChecksumSource::ConfigMap {
                    name: std::borrow::Cow::Borrowed(name),
                    current,
                },
            },
            Link::Rule { follow, .. } => checksum_source_of(review.object, follow),
        };
        let configmap = match source {
            ChecksumSource::NotVmcp => return Verdict::allow(Decision::NotVmcp),
            ChecksumSource::NoRunconfigChecksum => return Verdict::allow(Decision::Unchanged),
            ChecksumSource::Unusable(unsynced) => {
                let configmap = match &link {
                    Link::Preset => {
                        crate::recognize::vmcp_deployment_configmap(review.object).unwrap_or("")
                    }
                    Link::Rule { .. } => "",
                };
                return unsynced_verdict(&subject, configmap, &unsynced);
            }
            ChecksumSource::ConfigMap { name, .. } => name,
        };
        let configmap = configmap.as_ref();
        let Some(lookup) = &self.lookup else {
            return not_synced(
                &subject,
                configmap,
                NOT_CONFIGURED,
                "no Kubernetes API access",
                "no Kubernetes API access is configured",
            );
        };
        let namespace = workload_namespace(&review);
        if !is_dns_subdomain(namespace) {
            return not_synced(
                &subject,
                configmap,
                UnsyncedReason::MalformedObject.as_str(),
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
                    &subject,
                    configmap,
                    error.refusal_reason(),
                    error.describe(),
                    &error.to_string(),
                );
            }
        };

        let sync = run_sync(review.object, stored, link.clone()).await;
        sync_verdict(&subject, configmap, sync)
    }
}

/// The workload a verdict is about, and its annotation as warnings name it.
struct Subject<'a> {
    review: &'a WorkloadReview<'a>,
    annotation: &'a str,
}

/// The answer for what the pure core decided once the ConfigMap was read;
/// `None` when it panicked.
fn sync_verdict(subject: &Subject<'_>, configmap: &str, sync: Option<ChecksumSync>) -> Verdict {
    let annotation = subject.annotation;
    match sync {
        None => Verdict::allow(Decision::Error).with_warning(format!(
            "vmcp-normalizer: internal error; {} left unchanged",
            subject.review.kind.name()
        )),
        Some(ChecksumSync::NotVmcp) => Verdict::allow(Decision::NotVmcp),
        Some(ChecksumSync::NoRunconfigChecksum | ChecksumSync::InStep) => {
            Verdict::allow(Decision::Unchanged)
        }
        Some(ChecksumSync::Replace { from, to, patch }) => Verdict::patched(patch)
            .with_warning(format!(
                "vmcp-normalizer: {annotation} {} -> {} (canonical ConfigMap {configmap})",
                short(&from),
                short(&to)
            ))
            .with_audit_annotation("normalized", annotation),
        Some(ChecksumSync::Unsynced(unsynced)) => unsynced_verdict(subject, configmap, &unsynced),
    }
}

impl WorkloadMutator for WorkloadChecksumSync {
    fn mutate<'a>(&'a self, review: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
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
fn workload_namespace<'a>(review: &WorkloadReview<'a>) -> &'a str {
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
/// one workload left unchanged rather than the connection.
async fn run_sync(workload: &Value, stored: Value, link: Link) -> Option<ChecksumSync> {
    let large = stored
        .pointer("/data")
        .and_then(Value::as_object)
        .is_some_and(|data| {
            let bytes: usize = data.values().filter_map(Value::as_str).map(str::len).sum();
            bytes > INLINE_CONFIGMAP_BYTES
        });
    let sync = move |workload: &Value, stored: &Value| match &link {
        Link::Preset => sync_runconfig_checksum(workload, stored),
        Link::Rule { rule, follow } => {
            let matches = rule.matches(
                ObjectKind {
                    api_version: None,
                    kind: "ConfigMap",
                },
                stored,
            );
            sync_checksum_of(workload, stored, follow, matches)
        }
    };
    if large {
        let workload = workload.clone();
        tokio::task::spawn_blocking(move || sync(&workload, &stored))
            .await
            .ok()
    } else {
        catch_unwind(AssertUnwindSafe(|| sync(workload, &stored))).ok()
    }
}

fn unsynced_verdict(subject: &Subject<'_>, configmap: &str, unsynced: &Unsynced) -> Verdict {
    not_synced(
        subject,
        configmap,
        unsynced.reason.as_str(),
        unsynced.reason.describe(),
        &unsynced.detail,
    )
}

/// Allowed unchanged: a warning (`why`, then the ConfigMap name, which is the
/// part cut if the line is too long), an audit annotation and a log line.
fn not_synced(
    subject: &Subject<'_>,
    configmap: &str,
    reason: &'static str,
    why: &str,
    detail: &str,
) -> Verdict {
    let (review, annotation) = (subject.review, subject.annotation);
    tracing::warn!(
        kind = review.kind.name(),
        namespace = %capped(review.namespace),
        name = %capped(review.name),
        configmap = %capped(configmap),
        reason,
        detail = %capped(detail),
        "{} left as received",
        capped(annotation)
    );
    Verdict::allow(Decision::Refused { reason })
        .with_warning(format!(
            "vmcp-normalizer: {annotation} not synced, {why}: {configmap}"
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
    use crate::admission::Admission;
    use crate::lookup::fake::{self, Answer};
    use crate::normalize::{UnsyncedReason, sync_runconfig_checksum};
    use serde_json::json;

    const NAMESPACE: &str = "toolhive-system";
    const CONFIGMAP_PATH: &str =
        "/api/v1/namespaces/toolhive-system/configmaps/demo-vmcp-vmcp-config";
    /// The checksum of the fixture ConfigMap in canonical order (the spec's vector).
    const CANONICAL: &str = "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee";

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        yaml_serde::from_str(&text).expect("fixture YAML")
    }

    /// The fixture Deployment (runconfig-checksum of the buggy ConfigMap)
    /// and a mutator that reads the fixture ConfigMap `after` the request.
    fn sync_answering(
        answer: Answer,
    ) -> (WorkloadChecksumSync, Arc<std::sync::Mutex<Vec<String>>>) {
        let (lookup, paths) = fake::lookup(answer);
        (
            WorkloadChecksumSync::new(lookup, Arc::new(Metrics::new())),
            paths,
        )
    }

    fn review<'a>(object: &'a Value, namespace: &'a str, deadline: Instant) -> WorkloadReview<'a> {
        WorkloadReview {
            kind: WorkloadKind::Deployment,
            namespace,
            name: "demo-vmcp",
            object,
            dry_run: false,
            deadline,
        }
    }

    fn refused_reason(verdict: &Verdict) -> Option<&'static str> {
        match verdict.decision {
            Decision::Refused { reason } => Some(reason),
            _ => None,
        }
    }

    /// The whole admission path under a 900 ms budget (what `?timeout=1s`
    /// gives): the lookup is abandoned at 850 ms, so the answer says why
    /// (`lookup_timeout`) rather than the generic admission timeout.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_lookup_is_abandoned_50_ms_before_the_admission_deadline() {
        let (sync, paths) = sync_answering(Answer::Never);
        let admission =
            Admission::new(Arc::new(Metrics::new())).with_workload_mutator(Arc::new(sync));
        let body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "uid-1",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "namespace": NAMESPACE,
                "name": "demo-vmcp",
                "operation": "UPDATE",
                "object": fixture("vmcp-deployment.yaml"),
            }
        }))
        .unwrap();
        let started = Instant::now();
        let bytes = admission
            .review(&body, Duration::from_millis(900))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(850));
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        let response = &answer["response"];
        assert_eq!(response["allowed"], true);
        assert!(response.get("patch").is_none(), "{answer}");
        assert_eq!(
            response["auditAnnotations"]["refused-reason"],
            "lookup_timeout"
        );
        assert_eq!(*paths.lock().unwrap(), [CONFIGMAP_PATH]);
    }

    /// Exactly at the boundary: an answer 1 ms before the lookup deadline is
    /// used, one 1 ms after it is not.
    #[tokio::test(start_paused = true)]
    async fn the_lookup_waits_up_to_the_budget_less_the_margin_and_no_longer() {
        let deployment = fixture("vmcp-deployment.yaml");
        let configmap = fixture("vmcp-configmap.yaml");
        let budget = Duration::from_millis(900);
        for (after, waited, patched) in [
            (Duration::from_millis(849), Duration::from_millis(849), true),
            (
                Duration::from_millis(851),
                Duration::from_millis(850),
                false,
            ),
        ] {
            let (sync, _) = sync_answering(Answer::object(&configmap, after));
            let started = Instant::now();
            let verdict = sync
                .decide(review(&deployment, NAMESPACE, started + budget))
                .await;
            assert_eq!(started.elapsed(), waited, "answer after {after:?}");
            if patched {
                assert_eq!(verdict.decision, Decision::Patched, "{verdict:?}");
                let patch = serde_json::to_value(verdict.patch.unwrap()).unwrap();
                assert_eq!(patch[0]["value"], CANONICAL);
            } else {
                assert_eq!(
                    refused_reason(&verdict),
                    Some("lookup_timeout"),
                    "{verdict:?}"
                );
            }
        }
    }

    /// A long budget (the apiserver's default 10 s) still waits at most
    /// `MAX_LOOKUP_TIME` for the API server.
    #[tokio::test(start_paused = true)]
    async fn a_lookup_never_waits_longer_than_the_cap() {
        let deployment = fixture("vmcp-deployment.yaml");
        let (sync, _) = sync_answering(Answer::Never);
        let started = Instant::now();
        let verdict = sync
            .decide(review(
                &deployment,
                NAMESPACE,
                started + Duration::from_secs(9),
            ))
            .await;
        assert_eq!(started.elapsed(), MAX_LOOKUP_TIME);
        assert_eq!(refused_reason(&verdict), Some("lookup_timeout"));
    }

    #[tokio::test]
    async fn the_namespace_comes_from_the_review_or_else_the_object() {
        let configmap = fixture("vmcp-configmap.yaml");
        let deployment = fixture("vmcp-deployment.yaml");
        let deadline = Instant::now() + Duration::from_secs(5);

        // The review carries none: the object's own namespace is used.
        let (sync, paths) = sync_answering(Answer::object(&configmap, Duration::ZERO));
        let verdict = sync.decide(review(&deployment, "", deadline)).await;
        assert_eq!(verdict.decision, Decision::Patched, "{verdict:?}");
        assert_eq!(*paths.lock().unwrap(), [CONFIGMAP_PATH]);

        // Neither has one: no lookup, a reason.
        let mut without = deployment.clone();
        without["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        let (sync, paths) = sync_answering(Answer::object(&configmap, Duration::ZERO));
        let verdict = sync.decide(review(&without, "", deadline)).await;
        assert_eq!(refused_reason(&verdict), Some("malformed_deployment"));
        assert!(paths.lock().unwrap().is_empty());

        // One that is not a namespace name never reaches a URL.
        let verdict = sync
            .decide(review(&deployment, "Not/A/Namespace", deadline))
            .await;
        assert_eq!(refused_reason(&verdict), Some("malformed_deployment"));
        assert!(paths.lock().unwrap().is_empty());
    }

    /// A ConfigMap above the inline limit is decided on the blocking pool,
    /// with the same result as the pure core.
    #[tokio::test]
    async fn a_large_configmap_is_decided_like_any_other() {
        let deployment = fixture("vmcp-deployment.yaml");
        let mut configmap = fixture("vmcp-configmap.yaml");
        configmap["data"]["padding.txt"] = json!("x".repeat(INLINE_CONFIGMAP_BYTES + 1));
        let ChecksumSync::Replace { patch, .. } = sync_runconfig_checksum(&deployment, &configmap)
        else {
            panic!("the fixture Deployment's checksum is stale");
        };
        let (sync, _) = sync_answering(Answer::object(&configmap, Duration::ZERO));
        let deadline = Instant::now() + Duration::from_secs(5);
        let verdict = sync.decide(review(&deployment, NAMESPACE, deadline)).await;
        assert_eq!(verdict.decision, Decision::Patched);
        assert_eq!(verdict.patch, Some(patch));
    }

    #[test]
    fn every_decision_of_the_core_has_its_answer() {
        let deployment = fixture("vmcp-deployment.yaml");
        let review = review(&deployment, NAMESPACE, Instant::now());
        let subject = Subject {
            review: &review,
            annotation: "runconfig-checksum",
        };
        let verdict = |sync| sync_verdict(&subject, "cm", sync);

        let panicked = verdict(None);
        assert_eq!(panicked.decision, Decision::Error);
        assert_eq!(
            panicked.warnings,
            ["vmcp-normalizer: internal error; Deployment left unchanged"]
        );
        assert_eq!(
            verdict(Some(ChecksumSync::NotVmcp)).decision,
            Decision::NotVmcp
        );
        for unchanged in [ChecksumSync::NoRunconfigChecksum, ChecksumSync::InStep] {
            let answer = verdict(Some(unchanged));
            assert_eq!(answer.decision, Decision::Unchanged);
            assert!(answer.warnings.is_empty() && answer.patch.is_none());
        }
        let unsynced = Unsynced {
            reason: UnsyncedReason::ConfigMapRefused,
            detail: "flow list".into(),
        };
        let answer = verdict(Some(ChecksumSync::Unsynced(unsynced)));
        assert_eq!(refused_reason(&answer), Some("configmap_refused"));
        assert!(answer.patch.is_none());
        // A stale value shorter than a checksum is shown whole.
        let replace = ChecksumSync::Replace {
            from: "stale".into(),
            to: CANONICAL.into(),
            patch: json_patch::Patch(Vec::new()),
        };
        assert_eq!(
            verdict(Some(replace)).warnings,
            ["vmcp-normalizer: runconfig-checksum stale -> 32cf106c9df1 (canonical ConfigMap cm)"]
        );
    }

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
        let review = WorkloadReview {
            kind: WorkloadKind::Deployment,
            namespace: "ns",
            name: "d",
            object: &object,
            dry_run: false,
            deadline: Instant::now(),
        };
        let subject = Subject {
            review: &review,
            annotation: "runconfig-checksum",
        };
        let verdict = not_synced(
            &subject,
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

    /// A rules file's workload link: a Deployment naming its ConfigMap by
    /// a name template, whose annotation follows the ConfigMap's plain
    /// SHA-256 once its set is sorted. The ConfigMap is read from the API.
    #[tokio::test]
    async fn a_rule_linked_deployment_follows_its_configmaps_canonical_checksum() {
        let rules = RuleSet::from_yaml(
            "apiVersion: vmcp-normalizer.io/v1alpha1
kind: NormalizationRules
include: [toolhive-vmcp]
rules:
- name: hosts
  match: {kind: ConfigMap, selector: {matchLabels: {app: egress}}}
  key: hosts.json
  format: json
  sets: [{path: ., by: .}]
  checksum: {annotation: example.com/hosts-sha256, algorithm: sha256}
  workload:
    kind: Deployment
    selector: {matchLabels: {app: egress}}
    annotation: example.com/hosts-sha256
    configMap: {nameTemplate: '{name}-hosts'}
",
        )
        .unwrap();
        let stored = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "proxy-hosts", "namespace": "edge", "labels": {"app": "egress"},
                         "annotations": {"example.com/hosts-sha256": "stale"}},
            "data": {"hosts.json": "[\"b\",\"a\"]"},
        });
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "proxy", "namespace": "edge", "labels": {"app": "egress"}},
            "spec": {"template": {"metadata": {"annotations": {"example.com/hosts-sha256": "stale"}}}},
        });
        let (lookup, paths) = fake::lookup(Answer::object(&stored, Duration::ZERO));
        let sync = WorkloadChecksumSync::new(lookup, Arc::new(Metrics::new()))
            .with_rules(Arc::new(ArcSwap::from_pointee(rules)));
        let deadline = Instant::now() + Duration::from_secs(5);
        let verdict = sync.decide(review(&deployment, "edge", deadline)).await;
        assert_eq!(
            paths.lock().unwrap().as_slice(),
            ["/api/v1/namespaces/edge/configmaps/proxy-hosts"]
        );
        let expected = crate::checksum::sha256_hex(b"[\"a\",\"b\"]");
        let mut patched = deployment.clone();
        json_patch::patch(&mut patched, &verdict.patch.expect("a patch")).unwrap();
        assert_eq!(
            patched["spec"]["template"]["metadata"]["annotations"]["example.com/hosts-sha256"],
            expected
        );

        // A ConfigMap the rule does not match is not followed.
        let mut other = stored.clone();
        other["metadata"]["labels"] = json!({});
        let (lookup, _) = fake::lookup(Answer::object(&other, Duration::ZERO));
        let sync =
            WorkloadChecksumSync::new(lookup, Arc::new(Metrics::new())).with_rules(Arc::new(
                ArcSwap::from_pointee(sync.rules.as_ref().unwrap().load_full().as_ref().clone()),
            ));
        let verdict = sync.decide(review(&deployment, "edge", deadline)).await;
        assert_eq!(refused_reason(&verdict), Some("configmap_not_vmcp"));

        // A Deployment no link matches is left alone, without a lookup.
        let mut unlinked = deployment.clone();
        unlinked["metadata"]["labels"] = json!({});
        let verdict = sync.decide(review(&unlinked, "edge", deadline)).await;
        assert_eq!(verdict.decision, Decision::NotVmcp);
    }
}

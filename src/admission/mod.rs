//! The admission envelope: read an AdmissionReview, hand the object to the
//! right mutator, and write the answer. The decisions themselves live in
//! [`crate::normalize`] (ConfigMaps) and behind [`WorkloadMutator`]
//! (Deployments, StatefulSets, DaemonSets).
//!
//! This webhook never rejects a write: every review that parses is answered
//! `allowed: true`, with a patch only when something was put in canonical form.

mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::log_field::capped;
use crate::metrics::{AdmissionLabels, KindLabels, Metrics, ReasonLabels};
#[cfg(test)]
use crate::normalize;
use crate::normalize::{Change, ChecksumSource, Outcome, checksum_source_of};
use crate::order_churn::{self, MAX_REPORTED_LISTS, OrderChurn};
use crate::recognize::CONFIG_KEY;
use crate::rules::{Action, Mode, ObjectKind, Rule, RuleSet};
use crate::workload::WorkloadKind;

pub use wire::{
    API_VERSION, AdmissionRequest, GroupVersionKind, GroupVersionResource, KIND, encode_response,
    parse_review,
};

/// Warnings longer than this may be truncated by the apiserver or kubectl.
pub const MAX_WARNING_BYTES: usize = 119;

/// Request bodies above this size are normalized on the blocking pool, so a
/// large document neither stalls a runtime worker nor outlives the deadline.
const INLINE_BODY_LIMIT: usize = 64 * 1024;

/// Large documents normalized at once. Each holds several times its size
/// while it runs (about 15 MiB for a 1 MiB config.yaml), and on two cores
/// more at once would not finish sooner; the others wait within their
/// deadline.
const LARGE_NORMALIZATIONS: usize = 1;

/// Audit annotation naming the lists an UPDATE changed only in order.
pub const ORDER_CHURN_ANNOTATION: &str = "order-churn";
/// Audit annotation naming the ConfigMap of a checksum-only rollout.
pub const CHECKSUM_ONLY_ROLLOUT_ANNOTATION: &str = "checksum-only-rollout";
/// Audit annotation values are cut to this many bytes: they go into every
/// audit event of the write.
const MAX_AUDIT_VALUE_BYTES: usize = 1024;

/// The most a ConfigMap's data may hold: the apiserver rejects a larger one
/// after admission, so normalizing it would cost memory for nothing.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// A body the webhook cannot answer with an AdmissionReview.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    #[error("truncated body: {0}")]
    Truncated(#[source] serde_json::Error),
    #[error("body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("body is not an AdmissionReview: {0}")]
    NotAReview(#[source] serde_json::Error),
    #[error("apiVersion is {}, expected admission.k8s.io/v1", quoted(.0))]
    ApiVersion(Option<String>),
    #[error("kind is {}, expected AdmissionReview", quoted(.0))]
    Kind(Option<String>),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview request has an empty uid")]
    NoUid,
    #[error("cannot encode the AdmissionReview response: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The value a client sent, quoted and cut (it goes into the answer and the log).
fn quoted(value: &Option<String>) -> String {
    match value {
        Some(value) => format!("{:?}", capped(value).to_string()),
        None => "missing".to_owned(),
    }
}

impl AdmissionError {
    /// True when the client sent something that is not an AdmissionReview
    /// (HTTP 400); false for our own failure to answer (HTTP 500).
    pub fn is_bad_request(&self) -> bool {
        !matches!(self, AdmissionError::Encode(_))
    }
}

/// What the webhook decided for one object; the `outcome` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An operation, subresource or kind this webhook does not touch.
    Skipped,
    /// A ConfigMap or workload that is not a vMCP object (nor one a rule
    /// links).
    NotVmcp,
    /// A vMCP object that is already canonical.
    Unchanged,
    /// A vMCP object put in canonical form: the answer carries a patch.
    Patched,
    /// An object a rule in mode `warn` would have patched: warnings and an
    /// audit annotation, no patch.
    Warned,
    /// A vMCP object left as received because a rewrite could not be proven
    /// safe. `reason` is a low-cardinality metric label.
    Refused { reason: &'static str },
    /// No decision within the request's budget: allowed, unchanged.
    TimedOut,
    /// An internal failure (a bug): allowed, unchanged.
    Error,
}

impl Decision {
    /// Every `outcome` label, so the metrics can start each one at zero.
    pub const LABELS: [&'static str; 8] = [
        "skipped",
        "not_vmcp",
        "unchanged",
        "patched",
        "warned",
        "refused",
        "timeout",
        "error",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Skipped => "skipped",
            Decision::NotVmcp => "not_vmcp",
            Decision::Unchanged => "unchanged",
            Decision::Patched => "patched",
            Decision::Warned => "warned",
            Decision::Refused { .. } => "refused",
            Decision::TimedOut => "timeout",
            Decision::Error => "error",
        }
    }
}

/// The answer for one object: always allowed; maybe a patch, warnings for the
/// user and annotations for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    pub patch: Option<json_patch::Patch>,
    /// Short lines (at most [`MAX_WARNING_BYTES`]) shown by kubectl.
    pub warnings: Vec<String>,
    /// The apiserver prefixes each key with the webhook name.
    pub audit_annotations: BTreeMap<&'static str, String>,
    /// The name of the rule that matched the object (`toolhive-vmcp` for
    /// the preset), when one did: a bounded label for metrics.
    pub rule: Option<String>,
}

impl Verdict {
    /// Allowed, no patch.
    pub fn allow(decision: Decision) -> Self {
        Self {
            decision,
            patch: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
            rule: None,
        }
    }

    /// Allowed with a patch (an empty patch is never sent).
    pub fn patched(patch: json_patch::Patch) -> Self {
        Self {
            patch: Some(patch),
            ..Self::allow(Decision::Patched)
        }
    }

    /// Add a warning, cut to [`MAX_WARNING_BYTES`].
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(fit_warning(warning.into()));
        self
    }

    pub fn with_audit_annotation(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.audit_annotations.insert(key, value.into());
        self
    }
}

/// Cut a warning to at most [`MAX_WARNING_BYTES`] bytes on a character boundary.
fn fit_warning(mut warning: String) -> String {
    if warning.len() > MAX_WARNING_BYTES {
        let mut end = MAX_WARNING_BYTES - '…'.len_utf8();
        while !warning.is_char_boundary(end) {
            end -= 1;
        }
        warning.truncate(end);
        warning.push('…');
    }
    warning
}

/// A workload CREATE or UPDATE, as handed to the [`WorkloadMutator`].
#[derive(Debug, Clone, Copy)]
pub struct WorkloadReview<'a> {
    /// The kind the review's resource names.
    pub kind: WorkloadKind,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `request.object` exactly as received (never `oldObject`).
    pub object: &'a Value,
    pub dry_run: bool,
    /// When the answer is due. Work still running then is abandoned and the
    /// write allowed unchanged, so lookups should finish well before it.
    pub deadline: Instant,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The workload seam: decides the answer for a workload write. It must not
/// fail; anything that goes wrong becomes an allowed verdict with a warning.
pub trait WorkloadMutator: Send + Sync {
    fn mutate<'a>(&'a self, review: WorkloadReview<'a>) -> BoxFuture<'a, Verdict>;
}

/// Without the checksum sync: allow every workload unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThroughWorkloads;

impl WorkloadMutator for PassThroughWorkloads {
    fn mutate<'a>(&'a self, _review: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(std::future::ready(Verdict::allow(Decision::Skipped)))
    }
}

/// The kinds this webhook mutates, told apart by the resource being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    ConfigMap,
    Workload(WorkloadKind),
    Other,
}

impl Target {
    fn of(request: &AdmissionRequest) -> Self {
        let (group, resource) = (
            request.resource.group.as_str(),
            request.resource.resource.as_str(),
        );
        if (group, resource) == ("", "configmaps") {
            return Target::ConfigMap;
        }
        WorkloadKind::of_resource(group, resource).map_or(Target::Other, Target::Workload)
    }

    fn label(self) -> &'static str {
        match self {
            Target::ConfigMap => "ConfigMap",
            Target::Workload(kind) => kind.name(),
            Target::Other => "other",
        }
    }
}

/// Only writes of the object itself are mutated: DELETE carries no object to
/// change (a patch there is an apiserver error), and subresources such as
/// `scale` or `status` are not the configuration.
fn writes_object(request: &AdmissionRequest) -> bool {
    matches!(request.operation.as_str(), "CREATE" | "UPDATE")
        && request.sub_resource.as_deref().unwrap_or("").is_empty()
}

/// The refusal reason of a ConfigMap whose `config.yaml` is over
/// [`MAX_CONFIG_BYTES`].
pub const TOO_LARGE: &str = "too_large";

/// Every `kind` label of the admission metrics.
pub const KIND_LABELS: [&str; 5] = [
    "ConfigMap",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "other",
];

/// Every `operation` label of the admission metrics.
pub const OPERATION_LABELS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "other"];

/// The (kind, operation, outcome) triples a review can be counted under: a
/// write of a ConfigMap or workload can end in any outcome; anything else
/// (other kinds, DELETE, CONNECT) is only ever skipped.
pub fn reachable_admission_labels() -> Vec<AdmissionLabels> {
    let mut labels = Vec::new();
    for kind in KIND_LABELS {
        for operation in OPERATION_LABELS {
            let writes = kind != "other" && matches!(operation, "CREATE" | "UPDATE");
            let outcomes: &[&'static str] = if writes {
                &Decision::LABELS
            } else {
                &["skipped"]
            };
            for &outcome in outcomes {
                labels.push(AdmissionLabels {
                    kind,
                    operation,
                    outcome,
                });
            }
        }
    }
    labels
}

fn operation_label(operation: &str) -> &'static str {
    match operation {
        "CREATE" => "CREATE",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// Shared state of the admission path: cheap to clone, one per server.
#[derive(Clone)]
pub struct Admission {
    metrics: Arc<Metrics>,
    /// The rules in force: swapped whole when the rules file is reloaded.
    rules: Arc<ArcSwap<RuleSet>>,
    workloads: Arc<dyn WorkloadMutator>,
    large_normalizations: Arc<Semaphore>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").finish_non_exhaustive()
    }
}

impl Admission {
    /// ConfigMaps through the normalizer, workloads passed through.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            rules: Arc::new(ArcSwap::from_pointee(RuleSet::preset())),
            workloads: Arc::new(PassThroughWorkloads),
            large_normalizations: Arc::new(Semaphore::new(LARGE_NORMALIZATIONS)),
        }
    }

    /// Plug in the workload mutator.
    pub fn with_workload_mutator(mut self, workloads: Arc<dyn WorkloadMutator>) -> Self {
        self.workloads = workloads;
        self
    }

    /// Use these rules (a reload stores new ones into the same cell).
    pub fn with_rules(mut self, rules: Arc<ArcSwap<RuleSet>>) -> Self {
        self.rules = rules;
        self
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The cell the rules in force are stored in (for their reload).
    pub fn rules_cell(&self) -> Arc<ArcSwap<RuleSet>> {
        self.rules.clone()
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }

    /// Answer one AdmissionReview body within `budget`: the encoded response,
    /// or an error when the body is not an AdmissionReview.
    pub async fn review(&self, body: &[u8], budget: Duration) -> Result<Vec<u8>, AdmissionError> {
        self.review_since(body, Instant::now(), budget).await
    }

    /// [`Admission::review`] of a request that arrived at `received`: the
    /// budget counts from then, so time spent reading the body is spent.
    pub async fn review_since(
        &self,
        body: &[u8],
        received: Instant,
        budget: Duration,
    ) -> Result<Vec<u8>, AdmissionError> {
        let started = Instant::now();
        let mut request = parse_review(body)?;
        let target = Target::of(&request);
        let deadline = received + budget;
        let churn = detect_order_churn(&request, target, &self.rules.load());
        let verdict = if writes_object(&request) {
            let object = request.object.take();
            let large = body.len() > INLINE_BODY_LIMIT;
            let decide = self.decide(target, &request, object, large, deadline);
            match tokio::time::timeout_at(deadline, decide).await {
                Ok(verdict) => verdict,
                Err(_) => Verdict::allow(Decision::TimedOut).with_warning(format!(
                    "vmcp-normalizer: no decision within {} ms; object left unchanged",
                    budget.as_millis()
                )),
            }
        } else {
            Verdict::allow(Decision::Skipped)
        };
        let verdict = match &churn {
            Some(churn) => with_order_churn(verdict, &churn.found),
            None => verdict,
        };
        let response = encode_response(&request.uid, &verdict)?;
        self.record(&request, target, &verdict, started.elapsed());
        if let Some(churn) = &churn {
            self.record_order_churn(&request, target, churn);
        }
        Ok(response)
    }

    async fn decide(
        &self,
        target: Target,
        request: &AdmissionRequest,
        object: Option<Value>,
        large: bool,
        deadline: Instant,
    ) -> Verdict {
        let Some(object) = object else {
            return Verdict::allow(Decision::Skipped);
        };
        let rules = self.rules.load_full();
        let data_bytes = data_len(&object);
        match target {
            Target::ConfigMap if data_bytes > MAX_CONFIG_BYTES => {
                Verdict::allow(Decision::Refused { reason: TOO_LARGE }).with_warning(format!(
                    "vmcp-normalizer: data holds {data_bytes} bytes, more than a ConfigMap may hold ({MAX_CONFIG_BYTES}); left unchanged"
                ))
            }
            Target::ConfigMap => {
                let kind = RuleKind::configmap();
                rule_verdict(self.run_normalizer(rules, kind, object, large).await)
            }
            Target::Workload(kind) => {
                let link = rules
                    .workload_rule_for(kind.object_kind(), &object)
                    .map(|rule| (rule.name.clone(), rule.mode == Mode::Warn));
                if link.is_none() && rules.rule_for(kind.object_kind(), &object).is_some() {
                    // Not a linked workload, and a rule matches the object
                    // itself: that rule, as for any other kind.
                    return self.object_rules(request, rules, object, large).await;
                }
                // Workload links run in the workload mutator; rules that
                // link none leave workloads alone (the preset links
                // Deployments only).
                if !(rules.includes_preset() || rules.links_workloads()) {
                    return Verdict::allow(Decision::Skipped);
                }
                let (rule, warn_only) = match link {
                    Some((name, warn_only)) => (Some(name), warn_only),
                    None => (
                        rules
                            .includes_preset()
                            .then(|| crate::rules::PRESET.to_owned()),
                        false,
                    ),
                };
                let review = WorkloadReview {
                    kind,
                    namespace: request.namespace.as_deref().unwrap_or(""),
                    name: request.name.as_deref().unwrap_or(""),
                    object: &object,
                    dry_run: request.dry_run.unwrap_or(false),
                    deadline,
                };
                let mut verdict = self.workloads.mutate(review).await;
                if warn_only && verdict.patch.is_some() {
                    verdict = warned(verdict);
                }
                if verdict.decision != Decision::NotVmcp && verdict.decision != Decision::Skipped {
                    verdict.rule = rule;
                }
                verdict
            }
            Target::Other => self.object_rules(request, rules, object, large).await,
        }
    }

    /// The first rule that matches the object as the request names its
    /// kind; skipped when none does.
    async fn object_rules(
        &self,
        request: &AdmissionRequest,
        rules: Arc<RuleSet>,
        object: Value,
        large: bool,
    ) -> Verdict {
        let kind = RuleKind::of(request);
        if rules.rule_for(kind.as_ref(), &object).is_none() {
            return Verdict::allow(Decision::Skipped);
        }
        rule_verdict(self.run_normalizer(rules, kind, object, large).await)
    }

    fn record(
        &self,
        request: &AdmissionRequest,
        target: Target,
        verdict: &Verdict,
        elapsed: Duration,
    ) {
        let kind = target.label();
        let outcome = verdict.decision.as_str();
        let metrics = &self.metrics;
        metrics
            .admissions
            .get_or_create(&AdmissionLabels {
                kind,
                operation: operation_label(&request.operation),
                outcome,
            })
            .inc();
        metrics
            .admission_duration
            .get_or_create(&KindLabels { kind })
            .observe(elapsed.as_secs_f64());
        if verdict
            .patch
            .as_ref()
            .is_some_and(|patch| !patch.0.is_empty())
        {
            metrics.patches.get_or_create(&KindLabels { kind }).inc();
        }
        if let Decision::Refused { reason } = verdict.decision {
            // A reason missing from the list would appear only with its
            // first event, invisible to alerts until then.
            debug_assert!(
                crate::metrics::refusal_reasons().contains(&reason),
                "refusal reason {reason} is not in metrics::refusal_reasons"
            );
            metrics
                .refusals
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }

        let namespace = request.namespace.as_deref().unwrap_or("");
        let name = request.name.as_deref().unwrap_or("");
        let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let dry_run = request.dry_run.unwrap_or(false);
        macro_rules! admission_line {
            ($level:ident, $($detail:tt)+) => {
                tracing::$level!(
                    uid = %capped(&request.uid),
                    kind = %capped(&request.kind.kind),
                    namespace = %capped(namespace),
                    name = %capped(name),
                    operation = %capped(&request.operation),
                    dry_run,
                    outcome = %outcome,
                    elapsed_us,
                    $($detail)+,
                    "admission"
                )
            };
        }
        match verdict.decision {
            Decision::Refused { .. } | Decision::TimedOut | Decision::Error => {
                admission_line!(warn, warnings = ?verdict.warnings)
            }
            // What a patch changed is in its audit annotation, in a word or
            // two; the warnings say the same at length.
            Decision::Patched => admission_line!(
                info,
                normalized = verdict
                    .audit_annotations
                    .get("normalized")
                    .map_or("", String::as_str)
            ),
            _ => admission_line!(info, warnings = ?verdict.warnings),
        }
    }
}

impl Admission {
    /// Count and log what the order-churn detector found in one UPDATE.
    fn record_order_churn(&self, request: &AdmissionRequest, target: Target, churn: &Churn) {
        let Churn {
            found: churn,
            linked_annotation,
        } = churn;
        let kind = target.label();
        let namespace = request.namespace.as_deref().unwrap_or("");
        let name = request.name.as_deref().unwrap_or("");
        if !churn.lists.is_empty() {
            let mut rules: Vec<&'static str> =
                churn.lists.iter().map(|list| list.rule.as_str()).collect();
            rules.sort_unstable();
            rules.dedup();
            for rule in &rules {
                self.metrics.count_order_churn(kind, rule);
            }
            macro_rules! churn_line {
                ($level:ident) => {
                    tracing::$level!(
                        uid = %capped(&request.uid),
                        kind,
                        namespace = %capped(namespace),
                        name = %capped(name),
                        rules = %rules.join(","),
                        lists = %order_churn_summary(churn),
                        "lists changed only in order: the writer emits them in an unstable order"
                    )
                };
            }
            // A list no rule reorders is likely rolling pods out: a warning.
            // One the webhook puts back in order costs nothing: information.
            if rules.contains(&order_churn::Rule::None.as_str()) {
                churn_line!(warn);
            } else {
                churn_line!(info);
            }
        }
        if let Some(rollout) = &churn.checksum_only_rollout {
            self.metrics.checksum_only_rollout(kind);
            let annotation = linked_annotation.as_deref().unwrap_or("runconfig-checksum");
            tracing::info!(
                uid = %capped(&request.uid),
                kind,
                namespace = %capped(namespace),
                name = %capped(name),
                configmap = %capped(rollout.configmap.as_deref().unwrap_or("")),
                "checksum-only rollout: the pod template changed only in {annotation}"
            );
        }
    }

    /// Run the normalizer; `None` when it panicked (a bug), so that costs one
    /// write left unchanged rather than the connection. Large documents go to
    /// the blocking pool one at a time; the turn is held by the work itself,
    /// so one still running after its request gave up is counted too.
    async fn run_normalizer(
        &self,
        rules: Arc<RuleSet>,
        kind: RuleKind,
        object: Value,
        large: bool,
    ) -> Option<RuleOutcome> {
        if large {
            let turn = self
                .large_normalizations
                .clone()
                .acquire_owned()
                .await
                .ok()?;
            tokio::task::spawn_blocking(move || {
                let outcome = RuleOutcome::of(&rules, &kind, &object);
                drop(turn);
                outcome
            })
            .await
            .ok()
        } else {
            catch_unwind(AssertUnwindSafe(|| RuleOutcome::of(&rules, &kind, &object))).ok()
        }
    }
}

/// The kind a rule is matched against, owned so it can cross to the
/// blocking pool.
#[derive(Debug, Clone)]
struct RuleKind {
    api_version: Option<String>,
    kind: String,
}

impl RuleKind {
    /// The `configmaps` resource: matched as a ConfigMap whatever the
    /// object says (as the ConfigMap normalizer always did).
    fn configmap() -> Self {
        Self {
            api_version: None,
            kind: "ConfigMap".to_owned(),
        }
    }

    /// The kind the request names (group/version/kind of the object).
    fn of(request: &AdmissionRequest) -> Self {
        let gvk = &request.kind;
        Self {
            api_version: Some(if gvk.group.is_empty() {
                gvk.version.clone()
            } else {
                format!("{}/{}", gvk.group, gvk.version)
            }),
            kind: gvk.kind.clone(),
        }
    }

    fn as_ref(&self) -> ObjectKind<'_> {
        ObjectKind {
            api_version: self.api_version.as_deref(),
            kind: &self.kind,
        }
    }
}

/// What the rules did to one object, owned.
#[derive(Debug)]
struct RuleOutcome {
    rule: Option<String>,
    mode: Mode,
    /// What a refusal warning names: the data key, or `object`.
    subject: String,
    outcome: Outcome,
}

impl RuleOutcome {
    fn of(rules: &RuleSet, kind: &RuleKind, object: &Value) -> Self {
        let applied = rules.apply(kind.as_ref(), object);
        Self {
            rule: applied.rule.map(|rule| rule.name.clone()),
            mode: applied.rule.map_or(Mode::Mutate, |rule| rule.mode),
            subject: match applied.rule.map(|rule| &rule.action) {
                Some(Action::Data(data)) => data.key.clone(),
                Some(Action::Object(_)) => "object".to_owned(),
                None => CONFIG_KEY.to_owned(),
            },
            outcome: applied.outcome,
        }
    }
}

/// The bytes a ConfigMap's `data` and `binaryData` hold, as the apiserver
/// counts them against [`MAX_CONFIG_BYTES`] (`binaryData` decoded). Every
/// key counts: a rules file may normalize any of them.
fn data_len(object: &Value) -> usize {
    let strings = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|map| map.values())
            .filter_map(Value::as_str)
            .map(str::len)
            .sum::<usize>()
    };
    strings("data") + strings("binaryData") / 4 * 3
}

fn rule_verdict(outcome: Option<RuleOutcome>) -> Verdict {
    let Some(RuleOutcome {
        rule,
        mode,
        subject,
        outcome,
    }) = outcome
    else {
        return Verdict::allow(Decision::Error)
            .with_warning("vmcp-normalizer: internal error; ConfigMap left unchanged");
    };
    let mut verdict = match (outcome, mode) {
        (Outcome::Normalized(normalized), Mode::Warn) => {
            let summary = summary(&normalized.changes);
            let mut verdict =
                Verdict::allow(Decision::Warned).with_audit_annotation("would-normalize", summary);
            for change in &normalized.changes {
                verdict = verdict
                    .with_warning(format!("vmcp-normalizer (warn only): would have {change}"));
            }
            verdict
        }
        (outcome, _) => outcome_verdict(outcome, &subject),
    };
    verdict.rule = rule;
    verdict
}

/// A patched verdict of a rule in mode `warn`: its warnings and audit
/// annotation say what would have changed; no patch.
fn warned(patched: Verdict) -> Verdict {
    let summary = patched
        .audit_annotations
        .get("normalized")
        .cloned()
        .unwrap_or_default();
    let mut verdict =
        Verdict::allow(Decision::Warned).with_audit_annotation("would-normalize", summary);
    for warning in &patched.warnings {
        let change = warning.trim_start_matches("vmcp-normalizer: ");
        verdict = verdict.with_warning(format!("vmcp-normalizer (warn only): would have {change}"));
    }
    verdict
}

fn summary(changes: &[Change]) -> String {
    changes
        .iter()
        .map(change_label)
        .collect::<Vec<_>>()
        .join(",")
}

/// The answer for a vMCP ConfigMap's outcome (`None`: the normalizer
/// panicked).
#[cfg(test)]
fn configmap_verdict(outcome: Option<Outcome>) -> Verdict {
    match outcome {
        Some(outcome) => outcome_verdict(outcome, CONFIG_KEY),
        None => Verdict::allow(Decision::Error)
            .with_warning("vmcp-normalizer: internal error; ConfigMap left unchanged"),
    }
}

/// The answer for a rule's outcome; a refusal names `subject` (the data key).
fn outcome_verdict(outcome: Outcome, subject: &str) -> Verdict {
    match outcome {
        Outcome::NotVmcp => Verdict::allow(Decision::NotVmcp),
        Outcome::Unchanged => Verdict::allow(Decision::Unchanged),
        Outcome::Normalized(normalized) => {
            let summary = summary(&normalized.changes);
            let mut verdict =
                Verdict::patched(normalized.patch).with_audit_annotation("normalized", summary);
            for change in &normalized.changes {
                verdict = verdict.with_warning(format!("vmcp-normalizer: {change}"));
            }
            verdict
        }
        Outcome::Refused(refusal) => {
            let reason = refusal.reason.as_str();
            Verdict::allow(Decision::Refused { reason })
                .with_warning(format!("vmcp-normalizer: {subject} {refusal}"))
                .with_audit_annotation("refused-reason", reason)
        }
    }
}

/// What the order-churn detector found in one UPDATE.
#[derive(Debug)]
struct Churn {
    found: OrderChurn,
    /// The workload link's pod-template annotation, when a rules file links
    /// the workload (else `runconfig-checksum` is the checksum).
    linked_annotation: Option<String>,
}

/// Run the order-churn detector on an UPDATE of a kind this webhook
/// watches, comparing the object as received with `oldObject`. It never
/// fails the write: when it cannot decide (or panics) that is logged and the
/// answer goes without it.
/// The lists a rule of `rules` reorders are labelled as such, and its
/// checksum annotation is left out of the comparison.
fn detect_order_churn(
    request: &AdmissionRequest,
    target: Target,
    rules: &RuleSet,
) -> Option<Churn> {
    if request.operation != "UPDATE" || !writes_object(request) {
        return None;
    }
    let kind = match target {
        Target::ConfigMap => order_churn::Kind::ConfigMap,
        Target::Workload(kind) => order_churn::Kind::from(kind),
        Target::Other => return None,
    };
    let (Some(new), Some(old)) = (request.object.as_ref(), request.old_object.as_deref()) else {
        return None;
    };
    let old: Value = match serde_json::from_str(old.get()) {
        Ok(old) => old,
        Err(error) => {
            tracing::debug!(uid = %capped(&request.uid), %error, "order-churn detector: oldObject not read");
            return None;
        }
    };
    let linked = match target {
        Target::Workload(kind) => linked_workload(rules, kind, new),
        _ => None,
    };
    // A linked StatefulSet or DaemonSet goes to the checksum sync, not
    // through the rules that match the object itself.
    let declared = match target {
        Target::Workload(WorkloadKind::StatefulSet | WorkloadKind::DaemonSet)
            if linked.is_some() =>
        {
            None
        }
        _ => declared_rule(rules, new),
    };
    let derived = order_churn::Derived {
        checksum: declared.and_then(checksum_annotation),
        workload: linked
            .as_ref()
            .map(|(annotation, configmap)| order_churn::LinkedChecksum {
                annotation,
                configmap: configmap.as_deref(),
            }),
    };
    match catch_unwind(AssertUnwindSafe(|| {
        order_churn::detect_deriving(kind, &old, new, derived)
    })) {
        Ok(Ok(churn)) => Some(with_declared_sets(churn, declared))
            .filter(|churn| !churn.is_empty())
            .map(|found| Churn {
                found,
                linked_annotation: linked.map(|(annotation, _)| annotation),
            }),
        Ok(Err(skipped)) => {
            tracing::debug!(
                uid = %capped(&request.uid),
                reason = skipped.as_str(),
                %skipped,
                "order-churn detector skipped"
            );
            None
        }
        Err(_) => {
            tracing::error!(uid = %capped(&request.uid), "order-churn detector panicked; answered without it");
            None
        }
    }
}

/// The rule of a rules file (not the built-in preset, which the detector
/// knows) that reorders `object`'s sets: one in mode `mutate`.
fn declared_rule<'r>(rules: &'r RuleSet, object: &Value) -> Option<&'r Rule> {
    let kind = ObjectKind::of(object)?;
    rules
        .rule_for(kind, object)
        .filter(|rule| !rule.builtin && rule.mode == Mode::Mutate)
}

/// The pod-template annotation and ConfigMap name of the workload link of a
/// rules file (the preset's is the detector's own) that `object` follows.
fn linked_workload(
    rules: &RuleSet,
    kind: WorkloadKind,
    object: &Value,
) -> Option<(String, Option<String>)> {
    let rule = rules
        .workload_rule_for(kind.object_kind(), object)
        .filter(|rule| !rule.builtin)?;
    let follow = rule.follow()?;
    let configmap = match checksum_source_of(object, &follow) {
        ChecksumSource::ConfigMap { name, .. } => Some(name.into_owned()),
        _ => None,
    };
    Some((follow.annotation, configmap))
}

/// The checksum annotation a declared rule keeps: it changes with the order,
/// so the detector must not take it for a change of content.
fn checksum_annotation(rule: &Rule) -> Option<&str> {
    match &rule.action {
        Action::Data(data) => data
            .checksum
            .as_ref()
            .map(|checksum| checksum.annotation.as_str()),
        Action::Object(_) => None,
    }
}

/// `churn` with the lists `rule` reorders labelled
/// [`order_churn::Rule::Declared`]: the webhook puts those back in order,
/// so they roll nothing out.
fn with_declared_sets(mut churn: OrderChurn, rule: Option<&Rule>) -> OrderChurn {
    let Some(rule) = rule else {
        return churn;
    };
    // The paths as the detector writes them.
    let declared: Vec<String> = match &rule.action {
        Action::Data(data) => data
            .sets
            .iter()
            .flat_map(|set| {
                let path = format!("{}: {}", data.key, set.path);
                [format!("last-applied: {path}"), path]
            })
            .collect(),
        Action::Object(sets) => sets.iter().map(|set| set.path.to_string()).collect(),
    };
    for list in &mut churn.lists {
        if list.rule == order_churn::Rule::None && declared.contains(&list.path) {
            list.rule = order_churn::Rule::Declared;
        }
    }
    churn
}

/// `verdict` with a warning per list changed only in order and the audit
/// annotations; its decision and patch stay as they are.
fn with_order_churn(mut verdict: Verdict, churn: &OrderChurn) -> Verdict {
    for list in &churn.lists {
        verdict = verdict.with_warning(format!(
            "vmcp-normalizer: only the order changed (unstable writer): {}",
            list.path
        ));
    }
    if churn.more {
        verdict = verdict.with_warning(format!(
            "vmcp-normalizer: more than {MAX_REPORTED_LISTS} lists changed only in order"
        ));
    }
    if !churn.lists.is_empty() {
        verdict = verdict.with_audit_annotation(ORDER_CHURN_ANNOTATION, order_churn_summary(churn));
    }
    if let Some(rollout) = &churn.checksum_only_rollout {
        let configmap = rollout.configmap.as_deref().unwrap_or("unknown");
        verdict = verdict
            .with_audit_annotation(CHECKSUM_ONLY_ROLLOUT_ANNOTATION, cut(configmap.to_owned()));
    }
    verdict
}

/// The reordered lists' paths, comma-separated, at most
/// [`MAX_AUDIT_VALUE_BYTES`].
fn order_churn_summary(churn: &OrderChurn) -> String {
    let mut summary = churn
        .lists
        .iter()
        .map(|list| list.path.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if churn.more {
        summary.push_str(", …");
    }
    cut(summary)
}

fn cut(mut value: String) -> String {
    if value.len() > MAX_AUDIT_VALUE_BYTES {
        let mut end = MAX_AUDIT_VALUE_BYTES - '…'.len_utf8();
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
        value.push('…');
    }
    value
}

fn change_label(change: &Change) -> &'static str {
    match change {
        Change::BackendsReordered { .. } => "backends-reordered",
        Change::LastAppliedReordered { .. } => "last-applied-reordered",
        Change::LastAppliedLeft(_) => "last-applied-left",
        Change::ContentChecksum { .. } => "content-checksum",
        Change::SetReordered { .. } => "set-reordered",
        Change::Checksum { .. } => "checksum",
    }
}

#[cfg(test)]
mod tests;

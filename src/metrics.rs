//! The webhook's Prometheus metrics: one [`Metrics`] value, shared by the
//! admission path, the certificate reloader and the admin endpoint.
//!
//! Every label value is a `&'static str` chosen by this crate, so a caller can
//! never blow up the series count with request data. Every label value the
//! crate can count under is exported at zero from the start, so `rate()` and
//! alerts see a series before its first event.
//!
//! Label names: `outcome` is what came of something (every outcome is one
//! series), `reason` says why something happened that has no other outcome
//! (a refusal, a certificate issued), `code` is an HTTP status.
//!
//! Besides the `vmcp_normalizer_` metrics, the conventional `process_*`
//! metrics are read from `/proc/self` on each scrape ([`process`]).

mod process;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::admission::{KIND_LABELS, reachable_admission_labels};
use crate::certificates::authority::IssueReason;
use crate::certificates::self_managed::SelfManagedError;
use crate::lookup::LookupError;
use crate::normalize::{RefusalReason, UnsyncedReason};
use crate::server::PORT_LABELS;
use crate::server::limits::Shed;

/// Latency buckets in seconds: from 100 µs (a ConfigMap that needs no change)
/// up to 10 s (the apiserver's default webhook timeout).
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub kind: &'static str,
    pub operation: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChurnLabels {
    pub kind: &'static str,
    pub rule: &'static str,
}

/// The `{kind, rule}` pairs the order-churn detector can count: only
/// ConfigMaps have a built-in rule; a rules file declares sets in
/// ConfigMaps' data, and in the fields of a StatefulSet or DaemonSet no
/// link takes (the webhook sees no other kind's fields). Exported at zero
/// from the start.
pub const ORDER_CHURN_LABELS: [ChurnLabels; 8] = [
    ChurnLabels {
        kind: "ConfigMap",
        rule: "toolhive-vmcp",
    },
    ChurnLabels {
        kind: "ConfigMap",
        rule: "declared",
    },
    ChurnLabels {
        kind: "ConfigMap",
        rule: "none",
    },
    ChurnLabels {
        kind: "Deployment",
        rule: "none",
    },
    ChurnLabels {
        kind: "StatefulSet",
        rule: "declared",
    },
    ChurnLabels {
        kind: "StatefulSet",
        rule: "none",
    },
    ChurnLabels {
        kind: "DaemonSet",
        rule: "declared",
    },
    ChurnLabels {
        kind: "DaemonSet",
        rule: "none",
    },
];

/// The `kind` labels of the workloads: patched by the checksum sync, and
/// counted in checksum-only rollouts.
pub const WORKLOAD_KIND_LABELS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortLabels {
    pub port: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub revision: &'static str,
}

/// The HTTP statuses the webhook port answers errors with; anything else is
/// counted as `other`.
const ERROR_CODES: [&str; 9] = [
    "400", "404", "405", "408", "413", "415", "500", "503", "other",
];

/// Outcomes of a certificate reload.
const RELOAD_OUTCOMES: [&str; 2] = ["ok", "failed"];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Create the series of each label set, at zero.
fn start_at_zero<L, M, C>(family: &Family<L, M, C>, labels: impl IntoIterator<Item = L>)
where
    L: Clone + std::hash::Hash + Eq,
    C: MetricConstructor<M>,
{
    for labels in labels {
        drop(family.get_or_create(&labels));
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every reason a vMCP object can be left unchanged: the normalizer's, the
/// workload checksum sync's, the lookup's, and the admission path's own.
pub fn refusal_reasons() -> Vec<&'static str> {
    let mut reasons: Vec<&'static str> = RefusalReason::ALL.iter().map(|r| r.as_str()).collect();
    reasons.extend(UnsyncedReason::ALL.iter().map(|r| r.as_str()));
    reasons.extend(LookupError::REFUSAL_REASONS);
    reasons.push(crate::checksum_sync::NOT_CONFIGURED);
    reasons.push(crate::admission::TOO_LARGE);
    reasons
}

/// All metrics of the process: the webhook's under the `vmcp_normalizer_`
/// prefix, and the process collector's `process_*`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Admission reviews answered, by kind, operation and outcome.
    pub admissions: Family<AdmissionLabels, Counter>,
    /// Time from a parsed review to its serialized answer, by kind.
    pub admission_duration: HistogramFamily<KindLabels>,
    /// Admission responses that carried a JSON patch, by kind.
    pub patches: Family<KindLabels, Counter>,
    /// vMCP objects left unchanged because the normalizer could not prove a
    /// rewrite safe, by reason.
    pub refusals: Family<ReasonLabels, Counter>,
    /// Requests on the webhook port answered with an HTTP error, by code.
    pub http_rejections: Family<CodeLabels, Counter>,
    /// Reviews answered 503 at once because a budget was spent, by limit
    /// (`in_flight` or `body_bytes`).
    pub requests_shed: Family<LimitLabels, Counter>,
    /// Connections closed on accept because the port had its most open, by
    /// port (`webhook` or `admin`).
    pub connections_refused: Family<PortLabels, Counter>,
    /// Certificate reloads after the files changed, by outcome (ok/failed).
    pub certificate_reloads: Family<OutcomeLabels, Counter>,
    /// Rules file reloads after it changed, by outcome (ok/failed: the last
    /// good rules stay in force).
    pub rules_reloads: Family<OutcomeLabels, Counter>,
    /// Not-after time of the certificate being served, as a Unix timestamp.
    pub certificate_not_after: Gauge,
    /// Live ConfigMap reads for workload reviews, by outcome (`ok` or a
    /// `LookupError::metric_label`).
    pub configmap_lookups: Family<OutcomeLabels, Counter>,
    /// Time of each live ConfigMap read, whatever its outcome.
    pub configmap_lookup_duration: Histogram,
    /// Self-managed certificate rounds, by outcome (`ok` or the error's
    /// metric label).
    pub certificate_store_rounds: Family<OutcomeLabels, Counter>,
    /// Self-managed certificates this replica issued, by reason.
    pub certificate_issuances: Family<ReasonLabels, Counter>,
    /// UPDATEs whose only change was the order of one or more lists, by kind
    /// and rule (`toolhive-vmcp` when the built-in normalizer reorders the
    /// list, `none` when the detector only warns); once per rule per UPDATE.
    pub order_churn: Family<ChurnLabels, Counter>,
    /// Workload UPDATEs whose pod template changed only in its checksum
    /// annotation (`runconfig-checksum`, or a workload link's), by kind.
    pub checksum_only_rollouts: Family<KindLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        // Unprefixed: the process metrics keep their conventional names.
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("vmcp_normalizer");

        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: crate::version::VERSION,
                revision: crate::version::REVISION,
            })
            .set(1);
        registry.register(
            "build_info",
            "The version and git revision of the running binary (always 1)",
            build_info,
        );
        let admissions = Family::<AdmissionLabels, Counter>::default();
        start_at_zero(&admissions, reachable_admission_labels());
        registry.register(
            "admission_requests",
            "Admission reviews answered, by kind, operation and outcome",
            admissions.clone(),
        );
        let admission_duration: HistogramFamily<KindLabels> =
            Family::new_with_constructor(latency_histogram);
        start_at_zero(
            &admission_duration,
            KIND_LABELS.map(|kind| KindLabels { kind }),
        );
        registry.register_with_unit(
            "admission_duration",
            "Time to decide and encode one admission review",
            Unit::Seconds,
            admission_duration.clone(),
        );
        let patches = Family::<KindLabels, Counter>::default();
        start_at_zero(
            &patches,
            std::iter::once("ConfigMap")
                .chain(WORKLOAD_KIND_LABELS)
                .map(|kind| KindLabels { kind }),
        );
        registry.register(
            "patches",
            "Admission responses that carried a JSON patch",
            patches.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        start_at_zero(
            &refusals,
            refusal_reasons()
                .into_iter()
                .map(|reason| ReasonLabels { reason }),
        );
        registry.register(
            "normalizations_refused",
            "vMCP objects left unchanged because a rewrite could not be proven safe, by reason",
            refusals.clone(),
        );
        let http_rejections = Family::<CodeLabels, Counter>::default();
        start_at_zero(
            &http_rejections,
            ERROR_CODES.map(|code| CodeLabels { code }),
        );
        registry.register(
            "http_rejections",
            "Webhook requests answered with an HTTP error, by status code",
            http_rejections.clone(),
        );
        let requests_shed = Family::<LimitLabels, Counter>::default();
        start_at_zero(
            &requests_shed,
            Shed::ALL.map(|shed| LimitLabels {
                limit: shed.as_str(),
            }),
        );
        registry.register(
            "requests_shed",
            "Reviews answered 503 at once because the in-flight or body-bytes budget was spent",
            requests_shed.clone(),
        );
        let connections_refused = Family::<PortLabels, Counter>::default();
        start_at_zero(
            &connections_refused,
            PORT_LABELS.map(|port| PortLabels { port }),
        );
        registry.register(
            "connections_refused",
            "Connections closed on accept because the port had its most open",
            connections_refused.clone(),
        );
        let certificate_reloads = Family::<OutcomeLabels, Counter>::default();
        start_at_zero(
            &certificate_reloads,
            RELOAD_OUTCOMES.map(|outcome| OutcomeLabels { outcome }),
        );
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads after the files changed, by outcome",
            certificate_reloads.clone(),
        );
        let rules_reloads = Family::<OutcomeLabels, Counter>::default();
        start_at_zero(
            &rules_reloads,
            RELOAD_OUTCOMES.map(|outcome| OutcomeLabels { outcome }),
        );
        registry.register(
            "rules_reloads",
            "Rules file reloads after it changed, by outcome (failed: the last good rules stay)",
            rules_reloads.clone(),
        );
        let certificate_not_after = Gauge::default();
        registry.register(
            "certificate_not_after_timestamp_seconds",
            "Not-after time of the served certificate (Unix seconds)",
            certificate_not_after.clone(),
        );
        let configmap_lookups = Family::<OutcomeLabels, Counter>::default();
        start_at_zero(
            &configmap_lookups,
            std::iter::once("ok")
                .chain(LookupError::METRIC_LABELS)
                .map(|outcome| OutcomeLabels { outcome }),
        );
        registry.register(
            "configmap_lookups",
            "Live ConfigMap reads for workload reviews, by outcome",
            configmap_lookups.clone(),
        );
        let configmap_lookup_duration = latency_histogram();
        registry.register_with_unit(
            "configmap_lookup_duration",
            "Time of one live ConfigMap read from the API server",
            Unit::Seconds,
            configmap_lookup_duration.clone(),
        );
        let certificate_store_rounds = Family::<OutcomeLabels, Counter>::default();
        start_at_zero(
            &certificate_store_rounds,
            SelfManagedError::round_outcomes().map(|outcome| OutcomeLabels { outcome }),
        );
        registry.register(
            "certificate_store_rounds",
            "Self-managed certificate rounds (read, maybe issue, publish), by outcome",
            certificate_store_rounds.clone(),
        );
        let certificate_issuances = Family::<ReasonLabels, Counter>::default();
        start_at_zero(
            &certificate_issuances,
            IssueReason::LABELS.map(|reason| ReasonLabels { reason }),
        );
        registry.register(
            "certificate_issuances",
            "Self-managed serving certificates issued by this replica, by reason",
            certificate_issuances.clone(),
        );
        let order_churn = Family::<ChurnLabels, Counter>::default();
        registry.register(
            "order_churn",
            "Updates that changed only the order of lists, by kind and by the rule that reorders them (none: warned only)",
            order_churn.clone(),
        );
        start_at_zero(&order_churn, ORDER_CHURN_LABELS);
        let checksum_only_rollouts = Family::<KindLabels, Counter>::default();
        registry.register(
            "checksum_only_rollouts",
            "Workload updates whose pod template changed only in its checksum annotation",
            checksum_only_rollouts.clone(),
        );
        start_at_zero(
            &checksum_only_rollouts,
            WORKLOAD_KIND_LABELS.map(|kind| KindLabels { kind }),
        );
        Self {
            registry: root,
            admissions,
            admission_duration,
            patches,
            refusals,
            http_rejections,
            requests_shed,
            connections_refused,
            certificate_reloads,
            rules_reloads,
            certificate_not_after,
            configmap_lookups,
            configmap_lookup_duration,
            certificate_store_rounds,
            certificate_issuances,
            order_churn,
            checksum_only_rollouts,
        }
    }

    /// OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Count a certificate reload attempt.
    pub fn certificate_reload(&self, ok: bool) {
        let outcome = RELOAD_OUTCOMES[usize::from(!ok)];
        self.certificate_reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Count a rules file reload attempt.
    pub fn rules_reload(&self, ok: bool) {
        let outcome = RELOAD_OUTCOMES[usize::from(!ok)];
        self.rules_reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Count a live ConfigMap read and its duration.
    pub fn configmap_lookup(&self, outcome: &'static str, elapsed: std::time::Duration) {
        self.configmap_lookups
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.configmap_lookup_duration
            .observe(elapsed.as_secs_f64());
    }

    /// Count a self-managed certificate round.
    pub fn certificate_store_round(&self, outcome: &'static str) {
        self.certificate_store_rounds
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Count a self-managed certificate issued by this replica.
    pub fn certificate_issued(&self, reason: &'static str) {
        self.certificate_issuances
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Count an UPDATE that changed only list order, once per rule it touched.
    pub fn count_order_churn(&self, kind: &'static str, rule: &'static str) {
        self.order_churn
            .get_or_create(&ChurnLabels { kind, rule })
            .inc();
    }

    /// Count a workload UPDATE whose pod template changed only in its checksum.
    pub fn checksum_only_rollout(&self, kind: &'static str) {
        self.checksum_only_rollouts
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Count a review answered 503 because the budget `limit` was spent.
    pub fn request_shed(&self, limit: &'static str) {
        self.requests_shed
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// Count a connection closed on accept because `port` had its most open.
    pub fn connection_refused(&self, port: &'static str) {
        self.connections_refused
            .get_or_create(&PortLabels { port })
            .inc();
    }

    /// Count a request the webhook port answered with an HTTP error.
    pub fn http_rejection(&self, status: axum::http::StatusCode) {
        self.http_rejections
            .get_or_create(&CodeLabels {
                code: code_label(status),
            })
            .inc();
    }
}

fn code_label(status: axum::http::StatusCode) -> &'static str {
    let code = status.as_str();
    ERROR_CODES
        .iter()
        .find(|&&known| known == code)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one sample line that starts with `series ` (name
    /// and labels exactly as exposed).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn exposition_names_and_buckets() {
        let metrics = Metrics::new();
        metrics
            .admissions
            .get_or_create(&AdmissionLabels {
                kind: "ConfigMap",
                operation: "CREATE",
                outcome: "patched",
            })
            .inc();
        metrics
            .admission_duration
            .get_or_create(&KindLabels { kind: "ConfigMap" })
            .observe(0.000_05);
        metrics.certificate_reload(false);
        metrics.certificate_not_after.set(1_900_000_000);
        metrics.configmap_lookup("not_found", std::time::Duration::from_micros(50));
        metrics.certificate_store_round("ok");
        metrics.certificate_issued("ca_expiring");
        metrics.request_shed("body_bytes");
        metrics.connection_refused("admin");
        metrics.http_rejection(axum::http::StatusCode::REQUEST_TIMEOUT);
        metrics.http_rejection(axum::http::StatusCode::IM_A_TEAPOT);
        let text = metrics.encode().expect("encode");
        for (series, value) in [
            (
                r#"vmcp_normalizer_admission_requests_total{kind="ConfigMap",operation="CREATE",outcome="patched"}"#,
                1.0,
            ),
            (
                r#"vmcp_normalizer_admission_duration_seconds_bucket{le="0.0001",kind="ConfigMap"}"#,
                1.0,
            ),
            (
                r#"vmcp_normalizer_certificate_reloads_total{outcome="failed"}"#,
                1.0,
            ),
            (
                r#"vmcp_normalizer_certificate_reloads_total{outcome="ok"}"#,
                0.0,
            ),
            (
                r#"vmcp_normalizer_configmap_lookups_total{outcome="not_found"}"#,
                1.0,
            ),
            (
                r#"vmcp_normalizer_configmap_lookup_duration_seconds_bucket{le="0.0001"}"#,
                1.0,
            ),
            (
                "vmcp_normalizer_certificate_not_after_timestamp_seconds",
                1_900_000_000.0,
            ),
            (
                r#"vmcp_normalizer_certificate_store_rounds_total{outcome="ok"}"#,
                1.0,
            ),
            (
                r#"vmcp_normalizer_certificate_issuances_total{reason="ca_expiring"}"#,
                1.0,
            ),
            (
                r#"vmcp_normalizer_requests_shed_total{limit="body_bytes"}"#,
                1.0,
            ),
            (
                r#"vmcp_normalizer_connections_refused_total{port="admin"}"#,
                1.0,
            ),
            (r#"vmcp_normalizer_http_rejections_total{code="408"}"#, 1.0),
            (
                r#"vmcp_normalizer_http_rejections_total{code="other"}"#,
                1.0,
            ),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn build_info_names_this_build() {
        let text = Metrics::new().encode().expect("encode");
        let series = format!(
            r#"vmcp_normalizer_build_info{{version="{}",revision="{}"}}"#,
            crate::version::VERSION,
            crate::version::REVISION
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{text}");
        assert!(!crate::version::REVISION.is_empty());
    }

    /// Every label value the code can count under is a series at zero
    /// before the first event, and nothing else was made up.
    #[test]
    fn every_known_label_starts_at_zero() {
        let text = Metrics::new().encode().expect("encode");
        let mut expected: Vec<String> = Vec::new();
        for labels in reachable_admission_labels() {
            expected.push(format!(
                r#"vmcp_normalizer_admission_requests_total{{kind="{}",operation="{}",outcome="{}"}}"#,
                labels.kind, labels.operation, labels.outcome
            ));
        }
        for kind in KIND_LABELS {
            expected.push(format!(
                r#"vmcp_normalizer_admission_duration_seconds_count{{kind="{kind}"}}"#
            ));
        }
        for kind in std::iter::once("ConfigMap").chain(WORKLOAD_KIND_LABELS) {
            expected.push(format!(r#"vmcp_normalizer_patches_total{{kind="{kind}"}}"#));
        }
        for reason in refusal_reasons() {
            expected.push(format!(
                r#"vmcp_normalizer_normalizations_refused_total{{reason="{reason}"}}"#
            ));
        }
        for code in ERROR_CODES {
            expected.push(format!(
                r#"vmcp_normalizer_http_rejections_total{{code="{code}"}}"#
            ));
        }
        for limit in ["in_flight", "body_bytes"] {
            expected.push(format!(
                r#"vmcp_normalizer_requests_shed_total{{limit="{limit}"}}"#
            ));
        }
        for port in ["webhook", "admin"] {
            expected.push(format!(
                r#"vmcp_normalizer_connections_refused_total{{port="{port}"}}"#
            ));
        }
        for outcome in ["ok", "failed"] {
            expected.push(format!(
                r#"vmcp_normalizer_certificate_reloads_total{{outcome="{outcome}"}}"#
            ));
            expected.push(format!(
                r#"vmcp_normalizer_rules_reloads_total{{outcome="{outcome}"}}"#
            ));
        }
        for outcome in [
            "ok",
            "not_found",
            "forbidden",
            "timeout",
            "unavailable",
            "rejected",
            "invalid",
        ] {
            expected.push(format!(
                r#"vmcp_normalizer_configmap_lookups_total{{outcome="{outcome}"}}"#
            ));
        }
        for outcome in SelfManagedError::round_outcomes() {
            expected.push(format!(
                r#"vmcp_normalizer_certificate_store_rounds_total{{outcome="{outcome}"}}"#
            ));
        }
        for reason in IssueReason::LABELS {
            expected.push(format!(
                r#"vmcp_normalizer_certificate_issuances_total{{reason="{reason}"}}"#
            ));
        }
        for labels in &ORDER_CHURN_LABELS {
            expected.push(format!(
                r#"vmcp_normalizer_order_churn_total{{kind="{}",rule="{}"}}"#,
                labels.kind, labels.rule
            ));
        }
        for kind in WORKLOAD_KIND_LABELS {
            expected.push(format!(
                r#"vmcp_normalizer_checksum_only_rollouts_total{{kind="{kind}"}}"#
            ));
        }
        for series in &expected {
            assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
        }
        // Counters only: every `_total` sample is one of those above.
        let counters = text
            .lines()
            .filter(|line| line.starts_with("vmcp_normalizer_") && line.contains("_total"))
            .count();
        assert_eq!(counters, expected.len() - KIND_LABELS.len(), "{text}");
    }

    #[test]
    fn refusal_reasons_are_distinct_and_cover_each_source() {
        let reasons = refusal_reasons();
        let mut unique = reasons.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), reasons.len(), "{reasons:?}");
        for reason in [
            "invalid_yaml",
            "malformed_deployment",
            "lookup_timeout",
            "lookup_not_configured",
            "too_large",
        ] {
            assert!(reasons.contains(&reason), "{reason}");
        }
    }

    #[test]
    fn order_churn_series_start_at_zero_and_count() {
        let metrics = Metrics::new();
        let text = metrics.encode().expect("encode");
        for line in [
            r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="toolhive-vmcp"} 0"#,
            r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="none"} 0"#,
            r#"vmcp_normalizer_order_churn_total{kind="Deployment",rule="none"} 0"#,
            r#"vmcp_normalizer_checksum_only_rollouts_total{kind="Deployment"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        metrics.count_order_churn("ConfigMap", "toolhive-vmcp");
        metrics.count_order_churn("ConfigMap", "toolhive-vmcp");
        metrics.checksum_only_rollout("Deployment");
        let text = metrics.encode().expect("encode");
        assert!(text.contains(
            r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="toolhive-vmcp"} 2"#
        ));
        assert!(
            text.contains(r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="none"} 0"#)
        );
        assert!(
            text.contains(r#"vmcp_normalizer_checksum_only_rollouts_total{kind="Deployment"} 1"#)
        );
    }
}

//! The webhook's Prometheus metrics: one [`Metrics`] value, shared by the
//! admission path, the certificate reloader and the admin endpoint.
//!
//! Every label value is a `&'static str` chosen by this crate, so a caller can
//! never blow up the series count with request data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

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
/// ConfigMaps have a built-in rule. Exported at zero from the start.
pub const ORDER_CHURN_LABELS: [ChurnLabels; 3] = [
    ChurnLabels {
        kind: "ConfigMap",
        rule: "toolhive-vmcp",
    },
    ChurnLabels {
        kind: "ConfigMap",
        rule: "none",
    },
    ChurnLabels {
        kind: "Deployment",
        rule: "none",
    },
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
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
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// All metrics of the process, registered under the `vmcp_normalizer_` prefix.
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
    /// Requests on the webhook port answered with an HTTP error, by status.
    pub http_rejections: Family<StatusLabels, Counter>,
    /// Reviews answered 503 at once because a budget was spent, by limit
    /// (`in_flight` or `body_bytes`).
    pub requests_shed: Family<LimitLabels, Counter>,
    /// Connections closed on accept because the port had its most open, by
    /// port (`webhook` or `admin`).
    pub connections_refused: Family<PortLabels, Counter>,
    /// Certificate reload attempts that found new files, by result (ok/failed).
    pub cert_reloads: Family<ResultLabels, Counter>,
    /// Not-after time of the certificate being served, as a Unix timestamp.
    pub cert_not_after: Gauge,
    /// Live ConfigMap reads for Deployment reviews, by outcome (`ok` or a
    /// `LookupError::metric_label`).
    pub configmap_lookups: Family<OutcomeLabels, Counter>,
    /// Time of each live ConfigMap read, whatever its outcome.
    pub configmap_lookup_duration: Histogram,
    /// Self-managed certificate rounds, by outcome (`ok` or the error's
    /// metric label).
    pub certificate_store_rounds: Family<OutcomeLabels, Counter>,
    /// Self-managed certificates this replica issued, by reason.
    pub certificates_issued: Family<ReasonLabels, Counter>,
    /// UPDATEs whose only change was the order of one or more lists, by kind
    /// and rule (`toolhive-vmcp` when the built-in normalizer reorders the
    /// list, `none` when the detector only warns); once per rule per UPDATE.
    pub order_churn: Family<ChurnLabels, Counter>,
    /// Deployment UPDATEs whose pod template changed only in its
    /// `runconfig-checksum` annotation, by kind.
    pub checksum_only_rollouts: Family<KindLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vmcp_normalizer");
        let admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by kind, operation and outcome",
            admissions.clone(),
        );
        let admission_duration: HistogramFamily<KindLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "admission_duration",
            "Time to decide and encode one admission review",
            Unit::Seconds,
            admission_duration.clone(),
        );
        let patches = Family::<KindLabels, Counter>::default();
        registry.register(
            "patches",
            "Admission responses that carried a JSON patch",
            patches.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "normalizations_refused",
            "vMCP objects left unchanged because a rewrite could not be proven safe",
            refusals.clone(),
        );
        let http_rejections = Family::<StatusLabels, Counter>::default();
        registry.register(
            "http_rejections",
            "Webhook requests answered with an HTTP error status",
            http_rejections.clone(),
        );
        let requests_shed = Family::<LimitLabels, Counter>::default();
        registry.register(
            "requests_shed",
            "Reviews answered 503 at once because the in-flight or body-bytes budget was spent",
            requests_shed.clone(),
        );
        let connections_refused = Family::<PortLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed on accept because the port had its most open",
            connections_refused.clone(),
        );
        let cert_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "cert_reloads",
            "Serving certificate reloads after the files changed, by result",
            cert_reloads.clone(),
        );
        let cert_not_after = Gauge::default();
        registry.register(
            "cert_not_after_timestamp_seconds",
            "Not-after time of the served certificate (Unix seconds)",
            cert_not_after.clone(),
        );
        let configmap_lookups = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "configmap_lookups",
            "Live ConfigMap reads for Deployment reviews, by outcome",
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
        registry.register(
            "certificate_store_rounds",
            "Self-managed certificate rounds (read, maybe issue, publish), by outcome",
            certificate_store_rounds.clone(),
        );
        let certificates_issued = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "certificates_issued",
            "Self-managed serving certificates issued by this replica, by reason",
            certificates_issued.clone(),
        );
        let order_churn = Family::<ChurnLabels, Counter>::default();
        registry.register(
            "order_churn",
            "Updates that changed only the order of lists, by kind and by the rule that reorders them (none: warned only)",
            order_churn.clone(),
        );
        for labels in &ORDER_CHURN_LABELS {
            drop(order_churn.get_or_create(labels));
        }
        let checksum_only_rollouts = Family::<KindLabels, Counter>::default();
        registry.register(
            "checksum_only_rollouts",
            "Deployment updates whose pod template changed only in the runconfig-checksum annotation",
            checksum_only_rollouts.clone(),
        );
        drop(checksum_only_rollouts.get_or_create(&KindLabels { kind: "Deployment" }));
        Self {
            registry,
            admissions,
            admission_duration,
            patches,
            refusals,
            http_rejections,
            requests_shed,
            connections_refused,
            cert_reloads,
            cert_not_after,
            configmap_lookups,
            configmap_lookup_duration,
            certificate_store_rounds,
            certificates_issued,
            order_churn,
            checksum_only_rollouts,
        }
    }

    /// The registry, for modules that add their own metrics at startup.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Count a certificate reload attempt.
    pub fn cert_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.cert_reloads
            .get_or_create(&ResultLabels { result })
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
        self.certificates_issued
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Count an UPDATE that changed only list order, once per rule it touched.
    pub fn count_order_churn(&self, kind: &'static str, rule: &'static str) {
        self.order_churn
            .get_or_create(&ChurnLabels { kind, rule })
            .inc();
    }

    /// Count a Deployment UPDATE whose pod template changed only in its checksum.
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
            .get_or_create(&StatusLabels {
                status: status_label(status),
            })
            .inc();
    }
}

fn status_label(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "400",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        metrics.cert_reload(false);
        metrics.cert_not_after.set(1_900_000_000);
        metrics.configmap_lookup("not_found", std::time::Duration::from_micros(50));
        metrics.certificate_store_round("ok");
        metrics.certificate_issued("ca_expiring");
        metrics.request_shed("body_bytes");
        metrics.connection_refused("admin");
        let text = metrics.encode().expect("encode");
        assert!(text.contains(
            r#"vmcp_normalizer_admission_requests_total{kind="ConfigMap",operation="CREATE",outcome="patched"} 1"#
        ), "{text}");
        assert!(
            text.contains(
                r#"vmcp_normalizer_admission_duration_seconds_bucket{le="0.0001",kind="ConfigMap"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"vmcp_normalizer_cert_reloads_total{result="failed"} 1"#));
        assert!(text.contains(r#"vmcp_normalizer_configmap_lookups_total{outcome="not_found"} 1"#));
        assert!(text.contains(
            r#"vmcp_normalizer_configmap_lookup_duration_seconds_bucket{le="0.0001"} 1"#
        ));
        assert!(text.contains("vmcp_normalizer_cert_not_after_timestamp_seconds 1900000000"));
        assert!(text.contains(r#"vmcp_normalizer_certificate_store_rounds_total{outcome="ok"} 1"#));
        assert!(
            text.contains(r#"vmcp_normalizer_certificates_issued_total{reason="ca_expiring"} 1"#)
        );
        assert!(text.contains(r#"vmcp_normalizer_requests_shed_total{limit="body_bytes"} 1"#));
        assert!(text.contains(r#"vmcp_normalizer_connections_refused_total{port="admin"} 1"#));
        assert!(text.ends_with("# EOF\n"));
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

//! The chart's monitoring: the PrometheusRule and the Grafana dashboard, as
//! `helm template` renders them. Every metric they query must be one the
//! webhook exports (taken from its own /metrics text) or one of the few the
//! API server and kube-state-metrics export; promtool checks the rules and
//! runs each alert against series that must fire it and series that must not.
//!
//! Needs Helm (`HELM`, `.tools/bin/helm`, or `helm` on PATH) and promtool
//! (`PROMTOOL`, `.tools/bin/promtool` from `scripts/install-promtool.sh`, or
//! `promtool` on PATH); `scripts/test.sh` provides both. Without them these
//! tests fail: they are never skipped silently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

const RELEASE: &str = "rel";
const NAMESPACE: &str = "vmcp-system";
const FULLNAME: &str = "rel-vmcp-normalizer";

/// Every alert the rule has, by name.
const ALERTS: [&str; 7] = [
    "VmcpNormalizerFailingOpen",
    "VmcpNormalizerRejected",
    "VmcpNormalizerDown",
    "VmcpNormalizerReviewsMissing",
    "VmcpNormalizerCertificateExpiring",
    "VmcpNormalizerRefusing",
    "VmcpNormalizerRolloutLoop",
];

/// Metrics the rules and the dashboard may use that another component
/// exports: the API server, kube-state-metrics (default metrics only, no
/// label allowlist), and Prometheus itself.
const EXTERNAL_METRICS: [&str; 7] = [
    "apiserver_admission_webhook_fail_open_count",
    "apiserver_admission_webhook_rejection_count",
    "apiserver_admission_webhook_admission_duration_seconds_bucket",
    "kube_configmap_info",
    "kube_configmap_metadata_resource_version",
    "kube_deployment_metadata_generation",
    "up",
];

// ---------------------------------------------------------------- tools

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn runs(tool: &Path, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tool from `env`, else `.tools/bin/<name>`, else `<name>` on PATH.
fn find_tool(env: &str, name: &str, check: &str, install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        assert!(runs(&path, check), "{env}={} does not run", path.display());
        return path;
    }
    let local = manifest_dir().join(".tools").join("bin").join(name);
    if runs(&local, check) {
        return local;
    }
    let on_path = PathBuf::from(name);
    if runs(&on_path, check) {
        return on_path;
    }
    panic!("{name} not found: run `{install}`, or set {env}=/path/to/{name}");
}

fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| find_tool("HELM", "helm", "version", "scripts/install-helm.sh"))
}

fn promtool() -> &'static Path {
    static PROMTOOL: OnceLock<PathBuf> = OnceLock::new();
    PROMTOOL.get_or_init(|| {
        find_tool(
            "PROMTOOL",
            "promtool",
            "--version",
            "scripts/install-promtool.sh",
        )
    })
}

/// `helm template` with `--set` arguments: the manifests as JSON values.
fn render(sets: &[&str]) -> Vec<Value> {
    let chart = manifest_dir().join("charts").join("vmcp-normalizer");
    let mut command = Command::new(helm());
    command
        .arg("template")
        .arg(RELEASE)
        .arg(&chart)
        .args(["--namespace", NAMESPACE]);
    for set in sets {
        command.args(["--set", set]);
    }
    let out = command.output().expect("run helm");
    assert!(
        out.status.success(),
        "helm template {sets:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn rule_doc(sets: &[&str]) -> Value {
    let mut all = vec!["prometheusRule.enabled=true"];
    all.extend_from_slice(sets);
    let docs = render(&all);
    let rules = find(&docs, "PrometheusRule");
    assert_eq!(rules.len(), 1, "{rules:?}");
    rules[0].clone()
}

fn alerts(rule: &Value) -> Vec<Value> {
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").clone())
        .collect()
}

fn alert<'a>(alerts: &'a [Value], name: &str) -> &'a Value {
    alerts
        .iter()
        .find(|a| a["alert"] == name)
        .unwrap_or_else(|| panic!("no alert {name}"))
}

fn expr(alert: &Value) -> &str {
    alert["expr"].as_str().expect("expr is a string")
}

fn dashboard(sets: &[&str]) -> (Value, Value) {
    let mut all = vec!["grafanaDashboard.enabled=true"];
    all.extend_from_slice(sets);
    let docs = render(&all);
    let configmaps = find(&docs, "ConfigMap");
    assert_eq!(configmaps.len(), 1, "{configmaps:?}");
    let configmap = configmaps[0].clone();
    let json = configmap["data"]["vmcp-normalizer.json"]
        .as_str()
        .expect("the dashboard JSON");
    let dashboard: Value = serde_json::from_str(json).expect("the dashboard is JSON");
    (configmap, dashboard)
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect()
}

/// Each word of an expression (string literals and range durations taken
/// out) with the character after it.
fn words(expr: &str) -> Vec<(String, Option<char>)> {
    let bare = strip_strings_and_ranges(expr);
    let mut words = Vec::new();
    let mut word = String::new();
    for c in bare.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else if !word.is_empty() {
            words.push((std::mem::take(&mut word), Some(c)));
        }
    }
    words
}

/// The metric names an expression selects: every word directly followed by
/// `{`. The rules and the dashboard write every selector with braces, which
/// `every_selector_has_braces` checks, so none is missed.
fn metric_names(expr: &str) -> BTreeSet<String> {
    words(expr)
        .into_iter()
        .filter(|(_, next)| *next == Some('{'))
        .map(|(word, _)| word)
        .collect()
}

fn strip_strings_and_ranges(expr: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut in_range = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            '[' if !in_string => in_range = true,
            ']' if !in_string => in_range = false,
            _ if in_string || in_range => {}
            c => out.push(c),
        }
    }
    out
}

/// The sample names of the webhook's own /metrics text: what its families
/// are called on the wire (`_total`, `_bucket`, units), process metrics too.
fn exported_metric_names() -> BTreeSet<String> {
    let text = vmcp_normalizer::metrics::Metrics::new()
        .encode()
        .expect("encode");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            line[..end].to_owned()
        })
        .collect()
}

fn assert_metrics_exist(exprs: &[String], what: &str) {
    let exported = exported_metric_names();
    for expr in exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{what}: no metric in {expr}");
        for name in names {
            let ours = name.starts_with("vmcp_normalizer_") || name.starts_with("process_");
            let known = if ours {
                exported.contains(&name)
            } else {
                EXTERNAL_METRICS.contains(&name.as_str())
            };
            assert!(
                known,
                "{what} uses {name}, which is not exported{}: {expr}",
                if ours {
                    " by the webhook"
                } else {
                    " by the apiserver, kube-state-metrics or Prometheus as listed"
                }
            );
        }
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn helm_lint_strict_passes_with_monitoring_on() {
    let chart = manifest_dir().join("charts").join("vmcp-normalizer");
    let out = Command::new(helm())
        .args(["lint", "--strict"])
        .arg(&chart)
        .args([
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "grafanaDashboard.enabled=true",
            "--set",
            "serviceMonitor.enabled=true",
        ])
        .output()
        .expect("run helm lint");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn monitoring_is_off_by_default() {
    let docs = render(&[]);
    assert!(find(&docs, "PrometheusRule").is_empty());
    assert!(find(&docs, "ConfigMap").is_empty());
}

#[test]
fn every_alert_says_what_it_means_and_where_its_runbook_is() {
    let rule = rule_doc(&["prometheusRule.labels.release=prom"]);
    assert_eq!(rule["metadata"]["namespace"], NAMESPACE);
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
    let alerts = alerts(&rule);
    let names: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALERTS);
    let readme =
        std::fs::read_to_string(manifest_dir().join("charts/vmcp-normalizer/README.md")).unwrap();
    for alert in &alerts {
        let name = alert["alert"].as_str().unwrap();
        for key in ["summary", "description"] {
            let text = alert["annotations"][key].as_str().unwrap_or("");
            assert!(text.len() > 20, "{name}: {key} is {text:?}");
        }
        let runbook = alert["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = name.to_lowercase();
        assert!(
            runbook.ends_with(&format!("README.md#{anchor}")),
            "{runbook}"
        );
        assert!(
            readme.contains(&format!("\n### {name}\n")),
            "the chart README has no runbook section `### {name}`"
        );
        assert!(
            alert["for"].as_str().is_some_and(|f| f.ends_with('m')),
            "{alert}"
        );
        assert!(alert["labels"]["severity"].is_string(), "{alert}");
    }
}

#[test]
fn alerts_are_configurable_one_by_one() {
    let alerts = alerts(&rule_doc(&[
        "prometheusRule.alerts.rejected.enabled=false",
        "prometheusRule.alerts.certificateExpiring.days=14",
        "prometheusRule.alerts.certificateExpiring.for=1h",
        "prometheusRule.alerts.rolloutLoop.generations=9",
        "prometheusRule.alerts.refusing.severity=info",
        "prometheusRule.alertLabels.team=platform",
        "prometheusRule.selector=job=\"custom\"",
    ]));
    assert!(
        alerts
            .iter()
            .all(|a| a["alert"] != "VmcpNormalizerRejected")
    );
    let expiring = alert(&alerts, "VmcpNormalizerCertificateExpiring");
    assert!(expr(expiring).ends_with("< 1209600"), "{}", expr(expiring));
    assert!(
        expr(expiring).contains(r#"{job="custom"}"#),
        "{}",
        expr(expiring)
    );
    assert_eq!(expiring["for"], "1h");
    assert!(expr(alert(&alerts, "VmcpNormalizerRolloutLoop")).contains("> 9\n"));
    assert_eq!(
        alert(&alerts, "VmcpNormalizerRefusing")["labels"]["severity"],
        "info"
    );
    for alert in &alerts {
        assert_eq!(alert["labels"]["team"], "platform", "{alert}");
    }
}

/// The apiserver labels its webhook metrics with the webhook's name: the
/// rule must match exactly the names the chart gives its webhooks.
#[test]
fn fail_open_alerts_match_exactly_this_charts_webhook_names() {
    for (sets, enabled) in [
        (vec![], vec!["configmaps", "deployments"]),
        (
            vec!["webhook.deployments.enabled=false"],
            vec!["configmaps"],
        ),
        (
            vec!["webhook.configMaps.enabled=false"],
            vec!["deployments"],
        ),
    ] {
        let mut all = vec!["prometheusRule.enabled=true"];
        all.extend(sets.iter().copied());
        let docs = render(&all);
        let config = find(&docs, "MutatingWebhookConfiguration")[0];
        let names: Vec<&str> = config["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), enabled.len(), "{sets:?}");
        for (name, prefix) in names.iter().zip(&enabled) {
            assert_eq!(*name, format!("{prefix}.{FULLNAME}.{NAMESPACE}.svc"));
        }
        let regex = names.join("|").replace('.', "[.]");
        let alerts = alerts(find(&docs, "PrometheusRule")[0]);
        for name in ["VmcpNormalizerFailingOpen", "VmcpNormalizerRejected"] {
            let expr = expr(alert(&alerts, name));
            assert!(
                expr.contains(&format!(r#"{{name=~"{regex}"}}"#)),
                "{sets:?}: {expr}"
            );
        }
        // No ConfigMap webhook, no ConfigMap reviews to miss.
        let missing = alerts
            .iter()
            .any(|a| a["alert"] == "VmcpNormalizerReviewsMissing");
        assert_eq!(missing, enabled.contains(&"configmaps"), "{sets:?}");
    }
}

#[test]
fn rules_use_only_metrics_that_are_exported() {
    let alerts = alerts(&rule_doc(&[]));
    let exprs: Vec<String> = alerts.iter().map(|a| expr(a).to_owned()).collect();
    assert_metrics_exist(&exprs, "the PrometheusRule");
    // The webhook's own selector: the ServiceMonitor's job, this namespace.
    let own = format!(r#"job="{FULLNAME}",namespace="{NAMESPACE}""#);
    for name in [
        "VmcpNormalizerDown",
        "VmcpNormalizerCertificateExpiring",
        "VmcpNormalizerRefusing",
        "VmcpNormalizerReviewsMissing",
    ] {
        assert!(expr(alert(&alerts, name)).contains(&own), "{name}");
    }
}

#[test]
fn every_selector_has_braces() {
    let alerts = alerts(&rule_doc(&[]));
    let (_, dashboard) = dashboard(&[]);
    let mut exprs: Vec<String> = alerts.iter().map(|a| expr(a).to_owned()).collect();
    exprs.extend(dashboard_exprs(&dashboard));
    for expr in exprs {
        for (word, next) in words(&expr) {
            if next == Some('{') || next == Some('(') {
                continue; // a selector, or a function call
            }
            // Anything else is a label name or a keyword, never a metric.
            let metric_like = ["vmcp_normalizer_", "process_", "apiserver_", "kube_"]
                .iter()
                .any(|prefix| word.starts_with(prefix))
                || word == "up";
            assert!(!metric_like, "{word} without braces in {expr}");
        }
    }
}

/// The checker catches what it is for: a name the webhook does not export.
#[test]
fn the_metric_check_rejects_an_unknown_name() {
    let result = std::panic::catch_unwind(|| {
        assert_metrics_exist(
            &[r#"rate(vmcp_normalizer_cert_reloads_total{job="x"}[5m])"#.to_owned()],
            "a test",
        )
    });
    assert!(result.is_err(), "an old metric name was accepted");
    assert_eq!(
        metric_names(r#"sum by (le) (rate(a_bucket{x="y{z}"}[5m])) and on (n) b{}"#),
        BTreeSet::from(["a_bucket".to_owned(), "b".to_owned()])
    );
    let bare: Vec<String> = words("rate(up[5m]) > 0")
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    assert_eq!(bare, ["rate", "up", "0"]);
}

#[test]
fn dashboard_is_json_for_the_sidecar_and_queries_exported_metrics() {
    let (configmap, dashboard) = dashboard(&[
        "grafanaDashboard.namespace=monitoring",
        "grafanaDashboard.annotations.grafana_folder=Kubernetes",
    ]);
    assert_eq!(configmap["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(configmap["metadata"]["namespace"], "monitoring");
    assert_eq!(
        configmap["metadata"]["annotations"]["grafana_folder"],
        "Kubernetes"
    );
    assert_eq!(dashboard["uid"], "vmcp-normalizer");
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for title in [
        "Admission reviews by outcome",
        "Review latency (webhook)",
        "Refusals by reason",
        "Shed requests and HTTP errors",
        "Certificate expires in",
    ] {
        assert!(titles.contains(&title), "no panel {title}: {titles:?}");
    }
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 15, "{exprs:?}");
    assert_metrics_exist(&exprs, "the dashboard");
    // Grafana's legends went through Helm untouched.
    let json = configmap["data"]["vmcp-normalizer.json"].as_str().unwrap();
    assert!(json.contains(r#""legendFormat": "{{outcome}}""#));
    let (default_place, _) = self::dashboard(&[]);
    assert_eq!(default_place["metadata"]["namespace"], NAMESPACE);
}

// ---------------------------------------------------------------- promtool

/// The rendered rule's groups as a Prometheus rule file, in `dir`.
fn write_rule_file(dir: &Path) -> PathBuf {
    let rule = rule_doc(&[]);
    let path = dir.join("rules.json");
    let groups = serde_json::json!({ "groups": rule["spec"]["groups"] });
    std::fs::write(&path, serde_json::to_vec_pretty(&groups).unwrap()).unwrap();
    path
}

#[test]
fn promtool_accepts_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_rule_file(dir.path());
    let out = Command::new(promtool())
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
        "{text}"
    );
}

/// Each alert against series that must fire it and series that must not,
/// in promtool's rule unit tests: the firing alerts are read back from the
/// ALERTS series after a simulated hour or so.
const ALERT_TESTS: &str = r#"
rule_files: [rules.json]
evaluation_interval: 1m
tests:
  # Failing open at this chart's ConfigMap webhook, not at another one.
  - interval: 1m
    input_series:
      - series: 'apiserver_admission_webhook_fail_open_count{name="configmaps.rel-vmcp-normalizer.vmcp-system.svc"}'
        values: '0+1x30'
      - series: 'apiserver_admission_webhook_fail_open_count{name="configmaps.other.vmcp-system.svc"}'
        values: '0+1x30'
      - series: 'apiserver_admission_webhook_rejection_count{name="deployments.rel-vmcp-normalizer.vmcp-system.svc",error_type="calling_webhook_error"}'
        values: '0x30'
    promql_expr_test:
      - expr: count by (alertname, name) (ALERTS{alertstate="firing"})
        eval_time: 20m
        exp_samples:
          - labels: '{alertname="VmcpNormalizerFailingOpen",name="configmaps.rel-vmcp-normalizer.vmcp-system.svc"}'
            value: 1
          - labels: '{alertname="VmcpNormalizerDown"}'
            value: 1
  # A healthy webhook: scraped, reviewing, certificate 60 days away.
  - interval: 1m
    input_series:
      - series: 'up{job="rel-vmcp-normalizer",namespace="vmcp-system",pod="a"}'
        values: '1x90'
      - series: 'vmcp_normalizer_certificate_not_after_timestamp_seconds{job="rel-vmcp-normalizer",namespace="vmcp-system",pod="a"}'
        values: '5184000x90'
      - series: 'vmcp_normalizer_admission_requests_total{job="rel-vmcp-normalizer",namespace="vmcp-system",kind="ConfigMap",operation="UPDATE",outcome="patched"}'
        values: '0+1x90'
      - series: 'vmcp_normalizer_normalizations_refused_total{job="rel-vmcp-normalizer",namespace="vmcp-system",reason="unsupported"}'
        values: '0x90'
      - series: 'kube_configmap_metadata_resource_version{namespace="team",configmap="demo-vmcp-config"}'
        values: '100+1x90'
      - series: 'kube_configmap_info{namespace="team",configmap="demo-vmcp-config"}'
        values: '1x90'
      - series: 'kube_deployment_metadata_generation{namespace="team",deployment="demo"}'
        values: '1x90'
    promql_expr_test:
      - expr: count by (alertname) (ALERTS{alertstate="firing"})
        eval_time: 80m
        exp_samples: []
  # Broken: certificate 3 days away, refusals all along, a vMCP ConfigMap
  # written with no review, its Deployment's spec changing every 5 minutes
  # (and an unrelated Deployment doing the same, which must not alert).
  - interval: 1m
    input_series:
      - series: 'up{job="rel-vmcp-normalizer",namespace="vmcp-system",pod="a"}'
        values: '1x90'
      - series: 'vmcp_normalizer_certificate_not_after_timestamp_seconds{job="rel-vmcp-normalizer",namespace="vmcp-system",pod="a"}'
        values: '259200x90'
      - series: 'vmcp_normalizer_admission_requests_total{job="rel-vmcp-normalizer",namespace="vmcp-system",kind="ConfigMap",operation="UPDATE",outcome="patched"}'
        values: '0x90'
      - series: 'vmcp_normalizer_normalizations_refused_total{job="rel-vmcp-normalizer",namespace="vmcp-system",reason="lookup_forbidden"}'
        values: '0+1x90'
      - series: 'kube_configmap_metadata_resource_version{namespace="team",configmap="demo-vmcp-config"}'
        values: '100+1x90'
      - series: 'kube_configmap_info{namespace="team",configmap="demo-vmcp-config"}'
        values: '1x90'
      - series: 'kube_deployment_metadata_generation{namespace="team",deployment="demo"}'
        values: '1+0.2x90'
      - series: 'kube_deployment_metadata_generation{namespace="team",deployment="unrelated"}'
        values: '1+0.2x90'
    promql_expr_test:
      - expr: count by (alertname, reason, deployment) (ALERTS{alertstate="firing"})
        eval_time: 80m
        exp_samples:
          - labels: '{alertname="VmcpNormalizerCertificateExpiring"}'
            value: 1
          - labels: '{alertname="VmcpNormalizerRefusing",reason="lookup_forbidden"}'
            value: 1
          - labels: '{alertname="VmcpNormalizerReviewsMissing"}'
            value: 1
          - labels: '{alertname="VmcpNormalizerRolloutLoop",deployment="demo"}'
            value: 1
"#;

#[test]
fn promtool_fires_each_alert_on_its_scenario_only() {
    let dir = tempfile::tempdir().unwrap();
    write_rule_file(dir.path());
    let tests = dir.path().join("alerts.test.yaml");
    std::fs::write(&tests, ALERT_TESTS).unwrap();
    let out = Command::new(promtool())
        .args(["test", "rules"])
        .arg(&tests)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

//! Safety properties of the Helm chart in `charts/vmcp-normalizer`, checked on
//! the manifests `helm template` renders (no cluster needed).
//!
//! Helm is looked up in this order: the `HELM` environment variable,
//! `.tools/bin/helm` (installed by `scripts/install-helm.sh`), `helm` on PATH.
//! Without Helm these tests fail: they are never skipped silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

const RELEASE: &str = "rel";
const NAMESPACE: &str = "vmcp-system";
const FULLNAME: &str = "rel-vmcp-normalizer";
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n";

// ---------------------------------------------------------------- helpers

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    manifest_dir().join("charts").join("vmcp-normalizer")
}

fn runs(helm: &Path) -> bool {
    Command::new(helm)
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Some(path) = std::env::var_os("HELM") {
            let path = PathBuf::from(path);
            assert!(
                runs(&path),
                "HELM={} does not run `helm version`",
                path.display()
            );
            return path;
        }
        let local = manifest_dir().join(".tools").join("bin").join("helm");
        if runs(&local) {
            return local;
        }
        let on_path = PathBuf::from("helm");
        if runs(&on_path) {
            return on_path;
        }
        panic!(
            "Helm not found: run `scripts/install-helm.sh` (installs .tools/bin/helm), \
             or set HELM=/path/to/helm"
        );
    })
}

fn run_helm(args: &[&str]) -> Output {
    Command::new(helm())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm {args:?}: {e}"))
}

fn template_args<'a>(namespace: &'a str, sets: &[&'a str]) -> Vec<String> {
    let chart = chart_dir().to_string_lossy().into_owned();
    // What `helm install` applies: the `helm test` hooks are checked apart
    // (see "the helm test hook" below).
    let mut args = vec![
        "template".to_owned(),
        RELEASE.to_owned(),
        chart,
        "--namespace".to_owned(),
        namespace.to_owned(),
        "--skip-tests".to_owned(),
    ];
    for set in sets {
        args.push("--set".to_owned());
        args.push((*set).to_owned());
    }
    args
}

/// `helm template` in `namespace` with `--set` arguments; the rendered text.
fn render_text_in(namespace: &str, sets: &[&str]) -> String {
    let args = template_args(namespace, sets);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    assert!(
        out.status.success(),
        "helm template {sets:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm output is UTF-8")
}

fn render_text(sets: &[&str]) -> String {
    render_text_in(NAMESPACE, sets)
}

fn parse_docs(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("rendered manifest is valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Render with `--set` arguments and return the manifests as JSON values.
fn render(sets: &[&str]) -> Vec<Value> {
    parse_docs(&render_text(sets))
}

fn render_in(namespace: &str, sets: &[&str]) -> Vec<Value> {
    parse_docs(&render_text_in(namespace, sets))
}

/// `helm template` that must fail; returns its stderr.
fn render_err(sets: &[&str]) -> String {
    let args = template_args(NAMESPACE, sets);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    assert!(
        !out.status.success(),
        "helm template {sets:?} should have failed but rendered:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `helm template` with raw extra arguments (e.g. `--set-string`,
/// `--skip-schema-validation`) that must fail; returns its stderr.
fn render_err_raw(extra: &[&str]) -> String {
    let mut args = template_args(NAMESPACE, &[]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    assert!(
        !out.status.success(),
        "helm template {extra:?} should have failed but rendered:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `helm template` with raw extra arguments that must succeed; the manifests.
fn render_raw(extra: &[&str]) -> Vec<Value> {
    let mut args = template_args(NAMESPACE, &[]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    assert!(
        out.status.success(),
        "helm template {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_docs(&String::from_utf8(out.stdout).expect("helm output is UTF-8"))
}

fn kinds(docs: &[Value]) -> Vec<&str> {
    docs.iter().map(|d| d["kind"].as_str().unwrap()).collect()
}

fn all_of<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = all_of(docs, kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}, got {found:?}");
    found[0]
}

fn webhook_config(docs: &[Value]) -> &Value {
    one(docs, "MutatingWebhookConfiguration")
}

fn webhooks(docs: &[Value]) -> &Vec<Value> {
    webhook_config(docs)["webhooks"]
        .as_array()
        .expect("webhooks is a list")
}

fn webhook<'a>(docs: &'a [Value], prefix: &str) -> &'a Value {
    let name = format!("{prefix}.{FULLNAME}.{NAMESPACE}.svc");
    webhooks(docs)
        .iter()
        .find(|w| w["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no webhook named {name}"))
}

fn pod_spec(docs: &[Value]) -> &Value {
    &one(docs, "Deployment")["spec"]["template"]["spec"]
}

fn container(docs: &[Value]) -> &Value {
    let containers = pod_spec(docs)["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn args(docs: &[Value]) -> Vec<&str> {
    container(docs)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// Every (apiGroups, resources, resourceNames, verbs) rule of every Role and
/// ClusterRole, with the kind of its owner, sorted.
fn rbac_rules(docs: &[Value]) -> Vec<(String, Value)> {
    let mut rules = Vec::new();
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        for rule in role["rules"].as_array().unwrap() {
            rules.push((role["kind"].as_str().unwrap().to_owned(), rule.clone()));
        }
    }
    rules.sort_by_key(|(k, r)| format!("{k}{r}"));
    rules
}

fn ca_bundle_b64() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(CA_PEM)
}

fn existing_secret_sets(ca: &str) -> Vec<String> {
    vec![
        "certificates.mode=existing-secret".to_owned(),
        "certificates.existingSecret=my-tls".to_owned(),
        format!("certificates.caBundle={ca}"),
    ]
}

fn render_existing_secret() -> Vec<Value> {
    let sets = existing_secret_sets(&ca_bundle_b64());
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    render(&sets)
}

const CERT_MANAGER: &[&str] = &["certificates.mode=cert-manager"];

// ------------------------------------------------------------- lint, renders

#[test]
fn helm_lint_passes_also_strict() {
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    let ca = format!("certificates.caBundle={}", ca_bundle_b64());
    let value_sets: Vec<Vec<&str>> = vec![
        vec![],
        vec!["certificates.mode=cert-manager"],
        vec![
            "certificates.mode=existing-secret",
            "certificates.existingSecret=my-tls",
            &ca,
        ],
    ];
    for sets in &value_sets {
        for strict in [false, true] {
            let mut args = vec!["lint", chart, "--namespace", NAMESPACE];
            if strict {
                args.push("--strict");
            }
            for s in sets {
                args.extend(["--set", s]);
            }
            let out = run_helm(&args);
            assert!(
                out.status.success(),
                "helm {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn renders_every_mode_and_main_value_combination() {
    let ca = format!("certificates.caBundle={}", ca_bundle_b64());
    let combos: Vec<Vec<&str>> = vec![
        vec![],
        vec!["certificates.mode=self-managed"],
        vec!["certificates.mode=cert-manager"],
        vec![
            "certificates.mode=cert-manager",
            "certificates.certManager.issuerRef.name=corp-ca",
            "certificates.certManager.issuerRef.kind=ClusterIssuer",
        ],
        vec![
            "certificates.mode=existing-secret",
            "certificates.existingSecret=my-tls",
            &ca,
        ],
        vec!["webhook.failurePolicy=Fail"],
        vec!["webhook.timeoutSeconds=10"],
        vec!["replicas=1"],
        vec!["replicas=3"],
        vec!["networkPolicy.enabled=true", "serviceMonitor.enabled=true"],
        vec!["webhook.excludedNamespaces={team-a,team-b}"],
        vec![
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        vec!["webhook.deployments.enabled=false"],
        vec!["webhook.configMaps.enabled=false"],
        vec![
            "logFormat=text",
            "priorityClassName=system-cluster-critical",
        ],
        vec!["preStopSleepSeconds=0"],
    ];
    for sets in &combos {
        let docs = render(sets);
        let kinds = kinds(&docs);
        for kind in [
            "MutatingWebhookConfiguration",
            "Deployment",
            "Service",
            "ServiceAccount",
        ] {
            assert!(kinds.contains(&kind), "{sets:?}: no {kind} in {kinds:?}");
        }
    }
}

/// The oldest Kubernetes minor the chart supports: the preStop `sleep` action
/// (on by default from 1.30, beta) and matchConditions (GA in 1.30) set it.
const KUBE_FLOOR_MINOR: u32 = 30;
/// The newest minor the chart is rendered against.
const KUBE_NEWEST_MINOR: u32 = 36;

#[test]
fn kube_version_floor_is_stated_and_every_supported_minor_renders() {
    let chart_yaml = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    assert!(
        chart_yaml.contains(&format!("kubeVersion: \">=1.{KUBE_FLOOR_MINOR}.0-0\"")),
        "Chart.yaml kubeVersion is not >=1.{KUBE_FLOOR_MINOR}.0-0"
    );
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    // With every feature that depends on the version switched on.
    let features = [
        "--set",
        "webhook.matchConditions[0].name=not-dry-run",
        "--set",
        "webhook.matchConditions[0].expression=!request.dryRun",
        "--set",
        "preStopSleepSeconds=5",
    ];
    for minor in KUBE_FLOOR_MINOR..=KUBE_NEWEST_MINOR {
        // Patch 0 and a provider-style pre-release suffix (EKS, GKE).
        for version in [format!("1.{minor}.0"), format!("v1.{minor}.3-eks-1234")] {
            let mut args = vec!["template", RELEASE, chart, "--kube-version", &version];
            args.extend(features);
            let out = run_helm(&args);
            assert!(
                out.status.success(),
                "{version}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let docs = parse_docs(&String::from_utf8_lossy(&out.stdout));
            for hook in webhooks(&docs) {
                assert_eq!(
                    hook["matchConditions"][0]["name"], "not-dry-run",
                    "{version}"
                );
            }
        }
    }
    let below = format!("1.{}.9", KUBE_FLOOR_MINOR - 1);
    let old = run_helm(&["template", RELEASE, chart, "--kube-version", &below]);
    assert!(!old.status.success(), "{below} was not refused");
    let err = String::from_utf8_lossy(&old.stderr);
    assert!(
        err.contains(&format!(">=1.{KUBE_FLOOR_MINOR}.0-0")) && err.contains(&below),
        "the refusal names neither the floor nor the version: {err}"
    );
}

#[test]
fn no_helm_hooks_so_uninstall_removes_everything() {
    for sets in [&[][..], CERT_MANAGER] {
        for doc in render(sets) {
            let annotations = &doc["metadata"]["annotations"];
            if let Some(map) = annotations.as_object() {
                assert!(
                    !map.keys().any(|k| k.starts_with("helm.sh/")),
                    "hook/resource-policy annotation on {}: {map:?}",
                    doc["kind"]
                );
            }
        }
    }
}

#[test]
fn namespaced_resources_live_in_the_release_namespace() {
    let cluster_scoped = [
        "MutatingWebhookConfiguration",
        "ClusterRole",
        "ClusterRoleBinding",
    ];
    let docs = render(&["networkPolicy.enabled=true", "serviceMonitor.enabled=true"]);
    for doc in docs.iter().chain(render(CERT_MANAGER).iter()) {
        let kind = doc["kind"].as_str().unwrap();
        if cluster_scoped.contains(&kind) {
            assert!(doc["metadata"]["namespace"].is_null(), "{kind} namespaced");
        } else {
            assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{kind}");
        }
    }
}

// ---------------------------------------------------------- webhook config

#[test]
fn webhook_safe_defaults() {
    let docs = render(&[]);
    let hooks = webhooks(&docs);
    assert_eq!(hooks.len(), 2);
    assert_eq!(webhook_config(&docs)["metadata"]["name"], FULLNAME);
    for hook in hooks {
        assert_eq!(hook["failurePolicy"], "Ignore", "{hook}");
        assert_eq!(hook["sideEffects"], "None", "{hook}");
        assert_eq!(hook["timeoutSeconds"], 3, "{hook}");
        assert_eq!(hook["reinvocationPolicy"], "IfNeeded", "{hook}");
        assert_eq!(hook["matchPolicy"], "Equivalent", "{hook}");
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]), "{hook}");
    }
}

#[test]
fn failure_policy_and_timeout_are_configurable() {
    let docs = render(&["webhook.failurePolicy=Fail", "webhook.timeoutSeconds=7"]);
    for hook in webhooks(&docs) {
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 7);
    }
    for t in ["1", "30"] {
        let set = format!("webhook.timeoutSeconds={t}");
        let docs = render(&[&set]);
        assert_eq!(
            webhooks(&docs)[0]["timeoutSeconds"],
            t.parse::<u64>().unwrap()
        );
    }
}

/// The server's options from the rendered container's arguments, parsed by
/// the binary's own command line.
fn server_options(docs: &[Value]) -> vmcp_normalizer::server::ServerOptions {
    use clap::Parser as _;
    use vmcp_normalizer::cli::{Cli, Command};
    let argv = std::iter::once("vmcp-normalizer").chain(args(docs));
    let cli = Cli::try_parse_from(argv).expect("the server accepts the chart's arguments");
    match cli.command {
        Command::Serve(serve) => serve.server_options(),
        other => panic!("not serve: {other:?}"),
    }
}

#[test]
fn limits_reach_the_server() {
    use std::time::Duration;
    let mut sets = existing_secret_sets(&ca_bundle_b64());
    let defaults = {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        render(&sets)
    };
    let options = server_options(&defaults);
    // The server works on nothing the API server has stopped waiting for.
    assert_eq!(options.request_timeout, Duration::from_secs(3));
    assert_eq!(options.max_connections, 1000);
    assert_eq!(options.max_in_flight, 64);
    assert_eq!(options.max_body_buffer, 16 << 20);
    assert_eq!(options.idle_timeout, Duration::from_secs(30));
    assert_eq!(options.http2_max_streams, 16);
    let env = &container(&defaults)["env"];
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "MALLOC_ARENA_MAX", "value": "2"})),
        "{env}"
    );

    sets.extend(
        [
            "webhook.timeoutSeconds=10",
            "limits.maxInFlight=8",
            "limits.maxConnections=50",
            "limits.maxBodyBuffer=32Mi",
            "limits.idleTimeout=1m",
            "limits.http2MaxStreams=4",
        ]
        .map(str::to_owned),
    );
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let options = server_options(&render(&sets));
    assert_eq!(options.request_timeout, Duration::from_secs(10));
    assert_eq!(options.max_in_flight, 8);
    assert_eq!(options.max_connections, 50);
    assert_eq!(options.max_body_buffer, 32 << 20);
    assert_eq!(options.idle_timeout, Duration::from_secs(60));
    assert_eq!(options.http2_max_streams, 4);
}

#[test]
fn invalid_values_are_rejected() {
    let cases: &[(&[&str], &str)] = &[
        (&["webhook.timeoutSeconds=0"], "timeoutSeconds"),
        (&["webhook.timeoutSeconds=31"], "timeoutSeconds"),
        (&["webhook.timeoutSeconds=2.5"], "timeoutSeconds"),
        (&["webhook.timeoutSeconds=abc"], "timeoutSeconds"),
        (&["webhook.failurePolicy=Sometimes"], "failurePolicy"),
        (&["certificates.mode=openssl"], "certificates.mode"),
        (&["logFormat=xml"], "logFormat"),
        (&["replicas=0"], "replicas"),
        (&["image.digest=latest"], "image.digest"),
        (
            &[
                "webhook.configMaps.enabled=false",
                "webhook.deployments.enabled=false",
            ],
            "at least one",
        ),
        // Fail closed with a single pod would block vMCP writes on every restart.
        (
            &["webhook.failurePolicy=Fail", "replicas=1"],
            "replicas >= 2",
        ),
        (
            &[
                "webhook.failurePolicy=Fail",
                "podDisruptionBudget.enabled=false",
            ],
            "podDisruptionBudget",
        ),
    ];
    for (sets, needle) in cases {
        let err = render_err(sets);
        assert!(
            err.contains(needle) || names_value(&err, needle),
            "{sets:?}: error lacks {needle:?}: {err}"
        );
    }
}

/// Names the value either as Helm 4 does (`at '/webhook/timeoutSeconds'`) or
/// as Helm 3 does (`webhook.timeoutSeconds: ...`).
fn names_value(err: &str, dotted: &str) -> bool {
    let pointer = format!("'/{}'", dotted.replace('.', "/"));
    err.contains(&pointer) || err.contains(&format!("{dotted}:"))
}

/// The mistakes the issue lists, each caught by the schema, each error naming
/// the value. Helm checks the schema before rendering, so none of these
/// reaches a template.
#[test]
fn schema_rejects_mistyped_values_naming_them() {
    let cases: &[(&[&str], &str)] = &[
        // An unknown key, top level and nested.
        (&["--set", "webhok.failurePolicy=Fail"], "webhok"),
        (&["--set", "webhook.timeout=5"], "timeout"),
        (&["--set", "service.prot=8443"], "prot"),
        (&["--set", "selftest.timout=5s"], "timout"),
        (
            &["--set", "prometheusRule.alerts.down.for=soon"],
            "prometheusRule.alerts.down.for",
        ),
        (&["--set", "grafanaDashboard.lables.a=b"], "lables"),
        (&["--set", "selftest.timeout=soon"], "selftest.timeout"),
        // A number given as a string.
        (
            &["--set-string", "webhook.timeoutSeconds=3"],
            "webhook.timeoutSeconds",
        ),
        (
            &["--set", "webhook.timeoutSeconds=0"],
            "webhook.timeoutSeconds",
        ),
        (
            &["--set", "webhook.timeoutSeconds=31"],
            "webhook.timeoutSeconds",
        ),
        (&["--set", "service.port=0"], "service.port"),
        (&["--set", "service.port=65536"], "service.port"),
        (
            &["--set", "containerPorts.webhook=0"],
            "containerPorts.webhook",
        ),
        (
            &["--set", "containerPorts.admin=70000"],
            "containerPorts.admin",
        ),
        (&["--set", "replicas=0"], "replicas"),
        (
            &["--set", "revisionHistoryLimit=-1"],
            "revisionHistoryLimit",
        ),
        // A list given as a string.
        (
            &["--set", "webhook.excludedNamespaces=foo"],
            "webhook.excludedNamespaces",
        ),
        (
            &["--set", "webhook.failurePolicy=fail"],
            "webhook.failurePolicy",
        ),
        (&["--set", "certificates.mode=openssl"], "certificates.mode"),
        (&["--set", "logFormat=xml"], "logFormat"),
        (&["--set", "logLevel=verbose"], "logLevel"),
        (&["--set", "image.pullPolicy=always"], "image.pullPolicy"),
        (&["--set", "hostNetwork=yes"], "hostNetwork"),
        (
            &["--set", "podDisruptionBudget.maxUnavailable=0"],
            "podDisruptionBudget.maxUnavailable",
        ),
        (
            &["--set", "limits.maxBodyBuffer=16MB"],
            "limits.maxBodyBuffer",
        ),
        // A typo inside a pass-through Kubernetes structure's top level.
        (
            &["--set", "securityContext.readOnlyRootFileSystem=true"],
            "readOnlyRootFileSystem",
        ),
        (
            &["--set", "webhook.matchConditions[0].name=x"],
            "expression",
        ),
    ];
    for (args, needle) in cases {
        let err = render_err_raw(args);
        assert!(
            err.contains("schema")
                && (names_value(&err, needle) || err.contains(&format!("'{needle}'"))),
            "{args:?}: the schema error does not name {needle:?}: {err}"
        );
    }
}

/// The checks a schema cannot express (one value against another), or that
/// must hold even with `--skip-schema-validation`: each fails in the template
/// that uses the value, and the message names it.
#[test]
fn template_checks_name_the_value_and_their_template() {
    let ca = format!("certificates.caBundle={}", ca_bundle_b64());
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        // Set without the mode that uses them: no longer silently self-managed.
        (
            vec!["--set", "certificates.existingSecret=my-tls"],
            "certificates.existingSecret is set but certificates.mode is self-managed",
            "deployment.yaml",
        ),
        (
            vec!["--set", &ca],
            "certificates.caBundle is set but certificates.mode is self-managed",
            "mutatingwebhookconfiguration.yaml",
        ),
        (
            vec!["--set", "certificates.mode=cert-manager", "--set", &ca],
            "certificates.caBundle is set but certificates.mode is cert-manager",
            "mutatingwebhookconfiguration.yaml",
        ),
        (
            vec!["--set", "certificates.certManager.issuerRef.name=corp-ca"],
            "certificates.certManager.issuerRef is set but certificates.mode is self-managed",
            "certificates.yaml",
        ),
        (
            vec!["--set", "replicaCount=3"],
            "replicaCount is not a value of this chart (got 3): set replicas",
            "deployment.yaml",
        ),
        (
            vec!["--set", "containerPorts.admin=8443"],
            "containerPorts.webhook and containerPorts.admin must differ",
            "deployment.yaml",
        ),
        (
            vec!["--set", "commonLabels.app\\.kubernetes\\.io/name=x"],
            "commonLabels.app.kubernetes.io/name: the chart sets this label",
            "templates/",
        ),
        (
            vec!["--set", "podLabels.app\\.kubernetes\\.io/instance=x"],
            "podLabels.app.kubernetes.io/instance: the chart sets this pod label",
            "deployment.yaml",
        ),
    ];
    for (args, needle, template) in &cases {
        let err = render_err_raw(args);
        assert!(
            err.contains(needle),
            "{args:?}: error lacks {needle:?}: {err}"
        );
        assert!(
            err.contains(&format!("{template}:")) || *template == "templates/",
            "{args:?}: not reported from {template}: {err}"
        );
    }
}

/// The template keeps its own checks for what the schema also checks, so
/// `--skip-schema-validation` (or a renderer that ignores schemas) still gets
/// a plain message, from the template that uses the value.
#[test]
fn template_checks_hold_without_the_schema() {
    let skip = "--skip-schema-validation";
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--set-string", "webhook.timeoutSeconds=3"],
            "webhook.timeoutSeconds must be a whole number from 1 to 30, not a string",
            "mutatingwebhookconfiguration.yaml",
        ),
        (
            &["--set", "webhook.timeoutSeconds=31"],
            "webhook.timeoutSeconds must be a whole number from 1 to 30",
            "mutatingwebhookconfiguration.yaml",
        ),
        (
            &["--set", "webhook.failurePolicy=Sometimes"],
            "webhook.failurePolicy must be Ignore or Fail",
            "mutatingwebhookconfiguration.yaml",
        ),
        (
            &["--set", "webhook.excludedNamespaces=foo"],
            "webhook.excludedNamespaces must be a list of namespace names",
            "mutatingwebhookconfiguration.yaml",
        ),
        (
            &["--set", "service.port=0"],
            "service.port must be a port number from 1 to 65535",
            "service.yaml",
        ),
        (
            &["--set", "containerPorts.webhook=0"],
            "containerPorts.webhook must be a port number from 1 to 65535",
            "deployment.yaml",
        ),
        (
            &["--set", "certificates.mode=openssl"],
            "certificates.mode must be one of",
            "deployment.yaml",
        ),
        (
            &["--set", "logFormat=xml"],
            "logFormat must be json or text",
            "deployment.yaml",
        ),
        (
            &["--set", "logLevel=verbose"],
            "logLevel must be one of",
            "deployment.yaml",
        ),
        (
            &["--set", "replicas=0"],
            "replicas must be at least 1",
            "deployment.yaml",
        ),
        (
            &["--set", "image.digest=latest"],
            "image.digest must look like sha256:",
            "deployment.yaml",
        ),
        (
            &["--set", "webhook.matchConditions[0].name=x"],
            "webhook.matchConditions[0] needs a name and a CEL expression",
            "mutatingwebhookconfiguration.yaml",
        ),
    ];
    for (args, needle, template) in cases {
        let mut args = args.to_vec();
        args.push(skip);
        let err = render_err_raw(&args);
        assert!(
            err.contains(needle),
            "{args:?}: error lacks {needle:?}: {err}"
        );
        assert!(
            err.contains(&format!("templates/{template}:")),
            "{args:?}: not reported from {template}: {err}"
        );
    }
}

#[test]
fn rules_are_exact_create_update_no_wildcards_no_subresources() {
    let docs = render(&[]);
    let expected = [
        ("configmaps", "", "configmaps"),
        ("deployments", "apps", "deployments"),
    ];
    for (prefix, group, resource) in expected {
        let hook = webhook(&docs, prefix);
        let rules = hook["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1, "{prefix}: one rule");
        let rule = &rules[0];
        assert_eq!(strings(&rule["operations"]), ["CREATE", "UPDATE"]);
        assert_eq!(strings(&rule["apiGroups"]), [group]);
        assert_eq!(strings(&rule["apiVersions"]), ["v1"]);
        assert_eq!(strings(&rule["resources"]), [resource]);
        assert_eq!(rule["scope"], "Namespaced");
        for field in ["operations", "apiGroups", "apiVersions", "resources"] {
            for s in strings(&rule[field]) {
                assert!(!s.contains('*'), "{prefix}: wildcard in {field}: {s}");
                assert!(!s.contains('/'), "{prefix}: subresource in {field}: {s}");
            }
        }
    }
}

#[test]
fn webhooks_can_be_switched_off_one_by_one() {
    let docs = render(&["webhook.deployments.enabled=false"]);
    let names: Vec<&str> = webhooks(&docs)
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("configmaps.{FULLNAME}.{NAMESPACE}.svc")]);
    let docs = render(&["webhook.configMaps.enabled=false"]);
    let names: Vec<&str> = webhooks(&docs)
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("deployments.{FULLNAME}.{NAMESPACE}.svc")]);
}

fn excluded_namespaces(hook: &Value) -> Vec<&str> {
    let selector = &hook["namespaceSelector"];
    assert!(
        selector["matchLabels"].is_null(),
        "matchLabels would narrow the selector to labelled namespaces only"
    );
    let exprs = selector["matchExpressions"].as_array().unwrap();
    assert_eq!(exprs.len(), 1, "{selector}");
    assert_eq!(exprs[0]["key"], "kubernetes.io/metadata.name");
    assert_eq!(exprs[0]["operator"], "NotIn");
    strings(&exprs[0]["values"])
}

#[test]
fn namespace_selector_excludes_release_namespace_and_system_namespaces() {
    let docs = render(&[]);
    for hook in webhooks(&docs) {
        let mut got = excluded_namespaces(hook);
        got.sort_unstable();
        assert_eq!(got, ["kube-node-lease", "kube-system", NAMESPACE]);
    }
    // Another release namespace follows the release.
    let docs = render_in("webhooks", &[]);
    for hook in webhooks(&docs) {
        assert!(excluded_namespaces(hook).contains(&"webhooks"));
        assert!(excluded_namespaces(hook).contains(&"kube-system"));
    }
}

#[test]
fn extra_excluded_namespaces_are_added_without_duplicates() {
    let docs = render(&["webhook.excludedNamespaces={team-a,kube-system,team-b}"]);
    for hook in webhooks(&docs) {
        let mut got = excluded_namespaces(hook);
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "kube-node-lease",
                "kube-system",
                "team-a",
                "team-b",
                NAMESPACE
            ]
        );
    }
}

#[test]
fn object_selectors_narrow_to_vmcp_objects() {
    let docs = render(&[]);
    assert_eq!(
        webhook(&docs, "configmaps")["objectSelector"],
        json!({"matchLabels": {"toolhive.stacklok.io/component": "vmcp-config"}})
    );
    assert_eq!(
        webhook(&docs, "deployments")["objectSelector"],
        json!({
            "matchLabels": {"app.kubernetes.io/name": "virtualmcpserver"},
            "matchExpressions": [{"key": "app.kubernetes.io/instance", "operator": "Exists"}],
        })
    );
}

#[test]
fn client_config_targets_the_service_path_mutate_on_443() {
    let docs = render(&[]);
    for hook in webhooks(&docs) {
        assert_eq!(
            hook["clientConfig"]["service"],
            json!({"name": FULLNAME, "namespace": NAMESPACE, "path": "/mutate", "port": 443})
        );
        assert!(hook["clientConfig"]["url"].is_null());
    }
    let service = one(&docs, "Service");
    assert_eq!(service["metadata"]["name"], FULLNAME);
    let ports = service["spec"]["ports"].as_array().unwrap();
    let https = ports.iter().find(|p| p["name"] == "https").unwrap();
    assert_eq!(https["port"], 443);
    assert_eq!(https["targetPort"], "https");
    let cports = container(&docs)["ports"].as_array().unwrap();
    let https = cports.iter().find(|p| p["name"] == "https").unwrap();
    assert_eq!(https["containerPort"], 8443);
    let admin = cports.iter().find(|p| p["name"] == "admin").unwrap();
    assert_eq!(admin["containerPort"], 8080);
    // The Service selects the Deployment's pods.
    let pod_labels = &one(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "selector label {k}");
    }
}

// ------------------------------------------------------------------- RBAC

fn assert_no_wildcards(docs: &[Value]) {
    for (kind, rule) in rbac_rules(docs) {
        for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
            if let Some(list) = rule[field].as_array() {
                for s in list {
                    assert!(!s.as_str().unwrap().contains('*'), "{kind}: {rule}");
                }
            }
        }
        assert!(rule["nonResourceURLs"].is_null(), "{kind}: {rule}");
    }
}

fn assert_bound_to_service_account(docs: &[Value]) {
    for binding in docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
    {
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}])
        );
        let role_kind = if binding["kind"] == "RoleBinding" {
            "Role"
        } else {
            "ClusterRole"
        };
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": FULLNAME})
        );
    }
    assert_eq!(pod_spec(docs)["serviceAccountName"], FULLNAME);
}

#[test]
fn rbac_self_managed_is_exactly_what_the_server_needs() {
    let docs = render(&[]);
    assert_no_wildcards(&docs);
    assert_bound_to_service_account(&docs);
    let secret = format!("{FULLNAME}-tls");
    let mut expected = vec![
        (
            "ClusterRole".to_owned(),
            json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}),
        ),
        (
            "ClusterRole".to_owned(),
            json!({"apiGroups": ["admissionregistration.k8s.io"],
                   "resources": ["mutatingwebhookconfigurations"],
                   "resourceNames": [FULLNAME],
                   "verbs": ["get", "patch", "update"]}),
        ),
        (
            "Role".to_owned(),
            json!({"apiGroups": [""], "resources": ["secrets"],
                   "resourceNames": [secret], "verbs": ["get", "update", "patch"]}),
        ),
        // create cannot be limited by resourceNames; it is namespaced to the release.
        (
            "Role".to_owned(),
            json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}),
        ),
    ];
    expected.sort_by_key(|(k, r)| format!("{k}{r}"));
    assert_eq!(rbac_rules(&docs), expected);
    assert_eq!(one(&docs, "Role")["metadata"]["namespace"], NAMESPACE);
    let mut kinds = kinds(&docs)
        .into_iter()
        .filter(|k| k.contains("Role"))
        .collect::<Vec<_>>();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    );
}

#[test]
fn rbac_file_modes_only_read_configmaps() {
    for docs in [render(CERT_MANAGER), render_existing_secret()] {
        assert_no_wildcards(&docs);
        assert_bound_to_service_account(&docs);
        assert_eq!(
            rbac_rules(&docs),
            vec![(
                "ClusterRole".to_owned(),
                json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]})
            )]
        );
        assert!(all_of(&docs, "Role").is_empty());
        assert!(all_of(&docs, "RoleBinding").is_empty());
    }
}

#[test]
fn rbac_without_deployment_webhook_drops_configmap_read() {
    let docs = render(&[
        "webhook.deployments.enabled=false",
        "certificates.mode=cert-manager",
    ]);
    assert!(rbac_rules(&docs).is_empty(), "{:?}", rbac_rules(&docs));
    assert!(all_of(&docs, "ClusterRoleBinding").is_empty());
    let docs = render(&["webhook.deployments.enabled=false"]);
    assert!(
        !rbac_rules(&docs)
            .iter()
            .any(|(_, r)| r["resources"] == json!(["configmaps"]))
    );
}

// -------------------------------------------------------------- the pods

#[test]
fn pod_is_hardened() {
    for docs in [render(&[]), render(CERT_MANAGER), render_existing_secret()] {
        let pod = pod_spec(&docs);
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true);
        assert_eq!(psc["runAsUser"], 65532);
        assert_eq!(psc["runAsGroup"], 65532);
        assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
        let csc = &container(&docs)["securityContext"];
        assert_eq!(csc["runAsNonRoot"], true);
        assert_eq!(csc["runAsUser"], 65532);
        assert_eq!(csc["readOnlyRootFilesystem"], true);
        assert_eq!(csc["allowPrivilegeEscalation"], false);
        assert_eq!(csc["privileged"], false);
        assert_eq!(csc["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(csc["seccompProfile"]["type"], "RuntimeDefault");
        // The server talks to the API server, so it needs its token.
        assert_eq!(pod["automountServiceAccountToken"], true);
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod[host].is_null() || pod[host] == false, "{host}");
        }
        let resources = &container(&docs)["resources"];
        assert!(resources["requests"]["cpu"].is_string());
        assert!(resources["requests"]["memory"].is_string());
        assert!(resources["limits"]["memory"].is_string());
    }
}

#[test]
fn two_replicas_spread_across_nodes_with_pdb_max_unavailable_one() {
    let docs = render(&[]);
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(pdb["spec"]["minAvailable"].is_null());
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let spread = pod_spec(&docs)["topologySpreadConstraints"]
        .as_array()
        .unwrap();
    let host = spread
        .iter()
        .find(|c| c["topologyKey"] == "kubernetes.io/hostname")
        .expect("spread on hostname");
    // Best effort: a single-node cluster must still schedule both pods.
    assert_eq!(host["whenUnsatisfiable"], "ScheduleAnyway");
    assert_eq!(
        host["labelSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn single_replica_renders_no_pdb() {
    let docs = render(&["replicas=1"]);
    assert_eq!(one(&docs, "Deployment")["spec"]["replicas"], 1);
    assert!(all_of(&docs, "PodDisruptionBudget").is_empty());
    let docs = render(&["replicas=3"]);
    assert_eq!(
        one(&docs, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
}

#[test]
fn probes_on_admin_port() {
    let docs = render(&[]);
    let c = container(&docs);
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/livez", "port": "admin"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "admin"})
    );
}

#[test]
fn termination_grace_outlasts_pre_stop_and_drain() {
    let docs = render(&[]);
    let grace = pod_spec(&docs)["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    let sleep = container(&docs)["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(sleep >= 1);
    // Leave the server at least 10 s to drain after the preStop sleep.
    assert!(grace >= sleep + 10, "grace {grace}, preStop {sleep}");
    let err = render_err(&["terminationGracePeriodSeconds=5", "preStopSleepSeconds=5"]);
    assert!(err.contains("terminationGracePeriodSeconds"), "{err}");
    let docs = render(&["preStopSleepSeconds=0"]);
    assert!(container(&docs)["lifecycle"].is_null());
}

#[test]
fn optional_scheduling_values_are_passed_through() {
    let docs = render(&[
        "priorityClassName=system-cluster-critical",
        "nodeSelector.pool=system",
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Exists",
        "podAnnotations.a=b",
        "podLabels.team=platform",
        "imagePullSecrets[0].name=regcred",
    ]);
    let pod = pod_spec(&docs);
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    // Added to the default, which keeps the pods on Linux nodes.
    assert_eq!(
        pod["nodeSelector"],
        json!({"kubernetes.io/os": "linux", "pool": "system"})
    );
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "dedicated", "operator": "Exists"}])
    );
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
    let meta = &one(&docs, "Deployment")["spec"]["template"]["metadata"];
    assert_eq!(meta["annotations"]["a"], "b");
    assert_eq!(meta["labels"]["team"], "platform");
    // Defaults render none of them, but the Linux node selector (the image
    // has no Windows build), which can be dropped.
    let docs = render(&[]);
    let pod = pod_spec(&docs);
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    let dropped = render(&["nodeSelector.kubernetes\\.io/os=null"]);
    assert!(pod_spec(&dropped)["nodeSelector"].is_null());
    for key in [
        "priorityClassName",
        "tolerations",
        "affinity",
        "imagePullSecrets",
    ] {
        assert!(pod[key].is_null(), "{key} rendered by default");
    }
}

#[test]
fn image_tag_defaults_to_app_version_and_digest_wins() {
    let docs = render(&[]);
    assert_eq!(
        container(&docs)["image"],
        format!(
            "ghcr.io/vmcp-normalizer/vmcp-normalizer:{}",
            env!("CARGO_PKG_VERSION")
        )
        .as_str()
    );
    assert_eq!(container(&docs)["imagePullPolicy"], "IfNotPresent");
    let docs = render(&[
        "image.repository=registry.example/vmcp-normalizer",
        "image.tag=1.2.3",
    ]);
    assert_eq!(
        container(&docs)["image"],
        "registry.example/vmcp-normalizer:1.2.3"
    );
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let set = format!("image.digest={digest}");
    let docs = render(&["image.tag=1.2.3", &set]);
    assert_eq!(
        container(&docs)["image"],
        format!("ghcr.io/vmcp-normalizer/vmcp-normalizer@{digest}").as_str()
    );
}

/// A local build (scripts/build-image.sh) is named what the chart pulls by
/// default, and the chart's appVersion is the crate's version: an image loaded
/// with `kind load image-archive` is then used by a plain `helm install`.
#[test]
fn local_image_build_is_named_as_the_chart_default() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/build-image.sh")).expect("script");
    let default_image = script
        .lines()
        .find_map(|line| line.strip_prefix("IMAGE=\"${IMAGE:-"))
        .and_then(|rest| rest.strip_suffix("}\""))
        .expect("scripts/build-image.sh sets IMAGE=\"${IMAGE:-...}\"");
    let docs = render(&[]);
    assert_eq!(
        container(&docs)["image"],
        format!("{default_image}:{}", env!("CARGO_PKG_VERSION")).as_str()
    );
}

// ------------------------------------------------------- server contract

#[test]
fn self_managed_server_args_and_env() {
    let docs = render(&[]);
    assert_eq!(
        args(&docs),
        [
            "serve",
            "--listen=0.0.0.0:8443",
            "--admin-listen=0.0.0.0:8080",
            "--log-format=json",
            "--tls-cert=/certs/tls.crt",
            "--tls-key=/certs/tls.key",
            "--request-timeout=3s",
            "--max-connections=1000",
            "--max-in-flight=64",
            "--max-body-buffer=16Mi",
            "--idle-timeout=30s",
            "--http2-max-streams=16",
            "--self-managed-tls",
            &format!("--tls-secret={FULLNAME}-tls"),
            &format!("--webhook-configuration={FULLNAME}"),
            &format!("--service-name={FULLNAME}"),
        ]
    );
    let env = container(&docs)["env"].as_array().unwrap();
    let ns = env.iter().find(|e| e["name"] == "POD_NAMESPACE").unwrap();
    assert_eq!(
        ns["valueFrom"],
        json!({"fieldRef": {"fieldPath": "metadata.namespace"}})
    );
    // No Secret volume in this mode: the server writes the pair it keeps in
    // its Secret into a writable in-memory directory, and serves it from there.
    assert_eq!(
        pod_spec(&docs)["volumes"],
        json!([{"name": "certs", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}])
    );
    assert_eq!(
        container(&docs)["volumeMounts"],
        json!([{"name": "certs", "mountPath": "/certs"}])
    );
}

#[test]
fn file_modes_server_args_and_log_format() {
    for docs in [
        render(&["certificates.mode=cert-manager", "logFormat=text"]),
        {
            let mut sets = existing_secret_sets(&ca_bundle_b64());
            sets.push("logFormat=text".to_owned());
            let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
            render(&sets)
        },
    ] {
        assert_eq!(
            args(&docs),
            [
                "serve",
                "--listen=0.0.0.0:8443",
                "--admin-listen=0.0.0.0:8080",
                "--log-format=text",
                "--tls-cert=/certs/tls.crt",
                "--tls-key=/certs/tls.key",
                "--request-timeout=3s",
                "--max-connections=1000",
                "--max-in-flight=64",
                "--max-body-buffer=16Mi",
                "--idle-timeout=30s",
                "--http2-max-streams=16",
            ]
        );
    }
}

fn assert_secret_mounted_as_directory(docs: &[Value], secret: &str) {
    let volumes = pod_spec(docs)["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0]["name"], "certs");
    assert_eq!(volumes[0]["secret"]["secretName"], secret);
    assert!(
        volumes[0]["secret"]["items"].is_null(),
        "items would pin key names"
    );
    let mounts = container(docs)["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0]["name"], "certs");
    assert_eq!(mounts[0]["mountPath"], "/certs");
    assert_eq!(mounts[0]["readOnly"], true);
    // A subPath mount never sees the kubelet's ..data symlink swap: no hot reload.
    assert!(mounts[0]["subPath"].is_null() && mounts[0]["subPathExpr"].is_null());
}

#[test]
fn file_modes_mount_the_secret_as_a_directory() {
    let docs = render(CERT_MANAGER);
    let serving = all_of(&docs, "Certificate")
        .into_iter()
        .find(|c| c["spec"]["isCA"].is_null())
        .unwrap();
    let secret = serving["spec"]["secretName"].as_str().unwrap();
    assert_secret_mounted_as_directory(&docs, secret);
    assert_secret_mounted_as_directory(&render_existing_secret(), "my-tls");
}

// ---------------------------------------------------------- certificates

#[test]
fn self_managed_renders_no_certificate_material() {
    let text = render_text(&[]);
    assert!(!text.contains("PRIVATE KEY"));
    assert!(!text.contains("BEGIN CERTIFICATE"));
    assert!(
        !text.contains("caBundle"),
        "caBundle is the server's to write"
    );
    let docs = parse_docs(&text);
    assert!(all_of(&docs, "Secret").is_empty());
    assert!(
        !kinds(&docs)
            .iter()
            .any(|k| *k == "Certificate" || *k == "Issuer")
    );
    for hook in webhooks(&docs) {
        assert!(hook["clientConfig"]["caBundle"].is_null());
    }
}

#[test]
fn no_private_key_in_any_mode() {
    let ca = format!("certificates.caBundle={}", ca_bundle_b64());
    for sets in [
        vec![],
        vec!["certificates.mode=cert-manager"],
        vec![
            "certificates.mode=existing-secret",
            "certificates.existingSecret=my-tls",
            &ca,
        ],
    ] {
        assert!(!render_text(&sets).contains("PRIVATE KEY"), "{sets:?}");
    }
}

#[test]
fn self_managed_render_is_stable() {
    let sets = ["networkPolicy.enabled=true", "serviceMonitor.enabled=true"];
    let first = render_text(&[]);
    assert_eq!(first, render_text(&[]));
    assert_eq!(render_text(&sets), render_text(&sets));
}

#[test]
fn cert_manager_mode_issues_and_injects() {
    let docs = render(CERT_MANAGER);
    let config = webhook_config(&docs);
    let certificates = all_of(&docs, "Certificate");
    assert_eq!(certificates.len(), 2, "CA and serving certificate");
    let serving = certificates
        .iter()
        .find(|c| c["spec"]["isCA"].is_null())
        .unwrap();
    let ca = certificates
        .iter()
        .find(|c| c["spec"]["isCA"] == true)
        .unwrap();
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!(
            "{NAMESPACE}/{}",
            serving["metadata"]["name"].as_str().unwrap()
        )
        .as_str()
    );
    assert_eq!(
        serving["spec"]["dnsNames"],
        json!([
            format!("{FULLNAME}.{NAMESPACE}.svc"),
            format!("{FULLNAME}.{NAMESPACE}.svc.cluster.local"),
        ])
    );
    // selfSigned Issuer -> CA Certificate -> CA Issuer -> serving Certificate.
    let issuers = all_of(&docs, "Issuer");
    assert_eq!(issuers.len(), 2);
    let self_signed = issuers
        .iter()
        .find(|i| !i["spec"]["selfSigned"].is_null())
        .unwrap();
    let ca_issuer = issuers.iter().find(|i| !i["spec"]["ca"].is_null()).unwrap();
    assert_eq!(
        ca["spec"]["issuerRef"]["name"],
        self_signed["metadata"]["name"]
    );
    assert_eq!(
        ca_issuer["spec"]["ca"]["secretName"],
        ca["spec"]["secretName"]
    );
    assert_eq!(
        serving["spec"]["issuerRef"]["name"],
        ca_issuer["metadata"]["name"]
    );
    // cainjector writes the caBundle; the chart leaves it out.
    for hook in webhooks(&docs) {
        assert!(hook["clientConfig"]["caBundle"].is_null());
    }
}

#[test]
fn cert_manager_mode_with_external_issuer() {
    let docs = render(&[
        "certificates.mode=cert-manager",
        "certificates.certManager.issuerRef.name=corp-ca",
        "certificates.certManager.issuerRef.kind=ClusterIssuer",
    ]);
    assert!(all_of(&docs, "Issuer").is_empty());
    let certificate = one(&docs, "Certificate");
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
}

#[test]
fn existing_secret_mode_uses_the_given_ca() {
    let docs = render_existing_secret();
    for hook in webhooks(&docs) {
        assert_eq!(hook["clientConfig"]["caBundle"], ca_bundle_b64().as_str());
    }
    assert!(webhook_config(&docs)["metadata"]["annotations"].is_null());
    assert!(all_of(&docs, "Certificate").is_empty());
}

#[test]
fn existing_secret_mode_requires_secret_and_ca_bundle() {
    let err = render_err(&[
        "certificates.mode=existing-secret",
        "certificates.existingSecret=my-tls",
    ]);
    assert!(err.contains("certificates.caBundle"), "{err}");
    let ca = format!("certificates.caBundle={}", ca_bundle_b64());
    let err = render_err(&["certificates.mode=existing-secret", &ca]);
    assert!(err.contains("certificates.existingSecret"), "{err}");
    // Not base64 PEM.
    let err = render_err(&[
        "certificates.mode=existing-secret",
        "certificates.existingSecret=my-tls",
        "certificates.caBundle=bm90IGEgY2VydA==",
    ]);
    assert!(err.contains("certificates.caBundle"), "{err}");
    // A key pasted in by mistake never reaches the cluster-wide object.
    use base64::Engine;
    let with_key = base64::engine::general_purpose::STANDARD.encode(format!(
        "{CA_PEM}-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n"
    ));
    let sets = existing_secret_sets(&with_key);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let err = render_err(&sets);
    assert!(err.contains("PRIVATE KEY"), "{err}");
}

// -------------------------------------------- ServiceMonitor, NetworkPolicy

#[test]
fn service_monitor_scrapes_admin_port_metrics() {
    assert!(all_of(&render(&[]), "ServiceMonitor").is_empty());
    let docs = render(&[
        "serviceMonitor.enabled=true",
        "serviceMonitor.labels.release=prom",
    ]);
    let sm = one(&docs, "ServiceMonitor");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    let endpoints = sm["spec"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["port"], "metrics");
    assert_eq!(endpoints[0]["path"], "/metrics");
    let service = one(&docs, "Service");
    let port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .unwrap();
    assert_eq!(port["targetPort"], "admin");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );
}

#[test]
fn network_policy_admits_webhook_and_admin_ports_only() {
    assert!(all_of(&render(&[]), "NetworkPolicy").is_empty());
    let docs = render(&["networkPolicy.enabled=true"]);
    let np = one(&docs, "NetworkPolicy");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    let mut ports: Vec<u64> = np["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap().clone())
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [8080, 8443]);
    // Default: from anywhere (the API server's source address is not portable).
    for rule in np["spec"]["ingress"].as_array().unwrap() {
        assert!(rule["from"].is_null());
    }
    let docs = render(&[
        "networkPolicy.enabled=true",
        "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/8",
    ]);
    let np = one(&docs, "NetworkPolicy");
    let webhook_rule = np["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ports"][0]["port"] == 8443)
        .unwrap();
    assert_eq!(
        webhook_rule["from"],
        json!([{"ipBlock": {"cidr": "10.0.0.0/8"}}])
    );
}

// ------------------------------------------- the README's check-it examples

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = parse_docs(&text);
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs.into_iter().next().unwrap()
}

fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let by_label = selector["matchLabels"]
        .as_object()
        .map(|m| m.iter().all(|(k, v)| &labels[k] == v))
        .unwrap_or(true);
    let by_expr = selector["matchExpressions"]
        .as_array()
        .map(|exprs| {
            exprs.iter().all(|e| {
                let key = e["key"].as_str().unwrap();
                match e["operator"].as_str().unwrap() {
                    "Exists" => !labels[key].is_null(),
                    "In" => e["values"].as_array().unwrap().contains(&labels[key]),
                    // Also true when the label is absent.
                    "NotIn" => !e["values"].as_array().unwrap().contains(&labels[key]),
                    other => panic!("operator {other} not handled"),
                }
            })
        })
        .unwrap_or(true);
    by_label && by_expr
}

#[test]
fn readme_examples_match_the_fixtures_and_the_object_selectors() {
    let examples = chart_dir().join("examples");
    let fixtures = manifest_dir().join("tests").join("fixtures");
    let cm = read_yaml(&examples.join("vmcp-configmap.yaml"));
    let cm_fixture = read_yaml(&fixtures.join("vmcp-configmap.yaml"));
    // Same bytes in, so the same normalized bytes and checksum come out.
    for field in [
        "/data",
        "/metadata/labels",
        "/metadata/annotations",
        "/metadata/name",
    ] {
        assert_eq!(cm.pointer(field), cm_fixture.pointer(field), "{field}");
    }
    // Creatable: nothing the API server sets or rejects on create.
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "ownerReferences",
        "namespace",
    ] {
        assert!(
            cm["metadata"][field].is_null(),
            "example ConfigMap has {field}"
        );
    }
    let deploy = read_yaml(&examples.join("vmcp-deployment.yaml"));
    let deploy_fixture = read_yaml(&fixtures.join("vmcp-deployment.yaml"));
    for field in [
        "/metadata/labels",
        "/spec/template/metadata/annotations",
        "/spec/template/metadata/labels",
    ] {
        assert_eq!(
            deploy.pointer(field),
            deploy_fixture.pointer(field),
            "{field}"
        );
    }
    assert_eq!(
        deploy["spec"]["replicas"], 0,
        "the example must not start pods"
    );
    let volume = &deploy["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(volume["name"], "vmcp-config");
    assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "ownerReferences",
        "namespace",
    ] {
        assert!(
            deploy["metadata"][field].is_null(),
            "example Deployment has {field}"
        );
    }
    // The rendered webhooks select them (and would not select other objects).
    let docs = render(&[]);
    let cm_selector = &webhook(&docs, "configmaps")["objectSelector"];
    let deploy_selector = &webhook(&docs, "deployments")["objectSelector"];
    assert!(selector_matches(cm_selector, &cm["metadata"]["labels"]));
    assert!(selector_matches(
        deploy_selector,
        &deploy["metadata"]["labels"]
    ));
    assert!(!selector_matches(
        cm_selector,
        &deploy["metadata"]["labels"]
    ));
    assert!(!selector_matches(
        deploy_selector,
        &cm["metadata"]["labels"]
    ));
    // The chart's own Deployment is not a vMCP Deployment.
    let own = &one(&docs, "Deployment")["metadata"]["labels"];
    assert!(!selector_matches(deploy_selector, own));
}

// ----------------------------------------------- scoping and reaching it

/// The namespace label selector is ANDed with the exclusions: the exclusion
/// expression stays first, the user's terms follow.
#[test]
fn namespace_label_selector_opt_in_and_opt_out() {
    let docs = render_raw(&[
        "--set-string",
        "webhook.namespaceSelector.matchLabels.vmcp-normalizer\\.io/enabled=true",
    ]);
    for hook in webhooks(&docs) {
        let selector = &hook["namespaceSelector"];
        assert_eq!(
            selector["matchLabels"],
            json!({"vmcp-normalizer.io/enabled": "true"})
        );
        let exprs = selector["matchExpressions"].as_array().unwrap();
        assert_eq!(exprs.len(), 1);
        assert_eq!(exprs[0]["key"], "kubernetes.io/metadata.name");
        assert_eq!(exprs[0]["operator"], "NotIn");
    }
    let docs = render_raw(&[
        "--set",
        "webhook.namespaceSelector.matchExpressions[0].key=vmcp-normalizer.io/ignore",
        "--set",
        "webhook.namespaceSelector.matchExpressions[0].operator=NotIn",
        // Label values are strings; --set would make this a boolean.
        "--set-string",
        "webhook.namespaceSelector.matchExpressions[0].values={true}",
    ]);
    for hook in webhooks(&docs) {
        let selector = &hook["namespaceSelector"];
        assert!(selector["matchLabels"].is_null());
        let exprs = selector["matchExpressions"].as_array().unwrap();
        assert_eq!(exprs.len(), 2);
        assert_eq!(exprs[0]["key"], "kubernetes.io/metadata.name");
        assert_eq!(
            exprs[1],
            json!({"key": "vmcp-normalizer.io/ignore", "operator": "NotIn", "values": ["true"]})
        );
    }
}

#[test]
fn object_opt_out_label_is_added_to_both_object_selectors() {
    let docs = render(&["webhook.objectOptOutLabel=vmcp-normalizer.io/ignore"]);
    let opt_out =
        json!({"key": "vmcp-normalizer.io/ignore", "operator": "NotIn", "values": ["true"]});
    assert_eq!(
        webhook(&docs, "configmaps")["objectSelector"],
        json!({
            "matchLabels": {"toolhive.stacklok.io/component": "vmcp-config"},
            "matchExpressions": [opt_out],
        })
    );
    assert_eq!(
        webhook(&docs, "deployments")["objectSelector"],
        json!({
            "matchLabels": {"app.kubernetes.io/name": "virtualmcpserver"},
            "matchExpressions": [
                {"key": "app.kubernetes.io/instance", "operator": "Exists"},
                opt_out,
            ],
        })
    );
    // What the selectors still match: the examples, unless they carry the label.
    let cm = read_yaml(&chart_dir().join("examples").join("vmcp-configmap.yaml"));
    let mut labels = cm["metadata"]["labels"].clone();
    let selector = &webhook(&docs, "configmaps")["objectSelector"];
    assert!(selector_matches(selector, &labels));
    labels["vmcp-normalizer.io/ignore"] = json!("true");
    assert!(!selector_matches(selector, &labels));
}

#[test]
fn match_conditions_render_only_when_set() {
    for hook in webhooks(&render(&[])) {
        assert!(hook["matchConditions"].is_null(), "{hook}");
    }
    let docs = render(&[
        "webhook.matchConditions[0].name=not-dry-run",
        "webhook.matchConditions[0].expression=!request.dryRun",
    ]);
    for hook in webhooks(&docs) {
        assert_eq!(
            hook["matchConditions"],
            json!([{"name": "not-dry-run", "expression": "!request.dryRun"}])
        );
    }
}

#[test]
fn webhook_configuration_annotations_keep_the_cert_manager_one() {
    let docs = render(&["webhook.annotations.owner=platform"]);
    assert_eq!(
        webhook_config(&docs)["metadata"]["annotations"],
        json!({"owner": "platform"})
    );
    let docs = render(&[
        "webhook.annotations.owner=platform",
        "certificates.mode=cert-manager",
    ]);
    let annotations = &webhook_config(&docs)["metadata"]["annotations"];
    assert_eq!(annotations["owner"], "platform");
    assert_eq!(
        annotations["cert-manager.io/inject-ca-from"],
        format!("{NAMESPACE}/{FULLNAME}-serving").as_str()
    );
}

fn serve_args(docs: &[Value]) -> vmcp_normalizer::server::ServeArgs {
    use clap::Parser as _;
    use vmcp_normalizer::cli::{Cli, Command};
    let argv = std::iter::once("vmcp-normalizer").chain(args(docs));
    match Cli::try_parse_from(argv)
        .expect("the server accepts the chart's arguments")
        .command
    {
        Command::Serve(serve) => *serve,
        other => panic!("not serve: {other:?}"),
    }
}

#[test]
fn container_ports_reach_the_server_the_pod_and_the_network_policy() {
    // A file-certificate mode: the self-managed flags need the pod's namespace
    // from the environment to parse.
    let docs = render(&[
        "containerPorts.webhook=10250",
        "containerPorts.admin=10251",
        "networkPolicy.enabled=true",
        "certificates.mode=cert-manager",
    ]);
    let serve = serve_args(&docs);
    assert_eq!(serve.listen, "0.0.0.0:10250".parse().unwrap());
    assert_eq!(serve.admin_listen, "0.0.0.0:10251".parse().unwrap());
    let ports = container(&docs)["ports"].as_array().unwrap();
    let port =
        |name: &str| ports.iter().find(|p| p["name"] == name).unwrap()["containerPort"].clone();
    assert_eq!(port("https"), 10250);
    assert_eq!(port("admin"), 10251);
    // The Service and the probes follow by port name.
    let service = one(&docs, "Service");
    for p in service["spec"]["ports"].as_array().unwrap() {
        assert!(p["targetPort"].is_string(), "{p}");
    }
    assert_eq!(
        container(&docs)["readinessProbe"]["httpGet"]["port"],
        "admin"
    );
    let mut np_ports: Vec<u64> = one(&docs, "NetworkPolicy")["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ports"][0]["port"].as_u64().unwrap())
        .collect();
    np_ports.sort_unstable();
    assert_eq!(np_ports, [10250, 10251]);
    // Defaults unchanged.
    let serve = serve_args(&render(CERT_MANAGER));
    assert_eq!(serve.listen, "0.0.0.0:8443".parse().unwrap());
    assert_eq!(serve.admin_listen, "0.0.0.0:8080".parse().unwrap());
}

#[test]
fn host_network_sets_the_dns_policy_that_keeps_cluster_dns() {
    let pod = pod_spec(&render(&[])).clone();
    assert!(pod["hostNetwork"].is_null() && pod["dnsPolicy"].is_null());
    let docs = render(&["hostNetwork=true"]);
    let pod = pod_spec(&docs);
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
}

fn env_value<'a>(docs: &'a [Value], name: &str) -> Vec<&'a Value> {
    container(docs)["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == name)
        .map(|e| &e["value"])
        .collect()
}

#[test]
fn log_level_sets_rust_log_and_extra_env_wins() {
    assert!(env_value(&render(&[]), "RUST_LOG").is_empty());
    let docs = render(&["logLevel=debug"]);
    assert_eq!(env_value(&docs, "RUST_LOG"), [&json!("debug")]);
    // One RUST_LOG only, the one from extraEnv.
    let docs = render(&[
        "logLevel=debug",
        "extraEnv[0].name=RUST_LOG",
        "extraEnv[0].value=info\\,vmcp_normalizer=trace",
    ]);
    assert_eq!(
        env_value(&docs, "RUST_LOG"),
        [&json!("info,vmcp_normalizer=trace")]
    );
}

#[test]
fn common_labels_are_on_every_object_and_the_pods() {
    let text_sets = ["commonLabels.team=platform", "commonLabels.cost-center=42"];
    for mode in [&[][..], CERT_MANAGER] {
        let mut sets = text_sets.to_vec();
        sets.extend_from_slice(mode);
        sets.extend(["networkPolicy.enabled=true", "serviceMonitor.enabled=true"]);
        let docs = render_raw(
            &sets
                .iter()
                .flat_map(|s| {
                    // Label values are strings: 42 goes through --set-string.
                    if s.ends_with("=42") {
                        ["--set-string", s]
                    } else {
                        ["--set", s]
                    }
                })
                .collect::<Vec<_>>(),
        );
        for doc in &docs {
            let labels = &doc["metadata"]["labels"];
            assert_eq!(labels["team"], "platform", "{}", doc["kind"]);
            assert_eq!(labels["cost-center"], "42", "{}", doc["kind"]);
            assert_eq!(labels["app.kubernetes.io/name"], "vmcp-normalizer");
        }
        let deployment = one(&docs, "Deployment");
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["labels"]["team"],
            "platform"
        );
        // Never in the selector, which is immutable.
        assert!(deployment["spec"]["selector"]["matchLabels"]["team"].is_null());
    }
}

#[test]
fn image_registry_replaces_or_prefixes_the_repository_registry() {
    let version = env!("CARGO_PKG_VERSION");
    let image = |sets: &[&str]| {
        container(&render(sets))["image"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        image(&["image.registry=mirror.example.com:5000"]),
        format!("mirror.example.com:5000/vmcp-normalizer/vmcp-normalizer:{version}")
    );
    assert_eq!(
        image(&[
            "image.registry=mirror.example.com/ghcr",
            "image.repository=team/normalizer"
        ]),
        format!("mirror.example.com/ghcr/team/normalizer:{version}")
    );
    assert_eq!(
        image(&[
            "image.registry=localhost:5000",
            "image.repository=localhost/vmcp"
        ]),
        format!("localhost:5000/vmcp:{version}")
    );
    // A registry host with a port and no dot.
    assert_eq!(
        image(&[
            "image.registry=mirror.example.com",
            "image.repository=registry:5000/team/vmcp"
        ]),
        format!("mirror.example.com/team/vmcp:{version}")
    );
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let set = format!("image.digest={digest}");
    assert_eq!(
        image(&["image.registry=mirror.example.com", &set]),
        format!("mirror.example.com/vmcp-normalizer/vmcp-normalizer@{digest}")
    );
}

#[test]
fn revision_history_limit_is_configurable() {
    assert_eq!(
        one(&render(&[]), "Deployment")["spec"]["revisionHistoryLimit"],
        5
    );
    assert_eq!(
        one(&render(&["revisionHistoryLimit=0"]), "Deployment")["spec"]["revisionHistoryLimit"],
        0
    );
}

/// Every example values file lints (also --strict) and renders.
#[test]
fn example_values_files_lint_and_render() {
    let examples = chart_dir().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("values-") && n.ends_with(".yaml"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3, "example values files: {files:?}");
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    for file in &files {
        let file = file.to_str().unwrap();
        for strict in [false, true] {
            let mut args = vec!["lint", chart, "--namespace", NAMESPACE, "-f", file];
            if strict {
                args.push("--strict");
            }
            let out = run_helm(&args);
            assert!(
                out.status.success(),
                "helm {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let docs = render_raw(&["-f", file]);
        assert!(
            kinds(&docs).contains(&"MutatingWebhookConfiguration"),
            "{file}"
        );
    }
}

// ------------------------------------------------------ the helm test hook

const SELFTEST: &str = "rel-vmcp-normalizer-selftest";
const PROBE_CONFIGMAP: &str = "vmcp-normalizer-selftest-vmcp-config";

/// The `helm test` objects `helm template` renders with `--set` arguments.
fn render_tests(sets: &[&str]) -> Vec<Value> {
    let mut args = template_args(NAMESPACE, sets);
    args.retain(|arg| arg != "--skip-tests");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    assert!(
        out.status.success(),
        "helm template {sets:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("helm output is UTF-8");
    parse_docs(&text)
        .into_iter()
        .filter(|doc| !doc["metadata"]["annotations"]["helm.sh/hook"].is_null())
        .collect()
}

fn render_tests_err(sets: &[&str]) -> String {
    let mut args = template_args(NAMESPACE, sets);
    args.retain(|arg| arg != "--skip-tests");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    assert!(!out.status.success(), "helm template {sets:?} rendered");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn selftest_objects_are_test_hooks_removed_once_passed() {
    let docs = render_tests(&[]);
    let mut found = kinds(&docs);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Pod",
            "Role",
            "RoleBinding",
            "ServiceAccount"
        ]
    );
    for doc in &docs {
        let annotations = &doc["metadata"]["annotations"];
        assert_eq!(annotations["helm.sh/hook"], "test", "{}", doc["kind"]);
        assert_eq!(
            annotations["helm.sh/hook-delete-policy"], "before-hook-creation,hook-succeeded",
            "{}",
            doc["kind"]
        );
        assert_eq!(doc["metadata"]["name"], SELFTEST);
        // Its own labels: the Service and the PDB select by these two, and
        // must never select the test Pod.
        let labels = &doc["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/component"], "selftest");
        assert_ne!(labels["app.kubernetes.io/name"], "vmcp-normalizer");
        // The RBAC exists before the Pod starts.
        let weight: i32 = annotations["helm.sh/hook-weight"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if doc["kind"] == "Pod" {
            assert_eq!(weight, 0);
        } else {
            assert!(weight < 0, "{}", doc["kind"]);
        }
    }
    // The install manifests have no hooks (what `helm uninstall` removes).
    let installed = render(&[]);
    assert!(!kinds(&installed).contains(&"Pod"));
}

#[test]
fn selftest_pod_runs_the_same_image_as_hardened_as_the_server() {
    let installed = render(&[]);
    let docs = render_tests(&[]);
    let pod = one(&docs, "Pod");
    let spec = &pod["spec"];
    assert_eq!(pod["metadata"]["namespace"], NAMESPACE);
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["serviceAccountName"], SELFTEST);
    assert_eq!(
        spec["securityContext"],
        pod_spec(&installed)["securityContext"]
    );
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let test = &containers[0];
    let server = container(&installed);
    assert_eq!(test["image"], server["image"]);
    assert_eq!(test["securityContext"], server["securityContext"]);
    assert_eq!(
        strings(&test["args"]),
        [
            "selftest",
            "--namespace=default",
            &format!("--webhook-configuration={FULLNAME}"),
            "--timeout=10s"
        ]
    );
    // The arguments parse as the binary parses them.
    use clap::Parser as _;
    let mut argv = vec!["vmcp-normalizer"];
    argv.extend(strings(&test["args"]));
    let cli = vmcp_normalizer::cli::Cli::try_parse_from(argv).expect("the args parse");
    let vmcp_normalizer::cli::Command::Selftest(parsed) = cli.command else {
        panic!("not selftest");
    };
    assert_eq!(parsed.namespace.as_deref(), Some("default"));
    assert_eq!(parsed.webhook_configuration.as_deref(), Some(FULLNAME));
    assert_eq!(parsed.timeout, std::time::Duration::from_secs(10));
    // Its ServiceAccount never mounts a token elsewhere.
    assert_eq!(
        one(&docs, "ServiceAccount")["automountServiceAccountToken"],
        false
    );
    assert_eq!(spec["automountServiceAccountToken"], true);
}

#[test]
fn selftest_rbac_is_exactly_what_the_checks_need() {
    let docs = render_tests(&["selftest.namespace=team-a"]);
    assert_no_wildcards(&docs);
    let mut expected = vec![
        (
            "ClusterRole".to_owned(),
            json!({"apiGroups": ["admissionregistration.k8s.io"],
                   "resources": ["mutatingwebhookconfigurations"],
                   "resourceNames": [FULLNAME], "verbs": ["get"]}),
        ),
        (
            "ClusterRole".to_owned(),
            json!({"apiGroups": [""], "resources": ["namespaces"],
                   "resourceNames": ["team-a"], "verbs": ["get"]}),
        ),
        // Dry-run creates need create; create cannot be limited by name.
        (
            "Role".to_owned(),
            json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}),
        ),
        (
            "Role".to_owned(),
            json!({"apiGroups": [""], "resources": ["configmaps"],
                   "resourceNames": [PROBE_CONFIGMAP], "verbs": ["delete"]}),
        ),
        (
            "Role".to_owned(),
            json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}),
        ),
    ];
    expected.sort_by_key(|(k, r)| format!("{k}{r}"));
    assert_eq!(rbac_rules(&docs), expected);
    // The Role and its binding live in the test namespace; the subject is
    // the test's own ServiceAccount, never the server's.
    for kind in ["Role", "RoleBinding"] {
        assert_eq!(one(&docs, kind)["metadata"]["namespace"], "team-a");
    }
    for kind in ["RoleBinding", "ClusterRoleBinding"] {
        let binding = one(&docs, kind);
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": SELFTEST, "namespace": NAMESPACE}])
        );
        assert_eq!(binding["roleRef"]["name"], SELFTEST);
    }
    let pod = one(&docs, "Pod");
    assert!(strings(&pod["spec"]["containers"][0]["args"]).contains(&"--namespace=team-a"));

    // Without the Deployment webhook only the ConfigMap dry run remains.
    let docs = render_tests(&["webhook.deployments.enabled=false"]);
    let role_rules: Vec<Value> = rbac_rules(&docs)
        .into_iter()
        .filter(|(kind, _)| kind == "Role")
        .map(|(_, rule)| rule)
        .collect();
    assert_eq!(
        role_rules,
        [json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]})]
    );
}

#[test]
fn selftest_can_be_switched_off() {
    assert!(render_tests(&["selftest.enabled=false"]).is_empty());
    assert_eq!(
        kinds(&render(&["selftest.enabled=false"])),
        kinds(&render(&[]))
    );
}

#[test]
fn selftest_namespace_must_be_one_the_webhook_watches() {
    for namespace in [NAMESPACE, "kube-system", "kube-node-lease"] {
        let err = render_tests_err(&[&format!("selftest.namespace={namespace}")]);
        assert!(err.contains("is excluded from the webhook"), "{err}");
    }
    let err = render_tests_err(&[
        "webhook.excludedNamespaces={team-a}",
        "selftest.namespace=team-a",
    ]);
    assert!(
        err.contains("\"team-a\" is excluded from the webhook"),
        "{err}"
    );
    // The default namespace: excluded only when the chart is installed
    // there, which must not fail the install; the test then explains itself.
    let pod = |docs: &[Value]| {
        strings(&one(docs, "Pod")["spec"]["containers"][0]["args"])
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        pod(&render_tests(&["selftest.namespace="])).contains(&"--namespace=default".to_owned())
    );
    let mut args = template_args("default", &[]);
    args.retain(|arg| arg != "--skip-tests");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// NOTES.txt as `helm install` prints it (client-side dry run: no cluster).
fn notes(namespace: &str, sets: &[&str]) -> String {
    let chart = chart_dir().to_string_lossy().into_owned();
    let mut args = vec![
        "install",
        "--dry-run=client",
        RELEASE,
        &chart,
        "--namespace",
        namespace,
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    let out = run_helm(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_once("NOTES:")
        .expect("NOTES printed")
        .1
        .to_owned()
}

#[test]
fn notes_and_readme_tell_users_to_run_helm_test() {
    let text = notes(NAMESPACE, &[]);
    assert!(
        text.contains(&format!("helm test {RELEASE} -n {NAMESPACE}")),
        "{text}"
    );
    assert!(text.contains(&format!("logs {SELFTEST}")), "{text}");
    assert!(!text.contains("NOTE: the webhook never sees"), "{text}");
    // Installed in `default`, the default test namespace is excluded: said.
    let text = notes("default", &[]);
    assert!(
        text.contains("NOTE: the webhook never sees namespace default"),
        "{text}"
    );
    let text = notes(NAMESPACE, &["selftest.enabled=false"]);
    assert!(!text.contains("helm test"), "{text}");
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    assert!(readme.contains("helm test vmcp-normalizer"));
    // Every exit status of `selftest --help` is explained in the README.
    for code in 1..=8 {
        assert!(
            readme.contains(&format!("| {code} |")),
            "exit status {code} missing from the chart README"
        );
    }
}

// ------------------------------------------------------- declared sets

/// Rules in values: a ConfigMap holding them that the server accepts, a
/// directory mount and `--rules`, one webhook per rule sent only its kind
/// and labels (and its workload link's), and `get` on configmaps because a
/// rule links a workload.
#[test]
fn declared_rules_render_a_checked_file_a_mount_and_one_webhook_per_rule() {
    let example = chart_dir().join("examples/values-declared-sets.yaml");
    let docs = render_raw(&["-f", example.to_str().unwrap()]);
    let rules = all_of(&docs, "ConfigMap")
        .into_iter()
        .find(|cm| cm["metadata"]["name"] == format!("{FULLNAME}-rules"))
        .expect("the rules ConfigMap");
    let text = rules["data"]["rules.yaml"].as_str().unwrap();
    let parsed = vmcp_normalizer::rules::RuleSet::from_yaml(text).expect("the server accepts it");
    assert_eq!(
        parsed
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["toolhive-vmcp", "allowed-hosts", "listener-sets"]
    );
    assert!(args(&docs).contains(&"--rules=/etc/vmcp-normalizer/rules/rules.yaml"));
    let mount = &container(&docs)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "rules")
        .expect("rules mount")
        .clone();
    assert_eq!(mount["mountPath"], "/etc/vmcp-normalizer/rules");
    assert!(
        mount.get("subPath").is_none(),
        "a subPath never sees the ..data swap"
    );

    let domain = format!("{FULLNAME}.{NAMESPACE}.svc");
    let names: Vec<&str> = webhooks(&docs)
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("configmaps.{domain}"),
            format!("deployments.{domain}"),
            format!("rule-allowed-hosts.{domain}"),
            format!("rule-allowed-hosts-workload.{domain}"),
            format!("rule-listener-sets.{domain}"),
        ]
    );
    let hosts = webhook(&docs, "rule-allowed-hosts");
    assert_eq!(hosts["rules"][0]["resources"], json!(["configmaps"]));
    assert_eq!(
        hosts["objectSelector"],
        json!({"matchLabels": {"app.kubernetes.io/name": "egress"}})
    );
    let workload = webhook(&docs, "rule-allowed-hosts-workload");
    assert_eq!(workload["rules"][0]["resources"], json!(["deployments"]));
    assert_eq!(workload["objectSelector"], hosts["objectSelector"]);
    let listeners = webhook(&docs, "rule-listener-sets");
    assert_eq!(
        listeners["rules"][0],
        json!({"apiGroups": ["example.com"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["listenersets"], "scope": "*"})
    );
    assert!(
        rbac_rules(&docs)
            .iter()
            .any(|(_, rule)| rule["resources"] == json!(["configmaps"])
                && rule["verbs"] == json!(["get"]))
    );
}

/// A file without the preset: its webhooks and its configmaps `get` go;
/// the kind's plural can be named; a file the schema refuses fails the render.
#[test]
fn rules_without_the_preset_send_only_what_they_match() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "certificates: {mode: cert-manager}\nwebhook: {ruleResources: {Policy: policies}}\nrules:\n  apiVersion: vmcp-normalizer.io/v1alpha1\n  kind: NormalizationRules\n  rules:\n    - name: policy-rules\n      match: {apiVersion: example.com/v1, kind: Policy, selector: {matchExpressions: [{key: team, operator: Exists}]}}\n      format: object\n      sets: [{path: spec.rules, by: id}]\n",
    )
    .unwrap();
    let docs = render_raw(&["-f", values.to_str().unwrap()]);
    let hooks = webhooks(&docs);
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["rules"][0]["resources"], json!(["policies"]));
    assert_eq!(
        hooks[0]["objectSelector"],
        json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]})
    );
    assert!(
        all_of(&docs, "ClusterRole").is_empty(),
        "nothing reads ConfigMaps"
    );

    // A workload link alone needs `get` on configmaps, and nothing more.
    std::fs::write(
        &values,
        "certificates: {mode: cert-manager}\nrules:\n  apiVersion: vmcp-normalizer.io/v1alpha1\n  kind: NormalizationRules\n  rules:\n    - name: hosts\n      match: {kind: ConfigMap, selector: {matchLabels: {app: egress}}}\n      key: hosts.json\n      format: json\n      sets: [{path: ., by: .}]\n      checksum: {annotation: example.com/sha256, algorithm: sha256}\n      workload: {kind: Deployment, selector: {matchLabels: {app: egress}}, annotation: example.com/sha256, configMap: {nameTemplate: '{name}-hosts'}}\n",
    )
    .unwrap();
    let docs = render_raw(&["-f", values.to_str().unwrap()]);
    assert_eq!(webhooks(&docs).len(), 2);
    let rules: Vec<Value> = rbac_rules(&docs)
        .into_iter()
        .map(|(_, rule)| rule)
        .collect();
    assert_eq!(
        rules,
        [json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]})]
    );

    std::fs::write(
        &values,
        "rules:\n  apiVersion: v1\n  kind: NormalizationRules\n",
    )
    .unwrap();
    let error = render_err_raw(&["-f", values.to_str().unwrap()]);
    assert!(error.contains("vmcp-normalizer.io/v1alpha1"), "{error}");
}

/// A StatefulSet's and a DaemonSet's workload link: each workload webhook is
/// sent its own resource in group `apps`, with no `webhook.ruleResources`;
/// a Job is refused at render, saying why.
#[test]
fn workload_links_name_the_resource_of_their_kind() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules/workloads.yaml");
    let rules = std::fs::read_to_string(fixture).unwrap();
    let indented: String = rules.lines().map(|line| format!("  {line}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        format!("certificates: {{mode: cert-manager}}\nrules:\n{indented}"),
    )
    .unwrap();
    let docs = render_raw(&["-f", values.to_str().unwrap()]);
    for (rule, resource) in [
        ("cache-peers", "statefulsets"),
        ("agent-hosts", "daemonsets"),
    ] {
        let workload = webhook(&docs, &format!("rule-{rule}-workload"));
        assert_eq!(
            workload["rules"][0],
            json!({"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": [resource], "scope": "Namespaced"}),
            "{rule}"
        );
        let configmaps = webhook(&docs, &format!("rule-{rule}"));
        assert_eq!(workload["objectSelector"], configmaps["objectSelector"]);
    }

    let job = rules.replace("kind: DaemonSet", "kind: Job");
    let indented: String = job.lines().map(|line| format!("  {line}\n")).collect();
    std::fs::write(
        &values,
        format!("certificates: {{mode: cert-manager}}\nrules:\n{indented}"),
    )
    .unwrap();
    let error = render_err_raw(&["-f", values.to_str().unwrap()]);
    assert!(
        error.contains(
            "rule agent-hosts: workload kind Job is not one of Deployment, StatefulSet, DaemonSet"
        ),
        "{error}"
    );
}

// ------------------------------------------- a declared rule's name pattern

/// What every name condition starts with: false, never an error, without a
/// string name (an erroring condition follows failurePolicy).
const NAME_GUARD: &str = "object != null && has(object.metadata) && has(object.metadata.name) && type(object.metadata.name) == string && ";
const NAME_CONDITION: &str = "vmcp-normalizer-match-name";

/// The condition every rule of [`named_rule`] gets for its data key `k`.
fn key_condition() -> Value {
    json!({"name": "vmcp-normalizer-match-key", "expression": "object != null && has(object.data) && 'k' in object.data"})
}

/// A rule of format json on ConfigMaps, with `name` as its `match.name`.
fn named_rule(rule: &str, pattern: Option<&str>) -> Value {
    let mut matches = json!({"kind": "ConfigMap"});
    if let Some(pattern) = pattern {
        matches["name"] = json!(pattern);
    }
    json!({"name": rule, "match": matches, "key": "k", "format": "json", "sets": [{"path": ".", "by": "."}]})
}

/// Values with these rules (and `webhook` values), as JSON (which is YAML),
/// so any pattern is written exactly.
fn rules_values(rules: Vec<Value>, webhook: Value) -> Value {
    json!({
        "certificates": {"mode": "cert-manager"},
        "webhook": webhook,
        "rules": {"apiVersion": "vmcp-normalizer.io/v1alpha1", "kind": "NormalizationRules", "rules": rules},
    })
}

/// `helm template -f` the values (plus raw arguments); the manifests, or
/// helm's error.
fn render_values(values: &Value, extra: &[&str]) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.json");
    std::fs::write(&path, values.to_string()).unwrap();
    let mut args = template_args(NAMESPACE, &[]);
    args.extend(["-f".to_owned(), path.to_string_lossy().into_owned()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_helm(&args);
    if out.status.success() {
        Ok(parse_docs(&String::from_utf8(out.stdout).unwrap()))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `render_values` that must fail; helm's error.
fn render_values_err(values: &Value, extra: &[&str]) -> String {
    match render_values(values, extra) {
        Ok(docs) => panic!("rendered {} manifests, should have failed", docs.len()),
        Err(error) => error,
    }
}

fn global_conditions(count: usize) -> Value {
    (0..count)
        .map(|i| json!({"name": format!("c{i}"), "expression": "!request.dryRun"}))
        .collect()
}

/// The value of the CEL single-quoted string literal `text` starts with, as
/// CEL reads it, and the text after it. Panics on what CEL would refuse (a
/// raw newline, an unknown escape, no closing quote).
fn cel_string(text: &str) -> (String, &str) {
    let mut chars = text.char_indices();
    assert_eq!(
        chars.next(),
        Some((0, '\'')),
        "not a single-quoted literal: {text}"
    );
    let mut value = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '\'' => return (value, &text[at + 1..]),
            '\n' | '\r' => panic!("CEL refuses a raw line break in a string: {text:?}"),
            '\\' => {
                let (_, escaped) = chars.next().expect("escape at the end");
                value.push(match escaped {
                    '\\' | '\'' | '"' | '`' | '?' => escaped,
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    'x' | 'u' | 'U' => {
                        let digits = match escaped {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..digits).map(|_| chars.next().unwrap().1).collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
                    }
                    other => panic!("CEL knows no escape \\{other}: {text:?}"),
                });
            }
            c => value.push(c),
        }
    }
    panic!("unterminated CEL string: {text:?}")
}

/// A rendered name condition, read back: the regex, or the name compared.
enum NameTest {
    Regex(regex::Regex),
    Equal(String),
}

impl NameTest {
    fn parse(expression: &str) -> NameTest {
        let test = expression
            .strip_prefix(NAME_GUARD)
            .unwrap_or_else(|| panic!("no guard: {expression}"));
        if let Some(literal) = test.strip_prefix("object.metadata.name.matches(") {
            let (regex, rest) = cel_string(literal);
            assert_eq!(rest, ")", "{expression}");
            NameTest::Regex(regex::Regex::new(&regex).unwrap_or_else(|e| panic!("{regex:?}: {e}")))
        } else {
            let literal = test
                .strip_prefix("object.metadata.name == ")
                .unwrap_or_else(|| panic!("neither matches() nor ==: {expression}"));
            let (name, rest) = cel_string(literal);
            assert_eq!(rest, "", "{expression}");
            NameTest::Equal(name)
        }
    }

    fn accepts(&self, name: &str) -> bool {
        match self {
            NameTest::Regex(regex) => regex.is_match(name),
            NameTest::Equal(wanted) => wanted == name,
        }
    }
}

fn name_condition(hook: &Value) -> &str {
    let conditions = hook["matchConditions"].as_array().expect("matchConditions");
    let found: Vec<&Value> = conditions
        .iter()
        .filter(|c| c["name"] == NAME_CONDITION)
        .collect();
    assert_eq!(found.len(), 1, "{conditions:?}");
    found[0]["expression"].as_str().unwrap()
}

/// A rule's `match.name` reaches its webhook as a CEL condition: a regex for
/// a pattern with `*` (metacharacters in a class or escaped, anchored), plain
/// equality without; after the global conditions; none without a pattern.
#[test]
fn a_rule_name_pattern_renders_as_a_cel_match_condition() {
    let patterns = [
        ("gateways", Some("*-gateway")),
        ("abc", Some("a*b*c")),
        ("meta", Some(r"v1.2+x*(a)?|{1}$^[z]\'")),
        ("exact", Some("demo.vmcp+1")),
        ("quoted", Some(r"it's\")),
        ("any", None),
    ];
    let rules = patterns
        .iter()
        .map(|(rule, pattern)| named_rule(rule, *pattern))
        .collect();
    let global = json!({"name": "not-dry-run", "expression": "!request.dryRun"});
    let values = rules_values(rules, json!({"matchConditions": [global]}));
    let docs = render_values(&values, &[]).unwrap();
    let expected = [
        (
            "gateways",
            r"object.metadata.name.matches('(?s)^.*-gateway$')",
        ),
        ("abc", r"object.metadata.name.matches('(?s)^a.*b.*c$')"),
        (
            "meta",
            r"object.metadata.name.matches('(?s)^v1[.]2[+]x.*[(]a[)][?][|][{]1[}][$]\\^\\[z\\]\\\\\'$')",
        ),
        ("exact", "object.metadata.name == 'demo.vmcp+1'"),
        ("quoted", r"object.metadata.name == 'it\'s\\'"),
    ];
    for (rule, test) in expected {
        let hook = webhook(&docs, &format!("rule-{rule}"));
        assert_eq!(
            hook["matchConditions"],
            json!([global, key_condition(), {"name": NAME_CONDITION, "expression": format!("{NAME_GUARD}{test}")}]),
            "rule {rule}"
        );
    }
    assert_eq!(
        webhook(&docs, "rule-any")["matchConditions"],
        json!([global, key_condition()])
    );
    // The chart README shows the condition as rendered.
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    assert!(readme.contains(&format!("`{NAME_GUARD}{}`", expected[0].1)));

    // Without global conditions: the key and name conditions; the key's alone
    // for a rule without a pattern.
    let values = rules_values(
        vec![
            named_rule("gateways", Some("*-gateway")),
            named_rule("any", None),
        ],
        json!({}),
    );
    let docs = render_values(&values, &[]).unwrap();
    assert_eq!(
        webhook(&docs, "rule-gateways")["matchConditions"],
        json!([key_condition(), {"name": NAME_CONDITION, "expression": format!("{NAME_GUARD}{}", expected[0].1)}])
    );
    assert_eq!(
        webhook(&docs, "rule-any")["matchConditions"],
        json!([key_condition()])
    );
}

/// The rendered condition, read as CEL reads its string and compiled as a
/// regex, accepts exactly the names the server's matcher does.
#[test]
fn a_rule_name_condition_matches_exactly_what_the_server_matches() {
    let patterns = [
        "*-gateway",
        "a*b*c",
        "a*a",
        "aa*aa",
        "ab*ba",
        "*",
        "**",
        "a**b",
        "*a*",
        "***x***",
        "exact",
        "x.y",
        "a.b+c*",
        ".*",
        "^a$",
        "(?i)A*",
        "[a-z]*",
        "a|b*",
        "{1}*",
        r"a\b*",
        r"\d*",
        r"*\",
        "it's*",
        "$*^",
        "a?*",
        "(*)",
        "[*]",
        "]*[",
        "-*&&~~--",
        "é*ü",
        "line\nbreak*",
        "a*\r",
        "+",
        "# x *",
    ];
    let rules = patterns
        .iter()
        .enumerate()
        .map(|(i, pattern)| named_rule(&format!("p{i}"), Some(pattern)))
        .collect();
    let docs = render_values(&rules_values(rules, json!({})), &[]).unwrap();

    // The server reads the same patterns from the rendered rules file.
    let file = all_of(&docs, "ConfigMap")
        .into_iter()
        .find(|cm| cm["metadata"]["name"] == format!("{FULLNAME}-rules"))
        .expect("the rules ConfigMap");
    let parsed =
        vmcp_normalizer::rules::RuleSet::from_yaml(file["data"]["rules.yaml"].as_str().unwrap())
            .expect("the server accepts the rules");
    let read: Vec<Option<&str>> = parsed
        .rules()
        .iter()
        .map(|rule| rule.matcher.name.as_deref())
        .collect();
    assert_eq!(read, patterns.map(Some));

    let common = [
        "",
        "a",
        "aa",
        "aaa",
        "aaaa",
        "ab",
        "abc",
        "aXbYc",
        "acb",
        "aba",
        "abba",
        "abXba",
        "x",
        "xy",
        "x.y",
        "xzy",
        "a.b+c",
        "aab+c",
        "A",
        "aA",
        "demo-gateway",
        "-gateway",
        "gateway",
        "demo-gateway2",
        "it's",
        "its",
        "\\",
        r"a\b",
        r"a\bc",
        ".",
        "\n",
        "line\nbreak",
        "linebreak",
        "é",
        "éü",
        "éxü",
        "$^",
        "$x^",
        "d",
        r"\d",
        "{1}",
        "(x)",
        "[x]",
        "]x[",
    ];
    for (i, pattern) in patterns.iter().enumerate() {
        let hook = webhook(&docs, &format!("rule-p{i}"));
        let test = NameTest::parse(name_condition(hook));
        assert_eq!(
            matches!(test, NameTest::Equal(_)),
            !pattern.contains('*'),
            "{pattern:?}: equality exactly when there is no `*`"
        );
        // The pattern itself, with each `*` as nothing, a character, a line
        // break; every prefix and suffix of those.
        let mut names: Vec<String> = common.iter().map(|s| (*s).to_owned()).collect();
        for filler in ["", "*", "Q", "\n", "-gateway"] {
            let name = pattern.replace('*', filler);
            for (at, _) in name.char_indices().skip(1) {
                names.push(name[..at].to_owned());
                names.push(name[at..].to_owned());
            }
            names.push(name);
        }
        let mut accepted = 0;
        for name in &names {
            let server = vmcp_normalizer::rules::name_matches(pattern, name);
            assert_eq!(
                test.accepts(name),
                server,
                "pattern {pattern:?}, name {name:?}: the server says {server}"
            );
            accepted += usize::from(server);
        }
        // Both sides are tried (all names fit a pattern of `*` only).
        let only_stars = pattern.chars().all(|c| c == '*');
        assert!(accepted > 0, "{pattern:?}: no name fits");
        assert_eq!(accepted == names.len(), only_stars, "{pattern:?}");
    }
}

/// At most 64 conditions per webhook, names unique, and a pattern the
/// server refuses fails the render (also without the schema).
#[test]
fn a_rule_name_condition_keeps_kubernetes_limits_and_the_servers_checks() {
    let named = || vec![named_rule("gateways", Some("*-gateway"))];
    // 62 global conditions, the key and the name: 64, the most Kubernetes
    // allows.
    let docs = render_values(
        &rules_values(named(), json!({"matchConditions": global_conditions(62)})),
        &[],
    )
    .unwrap();
    let hook = webhook(&docs, "rule-gateways");
    assert_eq!(hook["matchConditions"].as_array().unwrap().len(), 64);
    // 63 and a rule without a pattern: 64 with its key.
    let docs = render_values(
        &rules_values(
            vec![named_rule("any", None)],
            json!({"matchConditions": global_conditions(63)}),
        ),
        &[],
    )
    .unwrap();
    assert_eq!(
        webhook(&docs, "rule-any")["matchConditions"]
            .as_array()
            .unwrap()
            .len(),
        64
    );
    // 63, the key and the name: 65.
    let error = render_values_err(
        &rules_values(named(), json!({"matchConditions": global_conditions(63)})),
        &[],
    );
    for part in [
        "rules.rules[0].match.name",
        "webhook.matchConditions",
        "would have 65",
        "at most 64",
    ] {
        assert!(error.contains(part), "{part}: {error}");
    }
    // 65 global conditions, without the schema that limits them.
    let error = render_values_err(
        &rules_values(
            vec![named_rule("any", None)],
            json!({"matchConditions": global_conditions(65)}),
        ),
        &["--skip-schema-validation"],
    );
    assert!(
        error.contains("webhook.matchConditions has 65 conditions"),
        "{error}"
    );
    // A global condition of the same name.
    let error = render_values_err(
        &rules_values(
            named(),
            json!({"matchConditions": [{"name": NAME_CONDITION, "expression": "true"}]}),
        ),
        &[],
    );
    assert!(
        error.contains("webhook.matchConditions names a condition vmcp-normalizer-match-name"),
        "{error}"
    );
    // An empty pattern (the server refuses it) and one that is not a string.
    // The schema names it as a JSON pointer, the template as a path.
    for (extra, names) in [
        (&[][..], "/rules/rules/0/match/name"),
        (
            &["--skip-schema-validation"][..],
            "rules.rules[0].match.name is empty",
        ),
    ] {
        let error = render_values_err(
            &rules_values(vec![named_rule("empty", Some(""))], json!({})),
            extra,
        );
        assert!(error.contains(names), "{extra:?}: {error}");
    }
    let mut number = named_rule("number", None);
    number["match"]["name"] = json!(7);
    let error = render_values_err(
        &rules_values(vec![number], json!({})),
        &["--skip-schema-validation"],
    );
    assert!(
        error.contains("rules.rules[0].match.name must be a name pattern as a string"),
        "{error}"
    );
}

/// A data rule's webhook is sent only ConfigMaps that hold its key (the
/// server's rule matches no other); an object rule's has no such condition.
#[test]
fn a_data_rule_webhook_is_sent_only_configmaps_with_its_key() {
    let mut quoted = named_rule("quoted", None);
    quoted["key"] = json!("it's.yaml");
    let object = json!({"name": "listeners", "match": {"apiVersion": "example.com/v1", "kind": "ListenerSet"},
        "format": "object", "sets": [{"path": "spec.listeners", "by": "name"}]});
    let docs = render_values(
        &rules_values(vec![named_rule("plain", None), quoted, object], json!({})),
        &[],
    )
    .unwrap();
    assert_eq!(
        webhook(&docs, "rule-plain")["matchConditions"],
        json!([key_condition()])
    );
    assert_eq!(
        webhook(&docs, "rule-quoted")["matchConditions"],
        json!([{"name": "vmcp-normalizer-match-key",
            "expression": r"object != null && has(object.data) && 'it\'s.yaml' in object.data"}])
    );
    assert!(webhook(&docs, "rule-listeners")["matchConditions"].is_null());
    // The preset's own webhooks are unchanged: no conditions of their own.
    let error = render_values_err(
        &rules_values(
            vec![named_rule("plain", None)],
            json!({"matchConditions": [{"name": "vmcp-normalizer-match-key", "expression": "true"}]}),
        ),
        &[],
    );
    assert!(
        error.contains("webhook.matchConditions names a condition vmcp-normalizer-match-key"),
        "{error}"
    );
}

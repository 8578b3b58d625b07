//! `vmcp-normalizer selftest`, the real binary, against the in-process API
//! stand-in, which admits its dry-run creates through the real webhook
//! server over HTTPS as kube-apiserver does (tests/common/apiserver.rs).
//! One test per outcome the command tells apart: the exit status and the
//! words of the explanation.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine as _;
use common::apiserver::{self, ApiServer, Fault, ResourceRef};
use common::{Pki, TestServer, write_pair};
use serde_json::{Value, json};
use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::checksum_sync::WorkloadChecksumSync;
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::server::ServerOptions;

/// A namespace the webhook watches.
const WATCHED: &str = "team-a";
/// The release namespace, which the chart's namespaceSelector excludes.
const RELEASE_NAMESPACE: &str = "vmcp-system";
const CONFIGURATION: &str = "vmcp-normalizer";
const PROBE_CONFIGMAP: &str = "vmcp-normalizer-selftest-vmcp-config";

/// The stand-in, the real webhook server (its Deployment lookups go to the
/// stand-in too), and the chart's webhook configuration pointing at it.
struct Cluster {
    api: ApiServer,
    server: TestServer,
    pki: Pki,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    async fn start() -> Self {
        common::install_crypto_provider();
        let api = ApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path());
        let metrics = Arc::new(Metrics::new());
        let sync = WorkloadChecksumSync::connect(Some(&kubeconfig), metrics.clone())
            .await
            .expect("the kubeconfig loads");
        let admission = Admission::new(metrics).with_workload_mutator(Arc::new(sync));
        let pki = Pki::new();
        let files = write_pair(dir.path(), &pki.leaf());
        let server = TestServer::start_with(ServerOptions::new(files), admission).await;
        let cluster = Self {
            api,
            server,
            pki,
            dir,
            kubeconfig,
        };
        let configuration = cluster.webhook_configuration();
        cluster.api.insert(configuration);
        for namespace in [WATCHED, RELEASE_NAMESPACE] {
            cluster
                .api
                .insert(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace}}));
        }
        cluster
    }

    /// What the chart renders (two webhooks, the namespaceSelector on
    /// kubernetes.io/metadata.name, the objectSelectors), with the caBundle
    /// the server's certificate chains to and a URL on loopback instead of
    /// the Service.
    fn webhook_configuration(&self) -> Value {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.pki.ca_pem);
        let url = self.server.url("/mutate");
        let common = |name: &str, group: &str, resource: &str, selector: Value| {
            json!({
                "name": format!("{name}.{CONFIGURATION}.{RELEASE_NAMESPACE}.svc"),
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "timeoutSeconds": 3,
                "reinvocationPolicy": "IfNeeded",
                "matchPolicy": "Equivalent",
                "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                    "operator": "NotIn", "values": [RELEASE_NAMESPACE, "kube-system", "kube-node-lease"]}]},
                "clientConfig": {"url": url, "caBundle": ca},
                "rules": [{"apiGroups": [group], "apiVersions": ["v1"],
                           "operations": ["CREATE", "UPDATE"], "resources": [resource],
                           "scope": "Namespaced"}],
                "objectSelector": selector,
            })
        };
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": CONFIGURATION},
            "webhooks": [
                common("configmaps", "", "configmaps",
                       json!({"matchLabels": {"toolhive.stacklok.io/component": "vmcp-config"}})),
                common("deployments", "apps", "deployments",
                       json!({"matchLabels": {"app.kubernetes.io/name": "virtualmcpserver"},
                              "matchExpressions": [{"key": "app.kubernetes.io/instance", "operator": "Exists"}]})),
            ]
        })
    }

    fn configuration_path() -> String {
        format!(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{CONFIGURATION}"
        )
    }

    /// Change the stored webhook configuration.
    fn edit_configuration(&self, edit: impl FnOnce(&mut Value)) {
        let mut configuration = self
            .api
            .object(&Self::configuration_path())
            .expect("stored");
        edit(&mut configuration);
        self.api.put(&Self::configuration_path(), configuration);
    }

    async fn selftest(&self, namespace: &str) -> Run {
        let kubeconfig = self.kubeconfig.to_str().unwrap().to_owned();
        run_selftest(&[
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            namespace,
            "--webhook-configuration",
            CONFIGURATION,
            "--timeout",
            "5s",
        ])
        .await
    }

    /// The POSTs the stand-in received for `resource` in `namespace`, with
    /// whether each carried `dryRun=All`.
    fn posts(&self, namespace: &str, resource: &str) -> Vec<bool> {
        let group = if resource == "deployments" {
            "/apis/apps/v1"
        } else {
            "/api/v1"
        };
        let path = format!("{group}/namespaces/{namespace}/{resource}");
        self.api
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .map(|r| {
                r.query
                    .as_deref()
                    .unwrap_or("")
                    .split('&')
                    .any(|pair| pair == "dryRun=All")
            })
            .collect()
    }

    /// Nothing the self-test wrote is stored, in any namespace.
    fn assert_nothing_left(&self) {
        for request in self.api.requests() {
            if request.method == "POST"
                && let Ok(body) = serde_json::from_slice::<Value>(&request.body)
                && let Some(name) = body["metadata"]["name"].as_str()
            {
                let path = format!("{}/{name}", request.path);
                assert!(self.api.object(&path).is_none(), "{path} left behind");
            }
        }
    }
}

/// One run of the binary.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run_selftest(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vmcp-normalizer"));
    command
        .arg("selftest")
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("VMCP_NORMALIZER_KUBECONFIG")
        .env_remove("VMCP_NORMALIZER_SELFTEST_NAMESPACE")
        .env_remove("VMCP_NORMALIZER_WEBHOOK_CONFIGURATION")
        .env("HOME", "/nonexistent");
    // The stand-in and the webhook run on this test's runtime meanwhile.
    let output: Output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run the binary");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_fails(run: &Run, code: i32, words: &[&str]) {
    eprintln!("SHOW {}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(code), "{run:#?}");
    assert!(run.stderr.starts_with("FAIL: "), "{run:#?}");
    for word in words {
        assert!(run.stderr.contains(word), "{word:?} not in {run:#?}");
    }
    assert!(!run.stdout.contains("PASS"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_webhook_passes_and_nothing_is_left_behind() {
    let cluster = Cluster::start().await;
    let run = cluster.selftest(WATCHED).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stdout.contains("ok: ConfigMap"), "{run:#?}");
    assert!(run.stdout.contains("ok: Deployment"), "{run:#?}");
    assert!(
        run.stdout.contains(
            "PASS: the webhook normalizes vMCP ConfigMaps and Deployments in namespace team-a"
        ),
        "{run:#?}"
    );
    assert_eq!(run.stderr, "");

    // The ConfigMap check is a dry run; the Deployment check stores its
    // ConfigMap for real (the webhook must read it) and dry-runs the
    // Deployment.
    assert_eq!(cluster.posts(WATCHED, "configmaps"), [true, false]);
    assert_eq!(cluster.posts(WATCHED, "deployments"), [true]);
    // The stored ConfigMap is deleted by its uid.
    let deletes: Vec<_> = cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(
        deletes[0].path,
        apiserver::configmap_path(WATCHED, PROBE_CONFIGMAP)
    );
    let options: Value = serde_json::from_slice(&deletes[0].body).unwrap();
    assert!(
        options["preconditions"]["uid"]
            .as_str()
            .is_some_and(|uid| !uid.is_empty()),
        "{options}"
    );
    cluster.assert_nothing_left();

    // The webhook really was called: three reviews, all patched; the
    // Deployment's ConfigMap read live from the stand-in.
    let metrics = cluster.server.metrics_text().await;
    for line in [
        r#"vmcp_normalizer_admission_requests_total{kind="ConfigMap",operation="CREATE",outcome="patched"} 2"#,
        r#"vmcp_normalizer_admission_requests_total{kind="Deployment",operation="CREATE",outcome="patched"} 1"#,
        r#"vmcp_normalizer_configmap_lookups_total{outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_probe_configmap_is_replaced_and_removed() {
    let cluster = Cluster::start().await;
    cluster.api.insert(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": PROBE_CONFIGMAP, "namespace": WATCHED},
        "data": {"config.yaml": "left: by an interrupted run\n"},
    }));
    let run = cluster.selftest(WATCHED).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout.contains("left by an interrupted run"),
        "{run:#?}"
    );
    assert!(
        cluster
            .api
            .object(&apiserver::configmap_path(WATCHED, PROBE_CONFIGMAP))
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_ca_bundle_is_named() {
    let cluster = Cluster::start().await;
    cluster.edit_configuration(|configuration| {
        for webhook in configuration["webhooks"].as_array_mut().unwrap() {
            webhook["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("caBundle");
        }
    });
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        3,
        &[
            "ConfigMap: the webhook configmaps.vmcp-normalizer.vmcp-system.svc",
            "has no caBundle yet",
        ],
    );
    // The verdict came from the dry run, which the stand-in let through
    // unchanged (fail open); nothing stored, no stored ConfigMap made.
    assert_eq!(cluster.posts(WATCHED, "configmaps"), [true]);
    cluster.assert_nothing_left();
    // Every series is exported from zero: the webhook reviewed nothing.
    let metrics = cluster.server.metrics_text().await;
    let reviews: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("vmcp_normalizer_admission_requests_total{"))
        .collect();
    assert!(!reviews.is_empty(), "no admission series in:\n{metrics}");
    assert!(
        reviews.iter().all(|line| line.ends_with("} 0")),
        "{reviews:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_is_reported_as_failing_open() {
    let cluster = Cluster::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    cluster.edit_configuration(|configuration| {
        for webhook in configuration["webhooks"].as_array_mut().unwrap() {
            webhook["clientConfig"]["url"] = json!(format!("https://localhost:{port}/mutate"));
        }
    });
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        1,
        &[
            "ConfigMap: the dry-run answer came back unchanged",
            "failed open",
        ],
    );
    assert_eq!(cluster.posts(WATCHED, "configmaps"), [true]);
    cluster.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_the_selector_excludes_is_named() {
    let cluster = Cluster::start().await;
    let run = cluster.selftest(RELEASE_NAMESPACE).await;
    assert_fails(
        &run,
        4,
        &[
            "the namespaceSelector of webhook configmaps.vmcp-normalizer.vmcp-system.svc excludes this test",
            "kubernetes.io/metadata.name=vmcp-system",
            "selftest.namespace",
        ],
    );
    assert_eq!(cluster.posts(RELEASE_NAMESPACE, "configmaps"), [true]);
    cluster.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_label_the_selector_excludes_is_read_from_the_namespace() {
    let cluster = Cluster::start().await;
    cluster.edit_configuration(|configuration| {
        configuration["webhooks"][1]["namespaceSelector"] =
            json!({"matchLabels": {"vmcp-normalizer/enabled": "true"}});
    });
    // With the label the Deployment webhook selects, it passes...
    cluster
        .api
        .insert(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": WATCHED, "labels": {"vmcp-normalizer/enabled": "true"}}}));
    assert_eq!(cluster.selftest(WATCHED).await.code, Some(0));
    // ...without it, the Deployment check says why before writing anything.
    cluster
        .api
        .insert(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": WATCHED, "labels": {}}}));
    let stored_before = cluster.posts(WATCHED, "configmaps").len();
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        4,
        &[
            "Deployment: the namespaceSelector of webhook deployments.",
            "needs label vmcp-normalizer/enabled=true",
        ],
    );
    assert!(run.stdout.contains("ok: ConfigMap"), "{run:#?}");
    // Only the ConfigMap dry run was sent this time.
    assert_eq!(
        cluster.posts(WATCHED, "configmaps").len(),
        stored_before + 1
    );
    cluster.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_denials_are_named() {
    let cluster = Cluster::start().await;
    let collection = format!("/api/v1/namespaces/{WATCHED}/configmaps");
    let forbidden_create =
        apiserver::forbidden("create", &ResourceRef::parse(&collection).unwrap());
    cluster
        .api
        .fail("POST", &collection, Fault::Status(forbidden_create));
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        5,
        &[
            "RBAC denied: dry-run create of ConfigMap",
            "cannot create resource \"configmaps\"",
        ],
    );
    cluster.api.clear_faults();

    // The webhook configuration read is refused.
    let path = Cluster::configuration_path();
    cluster
        .api
        .fail("GET", &path, apiserver::forbidden_get(&path));
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        5,
        &[
            "RBAC denied: get MutatingWebhookConfiguration vmcp-normalizer",
            "cannot get resource \"mutatingwebhookconfigurations\"",
        ],
    );
    cluster.api.clear_faults();

    // The cleanup is refused: the failure says what is left and how to
    // remove it.
    let probe = apiserver::configmap_path(WATCHED, PROBE_CONFIGMAP);
    let forbidden_delete = apiserver::forbidden("delete", &ResourceRef::parse(&probe).unwrap());
    cluster
        .api
        .fail("DELETE", &probe, Fault::Status(forbidden_delete));
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        5,
        &["RBAC denied: delete ConfigMap vmcp-normalizer-selftest-vmcp-config"],
    );
    assert!(
        run.stdout.contains(&format!(
            "kubectl -n {WATCHED} delete configmap {PROBE_CONFIGMAP}"
        )),
        "{run:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_and_a_missing_configuration_are_named() {
    let cluster = Cluster::start().await;
    cluster.api.remove(&Cluster::configuration_path());
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        7,
        &["MutatingWebhookConfiguration vmcp-normalizer not found"],
    );

    // A kubeconfig pointing at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig)
        .unwrap()
        .replace(&cluster.api.url(), &format!("https://127.0.0.1:{port}"));
    let path = cluster.dir.path().join("closed-kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();
    let run = run_selftest(&[
        "--kubeconfig",
        path.to_str().unwrap(),
        "--namespace",
        WATCHED,
        "--timeout",
        "2s",
    ])
    .await;
    assert_fails(&run, 6, &["cannot reach the API server"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_answers_without_patching_passes_on_its_warning() {
    let cluster = Cluster::start().await;
    // The webhook's own read of the probe ConfigMap is refused.
    let probe = apiserver::configmap_path(WATCHED, PROBE_CONFIGMAP);
    cluster
        .api
        .fail("GET", &probe, apiserver::forbidden_get(&probe));
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        8,
        &[
            "Deployment: the webhook answered but left the object unchanged",
            "not allowed to read ConfigMap",
        ],
    );
    cluster.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_configuration_name_a_failure_is_reported_not_explained() {
    let cluster = Cluster::start().await;
    cluster.edit_configuration(|configuration| {
        configuration["webhooks"][0]["clientConfig"]["caBundle"] = json!("");
    });
    let kubeconfig = cluster.kubeconfig.to_str().unwrap().to_owned();
    let run = run_selftest(&["--kubeconfig", &kubeconfig, "--namespace", WATCHED]).await;
    assert_fails(
        &run,
        1,
        &["came back unchanged", "give --webhook-configuration"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_selector_that_excludes_the_probe_is_named() {
    let cluster = Cluster::start().await;
    cluster.edit_configuration(|configuration| {
        configuration["webhooks"][0]["objectSelector"]["matchLabels"]["team"] = json!("a");
    });
    let run = cluster.selftest(WATCHED).await;
    assert_fails(
        &run,
        4,
        &[
            "the objectSelector of webhook configmaps.",
            "needs label team=a",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_never_answers_is_cut_off_at_the_timeout() {
    let cluster = Cluster::start().await;
    let collection = format!("/api/v1/namespaces/{WATCHED}/configmaps");
    cluster.api.fail("POST", &collection, Fault::Hang);
    let kubeconfig = cluster.kubeconfig.to_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let run = run_selftest(&[
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        WATCHED,
        "--timeout",
        "1s",
    ])
    .await;
    assert_fails(
        &run,
        6,
        &["cannot reach the API server", "no answer within 1s"],
    );
    // Loose: the point is that it does not wait for ever.
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_defaults_to_the_kubeconfig_context() {
    let cluster = Cluster::start().await;
    let kubeconfig = cluster.kubeconfig.to_str().unwrap().to_owned();
    // The stand-in's kubeconfig names namespace `default`.
    let run = run_selftest(&["--kubeconfig", &kubeconfig]).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stdout.contains("namespace default"), "{run:#?}");
    assert_eq!(cluster.posts("default", "configmaps"), [true, false]);
    assert_eq!(cluster.posts("default", "deployments"), [true]);
    cluster.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_switched_off_skips_its_check() {
    let cluster = Cluster::start().await;
    // webhook.deployments.enabled=false: the configuration has one webhook.
    cluster.edit_configuration(|configuration| {
        configuration["webhooks"]
            .as_array_mut()
            .unwrap()
            .truncate(1);
    });
    let run = cluster.selftest(WATCHED).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stdout.contains("skip: Deployment"), "{run:#?}");
    assert!(
        run.stdout
            .contains("PASS: the webhook normalizes vMCP ConfigMaps in namespace team-a"),
        "{run:#?}"
    );
    // Nothing stored, not even for a moment.
    assert_eq!(cluster.posts(WATCHED, "configmaps"), [true]);
    assert!(cluster.posts(WATCHED, "deployments").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_that_is_not_a_name_is_refused_before_any_request() {
    let cluster = Cluster::start().await;
    let run = cluster.selftest("team-a/configmaps/x").await;
    assert_fails(&run, 2, &["is not a namespace name"]);
    assert!(cluster.api.requests().is_empty());
}

#[tokio::test]
async fn help_lists_every_exit_status() {
    let run = run_selftest(&["--help"]).await;
    assert_eq!(run.code, Some(0));
    for line in [
        "0  both checks passed",
        "1  the answer came back unnormalized",
        "3  the webhook's caBundle is empty",
        "4  the webhook's namespaceSelector or objectSelector excludes the test",
        "5  RBAC denied",
        "6  the API server did not answer",
        "7  the MutatingWebhookConfiguration does not exist",
        "8  the webhook answered, but not as it should",
    ] {
        assert!(run.stdout.contains(line), "{line:?} not in {}", run.stdout);
    }
}

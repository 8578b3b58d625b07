//! Deployment reviews through the real server, with the ConfigMap read live
//! from an in-process Kubernetes API stand-in reached through a kubeconfig.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::apiserver::{self, ApiServer, Fault, configmap_path};
use common::process::Process;
use common::{
    Http, Pki, TestServer, client, decode_patch, fixture, post_review, review, write_pair,
};
use serde_json::{Value, json};
use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::checksum_sync::WorkloadChecksumSync;
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::server::ServerOptions;

const RUNCONFIG: &str = "toolhive.stacklok.dev/runconfig-checksum";
/// The buggy fixture ConfigMap's stored checksum, which the fixture
/// Deployment carries.
const BUGGY_CHECKSUM: &str = "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48";
/// The checksum of the fixture ConfigMap in canonical order.
const CANONICAL_CHECKSUM: &str = "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee";
const NAMESPACE: &str = "toolhive-system";
const CONFIGMAP: &str = "demo-vmcp-vmcp-config";

/// The stand-in, a kubeconfig for it, and the real webhook server whose
/// Deployment mutator was built from that kubeconfig, as `serve` builds it.
struct Cluster {
    api: ApiServer,
    pki: Pki,
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        let api = ApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path());
        Self::start_with_kubeconfig(api, dir, kubeconfig).await
    }

    async fn start_with_kubeconfig(
        api: ApiServer,
        dir: tempfile::TempDir,
        kubeconfig: PathBuf,
    ) -> Self {
        common::install_crypto_provider();
        let metrics = Arc::new(Metrics::new());
        let sync = WorkloadChecksumSync::connect(Some(&kubeconfig), metrics.clone())
            .await
            .expect("the kubeconfig loads");
        let admission = Admission::new(metrics).with_workload_mutator(Arc::new(sync));
        Self::start_server(api, dir, admission).await
    }

    async fn start_server(api: ApiServer, dir: tempfile::TempDir, admission: Admission) -> Self {
        let pki = Pki::new();
        let files = write_pair(dir.path(), &pki.leaf());
        let server = TestServer::start_with(ServerOptions::new(files), admission).await;
        Self {
            api,
            pki,
            server,
            _dir: dir,
        }
    }

    /// POST a review to `/mutate?timeout=...`: the answer and how long it took.
    async fn review_with_timeout(
        &self,
        http: Http,
        body: &Value,
        timeout: &str,
    ) -> (Value, Duration) {
        let client = client(&self.pki.ca_pem, self.server.addr, http);
        let url = self.server.url(&format!("/mutate?timeout={timeout}"));
        let started = Instant::now();
        let (status, bytes) = post_review(&client, &url, body).await.expect("request");
        let elapsed = started.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        (
            serde_json::from_slice(&bytes).expect("JSON review"),
            elapsed,
        )
    }

    async fn review(&self, body: &Value) -> Value {
        self.review_with_timeout(Http::V2, body, "10s").await.0
    }

    async fn metrics(&self) -> String {
        self.server.metrics_text().await
    }

    fn configmap_gets(&self) -> usize {
        self.api.count("GET", &configmap_path(NAMESPACE, CONFIGMAP))
    }
}

fn deployment_with(annotation: Option<&str>) -> Value {
    let mut deployment = fixture("vmcp-deployment.yaml");
    let annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap();
    match annotation {
        Some(value) => {
            annotations.insert(RUNCONFIG.into(), json!(value));
        }
        None => {
            annotations.remove(RUNCONFIG);
        }
    }
    deployment
}

fn create(deployment: &Value) -> Value {
    review("uid-d", "CREATE", deployment, None)
}

fn assert_allowed_without_patch_or_warning(answer: &Value) {
    assert_eq!(
        answer,
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": "uid-d", "allowed": true}}),
    );
}

/// Apply the answer's patch to `deployment` and check that exactly the
/// checksum annotation changed, to `expected`.
fn assert_checksum_patched(answer: &Value, deployment: &Value, expected: &str) {
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let patch = decode_patch(answer).expect("a patch");
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([{"op": "replace",
                "path": "/spec/template/metadata/annotations/toolhive.stacklok.dev~1runconfig-checksum",
                "value": expected}]),
    );
    let mut patched = deployment.clone();
    json_patch::patch(&mut patched, &patch).expect("the patch applies to the request object");
    let mut want = deployment.clone();
    want["spec"]["template"]["metadata"]["annotations"][RUNCONFIG] = json!(expected);
    assert_eq!(patched, want, "nothing but the annotation changed");
    for warning in answer["response"]["warnings"].as_array().expect("warnings") {
        assert!(warning.as_str().unwrap().len() < 120, "{warning}");
    }
    assert_eq!(
        answer["response"]["auditAnnotations"]["normalized"],
        "runconfig-checksum"
    );
}

#[tokio::test]
async fn stale_annotation_is_patched_to_the_normalized_configmaps_checksum() {
    let cluster = Cluster::start().await;
    cluster
        .api
        .insert(fixture("vmcp-configmap.normalized.yaml"));
    let deployment = deployment_with(Some(BUGGY_CHECKSUM));
    for http in [Http::V1, Http::V2] {
        let (answer, _) = cluster
            .review_with_timeout(http, &create(&deployment), "10s")
            .await;
        assert_checksum_patched(&answer, &deployment, CANONICAL_CHECKSUM);
        let warning = answer["response"]["warnings"][0].as_str().unwrap();
        assert!(
            warning.contains("9ba036ba5342 -> 32cf106c9df1"),
            "{warning}"
        );
    }

    // One direct GET per review, authenticated as the kubeconfig says.
    let requests = cluster.api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, configmap_path(NAMESPACE, CONFIGMAP));
        assert_eq!(request.token.as_deref(), Some(apiserver::TOKEN));
    }
    let metrics = cluster.metrics().await;
    for line in [
        r#"vmcp_normalizer_configmap_lookups_total{outcome="ok"} 2"#,
        r#"vmcp_normalizer_configmap_lookup_duration_seconds_count 2"#,
        r#"vmcp_normalizer_admission_requests_total{kind="Deployment",operation="CREATE",outcome="patched"} 2"#,
        r#"vmcp_normalizer_patches_total{kind="Deployment"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[tokio::test]
async fn configmap_stored_in_buggy_order_gives_the_checksum_of_its_normalized_form() {
    // Written before the webhook was installed: still in buggy order, and the
    // Deployment carries that stored checksum. The operator will read back the
    // normalized ConfigMap's checksum once its next write is normalized.
    let cluster = Cluster::start().await;
    let buggy = fixture("vmcp-configmap.yaml");
    assert_eq!(
        buggy["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"],
        BUGGY_CHECKSUM
    );
    cluster.api.insert(buggy);
    let deployment = fixture("vmcp-deployment.yaml");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"][RUNCONFIG],
        BUGGY_CHECKSUM
    );
    let answer = cluster.review(&create(&deployment)).await;
    assert_checksum_patched(&answer, &deployment, CANONICAL_CHECKSUM);

    // An UPDATE is treated the same, and a dry run gets the same answer.
    let update = review("uid-d", "UPDATE", &deployment, Some(&deployment));
    assert_eq!(cluster.review(&update).await, answer);
    let mut dry_run = create(&deployment);
    dry_run["request"]["dryRun"] = json!(true);
    assert_eq!(cluster.review(&dry_run).await, answer);
}

#[tokio::test]
async fn nothing_to_sync_gets_no_patch() {
    let cluster = Cluster::start().await;
    cluster.api.insert(fixture("vmcp-configmap.yaml"));

    // No annotation: never added, and no lookup spent on it.
    let answer = cluster.review(&create(&deployment_with(None))).await;
    assert_allowed_without_patch_or_warning(&answer);
    assert_eq!(cluster.configmap_gets(), 0);

    // Not a vMCP Deployment: no lookup either.
    let mut other = deployment_with(Some(BUGGY_CHECKSUM));
    other["metadata"]["labels"]["app.kubernetes.io/name"] = json!("something-else");
    let answer = cluster.review(&create(&other)).await;
    assert_allowed_without_patch_or_warning(&answer);
    assert_eq!(cluster.configmap_gets(), 0);

    // Already right (the buggy stored ConfigMap normalizes to it).
    let answer = cluster
        .review(&create(&deployment_with(Some(CANONICAL_CHECKSUM))))
        .await;
    assert_allowed_without_patch_or_warning(&answer);
    assert_eq!(cluster.configmap_gets(), 1);

    let metrics = cluster.metrics().await;
    for line in [
        r#"vmcp_normalizer_admission_requests_total{kind="Deployment",operation="CREATE",outcome="unchanged"} 2"#,
        r#"vmcp_normalizer_admission_requests_total{kind="Deployment",operation="CREATE",outcome="not_vmcp"} 1"#,
        r#"vmcp_normalizer_configmap_lookups_total{outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

fn path() -> String {
    configmap_path(NAMESPACE, CONFIGMAP)
}

/// One failing lookup: what the stand-in does, the metric label, and the
/// words the warning must carry.
struct Failure {
    name: &'static str,
    arrange: fn(&ApiServer),
    outcome: &'static str,
    warning: &'static str,
}

#[tokio::test]
async fn failed_lookups_allow_the_write_unchanged_with_a_warning() {
    let failures = [
        Failure {
            name: "ConfigMap missing (404)",
            arrange: |_| {},
            outcome: "not_found",
            warning: "ConfigMap not found",
        },
        Failure {
            name: "403 Forbidden",
            arrange: |api| api.fail("GET", &path(), apiserver::forbidden_get(&path())),
            outcome: "forbidden",
            warning: "not allowed to read ConfigMap",
        },
        Failure {
            name: "500 InternalError",
            arrange: |api| {
                api.fail(
                    "GET",
                    &path(),
                    Fault::Status(apiserver::internal_error("etcdserver: request timed out")),
                )
            },
            outcome: "unavailable",
            warning: "API server unavailable",
        },
        Failure {
            name: "an answer that is not the ConfigMap",
            arrange: |api| {
                let mut wrong = fixture("vmcp-configmap.yaml");
                wrong["metadata"]["name"] = json!("some-other-configmap");
                api.put(&path(), wrong);
            },
            outcome: "invalid",
            warning: "unreadable ConfigMap",
        },
        Failure {
            name: "a stand-in that never answers",
            arrange: |api| {
                api.insert(fixture("vmcp-configmap.yaml"));
                api.fail("GET", &path(), Fault::Hang);
            },
            outcome: "timeout",
            warning: "ConfigMap lookup timed out",
        },
    ];
    // The apiserver waits 1 s; the webhook gives itself 900 ms of that and
    // the lookup 850 ms. Those exact bounds are pinned on paused time in
    // src/checksum_sync.rs; here the outcome label tells a lookup that timed
    // out from one that failed fast, and a lookup that outlived the budget
    // would answer with the admission's own `timeout`, not `lookup_timeout`.
    let deployment = fixture("vmcp-deployment.yaml");
    for failure in failures {
        let cluster = Cluster::start().await;
        (failure.arrange)(&cluster.api);
        let (answer, elapsed) = cluster
            .review_with_timeout(Http::V2, &create(&deployment), "1s")
            .await;
        let name = failure.name;
        if failure.outcome == "timeout" {
            // The one real-clock check, loose: `?timeout=1s` applied, not
            // the 2 s lookup cap or the 9 s default budget.
            assert!(elapsed < Duration::from_secs(5), "{name}: took {elapsed:?}");
        }
        let response = &answer["response"];
        assert_eq!(response["allowed"], true, "{name}");
        assert!(response.get("patch").is_none(), "{name}: {answer}");
        assert!(response.get("patchType").is_none(), "{name}: {answer}");
        let warnings = response["warnings"].as_array().expect("a warning");
        assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
        let warning = warnings[0].as_str().unwrap();
        assert!(warning.len() < 120, "{name}: {warning}");
        assert_eq!(
            warning,
            format!(
                "vmcp-normalizer: runconfig-checksum not synced, {}: {CONFIGMAP}",
                failure.warning
            ),
            "{name}"
        );
        let reason = format!("lookup_{}", failure.outcome);
        assert_eq!(
            response["auditAnnotations"]["refused-reason"], reason,
            "{name}"
        );
        assert_eq!(cluster.configmap_gets(), 1, "{name}: the lookup was made");
        let metrics = cluster.metrics().await;
        for line in [
            format!(
                r#"vmcp_normalizer_configmap_lookups_total{{outcome="{}"}} 1"#,
                failure.outcome
            ),
            format!(r#"vmcp_normalizer_normalizations_refused_total{{reason="{reason}"}} 1"#),
            r#"vmcp_normalizer_admission_requests_total{kind="Deployment",operation="CREATE",outcome="refused"} 1"#.to_owned(),
        ] {
            assert!(metrics.contains(&line), "{name}: {line}\n{metrics}");
        }
    }
}

#[tokio::test]
async fn rejected_credentials_and_an_api_server_that_is_gone() {
    let deployment = fixture("vmcp-deployment.yaml");

    // A token the stand-in does not know: 401 Unauthorized.
    let api = ApiServer::start().await;
    api.insert(fixture("vmcp-configmap.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        api.kubeconfig().replace(apiserver::TOKEN, "revoked-token"),
    )
    .unwrap();
    let cluster = Cluster::start_with_kubeconfig(api, dir, kubeconfig).await;
    let answer = cluster.review(&create(&deployment)).await;
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    assert_eq!(
        answer["response"]["auditAnnotations"]["refused-reason"],
        "lookup_forbidden"
    );
    assert_eq!(
        cluster.api.requests()[0].token.as_deref(),
        Some("revoked-token")
    );

    // Nothing listening at the kubeconfig's address: connection refused.
    let api = ApiServer::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        api.kubeconfig().replace(&api.url(), &closed_url),
    )
    .unwrap();
    let cluster = Cluster::start_with_kubeconfig(api, dir, kubeconfig).await;
    // Refused at once: `lookup_unavailable`, not a wait into `lookup_timeout`.
    let (answer, _) = cluster
        .review_with_timeout(Http::V1, &create(&deployment), "1s")
        .await;
    assert!(cluster.api.requests().is_empty());
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    assert_eq!(
        answer["response"]["auditAnnotations"]["refused-reason"],
        "lookup_unavailable"
    );
    let metrics = cluster.metrics().await;
    assert!(
        metrics.contains(r#"vmcp_normalizer_configmap_lookups_total{outcome="unavailable"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_api_access_deployments_pass_through_with_a_warning() {
    let api = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let admission = Admission::new(metrics.clone())
        .with_workload_mutator(Arc::new(WorkloadChecksumSync::without_lookups(metrics)));
    let cluster = Cluster::start_server(api, dir, admission).await;

    let answer = cluster
        .review(&create(&fixture("vmcp-deployment.yaml")))
        .await;
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    assert_eq!(
        answer["response"]["warnings"],
        json!([format!(
            "vmcp-normalizer: runconfig-checksum not synced, no Kubernetes API access: {CONFIGMAP}"
        )])
    );
    // Deployments that need no lookup get no warning.
    let answer = cluster.review(&create(&deployment_with(None))).await;
    assert_allowed_without_patch_or_warning(&answer);
    // ConfigMaps are normalized as ever.
    let answer = cluster
        .review(&review(
            "uid-c",
            "CREATE",
            &fixture("vmcp-configmap.yaml"),
            None,
        ))
        .await;
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
}

#[tokio::test]
async fn a_kubeconfig_that_cannot_be_loaded_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let error = WorkloadChecksumSync::connect(Some(&missing), Arc::new(Metrics::new()))
        .await
        .expect_err("a missing --kubeconfig is an error");
    let message = error.to_string();
    assert!(message.contains("no-such-kubeconfig"), "{message}");

    // And the binary says so and exits 1 before serving.
    let pki = Pki::new();
    let files = write_pair(dir.path(), &pki.leaf());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vmcp-normalizer"))
        .args([
            "serve",
            "--listen=127.0.0.1:0",
            "--admin-listen=127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&files.cert)
        .arg("--tls-key")
        .arg(&files.key)
        .arg("--kubeconfig")
        .arg(&missing)
        .output()
        .expect("run the binary");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot load the kubeconfig") && stderr.contains("no-such-kubeconfig"),
        "{stderr}"
    );
}

/// Without `--kubeconfig`, API access comes from `KUBECONFIG` (which wins
/// over the rest), then the in-cluster ServiceAccount (not reproducible
/// here: its token lives at a fixed path under /var/run), then
/// `~/.kube/config`; with none of them the server starts without lookups.
#[tokio::test]
async fn api_access_from_the_environment() {
    let api = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    let pki = Pki::new();
    let files = write_pair(dir.path(), &pki.leaf());
    let empty_home = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".kube")).unwrap();
    std::fs::write(home.path().join(".kube/config"), api.kubeconfig()).unwrap();
    let missing = dir.path().join("no-such-kubeconfig");

    let serve = |env: &[(&str, &std::ffi::OsStr)]| {
        Process::spawn(
            &[
                "serve",
                "--listen=127.0.0.1:0",
                "--admin-listen=127.0.0.1:0",
                "--log-format=json",
                &format!("--tls-cert={}", files.cert.display()),
                &format!("--tls-key={}", files.key.display()),
            ],
            env,
        )
    };
    for (env, access) in [
        (
            [
                ("KUBECONFIG", kubeconfig.as_os_str()),
                ("HOME", home.path().as_os_str()),
            ],
            "kubeconfig from KUBECONFIG",
        ),
        (
            [
                ("KUBECONFIG", "".as_ref()),
                ("HOME", home.path().as_os_str()),
            ],
            "kubeconfig ~/.kube/config",
        ),
    ] {
        let mut process = serve(&env);
        let line = process.wait_for_log("ConfigMap lookups configured");
        assert_eq!(line["access"], access, "{line}");
        assert_eq!(
            line["api_server"]
                .as_str()
                .map(|url| url.trim_end_matches('/')),
            Some(api.url().as_str()),
            "{line}"
        );
    }

    // Nothing anywhere: the server starts, without lookups, and says why.
    let mut process = serve(&[("HOME", empty_home.path().as_os_str())]);
    let line = process.wait_for_log(
        "no Kubernetes API access: workloads (Deployments, StatefulSets, DaemonSets) pass through unchanged (set --kubeconfig)",
    );
    assert!(
        line["why"].as_str().unwrap().contains("not in a cluster"),
        "{line}"
    );
    process.wait_for_log("serving admission reviews");

    // KUBECONFIG is given on purpose: one that cannot be read is an error.
    let mut process = serve(&[
        ("KUBECONFIG", missing.as_os_str()),
        ("HOME", home.path().as_os_str()),
    ]);
    assert_eq!(process.wait_for_exit().code(), Some(1));
    let output = process.output_so_far();
    assert!(
        output.contains("cannot load the kubeconfig from KUBECONFIG"),
        "{output}"
    );
}

//! The real server over HTTPS on loopback: AdmissionReview round trips over
//! HTTP/1.1 and HTTP/2, and bodies that are not reviews.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Http, Pki, TestServer, client, decode_patch, fixture, post_review, review, write_pair,
};
use serde_json::{Value, json};
use vmcp_normalizer::admission::{Admission, BoxFuture, Verdict, WorkloadMutator, WorkloadReview};
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::server::ServerOptions;

struct Fixture {
    pki: Pki,
    _dir: tempfile::TempDir,
    server: TestServer,
}

async fn start() -> Fixture {
    start_with(Admission::new(Arc::new(Metrics::new()))).await
}

async fn start_with(admission: Admission) -> Fixture {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let files = write_pair(dir.path(), &pki.leaf());
    let server = TestServer::start_with(ServerOptions::new(files), admission).await;
    Fixture {
        pki,
        _dir: dir,
        server,
    }
}

impl Fixture {
    fn client(&self, http: Http) -> reqwest::Client {
        client(&self.pki.ca_pem, self.server.addr, http)
    }

    async fn review(&self, http: Http, body: &Value) -> Value {
        let (status, bytes) = post_review(&self.client(http), &self.server.url("/mutate"), body)
            .await
            .expect("request");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).expect("JSON review")
    }
}

fn assert_allowed_without_patch(answer: &Value, uid: &str) {
    assert_eq!(
        answer,
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": uid, "allowed": true}}),
    );
}

#[tokio::test]
async fn buggy_configmap_is_normalized_over_http1_and_http2() {
    let fixture_server = start().await;
    let buggy = fixture("vmcp-configmap.yaml");
    let normalized = fixture("vmcp-configmap.normalized.yaml");
    for http in [Http::V1, Http::V2] {
        let response = fixture_server
            .client(http)
            .post(fixture_server.server.url("/mutate?timeout=10s"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&review("uid-1", "CREATE", &buggy, None)).unwrap())
            .send()
            .await
            .unwrap();
        let expected_version = match http {
            Http::V1 => reqwest::Version::HTTP_11,
            Http::V2 => reqwest::Version::HTTP_2,
        };
        assert_eq!(response.version(), expected_version);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let answer: Value = response.json().await.unwrap();

        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], "uid-1");
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let warnings = answer["response"]["warnings"].as_array().expect("warnings");
        assert!(!warnings.is_empty());
        for warning in warnings {
            assert!(warning.as_str().unwrap().len() < 120, "{warning}");
        }
        assert!(answer["response"]["auditAnnotations"]["normalized"].is_string());

        let patch = decode_patch(&answer).expect("a patch");
        let mut patched = buggy.clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies to the request object");
        assert_eq!(
            patched["data"]["config.yaml"].as_str().unwrap(),
            normalized["data"]["config.yaml"].as_str().unwrap(),
            "config.yaml byte for byte"
        );
        assert_eq!(
            patched["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"],
            normalized["metadata"]["annotations"]["toolhive.stacklok.dev/content-checksum"],
        );
        assert_eq!(patched, normalized, "nothing else changed");
    }
    let metrics = fixture_server.server.metrics_text().await;
    assert!(
        metrics.contains(
            r#"vmcp_normalizer_admission_requests_total{kind="ConfigMap",operation="CREATE",outcome="patched"} 2"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"vmcp_normalizer_patches_total{kind="ConfigMap"} 2"#));
    fixture_server.server.stop().await;
}

#[tokio::test]
async fn canonical_configmap_gets_no_patch() {
    let fixture_server = start().await;
    let normalized = fixture("vmcp-configmap.normalized.yaml");
    for http in [Http::V1, Http::V2] {
        let answer = fixture_server
            .review(http, &review("uid-2", "CREATE", &normalized, None))
            .await;
        assert_allowed_without_patch(&answer, "uid-2");
    }
    fixture_server.server.stop().await;
}

/// On UPDATE only `object` is normalized: a canonical object over a buggy
/// `oldObject` needs nothing, and a buggy object gets the same patch as on
/// CREATE whatever `oldObject` holds. `oldObject` is only compared, by the
/// order-churn detector: both writes changed nothing but the backends'
/// order, which it reports in a warning and an audit annotation.
#[tokio::test]
async fn update_normalizes_object_never_old_object() {
    let fixture_server = start().await;
    let buggy = fixture("vmcp-configmap.yaml");
    let normalized = fixture("vmcp-configmap.normalized.yaml");
    let churn_warning =
        "vmcp-normalizer: only the order changed (unstable writer): config.yaml: backends";
    let answer = fixture_server
        .review(
            Http::V2,
            &review("uid-3", "UPDATE", &normalized, Some(&buggy)),
        )
        .await;
    assert_eq!(
        answer["response"],
        json!({"uid": "uid-3", "allowed": true, "warnings": [churn_warning],
               "auditAnnotations": {"order-churn": "config.yaml: backends"}})
    );

    let create = fixture_server
        .review(Http::V2, &review("uid-4", "CREATE", &buggy, None))
        .await;
    let update = fixture_server
        .review(
            Http::V2,
            &review("uid-4", "UPDATE", &buggy, Some(&normalized)),
        )
        .await;
    assert!(decode_patch(&update).is_some());
    let mut expected = create.clone();
    expected["response"]["warnings"]
        .as_array_mut()
        .unwrap()
        .push(json!(churn_warning));
    expected["response"]["auditAnnotations"]["order-churn"] = json!("config.yaml: backends");
    assert_eq!(update, expected);

    let metrics = fixture_server.server.metrics_text().await;
    assert!(
        metrics.contains(
            r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="toolhive-vmcp"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="none"} 0"#)
    );
    fixture_server.server.stop().await;
}

#[tokio::test]
async fn dry_run_gets_exactly_the_same_answer() {
    let fixture_server = start().await;
    let buggy = fixture("vmcp-configmap.yaml");
    let client = fixture_server.client(Http::V2);
    let url = fixture_server.server.url("/mutate");
    let wet = review("uid-5", "CREATE", &buggy, None);
    let mut dry = wet.clone();
    dry["request"]["dryRun"] = json!(true);
    let (_, wet_bytes) = post_review(&client, &url, &wet).await.unwrap();
    let (_, dry_bytes) = post_review(&client, &url, &dry).await.unwrap();
    assert!(String::from_utf8_lossy(&dry_bytes).contains("JSONPatch"));
    assert_eq!(wet_bytes, dry_bytes);
    fixture_server.server.stop().await;
}

#[tokio::test]
async fn other_kinds_delete_and_subresources_pass_untouched() {
    let fixture_server = start().await;
    let buggy = fixture("vmcp-configmap.yaml");
    let deployment = fixture("vmcp-deployment.yaml");
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "s", "namespace": "toolhive-system"},
                        "data": {"config.yaml": "YmFja2VuZHM6IFtd"}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": "p", "namespace": "toolhive-system",
                                  "labels": {"toolhive.stacklok.io/component": "vmcp-config"}}});
    let mut cases = vec![
        review("uid-d", "CREATE", &deployment, None),
        review("uid-d", "UPDATE", &deployment, Some(&deployment)),
        review("uid-d", "CREATE", &secret, None),
        review("uid-d", "CREATE", &pod, None),
    ];
    // DELETE: no object, the ConfigMap only in oldObject.
    let mut delete = review("uid-d", "DELETE", &buggy, Some(&buggy));
    delete["request"]["object"] = Value::Null;
    cases.push(delete);
    // A subresource write of a ConfigMap-shaped object.
    let mut subresource = review("uid-d", "UPDATE", &buggy, Some(&buggy));
    subresource["request"]["subResource"] = json!("status");
    cases.push(subresource);
    // CONNECT.
    cases.push(review("uid-d", "CONNECT", &buggy, None));

    for body in &cases {
        for http in [Http::V1, Http::V2] {
            let answer = fixture_server.review(http, body).await;
            assert_allowed_without_patch(&answer, "uid-d");
        }
    }
    let metrics = fixture_server.server.metrics_text().await;
    assert!(
        metrics.contains(r#"{kind="ConfigMap",operation="DELETE",outcome="skipped"} 2"#),
        "{metrics}"
    );
    fixture_server.server.stop().await;
}

#[tokio::test]
async fn bodies_that_are_not_reviews_get_errors_and_the_server_keeps_serving() {
    let fixture_server = start().await;
    let buggy = fixture("vmcp-configmap.yaml");
    let good = serde_json::to_vec(&review("uid-ok", "CREATE", &buggy, None)).unwrap();
    let mut wrong_type = review("uid-x", "CREATE", &buggy, None);
    wrong_type["request"]["uid"] = json!(42);
    let mut wrong_api_version = review("uid-x", "CREATE", &buggy, None);
    wrong_api_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut wrong_kind = review("uid-x", "CREATE", &buggy, None);
    wrong_kind["kind"] = json!("ConfigMap");
    let mut no_request = review("uid-x", "CREATE", &buggy, None);
    no_request.as_object_mut().unwrap().remove("request");

    let json = "application/json";
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", json, b"hello".to_vec(), 400, "not valid JSON"),
        ("POST", json, Vec::new(), 400, "truncated"),
        (
            "POST",
            json,
            good[..good.len() / 2].to_vec(),
            400,
            "truncated",
        ),
        (
            "POST",
            json,
            serde_json::to_vec(&wrong_type).unwrap(),
            400,
            "not an AdmissionReview",
        ),
        (
            "POST",
            json,
            serde_json::to_vec(&wrong_api_version).unwrap(),
            400,
            "admission.k8s.io/v1beta1",
        ),
        (
            "POST",
            json,
            serde_json::to_vec(&wrong_kind).unwrap(),
            400,
            "kind is \"ConfigMap\"",
        ),
        (
            "POST",
            json,
            serde_json::to_vec(&no_request).unwrap(),
            400,
            "no request",
        ),
        ("POST", json, b"[]".to_vec(), 400, "apiVersion is missing"),
        ("POST", "text/plain", good.clone(), 415, "application/json"),
        (
            "POST",
            "application/yaml",
            good.clone(),
            415,
            "application/json",
        ),
        ("GET", json, Vec::new(), 405, "POST"),
        ("PUT", json, good.clone(), 405, "POST"),
    ];
    for http in [Http::V1, Http::V2] {
        let client = fixture_server.client(http);
        for (method, content_type, body, status, message) in &cases {
            let response = client
                .request(
                    method.parse().unwrap(),
                    fixture_server.server.url("/mutate"),
                )
                .header("content-type", *content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), *status, "{method} {message}");
            let error: Value = response.json().await.expect("JSON error body");
            assert_eq!(error["code"], *status);
            let text = error["message"].as_str().unwrap();
            assert!(text.contains(message), "{message:?} not in {text:?}");

            // Still serving, on the same connection.
            let (status, _) = post_review(
                &client,
                &fixture_server.server.url("/mutate"),
                &review("uid-ok", "CREATE", &buggy, None),
            )
            .await
            .unwrap();
            assert_eq!(status, 200);
        }
    }
    let metrics = fixture_server.server.metrics_text().await;
    assert!(
        metrics.contains(r#"vmcp_normalizer_http_rejections_total{code="400"} 16"#),
        "{metrics}"
    );
    fixture_server.server.stop().await;
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let fixture_server = start().await;
    let buggy = fixture("vmcp-configmap.yaml");
    // A syntactically valid review padded past 8 MiB.
    let mut big = review("uid-big", "CREATE", &buggy, None);
    big["request"]["object"]["data"]["padding"] = json!("x".repeat(9 * 1024 * 1024));
    for http in [Http::V1, Http::V2] {
        let client = fixture_server.client(http);
        let (status, body) = post_review(&client, &fixture_server.server.url("/mutate"), &big)
            .await
            .expect("the server answers instead of dropping the connection");
        assert_eq!(status, 413);
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["code"], 413);
        let (status, _) = post_review(
            &client,
            &fixture_server.server.url("/mutate"),
            &review("uid-ok", "CREATE", &buggy, None),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
    }
    fixture_server.server.stop().await;
}

/// A just-under-the-limit ConfigMap review (a 1 MiB ConfigMap in both object
/// and oldObject) is answered, through the blocking-pool path.
#[tokio::test]
async fn large_review_under_the_limit_is_answered() {
    let fixture_server = start().await;
    let mut big = fixture("vmcp-configmap.yaml");
    big["data"]["other.txt"] = json!("y".repeat(1024 * 1024));
    let answer = fixture_server
        .review(Http::V2, &review("uid-large", "UPDATE", &big, Some(&big)))
        .await;
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["uid"], "uid-large");
    fixture_server.server.stop().await;
}

/// The apiserver's `?timeout=` bounds the work: a Deployment decision that
/// never comes is answered allowed, unchanged, within the budget. The exact
/// bound (900 ms for `timeout=1s`) is pinned on paused time in
/// `src/admission/tests.rs` and `src/server/http.rs`; here, over real sockets
/// on a loaded machine, the warning shows which budget applied and the clock
/// is only checked loosely.
#[tokio::test]
async fn timeout_parameter_bounds_the_answer() {
    struct Never;
    impl WorkloadMutator for Never {
        fn mutate<'a>(&'a self, _: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
            Box::pin(std::future::pending())
        }
    }
    let admission = Admission::new(Arc::new(Metrics::new())).with_workload_mutator(Arc::new(Never));
    let fixture_server = start_with(admission).await;
    let deployment = fixture("vmcp-deployment.yaml");
    let client = fixture_server.client(Http::V2);
    let started = std::time::Instant::now();
    let (status, bytes) = post_review(
        &client,
        &fixture_server.server.url("/mutate?timeout=1s"),
        &review("uid-t", "UPDATE", &deployment, Some(&deployment)),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    // Well before the 9 s budget of a request without `?timeout=`.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());
    assert_eq!(
        answer["response"]["warnings"][0],
        "vmcp-normalizer: no decision within 900 ms; object left unchanged"
    );
    let metrics = fixture_server.server.metrics_text().await;
    assert!(metrics.contains(r#"{kind="Deployment",operation="UPDATE",outcome="timeout"} 1"#));
    fixture_server.server.stop().await;
}

#[tokio::test]
async fn admin_endpoints() {
    let fixture_server = start().await;
    let normalized = fixture("vmcp-configmap.normalized.yaml");
    fixture_server
        .review(Http::V1, &review("uid-m", "CREATE", &normalized, None))
        .await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(fixture_server.server.admin_url(path)).send();
    assert_eq!(get("/livez").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# TYPE vmcp_normalizer_admission_duration_seconds histogram"));
    assert!(text.contains(
        r#"vmcp_normalizer_admission_requests_total{kind="ConfigMap",operation="CREATE",outcome="unchanged"} 1"#
    ));
    assert!(text.contains("# TYPE vmcp_normalizer_certificate_not_after_timestamp_seconds gauge"));
    let not_after: i64 = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("vmcp_normalizer_certificate_not_after_timestamp_seconds ")
        })
        .expect("gauge line")
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        not_after > now,
        "served certificate not-after is in the future"
    );
    fixture_server.server.stop().await;
}

/// The committed review (the README's curl example) is the YAML fixture in a
/// review, and the server's answer to it is pinned byte for byte in
/// `vmcp-configmap.review.response.json`. Regenerate after a deliberate wire
/// change with `UPDATE_GOLDEN=1 cargo test --test webhook golden`.
#[tokio::test]
async fn golden_response_to_the_committed_review() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let body = std::fs::read(format!("{dir}/vmcp-configmap.review.json")).unwrap();
    let committed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        committed["request"]["object"],
        fixture("vmcp-configmap.yaml")
    );

    let fixture_server = start().await;
    let response = fixture_server
        .client(Http::V2)
        .post(fixture_server.server.url("/mutate?timeout=10s"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let golden_path = format!("{dir}/vmcp-configmap.review.response.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &bytes).unwrap();
    }
    let golden = std::fs::read(&golden_path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&golden),
        "response bytes changed"
    );

    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let mut patched = committed["request"]["object"].clone();
    json_patch::patch(&mut patched, &decode_patch(&answer).unwrap()).unwrap();
    assert_eq!(patched, fixture("vmcp-configmap.normalized.yaml"));
    fixture_server.server.stop().await;
}

/// A vMCP ConfigMap the normalizer will not rewrite (a flow-style backends
/// list) is allowed unchanged, with a warning, an audit annotation and a
/// refusal counted by reason.
#[tokio::test]
async fn refused_normalization_is_allowed_with_a_warning() {
    let fixture_server = start().await;
    let mut flow = fixture("vmcp-configmap.yaml");
    flow["data"]["config.yaml"] =
        json!("name: demo\nbackends: [{name: b, url: http://b}, {name: a, url: http://a}]\n");
    let answer = fixture_server
        .review(Http::V2, &review("uid-r", "CREATE", &flow, None))
        .await;
    let response = &answer["response"];
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none() && response.get("patchType").is_none());
    let warning = response["warnings"][0].as_str().expect("a warning");
    assert!(
        warning.starts_with("vmcp-normalizer: config.yaml left unchanged ("),
        "{warning}"
    );
    assert!(warning.len() < 120);
    let reason = response["auditAnnotations"]["refused-reason"]
        .as_str()
        .expect("refused-reason");
    let metrics = fixture_server.server.metrics_text().await;
    assert!(
        metrics.contains(&format!(
            "vmcp_normalizer_normalizations_refused_total{{reason=\"{reason}\"}} 1"
        )),
        "{metrics}"
    );
    fixture_server.server.stop().await;
}

/// The real binary logs what the order-churn detector found: the lists by
/// path with their rules, and a checksum-only rollout with its ConfigMap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_churn_and_checksum_only_rollouts_are_logged() {
    let common::ServedBinary {
        mut process,
        pki,
        addr,
        ..
    } = common::serve_binary(&[]);
    let client = client(&pki.ca_pem, addr, Http::V2);
    let url = format!("https://localhost:{}/mutate", addr.port());

    let buggy = fixture("vmcp-configmap.yaml");
    let normalized = fixture("vmcp-configmap.normalized.yaml");
    let body = review("uid-churn", "UPDATE", &buggy, Some(&normalized));
    let (status, _) = post_review(&client, &url, &body).await.unwrap();
    assert_eq!(status, 200);
    let line = process
        .wait_for_log("lists changed only in order: the writer emits them in an unstable order");
    // Put back in order by the built-in rule: information, not a warning.
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["uid"], "uid-churn");
    assert_eq!(line["kind"], "ConfigMap");
    assert_eq!(line["name"], "demo-vmcp-vmcp-config");
    assert_eq!(line["lists"], "config.yaml: backends");
    assert_eq!(line["rules"], "toolhive-vmcp");

    // A list no rule reorders: a warning.
    let mut plain = normalized.clone();
    plain["data"]["hosts"] = json!("[a, b]");
    let mut reordered = plain.clone();
    reordered["data"]["hosts"] = json!("[b, a]");
    let body = review("uid-plain", "UPDATE", &reordered, Some(&plain));
    let (status, _) = post_review(&client, &url, &body).await.unwrap();
    assert_eq!(status, 200);
    let line = process
        .wait_for_log("lists changed only in order: the writer emits them in an unstable order");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["uid"], "uid-plain");
    assert_eq!(line["lists"], "hosts: .");
    assert_eq!(line["rules"], "none");

    let stored = fixture("vmcp-deployment.yaml");
    let mut written = stored.clone();
    written["spec"]["template"]["metadata"]["annotations"]["toolhive.stacklok.dev/runconfig-checksum"] =
        json!("0123");
    let body = review("uid-rollout", "UPDATE", &written, Some(&stored));
    let (status, answer) = post_review(&client, &url, &body).await.unwrap();
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer["response"]["auditAnnotations"]["checksum-only-rollout"],
        "demo-vmcp-vmcp-config"
    );
    let line = process
        .wait_for_log("checksum-only rollout: the pod template changed only in runconfig-checksum");
    assert_eq!(line["uid"], "uid-rollout");
    assert_eq!(line["configmap"], "demo-vmcp-vmcp-config");
}

use super::*;
use serde_json::json;

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

fn patch(value: Value) -> json_patch::Patch {
    serde_json::from_value(value).expect("valid patch")
}

fn review(operation: &str, group: &str, resource: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": group, "version": "v1", "kind": "Whatever"},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "namespace": "toolhive-system",
            "name": "demo",
            "operation": operation,
            "object": object,
            "dryRun": false
        }
    }))
    .expect("encode review")
}

fn admission() -> Admission {
    Admission::new(Arc::new(Metrics::new()))
}

async fn answer(admission: &Admission, body: &[u8]) -> Value {
    let bytes = admission
        .review(body, Duration::from_secs(5))
        .await
        .expect("a review");
    serde_json::from_slice(&bytes).expect("JSON answer")
}

// The exact bytes on the wire. If these change, the apiserver contract changed:
// check it against the AdmissionReview v1 API reference before updating.
#[test]
fn golden_allowed_without_patch() {
    let bytes = encode_response(UID, &Verdict::allow(Decision::Unchanged)).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#
    );
}

#[test]
fn golden_allowed_with_patch_warnings_and_audit() {
    let verdict = Verdict::patched(patch(json!([
        {"op": "replace", "path": "/data/config.yaml", "value": "a: 1\n"},
        {"op": "replace", "path": "/metadata/annotations/toolhive.stacklok.dev~1content-checksum", "value": "ab"}
    ])))
    .with_warning("vmcp-normalizer: sorted 2 backends by name in config.yaml")
    .with_audit_annotation("normalized", "backends-reordered,content-checksum");
    let bytes = encode_response(UID, &verdict).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        concat!(
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"#,
            r#""uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true,"patchType":"JSONPatch","#,
            r#""patch":"W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9kYXRhL2NvbmZpZy55YW1sIiwidmFsdWUiOiJhOiAxXG4ifSx7Im9wIjoicmVwbGFjZSIsInBhdGgiOiIvbWV0YWRhdGEvYW5ub3RhdGlvbnMvdG9vbGhpdmUuc3RhY2tsb2suZGV2fjFjb250ZW50LWNoZWNrc3VtIiwidmFsdWUiOiJhYiJ9XQ==","#,
            r#""warnings":["vmcp-normalizer: sorted 2 backends by name in config.yaml"],"#,
            r#""auditAnnotations":{"normalized":"backends-reordered,content-checksum"}}}"#
        )
    );
}

#[test]
fn several_warnings_and_annotations_are_valid_json_in_order() {
    let verdict = Verdict::allow(Decision::Refused {
        reason: "unsupported",
    })
    .with_warning("first: \"quoted\" \\ back\tslash")
    .with_warning("second: é \u{1}")
    .with_audit_annotation("refused-reason", "unsupported")
    .with_audit_annotation("normalized", "none");
    let bytes = encode_response("uid-\"odd\"", &verdict).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "uid-\"odd\"",
                "allowed": true,
                "warnings": ["first: \"quoted\" \\ back\tslash", "second: é \u{1}"],
                "auditAnnotations": {"normalized": "none", "refused-reason": "unsupported"}
            }
        })
    );
    // Annotations in key order, as serde wrote a BTreeMap.
    assert!(
        text.ends_with(
            r#""auditAnnotations":{"normalized":"none","refused-reason":"unsupported"}}}"#
        ),
        "{text}"
    );
}

#[test]
fn patch_field_is_base64_of_the_rfc6902_json() {
    use base64::Engine as _;
    let ops = json!([{"op": "replace", "path": "/data/a~1b", "value": "x"}]);
    let bytes = encode_response(UID, &Verdict::patched(patch(ops.clone()))).unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let encoded = answer["response"]["patch"]
        .as_str()
        .expect("patch is a string");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&decoded).unwrap(), ops);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
}

#[test]
fn empty_patch_sends_neither_patch_nor_patch_type() {
    let bytes = encode_response(UID, &Verdict::patched(json_patch::Patch(vec![]))).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains("patch"), "{text}");
}

#[test]
fn normalized_outcome_becomes_patch_warnings_and_audit() {
    let outcome = Outcome::Normalized(normalize::Normalized {
        changes: vec![
            Change::BackendsReordered {
                key: "config.yaml".into(),
                items: 5,
            },
            Change::ContentChecksum {
                from: "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48".into(),
                to: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            },
        ],
        patch: patch(json!([{"op": "replace", "path": "/data/config.yaml", "value": "x"}])),
    });
    let verdict = configmap_verdict(Some(outcome));
    assert_eq!(verdict.decision, Decision::Patched);
    assert_eq!(
        verdict.warnings,
        [
            "vmcp-normalizer: sorted 5 backends by name in config.yaml",
            "vmcp-normalizer: content-checksum 9ba036ba5342 -> 0123456789ab",
        ]
    );
    assert_eq!(
        verdict.audit_annotations["normalized"],
        "backends-reordered,content-checksum"
    );
}

#[test]
fn refusal_becomes_short_warning_and_reason() {
    let outcome = Outcome::Refused(normalize::Refusal {
        reason: normalize::RefusalReason::Unsupported,
        detail: format!("anchors are not supported ({})", "é".repeat(200)),
    });
    let verdict = configmap_verdict(Some(outcome));
    assert_eq!(
        verdict.decision,
        Decision::Refused {
            reason: "unsupported"
        }
    );
    assert!(verdict.patch.is_none());
    assert_eq!(verdict.audit_annotations["refused-reason"], "unsupported");
    let warning = &verdict.warnings[0];
    assert!(warning.len() <= MAX_WARNING_BYTES, "{warning}");
    assert!(
        warning.starts_with("vmcp-normalizer: config.yaml left unchanged (unsupported): anchors"),
        "{warning}"
    );
}

#[test]
fn normalizer_panic_is_an_allowed_error() {
    let verdict = configmap_verdict(None);
    assert_eq!(verdict.decision, Decision::Error);
    assert!(verdict.patch.is_none());
}

#[test]
fn fit_warning_keeps_short_lines_and_cuts_long_ones() {
    assert_eq!(fit_warning("short".into()), "short");
    let long = fit_warning("x".repeat(500));
    assert_eq!(long.len(), MAX_WARNING_BYTES);
    assert!(long.ends_with('…'));
}

#[test]
fn rejects_what_is_not_an_admission_review() {
    let cases: [(&[u8], &str); 8] = [
        (b"not json", "not valid JSON"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid""#, "truncated"),
        (br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1","kind":{},"resource":{},"operation":"CREATE"}}"#, "apiVersion is \"admission.k8s.io/v1beta1\""),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"ConfigMap"}"#, "kind is \"ConfigMap\""),
        (br#"{"kind":"AdmissionReview"}"#, "apiVersion is missing"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "no request"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"yes"}"#, "not an AdmissionReview"),
        (br#"[1,2,3]"#, "not an AdmissionReview"),
    ];
    for (body, expected) in cases {
        let error = parse_review(body).expect_err(expected);
        assert!(error.is_bad_request());
        assert!(
            error.to_string().contains(expected),
            "{expected:?} not in {error}"
        );
    }
    let no_uid = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","kind":{},"resource":{},"operation":"CREATE"}}"#;
    assert!(matches!(parse_review(no_uid), Err(AdmissionError::NoUid)));
}

#[tokio::test]
async fn echoes_uid_and_skips_what_it_does_not_mutate() {
    let admission = admission();
    let cases = [
        review("DELETE", "", "configmaps", Value::Null),
        review("CONNECT", "", "configmaps", json!({})),
        review("CREATE", "", "secrets", json!({"data": {}})),
        review("CREATE", "apps", "deployments", json!({"spec": {}})),
        review("UPDATE", "apps", "statefulsets", json!({"spec": {}})),
    ];
    for body in cases {
        let answer = answer(&admission, &body).await;
        assert_eq!(
            answer,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": UID, "allowed": true}})
        );
    }
    let text = admission.metrics().encode().unwrap();
    assert!(
        text.contains(
            r#"admission_requests_total{kind="ConfigMap",operation="DELETE",outcome="skipped"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"{kind="other",operation="CREATE",outcome="skipped"} 1"#));
}

#[tokio::test]
async fn subresource_writes_are_not_mutated() {
    let mut body: Value = serde_json::from_slice(&review(
        "UPDATE",
        "apps",
        "deployments",
        json!({"spec": {"replicas": 3}}),
    ))
    .unwrap();
    body["request"]["subResource"] = json!("scale");
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    struct Spy(Arc<std::sync::atomic::AtomicBool>);
    impl WorkloadMutator for Spy {
        fn mutate<'a>(&'a self, _: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            Box::pin(std::future::ready(Verdict::allow(Decision::Unchanged)))
        }
    }
    let admission = admission().with_workload_mutator(Arc::new(Spy(seen.clone())));
    let answer = answer(&admission, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert!(!seen.load(std::sync::atomic::Ordering::SeqCst));
}

/// Hands the workload seam what it needs: the object, namespace, name,
/// dryRun and a deadline inside the budget; its verdict goes on the wire.
#[tokio::test]
async fn deployment_seam_receives_the_request_and_answers() {
    struct Checksum;
    impl WorkloadMutator for Checksum {
        fn mutate<'a>(&'a self, review: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
            assert_eq!(review.kind, WorkloadKind::Deployment);
            assert_eq!(review.namespace, "toolhive-system");
            assert_eq!(review.name, "demo");
            assert_eq!(review.object["spec"]["replicas"], 1);
            assert!(!review.dry_run);
            assert!(review.deadline <= Instant::now() + Duration::from_secs(5));
            Box::pin(async {
                Verdict::patched(patch(json!([
                    {"op": "replace", "path": "/spec/replicas", "value": 1}
                ])))
            })
        }
    }
    let admission = admission().with_workload_mutator(Arc::new(Checksum));
    let body = review(
        "UPDATE",
        "apps",
        "deployments",
        json!({"spec": {"replicas": 1}}),
    );
    let answer = answer(&admission, &body).await;
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let text = admission.metrics().encode().unwrap();
    assert!(text.contains(r#"vmcp_normalizer_patches_total{kind="Deployment"} 1"#));
}

/// A Deployment mutator that answers `after` (never, when `None`) with a
/// patch, and checks the deadline it is handed is the whole budget from now.
struct Slow {
    after: Option<Duration>,
    budget: Duration,
}

impl WorkloadMutator for Slow {
    fn mutate<'a>(&'a self, review: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
        assert_eq!(review.deadline - Instant::now(), self.budget);
        let after = self.after;
        Box::pin(async move {
            match after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
            Verdict::patched(patch(json!([
                {"op": "replace", "path": "/spec/replicas", "value": 1}
            ])))
        })
    }
}

/// The budget bounds the work exactly (tokio's paused clock: no scheduler
/// timing): no decision by 900 ms is answered at 900 ms, allowed, unchanged.
#[tokio::test(start_paused = true)]
async fn budget_bounds_the_work() {
    let budget = Duration::from_millis(900);
    let slow = Slow {
        after: None,
        budget,
    };
    let admission = admission().with_workload_mutator(Arc::new(slow));
    let body = review("CREATE", "apps", "deployments", json!({}));
    let started = Instant::now();
    let bytes = admission.review(&body, budget).await.unwrap();
    assert_eq!(started.elapsed(), budget);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());
    assert_eq!(
        answer["response"]["warnings"][0],
        "vmcp-normalizer: no decision within 900 ms; object left unchanged"
    );
    let text = admission.metrics().encode().unwrap();
    assert!(text.contains(r#"{kind="Deployment",operation="CREATE",outcome="timeout"} 1"#));
}

/// A decision 1 ms inside the budget is sent; one 1 ms outside is not.
#[tokio::test(start_paused = true)]
async fn a_decision_counts_up_to_the_deadline_and_not_after() {
    let budget = Duration::from_millis(900);
    for (after, answered_at, patched) in [
        (Duration::from_millis(899), Duration::from_millis(899), true),
        (Duration::from_millis(901), budget, false),
    ] {
        let slow = Slow {
            after: Some(after),
            budget,
        };
        let admission = admission().with_workload_mutator(Arc::new(slow));
        let body = review("UPDATE", "apps", "deployments", json!({}));
        let started = Instant::now();
        let bytes = admission.review(&body, budget).await.unwrap();
        assert_eq!(started.elapsed(), answered_at, "decision after {after:?}");
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            answer["response"].get("patch").is_some(),
            patched,
            "decision after {after:?}: {answer}"
        );
    }
}

#[tokio::test]
async fn non_vmcp_configmap_is_allowed_without_patch() {
    let admission = admission();
    let body = review(
        "CREATE",
        "",
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"},
               "data": {"config.yaml": "backends:\n- name: b\n- name: a\n"}}),
    );
    let answer = answer(&admission, &body).await;
    assert_eq!(answer["response"], json!({"uid": UID, "allowed": true}));
}

fn large_configmap(config_bytes: usize) -> Value {
    let mut configmap: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/vmcp-configmap.review.json"
    ))
    .map(|review: Value| review["request"]["object"].clone())
    .unwrap();
    let config = configmap["data"][CONFIG_KEY].as_str().unwrap().to_owned();
    let padding = format!(
        "# {}\n",
        "x".repeat(config_bytes.saturating_sub(config.len()))
    );
    configmap["data"][CONFIG_KEY] = json!(padding + &config);
    configmap
}

/// Every data key counts towards the limit, not only `config.yaml`: a
/// rules file may normalize any key, and the apiserver refuses the whole
/// object.
#[tokio::test]
async fn a_configmap_whose_data_together_is_too_large_is_not_normalized() {
    let admission = admission();
    let mut configmap = large_configmap(1024);
    configmap["data"]["notes"] = json!("x".repeat(MAX_CONFIG_BYTES / 2));
    configmap["binaryData"] = json!({"blob": "A".repeat(MAX_CONFIG_BYTES / 3 * 4)});
    let refused = answer(&admission, &review("CREATE", "", "configmaps", configmap)).await;
    assert!(refused["response"].get("patch").is_none(), "{refused}");
    assert!(
        refused["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("more than a ConfigMap may hold"),
        "{refused}"
    );
    let text = admission.metrics().encode().unwrap();
    assert!(
        text.contains(r#"normalizations_refused_total{reason="too_large"} 1"#),
        "{text}"
    );
    // The same ConfigMap under the limit is normalized.
    let mut configmap = large_configmap(1024);
    configmap["data"]["notes"] = json!("x".repeat(MAX_CONFIG_BYTES / 2));
    let patched = answer(&admission, &review("CREATE", "", "configmaps", configmap)).await;
    assert!(patched["response"].get("patch").is_some(), "{patched}");
}

#[tokio::test]
async fn configs_larger_than_a_configmap_may_hold_are_not_normalized() {
    let admission = admission();
    let body = review(
        "CREATE",
        "",
        "configmaps",
        large_configmap(MAX_CONFIG_BYTES + 1),
    );
    let answer = answer(&admission, &body).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());
    assert!(
        answer["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("more than a ConfigMap may hold")
    );
    let text = admission.metrics().encode().unwrap();
    assert!(
        text.contains(r#"normalizations_refused_total{reason="too_large"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn large_documents_wait_for_their_turn_within_the_budget() {
    let admission = admission();
    let body = review("CREATE", "", "configmaps", large_configmap(200_000));
    assert!(body.len() > INLINE_BODY_LIMIT);
    let turn = admission
        .large_normalizations
        .clone()
        .acquire_owned()
        .await
        .unwrap();
    let bytes = admission
        .review(&body, Duration::from_millis(100))
        .await
        .unwrap();
    let waited: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        waited["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("no decision within 100 ms"),
        "{waited}"
    );
    drop(turn);
    let answered = answer(&admission, &body).await;
    assert!(answered["response"].get("patch").is_some(), "{answered}");
}

/// The label lists the metrics start at zero hold every label the admission
/// path can count under, so no series appears only with its first event.
#[test]
fn every_counted_label_is_in_the_lists_started_at_zero() {
    let decisions = [
        Decision::Skipped,
        Decision::NotVmcp,
        Decision::Unchanged,
        Decision::Patched,
        Decision::Warned,
        Decision::Refused { reason: TOO_LARGE },
        Decision::TimedOut,
        Decision::Error,
    ];
    // A new variant breaks this match, and so points here.
    for decision in decisions {
        match decision {
            Decision::Skipped
            | Decision::NotVmcp
            | Decision::Unchanged
            | Decision::Patched
            | Decision::Warned
            | Decision::Refused { .. }
            | Decision::TimedOut
            | Decision::Error => {}
        }
    }
    let outcomes: Vec<&str> = decisions.iter().map(|d| d.as_str()).collect();
    assert_eq!(outcomes, Decision::LABELS);
    let workloads = WorkloadKind::ALL.map(Target::Workload);
    for target in [Target::ConfigMap, Target::Other]
        .into_iter()
        .chain(workloads)
    {
        assert!(KIND_LABELS.contains(&target.label()), "{target:?}");
    }
    for operation in ["CREATE", "UPDATE", "DELETE", "CONNECT", "PATCH", ""] {
        assert!(OPERATION_LABELS.contains(&operation_label(operation)));
    }
    let reachable = reachable_admission_labels();
    for kind in ["ConfigMap", "Deployment", "StatefulSet", "DaemonSet"] {
        for operation in ["CREATE", "UPDATE"] {
            for outcome in Decision::LABELS {
                let labels = AdmissionLabels {
                    kind,
                    operation,
                    outcome,
                };
                assert!(reachable.contains(&labels), "{labels:?}");
            }
        }
    }
    assert!(reachable.contains(&AdmissionLabels {
        kind: "ConfigMap",
        operation: "DELETE",
        outcome: "skipped"
    }));
}

#[tokio::test]
async fn counters_start_at_zero_before_the_first_review() {
    let text = admission().metrics().encode().unwrap();
    for series in [
        r#"vmcp_normalizer_admission_requests_total{kind="ConfigMap",operation="UPDATE",outcome="patched"} 0"#,
        r#"vmcp_normalizer_admission_requests_total{kind="Deployment",operation="CREATE",outcome="refused"} 0"#,
        r#"vmcp_normalizer_admission_requests_total{kind="other",operation="CREATE",outcome="skipped"} 0"#,
        r#"vmcp_normalizer_patches_total{kind="Deployment"} 0"#,
        r#"vmcp_normalizer_normalizations_refused_total{reason="too_large"} 0"#,
        r#"vmcp_normalizer_admission_duration_seconds_count{kind="ConfigMap"} 0"#,
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
}

// ---- The order-churn detector on the admission path ----

fn fixture(text: &str) -> Value {
    yaml_serde::from_str(text).expect("fixture YAML")
}

fn buggy_configmap() -> Value {
    fixture(include_str!("../../tests/fixtures/vmcp-configmap.yaml"))
}

fn normalized_configmap() -> Value {
    fixture(include_str!(
        "../../tests/fixtures/vmcp-configmap.normalized.yaml"
    ))
}

fn deployment() -> Value {
    fixture(include_str!("../../tests/fixtures/vmcp-deployment.yaml"))
}

/// `review`, with `oldObject`.
fn review_over(operation: &str, group: &str, resource: &str, object: Value, old: Value) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&review(operation, group, resource, object)).unwrap();
    body["request"]["oldObject"] = old;
    serde_json::to_vec(&body).unwrap()
}

/// The operator's write of the buggy order over the stored canonical form:
/// the normalizer's answer, unchanged, plus the churn warning and annotation.
#[tokio::test]
async fn an_update_that_only_reorders_backends_is_reported() {
    let admission = admission();
    let create = answer(
        &admission,
        &review("CREATE", "", "configmaps", buggy_configmap()),
    )
    .await;
    let update = answer(
        &admission,
        &review_over(
            "UPDATE",
            "",
            "configmaps",
            buggy_configmap(),
            normalized_configmap(),
        ),
    )
    .await;
    let response = &update["response"];
    assert_eq!(response["patch"], create["response"]["patch"]);
    assert_eq!(
        response["warnings"],
        json!([
            "vmcp-normalizer: sorted 5 backends by name in config.yaml",
            "vmcp-normalizer: content-checksum 9ba036ba5342 -> 32cf106c9df1",
            "vmcp-normalizer: only the order changed (unstable writer): config.yaml: backends",
        ])
    );
    assert_eq!(
        response["auditAnnotations"],
        json!({"normalized": "backends-reordered,content-checksum",
               "order-churn": "config.yaml: backends"})
    );
    let text = admission.metrics().encode().unwrap();
    assert!(
        text.contains(
            r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="toolhive-vmcp"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="none"} 0"#));
}

/// A ConfigMap no rule reorders: warned about, never patched.
#[tokio::test]
async fn churn_in_a_list_no_rule_reorders_is_warned_only() {
    let admission = admission();
    let configmap = |hosts: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"},
               "data": {"hosts.json": hosts, "other": "x"}})
    };
    let update = answer(
        &admission,
        &review_over(
            "UPDATE",
            "",
            "configmaps",
            configmap(r#"{"hosts": ["b", "a"]}"#),
            configmap(r#"{"hosts": ["a", "b"]}"#),
        ),
    )
    .await;
    assert_eq!(
        update["response"],
        json!({"uid": UID, "allowed": true,
               "warnings": ["vmcp-normalizer: only the order changed (unstable writer): hosts.json: hosts"],
               "auditAnnotations": {"order-churn": "hosts.json: hosts"}})
    );
    let text = admission.metrics().encode().unwrap();
    assert!(text.contains(r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="none"} 1"#));
    assert!(
        text.contains(
            r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="toolhive-vmcp"} 0"#
        )
    );
}

#[tokio::test]
async fn a_deployment_whose_template_changed_only_in_its_checksum_is_counted() {
    let admission = admission();
    let stored = deployment();
    let mut written = stored.clone();
    written["spec"]["template"]["metadata"]["annotations"]["toolhive.stacklok.dev/runconfig-checksum"] =
        json!("0123");
    let update = answer(
        &admission,
        &review_over("UPDATE", "apps", "deployments", written, stored),
    )
    .await;
    assert_eq!(
        update["response"],
        json!({"uid": UID, "allowed": true,
               "auditAnnotations": {"checksum-only-rollout": "demo-vmcp-vmcp-config"}})
    );
    let text = admission.metrics().encode().unwrap();
    assert!(
        text.contains(r#"vmcp_normalizer_checksum_only_rollouts_total{kind="Deployment"} 1"#),
        "{text}"
    );
}

/// CREATE, DELETE and subresource writes get nothing from the detector,
/// whatever `oldObject` holds; nor does an UPDATE that changes content.
#[tokio::test]
async fn only_order_only_updates_of_the_object_are_reported() {
    let admission = admission();
    let (buggy, normalized) = (buggy_configmap(), normalized_configmap());
    let create = answer(
        &admission,
        &review_over(
            "CREATE",
            "",
            "configmaps",
            buggy.clone(),
            normalized.clone(),
        ),
    )
    .await;
    let plain_create = answer(
        &admission,
        &review("CREATE", "", "configmaps", buggy.clone()),
    )
    .await;
    assert_eq!(create, plain_create);

    let delete = answer(
        &admission,
        &review_over("DELETE", "", "configmaps", Value::Null, normalized.clone()),
    )
    .await;
    assert_eq!(delete["response"], json!({"uid": UID, "allowed": true}));

    let mut status: Value = serde_json::from_slice(&review_over(
        "UPDATE",
        "",
        "configmaps",
        buggy.clone(),
        normalized.clone(),
    ))
    .unwrap();
    status["request"]["subResource"] = json!("status");
    let status = answer(&admission, &serde_json::to_vec(&status).unwrap()).await;
    assert_eq!(status["response"], json!({"uid": UID, "allowed": true}));

    let mut changed = buggy.clone();
    changed["metadata"]["labels"]["extra"] = json!("1");
    let content = answer(
        &admission,
        &review_over("UPDATE", "", "configmaps", changed, normalized),
    )
    .await;
    assert!(
        content["response"]["auditAnnotations"]
            .get("order-churn")
            .is_none()
    );
    let text = admission.metrics().encode().unwrap();
    assert!(
        text.contains(
            r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="toolhive-vmcp"} 0"#
        )
    );
}

#[test]
fn many_lists_are_summed_up_and_the_audit_value_is_bounded() {
    use crate::order_churn::{ReorderedList, Rule};
    let churn = OrderChurn {
        lists: (0..MAX_REPORTED_LISTS)
            .map(|k| ReorderedList {
                path: format!("data: {}{k}", "k".repeat(190)),
                rule: Rule::None,
            })
            .collect(),
        more: true,
        checksum_only_rollout: None,
    };
    let verdict = with_order_churn(Verdict::allow(Decision::Unchanged), &churn);
    assert_eq!(verdict.decision, Decision::Unchanged);
    assert!(verdict.patch.is_none());
    assert_eq!(verdict.warnings.len(), MAX_REPORTED_LISTS + 1);
    assert_eq!(
        verdict.warnings.last().unwrap(),
        "vmcp-normalizer: more than 8 lists changed only in order"
    );
    assert!(
        verdict
            .warnings
            .iter()
            .all(|w| w.len() <= MAX_WARNING_BYTES)
    );
    let summary = &verdict.audit_annotations[ORDER_CHURN_ANNOTATION];
    assert_eq!(summary.len(), MAX_AUDIT_VALUE_BYTES);
    assert!(summary.ends_with('…'));
}

/// Workloads are told apart by group and resource: `apps` statefulsets and
/// daemonsets go to the workload path as deployments do; the same
/// resource in another group does not.
#[test]
fn workload_resources_are_routed_by_group_and_resource() {
    let target = |group: &str, resource: &str| {
        let body = review("CREATE", group, resource, json!({}));
        Target::of(&parse_review(&body).expect("a review"))
    };
    assert_eq!(target("", "configmaps"), Target::ConfigMap);
    for kind in WorkloadKind::ALL {
        assert_eq!(target("apps", kind.resource()), Target::Workload(kind));
        assert_eq!(target("example.com", kind.resource()), Target::Other);
    }
    assert_eq!(target("batch", "jobs"), Target::Other);
    assert_eq!(target("batch", "cronjobs"), Target::Other);
}

/// A workload no link names, which a rule matches as an object, goes
/// through that rule as any other kind does: a Deployment's pull secrets
/// declared a set are put in order, with the preset still in force.
#[tokio::test]
async fn an_object_rule_applies_to_a_workload_no_link_names() {
    let mut rules = RuleSet::preset().rules().to_vec();
    rules.extend(
        RuleSet::from_yaml(
            "apiVersion: vmcp-normalizer.io/v1alpha1
kind: NormalizationRules
rules:
  - name: pull-secrets
    match: {apiVersion: apps/v1, kind: Deployment, selector: {matchLabels: {app: web}}}
    format: object
    sets: [{path: spec.template.spec.imagePullSecrets, by: name}]
",
        )
        .expect("valid rules")
        .rules()
        .iter()
        .cloned(),
    );
    let admission =
        admission().with_rules(Arc::new(ArcSwap::from_pointee(RuleSet::from_rules(rules))));
    let body = |labels: Value| {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": UID,
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "namespace": "team-a", "name": "web", "operation": "CREATE", "dryRun": false,
                "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "web", "labels": labels},
                    "spec": {"template": {"spec": {"imagePullSecrets": [{"name": "b"}, {"name": "a"}]}}}}
            }
        }))
        .expect("encode review")
    };
    let patched = answer(&admission, &body(json!({"app": "web"}))).await;
    let encoded = patched["response"]["patch"].as_str().expect("a patch");
    let decoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64")
    };
    assert_eq!(
        serde_json::from_slice::<Value>(&decoded).expect("JSON patch"),
        json!([{"op": "replace", "path": "/spec/template/spec/imagePullSecrets",
            "value": [{"name": "a"}, {"name": "b"}]}])
    );
    // Another Deployment: no rule matches it, nothing changes.
    let other = answer(&admission, &body(json!({"app": "api"}))).await;
    assert!(other["response"].get("patch").is_none(), "{other}");
}

//! Declared sets beyond vMCP: three producers (a YAML set of mappings at a
//! nested path, a JSON array of strings, a list under a custom resource's
//! spec), every input order giving one output, refusals instead of
//! corruption, the admission path in both modes, the `rules` commands, and
//! `serve --rules` reloading its file.

mod common;

use common::process::run;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use vmcp_normalizer::admission::Admission;
use vmcp_normalizer::metrics::Metrics;
use vmcp_normalizer::normalize::{Outcome, RefusalReason};
use vmcp_normalizer::rules::{ObjectKind, PRESET, RuleSet};

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn example_rules() -> RuleSet {
    RuleSet::from_yaml(&fixture_text("rules/declared-sets.yaml")).expect("the example rules")
}

fn documents(name: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    vmcp_normalizer::manifest::for_each_document(&fixture_text(name), |_, value, _| {
        objects.push(value);
    })
    .expect("fixture documents");
    objects
}

/// The object with its rule's patch applied, and the rule's name.
fn canonical(rules: &RuleSet, object: &Value) -> (String, Value) {
    let kind = ObjectKind::of(object).expect("kind");
    let applied = rules.apply(kind, object);
    let name = applied.rule_name().to_owned();
    match applied.outcome {
        Outcome::Normalized(normalized) => (name, normalized.apply_to(object).expect("applies")),
        Outcome::Unchanged => (name, object.clone()),
        other => panic!("{object}: {other:?}"),
    }
}

fn gateway(config: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "edge-gateway",
            "labels": {"app.kubernetes.io/name": "gateway"},
            "annotations": {"example.com/config-sha256": "stale"},
        },
        "data": {"gateway.yaml": config},
    })
}

#[test]
fn three_producers_are_put_in_canonical_form() {
    let rules = example_rules();
    let objects = documents("rules/configmaps.yaml");

    let (rule, gateway) = canonical(&rules, &objects[0]);
    assert_eq!(rule, "gateway-upstreams");
    let config = "routes:\n    - path: /api\n      upstreams:\n        # the canary\n        - name: alpha\n          url: http://alpha:8080\n          weight: 10\n        - name: zeta\n          url: http://zeta:8080\n      middleware:\n        - auth\n        - ratelimit\n    - path: /static\n      upstreams:\n        - name: cdn-a\n        - name: cdn-b\n";
    assert_eq!(gateway["data"]["gateway.yaml"], config);
    // Python: hashlib.sha256(config.encode()).hexdigest()
    assert_eq!(
        gateway["metadata"]["annotations"]["example.com/config-sha256"],
        "834bea27d21089a09e7fcc38af2a97b646e58412fa4df2242777fc1692543ed8"
    );

    let (rule, egress) = canonical(&rules, &objects[1]);
    assert_eq!(rule, "allowed-hosts");
    assert_eq!(
        egress["data"]["hosts.json"],
        "{\n  \"allowed\": [\n    \"api.example.com\",\n    \"github.com\",\n    \"registry.example.com\"\n  ],\n  \"denied\": [\n    \"z.example.com\",\n    \"a.example.com\"\n  ]\n}",
        "only the declared array moves"
    );

    let listeners = &documents("rules/listenerset.yaml")[0];
    let (rule, listeners) = canonical(&rules, listeners);
    assert_eq!(rule, "listener-sets");
    assert_eq!(
        listeners["spec"],
        json!({"listeners": [{"name": "http", "port": 80}, {"name": "https", "port": 443}], "filters": ["tls", "log"]})
    );

    // Each canonical object is left alone the second time.
    for object in [gateway, egress, listeners] {
        let applied = rules.apply(ObjectKind::of(&object).unwrap(), &object);
        assert_eq!(applied.outcome, Outcome::Unchanged, "{object}");
    }
}

#[test]
fn the_preset_is_what_runs_and_files_may_include_it() {
    let configmap = common::fixture("vmcp-configmap.yaml");
    let kind = ObjectKind::of(&configmap).unwrap();
    let (preset, example) = (RuleSet::preset(), example_rules());
    let preset = preset.apply(kind, &configmap);
    let included = example.apply(kind, &configmap);
    assert_eq!(preset.rule_name(), PRESET);
    assert_eq!(included.rule_name(), PRESET);
    assert_eq!(
        preset.outcome,
        vmcp_normalizer::normalize::normalize_configmap(&configmap)
    );
    assert_eq!(included.outcome, preset.outcome);
}

/// Items of one upstream set, each with its own shape, and an optional
/// comment line above (which moves with it).
const UPSTREAMS: [&str; 5] = [
    "        - name: zeta\n          url: http://zeta\n",
    "        # the canary\n        - name: alpha\n          weight: 10\n",
    "        - {name: mid, url: 'http://m'}\n",
    "        - name: \"beta\"\n          note: |\n            two\n            lines\n",
    "        - name: Alpha\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_order_of_a_nested_yaml_set_gives_one_object(
        first in Just((0..UPSTREAMS.len()).collect::<Vec<_>>()).prop_shuffle(),
        second in Just(vec![0usize, 1, 2]).prop_shuffle(),
    ) {
        let rules = example_rules();
        let build = |first: &[usize], second: &[usize]| {
            let first: String = first.iter().map(|&i| UPSTREAMS[i]).collect();
            let second: String = second.iter().map(|&i| format!("        - name: s{i}\n")).collect();
            gateway(&format!("routes:\n    - path: /a\n      upstreams:\n{first}      retries: 2\n    - path: /b\n      upstreams:\n{second}"))
        };
        let reference = canonical(&rules, &build(&[4, 1, 3, 2, 0], &[0, 1, 2])).1;
        let got = canonical(&rules, &build(&first, &second)).1;
        prop_assert_eq!(&got, &reference);
        let again = rules.apply(ObjectKind::of(&got).unwrap(), &got);
        prop_assert_eq!(again.outcome, Outcome::Unchanged, "idempotent");
    }

    #[test]
    fn every_order_of_a_json_array_of_strings_gives_one_text(
        hosts in Just(vec!["b.example", "a.example", "\u{e9}t\u{e9}", "A", "a\"q"]).prop_shuffle(),
        indented in any::<bool>(),
    ) {
        let rules = example_rules();
        let document = json!({"allowed": hosts, "denied": ["z", "a"]});
        let text = if indented {
            serde_json::to_string_pretty(&document).unwrap()
        } else {
            serde_json::to_string(&document).unwrap()
        };
        let object = json!({"kind": "ConfigMap", "metadata": {"labels": {"app.kubernetes.io/name": "egress"}}, "data": {"hosts.json": text}});
        let got = canonical(&rules, &object).1;
        let mut sorted = vec!["b.example", "a.example", "\u{e9}t\u{e9}", "A", "a\"q"];
        sorted.sort_unstable(); // byte order, as Go's sort.Strings
        let expected = json!({"allowed": sorted, "denied": ["z", "a"]});
        let expected = if indented {
            serde_json::to_string_pretty(&expected).unwrap()
        } else {
            serde_json::to_string(&expected).unwrap()
        };
        prop_assert_eq!(got["data"]["hosts.json"].as_str().unwrap(), expected.as_str());
    }

    #[test]
    fn every_order_of_a_set_in_the_object_gives_one_object(
        names in Just(vec!["https", "http", "grpc", "admin"]).prop_shuffle(),
    ) {
        let rules = example_rules();
        let listeners: Vec<Value> = names.iter().map(|name| json!({"name": name, "port": name.len()})).collect();
        let object = json!({"apiVersion": "example.com/v1", "kind": "ListenerSet", "spec": {"listeners": listeners}});
        let got = canonical(&rules, &object).1;
        let order: Vec<&str> = got["spec"]["listeners"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
        prop_assert_eq!(order, vec!["admin", "grpc", "http", "https"]);
    }
}

#[test]
fn what_cannot_be_proven_is_refused_not_corrupted() {
    let rules = example_rules();
    for (config, reason, says) in [
        // An alias to an anchor in another item would come before it.
        (
            "routes:\n- upstreams:\n  - name: b\n    url: &u http://x\n  - name: a\n    url: *u\n",
            RefusalReason::ProofFailed,
            "does not read back",
        ),
        // A block scalar ending the text without a line break, moved up,
        // would gain one.
        (
            "routes:\n- upstreams:\n  - name: b\n  - name: a\n    note: |\n      x",
            RefusalReason::ProofFailed,
            "routes[*].upstreams #1[0] reads differently",
        ),
        // Flow style at the nested path: the layout does not cut it.
        (
            "routes:\n- upstreams: [{name: b}, {name: a}]\n",
            RefusalReason::Unsupported,
            "on its key's line",
        ),
        (
            "routes:\n- upstreams:\n  - name: b\n  - url: a\n",
            RefusalReason::Unsupported,
            "item 2 has no string name",
        ),
    ] {
        let object = gateway(config);
        match rules
            .apply(ObjectKind::of(&object).unwrap(), &object)
            .outcome
        {
            Outcome::Refused(refusal) => {
                assert_eq!(refusal.reason, reason, "{config}: {refusal}");
                assert!(refusal.detail.contains(says), "{config}: {refusal}");
            }
            other => panic!("{config}: {other:?}"),
        }
    }
}

fn review_of(object: &Value, group: &str, resource: &str) -> Value {
    let mut review = common::review("uid-1", "UPDATE", object, Some(object));
    let version = object["apiVersion"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    for key in ["kind", "requestKind"] {
        review["request"][key]["group"] = json!(group);
        review["request"][key]["version"] = json!(version);
    }
    for key in ["resource", "requestResource"] {
        review["request"][key] = json!({"group": group, "version": version, "resource": resource});
    }
    review
}

#[tokio::test]
async fn the_admission_path_patches_in_mutate_mode_and_only_warns_in_warn_mode() {
    let metrics = Arc::new(Metrics::new());
    let admission = Admission::new(metrics.clone())
        .with_rules(Arc::new(arc_swap::ArcSwap::from_pointee(example_rules())));
    let answer = |body: Value| {
        let admission = admission.clone();
        async move {
            let bytes = admission
                .review(&serde_json::to_vec(&body).unwrap(), Duration::from_secs(5))
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };

    let configmaps = documents("rules/configmaps.yaml");
    let patched = answer(review_of(&configmaps[0], "", "configmaps")).await;
    let patch = common::decode_patch(&patched).expect("a patch");
    let mut object = configmaps[0].clone();
    json_patch::patch(&mut object, &patch).unwrap();
    assert_eq!(object, canonical(&example_rules(), &configmaps[0]).1);
    assert_eq!(
        patched["response"]["auditAnnotations"]["normalized"],
        "set-reordered,checksum"
    );

    let listeners = &documents("rules/listenerset.yaml")[0];
    let warned = answer(review_of(listeners, "example.com", "listenersets")).await;
    assert!(warned["response"].get("patch").is_none(), "{warned}");
    assert_eq!(warned["response"]["allowed"], true);
    assert_eq!(
        warned["response"]["auditAnnotations"]["would-normalize"],
        "set-reordered"
    );
    assert_eq!(
        warned["response"]["warnings"],
        json!([
            "vmcp-normalizer (warn only): would have sorted 2 items of spec.listeners by name in the object"
        ])
    );

    // A kind no rule names is skipped as before.
    let mut other = listeners.clone();
    other["kind"] = json!("Other");
    let skipped = answer(review_of(&other, "example.com", "others")).await;
    assert!(skipped["response"].get("patch").is_none());

    let text = metrics.encode().unwrap();
    assert!(text.contains("outcome=\"warned\""), "{text}");
    assert!(text.contains("outcome=\"patched\""), "{text}");
}

/// An UPDATE that only reorders a declared set: the order-churn detector
/// names the list, and counts it under `rule="declared"` (the webhook puts
/// it back in order), not `none` (a list nobody fixes).
#[tokio::test]
async fn churn_in_a_declared_set_is_counted_as_declared() {
    let metrics = Arc::new(Metrics::new());
    let admission = Admission::new(metrics.clone())
        .with_rules(Arc::new(arc_swap::ArcSwap::from_pointee(example_rules())));
    let written = documents("rules/configmaps.yaml")[0].clone();
    let stored = canonical(&example_rules(), &written).1;
    let mut review = review_of(&written, "", "configmaps");
    review["request"]["oldObject"] = stored;
    let bytes = admission
        .review(
            &serde_json::to_vec(&review).unwrap(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        answer["response"]["auditAnnotations"]["order-churn"], "gateway.yaml: routes[*].upstreams",
        "{answer}"
    );
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="declared"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vmcp_normalizer_order_churn_total{kind="ConfigMap",rule="none"} 0"#),
        "{text}"
    );
}

#[test]
fn rules_check_reports_each_problem_with_line_and_column() {
    let (code, stdout, _) = run(&["rules", "check", "tests/fixtures/rules/declared-sets.yaml"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout,
        "tests/fixtures/rules/declared-sets.yaml: ok: 4 rules (toolhive-vmcp, gateway-upstreams, allowed-hosts, listener-sets)\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        fixture_text("rules/declared-sets.yaml")
            .replace("path: routes[*].upstreams", "path: routes[0].upstreams")
            .replace("algorithm: sha256", "algorithm: md5"),
    )
    .unwrap();
    let (code, stdout, _) = run(&["rules", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(":25:18: (file): rules[0].checksum.algorithm: unknown variant `md5`"),
        "{stdout}"
    );
    std::fs::write(
        &bad,
        fixture_text("rules/declared-sets.yaml")
            .replace("path: routes[*].upstreams", "path: routes[0].upstreams"),
    )
    .unwrap();
    let (code, stdout, _) = run(&["rules", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.ends_with(":21:9: rules[0].sets[0].path: `[` at character 6 is not `[*]` (only every item of a list can be named)\n"),
        "{stdout}"
    );
    let (code, _, stderr) = run(&["rules", "check", "missing.yaml"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn rules_explain_says_which_rule_matches_and_what_it_would_do() {
    let (code, stdout, stderr) = run(&[
        "rules",
        "explain",
        "tests/fixtures/rules/declared-sets.yaml",
        "tests/fixtures/rules/listenerset.yaml",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "ListenerSet demo/public:\n  rule listener-sets (mode warn)\n  set spec.listeners by name in the object's fields\n  would warn:\n    - sorted 2 items of spec.listeners by name in the object\n  patch: [{\"op\":\"replace\",\"path\":\"/spec/listeners\",\"value\":[{\"name\":\"http\",\"port\":80},{\"name\":\"https\",\"port\":443}]}]\n"
    );
    let (code, stdout, _) = run(&[
        "rules",
        "explain",
        "preset",
        "tests/fixtures/vmcp-deployment.yaml",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("workload of rule toolhive-vmcp: pod-template annotation toolhive.stacklok.dev/runconfig-checksum"), "{stdout}");
    let (code, stdout, _) = run(&[
        "rules",
        "explain",
        "preset",
        "tests/fixtures/rules/listenerset.yaml",
    ]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            0,
            "ListenerSet demo/public:\n  no rule matches: left as it is\n"
        )
    );
}

#[test]
fn normalize_with_rules_writes_the_declared_sets_in_order() {
    let (code, stdout, stderr) = run(&[
        "normalize",
        "--rules",
        "tests/fixtures/rules/declared-sets.yaml",
        "tests/fixtures/rules/configmaps.yaml",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("            # the canary\n            - name: alpha\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "\"api.example.com\",\n        \"github.com\",\n        \"registry.example.com\"\n"
        ),
        "{stdout}"
    );
    // Without the rules, the preset knows none of these objects.
    let (code, stdout, _) = run(&[
        "normalize",
        "--check",
        "tests/fixtures/rules/configmaps.yaml",
    ]);
    assert_eq!((code, stdout.as_str()), (0, ""));
    let (code, _, stderr) = run(&[
        "normalize",
        "--rules",
        "missing.yaml",
        "tests/fixtures/rules/configmaps.yaml",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

/// `kubectl get -o yaml` wraps objects in a `kind: List`, whose items the
/// CLI reads sparsely: an item a declared rule matches is held whole and
/// normalized, not replaced by a stub as other objects are.
#[test]
fn a_kubectl_list_holds_the_items_a_rule_matches() {
    let items: Vec<Value> = documents("rules/configmaps.yaml");
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.yaml");
    std::fs::write(&path, yaml_serde::to_string(&list).unwrap()).unwrap();
    let (code, stdout, stderr) = run(&[
        "normalize",
        "--check",
        "--rules",
        "tests/fixtures/rules/declared-sets.yaml",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("ConfigMap demo/edge-gateway would change: sorted 4 items"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ConfigMap demo/egress would change: sorted 3 items"),
        "{stdout}"
    );
}

#[tokio::test]
async fn serve_reloads_its_rules_and_keeps_the_last_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    let rules = fixture_text("rules/declared-sets.yaml");
    std::fs::write(&path, &rules).unwrap();
    let mut served =
        common::serve_binary(&["--rules", path.to_str().unwrap(), "--tls-poll-interval=1s"]);
    let client = common::client(&served.pki.ca_pem, served.addr, common::Http::V1);
    let url = format!("https://localhost:{}/mutate", served.addr.port());
    let egress = documents("rules/configmaps.yaml")[1].clone();
    let patched = |client: reqwest::Client, url: String, egress: Value| async move {
        let (status, body) =
            common::post_review(&client, &url, &review_of(&egress, "", "configmaps"))
                .await
                .unwrap();
        assert!(status.is_success());
        common::decode_patch(&serde_json::from_slice(&body).unwrap()).is_some()
    };
    assert!(patched(client.clone(), url.clone(), egress.clone()).await);

    std::fs::write(&path, rules.replace("by: .", "by: ''")).unwrap();
    let refused = served
        .process
        .wait_for_log("rules file refused; the last good rules stay in force");
    assert!(
        refused["problems"]
            .to_string()
            .contains("rules[1].sets[0].by"),
        "{refused}"
    );
    assert!(
        patched(client.clone(), url.clone(), egress.clone()).await,
        "the last good rules"
    );

    std::fs::write(
        &path,
        rules.replace(
            "  - name: allowed-hosts\n",
            "  - name: allowed-hosts\n    mode: warn\n",
        ),
    )
    .unwrap();
    served.process.wait_for_log("rules file reloaded");
    assert!(!patched(client, url, egress).await, "warn mode now");
}

#[test]
fn serve_refuses_to_start_with_a_bad_rules_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, "apiVersion: v1\nkind: NormalizationRules\n").unwrap();
    let (code, _, stderr) = run(&[
        "serve",
        "--rules",
        path.to_str().unwrap(),
        "--tls-cert=x",
        "--tls-key=y",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("line 1 column 1: apiVersion: is \"v1\""),
        "{stderr}"
    );
}

/// A rules file linking Deployments labelled `app: egress` to the JSON set
/// `hosts.json` (plain SHA-256), the workload naming its ConfigMap by
/// `config_map`; and a manifest of such a Deployment (pod spec `pod_spec`,
/// indented for `template`) and ConfigMap `configmap`, both checksums stale.
fn egress_link(
    config_map: &str,
    pod_spec: &str,
    configmap: &str,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!("apiVersion: vmcp-normalizer.io/v1alpha1\nkind: NormalizationRules\nrules:\n- name: hosts\n  match: {{kind: ConfigMap, selector: {{matchLabels: {{app: egress}}}}}}\n  key: hosts.json\n  format: json\n  sets: [{{path: ., by: .}}]\n  checksum: {{annotation: example.com/hosts-sha256, algorithm: sha256}}\n  workload:\n    kind: Deployment\n    selector: {{matchLabels: {{app: egress}}}}\n    annotation: example.com/hosts-sha256\n    configMap: {config_map}\n"),
    )
    .unwrap();
    let manifest = dir.path().join("egress.yaml");
    std::fs::write(
        &manifest,
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: proxy\n  labels: {{app: egress}}\nspec:\n  template:\n    metadata:\n      annotations:\n        example.com/hosts-sha256: \"{STALE}\"\n{pod_spec}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {configmap}\n  labels: {{app: egress}}\n  annotations:\n    example.com/hosts-sha256: \"{STALE}\"\ndata:\n  hosts.json: '[\"b\",\"a\"]'\n"),
    )
    .unwrap();
    (dir, rules, manifest)
}

const STALE: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Python: hashlib.sha256(b'["a","b"]').hexdigest()
const HOSTS_CANONICAL: &str = "0473ef2dc0d324ab659d3580c1134e9d812035905c4781fdd6d529b0c6860e13";

/// `normalize` keeps a rule's workload link in step offline, as the webhook
/// does live: the Deployment's annotation takes the checksum of the
/// canonical ConfigMap of the same input.
#[test]
fn normalize_keeps_a_rules_workload_link_in_step() {
    let (_dir, rules, manifest) = egress_link("{nameTemplate: '{name}-hosts'}", "", "proxy-hosts");
    let (code, stdout, stderr) = run(&[
        "normalize",
        "--rules",
        rules.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches(HOSTS_CANONICAL).count(), 2, "{stdout}");
    assert!(stdout.contains("hosts.json: '[\"a\",\"b\"]'"), "{stdout}");
    assert!(!stdout.contains(STALE), "{stdout}");
}

/// A workload that names its ConfigMap by an env `valueFrom` is kept in
/// step offline too; `rules explain` says how it names it.
#[test]
fn normalize_follows_a_configmap_named_by_an_env_value_from() {
    let pod_spec = "    spec:\n      containers:\n      - name: proxy\n        env:\n        - name: HOSTS\n          valueFrom: {configMapKeyRef: {name: egress-hosts, key: hosts.json}}\n";
    let (_dir, rules, manifest) = egress_link("{env: HOSTS}", pod_spec, "egress-hosts");
    let (code, stdout, stderr) = run(&[
        "normalize",
        "--rules",
        rules.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches(HOSTS_CANONICAL).count(), 2, "{stdout}");
    assert!(!stdout.contains(STALE), "{stdout}");
    let (code, stdout, stderr) = run(&[
        "rules",
        "explain",
        rules.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("the ConfigMap its env HOSTS takes a value from"),
        "{stdout}"
    );
}

/// A rule in mode `warn` reports its workload link's change and patches
/// nothing, in the webhook and offline.
#[tokio::test]
async fn a_warn_rule_reports_its_workload_link_without_patching() {
    use vmcp_normalizer::admission::{BoxFuture, Verdict, WorkloadMutator, WorkloadReview};
    struct Syncs;
    impl WorkloadMutator for Syncs {
        fn mutate<'a>(&'a self, _: WorkloadReview<'a>) -> BoxFuture<'a, Verdict> {
            let patch: json_patch::Patch = serde_json::from_value(json!([
                {"op": "replace", "path": "/spec/template/metadata/annotations/example.com~1sha", "value": "new"}
            ]))
            .unwrap();
            Box::pin(std::future::ready(
                Verdict::patched(patch)
                    .with_warning("vmcp-normalizer: example.com/sha old -> new")
                    .with_audit_annotation("normalized", "checksum"),
            ))
        }
    }
    let rules = "apiVersion: vmcp-normalizer.io/v1alpha1\nkind: NormalizationRules\nrules:\n- name: hosts\n  mode: warn\n  match: {kind: ConfigMap, selector: {matchLabels: {app: egress}}}\n  key: hosts.json\n  format: json\n  sets: [{path: ., by: .}]\n  checksum: {annotation: example.com/sha, algorithm: sha256}\n  workload: {kind: Deployment, selector: {matchLabels: {app: egress}}, annotation: example.com/sha, configMap: {nameTemplate: '{name}-hosts'}}\n";
    let admission = Admission::new(Arc::new(Metrics::new()))
        .with_rules(Arc::new(arc_swap::ArcSwap::from_pointee(
            RuleSet::from_yaml(rules).unwrap(),
        )))
        .with_workload_mutator(Arc::new(Syncs));
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "proxy", "namespace": "edge", "labels": {"app": "egress"}}});
    let body = serde_json::to_vec(&review_of(&deployment, "apps", "deployments")).unwrap();
    let answer: Value = serde_json::from_slice(
        &admission
            .review(&body, Duration::from_secs(5))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    assert_eq!(
        answer["response"]["warnings"],
        json!(["vmcp-normalizer (warn only): would have example.com/sha old -> new"])
    );
    assert_eq!(
        answer["response"]["auditAnnotations"]["would-normalize"],
        "checksum"
    );

    // Offline: the same rule leaves both objects as read, with warnings.
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.yaml");
    std::fs::write(&rules_path, rules).unwrap();
    let manifest = dir.path().join("egress.yaml");
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: proxy\n  labels: {app: egress}\nspec:\n  template:\n    metadata:\n      annotations:\n        example.com/sha: stale\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: proxy-hosts\n  labels: {app: egress}\n  annotations:\n    example.com/sha: stale\ndata:\n  hosts.json: '[\"b\",\"a\"]'\n";
    std::fs::write(&manifest, text).unwrap();
    let (code, stdout, stderr) = run(&[
        "normalize",
        "--rules",
        rules_path.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert_eq!((code, stdout.as_str()), (0, text), "{stderr}");
    assert!(stderr.contains("Deployment proxy: rule hosts (warn only) would have example.com/sha stale -> 0473ef2dc0d3"), "{stderr}");
    assert!(stderr.contains("ConfigMap proxy-hosts: rule hosts (warn only) would have sorted 2 items of . by value in hosts.json"), "{stderr}");
}

/// `normalize` with a rules file whose `format: object` rule patches (the
/// example's `listener-sets` in mode mutate), on inputs written to a
/// temporary directory.
struct ObjectRules {
    dir: tempfile::TempDir,
    rules: &'static str,
}

impl ObjectRules {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            rules: "tests/fixtures/rules/listener-sets.yaml",
        }
    }

    fn set(&self) -> RuleSet {
        RuleSet::from_yaml(&fixture_text("rules/listener-sets.yaml")).unwrap()
    }

    /// Run `normalize` (with `flags`) on `text` written as `name`.
    fn normalize(&self, flags: &[&str], name: &str, text: &str) -> (i32, String, String) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut args = vec!["normalize", "--rules", self.rules];
        args.extend(flags);
        args.push(path.to_str().unwrap());
        run(&args)
    }
}

/// The documents of a manifest text, as the CLI reads them.
fn read_documents(text: &str) -> Vec<Value> {
    let mut read = Vec::new();
    vmcp_normalizer::manifest::for_each_document(text, |_, value, _| read.push(value)).unwrap();
    read
}

#[test]
fn normalize_writes_an_object_rules_sets_back_byte_exact() {
    let rules = ObjectRules::new();
    let input = fixture_text("rules/listenerset.yaml");
    let golden = fixture_text("rules/listenerset.normalized.yaml");
    let (code, stdout, stderr) = rules.normalize(&[], "listenerset.yaml", &input);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, golden.as_str(), "")
    );
    // The written object is the one the rule's patch gives.
    let object = &read_documents(&input)[0];
    assert_eq!(read_documents(&stdout), [canonical(&rules.set(), object).1]);
    // --check and --patch say what would be written.
    let (code, stdout, _) = rules.normalize(&["--check"], "listenerset.yaml", &input);
    assert_eq!(code, 1);
    assert!(
        stdout.ends_with("ListenerSet demo/public would change: sorted 2 items of spec.listeners by name in the object\n"),
        "{stdout}"
    );
    let (code, stdout, _) = rules.normalize(&["--patch"], "listenerset.yaml", &input);
    assert_eq!(code, 0);
    let line: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        line["patch"],
        json!([{"op": "replace", "path": "/spec/listeners", "value": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}])
    );
    // Idempotent: the output is canonical.
    let (code, stdout, stderr) = rules.normalize(&[], "again.yaml", &golden);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, golden.as_str(), "")
    );
    let (code, stdout, _) = rules.normalize(&["--check"], "again.yaml", &golden);
    assert_eq!((code, stdout.as_str()), (0, ""));
}

/// The webhook's answer for the object, applied, is what `normalize` writes.
#[tokio::test]
async fn normalize_writes_what_the_webhook_patches() {
    let rules = ObjectRules::new();
    let input = fixture_text("rules/listenerset.yaml");
    let object = &read_documents(&input)[0];
    let admission = Admission::new(Arc::new(Metrics::new()))
        .with_rules(Arc::new(arc_swap::ArcSwap::from_pointee(rules.set())));
    let body = serde_json::to_vec(&review_of(object, "example.com", "listenersets")).unwrap();
    let answer: Value = serde_json::from_slice(
        &admission
            .review(&body, Duration::from_secs(5))
            .await
            .unwrap(),
    )
    .unwrap();
    let mut patched = object.clone();
    json_patch::patch(
        &mut patched,
        &common::decode_patch(&answer).expect("a patch"),
    )
    .unwrap();
    let (code, stdout, _) = rules.normalize(&[], "listenerset.yaml", &input);
    assert_eq!(code, 0);
    assert_eq!(read_documents(&stdout), [patched]);
}

#[test]
fn an_object_rules_sets_are_written_in_a_list_json_and_a_stream() {
    let rules = ObjectRules::new();
    let input = fixture_text("rules/listenerset.yaml");
    let golden = fixture_text("rules/listenerset.normalized.yaml");
    let indent = |text: &str| {
        let mut lines = text.lines();
        let first = format!("- {}\n", lines.next().unwrap());
        first + &lines.map(|line| format!("  {line}\n")).collect::<String>()
    };
    // A kind: List, with a comment above the item and another item before.
    let other = "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: other}\n  data: {order: \"b,a\"}\n";
    let list = |item: &str| {
        format!(
            "apiVersion: v1\nkind: List\nitems:\n{other}# the listener set\n{item}metadata:\n  resourceVersion: \"\"\n"
        )
    };
    let (code, stdout, stderr) = rules.normalize(&[], "list.yaml", &list(&indent(&input)));
    assert_eq!(
        (code, stdout, stderr),
        (0, list(&indent(&golden)), String::new())
    );

    // JSON, indented as kubectl prints it, and a JSON List.
    let object = &read_documents(&input)[0];
    let json_text = |value: &Value| format!("{}\n", serde_json::to_string_pretty(value).unwrap());
    let canonical_object = canonical(&rules.set(), object).1;
    let (code, stdout, _) = rules.normalize(&[], "ls.json", &json_text(object));
    assert_eq!((code, stdout), (0, json_text(&canonical_object)));
    let json_list = |item: &Value| {
        json!({"apiVersion": "v1", "kind": "List", "items": [{"kind": "ConfigMap", "metadata": {"name": "x"}}, item]}).to_string()
    };
    let (code, stdout, _) = rules.normalize(&[], "list.json", &json_list(object));
    assert_eq!((code, stdout), (0, json_list(&canonical_object)));

    // A stream: only the document that changes is rewritten.
    let first =
        "# leading\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: \"1\"}\n";
    let last = "---\n# already in order\napiVersion: example.com/v1\nkind: ListenerSet\nmetadata: {name: other}\nspec:\n  listeners:\n  - {name: a}\n  - {name: b}\n";
    let stream = format!("{first}---\n{input}{last}");
    let (code, stdout, stderr) = rules.normalize(&[], "stream.yaml", &stream);
    assert_eq!(
        (code, stdout, stderr),
        (0, format!("{first}---\n{golden}{last}"), String::new())
    );

    // CRLF lines stay CRLF.
    let crlf = |text: &str| text.replace('\n', "\r\n");
    let (code, stdout, _) = rules.normalize(&[], "crlf.yaml", &crlf(&input));
    assert_eq!((code, stdout), (0, crlf(&golden)));
}

#[test]
fn an_object_that_cannot_be_reordered_in_place_is_left_as_read() {
    let rules = ObjectRules::new();
    for (name, text, reason) in [
        (
            "flow.yaml",
            "apiVersion: example.com/v1\nkind: ListenerSet\nmetadata: {name: f}\nspec:\n  listeners: [{name: b}, {name: a}]\n",
            "a list written on its key's line (flow style, anchor or tag) is not reordered",
        ),
        (
            "anchor.yaml",
            "apiVersion: example.com/v1\nkind: ListenerSet\nmetadata: {name: f}\nspec:\n  listeners:\n  - name: b\n    port: &p 80\n  - name: a\n    port: *p\n",
            "it does not read back",
        ),
        // Equal keys: the object's patch orders the two `b` items by their
        // JSON ({"name":"b","x":1} first), the text by their bytes (`- n`
        // before `- {`). Only the proof stands between this and a wrong file.
        (
            "tie.yaml",
            "apiVersion: example.com/v1\nkind: ListenerSet\nmetadata: {name: f}\nspec:\n  listeners:\n  - name: c\n  - name: b\n    y: 1\n  - {name: b, x: 1}\n",
            "does not read back as the normalized object",
        ),
        (
            "flow-list.yaml",
            "kind: List\nitems: [{apiVersion: example.com/v1, kind: ListenerSet, metadata: {name: f}, spec: {listeners: [{name: b}, {name: a}]}}]\n",
            "item 0 of the List is not a block sequence item",
        ),
    ] {
        let (code, stdout, stderr) = rules.normalize(&[], name, text);
        assert_eq!((code, stdout.as_str()), (3, text), "{name}: {stderr}");
        assert!(
            stderr.contains("ListenerSet f: left as read (sorted ")
                && stderr.contains(" items of spec.listeners by name in the object): ")
                && stderr.contains(reason),
            "{name}: {stderr}"
        );
        // --check and --patch agree: nothing would be written.
        let (code, stdout, _) = rules.normalize(&["--check"], name, text);
        assert_eq!((code, stdout.as_str()), (3, ""), "{name}");
        let (code, stdout, _) = rules.normalize(&["--patch"], name, text);
        let line: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!((code, &line["patch"]), (3, &json!([])), "{name}");
    }
}

#[test]
fn a_warn_object_rule_reports_and_writes_nothing() {
    let input = fixture_text("rules/listenerset.yaml");
    let (code, stdout, stderr) = run(&[
        "normalize",
        "--rules",
        "tests/fixtures/rules/declared-sets.yaml",
        "tests/fixtures/rules/listenerset.yaml",
    ]);
    assert_eq!((code, stdout.as_str()), (0, input.as_str()), "{stderr}");
    assert_eq!(
        stderr,
        "warning: tests/fixtures/rules/listenerset.yaml: ListenerSet demo/public: rule listener-sets (warn only) would have sorted 2 items of spec.listeners by name in the object\n"
    );
}

//! The core against the spec: golden fixtures, checksum vectors, properties.

use proptest::prelude::*;
use serde_json::{Value, json};
use vmcp_normalizer::checksum::content_checksum;
use vmcp_normalizer::normalize::{Change, Outcome, RefusalReason, normalize_configmap};
use vmcp_normalizer::recognize::CONTENT_CHECKSUM_ANNOTATION;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config(object: &Value) -> &str {
    object["data"]["config.yaml"].as_str().expect("config.yaml")
}

fn checksum_annotation(object: &Value) -> &str {
    object["metadata"]["annotations"][CONTENT_CHECKSUM_ANNOTATION]
        .as_str()
        .expect("checksum")
}

/// The normalization of `input`, and `input` with its patch applied.
fn normalized(input: &Value) -> (vmcp_normalizer::normalize::Normalized, Value) {
    match normalize_configmap(input) {
        Outcome::Normalized(normalized) => {
            let object = normalized.apply_to(input).expect("the patch applies");
            (normalized, object)
        }
        other => panic!("expected a normalization, got {other:?}"),
    }
}

#[test]
fn buggy_fixture_becomes_the_fixed_operators_bytes() {
    let buggy = fixture("vmcp-configmap.yaml");
    let expected = fixture("vmcp-configmap.normalized.yaml");
    let (result, result_object) = normalized(&buggy);

    assert_eq!(config(&result_object), config(&expected));
    assert_eq!(
        checksum_annotation(&result_object),
        checksum_annotation(&expected)
    );
    assert_eq!(
        result.changes,
        vec![
            Change::BackendsReordered {
                key: "config.yaml".into(),
                items: 5
            },
            Change::ContentChecksum {
                from: "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48".into(),
                to: "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee".into(),
            },
        ]
    );
    // Exactly two replaces, keys escaped as RFC 6901 asks.
    let patch = serde_json::to_value(&result.patch).unwrap();
    assert_eq!(patch.as_array().unwrap().len(), 2);
    assert_eq!(patch[0]["op"], "replace");
    assert_eq!(patch[0]["path"], "/data/config.yaml");
    assert_eq!(patch[0]["value"], expected["data"]["config.yaml"]);
    assert_eq!(
        patch[1],
        json!({"op": "replace",
               "path": "/metadata/annotations/toolhive.stacklok.dev~1content-checksum",
               "value": "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee"})
    );
    // Everything but those two fields is untouched.
    let mut rest = result_object.clone();
    rest["data"]["config.yaml"] = buggy["data"]["config.yaml"].clone();
    rest["metadata"]["annotations"] = buggy["metadata"]["annotations"].clone();
    assert_eq!(rest, buggy);
}

#[test]
fn normalized_fixture_yields_no_patch() {
    assert_eq!(
        normalize_configmap(&fixture("vmcp-configmap.normalized.yaml")),
        Outcome::Unchanged
    );
}

#[test]
fn checksum_vectors_of_the_spec() {
    let buggy = fixture("vmcp-configmap.yaml");
    assert_eq!(
        content_checksum(&buggy).unwrap(),
        "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48"
    );
    assert_eq!(
        content_checksum(&fixture("vmcp-configmap.normalized.yaml")).unwrap(),
        "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee"
    );
    // Another permutation of the same five backends: fetch, mcp-optimizer,
    // oci-registry, osv, context7.
    let mut permuted = buggy.clone();
    permuted["data"]["config.yaml"] = Value::String(permute(
        config(&buggy),
        &["fetch", "mcp-optimizer", "oci-registry", "osv", "context7"],
    ));
    assert_eq!(
        content_checksum(&permuted).unwrap(),
        "32a0798058c0b4645d3589d3e810345b80c192a783dd9632ef85572b61d5fafe"
    );
    // ...and it normalizes to the same bytes as every other permutation.
    let (_, from_permuted_object) = normalized(&permuted);
    assert_eq!(
        config(&from_permuted_object),
        config(&fixture("vmcp-configmap.normalized.yaml"))
    );
}

/// One vector of `tests/fixtures/checksum-vectors.json`: an object and the
/// checksum `scripts/checksum-vectors.py` (Python's hashlib, not this crate)
/// computed for it. CI checks the file is what the script computes.
struct ChecksumVector {
    name: String,
    object: Value,
    checksum: String,
}

fn checksum_vectors() -> Vec<ChecksumVector> {
    let file = fixture_json("checksum-vectors.json");
    let vectors = file["vectors"].as_array().expect("a vectors list");
    vectors
        .iter()
        .map(|vector| ChecksumVector {
            name: vector["name"].as_str().expect("name").to_owned(),
            object: vector["object"].clone(),
            checksum: vector["checksum"].as_str().expect("checksum").to_owned(),
        })
        .collect()
}

fn checksum_vector(name: &str) -> ChecksumVector {
    checksum_vectors()
        .into_iter()
        .find(|vector| vector.name == name)
        .unwrap_or_else(|| panic!("no checksum vector {name:?}"))
}

fn fixture_json(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn checksums_agree_with_the_independent_vectors() {
    let vectors = checksum_vectors();
    assert!(vectors.len() >= 12, "only {} vectors", vectors.len());
    for vector in &vectors {
        let name = &vector.name;
        assert_eq!(
            content_checksum(&vector.object).as_deref(),
            Ok(vector.checksum.as_str()),
            "{name}"
        );
    }
}

/// Rearrange the fixture's operator-style backend items into `names` order.
fn permute(text: &str, names: &[&str]) -> String {
    let start = text.find("    - name: ").unwrap();
    let end = text.find("incomingAuth:").unwrap();
    let items: Vec<&str> = text[start..end]
        .split_inclusive('\n')
        .fold(Vec::new(), |mut items: Vec<String>, line| {
            if line.starts_with("    - ") {
                items.push(String::new());
            }
            items.last_mut().unwrap().push_str(line);
            items
        })
        .leak()
        .iter()
        .map(String::as_str)
        .collect();
    let find = |name: &str| {
        *items
            .iter()
            .find(|i| i.starts_with(&format!("    - name: {name}\n")))
            .unwrap()
    };
    let body: String = names.iter().map(|n| find(n)).collect();
    format!("{}{}{}", &text[..start], body, &text[end..])
}

fn vmcp_configmap(config: &str) -> Value {
    let mut object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "x-vmcp-config",
            "namespace": "ns",
            "labels": {
                "toolhive.stacklok.io/component": "vmcp-config",
                "toolhive.stacklok.io/managed-by": "toolhive-operator",
                "toolhive.stacklok.io/virtual-mcp-server": "x",
            },
            "annotations": {},
        },
        "data": {"config.yaml": config},
    });
    let checksum = content_checksum(&object).unwrap();
    object["metadata"]["annotations"][CONTENT_CHECKSUM_ANNOTATION] = Value::String(checksum);
    object
}

#[test]
fn non_vmcp_objects_pass_untouched() {
    let mut object = vmcp_configmap("backends:\n  - name: b\n  - name: a\n");
    object["metadata"]["labels"]["toolhive.stacklok.io/component"] = json!("run-config");
    assert_eq!(normalize_configmap(&object), Outcome::NotVmcp);
    assert_eq!(
        normalize_configmap(&json!({"kind": "ConfigMap"})),
        Outcome::NotVmcp
    );
    assert_eq!(normalize_configmap(&json!(null)), Outcome::NotVmcp);
}

#[test]
fn no_checksum_annotation_means_none_is_added() {
    let mut object = vmcp_configmap("backends:\n  - name: b\n  - name: a\n");
    object["metadata"]["annotations"] = json!({});
    let (result, result_object) = normalized(&object);
    assert_eq!(result_object["metadata"]["annotations"], json!({}));
    assert_eq!(result.changes.len(), 1);
    assert_eq!(result.patch.0.len(), 1);
}

#[test]
fn other_data_keys_are_hashed_but_never_reordered() {
    let input =
        checksum_vector("normalize: two backends out of order, with authserver-config.yaml");
    let expected = checksum_vector("normalize: the same, backends in order");
    let (_, result_object) = normalized(&input.object);
    // Only config.yaml's backends moved; authserver-config.yaml's list did not.
    assert_eq!(result_object["data"], expected.object["data"]);
    // The new checksum covers both keys, as Python computed it.
    assert_eq!(checksum_annotation(&result_object), expected.checksum);
    assert_ne!(input.checksum, expected.checksum);
}

#[test]
fn stale_checksum_on_sorted_data_is_recomputed() {
    let vector = checksum_vector("normalize: two backends in order, stale checksum");
    assert_eq!(checksum_annotation(&vector.object), "stale");
    let (result, _) = normalized(&vector.object);
    assert_eq!(
        result.changes,
        vec![Change::ContentChecksum {
            from: "stale".into(),
            to: vector.checksum
        }]
    );
}

#[test]
fn untouchables_stay_as_they_are() {
    for config in [
        "aggregation:\n    conflictResolutionConfig:\n        priorityOrder:\n            - z\n            - a\n",
        "compositeTools:\n    - name: t\n      steps:\n        - id: z\n        - id: a\n",
        "outgoingAuth:\n    backends:\n        z:\n            type: x\n        a:\n            type: y\n",
        "metadata:\n    note: |\n        backends:\n            - name: z\n            - name: a\n",
        "backends:\n    - name: a\n      metadata:\n        z: \"1\"\n        a: \"2\"\n    - name: b\n",
    ] {
        assert_eq!(
            normalize_configmap(&vmcp_configmap(config)),
            Outcome::Unchanged,
            "{config}"
        );
    }
}

#[test]
fn unsafe_documents_are_refused_with_a_reason() {
    for (config, reason) in [
        (
            "backends: [{name: b}, {name: a}]\n",
            RefusalReason::Unsupported,
        ),
        (
            "backends:\n  - name: b\n  - name: a\n---\nbackends: []\n",
            RefusalReason::Unsupported,
        ),
        (
            "backends:\n  - name: \"b\u{2029}\"\n  - name: a\n",
            RefusalReason::Unsupported,
        ),
        (
            "backends:\n  - name: b\n    url: &u x\n  - name: a\n    url: *u\n",
            RefusalReason::ProofFailed,
        ),
        (
            "backends:\n  - name: b\n   - name: a\n",
            RefusalReason::InvalidYaml,
        ),
        ("backends: \"unterminated\n", RefusalReason::InvalidYaml),
    ] {
        match normalize_configmap(&vmcp_configmap(config)) {
            Outcome::Refused(refusal) => assert_eq!(refusal.reason, reason, "{config}: {refusal}"),
            other => panic!("{config}: expected a refusal, got {other:?}"),
        }
    }
}

/// Shapes a hand-written config takes that read the same under libyaml after
/// the move: they are put in order, every byte of each item kept.
#[test]
fn hand_written_shapes_that_move_intact_are_normalized() {
    for (config, canonical) in [
        (
            "backends:\n  - &b\n    name: b\n  - name: a\n",
            "backends:\n  - name: a\n  - &b\n    name: b\n",
        ),
        (
            "backends:\n  - name: b\n  # a follows\n  - name: a\n",
            "backends:\n  # a follows\n  - name: a\n  - name: b\n",
        ),
        (
            "backends:\r\n  - name: b\r\n  - name: a\r\n",
            "backends:\r\n  - name: a\r\n  - name: b\r\n",
        ),
        (
            "backends:\n  - !t\n    name: b\n  - name: a\n",
            "backends:\n  - name: a\n  - !t\n    name: b\n",
        ),
    ] {
        let (_, object) = normalized(&vmcp_configmap(config));
        assert_eq!(self::config(&object), canonical, "{config}");
    }
}

#[test]
fn malformed_objects_are_refused_not_panicked_on() {
    let labels = json!({"toolhive.stacklok.io/component": "vmcp-config"});
    for object in [
        json!({"metadata": {"labels": labels}, "data": {"config.yaml": 7}}),
        json!({"metadata": {"labels": labels}, "data": {"config.yaml": null}}),
        json!({"metadata": {"labels": labels, "annotations": {CONTENT_CHECKSUM_ANNOTATION: 1}},
               "data": {"config.yaml": "backends:\n- name: b\n- name: a\n"}}),
        json!({"metadata": {"labels": labels, "annotations": {CONTENT_CHECKSUM_ANNOTATION: "x"}},
               "data": {"config.yaml": "name: x\n", "other": 1}}),
    ] {
        match normalize_configmap(&object) {
            Outcome::Refused(refusal) => {
                assert_eq!(refusal.reason, RefusalReason::MalformedObject, "{refusal}")
            }
            other => panic!("{object}: expected a refusal, got {other:?}"),
        }
    }
    // No data at all: not a vMCP config ConfigMap.
    assert_eq!(
        normalize_configmap(&json!({"metadata": {"labels": labels}})),
        Outcome::NotVmcp
    );
}

#[test]
fn a_huge_document_is_handled() {
    // 1 MiB is the ConfigMap limit; go past it.
    let mut text = String::from("backends:\n");
    for i in (0..20_000).rev() {
        text.push_str(&format!("    - name: backend-{i:05}\n      url: http://b{i}.svc:8080/mcp\n      transport: sse\n"));
    }
    assert!(text.len() > 1 << 20);
    let (_, result_object) = normalized(&vmcp_configmap(&text));
    assert!(config(&result_object).starts_with("backends:\n    - name: backend-00000\n"));
    assert_eq!(normalize_configmap(&result_object), Outcome::Unchanged);
}

// ---- properties ----------------------------------------------------------

/// Names with the YAML text yaml.v3 writes for them.
fn name_strategy() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}".prop_map(|n| (n.clone(), n)),
        "[0-9]{1,4}".prop_map(|n| (n.clone(), format!("\"{n}\""))),
        prop::sample::select(vec![
            ("true", "\"true\""),
            ("on", "\"on\""),
            ("yes", "\"yes\""),
            ("1:30", "\"1:30\""),
            ("{x}", "'{x}'"),
            ("Ünïcødé", "Ünïcødé"),
            ("名前", "名前"),
            ("B", "B"),
            ("a", "a"),
        ])
        .prop_map(|(n, y)| (n.to_owned(), y.to_owned())),
    ]
}

fn backend_strategy() -> impl Strategy<Value = (String, String)> {
    (name_strategy(), "[a-z]{1,6}", prop::bool::ANY).prop_map(|((name, yaml), host, with_meta)| {
        let mut item = format!("    - name: {yaml}\n      url: http://{host}.svc:8080/mcp\n      transport: streamable-http\n");
        if with_meta {
            item.push_str("      metadata:\n        group: g\n        note: |\n            line one\n            # not a comment\n");
        }
        (name, item)
    })
}

fn render(items: &[(String, String)]) -> String {
    let body: String = items.iter().map(|(_, item)| item.as_str()).collect();
    format!("name: x\ngroupRef: g\nbackends:\n{body}incomingAuth:\n    type: anonymous\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_permutation_normalizes_to_the_same_bytes(
        items in prop::collection::vec(backend_strategy(), 0..12),
        seed in any::<u64>(),
    ) {
        // Duplicates included: repeat the first item under some seeds.
        let mut items = items;
        if seed % 3 == 0 && !items.is_empty() {
            items.push(items[0].clone());
        }
        let mut shuffled = items.clone();
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let canonical = |items: &[(String, String)]| -> Value {
            let input = vmcp_configmap(&render(items));
            match normalize_configmap(&input) {
                Outcome::Normalized(n) => n.apply_to(&input).expect("the patch applies"),
                Outcome::Unchanged => input,
                other => panic!("unexpected {other:?}"),
            }
        };
        let a = canonical(&items);
        let b = canonical(&shuffled);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(normalize_configmap(&a), Outcome::Unchanged, "idempotent");

        // The result is the items sorted by name bytes, then item bytes.
        let mut sorted = items.clone();
        sorted.sort_by(|x, y| (x.0.as_bytes(), &x.1).cmp(&(y.0.as_bytes(), &y.1)));
        prop_assert_eq!(config(&a), render(&sorted));
    }
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A vMCP ConfigMap as `kubectl apply` (client-side) stores it: the applied
/// object, in the order it was written, kept as compact JSON in an
/// annotation the content checksum covers.
fn applied_configmap(config: &str) -> Value {
    let mut applied = vmcp_configmap(config);
    applied["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let mut object = vmcp_configmap(config);
    object["metadata"]["annotations"][LAST_APPLIED] =
        Value::String(format!("{}\n", serde_json::to_string(&applied).unwrap()));
    let checksum = content_checksum(&object).unwrap();
    object["metadata"]["annotations"][CONTENT_CHECKSUM_ANNOTATION] = Value::String(checksum);
    object
}

#[test]
fn kubectl_applied_configmaps_in_any_order_give_one_object_and_one_checksum() {
    let orders = [
        "name: x\nbackends:\n    - name: c\n    - name: a\n    - name: b\n",
        "name: x\nbackends:\n    - name: b\n    - name: c\n    - name: a\n",
    ];
    let canonical_config = "name: x\nbackends:\n    - name: a\n    - name: b\n    - name: c\n";
    let results: Vec<Value> = orders
        .iter()
        .map(|config| {
            let input = applied_configmap(config);
            let (_, object) = normalized(&input);
            // The annotation is still the JSON kubectl wrote, but for the
            // config string.
            let annotation = object["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap();
            let before = input["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap();
            assert_eq!(
                annotation,
                before.replace(
                    &serde_json::to_string(config).unwrap(),
                    &serde_json::to_string(canonical_config).unwrap()
                )
            );
            assert_eq!(
                normalize_configmap(&object),
                Outcome::Unchanged,
                "idempotent"
            );
            object
        })
        .collect();
    assert_eq!(results[0], results[1]);
    // One checksum, the one the canonical apply would carry.
    assert_eq!(
        checksum_annotation(&results[0]),
        checksum_annotation(&applied_configmap(canonical_config))
    );
}

#[test]
fn a_last_applied_copy_that_does_not_read_is_left_with_a_warning() {
    let mut input = applied_configmap("backends:\n  - name: b\n  - name: a\n");
    input["metadata"]["annotations"][LAST_APPLIED] = json!("{\"data\": {\"config.yaml\"");
    let (result, object) = normalized(&input);
    assert_eq!(
        object["metadata"]["annotations"][LAST_APPLIED],
        input["metadata"]["annotations"][LAST_APPLIED]
    );
    assert_eq!(config(&object), "backends:\n  - name: a\n  - name: b\n");
    let left = result
        .changes
        .iter()
        .find_map(|change| match change {
            Change::LastAppliedLeft(refusal) => Some(refusal),
            _ => None,
        })
        .expect("a warning for the copy");
    assert_eq!(left.reason, RefusalReason::MalformedObject);

    // With nothing else to do, the object is left as it is, with the reason.
    let mut canonical = applied_configmap("backends:\n  - name: a\n  - name: b\n");
    canonical["metadata"]["annotations"][LAST_APPLIED] = json!("not json");
    canonical["metadata"]["annotations"][CONTENT_CHECKSUM_ANNOTATION] =
        json!(content_checksum(&canonical).unwrap());
    match normalize_configmap(&canonical) {
        Outcome::Refused(refusal) => {
            assert!(
                refusal.detail.contains("last-applied-configuration"),
                "{refusal}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
